"""The web explorer in a real browser (Debian's chromium, headless, driven by Playwright):
click through a handshake, then open a counterexample at its violating step.

Skips with the reason when chromium or Playwright is missing here; CI installs both
(``.ci/system-deps``: the chromium package; ``pip install -e '.[dev]'``: playwright). Never
downloads a browser.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from smcd_check.explorer.web import browser
from smcd_check.explorer.web.app import create_app
from smcd_check.explorer.web.server import running
from smcd_check.explorer.web.session import Workspace

pytestmark = pytest.mark.skipif(
    browser.unavailable() is not None, reason=str(browser.unavailable())
)


@pytest.fixture(scope="module")
def page() -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    with running(create_app(Workspace())) as url, sync_playwright() as pw:
        b = browser.launch(pw)
        try:
            pg = b.new_page(viewport={"width": 1400, "height": 1000}, base_url=url)
            pg.set_default_timeout(30_000)
            yield pg
        finally:
            b.close()


def click_action(pg: Any, label: str) -> None:
    pg.locator("#actions a.action", has_text=label).first.click()
    pg.wait_for_load_state()


def test_click_through_a_handshake(page: Any) -> None:
    pg = page
    pg.goto("/?config=reference")
    click_action(pg, "initial state: mode=MERGED")
    for label in (
        "pair0.ClientConnect",
        "pair0.ServerListen",
        "pair0.ClcDeliver(to=server)",
        "pair0.ClcDeliver(to=client)",
        "pair0.ClcDeliver(to=server)",
    ):
        click_action(pg, label)
    assert "path=0.0.0.0.0.0" in pg.url
    assert pg.locator("#status").get_attribute("data-status") == "ok"
    phases = pg.locator(
        "[data-path='pairs[0].client.phase'] td, [data-path='pairs[0].server.phase'] td"
    )
    assert phases.all_inner_texts() == ["ACTIVE", "ACTIVE"]
    assert "reached here" in pg.locator("#properties").inner_text()
    assert "CLC Confirm" in pg.locator("#msc svg").text_content()
    # back to step 1: the Proposal in flight opens into its fields
    pg.locator("#path li[data-step='1'] a").click()
    pg.locator("details.clc summary").first.click()
    assert pg.locator("details.clc table.dissect").first.is_visible()
    assert "hdr.eyecatcher" in pg.locator("details.clc table.dissect").first.inner_text()


def test_open_a_counterexample_at_its_violating_step(page: Any) -> None:
    pg = page
    pg.goto("/?config=reference")
    pg.select_option("#fault", "merged-ignores-cons")
    pg.click("#pick button")
    pg.wait_for_load_state()
    pg.click("#search")
    pg.wait_for_load_state()
    status = pg.locator("#status")
    assert status.get_attribute("data-status") == "violation"
    assert "VIOLATED at step 7: data path: no overwriting unconsumed data" in status.inner_text()
    assert pg.locator("#path li.current .tag.bad").count() == 1
    shared = pg.url
    pg.click("#prev")
    assert pg.locator("#status").get_attribute("data-status") == "ok"
    pg.goto(shared)  # the link opens the same violating step again
    assert pg.locator("#status").get_attribute("data-status") == "violation"
