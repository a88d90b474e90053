"""``smcd-check trace``: regression corpora of traces that run on any implementation.

* ``trace save TRACE --name NAME [--corpus DIR]`` - shrink a trace (explorer counterexample,
  lockstep shrink, capture) against the faulty target (default: the zoo mutant of its explorer
  fault, or the target the lockstep failed on; ``--shrink-on SPEC``, ``--no-shrink``) and add it
  to a corpus folder (default: the project's ``tests/regressions/``) with its sequence chart.
* ``trace list [--corpus DIR]`` - the entries of a corpus.
* ``trace show TRACE [--msc-out F]`` - a trace's plans as text, and its chart as SVG.
* ``trace capture TRACE --target SPEC --out F`` - run a trace's plans on an implementation (e.g.
  the real kernel) and record what it observed as the expectations (kind ``capture``): replaying
  the capture on another target compares it with that implementation.
* ``trace schema`` - the JSON Schema of the trace format.
* ``trace corpus [--corpus DIR] [--only NAME]`` - regenerate the project's corpus: every explorer
  fault and every zoo mutant contributes its shortest trace.

Exit codes: 0 done; 1 ``corpus`` could not save an entry; 2 bad input (one line).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import click

from smcd_check.cli.common import EXIT_FINDING, echo_json, fail_input


@click.group(name="trace")
def command() -> None:
    """Save traces to regression corpora, list and show them, print the trace schema."""


def _corpus(path: str | None) -> Path:
    from smcd_check.conformance.traces.corpus import project_corpus

    return Path(path) if path is not None else project_corpus()


@command.command(name="save")
@click.argument("trace_file", metavar="TRACE", type=click.Path(dir_okay=False))
@click.option("--name", required=True, help="Corpus entry name (lowercase, digits, . _ -).")
@click.option("--corpus", "corpus_dir", metavar="DIR", default=None,
              help="Corpus folder (default: the project's tests/regressions/).")
@click.option("--shrink-on", "shrink_on", metavar="SPEC", default=None,
              help="The faulty target to shrink against (default: the zoo mutant of the "
                   "trace's fault, or the target a lockstep trace failed on).")
@click.option("--no-shrink", is_flag=True, help="Keep every operation of the trace.")
@click.option("--force", is_flag=True, help="Replace an existing entry of that name.")
def save_command(trace_file: str, name: str, corpus_dir: str | None, shrink_on: str | None,
                 no_shrink: bool, force: bool) -> None:
    """Shrink TRACE and add it to a corpus folder."""
    from smcd_check.conformance.targets.adapter import TargetLoadError
    from smcd_check.conformance.targets.load import load_target
    from smcd_check.conformance.traces.corpus import (
        NAME_RE,
        CorpusError,
        faulty_target_for,
        prepare,
        save,
    )
    from smcd_check.conformance.traces.replay import TraceError, load

    if not NAME_RE.match(name):
        fail_input(f"--name {name!r}: use lowercase letters, digits, '.', '_' and '-' (up to "
                   "80, starting with a letter or digit)")
    if no_shrink and shrink_on is not None:
        fail_input("--no-shrink and --shrink-on exclude each other")
    folder = _corpus(corpus_dir)
    if (folder / f"{name}.json").exists() and not force:
        fail_input(f"{str(folder / (name + '.json'))!r} exists; pass --force to replace it")
    try:
        trace = load(trace_file, name=name)
    except TraceError as exc:
        fail_input(str(exc))
    except RecursionError:
        fail_input(f"{trace_file}: the trace is nested too deeply to read")
    faulty = None
    if not no_shrink:
        spec = shrink_on or faulty_target_for(trace)
        if not spec:
            fail_input("no faulty target to shrink against: the trace names none; give "
                       "--shrink-on SPEC or --no-shrink")
        try:
            faulty = load_target(spec)
        except TargetLoadError as exc:
            fail_input(str(exc))
    try:
        prepared = prepare(trace, faulty, name=name)
        written = save(prepared, folder, name, force=force)
    except CorpusError as exc:
        fail_input(str(exc))
    finally:
        if faulty is not None:
            faulty.close()
    for line in prepared.report:
        click.echo(f"  {line}")
    click.echo(f"saved {written[0]} (chart {written[1].name})")


@command.command(name="list")
@click.option("--corpus", "corpus_dir", metavar="DIR", default=None,
              help="Corpus folder (default: the project's tests/regressions/).")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def list_command(corpus_dir: str | None, as_json: bool) -> None:
    """List the entries of a corpus folder."""
    from smcd_check.conformance.traces.corpus import CorpusError, entries
    from smcd_check.conformance.traces.replay import TraceError, load

    try:
        files = entries(_corpus(corpus_dir))
    except CorpusError as exc:
        fail_input(str(exc))
    rows: list[dict[str, Any]] = []
    for path in files:
        try:
            t = load(path)
        except (TraceError, RecursionError) as exc:
            rows.append({"name": path.stem, "error": str(exc)})
            continue
        rows.append({"name": t.name, "kind": t.kind, "property": t.property_name,
                     "plans": [f"{p.lens}/{p.route} ({len(p.steps)} ops, needs "
                               f"{', '.join(sorted(c.value for c in p.needs))})"
                               for p in t.plans]})
    if as_json:
        echo_json(rows)
        return
    for r in rows:
        if "error" in r:
            click.echo(f"{r['name']}: unreadable: {r['error']}")
        else:
            click.echo(f"{r['name']}  [{r['kind']}] {r['property']}")
            for p in r["plans"]:
                click.echo(f"    {p}")


@command.command(name="show")
@click.argument("trace_file", metavar="TRACE", type=click.Path(dir_okay=False))
@click.option("--msc-out", metavar="FILE", default=None,
              help="Write the sequence chart (SVG; the system chart for explorer traces).")
def show_command(trace_file: str, msc_out: str | None) -> None:
    """Print a trace's plans operation by operation; optionally write its chart."""
    from smcd_check.conformance.traces.chart import chart_svg, text_chart
    from smcd_check.conformance.traces.replay import TraceError, load

    if msc_out is not None and Path(msc_out).suffix.lower() != ".svg":
        fail_input(f"--msc-out {msc_out!r}: the file name must end in .svg")
    try:
        t = load(trace_file)
    except TraceError as exc:
        fail_input(str(exc))
    except RecursionError:
        fail_input(f"{trace_file}: the trace is nested too deeply to read")
    click.echo(f"trace {t.name} [{t.kind}]: {t.property_name}")
    for p in t.plans:
        needs = ", ".join(sorted(c.value for c in p.needs))
        click.echo(f"plan {p.lens}/{p.route} (needs {needs}){' required' if p.required else ''}")
        for note in p.notes:
            click.echo(f"  note: {note}")
        for line in text_chart(p):
            click.echo(line)
    for u in t.unmapped:
        click.echo(f"unmapped {u.lens}: {u.reason}")
    if msc_out is not None:
        try:
            Path(msc_out).write_text(chart_svg(t) + "\n")
        except OSError as exc:
            fail_input(f"cannot write {msc_out!r}: {exc}")
        click.echo(f"chart written to {msc_out}")


@command.command(name="capture")
@click.argument("trace_file", metavar="TRACE", type=click.Path(dir_okay=False))
@click.option("--target", "target_spec", metavar="SPEC", required=True,
              help="The implementation whose observations are recorded (e.g. kernel).")
@click.option("--out", "out_file", metavar="FILE", required=True, help="The capture to write.")
def capture_command(trace_file: str, target_spec: str, out_file: str) -> None:
    """Record what TARGET observes along TRACE's plans as a capture trace."""
    from smcd_check.conformance.runner.run import ScriptError, Step
    from smcd_check.conformance.targets.adapter import TargetBroken, TargetLoadError
    from smcd_check.conformance.targets.load import load_target
    from smcd_check.conformance.traces.document import capture_document
    from smcd_check.conformance.traces.replay import TraceError, load

    try:
        trace = load(trace_file)
    except TraceError as exc:
        fail_input(str(exc))
    except RecursionError:
        fail_input(f"{trace_file}: the trace is nested too deeply to read")
    try:
        target = load_target(target_spec)
    except TargetLoadError as exc:
        fail_input(str(exc))
    try:
        plan = next((p for p in trace.plans if p.needs <= target.capabilities), None)
        if plan is None:
            needs = "; ".join(", ".join(sorted(c.value for c in p.needs)) for p in trace.plans)
            fail_input(f"{target.name} can run no plan of {trace_file} (needs {needs})")
        kernel = None
        if target.name == "kernel":
            from smcd_check.conformance.kernel.build import find_image

            image = find_image()
            kernel = f"Linux {image.version}" if image is not None else "Linux"
        steps: list[Step] = list(plan.steps)
        try:
            doc = capture_document(steps, target, implementation=kernel or target.name,
                                   kernel=kernel)
        except (TargetBroken, ScriptError) as exc:
            fail_input(f"{target.name} could not run the plan: {exc}")
    finally:
        target.close()
    doc["name"] = Path(out_file).stem
    try:
        Path(out_file).write_text(json.dumps(doc, indent=1, sort_keys=True) + "\n")
    except OSError as exc:
        fail_input(f"cannot write {out_file!r}: {exc}")
    click.echo(f"captured {len(steps)} operations of {plan.lens}/{plan.route} on {target.name} "
               f"to {out_file}")


@command.command(name="schema")
def schema_command() -> None:
    """Print the JSON Schema of the trace format (version 2)."""
    from smcd_check.explorer.trace import schema

    click.echo(json.dumps(schema(), indent=1))


@command.command(name="corpus")
@click.option("--corpus", "corpus_dir", metavar="DIR", default=None,
              help="Folder to write (default: the project's tests/regressions/).")
@click.option("--only", multiple=True, metavar="NAME",
              help="Only this entry (fault-<fault> or zoo-<mutant>; repeatable).")
def corpus_command(corpus_dir: str | None, only: tuple[str, ...]) -> None:
    """Regenerate the project's corpus: each explorer fault and zoo mutant's shortest trace."""
    from smcd_check.conformance.targets.zoo import MUTANTS
    from smcd_check.conformance.traces.corpus import FAULT_MUTANTS, CorpusError, generate

    known = [f"fault-{f}" for f in FAULT_MUTANTS] + [
        f"zoo-{m}" for m in MUTANTS if m not in FAULT_MUTANTS.values()]
    unknown = sorted(set(only) - set(known))
    if unknown:
        fail_input(f"--only {', '.join(unknown)}: no such corpus entry; known: "
                   f"{', '.join(known)}")
    folder = _corpus(corpus_dir)
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        fail_input(f"cannot write to corpus folder {str(folder)!r}: {exc}")
    bad = False
    try:
        for line in generate(folder, only=set(only) or None,
                             progress=lambda what: click.echo(f"... {what}", err=True)):
            click.echo(line)
            bad = bad or "not saved" in line
    except CorpusError as exc:
        fail_input(str(exc))
    if bad:
        sys.exit(EXIT_FINDING)
