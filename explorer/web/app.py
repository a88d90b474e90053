"""The web explorer's pages and JSON (a Starlette app; served by uvicorn, see :mod:`.server`).

Routes (all GET; the app has no route that writes anything):

* ``/?config=C&fault=F&path=P&at=K``: the page. ``path`` is the list of choices from the start
  (:mod:`.session`); ``at`` the step shown (default: the last). It shows the state at that step
  with every field (changed fields marked), the properties there, the enabled actions (each a
  link that extends the path), the path so far (each step a link) and its sequence chart.
* ``/counterexample?config=C&fault=F``: breadth-first search for the shortest counterexample,
  then a redirect to the page at its violating step (or a page saying none was found).
* ``/api/state?...``: the same facts as JSON.
* ``/trace?...``: the path as a JSON trace file (the format ``--trace-out`` writes and
  ``smcd-check replay`` reads), when its last shown state breaks a property or deadlocks.

Bad requests (a malformed path, a choice that does not exist, an unknown config) are answered
with a 4xx page naming what was wrong; an unexpected error with a 500 page naming the error,
never a traceback.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path as FsPath
from typing import Any
from urllib.parse import urlencode

from jinja2 import Environment, FileSystemLoader, select_autoescape
from markupsafe import Markup
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from starlette.routing import Route

from smcd_check.explorer.engine import DEADLOCK, Discovery
from smcd_check.explorer.model import Kind, action_label
from smcd_check.explorer.msc import render_svg, step_events
from smcd_check.explorer.render import diff_states, short, to_json
from smcd_check.explorer.web.fields import StateRenderer, system_ring_for
from smcd_check.explorer.web.session import (
    RequestError,
    Walk,
    Workspace,
    enabled,
    first_broken,
    format_path,
    newly_broken,
    parse_path,
    property_statuses,
    resolve,
)

TEMPLATES = FsPath(__file__).resolve().parent / "templates"


def page_url(
    config: str, fault: str | None, indices: tuple[int, ...] | list[int], at: int | None = None
) -> str:
    """The page URL of a path (``at``: the step shown; None: the last)."""
    q: dict[str, str] = {"config": config}
    if fault:
        q["fault"] = fault
    q["path"] = format_path(indices)
    if at is not None and at != max(len(indices) - 1, 0):
        q["at"] = str(at)
    return "/?" + urlencode(q, safe=".")


def _params(request: Request) -> tuple[str | None, str | None, tuple[int, ...], str | None]:
    qp = request.query_params
    return qp.get("config"), qp.get("fault"), parse_path(qp.get("path")), qp.get("at")


def _at(text: str | None, walk: Walk) -> int:
    last = max(len(walk.states) - 1, 0)
    if text is None or text == "":
        return last
    if not text.isdigit() or int(text) > last:
        raise RequestError(400, f"bad step 'at={text}': the path has steps 0..{last}")
    return int(text)


def _init_label(model: Any, inits: list[Any], k: int) -> str:
    """What tells initial state ``k`` apart from the others (e.g. ``mode=MERGED``)."""
    if len(inits) == 1:
        return "the initial state"
    parts: list[str] = []
    for other in inits:
        for name, mine, _theirs in diff_states(inits[k], other):
            text = f"{name}={short(mine, 30)}"
            if text not in parts:
                parts.append(text)
    # the top-level fields that differ say it best (``mode=MERGED``); nested ones follow from them
    top = [p for p in parts if "." not in p.split("=", 1)[0] and "[" not in p.split("=", 1)[0]]
    return "initial state: " + (", ".join((top or parts)[:3]) or f"#{k}")


def _send_text(model: Any, s: Any, a: Any, t: Any) -> str:
    texts = []
    for ev in step_events(model, s, a, t):
        if ev.kind == "send":
            texts.append(f"{ev.actor} \u2192 {ev.peer}: {ev.label}")
    return "; ".join(texts)


class ExplorerApp:
    """Builds the pages of one :class:`~.session.Workspace`."""

    def __init__(self, workspace: Workspace) -> None:
        self.ws = workspace
        self.env = Environment(
            loader=FileSystemLoader(str(TEMPLATES)),
            autoescape=select_autoescape(["html"]),
            trim_blocks=True,
            lstrip_blocks=True,
        )

    # -- the facts of one page ----------------------------------------------------------------
    def facts(self, request: Request) -> dict[str, Any]:
        config, fault, indices, at_text = _params(request)
        config, fault = self.ws.check_names(config, fault)
        model, lock = self.ws.model(config, fault)
        props = self.ws.properties(config, fault)
        with lock:
            walk = resolve(model, indices)
            at = _at(at_text, walk)
            return self._facts(model, props, config, fault, walk, at)

    def _facts(
        self, model: Any, props: list[Any], config: str, fault: str | None, walk: Walk, at: int
    ) -> dict[str, Any]:
        indices = walk.indices
        f: dict[str, Any] = {
            "config": config,
            "fault": fault,
            "model": model.name,
            "path": format_path(indices),
            "indices": list(indices),
            "at": at,
            "url": page_url(config, fault, indices, at),
        }
        # the steps so far, each with the first property it breaks
        steps = []
        for k, s in enumerate(walk.states):
            label = (
                _init_label(model, list(model.init_states()), indices[0])
                if k == 0
                else action_label(model, walk.actions[k - 1])
            )
            steps.append(
                {
                    "step": k,
                    "label": label,
                    "url": page_url(config, fault, indices, k),
                    "broken": first_broken(props, s),
                    "send": ""
                    if k == 0
                    else _send_text(model, walk.states[k - 1], walk.actions[k - 1], s),
                    "current": k == at,
                    "ahead": k > at,
                }
            )
        f["steps"] = steps
        first_bad = next((st["step"] for st in steps if st["broken"]), None)
        f["first_violation_step"] = first_bad
        if not walk.states:  # choose an initial state
            inits = list(model.init_states())
            f["state"] = None
            f["choices"] = [
                {
                    "index": k,
                    "label": _init_label(model, inits, k),
                    "url": page_url(config, fault, [k]),
                    "broken": first_broken(props, s),
                    "send": "",
                    "revisit": None,
                }
                for k, s in enumerate(inits)
            ]
            f["properties"] = []
            f["status"] = "choose"
            return f
        s = walk.states[at]
        base = list(indices[: at + 1])
        succ = enabled(model, s)
        on_path = {st: k for k, st in enumerate(walk.states[: at + 1])}
        f["choices"] = [
            {
                "index": i,
                "label": action_label(model, a),
                "url": page_url(config, fault, [*base, i]),
                "broken": newly_broken(props, s, t),
                "send": _send_text(model, s, a, t),
                "revisit": on_path.get(t),
            }
            for i, (a, t) in enumerate(succ)
        ]
        f["properties"] = [
            {"name": p.name, "kind": p.kind, "holds": p.holds} for p in property_statuses(props, s)
        ]
        broken = first_broken(props, s)
        final = model.is_final(s)
        f["broken"] = broken
        f["final"] = final
        f["within_boundary"] = model.within_boundary(s)
        if broken is not None:
            f["status"] = "violation"
        elif not succ and not final:
            f["status"] = "deadlock"
        elif not succ:
            f["status"] = "final"
        else:
            f["status"] = "ok"
        f["state_obj"] = s
        f["prev_obj"] = walk.states[at - 1] if at > 0 else None
        f["prefix"] = walk.prefix(at)
        f["model_obj"] = model
        return f

    # -- responses ------------------------------------------------------------------------------
    def page(self, request: Request) -> Response:
        f = self.facts(request)
        extra: dict[str, Any] = {}
        if f.get("state_obj") is not None:
            model, s, prev = f["model_obj"], f["state_obj"], f["prev_obj"]
            changed = [p for p, _o, _n in diff_states(prev, s)] if prev is not None else []
            renderer = StateRenderer(changed=changed, ring_for=system_ring_for(model, s))
            model_lock = self.ws.model(f["config"], f["fault"])[1]
            with model_lock:
                extra["state_html"] = renderer.render(s)
                violation = f["broken"] or ("deadlock" if f["status"] == "deadlock" else None)
                extra["msc_svg"] = Markup(render_svg(model, f["prefix"], violation=violation))
            extra["changed"] = changed
        nav = {
            "start": page_url(f["config"], f["fault"], []),
            "prev": page_url(f["config"], f["fault"], f["indices"], f["at"] - 1)
            if f["at"] > 0
            else None,
            "next": page_url(f["config"], f["fault"], f["indices"], f["at"] + 1)
            if f["at"] < len(f["indices"]) - 1
            else None,
            "first_violation": page_url(
                f["config"], f["fault"], f["indices"], f["first_violation_step"]
            )
            if f["first_violation_step"] is not None and f["first_violation_step"] != f["at"]
            else None,
            "search": "/counterexample?"
            + urlencode({"config": f["config"], **({"fault": f["fault"]} if f["fault"] else {})}),
            "api": "/api/state?" + str(request.query_params),
            "trace": "/trace?" + str(request.query_params)
            if f["status"] in ("violation", "deadlock")
            else None,
        }
        html = self.env.get_template("page.html").render(
            f=f,
            nav=nav,
            configs=self.ws.configs,
            faults=self.ws.faults,
            search_seconds=self.ws.search_seconds,
            **extra,
        )
        return HTMLResponse(html)

    def api_state(self, request: Request) -> Response:
        f = self.facts(request)
        doc = {k: v for k, v in f.items() if not k.endswith("_obj") and k not in ("prefix",)}
        if f.get("state_obj") is not None:
            doc["state"] = to_json(f["state_obj"])
        return JSONResponse(doc)

    def trace(self, request: Request) -> Response:
        from smcd_check.explorer.trace import trace_document

        f = self.facts(request)
        if f["status"] not in ("violation", "deadlock"):
            raise RequestError(
                404,
                "no counterexample to export here: the state at this step breaks no property "
                "and is not a deadlock",
            )
        first = f["first_violation_step"]
        if f["status"] == "violation" and first is not None and first < f["at"]:
            raise RequestError(
                404,
                f"the path already breaks a property at step {first}: export that step "
                "(a trace ends at its first violation)",
            )
        name = f["broken"] if f["status"] == "violation" else DEADLOCK
        disc = Discovery(name=name, kind=Kind.ALWAYS.value, path=f["prefix"])
        doc = trace_document(
            disc, f["model_obj"], family="smcd-system", config=f["config"], fault=f["fault"]
        )
        filename = f"{f['config']}{'-' + f['fault'] if f['fault'] else ''}-trace.json"
        return Response(
            json.dumps(doc, indent=1, sort_keys=True) + "\n",
            media_type="application/json",
            headers={"Content-Disposition": f'attachment; filename="{filename}"'},
        )

    def counterexample(self, request: Request) -> Response:
        qp = request.query_params
        config, fault = self.ws.check_names(qp.get("config"), qp.get("fault"))
        outcome = self.ws.search(config, fault)
        if outcome.indices is not None:
            return RedirectResponse(page_url(config, fault, outcome.indices), status_code=303)
        html = self.env.get_template("message.html").render(
            title="No counterexample",
            status=200,
            message=f"config {config}"
            + (f", fault {fault}" if fault else "")
            + ": "
            + outcome.verdict,
            back=page_url(config, fault, []),
        )
        return HTMLResponse(html)

    def error_page(self, request: Request, status: int, message: str) -> Response:
        if request.url.path.startswith(("/api/", "/trace")):
            return JSONResponse({"error": message, "status": status}, status_code=status)
        html = self.env.get_template("message.html").render(
            title=f"{status}: request not answered", status=status, message=message, back="/"
        )
        return HTMLResponse(html, status_code=status)


def create_app(workspace: Workspace | None = None) -> Starlette:
    """The Starlette app over ``workspace`` (default: every preset config and fault)."""
    ex = ExplorerApp(workspace if workspace is not None else Workspace())

    async def on_request_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, RequestError)
        return ex.error_page(request, exc.status, exc.message)

    async def on_http_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, HTTPException)
        return ex.error_page(request, exc.status_code, str(exc.detail))

    async def on_crash(request: Request, exc: Exception) -> Response:
        # a bug, not the request's fault: say what it was, keep the traceback off the page
        print(f"smcd-check explorer: {type(exc).__name__}: {exc}", file=sys.stderr)
        return ex.error_page(request, 500, f"internal error: {type(exc).__name__}: {exc}")

    def page(request: Request) -> Response:
        return ex.page(request)

    def api_state(request: Request) -> Response:
        return ex.api_state(request)

    def trace(request: Request) -> Response:
        return ex.trace(request)

    def counterexample(request: Request) -> Response:
        return ex.counterexample(request)

    return Starlette(
        debug=False,
        routes=[
            Route("/", page, methods=["GET"]),
            Route("/api/state", api_state, methods=["GET"]),
            Route("/trace", trace, methods=["GET"]),
            Route("/counterexample", counterexample, methods=["GET"]),
        ],
        exception_handlers={
            RequestError: on_request_error,
            HTTPException: on_http_error,
            Exception: on_crash,
        },
    )
