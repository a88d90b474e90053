"""Shared memory regions (a DMB, or a copy-mode sndbuf) and how cursors are stored in them.

A :class:`Region` wraps a writable buffer: an ``mmap`` of a file in the device's directory on
``/dev/shm`` (real shared memory, mapped by every process that uses the DMB), or a ``bytearray``
(the race explorer and the in-process tests, where only interleavings matter, not the medium).

Cursor words
------------
The kernel writes and reads each 8-byte ``union smcd_cdc_cursor`` with one aligned 64-bit access
(``atomic64_set`` / ``atomic64_read``). Python promises nothing of the kind, so this is what the
implementation does and why it is atomic here:

* the region is viewed as an array of unsigned 64-bit items (``memoryview.cast("Q")``) and a
  cursor is read or written as **one item** (``q[off // 8]``). The offset is a multiple of 8 and
  the buffer starts page-aligned (mmap) or malloc-aligned (bytearray, 16 bytes on glibc), so the
  access is aligned;
* CPython's memoryview item setter and getter for ``Q`` copy the item with a fixed-size
  ``memcpy(ptr, &x, 8)``, which GCC and Clang compile to a single 8-byte ``mov`` on x86-64;
  aligned 8-byte moves are atomic on x86-64 (Intel SDM vol. 3A 8.1.1), so a reader in another
  process never sees half a cursor. ``struct.pack_into("<Q", ...)`` would *not* do: the
  little-endian packer stores byte by byte. ``bench/shm_vs_tcp.py --torn`` checks both claims
  on this machine (a reader process hammering a word another process rewrites).
* Ordering: x86-64 keeps stores in program order (TSO), so data written before a cursor is
  visible before the cursor. On weakly ordered CPUs (arm64) this needs a release/acquire pair
  Python does not expose; there the notification (a FIFO write/read, i.e. a syscall pair with the
  kernel's locking) is what orders a reader that waited for it, and a reader that polls without
  waiting could see a cursor before its data. This is a limit of the implementation, stated.

Within one process the GIL serialises the item access anyway; the argument above is for the
cross-process case.
"""

from __future__ import annotations

import mmap
from typing import Any

from smcd_check.model.shm.layout import CDC_CONS_OFF, CDC_PROD_OFF, CdcImage
from smcd_check.model.shm.runtime import Runtime

#: byte written over released memory (the slab allocator's POISON_FREE)
POISON_FREE = 0x6B


class Region:
    """A DMB (or sndbuf) mapping.

    Args:
        rt: the runtime (yield points and observations).
        buf: a writable buffer whose length is a multiple of 8.
        name: label for traces (``dmb:<slot>``).
        token: the DMB token (0 for a plain sndbuf).
        owner: label of whoever allocated it (for traces).
    """

    def __init__(self, rt: Runtime, buf: mmap.mmap | bytearray, name: str, token: int = 0,
                 owner: str = "") -> None:
        if len(buf) % 8:
            raise ValueError(f"region {name}: length {len(buf)} is not a multiple of 8")
        self.rt = rt
        self.buf = buf
        self.mv = memoryview(buf)
        self.q = self.mv.cast("Q")
        self.name = name
        self.token = token
        self.owner = owner
        self.size = len(buf)
        self.released = False
        self.tracing = rt.tracing
        self.observing = rt.observing

    # -------------------------------------------------------------- cursor words
    def load_word(self, off: int, what: str = "") -> int:
        """One aligned 8-byte load (``atomic64_read``)."""
        if self.tracing:
            self.rt.point(f"load {self.name}+{off} {what}".rstrip(), (self, off), False)
        if self.observing:
            self.rt.observe("mem_read", region=self, off=off, n=8, what=what)
        return int(self.q[off >> 3])

    def store_word(self, off: int, word: int, what: str = "") -> None:
        """One aligned 8-byte store (``atomic64_set``)."""
        if self.tracing:
            self.rt.point(f"store {self.name}+{off} {what}".rstrip(), (self, off), True)
        self.q[off >> 3] = word
        if self.observing:
            self.rt.observe("mem_write", region=self, off=off, n=8, what=what)

    def write_cdc(self, off: int, image: CdcImage) -> None:
        """A CDC header: the type byte, then prod and cons as single 8-byte stores."""
        if self.tracing:
            self.rt.point(f"write {self.name}+{off}[1] cdc type", (self, off), True)
        self.mv[off] = image.type
        self.store_word(off + CDC_PROD_OFF, image.prod, "cdc prod")
        self.store_word(off + CDC_CONS_OFF, image.cons, "cdc cons")

    # -------------------------------------------------------------- bytes
    def write(self, off: int, data: Any, what: str = "data") -> None:
        """Copy ``data`` to ``off`` (memcpy)."""
        n = len(data)
        if self.tracing:
            self.rt.point(f"write {self.name}+{off}[{n}] {what}", (self, "bytes"), True)
        self.mv[off:off + n] = data
        if self.observing:
            self.rt.observe("mem_write", region=self, off=off, n=n, what=what)

    def read(self, off: int, n: int, what: str = "data") -> bytes:
        """Copy ``n`` bytes out of ``off``."""
        if self.tracing:
            self.rt.point(f"read {self.name}+{off}[{n}] {what}", (self, "bytes"), False)
        if self.observing:
            self.rt.observe("mem_read", region=self, off=off, n=n, what=what)
        return bytes(self.mv[off:off + n])

    def read_into(self, off: int, dst: memoryview, what: str = "data") -> None:
        """Copy ``len(dst)`` bytes out of ``off`` into ``dst`` (no intermediate object)."""
        n = len(dst)
        if self.tracing:
            self.rt.point(f"read {self.name}+{off}[{n}] {what}", (self, "bytes"), False)
        if self.observing:
            self.rt.observe("mem_read", region=self, off=off, n=n, what=what)
        dst[:] = self.mv[off:off + n]

    def fill(self, value: int) -> None:
        """Set every byte (zeroing on reuse, poisoning on release)."""
        self.rt.point(f"fill {self.name}", (self, "bytes"), True)
        self.mv[:] = bytes([value]) * self.size

    def peek(self, off: int, n: int) -> bytes:
        """Read without a yield point (snapshots and checkers only)."""
        return bytes(self.mv[off:off + n])

    def peek_word(self, off: int) -> int:
        return int(self.q[off >> 3])

    def close(self) -> None:
        """Drop this process's mapping (file-backed regions)."""
        if isinstance(self.buf, mmap.mmap):
            self.q.release()
            self.mv.release()
            self.buf.close()

    def __repr__(self) -> str:
        return f"<Region {self.name} token={self.token:#x} size={self.size}>"
