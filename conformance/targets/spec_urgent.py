"""Spec-target backend for urgent data and both directions (capability ``urgent``, issue 11).

Theory of operation
-------------------
A pair opened with ``conn_open_urg`` is one :mod:`smcd_check.spec.duplex` state: both ends
write and read at once, a CDC carries both cursors, and urgent data (``MSG_OOB``) follows the
kernel's rules there. Each socket call is one application action of that spec followed by every
enabled internal action until none is left (quiescence), as :mod:`.spec_conn` does for the
one-direction pairs: the kernel moves data and writes the CDC inside ``sendmsg`` and the
loopback-ism peer's tasklet runs right after. The mapping (kernel function on the left):

* ``conn_send`` (``smc_tx_sendmsg``): ``AppSend(n)`` chunks while the spec allows them (not
  while an urgent byte is staged: ``urg_tx_pend``, ``smc_tx_wait``); the result is what went in.
* ``conn_send_oob`` (``smc_tx_sendmsg`` with ``MSG_OOB``): one ``AppSendUrgent(len)`` when the
  whole message fits; a message that does not fit, or one sent while an urgent byte is staged,
  is outside the spec (a partial urgent sendmsg sets ``urg_data_pending`` without an urgent
  byte: ``ENOTMODELLED``).
* ``conn_recv`` (``smc_rx_recvmsg``): ``AppRecv(min(max, readable))``, or ``AppRecvEmpty`` when
  nothing is readable but a valid urgent byte waits (``smc_rx_recvmsg_data_available``).
* ``conn_recv_oob`` (``smc_rx_recv_urg``): ``AppRecvUrgent``; where the spec does not enable it
  (``SO_OOBINLINE``, or ``urg_state`` not ``SMC_URG_VALID``) the kernel answers ``-EINVAL``.
  ``max = 0`` (``MSG_TRUNC`` without a consumer update) is ``ENOTMODELLED``.
* ``conn_atmark``: :func:`smcd_check.spec.duplex.siocatmark` (``smc_ioctl``).
* ``conn_set_oobinline``: ``SOCK_URGINLINE`` of that end. The spec's config holds one
  ``oobinline`` for both ends; every rule that reads it reads the acting end's socket (the
  reader of ``HostRecvCdc``, ``AppRecv``, ``AppRecvUrgent``), so each action is stepped with a
  config whose ``oobinline`` is the acting end's.
* ``conn_cursors``: as in :mod:`.spec_conn` (``local_tx_ctrl.prod`` ... ``bytes_to_rcv``).
* ``conn_shutdown`` / ``conn_close`` / ``conn_abort`` on such a pair: ``ENOTMODELLED`` (the
  close machine of :mod:`smcd_check.spec.close` is composed with the one-direction pairs only).

The spec's rings carry byte tags (``seq mod M + 1``, an urgent byte's plus ``M``); the bytes a
read returns are the writer's stream at those sequence numbers, so a byte from the wrong place
is seen. Merged mode only: the duplex spec sizes a copy-mode sndbuf like the DMB ring, the
kernel's is a whole SMC-D buffer (32 bytes more), so ``conn_open_urg`` in copy mode is
``ENOTMODELLED``.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any

from smcd_check.conformance.targets.adapter import Capability, Observation, Op
from smcd_check.conformance.targets.spec_conn import CDC_LEN, DMB_SIZES, NOT_MODELLED

#: handles of urgent pairs: far from the other backends' small integers
HANDLE_BASE = 1 << 48
URG_OPS = frozenset({"conn_open_urg", "conn_send_oob", "conn_recv_oob", "conn_atmark",
                     "conn_set_oobinline"})
#: ordinary pair operations this backend answers for its own handles
SHARED_OPS = frozenset({"conn_send", "conn_recv", "conn_cursors", "conn_shutdown",
                        "conn_close", "conn_abort"})


@dataclass(slots=True)
class _UrgPair:
    cfg: Any
    state: Any
    start: int
    #: the config with SO_OOBINLINE off and on (indexed by the acting end's setting)
    cfgs: tuple[Any, Any]
    #: bytes each side's application wrote (side 0 = a, 1 = b), from sequence number `start`
    streams: tuple[bytearray, bytearray] = field(default_factory=lambda: (bytearray(),
                                                                          bytearray()))
    oobinline: list[bool] = field(default_factory=lambda: [False, False])


class UrgentBackend:
    """``conn_open_urg`` pairs on :mod:`smcd_check.spec.duplex`."""

    capabilities = frozenset({Capability.URGENT})
    ops = URG_OPS

    def __init__(self) -> None:
        from smcd_check.spec import cursor, datapath, duplex

        self.dx = duplex
        self.cursor = cursor
        self.dp = datapath
        self.pairs: dict[int, _UrgPair] = {}

    def reset(self) -> None:
        self.pairs = {}

    def owns(self, op: Op) -> bool:
        """Whether ``op`` is an ordinary pair operation on one of this backend's handles."""
        if op.name not in SHARED_OPS:
            return False
        conn = op.arg("conn")
        return isinstance(conn, int) and conn >= HANDLE_BASE

    # ------------------------------------------------------------------ helpers

    def _cfg(self, pair: _UrgPair, side: int) -> Any:
        return pair.cfgs[pair.oobinline[side]]

    def _make_cfg(self, ring: int, oobinline: bool) -> Any:
        cfg = self.dx.DuplexConfig(
            mode=self.dp.Mode.MERGED, ring_size=1, max_chunk=ring, wrap_bits=16,
            chan_cap=1 << 16, urgent=True, oobinline=oobinline,
        )
        # DuplexConfig bounds ring_size to 64 for the explorer; conformance rings are
        # kernel-sized (the transition functions take any size)
        object.__setattr__(cfg, "ring_size", ring)
        object.__setattr__(cfg, "rmbe_update_limit", self.cursor.kernel_rmbe_update_limit(ring))
        return cfg

    def _step(self, pair: _UrgPair, action: Any) -> None:
        pair.state = self.dx.step(self._cfg(pair, action.side), pair.state, action)

    def _enabled(self, pair: _UrgPair, action: Any) -> bool:
        return bool(self.dx.action_enabled(self._cfg(pair, action.side), pair.state, action))

    def _quiesce(self, pair: _UrgPair) -> None:
        dx = self.dx
        kinds = (dx.HostMoveData, dx.HostWriteCdc, dx.HostEndCdc, dx.HostRecvCdc,
                 dx.HostSendConsUpdate)
        changed = True
        while changed:
            changed = False
            for side in (0, 1):
                for kind in kinds:
                    action = kind(side=side)
                    while self._enabled(pair, action):
                        self._step(pair, action)
                        changed = True

    def _bytes(self, pair: _UrgPair, writer: int, tags: tuple[int, ...]) -> bytes | None:
        """The writer's stream bytes behind ring tags (None: an empty slot was read)."""
        m = pair.cfg.tag_mod
        out = bytearray()
        stream = pair.streams[writer]
        for tag in tags:
            if tag == 0:
                return None
            idx = ((tag - 1) % m - pair.start) % m
            if idx >= len(stream):
                return None
            out.append(stream[idx])
        return bytes(out)

    def _locate(self, conn: Any) -> tuple[_UrgPair, int] | Observation:
        if not isinstance(conn, int) or conn < HANDLE_BASE:
            return Observation.failure("EBADF", f"unknown connection {conn!r}")
        pid, side = divmod(conn - HANDLE_BASE, 2)
        if pid not in self.pairs:
            return Observation.failure("EBADF", f"unknown connection {conn!r}")
        return self.pairs[pid], side

    # ------------------------------------------------------------------ operations

    def apply(self, op: Op) -> Observation:
        a = op.kwargs()
        if op.name == "conn_open_urg":
            return self._open(a["mode"], a["dmb_size"], a["sndbuf_size"], a["start"])
        found = self._locate(a["conn"])
        if isinstance(found, Observation):
            return found
        pair, side = found
        if op.name in ("conn_shutdown", "conn_close", "conn_abort"):
            return Observation.failure(NOT_MODELLED, f"{op.name} on an urgent pair: the close "
                                                     "machine is not composed with spec/duplex")
        if op.name == "conn_send":
            return self._send(pair, side, a["data"], oob=False)
        if op.name == "conn_send_oob":
            return self._send(pair, side, a["data"], oob=True)
        if op.name == "conn_recv":
            return self._recv(pair, side, a["max"])
        if op.name == "conn_recv_oob":
            return self._recv_oob(pair, side, a["max"])
        if op.name == "conn_atmark":
            x = pair.state.sides[side]
            return Observation.success({"atmark": bool(self.dx.siocatmark(pair.cfg, x))})
        if op.name == "conn_set_oobinline":
            if not isinstance(a["on"], bool):
                return Observation.failure("EINVAL", f"on={a['on']!r}: expected a boolean")
            pair.oobinline[side] = a["on"]
            return Observation.success({})
        return self._cursors(pair, side)

    def _open(self, mode: Any, dmb_size: Any, sndbuf_size: Any, start: Any) -> Observation:
        dx, cursor = self.dx, self.cursor
        if mode not in ("copy", "merged"):
            return Observation.failure("EINVAL", f"mode={mode!r}: expected 'copy' or 'merged'")
        if dmb_size not in DMB_SIZES:
            return Observation.failure("EINVAL", f"dmb_size={dmb_size!r} is not an SMC-D size")
        if mode == "copy":
            if sndbuf_size not in DMB_SIZES:
                return Observation.failure("EINVAL", f"sndbuf_size={sndbuf_size!r} invalid")
            return Observation.failure(NOT_MODELLED, "copy mode: spec/duplex sizes the sndbuf "
                                                     "like the DMB ring, the kernel does not")
        if not isinstance(start, int) or isinstance(start, bool) or start < 0:
            return Observation.failure("EINVAL", f"start={start!r}: expected an int >= 0")
        ring = dmb_size - CDC_LEN
        cfg = self._make_cfg(ring, False)
        state = dx.initial_state(cfg)
        if start:
            at = cursor.Cursor(wrap=(start // ring) & 0xFFFF, count=start % ring)
            seq = start % cfg.tag_mod
            side = replace(state.sides[0], tx_curs_prep=at, tx_curs_sent=at, tx_curs_fin=at,
                           prod=at, rx_cons=at, rx_prod=at, cons=at, rx_curs_confirmed=at,
                           seq_next=seq, seq_expect=seq)
            state = replace(state, sides=(side, side))
        pid = len(self.pairs)
        self.pairs[pid] = _UrgPair(cfg=cfg, state=state, start=start,
                                   cfgs=(cfg, self._make_cfg(ring, True)))
        return Observation.success({"a": HANDLE_BASE + 2 * pid, "b": HANDLE_BASE + 2 * pid + 1})

    def _send(self, pair: _UrgPair, side: int, data: Any, *, oob: bool) -> Observation:
        dx = self.dx
        try:
            raw = bytes.fromhex(data)
        except (TypeError, ValueError):
            return Observation.failure("EINVAL", "data: expected a hex string")
        x = pair.state.sides[side]
        if not dx._may_send(x):
            return Observation.failure(NOT_MODELLED, "send after a close (not composed)")
        if oob and raw:
            if x.urg_tx_pend or len(raw) > x.sndbuf_space:
                return Observation.failure(NOT_MODELLED, "a partial urgent sendmsg "
                                                         "(urg_data_pending without the byte)")
            self._step(pair, dx.AppSendUrgent(side=side, n=len(raw)))
            pair.streams[side].extend(raw)
            self._quiesce(pair)
            return Observation.success({"n": len(raw)})
        done = 0
        while done < len(raw):
            n = min(len(raw) - done, pair.state.sides[side].sndbuf_space, pair.cfg.max_chunk)
            action = dx.AppSend(side=side, n=n)
            if n <= 0 or not self._enabled(pair, action):
                break
            self._step(pair, action)
            pair.streams[side].extend(raw[done:done + n])
            done += n
            self._quiesce(pair)
        return Observation.success({"n": done})

    def _recv(self, pair: _UrgPair, side: int, max_: Any) -> Observation:
        dx = self.dx
        if not isinstance(max_, int) or isinstance(max_, bool) or max_ < 0:
            return Observation.failure("EINVAL", f"max={max_!r}: expected an int >= 0")
        x = pair.state.sides[side]
        n = min(max_, dx.readable(self._cfg(pair, side), x))
        data = b""
        if n > 0:
            size = pair.cfg.ring_size
            tags = tuple(x.dmb[(x.cons.count + i) % size] for i in range(n))
            got = self._bytes(pair, 1 - side, tags)
            if got is None:
                return Observation.failure(NOT_MODELLED, "the spec read an empty ring slot")
            data = got
            self._step(pair, dx.AppRecv(side=side, n=n))
        elif max_ > 0 and self._enabled(pair, dx.AppRecvEmpty(side=side)):
            self._step(pair, dx.AppRecvEmpty(side=side))
        self._quiesce(pair)
        return Observation.success({"data": data.hex(), "eof": False})

    def _recv_oob(self, pair: _UrgPair, side: int, max_: Any) -> Observation:
        dx = self.dx
        if not isinstance(max_, int) or isinstance(max_, bool) or max_ < 0:
            return Observation.failure("EINVAL", f"max={max_!r}: expected an int >= 0")
        action = dx.AppRecvUrgent(side=side)
        if not self._enabled(pair, action):
            # smc_rx_recv_urg: SOCK_URGINLINE, or urg_state != SMC_URG_VALID -> -EINVAL
            why = ("SO_OOBINLINE is set" if pair.oobinline[side] else
                   f"urg_state={pair.state.sides[side].urg_state.name}")
            return Observation.failure("EINVAL", f"smc_rx_recv_urg: {why}")
        if max_ == 0:
            return Observation.failure(NOT_MODELLED, "recv(MSG_OOB) of 0 bytes (MSG_TRUNC)")
        got = self._bytes(pair, 1 - side, (pair.state.sides[side].urg_rx_byte,))
        if got is None:
            return Observation.failure(NOT_MODELLED, "urg_rx_byte is no byte of the stream")
        self._step(pair, action)
        self._quiesce(pair)
        return Observation.success({"data": got.hex()})

    def _cursors(self, pair: _UrgPair, side: int) -> Observation:
        x = pair.state.sides[side]

        def c(cur: Any) -> list[int]:
            return [cur.wrap, cur.count]

        return Observation.success({
            "prod": c(x.prod), "peer_cons": c(x.rx_cons), "sndbuf_space": x.sndbuf_space,
            "peer_rmbe_space": x.peer_rmbe_space, "cons": c(x.cons),
            "peer_prod": c(x.rx_prod), "bytes_to_rcv": x.bytes_to_rcv,
        })
