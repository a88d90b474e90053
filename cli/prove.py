"""`smcd-check prove`: check the z3 theorem catalogue of :mod:`smcd_check.spec.proofs`.

One line per theorem (proved / counterexample with values / unknown, and the time); theorems that
need a precondition also print the counterexample z3 found without it (a result, not a failure)
and the precondition under which they are proved. ``--json`` prints one JSON document instead.

Exit codes: 0 every theorem came out as expected; 1 a finding (a counterexample, an unknown or a
vacuous proof where a proof was due); 2 usage error (unknown theorem name, bad timeout);
130 interrupted (the results so far are printed).
"""

from __future__ import annotations

import math
from typing import Any

import click

from smcd_check.cli.common import (
    EXIT_FINDING,
    EXIT_INTERRUPTED,
    EXIT_OK,
    echo_json,
    fail_input,
)

#: the longest z3 time limit: 2**32 - 1 milliseconds, in whole seconds
MAX_TIMEOUT = (2**32 - 1) // 1000


def _fmt_values(values: dict[str, int] | None) -> str:
    if not values:
        return ""
    return ", ".join(f"{k}={v}" for k, v in values.items())


def _line(result: Any) -> list[str]:
    from smcd_check.spec.proofs import Expect, Status

    th = result.theorem
    secs = f"({result.seconds:.2f} s)"
    lines = []
    where = f" [{result.label}]" if result.label else ""
    if result.status is Status.PROVED and th.expect is Expect.HOLDS:
        lines.append(f"proved          {th.name} {secs}")
    elif result.status is Status.PROVED:
        lines.append(f"proved          {th.name} under precondition {th.precondition} {secs}")
        lines.append(
            f"  without it, counterexample: {_fmt_values(result.precondition_counterexample)}"
        )
        lines.append(f"  precondition {th.precondition}: {th.precondition_statement}")
    elif result.status is Status.PROVED_WITHOUT_PRECONDITION:
        lines.append(
            f"proved          {th.name} even without precondition {th.precondition} {secs}"
        )
    elif result.status is Status.COUNTEREXAMPLE:
        under = f" under precondition {th.precondition}" if th.precondition else ""
        lines.append(
            f"COUNTEREXAMPLE  {th.name}{under}{where} {secs}: {_fmt_values(result.counterexample)}"
        )
    elif result.status is Status.VACUOUS:
        lines.append(f"VACUOUS         {th.name}{where}: assumptions unsatisfiable {secs}")
    else:
        lines.append(f"UNKNOWN         {th.name}{where}: z3 gave up (timeout?) {secs}")
    return lines


def _as_json(result: Any) -> dict[str, Any]:
    th = result.theorem
    return {
        "name": th.name,
        "statement": th.statement,
        "expect": th.expect.value,
        "status": result.status.value,
        "ok": result.ok,
        "seconds": round(result.seconds, 3),
        "precondition": th.precondition or None,
        "precondition_statement": th.precondition_statement or None,
        "counterexample_without_precondition": result.precondition_counterexample,
        "counterexample": result.counterexample,
        "case": result.label or None,
    }


@click.command(name="prove")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON document.")
@click.option(
    "--only",
    "only",
    multiple=True,
    metavar="NAME",
    help="Check only this theorem (repeatable). --list shows the names.",
)
@click.option(
    "--timeout",
    type=float,
    default=60.0,
    show_default=True,
    metavar="SECONDS",
    help="z3 time limit per theorem.",
)
@click.option("--list", "list_only", is_flag=True, help="List the theorems and exit.")
def command(as_json: bool, only: tuple[str, ...], timeout: float, list_only: bool) -> None:
    """Prove the cursor and data-path theorems with z3.

    Every theorem quantifies over all cursor values (16-bit wrap, 32-bit count) and every SMC-D
    data-ring size (DMB 16 KiB .. 1 MiB minus the 32-byte CDC header). Exit 1 if a theorem
    expected to hold is not proved.
    """
    from smcd_check.spec.proofs import CATALOGUE, THEOREMS_BY_NAME, check_theorem

    # z3 takes the limit as an unsigned 32-bit number of milliseconds; nan and inf are no limit
    if not math.isfinite(timeout) or not 0 < timeout <= MAX_TIMEOUT:
        fail_input(
            f"--timeout must be a positive number of seconds, at most {MAX_TIMEOUT}; "
            f"got {timeout}"
        )
    if list_only:
        for th in CATALOGUE:
            click.echo(f"{th.name}  [{th.expect.value}]  {th.statement}")
        raise SystemExit(EXIT_OK)
    unknown = [n for n in only if n not in THEOREMS_BY_NAME]
    if unknown:
        fail_input(
            f"unknown theorem {unknown[0]!r} for --only; known: {', '.join(THEOREMS_BY_NAME)}"
        )
    selected = [THEOREMS_BY_NAME[n] for n in only] if only else list(CATALOGUE)
    results = []
    interrupted = False
    try:
        for th in selected:
            result = check_theorem(th, timeout=timeout)
            results.append(result)
            if not as_json:
                for line in _line(result):
                    click.echo(line)
    except KeyboardInterrupt:
        interrupted = True
        click.echo(
            f"smcd-check: interrupted after {len(results)} of {len(selected)} theorems", err=True
        )
    failed = [r for r in results if not r.ok]
    if as_json:
        echo_json(
            {
                "theorems": [_as_json(r) for r in results],
                "complete": not interrupted,
                "failed": [r.theorem.name for r in failed],
            }
        )
    else:
        partial = f" (partial: interrupted, {len(selected) - len(results)} not checked)"
        click.echo(
            f"{len(results)} theorems: {len(results) - len(failed)} as expected, "
            f"{len(failed)} findings ({sum(r.seconds for r in results):.1f} s)"
            + (partial if interrupted else "")
        )
    if interrupted:
        raise SystemExit(EXIT_INTERRUPTED)
    raise SystemExit(EXIT_FINDING if failed else EXIT_OK)
