"""Urgent data and both directions in the conformance suite (issue 11): the ``urgent``
capability, its catalogue cases, the lockstep walk and the zoo mutants."""

from __future__ import annotations

import pytest

from smcd_check.conformance.catalogue.registry import catalogue
from smcd_check.conformance.catalogue.urgent import CASES, PERIOD
from smcd_check.conformance.runner.lockstep import run_lockstep
from smcd_check.conformance.runner.run import ExpectationCache, Verdict, run_case, run_cases
from smcd_check.conformance.targets.adapter import Capability, Op
from smcd_check.conformance.targets.model_target import ModelTarget
from smcd_check.conformance.targets.spec_target import SpecTarget
from smcd_check.conformance.targets.zoo import load_mutant

ORACLE = ExpectationCache(SpecTarget())


def _spec_run() -> list:
    spec = SpecTarget()
    return [run_case(spec, case, ORACLE) for case in CASES]


def test_the_urgent_cases_are_registered_and_need_the_capability() -> None:
    ids = {c.id for c in catalogue()}
    assert {c.id for c in CASES} <= ids
    assert all(Capability.URGENT in c.needs for c in CASES)
    assert any(".urgent." in c.id for c in CASES) and any(".duplex." in c.id for c in CASES)


def test_the_spec_passes_its_own_urgent_cases_and_models_every_step() -> None:
    """The spec is the oracle: every case is OK on it, including its pinned kernel facts
    (EINVAL from smc_rx_recv_urg, the stale SIOCATMARK), and no step is outside its model."""
    for res in _spec_run():
        assert res.verdict is Verdict.OK, (res.case.id, res.message)
        assert not [s for s in res.steps if s.seen is not None and not s.seen.ok
                    and s.seen.error == "ENOTMODELLED"], res.case.id


def test_the_cases_observe_what_they_are_about() -> None:
    """Taken together the cases see an urgent byte read out of band, recv(MSG_OOB) refused,
    SIOCATMARK both true and false, traffic from both ends, and cursors past the 16-bit wrap
    counter's overflow: none of these is vacuous."""
    seen: dict[str, set] = {"oob": set(), "mark": set(), "senders": set()}
    wrapped = False
    for res in _spec_run():
        for s in res.steps:
            obs = s.seen
            if s.op.name == "conn_recv_oob":
                seen["oob"].add("byte" if obs.ok else obs.error)
            if s.op.name == "conn_atmark":
                seen["mark"].add(obs.get("atmark"))
            if s.op.name in ("conn_send", "conn_send_oob") and obs.ok and obs.get("n"):
                seen["senders"].add(s.op.arg("conn").key)
            if s.op.name == "conn_cursors" and obs.get("cons")[0] == 0 \
                    and res.case.steps[0].op.arg("start") >= PERIOD - 16352:
                wrapped = True
    assert seen["oob"] == {"byte", "EINVAL"}
    assert seen["mark"] == {True, False}
    assert seen["senders"] == {"a", "b"}
    assert wrapped


def test_the_model_passes_every_urgent_case() -> None:
    res = run_cases(ModelTarget(), list(CASES), ORACLE)
    assert {r.case.id: r.verdict for r in res.results if r.verdict is not Verdict.OK} == {}


def test_a_target_without_the_capability_gets_unsupported_never_ok() -> None:
    """A target that does not declare ``urgent`` (the C example target) is never
    given an urgent case: each is UNSUPPORTED."""
    target = ModelTarget()
    target.capabilities = target.capabilities - {Capability.URGENT}  # type: ignore[misc]
    res = run_cases(target, list(CASES), ORACLE)
    assert {r.verdict for r in res.results} == {Verdict.UNSUPPORTED}


@pytest.mark.parametrize(("op", "error"), [
    (Op.make("conn_open_urg", mode="merged", dmb_size=16384, sndbuf_size=0, start=-1), "EINVAL"),
    (Op.make("conn_open_urg", mode="merged", dmb_size=1000, sndbuf_size=0, start=0), "EINVAL"),
    (Op.make("conn_open_urg", mode="copy", dmb_size=16384, sndbuf_size=16384, start=0),
     "ENOTMODELLED"),
    (Op.make("conn_atmark", conn=7), "EBADF"),
])
def test_the_spec_backend_refuses_bad_arguments_by_name(op: Op, error: str) -> None:
    obs = SpecTarget().apply(op)
    assert not obs.ok and obs.error == error, obs


def test_urgent_pairs_and_ordinary_pairs_do_not_mix() -> None:
    """Ordinary pair calls on an urgent pair's handle are answered from spec/duplex.py, and an
    ordinary pair's handle is unknown to the urgent operations."""
    spec = SpecTarget()
    plain = spec.apply(Op.make("conn_open", mode="merged", dmb_size=16384, sndbuf_size=0))
    urg = spec.apply(Op.make("conn_open_urg", mode="merged", dmb_size=16384, sndbuf_size=0,
                             start=0))
    assert spec.apply(Op.make("conn_atmark", conn=plain.get("a"))).error == "EBADF"
    assert spec.apply(Op.make("conn_send", conn=urg.get("b"), data="abcd")).get("n") == 2
    got = spec.apply(Op.make("conn_recv", conn=urg.get("a"), max=9))
    assert got.get("data") == "abcd"
    assert spec.apply(Op.make("conn_recv", conn=plain.get("b"), max=9)).get("data") == ""


@pytest.mark.parametrize(("mutant", "case_id"), [
    ("urg-flag-not-cleared", "datapath.merged.urgent.send-waits"),
    ("urg-byte-in-band", "datapath.merged.urgent.oob-read"),
])
def test_each_urgent_mutant_is_killed_by_the_case_for_its_bug(mutant: str, case_id: str) -> None:
    res = run_cases(load_mutant(mutant), list(CASES), ORACLE)
    failed = {r.case.id for r in res.results if r.verdict is Verdict.FAIL}
    assert case_id in failed


def test_the_model_survives_urgent_walks_and_a_mutant_does_not() -> None:
    """Random walks with urgent data both ways from a drawn starting cursor: the model agrees
    with spec/duplex.py at every step; a mutant that counts the urgent byte in band is caught."""
    ok = run_lockstep(ModelTarget(), examples=10, areas=("urgent",))
    assert ok is not None and ok.verdict is Verdict.OK, ok.message
    assert "areas: urgent" in ok.message
    bad = run_lockstep(load_mutant("urg-byte-in-band"), examples=30, shrink_seconds=4,
                       areas=("urgent",))
    assert bad is not None and bad.verdict is Verdict.FAIL
    assert "(urgent)" in bad.message
