"""The explorer's figures in one command: Spin anchor rows and the SMC-D system configs.

    python bench/explore_bench.py                       # anchor merged 10, reference, large
    python bench/explore_bench.py --configs reference   # fewer system rows
    python bench/explore_bench.py --no-spin --workers 1 # no Spin rows; sequential only

What is measured, and how (the honesty statement):

* Every explorer row runs ``Explorer(model).with_workers(N).bfs()``: exactly the engine path
  ``smcd-check explore`` takes (``cli/explore.py`` builds the same ``Explorer``), for the Spin
  anchor model (``bench/spin_anchor_model.py``, which declares its footprints like any user
  model, with no bit layout or action grouping of its own) and for the SMC-D system
  (``configs.build_system``). There is no benchmark-only search path.
* Each explorer row is a fresh Python process (a reused interpreter recycles freed memory and
  under-counts). Times are CPU seconds (user + system) of the search, the worker processes
  included for N > 1 (``ExploreResult.cpu_seconds``), and wall seconds; ``states/s`` is per CPU
  second, ``wall states/s`` per wall second (the figure the parallel search improves).
* Parallel rows (N > 1) add what wall time on this loaded machine cannot say: each worker's
  CPU seconds (summed over the BFS levels; ``--levels`` prints them level by level), the
  coordinator's, and the *critical path*: the sequential prefix, then for every level and every
  phase of it (expand, merge, assign; phases end at barriers) the CPU of the busiest worker,
  plus all of the coordinator's CPU after the prefix (as if it never overlapped the workers).
  That is the wall time the run would take with one idle core per process: it counts the
  imbalance between workers and everything done in series, and leaves out only waiting (pipe
  latency, the scheduler). ``speedup`` divides the sequential row's CPU seconds (its wall time
  on an idle core) by it. The workers did run at the same time, so their CPU includes what two
  busy processes cost each other on these two cores (caches, memory; about 12% here when two
  sequential searches run side by side).
* ``bytes/state`` is the RSS growth of the process during the search divided by the states (the
  visited set, the packed states, the parent array, the memo tables and the interned component
  values; not the interpreter's baseline); sequential rows only (a parallel row's coordinator
  holds no states, so its growth says nothing per state and ``-`` is printed); ``peak RSS``
  is the largest process's peak (coordinator or a worker), interpreter included;
  ``peak/state`` divides it by the states.
* Spin rows build the anchor model's verifier as its README says (``spin -a``, ``gcc -O2
  -DSAFETY -DNOREDUCE -DBFS``, ``./pan -m40000000 -w23``) and take Spin's own CPU time (from
  ``wait4``), states and transitions; its bytes/state is its "total actual memory usage" (the
  64 MiB hash table included) per state. The counts of Spin and the explorer must agree.
* The machine is shared: each row runs ``--rounds`` times and the best run is printed (the least
  CPU; for parallel rows the shortest critical path); the
  wall-clock figures in particular depend on the load (printed with the rows).

Spin missing: the Spin rows are skipped with a note (``apt-get install -y spin gcc``); the
anchor model lives in ``../shared/anchors/spin`` beside the repository (or
``$SMCD_CHECK_SHARED``, see ``bench/shared_dir.py``).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

def anchor_available() -> bool:
    """The Spin anchor model is in the shared folder (``../shared`` or $SMCD_CHECK_SHARED)."""
    from shared_dir import shared_file

    try:
        shared_file("anchors/spin/smcd.pml")
    except SystemExit as exc:
        print(f"  ({exc})")
        return False
    return True


def one_run(kind: str, arg: str, workers: int) -> dict[str, Any]:
    """One explorer run in this process (called in a fresh interpreter)."""
    import gc

    from smcd_check.explorer.engine import Explorer

    if kind == "anchor":
        from spin_anchor_model import SpinAnchorModel, table_config

        copy, size = arg.split(":")
        model: Any = SpinAnchorModel(table_config(copy == "copy", int(size)))
    else:
        from smcd_check.spec import configs

        model = configs.build_system(arg)
    gc.collect()
    res = Explorer(model).with_workers(workers).bfs()
    per_worker = [0.0] * res.workers
    for phases, _coord in res.level_cpu:
        for phase in phases:
            for w, c in enumerate(phase):
                per_worker[w] += c
    return {
        "states": res.unique_state_count,
        "transitions": res.transition_count,
        "depth": res.max_depth,
        "cpu": res.cpu_seconds,
        "wall": res.seconds,
        "bps": res.bytes_per_state,
        "peak": res.peak_rss_bytes,
        "ok": res.ok,
        "workers": res.workers,
        "critical": res.critical_path_cpu,
        "prefix": res.prefix_cpu,
        "per_worker": per_worker,
        "coordinator": sum(c for _p, c in res.level_cpu),
        "levels": [
            ([sum(p[w] for p in phases if w < len(p)) for w in range(res.workers)], c)
            for phases, c in res.level_cpu
        ],
    }


def run_fresh(kind: str, arg: str, workers: int) -> dict[str, Any]:
    cmd = [sys.executable, __file__, "--one", kind, arg, "--workers", str(workers)]
    out = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout
    doc: dict[str, Any] = json.loads(out.strip().splitlines()[-1])
    return doc


def best(runs: list[dict[str, Any]]) -> dict[str, Any]:
    return min(runs, key=lambda r: r["critical"] if r["workers"] > 1 else r["cpu"])


def parallel_lines(r: dict[str, Any], seq: dict[str, Any] | None, levels: bool) -> list[str]:
    """The parallel row's CPU breakdown: per worker, coordinator, critical path, speedup."""
    pad = f"  {'':22} "
    out = [
        pad
        + "CPU per worker "
        + " ".join(f"{c:.2f}" for c in r["per_worker"])
        + f", coordinator {r['coordinator']:.2f} after a {r['prefix']:.2f} s sequential prefix"
    ]
    line = pad + f"critical path {r['critical']:.2f} CPU s"
    if seq is not None and r["critical"]:
        line += (
            f" -> speedup {seq['cpu'] / r['critical']:.2f}x over 1 worker"
            f" ({r['states'] / r['critical']:,.0f} states per critical-path second);"
            f" total CPU {r['cpu'] / seq['cpu']:.2f}x"
        )
    out.append(line)
    if levels:
        out.append(pad + "level  " + "  ".join(f"w{w:<5}" for w in range(r["workers"])) + " coord")
        for i, (ws, c) in enumerate(r["levels"]):
            out.append(pad + f"{i:>5}  " + "  ".join(f"{x:6.3f}" for x in ws) + f" {c:6.3f}")
    return out


def row(label: str, r: dict[str, Any]) -> str:
    rate = r["states"] / r["cpu"] if r["cpu"] else 0.0
    wall = r["states"] / r["wall"] if r["wall"] else 0.0
    # a parallel row's RSS growth is the coordinator's alone (the states live in the workers):
    # not a bytes-per-state figure, so none is printed
    bps = f"{r['bps']:>9.0f}" if r.get("workers", 1) == 1 else f"{'-':>9}"
    return (
        f"  {label:22} {r['states']:>11,} {r['transitions']:>12,} {r['depth']:>5} "
        f"{r['cpu']:>7.2f} {r['wall']:>7.2f} {rate:>10,.0f} {wall:>10,.0f} {bps} "
        f"{r['peak'] / 2**20:>8.0f} {r['peak'] / r['states']:>9.0f}"
    )


HEADER = (
    f"  {'':22} {'states':>11} {'transitions':>12} {'depth':>5} {'cpu s':>7} {'wall s':>7} "
    f"{'states/s':>10} {'wall st/s':>10} {'B/state':>9} {'peak MiB':>8} {'peak/st':>9}"
)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--configs", default="reference,large", help="system configs (comma list)")
    ap.add_argument("--anchor", default="merged:10", help="anchor rows: merged:10,copy:9,...")
    ap.add_argument("--workers", default="1,2", help="worker counts to run (comma list)")
    ap.add_argument("--rounds", type=int, default=1, help="rounds per row (best CPU time)")
    ap.add_argument("--no-spin", action="store_true", help="skip the Spin rows")
    ap.add_argument(
        "--levels", action="store_true", help="parallel rows: each worker's CPU per BFS level"
    )
    ap.add_argument("--one", nargs=2, metavar=("KIND", "ARG"), help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    workers = [int(w) for w in args.workers.split(",") if w]
    if args.one:
        print(json.dumps(one_run(args.one[0], args.one[1], workers[0])))
        return 0
    try:
        load = os.getloadavg()
    except OSError:  # pragma: no cover - no load average
        load = (0.0, 0.0, 0.0)
    print(
        f"explore_bench: {os.cpu_count()} cores, load average {load[0]:.2f} {load[1]:.2f} "
        f"{load[2]:.2f} at start; CPU seconds; best of {args.rounds} round(s)"
    )
    mismatch = False
    spin_ok = (
        not args.no_spin
        and bool(shutil.which("spin") and shutil.which("gcc"))
        and anchor_available()
    )
    if not args.no_spin and not spin_ok:
        print("  (Spin rows skipped: spin/gcc or ../shared/anchors/spin/smcd.pml missing)")
    for spec in [a for a in args.anchor.split(",") if a]:
        mode, size = spec.split(":")
        print(f"\n== Spin anchor model, {mode} DMB_SIZE={size} MAX_CHUNK=2 WRAP_MAX=2 CHAN_CAP=3")
        print(HEADER)
        spin_row = None
        if spin_ok:
            from spin_vs_explorer import build_pan, run_pan

            with tempfile.TemporaryDirectory(prefix="spin-anchor-") as tmp:
                pan = build_pan(Path(tmp), mode == "copy", int(size))
                spins = [run_pan(pan) for _ in range(args.rounds)]
            sp = min(spins, key=lambda r: r.cpu)
            spin_row = {
                "states": sp.states,
                "transitions": sp.transitions,
                "depth": sp.depth,
                "cpu": sp.cpu,
                "wall": sp.cpu,
                "bps": sp.total_mib * 2**20 / sp.states,
                "peak": sp.peak_rss,
            }
            print(row("spin (pan, BFS)", spin_row))
        seq = None
        for w in workers:
            r = best([run_fresh("anchor", spec, w) for _ in range(args.rounds)])
            print(row(f"explorer, {w} worker{'s' if w > 1 else ''}", r))
            if w == 1:
                seq = r
            else:
                print("\n".join(parallel_lines(r, seq, args.levels)))
            if spin_row is not None:
                ratio = (r["states"] / r["cpu"]) / (spin_row["states"] / spin_row["cpu"])
                same = (r["states"], r["transitions"]) == (
                    spin_row["states"],
                    spin_row["transitions"],
                )
                mismatch |= not same
                memory = (f"bytes/state / Spin's {r['bps'] / spin_row['bps']:.2f}  "
                          if w == 1 else "")
                print(
                    f"  {'':22} rate/Spin {ratio:.2f}  {memory}counts match Spin: "
                    f"{'yes' if same else 'NO'}"
                )
    for name in [c for c in args.configs.split(",") if c]:
        print(f"\n== SMC-D system, config {name}")
        print(HEADER)
        seq = None
        for w in workers:
            r = best([run_fresh("system", name, w) for _ in range(args.rounds)])
            print(row(f"explorer, {w} worker{'s' if w > 1 else ''}", r))
            if w == 1:
                seq = r
            else:
                print("\n".join(parallel_lines(r, seq, args.levels)))
                if seq is not None:
                    print(
                        f"  {'':22} wall-clock rate vs 1 worker on this machine now: "
                        f"{(r['states'] / r['wall']) / (seq['states'] / seq['wall']):.2f}x"
                    )
    return 1 if mismatch else 0


if __name__ == "__main__":
    sys.exit(main())
