"""``smcd-check decode``: dissect CLC messages given as hex, field by field.

A thin layer over :mod:`smcd_check.spec.clc`: parse the hex, ``decode_stream`` it (so a captured
TCP payload holding several messages decodes in turn), print each message's ``dissect`` fields
as an aligned table or as JSON. Malformed input (bad hex, odd length, a message the kernel would
reject) exits 2 with the one-line error, naming field, offset, expected and found.
"""

from __future__ import annotations

import re
import shutil
import sys
from typing import Any

import click

from smcd_check.cli.common import echo_json, fail_input, read_text_arg
from smcd_check.spec.clc import (
    ClcError,
    ClcMessage,
    Decline,
    Field,
    Proposal,
    SmcType,
    decode_stream,
    dissect,
)
from smcd_check.spec.decline import describe

#: longest raw value shown in full in the table (longer ones are cut, the JSON has them all)
RAW_SHOWN = 8

_TOKEN_PREFIX = re.compile(r"(?i)(?<![0-9a-f])0x")


def parse_hex(text: str) -> bytes:
    """Bytes from hex text; whitespace, colons and ``0x`` prefixes are ignored.

    Raises InputError (exit 2) naming the first bad character, or an odd digit count.
    """
    cleaned = _TOKEN_PREFIX.sub("", text)
    cleaned = re.sub(r"[\s:]", "", cleaned)
    if not cleaned:
        fail_input("no hex digits given")
    bad = re.search(r"[^0-9a-fA-F]", cleaned)
    if bad:
        fail_input(f"bad hex: character {bad.group()!r} is not a hex digit "
                   f"(position {bad.start()} after removing blanks, colons and 0x)")
    if len(cleaned) % 2:
        fail_input(f"bad hex: odd number of hex digits ({len(cleaned)}); "
                   "each byte needs two digits")
    return bytes.fromhex(cleaned)


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


def print_table(index: int, total: int, offset: int, msg: ClcMessage, fields: list[Field]) -> None:
    from rich import box
    from rich.console import Console
    from rich.table import Table

    width = shutil.get_terminal_size((160, 24)).columns if sys.stdout.isatty() else 160
    console = Console(file=sys.stdout, width=max(width, 100), highlight=False)
    title = (f"Message {index + 1} of {total} at byte {offset}: {describe_message(msg)}, "
             f"{msg.length} bytes")
    table = Table(title=title, title_justify="left", box=box.SIMPLE_HEAD, pad_edge=False)
    table.add_column("field", no_wrap=True)
    table.add_column("offset", justify="right", no_wrap=True)
    table.add_column("raw (hex)", no_wrap=True)
    table.add_column("value", overflow="fold")
    table.add_column("meaning", overflow="fold")
    for f in fields:
        where = str(f.offset) if f.mask is None else f"{f.offset} &{f.mask:02x}"
        table.add_row(f.name, where, _raw_text(f), _value_text(f), f.meaning)
    console.print(table)


EXAMPLE = (
    "e2d4c3d904002c20000000000000000003030008200000000000000000000000"
    "0000000000000000e2d4c3d9"
)


@click.command(
    name="decode",
    epilog=(
        "Example (the Decline a Linux 6.12 server sends when the client has no UEID):\n\n"
        f"\b\n  smcd-check decode {EXAMPLE}\n\n"
        "Exit codes: 0 decoded; 2 bad hex or a message Linux would reject (one line naming "
        "the field, its offset, what was expected and what was found)."
    ),
)
@click.argument("hex_text", metavar="[HEX]...", nargs=-1)
@click.option("--file", "file", type=click.Path(dir_okay=False), default=None,
              help="Read the hex from this file instead.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
def command(hex_text: tuple[str, ...], file: str | None, as_json: bool) -> None:
    """Decode CLC messages (Proposal, Accept, Confirm, Decline) given as hex.

    HEX is the message in hex; '-' reads it from stdin. Blanks, colons and 0x prefixes are
    ignored, so tcpdump/Wireshark hex dumps paste as they are. Several concatenated messages
    (a captured TCP payload) are decoded in turn, each with its own heading. Every message is
    checked as the Linux 6.12 kernel checks it on receipt.
    """
    value = " ".join(hex_text) if hex_text else None
    text = read_text_arg(value, file, "hex")
    data = parse_hex(text)
    try:
        messages = decode_stream(data)
    except ClcError as err:
        fail_input(str(err))
    offsets: list[int] = []
    pos = 0
    for m in messages:
        offsets.append(pos)
        pos += m.length
    if as_json:
        echo_json({"messages": [
            {"index": i, "offset": offsets[i], "type": m.type.name, "version": m.version,
             "length": m.length, "summary": describe_message(m),
             "fields": [field_json(f) for f in dissect(m)]}
            for i, m in enumerate(messages)
        ]})
    else:
        for i, m in enumerate(messages):
            print_table(i, len(messages), offsets[i], m, dissect(m))
