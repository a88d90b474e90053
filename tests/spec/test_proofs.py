"""The z3 encodings agree with the Python cursor functions (drift guard), and the catalogue's
theorems come out as classified.

The drift tests draw *any* values the C types can hold (not only valid cursors), so the C
semantics (u32 wrap-around, int conversion, u16 overflow) are compared too.
"""

from __future__ import annotations

import pytest
import z3
from hypothesis import example, given
from hypothesis import strategies as st

from smcd_check.spec import proofs as P
from smcd_check.spec.cursor import (
    SMCD_DATA_RING_SIZES,
    Cursor,
    smc_curs_add,
    smc_curs_comp,
    smc_curs_diff,
    smc_curs_diff_large,
)

u16 = st.integers(0, 0xFFFF)
u32 = st.integers(0, 0xFFFFFFFF)
# sizes: the DMB rings, small rings, and any C int size
sizes = st.one_of(
    st.sampled_from(SMCD_DATA_RING_SIZES), st.integers(1, 64), st.integers(1, 2**31 - 1)
)
# counts: mostly near the ring, sometimes anywhere in u32
near = st.one_of(st.integers(0, 2**21), u32)


def zc(c: Cursor, wrap_bits: int = 16) -> P.ZCursor:
    return P.bv(c.wrap, wrap_bits), P.bv(c.count, 32)


def ic(c: Cursor) -> P.ICursor:
    return z3.IntVal(c.wrap), z3.IntVal(c.count)


def ival(term: z3.ArithRef) -> int:
    v = z3.simplify(term)
    assert isinstance(v, z3.IntNumRef), v
    return int(v.as_long())


@given(size=sizes, w1=u16, c1=near, w2=u16, c2=near)
@example(size=16352, w1=0xFFFF, c1=10, w2=0, c2=4)
@example(size=1048544, w1=0, c1=0, w2=2049, c2=0)
@example(size=16352, w1=0, c1=0x7FFFFFFF, w2=0, c2=0)
def test_z3_diff_comp_diff_large_equal_python(
    size: int, w1: int, c1: int, w2: int, c2: int
) -> None:
    """For any u16 wraps, u32 counts and C-int size, the z3 terms (bit-vector and integer) of
    diff, comp and diff_large evaluate to exactly what the Python functions return."""
    o, n = Cursor(wrap=w1, count=c1), Cursor(wrap=w2, count=c2)
    zs = P.bv(size, 32)
    assert P.evaluate(P.z_diff(zs, zc(o), zc(n))) == smc_curs_diff(size, o, n)
    assert P.evaluate(P.z_comp(zs, zc(o), zc(n))) == smc_curs_comp(size, o, n)
    assert P.evaluate(P.z_diff_large(zs, zc(o), zc(n))) == smc_curs_diff_large(size, o, n)
    si = z3.IntVal(size)
    assert ival(P.i_diff(si, ic(o), ic(n))) == smc_curs_diff(size, o, n)
    assert ival(P.i_diff_large(si, [size], ic(o), ic(n))) == smc_curs_diff_large(size, o, n)


@given(size=sizes, w=u16, c=near, v=st.integers(-(2**31), 2**31 - 1))
@example(size=16352, w=0xFFFF, c=16351, v=1)
@example(size=16352, w=0, c=5, v=-6)
def test_z3_add_equals_python(size: int, w: int, c: int, v: int) -> None:
    """For any cursor fields, C-int value and size, the z3 add terms give the Python result."""
    cur = Cursor(wrap=w, count=c)
    want = smc_curs_add(size, cur, v)
    zw, zcnt = P.z_add(P.bv(size, 32), zc(cur), P.bv(v, 32))
    assert (z3.simplify(zw).as_long(), z3.simplify(zcnt).as_long()) == (want.wrap, want.count)
    iw, icnt = P.i_add(z3.IntVal(size), ic(cur), z3.IntVal(v))
    assert (ival(iw), ival(icnt)) == (want.wrap, want.count)


@given(size=st.integers(1, 64), wb=st.integers(1, 3), data=st.data())
def test_z3_narrow_wrap_encodings_equal_python(size: int, wb: int, data: st.DataObject) -> None:
    """With the explorer's narrow wrap counters the z3 add and diff_large match Python too."""
    w = st.integers(0, (1 << wb) - 1)
    o = Cursor(wrap=data.draw(w), count=data.draw(st.integers(0, size - 1)))
    n = Cursor(wrap=data.draw(w), count=data.draw(st.integers(0, size - 1)))
    v = data.draw(st.integers(0, size))
    zs = P.bv(size, 32)
    want = smc_curs_add(size, o, v, wrap_bits=wb)
    zw, zcnt = P.z_add(zs, zc(o, wb), P.bv(v, 32), wrap_bits=wb)
    assert (z3.simplify(zw).as_long(), z3.simplify(zcnt).as_long()) == (want.wrap, want.count)
    got = P.evaluate(P.z_diff_large(zs, zc(o, wb), zc(n, wb), wrap_bits=wb))
    assert got == smc_curs_diff_large(size, o, n, wrap_bits=wb)


@given(size=st.sampled_from(SMCD_DATA_RING_SIZES), data=st.data())
def test_short_distance_is_the_distance_within_one_lap(size: int, data: st.DataObject) -> None:
    """The integer short distance used by the data-path proofs is the forward distance when it
    is at most one ring, and FAR otherwise."""
    from smcd_check.spec.cursor import Ring, distance

    ring = Ring(size=size)
    o = Cursor(wrap=data.draw(u16), count=data.draw(st.integers(0, size - 1)))
    n = Cursor(wrap=data.draw(u16), count=data.draw(st.integers(0, size - 1)))
    got = ival(P.i_short_distance(z3.IntVal(size), ic(o), ic(n)))
    d = distance(ring, o, n)
    assert got == (d if d <= size else P.I_FAR)


# ---- the catalogue --------------------------------------------------------------------------

FAST = [
    "add_stays_in_ring",
    "add_then_diff_is_amount",
    "comp_agrees_with_add_order",
    "diff_is_distance",
    "diff_large_handles_gaps_above_size",
    "writer_space_never_passes_consumer",
    "initial_state_satisfies_invariants",
    "step_preserves_invariants[merged]",
    "step_preserves_invariants[copy]",
]


@pytest.mark.parametrize("name", FAST)
def test_theorem_comes_out_as_classified(name: str) -> None:
    result = P.check_theorem(P.THEOREMS_BY_NAME[name], timeout=120)
    assert result.status is P.Status.PROVED, (result.status, result.label, result.counterexample)
    if result.theorem.expect is P.Expect.NEEDS_PRECONDITION:
        assert result.precondition_counterexample is not None


def test_comp_counterexample_is_the_0xffff_overflow() -> None:
    result = P.check_theorem(P.THEOREMS_BY_NAME["comp_agrees_with_add_order"], timeout=120)
    cex = result.precondition_counterexample
    assert cex is not None
    assert cex["c.wrap"] == 0xFFFF and cex["add(c, v).wrap"] == 0
    assert cex["comp(c, add(c,v))"] < 0  # the sign is wrong across the overflow


def test_every_theorem_has_a_statement_and_preconditions_are_named() -> None:
    names = [t.name for t in P.CATALOGUE]
    assert len(names) == len(set(names))
    for t in P.CATALOGUE:
        assert t.statement
        assert bool(t.precondition) == (t.expect is P.Expect.NEEDS_PRECONDITION)


def _broken_step_theorem() -> P.Theorem:
    """The merged step theorem with a writer that ignores sndbuf_space (MERGED_IGNORES_CONS)."""
    real = P._steps

    def steps(merged, n, sb, s, t):  # type: ignore[no-untyped-def]
        out = real(merged, n, sb, s, t)
        k = z3.Int("n")
        bad = z3.And(
            k >= 1,
            k <= 2,
            P._frame(s, t, prep=P.i_add(sb, s.prep, k), sndbuf_space=s.sndbuf_space - k),
        )
        return [("WriterAppWrite(ignoring space)", bad), *out[1:]]

    def build() -> list[P.Obligation]:
        P._steps = steps  # type: ignore[assignment]
        try:
            return P._th_step_preserves(merged=True)()
        finally:
            P._steps = real  # type: ignore[assignment]

    return P.Theorem(name="broken", statement="", expect=P.Expect.HOLDS, build=build)


def test_step_theorem_finds_a_writer_that_ignores_its_space() -> None:
    result = P.check_theorem(_broken_step_theorem(), timeout=120)
    assert result.status is P.Status.COUNTEREXAMPLE
    assert result.label == "WriterAppWrite(ignoring space)"
    assert result.counterexample is not None and result.counterexample["sndbuf_space"] < 2


def test_vacuous_assumptions_are_reported() -> None:
    x = z3.Int("x")
    th = P.Theorem(
        name="vacuous",
        statement="",
        expect=P.Expect.HOLDS,
        build=lambda: [P.Obligation("", z3.And(x > 1, x < 0), x == 5, None, ())],
    )
    assert P.check_theorem(th).status is P.Status.VACUOUS


def test_unknown_theorem_name_lists_the_known_ones() -> None:
    with pytest.raises(KeyError, match=r"unknown theorem.*nope.*add_stays_in_ring"):
        list(P.check_all(["nope"]))
