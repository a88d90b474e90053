"""The race explorer: each historical race is found with a schedule that replays; the correct
implementation yields nothing within the bounds; broken input is refused."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from smcd_check.cli.main import cli
from smcd_check.conformance.races.explore import (
    explore,
    mutant_named,
    replay,
    scenario_for,
    trace_document,
)
from smcd_check.conformance.races.scenarios import Env, Scenario
from smcd_check.conformance.races.scheduler import ScheduledRuntime, access_key, dependent


def _find(mutant: str, k: int):
    m = mutant_named(mutant)
    r = explore(scenario_for(None, m), m, preemptions=k, max_schedules=20000)
    assert r.finding is not None, f"{mutant}: not found in {r.schedules} schedules"
    return r


def test_confirmed_from_live_is_found_and_replays() -> None:
    """b8649efad879: the consumer cursor confirmed from the live value shows as a reader whose
    rx_curs_confirmed is ahead of the cursor its last CDC carried; one preemption suffices."""
    r = _find("confirmed-from-live", 1)
    assert r.finding.first.prop == "rx_curs_confirmed is the consumer cursor last sent"
    assert r.finding.preemptions == 1
    assert replay(trace_document(r.finding, 1)).reproduced


def test_unregister_put_unlocked_is_found_and_replays() -> None:
    """6.12.114 dibs fix: a reference dropped outside the table lock lets an attach hand out
    memory that is then released under the ghost sndbuf."""
    r = _find("unregister-put-unlocked", 1)
    assert r.finding.first.prop == "no ghost sndbuf points at released memory"
    assert replay(trace_document(r.finding, 1)).reproduced


@pytest.mark.slow
def test_drain_before_unset_is_found_with_two_preemptions_and_replays() -> None:
    """36cdf5d48ca1: draining the rx tasklet before clearing smcd->conn[] lets a late CDC
    schedule the tasklet on the freed connection (two preemptions: the late signal's sender
    and the freeing thread)."""
    r = _find("drain-before-unset", 2)
    assert r.finding.first.prop == "a freed connection holds nothing"
    doc = trace_document(r.finding, 2)
    assert replay(json.loads(json.dumps(doc))).reproduced


@pytest.mark.parametrize("name", ["attach-vs-teardown", "stream"])
def test_the_correct_implementation_is_clean_within_one_preemption(name: str) -> None:
    """Exhaustive within one preemption: every schedule of these scenarios keeps every checked
    invariant, ends, and raises nothing."""
    r = explore(scenario_for(name, None), None, preemptions=1)
    assert r.finding is None, r.finding and r.finding.first
    assert r.complete and r.schedules > 100


def test_a_tampered_schedule_no_longer_reproduces() -> None:
    r = _find("unregister-put-unlocked", 1)
    doc = trace_document(r.finding, 1)
    doc["mutant"] = None  # the same schedule on the correct implementation
    out = replay(doc)
    assert not out.reproduced


def test_a_lost_wakeup_is_a_deadlock_finding() -> None:
    """A thread waiting on a condition nobody notifies is reported, not hung."""
    from smcd_check.conformance.races import explore as ex

    def body(env: Env) -> None:
        lock = env.rt.lock("x.lock")
        cv = env.rt.condition(lock, "x.cv")

        def waiter(e: Env) -> None:
            with lock:
                cv.wait_for(lambda: False)

        env.thread("waiter", waiter)

    sc = Scenario("lost-wakeup", "a wait nobody ends", "merged", body)
    result, violations = ex.run_once(sc, None, [])
    assert "waiter" in result.deadlock
    assert any(v.prop == "no call blocks forever" for v in violations)


def test_access_keys_group_a_connections_state() -> None:
    """Reduction keys: a connection's cells and locks share one key; the device is one key."""
    rt = ScheduledRuntime([])
    a1, a2 = rt.lock("a.sock"), rt.lock("a.send_lock")
    assert access_key(a1) == access_key(a2) == "a"
    assert not dependent(access_key(a1), access_key(rt.lock("b.sock")))
    assert dependent("*", "device") and not dependent(None, "a")


def _cli(*args: str) -> tuple[int, str]:
    res = CliRunner().invoke(cli, list(args))
    return res.exit_code, res.output


def test_cli_finds_a_mutant_exits_1_and_the_trace_replays(tmp_path: Path) -> None:
    trace, svg = tmp_path / "t.json", tmp_path / "t.svg"
    code, out = _cli("races", "--mutant", "unregister-put-unlocked", "-k", "1",
                     "--trace-out", str(trace), "--svg-out", str(svg))
    assert code == 1 and "FOUND" in out and "=>" in out
    assert svg.read_text().startswith("<svg")
    code, out = _cli("replay", str(trace))
    assert code == 0 and "REPRODUCED" in out
    doc = json.loads(trace.read_text())
    doc["schedule"] = [[9, 3]]
    trace.write_text(json.dumps(doc))
    code, out = _cli("replay", str(trace))
    assert code == 1 and "DIVERGED" in out


def test_cli_clean_run_exits_0_and_bad_input_exits_2() -> None:
    code, out = _cli("races", "--scenario", "attach-vs-teardown", "-k", "1")
    assert code == 0 and "complete" in out and "no violation" in out
    assert _cli("races", "--mutant", "no-such")[0] == 2
    assert _cli("races", "-k", "9")[0] == 2
    code, out = _cli("races", "--list", "--json")
    assert code == 0 and set(json.loads(out)["mutants"]) >= {
        "confirmed-from-live", "unregister-put-unlocked", "drain-before-unset"}


@pytest.mark.slow
def test_lookup_outside_lock_is_found_with_two_preemptions_and_replays() -> None:
    """6.12.118's smc_lo_move_data reads smcd->conn[] without smcd->lock: a late CDC's signal
    path can still reach a connection that unset_conn is freeing, even in 36cdf5d48ca1's
    order; the explorer finds that schedule and it replays."""
    r = _find("lookup-outside-lock", 2)
    assert r.finding.first.prop == "a freed connection holds nothing", r.finding.first
    doc = trace_document(r.finding, 2)
    assert replay(json.loads(json.dumps(doc))).reproduced
