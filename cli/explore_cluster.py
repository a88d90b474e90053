"""``smcd-check explore --cluster ADDRESS|auto``: the breadth-first search on a Ray cluster.

The search is the parallel one (``--workers``), its workers Ray actors
(:mod:`smcd_check.explorer.cluster`): the same counts, verdicts, depths, coverage and shortest
counterexamples as a run on one machine. ``ADDRESS`` is a head started with
``ray start --head`` (``HOST:6379``); ``auto`` joins the cluster this machine belongs to, or
starts a local one-machine Ray when there is none. ``--workers N`` is the number of actors
(default: the cluster's CPUs). Ray is an optional extra; without it ``--cluster`` is a one-line
error naming the extra (exit 2). A worker that dies ends the run with a one-line error, the
partial counts and exit 3, never with a verdict.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import Any, NoReturn

import click

from smcd_check.cli.common import EXIT_FAILED, fail_input


def option(f: Callable[..., Any]) -> Callable[..., Any]:
    """Add ``--cluster`` to the ``explore`` command."""
    return click.option(
        "--cluster",
        default=None,
        metavar="ADDRESS|auto",
        help="Run the search's workers as actors on a Ray cluster: ADDRESS of its head "
        "(ray start --head), or auto (this machine's cluster; a local one if none). Same "
        "results as on one machine; --workers is the number of actors (default: the "
        "cluster's CPUs). Needs the extra: pip install 'smcd-check[cluster]'.",
    )(f)


def check(cluster: str | None, *, liveness: bool, graph_out: str | None, mode: bool) -> None:
    """Refuse what ``--cluster`` cannot run (before anything is explored)."""
    if cluster is None:
        return
    if not cluster.strip():
        fail_input("--cluster needs an ADDRESS (HOST:PORT of a Ray head) or auto")
    if mode:
        fail_input("--cluster runs the breadth-first search: it takes no --simulate or --serve")
    if liveness or graph_out is not None:
        which = "--liveness" if liveness else "--graph-out"
        fail_input(f"{which} needs the whole state graph on one machine: drop --cluster")


def setup(explorer: Any, cluster: str, workers: int | None, *, quiet: bool) -> bool:
    """Join the cluster and give ``explorer`` Ray actors as its workers. Returns True when
    this started Ray (the caller calls :func:`teardown`)."""
    from smcd_check.explorer.cluster import ClusterUnavailable, cluster_cpus, connect, ray_transport

    try:
        started = connect(cluster, quiet=quiet)
    except ClusterUnavailable as exc:
        fail_input(str(exc))
    explorer.with_workers(workers if workers is not None else cluster_cpus())
    explorer.with_transport(ray_transport)
    return started


def teardown() -> None:
    from smcd_check.explorer.cluster import disconnect

    disconnect()


def failed(exc: Any) -> NoReturn:
    """A worker died: one line saying which and why, the partial counts, exit 3."""
    lines = [ln.strip() for ln in str(exc).splitlines() if ln.strip()]
    # "worker W failed:", the reason (a Ray actor's death in one line, or a local worker's
    # traceback, whose last line says what), then the partial counts' line
    reason = lines[1:-1] if exc.states is not None else lines[1:]
    head = " ".join([lines[0] if lines else "a worker failed:", *reason[-1:]])
    click.echo(f"smcd-check: error: {head}", err=True)
    if exc.states is not None:
        click.echo(
            f"partial: {exc.states:,} states in the BFS levels completed before it "
            f"(depth {exc.depth}); no verdict",
            err=True,
        )
    sys.exit(EXIT_FAILED)
