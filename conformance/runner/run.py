"""Run conformance cases against a target and judge each step against the spec's observation.

Theory of operation
-------------------
A :class:`Case` is a short script of :class:`Step` s (operations with optional bindings of the
handles they return). Its *expected* observations are not written by hand: the runner executes
the same script on the spec target (:class:`smcd_check.conformance.targets.load.SpecTarget`) and
takes what the spec observes. A case may in addition *pin* kernel facts (a step's observation as
the kernel source gives it, with the source cited); a pin that the spec contradicts makes the
case an ERROR of the catalogue, so the spec and the catalogue cannot drift apart silently.

Judging a step (expected = the spec's observation, seen = the target's):

* both succeed with the same value (handles compared symbolically) -> OK;
* both refuse with the same code -> OK;
* both refuse with different codes -> NON-STRICT (the refusal is right, the errno or decline code
  differs from the kernel's), or FAIL when the step is marked ``strict``;
* anything else -> FAIL, and the case stops there (the two states have diverged).

A refusal ``EOPNOTSUPP`` where the spec succeeds means the target cannot perform that operation
at all (the kernel has no system call that makes an SMC socket abort): the case is UNSUPPORTED.

A case is UNSUPPORTED when the target lacks a capability it needs, and ERROR when the target
broke (crash, hang, garbage, unexpected exception): the runner then resets the target (a
subprocess target restarts its process) and goes on with the next case.

The whole run can be interrupted (Ctrl-C): :func:`run_cases` returns what it has with
``interrupted`` set.
"""

from __future__ import annotations

import contextlib
import enum
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from smcd_check.conformance.targets.adapter import (
    NOT_OBSERVED,
    OPS,
    Capability,
    Observation,
    Op,
    Ref,
    Target,
    TargetBroken,
    needs,
)


class Area(enum.Enum):
    """The part of SMC-D a case checks."""

    CLC = "clc"
    HANDSHAKE = "handshake"
    LIFECYCLE = "lifecycle"
    CURSOR = "cursor"
    DATAPATH = "datapath"
    EXPLORER = "explorer"
    LOCKSTEP = "lockstep"


class Verdict(enum.Enum):
    """Result of one case (or step) on one target, from best to worst."""

    #: the target observed exactly what the spec observes
    OK = "OK"
    #: allowed, but differs from the kernel (another errno or decline code for a refusal)
    NON_STRICT = "NON-STRICT"
    #: the target lacks a capability the case needs
    UNSUPPORTED = "UNSUPPORTED"
    #: the target observed something the spec does not allow
    FAIL = "FAIL"
    #: the target broke (crash, timeout, garbage, unexpected exception) or the case is broken
    ERROR = "ERROR"

    @property
    def is_bad(self) -> bool:
        """FAIL and ERROR make the run exit 1."""
        return self in (Verdict.FAIL, Verdict.ERROR)


#: the refusal a target gives for an operation it cannot perform at all (-> UNSUPPORTED)
NOT_SUPPORTED = "EOPNOTSUPP"


def target_cannot(expected: Observation, seen: Observation) -> bool:
    """The target answered "cannot perform this operation at all" where the spec does not
    itself expect ``EOPNOTSUPP``: the step is UNSUPPORTED, whether the spec expected success
    or another error (the kernel target cannot abort, so an abort the spec refuses with EBADF
    after close says nothing about the kernel's errno)."""
    return (not seen.ok and seen.error == NOT_SUPPORTED
            and (expected.ok or expected.error != NOT_SUPPORTED))

_RANK = {Verdict.OK: 0, Verdict.NON_STRICT: 1, Verdict.UNSUPPORTED: 2, Verdict.FAIL: 3,
         Verdict.ERROR: 4}


def worst(verdicts: Iterable[Verdict]) -> Verdict:
    result = Verdict.OK
    for v in verdicts:
        if _RANK[v] > _RANK[result]:
            result = v
    return result


#: result/argument keys naming handles, grouped by what they name (symbols never cross kinds)
HANDLE_KIND: Mapping[str, str] = {"token": "dmb", "a": "conn", "b": "conn", "conn": "conn",
                                  "ep": "ep", "lgr": "lgr"}


@dataclass(frozen=True, slots=True, kw_only=True)
class Step:
    """One operation of a case.

    Attributes:
        op: the operation; handle arguments are :class:`Ref` s to earlier bindings.
        bind: a name under which this step's result handles can be referred to later.
        strict: a refusal must carry exactly the spec's code (a pinned kernel errno).
        ignore: result keys not compared (documented per case: implementation freedom).
        note: why this step is there (shown in reports).
    """

    op: Op
    bind: str | None = None
    strict: bool = False
    ignore: tuple[str, ...] = ()
    note: str = ""

    def to_json(self) -> dict[str, Any]:
        data = self.op.to_json()
        if self.bind:
            data["bind"] = self.bind
        if self.strict:
            data["strict"] = True
        if self.ignore:
            data["ignore"] = list(self.ignore)
        if self.note:
            data["note"] = self.note
        return data

    @staticmethod
    def from_json(data: Mapping[str, Any]) -> Step:
        return Step(
            op=Op.from_json(data),
            bind=data.get("bind"),
            strict=bool(data.get("strict", False)),
            ignore=tuple(data.get("ignore", ())),
            note=str(data.get("note", "")),
        )


def step(name: str, *, bind: str | None = None, strict: bool = False,
         ignore: tuple[str, ...] = (), note: str = "", **args: Any) -> Step:
    """Shorthand: ``step("dev_register_dmb", size=16384, bind="d1")``."""
    return Step(op=Op.make(name, **args), bind=bind, strict=strict, ignore=ignore, note=note)


@dataclass(frozen=True, slots=True, kw_only=True)
class Pin:
    """A kernel fact a case pins: the observation of step ``index`` as the kernel has it."""

    index: int
    #: the error code the kernel gives (None: the kernel's call succeeds)
    error: str | None
    #: optional result values the kernel gives (subset of the result keys)
    value: tuple[tuple[str, Any], ...] = ()
    #: where in the kernel this comes from (file, function)
    source: str = ""

    def check(self, obs: Observation) -> str | None:
        """Return None when ``obs`` agrees with the pinned fact, else what differs."""
        if self.error is None:
            if not obs.ok:
                return f"kernel succeeds here, spec refuses with {obs.error}"
            for key, want in self.value:
                got = obs.get(key)
                if got != want:
                    return f"kernel gives {key}={want!r}, spec {got!r}"
            return None
        if obs.ok:
            return f"kernel refuses with {self.error}, spec succeeds"
        if obs.error != self.error:
            return f"kernel refuses with {self.error}, spec with {obs.error}"
        return None


@dataclass(frozen=True, slots=True, kw_only=True)
class Case:
    """One catalogue case.

    Attributes:
        id: stable id, ``area.topic.name`` (never renamed: reports and regressions refer to it).
        area: which part of SMC-D it checks.
        title: one line.
        description: what is checked and why it matters.
        source: the kernel source it comes from (file, function).
        steps: the script.
        pins: kernel facts the spec's observations must agree with.
        rules: names of the spec rules/invariants the case exercises (coverage bookkeeping).
    """

    id: str
    area: Area
    title: str
    description: str
    source: str
    steps: tuple[Step, ...]
    pins: tuple[Pin, ...] = ()
    rules: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        for p in self.pins:
            if not 0 <= p.index < len(self.steps):
                raise ValueError(f"case {self.id}: pin for step {p.index}, but the case has "
                                 f"{len(self.steps)} steps")

    @property
    def needs(self) -> frozenset[Capability]:
        return needs(s.op for s in self.steps)

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "area": self.area.value,
            "title": self.title,
            "description": self.description,
            "source": self.source,
            "needs": sorted(c.value for c in self.needs),
            "steps": [s.to_json() for s in self.steps],
            "rules": list(self.rules),
        }


@dataclass(frozen=True, slots=True, kw_only=True)
class StepResult:
    """One step as run: the operation as written, both observations (normalized), the verdict."""

    index: int
    op: Op
    expected: Observation | None
    seen: Observation | None
    verdict: Verdict
    message: str = ""

    def to_json(self) -> dict[str, Any]:
        return {
            "index": self.index,
            "op": self.op.to_json(),
            "expected": self.expected.to_json() if self.expected else None,
            "seen": self.seen.to_json() if self.seen else None,
            "verdict": self.verdict.value,
            "message": self.message,
        }


@dataclass(frozen=True, slots=True, kw_only=True)
class CaseResult:
    """The verdict of one case on one target."""

    case: Case
    verdict: Verdict
    message: str
    steps: tuple[StepResult, ...] = ()
    seconds: float = 0.0

    @property
    def failing_step(self) -> StepResult | None:
        for s in self.steps:
            if s.verdict in (Verdict.FAIL, Verdict.ERROR):
                return s
        return None

    @property
    def explanation(self) -> str:
        """Why the case got its verdict, in words: what it checks (the case's description and
        kernel source) and what happened (the first differing step, expected vs seen)."""
        what = f"{self.case.title}: {self.case.description}".strip()
        if self.case.source:
            what += f" [{self.case.source}]"
        if self.verdict is Verdict.OK:
            return f"{what} -> agrees with the spec at all {len(self.steps)} steps."
        bad = self.failing_step
        detail = self.message
        if bad is not None and bad.verdict is Verdict.FAIL:
            exp = bad.expected.describe() if bad.expected else "(none)"
            seen = bad.seen.describe() if bad.seen else "(no answer)"
            detail = (f"{self.message}; at step {bad.index} {bad.op.describe()} the spec "
                      f"observes {_clip(exp)}, the target {_clip(seen)}")
        return f"{what} -> {self.verdict.value}: {detail}"

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.case.id,
            "area": self.case.area.value,
            "title": self.case.title,
            "description": self.case.description,
            "source": self.case.source,
            "verdict": self.verdict.value,
            "message": self.message,
            "explanation": self.explanation,
            "seconds": round(self.seconds, 4),
            "steps": [s.to_json() for s in self.steps],
        }


@dataclass(slots=True)
class RunResult:
    """All case results of one run on one target."""

    target: str
    capabilities: frozenset[Capability]
    results: list[CaseResult] = field(default_factory=list)
    interrupted: bool = False
    seconds: float = 0.0

    @property
    def bad(self) -> bool:
        return any(r.verdict.is_bad for r in self.results)

    def counts(self) -> dict[Verdict, int]:
        out = dict.fromkeys(Verdict, 0)
        for r in self.results:
            out[r.verdict] += 1
        return out

    def counts_by_area(self) -> dict[str, dict[Verdict, int]]:
        out: dict[str, dict[Verdict, int]] = {}
        for r in self.results:
            out.setdefault(r.case.area.value, dict.fromkeys(Verdict, 0))[r.verdict] += 1
        return out


# --------------------------------------------------------------------------- running a script


class ScriptError(Exception):
    """A case script cannot be run as written (a reference to a binding that does not exist)."""


@dataclass(slots=True)
class _Handles:
    """Per-target mapping between raw handle values and symbolic names."""

    bindings: dict[str, Observation] = field(default_factory=dict)
    to_symbol: dict[tuple[str, Any], str] = field(default_factory=dict)
    fresh: int = 0

    def resolve(self, op: Op) -> Op:
        if not op.refs():
            return op
        args: dict[str, Any] = {}
        for k, v in op.args:
            if isinstance(v, Ref):
                bound = self.bindings.get(v.bind)
                if bound is None:
                    raise ScriptError(f"{op.name}: no earlier step bound {v.bind!r}")
                if not bound.ok:
                    raise ScriptError(f"{op.name}: step {v.bind!r} failed ({bound.error})")
                args[k] = _lookup(bound, v.key)
            else:
                args[k] = v
        return Op.make(op.name, **args)

    def symbolize(self, st: Step, obs: Observation) -> Observation:
        """Replace raw handle values in a result by symbolic names (binding.key)."""
        if not obs.ok:
            return obs
        info = OPS[st.op.name]
        if not info.handles:
            return obs
        value = {k: obs.get(k) for k in _keys(obs)}
        for key in info.handles:
            if key not in value:
                continue
            kind = HANDLE_KIND.get(key, key)
            raw = value[key]
            ident = (kind, _hashable(raw))
            # a value seen before keeps its name, so a creator handing out a live token again
            # is caught (the spec never reuses values; the kernel's tokens are random u64)
            sym = self.to_symbol.get(ident)
            if sym is None:
                if st.bind:
                    sym = f"{st.bind}.{key}"
                else:
                    self.fresh += 1
                    sym = f"{kind}#{self.fresh}"
                self.to_symbol[ident] = sym
            value[key] = f"<{sym}>"
        return Observation.success(value)


def _lookup(obs: Observation, path: str) -> Any:
    """``key`` or ``key.index...`` of a successful result (``out.0``: first message sent)."""
    key, *rest = path.split(".")
    value = obs.get(key)
    for part in rest:
        try:
            value = value[int(part)] if isinstance(value, list) else value[part]
        except (IndexError, KeyError, ValueError, TypeError) as exc:
            raise ScriptError(f"{path}: no element {part!r} in {value!r}") from exc
    return value


def _keys(obs: Observation) -> list[str]:
    return [k for k, _ in obs.value] if obs.value else []


def _hashable(value: Any) -> Any:
    if isinstance(value, list):
        return tuple(_hashable(v) for v in value)
    if isinstance(value, dict):
        return tuple(sorted((k, _hashable(v)) for k, v in value.items()))
    return value


def _check_shape(op: Op, obs: Any) -> Observation:
    """An observation must be an Observation whose success value has the op's result keys."""
    if not isinstance(obs, Observation):
        raise TargetBroken(f"{op.name} returned {type(obs).__name__}, not an Observation")
    if obs.ok:
        missing = [k for k in OPS[op.name].result if k not in _keys(obs)]
        if missing:
            raise TargetBroken(f"{op.name} result lacks {missing}: {obs.describe()}")
    elif not obs.error:
        raise TargetBroken(f"{op.name} refused without an error code")
    return obs


def execute(target: Target, steps: Sequence[Step]) -> list[Observation]:
    """Run a script on a target from a fresh reset; return the symbolized observations.

    Raises:
        TargetBroken: the target broke.
        ScriptError: the script refers to a binding that does not exist or failed.
    """
    _reset(target)
    handles = _Handles()
    out = []
    for st in steps:
        raw = _apply(target, handles.resolve(st.op))
        if st.bind:
            handles.bindings[st.bind] = raw
        out.append(handles.symbolize(st, raw))
    return out


def _reset(target: Target) -> None:
    """``target.reset()``; anything it raises makes the target broken (an ERROR, never a
    traceback: a user's in-process target may raise whatever it likes)."""
    try:
        target.reset()
    except TargetBroken:
        raise
    except Exception as exc:
        raise TargetBroken(f"reset raised {type(exc).__name__}: {exc}") from exc


def _apply(target: Target, op: Op) -> Observation:
    try:
        obs = target.apply(op)
    except TargetBroken:
        raise
    except Exception as exc:  # an in-process target raised something it should not
        raise TargetBroken(f"{op.name} raised {type(exc).__name__}: {exc}") from exc
    return _check_shape(op, obs)


def compare(st: Step, expected: Observation, seen: Observation) -> tuple[Verdict, str]:
    """Judge one step (see the module docstring)."""
    if expected.ok and seen.ok:
        exp = {k: expected.get(k) for k in _keys(expected) if k not in st.ignore}
        got = {k: seen.get(k) for k in _keys(seen) if k not in st.ignore}
        skipped: list[str] = []
        diff = [k for k in sorted(set(exp) | set(got))
                if not _agrees(exp.get(k), got.get(k), k, skipped)
                and k in OPS[st.op.name].result]
        if not diff:
            return Verdict.OK, (f"not observable on this target: {', '.join(skipped)}"
                                if skipped else "")
        if st.op.name.startswith("hs_") and _both_declined(exp, got):
            return Verdict.NON_STRICT, (
                f"declined with reason {_short(got['outcome'].get('reason'))}, the kernel with "
                f"{_short(exp['outcome'].get('reason'))}")
        parts = [f"{k}: expected {_short(exp.get(k))}, seen {_short(got.get(k))}" for k in diff]
        return Verdict.FAIL, "; ".join(parts)
    if not expected.ok and not seen.ok:
        if expected.error == seen.error:
            return Verdict.OK, ""
        msg = f"refused with {seen.error}, the spec/kernel refuses with {expected.error}"
        return (Verdict.FAIL if st.strict else Verdict.NON_STRICT), msg
    if expected.ok:
        return Verdict.FAIL, f"expected success {expected.describe()}, seen error {seen.error}" + (
            f" ({seen.detail})" if seen.detail else "")
    return Verdict.FAIL, f"expected error {expected.error}, seen success {seen.describe()}"


def _agrees(want: Any, got: Any, path: str, skipped: list[str]) -> bool:
    """``want == got``, except that a part the target marks :data:`NOT_OBSERVED` agrees with
    anything (its path is noted in ``skipped``)."""
    if got == NOT_OBSERVED:
        skipped.append(path)
        return True
    if isinstance(want, dict) and isinstance(got, dict):
        return want.keys() == got.keys() and all(
            _agrees(want[k], got[k], f"{path}.{k}", skipped) for k in want)
    if isinstance(want, list) and isinstance(got, list):
        return len(want) == len(got) and all(
            _agrees(a, b, f"{path}[{i}]", skipped)
            for i, (a, b) in enumerate(zip(want, got, strict=True)))
    return bool(want == got)


def _both_declined(exp: dict[str, Any], got: dict[str, Any]) -> bool:
    """Both handshake sides fell back after a Decline and differ only in the reason (code)."""
    eo, go = exp.get("outcome"), got.get("outcome")
    if not (isinstance(eo, dict) and isinstance(go, dict)):
        return False
    if eo.get("kind") != "declined" or go.get("kind") != "declined":
        return False
    # the same messages (their decline codes may differ) and the same effects on the link
    # groups: a missed sync error or a leaked connection is never "just another code"
    return (len(exp.get("out", [])) == len(got.get("out", []))
            and exp.get("effects") == got.get("effects"))


def _clip(text: str, limit: int = 200) -> str:
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 80 else text[:76] + "...'"


class ExpectationCache:
    """The spec's observations per case, computed once."""

    def __init__(self, spec: Target) -> None:
        self.spec = spec
        # keyed by object identity (the case is kept alive in the value): two cases with the
        # same id but other steps never share expectations
        self._cache: dict[int, tuple[Case, list[Observation] | str]] = {}

    def expected(self, case: Case) -> list[Observation] | str:
        """The spec's observations, or a message saying why the spec cannot run the case."""
        hit = self._cache.get(id(case))
        if hit is None:
            hit = self._cache[id(case)] = (case, self._compute(case))
        return hit[1]

    def _compute(self, case: Case) -> list[Observation] | str:
        if not case.needs <= self.spec.capabilities:
            missing = sorted(c.value for c in case.needs - self.spec.capabilities)
            return f"the spec target lacks {missing}"
        try:
            obs = execute(self.spec, case.steps)
        except (TargetBroken, ScriptError) as exc:
            return f"the spec cannot run this case: {exc}"
        for pin in case.pins:
            problem = pin.check(obs[pin.index])
            if problem:
                return f"step {pin.index}: {problem} ({pin.source})"
        return obs


def run_case(target: Target, case: Case, oracle: ExpectationCache) -> CaseResult:
    """Run one case on ``target`` and judge it against the spec's observations."""
    start = time.perf_counter()
    missing = case.needs - target.capabilities
    if missing:
        names = ", ".join(sorted(c.value for c in missing))
        # a target may say why it lacks a capability (the kernel: BPF unavailable, ...)
        notes = getattr(target, "capability_notes", None) or {}
        why = sorted({str(notes[c]) for c in missing if c in notes})
        return CaseResult(case=case, verdict=Verdict.UNSUPPORTED,
                          message=f"target lacks {names}" + (f": {'; '.join(why)}" if why
                                                             else ""))
    expected = oracle.expected(case)
    if isinstance(expected, str):
        return CaseResult(case=case, verdict=Verdict.ERROR, message=f"catalogue: {expected}",
                          seconds=time.perf_counter() - start)
    results: list[StepResult] = []
    verdict = Verdict.OK
    message = ""
    try:
        _reset(target)
        handles = _Handles()
        for index, (st, exp) in enumerate(zip(case.steps, expected, strict=True)):
            try:
                op = handles.resolve(st.op)
            except ScriptError as exc:  # only if the target diverged already: cannot happen
                raise TargetBroken(str(exc)) from exc
            try:
                raw = _apply(target, op)
            except TargetBroken as exc:
                results.append(StepResult(index=index, op=st.op, expected=exp, seen=None,
                                          verdict=Verdict.ERROR, message=str(exc)))
                raise
            if st.bind:
                handles.bindings[st.bind] = raw
            seen = handles.symbolize(st, raw)
            if target_cannot(exp, seen):
                # the target declares at run time that it cannot perform this operation (the
                # kernel has no system call for an abort): not a failure
                results.append(StepResult(index=index, op=st.op, expected=exp, seen=seen,
                                          verdict=Verdict.UNSUPPORTED,
                                          message=f"target: {seen.detail or NOT_SUPPORTED}"))
                verdict = Verdict.UNSUPPORTED
                message = f"step {index} {st.op.name}: the target cannot do it ({seen.detail})"
                break
            v, msg = compare(st, exp, seen)
            results.append(StepResult(index=index, op=st.op, expected=exp, seen=seen,
                                      verdict=v, message=msg))
            if v is Verdict.NON_STRICT and verdict is Verdict.OK:
                verdict, message = v, f"step {index} {st.op.name}: {msg}"
            if v is Verdict.FAIL:
                verdict, message = v, f"step {index} {st.op.name}: {msg}"
                break
    except TargetBroken as exc:
        verdict, message = Verdict.ERROR, f"target broke: {exc}"
        with contextlib.suppress(TargetBroken):
            _reset(target)
    return CaseResult(case=case, verdict=verdict, message=message, steps=tuple(results),
                      seconds=time.perf_counter() - start)


ProgressFn = Callable[[int, int, CaseResult], None]


def run_cases(
    target: Target,
    cases: Sequence[Case],
    oracle: ExpectationCache,
    *,
    progress: ProgressFn | None = None,
) -> RunResult:
    """Run every case in order; Ctrl-C stops early with ``interrupted`` set."""
    run = RunResult(target=target.name, capabilities=target.capabilities)
    start = time.perf_counter()
    try:
        for i, case in enumerate(cases):
            res = run_case(target, case, oracle)
            run.results.append(res)
            if progress is not None:
                progress(i + 1, len(cases), res)
    except KeyboardInterrupt:
        run.interrupted = True
    run.seconds = time.perf_counter() - start
    return run
