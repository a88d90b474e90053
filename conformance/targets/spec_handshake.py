"""Spec-target backend for CLC handshake endpoints (``handshake``).

Theory of operation
-------------------
An endpoint is one side of :mod:`smcd_check.spec.handshake` (a sans-I/O client or server
machine) together with a fixed environment that answers its requests the way one loopback-ism
host would: :class:`~smcd_check.spec.handshake.RequestConn` gets a new link group (first
contact) with the configured DMB token and length, :class:`AttachPeerDmb` succeeds,
:class:`ConnAbort` and :class:`LgrSyncErr` are noted and need no answer.

Operations:

* ``hs_new(role, config)`` - ``role`` is ``client`` or ``server``; ``config`` is a JSON object
  with the host's loopback-ism GID (``gid``, ``gid_ext``), ``ueids`` (list of strings),
  ``hostname``, and the answers of its lifecycle (``dmb_token``, ``dmb_len``, ``lgr_id``). The
  client runs ``connect()`` at once (its Proposal is in ``out``); the server starts its listen
  work and waits.
* ``hs_feed(ep, data)`` - bytes arrived on the endpoint's CLC TCP socket (any split); ``out``
  lists the CLC messages it wrote in answer (hex), ``outcome`` how it ended (None while running):
  ``{"kind": "active"|"declined"|"fallback"|"error"|"oops", "reason": int|None,
  "peer_diagnosis": int, "errno": int|None}``.

A different decline ``reason`` than the kernel's is judged NON-STRICT by the runner (the
fallback happens either way).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from smcd_check.conformance.targets.adapter import Capability, Observation, Op

#: the configuration keys an endpoint takes, with their defaults
DEFAULT_CONFIG: dict[str, Any] = {
    "gid": 0x1122334455667788,
    "gid_ext": 0x99AABBCCDDEEFF00,
    "ueids": ["SMCD-CHECK-UEID"],
    "hostname": "smcd-check",
    "dmb_token": 0x0A0B0C0D0E0F1011,
    "dmb_len": 65536,
    "lgr_id": 256,
}


@dataclass(slots=True)
class _Endpoint:
    cfg: Any
    state: Any
    env: dict[str, Any]


class SpecHandshakeBackend:
    """``hs_new`` / ``hs_feed`` on :mod:`smcd_check.spec.handshake`."""

    capabilities = frozenset({Capability.HANDSHAKE})
    ops = frozenset({"hs_new", "hs_feed"})

    def __init__(self) -> None:
        from smcd_check.spec import handshake

        self.hs = handshake
        self.eps: dict[int, _Endpoint] = {}

    def reset(self) -> None:
        self.eps = {}

    def apply(self, op: Op) -> Observation:
        a = op.kwargs()
        if op.name == "hs_new":
            return self._new(a["role"], a["config"])
        ep = self.eps.get(a["ep"]) if isinstance(a["ep"], int) else None
        if ep is None:
            return Observation.failure("EBADF", f"unknown endpoint {a['ep']!r}")
        try:
            data = bytes.fromhex(a["data"])
        except (TypeError, ValueError):
            return Observation.failure("EINVAL", "data: expected a hex string")
        out = self._run(ep, [self.hs.RecvBytes(data=data)])
        return self._result(ep, out)

    def _new(self, role: Any, config: Any) -> Observation:
        hs = self.hs
        if role not in ("client", "server"):
            return Observation.failure("EINVAL", f"role={role!r}: expected client or server")
        if not isinstance(config, dict) or set(config) - set(DEFAULT_CONFIG):
            return Observation.failure("EINVAL", f"config keys: {sorted(DEFAULT_CONFIG)}")
        env = {**DEFAULT_CONFIG, **config}
        try:
            cfg = hs.host_config(
                ueids=tuple(env["ueids"]), hostname=env["hostname"],
                devices=(hs.loopback_device(env["gid"], env["gid_ext"]),),
            )
        except hs.HandshakeConfigError as exc:
            return Observation.failure("EINVAL", str(exc))
        r = hs.Role.CLIENT if role == "client" else hs.Role.SERVER
        ep = _Endpoint(cfg=cfg, state=hs.initial_state(r), env=env)
        handle = len(self.eps) + 1
        self.eps[handle] = ep
        first = hs.Connect() if r is hs.Role.CLIENT else hs.ListenWork()
        out = self._run(ep, [first])
        result = self._result(ep, out)
        return Observation.success({"ep": handle, **{k: result.get(k) for k in ("out",
                                                                                  "outcome")}})

    def _run(self, ep: _Endpoint, events: list[Any]) -> list[str]:
        hs = self.hs
        out: list[str] = []
        queue = list(events)
        while queue:
            result = hs.step(ep.cfg, ep.state, queue.pop(0))
            ep.state = result.state
            for eff in result.effects:
                if isinstance(eff, hs.SendClc):
                    out.append(eff.data.hex())
                elif isinstance(eff, hs.RequestConn):
                    queue.append(hs.ConnCreated(lgr_id=ep.env["lgr_id"], first_contact_local=True,
                                                dmb_token=ep.env["dmb_token"],
                                                dmb_len=ep.env["dmb_len"]))
                elif isinstance(eff, hs.AttachPeerDmb):
                    queue.append(hs.AttachDone())
        return out

    def _result(self, ep: _Endpoint, out: list[str]) -> Observation:
        o = ep.state.outcome
        outcome = None
        if o is not None:
            outcome = {"kind": o.kind.value,
                       "reason": int(o.reason) if o.reason is not None else None,
                       "peer_diagnosis": o.peer_diagnosis,
                       "errno": int(o.errno) if o.errno is not None else None}
        return Observation.success({"out": out, "outcome": outcome})
