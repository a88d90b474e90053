"""The search on Ray against the search on one machine, in one command (issue 14).

    python bench/cluster_bench.py                 # config large: 4 rows, about a minute
    python bench/cluster_bench.py --huge          # also config huge (~10^7 states, minutes)
    python bench/cluster_bench.py --configs small # a quick look

Rows per config, each in a fresh Python process (a reused interpreter recycles freed memory):

* ``sequential``: ``Explorer(model).bfs()``, the search ``smcd-check explore --workers 1`` runs;
* ``2 processes``: the in-machine parallel search (``--workers 2``, forked workers);
* ``ray, 1 actor`` and ``ray, 2 actors``: the same parallel search with its workers as Ray
  actors on a local Ray started by the row's process (``ray.init(num_cpus=2)``; its start-up,
  a few seconds, is printed apart and not counted in the search's time) - what
  ``smcd-check explore --cluster auto --workers N`` runs.

Figures: states, transitions and depth (every row must report the sequential row's, else the
benchmark exits 1); CPU seconds (the workers' included: forked workers as reaped children,
actors as they report their own); wall seconds; states per CPU second and per wall second; per
worker the bytes per state (the worker's RSS growth over the states it owns: its visited set,
packed states with global and parent indices, its memo and intern tables); and the batches:
the share of successors sent to another worker, pickled bytes per sent successor, and the CPU
per sent successor of packing and unpacking them (plus, for actors, of putting them into and
getting them from Ray's object store), also spread over all states.

The machine is shared (2 cores, other jobs): CPU seconds are the figures to compare; wall
seconds say what this machine gave at that moment (the load average is printed). The model for
N machines at the end extrapolates from the 2-actor row's measured per-state costs.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

ROWS = ("sequential", "2 processes", "ray, 1 actor", "ray, 2 actors")


def one_run(config: str, kind: str) -> dict[str, Any]:
    """One row, in this (fresh) process."""
    import gc

    from smcd_check.explorer.engine import Explorer
    from smcd_check.spec import configs

    model = configs.build_system(config)
    ex = Explorer(model)
    ray_start = 0.0
    if kind.startswith("ray"):
        import ray

        from smcd_check.explorer.cluster import ray_transport

        t0 = time.perf_counter()
        ray.init(
            address="local",  # a new Ray, never one recorded on this machine
            num_cpus=2,
            include_dashboard=False,
            logging_level="ERROR",
            log_to_driver=False,
        )
        ray_start = time.perf_counter() - t0
        ex.with_workers(1 if kind == "ray, 1 actor" else 2).with_transport(ray_transport)
    elif kind == "2 processes":
        ex.with_workers(2)
    gc.collect()
    res = ex.bfs()
    coordinator = sum(c for _p, c in res.level_cpu)
    rtt = _actor_round_trip() if kind.startswith("ray") else 0.0
    return {
        "states": res.unique_state_count,
        "transitions": res.transition_count,
        "depth": res.max_depth,
        "ok": res.ok,
        "cpu": res.cpu_seconds,
        "wall": res.seconds,
        "bps": res.bytes_per_state,
        "peak": res.peak_rss_bytes,
        "workers": res.workers,
        "prefix": res.prefix_cpu,
        "coordinator": coordinator,
        "levels": len(res.level_cpu),
        "critical": res.critical_path_cpu,
        "stats": res.worker_stats,
        "ray_start": ray_start,
        "rtt": rtt,
    }


def _actor_round_trip(calls: int = 200) -> float:
    """The median wall seconds of one call to a Ray actor and its reply (local Ray)."""
    import statistics

    import ray

    @ray.remote(num_cpus=0)
    class Echo:
        def ping(self, x: Any) -> Any:
            return x

    echo = Echo.remote()  # type: ignore[attr-defined]
    ray.get(echo.ping.remote(0))
    times = []
    for i in range(calls):
        t0 = time.perf_counter()
        ray.get(echo.ping.remote(("expand", i)))
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def run_fresh(config: str, kind: str) -> dict[str, Any]:
    cmd = [sys.executable, __file__, "--one", config, kind]
    out = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout
    doc: dict[str, Any] = json.loads(out.strip().splitlines()[-1])
    return doc


HEADER = (
    f"  {'':16} {'states':>11} {'transitions':>12} {'depth':>5} {'cpu s':>7} {'wall s':>7} "
    f"{'states/s':>9} {'wall st/s':>9}  {'B/state per worker':>20}"
)


def row(label: str, r: dict[str, Any]) -> str:
    rate = r["states"] / r["cpu"] if r["cpu"] else 0.0
    wall = r["states"] / r["wall"] if r["wall"] else 0.0
    if r["stats"]:
        per = " ".join(f"{s['rss_growth'] / max(s['states'], 1):.0f}" for s in r["stats"])
    else:
        per = f"{r['bps']:.0f}"
    return (
        f"  {label:16} {r['states']:>11,} {r['transitions']:>12,} {r['depth']:>5} "
        f"{r['cpu']:>7.2f} {r['wall']:>7.2f} {rate:>9,.0f} {wall:>9,.0f}  {per:>20}"
    )


def batch_line(r: dict[str, Any]) -> str | None:
    """The batches' share and cost (None: one worker, nothing crossed)."""
    st = r["stats"]
    sent = sum(s["sent_states"] for s in st)
    if not st or not sent:
        return None
    nbytes = sum(s["sent_bytes"] for s in st)
    pack = sum(s["pack_cpu"] + s["unpack_cpu"] for s in st)
    transport = sum(s.get("transport_cpu", 0.0) for s in st)
    cost = pack + transport
    return (
        f"  {'':16} batches: {sent / r['transitions']:.1%} of the successors sent to another "
        f"worker, {nbytes / sent:.1f} B each; pack+unpack {pack / sent * 1e6:.2f} us"
        + (f" + object store {transport / sent * 1e6:.2f} us" if transport else "")
        + f" per sent successor = {cost / r['states'] * 1e6:.2f} us per state "
        f"({cost / r['cpu']:.1%} of the CPU); coordinator {r['coordinator']:.2f} CPU s over "
        f"{r['levels']} levels"
    )


def model_lines(r: dict[str, Any], net_rtt: float, net_bw: float) -> list[str]:
    """A model of the search on N machines (one actor each), from the 2-actor row.

    Per BFS level with S new states and T transitions, each of N workers expands T/N
    transitions at the parallel search's measured CPU per transition (c: the 2-actor row's CPU
    without the coordinator's and the batches'), sends the successors whose owner is another
    worker - the measured share of successors whose partition key changes, p, times
    (1 - 1/N) - in batches of b bytes per successor at o CPU seconds each, and receives the
    level's order keys from the coordinator (8 B per new state of every worker: the
    coordinator sends 8 S N bytes, the one term that grows with N). A level costs three
    barriers (expand, merge, assign), each a Ray actor call and reply: the local round trip
    measured here plus ``net_rtt``. Summed over the L levels:

        wall(N) = T c / N + T p (1 - 1/N) o / N + k S
                  + (T p (1 - 1/N) b / N + 8 S + 8 S N) / net_bw + 3 L (rtt + net_rtt)

    (k: coordinator CPU per state). Level sizes are uneven; the model takes the totals, so
    it is optimistic where a few levels hold most states.
    """
    st = r["stats"]
    sent = sum(s["sent_states"] for s in st)
    n_now = len(st)
    S, T, L = r["states"], r["transitions"], r["levels"]
    p = sent / T / (1 - 1 / n_now)
    b = sum(s["sent_bytes"] for s in st) / max(sent, 1)
    batch = sum(s["pack_cpu"] + s["unpack_cpu"] + s.get("transport_cpu", 0.0) for s in st)
    o = batch / max(sent, 1)
    k = r["coordinator"] / S
    c = (r["cpu"] - r["coordinator"] - r["prefix"] - batch) / T
    rtt = r["rtt"]
    out = [
        f"  model for N machines, one actor each (from this row: c = {c * 1e6:.2f} us CPU per "
        f"transition, p = {p:.1%} of successors change owner key, b = {b:.0f} B and "
        f"o = {o * 1e6:.2f} us per sent successor, k = {k * 1e6:.2f} us coordinator CPU per "
        f"state, {L} levels, local actor round trip {rtt * 1e3:.2f} ms; assumed: network "
        f"round trip {net_rtt * 1e3:.1f} ms, {net_bw / 1e9:.1f} GB/s per link):",
        f"  {'N':>5} {'batches out/worker':>19} {'keys in/worker':>15} {'coordinator out':>16} "
        f"{'CPU s/worker':>13} {'wall s':>8} {'states/s':>11}",
    ]
    for n in (1, 2, 4, 8, 16, 32, 64, 128):
        cross = p * (1 - 1 / n)
        sent_w = T * cross * b / n
        keys_w = 8 * S
        coord = 8 * S * n
        cpu_w = T * c / n + T * cross * o / n
        wall = cpu_w + k * S + (sent_w + keys_w + coord) / net_bw + 3 * L * (rtt + net_rtt)
        out.append(
            f"  {n:>5} {sent_w / 2**20:>17.1f} M {keys_w / 2**20:>13.1f} M "
            f"{coord / 2**20:>14.1f} M {cpu_w:>13.2f} {wall:>8.2f} {S / wall:>11,.0f}"
        )
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--configs", default="large", help="system configs (comma list)")
    ap.add_argument("--huge", action="store_true", help="also config huge (minutes)")
    ap.add_argument("--net-rtt-ms", type=float, default=0.5, help="model: network round trip (ms)")
    ap.add_argument("--net-gbps", type=float, default=1.0, help="model: GB/s per link")
    ap.add_argument("--one", nargs=2, metavar=("CONFIG", "KIND"), help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.one:
        print(json.dumps(one_run(*args.one)))
        return 0
    try:
        import ray
    except ImportError:
        print("cluster_bench: Ray is not installed: pip install -e '.[cluster]'")
        return 2
    load = os.getloadavg()
    print(
        f"cluster_bench: ray {ray.__version__}, {os.cpu_count()} cores, load average "
        f"{load[0]:.2f} {load[1]:.2f} {load[2]:.2f} at start; CPU seconds include the workers'"
    )
    names = [c for c in args.configs.split(",") if c]
    if args.huge and "huge" not in names:
        names.append("huge")
    mismatch = False
    for name in names:
        print(f"\n== config {name}")
        print(HEADER)
        seq: dict[str, Any] | None = None
        last: dict[str, Any] | None = None
        for kind in ROWS:
            r = run_fresh(name, kind)
            print(row(kind, r))
            line = batch_line(r)
            if line:
                print(line)
            if r["ray_start"]:
                print(
                    f"  {'':16} (Ray started in {r['ray_start']:.1f} s, not counted; an actor "
                    f"call's round trip: {r['rtt'] * 1e3:.2f} ms)"
                )
            if seq is None:
                seq = r
            else:
                same = all(r[k] == seq[k] for k in ("states", "transitions", "depth", "ok"))
                mismatch |= not same
                if not same:
                    print(f"  {'':16} COUNTS DIFFER FROM THE SEQUENTIAL ROW")
            last = r
        if seq is not None and last is not None and last["stats"]:
            print(
                f"  scaling: 2 actors use {last['cpu'] / seq['cpu']:.2f}x the sequential CPU; "
                f"critical path {last['critical']:.2f} CPU s = "
                f"{seq['cpu'] / last['critical']:.2f}x faster on idle cores"
            )
            print("\n".join(model_lines(last, args.net_rtt_ms / 1e3, args.net_gbps * 1e9)))
    return 1 if mismatch else 0


if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    sys.exit(main())
