"""Spec-target backend for the loopback-ism device (``device``, ``device-nocopy``).

Theory of operation
-------------------
The DMB table (tokens, slots, reference counts, who may still use the memory) is
:mod:`smcd_check.spec.lifecycle`'s: ``dev_register_dmb``, ``dev_unregister_dmb``,
``dev_attach_dmb``, ``dev_detach_dmb`` and ``dev_move_data`` (which tells whom a signal reaches)
on one host's device. The lifecycle spec abstracts DMB *contents* away, so this backend keeps one
byte array per live DMB beside the spec state, with the semantics of 6.12.118's
net/smc/smc_loopback.c (``smc_lo_move_data``) - these are kernel facts that the device cases
also pin:

* ``move_data`` with ``sf = 0`` returns 0 at once on a nocopy device (no lookup, no copy);
* with ``sf = 1``: unknown token -> ``EINVAL``; ``offset + size`` past the DMB -> ``EINVAL``
  without copying (the 6.12.97 stable backport of "dibs: loopback: validate offset and size in
  move_data()"); else copy, then signal the connection set for the DMB or ``EPIPE`` when there
  is none (the copy has happened).
* memory is zeroed at registration and released with the node (refcount 0).

Error mapping: ``UnknownToken`` -> ``EINVAL``, ``NoFreeSlot`` -> ``ENOSPC``. A second unregister
by the owner while peers are attached (``DoubleUnregister``) is a caller bug the spec refuses to
model; it is answered ``ENOTMODELLED`` (never compared). DMB sizes other than the SMC-D sizes
(16 KiB << k, k = 0..6) are ``ENOTMODELLED`` too.
"""

from __future__ import annotations

from typing import Any

from smcd_check.conformance.targets.adapter import Capability, Observation, Op

NOT_MODELLED = "ENOTMODELLED"
DMB_SIZES = {16384 << k: k for k in range(7)}


class DeviceBackend:
    """Device operations on :mod:`smcd_check.spec.lifecycle`'s DMB table (host 0)."""

    capabilities = frozenset({Capability.DEVICE, Capability.DEVICE_NOCOPY})
    ops = frozenset({"dev_register_dmb", "dev_unregister_dmb", "dev_attach_dmb",
                     "dev_detach_dmb", "dev_move_data", "dev_read_dmb"})

    def __init__(self, *, max_dmbs: int | None = None) -> None:
        from smcd_check.spec import lifecycle

        self.lc = lifecycle
        self.cfg = lifecycle.LifecycleConfig(
            n_hosts=1, emulated=True, merged=True, max_conns=0,
            max_dmbs=max_dmbs or lifecycle.SMC_LO_MAX_DMBS,
        )
        self.reset()

    def reset(self) -> None:
        self.state = self.lc.initial_state(self.cfg)
        self.memory: dict[int, bytearray] = {}
        # the kernel draws random tokens; never reusing a value keeps a stale token stale here
        # too (the spec's own allocator would hand out the lowest free value again)
        self._next_token = 1

    def _node(self, token: Any) -> Any:
        return self.lc.find_node(self.state, token) if isinstance(token, int) else None

    def _sync_memory(self) -> None:
        live = {n.token for n in self.state.nodes}
        for token in list(self.memory):
            if token not in live:
                del self.memory[token]

    def apply(self, op: Op) -> Observation:
        lc = self.lc
        a = op.kwargs()
        try:
            if op.name == "dev_register_dmb":
                size = a["size"]
                if size not in DMB_SIZES:
                    return Observation.failure(NOT_MODELLED, f"size={size!r}: not an SMC-D size")
                self.state, token, slot = lc.dev_register_dmb(
                    self.cfg, self.state, 0, DMB_SIZES[size], token=self._next_token)
                self._next_token += 1
                self.memory[token] = bytearray(size)
                return Observation.success({"token": token, "sba_idx": slot, "len": size})
            if op.name == "dev_unregister_dmb":
                self.state = lc.dev_unregister_dmb(self.cfg, self.state, a["token"])
                self._sync_memory()
                return Observation.success()
            if op.name == "dev_attach_dmb":
                self.state = lc.dev_attach_dmb(self.cfg, self.state, a["token"])
                node = self._node(a["token"])
                return Observation.success({"token": node.token, "sba_idx": node.sba_idx,
                                            "len": lc.dmb_bytes(node.size)})
            if op.name == "dev_detach_dmb":
                self.state = lc.dev_detach_dmb(self.cfg, self.state, a["token"])
                self._sync_memory()
                return Observation.success()
            if op.name == "dev_move_data":
                return self._move_data(a["token"], a["offset"], a["data"], a["signal"])
            if op.name == "dev_read_dmb":
                return self._read(a["token"], a["offset"], a["size"])
        except lc.UnknownToken as exc:
            return Observation.failure("EINVAL", str(exc))
        except lc.NoFreeSlot as exc:
            return Observation.failure("ENOSPC", str(exc))
        except lc.LifecycleError as exc:
            return Observation.failure(NOT_MODELLED, f"{type(exc).__name__}: {exc}")
        return Observation.failure(NOT_MODELLED, f"no device operation {op.name}")

    def _move_data(self, token: Any, offset: Any, data: Any, signal: Any) -> Observation:
        if not signal:
            return Observation.success()  # nocopy device: sf = 0 returns at once
        try:
            raw = bytes.fromhex(data)
        except (TypeError, ValueError):
            return Observation.failure("EINVAL", "data: expected a hex string")
        reached = self.lc.dev_move_data(self.cfg, self.state, token)  # UnknownToken -> EINVAL
        mem = self.memory[token]
        if not isinstance(offset, int) or offset < 0 or offset + len(raw) > len(mem):
            return Observation.failure("EINVAL", f"offset={offset} + size={len(raw)} exceeds "
                                                 f"dmb len={len(mem)}")
        mem[offset:offset + len(raw)] = raw
        if reached is None:
            return Observation.failure("EPIPE", "no live connection set for this DMB")
        return Observation.success()

    def _read(self, token: Any, offset: Any, size: Any) -> Observation:
        if self._node(token) is None:
            return Observation.failure("EINVAL", f"unknown DMB token {token!r}")
        mem = self.memory[token]
        if not (isinstance(offset, int) and isinstance(size, int) and offset >= 0 and size >= 0
                and offset + size <= len(mem)):
            return Observation.failure("EINVAL", f"offset={offset} size={size} outside the DMB")
        return Observation.success({"data": bytes(mem[offset:offset + size]).hex()})
