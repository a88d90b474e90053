"""The SMC socket close state machine of Linux 6.12.118, for a connected pair of sockets.

Theory of operation
-------------------
An SMC-D socket's teardown is driven by ``sk_state`` (``enum smc_state``, net/smc/smc.h), by the
connection-state flags each side sends in its CDCs (``peer_done_writing``, ``peer_conn_closed``,
``peer_conn_abort``) and by the TCP connection underneath (the ``clcsock``), which the SMC layer
shuts down and releases along the way. The data path (:mod:`~smcd_check.spec.datapath`) owns the
cursors and the bytes; this module owns which socket calls succeed and what errno they return
once a side has shut down or closed. All transition logic lives here, after the kernel:

* ``shutdown(2)`` is ``smc_shutdown`` (net/smc/af_smc.c): -ENOTCONN unless ``sk_state`` is one
  of :data:`SHUTDOWN_STATES`; then SHUT_WR runs ``smc_close_shutdown_write``, SHUT_RDWR runs
  ``smc_close_active``, SHUT_RD does nothing in SMC; then (except for SHUT_RDWR from ACTIVE,
  which already shut the clcsock) ``kernel_sock_shutdown(clcsock, how)``, whose
  ``inet_shutdown`` answers -ENOTCONN when the TCP socket is in TCP_CLOSE. The call returns the
  SMC result, or else the TCP one.
* TCP_CLOSE, as far as these calls can see it, is reached when this end has sent its FIN and
  received the peer's (LAST_ACK -> CLOSE once acked; FIN_WAIT2 -> TIME_WAIT hands the
  connection to a timewait socket and ``tcp_done`` sets the socket itself to TCP_CLOSE), or
  after a reset. So a *second* ``shutdown(SHUT_WR)`` after both sides shut down fails with
  ENOTCONN, though the SMC socket is still in APPCLOSEWAIT2 / PEERCLOSEWAIT2 (Linux 6.12.118,
  seen under qemu; issue 16).
* ``close(2)`` is ``__smc_release``: ``smc_close_active``, then SOCK_DEAD and SHUTDOWN_MASK; a
  socket that reaches SMC_CLOSED releases its clcsock (``tcp_close``: a FIN if none was sent).
* A received CDC with flags is ``smc_cdc_msg_recv_action`` (an abort sets ``sk_err`` and marks
  our own ``peer_conn_abort``; any close or done-writing flag sets RCV_SHUTDOWN) followed by
  ``smc_close_passive_work`` (or ``smc_close_passive_abort_received``).
* ``abort`` (no system call does it; ``smc_conn_kill`` does, on a link-group error) is
  ``smc_close_abort`` (send ``peer_conn_abort``) plus ``smc_close_active_abort`` (SMC_CLOSED,
  ``tcp_abort`` resets the clcsock).

The pair is quiescent after every call, as the conformance targets see it: every CDC and FIN a
call sends has been received and processed by the peer (the kernel target waits for the peer's
tasklet and close work). Within one ``shutdown`` call the peer's reaction comes after the call's
own TCP shutdown (the peer's work runs asynchronously), so a FIN the peer sends in reaction does
not make that call fail.

Not modelled: fallback sockets (``use_fallback``: shutdown goes to TCP alone), the linger and
stream-wait timeouts (``smc_close_stream_wait`` is assumed to end with everything sent), a
``killed`` connection (link-group termination) other than through :func:`abort`, listening and
connecting sockets, ``smc_close_non_accepted``.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, replace
from typing import Final, Literal

Side = Literal["a", "b"]


class SmcState(enum.Enum):
    """``enum smc_state`` (net/smc/smc.h) for a connected socket."""

    ACTIVE = "SMC_ACTIVE"
    #: we sent our close or done-writing (active close), waiting for the peer
    PEERCLOSEWAIT1 = "SMC_PEERCLOSEWAIT1"
    #: ... and the peer's done-writing arrived
    PEERCLOSEWAIT2 = "SMC_PEERCLOSEWAIT2"
    #: the peer shut down or closed first (passive close); we have not answered
    APPCLOSEWAIT1 = "SMC_APPCLOSEWAIT1"
    #: ... we answered with done-writing
    APPCLOSEWAIT2 = "SMC_APPCLOSEWAIT2"
    #: we shut down writing, then the peer closed; our close is still due
    APPFINCLOSEWAIT = "SMC_APPFINCLOSEWAIT"
    #: we closed after the peer's shutdown; waiting for its close
    PEERFINCLOSEWAIT = "SMC_PEERFINCLOSEWAIT"
    PEERABORTWAIT = "SMC_PEERABORTWAIT"
    #: the peer aborted while we may still read
    PROCESSABORT = "SMC_PROCESSABORT"
    CLOSED = "SMC_CLOSED"


#: the states in which smc_shutdown goes on; in any other it returns -ENOTCONN
SHUTDOWN_STATES: Final = frozenset({
    SmcState.ACTIVE, SmcState.PEERCLOSEWAIT1, SmcState.PEERCLOSEWAIT2, SmcState.APPCLOSEWAIT1,
    SmcState.APPCLOSEWAIT2, SmcState.APPFINCLOSEWAIT,
})


class How(enum.IntEnum):
    """``shutdown(2)``'s ``how``; ``how + 1`` is the ``sk_shutdown`` mask it sets."""

    SHUT_RD = 0
    SHUT_WR = 1
    SHUT_RDWR = 2


RCV_SHUTDOWN: Final = 1
SEND_SHUTDOWN: Final = 2
SHUTDOWN_MASK: Final = 3


@dataclass(frozen=True, slots=True, kw_only=True)
class ConnFlags:
    """``struct smc_cdc_conn_state_flags``: sent ones are sticky, so received ones are too."""

    peer_done_writing: bool = False
    peer_conn_closed: bool = False
    peer_conn_abort: bool = False

    @property
    def any_close(self) -> bool:
        """``smc_cdc_rxed_any_close`` / ``smc_close_sent_any_close``."""
        return self.peer_conn_closed or self.peer_conn_abort

    @property
    def any_close_or_senddone(self) -> bool:
        return self.any_close or self.peer_done_writing

    def union(self, other: ConnFlags) -> ConnFlags:
        return ConnFlags(peer_done_writing=self.peer_done_writing or other.peer_done_writing,
                         peer_conn_closed=self.peer_conn_closed or other.peer_conn_closed,
                         peer_conn_abort=self.peer_conn_abort or other.peer_conn_abort)


NO_FLAGS: Final = ConnFlags()


@dataclass(frozen=True, slots=True, kw_only=True)
class Clcsock:
    """The TCP socket under the SMC socket, as ``inet_shutdown`` sees it."""

    fin_sent: bool = False
    fin_rcvd: bool = False
    #: reset by either side (``tcp_abort``)
    reset: bool = False
    #: ``smc_clcsock_release`` ran: ``smc->clcsock`` is NULL
    released: bool = False

    @property
    def tcp_close(self) -> bool:
        """The socket is in TCP_CLOSE (both FINs exchanged and acked, or reset)."""
        return self.reset or (self.fin_sent and self.fin_rcvd)


@dataclass(frozen=True, slots=True, kw_only=True)
class Endpoint:
    """One SMC socket of a connected pair."""

    sk_state: SmcState = SmcState.ACTIVE
    #: ``local_tx_ctrl.conn_state_flags``: what we sent (and an abort we received)
    tx: ConnFlags = NO_FLAGS
    #: ``local_rx_ctrl.conn_state_flags``: what the peer sent
    rx: ConnFlags = NO_FLAGS
    #: ``sk_shutdown``: RCV_SHUTDOWN | SEND_SHUTDOWN
    sk_shutdown: int = 0
    #: ``sk_err`` ("" = none)
    sk_err: str = ""
    #: SOCK_DEAD: the application closed the socket
    dead: bool = False
    clcsock: Clcsock = Clcsock()


@dataclass(frozen=True, slots=True, kw_only=True)
class ClosePair:
    """Two connected SMC sockets, ``a`` (client) and ``b`` (server)."""

    a: Endpoint = Endpoint()
    b: Endpoint = Endpoint()

    def get(self, side: Side) -> Endpoint:
        return self.a if side == "a" else self.b

    def put(self, side: Side, ep: Endpoint) -> ClosePair:
        return replace(self, a=ep) if side == "a" else replace(self, b=ep)


@dataclass(frozen=True, slots=True, kw_only=True)
class CallResult:
    """A socket call's outcome: the new pair and the errno name the caller sees ("" = 0)."""

    pair: ClosePair
    errno: str = ""


def _other(side: Side) -> Side:
    return "b" if side == "a" else "a"


# ------------------------------------------------------------------------------------ sending


def _send_flags(pair: ClosePair, side: Side, flags: ConnFlags) -> ClosePair:
    """Set ``flags`` in our ``local_tx_ctrl`` and send a CDC; the peer receives it at once."""
    me = pair.get(side)
    pair = pair.put(side, replace(me, tx=me.tx.union(flags)))
    return _receive_cdc(pair, _other(side))


def _send_fin(pair: ClosePair, side: Side) -> ClosePair:
    """Our clcsock sends its FIN (once); the peer's clcsock receives it."""
    me = pair.get(side)
    if me.clcsock.fin_sent or me.clcsock.tcp_close:
        return pair
    pair = pair.put(side, replace(me, clcsock=replace(me.clcsock, fin_sent=True)))
    peer = pair.get(_other(side))
    return pair.put(_other(side), replace(peer, clcsock=replace(peer.clcsock, fin_rcvd=True)))


def _release_clcsock(pair: ClosePair, side: Side) -> ClosePair:
    """``smc_clcsock_release`` -> ``tcp_close``: a FIN if none was sent, then no clcsock."""
    pair = _send_fin(pair, side)
    me = pair.get(side)
    return pair.put(side, replace(me, clcsock=replace(me.clcsock, released=True)))


# ------------------------------------------------------------------------------------ receiving


def _receive_cdc(pair: ClosePair, side: Side) -> ClosePair:
    """The peer's CDC arrives at ``side``: ``smc_cdc_msg_recv_action`` + the close work."""
    me = pair.get(side)
    rx = me.rx.union(pair.get(_other(side)).tx)
    me = replace(me, rx=rx)
    if rx.peer_conn_abort:
        me = replace(me, sk_err="ECONNRESET", tx=me.tx.union(ConnFlags(peer_conn_abort=True)))
    if not rx.any_close_or_senddone:
        return pair.put(side, me)
    me = replace(me, sk_shutdown=me.sk_shutdown | RCV_SHUTDOWN)
    pair = pair.put(side, me)
    return _passive_work(pair, side)


#: smc_close_passive_abort_received: sk_state -> sk_state after a received peer_conn_abort
#: (PEERCLOSEWAIT1/2 are decided by the tx flags, see the function)
_ABORT_RECEIVED: Final[dict[SmcState, SmcState]] = {
    SmcState.ACTIVE: SmcState.PROCESSABORT,
    SmcState.APPCLOSEWAIT1: SmcState.PROCESSABORT,
    SmcState.APPFINCLOSEWAIT: SmcState.PROCESSABORT,
    SmcState.APPCLOSEWAIT2: SmcState.CLOSED,
    SmcState.PEERFINCLOSEWAIT: SmcState.CLOSED,
    SmcState.PEERABORTWAIT: SmcState.CLOSED,
    SmcState.PROCESSABORT: SmcState.PROCESSABORT,
    SmcState.CLOSED: SmcState.CLOSED,
}


def _passive_work(pair: ClosePair, side: Side) -> ClosePair:
    """``smc_close_passive_work`` on ``side`` (net/smc/smc_close.c)."""
    me = pair.get(side)
    old = me.sk_state
    state = old
    if me.rx.peer_conn_abort:
        if old in (SmcState.PEERCLOSEWAIT1, SmcState.PEERCLOSEWAIT2):
            # our own peer_conn_abort was set on receipt, so "sent any close" holds: CLOSED
            just_shut = me.tx.peer_done_writing and not me.tx.any_close
            state = SmcState.PROCESSABORT if just_shut else SmcState.CLOSED
        else:
            state = _ABORT_RECEIVED[old]
    elif old is SmcState.ACTIVE:
        state = SmcState.APPCLOSEWAIT1
    elif old in (SmcState.PEERCLOSEWAIT1, SmcState.PEERCLOSEWAIT2):
        if old is SmcState.PEERCLOSEWAIT1 and me.rx.peer_done_writing:
            state = SmcState.PEERCLOSEWAIT2
        if me.rx.any_close:
            state = (SmcState.CLOSED if me.dead and me.tx.any_close
                     else SmcState.APPFINCLOSEWAIT)
    elif old is SmcState.PEERFINCLOSEWAIT and me.rx.any_close:
        state = SmcState.CLOSED
    pair = pair.put(side, replace(me, sk_state=state))
    if state is not old and state is SmcState.CLOSED and me.dead:
        pair = _release_clcsock(pair, side)  # smc_conn_free + smc_clcsock_release
    return pair


# ------------------------------------------------------------------------------------ calls


def _close_final(pair: ClosePair, side: Side, unread: bool) -> ClosePair:
    """``smc_close_final``: peer_conn_abort when unread data remains, else peer_conn_closed."""
    flags = ConnFlags(peer_conn_abort=True) if unread else ConnFlags(peer_conn_closed=True)
    return _send_flags(pair, side, flags)


def close_active(pair: ClosePair, side: Side, *, unread: bool) -> ClosePair:
    """``smc_close_active``: the active close of ``close(2)`` and ``shutdown(SHUT_RDWR)``.

    ``unread``: ``bytes_to_rcv`` is not 0 (the data path knows), so the close is an abort.
    """
    me = pair.get(side)
    state = me.sk_state
    if state is SmcState.ACTIVE:
        pair = _close_final(pair, side, unread)
        pair = _set_state(pair, side, SmcState.PEERCLOSEWAIT1)
        # "actively shutdown clcsock before peer close it"
        return _send_fin(pair, side)
    if state is SmcState.APPFINCLOSEWAIT:
        if me.tx.peer_done_writing and not me.tx.any_close:
            pair = _close_final(pair, side, unread)
        return _set_state(pair, side, SmcState.CLOSED)
    if state in (SmcState.APPCLOSEWAIT1, SmcState.APPCLOSEWAIT2):
        pair = _close_final(pair, side, unread)
        after = SmcState.CLOSED if pair.get(side).rx.any_close else SmcState.PEERFINCLOSEWAIT
        return _set_state(pair, side, after)
    if state in (SmcState.PEERCLOSEWAIT1, SmcState.PEERCLOSEWAIT2):
        if me.tx.peer_done_writing and not me.tx.any_close:
            pair = _close_final(pair, side, unread)
        return pair
    if state is SmcState.PROCESSABORT:
        pair = _send_flags(pair, side, ConnFlags(peer_conn_abort=True))  # smc_close_abort
        return _set_state(pair, side, SmcState.CLOSED)
    if state is SmcState.PEERABORTWAIT:
        return _set_state(pair, side, SmcState.CLOSED)
    return pair  # PEERFINCLOSEWAIT, CLOSED: the peer's close moves us on


def close_sends_cdc(ep: Endpoint) -> bool:
    """Whether :func:`close_active` on ``ep`` writes a CDC (``smc_close_final`` or
    ``smc_close_abort``), as its branches decide: from SMC_ACTIVE, APPCLOSEWAIT1/2 and
    PROCESSABORT always; from APPFINCLOSEWAIT and PEERCLOSEWAIT1/2 only after a bare
    done-writing; from SMC_CLOSED, PEERFINCLOSEWAIT and PEERABORTWAIT never."""
    state = ep.sk_state
    if state in (SmcState.ACTIVE, SmcState.APPCLOSEWAIT1, SmcState.APPCLOSEWAIT2,
                 SmcState.PROCESSABORT):
        return True
    if state in (SmcState.APPFINCLOSEWAIT, SmcState.PEERCLOSEWAIT1, SmcState.PEERCLOSEWAIT2):
        return ep.tx.peer_done_writing and not ep.tx.any_close
    return False


def _set_state(pair: ClosePair, side: Side, state: SmcState) -> ClosePair:
    return pair.put(side, replace(pair.get(side), sk_state=state))


def close(pair: ClosePair, side: Side, *, unread: bool) -> ClosePair:
    """``close(2)`` = ``__smc_release``: active close, SOCK_DEAD; CLOSED releases the clcsock."""
    pair = close_active(pair, side, unread=unread)
    me = pair.get(side)
    pair = pair.put(side, replace(me, dead=True, sk_shutdown=SHUTDOWN_MASK))
    if pair.get(side).sk_state is SmcState.CLOSED and not me.clcsock.released:
        pair = _release_clcsock(pair, side)
    return pair


def shutdown(pair: ClosePair, side: Side, how: How) -> CallResult:
    """``shutdown(2)`` = ``smc_shutdown`` (net/smc/af_smc.c) on an open socket."""
    me = pair.get(side)
    if me.sk_state not in SHUTDOWN_STATES:
        return CallResult(pair=pair, errno="ENOTCONN")
    old = me.sk_state
    # The peer reacts to our CDC in its tasklet and close work, after this system call has
    # gone on to kernel_sock_shutdown: a FIN the peer sends in reaction (its release of the
    # clcsock) arrives after inet_shutdown looked at the TCP state, so that state is read now.
    tcp_close = me.clcsock.tcp_close
    do_tcp_shutdown = True
    if how is How.SHUT_RDWR:
        # shutdown(SHUT_RDWR) is an active close; bytes_to_rcv decides closed vs abort. The
        # data path knows it; callers that may have unread data use close_active directly.
        pair = close_active(pair, side, unread=False)
        if old is SmcState.ACTIVE and pair.get(side).sk_state is SmcState.PEERCLOSEWAIT1:
            do_tcp_shutdown = False  # smc_close_active shut the clcsock already
    elif how is How.SHUT_WR:
        pair = _shutdown_write(pair, side)
    errno = ""
    me = pair.get(side)
    if do_tcp_shutdown and not me.clcsock.released:
        if tcp_close:
            errno = "ENOTCONN"  # inet_shutdown on TCP_CLOSE
        elif how is not How.SHUT_RD:
            pair = _send_fin(pair, side)  # tcp_shutdown: SEND_SHUTDOWN sends the FIN
    me = pair.get(side)
    pair = pair.put(side, replace(me, sk_shutdown=me.sk_shutdown | (int(how) + 1)))
    return CallResult(pair=pair, errno=errno)


def _shutdown_write(pair: ClosePair, side: Side) -> ClosePair:
    """``smc_close_shutdown_write``: done-writing from ACTIVE or APPCLOSEWAIT1, else nothing."""
    state = pair.get(side).sk_state
    if state is SmcState.ACTIVE:
        pair = _send_flags(pair, side, ConnFlags(peer_done_writing=True))
        return _set_state(pair, side, SmcState.PEERCLOSEWAIT1)
    if state is SmcState.APPCLOSEWAIT1:
        pair = _send_flags(pair, side, ConnFlags(peer_done_writing=True))
        return _set_state(pair, side, SmcState.APPCLOSEWAIT2)
    return pair


def abort(pair: ClosePair, side: Side) -> ClosePair:
    """``smc_conn_kill``: ``smc_close_abort`` then ``smc_close_active_abort`` (tcp_abort)."""
    pair = _send_flags(pair, side, ConnFlags(peer_conn_abort=True))
    me = pair.get(side)
    clc = me.clcsock
    if not clc.released and not clc.tcp_close:
        peer = pair.get(_other(side))
        pair = pair.put(_other(side), replace(peer, clcsock=replace(peer.clcsock, reset=True)))
        clc = replace(clc, reset=True)
    me = replace(me, sk_err="ECONNABORTED", sk_state=SmcState.CLOSED, dead=True, clcsock=clc)
    pair = pair.put(side, me)
    return _release_clcsock(pair, side)


def send_errno(pair: ClosePair, side: Side) -> str:
    """What ``smc_tx_sendmsg`` refuses a send with before moving data ("" = it goes on).

    EPIPE after our own SEND_SHUTDOWN or with ``sk_err`` set (the peer aborted); ECONNRESET
    once the peer's close or abort has arrived.
    """
    me = pair.get(side)
    if me.sk_err or me.sk_shutdown & SEND_SHUTDOWN:
        return "EPIPE"
    if me.rx.any_close:
        return "ECONNRESET"
    return ""
