"""``smcd-check races``: enumerate thread interleavings of the shared-memory implementation.

Runs the race explorer (``smcd_check.conformance.races``): each scenario (a few threads using
the blocking socket API over loopback-ism shared memory) is run once per schedule, depth first,
with at most ``--preemptions`` preemptions, and every schedule is checked against the spec's
invariants. Without ``--mutant`` the correct implementation is explored (every scenario, or
``--scenario``); with ``--mutant`` a race from net/smc's history is put back and the explorer
looks for it (in the scenario that shows it, unless ``--scenario`` says otherwise).

Exit codes: 0 no violation within the bounds; 1 a finding (the failing schedule is printed and,
with ``--trace-out``, saved for ``smcd-check replay``); 2 bad input; 130 interrupted.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import click

from smcd_check.cli.common import (
    EXIT_FINDING,
    EXIT_INTERRUPTED,
    EXIT_OK,
    echo_json,
    fail_input,
)


@click.command(name="races")
@click.option("--scenario", "scenario_name", metavar="NAME", default=None,
              help="Explore only this scenario (see --list).")
@click.option("--mutant", "mutant_name", metavar="NAME", default=None,
              help="Put back a historical race (see --list) and look for it.")
@click.option("--preemptions", "-k", type=int, default=None, metavar="K",
              help="Preemption bound (default 1; 2 with --mutant).")
@click.option("--max-schedules", type=int, default=None, metavar="N",
              help="Stop each scenario after N schedules (the result then says incomplete).")
@click.option("--trace-out", type=click.Path(dir_okay=False), default=None,
              help="Save a failing schedule as JSON (replay with 'smcd-check replay').")
@click.option("--svg-out", type=click.Path(dir_okay=False), default=None,
              help="Draw a failing schedule as an SVG swim-lane chart.")
@click.option("--list", "list_only", is_flag=True, help="List scenarios and mutants.")
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
def command(scenario_name: str | None, mutant_name: str | None, preemptions: int | None,
            max_schedules: int | None, trace_out: str | None, svg_out: str | None,
            list_only: bool, as_json: bool) -> None:
    """Explore thread interleavings of the shared-memory loopback-ism (CHESS style)."""
    from smcd_check.conformance.races.explore import (
        RaceInputError,
        explore,
        format_trace,
        mutant_named,
        scenario_for,
        trace_document,
    )
    from smcd_check.conformance.races.mutants import MUTANTS
    from smcd_check.conformance.races.scenarios import SCENARIOS

    if list_only:
        if as_json:
            echo_json({"scenarios": {s.name: s.description for s in SCENARIOS.values()},
                       "mutants": {m.name: {"fix": m.fix, "scenario": m.scenario,
                                            "description": m.description}
                                   for m in MUTANTS.values()}})
            return
        click.echo("scenarios:")
        for s in SCENARIOS.values():
            click.echo(f"  {s.name:<20} {s.description}")
        click.echo("mutants:")
        for m in MUTANTS.values():
            click.echo(f"  {m.name:<24} {m.description}\n  {'':<24} fix: {m.fix}; scenario "
                       f"{m.scenario}")
        return
    if preemptions is not None and not 0 <= preemptions <= 4:
        fail_input(f"--preemptions {preemptions}: expected 0..4")
    if max_schedules is not None and max_schedules < 1:
        fail_input(f"--max-schedules {max_schedules}: expected >= 1")
    try:
        mutant = mutant_named(mutant_name)
        if scenario_name is not None or mutant is not None:
            scenarios = [scenario_for(scenario_name, mutant)]
        else:
            scenarios = list(SCENARIOS.values())
    except RaceInputError as exc:
        fail_input(str(exc))
    bound = preemptions if preemptions is not None else (2 if mutant else 1)
    results: list[Any] = []
    interrupted = False
    progress_on = sys.stderr.isatty() and not as_json
    for sc in scenarios:
        def progress(n: int, depth: int, sc: Any = sc) -> None:
            if progress_on and n % 200 == 0:
                click.echo(f"\r  {sc.name}: {n:,} schedules (depth {depth})", nl=False, err=True)

        r = explore(sc, mutant, preemptions=bound, max_schedules=max_schedules,
                    progress=progress)
        if progress_on:
            click.echo("\r" + " " * 60 + "\r", nl=False, err=True)
        results.append(r)
        if r.interrupted:
            interrupted = True
            break
        if r.finding is not None:
            break
    finding = next((r.finding for r in results if r.finding is not None), None)
    if finding is not None and trace_out:
        import json

        Path(trace_out).write_text(json.dumps(trace_document(finding, bound), indent=1) + "\n")
    if finding is not None and svg_out:
        from smcd_check.conformance.races.picture import schedule_svg

        Path(svg_out).write_text(schedule_svg(finding))
    if as_json:
        echo_json({
            "mutant": mutant_name, "preemption_bound": bound,
            "results": [{"scenario": r.scenario, "schedules": r.schedules,
                         "pruned_by_sleep_sets": r.pruned, "complete": r.complete,
                         "cpu_seconds": round(r.cpu_seconds, 3),
                         "max_decisions": r.max_decisions,
                         "finding": trace_document(r.finding, bound) if r.finding else None}
                        for r in results],
            "interrupted": interrupted})
    else:
        who = f"mutant {mutant_name}" if mutant_name else "the correct implementation"
        click.echo(f"race explorer: {who}, at most {bound} preemption(s) per schedule")
        for r in results:
            if r.complete:
                state = "complete"
            elif r.interrupted:
                state = "interrupted"
            elif r.finding is not None:
                state = "stopped at the first finding"
            else:
                state = "INCOMPLETE (--max-schedules reached)"
            verdict = "FOUND" if r.finding else "no violation"
            click.echo(f"  {r.scenario:<20} {verdict:<13} {r.schedules:>8,} schedules "
                       f"({r.pruned:,} cut by sleep sets), {state}, "
                       f"{r.cpu_seconds:.1f} s CPU, up to {r.max_decisions} decisions per run")
        if finding is not None:
            click.echo("")
            click.echo(format_trace(finding))
            if trace_out:
                click.echo(f"\nschedule saved to {trace_out}; replay: smcd-check replay "
                           f"{trace_out}")
    if interrupted:
        sys.exit(EXIT_INTERRUPTED)
    sys.exit(EXIT_FINDING if finding is not None else EXIT_OK)


def replay_race_trace(trace_file: str, as_json: bool) -> int:
    """``smcd-check replay`` for ``"kind": "race-schedule"`` traces: re-run the schedule.

    Returns 0 when the recorded property fails again (reproduced), 1 when the schedule no
    longer applies or runs clean (diverged); a malformed trace is exit 2 (one line).
    """
    from smcd_check.conformance.races.explore import RaceInputError, load_trace, replay

    try:
        doc = load_trace(trace_file)
        outcome = replay(doc)
    except RaceInputError as exc:
        fail_input(str(exc))
    if as_json:
        echo_json({"trace": trace_file, "kind": "race-schedule", "scenario": doc["scenario"],
                   "mutant": doc.get("mutant"), "property": doc["property"],
                   "ok": outcome.reproduced, "message": outcome.message})
    else:
        head = f"race trace {trace_file}: scenario {doc['scenario']}"
        if doc.get("mutant"):
            head += f", mutant {doc['mutant']}"
        click.echo(head)
        click.echo(("REPRODUCED: " if outcome.reproduced else "DIVERGED: ") + outcome.message)
    return EXIT_OK if outcome.reproduced else EXIT_FINDING
