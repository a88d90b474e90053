"""What a receiver must check in a CDC message before it acts on it: the named checks.

Theory of operation
-------------------
On SMC-D the peer writes its CDC message into the first 32 bytes of *our* DMB and signals us;
our rx tasklet reads it back (``smcd_cdc_rx_tsklet``), copies the cursors and flags into
``local_rx_ctrl`` (``smcd_cdc_msg_to_host``) and acts on them (``smc_cdc_msg_recv_action``):
``bytes_to_rcv += diff(old prod, new prod)``, ``peer_rmbe_space += diff(old cons, new cons)``, the
close work for the flags. Linux 6.12.118 checks none of it: a peer that is buggy or hostile (it
shares the memory) can announce data that was never written, move a cursor backwards or past
the ring, or take back a close. (Data after a done-writing or close is *not* refused: a
sender whose ``smc_close_stream_wait`` timed out still moves the rest when the window opens.)

This module states what a receiver must refuse, as named checks (:data:`CHECKS`, in the order
they are applied: the first that fails names the reason), and :func:`check_cdc` applies them to
the 32 bytes against the receiver's view of the connection (:class:`RxView`). A refused CDC is
not acted on; the receiver aborts the connection (see conformance/PROTOCOL.md, ``cdc_inject``).

The checks need only what the receiver holds: its ring's length, the peer's ring length, the
cursors and flags it last accepted, ``bytes_to_rcv`` and ``peer_rmbe_space``. Cursor distances
are taken in the cursor space of one ring (``wrap * size + count``, 2**16 laps) as
:func:`distance` gives them, so "backwards" (at most one ring behind the last accepted cursor)
is told apart from "too far forward" (more than the free space ahead).

Pure and deterministic; imports only the codec's constants.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from typing import Final

from smcd_check.spec.cdc import (
    CONN_STATE_RESERVED,
    FAILOVER_VALIDATION,
    PEER_CONN_ABORT,
    PEER_CONN_CLOSED,
    PEER_DONE_WRITING,
    PROD_FLAGS_RESERVED,
    SMC_CDC_MSG_TYPE,
    SMCD_CDC_MSG_LEN,
)
from smcd_check.spec.cursor import Cursor

#: cursor wrap counters are u16: one cursor space is 2**16 laps of a ring
WRAP_SPAN: Final = 1 << 16
# type, res1, prod {wrap, count, spare, spare}, cons {wrap, count, prod_flags, conn_state}, res3
_LAYOUT: Final = struct.Struct("<B7sHIBBHIBB8s")

#: (name, what it refuses, the kernel code that acts on the field unchecked) in check order
CHECKS: Final[tuple[tuple[str, str, str], ...]] = (
    ("type", "common.type is not SMC_CDC_MSG_TYPE (0xFE)",
     "smcd_cdc_rx_tsklet reads the header without looking at the type"),
    ("flags-reserved", "a reserved bit is set: conn_state_flags 0x1f, prod_flags 0x07, or "
     "failover_validation (0x08, SMC-R only)", "smcd_cdc_msg_to_host copies both flag bytes"),
    ("prod-count", "prod.count is not inside our ring (>= its length)",
     "smc_cdc_msg_recv_action: smc_curs_diff(rmb_desc->len, old prod, new prod)"),
    ("cons-count", "cons.count is not inside the peer's ring (>= peer_rmbe_size)",
     "smc_cdc_msg_recv_action: smc_curs_diff(peer_rmbe_size, old cons, new cons)"),
    ("prod-backwards", "the producer cursor is behind the last one accepted (at most one ring)",
     "smc_curs_diff of a cursor behind: a whole lap of new data (other wrap) or 0"),
    ("prod-overrun", "the producer cursor announces more bytes than our ring has free "
     "(length - bytes_to_rcv)", "bytes_to_rcv += diff_prod"),
    ("cons-backwards", "the consumer cursor is behind the last one accepted (at most one ring)",
     "smc_curs_diff of a cursor behind"),
    ("cons-overrun", "the consumer cursor consumes more than we have in flight "
     "(peer_rmbe_size - peer_rmbe_space)", "peer_rmbe_space += diff_cons"),
    ("flags-cleared", "a connection-state flag the peer sent before is missing (they are "
     "sticky: smc_close_wr / smc_close_final / smc_close_abort set them for good)",
     "smcd_cdc_msg_to_host overwrites local_rx_ctrl.conn_state_flags"),
)
CHECK_NAMES: Final = tuple(name for name, _, _ in CHECKS)


@dataclass(frozen=True, slots=True, kw_only=True)
class RxView:
    """The receiver's view of its connection when a CDC arrives (``local_rx_ctrl`` and co.)."""

    #: our data ring's length (``rmb_desc->len``: the DMB minus the 32-byte header)
    rmb_len: int
    #: the peer's data ring's length (``peer_rmbe_size``)
    peer_rmbe_size: int
    #: ``local_rx_ctrl.prod``: the peer's producer cursor last accepted (our ring)
    prod: Cursor
    #: ``local_rx_ctrl.cons``: the peer's consumer cursor last accepted (its ring)
    cons: Cursor
    #: ``local_rx_ctrl.conn_state_flags`` as a wire byte
    conn_state_flags: int
    bytes_to_rcv: int
    peer_rmbe_space: int


@dataclass(frozen=True, slots=True, kw_only=True)
class RxCdc:
    """The fields of a received ``struct smcd_cdc_msg`` the checks look at."""

    type: int
    prod: Cursor
    cons: Cursor
    prod_flags: int
    conn_state_flags: int


def parse(raw: bytes) -> RxCdc:
    """The 32 bytes as the receiver reads them (x86_64 host order, no check at all).

    Raises:
        ValueError: ``raw`` is not 32 bytes (a DMB header is always 32 bytes).
    """
    if len(raw) != SMCD_CDC_MSG_LEN:
        raise ValueError(f"a CDC header is {SMCD_CDC_MSG_LEN} bytes, got {len(raw)}")
    ctype, _r1, pw, pc, _s1, _s2, cw, cc, pflags, cflags, _r3 = _LAYOUT.unpack(raw)
    return RxCdc(type=ctype, prod=Cursor(wrap=pw, count=pc), cons=Cursor(wrap=cw, count=cc),
                 prod_flags=pflags, conn_state_flags=cflags)


def distance(size: int, old: Cursor, new: Cursor) -> int:
    """Bytes from ``old`` forward to ``new`` in the cursor space of a ring of ``size`` bytes."""
    span = WRAP_SPAN * size
    return ((new.wrap * size + new.count) - (old.wrap * size + old.count)) % span


def _behind(size: int, old: Cursor, new: Cursor) -> bool:
    """``new`` is behind ``old`` by at most one ring (a cursor moved backwards)."""
    d = distance(size, old, new)
    return d != 0 and d >= WRAP_SPAN * size - size


def check_cdc(view: RxView, raw: bytes) -> str | None:
    """The name of the first check (in :data:`CHECKS` order) the CDC fails, or None.

    Raises:
        ValueError: ``raw`` is not 32 bytes.
    """
    msg = parse(raw)
    if msg.type != SMC_CDC_MSG_TYPE:
        return "type"
    if (msg.conn_state_flags & CONN_STATE_RESERVED
            or msg.prod_flags & (PROD_FLAGS_RESERVED | FAILOVER_VALIDATION)):
        return "flags-reserved"
    if msg.prod.count >= view.rmb_len:
        return "prod-count"
    if msg.cons.count >= view.peer_rmbe_size:
        return "cons-count"
    if _behind(view.rmb_len, view.prod, msg.prod):
        return "prod-backwards"
    new_data = distance(view.rmb_len, view.prod, msg.prod)
    if new_data > view.rmb_len - view.bytes_to_rcv:
        return "prod-overrun"
    if _behind(view.peer_rmbe_size, view.cons, msg.cons):
        return "cons-backwards"
    if distance(view.peer_rmbe_size, view.cons, msg.cons) > (
            view.peer_rmbe_size - view.peer_rmbe_space):
        return "cons-overrun"
    if view.conn_state_flags & ~msg.conn_state_flags & (
            PEER_DONE_WRITING | PEER_CONN_CLOSED | PEER_CONN_ABORT):
        return "flags-cleared"
    return None


__all__ = ["CHECKS", "CHECK_NAMES", "WRAP_SPAN", "RxCdc", "RxView", "check_cdc", "distance",
           "parse"]
