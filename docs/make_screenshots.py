"""Screenshots of the web explorer for the README (``docs/images/explorer-*.png``).

    python docs/make_screenshots.py            # writes docs/images/explorer-*.png
    python docs/make_screenshots.py --out DIR

Starts the explorer in this process on a free port of 127.0.0.1 and photographs it with
Debian's headless chromium through Playwright (the same set-up as the browser test; nothing is
downloaded). Views: the reference config after pair 0's handshake, the shortest counterexample
of ``merged-ignores-cons`` at its violating step, a CLC Proposal in flight decoded field by
field, and the lifecycle's DMB table with its reference counts.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from smcd_check.explorer.web import browser
from smcd_check.explorer.web.app import create_app
from smcd_check.explorer.web.server import running
from smcd_check.explorer.web.session import Workspace

HERE = Path(__file__).resolve().parent


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", type=Path, default=HERE / "images")
    args = ap.parse_args(argv)
    why = browser.unavailable()
    if why is not None:
        print(f"make_screenshots: {why}", file=sys.stderr)
        return 2
    from playwright.sync_api import sync_playwright

    out: Path = args.out
    out.mkdir(parents=True, exist_ok=True)
    written = []
    with running(create_app(Workspace())) as url, sync_playwright() as pw:
        b = browser.launch(pw)
        try:
            pg = b.new_page(viewport={"width": 1400, "height": 900}, base_url=url)
            # 1. stepping through the handshake: path, actions, chart, state
            pg.goto("/?config=reference&path=0.0.0.0.0.0")
            pg.screenshot(path=out / "explorer-handshake.png")
            written.append("explorer-handshake.png")
            # 2. a counterexample opened at its violating step
            pg.goto("/counterexample?fault=merged-ignores-cons")
            pg.screenshot(path=out / "explorer-counterexample.png")
            written.append("explorer-counterexample.png")
            # 3. the CLC Proposal in flight after connect(), decoded by the spec's codec
            pg.goto("/?config=reference&path=0.0")
            pg.locator("[data-path='pairs[0].c2s'] details.clc summary").first.click()
            pg.locator("[data-path='pairs[0].c2s']").screenshot(path=out / "explorer-clc.png")
            written.append("explorer-clc.png")
            # 4. link group, DMB descriptors and the device's DMB table with refcnt
            pg.goto("/?config=reference&path=0.0.0.0.0.0")
            pg.locator("[data-path='lc']").first.screenshot(path=out / "explorer-lifecycle.png")
            written.append("explorer-lifecycle.png")
        finally:
            b.close()
    for name in written:
        print(out / name)
    return 0


if __name__ == "__main__":
    sys.exit(main())
