"""The pytest plugin: the catalogue as pytest items (skip for UNSUPPORTED, fail with expected vs
seen for FAIL), tested in a separate pytest process."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path


def _pytest(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    (tmp_path / "test_dummy.py").write_text("def test_nothing():\n    pass\n")
    return subprocess.run(
        # The plugin is loaded by its pytest11 entry point (pyproject), as a user gets it.
        [sys.executable, "-m", "pytest",
         "-q", "-rfs", "-p", "no:cacheprovider", "--rootdir", str(tmp_path), str(tmp_path),
         *args],
        capture_output=True, text=True, cwd=tmp_path, timeout=300,
    )


def test_the_model_passes_as_pytest_items_and_unsupported_cases_are_skipped(
        tmp_path: Path) -> None:
    proc = _pytest(tmp_path, "--smcd-target=smcd_check.conformance.targets.model_target:make_model",
                   "--smcd-area=lifecycle", "--smcd-area=clc")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "UNSUPPORTED: target lacks clc" in proc.stdout
    assert " skipped" in proc.stdout and " passed" in proc.stdout


def test_a_mutant_fails_the_case_for_its_bug_with_expected_vs_seen(tmp_path: Path) -> None:
    proc = _pytest(tmp_path, "--smcd-target=zoo:move-no-bounds", "--smcd-area=lifecycle",
                   "-k", "bounds")
    assert proc.returncode == 1
    assert "FAILED" in proc.stdout and "lifecycle.move.bounds-past-end" in proc.stdout
    assert "expected error EINVAL" in proc.stdout


def test_a_bad_target_is_a_usage_error(tmp_path: Path) -> None:
    proc = _pytest(tmp_path, "--smcd-target=zoo:nope")
    assert proc.returncode == 4
    assert "unknown zoo mutant 'nope'" in proc.stderr


def test_without_a_target_the_plugin_adds_nothing(tmp_path: Path) -> None:
    proc = _pytest(tmp_path)
    assert proc.returncode == 0
    assert "1 passed" in proc.stdout


def test_an_unknown_area_or_capability_is_a_usage_error(tmp_path: Path) -> None:
    proc = _pytest(tmp_path, "--smcd-target=model", "--smcd-area=nosuch")
    assert proc.returncode == 4
    assert "--smcd-area 'nosuch': unknown area; known: clc, handshake" in proc.stderr
    proc = _pytest(tmp_path, "--smcd-target=model", "--smcd-require=devce")
    assert proc.returncode == 4 and "unknown capability 'devce'" in proc.stderr


def test_verdict_options_as_the_cli_has_them(tmp_path: Path) -> None:
    """Nothing checked fails the session with its reason; a required capability that the
    target lacks is a usage error."""
    proc = _pytest(tmp_path, "--smcd-target=model", "--smcd-area=clc")
    assert proc.returncode == 1, proc.stdout
    assert "smcd-check conformance: FAIL: nothing was checked: all " in proc.stdout
    proc = _pytest(tmp_path, "--smcd-target=model", "--smcd-area=lifecycle",
                   "--smcd-require=clc")
    assert proc.returncode == 4 and "lacks clc" in proc.stderr
