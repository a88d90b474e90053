"""``--target shm``: the concurrent shared-memory implementation passes the catalogue."""

from __future__ import annotations

from click.testing import CliRunner

from smcd_check.cli.main import cli
from smcd_check.conformance.catalogue.registry import catalogue
from smcd_check.conformance.runner.run import ExpectationCache, Verdict, run_cases
from smcd_check.conformance.targets.adapter import Capability
from smcd_check.conformance.targets.load import load_target
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
