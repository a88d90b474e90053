"""The parallel search and the memoised (footprint) path give exactly the sequential results.

Every pinned config and every fault is explored sequentially and with two worker processes
(the sequential prefix kept tiny so the workers do almost all of the search); everything a user
reads must be identical: verdict, counts, depth, coverage, never-fired kinds, the examples of the
``sometimes`` properties and the counterexample, step by step.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import pytest

from smcd_check.explorer.engine import Explorer, ExploreResult
from smcd_check.explorer.model import ActionGroup, Property, as_property
from smcd_check.explorer.parallel import parallel_search
from smcd_check.spec import configs
from smcd_check.spec.faults import Fault


def _parallel(model: Any, workers: int = 2) -> ExploreResult:
    ex = Explorer(model).with_workers(workers)
    return parallel_search(ex, [as_property(p) for p in model.properties()], warmup_states=8)


def _same(a: ExploreResult, b: ExploreResult) -> None:
    assert a.verdict() == b.verdict()
    assert (a.unique_state_count, a.transition_count, a.max_depth) == (
        b.unique_state_count,
        b.transition_count,
        b.max_depth,
    )
    assert a.coverage == b.coverage
    assert a.never_fired == b.never_fired
    assert a.complete == b.complete
    for name, d in a.examples.items():
        other = b.examples[name]
        assert (d is None) == (other is None), name
        if d is not None and other is not None:
            assert d.path.actions == other.path.actions, name
    assert (a.violation is None) == (b.violation is None)
    if a.violation is not None and b.violation is not None:
        assert a.violation.name == b.violation.name
        assert a.violation.path.actions == b.violation.path.actions


@pytest.mark.parametrize(
    "name",
    [
        "tiny",
        "small",
        "ism-peers",
        pytest.param("ring2", marks=pytest.mark.slow),
        pytest.param("abort", marks=pytest.mark.slow),
        pytest.param("reference", marks=pytest.mark.slow),
        "duplex-open",
        pytest.param("urgent", marks=pytest.mark.slow),
    ],
)
def test_parallel_search_equals_sequential_on_pinned_configs(name: str) -> None:
    seq = Explorer(configs.build_system(name)).bfs()
    par = _parallel(configs.build_system(name))
    assert par.workers == 2 and seq.workers == 1
    _same(seq, par)
    assert par.unique_state_count == configs.get_preset(name).reachable


@pytest.mark.parametrize("fault", sorted(f.value for f in Fault))
def test_parallel_search_finds_the_same_first_violation(fault: str) -> None:
    """With a fault the search stops at the first violation in BFS order: the parallel search
    stops at the same one, with the same counts up to it."""
    name = configs.FAULT_CONFIGS[Fault(fault)]
    seq = Explorer(configs.build_system(name, fault)).bfs()
    par = _parallel(configs.build_system(name, fault))
    assert seq.violation is not None
    _same(seq, par)


@pytest.mark.parametrize("name", ["tiny", "small", "ism-peers"])
def test_system_footprints_agree_with_the_opaque_search(name: str) -> None:
    """The system's declared footprints are honest: the memoised search finds what the search
    treating each state as one opaque value finds."""
    _same(
        Explorer(configs.build_system(name)).with_memo(False).bfs(),
        Explorer(configs.build_system(name)).bfs(),
    )


# -- a model whose first level overflows the packed layout --------------------------------


@dataclass(frozen=True, slots=True)
class Fan:
    """``pick`` one of ``width`` values, then count it down to 0."""

    pick: int = -1
    left: int = 0


@dataclass(frozen=True, slots=True)
class Pick:
    value: int


@dataclass(frozen=True, slots=True)
class Down:
    pass


class FanOut:
    name = "fan-out"

    def __init__(self, width: int) -> None:
        self.width = width

    def init_states(self) -> Sequence[Fan]:
        return (Fan(),)

    def actions(self, s: Fan) -> Iterator[Any]:
        yield from self._picks(s)
        yield from self._downs(s)

    def _picks(self, s: Fan) -> Iterator[Any]:
        if s.pick < 0:
            yield from (Pick(v) for v in range(self.width))

    def _downs(self, s: Fan) -> Iterator[Any]:
        if s.left > 0:
            yield Down()

    def next_state(self, s: Fan, a: Any) -> Fan | None:
        if isinstance(a, Pick):
            return Fan(pick=a.value, left=a.value % 5)
        return Fan(pick=s.pick, left=s.left - 1)

    def action_groups(self) -> Sequence[ActionGroup]:
        return (
            ActionGroup(name="pick", reads=("pick", "left"), actions=self._picks),
            ActionGroup(name="down", reads=("left",), actions=self._downs),
        )

    def properties(self) -> Sequence[Property[Fan]]:
        return (Property.sometimes("a big pick", lambda s: s.pick > 90, reads=("pick",)),)

    def within_boundary(self, s: Fan) -> bool:
        return True

    def is_final(self, s: Fan) -> bool:
        return s.left == 0 and s.pick >= 0


def test_a_level_that_overflows_the_layout_is_redone_with_the_same_result() -> None:
    """200 new values of one component in the first level overflow its first 4-bit field: the
    level is undone, the layout widened, and the counts match the opaque search."""
    fast = Explorer(FanOut(200)).bfs()
    slow = Explorer(FanOut(200)).with_memo(False).bfs()
    _same(fast, slow)
    assert fast.unique_state_count == 1 + 200 + sum(v % 5 for v in range(200)) - 0
    assert fast.ok


def test_workers_flag_is_validated() -> None:
    with pytest.raises(ValueError, match="at least 1"):
        Explorer(FanOut(3)).with_workers(0)


def test_explore_cli_workers_flag_gives_the_same_result_and_rejects_zero() -> None:
    """``smcd-check explore --workers 2`` prints the same counts and verdict as ``--workers 1``
    and says how many workers ran; ``--workers 0`` is a usage error (exit 2)."""
    import json

    from click.testing import CliRunner

    from smcd_check.cli.explore import command as explore

    docs = []
    for w in ("1", "2"):
        res = CliRunner().invoke(explore, ["--config", "small", "--json", "--workers", w])
        assert res.exit_code == 0, res.output
        docs.append(json.loads(res.output))
    one, two = docs
    assert (one["workers"], two["workers"]) in {(1, 2), (1, 1)}  # 1: finished in the prefix
    for key in ("verdict", "states", "transitions", "depth", "coverage", "sometimes"):
        assert one[key] == two[key], key
    bad = CliRunner().invoke(explore, ["--config", "small", "--workers", "0"])
    assert bad.exit_code == 2


def test_ctrl_c_in_the_parallel_search_gives_a_partial_result() -> None:
    """A Ctrl-C while the workers are mid-level stops with the states of the finished levels
    ("interrupted", not complete), and the workers' late replies do not confuse the tally."""
    from smcd_check.explorer.parallel import LocalProcesses

    class Interrupting(LocalProcesses):
        calls = 0

        def ready(self) -> list[int]:
            Interrupting.calls += 1
            if Interrupting.calls == 7:
                raise KeyboardInterrupt
            return super().ready()

    model = configs.build_system("small")
    ex = Explorer(model).with_workers(2)
    res = parallel_search(
        ex, [as_property(p) for p in model.properties()], warmup_states=8, transport=Interrupting
    )
    assert res.stop_reason == "interrupted" and not res.complete
    assert 8 <= res.unique_state_count < 3_352
    assert res.verdict().startswith("no violation in the")
