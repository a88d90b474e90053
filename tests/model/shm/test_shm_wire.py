"""The shared-memory implementation's own wire formats agree with the spec's (tests may import
both): the CDC header it writes into a DMB, and the CLC messages of its handshake."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from smcd_check.conformance.catalogue.clc import proposal_v2
from smcd_check.model.shm import clc as shm_clc
from smcd_check.model.shm.layout import CursorWord, pack_cdc, unpack_cdc
from smcd_check.spec import cdc as spec_cdc
from smcd_check.spec import clc as spec_clc

u16 = st.integers(0, 0xFFFF)
u32 = st.integers(0, 0xFFFF_FFFF)
u8 = st.integers(0, 0xFF)


@given(u16, u32, u16, u32, st.sampled_from([0, 0x80, 0x10]), st.sampled_from([0, 0x80, 0x40,
                                                                              0x20, 0xE0]))
def test_cdc_header_decodes_with_the_spec(pw: int, pc: int, cw: int, cc: int, pf: int,
                                          cf: int) -> None:
    """Any header this implementation writes (type byte, then the two cursor words, flags in
    the cons word's spare bytes) is the 32-byte struct smcd_cdc_msg the spec decodes to the
    same cursors and flags, and decodes back here unchanged."""
    raw = pack_cdc(CursorWord(pw, pc), CursorWord(cw, cc, pf, cf))
    msg = spec_cdc.decode_smcd_cdc(raw)
    assert (msg.prod.wrap, msg.prod.count, msg.cons.wrap, msg.cons.count) == (pw, pc, cw, cc)
    assert msg.prod_flags.to_byte() == pf
    assert msg.conn_state_flags.to_byte() == cf
    assert unpack_cdc(raw) == (0xFE, CursorWord(pw, pc), CursorWord(cw, cc, pf, cf))


@given(u16, u32, u8, u8)
def test_cursor_word_round_trips(wrap: int, count: int, pf: int, cf: int) -> None:
    """A cursor word (one aligned 8-byte store) carries wrap, count and both spare bytes."""
    w = CursorWord(wrap, count, pf, cf)
    assert CursorWord.from_word(w.to_word()) == w


GID, GID_EXT = 0x1122334455667788, 0x99AABBCCDDEEFF00
UEID = shm_clc.ueid_bytes("SMCD-CHECK-UEID")


def test_proposal_is_linux_loopback_proposal() -> None:
    """The Proposal (v2, SMC-D only, one UEID, gid and gid_ext with CHID 0xFFFF) is valid for
    the spec and names the same UEID and GID/CHID entries; it decodes back here."""
    raw = shm_clc.Proposal(ueids=(UEID,), gidchids=((GID, 0xFFFF), (GID_EXT, 0xFFFF))).encode()
    msg = spec_clc.decode(raw)
    assert isinstance(msg, spec_clc.Proposal)
    assert len(raw) == 224
    assert raw == proposal_v2()  # the catalogue's hand-packed Linux 6.12 Proposal, byte for byte
    assert msg.v2_ext is not None and msg.v2_ext.smcd_v2_ext is not None
    assert [(g.gid, g.chid) for g in msg.v2_ext.smcd_v2_ext.gidchids] == [(GID, 0xFFFF),
                                                                          (GID_EXT, 0xFFFF)]
    back = shm_clc.decode(raw)
    assert isinstance(back, shm_clc.Proposal) and back.ueids == (UEID,)


def test_accept_and_confirm_agree_with_the_spec() -> None:
    """First-contact Accept (130 bytes) and a reuse Confirm (78 bytes): the spec decodes the
    same GID, token, DMB size, link id, CHID and GID extension."""
    for ctype, first, length in ((shm_clc.ACCEPT, True, 130), (shm_clc.CONFIRM, False, 78)):
        m = shm_clc.AcceptConfirm(type=ctype, first_contact=first, gid=GID, token=0xABCDEF,
                                  dmbe_idx=0, dmbe_size=2, linkid=b"\x00\x01\x00\x00",
                                  chid=0xFFFF, eid=UEID, gid_ext=GID_EXT)
        raw = m.encode()
        assert len(raw) == length
        got = spec_clc.decode(raw)
        assert isinstance(got, spec_clc.Accept if ctype == shm_clc.ACCEPT else spec_clc.Confirm)
        assert (got.gid, got.token, got.dmbe_size, got.chid, got.gid_ext, got.first_contact) == \
            (GID, 0xABCDEF, 2, 0xFFFF, GID_EXT, first)
        assert shm_clc.decode(raw) == m if first else shm_clc.decode(raw).token == 0xABCDEF


def test_decline_agrees_with_the_spec() -> None:
    """A v2 Decline carries the reason as peer_diagnosis and the out-of-sync bit for SYNCERR."""
    raw = shm_clc.Decline(peer_diagnosis=shm_clc.SMC_CLC_DECL_SYNCERR, out_of_sync=True).encode()
    got = spec_clc.decode(raw)
    assert isinstance(got, spec_clc.Decline)
    assert got.peer_diagnosis == shm_clc.SMC_CLC_DECL_SYNCERR and got.out_of_sync


def test_malformed_messages_name_the_field() -> None:
    """Bad input is a ClcError naming the field, never another exception."""
    good = shm_clc.Proposal(ueids=(UEID,), gidchids=((GID, 0xFFFF),)).encode()
    for raw, field in ((good[:5], "hdr"), (b"XXXX" + good[4:], "hdr.eyecatcher"),
                       (good[:-4] + b"XXXX", "trl.eyecatcher"), (good + b"\0", "hdr.length")):
        try:
            shm_clc.decode(raw)
        except shm_clc.ClcError as exc:
            assert exc.field == field
        else:  # pragma: no cover
            raise AssertionError(f"{field}: accepted")
