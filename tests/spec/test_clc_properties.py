"""Hypothesis properties of the CLC codec: exact round trips and the one-error contract."""

from __future__ import annotations

import struct

from clc_vectors import ALL
from hypothesis import example, given
from hypothesis import strategies as st

from smcd_check.spec.clc import (
    EYECATCHER_SMCD,
    EYECATCHER_SMCR,
    Accept,
    ClcError,
    ClcMessage,
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
    decode,
    decode_stream,
    dissect,
    encode,
)
from smcd_check.spec.decline import DeclineCode

u8 = st.integers(0, 0xFF)
u16 = st.integers(0, 0xFFFF)
u32 = st.integers(0, 0xFFFF_FFFF)
u64 = st.integers(0, 2**64 - 1)
eyecatchers = st.sampled_from([EYECATCHER_SMCR, EYECATCHER_SMCD])
smc_types = st.sampled_from(list(SmcType))
versions = st.sampled_from([1, 2, 2, 2, 3, 15])


def blob(n: int) -> st.SearchStrategy[bytes]:
    """n bytes, mostly zero (as Linux sends reserved bytes) but sometimes anything."""
    return st.one_of(st.just(bytes(n)), st.binary(min_size=n, max_size=n))


gidchids = st.builds(GidChid, gid=u64, chid=st.one_of(u16, st.just(0xFFFF)))


@st.composite
def declines(draw: st.DrawFn) -> Decline:
    version = draw(versions)
    return Decline(
        eyecatcher=draw(eyecatchers), version=version, typev2=draw(st.integers(0, 3)),
        typev1=draw(st.integers(0, 3)), id_for_peer=draw(blob(8)),
        peer_diagnosis=draw(st.one_of(st.sampled_from(list(DeclineCode)), u32)),
        os_type=draw(st.integers(0, 15)), reserved=draw(st.integers(0, 15)),
        reserved2=draw(blob(3)),
        peer_diagnosis_v2=draw(st.tuples(u32, u32, u32, u32)) if version > 1 else (0, 0, 0, 0),
        trailer=draw(st.binary(min_size=4, max_size=4)))


@st.composite
def accept_confirms(draw: st.DrawFn) -> Accept | Confirm:
    cls = draw(st.sampled_from([Accept, Confirm]))
    version = draw(versions)
    typev2 = draw(st.integers(0, 3))
    head = {"eyecatcher": draw(eyecatchers), "version": version, "typev2": typev2,
            "trailer": draw(eyecatchers)}
    if draw(st.integers(0, 9)) == 0:  # SMC-R: raw body
        size = 56 if version == 1 else draw(st.integers(96, 140))
        return cls(**head, typev1=SmcType.R, smcr_body=draw(st.binary(min_size=size,
                                                                      max_size=size)))
    d0 = {"gid": draw(u64), "token": draw(u64), "dmbe_idx": draw(u8),
          "dmbe_size": draw(st.integers(0, 15)), "reserved3": draw(st.integers(0, 15)),
          "reserved4": draw(blob(2)), "linkid": draw(blob(4))}
    if version == 1:
        return cls(**head, **d0, v1_reserved=draw(blob(12)))
    fce = None
    extra_max = 40
    if typev2 & 0b10:
        form = draw(st.sampled_from(["none", "36", "52"]))
        if form == "none":
            extra_max = 35
        else:
            x = None
            if form == "52":
                x = FirstContactExtV2x(max_conns=draw(u8), max_links=draw(u8),
                                       feature_mask=draw(u16), vendor_exp_options=draw(u32),
                                       reserved4=draw(blob(8)))
            else:
                extra_max = 15
            fce = FirstContactExt(v2_direct=draw(st.booleans()),
                                  reserved=draw(st.integers(0, 127)),
                                  os_type=draw(st.integers(0, 15)),
                                  release=draw(st.integers(0, 15)), reserved2=draw(blob(2)),
                                  hostname=draw(st.binary(min_size=32, max_size=32)), v2x=x)
    return cls(**head, **d0, chid=draw(u16), eid=draw(st.binary(min_size=32, max_size=32)),
               gid_ext=draw(u64), first_contact_ext=fce,
               extra=draw(st.binary(max_size=extra_max)))


@st.composite
def prefixes(draw: st.DrawFn) -> ProposalPrefix:
    return ProposalPrefix(
        outgoing_subnet=draw(blob(4)), prefix_len=draw(u8), reserved=draw(blob(2)),
        ipv6_prefixes=tuple(draw(st.lists(st.builds(Ipv6Prefix, prefix=blob(16), prefix_len=u8),
                                          max_size=8))))


@st.composite
def proposals(draw: st.DrawFn) -> Proposal:
    """Valid Proposals: v1 (any iparea_offset, bytes before the prefix kept as a gap) or v2
    laid out back to back as Linux does, with every reserved byte free."""
    version = draw(versions)
    typev2 = draw(smc_types)
    head = {"eyecatcher": draw(eyecatchers), "version": version, "typev2": typev2,
            "trailer": draw(eyecatchers), "id_for_peer": draw(blob(8)), "gid": draw(blob(16)),
            "mac": draw(blob(6))}

    def smcd_area(v2_ext_offset: int, gid_low_max: int = 0xFF) -> ProposalSmcd:
        gid = draw(u64)
        gid = (gid & ~0xFF) | min(gid & 0xFF, gid_low_max)
        return ProposalSmcd(ism=GidChid(gid=gid, chid=draw(u16)), v2_ext_offset=v2_ext_offset,
                            vendor_oui=draw(blob(3)), vendor_exp_options=draw(blob(5)),
                            reserved=draw(blob(20)))

    if version == 1:
        typev1 = draw(st.sampled_from([SmcType.R, SmcType.D, SmcType.B]))
        ipoff = draw(st.sampled_from([0, 40, 40, 17]))
        smcd = smcd_area(draw(u16)) if ipoff == 40 else None
        gaps = ((40, draw(st.binary(min_size=ipoff, max_size=ipoff))),) if 0 < ipoff < 40 else ()
        return Proposal(**head, typev1=typev1, iparea_offset=ipoff, smcd=smcd,
                        prefix=draw(prefixes()), gaps=gaps)
    typev1 = draw(smc_types)
    prefix = draw(prefixes()) if typev1 != SmcType.N else None
    prefix_size = prefix.size if prefix is not None else 0
    v2_ext = None
    if typev2 != SmcType.N:
        eids = tuple(draw(st.lists(st.binary(min_size=32, max_size=32), max_size=8)))
        smcd_v2 = None
        if typev2.smcd:
            entries = tuple(draw(st.lists(gidchids, max_size=8)))
            smcd_v2 = SmcdV2Ext(system_eid=draw(blob(32)), reserved=draw(blob(16)),
                                gidchids=entries)
            gid_cnt, sdoff = len(entries), 32 + 32 * len(eids)
        else:
            gid_cnt, sdoff = draw(u8), draw(u16)  # not read for SMC-R-only v2
        flag_rsvd = draw(st.integers(0, 7))
        v2_ext = ProposalV2Ext(
            ism_gid_cnt=gid_cnt, reserved1=draw(u8), release=draw(st.integers(0, 15)),
            flag_rsvd=flag_rsvd, seid=draw(st.booleans()), reserved2=draw(blob(2)),
            smcd_v2_ext_offset=sdoff, roce=draw(blob(16)), max_conns=draw(u8),
            max_links=draw(u8), feature_mask=draw(u16), reserved=draw(blob(12)), user_eids=eids,
            smcd_v2_ext=smcd_v2)
    v2off = 28 + prefix_size if v2_ext is not None else draw(u16)
    if typev1 == SmcType.N:
        # the kernel reads ipv6_prefixes_cnt at 40 + iparea_offset even without a v1 offer: with
        # iparea_offset 0 that is the low byte of ism.gid, which must stay <= 8
        smcd = smcd_area(v2off, gid_low_max=8)
        ipoff = 0
    else:
        smcd, ipoff = smcd_area(v2off), 40
    return Proposal(**head, typev1=typev1, iparea_offset=ipoff, smcd=smcd, prefix=prefix,
                    v2_ext=v2_ext)


messages = st.one_of(proposals(), accept_confirms(), declines())


@given(messages)
def test_decode_inverts_encode(msg: ClcMessage) -> None:
    """Every valid message encodes to bytes the kernel accepts, and those bytes decode back
    to the very same message (every field, reserved bytes included)."""
    wire = encode(msg)
    assert len(wire) == msg.length
    assert decode(wire) == msg


@given(st.lists(messages, min_size=1, max_size=3))
def test_stream_of_messages_decodes_in_turn(msgs: list[ClcMessage]) -> None:
    """Concatenated encodings (a TCP payload) decode to the same messages in the same order."""
    assert decode_stream(b"".join(encode(m) for m in msgs)) == msgs


@given(messages)
def test_dissect_accounts_for_every_byte(msg: ClcMessage) -> None:
    """The dissection of any valid message lists fields in wire order whose raw bytes are the
    message's own, covering every byte (a dissector that skips bytes hides data)."""
    wire = encode(msg)
    seen = bytearray(len(wire))
    last = 0
    for f in dissect(wire):
        assert f.offset >= last and f.raw == wire[f.offset: f.offset + f.size]
        last = f.offset
        seen[f.offset: f.offset + f.size] = b"\x01" * f.size
    assert all(seen)


def _decode_or_clc_error(data: bytes) -> None:
    try:
        msg = decode(data)
    except ClcError:
        return
    assert encode(msg) == data  # whatever decodes must re-encode exactly


@given(st.binary(max_size=700))
def test_arbitrary_bytes_decode_or_raise_clc_error(data: bytes) -> None:
    """Any byte string either decodes (and then re-encodes to itself) or raises ClcError;
    no other exception escapes."""
    _decode_or_clc_error(data)


@given(eyecatchers, st.integers(0, 6), st.integers(0, 255), st.binary(max_size=660))
def test_plausible_headers_with_random_bodies(eyecatcher: bytes, ctype: int, flags: int,
                                              body: bytes) -> None:
    """With a valid eyecatcher and a consistent length (so the checks get past the header),
    random contents still only decode or raise ClcError."""
    length = 8 + len(body)
    _decode_or_clc_error(eyecatcher + bytes([ctype]) + struct.pack(">H", length)
                         + bytes([flags]) + body)


mutations = st.one_of(
    st.tuples(st.just("set"), st.integers(0, 700), u8),
    st.tuples(st.just("truncate"), st.integers(0, 700), st.just(0)),
    st.tuples(st.just("extend"), st.integers(1, 64), u8),
    st.tuples(st.just("length"), st.integers(0, 0xFFFF), st.just(0)),
    st.tuples(st.just("offset16"), st.sampled_from([38, 50, 86, 94]), u16),
)


def _mutate(data: bytes, ops: list[tuple[str, int, int]]) -> bytes:
    out = bytearray(data)
    for kind, a, b in ops:
        if kind == "set" and out:
            out[a % len(out)] = b
        elif kind == "truncate":
            del out[a % (len(out) + 1):]
        elif kind == "extend":
            out += bytes([b]) * a
        elif kind == "length" and len(out) >= 7:
            out[5:7] = struct.pack(">H", a)
        elif kind == "offset16" and len(out) >= a + 2:
            out[a: a + 2] = struct.pack(">H", b)
    return bytes(out)


@given(st.sampled_from(ALL), st.lists(mutations, min_size=1, max_size=4))
@example(ALL[0], [("offset16", 86, 0)])  # Proposal whose SMC-Dv2 pointer is 0: gap, NOV2DEXT
@example(ALL[0], [("offset16", 50, 172)])  # v2 extension pointer past the message
def test_mutated_golden_vectors_decode_or_raise_clc_error(vector: bytes,
                                                          ops: list[tuple[str, int, int]]) -> None:
    """Real messages with bytes flipped, cut, extended or length/offset fields changed either
    decode (and re-encode byte-exact) or raise ClcError, nothing else."""
    _decode_or_clc_error(_mutate(vector, ops))
