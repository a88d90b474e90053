"""SMC-D over loopback-ism shared memory against TCP loopback: bandwidth and latency.

One command:

    python bench/shm_vs_tcp.py [--sizes 64,256,1K,4K,16K,64K,256K,1M] [--seconds 0.6]
                               [--dmb-size 256K] [--transports tcp,shm-copy,shm-merged]
                               [--rounds 3000] [--out-dir bench/out] [--profile] [--torn]
                               [--json]

Process layout (the same for every transport): a client process and a server process, started
fresh for every measurement, on the same host. ``tcp`` is a TCP connection over 127.0.0.1
(TCP_NODELAY, default buffers); ``shm-copy`` and ``shm-merged`` are the project's
``smcd_check.model.shm`` sockets (the CLC handshake over TCP, then data through DMBs in
``/dev/shm``): copy mode on a device without nocopy support (own sndbuf, data moved into the
peer DMB), merged mode on a nocopy device (the sndbuf *is* the peer DMB).

* **bandwidth**: the client sends messages of one size for ``--seconds`` (``sendall`` each), the
  server reads them with ``recv_into`` and acknowledges the last byte; MB/s = bytes / wall time
  from the first send to the acknowledgement.
* **latency**: ``--rounds`` ping-pongs of 64 bytes (as sockperf ping-pong); the one-way latency
  is half the round trip (median and 99th percentile).
* **memcpy**: copying a 1 MiB buffer with a memoryview slice assignment in one process (the
  copy both ends of merged mode do per byte), the physical limit of any shared-memory transport
  written in Python on this machine.
* ``--profile`` profiles the server and client of merged mode at 64 KiB (cProfile, top entries
  by own time): where the time goes.
* ``--torn`` checks the cursor-store claim of :mod:`smcd_check.model.shm.memory`: one process
  rewrites an 8-byte word in shared memory with ``memoryview.cast("Q")`` item stores (and, for
  contrast, with little-endian ``struct.pack_into``), another reads it and counts values that are
  neither the old nor the new one.

Prints the table; writes ``shm_vs_tcp.png`` and ``.svg`` into ``--out-dir`` when matplotlib is
installed (``pip install -e '.[bench]'``), else says so. Wall time is the measure here (a
transport's speed is elapsed time); CPU seconds of both processes are printed too. The machine is
shared: figures vary between runs.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import os
import platform
import statistics
import struct
import sys
import time
from pathlib import Path
from typing import Any

SUFFIX = {"": 1, "K": 1 << 10, "M": 1 << 20}
#: GIL switch interval in the benchmark processes (CPython's default is 5 ms): the softirq
#: thread and the socket user hand work to each other, and a 5 ms wait for the GIL would
#: dominate every hand-over. Set for every transport alike.
SWITCH_INTERVAL = float(os.environ.get("SMCD_SWITCH_INTERVAL", "0.00005"))
DEFAULT_SIZES = "64,256,1K,4K,16K,64K,256K,1M"


def parse_size(text: str) -> int:
    t = text.strip().upper().removesuffix("IB").removesuffix("B")
    unit = t[-1:] if t[-1:] in SUFFIX else ""
    try:
        value = int(t[: len(t) - len(unit)]) * SUFFIX[unit]
    except ValueError:
        raise argparse.ArgumentTypeError(f"bad size {text!r} (e.g. 64, 4K, 1M)") from None
    if value <= 0:
        raise argparse.ArgumentTypeError(f"size {text!r} must be > 0")
    return value


def human(n: int) -> str:
    return f"{n >> 20}M" if n >= 1 << 20 and not n % (1 << 20) else (
        f"{n >> 10}K" if n >= 1024 and not n % 1024 else str(n))


# ------------------------------------------------------------------ endpoints

def _make_server(transport: str, dev_path: str | None, dmb: int) -> tuple[Any, Any, Any]:
    import socket

    if transport == "tcp":
        lst = socket.create_server(("127.0.0.1", 0))
        return lst, lst.getsockname()[:2], None
    from smcd_check.model.shm.device import ShmLoopbackIsm
    from smcd_check.model.shm.handshake import HandshakeConfig
    from smcd_check.model.shm.host import ShmHost
    from smcd_check.model.shm.socket import SmcdListener

    assert dev_path is not None
    dev = ShmLoopbackIsm.open(dev_path, seed=os.getpid(), nocopy=transport == "shm-merged")
    host = ShmHost(dev, name="server")
    lst = SmcdListener(host, config=HandshakeConfig(dmb_size=dmb, sndbuf_size=dmb))
    return lst, lst.address, (host, dev)


def _accept(transport: str, lst: Any) -> Any:
    import socket

    if transport == "tcp":
        s, _ = lst.accept()
        s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        return s
    s, _ = lst.accept(timeout=60)
    if s.conn is None:
        raise RuntimeError(f"SMC-D fell back to TCP: {s.fallback}")
    return s


def _connect(transport: str, addr: Any, dev_path: str | None, dmb: int) -> tuple[Any, Any]:
    import socket

    if transport == "tcp":
        s = socket.create_connection(tuple(addr))
        s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        return s, None
    from smcd_check.model.shm.device import ShmLoopbackIsm
    from smcd_check.model.shm.handshake import HandshakeConfig
    from smcd_check.model.shm.host import ShmHost
    from smcd_check.model.shm.socket import connect

    assert dev_path is not None
    dev = ShmLoopbackIsm.open(dev_path, seed=os.getpid(), nocopy=transport == "shm-merged")
    host = ShmHost(dev, name="client")
    s = connect(host, tuple(addr), config=HandshakeConfig(dmb_size=dmb, sndbuf_size=dmb))
    if s.conn is None:
        raise RuntimeError(f"SMC-D fell back to TCP: {s.fallback}")
    return s, (host, dev)


def messages_for(size: int, seconds: float) -> int:
    """How many messages of ``size`` one bandwidth point sends (about ``seconds`` on a
    machine doing ~1 GB/s for large and ~30 us per small message)."""
    by_bytes = int(seconds * (1 << 30)) // size
    by_count = int(seconds * 40000)
    return max(200, min(by_bytes, by_count))


def _recv_exact(s: Any, n: int, buf: memoryview) -> None:
    got = 0
    while got < n:
        k = s.recv_into(buf[got:n])
        if not k:
            raise RuntimeError("peer closed early")
        got += k


def _finish(s: Any, env: Any) -> None:
    s.close()
    if env is not None:
        host, dev = env
        host.close()
        dev.close()


def server_main(transport: str, dev_path: str | None, dmb: int, mode: str, arg: int,
                pipe: Any, profile: bool) -> None:
    sys.setswitchinterval(SWITCH_INTERVAL)
    lst, addr, env = _make_server(transport, dev_path, dmb)
    pipe.send(addr)
    s = _accept(transport, lst)
    prof = None
    if profile:
        import cProfile

        prof = cProfile.Profile()
        prof.enable()
    cpu0 = time.process_time()
    buf = memoryview(bytearray(max(arg, 1 << 20)))
    if mode == "bw":
        total = struct.unpack("!Q", _recv_bytes(s, 8))[0]
        got = 0
        while got < total:
            k = s.recv_into(buf)
            if not k:
                raise RuntimeError("peer closed early")
            got += k
        s.sendall(b"!")
    else:  # ping-pong
        rounds = struct.unpack("!Q", _recv_bytes(s, 8))[0]
        msg = buf[:arg]
        for _ in range(rounds):
            _recv_exact(s, arg, msg)
            s.sendall(msg)
    cpu = time.process_time() - cpu0
    if prof is not None:
        prof.disable()
        pipe.send(("profile", _profile_text(prof)))
    pipe.send(("cpu", cpu))
    _finish(s, env)
    if transport == "tcp":
        lst.close()


def _recv_bytes(s: Any, n: int) -> bytes:
    out = bytearray(n)
    _recv_exact(s, n, memoryview(out))
    return bytes(out)


def client_main(transport: str, addr: Any, dev_path: str | None, dmb: int, mode: str,
                arg: int, seconds: float, rounds: int, pipe: Any, profile: bool) -> None:
    sys.setswitchinterval(SWITCH_INTERVAL)
    s, env = _connect(transport, addr, dev_path, dmb)
    prof = None
    if profile:
        import cProfile

        prof = cProfile.Profile()
        prof.enable()
    cpu0 = time.process_time()
    if mode == "bw":
        size = arg
        payload = memoryview(bytearray(os.urandom(min(size, 4096)) * (size // 4096 + 1))[:size])
        n = messages_for(size, seconds)
        total = n * size
        t0 = time.perf_counter()
        s.sendall(struct.pack("!Q", total))
        for _ in range(n):
            s.sendall(payload)
        if s.recv(1) != b"!":
            raise RuntimeError("no acknowledgement")
        wall = time.perf_counter() - t0
        pipe.send(("bw", total, wall, time.process_time() - cpu0))
    else:
        msg = memoryview(bytearray(arg))
        s.sendall(struct.pack("!Q", rounds))
        rtts = []
        for _ in range(rounds):
            t0 = time.perf_counter()
            s.sendall(msg)
            _recv_exact(s, arg, msg)
            rtts.append(time.perf_counter() - t0)
        pipe.send(("lat", rtts, time.process_time() - cpu0))
    if prof is not None:
        prof.disable()
        pipe.send(("profile", _profile_text(prof)))
    _finish(s, env)


def _profile_text(prof: Any, top: int = 14) -> str:
    import io
    import pstats

    out = io.StringIO()
    pstats.Stats(prof, stream=out).sort_stats("tottime").print_stats(top)
    return out.getvalue()


# ------------------------------------------------------------------ driver

def _run(transport: str, mode: str, arg: int, dmb: int, seconds: float, rounds: int,
         profile: bool = False, timeout: float = 300.0) -> dict[str, Any]:
    """One measurement: fresh server and client processes (and device), results from both."""
    from smcd_check.model.shm.device import ShmLoopbackIsm

    ctx = mp.get_context("spawn")
    dev = None
    dev_path = None
    if transport != "tcp":
        dev = ShmLoopbackIsm.create(nocopy=transport == "shm-merged")
        dev_path = dev.path
    sp, sc = ctx.Pipe()
    cp, cc = ctx.Pipe()
    srv = ctx.Process(target=server_main, args=(transport, dev_path, dmb, mode, arg, sc,
                                                profile))
    srv.start()
    try:
        if not sp.poll(timeout):
            raise RuntimeError(f"{transport} server did not start")
        addr = sp.recv()
        cli = ctx.Process(target=client_main, args=(transport, addr, dev_path, dmb, mode, arg,
                                                    seconds, rounds, cc, profile))
        cli.start()
        out: dict[str, Any] = {"profiles": []}
        want = 2 if profile else 1
        while want:
            if not cp.poll(timeout):
                raise RuntimeError(f"{transport} {mode} {arg}: client timed out")
            msg = cp.recv()
            want -= 1
            if msg[0] == "profile":
                out["profiles"].append(("client", msg[1]))
            elif msg[0] == "bw":
                out.update(bytes=msg[1], wall=msg[2], client_cpu=msg[3])
            else:
                out.update(rtts=msg[1], client_cpu=msg[2])
        while True:
            if not sp.poll(timeout):
                raise RuntimeError(f"{transport} server did not report")
            msg = sp.recv()
            if msg[0] == "profile":
                out["profiles"].append(("server", msg[1]))
                continue
            out["server_cpu"] = msg[1]
            break
        cli.join(timeout)
        srv.join(timeout)
        return out
    finally:
        for p in (srv,):
            if p.is_alive():
                p.kill()
        if dev is not None:
            dev.close(remove=True)


def memcpy_bandwidth(size: int = 1 << 20, seconds: float = 0.5) -> float:
    """Bytes per second of one memoryview slice copy of ``size`` bytes, in this process."""
    src = memoryview(bytearray(os.urandom(size)))
    dst = memoryview(bytearray(size))
    n = 0
    t0 = time.perf_counter()
    while True:
        for _ in range(16):
            dst[:] = src
        n += 16
        dt = time.perf_counter() - t0
        if dt >= seconds:
            return n * size / dt


def _torn_writer(path: str, how: str, stop_after: float) -> None:
    import mmap

    with open(path, "r+b") as f:
        m = mmap.mmap(f.fileno(), 4096)
    q = memoryview(m).cast("Q")
    a, b = 0x0000_0000_0000_0000, 0xFFFF_FFFF_FFFF_FFFF
    end = time.perf_counter() + stop_after
    i = 0
    while time.perf_counter() < end:
        for _ in range(1000):
            v = a if i & 1 else b
            if how == "item":
                q[1] = v
            else:
                struct.pack_into("<Q", m, 8, v)
            i += 1


def torn_check(seconds: float = 1.5) -> dict[str, int]:
    """Count torn reads of a word another process keeps rewriting (item stores vs pack_into)."""
    import mmap
    import tempfile

    out = {}
    for how in ("item", "pack_into"):
        fd, path = tempfile.mkstemp(dir="/dev/shm" if os.path.isdir("/dev/shm") else None)
        os.ftruncate(fd, 4096)
        m = mmap.mmap(fd, 4096)
        q = memoryview(m).cast("Q")
        w = mp.get_context("spawn").Process(target=_torn_writer, args=(path, how, seconds))
        w.start()
        torn = reads = 0
        ok = (0, 0xFFFF_FFFF_FFFF_FFFF)
        end = time.perf_counter() + seconds
        while time.perf_counter() < end:
            for _ in range(1000):
                if q[1] not in ok:
                    torn += 1
            reads += 1000
        w.join()
        q.release()
        m.close()
        os.close(fd)
        os.unlink(path)
        out[how] = torn
        out[how + "_reads"] = reads
    return out


def plot(results: dict[str, Any], out_dir: Path) -> list[str]:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return []
    out_dir.mkdir(parents=True, exist_ok=True)
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(11, 4.2),
                                   gridspec_kw={"width_ratios": [2.2, 1]})
    sizes = results["sizes"]
    for t in results["transports"]:
        ys = [results["bw"][t][str(sz)]["MBps"] for sz in sizes]
        ax1.plot(sizes, ys, marker="o", label=t)
    ax1.axhline(results["memcpy_MBps"], color="grey", linestyle="--",
                label="memcpy (1 MiB, one process)")
    ax1.set_xscale("log", base=2)
    ax1.set_yscale("log")
    ax1.set_xlabel("message size (bytes)")
    ax1.set_ylabel("bandwidth (MB/s)")
    ax1.set_title("bandwidth, client and server processes")
    ax1.legend(fontsize=8)
    ax1.grid(True, which="both", alpha=0.3)
    names = results["transports"]
    med = [results["lat"][t]["one_way_median_us"] for t in names]
    p99 = [results["lat"][t]["one_way_p99_us"] for t in names]
    xs = range(len(names))
    ax2.bar([x - 0.2 for x in xs], med, width=0.4, label="median")
    ax2.bar([x + 0.2 for x in xs], p99, width=0.4, label="p99")
    ax2.set_xticks(list(xs), names, fontsize=8)
    ax2.set_ylabel("one-way latency (us), 64 B ping-pong")
    ax2.set_title("latency")
    ax2.legend(fontsize=8)
    fig.suptitle(results["machine"], fontsize=8)
    fig.tight_layout()
    files = []
    for ext in ("png", "svg"):
        f = out_dir / f"shm_vs_tcp.{ext}"
        fig.savefig(f, dpi=110)
        files.append(str(f))
    return files


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--sizes", default=DEFAULT_SIZES)
    ap.add_argument("--seconds", type=float, default=0.6, help="per bandwidth point")
    ap.add_argument("--dmb-size", type=parse_size, default=256 << 10)
    ap.add_argument("--transports", default="tcp,shm-copy,shm-merged")
    ap.add_argument("--rounds", type=int, default=3000, help="ping-pongs per latency point")
    ap.add_argument("--out-dir", default="bench/out")
    ap.add_argument("--profile", action="store_true")
    ap.add_argument("--torn", action="store_true")
    ap.add_argument("--json", action="store_true")
    a = ap.parse_args(argv)
    try:
        sizes = [parse_size(x) for x in a.sizes.split(",")]
    except argparse.ArgumentTypeError as exc:
        print(f"shm_vs_tcp: error: {exc}", file=sys.stderr)
        return 2
    transports = [t.strip() for t in a.transports.split(",")]
    bad = [t for t in transports if t not in ("tcp", "shm-copy", "shm-merged")]
    if bad or a.dmb_size not in tuple(16384 << k for k in range(7)):
        print(f"shm_vs_tcp: error: bad transport(s) {bad} or --dmb-size {a.dmb_size} "
              "(16K..1M powers of two)", file=sys.stderr)
        return 2
    machine = (f"{platform.machine()}, {os.cpu_count()} CPUs "
               f"({_cpu_model()}), Linux {platform.release()}, Python "
               f"{platform.python_version()}; shared machine")
    res: dict[str, Any] = {"machine": machine, "sizes": sizes, "transports": transports,
                           "dmb_size": a.dmb_size, "bw": {}, "lat": {}}
    try:
        res["memcpy_MBps"] = memcpy_bandwidth() / 1e6
        for t in transports:
            res["bw"][t] = {}
            for sz in sizes:
                r = _run(t, "bw", sz, a.dmb_size, a.seconds, a.rounds)
                res["bw"][t][str(sz)] = {
                    "MBps": r["bytes"] / r["wall"] / 1e6, "bytes": r["bytes"],
                    "wall": r["wall"], "cpu": r["client_cpu"] + r["server_cpu"]}
                print(f"  {t:<10} {human(sz):>5}: {r['bytes'] / r['wall'] / 1e6:9.1f} MB/s",
                      file=sys.stderr)
            r = _run(t, "lat", 64, a.dmb_size, a.seconds, a.rounds)
            rtts = sorted(r["rtts"])
            res["lat"][t] = {
                "one_way_median_us": statistics.median(rtts) / 2 * 1e6,
                "one_way_p99_us": rtts[int(len(rtts) * 0.99)] / 2 * 1e6,
                "one_way_mean_us": statistics.fmean(rtts) / 2 * 1e6}
            print(f"  {t:<10} latency: {res['lat'][t]['one_way_median_us']:.1f} us",
                  file=sys.stderr)
        if a.profile and "shm-merged" in transports:
            r = _run("shm-merged", "bw", 64 << 10, a.dmb_size, a.seconds, a.rounds,
                     profile=True)
            res["profile"] = r["profiles"]
        if a.torn:
            res["torn"] = torn_check()
    except KeyboardInterrupt:
        print("shm_vs_tcp: interrupted; partial results follow", file=sys.stderr)
        _print(res)
        return 130
    res["plots"] = plot(res, Path(a.out_dir)) if res["bw"] else []
    if a.json:
        print(json.dumps(res, indent=1, default=str))
    else:
        _print(res)
    return 0


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"


def _print(res: dict[str, Any]) -> None:
    print(f"machine: {res['machine']}")
    print(f"DMB {human(res['dmb_size'])} (copy mode sndbuf the same); bandwidth MB/s (wall), "
          "client and server in separate processes")
    ts = [t for t in res["transports"] if t in res["bw"]]
    print(f"{'size':>6} " + " ".join(f"{t:>11}" for t in ts)
          + ("   merged/tcp" if {"tcp", "shm-merged"} <= set(ts) else ""))
    for sz in res["sizes"]:
        row = [res["bw"][t].get(str(sz), {}).get("MBps") for t in ts]
        if all(v is None for v in row):
            continue
        line = f"{human(sz):>6} " + " ".join(f"{v:11.1f}" if v else f"{'-':>11}" for v in row)
        if {"tcp", "shm-merged"} <= set(ts):
            m = res["bw"]["shm-merged"].get(str(sz), {}).get("MBps")
            tcp = res["bw"]["tcp"].get(str(sz), {}).get("MBps")
            if m and tcp:
                line += f"   {100 * (m / tcp - 1):+9.0f}%"
        print(line)
    if "memcpy_MBps" in res:
        print(f"memcpy (1 MiB, one process): {res['memcpy_MBps']:.0f} MB/s")
        if "shm-merged" in res["bw"] and res["bw"]["shm-merged"]:
            best = max(v["MBps"] for v in res["bw"]["shm-merged"].values())
            print(f"merged mode best: {best:.0f} MB/s = {100 * best / res['memcpy_MBps']:.0f}% "
                  "of memcpy (it copies every byte twice: into the DMB, and out of it)")
    if res.get("lat"):
        print("latency, 64 B ping-pong, one way (half the round trip), us:")
        for t, v in res["lat"].items():
            print(f"  {t:<10} median {v['one_way_median_us']:7.1f}  p99 "
                  f"{v['one_way_p99_us']:7.1f}  mean {v['one_way_mean_us']:7.1f}")
        if "tcp" in res["lat"] and "shm-merged" in res["lat"]:
            d = res["lat"]["shm-merged"]["one_way_median_us"] / \
                res["lat"]["tcp"]["one_way_median_us"] - 1
            print(f"  merged vs tcp: {100 * d:+.0f}% (the patch set: -44%)")
    for who, text in res.get("profile", []):
        print(f"\nprofile, shm-merged 64 KiB, {who} (top by own time):")
        print("\n".join(line for line in text.splitlines()[:30] if line.strip()))
    if "torn" in res:
        tr = res["torn"]
        print(f"torn 8-byte reads: memoryview item stores {tr['item']} of {tr['item_reads']:,}; "
              f"struct.pack_into('<Q') {tr['pack_into']} of {tr['pack_into_reads']:,}")
    if res.get("plots"):
        print("plots: " + ", ".join(res["plots"]))
    else:
        print("plots: none (matplotlib not installed: pip install -e '.[bench]')")


if __name__ == "__main__":
    sys.exit(main())
