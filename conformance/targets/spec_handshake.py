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
  "peer_diagnosis": int, "errno": int|None}``, ``effects`` what it asked of its lifecycle
  (``request_conn`` with the version, VLAN and link-group policy; ``attach_peer_dmb``;
  ``conn_abort``; ``lgr_sync_err``).
* ``hs_eof(ep)`` / ``hs_timeout(ep)`` - the peer closed the CLC socket / ``CLC_WAIT_TIME``
  passed without a whole message (``smc_clc_wait_msg``).

The environment's answers are config keys: ``lgr`` (``new``: no link group to reuse on this
host; ``reuse``: a matching one exists), ``dmb_fail`` (``ENOSPC``/``ENOMEM`` from
``smc_buf_create``), ``attach_fail`` (``smcd_buf_attach`` fails).

A different decline ``reason`` than the kernel's is judged NON-STRICT by the runner (the
fallback happens either way).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from smcd_check.conformance.targets.adapter import Capability, Observation, Op

#: the configuration keys an endpoint takes, with their defaults (conformance/PROTOCOL.md,
#: "hs_new config"); ``devices`` None means one loopback-ism device made of ``gid``/``gid_ext``
DEFAULT_CONFIG: dict[str, Any] = {
    "gid": 0x1122334455667788,
    "gid_ext": 0x99AABBCCDDEEFF00,
    "devices": None,
    "ueids": ["SMCD-CHECK-UEID"],
    "hostname": "smcd-check",
    "ipv4": [0x7F000001, 8],
    "vlan_id": 0,
    "route_pnetid": None,
    "ns_pnetids": [],
    "rcvbuf": 131072,
    "smc_release": 1,
    "syn_smc": True,
    "ipsec": False,
    "system_eid": None,
    # the environment's answers (what this host's lifecycle says)
    "dmb_token": 0x0A0B0C0D0E0F1011,
    "dmb_len": 65536,
    "lgr_id": 256,
    "lgr": "new",
    "dmb_fail": None,
    "attach_fail": None,
}
#: keys of one ``devices`` entry, with defaults (``chid``, ``gid`` required)
DEVICE_KEYS: dict[str, Any] = {"name": "ism0", "chid": None, "gid": None, "gid_ext": 0,
                               "pnetid": None, "v2": True, "nocopy": None, "peer_gids": []}


class ConfigError(ValueError):
    """A bad ``hs_new`` config (names the key)."""


@dataclass(slots=True)
class _Endpoint:
    cfg: Any
    state: Any
    env: dict[str, Any]


def _int(env: dict[str, Any], key: str, bits: int = 64) -> int:
    value = env[key]
    if not isinstance(value, int) or isinstance(value, bool) or not 0 <= value < (1 << bits):
        raise ConfigError(f"config.{key}={value!r}: expected an unsigned {bits}-bit int")
    return value


class SpecHandshakeBackend:
    """``hs_new``, ``hs_feed``, ``hs_eof``, ``hs_timeout`` on :mod:`smcd_check.spec.handshake`."""

    capabilities = frozenset({Capability.HANDSHAKE})
    ops = frozenset({"hs_new", "hs_feed", "hs_eof", "hs_timeout"})

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
        if op.name == "hs_eof":
            event: Any = self.hs.RecvEof()
        elif op.name == "hs_timeout":
            event = self.hs.RecvTimeout()
        else:
            try:
                event = self.hs.RecvBytes(data=bytes.fromhex(a["data"]))
            except (TypeError, ValueError):
                return Observation.failure("EINVAL", "data: expected a hex string")
        out, effects = self._run(ep, [event])
        return self._result(ep, out, effects)

    def _host_config(self, env: dict[str, Any]) -> Any:
        hs = self.hs
        if env["devices"] is None:
            devices = (hs.loopback_device(_int(env, "gid"), _int(env, "gid_ext")),)
        else:
            if not isinstance(env["devices"], list):
                raise ConfigError("config.devices: expected a list of device objects")
            devices = tuple(self._device(i, d) for i, d in enumerate(env["devices"]))
        ipv4 = env["ipv4"]
        if ipv4 is not None and not (isinstance(ipv4, list) and len(ipv4) == 2
                                     and all(isinstance(v, int) for v in ipv4)
                                     and 0 <= ipv4[0] < 1 << 32 and 0 <= ipv4[1] <= 32):
            raise ConfigError(f"config.ipv4={ipv4!r}: expected [address u32, prefix_len 0..32]")
        vlan = env["vlan_id"]
        if vlan is not None and not (isinstance(vlan, int) and 0 <= vlan < 4096):
            raise ConfigError(f"config.vlan_id={vlan!r}: expected 0..4095 or null")
        for key in ("syn_smc", "ipsec"):
            if not isinstance(env[key], bool):
                raise ConfigError(f"config.{key}={env[key]!r}: expected true or false")
        if not isinstance(env["ns_pnetids"], list):
            raise ConfigError("config.ns_pnetids: expected a list of strings")
        return hs.host_config(
            ueids=tuple(env["ueids"]), hostname=env["hostname"], devices=devices,
            ipv4=tuple(ipv4) if ipv4 is not None else None, vlan_id=vlan,
            route_pnetid=env["route_pnetid"], ns_pnetids=frozenset(env["ns_pnetids"]),
            rcvbuf=_int(env, "rcvbuf", 31), smc_release=_int(env, "smc_release", 4),
            syn_smc=env["syn_smc"], ipsec=env["ipsec"], **self._seid(env))

    @staticmethod
    def _seid(env: dict[str, Any]) -> dict[str, Any]:
        seid = env["system_eid"]
        if seid is None:
            return {}
        if not isinstance(seid, str) or not 0 < len(seid) <= 32:
            raise ConfigError(f"config.system_eid={seid!r}: a string of 1..32 characters")
        return {"seid_enabled": True, "system_eid": seid.encode("latin-1").ljust(32, b" ")}

    def _device(self, i: int, raw: Any) -> Any:
        if not isinstance(raw, dict) or set(raw) - set(DEVICE_KEYS):
            raise ConfigError(f"config.devices[{i}]: keys {sorted(DEVICE_KEYS)}")
        d = {**DEVICE_KEYS, **raw}
        for key in ("chid", "gid"):
            if d[key] is None:
                raise ConfigError(f"config.devices[{i}].{key} is required")
        chid = d["chid"]
        nocopy = d["nocopy"] if d["nocopy"] is not None else chid == 0xFFFF
        return self.hs.SmcdDevice(name=str(d["name"]), chid=chid, gid=d["gid"],
                                  gid_ext=d["gid_ext"], pnetid=d["pnetid"],
                                  supports_v2=bool(d["v2"]), nocopy=bool(nocopy),
                                  peer_gids=frozenset(d["peer_gids"]))

    def _new(self, role: Any, config: Any) -> Observation:
        hs = self.hs
        if role not in ("client", "server"):
            return Observation.failure("EINVAL", f"role={role!r}: expected client or server")
        if not isinstance(config, dict) or set(config) - set(DEFAULT_CONFIG):
            unknown = sorted(set(config) - set(DEFAULT_CONFIG)) if isinstance(config, dict) \
                else config
            return Observation.failure("EINVAL", f"config: unknown keys {unknown}; known: "
                                                 f"{sorted(DEFAULT_CONFIG)}")
        env = {**DEFAULT_CONFIG, **config}
        if env["lgr"] not in ("new", "reuse"):
            return Observation.failure("EINVAL", f"config.lgr={env['lgr']!r}: new or reuse")
        if env["dmb_fail"] not in (None, "ENOSPC", "ENOMEM"):
            return Observation.failure("EINVAL", "config.dmb_fail: null, ENOSPC or ENOMEM")
        if env["attach_fail"] not in (None, "EINVAL", "ENOMEM"):
            return Observation.failure("EINVAL", "config.attach_fail: null, EINVAL or ENOMEM")
        dmb_len = env["dmb_len"]
        if (not isinstance(dmb_len, int) or isinstance(dmb_len, bool)
                or dmb_len not in {16384 << k for k in range(7)}):
            # the lifecycle's answer must be an SMC-D buffer size (spec handshake
            # _check_dmb_len would raise InconsistentAnswer in the middle of a step)
            return Observation.failure("EINVAL", f"config.dmb_len={dmb_len!r}: an SMC-D "
                                                 "buffer size, 16384 << k (k = 0..6)")
        try:
            cfg = self._host_config(env)
        except (ConfigError, hs.HandshakeConfigError, TypeError, ValueError) as exc:
            return Observation.failure("EINVAL", str(exc))
        r = hs.Role.CLIENT if role == "client" else hs.Role.SERVER
        ep = _Endpoint(cfg=cfg, state=hs.initial_state(r), env=env)
        handle = len(self.eps) + 1
        self.eps[handle] = ep
        first = hs.Connect() if r is hs.Role.CLIENT else hs.ListenWork()
        out, effects = self._run(ep, [first])
        return Observation.success({"ep": handle, "out": out, "outcome": self._outcome(ep),
                                    "effects": effects})

    def _answer(self, ep: _Endpoint, req: Any) -> Any:
        """What this host's lifecycle answers to ``RequestConn`` (see ``config.lgr``)."""
        hs, env = self.hs, ep.env
        reuse = env["lgr"] == "reuse"
        if req.policy is hs.LgrPolicy.CREATE_ONLY:
            first = True
        elif req.policy is hs.LgrPolicy.REUSE_ONLY and not reuse:
            return hs.ConnCreateFailed(reason=hs.DeclineCode.SYNCERR)
        else:
            first = not reuse
        if env["dmb_fail"] is not None:
            return hs.BufCreateFailed(lgr_id=env["lgr_id"], first_contact_local=first,
                                      errno=hs.Errno[env["dmb_fail"]])
        return hs.ConnCreated(lgr_id=env["lgr_id"], first_contact_local=first,
                              dmb_token=env["dmb_token"], dmb_len=env["dmb_len"])

    def _run(self, ep: _Endpoint, events: list[Any]) -> tuple[list[str], list[dict[str, Any]]]:
        hs = self.hs
        out: list[str] = []
        effects: list[dict[str, Any]] = []
        queue = list(events)
        while queue:
            result = hs.step(ep.cfg, ep.state, queue.pop(0))
            ep.state = result.state
            for eff in result.effects:
                if isinstance(eff, hs.SendClc):
                    out.append(eff.data.hex())
                elif isinstance(eff, hs.RequestConn):
                    effects.append({"effect": "request_conn", "smcd_version": eff.smcd_version,
                                    "vlan_id": eff.vlan_id, "chid": eff.chid,
                                    "policy": eff.policy.value})
                    queue.append(self._answer(ep, eff))
                elif isinstance(eff, hs.AttachPeerDmb):
                    effects.append({"effect": "attach_peer_dmb", "peer_token": eff.peer_token})
                    fail = ep.env["attach_fail"]
                    queue.append(hs.AttachDone(errno=hs.Errno[fail] if fail else None))
                elif isinstance(eff, hs.ConnAbort):
                    effects.append({"effect": "conn_abort",
                                    "first_contact_local": eff.first_contact_local})
                elif isinstance(eff, hs.LgrSyncErr):
                    effects.append({"effect": "lgr_sync_err"})
        return out, effects

    def _outcome(self, ep: _Endpoint) -> dict[str, Any] | None:
        o = ep.state.outcome
        if o is None:
            return None
        return {"kind": o.kind.value,
                "reason": int(o.reason) if o.reason is not None else None,
                "peer_diagnosis": o.peer_diagnosis,
                "errno": int(o.errno) if o.errno is not None else None}

    def _result(self, ep: _Endpoint, out: list[str],
                effects: list[dict[str, Any]]) -> Observation:
        return Observation.success({"out": out, "outcome": self._outcome(ep),
                                    "effects": effects})
