"""`smcd-check prove`: output lines, --only, --json, --list, exit codes."""

from __future__ import annotations

import json

from click.testing import CliRunner

from smcd_check.cli.main import cli


def invoke(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(cli, ["prove", *args])
    return result.exit_code, result.stdout, result.stderr


def test_only_one_theorem_prints_one_proved_line_and_exits_0() -> None:
    code, out, _ = invoke("--only", "add_stays_in_ring")
    assert code == 0
    lines = out.splitlines()
    assert lines[0].startswith("proved          add_stays_in_ring (")
    assert lines[-1].startswith("1 theorems: 1 as expected, 0 findings")


def test_precondition_theorem_prints_its_counterexample_and_precondition() -> None:
    code, out, _ = invoke("--only", "comp_agrees_with_add_order")
    assert code == 0
    assert "under precondition no_wrap_overflow" in out
    assert "without it, counterexample: size=" in out and "c.wrap=65535" in out


def test_only_is_repeatable_and_json_reports_each_theorem() -> None:
    code, out, _ = invoke("--json", "--only", "add_stays_in_ring", "--only", "diff_is_distance")
    assert code == 0
    doc = json.loads(out)
    assert [t["name"] for t in doc["theorems"]] == ["add_stays_in_ring", "diff_is_distance"]
    assert doc["failed"] == [] and doc["complete"] is True
    dist = doc["theorems"][1]
    assert dist["expect"] == "needs precondition" and dist["status"] == "proved"
    assert (
        dist["counterexample_without_precondition"]["true distance"]
        > dist["counterexample_without_precondition"]["size"]
    )


def test_unknown_theorem_is_a_usage_error_naming_it() -> None:
    code, _, err = invoke("--only", "no_such_theorem")
    assert code == 2
    assert "unknown theorem 'no_such_theorem' for --only" in err
    assert len(err.strip().splitlines()) == 1


def test_bad_timeout_is_a_usage_error() -> None:
    code, _, err = invoke("--timeout", "0")
    assert code == 2 and "--timeout must be a positive number" in err
    code, _, err = invoke("--timeout", "abc")
    assert code == 2


def test_list_names_every_theorem_with_its_class() -> None:
    code, out, _ = invoke("--list")
    assert code == 0
    assert "step_preserves_invariants[copy]  [holds]" in out
    assert "diff_large_is_capped_distance  [needs precondition]" in out


def test_a_failed_proof_exits_1(monkeypatch) -> None:  # type: ignore[no-untyped-def]
    import z3

    from smcd_check.spec import proofs as P

    x = z3.Int("x")
    bogus = P.Theorem(
        name="bogus",
        statement="x > 0 implies x > 1",
        expect=P.Expect.HOLDS,
        build=lambda: [P.Obligation("", x > 0, x > 1, None, (("x", x),))],
    )
    monkeypatch.setitem(P.THEOREMS_BY_NAME, "bogus", bogus)
    code, out, _ = invoke("--only", "bogus")
    assert code == 1
    assert out.startswith("COUNTEREXAMPLE  bogus (") and "x=1" in out


def test_nan_and_inf_timeouts_are_one_line_usage_errors() -> None:
    """z3 takes whole milliseconds: nan and inf used to raise ValueError / OverflowError."""
    for bad in ("nan", "inf", "-inf", "0", "1e12"):
        code, out, err = invoke("--timeout", bad, "--only", "add_stays_in_ring")
        assert code == 2, (bad, out, err)
        assert len(err.strip().splitlines()) == 1 and "--timeout" in err
        assert "Traceback" not in err


def test_ctrl_c_during_prove_exits_130_with_the_theorems_done_so_far() -> None:
    """z3 catches SIGINT itself and answers 'unknown'; that must read as an interruption
    (exit 130, a partial result), not as a theorem z3 could not decide (exit 1)."""
    import os
    import signal
    import subprocess
    import sys
    import time

    proc = subprocess.Popen(
        [sys.executable, "-c", "from smcd_check.cli.main import main; main()", "prove"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    assert proc.stdout is not None
    first = proc.stdout.readline()  # one theorem done: the run is in z3 or between theorems
    time.sleep(0.3)
    os.kill(proc.pid, signal.SIGINT)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, (first, out, err)
    assert first.startswith("proved")
    assert "interrupted after" in err and "Traceback" not in err
    assert "UNKNOWN" not in first + out
    assert "(partial: interrupted," in out
