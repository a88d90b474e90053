"""Fuzz benchmark of the CLC decoder: many random and mutated inputs, one error type allowed.

    python bench/fuzz_decode.py [--count N] [--seed S]

Feeds N inputs (default 1,000,000) to ``smcd_check.spec.clc.decode``: random byte strings of
random length, random bodies behind a plausible header, and mutations of the golden vectors
(real Linux 6.12.118 captures and hand-built kernel layouts from tests/spec/clc_vectors.py):
byte flips, length-field tweaks, offset/count tweaks, truncations and extensions. Every input
must either decode, and then re-encode to exactly the same bytes, or raise ``ClcError``.
Anything else (another exception, or a round trip that differs) is "unexpected".

Prints inputs/s (per wall second and per CPU second), wall and CPU time, peak memory (max
RSS), decoded vs ClcError counts per input kind, and the unexpected count; exits 1 (printing
the first offending inputs as hex) if there is any.
Ctrl-C stops early and prints the figures so far (exit 130).
"""

from __future__ import annotations

import argparse
import random
import resource
import struct
import sys
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests" / "spec"))

from clc_vectors import ALL

from smcd_check.spec.clc import (
    EYECATCHER_SMCD,
    EYECATCHER_SMCR,
    ClcError,
    decode,
    encode,
)

#: byte offsets where lengths, offsets and counts live (header, Proposal pointers and counts)
HOT_OFFSETS = (5, 6, 7, 25, 38, 39, 47, 50, 51, 80, 81, 83, 86, 87, 88, 89, 94, 95)
#: values near the kernel's bounds (counts 8/9, offsets 28/40/64/172, all ones)
INTERESTING = (0, 1, 8, 9, 0x1C, 0x28, 0x29, 0x40, 0xAC, 0xAD, 0xFF)


def make_generators(rng: random.Random) -> dict[str, Callable[[], bytes]]:
    vectors = list(ALL)

    def random_bytes() -> bytes:
        return rng.randbytes(rng.choice((rng.randrange(0, 16), rng.randrange(0, 700))))

    def plausible_header() -> bytes:
        body = rng.randbytes(rng.randrange(0, 660))
        eye = rng.choice((EYECATCHER_SMCR, EYECATCHER_SMCD))
        return (eye + bytes([rng.randrange(1, 5)]) + struct.pack(">H", 8 + len(body))
                + bytes([rng.randrange(256)]) + body)

    def flip_bytes() -> bytes:
        out = bytearray(rng.choice(vectors))
        for _ in range(rng.randrange(1, 5)):
            out[rng.randrange(len(out))] = rng.randrange(256)
        return bytes(out)

    def hot_fields() -> bytes:
        out = bytearray(rng.choice(vectors))
        for _ in range(rng.randrange(1, 3)):
            pos = rng.choice(HOT_OFFSETS)
            if pos < len(out):
                out[pos] = rng.choice((*INTERESTING, rng.randrange(256)))
        return bytes(out)

    def length_field() -> bytes:
        out = bytearray(rng.choice(vectors))
        length = len(out)
        new = rng.choice((0, 8, length - 1, length + 1, length + rng.randrange(-40, 41),
                          rng.randrange(0x10000)))
        out[5:7] = struct.pack(">H", new & 0xFFFF)
        return bytes(out)

    def truncate_or_extend() -> bytes:
        v = rng.choice(vectors)
        if rng.random() < 0.5:
            return v[: rng.randrange(len(v))]
        extra = rng.randbytes(rng.randrange(1, 64))
        if rng.random() < 0.5:  # keep it consistent: extend and fix the length field
            out = bytearray(v[:-4] + extra + v[-4:])
            out[5:7] = struct.pack(">H", len(out))
            return bytes(out)
        return v + extra

    return {
        "random bytes": random_bytes,
        "random body, plausible header": plausible_header,
        "golden, bytes flipped": flip_bytes,
        "golden, length/offset/count fields": hot_fields,
        "golden, length field": length_field,
        "golden, truncated/extended": truncate_or_extend,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=1_000_000, help="inputs (default 1e6)")
    parser.add_argument("--seed", type=int, default=2, help="random seed (default 2)")
    args = parser.parse_args(argv)
    rng = random.Random(args.seed)
    gens = make_generators(rng)
    kinds = list(gens)
    weights = [15, 15, 30, 15, 10, 15]
    decoded: Counter[str] = Counter()
    rejected: Counter[str] = Counter()
    errors: Counter[str] = Counter()  # ClcError subclass names
    unexpected: list[tuple[str, bytes, str]] = []
    n_unexpected = 0
    done = 0
    start = time.perf_counter()
    cpu_start = time.process_time()
    interrupted = False
    try:
        for kind in rng.choices(kinds, weights, k=args.count):
            data = gens[kind]()
            try:
                msg = decode(data)
            except ClcError as err:
                rejected[kind] += 1
                errors[type(err).__name__] += 1
            except Exception as exc:  # the contract says: never
                n_unexpected += 1
                if len(unexpected) < 5:
                    unexpected.append((kind, data, f"{type(exc).__name__}: {exc}"))
            else:
                decoded[kind] += 1
                if encode(msg) != data:
                    n_unexpected += 1
                    if len(unexpected) < 5:
                        unexpected.append((kind, data, "round trip differs"))
            done += 1
            if done % 100_000 == 0:
                rate = done / (time.perf_counter() - start)
                print(f"  {done:>9,} inputs, {rate:,.0f}/s, unexpected {n_unexpected}",
                      file=sys.stderr, flush=True)
    except KeyboardInterrupt:
        interrupted = True
    wall = time.perf_counter() - start
    cpu = time.process_time() - cpu_start
    peak_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    print(f"fuzz_decode: {done:,} inputs{' (interrupted)' if interrupted else ''}, seed "
          f"{args.seed}")
    print(f"  wall time        {wall:.1f} s")
    print(f"  CPU time         {cpu:.1f} s (the machine may be shared: wall/CPU "
          f"{wall / cpu if cpu else 0:.1f})")
    print(f"  rate             {done / wall if wall else 0:,.0f} inputs/s wall, "
          f"{done / cpu if cpu else 0:,.0f} inputs/s CPU")
    print(f"  peak memory      {peak_kib / 1024:.1f} MiB (max RSS)")
    print(f"  decoded          {sum(decoded.values()):,}")
    print(f"  ClcError         {sum(rejected.values()):,}  "
          + ", ".join(f"{k} {v:,}" for k, v in errors.most_common()))
    print(f"  unexpected       {n_unexpected}")
    for kind in kinds:
        print(f"    {kind:<36} decoded {decoded[kind]:>9,}  ClcError {rejected[kind]:>9,}")
    for kind, data, what in unexpected:
        print(f"  UNEXPECTED ({kind}): {what}\n    {data.hex()}")
    if interrupted:
        return 130
    return 1 if n_unexpected else 0


if __name__ == "__main__":
    sys.exit(main())
