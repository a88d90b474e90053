"""JSON trace files: writing a counterexample, reading it back, replaying it against the spec.

Trace file schema (``"format": "smcd-check-trace"``, ``"version": 1``)::

    {
      "format": "smcd-check-trace",
      "version": 1,
      "model": "smcd-system",          # model family, to rebuild the model on replay
      "config": "reference",           # named config of that family
      "fault": "merged-ignores-cons",  # the injected fault's name, or null for the clean spec
      "property": {"name": "...", "kind": "always" | "eventually" | "sometimes" | "deadlock"},
      "initial_state": {...},          # to_json of the initial state
      "steps": [                       # one per transition, in order
        {"action": {...}, "label": "ClientSendProposal(...)", "state": {...}}
      ],
      "loop_start": null,              # liveness lassos: index into [initial, *steps] where the
                                       # final cycle starts (the last state equals that one)
      "explored_states": 12345         # how many states the explorer had seen
    }

States and actions are encoded by :func:`smcd_check.explorer.render.to_json` (dataclasses as
objects with a ``"_type"`` key; enums as ``"Class.MEMBER"``; frozensets sorted).

Replay (:func:`replay_trace`) never decodes a state: it rebuilds the model from
``model``/``config``/``fault``, picks the initial state whose encoding equals the recorded one,
and for each step picks the enabled action whose encoding equals the recorded action, applies
the model's own ``next_state`` and compares the encoding of the result with the recorded state.
It then re-checks the recorded property at the recorded step. Outcomes: the trace replays
exactly and the violation is reproduced (``ok``), it diverges (a step the spec forbids, a
different state, or the property no longer fails there), or the file is malformed
(:class:`TraceFormatError`).

A ``target`` (conformance adapters, added by the conformance layer) can be plugged in: it
receives ``reset()`` once and ``apply(action)`` for each replayed spec action; if it offers
``observe()``, its observation after each step is compared with the spec state's encoding
(``to_json(target.observe()) == recorded state``). This module knows nothing else about targets.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from smcd_check.explorer.engine import DEADLOCK, Discovery
from smcd_check.explorer.model import Kind, action_label
from smcd_check.explorer.render import to_json

FORMAT = "smcd-check-trace"
VERSION = 1

#: model family name -> factory(config, fault) building the model (see :func:`register_family`)
_FAMILIES: dict[str, Callable[[str, str | None], Any]] = {}


class TraceFormatError(ValueError):
    """The trace file is not a valid smcd-check trace (names the field and what was wrong)."""


def register_family(name: str, factory: Callable[[str, str | None], Any]) -> None:
    """Make ``name`` rebuildable on replay: ``factory(config, fault) -> model``."""
    _FAMILIES[name] = factory


def build_model(family: str, config: str, fault: str | None) -> Any:
    """Rebuild a model for replay; the system family is looked up in ``spec.configs``."""
    if family not in _FAMILIES and family == "smcd-system":
        from smcd_check.spec import configs  # the system family, registered on first use

        register_family("smcd-system", configs.build_system)
    factory = _FAMILIES.get(family)
    if factory is None:
        raise TraceFormatError(f"unknown model family {family!r}; known: {sorted(_FAMILIES)}")
    return factory(config, fault)


@dataclass(slots=True)
class Trace:
    """A parsed trace file (the JSON document, validated)."""

    model: str
    config: str
    fault: str | None
    property_name: str
    property_kind: str
    initial_state: Any
    steps: list[dict[str, Any]]
    loop_start: int | None = None
    explored_states: int | None = None
    raw: dict[str, Any] = field(default_factory=dict)


def trace_document(
    discovery: Discovery,
    model: Any,
    *,
    family: str,
    config: str,
    fault: str | None,
    explored_states: int | None = None,
) -> dict[str, Any]:
    """The JSON document for a discovery (see the module docstring for the schema)."""
    path = discovery.path
    kind = "deadlock" if discovery.name == DEADLOCK else discovery.kind
    return {
        "format": FORMAT,
        "version": VERSION,
        "model": family,
        "config": config,
        "fault": fault,
        "property": {"name": discovery.name, "kind": kind},
        "initial_state": to_json(path.states[0]),
        "steps": [
            {"action": to_json(a), "label": action_label(model, a), "state": to_json(t)}
            for a, t in zip(path.actions, path.states[1:], strict=True)
        ],
        "loop_start": path.loop_start,
        "explored_states": explored_states,
    }


def write_trace(path: Path, document: dict[str, Any]) -> None:
    """Write a trace document (indented, sorted keys: stable for diffs)."""
    path.write_text(json.dumps(document, indent=1, sort_keys=True) + "\n")


def parse_trace(doc: Any) -> Trace:
    """Validate a decoded JSON document and return the :class:`Trace`.

    Raises:
        TraceFormatError: naming the first missing or ill-typed field.
    """
    if not isinstance(doc, dict):
        raise TraceFormatError(f"a trace is a JSON object, got {type(doc).__name__}")
    if doc.get("format") != FORMAT:
        raise TraceFormatError(f"field 'format' must be {FORMAT!r}, got {doc.get('format')!r}")
    if doc.get("version") != VERSION:
        raise TraceFormatError(f"field 'version' must be {VERSION}, got {doc.get('version')!r}")
    for key, typ in (("model", str), ("config", str), ("steps", list), ("property", dict)):
        if not isinstance(doc.get(key), typ):
            raise TraceFormatError(f"field {key!r} must be a {typ.__name__}, got {doc.get(key)!r}")
    if "initial_state" not in doc:
        raise TraceFormatError("field 'initial_state' is missing")
    fault = doc.get("fault")
    if fault is not None and not isinstance(fault, str):
        raise TraceFormatError(f"field 'fault' must be a string or null, got {fault!r}")
    prop = doc["property"]
    if not isinstance(prop.get("name"), str):
        raise TraceFormatError("field 'property.name' must be a string")
    kinds = {k.value for k in Kind} | {"deadlock"}
    if prop.get("kind") not in kinds:
        raise TraceFormatError(
            f"field 'property.kind' must be one of {sorted(kinds)}, got {prop.get('kind')!r}"
        )
    for k, step in enumerate(doc["steps"]):
        if not isinstance(step, dict) or "action" not in step or "state" not in step:
            raise TraceFormatError(f"steps[{k}] must be an object with 'action' and 'state'")
    loop_start = doc.get("loop_start")
    if loop_start is not None and (
        not isinstance(loop_start, int) or not 0 <= loop_start <= len(doc["steps"])
    ):
        raise TraceFormatError(
            f"field 'loop_start' must be null or 0..{len(doc['steps'])}, got {loop_start!r}"
        )
    return Trace(
        model=doc["model"],
        config=doc["config"],
        fault=fault,
        property_name=prop["name"],
        property_kind=prop["kind"],
        initial_state=doc["initial_state"],
        steps=doc["steps"],
        loop_start=loop_start,
        explored_states=doc.get("explored_states"),
        raw=doc,
    )


def load_trace(path: Path) -> Trace:
    """Read and validate a trace file.

    Raises:
        TraceFormatError: unreadable file, invalid JSON, or a schema error.
    """
    try:
        text = Path(path).read_text()
    except (OSError, UnicodeDecodeError) as exc:
        raise TraceFormatError(f"cannot read trace file {str(path)!r}: {exc}") from exc
    try:
        doc = json.loads(text)
    except json.JSONDecodeError as exc:
        raise TraceFormatError(f"trace file {str(path)!r} is not JSON: {exc}") from exc
    return parse_trace(doc)


@dataclass(slots=True)
class ReplayResult:
    """What a replay showed."""

    #: True when every step replayed exactly and the recorded property fails where recorded
    ok: bool
    steps_replayed: int
    total_steps: int
    message: str
    #: index (1-based) of the first diverging step, or None
    diverged_at: int | None = None
    #: the spec states along the replay (initial state first)
    states: list[Any] = field(default_factory=list)
    actions: list[Any] = field(default_factory=list)


def replay_trace(trace: Trace, target: Any = None, *, model: Any = None) -> ReplayResult:
    """Re-execute ``trace`` with the spec's step function (and drive ``target`` if given).

    Args:
        trace: a parsed trace (:func:`load_trace`).
        target: optional implementation adapter (``reset()``, ``apply(action)``, optional
            ``observe()``); see the module docstring.
        model: the model to replay against (default: rebuilt from the trace's family, config
            and fault).

    Raises:
        TraceFormatError: the trace names an unknown family, config or fault.
    """
    if model is None:
        try:
            model = build_model(trace.model, trace.config, trace.fault)
        except (KeyError, ValueError) as exc:
            raise TraceFormatError(str(exc)) from exc
    total = len(trace.steps)
    init = next((s for s in model.init_states() if to_json(s) == trace.initial_state), None)
    if init is None:
        return ReplayResult(
            ok=False,
            steps_replayed=0,
            total_steps=total,
            diverged_at=0,
            message="the recorded initial state is not an initial state of the spec",
        )
    if target is not None:
        target.reset()
    states = [init]
    actions: list[Any] = []
    s = init
    for k, step in enumerate(trace.steps, start=1):
        chosen = None
        for a in model.actions(s):
            if to_json(a) == step["action"]:
                t = model.next_state(s, a)
                if t is not None:
                    chosen = (a, t)
                    break
        if chosen is None:
            return ReplayResult(
                ok=False,
                steps_replayed=k - 1,
                total_steps=total,
                diverged_at=k,
                states=states,
                actions=actions,
                message=f"step {k} ({step.get('label', '?')}): the spec does not "
                f"allow this action in the replayed state",
            )
        a, t = chosen
        if to_json(t) != step["state"]:
            return ReplayResult(
                ok=False,
                steps_replayed=k - 1,
                total_steps=total,
                diverged_at=k,
                states=states,
                actions=actions,
                message=f"step {k} ({action_label(model, a)}): the spec reaches a "
                f"different state than recorded",
            )
        if target is not None:
            target.apply(a)
            observe = getattr(target, "observe", None)
            if observe is not None and to_json(observe()) != step["state"]:
                return ReplayResult(
                    ok=False,
                    steps_replayed=k - 1,
                    total_steps=total,
                    diverged_at=k,
                    states=states,
                    actions=actions,
                    message=f"step {k} ({action_label(model, a)}): the target's "
                    f"state differs from the spec's",
                )
        actions.append(a)
        states.append(t)
        s = t
    verdict = _recheck(model, trace, states)
    return ReplayResult(
        ok=verdict is None,
        steps_replayed=total,
        total_steps=total,
        diverged_at=None if verdict is None else total,
        states=states,
        actions=actions,
        message=verdict or _reproduced(trace, total),
    )


def _reproduced(trace: Trace, total: int) -> str:
    if trace.property_kind == Kind.SOMETIMES.value:
        return f"replayed all {total} steps; the example for {trace.property_name!r} is reproduced"
    return (
        f"replayed all {total} steps exactly; the recorded violation of "
        f"{trace.property_name!r} is reproduced"
    )


def _recheck(model: Any, trace: Trace, states: list[Any]) -> str | None:
    """None when the recorded property fails (or, sometimes: holds) where recorded."""
    name, kind = trace.property_name, trace.property_kind
    last = states[-1]
    if kind == "deadlock":
        if any(model.next_state(last, a) is not None for a in model.actions(last)):
            return "the last state has an enabled action: no deadlock there"
        if model.is_final(last):
            return "the last state is final: having no action there is allowed"
        return None
    props = {p.name: p for p in model.properties()}
    prop = props.get(name)
    if prop is None:
        return f"the spec has no property named {name!r}"
    cond = prop.condition
    if kind == Kind.ALWAYS.value:
        earlier = next((k for k, s in enumerate(states[:-1]) if not cond(s)), None)
        if earlier is not None:
            return f"the property already fails after step {earlier}, earlier than recorded"
        if cond(last):
            return f"the property {name!r} holds in the last state: violation not reproduced"
        return None
    if kind == Kind.SOMETIMES.value:
        return None if cond(last) else f"the example state does not satisfy {name!r}"
    # eventually: a goal-free lasso (or dead end) after a trigger state
    if trace.loop_start is not None:
        if states[trace.loop_start] != last:
            return "the recorded cycle does not return to its start state"
        if any(cond(s) for s in states[trace.loop_start :]):
            return "the goal is reached inside the recorded cycle: no liveness violation"
    else:
        if any(model.next_state(last, a) is not None for a in model.actions(last)):
            return "the recorded path ends in a state that still has successors"
        if cond(last):
            return "the goal holds in the last state"
    return None
