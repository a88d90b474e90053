"""Spin and the explorer on the same SMC-D anchor model, side by side, in one run.

    python bench/spin_vs_explorer.py                    # merged DMB_SIZE=10 (the target row)
    python bench/spin_vs_explorer.py --all              # every row of the anchor README's table
    python bench/spin_vs_explorer.py --copy --dmb-size 6 --rounds 3

For each row it builds Spin's verifier (``spin -a`` + ``gcc -O2 -DSAFETY -DNOREDUCE -DBFS``, as
in ``../shared/anchors/spin/README.md``), runs it and the explorer alternately ``--rounds``
times, and prints for each: states, transitions, depth, CPU seconds (best round), states per
CPU second, bytes per state, the ratio of the rates, and whether the counts match. It installs
nothing: when ``spin`` or ``gcc`` is missing it says so and exits 2.

The explorer runs ``Explorer(SpinAnchorModel(...)).with_workers(N).bfs()``: exactly the engine
path ``smcd-check explore`` takes (the anchor model declares its footprints like any model;
there is no benchmark-only search). ``bench/explore_bench.py`` prints these rows together with
the SMC-D system's.

Bytes per state: Spin's own "total actual memory usage" divided by its states (the 64 MiB hash
table of ``-w23`` included), and its "actual memory usage for states" per state; for the
explorer, the RSS growth of a fresh Python process during the search divided by its states (the
visited set, the int states, the BFS list, the parent array and the family caches; the
interpreter's baseline is not counted). Each explorer run is a fresh process (a reused
interpreter would recycle freed memory and under-count). Machine load disturbs CPU times, so
the rounds alternate the two tools.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from shared_dir import shared_file
from spin_anchor_model import (
    SPIN_TABLE,
    SpinAnchorModel,
    table_config,
)

from smcd_check.explorer.engine import Explorer

#: the Spin anchor model, in the shared folder (../shared beside the repository)
PML_IN_SHARED = "anchors/spin/smcd.pml"
MIB = 1024 * 1024


@dataclass
class SpinRun:
    states: int
    transitions: int
    depth: int
    cpu: float
    peak_rss: int
    states_mib: float
    total_mib: float


def build_pan(workdir: Path, copy: bool, dmb_size: int) -> Path:
    """spin -a and gcc, with the anchor README's flags; returns the pan binary."""
    defs = [f"-DDMB_SIZE={dmb_size}", "-DMAX_CHUNK=2", "-DWRAP_MAX=2", "-DCHAN_CAP=3"]
    if copy:
        defs.append("-DCOPY")
    shutil.copy(shared_file(PML_IN_SHARED), workdir / "smcd.pml")
    subprocess.run(
        ["spin", *defs, "-a", "smcd.pml"], cwd=workdir, check=True, stdout=subprocess.DEVNULL
    )
    subprocess.run(
        ["gcc", "-O2", "-DSAFETY", "-DNOREDUCE", "-DBFS", "-o", "pan", "pan.c"],
        cwd=workdir,
        check=True,
        stderr=subprocess.DEVNULL,
    )
    return workdir / "pan"


def run_pan(pan: Path) -> SpinRun:
    proc = subprocess.Popen(
        [str(pan), "-m40000000", "-w23"],
        cwd=pan.parent,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    assert proc.stdout is not None
    out = proc.stdout.read()
    _, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)

    def grab(pattern: str) -> float:
        m = re.search(pattern, out)
        if m is None:
            raise RuntimeError(f"cannot parse Spin's output ({pattern!r}):\n{out}")
        return float(m.group(1))

    stored = int(grab(r"(\d+) states, stored"))
    # Spin prints "transitions (= stored+matched)": the initial state is stored without a
    # transition, so the edges it followed are one fewer (the anchor README's figure).
    transitions = int(grab(r"(\d+) transitions \(= stored\+matched\)")) - 1
    return SpinRun(
        states=stored,
        transitions=transitions,
        depth=int(grab(r"depth reached (\d+)")),
        cpu=usage.ru_utime + usage.ru_stime,
        peak_rss=usage.ru_maxrss * 1024,
        states_mib=grab(r"([\d.]+)\s+actual memory usage for states"),
        total_mib=grab(r"([\d.]+)\s+total actual memory usage"),
    )


def explorer_once(
    copy: bool, dmb_size: int, workers: int = 1
) -> tuple[int, int, int, float, float]:
    """One explorer run in this process: (states, transitions, depth, cpu s, bytes/state)."""
    model = SpinAnchorModel(table_config(copy, dmb_size))
    gc.collect()
    res = Explorer(model).with_workers(workers).bfs()
    return (
        res.unique_state_count,
        res.transition_count,
        res.max_depth,
        res.cpu_seconds,
        res.bytes_per_state,
    )


def run_explorer(
    copy: bool, dmb_size: int, workers: int = 1
) -> tuple[int, int, int, float, float]:
    """One explorer run in a fresh interpreter (clean memory figures)."""
    cmd = [
        sys.executable,
        __file__,
        "--explorer-only",
        "--dmb-size",
        str(dmb_size),
        "--workers",
        str(workers),
    ]
    if copy:
        cmd.append("--copy")
    out = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout
    n, t, d, cpu, bps = json.loads(out.strip().splitlines()[-1])
    return int(n), int(t), int(d), float(cpu), float(bps)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--copy", action="store_true", help="copy mode (default merged)")
    ap.add_argument("--dmb-size", type=int, default=10)
    ap.add_argument("--all", action="store_true", help="every row of the anchor README table")
    ap.add_argument("--rounds", type=int, default=2, help="alternating rounds (best CPU time)")
    ap.add_argument("--workers", type=int, default=1, help="explorer worker processes")
    ap.add_argument("--explorer-only", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.explorer_only:
        print(json.dumps(explorer_once(args.copy, args.dmb_size, args.workers)))
        return 0
    missing = [tool for tool in ("spin", "gcc") if shutil.which(tool) is None]
    if missing:
        print(
            f"spin_vs_explorer: {' and '.join(missing)} not found; install with "
            f"`apt-get install -y spin gcc` (this benchmark installs nothing)",
            file=sys.stderr,
        )
        return 2
    try:
        shared_file(PML_IN_SHARED)
    except SystemExit as exc:
        print(f"spin_vs_explorer: {exc}", file=sys.stderr)
        return 2
    rows = sorted(SPIN_TABLE) if args.all else [(args.copy, args.dmb_size)]
    all_match = True
    for copy, size in rows:
        mode = "copy" if copy else "merged"
        print(f"== {mode} DMB_SIZE={size} MAX_CHUNK=2 WRAP_MAX=2 CHAN_CAP=3")
        with tempfile.TemporaryDirectory(prefix="spin-anchor-") as tmp:
            pan = build_pan(Path(tmp), copy, size)
            spin_runs = []
            ours = []
            for _ in range(args.rounds):
                spin_runs.append(run_pan(pan))
                ours.append(run_explorer(copy, size, args.workers))
        sp = min(spin_runs, key=lambda r: r.cpu)
        best = min(ours, key=lambda r: r[3])
        n, t, d, cpu, bps = best
        sp_rate = sp.states / sp.cpu
        our_rate = n / cpu
        sp_bps = sp.total_mib * MIB / sp.states
        sp_bps_states = sp.states_mib * MIB / sp.states
        match = (n, t) == (sp.states, sp.transitions)
        table = SPIN_TABLE.get((copy, size))
        print(
            f"  {'':10} {'states':>11} {'transitions':>12} {'depth':>5} {'cpu s':>7} "
            f"{'states/s':>10} {'bytes/state':>11}"
        )
        print(
            f"  {'spin':10} {sp.states:>11,} {sp.transitions:>12,} {sp.depth:>5} "
            f"{sp.cpu:>7.2f} {sp_rate:>10,.0f} {sp_bps:>11.0f}"
            f"   (Spin's total incl. hash table; states only: {sp_bps_states:.0f} B/state)"
        )
        print(
            f"  {'explorer':10} {n:>11,} {t:>12,} {d:>5} {cpu:>7.2f} {our_rate:>10,.0f} "
            f"{bps:>11.0f}"
        )
        print(
            f"  rate ratio explorer/spin: {our_rate / sp_rate:.2f}   "
            f"bytes/state ratio: {bps / sp_bps:.2f}   counts match: {'yes' if match else 'NO'}"
            + (f"   (README table: {table[0]:,} / {table[1]:,}, depth {table[2]})" if table else "")
        )
        all_match &= match
    return 0 if all_match else 1


if __name__ == "__main__":
    sys.exit(main())
