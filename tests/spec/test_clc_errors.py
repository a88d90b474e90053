"""Bad CLC input: each kernel receive rule rejects with a ClcError naming field and offset.

One test per rule of smc_clc_wait_msg / smc_clc_msg_hdr_valid / smc_clc_msg_prop_valid /
smc_clc_msg_acc_conf_valid / smc_clc_msg_decl_valid and the offset helpers of smc_clc.h; plus
the messages the kernel accepts although they look odd (so we must accept them too).
"""

from __future__ import annotations

import struct

import pytest
from clc_vectors import (
    CAP_ACCEPT_V2,
    CAP_ACCEPT_V2_FIRST_CONTACT,
    CAP_CONFIRM_V2,
    CAP_DECLINE_V2_NOUEID,
    CAP_PROPOSAL_V2_NO_UEID,
    CAP_PROPOSAL_V2_UEID,
    HAND_ACCEPT_V1,
    HAND_DECLINE_V1_SYNCERR,
    HAND_PROPOSAL_V1,
    HAND_PROPOSAL_V2_UEIDS,
)

from smcd_check.spec.clc import (
    SMC_CLC_MAX_ACCEPT_LEN,
    Accept,
    ClcBadEyecatcher,
    ClcBadField,
    ClcBadLength,
    ClcBadType,
    ClcBadVersion,
    ClcError,
    ClcTruncated,
    ClcType,
    Decline,
    Proposal,
    SmcType,
    check_receivable,
    decode,
    decode_stream,
    encode,
)
from smcd_check.spec.errors import MalformedInput


def patched(data: bytes, *edits: tuple[int, bytes]) -> bytes:
    out = bytearray(data)
    for offset, new in edits:
        out[offset: offset + len(new)] = new
    return bytes(out)


def with_length(data: bytes, length: int) -> bytes:
    return patched(data, (5, struct.pack(">H", length)))


def expect(data: bytes, err: type[ClcError], field: str, offset: int) -> ClcError:
    with pytest.raises(err) as info:
        decode(data)
    assert info.value.field == field, str(info.value)
    assert info.value.offset == offset, str(info.value)
    return info.value


def test_error_is_malformed_input_and_says_field_offset_expected_found() -> None:
    e = expect(patched(CAP_ACCEPT_V2, (0, b"XXXX")), ClcBadEyecatcher, "hdr.eyecatcher", 0)
    assert isinstance(e, MalformedInput)
    text = str(e)
    assert "hdr.eyecatcher" in text and "offset 0" in text
    assert "e2d4c3d9" in text and "58585858" in text  # expected and found
    assert e.rule == "smc_clc_msg_hdr_valid" and "\n" not in text


# --- smc_clc_wait_msg / smc_clc_msg_hdr_valid: header --------------------------------------


@pytest.mark.parametrize("n", [0, 1, 7])
def test_shorter_than_a_header_is_truncated(n: int) -> None:
    expect(CAP_ACCEPT_V2[:n], ClcTruncated, "header", 0)


@pytest.mark.parametrize("ctype", [0, 5, 0xFF])
def test_unknown_type(ctype: int) -> None:
    e = expect(patched(CAP_ACCEPT_V2, (4, bytes([ctype]))), ClcBadType, "hdr.type", 4)
    assert "unknown" in e.found


def test_version_zero_is_rejected() -> None:
    expect(patched(CAP_ACCEPT_V2, (7, bytes([0x01]))), ClcBadVersion, "hdr.version", 7)


def test_versions_above_2_follow_the_v2_rules() -> None:
    """The kernel tests ``version == SMC_V1``; 3..15 take the v2 branches."""
    m = decode(patched(CAP_DECLINE_V2_NOUEID, (7, bytes([0xF0]))))
    assert isinstance(m, Decline) and m.version == 15


def test_message_shorter_than_its_length_is_truncated() -> None:
    e = expect(CAP_ACCEPT_V2[:-1], ClcTruncated, "message", 77)
    assert "78 bytes" in e.expected


def test_bytes_after_the_message_are_rejected_by_decode() -> None:
    expect(CAP_ACCEPT_V2 + b"\0", ClcBadLength, "hdr.length", 5)


# --- Decline (smc_clc_msg_decl_valid) ---------------------------------------------------------


@pytest.mark.parametrize(("vector", "bad"), [(HAND_DECLINE_V1_SYNCERR, 44),
                                             (CAP_DECLINE_V2_NOUEID, 28)])
def test_decline_length_must_match_its_version(vector: bytes, bad: int) -> None:
    e = expect(with_length(vector, bad), ClcBadLength, "hdr.length", 5)
    assert e.rule == "smc_clc_msg_decl_valid"


def test_decline_trailer_and_typev1_are_not_checked() -> None:
    """smc_clc_msg_hdr_valid skips a Decline's trailer; typev1 is unchecked since 6.12.46."""
    raw = patched(CAP_DECLINE_V2_NOUEID, (40, b"junk"), (7, bytes([0x23])))
    m = decode(raw)
    assert isinstance(m, Decline) and m.trailer == b"junk" and m.typev1 == 3
    assert encode(m) == raw


# --- Accept / Confirm (smc_clc_msg_acc_conf_valid) ------------------------------------------


@pytest.mark.parametrize("typev1", [SmcType.N, SmcType.B])
def test_accept_typev1_must_be_r_or_d(typev1: SmcType) -> None:
    e = expect(patched(CAP_ACCEPT_V2, (7, bytes([0x20 | typev1]))), ClcBadField,
               "hdr.typev1", 7)
    assert e.rule == "smc_clc_msg_acc_conf_valid"


def test_accept_v1_length_is_exact() -> None:
    expect(with_length(HAND_ACCEPT_V1 + b"\0\0", 50), ClcBadLength, "hdr.length", 5)


def test_accept_v2_length_has_a_lower_bound_only() -> None:
    expect(with_length(CAP_ACCEPT_V2[:-5] + CAP_ACCEPT_V2[-4:], 77), ClcBadLength,
           "hdr.length", 5)
    longer = with_length(CAP_ACCEPT_V2[:-4] + b"\x01\x02\x03" + CAP_ACCEPT_V2[-4:], 81)
    m = decode(longer)
    assert isinstance(m, Accept) and m.extra == b"\x01\x02\x03" and encode(m) == longer


def test_smcr_v2_accept_needs_108_bytes() -> None:
    smcr = patched(CAP_ACCEPT_V2, (7, bytes([0x20])))  # typev1 R, still 78 bytes
    expect(smcr, ClcBadLength, "hdr.length", 5)


def test_accept_trailer_must_be_an_eyecatcher() -> None:
    e = expect(patched(CAP_ACCEPT_V2, (74, b"\0\0\0\0")), ClcBadEyecatcher, "trl.eyecatcher",
               74)
    assert e.found == "00000000"


def test_trailer_may_be_the_other_eyecatcher() -> None:
    raw = patched(CAP_CONFIRM_V2, (74, bytes.fromhex("e2d4c3d9")))
    assert encode(decode(raw)) == raw


def test_first_contact_accept_without_room_for_the_extension_still_decodes() -> None:
    """Length >= 78 is all the kernel checks; the extension is simply not in the message."""
    raw = patched(CAP_ACCEPT_V2, (7, bytes([0x29])))
    m = decode(raw)
    assert isinstance(m, Accept) and m.first_contact and m.first_contact_ext is None


# --- Proposal (smc_clc_msg_prop_valid and the offset helpers) -------------------------------


def test_iparea_offset_beyond_the_smcd_area() -> None:
    e = expect(patched(CAP_PROPOSAL_V2_NO_UEID, (38, b"\x00\x29")), ClcBadField,
               "iparea_offset", 38)
    assert e.found == "41"


def test_ipv6_prefix_count_read_inside_the_smcd_area_for_a_v2_only_proposal() -> None:
    """With iparea_offset 0 the count is byte 47, the low byte of ism.gid (kernel quirk)."""
    e = expect(patched(CAP_PROPOSAL_V2_NO_UEID, (47, b"\x09")), ClcBadField,
               "pclc_prfx.ipv6_prefixes_cnt", 47)
    assert e.expected == "<= 8"
    # a count of 8 there passes the check (and the v2-only length ignores it)
    assert isinstance(decode(patched(CAP_PROPOSAL_V2_NO_UEID, (47, b"\x08"))), Proposal)


def test_ipv6_prefix_count_above_8() -> None:
    expect(patched(HAND_PROPOSAL_V1, (87, b"\x09")), ClcBadField,
           "pclc_prfx.ipv6_prefixes_cnt", 87)


def test_v1_proposal_must_offer_a_v1_type() -> None:
    e = expect(patched(HAND_PROPOSAL_V1, (7, bytes([0x12]))), ClcBadField, "hdr.typev1", 7)
    assert e.rule == "smc_clc_msg_prop_valid"


def test_v1_proposal_length_counts_prefixes() -> None:
    expect(patched(HAND_PROPOSAL_V1, (87, b"\x01")), ClcBadLength, "hdr.length", 5)


def test_v2_proposal_offering_smcd_v1_needs_iparea_offset_40_for_its_v2_extension() -> None:
    e = expect(patched(HAND_PROPOSAL_V2_UEIDS, (38, b"\x00\x20")), ClcBadField,
               "iparea_offset", 38)
    assert e.rule == "smc_get_clc_msg_smcd"


@pytest.mark.parametrize("offset", [0, 173, 0xFFFF])
def test_v2_ext_offset_out_of_bounds(offset: int) -> None:
    e = expect(patched(CAP_PROPOSAL_V2_UEID, (50, struct.pack(">H", offset))), ClcBadField,
               "pclc_smcd.v2_ext_offset", 50)
    assert "1..172" in e.expected


def test_too_many_ueids() -> None:
    expect(patched(CAP_PROPOSAL_V2_UEID, (80, b"\x09")), ClcBadField,
           "pclc_v2_ext.hdr.eid_cnt", 80)


def test_too_many_gid_chid_entries() -> None:
    expect(patched(CAP_PROPOSAL_V2_UEID, (81, b"\x09")), ClcBadField,
           "pclc_v2_ext.hdr.ism_gid_cnt", 81)


def test_v2_proposal_length_must_equal_the_sum_of_its_parts() -> None:
    e = expect(patched(CAP_PROPOSAL_V2_UEID, (80, b"\x02")), ClcBadLength, "hdr.length", 5)
    assert e.expected.startswith("256")


def test_proposal_trailer_is_checked() -> None:
    expect(patched(CAP_PROPOSAL_V2_UEID, (220, b"SMCR")), ClcBadEyecatcher,
           "trl.eyecatcher", 220)


def test_smcd_v2_ext_offset_zero_is_accepted_and_kept_as_a_gap() -> None:
    """No lower bound in smc_clc_msg_prop_valid: the server declines NOV2DEXT later."""
    raw = patched(CAP_PROPOSAL_V2_UEID, (86, b"\x00\x00"))
    m = decode(raw)
    assert isinstance(m, Proposal) and m.v2_ext is not None
    assert m.v2_ext.smcd_v2_ext is None and m.v2_ext.ism_gid_cnt == 2
    assert m.gaps == ((152, raw[152:220]),)
    assert encode(m) == raw


def test_v2_extension_pointing_past_the_message_reads_the_zeroed_buffer() -> None:
    """The receive buffer is a kzalloc'd 652-byte area: a far pointer finds zero counts."""
    # v2-only proposal with no UEIDs and no GID entries: 40+40+40+48+4 = 172 bytes, v2 ext
    # pointer at the maximum 172 -> extension at 224, i.e. outside the message.
    raw = bytearray(172)
    raw[0:8] = bytes.fromhex("e2d4c3d901") + struct.pack(">H", 172) + b"\x26"
    raw[50:52] = struct.pack(">H", 172)
    raw[168:172] = bytes.fromhex("e2d4c3d9")
    m = decode(bytes(raw))
    assert isinstance(m, Proposal) and m.v2_ext is not None
    assert m.v2_ext.eid_cnt == 0 and m.v2_ext.smcd_v2_ext is None
    assert encode(m) == bytes(raw)


# --- decode_stream -----------------------------------------------------------------------


def test_stream_error_names_the_message_index_and_offset() -> None:
    stream = CAP_PROPOSAL_V2_UEID + patched(CAP_ACCEPT_V2, (74, b"\0\0\0\0"))
    with pytest.raises(ClcBadEyecatcher) as info:
        decode_stream(stream)
    assert info.value.index == 1 and info.value.message_offset == 224
    assert info.value.offset == 224 + 74
    assert "message 1 (at byte 224)" in str(info.value)


def test_stream_with_a_partial_last_message() -> None:
    with pytest.raises(ClcTruncated) as info:
        decode_stream(CAP_ACCEPT_V2 + CAP_CONFIRM_V2[:5])
    assert info.value.index == 1 and info.value.field == "header"


def test_stream_with_a_zero_length_header_stops() -> None:
    with pytest.raises(ClcBadLength) as info:
        decode_stream(with_length(CAP_ACCEPT_V2, 0))
    assert info.value.index == 0


# --- check_receivable (context rules of smc_clc_wait_msg) -----------------------------------


def test_unexpected_type_is_rejected_but_a_decline_always_passes() -> None:
    with pytest.raises(ClcBadType) as info:
        check_receivable(CAP_CONFIRM_V2, ClcType.ACCEPT, SMC_CLC_MAX_ACCEPT_LEN)
    assert info.value.rule == "smc_clc_wait_msg" and info.value.field == "hdr.type"
    m = check_receivable(CAP_DECLINE_V2_NOUEID, ClcType.ACCEPT, SMC_CLC_MAX_ACCEPT_LEN)
    assert isinstance(m, Decline)


def test_message_longer_than_the_buffer_skips_the_trailer_check() -> None:
    body = CAP_ACCEPT_V2_FIRST_CONTACT[:-4] + bytes(40)
    raw = with_length(body + b"\0\0\0\0", len(body) + 4)  # 174 bytes > 160, bad trailer
    with pytest.raises(ClcBadEyecatcher):
        decode(raw)
    m = check_receivable(raw, ClcType.ACCEPT, SMC_CLC_MAX_ACCEPT_LEN)
    assert isinstance(m, Accept) and m.trailer == bytes(4)
    assert encode(m) == raw


# --- constructing invalid messages ------------------------------------------------------------


def test_dataclasses_refuse_values_the_wire_cannot_carry() -> None:
    with pytest.raises(ClcBadField):
        Accept(typev1=SmcType.N)
    with pytest.raises(ClcBadField):
        Accept(dmbe_size=16)
    with pytest.raises(ClcBadField):
        Decline(peer_diagnosis=1 << 32)
    with pytest.raises(ClcBadVersion):
        Decline(version=0, peer_diagnosis=0)
    with pytest.raises(ClcBadField):
        Proposal(typev1=SmcType.D)  # v1 type offered but no prefix area


def test_non_bytes_input_is_a_clc_error_too() -> None:
    for junk in (5, "e2d4", None, [1, 2]):
        with pytest.raises(ClcBadField) as info:
            decode(junk)  # type: ignore[arg-type]
        assert info.value.field == "data" and "offset" not in str(info.value)


def test_check_receivable_uses_the_kernels_buffer_sizes() -> None:
    """A v2 Decline read into a 28-byte Decline-only buffer still passes (length 44 > 28 only
    skips the trailer check); a Proposal is checked whole in the 652-byte area."""
    m = check_receivable(patched(CAP_DECLINE_V2_NOUEID, (40, b"xxxx")), ClcType.DECLINE, 28)
    assert isinstance(m, Decline)
    p = check_receivable(CAP_PROPOSAL_V2_UEID, ClcType.PROPOSAL, 652)
    assert isinstance(p, Proposal)
    with pytest.raises(ClcBadType):
        check_receivable(CAP_PROPOSAL_V2_UEID, ClcType.CONFIRM, 652)
