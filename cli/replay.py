"""``smcd-check replay TRACE``: re-check a saved JSON trace against the spec.

Re-executes every recorded step with the spec's own step function (see
``smcd_check.explorer.trace``). Exit 0: the trace replays exactly as recorded and the recorded
violation is reproduced at the recorded step; 1: it diverges (a step the spec forbids, a
different state, or the property no longer fails there); 2: the trace file is malformed or
names an unknown config or fault. A ``--target`` option (an implementation adapter) is added by
the conformance layer through ``replay_trace(trace, target=...)``.
"""

from __future__ import annotations

import sys
from pathlib import Path

import click

from smcd_check.cli.common import EXIT_FINDING, EXIT_OK, echo_json, fail_input


@click.command(name="replay")
@click.argument("trace_file", metavar="TRACE", type=click.Path(dir_okay=False))
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
def command(trace_file: str, as_json: bool) -> None:
    """Re-check a saved JSON trace (from explore --trace-out) against the spec."""
    from smcd_check.explorer.trace import TraceFormatError, load_trace, replay_trace

    try:
        trace = load_trace(Path(trace_file))
        result = replay_trace(trace)
    except TraceFormatError as exc:
        fail_input(str(exc))
    if as_json:
        echo_json(
            {
                "trace": trace_file,
                "config": trace.config,
                "fault": trace.fault,
                "property": trace.property_name,
                "ok": result.ok,
                "steps_replayed": result.steps_replayed,
                "total_steps": result.total_steps,
                "diverged_at": result.diverged_at,
                "message": result.message,
            }
        )
    else:
        head = f"trace {trace_file}: config {trace.config}" + (
            f", fault {trace.fault}" if trace.fault else ""
        )
        click.echo(head)
        click.echo(("REPRODUCED: " if result.ok else "DIVERGED: ") + result.message)
    sys.exit(EXIT_OK if result.ok else EXIT_FINDING)
