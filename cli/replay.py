"""``smcd-check replay TRACE``: re-check a saved JSON trace against the spec.

Re-executes every recorded step with the spec's own step function (see
``smcd_check.explorer.trace``). Exit 0: the trace replays exactly as recorded and the recorded
violation is reproduced at the recorded step; 1: it diverges (a step the spec forbids, a
different state, or the property no longer fails there); 2: the trace file is malformed or
names an unknown config or fault.

With ``--target SPEC`` a conformance trace (``"kind": "conformance"``, written by the lockstep
differential test with ``conform --save-trace``) is replayed against that implementation through
the conformance adapter, step by step against the spec's expectations: exit 0 when the target
agrees at every step, 1 when it does not (naming the step, expected vs seen), 2 for a malformed
trace or a target that cannot be loaded.
"""

from __future__ import annotations

import sys
from pathlib import Path

import click

from smcd_check.cli.common import EXIT_FINDING, EXIT_OK, echo_json, fail_input


def _is_conformance_trace(trace_file: str) -> bool:
    """True when the file is a lockstep trace (``"kind": "conformance"``); False otherwise,
    including when it cannot be read (the explorer's loader then names what is wrong)."""
    import json

    try:
        doc = json.loads(Path(trace_file).read_text())
    except (OSError, ValueError):
        return False
    return isinstance(doc, dict) and doc.get("kind") == "conformance"


@click.command(name="replay")
@click.argument("trace_file", metavar="TRACE", type=click.Path(dir_okay=False))
@click.option(
    "--target",
    "target_spec",
    metavar="SPEC",
    default=None,
    help="Replay a conformance trace against this target (spec, model, zoo:NAME, "
    "'cmd:...', package.module:factory) instead of the spec alone.",
)
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
def command(trace_file: str, target_spec: str | None, as_json: bool) -> None:
    """Re-check a saved JSON trace against the spec, or against a target with --target.

    Explorer traces (explore --trace-out) replay against the spec; conformance traces
    (conform --save-trace) replay against the implementation named by --target.
    """
    if target_spec is not None:
        from smcd_check.conformance.runner.replay import ReplayError, replay_cli
        from smcd_check.conformance.targets.adapter import TargetLoadError

        try:
            code, text, doc = replay_cli(trace_file, target_spec)
        except (ReplayError, TargetLoadError) as exc:
            fail_input(str(exc))
        if as_json:
            echo_json(doc)
        else:
            click.echo(text)
        sys.exit(code)

    from smcd_check.explorer.trace import TraceFormatError, load_trace, replay_trace

    if _is_conformance_trace(trace_file):
        fail_input(
            f"{trace_file} is a conformance trace (from conform --save-trace): replay it "
            "against an implementation with --target SPEC (e.g. --target model)"
        )

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
