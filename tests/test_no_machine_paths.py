"""No absolute machine paths in the repository: the shared folder is ``../shared`` beside the
repository root (bench/shared_dir.py), found relative to it and reported clearly when absent."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
#: absolute paths under the work, root or home folders (the pattern is built up so this
#: file does not match itself)
MACHINE_PATH = re.compile("/(" + "|".join(["wo" + "rk", "ro" + "ot", "ho" + "me"]) + ")/")


def _tracked_files() -> list[Path]:
    try:
        out = subprocess.run(["git", "ls-files", "-z"], cwd=ROOT, capture_output=True,
                             check=True).stdout
    except (OSError, subprocess.CalledProcessError):
        pytest.skip("not a git checkout")
    return [ROOT / name for name in out.decode().split("\0") if name]


def test_no_tracked_file_names_an_absolute_machine_path() -> None:
    bad = []
    for path in _tracked_files():
        try:
            text = path.read_text(encoding="utf-8")
        except (UnicodeDecodeError, FileNotFoundError, IsADirectoryError):
            continue  # binary captures, files deleted in the work tree
        for no, line in enumerate(text.splitlines(), 1):
            if MACHINE_PATH.search(line):
                bad.append(f"{path.relative_to(ROOT)}:{no}: {line.strip()}")
    assert not bad, "\n".join(bad)


def test_missing_shared_folder_is_one_clear_line(tmp_path: Path) -> None:
    code = ("import sys; sys.path.insert(0, 'bench'); from shared_dir import shared_file; "
            "shared_file('anchors/spin/smcd.pml')")
    env = {"SMCD_CHECK_SHARED": str(tmp_path / "nowhere"), "PATH": "/usr/bin:/bin"}
    res = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True,
                         env=env, check=False)
    assert res.returncode == 1
    assert res.stderr.strip().splitlines() == [
        f"the shared folder {tmp_path / 'nowhere'} is missing (looked for $SMCD_CHECK_SHARED; "
        "set SMCD_CHECK_SHARED to the folder holding domain/ and anchors/)"]
