"""`smcd-check explore --simulate` and `--serve`: exit codes, reproducibility, replayable
traces, option checks, and the server started from the command line."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import urllib.request
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from smcd_check.cli.explore import command as explore
from smcd_check.cli.replay import command as replay
from smcd_check.explorer.web.server import bind
from smcd_check.spec import configs


def run(*args: str) -> tuple[int, str]:
    res = CliRunner().invoke(explore, list(args))
    return res.exit_code, res.output


def test_simulate_fault_exits_1_and_its_trace_replays(tmp_path: Path) -> None:
    trace, chart = tmp_path / "t.json", tmp_path / "t.svg"
    code, out = run(
        "--simulate", "--fault", "unregister-while-attached", "--seed", "5", "--walks", "2000",
        "--trace-out", str(trace), "--msc-out", str(chart), "--quiet",
    )  # fmt: skip
    assert code == 1, out
    assert "VIOLATION: lifecycle: no ghost sndbuf points at released memory" in out
    assert "rerun: smcd-check explore --simulate --config reference" in out and "--seed 5" in out
    doc = json.loads(trace.read_text())
    assert doc["format"] == "smcd-check-trace" and doc["fault"] == "unregister-while-attached"
    assert "<svg" in chart.read_text() and "VIOLATED" in chart.read_text()
    res = CliRunner().invoke(replay, [str(trace)])
    assert res.exit_code == 0, res.output


def test_simulate_clean_json_is_reproducible_by_seed() -> None:
    args = ("--simulate", "--config", "small", "--walks", "50", "--seed", "9", "--json")
    code, out = run(*args)
    assert code == 0, out
    doc = json.loads(out)
    assert doc["ok"] and doc["walks"] == 50 and doc["seed"] == 9 and doc["violation"] is None
    assert doc["walks_per_second"] > 0 and doc["max_depth"] > 0
    again = json.loads(run(*args)[1])
    for key in ("states", "steps", "max_depth", "coverage", "endings"):
        assert again[key] == doc[key], key


def test_simulate_without_seed_prints_the_seed_it_drew() -> None:
    code, out = run("--simulate", "--config", "tiny", "--walks", "3", "--depth", "5")
    assert code == 0
    seed = out.split("--seed ")[-1].split()[0]
    assert seed.isdigit()


def test_simulate_ctrl_c_prints_the_partial_result_and_exits_130(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    real = configs.build_system

    def interrupting(name: str, fault: str | None = None, **kw: Any) -> Any:
        model = real(name, fault, **kw)
        step = model.next_state
        calls = {"n": 0}

        def next_state(s: Any, a: Any) -> Any:
            calls["n"] += 1
            if calls["n"] > 200:
                raise KeyboardInterrupt
            return step(s, a)

        model.next_state = next_state
        return model

    monkeypatch.setattr(configs, "build_system", interrupting)
    code, out = run("--simulate", "--config", "reference", "--seed", "1", "--quiet")
    assert code == 130, out
    assert "no violation in" in out and "(stopped: interrupted)" in out


@pytest.mark.parametrize(
    "args,message",
    [
        (["--walks", "3"], "--walks needs --simulate"),
        (["--port", "8000"], "--port needs --serve"),
        (["--simulate", "--serve"], "cannot be combined"),
        (["--simulate", "--liveness"], "--liveness needs the whole state graph"),
        (["--serve", "--trace-out", "x.json"], "--trace-out cannot be used with --serve"),
        (["--serve", "--json"], "--json cannot be used with --serve"),
        (["--simulate", "--walks", "0"], "0 is not in the range"),
        (["--serve", "--open-trace", "/nonexistent/t.json"], "cannot read trace file"),
    ],
)
def test_bad_option_combinations_exit_2_naming_the_problem(
    args: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    from smcd_check.cli.main import main

    with pytest.raises(SystemExit) as exc:
        main(["explore", *args])
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err
    assert len(err.strip().splitlines()) == 1, err


def test_serve_on_a_busy_port_is_an_input_error() -> None:
    sock = bind("127.0.0.1", 0)
    try:
        port = sock.getsockname()[1]
        code, out = run("--serve", "--port", str(port))
        assert code == 2 and "cannot listen on 127.0.0.1" in out
    finally:
        sock.close()


def test_serve_from_the_command_line_opens_at_the_violation(tmp_path: Path) -> None:
    """The real command: it prints a link to the shortest counterexample's violating step,
    the link answers, and Ctrl-C stops the server. Nothing is written in its directory."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "smcd_check.cli.main", "explore", "--serve", "--port", "0",
         "--config", "small", "--fault", "merged-ignores-cons"],
        cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )  # fmt: skip
    try:
        assert proc.stdout is not None
        lines = [proc.stdout.readline() for _ in range(2)]
        assert "shortest" in lines[0], lines
        url = lines[1].split(" at ", 1)[1].strip()
        assert url.startswith("http://127.0.0.1:") and "fault=merged-ignores-cons" in url
        with urllib.request.urlopen(url, timeout=30) as resp:
            page = resp.read().decode()
        assert "VIOLATED at step 7" in page
    finally:
        proc.send_signal(signal.SIGINT)
        proc.wait(timeout=20)
    assert list(tmp_path.iterdir()) == []
