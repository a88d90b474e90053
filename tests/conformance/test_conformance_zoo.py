"""The bug zoo: every mutant is killed by at least one FAIL; the clean model is not."""

from __future__ import annotations

import pytest

from smcd_check.conformance.catalogue.registry import catalogue
from smcd_check.conformance.runner.run import ExpectationCache, Verdict, run_cases
from smcd_check.conformance.targets.model_target import ModelTarget
from smcd_check.conformance.targets.spec_target import SpecTarget
from smcd_check.conformance.targets.zoo import MUTANTS, kill_table, load_mutant


def test_the_zoo_has_at_least_ten_mutants_each_naming_a_kernel_fix() -> None:
    assert len(MUTANTS) >= 10
    for m in MUTANTS.values():
        assert m.summary and m.kernel_fix
        assert load_mutant(m.name).name == f"zoo:{m.name}"


@pytest.fixture(scope="module")
def rows() -> list[dict]:
    """The kill table over the whole catalogue (computed once for this module)."""
    return kill_table()


def test_every_mutant_is_killed_and_the_clean_model_survives(rows: list[dict]) -> None:
    survivors = [r["mutant"] for r in rows if not r["killed_by"]]
    assert not survivors
    clean = run_cases(ModelTarget(), catalogue(), ExpectationCache(SpecTarget()))
    assert not [r.case.id for r in clean.results if r.verdict is Verdict.FAIL]


def test_a_mutant_is_killed_by_the_case_written_for_its_bug(rows: list[dict]) -> None:
    """Each mutant is killed (among others) by the case written for its bug class."""
    killers = {r["mutant"]: r["killed_by"] for r in rows}
    assert "lifecycle.move.bounds-past-end" in killers["move-no-bounds"]
    assert "lifecycle.attach.outlives-owner" in killers["unregister-frees-attached"]
    assert "datapath.copy.flow.update-below-limit" in killers["wnd-limit-min"]
    assert "datapath.copy.flow.update-small-window" in killers["sender-free-reversed"]
    assert "clc.proposal.eid-cnt-over-max" in killers["clc-no-count-checks"]
    assert "clc.proposal.v2-ext-offset-past-message" in killers["clc-no-offset-checks"]
    assert "datapath.copy.close.peer-reads-rest" in killers["eof-before-data"]
    assert "lifecycle.move.sf0-no-lookup" in killers["move-sf0-looks-up"]
    assert "lifecycle.lgr.other-peer-new" in killers["lgr-reuse-ignores-peer"]


def test_each_handshake_mutant_is_killed_by_its_case(rows: list[dict]) -> None:
    """The handshake mutants (EOF, timeout, connection leak, sync error, prefix length) are each
    killed by the case written for the kernel rule they break."""
    killers = {r["mutant"]: r["killed_by"] for r in rows}
    assert "handshake.client.timeout-waiting-accept" in killers["hs-timeout-eagain"]
    assert "handshake.client.eof-waiting-accept" in killers["hs-eof-as-timeout"]
    assert "handshake.server.timeout-waiting-confirm" in killers["hs-abort-leaks-conn"]
    assert "handshake.pair.sync-error" in killers["hs-syncerr-ignored"]
    assert "handshake.v1.prefix-other-length" in killers["hs-prefix-ignores-length"]


def test_a_different_decline_code_is_non_strict_but_a_missing_effect_is_a_failure() -> None:
    """NON-STRICT covers 'declined with another code' only: the same messages and the same
    link-group effects. Dropping the sync-error effect is a FAIL although both sides decline."""
    from smcd_check.conformance.catalogue.registry import by_id
    from smcd_check.conformance.runner.run import run_case

    res = run_case(load_mutant("hs-syncerr-ignored"), by_id("handshake.pair.sync-error"),
                   ExpectationCache(SpecTarget()))
    assert res.verdict is Verdict.FAIL and "effects" in res.message


def test_each_link_group_mutant_is_killed_by_its_case(rows: list[dict]) -> None:
    """A wrong smcd_lgr_match is caught where the second pair must join the first pair's link
    group; a DMB leaked at the free is caught where the killed sockets are closed and the
    terminated link group must give every DMB back."""
    killers = {r["mutant"]: r["killed_by"] for r in rows}
    for mode in ("copy", "merged"):
        assert f"lifecycle.lgr.{mode}.second-pair-joins" in killers["lgr-match-no-gid-ext"]
        assert f"lifecycle.lgr.{mode}.terminate-dmbs-wait-for-close" in killers["dmb-leak-killed"]
        assert f"lifecycle.lgr.{mode}.terminate-dmbs-wait-for-close" in killers["dmb-leak-used"]


def test_the_free_work_and_device_removal_mutants_are_killed_by_their_cases(
        rows: list[dict]) -> None:
    """A join that leaves the delayed free queued is caught where lgr_free_work must find no
    work (EAGAIN); a removed device that still takes connections where conn_open must be
    ENODEV after lgr_dev_remove."""
    killers = {r["mutant"]: r["killed_by"] for r in rows}
    for mode in ("copy", "merged"):
        assert f"lifecycle.lgr.{mode}.join-cancels-free" in killers["join-keeps-free-work"]
        assert f"lifecycle.lgr.{mode}.dev-remove" in killers["removed-device-connects"]


def test_each_cdc_mutant_is_killed_and_a_wrong_reason_is_a_failure(rows: list[dict]) -> None:
    """Without the receiver's checks every refusal case fails; refusing a step back as an
    overrun (the same outcome for another reason) fails too: the check's name is compared."""
    killers = {r["mutant"]: r["killed_by"] for r in rows}
    for mode in ("copy", "merged"):
        assert f"datapath.{mode}.cdc-rx.prod-count-length" in killers["cdc-unchecked"]
        assert f"datapath.{mode}.cdc-rx.flags-cleared" in killers["cdc-unchecked"]
        assert f"datapath.{mode}.cdc-rx.prod-backwards-byte" in killers["cdc-backwards-as-overrun"]
        assert f"datapath.{mode}.cdc-rx.prod-overrun-byte" not in killers[
            "cdc-backwards-as-overrun"]


def test_each_close_machine_mutant_is_killed_by_the_socket_state_it_gets_wrong(
        rows: list[dict]) -> None:
    """conn_state shows the leak (freed stays false) and the missing state (sk_state)."""
    killers = {r["mutant"]: r["killed_by"] for r in rows}
    for mode in ("copy", "merged"):
        assert f"datapath.{mode}.sock-state.appfinclosewait" in killers[
            "sock-leak-appfinclosewait"]
        assert f"datapath.{mode}.sock-state.shutdown-both" in killers["close-no-peerclosewait2"]
