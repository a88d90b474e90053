"""``smcd-check conform``: run the conformance catalogue against a target.

Examples::

    smcd-check conform --target model
    smcd-check conform --target zoo:lost-wrap-diff --report html --report-out zoo.html
    smcd-check conform --target 'cmd:python3 conformance/examples/lo_device.py'
    smcd-check conform --list            # the catalogue (ids, areas, kernel sources)
    smcd-check conform --list-zoo        # the bug zoo
    smcd-check conform --kill-table      # run every mutant, print mutant -> kernel fix -> cases

Exit codes: 0 the run passed its verdict policy; 1 it did not (a FAIL or ERROR, NON-STRICT
under --strict, a required capability missing or UNSUPPORTED, nothing checked, too many
UNSUPPORTED), with the reason on the last line; 2 bad target spec / unloadable target, a
selection that matches no case, an unknown capability name, an unwritable output path or other
usage error (one line, before anything runs); 130 interrupted (the partial result is printed
first).
"""

from __future__ import annotations

import fnmatch
import os
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

_AREAS = ("clc", "handshake", "lifecycle", "cursor", "datapath", "explorer", "lockstep")


_FORMATS = ("json", "junit", "html")


@click.command(name="conform")
@click.option("--target", "-t", "target_spec", metavar="SPEC",
              help="spec | model | kernel | zoo:NAME | 'cmd:COMMAND' | package.module:factory")
@click.option("--list", "list_cases", is_flag=True,
              help="List the catalogue and exit (plain tab-separated lines when piped, a table "
                   "on a terminal, JSON with --json).")
@click.option("--list-zoo", is_flag=True, help="List the bug-zoo mutants and exit.")
@click.option("--kill-table", is_flag=True,
              help="Run every zoo mutant; print mutant -> kernel fix -> killing cases.")
@click.option("--markdown", is_flag=True, help="With --kill-table: print a markdown table.")
@click.option("--area", "areas", multiple=True, type=click.Choice(_AREAS),
              help="Only cases of this area (repeatable).")
@click.option("-k", "patterns", multiple=True, metavar="GLOB",
              help="Only case ids matching this glob, e.g. 'datapath.*wrap*' (repeatable).")
@click.option("--lockstep", "lockstep_examples", type=click.IntRange(min=0), default=60,
              show_default=True, metavar="N",
              help="Random lockstep walks against the spec (Hypothesis examples); 0 = off.")
@click.option("--save-trace", metavar="PATH",
              help="Save the shrunk lockstep counterexample (JSON trace) here; a handshake "
                   "walk's goes to PATH's name + '-handshake'.")
@click.option("--strict", is_flag=True,
              help="NON-STRICT (right outcome, other errno/decline code/reason) fails the run.")
@click.option("--require", "require", multiple=True, metavar="CAPABILITY",
              help="The target must declare this capability (repeatable or comma-separated); "
                   "a case needing it that comes out UNSUPPORTED fails the run.")
@click.option("--max-unsupported", metavar="SHARE",
              help="Fail when more than this share of the cases is UNSUPPORTED (25%, 0.25). "
                   "A run where every case is UNSUPPORTED always fails.")
@click.option("--report", "reports", multiple=True, metavar="FORMAT[:PATH]",
              help="Also write a report: json, junit or html, to PATH or stdout "
                   "(repeatable: --report junit:r.xml --report html:r.html).")
@click.option("--report-out", metavar="PATH",
              help="Where to write a single --report FORMAT given without a path.")
@click.option("--timeout", type=click.FloatRange(min=0.1, max=3600), default=5.0,
              show_default=True, help="Seconds a 'cmd:' target may take to answer one request.")
@click.option("--json", "as_json", is_flag=True, help="Print the JSON report instead of a table.")
@click.option("--verbose", "-v", is_flag=True,
              help="List every case with its explanation, not only the bad ones.")
def command(target_spec: str | None, list_cases: bool, list_zoo: bool, kill_table: bool,
            markdown: bool, areas: tuple[str, ...], patterns: tuple[str, ...],
            lockstep_examples: int, save_trace: str | None, strict: bool,
            require: tuple[str, ...], max_unsupported: str | None, reports: tuple[str, ...],
            report_out: str | None, timeout: float, as_json: bool, verbose: bool) -> None:
    """Run the conformance catalogue against a target and report where it differs from the spec.

    Results per case: OK, NON-STRICT (allowed but differs from the kernel), FAIL (expected vs
    seen), UNSUPPORTED (the target lacks a capability), ERROR (the target broke). The last line
    says why the run passed or failed.
    """
    from smcd_check.conformance.catalogue.registry import catalogue
    from smcd_check.conformance.runner.verdict import (
        VerdictPolicy,
        parse_capabilities,
        parse_share,
    )

    try:
        policy = VerdictPolicy(
            strict=strict, require=parse_capabilities(require),
            max_unsupported=parse_share(max_unsupported) if max_unsupported else None)
    except ValueError as exc:
        fail_input(f"{'--require' if 'capability' in str(exc) else '--max-unsupported'}: {exc}")
    cases = _select(catalogue(), areas, patterns)
    if list_cases:
        _print_list(cases, as_json)
        sys.exit(EXIT_OK)
    if list_zoo:
        _print_zoo(as_json)
        sys.exit(EXIT_OK)
    with_lockstep = _lockstep_selected(areas, patterns, lockstep_examples)
    if not cases and not with_lockstep:
        sel = " ".join([*(f"--area {a}" for a in areas), *(f"-k {p!r}" for p in patterns)])
        fail_input(f"no case matches {sel or 'the selection'} (see --list)")
    if kill_table:
        _kill_table(cases, markdown, as_json, lockstep_examples)
        return
    if target_spec is None:
        fail_input("no target: give --target (spec, model, zoo:NAME, 'cmd:...', module:factory)")
    assert target_spec is not None
    outputs = _report_outputs(reports, report_out)
    if save_trace:
        _check_writable(save_trace, "--save-trace")
    _run(target_spec, cases, with_lockstep, lockstep_examples, save_trace, outputs, timeout,
         as_json, verbose, policy)


def _lockstep_selected(areas: tuple[str, ...], patterns: tuple[str, ...],
                       examples: int) -> frozenset[str]:
    """The ids of the lockstep walks to run (``lockstep.random.walk``,
    ``lockstep.handshake.walk``): both unless --area leaves out lockstep or -k picks some."""
    from smcd_check.conformance.runner.hs_lockstep import HS_LOCKSTEP_CASE
    from smcd_check.conformance.runner.lockstep import LOCKSTEP_CASE

    if not examples or (areas and "lockstep" not in areas):
        return frozenset()
    ids = (LOCKSTEP_CASE.id, HS_LOCKSTEP_CASE.id)
    return frozenset(i for i in ids
                     if not patterns or any(fnmatch.fnmatch(i, p) for p in patterns))


def _report_outputs(reports: tuple[str, ...],
                    report_out: str | None) -> list[tuple[str, str | None]]:
    """``(format, path or None for stdout)`` per --report; paths checked before the run."""
    if report_out and len(reports) != 1:
        fail_input("--report-out needs --report json|junit|html (exactly one)")
    outputs: list[tuple[str, str | None]] = []
    for item in reports:
        fmt, sep, path = item.partition(":")
        if fmt not in _FORMATS:
            fail_input(f"--report {item!r}: format must be one of {', '.join(_FORMATS)} "
                       "(optionally FORMAT:PATH)")
        if sep and not path:
            fail_input(f"--report {item!r}: empty path after the colon")
        target = path or report_out
        if target:
            _check_writable(target, "--report")
        outputs.append((fmt, target))
    if sum(1 for _, path in outputs if path is None) > 1:
        fail_input("only one --report may go to stdout; give the others a path (FORMAT:PATH)")
    return outputs


def _check_writable(path: str, option: str) -> None:
    """Fail up front (exit 2) when ``path`` cannot be written, not after a long run."""
    p = Path(path)
    if p.is_dir():
        fail_input(f"{option} {path!r} is a directory")
    parent = p.parent if str(p.parent) else Path(".")
    if not parent.is_dir():
        fail_input(f"{option} {path!r}: folder {str(parent)!r} does not exist")
    if not os.access(parent, os.W_OK) or (p.exists() and not os.access(p, os.W_OK)):
        fail_input(f"{option} {path!r}: not writable")


def _select(cases: Any, areas: tuple[str, ...], patterns: tuple[str, ...]) -> list[Any]:
    out = []
    for case in cases:
        if areas and case.area.value not in areas:
            continue
        if patterns and not any(fnmatch.fnmatch(case.id, p) for p in patterns):
            continue
        out.append(case)
    return out


def _print_list(cases: list[Any], as_json: bool) -> None:
    """The catalogue: JSON (``--json``, documented in conformance/PROTOCOL.md), a rich table on
    a terminal, one tab-separated line per case otherwise (id, area, needs, title, source)."""
    if as_json:
        echo_json([c.to_json() for c in cases])
        return
    if not sys.stdout.isatty():
        for c in cases:
            needs = ",".join(sorted(x.value for x in c.needs)) or "-"
            click.echo(f"{c.id}\t{c.area.value}\t{needs}\t{c.title}\t{c.source}")
        return
    from rich.console import Console
    from rich.table import Table

    table = Table(title=f"conformance catalogue ({len(cases)} cases)")
    table.add_column("id", no_wrap=True)
    for col in ("area", "needs", "what", "kernel source"):
        table.add_column(col, overflow="fold")
    for c in cases:
        table.add_row(c.id, c.area.value, ",".join(sorted(x.value for x in c.needs)), c.title,
                      c.source)
    Console().print(table)


def _print_zoo(as_json: bool) -> None:
    from smcd_check.conformance.targets.zoo import MUTANTS

    if as_json:
        echo_json([m.to_json() for m in MUTANTS.values()])
        return
    if not sys.stdout.isatty():
        for m in MUTANTS.values():
            click.echo(f"zoo:{m.name}\t{m.summary}\t{m.kernel_fix}")
        return
    from rich.console import Console
    from rich.table import Table

    table = Table(title=f"bug zoo ({len(MUTANTS)} mutants of the model)")
    for col in ("name", "bug", "kernel fix"):
        table.add_column(col, overflow="fold")
    for m in MUTANTS.values():
        table.add_row(f"zoo:{m.name}", m.summary, m.kernel_fix)
    Console().print(table)


def _load(target_spec: str, timeout: float) -> Any:
    from smcd_check.conformance.targets.adapter import TargetLoadError
    from smcd_check.conformance.targets.load import load_target

    try:
        return load_target(target_spec, timeout=timeout)
    except TargetLoadError as exc:
        fail_input(str(exc))


def _run(target_spec: str, cases: list[Any], with_lockstep: frozenset[str],
         lockstep_examples: int,
         save_trace: str | None, outputs: list[tuple[str, str | None]], timeout: float,
         as_json: bool, verbose: bool, policy: Any) -> None:
    from rich.console import Console

    from smcd_check.conformance.report import formats as report
    from smcd_check.conformance.runner.run import ExpectationCache, run_cases
    from smcd_check.conformance.runner.verdict import judge
    from smcd_check.conformance.targets.spec_target import SpecTarget

    target = _load(target_spec, timeout)
    err = Console(stderr=True)
    try:
        oracle = ExpectationCache(SpecTarget())
        with _progress(err, len(cases)) as advance:
            run = run_cases(target, cases, oracle, progress=advance)
        if with_lockstep and not run.interrupted:
            from smcd_check.conformance.runner.hs_lockstep import run_hs_lockstep
            from smcd_check.conformance.runner.lockstep import run_lockstep

            hs_trace = None
            if save_trace:
                p = Path(save_trace)
                hs_trace = str(p.with_name(f"{p.stem}-handshake{p.suffix or '.json'}"))
            walks = []
            if "lockstep.random.walk" in with_lockstep:
                walks.append(lambda: run_lockstep(target, examples=lockstep_examples,
                                                  save_to=save_trace))
            if "lockstep.handshake.walk" in with_lockstep:
                walks.append(lambda: run_hs_lockstep(target, examples=lockstep_examples,
                                                     save_to=hs_trace))
            try:
                for walk in walks:
                    res = walk()
                    if res is not None:
                        run.results.append(res)
                        run.seconds += res.seconds
            except KeyboardInterrupt:
                run.interrupted = True
    finally:
        target.close()
    verdict = judge(run, policy)
    to_stdout = False
    for fmt, path in outputs:
        text = report.render(run, fmt, verdict=verdict)
        if path:
            try:
                Path(path).write_text(text, encoding="utf-8")
            except OSError as exc:
                fail_input(f"cannot write report {path!r}: {exc}")
            err.print(f"{fmt} report written to {path}", highlight=False)
        else:
            click.echo(text)
            to_stdout = True
    if as_json:
        echo_json(report.to_json(run, verdict=verdict))
    elif not to_stdout:
        report.print_console(run, Console(), verbose=verbose)
        click.echo(("PASS: " if verdict.passed else "FAIL: ") + verdict.reason)
    if run.interrupted:
        sys.exit(EXIT_INTERRUPTED)
    sys.exit(EXIT_OK if verdict.passed else EXIT_FINDING)


class _progress:
    """A rich progress bar on stderr when it is a terminal; silent otherwise."""

    def __init__(self, console: Any, total: int) -> None:
        self.console, self.total = console, total
        self.bar: Any = None

    def __enter__(self) -> Any:
        if self.console.is_terminal:
            from rich.progress import Progress

            self.bar = Progress(console=self.console, transient=True)
            self.bar.start()
            task = self.bar.add_task("cases", total=self.total)

            def advance(done: int, total: int, res: Any) -> None:
                self.bar.update(task, completed=done, description=res.case.id[:40])

            return advance
        return None

    def __exit__(self, *exc: object) -> None:
        if self.bar is not None:
            self.bar.stop()


def _kill_table(cases: list[Any], markdown: bool, as_json: bool, lockstep_examples: int) -> None:
    from smcd_check.conformance.targets.zoo import kill_table

    rows = kill_table(cases, lockstep_examples=lockstep_examples)
    if as_json:
        echo_json(rows)
    elif markdown:
        click.echo("| mutant | bug | kernel fix | killed by |")
        click.echo("|---|---|---|---|")
        for r in rows:
            killers = ", ".join(f"`{k}`" for k in r["killed_by"][:4]) or "**not killed**"
            more = f" (+{len(r['killed_by']) - 4} more)" if len(r["killed_by"]) > 4 else ""
            click.echo(f"| `zoo:{r['mutant']}` | {r['summary']} | {r['kernel_fix']} | "
                       f"{killers}{more} |")
    else:
        from rich.console import Console
        from rich.table import Table

        table = Table(title="bug zoo kill table")
        for col in ("mutant", "kernel fix", "killed by"):
            table.add_column(col, overflow="fold")
        for r in rows:
            table.add_row(r["mutant"], r["kernel_fix"],
                          ", ".join(r["killed_by"]) or "[red]NOT KILLED[/red]")
        Console().print(table)
    sys.exit(EXIT_FINDING if any(not r["killed_by"] for r in rows) else EXIT_OK)
