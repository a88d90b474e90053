"""Simulation (random walks): reproducible by seed, same property checks as the exhaustive
search, counterexamples that replay, loops cut, Ctrl-C gives a partial result."""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from smcd_check.explorer.engine import DEADLOCK, Explorer
from smcd_check.explorer.model import Property
from smcd_check.explorer.simulate import cut_loops, simulate
from smcd_check.explorer.trace import parse_trace, replay_trace, trace_document
from smcd_check.spec import configs
from smcd_check.spec.faults import Fault


@dataclass(frozen=True)
class Counter:
    """A toy model outside the spec: a counter mod 8 that may go up or down; 5 is bad."""

    name: str = "counter"
    bad: int | None = 5
    stop_at: int | None = None

    def init_states(self) -> Sequence[int]:
        return [0]

    def actions(self, s: int) -> list[str]:
        return ["up", "down"]

    def next_state(self, s: int, a: str) -> int | None:
        if self.stop_at is not None and s == self.stop_at:
            return None
        return (s + 1) % 8 if a == "up" else (s - 1) % 8

    def properties(self) -> list[Property[int]]:
        bad = self.bad
        return [
            Property.always("the counter never shows the bad value", lambda s: s != bad),
            Property.sometimes("the counter reaches 3", lambda s: s == 3),
        ]

    def within_boundary(self, s: int) -> bool:
        return True

    def is_final(self, s: int) -> bool:
        return False


def test_any_model_works_and_the_violation_is_a_path_of_it() -> None:
    """Only the Model interface is used: a model outside the spec is simulated, and the
    counterexample is a path of that model ending in the bad state."""
    r = simulate(Counter(), walks=50, depth=40, seed=7)
    assert r.violation is not None
    assert r.violation.name == "the counter never shows the bad value"
    path = r.violation.path
    assert path.states[0] == 0 and path.states[-1] == 5
    for s, a, t in zip(path.states, path.actions, path.states[1:], strict=False):
        assert Counter().next_state(s, a) == t
    assert len(set(path.states)) == len(path.states), "loops are cut"
    assert r.examples["the counter reaches 3"] is not None


def test_a_dead_end_in_a_non_final_state_is_a_deadlock() -> None:
    r = simulate(Counter(bad=None, stop_at=2), walks=20, depth=40, seed=1)
    assert r.violation is not None and r.violation.name == DEADLOCK
    assert r.violation.path.states[-1] == 2


def test_same_seed_same_walks_other_seed_other_walks() -> None:
    """Reproducible: a seed fixes every walk (counts, coverage, depths)."""
    model = configs.build_system("reference")

    def run(seed: int) -> tuple[Any, ...]:
        r = simulate(model, walks=40, depth=60, seed=seed)
        return r.walks, r.states, r.steps, r.max_depth, sorted(r.coverage.items())

    assert run(11) == run(11)
    assert run(11) != run(12)


def test_clean_reference_config_has_no_violation_and_reaches_the_sometimes() -> None:
    r = simulate(configs.build_system("reference"), walks=200, depth=100, seed=3)
    assert r.ok and r.stop_reason is None and r.walks == 200
    assert r.states == r.steps + r.walks  # every walk checks its initial state too
    assert r.endings == {"final": 200}, "the reference config always tears down"
    assert all(d is not None for d in r.examples.values()), r.examples


def test_depth_limit_ends_walks_of_an_endless_config() -> None:
    """tiny has no close: data flows forever, so every walk stops at the depth limit."""
    r = simulate(configs.build_system("tiny"), walks=5, depth=30, seed=0)
    assert r.ok and r.endings == {"depth": 5} and r.max_depth == 30 and r.steps == 150


@pytest.mark.parametrize("fault", [f.value for f in Fault])
def test_every_fault_is_found_and_its_trace_replays(fault: str) -> None:
    """Each fault's violation (the same property the exhaustive search names) is found by
    random walks, and the counterexample is a trace ``smcd-check replay`` reproduces."""
    name = configs.FAULT_CONFIGS[Fault(fault)]
    model = configs.build_system(name, fault)
    r = simulate(model, walks=3000, depth=100, seed=2024)
    assert r.violation is not None, r.verdict()
    bfs = Explorer(configs.build_system(name, fault)).bfs()
    assert bfs.violation is not None and r.violation.name == bfs.violation.name
    assert len(r.violation.path) >= len(bfs.violation.path), "BFS is the shortest"
    doc = trace_document(r.violation, model, family="smcd-system", config=name, fault=fault)
    replayed = replay_trace(parse_trace(doc))
    assert replayed.ok, replayed.message


def test_ctrl_c_gives_a_partial_result() -> None:
    calls = {"n": 0}

    class Interrupting(Counter):
        def next_state(self, s: int, a: str) -> int | None:
            calls["n"] += 1
            if calls["n"] == 25:
                raise KeyboardInterrupt
            return super().next_state(s, a)

    r = simulate(Interrupting(bad=None), walks=100, depth=10, seed=0)
    assert r.stop_reason == "interrupted" and r.ok
    assert 1 <= r.walks < 100 and r.steps == 24


def test_bounds_stop_with_a_reason() -> None:
    r = simulate(Counter(bad=None), walks=1000, depth=10, seed=0, max_states=100)
    assert r.stop_reason == "max-states" and r.walks < 1000 and r.states >= 100
    with pytest.raises(ValueError, match="walks and depth"):
        simulate(Counter(), walks=0)


@given(st.lists(st.integers(0, 6), min_size=1, max_size=40))
def test_cut_loops_keeps_a_valid_path_without_revisits(states: list[int]) -> None:
    """Cutting loops out of a walk leaves a path from the same first state to the same last
    state, visiting no state twice, whose every step is a step of the walk."""
    actions = [f"{a}->{b}" for a, b in itertools.pairwise(states)]
    path = cut_loops(states, actions)
    assert path.states[0] == states[0] and path.states[-1] == states[-1]
    assert len(set(path.states)) == len(path.states)
    assert len(path.actions) == len(path.states) - 1
    for s, a, t in zip(path.states, path.actions, path.states[1:], strict=False):
        assert a == f"{s}->{t}"
