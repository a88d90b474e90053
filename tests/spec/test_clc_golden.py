"""Golden vectors: real Linux 6.12.118 captures and hand-built kernel layouts decode to the
field values a human reads off them, and encode back to the exact bytes.

The vectors (tests/spec/clc_vectors.py) are built from the kernel's structs or captured from a
real kernel, never produced by our encoder.
"""

from __future__ import annotations

import pytest
from clc_vectors import (
    ALL,
    CAP_ACCEPT_V2,
    CAP_ACCEPT_V2_FIRST_CONTACT,
    CAP_CONFIRM_V2,
    CAP_CONFIRM_V2_FIRST_CONTACT,
    CAP_DECLINE_V1_NOSMCDEV,
    CAP_DECLINE_V2_NOUEID,
    CAP_PROPOSAL_V2_NO_UEID,
    CAP_PROPOSAL_V2_UEID,
    HAND_ACCEPT_V1,
    HAND_ACCEPT_V2_FCE36,
    HAND_ACCEPT_V2_FCE52,
    HAND_CONFIRM_V1,
    HAND_CONFIRM_V2,
    HAND_DECLINE_V1_SYNCERR,
    HAND_DECLINE_V2,
    HAND_PROPOSAL_V1,
    HAND_PROPOSAL_V1_SMCR_LEGACY,
    HAND_PROPOSAL_V2_IPV6,
    HAND_PROPOSAL_V2_UEIDS,
    LOOPBACK_CHID,
    LOOPBACK_GID,
    LOOPBACK_GID_EXT,
    UEID,
    eid,
)

from smcd_check.spec.clc import (
    EYECATCHER_SMCD,
    EYECATCHER_SMCR,
    Accept,
    ClcType,
    Confirm,
    Decline,
    FirstContactExt,
    FirstContactExtV2x,
    GidChid,
    Ipv6Prefix,
    Proposal,
    ProposalPrefix,
    ProposalSmcd,
    ProposalV2Ext,
    SmcdV2Ext,
    SmcType,
    build_proposal,
    decode,
    decode_stream,
    dissect,
    encode,
)
from smcd_check.spec.decline import DeclineCode


@pytest.mark.parametrize("vector", ALL, ids=lambda b: f"{len(b)}B-{b[4]}")
def test_golden_vector_round_trips_byte_exact(vector: bytes) -> None:
    msg = decode(vector)
    assert encode(msg) == vector
    assert msg.length == len(vector)
    assert hash(msg) == hash(decode(vector))  # frozen and hashable: usable in explored states


# --- captured: values read off smclo-6.12_decode.txt (tshark) ---------------------------------


def test_captured_proposal_192_without_ueid() -> None:
    m = decode(CAP_PROPOSAL_V2_NO_UEID)
    assert isinstance(m, Proposal)
    assert (m.version, m.typev2, m.typev1) == (2, SmcType.D, SmcType.N)  # Flags 0x26
    assert m.iparea_offset == 0 and m.prefix is None
    assert m.smcd == ProposalSmcd(ism=GidChid(gid=0, chid=0), v2_ext_offset=0x1C)
    v2 = m.v2_ext
    assert v2 is not None
    assert (v2.eid_cnt, v2.ism_gid_cnt, v2.release, v2.seid) == (0, 2, 1, False)
    assert v2.smcd_v2_ext_offset == 0x20
    assert v2.feature_mask == 1  # in tshark's "Reserved: 00000001..." (not decoded by tshark)
    assert v2.smcd_v2_ext is not None
    assert v2.smcd_v2_ext.system_eid == bytes(32)  # "SEID:" empty
    assert v2.smcd_v2_ext.gidchids == (
        GidChid(gid=LOOPBACK_GID, chid=LOOPBACK_CHID),
        GidChid(gid=LOOPBACK_GID_EXT, chid=LOOPBACK_CHID),
    )
    assert m.gaps == () and m.eyecatcher == m.trailer == EYECATCHER_SMCR


def test_captured_proposal_224_with_one_ueid() -> None:
    m = decode(CAP_PROPOSAL_V2_UEID)
    assert isinstance(m, Proposal) and m.v2_ext is not None
    assert m.v2_ext.user_eids == (UEID,)  # "EID: SMCD-CONFORMANCE-UEID"
    assert m.v2_ext.smcd_v2_ext_offset == 0x40
    assert m.length == 224


def test_captured_decline_v2_nouied() -> None:
    m = decode(CAP_DECLINE_V2_NOUEID)
    assert m == Decline(version=2, peer_diagnosis=DeclineCode.NOUEID, os_type=2)
    assert isinstance(m, Decline) and m.peer_diagnosis == 0x03030008 and not m.out_of_sync


def test_captured_decline_v1_from_stock_kernel() -> None:
    m = decode(CAP_DECLINE_V1_NOSMCDEV)
    assert m == Decline(version=1, peer_diagnosis=DeclineCode.NOSMCDEV, os_type=0)


def test_captured_accept_130_first_contact() -> None:
    m = decode(CAP_ACCEPT_V2_FIRST_CONTACT)
    assert isinstance(m, Accept)
    assert (m.version, m.first_contact, m.typev1) == (2, True, SmcType.D)  # Flags 0x29
    assert m.gid == LOOPBACK_GID and m.token == 0x056BB09D0D41D3DD
    assert (m.dmbe_idx, m.dmbe_size, m.dmbe_bytes) == (0, 2, 64 * 1024)  # "2 (Size: 64k)"
    assert m.linkid == bytes.fromhex("00010000")  # "Server Link ID: 0x00010000"
    assert m.chid == LOOPBACK_CHID and m.eid == UEID
    assert m.gid_ext == LOOPBACK_GID_EXT  # tshark shows it as "Reserved: b9c97dd435ab2d9f"
    assert m.first_contact_ext == FirstContactExt(
        os_type=2, release=1, hostname=b"(none)".ljust(32, b" "),
        v2x=FirstContactExtV2x(feature_mask=1))
    assert m.extra == b"" and m.eyecatcher == m.trailer == EYECATCHER_SMCD


def test_captured_confirm_130_first_contact() -> None:
    m = decode(CAP_CONFIRM_V2_FIRST_CONTACT)
    assert isinstance(m, Confirm) and m.first_contact
    assert m.token == 0x05CBEBEA105B723A and m.linkid == bytes.fromhex("00020000")
    assert m.first_contact_ext is not None and m.first_contact_ext.release == 1


def test_captured_accept_and_confirm_78_reuse_link_group() -> None:
    a, c = decode(CAP_ACCEPT_V2), decode(CAP_CONFIRM_V2)
    assert isinstance(a, Accept) and isinstance(c, Confirm)
    assert not a.first_contact and not c.first_contact
    assert a.first_contact_ext is None and c.first_contact_ext is None
    assert a.token == 0x056BB09D0D41D3DD and c.token == 0x40240BD884458F7A
    assert c.linkid == bytes.fromhex("00010000")


def test_captured_tcp_payloads_concatenated_decode_in_turn() -> None:
    stream = CAP_PROPOSAL_V2_UEID + CAP_ACCEPT_V2_FIRST_CONTACT + CAP_CONFIRM_V2_FIRST_CONTACT
    msgs = decode_stream(stream)
    assert [m.type for m in msgs] == [ClcType.PROPOSAL, ClcType.ACCEPT, ClcType.CONFIRM]


def test_linux_layout_builder_reproduces_the_captured_proposal() -> None:
    """build_proposal lays a Proposal out as smc_clc_send_proposal does (checked on real bytes)."""
    m = build_proposal(typev1=SmcType.N, typev2=SmcType.D, user_eids=(UEID,),
                       gidchids=(GidChid(gid=LOOPBACK_GID, chid=LOOPBACK_CHID),
                                 GidChid(gid=LOOPBACK_GID_EXT, chid=LOOPBACK_CHID)))
    assert encode(m) == CAP_PROPOSAL_V2_UEID


# --- hand-built vectors --------------------------------------------------------------------


def test_hand_proposal_v1() -> None:
    m = decode(HAND_PROPOSAL_V1)
    assert m == Proposal(
        version=1, typev2=SmcType.R, typev1=SmcType.D, iparea_offset=40,
        smcd=ProposalSmcd(ism=GidChid(gid=0x1122334455667788, chid=0x0123)),
        prefix=ProposalPrefix(outgoing_subnet=bytes([10, 1, 2, 0]), prefix_len=24))


def test_hand_proposal_v1_smcr_legacy_has_no_smcd_area() -> None:
    m = decode(HAND_PROPOSAL_V1_SMCR_LEGACY)
    assert isinstance(m, Proposal)
    assert m.smcd is None and m.iparea_offset == 0 and m.typev1 == SmcType.R
    assert m.id_for_peer == bytes.fromhex("0a0b0c0d0e0f1011")
    assert m.prefix == ProposalPrefix(outgoing_subnet=bytes([192, 168, 1, 0]), prefix_len=24)


def test_hand_proposal_v2_with_smcd_v2_ext_and_ueids() -> None:
    m = decode(HAND_PROPOSAL_V2_UEIDS)
    assert m == Proposal(
        version=2, typev2=SmcType.D, typev1=SmcType.D, iparea_offset=40,
        smcd=ProposalSmcd(ism=GidChid(gid=0x1122334455667788, chid=0x0123), v2_ext_offset=36),
        prefix=ProposalPrefix(outgoing_subnet=bytes([10, 1, 2, 0]), prefix_len=24),
        v2_ext=ProposalV2Ext(
            ism_gid_cnt=1, release=1, smcd_v2_ext_offset=96, feature_mask=1,
            user_eids=(eid("SMCD-UEID-ONE"), eid("SMCD-UEID-TWO")),
            smcd_v2_ext=SmcdV2Ext(gidchids=(GidChid(gid=0x99AABBCCDDEEFF00, chid=0x0456),))))
    built = build_proposal(typev1=SmcType.D, typev2=SmcType.D,
                           ism_v1=GidChid(gid=0x1122334455667788, chid=0x0123),
                           prefix=ProposalPrefix(outgoing_subnet=bytes([10, 1, 2, 0]),
                                                 prefix_len=24),
                           user_eids=(eid("SMCD-UEID-ONE"), eid("SMCD-UEID-TWO")),
                           gidchids=(GidChid(gid=0x99AABBCCDDEEFF00, chid=0x0456),))
    assert encode(built) == HAND_PROPOSAL_V2_UEIDS


def test_hand_proposal_with_ipv6_prefixes() -> None:
    m = decode(HAND_PROPOSAL_V2_IPV6)
    assert isinstance(m, Proposal) and m.prefix is not None and m.v2_ext is None
    assert m.prefix.ipv6_prefixes == (
        Ipv6Prefix(prefix=bytes.fromhex("20010db8000100000000000000000000"), prefix_len=64),
        Ipv6Prefix(prefix=bytes.fromhex("fd001234567800000000000000000000"), prefix_len=48),
    )
    assert m.smcd is not None and m.smcd.v2_ext_offset == 0


def test_hand_accept_and_confirm_v1() -> None:
    a = decode(HAND_ACCEPT_V1)
    assert a == Accept(version=1, typev2=0b10, gid=0x1122334455667788,
                       token=0x0102030405060708, dmbe_size=1, linkid=bytes.fromhex("00000100"))
    assert isinstance(a, Accept) and a.first_contact and a.dmbe_bytes == 32 * 1024
    c = decode(HAND_CONFIRM_V1)
    assert c == Confirm(version=1, gid=0x8877665544332211, token=0xA0A1A2A3A4A5A6A7,
                        dmbe_size=0, linkid=bytes.fromhex("00000200"))


def test_hand_accept_v2_first_contact_36_byte_form() -> None:
    m = decode(HAND_ACCEPT_V2_FCE36)
    assert isinstance(m, Accept)
    assert m.first_contact_ext == FirstContactExt(os_type=2, release=0,
                                                  hostname=b"host-a".ljust(32, b" "))
    assert (m.dmbe_size, m.chid, m.eid, m.gid_ext) == (6, 0x0123, eid("SMCD-UEID-ONE"), 0)
    assert m.length == 114 and m.extra == b""


def test_hand_accept_v2_first_contact_52_byte_form() -> None:
    m = decode(HAND_ACCEPT_V2_FCE52)
    assert isinstance(m, Accept) and m.first_contact_ext is not None
    assert m.first_contact_ext.v2x == FirstContactExtV2x(feature_mask=1)
    assert m.gid_ext == 0x0F0E0D0C0B0A0908 and m.length == 130


def test_hand_confirm_v2() -> None:
    m = decode(HAND_CONFIRM_V2)
    assert m == Confirm(gid=0x1122334455667788, token=0x1112131415161718, dmbe_size=3,
                        linkid=bytes.fromhex("00000300"), chid=0x0123, eid=eid("SMCD-UEID-ONE"))


def test_hand_declines() -> None:
    m1 = decode(HAND_DECLINE_V1_SYNCERR)
    assert m1 == Decline(version=1, typev2=0b10, id_for_peer=bytes.fromhex("0a0b0c0d0e0f1011"),
                         peer_diagnosis=DeclineCode.SYNCERR, os_type=0)
    assert isinstance(m1, Decline) and m1.out_of_sync
    m2 = decode(HAND_DECLINE_V2)
    assert m2 == Decline(peer_diagnosis=DeclineCode.NOSMCDDEV)


# --- dissection ------------------------------------------------------------------------------


@pytest.mark.parametrize("vector", ALL, ids=lambda b: f"{len(b)}B-{b[4]}")
def test_dissect_covers_every_byte_in_wire_order(vector: bytes) -> None:
    """Fields come in wire order, their raw bytes are the message's, and no byte is missed."""
    fields = dissect(vector)
    covered = bytearray(len(vector))
    last = -1
    for f in fields:
        assert f.offset >= last, f"{f.name} out of order"
        last = f.offset
        assert f.raw == vector[f.offset: f.offset + f.size]
        for k in range(f.offset, f.offset + f.size):
            covered[k] = 1
    assert all(covered), f"bytes not dissected: {[i for i, c in enumerate(covered) if not c]}"
    assert fields[0].name == "hdr.eyecatcher" and fields[-1].name == "trl.eyecatcher"


def test_dissect_names_the_decline_reason() -> None:
    by_name = {f.name: f for f in dissect(CAP_DECLINE_V2_NOUEID)}
    assert by_name["peer_diagnosis"].value == 0x03030008
    assert "SMC_CLC_DECL_NOUEID" in by_name["peer_diagnosis"].meaning
    assert by_name["os_type"].meaning == "Linux"


def test_dissect_of_a_message_object_equals_dissect_of_its_bytes() -> None:
    assert dissect(decode(CAP_ACCEPT_V2_FIRST_CONTACT)) == dissect(CAP_ACCEPT_V2_FIRST_CONTACT)


def test_unknown_decline_code_decodes_and_reads_unknown() -> None:
    raw = bytearray(HAND_DECLINE_V2)
    raw[16:20] = (0x0ABCDEF0).to_bytes(4, "big")
    m = decode(bytes(raw))
    assert isinstance(m, Decline) and m.peer_diagnosis == 0x0ABCDEF0
    by_name = {f.name: f for f in dissect(bytes(raw))}
    assert by_name["peer_diagnosis"].meaning == "unknown"
    assert encode(m) == bytes(raw)
