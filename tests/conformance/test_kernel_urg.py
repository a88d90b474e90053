"""Urgent data and full duplex on the real kernel, judged without qemu: the recorded results of
``kernel run urg-basic duplex urg-findings urg-wrap urg-phantom`` (tests/kernel_captures/urg/, Linux
6.12.118) against conformance/kernel/urg_checks.py, plus the same data edited into what a
correct kernel (or a broken harness) would report, so every check is seen to fail when it
should."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest

from smcd_check.conformance.kernel import qemu as K
from smcd_check.conformance.kernel.checks import URG_SCENARIO_NAMES, Check, all_checks
from smcd_check.conformance.kernel.urg_checks import reproducer, urg_checks

CAPTURES = Path(__file__).resolve().parents[1] / "kernel_captures" / "urg"
#: findings each scenario reproduces on 6.12.118 (subjects start with these words)
FINDINGS = {
    "urg-findings": ["recv(MSG_OOB) at the mark", "a failed MSG_OOB send hides",
                     "a failed MSG_OOB send hides", "a send(MSG_OOB) waiting for",
                     "SIOCATMARK reads 1", "send(MSG_OOB | MSG_MORE)"],
    "urg-wrap": ["an urgent byte in the last slot"],
    "urg-phantom": ["after a skipped urgent byte at the end of lap 0xfffe"],
    "urg-basic": [],
    "duplex": [],
}


def _recorded(name: str) -> dict[str, Any]:
    return dict(json.loads((CAPTURES / f"{name}.json").read_text()))


def _case(data: dict[str, Any], case: str) -> dict[str, Any]:
    (c,) = [c for c in data["cases"] if c["case"] == case]
    return dict(c)


def _by_subject(checks: list[Check], start: str) -> Check:
    (c,) = [c for c in checks if c.subject.startswith(start)]
    return c


@pytest.mark.parametrize("name", URG_SCENARIO_NAMES)
def test_recorded_urgent_scenarios_settle_every_claim_and_reproduce_the_findings(
        name: str) -> None:
    """On Linux 6.12.118 every claim agrees with the kernel's own rule, and every kernel fault
    the scenario looks for reproduced (a finding check is ok=False when the fault shows), each
    with its one-command reproducer."""
    checks = urg_checks(name, _recorded(name))
    claims = [c for c in checks if c.kind == "claim"]
    watch = [c for c in checks if c.subject.startswith("no step stalls")]
    findings = [c for c in checks if c.kind == "finding" and c not in watch]
    assert claims and all(c.ok for c in claims), [c.detail for c in claims if not c.ok]
    assert all(c.ok for c in watch) and bool(watch) == (name in ("urg-basic", "duplex"))
    assert [f.subject[:len(w)] for f, w in zip(findings, FINDINGS[name], strict=True)] \
        == FINDINGS[name]
    assert not any(f.ok for f in findings)
    assert all(f.evidence["reproducer"] == f"smcd-check kernel run {name}" for f in findings)


def test_every_urgent_scenario_is_known_to_the_host_and_only_the_faults_are_opt_in() -> None:
    """The default `kernel run` runs the claims (urg-basic, duplex); the fault reproducers run
    when named, urg-wrap also counts as slow (about 1.07 GB)."""
    by_name = {s.name: s for s in K.SCENARIOS}
    assert set(URG_SCENARIO_NAMES) <= set(by_name)
    assert not by_name["urg-basic"].finding and not by_name["duplex"].finding
    assert by_name["urg-findings"].finding and by_name["urg-wrap"].finding
    assert by_name["urg-wrap"].slow
    assert by_name["urg-phantom"].finding and by_name["urg-phantom"].slow
    assert K.boot_timeout(["urg-wrap"]) > K.boot_timeout(["duplex"])
    assert K.boot_timeout(["urg-phantom"]) == K.boot_timeout(["urg-wrap"])
    assert reproducer("duplex") == "smcd-check kernel run duplex"


def test_a_stall_is_reported_with_the_step_and_the_cursors_at_that_moment() -> None:
    """recv(MSG_OOB) at the mark: the writer's next send() stalls past its bound; the finding
    names the step and shows both ends' cursors then: the reader's consumer cursor one byte
    short of the producer cursor it received (the urgent byte never skipped)."""
    f = _by_subject(urg_checks("urg-findings", _recorded("urg-findings")),
                    "recv(MSG_OOB) at the mark")
    ev = f.evidence
    assert ev["stalled_step"] == "c send def" and ev["waited_ms"] >= 1000
    reader = [x for x in ev["cursors_at_stall"] if x["rx_prod"] == [0, 4]]
    assert reader and reader[0]["tx_cons"] == [0, 3]


def test_the_findings_pass_on_what_a_correct_kernel_would_report() -> None:
    """Each finding check is ok when the property holds: the writer's send after the OOB read
    completes, the urgent byte stays readable after a failed MSG_OOB send, SIOCATMARK stays 0
    without urgent data, send() after MSG_OOB|MSG_MORE completes."""
    data = copy.deepcopy(_recorded("urg-findings"))
    for s in _case(data, "oob-at-mark")["steps"]:
        if s["step"] == "c send def":
            s.update(rc=3, errno=0, stall=False)
    for name in ("oob-failed-send", "oob-failed-send-duplex"):
        for s in _case(data, name)["steps"]:
            if s["step"] == "s recv oob":
                s.update(rc=1, errno=0, data="58")
    for s in _case(data, "oob-blocked-send-duplex")["steps"]:
        if s["step"] == "s recv oob":
            s.update(rc=1, errno=0, data="58")
        if s["step"] == "c send Y oob (blocking, other thread)":
            s.update(rc=1, errno=0, stall=False)
    for s in _case(data, "atmark-no-urg")["steps"]:
        if s["step"].startswith("s SIOCATMARK after"):
            s["rc"] = 0
    for s in _case(data, "oob-more")["steps"]:
        if s["step"] == "c send abc":
            s.update(rc=3, errno=0, stall=False)
    checks = urg_checks("urg-findings", data)
    assert [c.ok for c in checks if c.kind == "finding"] == [True] * 6


def test_a_claim_fails_when_the_kernel_does_something_else() -> None:
    """The expected behaviour is really compared: an urgent byte counted in band without
    SO_OOBINLINE, or a second recv(MSG_OOB) that succeeds, breaks the claims."""
    data = copy.deepcopy(_recorded("urg-basic"))
    for s in _case(data, "oob-basic")["steps"]:
        if s["step"] == "s SIOCINQ":
            s["rc"] = 4
        if s["step"] == "s recv oob again":
            s.update(rc=1, errno=0, data="58")
    checks = urg_checks("urg-basic", data)
    bad = [c.subject for c in checks if not c.ok]
    assert len(bad) == 2
    assert bad[0].startswith("out of band: the urgent byte raises POLLPRI")
    assert bad[1].startswith("out of band: MSG_PEEK returns")


def test_a_missing_case_or_a_failed_harness_is_never_a_silent_pass() -> None:
    data = _recorded("urg-findings")
    data = {**data, "cases": [c for c in data["cases"] if c["case"] != "oob-more"]}
    checks = urg_checks("urg-findings", data)
    assert any(c.subject == "case oob-more ran" and not c.ok for c in checks)
    assert urg_checks("urg-basic", {"error": "socket(AF_SMC): EAFNOSUPPORT"}) == []


@pytest.mark.parametrize(("middle", "ok"), [
    ("G", True),
    ("R", True),   # the plain recv() read past the mark: as TCP
    ("S", True),   # replaced by the next urgent byte: as TCP
    ("E", False),  # EINVAL with nothing read past the mark
    ("B", False),  # a wrong byte
    ("", False),   # one urgent byte never seen
])
def test_out_of_band_reader_accepts_exactly_the_legitimate_orders(middle: str, ok: bool) -> None:
    """Out of band, an urgent byte may legitimately be lost only by being passed ('R') or
    replaced by the next one ('S') before the OOB read, the two orders TCP allows too; any
    other outcome breaks the claim."""
    data = copy.deepcopy(_recorded("duplex"))
    (t,) = [t for t in data["transfers_urg"] if t["dir"] == "c2s"]
    n = int(t["marks"])
    t["outcome"] = "G" * 50 + middle + "G" * (n - 51)
    c = _by_subject(urg_checks("duplex", data), "c2s (out of band)")
    assert c.ok is ok


@pytest.mark.parametrize(("first", "ok"), [
    ("A", True),
    ("i", True),  # arrived between SIOCATMARK and recv(): a legitimate order
    ("-", False),
])
def test_inline_reader_accepts_an_urgent_byte_that_arrived_after_siocatmark(
        first: str, ok: bool) -> None:
    data = copy.deepcopy(_recorded("duplex"))
    (t,) = [t for t in data["transfers_urg"] if t["dir"] == "s2c"]
    t["outcome"] = first + "A" * (int(t["marks"]) - 1)
    c = _by_subject(urg_checks("duplex", data), "s2c (SO_OOBINLINE)")
    assert c.ok is ok


def test_a_stalled_or_corrupted_duplex_transfer_breaks_its_claim() -> None:
    data = copy.deepcopy(_recorded("duplex"))
    data["transfers_urg"][0]["writer_stall"] = True
    data["transfers_urg"][1]["mismatch_at"] = 777
    checks = urg_checks("duplex", data)
    bad = [c.subject for c in checks if not c.ok]
    assert sum("every byte arrives once" in s for s in bad) == 2
    (stall,) = [c for c in checks if not c.ok and c.subject.startswith("no step stalls")]
    assert stall.kind == "finding" and stall.subject.endswith(data["transfers_urg"][0]["dir"])


def test_a_stall_in_a_scenario_that_expects_none_is_a_finding_with_its_cursors() -> None:
    data = copy.deepcopy(_recorded("urg-basic"))
    view = _recorded("urg-findings")["cases"][0]["steps"]
    stalled = next(st for st in view if st.get("stall"))
    for st in _case(data, "oob-inline")["steps"]:
        if st["step"] == "c send def":
            st.update(rc=-1, errno=11, stall=True, diag_at_stall=stalled["diag_at_stall"])
    (f,) = [c for c in urg_checks("urg-basic", data) if not c.ok and c.kind == "finding"]
    assert f.subject == "no step stalls: case oob-inline"
    assert f.evidence["stalled_step"] == "c send def" and f.evidence["cursors_at_stall"]


def test_the_wrap_finding_holds_in_both_orders_of_the_oob_read() -> None:
    """At the overflow slot the reader either asked recv(MSG_OOB) before reaching the mark
    (it gets the byte, 'G') or after (EINVAL, 'E'): both orders end with the writer stalled,
    so both reproduce the finding; a transfer that went through is no finding."""
    data = copy.deepcopy(_recorded("urg-wrap"))
    (t,) = data["transfers_urg"]
    k = t["mark_at"].index(data["overflow_mark"])
    for letter in "GE":
        t["outcome"] = t["outcome"][:k] + letter + t["outcome"][k + 1:]
        f = _by_subject(urg_checks("urg-wrap", data), "an urgent byte in the last slot")
        assert not f.ok
        assert f.evidence["cursors_at_stall"]
    t.update(writer_stall=False, reader_stall=False, sent=t["total"])
    t["outcome"] = t["outcome"][:k] + "G" + t["outcome"][k + 1:]
    f = _by_subject(urg_checks("urg-wrap", data), "an urgent byte in the last slot")
    assert f.ok


def test_all_checks_routes_the_urgent_scenarios_and_checks_their_cursor_snapshots() -> None:
    """Through the same entry point as `kernel run`: the urgent scenarios get their claims and
    findings, and every smc_diag snapshot of the transfers is a state the spec's cursor
    relations allow (the stall included) - except urg-phantom's last one, where the phantom
    skip left the reader's consumer cursor one byte ahead of the producer cursor it received,
    a state the spec forbids."""
    results = {n: _recorded(n) for n in URG_SCENARIO_NAMES}
    checks = all_checks(results, list(URG_SCENARIO_NAMES))
    trace = [c for c in checks if c.kind == "trace"]
    assert {c.scenario for c in trace} == {"duplex", "urg-wrap", "urg-phantom"}
    assert all(c.ok for c in trace if c.scenario != "urg-phantom"), [c.detail for c in trace]
    (phantom,) = [c for c in trace if c.scenario == "urg-phantom"]
    assert not phantom.ok and "R.rx_prod [3, 0] is behind R.tx_cons [3, 1]" in phantom.detail
    agree = [c for c in checks if c.kind != "finding" and c is not phantom]
    assert agree and all(c.ok for c in agree)
    assert sum(c.kind == "finding" and not c.ok for c in checks) == 8


def _phantom() -> Check:
    return _by_subject(urg_checks("urg-phantom", _recorded("urg-phantom")),
                       "after a skipped urgent byte")


def test_the_phantom_skip_reproduces_with_the_lost_byte_and_the_cursor_one_ahead() -> None:
    """On 6.12.118 the read of len-1 bytes from (0, 0) leaves the reader's consumer cursor at
    (1, 0), not (0, len-1): the byte in the last slot is skipped, the next recv() returns the
    stale first byte of the lap instead of it, and the stream stays one byte off: nearly every
    byte of the next two laps reads wrong."""
    data = _recorded("urg-phantom")
    size = data["rmbe_size"]
    f = _phantom()
    assert not f.ok
    assert f.evidence["reader_cursor"]["s recv len-1"] == [1, 0]
    assert f.evidence["first_bad"] == 65537 * size - 1
    rest = f.evidence["steps"]["s recv the rest"]
    assert rest["head"] == f.evidence["steps"]["s recv len-1"]["head"][:2] != rest["expected_head"]
    assert f.evidence["bytes_bad"] > size


def test_the_phantom_finding_passes_on_what_a_correct_kernel_would_report() -> None:
    """A correct kernel: every byte after the urgent one read back as sent, no stall - the
    finding is ok; a stall alone (no wrong byte) still breaks it."""
    data = copy.deepcopy(_recorded("urg-phantom"))
    data.update(first_bad=-1, first_bad_step="", bytes_bad=0)
    (f,) = [c for c in urg_checks("urg-phantom", data) if c.kind == "finding"]
    assert f.ok and f.detail.startswith("every byte after the urgent one read back as sent")
    data["phase2_stall"] = True
    (f,) = [c for c in urg_checks("urg-phantom", data) if c.kind == "finding"]
    assert not f.ok


def test_the_phantom_finding_is_not_judged_without_its_trigger() -> None:
    """If the full-ring read did not take the cursor from (0xffff, 0) to (0, 0) in one step
    (or the transfer before the mark failed), the scenario did not set the trap: the setup
    claim fails (the run exits 1), and the finding does not claim a reproduction."""
    data = copy.deepcopy(_recorded("urg-phantom"))
    for st in data["steps"]:
        if st["step"] == "s recv len (one full ring)":
            for sock in st["diag"]["socks"]:
                if sock["sport"] == data["port"]:
                    sock["conninfo"]["tx_cons"] = [65535, 16351]
    checks = urg_checks("urg-phantom", data)
    (claim,) = [c for c in checks if c.kind == "claim"]
    (f,) = [c for c in checks if c.kind == "finding"]
    assert not claim.ok and f.ok
    broken = {**_recorded("urg-phantom"), "phase1_ok": False}
    assert not next(c for c in urg_checks("urg-phantom", broken) if c.kind == "claim").ok
    wrong_mark = {**_recorded("urg-phantom"), "urgent_mark": 123}
    (m,) = urg_checks("urg-phantom", wrong_mark)
    assert m.kind == "claim" and not m.ok
