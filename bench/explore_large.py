"""The explorer on the system configs: states, rate, bytes per state, peak RSS, wall time.

    python bench/explore_large.py                 # the `large` config and the growth table
    python bench/explore_large.py --config reference --max-seconds 300
    python bench/explore_large.py --no-growth

Prints one line per run, then (unless ``--no-growth``) a table of how the state count and the
time grow when one parameter of the ``small`` config is raised at a time (ring slots, chunk
size, wrap bits, channel capacity, pairs, modes, abort). Runs are bounded by ``--max-seconds``
each; a bounded run is marked "(partial)".
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import replace

from smcd_check.explorer.engine import Explorer, peak_rss
from smcd_check.spec import configs
from smcd_check.spec.datapath import Mode
from smcd_check.spec.system import System, SystemConfig


def run(name: str, cfg: SystemConfig, max_seconds: float) -> tuple[int, float, float, float, bool]:
    res = Explorer(System(cfg, name=name)).bounded(max_seconds=max_seconds).bfs()
    return (
        res.unique_state_count,
        res.seconds,
        res.states_per_second,
        res.bytes_per_state,
        res.complete,
    )


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--config", default="large")
    ap.add_argument("--max-seconds", type=float, default=120.0)
    ap.add_argument("--no-growth", action="store_true")
    args = ap.parse_args(argv)
    preset = configs.get_preset(args.config)
    n, wall, rate, bps, complete = run(args.config, preset.config, args.max_seconds)
    print(
        f"config {args.config}: {n:,} states{'' if complete else ' (partial)'}  "
        f"{rate:,.0f} states/s (CPU)  {bps:,.0f} bytes/state  peak RSS "
        f"{peak_rss() / 2**20:.0f} MiB  wall {wall:.1f} s"
    )
    if args.no_growth:
        return 0
    base = configs.get_preset("small").config
    variants = [
        ("small (base)", base),
        ("ring_size=2", replace(base, ring_size=2)),
        ("ring_size=3", replace(base, ring_size=3)),
        ("max_chunk=2, ring 2", replace(base, ring_size=2, max_chunk=2)),
        ("wrap_bits=2", replace(base, wrap_bits=2)),
        ("chan_cap=2", replace(base, chan_cap=2)),
        ("abort", replace(base, abort_enabled=True)),
        ("both modes", replace(base, modes=(Mode.MERGED, Mode.COPY))),
        ("2 pairs", replace(base, n_pairs=2)),
    ]
    print(f"\n{'variant of small':22} {'states':>10} {'wall s':>8} {'states/s':>9}")
    for label, cfg in variants:
        n, wall, rate, _, complete = run(label, cfg, args.max_seconds)
        print(
            f"{label:22} {n:>10,} {wall:>8.1f} {rate:>9,.0f}" + ("" if complete else "  (partial)")
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
