"""The other ways to run ``smcd-check explore``: ``--simulate`` and ``--serve``.

``explore`` itself stays the breadth-first search; these options dispatch here:

* ``--simulate [--walks N --depth D --seed S]``: random walks with the same property checks
  (:mod:`smcd_check.explorer.simulate`). Prints the verdict, walks/s and states/s (CPU), the
  depth reached and, for a violation, the steps; ``--trace-out`` / ``--msc-out`` write the
  counterexample as for a breadth-first run (``smcd-check replay`` accepts the trace). Without
  ``--seed`` a seed is drawn and printed, so every run can be repeated. Exit 0: no violation in
  the walks; 1: a violation; 130: Ctrl-C (after the partial result).
* ``--serve [--port N --host H] [--open-trace FILE]``: the web explorer
  (:mod:`smcd_check.explorer.web`), on 127.0.0.1 unless told otherwise. With ``--fault`` it
  first searches the shortest counterexample and prints the link that opens at its violating
  step; with ``--open-trace`` the link opens a trace file's path at its last step.
"""

from __future__ import annotations

import random
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click

from smcd_check.cli.common import EXIT_FINDING, EXIT_INTERRUPTED, EXIT_OK, echo_json, fail_input

#: the option names this module owns, as click passes them
NAMES = ("simulate", "walks", "depth", "seed", "serve", "port", "host", "open_trace")


def options(f: Callable[..., Any]) -> Callable[..., Any]:
    """Add the simulation and web-explorer options to the ``explore`` command."""
    for decorator in reversed(
        [
            click.option(
                "--simulate",
                is_flag=True,
                help="Random walks instead of exhaustive search (TLC's simulation mode).",
            ),
            click.option(
                "--walks",
                type=click.IntRange(min=1),
                default=None,
                help="--simulate: number of walks (default 1000).",
            ),
            click.option(
                "--depth",
                type=click.IntRange(min=1),
                default=None,
                help="--simulate: steps per walk at most (default 100).",
            ),
            click.option(
                "--seed",
                type=click.IntRange(min=0),
                default=None,
                help="--simulate: random seed (default: drawn and printed).",
            ),
            click.option(
                "--serve",
                is_flag=True,
                help="Open the web explorer (a local page to step through the model).",
            ),
            click.option(
                "--port",
                type=click.IntRange(min=0, max=65535),
                default=None,
                help="--serve: TCP port (default 8080; 0: any free port).",
            ),
            click.option(
                "--host",
                default=None,
                metavar="ADDR",
                help="--serve: address to listen on (default 127.0.0.1, this machine only).",
            ),
            click.option(
                "--open-trace",
                type=click.Path(dir_okay=False),
                default=None,
                metavar="FILE",
                help="--serve: open this JSON trace at its last step.",
            ),
        ]
    ):
        f = decorator(f)
    return f


def requested(modes: dict[str, Any]) -> bool:
    """True when an option of this module was given (``explore`` then dispatches here)."""
    return any(modes.get(k) not in (None, False) for k in NAMES)


def run(
    modes: dict[str, Any],
    *,
    name: str,
    fault: str | None,
    config_given: bool,
    fault_given: bool,
    max_states: int | None,
    max_seconds: float | None,
    liveness: bool,
    trace_out: str | None,
    msc_out: str | None,
    graph_out: str | None,
    as_json: bool,
    quiet: bool,
) -> None:
    """Check the option combination, then simulate or serve (exits with the command's code)."""
    simulate, serve = bool(modes.get("simulate")), bool(modes.get("serve"))
    if simulate and serve:
        fail_input("--simulate and --serve cannot be combined")
    if not simulate:
        for opt in ("walks", "depth", "seed"):
            if modes.get(opt) is not None:
                fail_input(f"--{opt} needs --simulate")
    if not serve:
        for opt in ("port", "host", "open_trace"):
            if modes.get(opt) is not None:
                fail_input(f"--{opt.replace('_', '-')} needs --serve")
    if liveness:
        fail_input("--liveness needs the whole state graph: use it without --simulate/--serve")
    if graph_out is not None:
        fail_input("--graph-out needs the whole state graph: use it without --simulate/--serve")
    if serve:
        for opt, value in (
            ("--trace-out", trace_out),
            ("--msc-out", msc_out),
            ("--json", as_json or None),
            ("--max-states", max_states),
            ("--max-seconds", max_seconds),
        ):
            if value is not None:
                fail_input(f"{opt} cannot be used with --serve (the page offers the trace)")
        _serve(modes, name, fault, config_given, fault_given, quiet)
    else:
        _simulate(modes, name, fault, max_states, max_seconds, trace_out, msc_out, as_json, quiet)


# -- simulation -------------------------------------------------------------------------------


class _SimProgress:
    """Throttled live line on stderr: walks, rates, depth."""

    def __init__(self) -> None:
        from rich.console import Console
        from rich.live import Live
        from rich.text import Text

        self._text = Text
        self.live = Live(
            Text("simulating..."),
            console=Console(stderr=True),
            refresh_per_second=4,
            transient=True,
        )
        self.live.start()

    def update(self, p: Any) -> None:
        self.live.update(
            self._text(
                f"simulating: {p.walks:,} walks  {p.walks_per_second:,.0f} walks/s  "
                f"{p.states_per_second:,.0f} states/s  depth up to {p.max_depth}  "
                f"{p.seconds:.1f} s"
            )
        )

    def stop(self) -> None:
        self.live.stop()


def _simulate(
    modes: dict[str, Any],
    name: str,
    fault: str | None,
    max_states: int | None,
    max_seconds: float | None,
    trace_out: str | None,
    msc_out: str | None,
    as_json: bool,
    quiet: bool,
) -> None:
    from smcd_check.explorer.simulate import DEFAULT_DEPTH, DEFAULT_WALKS, simulate
    from smcd_check.spec import configs

    walks = modes.get("walks") or DEFAULT_WALKS
    depth = modes.get("depth") or DEFAULT_DEPTH
    seed = modes.get("seed")
    if seed is None:
        seed = random.SystemRandom().randrange(2**32)
    try:
        model: Any = configs.build_system(name, fault)
    except Exception as exc:  # a config/fault combination the spec refuses
        fail_input(f"cannot build config {name!r} with fault {fault!r}: {exc}")
    reporter = None if quiet or as_json or not sys.stderr.isatty() else _SimProgress()
    try:
        result = simulate(
            model,
            walks=walks,
            depth=depth,
            seed=seed,
            max_seconds=max_seconds,
            max_states=max_states,
            progress=reporter.update if reporter is not None else None,
        )
    finally:
        if reporter is not None:
            reporter.stop()
    _write_outputs(model, result, name, fault, trace_out, msc_out)
    rerun = (
        f"smcd-check explore --simulate --config {name}"
        + (f" --fault {fault}" if fault else "")
        + f" --walks {walks} --depth {depth} --seed {seed}"
    )
    if as_json:
        echo_json(_sim_json(model, result, name, fault, rerun))
    else:
        _print_sim(model, result, name, fault, trace_out, msc_out, rerun)
    if not result.ok:
        sys.exit(EXIT_FINDING)
    sys.exit(EXIT_INTERRUPTED if result.stop_reason == "interrupted" else EXIT_OK)


def _write_outputs(
    model: Any,
    result: Any,
    name: str,
    fault: str | None,
    trace_out: str | None,
    msc_out: str | None,
) -> None:
    disc = result.violation
    if disc is None:
        return
    try:
        if trace_out is not None:
            from smcd_check.explorer.trace import trace_document, write_trace

            doc = trace_document(
                disc,
                model,
                family="smcd-system",
                config=name,
                fault=fault,
                explored_states=result.states,
            )
            write_trace(Path(trace_out), doc)
        if msc_out is not None:
            from smcd_check.explorer.msc import write_msc
            from smcd_check.explorer.render import format_steps

            title = (
                f"smcd-check explore --simulate --config {name}"
                + (f" --fault {fault}" if fault else "")
                + f" --seed {result.seed}"
            )
            write_msc(
                Path(msc_out),
                model,
                disc.path,
                title=title,
                violation=disc.name,
                steps_text=format_steps(model, disc.path),
            )
    except OSError as exc:
        fail_input(f"cannot write output: {exc}")


def _print_sim(
    model: Any,
    r: Any,
    name: str,
    fault: str | None,
    trace_out: str | None,
    msc_out: str | None,
    rerun: str,
) -> None:
    click.echo(
        f"config {name}" + (f", fault {fault}" if fault else "") + f" ({model.name}), "
        f"simulation: {r.walks_requested:,} walks of up to {r.depth_limit} steps, seed {r.seed}"
    )
    click.echo(r.verdict())
    click.echo(
        f"walks {r.walks:,}  states {r.states:,}  steps {r.steps:,}  depth max {r.max_depth} "
        f"(mean {r.mean_depth:.1f})  time {r.seconds:.2f} s  ({r.walks_per_second:,.0f} walks/s, "
        f"{r.states_per_second:,.0f} states/s CPU)  peak RSS {r.peak_rss_bytes / 2**20:.0f} MiB"
    )
    if r.endings:
        click.echo("walks ended: " + ", ".join(f"{k} {v:,}" for k, v in sorted(r.endings.items())))
    hook = getattr(model, "action_types", None)
    declared = list(hook()) if hook is not None else []
    if r.coverage:
        click.echo("coverage (steps per action type):")
        for k, v in sorted(r.coverage.items()):
            click.echo(f"  {k:34} {v:>10,}")
        if r.violation is None:
            for k in (t for t in declared if t not in r.coverage):
                click.echo(f"  {k:34} {'not taken':>11}")
    for nm, d in r.examples.items():
        status = (
            f"reached ({len(d.path)} steps)"
            if d is not None
            else f"not reached in {r.walks:,} walks"
        )
        click.echo(f"sometimes: {nm}: {status}")
    if r.violation is not None:
        from smcd_check.explorer.render import format_steps

        click.echo(
            f"\ncounterexample ({len(r.violation.path)} steps, from a walk of "
            f"{r.violation_walk_length}) for: {r.violation.name}"
        )
        for line in format_steps(model, r.violation.path):
            click.echo(line)
        for label, path in (("trace", trace_out), ("sequence chart", msc_out)):
            if path is not None:
                click.echo(f"{label} written to {path}")
    click.echo(f"rerun: {rerun}")


def _sim_json(model: Any, r: Any, name: str, fault: str | None, rerun: str) -> dict[str, Any]:
    from smcd_check.explorer.model import action_label

    disc = r.violation
    return {
        "mode": "simulate",
        "config": name,
        "fault": fault,
        "model": model.name,
        "verdict": r.verdict(),
        "ok": r.ok,
        "stop_reason": r.stop_reason,
        "seed": r.seed,
        "walks_requested": r.walks_requested,
        "depth_limit": r.depth_limit,
        "walks": r.walks,
        "states": r.states,
        "steps": r.steps,
        "max_depth": r.max_depth,
        "mean_depth": round(r.mean_depth, 2),
        "endings": r.endings,
        "seconds": round(r.seconds, 3),
        "cpu_seconds": round(r.cpu_seconds, 3),
        "walks_per_second": round(r.walks_per_second, 1),
        "states_per_second": round(r.states_per_second),
        "peak_rss_bytes": r.peak_rss_bytes,
        "coverage": r.coverage,
        "sometimes": {k: (None if d is None else len(d.path)) for k, d in r.examples.items()},
        "rerun": rerun,
        "violation": None
        if disc is None
        else {
            "property": disc.name,
            "kind": disc.kind,
            "walk_length": r.violation_walk_length,
            "steps": [action_label(model, a) for a in disc.path.actions],
        },
    }


# -- web explorer -----------------------------------------------------------------------------


def _serve(
    modes: dict[str, Any],
    name: str,
    fault: str | None,
    config_given: bool,
    fault_given: bool,
    quiet: bool,
) -> None:
    from smcd_check.explorer.web.app import create_app, page_url
    from smcd_check.explorer.web.server import DEFAULT_HOST, DEFAULT_PORT, base_url, bind, serve
    from smcd_check.explorer.web.session import Workspace

    ws = Workspace(default_config=name)
    start = page_url(name, fault, [])
    note = ""
    trace_file = modes.get("open_trace")
    if trace_file is not None:
        start, note = _trace_start(trace_file, name, fault, config_given, fault_given, ws)
    elif fault is not None:
        outcome = ws.search(name, fault)
        if outcome.indices is not None:
            start = page_url(name, fault, outcome.indices)
            note = (
                f"counterexample for {outcome.property_name} "
                f"({len(outcome.indices) - 1} steps, shortest); "
                "the link opens at its violating step"
            )
        else:
            note = outcome.verdict
    host = modes.get("host") or DEFAULT_HOST
    port = modes.get("port")
    try:
        sock = bind(host, DEFAULT_PORT if port is None else port)
    except OSError as exc:
        fail_input(f"cannot listen on {host}:{DEFAULT_PORT if port is None else port}: {exc}")
    url = base_url(sock)
    if host not in ("127.0.0.1", "localhost", "::1"):
        click.echo(
            f"warning: listening on {host}: anyone who can reach it can browse the explorer "
            "(read-only, no authentication)",
            err=True,
        )
    if note:
        click.echo(note)
    click.echo(f"smcd-check explorer at {url}{start}")
    if not quiet:
        click.echo("read-only: no request changes a file; Ctrl-C stops it")
    sys.stdout.flush()
    serve(create_app(ws), sock)


def _trace_start(
    trace_file: str,
    name: str,
    fault: str | None,
    config_given: bool,
    fault_given: bool,
    ws: Any,
) -> tuple[str, str]:
    """The start link for a trace file (config and fault come from the trace)."""
    from smcd_check.explorer.trace import TraceFormatError, load_trace, replay_trace
    from smcd_check.explorer.web.app import page_url
    from smcd_check.explorer.web.session import RequestError, indices_of

    try:
        trace = load_trace(Path(trace_file))
        if trace.model != "smcd-system":
            raise TraceFormatError(
                f"the web explorer opens smcd-system traces, not {trace.model!r}"
            )
        if (config_given and trace.config != name) or (fault_given and trace.fault != fault):
            raise TraceFormatError(
                f"the trace is for config {trace.config!r} fault {trace.fault!r}; "
                "leave out --config/--fault or give the trace's"
            )
        config, tfault = ws.check_names(trace.config, trace.fault)
        model, lock = ws.model(config, tfault)
        with lock:
            replayed = replay_trace(trace, model=model)
            indices = (
                indices_of(model, replayed.states, replayed.actions) if replayed.states else ()
            )
    except (TraceFormatError, ValueError) as exc:
        fail_input(f"cannot open trace {trace_file!r}: {exc}")
    except RequestError as exc:  # an unknown config or fault
        fail_input(f"cannot open trace {trace_file!r}: {exc.message}")
    if replayed.ok:
        note = f"trace {trace_file}: {replayed.message}; the link opens at its last step"
    else:
        note = (
            f"warning: trace {trace_file} does not replay: {replayed.message}; "
            f"the link opens the {len(indices) - 1 if indices else 0} steps that replay"
        )
    return page_url(config, tfault, indices), note
