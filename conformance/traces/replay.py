"""Replaying a trace of any kind on any target (``smcd-check replay TRACE --target SPEC``).

Theory of operation
-------------------
:func:`load` reads a trace file of any version and kind into a :class:`TraceDoc`:

* version 2 with plans (explorer, conformance or capture): the plans as recorded, each
  operation with its expected observation;
* an explorer trace without plans (version 1, or written by a tool that did not map it): the
  plans are built now (:func:`.mapping.translate`), their expectations computed on the spec;
* a version-1 conformance trace (``conform --save-trace``): one plan (lens ``ops``) of its
  steps, expectations from the spec now (as version 1 always replayed).

:func:`replay` picks, per lens, the first plan the target's capabilities allow, runs it as a
conformance case judged against the recorded expectations (the runner's rule: OK, NON-STRICT,
FAIL, ERROR, UNSUPPORTED), and combines: FAIL or ERROR anywhere is a finding; when the lens where
the recorded property failed has no runnable plan the result is UNSUPPORTED, naming the missing
capabilities (or why no plan exists), never a silent pass. A route's notes (interleavings the
target runs in its own order) are part of the result.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from smcd_check.conformance.runner.run import (
    CaseResult,
    ExpectationCache,
    Verdict,
    run_case,
    worst,
)
from smcd_check.conformance.targets.adapter import Target
from smcd_check.conformance.traces.plans import Plan, PlanError, Unmapped, read_steps


class TraceError(ValueError):
    """A trace that cannot be replayed as written (malformed; names the field). CLI exit 2."""


@dataclass(slots=True)
class TraceDoc:
    """A trace file of any version and kind, ready to replay on targets."""

    doc: dict[str, Any]
    name: str
    kind: str
    property_name: str
    plans: list[Plan]
    unmapped: list[Unmapped]
    #: the explorer trace (system steps) when the trace has them
    explorer: Any = None
    translation: Any = None

    @property
    def required_lenses(self) -> set[str]:
        lenses = {p.lens for p in self.plans if p.required}
        if not lenses:
            lenses = {u.lens for u in self.unmapped if u.lens in ("link-group", "handshake")}
        return lenses


def read(source: str | Path | dict[str, Any]) -> dict[str, Any]:
    """The decoded document (envelope and version-2 schema checked).

    Raises:
        TraceError: unreadable, not JSON, too deeply nested, or not a trace.
    """
    from smcd_check.explorer.trace import TraceFormatError, check_envelope, read_document

    try:
        doc = source if isinstance(source, dict) else read_document(Path(source))
        check_envelope(doc)
    except TraceFormatError as exc:
        raise TraceError(str(exc)) from exc
    assert isinstance(doc, dict)
    return doc


def load(source: str | Path | dict[str, Any], *, name: str | None = None) -> TraceDoc:
    """Read a trace of any version and kind (see the module docstring).

    Raises:
        TraceError: malformed (names the field), or an explorer trace whose recorded steps no
            longer replay on the spec.
    """
    from smcd_check.explorer.trace import TraceFormatError, parse_trace

    doc = read(source)
    if name is None:
        name = str(doc.get("name") or (Path(source).stem if isinstance(source, str | Path)
                                       else "trace"))
    version = doc["version"]
    kind = doc.get("kind") or "explorer"
    if version == 1 and kind == "conformance":
        return _v1_conformance(doc, name)
    if kind != "explorer":
        return _with_plans(doc, name, kind, str(doc["property"]["name"]), None)
    try:
        trace = parse_trace(doc)
    except TraceFormatError as exc:
        raise TraceError(str(exc)) from exc
    if version == 2 and (doc.get("plans") or doc.get("unmapped")):
        from smcd_check.explorer.trace import replay_trace

        try:
            replay_trace(trace)  # the system steps must be well-formed too (a divergence is not
        except TraceFormatError as exc:  # malformed: the recorded plans still run on targets)
            raise TraceError(str(exc)) from exc
        return _with_plans(doc, name, kind, trace.property_name, trace)
    from smcd_check.conformance.traces.mapping import MappingError, translate

    try:
        tr = translate(trace)
    except (MappingError, TraceFormatError) as exc:
        raise TraceError(str(exc)) from exc
    return TraceDoc(doc=doc, name=name, kind=kind, property_name=trace.property_name,
                    plans=tr.plans, unmapped=tr.unmapped, explorer=trace, translation=tr)


def _with_plans(doc: dict[str, Any], name: str, kind: str, prop: str, trace: Any) -> TraceDoc:
    plans = []
    for i, raw in enumerate(doc.get("plans", [])):
        try:
            plans.append(Plan.from_json(raw, f"plans[{i}]"))
        except PlanError as exc:
            raise TraceError(str(exc)) from exc
    unmapped = [Unmapped.from_json(u) for u in doc.get("unmapped", [])]
    if not plans and not unmapped:
        raise TraceError("field 'plans': the trace has no operations to run on a target")
    return TraceDoc(doc=doc, name=name, kind=kind, property_name=prop, plans=plans,
                    unmapped=unmapped, explorer=trace)


def _v1_conformance(doc: dict[str, Any], name: str) -> TraceDoc:
    raw = doc.get("steps")
    if not isinstance(raw, list) or not raw:
        raise TraceError("field 'steps': expected a non-empty list of operations")
    try:
        steps, _origins, _ = read_steps(raw, "steps", need_expect=False)
    except PlanError as exc:
        raise TraceError(str(exc)) from exc
    from smcd_check.conformance.targets.adapter import needs

    plan = Plan(lens="ops", route="recorded", needs=needs(st.op for st in steps),
                required=True, steps=steps, origins=[None] * len(steps))
    from smcd_check.conformance.traces.plans import compute_expectations

    why = compute_expectations(plan)
    if why is not None:
        raise TraceError(f"the trace's steps cannot run on the spec: {why}")
    return TraceDoc(doc=doc, name=name, kind="conformance",
                    property_name="the target agrees with the spec at every step",
                    plans=[plan], unmapped=[])


class _Recorded(ExpectationCache):
    """The expectations recorded in a plan (the runner's oracle interface)."""

    def __init__(self, plan: Plan) -> None:  # no spec target needed
        self._plan = plan

    def expected(self, case: Any) -> Any:
        assert self._plan.expects is not None
        return list(self._plan.expects)


@dataclass(slots=True)
class PlanRun:
    """One plan as run on a target."""

    plan: Plan
    result: CaseResult


@dataclass(slots=True)
class ReplayOutcome:
    """A trace on a target: the verdict, one line, the plans run and those that could not."""

    trace: TraceDoc
    target: str
    verdict: Verdict
    message: str
    runs: list[PlanRun] = field(default_factory=list)
    not_run: list[str] = field(default_factory=list)

    @property
    def notes(self) -> list[str]:
        return [n for r in self.runs for n in r.plan.notes]

    def to_json(self) -> dict[str, Any]:
        return {
            "trace": self.trace.name, "kind": self.trace.kind, "target": self.target,
            "property": self.trace.property_name, "verdict": self.verdict.value,
            "message": self.message,
            "plans": [{"lens": r.plan.lens, "route": r.plan.route, "notes": r.plan.notes,
                       **r.result.to_json()} for r in self.runs],
            "not_run": self.not_run,
        }


def choose(trace: TraceDoc, target: Target) -> tuple[list[Plan], list[str], str | None]:
    """The plans ``target`` runs (first runnable per lens), why others are not run, and the
    UNSUPPORTED reason when no plan of a required lens can run (else None)."""
    caps = target.capabilities
    chosen: list[Plan] = []
    not_run: list[str] = []
    lenses: list[str] = []
    for p in trace.plans:
        if p.lens not in lenses:
            lenses.append(p.lens)
    unsupported: list[str] = []
    for lens in lenses:
        mine = [p for p in trace.plans if p.lens == lens]
        runnable = next((p for p in mine if p.needs <= caps), None)
        if runnable is not None:
            chosen.append(runnable)
            continue
        easiest = min(mine, key=lambda p: len(p.needs - caps))
        lacks = ", ".join(sorted(c.value for c in easiest.needs - caps))
        line = f"{lens}: the target lacks {lacks} ({easiest.route} route)"
        not_run.append(line)
        if any(p.required for p in mine):
            unsupported.append(line)
    for u in trace.unmapped:
        if u.lens not in lenses:
            not_run.append(f"{u.lens}: {u.reason}")
            if u.lens in trace.required_lenses:
                unsupported.append(f"{u.lens}: {u.reason}")
    if not chosen and not unsupported:
        unsupported.append("no plan of this trace can run on the target: " + "; ".join(not_run))
    return chosen, not_run, ("; ".join(unsupported) if unsupported else None)


def replay(trace: TraceDoc, target: Target) -> ReplayOutcome:
    """Run ``trace`` on ``target`` (see the module docstring). The target is not closed."""
    chosen, not_run, unsupported = choose(trace, target)
    out = ReplayOutcome(trace=trace, target=target.name, verdict=Verdict.OK, message="",
                        not_run=not_run)
    if unsupported is not None:
        out.verdict = Verdict.UNSUPPORTED
        out.message = unsupported
        return out
    for plan in chosen:
        res = run_case(target, plan.case(trace.name), _Recorded(plan))
        out.runs.append(PlanRun(plan=plan, result=res))
    out.verdict = worst(r.result.verdict for r in out.runs)
    bad = next((r for r in out.runs if r.result.verdict is out.verdict), None)
    if out.verdict in (Verdict.OK, Verdict.NON_STRICT) or bad is None:
        steps = sum(len(r.result.steps) for r in out.runs)
        what = ", ".join(f"{r.plan.lens}/{r.plan.route}" for r in out.runs)
        out.message = f"{steps} operations agree with the recorded expectations ({what})"
        if out.verdict is Verdict.NON_STRICT:
            out.message += "; " + next(r.result.message for r in out.runs
                                       if r.result.verdict is Verdict.NON_STRICT)
    else:
        out.message = f"{bad.plan.lens}/{bad.plan.route}: {bad.result.message}" + _where(
            trace, bad)
    return out


def _where(trace: TraceDoc, run: PlanRun) -> str:
    """Which trace step a failing operation stands for, and whether the target follows the
    recorded (faulty) state there (datapath plans of explorer traces)."""
    failing = run.result.failing_step
    if failing is None or failing.index >= len(run.plan.origins):
        return ""
    origin = run.plan.origins[failing.index]
    if origin is None or trace.explorer is None:
        return ""
    steps = trace.explorer.steps
    label = steps[origin - 1].get("label", "?") if 0 < origin <= len(steps) else "settle"
    text = f" [trace step {origin}: {label}]"
    follows = _follows(trace, run, failing, origin)
    return text + (f"; {follows}" if follows else "")


def _follows(trace: TraceDoc, run: PlanRun, failing: Any, origin: int) -> str:
    from smcd_check.conformance.traces.mapping import RING_BYTES, SNDBUF_SIZE, project, recorded

    if run.plan.lens != "datapath" or failing.op.name != "conn_cursors" or failing.seen is None \
            or not failing.seen.ok or not 0 < origin <= len(trace.explorer.steps):
        return ""
    with contextlib.suppress(Exception):  # presentation only: never fails a replay
        model = trace.translation.model if trace.translation is not None else None
        if model is None:
            from smcd_check.explorer.trace import build_model

            ex = trace.explorer
            model = build_model(ex.model, ex.config, ex.fault)
        mode = trace.explorer.initial_state.get("mode", "")
        dcfg = model.cfg.datapath(next(m for m in model.cfg.modes if str(m) == mode
                                       or f"Mode.{m.name}" == mode))
        side = failing.op.arg("conn").key
        seen = {k: failing.seen.get(k) for k, _ in failing.seen.value}
        extra = SNDBUF_SIZE - RING_BYTES if "COPY" in mode else 0
        mine = project(seen, side, slot=RING_BYTES // dcfg.ring_size,
                       wrap_bits=dcfg.wrap_bits, sndbuf_extra=extra)
        rec = recorded(trace.explorer.steps[origin - 1]["state"], 0, side)
        same = [k for k in mine if k in rec and mine[k] == rec[k]]
        if same and len(same) == len(mine):
            return ("the target's cursors are exactly the recorded (faulty) state in the "
                    "trace's units: it has the recorded bug")
        differ = [f"{k} {mine[k]} (recorded {rec.get(k)})" for k in mine if mine[k] != rec.get(k)]
        return "in the trace's units the target shows " + ", ".join(differ)
    return ""
