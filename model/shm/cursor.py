"""Host cursor arithmetic of ``net/smc/smc_cdc.h`` with C semantics (this implementation's own).

``union smc_host_cursor`` is ``(u16 wrap, u32 count)``; the functions below compute what the
kernel's inline functions compute, including its integer widths: ``smc_curs_add`` does one
subtraction at the ring end and lets the u16 wrap overflow, ``smc_curs_diff`` counts any wrap
difference as one lap (``max_t(int, 0, ...)``), ``smc_curs_comp`` negates a diff, and
``smc_curs_diff_large`` counts extra laps, capped at ``size`` with ``min_t(int, ...)`` on a u32
sum (so it can go negative for gaps near 2^31, as the kernel does).
"""

from __future__ import annotations

from typing import NamedTuple

from smcd_check.model.shm.layout import COUNT_MASK, WRAP_MASK


class HostCursor(NamedTuple):
    """``union smc_host_cursor``: the ring size belongs to the caller (a tuple: cheap to make)."""

    wrap: int = 0
    count: int = 0  # type: ignore[assignment]  # the kernel's name shadows tuple.count


ZERO = HostCursor(0, 0)


def _s32(v: int) -> int:
    """``(int)`` of a u32 value."""
    v &= 0xFFFF_FFFF
    return v - (1 << 32) if v & 0x8000_0000 else v


def curs_add(size: int, curs: HostCursor, value: int) -> HostCursor:
    """``smc_curs_add``."""
    count = (curs.count + value) & COUNT_MASK
    wrap = curs.wrap
    if count >= size & 0xFFFF_FFFF:
        wrap = (wrap + 1) & WRAP_MASK
        count = (count - size) & COUNT_MASK
    return HostCursor(wrap, count)


def curs_diff(size: int, old: HostCursor, new: HostCursor) -> int:
    """``smc_curs_diff``: ``max_t(int, 0, ...)`` of a u32 expression."""
    if old.wrap != new.wrap:
        return max(0, _s32((size - old.count) + new.count))
    return max(0, _s32(new.count - old.count))


def curs_comp(size: int, old: HostCursor, new: HostCursor) -> int:
    """``smc_curs_comp``: negative when ``old`` is after ``new``."""
    if old.wrap > new.wrap or (old.wrap == new.wrap and old.count > new.count):
        return -curs_diff(size, new, old)
    return curs_diff(size, old, new)


def curs_diff_large(size: int, old: HostCursor, new: HostCursor) -> int:
    """``smc_curs_diff_large``: extra laps counted, ``min_t(int, ..., size)``."""
    if old.wrap < new.wrap:
        return min(_s32((size - old.count) + new.count + (new.wrap - old.wrap - 1) * size),
                   _s32(size))
    if old.wrap > new.wrap:  # wrap switched from 0xffff to 0
        return min(_s32((size - old.count) + new.count + (new.wrap + 0xFFFF - old.wrap) * size),
                   _s32(size))
    return max(0, _s32(new.count - old.count))
