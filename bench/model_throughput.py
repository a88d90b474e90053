"""Throughput of the loopback-ism model: copy vs merged mode.

One command:

    python bench/model_throughput.py [--bytes 1G] [--msg-size 65536[,4096...]] [--dmb-size 65536]
                                     [--modes copy,merged] [--tracemalloc]

For each mode and message size it opens one connection pair, streams ``--bytes`` from a to b in
messages of ``--msg-size`` (non-blocking: the sender offers a message, the receiver reads up to a
message per round), verifies the stream with CRC-32 on both ends, and prints MB/s, bytes moved,
bytes copied per byte delivered (user -> sndbuf/ghost, device data moves, DMB -> user), CDC bytes,
wall time and peak memory (ru_maxrss; add --tracemalloc for Python-heap peak, slower).
Progress goes to stderr every ~2 s; Ctrl-C stops and prints the partial figures.
"""

from __future__ import annotations

import argparse
import random
import resource
import sys
import time
import tracemalloc
import zlib
from dataclasses import dataclass

from smcd_check.model.connection import open_pair
from smcd_check.model.device import LoopbackIsm

SUFFIX = {"": 1, "K": 1 << 10, "M": 1 << 20, "G": 1 << 30}


def parse_size(text: str) -> int:
    t = text.strip().upper().removesuffix("IB").removesuffix("B")
    unit = t[-1:] if t[-1:] in SUFFIX else ""
    try:
        value = int(t[: len(t) - len(unit)]) * SUFFIX[unit]
    except ValueError:
        raise argparse.ArgumentTypeError(f"bad size {text!r} (e.g. 65536, 64K, 1G)") from None
    if value <= 0:
        raise argparse.ArgumentTypeError(f"size must be > 0: {text!r}")
    return value


@dataclass
class Result:
    mode: str
    msg_size: int
    delivered: int
    wall: float
    copied: int
    cdc_bytes: int
    crc_ok: bool
    interrupted: bool

    def line(self) -> str:
        mbps = self.delivered / self.wall / 1e6 if self.wall else 0.0
        per = self.copied / self.delivered if self.delivered else 0.0
        cdc = self.cdc_bytes / self.delivered if self.delivered else 0.0
        return (
            f"{self.mode:6} msg={self.msg_size:>7}  {mbps:9.1f} MB/s  moved={self.delivered:>14,} B"
            f"  copied/delivered={per:5.3f}  cdc/delivered={cdc:7.5f}  wall={self.wall:7.2f} s"
            f"  crc={'ok' if self.crc_ok else 'MISMATCH'}"
            + ("  (interrupted)" if self.interrupted else "")
        )


def run(mode: str, msg_size: int, total: int, dmb_size: int, seed: int) -> Result:
    dev = LoopbackIsm(seed=seed, nocopy=(mode == "merged"))
    kw = {"sndbuf_size": dmb_size} if mode == "copy" else {}
    a, b = open_pair(dev, mode, dmb_size=dmb_size, **kw)
    block = 1 << 20
    src = memoryview(random.Random(seed).randbytes(block + msg_size))
    crc_tx = crc_rx = 0
    sent = delivered = off = 0
    interrupted = False
    t0 = last = time.perf_counter()
    try:
        while delivered < total:
            if sent < total:
                chunk = src[off : off + min(msg_size, total - sent)]
                n = a.send(chunk)
                if n:
                    crc_tx = zlib.crc32(chunk[:n], crc_tx)
                    sent += n
                    off = (off + n) % block
            got = b.recv(msg_size)
            if got:
                crc_rx = zlib.crc32(got, crc_rx)
                delivered += len(got)
            now = time.perf_counter()
            if now - last > 2.0:
                last = now
                print(
                    f"  {mode} msg={msg_size}: {delivered / total:6.1%} "
                    f"{delivered / (now - t0) / 1e6:8.1f} MB/s",
                    file=sys.stderr,
                    flush=True,
                )
    except KeyboardInterrupt:
        interrupted = True
    wall = time.perf_counter() - t0
    # crc over what was delivered: on interrupt, compare only when everything sent arrived
    crc_ok = sent == delivered and crc_tx == crc_rx
    copied = a.user_bytes_in + dev.stats.data_bytes_copied + b.user_bytes_out
    a.close()
    b.close()
    return Result(
        mode, msg_size, delivered, wall, copied, dev.stats.cdc_bytes_copied, crc_ok, interrupted
    )


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument(
        "--bytes", type=parse_size, default=parse_size("1G"), help="bytes per run (default 1G)"
    )
    p.add_argument("--msg-size", default="65536", help="comma-separated message sizes")
    p.add_argument("--dmb-size", type=parse_size, default=65536, help="DMB (and sndbuf) size")
    p.add_argument("--modes", default="copy,merged")
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--tracemalloc", action="store_true", help="also report Python heap peak")
    args = p.parse_args(argv)
    try:
        sizes = [parse_size(s) for s in args.msg_size.split(",")]
    except argparse.ArgumentTypeError as exc:
        p.error(f"--msg-size: {exc}")
    modes = [m.strip() for m in args.modes.split(",")]
    for m in modes:
        if m not in ("copy", "merged"):
            p.error(f"--modes: {m!r} is not copy or merged")
    if args.tracemalloc:
        tracemalloc.start()
    print(
        f"model throughput: {args.bytes:,} bytes per run, dmb={args.dmb_size}, "
        f"python {sys.version.split()[0]}"
    )
    results = []
    t0 = time.perf_counter()
    for size in sizes:
        for mode in modes:
            r = run(mode, size, args.bytes, args.dmb_size, args.seed)
            results.append(r)
            print(r.line(), flush=True)
            if r.interrupted:
                break
        if results and results[-1].interrupted:
            break
    maxrss_mib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"total wall {time.perf_counter() - t0:.2f} s, peak RSS {maxrss_mib:.1f} MiB", end="")
    if args.tracemalloc:
        print(f", python heap peak {tracemalloc.get_traced_memory()[1] / 2**20:.1f} MiB", end="")
    print()
    return 0 if all(r.crc_ok for r in results if not r.interrupted) else 1


if __name__ == "__main__":
    raise SystemExit(main())
