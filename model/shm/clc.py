"""A small CLC codec of its own: the messages an SMC-D v2 loopback-ism handshake uses.

Why not the project's codec (``smcd_check.spec.clc``)? ``model/`` must not import spec logic
(``tests/test_layering.py``): an implementation checked against the spec is only a check if it
was not derived from it. So this module encodes and decodes, from the kernel's struct layouts
(net/smc/smc_clc.h, 6.12.118), exactly what this implementation sends and expects: the v2
SMC-D-only Proposal Linux sends for loopback-ism (UEID, two GID/CHID entries: ``gid`` and
``gid_ext`` with CHID 0xFFFF), the v2 SMC-D Accept/Confirm (first contact: 130 bytes, else 78)
and the v2 Decline (44 bytes). ``tests/model/shm/test_shm_clc.py`` checks both directions
against the spec's codec: every message encoded here decodes there to the same fields, and
the spec's encodings of Linux's messages decode here. Receive-side checks follow
``smc_clc_msg_hdr_valid`` and the per-type checks for these messages; anything else is
:class:`ClcError` naming the field.
"""

from __future__ import annotations

import socket
import struct
from dataclasses import dataclass

SMCR_EYE = b"\xe2\xd4\xc3\xd9"  # "SMCR" in EBCDIC
SMCD_EYE = b"\xe2\xd4\xc3\xc4"  # "SMCD"
PROPOSAL, ACCEPT, CONFIRM, DECLINE = 1, 2, 3, 4
TYPE_R, TYPE_D, TYPE_N, TYPE_B = 0, 1, 2, 3
SMC_V2 = 2
SMC_RELEASE = 1
SMC_CLC_OS_LINUX = 2
SMC_FIRST_CONTACT = 0b10
SMC_SPF_EMULATED_ISM_DEV = 1
SMC_CLC_MAX_UEID = 8
SMCD_CLC_MAX_V2_GID_ENTRIES = 8
SMCD_ACCEPT_CONFIRM_LEN_V2 = 78
FIRST_CONTACT_EXT_V2X = 52
DECLINE_LEN_V2 = 44
#: reason codes this implementation sends (net/smc/smc_clc.h)
SMC_CLC_DECL_MEM = 0x01010000
SMC_CLC_DECL_PEERNOSMC = 0x03010000
SMC_CLC_DECL_NOSMCDDEV = 0x03030001
SMC_CLC_DECL_NOSMCD2DEV = 0x03030007
SMC_CLC_DECL_NOUEID = 0x03030008
SMC_CLC_DECL_MODEUNSUPP = 0x03040000
SMC_CLC_DECL_MAX_DMB = 0x030D0000
SMC_CLC_DECL_SYNCERR = 0x04000000
SMC_CLC_DECL_PEERDECL = 0x05000000
SMC_CLC_DECL_INTERR = 0x09990000
#: 6 s, ``CLC_WAIT_TIME``
CLC_WAIT_TIME = 6.0

_HDR = struct.Struct(">4sBHB")


class ClcError(ValueError):
    """A received message this implementation rejects (the kernel's -EPROTO)."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field


def ueid_bytes(ueid: str) -> bytes:
    """A UEID as the kernel keeps it: ASCII, blank-padded to 32 bytes."""
    raw = ueid.encode("ascii")
    if not raw or len(raw) > 32:
        raise ValueError(f"UEID {ueid!r}: expected 1..32 ASCII characters")
    return raw.ljust(32, b" ")


def _hdr(eye: bytes, ctype: int, length: int, version: int, typev2: int, typev1: int) -> bytes:
    return _HDR.pack(eye, ctype, length, (version << 4) | (typev2 << 2) | typev1)


def compress_bufsize(size: int) -> int:
    """``smc_compress_bufsize`` for an SMC-D DMB (0 = 16 KiB ... 6 = 1 MiB)."""
    if size <= 16384:
        return 0
    return min(((size - 1) >> 14).bit_length(), 6)


def uncompress_bufsize(comp: int) -> int:
    """``smc_uncompress_bufsize``."""
    return 1 << (comp + 14)


@dataclass(frozen=True, slots=True, kw_only=True)
class Proposal:
    """A v2 SMC-D-only Proposal: the UEIDs and the (gid, chid) entries offered."""

    ueids: tuple[bytes, ...]
    gidchids: tuple[tuple[int, int], ...]
    release: int = SMC_RELEASE

    def encode(self) -> bytes:
        eid_cnt, gid_cnt = len(self.ueids), len(self.gidchids)
        base = bytes(8 + 16 + 6) + struct.pack(">H", 0)
        smcd = struct.pack(">QHH", 0, 0, 28) + bytes(28)
        v2 = struct.pack(">BBBB", eid_cnt, gid_cnt, 0, self.release << 4) + bytes(2)
        v2 += struct.pack(">H", 32 + 32 * eid_cnt) + bytes(16 + 2)
        v2 += struct.pack(">H", SMC_SPF_EMULATED_ISM_DEV) + bytes(12)
        v2 += b"".join(self.ueids)
        d2 = bytes(48) + b"".join(struct.pack(">QH", g, c) for g, c in self.gidchids)
        body = base + smcd + v2 + d2
        length = 8 + len(body) + 4
        return _hdr(SMCR_EYE, PROPOSAL, length, SMC_V2, TYPE_D, TYPE_N) + body + SMCR_EYE


@dataclass(frozen=True, slots=True, kw_only=True)
class AcceptConfirm:
    """A v2 SMC-D Accept (type 2) or Confirm (type 3)."""

    type: int
    first_contact: bool
    gid: int
    token: int
    dmbe_idx: int
    dmbe_size: int  #: compressed
    linkid: bytes
    chid: int
    eid: bytes
    gid_ext: int
    hostname: bytes = b"smcd-check".ljust(32, b" ")
    release: int = SMC_RELEASE

    def encode(self) -> bytes:
        body = struct.pack(">QQBB2x4s", self.gid, self.token, self.dmbe_idx,
                           (self.dmbe_size & 0xF) << 4, self.linkid)
        body += struct.pack(">H32sQ", self.chid, self.eid, self.gid_ext)
        if self.first_contact:
            body += struct.pack(">BB2x32s2xHI8x", 0, (SMC_CLC_OS_LINUX << 4) | self.release,
                                self.hostname, SMC_SPF_EMULATED_ISM_DEV, 0)
        length = 8 + len(body) + 4
        typev2 = SMC_FIRST_CONTACT if self.first_contact else 0
        return _hdr(SMCD_EYE, self.type, length, SMC_V2, typev2, TYPE_D) + body + SMCD_EYE


@dataclass(frozen=True, slots=True, kw_only=True)
class Decline:
    """A Decline (v2, 44 bytes; v1 28 bytes on receipt)."""

    peer_diagnosis: int
    out_of_sync: bool = False
    version: int = SMC_V2

    def encode(self) -> bytes:
        typev2 = SMC_FIRST_CONTACT if self.out_of_sync else 0
        body = bytes(8) + struct.pack(">IB3x", self.peer_diagnosis, SMC_CLC_OS_LINUX << 4)
        body += bytes(16)
        return _hdr(SMCR_EYE, DECLINE, DECLINE_LEN_V2, SMC_V2, typev2, 0) + body + SMCR_EYE


Message = Proposal | AcceptConfirm | Decline


def decode(raw: bytes) -> Message:
    """Decode and check one message (raises :class:`ClcError`)."""
    if len(raw) < 8:
        raise ClcError("hdr", f"{len(raw)} bytes, a CLC header has 8")
    eye, ctype, length, vbyte = _HDR.unpack_from(raw, 0)
    version, typev2, typev1 = vbyte >> 4, (vbyte >> 2) & 3, vbyte & 3
    if eye not in (SMCR_EYE, SMCD_EYE):
        raise ClcError("hdr.eyecatcher", f"{eye.hex()} is neither SMCR nor SMCD")
    if version < 1:
        raise ClcError("hdr.version", "version 0")
    if length != len(raw):
        raise ClcError("hdr.length", f"says {length}, message has {len(raw)} bytes")
    if ctype == DECLINE:
        if length not in (28, DECLINE_LEN_V2):
            raise ClcError("hdr.length", f"Decline of {length} bytes (28 or 44)")
        (diag,) = struct.unpack_from(">I", raw, 16)
        return Decline(peer_diagnosis=diag, out_of_sync=bool(typev2 & SMC_FIRST_CONTACT),
                       version=version)
    if raw[-4:] not in (SMCR_EYE, SMCD_EYE):
        raise ClcError("trl.eyecatcher", f"{raw[-4:].hex()} is neither SMCR nor SMCD")
    if ctype == PROPOSAL:
        return _decode_proposal(raw, version, typev2, typev1)
    if ctype in (ACCEPT, CONFIRM):
        if typev1 not in (TYPE_R, TYPE_D):
            raise ClcError("hdr.typev1", f"{typev1}: an Accept/Confirm is R or D")
        if typev1 != TYPE_D:
            raise ClcError("hdr.typev1", "SMC-R is not supported by this implementation")
        if version < SMC_V2 or length < SMCD_ACCEPT_CONFIRM_LEN_V2:
            raise ClcError("hdr.length", f"v{version} SMC-D Accept/Confirm of {length} bytes; "
                           "this implementation speaks v2 (>= 78 bytes)")
        gid, token, idx, size_b, linkid = struct.unpack_from(">QQBB2x4s", raw, 8)
        chid, eid, gid_ext = struct.unpack_from(">H32sQ", raw, 32)
        first = bool(typev2 & SMC_FIRST_CONTACT)
        hostname, release = b"", SMC_RELEASE
        if first and length >= 74 + 36 + 4:
            release = raw[75] & 0xF
            hostname = raw[78:110]
        return AcceptConfirm(type=ctype, first_contact=first, gid=gid, token=token,
                             dmbe_idx=idx, dmbe_size=size_b >> 4, linkid=linkid, chid=chid,
                             eid=eid, gid_ext=gid_ext, hostname=hostname, release=release)
    raise ClcError("hdr.type", f"unknown message type {ctype}")


def _decode_proposal(raw: bytes, version: int, typev2: int, typev1: int) -> Proposal:
    if version < SMC_V2 or typev2 not in (TYPE_D, TYPE_B):
        raise ClcError("hdr.typev2", "no SMC-Dv2 offered (this implementation speaks v2 only)")
    (iparea_offset,) = struct.unpack_from(">H", raw, 38)
    if iparea_offset > 40:
        raise ClcError("iparea_offset", f"{iparea_offset} > 40")
    (v2_ext_offset,) = struct.unpack_from(">H", raw, 50)
    if v2_ext_offset == 0 or v2_ext_offset > 172:
        raise ClcError("smcd.v2_ext_offset", f"{v2_ext_offset}: expected 1..172")
    v2 = 52 + v2_ext_offset
    if v2 + 40 > len(raw):
        raise ClcError("smcd.v2_ext_offset", "the v2 extension runs past the message")
    eid_cnt, gid_cnt, _r, flag = struct.unpack_from(">BBBB", raw, v2)
    if eid_cnt > SMC_CLC_MAX_UEID:
        raise ClcError("v2_ext.eid_cnt", f"{eid_cnt} > {SMC_CLC_MAX_UEID}")
    if gid_cnt > SMCD_CLC_MAX_V2_GID_ENTRIES:
        raise ClcError("v2_ext.ism_gid_cnt", f"{gid_cnt} > {SMCD_CLC_MAX_V2_GID_ENTRIES}")
    prefix = 0 if typev1 == TYPE_N else 8 + 17 * raw[40 + iparea_offset + 7]
    want = 40 + 40 + prefix + 40 + 32 * eid_cnt + 48 + 10 * gid_cnt + 4
    if len(raw) != want:
        raise ClcError("hdr.length", f"{len(raw)} bytes, the parts add up to {want}")
    (d2off,) = struct.unpack_from(">H", raw, v2 + 6)
    ueids = tuple(raw[v2 + 40 + 32 * i: v2 + 72 + 32 * i] for i in range(eid_cnt))
    d2 = v2 + 8 + d2off
    if d2off == 0 or d2 + 48 + 10 * gid_cnt > len(raw) - 4:
        raise ClcError("v2_ext.smcd_v2_ext_offset", f"{d2off} does not point at the SMC-Dv2 "
                       "extension")
    gids = tuple(struct.unpack_from(">QH", raw, d2 + 48 + 10 * i) for i in range(gid_cnt))
    return Proposal(ueids=ueids, gidchids=gids, release=flag >> 4)


def read_message(sock: socket.socket, timeout: float = CLC_WAIT_TIME) -> bytes:
    """Read one CLC message (header, then ``length - 8`` bytes) from a TCP socket.

    Raises:
        ClcError: the peer closed the socket, or the header is not a CLC header.
        TimeoutError: nothing complete within ``timeout`` seconds.
    """
    old = sock.gettimeout()
    sock.settimeout(timeout)
    try:
        head = _recv_exact(sock, 8)
        if head[:4] not in (SMCR_EYE, SMCD_EYE):
            raise ClcError("hdr.eyecatcher", f"{head[:4].hex()}: not a CLC message")
        (length,) = struct.unpack_from(">H", head, 5)
        if length < 8 or length > 1024:
            raise ClcError("hdr.length", f"{length}")
        return head + _recv_exact(sock, length - 8)
    except TimeoutError:
        raise TimeoutError(f"no complete CLC message within {timeout} s") from None
    finally:
        sock.settimeout(old)


def _recv_exact(sock: socket.socket, n: int) -> bytes:
    buf = bytearray()
    while len(buf) < n:
        chunk = sock.recv(n - len(buf))
        if not chunk:
            raise ClcError("tcp", "the peer closed the CLC socket")
        buf += chunk
    return bytes(buf)
