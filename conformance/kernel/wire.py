"""What the guest captured on ``lo``, made readable: TCP streams, CLC messages, pcap files.

Theory of operation
-------------------
The harness hands back raw Ethernet frames seen on ``lo`` (the received copy of each, so every
segment appears once), each truncated to 2048 bytes but with its original length. This module

* parses Ethernet / IPv4 / IPv6 / TCP headers (:func:`parse_frame`);
* rebuilds each direction's byte stream from the sequence numbers relative to the SYN
  (:func:`streams`; loopback neither loses nor reorders, a retransmission is skipped by its
  sequence number);
* splits the start of a stream into CLC messages (:func:`split_clc`): a CLC message begins with
  the SMC-R or SMC-D eyecatcher and carries its length in bytes 5..6 (``struct
  smc_clc_msg_hdr``); the first bytes that are no CLC header end the handshake (fallback data
  follows on the same TCP connection);
* writes and reads classic pcap files (:func:`write_pcap`, :func:`read_pcap`; link type 1,
  Ethernet) with nothing but ``struct``;
* names the bits of the smc_diag flag bytes (:func:`conn_state_flags`,
  :func:`prod_flags`) and the socket states (:data:`SMC_STATES`).

Kernel source: net/smc/smc_clc.h (header, eyecatchers), net/smc/smc.h (``enum smc_state``,
``struct smc_cdc_conn_state_flags`` / ``smc_cdc_producer_flags``: little-endian bitfields, so
the first declared field is the most significant bit of the byte), include/uapi/linux/smc_diag.h.
"""

from __future__ import annotations

import struct
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

EYECATCHER_SMCR = bytes.fromhex("e2d4c3d9")
EYECATCHER_SMCD = bytes.fromhex("e2d4c3c4")
CLC_HEADER_LEN = 8
CLC_TYPES = {1: "proposal", 2: "accept", 3: "confirm", 4: "decline"}

#: enum smc_state (net/smc/smc.h)
SMC_STATES: Mapping[int, str] = {
    1: "SMC_ACTIVE", 2: "SMC_INIT", 7: "SMC_CLOSED", 10: "SMC_LISTEN",
    20: "SMC_PEERCLOSEWAIT1", 21: "SMC_PEERCLOSEWAIT2", 22: "SMC_APPCLOSEWAIT1",
    23: "SMC_APPCLOSEWAIT2", 24: "SMC_APPFINCLOSEWAIT", 25: "SMC_PEERFINCLOSEWAIT",
    26: "SMC_PEERABORTWAIT", 27: "SMC_PROCESSABORT",
}
#: SMC_DIAG_MODE_* (include/uapi/linux/smc_diag.h)
DIAG_MODES: Mapping[int, str] = {0: "SMCR", 1: "FALLBACK_TCP", 2: "SMCD"}


class WireError(ValueError):
    """A frame or pcap file that cannot be parsed (message names the field)."""


def conn_state_flags(byte: int) -> dict[str, bool]:
    """``struct smc_cdc_conn_state_flags`` of one diag byte."""
    return {
        "peer_done_writing": bool(byte & 0x80),
        "peer_conn_closed": bool(byte & 0x40),
        "peer_conn_abort": bool(byte & 0x20),
    }


def prod_flags(byte: int) -> dict[str, bool]:
    """``struct smc_cdc_producer_flags`` of one diag byte."""
    return {
        "write_blocked": bool(byte & 0x80),
        "urg_data_pending": bool(byte & 0x40),
        "urg_data_present": bool(byte & 0x20),
        "cons_curs_upd_req": bool(byte & 0x10),
        "failover_validation": bool(byte & 0x08),
    }


@dataclass(frozen=True, slots=True, kw_only=True)
class Segment:
    """One TCP segment seen on lo."""

    t_us: int
    src: str
    dst: str
    sport: int
    dport: int
    seq: int
    flags: int
    payload: bytes
    payload_len: int  # before truncation

    @property
    def syn(self) -> bool:
        return bool(self.flags & 0x02)

    @property
    def fin(self) -> bool:
        return bool(self.flags & 0x01)

    @property
    def rst(self) -> bool:
        return bool(self.flags & 0x04)


def parse_frame(frame: bytes, t_us: int = 0, orig_len: int | None = None) -> Segment | None:
    """The TCP segment in an Ethernet frame, or None when it is not TCP over IP."""
    if len(frame) < 14:
        raise WireError(f"frame of {len(frame)} bytes is shorter than an Ethernet header")
    ethertype = struct.unpack_from("!H", frame, 12)[0]
    off = 14
    if ethertype == 0x0800:
        if len(frame) < off + 20:
            raise WireError("truncated IPv4 header")
        ihl = (frame[off] & 15) * 4
        total = struct.unpack_from("!H", frame, off + 2)[0]
        if frame[off + 9] != 6:
            return None
        src = ".".join(str(b) for b in frame[off + 12:off + 16])
        dst = ".".join(str(b) for b in frame[off + 16:off + 20])
        tcp_len = total - ihl
        off += ihl
    elif ethertype == 0x86DD:
        if len(frame) < off + 40:
            raise WireError("truncated IPv6 header")
        if frame[off + 6] != 6:
            return None
        tcp_len = struct.unpack_from("!H", frame, off + 4)[0]
        src = frame[off + 8:off + 24].hex()
        dst = frame[off + 24:off + 40].hex()
        off += 40
    else:
        return None
    if len(frame) < off + 20:
        raise WireError("truncated TCP header")
    sport, dport, seq = struct.unpack_from("!HHI", frame, off)
    doff = (frame[off + 12] >> 4) * 4
    flags = frame[off + 13]
    plen = max(0, tcp_len - doff)
    payload = frame[off + doff:off + doff + plen]
    return Segment(t_us=t_us, src=src, dst=dst, sport=sport, dport=dport, seq=seq, flags=flags,
                   payload=bytes(payload), payload_len=plen)


def frames_of(result: Mapping[str, Any]) -> list[tuple[int, int, bytes]]:
    """(t_us, orig_len, frame bytes) of a harness scenario result."""
    import base64

    out = []
    for f in result.get("frames", []):
        out.append((int(f["t_us"]), int(f["orig_len"]), base64.b64decode(f["data"])))
    return out


def segments(frames: Iterable[tuple[int, int, bytes]]) -> list[Segment]:
    segs = []
    for t_us, orig, data in frames:
        seg = parse_frame(data, t_us, orig)
        if seg is not None:
            segs.append(seg)
    return segs


@dataclass(frozen=True, slots=True, kw_only=True)
class Connection:
    """One TCP connection on lo: who opened it and the start of both byte streams."""

    client: tuple[str, int]
    server: tuple[str, int]
    c2s: bytes
    s2c: bytes
    syn_options: bytes  # the client's SYN TCP options (the SMC option is kind 254)


def _stream(segs: Sequence[Segment], isn: int | None) -> bytes:
    buf = bytearray()
    if isn is None:
        return bytes(buf)
    nxt = (isn + 1) & 0xFFFFFFFF
    for s in segs:
        if not s.payload:
            continue
        rel = (s.seq - nxt) & 0xFFFFFFFF
        if rel == 0 and len(s.payload) == s.payload_len:
            buf.extend(s.payload)
            nxt = (nxt + len(s.payload)) & 0xFFFFFFFF
        elif rel == 0:  # truncated by the snap length: the stream's start is all we keep
            buf.extend(s.payload)
            break
        elif rel >= 0x80000000:  # retransmission of bytes we have
            continue
        else:
            break  # a gap (the capture kept only the start): stop here
    return bytes(buf)


def connections(segs: Sequence[Segment], server_port: int | None = None) -> list[Connection]:
    """TCP connections (in order of their SYN), optionally only those to ``server_port``."""
    syns = [s for s in segs if s.syn and not (s.flags & 0x10)]
    out = []
    seen: set[tuple[tuple[str, int], tuple[str, int]]] = set()
    for syn in syns:
        if server_port is not None and syn.dport != server_port:
            continue
        cl, sv = (syn.src, syn.sport), (syn.dst, syn.dport)
        if (cl, sv) in seen:  # a retransmitted SYN (full listen backlog)
            continue
        seen.add((cl, sv))
        fwd = [s for s in segs if (s.src, s.sport) == cl and (s.dst, s.dport) == sv]
        rev = [s for s in segs if (s.src, s.sport) == sv and (s.dst, s.dport) == cl]
        synack = next((s for s in rev if s.syn), None)
        out.append(Connection(client=cl, server=sv, c2s=_stream(fwd, syn.seq),
                              s2c=_stream(rev, synack.seq if synack else None),
                              syn_options=b""))
    return out


def split_clc(stream: bytes) -> tuple[list[bytes], bytes]:
    """(CLC messages at the start of ``stream``, the bytes after them)."""
    msgs = []
    off = 0
    while len(stream) - off >= CLC_HEADER_LEN and stream[off:off + 4] in (
        EYECATCHER_SMCR, EYECATCHER_SMCD
    ):
        length = struct.unpack_from("!H", stream, off + 5)[0]
        if length < CLC_HEADER_LEN or off + length > len(stream):
            break
        msgs.append(stream[off:off + length])
        off += length
    return msgs, stream[off:]


def clc_kind(msg: bytes) -> str:
    """``proposal-v2`` etc. from a CLC message's header."""
    return f"{CLC_TYPES.get(msg[4], f'type{msg[4]}')}-v{msg[7] >> 4}"


# ------------------------------------------------------------------------------ pcap

PCAP_MAGIC = 0xA1B2C3D4
LINKTYPE_ETHERNET = 1


def write_pcap(path: Path, frames: Iterable[tuple[int, int, bytes]]) -> Path:
    """A classic little-endian pcap (µs timestamps, Ethernet) of (t_us, orig_len, data)."""
    with path.open("wb") as f:
        f.write(struct.pack("<IHHiIII", PCAP_MAGIC, 2, 4, 0, 0, 65535, LINKTYPE_ETHERNET))
        for t_us, orig, data in frames:
            f.write(struct.pack("<IIII", t_us // 1_000_000, t_us % 1_000_000, len(data),
                                max(orig, len(data))))
            f.write(data)
    return path


def read_pcap(path: Path) -> list[tuple[int, int, bytes]]:
    """(t_us, orig_len, data) of every record of a classic pcap file (Ethernet)."""
    raw = path.read_bytes()
    if len(raw) < 24:
        raise WireError(f"{path}: {len(raw)} bytes is too short for a pcap global header")
    magic = struct.unpack_from("<I", raw)[0]
    if magic == PCAP_MAGIC:
        end = "<"
    elif magic == 0xD4C3B2A1:
        end = ">"
    else:
        raise WireError(f"{path}: magic {magic:#010x} is not a µs pcap")
    linktype = struct.unpack_from(end + "I", raw, 20)[0]
    if linktype != LINKTYPE_ETHERNET:
        raise WireError(f"{path}: link type {linktype}, expected 1 (Ethernet)")
    out = []
    off = 24
    while off + 16 <= len(raw):
        sec, usec, incl, orig = struct.unpack_from(end + "IIII", raw, off)
        off += 16
        if off + incl > len(raw):
            raise WireError(f"{path}: record at {off - 16} runs past the end of the file")
        out.append((sec * 1_000_000 + usec, orig, raw[off:off + incl]))
        off += incl
    return out


def tcp_frame(payload: bytes, *, sport: int, dport: int, seq: int, ack: int = 0,
              flags: int = 0x18, src: bytes = b"\x7f\0\0\x01",
              dst: bytes = b"\x7f\0\0\x01") -> bytes:
    """An Ethernet/IPv4/TCP frame carrying ``payload`` (checksums left zero)."""
    tcp = struct.pack("!HHIIBBHHH", sport, dport, seq, ack, 5 << 4, flags, 65535, 0, 0)
    total = 20 + len(tcp) + len(payload)
    ip = struct.pack("!BBHHHBBH4s4s", 0x45, 0, total, 0, 0x4000, 64, 6, 0, src, dst)
    eth = b"\0" * 12 + b"\x08\x00"
    return eth + ip + tcp + payload
