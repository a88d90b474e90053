"""Benchmark of ``smcd-check decode`` on a long stream: messages/s (CPU time) and peak memory.

    python bench/decode_stream.py [--mb 10] [--kind declines|mixed] [--modes table,json]

Writes a hex file of about ``--mb`` megabytes of hex text holding back-to-back CLC messages, then
runs ``smcd-check decode --file F`` (the installed command, as a user runs it) once per output
mode with stdout to /dev/null, and prints per mode: messages, CPU seconds of the child (user +
system), messages per CPU second, wall seconds and the child's peak RSS. ``declines`` is the
stream of issue 16 (v2 Declines, each with another peer diagnosis and id); ``mixed`` cycles
through the golden vectors of tests/spec/clc_vectors.py (real Linux 6.12.118 captures and
kernel layouts: Proposals, Accepts, Confirms, Declines). Target (issue 16): at least 20,000
messages per CPU second in both modes, in constant memory.
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import struct
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests" / "spec"))

from clc_vectors import ALL, CAP_DECLINE_V2_NOUEID

from smcd_check.spec.decline import DeclineCode


def messages(kind: str) -> list[bytes]:
    if kind == "mixed":
        return list(ALL)
    out = []
    codes = sorted(int(c) for c in DeclineCode)
    for i in range(4096):
        m = bytearray(CAP_DECLINE_V2_NOUEID)
        m[8:16] = struct.pack(">Q", i * 0x9E3779B97F4A7C15 % 2**64)
        m[16:20] = struct.pack(">I", codes[i % len(codes)])
        out.append(bytes(m))
    return out


def write_stream(path: Path, kind: str, mb: float) -> int:
    """Hex lines of 32 bytes (as a dump would give them) until ``mb`` MB; returns the count."""
    msgs = messages(kind)
    target = int(mb * 1_000_000)
    n = size = 0
    with path.open("w") as f:
        while size < target:
            text = msgs[n % len(msgs)].hex()
            lines = "\n".join(text[i:i + 64] for i in range(0, len(text), 64)) + "\n"
            f.write(lines)
            size += len(lines)
            n += 1
    return n


def run(cmd: list[str]) -> tuple[float, float, int, int]:
    """(child CPU s, wall s, child peak RSS bytes, exit code) of one run."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    with open(os.devnull, "w") as null:
        rc = subprocess.run(cmd, stdout=null, stderr=subprocess.PIPE, check=False).returncode
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return cpu, wall, after.ru_maxrss * 1024, rc


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--mb", type=float, default=10.0, help="size of the hex stream (MB)")
    ap.add_argument("--kind", choices=["declines", "mixed"], default="declines")
    ap.add_argument("--modes", default="table,json", help="comma-separated: table,json")
    args = ap.parse_args()
    exe = shutil.which("smcd-check", path=str(Path(sys.executable).parent)) or "smcd-check"
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "stream.hex"
        n = write_stream(path, args.kind, args.mb)
        size = path.stat().st_size
        print(f"stream: {n:,} messages ({args.kind}), {size / 1e6:.1f} MB of hex; "
              f"machine: {os.cpu_count()} cores, shared; CPU time of the child process")
        worst = float("inf")
        for mode in args.modes.split(","):
            cmd = [exe, "decode", "--file", str(path)] + (["--json"] if mode == "json" else [])
            cpu, wall, rss, rc = run(cmd)
            rate = n / cpu if cpu else float("inf")
            worst = min(worst, rate)
            print(f"{mode:6} {n:>9,} messages  {cpu:7.2f} s CPU  {rate:>9,.0f} messages/s CPU  "
                  f"wall {wall:6.2f} s  peak RSS {rss / 2**20:5.0f} MiB  exit {rc}")
            if rc != 0:
                return 1
    print(f"slowest mode: {worst:,.0f} messages/s CPU (target: 20,000)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
