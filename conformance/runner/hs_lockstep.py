"""Lockstep handshake walks: a hostile peer's mutated CLC messages against the spec and a target.

Theory of operation
-------------------
One walk puts the target's handshake endpoint in a role (client or server, ``hs_new``) and
plays the other side: an *honest* peer, the spec's own endpoint of the other role, computes the
next message from what the spec says the target sends (the Accept a server answers a Proposal
with, the Proposal and then the Confirm of a client), and Hypothesis *mutates* it - a byte, a
header field (version nibble, type, length, typev1/typev2 bits), a field of the message's layout
at its kernel offset (GIDs, token, CHID, DMB size, v2-extension offsets and counts, release,
EID, trailer), a truncation, extra bytes, a Decline instead (with or without the out-of-sync
bit), or a split of the message into two feeds. The bytes go to the spec and to the target with
``hs_feed``; their observations (messages sent, outcome) are compared with the runner's rule
(:func:`~smcd_check.conformance.runner.run.compare`). The walk ends when the spec's endpoint has
finished or after :data:`MAX_FEEDS` feeds.

Steps the spec does not take are not sent to the target (they play the role of a
precondition, like ``ENOTMODELLED`` in :mod:`.lockstep`): a step on which the spec target
breaks, and a step the spec ends in ``oops`` or ``hang`` - kernel faults that are reproduced by
their own scenarios (``kernel run peer-accept-v3`` / ``peer-syncerr-first``) and would only make
every walk reboot a guest.

A divergence is shrunk by Hypothesis and kept as a ``smcd-check-trace`` (version 1, kind
``conformance``): its steps are plain ``hs_new`` / ``hs_feed`` operations with the concrete
bytes, so ``smcd-check replay TRACE --target ...`` re-runs it on any target.
"""

from __future__ import annotations

import json
import struct
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, given, reject, settings
from hypothesis import strategies as st

from smcd_check.conformance.runner.lockstep import (
    LockstepDivergence,
    LockstepLog,
    _ShrinkBudgetSpent,
    trace_json,
)
from smcd_check.conformance.runner.run import (
    Area,
    Case,
    CaseResult,
    Step,
    StepResult,
    Verdict,
    _Handles,
    compare,
    target_cannot,
)
from smcd_check.conformance.targets.adapter import (
    Capability,
    Observation,
    Op,
    Ref,
    Target,
    TargetBroken,
)

#: feeds per walk at most (a handshake needs two from the client side, one from the server's)
MAX_FEEDS = 4
#: outcomes the spec gives for kernel faults: such a step is not sent to the target
FAULT_KINDS = frozenset({"oops", "hang"})

#: (offset, size) of the fields a mutation may set, per CLC message type (Linux's layouts,
#: net/smc/smc_clc.h; offsets from the start of the message)
FIELDS: dict[int, tuple[tuple[int, int], ...]] = {
    1: ((8, 8), (16, 8), (38, 2), (40, 8), (48, 2), (50, 2), (80, 1), (81, 1), (83, 1), (86, 2),
        (110, 2), (120, 32), (200, 8), (208, 2), (210, 8), (218, 2)),
    2: ((8, 8), (16, 8), (24, 1), (25, 1), (28, 4), (32, 2), (34, 32), (66, 8), (74, 1),
        (75, 1), (78, 32), (112, 1), (114, 2)),
    3: ((8, 8), (16, 8), (24, 1), (25, 1), (28, 4), (32, 2), (34, 32), (66, 8), (74, 1),
        (75, 1), (78, 32), (112, 1), (114, 2)),
    4: ((8, 8), (16, 4), (20, 1)),
}
#: decline codes a mutated Decline may carry (a few real ones and nonsense)
DECLINE_CODES = (0x03030000, 0x03030008, 0x04000000, 0x05000000, 0x09990000, 0xFFFFFFFF, 0)


@dataclass(frozen=True, slots=True)
class Mutation:
    """What to do with the honest message (for the trace's notes)."""

    kind: str
    detail: str = ""


def _set_len(msg: bytearray, length: int) -> None:
    msg[5:7] = struct.pack(">H", length & 0xFFFF)


def _decline(code: int, out_of_sync: bool, version: int) -> bytes:
    m = bytearray(44 if version >= 2 else 28)
    m[0:4] = b"\xe2\xd4\xc3\xd9"
    m[4] = 4
    _set_len(m, len(m))
    m[7] = (version & 15) << 4 | (2 if out_of_sync else 0) << 2
    m[16:20] = struct.pack(">I", code)
    m[20] = 2 << 4 if version >= 2 else 0
    m[-4:] = b"\xe2\xd4\xc3\xd9"
    return bytes(m)


@st.composite
def mutated(draw: Any, honest: bytes) -> tuple[list[bytes], Mutation]:
    """The feeds (one, or two for a split) that carry a mutation of ``honest``."""
    kind = draw(st.sampled_from(["none", "none", "byte", "header", "field", "field", "truncate",
                                 "extend", "decline", "split"]))
    msg = bytearray(honest)
    if kind == "byte" and msg:
        at = draw(st.integers(0, len(msg) - 1))
        msg[at] = draw(st.integers(0, 255))
        return [bytes(msg)], Mutation(kind, f"byte {at} = {msg[at]:#04x}")
    if kind == "header" and len(msg) >= 8:
        what = draw(st.sampled_from(["version", "type", "length", "typev2", "typev1"]))
        if what == "version":
            v = draw(st.sampled_from([0, 1, 3, 15]))
            msg[7] = (msg[7] & 0x0F) | v << 4
        elif what == "type":
            msg[4] = draw(st.sampled_from([0, 1, 2, 3, 4, 5, 255]))
        elif what == "length":
            _set_len(msg, draw(st.sampled_from([0, 7, 8, len(msg) - 1, len(msg) + 1, 0xFFFF])))
        elif what == "typev2":
            msg[7] = (msg[7] & 0xF3) | draw(st.integers(0, 3)) << 2
        else:
            msg[7] = (msg[7] & 0xFC) | draw(st.integers(0, 3))
        return [bytes(msg)], Mutation(kind, what)
    if kind == "field" and len(msg) > 4 and FIELDS.get(msg[4]):
        fields = [f for f in FIELDS[msg[4]] if f[0] + f[1] <= len(msg)]
        if fields:
            off, size = draw(st.sampled_from(fields))
            top = (1 << (8 * size)) - 1
            value = draw(st.one_of(st.sampled_from([0, 1, top, top - 1, 0xFFFF & top]),
                                   st.integers(0, top)))
            msg[off:off + size] = value.to_bytes(size, "big")
            return [bytes(msg)], Mutation(kind, f"bytes {off}..{off + size} = {value:#x}")
    if kind == "truncate" and len(msg) > 1:
        cut = draw(st.integers(1, len(msg) - 1))
        return [bytes(msg[:cut])], Mutation(kind, f"first {cut} bytes")
    if kind == "extend":
        extra = draw(st.binary(min_size=1, max_size=16))
        fix = draw(st.booleans())
        if fix and len(msg) >= 8:
            _set_len(msg, len(msg) + len(extra))
            msg = msg[:-4] + extra + msg[-4:]
        else:
            msg += extra
        return [bytes(msg)], Mutation(kind, f"{len(extra)} bytes{' (length fixed)' if fix else ''}")
    if kind == "decline":
        code = draw(st.sampled_from(DECLINE_CODES))
        oos = draw(st.booleans())
        version = draw(st.sampled_from([1, 2]))
        return [_decline(code, oos, version)], Mutation(
            kind, f"code {code:#010x}{' out-of-sync' if oos else ''} v{version}")
    if kind == "split" and len(msg) > 1:
        cut = draw(st.integers(1, len(msg) - 1))
        return [bytes(msg[:cut]), bytes(msg[cut:])], Mutation(kind, f"at {cut}")
    return [bytes(msg)], Mutation("none")


class _Walk:
    """One walk's two handle tables and its comparison (shares the log with the caller)."""

    def __init__(self, spec: Target, target: Target, log: LockstepLog) -> None:
        self.spec, self.target, self.log = spec, target, log
        self.hs, self.ht = _Handles(), _Handles()

    def spec_only(self, op: Op) -> Observation:
        """The spec's observation of an operation the target does not see (the honest peer)."""
        try:
            return self.spec.apply(op)
        except TargetBroken:
            reject()
            raise  # pragma: no cover - reject() raises

    def both(self, st_: Step) -> Observation:
        """Run one step on the spec, then (if the spec takes it) on the target, and compare."""
        if (self.log.best_steps is not None and self.log.deadline is not None
                and time.perf_counter() > self.log.deadline):
            raise _ShrinkBudgetSpent
        try:
            exp_raw = self.spec.apply(self.hs.resolve(st_.op))
        except TargetBroken:
            reject()  # the spec does not take this step (e.g. an inconsistent answer)
        outcome = exp_raw.get("outcome") if exp_raw.ok else None
        if isinstance(outcome, dict) and outcome.get("kind") in FAULT_KINDS:
            reject()  # a known kernel fault: reproduced by its own scenario
        if st_.bind:
            self.hs.bindings[st_.bind] = exp_raw
        expected = self.hs.symbolize(st_, exp_raw)
        index = len(self.log.steps)
        self.log.steps.append(st_)
        self.log.steps_total += 1
        try:
            seen_raw = self.target.apply(self.ht.resolve(st_.op))
        except TargetBroken as exc:
            rec = StepResult(index=index, op=st_.op, expected=expected, seen=None,
                             verdict=Verdict.ERROR, message=str(exc))
            self.log.records.append(rec)
            msg = f"target broke at {st_.op.describe()}: {exc}"
            self.log.note_failure(msg)
            raise LockstepDivergence(msg, rec) from exc
        if st_.bind:
            self.ht.bindings[st_.bind] = seen_raw
        seen = self.ht.symbolize(st_, seen_raw)
        if target_cannot(expected, seen):
            self.log.steps.pop()
            reject()
        verdict, message = compare(st_, expected, seen)
        rec = StepResult(index=index, op=st_.op, expected=expected, seen=seen, verdict=verdict,
                         message=message)
        self.log.records.append(rec)
        if verdict is Verdict.FAIL:
            msg = f"step {index} {st_.op.describe()}: {message}"
            self.log.note_failure(msg)
            raise LockstepDivergence(msg, rec)
        return exp_raw


def _walk(spec: Target, target: Target, log: LockstepLog, data: Any) -> None:
    """One random walk (see the module docstring)."""
    spec.reset()
    target.reset()
    log.steps, log.records = [], []
    log.runs += 1
    w = _Walk(spec, target, log)
    role = data.draw(st.sampled_from(["client", "server"]), label="target role")
    peer_role = "server" if role == "client" else "client"
    # the honest peer: the spec's endpoint of the other role (never sent to the target)
    peer = w.spec_only(Op.make("hs_new", role=peer_role, config={}))
    peer_ep = peer.get("ep")
    new = w.both(Step(op=Op.make("hs_new", role=role, config={}), bind="k"))
    pending: list[str] = list(new.get("out")) if role == "client" else []
    if role == "server":
        pending = list(peer.get("out"))  # the client's Proposal
    outcome = new.get("outcome")
    for _ in range(MAX_FEEDS):
        if outcome is not None or not pending:
            break
        if role == "client":  # the target sent something: the honest server answers it
            answer = w.spec_only(Op.make("hs_feed", ep=peer_ep, data="".join(pending)))
            pending = list(answer.get("out"))
            if not pending:
                break
        honest = bytes.fromhex(pending.pop(0))
        feeds, _mut = data.draw(mutated(honest), label="peer message")
        sent: list[str] = []
        for piece in feeds:
            obs = w.both(Step(op=Op.make("hs_feed", ep=Ref("k", "ep"), data=piece.hex())))
            sent += list(obs.get("out"))
            outcome = obs.get("outcome")
            if outcome is not None:
                break
        if role == "server":  # the honest client reads the target's answer (the Accept)
            if sent:
                answer = w.spec_only(Op.make("hs_feed", ep=peer_ep, data="".join(sent)))
                pending = list(answer.get("out"))
        else:
            pending = sent


HS_LOCKSTEP_CASE = Case(
    id="lockstep.handshake.walk",
    area=Area.LOCKSTEP,
    title="hostile-peer handshake walks agree with the spec",
    description="Hypothesis plays the other side of a CLC handshake with mutated messages "
                "(bytes, header and layout fields, truncation, extra bytes, Declines, splits) "
                "against the spec and the target in lockstep and compares what each sends and "
                "how each ends; a divergence is shrunk to a minimal trace.",
    source="conformance/runner/hs_lockstep.py",
    steps=(),
)


def run_hs_lockstep(target: Target, *, examples: int = 30, save_to: str | None = None,
                    shrink_seconds: float = 60.0) -> CaseResult | None:
    """Run handshake walks against an already loaded ``target`` (reset between walks).

    Returns None when the target has no ``handshake`` capability; else a
    :class:`~smcd_check.conformance.runner.run.CaseResult` with id
    ``lockstep.handshake.walk`` (FAIL/ERROR with the shrunk steps, or OK with the count of
    walks and steps compared). Reproducible: derandomized, settings from the active profile.
    """
    from smcd_check.conformance.targets.spec_target import SpecTarget

    spec = SpecTarget()
    if Capability.HANDSHAKE not in target.capabilities & spec.capabilities:
        return None
    log = LockstepLog()
    log.shrink_seconds = shrink_seconds
    profile = settings.default
    assert profile is not None
    cfg = settings(profile, max_examples=examples, derandomize=True, database=None,
                   deadline=None, print_blob=False,
                   suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much,
                                          HealthCheck.data_too_large])

    @cfg
    @given(data=st.data())
    def walk(data: Any) -> None:
        _walk(spec, target, log, data)

    start = time.perf_counter()
    found = False
    try:
        walk()
    except (LockstepDivergence, _ShrinkBudgetSpent):
        found = True
    except Exception:
        if log.best_steps is None:
            raise
        found = True  # stopping the shrinker can make Hypothesis complain: the failure is real
    if found and log.best_steps is not None:
        steps = list(log.best_steps)
        records = tuple(log.best_records)
        if save_to:
            Path(save_to).write_text(json.dumps(
                trace_json(target.name, steps, list(records), log.best_message), indent=2))
        case = Case(id=HS_LOCKSTEP_CASE.id, area=Area.LOCKSTEP, title=HS_LOCKSTEP_CASE.title,
                    description=HS_LOCKSTEP_CASE.description, source=HS_LOCKSTEP_CASE.source,
                    steps=tuple(steps))
        verdict = records[-1].verdict if records else Verdict.FAIL
        return CaseResult(case=case, verdict=verdict if verdict.is_bad else Verdict.FAIL,
                          message=f"shrunk to {len(steps)} steps: {log.best_message}"
                          + (f" (trace saved to {save_to})" if save_to else ""),
                          steps=records, seconds=time.perf_counter() - start)
    return CaseResult(case=HS_LOCKSTEP_CASE, verdict=Verdict.OK,
                      message=f"{log.runs} walks, {log.steps_total} steps compared",
                      seconds=time.perf_counter() - start)
