"""The trace format, version 2 (issue 17), and malformed traces (issue 16): what explore writes
validates against the JSON Schema, version-1 files are still read, and every malformed input is
exit 2 with one line naming the field - with and without --target."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import jsonschema
import pytest
from click.testing import CliRunner

from smcd_check.cli.explore import command as explore
from smcd_check.cli.replay import command as replay
from smcd_check.explorer.trace import TraceFormatError, build_model, schema

_DOC: dict[str, Any] = {}


def explorer_doc(tmp_path: Path) -> dict[str, Any]:
    if not _DOC:
        out = tmp_path / "t.json"
        res = CliRunner().invoke(explore, ["--config", "small", "--fault", "merged-ignores-cons",
                                           "--quiet", "--trace-out", str(out)])
        assert res.exit_code == 1, res.output
        _DOC.update(json.loads(out.read_text()))
    return copy.deepcopy(_DOC)


def write(tmp_path: Path, name: str, doc: Any) -> str:
    path = tmp_path / name
    path.write_text(doc if isinstance(doc, str) else json.dumps(doc))
    return str(path)


def test_explore_writes_version_2_that_the_schema_accepts(tmp_path: Path) -> None:
    doc = explorer_doc(tmp_path)
    jsonschema.validate(doc, schema())
    assert doc["version"] == 2 and doc["kind"] == "explorer"
    assert doc["origin"]["implementation"].startswith("spec")
    assert all("expect" in op for plan in doc["plans"] for op in plan["steps"])


def test_the_schema_rejects_what_the_reader_would_misread(tmp_path: Path) -> None:
    doc = explorer_doc(tmp_path)
    doc["plans"][0]["steps"][0]["expect"] = {"ok": "yes"}
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(doc, schema())
    res = CliRunner().invoke(replay, [write(tmp_path, "bad.json", doc), "--target", "model"])
    assert res.exit_code == 2 and "plans[0].steps[0].expect" in res.output


def test_version_1_explorer_traces_still_replay(tmp_path: Path) -> None:
    """A version-1 file (no kind, origin or plans) replays on the spec and, mapped now, on
    targets."""
    doc = explorer_doc(tmp_path)
    for key in ("kind", "origin", "plans", "unmapped"):
        doc.pop(key, None)
    doc["version"] = 1
    path = write(tmp_path, "v1.json", doc)
    assert CliRunner().invoke(replay, [path]).exit_code == 0
    assert CliRunner().invoke(replay, [path, "--target", "model"]).exit_code == 0
    bad = CliRunner().invoke(replay, [path, "--target", "zoo:merged-frees-at-send"])
    assert bad.exit_code == 1, bad.output


def _one_line_exit_2(res: Any, *words: str) -> None:
    assert res.exit_code == 2, res.output
    lines = res.output.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in res.output, res.output
    for w in words:
        assert w in lines[0], lines[0]


@pytest.mark.parametrize("target", [[], ["--target", "model"]])
def test_json_nested_100000_deep_is_input_error(tmp_path: Path, target: list[str]) -> None:
    path = write(tmp_path, "deep.json", "[" * 100_000 + "]" * 100_000)
    _one_line_exit_2(CliRunner().invoke(replay, [path, *target]), "nested too deeply")


@pytest.mark.parametrize("edit, words", [
    (lambda a: a.update({"_type": "Bogus"}), ("steps[5].action._type", "Bogus")),
    (lambda a: a.pop("_type"), ("steps[5].action", "'_type'")),
    (lambda a: a.update({"pair": 7}), ("steps[5].action.pair", "outside")),
    (lambda a: a.update({"pair": "x"}), ("steps[5].action.pair", "expected an int")),
    (lambda a: a["action"].update({"_type": "Nope"}), ("steps[5].action.action._type",)),
])
@pytest.mark.parametrize("target", [[], ["--target", "model"]])
def test_a_malformed_explorer_action_is_input_error_naming_the_field(
        tmp_path: Path, edit: Any, words: tuple[str, ...], target: list[str]) -> None:
    doc = explorer_doc(tmp_path)
    edit(doc["steps"][5]["action"])
    res = CliRunner().invoke(replay, [write(tmp_path, "m.json", doc), *target])
    _one_line_exit_2(res, *words)


def test_an_enabled_looking_but_wrong_action_is_still_a_divergence(tmp_path: Path) -> None:
    """A well-formed action the spec does not allow there is a finding (exit 1), not input."""
    doc = explorer_doc(tmp_path)
    doc["steps"][5]["action"] = {"_type": "DataStep", "pair": 0,
                                 "action": {"_type": "ReaderRead", "n": 1}}
    res = CliRunner().invoke(replay, [write(tmp_path, "d.json", doc)])
    assert res.exit_code == 1 and "DIVERGED" in res.output


V1_CONF = {"format": "smcd-check-trace", "version": 1, "kind": "conformance"}


@pytest.mark.parametrize("steps, words", [
    ([None], ("steps[0]", "null")),
    ([{"op": "dev_register_dmb", "args": {"size": "big"}}], ("steps[0].args.size", "int")),
    ([{"op": "dev_register_dmb", "args": {"size": 16384}, "bind": "d"},
      {"op": "dev_move_data", "args": {"token": {"$ref": "d.token"}, "offset": "0",
                                       "data": "00", "signal": True}}],
     ("steps[1].args.offset",)),
    ([{"op": "dev_unregister_dmb", "args": {"token": {"$ref": "nope.token"}}}],
     ("steps[0].args.token", "nope")),
    ([{"op": "conn_send", "args": {"conn": 1, "data": "zz"}}], ("steps[0].args.data", "hex")),
    ([{"op": "no_such_op", "args": {}}], ("steps[0].op", "no_such_op")),
])
def test_a_malformed_conformance_trace_is_input_error_naming_the_field(
        tmp_path: Path, steps: list[Any], words: tuple[str, ...]) -> None:
    path = write(tmp_path, "c.json", {**V1_CONF, "steps": steps})
    _one_line_exit_2(CliRunner().invoke(replay, [path, "--target", "model"]), *words)


def test_an_unknown_model_family_names_the_known_ones() -> None:
    with pytest.raises(TraceFormatError) as info:
        build_model("no-such-family", "small", None)
    assert "known: [" in str(info.value) and "'smcd-system'" in str(info.value)
