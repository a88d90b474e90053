"""Enumerate the schedules of a scenario, check every one, keep the first failing schedule.

``explore(scenario, mutant, preemptions=K)`` runs the scenario under
:class:`~.scheduler.ScheduledRuntime` once per schedule, depth first, every schedule with at most
K preemptions (see :mod:`.scheduler`), and checks each run with :class:`~.check.Checker`. The
result says how many schedules ran and whether the enumeration was complete within the bound.
A finding is kept as a **race-schedule trace** (JSON, ``{"format": "smcd-check-trace",
"version": 1, "kind": "race-schedule", ...}``): scenario, mutant, the choices (thread index per
decision, run-length encoded), the violated properties and the readable steps; ``smcd-check
replay TRACE`` re-runs exactly that schedule and checks the same property fails again.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from smcd_check.conformance.races.check import Checker, Violation
from smcd_check.conformance.races.mutants import MUTANTS, Mutant
from smcd_check.conformance.races.scenarios import SCENARIOS, Scenario, build
from smcd_check.conformance.races.scheduler import RunResult, ScheduledRuntime, dependent

TRACE_FORMAT = "smcd-check-trace"
TRACE_VERSION = 1
TRACE_KIND = "race-schedule"


class RaceInputError(ValueError):
    """A bad scenario or mutant name, or a malformed race trace (CLI exit 2)."""


@dataclass
class Finding:
    scenario: str
    mutant: str | None
    violations: list[Violation]
    schedule: list[int]
    steps: list[tuple[int, str]]
    thread_names: list[str]
    preemptions: int
    #: indexes of the steps that preempted a thread that could have gone on
    preempted_at: list[int] = field(default_factory=list)

    @property
    def first(self) -> Violation:
        return self.violations[0]


@dataclass
class ExploreResult:
    scenario: str
    mutant: str | None
    preemptions: int
    schedules: int
    complete: bool
    finding: Finding | None
    cpu_seconds: float
    max_decisions: int = 0
    interrupted: bool = False
    pruned: int = 0
    violations_seen: dict[str, int] = field(default_factory=dict)


def scenario_for(name: str | None, mutant: Mutant | None) -> Scenario:
    if name is None:
        name = mutant.scenario if mutant else "duplex"
    try:
        return SCENARIOS[name]
    except KeyError:
        raise RaceInputError(f"unknown scenario {name!r}; known: {', '.join(SCENARIOS)}") \
            from None


def mutant_named(name: str | None) -> Mutant | None:
    if name is None:
        return None
    try:
        return MUTANTS[name]
    except KeyError:
        raise RaceInputError(f"unknown race mutant {name!r}; known: {', '.join(MUTANTS)}") \
            from None


def run_once(scenario: Scenario, mutant: Mutant | None, prefix: list[int],
             sleep: dict[int, Any] | None = None) -> tuple[RunResult, list[Violation]]:
    """Run one schedule (``prefix``, then the default choices) and judge it."""
    holder: dict[str, Checker] = {}

    def observer(kind: str, data: dict[str, Any]) -> None:
        if "c" in holder:
            holder["c"](kind, data)

    rt = ScheduledRuntime(prefix, observer=observer, sleep=sleep)
    env = build(scenario, mutant, rt)
    checker = Checker([(env.a, env.b)], env.dev, rt.steps)
    holder["c"] = checker

    errors: list[BaseException] = []

    def on_decision(r: ScheduledRuntime) -> None:
        for t in r.threads:
            if t.done or (t.wait is not None and t.wait[0] == "cv"):
                continue
            if t.idx in env.between_ops:
                continue
            return
        try:
            checker.check_quiescent()
        except Exception as exc:  # a checker bug must not hang the scheduled threads
            errors.append(exc)

    rt.on_decision = on_decision
    result = rt.run()
    if errors:
        raise errors[0]
    if not result.pruned:  # a pruned run stops mid-operation: its end is no quiescent point
        checker.check_quiescent()
    violations = list(checker.violations)
    if result.deadlock:
        violations.append(Violation(
            "no call blocks forever", f"threads {', '.join(result.deadlock)} still wait when "
            "no thread can run (deadlock or lost wake-up)", len(result.steps)))
    if result.livelock:
        violations.append(Violation("every run ends", "the run exceeded its step limit",
                                    len(result.steps)))
    for name, exc in result.errors:
        if not any(v.prop == "no thread raises" for v in violations):
            violations.append(Violation("no thread raises", f"{name}: {type(exc).__name__}: "
                                        f"{exc}", len(result.steps)))
    env.host._closed = True
    return result, violations


def explore(scenario: Scenario, mutant: Mutant | None, *, preemptions: int = 2,
            max_schedules: int | None = None,
            progress: Callable[[int, int], None] | None = None) -> ExploreResult:
    """Depth-first enumeration of the schedules with at most ``preemptions`` preemptions.

    Stops at the first schedule that violates something (a finding), when every schedule
    within the bound has run (complete), or after ``max_schedules`` (incomplete).
    """
    start = time.process_time()
    stack: list[dict[str, Any]] = []  # per decision: enabled, current, pre, tried, chosen
    prefix: list[int] = []
    sleep: dict[int, Any] = {}
    schedules = 0
    pruned = 0
    max_dec = 0
    complete = False
    finding = None
    try:
        while True:
            result, violations = run_once(scenario, mutant, prefix, sleep)
            schedules += 1
            pruned += result.pruned
            max_dec = max(max_dec, len(result.decisions))
            for k, d in enumerate(result.decisions):
                if k < len(stack):
                    stack[k]["chosen"] = d.chosen
                    continue
                stack.append({"enabled": d.enabled, "current": d.current,
                              "pre": d.preemptions_before, "tried": {d.chosen},
                              "chosen": d.chosen, "keys": dict(zip(d.enabled, d.keys,
                                                                   strict=True)),
                              "sleep": dict(d.sleep)})
            del stack[len(result.decisions):]
            if violations:
                finding = Finding(scenario.name, mutant.name if mutant else None, violations,
                                  [d.chosen for d in result.decisions], result.steps,
                                  result.thread_names, result.preemptions,
                                  [i for i, d in enumerate(result.decisions)
                                   if d.current >= 0 and d.chosen != d.current])
                break
            if progress is not None:
                progress(schedules, len(stack))
            if max_schedules is not None and schedules >= max_schedules:
                break
            while stack:
                node = stack[-1]
                alt = None
                for t in node["enabled"]:
                    if t in node["tried"] or t in node["sleep"]:
                        continue
                    cost = node["pre"] + (1 if node["current"] >= 0 and t != node["current"]
                                          else 0)
                    if cost <= preemptions:
                        alt = t
                        break
                if alt is not None:
                    key_u = node["keys"][alt]
                    asleep = dict(node["sleep"])
                    asleep.update({v: node["keys"][v] for v in node["tried"]})
                    sleep = {v: kv for v, kv in asleep.items()
                             if v != alt and not dependent(kv, key_u)}
                    node["tried"].add(alt)
                    node["chosen"] = alt
                    prefix = [n["chosen"] for n in stack]
                    break
                stack.pop()
            else:
                complete = True
                break
    except KeyboardInterrupt:
        return ExploreResult(scenario.name, mutant.name if mutant else None, preemptions,
                             schedules, False, finding, time.process_time() - start, max_dec,
                             interrupted=True)
    return ExploreResult(scenario.name, mutant.name if mutant else None, preemptions, schedules,
                         complete, finding, time.process_time() - start, max_dec, pruned=pruned)


# ---------------------------------------------------------------------- traces

def _rle(choices: list[int]) -> list[list[int]]:
    out: list[list[int]] = []
    for c in choices:
        if out and out[-1][0] == c:
            out[-1][1] += 1
        else:
            out.append([c, 1])
    return out


def _unrle(runs: Any) -> list[int]:
    if not isinstance(runs, list):
        raise RaceInputError("trace field 'schedule': expected a list of [thread, count]")
    out: list[int] = []
    for item in runs:
        if not (isinstance(item, list) and len(item) == 2
                and all(isinstance(v, int) and v >= 0 for v in item)):
            raise RaceInputError(f"trace field 'schedule': bad entry {item!r}")
        out += [item[0]] * item[1]
    return out


def trace_document(f: Finding, preemption_bound: int) -> dict[str, Any]:
    """The JSON document of a finding (see the module docstring)."""
    return {
        "format": TRACE_FORMAT, "version": TRACE_VERSION, "kind": TRACE_KIND,
        "scenario": f.scenario, "mutant": f.mutant, "preemption_bound": preemption_bound,
        "preemptions": f.preemptions, "threads": f.thread_names,
        "property": f.first.prop, "detail": f.first.detail,
        "violations": [{"property": v.prop, "detail": v.detail, "step": v.step}
                       for v in f.violations],
        "schedule": _rle(f.schedule),
        "steps": [{"thread": f.thread_names[t], "at": label} for t, label in f.steps],
    }


def format_trace(f: Finding, limit: int = 400) -> str:
    """The failing schedule as text: one line per step, switches and the violation marked."""
    lines = [f"scenario {f.scenario}" + (f", mutant {f.mutant}" if f.mutant else "")
             + f": {f.first.prop}", f"  {f.first.detail}",
             f"schedule: {len(f.steps)} steps, {f.preemptions} preemption(s) (=> marks a "
             "preemption, -> a switch at a blocked or finished thread); threads: "
             + ", ".join(f"{i}={n}" for i, n in enumerate(f.thread_names))]
    prev = None
    shown = f.steps if len(f.steps) <= limit else f.steps[-limit:]
    skip = len(f.steps) - len(shown)
    if skip:
        lines.append(f"  ... {skip} earlier steps")
    preempted = set(f.preempted_at)
    for i, (t, label) in enumerate(shown, start=skip):
        mark = ("=>" if i in preempted else "->") if t != prev else "  "
        flag = "  <== " + f.first.prop if i == f.first.step - 1 else ""
        lines.append(f"{i:5d} {mark} {f.thread_names[t]:<12} {label}{flag}")
        prev = t
    return "\n".join(lines)


def load_trace(path: str | Path | dict[str, Any]) -> dict[str, Any]:
    """Read and check a race-schedule trace (raises :class:`RaceInputError`)."""
    if isinstance(path, dict):
        doc = path
    else:
        try:
            doc = json.loads(Path(path).read_text())
        except OSError as exc:
            raise RaceInputError(f"cannot read trace {str(path)!r}: {exc}") from exc
        except json.JSONDecodeError as exc:
            raise RaceInputError(f"trace {str(path)!r} is not JSON: {exc}") from exc
    if not isinstance(doc, dict) or doc.get("kind") != TRACE_KIND:
        raise RaceInputError("not a race-schedule trace (kind must be 'race-schedule')")
    if doc.get("format") != TRACE_FORMAT or doc.get("version") != TRACE_VERSION:
        raise RaceInputError(f"trace format/version must be {TRACE_FORMAT!r}/{TRACE_VERSION}")
    for key in ("scenario", "property", "schedule"):
        if key not in doc:
            raise RaceInputError(f"trace field {key!r} is missing")
    return doc


@dataclass
class ReplayOutcome:
    reproduced: bool
    message: str
    violations: list[Violation]


def replay(doc: dict[str, Any]) -> ReplayOutcome:
    """Re-run the trace's schedule; reproduced when its property fails again."""
    mutant = mutant_named(doc.get("mutant"))
    scenario = scenario_for(doc["scenario"], mutant)
    schedule = _unrle(doc["schedule"])
    from smcd_check.conformance.races.scheduler import ScheduleDiverged

    try:
        result, violations = run_once(scenario, mutant, schedule)
    except ScheduleDiverged as exc:
        return ReplayOutcome(False, f"the schedule no longer applies: {exc}", [])
    want = doc["property"]
    if any(v.prop == want for v in violations):
        v = next(v for v in violations if v.prop == want)
        return ReplayOutcome(True, f"{want}: {v.detail}", violations)
    if violations:
        return ReplayOutcome(False, f"expected {want!r}, got {violations[0].prop!r}: "
                             f"{violations[0].detail}", violations)
    return ReplayOutcome(False, f"expected {want!r}; the schedule now runs clean "
                         f"({len(result.decisions)} decisions)", violations)
