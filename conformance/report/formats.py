"""Reports of a conformance run: console (rich), JSON, JUnit XML and a self-contained HTML page.

* Console: counts per result kind and per area, then one line per case that is not OK.
* JSON (``--report json``): the whole run, every step with expected and seen observations.
* JUnit (``--report junit``): one ``testsuite`` per area, one ``testcase`` per case; FAIL ->
  ``failure``, ERROR -> ``error``, UNSUPPORTED -> ``skipped``; CI systems render it.
* HTML (``--report html``): one file, no external resources: summary, a row per case, and for
  every case that is not plainly OK the steps with expected vs seen and the trace drawn as a
  sequence chart (inline SVG: the test driver on the left, one lane per device / DMB /
  connection / endpoint, red where the target differs from the spec).
"""

from __future__ import annotations

import html
import json
import xml.etree.ElementTree as ET
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from smcd_check.conformance.runner.run import CaseResult, RunResult, StepResult, Verdict

if TYPE_CHECKING:
    from smcd_check.conformance.runner.verdict import RunVerdict

REPORT_FORMATS = ("json", "junit", "html")

_COLORS = {
    Verdict.OK: "#1a7f37",
    Verdict.NON_STRICT: "#9a6700",
    Verdict.UNSUPPORTED: "#6e7781",
    Verdict.FAIL: "#cf222e",
    Verdict.ERROR: "#8250df",
}
_RICH = {
    Verdict.OK: "green",
    Verdict.NON_STRICT: "yellow",
    Verdict.UNSUPPORTED: "bright_black",
    Verdict.FAIL: "red",
    Verdict.ERROR: "magenta",
}


# --------------------------------------------------------------------------- console


def print_console(run: RunResult, console: Any = None, *, verbose: bool = False) -> None:
    """Print the summary table and the cases that are not OK (all cases with ``verbose``)."""
    from rich.console import Console
    from rich.table import Table

    console = console or Console()
    table = Table(title=f"conformance of {run.target}", show_lines=False)
    table.add_column("area")
    for v in Verdict:
        table.add_column(v.value, justify="right", style=_RICH[v])
    for area, counts in sorted(run.counts_by_area().items()):
        table.add_row(area, *(str(counts[v]) for v in Verdict))
    total = run.counts()
    table.add_row("total", *(str(total[v]) for v in Verdict), style="bold")
    console.print(table)
    for res in run.results:
        if res.verdict is Verdict.OK and not verbose:
            continue
        if res.verdict is Verdict.UNSUPPORTED and not verbose:
            continue
        color = _RICH[res.verdict]
        console.print(f"[{color}]{res.verdict.value:<11}[/{color}] {res.case.id}: "
                      f"{res.message or res.case.title}", highlight=False, markup=True)
        if verbose or res.verdict is not Verdict.UNSUPPORTED:
            why = f"{res.case.title}: {res.case.description}".strip()
            console.print(f"            why: {why} [{res.case.source}]", highlight=False,
                          markup=False)
        bad = res.failing_step
        if res.verdict.is_bad and res.case.area.value == "lockstep" and res.steps:
            # a shrunk random walk: the whole sequence is the explanation
            console.print(f"            shrunk sequence ({len(res.steps)} steps):",
                          highlight=False)
            for s in res.steps:
                console.print(f"            {s.index:>3} {s.verdict.value:<10} "
                              f"{s.op.describe()} -> {_obs(s, 'seen', 160)}",
                              highlight=False, markup=False)
        if bad is not None and bad.verdict is Verdict.FAIL:
            console.print(f"            at step {bad.index}: {bad.op.describe()}",
                          highlight=False, markup=False)
            console.print(f"            expected {_obs(bad, 'expected')}", highlight=False,
                          markup=False)
            console.print(f"            seen     {_obs(bad, 'seen')}", highlight=False,
                          markup=False)
    if run.interrupted:
        console.print("[yellow]interrupted: partial result[/yellow]")
    unsupported = total[Verdict.UNSUPPORTED]
    if unsupported and not verbose:
        console.print(f"({unsupported} case(s) UNSUPPORTED by this target; --verbose lists them)")
    console.print(f"{len(run.results)} cases in {run.seconds:.2f} s", highlight=False)


#: longest observation text shown (received data can be tens of kilobytes of hex)
MAX_SHOWN = 400
#: in HTML, where long hex wraps in its cell, much more of it is shown
HTML_SHOWN = 8000


def _obs(step: StepResult, which: str, limit: int = MAX_SHOWN) -> str:
    obs = step.expected if which == "expected" else step.seen
    text = obs.describe() if obs is not None else "(no answer)"
    if len(text) > limit:
        text = f"{text[:limit - 40]} ...({len(text) - limit + 40} more characters)"
    return text


# --------------------------------------------------------------------------- JSON


def to_json(run: RunResult, *, verdict: RunVerdict | None = None) -> dict[str, Any]:
    """The whole run as JSON (format ``smcd-check-conformance`` version 2: every result has an
    ``explanation``; ``verdict`` is the run's pass/fail with its one-line reason)."""
    from smcd_check.conformance.runner.verdict import judge

    verdict = verdict or judge(run)
    return {
        "format": "smcd-check-conformance",
        "version": 2,
        "verdict": {"passed": verdict.passed, "exit_code": verdict.exit_code,
                    "reason": verdict.reason, "culprits": list(verdict.culprits)},
        "target": run.target,
        "capabilities": sorted(c.value for c in run.capabilities),
        "interrupted": run.interrupted,
        "seconds": round(run.seconds, 3),
        "counts": {v.value: n for v, n in run.counts().items()},
        "counts_by_area": {
            area: {v.value: n for v, n in counts.items()}
            for area, counts in sorted(run.counts_by_area().items())
        },
        "results": [r.to_json() for r in run.results],
    }


def render_json(run: RunResult, *, verdict: RunVerdict | None = None) -> str:
    return json.dumps(to_json(run, verdict=verdict), indent=2, sort_keys=True)


# --------------------------------------------------------------------------- JUnit


def render_junit(run: RunResult) -> str:
    """JUnit XML; the root ``testsuites`` carries the totals (tests, failures, errors, skipped,
    time) as CI dashboards read them without summing the suites."""
    total = run.counts()
    root = ET.Element("testsuites", name=f"smcd-check conform {run.target}",
                      tests=str(len(run.results)), failures=str(total[Verdict.FAIL]),
                      errors=str(total[Verdict.ERROR]), skipped=str(total[Verdict.UNSUPPORTED]),
                      time=f"{run.seconds:.3f}")
    by_area: dict[str, list[CaseResult]] = {}
    for res in run.results:
        by_area.setdefault(res.case.area.value, []).append(res)
    for area, results in sorted(by_area.items()):
        counts = {v: sum(1 for r in results if r.verdict is v) for v in Verdict}
        suite = ET.SubElement(
            root, "testsuite", name=area, tests=str(len(results)),
            failures=str(counts[Verdict.FAIL]), errors=str(counts[Verdict.ERROR]),
            skipped=str(counts[Verdict.UNSUPPORTED]),
            time=f"{sum(r.seconds for r in results):.3f}",
        )
        for res in results:
            tc = ET.SubElement(suite, "testcase", classname=f"conform.{area}", name=res.case.id,
                               time=f"{res.seconds:.4f}")
            detail = _text_trace(res)
            ET.SubElement(ET.SubElement(tc, "properties"), "property", name="explanation",
                          value=res.explanation)
            if res.verdict is Verdict.FAIL:
                ET.SubElement(tc, "failure", message=res.message, type="FAIL").text = detail
            elif res.verdict is Verdict.ERROR:
                ET.SubElement(tc, "error", message=res.message, type="ERROR").text = detail
            elif res.verdict is Verdict.UNSUPPORTED:
                ET.SubElement(tc, "skipped", message=res.message)
            elif res.verdict is Verdict.NON_STRICT:
                ET.SubElement(tc, "system-out").text = "NON-STRICT: " + res.message
    ET.indent(root)
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(root, encoding="unicode")


def _text_trace(res: CaseResult) -> str:
    lines = [f"{res.case.id} ({res.case.source})", res.case.description, ""]
    for s in res.steps:
        lines.append(f"{s.index:>3} {s.verdict.value:<10} {s.op.describe()}")
        lines.append(f"      expected {_obs(s, 'expected')}")
        lines.append(f"      seen     {_obs(s, 'seen')}")
        if s.message:
            lines.append(f"      -> {s.message}")
    return "\n".join(lines)


def failure_text(res: CaseResult) -> str:
    """Expected vs seen for one case, as plain text (pytest plugin, JUnit)."""
    return f"{res.verdict.value}: {res.message}\n\n{_text_trace(res)}"


# --------------------------------------------------------------------------- HTML

_CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:24px;color:#1f2328}
h1{font-size:22px} h2{font-size:17px;margin-top:28px}
table{border-collapse:collapse;margin:8px 0} td,th{border:1px solid #d0d7de;padding:4px 8px;
font-size:13px;vertical-align:top} th{background:#f6f8fa;text-align:left}
.v{font-weight:600;white-space:nowrap} code,pre{font-family:ui-monospace,Menlo,Consolas,monospace;
font-size:12px} pre{white-space:pre-wrap;margin:0;overflow-wrap:anywhere}
td{overflow-wrap:anywhere;word-break:break-word;max-width:60ch}
.steps td{max-width:48ch} .hex{word-break:break-all}
details{margin:6px 0 14px 0} summary{cursor:pointer;font-size:14px}
.meta{color:#57606a;font-size:13px} .steps td{font-family:ui-monospace,Menlo,monospace;
font-size:12px} tr.bad td{background:#ffebe9} tr.warn td{background:#fff8c5}
svg{background:#fbfcfd;border:1px solid #d0d7de;margin:8px 0}
"""


def render_html(run: RunResult, *, title: str | None = None,
                verdict: RunVerdict | None = None) -> str:
    """A self-contained HTML page for the run (no scripts, no external resources)."""
    from smcd_check.conformance.runner.verdict import judge

    esc = html.escape
    counts = run.counts()
    verdict = verdict or judge(run)
    title = title or f"smcd-check conformance: {run.target}"
    caps = ", ".join(sorted(c.value for c in run.capabilities)) or "none"
    out = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        f"<title>{esc(title)}</title><style>{_CSS}</style></head><body>",
        f"<h1>{esc(title)}</h1>",
        f'<p class="meta">capabilities: {esc(caps)}'
        f" &middot; {len(run.results)} cases &middot; {run.seconds:.2f} s"
        + (" &middot; <b>interrupted: partial result</b>" if run.interrupted else "")
        + "</p>",
        f'<p><b style="color:{_COLORS[Verdict.OK] if verdict.passed else _COLORS[Verdict.FAIL]}">'
        f'{"PASS" if verdict.passed else "FAIL"}</b>: {esc(verdict.reason)}</p>',
        "<table><tr><th>area</th>" + "".join(
            f'<th style="color:{_COLORS[v]}">{v.value}</th>' for v in Verdict) + "</tr>",
    ]
    for area, by in sorted(run.counts_by_area().items()):
        out.append(f"<tr><td>{esc(area)}</td>" + "".join(f"<td>{by[v]}</td>" for v in Verdict)
                   + "</tr>")
    out.append("<tr><th>total</th>" + "".join(f"<th>{counts[v]}</th>" for v in Verdict)
               + "</tr></table>")

    out.append("<h2>Cases</h2><p class=\"meta\">worst first; click a case for its steps and "
               "sequence chart</p><table><tr><th>result</th><th>case</th><th>area</th>"
               "<th>what</th><th>kernel source</th><th>message</th></tr>")
    order = {Verdict.ERROR: 0, Verdict.FAIL: 1, Verdict.NON_STRICT: 2, Verdict.OK: 3,
             Verdict.UNSUPPORTED: 4}
    ranked = sorted(run.results, key=lambda r: order[r.verdict])  # stable: catalogue order kept
    for res in ranked:
        color = _COLORS[res.verdict]
        link = (f'<a href="#{esc(res.case.id)}">{esc(res.case.id)}</a>'
                if _detailed(res) else esc(res.case.id))
        out.append(
            f'<tr><td class="v" style="color:{color}">{res.verdict.value}</td>'
            f"<td><code>{link}</code></td><td>{esc(res.case.area.value)}</td>"
            f"<td>{esc(res.case.title)}</td><td>{esc(res.case.source)}</td>"
            f"<td>{esc(res.message)}</td></tr>"
        )
    out.append("</table>")

    detailed = [r for r in ranked if _detailed(r)]
    if detailed:
        out.append("<h2>Details</h2>")
    for res in detailed:
        out.append(_html_case(res, open_=res.verdict.is_bad))
    out.append("</body></html>")
    return "\n".join(out)


def _detailed(res: CaseResult) -> bool:
    return bool(res.steps)


def _html_case(res: CaseResult, *, open_: bool) -> str:
    esc = html.escape
    color = _COLORS[res.verdict]
    parts = [
        f'<details id="{esc(res.case.id)}"{" open" if open_ else ""}>',
        f'<summary><b style="color:{color}">{res.verdict.value}</b> '
        f"<code>{esc(res.case.id)}</code> &mdash; {esc(res.case.title)}</summary>",
        f'<p class="meta">{esc(res.case.description)}<br>kernel: {esc(res.case.source)}</p>',
    ]
    if res.message:
        parts.append(f"<p><b>{esc(res.message)}</b></p>")
    parts.append(f'<p class="meta">{esc(res.explanation)}</p>')
    parts.append(sequence_svg(res.steps))
    parts.append('<table class="steps"><tr><th>#</th><th>operation</th><th>expected (spec)</th>'
                 "<th>seen (target)</th><th>result</th></tr>")
    for s in res.steps:
        cls = ' class="bad"' if s.verdict.is_bad else (
            ' class="warn"' if s.verdict is Verdict.NON_STRICT else "")
        parts.append(
            f"<tr{cls}><td>{s.index}</td><td>{esc(s.op.describe())}</td>"
            f'<td class="hex">{esc(_obs(s, "expected", HTML_SHOWN))}</td>'
            f'<td class="hex">{esc(_obs(s, "seen", HTML_SHOWN))}</td>'
            f'<td style="color:{_COLORS[s.verdict]}">{s.verdict.value}'
            f"{('<br>' + esc(s.message)) if s.message else ''}</td></tr>"
        )
    parts.append("</table></details>")
    return "\n".join(parts)


def _lane_of(step: StepResult) -> str:
    for ref in step.op.refs():
        return f"{ref.bind}.{ref.key}"
    name = step.op.name
    if name.startswith("dev_"):
        return "device"
    if name.startswith("conn_"):
        return "connections"
    if name.startswith("curs_"):
        return "cursor"
    if name.startswith("clc_"):
        return "codec"
    return "handshake"


def sequence_svg(steps: Sequence[StepResult]) -> str:
    """Draw the steps as a sequence chart (inline SVG).

    The driver (the suite) is the leftmost lane; each other lane is an object of the target (the
    device, a DMB token, a connection endpoint, a handshake endpoint) in order of first use. A
    call is a solid arrow labelled with the operation; the answer comes back dashed, green when
    the target answered like the spec, red (with the spec's answer) when not.
    """
    esc = html.escape
    lanes = ["suite"]
    for s in steps:
        lane = _lane_of(s)
        if lane not in lanes:
            lanes.append(lane)
    lane_w, top, row_h = 190, 40, 46
    width = 40 + lane_w * len(lanes) + 560
    height = top + row_h * max(1, len(steps)) + 30
    x = {lane: 40 + lane_w * i + lane_w // 2 for i, lane in enumerate(lanes)}
    svg = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}" font-family="ui-monospace,Menlo,monospace" '
        'font-size="11">',
        '<defs><marker id="ah" viewBox="0 0 10 10" refX="9" refY="5" markerWidth="7" '
        'markerHeight="7" orient="auto-start-reverse"><path d="M0,0 L10,5 L0,10 z" '
        'fill="#444"/></marker></defs>',
    ]
    for lane in lanes:
        svg.append(f'<text x="{x[lane]}" y="20" text-anchor="middle" font-weight="bold">'
                   f"{esc(lane)}</text>")
        svg.append(f'<line x1="{x[lane]}" y1="28" x2="{x[lane]}" y2="{height - 10}" '
                   'stroke="#aaa" stroke-dasharray="2,3"/>')
    for i, s in enumerate(steps):
        y = top + row_h * i + 14
        lx = x[_lane_of(s)]
        sx = x["suite"]
        label = s.op.describe()
        if len(label) > 44:
            label = label[:42] + ".."
        svg.append(f'<line x1="{sx}" y1="{y}" x2="{lx - 3}" y2="{y}" stroke="#444" '
                   'marker-end="url(#ah)"/>')
        svg.append(f'<text x="{sx + 6}" y="{y - 4}">{s.index}: {esc(label)}</text>')
        color = _COLORS.get(s.verdict, "#444")
        seen = _obs(s, "seen")
        # a bad answer shows what differs (the field, the spec's value, the target's value)
        text = seen if s.verdict in (Verdict.OK, Verdict.UNSUPPORTED) else (
            f"{s.verdict.value}: {s.message or seen}")
        if len(text) > 110:
            text = text[:108] + ".."
        y2 = y + 18
        svg.append(f'<line x1="{lx}" y1="{y2}" x2="{sx + 3}" y2="{y2}" stroke="{color}" '
                   'stroke-dasharray="5,3" marker-end="url(#ah)"/>')
        svg.append(f'<text x="{max(lx, sx) + 8}" y="{y2 + 4}" fill="{color}">{esc(text)}</text>')
    svg.append("</svg>")
    return "\n".join(svg)


def render(run: RunResult, fmt: str, *, verdict: RunVerdict | None = None) -> str:
    """Render ``run`` in one of :data:`REPORT_FORMATS`."""
    if fmt == "json":
        return render_json(run, verdict=verdict)
    if fmt == "junit":
        return render_junit(run)
    if fmt == "html":
        return render_html(run, verdict=verdict)
    raise ValueError(f"unknown report format {fmt!r}; known: {', '.join(REPORT_FORMATS)}")
