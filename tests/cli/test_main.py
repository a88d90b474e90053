"""The CLI's shared conventions: exit codes and one-line errors (README, "CLI conventions")."""

from __future__ import annotations

import subprocess
import sys

import pytest

from smcd_check.cli.main import SUBCOMMANDS


def run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "smcd_check.cli.main", *args],
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_bad_flag_is_exit_2_with_one_line_naming_the_flag() -> None:
    proc = run("decode", "--no-such-flag")
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    assert "--no-such-flag" in lines[0]
    assert "Traceback" not in proc.stderr


def test_unknown_subcommand_is_exit_2_naming_it() -> None:
    proc = run("no-such-command")
    assert proc.returncode == 2
    assert "no-such-command" in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1


@pytest.mark.parametrize("name", sorted(SUBCOMMANDS))
def test_every_subcommand_has_help(name: str) -> None:
    proc = run(name, "--help")
    assert proc.returncode == 0, proc.stderr
    assert f"smcd-check {name}" in proc.stdout or "Usage:" in proc.stdout
    assert "not available" not in proc.stdout, f"{name} is registered but missing"
