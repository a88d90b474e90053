"""Race mutants: the shared-memory implementation with one historical net/smc race put back.

Each mutant is a subclass of an implementation class that overrides one small method (the
implementation's files stay as they are), named after the kernel fix that removed the bug:

* ``confirmed-from-live`` - ``smcd_cdc_msg_send`` sets ``rx_curs_confirmed`` from the *live*
  ``local_tx_ctrl.cons`` after the CDC write instead of the value the CDC carried. A ``recv`` in
  another thread that consumes in between makes the reader believe it told the writer more than
  it did: its next window update is skipped and the writer can stall for good.
  Fixed by b8649efad879 "net/smc: fix sender_free computation" ("If a recvmsg() is processed in
  parallel, local_tx_ctrl.cons might change during smc_cdc_msg_send. Make sure
  rx_curs_confirmed is updated with the actually sent local_tx_ctrl.cons value.").
* ``unregister-put-unlocked`` - ``unregister_dmb`` finds the node under the table lock but drops
  the reference after releasing it, and removes the node only afterwards, so an ``attach_dmb``
  in between finds a node whose count already reached zero and hands out memory that is then
  freed under the new ghost sndbuf: a DMB freed while the peer still writes. Fixed in 6.12.114
  by "dibs: fix use-after-free of dmb_node in loopback attach/detach/unregister" (lookup,
  decrement and removal under one write lock).
* ``drain-before-unset`` - ``smc_conn_free`` drains the rx tasklet before it clears
  ``smcd->conn[]``: a CDC that arrives late (its signal in flight while the connection is torn
  down) schedules the tasklet again, which then runs on a freed connection. Fixed by
  36cdf5d48ca1 "net/smc: unregister the connection before draining the rx tasklet" (6.12.109).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from smcd_check.model.shm.conn import ShmConnection
from smcd_check.model.shm.cursor import HostCursor
from smcd_check.model.shm.device import ShmLoopbackIsm
from smcd_check.model.shm.host import ShmHost


class ConfirmedFromLive(ShmConnection):
    def _confirm(self, sent_cons: HostCursor) -> None:
        self.rx_curs_confirmed.set(self.tx_cons.get())


class DrainBeforeUnset(ShmConnection):
    def _unset_and_drain(self, desc: Any) -> None:
        self.host.tasklet_kill(self)
        self.host.unset_conn(self, desc)


class UnregisterPutUnlocked(ShmLoopbackIsm):
    def unregister_dmb(self, token: int) -> None:
        with self._lock:
            idx, _entry = self._lookup(token, "unregister_dmb")
        # refcount_dec_and_test() after the lookup's lock was dropped
        self.rt.point(f"refcount_dec_and_test slot{idx}", ("refcnt", idx), True)
        entry = self._slot(idx)
        entry[2] -= 1
        self._put_slot(idx, entry)
        self.rt.observe("dmb_put", token=token, refcnt=entry[2], op="unregister")
        if entry[2] != 0:
            self._unmap(token)
            return
        with self._lock:  # hash_del() under the write lock, after the fact
            entry = self._slot(idx)
            if entry[0] == token:
                entry[4] = 0
                self._put_slot(idx, entry)
        self._release(idx, token)


class LookupOutsideLock(ShmHost):
    """6.12.118's signal path: ``smcd->conn[sba_idx]`` is read without ``smcd->lock`` and the
    tasklet scheduled afterwards, so a free that unsets and drains in between still loses."""

    def irq_handler(self, slot: int) -> None:
        if self.rt.tracing:
            self.rt.point(f"{self.name}: read conn[{slot}] without the lock", self._sq_lock)
        conn = self.conns.get(slot)
        if conn is not None:
            self.tasklet_schedule(conn)


@dataclass(frozen=True, slots=True)
class Mutant:
    name: str
    fix: str
    description: str
    conn_cls: type[ShmConnection] = ShmConnection
    device_cls: type[ShmLoopbackIsm] = ShmLoopbackIsm
    host_cls: type[ShmHost] = ShmHost
    #: the scenario that shows it
    scenario: str = ""


MUTANTS: dict[str, Mutant] = {m.name: m for m in (
    Mutant("confirmed-from-live", "b8649efad879 net/smc: fix sender_free computation",
           "rx_curs_confirmed taken from the live consumer cursor, not the one sent",
           conn_cls=ConfirmedFromLive, scenario="duplex"),
    Mutant("unregister-put-unlocked",
           "6.12.114 dibs: fix use-after-free of dmb_node in loopback attach/detach/unregister",
           "unregister_dmb drops the reference outside the table lock; a racing attach gets "
           "memory that is then freed", device_cls=UnregisterPutUnlocked,
           scenario="attach-vs-teardown"),
    Mutant("drain-before-unset",
           "36cdf5d48ca1 net/smc: unregister the connection before draining the rx tasklet",
           "smc_conn_free drains the rx tasklet before clearing smcd->conn[]: a late CDC "
           "reschedules it on the freed connection", conn_cls=DrainBeforeUnset,
           scenario="close-late-cdc"),
    Mutant("lookup-outside-lock",
           "none yet: 6.12.118 smc_lo_move_data reads smcd->conn[] without smcd->lock",
           "the signal path reads smcd->conn[] without the lock that unset_conn takes: the "
           "36cdf5d48ca1 order narrows the late-CDC window but does not close it",
           host_cls=LookupOutsideLock, scenario="close-late-cdc"),
)}
