"""An out-of-process target: any program speaking JSON lines on stdin/stdout.

This is how implementations in other languages (a C or Rust user-space SMC-D, a kernel harness
driver) plug into the suite: ``smcd-check conform --target 'cmd:./my-target --flag'``.

Protocol (version :data:`~smcd_check.conformance.targets.adapter.PROTOCOL_VERSION`)
---------------------------------------------------------------------------------
One JSON object per line, UTF-8, in both directions. The suite sends requests; the target
answers each with exactly one response line carrying the same ``id``, in order.

Request::

    {"id": 7, "op": "dev_register_dmb", "args": {"size": 16384}}

Response, success or refusal::

    {"id": 7, "ok": true, "result": {"token": 1234, "sba_idx": 0, "len": 16384}}
    {"id": 8, "ok": false, "error": "EINVAL", "detail": "unknown token 0x99"}

Session:

1. ``hello`` first: ``{"id": 0, "op": "hello", "args": {"protocol": 1}}`` ->
   ``{"id": 0, "ok": true, "result": {"name": "my-smcd", "protocol": 1,
   "capabilities": ["device", "device-nocopy"]}}``. Capabilities are the values of
   :class:`~smcd_check.conformance.targets.adapter.Capability`; unknown ones are ignored.
2. ``reset`` (``"args": {}``) before every case: forget all DMBs, connections and endpoints.
3. Operations from :data:`~.adapter.OPS`: byte strings as lowercase hex,
   cursors as ``[wrap, count]``, handles (tokens, connection and endpoint ids) as any JSON scalar.
4. ``bye`` at the end; the suite then closes stdin and waits briefly before killing the process.

Anything else is a broken target: a line that is not a JSON object, a wrong ``id``, a missing
``ok``, an exit, or no answer within the timeout. The case in progress is then an ERROR, the
process is killed, and a fresh process is started (with a new ``hello``) for the next case.
Lines the target writes to stderr are kept (the last ones appear in the error message).
"""

from __future__ import annotations

import contextlib
import json
import queue
import shlex
import subprocess
import threading
from collections import deque
from typing import Any

from smcd_check.conformance.targets.adapter import (
    PROTOCOL_VERSION,
    Capability,
    Observation,
    Op,
    TargetBroken,
    TargetLoadError,
    parse_capability,
)
from smcd_check.conformance.targets.protocol import AnswerError, check_answer

#: protocol versions the suite speaks (1: the vocabulary before hs_eof, hs_timeout and the
#: handshake effects; 2: before the protocol-3 capabilities; everything else is the same)
SUPPORTED_PROTOCOLS = (1, 2, 3, 4)
#: the first protocol version of each capability added after version 1
SINCE: dict[Capability, int] = {Capability.HANDSHAKE: 2, Capability.LGR: 3,
                                Capability.CDC_INJECT: 3, Capability.CONN_STATE: 3,
                                Capability.URGENT: 4}
#: seconds to wait for one answer before declaring the target hung
DEFAULT_TIMEOUT = 5.0
#: seconds a freshly started process may take to answer ``hello`` (interpreters start slowly)
STARTUP_TIMEOUT = 20.0
_EOF = object()


class SubprocessTarget:
    """A target running as a child process, spoken to in JSON lines.

    Args:
        command: the command line (split with :func:`shlex.split`) or an argv list.
        timeout: seconds to wait for each answer.
        startup_timeout: seconds to wait for the ``hello`` answer of a fresh process.
        label: name for reports (default ``cmd:<command>``).

    Raises:
        TargetLoadError: the program cannot be started or does not answer ``hello`` properly.
    """

    def __init__(self, command: str | list[str], *, timeout: float = DEFAULT_TIMEOUT,
                 label: str | None = None, startup_timeout: float = STARTUP_TIMEOUT) -> None:
        try:
            self.argv = shlex.split(command) if isinstance(command, str) else list(command)
        except ValueError as exc:  # an unbalanced quote: a usage error, not a traceback
            raise TargetLoadError(f"cannot parse the command line {command!r}: {exc}") from None
        if not self.argv:
            raise TargetLoadError("empty command for the subprocess target")
        self.timeout = timeout
        self.startup_timeout = max(startup_timeout, timeout)
        self.name = label or "cmd:" + " ".join(self.argv)
        self.capabilities: frozenset[Capability] = frozenset()
        self.impl_name = ""
        self.restarts = 0
        self._proc: subprocess.Popen[str] | None = None
        self._lines: queue.Queue[object] = queue.Queue()
        self._stderr: deque[str] = deque(maxlen=20)
        self._next_id = 0
        self._needs_reset = False
        try:
            self._start()
        except TargetBroken as exc:
            self._kill()
            raise TargetLoadError(f"target {self.name!r} did not start: {exc}") from exc

    # ------------------------------------------------------------------ process management

    def _start(self) -> None:
        try:
            self._proc = subprocess.Popen(
                self.argv,
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
                encoding="utf-8",
                errors="replace",
                bufsize=1,
            )
        except OSError as exc:
            raise TargetBroken(f"cannot run {self.argv[0]!r}: {exc}") from exc
        self._lines = queue.Queue()
        self._stderr.clear()
        proc = self._proc
        threading.Thread(target=self._pump_stdout, args=(proc, self._lines), daemon=True).start()
        threading.Thread(target=self._pump_stderr, args=(proc,), daemon=True).start()
        result = self._request("hello", {"protocol": PROTOCOL_VERSION},
                               timeout=self.startup_timeout)
        if not result.ok:
            raise TargetBroken(f"hello refused: {result.error} {result.detail}")
        value = result.get("capabilities") if "capabilities" in _keys(result) else None
        if not isinstance(value, list):
            raise TargetBroken("hello result has no 'capabilities' list")
        caps = set()
        for name in value:
            for cap in Capability:
                if cap.value == name:
                    caps.add(cap)
        self.capabilities = frozenset(caps)
        self.impl_name = str(result.get("name")) if "name" in _keys(result) else ""
        proto = result.get("protocol") if "protocol" in _keys(result) else PROTOCOL_VERSION
        if proto not in SUPPORTED_PROTOCOLS:
            raise TargetBroken(f"target speaks protocol {proto!r}, the suite "
                               f"{', '.join(map(str, SUPPORTED_PROTOCOLS))}")
        newer = sorted(c.value for c in caps if SINCE.get(c, 1) > proto)
        if newer:
            raise TargetBroken(f"protocol {proto} has no {', '.join(newer)} operations: a "
                               f"target declaring them must speak protocol "
                               f"{max(SINCE[parse_capability(n)] for n in newer)} "
                               "(conformance/PROTOCOL.md, version table)")
        self.protocol = proto

    @staticmethod
    def _pump_stdout(proc: subprocess.Popen[str], lines: queue.Queue[object]) -> None:
        assert proc.stdout is not None
        # _kill closes the pipe under this thread (a target refused at hello, a hang): the
        # iteration then raises ValueError or OSError, which is the end of the stream too
        with contextlib.suppress(ValueError, OSError):
            for line in proc.stdout:
                lines.put(line)
        lines.put(_EOF)

    def _pump_stderr(self, proc: subprocess.Popen[str]) -> None:
        assert proc.stderr is not None
        with contextlib.suppress(ValueError, OSError):  # closed by _kill, as for stdout
            for line in proc.stderr:
                self._stderr.append(line.rstrip("\n"))

    def _kill(self) -> None:
        proc, self._proc = self._proc, None
        if proc is None:
            return
        with contextlib.suppress(OSError):
            proc.kill()
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(timeout=2)
        for stream in (proc.stdin, proc.stdout, proc.stderr):
            with contextlib.suppress(OSError, ValueError):
                if stream is not None:
                    stream.close()

    def _broken(self, what: str) -> TargetBroken:
        proc = self._proc
        code = proc.poll() if proc is not None else None
        self._kill()
        self._needs_reset = True
        tail = " | ".join(list(self._stderr)[-3:])
        parts = [what]
        if code is not None:
            parts.append(f"exit code {code}")
        if tail:
            parts.append(f"stderr: {tail}")
        return TargetBroken("; ".join(parts))

    # ------------------------------------------------------------------ one request

    def _request(self, op: str, args: dict[str, Any], *,
                 timeout: float | None = None) -> Observation:
        proc = self._proc
        if proc is None or proc.stdin is None:
            raise self._broken("the target process is not running")
        req_id = self._next_id
        self._next_id += 1
        line = json.dumps({"id": req_id, "op": op, "args": args}, separators=(",", ":"))
        try:
            proc.stdin.write(line + "\n")
            proc.stdin.flush()
        except (OSError, ValueError) as exc:
            raise self._broken(f"{op}: cannot write the request ({exc})") from exc
        wait = self.timeout if timeout is None else timeout
        try:
            answer = self._lines.get(timeout=wait)
        except queue.Empty:
            raise self._broken(f"{op}: no answer within {wait:g} s (hung)") from None
        if answer is _EOF:
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(timeout=1)
            raise self._broken(f"{op}: the target process exited (crashed)")
        text = str(answer).strip()
        try:
            data = json.loads(text)
        except json.JSONDecodeError:
            raise self._broken(f"{op}: answer is not JSON: {text[:80]!r}") from None
        if not isinstance(data, dict):
            raise self._broken(f"{op}: answer is not a JSON object: {text[:80]!r}")
        if data.get("id") != req_id:
            raise self._broken(f"{op}: answer has id {data.get('id')!r}, expected {req_id}")
        try:
            check_answer(op, data)
        except AnswerError as exc:
            # a malformed answer is an ERROR naming the field, never compared as if it meant
            # something (conformance/PROTOCOL.md, protocol.schema.json)
            raise self._broken(f"malformed answer: {exc}") from None
        ok = data.get("ok")
        if ok is True:
            result = data.get("result", {})
            if not isinstance(result, dict):
                raise self._broken(f"{op}: 'result' is not an object: {text[:80]!r}")
            return Observation.success(result)
        if ok is False:
            error = data.get("error")
            if not isinstance(error, str) or not error:
                raise self._broken(f"{op}: refusal without an 'error' string: {text[:80]!r}")
            return Observation.failure(error, str(data.get("detail", "")))
        raise self._broken(f"{op}: answer has no boolean 'ok': {text[:80]!r}")

    # ------------------------------------------------------------------ Target protocol

    def reset(self) -> None:
        """Start a fresh process if the last one broke, then send ``reset``."""
        if self._proc is None or self._needs_reset:
            self._kill()
            self._needs_reset = False
            self.restarts += 1
            self._start()
        obs = self._request("reset", {})
        if not obs.ok:
            raise self._broken(f"reset refused: {obs.error}")

    def apply(self, op: Op) -> Observation:
        return self._request(op.name, op.kwargs())

    def close(self) -> None:
        proc = self._proc
        if proc is not None and proc.poll() is None and proc.stdin is not None:
            with contextlib.suppress(OSError, ValueError):
                proc.stdin.write(json.dumps({"id": self._next_id, "op": "bye", "args": {}}) + "\n")
                proc.stdin.flush()
                proc.stdin.close()
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(timeout=1)
        self._kill()


def _keys(obs: Observation) -> list[str]:
    return [k for k, _ in obs.value] if obs.ok and obs.value else []
