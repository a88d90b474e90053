"""Cursor arithmetic: the kernel's own examples, the edges, and properties over random cursors.

Expected values are worked out by hand from the C code of net/smc/smc_cdc.h (quoted in each test),
not taken from the functions under test.
"""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from smcd_check.spec.cursor import (
    SMCD_DATA_RING_SIZES,
    Cursor,
    CursorError,
    Ring,
    curs_add,
    curs_comp,
    curs_diff,
    curs_diff_large,
    distance,
    from_position,
    kernel_rmbe_update_limit,
    position,
    smc_curs_add,
    smc_curs_comp,
    smc_curs_diff,
    smc_curs_diff_large,
    to_s32,
)
from smcd_check.spec.errors import PreconditionViolated

N = 16352  # data ring of a 16 KiB DMB
BIG = 1048544  # data ring of a 1 MiB DMB


def C(wrap: int, count: int) -> Cursor:
    return Cursor(wrap=wrap, count=count)


def test_data_ring_sizes_are_dmb_sizes_minus_the_cdc_header() -> None:
    assert SMCD_DATA_RING_SIZES == (16352, 32736, 65504, 131040, 262112, 524256, 1048544)


# ---- smc_curs_add ---------------------------------------------------------------------------


def test_add_within_the_ring_moves_count_only() -> None:
    assert smc_curs_add(N, C(3, 100), 50) == C(3, 150)


def test_add_to_exactly_the_end_wraps_to_count_zero() -> None:
    # count += v -> 16352 >= size: wrap++, count -= size
    assert smc_curs_add(N, C(3, 16000), 352) == C(4, 0)


def test_add_of_a_full_ring_keeps_count_and_bumps_wrap() -> None:
    assert smc_curs_add(N, C(0, 7), N) == C(1, 7)


def test_add_at_wrap_0xffff_overflows_to_zero() -> None:
    assert smc_curs_add(N, C(0xFFFF, N - 1), 1) == C(0, 0)


def test_add_with_narrow_wrap_overflows_at_its_width() -> None:
    assert smc_curs_add(4, C(3, 3), 2, wrap_bits=2) == C(0, 1)


def test_add_subtracts_only_once_so_two_laps_leave_count_outside() -> None:
    # value 2*size: count = 5 + 2*N >= N -> one subtraction leaves 5 + N (past the ring)
    assert smc_curs_add(N, C(0, 5), 2 * N) == C(1, 5 + N)


def test_add_of_a_negative_value_wraps_u32_then_subtracts() -> None:
    # count = 5 + (-6) = 0xffffffff (u32) >= size -> wrap++, count = 0xffffffff - N
    assert smc_curs_add(N, C(0, 5), -6) == C(1, 0xFFFFFFFF - N)


# ---- smc_curs_diff --------------------------------------------------------------------------


def test_diff_same_wrap_is_count_difference() -> None:
    assert smc_curs_diff(N, C(2, 10), C(2, 110)) == 100


def test_diff_same_wrap_backwards_is_zero() -> None:
    assert smc_curs_diff(N, C(2, 110), C(2, 10)) == 0


def test_diff_next_wrap_counts_through_the_ring_end() -> None:
    assert smc_curs_diff(N, C(2, N - 10), C(3, 5)) == 15


def test_diff_full_ring_is_size_told_apart_from_empty_by_wrap() -> None:
    assert smc_curs_diff(N, C(2, 40), C(3, 40)) == N
    assert smc_curs_diff(N, C(2, 40), C(2, 40)) == 0


def test_diff_across_0xffff_wrap_is_one_lap() -> None:
    assert smc_curs_diff(N, C(0xFFFF, N - 1), C(0, 1)) == 2


def test_diff_counts_any_wrap_difference_as_one_lap() -> None:
    # two laps ahead still: (size - 10) + 20
    assert smc_curs_diff(N, C(1, 10), C(3, 20)) == N + 10


def test_diff_with_unsigned_wrap_to_negative_int_gives_zero() -> None:
    # size - old.count + new.count in u32: 16352 - 0xfffffff0 + 0 = 16368 (mod 2**32) > 0
    assert smc_curs_diff(N, C(0, 0xFFFFFFF0), C(1, 0)) == 16368
    # equal wraps: 0 - 0x7fffffff -> 0x80000001 as int is negative -> 0
    assert smc_curs_diff(N, C(0, 0x7FFFFFFF), C(0, 0)) == 0


# ---- smc_curs_comp --------------------------------------------------------------------------


def test_comp_forward_is_positive_and_backward_negative() -> None:
    assert smc_curs_comp(N, C(4, 100), C(4, 130)) == 30
    assert smc_curs_comp(N, C(4, 130), C(4, 100)) == -30
    assert smc_curs_comp(N, C(4, N - 1), C(5, 1)) == 2
    assert smc_curs_comp(N, C(5, 1), C(4, N - 1)) == -2


def test_comp_gets_the_sign_wrong_right_after_the_0xffff_wrap() -> None:
    # old=(0xffff, N-1), new=(0, 1) is 2 bytes ahead, but old.wrap > new.wrap:
    # -diff(new, old) = -((N - 1) + (N - 1)) = -(2N - 2)
    assert smc_curs_comp(N, C(0xFFFF, N - 1), C(0, 1)) == -(2 * N - 2)


# ---- smc_curs_diff_large --------------------------------------------------------------------


def test_diff_large_same_wrap_like_diff() -> None:
    assert smc_curs_diff_large(N, C(7, 5), C(7, 25)) == 20
    assert smc_curs_diff_large(N, C(7, 25), C(7, 5)) == 0


def test_diff_large_one_lap_and_capped_at_size_beyond() -> None:
    assert smc_curs_diff_large(N, C(7, N - 5), C(8, 5)) == 10
    assert smc_curs_diff_large(N, C(7, 5), C(9, 5)) == N  # 2 laps, capped


def test_diff_large_across_0xffff_counts_laps_through_the_overflow() -> None:
    # old.wrap > new.wrap: (size - 10) + 4 + (0 + 0xffff - 0xffff) * size = size - 6
    assert smc_curs_diff_large(N, C(0xFFFF, 10), C(0, 4)) == N - 6


def test_diff_large_overflows_u32_for_many_laps_of_a_big_ring() -> None:
    # laps = 2049: (BIG - 0) + 0 + 2048*BIG = 2049*BIG = 2148466656 (u32) -> as int negative
    got = smc_curs_diff_large(BIG, C(0, 0), C(2049, 0))
    assert got == to_s32(2049 * BIG) < 0


def test_diff_large_narrow_wrap_uses_its_own_max() -> None:
    # wrap_bits=2: back branch laps = 0 + 3 - 3 = 0 -> (4 - 3) + 1 = 2
    assert smc_curs_diff_large(4, C(3, 3), C(0, 1), wrap_bits=2) == 2


# ---- checked wrappers -----------------------------------------------------------------------


def test_checked_add_rejects_count_past_the_ring_naming_argument_and_value() -> None:
    with pytest.raises(
        CursorError, match=r"curs_add: argument curs.count=16352 .*count < size=16352"
    ):
        curs_add(Ring(size=N), C(0, N), 1)


def test_checked_add_rejects_value_above_size() -> None:
    with pytest.raises(CursorError, match=r"value=16353"):
        curs_add(Ring(size=N), C(0, 0), N + 1)


def test_checked_diff_rejects_wrap_too_wide_for_small_ring() -> None:
    ring = Ring(size=4, wrap_bits=2, small_ok=True)
    with pytest.raises(CursorError, match=r"curs_diff: argument new.wrap=4"):
        curs_diff(ring, C(0, 0), C(4, 0))


def test_kernel_faithful_ring_accepts_only_dmb_sizes() -> None:
    with pytest.raises(PreconditionViolated, match=r"Ring: argument size=16000"):
        Ring(size=16000)
    assert Ring(size=N).size == N
    assert Ring(size=16384).size == 16384  # a copy-mode sndbuf
    with pytest.raises(CursorError, match="wrap_bits"):
        Ring(size=N, wrap_bits=2)
    assert Ring(size=5, wrap_bits=2, small_ok=True).period == 20


def test_cursor_rejects_values_the_c_types_cannot_hold() -> None:
    with pytest.raises(CursorError, match=r"wrap=65536"):
        Cursor(wrap=0x10000, count=0)
    with pytest.raises(CursorError, match=r"count=-1"):
        Cursor(wrap=0, count=-1)


def test_checked_functions_compute_the_kernel_results() -> None:
    ring = Ring(size=N)
    assert curs_add(ring, C(1, 2), 3) == C(1, 5)
    assert curs_diff(ring, C(1, 2), C(1, 5)) == 3
    assert curs_comp(ring, C(1, 5), C(1, 2)) == -3
    assert curs_diff_large(ring, C(1, 2), C(3, 2)) == N


def test_rmbe_update_limit_of_the_kernel() -> None:
    assert kernel_rmbe_update_limit(16352) == 2304
    assert kernel_rmbe_update_limit(32736) == 3273


# ---- properties -----------------------------------------------------------------------------

sizes = st.sampled_from(SMCD_DATA_RING_SIZES)


@st.composite
def ring_cursor(draw: st.DrawFn) -> tuple[int, Cursor]:
    size = draw(sizes)
    return size, Cursor(wrap=draw(st.integers(0, 0xFFFF)), count=draw(st.integers(0, size - 1)))


@given(rc=ring_cursor(), frac=st.floats(0, 1))
def test_add_then_diff_returns_the_amount(rc: tuple[int, Cursor], frac: float) -> None:
    """For every valid cursor and 0 <= v <= size, diff(c, add(c, v)) == v (also across 0xffff)."""
    size, c = rc
    v = int(frac * size)
    after = smc_curs_add(size, c, v)
    assert after.count < size
    assert smc_curs_diff(size, c, after) == v
    assert smc_curs_diff_large(size, c, after) == v


@given(rc=ring_cursor(), frac=st.floats(0, 1))
def test_comp_agrees_with_add_unless_wrap_overflows(rc: tuple[int, Cursor], frac: float) -> None:
    """comp(c, add(c, v)) == v and the reverse is -v, except when the add passes 0xffff -> 0."""
    size, c = rc
    v = int(frac * size)
    after = smc_curs_add(size, c, v)
    if c.wrap == 0xFFFF and c.count + v >= size:
        assert smc_curs_comp(size, c, after) <= 0
    else:
        assert smc_curs_comp(size, c, after) == v
        assert smc_curs_comp(size, after, c) == -v


@given(rc=ring_cursor(), frac=st.floats(0, 1))
def test_diff_is_the_abstract_distance_within_one_lap(rc: tuple[int, Cursor], frac: float) -> None:
    """The kernel diff equals the abstract (Disruptor) distance for gaps up to one ring."""
    size, c = rc
    ring = Ring(size=size)
    v = int(frac * size)
    after = from_position(ring, position(ring, c) + v)
    assert distance(ring, c, after) == v
    assert smc_curs_diff(size, c, after) == v


def test_largest_ring_full_and_0xffff_wrap() -> None:
    assert smc_curs_add(BIG, C(0xFFFF, BIG - 1), 1) == C(0, 0)
    assert smc_curs_add(BIG, C(0xFFFF, 0), BIG) == C(0, 0)
    assert smc_curs_diff(BIG, C(0xFFFF, 0), C(0, 0)) == BIG  # full: wraps differ by one
    assert smc_curs_diff_large(BIG, C(0xFFFF, 0), C(0, 0)) == BIG


def test_empty_ring_diff_is_zero_for_every_function() -> None:
    for c in (C(0, 0), C(0xFFFF, N - 1)):
        assert smc_curs_diff(N, c, c) == smc_curs_comp(N, c, c) == 0
        assert smc_curs_diff_large(N, c, c) == 0
