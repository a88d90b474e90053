"""`smcd-check explore --bitstate / --symmetry / --checkpoint / --resume` (cli/explore_bigspace)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from smcd_check.cli.explore import command as explore


def run(*args: str) -> tuple[int, str]:
    res = CliRunner().invoke(explore, [*args, "--quiet"])
    return res.exit_code, res.output


def test_symmetric_config_is_reduced_by_default_and_says_so() -> None:
    code, out = run("--config", "trio")
    assert code == 0
    assert "OK: all properties hold in all 736 reachable states" in out
    assert "symmetry: 3 interchangeable pairs" in out
    code, out = run("--config", "trio", "--no-symmetry", "--json")
    doc = json.loads(out)
    assert code == 0 and doc["states"] == 4_156 and doc["symmetry_members"] == 0


def test_symmetric_config_with_liveness_stores_every_state_and_says_so() -> None:
    code, out = run("--config", "trio", "--liveness")
    assert code == 0 and "all 4,156 reachable states" in out
    assert "symmetry: not applied" in out


def test_bitstate_run_says_it_was_not_exhaustive_and_gives_the_risk() -> None:
    code, out = run("--config", "small", "--bitstate", "20")
    assert code == 0
    assert "NOT EXHAUSTIVE" in out and "probability of omission" in out
    assert "expected states missed" in out
    code, out = run("--config", "small", "--bitstate", "12", "--hashes", "2", "--json")
    doc = json.loads(out)
    assert code == 0 and doc["bitstate"]["exhaustive"] is False
    assert doc["bitstate"]["bits"] == 12 and doc["bitstate"]["hashes"] == 2
    assert doc["bitstate"]["expected_missed"] > 0


def test_bitstate_finds_a_fault_and_writes_a_replayable_trace(tmp_path: Path) -> None:
    trace = tmp_path / "t.json"
    code, out = run("--fault", "comp-ignores-wrap", "--bitstate", "20", "--trace-out", str(trace))
    assert code == 1 and "VIOLATION" in out and "(7 steps, shortest" in out
    from smcd_check.cli.replay import command as replay

    res = CliRunner().invoke(replay, [str(trace)])
    assert res.exit_code == 0, res.output


@pytest.mark.parametrize(
    ("args", "why"),
    [
        (["--bitstate", "20", "--liveness"], "--bitstate cannot build the state graph"),
        (["--bitstate", "20", "--workers", "2"], "--bitstate runs sequentially"),
        (["--bitstate", "9"], "--bitstate"),
        (["--hashes", "3"], "--hashes needs --bitstate"),
        (["--checkpoint-every", "5"], "--checkpoint-every needs --checkpoint"),
        (["--symmetry"], "declares no interchangeable members"),
        (["--config", "trio", "--symmetry", "--workers", "2"], "--symmetry runs sequentially"),
        (["--simulate", "--bitstate", "20"], "applies to the exhaustive search"),
        (["--serve", "--resume", "x"], "applies to the exhaustive search"),
        (["--liveness", "--checkpoint", "c"], "cannot save the state graph"),
        (["--bitstate", "20", "--checkpoint", "c"], "cannot be checkpointed"),
    ],
)
def test_unsupported_combinations_are_one_line_errors(args: list[str], why: str) -> None:
    res = CliRunner().invoke(explore, [*args, "--quiet"])
    assert res.exit_code == 2
    assert why in res.output
    assert "Traceback" not in res.output


def test_checkpointed_run_resumes_to_the_uninterrupted_result(tmp_path: Path) -> None:
    ck = tmp_path / "small.ckpt"
    code, out = run("--config", "small", "--max-states", "1000", "--checkpoint", str(ck))
    assert code == 0 and "stopped: max-states" in out
    assert f"checkpoint written to {ck}" in out and ck.exists()
    code, out = run("--config", "small", "--resume", str(ck), "--json")
    resumed = json.loads(out)
    code2, out2 = run("--config", "small", "--json", "--workers", "1")
    whole = json.loads(out2)
    assert code == code2 == 0 and resumed["resumed"]
    for key in ("states", "transitions", "depth", "coverage", "sometimes", "verdict", "ok"):
        assert resumed[key] == whole[key], key


def test_resume_with_another_config_is_a_one_line_error(tmp_path: Path) -> None:
    ck = tmp_path / "c"
    run("--config", "small", "--max-states", "500", "--checkpoint", str(ck))
    res = CliRunner().invoke(explore, ["--config", "tiny", "--resume", str(ck), "--quiet"])
    assert res.exit_code == 2
    assert "was written for config small, fault none, not for config tiny" in res.output
    bad = tmp_path / "bad"
    bad.write_text("hello")
    res = CliRunner().invoke(explore, ["--resume", str(bad), "--quiet"])
    assert res.exit_code == 2 and "not an smcd-check checkpoint" in res.output
