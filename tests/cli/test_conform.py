"""``smcd-check conform``: listing, running, reports, exit codes 0 / 1 / 2."""

from __future__ import annotations

import json
from pathlib import Path

from click.testing import CliRunner

from smcd_check.cli.main import cli


def _run(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(cli, ["conform", *args])
    return result.exit_code, result.stdout, result.stderr


def test_list_shows_ids_areas_and_kernel_sources() -> None:
    code, out, _ = _run("--list", "--json")
    assert code == 0
    cases = json.loads(out)
    ids = {c["id"] for c in cases}
    assert {"clc.proposal.eid-cnt-over-max", "lifecycle.attach.outlives-owner",
            "datapath.copy.flow.update-below-limit", "handshake.server.no-ueid"} <= ids
    assert all(c["source"] and c["area"] for c in cases)
    code, out, _ = _run("--list", "--area", "lifecycle")
    assert code == 0 and "lifecycle.move.bounds-past-end" in out and "clc." not in out


def test_list_zoo_names_each_mutant_and_its_kernel_fix() -> None:
    code, out, _ = _run("--list-zoo", "--json")
    assert code == 0
    zoo = {m["name"]: m for m in json.loads(out)}
    assert len(zoo) >= 10
    assert "validate offset and size in move_data" in zoo["move-no-bounds"]["kernel_fix"]


def test_the_model_passes_exit_0() -> None:
    code, out, _ = _run("--target", "model", "--area", "lifecycle", "--lockstep", "0")
    assert code == 0, out
    assert "lifecycle" in out and "FAIL" in out  # the column header


def test_a_mutant_fails_exit_1_naming_the_case_and_expected_vs_seen() -> None:
    code, out, _ = _run("--target", "zoo:move-no-bounds", "--area", "lifecycle",
                        "--lockstep", "0")
    assert code == 1
    assert "lifecycle.move.bounds-past-end" in out
    assert "expected error EINVAL" in out


def test_a_bad_target_is_exit_2_with_one_line() -> None:
    code, _, err = _run("--target", "zoo:nope")
    assert code == 2
    assert err.strip().count("\n") == 0 and "unknown zoo mutant 'nope'" in err
    code, _, err = _run("--target", "cmd:/no/such/program")
    assert code == 2 and "cannot run '/no/such/program'" in err
    code, _, err = _run("--area", "clc")
    assert code == 2 and "no target" in err


def test_report_out_needs_a_format(tmp_path: Path) -> None:
    code, _, err = _run("--target", "spec", "--report-out", str(tmp_path / "r.json"))
    assert code == 2 and "--report-out needs --report" in err


def test_reports_are_written_where_asked(tmp_path: Path) -> None:
    html, junit = tmp_path / "r.html", tmp_path / "r.xml"
    code, _, err = _run("--target", "zoo:unregister-frees-attached", "--area", "lifecycle",
                        "--lockstep", "0", "--report", "html", "--report-out", str(html))
    assert code == 1 and "html report written to" in err
    page = html.read_text()
    assert "<svg" in page and "lifecycle.attach.outlives-owner" in page
    code, _, _ = _run("--target", "spec", "--area", "clc", "--report", "junit",
                      "--report-out", str(junit))
    assert code == 0 and "<testsuites" in junit.read_text()


def test_json_output_and_lockstep_result() -> None:
    code, out, _ = _run("--target", "model", "--area", "lockstep", "--lockstep", "5", "--json")
    assert code == 0
    doc = json.loads(out)
    assert [r["id"] for r in doc["results"]] == ["lockstep.random.walk"]
    assert doc["results"][0]["verdict"] == "OK"


def test_kill_table_markdown_lists_mutant_fix_and_killers() -> None:
    code, out, _ = _run("--kill-table", "--markdown", "--lockstep", "0",
                        "-k", "lifecycle.move.*")
    assert code == 1  # with only the move_data cases most mutants survive
    assert "| `zoo:move-no-bounds` |" in out
    row = next(line for line in out.splitlines() if "`zoo:move-no-bounds`" in line)
    assert "`lifecycle.move.bounds-past-end`" in row
    assert "**not killed**" in out
