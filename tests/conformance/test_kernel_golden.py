"""The project's golden captures from the real Linux 6.12.118 kernel (tests/kernel_captures/,
see its README for how they were made), re-checked against the spec without booting anything.

Facts asserted here come from the kernel (its bytes on the wire, its smc_diag records) and the
kernel's constants (``SMC_CLC_DECL_*``), never from our encoder's output.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from smcd_check.conformance.kernel import checks as C
from smcd_check.conformance.kernel import qemu as K
from smcd_check.conformance.kernel.wire import DIAG_MODES, clc_kind
from smcd_check.spec.cursor import Cursor, Ring, from_position, position
from smcd_check.spec.decline import DeclineCode

CAPTURES = Path(__file__).resolve().parents[1] / "kernel_captures"
ORDER, RESULTS = K.load_captures(CAPTURES)
CHECKS = C.all_checks(RESULTS, ORDER)


def _by_kind(kind: str) -> list[C.Check]:
    return [c for c in CHECKS if c.kind == kind]


def _socks(name: str) -> list[dict[str, Any]]:
    return [dict(s) for s in C.diag_socks(RESULTS[name], "open")]


@pytest.mark.parametrize("kind", ["codec", "handshake", "outcome", "marker", "trace",
                                  "transfer"])
def test_every_comparison_with_the_spec_agrees(kind: str) -> None:
    """For every captured connection: the codec round-trips the kernel's CLC bytes, the spec's
    handshake fed the kernel's inputs sends byte-identical messages and ends in smc_diag's
    outcome, markers are on lo exactly for fallback connections, every cursor snapshot is
    allowed by the spec's relations, and every transfer arrived intact."""
    checks = _by_kind(kind)
    assert checks, f"no {kind} checks: the captures lost their data"
    bad = [f"{c.scenario} {c.subject}: {c.detail} {dict(c.evidence)}" for c in checks
           if not c.ok]
    assert not bad, "\n".join(bad)


def test_handshake_replay_covers_first_contact_and_reuse() -> None:
    """The replay meets both link-group cases: the boot's first SMC-D connection (first
    contact, 130-byte Accept/Confirm with the first-contact extension) and reuse (78 bytes)."""
    smcd = [c for c in _by_kind("handshake") if c.scenario == "smcd"]
    reuse = [c for c in _by_kind("handshake") if c.scenario == "reuse"]
    assert smcd and all(c.ok for c in smcd)
    assert reuse and all(c.ok for c in reuse)
    kinds = [clc_kind(m) + f"({len(m)})" for conn in C.clc_of(RESULTS["smcd"])
             for m in conn["s2c"]]
    assert kinds == ["accept-v2(130)"]
    kinds = [clc_kind(m) + f"({len(m)})" for conn in C.clc_of(RESULTS["reuse"])
             for m in conn["s2c"]]
    assert kinds == ["accept-v2(78)"] * 3


def test_no_ueid_server_declines_nouid_and_client_records_peerdecl() -> None:
    """Without a UEID the server sends a v2 Decline with SMC_CLC_DECL_NOUEID (0x03030008)
    and falls back with that reason; the client falls back with SMC_CLC_DECL_PEERDECL and the
    server's code as peer diagnosis (smc_diag)."""
    (conn,) = C.clc_of(RESULTS["noueid"])
    (decline,) = conn["s2c"]
    assert clc_kind(decline) == "decline-v2" and len(decline) == 44
    assert int.from_bytes(decline[16:20], "big") == DeclineCode.NOUEID
    port = RESULTS["noueid"]["port"]
    socks = _socks("noueid")
    server = next(s for s in socks if s["sport"] == port)
    client = next(s for s in socks if s["dport"] == port)
    assert DIAG_MODES[server["mode"]] == DIAG_MODES[client["mode"]] == "FALLBACK_TCP"
    assert server["fallback"] == {"reason": DeclineCode.NOUEID, "peer_diagnosis": 0}
    assert client["fallback"] == {"reason": DeclineCode.PEERDECL,
                                  "peer_diagnosis": DeclineCode.NOUEID}


@pytest.mark.parametrize("name", ["tcp-server", "tcp-client"])
def test_a_peer_without_smc_means_fallback_without_any_clc(name: str) -> None:
    """Without the SMC TCP option on the other side no CLC message is sent at all and the SMC
    side falls back with SMC_CLC_DECL_PEERNOSMC."""
    for conn in C.clc_of(RESULTS[name]):
        assert conn["c2s"] == [] and conn["s2c"] == []
    (sock,) = _socks(name)
    assert sock["fallback"]["reason"] == DeclineCode.PEERNOSMC


def test_tcp_fastopen_falls_back_before_clc_with_optunsupp() -> None:
    (conn,) = C.clc_of(RESULTS["fastopen"])
    assert conn["c2s"] == [] and conn["s2c"] == []
    reasons = {s["fallback"]["reason"] for s in _socks("fastopen")}
    assert DeclineCode.OPTUNSUPP in reasons


def test_smcd_connection_moves_no_payload_over_tcp() -> None:
    """On an SMC-D connection the marker strings never appear on lo (they went through the
    DMB); on a fallback connection they do."""
    marks = {c.scenario: c for c in _by_kind("marker")}
    assert "marker not seen on lo" in marks["smcd"].detail
    assert "marker seen on lo" in marks["noueid"].detail


def test_dmb_sizes_follow_so_rcvbuf() -> None:
    """SO_RCVBUF 16384 gives a 16 KiB DMB (ring 16352); SO_RCVBUF 262144 is capped by
    rmem_max (sk_rcvbuf 425984) and __smc_buf_create rounds the half, 212992, up to 256 KiB
    (ring 262112); in merged mode each side's sndbuf is the peer's ring."""
    port = RESULTS["bufsizes"]["port"]
    socks = _socks("bufsizes")
    server = next(s for s in socks if s["sport"] == port)["conninfo"]
    client = next(s for s in socks if s["dport"] == port)["conninfo"]
    assert client["rmbe_size"] == 16352 and server["rmbe_size"] == 262112
    assert client["sndbuf_size"] == server["rmbe_size"]
    assert server["sndbuf_size"] == client["rmbe_size"]


def test_the_wrap_counter_passes_0xffff_and_data_stays_intact() -> None:
    """1,072,895,591 bytes through a 16352-byte ring are 65,612 laps plus 8,167 bytes: the
    kernel's 16-bit wrap counter went past 0xffff and reads 65612 mod 65536 = 76; every byte
    arrived in order (compared with the sender's pattern), and every snapshot on the way was
    allowed by the spec's cursor relations."""
    w = RESULTS["wrap"]
    (t,) = w["transfers"]
    assert t["received"] == t["total"] == 1_072_895_591 and t["mismatch_at"] == -1
    ring = 16352
    laps, rest = divmod(t["total"], ring)
    assert laps > 0xFFFF
    writer = next(s for s in w["diag_after"][0]["socks"] if s["dport"] == w["port"])
    assert writer["conninfo"]["tx_prod"] == [laps % 65536, rest]
    assert [c.ok for c in _by_kind("trace") if c.scenario == "wrap"] == [True]


def test_a_broken_snapshot_is_reported_with_the_relation_it_breaks() -> None:
    """The trace check is not vacuous: a writer whose producer runs more than a ring ahead of
    the consumer it knows (an overwrite) is named as such."""
    w = next(s for s in RESULTS["data-small"]["snapshots"][0]["socks"]
             if s["dport"] == RESULTS["data-small"]["port"])
    r = next(s for s in RESULTS["data-small"]["snapshots"][0]["socks"]
             if s["sport"] == RESULTS["data-small"]["port"])
    ring = Ring(size=w["conninfo"]["peer_rmbe_size"])
    prod = Cursor(wrap=w["conninfo"]["tx_prod"][0], count=w["conninfo"]["tx_prod"][1])
    behind = from_position(ring, position(ring, prod) - ring.size - 100)  # L + 100 unread
    bad = {**w["conninfo"], "rx_cons": [behind.wrap, behind.count]}
    bad_reader = {**r["conninfo"], "tx_cons": [behind.wrap, behind.count],
                  "rx_prod": w["conninfo"]["tx_prod"]}
    problems = C.snapshot_problems({"conninfo": bad}, {"conninfo": bad_reader})
    assert any(p.startswith("order:") for p in problems), problems


def test_dmb_sizes_match_the_specs_bufsize_rule() -> None:
    """smc_compress_bufsize (spec.bufsize) of half the socket's sk_rcvbuf gives the DMB the
    kernel made: SO_RCVBUF v sets sk_rcvbuf = 2 * min(v, rmem_max = 212992), the DMB is
    uncompress(compress(sk_rcvbuf / 2)) and its data ring 32 bytes shorter."""
    from smcd_check.spec.bufsize import smc_compress_bufsize, smc_uncompress_bufsize

    rmem_max = 212992  # SK_RMEM_MAX: net.core.rmem_max default
    port = RESULTS["bufsizes"]["port"]
    socks = _socks("bufsizes")
    for so_rcvbuf, sock in ((262144, next(s for s in socks if s["sport"] == port)),
                            (16384, next(s for s in socks if s["dport"] == port))):
        sk_rcvbuf = 2 * min(so_rcvbuf, rmem_max)
        dmb = smc_uncompress_bufsize(smc_compress_bufsize(sk_rcvbuf // 2, is_smcd=True))
        assert sock["conninfo"]["rmbe_size"] == dmb - 32
