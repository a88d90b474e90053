"""Unit tests of the SMC-D connection model: CDC layout, data path, window updates, close/abort."""

from __future__ import annotations

import random
import struct

import pytest

from smcd_check.model.connection import (
    SMC_CONN_PEER_CONN_ABORT,
    SMC_CONN_PEER_CONN_CLOSED,
    SMC_CONN_PEER_DONE_WRITING,
    BrokenPipe,
    ConnectionAborted,
    ConnectionReset,
    ModeMismatch,
    ProtocolViolation,
    SmcdConnection,
    SmcHostCursor,
    SmcSockState,
    SocketClosed,
    open_pair,
)
from smcd_check.model.device import InvalidArgument, LoopbackIsm, NoSpace
from smcd_check.model.lgr import LinkGroupBusy, SmcdLinkGroup

MODES = ["copy", "merged"]


def device(mode: str, **kw: object) -> LoopbackIsm:
    return LoopbackIsm(seed=11, nocopy=(mode == "merged"), **kw)  # type: ignore[arg-type]


def header(conn: SmcdConnection) -> bytes:
    """The 32 bytes the peer wrote into ``conn``'s DMB."""
    assert conn.rmb_desc is not None
    return bytes(conn.rmb_desc.cpu_addr[:32])


def transfer(a: SmcdConnection, b: SmcdConnection, total: int, seed: int) -> bytes:
    """Send ``total`` random bytes a -> b in random chunks, reading as we go; return what b got."""
    rng = random.Random(seed)
    data = rng.randbytes(total)
    sent = 0
    got = bytearray()
    while len(got) < total:
        if sent < total:
            sent += a.send(data[sent : sent + rng.randint(1, 40000)])
        got += b.recv(rng.randint(1, 40000))
    assert got == data
    return bytes(got)


# ------------------------------------------------------------------ CDC message layout


@pytest.mark.parametrize("mode", MODES)
def test_cdc_written_into_peer_dmb_header_in_kernel_layout(mode: str) -> None:
    """struct smcd_cdc_msg (smc_cdc.h): type 0xFE @0, prod {u16 wrap @8, u32 count @10},
    cons {u16 wrap @16, u32 count @18, prod_flags @22, conn_state_flags @23}, little-endian;
    data ring at offset 32."""
    a, b = open_pair(device(mode), mode)
    payload = bytes(range(256)) + b"\x01\x02"  # 258 = 0x0102 bytes
    assert a.send(payload) == 258
    expected = bytearray(32)
    expected[0] = 0xFE
    expected[10:14] = b"\x02\x01\x00\x00"  # prod.count = 0x102, little-endian
    assert header(b) == bytes(expected)
    assert b.rmb_desc is not None
    assert bytes(b.rmb_desc.cpu_addr[32 : 32 + 258]) == payload
    assert b.recv(300) == payload
    b.shutdown()  # CDC b -> a: cons = 258 (what b consumed), conn_state_flags = done_writing
    expected = bytearray(32)
    expected[0] = 0xFE
    expected[18:22] = b"\x02\x01\x00\x00"
    expected[23] = 0x80
    assert header(a) == bytes(expected)


def test_write_blocked_flag_travels_in_cons_spare_byte() -> None:
    a, b = open_pair(device("copy"), "copy", sndbuf_size=32768)
    assert a.send(bytes(20000)) == 20000  # more than the peer ring holds: write_blocked
    assert header(b)[22] == 0x80
    # the ring is full: prod went once round, (wrap 1, count 0); "full" differs from
    # "empty" only by the wrap
    assert struct.unpack_from("<HI", header(b), 8) == (1, 0)


# ------------------------------------------------------------------ data path


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("dmb", [33, 40, 100, 16384])
def test_transfer_wraps_the_ring_many_times(mode: str, dmb: int) -> None:
    """Bytes arrive intact and in order while the ring wraps dozens of times."""
    a, b = open_pair(device(mode), mode, dmb_size=dmb, strict_sizes=False, sock_min_sndbuf=0)
    total = 600_000 if dmb == 16384 else 3000
    transfer(a, b, total, seed=dmb)
    ring = dmb - 32
    s = a.snapshot()
    assert s.tx_prod_wrap == (total // ring) & 0xFFFF and s.tx_prod_count == total % ring
    assert s.tx_prod_wrap >= 30


def start_at_wrap(a: SmcdConnection, b: SmcdConnection, wrap: int) -> None:
    """Move every a -> b cursor of an idle pair to (wrap, 0), as if 'wrap' laps had gone by."""
    c = SmcHostCursor(wrap, 0)
    a.tx_curs_prep = a.tx_curs_sent = a.tx_curs_fin = c
    a.local_tx_ctrl.prod = a.local_rx_ctrl.cons = c
    b.local_rx_ctrl.prod = b.local_tx_ctrl.cons = b.rx_curs_confirmed = c


@pytest.mark.parametrize("mode", MODES)
def test_wrap_counter_overflows_16_bits_safely(mode: str) -> None:
    """Across the u16 wrap overflow 0xffff -> 0 the stream stays intact (diff only compares
    wraps for equality; diff_large special-cases the overflow)."""
    kw = {"sndbuf_size": 6} if mode == "copy" else {}
    a, b = open_pair(device(mode), mode, dmb_size=38, strict_sizes=False, sock_min_sndbuf=0, **kw)
    start_at_wrap(a, b, 0xFFFD)
    data = bytes(range(256)) * 4
    sent = 0
    got = bytearray()
    rng = random.Random(5)
    while len(got) < len(data):
        sent += a.send(data[sent : sent + rng.randint(1, 9)])
        got += b.recv(rng.randint(1, 9))
    assert got == data
    s = a.snapshot()
    laps = len(data) // 6  # 170 laps of the 6-byte ring from wrap 0xfffd
    assert (s.tx_prod_wrap, s.tx_prod_count) == ((0xFFFD + laps) & 0xFFFF, len(data) % 6)
    assert s.tx_prod_wrap < 0xFFFD, "the wrap counter overflowed"


@pytest.mark.parametrize("mode", MODES)
def test_both_directions_at_once_stream_intact(mode: str) -> None:
    a, b = open_pair(device(mode), mode, dmb_size=16384, peer_dmb_size=32768)
    rng = random.Random(3)
    data = {"ab": rng.randbytes(300_000), "ba": rng.randbytes(250_000)}
    sent = {"ab": 0, "ba": 0}
    got = {"ab": bytearray(), "ba": bytearray()}
    ends = {"ab": (a, b), "ba": (b, a)}
    while any(len(got[d]) < len(data[d]) for d in data):
        for d, (w, r) in ends.items():
            sent[d] += w.send(data[d][sent[d] : sent[d] + rng.randint(1, 70000)])
            got[d] += r.recv(rng.randint(1, 70000))
    assert got == {d: bytearray(v) for d, v in data.items()}


def test_merged_mode_makes_no_data_copies() -> None:
    """Merged: user bytes go straight into the peer DMB; the device copies only CDC headers."""
    counts = {}
    for mode in MODES:
        dev = device(mode)
        a, b = open_pair(dev, mode)
        transfer(a, b, 200_000, seed=1)
        counts[mode] = (dev.stats.data_bytes_copied, a.user_bytes_in, b.user_bytes_out)
        assert dev.stats.cdc_bytes_copied % 32 == 0 and dev.stats.cdc_bytes_copied > 0
    assert counts["merged"] == (0, 200_000, 200_000)
    assert counts["copy"] == (200_000, 200_000, 200_000)


def test_copy_mode_frees_sndbuf_at_cdc_merged_waits_for_consumer() -> None:
    ac, _bc = open_pair(device("copy"), "copy")
    assert ac.send(b"x" * 100) == 100
    assert ac.sndbuf_space == ac.sndbuf_len, "copy: space back once the CDC is written"
    am, bm = open_pair(device("merged"), "merged")
    assert am.send(b"x" * 100) == 100
    assert am.sndbuf_space == am.sndbuf_len - 100, "merged: the data still sits in the peer DMB"
    assert bm.recv(100) == b"x" * 100
    assert am.sndbuf_space == am.sndbuf_len - 100, "small read: no window update yet"
    bm.shutdown()  # any CDC carries the consumer cursor
    assert am.sndbuf_space == am.sndbuf_len


def test_full_ring_blocks_writer_until_reader_consumes() -> None:
    a, b = open_pair(device("merged"), "merged")
    ring = a.sndbuf_len
    assert a.send(bytes(ring + 500)) == ring
    assert a.send(b"more") == 0, "non-blocking: nothing fits"
    assert b.recv(ring) == bytes(ring)
    assert a.send(b"more") == 4


# ------------------------------------------------------------------ window updates


def test_consumer_update_follows_rmbe_update_limit() -> None:
    """smc_tx_consumer_update: send only if to_confirm > limit and sender_free <= len/2."""
    a, b = open_pair(device("copy"), "copy")
    assert b.rmbe_update_limit == max(16352 // 10, 4608 // 2) == 2304
    a.send(bytes(3000))
    b.recv(2500)  # to_confirm 2500 > 2304, but sender_free = 16352 - 3000 > 8176
    assert a.snapshot().rx_cons_count == 0
    a.send(bytes(7000))  # prod 10000, and this data CDC carries no news of b's cursor
    b.recv(100)  # to_confirm 2600; sender_free = 16352 - 10000 = 6352 <= 8176: update
    assert a.snapshot().rx_cons_count == 2600
    b.recv(2000)  # to_confirm 2000 <= 2304: no update
    assert a.snapshot().rx_cons_count == 2600
    assert b.snapshot().confirmed_count == 2600


def test_bigger_dmb_uses_len_over_10() -> None:
    _a, b = open_pair(device("copy"), "copy", dmb_size=65536)
    assert b.rmbe_update_limit == (65536 - 32) // 10


# ------------------------------------------------------------------ close / abort


@pytest.mark.parametrize("mode", MODES)
def test_abort_flag_reaches_peer(mode: str) -> None:
    dev = device(mode)
    a, b = open_pair(dev, mode)
    a.send(b"tail")
    a.abort()
    sb = b.snapshot()
    assert sb.rx_conn_state_flags & SMC_CONN_PEER_CONN_ABORT
    assert sb.tx_conn_state_flags & SMC_CONN_PEER_CONN_ABORT, "6.12.118 echoes the abort flag"
    assert sb.sk_err == 104  # ECONNRESET
    assert b.recv(100) == b"tail" and b.recv(100) == b"" and b.eof
    with pytest.raises(BrokenPipe):
        b.send(b"x")
    before = dev.snapshot()
    with pytest.raises(ConnectionAborted):
        a.recv(1)
    with pytest.raises(ConnectionAborted):
        a.send(b"x")
    assert dev.snapshot() == before
    b.close()
    assert a.freed and b.freed


@pytest.mark.parametrize("mode", MODES)
def test_close_flag_reaches_peer_and_everything_is_released(mode: str) -> None:
    dev = device(mode)
    a, b = open_pair(dev, mode)
    a.send(b"bye")
    a.close()
    assert b.snapshot().rx_conn_state_flags & SMC_CONN_PEER_CONN_CLOSED
    assert a.sk_state is SmcSockState.PEERCLOSEWAIT1 and not a.freed  # smc_close_active
    assert b.sk_state is SmcSockState.APPCLOSEWAIT1
    assert b.recv(10) == b"bye" and b.eof
    with pytest.raises(ConnectionReset):
        b.send(b"x")
    before = dev.snapshot()
    with pytest.raises(SocketClosed):
        a.send(b"x")
    with pytest.raises(SocketClosed):
        a.close()
    assert dev.snapshot() == before
    b.close()
    assert a.freed and b.freed and dev.snapshot().conns == ()
    assert dev.dmb_cnt == 2, "DMBs stay registered in their link groups for reuse"
    a.lgr.free()
    b.lgr.free()
    assert dev.dmb_cnt == 0 and dev.check_poison() == []


def test_close_with_unread_data_sends_abort() -> None:
    a, b = open_pair(device("copy"), "copy")
    a.send(b"unread")
    b.close()
    assert a.snapshot().rx_conn_state_flags & SMC_CONN_PEER_CONN_ABORT


def test_shutdown_is_half_close() -> None:
    a, b = open_pair(device("merged"), "merged")
    a.shutdown()
    a.shutdown()  # repeat: no-op
    assert b.snapshot().rx_conn_state_flags == SMC_CONN_PEER_DONE_WRITING
    assert b.eof
    with pytest.raises(BrokenPipe):
        a.send(b"x")
    assert b.send(b"reply") == 5
    assert a.recv(10) == b"reply"


def test_killed_connection_dmb_not_reused_until_lgr_free() -> None:
    dev = device("copy")
    lgrs = (SmcdLinkGroup(dev), SmcdLinkGroup(dev))
    a, b = open_pair(dev, "copy", lgrs=lgrs)
    a.abort()
    b.close()
    a2, b2 = open_pair(dev, "copy", lgrs=lgrs)
    assert a2.rmb_desc is not None and a.rmb_desc is not None
    assert a2.rmb_desc.token != a.rmb_desc.token, "killed conn's DMB stays used"
    assert b2.rmb_desc is b.rmb_desc, "closed conn's DMB is reused"
    with pytest.raises(LinkGroupBusy):
        lgrs[0].free()
    a2.close()
    b2.close()
    for lgr in lgrs:
        lgr.free()
    assert dev.dmb_cnt == 0


def test_reused_dmb_is_zeroed() -> None:
    dev = device("merged")
    lgrs = (SmcdLinkGroup(dev), SmcdLinkGroup(dev))
    a, b = open_pair(dev, "merged", lgrs=lgrs)
    a.send(b"secret")
    b.recv(6)
    b.close()
    a.close()
    _a2, b2 = open_pair(dev, "merged", lgrs=lgrs)
    assert b2.rmb_desc is b.rmb_desc
    assert bytes(b2.rmb_desc.cpu_addr) == bytes(16384)  # type: ignore[union-attr]


# ------------------------------------------------------------------ peer misbehaviour


def forged_cdc(prod_count: int, cons_count: int = 0, flags: int = 0) -> bytes:
    raw = bytearray(32)
    raw[0] = 0xFE
    raw[10:14] = prod_count.to_bytes(4, "little")
    raw[18:22] = cons_count.to_bytes(4, "little")
    raw[23] = flags
    return bytes(raw)


def test_forged_producer_cursor_is_rejected() -> None:
    dev = device("copy")
    a, b = open_pair(dev, "copy")
    assert b.rmb_desc is not None
    dev.move_data(b.rmb_desc.token, 0, True, 0, forged_cdc(prod_count=20000))
    with pytest.raises(ProtocolViolation, match=r"prod.count=20000"):
        b.recv(10)
    assert a.snapshot().rx_conn_state_flags & SMC_CONN_PEER_CONN_ABORT


def test_forged_cursor_accepted_without_validation_like_6_12_118() -> None:
    class Kernel61218(SmcdConnection):
        validate_peer_cdc = False

    dev = device("copy")
    _a, b = open_pair(dev, "copy", conn_cls=Kernel61218)
    assert b.rmb_desc is not None
    # one lap ahead in wrap but a count past the ring: diff = size - 0 + 20000
    raw = bytearray(forged_cdc(prod_count=20000))
    raw[8:10] = (1).to_bytes(2, "little")
    dev.move_data(b.rmb_desc.token, 0, True, 0, bytes(raw))
    assert b.bytes_to_rcv == 16352 + 20000 > b.rmb_len, "the kernel trusts the peer's cursor"


# ------------------------------------------------------------------ factory arguments


def test_open_pair_rejects_bad_arguments_without_side_effects() -> None:
    dev = device("merged")
    before = dev.snapshot()
    with pytest.raises(ModeMismatch, match="nocopy"):
        open_pair(dev, "copy")
    with pytest.raises(InvalidArgument, match="mode="):
        open_pair(dev, "zero-copy")
    with pytest.raises(InvalidArgument, match="dmb_size=20000 is not an SMC-D buffer size"):
        open_pair(dev, dmb_size=20000)
    with pytest.raises(InvalidArgument, match="merged mode has no sndbuf"):
        open_pair(dev, sndbuf_size=16384)
    with pytest.raises(InvalidArgument, match="rmbe_update_limit"):
        open_pair(dev, dmb_size=100, strict_sizes=False)
    with pytest.raises(InvalidArgument, match="expected >= 33"):
        open_pair(dev, dmb_size=32, strict_sizes=False, sock_min_sndbuf=0)
    assert dev.snapshot() == before


def test_open_pair_no_space_rolls_back() -> None:
    dev = device("merged", max_dmbs=1)
    with pytest.raises(NoSpace):
        open_pair(dev)
    assert dev.dmb_cnt == 0 and dev.snapshot().conns == ()


def test_recv_negative_is_einval() -> None:
    _a, b = open_pair(device("copy"), "copy")
    with pytest.raises(InvalidArgument, match="n=-1"):
        b.recv(-1)
