"""The protocol document's machine half: the JSON Schema matches the vocabulary, is shipped as a
file, and a malformed answer from a subprocess target is an ERROR that names the field."""

from __future__ import annotations

import json
import sys
import textwrap
from pathlib import Path

import pytest

from smcd_check.conformance.catalogue.registry import by_id
from smcd_check.conformance.runner.run import ExpectationCache, Verdict, run_case
from smcd_check.conformance.targets.adapter import OPS, PROTOCOL_VERSION
from smcd_check.conformance.targets.protocol import (
    RESULT_SCHEMAS,
    SCHEMA_FILE,
    AnswerError,
    check_answer,
    render_schema,
)
from smcd_check.conformance.targets.spec_target import SpecTarget
from smcd_check.conformance.targets.subprocess_target import SubprocessTarget

DOC = Path(__file__).resolve().parents[2] / "conformance" / "PROTOCOL.md"


def test_every_operation_has_a_result_schema_with_its_result_keys() -> None:
    assert set(RESULT_SCHEMAS) == set(OPS)
    for name, info in OPS.items():
        assert set(RESULT_SCHEMAS[name]) == set(info.result), name


def test_the_shipped_schema_file_is_the_generated_one() -> None:
    """protocol.schema.json is what targets in other languages read: it must not drift."""
    assert SCHEMA_FILE.read_text() == render_schema(), (
        "regenerate: python -c 'from smcd_check.conformance.targets.protocol import *; "
        "SCHEMA_FILE.write_text(render_schema())'")
    assert json.loads(SCHEMA_FILE.read_text())["x-protocol-version"] == PROTOCOL_VERSION


def test_the_protocol_document_names_every_operation_and_its_version() -> None:
    text = DOC.read_text()
    assert f"Protocol version {PROTOCOL_VERSION}" in text
    missing = [name for name in OPS if f"`{name}`" not in text]
    assert not missing


@pytest.mark.parametrize(("op", "answer", "words"), [
    ("conn_cursors", {"ok": True, "result": {
        "prod": [0, 1], "cons": [0, -1], "peer_prod": [0, 0], "peer_cons": [0, 0],
        "bytes_to_rcv": 0, "sndbuf_space": 0, "peer_rmbe_space": 0}},
     "conn_cursors: result.cons[1]: -1 is less than the minimum of 0"),
    ("dev_register_dmb", {"ok": True, "result": {"token": "0x12", "sba_idx": 0, "len": 1}},
     "dev_register_dmb: result.token: '0x12' is not of type 'integer'"),
    ("hs_feed", {"ok": True, "result": {"out": ["e2d4"], "outcome": {"kind": "won"},
                                        "effects": []}},
     "hs_feed: result.outcome"),
    ("conn_recv", {"ok": True, "result": {"data": "ABC", "eof": False}},
     "conn_recv: result.data: 'ABC' does not match"),
    ("dev_move_data", {"ok": False, "error": "einval"},
     "dev_move_data: answer.error: 'einval' does not match"),
])
def test_a_malformed_answer_names_the_field(op: str, answer: dict, words: str) -> None:
    with pytest.raises(AnswerError) as info:
        check_answer(op, {"id": 1, **answer})
    assert str(info.value).startswith(words)


def test_a_subprocess_answering_garbage_fields_gives_an_error_naming_them(
        tmp_path: Path) -> None:
    script = tmp_path / "bad_target.py"
    script.write_text(textwrap.dedent('''
        import json, sys
        for line in sys.stdin:
            req = json.loads(line)
            op = req["op"]
            if op == "hello":
                res = {"name": "bad", "protocol": 2, "capabilities": ["device"]}
            elif op == "dev_register_dmb":
                res = {"token": 5, "sba_idx": -3, "len": 16384}
            else:
                res = {}
            print(json.dumps({"id": req["id"], "ok": True, "result": res}), flush=True)
        '''))
    target = SubprocessTarget([sys.executable, str(script)])
    try:
        res = run_case(target, by_id("lifecycle.dmb.register"), ExpectationCache(SpecTarget()))
    finally:
        target.close()
    assert res.verdict is Verdict.ERROR
    assert "malformed answer: dev_register_dmb: result.sba_idx: -3 is less than the minimum" \
        in res.message


def test_the_protocol_document_names_every_cdc_check_in_order() -> None:
    """A target written from the document alone must refuse with the same names in the same
    order as spec/cdc_rx.py."""
    import re

    from smcd_check.spec.cdc_rx import CHECK_NAMES

    named = re.findall(r"^\| \d+ \| `([a-z-]+)` \|", DOC.read_text(), re.MULTILINE)
    assert named == list(CHECK_NAMES)
