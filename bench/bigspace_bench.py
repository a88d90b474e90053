"""Figures for spaces too big to exhaust: simulation, bitstate, symmetry (issue 19).

    python bench/bigspace_bench.py                 # all three tables
    python bench/bigspace_bench.py --only bitstate # one of: simulate, bitstate, symmetry

What is measured, and how:

* **simulation** on ``large`` (the largest pinned config, 441,454 states) and ``large-ring4``
  (``large`` with a 4-slot ring, 2-bit wrap, 2-byte chunks, 2-message CDC channel: not
  exhausted): ``simulate(model, walks, depth, seed)`` as ``smcd-check explore --simulate``
  runs it; walks/s and states/s per CPU second, the deepest and mean walk.
* **bitstate** on ``large``: ``Explorer(model).bfs()`` with exact storage and with
  ``with_bitstate(BITS)`` (the path ``smcd-check explore [--bitstate BITS]`` takes), each in a
  fresh process. *Stored bytes/state* is what the visited store keeps per state, counted with
  ``sys.getsizeof`` after the search: exact: the set of packed ints, the int objects, the list
  of states in BFS order and the parent array; bitstate: the bit table, the parent array and
  the step-index array (the frontier's ints are transient). *RSS bytes/state* is the process's
  RSS growth during the search per state (the memo tables and interned values included, which
  both modes have). *Missed* is the exact count minus the bitstate count; *expected* is the
  estimate the run prints.
* **symmetry** on every config with more than one pair: states with the reduction (the default)
  and without (``with_symmetry(False)``), the ratio, and the CPU seconds of each search;
  configs that declare no symmetric pairs are listed as such (their reduction is 1 by
  definition: nothing is searched twice).

Times are CPU seconds of the search (the machine is shared; wall time depends on the load).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from dataclasses import replace
from typing import Any


def _system(name: str) -> Any:
    from smcd_check.spec import configs
    from smcd_check.spec.system import System

    if name == "large-ring4":
        large = configs.get_preset("large").config
        ring4 = replace(large, ring_size=4, wrap_bits=2, max_chunk=2, chan_cap=2)
        return System(ring4, name="large-ring4")
    return configs.build_system(name)


def one_simulate(name: str, walks: int, depth: int, seed: int) -> dict[str, Any]:
    from smcd_check.explorer.simulate import simulate

    r = simulate(_system(name), walks=walks, depth=depth, seed=seed)
    return {
        "walks": r.walks,
        "states": r.states,
        "cpu": r.cpu_seconds,
        "max_depth": r.max_depth,
        "mean_depth": r.steps / r.walks if r.walks else 0.0,
        "endings": r.endings,
    }


def one_search(name: str, bits: int | None, symmetry: bool | None) -> dict[str, Any]:
    """One search in this process; with the visited store's size counted afterwards."""
    import gc

    from smcd_check.explorer.engine import Explorer, _Search
    from smcd_check.explorer.model import as_property

    model = _system(name)
    ex = Explorer(model).with_symmetry(symmetry)
    if bits is not None:
        ex.with_bitstate(bits)
    props = [as_property(p) for p in model.properties()]
    ex.check_modes(False)
    search = _Search(ex, props, want_graph=False)  # the path Explorer.bfs() takes
    r = search.run()
    assert r is not None
    gc.collect()
    n = r.unique_state_count
    if bits is None:
        seen = search.seen
        store = sys.getsizeof(seen) + sys.getsizeof(search.states)
        store += sum(sys.getsizeof(x) for x in search.states)
        store += search.parents.itemsize * len(search.parents)
    else:
        store = search.bits.nbytes
        store += search.parents.itemsize * len(search.parents)
        store += search.succ.itemsize * len(search.succ)
    out = {
        "states": n,
        "transitions": r.transition_count,
        "cpu": r.cpu_seconds,
        "rss_per_state": r.bytes_per_state,
        "store_per_state": store / n if n else 0.0,
        "peak_mib": r.peak_rss_bytes / 2**20,
        "symmetry_members": r.symmetry_members,
        "verdict": r.verdict(),
    }
    if r.bitstate is not None:
        out["expected_missed"] = r.bitstate.expected_omitted
        out["omission_probability"] = r.bitstate.omission_probability
        out["fill"] = r.bitstate.fill
    return out


def child(*args: str) -> dict[str, Any]:
    """Run one row in a fresh process (a reused interpreter recycles memory)."""
    res = subprocess.run(
        [sys.executable, __file__, "--one", *args],
        capture_output=True,
        text=True,
        check=False,
    )
    if res.returncode != 0:
        raise SystemExit(f"bigspace_bench: row {args} failed:\n{res.stderr}")
    return json.loads(res.stdout.strip().splitlines()[-1])  # type: ignore[no-any-return]


def table_simulate(walks: int, depth: int, seed: int) -> None:
    print(f"\n== simulation: {walks:,} walks of up to {depth} steps, seed {seed}")
    print(f"  {'config':12} {'walks/s':>9} {'states/s':>10} {'depth max':>9} {'mean':>6}  ended")
    for name in ("large", "large-ring4"):
        r = child("simulate", name, str(walks), str(depth), str(seed))
        cpu = r["cpu"] or 1e-9
        ends = ", ".join(f"{k} {v:,}" for k, v in sorted(r["endings"].items()))
        print(
            f"  {name:12} {r['walks'] / cpu:9,.0f} {r['states'] / cpu:10,.0f} "
            f"{r['max_depth']:9} {r['mean_depth']:6.1f}  {ends}"
        )


def table_bitstate(bits_list: list[int]) -> None:
    print("\n== bitstate on large: stored bytes per state against exact storage")
    print(
        f"  {'storage':14} {'states':>9} {'missed':>7} {'expected':>9} {'cpu s':>6} "
        f"{'stored B/st':>11} {'RSS B/st':>9} {'peak MiB':>8}"
    )
    exact = child("search", "large", "-", "auto")
    print(
        f"  {'exact':14} {exact['states']:9,} {'-':>7} {'-':>9} {exact['cpu']:6.2f} "
        f"{exact['store_per_state']:11.1f} {exact['rss_per_state']:9.1f} {exact['peak_mib']:8.0f}"
    )
    for bits in bits_list:
        r = child("search", "large", str(bits), "auto")
        missed = exact["states"] - r["states"]
        print(
            f"  {f'bitstate 2^{bits}':14} {r['states']:9,} {missed:7,} "
            f"{r['expected_missed']:9.1f} {r['cpu']:6.2f} {r['store_per_state']:11.1f} "
            f"{r['rss_per_state']:9.1f} {r['peak_mib']:8.0f}"
        )


def table_symmetry() -> None:
    from smcd_check.spec import configs

    print("\n== symmetry: states with the reduction (default) and without, every multi-pair config")
    print(
        f"  {'config':10} {'pairs':>5} {'symmetric':>9} {'reduced':>9} {'full':>9} "
        f"{'ratio':>6} {'cpu s red.':>10} {'cpu s full':>10}"
    )
    for name, preset in configs.PRESETS.items():
        cfg = preset.config
        if cfg.n_pairs < 2:
            continue
        sym = cfg.symmetric_pairs
        if not sym:
            print(
                f"  {name:10} {cfg.n_pairs:5} {'none':>9}   (no interchangeable pairs declared: "
                "nothing to reduce)"
            )
            continue
        red = child("search", name, "-", "on")
        full = child("search", name, "-", "off")
        print(
            f"  {name:10} {cfg.n_pairs:5} {len(sym):9} {red['states']:9,} {full['states']:9,} "
            f"{full['states'] / red['states']:5.1f}x {red['cpu']:10.2f} {full['cpu']:10.2f}"
        )


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--only", choices=("simulate", "bitstate", "symmetry"), default=None)
    ap.add_argument("--walks", type=int, default=2000)
    ap.add_argument("--depth", type=int, default=200)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--bits", default="20,24", help="bitstate table sizes (log2, comma list)")
    ap.add_argument("--one", nargs="+", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.one:
        kind, *rest = args.one
        if kind == "simulate":
            out = one_simulate(rest[0], int(rest[1]), int(rest[2]), int(rest[3]))
        else:
            bits = None if rest[1] == "-" else int(rest[1])
            symmetry = {"auto": None, "on": True, "off": False}[rest[2]]
            out = one_search(rest[0], bits, symmetry)
        print(json.dumps(out))
        return 0
    load = os.getloadavg()
    print(
        f"bigspace_bench: {os.cpu_count()} cores, load average {load[0]:.2f} {load[1]:.2f} "
        f"{load[2]:.2f} at start; CPU seconds; {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}"
    )
    if args.only in (None, "simulate"):
        table_simulate(args.walks, args.depth, args.seed)
    if args.only in (None, "bitstate"):
        table_bitstate([int(b) for b in args.bits.split(",")])
    if args.only in (None, "symmetry"):
        table_symmetry()
    return 0


if __name__ == "__main__":
    sys.exit(main())
