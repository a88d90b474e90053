"""Theorems about the cursor functions and the data-path step relation, proved with z3.

Theory of operation
-------------------
This is the only spec module that imports z3. It re-states the four kernel cursor functions of
:mod:`~smcd_check.spec.cursor` as z3 bit-vector terms of the kernel's widths (u16 ``wrap``, u32
``count``, ``unsigned int size``, results as 32-bit ``int``), with the same C semantics: u32
wrap-around of sums, ``(int)`` conversion inside ``max_t``/``min_t``, u16 wrap overflow. A
drift test (tests/spec/test_proofs.py) evaluates these terms and the Python functions on many
random concrete inputs and requires equal results, so a theorem proved here is a theorem about
the Python spec, and the Python spec is a transcription of net/smc/smc_cdc.h.

Each :class:`Theorem` has a name, a statement in words, an expectation (:class:`Expect`) and a
list of z3 obligations. A theorem quantifies over **all** cursor values (every wrap 0..0xffff and
every count below the ring size) and every valid SMC-D data-ring size
(:data:`~smcd_check.spec.cursor.SMCD_DATA_RING_SIZES`, 16352 .. 1048544), encoded as one
symbolic ``size`` constrained to those seven values (products ``k * size`` are expanded into
constant multiplications, which keeps the problems linear). Some theorems are also stated for
*any* ring length ``1 <= size < 2**31`` (suffix ``[any size]``), to say what holds beyond the DMB
sizes.

* ``Expect.HOLDS``: proved outright; a counterexample is a finding (``prove`` exits 1).
* ``Expect.NEEDS_PRECONDITION``: the unconditional property is expected to *fail*; ``prove``
  prints the concrete counterexample z3 finds (a result: it shows where the kernel function is
  blind), then proves the property under the named precondition (a counterexample there is a
  finding).

The data-path theorems encode the cursor/space part of :mod:`~smcd_check.spec.datapath`
symbolically: a state is any assignment of the cursors, counters and (capacity-1) channel
contents, the invariants are the symbolic versions of the named data-path invariants, and each
action's guard and effect use the same z3 cursor terms. The obligation "invariants and guard
imply invariants after the step" is checked for every action from **any** state satisfying the
invariants (inductive), not only from reachable ones. The window-update decision is
over-approximated (the reader may send an update whenever its channel is free), which only adds
behaviours, so the proof covers the kernel's rule.

Not proved here: the abstract ring contents (tags), close/abort flags and faults -- the
explorer checks those on small configurations.
"""

from __future__ import annotations

import enum
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeAlias

import z3

from smcd_check.spec.cursor import SMC_SNDBUF_SIZES, SMCD_DATA_RING_SIZES

# z3's Python API is untyped for mypy: the aliases document intent (z3.BitVecRef, z3.BoolRef,
# z3.ArithRef) without pretending to check it.
BV: TypeAlias = Any
BoolT: TypeAlias = Any
#: a cursor as z3 terms: (wrap, count)
ZCursor: TypeAlias = tuple[BV, BV]
#: multiply a 32-bit term by the ring size (expanded for the finite DMB size domain)
MulSize: TypeAlias = Callable[[BV], BV]

WRAP_BITS = 16


# --------------------------------------------------------------------------------------------
# The kernel cursor functions as z3 terms (C semantics)
# --------------------------------------------------------------------------------------------


def _smax0(x: BV) -> BV:
    """``max_t(int, 0, x)`` for a 32-bit value read as int."""
    return z3.If(x < 0, z3.BitVecVal(0, 32), x)


def z_add(size: BV, c: ZCursor, value: BV, *, wrap_bits: int = WRAP_BITS) -> ZCursor:
    """``smc_curs_add``: ``count += value`` (u32); if ``count >= size`` (unsigned): ``wrap++``
    (modulo 2**wrap_bits) and ``count -= size``."""
    wrap, count = c
    new = count + value
    over = z3.UGE(new, size)
    one = z3.BitVecVal(1, wrap_bits)
    return z3.If(over, wrap + one, wrap), z3.If(over, new - size, new)


def z_diff(size: BV, old: ZCursor, new: ZCursor) -> BV:
    """``smc_curs_diff``: one lap for any wrap difference; ``max_t(int, 0, ..)``."""
    return z3.If(
        old[0] != new[0],
        _smax0(size - old[1] + new[1]),
        _smax0(new[1] - old[1]),
    )


def z_comp(size: BV, old: ZCursor, new: ZCursor) -> BV:
    """``smc_curs_comp``: ``-diff(new, old)`` if old is after new (unsigned wrap compare)."""
    after = z3.Or(z3.UGT(old[0], new[0]), z3.And(old[0] == new[0], z3.UGT(old[1], new[1])))
    return z3.If(after, -z_diff(size, new, old), z_diff(size, old, new))


def z_diff_large(
    size: BV,
    old: ZCursor,
    new: ZCursor,
    *,
    wrap_bits: int = WRAP_BITS,
    mul_size: MulSize | None = None,
) -> BV:
    """``smc_curs_diff_large``: laps times size in u32, ``min_t(int, .., size)``."""
    ext = 32 - wrap_bits
    ow, nw = z3.ZeroExt(ext, old[0]), z3.ZeroExt(ext, new[0])
    mul = mul_size if mul_size is not None else (lambda k: k * size)
    wrap_max = z3.BitVecVal((1 << wrap_bits) - 1, 32)
    base = size - old[1] + new[1]
    fwd = base + mul(nw - ow - 1)
    back = base + mul(nw + wrap_max - ow)

    def smin(x: BV) -> BV:
        return z3.If(x < size, x, size)  # signed compare: min_t(int, x, size)

    return z3.If(
        z3.ULT(old[0], new[0]),
        smin(fwd),
        z3.If(z3.UGT(old[0], new[0]), smin(back), _smax0(new[1] - old[1])),
    )


# --------------------------------------------------------------------------------------------
# Domains: sizes, cursors, distances
# --------------------------------------------------------------------------------------------


@dataclass
class Domain:
    """A size domain: the constraint on ``size`` and how to multiply by it (linear if finite)."""

    name: str
    size: BV
    constraint: BoolT
    mul32: MulSize
    #: 64-bit multiply by size (for positions)
    mul64: MulSize


def _const_mul(k: BV, c: int) -> BV:
    """``k * c`` as a few shifted additions/subtractions (non-adjacent form of ``c``).

    z3 bit-blasts a product by a constant as one adder per set bit; the SMC-D sizes
    ``2**j * 16384 - 32`` have two non-zero NAF digits, so this keeps the problems small.
    """
    width = k.size()
    out: BV = z3.BitVecVal(0, width)
    shift = 0
    while c:
        if c & 1:
            digit = 2 - (c & 3)  # +1 or -1
            term = k << shift if shift else k
            out = out + term if digit == 1 else out - term
            c -= digit
        c >>= 1
        shift += 1
    return z3.simplify(out)


def dmb_domain(sizes: Sequence[int] = SMCD_DATA_RING_SIZES, name: str = "size") -> Domain:
    """``size`` is one of ``sizes`` (default: the seven SMC-D data-ring lengths)."""
    size = z3.BitVec(name, 32)

    def chain(k: BV, width: int) -> BV:
        s64 = z3.ZeroExt(width - 32, size) if width > 32 else size
        out: BV = _const_mul(k, sizes[-1])
        for s in reversed(sizes[:-1]):
            out = z3.If(s64 == s, _const_mul(k, s), out)
        return out

    return Domain(
        name=f"{name} in {{{', '.join(map(str, sizes))}}}",
        size=size,
        constraint=z3.Or([size == s for s in sizes]),
        mul32=lambda k: chain(k, 32),
        mul64=lambda k: chain(k, 64),
    )


def any_domain(name: str = "size") -> Domain:
    """``1 <= size < 2**31`` (any positive C int ring length)."""
    size = z3.BitVec(name, 32)
    return Domain(
        name="1 <= size < 2**31",
        size=size,
        constraint=z3.And(z3.UGE(size, 1), z3.ULT(size, 1 << 31)),
        mul32=lambda k: k * size,
        mul64=lambda k: k * z3.ZeroExt(32, size),
    )


def _cursor(name: str, wrap_bits: int = WRAP_BITS) -> ZCursor:
    return z3.BitVec(f"{name}.wrap", wrap_bits), z3.BitVec(f"{name}.count", 32)


def _in_ring(dom: Domain, c: ZCursor) -> BoolT:
    return z3.ULT(c[1], dom.size)


def z_distance(dom: Domain, old: ZCursor, new: ZCursor, wrap_bits: int = WRAP_BITS) -> BV:
    """Forward distance in bytes from ``old`` to ``new`` modulo the period (64-bit, exact).

    ``k = (new.wrap - old.wrap) mod 2**wrap_bits``; ``d = k*size + new.count - old.count``,
    plus one period if negative (valid cursors: ``d > -size``).
    """
    k = z3.ZeroExt(64 - wrap_bits, new[0] - old[0])
    d = dom.mul64(k) + z3.ZeroExt(32, new[1]) - z3.ZeroExt(32, old[1])
    period = dom.mul64(z3.BitVecVal(1 << wrap_bits, 64))
    return z3.If(d < 0, d + period, d)


#: width of short distances; FAR means "more than one ring length" (never a real short distance)
SHORT_BITS = 40
FAR = 1 << 36


def z_short_distance(size: BV, old: ZCursor, new: ZCursor) -> BV:
    """Forward distance from ``old`` to ``new`` when it is at most ``size``; else ``FAR``.

    For cursors inside the ring, a gap of at most one ring length means either the same lap
    (``new.count >= old.count``) or the next lap (``new.wrap == old.wrap + 1`` mod 2**16,
    ``new.count <= old.count``). This needs no multiplication, and agrees with the exact modular
    distance whenever that is at most ``size`` (the data-path invariants bound every gap by
    ``size``, so they can be stated with it).
    """
    ext = SHORT_BITS - 32
    oc, nc, s = z3.ZeroExt(ext, old[1]), z3.ZeroExt(ext, new[1]), z3.ZeroExt(ext, size)
    one = z3.BitVecVal(1, old[0].size())
    same = z3.And(old[0] == new[0], z3.UGE(new[1], old[1]))
    nxt = z3.And(new[0] == old[0] + one, z3.ULE(new[1], old[1]))
    far = z3.BitVecVal(FAR, SHORT_BITS)
    return z3.If(same, nc - oc, z3.If(nxt, s - oc + nc, far))


def _same(a: ZCursor, b: ZCursor) -> BoolT:
    """Two z3 cursors are equal (a plain ``==`` on the tuples would compare Python objects)."""
    return z3.And(a[0] == b[0], a[1] == b[1])


def _w64(x: BV) -> BV:
    return z3.SignExt(32, x)


# --------------------------------------------------------------------------------------------
# Theorems
# --------------------------------------------------------------------------------------------


class Expect(enum.Enum):
    """What a theorem is expected to do."""

    #: proved for every input of its domain
    HOLDS = "holds"
    #: fails without its precondition (counterexample reported), holds with it
    NEEDS_PRECONDITION = "needs precondition"


@dataclass(frozen=True)
class Obligation:
    """One z3 check: ``assumptions`` and ``precondition`` imply ``claim``.

    ``label`` names the case (e.g. the data-path action); ``show`` lists the terms whose values
    a counterexample prints.
    """

    label: str
    assumptions: BoolT
    claim: BoolT
    precondition: BoolT | None
    show: tuple[tuple[str, Any], ...]


@dataclass(frozen=True)
class Theorem:
    """A named claim with its statement, expectation and z3 obligations."""

    name: str
    statement: str
    expect: Expect
    build: Callable[[], list[Obligation]] = field(repr=False)
    #: name and wording of the precondition (NEEDS_PRECONDITION only)
    precondition: str = ""
    precondition_statement: str = ""


def _show_cursor(name: str, c: ZCursor) -> tuple[tuple[str, Any], ...]:
    return ((f"{name}.wrap", c[0]), (f"{name}.count", c[1]))


def _th_add_stays_in_ring(dom_f: Callable[[], Domain]) -> Callable[[], list[Obligation]]:
    def build() -> list[Obligation]:
        d = dom_f()
        c, v = _cursor("c"), z3.BitVec("v", 32)
        r = z_add(d.size, c, v)
        return [
            Obligation(
                label="",
                assumptions=z3.And(d.constraint, _in_ring(d, c), z3.ULE(v, d.size)),
                claim=_in_ring(d, r),
                precondition=None,
                show=(("size", d.size), *_show_cursor("c", c), ("v", v)),
            )
        ]

    return build


def _th_add_then_diff(dom_f: Callable[[], Domain], large: bool) -> Callable[[], list[Obligation]]:
    def build() -> list[Obligation]:
        d = dom_f()
        c, v = _cursor("c"), z3.BitVec("v", 32)
        r = z_add(d.size, c, v)
        got = z_diff_large(d.size, c, r, mul_size=d.mul32) if large else z_diff(d.size, c, r)
        return [
            Obligation(
                label="",
                assumptions=z3.And(d.constraint, _in_ring(d, c), z3.ULE(v, d.size)),
                claim=got == v,
                precondition=None,
                show=(("size", d.size), *_show_cursor("c", c), ("v", v), ("result", got)),
            )
        ]

    return build


def _th_comp_agrees(dom_f: Callable[[], Domain]) -> Callable[[], list[Obligation]]:
    def build() -> list[Obligation]:
        d = dom_f()
        c, v = _cursor("c"), z3.BitVec("v", 32)
        r = z_add(d.size, c, v)
        fwd, back = z_comp(d.size, c, r), z_comp(d.size, r, c)
        no_overflow = z3.Or(c[0] != 0xFFFF, z3.ULT(c[1] + v, d.size))
        return [
            Obligation(
                label="",
                assumptions=z3.And(d.constraint, _in_ring(d, c), z3.ULE(v, d.size)),
                claim=z3.And(fwd == v, back == -v),
                precondition=no_overflow,
                show=(
                    ("size", d.size),
                    *_show_cursor("c", c),
                    ("v", v),
                    *_show_cursor("add(c, v)", r),
                    ("comp(c, add(c,v))", fwd),
                    ("comp(add(c,v), c)", back),
                ),
            )
        ]

    return build


def _th_diff_is_distance() -> list[Obligation]:
    d = dmb_domain()
    o, n = _cursor("old"), _cursor("new")
    dist = z_distance(d, o, n)
    got = z_diff(d.size, o, n)
    return [
        Obligation(
            label="",
            assumptions=z3.And(d.constraint, _in_ring(d, o), _in_ring(d, n)),
            claim=_w64(got) == dist,
            precondition=z3.ULE(dist, z3.ZeroExt(32, d.size)),
            show=(
                ("size", d.size),
                *_show_cursor("old", o),
                *_show_cursor("new", n),
                ("true distance", dist),
                ("diff", got),
            ),
        )
    ]


def _th_diff_large_gap() -> list[Obligation]:
    d = dmb_domain()
    o, n = _cursor("old"), _cursor("new")
    dist = z_distance(d, o, n)
    got = z_diff_large(d.size, o, n, mul_size=d.mul32)
    size64 = z3.ZeroExt(32, d.size)
    period = d.mul64(z3.BitVecVal(1 << WRAP_BITS, 64))
    expected = z3.If(z3.ULE(dist, size64), dist, size64)
    pre = z3.And(
        z3.ULE(dist, period - size64), z3.ULT(dist, z3.BitVecVal((1 << 31) - 1, 64) - size64)
    )
    return [
        Obligation(
            label="",
            assumptions=z3.And(d.constraint, _in_ring(d, o), _in_ring(d, n)),
            claim=_w64(got) == expected,
            precondition=pre,
            show=(
                ("size", d.size),
                *_show_cursor("old", o),
                *_show_cursor("new", n),
                ("true distance", dist),
                ("diff_large", got),
            ),
        )
    ]


def _th_diff_large_above_size() -> list[Obligation]:
    """diff_large returns size (not less) when new is 1..N laps ahead of old, N bounded."""
    d = dmb_domain()
    o, n = _cursor("old"), _cursor("new")
    dist = z_distance(d, o, n)
    got = z_diff_large(d.size, o, n, mul_size=d.mul32)
    size64 = z3.ZeroExt(32, d.size)
    return [
        Obligation(
            label="",
            assumptions=z3.And(
                d.constraint,
                _in_ring(d, o),
                _in_ring(d, n),
                z3.UGT(dist, size64),
                z3.ULE(dist, d.mul64(z3.BitVecVal(64, 64))),
            ),
            claim=got == d.size,
            precondition=None,
            show=(
                ("size", d.size),
                *_show_cursor("old", o),
                *_show_cursor("new", n),
                ("diff_large", got),
            ),
        )
    ]


def _th_sender_free() -> list[Obligation]:
    """smc_tx_consumer_update's sender_free stays in [0, len] when prod is at most len ahead."""
    d = dmb_domain()
    cfed, prod = _cursor("rx_curs_confirmed"), _cursor("prod")
    dist = z_distance(d, cfed, prod)
    free = d.size - z_diff_large(d.size, cfed, prod, mul_size=d.mul32)
    return [
        Obligation(
            label="",
            assumptions=z3.And(
                d.constraint,
                _in_ring(d, cfed),
                _in_ring(d, prod),
                z3.ULE(dist, z3.ZeroExt(32, d.size)),
            ),
            claim=z3.And(free >= 0, free <= d.size, _w64(free) == z3.ZeroExt(32, d.size) - dist),
            precondition=None,
            show=(
                ("size", d.size),
                *_show_cursor("cfed", cfed),
                *_show_cursor("prod", prod),
                ("sender_free", free),
            ),
        )
    ]


# --------------------------------------------------------------------------------------------
# The same kernel functions over bounded integers (for the data-path step relation)
# --------------------------------------------------------------------------------------------
#
# Proving arithmetic identities (``space + distance == size`` before and after an add) is slow
# for bit-blasting SAT solvers, so the data-path theorems use z3 integers with the C wrap-around
# written out: every cursor field is constrained to its C range (wrap 0..0xffff, count
# 0..2**32-1), sums are brought back into u32 with ``_u32`` (exact for the argument ranges that
# occur, stated at each use) and u32 values are read as int with ``_s32``. The drift test checks
# these integer terms against the Python functions too, exactly as it does the bit-vector ones.

IntT: TypeAlias = Any
ICursor: TypeAlias = tuple[IntT, IntT]
_U32 = 1 << 32
_S32 = 1 << 31


def _u32(x: IntT) -> IntT:
    """``x mod 2**32`` for ``-2**32 <= x < 2**33`` (the ranges of the sums below)."""
    return z3.If(x < 0, x + _U32, z3.If(x >= _U32, x - _U32, x))


def _s32(x: IntT) -> IntT:
    """A u32 value read as C ``int``."""
    return z3.If(x >= _S32, x - _U32, x)


def _imax0(x: IntT) -> IntT:
    return z3.If(x < 0, 0, x)


def _wrap_inc(w: IntT, wrap_bits: int = WRAP_BITS) -> IntT:
    return z3.If(w == (1 << wrap_bits) - 1, 0, w + 1)


def i_add(size: IntT, c: ICursor, value: IntT, *, wrap_bits: int = WRAP_BITS) -> ICursor:
    """``smc_curs_add`` over integers (``value`` a C int, ``count`` a u32, ``size`` < 2**31)."""
    new = _u32(c[1] + value)
    over = new >= size
    return z3.If(over, _wrap_inc(c[0], wrap_bits), c[0]), z3.If(over, _u32(new - size), new)


def i_diff(size: IntT, old: ICursor, new: ICursor) -> IntT:
    """``smc_curs_diff`` over integers (``size``, counts u32)."""
    return z3.If(
        old[0] != new[0],
        _imax0(_s32(_u32(size - old[1] + new[1]))),
        _imax0(_s32(_u32(new[1] - old[1]))),
    )


def i_diff_large(
    size: IntT, sizes: Sequence[int], old: ICursor, new: ICursor, *, wrap_bits: int = WRAP_BITS
) -> IntT:
    """``smc_curs_diff_large`` over integers, ``size`` one of ``sizes`` (keeps it linear)."""

    def u32_mul_size(k: IntT) -> IntT:
        out: IntT = k * sizes[-1] % _U32
        for s in reversed(sizes[:-1]):
            out = z3.If(size == s, k * s % _U32, out)
        return out

    wrap_max = (1 << wrap_bits) - 1
    base = _u32(size - old[1] + new[1])
    fwd = _u32(base + u32_mul_size(new[0] - old[0] - 1))
    back = _u32(base + u32_mul_size(new[0] + wrap_max - old[0]))

    def smin(x: IntT) -> IntT:
        return z3.If(_s32(x) < size, _s32(x), size)

    return z3.If(
        old[0] < new[0],
        smin(fwd),
        z3.If(old[0] > new[0], smin(back), _imax0(_s32(_u32(new[1] - old[1])))),
    )


#: "more than one ring length" for :func:`i_short_distance`
I_FAR = 1 << 40


def i_short_distance(size: IntT, old: ICursor, new: ICursor, wrap_bits: int = WRAP_BITS) -> IntT:
    """Forward distance from ``old`` to ``new`` if at most ``size`` (same or next lap), else
    ``I_FAR``; agrees with the exact modular distance whenever that is at most ``size``."""
    same = z3.And(old[0] == new[0], new[1] >= old[1])
    nxt = z3.And(new[0] == _wrap_inc(old[0], wrap_bits), new[1] <= old[1])
    return z3.If(same, new[1] - old[1], z3.If(nxt, size - old[1] + new[1], I_FAR))


def _icursor(name: str) -> ICursor:
    return z3.Int(f"{name}.wrap"), z3.Int(f"{name}.count")


def _ityped(c: ICursor, size: IntT) -> BoolT:
    """C ranges of the fields, and count inside the ring."""
    return z3.And(c[0] >= 0, c[0] <= 0xFFFF, c[1] >= 0, c[1] < size)


def _isame(a: ICursor, b: ICursor) -> BoolT:
    return z3.And(a[0] == b[0], a[1] == b[1])


def _int_size(name: str, sizes: Sequence[int]) -> tuple[IntT, BoolT]:
    size = z3.Int(name)
    return size, z3.Or([size == s for s in sizes])


def _th_writer_space() -> list[Obligation]:
    """A move of min(to_send, peer_rmbe_space) bytes never puts prod more than len ahead of the
    consumer cursor the writer received (so it never passes the reader's consumer cursor)."""
    size, dom = _int_size("size", SMCD_DATA_RING_SIZES)
    cons, prod = _icursor("local_rx_ctrl.cons"), _icursor("prod")
    space, to_send = z3.Int("peer_rmbe_space"), z3.Int("to_send")
    length = z3.If(to_send < space, to_send, space)
    new_prod = i_add(size, prod, length)

    def dist(a: ICursor, b: ICursor) -> IntT:
        return i_short_distance(size, a, b)

    inv = z3.And(
        _ityped(cons, size),
        _ityped(prod, size),
        space >= 0,
        dist(cons, prod) <= size,
        space + dist(cons, prod) == size,
    )
    return [
        Obligation(
            label="",
            assumptions=z3.And(dom, inv, to_send > 0, to_send < _S32, space > 0),
            claim=z3.And(
                dist(cons, new_prod) <= size,
                _ityped(new_prod, size),
                space - length + dist(cons, new_prod) == size,
            ),
            precondition=None,
            show=(
                ("size", size),
                ("cons.wrap", cons[0]),
                ("cons.count", cons[1]),
                ("prod.wrap", prod[0]),
                ("prod.count", prod[1]),
                ("peer_rmbe_space", space),
                ("to_send", to_send),
            ),
        )
    ]


# ---- the data-path step relation, symbolically ----


@dataclass
class _Sym:
    """The cursor/space part of a DatapathState (capacity-1 channels), as z3 integer terms."""

    w_prod: ICursor
    w_rx_cons: ICursor
    peer_rmbe_space: IntT
    r_rx_prod: ICursor
    r_cons: ICursor
    cfed: ICursor
    bytes_to_rcv: IntT
    a2b_full: BoolT
    a2b_prod: ICursor
    b2a_full: BoolT
    b2a_cons: ICursor
    prep: ICursor
    sent: ICursor
    fin: ICursor
    sndbuf_space: IntT

    def items(self) -> Iterator[tuple[str, Any]]:
        for name, value in vars(self).items():
            if isinstance(value, tuple):
                yield f"{name}.wrap", value[0]
                yield f"{name}.count", value[1]
            else:
                yield name, value


def _sym(prefix: str) -> _Sym:
    def c(n: str) -> ICursor:
        return _icursor(prefix + n)

    return _Sym(
        w_prod=c("prod"),
        w_rx_cons=c("w_rx_cons"),
        peer_rmbe_space=z3.Int(prefix + "peer_rmbe_space"),
        r_rx_prod=c("r_rx_prod"),
        r_cons=c("cons"),
        cfed=c("rx_curs_confirmed"),
        bytes_to_rcv=z3.Int(prefix + "bytes_to_rcv"),
        a2b_full=z3.Bool(prefix + "a2b_full"),
        a2b_prod=c("a2b.prod"),
        b2a_full=z3.Bool(prefix + "b2a_full"),
        b2a_cons=c("b2a.cons"),
        prep=c("tx_curs_prep"),
        sent=c("tx_curs_sent"),
        fin=c("tx_curs_fin"),
        sndbuf_space=z3.Int(prefix + "sndbuf_space"),
    )


def _sym_invariants(merged: bool, n: IntT, sb: IntT, s: _Sym) -> BoolT:
    """The named data-path invariants (cursor/space part) as one z3 formula.

    type ok, counters in range, cursors ordered along the pipeline with the writer within the
    space it was told (every link of the chain a short distance, the sum at most the ring),
    peer ring space accounting, bytes_to_rcv accounting, sndbuf ordering and accounting.
    """

    def dist(a: ICursor, b: ICursor) -> IntT:
        return i_short_distance(n, a, b)

    def sdist(a: ICursor, b: ICursor) -> IntT:
        return i_short_distance(sb, a, b)

    in_flight_cons = z3.If(s.b2a_full, dist(s.w_rx_cons, s.b2a_cons), 0)
    cons_link = z3.If(s.b2a_full, dist(s.b2a_cons, s.cfed), dist(s.w_rx_cons, s.cfed))
    prod_link = z3.If(
        s.a2b_full,
        dist(s.r_rx_prod, s.a2b_prod) + dist(s.a2b_prod, s.w_prod),
        dist(s.r_rx_prod, s.w_prod),
    )
    total = in_flight_cons + cons_link + dist(s.cfed, s.r_cons) + dist(s.r_cons, s.r_rx_prod)
    total = total + prod_link
    cursors = [s.w_prod, s.w_rx_cons, s.r_rx_prod, s.r_cons, s.cfed, s.a2b_prod, s.b2a_cons]
    parts = [
        *[_ityped(c, n) for c in cursors],
        *[_ityped(c, sb) for c in (s.prep, s.sent, s.fin)],
        s.peer_rmbe_space >= 0,
        s.peer_rmbe_space <= n,
        s.bytes_to_rcv >= 0,
        s.bytes_to_rcv <= n,
        s.sndbuf_space >= 0,
        s.sndbuf_space <= sb,
        total == dist(s.w_rx_cons, s.w_prod),
        total <= n,
        s.peer_rmbe_space + dist(s.w_rx_cons, s.w_prod) == n,
        s.bytes_to_rcv == dist(s.r_cons, s.r_rx_prod),
        sdist(s.fin, s.sent) + sdist(s.sent, s.prep) == sdist(s.fin, s.prep),
        s.sndbuf_space + sdist(s.fin, s.prep) == sb,
    ]
    if merged:
        # ghost sndbuf = peer ring: sent is prod, fin is the received consumer cursor
        parts += [_isame(s.sent, s.w_prod), _isame(s.fin, s.w_rx_cons)]
    return z3.And(parts)


def _frame(old: _Sym, new: _Sym, **changed: Any) -> BoolT:
    eqs = []
    for name, value in vars(old).items():
        target = changed.get(name, value)
        other = getattr(new, name)
        if isinstance(value, tuple):
            eqs += [other[0] == target[0], other[1] == target[1]]
        else:
            eqs.append(other == target)
    return z3.And(eqs)


def _steps(merged: bool, n: IntT, sb: IntT, s: _Sym, t: _Sym) -> list[tuple[str, BoolT]]:
    """(action name, guard and effect relating s to t) for every data-path action."""
    k = z3.Int("n")
    steps: list[tuple[str, BoolT]] = []
    steps.append(
        (
            "WriterAppWrite",
            z3.And(
                k >= 1,
                k <= s.sndbuf_space,
                _frame(s, t, prep=i_add(sb, s.prep, k), sndbuf_space=s.sndbuf_space - k),
            ),
        )
    )
    to_send = i_diff(sb, s.sent, s.prep)
    space = s.peer_rmbe_space
    length = z3.If(to_send < space, to_send, space)
    moved = {
        "w_prod": i_add(n, s.w_prod, length),
        "sent": i_add(sb, s.sent, length),
        "peer_rmbe_space": space - length,
    }
    steps.append(("WriterMoveData", z3.And(to_send > 0, space > 0, _frame(s, t, **moved))))
    sent_cdc: dict[str, Any] = {"a2b_full": z3.BoolVal(True), "a2b_prod": s.w_prod}
    if not merged:
        sent_cdc |= {"sndbuf_space": s.sndbuf_space + i_diff(sb, s.fin, s.sent), "fin": s.sent}
    steps.append(("WriterSendCdc", z3.And(z3.Not(s.a2b_full), _frame(s, t, **sent_cdc))))
    diff_prod = i_diff(n, s.r_rx_prod, s.a2b_prod)
    steps.append(
        (
            "ReaderRecvCdc",
            z3.And(
                s.a2b_full,
                _frame(
                    s,
                    t,
                    a2b_full=z3.BoolVal(False),
                    r_rx_prod=s.a2b_prod,
                    bytes_to_rcv=s.bytes_to_rcv + diff_prod,
                ),
            ),
        )
    )
    steps.append(
        (
            "ReaderRead",
            z3.And(
                k >= 1,
                k <= s.bytes_to_rcv,
                _frame(s, t, r_cons=i_add(n, s.r_cons, k), bytes_to_rcv=s.bytes_to_rcv - k),
            ),
        )
    )
    steps.append(
        (
            "ReaderSendConsUpdate",
            z3.And(
                z3.Not(s.b2a_full),
                _frame(s, t, b2a_full=z3.BoolVal(True), b2a_cons=s.r_cons, cfed=s.r_cons),
            ),
        )
    )
    diff_cons = i_diff(n, s.w_rx_cons, s.b2a_cons)
    recv: dict[str, Any] = {
        "b2a_full": z3.BoolVal(False),
        "w_rx_cons": s.b2a_cons,
        "peer_rmbe_space": s.peer_rmbe_space + diff_cons,
    }
    if merged:
        moved_on = diff_cons != 0
        recv |= {
            "sndbuf_space": z3.If(
                moved_on, s.sndbuf_space + i_diff(n, s.fin, s.b2a_cons), s.sndbuf_space
            ),
            "fin": (
                z3.If(moved_on, s.b2a_cons[0], s.fin[0]),
                z3.If(moved_on, s.b2a_cons[1], s.fin[1]),
            ),
        }
    steps.append(("WriterRecvCdc", z3.And(s.b2a_full, _frame(s, t, **recv))))
    return steps


def _th_step_preserves(merged: bool) -> Callable[[], list[Obligation]]:
    def build() -> list[Obligation]:
        n, n_dom = _int_size("ring_size", SMCD_DATA_RING_SIZES)
        if merged:
            sb, sb_dom = n, z3.BoolVal(True)
        else:
            sb, sb_dom = _int_size("sndbuf_size", SMC_SNDBUF_SIZES)
        s, t = _sym(""), _sym("'")
        inv_s = _sym_invariants(merged, n, sb, s)
        inv_t = _sym_invariants(merged, n, sb, t)
        show = (("ring_size", n), ("sndbuf_size", sb), *s.items())
        return [
            Obligation(
                label=name,
                assumptions=z3.And(n_dom, sb_dom, inv_s, rel),
                claim=inv_t,
                precondition=None,
                show=show,
            )
            for name, rel in _steps(merged, n, sb, s, t)
        ]

    return build


def _th_initial() -> list[Obligation]:
    n, n_dom = _int_size("ring_size", SMCD_DATA_RING_SIZES)
    s = _sym("")
    cursors = (s.w_prod, s.w_rx_cons, s.r_rx_prod, s.r_cons, s.cfed, s.prep, s.sent, s.fin)
    init = z3.And(
        *[z3.And(c[0] == 0, c[1] == 0) for c in cursors],
        z3.Not(s.a2b_full),
        z3.Not(s.b2a_full),
        s.a2b_prod[0] == 0,
        s.a2b_prod[1] == 0,
        s.b2a_cons[0] == 0,
        s.b2a_cons[1] == 0,
        s.peer_rmbe_space == n,
        s.sndbuf_space == n,
        s.bytes_to_rcv == 0,
    )
    return [
        Obligation(
            label="",
            assumptions=z3.And(n_dom, init),
            claim=_sym_invariants(True, n, n, s),
            precondition=None,
            show=(("ring_size", n),),
        )
    ]


CATALOGUE: tuple[Theorem, ...] = (
    Theorem(
        name="add_stays_in_ring",
        statement="smc_curs_add(size, c, v) with c.count < size and 0 <= v <= size gives a "
        "count below size",
        expect=Expect.HOLDS,
        build=_th_add_stays_in_ring(dmb_domain),
    ),
    Theorem(
        name="add_stays_in_ring[any size]",
        statement="the same for any ring length 1 <= size < 2**31",
        expect=Expect.HOLDS,
        build=_th_add_stays_in_ring(any_domain),
    ),
    Theorem(
        name="add_then_diff_is_amount",
        statement="diff(size, c, add(size, c, v)) == v for every valid cursor c and "
        "0 <= v <= size, "
        "including the 0xffff -> 0 wrap overflow",
        expect=Expect.HOLDS,
        build=_th_add_then_diff(dmb_domain, large=False),
    ),
    Theorem(
        name="add_then_diff_is_amount[any size]",
        statement="the same for any ring length 1 <= size < 2**31",
        expect=Expect.HOLDS,
        build=_th_add_then_diff(any_domain, large=False),
    ),
    Theorem(
        name="add_then_diff_large_is_amount",
        statement="diff_large(size, c, add(size, c, v)) == v for every valid c and 0 <= v <= size, "
        "including the 0xffff -> 0 wrap overflow",
        expect=Expect.HOLDS,
        build=_th_add_then_diff(dmb_domain, large=True),
    ),
    Theorem(
        name="comp_agrees_with_add_order",
        statement="comp(size, c, add(size, c, v)) == v and comp(size, add(size, c, v), c) == -v "
        "for 0 <= v <= size",
        expect=Expect.NEEDS_PRECONDITION,
        build=_th_comp_agrees(dmb_domain),
        precondition="no_wrap_overflow",
        precondition_statement="the add does not take wrap from 0xffff to 0 (c.wrap != 0xffff "
        "or c.count + v < size)",
    ),
    Theorem(
        name="diff_is_distance",
        statement="diff(size, old, new) equals the true forward distance from old to new",
        expect=Expect.NEEDS_PRECONDITION,
        build=_th_diff_is_distance,
        precondition="gap_at_most_size",
        precondition_statement="new is at most size bytes ahead of old (the kernel comment's "
        "'old <= new and difference cannot exceed size')",
    ),
    Theorem(
        name="diff_large_is_capped_distance",
        statement="diff_large(size, old, new) == min(true forward distance, size)",
        expect=Expect.NEEDS_PRECONDITION,
        build=_th_diff_large_gap,
        precondition="gap_not_backwards_no_u32_overflow",
        precondition_statement="new is not behind old within one lap (distance <= period - "
        "size) and the distance plus size fits a C int (distance < 2**31 - 1 - size)",
    ),
    Theorem(
        name="diff_large_handles_gaps_above_size",
        statement="diff_large returns exactly size when new is more than size and at most 64 "
        "laps ahead of old (where diff would count one lap only)",
        expect=Expect.HOLDS,
        build=_th_diff_large_above_size,
    ),
    Theorem(
        name="sender_free_in_range",
        statement="smc_tx_consumer_update's sender_free = size - diff_large(cfed, prod) is in "
        "[0, size] and equals the true free space when prod is at most size ahead of cfed",
        expect=Expect.HOLDS,
        build=_th_sender_free,
    ),
    Theorem(
        name="writer_space_never_passes_consumer",
        statement="moving min(to_send, peer_rmbe_space) bytes keeps prod at most size ahead of "
        "the consumer cursor the writer received, and the space accounting exact",
        expect=Expect.HOLDS,
        build=_th_writer_space,
    ),
    Theorem(
        name="initial_state_satisfies_invariants",
        statement="the all-zero state with empty channels and full space satisfies the "
        "data-path invariants",
        expect=Expect.HOLDS,
        build=_th_initial,
    ),
    Theorem(
        name="step_preserves_invariants[merged]",
        statement="from ANY state satisfying the data-path invariants (cursor/space part), every "
        "merged-mode action keeps them (inductive)",
        expect=Expect.HOLDS,
        build=_th_step_preserves(merged=True),
    ),
    Theorem(
        name="step_preserves_invariants[copy]",
        statement="from ANY state satisfying the data-path invariants (cursor/space part), every "
        "copy-mode action keeps them, for every DMB ring and sndbuf size pair (inductive)",
        expect=Expect.HOLDS,
        build=_th_step_preserves(merged=False),
    ),
)

THEOREMS_BY_NAME: dict[str, Theorem] = {t.name: t for t in CATALOGUE}


# --------------------------------------------------------------------------------------------
# Checking
# --------------------------------------------------------------------------------------------


class Status(enum.Enum):
    """Outcome of one theorem."""

    #: proved (HOLDS), or counterexample without + proof with the precondition (NEEDS_PRECONDITION)
    PROVED = "proved"
    #: NEEDS_PRECONDITION, but no counterexample exists without it (the precondition is not needed)
    PROVED_WITHOUT_PRECONDITION = "proved without precondition"
    #: a counterexample where the theorem was expected to hold (a finding)
    COUNTEREXAMPLE = "counterexample"
    #: z3 gave up (timeout)
    UNKNOWN = "unknown"
    #: the assumptions are unsatisfiable: the "proof" would say nothing (a finding)
    VACUOUS = "vacuous"


@dataclass
class Result:
    """What checking one theorem gave."""

    theorem: Theorem
    status: Status
    seconds: float
    #: the counterexample found without the precondition (NEEDS_PRECONDITION), as name -> value
    precondition_counterexample: dict[str, int] | None = None
    #: the counterexample that makes the theorem fail (COUNTEREXAMPLE), with its case label
    counterexample: dict[str, int] | None = None
    label: str = ""

    @property
    def ok(self) -> bool:
        """True unless this is a finding (a counterexample or unknown where a proof was due)."""
        return self.status in (Status.PROVED, Status.PROVED_WITHOUT_PRECONDITION)


def _unsigned_name(name: str) -> bool:
    """Fields shown unsigned: wraps, counts, sizes, the added value and true distances."""
    return name.endswith((".wrap", ".count")) or "size" in name or name in ("v", "true distance")


def _value(model: z3.ModelRef, name: str, term: Any) -> int:
    """The model's value of ``term``; 32-bit C ints (diff, comp, spaces) read as signed."""
    v = model.eval(term, model_completion=True)
    if z3.is_bool(v):
        return int(z3.is_true(v))
    if isinstance(v, z3.IntNumRef):
        return int(v.as_long())
    if not isinstance(v, z3.BitVecNumRef):  # pragma: no cover - completion gives numerals
        raise TypeError(f"unexpected model value {v!r} for {name}")
    if v.size() == 32 and not _unsigned_name(name):
        return int(v.as_signed_long())
    return int(v.as_long())


#: z3's reason_unknown() when its SIGINT handler stopped a check (Ctrl-C)
_INTERRUPTED = frozenset({"interrupted from keyboard", "canceled"})


def _check(
    assumptions: BoolT, claim: BoolT, timeout_ms: int
) -> tuple[z3.CheckSatResult, z3.ModelRef | None]:
    solver = z3.Solver()
    solver.set("timeout", timeout_ms)
    solver.add(assumptions, z3.Not(claim))
    res = solver.check()
    if res == z3.unknown and solver.reason_unknown() in _INTERRUPTED:
        # z3 catches SIGINT itself and answers "unknown": that is the user's Ctrl-C, not a
        # theorem z3 could not decide
        raise KeyboardInterrupt
    return res, (solver.model() if res == z3.sat else None)


def check_theorem(theorem: Theorem, *, timeout: float = 30.0) -> Result:
    """Check one theorem (every obligation) and classify the outcome.

    ``timeout`` is per theorem in seconds (split evenly over its obligations).
    """
    start = time.monotonic()
    obligations = theorem.build()
    per = max(1, int(timeout * 1000 / max(1, len(obligations))))
    pre_cex: dict[str, int] | None = None
    for ob in obligations:
        if theorem.expect is Expect.NEEDS_PRECONDITION and ob.precondition is not None:
            res, model = _check(ob.assumptions, ob.claim, per)
            if res == z3.sat and model is not None and pre_cex is None:
                pre_cex = {name: _value(model, name, term) for name, term in ob.show}
            assumptions = z3.And(ob.assumptions, ob.precondition)
        else:
            assumptions = ob.assumptions
        if _check(assumptions, z3.BoolVal(False), per)[0] == z3.unsat:
            return Result(
                theorem, Status.VACUOUS, time.monotonic() - start, pre_cex, None, ob.label
            )
        res, model = _check(assumptions, ob.claim, per)
        if res == z3.unknown:
            return Result(
                theorem, Status.UNKNOWN, time.monotonic() - start, pre_cex, None, ob.label
            )
        if res == z3.sat and model is not None:
            cex = {name: _value(model, name, term) for name, term in ob.show}
            return Result(
                theorem, Status.COUNTEREXAMPLE, time.monotonic() - start, pre_cex, cex, ob.label
            )
    status = Status.PROVED
    if theorem.expect is Expect.NEEDS_PRECONDITION and pre_cex is None:
        status = Status.PROVED_WITHOUT_PRECONDITION
    return Result(theorem, status, time.monotonic() - start, pre_cex, None, "")


def check_all(names: Sequence[str] | None = None, *, timeout: float = 30.0) -> Iterator[Result]:
    """Check the catalogue (or the theorems named), yielding results one by one (in order).

    Raises:
        KeyError: an unknown theorem name (the message lists the known ones).
    """
    if names:
        unknown = [n for n in names if n not in THEOREMS_BY_NAME]
        if unknown:
            raise KeyError(
                f"unknown theorem(s) {', '.join(unknown)}; known: {', '.join(THEOREMS_BY_NAME)}"
            )
        selected = [THEOREMS_BY_NAME[n] for n in names]
    else:
        selected = list(CATALOGUE)
    for th in selected:
        yield check_theorem(th, timeout=timeout)


def evaluate(term: Any) -> int:
    """Evaluate a closed z3 bit-vector term to a Python int (signed for 32-bit C ints).

    Used by the drift test to compare the z3 encodings with the Python functions.
    """
    v = z3.simplify(term)
    if not isinstance(v, z3.BitVecNumRef):  # pragma: no cover
        raise TypeError(f"term did not simplify to a constant: {v}")
    return int(v.as_signed_long())


def bv(value: int, width: int) -> BV:
    """A z3 bit-vector constant (for the drift test)."""
    return z3.BitVecVal(value, width)
