"""The runner's verdicts: OK, NON-STRICT, FAIL (expected vs seen), UNSUPPORTED, ERROR."""

from __future__ import annotations

from typing import Any

import pytest

from smcd_check.conformance.catalogue.lifecycle import tok
from smcd_check.conformance.catalogue.registry import catalogue
from smcd_check.conformance.runner.run import (
    Area,
    Case,
    ExpectationCache,
    Pin,
    Verdict,
    run_case,
    run_cases,
    step,
)
from smcd_check.conformance.targets.adapter import Capability, Observation, Op, TargetBroken
from smcd_check.conformance.targets.model_target import ModelTarget
from smcd_check.conformance.targets.spec_target import SpecTarget

ORACLE = ExpectationCache(SpecTarget())


class Scripted(ModelTarget):
    """The model with one operation's answer replaced (or made to raise)."""

    def __init__(self, op_name: str, answer: Any) -> None:
        super().__init__(name="scripted")
        self.op_name, self.answer = op_name, answer
        self.resets = 0

    def reset(self) -> None:
        self.resets = getattr(self, "resets", 0) + 1
        super().reset()

    def apply(self, op: Op) -> Observation:
        if op.name == self.op_name:
            if isinstance(self.answer, Exception):
                raise self.answer
            return self.answer
        return super().apply(op)


def _case(*steps: Any, pins: tuple[Pin, ...] = ()) -> Case:
    return Case(id="lifecycle.test.case", area=Area.LIFECYCLE, title="t", description="d",
                source="test", steps=tuple(steps), pins=pins)


REG_READ = _case(step("dev_register_dmb", size=16384, bind="d1"),
                 step("dev_read_dmb", token=tok("d1"), offset=0, size=4),
                 step("dev_unregister_dmb", token=0xDEAD))


def test_a_faithful_target_is_OK() -> None:
    res = run_case(ModelTarget(), REG_READ, ORACLE)
    assert res.verdict is Verdict.OK, res.message
    assert [s.verdict for s in res.steps] == [Verdict.OK] * 3


def test_a_wrong_value_is_FAIL_with_expected_and_seen() -> None:
    target = Scripted("dev_read_dmb", Observation.success({"data": "00000001"}))
    res = run_case(target, REG_READ, ORACLE)
    assert res.verdict is Verdict.FAIL
    bad = res.failing_step
    assert bad is not None and bad.index == 1
    assert bad.expected == Observation.success({"data": "00000000"})
    assert bad.seen == Observation.success({"data": "00000001"})
    assert "data: expected '00000000', seen '00000001'" in res.message


def test_another_errno_for_a_refusal_is_NON_STRICT_unless_the_step_is_strict() -> None:
    target = Scripted("dev_unregister_dmb", Observation.failure("ENOENT"))
    res = run_case(target, REG_READ, ORACLE)
    assert res.verdict is Verdict.NON_STRICT
    assert "ENOENT" in res.message and "EINVAL" in res.message
    strict = _case(step("dev_unregister_dmb", token=0xDEAD, strict=True))
    assert run_case(target, strict, ORACLE).verdict is Verdict.FAIL


def test_success_where_the_spec_refuses_is_FAIL_and_stops_the_case() -> None:
    target = Scripted("dev_unregister_dmb", Observation.success())
    case = _case(step("dev_unregister_dmb", token=0xDEAD),
                 step("dev_register_dmb", size=16384))
    res = run_case(target, case, ORACLE)
    assert res.verdict is Verdict.FAIL
    assert len(res.steps) == 1
    assert "expected error EINVAL, seen success" in res.message


def test_a_missing_capability_is_UNSUPPORTED_not_failed() -> None:
    clc_case = next(c for c in catalogue() if c.area is Area.CLC)
    res = run_case(ModelTarget(), clc_case, ORACLE)
    assert res.verdict is Verdict.UNSUPPORTED
    assert "clc" in res.message


@pytest.mark.parametrize("boom", [TargetBroken("wire cut"), KeyError("oops")])
def test_a_target_that_breaks_is_ERROR_and_the_run_goes_on(boom: Exception) -> None:
    target = Scripted("dev_read_dmb", boom)
    second = _case(step("dev_register_dmb", size=16384))
    run = run_cases(target, [REG_READ, second], ORACLE)
    assert [r.verdict for r in run.results] == [Verdict.ERROR, Verdict.OK]
    assert "target broke" in run.results[0].message
    assert run.bad


def test_a_result_missing_its_keys_is_ERROR() -> None:
    target = Scripted("dev_register_dmb", Observation.success({"token": 1}))
    res = run_case(target, REG_READ, ORACLE)
    assert res.verdict is Verdict.ERROR
    assert "lacks ['sba_idx', 'len']" in res.message


def test_a_pin_the_spec_contradicts_makes_the_case_an_ERROR_of_the_catalogue() -> None:
    case = _case(step("dev_unregister_dmb", token=0xDEAD),
                 pins=(Pin(index=0, error="ENOENT", source="made up"),))
    res = run_case(ModelTarget(), case, ExpectationCache(SpecTarget()))
    assert res.verdict is Verdict.ERROR
    assert "catalogue" in res.message and "kernel refuses with ENOENT" in res.message


def test_a_pin_outside_the_steps_is_refused_when_the_case_is_built() -> None:
    with pytest.raises(ValueError, match="pin for step 3"):
        _case(step("dev_register_dmb", size=16384), pins=(Pin(index=3, error=None),))


def test_handles_are_compared_symbolically_so_a_reused_token_is_seen() -> None:
    """A target that hands out the same token for two live DMBs fails (tokens must be unique)."""

    class SameToken(ModelTarget):
        def apply(self, op: Op) -> Observation:
            obs = super().apply(op)
            if op.name == "dev_register_dmb" and obs.ok:
                return Observation.success({"token": 42, "sba_idx": obs.get("sba_idx"),
                                            "len": obs.get("len")})
            return obs

    case = next(c for c in catalogue() if c.id == "lifecycle.dmb.tokens-distinct")
    res = run_case(SameToken(), case, ORACLE)
    assert res.verdict is Verdict.FAIL
    assert "token: expected '<d2.token>', seen '<d1.token>'" in res.message


def test_counts_per_result_and_area() -> None:
    cases = [c for c in catalogue() if c.area in (Area.LIFECYCLE, Area.CLC)]
    run = run_cases(ModelTarget(), cases, ORACLE)
    by_area = run.counts_by_area()
    assert by_area["clc"][Verdict.UNSUPPORTED] == sum(c.area is Area.CLC for c in cases)
    assert by_area["lifecycle"][Verdict.OK] == sum(c.area is Area.LIFECYCLE for c in cases)
    assert not run.bad
    assert Capability.DEVICE in run.capabilities


def test_EOPNOTSUPP_for_an_operation_the_spec_allows_is_UNSUPPORTED() -> None:
    """A target that cannot perform an operation at all (the kernel has no abort system call)
    says EOPNOTSUPP at run time: the case is UNSUPPORTED, not failed."""
    target = Scripted("dev_read_dmb", Observation.failure("EOPNOTSUPP", "no such call"))
    res = run_case(target, REG_READ, ORACLE)
    assert res.verdict is Verdict.UNSUPPORTED
    assert "cannot do it (no such call)" in res.message


def test_EOPNOTSUPP_where_the_spec_expects_another_error_is_UNSUPPORTED_not_non_strict() -> None:
    """The kernel target cannot abort at all, so its EOPNOTSUPP for an abort the spec refuses
    (EBADF after close) is the target's limit, not an errno difference: UNSUPPORTED. (Found on
    `conform --target kernel --strict -k 'datapath.merged.ends*.close-?-abort-?'`, which
    exited 1 with four NON-STRICT.)"""
    target = Scripted("dev_unregister_dmb", Observation.failure("EOPNOTSUPP", "no such call"))
    res = run_case(target, REG_READ, ORACLE)
    assert res.steps[2].expected.error not in (None, "EOPNOTSUPP")
    assert res.verdict is Verdict.UNSUPPORTED, res.message
