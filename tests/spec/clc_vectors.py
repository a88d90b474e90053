"""Golden CLC vectors: real Linux 6.12.118 captures and hand-built kernel struct layouts.

Two kinds of vectors, both independent of smcd_check's own encoder:

1. ``CAP_*``: TCP payloads captured on ``lo`` from a real Linux 6.12.118 kernel with SMC_LO
   (loopback-ism) in qemu (``smclo-6.12_lo.pcap``), and from the stock Debian 6.12.118 kernel
   without an SMC-D device (``debian-6.12-stock_lo.pcap``). Extracted once with a few lines of
   Python reading the pcap with ``struct``: global header (24 bytes, link type 1 = Ethernet),
   per packet a 16-byte record header, then Ethernet (14 bytes), IPv4 (IHL * 4 bytes, total
   length at IPv4 offset 2), TCP (data offset = high nibble of TCP byte 12, times 4); the TCP
   payload of each packet whose payload starts with the eyecatcher E2 D4 C3 D9 / E2 D4 C3 C4 is
   pasted here as hex. The frame numbers are those of the tshark decode shipped with the
   captures (``smclo-6.12_decode.txt``); tests assert the values read off that decode.
   (Frame 29 is byte-identical to frame 17; frames 8/9 are the TCP fallback data
   "SMC-ORACLE-MARKER-0123456789", not CLC.)

2. ``HAND_*``: vectors built by hand from field values at the offsets of the kernel's structs
   (net/smc/smc_clc.h of 6.12.118: ``struct smc_clc_msg_hdr``, ``smc_clc_msg_proposal``,
   ``smc_clc_msg_smcd``, ``smc_clc_msg_proposal_prefix``, ``smc_clc_ipv6_prefix``,
   ``smc_clc_v2_extension``, ``smc_clc_smcd_v2_extension``, ``smc_clc_smcd_gid_chid``,
   ``smc_clc_msg_accept_confirm`` (d0 = ``smcd_clc_msg_accept_confirm_common``, d1),
   ``smc_clc_first_contact_ext``, ``smc_clc_first_contact_ext_v2x``, ``smc_clc_msg_decline``,
   ``smc_clc_msg_decline_v2``). :func:`layout` places each field at its documented absolute
   offset and refuses overlaps, holes and a wrong total, so a layout mistake fails loudly.
   Each vector comes with ``*_FIELDS``: the field values a reader expects after decoding.
"""

from __future__ import annotations

from typing import Final

SMCR: Final = bytes.fromhex("e2d4c3d9")  # "SMCR" in EBCDIC (SMC_EYECATCHER)
SMCD: Final = bytes.fromhex("e2d4c3c4")  # "SMCD" in EBCDIC (SMCD_EYECATCHER)


def layout(total: int, *fields: tuple[int, bytes]) -> bytes:
    """Bytes of length ``total`` with each ``(offset, bytes)`` placed; no overlap, no hole."""
    out = bytearray(total)
    owner = [-1] * total
    for i, (offset, data) in enumerate(fields):
        for k in range(len(data)):
            assert owner[offset + k] == -1, f"field {i} overlaps field {owner[offset + k]}"
            owner[offset + k] = i
        out[offset: offset + len(data)] = data
    assert -1 not in owner, f"hole at offset {owner.index(-1)}"
    return bytes(out)


def be(value: int, size: int) -> bytes:
    """``value`` big-endian in ``size`` bytes (the kernel's __be16/__be32/__be64)."""
    return value.to_bytes(size, "big")


def z(size: int) -> bytes:
    """``size`` zero bytes (reserved / unused fields as Linux sends them)."""
    return bytes(size)


def eid(text: str) -> bytes:
    """A 32-byte EID, blank padded (SMC_MAX_EID_LEN)."""
    return text.encode("ascii").ljust(32, b" ")


# ============================================================================================
# 1. Real captures (Linux 6.12.118)
# ============================================================================================

#: frame 4, client -> server, 192 bytes: Proposal v2 (typev1 N, typev2 D), no UEID,
#: loopback-ism as two GID/CHID entries
CAP_PROPOSAL_V2_NO_UEID: Final = bytes.fromhex(
    "e2d4c3d90100c026000000000000000000000000000000000000000000000000"
    "000000000000000000000000000000000000001c000000000000000000000000"
    "0000000000000000000000000000000000020010000000200000000000000000"
    "0000000000000000000000010000000000000000000000000000000000000000"
    "0000000000000000000000000000000000000000000000000000000000000000"
    "0000000000000000314274d28d9afb2cffffb9c97dd435ab2d9fffffe2d4c3d9"
)

#: frame 6, server -> client, 44 bytes: Decline v2, 0x03030008 NOUEID, os_type Linux
CAP_DECLINE_V2_NOUEID: Final = bytes.fromhex(
    "e2d4c3d904002c20000000000000000003030008200000000000000000000000"
    "0000000000000000e2d4c3d9"
)

#: frame 17, client -> server, 224 bytes: Proposal v2 with one UEID
CAP_PROPOSAL_V2_UEID: Final = bytes.fromhex(
    "e2d4c3d90100e026000000000000000000000000000000000000000000000000"
    "000000000000000000000000000000000000001c000000000000000000000000"
    "0000000000000000000000000000000001020010000000400000000000000000"
    "000000000000000000000001000000000000000000000000534d43442d434f4e"
    "464f524d414e43452d5545494420202020202020202020200000000000000000"
    "0000000000000000000000000000000000000000000000000000000000000000"
    "0000000000000000314274d28d9afb2cffffb9c97dd435ab2d9fffffe2d4c3d9"
)

#: frame 19, server -> client, 130 bytes: Accept v2, first contact, 52-byte extension
CAP_ACCEPT_V2_FIRST_CONTACT: Final = bytes.fromhex(
    "e2d4c3c402008229314274d28d9afb2c056bb09d0d41d3dd0020000000010000"
    "ffff534d43442d434f4e464f524d414e43452d55454944202020202020202020"
    "2020b9c97dd435ab2d9f00210000286e6f6e6529202020202020202020202020"
    "202020202020202020202020202000000001000000000000000000000000e2d4"
    "c3c4"
)

#: frame 21, client -> server, 130 bytes: Confirm v2, first contact, 52-byte extension
CAP_CONFIRM_V2_FIRST_CONTACT: Final = bytes.fromhex(
    "e2d4c3c403008229314274d28d9afb2c05cbebea105b723a0020000000020000"
    "ffff534d43442d434f4e464f524d414e43452d55454944202020202020202020"
    "2020b9c97dd435ab2d9f00210000286e6f6e6529202020202020202020202020"
    "202020202020202020202020202000000001000000000000000000000000e2d4"
    "c3c4"
)

#: frame 31, server -> client, 78 bytes: Accept v2, link group reused (no first contact)
CAP_ACCEPT_V2: Final = bytes.fromhex(
    "e2d4c3c402004e21314274d28d9afb2c056bb09d0d41d3dd0020000000010000"
    "ffff534d43442d434f4e464f524d414e43452d55454944202020202020202020"
    "2020b9c97dd435ab2d9fe2d4c3c4"
)

#: frame 33, client -> server, 78 bytes: Confirm v2, no first contact
CAP_CONFIRM_V2: Final = bytes.fromhex(
    "e2d4c3c403004e21314274d28d9afb2c40240bd884458f7a0020000000010000"
    "ffff534d43442d434f4e464f524d414e43452d55454944202020202020202020"
    "2020b9c97dd435ab2d9fe2d4c3c4"
)

#: debian-6.12-stock_lo.pcap frame 4, client -> server, 28 bytes: Decline v1, 0x03030000 NOSMCDEV
CAP_DECLINE_V1_NOSMCDEV: Final = bytes.fromhex(
    "e2d4c3d904001c1000000000000000000303000000000000e2d4c3d9"
)

#: every captured CLC payload, in capture order
CAPTURED: Final = (
    CAP_PROPOSAL_V2_NO_UEID, CAP_DECLINE_V2_NOUEID, CAP_PROPOSAL_V2_UEID,
    CAP_ACCEPT_V2_FIRST_CONTACT, CAP_CONFIRM_V2_FIRST_CONTACT, CAP_ACCEPT_V2, CAP_CONFIRM_V2,
    CAP_DECLINE_V1_NOSMCDEV,
)

#: values a human reads off smclo-6.12_decode.txt (tshark) for the captured messages
LOOPBACK_GID: Final = 0x314274D28D9AFB2C  # "ISM GID" / "Sender ISM GID"
LOOPBACK_GID_EXT: Final = 0xB9C97DD435AB2D9F  # second GID/CHID entry; Accept "Reserved" at 66
LOOPBACK_CHID: Final = 0xFFFF
UEID: Final = eid("SMCD-CONFORMANCE-UEID")

# ============================================================================================
# 2. Hand-built from the kernel's struct layouts (offsets absolute, as in net/smc/smc_clc.h)
# ============================================================================================

# --- Proposal, v1 header (a pre-v2 kernel offering SMC-D v1 over IPv4) ----------------------
# struct smc_clc_msg_proposal (40) + struct smc_clc_msg_smcd (40) + proposal_prefix (8) + trl
HAND_PROPOSAL_V1: Final = layout(
    92,
    (0, SMCR),  # hdr.eyecatcher
    (4, be(1, 1)),  # hdr.type = SMC_CLC_PROPOSAL
    (5, be(92, 2)),  # hdr.length = 40 + iparea_offset 40 + 8 + 0 * 17 + 4
    (7, be(0x11, 1)),  # version 1 << 4 | typev2 0 << 2 | typev1 1 (SMC_TYPE_D)
    (8, z(8)),  # lcl.id_for_peer (no SMC-R)
    (16, z(16)),  # lcl.gid
    (32, z(6)),  # lcl.mac
    (38, be(40, 2)),  # iparea_offset = sizeof(struct smc_clc_msg_smcd)
    (40, be(0x1122334455667788, 8)),  # pclc_smcd.ism.gid
    (48, be(0x0123, 2)),  # pclc_smcd.ism.chid
    (50, be(0, 2)),  # pclc_smcd.v2_ext_offset (none)
    (52, z(3)),  # vendor_oui
    (55, z(5)),  # vendor_exp_options
    (60, z(20)),  # reserved
    (80, bytes([10, 1, 2, 0])),  # pclc_prfx.outgoing_subnet 10.1.2.0
    (84, be(24, 1)),  # prefix_len /24
    (85, z(2)),  # reserved
    (87, be(0, 1)),  # ipv6_prefixes_cnt
    (88, SMCR),  # trailer
)

# --- Proposal, v1 header, SMC-R only, iparea_offset 0 (the oldest layout: no SMC-D area) ----
HAND_PROPOSAL_V1_SMCR_LEGACY: Final = layout(
    52,
    (0, SMCR), (4, be(1, 1)),
    (5, be(52, 2)),  # 40 + iparea_offset 0 + 8 + 4
    (7, be(0x10, 1)),  # version 1, typev1 0 (SMC_TYPE_R)
    (8, bytes.fromhex("0a0b0c0d0e0f1011")),  # lcl.id_for_peer (SMC-R system id)
    (16, bytes(range(0x20, 0x30))),  # lcl.gid
    (32, bytes.fromhex("02005e000001")),  # lcl.mac
    (38, be(0, 2)),  # iparea_offset 0: the prefix area follows the base directly
    (40, bytes([192, 168, 1, 0])), (44, be(24, 1)), (45, z(2)), (47, be(0, 1)),
    (48, SMCR),
)

# --- Proposal v2: SMC-D v1 + SMC-D v2, IPv4 prefix, two UEIDs, one native ISMv2 device ------
# smc_clc_send_proposal: iparea_offset 40, v2_ext_offset = 40 - 12 + 8 = 36,
# smcd_v2_ext_offset = 40 - 8 + 2 * 32 = 96, length = 40+40+8 + 40+64 + 48+10 + 4 = 254
HAND_PROPOSAL_V2_UEIDS: Final = layout(
    254,
    (0, SMCR), (4, be(1, 1)), (5, be(254, 2)),
    (7, be(0x25, 1)),  # version 2 << 4 | typev2 1 (D) << 2 | typev1 1 (D)
    (8, z(8)), (16, z(16)), (32, z(6)),
    (38, be(40, 2)),  # iparea_offset
    (40, be(0x1122334455667788, 8)), (48, be(0x0123, 2)),  # v1 ISM device
    (50, be(36, 2)),  # v2_ext_offset: v2 extension at 52 + 36 = 88
    (52, z(3)), (55, z(5)), (60, z(20)),
    (80, bytes([10, 1, 2, 0])), (84, be(24, 1)), (85, z(2)), (87, be(0, 1)),  # prefix area
    (88, be(2, 1)),  # v2_ext.hdr.eid_cnt
    (89, be(1, 1)),  # hdr.ism_gid_cnt
    (90, z(1)),  # hdr.reserved1
    (91, be(0x10, 1)),  # hdr.flag: release 1 << 4 | rsvd 0 | seid 0
    (92, z(2)),  # hdr.reserved2
    (94, be(96, 2)),  # hdr.smcd_v2_ext_offset: SMC-Dv2 ext at 88 + 8 + 96 = 192
    (96, z(16)),  # roce
    (112, be(0, 1)), (113, be(0, 1)),  # max_conns, max_links
    (114, be(1, 2)),  # feature_mask = SMC_FEATURE_MASK (emulated ISM supported)
    (116, z(12)),  # reserved
    (128, eid("SMCD-UEID-ONE")),  # user_eids[0]
    (160, eid("SMCD-UEID-TWO")),  # user_eids[1]
    (192, z(32)),  # smcd_v2_ext.system_eid (seid not set)
    (224, z(16)),  # reserved
    (240, be(0x99AABBCCDDEEFF00, 8)), (248, be(0x0456, 2)),  # gidchid[0]
    (250, SMCR),
)

# --- Proposal v2 header offering only SMC-D v1 over IPv6 (typev2 N), two IPv6 prefixes -----
HAND_PROPOSAL_V2_IPV6: Final = layout(
    126,
    (0, SMCR), (4, be(1, 1)),
    (5, be(126, 2)),  # 40 + 40 + 8 + 2 * 17 + 4
    (7, be(0x29, 1)),  # version 2 << 4 | typev2 2 (N) << 2 | typev1 1 (D)
    (8, z(8)), (16, z(16)), (32, z(6)),
    (38, be(40, 2)),
    (40, be(0x1122334455667788, 8)), (48, be(0x0123, 2)),
    (50, be(0, 2)),  # no v2 extension (typev2 N)
    (52, z(3)), (55, z(5)), (60, z(20)),
    (80, z(4)),  # outgoing_subnet: unused for IPv6
    (84, be(0, 1)), (85, z(2)),
    (87, be(2, 1)),  # ipv6_prefixes_cnt
    (88, bytes.fromhex("20010db8000100000000000000000000")),  # 2001:db8:1::
    (104, be(64, 1)),  # /64
    (105, bytes.fromhex("fd001234567800000000000000000000")),  # fd00:1234:5678::
    (121, be(48, 1)),  # /48
    (122, SMCR),
)

# --- Accept v1, SMC-D (48 bytes) ------------------------------------------------------------
HAND_ACCEPT_V1: Final = layout(
    48,
    (0, SMCD), (4, be(2, 1)),  # SMC_CLC_ACCEPT
    (5, be(48, 2)),  # SMCD_CLC_ACCEPT_CONFIRM_LEN
    (7, be(0x19, 1)),  # version 1 << 4 | first contact 0b10 << 2 | typev1 1 (D)
    (8, be(0x1122334455667788, 8)),  # d0.gid
    (16, be(0x0102030405060708, 8)),  # d0.token
    (24, be(0, 1)),  # d0.dmbe_idx
    (25, be(0x10, 1)),  # d0.dmbe_size 1 (32 KiB) << 4 | reserved3 0
    (26, z(2)),  # d0.reserved4
    (28, bytes.fromhex("00000100")),  # d0.linkid (raw lgr->id)
    (32, z(12)),  # reserved in v1
    (44, SMCD),
)

# --- Confirm v1, SMC-D (48 bytes) -----------------------------------------------------------
HAND_CONFIRM_V1: Final = layout(
    48,
    (0, SMCD), (4, be(3, 1)),  # SMC_CLC_CONFIRM
    (5, be(48, 2)),
    (7, be(0x11, 1)),  # version 1, not first contact, typev1 D
    (8, be(0x8877665544332211, 8)), (16, be(0xA0A1A2A3A4A5A6A7, 8)),
    (24, be(0, 1)), (25, be(0x00, 1)),  # dmbe_size 0 (16 KiB)
    (26, z(2)), (28, bytes.fromhex("00000200")), (32, z(12)),
    (44, SMCD),
)

# --- Accept v2, first contact, 36-byte extension (SMC-D release 0): 78 + 36 = 114 ----------
HAND_ACCEPT_V2_FCE36: Final = layout(
    114,
    (0, SMCD), (4, be(2, 1)), (5, be(114, 2)),
    (7, be(0x29, 1)),  # version 2 << 4 | first contact << 2 | typev1 D
    (8, be(0x1122334455667788, 8)), (16, be(0x0102030405060708, 8)),
    (24, be(0, 1)),
    (25, be(0x60, 1)),  # dmbe_size 6 (1 MiB, the SMC-D cap)
    (26, z(2)), (28, bytes.fromhex("00000300")),
    (32, be(0x0123, 2)),  # d1.chid (native ISM)
    (34, eid("SMCD-UEID-ONE")),  # d1.eid
    (66, be(0, 8)),  # d1.gid_ext (native ISM: 0)
    (74, be(0x00, 1)),  # fce: v2_direct 0 << 7 | reserved 0
    (75, be(0x20, 1)),  # fce: os_type 2 (Linux) << 4 | release 0
    (76, z(2)),  # fce.reserved2
    (78, b"host-a".ljust(32, b" ")),  # fce.hostname
    (110, SMCD),
)

# --- Accept v2, first contact, 52-byte extension (release 1): 78 + 52 = 130 ----------------
HAND_ACCEPT_V2_FCE52: Final = layout(
    130,
    (0, SMCD), (4, be(2, 1)), (5, be(130, 2)),
    (7, be(0x29, 1)),
    (8, be(0x1122334455667788, 8)), (16, be(0x0102030405060708, 8)),
    (24, be(0, 1)), (25, be(0x20, 1)),  # dmbe_size 2 (64 KiB)
    (26, z(2)), (28, bytes.fromhex("00000300")),
    (32, be(0xFFFF, 2)),  # loopback-ism CHID
    (34, eid("SMCD-UEID-ONE")),
    (66, be(0x0F0E0D0C0B0A0908, 8)),  # d1.gid_ext (emulated ISM)
    (74, be(0x00, 1)), (75, be(0x21, 1)),  # os_type Linux, release 1
    (76, z(2)), (78, b"host-a".ljust(32, b" ")),
    (110, z(2)),  # fce_v2x reserved3 (SMC-D; max_conns/max_links for SMC-R)
    (112, be(1, 2)),  # fce_v2x.feature_mask
    (114, be(0, 4)),  # fce_v2x.vendor_exp_options
    (118, z(8)),  # fce_v2x.reserved4
    (126, SMCD),
)

# --- Confirm v2 without first contact (78 bytes) --------------------------------------------
HAND_CONFIRM_V2: Final = layout(
    78,
    (0, SMCD), (4, be(3, 1)), (5, be(78, 2)),  # SMCD_CLC_ACCEPT_CONFIRM_LEN_V2
    (7, be(0x21, 1)),  # version 2, no first contact, typev1 D
    (8, be(0x1122334455667788, 8)), (16, be(0x1112131415161718, 8)),
    (24, be(0, 1)), (25, be(0x30, 1)),  # dmbe_size 3 (128 KiB)
    (26, z(2)), (28, bytes.fromhex("00000300")),
    (32, be(0x0123, 2)), (34, eid("SMCD-UEID-ONE")), (66, be(0, 8)),
    (74, SMCD),
)

# --- Decline v1, out of sync (SMC_CLC_DECL_SYNCERR), SMC-R system id present ---------------
HAND_DECLINE_V1_SYNCERR: Final = layout(
    28,
    (0, SMCR), (4, be(4, 1)),  # SMC_CLC_DECLINE
    (5, be(28, 2)),  # sizeof(struct smc_clc_msg_decline)
    (7, be(0x18, 1)),  # version 1 << 4 | out-of-sync 0b10 << 2 | typev1 0
    (8, bytes.fromhex("0a0b0c0d0e0f1011")),  # id_for_peer
    (16, be(0x04000000, 4)),  # peer_diagnosis = SMC_CLC_DECL_SYNCERR
    (20, be(0x00, 1)),  # os_type 0 (v1) << 4 | reserved
    (21, z(3)),  # reserved2
    (24, SMCR),
)

# --- Decline v2, NOSMCDDEV (44 bytes) -------------------------------------------------------
HAND_DECLINE_V2: Final = layout(
    44,
    (0, SMCR), (4, be(4, 1)),
    (5, be(44, 2)),  # sizeof(struct smc_clc_msg_decline_v2)
    (7, be(0x20, 1)),  # version 2
    (8, z(8)),  # id_for_peer (zero for SMC-D)
    (16, be(0x03030001, 4)),  # SMC_CLC_DECL_NOSMCDDEV
    (20, be(0x20, 1)),  # os_type 2 (SMC_CLC_OS_LINUX)
    (21, z(3)),
    (24, be(0, 4)), (28, be(0, 4)), (32, be(0, 4)), (36, be(0, 4)),  # peer_diagnosis_v2[4]
    (40, SMCR),
)

#: every hand-built vector
HAND: Final = (
    HAND_PROPOSAL_V1, HAND_PROPOSAL_V1_SMCR_LEGACY, HAND_PROPOSAL_V2_UEIDS, HAND_PROPOSAL_V2_IPV6,
    HAND_ACCEPT_V1, HAND_CONFIRM_V1, HAND_ACCEPT_V2_FCE36, HAND_ACCEPT_V2_FCE52, HAND_CONFIRM_V2,
    HAND_DECLINE_V1_SYNCERR, HAND_DECLINE_V2,
)

#: all golden vectors (captured and hand-built): every one is a message Linux 6.12 accepts
ALL: Final = CAPTURED + HAND
