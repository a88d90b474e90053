"""loopback-ism over shared memory: the device, shared by every process that opens it.

Theory of operation
-------------------
The kernel's loopback-ism (``net/smc/smc_loopback.c``, Linux 6.12.118) is one device per OS: a
hash table of DMB nodes keyed by a random 64-bit token, a bitmap of ``SMC_LO_MAX_DMBS`` slots,
a reference count per node (the owner's registration plus one per attached "ghost" sndbuf) and
``smcd->conn[sba_idx]``, the connection a signal on a slot goes to. Here the device lives in a
directory on ``/dev/shm`` so that separate processes share it:

* ``ctl``: a control file mapped by every user: a 64-byte header (magic, version, slot count,
  the device's GID and GID extension, the next host id) and one 32-byte entry per slot
  ``{u64 token, u32 len, u32 refcnt, u32 host, u32 flags, u32 gen, u32 pad}``. ``flags`` holds
  "in use" (the slot bit), "conn set" (``smcd->conn[sba_idx]`` is non-NULL) and "killed"
  (``conn->killed``, read by ``move_data``). All table changes happen under the device lock:
  a ``threading`` lock for the threads of one process plus ``flock`` on ``ctl`` across processes
  (the kernel's ``dmb_ht_lock`` / ``smcd->lock``).
* ``dmb-<token>``: one file per DMB, mapped with ``mmap`` by the owner and by every process that
  attaches it; the kernel's zeroed folio. The first 32 bytes are the peer's
  ``struct smcd_cdc_msg``, the data ring follows (:mod:`.layout`).
* ``irq-<host>``: each host's interrupt line (:mod:`.irq`).

With ``heap=True`` the same device keeps its table and DMBs in process memory and its interrupt
lines in queues: every host then lives in this process (threads), which is what the race
explorer and the quick tests use.

Operations follow 6.12.118 exactly: ``register_dmb`` takes the lowest free slot (-ENOSPC),
zeroed memory and a fresh unique token; ``unregister_dmb`` / ``detach_dmb`` drop one reference
and, **under the table lock**, remove the node when it reaches zero (the 6.12.114 stable fix
"dibs: fix use-after-free of dmb_node in loopback attach/detach/unregister"); ``attach_dmb``
takes a reference under the lock; ``move_data`` with ``sf = 0`` returns 0 at once (the bytes are
already in the peer DMB), with ``sf = 1`` it looks the token up (-EINVAL), checks
``offset + size`` against the DMB length (-EINVAL, the 6.12.97 backport), copies, and signals the
slot's owner, or returns -EPIPE *after the copy* when no live connection is set on the slot.
Released memory is filled with the slab poison byte 0x6B before it goes, so a write through a
stale mapping is visible to checkers.

Not modelled: DMA addresses, VLANs (loopback has none), ``-ENOMEM``, device removal waiting for
``dmb_cnt``, the v6.18 dibs variant.
"""

from __future__ import annotations

import contextlib
import fcntl
import mmap
import os
import random
import struct
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, ClassVar

from smcd_check.model.shm.irq import FifoIrqLine, FifoIrqSender, IrqLine, QueueIrqLine
from smcd_check.model.shm.layout import CdcImage
from smcd_check.model.shm.memory import POISON_FREE, Region
from smcd_check.model.shm.runtime import Runtime, ThreadRuntime

#: ``SMC_LO_MAX_DMBS``
SMC_LO_MAX_DMBS = 5000
#: ``SMC_LO_RESERVED_CHID``
SMC_LO_RESERVED_CHID = 0xFFFF

_MAGIC = b"SMCDLOSH"
_VERSION = 1
_HDR = struct.Struct("=8sIIQQI28x")
_SLOT = struct.Struct("=QIIIIII")
assert _HDR.size == 64 and _SLOT.size == 32

F_INUSE = 1
F_CONN_SET = 2
F_KILLED = 4


class DeviceOpError(Exception):
    """A device operation failed with a kernel errno (``errno_name``)."""

    errno_name: ClassVar[str] = "EIO"

    def __str__(self) -> str:
        return f"{self.errno_name}: {super().__str__()}"


class InvalidArgument(DeviceOpError):
    errno_name = "EINVAL"


class NoSpace(DeviceOpError):
    errno_name = "ENOSPC"


class BrokenPipe(DeviceOpError):
    errno_name = "EPIPE"


class NotSupported(DeviceOpError):
    errno_name = "EOPNOTSUPP"


@dataclass(frozen=True, slots=True)
class SmcdDmb:
    """``struct smcd_dmb``: what register/attach return."""

    sba_idx: int
    dmb_tok: int
    dmb_len: int
    region: Region


@dataclass(frozen=True, slots=True)
class SlotInfo:
    """One table entry as plain values (snapshots)."""

    sba_idx: int
    token: int
    len: int
    refcnt: int
    host: int
    conn_set: bool
    killed: bool


class _DevLock:
    """Threads of this process (runtime lock) and other processes (flock on ``ctl``)."""

    def __init__(self, inner: Any, fd: int | None) -> None:
        self.inner = inner
        self.fd = fd

    def __enter__(self) -> None:
        self.inner.acquire()
        if self.fd is not None:
            fcntl.flock(self.fd, fcntl.LOCK_EX)

    def __exit__(self, *exc: object) -> None:
        if self.fd is not None:
            fcntl.flock(self.fd, fcntl.LOCK_UN)
        self.inner.release()


class ShmLoopbackIsm:
    """The loopback-ism device (one handle per process; see the module docstring).

    Use :meth:`create` for a new device directory, :meth:`open` to join one from another
    process, or ``ShmLoopbackIsm(heap=True)`` for an in-process device.

    Args:
        rt: the runtime (default: real threads).
        heap: keep everything in this process.
        path: the device directory (file-backed devices).
        max_dmbs: number of slots (only when creating).
        seed: seed of this handle's token generator (tokens stay unique across handles: the
            table is checked under the lock).
        nocopy: v6.11+ merged-sndbuf support (``False``: v6.10 copy-only behaviour).
    """

    name: ClassVar[str] = "loopback-ism"

    def __init__(self, *, rt: Runtime | None = None, heap: bool = True, path: str | None = None,
                 max_dmbs: int = SMC_LO_MAX_DMBS, seed: int | None = None,
                 nocopy: bool = True, _create: bool = True) -> None:
        if not isinstance(max_dmbs, int) or max_dmbs < 1:
            raise InvalidArgument(f"max_dmbs={max_dmbs!r}: expected a positive int")
        self.rt: Runtime = rt or ThreadRuntime()
        self.heap = heap
        self.path = path
        self.nocopy = nocopy
        self._rng = random.Random(seed)
        self._ctl_fd: int | None = None
        self._regions: dict[int, Region] = {}  # token -> this process's mapping
        self._region_refs: dict[int, int] = {}
        self._lines: dict[int, QueueIrqLine] = {}  # heap mode: every host's line
        self._graveyard: dict[int, Region] = {}
        self._cold: dict[int, Region] = {}  # mapped, no reference held (move_data targets)
        self._sender = FifoIrqSender()
        self._irq_paths: dict[int, str] = {}
        size = _HDR.size + _SLOT.size * max_dmbs
        if heap:
            self._ctl: mmap.mmap | bytearray = bytearray(size)
        else:
            assert path is not None
            ctl_path = os.path.join(path, "ctl")
            if _create:
                fd = os.open(ctl_path, os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o600)
                os.ftruncate(fd, size)
            else:
                fd = os.open(ctl_path, os.O_RDWR)
            self._ctl_fd = fd
            self._ctl = mmap.mmap(fd, os.fstat(fd).st_size)
        self._lock = _DevLock(self.rt.lock("device"), self._ctl_fd)
        if _create:
            uuid = self._rng.getrandbits(128).to_bytes(16, "little")
            gid = int.from_bytes(uuid[:8], "little")
            gid_ext = int.from_bytes(uuid[8:], "little")
            _HDR.pack_into(self._ctl, 0, _MAGIC, _VERSION, max_dmbs, gid, gid_ext, 1)
        magic, version, self.max_dmbs, self.gid, self.gid_ext, _ = _HDR.unpack_from(self._ctl, 0)
        if magic != _MAGIC or version != _VERSION:
            raise InvalidArgument(f"{path}: not a loopback-ism shm device (magic {magic!r})")
        self.chid = SMC_LO_RESERVED_CHID
        # fast views for scans: slot i's token is u64 item 8 + 4i, its flags u32 item 21 + 8i
        self._u64 = memoryview(self._ctl).cast("B")[: _HDR.size + _SLOT.size * self.max_dmbs]
        self._u64 = self._u64.cast("Q")
        self._u32 = memoryview(self._ctl).cast("B")[: _HDR.size + _SLOT.size * self.max_dmbs]
        self._u32 = self._u32.cast("I")
        self._tok_cache: dict[int, int] = {}

    # ------------------------------------------------------------------ construction
    @classmethod
    def create(cls, *, directory: str | None = None, max_dmbs: int = SMC_LO_MAX_DMBS,
               seed: int | None = None, nocopy: bool = True,
               rt: Runtime | None = None) -> ShmLoopbackIsm:
        """A new file-backed device in a fresh directory under ``/dev/shm`` (or ``directory``)."""
        base = directory or ("/dev/shm" if os.path.isdir("/dev/shm") else None)
        path = tempfile.mkdtemp(prefix="smcd-lo-", dir=base)
        return cls(rt=rt, heap=False, path=path, max_dmbs=max_dmbs, seed=seed, nocopy=nocopy)

    @classmethod
    def open(cls, path: str, *, seed: int | None = None, nocopy: bool = True,
             rt: Runtime | None = None) -> ShmLoopbackIsm:
        """Join the device in ``path`` (created by :meth:`create` in another process)."""
        return cls(rt=rt, heap=False, path=path, seed=seed, nocopy=nocopy, _create=False)

    def close(self, *, remove: bool = False) -> None:
        """Drop this handle's mappings; ``remove`` deletes the device directory too."""
        self._sender.close()
        for table in (self._regions, self._cold):
            for region in table.values():
                region.close()
            table.clear()
        if not self.heap:
            assert self._ctl_fd is not None and isinstance(self._ctl, mmap.mmap)
            self._u64.release()
            self._u32.release()
            self._ctl.close()
            os.close(self._ctl_fd)
            if remove and self.path:
                for name in os.listdir(self.path):
                    with contextlib.suppress(FileNotFoundError):
                        os.unlink(os.path.join(self.path, name))
                with contextlib.suppress(OSError):
                    os.rmdir(self.path)

    # ------------------------------------------------------------------ identity
    def get_local_gid(self) -> tuple[int, int]:
        return self.gid, self.gid_ext

    def get_chid(self) -> int:
        return self.chid

    def support_dmb_nocopy(self) -> bool:
        return self.nocopy

    def query_remote_gid(self, gid: int, gid_ext: int) -> bool:
        """``smc_lo_query_rgid``: only this device's own GID is reachable."""
        return (gid, gid_ext) == (self.gid, self.gid_ext)

    # ------------------------------------------------------------------ hosts / interrupts
    def add_host(self) -> tuple[int, IrqLine]:
        """A new host id on this device and its interrupt line (read end)."""
        with self._lock:
            hdr = list(_HDR.unpack_from(self._ctl, 0))
            host = hdr[5]
            hdr[5] = host + 1
            _HDR.pack_into(self._ctl, 0, *hdr)
        if self.heap:
            line = QueueIrqLine(self.rt, f"host{host}")
            self._lines[host] = line
            return host, line
        assert self.path is not None
        return host, FifoIrqLine(os.path.join(self.path, f"irq-{host}"))

    def raise_irq(self, host: int, item: int) -> bool:
        """Signal ``item`` (a slot) on ``host``'s line; ``False`` when that host is gone."""
        if self.rt.tracing:
            self.rt.point(f"raise irq host{host} slot{item}", ("irq", host), True)
        if self.heap:
            line = self._lines.get(host)
            if line is None:
                return False
            line.put(item)
            return True
        path = self._irq_paths.get(host)
        if path is None:
            assert self.path is not None
            path = self._irq_paths[host] = os.path.join(self.path, f"irq-{host}")
        return self._sender.raise_irq(path, item)

    def remove_host(self, host: int) -> None:
        self._lines.pop(host, None)

    # ------------------------------------------------------------------ the table
    @contextlib.contextmanager
    def locked(self) -> Iterator[None]:
        with self._lock:
            yield

    def _slot(self, idx: int) -> list[int]:
        return list(_SLOT.unpack_from(self._ctl, _HDR.size + _SLOT.size * idx))

    def _put_slot(self, idx: int, entry: list[int]) -> None:
        _SLOT.pack_into(self._ctl, _HDR.size + _SLOT.size * idx, *entry)

    def _find(self, token: int) -> int:
        """Slot of the live node with ``token`` or -1 (caller holds the lock)."""
        if not isinstance(token, int) or isinstance(token, bool):
            return -1
        u64, u32 = self._u64, self._u32
        idx = self._tok_cache.get(token, -1)
        if idx >= 0 and u64[8 + 4 * idx] == token and u32[21 + 8 * idx] & F_INUSE:
            return idx
        for idx in range(self.max_dmbs):
            if u64[8 + 4 * idx] == token and u32[21 + 8 * idx] & F_INUSE:
                self._tok_cache[token] = idx
                return idx
        return -1

    def _lookup(self, token: int, op: str) -> tuple[int, list[int]]:
        idx = self._find(token)
        if idx < 0:
            shown = f"{token:#018x}" if isinstance(token, int) else repr(token)
            raise InvalidArgument(f"{op}: unknown DMB token {shown}")
        return idx, self._slot(idx)

    def snapshot(self) -> tuple[SlotInfo, ...]:
        """Every live node (plain values), sorted by slot."""
        out = []
        u32 = self._u32
        for idx in range(self.max_dmbs):
            if not u32[21 + 8 * idx] & F_INUSE:
                continue
            tok, ln, ref, host, flags, _gen, _ = self._slot(idx)
            if flags & F_INUSE:
                out.append(SlotInfo(idx, tok, ln, ref, host, bool(flags & F_CONN_SET),
                                    bool(flags & F_KILLED)))
        return tuple(out)

    def lookup(self, token: int) -> SlotInfo | None:
        with self._lock:
            idx = self._find(token)
            if idx < 0:
                return None
            tok, ln, ref, host, flags, _gen, _ = self._slot(idx)
            return SlotInfo(idx, tok, ln, ref, host, bool(flags & F_CONN_SET),
                            bool(flags & F_KILLED))

    @property
    def dmb_cnt(self) -> int:
        return len(self.snapshot())

    # ------------------------------------------------------------------ memory
    def _map(self, token: int, length: int, create: bool, idx: int) -> Region:
        region = self._regions.get(token)
        if region is not None:
            self._region_refs[token] += 1
            return region
        region = self._cold.pop(token, None)
        if region is not None:
            self._regions[token] = region
            self._region_refs[token] = 1
            return region
        if self.heap and not create and token in self._graveyard:
            # a stale reference to released memory (only a buggy caller gets here)
            region = self._graveyard[token]
            self._regions[token] = region
            self._region_refs[token] = 1
            return region
        if self.heap:
            buf: mmap.mmap | bytearray = bytearray(length)
        else:
            assert self.path is not None
            fpath = os.path.join(self.path, f"dmb-{token:016x}")
            flags = os.O_RDWR | (os.O_CREAT | os.O_EXCL if create else 0)
            fd = os.open(fpath, flags, 0o600)
            try:
                if create:
                    os.ftruncate(fd, length)  # tmpfs pages read as zero: the zeroed folio
                buf = mmap.mmap(fd, length)
            finally:
                os.close(fd)
        region = Region(self.rt, buf, f"dmb{idx}", token)
        self._regions[token] = region
        self._region_refs[token] = 1
        return region

    def _unmap(self, token: int) -> None:
        refs = self._region_refs.get(token, 0) - 1
        if refs > 0:
            self._region_refs[token] = refs
            return
        self._region_refs.pop(token, None)
        region = self._regions.pop(token, None)
        if region is not None and not self.heap:
            # keep the mapping: move_data into a peer DMB would otherwise map it every time
            self._cold[token] = region

    def _release(self, idx: int, token: int) -> None:
        """The last reference is gone: poison the memory and let it go (``smc_lo_free_dmb``)."""
        region = self._regions.get(token)
        if region is not None:
            region.fill(POISON_FREE)
            region.released = True
            if self.heap:
                self._graveyard[token] = region
        if self.rt.observing:
            self.rt.observe("dmb_released", token=token, sba_idx=idx, region=region)
        if not self.heap:
            assert self.path is not None
            with contextlib.suppress(FileNotFoundError):
                os.unlink(os.path.join(self.path, f"dmb-{token:016x}"))
        # this process's mapping goes too (stale handles elsewhere still point at it)
        self._region_refs.pop(token, None)
        for table in (self._regions, self._cold):
            gone = table.pop(token, None)
            if gone is not None and not self.heap:
                gone.close()

    # ------------------------------------------------------------------ DMB ops
    def register_dmb(self, dmb_len: int, host: int = 0) -> SmcdDmb:
        """``smc_lo_register_dmb`` (raises NoSpace / InvalidArgument)."""
        if not isinstance(dmb_len, int) or isinstance(dmb_len, bool) or dmb_len <= 0:
            raise InvalidArgument(f"register_dmb: dmb_len={dmb_len!r}, expected an int > 0")
        if dmb_len % 8:
            raise InvalidArgument(f"register_dmb: dmb_len={dmb_len} is not a multiple of 8")
        with self._lock:
            u32 = self._u32
            idx = next((i for i in range(self.max_dmbs) if not u32[21 + 8 * i] & F_INUSE), -1)
            if idx < 0:
                raise NoSpace(f"register_dmb: all {self.max_dmbs} DMB slots are in use")
            while True:
                token = self._rng.getrandbits(64)
                if self._find(token) < 0:
                    break
            region = self._map(token, dmb_len, True, idx)
            gen = self._slot(idx)[5] + 1
            self._put_slot(idx, [token, dmb_len, 1, host, F_INUSE, gen, 0])
        if self.rt.observing:
            self.rt.observe("dmb_registered", token=token, sba_idx=idx, region=region)
        return SmcdDmb(idx, token, dmb_len, region)

    def unregister_dmb(self, token: int) -> None:
        """``smc_lo_unregister_dmb``: drop the owner's reference, remove at zero (one lock)."""
        with self._lock:
            idx, entry = self._lookup(token, "unregister_dmb")
            entry[2] -= 1
            last = entry[2] == 0
            if last:
                entry[4] = 0
            self._put_slot(idx, entry)
        if self.rt.observing:
            self.rt.observe("dmb_put", token=token, refcnt=entry[2], op="unregister")
        if last:
            self._release(idx, token)
        else:
            self._unmap(token)

    def attach_dmb(self, token: int) -> SmcdDmb:
        """``smc_lo_attach_dmb``: a ghost-sndbuf mapping of the same memory; refcount + 1."""
        if not self.nocopy:
            raise NotSupported("attach_dmb: device has no nocopy (merged sndbuf) support")
        with self._lock:
            idx, entry = self._lookup(token, "attach_dmb")
            entry[2] += 1
            self._put_slot(idx, entry)
            region = self._map(token, entry[1], False, idx)
        if self.rt.observing:
            self.rt.observe("dmb_get", token=token, refcnt=entry[2], op="attach")
        return SmcdDmb(idx, token, entry[1], region)

    def detach_dmb(self, token: int) -> None:
        """``smc_lo_detach_dmb``: drop an attached reference, remove at zero (one lock)."""
        if not self.nocopy:
            raise NotSupported("detach_dmb: device has no nocopy (merged sndbuf) support")
        with self._lock:
            idx, entry = self._lookup(token, "detach_dmb")
            entry[2] -= 1
            last = entry[2] == 0
            if last:
                entry[4] = 0
            self._put_slot(idx, entry)
        if self.rt.observing:
            self.rt.observe("dmb_put", token=token, refcnt=entry[2], op="detach")
        if last:
            self._release(idx, token)
        else:
            self._unmap(token)

    def move_data(self, dmb_tok: int, idx: int, sf: bool, offset: int, data: Any) -> int:
        """``smc_lo_move_data`` (returns 0; raises InvalidArgument or BrokenPipe).

        Lookup, bounds check and copy happen under the table lock (the kernel's read lock);
        the receiving connection is then read without it, as ``smcd->conn[]`` is in the kernel.
        """
        if self.nocopy and not sf:
            return 0
        size = len(data)
        with self._lock:
            slot, entry = self._lookup(dmb_tok, "move_data")
            if offset < 0 or offset + size > entry[1]:
                raise InvalidArgument(
                    f"move_data: offset={offset} + size={size} exceeds dmb len={entry[1]}")
            region = self._regions.get(dmb_tok) or self._cold.get(dmb_tok)
            if region is None:
                region = self._map(dmb_tok, entry[1], False, slot)
                self._unmap(dmb_tok)  # keeps it mapped (cold) for the next call
            if isinstance(data, CdcImage):
                region.write_cdc(offset, data)
            else:
                region.write(offset, data, "move")
        if sf:
            if self.rt.tracing:
                self.rt.point(f"read conn[{slot}]", ("table", slot), False)
            flags = self._u32[21 + 8 * slot]
            live = flags & F_INUSE and self._u64[8 + 4 * slot] == dmb_tok
            conn_ok = live and flags & F_CONN_SET and not flags & F_KILLED
            host = self._u32[20 + 8 * slot]
            if not conn_ok or not self.raise_irq(host, slot):
                raise BrokenPipe(f"move_data: no live connection on slot {slot} to signal")
        return 0

    def read_dmb(self, token: int, offset: int, size: int) -> bytes:
        """Read DMB memory as its owner sees it (tests and the conformance target)."""
        with self._lock:
            slot, entry = self._lookup(token, "read_dmb")
            if offset < 0 or size < 0 or offset + size > entry[1]:
                raise InvalidArgument(f"read_dmb: offset={offset} size={size} outside the DMB")
            region = self._map(token, entry[1], False, slot)
        try:
            return region.peek(offset, size)
        finally:
            self._unmap(token)

    # ------------------------------------------------------------------ smcd->conn[]
    def set_conn(self, sba_idx: int, token: int, host: int) -> None:
        """``smc_ism_set_conn``: signals on the slot go to ``host`` (its local conn table)."""
        with self._lock:
            entry = self._slot(sba_idx)
            if entry[0] == token and entry[4] & F_INUSE:
                entry[3] = host
                entry[4] = (entry[4] | F_CONN_SET) & ~F_KILLED
                self._put_slot(sba_idx, entry)

    def unset_conn(self, sba_idx: int, token: int) -> None:
        """``smc_ism_unset_conn``."""
        with self._lock:
            entry = self._slot(sba_idx)
            if entry[0] == token:
                entry[4] &= ~(F_CONN_SET | F_KILLED)
                self._put_slot(sba_idx, entry)

    def set_killed(self, sba_idx: int, token: int) -> None:
        """Publish ``conn->killed`` for ``move_data``'s check."""
        with self._lock:
            entry = self._slot(sba_idx)
            if entry[0] == token:
                entry[4] |= F_KILLED
                self._put_slot(sba_idx, entry)

