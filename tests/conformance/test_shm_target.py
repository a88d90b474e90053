"""``--target shm``: the concurrent shared-memory implementation passes the catalogue."""

from __future__ import annotations

import pytest
from click.testing import CliRunner

from smcd_check.cli.main import cli
from smcd_check.conformance.catalogue.registry import catalogue
from smcd_check.conformance.catalogue.urgent import CASES as URGENT_CASES
from smcd_check.conformance.runner.lockstep import run_lockstep
from smcd_check.conformance.runner.run import ExpectationCache, Verdict, run_cases
from smcd_check.conformance.targets.adapter import Capability, Op
from smcd_check.conformance.targets.load import load_target
from smcd_check.conformance.targets.model_target import ModelTarget
from smcd_check.conformance.targets.shm_target import ShmTarget
from smcd_check.conformance.targets.spec_target import SpecTarget


def test_shm_target_loads_by_name_with_its_capabilities() -> None:
    target = load_target("shm")
    try:
        assert target.name == "shm"
        assert Capability.CONN_MERGED in target.capabilities
        assert Capability.CLC not in target.capabilities  # honestly unsupported
    finally:
        target.close()


def test_shm_passes_the_datapath_lifecycle_and_cursor_areas() -> None:
    """Every supported case of these areas is OK (real TCP handshake per pair, real shm)."""
    target = load_target("shm")
    cases = [c for c in catalogue() if c.area.value in ("datapath", "lifecycle", "cursor")]
    try:
        run = run_cases(target, cases, ExpectationCache(SpecTarget()))
    finally:
        target.close()
    bad = [f"{r.case.id}: {r.verdict.name} {r.message}" for r in run.results
           if r.verdict not in (Verdict.OK, Verdict.UNSUPPORTED)]
    assert not bad, "\n".join(bad)
    ok = sum(r.verdict is Verdict.OK for r in run.results)
    unsupported = [r for r in run.results if r.verdict is Verdict.UNSUPPORTED]
    assert ok >= 110 and ok + len(unsupported) == len(cases)


def test_conform_target_shm_exits_0_on_the_whole_catalogue() -> None:
    result = CliRunner().invoke(cli, ["conform", "--target", "shm", "--lockstep", "5"])
    assert result.exit_code == 0, result.output
    assert "FAIL" in result.output and "UNSUPPORTED" in result.output  # the table's headers


# --- capability urgent (issue 11): urgent data and both directions on the concurrent target


def test_shm_passes_every_urgent_and_duplex_case() -> None:
    """The cases of the urgent capability (MSG_OOB, SIOCATMARK, SO_OOBINLINE, both ways at
    once, the ring's end and the 16-bit wrap counter's overflow) are OK on shm, none
    UNSUPPORTED: each compares the concurrent implementation with spec/duplex.py step by
    step."""
    target = load_target("shm")
    try:
        assert Capability.URGENT in target.capabilities
        run = run_cases(target, list(URGENT_CASES), ExpectationCache(SpecTarget()))
    finally:
        target.close()
    assert len(run.results) == len(URGENT_CASES) >= 20
    bad = {r.case.id: f"{r.verdict.name} {r.message}" for r in run.results
           if r.verdict is not Verdict.OK}
    assert bad == {}


def test_shm_agrees_with_the_spec_on_urgent_lockstep_walks() -> None:
    """Random walks (Hypothesis) with urgent data both ways from a drawn starting cursor (0,
    the ring's end, the wrap counter's overflow): shm and spec/duplex.py agree at every
    step."""
    target = ShmTarget()
    try:
        res = run_lockstep(target, examples=25, areas=("urgent",))
    finally:
        target.close()
    assert res is not None and res.verdict is Verdict.OK, res.message
    assert "areas: urgent" in res.message


@pytest.mark.parametrize(("op", "error", "named"), [
    (Op.make("conn_open_urg", mode="merged", dmb_size=16384, sndbuf_size=0, start=-1),
     "EINVAL", "start"),
    (Op.make("conn_open_urg", mode="merged", dmb_size=1000, sndbuf_size=0, start=0),
     "EINVAL", "dmb_size"),
    (Op.make("conn_open_urg", mode="mixed", dmb_size=16384, sndbuf_size=0, start=0),
     "EINVAL", "mode"),
    (Op.make("conn_atmark", conn=99), "EBADF", "99"),
    (Op.make("conn_recv_oob", conn=99, max=1), "EBADF", "99"),
])
def test_shm_refuses_bad_urgent_arguments_like_the_model(op: Op, error: str, named: str) -> None:
    """A bad argument is refused with the model target's errno, the argument named."""
    shm, model = ShmTarget(), ModelTarget()
    try:
        seen, ref = shm.apply(op), model.apply(op)
    finally:
        shm.close()
    assert not seen.ok and seen.error == error == ref.error, (seen, ref)
    assert named in seen.detail


@pytest.mark.parametrize(("name", "args", "named"), [
    ("conn_set_oobinline", {"on": "yes"}, "on"),
    ("conn_send_oob", {"data": "not hex"}, "data"),
    ("conn_recv_oob", {"max": 1}, "urgent"),
])
def test_shm_refuses_bad_urgent_calls_on_an_open_pair(name: str, args: dict, named: str) -> None:
    """On an open urgent pair: a non-boolean SO_OOBINLINE and a non-hex payload are EINVAL, and
    recv(MSG_OOB) with no urgent byte is EINVAL (smc_rx_recv_urg; never EAGAIN), as on the
    model target."""
    seen = {}
    for target in (ShmTarget(), ModelTarget()):
        try:
            pair = target.apply(Op.make("conn_open_urg", mode="merged", dmb_size=16384,
                                        sndbuf_size=0, start=0))
            seen[target.name] = target.apply(Op.make(name, conn=pair.get("b"), **args))
        finally:
            target.close()
    assert not seen["shm"].ok and seen["shm"].error == seen["model"].error == "EINVAL", seen
    assert named in seen["shm"].detail
