"""``smcd-check conform`` as a CI step: verdict options, exit codes and one-line reasons, report
outputs, and every bad input failing up front with exit 2 (issue 16's conform items)."""

from __future__ import annotations

import json
import textwrap
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
from click.testing import CliRunner

from smcd_check.cli.main import cli


def _run(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(cli, ["conform", *args])
    return result.exit_code, result.stdout, result.stderr


def _one_line(err: str) -> bool:
    return err.strip().count("\n") == 0 and "Traceback" not in err


@pytest.fixture()
def module_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A folder on sys.path for throwaway ``module:factory`` targets."""
    monkeypatch.syspath_prepend(str(tmp_path))
    return tmp_path


def _module(folder: Path, name: str, body: str) -> str:
    (folder / f"{name}.py").write_text(textwrap.dedent(body))
    return name


# ------------------------------------------------------------------------------ verdict options


def test_every_case_unsupported_is_not_a_pass() -> None:
    """A target that supports nothing the selection needs checked nothing: exit 1 and why."""
    from smcd_check.conformance.catalogue.registry import catalogue

    n = sum(1 for c in catalogue() if c.area.value == "clc")
    code, out, _ = _run("--target", "model", "--area", "clc", "--lockstep", "0")
    assert code == 1
    assert out.strip().splitlines()[-1].startswith(f"FAIL: nothing was checked: all {n} cases")


def test_a_selection_matching_no_case_is_a_usage_error_before_loading() -> None:
    code, _, err = _run("--target", "zoo:nope", "-k", "nomatch*")
    assert code == 2 and _one_line(err) and "no case matches -k 'nomatch*'" in err


def test_strict_turns_non_strict_into_a_failure(module_dir: Path) -> None:
    """A device that refuses an unknown token with ENOENT instead of EINVAL: NON-STRICT passes
    by default, fails under --strict, with the case named on the last line."""
    name = _module(module_dir, "enoent_target", """
        from smcd_check.conformance.targets.adapter import Observation
        from smcd_check.conformance.targets.model_target import ModelTarget

        class Loose(ModelTarget):
            def apply(self, op):
                obs = super().apply(op)
                if not obs.ok and obs.error == "EINVAL" and op.name == "dev_read_dmb":
                    return Observation.failure("ENOENT", "no such token")
                return obs

        def make():
            return Loose(name="loose")
        """)
    args = ("--target", f"{name}:make", "-k", "lifecycle.dmb.released-memory-gone",
            "--lockstep", "0")
    code, out, _ = _run(*args)
    assert code == 0 and "NON-STRICT" in out
    code, out, _ = _run(*args, "--strict")
    last = out.strip().splitlines()[-1]
    assert code == 1 and last.startswith("FAIL: --strict: 1 NON-STRICT")
    assert "lifecycle.dmb.released-memory-gone" in last


def test_require_refuses_unknown_names_and_fails_on_a_missing_capability() -> None:
    code, _, err = _run("--target", "model", "--require", "devce")
    assert code == 2 and _one_line(err) and "unknown capability 'devce'" in err
    code, out, _ = _run("--target", "model", "--area", "lifecycle", "--lockstep", "0",
                        "--require", "device,clc")
    assert code == 1
    assert out.strip().splitlines()[-1] == (
        "FAIL: the target lacks required capability clc (it declares cdc-inject, conn-copy, "
        "conn-merged, conn-state, conn-steps, device, device-nocopy, lgr-lifecycle, "
        "link-group, urgent)")
    code, out, _ = _run("--target", "model", "--area", "lifecycle", "--lockstep", "0",
                        "--require", "device")
    assert code == 0 and out.strip().splitlines()[-1].startswith("PASS: ")


def test_max_unsupported_share() -> None:
    args = ("--target", "model", "--area", "lifecycle", "--area", "clc", "--lockstep", "0")
    code, out, _ = _run(*args)
    assert code == 0
    # 57 clc cases UNSUPPORTED of 119 (the model has no CLC codec): 48%
    code, out, _ = _run(*args, "--max-unsupported", "40%")
    assert code == 1 and "more than the 40% allowed" in out.strip().splitlines()[-1]
    code, _, err = _run(*args, "--max-unsupported", "150%")
    assert code == 2 and _one_line(err) and "--max-unsupported" in err


# ------------------------------------------------------------------------------ hardening


def test_an_unwritable_save_trace_fails_before_the_run() -> None:
    code, _, err = _run("--target", "model", "--save-trace", "/nonexistent/x.json")
    assert code == 2 and _one_line(err)
    assert "folder '/nonexistent' does not exist" in err


def test_an_unparsable_command_line_is_one_line() -> None:
    code, _, err = _run("--target", "cmd:python3 'oops")
    assert code == 2 and _one_line(err) and "cannot parse the command line" in err


@pytest.mark.parametrize(("body", "words"), [
    ("import sys\nsys.exit(7)\n", "it called sys.exit(7)"),
    ("def make():\n    raise SystemExit(9)\n", "it called sys.exit(9)"),
    ("from smcd_check.conformance.targets.adapter import TargetError\n"
     "def make():\n    raise TargetError('no device here')\n", "TargetError: no device here"),
])
def test_a_target_module_that_exits_or_fails_to_build_is_exit_2(
        module_dir: Path, body: str, words: str) -> None:
    name = _module(module_dir, f"bad_{abs(hash(body)) % 10**8}", body)
    code, _, err = _run("--target", f"{name}:make")
    assert code == 2 and _one_line(err) and words in err


def test_reset_or_apply_raising_is_an_error_per_case_never_a_traceback(
        module_dir: Path) -> None:
    """A module target whose reset() or apply() raises: each case (and the lockstep walk) is an
    ERROR naming the exception; the run ends with exit 1, not a traceback."""
    name = _module(module_dir, "raising_target", """
        from smcd_check.conformance.targets.model_target import ModelTarget

        class Raising(ModelTarget):
            def __init__(self, where):
                self.where = where
                super().__init__(name="raising")

            def reset(self):
                if self.where == "reset" and hasattr(self, "conns"):
                    raise RuntimeError("reset exploded")
                super().reset()

            def apply(self, op):
                if self.where == "apply":
                    raise ZeroDivisionError("apply exploded")
                return super().apply(op)

        def in_reset():
            return Raising("reset")

        def in_apply():
            return Raising("apply")
        """)
    for factory, words in (("in_reset", "reset raised RuntimeError: reset exploded"),
                           ("in_apply", "raised ZeroDivisionError: apply exploded")):
        code, out, err = _run("--target", f"{name}:{factory}", "--area", "lifecycle",
                              "--area", "lockstep", "--lockstep", "3", "--json")
        assert code == 1 and "Traceback" not in out + err
        doc = json.loads(out)
        verdicts = {r["id"]: r for r in doc["results"]}
        assert verdicts["lockstep.random.walk"]["verdict"] == "ERROR"
        assert all(r["verdict"] == "ERROR" and words in r["message"]
                   for r in doc["results"]), [r["message"] for r in doc["results"]][:3]


# ------------------------------------------------------------------------------ outputs


def test_reports_repeatable_junit_totals_and_html_in_one_run(tmp_path: Path) -> None:
    junit, page, js = tmp_path / "r.xml", tmp_path / "r.html", tmp_path / "r.json"
    code, _, err = _run("--target", "zoo:move-no-bounds", "--area", "lifecycle",
                          "--lockstep", "0", "--report", f"junit:{junit}",
                          "--report", f"html:{page}", "--report", f"json:{js}")
    assert code == 1
    root = ET.fromstring(junit.read_text())
    assert root.tag == "testsuites"
    assert int(root.get("tests", "0")) == len(_lifecycle_cases())
    assert int(root.get("failures", "0")) >= 1
    assert root.get("errors") == "0" and root.get("skipped") == "0"
    html = page.read_text()
    assert "overflow-wrap:anywhere" in html and "FAIL</b>:" in html
    doc = json.loads(js.read_text())
    assert doc["verdict"]["passed"] is False and doc["verdict"]["culprits"]
    assert all(r["explanation"] for r in doc["results"])
    assert "report written to" in err
    code, _, err = _run("--target", "model", "--report", "xml:r.xml")
    assert code == 2 and _one_line(err)
    code, _, err = _run("--target", "model", "--report", "json", "--report", "html")
    assert code == 2 and "only one --report may go to stdout" in err


def test_each_case_is_explained_in_the_terminal_and_in_json() -> None:
    code, out, _ = _run("--target", "zoo:move-no-bounds", "-k", "lifecycle.move.bounds-*",
                        "--lockstep", "0", "-v")
    assert code == 1
    assert "why: a move past the DMB end is -EINVAL and copies nothing" in out
    assert "net/smc/smc_loopback.c smc_lo_move_data" in out
    code, out, _ = _run("--target", "zoo:move-no-bounds", "-k", "lifecycle.move.bounds-*",
                        "--lockstep", "0", "--json")
    results = json.loads(out)["results"]
    fail = next(r for r in results if r["verdict"] == "FAIL")
    assert "the spec observes error EINVAL" in fail["explanation"]
    ok = next(r for r in results if r["verdict"] == "OK")
    assert "agrees with the spec at all" in ok["explanation"]


def _lifecycle_cases() -> list[object]:
    from smcd_check.conformance.catalogue.registry import catalogue

    return [c for c in catalogue() if c.area.value == "lifecycle"]


def test_list_is_plain_lines_when_piped() -> None:
    code, out, _ = _run("--list", "--area", "lifecycle")
    lines = out.strip().splitlines()
    # the device cases, the link-group lens cases and the link-group lifecycle cases
    assert code == 0 and len(lines) == len(_lifecycle_cases())
    assert lines[0].split("\t")[:3] == ["lifecycle.dmb.register", "lifecycle", "device"]


def test_a_lockstep_failure_prints_its_whole_shrunk_sequence() -> None:
    code, out, _ = _run("--target", "zoo:move-no-bounds", "--area", "lockstep",
                        "--lockstep", "40")
    assert code == 1
    assert "shrunk sequence (" in out
    seq = out[out.index("shrunk sequence ("):]
    assert "dev_register_dmb(" in seq and "dev_move_data(" in seq


@pytest.mark.parametrize("walk", ["lockstep.handshake.walk", "lockstep.random.walk"])
def test_k_selects_one_lockstep_walk_by_the_id_the_reports_print(walk: str) -> None:
    """The reports name each walk by its id; -k with that id runs that walk alone (the
    handshake walk's id used to be refused as matching nothing)."""
    rc, out, _ = _run("--target", "spec", "-k", walk, "--lockstep", "3", "--json")
    assert rc == 0
    assert [c["id"] for c in json.loads(out)["results"]] == [walk]
