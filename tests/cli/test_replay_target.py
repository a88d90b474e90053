"""`smcd-check replay TRACE --target SPEC`: a shrunk lockstep trace replays against any target.

The fixture `data/lockstep_merged_frees_at_send.json` was written by
`smcd-check conform --target zoo:merged-frees-at-send --area lockstep --lockstep 30
--save-trace ...`: the lockstep test shrank the mutant's bug (merged mode frees sndbuf space when
the CDC is sent instead of when the peer's consumer cursor comes back) to 5 steps.
"""

from __future__ import annotations

import json
from pathlib import Path

from click.testing import CliRunner

from smcd_check.cli.explore import command as explore
from smcd_check.cli.replay import command as replay

TRACE = Path(__file__).parent / "data" / "lockstep_merged_frees_at_send.json"


def test_the_clean_model_agrees_with_the_spec_at_every_step() -> None:
    res = CliRunner().invoke(replay, [str(TRACE), "--target", "model"])
    assert res.exit_code == 0, res.output
    assert "OK" in res.output and "5 operations agree" in res.output


def test_the_mutant_still_fails_at_the_recorded_step_naming_the_field() -> None:
    res = CliRunner().invoke(replay, [str(TRACE), "--target", "zoo:merged-frees-at-send"])
    assert res.exit_code == 1, res.output
    assert "step 4" in res.output and "sndbuf_space" in res.output


def test_json_output_carries_the_verdict() -> None:
    res = CliRunner().invoke(replay, [str(TRACE), "--target", "model", "--json"])
    doc = json.loads(res.output)
    assert res.exit_code == 0 and doc["target"] == "model"


def test_a_conformance_trace_without_target_says_to_give_one() -> None:
    res = CliRunner().invoke(replay, [str(TRACE)])
    assert res.exit_code == 2
    assert "--target" in res.output


def test_an_unknown_target_is_exit_2() -> None:
    res = CliRunner().invoke(replay, [str(TRACE), "--target", "zoo:no-such-mutant"])
    assert res.exit_code == 2
    assert "no-such-mutant" in res.output


def test_an_explorer_trace_runs_on_a_target_through_the_mapping(tmp_path: Path) -> None:
    """An explorer counterexample is a regression test for implementations: the clean model
    agrees with the spec along it, the mutant with the same bug class does not."""
    trace = tmp_path / "t.json"
    CliRunner().invoke(explore, ["--config", "small", "--fault", "merged-ignores-cons",
                                 "--quiet", "--trace-out", str(trace)])
    ok = CliRunner().invoke(replay, [str(trace), "--target", "model"])
    assert ok.exit_code == 0, ok.output
    bad = CliRunner().invoke(replay, [str(trace), "--target", "zoo:merged-frees-at-send"])
    assert bad.exit_code == 1, bad.output
    assert "FAIL" in bad.output and "trace step" in bad.output
