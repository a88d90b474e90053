"""Lockstep differential runs: the model agrees with the spec; a mutant yields a shrunk,
replayable trace."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from hypothesis import settings

from smcd_check.conformance.runner.lockstep import make_machine, run_lockstep
from smcd_check.conformance.runner.replay import ReplayError, replay_against_target
from smcd_check.conformance.runner.run import Verdict
from smcd_check.conformance.targets.model_target import ModelTarget
from smcd_check.conformance.targets.zoo import load_mutant

#: a fifth of the active profile's examples: each example is a whole random walk
EXAMPLES = max(5, settings.default.max_examples // 5)

#: the machine for pytest: spec and model in lockstep (the profile decides the budget)
TestModelLockstep = make_machine(ModelTarget).TestCase
TestModelLockstep.settings = settings(settings.default,
                                      max_examples=EXAMPLES,
                                      stateful_step_count=min(
                                          settings.default.stateful_step_count, 30))


def test_the_model_survives_random_walks_against_the_spec() -> None:
    """For any sequence of socket and device operations, the model's every observation (and
    the cursors after every connection step) equals the spec's."""
    res = run_lockstep(ModelTarget(), examples=EXAMPLES)
    assert res is not None
    assert res.verdict is Verdict.OK, res.message
    assert "steps compared" in res.message


def test_walks_cover_every_area_the_model_has() -> None:
    """The model's walks drive connections from both ends, link groups, injected CDCs and the
    device, each area in walks of its own."""
    res = run_lockstep(ModelTarget(), examples=5)
    assert res is not None and res.verdict is Verdict.OK, res.message
    assert "areas: conn, lgr, inject, device" in res.message


@pytest.mark.parametrize(("mutant", "area", "words"), [
    ("dmb-leak-killed", "lgr", "lgr_"),
    # the mutant names a backwards cursor an overrun: whichever cursor the walk pushed back
    ("cdc-backwards-as-overrun", "inject", ("expected 'cons-backwards'",
                                            "expected 'prod-backwards'")),
    ("sock-leak-appfinclosewait", "conn", "freed: expected True, seen False"),
    ("clc-no-count-checks", "clc", "clc_decode"),
])
def test_a_mutant_of_each_new_area_is_caught_by_its_area_walks(
        mutant: str, area: str, words: str | tuple[str, ...]) -> None:
    """Each area's walks find the bug of a mutant of that area on their own (boundary-biased
    generators: cursors pushed over the receiver's view, the close machine's scripts from both
    ends, link-group termination, CLC fields set to 0/0x7f/0x80/0xff)."""
    res = run_lockstep(load_mutant(mutant), examples=EXAMPLES, shrink_seconds=4,
                       areas=(area,))
    assert res is not None and res.verdict is Verdict.FAIL
    alternatives = (words,) if isinstance(words, str) else words
    assert f"({area})" in res.message
    assert any(w in res.message for w in alternatives), res.message


def test_a_wrap_blind_mutant_is_caught_shrunk_saved_and_replayable(tmp_path: Path) -> None:
    """The trace names the step where the cursor arithmetic diverges; replaying it fails on
    the mutant and passes on the clean model."""
    trace = tmp_path / "wrap.json"
    res = run_lockstep(load_mutant("diff-ignores-wrap"), examples=EXAMPLES,
                       save_to=str(trace), shrink_seconds=4)
    assert res is not None and res.verdict is Verdict.FAIL
    assert "bytes_to_rcv" in res.message or "peer_rmbe_space" in res.message
    doc = json.loads(trace.read_text())
    assert doc["format"] == "smcd-check-trace" and doc["version"] == 2
    steps = doc["plans"][0]["steps"]
    assert doc["kind"] == "conformance" and steps[0]["op"] == "conn_open"
    assert all("expect" in st for st in steps)
    from smcd_check.explorer.trace import check_envelope

    assert check_envelope(doc) == 2  # the shared trace format's JSON Schema accepts it
    assert len(steps) <= 45  # shrunk (a 30-rule walk records up to ~90 steps)
    again = replay_against_target(trace, load_mutant("diff-ignores-wrap"))
    assert again.verdict is Verdict.FAIL
    assert replay_against_target(trace, ModelTarget()).verdict is Verdict.OK


@pytest.mark.parametrize(
    ("doc", "message"),
    [
        ({"format": "other"}, "field 'format' is 'other'"),
        ({"format": "smcd-check-trace", "version": 9}, "field 'version' is 9"),
        ({"format": "smcd-check-trace", "version": 1, "model": "smcd-system", "steps": []},
         "explorer trace"),
        ({"format": "smcd-check-trace", "version": 1, "kind": "conformance", "steps": []},
         "non-empty list"),
        ({"format": "smcd-check-trace", "version": 1, "kind": "conformance",
          "steps": [{"op": "warp"}]}, "trace step 0: unknown operation"),
    ],
)
def test_replay_refuses_bad_traces_with_a_clear_message(doc: dict, message: str) -> None:
    with pytest.raises(ReplayError, match=message):
        replay_against_target(doc, ModelTarget())


def test_replay_of_an_unreadable_file_names_it(tmp_path: Path) -> None:
    bad = tmp_path / "t.json"
    bad.write_text("{not json")
    with pytest.raises(ReplayError, match="is not JSON"):
        replay_against_target(bad, ModelTarget())
    with pytest.raises(ReplayError, match="cannot read trace"):
        replay_against_target(tmp_path / "missing.json", ModelTarget())


def test_replay_cli_helper_gives_exit_codes_and_a_line(tmp_path: Path) -> None:
    """What `smcd-check replay TRACE --target` prints: 1 + the differing step on the mutant,
    0 on the model; a bad target is a TargetLoadError (exit 2)."""
    from smcd_check.conformance.runner.replay import replay_cli
    from smcd_check.conformance.targets.adapter import TargetLoadError

    trace = tmp_path / "t.json"
    trace.write_text(json.dumps({
        "format": "smcd-check-trace", "version": 1, "kind": "conformance",
        "steps": [{"op": "dev_register_dmb", "args": {"size": 16384}, "bind": "d1"},
                  {"op": "dev_move_data", "args": {"token": {"$ref": "d1.token"},
                   "offset": 16380, "data": "00" * 8, "signal": True}, "strict": True}]}))
    code, text, doc = replay_cli(str(trace), "zoo:move-no-bounds")
    assert code == 1 and "FAIL" in text and "EINVAL" in text
    assert doc["verdict"] == "FAIL"
    code, text, _ = replay_cli(str(trace), "model")
    assert code == 0 and "OK" in text
    with pytest.raises(TargetLoadError):
        replay_cli(str(trace), "zoo:nope")
