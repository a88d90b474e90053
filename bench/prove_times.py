"""How long `smcd-check prove` takes per theorem.

Usage: python bench/prove_times.py [--repeat N] [--timeout SECONDS] [--only NAME ...]

Checks every theorem of the catalogue N times (default 3) and prints, per theorem, its outcome
and the min / median / max wall time, then the total of the medians and the peak RSS
(resource.getrusage). Ctrl-C prints the table of what was measured so far.
"""

from __future__ import annotations

import argparse
import resource
import statistics
import sys
import time


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3, help="runs per theorem (default 3)")
    parser.add_argument("--timeout", type=float, default=60.0, help="z3 limit per theorem")
    parser.add_argument("--only", action="append", default=[], help="theorem name (repeatable)")
    args = parser.parse_args(argv)
    if args.repeat < 1:
        parser.error("--repeat must be at least 1")

    from smcd_check.spec.proofs import CATALOGUE, THEOREMS_BY_NAME, check_theorem

    unknown = [n for n in args.only if n not in THEOREMS_BY_NAME]
    if unknown:
        parser.error(f"unknown theorem {unknown[0]!r}; known: {', '.join(THEOREMS_BY_NAME)}")
    selected = [THEOREMS_BY_NAME[n] for n in args.only] if args.only else list(CATALOGUE)
    rows: list[tuple[str, str, list[float]]] = []
    start = time.monotonic()
    try:
        for th in selected:
            times: list[float] = []
            status = ""
            for _ in range(args.repeat):
                result = check_theorem(th, timeout=args.timeout)
                times.append(result.seconds)
                status = result.status.value
            rows.append((th.name, status, times))
            print(f"  measured {th.name}", file=sys.stderr, flush=True)
    except KeyboardInterrupt:
        print("interrupted: partial table", file=sys.stderr)
    width = max((len(r[0]) for r in rows), default=10)
    print(f"{'theorem':<{width}}  {'outcome':<12}  {'min s':>7}  {'median s':>8}  {'max s':>7}")
    for name, status, times in rows:
        print(
            f"{name:<{width}}  {status:<12}  {min(times):7.2f}  "
            f"{statistics.median(times):8.2f}  {max(times):7.2f}"
        )
    total = sum(statistics.median(t) for _, _, t in rows)
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(
        f"total of medians: {total:.2f} s over {len(rows)} theorems, repeat {args.repeat}; "
        f"wall {time.monotonic() - start:.1f} s; peak RSS {peak_mb:.0f} MiB"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
