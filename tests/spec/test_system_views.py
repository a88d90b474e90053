"""The SMC-D system's footprint declarations are honest: its views of the lifecycle leave out
nothing the data path's steps read, so the memoised search explores what the plain one does.

A data pair's group keys its memo on a view of the lifecycle state (``System.data_view``: the
pair's connections, the DMB token and liveness their buffers name, whether their peer tokens
are registered). These tests check that contract step by step, over reachable states that
include those past a violation (dangling ghosts, use after release, token reuse), and compare
whole searches with the search that treats each state as one opaque value.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from smcd_check.explorer.engine import Explorer
from smcd_check.explorer.kernel import audit_views
from smcd_check.spec import configs


def _reachable(model: Any, limit: int) -> Iterator[Any]:
    """Breadth-first over ``model`` without checking anything (so the search goes on past
    violations), at most ``limit`` states."""
    seen = set(model.init_states())
    frontier = list(seen)
    n = 0
    while frontier and n < limit:
        nxt = []
        for s in frontier:
            yield s
            n += 1
            if n >= limit:
                return
            for a in model.actions(s):
                t = model.next_state(s, a)
                if t is not None and t not in seen:
                    seen.add(t)
                    nxt.append(t)
        frontier = nxt


@pytest.mark.parametrize(
    ("config", "fault", "limit"),
    [
        ("abort", None, 6000),
        ("reference", None, 6000),
        ("reference", "unregister-while-attached", 6000),
        ("ring2", "space-forgets-in-flight", 3000),
        ("duplex", None, 4000),
        ("urgent-inline", None, 3000),
    ],
)
def test_the_data_path_view_of_the_lifecycle_keeps_every_step(
    config: str, fault: str | None, limit: int
) -> None:
    """For every state and every data-path action: the same actions on the view as on the
    whole state, and the same successor once the view's changes are put back."""
    model = configs.build_system(config, fault)
    assert audit_views(model, _reachable(model, limit)) == []


def test_the_view_keeps_every_step_when_another_pair_reuses_a_peer_token() -> None:
    """The case the view's rule about other connections is for: pair 1 took over a DMB
    whose token pair 0 still holds as its peer token (after pair 0's server freed it), so a
    CDC of pair 0 may resolve to pair 1's connection. Checked on reachable states of the
    reference config where that happens (every 8th of them)."""
    model = configs.build_system("reference")
    res = Explorer(model).bfs()
    assert res.state_at is not None

    def reused(s: Any) -> bool:
        toks = {c.peer_token for c in s.lc.conns if c.cid < 2 and c.peer_token is not None}
        token_of = {d.desc_id: d.token for d in s.lc.descs}
        return any(c.cid >= 2 and token_of.get(c.rmb) in toks for c in s.lc.conns)

    states = [res.state_at(k) for k in range(res.unique_state_count)]
    picked = [s for s in states if reused(s)][::8]
    assert len(picked) > 1000
    assert audit_views(model, picked) == []


@pytest.mark.slow
@pytest.mark.parametrize("name", ["ring2", "abort"])
def test_memoised_search_equals_the_opaque_search(name: str) -> None:
    """Whole searches with close and abort racing with data in both modes: same counts,
    coverage and examples with the views as without any footprint."""
    opaque = Explorer(configs.build_system(name)).with_memo(False).bfs()
    fast = Explorer(configs.build_system(name)).bfs()
    assert fast.verdict() == opaque.verdict()
    assert (fast.unique_state_count, fast.transition_count, fast.max_depth) == (
        opaque.unique_state_count,
        opaque.transition_count,
        opaque.max_depth,
    )
    assert fast.coverage == opaque.coverage
    for pname, d in opaque.examples.items():
        assert d is not None and fast.examples[pname] is not None
        assert d.path.actions == fast.examples[pname].path.actions  # type: ignore[union-attr]


def test_a_view_that_leaves_out_a_read_is_caught() -> None:
    """The audit is not vacuous: a view without the peer tokens' DMB nodes makes a write
    after the peer's DMB was unregistered look successful, and the audit says so."""
    model = configs.build_system("reference", "unregister-while-attached")
    real = model.data_view

    def blind(p: int, st: Any) -> Any:
        from dataclasses import replace

        return replace(real(p, st), nodes=())

    model.data_view = blind  # type: ignore[method-assign]
    model.__dict__.pop("_data_views", None)
    assert audit_views(model, _reachable(model, 6000))
