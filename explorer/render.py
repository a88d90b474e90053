"""Presentation of states, actions and paths: JSON encoding, field diffs, readable steps.

Nothing here changes a state; the spec never imports this module (house style item 17).

* :func:`to_json` turns any state or action (frozen dataclasses, enums, tuples, frozensets,
  bytes, ints, strings) into plain JSON data, deterministically (frozensets sorted), so two
  equal states always encode to the same document. Dataclasses become objects with a
  ``"_type"`` key naming the class.
* :func:`diff_states` lists the fields that differ between two states, by dotted path
  (``hosts[0].conns[1].prod.count``), recursing through dataclasses and equal-length tuples.
* :func:`format_steps` prints a path as numbered steps with the action and the changed fields.
* :func:`replayable` prints a path as a list of action constructors that can be pasted into a
  test (Hypothesis-style).
"""

from __future__ import annotations

import dataclasses
import enum
import json
from collections.abc import Iterator
from typing import Any

from smcd_check.explorer.model import action_label


def to_json(obj: Any) -> Any:
    """Plain JSON data for a state or action (see the module docstring)."""
    if obj is None or isinstance(obj, (bool, int, float, str)):
        return obj
    if isinstance(obj, enum.Enum):
        return f"{type(obj).__name__}.{obj.name}"
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        out: dict[str, Any] = {"_type": type(obj).__name__}
        for f in dataclasses.fields(obj):
            out[f.name] = to_json(getattr(obj, f.name))
        return out
    if isinstance(obj, (tuple, list)):
        return [to_json(x) for x in obj]
    if isinstance(obj, frozenset | set):
        items = [to_json(x) for x in obj]
        return {"_frozenset": sorted(items, key=lambda x: json.dumps(x, sort_keys=True))}
    if isinstance(obj, (bytes, bytearray)):
        return {"_bytes": bytes(obj).hex()}
    if isinstance(obj, dict):
        pairs = [[to_json(k), to_json(v)] for k, v in obj.items()]
        return {"_dict": sorted(pairs, key=lambda p: json.dumps(p, sort_keys=True))}
    return repr(obj)


def short(value: Any, limit: int = 60) -> str:
    """A compact one-line rendering of a field value."""
    if isinstance(value, enum.Enum):
        text = value.name
    elif dataclasses.is_dataclass(value) and not isinstance(value, type):
        text = (
            type(value).__name__
            + "("
            + ", ".join(
                f"{f.name}={short(getattr(value, f.name), 20)}" for f in dataclasses.fields(value)
            )
            + ")"
        )
    else:
        text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def diff_states(a: Any, b: Any, prefix: str = "") -> Iterator[tuple[str, Any, Any]]:
    """(path, old, new) for every leaf field that differs between ``a`` and ``b``."""
    if a == b:
        return
    if dataclasses.is_dataclass(a) and not isinstance(a, type) and type(a) is type(b):
        for f in dataclasses.fields(a):
            name = f"{prefix}.{f.name}" if prefix else f.name
            yield from diff_states(getattr(a, f.name), getattr(b, f.name), name)
        return
    if isinstance(a, tuple) and isinstance(b, tuple) and len(a) == len(b):
        for k, (x, y) in enumerate(zip(a, b, strict=True)):
            yield from diff_states(x, y, f"{prefix}[{k}]")
        return
    yield (prefix or "state", a, b)


def format_steps(model: Any, path: Any, *, max_fields: int = 12) -> list[str]:
    """Readable lines: each step's action, its message (if the model says) and changed fields."""
    lines = []
    describe = getattr(model, "describe_action", None)
    msc = getattr(model, "msc_event", None)
    for k, (a, s, t) in enumerate(zip(path.actions, path.states, path.states[1:], strict=False)):
        marker = (
            "  <- loop starts here" if path.loop_start is not None and k == path.loop_start else ""
        )
        head = f"{k + 1:>3}. {action_label(model, a)}"
        if msc is not None:
            evs = msc(s, a, t)
            for ev in evs if isinstance(evs, (list, tuple)) else [evs]:
                if ev is not None and ev.kind == "send":
                    head += f"   [{ev.actor} -> {ev.peer}: {ev.label}]"
        if describe is not None:
            extra = describe(s, a, t)
            if extra:
                head += f"   {extra}"
        lines.append(head + marker)
        changes = list(diff_states(s, t))
        for name, old, new in changes[:max_fields]:
            lines.append(f"       {name}: {short(old)} -> {short(new)}")
        if len(changes) > max_fields:
            lines.append(f"       ... and {len(changes) - max_fields} more fields")
    return lines


def replayable(path: Any) -> str:
    """The path's actions as Python constructor calls, one per line (paste into a test)."""
    return "[\n" + "".join(f"    {a!r},\n" for a in path.actions) + "]"
