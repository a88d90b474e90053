"""Version-2 trace documents of every kind, built from what each tool has.

* :func:`with_plans` - an explorer trace (``explore --trace-out``) with its plans: the system
  steps mapped to adapter operations, each with the spec's expected observation;
* :func:`conformance_document` - a script of operations (a lockstep shrink, a catalogue case)
  with the spec's expectations, the target it failed on and why;
* :func:`capture_document` - a script with the observations an implementation (e.g. the real
  kernel) made, recorded as the expectations: replaying it on another target compares that
  target with the captured implementation.
"""

from __future__ import annotations

import copy
from collections.abc import Sequence
from typing import Any

from smcd_check.conformance.runner.run import Step, execute
from smcd_check.conformance.targets.adapter import Target, needs
from smcd_check.conformance.traces.plans import Plan, compute_expectations

FORMAT = "smcd-check-trace"
VERSION = 2


def with_plans(doc: dict[str, Any]) -> dict[str, Any]:
    """``doc`` (an explorer trace document) with ``plans`` and ``unmapped`` filled in; a trace
    that cannot be mapped gets the reason in ``unmapped`` (writing it never fails)."""
    from smcd_check.conformance.traces.mapping import MappingError, translate
    from smcd_check.explorer.trace import TraceFormatError, parse_trace

    out = copy.deepcopy(doc)
    out["version"] = VERSION
    out.setdefault("kind", "explorer")
    out.setdefault("origin", {"tool": "smcd-check explore", "implementation": "spec"})
    try:
        tr = translate(parse_trace(out))
    except (MappingError, TraceFormatError) as exc:
        out["plans"] = []
        out["unmapped"] = [{"lens": "all", "reason": str(exc), "needs": []}]
        return out
    out["plans"] = [p.to_json() for p in tr.plans]
    out["unmapped"] = [u.to_json() for u in tr.unmapped]
    return out


def conformance_document(steps: Sequence[Step], *, target: str, failure: str,
                         tool: str = "smcd-check conform") -> dict[str, Any]:
    """A conformance trace: ``steps`` with the spec's expectations (one required plan)."""
    plan = Plan(lens="ops", route="recorded", needs=needs(st.op for st in steps),
                required=True, steps=list(steps), origins=[None] * len(steps))
    why = compute_expectations(plan)
    if why is not None:
        raise ValueError(f"the steps cannot be judged by the spec: {why}")
    return {
        "format": FORMAT, "version": VERSION, "kind": "conformance",
        "origin": {"tool": tool, "implementation": "spec", "target": target},
        "property": {"name": "the target agrees with the spec at every step",
                     "kind": "conformance"},
        "failure": failure,
        "plans": [plan.to_json()],
    }


def capture_document(steps: Sequence[Step], target: Target, *, implementation: str,
                     kernel: str | None = None) -> dict[str, Any]:
    """A capture: ``steps`` run on ``target``, its observations recorded as the expectations."""
    plan = Plan(lens="ops", route="recorded", needs=needs(st.op for st in steps),
                required=True, steps=list(steps), origins=[None] * len(steps))
    plan.expects = execute(target, plan.steps)
    return {
        "format": FORMAT, "version": VERSION, "kind": "capture",
        "origin": {"tool": "smcd-check trace capture", "implementation": implementation,
                   "kernel": kernel, "target": target.name},
        "property": {"name": f"the target observes what {implementation} observed",
                     "kind": "conformance"},
        "plans": [plan.to_json()],
    }
