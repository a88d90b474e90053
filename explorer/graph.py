"""Export of the explored state graph as DOT or GraphML (``smcd-check explore --graph-out``).

The graph comes from :func:`smcd_check.explorer.liveness.build_graph`: nodes are discovery
indices (BFS order; the initial states first), edges carry the action label. Each node gets a
short ``label`` (the model's ``describe_state`` hook when it has one, else the state's repr,
truncated) so the files open readably in Graphviz, Gephi or yEd. The format follows the file
name: ``.dot``/``.gv`` for DOT, ``.graphml`` for GraphML.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import networkx as nx

#: node labels longer than this are cut (a full system state is long)
MAX_LABEL = 160


def _dot_quote(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'


def write_dot(g: nx.DiGraph, path: Path, node_label: Callable[[int], str]) -> None:
    """Write ``g`` in Graphviz DOT (no pydot/pygraphviz needed)."""
    with path.open("w") as fh:
        fh.write("digraph explored {\n  node [shape=box, fontsize=9];\n")
        for v, data in g.nodes(data=True):
            attrs = [f"label={_dot_quote(node_label(v))}"]
            if data.get("init"):
                attrs.append("penwidth=2")
            if data.get("violation"):
                attrs.append('color=red, style=filled, fillcolor="#ffdddd"')
            fh.write(f"  n{v} [{', '.join(attrs)}];\n")
        for a, b, data in g.edges(data=True):
            fh.write(f"  n{a} -> n{b} [label={_dot_quote(str(data.get('label', '')))}];\n")
        fh.write("}\n")


def write_graphml(g: nx.DiGraph, path: Path, node_label: Callable[[int], str]) -> None:
    """Write ``g`` as GraphML with string/boolean attributes only."""
    h = nx.DiGraph()
    for v, data in g.nodes(data=True):
        h.add_node(
            v,
            label=node_label(v),
            init=bool(data.get("init", False)),
            boundary=bool(data.get("boundary", False)),
            violation=bool(data.get("violation", False)),
        )
    for a, b, data in g.edges(data=True):
        h.add_edge(a, b, label=str(data.get("label", "")))
    nx.write_graphml(h, str(path))


def export_graph(
    g: nx.DiGraph,
    path: Path,
    states: Callable[[int], Any],
    describe: Callable[[Any], str] | None = None,
) -> str:
    """Write ``g`` to ``path`` in the format its suffix names; returns the format.

    Raises:
        ValueError: the suffix is neither ``.dot``/``.gv`` nor ``.graphml``.
    """

    def label(v: int) -> str:
        text = describe(states(v)) if describe is not None else repr(states(v))
        return text if len(text) <= MAX_LABEL else text[: MAX_LABEL - 3] + "..."

    suffix = path.suffix.lower()
    if suffix in (".dot", ".gv"):
        write_dot(g, path, label)
        return "dot"
    if suffix == ".graphml":
        write_graphml(g, path, label)
        return "graphml"
    raise ValueError(
        f"graph file {str(path)!r}: suffix must be .dot, .gv or .graphml, not {suffix!r}"
    )
