"""Spec-target backends for the CLC codec (``clc``) and, when present, the handshake.

``clc_decode`` answers with the decoded message reduced to the fields an implementation must get
right (conformance/PROTOCOL.md section 7), or refuses with ``EPROTO``
(the kernel's -EPROTO for an invalid CLC message, net/smc/smc_clc.c ``smc_clc_wait_msg``); the
refusal's detail names the field and kernel rule that failed.

The handshake backend is defined in :mod:`.spec_handshake` when spec/handshake.py exists.
"""

from __future__ import annotations

from typing import Any

from smcd_check.conformance.targets.adapter import Capability, Observation, Op


def clc_fields(msg: Any) -> dict[str, Any]:
    """The comparable view of a decoded CLC message (keys: conformance/PROTOCOL.md section 7)."""
    from smcd_check.spec import clc

    out: dict[str, Any] = {}
    if isinstance(msg, clc.Proposal):
        smcd = msg.smcd
        v2 = msg.v2_ext
        out.update(
            iparea_offset=msg.iparea_offset,
            ism_gid=smcd.ism.gid if smcd else None,
            ism_chid=smcd.ism.chid if smcd else None,
            v2_ext_offset=smcd.v2_ext_offset if smcd else None,
            ipv6_prefixes_cnt=len(msg.prefix.ipv6_prefixes) if msg.prefix else None,
            eid_cnt=v2.eid_cnt if v2 else None,
            ism_gid_cnt=v2.ism_gid_cnt if v2 else None,
            release=v2.release if v2 else None,
            seid=v2.seid if v2 else None,
            gidchids=[[g.gid, g.chid] for g in v2.smcd_v2_ext.gidchids]
            if v2 and v2.smcd_v2_ext else None,
        )
    elif isinstance(msg, clc.Accept | clc.Confirm):
        out.update(
            first_contact=msg.first_contact,
            gid=msg.gid,
            token=msg.token,
            dmbe_idx=msg.dmbe_idx,
            dmbe_size=msg.dmbe_size,
            linkid=msg.linkid.hex(),
            chid=msg.chid,
            gid_ext=msg.gid_ext,
            eid=msg.eid.hex(),
        )
    elif isinstance(msg, clc.Decline):
        out.update(peer_diagnosis=msg.peer_diagnosis, out_of_sync=msg.out_of_sync,
                   os_type=msg.os_type)
    return out


class ClcBackend:
    """``clc_decode`` on :func:`smcd_check.spec.clc.decode`."""

    capabilities = frozenset({Capability.CLC})
    ops = frozenset({"clc_decode"})

    def __init__(self) -> None:
        from smcd_check.spec import clc

        self.clc = clc

    def reset(self) -> None:
        """Stateless."""

    def apply(self, op: Op) -> Observation:
        data = op.arg("data")
        try:
            raw = bytes.fromhex(data) if isinstance(data, str) else None
        except ValueError:
            raw = None
        if raw is None:
            return Observation.failure("EINVAL", f"data={data!r}: expected a hex string")
        try:
            msg = self.clc.decode(raw)
        except self.clc.ClcError as exc:
            return Observation.failure("EPROTO", str(exc))
        return Observation.success({
            "type": int(msg.type),
            "version": msg.version,
            "length": len(raw),
            "fields": clc_fields(msg),
        })


def HandshakeBackend() -> Any:
    """The handshake backend (from :mod:`.spec_handshake`), or ImportError if not available."""
    from smcd_check.conformance.targets.spec_handshake import SpecHandshakeBackend

    return SpecHandshakeBackend()
