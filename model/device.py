"""A loopback-ism device that moves real bytes (Linux 6.12.118 ``net/smc/smc_loopback.c``).

Theory of operation
-------------------
``LoopbackIsm`` is the software ISM device of Linux v6.11..v6.17 (6.12.118 is the reference):
one per "OS instance", CHID 0xFFFF, a random 128-bit GID split into ``gid`` and ``gid_ext``, a
hash table of DMB nodes keyed by a random 64-bit token, a bitmap of ``SMC_LO_MAX_DMBS`` slots
(``sba_idx``) and the ``smcd->conn[]`` table that routes a signal to the receiving connection.

* ``register_dmb`` takes the lowest free slot (-ENOSPC when none), allocates zeroed memory (a
  ``bytearray``) and draws tokens until one is unused.  The node starts with refcount 1.
* ``attach_dmb`` (merged "nocopy" mode) hands out a ``memoryview`` of the *same* memory (the
  peer's "ghost sndbuf") and takes a reference; ``detach_dmb`` and ``unregister_dmb`` drop one.
  Only when the count reaches 0 does the node leave the table, its slot become free and its memory
  get released: until then the token still resolves (``move_data`` and ``attach_dmb`` succeed),
  exactly as in 6.12.118.  Released memory is filled with the slab poison byte 0x6B and kept in a
  graveyard so :meth:`LoopbackIsm.check_poison` can tell whether anybody wrote through a stale view
  (a use after free that Python itself would not notice).
* ``move_data(token, idx, sf, offset, data)``: on a nocopy device a call with ``sf = 0`` returns 0
  at once (the bytes are already in the peer DMB); otherwise the token is looked up (-EINVAL),
  ``offset + len(data)`` is checked against the DMB length (-EINVAL, the 6.12.97+ backport), the
  bytes are copied, and with ``sf = 1`` the receiving connection's rx tasklet is scheduled, or
  -EPIPE is returned *after the copy* when ``conn[sba_idx]`` is unset or killed.
* Tasklets: ``move_data`` with ``sf`` only queues the connection (``tasklet_schedule``; a queued
  tasklet is not queued twice, so CDC writes coalesce as in the kernel).  Queued tasklets run
  when the outermost :meth:`LoopbackIsm.local_bh_disable` section ends (every public connection
  call is such a section, and so is a ``move_data`` called from outside one), like softirqs on
  ``local_bh_enable``.  With ``sync_tasklets=False`` nothing runs until :meth:`run_pending`.

Errors are the kernel's negative return codes turned into named exceptions
(:class:`InvalidArgument` = -EINVAL, :class:`NoSpace` = -ENOSPC, :class:`BrokenPipe` = -EPIPE,
:class:`NetUnreachable` = -ENETUNREACH, :class:`NotSupported` = -EOPNOTSUPP); each carries
``errno_name`` and ``rc``.  A rejected call (EINVAL, ENOSPC, ...) leaves the device unchanged.  The
one exception is the kernel's own: -EPIPE from a signalled ``move_data`` comes after the copy.

Not modelled: DMA addresses (always ``SMC_DMA_ADDR_INVALID``), the 4096-bucket hash (a dict),
-ENOMEM (memory never runs out), VLAN ops (loopback has none), device removal waiting for
``dmb_cnt``, locking (the model is single-threaded; tasklets are the only deferred work), the v6.18
"dibs" variant (every call copies, no -EPIPE).
"""

from __future__ import annotations

import errno as _errno
import random
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, ClassVar, Protocol

from smcd_check.model.errors import ModelError

#: slots of the loopback device (``SMC_LO_MAX_DMBS``, net/smc/smc_loopback.h)
SMC_LO_MAX_DMBS = 5000
#: CHID reserved for loopback-ism (``SMC_LO_RESERVED_CHID``)
SMC_LO_RESERVED_CHID = 0xFFFF
#: loopback sets every DMB's dma_addr to all-ones so smc_ism_unregister_dmb does not skip it
SMC_DMA_ADDR_INVALID = (1 << 64) - 1
#: byte written over released memory (the slab allocator's POISON_FREE)
POISON_FREE = 0x6B
#: bound on tasklet runs per softirq pass: a livelock in a mutant must not hang a test
MAX_TASKLET_RUNS = 1_000_000


# --------------------------------------------------------------------------------------------
# errors: the kernel's negative return codes as named exceptions


class DeviceOpError(ModelError):
    """A device (or socket) operation failed with a kernel errno.

    Attributes:
        errno_name: the errno's name, e.g. ``"EINVAL"``.
        rc: the kernel's return code (the negative errno value).
    """

    errno_name: ClassVar[str] = "EIO"

    @property
    def rc(self) -> int:
        return -int(getattr(_errno, self.errno_name))

    def __str__(self) -> str:
        return f"{self.errno_name}: {super().__str__()}"


class InvalidArgument(DeviceOpError):
    """-EINVAL: unknown token, offset/size past the DMB, bad argument."""

    errno_name = "EINVAL"


class NoSpace(DeviceOpError):
    """-ENOSPC: all ``max_dmbs`` slots are taken."""

    errno_name = "ENOSPC"


class BrokenPipe(DeviceOpError):
    """-EPIPE: the receiving connection is gone or killed (or the socket may not send)."""

    errno_name = "EPIPE"


class NetUnreachable(DeviceOpError):
    """-ENETUNREACH: query_remote_gid for a GID that is not this device's."""

    errno_name = "ENETUNREACH"


class NotSupported(DeviceOpError):
    """-EOPNOTSUPP: attach/detach on a device without nocopy support."""

    errno_name = "EOPNOTSUPP"


class OutOfBoundsWrite(ModelError):
    """A write past the end of a DMB, which v6.12.0 (no bounds check) would have done silently.

    Only raised with ``bounds_check=False``; the kernel would corrupt the memory after the DMB.
    """


class LivelockDetected(ModelError):
    """Tasklets kept rescheduling each other past ``MAX_TASKLET_RUNS`` (a model bug)."""


# --------------------------------------------------------------------------------------------
# data


class RxTasklet(Protocol):
    """What ``smcd->conn[sba_idx]`` points at: a connection with an rx tasklet."""

    killed: bool

    def _rx_tasklet(self) -> None: ...


@dataclass(frozen=True, slots=True, kw_only=True)
class SmcdGid:
    """``struct smcd_gid``: the 128-bit GID as two u64 halves."""

    gid: int
    gid_ext: int


@dataclass(eq=False, slots=True, kw_only=True)
class LoDmbNode:
    """``struct smc_lo_dmb_node``: one registered DMB, owned by the device."""

    token: int  #: random u64, unique among live nodes
    sba_idx: int  #: slot index in the device bitmap
    len: int  #: bytes of memory (the whole DMB, CDC header included)
    cpu_addr: bytearray  #: the memory
    refcnt: int  #: 1 for the owner + 1 per attached ghost sndbuf
    freed: bool = False  #: memory released (refcnt reached 0)


@dataclass(frozen=True, slots=True, kw_only=True)
class SmcdDmb:
    """``struct smcd_dmb`` as returned by register/attach: the caller's handle on a DMB."""

    sba_idx: int
    dmb_tok: int
    cpu_addr: memoryview  #: a view of the node's memory (shared, never a copy)
    dma_addr: int
    dmb_len: int


@dataclass(frozen=True, slots=True, kw_only=True)
class DmbInfo:
    """One live DMB node as seen by :meth:`LoopbackIsm.snapshot` (plain ints)."""

    token: int
    sba_idx: int
    len: int
    refcnt: int


@dataclass(frozen=True, slots=True, kw_only=True)
class DeviceSnapshot:
    """The device's observable state; equal snapshots mean nothing changed."""

    dmbs: tuple[DmbInfo, ...]  #: live nodes sorted by slot
    dmb_cnt: int  #: live nodes (the nocopy versions' ``dmb_cnt``)
    slots_used: int  #: set bits in the slot bitmap
    conns: tuple[int, ...]  #: slots whose ``smcd->conn[]`` entry is set
    pending_tasklets: int
    memory_digest: int  #: hash of every live DMB's bytes


@dataclass(slots=True)
class DeviceStats:
    """Counters (bytes and calls) for the benchmark and the copy-count tests."""

    move_data_calls: int = 0
    nocopy_skips: int = 0  #: sf = 0 calls answered at once by a nocopy device
    data_bytes_copied: int = 0  #: bytes copied by move_data with sf = 0
    cdc_bytes_copied: int = 0  #: bytes copied by move_data with sf = 1
    signals: int = 0
    tasklet_runs: int = 0
    registered: int = 0
    released: int = 0


# --------------------------------------------------------------------------------------------
# the device


class LoopbackIsm:
    """The loopback-ism device (``struct smc_lo_dev`` + its ``smcd_dev``).

    Args:
        seed: seed of the private ``random.Random`` used for the GID and DMB tokens.
        rng: use this generator instead (takes precedence over ``seed``).
        max_dmbs: number of slots (``SMC_LO_MAX_DMBS``).
        nocopy: ``True`` = v6.11+ loopback (merged sndbufs; sf = 0 moves are no-ops);
            ``False`` = v6.10 loopback (copy mode only, no attach/detach, no refcount).
        bounds_check: the 6.12.97+ ``move_data`` offset/size check (``False`` = v6.12.0).
        sync_tasklets: run queued rx tasklets when the outermost bh section ends.
        poison: keep released memory poisoned in a graveyard for :meth:`check_poison`.
    """

    name: ClassVar[str] = "loopback-ism"

    def __init__(
        self,
        *,
        seed: int | None = None,
        rng: random.Random | None = None,
        max_dmbs: int = SMC_LO_MAX_DMBS,
        nocopy: bool = True,
        bounds_check: bool = True,
        sync_tasklets: bool = True,
        poison: bool = True,
    ) -> None:
        if not isinstance(max_dmbs, int) or max_dmbs < 1:
            raise InvalidArgument(f"max_dmbs={max_dmbs!r}: expected a positive int")
        self._rng = rng if rng is not None else random.Random(seed)
        uuid = self._rng.getrandbits(128).to_bytes(16, "little")
        self.local_gid = SmcdGid(
            gid=int.from_bytes(uuid[:8], "little"), gid_ext=int.from_bytes(uuid[8:], "little")
        )
        self.chid = SMC_LO_RESERVED_CHID
        self.max_dmbs = max_dmbs
        self.nocopy = nocopy
        self.bounds_check = bounds_check
        self.sync_tasklets = sync_tasklets
        self.poison = poison
        self._dmb_ht: dict[int, LoDmbNode] = {}
        self._sba_idx_mask = bytearray(max_dmbs)  # one byte per slot bit
        self.conn: list[RxTasklet | None] = [None] * max_dmbs  # smcd->conn[]
        self.dmb_cnt = 0
        self.stats = DeviceStats()
        self._graveyard: list[LoDmbNode] = []
        self._pending: dict[int, RxTasklet] = {}  # id(conn) -> conn, in schedule order
        self._bh_depth = 0
        #: ``smcd->lgr_list`` (link groups findable for reuse) and ``smcd->lgr_cnt`` (link
        #: groups not yet freed); kept by :mod:`smcd_check.model.lgr`
        self.lgr_list: list[Any] = []
        self.lgr_cnt = 0

    # ---------------------------------------------------------------- identity ops

    def get_local_gid(self) -> SmcdGid:
        """``smc_lo_get_local_gid``."""
        return self.local_gid

    def get_chid(self) -> int:
        """``smc_lo_get_chid``: always ``SMC_LO_RESERVED_CHID`` (0xFFFF)."""
        return self.chid

    def supports_v2(self) -> bool:
        """``smc_lo_supports_v2``: loopback-ism acts as ISMv2."""
        return True

    def is_emulated(self) -> bool:
        """``smc_ism_is_emulated``: loopback-ism is (CHID 0xFF00..0xFFFF); its GID has gid_ext."""
        return self.chid >= 0xFF00

    def support_dmb_nocopy(self) -> bool:
        """``smc_lo_support_dmb_nocopy``: merged sndbufs supported (v6.11+)."""
        return self.nocopy

    def query_remote_gid(self, rgid: SmcdGid, vid_valid: int = 0, vid: int = 0) -> None:
        """``smc_lo_query_rgid``: succeeds only for this device's own GID.

        Raises:
            NetUnreachable: ``rgid`` differs from the local GID (gid or gid_ext).
        """
        if rgid != self.local_gid:
            raise NetUnreachable(
                f"query_remote_gid: gid={rgid.gid:#x} gid_ext={rgid.gid_ext:#x} is not "
                f"this device's gid={self.local_gid.gid:#x} gid_ext={self.local_gid.gid_ext:#x}"
            )

    # ---------------------------------------------------------------- DMB ops

    def register_dmb(self, dmb_len: int) -> SmcdDmb:
        """``smc_lo_register_dmb``: a zeroed DMB of ``dmb_len`` bytes in the lowest free slot.

        Raises:
            NoSpace: every slot is taken.
            InvalidArgument: ``dmb_len`` is not a positive int.
        """
        if not isinstance(dmb_len, int) or isinstance(dmb_len, bool) or dmb_len <= 0:
            raise InvalidArgument(f"register_dmb: dmb_len={dmb_len!r}, expected an int > 0")
        sba_idx = self._sba_idx_mask.find(0)
        if sba_idx < 0:
            raise NoSpace(f"register_dmb: all {self.max_dmbs} DMB slots are in use")
        token = self._new_token()
        node = LoDmbNode(
            token=token, sba_idx=sba_idx, len=dmb_len, cpu_addr=bytearray(dmb_len), refcnt=1
        )
        self._sba_idx_mask[sba_idx] = 1
        self._dmb_ht[token] = node
        self.dmb_cnt += 1
        self.stats.registered += 1
        return self._dmb_of(node)

    def unregister_dmb(self, dmb_tok: int) -> None:
        """``smc_lo_unregister_dmb``: drop the owner's reference; release at refcount 0.

        Raises:
            InvalidArgument: the token is not in the table (never registered, or released).
        """
        node = self._lookup(dmb_tok, "unregister_dmb")
        self._put_node(node)

    def attach_dmb(self, dmb_tok: int) -> SmcdDmb:
        """``smc_lo_attach_dmb``: a ghost-sndbuf handle on the same memory; refcount += 1.

        Raises:
            InvalidArgument: unknown token.
            NotSupported: the device has no nocopy support (v6.10).
        """
        if not self.nocopy:
            raise NotSupported("attach_dmb: device has no nocopy (merged sndbuf) support")
        node = self._lookup(dmb_tok, "attach_dmb")
        node.refcnt += 1
        return self._dmb_of(node)

    def detach_dmb(self, dmb_tok: int) -> None:
        """``smc_lo_detach_dmb``: drop an attached reference; release at refcount 0.

        Raises:
            InvalidArgument: unknown token.
            NotSupported: the device has no nocopy support (v6.10).
        """
        if not self.nocopy:
            raise NotSupported("detach_dmb: device has no nocopy (merged sndbuf) support")
        node = self._lookup(dmb_tok, "detach_dmb")
        self._put_node(node)

    def move_data(
        self, dmb_tok: int, idx: int, sf: bool, offset: int, data: bytes | bytearray | memoryview
    ) -> int:
        """``smc_lo_move_data``: copy ``data`` to ``offset`` of the DMB; signal if ``sf``.

        Returns:
            0 (the kernel's success code).

        Raises:
            InvalidArgument: unknown token, or ``offset + len(data)`` past the DMB (nothing
                copied).
            BrokenPipe: ``sf`` set and the receiving connection is gone or killed (the bytes
                *were* copied, as in the kernel).
        """
        self.stats.move_data_calls += 1
        if self.nocopy and not sf:
            self.stats.nocopy_skips += 1
            return 0
        node = self._lookup(dmb_tok, "move_data")
        size = len(data)
        if self.bounds_check and (offset < 0 or offset + size > node.len):
            raise InvalidArgument(
                f"move_data: offset={offset} + size={size} exceeds dmb len={node.len} "
                f"(token {dmb_tok:#018x})"
            )
        self._copy(node, offset, data)
        if sf:
            self.stats.cdc_bytes_copied += size
            conn = self.conn[node.sba_idx]
            if conn is None or conn.killed:
                raise BrokenPipe(
                    f"move_data: no live connection on slot {node.sba_idx} to signal "
                    f"(token {dmb_tok:#018x})"
                )
            self.stats.signals += 1
            with self.local_bh_disable():
                self.tasklet_schedule(conn)
        else:
            self.stats.data_bytes_copied += size
        return 0

    # ---------------------------------------------------------------- smcd->conn[] (smc_ism.c)

    def set_conn(self, sba_idx: int, conn: RxTasklet) -> None:
        """``smc_ism_set_conn``: signals on DMB slot ``sba_idx`` go to ``conn``."""
        self.conn[sba_idx] = conn

    def unset_conn(self, sba_idx: int) -> None:
        """``smc_ism_unset_conn``: signals on slot ``sba_idx`` now fail with -EPIPE."""
        self.conn[sba_idx] = None

    # ---------------------------------------------------------------- tasklets / softirq

    def tasklet_schedule(self, conn: RxTasklet) -> None:
        """Queue ``conn``'s rx tasklet (a queued tasklet is not queued twice)."""
        self._pending.setdefault(id(conn), conn)

    def tasklet_kill(self, conn: RxTasklet) -> None:
        """Drop ``conn``'s queued tasklet, if any."""
        self._pending.pop(id(conn), None)

    @contextmanager
    def local_bh_disable(self) -> Iterator[None]:
        """A section during which tasklets only queue; the outermost exit runs them."""
        self._bh_depth += 1
        try:
            yield
        finally:
            self._bh_depth -= 1
        if self._bh_depth == 0 and self.sync_tasklets:
            self.run_pending()

    def run_pending(self) -> int:
        """Run queued rx tasklets (and those they schedule) until none is left.

        Returns:
            the number of tasklets run.

        Raises:
            LivelockDetected: more than ``MAX_TASKLET_RUNS`` runs in one pass.
        """
        runs = 0
        self._bh_depth += 1
        try:
            while self._pending:
                key = next(iter(self._pending))
                conn = self._pending.pop(key)
                runs += 1
                if runs > MAX_TASKLET_RUNS:
                    raise LivelockDetected(f"more than {MAX_TASKLET_RUNS} tasklet runs")
                self.stats.tasklet_runs += 1
                conn._rx_tasklet()
        finally:
            self._bh_depth -= 1
        return runs

    @property
    def pending_tasklets(self) -> int:
        return len(self._pending)

    def run_tasklet(self, conn: RxTasklet) -> bool:
        """Run ``conn``'s queued rx tasklet now and no other (a driver forcing one
        interleaving step by step, with ``sync_tasklets=False``); False when none is queued."""
        if self._pending.pop(id(conn), None) is None:
            return False
        self._bh_depth += 1
        try:
            self.stats.tasklet_runs += 1
            conn._rx_tasklet()
        finally:
            self._bh_depth -= 1
        return True

    # ---------------------------------------------------------------- inspection

    def lookup(self, dmb_tok: int) -> DmbInfo | None:
        """The live node of ``dmb_tok`` (or ``None``): a read-only view for checkers."""
        node = self._dmb_ht.get(dmb_tok)
        if node is None:
            return None
        return DmbInfo(token=node.token, sba_idx=node.sba_idx, len=node.len, refcnt=node.refcnt)

    def snapshot(self) -> DeviceSnapshot:
        """The device's state as plain values (compare two to prove nothing changed)."""
        nodes = sorted(self._dmb_ht.values(), key=lambda n: n.sba_idx)
        return DeviceSnapshot(
            dmbs=tuple(
                DmbInfo(token=n.token, sba_idx=n.sba_idx, len=n.len, refcnt=n.refcnt) for n in nodes
            ),
            dmb_cnt=self.dmb_cnt,
            slots_used=self._sba_idx_mask.count(1),
            conns=tuple(i for i, c in enumerate(self.conn) if c is not None),
            pending_tasklets=len(self._pending),
            memory_digest=hash(tuple(bytes(n.cpu_addr) for n in nodes)),
        )

    def check_poison(self) -> list[int]:
        """Tokens of released DMBs whose poisoned memory was written after release.

        A non-empty result is a use after free: somebody kept a view (a ghost sndbuf) of a DMB
        whose last reference had gone, and wrote through it.
        """
        bad = []
        for node in self._graveyard:
            if node.cpu_addr.count(POISON_FREE) != node.len:
                bad.append(node.token)
        return bad

    # ---------------------------------------------------------------- internals

    def _new_token(self) -> int:
        while True:
            token = self._rng.getrandbits(64)
            if token not in self._dmb_ht:
                return token

    def _lookup(self, dmb_tok: int, op: str) -> LoDmbNode:
        node = self._dmb_ht.get(dmb_tok) if isinstance(dmb_tok, int) else None
        if node is None:
            raise InvalidArgument(f"{op}: unknown DMB token {dmb_tok!r}")
        return node

    @staticmethod
    def _dmb_of(node: LoDmbNode) -> SmcdDmb:
        return SmcdDmb(
            sba_idx=node.sba_idx,
            dmb_tok=node.token,
            cpu_addr=memoryview(node.cpu_addr),
            dma_addr=SMC_DMA_ADDR_INVALID,
            dmb_len=node.len,
        )

    def _copy(self, node: LoDmbNode, offset: int, data: bytes | bytearray | memoryview) -> None:
        if offset < 0 or offset + len(data) > len(node.cpu_addr):
            raise OutOfBoundsWrite(
                f"move_data: {len(data)} bytes at offset {offset} run past the DMB of {node.len} "
                f"bytes (token {node.token:#018x}); the kernel would corrupt memory here"
            )
        node.cpu_addr[offset : offset + len(data)] = data

    def _put_node(self, node: LoDmbNode) -> None:
        """Drop one reference (``refcount_dec_and_test``); release the node at 0."""
        node.refcnt -= 1
        if node.refcnt == 0:
            self._release(node)

    def _release(self, node: LoDmbNode) -> None:
        del self._dmb_ht[node.token]
        self._sba_idx_mask[node.sba_idx] = 0
        self.dmb_cnt -= 1
        self.stats.released += 1
        node.freed = True
        if self.poison:
            node.cpu_addr[:] = bytes([POISON_FREE]) * node.len
            self._graveyard.append(node)
        else:
            # the memory goes back to the allocator: nothing keeps it alive but stale views
            node.cpu_addr = bytearray()


__all__ = [
    "MAX_TASKLET_RUNS",
    "POISON_FREE",
    "SMC_DMA_ADDR_INVALID",
    "SMC_LO_MAX_DMBS",
    "SMC_LO_RESERVED_CHID",
    "BrokenPipe",
    "DeviceOpError",
    "DeviceSnapshot",
    "DeviceStats",
    "DmbInfo",
    "InvalidArgument",
    "LivelockDetected",
    "LoDmbNode",
    "LoopbackIsm",
    "NetUnreachable",
    "NoSpace",
    "NotSupported",
    "OutOfBoundsWrite",
    "RxTasklet",
    "SmcdDmb",
    "SmcdGid",
]
