"""The shared-memory implementation as its users see it: threads, processes, TCP handshake.

No timing assumptions: every wait has a generous timeout and only bounds a hang.
"""

from __future__ import annotations

import hashlib
import multiprocessing as mp
import threading

import pytest

from smcd_check.model.shm.conn import ConnReset, PipeError, WouldBlock
from smcd_check.model.shm.device import BrokenPipe, InvalidArgument, NoSpace, ShmLoopbackIsm
from smcd_check.model.shm.handshake import HandshakeConfig, open_pair
from smcd_check.model.shm.host import ShmHost, settle_all
from smcd_check.model.shm.socket import SmcdListener, connect

T = 30.0  # seconds; only bounds a hang


@pytest.fixture(params=["merged", "copy"])
def pair(request: pytest.FixtureRequest):
    dev = ShmLoopbackIsm.create(nocopy=request.param == "merged", seed=3)
    host = ShmHost(dev)
    a, b = open_pair(host, dmb_size=16384)
    yield a, b, host
    host.close()
    dev.close(remove=True)


def test_a_megabyte_arrives_intact_through_a_16k_dmb(pair) -> None:
    """1 MiB in odd-sized pieces through a 16 KiB DMB (many wraps, window updates, blocked
    sends) arrives byte for byte while a second thread reads."""
    a, b, _ = pair
    data = bytes((i * 7 + (i >> 9)) & 0xFF for i in range(1 << 20))
    got = bytearray()

    def reader() -> None:
        while len(got) < len(data):
            got.extend(b.recv(5000, timeout=T))

    t = threading.Thread(target=reader)
    t.start()
    view = memoryview(data)
    for off in range(0, len(data), 3333):
        a.sendall(view[off:off + 3333], timeout=T)
    t.join(T)
    assert bytes(got) == data
    s = b.snapshot()
    assert s["bytes_recv_total"] == len(data) and s["bytes_to_rcv"] == 0


def test_non_blocking_send_into_a_full_ring_would_block(pair) -> None:
    """With nothing read, the sender fills the peer ring (and copy mode its sndbuf) and then
    gets EAGAIN instead of waiting."""
    a, _b, host = pair
    sent = 0
    with pytest.raises(WouldBlock):
        for _ in range(100):
            sent += a.send(b"x" * 4096, block=False)
            settle_all(host)
    assert sent >= 16352


def test_close_gives_eof_and_reset(pair) -> None:
    """After the writer's close the reader gets the rest, then EOF; its send is ECONNRESET."""
    a, b, host = pair
    a.sendall(b"last words", timeout=T)
    a.close()
    settle_all(host)
    assert b.recv(100, timeout=T) == b"last words"
    assert b.recv(100, timeout=T) == b"" and b.eof
    with pytest.raises(ConnReset):
        b.send(b"x", timeout=T)
    b.close()
    settle_all(host)
    assert a.free_done and b.free_done


def test_abort_stops_the_peer(pair) -> None:
    """An abort reaches the peer: its send fails with EPIPE (sk_err set), recv sees EOF."""
    a, b, host = pair
    a.abort()
    settle_all(host)
    with pytest.raises(PipeError):
        b.send(b"x", timeout=T)
    assert b.recv(10, timeout=T) == b""


def test_device_refuses_bad_calls_and_leaves_no_dmb() -> None:
    """Unknown tokens, out-of-bounds moves and a full slot table are refused with the kernel's
    errnos; a signal with no connection on the slot is EPIPE after the copy."""
    dev = ShmLoopbackIsm.create(max_dmbs=2, seed=1)
    try:
        d1 = dev.register_dmb(16384)
        dev.register_dmb(16384)
        with pytest.raises(NoSpace):
            dev.register_dmb(16384)
        with pytest.raises(InvalidArgument):
            dev.move_data(d1.dmb_tok, 0, True, 16380, b"12345678")
        with pytest.raises(BrokenPipe):
            dev.move_data(d1.dmb_tok, 0, True, 40, b"abc")
        assert dev.read_dmb(d1.dmb_tok, 40, 3) == b"abc"
        g = dev.attach_dmb(d1.dmb_tok)
        dev.unregister_dmb(d1.dmb_tok)
        assert dev.lookup(d1.dmb_tok) is not None  # the ghost keeps it
        dev.detach_dmb(g.dmb_tok)
        assert dev.lookup(d1.dmb_tok) is None
        with pytest.raises(InvalidArgument):
            dev.attach_dmb(d1.dmb_tok)
    finally:
        dev.close(remove=True)


def _client(path: str, address: tuple[str, int], q: mp.Queue) -> None:  # pragma: no cover
    dev = ShmLoopbackIsm.open(path, seed=11)
    host = ShmHost(dev, name="child")
    s = connect(host, address, config=HandshakeConfig(dmb_size=16384), timeout=T)
    s.settimeout(T)
    data = bytes(range(256)) * 1024
    s.sendall(data)
    s.shutdown()
    reply = s.recv(64)
    q.put((s.conn is not None and s.conn.mode.value, hashlib.sha256(data).hexdigest(), reply))
    s.close()
    host.close()
    dev.close()


def test_two_processes_talk_over_shared_memory_after_a_tcp_handshake() -> None:
    """A client process connects (CLC over TCP), sends 256 KiB through real shared memory and
    shuts down; the server reads to EOF and answers: no fallback, every byte intact."""
    dev = ShmLoopbackIsm.create(seed=5)
    host = ShmHost(dev, name="parent")
    lst = SmcdListener(host, config=HandshakeConfig(dmb_size=16384))
    ctx = mp.get_context("spawn")
    q = ctx.Queue()
    p = ctx.Process(target=_client, args=(dev.path, lst.address, q))
    p.start()
    try:
        s, _ = lst.accept(timeout=T)
        assert s.conn is not None and s.fallback is None
        s.settimeout(T)
        h = hashlib.sha256()
        while chunk := s.recv(65536):
            h.update(chunk)
        s.sendall(b"ok")
        mode, digest, reply = q.get(timeout=T)
        assert (mode, digest, reply) == ("merged", h.hexdigest(), b"ok")
        s.close()
    finally:
        p.join(T)
        if p.is_alive():
            p.kill()
        lst.close()
        host.close()
        dev.close(remove=True)
