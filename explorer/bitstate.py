"""Bitstate hashing (Spin's supertrace): the visited set as a bit array, with a stated risk.

Theory of operation
-------------------
A state is *marked* by setting ``k`` bits of a table of ``2**bits`` bits, at positions drawn
from its packed int by ``k`` hash functions (double hashing of two multiplicative hashes); it
counts as visited when all its ``k`` bits are set. Two distinct states can set the same bits, so
a new state may be taken for an old one and left out, together with what only it leads to: the
search is **not exhaustive** (a violation it reports is real and replays; "no violation" means
"none in the states it reached"). What it buys is memory: the table costs ``2**bits / 8`` bytes
whatever the state count, and the search keeps only the current BFS level's states plus, per
state, its parent's index (4 bytes) and the index of the step that reached it (2 bytes), from
which a counterexample is re-run (:func:`replay_chain`).

The risk is reported as Spin does (Holzmann, "An analysis of bitstate hashing", 1998): with a
fraction ``f`` of the table's bits set, a state not yet seen is taken for a visited one with
probability ``f**k`` (the *probability of omission* of the next state); the expected number of
states omitted during the run is the sum of that probability over the insertions,
``sum_i (1 - exp(-k i / m))**k`` for ``m`` bits (:func:`expected_omissions`, which does not
count the states reachable only through omitted ones).

The engine fixes the codec's field widths for the whole run (:data:`FIELD_BITS` per component)
in this mode: a relayout re-encodes states, which would move their bits, and the states of
earlier levels are no longer there to be re-marked.
"""

from __future__ import annotations

import math
from array import array
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

#: the widest table the CLI accepts (2**40 bits = 128 GiB) and the narrowest
MAX_BITS = 40
MIN_BITS = 10
#: the default number of hash functions (Spin's ``-k`` default is 3)
DEFAULT_HASHES = 3
#: bits per component field in bitstate mode: 2**22 values per component before the fixed
#: layout is a quarter full (the search then stops with an error)
FIELD_BITS = 24

_M1 = 0x9E3779B97F4A7C15
_M2 = 0xC2B2AE3D27D4EB4F
_MASK64 = (1 << 64) - 1


class BitstateError(Exception):
    """A bitstate run that cannot go on (a component outgrew the fixed layout)."""


class BitTable:
    """The visited "set" of bitstate mode: ``2**bits`` bits, ``hashes`` bits per state.

    Only :meth:`add_new` is used by the search (test and set in one call); ``in`` and ``len``
    (the insertions) serve tests and reports.
    """

    __slots__ = ("bits", "hashes", "inserted", "mask", "rounds", "shift", "table")

    def __init__(self, bits: int, hashes: int = DEFAULT_HASHES) -> None:
        if not MIN_BITS <= bits <= MAX_BITS:
            raise ValueError(
                f"bitstate table of 2**{bits} bits: BITS must be {MIN_BITS}..{MAX_BITS}"
            )
        if not 1 <= hashes <= 16:
            raise ValueError(f"{hashes} hash functions: must be 1..16")
        self.bits = bits
        self.hashes = hashes
        self.table = bytearray(1 << (bits - 3))
        self.shift = 64 - bits
        self.mask = (1 << bits) - 1
        self.rounds = range(hashes)
        self.inserted = 0

    def _positions(self, x: int) -> list[int]:
        h = hash(x)
        a = ((h * _M1) & _MASK64) >> self.shift
        b = (((h ^ (h >> 29)) * _M2) & _MASK64) >> self.shift | 1
        m = (1 << self.bits) - 1
        return [(a + i * b) & m for i in range(self.hashes)]

    def add_new(self, x: int) -> bool:
        """Mark ``x``; True when it was not marked before (some of its bits were clear)."""
        # the positions of _positions, stepped in place (this runs once per transition)
        h = hash(x)
        shift = self.shift
        a = ((h * _M1) & _MASK64) >> shift
        b = (((h ^ (h >> 29)) * _M2) & _MASK64) >> shift | 1
        m = self.mask
        t = self.table
        new = False
        for _ in self.rounds:
            byte = a >> 3
            v = t[byte]
            bit = 1 << (a & 7)
            if not v & bit:
                t[byte] = v | bit
                new = True
            a = (a + b) & m
        if new:
            self.inserted += 1
        return new

    def __contains__(self, x: object) -> bool:
        if not isinstance(x, int):
            return False
        t = self.table
        return all(t[p >> 3] & (1 << (p & 7)) for p in self._positions(x))

    def __len__(self) -> int:
        return self.inserted

    @property
    def nbytes(self) -> int:
        return len(self.table)

    def fill(self) -> float:
        """The fraction of the table's bits that are set."""
        return int.from_bytes(self.table, "little").bit_count() / (8 * len(self.table))


def expected_omissions(n: int, bits: int, hashes: int, steps: int = 2000) -> float:
    """Expected states taken for visited ones while ``n`` states were inserted into ``2**bits``
    bits with ``hashes`` hash functions: ``sum_{i<n} (1 - exp(-k i / m))**k`` (midpoint sums
    over ``steps`` slices)."""
    if n <= 0:
        return 0.0
    m = float(1 << bits)
    k = hashes
    width = n / steps
    total = 0.0
    for j in range(steps):
        i = (j + 0.5) * width
        total += (1.0 - math.exp(-k * i / m)) ** k
    return total * width


@dataclass(frozen=True, slots=True)
class BitstateReport:
    """What a bitstate run says about its own coverage."""

    bits: int
    hashes: int
    table_bytes: int
    states: int
    #: fraction of the table's bits set at the end
    fill: float
    #: probability that a state new at the end was taken for a visited one (``fill**k``)
    omission_probability: float
    #: expected number of states omitted during the run (their successors not counted)
    expected_omitted: float

    def lines(self) -> list[str]:
        return [
            f"bitstate: 2^{self.bits} bits ({_size(self.table_bytes)}), {self.hashes} hash "
            f"functions, {self.fill:.2%} of the bits set; NOT EXHAUSTIVE: states whose bits "
            "were all set already were skipped",
            f"bitstate: probability of omission {self.omission_probability:.3g} per state at "
            f"the end; expected states missed about {self.expected_omitted:,.1f} "
            f"(of {self.states:,} stored; their successors not counted)",
        ]


def report(table: BitTable, states: int) -> BitstateReport:
    f = table.fill()
    return BitstateReport(
        bits=table.bits,
        hashes=table.hashes,
        table_bytes=table.nbytes,
        states=states,
        fill=f,
        omission_probability=f**table.hashes,
        expected_omitted=expected_omissions(states, table.bits, table.hashes),
    )


def _size(n: int) -> str:
    """A byte count in B, KiB, MiB or GiB (tables are powers of two)."""
    for unit in ("B", "KiB", "MiB"):
        if n < 1024:
            return f"{n:,} {unit}"
        n //= 1024
    return f"{n:,} GiB"


def replay_chain(
    model: Any,
    init: list[Any],
    chain: list[int],
    succ: array,  # type: ignore[type-arg]
    encode: Callable[[Any], int],
    decode: Callable[[int], Any],
    successors: Callable[[Any], Iterable[tuple[Any, Any]]],
) -> list[int]:
    """The packed states along ``chain`` (state indices from an initial one), re-run from the
    initial state with, per step, the index of the successor taken (``succ[j]`` for state
    ``j``) in the model's deterministic order."""
    out = [init[chain[0]]]
    for j in chain[1:]:
        st = decode(out[-1])
        nth = succ[j]
        for n, (_a, t) in enumerate(successors(st)):
            if n == nth:
                out.append(encode(t))
                break
        else:  # the model is not deterministic
            raise RuntimeError(
                f"cannot re-run a step of model {model.name}: successor {nth} of a state on the "
                "path no longer exists (actions/next_state must be deterministic)"
            )
    return out
