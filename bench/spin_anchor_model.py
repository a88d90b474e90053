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

The model also offers the explorer's packed fast path (``packed()``): the state as one int of
bit fields, actions in families with their footprints (see ``smcd_check.explorer.model``).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass, replace
from typing import Any

from smcd_check.explorer.model import Family, MscEvent, PackedModel, Property

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
            Property.always(ASSERTIONS[code], lambda s, code=code: s.failed != code)
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

    # -- packed fast path ----------------------------------------------------------------------
    def packed(self) -> PackedModel:
        return _Packing(self).packed_model()


class _Packing:
    """Bit-field layout of an AnchorState in one int."""

    def __init__(self, model: SpinAnchorModel) -> None:
        c = model.cfg
        self.model = model
        self.cfg = c
        w = (c.wrap_max - 1).bit_length() or 1  # cursor wrap
        n = (c.dmb_size - 1).bit_length() or 1  # cursor count
        slot = c.wrap_max.bit_length()  # dmb slot: 0..WRAP_MAX
        self.msg_bits = 1 + w + n
        self.w, self.n = w, n
        self.len_bits = c.chan_cap.bit_length()
        chan = self.len_bits + c.chan_cap * self.msg_bits
        fields: list[tuple[str, int]] = [(f"dmb{k}", slot) for k in range(c.dmb_size)]
        fields += [("dmb_reg", 1), ("a2b", chan), ("b2a", chan)]
        fields += [("a_pw", w), ("a_pc", n), ("a_cw", w), ("a_cc", n), ("a_upd", 1)]
        # merged mode never uses a_pend: no bits for it (a state fits in 90 bits at DMB_SIZE=10)
        fields += [("a_pend", c.snd.bit_length() if c.copy else 0), ("a_open", 1), ("a_pcl", 1)]
        fields += [("b_pw", w), ("b_pc", n), ("b_cw", w), ("b_cc", n), ("b_upd", 1)]
        fields += [("b_open", 1), ("b_pcl", 1), ("failed", 3)]
        self.off: dict[str, int] = {}
        self.width: dict[str, int] = {}
        pos = 0
        for name, width in fields:
            self.off[name] = pos
            self.width[name] = width
            pos += width
        self.bits = pos
        self.slot = slot
        self._chan_packs: dict[tuple[Msg, ...], int] = {}
        self._generate()

    def fmask(self, *names: str) -> int:
        m = 0
        for name in names:
            if name == "dmb":
                for k in range(self.cfg.dmb_size):
                    m |= ((1 << self.width[f"dmb{k}"]) - 1) << self.off[f"dmb{k}"]
            else:
                m |= ((1 << self.width[name]) - 1) << self.off[name]
        return m

    def _pack_chan(self, msgs: tuple[Msg, ...]) -> int:
        v = len(msgs)
        pos = self.len_bits
        for cl, w, cnt in msgs:
            v |= (cl | (w << 1) | (cnt << (1 + self.w))) << pos
            pos += self.msg_bits
        return v

    def _unpack_chan(self, v: int) -> tuple[Msg, ...]:
        ln = v & ((1 << self.len_bits) - 1)
        out = []
        pos = self.len_bits
        wm = (1 << self.w) - 1
        nm = (1 << self.n) - 1
        for _ in range(ln):
            m = v >> pos
            out.append((m & 1, (m >> 1) & wm, (m >> (1 + self.w)) & nm))
            pos += self.msg_bits
        return tuple(out)

    def _generate(self) -> None:
        """Compile straight-line pack/unpack functions for this layout (the explorer's miss
        path calls them for every new footprint; a generic loop over fields was 3x slower)."""
        off, width = self.off, self.width
        mask = {name: (1 << w) - 1 for name, w in width.items()}
        p_terms = [f"(d[{k}] << {off[f'dmb{k}']})" for k in range(self.cfg.dmb_size)]
        p_terms += [f"(pc(s.a2b) << {off['a2b']})", f"(pc(s.b2a) << {off['b2a']})"]
        p_terms += [f"(s.{name} << {off[name]})" for name in _SCALARS if width[name]]
        u_dmb = ", ".join(
            f"(v >> {off[f'dmb{k}']}) & {mask[f'dmb{k}']}" for k in range(self.cfg.dmb_size)
        )
        u_kw = ", ".join(f"{name}=(v >> {off[name]}) & {mask[name]}" for name in _SCALARS)
        src = (
            "def pack(s):\n"
            "    d = s.dmb\n"
            f"    return {' | '.join(p_terms)}\n"
            "def unpack(v):\n"
            f"    return AnchorState(dmb=({u_dmb},), "
            f"a2b=uc[(v >> {off['a2b']}) & {mask['a2b']}], "
            f"b2a=uc[(v >> {off['b2a']}) & {mask['b2a']}], {u_kw})\n"
        )
        ns: dict[str, Any] = {
            "AnchorState": AnchorState,
            "pc": self._pack_chan_cached,
            "uc": _ChanCache(self._unpack_chan),
        }
        exec(compile(src, "<anchor pack>", "exec"), ns)
        self.pack = ns["pack"]  # type: ignore[method-assign]
        self.unpack = ns["unpack"]  # type: ignore[method-assign]

    def _pack_chan_cached(self, msgs: tuple[Msg, ...]) -> int:
        v = self._chan_packs.get(msgs)
        if v is None:
            v = self._chan_packs[msgs] = self._pack_chan(msgs)
        return v

    def pack(self, s: AnchorState) -> int:
        raise NotImplementedError  # replaced by _generate

    def unpack(self, v: int) -> AnchorState:
        raise NotImplementedError  # replaced by _generate

    def packed_model(self) -> PackedModel:
        m = self.model
        fm = self.fmask
        err = fm("failed")
        a_loc = ("a_open", "a_pcl", "a_pw", "a_pc", "a_cw", "a_cc", "a_upd", "a_pend")
        b_loc = ("b_open", "b_pw", "b_pc", "b_cw", "b_cc", "b_upd")
        writes = m._a_writes
        cons = m._b_cons
        # copy mode: a user write only touches A's own sndbuf count
        write_mask = (
            fm("a_open", "a_pcl", "a_pend") if self.cfg.copy else fm(*a_loc, "dmb", "dmb_reg") | err
        )
        fams = [Family(name="AWrite", mask=write_mask, actions=lambda s: writes)]
        if self.cfg.copy:
            fams.append(
                Family(
                    name="ATxCopy",
                    mask=fm(*a_loc, "dmb", "dmb_reg", "a2b") | err,
                    actions=lambda s: (ATxCopy(),),
                )
            )
        else:
            fams.append(
                Family(
                    name="ASendCursor",
                    mask=fm("a_upd", "a_pw", "a_pc", "a2b"),
                    actions=lambda s: (ASendCursor(),),
                )
            )
        fams += [
            Family(
                name="ARecvCdc",
                mask=fm("b2a", "a_pcl", "a_cw", "a_cc"),
                actions=lambda s: (ARecvCdc(),),
            ),
            Family(
                name="AClose",
                mask=fm("a_open", "a_upd", "a_pend", "a_pw", "a_pc", "a2b"),
                actions=lambda s: (AClose(),),
            ),
            Family(
                name="BConsume", mask=fm(*b_loc, "dmb", "dmb_reg") | err, actions=lambda s: cons
            ),
            Family(
                name="BRecvCdc",
                mask=fm("a2b", "b_pcl", "b_pw", "b_pc"),
                actions=lambda s: (BRecvCdc(),),
            ),
            Family(
                name="BSendCursor+BClose+BUnregister",
                mask=fm("b_open", "b_upd", "b2a", "b_cw", "b_cc", "dmb_reg", "b_pcl"),
                actions=lambda s: (BSendCursor(), BClose(), BUnregister()),
            ),
        ]
        if not self.cfg.copy:
            # merged: the cursor announcement and the close touch the same fields; one lookup
            send = fams.pop(1)
            fams[2] = Family(
                name="ASendCursor+AClose",
                mask=send.mask | fams[2].mask,
                actions=lambda s: (ASendCursor(), AClose()),
            )
        return PackedModel(pack=self.pack, unpack=self.unpack, families=tuple(fams), error_mask=err)


class _ChanCache(dict[int, tuple[Msg, ...]]):
    """Channel value -> message tuple, computed once per value."""

    def __init__(self, fn: Any) -> None:
        super().__init__()
        self.fn = fn

    def __missing__(self, v: int) -> tuple[Msg, ...]:
        msgs: tuple[Msg, ...] = self.fn(v)
        self[v] = msgs
        return msgs


_SCALARS = (
    "dmb_reg",
    "a_pw",
    "a_pc",
    "a_cw",
    "a_cc",
    "a_upd",
    "a_pend",
    "a_open",
    "a_pcl",
    "b_pw",
    "b_pc",
    "b_cw",
    "b_cc",
    "b_upd",
    "b_open",
    "b_pcl",
    "failed",
)

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
