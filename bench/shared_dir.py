"""Where the team's shared folder is: ``../shared`` beside the repository (or $SMCD_CHECK_SHARED).

The shared folder holds the domain digest and the Spin anchor model; it is not part of the
repository, so benchmarks that need it find it relative to the repository root and stop with a
clear message when it is absent, never by an absolute machine path.
"""

from __future__ import annotations

import os
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent


def shared_dir() -> Path:
    """The shared folder; exits with a one-line message when it is not there."""
    env = os.environ.get("SMCD_CHECK_SHARED")
    path = Path(env) if env else REPO_ROOT.parent / "shared"
    if not path.is_dir():
        where = "$SMCD_CHECK_SHARED" if env else f"../shared beside the repository {REPO_ROOT}"
        raise SystemExit(f"the shared folder {path} is missing (looked for {where}; set "
                         "SMCD_CHECK_SHARED to the folder holding domain/ and anchors/)")
    return path


def shared_file(relative: str) -> Path:
    """A file in the shared folder; exits with a one-line message when it is missing."""
    path = shared_dir() / relative
    if not path.is_file():
        raise SystemExit(f"{path} is missing from the shared folder")
    return path
