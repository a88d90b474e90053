"""``smcd-check replay TRACE``: re-check a saved JSON trace against the spec, or a target.

Without ``--target`` an explorer trace (``explore --trace-out``, version 1 or 2) is re-executed
step by step with the spec's own step function (see ``smcd_check.explorer.trace``). Exit 0: the
trace replays exactly as recorded and the recorded violation is reproduced at the recorded step;
1: it diverges (a step the spec forbids, a different state, or the property no longer fails
there); 2: the trace file is malformed (names the field) or names an unknown config or fault.

With ``--target SPEC`` any trace (explorer, lockstep ``conform --save-trace``, capture, or a
corpus entry) runs on that implementation through the conformance adapter: an explorer trace's
system actions are mapped to adapter operations (``smcd_check.conformance.traces.mapping``) and
every operation is judged against the expectation recorded in the trace. Exit 0 when the target
agrees at every operation; 1 when it does not (naming the operation, expected vs seen, and the
trace step it stands for) or when it can run nothing of the trace (UNSUPPORTED, naming the
missing capability: a run that checked nothing never passes); 2 for a malformed trace or a
target that cannot be loaded. Interleavings the target cannot force are printed as notes.
"""

from __future__ import annotations

import sys
from pathlib import Path

import click

from smcd_check.cli.common import EXIT_FINDING, EXIT_OK, echo_json, fail_input


def _trace_kind(trace_file: str) -> str | None:
    """The ``kind`` of a trace file, or None when it has none or cannot be read."""
    import json

    try:
        doc = json.loads(Path(trace_file).read_text())
    except (OSError, ValueError, RecursionError):
        return None  # the trace loader below names what is wrong
    return doc.get("kind") if isinstance(doc, dict) else None


@click.command(name="replay")
@click.argument("trace_file", metavar="TRACE", type=click.Path(dir_okay=False))
@click.option(
    "--target",
    "target_spec",
    metavar="SPEC",
    default=None,
    help="Run the trace on this implementation (spec, model, zoo:NAME, 'cmd:...', "
    "package.module:factory, kernel) instead of re-checking it on the spec alone.",
)
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
def command(trace_file: str, target_spec: str | None, as_json: bool) -> None:
    """Re-check a saved JSON trace against the spec, or run it on a target with --target."""
    if target_spec is not None:
        _on_target(trace_file, target_spec, as_json)
        return

    if _trace_kind(trace_file) == "race-schedule":
        from smcd_check.cli.races import replay_race_trace

        sys.exit(replay_race_trace(trace_file, as_json))

    from smcd_check.explorer.trace import TraceFormatError, load_trace, replay_trace

    try:
        trace = load_trace(Path(trace_file))
        result = replay_trace(trace)
    except TraceFormatError as exc:
        fail_input(str(exc))
    except RecursionError:
        fail_input(f"{trace_file}: the trace is nested too deeply to replay")
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


def _on_target(trace_file: str, target_spec: str, as_json: bool) -> None:
    from smcd_check.conformance.runner.run import Verdict
    from smcd_check.conformance.targets.adapter import TargetLoadError
    from smcd_check.conformance.targets.load import load_target
    from smcd_check.conformance.traces.replay import TraceError, load, replay

    try:
        trace = load(trace_file)
    except TraceError as exc:
        fail_input(str(exc))
    except RecursionError:
        fail_input(f"{trace_file}: the trace is nested too deeply to replay")
    try:
        target = load_target(target_spec)
    except TargetLoadError as exc:
        fail_input(str(exc))
    try:
        out = replay(trace, target)
    finally:
        target.close()
    if as_json:
        echo_json({"trace_file": trace_file, **out.to_json()})
    else:
        steps = sum(len(r.result.steps) for r in out.runs)
        tail = f" ({steps} operations)" if out.verdict is Verdict.OK and steps else ""
        click.echo(f"trace {trace_file} on {out.target}: {out.verdict.value}: "
                   f"{out.message}{tail if not out.message else ''}")
        for note in out.notes:
            click.echo(f"  note: {note}")
        for line in out.not_run:
            if line not in out.message:
                click.echo(f"  not run: {line}")
    bad = out.verdict.is_bad or out.verdict is Verdict.UNSUPPORTED
    sys.exit(EXIT_FINDING if bad else EXIT_OK)
