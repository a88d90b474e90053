"""The generic explorer on small hand-made models whose state spaces are known by hand."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import pytest

from smcd_check.explorer.engine import DEADLOCK, Explorer
from smcd_check.explorer.model import Property


@dataclass(frozen=True, slots=True, kw_only=True)
class Inc:
    """Add ``by`` to the counter."""

    by: int


@dataclass(frozen=True, slots=True, kw_only=True)
class Reset:
    """Set the counter back to 0."""


class Counter:
    """A counter 0..limit: Inc(1), Inc(2) below the limit; Reset only when ``resets``."""

    def __init__(
        self,
        limit: int,
        *,
        resets: bool = True,
        bad: int | None = None,
        final_at_limit: bool = True,
    ) -> None:
        self.limit, self.resets, self.bad, self.final_at_limit = limit, resets, bad, final_at_limit
        self.name = f"counter-{limit}"

    def init_states(self) -> Sequence[int]:
        return (0,)

    def actions(self, s: int) -> Iterator[object]:
        yield Inc(by=1)
        yield Inc(by=2)
        yield Reset()

    def next_state(self, s: int, a: object) -> int | None:
        if isinstance(a, Inc):
            return s + a.by if s + a.by <= self.limit else None
        return 0 if self.resets and s != 0 else None

    def properties(self) -> Sequence[Property[int]]:
        props: list[Property[int]] = [Property.sometimes("the counter reaches 3", lambda s: s == 3)]
        if self.bad is not None:
            props.append(
                Property.always(f"the counter never equals {self.bad}", lambda s: s != self.bad)
            )
        return props

    def within_boundary(self, s: int) -> bool:
        return True

    def is_final(self, s: int) -> bool:
        return self.final_at_limit and s == self.limit

    def action_types(self) -> list[str]:
        return ["Inc", "Reset", "Teleport"]


def test_counts_states_transitions_and_depth_of_a_known_graph() -> None:
    """0..4 with +1/+2 and reset: 5 states; from s: +1 if s<=3, +2 if s<=2, reset if s>0."""
    res = Explorer(Counter(4)).bfs()
    assert res.complete and res.ok
    assert res.unique_state_count == 5
    assert res.transition_count == 4 + 3 + 4  # +1 edges, +2 edges, resets
    assert res.max_depth == 2  # 4 = 0 +2 +2
    assert res.coverage == {"Inc": 7, "Reset": 4}
    assert res.never_fired == ["Teleport"]


def test_violation_path_is_shortest_and_replayable() -> None:
    res = Explorer(Counter(6, bad=5)).bfs()
    assert res.violation is not None and res.violation.name == "the counter never equals 5"
    assert res.violation.path.actions == [Inc(by=1), Inc(by=2), Inc(by=2)]
    assert res.violation.path.states == [0, 1, 3, 5]
    assert not res.complete and res.stop_reason == "violation"


def test_deadlock_is_a_non_final_state_without_successors() -> None:
    res = Explorer(Counter(3, resets=False, final_at_limit=False)).bfs()
    assert res.violation is not None and res.violation.name == DEADLOCK
    assert res.violation.path.states[-1] == 3 and len(res.violation.path) == 2


def test_sometimes_unreached_in_a_complete_search_is_reported_vacuous() -> None:
    res = Explorer(Counter(2)).bfs()
    assert res.complete and res.unreached_examples == ["the counter reaches 3"]
    assert not res.ok and res.verdict().startswith("VACUOUS")


def test_max_states_gives_a_partial_verdict() -> None:
    res = Explorer(Counter(100)).bounded(max_states=10).bfs()
    assert not res.complete and res.stop_reason == "max-states"
    assert res.unique_state_count <= 12
    assert res.verdict().startswith("no violation in the")


def test_keyboard_interrupt_stops_cleanly_with_partial_result() -> None:
    class Interrupting(Counter):
        calls = 0

        def next_state(self, s: int, a: object) -> int | None:
            self.calls += 1
            if self.calls == 40:
                raise KeyboardInterrupt
            return super().next_state(s, a)

    res = Explorer(Interrupting(100)).bfs()
    assert res.stop_reason == "interrupted" and not res.complete
    assert 0 < res.unique_state_count < 101


def test_fingerprint_mode_finds_the_same_counts_and_path() -> None:
    exact = Explorer(Counter(30, bad=29)).bfs()
    fp = Explorer(Counter(30, bad=29)).with_fingerprints().bfs()
    assert fp.unique_state_count == exact.unique_state_count
    assert fp.violation is not None and exact.violation is not None
    assert fp.violation.path.actions == exact.violation.path.actions
    assert fp.collision_probability is not None and fp.collision_probability < 1e-12


def test_duplicate_property_names_are_rejected() -> None:
    class Dup(Counter):
        def properties(self) -> Sequence[Property[int]]:
            p = Property.always("same", lambda s: True)
            return [p, p]

    with pytest.raises(ValueError, match="unique"):
        Explorer(Dup(2)).bfs()
