"""One SMC-D connection endpoint over the shared-memory device (Linux 6.12.118 net/smc).

Theory of operation
-------------------
:class:`ShmConnection` is the part of ``struct smc_connection`` / ``struct smc_sock`` the SMC-D
data path needs, written as a concurrent implementation: user threads call :meth:`send`,
:meth:`recv`, :meth:`shutdown`, :meth:`close`, :meth:`abort`; the host's softirq thread runs
:meth:`rx_tasklet` when the peer signals our DMB, and the close work.

Data path (smc_tx.c, smc_cdc.c, smc_rx.c, smc_cdc.h):

* ``send`` copies user bytes into the sndbuf at ``tx_curs_prep`` (two chunks at the ring end),
  lowers ``sndbuf_space`` and calls :meth:`tx_sndbuf_nonempty`, which under ``send_lock`` moves
  ``min(prepared, peer_rmbe_space)`` bytes into the peer DMB at ``32 + prod`` (``move_data``
  with ``sf = 0``), advances ``local_tx_ctrl.prod`` and ``tx_curs_sent``, and writes the CDC
  header into the peer DMB (``move_data`` with ``sf = 1``: type byte, then the prod and cons
  cursor words, each one aligned 8-byte store). Copy mode frees the sndbuf right after the CDC.
* In **merged** mode (a nocopy device) the sndbuf *is* the peer's data ring (the ghost sndbuf
  from ``attach_dmb``): ``send`` writes straight into the peer DMB, the ``sf = 0`` move is a
  no-op in the device, and space comes back only with the peer's consumer cursor.
* The rx tasklet loads the two cursor words of our DMB header (``smcd_curs_copy``) and applies
  ``smc_cdc_msg_recv_action``: ``peer_rmbe_space += diff_cons`` (merged: ``sndbuf_space +=
  diff(tx_curs_fin, cons)``), ``bytes_to_rcv += diff_prod``, kick our own pending sends, close
  flags.
* ``recv`` copies from ``32 + local_tx_ctrl.cons``, lowers ``bytes_to_rcv``, advances the
  consumer cursor and runs ``smc_tx_consumer_update`` (``rmbe_update_limit``, ``diff_large``,
  ``write_blocked``).
* ``smcd_cdc_msg_send`` sets ``rx_curs_confirmed`` to the consumer cursor **it sent** (the value
  it loaded before the write), never to the live one: a concurrent ``recv`` may have moved it
  (b8649efad879 "net/smc: fix sender_free computation").

Concurrency (the kernel's contexts, mapped onto threads): process context = the user threads,
softirq = the host thread. Locks, outermost first: ``tx_user`` (serialises senders, the part of
``lock_sock`` a writer needs), ``rx_user`` (serialises readers), ``sock`` (``bh_lock_sock``: CDC
receive processing and close-state changes), ``send_lock`` (``conn->send_lock``: data moves and
CDC writes), ``wq`` (the socket wait queue; innermost, only for sleeping and waking). Unlike the
kernel there is no socket-wide ``lock_sock``: a reader and a writer of one socket run in
parallel (full duplex from two threads, as with TCP sockets in Python), and the tasklet pushes
pending data directly (6.12's deferral to ``release_sock`` exists because of ``lock_sock``).
Cursors and counters read by one context while another writes them are :class:`Cell` /
:class:`AtomicInt` (the kernel's ``atomic64_t`` cursors and ``atomic_t`` counters), so the race
explorer can switch threads at each such access.

Teardown (smc_close.c, smc_core.c 6.12.118): ``shutdown`` sends ``peer_done_writing``; ``close``
flushes what fits, sends ``peer_conn_closed`` (``peer_conn_abort`` with unread data) and frees
the connection at once if the peer already closed, else when the peer's close arrives (close
work on the softirq thread). ``abort`` is ``smc_conn_kill``. :meth:`conn_free` follows
``smc_conn_free``: ``freed``, **unset ``smcd->conn[]`` before draining the rx tasklet**
(36cdf5d48ca1, 6.12.109), detach the ghost sndbuf, ``smc_buf_unuse``, leave the link group.

Urgent data (MSG_OOB; smc_tx.c, smc_cdc.c, smc_rx.c, af_smc.c 6.12.118), both directions alike:

* ``send(data, oob=True)`` is ``smc_tx_sendmsg`` with MSG_OOB: every pass of its loop sets
  ``urg_data_pending`` in ``local_tx_ctrl.prod_flags`` before the space check (a refused OOB
  send leaves it set), every send waits while ``urg_tx_pend`` is set (``smc_tx_wait``), and
  ``urg_tx_pend`` is set when the whole message was copied: its last byte is urgent.
  ``_tx_rdma_writes`` sets ``urg_data_present`` on the move that takes everything prepared;
  ``smcd_tx_sndbuf_nonempty`` skips the move while it is set and clears both flags after the
  CDC that carried them. The flags travel in the cons cursor word's ``prod_flags`` byte of the
  32-byte CDC header in the peer's DMB, written with one aligned 8-byte store like the rest.
* The peer's softirq (``smc_cdc_msg_recv_action``): new data with ``urg_data_present`` is
  ``smc_cdc_handle_urg_data_arrival`` (``urg_curs`` = the new producer cursor, ``urg_state``
  VALID, ``urg_rx_byte`` = the byte before it, read from our DMB; without SO_OOBINLINE the byte
  is not counted in ``bytes_to_rcv``); a CDC with no new data but ``urg_data_pending`` makes
  ``urg_state`` NOTYET. ``urg_tx_pend`` is cleared when a CDC moves the peer's consumer cursor
  and the peer has consumed everything (``peer_rmbe_space == peer_rmbe_size``).
* ``smc_tx_sendmsg`` runs under ``lock_sock``, and 6.12.118's tasklet leaves the sender's data
  alone while the socket is owned (``tx_in_release_sock``); here the softirq pushes data itself
  (see Concurrency), so the copy of the urgent message's last byte and ``urg_tx_pend = true``
  happen under ``send_lock``, and the softirq clears ``urg_tx_pend`` under ``send_lock`` and
  only when nothing is prepared and unmoved (ours): otherwise its move could take the urgent
  byte before ``urg_tx_pend`` is set, or a window update for older data clear it before the
  move, and the byte would go out as plain data. Quiescent behaviour is the kernel's
  (``smc_tx_pending`` runs first in the same action and moves whatever fits).

CDC transport of the urgent mark (ours, beyond 6.12.118): a DMB has one CDC header, which the
peer's softirq thread reads whenever it runs, with one 8-byte load per cursor word. It may miss
a CDC (overwritten by the next one before it ran: a window update right after the urgent data
CDC clears the flags), read one CDC twice (it ran again for a later signal: the urgent CDC seen
again has "no new data but urg_data_pending", which 6.12.118 turns into NOTYET), or read the
prod word of one CDC with the cons word of another. The kernel's loopback runs the tasklet right
after each CDC (``spin_unlock_bh``), so it rarely meets these; the threads here meet them all
the time, and each loses the mark (a reader and a staged sender then wait for each other for
ever). So the sender also writes ``urg_data_present`` into the prod cursor word's spare
``prod_flags`` byte (zero in 6.12.118, which reads only the cons word's) for as long as its
producer cursor ends at the urgent byte (``_urg_at_prod``: set by the move that ends there,
cleared by the next move or the next MSG_OOB send), and the receiver takes it from there: in
the same load as the producer cursor it marks, in every CDC until the cursor moves on. A header
with the mark and no new data is that CDC seen again and does not make ``urg_state`` NOTYET.
(A next MSG_OOB send while the byte is staged drops the mark early: its ``urg_data_pending``
alone makes 6.12.118's receiver NOTYET anyway.)
The cons word carries the flags exactly as 6.12.118 does; a connection that never sent MSG_OOB
writes the same header bytes as before.
* ``recv`` (``smc_rx_recvmsg``): with SO_OOBINLINE a read stops one byte short of a VALID
  urgent byte; ``smc_rx_update_consumer`` skips a non-inline urgent byte when the consumer
  cursor lands right before it (``smc_curs_comp == 1``; also for a read that finds nothing,
  ``smc_rx_recvmsg_data_available``), marks READ when an inline read ends at it or any read
  passes it; ``recv(n, oob=True)`` is ``smc_rx_recv_urg`` (EINVAL unless VALID and not inline).
  ``atmark`` is SIOCATMARK (``smc_curs_diff(cons, urg_curs) == 1``, whatever ``urg_state``
  says), ``set_oobinline`` SO_OOBINLINE, ``urgent_pending`` smc_poll's EPOLLPRI. The kernel's
  oddities are kept (stale VALID state across the wrap counter's overflow, a byte read out of
  band at the mark never skipped).

Urgent state and locking: ``urg_state``, ``urg_curs``, ``urg_rx_byte``, ``urg_rx_skip_pend``
and ``oobinline`` are written by the softirq (CDC receive, under ``sock``) and by the reader
(``recv``, ``recv(oob)``), so the reader takes ``sock`` as well whenever it looks at them
(6.12.118 has the tasklet under ``bh_lock_sock`` and the reader under ``lock_sock`` only, which
do not exclude each other). To keep the ordinary data path exactly as it was (one yield point
more per ``recv`` or ``send`` would change every race scenario's schedules), the urgent path is
entered only on a connection that has used urgent data: ``_urg_rx_seen`` (sticky, set by the
softirq under ``sock`` before it adds the urgent message's bytes to ``bytes_to_rcv``; a reader
reads it *after* ``bytes_to_rcv``, so a read that saw those bytes takes the urgent path, and one
that did not is the same read as if the CDC had come after it) and ``_urg_tx_used`` (sticky,
written under ``tx_user`` and ``send_lock`` before ``urg_tx_pend`` is first set). No race
scenario sends MSG_OOB.

Not modelled: corking, linger, the tx worker's retry of a failed window update
(``tx_work_pending`` is only flagged), link-group termination by events, MSG_PEEK/MSG_TRUNC
(``recv(0, oob=True)`` is the MSG_TRUNC case of ``smc_rx_recv_urg``).
"""

from __future__ import annotations

import contextlib
import errno as _errno
from enum import IntEnum, StrEnum
from typing import TYPE_CHECKING, Any

from smcd_check.model.shm.clcsock import Clcsock, NotConnected, PairClcsock
from smcd_check.model.shm.cursor import (
    ZERO,
    HostCursor,
    curs_add,
    curs_comp,
    curs_diff,
    curs_diff_large,
)
from smcd_check.model.shm.device import DeviceOpError
from smcd_check.model.shm.layout import (
    CDC_CONS_OFF,
    CDC_PROD_OFF,
    SMC_CDC_MSG_TYPE,
    SMC_CONN_ANY_CLOSE,
    SMC_CONN_PEER_CONN_ABORT,
    SMC_CONN_PEER_CONN_CLOSED,
    SMC_CONN_PEER_DONE_WRITING,
    SMC_PROD_CONS_CURS_UPD_REQ,
    SMC_PROD_URG_DATA_PENDING,
    SMC_PROD_URG_DATA_PRESENT,
    SMC_PROD_WRITE_BLOCKED,
    SMCD_CDC_MSG_SIZE,
    WRAP_MASK,
    CdcImage,
    CursorWord,
)
from smcd_check.model.shm.memory import Region
from smcd_check.model.shm.runtime import AtomicInt, Cell

if TYPE_CHECKING:
    from smcd_check.model.shm.host import DmbDesc, ShmHost, SmcdLinkGroup

RCV_SHUTDOWN = 1
SEND_SHUTDOWN = 2


class SmcdMode(StrEnum):
    COPY = "copy"
    MERGED = "merged"


class SockState(IntEnum):
    """Socket states used here, with the kernel's values (net/smc/smc.h)."""

    ACTIVE = 1
    INIT = 2
    CLOSED = 7
    PEERCLOSEWAIT1 = 20
    PEERCLOSEWAIT2 = 21
    APPCLOSEWAIT1 = 22
    APPCLOSEWAIT2 = 23
    APPFINCLOSEWAIT = 24
    PEERFINCLOSEWAIT = 25
    PROCESSABORT = 27


#: states in which ``smc_shutdown`` goes on (net/smc/af_smc.c); any other is -ENOTCONN
SHUTDOWN_STATES = frozenset({
    SockState.ACTIVE, SockState.PEERCLOSEWAIT1, SockState.PEERCLOSEWAIT2,
    SockState.APPCLOSEWAIT1, SockState.APPCLOSEWAIT2, SockState.APPFINCLOSEWAIT,
})


class SocketError(DeviceOpError):
    """A socket call failed; ``errno_name`` says how."""


class WouldBlock(SocketError):
    errno_name = "EAGAIN"


class BadFd(SocketError):
    errno_name = "EBADF"


class PipeError(SocketError):
    errno_name = "EPIPE"


class ConnReset(SocketError):
    errno_name = "ECONNRESET"


class ConnAborted(SocketError):
    errno_name = "ECONNABORTED"


class Timeout(SocketError):
    errno_name = "ETIMEDOUT"


class InvalidArgument(SocketError):
    errno_name = "EINVAL"


class SmcUrgState(IntEnum):
    """``conn->urg_state`` (net/smc/smc.h ``enum smc_urg_state``); ``smc_rx_init`` starts in
    READ."""

    VALID = 1  #: an urgent byte arrived and was not read yet
    NOTYET = 2  #: the peer announced urgent data (``urg_data_pending``) not here yet
    READ = 3  #: the urgent byte was read, or none ever came


def rmb_wnd_update_limit(length: int, sock_min_sndbuf: int) -> int:
    """``smc_rmb_wnd_update_limit`` (6.12.118: max of a tenth and half SOCK_MIN_SNDBUF)."""
    return max(length // 10, sock_min_sndbuf // 2)


class ShmConnection:
    """One endpoint (see the module docstring). Built by the handshake or :func:`open_pair`.

    Args:
        host: the SMC stack instance this endpoint lives in.
        lgr: its link group.
        name: label for traces (``a``, ``b``, ``client``...).
    """

    def __init__(self, host: ShmHost, lgr: SmcdLinkGroup, *, name: str = "conn") -> None:
        rt = host.rt
        self.rt = rt
        self.host = host
        self.dev = host.dev
        self.lgr = lgr
        self.name = name
        self.mode = SmcdMode.MERGED if self.dev.support_dmb_nocopy() else SmcdMode.COPY
        self.tx_user = rt.lock(f"{name}.tx_user")
        self.rx_user = rt.lock(f"{name}.rx_user")
        self.sock = rt.lock(f"{name}.sock")
        self.send_lock = rt.lock(f"{name}.send_lock")
        self.wq = rt.lock(f"{name}.wq")
        self.wq_cv = rt.condition(self.wq, f"{name}.wq")
        #: wake-ups of the wait queue so far: sk_wait_event returns on any wake-up, and the
        #: urgent read loop looks again then (see _rx_recvmsg)
        self._wake_gen = 0
        # buffers
        self.rmb_desc: DmbDesc | None = None
        self.sndbuf: Region | None = None
        self.sndbuf_base = 0
        self.sndbuf_len = 0
        self.ghost_token = 0
        self.peer_token = 0
        self.peer_rmbe_idx = 0
        self.peer_rmbe_size = 0
        self.rmbe_update_limit = 0
        self.registered = False
        # cursors (union smc_host_cursor, read and written without a common lock)
        self.tx_curs_prep = Cell(rt, f"{name}.tx_curs_prep", ZERO)
        self.tx_curs_sent = Cell(rt, f"{name}.tx_curs_sent", ZERO)
        self.tx_curs_fin = Cell(rt, f"{name}.tx_curs_fin", ZERO)
        self.tx_prod = Cell(rt, f"{name}.local_tx_ctrl.prod", ZERO)
        self.tx_cons = Cell(rt, f"{name}.local_tx_ctrl.cons", ZERO)
        self.tx_prod_flags = Cell(rt, f"{name}.local_tx_ctrl.prod_flags", 0)
        self.tx_conn_flags = Cell(rt, f"{name}.local_tx_ctrl.conn_state_flags", 0)
        self.rx_prod = Cell(rt, f"{name}.local_rx_ctrl.prod", ZERO)
        self.rx_cons = Cell(rt, f"{name}.local_rx_ctrl.cons", ZERO)
        self.rx_prod_flags = Cell(rt, f"{name}.local_rx_ctrl.prod_flags", 0)
        self.rx_conn_flags = Cell(rt, f"{name}.local_rx_ctrl.conn_state_flags", 0)
        self.rx_curs_confirmed = Cell(rt, f"{name}.rx_curs_confirmed", ZERO)
        self.sndbuf_space = AtomicInt(rt, f"{name}.sndbuf_space")
        self.peer_rmbe_space = AtomicInt(rt, f"{name}.peer_rmbe_space")
        self.bytes_to_rcv = AtomicInt(rt, f"{name}.bytes_to_rcv")
        # socket state (sk_*), read without locks by waiters
        self.sk_state = Cell(rt, f"{name}.sk_state", SockState.INIT)
        self.sk_shutdown = Cell(rt, f"{name}.sk_shutdown", 0)
        self.sk_err = Cell(rt, f"{name}.sk_err", 0)
        self.killed = Cell(rt, f"{name}.killed", False)
        self.freed = False
        self.free_done = False
        self.user_closed = False
        self.user_aborted = False
        self.tx_work_pending = False
        self.rx_protocol_error: str | None = None
        # urgent data, receive side (smc_rx_init): under ``sock`` (module docstring)
        self.urg_state = SmcUrgState.READ
        self.urg_curs = ZERO  #: our ring: the position just after the urgent byte
        self.urg_rx_byte = 0
        self.urg_rx_skip_pend = False
        self.oobinline = False  #: SO_OOBINLINE (SOCK_URGINLINE)
        self._urg_rx_seen = False  #: sticky: the peer's CDCs carried urgent flags
        # urgent data, send side: urg_tx_pend is set by the sender and cleared by the softirq
        self.urg_tx_pend = Cell(rt, f"{name}.urg_tx_pend", False)
        self._urg_tx_used = False  #: sticky: this endpoint sent with MSG_OOB
        #: our producer cursor ends at an urgent byte: every CDC repeats urg_data_present in
        #: the prod word until the next move (under ``send_lock``; module docstring)
        self._urg_at_prod = False
        #: the handshake's TCP connection (the socket layer replaces the stand-in)
        self.clcsock: Clcsock = PairClcsock()
        # the abstract view (for checkers and benchmarks): bytes in and out
        self.bytes_sent_total = 0
        self.bytes_recv_total = 0

    # ================================================================ setup (by the handshake)

    def buf_create(self, dmb_size: int, sndbuf_size: int | None = None) -> DmbDesc:
        """``smc_buf_create`` for SMC-D: our DMB (reused or new); copy mode: our sndbuf too."""
        desc = self.lgr.get_dmb(dmb_size)
        self.rmb_desc = desc
        self.rmbe_update_limit = rmb_wnd_update_limit(desc.len, self.host.sock_min_sndbuf)
        self.host.set_conn(self, desc)
        with self.host.lock:
            self.lgr.conns.add(id(self))
        self.registered = True
        if self.mode is SmcdMode.COPY:
            size = sndbuf_size or dmb_size
            if size % 8:
                raise ValueError(f"sndbuf_size={size}: expected a multiple of 8")
            self.sndbuf = Region(self.rt, bytearray(size), f"{self.name}.sndbuf")
            self.sndbuf_base = 0
            self.sndbuf_len = size
            self.sndbuf_space.value = size
        return desc

    def save_peer_info(self, peer_token: int, peer_rmbe_idx: int, peer_dmb_size: int) -> None:
        """``smcd_conn_save_peer_info``."""
        self.peer_token = peer_token
        self.peer_rmbe_idx = peer_rmbe_idx
        self.peer_rmbe_size = peer_dmb_size - SMCD_CDC_MSG_SIZE
        self.peer_rmbe_space.value = self.peer_rmbe_size

    def buf_attach(self) -> None:
        """``smcd_buf_attach``: the ghost sndbuf = the peer DMB's data ring."""
        dmb = self.dev.attach_dmb(self.peer_token)
        self.ghost_token = dmb.dmb_tok
        self.sndbuf = dmb.region
        self.sndbuf_base = SMCD_CDC_MSG_SIZE
        self.sndbuf_len = dmb.dmb_len - SMCD_CDC_MSG_SIZE
        self.sndbuf_space.value = self.sndbuf_len

    def activate(self) -> None:
        self.sk_state.value = SockState.ACTIVE

    def start_after(self, total: int) -> None:
        """Test hook, not a kernel feature (the kernel starts every cursor at 0): put every
        cursor where ``total`` bytes sent each way, all read and confirmed, would have left it,
        so a test reaches the ring's end and the 16-bit wrap counter's overflow without moving
        gigabytes. Both endpoints of a pair call it, right after the handshake and before any
        traffic (nothing else runs then: no CDC is in flight). ``urg_curs`` stays (0, 0), as no
        urgent byte was sent; the byte counters (``bytes_*_total``) stay 0.

        Raises:
            ValueError: ``total`` is not an int >= 0.
        """
        if not isinstance(total, int) or isinstance(total, bool) or total < 0:
            raise ValueError(f"start={total!r}: expected an int >= 0")

        def at(size: int) -> HostCursor:
            return HostCursor((total // size) & WRAP_MASK, total % size)

        self.tx_prod.value = self.rx_cons.value = at(self.peer_rmbe_size)
        sent = at(self.sndbuf_len)
        self.tx_curs_prep.value = self.tx_curs_sent.value = self.tx_curs_fin.value = sent
        ring = at(self.rmb_len)
        self.rx_prod.value = self.tx_cons.value = self.rx_curs_confirmed.value = ring

    @property
    def rmb_len(self) -> int:
        return self.rmb_desc.len if self.rmb_desc is not None else 0

    # ================================================================ waiting

    def _wake(self) -> None:
        with self.wq:
            self._wake_gen += 1
            self.wq_cv.notify_all()

    def _wait(self, pred: Any, timeout: float | None, what: str) -> None:
        with self.wq:
            if not self.wq_cv.wait_for(pred, timeout):
                raise Timeout(f"{what}: timed out after {timeout} s")

    def _any_close_rxed(self) -> bool:
        return bool(self.rx_conn_flags.get() & SMC_CONN_ANY_CLOSE)

    def _check_handle(self, op: str) -> None:
        if self.user_closed:
            raise BadFd(f"{op}: the endpoint was closed")
        if self.user_aborted:
            raise ConnAborted(f"{op}: the endpoint was aborted")

    # ================================================================ send side

    def send(self, data: Any, *, oob: bool = False, block: bool = True,
             timeout: float | None = None) -> int:
        """``smc_tx_sendmsg``: bytes accepted (blocking: waits for at least one byte of room).

        ``oob`` is MSG_OOB: the last byte of ``data`` is urgent when all of it is accepted; while
        an urgent byte is staged (``urg_tx_pend``: until the peer consumed everything) every
        send waits (non-blocking: WouldBlock), as ``smc_tx_wait`` does.

        Raises:
            WouldBlock: non-blocking and no room (nothing accepted).
            PipeError: shut down for writing, killed or a pending socket error.
            ConnReset: the peer closed or aborted and nothing was accepted.
            BadFd / ConnAborted: the endpoint was closed / aborted by its user.
            Timeout: blocking and no room within ``timeout`` seconds.
        """
        self._check_handle("send")
        view = memoryview(data).cast("B")
        with self.tx_user:
            if self.sk_err.get() or self.sk_shutdown.get() & SEND_SHUTDOWN:
                raise PipeError(self._why_no_send())
            done = 0
            while done < len(view):
                if (self.sk_shutdown.get() & SEND_SHUTDOWN
                        or self.sk_err.get() == _errno.ECONNABORTED or self.killed.get()):
                    raise PipeError(self._why_no_send())
                if self._any_close_rxed():
                    if done:
                        return done
                    raise ConnReset("send: the peer closed the connection")
                if oob:  # smc_tx_sendmsg: on every pass, before the wait
                    self._tx_set_urg_data_pending()
                space = self.sndbuf_space.get()
                if space <= 0 or self._tx_urg_staged():
                    if done:
                        return done
                    if not block:
                        raise WouldBlock("send: no room in the send buffer" if space <= 0
                                         else "send: an urgent byte is staged (urg_tx_pend)")
                    self._tx_wait(timeout)
                    continue
                n = min(len(view) - done, space)
                if oob and done + n == len(view):
                    # the message's last byte is urgent. The copy and urg_tx_pend go together
                    # under send_lock: the softirq's tx_pending moves prepared bytes under it,
                    # and must not move these before it can see urg_tx_pend (6.12.118: the
                    # tasklet defers to release_sock while sendmsg holds lock_sock)
                    with self.send_lock:
                        self._sndbuf_write(view[done:done + n])
                        self.urg_tx_pend.set(True)
                else:
                    self._sndbuf_write(view[done:done + n])
                done += n
                self.tx_sndbuf_nonempty()
            return done

    def _tx_set_urg_data_pending(self) -> None:
        """``local_tx_ctrl.prod_flags.urg_data_pending = 1`` (caller holds ``tx_user``): under
        ``send_lock``, since the data moves read-modify-write the same flags byte."""
        with self.send_lock:
            self._urg_tx_used = True
            self._urg_at_prod = False  # a new urgent message: the old mark is not repeated
            self.tx_prod_flags.set(self.tx_prod_flags.get() | SMC_PROD_URG_DATA_PENDING)

    def _tx_urg_staged(self) -> bool:
        """``conn->urg_tx_pend``; never read on an endpoint that did not send MSG_OOB."""
        return self._urg_tx_used and bool(self.urg_tx_pend.get())

    def sendall(self, data: Any, timeout: float | None = None) -> None:
        view = memoryview(data).cast("B")
        done = 0
        while done < len(view):
            done += self.send(view[done:], timeout=timeout)

    def _tx_wait(self, timeout: float | None) -> None:
        """``smc_tx_wait``: sleep until there is room, or why there never will be."""
        def ready() -> bool:
            return bool(self.sk_err.get() or self.sk_shutdown.get() & SEND_SHUTDOWN
                        or self.killed.get() or self._any_close_rxed()
                        or (self.sndbuf_space.get() > 0 and not self._tx_urg_staged()))
        self._wait(ready, timeout, "send")
        if self.sk_err.get() or self.sk_shutdown.get() & SEND_SHUTDOWN or self.killed.get():
            raise PipeError(self._why_no_send())
        if self._any_close_rxed() and self.sndbuf_space.get() <= 0:
            raise ConnReset("send: the peer closed the connection")

    def _sndbuf_write(self, chunk: memoryview) -> None:
        assert self.sndbuf is not None
        prep = self.tx_curs_prep.get()
        n = len(chunk)
        first = min(n, self.sndbuf_len - prep.count)
        self.sndbuf.write(self.sndbuf_base + prep.count, chunk[:first], f"{self.name} app")
        if first < n:
            self.sndbuf.write(self.sndbuf_base, chunk[first:], f"{self.name} app")
        if self.rt.observing:
            self.rt.observe("app_write", conn=self, off=prep.count, n=n)
        self.tx_curs_prep.set(curs_add(self.sndbuf_len, prep, n))
        self.sndbuf_space.add(-n)
        self.bytes_sent_total += n

    def tx_prepared_sends(self) -> int:
        """``smc_tx_prepared_sends``."""
        if self.sndbuf is None:
            return 0
        return curs_diff(self.sndbuf_len, self.tx_curs_sent.get(), self.tx_curs_prep.get())

    def tx_sndbuf_nonempty(self) -> int:
        """``smc_tx_sndbuf_nonempty`` + ``smcd_tx_sndbuf_nonempty``."""
        if self.tx_prepared_sends() <= 0:
            return 0
        if self.peer_rmbe_space.get() <= 0:
            return 0
        if self.killed.get() or self.rx_conn_flags.get() & SMC_CONN_PEER_CONN_ABORT:
            return -_errno.EPIPE
        with self.send_lock:
            if self._urg_tx_used:
                rc = self._smcd_tx_sndbuf_nonempty_urg()
            else:
                rc = self._tx_rdma_writes()
                if rc == 0:
                    rc = self.cdc_msg_send()
        if rc == 0:
            self._wake()
        return rc

    def _smcd_tx_sndbuf_nonempty_urg(self) -> int:
        """``smcd_tx_sndbuf_nonempty`` with its urgent flags (caller holds ``send_lock``): no
        move while ``urg_data_present`` waits for its CDC; both flags cleared after it."""
        rc = 0
        if not self.tx_prod_flags.get() & SMC_PROD_URG_DATA_PRESENT:
            rc = self._tx_rdma_writes()
        if rc == 0:
            rc = self.cdc_msg_send()
        if rc == 0:
            pf = self.tx_prod_flags.get()
            if pf & SMC_PROD_URG_DATA_PRESENT:
                self.tx_prod_flags.set(pf & ~(SMC_PROD_URG_DATA_PENDING
                                              | SMC_PROD_URG_DATA_PRESENT))
        return rc

    def tx_pending(self) -> None:
        """``smc_tx_pending``."""
        if self.sk_err.get():
            return
        rc = self.tx_sndbuf_nonempty()
        pf = self.rx_prod_flags.get()
        if rc == 0 and pf & SMC_PROD_WRITE_BLOCKED and not self.bytes_to_rcv.get():
            self.rx_prod_flags.set(pf & ~SMC_PROD_WRITE_BLOCKED)

    def _tx_rdma_writes(self) -> int:
        """``smc_tx_rdma_writes`` + ``smcd_tx_rdma_writes`` (caller holds ``send_lock``)."""
        sent = self.tx_curs_sent.get()
        prep = self.tx_curs_prep.get()
        to_send = curs_diff(self.sndbuf_len, sent, prep)
        if to_send <= 0:
            return 0
        rmbespace = self.peer_rmbe_space.get()
        if rmbespace <= 0:
            return 0
        prod = self.tx_prod.get()
        cons = self.rx_cons.get()
        pf = self.tx_prod_flags.get()
        if to_send >= rmbespace:
            pf |= SMC_PROD_WRITE_BLOCKED
        else:
            pf &= ~SMC_PROD_WRITE_BLOCKED
        self.tx_prod_flags.set(pf)
        length = min(to_send, rmbespace)
        if prod.wrap == cons.wrap:
            dst_len = min(self.peer_rmbe_size - prod.count, length)
        else:
            dst_len = length
        chunks = [(prod.count, dst_len)]
        if dst_len < length:
            chunks.append((0, length - dst_len))
        src_off = sent.count
        assert self.sndbuf is not None
        for dst_off, dst_n in chunks:
            while dst_n > 0:
                n = min(dst_n, self.sndbuf_len - src_off)
                rc = self._tx_ism_write_data(src_off, n, SMCD_CDC_MSG_SIZE + dst_off)
                if rc:
                    return rc
                dst_off += n
                dst_n -= n
                src_off = (src_off + n) % self.sndbuf_len
        if self._urg_tx_used:
            self._urg_at_prod = bool(self.urg_tx_pend.get() and length == to_send)
            if self._urg_at_prod:  # smc_tx_rdma_writes: this move ends at the urgent byte
                self.tx_prod_flags.set(self.tx_prod_flags.get() | SMC_PROD_URG_DATA_PRESENT)
        # smc_tx_advance_cursors
        self.peer_rmbe_space.add(-length)
        self.tx_prod.set(curs_add(self.peer_rmbe_size, prod, length))
        self.tx_curs_sent.set(curs_add(self.sndbuf_len, sent, length))
        if self.rt.observing:
            self.rt.observe("moved", conn=self, n=length)
        return 0

    def _tx_ism_write_data(self, src_off: int, n: int, dst_off: int) -> int:
        """``smcd_tx_ism_write`` with ``sf = 0``: move sndbuf bytes into the peer DMB."""
        assert self.sndbuf is not None
        data = self.sndbuf.mv[self.sndbuf_base + src_off:self.sndbuf_base + src_off + n]
        # merged: the bytes are already there, nothing moves
        if self.mode is SmcdMode.COPY and self.rt.observing:
            self.rt.observe("move", conn=self, src_off=src_off, dst_off=dst_off, n=n)
        return self._ism_write(data, dst_off, sf=False)

    def _ism_write(self, data: Any, offset: int, *, sf: bool) -> int:
        try:
            self.dev.move_data(self.peer_token, self.peer_rmbe_idx, sf, offset, data)
        except DeviceOpError as exc:
            self.tx_conn_flags.set(self.tx_conn_flags.get() | SMC_CONN_PEER_CONN_ABORT)
            return -int(getattr(_errno, exc.errno_name, _errno.EIO))
        return 0

    def cdc_msg_send(self) -> int:
        """``smcd_cdc_msg_send`` (caller holds ``send_lock``)."""
        prod = self.tx_prod.get()
        cons = self.tx_cons.get()  # the consumer cursor this CDC carries
        image = CdcImage(
            prod=CursorWord(prod.wrap, prod.count,
                            SMC_PROD_URG_DATA_PRESENT if self._urg_at_prod else 0).to_word(),
            cons=CursorWord(cons.wrap, cons.count, self.tx_prod_flags.get(),
                            self.tx_conn_flags.get()).to_word(),
        )
        rc = self._ism_write(image, 0, sf=True)
        if rc:
            return rc
        self._confirm(cons)
        rxpf = self.rx_prod_flags.get()
        if rxpf & SMC_PROD_CONS_CURS_UPD_REQ:
            self.rx_prod_flags.set(rxpf & ~SMC_PROD_CONS_CURS_UPD_REQ)
        if self.mode is SmcdMode.MERGED:
            return 0  # space comes back with the peer's consumer cursor
        fin = self.tx_curs_fin.get()
        sent = self.tx_curs_sent.get()
        self.sndbuf_space.add(curs_diff(self.sndbuf_len, fin, sent))
        self.tx_curs_fin.set(sent)
        return 0

    def _confirm(self, sent_cons: HostCursor) -> None:
        """``rx_curs_confirmed`` := the consumer cursor the CDC carried."""
        self.rx_curs_confirmed.set(sent_cons)

    def cdc_get_slot_and_msg_send(self) -> int:
        """``smc_cdc_get_slot_and_msg_send`` (SMC-D)."""
        if not self.registered or self.lgr.freeing:
            return -_errno.EPIPE
        with self.send_lock:
            return self.cdc_msg_send()

    # ================================================================ receive side

    def rx_tasklet(self) -> None:
        """``smcd_cdc_rx_tsklet``: load the header's two cursor words and act on them."""
        if self.killed.get():
            return
        if self.rt.observing:
            self.rt.observe("tasklet", conn=self)
        desc = self.rmb_desc
        assert desc is not None
        prod = CursorWord.from_word(desc.region.load_word(CDC_PROD_OFF, f"{self.name} rx prod"))
        cons = CursorWord.from_word(desc.region.load_word(CDC_CONS_OFF, f"{self.name} rx cons"))
        with self.sock:
            self._cdc_msg_recv_action(prod, cons)
        self._wake()

    def _cdc_msg_recv_action(self, prod: CursorWord, cons: CursorWord) -> None:
        """``smc_cdc_msg_recv_action`` (caller holds ``sock``)."""
        prod_old = self.rx_prod.get()
        cons_old = self.rx_cons.get()
        new_prod = HostCursor(prod.wrap, prod.count)
        new_cons = HostCursor(cons.wrap, cons.count)
        self.rx_prod.set(new_prod)
        self.rx_cons.set(new_cons)
        self.rx_prod_flags.set(cons.prod_flags)
        self.rx_conn_flags.set(cons.conn_state_flags)
        diff_cons = curs_diff(self.peer_rmbe_size, cons_old, new_cons)
        if diff_cons:
            self.peer_rmbe_space.add(diff_cons)
            if self.mode is SmcdMode.MERGED:
                fin = self.tx_curs_fin.get()
                self.sndbuf_space.add(curs_diff(self.sndbuf_len, fin, new_cons))
                self.tx_curs_fin.set(new_cons)
        diff_prod = curs_diff(self.rmb_len, prod_old, new_prod)
        # urg_data_present as the prod word repeats it: read in one load with the cursor it
        # is about (module docstring); 6.12.118 takes it from the cons word
        urg_at_prod = prod.prod_flags & SMC_PROD_URG_DATA_PRESENT
        if diff_prod:
            if urg_at_prod:
                diff_prod = self._cdc_handle_urg_data_arrival(new_prod, diff_prod)
            if diff_prod:
                self.bytes_to_rcv.add(diff_prod)
        elif cons.prod_flags & SMC_PROD_URG_DATA_PENDING and not urg_at_prod:
            self._urg_rx_seen = True
            self.urg_state = SmcUrgState.NOTYET
        if ((diff_cons and self.tx_prepared_sends())
                or cons.prod_flags & (SMC_PROD_CONS_CURS_UPD_REQ | SMC_PROD_URG_DATA_PENDING)):
            self.tx_pending()
        if diff_cons and self._urg_tx_used:
            self._urg_tx_confirmed()
        flags = cons.conn_state_flags
        if flags & SMC_CONN_PEER_CONN_ABORT:
            self.sk_err.set(_errno.ECONNRESET)
            self.tx_conn_flags.set(self.tx_conn_flags.get() | SMC_CONN_PEER_CONN_ABORT)
        if flags & (SMC_CONN_ANY_CLOSE | SMC_CONN_PEER_DONE_WRITING):
            self.sk_shutdown.set(self.sk_shutdown.get() | RCV_SHUTDOWN)
            self._passive_close(flags)

    def _urg_tx_confirmed(self) -> None:
        """The end of ``smc_cdc_msg_recv_action``: "urg data confirmed by peer, indicate we're
        ready for more" once the peer consumed everything (``rx_tasklet`` wakes the waiting
        sender). Under ``send_lock``, with the check that nothing is prepared and unmoved (ours:
        see the module docstring), so it cannot fall between a sender's copy of the urgent
        byte and its move."""
        with self.send_lock:
            if (self.urg_tx_pend.get() and self.tx_prepared_sends() <= 0
                    and self.peer_rmbe_space.get() == self.peer_rmbe_size):
                self.urg_tx_pend.set(False)

    def _cdc_handle_urg_data_arrival(self, new_prod: HostCursor, diff_prod: int) -> int:
        """``smc_cdc_handle_urg_data_arrival`` (caller holds ``sock``): the byte before the new
        producer cursor is urgent; without SO_OOBINLINE it is not counted in ``bytes_to_rcv``.

        Returns:
            ``diff_prod`` as the kernel goes on with it.
        """
        desc = self.rmb_desc
        assert desc is not None
        self._urg_rx_seen = True  # before bytes_to_rcv grows: see the module docstring
        self.urg_curs = new_prod
        self.urg_state = SmcUrgState.VALID
        if not self.oobinline:
            diff_prod -= 1  # "we'll skip the urgent byte, so don't account for it"
        pos = new_prod.count - 1 if new_prod.count else desc.len - 1
        self.urg_rx_byte = desc.region.read(SMCD_CDC_MSG_SIZE + pos, 1,
                                            f"{self.name} urg_rx_byte")[0]
        return diff_prod

    def _passive_close(self, flags: int) -> None:
        """``smc_close_passive_work``, simplified (caller holds ``sock``)."""
        state = self.sk_state.get()
        if state is SockState.PEERFINCLOSEWAIT and flags & SMC_CONN_ANY_CLOSE:
            self.sk_state.set(SockState.CLOSED)
            self.host.queue_work(self._passive_free)
        elif flags & SMC_CONN_PEER_CONN_ABORT and state is not SockState.CLOSED:
            # smc_close_passive_abort_received: a socket that already sent its done-writing
            # (our own peer_conn_abort was just set) is CLOSED; one still writing PROCESSABORT
            self.sk_state.set(SockState.CLOSED if state in (
                SockState.PEERCLOSEWAIT1, SockState.PEERCLOSEWAIT2, SockState.APPCLOSEWAIT2)
                else SockState.PROCESSABORT)
        elif state is SockState.ACTIVE:
            self.sk_state.set(SockState.APPCLOSEWAIT1)
        elif state is SockState.PEERCLOSEWAIT1:
            self.sk_state.set(SockState.APPFINCLOSEWAIT if flags & SMC_CONN_ANY_CLOSE
                              else SockState.PEERCLOSEWAIT2)
        elif state is SockState.PEERCLOSEWAIT2 and flags & SMC_CONN_ANY_CLOSE:
            self.sk_state.set(SockState.APPFINCLOSEWAIT)

    def recv(self, n: int, *, oob: bool = False, block: bool = True,
             timeout: float | None = None) -> bytes:
        """``smc_rx_recvmsg``: up to ``n`` bytes; ``b""`` at end of stream (or, non-blocking,
        when nothing has arrived: see :attr:`eof`). A non-inline urgent byte is never returned
        in band; with SO_OOBINLINE a read stops one byte short of an unread urgent byte.

        ``oob`` is MSG_OOB (``smc_rx_recv_urg``): the urgent byte, once; ``n == 0`` marks it
        read without returning it (MSG_TRUNC). It never waits.

        Raises:
            BadFd / ConnAborted: the endpoint was closed / aborted by its user.
            Timeout: blocking and nothing arrived within ``timeout`` seconds.
            InvalidArgument: with ``oob``: SO_OOBINLINE is set, or no unread urgent byte is
                there (``urg_state`` not VALID; never EAGAIN, as in 6.12.118).
        """
        self._check_handle("recv")
        if not isinstance(n, int) or n < 0:
            raise SocketError(f"recv: n={n!r}, expected an int >= 0")
        if self._recv_closed():
            return b""
        if oob:
            return self._rx_recv_urg(n)
        box: list[bytearray] = []

        def into(take: int) -> memoryview:
            box.append(bytearray(take))
            return memoryview(box[0])

        self._rx_recvmsg(n, into, block, timeout)
        return bytes(box[0]) if box else b""

    def recv_into(self, buf: Any, *, block: bool = True, timeout: float | None = None) -> int:
        """Like :meth:`recv` into ``buf``; returns the byte count (0 at end of stream)."""
        self._check_handle("recv")
        dst = memoryview(buf).cast("B")
        if self._recv_closed():
            return 0
        return self._rx_recvmsg(len(dst), lambda take: dst[:take], block, timeout)

    def _rx_recvmsg(self, n: int, into: Any, block: bool, timeout: float | None) -> int:
        """The read loop of ``smc_rx_recvmsg``: copy once into ``into(take)``; the byte count.

        The urgent-aware copy runs only once this endpoint has seen urgent flags
        (``_urg_rx_seen``, read *after* ``bytes_to_rcv``: module docstring), under ``sock``.
        """
        with self.rx_user:
            while True:
                gen = self._wake_gen
                avail = self.bytes_to_rcv.get()
                if self._urg_rx_seen:
                    if n == 0:  # target 0: smc_rx_recvmsg returns before looking at data
                        return 0
                    with self.sock:
                        took = self._rx_recvmsg_urg(n, into)
                    if took:
                        return took
                elif avail > 0 or n == 0:
                    break
                if self.eof or not block:
                    return 0
                if self._urg_rx_seen:
                    # smc_rx_recvmsg: sk_wait_event returns on any wake-up of the socket (the
                    # CDC that brings a lone urgent byte wakes it although bytes_to_rcv stays
                    # 0), and the loop's smc_rx_recvmsg_data_available then skips the byte, so
                    # the sender's urg_tx_pend is released while the reader waits on. Measured
                    # on 6.12.118: `python docs/repro/run_repro.py urgent_blocked_reader`.
                    self._wait(lambda: self.bytes_to_rcv.get() > 0 or self.eof
                               or self._wake_gen != gen, timeout, "recv")  # noqa: B023 (called at once)
                    continue
                # (the first urgent flags also end this wait: the urgent loop above takes over)
                self._wait(lambda: self.bytes_to_rcv.get() > 0 or self.eof
                           or self._urg_rx_seen, timeout, "recv")
            take = min(n, avail)
            if take <= 0:
                return 0
            self._rmb_read(into(take), urgent=False)
            return take

    def _rx_recvmsg_urg(self, n: int, into: Any) -> int:
        """One copy of ``smc_rx_recvmsg`` with urgent data (caller holds ``rx_user`` and
        ``sock``); 0 when there is nothing to read."""
        avail = self.bytes_to_rcv.get()
        if avail <= 0:
            # smc_rx_recvmsg_data_available: "we received a single urgent Byte - skip"
            if self.urg_state is SmcUrgState.VALID:
                self._rx_update_consumer(self.tx_cons.get(), 0, urgent=True)
            return 0
        readable = avail
        if self.urg_state is SmcUrgState.VALID and self.oobinline and readable > 1:
            readable -= 1  # "always stop at urgent Byte"
        take = min(n, readable)
        self._rmb_read(into(take), urgent=True)
        return take

    def _rx_recv_urg(self, n: int) -> bytes:
        """``smc_rx_recv_urg``: the urgent byte (EINVAL unless VALID and not inline)."""
        with self.rx_user, self.sock:
            if self.oobinline:
                raise InvalidArgument("recv(oob): SO_OOBINLINE is set, urgent data stays in band")
            if self.urg_state is not SmcUrgState.VALID:
                raise InvalidArgument(f"recv(oob): no unread urgent byte "
                                      f"(urg_state={self.urg_state.name})")
            self.urg_state = SmcUrgState.READ
            if n == 0:
                return b""  # MSG_TRUNC: marked read, no cursor touched
            cons = self.tx_cons.get()
            if curs_diff(self.rmb_len, cons, self.urg_curs) > 1:
                self.urg_rx_skip_pend = True
            # "Urgent Byte was already accounted for, but trigger skipping the urgent byte in
            # non-inline case"
            self._rx_update_consumer(cons, 0, urgent=True)
            return bytes([self.urg_rx_byte])

    def set_oobinline(self, on: bool) -> None:
        """``setsockopt(SOL_SOCKET, SO_OOBINLINE, on)``: SOCK_URGINLINE (``sock_setsockopt``).

        Under ``sock``: the softirq decides by it whether an arriving urgent byte is counted.
        """
        self._check_handle("setsockopt")
        with self.sock:
            self.oobinline = bool(on)

    def atmark(self) -> bool:
        """``ioctl(SIOCATMARK)`` (``smc_ioctl``): False in SMC_INIT / SMC_CLOSED, else whether
        ``smc_curs_diff(cons, urg_curs) == 1``, whatever ``urg_state`` says (a never set
        ``urg_curs`` (0, 0) counts too, as in 6.12.118)."""
        self._check_handle("atmark")
        if self.sk_state.get() in (SockState.INIT, SockState.CLOSED):
            return False
        with self.sock:
            return curs_diff(self.rmb_len, self.tx_cons.get(), self.urg_curs) == 1

    @property
    def urgent_pending(self) -> bool:
        """smc_poll's EPOLLPRI: an urgent byte is VALID (not read yet); a lock-free peek, as
        poll is."""
        return self.urg_state is SmcUrgState.VALID

    def _recv_closed(self) -> bool:
        """``smc_recvmsg`` on an SMC_CLOSED socket: end of stream at once if RCV_SHUTDOWN is set,
        even with unread data in the ring (the peer's abort closed a socket that had shut down,
        or a kill after the peer's close; seen on 6.12.118 under qemu), else ``-ENOTCONN``.
        Returns True for end of stream; False when the socket is not CLOSED."""
        if self.sk_state.get() is not SockState.CLOSED:
            return False
        if self.sk_shutdown.get() & RCV_SHUTDOWN:
            return True
        raise NotConnected("recv: the socket is SMC_CLOSED")

    def _rmb_read(self, dst: memoryview, *, urgent: bool) -> None:
        """Copy out of our ring at ``local_tx_ctrl.cons`` and consume (caller holds rx_user;
        ``urgent``: the urgent-aware path, caller holds ``sock`` too)."""
        desc = self.rmb_desc
        assert desc is not None
        n = len(dst)
        cons = self.tx_cons.get()
        first = min(n, desc.len - cons.count)
        desc.region.read_into(SMCD_CDC_MSG_SIZE + cons.count, dst[:first], f"{self.name} app")
        if first < n:
            desc.region.read_into(SMCD_CDC_MSG_SIZE, dst[first:], f"{self.name} app")
        if self.rt.observing:
            self.rt.observe("app_read", conn=self, off=cons.count, n=n)
        self.bytes_recv_total += n
        self.bytes_to_rcv.add(-n)
        self._rx_update_consumer(cons, n, urgent=urgent)

    def _rx_update_consumer(self, cons: HostCursor, n: int, *, urgent: bool) -> None:
        """``smc_rx_update_consumer``: ``cons`` + ``n`` becomes our consumer cursor; on the
        urgent path (caller holds ``sock``) a non-inline urgent byte right after it is skipped,
        and ``urg_state`` becomes READ once a read reaches (inline) or passes it."""
        rmb_len = self.rmb_len
        new = curs_add(rmb_len, cons, n)
        force = False
        if urgent and (self.urg_state is SmcUrgState.VALID or self.urg_rx_skip_pend):
            diff = curs_comp(rmb_len, new, self.urg_curs)
            if self.oobinline:
                if diff == 0:
                    force = True
                    self.urg_state = SmcUrgState.READ
            elif diff == 1:  # skip the urgent byte
                force = True
                new = curs_add(rmb_len, new, 1)
                self.urg_rx_skip_pend = False
            elif diff < -1:  # "we read past urgent byte"
                self.urg_state = SmcUrgState.READ
        self.tx_cons.set(new)
        self.tx_consumer_update(force=force)

    def tx_consumer_update(self, force: bool) -> None:
        """``smc_tx_consumer_update``."""
        rmb_len = self.rmb_len
        cons = self.tx_cons.get()
        cfed = self.rx_curs_confirmed.get()
        to_confirm = curs_diff(rmb_len, cfed, cons)
        sender_free = rmb_len
        if to_confirm > self.rmbe_update_limit:
            prod = self.rx_prod.get()
            sender_free = rmb_len - curs_diff_large(rmb_len, cfed, prod)
        pf = self.rx_prod_flags.get()
        if (pf & SMC_PROD_CONS_CURS_UPD_REQ or force
                or (to_confirm > self.rmbe_update_limit
                    and (sender_free <= rmb_len // 2 or pf & SMC_PROD_WRITE_BLOCKED))):
            if self.killed.get() or self.rx_conn_flags.get() & SMC_CONN_PEER_CONN_ABORT:
                return
            if self.cdc_get_slot_and_msg_send() < 0 and not self.killed.get():
                self.tx_work_pending = True
                return
        pf = self.rx_prod_flags.get()
        if pf & SMC_PROD_WRITE_BLOCKED and not self.bytes_to_rcv.get():
            self.rx_prod_flags.set(pf & ~SMC_PROD_WRITE_BLOCKED)

    @property
    def eof(self) -> bool:
        """Nothing left to read and the peer sends no more (or, as ``smc_recvmsg`` has it, the
        socket is SMC_CLOSED with RCV_SHUTDOWN: unread data is not returned)."""
        shut = bool(self.sk_shutdown.get() & RCV_SHUTDOWN)
        if shut and self.sk_state.get() is SockState.CLOSED:
            return True
        return self.bytes_to_rcv.get() == 0 and bool(shut or self.killed.get() or self.freed)

    # ================================================================ close, abort, free

    def shutdown(self) -> None:
        """``smc_shutdown(SHUT_WR)``: ``peer_done_writing``, then the TCP connection's FIN.

        Raises:
            NotConnected: the socket's state does not allow a shutdown (the peer aborted, ...),
                or a repeated shutdown finds the TCP connection closed both ways.
        """
        self._check_handle("shutdown")
        with self.tx_user, self.sock:
            if self.sk_state.get() not in SHUTDOWN_STATES:
                raise NotConnected(f"shutdown: socket state {self.sk_state.peek().name}")
            if self.sk_shutdown.get() & SEND_SHUTDOWN:
                self.clcsock.shutdown_write(strict=True)
                return
            self.tx_pending()  # smc_close_stream_wait, without waiting
            self.tx_conn_flags.set(self.tx_conn_flags.get() | SMC_CONN_PEER_DONE_WRITING)
            self.cdc_get_slot_and_msg_send()
            self.sk_shutdown.set(self.sk_shutdown.get() | SEND_SHUTDOWN)
            state = self.sk_state.get()
            if state is SockState.ACTIVE:
                self.sk_state.set(SockState.PEERCLOSEWAIT1)
            elif state is SockState.APPCLOSEWAIT1:
                self.sk_state.set(SockState.APPCLOSEWAIT2)
        self._wake()
        self.clcsock.shutdown_write(strict=True)

    def close(self) -> None:
        """Final close: ``peer_conn_closed`` (``peer_conn_abort`` with unread data)."""
        self._check_handle("close")
        free_now = False
        with self.tx_user, self.sock:
            was_active = self.sk_state.get() is SockState.ACTIVE
            self.user_closed = True
            if not self.killed.get() and self.rx_protocol_error is None:
                self.tx_pending()
                flag = (SMC_CONN_PEER_CONN_ABORT if self.bytes_to_rcv.get()
                        else SMC_CONN_PEER_CONN_CLOSED)
                self.tx_conn_flags.set(self.tx_conn_flags.get() | flag)
                self.cdc_get_slot_and_msg_send()
            self.sk_shutdown.set(self.sk_shutdown.get() | SEND_SHUTDOWN | RCV_SHUTDOWN)
            if self.killed.get() or self.rx_conn_flags.get() & SMC_CONN_ANY_CLOSE:
                self.sk_state.set(SockState.CLOSED)
                free_now = True
            else:
                self.sk_state.set(SockState.PEERFINCLOSEWAIT)
        # an active close from ACTIVE shuts the TCP side down; a closed socket releases it
        if was_active or free_now:
            self.clcsock.shutdown_write(strict=False)
        if free_now:
            self.conn_free()
        self._wake()

    def _passive_free(self) -> None:
        """Close work after the peer's close: free, release the TCP connection."""
        self.conn_free()
        self.clcsock.shutdown_write(strict=False)

    def abort(self) -> None:
        """``smc_conn_kill`` on user request: ``peer_conn_abort``, then tear down."""
        self._check_handle("abort")
        with self.tx_user, self.sock:
            self.user_aborted = True
        self.conn_kill()

    def conn_kill(self) -> None:
        """``smc_conn_kill``: abort to the peer, ``killed``, unset, drain, detach, unregister."""
        if self.freed:
            return
        if not self.killed.get():
            self.tx_conn_flags.set(self.tx_conn_flags.get() | SMC_CONN_PEER_CONN_ABORT)
            self.cdc_get_slot_and_msg_send()
        self.killed.set(True)
        self.clcsock.abort()
        desc = self.rmb_desc
        if desc is not None:
            self.dev.set_killed(desc.sba_idx, desc.token)
        self.sk_err.set(_errno.ECONNABORTED)
        self.sk_shutdown.set(SEND_SHUTDOWN | RCV_SHUTDOWN)
        self._wake()
        if desc is not None:
            self.host.unset_conn(self, desc)
            self.host.tasklet_kill(self)
        self._buf_detach()
        self._lgr_unregister()
        self.sk_state.set(SockState.CLOSED)
        self.freed = True
        self.free_done = True
        if self.rt.observing:
            self.rt.observe("conn_freed", conn=self)

    def conn_free(self) -> None:
        """``smc_conn_free`` (6.12.118 order)."""
        if self.freed:
            return
        self.freed = True
        if self.registered:
            desc = self.rmb_desc
            assert desc is not None
            self._unset_and_drain(desc)
            self._buf_detach()
            if not self.lgr.freeing:
                self.lgr.buf_unuse(desc)
            self._lgr_unregister()
        self.free_done = True
        if self.rt.observing:
            self.rt.observe("conn_freed", conn=self)
        self._wake()

    def _unset_and_drain(self, desc: DmbDesc) -> None:
        """Unregister from ``smcd->conn[]`` first, then drain the rx tasklet (36cdf5d48ca1)."""
        self.host.unset_conn(self, desc)
        self.host.tasklet_kill(self)

    def _buf_detach(self) -> None:
        """``smcd_buf_detach``: drop the ghost sndbuf's reference on the peer DMB."""
        if self.mode is not SmcdMode.MERGED or not self.ghost_token:
            return
        token, self.ghost_token = self.ghost_token, 0
        self.sndbuf = None
        with contextlib.suppress(DeviceOpError):  # the kernel ignores detach errors too
            self.dev.detach_dmb(token)

    def _lgr_unregister(self) -> None:
        with self.host.lock:
            self.lgr.conns.discard(id(self))
        self.registered = False

    def _why_no_send(self) -> str:
        if self.sk_shutdown.peek() & SEND_SHUTDOWN:
            return "send: the endpoint was shut down for writing"
        err = self.sk_err.peek()
        if err:
            return f"send: pending socket error {_errno.errorcode.get(err, err)}"
        return "send: the connection was killed"

    # ================================================================ observation

    def snapshot(self) -> dict[str, Any]:
        """Every cursor, counter and flag as plain values (no yield points; smc_diag-like)."""
        def c(cell: Cell) -> tuple[int, int]:
            v = cell.peek()
            return (v.wrap, v.count)
        desc = self.rmb_desc
        return {
            "mode": self.mode.value, "name": self.name,
            "tx_curs_prep": c(self.tx_curs_prep), "tx_curs_sent": c(self.tx_curs_sent),
            "tx_curs_fin": c(self.tx_curs_fin), "prod": c(self.tx_prod),
            "cons": c(self.tx_cons), "peer_prod": c(self.rx_prod),
            "peer_cons": c(self.rx_cons), "rx_curs_confirmed": c(self.rx_curs_confirmed),
            "tx_prod_flags": self.tx_prod_flags.peek(),
            "tx_conn_flags": self.tx_conn_flags.peek(),
            "rx_prod_flags": self.rx_prod_flags.peek(),
            "rx_conn_flags": self.rx_conn_flags.peek(),
            "sndbuf_space": self.sndbuf_space.peek(),
            "peer_rmbe_space": self.peer_rmbe_space.peek(),
            "bytes_to_rcv": self.bytes_to_rcv.peek(),
            "sndbuf_len": self.sndbuf_len, "rmb_len": self.rmb_len,
            "peer_rmbe_size": self.peer_rmbe_size,
            "rmb_token": desc.token if desc else 0, "peer_token": self.peer_token,
            "ghost_token": self.ghost_token,
            "sk_state": int(self.sk_state.peek()), "sk_shutdown": self.sk_shutdown.peek(),
            "sk_err": self.sk_err.peek(), "killed": bool(self.killed.peek()),
            "freed": self.freed, "free_done": self.free_done,
            "bytes_sent_total": self.bytes_sent_total,
            "bytes_recv_total": self.bytes_recv_total,
            "urg_state": int(self.urg_state),
            "urg_curs": (self.urg_curs.wrap, self.urg_curs.count),
            "urg_rx_byte": self.urg_rx_byte, "urg_rx_skip_pend": self.urg_rx_skip_pend,
            "urg_tx_pend": bool(self.urg_tx_pend.peek()), "oobinline": self.oobinline,
        }

    def __repr__(self) -> str:
        return f"<ShmConnection {self.name} {self.mode.value} state={self.sk_state.peek()!r}>"


__all__ = [
    "RCV_SHUTDOWN", "SEND_SHUTDOWN", "SMC_CDC_MSG_TYPE", "SMC_CONN_PEER_CONN_CLOSED",
    "BadFd", "ConnAborted", "ConnReset", "InvalidArgument", "NotConnected", "PipeError",
    "ShmConnection", "SmcUrgState", "SmcdMode",
    "SockState", "SocketError", "Timeout", "WouldBlock", "rmb_wnd_update_limit",
]
