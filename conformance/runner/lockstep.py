"""Differential testing: drive the spec and a target in lockstep with random operation sequences.

Theory of operation
-------------------
A Hypothesis :class:`~hypothesis.stateful.RuleBasedStateMachine` draws socket and device
operations (open a pair, send, recv, shutdown, close, abort; register, attach, detach,
unregister, move_data, read) and applies each one to the spec target first and then to the
target under test, comparing the two observations with the runner's rule
(:func:`~smcd_check.conformance.runner.run.compare`): handles symbolically, errno differences as
NON-STRICT (allowed), anything else a failure. After every step both endpoints' cursor snapshots
are compared too (an invariant), so a divergence is caught at the step that causes it.

An operation the spec answers ``ENOTMODELLED`` (outside what the spec describes, e.g. a close
while data is still unmoved) is not sent to the target: it plays the role of a precondition.
Data flows from ``p.a`` to ``p.b`` only (the spec models one direction per pair at a time).

On a failure Hypothesis shrinks the sequence; the last run is the minimal one, and its steps are
kept as a regression trace (:func:`trace_json`, format ``smcd-check-trace`` version 2, kind
``conformance``): replay it with :func:`.replay.replay_against_target` or
``smcd-check replay TRACE --target ...``.

Settings come from the active Hypothesis profile (tests/conftest.py: ``ci`` by default) scaled
by the caller's ``examples``; nothing here hard-codes a budget.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, reject, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    Bundle,
    RuleBasedStateMachine,
    initialize,
    invariant,
    precondition,
    rule,
    run_state_machine_as_test,
)

from smcd_check.conformance.runner.run import (
    NOT_SUPPORTED,
    Area,
    Case,
    CaseResult,
    Step,
    StepResult,
    Verdict,
    _apply,
    _Handles,
    _reset,
    compare,
)
from smcd_check.conformance.targets.adapter import (
    Capability,
    Observation,
    Op,
    Ref,
    Target,
    TargetBroken,
)

TRACE_FORMAT = "smcd-check-trace"
TRACE_VERSION = 1
NOT_MODELLED = "ENOTMODELLED"
D = 16384
A, B = Ref("p", "a"), Ref("p", "b")


#: longest random walk (the active profile's stateful_step_count caps it further)
MAX_STEPS = 30
#: byte counts for send/recv: small ones, and the sizes around the window-update limit (2304)
#: and the 16352-byte ring where the interesting decisions are (kept moderate: the spec tracks
#: every byte, so huge sends only cost time)
SIZES = st.one_of(st.integers(1, 300),
                  st.sampled_from([2304, 2305, 4000, 8176, 8177, 12000, 16351, 16352, 16353]))


class LockstepDivergence(AssertionError):
    """The target observed something the spec does not (carries the step record)."""

    def __init__(self, message: str, record: StepResult | None) -> None:
        super().__init__(message)
        self.record = record


class _ShrinkBudgetSpent(BaseException):
    """Raised inside a run once a failure is known and the time budget is spent: stops
    Hypothesis' shrinking; the shortest failing trace seen so far is reported."""


@dataclass(slots=True)
class LockstepLog:
    """Steps of the current run and the shortest failing run seen, shared with the caller."""

    steps: list[Step] = field(default_factory=list)
    records: list[StepResult] = field(default_factory=list)
    runs: int = 0
    steps_total: int = 0
    best_steps: list[Step] | None = None
    best_records: list[StepResult] = field(default_factory=list)
    best_message: str = ""
    deadline: float | None = None
    #: time allowed for shrinking, counted from the first failure
    shrink_seconds: float | None = None
    #: the target broke outside any step (at reset): an ERROR, not a divergence
    broken: bool = False

    def note_failure(self, message: str) -> None:
        if self.best_steps is None and self.shrink_seconds is not None:
            self.deadline = time.perf_counter() + self.shrink_seconds
        if self.best_steps is None or len(self.steps) < len(self.best_steps):
            self.best_steps = list(self.steps)
            self.best_records = list(self.records)
            self.best_message = message


def make_machine(target_factory: Callable[[], Target], *,
                 spec_factory: Callable[[], Target] | None = None,
                 log: LockstepLog | None = None) -> type[RuleBasedStateMachine]:
    """Build a lockstep state machine class for targets made by ``target_factory``.

    The target is created once per machine class and reset at the start of every run. The
    spec defaults to :class:`~smcd_check.conformance.targets.spec_target.SpecTarget`.
    """
    from smcd_check.conformance.targets.spec_target import SpecTarget

    shared: dict[str, Any] = {}
    the_log = log if log is not None else LockstepLog()

    def targets() -> tuple[Target, Target]:
        if "target" not in shared:
            shared["target"] = target_factory()
            shared["spec"] = (spec_factory or SpecTarget)()
        return shared["spec"], shared["target"]

    class Lockstep(RuleBasedStateMachine):
        dmbs = Bundle("dmbs")

        def __init__(self) -> None:
            super().__init__()
            self.spec, self.target = targets()
            caps = self.target.capabilities & self.spec.capabilities
            self.has_device = Capability.DEVICE in caps
            self.has_nocopy = Capability.DEVICE_NOCOPY in caps
            self.modes = [m for m, c in (("copy", Capability.CONN_COPY),
                                          ("merged", Capability.CONN_MERGED)) if c in caps]
            self.spec.reset()
            the_log.steps = []
            the_log.records = []
            try:
                _reset(self.target)
            except TargetBroken as exc:
                msg = f"target broke at reset: {exc}"
                the_log.broken = True
                the_log.note_failure(msg)
                raise LockstepDivergence(msg, None) from exc
            self.hs = _Handles()
            self.ht = _Handles()
            self.pair_open = False
            self.conn_dirty = False
            self.gone: set[Ref] = set()
            self.next_dmb = 0
            the_log.runs += 1

        # ---------------------------------------------------------------- the comparison

        def do(self, st_: Step) -> Observation | None:
            """Run one step on both; None when the spec does not model it (not sent on)."""
            if (the_log.best_steps is not None and the_log.deadline is not None
                    and time.perf_counter() > the_log.deadline):
                raise _ShrinkBudgetSpent
            try:
                exp_raw = self.spec.apply(self.hs.resolve(st_.op))
            except TargetBroken as exc:  # the spec itself broke: a catalogue/adapter bug
                raise AssertionError(f"the spec target broke on {st_.op.describe()}: {exc}") \
                    from exc
            if not exp_raw.ok and exp_raw.error == NOT_MODELLED:
                return None
            if st_.bind:
                self.hs.bindings[st_.bind] = exp_raw
            expected = self.hs.symbolize(st_, exp_raw)
            index = len(the_log.steps)
            the_log.steps.append(st_)
            the_log.steps_total += 1
            try:
                seen_raw = _apply(self.target, self.ht.resolve(st_.op))
            except TargetBroken as exc:
                rec = StepResult(index=index, op=st_.op, expected=expected, seen=None,
                                 verdict=Verdict.ERROR, message=str(exc))
                the_log.records.append(rec)
                msg = f"target broke at {st_.op.describe()}: {exc}"
                the_log.note_failure(msg)
                raise LockstepDivergence(msg, rec) from exc
            if st_.bind:
                self.ht.bindings[st_.bind] = seen_raw
            if st_.op.name.startswith("conn_") and st_.op.name != "conn_cursors":
                self.conn_dirty = True
            seen = self.ht.symbolize(st_, seen_raw)
            if not seen.ok and seen.error == NOT_SUPPORTED and expected.ok:
                # the target cannot do this at all (e.g. the kernel has no abort call): the
                # two sides no longer match, so this random walk is discarded, not failed
                the_log.steps.pop()
                reject()
            verdict, message = compare(st_, expected, seen)
            rec = StepResult(index=index, op=st_.op, expected=expected, seen=seen,
                             verdict=verdict, message=message)
            the_log.records.append(rec)
            if verdict is Verdict.FAIL:
                msg = f"step {index} {st_.op.describe()}: {message}"
                the_log.note_failure(msg)
                raise LockstepDivergence(msg, rec)
            return seen

        # ---------------------------------------------------------------- connections

        @initialize(mode=st.sampled_from(["copy", "merged"]))
        def open_pair(self, mode: str) -> None:
            if mode not in self.modes:
                if not self.modes:
                    return
                mode = self.modes[0]
            obs = self.do(Step(op=Op.make("conn_open", mode=mode, dmb_size=D,
                                          sndbuf_size=D if mode == "copy" else 0), bind="p"))
            self.pair_open = obs is not None and obs.ok

        @precondition(lambda self: self.pair_open)
        @rule(n=SIZES, seed=st.integers(0, 255))
        def send(self, n: int, seed: int) -> None:
            data = bytes((seed + i * 13) & 0xFF for i in range(n)).hex()
            self.do(Step(op=Op.make("conn_send", conn=A, data=data)))

        @precondition(lambda self: self.pair_open)
        @rule(n=SIZES)
        def recv(self, n: int) -> None:
            self.do(Step(op=Op.make("conn_recv", conn=B, max=n)))

        @precondition(lambda self: self.pair_open)
        @rule(who=st.sampled_from([A, B]),
              what=st.sampled_from(["conn_shutdown", "conn_close", "conn_abort"]))
        def end(self, who: Ref, what: str) -> None:
            obs = self.do(Step(op=Op.make(what, conn=who)))
            if obs is not None and what != "conn_shutdown":
                self.gone.add(who)  # a closed socket has no cursors to show (smc_diag)

        @invariant()
        def cursors_agree(self) -> None:
            if self.pair_open and self.conn_dirty:
                self.conn_dirty = False
                for who in (A, B):
                    if who not in self.gone:
                        self.do(Step(op=Op.make("conn_cursors", conn=who)))

        # ---------------------------------------------------------------- device

        @precondition(lambda self: self.has_device)
        @rule(target=dmbs, size=st.sampled_from([D, 2 * D]))
        def register(self, size: int) -> str:
            self.next_dmb += 1
            name = f"d{self.next_dmb}"
            self.do(Step(op=Op.make("dev_register_dmb", size=size), bind=name, strict=True))
            return name

        @precondition(lambda self: self.has_device)
        @rule(name=dmbs, what=st.sampled_from(["dev_unregister_dmb", "dev_attach_dmb",
                                               "dev_detach_dmb"]))
        def refcount(self, name: str, what: str) -> None:
            if what != "dev_unregister_dmb" and not self.has_nocopy:
                return
            if not self._bound_ok(name):
                return
            self.do(Step(op=Op.make(what, token=Ref(name, "token")), strict=True))

        @precondition(lambda self: self.has_device)
        @rule(name=dmbs, offset=st.one_of(st.integers(0, 64), st.integers(D - 40, 2 * D + 8)),
              n=st.integers(1, 48), signal=st.booleans())
        def move(self, name: str, offset: int, n: int, signal: bool) -> None:
            if self._bound_ok(name):
                data = bytes((offset + i) & 0xFF for i in range(n)).hex()
                self.do(Step(op=Op.make("dev_move_data", token=Ref(name, "token"),
                                        offset=offset, data=data, signal=signal), strict=True))
                self.do(Step(op=Op.make("dev_read_dmb", token=Ref(name, "token"),
                                        offset=min(offset, D - 48), size=48)))

        def _bound_ok(self, name: str) -> bool:
            obs = self.hs.bindings.get(name)
            return obs is not None and obs.ok

    Lockstep.__name__ = Lockstep.__qualname__ = "Lockstep"
    return Lockstep


def trace_json(target_name: str, steps: list[Step], records: list[StepResult],
               message: str) -> dict[str, Any]:
    """The JSON regression trace of a lockstep failure: the shared trace format (version 2,
    kind ``conformance``; :mod:`smcd_check.conformance.traces`), one plan of the shrunk steps
    with the spec's expectations, and what the target saw."""
    from smcd_check.conformance.traces.document import conformance_document

    doc = conformance_document(steps, target=target_name, failure=message,
                               tool="smcd-check conform --save-trace")
    doc["observations"] = [
        {"expected": r.expected.to_json() if r.expected else None,
         "seen": r.seen.to_json() if r.seen else None,
         "verdict": r.verdict.value} for r in records
    ]
    return doc


LOCKSTEP_CASE = Case(
    id="lockstep.random.walk",
    area=Area.LOCKSTEP,
    title="random operation sequences agree with the spec",
    description="Hypothesis drives the spec and the target in lockstep (send/recv/close/abort/"
                "register/attach/detach/unregister/move_data) and compares every observation; "
                "a failure is shrunk to a minimal trace.",
    source="conformance/runner/lockstep.py",
    steps=(),
)


def run_lockstep(target: Target, *, examples: int = 60, save_to: str | None = None,
                 shrink_seconds: float = 60.0) -> CaseResult | None:
    """Run the lockstep test against an already loaded ``target``.

    Args:
        target: the target (reset between runs; not closed here).
        examples: Hypothesis examples (each a random sequence of up to the active profile's
            ``stateful_step_count`` steps, at most :data:`MAX_STEPS`).
        save_to: where to write the shrunk trace on failure.
        shrink_seconds: time allowed for shrinking once a failure is found; when it is spent
            the shortest failing trace so far is reported (still a real counterexample).

    Returns:
        A :class:`CaseResult` for the reports (id ``lockstep.random.walk``), or None when the
        target shares no capability the lockstep test drives. Runs are reproducible
        (derandomized).
    """
    from smcd_check.conformance.targets.spec_target import SpecTarget

    spec = SpecTarget()
    driven = {Capability.DEVICE, Capability.CONN_COPY, Capability.CONN_MERGED}
    if not (target.capabilities & spec.capabilities & driven):
        return None
    log = LockstepLog()
    machine = make_machine(lambda: target, spec_factory=lambda: spec, log=log)
    start = time.perf_counter()
    profile = settings.default
    assert profile is not None
    cfg = settings(profile, max_examples=examples, derandomize=True, database=None,
                   deadline=None, print_blob=False,
                   stateful_step_count=min(profile.stateful_step_count, MAX_STEPS),
                   suppress_health_check=[HealthCheck.too_slow,
                                          HealthCheck.filter_too_much])
    found = False
    log.shrink_seconds = shrink_seconds
    try:
        run_state_machine_as_test(machine, settings=cfg)
    except (LockstepDivergence, _ShrinkBudgetSpent):
        found = True
    except Exception as exc:
        # stopping the shrinker mid-run can make Hypothesis report flakiness; the failure
        # itself is real and recorded in the log (and replayable), so report that
        if log.best_steps is None:
            # anything else escaping the walk (the spec or Hypothesis itself failing) is an
            # ERROR of this case, never a traceback
            return CaseResult(case=LOCKSTEP_CASE, verdict=Verdict.ERROR,
                              message=f"lockstep stopped: {type(exc).__name__}: "
                                      f"{str(exc).splitlines()[0] if str(exc) else ''}",
                              seconds=time.perf_counter() - start)
        found = True
    if found and log.best_steps is not None:
        steps = list(log.best_steps)
        records = tuple(log.best_records)
        message = log.best_message
        saved = ""
        if save_to and steps:
            try:
                Path(save_to).write_text(json.dumps(
                    trace_json(target.name, steps, list(records), message), indent=2))
            except OSError as exc:
                saved = f" (the trace could not be saved to {save_to}: {exc})"
            else:
                saved = f" (trace saved to {save_to})"
        case = Case(id=LOCKSTEP_CASE.id, area=Area.LOCKSTEP, title=LOCKSTEP_CASE.title,
                    description=LOCKSTEP_CASE.description, source=LOCKSTEP_CASE.source,
                    steps=tuple(steps))
        verdict = (records[-1].verdict if records
                   else Verdict.ERROR if log.broken else Verdict.FAIL)
        return CaseResult(case=case, verdict=verdict if verdict.is_bad else Verdict.FAIL,
                          message=(f"shrunk to {len(steps)} steps: {message}" if steps
                                   else message) + saved,
                          steps=records, seconds=time.perf_counter() - start)
    return CaseResult(case=LOCKSTEP_CASE, verdict=Verdict.OK,
                      message=f"{log.runs} runs, {log.steps_total} steps compared",
                      seconds=time.perf_counter() - start)
