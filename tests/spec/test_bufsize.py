"""smc_compress_bufsize / smc_uncompress_bufsize as net/smc/smc_core.c (6.12.118) computes them."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from smcd_check.spec.bufsize import (
    SMCD_DMBE_SIZES,
    SMCR_RMBE_SIZES,
    BufsizeError,
    smc_compress_bufsize,
    smc_uncompress_bufsize,
)

KIB = 1024


@pytest.mark.parametrize(
    ("size", "smcd", "smcr"),
    [
        (-5, 0, 0), (0, 0, 0), (1, 0, 0), (16 * KIB, 0, 0),  # <= SMC_BUF_MIN_SIZE -> 0
        (16 * KIB + 1, 1, 1), (32 * KIB, 1, 1), (32 * KIB + 1, 2, 2),  # rounds up
        (64 * KIB, 2, 2), (65504, 2, 2),  # 64 KiB - 32: the loopback capture's rmbe
        (1024 * KIB, 6, 6), (1024 * KIB + 1, 6, 7),  # SMC-D cap 6 = 1 MiB
        (512 * KIB * KIB, 6, 15), (2**31 - 1, 6, 15),  # SMC-R cap 15 = 512 MiB
    ],
)
def test_compress_matches_the_kernel(size: int, smcd: int, smcr: int) -> None:
    assert smc_compress_bufsize(size, True) == smcd
    assert smc_compress_bufsize(size, False) == smcr


def test_caps() -> None:
    assert (SMCD_DMBE_SIZES, SMCR_RMBE_SIZES) == (6, 15)
    assert smc_compress_bufsize(10**9, True, max_smcd=7) == 7  # v5.x-era SMC-D cap


@pytest.mark.parametrize(("c", "size"), [(0, 16 * KIB), (1, 32 * KIB), (2, 64 * KIB),
                                         (6, 1024 * KIB), (15, 512 * KIB * KIB)])
def test_uncompress(c: int, size: int) -> None:
    assert smc_uncompress_bufsize(c) == size


@pytest.mark.parametrize("c", [-1, 16, 255])
def test_uncompress_rejects_values_outside_the_nibble(c: int) -> None:
    with pytest.raises(BufsizeError):
        smc_uncompress_bufsize(c)


def test_compress_rejects_sizes_outside_c_int() -> None:
    with pytest.raises(BufsizeError):
        smc_compress_bufsize(2**31, True)


@given(st.integers(-(2**31), 2**31 - 1), st.booleans())
def test_compressed_size_is_enough_unless_capped(size: int, is_smcd: bool) -> None:
    """The compressed size, uncompressed, is the smallest power of two >= max(size, 16 KiB),
    unless the cap cuts it: the application gets at least what it asked for below the cap."""
    c = smc_compress_bufsize(size, is_smcd)
    cap = SMCD_DMBE_SIZES if is_smcd else SMCR_RMBE_SIZES
    got = smc_uncompress_bufsize(c)
    if c < cap:
        assert got >= size and (c == 0 or got // 2 < size)
    else:
        assert c == cap
