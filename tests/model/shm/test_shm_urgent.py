"""Urgent data (MSG_OOB, SIOCATMARK, SO_OOBINLINE) on the shared-memory implementation, as its
users see it: what ``recv`` returns in band and out of band, where the mark is, what the CDC
header in shared memory carries, and both directions at once from threads.

Every pair runs on a real host (softirq thread); ``settle_all`` waits until the peer's softirq
has handled every CDC before a test looks. No timing assumptions: timeouts only bound a hang.
"""

from __future__ import annotations

import threading
import time

import pytest

from smcd_check.model.shm.conn import (
    InvalidArgument,
    ShmConnection,
    SmcUrgState,
    Timeout,
    WouldBlock,
)
from smcd_check.model.shm.device import ShmLoopbackIsm
from smcd_check.model.shm.handshake import open_pair
from smcd_check.model.shm.host import ShmHost, settle_all
from smcd_check.model.shm.layout import (
    SMC_PROD_URG_DATA_PENDING,
    SMC_PROD_URG_DATA_PRESENT,
    SMCD_CDC_MSG_SIZE,
    unpack_cdc,
)

T = 30.0  # seconds; only bounds a hang
D = 16384
RING = D - SMCD_CDC_MSG_SIZE
URG_FLAGS = SMC_PROD_URG_DATA_PENDING | SMC_PROD_URG_DATA_PRESENT


@pytest.fixture(params=["merged", "copy"])
def env(request: pytest.FixtureRequest):
    dev = ShmLoopbackIsm.create(nocopy=request.param == "merged", seed=5)
    host = ShmHost(dev)
    yield dev, host
    host.close()
    dev.close(remove=True)


def _pair(env, start: int = 0) -> tuple[ShmConnection, ShmConnection, ShmHost]:
    _dev, host = env
    a, b = open_pair(host, dmb_size=D, start=start)
    return a, b, host


def _header_flags(conn: ShmConnection) -> int:
    """``prod_flags`` of the CDC header in ``conn``'s DMB, as the peer last wrote it."""
    assert conn.rmb_desc is not None
    _type, _prod, cons = unpack_cdc(conn.rmb_desc.region.peek(0, SMCD_CDC_MSG_SIZE))
    return cons.prod_flags


def test_the_urgent_byte_is_read_out_of_band_and_skipped_in_band(env) -> None:
    """send 5 bytes, then 3 with MSG_OOB: recv(MSG_OOB) returns the last one, a plain recv the
    7 others and never the urgent byte (it is not counted in bytes_to_rcv)."""
    a, b, host = _pair(env)
    a.sendall(b"hello")
    assert a.send(b"xy!", oob=True) == 3
    settle_all(host)
    assert b.urgent_pending and b.snapshot()["bytes_to_rcv"] == 7
    assert b.recv(1, oob=True) == b"!"
    assert not b.urgent_pending
    assert b.recv(100, block=False) == b"helloxy"
    settle_all(host)
    assert b.recv(100, block=False) == b""
    with pytest.raises(InvalidArgument):  # read once: smc_rx_recv_urg finds no VALID byte
        b.recv(1, oob=True)


def test_the_cdc_header_in_shared_memory_carries_the_urgent_flags(env) -> None:
    """The CDC that announces the urgent byte has urg_data_pending and urg_data_present in the
    prod_flags byte of the 32-byte header in the peer's DMB; the sender clears both after it,
    so its next CDC carries neither."""
    a, b, host = _pair(env)
    a.sendall(b"ab")
    settle_all(host)
    assert _header_flags(b) & URG_FLAGS == 0
    a.send(b"c!", oob=True)
    settle_all(host)
    assert _header_flags(b) & URG_FLAGS == URG_FLAGS
    assert a.tx_prod_flags.peek() & URG_FLAGS == 0  # cleared after the CDC that carried them
    assert b.recv(100) == b"abc"  # the skip forces a window update: a's urg_tx_pend clears
    settle_all(host)
    a.sendall(b"more")
    settle_all(host)
    assert _header_flags(b) & URG_FLAGS == 0
    assert b.recv(100) == b"more"


def test_the_urgent_mark_survives_an_overwritten_cdc_and_a_second_read(env) -> None:
    """The peer's softirq has not run yet when a window update from the urgent sender
    overwrites the CDC header that announced the urgent byte (6.12.118 clears the flags after
    that CDC, so the mark would be lost and the byte read as data); and it reads the same
    header again later (6.12.118 would turn the byte NOTYET). Both times the urgent byte is
    found: the prod cursor word repeats the mark until the cursor moves on."""
    dev, host = env
    quiet = ShmHost(dev, name="quiet", start=False)  # b's softirq: run by hand below
    try:
        a, b = open_pair(host, quiet, dmb_size=D)
        b.sendall(b"B" * 9000)  # a reads this below: a window update from a follows
        settle_all(host)
        a.send(b"x!", oob=True)
        assert a.recv(9000) == b"B" * 9000  # its window update overwrites b's CDC header
        assert _header_flags(b) & URG_FLAGS == 0  # the cons word: as 6.12.118 writes it
        b.rx_tasklet()
        assert b.urgent_pending and b.snapshot()["bytes_to_rcv"] == 1
        b.rx_tasklet()  # the same header read again
        assert b.urgent_pending and b.snapshot()["urg_state"] == SmcUrgState.VALID
        assert b.recv(1, oob=True) == b"!"
        assert b.recv(10) == b"x"
    finally:
        quiet.close()


def test_oobinline_keeps_the_byte_in_band_and_a_read_stops_at_it(env) -> None:
    """With SO_OOBINLINE the urgent byte is counted; a read stops one byte short of it
    ("always stop at urgent Byte"), SIOCATMARK is true there, recv(MSG_OOB) is EINVAL, and the
    next read returns the byte in band; past it SIOCATMARK is false."""
    a, b, host = _pair(env)
    b.set_oobinline(True)
    a.sendall(b"data")
    a.send(b"U!", oob=True)
    settle_all(host)
    assert b.snapshot()["bytes_to_rcv"] == 6
    assert b.recv(100) == b"dataU"
    assert b.atmark()
    with pytest.raises(InvalidArgument):
        b.recv(1, oob=True)
    assert b.recv(100) == b"!"
    assert not b.atmark()
    assert b.snapshot()["urg_state"] == SmcUrgState.READ


def test_atmark_before_at_and_after_the_mark(env) -> None:
    """SIOCATMARK is true only when the next byte to read is the urgent one: inline, before,
    at and after; out of band, when an urgent byte arrives right at our consumer cursor, until
    the next plain recv skips it."""
    a, b, host = _pair(env)
    b.set_oobinline(True)
    a.sendall(b"0123456789")
    a.send(b"U", oob=True)
    settle_all(host)
    assert not b.atmark()
    assert b.recv(4) == b"0123"
    assert not b.atmark()
    assert b.recv(100) == b"456789"
    assert b.atmark()
    assert b.recv(100) == b"U"
    assert not b.atmark()
    # out of band: a lone urgent byte arriving where cons is
    settle_all(host)
    b.set_oobinline(False)
    a.send(b"V", oob=True)
    settle_all(host)
    assert b.atmark() and b.urgent_pending
    assert b.recv(10, block=False) == b""  # smc_rx_recvmsg_data_available skips it
    assert not b.atmark()
    assert b.recv(1, oob=True) == b"V"


def test_a_second_urgent_byte_replaces_one_never_read_out_of_band(env) -> None:
    """The reader reads in band past the first urgent byte without recv(MSG_OOB): it is
    skipped, the sender may send again, and the second urgent byte replaces it: recv(MSG_OOB)
    returns the second, once."""
    a, b, host = _pair(env)
    a.sendall(b"abcd")
    a.send(b"X", oob=True)
    settle_all(host)
    assert b.recv(100) == b"abcd"
    settle_all(host)
    assert a.send(b"efY", oob=True) == 3
    settle_all(host)
    assert b.recv(1, oob=True) == b"Y"
    assert b.recv(100) == b"ef"
    with pytest.raises(InvalidArgument):
        b.recv(1, oob=True)


def test_every_send_waits_while_an_urgent_byte_is_staged(env) -> None:
    """After send(MSG_OOB) nothing more is accepted until the peer consumed everything, the
    urgent byte included (urg_tx_pend, smc_tx_wait): non-blocking is EAGAIN, a blocking send
    sleeps and completes once the reader read past the mark."""
    a, b, host = _pair(env)
    a.send(b"12U", oob=True)
    settle_all(host)
    with pytest.raises(WouldBlock):
        a.send(b"x", block=False)
    done = threading.Event()

    def writer() -> None:
        a.sendall(b"after", timeout=T)
        done.set()

    t = threading.Thread(target=writer)
    t.start()
    assert not done.wait(0.2)  # still staged: the reader has not read anything
    assert b.recv(100) == b"12"  # the skip forces the window update that releases the sender
    t.join(T)
    assert done.is_set()
    assert b.recv(100, timeout=T) == b"after"


def test_urgent_byte_in_the_last_slot_and_across_the_wrap_counter_overflow(env) -> None:
    """Cursors start two bytes before the end of lap 0xffff: an urgent message of 3 bytes ends
    in wrap 0 (urg_curs (0, 2)); the byte before urg_curs is found across the overflow, the
    rest reads in band, and the sender is released afterwards."""
    period = RING << 16
    a, b, host = _pair(env, start=period - 2)
    assert b.snapshot()["cons"] == (0xFFFF, RING - 2)
    a.sendall(b"<")
    a.send(b"=>!", oob=True)
    settle_all(host)
    snap = b.snapshot()
    assert snap["urg_curs"] == (0, 2) and snap["urg_rx_byte"] == ord("!")
    assert b.recv(100) == b"<=>"
    assert b.recv(1, oob=True) == b"!"
    assert b.snapshot()["cons"] == (0, 2)
    settle_all(host)
    a.sendall(b"next")
    settle_all(host)
    assert b.recv(100) == b"next"


def test_the_urgent_byte_in_the_last_slot_of_the_ring(env) -> None:
    """A lone urgent byte at offset RING-1: the producer cursor wraps to (1, 0) and
    urg_rx_byte is read from the ring's last byte."""
    a, b, host = _pair(env, start=RING - 1)
    a.send(b"Z", oob=True)
    settle_all(host)
    assert b.snapshot()["urg_curs"] == (1, 0)
    assert b.recv(1, oob=True) == b"Z"


def test_both_directions_at_once_from_threads(env) -> None:
    """Both ends write (plain data, then a 1-byte MSG_OOB message, 60 rounds) and read inline
    at the same time, each from its own threads: each direction's stream arrives intact, every
    urgent byte is returned by a read of its own (a read stops at it), and afterwards both
    urgent states are READ and no sender is staged."""
    a, b, host = _pair(env)
    a.set_oobinline(True)
    b.set_oobinline(True)
    rounds = 60

    def script(seed: int) -> tuple[list[bytes], bytes]:
        chunks = []
        for i in range(rounds):
            n = (seed * 131 + i * 977) % 3000 + 1
            chunks.append(bytes((seed + i + k * 7) % 251 for k in range(n)))
            chunks.append(bytes([251 + (i + seed) % 5]))  # the urgent byte (never in the data)
        return chunks, b"".join(chunks)

    plans = {"a": script(1), "b": script(2)}
    got: dict[str, list[bytes]] = {"a": [], "b": []}
    errors: list[BaseException] = []

    def writer(conn: ShmConnection, chunks: list[bytes]) -> None:
        try:
            for i, chunk in enumerate(chunks):
                if i % 2:
                    assert conn.send(chunk, oob=True, timeout=T) == 1
                else:
                    conn.sendall(chunk, timeout=T)
        except BaseException as exc:
            errors.append(exc)

    def reader(conn: ShmConnection, into: list[bytes], total: int) -> None:
        try:
            n = 0
            while n < total:
                data = conn.recv(4096, timeout=T)
                into.append(data)
                n += len(data)
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=writer, args=(a, plans["a"][0])),
               threading.Thread(target=writer, args=(b, plans["b"][0])),
               threading.Thread(target=reader, args=(b, got["b"], len(plans["a"][1]))),
               threading.Thread(target=reader, args=(a, got["a"], len(plans["b"][1])))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(4 * T)
    assert not errors, errors
    assert not any(t.is_alive() for t in threads)
    for reader_end, writer_end in (("b", "a"), ("a", "b")):
        reads = got[reader_end]
        assert b"".join(reads) == plans[writer_end][1]
        urgent_reads = [r for r in reads if r[-1] >= 251]
        assert urgent_reads == [bytes([c[0]]) for c in plans[writer_end][0][1::2]]
    settle_all(host)
    for conn in (a, b):
        snap = conn.snapshot()
        assert snap["urg_state"] == SmcUrgState.READ and not snap["urg_tx_pend"]
        assert snap["bytes_to_rcv"] == 0


def test_a_blocked_reader_skips_a_lone_urgent_byte_like_6_12_118(env) -> None:
    """A reader asleep in a blocking recv when a lone urgent byte (nothing else unread) arrives
    without SO_OOBINLINE is woken by its CDC, skips the byte (smc_rx_recvmsg_data_available on
    the next pass of smc_rx_recvmsg's loop) and sleeps on: the skip confirms the consumer cursor,
    so the sender's urg_tx_pend is released and its next send goes at once; the reader returns
    that byte. Measured on Linux 6.12.118 (`python docs/repro/run_repro.py
    urgent_blocked_reader`: next send after 0 ms, the blocked recv returns "x"); the byte stays
    readable out of band (urg_state VALID without SO_OOBINLINE)."""
    a, b, _host = _pair(env)
    box: dict[str, object] = {}

    def reader() -> None:
        try:
            box["got"] = b.recv(10, timeout=4 * T)
        except Timeout as exc:
            box["got"] = exc

    t = threading.Thread(target=reader)
    t.start()
    time.sleep(0.2)  # the reader is asleep in recv
    a.send(b"!", oob=True)
    a.sendall(b"x", timeout=T)  # not held back by urg_tx_pend: the sleeping reader skipped
    t.join(4 * T)
    assert box["got"] == b"x"
    assert b.recv(1, oob=True) == b"!"
