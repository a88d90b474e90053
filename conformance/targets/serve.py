"""Serve any in-process target over the JSON-lines protocol on stdin/stdout.

``python -m smcd_check.conformance.targets.serve model`` turns the project's model (or ``spec``, a
``zoo:NAME`` mutant, or ``package.module:factory``) into a process that
:class:`~smcd_check.conformance.targets.subprocess_target.SubprocessTarget` can drive. It is the
reference peer for people writing a target in another language (compare your program's answers
with this one's), and the suite's own tests use it to check the subprocess machinery end to end.

Options for testing the suite's error handling (never needed by real targets):
``--crash-on OP`` exits with status 3 when asked to run OP, ``--hang-on OP`` sleeps forever,
``--garbage-on OP`` answers a line that is not JSON.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from typing import Any, TextIO

from smcd_check.conformance.targets.adapter import (
    PROTOCOL_VERSION,
    Op,
    Target,
    TargetError,
    capabilities_json,
)


def serve(target: Target, instream: TextIO, outstream: TextIO, *,
          crash_on: str | None = None, hang_on: str | None = None,
          garbage_on: str | None = None) -> int:
    """Answer requests until ``bye`` or end of input; return the exit status."""

    def answer(data: dict[str, Any]) -> None:
        outstream.write(json.dumps(data, separators=(",", ":")) + "\n")
        outstream.flush()

    for line in instream:
        line = line.strip()
        if not line:
            continue
        try:
            req = json.loads(line)
            req_id, name, args = req["id"], str(req["op"]), dict(req.get("args", {}))
        except (json.JSONDecodeError, KeyError, TypeError, ValueError) as exc:
            answer({"id": None, "ok": False, "error": "EBADMSG", "detail": str(exc)})
            continue
        if name == crash_on:
            return 3
        if name == hang_on:
            while True:
                time.sleep(3600)
        if name == garbage_on:
            outstream.write("this is not json\n")
            outstream.flush()
            continue
        if name == "hello":
            answer({"id": req_id, "ok": True, "result": {
                "name": target.name, "protocol": PROTOCOL_VERSION,
                "capabilities": capabilities_json(target.capabilities)}})
        elif name == "bye":
            answer({"id": req_id, "ok": True, "result": {}})
            return 0
        elif name == "reset":
            target.reset()
            answer({"id": req_id, "ok": True, "result": {}})
        else:
            try:
                op = Op.make(name, **args)
            except ValueError as exc:
                answer({"id": req_id, "ok": False, "error": "EOPNOTSUPP", "detail": str(exc)})
                continue
            try:
                obs = target.apply(op)
            except TargetError as exc:
                answer({"id": req_id, "ok": False, "error": "EIO", "detail": str(exc)})
                continue
            answer({"id": req_id, **obs.to_json()})
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m smcd_check.conformance.targets.serve",
                                     description=__doc__.splitlines()[0])
    parser.add_argument("target", help="spec, model, zoo:NAME or package.module:factory")
    parser.add_argument("--crash-on", metavar="OP")
    parser.add_argument("--hang-on", metavar="OP")
    parser.add_argument("--garbage-on", metavar="OP")
    ns = parser.parse_args(argv)
    from smcd_check.conformance.targets.load import load_target

    try:
        target = load_target(ns.target)
    except TargetError as exc:
        print(f"serve: {exc}", file=sys.stderr)
        return 2
    try:
        return serve(target, sys.stdin, sys.stdout, crash_on=ns.crash_on, hang_on=ns.hang_on,
                     garbage_on=ns.garbage_on)
    finally:
        target.close()


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
