"""A failing schedule as a picture: one swim lane per thread, one row per step (SVG)."""

from __future__ import annotations

from html import escape
from typing import Any


def schedule_svg(finding: Any, last: int = 160) -> str:
    """SVG of the last ``last`` steps of ``finding``; switches drawn as arrows, the step where
    the violation was seen in red."""
    names = finding.thread_names
    steps = finding.steps[-last:]
    first = len(finding.steps) - len(steps)
    lane, row, top = 230, 16, 60
    width = 60 + lane * len(names)
    height = top + row * len(steps) + 40
    out = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
           'font-family="monospace" font-size="10">',
           f'<text x="10" y="18" font-size="13">{escape(finding.scenario)}'
           f'{" / " + escape(finding.mutant) if finding.mutant else ""}: '
           f'{escape(finding.first.prop)}</text>',
           f'<text x="10" y="34" fill="#a00">{escape(finding.first.detail[:160])}</text>']
    for i, n in enumerate(names):
        x = 60 + lane * i
        out.append(f'<text x="{x}" y="{top - 8}" font-weight="bold">{escape(n)}</text>')
        out.append(f'<line x1="{x - 4}" y1="{top - 4}" x2="{x - 4}" y2="{height - 30}" '
                   'stroke="#ccc"/>')
    prev = None
    for j, (t, label) in enumerate(steps):
        y = top + row * j + 10
        x = 60 + lane * t
        bad = first + j == finding.first.step - 1
        color = "#c00" if bad else "#000"
        out.append(f'<text x="5" y="{y}" fill="#888">{first + j}</text>')
        out.append(f'<text x="{x}" y="{y}" fill="{color}">{escape(label[:34])}</text>')
        if prev is not None and prev != t:
            px = 60 + lane * prev
            out.append(f'<line x1="{px}" y1="{y - 14}" x2="{x - 6}" y2="{y - 4}" '
                       'stroke="#36c" marker-end="url(#a)"/>')
        prev = t
    out.insert(1, '<defs><marker id="a" markerWidth="6" markerHeight="6" refX="5" refY="3" '
                  'orient="auto"><path d="M0,0 L6,3 L0,6 z" fill="#36c"/></marker></defs>')
    out.append("</svg>")
    return "\n".join(out) + "\n"
