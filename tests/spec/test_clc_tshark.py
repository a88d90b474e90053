"""Wireshark as a second, independent decoder of CLC messages (issue 8).

For every golden CLC vector (hand-built kernel struct layouts and real Linux 6.12.118 captures,
tests/spec/clc_vectors.py; plus the project's own kernel captures in tests/kernel_captures/)
we write a pcap with plain ``struct`` (global header, record header, Ethernet/IPv4/TCP on an
otherwise unclaimed port so only Wireshark's ``smc`` heuristic dissector claims it), let
``tshark -T json -x -J smc`` decode it, and compare every field tshark knows with our
dissector (:func:`smcd_check.spec.clc.dissect`): same offset, same size, same bytes, and the
same value where both give a number or a text.

tshark 4.0 does not know every field (gid_ext, feature_mask, v2x first-contact fields) and
checks neither trailer nor length; it is a decoder, not a validator, so only the fields it
reports are compared. Known differences of tshark's own (documented below, in
``TSHARK_QUIRKS``) are excluded by name with the reason.

Skips with a reason when tshark is not installed (CI installs it in .ci/system-deps).
"""

from __future__ import annotations

import ipaddress
import json
import shutil
import struct
import subprocess
from pathlib import Path
from typing import Any

import pytest
from clc_vectors import ALL

from smcd_check.conformance.kernel.wire import read_pcap, segments, split_clc, tcp_frame, write_pcap
from smcd_check.spec.clc import decode, dissect

TSHARK = shutil.which("tshark")
pytestmark = pytest.mark.skipif(TSHARK is None, reason="tshark not installed "
                                "(apt-get install tshark; CI installs it in .ci/system-deps)")

CAPTURES = Path(__file__).resolve().parents[1] / "kernel_captures"
#: first port of the test flows; 47000.. is unassigned and no dissector claims it
BASE_PORT = 47000
#: bytes before the TCP payload in our frames: Ethernet 14 + IPv4 20 + TCP 20
PAYLOAD_AT = 54

#: tshark field names compared by bytes only (none needed so far: where tshark lumps several of
#: our fields into one, e.g. the v2x first-contact fields as "smc.reserved", the test accepts it
#: when our fields tile exactly the same bytes)
TSHARK_QUIRKS: set[str] = set()


def _vectors() -> list[tuple[str, bytes]]:
    out = [(f"golden[{i}]", v) for i, v in enumerate(ALL)]
    for pcap in sorted(CAPTURES.glob("*.pcap")):
        for seg in segments(read_pcap(pcap)):
            msgs, _ = split_clc(seg.payload)
            for j, m in enumerate(msgs):
                out.append((f"{pcap.stem}:{seg.sport}->{seg.dport}#{j}", m))
    # one copy of each distinct message is enough
    seen: set[bytes] = set()
    uniq = []
    for name, v in out:
        if v not in seen:
            seen.add(v)
            uniq.append((name, v))
    return uniq


VECTORS = _vectors()


TsharkFields = list[tuple[str, str, list[Any]]]


def _leaves(node: Any, out: list[tuple[str, str, list[Any]]]) -> None:
    """(field name, display value, [hex, pos, len, mask, type]) of every tshark field."""
    if not isinstance(node, dict):
        return
    for key, value in node.items():
        if key.endswith("_raw") and isinstance(value, list) and len(value) == 5:
            name = key[:-4]
            shown = node.get(name)
            out.append((name, shown if isinstance(shown, str) else "", value))
        elif isinstance(value, dict):
            _leaves(value, out)


@pytest.fixture(scope="module")
def tshark_fields(tmp_path_factory: pytest.TempPathFactory) -> list[TsharkFields]:
    """tshark's fields for each vector, decoded in one tshark run."""
    pcap = tmp_path_factory.mktemp("tshark") / "vectors.pcap"
    frames = [(i * 1000, 0, tcp_frame(v, sport=BASE_PORT + i, dport=BASE_PORT + 500 + i,
                                      seq=1000))
              for i, (_, v) in enumerate(VECTORS)]
    frames = [(t, len(f), f) for t, _, f in frames]
    write_pcap(pcap, frames)
    proc = subprocess.run([str(TSHARK), "-r", str(pcap), "-T", "json", "-x", "-J", "smc"],
                          capture_output=True, text=True, timeout=120, check=False)
    assert proc.returncode == 0, proc.stderr[-2000:]
    packets = json.loads(proc.stdout)
    assert len(packets) == len(VECTORS)
    result = []
    for p in packets:
        fields: list[tuple[str, str, list[Any]]] = []
        _leaves(p["_source"]["layers"].get("smc", {}), fields)
        result.append(fields)
    return result


def _same_ipv6(a: str, b: str) -> bool:
    try:
        return ipaddress.IPv6Address(a.strip()) == ipaddress.IPv6Address(b.strip())
    except ValueError:
        return False


def _number(text: str) -> int | None:
    try:
        return int(text, 0)
    except ValueError:
        return None


@pytest.mark.parametrize("index", range(len(VECTORS)), ids=[n for n, _ in VECTORS])
def test_tshark_and_our_dissector_agree_on_every_field_tshark_knows(
    index: int, tshark_fields: list[TsharkFields]
) -> None:
    """Every field Wireshark decodes sits at the offset and size our dissector gives a field,
    with the same bytes, and the same number (or text) where Wireshark shows one."""
    name, raw = VECTORS[index]
    fields = tshark_fields[index]
    assert fields, f"tshark did not decode {name} as SMC at all"
    ours = dissect(decode(raw))
    problems = []
    compared = 0
    for tname, shown, (hexval, pos, size, mask, _ftype) in fields:
        off = pos - PAYLOAD_AT
        if mask:
            # a bit field: tshark gives the value shifted down; ours must hold the same
            bits = [f for f in ours if f.offset == off and f.size == size and f.mask == mask]
            whole = int.from_bytes(raw[off:off + size], "big")
            expected = (whole & mask) // (mask & -mask)
            assert int(hexval, 16) == expected, f"{tname}: tshark's bits are not the message's"
            if not bits:
                # we keep this bit field inside a wider field: the bytes agree (checked above)
                continue
            compared += 1
            if bits[0].value != int(hexval, 16):
                problems.append(f"{tname} (mask {mask:#x}): tshark {int(hexval, 16)}, "
                                f"ours {bits[0].value!r}")
            continue
        data = bytes.fromhex(hexval)
        assert raw[off:off + size] == data, f"{tname}: tshark's bytes are not the message's"
        if tname in TSHARK_QUIRKS:
            continue
        exact = [f for f in ours if f.offset == off and f.size == size and f.mask is None]
        if not exact:
            inside = [f for f in ours if f.offset <= off and off + size <= f.offset + f.size]
            tiled = {b for f in ours if off <= f.offset and f.offset + f.size <= off + size
                     for b in range(f.offset, f.offset + f.size)}
            if not inside and tiled != set(range(off, off + size)):
                problems.append(f"{tname} at {off}+{size}: no field of ours covers it, and "
                                "our fields do not tile it")
            # tshark splits one of our fields, or lumps several of ours (e.g. the v2x
            # first-contact fields it does not know, shown as "reserved"): the bytes agree
            continue
        compared += 1
        ours_value = exact[0].value
        num = _number(shown.strip())
        if isinstance(ours_value, int) and num is not None and ours_value != num:
            problems.append(f"{tname} at {off}: tshark {shown}, ours {ours_value}")
        elif isinstance(ours_value, str) and _same_ipv6(shown, ours_value):
            continue  # same address, different spelling (ours is not RFC 5952 compressed)
        elif isinstance(ours_value, str) and shown.strip() and \
                shown.strip() not in ours_value and ours_value.strip() not in shown:
            problems.append(f"{tname} at {off}: tshark {shown!r}, ours {ours_value!r}")
    assert not problems, f"{name}: " + "; ".join(problems)
    assert compared > 0


def test_the_pcap_writer_is_read_back_by_tshark(tmp_path: Path) -> None:
    """A frame we write is the frame tshark reads: same length, same TCP ports."""
    frame = tcp_frame(b"hello", sport=BASE_PORT, dport=BASE_PORT + 1, seq=7)
    pcap = write_pcap(tmp_path / "one.pcap", [(1_500_000, len(frame), frame)])
    out = subprocess.run([str(TSHARK), "-r", str(pcap), "-T", "fields", "-e", "frame.len",
                          "-e", "tcp.srcport", "-e", "tcp.dstport", "-e", "tcp.len"],
                         capture_output=True, text=True, timeout=60, check=True).stdout.split()
    assert out == [str(len(frame)), str(BASE_PORT), str(BASE_PORT + 1), "5"]
    assert struct.unpack_from("<I", pcap.read_bytes())[0] == 0xA1B2C3D4
