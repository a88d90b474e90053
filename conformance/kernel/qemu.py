"""Run scenarios against the real Linux kernel: SMC-D loopback-ism in a qemu (TCG) guest.

Theory of operation
-------------------
``run(["smcd", "data", ...])`` does four things:

1. compiles the guest harness (``harness.c``, package data) with ``gcc -O2 -static
   -pthread`` into the cache (keyed by the source's hash). Why C and not Python in the guest: a
   static binary of about 1 MB keeps the initramfs at about 1.5 MB and the boot at about 3 s
   under TCG; Debian's python3 with its libraries is about 16 MB and doubles the boot time, for
   a program that mostly calls socket(2), netlink and AF_PACKET;
2. writes an initramfs (cpio "newc", gzip) holding ``/init`` (a busybox sh script: mount proc,
   sys and devtmpfs, set the hostname, bring ``lo`` up, run the harness with the scenario names
   from the kernel command line, ``reboot -f``), ``/bin/busybox`` (Debian's busybox-static) and
   ``/smcd-harness``. The cpio writer is our own (no cpio binary needed);
3. boots the cached kernel image (:mod:`.kernel_build`) with ``qemu-system-x86_64 -accel tcg
   -m 512 -nographic -no-reboot`` in its own process group; a guest that does not finish within
   the timeout is killed (the whole group) and reported as timed out, never left behind; Ctrl-C
   kills it too and returns what was parsed so far;
4. parses the serial console: each scenario's result is a JSON document sent as base64 lines
   between ``@@SMCD-BEGIN name length`` and ``@@SMCD-END name`` markers (kernel messages that
   land in between do not start with ``@@SMCD-`` and are ignored).

The results are plain data (:class:`ScenarioResult`, wrapping the harness's JSON); their
interpretation (CLC messages from the captured frames, flags, comparison with the spec) lives in
:mod:`.kernel_wire` and :mod:`.kernel_checks`.

Not done here: KVM (the build machines are themselves virtual), more than one CPU in the guest,
SMC-R.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import gzip
import hashlib
import json
import os
import shutil
import signal
import subprocess
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from smcd_check.conformance.kernel.build import KernelImage, cache_root, find_image

HARNESS_SOURCE = Path(__file__).with_name("harness.c")
#: every source file of the guest harness (harness.c #includes peer.c): the cache key hashes all
HARNESS_FILES = (HARNESS_SOURCE, Path(__file__).with_name("peer.c"),
                 Path(__file__).with_name("urg.c"))
BUSYBOX_CANDIDATES = ("/bin/busybox", "/usr/bin/busybox")
QEMU = "qemu-system-x86_64"

Progress = Callable[[str], None]
#: seconds a guest may take to power off after its harness is done (then it is killed)
DONE_GRACE = 4.0


@dataclass(frozen=True, slots=True, kw_only=True)
class Scenario:
    """A scenario the guest harness knows (same names as its table)."""

    name: str
    doc: str
    slow: bool = False
    #: reproduces a kernel fault (exit 1 when it does): not in the default run
    finding: bool = False
    #: leaves a kernel worker dead or stuck (the guest is poisoned for SMC-D handshakes): run
    #: last in its boot, at most one per boot
    alone: bool = False


#: Every scenario, in the order a full run uses. ``noueid`` must run before any scenario that
#: adds the UEID in the same boot only for the order of the report; each scenario sets the UEID
#: state it needs itself (flush or add). The first SMC-D scenario of a boot makes the first
#: contact (the link group then stays up for minutes and later connections reuse it).
SCENARIOS: tuple[Scenario, ...] = (
    Scenario(name="noueid", doc="no UEID: server declines 0x03030008 (NOUEID), both fall back"),
    Scenario(name="smcd", doc="with a UEID: SMC-Dv2 handshake over loopback-ism"),
    Scenario(name="reuse", doc="three connections: the later ones reuse the link group"),
    Scenario(name="tcp-server",
             doc="SMC client, plain TCP server: client falls back (no SMC option)"),
    Scenario(name="tcp-client", doc="plain TCP client, SMC server: server falls back"),
    Scenario(name="ipv6", doc="SMC-D over ::1"),
    Scenario(name="bufsizes", doc="client 16 KiB DMB, server 256 KiB DMB"),
    Scenario(name="fastopen", doc="TCP_FASTOPEN_CONNECT on the client: fallback before CLC"),
    Scenario(name="sockopt-level",
             doc="SOL_SOCKET SO_RCVBUFFORCE (33 = TCP_FASTOPEN_KEY) before connect"),
    Scenario(name="abort-handshake", doc="non-blocking connect closed at once"),
    Scenario(name="backlog", doc="listen backlog 1, four clients before any accept"),
    Scenario(name="data",
             doc="3 MiB each way at once, 64 KiB DMBs, random chunks, cursor snapshots"),
    Scenario(name="data-small", doc="2 MiB each way at once, 16 KiB DMBs, random chunks"),
    Scenario(name="data-oneway", doc="1 MiB one way, 16 KiB DMBs, chunks of 1..700 bytes"),
    Scenario(name="close-client", doc="client closes after traffic"),
    Scenario(name="close-server", doc="server closes after traffic"),
    Scenario(name="shutwr-client", doc="client shutdown(SHUT_WR)"),
    Scenario(name="shutwr-server", doc="server shutdown(SHUT_WR)"),
    Scenario(name="shutrd-client", doc="client shutdown(SHUT_RD)"),
    Scenario(name="shutrdwr-client", doc="client shutdown(SHUT_RDWR)"),
    Scenario(name="abort-client", doc="client closes with unread data (peer_conn_abort)"),
    Scenario(name="abort-server", doc="server closes with unread data (peer_conn_abort)"),
    Scenario(name="linger0-client", doc="client SO_LINGER 0 then close"),
    Scenario(name="wrap",
             doc="16-bit wrap counter past 0xffff: ~1.07 GB through a 16 KiB DMB (~10 s)",
             slow=True),
)
#: The user-space CLC peer's scenarios (peer.c, issue 15): what was read from the 6.12 source
#: about a hostile peer, reproduced; checked by :func:`.checks.peer_checks`.
PEER_SCENARIOS: tuple[Scenario, ...] = (
    Scenario(name="peer-gid-unchecked",
             doc="user-space CLC peer: client takes any Accept GID, server any Confirm GID/CHID"),
    Scenario(name="peer-attach-fail",
             doc="kernel client <-> our relay <-> kernel server: the server's DMB attach fails; "
                 "then the orphaned client writes", finding=True),
    Scenario(name="peer-accept-v3",
             doc="user-space CLC peer: an Accept with CLC version 3 (oopses the guest)",
             finding=True, alone=True),
    Scenario(name="peer-syncerr-first",
             doc="user-space CLC peer: out-of-sync Decline in a first-contact handshake "
                 "(a listen worker deadlocks)", finding=True, alone=True),
)
#: Urgent data and both directions at once (urg.c, issue 11): every blocking step bounded, a
#: stall reported with smc_diag cursors; checked by :func:`.urg_checks.urg_checks`.
URG_SCENARIOS: tuple[Scenario, ...] = (
    Scenario(name="urg-basic",
             doc="MSG_OOB read out of band and with SO_OOBINLINE, SIOCATMARK, SIOCINQ"),
    Scenario(name="duplex",
             doc="4 MiB each way at once on one connection, 16 KiB DMBs, urgent bytes at "
                 "random points and ring boundaries (c2s out of band, s2c inline)"),
    Scenario(name="urg-findings",
             doc="recv(MSG_OOB) at the mark, a failed MSG_OOB send, SIOCATMARK without urgent "
                 "data, MSG_OOB|MSG_MORE", finding=True),
    Scenario(name="urg-wrap",
             doc="urgent bytes at many points of ~1.07 GB through a 16 KiB DMB, the last one "
                 "in the last slot before the 16-bit wrap overflow (~10 s)",
             slow=True, finding=True),
    Scenario(name="urg-phantom",
             doc="an urgent byte in the last slot of lap 0xfffe skipped by a plain recv(), "
                 "then one recv() of a full ring: urg_state stays VALID and later reads that "
                 "end at count len-1 skip a real byte (~1.07 GB, ~10 s)",
             slow=True, finding=True),
)
SCENARIOS = SCENARIOS + PEER_SCENARIOS + URG_SCENARIOS
SCENARIO_NAMES: tuple[str, ...] = tuple(s.name for s in SCENARIOS)


class KernelRunError(Exception):
    """The guest could not be prepared or started (message names what is missing)."""


@dataclass(frozen=True, slots=True, kw_only=True)
class ScenarioResult:
    """One scenario's result as the harness reported it (``data`` is its JSON document)."""

    name: str
    data: Mapping[str, Any]

    @property
    def error(self) -> str:
        """The harness's own error for this scenario ("" when it ran to the end)."""
        return str(self.data.get("error", ""))


@dataclass(slots=True, kw_only=True)
class RunResult:
    """What one boot produced."""

    scenarios: dict[str, ScenarioResult] = field(default_factory=dict)
    requested: tuple[str, ...] = ()
    image: str = ""
    boot_seconds: float = 0.0
    timed_out: bool = False
    interrupted: bool = False
    qemu_exit: int | None = None
    console_tail: tuple[str, ...] = ()
    harness_done: bool = False

    @property
    def missing(self) -> tuple[str, ...]:
        """Requested scenarios with no result (guest hung, crashed or was interrupted)."""
        return tuple(n for n in self.requested if n not in self.scenarios)


# ------------------------------------------------------------------------------ tools

def qemu_missing() -> str | None:
    """None if qemu and busybox are present, else what is missing (with apt packages)."""
    missing = []
    if shutil.which(QEMU) is None:
        missing.append(f"{QEMU} (apt-get install qemu-system-x86)")
    if busybox_path() is None:
        missing.append("a static busybox (apt-get install busybox-static)")
    if shutil.which("gcc") is None:
        missing.append("gcc (apt-get install gcc libc6-dev)")
    return "; ".join(missing) or None


def busybox_path() -> Path | None:
    """A statically linked busybox (Debian's busybox-static), or None."""
    for cand in BUSYBOX_CANDIDATES:
        p = Path(cand)
        if p.is_file():
            try:
                head = p.read_bytes()[:4096]
            except OSError:
                continue
            # a dynamic ELF names its interpreter; busybox-static has none
            if head.startswith(b"\x7fELF") and b"/lib64/ld-linux" not in head and \
                    b"/lib/ld-linux" not in head:
                return p
    return None


def compile_harness(root: Path | None = None) -> Path:
    """Compile the guest harness statically (cached by source hash); return the binary."""
    digest = hashlib.sha256(b"".join(f.read_bytes() for f in HARNESS_FILES)).hexdigest()[:12]
    out = (root or cache_root()) / f"harness-{digest}" / "smcd-harness"
    if out.is_file():
        return out
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_suffix(".tmp")
    cmd = ["gcc", "-O2", "-static", "-pthread", "-o", str(tmp), str(HARNESS_SOURCE)]
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
    except OSError as exc:
        raise KernelRunError(f"cannot run gcc to build the guest harness: {exc}") from exc
    if proc.returncode != 0:
        tail = "\n".join(proc.stderr.strip().splitlines()[-6:])
        raise KernelRunError(
            "compiling the guest harness failed (needs gcc and libc6-dev's static libc):\n"
            + tail
        )
    tmp.replace(out)
    return out


# ------------------------------------------------------------------------------ initramfs

INIT_SCRIPT = """#!/bin/busybox sh
/bin/busybox mount -t proc proc /proc
/bin/busybox mount -t sysfs sys /sys
/bin/busybox mount -t devtmpfs dev /dev 2>/dev/null
/bin/busybox hostname smcd-check
/bin/busybox ip link set lo up
SC=$(/bin/busybox sed -n 's/.*smcd\\.run=\\([^ ]*\\).*/\\1/p' /proc/cmdline | /bin/busybox tr , ' ')
/smcd-harness $SC
/bin/busybox sync
/bin/busybox reboot -f
"""


def cpio_newc(entries: Sequence[tuple[str, int, bytes]]) -> bytes:
    """A cpio archive in the "newc" format the kernel unpacks as initramfs.

    ``entries``: (path without leading '/', mode including the file type bits, content).
    """
    out = bytearray()

    def pad4() -> None:
        out.extend(b"\0" * (-len(out) % 4))

    for ino, (name, mode, data) in enumerate([*entries, ("TRAILER!!!", 0, b"")], start=1):
        nb = name.encode() + b"\0"
        fields = [ino if name != "TRAILER!!!" else 0, mode, 0, 0, 1, 0, len(data), 0, 0, 0, 0,
                  len(nb), 0]
        out.extend(b"070701" + b"".join(b"%08X" % f for f in fields))
        out.extend(nb)
        pad4()
        out.extend(data)
        pad4()
    return bytes(out)


def build_initramfs(harness: Path, busybox: Path, dest: Path) -> Path:
    """Write the gzip'ed initramfs with /init, /bin/busybox and /smcd-harness to ``dest``."""
    dirs = ["bin", "dev", "proc", "sys", "tmp"]
    entries: list[tuple[str, int, bytes]] = [(d, 0o040755, b"") for d in dirs]
    entries += [
        ("init", 0o100755, INIT_SCRIPT.encode()),
        ("bin/busybox", 0o100755, busybox.read_bytes()),
        ("smcd-harness", 0o100755, harness.read_bytes()),
    ]
    dest.parent.mkdir(parents=True, exist_ok=True)
    with gzip.open(dest, "wb", compresslevel=1) as f:
        f.write(cpio_newc(entries))
    return dest


# ------------------------------------------------------------------------------ console parsing

class ConsoleParser:
    """Incremental parser of the guest console: collects scenario results."""

    def __init__(self) -> None:
        self.results: dict[str, ScenarioResult] = {}
        self.done = False
        self.tail: list[str] = []
        self._name: str | None = None
        self._length = 0
        self._chunks: list[str] = []
        self.problems: list[str] = []

    def feed_line(self, raw: str) -> str | None:
        """Consume one console line; return a finished scenario's name, if any."""
        line = raw.strip("\r\n").strip()
        if not line.startswith("@@SMCD-"):
            if line:
                self.tail.append(line)
                del self.tail[:-40]
            return None
        word, _, rest = line.partition(" ")
        if word == "@@SMCD-BEGIN":
            parts = rest.split()
            self._name = parts[0] if parts else "?"
            self._length = int(parts[1]) if len(parts) > 1 and parts[1].isdigit() else -1
            self._chunks = []
        elif word == "@@SMCD-DATA" and self._name is not None:
            self._chunks.append(rest.strip())
        elif word == "@@SMCD-END" and self._name is not None:
            name, self._name = self._name, None
            try:
                blob = base64.b64decode("".join(self._chunks), validate=True)
                if self._length >= 0 and len(blob) != self._length:
                    raise ValueError(f"length {len(blob)} != announced {self._length}")
                data = json.loads(blob)
            except (binascii.Error, ValueError) as exc:
                self.problems.append(f"{name}: garbled result on the console ({exc})")
                data = {"name": name, "error": f"garbled result on the console: {exc}"}
            self.results[name] = ScenarioResult(name=name, data=data)
            return name
        elif word == "@@SMCD-HARNESS-DONE":
            self.done = True
        return None


def parse_console(text: str) -> dict[str, ScenarioResult]:
    """All scenario results in a saved console log."""
    p = ConsoleParser()
    for line in text.splitlines():
        p.feed_line(line)
    return p.results


# ------------------------------------------------------------------------------ boot

def boot_timeout(scenarios: Sequence[str]) -> float:
    """A generous wall-clock limit for one boot running ``scenarios`` under TCG."""
    t = 60.0
    for name in scenarios:
        t += 600.0 if name in ("wrap", "urg-wrap", "urg-phantom") else 40.0
    return t


def run(
    scenarios: Sequence[str],
    *,
    image: KernelImage | Path | None = None,
    timeout: float | None = None,
    progress: Progress | None = None,
    console_log: Path | None = None,
    work: Path | None = None,
) -> RunResult:
    """Boot the kernel once and run ``scenarios`` in order; return their results.

    Raises:
        KernelRunError: unknown scenario, no cached image, qemu/busybox/gcc missing.
    """
    unknown = [s for s in scenarios if s not in SCENARIO_NAMES]
    if unknown:
        raise KernelRunError(
            f"unknown scenario(s) {', '.join(unknown)}; known: {', '.join(SCENARIO_NAMES)}"
        )
    if not scenarios:
        raise KernelRunError("no scenario given")
    alone = [s.name for s in SCENARIOS if s.alone and s.name in scenarios]
    if len(alone) > 1 or (alone and scenarios[-1] != alone[0]):
        raise KernelRunError(
            f"{', '.join(alone)} leave(s) a kernel worker dead or stuck: run at most one of "
            "them per boot, as the last scenario"
        )
    why = qemu_missing()
    if why:
        raise KernelRunError(f"cannot boot the kernel: missing {why}")
    if image is None:
        image = find_image()
        if image is None:
            raise KernelRunError(
                "no cached kernel image for the current config: run `smcd-check kernel build`"
            )
    image_path = image.path if isinstance(image, KernelImage) else Path(image)
    if not image_path.is_file():
        raise KernelRunError(f"kernel image {image_path} does not exist")
    say = progress or (lambda _msg: None)
    root = cache_root()
    harness = compile_harness(root)
    busybox = busybox_path()
    assert busybox is not None
    work = work or root / "runs"
    work.mkdir(parents=True, exist_ok=True)
    initrd = build_initramfs(harness, busybox, work / f"initrd-{os.getpid()}.gz")
    limit = timeout if timeout is not None else boot_timeout(scenarios)
    cmd = [
        QEMU, "-accel", "tcg", "-m", "512", "-nographic", "-no-reboot",
        "-kernel", str(image_path), "-initrd", str(initrd),
        "-append", "console=ttyS0 quiet loglevel=1 panic=-1 smcd.run=" + ",".join(scenarios),
    ]
    result = RunResult(requested=tuple(scenarios), image=str(image_path))
    parser = ConsoleParser()
    t0 = time.monotonic()
    say(f"boot: {image_path.name}, {len(scenarios)} scenario(s), timeout {limit:.0f} s")
    proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, start_new_session=True)
    timer_fired = threading.Event()

    def kill_group() -> None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)

    def on_timeout() -> None:
        timer_fired.set()
        kill_group()

    timer = threading.Timer(limit, on_timeout)
    timer.daemon = True
    timer.start()
    log = console_log.open("w") if console_log else None
    assert proc.stdout is not None
    try:
        for raw in proc.stdout:
            line = raw.decode("utf-8", "replace")
            if log:
                log.write(line)
            was_done = parser.done
            name = parser.feed_line(line)
            if parser.done and not was_done:
                # the harness has finished: the guest now reboots. A guest with a stuck or dead
                # kernel worker (peer-* scenarios) may never get there: give it a few seconds
                grace = threading.Timer(DONE_GRACE, kill_group)
                grace.daemon = True
                grace.start()
            if name is not None:
                err = parser.results[name].error
                say(f"  {name}: {'ok' if not err else 'ERROR ' + err} "
                    f"({time.monotonic() - t0:.1f} s)")
        proc.wait()
    except KeyboardInterrupt:
        result.interrupted = True
        kill_group()
        proc.wait()
    finally:
        timer.cancel()
        if proc.poll() is None:
            kill_group()
            proc.wait()
        if log:
            log.close()
        with contextlib.suppress(OSError):
            initrd.unlink()
    result.boot_seconds = round(time.monotonic() - t0, 2)
    result.timed_out = timer_fired.is_set()
    result.qemu_exit = proc.returncode
    result.scenarios = parser.results
    result.console_tail = tuple(parser.tail[-20:])
    result.harness_done = parser.done
    return result


def result_json(res: RunResult, *, with_frames: bool = False) -> dict[str, Any]:
    """A JSON-ready dict of a run (frames dropped unless asked: they are large)."""
    out: dict[str, Any] = {
        "image": res.image,
        "boot_seconds": res.boot_seconds,
        "timed_out": res.timed_out,
        "interrupted": res.interrupted,
        "harness_done": res.harness_done,
        "missing": list(res.missing),
        "scenarios": {},
    }
    for name, sc in res.scenarios.items():
        data = dict(sc.data)
        if not with_frames:
            data.pop("frames", None)
        out["scenarios"][name] = data
    if res.timed_out or res.missing:
        out["console_tail"] = list(res.console_tail)
    return out


def save_captures(res: RunResult, dest: Path, *, note: str = "") -> list[Path]:
    """Write each scenario's capture (``<name>.pcap``) and its other data (``<name>.json``:
    smc_diag views, transfers, snapshots; no frames) plus ``boot.json`` (scenario order, image,
    how it was made) into ``dest``. These files are the project's golden kernel captures."""
    from smcd_check.conformance.kernel.wire import frames_of, write_pcap

    dest.mkdir(parents=True, exist_ok=True)
    written = []
    for name in res.requested:
        sc = res.scenarios.get(name)
        if sc is None:
            continue
        data = dict(sc.data)
        frames = frames_of(data)
        data.pop("frames", None)
        if frames:
            written.append(write_pcap(dest / f"{name}.pcap", frames))
        path = dest / f"{name}.json"
        path.write_text(json.dumps(data, indent=1, sort_keys=True) + "\n")
        written.append(path)
    boot = dest / "boot.json"
    boot.write_text(json.dumps({
        "order": [n for n in res.requested if n in res.scenarios],
        "image": res.image,
        "boot_seconds": res.boot_seconds,
        "made_with": "smcd-check kernel run --save DIR " + " ".join(res.requested),
        "note": note,
    }, indent=1) + "\n")
    written.append(boot)
    return written


def load_captures(src: Path) -> tuple[list[str], dict[str, dict[str, Any]]]:
    """Read what :func:`save_captures` wrote: (scenario order, results with frames)."""
    from smcd_check.conformance.kernel.wire import read_pcap

    boot = json.loads((src / "boot.json").read_text())
    order = [str(n) for n in boot["order"]]
    results: dict[str, dict[str, Any]] = {}
    for name in order:
        data = json.loads((src / f"{name}.json").read_text())
        pcap = src / f"{name}.pcap"
        if pcap.is_file():
            data["frames"] = [
                {"t_us": t, "orig_len": orig, "data": base64.b64encode(raw).decode()}
                for t, orig, raw in read_pcap(pcap)
            ]
        results[name] = data
    return order, results
