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
Data flows from ``p.a`` to ``p.b`` only (the spec models one direction per pair at a time),
except in the ``urgent`` walk: a ``conn_open_urg`` pair (:mod:`smcd_check.spec.duplex`, capability
``urgent``) whose cursors start at a drawn point (0, the ring's end, the wrap counter's
overflow), with sends (half of them ``MSG_OOB``), receives, ``recv(MSG_OOB)``, ``SIOCATMARK``
and ``SO_OOBINLINE`` at both ends.

On a failure Hypothesis shrinks the sequence; the last run is the minimal one, and its steps are
kept as a regression trace (:func:`trace_json`, format ``smcd-check-trace`` version 2, kind
``conformance``): replay it with :func:`.replay.replay_against_target` or
``smcd-check replay TRACE --target ...``.

Settings come from the active Hypothesis profile (tests/conftest.py: ``ci`` by default) scaled
by the caller's ``examples``; nothing here hard-codes a budget.
"""

from __future__ import annotations

import json
import struct
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


#: the urgent walk (issue 11): byte counts, and where a conn_open_urg pair's cursors start (the
#: 16352-byte ring's end, the 16-bit wrap counter's overflow)
URG_SIZES = st.one_of(st.integers(1, 40), st.integers(1, 40),
                      st.sampled_from([2304, 2305, 8176, 16351, 16352]))
_RING = D - 32
URG_STARTS = st.one_of(st.sampled_from([0, 0, _RING - 3, 2 * _RING - 1,
                                        (_RING << 16) - 5, (_RING << 16) - _RING - 2]),
                       st.integers(0, (_RING << 16) - 1))


def _script(*calls: str) -> list[tuple[str, str]]:
    return [(f"conn_{c.split()[0]}", c.split()[1]) for c in calls]


#: call sequences from both ends that reach every state of the close machine a socket call can
#: reach (net/smc/smc_close.c), each with the client or the server first: the close rule draws
#: them as often as random sequences
CLOSE_SCRIPTS: list[list[tuple[str, str]]] = [
    seq for x, y in (("a", "b"), ("b", "a")) for seq in (
        _script(f"shutdown {x}", f"shutdown {y}", f"close {x}"),    # PEERCLOSEWAIT2, APPCLOSEWAIT2
        _script(f"shutdown {x}", f"close {y}", f"close {x}"),       # APPFINCLOSEWAIT
        _script(f"close {x}", f"shutdown {y}", f"close {y}"),       # APPCLOSEWAIT2 -> CLOSED
        _script(f"shutdown {x}", f"abort {y}", f"close {x}"),       # abort after a shutdown
        _script(f"close {x}", f"close {y}"),                        # PEERCLOSEWAIT1 -> CLOSED
        _script(f"abort {x}", f"close {y}"),                        # PROCESSABORT -> CLOSED
    )
]


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


#: the areas a lockstep walk can drive: "conn" (a pair: send, recv at either end, shutdown /
#: close / abort from either end, cursors and socket state after each step), "lgr" (that plus
#: more pairs and link-group termination, delayed free, device loss), "inject" (that plus
#: CDCs written by a hostile peer), "device", "cursor" (smc_curs_*), "clc" (clc_decode)
AREAS: tuple[str, ...] = ("conn", "lgr", "inject", "device", "cursor", "clc", "urgent")
#: the capability each area needs (the connection areas: a conn capability as well)
AREA_CAPS: dict[str, Capability | None] = {
    "conn": None, "lgr": Capability.LGR, "inject": Capability.CDC_INJECT,
    "device": Capability.DEVICE, "cursor": Capability.CURSOR, "clc": Capability.CLC,
    "urgent": Capability.URGENT}
_CONN_AREAS = frozenset({"conn", "lgr", "inject"})


def make_machine(target_factory: Callable[[], Target], *,
                 spec_factory: Callable[[], Target] | None = None,
                 log: LockstepLog | None = None,
                 areas: frozenset[str] | None = None) -> type[RuleBasedStateMachine]:
    """Build a lockstep state machine class for targets made by ``target_factory``.

    The target is created once per machine class and reset at the start of every run. The
    spec defaults to :class:`~smcd_check.conformance.targets.spec_target.SpecTarget`.
    ``areas`` (of :data:`AREAS`) selects the rules; None: every area in one machine.
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

            def want(area: str) -> bool:
                return areas is None or area in areas

            self.has_device = Capability.DEVICE in caps and want("device")
            self.has_nocopy = Capability.DEVICE_NOCOPY in caps
            self.modes = [m for m, c in (("copy", Capability.CONN_COPY),
                                          ("merged", Capability.CONN_MERGED)) if c in caps]
            if areas is not None and not areas & _CONN_AREAS:
                self.modes = []
            self.has_lgr = Capability.LGR in caps and want("lgr")
            self.has_inject = Capability.CDC_INJECT in caps and want("inject")
            self.has_state = Capability.CONN_STATE in caps
            self.has_cursor = Capability.CURSOR in caps and want("cursor")
            self.has_clc = Capability.CLC in caps and want("clc")
            # walks of their own only (their pair is not an ordinary one)
            self.has_urgent = (Capability.URGENT in caps and Capability.CONN_MERGED in caps
                               and areas is not None and "urgent" in areas)
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
            #: a conn_open_urg pair "p" is open (the urgent walk; no close calls on it)
            self.urg_open = False
            self.conn_dirty = False
            self.gone: set[Ref] = set()
            self.next_dmb = 0
            #: pairs opened (bind names; "p" first) and link groups seen (bind names of lgr_of)
            self.pairs: list[str] = []
            self.lgr_binds: list[str] = []
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
            if target_cannot(expected, seen):
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
            if self.pair_open:
                self.pairs.append("p")

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
        @rule(data=st.data(),
              what=st.sampled_from(["conn_shutdown", "conn_shutdown", "conn_close",
                                    "conn_close", "conn_abort"]))
        def end(self, data: st.DataObject, what: str) -> None:
            """shutdown / close / abort from either end of any pair."""
            who = data.draw(st.sampled_from(self.endpoints()), label="who")
            obs = self.do(Step(op=Op.make(what, conn=who)))
            if obs is not None and what != "conn_shutdown":
                self.gone.add(who)  # a closed socket has no cursors to show (smc_diag)

        @precondition(lambda self: self.pair_open)
        @rule(data=st.data(), calls=st.one_of(st.sampled_from(CLOSE_SCRIPTS), st.lists(
            st.tuples(st.sampled_from(["conn_shutdown", "conn_close", "conn_abort"]),
                      st.sampled_from(["a", "b"])), min_size=2, max_size=3)))
        def ends(self, data: st.DataObject,
                 calls: list[tuple[str, str]]) -> None:
            """Two or three of shutdown / close / abort on the two ends of one pair in a row:
            the close machine's states reached from both ends (each call's observation and,
            after it, both sockets are compared)."""
            name = data.draw(st.sampled_from(self.pairs), label="pair")
            for what, side in calls:
                who = Ref(name, side)
                obs = self.do(Step(op=Op.make(what, conn=who)))
                if obs is not None and what != "conn_shutdown":
                    self.gone.add(who)
                self.cursors_agree()

        @precondition(lambda self: self.pair_open)
        @rule(data=st.data(), n=SIZES)
        def recv_any(self, data: st.DataObject, n: int) -> None:
            """recv at either end of any pair (the writing end reads nothing: EOF or empty)."""
            who = data.draw(st.sampled_from(self.endpoints()), label="who")
            if who not in self.gone:
                self.do(Step(op=Op.make("conn_recv", conn=who, max=n)))

        @precondition(lambda self: len(self.pairs) > 1)
        @rule(data=st.data(), n=SIZES, seed=st.integers(0, 255))
        def send_other(self, data: st.DataObject, n: int, seed: int) -> None:
            """Data from the client to the server of a later pair (one direction per pair)."""
            name = data.draw(st.sampled_from(self.pairs[1:]), label="pair")
            payload = bytes((seed + i * 13) & 0xFF for i in range(n)).hex()
            self.do(Step(op=Op.make("conn_send", conn=Ref(name, "a"), data=payload)))

        def endpoints(self) -> list[Ref]:
            return [Ref(name, side) for name in self.pairs for side in ("a", "b")]

        @invariant()
        def cursors_agree(self) -> None:
            if (self.pair_open or self.urg_open) and self.conn_dirty:
                self.conn_dirty = False
                for who in self.endpoints():
                    if who not in self.gone:
                        self.do(Step(op=Op.make("conn_cursors", conn=who)))
                    if self.has_state and not self.urg_open:  # the socket: state, flags
                        self.do(Step(op=Op.make("conn_state", conn=who)))

        # ---------------------------------------------------------------- link groups (lgr)

        @precondition(lambda self: self.pair_open and self.has_lgr and len(self.pairs) < 3)
        @rule(mode=st.sampled_from(["copy", "merged"]))
        def open_another(self, mode: str) -> None:
            """Another pair: it joins a listed link group (smc_conn_create) or, after a
            termination, another one; after the device's loss ENODEV."""
            if mode not in self.modes:
                mode = self.modes[0]
            name = ("p", "q", "r")[len(self.pairs)]
            obs = self.do(Step(op=Op.make("conn_open", mode=mode, dmb_size=D,
                                          sndbuf_size=D if mode == "copy" else 0), bind=name))
            if obs is not None and obs.ok:
                self.pairs.append(name)

        @precondition(lambda self: self.pair_open and self.has_lgr)
        @rule(data=st.data())
        def lgr_look(self, data: st.DataObject) -> None:
            """An endpoint's link group and its own DMB (refcount, used), then the device."""
            who = data.draw(st.sampled_from(self.endpoints()), label="who")
            bind = f"l{len(self.lgr_binds) + 1}"
            obs = self.do(Step(op=Op.make("lgr_of", conn=who), bind=bind))
            if obs is not None and obs.ok:
                self.lgr_binds.append(bind)
            self.do(Step(op=Op.make("lgr_dmb", conn=who)))
            for mode in self.modes:
                self.do(Step(op=Op.make("lgr_dev", mode=mode)))

        @precondition(lambda self: bool(self.lgr_binds))
        @rule(data=st.data(), what=st.sampled_from(["lgr_terminate", "lgr_free_work"]))
        def lgr_act(self, data: st.DataObject, what: str) -> None:
            """Terminate a link group seen before, or run its delayed free."""
            bind = data.draw(st.sampled_from(self.lgr_binds), label="lgr")
            self.do(Step(op=Op.make(what, lgr=Ref(bind, "lgr")), strict=True))
            self.conn_dirty = True

        @precondition(lambda self: self.pair_open and self.has_lgr)
        @rule(mode=st.sampled_from(["copy", "merged"]), roll=st.integers(0, 7))
        def lgr_dev_remove(self, mode: str, roll: int) -> None:
            """Rarely: the connection device goes away (smc_smcd_terminate_all)."""
            if roll == 0:
                self.do(Step(op=Op.make("lgr_dev_remove", mode=mode), strict=True))
                self.conn_dirty = True

        # ---------------------------------------------------------------- injected CDCs

        @precondition(lambda self: self.pair_open and self.has_inject)
        @rule(data=st.data(), kind=st.sampled_from(["echo", "nudge", "nudge", "nudge", "wild",
                                                    "wild"]))
        def inject(self, data: st.DataObject, kind: str) -> None:
            """A CDC written by a hostile peer: the receiver's own view ("echo": accepted),
            that view with one field pushed over a boundary ("nudge"), or boundary values
            ("wild")."""
            who = data.draw(st.sampled_from(self.endpoints()), label="who")
            view = self.spec.apply(self.hs.resolve(Op.make("conn_cursors", conn=who)))
            if not view.ok:
                return
            ring = D - 32
            prod, cons = view.get("peer_prod"), view.get("peer_cons")
            flags = 0
            if self.has_state:
                state = self.spec.apply(self.hs.resolve(Op.make("conn_state", conn=who)))
                if state.ok:
                    bits = {"peer_done_writing": 0x80, "peer_conn_closed": 0x40,
                            "peer_conn_abort": 0x20}
                    flags = sum(bits[f] for f in state.get("rx_flags"))
            ctype, pflags = 0xFE, 0
            if kind == "nudge":
                field = data.draw(st.sampled_from(
                    ["prod+1", "prod-1", "prod+ring", "prod-ring", "cons+1", "cons-1",
                     "prod.count=ring", "cons.count=ring", "flags-", "flags+reserved"]))
                pos = prod[0] * ring + prod[1]
                cpos = cons[0] * ring + cons[1]
                span = 0x10000 * ring
                move = {"prod+1": 1, "prod-1": -1, "prod+ring": ring, "prod-ring": -ring}
                if field in move:
                    pos = (pos + move[field]) % span
                    prod = [pos // ring, pos % ring]
                elif field in ("cons+1", "cons-1"):
                    cpos = (cpos + (1 if field == "cons+1" else -1)) % span
                    cons = [cpos // ring, cpos % ring]
                elif field == "prod.count=ring":
                    prod = [prod[0], ring]
                elif field == "cons.count=ring":
                    cons = [cons[0], ring]
                elif field == "flags-":
                    flags &= ~data.draw(st.sampled_from([0x80, 0x40, 0x20]))
                else:
                    flags |= data.draw(st.sampled_from([0x01, 0x10]))
            elif kind == "wild":
                counts = st.sampled_from([0, 1, ring - 1, ring, ring + 1, 0xFFFF_FFFF])
                wraps = st.sampled_from([0, 1, 0xFFFF])
                prod = [data.draw(wraps), data.draw(counts)]
                cons = [data.draw(wraps), data.draw(counts)]
                ctype = data.draw(st.sampled_from([0xFE, 0xFE, 0x00, 0xFF]))
                pflags = data.draw(st.sampled_from([0, 0x08, 0x01]))
                flags = data.draw(st.sampled_from([0, 0x80, 0x40, 0x20, 0xE0, 0x01]))
            raw = struct.pack("<B7xHIBBHIBB8x", ctype, prod[0], prod[1] & 0xFFFF_FFFF, 0, 0,
                              cons[0], cons[1] & 0xFFFF_FFFF, pflags, flags & 0xFF)
            self.do(Step(op=Op.make("cdc_inject", conn=who, data=raw.hex())))
            self.conn_dirty = True

        # ---------------------------------------------------------------- cursor arithmetic

        @precondition(lambda self: self.has_cursor)
        @rule(data=st.data(), fn=st.sampled_from(["curs_add", "curs_diff", "curs_comp",
                                                   "curs_diff_large"]))
        def cursor(self, data: st.DataObject, fn: str) -> None:
            """smc_curs_* at the boundaries: sizes, counts near the size, 2^31 and 2^32, wraps
            at 0 and 0xffff, values INT_MIN..INT_MAX."""
            size = data.draw(st.sampled_from([1, 2, D - 32, D, 1 << 20, (1 << 31) - 1]))
            counts = st.one_of(st.sampled_from([0, 1, max(size - 1, 0), size, size + 1,
                                                (1 << 31) - 1, 1 << 31, 0xFFFF_FFFF]),
                               st.integers(0, max(size - 1, 0)))
            wraps = st.sampled_from([0, 1, 0xFFFE, 0xFFFF])
            old = [data.draw(wraps), data.draw(counts)]
            if fn == "curs_add":
                value = data.draw(st.one_of(
                    st.sampled_from([0, 1, -1, size, size - 1, (1 << 31) - 1, -(1 << 31)]),
                    st.integers(0, size)))
                self.do(Step(op=Op.make(fn, size=size, curs=old, value=value)))
            else:
                new = [data.draw(wraps), data.draw(counts)]
                self.do(Step(op=Op.make(fn, size=size, old=old, new=new)))

        # ---------------------------------------------------------------- CLC codec

        @precondition(lambda self: self.has_clc)
        @rule(data=st.data())
        def clc(self, data: st.DataObject) -> None:
            """A catalogue CLC message with a field set to a boundary value, its length field
            made larger than the bytes or 0, or cut short."""
            raw = bytearray(bytes.fromhex(data.draw(st.sampled_from(_clc_seeds()))))
            # (no bytes after the message, nor a length below the bytes given: on a TCP
            # stream the rest would be the next message's, which clc_decode does not speak of)
            how = data.draw(st.sampled_from(["field", "field", "length", "cut", "as-is"]))
            if how == "field" and raw[:4] == b"\xe2\xd4\xc3\xd9" and len(raw) > 4:
                fields = [(o, n) for o, n in _CLC_FIELDS.get(raw[4], ()) if o + n <= len(raw)]
                if fields:
                    off, n = data.draw(st.sampled_from(fields))
                    value = data.draw(st.sampled_from([0, 1, 0x7F, 0x80, 0xFE, 0xFF]))
                    raw[off:off + n] = bytes([value]) * n
            elif how == "length" and len(raw) >= 8:
                length = int.from_bytes(raw[5:7], "big")
                delta = data.draw(st.sampled_from([1, -length, 0xFFFF - length]))
                raw[5:7] = ((length + delta) & 0xFFFF).to_bytes(2, "big")
            elif how == "cut" and len(raw) > 1:
                del raw[data.draw(st.integers(1, len(raw) - 1)):]
            self.do(Step(op=Op.make("clc_decode", data=bytes(raw).hex())))

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
    if areas is not None and "urgent" in areas:
        class UrgentLockstep(Lockstep):
            """The urgent walk: its pair is opened with conn_open_urg (a machine of its own,
            so the other areas' walks draw exactly what they drew before)."""

            @initialize(start=URG_STARTS)
            def open_pair(self, start: int) -> None:  # type: ignore[override]
                if self.has_urgent:
                    self.open_urg(start)

            def open_urg(self, start: int) -> None:
                """The urgent walk's pair (merged mode), its cursors started at ``start``."""
                obs = self.do(Step(op=Op.make("conn_open_urg", mode="merged", dmb_size=D,
                                              sndbuf_size=0, start=start), bind="p"))
                self.urg_open = obs is not None and obs.ok
                if self.urg_open:
                    self.pairs.append("p")

            @precondition(lambda self: self.urg_open)
            @rule(who=st.sampled_from([A, B]), n=URG_SIZES, seed=st.integers(0, 255),
                  oob=st.booleans())
            def urg_send(self, who: Ref, n: int, seed: int, oob: bool) -> None:
                """send from either end, with MSG_OOB or without (both directions at once)."""
                data = bytes((seed + i * 13) & 0xFF for i in range(n)).hex()
                self.do(Step(op=Op.make("conn_send_oob" if oob else "conn_send", conn=who,
                                        data=data)))

            @precondition(lambda self: self.urg_open)
            @rule(who=st.sampled_from([A, B]), n=URG_SIZES)
            def urg_recv(self, who: Ref, n: int) -> None:
                self.do(Step(op=Op.make("conn_recv", conn=who, max=n)))

            @precondition(lambda self: self.urg_open)
            @rule(who=st.sampled_from([A, B]),
                  what=st.sampled_from(["conn_recv_oob", "conn_atmark", "conn_recv_oob",
                                        "conn_atmark", "inline"]), on=st.booleans())
            def urg_look(self, who: Ref, what: str, on: bool) -> None:
                """recv(MSG_OOB), SIOCATMARK or SO_OOBINLINE at either end."""
                if what == "inline":
                    self.do(Step(op=Op.make("conn_set_oobinline", conn=who, on=on)))
                elif what == "conn_recv_oob":
                    self.do(Step(op=Op.make(what, conn=who, max=1)))
                else:
                    self.do(Step(op=Op.make(what, conn=who)))

        return UrgentLockstep
    return Lockstep


#: (offset, size) of CLC fields by message type, as the handshake walks mutate them
_CLC_FIELDS: dict[int, tuple[tuple[int, int], ...]] = {}


def _clc_seeds() -> list[str]:
    """Hex of the catalogue's CLC messages (valid and not), the seeds the clc rule mutates."""
    global _CLC_FIELDS
    if not _SEEDS:
        from smcd_check.conformance.catalogue.clc import CASES
        from smcd_check.conformance.runner.hs_lockstep import FIELDS

        _CLC_FIELDS = dict(FIELDS)
        for case in CASES:
            for st_ in case.steps:
                if st_.op.name == "clc_decode":
                    _SEEDS.append(st_.op.arg("data"))
    return _SEEDS


_SEEDS: list[str] = []


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
    description="Hypothesis drives the spec and the target in lockstep over every area the "
                "target has - connections (send, recv at either end, shutdown/close/abort from "
                "either end, several pairs), link groups (terminate, delayed free, device "
                "loss), injected CDCs, the device (register/attach/detach/unregister/"
                "move_data), cursor arithmetic and the CLC codec, with values biased to the "
                "boundaries - and compares every observation, cursors and socket state after "
                "each connection step; a failure is shrunk to a minimal trace.",
    source="conformance/runner/lockstep.py",
    steps=(),
)


def run_lockstep(target: Target, *, examples: int = 60, save_to: str | None = None,
                 shrink_seconds: float = 60.0,
                 areas: tuple[str, ...] | None = None) -> CaseResult | None:
    """Run the lockstep test against an already loaded ``target``.

    One machine per area of :data:`AREAS` that the target and the spec share (so every area
    gets whole walks: a soup of every rule would starve each), ``examples`` walks each; the
    first failure is reported.

    Args:
        target: the target (reset between runs; not closed here).
        examples: Hypothesis examples per area (each a random sequence of up to the active
            profile's ``stateful_step_count`` steps, at most :data:`MAX_STEPS`).
        save_to: where to write the shrunk trace on failure.
        shrink_seconds: time allowed for shrinking once a failure is found; when it is spent
            the shortest failing trace so far is reported (still a real counterexample).
        areas: the areas to walk (default: all the target has).

    Returns:
        A :class:`CaseResult` for the reports (id ``lockstep.random.walk``), or None when the
        target shares no area the lockstep test drives. Runs are reproducible (derandomized).
    """
    from smcd_check.conformance.targets.spec_target import SpecTarget

    spec = SpecTarget()
    shared = target.capabilities & spec.capabilities
    has_conn = bool(shared & {Capability.CONN_COPY, Capability.CONN_MERGED})
    chosen = [a for a in (areas or AREAS)
              if (AREA_CAPS[a] is None or AREA_CAPS[a] in shared)
              and (a not in _CONN_AREAS or has_conn)
              and (a != "urgent" or Capability.CONN_MERGED in shared)]
    if not chosen:
        return None
    start = time.perf_counter()
    runs = steps = 0
    for area in chosen:
        res, log = _run_area(target, spec, area, examples, save_to, shrink_seconds)
        runs += log.runs
        steps += log.steps_total
        if res is not None:
            return res
    return CaseResult(case=LOCKSTEP_CASE, verdict=Verdict.OK,
                      message=f"{runs} runs, {steps} steps compared "
                              f"(areas: {', '.join(chosen)})",
                      seconds=time.perf_counter() - start)


def _run_area(target: Target, spec: Target, area: str, examples: int, save_to: str | None,
              shrink_seconds: float) -> tuple[CaseResult | None, LockstepLog]:
    """One area's walks: a CaseResult when they found a divergence (or broke), else None."""
    log = LockstepLog()
    machine = make_machine(lambda: target, spec_factory=lambda: spec, log=log,
                           areas=frozenset({area}))
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
                              message=f"lockstep ({area}) stopped: {type(exc).__name__}: "
                                      f"{str(exc).splitlines()[0] if str(exc) else ''}",
                              seconds=time.perf_counter() - start), log
        found = True
    if not (found and log.best_steps is not None):
        return None, log
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
                      message=(f"({area}) shrunk to {len(steps)} steps: {message}" if steps
                               else message) + saved,
                      steps=records, seconds=time.perf_counter() - start), log
