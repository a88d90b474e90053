"""What the race explorer checks on every schedule: the spec's invariants, seen through the
implementation's snapshots and observations.

Theory of operation
-------------------
The implementation (``smcd_check.model.shm``) never imports the spec; this module does. It
observes a run in two ways, both through the implementation's own observation API:

* **events** (``Runtime.observe``): bytes an application writes into a sndbuf or straight into
  the peer's DMB (merged), bytes ``move_data`` copies (copy mode), bytes ``recv`` copies out,
  DMBs registered, attached, detached and released, tasklets run, connections freed. From them
  it keeps the spec's **abstract view** of each direction (:mod:`smcd_check.spec.datapath`):
  every byte of the stream carries a tag ``seq + 1``, a ring slot holds the tag of the byte in
  it or 0 when free, so a write onto an unconsumed byte (overwrite), a read of a free slot
  (overread) or of the wrong byte (misorder) is recorded the moment it happens; and the
  lifecycle's view of the device (:mod:`smcd_check.spec.lifecycle`): which DMB memory is live,
  which connection holds a ghost sndbuf on which token, so a write into released memory (use
  after release) or a release under an attached ghost (dangling ghost) is recorded too.
* **snapshots** (``ShmConnection.snapshot``, the DMB headers, ``ShmLoopbackIsm.snapshot``) at
  every *quiescent* point - every thread finished or asleep in a wait, so no operation is half
  done - mapped onto a :class:`~smcd_check.spec.datapath.DatapathState` per direction (the
  header in the peer's DMB that the peer has not processed yet is the message in flight) and a
  :class:`~smcd_check.spec.lifecycle.LifecycleState`; then the spec's own predicates decide.

Checked: every invariant of :data:`smcd_check.spec.datapath.INVARIANTS` for both directions; the
lifecycle invariants "no DMB is used after it was unregistered and released", "no ghost sndbuf
points at released memory", "tokens are unique among live DMBs", "the slot count stays within
the device limit", "reference counts are never negative", "a freed connection holds nothing"
(a tasklet that runs after the connection's tasklet was drained means the connection still
received a signal); plus the field definition the spec's state relies on, "rx_curs_confirmed is
the consumer cursor last sent" (the spec sets both in one step, so it is a refinement condition
here). Implementation failures are findings too: an exception in any thread, a scenario thread
that waits forever (deadlock), a run that does not end.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from smcd_check.spec import datapath as dp
from smcd_check.spec import lifecycle as lc
from smcd_check.spec.cdc import CdcMsg, ConnStateFlags, ProdFlags
from smcd_check.spec.cursor import Cursor

CONFIRMED = "rx_curs_confirmed is the consumer cursor last sent"


@dataclass(frozen=True, slots=True)
class Violation:
    """A property that failed, where, and why."""

    prop: str
    detail: str
    step: int  #: index into the run's steps when it was seen


@dataclass
class _Direction:
    """The abstract view of one direction ``w`` -> ``r``."""

    w: Any
    r: Any
    dmb: list[int] = field(default_factory=list)
    sndbuf: list[int] = field(default_factory=list)
    seq_next: int = 0
    seq_expect: int = 0
    hist_overwrite: bool = False
    hist_overread: bool = False
    hist_misorder: bool = False


def _cursor(c: Any) -> Cursor:
    return Cursor(wrap=c[0], count=c[1])


class Checker:
    """Observer and judge of one run (see the module docstring).

    Args:
        pairs: the connection pairs to check, as ``(a, b)``.
        device: the device (for its table at quiescent points).
        steps: the scheduler's step list (to say where a violation was seen).
    """

    def __init__(self, pairs: list[tuple[Any, Any]], device: Any, steps: list[Any]) -> None:
        self.device = device
        self.steps = steps
        self.dirs: dict[int, _Direction] = {}
        self.pairs = pairs
        for a, b in pairs:
            for w, r in ((a, b), (b, a)):
                d = _Direction(w, r)
                self.dirs[id(w)] = d
        self.violations: list[Violation] = []
        self.released: set[int] = set()
        self.ghosts: dict[int, set[int]] = {}  # token -> ids of conns holding a ghost on it
        self.uar = False
        self.dangling: set[int] = set()  # conn ids whose ghost lost its memory
        self.drained: set[int] = set()
        self.late_tasklet: set[int] = set()
        self.quiescent_checks = 0

    # ------------------------------------------------------------------ events
    def _flag(self, prop: str, detail: str) -> None:
        if not any(v.prop == prop for v in self.violations):
            self.violations.append(Violation(prop, detail, len(self.steps)))

    def _ring(self, d: _Direction) -> int:
        return int(d.r.rmb_len)

    def __call__(self, kind: str, data: dict[str, Any]) -> None:
        handler = getattr(self, "_on_" + kind, None)
        if handler is not None:
            handler(**data)

    def _on_mem_write(self, region: Any, off: int, n: int, what: str) -> None:
        if region.token and (region.released or region.token in self.released):
            self.uar = True
            self._flag("no DMB is used after it was unregistered and released",
                       f"{n} bytes written at offset {off} of {region.name} (token "
                       f"{region.token:#x}) after its last reference was dropped")

    def _on_mem_read(self, region: Any, off: int, n: int, what: str) -> None:
        if region.token and (region.released or region.token in self.released) and \
                "cdc" not in what:
            self.uar = True
            self._flag("no DMB is used after it was unregistered and released",
                       f"{n} bytes read at offset {off} of {region.name} after release")

    def _on_app_write(self, conn: Any, off: int, n: int) -> None:
        d = self.dirs.get(id(conn))
        if d is None:
            return
        merged = conn.mode.value == "merged"
        ring = d.dmb if merged else d.sndbuf
        size = self._ring(d) if merged else int(conn.sndbuf_len)
        if not ring:
            ring.extend([0] * size)
        m = self._tag_mod(d)
        for i in range(n):
            slot = (off + i) % size
            if ring[slot]:
                d.hist_overwrite = True
            ring[slot] = (d.seq_next + i) % m + 1
        d.seq_next = (d.seq_next + n) % m

    def _on_move(self, conn: Any, src_off: int, dst_off: int, n: int) -> None:
        d = self.dirs.get(id(conn))
        if d is None:
            return
        if not d.dmb:
            d.dmb.extend([0] * self._ring(d))
        if not d.sndbuf:
            d.sndbuf.extend([0] * int(conn.sndbuf_len))
        for i in range(n):
            s = (src_off + i) % len(d.sndbuf)
            t = (dst_off - 32 + i) % len(d.dmb)
            if d.dmb[t]:
                d.hist_overwrite = True
            d.dmb[t] = d.sndbuf[s]
            d.sndbuf[s] = 0

    def _on_app_read(self, conn: Any, off: int, n: int) -> None:
        peer = next((w for w, dd in ((dd.w, dd) for dd in self.dirs.values()) if dd.r is conn),
                    None)
        if peer is None:
            return
        d = self.dirs[id(peer)]
        if not d.dmb:
            d.dmb.extend([0] * self._ring(d))
        m = self._tag_mod(d)
        for i in range(n):
            slot = (off + i) % len(d.dmb)
            tag = d.dmb[slot]
            if tag == 0:
                d.hist_overread = True
            elif tag != (d.seq_expect + i) % m + 1:
                d.hist_misorder = True
            d.dmb[slot] = 0
        d.seq_expect = (d.seq_expect + n) % m

    def _on_dmb_get(self, token: int, refcnt: int, op: str) -> None:
        if token in self.released:
            self._flag("no ghost sndbuf points at released memory",
                       f"attach_dmb handed out token {token:#x} whose memory was released")

    def _on_dmb_released(self, token: int, sba_idx: int, region: Any) -> None:
        self.released.add(token)
        holders = {id(c) for a, b in self.pairs for c in (a, b)
                   if c.ghost_token == token}
        if holders:
            self.dangling |= holders
            self._flag("no ghost sndbuf points at released memory",
                       f"DMB token {token:#x} (slot {sba_idx}) was released while a ghost "
                       "sndbuf still points at it")

    def _on_dmb_registered(self, token: int, sba_idx: int, region: Any) -> None:
        self.released.discard(token)

    def _on_tasklet_drained(self, conn: Any) -> None:
        self.drained.add(id(conn))

    def _on_tasklet(self, conn: Any) -> None:
        if id(conn) in self.drained:
            self.late_tasklet.add(id(conn))
            self._flag("a freed connection holds nothing",
                       f"the rx tasklet of {conn.name} ran after smc_conn_free drained it: "
                       "a signal still reached the connection (use after free in the kernel)")

    def _on_exception(self, where: str, exc: BaseException) -> None:
        self._flag("no thread raises", f"{where}: {type(exc).__name__}: {exc}")

    # ------------------------------------------------------------------ quiescent states
    def _tag_mod(self, d: _Direction) -> int:
        return self._ring(d) << 16

    def _cfg(self, d: _Direction) -> dp.DatapathConfig:
        merged = d.w.mode.value == "merged"
        return dp.DatapathConfig(
            mode=dp.Mode.MERGED if merged else dp.Mode.COPY, ring_size=self._ring(d),
            sndbuf_size=None if merged else int(d.w.sndbuf_len), wrap_bits=16,
            max_chunk=64, chan_cap=2, rmbe_update_limit=int(d.r.rmbe_update_limit),
            close_enabled=True, abort_enabled=True, small_ok=True)

    def _header(self, conn: Any) -> tuple[Cursor, Cursor, int, int] | None:
        from smcd_check.model.shm.layout import CursorWord

        desc = conn.rmb_desc
        if desc is None or desc.region.released or desc.region.peek(0, 1) != b"\xfe":
            return None  # no CDC was written into this DMB (or it was zeroed for reuse)
        prod = CursorWord.from_word(desc.region.peek_word(8))
        cons = CursorWord.from_word(desc.region.peek_word(16))
        return (Cursor(wrap=prod.wrap, count=prod.count), Cursor(wrap=cons.wrap, count=cons.count),
                cons.prod_flags, cons.conn_state_flags)

    def datapath_state(self, d: _Direction) -> dp.DatapathState:
        """The spec's state of direction ``d.w -> d.r`` (at a quiescent point)."""
        w, r = d.w.snapshot(), d.r.snapshot()
        merged = w["mode"] == "merged"
        a2b: tuple[CdcMsg, ...] = ()
        hdr_r = self._header(d.r)  # written by w
        if hdr_r is not None:
            prod, _cons, pflags, cflags = hdr_r
            if prod != _cursor(r["peer_prod"]) or cflags != r["rx_conn_flags"]:
                a2b = (CdcMsg(prod=prod, prod_flags=ProdFlags.from_byte(pflags),
                              conn_state_flags=ConnStateFlags.from_byte(cflags)),)
        b2a: tuple[CdcMsg, ...] = ()
        hdr_w = self._header(d.w)  # written by r
        if hdr_w is not None:
            _prod, cons, pflags, cflags = hdr_w
            if cons != _cursor(w["peer_cons"]) or cflags != w["rx_conn_flags"]:
                b2a = (CdcMsg(cons=cons, prod_flags=ProdFlags.from_byte(pflags),
                              conn_state_flags=ConnStateFlags.from_byte(cflags)),)
        ring = self._ring(d)
        return dp.DatapathState(
            tx_curs_prep=_cursor(w["tx_curs_prep"]), tx_curs_sent=_cursor(w["tx_curs_sent"]),
            tx_curs_fin=_cursor(w["tx_curs_fin"]), sndbuf_space=w["sndbuf_space"],
            w_prod=_cursor(w["prod"]), peer_rmbe_space=w["peer_rmbe_space"],
            w_rx_cons=_cursor(w["peer_cons"]),
            w_write_blocked=bool(w["tx_prod_flags"] & 0x80),
            w_flags=ConnStateFlags.from_byte(w["tx_conn_flags"]),
            w_rx_flags=ConnStateFlags.from_byte(w["rx_conn_flags"]),
            r_rx_prod=_cursor(r["peer_prod"]), r_cons=_cursor(r["cons"]),
            rx_curs_confirmed=_cursor(r["rx_curs_confirmed"]),
            bytes_to_rcv=r["bytes_to_rcv"],
            r_peer_write_blocked=bool(r["rx_prod_flags"] & 0x80),
            r_flags=ConnStateFlags.from_byte(r["tx_conn_flags"]),
            r_app_done=bool(d.r.user_closed or d.r.user_aborted),
            r_rx_flags=ConnStateFlags.from_byte(r["rx_conn_flags"]),
            a2b=a2b, b2a=b2a,
            dmb=tuple(d.dmb) if d.dmb else (0,) * ring,
            sndbuf=() if merged else (tuple(d.sndbuf) if d.sndbuf
                                      else (0,) * int(w["sndbuf_len"])),
            seq_next=d.seq_next, seq_expect=d.seq_expect,
            hist_overwrite=d.hist_overwrite, hist_overread=d.hist_overread,
            hist_misorder=d.hist_misorder)

    def lifecycle_state(self) -> tuple[lc.LifecycleConfig, lc.LifecycleState]:
        nodes = tuple(
            lc.DmbNode(dev=0, token=s.token, sba_idx=s.sba_idx, size=0, refcnt=s.refcnt,
                       owned=True)
            for s in self.device.snapshot())
        conns = []
        for i, c in enumerate(c for pair in self.pairs for c in pair):
            conns.append(lc.Conn(
                cid=i, role=lc.Role(i % 2), host=0, peer_host=0, peer_gid=0, peer_gid_ext=0,
                vlan_id=0, smc_version=2, ghost_token=c.ghost_token or None,
                ghost_dangling=id(c) in self.dangling,
                conn_set=id(c) in self.late_tasklet, freed=bool(c.free_done)))
        cfg = lc.LifecycleConfig(n_hosts=1, max_dmbs=self.device.max_dmbs) \
            if "max_dmbs" in lc.LifecycleConfig.__dataclass_fields__ else lc.LifecycleConfig()
        return cfg, lc.LifecycleState(nodes=nodes, conns=tuple(conns), uar=self.uar)

    def check_quiescent(self) -> None:
        """Evaluate the state invariants now (every thread finished or asleep)."""
        self.quiescent_checks += 1
        for d in self.dirs.values():
            if d.w.rmb_desc is None or d.r.rmb_desc is None or d.w.freed or d.r.freed:
                continue
            if d.w.sndbuf is None:  # merged, ghost sndbuf not attached (yet or any more)
                continue
            if not d.w.peer_rmbe_size:
                continue
            cfg = self._cfg(d)
            state = self.datapath_state(d)
            for name in dp.violated(cfg, state):
                self._flag(name, f"direction {d.w.name} -> {d.r.name}: {self._why(cfg, state)}")
            hdr = self._header(d.w)  # the last CDC d.r wrote into d.w's DMB
            if hdr is not None and not d.r.killed.peek():
                sent = hdr[1]
                conf = _cursor(d.r.snapshot()["rx_curs_confirmed"])
                if sent != conf:
                    self._flag(CONFIRMED, f"{d.r.name}: rx_curs_confirmed = ({conf.wrap}, "
                               f"{conf.count}) but the last CDC it wrote carried cons = "
                               f"({sent.wrap}, {sent.count})")
        cfg_l, state_l = self.lifecycle_state()
        for inv in (lc.no_use_after_release, lc.no_dangling_ghost, lc.tokens_unique,
                    lc.slots_within_limit, lc.refcounts_nonnegative, lc.freed_conn_holds_nothing):
            if not inv(cfg_l, state_l):
                name = next(i.name for i in lc.INVARIANTS if i.predicate is inv)
                self._flag(name, "the device and connections at a quiescent point")

    @staticmethod
    def _why(cfg: dp.DatapathConfig, s: dp.DatapathState) -> str:
        return (f"prod=({s.w_prod.wrap},{s.w_prod.count}) cons=({s.r_cons.wrap},"
                f"{s.r_cons.count}) confirmed=({s.rx_curs_confirmed.wrap},"
                f"{s.rx_curs_confirmed.count}) writer sees cons=({s.w_rx_cons.wrap},"
                f"{s.w_rx_cons.count}) peer_rmbe_space={s.peer_rmbe_space} "
                f"sndbuf_space={s.sndbuf_space} bytes_to_rcv={s.bytes_to_rcv}")
