"""The SMC-D data path of one direction of one connection: writer A -> reader B's DMB.

Theory of operation
-------------------
All transition logic of the data path lives here, as explicit state (:class:`DatapathState`) and
actions (``Writer*``/``Reader*`` classes); :func:`step` is a pure function ``(cfg, state,
action) -> state`` that raises a named :class:`DatapathForbidden` (a
:class:`~smcd_check.spec.errors.ForbiddenStep`) when the action is not enabled and never mutates
anything. The spec does not know which implementation runs it.

Two views are kept side by side (house style item 10):

* the **kernel view**: the cursors and counters of ``struct smc_connection`` with the kernel's
  names and the kernel's arithmetic (:mod:`~smcd_check.spec.cursor`): ``tx_curs_prep``,
  ``tx_curs_sent``, ``tx_curs_fin``, ``sndbuf_space``, ``local_tx_ctrl.prod`` (``w_prod``),
  ``peer_rmbe_space``, ``local_rx_ctrl.cons`` (``w_rx_cons``) on the writer;
  ``local_rx_ctrl.prod`` (``r_rx_prod``), ``local_tx_ctrl.cons`` (``r_cons``),
  ``rx_curs_confirmed``, ``bytes_to_rcv`` on the reader. This is what is under test.
* the **abstract view**: the ring contents. Every byte of the stream has a sequence number; a
  ring slot holds ``0`` (free: never written, or already consumed / moved) or ``tag = (seq mod
  M) + 1`` with ``M = 2**wrap_bits * ring_size``, the number of distinct cursor positions (the
  cursor *period*). The reader remembers the sequence number it expects next (``seq_expect``,
  mod M) and the writer the next one it writes (``seq_next``). Why this tag: it is bounded
  (explored states stay finite), it is a function of the byte's position in the stream, so in a
  correct run the slot contents are determined by the cursors and add no states; and it detects
  every failure we care about: a write into a non-free slot is an *overwrite* (recorded at the
  moment it happens); a read of a free slot is an *overread*; a read of a slot whose tag is not
  ``seq_expect + 1`` is a *reordering* or a byte from the wrong lap -- two bytes with equal tags
  are a full cursor period (at least ``2 * ring_size`` bytes) apart, which cannot both be in a
  ring of ``ring_size`` slots. Because ``M`` is the cursor period, the abstract position and the
  kernel cursor can be compared exactly (the refinement invariant "the reader's consumer cursor
  encodes the abstract stream position").

Overwrites, overreads and misordered reads are recorded in three sticky *history* flags
(``hist_*``) at the step where they happen, so the invariants are plain state predicates.

Modes (``DatapathConfig.mode``):

* ``Mode.COPY``: A's app writes go into A's own sndbuf (``WriterAppWrite``); ``WriterMoveData``
  copies ``len = min(to_send, peer_rmbe_space)`` bytes into B's DMB (``smc_tx_rdma_writes`` /
  ``smcd_tx_rdma_writes``: ISM move_data, sf=0) and sets ``write_blocked = to_send >=
  peer_rmbe_space``; ``WriterSendCdc`` writes the CDC (``smcd_cdc_msg_send``: sf=1) and then
  frees the sndbuf: ``sndbuf_space += diff(tx_curs_fin, tx_curs_sent)``, ``tx_curs_fin =
  tx_curs_sent``. Moving and the CDC are one locked section in the kernel
  (``smcd_tx_sndbuf_nonempty`` under ``send_lock``); they are two actions here so the explorer
  sees the reader act in between (B never reads past the producer cursor it received), and a
  second move waits for the first one's CDC (``w_cdc_due``).
* ``Mode.MERGED`` (loopback-ism "nocopy", v6.10+): A's sndbuf is B's data ring (same size, same
  offsets), so ``WriterAppWrite`` writes straight into B's DMB at ``tx_curs_prep``;
  ``WriterMoveData`` copies nothing (the loopback move_data of sf=0 is a no-op) but advances
  ``prod``/``tx_curs_sent``; the CDC frees nothing; ``sndbuf_space`` comes back only in
  ``WriterRecvCdc``: on ``diff_cons != 0``, ``sndbuf_space += diff(tx_curs_fin, cons)``,
  ``tx_curs_fin = cons`` (``__smc_cdc_msg_recv_action``).

Timing: the kernel moves data at the end of ``sendmsg`` (unless corked), on the CDC-receive kick
and from the tx worker; here ``WriterMoveData`` is enabled whenever it could do something, which
covers every such schedule (corking = doing it later).

Reader: ``ReaderRecvCdc`` applies ``smc_cdc_msg_recv_action`` (``bytes_to_rcv += diff(old prod,
new prod)``, flags); ``ReaderRead(n)`` is ``smc_rx_recvmsg`` + ``smc_rx_update_consumer``:
``cons += n``, then the ``smc_tx_consumer_update`` rule (``to_confirm = diff(rx_curs_confirmed,
cons)``; ``sender_free = len - diff_large(rx_curs_confirmed, local_rx_ctrl.prod)`` when
``to_confirm > rmbe_update_limit``; send if ``cons_curs_upd_req`` or ``force`` or (``to_confirm
> rmbe_update_limit`` and (``sender_free <= len/2`` or the peer's ``write_blocked``))), recorded
in ``r_upd_due``; then the peer's ``write_blocked`` is cleared once ``bytes_to_rcv == 0``.
``ReaderSendConsUpdate`` sends that CDC (carrying the current ``cons``) and sets
``rx_curs_confirmed``. ``force`` and ``cons_curs_upd_req`` are always false here (no urgent data;
Linux 6.12 never sets ``cons_curs_upd_req``).

Channels: CDC messages travel through two FIFO channels of capacity ``chan_cap`` (A->B, B->A)
and are delivered one by one, in order. **No coalescing**: the real SMC-D CDC is a single
header slot in the receiver's DMB, so several writes before the tasklet runs coalesce into the
last one. Delivering every message instead gives the receiver the same cursor sums (each delta is
a ``diff`` of consecutive cursors) and only adds intermediate states; a full channel makes the
sender wait (the kernel's header write never waits: this is a modelling bound).

Close / abort (connection-level flags in ``conn_state_flags``; link groups and DMB registration
belong to :mod:`lifecycle`), enabled by ``cfg.close_enabled`` / ``cfg.abort_enabled``:

* ``WriterShutdownWrite`` (shutdown(SHUT_WR), ``peer_done_writing``) and ``WriterClose``
  (``peer_conn_closed``) are enabled once every prepared byte has been moved (the kernel's
  ``smc_close_stream_wait``; its linger timeout is not modelled) and send a CDC. After either, A
  may not ``WriterAppWrite`` (``SendAfterClose``; sendmsg gets -EPIPE).
* ``WriterAbort`` (``peer_conn_abort``) sends a CDC; afterwards A neither writes, moves nor
  sends data CDCs (``smc_tx_sndbuf_nonempty`` returns -EPIPE).
* ``ReaderClose`` sends ``peer_conn_closed``, or ``peer_conn_abort`` when unread data remains
  (``bytes_to_rcv > 0``, ``smc_close_final``); ``ReaderAbort`` sends ``peer_conn_abort``. After
  either, B neither reads nor sends consumer updates.
* On receipt: ``peer_conn_abort`` also sets the receiver's own outgoing abort flag (6.12.118);
  a writer that received the reader's close or abort may not write (sendmsg gets -ECONNRESET)
  and, after an abort, not move data; a reader that received done-writing or close may still
  read the remaining data (``smc_rx_recvmsg`` reads available data before reporting EOF), after
  an abort it may not (modelling choice: the connection is reset).
* Flags are sticky and repeated in every later CDC.

Faults (:class:`~smcd_check.spec.faults.Fault`), checked where they apply:

* ``MERGED_IGNORES_CONS`` (merged mode only): ``WriterAppWrite(n)`` is enabled for every ``n <=
  max_chunk``, whatever ``sndbuf_space`` says (Spin's BUG_NOCHECK).
* ``SPACE_FORGETS_IN_FLIGHT``: the writer's free-space computation forgets bytes it has written
  but not yet moved/announced: copy mode frees the sndbuf up to ``tx_curs_prep`` instead of
  ``tx_curs_sent`` at the CDC; merged mode sets ``sndbuf_space = len - diff(cons,
  tx_curs_sent)`` on a consumer update instead of adding ``diff(tx_curs_fin, cons)``.
* ``COMP_IGNORES_WRAP``: the writer's free-space check compares cursors by count only: the space
  it may use is ``len - ((ahead.count - behind.count) mod len)`` computed from (``tx_curs_fin``,
  ``tx_curs_prep``) for a merged app write and (``local_rx_ctrl.cons``, ``prod``) for a copy-mode
  move, instead of the kernel's counters; a full ring (equal counts, wraps one apart) looks empty.
* ``NO_CONSUMER_UPDATE``: the reader never decides to send a consumer-cursor update, so the
  writer stalls once the ring is full (a deadlock when close is disabled).

Not modelled: urgent data (MSG_OOB, ``urg_*`` flags, ``force``), corking timers, the kernel's
partial ``sendmsg`` (a smaller ``n`` is the same thing), SMC-R, failed ISM writes, the reverse
data direction (B's producer cursor and A's consumer cursor stay zero), link-group and DMB
lifecycle (see ``lifecycle``), concurrency inside one side beyond the Begin/End split of
move-then-CDC.

Kernel source: net/smc/smc_tx.c (``smc_tx_sendmsg``, ``smc_tx_rdma_writes``,
``smcd_tx_rdma_writes``, ``smc_tx_sndbuf_nonempty``, ``smc_tx_consumer_update``),
net/smc/smc_cdc.c (``smcd_cdc_msg_send``, ``smc_cdc_msg_recv_action``), net/smc/smc_rx.c
(``smc_rx_recvmsg``, ``smc_rx_update_consumer``), net/smc/smc_close.c; digest cursors.md
sections 4-6, lifecycle.md section 5.
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
    SMC_SNDBUF_SIZES,
    SMCD_DATA_RING_SIZES,
    ZERO,
    Cursor,
    Ring,
    smc_curs_add,
    smc_curs_diff,
    smc_curs_diff_large,
)
from smcd_check.spec.errors import ForbiddenStep, PreconditionViolated
from smcd_check.spec.faults import Fault

# --------------------------------------------------------------------------------------------
# Configuration
# --------------------------------------------------------------------------------------------


class Mode(enum.Enum):
    """How the writer's sndbuf relates to the reader's DMB."""

    #: the writer has its own sndbuf and copies into the peer DMB (ISM move_data)
    COPY = "copy"
    #: the writer's sndbuf *is* the peer's DMB data ring (loopback-ism nocopy, ghost sndbuf)
    MERGED = "merged"


#: the faults this module implements (others are ignored here: they belong to other modules)
DATAPATH_FAULTS: Final = frozenset(
    {
        Fault.MERGED_IGNORES_CONS,
        Fault.SPACE_FORGETS_IN_FLIGHT,
        Fault.COMP_IGNORES_WRAP,
        Fault.NO_CONSUMER_UPDATE,
    }
)


class DatapathConfigError(PreconditionViolated):
    """A :class:`DatapathConfig` outside the ranges the spec supports (names field and value)."""


@dataclass(frozen=True, slots=True, kw_only=True)
class DatapathConfig:
    """Constants and bounds of one data-path instance (kept separate from the spec logic)."""

    mode: Mode = Mode.MERGED
    #: bytes in B's DMB data ring (``rmb_desc->len`` = ``peer_rmbe_size``)
    ring_size: int = 4
    #: bytes in A's sndbuf (copy mode); ``None`` means equal to ``ring_size``. Merged mode
    #: requires ``None`` or ``ring_size`` (the ghost sndbuf is the peer ring).
    sndbuf_size: int | None = None
    #: the most bytes one ``WriterAppWrite`` writes
    max_chunk: int = 2
    #: the most bytes one ``ReaderRead`` reads (``None``: up to the ring size)
    max_read: int | None = None
    #: width of the cursor wrap counter in bits (16 in the kernel; 1..3 for exploration)
    wrap_bits: int = 2
    #: capacity of each CDC channel (messages)
    chan_cap: int = 2
    #: ``rmbe_update_limit``: bytes the reader may consume before it considers a window update.
    #: The kernel uses ``max(len/10, SOCK_MIN_SNDBUF/2)`` (see ``cursor.kernel_rmbe_update_limit``),
    #: which exceeds small exploration rings, so it is a parameter; must be below ``ring_size``.
    rmbe_update_limit: int = 0
    #: whether WriterShutdownWrite / WriterClose / ReaderClose are actions
    close_enabled: bool = True
    #: whether WriterAbort / ReaderAbort are actions
    abort_enabled: bool = False
    #: exploration mode: small rings and narrow wraps (``False``: kernel sizes and 16-bit wrap)
    small_ok: bool = True
    #: switched-on faults (only those in :data:`DATAPATH_FAULTS` have an effect here)
    faults: frozenset[Fault] = field(default_factory=frozenset)

    def __post_init__(self) -> None:
        def bad(name: str, value: object, expected: str) -> DatapathConfigError:
            return DatapathConfigError(
                f"DatapathConfig: field {name}={value!r} is invalid: expected {expected}"
            )

        if not isinstance(self.mode, Mode):
            raise bad("mode", self.mode, "Mode.COPY or Mode.MERGED")
        if self.small_ok:
            if not 1 <= self.ring_size <= 64:
                raise bad("ring_size", self.ring_size, "1..64 in exploration mode")
            if self.sndbuf_size is not None and not 1 <= self.sndbuf_size <= 64:
                raise bad("sndbuf_size", self.sndbuf_size, "1..64 in exploration mode")
            if not 1 <= self.wrap_bits <= KERNEL_WRAP_BITS:
                raise bad("wrap_bits", self.wrap_bits, "1..16")
        else:
            if self.ring_size not in SMCD_DATA_RING_SIZES:
                raise bad("ring_size", self.ring_size, f"one of {SMCD_DATA_RING_SIZES}")
            if (
                self.sndbuf_size is not None
                and self.mode is Mode.COPY
                and (self.sndbuf_size not in SMC_SNDBUF_SIZES)
            ):
                raise bad("sndbuf_size", self.sndbuf_size, f"one of {SMC_SNDBUF_SIZES}")
            if self.wrap_bits != KERNEL_WRAP_BITS:
                raise bad("wrap_bits", self.wrap_bits, "16 in kernel-faithful mode")
        if self.mode is Mode.MERGED and self.sndbuf_size not in (None, self.ring_size):
            raise bad("sndbuf_size", self.sndbuf_size, "None or ring_size in merged mode")
        if self.max_chunk < 1:
            raise bad("max_chunk", self.max_chunk, ">= 1")
        if self.max_read is not None and self.max_read < 1:
            raise bad("max_read", self.max_read, "None or >= 1")
        if self.chan_cap < 1:
            raise bad("chan_cap", self.chan_cap, ">= 1")
        if not 0 <= self.rmbe_update_limit < self.ring_size:
            raise bad("rmbe_update_limit", self.rmbe_update_limit, f"0..{self.ring_size - 1}")
        if not isinstance(self.faults, frozenset) or not all(
            isinstance(f, Fault) for f in self.faults
        ):
            raise bad("faults", self.faults, "a frozenset of Fault")
        if Fault.MERGED_IGNORES_CONS in self.faults and self.mode is not Mode.MERGED:
            raise bad(
                "faults", Fault.MERGED_IGNORES_CONS.value, "merged mode (it is a merged-mode bug)"
            )

    @property
    def sndbuf_len(self) -> int:
        """Length of the writer's sndbuf ring (``sndbuf_desc->len``)."""
        if self.mode is Mode.MERGED or self.sndbuf_size is None:
            return self.ring_size
        return self.sndbuf_size

    @property
    def rmb(self) -> Ring:
        """Geometry of B's DMB data ring (prod, cons, rx_curs_confirmed live here)."""
        return Ring(size=self.ring_size, wrap_bits=self.wrap_bits, small_ok=self.small_ok)

    @property
    def sndbuf(self) -> Ring:
        """Geometry of A's sndbuf ring (tx_curs_prep/sent/fin live here)."""
        return Ring(size=self.sndbuf_len, wrap_bits=self.wrap_bits, small_ok=self.small_ok)

    @property
    def tag_mod(self) -> int:
        """``M``: byte tags are ``seq mod M + 1``; M is the DMB ring's cursor period."""
        return self.ring_size << self.wrap_bits

    @property
    def read_max(self) -> int:
        """The largest ``n`` of ``ReaderRead(n)``."""
        return self.ring_size if self.max_read is None else min(self.max_read, self.ring_size)


# --------------------------------------------------------------------------------------------
# State
# --------------------------------------------------------------------------------------------

NO_FLAGS: Final = ConnStateFlags()


@dataclass(frozen=True, slots=True, kw_only=True)
class DatapathState:
    """One reachable configuration of the A -> B data path (kernel view + abstract view).

    Units: every ``*_space`` and ``bytes_to_rcv`` is in bytes; cursors are ``(wrap, count)`` in
    the ring named in the comment; ``seq_*`` are byte sequence numbers mod ``cfg.tag_mod``.
    """

    # ---- writer A, kernel view ----
    #: tx_curs_prep (sndbuf ring): end of the data the application wrote
    tx_curs_prep: Cursor = ZERO
    #: tx_curs_sent (sndbuf ring): end of the data moved to the peer DMB
    tx_curs_sent: Cursor = ZERO
    #: tx_curs_fin (sndbuf ring): end of the sndbuf space given back
    tx_curs_fin: Cursor = ZERO
    #: sndbuf_space (bytes): free space the application may write into
    sndbuf_space: int = 0
    #: local_tx_ctrl.prod (B's ring): producer cursor A announces
    w_prod: Cursor = ZERO
    #: peer_rmbe_space (bytes): space A believes is free in B's ring
    peer_rmbe_space: int = 0
    #: local_rx_ctrl.cons (B's ring): B's consumer cursor as A last received it
    w_rx_cons: Cursor = ZERO
    #: local_tx_ctrl.prod_flags.write_blocked, sent with A's next CDC
    w_write_blocked: bool = False
    #: data moved but its CDC not yet written (second half of smcd_tx_sndbuf_nonempty)
    w_cdc_due: bool = False
    #: local_tx_ctrl.conn_state_flags of A (sticky; sent in every CDC)
    w_flags: ConnStateFlags = NO_FLAGS
    #: local_rx_ctrl.conn_state_flags of A (what B announced)
    w_rx_flags: ConnStateFlags = NO_FLAGS
    # ---- reader B, kernel view ----
    #: local_rx_ctrl.prod (B's ring): A's producer cursor as B last received it
    r_rx_prod: Cursor = ZERO
    #: local_tx_ctrl.cons (B's ring): B's own consumer cursor
    r_cons: Cursor = ZERO
    #: rx_curs_confirmed (B's ring): the consumer cursor B last sent
    rx_curs_confirmed: Cursor = ZERO
    #: bytes_to_rcv (bytes): announced and not yet read
    bytes_to_rcv: int = 0
    #: local_rx_ctrl.prod_flags.write_blocked of B (A said it ran out of space)
    r_peer_write_blocked: bool = False
    #: smc_tx_consumer_update decided to send a window update that is not yet written
    r_upd_due: bool = False
    #: local_tx_ctrl.conn_state_flags of B
    r_flags: ConnStateFlags = NO_FLAGS
    #: B's application closed or aborted its socket (no more recvmsg). Kept apart from
    #: ``r_flags``: receiving an abort sets B's own outgoing abort flag too, but the kernel's
    #: smc_rx_recvmsg still hands out data already announced until the app closes.
    r_app_done: bool = False
    #: local_rx_ctrl.conn_state_flags of B (what A announced)
    r_rx_flags: ConnStateFlags = NO_FLAGS
    # ---- channels (FIFO, oldest first) ----
    #: CDC messages A -> B not yet received
    a2b: tuple[CdcMsg, ...] = ()
    #: CDC messages B -> A not yet received
    b2a: tuple[CdcMsg, ...] = ()
    # ---- abstract view ----
    #: B's DMB data ring: 0 = free, else (seq mod M) + 1 of the byte in the slot
    dmb: tuple[int, ...] = ()
    #: A's own sndbuf (copy mode; empty tuple in merged mode): same encoding
    sndbuf: tuple[int, ...] = ()
    #: sequence number (mod M) of the next byte the application writes
    seq_next: int = 0
    #: sequence number (mod M) of the next byte the reader must get
    seq_expect: int = 0
    #: history: some write hit a slot holding an unconsumed (or unmoved) byte, or left the ring
    hist_overwrite: bool = False
    #: history: some read got a slot that held no written byte, or left the ring
    hist_overread: bool = False
    #: history: some read got a byte other than the next one of the stream
    hist_misorder: bool = False


_STATE_FIELDS: Final = tuple(DatapathState.__dataclass_fields__)
_new_state = object.__new__
_set = object.__setattr__


def _evolve(s: DatapathState, **changes: object) -> DatapathState:
    """``dataclasses.replace`` for :class:`DatapathState`, without re-running ``__init__``.

    Several times faster (the explorer creates millions of states); the fields given are of the
    right types by construction inside this module.
    """
    new = _new_state(DatapathState)
    for name in _STATE_FIELDS:
        _set(new, name, changes[name] if name in changes else getattr(s, name))
    return new


def initial_state(cfg: DatapathConfig) -> DatapathState:
    """The state right after the handshake: all cursors zero, every buffer empty and free."""
    return DatapathState(
        sndbuf_space=cfg.sndbuf_len,
        peer_rmbe_space=cfg.ring_size,
        dmb=(0,) * cfg.ring_size,
        sndbuf=(0,) * cfg.sndbuf_len if cfg.mode is Mode.COPY else (),
    )


# --------------------------------------------------------------------------------------------
# Actions
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class WriterAppWrite:
    """A's application writes ``n`` bytes (smc_tx_sendmsg): into its sndbuf (merged: B's DMB)."""

    n: int


@dataclass(frozen=True, slots=True, kw_only=True)
class WriterMoveData:
    """A moves prepared bytes into B's ring (smc_tx_rdma_writes/smcd_tx_rdma_writes)."""


@dataclass(frozen=True, slots=True, kw_only=True)
class WriterSendCdc:
    """A writes the CDC announcing its producer cursor (smcd_cdc_msg_send)."""


@dataclass(frozen=True, slots=True, kw_only=True)
class WriterRecvCdc:
    """A processes B's oldest CDC (smc_cdc_msg_recv_action)."""


@dataclass(frozen=True, slots=True, kw_only=True)
class WriterShutdownWrite:
    """A shuts down writing (shutdown(SHUT_WR), smc_close_wr): CDC with peer_done_writing."""


@dataclass(frozen=True, slots=True, kw_only=True)
class WriterClose:
    """A closes (smc_close_final): CDC with peer_conn_closed."""


@dataclass(frozen=True, slots=True, kw_only=True)
class WriterAbort:
    """A aborts (smc_close_abort): CDC with peer_conn_abort."""


@dataclass(frozen=True, slots=True, kw_only=True)
class ReaderRecvCdc:
    """B processes A's oldest CDC (smc_cdc_msg_recv_action)."""


@dataclass(frozen=True, slots=True, kw_only=True)
class ReaderRead:
    """B's application reads ``n`` bytes (smc_rx_recvmsg + smc_rx_update_consumer)."""

    n: int


@dataclass(frozen=True, slots=True, kw_only=True)
class ReaderSendConsUpdate:
    """B writes the window-update CDC smc_tx_consumer_update decided on."""


@dataclass(frozen=True, slots=True, kw_only=True)
class ReaderClose:
    """B closes (smc_close_final): CDC with peer_conn_closed (peer_conn_abort if data is unread)."""


@dataclass(frozen=True, slots=True, kw_only=True)
class ReaderAbort:
    """B aborts (smc_close_abort): CDC with peer_conn_abort."""


Action: TypeAlias = (
    WriterAppWrite
    | WriterMoveData
    | WriterSendCdc
    | WriterRecvCdc
    | WriterShutdownWrite
    | WriterClose
    | WriterAbort
    | ReaderRecvCdc
    | ReaderRead
    | ReaderSendConsUpdate
    | ReaderClose
    | ReaderAbort
)

#: every action class, in the order :func:`enabled_actions` tries them
ACTION_TYPES: Final = (
    WriterAppWrite,
    WriterMoveData,
    WriterSendCdc,
    WriterRecvCdc,
    WriterShutdownWrite,
    WriterClose,
    WriterAbort,
    ReaderRecvCdc,
    ReaderRead,
    ReaderSendConsUpdate,
    ReaderClose,
    ReaderAbort,
)


# --------------------------------------------------------------------------------------------
# Errors: a forbidden step names the action, the rule and the values
# --------------------------------------------------------------------------------------------


class DatapathForbidden(ForbiddenStep):
    """An action that is not enabled in the current data-path state."""


class WriteWouldOverwrite(DatapathForbidden):
    """WriterAppWrite(n) with n above the space the writer may use (sendmsg would not copy it)."""


class ReadPastProducer(DatapathForbidden):
    """ReaderRead(n) with n above bytes_to_rcv (the reader never reads past the producer cursor)."""


class SendAfterClose(DatapathForbidden):
    """A write, move or CDC after the side closed/aborted or learned the peer did."""


class ReadAfterClose(DatapathForbidden):
    """A read or window update after the reader closed/aborted or received an abort."""


class ChannelFull(DatapathForbidden):
    """A CDC while the channel towards the peer holds chan_cap messages."""


class NoMessage(DatapathForbidden):
    """A receive with no CDC waiting."""


class NothingToDo(DatapathForbidden):
    """An action whose kernel guard is false (nothing to move, no update due, not drained...)."""


class ActionDisabledByConfig(DatapathForbidden):
    """A close/abort action in a config that disables it, or an argument outside the config."""


# --------------------------------------------------------------------------------------------
# Helpers (kernel computations, with the faults where they apply)
# --------------------------------------------------------------------------------------------


def _add(size: int, c: Cursor, v: int, cfg: DatapathConfig) -> Cursor:
    return smc_curs_add(size, c, v, wrap_bits=cfg.wrap_bits)


def _wrap_blind_used(size: int, behind: Cursor, ahead: Cursor) -> int:
    """COMP_IGNORES_WRAP: bytes between two cursors judged by count only."""
    return (ahead.count - behind.count) % size


def to_send(cfg: DatapathConfig, s: DatapathState) -> int:
    """``smc_tx_prepared_sends``: ``diff(sndbuf len, tx_curs_sent, tx_curs_prep)``."""
    return smc_curs_diff(cfg.sndbuf_len, s.tx_curs_sent, s.tx_curs_prep)


def write_space(cfg: DatapathConfig, s: DatapathState) -> int:
    """Bytes the application may write now (``sndbuf_space``, or what a fault makes of it)."""
    if Fault.MERGED_IGNORES_CONS in cfg.faults and cfg.mode is Mode.MERGED:
        return cfg.max_chunk
    if Fault.COMP_IGNORES_WRAP in cfg.faults and cfg.mode is Mode.MERGED:
        return cfg.ring_size - _wrap_blind_used(cfg.ring_size, s.tx_curs_fin, s.tx_curs_prep)
    return s.sndbuf_space


def move_space(cfg: DatapathConfig, s: DatapathState) -> int:
    """``rmbespace`` of smc_tx_rdma_writes (``peer_rmbe_space``, or the faulty recomputation)."""
    if Fault.COMP_IGNORES_WRAP in cfg.faults and cfg.mode is Mode.COPY:
        return cfg.ring_size - _wrap_blind_used(cfg.ring_size, s.w_rx_cons, s.w_prod)
    return s.peer_rmbe_space


def _writer_stopped(s: DatapathState) -> bool:
    """A may not move data or send data CDCs: it aborted, or B aborted (-EPIPE)."""
    return s.w_flags.peer_conn_abort or s.w_rx_flags.peer_conn_abort


def _writer_may_write(s: DatapathState) -> bool:
    """smc_tx_sendmsg proceeds: A neither shut down, closed nor aborted, and saw no close/abort."""
    return not (s.w_flags.any_close_or_senddone or s.w_rx_flags.any_close)


def _reader_stopped(s: DatapathState) -> bool:
    """B may no longer read or send window updates: it closed/aborted, or received an abort."""
    return s.r_flags.any_close or s.r_rx_flags.peer_conn_abort


def _reader_cdc(s: DatapathState, flags: ConnStateFlags) -> CdcMsg:
    return CdcMsg(prod=ZERO, cons=s.r_cons, prod_flags=NO_PROD_FLAGS, conn_state_flags=flags)


def _after_writer_cdc(
    cfg: DatapathConfig, s: DatapathState, flags: ConnStateFlags
) -> DatapathState:
    """smcd_cdc_msg_send: write the CDC; copy mode then frees the sndbuf up to tx_curs_sent."""
    msg = CdcMsg(
        prod=s.w_prod,
        cons=ZERO,
        prod_flags=ProdFlags(write_blocked=s.w_write_blocked),
        conn_state_flags=flags,
    )
    if cfg.mode is Mode.COPY:
        upto = s.tx_curs_prep if Fault.SPACE_FORGETS_IN_FLIGHT in cfg.faults else s.tx_curs_sent
        freed = smc_curs_diff(cfg.sndbuf_len, s.tx_curs_fin, upto)
        return _evolve(
            s,
            w_flags=flags,
            w_cdc_due=False,
            a2b=(*s.a2b, msg),
            sndbuf_space=s.sndbuf_space + freed,
            tx_curs_fin=upto,
        )
    return _evolve(s, w_flags=flags, w_cdc_due=False, a2b=(*s.a2b, msg))


def _put(
    ring: tuple[int, ...], start: Cursor, tags: tuple[int, ...]
) -> tuple[tuple[int, ...], bool]:
    """Write ``tags`` at ``start.count`` onwards (wrapping); report whether any slot was taken."""
    size = len(ring)
    if start.count >= size:
        return ring, True  # the kernel would write outside the ring
    slots = list(ring)
    clash = False
    for i, tag in enumerate(tags):
        idx = (start.count + i) % size
        if slots[idx] != 0:
            clash = True
        slots[idx] = tag
    return tuple(slots), clash


def _take(ring: tuple[int, ...], start: Cursor, n: int) -> tuple[tuple[int, ...], tuple[int, ...]]:
    """Read and free ``n`` slots at ``start.count`` onwards; ``()`` if outside the ring."""
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


def consumer_update_due(cfg: DatapathConfig, s: DatapathState) -> bool:
    """The send decision of ``smc_tx_consumer_update`` in state ``s`` (see :func:`_update_rule`)."""
    return _update_rule(cfg, s.rx_curs_confirmed, s.r_cons, s.r_rx_prod, s.r_peer_write_blocked)


def _update_rule(
    cfg: DatapathConfig, cfed: Cursor, cons: Cursor, prod: Cursor, write_blocked: bool
) -> bool:
    """``smc_tx_consumer_update``'s decision (force and cons_curs_upd_req are false here).

    ``to_confirm = diff(len, rx_curs_confirmed, cons)``; ``sender_free = len`` or, when
    ``to_confirm > rmbe_update_limit``, ``len - diff_large(len, rx_curs_confirmed,
    local_rx_ctrl.prod)``; send iff ``to_confirm > limit`` and (``sender_free <= len/2`` or the
    peer's ``write_blocked``). NO_CONSUMER_UPDATE makes it always false.
    """
    if Fault.NO_CONSUMER_UPDATE in cfg.faults:
        return False
    size = cfg.ring_size
    to_confirm = smc_curs_diff(size, cfed, cons)
    if to_confirm <= cfg.rmbe_update_limit:
        return False
    sender_free = size - smc_curs_diff_large(size, cfed, prod, wrap_bits=cfg.wrap_bits)
    return sender_free <= size // 2 or write_blocked


# --------------------------------------------------------------------------------------------
# Guards: each returns None when the action is enabled, else the error to raise
# --------------------------------------------------------------------------------------------


def _why_not(cfg: DatapathConfig, s: DatapathState, a: Action) -> DatapathForbidden | None:
    match a:
        case WriterAppWrite(n=n):
            if not 1 <= n <= cfg.max_chunk:
                return ActionDisabledByConfig(
                    f"WriterAppWrite(n={n}): n must be 1..{cfg.max_chunk}"
                )
            if not _writer_may_write(s):
                return SendAfterClose(
                    f"WriterAppWrite(n={n}): writer flags {s.w_flags}, received {s.w_rx_flags}"
                )
            space = write_space(cfg, s)
            if n > space:
                return WriteWouldOverwrite(
                    f"WriterAppWrite(n={n}): only {space} bytes of sndbuf space "
                    f"(sndbuf_space={s.sndbuf_space})"
                )
            return None
        case WriterMoveData():
            if _writer_stopped(s):
                return SendAfterClose("WriterMoveData: the connection was aborted")
            if s.w_cdc_due:
                return NothingToDo("WriterMoveData: the previous move's CDC is not written yet")
            if to_send(cfg, s) <= 0:
                return NothingToDo("WriterMoveData: no prepared sends (tx_curs_sent == prep)")
            if move_space(cfg, s) <= 0:
                return NothingToDo(
                    f"WriterMoveData: no peer ring space (peer_rmbe_space={s.peer_rmbe_space})"
                )
            return None
        case WriterSendCdc():
            if _writer_stopped(s):
                return SendAfterClose("WriterSendCdc: the connection was aborted")
            if not s.w_cdc_due:
                return NothingToDo("WriterSendCdc: no moved data to announce")
            if len(s.a2b) >= cfg.chan_cap:
                return ChannelFull(f"WriterSendCdc: A->B channel holds {len(s.a2b)} messages")
            return None
        case WriterRecvCdc():
            return None if s.b2a else NoMessage("WriterRecvCdc: no CDC from B waiting")
        case WriterShutdownWrite() | WriterClose():
            name = type(a).__name__
            if not cfg.close_enabled:
                return ActionDisabledByConfig(f"{name}: close is disabled in this config")
            if s.w_flags.any_close or (
                isinstance(a, WriterShutdownWrite) and s.w_flags.peer_done_writing
            ):
                return SendAfterClose(f"{name}: writer already has flags {s.w_flags}")
            if s.w_rx_flags.peer_conn_abort:
                return SendAfterClose(f"{name}: the reader aborted")
            if to_send(cfg, s) > 0:
                return NothingToDo(f"{name}: prepared data not moved yet (smc_close_stream_wait)")
            if len(s.a2b) >= cfg.chan_cap:
                return ChannelFull(f"{name}: A->B channel holds {len(s.a2b)} messages")
            return None
        case WriterAbort():
            if not cfg.abort_enabled:
                return ActionDisabledByConfig("WriterAbort: abort is disabled in this config")
            if s.w_flags.any_close or s.w_rx_flags.peer_conn_abort:
                return SendAfterClose(f"WriterAbort: writer already closed/aborted ({s.w_flags})")
            if len(s.a2b) >= cfg.chan_cap:
                return ChannelFull(f"WriterAbort: A->B channel holds {len(s.a2b)} messages")
            return None
        case ReaderRecvCdc():
            return None if s.a2b else NoMessage("ReaderRecvCdc: no CDC from A waiting")
        case ReaderRead(n=n):
            if not 1 <= n <= cfg.read_max:
                return ActionDisabledByConfig(f"ReaderRead(n={n}): n must be 1..{cfg.read_max}")
            # smc_rx_recvmsg copies announced data whatever the peer's flags (an abort from
            # the peer included, net/smc/smc_rx.c); only B's own close/abort ends reading
            if s.r_app_done:
                return ReadAfterClose(f"ReaderRead(n={n}): B's application closed the socket")
            if n > s.bytes_to_rcv:
                return ReadPastProducer(
                    f"ReaderRead(n={n}): only bytes_to_rcv={s.bytes_to_rcv} announced"
                )
            return None
        case ReaderSendConsUpdate():
            if _reader_stopped(s):
                return ReadAfterClose(f"ReaderSendConsUpdate: reader flags {s.r_flags}")
            if not s.r_upd_due:
                return NothingToDo("ReaderSendConsUpdate: smc_tx_consumer_update decided no")
            if len(s.b2a) >= cfg.chan_cap:
                return ChannelFull(f"ReaderSendConsUpdate: B->A channel holds {len(s.b2a)}")
            return None
        case ReaderClose() | ReaderAbort():
            name = type(a).__name__
            enabled = cfg.close_enabled if isinstance(a, ReaderClose) else cfg.abort_enabled
            if not enabled:
                return ActionDisabledByConfig(f"{name}: disabled in this config")
            if s.r_flags.any_close:
                return ReadAfterClose(f"{name}: reader already has flags {s.r_flags}")
            if len(s.b2a) >= cfg.chan_cap:
                return ChannelFull(f"{name}: B->A channel holds {len(s.b2a)} messages")
            return None
    raise TypeError(f"not a data-path action: {a!r}")  # pragma: no cover


def action_enabled(cfg: DatapathConfig, s: DatapathState, a: Action) -> bool:
    """True iff ``step(cfg, s, a)`` would succeed (pure, no effects)."""
    return _why_not(cfg, s, a) is None


# --------------------------------------------------------------------------------------------
# Effects
# --------------------------------------------------------------------------------------------


def step(cfg: DatapathConfig, s: DatapathState, a: Action) -> DatapathState:
    """The state after ``a``; raises a :class:`DatapathForbidden` subclass if ``a`` is not enabled.

    Never mutates ``s`` (states are frozen; new ones come from ``dataclasses.replace``).
    """
    err = _why_not(cfg, s, a)
    if err is not None:
        raise err
    match a:
        case WriterAppWrite(n=n):
            return _app_write(cfg, s, n)
        case WriterMoveData():
            return _move_data(cfg, s)
        case WriterSendCdc():
            return _after_writer_cdc(cfg, s, s.w_flags)
        case WriterRecvCdc():
            return _writer_recv(cfg, s)
        case WriterShutdownWrite():
            return _after_writer_cdc(cfg, s, replace(s.w_flags, peer_done_writing=True))
        case WriterClose():
            return _after_writer_cdc(cfg, s, replace(s.w_flags, peer_conn_closed=True))
        case WriterAbort():
            return _after_writer_cdc(cfg, s, replace(s.w_flags, peer_conn_abort=True))
        case ReaderRecvCdc():
            return _reader_recv(cfg, s)
        case ReaderRead(n=n):
            return _read(cfg, s, n)
        case ReaderSendConsUpdate():
            return _evolve(
                s,
                b2a=(*s.b2a, _reader_cdc(s, s.r_flags)),
                rx_curs_confirmed=s.r_cons,
                r_upd_due=False,
            )
        case ReaderClose():
            # smc_close_final: unread data turns the close into an abort
            if s.bytes_to_rcv > 0:
                flags = replace(s.r_flags, peer_conn_abort=True)
            else:
                flags = replace(s.r_flags, peer_conn_closed=True)
            return _reader_close(s, flags)
        case ReaderAbort():
            return _reader_close(s, replace(s.r_flags, peer_conn_abort=True))
    raise TypeError(f"not a data-path action: {a!r}")  # pragma: no cover


def _reader_close(s: DatapathState, flags: ConnStateFlags) -> DatapathState:
    return _evolve(
        s,
        r_flags=flags,
        r_app_done=True,
        b2a=(*s.b2a, _reader_cdc(s, flags)),
        rx_curs_confirmed=s.r_cons,
        r_upd_due=False,
    )


def _tags(cfg: DatapathConfig, seq: int, n: int) -> tuple[int, ...]:
    m = cfg.tag_mod
    return tuple((seq + i) % m + 1 for i in range(n))


def _app_write(cfg: DatapathConfig, s: DatapathState, n: int) -> DatapathState:
    """smc_tx_sendmsg: copy n bytes at tx_curs_prep; tx_curs_prep += n; sndbuf_space -= n."""
    tags = _tags(cfg, s.seq_next, n)
    common = {
        "tx_curs_prep": _add(cfg.sndbuf_len, s.tx_curs_prep, n, cfg),
        "sndbuf_space": s.sndbuf_space - n,
        "seq_next": (s.seq_next + n) % cfg.tag_mod,
    }
    if cfg.mode is Mode.MERGED:
        dmb, clash = _put(s.dmb, s.tx_curs_prep, tags)
        return _evolve(s, dmb=dmb, hist_overwrite=s.hist_overwrite or clash, **common)
    sndbuf, clash = _put(s.sndbuf, s.tx_curs_prep, tags)
    return _evolve(s, sndbuf=sndbuf, hist_overwrite=s.hist_overwrite or clash, **common)


def _move_data(cfg: DatapathConfig, s: DatapathState) -> DatapathState:
    """smc_tx_rdma_writes: len = min(to_send, rmbespace); copy; advance prod/sent; space -= len."""
    pending = to_send(cfg, s)
    rmbespace = move_space(cfg, s)
    length = min(pending, rmbespace)
    common = {
        "w_write_blocked": pending >= rmbespace,
        "w_prod": _add(cfg.ring_size, s.w_prod, length, cfg),
        "tx_curs_sent": _add(cfg.sndbuf_len, s.tx_curs_sent, length, cfg),
        "peer_rmbe_space": s.peer_rmbe_space - length,
        "w_cdc_due": True,
    }
    if cfg.mode is Mode.MERGED:  # the sf=0 move of loopback-ism copies nothing
        return _evolve(s, **common)
    sndbuf, moved = _take(s.sndbuf, s.tx_curs_sent, length)
    if len(moved) < length:  # tx_curs_sent outside the sndbuf: garbage is copied
        moved = moved + (0,) * (length - len(moved))
    dmb, clash = _put(s.dmb, s.w_prod, moved)
    return _evolve(s, sndbuf=sndbuf, dmb=dmb, hist_overwrite=s.hist_overwrite or clash, **common)


def _writer_recv(cfg: DatapathConfig, s: DatapathState) -> DatapathState:
    """smc_cdc_msg_recv_action on A: peer_rmbe_space += diff_cons; merged: free the sndbuf."""
    msg = s.b2a[0]
    rx_flags = msg.conn_state_flags
    changes: dict[str, object] = {"b2a": s.b2a[1:], "w_rx_cons": msg.cons, "w_rx_flags": rx_flags}
    diff_cons = smc_curs_diff(cfg.ring_size, s.w_rx_cons, msg.cons)
    if diff_cons:
        changes["peer_rmbe_space"] = s.peer_rmbe_space + diff_cons
        if cfg.mode is Mode.MERGED:
            if Fault.SPACE_FORGETS_IN_FLIGHT in cfg.faults:
                space = cfg.ring_size - smc_curs_diff(cfg.ring_size, msg.cons, s.tx_curs_sent)
            else:
                space = s.sndbuf_space + smc_curs_diff(cfg.ring_size, s.tx_curs_fin, msg.cons)
            changes["sndbuf_space"] = space
            changes["tx_curs_fin"] = msg.cons
    if rx_flags.peer_conn_abort and not s.w_flags.peer_conn_abort:
        changes["w_flags"] = replace(s.w_flags, peer_conn_abort=True)
    return _evolve(s, **changes)


def _reader_recv(cfg: DatapathConfig, s: DatapathState) -> DatapathState:
    """smc_cdc_msg_recv_action on B: bytes_to_rcv += diff(old prod, new prod); flags."""
    msg = s.a2b[0]
    rx_flags = msg.conn_state_flags
    diff_prod = smc_curs_diff(cfg.ring_size, s.r_rx_prod, msg.prod)
    changes: dict[str, object] = {
        "a2b": s.a2b[1:],
        "r_rx_prod": msg.prod,
        "bytes_to_rcv": s.bytes_to_rcv + diff_prod,
        "r_peer_write_blocked": msg.prod_flags.write_blocked,
        "r_rx_flags": rx_flags,
    }
    if rx_flags.peer_conn_abort and not s.r_flags.peer_conn_abort:
        changes["r_flags"] = replace(s.r_flags, peer_conn_abort=True)
        changes["r_upd_due"] = False
    return _evolve(s, **changes)


def _read(cfg: DatapathConfig, s: DatapathState, n: int) -> DatapathState:
    """smc_rx_recvmsg + smc_rx_update_consumer + smc_tx_consumer_update's decision."""
    dmb, got = _take(s.dmb, s.r_cons, n)
    overread = len(got) < n or 0 in got
    expect = _tags(cfg, s.seq_expect, n)
    misorder = any(t != 0 and t != e for t, e in zip(got, expect, strict=False))
    r_cons = _add(cfg.ring_size, s.r_cons, n, cfg)
    bytes_to_rcv = s.bytes_to_rcv - n
    # smc_tx_consumer_update sends nothing once the peer aborted (or we did)
    upd_due = not _reader_stopped(s) and (
        s.r_upd_due
        or _update_rule(cfg, s.rx_curs_confirmed, r_cons, s.r_rx_prod, s.r_peer_write_blocked)
    )
    return _evolve(
        s,
        dmb=dmb,
        r_cons=r_cons,
        bytes_to_rcv=bytes_to_rcv,
        seq_expect=(s.seq_expect + n) % cfg.tag_mod,
        hist_overread=s.hist_overread or overread,
        hist_misorder=s.hist_misorder or misorder,
        r_upd_due=upd_due,
        r_peer_write_blocked=s.r_peer_write_blocked and bytes_to_rcv != 0,
    )


# --------------------------------------------------------------------------------------------
# Explorer interface
# --------------------------------------------------------------------------------------------


@lru_cache(maxsize=64)
def candidate_actions(cfg: DatapathConfig) -> tuple[Action, ...]:
    """Every action of this config, in the fixed order :func:`enabled_actions` tries them."""
    acts: list[Action] = [WriterAppWrite(n=n) for n in range(1, cfg.max_chunk + 1)]
    acts += [WriterMoveData(), WriterSendCdc(), WriterRecvCdc()]
    if cfg.close_enabled:
        acts += [WriterShutdownWrite(), WriterClose()]
    if cfg.abort_enabled:
        acts.append(WriterAbort())
    acts.append(ReaderRecvCdc())
    acts += [ReaderRead(n=n) for n in range(1, cfg.read_max + 1)]
    acts.append(ReaderSendConsUpdate())
    if cfg.close_enabled:
        acts.append(ReaderClose())
    if cfg.abort_enabled:
        acts.append(ReaderAbort())
    return tuple(acts)


def enabled_actions(cfg: DatapathConfig, s: DatapathState) -> Iterator[Action]:
    """The enabled actions in ``s``, in a deterministic order (that of :func:`candidate_actions`:
    writer before reader; app write by increasing n; then move, CDC, receive, close, abort)."""
    for a in candidate_actions(cfg):
        if _why_not(cfg, s, a) is None:
            yield a


def is_final(cfg: DatapathConfig, s: DatapathState) -> bool:
    """A state where having no enabled action is fine (not a deadlock): both sides are done.

    Done means: both channels are empty; the writer closed or aborted (or learned the reader
    closed/aborted); the reader closed or aborted.
    """
    return (
        not s.a2b
        and not s.b2a
        and (s.w_flags.any_close or s.w_rx_flags.any_close)
        and s.r_flags.any_close
    )


def within_boundary(cfg: DatapathConfig, s: DatapathState) -> bool:
    """False for states the explorer should check but not expand: a faulty run drove a counter
    or cursor outside any meaningful range, or the abstract ring already recorded an overwrite,
    overread or misordered read (after that, slot contents are no longer a function of the
    cursors, and continuing would only blow up the state space)."""
    if s.hist_overwrite or s.hist_overread or s.hist_misorder:
        return False
    bound = 2 * (cfg.ring_size + cfg.sndbuf_len)
    return (
        -bound <= s.sndbuf_space <= bound
        and -bound <= s.peer_rmbe_space <= bound
        and -bound <= s.bytes_to_rcv <= bound
        and all(
            c.count < size and c.wrap < (1 << cfg.wrap_bits)
            for c, size in _cursors_with_sizes(cfg, s)
        )
    )


def _cursors_with_sizes(cfg: DatapathConfig, s: DatapathState) -> Iterator[tuple[Cursor, int]]:
    sb, n = cfg.sndbuf_len, cfg.ring_size
    yield from ((s.tx_curs_prep, sb), (s.tx_curs_sent, sb), (s.tx_curs_fin, sb))
    yield from ((s.w_prod, n), (s.w_rx_cons, n), (s.r_rx_prod, n), (s.r_cons, n))
    yield (s.rx_curs_confirmed, n)
    for m in s.a2b:
        yield (m.prod, n)
    for m in s.b2a:
        yield (m.cons, n)


# --------------------------------------------------------------------------------------------
# Invariants
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class Invariant:
    """A named state predicate; ``name`` is a sentence and the lookup key."""

    name: str
    #: one line saying precisely what is checked
    statement: str
    predicate: Callable[[DatapathConfig, DatapathState], bool] = field(compare=False)

    def holds(self, cfg: DatapathConfig, s: DatapathState) -> bool:
        """Evaluate the predicate."""
        return self.predicate(cfg, s)


def type_ok(cfg: DatapathConfig, s: DatapathState) -> bool:
    """Every field has its type and range (cursors inside their rings, channels within capacity,
    tags in 0..M, ring tuples of the configured lengths)."""
    m = cfg.tag_mod
    return (
        all(
            c.count < size and c.wrap < (1 << cfg.wrap_bits)
            for c, size in _cursors_with_sizes(cfg, s)
        )
        and len(s.a2b) <= cfg.chan_cap
        and len(s.b2a) <= cfg.chan_cap
        and len(s.dmb) == cfg.ring_size
        and len(s.sndbuf) == (cfg.sndbuf_len if cfg.mode is Mode.COPY else 0)
        and all(0 <= t <= m for t in s.dmb)
        and all(0 <= t <= m for t in s.sndbuf)
        and 0 <= s.seq_next < m
        and 0 <= s.seq_expect < m
    )


def counters_in_range(cfg: DatapathConfig, s: DatapathState) -> bool:
    """sndbuf_space in [0, sndbuf len], peer_rmbe_space and bytes_to_rcv in [0, ring len]."""
    return (
        0 <= s.sndbuf_space <= cfg.sndbuf_len
        and 0 <= s.peer_rmbe_space <= cfg.ring_size
        and 0 <= s.bytes_to_rcv <= cfg.ring_size
    )


def no_overwrite(cfg: DatapathConfig, s: DatapathState) -> bool:
    """No write ever landed on a slot holding a byte not yet consumed (or, copy mode, moved)."""
    return not s.hist_overwrite


def no_overread(cfg: DatapathConfig, s: DatapathState) -> bool:
    """No read ever returned a slot that held no written byte."""
    return not s.hist_overread


def delivered_in_order(cfg: DatapathConfig, s: DatapathState) -> bool:
    """Every byte read so far was the next byte of the written stream."""
    return not s.hist_misorder


def cursor_encodes_stream(cfg: DatapathConfig, s: DatapathState) -> bool:
    """position(cons) == seq_expect (mod M); merged mode: position(tx_curs_prep) == seq_next."""
    n, wb = cfg.ring_size, cfg.wrap_bits
    if _dist(n, wb, ZERO, s.r_cons) != s.seq_expect % cfg.tag_mod:
        return False
    return cfg.mode is not Mode.MERGED or _dist(n, wb, ZERO, s.tx_curs_prep) == s.seq_next


def _dist(size: int, wrap_bits: int, old: Cursor, new: Cursor) -> int:
    """:func:`~smcd_check.spec.cursor.distance` on plain ints (no Ring object: hot path)."""
    period = size << wrap_bits
    return ((new.wrap * size + new.count) - (old.wrap * size + old.count)) % period


def _chain_ok(size: int, wrap_bits: int, chain: list[Cursor]) -> bool:
    """Consecutive cursors are ordered: their forward distances add up to the total distance."""
    total = sum(_dist(size, wrap_bits, a, b) for a, b in pairwise(chain))
    return total == _dist(size, wrap_bits, chain[0], chain[-1]) and total < size << wrap_bits


def sndbuf_accounting(cfg: DatapathConfig, s: DatapathState) -> bool:
    """sndbuf_space + (fin..sent: moved, not freed) + (sent..prep: not moved) == sndbuf len."""
    sb, wb = cfg.sndbuf_len, cfg.wrap_bits
    used = _dist(sb, wb, s.tx_curs_fin, s.tx_curs_sent) + _dist(
        sb, wb, s.tx_curs_sent, s.tx_curs_prep
    )
    return s.sndbuf_space + used == sb


def peer_space_accounting(cfg: DatapathConfig, s: DatapathState) -> bool:
    """peer_rmbe_space + (local_rx_ctrl.cons .. prod: produced, not known consumed) == ring len."""
    n = cfg.ring_size
    return s.peer_rmbe_space + _dist(n, cfg.wrap_bits, s.w_rx_cons, s.w_prod) == n


def bytes_to_rcv_accounting(cfg: DatapathConfig, s: DatapathState) -> bool:
    """bytes_to_rcv == (cons .. local_rx_ctrl.prod): the announced bytes not yet read."""
    return s.bytes_to_rcv == _dist(cfg.ring_size, cfg.wrap_bits, s.r_cons, s.r_rx_prod)


def cursors_ordered(cfg: DatapathConfig, s: DatapathState) -> bool:
    """Along the pipeline every cursor is at or behind the next: A's received cons <= cons values
    in flight B->A <= rx_curs_confirmed <= cons <= B's received prod <= prods in flight A->B <=
    prod (B's ring); and tx_curs_fin <= tx_curs_sent <= tx_curs_prep (sndbuf ring)."""
    chain = [s.w_rx_cons, *(m.cons for m in s.b2a), s.rx_curs_confirmed, s.r_cons, s.r_rx_prod]
    chain += [*(m.prod for m in s.a2b), s.w_prod]
    if cfg.mode is Mode.MERGED:
        chain.append(s.tx_curs_prep)
    if not _chain_ok(cfg.ring_size, cfg.wrap_bits, chain):
        return False
    return _chain_ok(cfg.sndbuf_len, cfg.wrap_bits, [s.tx_curs_fin, s.tx_curs_sent, s.tx_curs_prep])


def writer_within_told_space(cfg: DatapathConfig, s: DatapathState) -> bool:
    """The writer's front (prod; merged: tx_curs_prep) is at most ring len ahead of the consumer
    cursor it has received."""
    front = s.tx_curs_prep if cfg.mode is Mode.MERGED else s.w_prod
    return _dist(cfg.ring_size, cfg.wrap_bits, s.w_rx_cons, front) <= cfg.ring_size


#: the data path's invariants, for the explorer (each name is a sentence and a lookup key)
INVARIANTS: Final = (
    Invariant(
        name="type ok",
        statement="every field has its type and range (cursors inside their rings, channels "
        "within capacity, tags in 0..M)",
        predicate=type_ok,
    ),
    Invariant(
        name="no overwriting unconsumed data",
        statement="no write ever landed on a ring slot holding a byte not yet consumed (copy "
        "mode: or not yet moved out of the sndbuf)",
        predicate=no_overwrite,
    ),
    Invariant(
        name="no reading unwritten data",
        statement="no read ever returned a ring slot that held no written byte",
        predicate=no_overread,
    ),
    Invariant(
        name="bytes delivered are exactly the bytes written, in order",
        statement="every byte read so far carried the tag of the next byte of the written stream",
        predicate=delivered_in_order,
    ),
    Invariant(
        name="the reader's consumer cursor encodes the abstract stream position",
        statement="position(cons) == seq_expect mod M (merged mode: and position(tx_curs_prep) "
        "== seq_next): the kernel view refines the abstract one",
        predicate=cursor_encodes_stream,
    ),
    Invariant(
        name="sndbuf space accounting is consistent",
        statement="sndbuf_space + moved-not-freed + written-not-moved == sndbuf length",
        predicate=sndbuf_accounting,
    ),
    Invariant(
        name="peer ring space accounting is consistent",
        statement="peer_rmbe_space + produced-not-known-consumed == peer ring length",
        predicate=peer_space_accounting,
    ),
    Invariant(
        name="bytes_to_rcv counts exactly the announced unread bytes",
        statement="bytes_to_rcv == distance(cons, local_rx_ctrl.prod) on the reader",
        predicate=bytes_to_rcv_accounting,
    ),
    Invariant(
        name="space counters stay within their buffer",
        statement="0 <= sndbuf_space <= sndbuf len, 0 <= peer_rmbe_space <= ring len, "
        "0 <= bytes_to_rcv <= ring len (the kernel assumes these, it does not enforce them)",
        predicate=counters_in_range,
    ),
    Invariant(
        name="cursors never move backwards",
        statement="the cursors stay ordered along the pipeline (A's received cons <= in-flight "
        "cons <= rx_curs_confirmed <= cons <= B's received prod <= in-flight prods <= prod; "
        "tx_curs_fin <= sent <= prep), so none can pass another backwards",
        predicate=cursors_ordered,
    ),
    Invariant(
        name="the writer never uses space it has not been told about",
        statement="prod (merged: tx_curs_prep) is at most ring length ahead of the consumer "
        "cursor the writer has received",
        predicate=writer_within_told_space,
    ),
)

#: the invariants by name
INVARIANTS_BY_NAME: Final = {inv.name: inv for inv in INVARIANTS}


def violated(cfg: DatapathConfig, s: DatapathState) -> tuple[str, ...]:
    """The names of the invariants ``s`` violates (empty when all hold), in INVARIANTS order."""
    return tuple(inv.name for inv in INVARIANTS if not inv.predicate(cfg, s))


def _cursor_pairs(s: DatapathState) -> tuple[tuple[str, Cursor], ...]:
    return (
        ("tx_curs_prep", s.tx_curs_prep),
        ("tx_curs_sent", s.tx_curs_sent),
        ("tx_curs_fin", s.tx_curs_fin),
        ("prod", s.w_prod),
        ("writer local_rx_ctrl.cons", s.w_rx_cons),
        ("reader local_rx_ctrl.prod", s.r_rx_prod),
        ("cons", s.r_cons),
        ("rx_curs_confirmed", s.rx_curs_confirmed),
    )


def cursors_moved_backwards(
    cfg: DatapathConfig, before: DatapathState, after: DatapathState
) -> tuple[str, ...]:
    """Step check: names of the cursors that moved backwards (or more than a ring) in one step.

    A cursor moves forward by ``d`` bytes with ``0 <= d <= ring length``; anything else (as a
    position modulo the cursor period) is reported.
    """
    moved = []
    for (name, c0), (_, c1) in zip(_cursor_pairs(before), _cursor_pairs(after), strict=True):
        size = cfg.sndbuf_len if name.startswith("tx_curs") else cfg.ring_size
        if _dist(size, cfg.wrap_bits, c0, c1) > size:
            moved.append(name)
    return tuple(moved)
