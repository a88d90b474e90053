"""``smcd-check explore``: explore every reachable state of a configured SMC-D system.

Prints a verdict, the counts (states, transitions, depth, time, rate, memory), the coverage
table and, when a property fails, the shortest counterexample as readable steps. Optionally
writes the counterexample as a JSON trace (``--trace-out``, replay with ``smcd-check replay``),
as a message-sequence chart (``--msc-out``, SVG or HTML) and the explored graph
(``--graph-out``, DOT or GraphML). Exit 0: all properties hold (or no violation in a bounded
search); 1: a violation; 2: bad input. Ctrl-C stops with a partial verdict ("no violation in
the N states explored") and exit 130.
"""

from __future__ import annotations

import math
import sys
from pathlib import Path
from typing import Any

import click

from smcd_check.cli import explore_bigspace, explore_cluster, explore_modes
from smcd_check.cli.common import EXIT_FINDING, EXIT_INTERRUPTED, EXIT_OK, echo_json, fail_input


def _configs() -> Any:
    from smcd_check.spec import configs

    return configs


@click.command(name="explore")
@click.option(
    "--config",
    "config_name",
    default=None,
    metavar="NAME",
    help="Named system config (default: reference; see --list-configs).",
)
@click.option(
    "--fault",
    default=None,
    metavar="NAME",
    help="Switch on one known-wrong behaviour (see --list-faults).",
)
@click.option("--list-configs", is_flag=True, help="List the configs and exit.")
@click.option("--list-faults", is_flag=True, help="List the faults and exit.")
@click.option(
    "--max-states",
    type=click.IntRange(min=1),
    default=None,
    help="Stop after this many states (partial verdict).",
)
@click.option(
    "--max-seconds",
    type=click.FloatRange(min=0, min_open=True),
    default=None,
    help="Stop after this many seconds (partial verdict).",
)
@click.option(
    "--liveness",
    is_flag=True,
    help="Also check the eventually properties (builds the state graph).",
)
@click.option(
    "--trace-out",
    type=click.Path(dir_okay=False, writable=True),
    default=None,
    help="Write the counterexample as a JSON trace.",
)
@click.option(
    "--msc-out",
    type=click.Path(dir_okay=False, writable=True),
    default=None,
    help="Write the counterexample as a sequence chart (.svg or .html).",
)
@click.option(
    "--graph-out",
    type=click.Path(dir_okay=False, writable=True),
    default=None,
    help="Write the explored graph (.dot/.gv or .graphml).",
)
@click.option(
    "--workers",
    type=click.IntRange(min=1),
    default=None,
    help="Worker processes for the search (default: every core; 1: sequential). Same "
    "counts, verdicts and shortest counterexamples either way. Measured on 2 cores "
    "(bench/explore_bench.py): 2 workers finish reference and large in about 0.8x the "
    "sequential time when each has a core to itself, using about 1.45x the CPU; on a busy "
    "machine --workers 1 is faster.",
)
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
@click.option("--quiet", is_flag=True, help="No progress display.")
@explore_modes.options
@explore_bigspace.options
@explore_cluster.option
def command(
    config_name: str | None,
    fault: str | None,
    list_configs: bool,
    list_faults: bool,
    max_states: int | None,
    max_seconds: float | None,
    liveness: bool,
    trace_out: str | None,
    msc_out: str | None,
    graph_out: str | None,
    workers: int | None,
    as_json: bool,
    quiet: bool,
    cluster: str | None,
    **modes: Any,
) -> None:
    """Explore every reachable state of an SMC-D system and check its properties.

    --simulate samples it with random walks instead; --serve opens the web explorer.
    """
    configs = _configs()
    big = explore_bigspace.pop(modes)  # --bitstate, --symmetry, --checkpoint, --resume
    _check_flags(configs, config_name, fault, list_configs, list_faults, max_seconds)
    if list_faults:
        from smcd_check.spec.faults import Fault

        rows = [
            {"name": f.value, "doc": f.doc, "config": configs.FAULT_CONFIGS.get(f)} for f in Fault
        ]
        if as_json:
            echo_json(rows)
        else:
            for r in rows:
                click.echo(f"{r['name']:28} {r['config'] or '':14} {r['doc']}")
        return
    if list_configs:
        rows = [
            {
                "name": p.name,
                "description": p.description,
                "reachable_states": p.reachable,
                "finding": p.finding,
            }
            for p in configs.PRESETS.values()
        ]
        if as_json:
            echo_json(rows)
        else:
            width = max(len(r["name"]) for r in rows)
            for r in rows:
                if r["finding"]:
                    n = "finding"
                elif r["reachable_states"]:
                    n = f"{r['reachable_states']:,} states"
                else:
                    n = "not pinned"
                mark = " (default)" if r["name"] == configs.DEFAULT else ""
                click.echo(f"{r['name']:{width}} {n:>14}  {r['description']}{mark}")
        return
    explore_cluster.check(
        cluster, liveness=liveness, graph_out=graph_out, mode=explore_modes.requested(modes)
    )
    name = config_name if config_name is not None else configs.DEFAULT
    if fault is not None:
        from smcd_check.spec.faults import parse_fault

        try:
            parsed = parse_fault(fault)
        except ValueError as exc:
            fail_input(str(exc))
        fault = parsed.value
        if config_name is None:
            name = configs.FAULT_CONFIGS.get(parsed, configs.DEFAULT)
    if name not in configs.PRESETS:
        fail_input(f"unknown config {name!r}; known configs: {', '.join(configs.PRESETS)}")
    for opt, value, suffixes in (
        ("--msc-out", msc_out, (".svg", ".html", ".htm")),
        ("--graph-out", graph_out, (".dot", ".gv", ".graphml")),
    ):
        if value is not None and Path(value).suffix.lower() not in suffixes:
            fail_input(f"{opt} {value!r}: the file name must end in {', '.join(suffixes)}")
    if explore_modes.requested(modes):  # --simulate / --serve (cli/explore_modes.py)
        if explore_bigspace.given(big):
            fail_input(
                f"{explore_bigspace.given(big)[0]} applies to the exhaustive search, not to "
                "--simulate/--serve"
            )
        explore_modes.run(
            modes,
            name=name,
            fault=fault,
            config_given=config_name is not None,
            fault_given=fault is not None,
            max_states=max_states,
            max_seconds=max_seconds,
            liveness=liveness,
            trace_out=trace_out,
            msc_out=msc_out,
            graph_out=graph_out,
            as_json=as_json,
            quiet=quiet,
        )
        return
    try:
        model = configs.build_system(name, fault, liveness=liveness)
    except Exception as exc:  # a config/fault combination the spec refuses
        fail_input(f"cannot build config {name!r} with fault {fault!r}: {exc}")

    from smcd_check.explorer.engine import Explorer

    explorer: Explorer = Explorer(model).bounded(max_states=max_states, max_seconds=max_seconds)
    explorer.with_graph(graph_out is not None)
    explorer.with_workers(workers)
    if cluster:
        if explore_bigspace.given(big):
            fail_input(f"{explore_bigspace.given(big)[0]} runs on one machine: drop --cluster")
        # the partitioned search stores every state (no symmetry reduction, as with --workers)
        explorer.with_symmetry(False)
    else:
        explore_bigspace.configure(explorer, big, workers is not None)
    started = explore_cluster.setup(explorer, cluster, workers, quiet=quiet) if cluster else False
    reporter = None if quiet or not sys.stderr.isatty() else _RichProgress()
    if reporter is not None:
        explorer.with_progress(reporter.update)
    from smcd_check.explorer.parallel import WorkerFailed

    try:
        result = explorer.bfs()
    except explore_bigspace.RunError as exc:  # a checkpoint that cannot be resumed, ...
        fail_input(str(exc))
    except WorkerFailed as exc:
        if reporter is not None:
            reporter.stop()
            reporter = None
        explore_cluster.failed(exc)
    finally:
        if reporter is not None:
            reporter.stop()
        if started:
            explore_cluster.teardown()
    _write_outputs(model, result, name, fault, trace_out, msc_out, graph_out)
    if as_json:
        echo_json({**_as_json(model, result, name, fault), **explore_bigspace.json_fields(result)})
        disc = result.violation or next((d for d in result.liveness.values() if d), None)
        for label, path in (("trace", trace_out), ("sequence chart", msc_out)):
            if path is not None and disc is None:
                click.echo(f"{label} not written to {path}: no violation", err=True)
    else:
        _print(model, result, name, fault, trace_out, msc_out, graph_out)
        declared = explorer.symmetry_applies_to_model()
        for line in explore_bigspace.lines(result, big, declared):
            click.echo(line)
        if liveness and not result.complete:
            click.echo(
                "eventually: NOT CHECKED: the exploration stopped early "
                f"({result.stop_reason}); the eventually-properties need the whole state graph"
            )
    if not result.ok:
        sys.exit(EXIT_FINDING)
    sys.exit(EXIT_INTERRUPTED if result.stop_reason == "interrupted" else EXIT_OK)


def _check_flags(
    configs: Any,
    config_name: str | None,
    fault: str | None,
    list_configs: bool,
    list_faults: bool,
    max_seconds: float | None,
) -> None:
    """Refuse flag combinations and values that would be ignored silently (exit 2, one line)."""
    if list_configs and list_faults:
        fail_input("--list-configs and --list-faults are separate listings: give one")
    if (list_configs or list_faults) and (config_name is not None or fault is not None):
        which = "--list-configs" if list_configs else "--list-faults"
        given = "--config" if config_name is not None else "--fault"
        fail_input(f"{which} lists and exits: it takes no {given}")
    if config_name is not None and config_name not in configs.PRESETS:
        fail_input(
            f"unknown config {config_name!r}; known configs: {', '.join(configs.PRESETS)}"
        )
    if max_seconds is not None and not math.isfinite(max_seconds):
        fail_input(f"--max-seconds must be a finite number of seconds, got {max_seconds}")


class _RichProgress:
    """Throttled live line on stderr: states, rate, frontier, depth."""

    def __init__(self) -> None:
        from rich.console import Console
        from rich.live import Live
        from rich.text import Text

        self._text = Text
        self.live = Live(
            Text("exploring..."), console=Console(stderr=True), refresh_per_second=4, transient=True
        )
        self.live.start()

    def update(self, p: Any) -> None:
        per_worker = "".join(
            f"\n  worker {w}: {k:,} states  {r:,.0f} states/s" for w, (k, r) in enumerate(p.workers)
        )
        self.live.update(
            self._text(
                f"exploring: {p.states:,} states  {p.rate:,.0f} states/s  "
                f"frontier {p.frontier:,}  depth {p.depth}  {p.seconds:.1f} s{per_worker}"
            )
        )

    def stop(self) -> None:
        self.live.stop()


def _write_outputs(
    model: Any,
    result: Any,
    name: str,
    fault: str | None,
    trace_out: str | None,
    msc_out: str | None,
    graph_out: str | None,
) -> None:
    disc = result.violation or next((d for d in result.liveness.values() if d is not None), None)
    try:
        if disc is not None and trace_out is not None:
            from smcd_check.explorer.trace import trace_document, write_trace

            doc = trace_document(
                disc,
                model,
                family="smcd-system",
                config=name,
                fault=fault,
                explored_states=result.unique_state_count,
            )
            from smcd_check.conformance.traces.document import with_plans

            write_trace(Path(trace_out), with_plans(doc))  # + adapter operations (issue 17)
        if disc is not None and msc_out is not None:
            from smcd_check.explorer.msc import write_msc
            from smcd_check.explorer.render import format_steps

            title = f"smcd-check explore --config {name}" + (f" --fault {fault}" if fault else "")
            write_msc(
                Path(msc_out),
                model,
                disc.path,
                title=title,
                violation=disc.name,
                steps_text=format_steps(model, disc.path),
            )
        if graph_out is not None and result.graph is not None:
            from smcd_check.explorer.graph import export_graph

            states = result.state_at or (lambda k: k)
            export_graph(
                result.graph,
                Path(graph_out),
                states,
                describe=lambda s: model_state_summary(model, s),
            )
    except OSError as exc:
        fail_input(f"cannot write output: {exc}")


def model_state_summary(model: Any, s: Any) -> str:
    """A one-line state label for graph files."""
    try:
        phases = ",".join(f"{ph.client.phase.name}/{ph.server.phase.name}" for ph in s.pairs)
        data = ";".join(
            f"prep={d.tx_curs_prep.wrap},{d.tx_curs_prep.count} "
            f"cons={d.r_cons.wrap},{d.r_cons.count}"
            for d in s.data
        )
        return f"{s.mode.value} {phases} {data} lgrs={len(s.lc.lgrs)}"
    except AttributeError:
        return repr(s)


def _print(
    model: Any,
    r: Any,
    name: str,
    fault: str | None,
    trace_out: str | None,
    msc_out: str | None,
    graph_out: str | None,
) -> None:
    click.echo(f"config {name}" + (f", fault {fault}" if fault else "") + f" ({model.name})")
    click.echo(r.verdict())
    click.echo(
        f"states {r.unique_state_count:,}  transitions {r.transition_count:,}  depth "
        f"{r.max_depth}  time {r.seconds:.2f} s  ({r.states_per_second:,.0f} states/s CPU, "
        f"{r.cpu_seconds:.2f} CPU s, {r.workers} worker{'s' if r.workers > 1 else ''})  "
        f"peak RSS {r.peak_rss_bytes / 2**20:.0f} MiB"
    )
    if r.coverage:
        click.echo("coverage (transitions per action type):")
        for k, v in sorted(r.coverage.items()):
            click.echo(f"  {k:34} {v:>10,}")
        for k in r.never_fired:
            click.echo(f"  {k:34} {'NEVER FIRED':>11}")
        if r.never_fired:
            click.echo(
                f"warning: {len(r.never_fired)} action kind(s) the config allows never fired: "
                "the config or the spec is wrong (or a fault disabled them)"
            )
    for nm, d in r.examples.items():
        status = f"reached in {len(d.path)} steps" if d is not None else "NEVER REACHED"
        click.echo(f"sometimes: {nm}: {status}")
    for nm, d in r.liveness.items():
        click.echo(f"eventually: {nm}: {'holds' if d is None else 'VIOLATED'}")
    disc = r.violation or next((d for d in r.liveness.values() if d is not None), None)
    if disc is not None:
        from smcd_check.explorer.render import format_steps

        click.echo(f"\ncounterexample ({len(disc.path)} steps) for: {disc.name}")
        for line in format_steps(model, disc.path):
            click.echo(line)
    for label, path in (("trace", trace_out), ("sequence chart", msc_out), ("graph", graph_out)):
        if path is not None and (disc is not None or label == "graph"):
            click.echo(f"{label} written to {path}")
        elif path is not None:
            click.echo(f"{label} not written to {path}: no violation, so no counterexample")


def _as_json(model: Any, r: Any, name: str, fault: str | None) -> dict[str, Any]:
    from smcd_check.explorer.model import action_label

    disc = r.violation or next((d for d in r.liveness.values() if d is not None), None)
    return {
        "config": name,
        "fault": fault,
        "model": model.name,
        "verdict": r.verdict(),
        "ok": r.ok,
        "complete": r.complete,
        "stop_reason": r.stop_reason,
        "states": r.unique_state_count,
        "transitions": r.transition_count,
        "depth": r.max_depth,
        "seconds": round(r.seconds, 3),
        "cpu_seconds": round(r.cpu_seconds, 3),
        "states_per_second": round(r.states_per_second),
        "peak_rss_bytes": r.peak_rss_bytes,
        "workers": r.workers,
        "coverage": r.coverage,
        "never_fired": r.never_fired,
        "sometimes": {k: (None if d is None else len(d.path)) for k, d in r.examples.items()},
        "eventually": {k: d is None for k, d in r.liveness.items()},
        "eventually_checked": bool(r.liveness) and r.complete,
        "violation": None
        if disc is None
        else {
            "property": disc.name,
            "kind": disc.kind,
            "steps": [action_label(model, a) for a in disc.path.actions],
        },
    }
