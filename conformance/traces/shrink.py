"""Delta debugging (ddmin) over a plan's operations: the fewest that still fail.

Theory of operation
-------------------
Zeller and Hildebrandt's *ddmin* reduces a failing input to a 1-minimal one: removing any single
element makes the failure go away. The elements here are a plan's operations; a candidate (a
subsequence, order kept) *still fails* when

1. it is a script at all: every ``$ref`` names a binding made by an earlier kept operation;
2. the spec runs it without stepping outside what it models (it then gives the expectations:
   the candidate passes on the spec by construction, as every regression test must);
3. the faulty target FAILs against those expectations (not ERROR, not UNSUPPORTED: a crash or a
   missing capability is another failure than the one being kept).

Every candidate is judged from a fresh ``reset()`` of both, so candidates never see each
other's state. The operation count is small (tens); each test costs one run on the spec and
one on the target.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from smcd_check.conformance.runner.run import Step, Verdict, run_case
from smcd_check.conformance.targets.adapter import Target
from smcd_check.conformance.traces.plans import Plan, compute_expectations


def ddmin(items: Sequence[int], fails: Callable[[list[int]], bool]) -> list[int]:
    """A 1-minimal failing subsequence of ``items`` (which must fail)."""
    current = list(items)
    n = 2
    while len(current) >= 2:
        chunk = max(1, len(current) // n)
        subsets = [current[i:i + chunk] for i in range(0, len(current), chunk)]
        reduced = False
        for subset in subsets:  # try each subset alone
            if len(subset) < len(current) and fails(subset):
                current, n, reduced = subset, 2, True
                break
        if not reduced:
            for i in range(len(subsets)):  # try each complement
                complement = [x for j, s in enumerate(subsets) if j != i for x in s]
                if complement and len(complement) < len(current) and fails(complement):
                    current, n, reduced = complement, max(n - 1, 2), True
                    break
        if not reduced:
            if n >= len(current):
                break
            n = min(len(current), 2 * n)
    return current


@dataclass(slots=True)
class Shrunk:
    """A shrunk plan and how many candidates were tried."""

    plan: Plan
    before: int
    tests: int


def _valid(steps: Sequence[Step]) -> bool:
    bound: set[str] = set()
    for st in steps:
        if any(ref.bind not in bound for ref in st.op.refs()):
            return False
        if st.bind:
            bound.add(st.bind)
    return True


def subplan(plan: Plan, keep: Sequence[int]) -> Plan:
    """``plan`` restricted to the operations ``keep`` (indexes, in order), no expectations."""
    return Plan(lens=plan.lens, route=plan.route, needs=plan.needs, required=plan.required,
                steps=[plan.steps[i] for i in keep],
                origins=[plan.origins[i] if i < len(plan.origins) else None for i in keep],
                notes=list(plan.notes))


def fails_on(plan: Plan, target: Target, name: str = "shrink") -> bool:
    """The plan (with expectations from the spec, computed here) FAILs on ``target``."""
    from smcd_check.conformance.traces.replay import _Recorded

    if not _valid(plan.steps) or compute_expectations(plan) is not None:
        return False
    res = run_case(target, plan.case(name), _Recorded(plan))
    return res.verdict is Verdict.FAIL


def shrink(plan: Plan, target: Target) -> Shrunk | None:
    """The fewest operations of ``plan`` that still fail on ``target`` and pass on the spec
    (1-minimal), with expectations; None when the whole plan does not fail on ``target``."""
    tests = 0

    def fails(keep: list[int]) -> bool:
        nonlocal tests
        tests += 1
        return fails_on(subplan(plan, keep), target)

    everything = list(range(len(plan.steps)))
    if not fails(everything):
        return None
    keep = ddmin(everything, fails)
    out = subplan(plan, keep)
    why = compute_expectations(out)
    assert why is None, why  # it failed on the target, so the spec ran it
    return Shrunk(plan=out, before=len(plan.steps), tests=tests)
