"""`smcd-check decode`: golden vectors print field by field, JSON parses, bad input exits 2."""

from __future__ import annotations

import io
import json
import resource
import subprocess
import sys
from pathlib import Path

import hypothesis.strategies as st
import pytest
from click.testing import CliRunner
from hypothesis import given

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "spec"))

from clc_vectors import (
    ALL,
    CAP_ACCEPT_V2_FIRST_CONTACT,
    CAP_CONFIRM_V2_FIRST_CONTACT,
    CAP_DECLINE_V2_NOUEID,
    CAP_PROPOSAL_V2_UEID,
)

from smcd_check.cli.main import cli
from smcd_check.spec.clc import dissect


def run(*args: str, stdin: str | None = None) -> tuple[int, str, str]:
    result = CliRunner().invoke(cli, ["decode", *args], input=stdin)
    return result.exit_code, result.stdout, result.stderr


@pytest.mark.parametrize("vector", ALL, ids=lambda b: f"{len(b)}B-{b[4]}")
def test_each_golden_vector_prints_every_field(vector: bytes) -> None:
    code, out, _ = run(vector.hex())
    assert code == 0
    for f in dissect(vector):
        assert f.name in out
    assert "Message 1 at byte 0" in out


def test_table_shows_offsets_raw_bytes_and_meanings() -> None:
    code, out, _ = run(CAP_DECLINE_V2_NOUEID.hex())
    assert code == 0
    line = next(ln for ln in out.splitlines() if ln.strip().startswith("peer_diagnosis "))
    assert " 16 " in line and "03 03 00 08" in line and "SMC_CLC_DECL_NOUEID" in line
    assert "Decline v2" in out


def test_json_output_parses_and_lists_the_fields() -> None:
    code, out, _ = run("--json", CAP_ACCEPT_V2_FIRST_CONTACT.hex())
    assert code == 0
    doc = json.loads(out)
    (msg,) = doc["messages"]
    assert msg["type"] == "ACCEPT" and msg["length"] == 130 and msg["version"] == 2
    fields = {f["name"]: f for f in msg["fields"]}
    assert fields["d0.token"]["value"] == 0x056BB09D0D41D3DD
    assert fields["d0.token"]["raw"] == "056bb09d0d41d3dd" and fields["d0.token"]["offset"] == 16
    assert fields["fce.release"]["mask"] == 0x0F
    assert len(msg["fields"]) == len(dissect(CAP_ACCEPT_V2_FIRST_CONTACT))


def test_concatenated_payload_decodes_in_turn_with_headings() -> None:
    stream = CAP_PROPOSAL_V2_UEID + CAP_ACCEPT_V2_FIRST_CONTACT + CAP_CONFIRM_V2_FIRST_CONTACT
    code, out, _ = run(stream.hex())
    assert code == 0
    assert "Message 1 at byte 0: Proposal v2" in out
    assert "Message 2 at byte 224: Accept v2 (SMC-D, first contact)" in out
    assert "Message 3 at byte 354: Confirm v2" in out
    code, out, _ = run("--json", stream.hex())
    assert [m["offset"] for m in json.loads(out)["messages"]] == [0, 224, 354]


def test_stdin_dash_and_file(tmp_path: Path) -> None:
    code, out, _ = run("-", stdin=CAP_DECLINE_V2_NOUEID.hex() + "\n")
    assert code == 0 and "peer_diagnosis" in out
    path = tmp_path / "payload.hex"
    path.write_text(CAP_DECLINE_V2_NOUEID.hex(":"))
    code, out, _ = run("--file", str(path))
    assert code == 0 and "peer_diagnosis" in out


def test_blanks_colons_and_0x_prefixes_are_tolerated() -> None:
    raw = CAP_DECLINE_V2_NOUEID
    spaced = " ".join(f"0x{b:02x}" for b in raw[:8]) + "\n" + raw[8:].hex(":")
    code, out, _ = run(spaced)
    assert code == 0 and "SMC_CLC_DECL_NOUEID" in out
    code, out, _ = run("0x" + raw.hex(), )
    assert code == 0
    code, out, _ = run(*[f"{b:02x}" for b in raw])  # unquoted bytes as separate arguments
    assert code == 0


@pytest.mark.parametrize(("text", "words"), [
    ("e2d4zz", "bad hex: character 'z'"),
    ("e2d4c", "odd number of hex digits (5)"),
    ("   ", "no hex digits"),
])
def test_bad_hex_exits_2_with_one_line(text: str, words: str) -> None:
    code, out, err = run(text)
    assert code == 2 and out == ""
    assert words in err and err.count("\n") == 1 and err.startswith("smcd-check: error:")


def test_rejected_message_exits_2_naming_field_and_offset() -> None:
    bad = bytearray(CAP_ACCEPT_V2_FIRST_CONTACT)
    bad[126:130] = b"\0\0\0\0"
    code, _, err = run(bad.hex())
    assert code == 2 and err.count("\n") == 1
    assert "trl.eyecatcher at offset 126" in err and "found 00000000" in err


def test_bad_second_message_is_named() -> None:
    code, _, err = run((CAP_DECLINE_V2_NOUEID + CAP_DECLINE_V2_NOUEID[:20]).hex())
    assert code == 2 and "message 1 (at byte 44)" in err


def test_no_input_and_both_inputs_are_usage_errors(tmp_path: Path) -> None:
    code, _, err = run()
    assert code == 2 and "no hex given" in err
    path = tmp_path / "x.hex"
    path.write_text("00")
    code, _, err = run("00", "--file", str(path))
    assert code == 2 and "not both" in err


def test_help_shows_an_example() -> None:
    code, out, _ = run("--help")
    assert code == 0 and "smcd-check decode e2d4c3d904002c20" in out and "--json" in out


# ---------------------------------------------------------------------------- streaming (issue 16)


def _cli(*args: str, **kw: object) -> subprocess.Popen[bytes]:
    return subprocess.Popen([sys.executable, "-c", "from smcd_check.cli.main import main; main()",
                             "decode", *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            **kw)  # type: ignore[call-overload]


def _limit_memory() -> None:
    resource.setrlimit(resource.RLIMIT_AS, (1 << 30, 1 << 30))


def test_dev_zero_under_a_memory_limit_is_bad_hex_not_memoryerror() -> None:
    """The input is read in chunks: an endless file fails on its first bad character."""
    proc = _cli("--file", "/dev/zero", preexec_fn=_limit_memory)
    _, err = proc.communicate(timeout=60)
    text = err.decode()
    assert proc.returncode == 2, text
    assert text.count("\n") == 1 and "bad hex: character '\\x00'" in text
    assert "Traceback" not in text and "MemoryError" not in text


def test_output_comes_as_the_stream_goes() -> None:
    """The first message is printed while the input is still open (nothing waits for EOF)."""
    proc = _cli("-", stdin=subprocess.PIPE)
    assert proc.stdin is not None and proc.stdout is not None
    proc.stdin.write(CAP_DECLINE_V2_NOUEID.hex().encode() + b"\n")
    proc.stdin.flush()
    first = proc.stdout.readline().decode()
    assert first.startswith("Message 1 at byte 0: Decline v2")
    proc.stdin.write(CAP_DECLINE_V2_NOUEID.hex().encode())
    proc.stdin.close()
    rest = proc.stdout.read().decode()
    assert proc.wait(timeout=30) == 0
    assert "Message 2 at byte 44" in rest and rest.endswith("2 messages decoded\n")


@given(st.lists(st.sampled_from(ALL), min_size=1, max_size=4),
       st.sampled_from(["", " ", ":", "\n", " 0x"]), st.integers(1, 9))
def test_chunk_boundaries_never_change_the_decoded_stream(
        msgs: list[bytes], sep: str, chunk: int) -> None:
    """Read in chunks of any size, with blanks, colons or 0x prefixes between the bytes, the
    stream decodes to the same messages at the same offsets as when read whole."""
    import smcd_check.cli.decode as D
    from smcd_check.spec.clc import iter_stream

    text = sep.join(f"{b:02x}" for b in b"".join(msgs))
    whole = [(o, raw) for o, _, raw in iter_stream([bytes.fromhex(text.replace("0x", "")
                                                                      .replace(":", "")
                                                                      .replace(" ", "")
                                                                      .replace("\n", ""))])]
    saved = D.CHUNK
    D.CHUNK = chunk
    try:
        streamed = [(o, raw) for o, _, raw in iter_stream(D.hex_chunks(io.BytesIO(text.encode())))]
    finally:
        D.CHUNK = saved
    assert streamed == whole and len(whole) == len(msgs)


def test_bad_message_mid_stream_names_index_offset_and_field_and_json_stays_valid() -> None:
    bad = bytearray(CAP_ACCEPT_V2_FIRST_CONTACT)
    bad[126:130] = b"\0\0\0\0"
    stream = (CAP_DECLINE_V2_NOUEID * 3 + bytes(bad)).hex()
    code, out, err = run(stream)
    assert code == 2 and err.count("\n") == 1
    assert "message 3 (at byte 132)" in err and "trl.eyecatcher at offset 258" in err
    assert out.count("Message ") == 3  # the three good ones were printed first
    code, out, err = run("--json", stream)
    assert code == 2
    doc = json.loads(out)
    assert len(doc["messages"]) == 3 and "trl.eyecatcher" in doc["error"] and "count" not in doc
    code, out, _ = run("--json", (CAP_DECLINE_V2_NOUEID * 2).hex())
    assert code == 0 and json.loads(out)["count"] == 2
