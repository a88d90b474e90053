"""JSON trace files: writing a counterexample, reading it back, replaying it against the spec.

Trace file schema (``"format": "smcd-check-trace"``, ``"version": 2``; the whole document is
described by the JSON Schema ``trace_schema.json`` next to this module, :func:`schema`)::

    {
      "format": "smcd-check-trace",
      "version": 2,
      "kind": "explorer",              # explorer | conformance | capture (one format for all)
      "origin": {"tool": "smcd-check explore", "implementation": "spec, fault ..."},
      "model": "smcd-system",          # model family, to rebuild the model on replay
      "config": "reference",           # named config of that family
      "fault": "merged-ignores-cons",  # the injected fault's name, or null for the clean spec
      "property": {"name": "...", "kind": "always" | "eventually" | "sometimes" | "deadlock"},
      "initial_state": {...},          # to_json of the initial state
      "steps": [                       # one per transition, in order; "state" is the
        {"action": {...}, "label": "ClientSendProposal(...)", "state": {...}}  # expected state
      ],
      "loop_start": null,              # liveness lassos: index into [initial, *steps] where the
                                       # final cycle starts (the last state equals that one)
      "explored_states": 12345,        # how many states the explorer had seen
      "plans": [...],                  # adapter operations with the observation expected at each
      "unmapped": [...]                # (added by the conformance layer, which alone knows
    }                                  #  operations; this module keeps them as they are)

Version 1 (no ``kind``, ``origin``, ``plans``) is still read. States and actions are encoded by
:func:`smcd_check.explorer.render.to_json` (dataclasses as objects with a ``"_type"`` key; enums
as ``"Class.MEMBER"``; frozensets sorted).

Replay (:func:`replay_trace`) never decodes a state: it rebuilds the model from
``model``/``config``/``fault``, picks the initial state whose encoding equals the recorded one,
and for each step picks the enabled action whose encoding equals the recorded action, applies
the model's own ``next_state`` and compares the encoding of the result with the recorded state.
It then re-checks the recorded property at the recorded step. Outcomes: the trace replays
exactly and the violation is reproduced (``ok``), it diverges (a step the spec forbids, a
different state, or the property no longer fails there), or the file is malformed
(:class:`TraceFormatError`): an action no configuration of the model could take (an unknown or
missing ``_type``, a pair outside the config) is malformed input, not a divergence.

A ``target`` can be plugged in: it receives ``reset()`` once and ``apply(action)`` for each
replayed spec action; if it offers ``observe()``, its observation after each step is compared
with the spec state's encoding. Replaying against implementations through the conformance
adapter lives in ``smcd_check.conformance.traces`` (it maps system actions to operations).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

from smcd_check.explorer.engine import DEADLOCK, Discovery
from smcd_check.explorer.model import Kind, action_label
from smcd_check.explorer.render import to_json

FORMAT = "smcd-check-trace"
#: the version written
VERSION = 2
#: the versions read
READ_VERSIONS = (1, 2)
#: what every trace kind is
KINDS = ("explorer", "conformance", "capture")
SCHEMA_FILE = Path(__file__).with_name("trace_schema.json")

#: model family name -> factory(config, fault) building the model (see :func:`register_family`)
_FAMILIES: dict[str, Callable[[str, str | None], Any]] = {}


class TraceFormatError(ValueError):
    """The trace file is not a valid smcd-check trace (names the field and what was wrong)."""


def register_family(name: str, factory: Callable[[str, str | None], Any]) -> None:
    """Make ``name`` rebuildable on replay: ``factory(config, fault) -> model``."""
    _FAMILIES[name] = factory


def _builtin_families() -> None:
    if "smcd-system" not in _FAMILIES:
        from smcd_check.spec import configs  # the system family, registered on first use

        register_family("smcd-system", configs.build_system)


def build_model(family: str, config: str, fault: str | None) -> Any:
    """Rebuild a model for replay; the system family is looked up in ``spec.configs``."""
    _builtin_families()
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
    version: int = VERSION


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
        "kind": "explorer",
        "origin": {
            "tool": "smcd-check explore",
            "implementation": f"spec ({family}/{config}"
            + (f", fault {fault})" if fault else ", no fault)"),
        },
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
        "plans": [],
    }


def write_trace(path: Path, document: dict[str, Any]) -> None:
    """Write a trace document (indented, sorted keys: stable for diffs)."""
    path.write_text(json.dumps(document, indent=1, sort_keys=True) + "\n")


@cache
def schema() -> dict[str, Any]:
    """The JSON Schema of a version-2 trace document (``trace_schema.json``)."""
    loaded: dict[str, Any] = json.loads(SCHEMA_FILE.read_text())
    return loaded


def _where(path: Any) -> str:
    """``steps[3].action`` for a JSON path (keys and indexes)."""
    out = ""
    for part in path:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out or "(document)"


def check_envelope(doc: Any) -> int:
    """Check the parts every trace version shares; return the version.

    Raises:
        TraceFormatError: not an object, wrong ``format``, unknown ``version``; for version 2
            the first schema violation, naming the field.
    """
    if not isinstance(doc, dict):
        raise TraceFormatError(f"a trace is a JSON object, got {type(doc).__name__}")
    if doc.get("format") != FORMAT:
        raise TraceFormatError(f"field 'format' must be {FORMAT!r}, got {doc.get('format')!r}")
    version = doc.get("version")
    if isinstance(version, bool) or version not in READ_VERSIONS:
        raise TraceFormatError(
            f"field 'version' must be one of {list(READ_VERSIONS)}, got {version!r}"
        )
    if version == 2:
        import jsonschema

        validator = jsonschema.Draft202012Validator(schema())
        try:
            error = jsonschema.exceptions.best_match(validator.iter_errors(doc))
        except RecursionError as exc:
            raise TraceFormatError("the trace is nested too deeply to check") from exc
        if error is not None:
            raise TraceFormatError(
                f"field {_where(error.absolute_path)!r}: {_clip(error.message)}"
            )
    return int(version)


def _clip(text: str, limit: int = 160) -> str:
    return text if len(text) <= limit else text[: limit - 3] + "..."


def parse_trace(doc: Any) -> Trace:
    """Validate a decoded JSON document and return the explorer :class:`Trace`.

    Raises:
        TraceFormatError: naming the first missing or ill-typed field; a version-2 trace of
            another kind (``conformance``, ``capture``: they replay against a target only).
    """
    version = check_envelope(doc)
    if doc.get("kind", "explorer") != "explorer":
        raise TraceFormatError(
            f"this is a {doc['kind']} trace (adapter operations, no system steps): replay it "
            "against an implementation with --target SPEC (e.g. --target model)"
        )
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
        version=version,
    )


def read_document(path: Path) -> Any:
    """The decoded JSON of a trace file (any kind; not yet validated).

    Raises:
        TraceFormatError: unreadable file, invalid JSON, or JSON nested deeper than the reader
            allows (one line, never a traceback).
    """
    try:
        text = Path(path).read_text()
    except (OSError, UnicodeDecodeError) as exc:
        raise TraceFormatError(f"cannot read trace file {str(path)!r}: {exc}") from exc
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise TraceFormatError(f"trace file {str(path)!r} is not JSON: {exc}") from exc
    except RecursionError as exc:
        raise TraceFormatError(
            f"trace file {str(path)!r}: JSON nested too deeply to read (a trace is a few levels "
            "deep)"
        ) from exc


def load_trace(path: Path) -> Trace:
    """Read and validate a trace file.

    Raises:
        TraceFormatError: unreadable file, invalid JSON, or a schema error.
    """
    return parse_trace(read_document(path))


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
            problem = action_problem(model, step["action"])
            if problem is not None:
                raise TraceFormatError(f"steps[{k - 1}].action{problem}")
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


def action_problem(model: Any, doc: Any) -> str | None:
    """Why ``doc`` cannot be the encoding of any action of ``model``'s configuration (a field
    path suffix and the reason), or None when it could be one that is merely not enabled.

    Uses the model's ``action_types()`` (kinds such as ``DataStep.ReaderRead`` or
    ``ClcDeliver(to=client)``) when it has the hook, and checks a ``pair`` field against the
    configuration's pairs.
    """
    if not isinstance(doc, dict):
        return f": expected an action object, got {type(doc).__name__}"
    outer = doc.get("_type")
    if not isinstance(outer, str):
        return ": missing '_type' (the action's class name)"
    hook = getattr(model, "action_types", None)
    if hook is not None:
        kinds = list(hook())
        outers = sorted({k.split(".")[0].split("(")[0] for k in kinds})
        if outer not in outers:
            return f"._type: {outer!r} is no action of this configuration; known: " + ", ".join(
                outers
            )
        nested = {k.split(".", 1)[1] for k in kinds if k.startswith(outer + ".")}
        if nested:
            inner = doc.get("action")
            if not isinstance(inner, dict) or not isinstance(inner.get("_type"), str):
                return ".action: missing '_type' (the inner action's class name)"
            if inner["_type"] not in nested:
                return (
                    f".action._type: {inner['_type']!r} is no {outer} action of this "
                    f"configuration; known: {', '.join(sorted(nested))}"
                )
    if "pair" in doc:
        pair = doc["pair"]
        n_pairs = getattr(getattr(model, "cfg", None), "n_pairs", None)
        if not isinstance(pair, int) or isinstance(pair, bool):
            return f".pair: expected an int, got {pair!r}"
        if isinstance(n_pairs, int) and not 0 <= pair < n_pairs:
            return f".pair: {pair} is outside the configuration's pairs 0..{n_pairs - 1}"
    return None


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
