"""The Spin anchor model (shared/anchors/spin/smcd.pml) against the explorer's interface.

A benchmark model, not part of the spec: one SMC-D connection, data flowing A -> B into B's DMB,
merged (default) or copy mode, close and DMB unregister, and the four injectable bugs of the
Promela file (``BUG_NOCHECK``, ``BUG_EARLY_UNREG``, ``BUG_OVERREAD``, ``BUG_B_NOWRAP``).

Spin semantics reproduced exactly, so the explorer reaches Spin's state and transition counts:

* every option of A's and B's ``do`` loops is one ``d_step``: one transition, no intermediate
  states; both processes always sit at their loop head (label ``end:``), so a state is the
  globals (``dmb``, ``dmb_reg``, the two channels) plus both processes' locals; the loop
  temporary ``i`` is 0 between steps and is left out; every state is a valid end state;
* ``A_WRITE(k)`` for k = 1..8 and ``B_CONS(k)`` for k = 1..16 are separate options (each
  enabled option is a separate transition, as Spin counts them);
* channels are FIFOs of capacity ``CHAN_CAP`` (``nfull`` guards the sends, a receive needs a
  message);
* an ``assert`` that fails inside a d_step ends the step in an error state: the state before the
  step with ``failed`` naming the assertion (Spin's counterexample length includes that step).

Successor order is A's options then B's, in the order of the Promela source.

The model declares its footprints like any model (``action_groups()``: the variables each
Promela option reads and writes, see ``smcd_check.explorer.model``), so ``Explorer(model)``
runs it on exactly the engine path ``smcd-check explore`` runs the SMC-D system on.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass, replace

from smcd_check.explorer.model import ActionGroup, MscEvent, Property

BUGS = ("BUG_NOCHECK", "BUG_EARLY_UNREG", "BUG_OVERREAD", "BUG_B_NOWRAP")

#: the four Promela assertions, as named invariants (index = the ``failed`` code)
ASSERTIONS = (
    "",
    "the DMB is registered whenever A writes into it",
    "A never overwrites a byte B has not consumed",
    "the DMB is registered whenever B reads it",
    "B reads only bytes written in its current lap",
)


@dataclass(frozen=True, slots=True, kw_only=True)
class AnchorConfig:
    """The Promela ``-D`` parameters."""

    dmb_size: int = 4
    max_chunk: int = 2
    wrap_max: int = 2
    chan_cap: int = 2
    #: copy mode: A's own send buffer (default DMB_SIZE)
    sndbuf: int | None = None
    copy: bool = False
    bug: str | None = None

    def __post_init__(self) -> None:
        if self.bug is not None and self.bug not in BUGS:
            raise ValueError(f"unknown bug {self.bug!r}; known: {', '.join(BUGS)}")
        if not 1 <= self.max_chunk <= 8:
            raise ValueError(f"max_chunk must be 1..8, got {self.max_chunk}")
        if self.wrap_max < 2 or self.dmb_size < 1 or self.chan_cap < 1:
            raise ValueError("wrap_max >= 2, dmb_size >= 1 and chan_cap >= 1 required")

    @property
    def snd(self) -> int:
        return self.dmb_size if self.sndbuf is None else self.sndbuf

    def describe(self) -> str:
        mode = "copy" if self.copy else "merged"
        bug = f" {self.bug}" if self.bug else ""
        return (
            f"{mode} DMB_SIZE={self.dmb_size} MAX_CHUNK={self.max_chunk} "
            f"WRAP_MAX={self.wrap_max} CHAN_CAP={self.chan_cap}{bug}"
        )


Msg = tuple[int, int, int]  # (peer_conn_closed, wrap, count)


@dataclass(frozen=True, slots=True, kw_only=True)
class AnchorState:
    """Globals and both processes' locals (field names as in smcd.pml)."""

    dmb: tuple[int, ...]
    dmb_reg: int = 1
    a2b: tuple[Msg, ...] = ()
    b2a: tuple[Msg, ...] = ()
    a_pw: int = 0
    a_pc: int = 0
    a_cw: int = 0
    a_cc: int = 0
    a_upd: int = 0
    a_pend: int = 0
    a_open: int = 1
    a_pcl: int = 0
    b_pw: int = 0
    b_pc: int = 0
    b_cw: int = 0
    b_cc: int = 0
    b_upd: int = 0
    b_open: int = 1
    b_pcl: int = 0
    #: index into ASSERTIONS of the assertion that failed in the step into this state (0: none)
    failed: int = 0


# -- actions (one per Promela loop option) ---------------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class AWrite:
    """A_WRITE(k): a user write of k bytes (merged: into B's DMB; copy: into A's sndbuf)."""

    k: int


@dataclass(frozen=True, slots=True, kw_only=True)
class ASendCursor:
    """merged: announce the producer cursor (a_upd) in a CDC message."""


@dataclass(frozen=True, slots=True, kw_only=True)
class ATxCopy:
    """copy: move as much pending data as fits into the DMB, then send the CDC message."""


@dataclass(frozen=True, slots=True, kw_only=True)
class ARecvCdc:
    """receive B's CDC message (consumer cursor, maybe close)."""


@dataclass(frozen=True, slots=True, kw_only=True)
class AClose:
    """A closes: flag and producer cursor go to B."""


@dataclass(frozen=True, slots=True, kw_only=True)
class BConsume:
    """B_CONS(k): B reads k available bytes out of its DMB."""

    k: int


@dataclass(frozen=True, slots=True, kw_only=True)
class BRecvCdc:
    """receive A's CDC message (producer cursor, maybe close)."""


@dataclass(frozen=True, slots=True, kw_only=True)
class BSendCursor:
    """announce the consumer cursor (b_upd) in a CDC message."""


@dataclass(frozen=True, slots=True, kw_only=True)
class BClose:
    """B closes: flag and consumer cursor go to A."""


@dataclass(frozen=True, slots=True, kw_only=True)
class BUnregister:
    """B unregisters its DMB."""


Action = (
    AWrite
    | ASendCursor
    | ATxCopy
    | ARecvCdc
    | AClose
    | BConsume
    | BRecvCdc
    | BSendCursor
    | BClose
    | BUnregister
)


class _Fail(Exception):
    def __init__(self, code: int) -> None:
        self.code = code


class SpinAnchorModel:
    """smcd.pml as an explorer model (``init_states``/``actions``/``next_state``/...)."""

    #: both processes sit at ``end:`` in every state: no state is an invalid end state
    all_states_final = True
    #: ``within_boundary`` reads nothing: every state is inside
    boundary_reads: tuple[str, ...] = ()

    def __init__(self, cfg: AnchorConfig) -> None:
        self.cfg = cfg
        self.name = f"spin-anchor ({cfg.describe()})"
        c = cfg
        self._a_writes = tuple(AWrite(k=k) for k in range(1, 9))
        self._b_cons = tuple(BConsume(k=k) for k in range(1, 17))
        self._free_bug = c.dmb_size + c.max_chunk

    # -- model interface -----------------------------------------------------------------------
    def init_states(self) -> Sequence[AnchorState]:
        return (AnchorState(dmb=(0,) * self.cfg.dmb_size),)

    def actions(self, s: AnchorState) -> Iterator[Action]:
        yield from self._actions_a(s)
        yield from self._actions_b(s)

    def _actions_a(self, s: AnchorState) -> Iterator[Action]:
        yield from self._a_writes
        if self.cfg.copy:
            yield ATxCopy()
        else:
            yield ASendCursor()
        yield ARecvCdc()
        yield AClose()

    def _actions_b(self, s: AnchorState) -> Iterator[Action]:
        yield from self._b_cons
        yield BRecvCdc()
        yield BSendCursor()
        yield BClose()
        yield BUnregister()

    def properties(self) -> Sequence[Property[AnchorState]]:
        return tuple(
            Property.always(
                ASSERTIONS[code], lambda s, code=code: s.failed != code, reads=("failed",)
            )
            for code in range(1, len(ASSERTIONS))
        )

    def within_boundary(self, s: AnchorState) -> bool:
        return True

    def is_final(self, s: AnchorState) -> bool:
        return True

    def action_types(self) -> list[str]:
        send = "ATxCopy" if self.cfg.copy else "ASendCursor"
        return ["AWrite", send, "ARecvCdc", "AClose", "BConsume", "BRecvCdc", "BSendCursor",
                "BClose", "BUnregister"]

    def action_label(self, a: Action) -> str:
        k = getattr(a, "k", None)
        return f"{type(a).__name__}({k})" if k is not None else type(a).__name__

    def msc_event(self, s: AnchorState, a: Action, t: AnchorState) -> MscEvent:
        label = self.action_label(a)
        if isinstance(a, (ASendCursor, ATxCopy, AClose)):
            m = t.a2b[-1]
            return MscEvent(
                actor="A",
                kind="send",
                peer="B",
                channel="a2b",
                label=f"CDC close={m[0]} prod=({m[1]},{m[2]})",
            )
        if isinstance(a, (BSendCursor, BClose)):
            m = t.b2a[-1]
            return MscEvent(
                actor="B",
                kind="send",
                peer="A",
                channel="b2a",
                label=f"CDC close={m[0]} cons=({m[1]},{m[2]})",
            )
        if isinstance(a, ARecvCdc):
            return MscEvent(actor="A", kind="recv", peer="B", channel="b2a", label=label)
        if isinstance(a, BRecvCdc):
            return MscEvent(actor="B", kind="recv", peer="A", channel="a2b", label=label)
        actor = "A" if type(a).__name__.startswith("A") else "B"
        return MscEvent(actor=actor, kind="local", label=label)

    # -- semantics -----------------------------------------------------------------------------
    def _diff(self, ow: int, oc: int, nw: int, nc: int) -> int:
        return nc - oc if ow == nw else self.cfg.dmb_size - oc + nc

    def _a_free(self, s: AnchorState) -> int:
        if self.cfg.bug == "BUG_NOCHECK":
            return self._free_bug
        return self.cfg.dmb_size - self._diff(s.a_cw, s.a_cc, s.a_pw, s.a_pc)

    def _put_bytes(self, s: AnchorState, n: int) -> tuple[list[int], int, int]:
        """PUT_BYTE n times: (dmb, a_pw, a_pc) after; raises _Fail on an assertion."""
        c = self.cfg
        dmb = list(s.dmb)
        pw, pc = s.a_pw, s.a_pc
        for _ in range(n):
            if s.dmb_reg != 1:
                raise _Fail(1)
            if dmb[pc] != 0:
                raise _Fail(2)
            dmb[pc] = pw + 1
            pc += 1
            if pc == c.dmb_size:
                pc = 0
                pw = (pw + 1) % c.wrap_max
        return dmb, pw, pc

    def next_state(self, s: AnchorState, a: Action) -> AnchorState | None:
        try:
            return self._step(s, a)
        except _Fail as f:
            return replace(s, failed=f.code)

    def _step(self, s: AnchorState, a: Action) -> AnchorState | None:
        c = self.cfg
        if isinstance(a, AWrite):
            k = a.k
            if not (s.a_open and not s.a_pcl and k <= c.max_chunk):
                return None
            if c.copy:
                if s.a_pend + k > c.snd:
                    return None
                return replace(s, a_pend=s.a_pend + k)
            if k > self._a_free(s):
                return None
            dmb, pw, pc = self._put_bytes(s, k)
            return replace(s, dmb=tuple(dmb), a_pw=pw, a_pc=pc, a_upd=1)
        if isinstance(a, ASendCursor):
            if not (s.a_upd and len(s.a2b) < c.chan_cap):
                return None
            return replace(s, a2b=(*s.a2b, (0, s.a_pw, s.a_pc)), a_upd=0)
        if isinstance(a, ATxCopy):
            free = self._a_free(s)
            if not (
                s.a_open and not s.a_pcl and s.a_pend > 0 and free > 0 and len(s.a2b) < c.chan_cap
            ):
                return None
            n = s.a_pend if s.a_pend <= free else free
            dmb, pw, pc = self._put_bytes(s, n)
            return replace(
                s,
                a_pend=s.a_pend - n,
                dmb=tuple(dmb),
                a_pw=pw,
                a_pc=pc,
                a2b=(*s.a2b, (0, pw, pc)),
            )
        if isinstance(a, ARecvCdc):
            if not s.b2a:
                return None
            cl, w, cc = s.b2a[0]
            return replace(s, b2a=s.b2a[1:], a_pcl=cl, a_cw=w, a_cc=cc)
        if isinstance(a, AClose):
            if not (s.a_open and len(s.a2b) < c.chan_cap):
                return None
            return replace(s, a_open=0, a_upd=0, a_pend=0, a2b=(*s.a2b, (1, s.a_pw, s.a_pc)))
        if isinstance(a, BConsume):
            k = a.k
            avail = self._diff(s.b_cw, s.b_cc, s.b_pw, s.b_pc)
            if c.bug == "BUG_OVERREAD":
                avail += 1
            if not (s.b_open and k <= c.dmb_size and k <= avail):
                return None
            dmb = list(s.dmb)
            cw, cc = s.b_cw, s.b_cc
            for _ in range(k):
                if s.dmb_reg != 1:
                    raise _Fail(3)
                if dmb[cc] != cw + 1:
                    raise _Fail(4)
                dmb[cc] = 0
                cc += 1
                if cc == c.dmb_size:
                    cc = 0
                    if c.bug != "BUG_B_NOWRAP":
                        cw = (cw + 1) % c.wrap_max
            return replace(s, dmb=tuple(dmb), b_cw=cw, b_cc=cc, b_upd=1)
        if isinstance(a, BRecvCdc):
            if not s.a2b:
                return None
            cl, w, pc = s.a2b[0]
            return replace(s, a2b=s.a2b[1:], b_pcl=cl, b_pw=w, b_pc=pc)
        if isinstance(a, BSendCursor):
            if not (s.b_open and s.b_upd and len(s.b2a) < c.chan_cap):
                return None
            return replace(s, b2a=(*s.b2a, (0, s.b_cw, s.b_cc)), b_upd=0)
        if isinstance(a, BClose):
            if not (s.b_open and len(s.b2a) < c.chan_cap):
                return None
            return replace(s, b_open=0, b_upd=0, b2a=(*s.b2a, (1, s.b_cw, s.b_cc)))
        if isinstance(a, BUnregister):
            ok = (not s.b_open) if c.bug == "BUG_EARLY_UNREG" else (not s.b_open and s.b_pcl)
            if not (s.dmb_reg and ok):
                return None
            return replace(s, dmb_reg=0)
        raise TypeError(f"not an anchor action: {a!r}")

    # -- footprints (the explorer's memo; see smcd_check.explorer.model) -----------------------
    def action_groups(self) -> tuple[ActionGroup, ...]:
        """One group per Promela loop option, with the variables the option reads and writes
        (``failed``: an assertion inside the option; ``dmb``: the whole array)."""
        c = self.cfg
        writes, cons = self._a_writes, self._b_cons
        cursors_a = ("a_pw", "a_pc", "a_cw", "a_cc")
        if c.copy:
            groups = [
                ActionGroup(name="AWrite", reads=("a_open", "a_pcl", "a_pend"),
                            actions=lambda s: writes),
                ActionGroup(
                    name="ATxCopy",
                    reads=("a_open", "a_pcl", "a_pend", *cursors_a, "dmb", "dmb_reg", "a2b",
                           "failed"),
                    actions=lambda s: (ATxCopy(),),
                ),
            ]
        else:
            groups = [
                ActionGroup(
                    name="AWrite",
                    reads=("a_open", "a_pcl", *cursors_a, "a_upd", "dmb", "dmb_reg", "failed"),
                    actions=lambda s: writes,
                ),
                ActionGroup(name="ASendCursor", reads=("a_upd", "a_pw", "a_pc", "a2b"),
                            actions=lambda s: (ASendCursor(),)),
            ]
        groups += [
            ActionGroup(name="ARecvCdc", reads=("b2a", "a_pcl", "a_cw", "a_cc"),
                        actions=lambda s: (ARecvCdc(),)),
            ActionGroup(name="AClose", reads=("a_open", "a_upd", "a_pend", "a_pw", "a_pc", "a2b"),
                        actions=lambda s: (AClose(),)),
            ActionGroup(
                name="BConsume",
                reads=("b_open", "b_pw", "b_pc", "b_cw", "b_cc", "b_upd", "dmb", "dmb_reg",
                       "failed"),
                actions=lambda s: cons,
            ),
            ActionGroup(name="BRecvCdc", reads=("a2b", "b_pcl", "b_pw", "b_pc"),
                        actions=lambda s: (BRecvCdc(),)),
            ActionGroup(name="BSendCursor", reads=("b_open", "b_upd", "b2a", "b_cw", "b_cc"),
                        actions=lambda s: (BSendCursor(),)),
            ActionGroup(name="BClose", reads=("b_open", "b_upd", "b2a", "b_cw", "b_cc"),
                        actions=lambda s: (BClose(),)),
            ActionGroup(name="BUnregister", reads=("dmb_reg", "b_open", "b_pcl"),
                        actions=lambda s: (BUnregister(),)),
        ]
        return tuple(groups)


#: Spin 6.5.2's figures for smcd.pml (anchor README; MAX_CHUNK=2, WRAP_MAX=2, CHAN_CAP=3;
#: SNDBUF=DMB_SIZE in copy mode): (copy, DMB_SIZE) -> (states, transitions, BFS depth)
SPIN_TABLE: dict[tuple[bool, int], tuple[int, int, int]] = {
    (False, 7): (144_928, 515_802, 34),
    (False, 10): (1_360_040, 5_444_340, 39),
    (False, 13): (8_720_686, 38_016_940, 44),
    (True, 6): (133_824, 635_616, 37),
    (True, 9): (1_933_614, 10_354_374, 42),
}

#: shortest counterexamples Spin reports (merged, DMB_SIZE=7), in transitions
SPIN_BUG_LENGTHS = {"BUG_NOCHECK": 4, "BUG_EARLY_UNREG": 3, "BUG_OVERREAD": 1, "BUG_B_NOWRAP": 8}


def table_config(copy: bool, dmb_size: int, bug: str | None = None) -> AnchorConfig:
    """The anchor README's parameters for one table row."""
    return AnchorConfig(dmb_size=dmb_size, max_chunk=2, wrap_max=2, chan_cap=3, copy=copy, bug=bug)


if __name__ == "__main__":  # pragma: no cover - a quick manual check
    import sys

    from smcd_check.explorer.engine import explore

    copy = "--copy" in sys.argv
    size = int(next((a for a in sys.argv[1:] if a.isdigit()), "7"))
    res = explore(SpinAnchorModel(table_config(copy, size)))
    print(res.verdict())
    print(
        res.unique_state_count,
        res.transition_count,
        res.max_depth,
        f"{res.states_per_second:,.0f}/s",
    )
