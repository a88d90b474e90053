"""SMC-D CDC messages as data, and the 32-byte ``struct smcd_cdc_msg`` wire codec.

Theory of operation
-------------------
A CDC ("connection data control") message tells the peer how far this side has produced into
the peer's ring (producer cursor ``prod``) and consumed from its own ring (consumer cursor
``cons``), plus producer flags and connection-state flags. On SMC-D the sender writes it into the
first 32 bytes of the **receiver's** DMB (ISM ``move_data`` with the signal flag set); the
receiver's tasklet copies the header and processes it (``smcd_cdc_rx_tsklet`` ->
``smcd_cdc_msg_to_host`` -> ``smc_cdc_msg_recv_action``).

Wire layout (``struct smcd_cdc_msg``, net/smc/smc_cdc.h; 32 bytes, 8-aligned; **host byte order**,
i.e. little-endian on x86_64 -- SMC-D does no htons/htonl, unlike SMC-R's 44-byte message)::

    off size field                      value sent by smcd_cdc_msg_send (net/smc/smc_cdc.c)
     0   1   common.type                0xFE (SMC_CDC_MSG_TYPE)
     1   7   res1                       0
     8   2   prod.wrap      (u16)       local_tx_ctrl.prod.wrap
    10   4   prod.count     (u32)       local_tx_ctrl.prod.count   (unaligned, packed union)
    14   1   prod.prod_flags            0 (unused; ignored by the receiver)
    15   1   prod.conn_state_flags      0 (unused; ignored by the receiver)
    16   2   cons.wrap      (u16)       local_tx_ctrl.cons.wrap
    18   4   cons.count     (u32)       local_tx_ctrl.cons.count
    22   1   cons.prod_flags            local_tx_ctrl.prod_flags
    23   1   cons.conn_state_flags      local_tx_ctrl.conn_state_flags
    24   8   res3                       0

Flag bits (net/smc/smc.h, ``struct smc_cdc_producer_flags`` and ``struct
smc_cdc_conn_state_flags``; the bitfields are declared in reverse order under
``__LITTLE_ENDIAN_BITFIELD`` so the wire bit is the same on both endiannesses):
``prod_flags``: 0x80 write_blocked, 0x40 urg_data_pending, 0x20 urg_data_present, 0x10
cons_curs_upd_req, 0x08 failover_validation (SMC-R only), 0x07 reserved;
``conn_state_flags``: 0x80 peer_done_writing, 0x40 peer_conn_closed, 0x20 peer_conn_abort, 0x1f
reserved.

Decoding: :func:`decode_smcd_cdc` rejects a buffer that is not 32 bytes or whose type byte is not
0xFE with :class:`CdcDecodeError` (a :class:`~smcd_check.spec.errors.MalformedInput`). With
``strict=True`` (default) it also rejects what ``smcd_cdc_msg_send`` never produces: non-zero
``res1``/``res3``, non-zero spare bytes in the producer cursor, reserved flag bits, and
failover_validation. The kernel receiver itself is lenient (it reads only the type-independent
fields, the tasklet does not even check the type); ``strict=False`` decodes like the kernel and
ignores those bytes.

Not modelled: SMC-R's ``struct smc_cdc_msg`` (network order, seqno, token, len); the atomic
64-bit reads; coalescing of several CDC writes (that is the data path's channel, see
:mod:`~smcd_check.spec.datapath`).
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from typing import Final

from smcd_check.spec.cursor import ZERO, Cursor
from smcd_check.spec.errors import MalformedInput

#: SMC_CDC_MSG_TYPE (net/smc/smc_cdc.h)
SMC_CDC_MSG_TYPE: Final = 0xFE
#: sizeof(struct smcd_cdc_msg)
SMCD_CDC_MSG_LEN: Final = 32

#: prod_flags bits (wire values)
WRITE_BLOCKED: Final = 0x80
URG_DATA_PENDING: Final = 0x40
URG_DATA_PRESENT: Final = 0x20
CONS_CURS_UPD_REQ: Final = 0x10
FAILOVER_VALIDATION: Final = 0x08
PROD_FLAGS_RESERVED: Final = 0x07
#: conn_state_flags bits (wire values)
PEER_DONE_WRITING: Final = 0x80
PEER_CONN_CLOSED: Final = 0x40
PEER_CONN_ABORT: Final = 0x20
CONN_STATE_RESERVED: Final = 0x1F

# <: little-endian, no padding. type, res1[7], prod{wrap,count,pf,cf}, cons{...}, res3[8]
_LAYOUT: Final = struct.Struct("<B7sHIBBHIBB8s")
assert _LAYOUT.size == SMCD_CDC_MSG_LEN


class CdcDecodeError(MalformedInput):
    """Bytes that are not a well-formed ``struct smcd_cdc_msg`` (names field, value, expected)."""


@dataclass(frozen=True, slots=True, kw_only=True)
class ProdFlags:
    """``struct smc_cdc_producer_flags`` (the SMC-D-relevant bits)."""

    #: the sender ran out of peer ring space (``to_send >= peer_rmbe_space``, smc_tx_rdma_writes)
    write_blocked: bool = False
    #: urgent data announced (MSG_OOB sendmsg)
    urg_data_pending: bool = False
    #: the urgent byte is the last byte before this message's producer cursor
    urg_data_present: bool = False
    #: the sender asks for a consumer-cursor update (never set by Linux 6.12)
    cons_curs_upd_req: bool = False
    #: SMC-R link failover validation (``failover_validation``; SMC-D never sets it, and the
    #: strict decoder rejects it)
    failover_validation: bool = False

    def to_byte(self) -> int:
        """The wire byte."""
        return (
            (WRITE_BLOCKED if self.write_blocked else 0)
            | (URG_DATA_PENDING if self.urg_data_pending else 0)
            | (URG_DATA_PRESENT if self.urg_data_present else 0)
            | (CONS_CURS_UPD_REQ if self.cons_curs_upd_req else 0)
            | (FAILOVER_VALIDATION if self.failover_validation else 0)
        )

    @classmethod
    def from_byte(cls, value: int) -> ProdFlags:
        """Flags from the wire byte (reserved bits ignored; :func:`decode_smcd_cdc` checks them)."""
        return cls(
            write_blocked=bool(value & WRITE_BLOCKED),
            urg_data_pending=bool(value & URG_DATA_PENDING),
            urg_data_present=bool(value & URG_DATA_PRESENT),
            cons_curs_upd_req=bool(value & CONS_CURS_UPD_REQ),
            failover_validation=bool(value & FAILOVER_VALIDATION),
        )


@dataclass(frozen=True, slots=True, kw_only=True)
class ConnStateFlags:
    """``struct smc_cdc_conn_state_flags``: sticky close/abort signals (net/smc/smc_close.c)."""

    #: shutdown(SHUT_WR): the sender will write no more (smc_close_wr)
    peer_done_writing: bool = False
    #: the sender closed the connection (smc_close_final)
    peer_conn_closed: bool = False
    #: the sender aborted (smc_close_abort, or a close with unread data)
    peer_conn_abort: bool = False

    def to_byte(self) -> int:
        """The wire byte."""
        return (
            (PEER_DONE_WRITING if self.peer_done_writing else 0)
            | (PEER_CONN_CLOSED if self.peer_conn_closed else 0)
            | (PEER_CONN_ABORT if self.peer_conn_abort else 0)
        )

    @classmethod
    def from_byte(cls, value: int) -> ConnStateFlags:
        """Flags from the wire byte (reserved bits ignored)."""
        return cls(
            peer_done_writing=bool(value & PEER_DONE_WRITING),
            peer_conn_closed=bool(value & PEER_CONN_CLOSED),
            peer_conn_abort=bool(value & PEER_CONN_ABORT),
        )

    @property
    def any_close(self) -> bool:
        """``smc_cdc_rxed_any_close``: closed or aborted."""
        return self.peer_conn_closed or self.peer_conn_abort

    @property
    def any_close_or_senddone(self) -> bool:
        """``smc_cdc_rxed_any_close_or_senddone``: closed, aborted or done writing."""
        return self.any_close or self.peer_done_writing


NO_PROD_FLAGS: Final = ProdFlags()
NO_CONN_STATE_FLAGS: Final = ConnStateFlags()


@dataclass(frozen=True, slots=True, kw_only=True)
class CdcMsg:
    """One SMC-D CDC message as the receiver sees it (``local_rx_ctrl`` after the copy)."""

    #: producer cursor: end of the data the sender has written into the receiver's ring
    prod: Cursor = ZERO
    #: consumer cursor: how far the sender has consumed its own ring (written by the receiver)
    cons: Cursor = ZERO
    prod_flags: ProdFlags = NO_PROD_FLAGS
    conn_state_flags: ConnStateFlags = NO_CONN_STATE_FLAGS


def encode_smcd_cdc(msg: CdcMsg) -> bytes:
    """The 32 bytes ``smcd_cdc_msg_send`` writes for ``msg`` (x86_64 host order).

    Raises:
        CdcDecodeError: never for a valid :class:`CdcMsg` (all fields fit by construction).
    """
    return _LAYOUT.pack(
        SMC_CDC_MSG_TYPE,
        bytes(7),
        msg.prod.wrap,
        msg.prod.count,
        0,
        0,
        msg.cons.wrap,
        msg.cons.count,
        msg.prod_flags.to_byte(),
        msg.conn_state_flags.to_byte(),
        bytes(8),
    )


def decode_smcd_cdc(data: bytes, *, strict: bool = True) -> CdcMsg:
    """Decode a 32-byte SMC-D CDC header (see the module docstring for what is checked).

    Raises:
        CdcDecodeError: wrong length, wrong type byte, or (strict) non-zero reserved bytes/bits,
            naming the field, its offset, the value and what was expected.
    """
    if not isinstance(data, bytes | bytearray | memoryview):
        raise CdcDecodeError(f"smcd_cdc_msg: expected bytes, got {type(data).__name__}")
    data = bytes(data)
    if len(data) != SMCD_CDC_MSG_LEN:
        raise CdcDecodeError(f"smcd_cdc_msg: length {len(data)} bytes, expected {SMCD_CDC_MSG_LEN}")
    (ctype, res1, pwrap, pcount, ppf, pcf, cwrap, ccount, cpf, ccf, res3) = _LAYOUT.unpack(data)
    if ctype != SMC_CDC_MSG_TYPE:
        raise CdcDecodeError(
            f"smcd_cdc_msg: field common.type (offset 0) is 0x{ctype:02x}, "
            f"expected 0x{SMC_CDC_MSG_TYPE:02X} (SMC_CDC_MSG_TYPE)"
        )
    if strict:
        checks: tuple[tuple[str, int, int, int], ...] = (
            ("res1", 1, int.from_bytes(res1, "little"), 0),
            ("prod.prod_flags", 14, ppf, 0),
            ("prod.conn_state_flags", 15, pcf, 0),
            (
                "cons.prod_flags reserved bits",
                22,
                cpf & (PROD_FLAGS_RESERVED | FAILOVER_VALIDATION),
                0,
            ),
            ("cons.conn_state_flags reserved bits", 23, ccf & CONN_STATE_RESERVED, 0),
            ("res3", 24, int.from_bytes(res3, "little"), 0),
        )
        for field, offset, value, expected in checks:
            if value != expected:
                raise CdcDecodeError(
                    f"smcd_cdc_msg: field {field} (offset {offset}) is 0x{value:x}, expected "
                    f"{expected} (smcd_cdc_msg_send writes zero there; strict=False ignores it)"
                )
    return CdcMsg(
        prod=Cursor(wrap=pwrap, count=pcount),
        cons=Cursor(wrap=cwrap, count=ccount),
        prod_flags=ProdFlags.from_byte(cpf),
        conn_state_flags=ConnStateFlags.from_byte(ccf),
    )
