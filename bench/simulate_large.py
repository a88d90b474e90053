"""Simulation (``smcd-check explore --simulate``) on the largest configs: walks/s, states/s and
the depth reached, in CPU time.

    python bench/simulate_large.py                  # large, then a config too big to exhaust
    python bench/simulate_large.py --walks 5000 --seed 7
    python bench/simulate_large.py --faults         # also: walks until each fault is found

Rows: ``large`` (the largest preset, 441,454 states: the reference config with abort), and
``large-ring4``: ``large`` with a 4-slot ring, 2-bit wrap, 2-byte chunks and 2-message CDC
channels, a space the breadth-first search does not finish on this machine. Each row runs the
same seeded walks through :func:`smcd_check.explorer.simulate.simulate` (the code
``--simulate`` runs) and prints walks, states checked, walks/s and states/s per CPU second,
the longest and mean walk, how walks ended, and peak RSS. ``--faults`` adds, per fault on its
config, the walks and CPU seconds until the violation was found and the trace's length after
cutting loops (the breadth-first shortest in brackets).
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import replace

from smcd_check.explorer.engine import Explorer, peak_rss
from smcd_check.explorer.simulate import simulate
from smcd_check.spec import configs
from smcd_check.spec.faults import Fault
from smcd_check.spec.system import System


def rows() -> list[tuple[str, System]]:
    large = configs.get_preset("large").config
    ring4 = replace(large, ring_size=4, wrap_bits=2, max_chunk=2, chan_cap=2)
    return [
        ("large", configs.build_system("large")),
        ("large-ring4", System(ring4, name="large-ring4")),
    ]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--walks", type=int, default=2000)
    ap.add_argument("--depth", type=int, default=100)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--faults", action="store_true")
    args = ap.parse_args(argv)
    print(
        f"simulation: {args.walks:,} walks of up to {args.depth} steps, seed {args.seed} "
        "(CPU time; the machine is shared, compare within one run)"
    )
    print(
        f"{'config':12} {'walks':>7} {'states':>9} {'walks/s':>8} {'states/s':>9} "
        f"{'depth max':>9} {'mean':>6}  ended"
    )
    for name, model in rows():
        r = simulate(model, walks=args.walks, depth=args.depth, seed=args.seed)
        ended = ", ".join(f"{k} {v}" for k, v in sorted(r.endings.items()))
        print(
            f"{name:12} {r.walks:>7,} {r.states:>9,} {r.walks_per_second:>8,.0f} "
            f"{r.states_per_second:>9,.0f} {r.max_depth:>9} {r.mean_depth:>6.1f}  {ended}"
            + ("" if r.ok else f"  VIOLATION: {r.violation.name if r.violation else ''}")
        )
    if args.faults:
        print(f"\n{'fault':28} {'config':10} {'walks':>6} {'CPU s':>6} {'steps':>6} (BFS)")
        for fault in Fault:
            name = configs.FAULT_CONFIGS[fault]
            r = simulate(
                configs.build_system(name, fault.value),
                walks=100_000,
                depth=args.depth,
                seed=args.seed,
            )
            bfs = Explorer(configs.build_system(name, fault.value)).bfs()
            steps = len(r.violation.path) if r.violation else "-"
            shortest = len(bfs.violation.path) if bfs.violation else "-"
            print(
                f"{fault.value:28} {name:10} {r.walks:>6,} {r.cpu_seconds:>6.2f} "
                f"{steps:>6} ({shortest})"
            )
    print(f"peak RSS {peak_rss() / 2**20:.0f} MiB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
