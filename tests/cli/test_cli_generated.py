"""Generated command lines for every subcommand: the CLI's exit-code contract holds for any input.

Property (issue 16): for any command line Hypothesis builds from the subcommands' real flags,
plausible and implausible values, and input files it writes (hex, JSON traces, trace-shaped
garbage), ``smcd-check`` ends with exit 0, 1, 2 or 130, never with a traceback or another
exception, and an exit 2 prints exactly one line on stderr, starting ``smcd-check: error:``.

Runs in-process through :func:`smcd_check.cli.main.main` (the console script's entry point) with
stdout/stderr captured. Commands that would run long are bounded by the generator: ``explore``
always gets ``--max-states``, ``prove`` runs one fast theorem, ``conform`` runs without lockstep
walks, ``kernel`` never boots or builds (``run --list``, ``run --image`` of a generated
file). A failure found while hunting (``HYPOTHESIS_PROFILE=thorough``) becomes an ``@example``.
"""

from __future__ import annotations

import contextlib
import io
import json
import sys
from pathlib import Path
from typing import Any

import hypothesis.strategies as st
import pytest
from hypothesis import HealthCheck, example, given, settings

from smcd_check.cli.main import main

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "spec"))

from clc_vectors import ALL  # noqa: E402

#: where generated input files go (one folder for the module; names are per example)
_TMP: list[Path] = []


@pytest.fixture(scope="module", autouse=True)
def _tmpdir(tmp_path_factory: pytest.TempPathFactory) -> None:
    _TMP.append(tmp_path_factory.mktemp("cli-gen"))


def run_cli(argv: list[str], stdin: bytes = b"") -> tuple[int, str, str]:
    """Run the console entry point; returns (exit code, stdout, stderr). Any exception other
    than SystemExit escaping main() is what a user would see as a traceback: it propagates."""
    out, err = io.StringIO(), io.StringIO()
    old_stdin = sys.stdin
    sys.stdin = io.TextIOWrapper(io.BytesIO(stdin))
    try:
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            try:
                main(argv)
            except SystemExit as exc:
                code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
            else:  # pragma: no cover - main always exits
                code = 0
    finally:
        sys.stdin = old_stdin
    return code, out.getvalue(), err.getvalue()


# ------------------------------------------------------------------------------ input files

GOOD_HEX = st.sampled_from(ALL).map(bytes.hex)
HEXISH = st.one_of(
    GOOD_HEX,
    st.lists(st.sampled_from(ALL), min_size=1, max_size=3).map(lambda ms: b"".join(ms).hex()),
    GOOD_HEX.flatmap(lambda h: st.integers(0, len(h)).map(lambda i: h[:i])),  # cut short
    GOOD_HEX.flatmap(lambda h: st.integers(0, len(h) - 1).flatmap(
        lambda i: st.sampled_from("0123456789abcdefzZ :x\n").map(lambda c: h[:i] + c + h[i + 1:]))),
    st.text(alphabet="0123456789abcdefABCDEF :x\n\t-", max_size=80),
    st.text(max_size=40),
)

JSON_VALUE = st.recursive(
    st.none() | st.booleans() | st.integers(-2**70, 2**70) | st.text(max_size=8),
    lambda kids: st.lists(kids, max_size=4) | st.dictionaries(st.text(max_size=8), kids,
                                                               max_size=4),
    max_leaves=12,
)
TRACE_DOC = st.fixed_dictionaries(
    {"format": st.sampled_from(["smcd-check-trace", "x"]),
     "version": st.sampled_from([1, 2, "1", None])},
    optional={"kind": st.sampled_from(["conformance", "explorer", "nope", 3]),
              "model": st.sampled_from(["smcd-system", "anchor", "", None]),
              "config": st.sampled_from(["tiny", "small", "nosuch", 5]),
              "target": st.sampled_from(["spec", "model", "nosuch", None]),
              "steps": st.lists(JSON_VALUE, max_size=3),
              "initial_state": JSON_VALUE,
              "property": JSON_VALUE},
)
FILE_CONTENT = st.one_of(
    HEXISH.map(str.encode),
    TRACE_DOC.map(lambda d: json.dumps(d).encode()),
    JSON_VALUE.map(lambda v: json.dumps(v).encode()),
    st.binary(max_size=64),
    st.just((HERE / "data" / "lockstep_merged_frees_at_send.json").read_bytes()),
)


@st.composite
def a_file(draw: st.DrawFn) -> str:
    """A path: a generated file, a directory, or a path that does not exist."""
    kind = draw(st.sampled_from(["file", "file", "file", "dir", "missing"]))
    base = _TMP[-1]
    if kind == "dir":
        return str(base)
    if kind == "missing":
        return str(base / "missing" / "x.json")
    name = base / f"in-{draw(st.integers(0, 10**9))}{draw(st.sampled_from(['.json', '.hex', '']))}"
    name.write_bytes(draw(FILE_CONTENT))
    return str(name)


def out_path(draw: st.DrawFn, suffixes: list[str]) -> str:
    base = _TMP[-1]
    where = draw(st.sampled_from(["ok", "ok", "missing-dir"]))
    stem = f"out-{draw(st.integers(0, 10**9))}{draw(st.sampled_from(suffixes))}"
    return str(base / stem) if where == "ok" else str(base / "no" / "such" / stem)


NUMBERISH = st.sampled_from(["0", "1", "-1", "nan", "inf", "-inf", "1e400", "0.5", "abc", "",
                             "10", "99999999999999999999"])

# ------------------------------------------------------------------------------ command lines


@st.composite
def decode_argv(draw: st.DrawFn) -> tuple[list[str], bytes]:
    argv, stdin = ["decode"], b""
    how = draw(st.sampled_from(["arg", "args", "stdin", "file", "none", "both"]))
    if how == "arg":
        argv.append(draw(HEXISH))
    elif how == "args":
        argv += draw(st.lists(HEXISH, min_size=1, max_size=3))
    elif how == "stdin":
        argv.append("-")
        stdin = draw(HEXISH).encode()
    elif how == "file":
        argv += ["--file", draw(a_file())]
    elif how == "both":
        argv += [draw(GOOD_HEX), "--file", draw(a_file())]
    if draw(st.booleans()):
        argv.append("--json")
    return argv, stdin


@st.composite
def prove_argv(draw: st.DrawFn) -> tuple[list[str], bytes]:
    argv = ["prove", "--only", draw(st.sampled_from(["add_stays_in_ring", "no_such", ""]))]
    if draw(st.booleans()):
        argv += ["--timeout", draw(NUMBERISH)]
    if draw(st.booleans()):
        argv.append("--json")
    if draw(st.integers(0, 5)) == 0:
        argv.append("--list")
    return argv, b""


@st.composite
def explore_argv(draw: st.DrawFn) -> tuple[list[str], bytes]:
    argv = ["explore", "--quiet", "--max-states", draw(st.sampled_from(["1", "50", "200", "0",
                                                                        "-3", "x"]))]
    if draw(st.booleans()):
        argv += ["--config", draw(st.sampled_from(["tiny", "small", "ring2", "", "nosuch"]))]
    if draw(st.booleans()):
        argv += ["--fault", draw(st.sampled_from(["no-consumer-update", "merged-ignores-cons",
                                                   "nosuch", ""]))]
    for flag in ("--list-configs", "--list-faults", "--liveness", "--json"):
        if draw(st.integers(0, 3)) == 0:
            argv.append(flag)
    if draw(st.booleans()):
        argv += ["--max-seconds", draw(NUMBERISH)]
    if draw(st.booleans()):
        argv += ["--trace-out", out_path(draw, [".json", ""])]
    if draw(st.integers(0, 3)) == 0:
        argv += ["--msc-out", out_path(draw, [".svg", ".html", ".txt"])]
    if draw(st.integers(0, 3)) == 0:
        argv += ["--graph-out", out_path(draw, [".dot", ".graphml", ".png"])]
    return argv, b""


@st.composite
def replay_argv(draw: st.DrawFn) -> tuple[list[str], bytes]:
    argv = ["replay", draw(a_file())]
    if draw(st.booleans()):
        argv += ["--target", draw(st.sampled_from(["spec", "model", "zoo:move-no-bounds",
                                                    "nosuch", "zoo:nosuch", ""]))]
    if draw(st.booleans()):
        argv.append("--json")
    return argv, b""


@st.composite
def conform_argv(draw: st.DrawFn) -> tuple[list[str], bytes]:
    argv = ["conform"]
    if draw(st.integers(0, 6)) == 0:
        argv.append(draw(st.sampled_from(["--list", "--list-zoo"])))
    if draw(st.integers(0, 5)) > 0:
        argv += ["--target", draw(st.sampled_from(["spec", "model", "zoo:move-no-bounds",
                                                    "zoo:nosuch", "nosuch", "", "kernel:x",
                                                    "no.such.module:make", "os:getcwd"]))]
    # no lockstep walks: they run Hypothesis inside this Hypothesis test
    argv += ["--lockstep", draw(st.sampled_from(["0", "-1", "x"]))]
    if draw(st.booleans()):
        argv += ["--area", draw(st.sampled_from(["datapath", "cursor", "nosuch"]))]
    if draw(st.booleans()):
        argv += ["-k", draw(st.sampled_from(["*shutdown*", "datapath.merged.*", "[", ""]))]
    if draw(st.integers(0, 3)) == 0:
        argv += ["--report", draw(st.sampled_from(["json", "junit", "html", "pdf"]))]
        if draw(st.booleans()):
            argv += ["--report-out", out_path(draw, [".json", ".xml", ".html"])]
    if draw(st.booleans()):
        argv.append("--json")
    return argv, b""


@st.composite
def kernel_argv(draw: st.DrawFn) -> tuple[list[str], bytes]:
    if draw(st.booleans()):
        return ["kernel", "run", "--list"] + (["--json"] if draw(st.booleans()) else []), b""
    return ["kernel", "run", "--image", draw(a_file())], b""


@st.composite
def other_argv(draw: st.DrawFn) -> tuple[list[str], bytes]:
    argv = draw(st.sampled_from([[], ["--help"], ["nosuch"], ["--version"], ["decode", "--bogus"],
                                 ["explore", "--max-states"], ["kernel"], ["kernel", "nosuch"]]))
    return argv, b""


@st.composite
def trace_argv(draw: st.DrawFn) -> tuple[list[str], bytes]:
    """``smcd-check trace`` (issue 17): saving, listing, showing, capturing traces."""
    sub = draw(st.sampled_from(["save", "list", "show", "capture", "schema", "corpus", "nosuch",
                                ""]))
    argv = ["trace", sub] if sub else ["trace"]
    if sub in ("save", "show", "capture"):
        argv.append(draw(a_file()))
    if sub == "save":
        argv += ["--name", draw(st.sampled_from(["ok-name", "Bad Name", "", "x" * 90]))]
        argv += ["--corpus", str(_TMP[-1] / "corpus")]
        argv += draw(st.sampled_from([[], ["--no-shrink"], ["--shrink-on", "zoo:nosuch"],
                                      ["--shrink-on", "model"], ["--force"]]))
    if sub == "list":
        argv += draw(st.sampled_from([[], ["--json"], ["--corpus", str(_TMP[-1])],
                                      ["--corpus", str(_TMP[-1] / "missing")]]))
    if sub == "show" and draw(st.booleans()):
        argv += ["--msc-out", out_path(draw, [".svg", ".png"])]
    if sub == "capture":
        argv += ["--target", draw(st.sampled_from(["spec", "model", "zoo:nosuch"])),
                 "--out", out_path(draw, [".json"])]
    if sub == "corpus":  # never the project's own folder; one entry at most
        argv += ["--corpus", out_path(draw, [""]),
                 "--only", draw(st.sampled_from(["zoo-move-no-bounds", "nosuch"]))]
    return argv, b""


COMMAND_LINES = st.one_of(decode_argv(), prove_argv(), explore_argv(), replay_argv(),
                          conform_argv(), kernel_argv(), trace_argv(), other_argv())


@settings(deadline=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
@given(COMMAND_LINES)
@example((["decode", "--file", "/dev/null"], b""))
@example((["prove", "--only", "add_stays_in_ring", "--timeout", "nan"], b""))
@example((["explore", "--quiet", "--max-states", "5", "--config", ""], b""))
@example((["replay", "__binary__", "--target", "spec"], b""))  # found hunting: not UTF-8
def test_any_command_line_ends_with_a_documented_exit_code(line: tuple[list[str], Any]) -> None:
    argv, stdin = line
    if "__binary__" in argv:  # an explicit example's input file: bytes that are not UTF-8
        path = _TMP[-1] / "binary.json"
        path.write_bytes(b"\x80{")
        argv = [str(path) if a == "__binary__" else a for a in argv]
    code, out, err = run_cli(argv, stdin)
    assert code in (0, 1, 2, 130), (argv, code, err[-2000:])
    assert "Traceback" not in err and "Traceback" not in out, (argv, err[-2000:])
    if code == 2:
        lines = err.strip().splitlines()
        assert len(lines) == 1, (argv, err)
        assert lines[0].startswith("smcd-check: error:") or lines[0].startswith("Usage:"), (
            argv, err)
