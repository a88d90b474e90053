"""JSON traces replay against the model; the MSC picture shows both hosts and the violation."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
from anchor_support import anchor

from smcd_check.explorer.engine import Explorer
from smcd_check.explorer.graph import export_graph
from smcd_check.explorer.msc import render_svg, write_msc
from smcd_check.explorer.render import diff_states, format_steps
from smcd_check.explorer.trace import (
    TraceFormatError,
    load_trace,
    parse_trace,
    register_family,
    replay_trace,
    trace_document,
    write_trace,
)

sam = anchor()


def _factory(config: str, fault: str | None) -> object:
    size = int(config)
    return sam.SpinAnchorModel(sam.AnchorConfig(dmb_size=size, chan_cap=2, bug=fault))


register_family("spin-anchor", _factory)


def _bug_trace(bug: str) -> tuple[object, dict]:
    model = _factory("4", bug)
    res = Explorer(model).bfs()
    assert res.violation is not None
    return model, trace_document(
        res.violation,
        model,
        family="spin-anchor",
        config="4",
        fault=bug,
        explored_states=res.unique_state_count,
    )


def test_trace_round_trips_through_a_file_and_replays_exactly(tmp_path: Path) -> None:
    _, doc = _bug_trace("BUG_B_NOWRAP")
    path = tmp_path / "t.json"
    write_trace(path, doc)
    trace = load_trace(path)
    assert trace.property_name == "B reads only bytes written in its current lap"
    result = replay_trace(trace)
    assert result.ok and result.steps_replayed == len(doc["steps"])
    assert "reproduced" in result.message


def test_trace_against_the_fixed_model_diverges() -> None:
    """The BUG_NOCHECK writer writes where the correct one may not: replay without the bug
    must stop at the first step the correct spec forbids."""
    _, doc = _bug_trace("BUG_NOCHECK")
    doc["fault"] = None
    result = replay_trace(parse_trace(doc))
    assert not result.ok and result.diverged_at is not None
    assert result.diverged_at <= len(doc["steps"])


def test_tampered_state_is_reported_as_a_different_state() -> None:
    _, doc = _bug_trace("BUG_OVERREAD")
    doc["steps"][0]["state"]["b_upd"] = 1
    doc["steps"][0]["state"]["failed"] = 0
    result = replay_trace(parse_trace(doc))
    assert not result.ok and result.diverged_at == 1 and "different state" in result.message


@pytest.mark.parametrize(
    "mutate,field",
    [
        (lambda d: d.pop("steps"), "steps"),
        (lambda d: d.update(version=99), "version"),
        (lambda d: d.update(format="x"), "format"),
        (lambda d: d["property"].update(kind="never"), "property.kind"),
        (lambda d: d.update(loop_start=-1), "loop_start"),
    ],
)
def test_malformed_trace_names_the_field(mutate: object, field: str) -> None:
    _, doc = _bug_trace("BUG_OVERREAD")
    mutate(doc)  # type: ignore[operator]
    with pytest.raises(TraceFormatError, match=field.replace(".", r"\.")):
        parse_trace(doc)


def test_unreadable_and_non_json_files_are_format_errors(tmp_path: Path) -> None:
    with pytest.raises(TraceFormatError, match="cannot read"):
        load_trace(tmp_path / "missing.json")
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    with pytest.raises(TraceFormatError, match="not JSON"):
        load_trace(bad)


def test_msc_svg_has_both_lifelines_messages_and_the_violation(tmp_path: Path) -> None:
    model, _ = _bug_trace("BUG_B_NOWRAP")
    res = Explorer(model).bfs()
    assert res.violation is not None
    svg = render_svg(model, res.violation.path, title="t", violation=res.violation.name)
    root = ET.fromstring(svg)
    texts = [t.text or "" for t in root.iter("{http://www.w3.org/2000/svg}text")]
    assert "A" in texts and "B" in texts
    assert any(t.startswith("CDC close=0 prod=") for t in texts)  # A's cursor message
    assert any("VIOLATED: B reads only bytes" in t for t in texts)
    lines = list(root.iter("{http://www.w3.org/2000/svg}line"))
    assert any(ln.get("marker-end") for ln in lines)  # at least one arrow
    out = tmp_path / "c.html"
    write_msc(out, model, res.violation.path, title="t", violation="v", steps_text=["1. x"])
    assert "<svg" in out.read_text() and "1. x" in out.read_text()


def test_steps_show_changed_fields_only() -> None:
    model, _ = _bug_trace("BUG_OVERREAD")
    res = Explorer(model).bfs()
    assert res.violation is not None
    lines = format_steps(model, res.violation.path)
    assert lines[0].strip().startswith("1. BConsume(1)")
    assert lines[1].strip() == "failed: 0 -> 4"
    s0 = res.violation.path.states[0]
    assert list(diff_states(s0, s0)) == []


def test_graph_exports_read_back(tmp_path: Path) -> None:
    import networkx as nx

    model = sam.SpinAnchorModel(sam.AnchorConfig(dmb_size=2, chan_cap=1))
    res = Explorer(model).with_memo(False).with_graph().bfs()
    assert res.graph is not None and res.state_at is not None
    export_graph(res.graph, tmp_path / "g.graphml", res.state_at)
    back = nx.read_graphml(tmp_path / "g.graphml")
    assert back.number_of_nodes() == res.unique_state_count
    export_graph(res.graph, tmp_path / "g.dot", res.state_at)
    text = (tmp_path / "g.dot").read_text()
    assert text.startswith("digraph") and text.count("->") == res.graph.number_of_edges()
    with pytest.raises(ValueError, match="suffix"):
        export_graph(res.graph, tmp_path / "g.png", res.state_at)


def test_json_of_a_trace_is_stable(tmp_path: Path) -> None:
    _, a = _bug_trace("BUG_EARLY_UNREG")
    _, b = _bug_trace("BUG_EARLY_UNREG")
    assert json.dumps(a, sort_keys=True) == json.dumps(b, sort_keys=True)
