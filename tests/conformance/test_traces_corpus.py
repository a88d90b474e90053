"""The regression corpus (issue 17): the project's corpus covers every explorer fault and every
zoo mutant, each entry fails on its faulty target and passes on the spec and the model; ddmin
gives 1-minimal scripts; ``trace save`` adds shrunk entries with their charts; the pytest plugin
runs a corpus folder as tests with the chart attached to a failure."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from smcd_check.cli.trace import command as trace_cli
from smcd_check.conformance.runner.run import Verdict
from smcd_check.conformance.targets.load import load_target
from smcd_check.conformance.targets.zoo import MUTANTS
from smcd_check.conformance.traces.corpus import FAULT_MUTANTS, entries, project_corpus
from smcd_check.conformance.traces.replay import load, replay
from smcd_check.conformance.traces.shrink import ddmin
from smcd_check.spec.faults import Fault

CORPUS = project_corpus()
FILES = entries(CORPUS)


def test_the_project_corpus_has_every_fault_and_every_mutant() -> None:
    names = {p.stem for p in FILES}
    mutants_in_faults = {m for m in FAULT_MUTANTS.values() if m in MUTANTS}
    for fault in Fault:
        if FAULT_MUTANTS.get(fault.value) in MUTANTS:
            assert f"fault-{fault.value}" in names, fault
    for mutant in MUTANTS:
        if mutant not in mutants_in_faults:
            assert f"zoo-{mutant}" in names, mutant
    assert all((CORPUS / f"{n}.svg").exists() for n in names), "every entry has its chart"


@pytest.mark.parametrize("path", FILES, ids=[p.stem for p in FILES])
def test_each_entry_fails_on_its_faulty_target_and_passes_on_spec_and_model(path: Path) -> None:
    trace = load(path)
    faulty = trace.doc["origin"]["target"]
    assert replay(trace, load_target(faulty)).verdict is Verdict.FAIL, faulty
    assert replay(trace, load_target("spec")).verdict is Verdict.OK
    model = replay(trace, load_target("model"))
    assert model.verdict in (Verdict.OK, Verdict.UNSUPPORTED), model.message
    if model.verdict is Verdict.UNSUPPORTED:  # the model has no CLC codec or handshake
        assert "clc" in model.message or "handshake" in model.message, model.message


def test_ddmin_finds_a_1_minimal_failing_subsequence() -> None:
    """ddmin: the result still fails, and dropping any one of its elements makes it pass."""
    def fails(xs: list[int]) -> bool:
        return {3, 11, 17} <= set(xs) and xs.index(3) < xs.index(17)

    got = ddmin(list(range(25)), fails)
    assert got == [3, 11, 17]
    assert all(not fails([x for x in got if x != y]) for y in got)


def _explore(tmp_path: Path, fault: str) -> Path:
    from smcd_check.cli.explore import command as explore

    out = tmp_path / f"{fault}.json"
    res = CliRunner().invoke(explore, ["--fault", fault, "--quiet", "--trace-out", str(out)])
    assert res.exit_code == 1, res.output
    return out


def test_trace_save_shrinks_against_the_faults_mutant_and_writes_the_chart(
        tmp_path: Path) -> None:
    trace = _explore(tmp_path, "no-consumer-update")
    corpus = tmp_path / "corpus"
    res = CliRunner().invoke(trace_cli, ["save", str(trace), "--name", "stall",
                                         "--corpus", str(corpus)])
    assert res.exit_code == 0, res.output
    assert "datapath/steps" in res.output and "->" in res.output
    doc = json.loads((corpus / "stall.json").read_text())
    assert doc["version"] == 2 and doc["name"] == "stall"
    assert doc["origin"]["target"] == "zoo:no-consumer-update"
    assert doc["origin"]["shrunk_from"] > sum(len(p["steps"]) for p in doc["plans"])
    assert (corpus / "stall.svg").read_text().startswith("<svg")
    again = CliRunner().invoke(trace_cli, ["save", str(trace), "--name", "stall",
                                           "--corpus", str(corpus)])
    assert again.exit_code == 2 and "--force" in again.output
    listed = CliRunner().invoke(trace_cli, ["list", "--corpus", str(corpus)])
    assert listed.exit_code == 0 and "stall" in listed.output


@pytest.mark.parametrize("args, words", [
    (["--name", "Bad Name"], "--name"),
    (["--name", "x", "--no-shrink", "--shrink-on", "model"], "exclude"),
    (["--name", "x", "--shrink-on", "model"], "no plan of the trace fails on model"),
    (["--name", "x", "--shrink-on", "zoo:nope"], "nope"),
])
def test_trace_save_refuses_bad_input_in_one_line(tmp_path: Path, args: list[str],
                                                   words: str) -> None:
    trace = _explore(tmp_path, "merged-ignores-cons")
    res = CliRunner().invoke(trace_cli, ["save", str(trace), "--corpus", str(tmp_path / "c"),
                                         *args])
    assert res.exit_code == 2, res.output
    assert words in res.output and len(res.output.strip().splitlines()) == 1


def test_trace_schema_and_show(tmp_path: Path) -> None:
    res = CliRunner().invoke(trace_cli, ["schema"])
    assert res.exit_code == 0 and json.loads(res.output)["properties"]["version"]["const"] == 2
    svg = tmp_path / "c.svg"
    shown = CliRunner().invoke(trace_cli, ["show", str(FILES[0]), "--msc-out", str(svg)])
    assert shown.exit_code == 0, shown.output
    assert "plan " in shown.output and svg.read_text().startswith("<svg")


def _pytest(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    (tmp_path / "test_dummy.py").write_text("def test_nothing():\n    pass\n")
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-rfs", "-p", "no:cacheprovider", "--rootdir",
         str(tmp_path), str(tmp_path), *args],
        capture_output=True, text=True, cwd=tmp_path, timeout=300)


def test_the_pytest_plugin_runs_a_corpus_with_the_chart_on_a_failure(tmp_path: Path) -> None:
    from smcd_check.conformance.targets.model_target import ModelTarget

    caps = ModelTarget.capabilities
    skipped = sum(1 for p in FILES if not any(pl.needs <= caps for pl in load(p).plans))
    ok = _pytest(tmp_path, "--smcd-target=model", f"--smcd-corpus={CORPUS}")
    assert ok.returncode == 0, ok.stdout + ok.stderr
    passed = len(FILES) - skipped + 1  # + test_dummy
    assert f"{passed} passed, {skipped} skipped" in ok.stdout
    bad = _pytest(tmp_path, "--smcd-target=zoo:merged-frees-at-send",
                  f"--smcd-corpus={CORPUS}", "-k", "merged-ignores-cons")
    assert bad.returncode == 1
    assert "corpus/fault-merged-ignores-cons" in bad.stdout
    assert ">>" in bad.stdout and "sequence chart" in bad.stdout
    charts = list((tmp_path / ".smcd-artifacts").glob("*.svg"))
    assert charts and charts[0].read_text().startswith("<svg")


def test_a_corpus_without_target_or_folder_is_a_usage_error(tmp_path: Path) -> None:
    assert _pytest(tmp_path, f"--smcd-corpus={CORPUS}").returncode == 4
    missing = _pytest(tmp_path, "--smcd-target=model", f"--smcd-corpus={tmp_path / 'none'}")
    assert missing.returncode == 4 and "does not exist" in missing.stderr


def _kernel_skip() -> str | None:
    from smcd_check.conformance.kernel import qemu as K
    from smcd_check.conformance.kernel.build import find_image

    why = K.qemu_missing()
    if why:
        return f"cannot boot the test kernel: missing {why}"
    if find_image() is None:
        return "no cached kernel image: run `smcd-check kernel build` (CI: .ci/system-deps)"
    return None


@pytest.mark.kernel
@pytest.mark.skipif(_kernel_skip() is not None, reason=str(_kernel_skip()))
def test_the_corpus_on_the_real_kernel() -> None:
    """Linux 6.12.118 in qemu runs every corpus entry its socket API can express (merged
    pairs, the socket route) and agrees with the recorded expectations; the rest is
    UNSUPPORTED with the missing capability named, never passed silently."""
    from smcd_check.conformance.kernel.target import KernelTarget

    target: Any = KernelTarget()
    try:
        outcomes = {p.stem: replay(load(p), target) for p in FILES}
    finally:
        target.close()
    ran = {n: o for n, o in outcomes.items() if o.verdict is not Verdict.UNSUPPORTED}
    assert ran, {n: o.message for n, o in outcomes.items()}
    bad = {n: o.message for n, o in ran.items() if o.verdict is not Verdict.OK}
    assert not bad, bad
    for o in outcomes.values():
        if o.verdict is Verdict.UNSUPPORTED:
            assert any(w in o.message for w in ("lacks", "no adapter operation",
                                                "cannot do it")), o.message


KERNEL_CAPTURE = Path(__file__).resolve().parents[1] / "kernel_captures" / \
    "trace-window-update.json"


def test_a_kernel_capture_compares_implementations_with_the_kernel() -> None:
    """A capture made on Linux 6.12.118 (kind capture, the kernel's observations as the
    expectations) replays without qemu: spec and model agree with the kernel, the mutant that
    never sends a window update does not."""
    trace = load(KERNEL_CAPTURE)
    assert trace.kind == "capture" and trace.doc["origin"]["kernel"].startswith("Linux 6.12")
    assert replay(trace, load_target("spec")).verdict is Verdict.OK
    assert replay(trace, load_target("model")).verdict is Verdict.OK
    bad = replay(trace, load_target("zoo:no-consumer-update"))
    assert bad.verdict is Verdict.FAIL and "peer_cons" in bad.message


def test_trace_capture_records_a_targets_observations(tmp_path: Path) -> None:
    out = tmp_path / "cap.json"
    res = CliRunner().invoke(trace_cli, ["capture", str(CORPUS / "fault-merged-ignores-cons.json"),
                                         "--target", "zoo:merged-frees-at-send",
                                         "--out", str(out)])
    assert res.exit_code == 0, res.output
    captured = load(out)
    assert captured.kind == "capture"
    assert replay(captured, load_target("zoo:merged-frees-at-send")).verdict is Verdict.OK
    assert replay(captured, load_target("model")).verdict is Verdict.FAIL


@pytest.mark.parametrize("args, words", [
    (["corpus", "--corpus", "/proc/no-such-dir", "--only", "fault-comp-ignores-wrap"],
     "cannot write"),
    (["corpus", "--corpus", "unused", "--only", "nosuch"], "no such corpus entry"),
    (["list", "--corpus", "/no/such/folder"], "does not exist"),
    (["show", "/no/such/trace.json"], "cannot read"),
])
def test_trace_subcommands_refuse_bad_input_in_one_line(args: list[str], words: str) -> None:
    res = CliRunner().invoke(trace_cli, args)
    assert res.exit_code == 2, res.output
    assert words in res.output and len(res.output.strip().splitlines()) == 1
