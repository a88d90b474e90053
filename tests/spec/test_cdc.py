"""The SMC-D CDC wire codec against a golden vector built by hand from ``struct smcd_cdc_msg``.

Layout (net/smc/smc_cdc.h, host order = little-endian on x86_64): type u8 @0, res1[7] @1,
prod {u16 wrap @8, u32 count @10, u8 prod_flags @14, u8 conn_state_flags @15},
cons {u16 wrap @16, u32 count @18, u8 prod_flags @22, u8 conn_state_flags @23}, res3[8] @24.
Flag bits from net/smc/smc.h: write_blocked 0x80, urg_data_pending 0x40, urg_data_present 0x20,
cons_curs_upd_req 0x10; peer_done_writing 0x80, peer_conn_closed 0x40, peer_conn_abort 0x20.
"""

from __future__ import annotations

from dataclasses import replace

import pytest
from hypothesis import given
from hypothesis import strategies as st

from smcd_check.spec.cdc import (
    CdcDecodeError,
    CdcMsg,
    ConnStateFlags,
    ProdFlags,
    decode_smcd_cdc,
    encode_smcd_cdc,
)
from smcd_check.spec.cursor import Cursor
from smcd_check.spec.errors import MalformedInput

#: prod = (wrap 0x0102, count 0x0a0b0c0d); cons = (wrap 0x0304, count 0x11223344);
#: prod_flags write_blocked|cons_curs_upd_req = 0x90; conn_state peer_done_writing|abort = 0xa0
GOLDEN = bytes.fromhex(
    "fe"
    "00000000000000"  # type, res1
    "0201"
    "0d0c0b0a"
    "00"
    "00"  # prod: wrap LE, count LE (unaligned at 10), spare bytes
    "0403"
    "44332211"
    "90"
    "a0"  # cons: wrap, count, prod_flags, conn_state_flags
    "0000000000000000"  # res3
)
GOLDEN_MSG = CdcMsg(
    prod=Cursor(wrap=0x0102, count=0x0A0B0C0D),
    cons=Cursor(wrap=0x0304, count=0x11223344),
    prod_flags=ProdFlags(write_blocked=True, cons_curs_upd_req=True),
    conn_state_flags=ConnStateFlags(peer_done_writing=True, peer_conn_abort=True),
)


def test_golden_vector_is_32_bytes() -> None:
    assert len(GOLDEN) == 32


def test_encode_matches_the_struct_layout() -> None:
    assert encode_smcd_cdc(GOLDEN_MSG) == GOLDEN


def test_decode_of_the_golden_vector() -> None:
    assert decode_smcd_cdc(GOLDEN) == GOLDEN_MSG


def test_each_flag_has_its_wire_bit() -> None:
    for field, bit in [
        ("write_blocked", 0x80),
        ("urg_data_pending", 0x40),
        ("urg_data_present", 0x20),
        ("cons_curs_upd_req", 0x10),
    ]:
        raw = encode_smcd_cdc(CdcMsg(prod_flags=ProdFlags(**{field: True})))
        assert raw[22] == bit and raw[23] == 0 and raw[14] == raw[15] == 0
    raw = encode_smcd_cdc(CdcMsg(prod_flags=ProdFlags(failover_validation=True)))
    assert raw[22] == 0x08
    assert decode_smcd_cdc(raw, strict=False).prod_flags.failover_validation
    for field, bit in [
        ("peer_done_writing", 0x80),
        ("peer_conn_closed", 0x40),
        ("peer_conn_abort", 0x20),
    ]:
        raw = encode_smcd_cdc(CdcMsg(conn_state_flags=ConnStateFlags(**{field: True})))
        assert raw[23] == bit and raw[22] == 0


def test_wrong_type_byte_is_rejected_naming_field_and_value() -> None:
    bad = b"\xfd" + GOLDEN[1:]
    with pytest.raises(CdcDecodeError, match=r"common.type \(offset 0\) is 0xfd, expected 0xFE"):
        decode_smcd_cdc(bad)


@pytest.mark.parametrize("length", [0, 31, 33, 44])
def test_wrong_length_is_rejected(length: int) -> None:
    with pytest.raises(MalformedInput, match=f"length {length} bytes, expected 32"):
        decode_smcd_cdc(bytes([0xFE]) + bytes(max(0, length - 1)) if length else b"")


@pytest.mark.parametrize(
    ("offset", "value", "field"),
    [
        (3, 0x01, "res1"),
        (14, 0x80, "prod.prod_flags"),
        (15, 0x40, "prod.conn_state_flags"),
        (22, 0x08, "cons.prod_flags reserved bits"),
        (23, 0x01, "cons.conn_state_flags reserved bits"),
        (31, 0xFF, "res3"),
    ],
)
def test_strict_decode_rejects_nonzero_reserved(offset: int, value: int, field: str) -> None:
    raw = bytearray(GOLDEN)
    raw[offset] |= value
    with pytest.raises(CdcDecodeError, match=field.replace(".", r"\.")):
        decode_smcd_cdc(bytes(raw))
    # the kernel's receiver ignores these bytes: lenient decoding gives the same message, but
    # for failover_validation, which struct smcd_cdc_msg carries (only SMC-R code reads it)
    expected = GOLDEN_MSG
    if field.startswith("cons.prod_flags"):
        expected = replace(
            GOLDEN_MSG, prod_flags=replace(GOLDEN_MSG.prod_flags, failover_validation=True)
        )
    assert decode_smcd_cdc(bytes(raw), strict=False) == expected


def test_decode_rejects_non_bytes() -> None:
    with pytest.raises(CdcDecodeError, match="expected bytes, got str"):
        decode_smcd_cdc("fe" * 32)  # type: ignore[arg-type]


flags4 = st.builds(
    ProdFlags,
    write_blocked=st.booleans(),
    urg_data_pending=st.booleans(),
    urg_data_present=st.booleans(),
    cons_curs_upd_req=st.booleans(),
)
flags3 = st.builds(
    ConnStateFlags,
    peer_done_writing=st.booleans(),
    peer_conn_closed=st.booleans(),
    peer_conn_abort=st.booleans(),
)
cursors = st.builds(Cursor, wrap=st.integers(0, 0xFFFF), count=st.integers(0, 0xFFFFFFFF))


@given(st.builds(CdcMsg, prod=cursors, cons=cursors, prod_flags=flags4, conn_state_flags=flags3))
def test_decode_inverts_encode(msg: CdcMsg) -> None:
    """Every CDC message survives encode then strict decode unchanged, in 32 bytes of type 0xFE."""
    raw = encode_smcd_cdc(msg)
    assert len(raw) == 32 and raw[0] == 0xFE
    assert decode_smcd_cdc(raw) == msg
