"""Shared CLI helpers: exit codes, input errors, reading hex/bytes inputs, JSON output."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any, NoReturn

import click

#: checked, nothing wrong
EXIT_OK = 0
#: a finding: violation, failed case, disproved theorem
EXIT_FINDING = 1
#: usage or input error (bad flag, unreadable file, malformed input)
EXIT_INPUT = 2
#: the run failed before a verdict (a parallel or cluster worker died); partial counts printed
EXIT_FAILED = 3
#: interrupted by the user (Ctrl-C); a partial result may have been printed
EXIT_INTERRUPTED = 130


class InputError(click.ClickException):
    """Bad input from the user: printed as one line, exit code 2, never a traceback."""

    exit_code = EXIT_INPUT

    def show(self, file: Any = None) -> None:
        click.echo(f"smcd-check: error: {self.format_message()}", err=True)


def fail_input(message: str) -> NoReturn:
    """Stop the command with exit 2 and a one-line message naming what was wrong."""
    raise InputError(message)


def read_text_arg(value: str | None, file: str | None, what: str) -> str:
    """Return text given as an argument, as ``-`` (stdin), or with ``--file``.

    Raises InputError when neither or both are given or the file cannot be read.
    """
    if value is not None and file is not None:
        fail_input(f"give the {what} either as an argument or with --file, not both")
    if file is not None:
        try:
            return Path(file).read_text()
        except (OSError, UnicodeDecodeError) as exc:
            fail_input(f"cannot read {what} file {file!r}: {exc}")
    if value is None:
        fail_input(f"no {what} given (an argument, '-' for stdin, or --file)")
    if value == "-":
        return sys.stdin.read()
    return value


def echo_json(data: Any) -> None:
    """Print one JSON document (sorted keys, stable for diffs) to stdout."""
    click.echo(json.dumps(data, indent=2, sort_keys=True, default=str))
