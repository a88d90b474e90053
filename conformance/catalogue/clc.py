"""Catalogue area ``clc``: what a CLC receiver accepts and rejects (capability ``clc``).

Every input here is built byte by byte from the kernel's struct layouts (net/smc/smc_clc.h) by
the small packers below, never by the spec's encoder, so the vectors are independent of the code
under test. Each case decodes one message: the spec says what the fields are (or that it is
invalid: -EPROTO), and every case pins the accept/reject verdict the kernel gives, with the check
that decides it (net/smc/smc_clc.c ``smc_clc_msg_hdr_valid``, ``smc_clc_msg_prop_valid``,
``smc_clc_msg_acc_conf_valid``, ``smc_clc_msg_decl_valid``; digest clc.md sections 3-5, 8).
"""

from __future__ import annotations

import struct

from smcd_check.conformance.runner.run import Area, Case, Pin, step

SMCR = b"\xe2\xd4\xc3\xd9"  # "SMCR" in EBCDIC
SMCD = b"\xe2\xd4\xc3\xc4"  # "SMCD" in EBCDIC
TYPE_R, TYPE_D, TYPE_N, TYPE_B = 0, 1, 2, 3
LO_GID, LO_GID_EXT = 0x1122334455667788, 0x99AABBCCDDEEFF00
UEID = b"SMCD-CHECK-UEID".ljust(32, b" ")
SRC = "net/smc/smc_clc.c"


def hdr(eye: bytes, ctype: int, length: int, version: int, typev2: int, typev1: int) -> bytes:
    """``struct smc_clc_msg_hdr``: eyecatcher, type, be16 length, version:4 typev2:2 typev1:2."""
    return eye + struct.pack(">BHB", ctype, length, version << 4 | typev2 << 2 | typev1)


def proposal_v2(*, eid_cnt: int = 1, gids: tuple[tuple[int, int], ...] | None = None,
                ism_gid_cnt: int | None = None, v2_ext_offset: int = 28,
                smcd_v2_ext_offset: int | None = None, ism_gid: int = 0,
                length_delta: int = 0, trailer: bytes = SMCR, eye: bytes = SMCR,
                version: int = 2, ctype: int = 1, release: int = 1, v2_pad: int = 0,
                d2_pad: int = 0) -> bytes:
    """A v2 SMC-D-only Proposal as Linux sends it for loopback-ism (typev1 N, typev2 D).

    ``v2_pad`` zero bytes sit before the v2 extension and ``d2_pad`` before the SMC-Dv2
    extension, with both offsets moved to match (the length counts them): a message whose
    offsets point exactly where its parts are, at any offset value.
    """
    if gids is None:
        gids = ((LO_GID, 0xFFFF), (LO_GID_EXT, 0xFFFF))
    cnt = len(gids) if ism_gid_cnt is None else ism_gid_cnt
    d2off = (32 + 32 * eid_cnt + d2_pad if smcd_v2_ext_offset is None
             else smcd_v2_ext_offset)
    base = bytes(8 + 16 + 6) + struct.pack(">H", 0)  # lcl.id_for_peer, gid, mac, iparea_offset
    smcd = struct.pack(">QHH", ism_gid, 0, v2_ext_offset + v2_pad) + bytes(3 + 5 + 20)
    v2 = bytes(v2_pad) + struct.pack(">BBBB", eid_cnt, cnt, 0, release << 4) + bytes(2)
    v2 += struct.pack(">H", d2off) + bytes(16) + bytes([0, 0]) + struct.pack(">H", 1) + bytes(12)
    v2 += UEID * eid_cnt + bytes(d2_pad)
    d2 = bytes(32 + 16) + b"".join(struct.pack(">QH", g, c) for g, c in gids)
    body = base + smcd + v2 + d2
    length = 8 + len(body) + 4 + length_delta
    msg = hdr(eye, ctype, length, version, TYPE_D, TYPE_N) + body
    if length_delta > 0:
        msg += bytes(length_delta)
    elif length_delta < 0:
        msg = msg[:length_delta]
    return msg + trailer


def proposal_v1(*, iparea_offset: int = 40, prefixes: int = 0, pad: int = 0,
                version: int = 2) -> bytes:
    """A v1 SMC-D Proposal (typev1 D, typev2 N, header version 2 as Linux sends it).

    ``pad`` zero bytes sit between the SMC-D area and the prefix area, so that a larger
    ``iparea_offset`` still points at the prefix. Only a version 1 header makes the length
    consistent with that: ``smc_clc_msg_prop_valid`` counts ``iparea_offset`` in a v1
    Proposal's length (40 + iparea_offset + prefix area + 4) but not in a v2 one's (40 + 40 +
    prefix area + ... + 4), where the pad makes the length wrong as well.
    """
    base = bytes(8 + 16 + 6) + struct.pack(">H", iparea_offset)
    smcd = struct.pack(">QHH", 0x0102030405060708, 0x0001, 0) + bytes(28)
    prefix = bytes(pad) + bytes(4) + bytes([24, 0, 0, prefixes]) + bytes(17) * prefixes
    body = base + smcd + prefix
    return hdr(SMCR, 1, 8 + len(body) + 4, version, TYPE_N, TYPE_D) + body + SMCR


def proposal_v2_ext_past_end() -> bytes:
    """A v2 Proposal whose v2_ext_offset (173) points past the message into the zeroed buffer.

    The counts read there are 0, and the length (172) is exactly what zero counts announce, so
    only the offset bound (``smc_get_clc_v2_ext``: <= 172) rejects it.
    """
    base = bytes(8 + 16 + 6) + struct.pack(">H", 0)
    smcd = struct.pack(">QHH", 0, 0, 173) + bytes(28)
    body = base + smcd + bytes(40 + 48)
    return hdr(SMCR, 1, 8 + len(body) + 4, 2, TYPE_D, TYPE_N) + body + SMCR


def accept_confirm(*, ctype: int = 2, version: int = 2, first_contact: bool = True,
                   fce_len: int = 52, typev1: int = TYPE_D, dmbe_size: int = 0,
                   length: int | None = None, token: int = 0xAABBCCDD00112233) -> bytes:
    """An SMC-D Accept/Confirm (``struct smc_clc_msg_accept_confirm``)."""
    body = struct.pack(">QQBB", LO_GID, token, 0, dmbe_size << 4) + bytes(2) + b"\x00\x00\x01\x00"
    if version == 1:
        body += bytes(12)
        fc = 0
    else:
        body += struct.pack(">H", 0xFFFF) + UEID + struct.pack(">Q", LO_GID_EXT)
        fc = 2 if first_contact else 0
        if first_contact:
            fce = bytes([0, 2 << 4 | 1, 0, 0]) + b"host".ljust(32, b" ")
            body += (fce + bytes(16))[:fce_len]
    real = 8 + len(body) + 4
    msg_len = real if length is None else length
    msg = hdr(SMCD, ctype, msg_len, version, fc, typev1) + body
    if msg_len > real:
        msg += bytes(msg_len - real)
    elif msg_len < real:
        msg = msg[: msg_len - 4]
    return msg + SMCD


def decline(*, version: int = 2, code: int = 0x03030008, out_of_sync: bool = False,
            length: int | None = None, trailer: bytes = SMCR, typev1: int = 0) -> bytes:
    """A Decline (28 bytes v1, 44 bytes v2)."""
    body = bytes(8) + struct.pack(">I", code) + bytes([(2 if version >= 2 else 0) << 4]) + bytes(3)
    if version >= 2:
        body += bytes(16)
    real = 8 + len(body) + 4
    msg_len = real if length is None else length
    msg = hdr(SMCR, 4, msg_len, version, 2 if out_of_sync else 0, typev1) + body
    if msg_len > real:
        msg += bytes(msg_len - real)
    return msg + trailer


def _v2_ext_offset(offset: int) -> bytes:
    """:func:`proposal_v2_ext_past_end` with ``v2_ext_offset`` = ``offset``."""
    raw = bytearray(proposal_v2_ext_past_end())
    raw[50:52] = struct.pack(">H", offset)
    return bytes(raw)


#: the comparable fields of :func:`accept_confirm` (dmbe_size set per case)
_ACCEPT_FIELDS: dict[str, object] = {
    "first_contact": True, "gid": LO_GID, "token": 0xAABBCCDD00112233, "dmbe_idx": 0,
    "linkid": "00000100", "chid": 0xFFFF, "gid_ext": LO_GID_EXT, "eid": UEID.hex(),
}


def _case(cid: str, title: str, description: str, data: bytes, *, valid: bool, rule: str,
          value: tuple[tuple[str, object], ...] = ()) -> Case:
    source = f"{SRC} {rule}"
    return Case(
        id=f"clc.{cid}",
        area=Area.CLC,
        title=title,
        description=description,
        source=source,
        steps=(step("clc_decode", data=data.hex(), strict=True),),
        pins=(Pin(index=0, error=None if valid else "EPROTO", value=value, source=source),),
        rules=(rule,),
    )


_P = "smc_clc_msg_prop_valid"
_H = "smc_clc_msg_hdr_valid"
_A = "smc_clc_msg_acc_conf_valid"
_D = "smc_clc_msg_decl_valid"

CASES: tuple[Case, ...] = (
    # ------------------------------------------------------------------ header / framing
    _case("header.truncated", "fewer than 8 bytes is not a CLC message",
          "smc_clc_wait_msg needs the whole 8-byte header.", proposal_v2()[:7], valid=False,
          rule="smc_clc_wait_msg"),
    _case("header.bad-eyecatcher", "an unknown eyecatcher is rejected",
          "The header eyecatcher must be SMCR or SMCD.", proposal_v2(eye=b"ABCD"), valid=False,
          rule=_H),
    _case("header.version-zero", "version 0 is rejected", "smc_clc_wait_msg: version < 1.",
          proposal_v2(version=0), valid=False, rule="smc_clc_wait_msg"),
    _case("header.unknown-type", "message type 5 is rejected",
          "Only Proposal, Accept, Confirm and Decline exist.", proposal_v2(ctype=5),
          valid=False, rule=_H),
    _case("header.bad-trailer", "a Proposal with a bad trailer is rejected",
          "The trailer must be an SMCR or SMCD eyecatcher (except for a Decline).",
          proposal_v2(trailer=b"XXXX"), valid=False, rule=_H),
    _case("header.smcd-trailer-ok", "header and trailer eyecatchers need not match",
          "Either eyecatcher is accepted in either place.", proposal_v2(trailer=SMCD),
          valid=True, rule=_H),
    # ------------------------------------------------------------------ Proposal
    _case("proposal.loopback-v2", "Linux's loopback-ism v2 Proposal is valid",
          "typev1 N, typev2 D, one UEID, two GID/CHID entries (gid, gid_ext) with CHID 0xFFFF.",
          proposal_v2(), valid=True, rule=_P, value=(("type", 1), ("length", 224))),
    _case("proposal.length-too-long", "a Proposal whose length exceeds its parts is rejected",
          "The v2 length must equal the sum of the parts.", proposal_v2(length_delta=1),
          valid=False, rule=_P),
    _case("proposal.length-too-short", "a Proposal shorter than its parts is rejected",
          "The v2 length must equal the sum of the parts.", proposal_v2(length_delta=-1),
          valid=False, rule=_P),
    _case("proposal.eid-cnt-over-max", "eid_cnt 9 (> SMC_CLC_MAX_UEID 8) is rejected",
          "Kernel fix 'net/smc: check v2_ext_offset/eid_cnt/ism_gid_cnt when receiving proposal "
          "msg' (7863c9f3d24b, v6.13).", proposal_v2(eid_cnt=9), valid=False, rule=_P),
    _case("proposal.eid-cnt-max", "eid_cnt 8 is still accepted",
          "The bound is inclusive.", proposal_v2(eid_cnt=8), valid=True, rule=_P),
    _case("proposal.ism-gid-cnt-over-max", "ism_gid_cnt 9 (> 8 entries) is rejected",
          "Same kernel fix (7863c9f3d24b).",
          proposal_v2(gids=tuple((LO_GID + i, 0xFFFF) for i in range(9))), valid=False,
          rule=_P),
    _case("proposal.v2-ext-offset-zero", "typev2 D without a v2 extension is rejected",
          "v2_ext_offset 0 means no v2 extension; required when typev2 != N (7863c9f3d24b).",
          proposal_v2(v2_ext_offset=0), valid=False, rule=_P),
    _case("proposal.v2-ext-offset-over-max", "v2_ext_offset past the proposal area is rejected",
          "smc_get_clc_v2_ext: v2_ext_offset > 172 gives no extension (7863c9f3d24b).",
          proposal_v2(v2_ext_offset=173), valid=False, rule=_P),
    _case("proposal.v2-ext-offset-past-message", "a v2 extension pointer past the message is "
          "rejected even when the length agrees", "v2_ext_offset 173 points into the zeroed "
          "receive buffer; counts read as 0 make the length consistent, only the offset bound "
          "(7863c9f3d24b) rejects it.", proposal_v2_ext_past_end(), valid=False, rule=_P),
    _case("proposal.prefix-cnt-in-gid", "v2-only: the last GID byte is read as ipv6_prefixes_cnt",
          "With iparea_offset 0 the prefix header is read at byte 40, inside the SMC-D area: a "
          "v1 GID whose low byte is > 8 makes the proposal invalid (a29e220d3c8e).",
          proposal_v2(ism_gid=0x09), valid=False, rule=_P),
    _case("proposal.v1-valid", "a v1 SMC-D Proposal with iparea_offset 40 is valid",
          "typev1 D, prefix area after the SMC-D area.", proposal_v1(), valid=True, rule=_P),
    _case("proposal.v1-iparea-offset-over-max", "iparea_offset > 40 is rejected",
          "smc_clc_proposal_get_prefix returns NULL (check iparea_offset, a29e220d3c8e).",
          proposal_v1(iparea_offset=44), valid=False, rule=_P),
    _case("proposal.v1-iparea-offset-consistent", "iparea_offset 44 is rejected even when the "
          "length agrees (v1 header)", "A version 1 header: the prefix area sits 4 bytes later "
          "and the v1 length (40 + iparea_offset + prefix area + 4) counts them; only the "
          "iparea_offset bound (a29e220d3c8e) rejects it.",
          proposal_v1(iparea_offset=44, pad=4, version=1), valid=False, rule=_P),
    _case("proposal.v1-prefix-cnt-over-max", "ipv6_prefixes_cnt 9 (> 8) is rejected",
          "SMC_CLC_MAX_V6_PREFIX is 8 (a29e220d3c8e).", proposal_v1(prefixes=9), valid=False,
          rule=_P),
    # ------------------------------------------------------------------ Accept / Confirm
    _case("accept.v2-first-contact", "a v2 first-contact Accept (130 bytes) is valid",
          "SMC-D v2 with the 52-byte first-contact extension (release 1).",
          accept_confirm(), valid=True, rule=_A, value=(("length", 130),)),
    _case("accept.v2-no-first-contact", "a v2 Accept without first contact (78 bytes)",
          "Reusing a link group: no first-contact extension.",
          accept_confirm(first_contact=False), valid=True, rule=_A, value=(("length", 78),)),
    _case("accept.v2-too-short", "a v2 Accept shorter than 78 bytes is rejected",
          "v2+: length >= 78 for SMC-D.", accept_confirm(first_contact=False, length=77),
          valid=False, rule=_A),
    _case("accept.v1-valid", "a v1 SMC-D Accept is exactly 48 bytes", "v1 length 48.",
          accept_confirm(version=1), valid=True, rule=_A, value=(("length", 48),)),
    _case("accept.v1-wrong-length", "a v1 SMC-D Accept of 52 bytes is rejected",
          "v1: length must be exactly 48 (D) or 68 (R).", accept_confirm(version=1, length=52),
          valid=False, rule=_A),
    _case("accept.typev1-n", "an Accept with typev1 N is rejected", "typev1 must be R or D.",
          accept_confirm(typev1=TYPE_N), valid=False, rule=_A),
    _case("accept.dmbe-size-unchecked", "dmbe_size 15 is accepted by the receiver",
          "No check of d0.dmbe_size against SMCD_DMBE_SIZES (smcd_conn_save_peer_info).",
          accept_confirm(dmbe_size=15), valid=True, rule=_A),
    _case("confirm.v2-first-contact", "a v2 first-contact Confirm is valid",
          "Same layout as the Accept.", accept_confirm(ctype=3), valid=True, rule=_A),
    _case("confirm.v2-too-short", "a v2 Confirm of 70 bytes is rejected", "length >= 78.",
          accept_confirm(ctype=3, first_contact=False, length=70), valid=False, rule=_A),
    # ------------------------------------------------------------------ Decline
    _case("decline.v2-valid", "a 44-byte v2 Decline is valid", "SMC_CLC_DECL_NOUEID.",
          decline(), valid=True, rule=_D, value=(("length", 44),)),
    _case("decline.v1-valid", "a 28-byte v1 Decline is valid", "v1 layout.", decline(version=1),
          valid=True, rule=_D),
    _case("decline.wrong-length", "a v2 Decline of 48 bytes is rejected",
          "Length must be exactly 28 (v1) or 44 (v2).", decline(length=48), valid=False, rule=_D),
    _case("decline.trailer-unchecked", "a Decline's trailer is not checked",
          "smc_clc_msg_hdr_valid skips the trailer check for a Decline.",
          decline(trailer=b"\x00\x00\x00\x00"), valid=True, rule=_D),
    _case("decline.typev1-unchecked", "a Decline's typev1 is not checked (since 6.12.46)",
          "The typev1 check was removed in Sep 2025 (6.12 stable since 6.12.46).",
          decline(typev1=TYPE_N), valid=True, rule=_D),
    _case("decline.out-of-sync", "a SYNCERR Decline carries the out-of-sync bit",
          "typev2 bit 1 on a Decline means out of sync.",
          decline(code=0x04000000, out_of_sync=True), valid=True, rule=_D),
    # ------------------------------------------------------------------ boundaries
    _case("proposal.eid-cnt-zero", "eid_cnt 0 is a valid message (the server declines later)",
          "The lower bound: no UEID. Validity is the codec's; NOUEID is smc_listen_v2_check's.",
          proposal_v2(eid_cnt=0), valid=True, rule=_P, value=(("length", 192),)),
    _case("proposal.ism-gid-cnt-zero", "ism_gid_cnt 0 is valid", "No GID/CHID entry.",
          proposal_v2(gids=()), valid=True, rule=_P, value=(("length", 204),)),
    _case("proposal.ism-gid-cnt-max", "ism_gid_cnt 8 (SMCD_CLC_MAX_V2_GID_ENTRIES) is valid",
          "The inclusive bound of 7863c9f3d24b.",
          proposal_v2(gids=tuple((LO_GID + i, 0xFFFF) for i in range(8))), valid=True, rule=_P,
          value=(("length", 284),)),
    _case("proposal.v1-prefix-cnt-max", "ipv6_prefixes_cnt 8 (SMC_CLC_MAX_V6_PREFIX) is valid",
          "The inclusive bound of a29e220d3c8e.", proposal_v1(prefixes=8), valid=True,
          rule=_P, value=(("length", 228),)),
    _case("proposal.v1-iparea-offset-41", "iparea_offset 41, one past the SMC-D area, is "
          "rejected even when the length agrees (v1 header)", "A version 1 header: the prefix "
          "area one byte later and counted in the v1 length: only the iparea_offset bound "
          "(<= 40, a29e220d3c8e) rejects it.",
          proposal_v1(iparea_offset=41, pad=1, version=1), valid=False, rule=_P),
    _case("proposal.v2-ext-offset-172", "v2_ext_offset 172, the largest accepted, is valid "
          "even past the message", "The extension is read from the zeroed receive buffer at "
          "224: zero counts agree with the 172-byte length. Just inside the bound that "
          "proposal.v2-ext-offset-past-message (173) is just outside of.",
          _v2_ext_offset(172), valid=True, rule=_P, value=(("length", 172),)),
    *(_case(f"accept.dmbe-size-{k}", f"Accept dmbe_size {k} ({'a' if k <= 6 else 'no'} "
            f"SMC-D size) is accepted as sent",
            f"d0.dmbe_size is a 4-bit compressed size, 16 KiB << {k}; SMCD_DMBE_SIZES is 6, "
            "but the receiver does not check it (smcd_conn_save_peer_info uncompresses any "
            "value).", accept_confirm(dmbe_size=k), valid=True, rule=_A,
            value=(("fields", {**_ACCEPT_FIELDS, "dmbe_size": k}),))
      for k in range(16)),
)
