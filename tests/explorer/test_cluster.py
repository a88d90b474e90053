"""The search on a Ray cluster gives exactly the sequential results, and fails loudly.

A local Ray (two CPUs, no dashboard) is started once for the module; every pinned config named
here and a fault are explored sequentially, with two forked worker processes and with two Ray
actors (the sequential prefix kept tiny so that the actors do almost all of the search), and
everything a user reads must be identical. A killed actor ends the search with an error and
the partial counts, never with a result. Without Ray these tests skip (with the reason), except
the one that checks the error naming the extra.
"""

from __future__ import annotations

import json
import os
import signal
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from smcd_check.explorer.engine import Explorer, ExploreResult
from smcd_check.explorer.model import as_property
from smcd_check.explorer.parallel import WorkerFailed, parallel_search
from smcd_check.spec import configs

try:
    import ray
except ImportError:  # the extra is not installed
    ray = None

needs_ray = pytest.mark.skipif(
    ray is None, reason="Ray is not installed (pip install -e '.[cluster]')"
)


@pytest.fixture(scope="module")
def local_ray() -> Iterator[None]:
    """One local Ray for the module (starting one costs seconds)."""
    assert ray is not None
    ray.init(
        address="local",  # a new Ray, never one recorded on this machine
        num_cpus=2,
        include_dashboard=False,
        logging_level="ERROR",
        log_to_driver=False,
    )
    try:
        yield
    finally:
        ray.shutdown()


def _search(model: Any, workers: int, transport: Any = None) -> ExploreResult:
    ex = Explorer(model).with_workers(workers)
    props = [as_property(p) for p in model.properties()]
    return parallel_search(ex, props, warmup_states=8, transport=transport)


def _on_ray(model: Any, workers: int = 2) -> ExploreResult:
    from smcd_check.explorer.cluster import ray_transport

    return _search(model, workers, ray_transport)


def _same(a: ExploreResult, b: ExploreResult) -> None:
    """Everything a user reads is equal (the paths action by action)."""
    assert a.verdict() == b.verdict()
    assert (a.unique_state_count, a.transition_count, a.max_depth, a.complete) == (
        b.unique_state_count,
        b.transition_count,
        b.max_depth,
        b.complete,
    )
    assert a.coverage == b.coverage
    assert a.never_fired == b.never_fired
    assert a.boundary_states == b.boundary_states
    assert a.examples.keys() == b.examples.keys()
    for name, d in a.examples.items():
        other = b.examples[name]
        assert (d is None) == (other is None), name
        if d is not None and other is not None:
            assert d.path.actions == other.path.actions, name
    assert (a.violation is None) == (b.violation is None)
    if a.violation is not None and b.violation is not None:
        assert a.violation.name == b.violation.name
        assert a.violation.path.actions == b.violation.path.actions
        assert a.violation.path.states == b.violation.path.states


@needs_ray
@pytest.mark.parametrize("name", ["tiny", "small", "ring2"])
def test_cluster_search_equals_sequential_and_local_parallel(local_ray: None, name: str) -> None:
    """On a pinned config, two Ray actors report what the sequential search and two forked
    workers report: counts, depth, coverage, verdict, the sometimes examples step by step;
    the count is the pinned one. (ring2 is the config where per-process view ids, crossing the
    transport uncanonicalised, once gave 35,762 states instead of 35,678.)"""
    seq = Explorer(configs.build_system(name)).bfs()
    local = _search(configs.build_system(name), 2)
    on_ray = _on_ray(configs.build_system(name))
    _same(seq, on_ray)
    _same(local, on_ray)
    assert on_ray.unique_state_count == configs.get_preset(name).reachable
    if name != "tiny":  # tiny ends within the prefix: no worker runs
        assert on_ray.workers == 2 and len(on_ray.worker_stats) == 2
        assert sum(s["states"] for s in on_ray.worker_stats) == on_ray.unique_state_count


@needs_ray
def test_one_actor_equals_sequential(local_ray: None) -> None:
    """One actor owns every state (no batches cross the transport): the same results."""
    seq = Explorer(configs.build_system("small")).bfs()
    one = _on_ray(configs.build_system("small"), workers=1)
    _same(seq, one)
    assert one.worker_stats[0]["sent_states"] == 0


@needs_ray
def test_cluster_counterexample_is_the_shortest_and_replays(
    local_ray: None, tmp_path: Path
) -> None:
    """With a fault the actors stop at the sequential search's first violation; its path,
    rebuilt from the states of several partitions, is the same shortest trace, and
    ``smcd-check replay`` reproduces it from the trace file."""
    from smcd_check.cli.replay import command as replay
    from smcd_check.conformance.traces.document import with_plans
    from smcd_check.explorer.trace import trace_document, write_trace

    fault, name = "space-forgets-in-flight", "ring2"
    seq = Explorer(configs.build_system(name, fault)).bfs()
    model = configs.build_system(name, fault)
    on_ray = _on_ray(model)
    assert seq.violation is not None and on_ray.violation is not None
    _same(seq, on_ray)
    assert len(on_ray.violation.path) == len(seq.violation.path) == 9
    owners = {s["worker"] for s in on_ray.worker_stats if s["states"]}
    assert owners == {0, 1}  # both actors own states: each step is looked up in every one
    doc = trace_document(on_ray.violation, model, family="smcd-system", config=name, fault=fault)
    path = tmp_path / "cluster.json"
    write_trace(path, with_plans(doc))
    res = CliRunner().invoke(replay, [str(path)])
    assert res.exit_code == 0, res.output


@needs_ray
def test_a_killed_actor_ends_the_search_with_an_error_and_partial_counts(
    local_ray: None,
) -> None:
    """An actor killed (SIGKILL) in the middle of the search: the search raises WorkerFailed
    saying the actor died, with the states of the levels completed before it; no result (so
    no verdict) comes out."""
    from smcd_check.explorer.cluster import RayActors

    class KillingOne(RayActors):
        levels = 0

        def send(self, w: int, msg: tuple[Any, ...]) -> None:
            if msg[0] == "expand" and w == 1:
                KillingOne.levels += 1
                if KillingOne.levels == 4:
                    os.kill(self.pids()[1], signal.SIGKILL)
            super().send(w, msg)

    with pytest.raises(WorkerFailed, match="worker 1 failed") as info:
        _search(configs.build_system("small"), 2, KillingOne)
    exc = info.value
    assert "Ray actor died" in str(exc)
    assert "no verdict" in str(exc)
    assert exc.states is not None and 8 <= exc.states < 3_352
    assert exc.depth is not None and exc.depth >= 3


def test_explore_cluster_failure_is_one_line_with_partial_counts_and_exit_3(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """The CLI turns WorkerFailed into one error line (the worker and why), the partial
    counts, and exit 3 (no verdict)."""
    from smcd_check.cli.explore_cluster import failed

    exc = WorkerFailed(
        "worker 1 failed:\nits Ray actor died (killed)\nno verdict: 42 states", states=42, depth=3
    )
    with pytest.raises(SystemExit) as info:
        failed(exc)
    assert info.value.code == 3
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [
        "smcd-check: error: worker 1 failed: its Ray actor died (killed)",
        "partial: 42 states in the BFS levels completed before it (depth 3); no verdict",
    ]


def test_explore_cluster_without_ray_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    """Without Ray, ``--cluster`` is a one-line usage error (exit 2) that names the extra to
    install, before anything is explored."""
    from smcd_check.cli.explore import command as explore

    monkeypatch.setitem(sys.modules, "ray", None)  # import ray -> ImportError
    res = CliRunner().invoke(explore, ["--config", "tiny", "--cluster", "auto"])
    assert res.exit_code == 2, res.output
    lines = res.output.strip().splitlines()
    assert len(lines) == 1
    assert "pip install" in lines[0] and "[cluster]" in lines[0]


def test_explore_cluster_refuses_what_needs_one_machine() -> None:
    """--liveness and --graph-out need the whole graph in one process; --simulate is not a
    breadth-first search: with --cluster each is a usage error naming the flag."""
    from smcd_check.cli.explore import command as explore

    for extra, word in (
        (["--liveness"], "--liveness"),
        (["--graph-out", "g.dot"], "--graph-out"),
        (["--simulate"], "--simulate"),
    ):
        res = CliRunner().invoke(explore, ["--config", "tiny", "--cluster", "auto", *extra])
        assert res.exit_code == 2 and word in res.output, res.output


@needs_ray
def test_explore_cli_on_the_cluster_prints_the_sequential_counts(local_ray: None) -> None:
    """``smcd-check explore --cluster auto`` joins the running Ray and prints the counts and
    verdict of ``--workers 1``."""
    from smcd_check.cli.explore import command as explore

    docs = []
    for args in (["--workers", "1"], ["--cluster", "auto", "--workers", "2"]):
        res = CliRunner().invoke(explore, ["--config", "small", "--json", *args])
        assert res.exit_code == 0, res.output
        docs.append(json.loads(res.stdout))  # Ray may print a raylet notice on stderr
    one, on_ray = docs
    assert on_ray["workers"] == 2
    for key in ("verdict", "states", "transitions", "depth", "coverage", "sometimes"):
        assert one[key] == on_ray[key], key


@needs_ray
def test_ctrl_c_on_the_cluster_gives_a_partial_result(local_ray: None) -> None:
    """A Ctrl-C while the actors are mid-level stops with the states of the finished levels
    ("interrupted", not complete), and the actors' late replies do not confuse the tally."""
    from smcd_check.explorer.cluster import RayActors

    class Interrupting(RayActors):
        calls = 0

        def ready(self) -> list[int]:
            Interrupting.calls += 1
            if Interrupting.calls == 7:
                raise KeyboardInterrupt
            return super().ready()

    res = _search(configs.build_system("small"), 2, Interrupting)
    assert res.stop_reason == "interrupted" and not res.complete
    assert 8 <= res.unique_state_count < 3_352
    assert res.verdict().startswith("no violation in the")


@needs_ray
def test_an_actor_running_other_sources_refuses_to_start(local_ray: None) -> None:
    """An actor whose machine has other spec or explorer sources than the driver (here: the
    driver claims another hash) refuses the recipe: the search fails naming the cause."""
    from smcd_check.explorer.cluster import RayActors

    def other_sources(n: int, recipe: Any) -> RayActors:
        return RayActors(n, recipe, fingerprint="0" * 16)

    with pytest.raises(WorkerFailed, match="install the same version on every node"):
        _search(configs.build_system("small"), 2, other_sources)


def test_a_cluster_address_where_nothing_listens_fails_fast() -> None:
    """Ray retries a dead head address for minutes: the address is probed first, and a
    refused connection or a malformed address is a one-line error naming it."""
    import socket

    from smcd_check.explorer.cluster import ClusterUnavailable, probe

    with socket.socket() as s:  # a port that was free a moment ago: nothing listens there
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with pytest.raises(ClusterUnavailable, match=f"nothing answers at 127.0.0.1:{port}"):
        probe(f"127.0.0.1:{port}")
    with pytest.raises(ClusterUnavailable, match="expected HOST:PORT"):
        probe("nonsense")
    with socket.socket() as s:  # something listens: no error
        s.bind(("127.0.0.1", 0))
        s.listen()
        probe(f"127.0.0.1:{s.getsockname()[1]}")


@needs_ray
def test_progress_reports_each_workers_states_and_rate(local_ray: None) -> None:
    """The progress callback of a cluster run gets, per worker, the states it owns and its
    rate; together they are the states the workers found after the prefix."""
    from smcd_check.explorer.cluster import ray_transport

    seen: list[Any] = []
    model = configs.build_system("small")
    ex = Explorer(model).with_workers(2).with_progress(seen.append, interval=0.0)
    props = [as_property(p) for p in model.properties()]
    res = parallel_search(ex, props, warmup_states=8, transport=ray_transport)
    per_worker = [p.workers for p in seen if p.workers]
    assert per_worker and all(len(w) == 2 for w in per_worker)
    last = per_worker[-1]
    assert all(k > 0 and r > 0 for k, r in last)
    assert sum(k for k, _r in last) <= res.unique_state_count
