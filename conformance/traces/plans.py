"""Plans: a trace's adapter scripts, with the observation expected at each operation.

Theory of operation
-------------------
A *plan* is what a target runs when a trace is replayed against it: a list of conformance
:class:`~smcd_check.conformance.runner.run.Step` s (operations with bindings) and, for each, the
observation the spec expects (computed once, when the plan is built, and kept in the trace file:
a replay then judges the target against the recorded expectation, so running the corpus against
the spec itself checks that the spec still agrees with what was recorded).

A plan belongs to a *lens*, the part of an implementation it observes:

* ``datapath`` - the socket API of a connection pair (``conn_*``), routed either ``steps``
  (every internal step of the data path forced one by one: needs ``conn-steps``) or ``socket``
  (only the application's calls; the target moves data, writes and processes CDCs by itself);
* ``device`` - the loopback-ism device's DMB table (``dev_*``);
* ``ops`` - a recorded script (lockstep shrinks, catalogue cases, captures).

A plan is ``required`` when its lens observes the part where the recorded property failed; a
target that can run no plan of a required lens is UNSUPPORTED for the trace (naming what it
lacks). Plans of one lens are listed finest first; a replay runs the first one the target's
capabilities allow. ``notes`` say what a route cannot force (interleavings a target runs in its
own order) - never silently.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from smcd_check.conformance.runner.run import (
    Area,
    Case,
    ScriptError,
    Step,
    execute,
)
from smcd_check.conformance.targets.adapter import (
    OPS,
    Capability,
    Observation,
    Ref,
    TargetBroken,
    parse_capability,
)

#: the spec's refusal for a step it does not model (never compared)
NOT_MODELLED = "ENOTMODELLED"

#: argument types of every operation's arguments (a trace's script is checked against them
#: before anything runs: a wrong type is malformed input, not a finding)
ARG_TYPES: Mapping[str, str] = {
    "size": "int", "offset": "int", "max": "int", "dmb_size": "int", "sndbuf_size": "int",
    "value": "int", "token": "handle", "conn": "handle", "ep": "handle", "data": "hex",
    "signal": "bool", "mode": "mode", "step": "str", "role": "str", "config": "object",
    "curs": "cursor", "old": "cursor", "new": "cursor",
}


class PlanError(ValueError):
    """A plan or trace script that cannot be run as written (names the step and field)."""


@dataclass(slots=True)
class Plan:
    """One adapter script of a trace (see the module docstring)."""

    lens: str
    route: str
    needs: frozenset[Capability]
    required: bool
    steps: list[Step]
    #: per step: the trace step it stands for (explorer traces; 0 = set-up), else None
    origins: list[int | None] = field(default_factory=list)
    #: per step: the observation the spec expects (None until computed)
    expects: list[Observation] | None = None
    notes: list[str] = field(default_factory=list)

    def case(self, name: str) -> Case:
        """The plan as a conformance case (id ``trace.<name>.<lens>.<route>``)."""
        safe = "".join(ch if ch.isalnum() or ch in "-_" else "-" for ch in name) or "trace"
        return Case(id=f"trace.{safe}.{self.lens}.{self.route}", area=Area.LOCKSTEP,
                    title=f"trace {name}: {self.lens} ({self.route})",
                    description="; ".join(self.notes), source="regression trace",
                    steps=tuple(self.steps))

    def to_json(self) -> dict[str, Any]:
        steps = []
        for i, st in enumerate(self.steps):
            data = st.to_json()
            origin = self.origins[i] if i < len(self.origins) else None
            if origin is not None:
                data["origin"] = origin
            if self.expects is not None:
                data["expect"] = self.expects[i].to_json()
            steps.append(data)
        return {"lens": self.lens, "route": self.route,
                "needs": sorted(c.value for c in self.needs), "required": self.required,
                "notes": list(self.notes), "steps": steps}

    @staticmethod
    def from_json(doc: Any, where: str = "plans[0]") -> Plan:
        """Read a plan (already shape-checked by the trace schema for version 2).

        Raises:
            PlanError: naming the bad field (an unknown operation or capability, an argument of
                the wrong type, a reference to a binding no earlier step made).
        """
        if not isinstance(doc, dict):
            raise PlanError(f"{where}: expected an object, got {_kind(doc)}")
        try:
            needs = frozenset(parse_capability(str(c)) for c in doc.get("needs", []))
        except ValueError as exc:
            raise PlanError(f"{where}.needs: {exc}") from exc
        raw_steps = doc.get("steps")
        if not isinstance(raw_steps, list):
            raise PlanError(f"{where}.steps: expected a list, got {_kind(raw_steps)}")
        steps, origins, expects = read_steps(raw_steps, f"{where}.steps", need_expect=True)
        plan = Plan(lens=str(doc.get("lens", "ops")), route=str(doc.get("route", "recorded")),
                    needs=needs, required=bool(doc.get("required", True)), steps=steps,
                    origins=origins, expects=expects,
                    notes=[str(n) for n in doc.get("notes", [])])
        from smcd_check.conformance.targets.adapter import needs as needs_of

        missing = needs_of(st.op for st in steps) - needs
        if missing:
            raise PlanError(f"{where}.needs: the operations also need "
                            f"{sorted(c.value for c in missing)}")
        return plan


def read_steps(raw: Sequence[Any], where: str, *, need_expect: bool
               ) -> tuple[list[Step], list[int | None], list[Observation] | None]:
    """Parse and check script steps (see :func:`check_step`)."""
    steps: list[Step] = []
    origins: list[int | None] = []
    expects: list[Observation] = []
    bound: set[str] = set()
    for i, item in enumerate(raw):
        here = f"{where}[{i}]"
        st = check_step(item, here, bound)
        steps.append(st)
        origin = item.get("origin")
        origins.append(origin if isinstance(origin, int) and not isinstance(origin, bool)
                       else None)
        if need_expect:
            exp = item.get("expect")
            if not isinstance(exp, dict) or not isinstance(exp.get("ok"), bool):
                raise PlanError(f"{here}.expect: expected an observation object "
                                "({ok, result} or {ok, error}), got " + _kind(exp))
            expects.append(Observation.from_json(exp))
        if st.bind:
            bound.add(st.bind)
    return steps, origins, (expects if need_expect else None)


def check_step(item: Any, where: str, bound: set[str]) -> Step:
    """One script step, checked: an object, a known operation, its arguments present and of the
    right types, every ``$ref`` naming a binding an earlier step made.

    Raises:
        PlanError: naming the step and field.
    """
    if not isinstance(item, dict):
        raise PlanError(f"{where}: expected an operation object, got {_kind(item)}")
    name = item.get("op")
    if not isinstance(name, str) or name not in OPS:
        raise PlanError(f"{where}.op: unknown operation {name!r}; known: {', '.join(OPS)}")
    args = item.get("args", {})
    if not isinstance(args, dict):
        raise PlanError(f"{where}.args: expected an object, got {_kind(args)}")
    for key, value in args.items():
        ref = Ref.from_json(value)
        if ref is not None:
            if ref.bind not in bound:
                raise PlanError(f"{where}.args.{key}: $ref {value['$ref']!r} names no binding "
                                f"made by an earlier step (bound: {sorted(bound) or 'none'})")
            continue
        problem = _type_problem(ARG_TYPES.get(key, "any"), value)
        if problem:
            raise PlanError(f"{where}.args.{key}: {problem}")
    for key in ("bind", "note"):
        if key in item and not isinstance(item[key], str):
            raise PlanError(f"{where}.{key}: expected a string, got {_kind(item[key])}")
    try:
        return Step.from_json(item)
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        raise PlanError(f"{where}: {exc}") from exc


def _type_problem(kind: str, value: Any) -> str | None:
    is_int = isinstance(value, int) and not isinstance(value, bool)
    if kind == "int" and not is_int:
        return f"expected an int, got {_kind(value)} {value!r:.40}"
    if kind == "handle" and not is_int:
        return f"expected a handle (an int or a $ref), got {_kind(value)} {value!r:.40}"
    if kind == "bool" and not isinstance(value, bool):
        return f"expected true or false, got {_kind(value)}"
    if kind in ("str", "mode") and not isinstance(value, str):
        return f"expected a string, got {_kind(value)}"
    if kind == "hex":
        if not isinstance(value, str):
            return f"expected a hex string, got {_kind(value)}"
        try:
            bytes.fromhex(value)
        except ValueError:
            return f"expected a hex string, got {value[:40]!r}"
    if kind == "object" and not isinstance(value, dict):
        return f"expected an object, got {_kind(value)}"
    if kind == "cursor" and not (isinstance(value, list) and len(value) == 2 and all(
            isinstance(v, int) and not isinstance(v, bool) for v in value)):
        return f"expected [wrap, count], got {value!r:.40}"
    return None


def _kind(value: Any) -> str:
    return "null" if value is None else type(value).__name__


def compute_expectations(plan: Plan, spec: Any = None) -> str | None:
    """Fill ``plan.expects`` by running it on the spec target; return why it cannot be judged
    (the spec refuses a step it does not model, or cannot run the script), else None."""
    from smcd_check.conformance.targets.spec_target import SpecTarget

    spec = spec or SpecTarget()
    if not plan.needs <= spec.capabilities:
        return f"the spec target lacks {sorted(c.value for c in plan.needs - spec.capabilities)}"
    try:
        obs = execute(spec, plan.steps)
    except (TargetBroken, ScriptError) as exc:
        return f"the spec cannot run it: {exc}"
    for i, o in enumerate(obs):
        if not o.ok and o.error == NOT_MODELLED:
            return f"step {i} {plan.steps[i].op.describe()}: outside the spec ({o.detail})"
    plan.expects = obs
    return None


@dataclass(frozen=True, slots=True)
class Unmapped:
    """A lens no plan could be built for, and why (shown when a target needs it)."""

    lens: str
    reason: str
    needs: tuple[str, ...] = ()

    def to_json(self) -> dict[str, Any]:
        return {"lens": self.lens, "reason": self.reason, "needs": list(self.needs)}

    @staticmethod
    def from_json(doc: Any) -> Unmapped:
        return Unmapped(lens=str(doc.get("lens")), reason=str(doc.get("reason")),
                        needs=tuple(str(n) for n in doc.get("needs", [])))
