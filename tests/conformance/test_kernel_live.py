"""The real kernel, live: boot the project's cached Linux 6.12 image with SMC_LO in qemu (TCG)
and compare what it does with the spec (issue 8).

One boot runs every fast scenario (about 15-25 s); the 0xffff wrap transfer (1.07 GB through a
16 KiB DMB, about 15 s in the guest) has its own boot; the conformance target gets a third.
Skips with the reason when qemu, busybox-static, gcc or the cached image is missing
(`smcd-check kernel build` makes the image; CI's .ci/system-deps does both).
"""

from __future__ import annotations

from typing import Any

import pytest

from smcd_check.conformance.kernel import checks as C
from smcd_check.conformance.kernel import qemu as K
from smcd_check.conformance.kernel.build import find_image

pytestmark = pytest.mark.kernel


def _skip_reason() -> str | None:
    why = K.qemu_missing()
    if why:
        return f"cannot boot the test kernel: missing {why}"
    if find_image() is None:
        return "no cached kernel image: run `smcd-check kernel build` (CI: .ci/system-deps)"
    return None


SKIP = _skip_reason()
if SKIP:
    pytestmark = [pytest.mark.kernel, pytest.mark.skip(reason=SKIP)]

FAST = [s.name for s in K.SCENARIOS if not s.slow and not s.finding]


@pytest.fixture(scope="module")
def boot() -> K.RunResult:
    return K.run(FAST)


@pytest.fixture(scope="module")
def checks(boot: K.RunResult) -> list[C.Check]:
    return C.all_checks({n: dict(r.data) for n, r in boot.scenarios.items()}, FAST)


def test_every_scenario_ran_in_one_boot(boot: K.RunResult) -> None:
    assert not boot.timed_out, boot.console_tail
    assert boot.missing == (), boot.console_tail
    errors = {n: r.error for n, r in boot.scenarios.items() if r.error}
    assert not errors


@pytest.mark.parametrize("kind", ["codec", "handshake", "outcome", "marker", "trace",
                                  "transfer", "claim"])
def test_the_kernel_agrees_with_the_spec(checks: list[C.Check], kind: str) -> None:
    """Live version of the golden checks: the codec round-trips every CLC message the kernel
    sent, the spec's handshake on the kernel's inputs sends the same bytes and ends the same
    way, and every cursor snapshot is allowed. A disagreement is printed with its evidence."""
    mine = [c for c in checks if c.kind == kind]
    assert mine
    bad = [f"{c.scenario} {c.subject}: {c.detail} {dict(c.evidence)}" for c in mine if not c.ok]
    assert not bad, "\n".join(bad)


def test_smcd_is_really_used_and_falls_back_only_where_expected(boot: K.RunResult) -> None:
    modes: dict[str, set[int]] = {}
    for name, res in boot.scenarios.items():
        socks = C.diag_socks(dict(res.data), "open") or C.diag_socks(dict(res.data), "before")
        modes[name] = {int(s["mode"]) for s in socks}
    assert modes["smcd"] == {C.MODE_SMCD}
    assert modes["data"] == {C.MODE_SMCD}
    assert modes["noueid"] == {C.MODE_FALLBACK}
    assert modes["tcp-server"] == {C.MODE_FALLBACK}


@pytest.mark.slow
def test_wrap_counter_past_0xffff_live() -> None:
    """Over 65,536 laps of a 16 KiB DMB: the data arrives intact and the spec allows every
    cursor snapshot of the way (the 16-bit wrap counter wraps to 0 and goes on)."""
    res = K.run(["wrap"])
    assert not res.timed_out and "wrap" in res.scenarios, res.console_tail
    data: dict[str, Any] = dict(res.scenarios["wrap"].data)
    assert data["error"] == ""
    (t,) = data["transfers"]
    assert t["received"] == t["total"] > 65536 * 16352 and t["mismatch_at"] == -1
    trace = C.trace_checks("wrap", data)
    assert trace and all(c.ok for c in trace), [c.detail for c in trace]


def test_conformance_target_cursors_follow_the_kernel() -> None:
    """The kernel target: a merged 16 KiB pair; 100 bytes sent move the writer's producer by
    100 and arrive at the reader as bytes_to_rcv 100 with the same producer; reading them
    returns them; a closed handle answers EBADF."""
    from smcd_check.conformance.kernel.target import KernelTarget
    from smcd_check.conformance.targets.adapter import Op

    t = KernelTarget()
    try:
        pair = t.apply(Op.make("conn_open", mode="merged", dmb_size=16384, sndbuf_size=0))
        assert pair.ok, pair.detail
        a, b = pair.get("a"), pair.get("b")
        data = bytes(range(100)).hex()
        assert t.apply(Op.make("conn_send", conn=a, data=data)).get("n") == 100
        ca = t.apply(Op.make("conn_cursors", conn=a))
        cb = t.apply(Op.make("conn_cursors", conn=b))
        assert ca.get("prod") == [0, 100] and cb.get("peer_prod") == [0, 100]
        assert cb.get("bytes_to_rcv") == 100
        assert ca.get("peer_rmbe_space") == 16352 - 100
        got = t.apply(Op.make("conn_recv", conn=b, max=1000))
        assert got.get("data") == data and got.get("eof") is False
        assert t.apply(Op.make("conn_close", conn=a)).ok
        assert t.apply(Op.make("conn_send", conn=a, data="00")).error == "EBADF"
        refused = t.apply(Op.make("conn_open", mode="copy", dmb_size=16384, sndbuf_size=16384))
        assert refused.error == "EOPNOTSUPP"
    finally:
        t.close()
