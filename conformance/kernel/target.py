"""The real Linux kernel as a conformance target: SMC-D connections over loopback-ism in qemu.

Theory of operation
-------------------
:class:`KernelTarget` boots the project's kernel image (:mod:`.kernel_build`) once, with the
guest harness in *serve* mode (``smcd-harness --serve``, :mod:`.kernel`): a command loop on the
serial console. Each :meth:`apply` sends one command line and waits for one reply line (timeout
-> :class:`~.adapter.TargetBroken`); :meth:`close` kills the guest's process group.

Capabilities: :attr:`~.adapter.Capability.CONN_MERGED`, :attr:`~.adapter.Capability.URGENT`
(urgent data and both directions on a socket pair), and :attr:`~.adapter.Capability.CLC`
and :attr:`~.adapter.Capability.HANDSHAKE` through the guest's user-space CLC peer (a BPF
sock_ops program gives its plain TCP sockets the SMC option; :mod:`.clc_peer` maps the
operations, ``peer.c`` does the guest side). If the peer cannot be set up in the guest (no BPF,
the option not taken), those two are missing and :attr:`capability_notes` says why: their cases
are UNSUPPORTED with that reason. Linux 6.12's loopback-ism always merges the sender's buffer
with the peer's DMB (``smcd_buf_attach``: the device supports "nocopy"), so copy-mode
connections do not exist in this kernel; the device and cursor operations are not reachable from
user space. Everything else is UNSUPPORTED.

Crashes and hangs: the serial console is read in full. An Oops, BUG, WARNING or panic on the
console or in the kernel log the peer reads after each handshake step (``/dev/kmsg``, level
warning or worse), or tasks in uninterruptible sleep when a handshake step timed out, make the
operation raise :class:`~.adapter.TargetBroken` with the console excerpt (the case is an ERROR);
the guest is then *poisoned* and the next :meth:`reset` boots a fresh one (a crashed handshake
worker may hold ``smc_server_lgr_pending``, and every later SMC-D handshake would hang).

The mapping, per operation (kernel function on the right):

* ``conn_open(mode="merged", dmb_size)``: a client and a server AF_SMC socket on 127.0.0.1 with
  ``SO_RCVBUFFORCE = dmb_size`` on both, so ``sk_rcvbuf = 2 * dmb_size`` and
  ``__smc_buf_create`` picks a DMB of ``dmb_size`` bytes; the UEID is added first so the
  connection is SMC-Dv2. ``sndbuf_size`` is ignored (merged: the sndbuf is the peer's DMB).
* ``conn_send``: one non-blocking ``send(2)`` (``smc_tx_sendmsg``); its ``EAGAIN`` is the
  adapter's ``n = 0`` ("no room now"). ``conn_recv``: one non-blocking ``recv(2)``; its
  ``EAGAIN`` is the adapter's empty result ("nothing yet"); ``eof`` is true when recv returned
  0, or when nothing is left (``SIOCINQ`` = 0) and the peer's close/shutdown flag has arrived.
* ``conn_shutdown``: ``shutdown(SHUT_WR)``; ``conn_close``: ``close(2)``.
* ``conn_abort``: refused with ``EOPNOTSUPP``: Linux has no system call that makes an SMC
  socket send ``peer_conn_abort`` while it can read (``close`` with unread data does, and that is
  ``conn_close``; ``SO_LINGER`` 0 does not abort SMC sockets).
* ``conn_open_urg(mode="merged", dmb_size, start)``: ``conn_open``, then ``start`` bytes of
  plain traffic each way, each read and confirmed (``serve_advance`` in harness.c; see
  :meth:`KernelTarget._open_urg`). ``conn_send_oob``: one non-blocking ``send(MSG_OOB)``;
  ``conn_recv_oob``: one non-blocking ``recv(MSG_OOB)`` of one byte (``smc_rx_recv_urg``);
  ``conn_atmark``: ``ioctl(SIOCATMARK)``; ``conn_set_oobinline``: ``setsockopt(SO_OOBINLINE)``.
* ``conn_cursors``: smc_diag's conninfo of the socket (matched by inode): ``prod`` =
  ``local_tx_ctrl.prod`` (diag ``tx_prod``), ``cons`` = ``local_tx_ctrl.cons`` (``tx_cons``),
  ``peer_prod`` = ``local_rx_ctrl.prod`` (``rx_prod``), ``peer_cons`` = ``local_rx_ctrl.cons``
  (``rx_cons``); ``bytes_to_rcv`` = ``SIOCINQ``; ``sndbuf_space`` = sndbuf length - ``SIOCOUTQ``
  (``smc_ioctl``); ``peer_rmbe_space`` is not exported by the kernel and is *derived*: peer
  ring length - distance(``rx_cons``, ``tx_prod``), which equals the kernel's counter whenever
  the connection is quiescent (every move announced by a CDC; the harness waits 3 ms after each
  call for the peer's tasklet).

After each call the guest sleeps 3 ms so the peer's CDC tasklet and tx worker have run: the
spec compares quiescent states.
"""

from __future__ import annotations

import collections
import contextlib
import os
import queue
import re
import signal
import subprocess
import threading
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from smcd_check.conformance.kernel.build import find_image
from smcd_check.conformance.kernel.qemu import (
    QEMU,
    KernelRunError,
    build_initramfs,
    busybox_path,
    cache_root,
    compile_harness,
    qemu_missing,
)
from smcd_check.conformance.targets.adapter import (
    Capability,
    Observation,
    Op,
    TargetBroken,
    TargetLoadError,
)

BOOT_TIMEOUT = 120.0
REPLY_TIMEOUT = 30.0
#: console lines that mean the kernel crashed or warned (printed even with loglevel=1: an Oops
#: switches the console to verbose)
CRASH_LINE = re.compile(r"Oops|BUG:|WARNING:|general protection fault|Kernel panic|"
                        r"kernel NULL pointer|RIP: |Call Trace:|---\[ end trace")
PEER_CAPS = frozenset({Capability.CLC, Capability.HANDSHAKE})
#: the socket's own capabilities (no user-space peer needed)
BASE_CAPS = frozenset({Capability.CONN_MERGED, Capability.URGENT})
#: the urgent-data calls on an open pair (capability urgent)
URG_CALLS = ("conn_send_oob", "conn_recv_oob", "conn_atmark", "conn_set_oobinline")
#: conn_open_urg moves up to two cursor periods of bytes in the guest (serve_advance bounds
#: each direction at 150 s)
OPEN_URG_TIMEOUT = 330.0


def _curs(text: str) -> list[int]:
    wrap, _, count = text.partition(":")
    return [int(wrap), int(count)]


class KernelTarget:
    """A Linux 6.12 guest with loopback-ism, driven over its serial console."""

    name = "kernel"

    def __init__(self, image: Path | None = None, *, timeout: float = REPLY_TIMEOUT,
                 peer: bool = True) -> None:
        why = qemu_missing()
        if why:
            raise TargetLoadError(f"kernel target: missing {why}")
        if image is None:
            found = find_image()
            if found is None:
                raise TargetLoadError(
                    "kernel target: no cached kernel image; run `smcd-check kernel build`"
                )
            image = found.path
        self.image = image
        self.timeout = timeout
        self.want_peer = peer
        self.capabilities: frozenset[Capability] = BASE_CAPS
        #: why a capability is missing (shown with the UNSUPPORTED cases)
        self.capability_notes: dict[Capability, str] = {}
        #: boots so far (1 + one per crash or hang)
        self.boots = 0
        self._lines: queue.Queue[str | None] = queue.Queue()
        self._proc: subprocess.Popen[bytes] | None = None
        self._console: collections.deque[str] = collections.deque(maxlen=400)
        self._crash: list[str] = []
        self._poisoned = ""
        self._peer: Any = None
        root = cache_root()
        try:
            self._harness = compile_harness(root)
        except KernelRunError as exc:
            raise TargetLoadError(f"kernel target: {exc}") from exc
        busybox = busybox_path()
        assert busybox is not None
        self._initrd = build_initramfs(self._harness, busybox,
                                       root / "runs" / f"serve-{os.getpid()}.gz")
        try:
            self._boot()
        except TargetBroken as exc:
            self.close()
            raise TargetLoadError(f"kernel target: {exc}") from exc

    # -- plumbing -----------------------------------------------------------------------------

    def _boot(self) -> None:
        """Start a guest (killing a previous one) and wait for its harness; set up the peer."""
        self._kill()
        self._lines = queue.Queue()
        self._crash = []
        self._poisoned = ""
        self._console.clear()
        cmd = [QEMU, "-accel", "tcg", "-m", "512", "-nographic", "-no-reboot",
               "-kernel", str(self.image), "-initrd", str(self._initrd),
               "-append", "console=ttyS0 quiet loglevel=1 panic=-1 smcd.run=--serve"]
        self._proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                      stderr=subprocess.STDOUT, start_new_session=True)
        self.boots += 1
        threading.Thread(target=self._reader, args=(self._proc, self._lines),
                         daemon=True).start()
        deadline = time.monotonic() + BOOT_TIMEOUT
        while True:
            line = self._next_line(deadline)
            if line is None:
                raise TargetBroken("the guest did not start its harness; console: "
                                   + " | ".join(list(self._console)[-8:]))
            if line.startswith("@@SMCD-READY"):
                break
        self._setup_peer()

    def _setup_peer(self) -> None:
        from smcd_check.conformance.kernel.clc_peer import BootIdentity, KernelPeer

        self._peer = None
        if not self.want_peer:
            return
        ok, kv, detail = self._call("peer_init")
        if not ok:
            why = f"user-space CLC peer unavailable in the guest: {detail or kv.get('error')}"
            self.capability_notes = dict.fromkeys(PEER_CAPS, why)
            self.capabilities = BASE_CAPS
            return
        self._peer = KernelPeer(self._call, BootIdentity.parse(kv), self._trouble)
        self.capability_notes = {}
        self.capabilities = BASE_CAPS | PEER_CAPS

    def _kill(self) -> None:
        proc, self._proc = self._proc, None
        if proc is not None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()

    def _reader(self, proc: subprocess.Popen[bytes], lines: queue.Queue[str | None]) -> None:
        assert proc.stdout is not None
        for raw in proc.stdout:
            line = raw.decode("utf-8", "replace").strip("\r\n").strip()
            if line.startswith("@@SMCD-"):
                lines.put(line)
            elif line:
                self._console.append(line)
                if CRASH_LINE.search(line) or self._crash:
                    self._crash.append(line)
        lines.put(None)

    def console_excerpt(self, lines: int = 24) -> str:
        """The crash report seen on the console (or the console's last lines)."""
        src = self._crash or list(self._console)
        return "\n".join(src[:lines])

    def _trouble(self, what: str, kv: Mapping[str, str]) -> None:
        """A peer step reported kernel log trouble or stuck tasks: the guest is poisoned."""
        text = ""
        if kv.get("kmsg", "-") != "-":
            text = bytes.fromhex(kv["kmsg"]).decode("utf-8", "replace").strip()
        stuck = kv.get("dstate", "-")
        if text and not re.search(r"Oops|BUG|WARNING|fault|panic|Call Trace|RIP", text):
            text = ""  # an ordinary warning-level message: not a crash
        if not text and stuck == "-":
            return
        time.sleep(0.3)  # let the console catch up with the crash report
        parts = []
        if text or self._crash:
            parts.append("kernel crash report:\n" + (self.console_excerpt() or text))
        if stuck != "-":
            parts.append(f"kernel hang: tasks in uninterruptible sleep after {what}: {stuck}")
        self._poisoned = "; ".join(p.splitlines()[0] for p in parts)
        raise TargetBroken("\n".join(parts))

    def _next_line(self, deadline: float) -> str | None:
        try:
            return self._lines.get(timeout=max(0.01, deadline - time.monotonic()))
        except queue.Empty:
            return None

    def _call(self, line: str, timeout: float | None = None
              ) -> tuple[bool, dict[str, str], str]:
        if self._proc is None or self._proc.poll() is not None:
            self._poisoned = self._poisoned or "the guest stopped"
            raise TargetBroken("kernel guest is not running; console:\n" + self.console_excerpt())
        assert self._proc.stdin is not None
        try:
            self._proc.stdin.write(line.encode() + b"\n")
            self._proc.stdin.flush()
        except OSError as exc:
            raise TargetBroken(f"kernel guest: cannot write: {exc}") from exc
        wait = self.timeout if timeout is None else timeout
        deadline = time.monotonic() + wait
        while True:
            reply = self._next_line(deadline)
            if reply is None:
                self._poisoned = f"no answer to {line.split()[0]!r}"
                raise TargetBroken(f"kernel guest: no answer to {line.split()[0]!r} within "
                                   f"{wait:.0f} s; console:\n" + self.console_excerpt())
            if reply.startswith("@@SMCD-R "):
                break
        if self._crash:
            time.sleep(0.3)
            self._poisoned = "kernel crash on the console"
            raise TargetBroken("kernel crash report on the console:\n" + self.console_excerpt())
        words = reply.split(" ")
        if words[1] == "ok":
            kv = dict(w.split("=", 1) for w in words[2:] if "=" in w)
            return True, kv, ""
        return False, {"error": words[2] if len(words) > 2 else "EIO"}, " ".join(words[3:])

    # -- Target protocol ----------------------------------------------------------------------

    def reset(self) -> None:
        if self._poisoned or self._proc is None or self._proc.poll() is not None:
            self._boot()  # a fresh guest after a crash or hang
        ok, _, detail = self._call("reset")
        if not ok:
            raise TargetBroken(f"kernel guest: reset failed: {detail}")
        if self._peer is not None:
            self._peer_step(self._peer.reset)

    def _peer_step(self, fn: Any, *args: Any) -> Any:
        from smcd_check.conformance.kernel.clc_peer import PeerProtocolError

        try:
            return fn(*args)
        except PeerProtocolError as exc:
            self._poisoned = str(exc)
            raise TargetBroken(f"kernel guest's CLC peer: {exc}") from exc

    def apply(self, op: Op) -> Observation:
        args = op.kwargs()
        if op.name in ("clc_decode", "hs_new", "hs_feed", "hs_eof", "hs_timeout"):
            if self._peer is None:
                note = self.capability_notes.get(Capability.CLC, "no CLC peer")
                return Observation.failure("EOPNOTSUPP", note)
            result: Observation = self._peer_step(self._peer.apply, op)
            return result
        if op.name == "conn_open":
            if args.get("mode") != "merged":
                return Observation.failure("EOPNOTSUPP",
                                           "loopback-ism in Linux 6.12 always merges buffers")
            ok, kv, detail = self._call(f"open {int(args['dmb_size'])}")
            if not ok:
                return Observation.failure(kv["error"], detail)
            return Observation.success({"a": int(kv["a"]), "b": int(kv["b"])})
        if op.name == "conn_open_urg":
            return self._open_urg(args)
        if op.name not in ("conn_send", "conn_recv", "conn_shutdown", "conn_close",
                           "conn_abort", "conn_cursors", *URG_CALLS):
            return Observation.failure("EOPNOTSUPP", f"{op.name} is not reachable in a kernel")
        handle = int(args["conn"])
        if op.name == "conn_abort":
            return Observation.failure("EOPNOTSUPP",
                                       "no system call makes an SMC socket send an abort")
        if op.name in URG_CALLS:
            return self._urgent_call(op.name, handle, args)
        if op.name == "conn_send":
            ok, kv, detail = self._call(f"send {handle} {str(args['data']).lower()}")
            if not ok and kv["error"] == "EAGAIN":
                return Observation.success({"n": 0})  # adapter: "0 = no room now"
            return (Observation.success({"n": int(kv["n"])}) if ok
                    else Observation.failure(kv["error"], detail))
        if op.name == "conn_recv":
            ok, kv, detail = self._call(f"recv {handle} {int(args['max'])}")
            if not ok and kv["error"] == "EAGAIN":
                return Observation.success({"data": "", "eof": False})  # "empty = nothing yet"
            if not ok:
                return Observation.failure(kv["error"], detail)
            data = kv.get("data", "")
            eof = kv.get("eof") == "1"
            if not eof and data and int(kv.get("inq", "1")) == 0:
                eof = self._peer_done(handle)
            return Observation.success({"data": data, "eof": eof})
        if op.name == "conn_shutdown":
            ok, kv, detail = self._call(f"shutdown {handle}")
            return Observation.success({}) if ok else Observation.failure(kv["error"], detail)
        if op.name == "conn_close":
            ok, kv, detail = self._call(f"close {handle}")
            return Observation.success({}) if ok else Observation.failure(kv["error"], detail)
        ok, kv, detail = self._call(f"curs {handle}")
        if not ok:
            return Observation.failure(kv["error"], detail)
        return Observation.success(self._cursors(kv))

    def _open_urg(self, args: Mapping[str, Any]) -> Observation:
        """``conn_open_urg``: a pair whose cursors have moved on by ``start`` bytes each way.

        The guest really sends and reads them (``openurg``, ``serve_advance`` in harness.c):
        user space cannot set a cursor. It ends where the spec starts: every byte read and its
        consumer cursor confirmed (the writer's SIOCOUTQ back to 0), ``urg_curs`` untouched. A
        start below half a ring is taken one cursor period (2^16 laps, about 1 GB for a 16 KiB
        DMB) further on, the only way it ends confirmed; a start near the wrap counter's
        overflow costs the same (about 8-20 s of guest time per direction under TCG).
        """
        if args.get("mode") != "merged":
            return Observation.failure("EOPNOTSUPP",
                                       "loopback-ism in Linux 6.12 always merges buffers")
        start = args.get("start")
        if not isinstance(start, int) or isinstance(start, bool) or start < 0:
            return Observation.failure("EINVAL", f"start={start!r}: expected an int >= 0")
        dmb = int(args["dmb_size"])
        ring = dmb - 32
        # cursors are taken modulo one cursor period: moving further is the same state
        start %= ring << 16 if ring > 0 else 1
        ok, kv, detail = self._call(f"openurg {dmb} {start}",
                                    timeout=max(self.timeout, OPEN_URG_TIMEOUT))
        if not ok:
            return Observation.failure(kv["error"], detail)
        return Observation.success({"a": int(kv["a"]), "b": int(kv["b"])})

    def _urgent_call(self, name: str, handle: int, args: Mapping[str, Any]) -> Observation:
        """``conn_send_oob`` / ``conn_recv_oob`` / ``conn_atmark`` / ``conn_set_oobinline``:
        the system calls themselves (send/recv with ``MSG_OOB``, ``ioctl(SIOCATMARK)``,
        ``setsockopt(SO_OOBINLINE)``), non-blocking."""
        if name == "conn_send_oob":
            ok, kv, detail = self._call(f"sendoob {handle} {str(args['data']).lower()}")
            if not ok and kv["error"] == "EAGAIN":
                return Observation.success({"n": 0})  # adapter: "0 = no room now"
            return (Observation.success({"n": int(kv["n"])}) if ok
                    else Observation.failure(kv["error"], detail))
        if name == "conn_recv_oob":
            ok, kv, detail = self._call(f"recvoob {handle} {int(args['max'])}")
            return (Observation.success({"data": kv.get("data", "")}) if ok
                    else Observation.failure(kv["error"], detail))
        if name == "conn_atmark":
            ok, kv, detail = self._call(f"atmark {handle}")
            return (Observation.success({"atmark": kv.get("atmark") == "1"}) if ok
                    else Observation.failure(kv["error"], detail))
        on = args.get("on")
        if not isinstance(on, bool):
            return Observation.failure("EINVAL", f"on={on!r}: expected a boolean")
        ok, kv, detail = self._call(f"oobinline {handle} {int(on)}")
        return Observation.success({}) if ok else Observation.failure(kv["error"], detail)

    def _peer_done(self, handle: int) -> bool:
        ok, kv, _ = self._call(f"curs {handle}")
        return ok and int(kv.get("rx_flags", "0")) & 0xE0 != 0

    @staticmethod
    def _cursors(kv: dict[str, str]) -> dict[str, Any]:
        from smcd_check.spec.cursor import Cursor, Ring, distance

        peer_len = int(kv["peer_rmbe"])
        tx_prod, rx_cons = _curs(kv["tx_prod"]), _curs(kv["rx_cons"])
        try:
            ring = Ring(size=peer_len)
            in_flight = distance(ring, Cursor(wrap=rx_cons[0], count=rx_cons[1]),
                                 Cursor(wrap=tx_prod[0], count=tx_prod[1]))
            peer_space = peer_len - in_flight
        except Exception:  # a ring size the spec does not know: report it as unknown
            peer_space = -1
        return {
            "prod": tx_prod,
            "cons": _curs(kv["tx_cons"]),
            "peer_prod": _curs(kv["rx_prod"]),
            "peer_cons": rx_cons,
            "bytes_to_rcv": int(kv["inq"]),
            "sndbuf_space": int(kv["sndbuf"]) - int(kv["outq"]),
            "peer_rmbe_space": peer_space,
        }

    def close(self) -> None:
        proc = self._proc
        if proc is not None and proc.stdin is not None:
            with contextlib.suppress(OSError):
                proc.stdin.write(b"quit\n")
                proc.stdin.flush()
        self._kill()
        with contextlib.suppress(OSError, AttributeError):
            self._initrd.unlink()


def make_target() -> KernelTarget:
    """Factory for ``--target smcd_check.conformance.kernel.target:make_target``."""
    return KernelTarget()
