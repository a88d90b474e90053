"""Urgent data (MSG_OOB) in the SMC-D connection model, example by example (Linux 6.12.118).

Each test names the kernel function whose rule it pins. Tests whose name ends in ``_like_6_12_118``
show a behaviour of the kernel read from its source that an application would not expect (the
model follows the kernel there; the report to the lead lists them as findings to try on the real
kernel).
"""

from __future__ import annotations

import pytest

from smcd_check.model.connection import (
    SMC_PROD_URG_DATA_PENDING,
    SMC_PROD_URG_DATA_PRESENT,
    SmcdConnection,
    SmcUrgState,
    SocketClosed,
    open_pair,
)
from smcd_check.model.device import DeviceOpError, InvalidArgument, LoopbackIsm

MODES = ["copy", "merged"]
#: a test-only DMB: 32 header bytes and a data ring of 32 bytes
DMB = 64
RING = DMB - 32


def pair(mode: str, **kw: object) -> tuple[SmcdConnection, SmcdConnection]:
    dev = LoopbackIsm(seed=5, nocopy=(mode == "merged"))
    return open_pair(dev, mode, dmb_size=DMB, strict_sizes=False, sock_min_sndbuf=0, **kw)  # type: ignore[arg-type]


def prod_flags_in_header(conn: SmcdConnection) -> int:
    """``prod_flags`` of the CDC the peer last wrote into ``conn``'s DMB (byte 22)."""
    assert conn.rmb_desc is not None
    return int(conn.rmb_desc.cpu_addr[22])


# ------------------------------------------------------------------ the normal path


@pytest.mark.parametrize("mode", MODES)
def test_urgent_last_byte_goes_out_of_band_and_releases_sender(mode: str) -> None:
    """smc_tx_sendmsg + smc_tx_rdma_writes: the CDC carrying the last byte of a MSG_OOB send has
    urg_data_pending|urg_data_present; smc_cdc_handle_urg_data_arrival keeps the urgent byte out
    of bytes_to_rcv; smc_rx_update_consumer skips it; smc_rx_recv_urg returns it once; the forced
    window update clears the sender's urg_tx_pend (smc_cdc_msg_recv_action)."""
    a, b = pair(mode)
    assert a.send(b"abcX", oob=True) == 4
    assert prod_flags_in_header(b) & (SMC_PROD_URG_DATA_PENDING | SMC_PROD_URG_DATA_PRESENT) == (
        SMC_PROD_URG_DATA_PENDING | SMC_PROD_URG_DATA_PRESENT
    )
    assert a.local_tx_ctrl.prod_flags & (SMC_PROD_URG_DATA_PENDING | SMC_PROD_URG_DATA_PRESENT) == 0
    assert a.urg_tx_pend and a.send(b"more") == 0  # staged: the sender waits
    assert b.readable == 3 and b.urgent_pending and b.urg_state is SmcUrgState.VALID
    assert not b.atmark()  # cons 0, urg_curs 4
    assert b.recv(100) == b"abc"
    assert b.snapshot().rx_urg_skipped_total == 1  # the consumer cursor passed the urgent byte
    # unlike TCP, not "at the mark" now: the skip already moved cons past the urgent byte
    assert not b.atmark()
    assert not a.urg_tx_pend  # the skip forced a window update: everything consumed
    assert b.recv(1, oob=True) == b"X"
    assert b.urg_state is SmcUrgState.READ and not b.urgent_pending
    with pytest.raises(InvalidArgument):
        b.recv(1, oob=True)  # read once
    assert a.send(b"de") == 2 and b.recv(100) == b"de"  # the urgent byte is not in band


@pytest.mark.parametrize("mode", MODES)
def test_oobinline_keeps_urgent_in_band_and_stops_at_it(mode: str) -> None:
    """SO_OOBINLINE: bytes_to_rcv counts the urgent byte; smc_rx_recvmsg stops before it
    (``readable--``), so SIOCATMARK is true there; reading it marks READ and forces the window
    update; smc_rx_recv_urg refuses with EINVAL."""
    a, b = pair(mode)
    b.set_oobinline(True)
    assert a.send(b"abcX", oob=True) == 4
    assert b.readable == 4 and b.urgent_pending
    with pytest.raises(InvalidArgument, match="SO_OOBINLINE"):
        b.recv(1, oob=True)
    assert b.recv(100) == b"abc" and b.atmark()
    assert b.recv(100) == b"X" and not b.atmark()
    assert b.urg_state is SmcUrgState.READ and not a.urg_tx_pend
    assert a.send(b"de") == 2 and b.recv(100) == b"de"


@pytest.mark.parametrize("mode", MODES)
def test_sender_stays_staged_until_peer_consumed_everything(mode: str) -> None:
    """smc_cdc_msg_recv_action clears urg_tx_pend only on a CDC that moves the consumer cursor
    and leaves peer_rmbe_space == peer_rmbe_size: CDCs of the other direction (the peer's data,
    its window updates for our reads) do not release the sender."""
    a, b = pair(mode)
    assert a.send(b"aX", oob=True) == 2
    assert b.send(bytes(RING)) == RING and a.recv(RING) == bytes(RING)
    assert b.send(b"hi") == 2
    assert a.urg_tx_pend and a.send(b"bY", oob=True) == 0
    assert b.recv(10) == b"a" and not a.urg_tx_pend


def test_recv_oob_without_urgent_data_is_einval() -> None:
    """smc_rx_recv_urg: EINVAL unless urg_state is VALID (smc_rx_init starts in READ)."""
    a, b = pair("copy")
    assert b.urg_state is SmcUrgState.READ
    with pytest.raises(InvalidArgument, match="urg_state=READ"):
        b.recv(1, oob=True)
    a.send(b"plain")
    with pytest.raises(InvalidArgument):
        b.recv(1, oob=True)
    assert b.recv(10) == b"plain"


def test_only_last_byte_of_a_complete_oob_send_is_urgent() -> None:
    """smc_tx_sendmsg sets urg_tx_pend only when ``send_remaining`` reaches 0: an OOB send the
    sndbuf takes only part of marks no byte, but leaves urg_data_pending set (it is set on every
    pass of the loop, before the space check)."""
    dev = LoopbackIsm(seed=5, nocopy=False)
    a, b = open_pair(dev, "copy", dmb_size=DMB, sndbuf_size=8, peer_dmb_size=DMB,
                     strict_sizes=False, sock_min_sndbuf=0)
    # the sndbuf frees at each CDC in copy mode, so fill the peer ring first
    assert a.send(bytes(RING)) == RING
    assert a.send(b"0123456789", oob=True) == 8  # sndbuf of 8: partial
    assert not a.urg_tx_pend
    assert a.local_tx_ctrl.prod_flags & SMC_PROD_URG_DATA_PENDING
    assert b.recv(100) == bytes(RING)
    assert b.recv(100) == b"01234567"
    assert not b.urgent_pending
    with pytest.raises(InvalidArgument):
        b.recv(1, oob=True)


def test_empty_oob_send_sets_nothing() -> None:
    """smc_tx_sendmsg's loop never runs for an empty message: no flag, nothing staged."""
    a, _ = pair("merged")
    assert a.send(b"", oob=True) == 0
    assert a.local_tx_ctrl.prod_flags == 0 and not a.urg_tx_pend


def test_new_urgent_byte_replaces_unread_one() -> None:
    """Like TCP: once the first urgent byte was consumed in band (skipped), the sender is
    released; a second urgent byte replaces the unread first one (urg_rx_byte, urg_curs)."""
    a, b = pair("copy")
    assert a.send(b"aX", oob=True) == 2
    assert b.recv(10) == b"a" and not a.urg_tx_pend
    assert a.send(b"bY", oob=True) == 2
    assert b.recv(1, oob=True) == b"Y"
    with pytest.raises(InvalidArgument):
        b.recv(1, oob=True)
    assert b.recv(10) == b"b"


def test_urgent_byte_waits_for_peer_ring_space_then_carries_present() -> None:
    """smc_tx_rdma_writes sets urg_data_present only when the move takes everything prepared
    (``len == to_send``): with a sndbuf bigger than the peer ring, the first CDC carries
    urg_data_pending alone (the peer stays READ: new data clears no state); the rest moves on the
    reader's window update, with urg_data_present."""
    dev = LoopbackIsm(seed=5, nocopy=False)
    a, b = open_pair(dev, "copy", dmb_size=DMB, sndbuf_size=64, strict_sizes=False,
                     sock_min_sndbuf=0)
    msg = bytes(range(39)) + b"Z"
    assert a.send(msg, oob=True) == 40 and a.urg_tx_pend
    assert prod_flags_in_header(b) & (SMC_PROD_URG_DATA_PENDING | SMC_PROD_URG_DATA_PRESENT) == (
        SMC_PROD_URG_DATA_PENDING
    )
    assert b.readable == RING and b.urg_state is SmcUrgState.READ
    assert b.recv(RING) == msg[:RING]  # the window update pulls the last 8 bytes across
    assert prod_flags_in_header(b) & SMC_PROD_URG_DATA_PRESENT
    assert b.urgent_pending and b.readable == 7
    assert b.recv(100) == msg[RING:-1]
    assert b.recv(1, oob=True) == b"Z" and not a.urg_tx_pend


@pytest.mark.parametrize("mode", MODES)
def test_urgent_byte_at_ring_end_reads_from_last_slot(mode: str) -> None:
    """smc_cdc_handle_urg_data_arrival: with ``urg_curs.count == 0`` the urgent byte is the
    ring's last byte."""
    a, b = pair(mode)
    assert a.send(bytes(RING - 1)) == RING - 1 and b.recv(RING) == bytes(RING - 1)
    assert a.send(b"W", oob=True) == 1
    assert b.urg_curs.count == 0 and b.urg_curs.wrap == 1
    assert b.recv(1, oob=True) == b"W"


def test_atmark_and_oob_after_close_are_ebadf() -> None:
    """A closed endpoint's handle is dead: SIOCATMARK and setsockopt say EBADF."""
    _a, b = pair("copy")
    b.close()
    with pytest.raises(SocketClosed):
        b.atmark()
    with pytest.raises(SocketClosed):
        b.set_oobinline(True)
    with pytest.raises(SocketClosed):
        b.recv(1, oob=True)


def test_open_pair_initial_bytes_must_be_non_negative_int() -> None:
    dev = LoopbackIsm(seed=1, nocopy=True)
    with pytest.raises(InvalidArgument, match="initial_bytes"):
        open_pair(dev, "merged", initial_bytes=-1)


@pytest.mark.parametrize("mode", MODES)
def test_initial_bytes_starts_cursors_near_wrap_overflow(mode: str) -> None:
    """The test hook puts every cursor where 65,535 laps plus a bit would have left it; data
    still flows across the 0xffff -> 0 wrap overflow."""
    start = 0xFFFF * RING + RING - 3
    a, b = pair(mode, initial_bytes=start)
    assert b.local_tx_ctrl.cons.wrap == 0xFFFF and a.local_tx_ctrl.prod.count == RING - 3
    assert a.send(b"0123456") == 7
    assert b.recv(100) == b"0123456"
    assert b.local_tx_ctrl.cons == a.local_tx_ctrl.prod and b.local_tx_ctrl.cons.wrap == 0


# ------------------------------------------------------------------ what 6.12.118 does oddly


@pytest.mark.parametrize("mode", MODES)
def test_lone_urgent_read_oob_first_stalls_sender_like_6_12_118(mode: str) -> None:
    """smc_rx_recv_urg sets urg_state = READ *before* smc_rx_update_consumer, and sets
    urg_rx_skip_pend only when ``smc_curs_diff(cons, urg_curs) > 1``: a lone urgent byte read
    out of band before any in-band read (cons just before it, the poll(EPOLLPRI) -> recv(MSG_OOB)
    pattern) is never skipped, so the consumer cursor stays one byte short and the sender's
    urg_tx_pend is never cleared: every later send returns 0 (a blocking one would hang)."""
    a, b = pair(mode)
    assert a.send(b"X", oob=True) == 1
    assert b.atmark() and b.readable == 0
    assert b.recv(1, oob=True) == b"X"
    assert b.recv(10) == b""  # urg_state is READ: no skip any more
    assert b.atmark()  # still one byte before urg_curs
    assert a.urg_tx_pend and a.peer_rmbe_space == a.peer_rmbe_size - 1
    assert a.send(b"next") == 0


def test_lone_urgent_read_in_band_first_is_skipped() -> None:
    """The same lone urgent byte, with an in-band read first: smc_rx_recvmsg_data_available
    skips it (urg_state VALID), the forced window update releases the sender."""
    a, b = pair("copy")
    assert a.send(b"X", oob=True) == 1
    assert b.recv(10) == b""
    assert not a.urg_tx_pend and not b.atmark()
    assert b.recv(1, oob=True) == b"X"
    assert a.send(b"next") == 4 and b.recv(10) == b"next"


def test_oob_recv_of_zero_bytes_consumes_urgent_without_skip_like_6_12_118() -> None:
    """smc_rx_recv_urg with len 0 returns 0 (MSG_TRUNC) after setting urg_state = READ and
    without touching the consumer cursor: the in-band read then never skips the urgent byte."""
    a, b = pair("copy")
    assert a.send(b"abX", oob=True) == 3
    assert b.recv(0, oob=True) == b""
    with pytest.raises(InvalidArgument):
        b.recv(1, oob=True)
    assert b.recv(10) == b"ab"
    assert b.snapshot().rx_urg_skipped_total == 0
    assert a.urg_tx_pend and a.send(b"c") == 0


def test_staged_oob_send_announces_pending_and_peer_loses_urgent_like_6_12_118() -> None:
    """smc_tx_sendmsg sets urg_data_pending before it sees urg_tx_pend: an OOB send refused
    because urgent data is staged still leaves the flag in local_tx_ctrl. The next CDC of that
    endpoint without new data (its window update for the other direction) makes the peer's
    smc_cdc_msg_recv_action set urg_state = NOTYET over the VALID urgent byte: the byte is then
    neither readable out of band (EINVAL) nor skipped in band, and the sender stays staged."""
    a, b = pair("copy")
    assert a.send(b"aX", oob=True) == 2
    assert a.send(b"Y", oob=True) == 0  # staged; urg_data_pending is set again
    assert a.local_tx_ctrl.prod_flags & SMC_PROD_URG_DATA_PENDING
    # b -> a traffic; a's read sends a window update (forced by nothing but half the ring)
    assert b.send(bytes(RING)) == RING
    assert a.recv(RING) == bytes(RING)
    assert b.urg_state is SmcUrgState.NOTYET
    with pytest.raises(InvalidArgument, match="NOTYET"):
        b.recv(1, oob=True)
    assert b.recv(10) == b"a"
    assert b.snapshot().rx_urg_skipped_total == 0  # X stays in the ring, uncounted
    assert a.urg_tx_pend


def test_atmark_true_without_any_urgent_data_like_6_12_118() -> None:
    """SIOCATMARK is ``smc_curs_diff(cons, urg_curs) == 1`` whatever urg_state says, and
    smc_curs_diff counts any wrap difference as one lap: with urg_curs still (0, 0) a reader at
    count ``len - 1`` in any later lap is "at the mark" with no urgent byte ever sent."""
    a, b = pair("copy")
    stream = bytes(range(2 * RING - 1))
    got = bytearray()
    for i in range(0, len(stream), 7):
        assert a.send(stream[i : i + 7]) == len(stream[i : i + 7])
        got += b.recv(100)
        if len(got) == RING - 1:
            assert not b.atmark()  # same wrap: diff is 0
    assert got == stream
    assert b.local_tx_ctrl.cons.wrap == 1 and b.local_tx_ctrl.cons.count == RING - 1
    assert b.atmark() and not b.urgent_pending


def test_urgent_after_wrap_overflow_not_skipped_like_6_12_118() -> None:
    """smc_curs_comp compares wraps as plain numbers: an urgent byte in the first lap after the
    u16 wrap overflow (urg_curs.wrap 0) while the reader is still in lap 0xffff compares as
    *behind* the reader; smc_rx_update_consumer takes ``diff < -1`` for "read past" and marks
    READ without skipping: the byte is lost out of band and the sender stays staged."""
    start = 0xFFFF * RING + RING - 4
    a, b = pair("copy", initial_bytes=start)
    assert a.send(b"abcdefX", oob=True) == 7  # bytes 'abcd' end lap 0xffff, 'efX' start lap 0
    assert b.urg_curs.wrap == 0 and b.local_tx_ctrl.cons.wrap == 0xFFFF
    assert b.recv(2) == b"ab"
    assert b.urg_state is SmcUrgState.READ
    with pytest.raises(InvalidArgument):
        b.recv(1, oob=True)
    assert b.recv(100) == b"cdef"
    assert b.snapshot().rx_urg_skipped_total == 0 and a.urg_tx_pend


def test_urgent_same_bytes_before_wrap_overflow_is_fine() -> None:
    """The same send one lap earlier (no overflow between reader and urgent byte) works."""
    start = 0xFFFE * RING + RING - 4
    a, b = pair("copy", initial_bytes=start)
    assert a.send(b"abcdefX", oob=True) == 7
    assert b.recv(2) == b"ab" and b.urg_state is SmcUrgState.VALID
    assert b.recv(100) == b"cdef" and b.recv(1, oob=True) == b"X"
    assert not a.urg_tx_pend


class Kernel61218(SmcdConnection):
    """The model without its CDC validation: what 6.12.118 itself does with the cursors."""

    validate_peer_cdc = False


@pytest.mark.parametrize("cls", [Kernel61218, SmcdConnection], ids=["kernel", "hardened"])
def test_stale_urgent_state_skips_a_phantom_byte_after_wrap_overflow_like_6_12_118(
    cls: type[SmcdConnection],
) -> None:
    """Without SO_OOBINLINE, smc_rx_update_consumer leaves urg_state VALID after skipping the
    urgent byte (READ comes only with the OOB read or once the reader is 2 bytes past). With
    ``urg_curs`` at (0xffff, 0) - the urgent byte is the last byte of lap 0xfffe - smc_curs_comp
    sees the reader at (0, len - 1) in the next lap as one byte *before* the mark (plain wrap
    compare across the overflow) and skips again: a real data byte is dropped, bytes_to_rcv and
    the consumer cursor disagree, the reader later gets a stale byte, and the sender's
    peer_rmbe_space exceeds the ring so it overwrites unread data. The hardened model catches
    the bogus consumer cursor at the sender (cons-overrun) and aborts."""
    ring = 4
    dev = LoopbackIsm(seed=1, nocopy=False)
    a, b = open_pair(dev, "copy", dmb_size=32 + ring, strict_sizes=False, sock_min_sndbuf=0,
                     initial_bytes=0xFFFF * ring - 1, conn_cls=cls)
    assert a.send(b"X", oob=True) == 1
    assert (b.urg_curs.wrap, b.urg_curs.count) == (0xFFFF, 0)
    assert b.recv(10) == b"" and not a.urg_tx_pend  # lone urgent byte skipped, VALID stays
    assert b.urg_state is SmcUrgState.VALID
    assert a.send(b"abcd") == 4 and b.recv(4) == b"abcd"  # cons (0, 0): comp says +4
    assert a.send(b"efgh") == 4 and b.recv(3) == b"efg"  # cons (0, 3): comp says +1: skip
    assert b.snapshot().rx_urg_skipped_total == 2  # 'h' skipped as if it were urgent
    assert b.readable == 1
    assert b.recv(1) == b"e"  # 'h' is lost, a stale byte comes instead
    if cls is SmcdConnection:
        with pytest.raises(DeviceOpError, match="cons-overrun"):
            a.send(b"i")  # the window update of that read consumed more than was in flight
        return
    assert a.peer_rmbe_space == ring + 1  # more than the ring: unread data gets overwritten
    assert a.send(b"ijkl") == 4 and b.recv(10) == b"jkli"
