"""eventually properties under strong fairness, checked on the networkx graph."""

from __future__ import annotations

from collections.abc import Iterator, Sequence

from smcd_check.explorer.engine import Explorer
from smcd_check.explorer.model import Property


class Ring:
    """States 0..n-1; ``step`` goes s -> s+1 mod n; ``exit`` (from ``exit_from``) goes to n
    (done, final). Goal: state n."""

    def __init__(self, n: int, exit_from: int | None) -> None:
        self.n, self.exit_from = n, exit_from
        self.name = "ring"

    def init_states(self) -> Sequence[int]:
        return (0,)

    def actions(self, s: int) -> Iterator[str]:
        yield "step"
        yield "exit"

    def next_state(self, s: int, a: str) -> int | None:
        if s == self.n:
            return None
        if a == "step":
            return (s + 1) % self.n
        return self.n if s == self.exit_from else None

    def properties(self) -> Sequence[Property[int]]:
        return [Property.eventually("the ring is eventually left", lambda s: s == self.n)]

    def within_boundary(self, s: int) -> bool:
        return True

    def is_final(self, s: int) -> bool:
        return s == self.n


def test_goal_reachable_from_every_state_holds_under_strong_fairness() -> None:
    """Circling forever while the exit stays possible is unfair: the property holds."""
    res = Explorer(Ring(4, exit_from=2)).bfs()
    assert res.liveness == {"the ring is eventually left": None}
    assert res.ok and res.graph is None  # built for the check, not kept without with_graph


def test_cycle_that_can_never_reach_the_goal_is_a_lasso_counterexample() -> None:
    res = Explorer(Ring(3, exit_from=None)).bfs()
    disc = res.liveness["the ring is eventually left"]
    assert disc is not None and not res.ok
    path = disc.path
    assert path.loop_start is not None
    assert path.states[path.loop_start] == path.states[-1]  # the cycle closes
    assert all(s != 3 for s in path.states)


def test_graph_export_keeps_every_state_and_edge() -> None:
    res = Explorer(Ring(4, exit_from=2)).with_graph().bfs()
    g = res.graph
    assert g is not None
    assert g.number_of_nodes() == res.unique_state_count == 5
    assert g.number_of_edges() == 5
