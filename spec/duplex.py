"""The full-duplex SMC-D data path of one connection, with urgent data (MSG_OOB).

Theory of operation
-------------------
All transition logic of a full-duplex connection lives here: both ends (side 0 = A, the
client, lifecycle cid ``2p``; side 1 = B, the server, cid ``2p + 1``) are the same kind of
:class:`Side`, each both a writer into its peer's DMB and a reader of its own, and one CDC
message type (:class:`~smcd_check.spec.cdc.CdcMsg`, what ``struct smcd_cdc_msg`` carries in
6.12.118: ``prod``, ``cons``, ``prod_flags`` and ``conn_state_flags``) goes each way. Every CDC
a side writes carries its producer cursor for the data it sends *and* its consumer cursor for
the data it receives, so consumer-cursor updates ride on data CDCs, or go alone when
``smc_tx_consumer_update`` decides to send one. :func:`step` is a pure function ``(cfg, state,
action) -> state`` raising a named :class:`DuplexForbidden`. The one-direction module
:mod:`.datapath` stays as it is (the one-direction configs keep their state counts); this module
reuses its kernel helpers and its abstract ring encoding, and the system composes one or the
other (``SystemConfig.duplex``).

Per side, the kernel view (``struct smc_connection``, names as in the kernel):

* writer: ``tx_curs_prep/sent/fin``, ``sndbuf_space``, ``local_tx_ctrl.prod`` (``prod``),
  ``peer_rmbe_space``, ``local_rx_ctrl.cons`` (``rx_cons``), ``local_tx_ctrl.prod_flags``
  (``write_blocked``, ``urg_data_pending``, ``urg_data_present``) and ``urg_tx_pend``;
* reader: ``local_rx_ctrl.prod`` (``rx_prod``), ``local_tx_ctrl.cons`` (``cons``),
  ``rx_curs_confirmed``, ``bytes_to_rcv``, ``local_rx_ctrl.prod_flags`` (``rx_pflags``),
  ``urg_curs``, ``urg_state``, ``urg_rx_byte``, ``urg_rx_skip_pend``;
* ``local_tx_ctrl.conn_state_flags`` (``flags``) and ``local_rx_ctrl.conn_state_flags``
  (``rx_flags``).

The abstract view is :mod:`.datapath`'s: ring slots hold ``0`` (free) or a byte's tag ``seq mod
M + 1``; an urgent byte's tag has ``M`` added (:func:`is_urgent_tag`), so a read can tell the
urgent byte apart. Each side's reader expects the next in-band sequence number (``seq_expect``)
and sticky history flags record overwrites, overreads, misordered/lost bytes and urgent bytes
delivered in band against ``SO_OOBINLINE`` (``hist_*``).

Rules, each with its kernel function (net/smc/smc_tx.c, smc_cdc.c, smc_rx.c, af_smc.c):

* :class:`AppSend` / :class:`AppSendUrgent` - ``smc_tx_sendmsg``: copy ``n <= sndbuf_space``
  bytes at ``tx_curs_prep`` (merged mode: straight into the peer's DMB); with ``MSG_OOB``
  ``urg_data_pending = 1`` and, the whole message being copied, ``urg_tx_pend = true``. While
  ``urg_tx_pend`` is set sendmsg waits (``smc_tx_wait``): no :class:`AppSend` at all.
* :class:`HostMoveData` - ``smc_tx_rdma_writes`` (``smcd_tx_rdma_writes``): ``len =
  min(to_send, peer_rmbe_space)``, ``write_blocked = to_send >= peer_rmbe_space``, and
  ``urg_data_present = 1`` when ``urg_tx_pend`` and ``len == to_send`` (the urgent byte is the
  last byte before the new ``prod``). ``smcd_tx_sndbuf_nonempty`` skips the data write while
  ``urg_data_present`` is still set (the CDC goes anyway).
* :class:`HostWriteCdc` / :class:`HostEndCdc` - ``smcd_cdc_msg_send``: write ``(prod, cons,
  prod_flags, conn_state_flags)``, then set ``rx_curs_confirmed`` to the ``cons`` *that was
  sent*, clear ``local_rx_ctrl.prod_flags.cons_curs_upd_req``, free the sndbuf (copy mode), and
  (``smcd_tx_sndbuf_nonempty``) clear ``urg_data_pending``/``urg_data_present`` after a CDC that
  carried ``urg_data_present``. The two halves are two actions because ``recvmsg`` (socket lock)
  runs beside the tasklet's and worker's sends (``send_lock``): a read between them moves
  ``cons`` past the value sent. Modelling bound: the peer's tasklet processes that CDC only
  after the send returned (otherwise, with the explorer's small wrap counter, a whole cursor
  period could pass inside a window of microseconds). :class:`HostSendConsUpdate` is the same
  send for a window update ``smc_tx_consumer_update`` decided on.
* :class:`HostRecvCdc` - ``smc_cdc_msg_recv_action``: ``peer_rmbe_space += diff_cons`` (merged:
  ``sndbuf_space += diff(tx_curs_fin, cons)``, ``tx_curs_fin = cons``); on ``diff_prod``
  ``smc_cdc_handle_urg_data_arrival`` when ``urg_data_present`` (``urg_curs = prod``,
  ``urg_state = VALID``, the byte before ``urg_curs`` copied to ``urg_rx_byte``, and without
  ``SO_OOBINLINE`` ``diff_prod -= 1``), ``bytes_to_rcv += diff_prod``; with no new data,
  ``urg_data_pending`` makes ``urg_state = NOTYET``; ``urg_tx_pend`` is cleared when
  ``diff_cons`` and ``peer_rmbe_space == peer_rmbe_size`` after the kick of our own sender
  (``smc_tx_pending``, which runs first and moves any prepared data, so here: and nothing is
  prepared); ``peer_conn_abort`` sets our own.
* :class:`AppRecv` - ``smc_rx_recvmsg`` + ``smc_rx_update_consumer``: read ``n <= readable``
  (``readable - 1`` when ``urg_state == VALID``, ``SO_OOBINLINE`` and ``readable > 1``: "always
  stop at urgent Byte"); ``cons += n``; then with ``urg_state == VALID`` or
  ``urg_rx_skip_pend``: ``diff = comp(cons, urg_curs)``; inline: ``diff == 0`` -> ``force``,
  ``READ``; not inline: ``diff == 1`` -> skip the urgent byte (``cons += 1``), ``force``,
  ``urg_rx_skip_pend = false``; ``diff < -1`` -> ``READ``; then ``smc_tx_consumer_update(force)``.
* :class:`AppRecvEmpty` - ``smc_rx_recvmsg_data_available`` with ``bytes_to_rcv == 0`` and
  ``urg_state == VALID``: ``smc_rx_update_cons(smc, 0)`` (enabled only when it changes
  something).
* :class:`AppRecvUrgent` - ``smc_rx_recv_urg`` (not ``SO_OOBINLINE``, ``urg_state == VALID``):
  deliver ``urg_rx_byte``, ``urg_state = READ``, ``urg_rx_skip_pend = true`` if ``diff(cons,
  urg_curs) > 1``, then ``smc_rx_update_consumer(cons, 0)``.
* :func:`siocatmark` - ``SIOCATMARK`` (``smc_ioctl``): ``diff(cons, urg_curs) == 1``.
* :class:`AppShutdownWrite`, :class:`AppClose`, :class:`AppAbort` - ``smc_close_active`` /
  ``smc_close_abort``: done-writing, closed (abort when data is unread, ``smc_close_final``),
  abort; a close waits until the prepared data was moved (``smc_close_stream_wait``) unless the
  peer closed or aborted (its linger timeout).

Not modelled: the receiver-side coalescing of CDCs (each CDC is delivered, as in
:mod:`.datapath`), ``cons_curs_upd_req`` (never set by 6.12), ``MSG_PEEK``/``MSG_TRUNC``,
splice, corking, partial ``sendmsg`` of an urgent message (an urgent write happens only when it
fits the sndbuf: sendmsg's wait with ``urg_data_pending`` already set is not a state), SIGURG and
``poll``, failed ISM writes, and the receive-side kick deferred to ``release_sock``
(``tx_in_release_sock``) while ``sendmsg`` owns the socket: in that window the kernel can clear
``urg_tx_pend`` before the staged urgent byte moved, which then travels without
``urg_data_present``.

Faults: ``URG_FLAG_NOT_CLEARED`` (``smcd_tx_sndbuf_nonempty`` never clears
``urg_data_pending``/``urg_data_present``: every later send skips its data write, the bytes
never move) and ``URG_NO_SEND_WAIT`` (``smc_tx_sendmsg`` does not wait while ``urg_tx_pend``:
bytes written after the urgent byte join its move, ``urg_data_present`` marks the last of them
and the urgent byte is delivered in band); the one-direction faults of :mod:`.datapath` do not
apply here. A third candidate, "``rx_curs_confirmed`` set from the live ``cons`` instead of the
one the CDC carried", is harmless in this model (and in 6.12's SMC-D): the window-update
decision for bytes read meanwhile is taken before ``HostEndCdc`` and kept, and every later CDC
of the same side carries the live ``cons`` anyway.

Kernel source: net/smc/smc_tx.c, net/smc/smc_cdc.c, net/smc/smc_rx.c, net/smc/af_smc.c
(``smc_ioctl``), net/smc/smc_close.c; digest cursors.md sections 3-7.
"""

from __future__ import annotations

import enum
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from functools import lru_cache
from itertools import pairwise
from typing import Final, TypeAlias

from smcd_check.spec.cdc import NO_PROD_FLAGS, CdcMsg, ConnStateFlags, ProdFlags
from smcd_check.spec.cursor import (
    KERNEL_WRAP_BITS,
    ZERO,
    Cursor,
    smc_curs_add,
    smc_curs_comp,
    smc_curs_diff,
    smc_curs_diff_large,
)
from smcd_check.spec.datapath import Mode
from smcd_check.spec.errors import ForbiddenStep, PreconditionViolated
from smcd_check.spec.faults import Fault

#: the faults this module implements
DUPLEX_FAULTS: Final = frozenset({Fault.URG_FLAG_NOT_CLEARED, Fault.URG_NO_SEND_WAIT})


class UrgState(enum.IntEnum):
    """``enum smc_urg_state`` (net/smc/smc.h)."""

    #: urgent byte arrived and not yet read (``SMC_URG_VALID``)
    VALID = 1
    #: urgent data announced (``urg_data_pending``) but the byte not yet here
    NOTYET = 2
    #: no urgent byte outstanding (``smc_rx_init`` starts here)
    READ = 3


class DuplexConfigError(PreconditionViolated):
    """A :class:`DuplexConfig` outside the supported ranges (names field and value)."""


@dataclass(frozen=True, slots=True, kw_only=True)
class DuplexConfig:
    """Constants and bounds of one full-duplex connection."""

    mode: Mode = Mode.MERGED
    #: bytes in each side's DMB data ring (both sides alike; copy-mode sndbufs the same size)
    ring_size: int = 1
    #: the most bytes one AppSend / AppSendUrgent writes and one AppRecv reads
    max_chunk: int = 1
    #: width of the cursor wrap counter (16 in the kernel)
    wrap_bits: int = 1
    #: capacity of each CDC channel (messages)
    chan_cap: int = 1
    #: ``rmbe_update_limit`` (below ring_size; see :class:`.datapath.DatapathConfig`)
    rmbe_update_limit: int = 0
    #: the sides whose application writes (0 = A, 1 = B)
    senders: tuple[int, ...] = (0, 1)
    #: whether the senders may send urgent data (MSG_OOB)
    urgent: bool = False
    #: SO_OOBINLINE on both sides
    oobinline: bool = False
    #: the receiving application reads urgent data first: while poll reports POLLPRI
    #: (``urg_state == VALID``) it calls recv(MSG_OOB) and no plain recv() (without
    #: SO_OOBINLINE only). False: plain recv() at any time, the urgent byte may be ignored.
    oob_first: bool = False
    close_enabled: bool = True
    abort_enabled: bool = False
    faults: frozenset[Fault] = field(default_factory=frozenset)

    def __post_init__(self) -> None:
        def bad(name: str, value: object, expected: str) -> DuplexConfigError:
            return DuplexConfigError(
                f"DuplexConfig: field {name}={value!r} is invalid: expected {expected}"
            )

        if not isinstance(self.mode, Mode):
            raise bad("mode", self.mode, "Mode.COPY or Mode.MERGED")
        if not 1 <= self.ring_size <= 64:
            raise bad("ring_size", self.ring_size, "1..64")
        if not 1 <= self.wrap_bits <= KERNEL_WRAP_BITS:
            raise bad("wrap_bits", self.wrap_bits, "1..16")
        if self.max_chunk < 1:
            raise bad("max_chunk", self.max_chunk, ">= 1")
        if self.chan_cap < 1:
            raise bad("chan_cap", self.chan_cap, ">= 1")
        if not 0 <= self.rmbe_update_limit < self.ring_size:
            raise bad("rmbe_update_limit", self.rmbe_update_limit, f"0..{self.ring_size - 1}")
        if not self.senders or any(x not in (0, 1) for x in self.senders):
            raise bad("senders", self.senders, "a non-empty tuple of 0 and/or 1")
        if not isinstance(self.faults, frozenset) or not all(
            isinstance(f, Fault) for f in self.faults
        ):
            raise bad("faults", self.faults, "a frozenset of Fault")
        if self.oob_first and (self.oobinline or not self.urgent):
            raise bad("oob_first", True, "urgent data without SO_OOBINLINE")

    @property
    def tag_mod(self) -> int:
        """``M``: tags are ``seq mod M + 1`` (urgent byte: ``+ M``); M is the cursor period."""
        return self.ring_size << self.wrap_bits


# --------------------------------------------------------------------------------------------
# State
# --------------------------------------------------------------------------------------------

NO_FLAGS: Final = ConnStateFlags()


@dataclass(frozen=True, slots=True, kw_only=True)
class Side:
    """One end of the connection: writer into the peer's DMB and reader of its own.

    Units: ``*_space`` and ``bytes_to_rcv`` in bytes; cursors ``(wrap, count)``: tx_curs_* in
    the own sndbuf, ``prod``/``rx_cons`` in the peer's ring, the reader's in the own ring.
    """

    # ---- writer ----
    tx_curs_prep: Cursor = ZERO
    tx_curs_sent: Cursor = ZERO
    tx_curs_fin: Cursor = ZERO
    sndbuf_space: int = 0
    #: local_tx_ctrl.prod (peer's ring)
    prod: Cursor = ZERO
    peer_rmbe_space: int = 0
    #: local_rx_ctrl.cons (peer's ring): the peer's consumer cursor as last received
    rx_cons: Cursor = ZERO
    #: local_tx_ctrl.prod_flags (write_blocked, urg_data_pending, urg_data_present)
    pflags: ProdFlags = NO_PROD_FLAGS
    #: urg_tx_pend: urgent data staged, sendmsg waits until the peer consumed all
    urg_tx_pend: bool = False
    #: data moved, its CDC not yet written (inside smcd_tx_sndbuf_nonempty's send_lock)
    cdc_due: bool = False
    #: a CDC was written and smcd_cdc_msg_send has not finished: the cons it sent
    cdc_cfed: Cursor | None = None
    #: local_tx_ctrl.conn_state_flags (sticky; sent in every CDC)
    flags: ConnStateFlags = NO_FLAGS
    #: local_rx_ctrl.conn_state_flags (what the peer announced)
    rx_flags: ConnStateFlags = NO_FLAGS
    #: the application closed or aborted (no more send/recv)
    app_done: bool = False
    # ---- reader ----
    #: local_rx_ctrl.prod (own ring)
    rx_prod: Cursor = ZERO
    #: local_tx_ctrl.cons (own ring)
    cons: Cursor = ZERO
    rx_curs_confirmed: Cursor = ZERO
    bytes_to_rcv: int = 0
    #: local_rx_ctrl.prod_flags (what the peer's last CDC said; write_blocked cleared locally)
    rx_pflags: ProdFlags = NO_PROD_FLAGS
    #: smc_tx_consumer_update decided to send a window update that is not yet written
    upd_due: bool = False
    urg_curs: Cursor = ZERO
    urg_state: UrgState = UrgState.READ
    #: urg_rx_byte: the urgent byte copied out of the ring at arrival (its tag)
    urg_rx_byte: int = 0
    urg_rx_skip_pend: bool = False
    # ---- abstract view ----
    #: own DMB data ring: 0 = free, else the tag of the byte in the slot
    dmb: tuple[int, ...] = ()
    #: own sndbuf (copy mode; empty in merged mode)
    sndbuf: tuple[int, ...] = ()
    #: sequence number (mod M) of the next byte this side's application writes
    seq_next: int = 0
    #: sequence number (mod M) of the next byte this side's reader must get in band
    seq_expect: int = 0
    hist_overwrite: bool = False
    hist_overread: bool = False
    #: an in-band read or skip got a byte other than the next one (lost, twice, reordered)
    hist_misorder: bool = False
    #: an urgent byte was delivered in band without SO_OOBINLINE, or recv(MSG_OOB) returned a
    #: byte that is not an urgent one (recv(MSG_OOB) twice is excluded by urg_state READ)
    hist_urg_wrong: bool = False


@dataclass(frozen=True, slots=True, kw_only=True)
class DuplexState:
    """Both sides and the two CDC channels (``chans[x]``: written by side x, oldest first)."""

    sides: tuple[Side, Side]
    chans: tuple[tuple[CdcMsg, ...], tuple[CdcMsg, ...]] = ((), ())


def initial_state(cfg: DuplexConfig) -> DuplexState:
    """Right after the handshake: cursors zero, rings empty, ``urg_state = READ``
    (``smc_rx_init``)."""
    n = cfg.ring_size
    side = Side(
        sndbuf_space=n,
        peer_rmbe_space=n,
        dmb=(0,) * n,
        sndbuf=(0,) * n if cfg.mode is Mode.COPY else (),
    )
    return DuplexState(sides=(side, side))


# --------------------------------------------------------------------------------------------
# Actions (side: 0 = A / client, 1 = B / server)
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class AppSend:
    """The application of ``side`` writes ``n`` bytes (smc_tx_sendmsg)."""

    side: int
    n: int


@dataclass(frozen=True, slots=True, kw_only=True)
class AppSendUrgent:
    """``send(n bytes, MSG_OOB)`` (smc_tx_sendmsg with MSG_OOB): the last byte is urgent."""

    side: int
    n: int


@dataclass(frozen=True, slots=True, kw_only=True)
class HostMoveData:
    """``side`` moves prepared bytes into the peer's ring (smc_tx_rdma_writes)."""

    side: int


@dataclass(frozen=True, slots=True, kw_only=True)
class HostWriteCdc:
    """``side`` writes the CDC announcing the moved data (smcd_cdc_msg_send, first half)."""

    side: int


@dataclass(frozen=True, slots=True, kw_only=True)
class HostEndCdc:
    """``side`` finishes smcd_cdc_msg_send: rx_curs_confirmed, sndbuf freed, urgent flags."""

    side: int


@dataclass(frozen=True, slots=True, kw_only=True)
class HostRecvCdc:
    """``side`` processes the peer's oldest CDC (smc_cdc_msg_recv_action)."""

    side: int


@dataclass(frozen=True, slots=True, kw_only=True)
class AppRecv:
    """The application of ``side`` reads ``n`` bytes (smc_rx_recvmsg, smc_rx_update_consumer)."""

    side: int
    n: int


@dataclass(frozen=True, slots=True, kw_only=True)
class AppRecvEmpty:
    """recvmsg finds no data but a valid urgent byte: smc_rx_update_cons(smc, 0)."""

    side: int


@dataclass(frozen=True, slots=True, kw_only=True)
class AppRecvUrgent:
    """``recv(MSG_OOB)`` (smc_rx_recv_urg)."""

    side: int


@dataclass(frozen=True, slots=True, kw_only=True)
class HostSendConsUpdate:
    """``side`` writes the window-update CDC smc_tx_consumer_update decided on."""

    side: int


@dataclass(frozen=True, slots=True, kw_only=True)
class AppShutdownWrite:
    """shutdown(SHUT_WR) (smc_close_wr): CDC with peer_done_writing."""

    side: int


@dataclass(frozen=True, slots=True, kw_only=True)
class AppClose:
    """close() (smc_close_final): peer_conn_closed, or peer_conn_abort when data is unread."""

    side: int


@dataclass(frozen=True, slots=True, kw_only=True)
class AppAbort:
    """abort (smc_close_abort): CDC with peer_conn_abort."""

    side: int


Action: TypeAlias = (
    AppSend
    | AppSendUrgent
    | HostMoveData
    | HostWriteCdc
    | HostEndCdc
    | HostRecvCdc
    | AppRecv
    | AppRecvEmpty
    | AppRecvUrgent
    | HostSendConsUpdate
    | AppShutdownWrite
    | AppClose
    | AppAbort
)

#: every action class, in the order :func:`enabled_actions` tries them (per side)
ACTION_TYPES: Final = (
    AppSend,
    AppSendUrgent,
    HostMoveData,
    HostWriteCdc,
    HostEndCdc,
    HostRecvCdc,
    AppRecv,
    AppRecvEmpty,
    AppRecvUrgent,
    HostSendConsUpdate,
    AppShutdownWrite,
    AppClose,
    AppAbort,
)

#: the actions that touch only urgent data (a config without urgent data never takes them)
URGENT_ACTIONS: Final = (AppSendUrgent, AppRecvEmpty, AppRecvUrgent)
#: close actions (off unless close_enabled / abort_enabled)
CLOSE_ACTIONS: Final = (AppShutdownWrite, AppClose)


class DuplexForbidden(ForbiddenStep):
    """An action that is not enabled in the current state (names the action and the rule)."""


class SendWouldBlock(DuplexForbidden):
    """A send while sndbuf_space is short or urgent data is staged (smc_tx_wait)."""


class RecvWouldBlock(DuplexForbidden):
    """A receive of more than is readable, or recv(MSG_OOB) with no valid urgent byte."""


class SideClosed(DuplexForbidden):
    """An action after the side (or its peer, for sends) closed or aborted."""


class ChannelFull(DuplexForbidden):
    """A CDC while the channel towards the peer holds chan_cap messages."""


class NothingToDo(DuplexForbidden):
    """An action whose kernel guard is false (nothing to move, no message, no update due)."""


class ActionDisabledByConfig(DuplexForbidden):
    """An action or argument the config switches off."""


# --------------------------------------------------------------------------------------------
# Kernel computations
# --------------------------------------------------------------------------------------------


def _add(cfg: DuplexConfig, c: Cursor, v: int) -> Cursor:
    return smc_curs_add(cfg.ring_size, c, v, wrap_bits=cfg.wrap_bits)


def to_send(cfg: DuplexConfig, x: Side) -> int:
    """``smc_tx_prepared_sends``: ``diff(tx_curs_sent, tx_curs_prep)``."""
    return smc_curs_diff(cfg.ring_size, x.tx_curs_sent, x.tx_curs_prep)


def readable(cfg: DuplexConfig, x: Side) -> int:
    """Bytes one recvmsg chunk may take: ``bytes_to_rcv``, less one when an inline urgent byte
    is valid and more than one byte is there ("always stop at urgent Byte", smc_rx_recvmsg)."""
    r = x.bytes_to_rcv
    if x.urg_state is UrgState.VALID and cfg.oobinline and r > 1:
        r -= 1
    return r


def siocatmark(cfg: DuplexConfig, x: Side) -> bool:
    """``ioctl(SIOCATMARK)`` on an open socket (smc_ioctl): ``diff(cons, urg_curs) == 1``."""
    return smc_curs_diff(cfg.ring_size, x.cons, x.urg_curs) == 1


def is_urgent_tag(cfg: DuplexConfig, tag: int) -> bool:
    """Whether an abstract slot tag marks an urgent byte."""
    return tag > cfg.tag_mod


def _seq_of(cfg: DuplexConfig, tag: int) -> int:
    return (tag - 1) % cfg.tag_mod


def _writer_stopped(x: Side) -> bool:
    """No data moves or data CDCs: the side aborted or the peer aborted (-EPIPE)."""
    return x.flags.peer_conn_abort or x.rx_flags.peer_conn_abort


def _may_send(x: Side) -> bool:
    """smc_tx_sendmsg proceeds: not shut down/closed/aborted, and no close/abort received."""
    return not (x.app_done or x.flags.any_close_or_senddone or x.rx_flags.any_close)


def _reader_stopped(x: Side) -> bool:
    """No window updates: the side closed/aborted, or received an abort."""
    return x.flags.any_close or x.rx_flags.peer_conn_abort


def _update_rule(cfg: DuplexConfig, x: Side, cons: Cursor, force: bool) -> bool:
    """``smc_tx_consumer_update``'s decision (``cons_curs_upd_req`` is never set by 6.12)."""
    if force:
        return True
    size = cfg.ring_size
    to_confirm = smc_curs_diff(size, x.rx_curs_confirmed, cons)
    if to_confirm <= cfg.rmbe_update_limit:
        return False
    sender_free = size - smc_curs_diff_large(
        size, x.rx_curs_confirmed, x.rx_prod, wrap_bits=cfg.wrap_bits
    )
    return sender_free <= size // 2 or x.rx_pflags.write_blocked


def _put(
    ring: tuple[int, ...], start: Cursor, tags: tuple[int, ...]
) -> tuple[tuple[int, ...], bool]:
    size = len(ring)
    if start.count >= size:
        return ring, True
    slots = list(ring)
    clash = False
    for i, tag in enumerate(tags):
        idx = (start.count + i) % size
        clash = clash or slots[idx] != 0
        slots[idx] = tag
    return tuple(slots), clash


def _take(ring: tuple[int, ...], start: Cursor, n: int) -> tuple[tuple[int, ...], tuple[int, ...]]:
    size = len(ring)
    if start.count >= size:
        return ring, ()
    slots = list(ring)
    got = []
    for i in range(n):
        idx = (start.count + i) % size
        got.append(slots[idx])
        slots[idx] = 0
    return tuple(slots), tuple(got)


# --------------------------------------------------------------------------------------------
# Guards
# --------------------------------------------------------------------------------------------


def _why_not(cfg: DuplexConfig, s: DuplexState, a: Action) -> DuplexForbidden | None:
    side = a.side
    if side not in (0, 1):
        return ActionDisabledByConfig(f"{type(a).__name__}: side must be 0 or 1, got {side}")
    x = s.sides[side]
    name = f"{type(a).__name__}(side={side})"
    chan_full = len(s.chans[side]) >= cfg.chan_cap
    match a:
        case AppSend(n=n) | AppSendUrgent(n=n):
            if side not in cfg.senders or (isinstance(a, AppSendUrgent) and not cfg.urgent):
                return ActionDisabledByConfig(f"{name}: this side does not send in this config")
            if not 1 <= n <= cfg.max_chunk:
                return ActionDisabledByConfig(f"{name}: n={n} must be 1..{cfg.max_chunk}")
            if not _may_send(x):
                return SideClosed(f"{name}: flags {x.flags}, received {x.rx_flags}")
            if x.urg_tx_pend and Fault.URG_NO_SEND_WAIT not in cfg.faults:
                return SendWouldBlock(f"{name}: urgent data staged (urg_tx_pend), smc_tx_wait")
            if n > x.sndbuf_space:
                return SendWouldBlock(f"{name}: n={n} > sndbuf_space={x.sndbuf_space}")
            return None
        case HostMoveData():
            if _writer_stopped(x):
                return SideClosed(f"{name}: the connection was aborted")
            if x.cdc_due or x.cdc_cfed is not None:
                return NothingToDo(f"{name}: the previous CDC is not finished (send_lock)")
            if x.pflags.urg_data_present:
                # smcd_tx_sndbuf_nonempty would skip the data write and repeat the last CDC
                # unchanged: a stutter, left out (only a fault leaves the flag set here)
                return NothingToDo(f"{name}: urg_data_present still set, no data write")
            if to_send(cfg, x) <= 0 or x.peer_rmbe_space <= 0:
                return NothingToDo(
                    f"{name}: to_send={to_send(cfg, x)}, peer_rmbe_space={x.peer_rmbe_space}"
                )
            return None
        case HostWriteCdc():
            if _writer_stopped(x):
                return SideClosed(f"{name}: the connection was aborted")
            if not x.cdc_due:
                return NothingToDo(f"{name}: no moved data to announce")
            return ChannelFull(f"{name}: channel full") if chan_full else None
        case HostEndCdc():
            return None if x.cdc_cfed is not None else NothingToDo(f"{name}: no CDC written")
        case HostRecvCdc():
            if not s.chans[1 - side]:
                return NothingToDo(f"{name}: no CDC from the peer")
            if s.sides[1 - side].cdc_cfed is not None:
                # modelling bound: the peer finishes smcd_cdc_msg_send (microseconds under
                # send_lock) before this side's tasklet reacts; otherwise a whole cursor period
                # of the explorer's small wrap could pass inside that window
                return NothingToDo(f"{name}: the peer's smcd_cdc_msg_send has not returned")
            return None
        case AppRecv(n=n):
            if not 1 <= n <= cfg.max_chunk:
                return ActionDisabledByConfig(f"{name}: n={n} must be 1..{cfg.max_chunk}")
            if x.app_done:
                return SideClosed(f"{name}: the application closed the socket")
            if cfg.oob_first and x.urg_state is UrgState.VALID:
                return ActionDisabledByConfig(f"{name}: the application reads urgent data first")
            if n > readable(cfg, x):
                return RecvWouldBlock(f"{name}: n={n} > readable={readable(cfg, x)}")
            return None
        case AppRecvEmpty():
            if not cfg.urgent:
                return ActionDisabledByConfig(f"{name}: no urgent data in this config")
            if x.app_done:
                return SideClosed(f"{name}: the application closed the socket")
            if x.bytes_to_rcv != 0 or x.urg_state is not UrgState.VALID:
                return NothingToDo(f"{name}: data available or no valid urgent byte")
            if cfg.oob_first:
                return ActionDisabledByConfig(f"{name}: no plain recv() while POLLPRI")
            # SO_OOBINLINE does not disable it: smc_rx_recvmsg_data_available calls
            # smc_rx_update_cons(smc, 0) whenever urg_state is VALID, and its inline branch sets
            # READ once cons has reached urg_curs. With the option fixed from the start that
            # state never arises (the in-band read over the mark set READ), but an application
            # may set SO_OOBINLINE after a non-inline skip left the byte VALID: the kernel then
            # ends the urgent state on the next recv() that finds nothing (found by random
            # lockstep walks against the C target; Linux 6.12.118 answers the later
            # recv(MSG_OOB) with EINVAL: catalogue case urgent.inline-set-after-skip)
            if _consume(cfg, x, 0, force=False) == x:
                return NothingToDo(f"{name}: smc_rx_update_cons(0) would change nothing")
            return None
        case AppRecvUrgent():
            if not cfg.urgent or cfg.oobinline:
                return ActionDisabledByConfig(f"{name}: recv(MSG_OOB) is EINVAL here")
            if x.app_done:
                return SideClosed(f"{name}: the application closed the socket")
            if x.urg_state is not UrgState.VALID:
                return RecvWouldBlock(f"{name}: urg_state={x.urg_state.name} (EINVAL/EAGAIN)")
            return None
        case HostSendConsUpdate():
            if _reader_stopped(x):
                return SideClosed(f"{name}: closed or aborted")
            if not x.upd_due:
                return NothingToDo(f"{name}: smc_tx_consumer_update decided no")
            if x.cdc_due or x.cdc_cfed is not None:
                return NothingToDo(f"{name}: another CDC holds send_lock")
            return ChannelFull(f"{name}: channel full") if chan_full else None
        case AppShutdownWrite() | AppClose():
            if not cfg.close_enabled:
                return ActionDisabledByConfig(f"{name}: close is disabled in this config")
            if x.app_done or x.flags.any_close:
                return SideClosed(f"{name}: already closed ({x.flags})")
            if isinstance(a, AppShutdownWrite) and (
                x.flags.peer_done_writing or x.rx_flags.peer_conn_abort
            ):
                return SideClosed(f"{name}: already shut down or aborted by the peer")
            if x.cdc_due or x.cdc_cfed is not None:
                return NothingToDo(f"{name}: a CDC holds send_lock")
            if to_send(cfg, x) > 0 and not (x.rx_flags.any_close or _writer_stopped(x)):
                return NothingToDo(f"{name}: prepared data not moved yet (smc_close_stream_wait)")
            return ChannelFull(f"{name}: channel full") if chan_full else None
        case AppAbort():
            if not cfg.abort_enabled:
                return ActionDisabledByConfig(f"{name}: abort is disabled in this config")
            if x.app_done or x.flags.any_close:
                return SideClosed(f"{name}: already closed ({x.flags})")
            if x.cdc_due or x.cdc_cfed is not None:
                return NothingToDo(f"{name}: a CDC holds send_lock")
            return ChannelFull(f"{name}: channel full") if chan_full else None
    raise TypeError(f"not a duplex action: {a!r}")  # pragma: no cover


def action_enabled(cfg: DuplexConfig, s: DuplexState, a: Action) -> bool:
    """True iff ``step(cfg, s, a)`` would succeed."""
    return _why_not(cfg, s, a) is None


# --------------------------------------------------------------------------------------------
# Effects
# --------------------------------------------------------------------------------------------


def step(cfg: DuplexConfig, s: DuplexState, a: Action) -> DuplexState:
    """The effect of ``a`` (raises a :class:`DuplexForbidden` when it is not enabled)."""
    err = _why_not(cfg, s, a)
    if err is not None:
        raise err
    return _finish(cfg, s, a, _side_step(cfg, s, a))


def _side_step(cfg: DuplexConfig, s: DuplexState, a: Action) -> DuplexState:
    x = s.sides[a.side]
    match a:
        case AppSend(n=n):
            return _set(s, a.side, _app_write(cfg, x, n, urgent=False))
        case AppSendUrgent(n=n):
            return _set(s, a.side, _app_write(cfg, x, n, urgent=True))
        case HostMoveData():
            return _set(s, a.side, _move_data(cfg, x))
        case HostWriteCdc():
            return _write_cdc(s, a.side, replace(x, cdc_due=False))
        case HostEndCdc():
            return _set(s, a.side, _end_cdc(cfg, x))
        case HostRecvCdc():
            return _recv_cdc(cfg, s, a.side)
        case AppRecv(n=n):
            return _set(s, a.side, _recv(cfg, x, n))
        case AppRecvEmpty():
            return _set(s, a.side, _consume(cfg, x, 0, force=False))
        case AppRecvUrgent():
            return _set(s, a.side, _recv_urg(cfg, x))
        case HostSendConsUpdate():
            return _write_cdc(s, a.side, replace(x, upd_due=False))
        case AppShutdownWrite():
            return _close_cdc(s, a.side, replace(x.flags, peer_done_writing=True), done=False)
        case AppClose():
            unread = x.bytes_to_rcv > 0
            flags = (
                replace(x.flags, peer_conn_abort=True)
                if unread
                else replace(x.flags, peer_conn_closed=True)
            )
            return _close_cdc(s, a.side, flags, done=True)
        case AppAbort():
            return _close_cdc(s, a.side, replace(x.flags, peer_conn_abort=True), done=True)
    raise TypeError(f"not a duplex action: {a!r}")  # pragma: no cover


def _set(s: DuplexState, k: int, x: Side) -> DuplexState:
    sides = (x, s.sides[1]) if k == 0 else (s.sides[0], x)
    return DuplexState(sides=sides, chans=s.chans)


def _msg(x: Side, flags: ConnStateFlags) -> CdcMsg:
    return CdcMsg(prod=x.prod, cons=x.cons, prod_flags=x.pflags, conn_state_flags=flags)


def _write_cdc(s: DuplexState, k: int, x: Side) -> DuplexState:
    """smcd_cdc_msg_send's write: the CDC goes out; the rest waits for :class:`HostEndCdc`."""
    chans = list(s.chans)
    chans[k] = (*chans[k], _msg(x, x.flags))
    x = replace(x, cdc_cfed=x.cons)
    sides = (x, s.sides[1]) if k == 0 else (s.sides[0], x)
    return DuplexState(sides=sides, chans=(chans[0], chans[1]))


def _end_cdc(cfg: DuplexConfig, x: Side) -> Side:
    """The rest of smcd_cdc_msg_send (and of smcd_tx_sndbuf_nonempty)."""
    assert x.cdc_cfed is not None
    changes: dict[str, object] = {
        "cdc_cfed": None,
        "rx_curs_confirmed": x.cdc_cfed,
        "rx_pflags": replace(x.rx_pflags, cons_curs_upd_req=False),
    }
    if cfg.mode is Mode.COPY:
        changes["sndbuf_space"] = x.sndbuf_space + smc_curs_diff(
            cfg.ring_size, x.tx_curs_fin, x.tx_curs_sent
        )
        changes["tx_curs_fin"] = x.tx_curs_sent
    if x.pflags.urg_data_present and Fault.URG_FLAG_NOT_CLEARED not in cfg.faults:
        changes["pflags"] = replace(x.pflags, urg_data_pending=False, urg_data_present=False)
    return replace(x, **changes)  # type: ignore[arg-type]


def _close_cdc(s: DuplexState, k: int, flags: ConnStateFlags, *, done: bool) -> DuplexState:
    """A close/shutdown/abort CDC: written and finished at once (the same smcd_cdc_msg_send,
    nothing interleaves with the last CDC that matters)."""
    x = s.sides[k]
    chans = list(s.chans)
    chans[k] = (*chans[k], _msg(x, flags))
    x = replace(
        x,
        flags=flags,
        app_done=x.app_done or done,
        rx_curs_confirmed=x.cons,
        upd_due=False,
    )
    sides = (x, s.sides[1]) if k == 0 else (s.sides[0], x)
    return DuplexState(sides=sides, chans=(chans[0], chans[1]))


def _app_write(cfg: DuplexConfig, x: Side, n: int, *, urgent: bool) -> Side:
    """smc_tx_sendmsg: copy at tx_curs_prep; prep += n; sndbuf_space -= n; MSG_OOB: the
    urgent flags."""
    m = cfg.tag_mod
    tags = tuple((x.seq_next + i) % m + 1 for i in range(n))
    if urgent:
        tags = (*tags[:-1], tags[-1] + m)
    changes: dict[str, object] = {
        "tx_curs_prep": _add(cfg, x.tx_curs_prep, n),
        "sndbuf_space": x.sndbuf_space - n,
        "seq_next": (x.seq_next + n) % m,
    }
    if urgent:
        changes["pflags"] = replace(x.pflags, urg_data_pending=True)
        changes["urg_tx_pend"] = True
    if cfg.mode is Mode.COPY:
        buf, clash = _put(x.sndbuf, x.tx_curs_prep, tags)
        changes["sndbuf"] = buf
        changes["hist_overwrite"] = x.hist_overwrite or clash
    # merged mode: the bytes go into the peer's ring (:func:`_finish`)
    return replace(x, **changes)  # type: ignore[arg-type]


def _move_data(cfg: DuplexConfig, x: Side) -> Side:
    """smc_tx_rdma_writes (smcd_tx_sndbuf_nonempty calls it while ``urg_data_present`` is
    clear); the copy into the peer ring is :func:`_finish`'s."""
    pending = to_send(cfg, x)
    length = min(pending, x.peer_rmbe_space)
    pflags = replace(x.pflags, write_blocked=pending >= x.peer_rmbe_space)
    if x.urg_tx_pend and length == pending:
        pflags = replace(pflags, urg_data_present=True)
    return replace(
        x,
        pflags=pflags,
        prod=_add(cfg, x.prod, length),
        tx_curs_sent=_add(cfg, x.tx_curs_sent, length),
        peer_rmbe_space=x.peer_rmbe_space - length,
        cdc_due=True,
    )


def _recv_cdc(cfg: DuplexConfig, s: DuplexState, k: int) -> DuplexState:
    """smc_cdc_msg_recv_action on side k for the peer's oldest CDC."""
    chans = list(s.chans)
    msg = chans[1 - k][0]
    chans[1 - k] = chans[1 - k][1:]
    x = s.sides[k]
    size = cfg.ring_size
    changes: dict[str, object] = {
        "rx_cons": msg.cons,
        "rx_prod": msg.prod,
        "rx_pflags": msg.prod_flags,
        "rx_flags": msg.conn_state_flags,
    }
    diff_cons = smc_curs_diff(size, x.rx_cons, msg.cons)
    space = x.peer_rmbe_space
    if diff_cons:
        space += diff_cons
        changes["peer_rmbe_space"] = space
        if cfg.mode is Mode.MERGED:
            changes["sndbuf_space"] = x.sndbuf_space + smc_curs_diff(size, x.tx_curs_fin, msg.cons)
            changes["tx_curs_fin"] = msg.cons
    diff_prod = smc_curs_diff(size, x.rx_prod, msg.prod)
    if diff_prod:
        if msg.prod_flags.urg_data_present:
            # smc_cdc_handle_urg_data_arrival
            changes["urg_curs"] = msg.prod
            changes["urg_state"] = UrgState.VALID
            if not cfg.oobinline:
                diff_prod -= 1
            idx = msg.prod.count - 1 if msg.prod.count else size - 1
            changes["urg_rx_byte"] = x.dmb[idx] if 0 <= idx < size else 0
        changes["bytes_to_rcv"] = x.bytes_to_rcv + diff_prod
    elif msg.prod_flags.urg_data_pending:
        changes["urg_state"] = UrgState.NOTYET
    # the receive action first kicks our sender (smc_tx_pending, when diff_cons and data is
    # prepared): that move takes peer ring space, so the check below can only pass with no
    # prepared data left (the kick deferred to release_sock while sendmsg owns the socket is
    # not modelled: see the module docstring)
    if diff_cons and x.urg_tx_pend and space == size and to_send(cfg, x) == 0:
        changes["urg_tx_pend"] = False
    if msg.conn_state_flags.peer_conn_abort and not x.flags.peer_conn_abort:
        changes["flags"] = replace(x.flags, peer_conn_abort=True)
        changes["upd_due"] = False
    x = replace(x, **changes)  # type: ignore[arg-type]
    sides = (x, s.sides[1]) if k == 0 else (s.sides[0], x)
    return DuplexState(sides=sides, chans=(chans[0], chans[1]))


def _recv(cfg: DuplexConfig, x: Side, n: int) -> Side:
    """smc_rx_recvmsg's copy of n bytes at cons (abstract checks), then
    smc_rx_update_consumer."""
    m = cfg.tag_mod
    dmb, got = _take(x.dmb, x.cons, n)
    overread = len(got) < n or 0 in got
    misorder = False
    urg_wrong = False
    expect = x.seq_expect
    for t in got:
        if t == 0:
            continue
        if _seq_of(cfg, t) != expect:
            misorder = True
        if is_urgent_tag(cfg, t) and not cfg.oobinline:
            urg_wrong = True
        expect = (expect + 1) % m
    x = replace(
        x,
        dmb=dmb,
        bytes_to_rcv=x.bytes_to_rcv - n,
        seq_expect=(x.seq_expect + n) % m,
        hist_overread=x.hist_overread or overread,
        hist_misorder=x.hist_misorder or misorder,
        hist_urg_wrong=x.hist_urg_wrong or urg_wrong,
    )
    return _consume(cfg, x, n, force=False)


def _consume(cfg: DuplexConfig, x: Side, n: int, *, force: bool) -> Side:
    """smc_rx_update_consumer(cons, n): cons += n, the urgent-byte rules, then
    smc_tx_consumer_update(force) and the write_blocked clearing."""
    cons = _add(cfg, x.cons, n)
    urg_state, skip_pend = x.urg_state, x.urg_rx_skip_pend
    dmb, seq_expect = x.dmb, x.seq_expect
    hist_misorder, hist_urg_wrong = x.hist_misorder, x.hist_urg_wrong
    if urg_state is UrgState.VALID or skip_pend:
        diff = smc_curs_comp(cfg.ring_size, cons, x.urg_curs)
        if cfg.oobinline:
            if diff == 0:
                force = True
                urg_state = UrgState.READ
        elif diff == 1:
            # skip the urgent byte
            force = True
            dmb, got = _take(dmb, cons, 1)
            cons = _add(cfg, cons, 1)
            skip_pend = False
            if not got or not is_urgent_tag(cfg, got[0]) or _seq_of(cfg, got[0]) != seq_expect:
                hist_misorder = True  # a data byte skipped: lost
            seq_expect = (seq_expect + 1) % cfg.tag_mod
        elif diff < -1:
            urg_state = UrgState.READ
    upd_due = not _reader_stopped(x) and (x.upd_due or _update_rule(cfg, x, cons, force))
    rx_pflags = x.rx_pflags
    if rx_pflags.write_blocked and x.bytes_to_rcv == 0:
        rx_pflags = replace(rx_pflags, write_blocked=False)
    return replace(
        x,
        cons=cons,
        urg_state=urg_state,
        urg_rx_skip_pend=skip_pend,
        dmb=dmb,
        seq_expect=seq_expect,
        hist_misorder=hist_misorder,
        hist_urg_wrong=hist_urg_wrong,
        upd_due=upd_due,
        rx_pflags=rx_pflags,
    )


def _recv_urg(cfg: DuplexConfig, x: Side) -> Side:
    """smc_rx_recv_urg: hand out urg_rx_byte, READ, maybe a pending skip, then
    smc_rx_update_consumer(cons, 0)."""
    wrong = not is_urgent_tag(cfg, x.urg_rx_byte)
    skip = smc_curs_diff(cfg.ring_size, x.cons, x.urg_curs) > 1
    x = replace(
        x,
        urg_state=UrgState.READ,
        urg_rx_skip_pend=x.urg_rx_skip_pend or skip,
        hist_urg_wrong=x.hist_urg_wrong or wrong,
    )
    return _consume(cfg, x, 0, force=False)


# --------------------------------------------------------------------------------------------
# The peer-ring half of a write: a merged AppSend writes the peer's ring through the ghost
# sndbuf, a copy-mode HostMoveData copies the sndbuf into it (ISM move_data).
# --------------------------------------------------------------------------------------------


def _finish(cfg: DuplexConfig, s: DuplexState, a: Action, t: DuplexState) -> DuplexState:
    """Write the bytes of a merged AppSend / copy-mode HostMoveData into the peer's ring."""
    k = a.side
    x0, x1 = s.sides[k], t.sides[k]
    peer = t.sides[1 - k]
    if cfg.mode is Mode.MERGED and isinstance(a, AppSend | AppSendUrgent):
        m = cfg.tag_mod
        tags = tuple((x0.seq_next + i) % m + 1 for i in range(a.n))
        if isinstance(a, AppSendUrgent):
            tags = (*tags[:-1], tags[-1] + m)
        dmb, clash = _put(peer.dmb, x0.tx_curs_prep, tags)
        peer = replace(peer, dmb=dmb, hist_overwrite=peer.hist_overwrite or clash)
        return _set(t, 1 - k, peer)
    if cfg.mode is Mode.COPY and isinstance(a, HostMoveData):
        length = smc_curs_diff(cfg.ring_size, x0.tx_curs_sent, x1.tx_curs_sent)
        sndbuf, moved = _take(x1.sndbuf, x0.tx_curs_sent, length)
        if len(moved) < length:
            moved = moved + (0,) * (length - len(moved))
        dmb, clash = _put(peer.dmb, x0.prod, moved)
        t = _set(t, k, replace(x1, sndbuf=sndbuf))
        peer = replace(peer, dmb=dmb, hist_overwrite=peer.hist_overwrite or clash)
        return _set(t, 1 - k, peer)
    return t


# --------------------------------------------------------------------------------------------
# Explorer interface
# --------------------------------------------------------------------------------------------


@lru_cache(maxsize=64)
def candidate_actions(cfg: DuplexConfig) -> tuple[Action, ...]:
    """Every action of this config, side A's before side B's, each side in ACTION_TYPES order."""
    acts: list[Action] = []
    for k in (0, 1):
        if k in cfg.senders:
            acts += [AppSend(side=k, n=n) for n in range(1, cfg.max_chunk + 1)]
            if cfg.urgent:
                acts += [AppSendUrgent(side=k, n=n) for n in range(1, cfg.max_chunk + 1)]
            acts += [HostMoveData(side=k), HostWriteCdc(side=k)]
        acts += [HostEndCdc(side=k), HostRecvCdc(side=k)]
        acts += [AppRecv(side=k, n=n) for n in range(1, cfg.max_chunk + 1)]
        if cfg.urgent and not cfg.oobinline:
            if not cfg.oob_first:
                acts.append(AppRecvEmpty(side=k))
            acts.append(AppRecvUrgent(side=k))
        acts.append(HostSendConsUpdate(side=k))
        if cfg.close_enabled:
            acts += [AppShutdownWrite(side=k), AppClose(side=k)]
        if cfg.abort_enabled:
            acts.append(AppAbort(side=k))
    return tuple(acts)


def enabled_actions(cfg: DuplexConfig, s: DuplexState) -> Iterator[Action]:
    """The enabled actions in ``s``, in :func:`candidate_actions` order (deterministic)."""
    for a in candidate_actions(cfg):
        if _why_not(cfg, s, a) is None:
            yield a


def side_done(x: Side) -> bool:
    """The side's application closed or aborted, or an abort reached it."""
    return x.flags.any_close


def is_final(cfg: DuplexConfig, s: DuplexState) -> bool:
    """No action pending is fine: both channels empty, both sides closed or aborted."""
    return not s.chans[0] and not s.chans[1] and all(side_done(x) for x in s.sides)


def _side_cursors(cfg: DuplexConfig, x: Side) -> Iterator[Cursor]:
    yield from (x.tx_curs_prep, x.tx_curs_sent, x.tx_curs_fin, x.prod, x.rx_cons)
    yield from (x.rx_prod, x.cons, x.rx_curs_confirmed, x.urg_curs)
    if x.cdc_cfed is not None:
        yield x.cdc_cfed


def _cursors(cfg: DuplexConfig, s: DuplexState) -> Iterator[Cursor]:
    for x in s.sides:
        yield from _side_cursors(cfg, x)
    for ch in s.chans:
        for msg in ch:
            yield msg.prod
            yield msg.cons


def within_boundary(cfg: DuplexConfig, s: DuplexState) -> bool:
    """False once a history flag is set or a counter left every meaningful range."""
    n = cfg.ring_size
    for x in s.sides:
        if x.hist_overwrite or x.hist_overread or x.hist_misorder or x.hist_urg_wrong:
            return False
        if not all(-2 * n <= v <= 2 * n for v in (x.sndbuf_space, x.peer_rmbe_space)):
            return False
        if not -2 * n <= x.bytes_to_rcv <= 2 * n:
            return False
    return all(c.count < n and c.wrap < (1 << cfg.wrap_bits) for c in _cursors(cfg, s))


# --------------------------------------------------------------------------------------------
# Invariants
# --------------------------------------------------------------------------------------------


def _dist(cfg: DuplexConfig, old: Cursor, new: Cursor) -> int:
    n = cfg.ring_size
    return ((new.wrap * n + new.count) - (old.wrap * n + old.count)) % (n << cfg.wrap_bits)


def _chain_ok(cfg: DuplexConfig, chain: list[Cursor]) -> bool:
    total = sum(_dist(cfg, a, b) for a, b in pairwise(chain))
    return total == _dist(cfg, chain[0], chain[-1]) and total < cfg.tag_mod


def type_ok(cfg: DuplexConfig, s: DuplexState) -> bool:
    """Cursors inside their rings, channels within capacity, rings of the configured length,
    tags in 0..2M, sequence numbers in 0..M-1."""
    n, m = cfg.ring_size, cfg.tag_mod
    return (
        all(c.count < n and c.wrap < (1 << cfg.wrap_bits) for c in _cursors(cfg, s))
        and all(len(ch) <= cfg.chan_cap for ch in s.chans)
        and all(
            len(x.dmb) == n
            and len(x.sndbuf) == (n if cfg.mode is Mode.COPY else 0)
            and all(0 <= t <= 2 * m for t in x.dmb + x.sndbuf)
            and 0 <= x.seq_next < m
            and 0 <= x.seq_expect < m
            and isinstance(x.urg_state, UrgState)
            for x in s.sides
        )
    )


def no_byte_lost_or_twice(cfg: DuplexConfig, s: DuplexState) -> bool:
    """Every in-band read or urgent skip, in either direction, got the next byte of the stream
    (none lost, none delivered twice, none reordered) and never an unwritten slot."""
    return not any(x.hist_misorder or x.hist_overread for x in s.sides)


def no_overwrite(cfg: DuplexConfig, s: DuplexState) -> bool:
    """No write in either direction landed on a slot holding an unconsumed (or unmoved) byte."""
    return not any(x.hist_overwrite for x in s.sides)


def urgent_once_as_oobinline_says(cfg: DuplexConfig, s: DuplexState) -> bool:
    """An urgent byte is never delivered in band without SO_OOBINLINE, and recv(MSG_OOB) only
    ever returns the urgent byte, once."""
    return not any(x.hist_urg_wrong for x in s.sides)


def space_accounting(cfg: DuplexConfig, s: DuplexState) -> bool:
    """Per side: sndbuf_space + moved-not-freed + written-not-moved == sndbuf length, and
    peer_rmbe_space + produced-not-known-consumed == peer ring length."""
    n = cfg.ring_size
    for x in s.sides:
        used = _dist(cfg, x.tx_curs_fin, x.tx_curs_sent) + _dist(
            cfg, x.tx_curs_sent, x.tx_curs_prep
        )
        if x.sndbuf_space + used != n:
            return False
        if x.peer_rmbe_space + _dist(cfg, x.rx_cons, x.prod) != n:
            return False
    return True


def cursors_ordered(cfg: DuplexConfig, s: DuplexState) -> bool:
    """Per direction k -> peer: the peer's cons as k received it <= cons values in flight <=
    cons <= the reader's received prod <= prods in flight <= prod (merged: <= tx_curs_prep);
    rx_curs_confirmed <= the cons of a CDC being sent <= cons, and the cons the peer received
    is at most the last one sent; and
    tx_curs_fin <= tx_curs_sent <= tx_curs_prep."""
    for k in (0, 1):
        w, r = s.sides[k], s.sides[1 - k]
        chain = [w.rx_cons, *(m.cons for m in s.chans[1 - k]), r.cons, r.rx_prod]
        chain += [*(m.prod for m in s.chans[k]), w.prod]
        if cfg.mode is Mode.MERGED:
            chain.append(w.tx_curs_prep)
        if not _chain_ok(cfg, chain):
            return False
        confirmed = [r.rx_curs_confirmed, r.cons]
        if r.cdc_cfed is not None:
            confirmed.insert(1, r.cdc_cfed)
        if not _chain_ok(cfg, confirmed):
            return False
        if not _chain_ok(cfg, [w.rx_cons, confirmed[-2], r.cons]):
            return False
        if not _chain_ok(cfg, [w.tx_curs_fin, w.tx_curs_sent, w.tx_curs_prep]):
            return False
    return True


def counters_in_range(cfg: DuplexConfig, s: DuplexState) -> bool:
    """0 <= sndbuf_space, peer_rmbe_space, bytes_to_rcv <= ring length on both sides."""
    n = cfg.ring_size
    return all(
        0 <= x.sndbuf_space <= n and 0 <= x.peer_rmbe_space <= n and 0 <= x.bytes_to_rcv <= n
        for x in s.sides
    )


@dataclass(frozen=True, slots=True, kw_only=True)
class Invariant:
    """A named state predicate; ``name`` is a sentence and the lookup key."""

    name: str
    statement: str
    predicate: Callable[[DuplexConfig, DuplexState], bool] = field(compare=False)


#: the full-duplex invariants (names are sentences in the protocol's words)
INVARIANTS: Final = (
    Invariant(name="type ok", statement=type_ok.__doc__ or "", predicate=type_ok),
    Invariant(
        name="no byte is delivered twice or lost, in either direction",
        statement=no_byte_lost_or_twice.__doc__ or "",
        predicate=no_byte_lost_or_twice,
    ),
    Invariant(
        name="no write overwrites unconsumed data, in either direction",
        statement=no_overwrite.__doc__ or "",
        predicate=no_overwrite,
    ),
    Invariant(
        name="the urgent byte is delivered exactly once, in band or out of band as "
        "SO_OOBINLINE says",
        statement=urgent_once_as_oobinline_says.__doc__ or "",
        predicate=urgent_once_as_oobinline_says,
    ),
    Invariant(
        name="space accounting is consistent on both sides",
        statement=space_accounting.__doc__ or "",
        predicate=space_accounting,
    ),
    Invariant(
        name="cursors never move backwards, in either direction",
        statement=cursors_ordered.__doc__ or "",
        predicate=cursors_ordered,
    ),
    Invariant(
        name="space counters stay within their buffer on both sides",
        statement=counters_in_range.__doc__ or "",
        predicate=counters_in_range,
    ),
)


def violated(cfg: DuplexConfig, s: DuplexState) -> tuple[str, ...]:
    """Names of the invariants ``s`` violates, in INVARIANTS order."""
    return tuple(inv.name for inv in INVARIANTS if not inv.predicate(cfg, s))
