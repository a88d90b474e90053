"""Message-sequence-chart pictures of a path (``smcd-check explore --msc-out``).

One lifeline per host (the model's ``msc_actors()`` order, else the order of appearance), time
flowing down, one row per step. The model's ``msc_event(s, a, t)`` hook says what a step is:

* ``send``: a message leaves ``actor`` for ``peer`` on ``channel``; the arrow is drawn from the
  sending row to the row of the matching ``recv`` (FIFO per channel), slanted when the message
  was in flight for several steps; a message never received is drawn dashed, ending half-way;
* ``recv``: the receiving end of the earliest unmatched send of the same channel;
* ``local``: a box on the actor's lifeline (a user write, a DMB unregister...).

The violating step is shaded red and the violated property printed under the chart; a liveness
lasso marks the cycle that repeats forever. Output is a self-contained SVG (no scripts, no
external fonts), or an HTML page embedding that SVG plus the step list when the file name ends
in ``.html``.
"""

from __future__ import annotations

import html
from collections import defaultdict, deque
from pathlib import Path
from typing import Any

from smcd_check.explorer.model import MscEvent, action_label

COL_W = 300
LEFT = 70
TOP = 70
ROW_H = 34
BOX_H = 22
FONT = "font-family='Helvetica, Arial, sans-serif'"


def step_events(model: Any, s: Any, a: Any, t: Any) -> list[Any]:
    """The chart events of one step: the model's ``msc_event`` may give one or a sequence."""
    hook = getattr(model, "msc_event", None)
    ev = hook(s, a, t) if hook is not None else None
    if ev is None:
        return [MscEvent(actor="system", kind="local", label=action_label(model, a))]
    if isinstance(ev, (list, tuple)):
        return list(ev)
    return [ev]


def _events(model: Any, path: Any) -> list[tuple[int, Any]]:
    out: list[tuple[int, Any]] = []
    for k, (a, s, t) in enumerate(zip(path.actions, path.states, path.states[1:], strict=False)):
        out.extend((k, ev) for ev in step_events(model, s, a, t))
    return out


def _esc(text: str) -> str:
    return html.escape(text, quote=True)


def _clip(text: str, limit: int = 44) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "\u2026"


def render_svg(model: Any, path: Any, *, title: str = "", violation: str | None = None) -> str:
    """The chart as an SVG document (a string)."""
    events = _events(model, path)
    hook = getattr(model, "msc_actors", None)
    actors: list[str] = list(hook()) if hook is not None else []
    for _, ev in events:
        for who in (ev.actor, ev.peer):
            if who and who not in actors:
                actors.append(who)
    if not actors:
        actors = ["system"]
    x = {a: LEFT + 60 + i * COL_W for i, a in enumerate(actors)}
    n = len(path.actions)
    width = LEFT + 60 + (len(actors) - 1) * COL_W + 200
    height = TOP + (n + 1) * ROW_H + 80
    parts: list[str] = [
        f"<svg xmlns='http://www.w3.org/2000/svg' width='{width}' height='{height}' "
        f"viewBox='0 0 {width} {height}' {FONT} font-size='12'>",
        "<defs><marker id='arr' viewBox='0 0 10 10' refX='10' refY='5' markerWidth='8' "
        "markerHeight='8' orient='auto-start-reverse'><path d='M0,0 L10,5 L0,10 z' "
        "fill='#1f4e8c'/></marker>"
        "<marker id='arrr' viewBox='0 0 10 10' refX='10' refY='5' markerWidth='8' "
        "markerHeight='8' orient='auto-start-reverse'><path d='M0,0 L10,5 L0,10 z' "
        "fill='#c0392b'/></marker></defs>",
        f"<rect width='{width}' height='{height}' fill='white'/>",
    ]
    if title:
        parts.append(f"<text x='10' y='20' font-size='14' font-weight='bold'>{_esc(title)}</text>")

    def row_y(k: int) -> float:
        return TOP + (k + 1) * ROW_H

    bad_row = n - 1 if violation is not None and n > 0 else None
    if bad_row is not None:
        parts.append(
            f"<rect x='0' y='{row_y(bad_row) - ROW_H / 2}' width='{width}' height='{ROW_H}' "
            "fill='#fde2e0'/>"
        )
    if path.loop_start is not None and n:
        y0 = row_y(path.loop_start) - ROW_H / 2
        y1 = row_y(n - 1) + ROW_H / 2
        parts.append(
            f"<rect x='2' y='{y0}' width='{width - 4}' height='{y1 - y0}' fill='none' "
            "stroke='#8e44ad' stroke-dasharray='6,4'/>"
        )
        parts.append(f"<text x='6' y='{y1 - 4}' fill='#8e44ad'>cycle repeats forever</text>")
    for a in actors:
        parts.append(
            f"<rect x='{x[a] - 70}' y='{TOP - 30}' width='140' height='26' rx='4' "
            "fill='#eaf1fb' stroke='#1f4e8c'/>"
        )
        parts.append(
            f"<text x='{x[a]}' y='{TOP - 12}' text-anchor='middle' "
            f"font-weight='bold'>{_esc(a)}</text>"
        )
        parts.append(
            f"<line x1='{x[a]}' y1='{TOP - 4}' x2='{x[a]}' y2='{row_y(n)}' "
            "stroke='#888' stroke-dasharray='4,3'/>"
        )
    for k in range(n):
        parts.append(f"<text x='8' y='{row_y(k) + 4}' fill='#666'>{k + 1}</text>")
    pending: dict[str, deque[tuple[int, MscEvent]]] = defaultdict(deque)
    arrows: list[tuple[int, int, MscEvent]] = []
    for k, ev in events:
        if ev.kind == "send":
            pending[ev.channel].append((k, ev))
        elif ev.kind == "recv":
            if pending[ev.channel]:
                k0, sev = pending[ev.channel].popleft()
                arrows.append((k0, k, sev))
            else:  # the message was already in the channel when the path began
                parts.append(
                    f"<text x='{x[ev.actor] + 8}' y='{row_y(k) + 4}'>"
                    f"{_esc(_clip('receives ' + ev.label))}</text>"
                )
        else:
            w = min(COL_W - 30, 8 * len(_clip(ev.label)) + 16)
            red = k == bad_row
            parts.append(
                f"<rect x='{x[ev.actor] - w / 2}' y='{row_y(k) - BOX_H / 2}' width='{w}' "
                f"height='{BOX_H}' rx='3' fill='{'#f5b7b1' if red else '#fdf6e3'}' "
                f"stroke='{'#c0392b' if red else '#b58900'}'/>"
            )
            parts.append(
                f"<text x='{x[ev.actor]}' y='{row_y(k) + 4}' text-anchor='middle'>"
                f"{_esc(_clip(ev.label))}</text>"
            )
    for k0, k1, sev in arrows:
        red = k1 == bad_row
        parts.append(_arrow(x[sev.actor], row_y(k0), x[sev.peer], row_y(k1), sev.label, red, False))
    for queue in pending.values():
        for k0, sev in queue:
            x0, x1 = x[sev.actor], x[sev.peer]
            red = k0 == bad_row
            parts.append(
                _arrow(
                    x0,
                    row_y(k0),
                    (x0 + x1) / 2,
                    row_y(k0) + ROW_H / 2,
                    sev.label + " (in flight)",
                    red,
                    True,
                )
            )
    if violation is not None:
        parts.append(
            f"<text x='10' y='{height - 30}' fill='#c0392b' font-weight='bold' "
            f"font-size='13'>VIOLATED: {_esc(violation)}</text>"
        )
    parts.append("</svg>")
    return "\n".join(parts)


def _arrow(x0: float, y0: float, x1: float, y1: float, label: str, red: bool, dashed: bool) -> str:
    color = "#c0392b" if red else "#1f4e8c"
    dash = " stroke-dasharray='6,4'" if dashed else ""
    mid_x, mid_y = (x0 + x1) / 2, (y0 + y1) / 2 - 5
    return (
        f"<line x1='{x0}' y1='{y0}' x2='{x1}' y2='{y1}' stroke='{color}' stroke-width='1.5'"
        f"{dash} marker-end='url(#{'arrr' if red else 'arr'})'/>"
        f"<text x='{mid_x}' y='{mid_y}' text-anchor='middle' fill='{color}'>"
        f"{_esc(_clip(label, 48))}</text>"
    )


def write_msc(
    target: Path,
    model: Any,
    path: Any,
    *,
    title: str = "",
    violation: str | None = None,
    steps_text: list[str] | None = None,
) -> None:
    """Write the chart to ``target``: SVG, or HTML (SVG + step list) for ``.html`` names."""
    svg = render_svg(model, path, title=title, violation=violation)
    if target.suffix.lower() in (".html", ".htm"):
        listing = "\n".join(_esc(line) for line in (steps_text or []))
        page = (
            "<!DOCTYPE html><html><head><meta charset='utf-8'>"
            f"<title>{_esc(title or 'smcd-check trace')}</title></head><body>"
            f"<h2>{_esc(title)}</h2>{svg}<pre>{listing}</pre></body></html>\n"
        )
        target.write_text(page)
    else:
        target.write_text(svg + "\n")
