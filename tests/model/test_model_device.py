"""Unit tests of the loopback-ism device model (smc_loopback.c semantics, 6.12.118)."""

from __future__ import annotations

import random

import pytest

from smcd_check.model.device import (
    POISON_FREE,
    SMC_LO_MAX_DMBS,
    SMC_LO_RESERVED_CHID,
    BrokenPipe,
    InvalidArgument,
    LoopbackIsm,
    NetUnreachable,
    NoSpace,
    NotSupported,
    OutOfBoundsWrite,
    SmcdGid,
)
from smcd_check.model.errors import ModelError


def unchanged(dev: LoopbackIsm, exc: type[Exception], call) -> Exception:  # type: ignore[no-untyped-def]
    before = dev.snapshot()
    with pytest.raises(exc) as info:
        call()
    assert dev.snapshot() == before
    return info.value


def test_identity_ops() -> None:
    dev = LoopbackIsm(seed=1)
    assert dev.get_chid() == SMC_LO_RESERVED_CHID == 0xFFFF
    assert dev.support_dmb_nocopy() is True
    assert LoopbackIsm(seed=1, nocopy=False).support_dmb_nocopy() is False
    gid = dev.get_local_gid()
    dev.query_remote_gid(gid)  # its own GID: reachable
    unchanged(dev, NetUnreachable, lambda: dev.query_remote_gid(SmcdGid(gid=gid.gid, gid_ext=0)))
    assert dev.max_dmbs == SMC_LO_MAX_DMBS == 5000


def test_tokens_are_random_unique_and_reproducible() -> None:
    a, b = LoopbackIsm(seed=7), LoopbackIsm(seed=7)
    ta = [a.register_dmb(64).dmb_tok for _ in range(200)]
    tb = [b.register_dmb(64).dmb_tok for _ in range(200)]
    assert ta == tb, "same seed, same tokens"
    assert len(set(ta)) == 200
    assert [LoopbackIsm(seed=8).register_dmb(64).dmb_tok] != ta[:1]
    assert LoopbackIsm(rng=random.Random(7)).register_dmb(64).dmb_tok == ta[0]


def test_register_takes_lowest_free_slot_and_zeroed_memory() -> None:
    dev = LoopbackIsm(seed=1)
    d0, d1, d2 = (dev.register_dmb(100) for _ in range(3))
    assert (d0.sba_idx, d1.sba_idx, d2.sba_idx) == (0, 1, 2)
    assert bytes(d1.cpu_addr) == bytes(100) and d1.dmb_len == 100
    dev.unregister_dmb(d1.dmb_tok)
    assert dev.register_dmb(50).sba_idx == 1


def test_slot_limit_gives_enospc_and_changes_nothing() -> None:
    dev = LoopbackIsm(seed=1, max_dmbs=3)
    for _ in range(3):
        dev.register_dmb(64)
    err = unchanged(dev, NoSpace, lambda: dev.register_dmb(64))
    assert isinstance(err, ModelError) and err.errno_name == "ENOSPC" and err.rc == -28


def test_unknown_token_is_einval_and_changes_nothing() -> None:
    dev = LoopbackIsm(seed=1)
    d = dev.register_dmb(64)
    bad = d.dmb_tok ^ 1
    for call in (
        lambda: dev.unregister_dmb(bad),
        lambda: dev.attach_dmb(bad),
        lambda: dev.detach_dmb(bad),
        lambda: dev.move_data(bad, 0, True, 0, b"x"),
    ):
        err = unchanged(dev, InvalidArgument, call)
        assert err.errno_name == "EINVAL" and err.rc == -22  # type: ignore[attr-defined]
        assert "unknown DMB token" in str(err)


def test_double_unregister_is_einval() -> None:
    dev = LoopbackIsm(seed=1)
    d = dev.register_dmb(64)
    dev.unregister_dmb(d.dmb_tok)
    assert dev.dmb_cnt == 0 and dev.lookup(d.dmb_tok) is None
    unchanged(dev, InvalidArgument, lambda: dev.unregister_dmb(d.dmb_tok))


def test_refcount_keeps_memory_and_token_until_last_reference() -> None:
    """6.12.118: after the owner unregisters, an attached ghost keeps node, slot and token."""
    dev = LoopbackIsm(seed=1)
    d = dev.register_dmb(64)
    ghost = dev.attach_dmb(d.dmb_tok)
    assert ghost.cpu_addr.obj is d.cpu_addr.obj, "the ghost sndbuf is the same memory"
    info = dev.lookup(d.dmb_tok)
    assert info is not None and info.refcnt == 2
    dev.unregister_dmb(d.dmb_tok)
    info = dev.lookup(d.dmb_tok)
    assert info is not None and info.refcnt == 1
    assert dev.snapshot().slots_used == 1
    # a new attach on the unregistered-but-referenced node still succeeds
    dev.attach_dmb(d.dmb_tok)
    dev.detach_dmb(d.dmb_tok)
    dev.detach_dmb(d.dmb_tok)
    assert dev.lookup(d.dmb_tok) is None and dev.dmb_cnt == 0
    assert dev.snapshot().slots_used == 0
    assert bytes(ghost.cpu_addr) == bytes([POISON_FREE]) * 64
    unchanged(dev, InvalidArgument, lambda: dev.detach_dmb(d.dmb_tok))


def test_write_through_stale_ghost_is_detected() -> None:
    dev = LoopbackIsm(seed=1)
    d = dev.register_dmb(64)
    ghost = dev.attach_dmb(d.dmb_tok)
    dev.detach_dmb(d.dmb_tok)
    dev.unregister_dmb(d.dmb_tok)
    assert dev.check_poison() == []
    ghost.cpu_addr[40] = 1  # use after free through a kept view
    assert dev.check_poison() == [d.dmb_tok]


def test_attach_detach_not_supported_without_nocopy() -> None:
    dev = LoopbackIsm(seed=1, nocopy=False)
    d = dev.register_dmb(64)
    unchanged(dev, NotSupported, lambda: dev.attach_dmb(d.dmb_tok))
    unchanged(dev, NotSupported, lambda: dev.detach_dmb(d.dmb_tok))


@pytest.mark.parametrize("nocopy", [False, True])
def test_move_data_copies_and_checks_bounds(nocopy: bool) -> None:
    dev = LoopbackIsm(seed=1, nocopy=nocopy)
    d = dev.register_dmb(64)
    dev.move_data(d.dmb_tok, d.sba_idx, False, 10, b"abc")
    # v6.10 copies a data move; a nocopy device skips it (the data is already there)
    assert bytes(d.cpu_addr[10:13]) == (bytes(3) if nocopy else b"abc")
    # past the end: EINVAL, nothing copied (6.12.97+ bounds check); sf=1 reaches the check
    unchanged(dev, InvalidArgument, lambda: dev.move_data(d.dmb_tok, 0, True, 62, b"xyz"))
    unchanged(dev, InvalidArgument, lambda: dev.move_data(d.dmb_tok, 0, True, -1, b"x"))
    # exactly up to the end is fine (then EPIPE: no connection on the slot, after the copy)
    with pytest.raises(BrokenPipe) as info:
        dev.move_data(d.dmb_tok, 0, True, 61, b"xyz")
    assert info.value.errno_name == "EPIPE"
    assert bytes(d.cpu_addr[61:64]) == b"xyz"


def test_move_data_without_bounds_check_is_v6_12_0() -> None:
    dev = LoopbackIsm(seed=1, nocopy=False, bounds_check=False)
    d = dev.register_dmb(64)
    dev.move_data(d.dmb_tok, 0, False, 61, b"xyz")
    # no -EINVAL: the write goes ahead; the model refuses to corrupt memory and says so
    with pytest.raises(OutOfBoundsWrite, match="past the DMB"):
        dev.move_data(d.dmb_tok, 0, False, 62, b"xyz")


def test_nocopy_move_data_without_signal_returns_at_once() -> None:
    """v6.11+: sf = 0 returns 0 before the lookup: even an unknown token or a bad offset."""
    dev = LoopbackIsm(seed=1)
    d = dev.register_dmb(64)
    before = dev.snapshot()
    assert dev.move_data(12345, 0, False, 10_000, b"zzz") == 0
    assert dev.move_data(d.dmb_tok, 0, False, 0, b"zzz") == 0
    assert dev.snapshot() == before
    assert dev.stats.nocopy_skips == 2 and dev.stats.data_bytes_copied == 0


class _Conn:
    def __init__(self) -> None:
        self.killed = False
        self.runs = 0

    def _rx_tasklet(self) -> None:
        self.runs += 1


def test_signal_schedules_tasklet_and_epipe_when_killed_or_gone() -> None:
    dev = LoopbackIsm(seed=1)
    d = dev.register_dmb(64)
    conn = _Conn()
    dev.set_conn(d.sba_idx, conn)
    dev.move_data(d.dmb_tok, 0, True, 0, b"hdr")
    assert conn.runs == 1, "the rx tasklet ran when the call returned"
    with dev.local_bh_disable():
        dev.move_data(d.dmb_tok, 0, True, 0, b"h1")
        dev.move_data(d.dmb_tok, 0, True, 0, b"h2")
        assert conn.runs == 1 and dev.pending_tasklets == 1, "queued once (coalesced)"
    assert conn.runs == 2
    conn.killed = True
    with pytest.raises(BrokenPipe):
        dev.move_data(d.dmb_tok, 0, True, 0, b"x")
    conn.killed = False
    dev.unset_conn(d.sba_idx)
    with pytest.raises(BrokenPipe):
        dev.move_data(d.dmb_tok, 0, True, 0, b"x")


def test_bad_register_arguments() -> None:
    dev = LoopbackIsm(seed=1)
    for bad in (0, -5, 1.5, "64", True):
        unchanged(dev, InvalidArgument, lambda bad=bad: dev.register_dmb(bad))
    with pytest.raises(InvalidArgument, match="max_dmbs"):
        LoopbackIsm(max_dmbs=0)
