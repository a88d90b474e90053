"""SMC cursors and their arithmetic, exactly as the kernel computes them.

Theory of operation
-------------------
An SMC cursor (``union smc_host_cursor``, net/smc/smc.h) is a pair ``(wrap, count)``: ``count``
is a byte offset into a ring buffer (intended range ``0 <= count < size``) and ``wrap`` counts the
laps around the ring. The kernel stores ``wrap`` as a ``u16`` (it overflows 0xffff -> 0) and
``count`` as a ``u32``. The ring's length ``size`` is never stored in the cursor: every function
takes it from the caller.

This module keeps **two variants** of each function of net/smc/smc_cdc.h:

* the *kernel-faithful* functions :func:`smc_curs_add`, :func:`smc_curs_diff`,
  :func:`smc_curs_comp` and :func:`smc_curs_diff_large`. They take any in-range field values
  (``0 <= wrap < 2**wrap_bits``, ``0 <= count < 2**32``, ``0 <= size < 2**32``) and return what
  the C code returns, including its C semantics: ``unsigned int`` arithmetic modulo 2**32, the
  conversion of such a result to ``int`` (two's complement, 32 bits) inside ``max_t(int, ..)`` /
  ``min_t(int, ..)``, the u16 wrap overflow, and the single subtraction in ``smc_curs_add``. They
  raise nothing for odd inputs (a count past the ring, a difference of several laps): those are
  exactly the inputs a buggy or hostile peer can produce, and the spec must see what the kernel
  then computes. (They do raise :class:`CursorError` for values the C types cannot hold at all.)
* the *checked* wrappers :func:`curs_add`, :func:`curs_diff`, :func:`curs_comp` and
  :func:`curs_diff_large`, which state the preconditions under which the kernel's comments say
  the functions are meant to be used, and raise :class:`CursorError` (a
  :class:`~smcd_check.spec.errors.PreconditionViolated`) naming the function, the argument and
  the value when one is broken. The preconditions are: the ring geometry is valid (see
  :class:`Ring`), every cursor's ``count`` is below the ring size and its ``wrap`` fits the wrap
  width, and ``add``'s value is in ``0..size``.

The wrap width is a parameter (``wrap_bits``, default 16 as in the kernel) so that the explorer
can use, e.g., 2 bits and see the 0xffff -> 0 overflow analogue in a small state space. With
``wrap_bits = w`` the u16 overflow becomes "modulo ``2**w``" and the constant ``0xffff`` of
``smc_curs_diff_large`` becomes ``2**w - 1`` (the largest wrap value), which is exactly the kernel
function when ``w = 16``.

Ring sizes: the SMC-D data rings are **not** powers of two: a DMB of ``2**k * 16 KiB``
(``k = 0..6``, 16 KiB .. 1 MiB) carries a 32-byte CDC header, so its data ring is
``2**k * 16384 - 32`` bytes (16352 .. 1048544); see :data:`SMCD_DATA_RING_SIZES` and
net/smc/smc_core.c (``smcd_new_buf_create``), net/smc/smc_cdc.h (``struct smcd_cdc_msg``).
In kernel-faithful mode (``Ring(small_ok=False)``, the default) the checked functions accept only
those sizes (or, for a copy-mode sndbuf, the power-of-two sizes 16 KiB .. 1 MiB, see
:data:`SMC_SNDBUF_SIZES`). Exploration configs set ``small_ok=True`` and may use rings of a few
bytes (e.g. 4 .. 16); every function computes the same formula for any size.

Not modelled: the atomic 64-bit read/write of a cursor (``acurs``) and the ``reserved`` u16; the
SMC-R network-byte-order cursor (``union smc_cdc_cursor``) and its "ignore a cursor that moved
backwards" filter (``smc_cdc_cursor_to_host``), which SMC-D does not use.

Kernel source: net/smc/smc_cdc.h (``smc_curs_add``, ``smc_curs_diff``, ``smc_curs_comp``,
``smc_curs_diff_large``), net/smc/smc.h (``union smc_host_cursor``); digest: cursors.md sections
1, 2 and 8.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

from smcd_check.spec.errors import PreconditionViolated

#: the kernel's wrap width: ``u16 wrap`` in union smc_host_cursor (net/smc/smc.h)
KERNEL_WRAP_BITS: Final = 16
#: the kernel's count width: ``u32 count``
COUNT_BITS: Final = 32
#: 2**32: ``unsigned int`` arithmetic is modulo this
U32: Final = 1 << 32
#: bytes of the CDC header at the start of every SMC-D DMB (``sizeof(struct smcd_cdc_msg)``)
SMCD_CDC_HDR_LEN: Final = 32
#: the DMB sizes SMC-D uses: 16 KiB << k for k = 0..6 (``smc_compress_bufsize``/SMCD_DMBE_SIZES)
SMCD_DMB_SIZES: Final = tuple(16384 << k for k in range(7))
#: the data-ring lengths those DMBs give (DMB size minus the 32-byte CDC header): 16352..1048544
SMCD_DATA_RING_SIZES: Final = tuple(s - SMCD_CDC_HDR_LEN for s in SMCD_DMB_SIZES)
#: copy-mode sndbuf lengths (no header): powers of two 16 KiB .. 1 MiB
SMC_SNDBUF_SIZES: Final = SMCD_DMB_SIZES


class CursorError(PreconditionViolated):
    """A cursor function was called outside its precondition (names function, argument, value)."""


def _fail(func: str, arg: str, value: object, expected: str) -> CursorError:
    return CursorError(f"{func}: argument {arg}={value!r} violates the precondition: {expected}")


@dataclass(frozen=True, slots=True, kw_only=True)
class Cursor:
    """A host cursor ``(wrap, count)``: laps around the ring and the byte offset in it.

    Field ranges are the C types' ranges (``wrap`` u16, ``count`` u32); whether ``count`` is
    below the ring size is a precondition of the checked functions, not of the value itself (a
    peer may send any count).
    """

    #: laps around the ring (u16 in the kernel; fewer bits in exploration configs)
    wrap: int = 0
    #: byte offset in the ring (u32), intended range 0..size-1
    count: int = 0

    def __post_init__(self) -> None:
        if not 0 <= self.wrap <= 0xFFFF:
            raise _fail("Cursor", "wrap", self.wrap, "0 <= wrap <= 0xffff (u16)")
        if not 0 <= self.count < U32:
            raise _fail("Cursor", "count", self.count, "0 <= count < 2**32 (u32)")

    def __repr__(self) -> str:
        return f"Cursor(wrap={self.wrap}, count={self.count})"


#: the cursor every connection starts with (both fields zero, ``smc_conn_create`` memsets it)
ZERO: Final = Cursor(wrap=0, count=0)


def to_s32(value: int) -> int:
    """The C conversion of a 32-bit unsigned value to ``int`` (two's complement)."""
    value &= U32 - 1
    return value - U32 if value & 0x80000000 else value


def _check_raw(func: str, size: int, wrap_bits: int, *cursors: tuple[str, Cursor]) -> None:
    if not 0 <= size < U32:
        raise _fail(func, "size", size, "0 <= size < 2**32 (unsigned int)")
    if not 1 <= wrap_bits <= KERNEL_WRAP_BITS:
        raise _fail(func, "wrap_bits", wrap_bits, "1 <= wrap_bits <= 16")
    for name, cur in cursors:
        if cur.wrap >> wrap_bits:
            raise _fail(func, f"{name}.wrap", cur.wrap, f"wrap < 2**{wrap_bits}")


# --------------------------------------------------------------------------------------------
# Kernel-faithful functions (net/smc/smc_cdc.h): same result as the C code for every input
# --------------------------------------------------------------------------------------------


def smc_curs_add(
    size: int, curs: Cursor, value: int, *, wrap_bits: int = KERNEL_WRAP_BITS
) -> Cursor:
    """``smc_curs_add(int size, curs, int value)``: advance ``curs`` by ``value`` bytes.

    C semantics: ``curs->count += value`` in u32; if ``count >= size`` (compared as unsigned)
    then ``wrap++`` (u16, so 0xffff -> 0; modulo ``2**wrap_bits`` here) and one ``count -= size``
    (u32). Only one subtraction: the result is a proper cursor only if the old count was below
    ``size`` and ``value <= size``.
    """
    _check_raw("smc_curs_add", size, wrap_bits, ("curs", curs))
    if not -(1 << 31) <= value < (1 << 31):
        raise _fail("smc_curs_add", "value", value, "a C int (-2**31 <= value < 2**31)")
    count = (curs.count + value) % U32
    wrap = curs.wrap
    if count >= size:
        wrap = (wrap + 1) % (1 << wrap_bits)
        count = (count - size) % U32
    return Cursor(wrap=wrap, count=count)


def smc_curs_diff(size: int, old: Cursor, new: Cursor) -> int:
    """``smc_curs_diff(unsigned size, old, new)``: bytes from ``old`` to ``new`` (``old <= new``).

    Different wraps: ``max_t(int, 0, (size - old.count) + new.count)``; equal wraps:
    ``max_t(int, 0, new.count - old.count)``; the sums are u32 and converted to ``int``. Any wrap
    difference counts as exactly one lap; the result can reach ``2*size - 1``.
    """
    if old.wrap != new.wrap:
        return max(0, to_s32(size - old.count + new.count))
    return max(0, to_s32(new.count - old.count))


def smc_curs_comp(size: int, old: Cursor, new: Cursor) -> int:
    """``smc_curs_comp``: signed distance, negative when ``old`` is "after" ``new``.

    ``old`` is after ``new`` if ``old.wrap > new.wrap`` (a plain unsigned compare, so wrong right
    after 0xffff -> 0) or the wraps are equal and ``old.count > new.count``; then the result is
    ``-smc_curs_diff(size, new, old)``, else ``smc_curs_diff(size, old, new)``.
    """
    if old.wrap > new.wrap or (old.wrap == new.wrap and old.count > new.count):
        return -smc_curs_diff(size, new, old)
    return smc_curs_diff(size, old, new)


def smc_curs_diff_large(
    size: int, old: Cursor, new: Cursor, *, wrap_bits: int = KERNEL_WRAP_BITS
) -> int:
    """``smc_curs_diff_large``: bytes from ``old`` to ``new`` where the gap may exceed ``size``.

    ``old.wrap < new.wrap``: ``min_t(int, (size - old.count) + new.count + (new.wrap - old.wrap
    - 1) * size, size)``; ``old.wrap > new.wrap`` (taken as the 0xffff -> 0 switch): the same with
    ``(new.wrap + 0xffff - old.wrap)`` laps (``0xffff`` is ``2**wrap_bits - 1`` here); equal
    wraps: ``max_t(int, 0, new.count - old.count)``. The lap product and sums are u32 (the int
    lap count is converted to unsigned by the multiplication), and ``min_t(int, ..)`` compares
    the u32 sum converted to ``int``: with many laps of a large ring the sum overflows and the
    result can be below ``size`` or negative (see the proofs).
    """
    wrap_max = (1 << wrap_bits) - 1
    if old.wrap < new.wrap:
        laps = new.wrap - old.wrap - 1
        total = (size - old.count + new.count + laps * size) % U32
        return min(to_s32(total), to_s32(size))
    if old.wrap > new.wrap:
        laps = new.wrap + wrap_max - old.wrap
        total = (size - old.count + new.count + laps * size) % U32
        return min(to_s32(total), to_s32(size))
    return max(0, to_s32(new.count - old.count))


# --------------------------------------------------------------------------------------------
# Ring geometry and the checked wrappers
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class Ring:
    """The geometry the checked cursor functions need: ring length and wrap width.

    ``small_ok=False`` (kernel-faithful mode) accepts only the SMC-D data-ring sizes
    (:data:`SMCD_DATA_RING_SIZES`) and the copy-mode sndbuf sizes (:data:`SMC_SNDBUF_SIZES`) with
    the kernel's 16-bit wrap. ``small_ok=True`` (exploration mode) accepts any size from 1 to
    2**20 and any wrap width from 1 to 16 bits, so a model checker can use rings of 4..16 bytes
    and a 2-bit wrap counter; the formulas are the same.
    """

    #: ring length in bytes (the ``size`` argument of every smc_curs_* function)
    size: int
    #: width of the wrap counter in bits (16 in the kernel)
    wrap_bits: int = KERNEL_WRAP_BITS
    #: exploration mode: allow small rings and narrow wraps
    small_ok: bool = False

    def __post_init__(self) -> None:
        if self.small_ok:
            if not 1 <= self.size <= 1 << 20:
                raise _fail("Ring", "size", self.size, "1 <= size <= 2**20 in exploration mode")
            if not 1 <= self.wrap_bits <= KERNEL_WRAP_BITS:
                raise _fail("Ring", "wrap_bits", self.wrap_bits, "1 <= wrap_bits <= 16")
        else:
            if self.size not in SMCD_DATA_RING_SIZES and self.size not in SMC_SNDBUF_SIZES:
                raise _fail(
                    "Ring",
                    "size",
                    self.size,
                    "a valid SMC-D data ring (2**k*16KiB - 32, k=0..6) or sndbuf "
                    "(2**k*16KiB) length; set small_ok=True for exploration rings",
                )
            if self.wrap_bits != KERNEL_WRAP_BITS:
                raise _fail("Ring", "wrap_bits", self.wrap_bits, "16 in kernel-faithful mode")

    @property
    def wrap_mod(self) -> int:
        """Number of distinct wrap values (``2**wrap_bits``)."""
        return 1 << self.wrap_bits

    @property
    def period(self) -> int:
        """Number of distinct valid cursors (``2**wrap_bits * size``): positions repeat after it."""
        return self.size << self.wrap_bits


def _check_cursor(func: str, ring: Ring, name: str, cur: Cursor) -> None:
    if cur.count >= ring.size:
        raise _fail(func, f"{name}.count", cur.count, f"count < size={ring.size}")
    if cur.wrap >= ring.wrap_mod:
        raise _fail(func, f"{name}.wrap", cur.wrap, f"wrap < 2**{ring.wrap_bits}")


def curs_add(ring: Ring, curs: Cursor, value: int) -> Cursor:
    """:func:`smc_curs_add` under its precondition ``curs.count < size`` and ``0 <= value <= size``.

    Raises:
        CursorError: naming the argument that breaks the precondition.
    """
    _check_cursor("curs_add", ring, "curs", curs)
    if not 0 <= value <= ring.size:
        raise _fail("curs_add", "value", value, f"0 <= value <= size={ring.size}")
    return smc_curs_add(ring.size, curs, value, wrap_bits=ring.wrap_bits)


def curs_diff(ring: Ring, old: Cursor, new: Cursor) -> int:
    """:func:`smc_curs_diff` for cursors inside the ring (``count < size``, wrap in range).

    The kernel's further assumption "old <= new and the difference cannot exceed size" cannot be
    checked from the two cursors alone (that is the function's blind spot); see the proofs.
    """
    _check_cursor("curs_diff", ring, "old", old)
    _check_cursor("curs_diff", ring, "new", new)
    return smc_curs_diff(ring.size, old, new)


def curs_comp(ring: Ring, old: Cursor, new: Cursor) -> int:
    """:func:`smc_curs_comp` for cursors inside the ring."""
    _check_cursor("curs_comp", ring, "old", old)
    _check_cursor("curs_comp", ring, "new", new)
    return smc_curs_comp(ring.size, old, new)


def curs_diff_large(ring: Ring, old: Cursor, new: Cursor) -> int:
    """:func:`smc_curs_diff_large` for cursors inside the ring."""
    _check_cursor("curs_diff_large", ring, "old", old)
    _check_cursor("curs_diff_large", ring, "new", new)
    return smc_curs_diff_large(ring.size, old, new, wrap_bits=ring.wrap_bits)


# --------------------------------------------------------------------------------------------
# The abstract view: positions in the cursor period
# --------------------------------------------------------------------------------------------


def position(ring: Ring, curs: Cursor) -> int:
    """The abstract position ``wrap*size + count`` of a cursor, modulo the period.

    Valid cursors and positions ``0..period-1`` are in bijection; a stream of ``n`` bytes written
    from cursor 0 ends at position ``n mod period``. This is the Disruptor-style view the
    invariants use instead of the kernel's diff.
    """
    return (curs.wrap * ring.size + curs.count) % ring.period


def from_position(ring: Ring, pos: int) -> Cursor:
    """The cursor at abstract position ``pos`` (taken modulo the period)."""
    pos %= ring.period
    return Cursor(wrap=pos // ring.size, count=pos % ring.size)


def distance(ring: Ring, old: Cursor, new: Cursor) -> int:
    """Bytes from ``old`` forward to ``new`` in the abstract view (modulo the period).

    Equals :func:`smc_curs_diff` whenever the true gap is at most ``size`` and both cursors are
    inside the ring (a theorem in :mod:`~smcd_check.spec.proofs`).
    """
    return (position(ring, new) - position(ring, old)) % ring.period


def kernel_rmbe_update_limit(rmb_len: int, sock_min_sndbuf: int = 4608) -> int:
    """``rmbe_update_limit = max(rmb len / 10, SOCK_MIN_SNDBUF / 2)`` (net/smc/smc_core.c).

    ``SOCK_MIN_SNDBUF`` is 4608 on the usual x86_64 build (include/net/sock.h: ``2 *
    (2048 + ALIGN(sizeof(struct sk_buff), 1))``), an assumption, not measured for the project's
    kernel build.
    """
    return max(rmb_len // 10, sock_min_sndbuf // 2)
