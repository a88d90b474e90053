"""`smcd-check replay`: exit 0 when a trace replays as recorded, 1 when it diverges, 2 when the
file is malformed."""

from __future__ import annotations

import json
from pathlib import Path

from click.testing import CliRunner

from smcd_check.cli.explore import command as explore
from smcd_check.cli.replay import command as replay


def run(*args: str) -> tuple[int, str]:
    res = CliRunner().invoke(explore, list(args))
    return res.exit_code, res.output


def test_replay_of_a_tampered_trace_diverges(tmp_path: Path) -> None:
    trace = tmp_path / "t.json"
    run("--config", "small", "--fault", "merged-ignores-cons", "--quiet", "--trace-out", str(trace))
    doc = json.loads(trace.read_text())
    doc["fault"] = None  # the correct spec forbids the overwriting write
    trace.write_text(json.dumps(doc))
    rep = CliRunner().invoke(replay, [str(trace)])
    assert rep.exit_code == 1 and "DIVERGED" in rep.output


def test_replay_of_a_malformed_file_is_exit_2(tmp_path: Path) -> None:
    bad = tmp_path / "bad.json"
    bad.write_text('{"format": "smcd-check-trace", "version": 7}')
    rep = CliRunner().invoke(replay, [str(bad)])
    assert rep.exit_code == 2 and "version" in rep.output


def test_replay_json_output_reports_the_reproduction(tmp_path: Path) -> None:
    trace = tmp_path / "t.json"
    run("--fault", "comp-ignores-wrap", "--quiet", "--trace-out", str(trace))
    rep = CliRunner().invoke(replay, [str(trace), "--json"])
    doc = json.loads(rep.output)
    assert rep.exit_code == 0 and doc["ok"] and doc["steps_replayed"] == doc["total_steps"] == 7
