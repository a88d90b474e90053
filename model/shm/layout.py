"""Byte layouts shared by both ends of a DMB: ``struct smcd_cdc_msg`` and the cursor word.

Everything here follows Linux 6.12.118 ``net/smc/smc_cdc.h``:

* ``union smcd_cdc_cursor`` is 8 bytes, 8-aligned: ``u16 wrap; u32 count; u8 prod_flags;
  u8 conn_state_flags`` (packed, **host** byte order) overlaid with ``atomic64_t acurs``. The
  kernel reads it with ``atomic64_read`` (``smcd_curs_copy`` in ``smcd_cdc_rx_tsklet``), so a
  reader never sees half of an update.
* ``struct smcd_cdc_msg`` is 32 bytes at the head of every DMB: ``common.type`` (0xFE) at 0,
  ``res1[7]``, ``prod`` at 8, ``cons`` at 16, ``res3[8]``. The producer and connection-state flags
  travel only in the **cons** cursor's spare bytes (22 and 23); the prod cursor's spare bytes
  are zero. The data ring starts at offset 32.

A cursor word is the 64-bit integer whose in-memory bytes (in this host's byte order) are that
packed struct, so storing it with one aligned 8-byte store writes the struct exactly as the
kernel's ``atomic64_set`` would (see :mod:`.memory` for how the store is made).
"""

from __future__ import annotations

import struct
import sys
from dataclasses import dataclass
from typing import NamedTuple

#: ``SMC_CDC_MSG_TYPE``
SMC_CDC_MSG_TYPE = 0xFE
#: ``sizeof(struct smcd_cdc_msg)``: the DMB head the peer writes its CDC message into
SMCD_CDC_MSG_SIZE = 32
#: offsets inside ``struct smcd_cdc_msg``
CDC_TYPE_OFF = 0
CDC_PROD_OFF = 8
CDC_CONS_OFF = 16
#: wrap is a u16, count a u32
WRAP_MASK = 0xFFFF
COUNT_MASK = 0xFFFF_FFFF

# prod_flags bits as they sit in the byte (net/smc/smc_cdc.h, little-endian bitfield order)
SMC_PROD_WRITE_BLOCKED = 0x80
SMC_PROD_URG_DATA_PENDING = 0x40
SMC_PROD_URG_DATA_PRESENT = 0x20
SMC_PROD_CONS_CURS_UPD_REQ = 0x10
# conn_state_flags bits
SMC_CONN_PEER_DONE_WRITING = 0x80
SMC_CONN_PEER_CONN_CLOSED = 0x40
SMC_CONN_PEER_CONN_ABORT = 0x20
SMC_CONN_ANY_CLOSE = SMC_CONN_PEER_CONN_CLOSED | SMC_CONN_PEER_CONN_ABORT

#: the packed cursor struct in native byte order (``=``: no padding, host order)
_CURSOR = struct.Struct("=HIBB")
assert _CURSOR.size == 8


class CursorWord(NamedTuple):
    """One ``union smcd_cdc_cursor`` decoded: (wrap, count) and the two spare bytes."""

    wrap: int = 0
    count: int = 0  # type: ignore[assignment]  # the kernel's name shadows tuple.count
    prod_flags: int = 0
    conn_state_flags: int = 0

    def to_word(self) -> int:
        """The 64-bit value whose host-order bytes are the packed struct."""
        raw = _CURSOR.pack(self.wrap & WRAP_MASK, self.count & COUNT_MASK,
                           self.prod_flags & 0xFF, self.conn_state_flags & 0xFF)
        return int.from_bytes(raw, sys.byteorder)

    @staticmethod
    def from_word(word: int) -> CursorWord:
        return CursorWord._make(_CURSOR.unpack(word.to_bytes(8, sys.byteorder)))


def pack_cdc(prod: CursorWord, cons: CursorWord) -> bytes:
    """The 32 bytes of a ``struct smcd_cdc_msg`` (for tests and for readers of raw DMB dumps)."""
    out = bytearray(SMCD_CDC_MSG_SIZE)
    out[CDC_TYPE_OFF] = SMC_CDC_MSG_TYPE
    out[CDC_PROD_OFF:CDC_PROD_OFF + 8] = prod.to_word().to_bytes(8, sys.byteorder)
    out[CDC_CONS_OFF:CDC_CONS_OFF + 8] = cons.to_word().to_bytes(8, sys.byteorder)
    return bytes(out)


def unpack_cdc(raw: bytes | bytearray | memoryview) -> tuple[int, CursorWord, CursorWord]:
    """``(type, prod, cons)`` of 32 raw header bytes."""
    raw = bytes(raw[:SMCD_CDC_MSG_SIZE])
    prod = CursorWord.from_word(int.from_bytes(raw[8:16], sys.byteorder))
    cons = CursorWord.from_word(int.from_bytes(raw[16:24], sys.byteorder))
    return raw[0], prod, cons


@dataclass(frozen=True, slots=True)
class CdcImage:
    """A ``struct smcd_cdc_msg`` about to be written: type byte and the two cursor words.

    ``move_data`` writes it as the type byte followed by two aligned 8-byte stores (prod, then
    cons), so a reader loading either cursor word never sees it half written.
    """

    prod: int
    cons: int
    type: int = SMC_CDC_MSG_TYPE

    def __len__(self) -> int:
        return SMCD_CDC_MSG_SIZE
