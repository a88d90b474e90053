"""``smcd-check decode``: dissect CLC messages given as hex, field by field.

A thin layer over :mod:`smcd_check.spec.clc`: parse the hex, decode it as a stream
(:func:`~smcd_check.spec.clc.iter_stream`, so a captured TCP payload holding several messages
decodes in turn), print each message's fields as an aligned table or as JSON. Malformed input
(bad hex, odd length, a message the kernel would reject) exits 2 with the one-line error, naming
field, offset, expected and found.

Everything streams: the hex is read in chunks (:data:`CHUNK` characters), each message is printed
as soon as its bytes are in, and memory stays bounded whatever the input's size (at most a chunk
and one unfinished message, itself at most 65535 bytes). A message the kernel would reject in the
middle of a stream ends the run there with exit 2; the messages before it have been printed.
``bench/decode_stream.py`` measures the rate on a 10 MB capture-like stream.
"""

from __future__ import annotations

import json
import re
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

import click

from smcd_check.cli.common import InputError, fail_input
from smcd_check.spec.clc import (
    ClcError,
    ClcMessage,
    Decline,
    Field,
    Proposal,
    SmcType,
    dissect_decoded,
    iter_stream,
)
from smcd_check.spec.decline import describe

#: longest raw value shown in full in the table (longer ones are cut, the JSON has them all)
RAW_SHOWN = 8
#: characters of hex text read (and bytes decoded) at a time
CHUNK = 1 << 16

_TOKEN_PREFIX = re.compile(r"(?i)(?<![0-9a-f])0x")


def parse_hex(text: str) -> bytes:
    """Bytes from hex text (all of it at once); see :func:`hex_chunks` for the rules."""
    return b"".join(hex_chunks(text))


def describe_message(msg: ClcMessage) -> str:
    """One line: ``Accept v2 (SMC-D, first contact)``."""
    kind = type(msg).__name__
    parts: list[str] = []
    if isinstance(msg, Proposal):
        parts.append(f"v1 offer {msg.typev1.name}, v2 offer {msg.typev2.name}")
    elif isinstance(msg, Decline):
        parts.append(f"0x{msg.peer_diagnosis:08x} {describe(msg.peer_diagnosis)}")
    else:
        parts.append("SMC-D" if msg.typev1 == SmcType.D else "SMC-R")
        if msg.version >= 2 and msg.first_contact:
            parts.append("first contact")
    return f"{kind} v{msg.version} ({', '.join(parts)})"


def _value_json(value: object) -> object:
    if isinstance(value, bytes):
        return value.hex()
    return value


def field_json(f: Field) -> dict[str, Any]:
    return {"name": f.name, "offset": f.offset, "size": f.size, "raw": f.raw.hex(),
            "value": _value_json(f.value), "meaning": f.meaning, "mask": f.mask}


def _value_text(f: Field) -> str:
    if isinstance(f.value, bytes):
        return ""  # raw column shows it
    if isinstance(f.value, int):
        if f.size < 2 or f.mask is not None:
            return str(f.value)
        hexed = f"0x{f.value:0{f.size * 2}x}"
        return f"{hexed} ({f.value})" if f.size <= 4 else hexed
    return repr(f.value.rstrip(" ")) if isinstance(f.value, str) else ""


def _raw_text(f: Field) -> str:
    shown = f.raw[:RAW_SHOWN].hex(" ")
    if len(f.raw) > RAW_SHOWN:
        shown += f" .. ({len(f.raw)} B)"
    return shown


#: the table's columns: (heading, width); the last one is not padded
_COLUMNS = (("field", 22), ("offset", 8), ("raw (hex)", 25), ("value", 23), ("meaning", 0))
_TABLE_HEAD = (" " + "".join(f"{h:<{w}} " if h != "offset" else f"{h:>{w - 2}}   "
                             for h, w in _COLUMNS[:-1]) + _COLUMNS[-1][0])


def table_lines(index: int, offset: int, msg: ClcMessage, fields: list[Field]) -> list[str]:
    """One message as an aligned plain-text table (a heading, then a line per field)."""
    lines = [f"Message {index + 1} at byte {offset}: {describe_message(msg)}, "
             f"{msg.length} bytes", _TABLE_HEAD]
    for f in fields:
        line = _LINES.get(f)
        if line is None:
            where = str(f.offset) if f.mask is None else f"{f.offset} &{f.mask:02x}"
            line = (f" {f.name:<22} {where:>6}   {_raw_text(f):<25} {_value_text(f):<23} "
                    f"{f.meaning}").rstrip()
            _remember(_LINES, f, line)
        lines.append(line)
    lines.append("")
    return lines


#: rendered table lines and JSON objects per field: a stream repeats most fields (eyecatchers,
#: headers, reserved bytes, common values), and fields are hashable; bounded by _CACHE_MAX
_LINES: dict[Field, str] = {}
_JSON_FIELDS: dict[Field, str] = {}
_CACHE_MAX = 1 << 16


def _remember(cache: dict[Field, str], f: Field, text: str) -> None:
    if len(cache) >= _CACHE_MAX:
        cache.clear()
    cache[f] = text


def message_json_text(index: int, offset: int, msg: ClcMessage, fields: list[Field]) -> str:
    """:func:`message_json` encoded as one line of JSON (the same document, built faster)."""
    parts = []
    for f in fields:
        text = _JSON_FIELDS.get(f)
        if text is None:
            text = json.dumps(field_json(f))
            _remember(_JSON_FIELDS, f, text)
        parts.append(text)
    head = json.dumps({"index": index, "offset": offset, "type": msg.type.name,
                       "version": msg.version, "length": msg.length,
                       "summary": describe_message(msg)})
    return head[:-1] + ', "fields": [' + ", ".join(parts) + "]}"


def message_json(index: int, offset: int, msg: ClcMessage, fields: list[Field]) -> dict[str, Any]:
    return {"index": index, "offset": offset, "type": msg.type.name, "version": msg.version,
            "length": msg.length, "summary": describe_message(msg),
            "fields": [field_json(f) for f in fields]}


def hex_chunks(source: IO[str] | IO[bytes] | str, start: int = 0) -> Iterator[bytes]:
    """Bytes from hex text read in chunks; blanks, colons and ``0x`` prefixes are ignored.

    Raises InputError (exit 2) naming the first bad character (its position counted after
    removing blanks, colons and 0x), an odd digit count at the end, or no digits at all.
    """
    prev = ""  # the character before the text being cleaned (for the 0x lookbehind)
    carry = ""  # held-back raw text: a trailing "0" that may start a "0x"
    digit = ""  # an odd hex digit waiting for its partner
    seen = 0  # hex digits seen so far
    while True:
        if isinstance(source, str):
            block: str | bytes = source[start:start + CHUNK]
            start += CHUNK
        else:
            # read1: what is there now (up to CHUNK), so output follows a live pipe
            read = getattr(source, "read1", source.read)
            block = read(CHUNK)
        final = not block
        text = block.decode("latin-1") if isinstance(block, bytes) else block
        text = carry + text
        carry = ""
        if not final and text.endswith("0"):
            text, carry = text[:-1], "0"
        cleaned = _TOKEN_PREFIX.sub("", prev + text)[len(prev):] if prev else \
            _TOKEN_PREFIX.sub("", text)
        if text:
            prev = text[-1]
        cleaned = _BLANKS.sub("", cleaned)
        bad = _NOT_HEX.search(cleaned)
        if bad:
            fail_input(f"bad hex: character {bad.group()!r} is not a hex digit "
                       f"(position {seen + bad.start()} after removing blanks, colons and 0x)")
        seen += len(cleaned)
        cleaned = digit + cleaned
        digit = ""
        if len(cleaned) % 2:
            cleaned, digit = cleaned[:-1], cleaned[-1]
        if cleaned:
            yield bytes.fromhex(cleaned)
        if final:
            break
    if not seen:
        fail_input("no hex digits given")
    if digit:
        fail_input(f"bad hex: odd number of hex digits ({seen}); each byte needs two digits")


_BLANKS = re.compile(r"[\s:]+")
_NOT_HEX = re.compile(r"[^0-9a-fA-F]")


EXAMPLE = (
    "e2d4c3d904002c20000000000000000003030008200000000000000000000000"
    "0000000000000000e2d4c3d9"
)


@click.command(
    name="decode",
    epilog=(
        "Example (the Decline a Linux 6.12 server sends when the client has no UEID):\n\n"
        f"\b\n  smcd-check decode {EXAMPLE}\n\n"
        "Output streams: each message is printed as soon as its bytes are read, in constant "
        "memory. --json prints one document, {\"messages\": [...], \"count\": N}, written as "
        "it goes with one message per line; if a message is rejected part-way, the document "
        "ends with \"error\" instead of \"count\".\n\n"
        "Exit codes: 0 decoded; 2 bad hex or a message Linux would reject (one line naming "
        "the message, its offset, the field, what was expected and what was found)."
    ),
)
@click.argument("hex_text", metavar="[HEX]...", nargs=-1)
@click.option("--file", "file", type=click.Path(dir_okay=False), default=None,
              help="Read the hex from this file instead ('-' for stdin).")
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
def command(hex_text: tuple[str, ...], file: str | None, as_json: bool) -> None:
    """Decode CLC messages (Proposal, Accept, Confirm, Decline) given as hex.

    HEX is the message in hex; '-' reads it from stdin. Blanks, colons and 0x prefixes are
    ignored, so tcpdump/Wireshark hex dumps paste as they are. Several concatenated messages
    (a captured TCP payload) are decoded in turn, each with its own heading. Every message is
    checked as the Linux 6.12 kernel checks it on receipt.
    """
    value = " ".join(hex_text) if hex_text else None
    if value is not None and file is not None:
        fail_input("give the hex either as an argument or with --file, not both")
    if value is None and file is None:
        fail_input("no hex given (an argument, '-' for stdin, or --file)")
    if file is not None and file != "-":
        try:
            with Path(file).open("rb") as f:
                _decode_all(f, as_json)
        except OSError as exc:
            fail_input(f"cannot read hex file {file!r}: {exc.strerror or exc}")
    elif value == "-" or file == "-":
        stdin: Any = sys.stdin
        _decode_all(getattr(stdin, "buffer", stdin), as_json)
    else:
        assert value is not None
        _decode_all(value, as_json)


def _decode_all(source: IO[bytes] | str, as_json: bool) -> None:
    """Decode and print every message of ``source`` as it completes (see the module doc)."""
    out = sys.stdout
    write = out.write
    count = 0
    if as_json:
        write('{"messages": [\n')
    try:
        for offset, msg, raw in iter_stream(hex_chunks(source)):
            fields = dissect_decoded(msg, raw)
            if as_json:
                write(("" if count == 0 else ",\n")
                      + message_json_text(count, offset, msg, fields))
            else:
                write("\n".join(table_lines(count, offset, msg, fields)) + "\n")
            count += 1
    except (ClcError, InputError) as err:
        text = str(err) if isinstance(err, ClcError) else err.format_message()
        if as_json:
            write(("\n" if count else "") + "], \"error\": " + json.dumps(text) + "}\n")
        out.flush()
        fail_input(text)
    except BrokenPipeError:  # `smcd-check decode ... | head`: the reader has gone
        sys.stderr.close()
        raise SystemExit(0) from None
    if as_json:
        write(("\n" if count else "") + f'], "count": {count}}}\n')
    else:
        write(f"{count} message{'s' if count != 1 else ''} decoded\n")
