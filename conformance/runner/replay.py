"""Replay a saved trace against a target (``smcd-check replay TRACE --target SPEC``).

Two kinds of trace files share the envelope ``{"format": "smcd-check-trace", "version": 1}``:

* ``"kind": "conformance"`` - written by the lockstep test (:func:`.lockstep.trace_json`): a list
  of adapter steps (operations with bindings). Replaying runs the steps on the spec and on the
  target and judges every step with the runner's rule; the result is an ordinary
  :class:`~smcd_check.conformance.runner.run.CaseResult` (id ``replay.<file name>``).
* explorer traces (``"model": ...``, spec actions and states, :mod:`smcd_check.explorer.trace`)
  are replayed against the spec by the explorer itself, and against implementations by
  :mod:`smcd_check.conformance.traces.replay` (which maps system actions to operations and
  reads every trace version and kind; ``smcd-check replay --target`` uses it). This module
  keeps the version-1 conformance path for its callers and refuses explorer traces.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from smcd_check.conformance.runner.run import (
    Area,
    Case,
    CaseResult,
    ExpectationCache,
    ScriptError,
    Step,
    run_case,
)
from smcd_check.conformance.targets.adapter import Target

TRACE_FORMAT = "smcd-check-trace"
TRACE_VERSION = 1


class ReplayError(ValueError):
    """The trace cannot be replayed against a target (names the field and what is wrong)."""


def load_trace_document(source: str | Path | dict[str, Any]) -> dict[str, Any]:
    """Read a trace file (or take an already parsed document) and check its envelope.

    Raises:
        ReplayError: unreadable file, not JSON, wrong ``format`` or ``version``.
    """
    if isinstance(source, dict):
        doc = source
    else:
        try:
            doc = json.loads(Path(source).read_text())
        except OSError as exc:
            raise ReplayError(f"cannot read trace {str(source)!r}: {exc}") from exc
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise ReplayError(f"trace {str(source)!r} is not JSON: {exc}") from exc
    if not isinstance(doc, dict):
        raise ReplayError("trace: expected a JSON object")
    if doc.get("format") != TRACE_FORMAT:
        raise ReplayError(f"trace field 'format' is {doc.get('format')!r}, expected "
                          f"{TRACE_FORMAT!r}")
    if doc.get("version") not in (TRACE_VERSION, 2):
        raise ReplayError(f"trace field 'version' is {doc.get('version')!r}, expected "
                          f"{TRACE_VERSION} or 2")
    return doc


def trace_case(doc: dict[str, Any], name: str = "trace") -> Case:
    """The case a conformance trace describes.

    Raises:
        ReplayError: an explorer trace, or a step that is not a valid operation.
    """
    if doc.get("kind") != "conformance":
        raise ReplayError(
            "this is an explorer trace (spec actions and states): replay it against the spec "
            "with 'smcd-check replay TRACE', or against a target with smcd_check.conformance."
            "traces.replay ('smcd-check replay TRACE --target SPEC')")
    steps_doc = doc.get("steps")
    if not isinstance(steps_doc, list) or not steps_doc:
        raise ReplayError("trace field 'steps': expected a non-empty list")
    steps = []
    for i, raw in enumerate(steps_doc):
        try:
            steps.append(Step.from_json(raw))
        except (KeyError, TypeError, ValueError) as exc:
            raise ReplayError(f"trace step {i}: {exc}") from exc
    safe = "".join(ch if ch.isalnum() or ch == "-" else "-" for ch in name.lower()).strip("-")
    return Case(id=f"replay.trace.{safe or 'trace'}", area=Area.LOCKSTEP,
                title=f"replay of {name}", description=str(doc.get("failure", "")),
                source=str(doc.get("target", "trace")), steps=tuple(steps))


def _replay_v2(trace: str | Path | dict[str, Any], target: Target) -> CaseResult:
    """A version-2 trace through :mod:`smcd_check.conformance.traces.replay` (the shared
    format), as one :class:`CaseResult` (the first plan that did not pass, else the first)."""
    from smcd_check.conformance.runner.run import Verdict
    from smcd_check.conformance.traces.replay import TraceError, load, replay

    try:
        doc = load(trace)
    except TraceError as exc:
        raise ReplayError(str(exc)) from exc
    out = replay(doc, target)
    if not out.runs:
        return CaseResult(case=Case(id=f"replay.trace.{doc.name}", area=Area.LOCKSTEP,
                                    title=f"replay of {doc.name}", description="",
                                    source="trace", steps=()),
                          verdict=Verdict.UNSUPPORTED, message=out.message)
    run = next((r for r in out.runs if r.result.verdict is out.verdict), out.runs[0])
    return run.result


def replay_against_target(trace: str | Path | dict[str, Any], target: Target, *,
                          oracle: ExpectationCache | None = None) -> CaseResult:
    """Replay a saved conformance trace on ``target``, judged against the spec.

    Args:
        trace: a path or a parsed trace document.
        target: the implementation (not closed here).
        oracle: the spec's expectations (a fresh spec target by default).

    Returns:
        The verdict (OK when the target now agrees with the spec at every step).

    Raises:
        ReplayError: the trace is malformed or not replayable against a target.
    """
    from smcd_check.conformance.targets.spec_target import SpecTarget

    doc = load_trace_document(trace)
    if doc.get("version") == 2:
        return _replay_v2(doc if isinstance(trace, dict) else trace, target)
    name = Path(trace).stem if isinstance(trace, str | Path) else "trace"
    case = trace_case(doc, name)
    try:
        return run_case(target, case, oracle or ExpectationCache(SpecTarget()))
    except ScriptError as exc:
        raise ReplayError(f"trace steps refer to a binding that does not exist: {exc}") from exc


def replay_cli(trace_file: str, target_spec: str, *,
               timeout: float | None = None) -> tuple[int, str, dict[str, Any]]:
    """What ``smcd-check replay TRACE --target SPEC`` prints and exits with.

    Returns:
        ``(exit code, one line of text, JSON document)``: exit 0 when the target agrees with
        the spec at every step, 1 when it does not (the line names the step, expected vs seen).

    Raises:
        ReplayError: the trace is malformed or an explorer trace (CLI exit 2).
        TargetLoadError: the target spec is bad or the target cannot be loaded (CLI exit 2).
    """
    from smcd_check.conformance.targets.load import load_target

    doc = load_trace_document(trace_file)
    case = trace_case(doc, Path(trace_file).stem)  # refuse explorer traces before loading
    del case
    target = load_target(target_spec, timeout=timeout)
    try:
        res = replay_against_target(doc, target)
    finally:
        target.close()
    bad = res.verdict.is_bad
    text = (f"trace {trace_file} on {target.name}: {res.verdict.value}"
            + (f": {res.message}" if res.message else f" ({len(res.steps)} steps agree)"))
    return (1 if bad else 0), text, {"trace": trace_file, "target": target.name,
                                     **res.to_json()}
