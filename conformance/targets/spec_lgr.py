"""Spec-target backend for link-group choice (``link-group``: ``lgr_conn_create``).

Theory of operation
-------------------
``lgr_conn_create(role, peer_gid, peer_gid_ext, vlan, first_contact_peer)`` asks which link
group ``smc_conn_create`` joins on this host's SMC-D device for a new connection to a peer:
:func:`smcd_check.spec.lifecycle.create_conn` on host 0 of a lifecycle whose other hosts are the
peers seen so far (each distinct (gid, gid_ext) becomes one peer host; the device is virtual, as
loopback-ism: ``smcd_lgr_match`` compares gid_ext too). The result's ``lgr`` is a handle (equal
handles: the same link group), ``first_contact`` whether it is new. A client whose peer
announced first contact always creates; one without it that finds none is refused ``ENOENT``
(the kernel declines with SMC_CLC_DECL_SYNCERR).
"""

from __future__ import annotations

from typing import Any

from smcd_check.conformance.targets.adapter import Capability, Observation, Op

#: peers one backend can tell apart (lifecycle hosts besides host 0)
MAX_PEERS = 15


class LinkGroupBackend:
    """``lgr_conn_create`` on :mod:`smcd_check.spec.lifecycle`."""

    capabilities = frozenset({Capability.LINK_GROUP})
    ops = frozenset({"lgr_conn_create"})

    def __init__(self) -> None:
        from smcd_check.spec import lifecycle

        self.lc = lifecycle
        self.reset()

    def reset(self) -> None:
        lc = self.lc
        self.cfg = lc.LifecycleConfig(n_hosts=1 + MAX_PEERS, emulated=True, merged=True,
                                      max_conns=64, close_abort_race=False, lgr_errors=False)
        self.state = lc.initial_state(self.cfg)
        self.peers: dict[tuple[int, int], int] = {}
        self.pairs = 0

    def apply(self, op: Op) -> Observation:
        lc = self.lc
        a: dict[str, Any] = op.kwargs()
        if a["role"] not in ("client", "server"):
            return Observation.failure("EINVAL", f"role={a['role']!r}: expected 'client' or "
                                                 "'server'")
        key = (a["peer_gid"], a["peer_gid_ext"])
        host = self.peers.get(key)
        if host is None:
            if len(self.peers) >= MAX_PEERS:
                return Observation.failure("ENOTMODELLED", f"more than {MAX_PEERS} peers")
            host = self.peers[key] = len(self.peers) + 1
        self.pairs += 1
        try:
            self.state, cid, first = lc.create_conn(
                self.cfg, self.state, pair=self.pairs,
                role=lc.Role.CLNT if a["role"] == "client" else lc.Role.SERV,
                host=0, peer_host=host, vlan=a["vlan"], smcd_version=2,
                first_contact_peer=bool(a["first_contact_peer"]))
        except lc.LgrOutOfSync as exc:
            return Observation.failure("ENOENT", str(exc))
        return Observation.success({"lgr": lc.get_conn(self.state, cid).lgr,
                                    "first_contact": first})
