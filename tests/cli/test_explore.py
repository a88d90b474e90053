"""`smcd-check explore`: verdicts, exit codes, outputs, pinned state counts of the small configs."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
from click.testing import CliRunner

from smcd_check.cli.explore import command as explore
from smcd_check.cli.replay import command as replay
from smcd_check.explorer.engine import Explorer
from smcd_check.spec import configs


def run(*args: str) -> tuple[int, str]:
    res = CliRunner().invoke(explore, list(args))
    return res.exit_code, res.output


@pytest.mark.parametrize(
    "name",
    [
        "tiny",
        "small",
        "abort",
        "ism-peers",
        "ring2",
        "reference",
        pytest.param("large", marks=pytest.mark.slow),
        "duplex-open",
        "urgent",
        "urgent-inline",
        "urgent-open",
    ],
)
def test_pinned_state_count_of_configs(name: str) -> None:
    """An unexplained change of a reachable-state count fails here (update it with a reason)."""
    preset = configs.get_preset(name)
    res = Explorer(configs.build_system(name)).bfs()
    assert res.complete and res.ok, res.verdict()
    assert res.unique_state_count == preset.reachable


@pytest.mark.slow
def test_pinned_state_count_of_the_duplex_config() -> None:
    """duplex (both modes, both directions, close): pinned like the small ones (about 20 CPU-s)."""
    res = Explorer(configs.build_system("duplex")).bfs()
    assert res.complete and res.ok, res.verdict()
    assert res.unique_state_count == configs.get_preset("duplex").reachable


@pytest.mark.parametrize("name", ["duplex-open", "urgent", "urgent-open"])
def test_duplex_configs_pass_their_liveness_properties(name: str) -> None:
    """With strong fairness: every byte written is eventually readable in either direction (or
    its reader gave up), a writer out of peer ring space gets space again, and a sender waiting
    for its urgent data to be confirmed is released (in urgent: by the window update that
    follows the urgent byte's skip, or by a close)."""
    res = Explorer(configs.build_system(name, liveness=True)).bfs()
    assert res.complete and res.ok, res.verdict()
    assert len(res.liveness) == 4 and all(d is None for d in res.liveness.values())


@pytest.mark.parametrize(
    ("name", "steps"),
    [("urgent-ignored", 19), ("urgent-oob-open", 11)],
)
def test_kernel_finding_configs_show_their_counterexample(name: str, steps: int) -> None:
    """The clean spec follows the kernel at the urgent mark and at the wrap-counter overflow,
    so in these configs it violates the named property with a shortest counterexample (the
    kernel findings of the README)."""
    preset = configs.get_preset(name)
    res = Explorer(configs.build_system(name)).bfs()
    assert res.violation is not None and res.violation.name == preset.finding
    assert len(res.violation.path) == steps


@pytest.mark.parametrize(
    ("fault", "prop", "steps"),
    [
        ("urg-flag-not-cleared", "no deadlock: every non-final state has an enabled action", 15),
        (
            "urg-no-send-wait",
            "data path: the urgent byte is delivered exactly once, in band or out of band as "
            "SO_OOBINLINE says",
            12,
        ),
    ],
)
def test_urgent_faults_are_found_shortest_and_replay(
    tmp_path: Path, fault: str, prop: str, steps: int
) -> None:
    trace, chart = tmp_path / "t.json", tmp_path / "c.svg"
    code, out = run(
        "--fault", fault, "--quiet", "--trace-out", str(trace), "--msc-out", str(chart)
    )
    assert code == 1 and f"VIOLATION: {prop} ({steps} steps, shortest" in out
    texts = [
        t.text or "" for t in ET.parse(chart).getroot().iter("{http://www.w3.org/2000/svg}text")
    ]
    # CDCs of the full-duplex data path are arrows labelled with both cursors
    assert any(t.startswith("CDC prod=(") and "cons=(" in t for t in texts)
    rep = CliRunner().invoke(replay, [str(trace)])
    assert rep.exit_code == 0 and "REPRODUCED" in rep.output


def test_clean_small_config_passes_with_exit_0_and_json() -> None:
    code, out = run("--config", "small", "--json", "--quiet")
    assert code == 0
    doc = json.loads(out)
    assert doc["ok"] and doc["complete"] and doc["states"] == 3_352
    assert doc["violation"] is None
    assert all(v is not None for v in doc["sometimes"].values())


def test_fault_gives_shortest_counterexample_trace_and_chart(tmp_path: Path) -> None:
    trace, chart = tmp_path / "t.json", tmp_path / "c.svg"
    code, out = run(
        "--config",
        "small",
        "--fault",
        "merged-ignores-cons",
        "--quiet",
        "--trace-out",
        str(trace),
        "--msc-out",
        str(chart),
    )
    assert code == 1
    assert "VIOLATION: data path: no overwriting unconsumed data" in out
    assert "pair0.WriterAppWrite(n=1)" in out
    doc = json.loads(trace.read_text())
    assert doc["fault"] == "merged-ignores-cons" and doc["config"] == "small"
    # shortest: connect, listen, proposal, accept, confirm, then two writes into a 1-slot ring
    assert len(doc["steps"]) == 7
    texts = [
        t.text or "" for t in ET.parse(chart).getroot().iter("{http://www.w3.org/2000/svg}text")
    ]
    assert "client (host A)" in texts and "server (host B)" in texts
    assert any(t.startswith("CLC Proposal") for t in texts)
    rep = CliRunner().invoke(replay, [str(trace)])
    assert rep.exit_code == 0 and "REPRODUCED" in rep.output


@pytest.mark.parametrize(
    "args,needle",
    [
        (["--config", "nope"], "unknown config 'nope'"),
        (["--fault", "nope"], "unknown fault 'nope'"),
        (["--config", "tiny", "--msc-out", "x.png"], "--msc-out"),
        (["--max-states", "0"], "--max-states"),
    ],
)
def test_bad_input_is_exit_2_with_one_line(args: list[str], needle: str) -> None:
    code, out = run(*args)
    assert code == 2 and needle in out


def test_listings_name_every_config_and_fault() -> None:
    code, out = run("--list-configs")
    assert code == 0 and all(n in out for n in configs.PRESETS)
    assert "3,352" in out
    code, out = run("--list-faults")
    assert code == 0 and "merged-ignores-cons" in out and "unregister-while-attached" in out


def test_max_states_gives_partial_verdict_exit_0() -> None:
    code, out = run("--config", "small", "--max-states", "50", "--quiet")
    assert code == 0 and "no violation in the" in out and "max-states" in out


def test_graph_out_writes_graphml(tmp_path: Path) -> None:
    import networkx as nx

    g = tmp_path / "g.graphml"
    code, _ = run("--config", "tiny", "--quiet", "--graph-out", str(g))
    assert code == 0
    assert nx.read_graphml(g).number_of_nodes() == 23


@pytest.mark.parametrize(
    "fault,config,steps,prop",
    [
        ("comp-ignores-wrap", "reference", 7, "data path: no overwriting unconsumed data"),
        (
            "unregister-while-attached",
            "reference",
            11,
            "lifecycle: no ghost sndbuf points at released memory",
        ),
        ("space-forgets-in-flight", "ring2", 9, "data path: sndbuf space accounting is consistent"),
        (
            "no-consumer-update",
            "tiny",
            10,
            "no deadlock: every non-final state has an enabled action",
        ),
        (
            "lgr-reuse-peer-mismatch",
            "ism-peers",
            8,
            "lifecycle: a link group is reused only for its own peer",
        ),
    ],
)
def test_each_fault_is_found_in_its_config_with_a_replayable_trace(
    tmp_path: Path, fault: str, config: str, steps: int, prop: str
) -> None:
    """Without --config, --fault uses the config where the fault shows; BFS gives the
    shortest counterexample (lengths pinned) and its trace replays."""
    trace = tmp_path / "t.json"
    code, out = run("--fault", fault, "--quiet", "--trace-out", str(trace))
    assert code == 1
    assert f"config {config}, fault {fault}" in out
    assert f"VIOLATION: {prop} ({steps} steps, shortest" in out
    rep = CliRunner().invoke(replay, [str(trace)])
    assert rep.exit_code == 0, rep.output


def test_liveness_flag_checks_the_eventually_properties() -> None:
    code, out = run("--config", "small", "--liveness", "--quiet")
    assert code == 0
    assert "every handshake eventually ends active, declined or fallen back: holds" in out
    assert "eventually: every byte written is eventually read (or the reader gave up): holds" in out
