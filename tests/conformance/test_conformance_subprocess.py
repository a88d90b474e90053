"""Out-of-process targets over JSON lines: a standalone program, and crash / hang / garbage."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import pytest

from smcd_check.conformance.catalogue.registry import catalogue
from smcd_check.conformance.runner.run import Area, ExpectationCache, Verdict, run_cases
from smcd_check.conformance.targets.adapter import Capability, Op, TargetLoadError
from smcd_check.conformance.targets.spec_target import SpecTarget
from smcd_check.conformance.targets.subprocess_target import SubprocessTarget

EXAMPLE = Path(__file__).resolve().parents[2] / "conformance" / "examples" / "lo_device.py"
PY = sys.executable
SERVE = [PY, "-m", "smcd_check.conformance.targets.serve"]
ORACLE = ExpectationCache(SpecTarget())


def _arithmetic() -> list:
    """The cursor cases that call the curs_* operations (not the connection ones)."""
    return [c for c in _cases(Area.CURSOR) if c.needs == {Capability.CURSOR}]


def _cases(*areas: Area) -> list:
    return [c for c in catalogue() if c.area in areas]


def test_standalone_example_target_passes_its_areas_in_another_process() -> None:
    """The example imports nothing of smcd_check: every device and cursor case is OK."""
    target = SubprocessTarget([PY, str(EXAMPLE)])
    try:
        assert target.impl_name == "lo_device.py"
        assert target.capabilities == {Capability.DEVICE, Capability.DEVICE_NOCOPY,
                                       Capability.CURSOR}
        run = run_cases(target, _cases(Area.LIFECYCLE, Area.CURSOR, Area.DATAPATH), ORACLE)
    finally:
        target.close()
    counts = run.counts()
    assert counts[Verdict.FAIL] == counts[Verdict.ERROR] == 0, [
        (r.case.id, r.message) for r in run.results if r.verdict.is_bad]
    device_cases = [c for c in _cases(Area.LIFECYCLE) if c.needs <= target.capabilities]
    assert counts[Verdict.OK] == len(device_cases) + len(_arithmetic())
    assert counts[Verdict.UNSUPPORTED] > 0  # the connection cases


@pytest.mark.parametrize("bug", ["free-on-unregister", "no-bounds-check"])
def test_standalone_example_with_a_bug_fails_a_case_naming_it(bug: str) -> None:
    target = SubprocessTarget([PY, str(EXAMPLE), "--bug", bug])
    try:
        run = run_cases(target, _cases(Area.LIFECYCLE), ORACLE)
    finally:
        target.close()
    failed = {r.case.id for r in run.results if r.verdict is Verdict.FAIL}
    expected = {"free-on-unregister": "lifecycle.attach.outlives-owner",
                "no-bounds-check": "lifecycle.move.bounds-past-end"}[bug]
    assert expected in failed


@pytest.mark.parametrize(
    ("flag", "words"),
    [("--crash-on", "exited (crashed)"), ("--hang-on", "no answer within"),
     ("--garbage-on", "answer is not JSON")],
)
def test_crash_hang_or_garbage_is_an_ERROR_for_that_case_and_the_run_goes_on(
        flag: str, words: str) -> None:
    """Every case that needs the broken operation is an ERROR with a clear message; the
    process is restarted and every other case still passes."""
    target = SubprocessTarget([*SERVE, "model", flag, "dev_attach_dmb"], timeout=0.5)
    cases = _cases(Area.LIFECYCLE)
    try:
        run = run_cases(target, cases, ORACLE)
    finally:
        target.close()
    uses_attach = {c.id for c in cases if any(s.op.name == "dev_attach_dmb" for s in c.steps)}
    errors = {r.case.id for r in run.results if r.verdict is Verdict.ERROR}
    oks = {r.case.id for r in run.results if r.verdict is Verdict.OK}
    assert errors == uses_attach and uses_attach
    assert oks == {c.id for c in cases} - uses_attach
    assert all(words in r.message for r in run.results if r.verdict is Verdict.ERROR)
    assert target.restarts >= len(uses_attach)


def test_a_program_that_does_not_speak_the_protocol_cannot_be_loaded() -> None:
    with pytest.raises(TargetLoadError, match="did not start: hello: answer is not JSON"):
        SubprocessTarget([PY, "-c", "import sys; sys.stdin.readline(); print('hi there')"])
    with pytest.raises(TargetLoadError, match="hello: the target process exited"):
        SubprocessTarget([PY, "-c", "import sys; sys.exit(5)"])
    with pytest.raises(TargetLoadError, match="answer has id 9, expected 0"):
        SubprocessTarget([PY, "-c", 'import sys; sys.stdin.readline(); print(\'{"id": 9}\')'])


@pytest.mark.parametrize(("proto", "caps", "loads"), [
    (2, ["device", "handshake"], True),
    (2, ["device", "lgr-lifecycle"], False),
    (1, ["handshake"], False),
    (3, ["device", "lgr-lifecycle", "handshake"], True),
])
def test_an_older_protocol_target_is_driven_unless_it_claims_newer_capabilities(
        proto: int, caps: list[str], loads: bool) -> None:
    """Protocol 3 keeps protocol 1 and 2 targets working; a target declaring a capability its
    protocol version does not have is refused with a message naming the version it needs."""
    hello = json.dumps({"name": "old", "protocol": proto, "capabilities": caps})
    script = ("import json, sys\n"
              "for line in sys.stdin:\n"
              "    req = json.loads(line)\n"
              f"    print(json.dumps({{'id': req['id'], 'ok': True, 'result': {hello}}}), "
              "flush=True)\n")
    if loads:
        target = SubprocessTarget([PY, "-c", script])
        assert target.protocol == proto
        target.close()
    else:
        with pytest.raises(TargetLoadError, match="must speak protocol"):
            SubprocessTarget([PY, "-c", script])


def test_the_served_model_answers_like_the_model_in_process() -> None:
    target = SubprocessTarget([*SERVE, "model"])
    try:
        target.reset()
        obs = target.apply(Op.make("dev_register_dmb", size=16384))
        assert obs.ok and obs.get("sba_idx") == 0 and obs.get("len") == 16384
        refused = target.apply(Op.make("dev_unregister_dmb", token=1))
        assert refused.error == "EINVAL" and "unknown DMB token" in refused.detail
    finally:
        target.close()


C_EXAMPLE = EXAMPLE.with_name("lo_cursor.c")


@pytest.mark.parametrize("wrap_blind", [False, True])
def test_a_c_target_passes_the_cursor_area_and_its_wrap_blind_build_fails_it(
        tmp_path: Path, wrap_blind: bool) -> None:
    """A target in another language: the kernel's cursor formulas with real C integer types."""
    import shutil
    import subprocess

    cc = shutil.which("cc") or shutil.which("gcc")
    if cc is None:
        pytest.skip("no C compiler")
    binary = tmp_path / "lo_cursor"
    flags = ["-DWRAP_BLIND"] if wrap_blind else []
    subprocess.run([cc, "-O2", "-Wall", "-Werror", *flags, "-o", str(binary), str(C_EXAMPLE)],
                   check=True, capture_output=True)
    target = SubprocessTarget([str(binary)])
    try:
        assert target.impl_name == "lo_cursor.c"
        run = run_cases(target, _cases(Area.CURSOR), ORACLE)
    finally:
        target.close()
    failed = {r.case.id for r in run.results if r.verdict is Verdict.FAIL}
    assert not {r.case.id for r in run.results if r.verdict is Verdict.ERROR}
    if wrap_blind:
        assert {"cursor.diff.full-ring", "cursor.diff.one-lap"} <= failed
    else:
        assert not failed
        assert run.counts()[Verdict.OK] == len(_arithmetic())


#: the C example target's sources (PROTOCOL.md section 13): session, JSON, CLC codec, handshake
TARGET_C = tuple(EXAMPLE.with_name(n)
                 for n in ("lo_target.c", "lo_json.c", "lo_clc.c", "lo_hs.c"))


@pytest.fixture(scope="module")
def lo_target(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """The C example target built (C99, warnings as errors) twice: as written, and as the
    NO_CDC_CHECKS mutant."""
    import shutil
    import subprocess

    cc = shutil.which("cc") or shutil.which("gcc")
    if cc is None:
        pytest.skip("no C compiler (cc or gcc) on PATH: the C example target cannot be built")
    out = tmp_path_factory.mktemp("lo_target")
    built = {}
    for name, flags in (("clean", []), ("unchecked", ["-DNO_CDC_CHECKS"])):
        binary = out / f"lo_target-{name}"
        done = subprocess.run([cc, "-std=c99", "-O2", "-Wall", "-Wextra", "-Werror", *flags,
                               "-o", str(binary), *map(str, TARGET_C)],
                              capture_output=True, text=True)
        assert done.returncode == 0, f"{' '.join(done.args)}:\n{done.stderr}"
        built[name] = binary
    return built


@pytest.fixture(scope="module")
def c_catalogue_run(lo_target: dict[str, Path]) -> tuple[set[Capability], Any]:
    """The whole catalogue against the C target, once per session (about 12 CPU-s)."""
    target = SubprocessTarget([str(lo_target["clean"])])
    try:
        assert target.impl_name == "lo_target.c" and target.protocol == 4
        return set(target.capabilities), run_cases(target, catalogue(), ORACLE)
    finally:
        target.close()


def test_the_c_target_declares_every_capability(
        c_catalogue_run: tuple[set[Capability], Any]) -> None:
    """The example implements the whole vocabulary of protocol 4: every capability the adapter
    defines, ``urgent`` (urgent data and both directions, PROTOCOL.md section 5c) included."""
    capabilities, _ = c_catalogue_run
    assert capabilities == set(Capability)


def test_the_c_target_passes_the_whole_catalogue(
        c_catalogue_run: tuple[set[Capability], Any]) -> None:
    """An implementation in another language, written from PROTOCOL.md: every case of the
    catalogue is OK, the urgent and duplex ones included (none NON-STRICT, FAIL, ERROR or
    UNSUPPORTED)."""
    _, run = c_catalogue_run
    urgent = {c.id for c in catalogue() if Capability.URGENT in c.needs}
    assert urgent <= {r.case.id for r in run.results if r.verdict is Verdict.OK}
    not_ok = {r.case.id: (r.verdict.name, r.message) for r in run.results
              if r.verdict is not Verdict.OK}
    assert not not_ok
    assert run.counts()[Verdict.OK] == len(catalogue())
    assert run.counts()[Verdict.UNSUPPORTED] == 0


def test_the_c_target_answers_every_malformed_line_with_one_refusal(
        lo_target: dict[str, Path]) -> None:
    """Whatever a line holds (cut escapes, deep nesting, a megabyte string, huge numbers,
    binary junk), the target answers it with exactly one JSON line and keeps serving: the
    parser never reads past a line (the old one did on a trailing backslash)."""
    import subprocess

    bad = ['{"id":1,"op":"x\\', '{"id":2,"op":"x\\u00', "[" * 100000, "{" * 70 + "}" * 70,
           '{"id":3,"op":"clc_decode","args":{"data":"' + "ab" * 500000 + '"}}',
           '{"id":99999999999999999999999,"op":"nope"}', '"\\ud800"', "\x00\x01\xff",
           '{"id":4,"op":"dev_register_dmb","args":{"size":1e400}}',
           '{"id":5,"op":"hs_new","args":{"role":"client","config":{"ueids":["a b"]}}}',
           '{"id":6,"op":"hs_new","args":{"role":"server","config":{"devices":'
           + "[" + ",".join(['{"chid":1,"gid":2}'] * 40) + "]}}}",
           '{"id":7,"op":"hs_feed","args":{"ep":1,"data":"00"}}']
    # a Proposal header announcing 65535 bytes, then 70000 bytes: read, refused -EPROTO
    big = "e2d4c3d901ffff20" + "00" * 70000
    lines = ['{"id":0,"op":"hello","args":{"protocol":3}}', *bad,
             '{"id":10,"op":"hs_new","args":{"role":"server","config":{}}}',
             '{"id":11,"op":"hs_feed","args":{"ep":1,"data":"' + big + '"}}',
             '{"id":8,"op":"reset","args":{}}', '{"id":9,"op":"bye","args":{}}']
    done = subprocess.run([str(lo_target["clean"])], input="\n".join(lines) + "\n",
                          capture_output=True, text=True, errors="replace", timeout=60)
    assert done.returncode == 0, done.stderr
    answers = [json.loads(line) for line in done.stdout.splitlines()]
    assert len(answers) == len(lines)
    assert all(a["ok"] is False and a["error"].startswith("E") for a in answers[1:-4])
    assert answers[-3]["result"]["outcome"] == {"kind": "error", "reason": None,
                                                "peer_diagnosis": 0, "errno": 71}
    assert answers[-2:] == [{"id": 8, "ok": True, "result": {}},
                            {"id": 9, "ok": True, "result": {}}]


def test_the_c_target_agrees_in_lockstep_and_its_unchecked_build_is_caught(
        lo_target: dict[str, Path]) -> None:
    """Random walks over every area it has agree with the spec; the build without the CDC
    checks fails the cdc-rx cases, naming the check it skipped."""
    from smcd_check.conformance.runner.lockstep import run_lockstep

    target = SubprocessTarget([str(lo_target["clean"])])
    try:
        res = run_lockstep(target, examples=5)
    finally:
        target.close()
    assert res is not None and res.verdict is Verdict.OK, res.message
    assert "areas: conn, lgr, inject, device, cursor, clc, urgent" in res.message
    mutant = SubprocessTarget([str(lo_target["unchecked"])])
    try:
        run = run_cases(mutant, [c for c in catalogue() if ".cdc-rx." in c.id], ORACLE)
    finally:
        mutant.close()
    failed = {r.case.id: r.message for r in run.results if r.verdict is Verdict.FAIL}
    assert "datapath.merged.cdc-rx.prod-count-length" in failed
    assert "check: expected 'prod-count', seen None" in failed[
        "datapath.merged.cdc-rx.prod-count-length"]


def test_the_c_target_agrees_with_the_spec_on_the_urgent_walk(
        lo_target: dict[str, Path]) -> None:
    """The urgent lockstep walk at its default length (60 walks): a conn_open_urg pair started
    at 0, the ring's end or the 16-bit wrap overflow, both ends sending with and without
    MSG_OOB, reading in band and out of band, SIOCATMARK and SO_OOBINLINE switched at random;
    every observation and both ends' cursors after each step agree with the spec."""
    from smcd_check.conformance.runner.lockstep import run_lockstep

    target = SubprocessTarget([str(lo_target["clean"])])
    try:
        res = run_lockstep(target, areas=("urgent",))
    finally:
        target.close()
    assert res is not None and res.verdict is Verdict.OK, res.message
    assert "areas: urgent" in res.message


def test_the_c_target_refuses_malformed_urgent_requests_naming_the_field(
        lo_target: dict[str, Path]) -> None:
    """Each malformed urgent request gets exactly one refusal whose detail names what was wrong
    (wrong types, unknown handles, start < 0, data not hex); the target keeps serving."""
    import subprocess

    open_urg = ('{"id":%d,"op":"conn_open_urg","args":{"mode":"merged","dmb_size":16384,'
                '"sndbuf_size":0,"start":%s}}')
    bad = [  # (request, error, words in the detail)
        (open_urg % (2, "-1"), "EINVAL", "start"),
        (open_urg % (3, '"5"'), "EINVAL", "start"),
        (open_urg % (4, "1.5"), "EINVAL", "start"),
        (open_urg % (5, "99999999999999999999999"), "EINVAL", "start"),
        ('{"id":6,"op":"conn_open_urg","args":{"mode":"merged","dmb_size":16384}}', "EINVAL",
         "start"),
        ('{"id":7,"op":"conn_open_urg","args":{"mode":"sideways","dmb_size":16384,"start":0}}',
         "EINVAL", "mode"),
        ('{"id":8,"op":"conn_send_oob","args":{"conn":0,"data":"zz"}}', "EINVAL", "data"),
        ('{"id":9,"op":"conn_send_oob","args":{"conn":0,"data":"abc"}}', "EINVAL", "data"),
        ('{"id":10,"op":"conn_send_oob","args":{"conn":0,"data":12}}', "EINVAL", "data"),
        ('{"id":11,"op":"conn_send_oob","args":{"conn":99,"data":"00"}}', "EBADF", "conn"),
        ('{"id":12,"op":"conn_send_oob","args":{"conn":"a","data":"00"}}', "EBADF", "conn"),
        ('{"id":13,"op":"conn_recv_oob","args":{"conn":1,"max":-1}}', "EINVAL", "max"),
        ('{"id":14,"op":"conn_recv_oob","args":{"conn":1}}', "EINVAL", "max"),
        ('{"id":15,"op":"conn_recv_oob","args":{"conn":1,"max":1}}', "EINVAL", "urg_state"),
        ('{"id":16,"op":"conn_atmark","args":{"conn":null}}', "EBADF", "conn"),
        ('{"id":17,"op":"conn_atmark"}', "EBADF", "conn"),
        ('{"id":18,"op":"conn_set_oobinline","args":{"conn":1,"on":1}}', "EINVAL", "on"),
        ('{"id":19,"op":"conn_set_oobinline","args":{"conn":1,"on":"true"}}', "EINVAL", "on"),
        ('{"id":20,"op":"conn_set_oobinline","args":{"conn":5,"on":true}}', "EBADF", "conn"),
    ]
    lines = ['{"id":0,"op":"hello","args":{"protocol":4}}',
             open_urg % (1, "1071644671"), *(line for line, _, _ in bad),
             '{"id":21,"op":"conn_send_oob","args":{"conn":0,"data":"4142"}}',
             '{"id":22,"op":"conn_recv_oob","args":{"conn":1,"max":1}}',
             '{"id":23,"op":"bye","args":{}}']
    done = subprocess.run([str(lo_target["clean"])], input="\n".join(lines) + "\n",
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    answers = [json.loads(line) for line in done.stdout.splitlines()]
    assert len(answers) == len(lines)
    assert answers[1] == {"id": 1, "ok": True, "result": {"a": 0, "b": 1}}
    for (line, error, words), answer in zip(bad, answers[2:-3], strict=True):
        assert answer["ok"] is False and answer["error"] == error, (line, answer)
        assert words in answer["detail"], (line, answer)
    # the pair still works: the urgent byte crossed the 16-bit wrap overflow
    assert answers[-3:] == [{"id": 21, "ok": True, "result": {"n": 2}},
                            {"id": 22, "ok": True, "result": {"data": "42"}},
                            {"id": 23, "ok": True, "result": {}}]
