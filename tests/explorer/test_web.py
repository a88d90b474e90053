"""The web explorer over HTTP (a real uvicorn server in a thread): pages, stable links, the
state's fields, counterexamples, trace export, and clear 4xx answers for bad requests."""

from __future__ import annotations

import dataclasses
import json
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from smcd_check.explorer.trace import parse_trace, replay_trace
from smcd_check.explorer.web.app import create_app
from smcd_check.explorer.web.fields import StateRenderer
from smcd_check.explorer.web.server import running
from smcd_check.explorer.web.session import Workspace, indices_of, parse_path, resolve
from smcd_check.spec import configs
from smcd_check.spec.cursor import Cursor, Ring

#: the merged world of the reference config through the whole handshake of pair 0:
#: connect, listen, proposal -> server, accept -> client, confirm -> server
HANDSHAKE = "0.0.0.0.0.0"


def get(url: str, method: str = "GET") -> tuple[int, str, dict[str, str]]:
    req = urllib.request.Request(url, method=method)
    try:
        with urllib.request.urlopen(req, timeout=60) as resp:
            return resp.status, resp.read().decode(), dict(resp.headers)
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode(), dict(exc.headers)


@pytest.fixture(scope="module")
def base() -> Iterator[str]:
    with running(create_app(Workspace())) as url:
        yield url


def api(base: str, query: str) -> dict[str, Any]:
    status, body, _ = get(f"{base}/api/state?{query}")
    assert status == 200, body
    doc: dict[str, Any] = json.loads(body)
    return doc


def test_start_page_offers_the_initial_states(base: str) -> None:
    status, page, headers = get(f"{base}/?config=reference")
    assert status == 200 and headers["content-type"].startswith("text/html")
    assert "initial state: mode=MERGED" in page and "initial state: mode=COPY" in page


def test_a_handshake_step_by_step(base: str) -> None:
    """Each choice extends the path; after the handshake both ends are ACTIVE, the 'active on
    both ends' example is reached there, and every always-property holds."""
    doc = api(base, f"config=reference&path={HANDSHAKE}")
    assert [c["label"] for c in doc["steps"]][1:] == [
        "pair0.ClientConnect",
        "pair0.ServerListen",
        "pair0.ClcDeliver(to=server)",
        "pair0.ClcDeliver(to=client)",
        "pair0.ClcDeliver(to=server)",
    ]
    pair = doc["state"]["pairs"][0]
    assert pair["client"]["phase"] == "Phase.ACTIVE" and pair["server"]["phase"] == "Phase.ACTIVE"
    props = {p["name"]: p["holds"] for p in doc["properties"]}
    assert props["SMC-D becomes active on both ends of a pair"]
    assert doc["status"] == "ok" and doc["broken"] is None
    assert all(p["holds"] for p in doc["properties"] if p["kind"] == "always")
    assert (
        "client (host A) \u2192 server (host B): CLC Confirm (130 bytes)" in doc["steps"][4]["send"]
    )


def test_links_name_the_same_states_in_a_fresh_server() -> None:
    """A path's link is stable: a second app, with models built anew, resolves the same URL
    to the same states (the model's action order is deterministic)."""
    paths = [HANDSHAKE + ".0.1", "1.0.0.0.0.0.0"]
    docs = []
    for _ in range(2):
        with running(create_app(Workspace())) as url:
            docs.append([api(url, f"config=reference&path={p}")["state"] for p in paths])
    assert docs[0] == docs[1]


def test_page_shows_every_field_decoded(base: str) -> None:
    """The CLC Proposal in flight is dissected with the spec's codec, cursors show both views,
    DMB nodes show their reference counts, and the fields the step changed are marked."""
    status, page, _ = get(f"{base}/?config=reference&path=0.0")
    assert status == 200
    assert "CLC Proposal v2 (224 bytes)" in page and "hdr.eyecatcher" in page
    assert "pos 0 of 2" in page  # ring of 1 slot, 1-bit wrap: period 2
    assert "class='field changed' data-path='pairs[0].client.phase'" in page
    status, page, _ = get(f"{base}/?config=reference&path={HANDSHAKE}")
    assert "data-path='lc.nodes[0].refcnt'" in page and "<th>refcnt</th>" in page
    assert "<svg" in page and "CLC Confirm" in page


def test_a_new_state_field_shows_without_code_changes() -> None:
    """The renderer walks dataclasses: any field of any (nested) state appears, by name."""

    @dataclasses.dataclass(frozen=True)
    class Urgent:
        urg_curs: Cursor
        urg_state: int

    @dataclasses.dataclass(frozen=True)
    class State:
        urgent: tuple[Urgent, ...]
        second_direction: bytes

    html = StateRenderer(ring_for=lambda _p: Ring(size=4, wrap_bits=2, small_ok=True)).render(
        State(urgent=(Urgent(urg_curs=Cursor(wrap=1, count=3), urg_state=2),), second_direction=b"")
    )
    assert "data-path='urgent[0].urg_curs'" in html and "urg_state" in html
    assert "(1, 3)" in html and "pos 7 of 16" in html and "second_direction" in html


def test_counterexample_opens_at_its_violating_step_and_exports_a_replayable_trace(
    base: str,
) -> None:
    status, page, _ = get(f"{base}/counterexample?fault=comp-ignores-wrap")
    assert status == 200
    assert "VIOLATED at step 7: data path: no overwriting unconsumed data" in page
    marker = 'id="share" href="'
    url = page.split(marker, 1)[1].split('"', 1)[0].replace("&amp;", "&")
    assert "fault=comp-ignores-wrap" in url and "path=" in url
    status, body, headers = get(base + url.replace("/?", "/trace?", 1))
    assert status == 200 and "attachment" in headers["content-disposition"]
    result = replay_trace(parse_trace(json.loads(body)))
    assert result.ok, result.message


def test_search_without_violation_says_so(base: str) -> None:
    status, page, _ = get(f"{base}/counterexample?config=tiny")
    assert status == 200 and "OK: all properties hold in all 23 reachable states" in page


def test_counterexample_paths_round_trip_through_indices() -> None:
    from smcd_check.explorer.engine import Explorer

    model = configs.build_system("ring2", "space-forgets-in-flight")
    disc = Explorer(configs.build_system("ring2", "space-forgets-in-flight")).bfs().violation
    assert disc is not None
    walk = resolve(model, indices_of(model, disc.path.states, disc.path.actions))
    assert walk.states == disc.path.states and walk.actions == disc.path.actions


@pytest.mark.parametrize(
    "query,status,message",
    [
        ("/?path=abc", 400, "malformed path"),
        ("/?path=0..1", 400, "malformed path"),
        ("/?path=-1", 400, "malformed path"),
        ("/?config=reference&path=0.99", 404, "no action 99 at step 1"),
        ("/?config=reference&path=7", 404, "no initial state 7"),
        ("/?config=reference&path=0.0&at=9", 400, "bad step"),
        ("/?config=nope", 404, "unknown config"),
        ("/?fault=nope", 404, "unknown fault"),
        ("/api/state?path=0.5.5", 404, "no action 5 at step 1"),
        ("/trace?config=reference&path=0", 404, "no counterexample to export"),
        ("/no/such/page", 404, "Not Found"),
    ],
)
def test_bad_requests_get_a_clear_4xx(base: str, query: str, status: int, message: str) -> None:
    got, body, _ = get(base + query)
    assert got == status and message in body and "Traceback" not in body


def test_nothing_but_get_and_no_file_changes(
    base: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Read-only: every route answers GET only (a POST is refused), and browsing writes no
    file (the working directory stays empty)."""
    app = create_app(Workspace())
    for route in app.routes:
        assert set(getattr(route, "methods", {"GET"})) <= {"GET", "HEAD"}
    monkeypatch.chdir(tmp_path)
    assert get(f"{base}/?config=reference&path=0.0", method="POST")[0] == 405
    for q in ("/?config=small&path=0.0.0", "/api/state?config=small&path=0", "/?path=x"):
        get(base + q)
    assert list(tmp_path.iterdir()) == []


def test_an_internal_error_is_a_500_page_without_a_traceback() -> None:
    class Broken:
        name = "broken"

        def init_states(self) -> list[int]:
            return [0]

        def actions(self, s: int) -> list[str]:
            raise RuntimeError("the model fell over")

        def properties(self) -> list[Any]:
            return []

    ws = Workspace(build=lambda c, f: Broken(), configs=["x"], default_config="x")
    with running(create_app(ws)) as url:
        status, body, _ = get(f"{url}/?config=x&path=0.0")
    assert status == 500 and "RuntimeError: the model fell over" in body
    assert "Traceback" not in body


def test_path_syntax() -> None:
    assert parse_path("") == () and parse_path("0.12.3") == (0, 12, 3)
