"""SMC-D connections over loopback-ism, moving real bytes (Linux 6.12.118 net/smc).

Theory of operation
-------------------
:class:`SmcdConnection` is one endpoint: the parts of ``struct smc_connection`` and
``struct smc_sock`` that the SMC-D data path uses, with the kernel's functions as methods
(``smc_tx_sendmsg`` -> :meth:`send`, ``smc_rx_recvmsg`` -> :meth:`recv`, ``smcd_cdc_msg_send`` ->
:meth:`_cdc_msg_send`, ``smcd_cdc_rx_tsklet`` -> :meth:`_rx_tasklet`, ...).
:func:`open_pair` plays the CLC handshake's part: it creates both DMBs through the link groups,
exchanges tokens (``smcd_conn_save_peer_info``) and, in merged mode, attaches each side's ghost
sndbuf to the peer's DMB (``smcd_buf_attach``).

Data path (one direction; sources: smc_tx.c, smc_cdc.c, smc_rx.c, smc_cdc.h):

* ``send`` copies user bytes into the sndbuf at ``tx_curs_prep`` (two chunks at the ring end),
  ``sndbuf_space -= n``, then ``_tx_sndbuf_nonempty``: ``_tx_rdma_writes`` moves
  ``min(prepared, peer_rmbe_space)`` bytes with ``move_data(sf=0)`` to DMB offset ``32 + prod``
  (split as the kernel splits it: by ``prod.wrap == local_rx_ctrl.cons.wrap`` and at the sndbuf
  end), advances ``local_tx_ctrl.prod`` and ``tx_curs_sent`` and lowers ``peer_rmbe_space``; then
  ``_cdc_msg_send`` writes the 32-byte ``struct smcd_cdc_msg`` (little-endian host order, flags in
  the cons cursor's spare bytes) to DMB offset 0 with ``sf=1``.  Copy mode frees sndbuf space right
  after that CDC; merged mode does not.
* In **merged** mode the sndbuf *is* the peer's data ring (a ``memoryview`` of the peer DMB from
  ``attach_dmb``): ``send`` writes straight into the peer DMB, the sf=0 moves are no-ops in the
  device, and sndbuf space comes back only when the peer's consumer cursor moves
  (``diff_tx`` in ``_cdc_msg_recv_action``).
* The receiver's tasklet reads the header from its own DMB, copies the cursors into
  ``local_rx_ctrl`` and applies ``smc_cdc_msg_recv_action``: ``peer_rmbe_space += diff_cons``,
  ``bytes_to_rcv += diff_prod``, kick own sender, close/abort flags.
* ``recv`` copies from ``32 + local_tx_ctrl.cons``, advances ``local_tx_ctrl.cons`` and runs
  ``smc_tx_consumer_update`` (``rmbe_update_limit``, ``diff_large``, ``write_blocked``).

Cursor arithmetic is the kernel's (``smc_curs_add`` / ``smc_curs_diff`` / ``smc_curs_diff_large``,
16-bit wrap, 32-bit count) in small overridable methods so mutants can replace it.

Tasklets: a CDC write queues the receiver's rx tasklet; it runs when the outermost public call
returns (see :mod:`smcd_check.model.device`), so ``a.send(x)`` has delivered the CDC to ``b``
when it returns.  With ``LoopbackIsm(sync_tasklets=False)`` call ``dev.run_pending()`` yourself.

Deliberate hardening (beyond 6.12.118): a received CDC is validated (:meth:`_cdc_rx_validate`:
type byte, counts inside the rings, producer not past our free space, consumer not past what we
sent).  6.12.118 copies the peer's cursors unchecked; set ``validate_peer_cdc = False`` on a
subclass (or the instance) for the kernel's behaviour.  A rejected CDC kills the connection
(abort to the peer) and the next call raises :class:`ProtocolViolation`.

Close/abort (smc_close.c, simplified): ``shutdown`` sends ``peer_done_writing``; ``close``
flushes what the peer has room for (non-blocking ``smc_close_stream_wait``), sends
``peer_conn_closed`` (``peer_conn_abort`` if unread data remains, ``smc_close_final``), and frees
the connection at once if the peer already closed, else when the peer's close arrives (the socket
handle is dead either way).  ``abort`` is ``smc_conn_kill``: send ``peer_conn_abort``, ``killed``,
detach, unregister; the killed connection's DMB is not reused (no ``smc_buf_unuse``) until the link
group is freed.

Urgent data (MSG_OOB; smc_tx.c, smc_cdc.c, smc_rx.c, af_smc.c), both directions alike:

* ``send(data, oob=True)`` is ``smc_tx_sendmsg`` with MSG_OOB: every pass of its loop sets
  ``urg_data_pending`` in ``local_tx_ctrl.prod_flags`` *before* the space check (so an OOB send
  that returns 0 still leaves it set), stops at once while ``urg_tx_pend`` is set (the sender's
  wait while urgent data is staged; non-blocking, so 0), and sets ``urg_tx_pend`` only when the
  whole message was copied: only the last byte of a *complete* MSG_OOB send is urgent.  A
  partial OOB send marks no byte and leaves ``urg_data_pending`` set.
* ``_tx_rdma_writes`` sets ``urg_data_present`` when the move takes everything prepared
  (``len == to_send``); ``smcd_tx_sndbuf_nonempty`` skips the moves while it is set and clears
  both flags after the CDC that carries them.  ``urg_tx_pend`` is cleared on a CDC that moves
  the peer's consumer cursor and leaves ``peer_rmbe_space == peer_rmbe_size``
  (``smc_cdc_msg_recv_action``): the peer consumed everything, the urgent byte included.
* The receiver (``smc_cdc_handle_urg_data_arrival``): new data with ``urg_data_present`` sets
  ``urg_curs = prod``, ``urg_state = VALID``, ``urg_rx_byte`` = the byte before ``prod``, and
  without ``oobinline`` does not count the urgent byte in ``bytes_to_rcv``; a CDC without new
  data but with ``urg_data_pending`` sets ``urg_state = NOTYET``.
* ``recv(n, oob=True)`` is ``smc_rx_recv_urg``: EINVAL unless ``urg_state`` is VALID and
  ``oobinline`` is off (so never EAGAIN: that tail of the kernel function is unreachable);
  ``urg_state = READ``; ``n == 0`` returns nothing (MSG_TRUNC) and touches no cursor.
* ``smc_rx_update_consumer``: while VALID (or a skip is pending), non-inline skips the urgent
  byte when the consumer cursor lands just before it and forces a window update; inline marks
  READ when the cursor passes it; ``recv`` stops one byte short while an inline urgent byte is
  VALID (``readable--``), and a read that finds no data but a VALID urgent byte runs the skip
  (``smc_rx_recvmsg_data_available``).
* ``atmark()`` is SIOCATMARK: ``smc_curs_diff(cons, urg_curs) == 1``, whatever ``urg_state``
  says; ``oobinline`` is SO_OOBINLINE (SOCK_URGINLINE on the SMC socket); ``urgent_pending`` is
  smc_poll's EPOLLPRI (``urg_state == VALID``).
* Kept as 6.12.118 has them (tests/model/test_model_urgent.py, ``*_like_6_12_118``): a lone
  urgent byte read out of band first, or ``recv(0, oob=True)``, is never skipped (the sender stays
  staged); a refused OOB send's leftover ``urg_data_pending`` turns the peer's urgent byte NOTYET;
  ``smc_curs_comp`` across the wrap overflow misses a skip, or makes one for a byte that is not
  urgent (a stale VALID state at ``urg_curs`` (0xffff, 0)), losing data.

Not modelled: corking (6.12 never corks SMC-D without MSG_MORE/TCP_CORK),
blocking waits and timeouts (every call is non-blocking), the retry of a failed window update
(``tx_work`` is only flagged), smaller-size fallback when a DMB cannot be registered, the CLC
handshake itself (see spec/), the full close state machine (``sk_state`` is a simplified view with
the kernel's numeric values).
"""

from __future__ import annotations

import contextlib
import errno as _errno
import struct
from dataclasses import asdict, dataclass
from enum import IntEnum, StrEnum
from typing import Any, ClassVar

from smcd_check.model.device import (
    BrokenPipe,
    DeviceOpError,
    InvalidArgument,
    LoopbackIsm,
)
from smcd_check.model.errors import ModelError
from smcd_check.model.lgr import (
    SMCD_CDC_MSG_SIZE,
    SmcBufDesc,
    SmcdLinkGroup,
    smc_conn_create,
)

#: ``SMC_CDC_MSG_TYPE`` (common.type of every CDC message)
SMC_CDC_MSG_TYPE = 0xFE
#: ``SOCK_MIN_SNDBUF`` = 2 * (2048 + SKB_DATA_ALIGN(sizeof(struct sk_buff))), usual x86_64 value
SOCK_MIN_SNDBUF = 4608
#: SMC-D buffer sizes: 16 KiB * 2**k, k = 0..6 (smc_compress_bufsize, SMCD max index 6)
SMCD_BUF_SIZES: tuple[int, ...] = tuple(16384 << k for k in range(7))
#: the wrap field is a u16
WRAP_MASK = 0xFFFF
#: the count field is a u32
COUNT_MASK = 0xFFFF_FFFF

# prod_flags bits (wire bit values, net/smc/smc.h)
SMC_PROD_WRITE_BLOCKED = 0x80
SMC_PROD_URG_DATA_PENDING = 0x40
SMC_PROD_URG_DATA_PRESENT = 0x20
SMC_PROD_CONS_CURS_UPD_REQ = 0x10
#: SMC-R only (link failover); an SMC-D CDC never carries it (rejected as reserved here)
SMC_PROD_FAILOVER_VALIDATION = 0x08
# conn_state_flags bits
SMC_CONN_PEER_DONE_WRITING = 0x80
SMC_CONN_PEER_CONN_CLOSED = 0x40
SMC_CONN_PEER_CONN_ABORT = 0x20
SMC_CONN_ANY_CLOSE = SMC_CONN_PEER_CONN_CLOSED | SMC_CONN_PEER_CONN_ABORT
SMC_CONN_ANY_CLOSE_OR_SENDDONE = SMC_CONN_ANY_CLOSE | SMC_CONN_PEER_DONE_WRITING

# sk_shutdown bits (include/net/sock.h)
RCV_SHUTDOWN = 1
SEND_SHUTDOWN = 2

#: struct smcd_cdc_msg: type, res1[7], prod {u16 wrap, u32 count, u8, u8},
#: cons {u16 wrap, u32 count, u8 prod_flags, u8 conn_state_flags}, res3[8]; host order (LE)
_SMCD_CDC = struct.Struct("<B7xHIBBHIBB8x")
assert _SMCD_CDC.size == SMCD_CDC_MSG_SIZE


class SmcdMode(StrEnum):
    """How the sender's sndbuf relates to the peer DMB."""

    #: own sndbuf; data moved into the peer DMB by move_data (v6.10 loopback, ISM)
    COPY = "copy"
    #: ghost sndbuf = the peer's data ring; no data moves (v6.11+ loopback "nocopy")
    MERGED = "merged"


class SmcRole(IntEnum):
    CLIENT = 0
    SERVER = 1


class SmcUrgState(IntEnum):
    """``conn->urg_state`` with the kernel's values (net/smc/smc.h ``enum smc_urg_state``).

    There is no "none": ``smc_rx_init`` starts every connection in READ.
    """

    #: an urgent byte arrived and was not read yet (EPOLLPRI; ``recv(oob=True)`` returns it)
    VALID = 1
    #: the peer announced urgent data (``urg_data_pending``) that has not arrived yet
    NOTYET = 2
    #: the urgent byte was read, or none ever came
    READ = 3


class SmcSockState(IntEnum):
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
    PEERABORTWAIT = 26
    PROCESSABORT = 27


# --------------------------------------------------------------------------------------------
# errors of the socket-level API


class SocketClosed(DeviceOpError):
    """EBADF: the endpoint was closed by its user."""

    errno_name = "EBADF"


class ConnectionReset(DeviceOpError):
    """ECONNRESET: the peer closed or aborted the connection."""

    errno_name = "ECONNRESET"


class NotConnected(DeviceOpError):
    """ENOTCONN: ``shutdown(2)`` on a socket past the states that allow it, or whose TCP
    connection (the CLC socket) is already closed both ways (``inet_shutdown`` on TCP_CLOSE)."""

    errno_name = "ENOTCONN"


class ConnectionAborted(DeviceOpError):
    """ECONNABORTED: this endpoint was aborted (killed)."""

    errno_name = "ECONNABORTED"


class ProtocolViolation(DeviceOpError):
    """EPROTO: the peer wrote a CDC message that cannot be true (see ``_cdc_rx_validate``)."""

    errno_name = "EPROTO"


#: states from which ``smc_close_active_abort`` frees a killed connection at once
FREE_AT_KILL = frozenset({
    SmcSockState.PEERCLOSEWAIT1, SmcSockState.PEERCLOSEWAIT2, SmcSockState.PEERFINCLOSEWAIT,
    SmcSockState.PROCESSABORT, SmcSockState.APPFINCLOSEWAIT,
})

#: states in which ``smc_shutdown`` goes on (net/smc/af_smc.c); any other is -ENOTCONN
SHUTDOWN_STATES = frozenset({
    SmcSockState.ACTIVE, SmcSockState.PEERCLOSEWAIT1, SmcSockState.PEERCLOSEWAIT2,
    SmcSockState.APPCLOSEWAIT1, SmcSockState.APPCLOSEWAIT2, SmcSockState.APPFINCLOSEWAIT,
})


class Clcsock:
    """The TCP connection under an SMC socket (the CLC socket), as ``shutdown(2)`` sees it.

    SMC-D keeps the TCP connection of the handshake open; the SMC close paths shut it down
    (``kernel_sock_shutdown`` in ``smc_shutdown`` and ``smc_close_active``) and release it when the
    SMC socket reaches SMC_CLOSED (``tcp_close``: a FIN if none was sent). Once this end sent its
    FIN and got the peer's, or after a reset, the socket is in TCP_CLOSE and ``inet_shutdown``
    answers -ENOTCONN.
    """

    def __init__(self) -> None:
        self.peer: Clcsock | None = None
        self.fin_sent = False
        self.fin_rcvd = False
        self.reset = False

    @property
    def tcp_close(self) -> bool:
        return self.reset or (self.fin_sent and self.fin_rcvd)

    def send_fin(self) -> None:
        if self.fin_sent or self.tcp_close:
            return
        self.fin_sent = True
        if self.peer is not None:
            self.peer.fin_rcvd = True

    def abort(self) -> None:
        """``tcp_abort``: a reset closes both ends."""
        if self.tcp_close:
            return
        self.reset = True
        if self.peer is not None:
            self.peer.reset = True


class ModeMismatch(InvalidArgument):
    """The requested mode does not match what the device supports."""


class RingOverrun(ModelError):
    """The implementation was about to write or read past a ring's end (memory corruption)."""


# --------------------------------------------------------------------------------------------
# cursors and CDC messages


@dataclass(frozen=True, slots=True)
class SmcHostCursor:
    """``union smc_host_cursor``: (wrap u16, count u32); the ring size is the caller's."""

    wrap: int = 0
    count: int = 0


@dataclass(slots=True)
class SmcHostCdcMsg:
    """``struct smc_host_cdc_msg``: ``local_tx_ctrl`` / ``local_rx_ctrl`` of a connection."""

    prod: SmcHostCursor
    cons: SmcHostCursor
    prod_flags: int = 0
    conn_state_flags: int = 0


@dataclass(frozen=True, slots=True, kw_only=True)
class SmcdCdcMsg:
    """A decoded ``struct smcd_cdc_msg`` (what the receiver's tasklet reads from its DMB)."""

    type: int
    prod: SmcHostCursor
    cons: SmcHostCursor
    prod_flags: int  #: from the cons cursor's first spare byte (offset 22)
    conn_state_flags: int  #: from the cons cursor's second spare byte (offset 23)

    def pack(self) -> bytes:
        return _SMCD_CDC.pack(
            self.type,
            self.prod.wrap,
            self.prod.count,
            0,
            0,
            self.cons.wrap,
            self.cons.count,
            self.prod_flags,
            self.conn_state_flags,
        )

    @classmethod
    def unpack(cls, raw: bytes | bytearray | memoryview) -> SmcdCdcMsg:
        t, pw, pc, _pf, _cf, cw, cc, flags, cstate = _SMCD_CDC.unpack(raw)
        return cls(
            type=t,
            prod=SmcHostCursor(pw, pc),
            cons=SmcHostCursor(cw, cc),
            prod_flags=flags,
            conn_state_flags=cstate,
        )


@dataclass(frozen=True, slots=True, kw_only=True)
class ConnSnapshot:
    """An endpoint's cursors, spaces and flags as plain ints (smc_diag-like).

    Cursor pairs are ``<name>_wrap`` / ``<name>_count``.  ``tx_prod`` / ``tx_cons`` are
    ``local_tx_ctrl``, ``rx_prod`` / ``rx_cons`` are ``local_rx_ctrl``.  The ``*_total`` fields are
    the model's unbounded byte counters (the abstract view), not kernel fields.
    """

    mode: int  #: 0 copy, 1 merged
    role: int  #: 0 client, 1 server
    sk_state: int
    sk_shutdown: int
    sk_err: int
    killed: int
    freed: int
    rmb_token: int
    rmb_sba_idx: int
    rmb_len: int  #: bytes of our data ring (DMB size - 32)
    peer_token: int
    peer_rmbe_idx: int
    peer_rmbe_size: int  #: bytes of the peer's data ring
    sndbuf_len: int  #: 0 once the sndbuf is gone
    tx_prep_wrap: int
    tx_prep_count: int
    tx_sent_wrap: int
    tx_sent_count: int
    tx_fin_wrap: int
    tx_fin_count: int
    tx_prod_wrap: int
    tx_prod_count: int
    tx_cons_wrap: int
    tx_cons_count: int
    tx_prod_flags: int
    tx_conn_state_flags: int
    rx_prod_wrap: int
    rx_prod_count: int
    rx_cons_wrap: int
    rx_cons_count: int
    rx_prod_flags: int
    rx_conn_state_flags: int
    confirmed_wrap: int
    confirmed_count: int
    peer_rmbe_space: int  #: bytes
    sndbuf_space: int  #: bytes
    bytes_to_rcv: int  #: bytes
    rmbe_update_limit: int  #: bytes
    tx_prep_total: int  #: bytes accepted by send()
    tx_sent_total: int  #: bytes announced to the peer (producer cursor)
    tx_acked_total: int  #: bytes the peer's consumer cursor has passed
    rx_prod_total: int  #: bytes the peer announced to us
    rx_cons_total: int  #: bytes our consumer cursor passed (recv() returned + urgent skipped)
    user_bytes_in: int  #: bytes copied from the user into the sndbuf (or ghost sndbuf)
    user_bytes_out: int  #: bytes copied from the DMB to the user
    urg_state: int  #: SmcUrgState value
    urg_curs_wrap: int
    urg_curs_count: int
    urg_rx_byte: int  #: the last urgent byte received (0 before any)
    urg_rx_skip_pend: int
    urg_tx_pend: int
    oobinline: int  #: SO_OOBINLINE (SOCK_URGINLINE)
    rx_urg_skipped_total: int  #: urgent bytes our consumer cursor skipped (non-inline)

    def as_dict(self) -> dict[str, int]:
        return asdict(self)


# --------------------------------------------------------------------------------------------
# the connection


class SmcdConnection:
    """One SMC-D endpoint (``struct smc_connection`` + the ``smc_sock`` bits it needs).

    Build pairs with :func:`open_pair`; the constructor alone makes an unconnected endpoint.

    Args:
        dev: the loopback-ism device.
        lgr: this side's link group.
        mode: copy or merged.
        role: client or server (informational).
        sock_min_sndbuf: ``SOCK_MIN_SNDBUF`` used for ``rmbe_update_limit``.
    """

    #: validate received CDC messages (hardening; 6.12.118 does not)
    validate_peer_cdc: ClassVar[bool] = True

    def __init__(
        self,
        dev: LoopbackIsm,
        lgr: SmcdLinkGroup,
        *,
        mode: SmcdMode,
        role: SmcRole = SmcRole.CLIENT,
        sock_min_sndbuf: int = SOCK_MIN_SNDBUF,
    ) -> None:
        self.smcd = dev
        self.lgr = lgr
        self.mode = mode
        self.role = role
        self.sock_min_sndbuf = sock_min_sndbuf
        self.alert_token_local = 0
        self.lgr_held = False
        #: this endpoint created its link group (``ini->first_contact_local``)
        self.first_contact = False
        self.rmb_desc: SmcBufDesc | None = None
        self.sndbuf_desc: SmcBufDesc | None = None
        self.peer_token = 0
        self.peer_rmbe_idx = 0
        self.peer_rmbe_size = 0
        self.tx_off = 0
        self.rx_off = SMCD_CDC_MSG_SIZE
        zero = SmcHostCursor(0, 0)
        self.tx_curs_prep = zero
        self.tx_curs_sent = zero
        self.tx_curs_fin = zero
        self.local_tx_ctrl = SmcHostCdcMsg(prod=zero, cons=zero)
        self.local_rx_ctrl = SmcHostCdcMsg(prod=zero, cons=zero)
        self.rx_curs_confirmed = zero
        self.peer_rmbe_space = 0
        self.sndbuf_space = 0
        self.bytes_to_rcv = 0
        self.rmbe_update_limit = 0
        self.killed = False
        self.freed = False
        self.sk_err = 0
        self.sk_shutdown = 0
        self.sk_state = SmcSockState.INIT
        self.user_closed = False
        self.user_aborted = False
        self.clcsock = Clcsock()
        self.tx_work_pending = False
        self.rx_protocol_error: str | None = None
        self.tx_prep_total = 0
        self.tx_sent_total = 0
        self.tx_acked_total = 0
        self.rx_prod_total = 0
        self.rx_cons_total = 0
        self.user_bytes_in = 0
        self.user_bytes_out = 0
        # urgent data (smc_rx_init: urg_state = SMC_URG_READ)
        self.urg_state = SmcUrgState.READ
        self.urg_curs = zero  #: own ring: the position just after the urgent byte
        self.urg_rx_byte = 0
        self.urg_rx_skip_pend = False
        self.urg_tx_pend = False
        #: SO_OOBINLINE: urgent bytes stay in the data stream (SOCK_URGINLINE)
        self.oobinline = False
        self.rx_urg_skipped_total = 0

    # ================================================================ cursor arithmetic

    def _curs_add(self, size: int, curs: SmcHostCursor, value: int) -> SmcHostCursor:
        """``smc_curs_add``: one subtraction at the ring end; wrap is a u16."""
        count = (curs.count + value) & COUNT_MASK
        wrap = curs.wrap
        if count >= size:
            wrap = (wrap + 1) & WRAP_MASK
            count -= size
        return SmcHostCursor(wrap, count)

    def _curs_diff(self, size: int, old: SmcHostCursor, new: SmcHostCursor) -> int:
        """``smc_curs_diff``: bytes from ``old`` to ``new`` (any wrap difference = one lap)."""
        if old.wrap != new.wrap:
            return max(0, (size - old.count) + new.count)
        return max(0, new.count - old.count)

    def _curs_diff_large(self, size: int, old: SmcHostCursor, new: SmcHostCursor) -> int:
        """``smc_curs_diff_large``: counts extra laps, capped at ``size``."""
        if old.wrap < new.wrap:
            return min((size - old.count) + new.count + (new.wrap - old.wrap - 1) * size, size)
        if old.wrap > new.wrap:  # wrap overflowed 0xffff -> 0
            return min((size - old.count) + new.count + (new.wrap + 0xFFFF - old.wrap) * size, size)
        return max(0, new.count - old.count)

    def _curs_comp(self, size: int, old: SmcHostCursor, new: SmcHostCursor) -> int:
        """``smc_curs_comp``: signed ``new - old``; the sign comes from a plain wrap compare, so
        it is wrong across the 0xffff -> 0 overflow."""
        if old.wrap > new.wrap or (old.wrap == new.wrap and old.count > new.count):
            return -self._curs_diff(size, new, old)
        return self._curs_diff(size, old, new)

    @staticmethod
    def _curs_distance(size: int, old: SmcHostCursor, new: SmcHostCursor) -> int:
        """Exact forward distance in bytes from ``old`` to ``new`` modulo 65536 laps (model's)."""
        span = (WRAP_MASK + 1) * size
        return ((new.wrap * size + new.count) - (old.wrap * size + old.count)) % span

    @staticmethod
    def _rmb_wnd_update_limit(length: int, sock_min_sndbuf: int) -> int:
        """``smc_rmb_wnd_update_limit`` (6.12.118: max, not the v5.x min)."""
        return max(length // 10, sock_min_sndbuf // 2)

    # ================================================================ setup (open_pair)

    def _buf_create(self, dmb_size: int, sndbuf_size: int | None) -> None:
        """``smc_buf_create`` for SMC-D: our DMB (reused or new) and, in copy mode, a sndbuf."""
        rmb = self.lgr.get_dmb(dmb_size)
        self.rmb_desc = rmb
        self.bytes_to_rcv = 0
        self.rmbe_update_limit = self._rmb_wnd_update_limit(rmb.len, self.sock_min_sndbuf)
        self.smcd.set_conn(rmb.sba_idx, self)
        self.lgr.register_conn(self)
        self.lgr.hold()  # smc_lgr_hold in smc_conn_create, put in smc_conn_free
        self.lgr_held = True
        if self.mode is SmcdMode.COPY:
            assert sndbuf_size is not None
            mem = bytearray(sndbuf_size)
            self.sndbuf_desc = SmcBufDesc(
                cpu_addr=memoryview(mem),
                len=sndbuf_size,
                size=sndbuf_size,
                is_dmb=False,
                used=True,
            )
            self.sndbuf_space = sndbuf_size

    def _save_peer_info(self, peer_token: int, peer_rmbe_idx: int, peer_dmb_size: int) -> None:
        """``smcd_conn_save_peer_info``: what the peer's Accept/Confirm told us."""
        self.peer_token = peer_token
        self.peer_rmbe_idx = peer_rmbe_idx
        self.peer_rmbe_size = peer_dmb_size - SMCD_CDC_MSG_SIZE
        self.peer_rmbe_space = self.peer_rmbe_size

    def _buf_attach(self) -> None:
        """``smcd_buf_attach``: the ghost sndbuf = the peer DMB's data ring."""
        dmb = self.smcd.attach_dmb(self.peer_token)
        length = dmb.dmb_len - SMCD_CDC_MSG_SIZE
        self.sndbuf_desc = SmcBufDesc(
            cpu_addr=dmb.cpu_addr[SMCD_CDC_MSG_SIZE:],
            len=length,
            size=length,
            is_dmb=False,
            token=dmb.dmb_tok,
            sba_idx=dmb.sba_idx,
            dma_addr=dmb.dma_addr,
            used=True,
        )
        self.sndbuf_space = length

    def _start_after(self, total: int) -> None:
        """Test hook of :func:`open_pair`: cursors as after ``total`` bytes each way, all read
        and confirmed (both ends call it, so each side's view of the other agrees)."""

        def enc(size: int) -> SmcHostCursor:
            return SmcHostCursor((total // size) & WRAP_MASK, total % size)

        peer_ring, ring = enc(self.peer_rmbe_size), enc(self.rmb_len)
        self.local_tx_ctrl.prod = self.local_rx_ctrl.cons = peer_ring
        self.tx_curs_prep = self.tx_curs_sent = self.tx_curs_fin = enc(self.sndbuf_len)
        self.local_rx_ctrl.prod = self.local_tx_ctrl.cons = self.rx_curs_confirmed = ring
        self.tx_prep_total = self.tx_sent_total = self.tx_acked_total = total
        self.rx_prod_total = self.rx_cons_total = total

    def _buf_detach(self) -> None:
        """``smcd_buf_detach``: drop the ghost sndbuf's reference on the peer DMB."""
        if self.sndbuf_desc is None:
            return
        desc, self.sndbuf_desc = self.sndbuf_desc, None
        with contextlib.suppress(DeviceOpError):  # the kernel ignores detach errors too
            self.smcd.detach_dmb(desc.token)

    # ================================================================ public socket API

    def send(self, data: bytes | bytearray | memoryview, *, oob: bool = False) -> int:
        """Non-blocking ``smc_tx_sendmsg``: accept as many bytes as the sndbuf has room for.

        Args:
            data: the bytes to send.
            oob: MSG_OOB: the last byte is urgent if the whole of ``data`` is accepted; every
                send returns 0 while an urgent byte is staged (``urg_tx_pend``) until the peer
                has consumed everything (the kernel's ``smc_tx_wait``, non-blocking).

        Returns:
            bytes accepted (0 = no room now or urgent data staged: try after the peer reads).

        Raises:
            SocketClosed: after :meth:`close`.
            ConnectionAborted: after :meth:`abort` (or the link group killed us).
            ProtocolViolation: the peer sent a bad CDC (the connection was aborted).
            BrokenPipe: after :meth:`shutdown`, or an error is pending (the peer aborted).
            ConnectionReset: the peer closed or aborted.
        """
        self._check_usable("send")
        view = memoryview(data).cast("B")
        if self.sk_err or self.sk_shutdown & SEND_SHUTDOWN or self.killed:
            raise BrokenPipe(self._why_no_send())
        if self.local_rx_ctrl.conn_state_flags & SMC_CONN_ANY_CLOSE:
            raise ConnectionReset("send: the peer closed the connection")
        send_done = 0
        with self.smcd.local_bh_disable():
            while send_done < len(view):
                if oob:  # set on every pass, before the wait: even a send that returns 0
                    self.local_tx_ctrl.prod_flags |= SMC_PROD_URG_DATA_PENDING
                space = self._tx_space()
                if space <= 0 or self.urg_tx_pend:
                    break  # smc_tx_wait, non-blocking: -EAGAIN or the bytes already copied
                copylen = min(len(view) - send_done, space)
                self._sndbuf_write(self.tx_curs_prep.count, view[send_done : send_done + copylen])
                self.tx_curs_prep = self._curs_add(self.sndbuf_len, self.tx_curs_prep, copylen)
                self.sndbuf_space -= copylen
                self.tx_prep_total += copylen
                send_done += copylen
                if oob and send_done == len(view):
                    self.urg_tx_pend = True  # the message's last byte is urgent
                self._tx_sndbuf_nonempty()
        return send_done

    def recv(self, n: int, *, oob: bool = False) -> bytes:
        """Non-blocking ``smc_rx_recvmsg``: up to ``n`` of the bytes that have arrived.

        Returns ``b""`` when nothing is there; :attr:`eof` tells end of stream from "try later".
        One call copies once, as a non-blocking kernel read does (so while an inline urgent byte
        is pending a read stops one byte short of what has arrived, ``readable--``).

        Args:
            n: the most bytes to return.
            oob: MSG_OOB (``smc_rx_recv_urg``): the urgent byte, at most once; ``n == 0``
                consumes it without returning it (MSG_TRUNC).

        Raises:
            SocketClosed / ConnectionAborted / ProtocolViolation: as for :meth:`send`.
            InvalidArgument: ``n`` is negative; with ``oob``: SO_OOBINLINE is set, or no unread
                urgent byte is there (``urg_state`` not VALID: never EAGAIN, as in 6.12.118).
        """
        self._check_usable("recv")
        if not isinstance(n, int) or n < 0:
            raise InvalidArgument(f"recv: n={n!r}, expected an int >= 0")
        if self.sk_state is SmcSockState.CLOSED:
            # smc_recvmsg: an SMC_CLOSED socket returns 0 at once if RCV_SHUTDOWN is set, even
            # with unread data (the peer's abort closed a socket that had shut down; or a kill
            # after the peer's close), else -ENOTCONN (killed with nothing received)
            if self.sk_shutdown & RCV_SHUTDOWN:
                return b""
            raise NotConnected("recv: the socket is SMC_CLOSED")
        if oob:
            return self._rx_recv_urg(n)
        with self.smcd.local_bh_disable():
            if not self._rx_recvmsg_data_available():
                return b""
            readable = self.bytes_to_rcv
            if self.urg_state is SmcUrgState.VALID and self.oobinline and readable > 1:
                readable -= 1  # always stop at the urgent byte
            copylen = min(n, readable)
            out = self._rmb_read(self.local_tx_ctrl.cons.count, copylen)
            self.bytes_to_rcv -= copylen
            self.rx_cons_total += copylen
            self._rx_update_consumer(copylen)
        return out

    def _rx_recvmsg_data_available(self) -> bool:
        """``smc_rx_recvmsg_data_available``: data to copy? A lone VALID urgent byte (none
        counted in ``bytes_to_rcv``) gets its consumer skip here."""
        if self.bytes_to_rcv:
            return True
        if self.urg_state is SmcUrgState.VALID:
            self._rx_update_consumer(0)  # "we received a single urgent Byte - skip"
        return False

    def _rx_recv_urg(self, n: int) -> bytes:
        """``smc_rx_recv_urg``: the urgent byte (EINVAL unless VALID and not inline)."""
        if self.oobinline:
            raise InvalidArgument("recv(oob): SO_OOBINLINE is set, urgent data stays in band")
        if self.urg_state is not SmcUrgState.VALID:
            raise InvalidArgument(
                f"recv(oob): no unread urgent byte (urg_state={self.urg_state.name})"
            )
        with self.smcd.local_bh_disable():
            self.urg_state = SmcUrgState.READ
            if n == 0:
                return b""  # MSG_TRUNC: marked read, no cursor touched
            cons = self.local_tx_ctrl.cons
            if self._curs_diff(self.rmb_len, cons, self.urg_curs) > 1:
                self.urg_rx_skip_pend = True
            # "Urgent Byte was already accounted for, but trigger skipping the urgent byte in
            # non-inline case" (with urg_state already READ, only a pending skip does anything)
            self._rx_update_consumer(0)
        return bytes([self.urg_rx_byte])

    def set_oobinline(self, on: bool) -> None:
        """``setsockopt(SOL_SOCKET, SO_OOBINLINE)``: sets SOCK_URGINLINE on the SMC socket
        (``sock_setsockopt``; SOL_SOCKET never reaches ``smc_setsockopt``).

        Raises:
            SocketClosed / ConnectionAborted: as for :meth:`close`.
        """
        self._check_handle("setsockopt")
        self.oobinline = bool(on)

    def atmark(self) -> bool:
        """``ioctl(SIOCATMARK)`` (``smc_ioctl``): 0 in SMC_INIT/SMC_CLOSED, else whether
        ``smc_curs_diff(cons, urg_curs) == 1``, whatever ``urg_state`` says (a stale or never
        set ``urg_curs`` counts too).

        Raises:
            SocketClosed / ConnectionAborted: as for :meth:`close`.
        """
        self._check_handle("atmark")
        if self.sk_state in (SmcSockState.INIT, SmcSockState.CLOSED):
            return False
        return self._curs_diff(self.rmb_len, self.local_tx_ctrl.cons, self.urg_curs) == 1

    @property
    def urgent_pending(self) -> bool:
        """smc_poll's EPOLLPRI: an urgent byte is VALID (not read yet)."""
        return self.urg_state is SmcUrgState.VALID

    def shutdown(self) -> None:
        """``shutdown(SHUT_WR)`` (``smc_close_shutdown_write``): send ``peer_done_writing``.

        Repeating it sends nothing more; it fails with ENOTCONN once the TCP connection under the
        socket is closed both ways (both sides shut down), as ``smc_shutdown`` does.

        Raises:
            SocketClosed / ConnectionAborted / ProtocolViolation: as for :meth:`send`.
            NotConnected: the socket is past shutdown (the peer aborted, ...) or its CLC socket
                is closed.
        """
        self._check_usable("shutdown")
        if self.sk_state not in SHUTDOWN_STATES:
            raise NotConnected(f"shutdown: socket state {self.sk_state.name}")
        if self.sk_shutdown & SEND_SHUTDOWN:
            if self.clcsock.tcp_close:
                raise NotConnected("shutdown: the TCP connection is closed both ways")
            return
        with self.smcd.local_bh_disable():
            self._tx_pending()  # smc_close_stream_wait, non-blocking
            self.local_tx_ctrl.conn_state_flags |= SMC_CONN_PEER_DONE_WRITING
            self._cdc_get_slot_and_msg_send()
            self.sk_shutdown |= SEND_SHUTDOWN
            if self.sk_state is SmcSockState.ACTIVE:
                self.sk_state = SmcSockState.PEERCLOSEWAIT1
            elif self.sk_state is SmcSockState.APPCLOSEWAIT1:
                self.sk_state = SmcSockState.APPCLOSEWAIT2
        if self.clcsock.tcp_close:
            raise NotConnected("shutdown: the TCP connection is closed both ways")
        self.clcsock.send_fin()

    def close(self) -> None:
        """Final close (``smc_close_active`` / ``smc_close_final``).

        Data the peer has no room for yet is dropped (no linger).  The endpoint is freed at once
        if the peer already closed or aborted, else when the peer's close arrives.

        Raises:
            SocketClosed: already closed.
            ConnectionAborted: already aborted.
        """
        self._check_handle("close")
        S = SmcSockState
        with self.smcd.local_bh_disable():
            state = self.sk_state
            tx = self.local_tx_ctrl.conn_state_flags
            just_shut = bool(tx & SMC_CONN_PEER_DONE_WRITING) and not tx & SMC_CONN_ANY_CLOSE
            # smc_close_active, state by state (net/smc/smc_close.c)
            if state is S.ACTIVE:
                self._tx_pending()  # smc_close_stream_wait, non-blocking
                self._close_final()
                self.sk_state = S.PEERCLOSEWAIT1
            elif state is S.APPFINCLOSEWAIT:
                if just_shut:
                    self._close_final()
                self.sk_state = S.CLOSED
            elif state in (S.APPCLOSEWAIT1, S.APPCLOSEWAIT2):
                self._tx_pending()
                self._close_final()
                rx_close = self.local_rx_ctrl.conn_state_flags & SMC_CONN_ANY_CLOSE
                self.sk_state = S.CLOSED if rx_close else S.PEERFINCLOSEWAIT
            elif state in (S.PEERCLOSEWAIT1, S.PEERCLOSEWAIT2):
                if just_shut:
                    self._close_final()  # the peer's close will move us on
            elif state is S.PROCESSABORT:
                self.local_tx_ctrl.conn_state_flags |= SMC_CONN_PEER_CONN_ABORT
                self._cdc_get_slot_and_msg_send()  # smc_close_abort
                self.sk_state = S.CLOSED
            elif state is S.PEERABORTWAIT:
                self.sk_state = S.CLOSED
            # __smc_release: SOCK_DEAD, SHUTDOWN_MASK; a closed socket frees its connection
            self.user_closed = True
            self.sk_shutdown |= SEND_SHUTDOWN | RCV_SHUTDOWN
            if self.sk_state is S.CLOSED:
                self._conn_free()
            # the kernel shuts the TCP connection down on an active close from ACTIVE and
            # releases it (tcp_close) once the socket is closed
            if state is S.ACTIVE or self.sk_state is S.CLOSED:
                self.clcsock.send_fin()

    def _close_final(self) -> None:
        """``smc_close_final``: peer_conn_abort with unread data, else peer_conn_closed;
        nothing (-EPIPE) for a killed connection."""
        if self.killed or self.rx_protocol_error is not None:
            return
        if self.bytes_to_rcv:
            self.local_tx_ctrl.conn_state_flags |= SMC_CONN_PEER_CONN_ABORT
        else:
            self.local_tx_ctrl.conn_state_flags |= SMC_CONN_PEER_CONN_CLOSED
        self._cdc_get_slot_and_msg_send()

    def abort(self) -> None:
        """Abort (``smc_conn_kill``): send ``peer_conn_abort`` and tear the endpoint down.

        Raises:
            SocketClosed: already closed.
            ConnectionAborted: already aborted.
        """
        self._check_handle("abort")
        with self.smcd.local_bh_disable():
            self.user_aborted = True
            self._conn_kill()
            self._conn_free()  # the handle is gone with it

    @property
    def eof(self) -> bool:
        """True when nothing is left to read and the peer will send no more."""
        if self.killed or self.sk_state is SmcSockState.CLOSED:
            return bool(self.sk_shutdown & RCV_SHUTDOWN)
        return self.bytes_to_rcv == 0 and bool(
            self.sk_shutdown & RCV_SHUTDOWN or self.killed or self.freed
        )

    @property
    def readable(self) -> int:
        """Bytes :meth:`recv` can return now."""
        return self.bytes_to_rcv

    @property
    def sndbuf_len(self) -> int:
        return self.sndbuf_desc.len if self.sndbuf_desc is not None else 0

    @property
    def rmb_len(self) -> int:
        return self.rmb_desc.len if self.rmb_desc is not None else 0

    def snapshot(self) -> ConnSnapshot:
        """Cursors, spaces and flags as plain ints (compare with the spec)."""
        t, r = self.local_tx_ctrl, self.local_rx_ctrl
        rmb = self.rmb_desc
        return ConnSnapshot(
            mode=int(self.mode is SmcdMode.MERGED),
            role=int(self.role),
            sk_state=int(self.sk_state),
            sk_shutdown=self.sk_shutdown,
            sk_err=self.sk_err,
            killed=int(self.killed),
            freed=int(self.freed),
            rmb_token=rmb.token if rmb else 0,
            rmb_sba_idx=rmb.sba_idx if rmb else 0,
            rmb_len=rmb.len if rmb else 0,
            peer_token=self.peer_token,
            peer_rmbe_idx=self.peer_rmbe_idx,
            peer_rmbe_size=self.peer_rmbe_size,
            sndbuf_len=self.sndbuf_len,
            tx_prep_wrap=self.tx_curs_prep.wrap,
            tx_prep_count=self.tx_curs_prep.count,
            tx_sent_wrap=self.tx_curs_sent.wrap,
            tx_sent_count=self.tx_curs_sent.count,
            tx_fin_wrap=self.tx_curs_fin.wrap,
            tx_fin_count=self.tx_curs_fin.count,
            tx_prod_wrap=t.prod.wrap,
            tx_prod_count=t.prod.count,
            tx_cons_wrap=t.cons.wrap,
            tx_cons_count=t.cons.count,
            tx_prod_flags=t.prod_flags,
            tx_conn_state_flags=t.conn_state_flags,
            rx_prod_wrap=r.prod.wrap,
            rx_prod_count=r.prod.count,
            rx_cons_wrap=r.cons.wrap,
            rx_cons_count=r.cons.count,
            rx_prod_flags=r.prod_flags,
            rx_conn_state_flags=r.conn_state_flags,
            confirmed_wrap=self.rx_curs_confirmed.wrap,
            confirmed_count=self.rx_curs_confirmed.count,
            peer_rmbe_space=self.peer_rmbe_space,
            sndbuf_space=self.sndbuf_space,
            bytes_to_rcv=self.bytes_to_rcv,
            rmbe_update_limit=self.rmbe_update_limit,
            tx_prep_total=self.tx_prep_total,
            tx_sent_total=self.tx_sent_total,
            tx_acked_total=self.tx_acked_total,
            rx_prod_total=self.rx_prod_total,
            rx_cons_total=self.rx_cons_total,
            user_bytes_in=self.user_bytes_in,
            user_bytes_out=self.user_bytes_out,
            urg_state=int(self.urg_state),
            urg_curs_wrap=self.urg_curs.wrap,
            urg_curs_count=self.urg_curs.count,
            urg_rx_byte=self.urg_rx_byte,
            urg_rx_skip_pend=int(self.urg_rx_skip_pend),
            urg_tx_pend=int(self.urg_tx_pend),
            oobinline=int(self.oobinline),
            rx_urg_skipped_total=self.rx_urg_skipped_total,
        )

    # ================================================================ send side (smc_tx.c)

    def _tx_space(self) -> int:
        """Write space ``smc_tx_sendmsg`` uses: ``sndbuf_space`` as is (6.12.118, no clamp)."""
        return self.sndbuf_space

    def _sndbuf_write(self, off: int, data: memoryview) -> None:
        """Copy user bytes into the sndbuf ring at ``off`` (two chunks at the ring end)."""
        desc = self.sndbuf_desc
        assert desc is not None
        length = desc.len
        first = min(len(data), length - off)
        second = len(data) - first
        if off < 0 or first < 0 or second > length:
            raise RingOverrun(
                f"sendmsg: {len(data)} bytes at offset {off} overrun the sndbuf ring of {length}"
            )
        desc.cpu_addr[off : off + first] = data[:first]
        if second:
            desc.cpu_addr[0:second] = data[first:]
        self.user_bytes_in += len(data)

    def _tx_prepared_sends(self) -> int:
        """``smc_tx_prepared_sends``: bytes in the sndbuf not yet moved to the peer."""
        if self.sndbuf_desc is None:
            return 0
        return self._curs_diff(self.sndbuf_desc.len, self.tx_curs_sent, self.tx_curs_prep)

    def _tx_sndbuf_nonempty(self) -> int:
        """``smc_tx_sndbuf_nonempty`` + ``smcd_tx_sndbuf_nonempty``: data writes, then CDC."""
        if self._tx_prepared_sends() <= 0:
            return 0
        if self.peer_rmbe_space <= 0:
            return 0
        if self.killed or self.local_rx_ctrl.conn_state_flags & SMC_CONN_PEER_CONN_ABORT:
            return -_errno.EPIPE
        tx = self.local_tx_ctrl
        rc = 0
        if not tx.prod_flags & SMC_PROD_URG_DATA_PRESENT:
            rc = self._tx_rdma_writes()
        if rc == 0:
            rc = self._cdc_msg_send()
        if rc == 0 and tx.prod_flags & SMC_PROD_URG_DATA_PRESENT:
            tx.prod_flags &= ~(SMC_PROD_URG_DATA_PENDING | SMC_PROD_URG_DATA_PRESENT)
        return rc

    def _tx_pending(self) -> None:
        """``smc_tx_pending``: push prepared data (the CDC-receive kick, close flush)."""
        if self.sk_err:
            return
        rc = self._tx_sndbuf_nonempty()
        if (
            rc == 0
            and self.local_rx_ctrl.prod_flags & SMC_PROD_WRITE_BLOCKED
            and not self.bytes_to_rcv
        ):
            self.local_rx_ctrl.prod_flags &= ~SMC_PROD_WRITE_BLOCKED

    def _tx_rdma_writes(self) -> int:
        """``smc_tx_rdma_writes`` + ``smcd_tx_rdma_writes``: move data to the peer DMB."""
        desc = self.sndbuf_desc
        assert desc is not None
        sndbuf_len = desc.len
        to_send = self._curs_diff(sndbuf_len, self.tx_curs_sent, self.tx_curs_prep)
        if to_send <= 0:
            return 0
        rmbespace = self.peer_rmbe_space
        if rmbespace <= 0:
            return 0
        if to_send >= rmbespace:
            self.local_tx_ctrl.prod_flags |= SMC_PROD_WRITE_BLOCKED
        else:
            self.local_tx_ctrl.prod_flags &= ~SMC_PROD_WRITE_BLOCKED
        length = min(to_send, rmbespace)
        prod = self.local_tx_ctrl.prod
        # destination chunks: the free area wraps iff prod and the peer's cons share a wrap
        if prod.wrap == self.local_rx_ctrl.cons.wrap:
            dst_len = min(self.peer_rmbe_size - prod.count, length)
        else:
            dst_len = length
        dst_chunks = [(prod.count, dst_len)]
        if dst_len < length:
            dst_chunks.append((0, length - dst_len))
        src_off = self.tx_curs_sent.count
        for dst_off, dst_n in dst_chunks:
            while dst_n > 0:
                src_n = min(dst_n, sndbuf_len - src_off)
                rc = self._tx_ism_write(
                    desc.cpu_addr[src_off : src_off + src_n],
                    SMCD_CDC_MSG_SIZE + dst_off,
                    sf=False,
                )
                if rc:
                    return rc
                dst_off += src_n
                dst_n -= src_n
                src_off += src_n
                if src_off >= sndbuf_len:
                    src_off -= sndbuf_len
        if self.urg_tx_pend and length == to_send:
            self.local_tx_ctrl.prod_flags |= SMC_PROD_URG_DATA_PRESENT
        # smc_tx_advance_cursors
        self.peer_rmbe_space -= length
        self.local_tx_ctrl.prod = self._curs_add(self.peer_rmbe_size, prod, length)
        self.tx_curs_sent = self._curs_add(sndbuf_len, self.tx_curs_sent, length)
        self.tx_sent_total += length
        return 0

    def _tx_ism_write(self, data: memoryview | bytes, offset: int, *, sf: bool) -> int:
        """``smcd_tx_ism_write``: move_data to the peer DMB; any error sets our abort flag."""
        try:
            self.smcd.move_data(self.peer_token, self.peer_rmbe_idx, sf, self.tx_off + offset, data)
        except DeviceOpError as exc:
            self.local_tx_ctrl.conn_state_flags |= SMC_CONN_PEER_CONN_ABORT
            return exc.rc
        return 0

    def _cdc_msg(self) -> SmcdCdcMsg:
        """The ``struct smcd_cdc_msg`` ``smcd_cdc_msg_send`` builds from ``local_tx_ctrl``."""
        t = self.local_tx_ctrl
        return SmcdCdcMsg(
            type=SMC_CDC_MSG_TYPE,
            prod=t.prod,
            cons=t.cons,
            prod_flags=t.prod_flags,
            conn_state_flags=t.conn_state_flags,
        )

    def _cdc_msg_send(self) -> int:
        """``smcd_cdc_msg_send``: write the CDC with sf=1; copy mode frees sndbuf space."""
        msg = self._cdc_msg()
        rc = self._tx_ism_write(msg.pack(), 0, sf=True)
        if rc:
            return rc
        self.rx_curs_confirmed = msg.cons
        self.local_rx_ctrl.prod_flags &= ~SMC_PROD_CONS_CURS_UPD_REQ
        if self.mode is SmcdMode.MERGED:
            return 0  # space comes back only with the peer's consumer cursor
        assert self.sndbuf_desc is not None
        self.sndbuf_space += self._curs_diff(
            self.sndbuf_desc.len, self.tx_curs_fin, self.tx_curs_sent
        )
        self.tx_curs_fin = self.tx_curs_sent
        return 0

    def _cdc_get_slot_and_msg_send(self) -> int:
        """``smc_cdc_get_slot_and_msg_send`` (SMC-D): -EPIPE without a valid link group
        (``smc_conn_lgr_valid``: still registered; a terminating link group's connections send
        their abort CDC, loopback has no ``peer_shutdown``)."""
        if not self.alert_token_local:
            return -_errno.EPIPE
        return self._cdc_msg_send()

    # ================================================================ receive side

    def _rx_tasklet(self) -> None:
        """``smcd_cdc_rx_tsklet``: read the CDC header from our DMB and act on it."""
        if self.killed or self.rmb_desc is None:
            return
        raw = self.rmb_desc.cpu_addr[:SMCD_CDC_MSG_SIZE]
        self._cdc_msg_recv(SmcdCdcMsg.unpack(raw))

    def _cdc_rx_validate(self, msg: SmcdCdcMsg) -> str | None:
        """Hardening: why ``msg`` cannot come from a correct peer (``"<check>: <detail>"``, the
        check named as conformance/PROTOCOL.md names it), or ``None`` if it can."""
        ring, peer_ring = self.rmb_len, self.peer_rmbe_size
        rx = self.local_rx_ctrl
        if msg.type != SMC_CDC_MSG_TYPE:
            return f"type: CDC type={msg.type:#04x}, expected {SMC_CDC_MSG_TYPE:#04x}"
        if msg.conn_state_flags & 0x1F or msg.prod_flags & 0x0F:
            return (f"flags-reserved: prod_flags={msg.prod_flags:#04x} conn_state_flags="
                    f"{msg.conn_state_flags:#04x} set a reserved (or SMC-R only) bit")
        if msg.prod.count >= ring:
            return f"prod-count: CDC prod.count={msg.prod.count}, expected < rmb len {ring}"
        if msg.cons.count >= peer_ring:
            return (f"cons-count: CDC cons.count={msg.cons.count}, expected < peer_rmbe_size "
                    f"{peer_ring}")
        span = (WRAP_MASK + 1) * ring
        new_data = self._curs_distance(ring, rx.prod, msg.prod)
        if new_data and new_data >= span - ring:
            return (f"prod-backwards: CDC prod=({msg.prod.wrap},{msg.prod.count}) is "
                    f"{span - new_data} bytes behind ({rx.prod.wrap},{rx.prod.count})")
        # what our consumer cursor has not passed (bytes_to_rcv leaves out a non-inline urgent
        # byte that is still in the ring)
        free = ring - self._curs_distance(ring, self.local_tx_ctrl.cons, rx.prod)
        if new_data > free:
            return (f"prod-overrun: CDC prod=({msg.prod.wrap},{msg.prod.count}) announces "
                    f"{new_data} new bytes, expected <= {free} free in our ring")
        peer_span = (WRAP_MASK + 1) * peer_ring
        consumed = self._curs_distance(peer_ring, rx.cons, msg.cons)
        if consumed and consumed >= peer_span - peer_ring:
            return (f"cons-backwards: CDC cons=({msg.cons.wrap},{msg.cons.count}) is "
                    f"{peer_span - consumed} bytes behind ({rx.cons.wrap},{rx.cons.count})")
        in_flight = peer_ring - self.peer_rmbe_space
        if consumed > in_flight:
            return (f"cons-overrun: CDC cons=({msg.cons.wrap},{msg.cons.count}) consumes "
                    f"{consumed} bytes, expected <= {in_flight} in flight")
        lost = rx.conn_state_flags & ~msg.conn_state_flags & SMC_CONN_ANY_CLOSE_OR_SENDDONE
        if lost:
            return (f"flags-cleared: conn_state_flags={msg.conn_state_flags:#04x} drops "
                    f"{lost:#04x} the peer sent before (they are sticky)")
        return None

    def _cdc_msg_recv(self, msg: SmcdCdcMsg) -> None:
        """``smc_cdc_msg_recv_action`` for SMC-D."""
        if self.validate_peer_cdc:
            why = self._cdc_rx_validate(msg)
            if why is not None:
                self._on_bad_cdc(why)
                return
        rx = self.local_rx_ctrl
        prod_old, cons_old = rx.prod, rx.cons
        # smcd_cdc_msg_to_host: copied as they are
        rx.prod, rx.cons = msg.prod, msg.cons
        rx.prod_flags, rx.conn_state_flags = msg.prod_flags, msg.conn_state_flags

        diff_cons = self._curs_diff(self.peer_rmbe_size, cons_old, rx.cons)
        if diff_cons:
            self.peer_rmbe_space = self._peer_space_after_cdc(diff_cons)
            self.tx_acked_total += diff_cons
            if self.mode is SmcdMode.MERGED and self.sndbuf_desc is not None:
                diff_tx = self._curs_diff(self.sndbuf_desc.len, self.tx_curs_fin, rx.cons)
                self.sndbuf_space += diff_tx
                self.tx_curs_fin = rx.cons
        diff_prod = self._curs_diff(self.rmb_len, prod_old, rx.prod)
        if diff_prod:
            self.rx_prod_total += diff_prod
            if rx.prod_flags & SMC_PROD_URG_DATA_PRESENT:
                diff_prod = self._cdc_handle_urg_data_arrival(diff_prod)
            self.bytes_to_rcv += diff_prod
        elif rx.prod_flags & SMC_PROD_URG_DATA_PENDING:
            self.urg_state = SmcUrgState.NOTYET
        if (
            (diff_cons and self._tx_prepared_sends())
            or rx.prod_flags & SMC_PROD_CONS_CURS_UPD_REQ
            or rx.prod_flags & SMC_PROD_URG_DATA_PENDING
        ):
            self._tx_pending()
        if diff_cons and self.urg_tx_pend and self.peer_rmbe_space == self.peer_rmbe_size:
            self.urg_tx_pend = False  # "urg data confirmed by peer, ready for more"
        self._on_cdc_flags(rx.conn_state_flags)

    def _cdc_handle_urg_data_arrival(self, diff_prod: int) -> int:
        """``smc_cdc_handle_urg_data_arrival``: the byte before the new producer cursor is
        urgent; without SO_OOBINLINE it is not counted in ``bytes_to_rcv``.

        Returns:
            ``diff_prod`` as the kernel goes on with it.
        """
        rmb = self.rmb_desc
        assert rmb is not None
        self.urg_curs = self.local_rx_ctrl.prod
        self.urg_state = SmcUrgState.VALID
        if not self.oobinline:
            diff_prod -= 1  # "we'll skip the urgent byte, so don't account for it"
        count = self.urg_curs.count
        pos = count - 1 if count else rmb.len - 1
        if not 0 <= pos < rmb.len:
            raise RingOverrun(f"urgent byte at ring offset {pos} outside the ring of {rmb.len}")
        self.urg_rx_byte = rmb.cpu_addr[self.rx_off + pos]
        return diff_prod

    def _peer_space_after_cdc(self, diff_cons: int) -> int:
        """``peer_rmbe_space += diff_cons`` (the peer freed that much of its ring)."""
        return self.peer_rmbe_space + diff_cons

    def _on_cdc_flags(self, flags: int) -> None:
        """Close/abort flags of a received CDC (``smc_cdc_msg_recv_action`` tail, passive close)."""
        if flags & SMC_CONN_PEER_CONN_ABORT:
            self.sk_err = _errno.ECONNRESET
            self.local_tx_ctrl.conn_state_flags |= SMC_CONN_PEER_CONN_ABORT
        if not flags & SMC_CONN_ANY_CLOSE_OR_SENDDONE:
            return
        self.sk_shutdown |= RCV_SHUTDOWN
        S = SmcSockState
        old = self.sk_state
        tx = self.local_tx_ctrl.conn_state_flags
        dead = self.user_closed or self.user_aborted  # SOCK_DEAD
        new = old
        if flags & SMC_CONN_PEER_CONN_ABORT:  # smc_close_passive_abort_received
            if old in (S.INIT, S.ACTIVE, S.APPCLOSEWAIT1, S.APPFINCLOSEWAIT):
                new = S.PROCESSABORT
            elif old in (S.PEERCLOSEWAIT1, S.PEERCLOSEWAIT2):
                # our own peer_conn_abort was set on receipt (just above): "sent any close"
                just_shut = tx & SMC_CONN_PEER_DONE_WRITING and not tx & SMC_CONN_ANY_CLOSE
                new = S.PROCESSABORT if just_shut else S.CLOSED
            elif old in (S.APPCLOSEWAIT2, S.PEERFINCLOSEWAIT, S.PEERABORTWAIT):
                new = S.CLOSED
        elif old in (S.INIT, S.ACTIVE):  # smc_close_passive_work
            new = S.APPCLOSEWAIT1
        elif old in (S.PEERCLOSEWAIT1, S.PEERCLOSEWAIT2):
            if old is S.PEERCLOSEWAIT1 and flags & SMC_CONN_PEER_DONE_WRITING:
                new = S.PEERCLOSEWAIT2
            if flags & SMC_CONN_ANY_CLOSE:
                new = S.CLOSED if dead and tx & SMC_CONN_ANY_CLOSE else S.APPFINCLOSEWAIT
        elif old is S.PEERFINCLOSEWAIT and flags & SMC_CONN_ANY_CLOSE:
            new = S.CLOSED
        self.sk_state = new
        if new is not old and new is S.CLOSED and dead:
            self._conn_free()
            self.clcsock.send_fin()  # smc_clcsock_release

    def _on_bad_cdc(self, why: str) -> None:
        """A CDC failed validation: remember why and kill the connection (abort to the peer)."""
        self.rx_protocol_error = why
        self._conn_kill()
        self.sk_err = _errno.EPROTO

    def _rmb_read(self, off: int, n: int) -> bytes:
        """Copy ``n`` bytes out of our data ring at ``off`` (two chunks at the ring end)."""
        rmb = self.rmb_desc
        assert rmb is not None
        length = rmb.len
        first = min(n, length - off)
        second = n - first
        if off < 0 or first < 0 or second > length:
            raise RingOverrun(f"recvmsg: {n} bytes at offset {off} overrun the ring of {length}")
        base = self.rx_off
        mem = rmb.cpu_addr
        if second:
            out = bytes(mem[base + off : base + length]) + bytes(mem[base : base + second])
        else:
            out = bytes(mem[base + off : base + off + n])
        self.user_bytes_out += n
        return out

    def _rx_update_consumer(self, length: int) -> None:
        """``smc_rx_update_consumer``: advance our consumer cursor past ``length`` bytes (and,
        without SO_OOBINLINE, past an urgent byte just ahead), maybe tell the peer.

        The kernel's return value (1 = end the read at an inline urgent byte) is not needed:
        a non-blocking read here copies once.
        """
        rmb_len = self.rmb_len
        cons = self._curs_add(rmb_len, self.local_tx_ctrl.cons, length)
        force = False
        if self.urg_state is SmcUrgState.VALID or self.urg_rx_skip_pend:
            diff = self._curs_comp(rmb_len, cons, self.urg_curs)
            if self.oobinline:
                if diff == 0:
                    force = True
                    self.urg_state = SmcUrgState.READ
            elif diff == 1:  # skip the urgent byte
                force = True
                cons = self._curs_add(rmb_len, cons, 1)
                self.urg_rx_skip_pend = False
                self.rx_cons_total += 1
                self.rx_urg_skipped_total += 1
            elif diff < -1:  # "we read past urgent byte"
                self.urg_state = SmcUrgState.READ
        self.local_tx_ctrl.cons = cons
        self._tx_consumer_update(force=force)

    def _tx_consumer_update(self, force: bool) -> None:
        """``smc_tx_consumer_update``: send a window update when the kernel would."""
        rmb_len = self.rmb_len
        cfed = self.rx_curs_confirmed
        to_confirm = self._curs_diff(rmb_len, cfed, self.local_tx_ctrl.cons)
        sender_free = rmb_len
        if to_confirm > self.rmbe_update_limit:
            sender_free = rmb_len - self._curs_diff_large(rmb_len, cfed, self.local_rx_ctrl.prod)
        rx_flags = self.local_rx_ctrl.prod_flags
        if (
            rx_flags & SMC_PROD_CONS_CURS_UPD_REQ
            or force
            or (
                to_confirm > self.rmbe_update_limit
                and (sender_free <= rmb_len // 2 or rx_flags & SMC_PROD_WRITE_BLOCKED)
            )
        ):
            if self.killed or self.local_rx_ctrl.conn_state_flags & SMC_CONN_PEER_CONN_ABORT:
                return
            if self._cdc_get_slot_and_msg_send() < 0 and not self.killed:
                self.tx_work_pending = True
                return
        if self.local_rx_ctrl.prod_flags & SMC_PROD_WRITE_BLOCKED and not self.bytes_to_rcv:
            self.local_rx_ctrl.prod_flags &= ~SMC_PROD_WRITE_BLOCKED

    # ================================================================ teardown

    def _unregister(self) -> None:
        """Leave the link group (``smc_lgr_unregister_conn``)."""
        self.lgr.unregister_conn(self)

    def _conn_free(self) -> None:
        """``smc_conn_free`` (6.12.118 order): unset, kill tasklet, detach, unuse, unregister."""
        if self.freed:
            return
        self.freed = True
        if self.rmb_desc is not None:
            self.smcd.unset_conn(self.rmb_desc.sba_idx)
        self.smcd.tasklet_kill(self)
        if self.mode is SmcdMode.MERGED:
            self._buf_detach()
        if self.alert_token_local:
            if self.lgr.listed:
                if self.rmb_desc is not None:
                    self.lgr.buf_unuse(self.rmb_desc)
                if self.mode is SmcdMode.COPY and self.sndbuf_desc is not None:
                    self.sndbuf_desc.cpu_addr[:] = bytes(self.sndbuf_desc.size)
                    self.sndbuf_desc = None
                self._unregister()
            if not self.lgr.conns_num:
                self.lgr.schedule_free_work()
        if self.lgr_held:  # lgr_put: also for a killed connection no longer registered
            self.lgr_held = False
            self.lgr.put()

    def _conn_kill(self) -> None:
        """``smc_conn_kill``: abort to the peer, mark killed, tear down (DMB stays used).

        Then ``smc_close_active_abort``: the socket is SMC_CLOSED; the connection is freed at
        once only if the socket had begun closing, else when the application closes it.
        """
        if self.freed or self.killed:
            return
        self.local_tx_ctrl.conn_state_flags |= SMC_CONN_PEER_CONN_ABORT
        self._cdc_get_slot_and_msg_send()
        self.killed = True
        self.clcsock.abort()
        self.sk_err = _errno.ECONNABORTED
        if self.rmb_desc is not None:
            self.smcd.unset_conn(self.rmb_desc.sba_idx)
        self.smcd.tasklet_kill(self)
        if self.mode is SmcdMode.MERGED:
            self._buf_detach()
        self._unregister()
        was = self.sk_state
        self.sk_state = SmcSockState.CLOSED
        if was in FREE_AT_KILL:
            self._conn_free()

    # ================================================================ guards

    def _check_handle(self, op: str) -> None:
        if self.user_closed:
            raise SocketClosed(f"{op}: the endpoint was closed")
        if self.user_aborted:
            raise ConnectionAborted(f"{op}: the endpoint was aborted")

    def _check_usable(self, op: str) -> None:
        self._check_handle(op)
        if self.rx_protocol_error is not None:
            raise ProtocolViolation(f"{op}: connection aborted, {self.rx_protocol_error}")

    def _why_no_send(self) -> str:
        if self.sk_shutdown & SEND_SHUTDOWN:
            return "send: the endpoint was shut down for writing"
        if self.sk_err:
            return f"send: pending socket error {_errno.errorcode.get(self.sk_err, self.sk_err)}"
        return "send: the connection was killed"

    def __repr__(self) -> str:
        return (
            f"<{type(self).__name__} {self.mode.value} {self.role.name} "
            f"state={self.sk_state.name} rmb={self.rmb_len} sndbuf={self.sndbuf_len}>"
        )


# --------------------------------------------------------------------------------------------
# the pair factory


def _check_size(what: str, size: object, strict: bool, minimum: int) -> int:
    if not isinstance(size, int) or isinstance(size, bool):
        raise InvalidArgument(f"{what}={size!r}: expected an int")
    if strict and size not in SMCD_BUF_SIZES:
        raise InvalidArgument(
            f"{what}={size} is not an SMC-D buffer size (16384 * 2**k, k = 0..6); "
            "pass strict_sizes=False for a test-only size"
        )
    if size < minimum:
        raise InvalidArgument(f"{what}={size}: expected >= {minimum}")
    return size


def open_pair(
    dev: LoopbackIsm,
    mode: SmcdMode | str | None = None,
    *,
    dmb_size: int = 16384,
    sndbuf_size: int | None = None,
    peer_dmb_size: int | None = None,
    peer_sndbuf_size: int | None = None,
    lgrs: tuple[SmcdLinkGroup, SmcdLinkGroup] | None = None,
    conn_cls: type[SmcdConnection] = SmcdConnection,
    peer_conn_cls: type[SmcdConnection] | None = None,
    lgr_cls: type[SmcdLinkGroup] = SmcdLinkGroup,
    sock_min_sndbuf: int = SOCK_MIN_SNDBUF,
    strict_sizes: bool = True,
    conn_create: bool = False,
    initial_bytes: int = 0,
) -> tuple[SmcdConnection, SmcdConnection]:
    """Create a connected pair of SMC-D endpoints over ``dev`` (client ``a``, server ``b``).

    Args:
        dev: the loopback-ism device.
        mode: ``"copy"`` or ``"merged"``; ``None`` = what the device supports (merged on a
            nocopy device).  The kernel merges whenever the device supports it, so a mode the
            device does not match raises :class:`ModeMismatch`.
        dmb_size: bytes of ``a``'s DMB (CDC header included); ``peer_dmb_size`` for ``b``
            (default: the same).
        sndbuf_size: copy mode only: bytes of ``a``'s sndbuf (default ``dmb_size``);
            ``peer_sndbuf_size`` for ``b`` (default: ``b``'s DMB size).
        lgrs: the two sides' link groups (reuse DMBs across pairs); default: two new ones.
        conn_cls / peer_conn_cls: endpoint classes (mutants); ``peer_conn_cls`` defaults to
            ``conn_cls``.
        lgr_cls: link-group class used when ``lgrs`` is not given.
        sock_min_sndbuf: ``SOCK_MIN_SNDBUF`` for ``rmbe_update_limit``; pass 0 for tiny rings.
        strict_sizes: only the kernel's buffer sizes (16 KiB .. 1 MiB powers of two).
        conn_create: without ``lgrs``, choose the link groups as ``smc_conn_create`` does on
            one host (:func:`~smcd_check.model.lgr.smc_conn_create`: the server first, then the
            client told whether the server created one), so later pairs join listed link
            groups; default: two new link groups of the pair's own.
        initial_bytes: test hook (not a kernel feature: the kernel starts at 0): both
            directions start as if this many bytes had been sent and read already, every
            cursor and wrap counter where that traffic would have left it (``urg_curs`` stays
            at (0, 0), as no urgent byte was sent), so a test reaches the 16-bit wrap overflow
            without moving 65,536 laps of data.

    Returns:
        ``(a, b)``, both ACTIVE.

    Raises:
        ModeMismatch: the mode does not match the device.
        InvalidArgument: a bad size, or a ring too small for its window-update limit.
        NoSpace: the device has no free DMB slot (nothing is left registered).
    """
    if mode is None:
        the_mode = SmcdMode.MERGED if dev.support_dmb_nocopy() else SmcdMode.COPY
    else:
        try:
            the_mode = SmcdMode(mode)
        except ValueError:
            raise InvalidArgument(f"mode={mode!r}: expected 'copy' or 'merged'") from None
        if (the_mode is SmcdMode.MERGED) != dev.support_dmb_nocopy():
            raise ModeMismatch(
                f"mode={the_mode.value!r} but the device "
                f"{'supports' if dev.support_dmb_nocopy() else 'does not support'} nocopy "
                f"(use LoopbackIsm(nocopy={the_mode is SmcdMode.MERGED}))"
            )
    min_dmb = SMCD_CDC_MSG_SIZE + 1
    size_a = _check_size("dmb_size", dmb_size, strict_sizes, min_dmb)
    size_b = _check_size(
        "peer_dmb_size", size_a if peer_dmb_size is None else peer_dmb_size, strict_sizes, min_dmb
    )
    snd_a: int | None = None
    snd_b: int | None = None
    if the_mode is SmcdMode.COPY:
        snd_a = _check_size(
            "sndbuf_size", size_a if sndbuf_size is None else sndbuf_size, strict_sizes, 1
        )
        snd_b = _check_size(
            "peer_sndbuf_size",
            size_b if peer_sndbuf_size is None else peer_sndbuf_size,
            strict_sizes,
            1,
        )
    elif sndbuf_size is not None or peer_sndbuf_size is not None:
        raise InvalidArgument(
            "sndbuf_size: merged mode has no sndbuf of its own (the ghost sndbuf is the peer DMB)"
        )
    if not isinstance(initial_bytes, int) or isinstance(initial_bytes, bool) or initial_bytes < 0:
        raise InvalidArgument(f"initial_bytes={initial_bytes!r}: expected an int >= 0")
    if not isinstance(sock_min_sndbuf, int) or sock_min_sndbuf < 0:
        raise InvalidArgument(f"sock_min_sndbuf={sock_min_sndbuf!r}: expected an int >= 0")
    for what, size in (("dmb_size", size_a), ("peer_dmb_size", size_b)):
        ring = size - SMCD_CDC_MSG_SIZE
        limit = SmcdConnection._rmb_wnd_update_limit(ring, sock_min_sndbuf)
        if limit >= ring:
            raise InvalidArgument(
                f"{what}={size}: rmbe_update_limit {limit} >= ring {ring}, window updates "
                "would never be sent; pass a smaller sock_min_sndbuf"
            )
    created: list[SmcdLinkGroup] = []
    if lgrs is None and conn_create:
        # the server answers the Proposal first; the client learns from the Accept whether the
        # server created a link group (first contact); on loopback the peer is the host itself
        lgr_b, b_first = smc_conn_create(dev, server=True, peer_gid=dev.local_gid,
                                         lgr_cls=lgr_cls)
        lgr_a, a_first = smc_conn_create(dev, server=False, peer_gid=dev.local_gid,
                                         first_contact_peer=b_first, lgr_cls=lgr_cls)
        created = [lgr for lgr, new in ((lgr_a, a_first), (lgr_b, b_first)) if new]
    elif lgrs is None:
        lgr_a, lgr_b = lgr_cls(dev), lgr_cls(dev)
        created = [lgr_a, lgr_b]
    else:
        lgr_a, lgr_b = lgrs
        for lgr in lgrs:
            if lgr.smcd is not dev:
                raise InvalidArgument("lgrs: a link group belongs to another device")
            lgr._check_live()

    a = conn_cls(dev, lgr_a, mode=the_mode, role=SmcRole.CLIENT, sock_min_sndbuf=sock_min_sndbuf)
    b = (peer_conn_cls or conn_cls)(
        dev, lgr_b, mode=the_mode, role=SmcRole.SERVER, sock_min_sndbuf=sock_min_sndbuf
    )
    a.first_contact, b.first_contact = lgr_a in created, lgr_b in created
    a.clcsock.peer, b.clcsock.peer = b.clcsock, a.clcsock  # the handshake's TCP connection
    try:
        if conn_create:  # the server creates its buffers first (smc_listen_work, then Accept)
            b._buf_create(size_b, snd_b)
            a._buf_create(size_a, snd_a)
        else:
            a._buf_create(size_a, snd_a)
            b._buf_create(size_b, snd_b)
        assert a.rmb_desc is not None and b.rmb_desc is not None
        a._save_peer_info(b.rmb_desc.token, b.rmb_desc.sba_idx, b.rmb_desc.size)
        b._save_peer_info(a.rmb_desc.token, a.rmb_desc.sba_idx, a.rmb_desc.size)
        if the_mode is SmcdMode.MERGED:
            a._buf_attach()
            b._buf_attach()
    except ModelError:
        for conn in (a, b):
            conn._conn_free()
        for lgr in created:
            if not lgr.conns_num and not lgr.freeing:
                lgr.free()
        raise
    if initial_bytes:
        a._start_after(initial_bytes)
        b._start_after(initial_bytes)
    a.sk_state = b.sk_state = SmcSockState.ACTIVE
    return a, b


def snapshot_pair(a: SmcdConnection, b: SmcdConnection) -> dict[str, Any]:
    """Both endpoints' snapshots as one dict ``{"a": {...}, "b": {...}}`` (for reports)."""
    return {"a": a.snapshot().as_dict(), "b": b.snapshot().as_dict()}


__all__ = [
    "RCV_SHUTDOWN",
    "SEND_SHUTDOWN",
    "SMCD_BUF_SIZES",
    "SMC_CDC_MSG_TYPE",
    "SMC_CONN_PEER_CONN_ABORT",
    "SMC_CONN_PEER_CONN_CLOSED",
    "SMC_CONN_PEER_DONE_WRITING",
    "SMC_PROD_CONS_CURS_UPD_REQ",
    "SMC_PROD_FAILOVER_VALIDATION",
    "SMC_PROD_URG_DATA_PENDING",
    "SMC_PROD_URG_DATA_PRESENT",
    "SMC_PROD_WRITE_BLOCKED",
    "SOCK_MIN_SNDBUF",
    "ConnSnapshot",
    "ConnectionAborted",
    "ConnectionReset",
    "ModeMismatch",
    "ProtocolViolation",
    "RingOverrun",
    "SmcHostCdcMsg",
    "SmcHostCursor",
    "SmcRole",
    "SmcSockState",
    "SmcUrgState",
    "SmcdCdcMsg",
    "SmcdConnection",
    "SmcdMode",
    "SocketClosed",
    "open_pair",
    "snapshot_pair",
]
