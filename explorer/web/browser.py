"""Driving the web explorer in a real browser: Debian's chromium, headless, through Playwright.

Used by the browser test and by ``docs/make_screenshots.py``. Playwright is told to run the
system's chromium (``/usr/bin/chromium``, installed by ``.ci/system-deps``); it never downloads a
browser of its own. :func:`unavailable` says why a browser cannot be had here (for a skip).
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

#: Debian's chromium
CHROMIUM = "/usr/bin/chromium"
#: headless, no sandbox (CI runs as root), and nothing that reaches out to the network
CHROMIUM_ARGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
)


def chromium_path() -> str | None:
    """The system chromium, or None."""
    if Path(CHROMIUM).exists():
        return CHROMIUM
    return shutil.which("chromium")


def unavailable() -> str | None:
    """Why the browser cannot be driven here (None: it can)."""
    if chromium_path() is None:
        return f"no chromium at {CHROMIUM} (Debian package 'chromium'; .ci/system-deps installs it)"
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        return "the playwright package is not installed (pip install -e '.[dev]')"
    return None


def launch(playwright: Any) -> Any:
    """A headless chromium browser from a started ``sync_playwright()``."""
    return playwright.chromium.launch(
        executable_path=chromium_path(), args=list(CHROMIUM_ARGS), headless=True
    )
