"""The compressed buffer size notation of SMC (DMB / RMB sizes on the wire).

Theory of operation
-------------------
Accept and Confirm carry the size of the sender's receive buffer (SMC-D: its DMB element) as a
4-bit "compressed" number ``c`` (``d0.dmbe_size``, high nibble of byte 25). The size in bytes is
``1 << (c + 14)``: 0 -> 16 KiB, 1 -> 32 KiB, ..., 6 -> 1 MiB, ..., 15 -> 512 MiB
(``smc_uncompress_bufsize``, net/smc/smc_core.c).

The sender computes ``c`` from the buffer size it wants with ``smc_compress_bufsize(size, is_smcd,
is_rmb)`` (net/smc/smc_core.c): sizes up to ``SMC_BUF_MIN_SIZE`` (16 KiB) give 0; above, the size
is rounded UP to the next power of two (``ilog2((size - 1) >> 14) + 1``) and capped at
``SMCD_DMBE_SIZES`` = 6 (1 MiB) for SMC-D or ``SMCR_RMBE_SIZES`` = 15 (512 MiB, Linux 6.12) for
SMC-R.

The receiver decodes whatever nibble it gets (0..15) without checking it against the SMC-D cap
(``smcd_conn_save_peer_info``, net/smc/af_smc.c): a peer may announce a 512 MiB DMB.

Not modelled: the extra SMC-R RMB cap that applies only on architectures built with
``CONFIG_ARCH_NO_SG_CHAIN`` (``ilog2((SG_MAX_SINGLE_ALLOC * PAGE_SIZE) >> 14)``); it needs the
architecture's page size and scatterlist size and does not exist on x86-64. Older kernels had
``SMCR_RMBE_SIZES`` = 5 (v5.x/early v6.x) and ``SMCD_DMBE_SIZES`` = 7: pass ``max_smcr`` /
``max_smcd`` to reproduce them.

Source: net/smc/smc_core.c (6.12.118), shared/domain/clc.md section 7.
"""

from __future__ import annotations

from typing import Final

from smcd_check.spec.errors import PreconditionViolated

#: ``SMC_BUF_MIN_SIZE`` (net/smc/smc_core.h): the smallest buffer, 16 KiB, compressed 0
SMC_BUF_MIN_SIZE: Final = 16384
#: ``SMCD_DMBE_SIZES`` (net/smc/smc_core.c): SMC-D cap, 6 = 1 MiB
SMCD_DMBE_SIZES: Final = 6
#: ``SMCR_RMBE_SIZES`` (net/smc/smc_core.c, 6.12): SMC-R cap, 15 = 512 MiB
SMCR_RMBE_SIZES: Final = 15
#: the wire field is a nibble: compressed values 0..15
COMPRESSED_MAX: Final = 15
#: the kernel's ``size`` argument is a C ``int``
_INT_MIN: Final = -(2**31)
_INT_MAX: Final = 2**31 - 1


class BufsizeError(PreconditionViolated):
    """A size or compressed value outside what the kernel function takes."""


def smc_compress_bufsize(
    size: int,
    is_smcd: bool,
    is_rmb: bool = True,
    *,
    max_smcd: int = SMCD_DMBE_SIZES,
    max_smcr: int = SMCR_RMBE_SIZES,
) -> int:
    """Compressed notation of a buffer ``size`` in bytes, as ``smc_compress_bufsize`` computes it.

    Rounds up to the next power of two of at least 16 KiB, then caps at 6 (SMC-D) or 15
    (SMC-R). ``size`` is a C ``int`` in the kernel; values outside its range raise
    :class:`BufsizeError`. ``is_rmb`` is the kernel's third argument; it only matters under
    ``CONFIG_ARCH_NO_SG_CHAIN`` (not modelled, see the module docstring), so it has no effect.
    """
    del is_rmb  # the CONFIG_ARCH_NO_SG_CHAIN cap is not modelled
    if not _INT_MIN <= size <= _INT_MAX:
        raise BufsizeError(f"size {size} is outside the kernel's int range")
    if size <= SMC_BUF_MIN_SIZE:
        return 0
    multiple = (size - 1) >> 14  # number of whole 16 KiB units below size (>= 1 here)
    compressed = multiple.bit_length()  # == ilog2(multiple) + 1
    return min(compressed, max_smcd if is_smcd else max_smcr)


def smc_uncompress_bufsize(compressed: int) -> int:
    """Size in bytes of a compressed value: ``1 << (compressed + 14)`` (0 -> 16 KiB, 15 -> 512 MiB).

    Raises :class:`BufsizeError` for a value that does not fit the 4-bit wire field.
    """
    if not 0 <= compressed <= COMPRESSED_MAX:
        raise BufsizeError(f"compressed size {compressed} is not a 4-bit value (0..15)")
    return 1 << (compressed + 14)
