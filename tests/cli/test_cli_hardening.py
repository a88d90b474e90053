"""Issue 16: inputs that were accepted silently or ended in a traceback now get one clear line
and the documented exit code (0 nothing wrong, 1 a finding, 2 input error, 130 interrupted)."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from smcd_check.cli.main import cli


def invoke(*args: str) -> tuple[int, str, str]:
    res = CliRunner().invoke(cli, list(args))
    return res.exit_code, res.stdout, res.stderr


def one_line_error(code: int, err: str) -> str:
    assert code == 2, err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("smcd-check: error: "), err
    return lines[0]


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["--config", ""], "unknown config ''"),
        (["--max-seconds", "nan"], "--max-seconds must be a finite number"),
        (["--max-seconds", "inf"], "--max-seconds must be a finite number"),
        (["--list-configs", "--list-faults", "--fault", "nosuch"], "separate listings"),
        (["--list-faults", "--fault", "nosuch"], "takes no --fault"),
        (["--list-configs", "--config", "tiny"], "takes no --config"),
    ],
)
def test_explore_refuses_what_it_used_to_ignore(args: list[str], needle: str) -> None:
    code, _, err = invoke("explore", *args)
    assert needle in one_line_error(code, err)


def test_trace_out_without_a_violation_says_it_wrote_nothing(tmp_path: Path) -> None:
    trace, chart = tmp_path / "t.json", tmp_path / "t.svg"
    code, out, _ = invoke("explore", "--config", "tiny", "--quiet", "--trace-out", str(trace),
                          "--msc-out", str(chart))
    assert code == 0
    assert f"trace not written to {trace}: no violation" in out
    assert f"sequence chart not written to {chart}: no violation" in out
    assert not trace.exists() and not chart.exists()
    code, _, err = invoke("explore", "--config", "tiny", "--json", "--trace-out", str(trace))
    assert code == 0 and "trace not written" in err


def test_liveness_cut_short_says_the_eventually_properties_were_not_checked() -> None:
    code, out, _ = invoke("explore", "--config", "small", "--liveness", "--max-states", "100",
                          "--quiet")
    assert code == 0
    assert "eventually: NOT CHECKED: the exploration stopped early (max-states)" in out
    code, out, _ = invoke("explore", "--config", "small", "--liveness", "--max-states", "100",
                          "--json")
    import json

    assert json.loads(out)["eventually_checked"] is False


def test_kernel_run_with_a_file_that_is_no_kernel_image_is_an_input_error(tmp_path: Path) -> None:
    garbage = tmp_path / "garbage.bin"
    garbage.write_bytes(b"\x00not a kernel" * 100)
    code, _, err = invoke("kernel", "run", "--image", str(garbage))
    line = one_line_error(code, err)
    assert str(garbage) in line and "not a Linux kernel image" in line
    code, _, err = invoke("kernel", "run", "--image", str(tmp_path / "missing.bin"))
    assert "missing.bin" in one_line_error(code, err)
