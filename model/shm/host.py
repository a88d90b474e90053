"""One SMC-D stack instance on the shared device: softirq, ``smcd->conn[]``, link groups.

A :class:`ShmHost` is what the kernel is to its sockets: it owns an interrupt line on the
device (:mod:`.irq`), the table that routes a signalled slot to its connection
(``smcd->conn[]``), the link groups that keep DMBs for reuse, and one **softirq thread** that

1. reads signalled slots from the interrupt line, looks each slot up in ``conns`` and schedules
   that connection's rx tasklet (``tasklet_schedule``: a scheduled tasklet is not queued twice,
   so signals coalesce);
2. runs scheduled tasklets (``smcd_cdc_rx_tsklet``), then queued work (``close_work``).

``tasklet_kill(conn)`` removes a scheduled tasklet and waits until a running one has finished,
as the kernel's does; it must not be called from the tasklet itself.

Usually one process has one host; the race explorer and the conformance target put two
connections of one pair on the same host (both sockets in one OS, which is what loopback-ism
is). Link groups: one per peer GID (loopback: the device's own GID), created on first contact,
kept with their DMBs for reuse after their connections left (the kernel frees an idle link group
after 10 minutes; here :meth:`ShmHost.close` or :meth:`SmcdLinkGroup.free` does it).
"""

from __future__ import annotations

import itertools
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from smcd_check.model.shm.device import ShmLoopbackIsm
from smcd_check.model.shm.irq import STOP, WAKE
from smcd_check.model.shm.layout import SMCD_CDC_MSG_SIZE
from smcd_check.model.shm.memory import Region

if TYPE_CHECKING:
    from smcd_check.model.shm.conn import ShmConnection

#: ``SOCK_MIN_SNDBUF`` on x86_64 (2 * (2048 + SKB_DATA_ALIGN(sizeof(struct sk_buff))))
SOCK_MIN_SNDBUF = 4608
#: ``SMC_LGR_NUM_INCR``: link group ids advance by 256
SMC_LGR_NUM_INCR = 256

_lgr_ids = itertools.count(SMC_LGR_NUM_INCR, SMC_LGR_NUM_INCR)


@dataclass(eq=False, slots=True)
class DmbDesc:
    """``struct smc_buf_desc`` for a DMB: ``len`` is the data ring (size - 32)."""

    token: int
    sba_idx: int
    size: int
    region: Region
    used: bool = True
    registered: bool = True

    @property
    def len(self) -> int:
        return self.size - SMCD_CDC_MSG_SIZE


@dataclass(eq=False)
class SmcdLinkGroup:
    """One side's SMC-D link group: DMBs kept for reuse, its connections, its id."""

    host: ShmHost
    peer_gid: tuple[int, int]
    lgr_id: int = field(default_factory=lambda: next(_lgr_ids))
    rmbs: list[DmbDesc] = field(default_factory=list)
    conns: set[int] = field(default_factory=set)
    freeing: bool = False

    @property
    def linkid(self) -> bytes:
        """``lgr->id`` as sent in Accept/Confirm (4 bytes, host order)."""
        return self.lgr_id.to_bytes(4, "little")

    def get_dmb(self, size: int) -> DmbDesc:
        """``smc_buf_get_slot`` or ``smcd_new_buf_create``."""
        with self.host.lock:
            for desc in self.rmbs:
                if not desc.used and desc.registered and desc.size == size:
                    desc.used = True
                    return desc
        dmb = self.host.dev.register_dmb(size, self.host.host_id)
        desc = DmbDesc(dmb.dmb_tok, dmb.sba_idx, size, dmb.region)
        with self.host.lock:
            self.rmbs.append(desc)
        return desc

    def buf_unuse(self, desc: DmbDesc) -> None:
        """``smc_buf_unuse``: zero the DMB (header included) and make it reusable."""
        if desc.registered:
            desc.region.fill(0)
        desc.used = False

    def free(self) -> None:
        """``smc_lgr_free`` for SMC-D: unregister every DMB (only once idle)."""
        with self.host.lock:
            if self.freeing:
                return
            if self.conns:
                raise RuntimeError(f"link group {self.lgr_id} still has {len(self.conns)} "
                                   "connection(s)")
            self.freeing = True
            descs = [d for d in self.rmbs if d.registered]
            if self in self.host.lgrs:
                self.host.lgrs.remove(self)
        for desc in descs:
            desc.registered = False
            self.host.dev.unregister_dmb(desc.token)


class ShmHost:
    """An SMC-D stack instance on ``dev`` (see the module docstring).

    Args:
        dev: the shared loopback-ism device.
        name: label used in thread names and traces.
        sock_min_sndbuf: ``SOCK_MIN_SNDBUF`` for the window-update limit (0 for tiny rings).
        start: start the softirq thread now.
    """

    def __init__(self, dev: ShmLoopbackIsm, *, name: str = "host",
                 sock_min_sndbuf: int = SOCK_MIN_SNDBUF, start: bool = True) -> None:
        self.dev = dev
        self.rt = dev.rt
        self.name = name
        self.sock_min_sndbuf = sock_min_sndbuf
        self.host_id, self.irq = dev.add_host()
        self.lock = self.rt.lock(f"{name}.lock")  # link groups
        self.lgrs: list[SmcdLinkGroup] = []
        self.conns: dict[int, ShmConnection] = {}  # smcd->conn[sba_idx]
        self._sq_lock = self.rt.lock(f"{name}.softirq")
        self._sq_cv = self.rt.condition(self._sq_lock, f"{name}.softirq")
        self._pending: dict[int, ShmConnection] = {}  # scheduled tasklets, in order
        self._work: list[Callable[[], None]] = []
        self._running: ShmConnection | None = None
        self._idle_gen = 0
        self._runs = 0
        self.errors: list[BaseException] = []
        self._thread: Any = None
        self._ident: int | None = None
        self._closed = False
        if start:
            self.start()

    # ------------------------------------------------------------------ lifecycle
    def start(self) -> None:
        if self._thread is None:
            self._thread = self.rt.spawn(f"{self.name}.softirq", self._softirq, system=True)

    def close(self, timeout: float = 10.0) -> None:
        """Stop the softirq thread and free idle link groups (their DMBs are unregistered)."""
        if self._closed:
            return
        self._closed = True
        if self._thread is not None:
            self.irq.put(STOP)
            self._thread.join(timeout)
        for lgr in list(self.lgrs):
            if not lgr.conns:
                lgr.free()
        self.irq.close()
        self.dev.remove_host(self.host_id)

    # ------------------------------------------------------------------ smcd->conn[]
    def set_conn(self, conn: ShmConnection, desc: DmbDesc) -> None:
        """``smc_ism_set_conn``."""
        with self._sq_lock:
            self.conns[desc.sba_idx] = conn
        self.dev.set_conn(desc.sba_idx, desc.token, self.host_id)

    def unset_conn(self, conn: ShmConnection, desc: DmbDesc) -> None:
        """``smc_ism_unset_conn``: under the softirq lock, so that a signal being handled
        either schedules the tasklet before this (and ``tasklet_kill`` then waits for it) or
        finds no connection."""
        with self._sq_lock:
            if self.conns.get(desc.sba_idx) is conn:
                del self.conns[desc.sba_idx]
        self.dev.unset_conn(desc.sba_idx, desc.token)

    # ------------------------------------------------------------------ link groups
    def find_lgr(self, peer_gid: tuple[int, int]) -> SmcdLinkGroup | None:
        with self.lock:
            return next((g for g in self.lgrs if g.peer_gid == peer_gid and not g.freeing),
                        None)

    def new_lgr(self, peer_gid: tuple[int, int]) -> SmcdLinkGroup:
        lgr = SmcdLinkGroup(self, peer_gid)
        with self.lock:
            self.lgrs.append(lgr)
        return lgr

    # ------------------------------------------------------------------ tasklets and work
    def _in_softirq(self) -> bool:
        return threading.get_ident() == self._ident

    def tasklet_schedule(self, conn: ShmConnection) -> None:
        """Queue ``conn``'s rx tasklet (once); wake the softirq thread if called from outside."""
        with self._sq_lock:
            new = id(conn) not in self._pending
            self._pending.setdefault(id(conn), conn)
        if new and not self._in_softirq():
            self.irq.put(WAKE)

    def irq_handler(self, slot: int) -> None:
        """A signal on ``slot``: look up ``smcd->conn[slot]`` and schedule its tasklet, both
        under the softirq lock (6.12.118's ``move_data`` reads ``smcd->conn[]`` without
        ``smcd->lock``; see the README's race notes)."""
        with self._sq_lock:
            conn = self.conns.get(slot)
            if conn is not None:
                self._pending.setdefault(id(conn), conn)

    def tasklet_kill(self, conn: ShmConnection) -> None:
        """Unschedule ``conn``'s tasklet and wait until it is not running."""
        with self._sq_lock:
            self._pending.pop(id(conn), None)
            if not self._in_softirq():
                self._sq_cv.wait_for(lambda: self._running is not conn)
            self._pending.pop(id(conn), None)
        if self.rt.observing:
            self.rt.observe("tasklet_drained", conn=conn)

    def queue_work(self, fn: Callable[[], None]) -> None:
        """Run ``fn`` on the softirq thread after the pending tasklets (a workqueue item)."""
        with self._sq_lock:
            self._work.append(fn)
        if not self._in_softirq():
            self.irq.put(WAKE)

    def _softirq(self) -> None:
        self._ident = threading.get_ident()
        while True:
            items = self.irq.get_batch()
            for item in items:
                if item == STOP:
                    return
                if item >= 0:
                    self.irq_handler(item)
            self._run_pending()

    def _run_pending(self) -> None:
        while True:
            with self._sq_lock:
                if self._pending:
                    key = next(iter(self._pending))
                    conn: ShmConnection | None = self._pending.pop(key)
                    self._running = conn
                    work = None
                elif self._work:
                    conn, work = None, self._work.pop(0)
                else:
                    self._idle_gen += 1
                    self._sq_cv.notify_all()
                    return
            try:
                if conn is not None:
                    self._runs += 1
                    conn.rx_tasklet()
                elif work is not None:
                    work()
            except Exception as exc:  # a bug in a tasklet must not kill the softirq thread
                self.errors.append(exc)
                if self.rt.observing:
                    self.rt.observe("exception", where=f"{self.name}.softirq", exc=exc)
            finally:
                if conn is not None:
                    with self._sq_lock:
                        self._running = None
                        self._sq_cv.notify_all()

    def settle(self, timeout: float = 10.0) -> None:
        """Wait until every signal raised so far has been handled (tests, conformance).

        Repeats a barrier until one pass ran no tasklet: a tasklet may send a CDC that signals
        this host again.
        """
        for _ in range(1000):
            with self._sq_lock:
                gen, runs = self._idle_gen, self._runs
            self.irq.put(WAKE)
            def idle(gen: int = gen) -> bool:
                return self._idle_gen > gen

            with self._sq_lock:
                ok = self._sq_cv.wait_for(idle, timeout)
                if not ok:
                    raise TimeoutError(f"{self.name}: softirq did not go idle in {timeout} s")
                if self._runs == runs and not self._pending and not self._work:
                    return
        raise RuntimeError(f"{self.name}: tasklets kept running (livelock?)")


def settle_all(*hosts: ShmHost) -> None:
    """Settle several hosts until none ran anything (CDCs bounce between them)."""
    for _ in range(100):
        before = [h._runs for h in hosts]
        for h in hosts:
            h.settle()
        if [h._runs for h in hosts] == before:
            return


