"""The kernel target's urgent-data operations without qemu: each adapter call becomes the guest
command that makes the system call (send/recv with MSG_OOB, SIOCATMARK, SO_OOBINLINE), and the
guest's answer becomes the adapter's result; bad arguments are refused by name before anything
reaches the guest. The live comparison with the spec is in test_kernel_lockstep.py."""

from __future__ import annotations

from typing import Any

import pytest

from smcd_check.conformance.kernel.target import OPEN_URG_TIMEOUT, KernelTarget
from smcd_check.conformance.targets.adapter import Capability, Op

PERIOD = (16384 - 32) << 16


class _FakeGuest:
    """Stands in for the serial console: records each command line, answers from a table."""

    def __init__(self, answers: dict[str, tuple[bool, dict[str, str], str]]) -> None:
        self.answers = answers
        self.lines: list[str] = []
        self.timeouts: list[float | None] = []

    def __call__(self, line: str, timeout: float | None = None
                 ) -> tuple[bool, dict[str, str], str]:
        self.lines.append(line)
        self.timeouts.append(timeout)
        return self.answers.get(line.split()[0], (True, {}, ""))


def _target(answers: dict[str, tuple[bool, dict[str, str], str]]) -> tuple[Any, _FakeGuest]:
    target = object.__new__(KernelTarget)  # no boot: only the mapping is under test
    target.timeout = 30.0
    guest = _FakeGuest(answers)
    target._call = guest  # type: ignore[method-assign]
    return target, guest


def _result(obs: Any) -> Any:
    return obs.to_json().get("result")


def _open(start: int, mode: str = "merged") -> Op:
    return Op.make("conn_open_urg", mode=mode, dmb_size=16384, sndbuf_size=0, start=start)


def test_the_kernel_target_declares_urgent_without_the_clc_peer() -> None:
    """urgent needs only sockets: a guest whose BPF peer failed still offers it."""
    from smcd_check.conformance.kernel.target import BASE_CAPS

    assert Capability.URGENT in BASE_CAPS and Capability.CONN_MERGED in BASE_CAPS


@pytest.mark.parametrize(("start", "sent"), [
    (0, 0), (16351, 16351), (PERIOD - 1, PERIOD - 1),
    # a cursor period further is the same cursor state: the guest is not asked for 2 GB
    (PERIOD + 5, 5), (3 * PERIOD + 16352, 16352),
])
def test_open_urg_asks_the_guest_to_move_start_bytes_each_way(start: int, sent: int) -> None:
    target, guest = _target({"openurg": (True, {"a": "4", "b": "5"}, "")})
    obs = target.apply(_open(start))
    assert obs.ok and _result(obs) == {"a": 4, "b": 5}
    assert guest.lines == [f"openurg 16384 {sent}"]
    assert guest.timeouts == [OPEN_URG_TIMEOUT]  # a gigabyte in the guest outlasts 30 s


@pytest.mark.parametrize(("op", "error", "why"), [
    (_open(0, mode="copy"), "EOPNOTSUPP", "merges"),
    (_open(-1), "EINVAL", "start=-1"),
])
def test_open_urg_refuses_what_the_kernel_cannot_do_or_what_is_malformed(
        op: Op, error: str, why: str) -> None:
    target, guest = _target({})
    obs = target.apply(op)
    assert not obs.ok and obs.error == error and why in (obs.detail or "")
    assert guest.lines == []


def test_a_guest_that_cannot_reach_the_start_says_why() -> None:
    target, _ = _target({"openurg": (False, {"error": "EIO"},
                                     "openurg: after 8176 bytes the reader waits for data")})
    obs = target.apply(_open(PERIOD - 2))
    assert not obs.ok and obs.error == "EIO" and "reader waits" in (obs.detail or "")


def test_send_oob_maps_eagain_to_no_room_and_passes_other_errors() -> None:
    target, guest = _target({"sendoob": (False, {"error": "EAGAIN"}, "")})
    obs = target.apply(Op.make("conn_send_oob", conn=3, data="AB01"))
    assert obs.ok and _result(obs) == {"n": 0}
    assert guest.lines == ["sendoob 3 ab01"]
    target, _ = _target({"sendoob": (False, {"error": "EPIPE"}, "Broken pipe")})
    obs = target.apply(Op.make("conn_send_oob", conn=3, data="01"))
    assert not obs.ok and obs.error == "EPIPE"
    target, _ = _target({"sendoob": (True, {"n": "2"}, "")})
    assert _result(target.apply(Op.make("conn_send_oob", conn=3, data="0102"))) == {"n": 2}


def test_recv_oob_returns_the_byte_or_the_kernels_errno() -> None:
    target, guest = _target({"recvoob": (True, {"n": "1", "data": "5a"}, "")})
    obs = target.apply(Op.make("conn_recv_oob", conn=2, max=1))
    assert obs.ok and _result(obs) == {"data": "5a"}
    assert guest.lines == ["recvoob 2 1"]
    target, _ = _target({"recvoob": (False, {"error": "EINVAL"}, "Invalid argument")})
    obs = target.apply(Op.make("conn_recv_oob", conn=2, max=1))
    assert not obs.ok and obs.error == "EINVAL"


@pytest.mark.parametrize(("answer", "atmark"), [("1", True), ("0", False)])
def test_atmark_is_a_boolean(answer: str, atmark: bool) -> None:
    target, guest = _target({"atmark": (True, {"atmark": answer}, "")})
    assert _result(target.apply(Op.make("conn_atmark", conn=1))) == {"atmark": atmark}
    assert guest.lines == ["atmark 1"]


def test_oobinline_takes_a_boolean_only() -> None:
    target, guest = _target({})
    assert target.apply(Op.make("conn_set_oobinline", conn=0, on=True)).ok
    assert target.apply(Op.make("conn_set_oobinline", conn=0, on=False)).ok
    bad = target.apply(Op.make("conn_set_oobinline", conn=0, on=1))
    assert not bad.ok and bad.error == "EINVAL" and "on=1" in (bad.detail or "")
    assert guest.lines == ["oobinline 0 1", "oobinline 0 0"]
