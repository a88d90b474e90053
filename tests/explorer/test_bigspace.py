"""Spaces too big to exhaust: symmetry reduction, bitstate storage, checkpoint and resume
(explorer/symmetry.py, explorer/bitstate.py, explorer/checkpoint.py on the engine)."""

from __future__ import annotations

import itertools
import math
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from smcd_check.explorer import bitstate, checkpoint
from smcd_check.explorer.engine import Explorer, ExploreResult
from smcd_check.spec import configs
from smcd_check.spec.faults import Fault
from smcd_check.spec.symmetry import rename_pairs
from smcd_check.spec.system import System

#: the pinned configs cheap enough to search twice in the tests (large is a benchmark); those
#: without symmetric pairs run the same search twice, the longer ones marked slow
PINNED = [
    "tiny",
    "small",
    "ism-peers",
    "trio",
    pytest.param("ring2", marks=pytest.mark.slow),
    pytest.param("abort", marks=pytest.mark.slow),
    pytest.param("reference", marks=pytest.mark.slow),
]


def ism_unsequenced(fault: Fault | None = None) -> System:
    """ism-peers with concurrent handshakes: pairs 0 and 2 connect the same two hosts (a
    symmetric config where LGR_REUSE_PEER_MISMATCH and a deadlock show)."""
    base = configs.get_preset("ism-peers").config
    cfg = replace(base, sequential_connect=False, symmetric_pairs=(0, 2))
    return System(configs.with_fault(cfg, fault), name="ism-unsequenced")


def verdicts(r: ExploreResult) -> tuple[Any, ...]:
    """What must not change with the reduction: the verdict, the violated property and the
    length of its shortest counterexample, and which sometimes properties were reached."""
    v = r.violation
    return (
        r.ok,
        r.complete,
        None if v is None else (v.name, len(v.path)),
        sorted(k for k, d in r.examples.items() if d is not None) if v is None else None,
    )


def replays(model: Any, path: Any) -> bool:
    """The path is a real run: from an initial state, each state the step of the previous."""
    if path.states[0] not in model.init_states():
        return False
    return all(
        model.next_state(s, a) == t
        for s, a, t in zip(path.states, path.actions, path.states[1:], strict=False)
    )


# -- symmetry --------------------------------------------------------------------------------


@pytest.mark.parametrize("name", PINNED)
def test_reduced_search_finds_what_the_full_search_finds_on_pinned_configs(name: str) -> None:
    """On every pinned config the search with symmetry (the default) and without it give the
    same verdicts; where the config declares no symmetric pairs they are the same search."""
    model = configs.build_system(name)
    reduced = Explorer(model).bfs()
    full = Explorer(configs.build_system(name)).with_symmetry(False).bfs()
    assert verdicts(reduced) == verdicts(full)
    preset = configs.get_preset(name)
    assert reduced.unique_state_count == preset.reachable
    if model.symmetry() is None:
        assert reduced.symmetry_members == 0
        assert reduced.unique_state_count == full.unique_state_count
        assert reduced.transition_count == full.transition_count
    else:
        assert reduced.symmetry_members == len(model.cfg.symmetric_pairs)
        assert full.unique_state_count == preset.reachable_full
        assert reduced.unique_state_count < full.unique_state_count


FAULT_CASES = [(configs.FAULT_CONFIGS[f], f) for f in Fault] + [("trio", f) for f in Fault]


@pytest.mark.parametrize(("name", "fault"), FAULT_CASES, ids=lambda x: getattr(x, "value", x))
def test_reduced_search_finds_the_same_violations_with_every_fault(name: str, fault: Fault) -> None:
    """Every fault, on the config where it shows and on the symmetric trio: the same verdict,
    property and shortest-counterexample length with and without the reduction; a reduced
    counterexample is a real run of the model."""
    model = configs.build_system(name, fault.value)
    reduced = Explorer(model).bfs()
    full = Explorer(configs.build_system(name, fault.value)).with_symmetry(False).bfs()
    assert verdicts(reduced) == verdicts(full)
    if reduced.violation is not None:
        assert replays(model, reduced.violation.path)


@pytest.mark.parametrize("fault", [None, Fault.LGR_REUSE_PEER_MISMATCH])
def test_reduced_search_finds_the_same_violation_on_a_symmetric_config_where_it_shows(
    fault: Fault | None,
) -> None:
    """A symmetric config with violations (a deadlock of concurrent ISM handshakes, and the
    link-group reuse fault): found at the same depth, and the reduced counterexample, which
    runs through representatives, is printed as a real run."""
    reduced = Explorer(ism_unsequenced(fault)).bfs()
    full = Explorer(ism_unsequenced(fault)).with_symmetry(False).bfs()
    assert reduced.symmetry_members == 2
    assert reduced.violation is not None
    assert verdicts(reduced) == verdicts(full)
    assert reduced.unique_state_count < full.unique_state_count
    assert replays(ism_unsequenced(fault), reduced.violation.path)


def _orbit_key(model: System, s: Any) -> Any:
    """An independent canonical form: the orbit itself, the set of every renaming of the
    state's pairs."""
    group = model.cfg.symmetric_pairs
    forms = []
    for perm in itertools.permutations(group):
        m = dict(zip(group, perm, strict=True))
        pairs = list(s.pairs)
        for p, q in m.items():
            pairs[q] = s.pairs[p]
        st = replace(s, pairs=tuple(pairs), lc=model.adopt(rename_pairs(s.lc, m)))
        forms.append(model.state_key(st))
    return frozenset(forms)


def test_reduced_search_stores_exactly_one_state_per_orbit() -> None:
    """The reduced search of trio stores as many states as the full search's states have
    orbits (counted here with an independent canonical form), one in each orbit."""
    model = configs.build_system("trio")
    full = Explorer(model).with_symmetry(False).bfs()
    reduced = Explorer(configs.build_system("trio")).bfs()
    assert full.state_at is not None and reduced.state_at is not None
    orbits = {_orbit_key(model, full.state_at(k)) for k in range(full.unique_state_count)}
    stored = [_orbit_key(model, reduced.state_at(k)) for k in range(reduced.unique_state_count)]
    assert len(set(stored)) == len(stored) == len(orbits) == 736
    assert set(stored) == orbits


def test_symmetry_refused_where_it_cannot_run() -> None:
    with pytest.raises(ValueError, match="declares no interchangeable"):
        Explorer(configs.build_system("reference")).with_symmetry(True).bfs()
    with pytest.raises(ValueError, match="state graph"):
        Explorer(configs.build_system("trio")).with_symmetry(True).with_graph().bfs()
    with pytest.raises(ValueError, match="sequentially"):
        Explorer(configs.build_system("trio")).with_symmetry(True).with_workers(2).bfs()


def test_symmetry_by_default_stays_off_where_the_mode_needs_every_state() -> None:
    """Asked for nothing, a graph search of a symmetric config stores every state (the
    liveness check and the graph export need them) and says so in the result."""
    r = Explorer(configs.build_system("trio")).with_graph().bfs()
    assert r.symmetry_members == 0 and r.unique_state_count == 4_156


# -- bitstate ----------------------------------------------------------------------------------


def test_bit_table_marks_states_and_counts_insertions() -> None:
    t = bitstate.BitTable(16, 3)
    assert t.add_new(12345) and not t.add_new(12345)
    assert 12345 in t and 54321 not in t and "x" not in t
    assert len(t) == 1 and t.nbytes == 2**13
    assert 0 < t.fill() <= 3 / 2**16
    with pytest.raises(ValueError, match="BITS must be"):
        bitstate.BitTable(5)
    with pytest.raises(ValueError, match="hash functions"):
        bitstate.BitTable(16, 0)


def test_expected_omissions_follow_the_bloom_filter_formula() -> None:
    """The expected misses are the sum over insertions of (1 - e^(-k i / m))^k: near
    n^(k+1) k^k / ((k+1) m^k) while the table is sparse, and 0 for no states."""
    assert bitstate.expected_omissions(0, 20, 3) == 0.0
    n, bits, k = 10_000, 24, 3
    sparse = n ** (k + 1) * k**k / ((k + 1) * (2.0**bits) ** k)
    assert math.isclose(bitstate.expected_omissions(n, bits, k), sparse, rel_tol=0.01)


def test_bitstate_with_a_roomy_table_gives_the_exact_counts() -> None:
    """With 2^24 bits for 3,352 states no state collides (the hash functions are fixed, so
    this is deterministic): the same states, transitions and depth as exact storage."""
    exact = Explorer(configs.build_system("small")).bfs()
    bits = Explorer(configs.build_system("small")).with_bitstate(24).bfs()
    assert (bits.unique_state_count, bits.transition_count, bits.max_depth) == (
        exact.unique_state_count,
        exact.transition_count,
        exact.max_depth,
    )
    assert bits.bitstate is not None and bits.bitstate.expected_omitted < 0.01
    assert "NOT EXHAUSTIVE" in bits.verdict() and "NOT EXHAUSTIVE" in bits.bitstate.lines()[0]


def test_bitstate_with_a_small_table_misses_states_and_says_how_many_to_expect() -> None:
    """2^10 bits for a few thousand states: states are missed, the report expects misses,
    and the run does not claim to be exhaustive."""
    r = Explorer(configs.build_system("small")).with_bitstate(10).bfs()
    assert r.bitstate is not None
    assert r.unique_state_count < 3_352
    assert r.bitstate.expected_omitted > 1 and r.bitstate.omission_probability > 0.1
    assert r.verdict().startswith("no violation in the") and "NOT EXHAUSTIVE" in r.verdict()


@pytest.mark.parametrize("fault", sorted(f.value for f in Fault))
def test_bitstate_counterexample_is_the_exact_searchs_shortest_one(fault: str) -> None:
    """Bitstate keeps no states of earlier levels: its counterexample is re-run from the step
    indices, and is the exact search's shortest counterexample, action for action."""
    name = configs.FAULT_CONFIGS[Fault(fault)]
    exact = Explorer(configs.build_system(name, fault)).bfs()
    bits = Explorer(configs.build_system(name, fault)).with_bitstate(22).bfs()
    assert exact.violation is not None and bits.violation is not None
    assert bits.violation.name == exact.violation.name
    assert bits.violation.path.actions == exact.violation.path.actions
    assert bits.violation.path.states == exact.violation.path.states


def test_bitstate_with_symmetry_reduces_and_replays() -> None:
    model = ism_unsequenced(Fault.LGR_REUSE_PEER_MISMATCH)
    r = Explorer(model).with_bitstate(20).bfs()
    exact = Explorer(ism_unsequenced(Fault.LGR_REUSE_PEER_MISMATCH)).bfs()
    assert r.symmetry_members == 2 and r.violation is not None
    assert verdicts(r) == verdicts(exact)
    assert replays(model, r.violation.path)


def test_bitstate_refused_where_it_cannot_run(tmp_path: Path) -> None:
    model = configs.build_system("small")
    for ex, why in (
        (Explorer(model).with_bitstate(20).with_graph(), "state graph"),
        (Explorer(model).with_bitstate(20).with_workers(2), "sequentially"),
        (Explorer(model).with_bitstate(20).with_fingerprints(), "pick one"),
        (Explorer(model).with_bitstate(20).with_checkpoint(str(tmp_path / "c")), "checkpoint"),
    ):
        with pytest.raises(ValueError, match=why):
            ex.bfs()


# -- checkpoint and resume -------------------------------------------------------------------


def same_result(a: ExploreResult, b: ExploreResult) -> None:
    assert (a.unique_state_count, a.transition_count, a.max_depth) == (
        b.unique_state_count,
        b.transition_count,
        b.max_depth,
    )
    assert a.coverage == b.coverage and a.never_fired == b.never_fired
    assert (a.ok, a.complete, a.boundary_states) == (b.ok, b.complete, b.boundary_states)
    for name, d in a.examples.items():
        e = b.examples[name]
        assert (d is None) == (e is None)
        if d is not None and e is not None:
            assert d.path.actions == e.path.actions
    assert (a.violation is None) == (b.violation is None)
    if a.violation is not None and b.violation is not None:
        assert a.violation.name == b.violation.name
        assert a.violation.path.actions == b.violation.path.actions


@pytest.mark.parametrize(
    ("name", "fault", "cut"),
    [
        ("small", None, 1_000),
        ("trio", None, 300),
        ("reference", "unregister-while-attached", 200),
    ],
)
def test_interrupted_then_resumed_search_equals_one_uninterrupted_run(
    name: str, fault: str | None, cut: int, tmp_path: Path
) -> None:
    """A search stopped by --max-states with a checkpoint, then resumed from it, ends with the
    counts, coverage, examples and counterexample of one uninterrupted run (also with the
    symmetry reduction, and with a violation found after the resume)."""
    ck = str(tmp_path / "run.ckpt")
    first = Explorer(configs.build_system(name, fault)).bounded(max_states=cut)
    part = first.with_checkpoint(ck).bfs()
    assert not part.complete and part.stop_reason == "max-states" and Path(ck).exists()
    resumed = Explorer(configs.build_system(name, fault)).resume(ck).bfs()
    whole = Explorer(configs.build_system(name, fault)).bfs()
    assert resumed.resumed
    same_result(resumed, whole)


def test_resume_twice_through_two_interruptions(tmp_path: Path) -> None:
    ck = str(tmp_path / "c")
    Explorer(configs.build_system("small")).bounded(max_states=800).with_checkpoint(ck).bfs()
    mid = (
        Explorer(configs.build_system("small"))
        .bounded(max_states=2_000)
        .with_checkpoint(ck)
        .resume(ck)
        .bfs()
    )
    assert not mid.complete and mid.unique_state_count >= 2_000
    end = Explorer(configs.build_system("small")).resume(ck).bfs()
    same_result(end, Explorer(configs.build_system("small")).bfs())


def test_periodic_checkpoint_is_written_at_level_starts(tmp_path: Path) -> None:
    """With a tiny period every level start saves; the run's own result is unchanged and the
    last checkpoint resumes to the same end."""
    ck = str(tmp_path / "c")
    r = Explorer(configs.build_system("small")).with_checkpoint(ck, every_seconds=1e-9).bfs()
    assert r.complete and Path(ck).exists()
    header, payload = checkpoint.read(ck)
    assert header["version"] == checkpoint.VERSION and payload["lo"] > 0
    same_result(Explorer(configs.build_system("small")).resume(ck).bfs(), r)


def _checkpoint_of(tmp_path: Path, name: str = "small") -> str:
    ck = str(tmp_path / f"{name}.ckpt")
    Explorer(configs.build_system(name)).bounded(max_states=500).with_checkpoint(ck).bfs()
    return ck


def test_resume_refuses_another_config_or_fault(tmp_path: Path) -> None:
    ck = _checkpoint_of(tmp_path)
    with pytest.raises(checkpoint.CheckpointError, match="config small, fault none, not for "):
        Explorer(configs.build_system("tiny")).resume(ck).bfs()
    with pytest.raises(checkpoint.CheckpointError, match="merged-ignores-cons"):
        Explorer(configs.build_system("small", "merged-ignores-cons")).resume(ck).bfs()
    other = replace(configs.get_preset("small").config, chan_cap=2)
    with pytest.raises(checkpoint.CheckpointError, match="other parameters"):
        Explorer(System(other, name="small")).resume(ck).bfs()


def test_resume_refuses_another_symmetry_setting(tmp_path: Path) -> None:
    ck = str(tmp_path / "t")
    Explorer(configs.build_system("trio")).bounded(max_states=200).with_checkpoint(ck).bfs()
    with pytest.raises(checkpoint.CheckpointError, match="symmetry reduction was on"):
        Explorer(configs.build_system("trio")).with_symmetry(False).resume(ck).bfs()


@pytest.mark.parametrize(
    ("damage", "why"),
    [
        (lambda b: b"not a checkpoint\n" + b, "not an smcd-check checkpoint"),
        (lambda b: b[: len(b) // 2], "truncated or corrupt"),
        (lambda b: b[:-10] + bytes(10), "truncated or corrupt"),
        (lambda b: b.replace(b'"version": 1', b'"version": 9', 1), "version 9"),
        (lambda b: b.replace(b"{", b"[", 1), "header"),
    ],
)
def test_resume_refuses_a_damaged_file_with_a_clear_error(
    tmp_path: Path, damage: Any, why: str
) -> None:
    ck = Path(_checkpoint_of(tmp_path))
    ck.write_bytes(damage(ck.read_bytes()))
    with pytest.raises(checkpoint.CheckpointError, match=why):
        Explorer(configs.build_system("small")).resume(str(ck)).bfs()
    with pytest.raises(checkpoint.CheckpointError, match="cannot read"):
        Explorer(configs.build_system("small")).resume(str(tmp_path / "missing")).bfs()


def test_checkpoint_refused_where_it_cannot_run(tmp_path: Path) -> None:
    ck = str(tmp_path / "c")
    with pytest.raises(ValueError, match="state graph"):
        Explorer(configs.build_system("small")).with_checkpoint(ck).with_graph().bfs()
    with pytest.raises(ValueError, match="sequentially"):
        Explorer(configs.build_system("small")).with_checkpoint(ck).with_workers(2).bfs()


def test_ctrl_c_saves_a_checkpoint_that_resumes_to_the_uninterrupted_result(
    tmp_path: Path,
) -> None:
    """Ctrl-C (KeyboardInterrupt, raised here from the progress callback in the middle of a
    level) stops the search with a partial result and saves the last level start."""
    ck = str(tmp_path / "c")
    calls: list[int] = []

    def interrupt(p: Any) -> None:
        if p.states >= 1_500 and not calls:  # once: the final report is not interrupted
            calls.append(p.states)
            raise KeyboardInterrupt

    part = (
        Explorer(configs.build_system("small"))
        .bounded(max_states=10**9)  # (a bound makes the search look at the clock every state)
        .with_progress(interrupt, interval=0.0)
        .with_checkpoint(ck)
        .bfs()
    )
    assert part.stop_reason == "interrupted" and Path(ck).exists()
    _header, payload = checkpoint.read(ck)
    assert 0 < len(payload["states"]) <= part.unique_state_count
    same_result(
        Explorer(configs.build_system("small")).resume(ck).bfs(),
        Explorer(configs.build_system("small")).bfs(),
    )


def test_symmetry_needs_the_components_of_the_memo() -> None:
    """Without the memo the state is one opaque component: nothing to swap, so asked for
    it is an error and by default the search stores every state."""
    with pytest.raises(ValueError, match="needs the memo"):
        Explorer(configs.build_system("trio")).with_memo(False).with_symmetry(True).bfs()
    r = Explorer(configs.build_system("trio")).with_memo(False).bfs()
    assert r.symmetry_members == 0 and r.unique_state_count == 4_156


def test_checkpoint_with_fingerprint_storage_resumes(tmp_path: Path) -> None:
    ck = str(tmp_path / "c")
    ex = Explorer(configs.build_system("small")).with_fingerprints().bounded(max_states=900)
    ex.with_checkpoint(ck).bfs()
    resumed = Explorer(configs.build_system("small")).with_fingerprints().resume(ck).bfs()
    same_result(resumed, Explorer(configs.build_system("small")).bfs())


def test_quad_reduced_count_is_pinned() -> None:
    """The symmetry benchmark's reduced count (its full count, 96,289, takes about 25 CPU-s:
    bench/bigspace_bench.py measures it)."""
    r = Explorer(configs.build_system("quad")).bfs()
    assert r.complete and r.ok and r.symmetry_members == 4
    assert r.unique_state_count == configs.get_preset("quad").reachable == 4_146
