"""Catalogue area ``handshake`` (continued): the paths beyond loopback-ism's happy path.

Native ISM hosts with IPv4 prefixes, VLAN and PNET ids (SMC-Dv1, and the downgrade of a
v2-capable client to v1), EOF and timeout at every wait of ``smc_clc_wait_msg``, and the
handshake's effects on the link groups (reuse, out-of-sync, the connection given back on a
failure). Each case feeds one endpoint the other's bytes (``Ref("c", "out.0")``) or packed
messages, and compares the bytes sent, the outcome (``smc->fallback_rsn``, peer diagnosis,
errno) and the effects asked of the lifecycle. Expected observations come from
:mod:`smcd_check.spec.handshake`; pins cite net/smc/af_smc.c (``__smc_connect``,
``smc_listen_work``, ``smc_listen_find_device``, ``smc_find_ism_v1_device_serv``,
``smc_listen_prfx_check``) and net/smc/smc_clc.c (``smc_clc_wait_msg``,
``smc_clc_prfx_match``).
"""

from __future__ import annotations

import struct
from typing import Any

from smcd_check.conformance.catalogue.clc import (
    accept_confirm,
    proposal_v2,
    proposal_v2_ext_past_end,
)
from smcd_check.conformance.catalogue.handshake import (
    client,
    feed,
    out,
    outcome,
    server,
)
from smcd_check.conformance.runner.run import Area, Case, Pin, Step, step
from smcd_check.conformance.targets.adapter import Ref

AF, CLC = "net/smc/af_smc.c", "net/smc/smc_clc.c"
ECONNRESET, ETIMEDOUT, EAGAIN, EPROTO = 104, 110, 11, 71
PEERDECL, SYNCERR, MAX_DMB = 0x05000000, 0x04000000, 0x030D0000
DIFFPREFIX, GETVLANERR, IPSEC, PEERNOSMC = 0x03070000, 0x03080000, 0x03020000, 0x03010000
NOSMCDEV, NOSMCDDEV, MEM = 0x03030000, 0x03030001, 0x01010000
NOV2DEXT, NOSMCD2DEV = 0x03030005, 0x03030007
ISM_A, ISM_B = 0xA000000000000001, 0xB000000000000002
SEID = "IBM-SYSZ-ISMSEID000000008561" + "0123"


def _ism(gid: int, peer: int, *, v2: bool, pnetid: str | None = "NET1") -> dict[str, object]:
    return {"name": "ism0", "chid": 0x1234, "gid": gid, "pnetid": pnetid, "v2": v2,
            "peer_gids": [peer]}


def native(gid: int, peer: int, addr: int, *, v2: bool = False, plen: int = 24,
           pnetid: str | None = "NET1", route: str | None = "NET1",
           **more: object) -> dict[str, object]:
    """A native-ISM host: one ISM device (CHID 0x1234) on PNET ``pnetid``, the TCP route on
    ``route`` with IPv4 ``addr``/``plen``; ``v2`` adds an ISMv2 device with a system EID."""
    cfg: dict[str, object] = {"devices": [_ism(gid, peer, v2=v2, pnetid=pnetid)],
                              "route_pnetid": route, "ns_pnetids": ["NET1"],
                              "ipv4": [addr, plen], "ueids": []}
    if v2:
        cfg["system_eid"] = SEID
    cfg.update(more)
    return cfg


def v1_client(**more: Any) -> dict[str, object]:
    return native(ISM_A, ISM_B, 0x0A000001, **more)


def v1_server(**more: Any) -> dict[str, object]:
    return native(ISM_B, ISM_A, 0x0A000002, **more)


def eof(ep: str, bind: str | None = None) -> Step:
    return step("hs_eof", ep=Ref(ep, "ep"), bind=bind)


def timeout(ep: str, bind: str | None = None) -> Step:
    return step("hs_timeout", ep=Ref(ep, "ep"), bind=bind)


def pin(index: int, fn: str, src: str = AF, **value: object) -> Pin:
    return Pin(index=index, error=None, value=tuple(value.items()), source=f"{src} {fn}")


def case(cid: str, title: str, description: str, fn: str, steps: list[Step],
         pins: tuple[Pin, ...] = (), src: str = AF) -> Case:
    return Case(id=f"handshake.{cid}", area=Area.HANDSHAKE, title=title,
                description=description, source=f"{src} {fn}", steps=tuple(steps), pins=pins,
                rules=(fn,))


def _pair(c: dict[str, object], s: dict[str, object]) -> list[Step]:
    """Client and server endpoints, the Proposal to the server, its answer to the client."""
    return [step("hs_new", role="client", config=c, bind="c"),
            step("hs_new", role="server", config={"dmb_token": 0x5151, "lgr_id": 512, **s},
                 bind="s"),
            feed("s", out("c"), "acc"), feed("c", out("acc"), "conf")]


_ACTIVE_BOTH = [feed("s", out("conf"), "done")]


def _v2_ext_at(offset: int) -> bytes:
    """A Proposal whose only extension pointer is ``v2_ext_offset`` = ``offset`` and whose
    length is that of zero counts (what the zeroed receive buffer holds past the message)."""
    raw = bytearray(proposal_v2_ext_past_end())
    raw[50:52] = struct.pack(">H", offset)
    return bytes(raw)


def _offset_case(field: str, offset: int, meaning: str, code: int | None) -> Case:
    data = (proposal_v2(smcd_v2_ext_offset=offset) if field == "smcd-v2-ext-offset"
            else _v2_ext_at(offset))
    fn = "smc_get_clc_smcd_v2_ext" if field == "smcd-v2-ext-offset" else "smc_get_clc_v2_ext"
    want = (outcome("error", errno=EPROTO) if code is None
            else outcome("declined", code))
    return case(f"server.{field}-{offset}", f"{field.replace('-', '_')} {offset}: {meaning}",
                f"The server reads the extension at the offset the Proposal gives, bounded by "
                f"{fn} (net/smc/smc_clc.h): 1..288 for smcd_v2_ext_offset, 1..172 for "
                f"v2_ext_offset. {meaning}. The decline code names the check that rejected "
                f"it, so the step is strict.", fn,
                [server(), step("hs_feed", ep=Ref("s", "ep"), data=data.hex(), strict=True)],
                (pin(1, fn, "net/smc/smc_clc.h", outcome=want),))


_OFFSETS: tuple[Case, ...] = (
    _offset_case("smcd-v2-ext-offset", 0, "0 means no SMC-Dv2 extension: NOV2DEXT", NOV2DEXT),
    _offset_case("smcd-v2-ext-offset", 1, "inside the bound but not where the extension is: "
                 "the GID list read there matches nothing, NOSMCD2DEV", NOSMCD2DEV),
    _offset_case("smcd-v2-ext-offset", 63, "one byte before the extension", NOSMCD2DEV),
    _offset_case("smcd-v2-ext-offset", 65, "one byte after the extension", NOSMCD2DEV),
    _offset_case("smcd-v2-ext-offset", 288, "the largest offset accepted (past the message, "
                 "zeros of the receive buffer)", NOSMCD2DEV),
    _offset_case("smcd-v2-ext-offset", 289, "one past the bound: no extension, NOV2DEXT",
                 NOV2DEXT),
    _offset_case("smcd-v2-ext-offset", 0xFFFF, "the largest be16: no extension, NOV2DEXT",
                 NOV2DEXT),
    _offset_case("v2-ext-offset", 172, "the largest accepted: the zero counts read past the "
                 "message agree with the length, valid; no UEID there: NOV2DEXT", NOV2DEXT),
    _offset_case("v2-ext-offset", 173, "one past the bound: the Proposal is invalid, -EPROTO "
                 "without a Decline", None),
)

CASES: tuple[Case, ...] = (
    # ------------------------------------------------------------------ EOF and timeout
    case("client.eof-waiting-accept", "EOF while the client waits for the Accept: ECONNRESET",
         "smc_clc_wait_msg reads 0 bytes (orderly shutdown): sk_err = ECONNRESET, reason "
         "-ECONNRESET, an error without fallback and without a Decline.", "smc_clc_wait_msg",
         [client(), eof("c")],
         (pin(1, "smc_clc_wait_msg", CLC, out=[], outcome=outcome("error", errno=ECONNRESET),
              effects=[]),), src=CLC),
    case("client.timeout-waiting-accept", "no Accept within CLC_WAIT_TIME: ETIMEDOUT",
         "sock_recvmsg returns -EAGAIN at the timeout; __smc_connect turns it into "
         "-ETIMEDOUT (smc_connect_clc); no fallback.", "smc_connect_clc",
         [client(), timeout("c")],
         (pin(1, "smc_connect_clc", out=[], outcome=outcome("error", errno=ETIMEDOUT)),)),
    case("client.eof-inside-accept", "EOF after 20 bytes of an Accept is EPROTO, not a reset",
         "The header peek succeeds (8 of 20 bytes), so the length is known; the MSG_WAITALL "
         "read of 130 bytes returns 20 at EOF: len < recvlen, -EPROTO (no fallback).",
         "smc_clc_wait_msg",
         [client(), feed("c", accept_confirm()[:20].hex()), eof("c")],
         (pin(2, "smc_clc_wait_msg", CLC, out=[], outcome=outcome("error", errno=EPROTO)),),
         src=CLC),
    case("client.eof-inside-header", "EOF after 7 bytes, inside the header, is EPROTO",
         "The MSG_PEEK|MSG_WAITALL peek of the 8-byte header returns 7 at EOF: len < "
         "sizeof(struct smc_clc_msg_hdr) is -EPROTO; only 0 bytes is an orderly ECONNRESET.",
         "smc_clc_wait_msg",
         [client(), feed("c", accept_confirm()[:7].hex()), eof("c")],
         (pin(2, "smc_clc_wait_msg", CLC, out=[], outcome=outcome("error", errno=EPROTO)),),
         src=CLC),
    case("server.eof-waiting-proposal", "EOF before any Proposal: the server gives up",
         "smc_listen_work: smc_clc_wait_msg fails with -ECONNRESET; no Decline is sent.",
         "smc_listen_work", [server(), eof("s")],
         (pin(1, "smc_listen_work", out=[], outcome=outcome("error", errno=ECONNRESET)),)),
    case("server.timeout-waiting-confirm", "no Confirm within CLC_WAIT_TIME: the connection "
         "is given back", "After the Accept the server waits for the Confirm; at the timeout "
         "smc_listen_work aborts: smc_conn_abort gives the DMB back and frees the link group "
         "it created (effect conn_abort, first contact).", "smc_listen_work",
         [client(), server(), feed("s", out("c"), "acc"), timeout("s")],
         (pin(3, "smc_listen_work", out=[], outcome=outcome("error", errno=EAGAIN),
              effects=[{"effect": "conn_abort", "first_contact_local": True}]),)),
    case("server.eof-waiting-confirm", "EOF instead of the Confirm: conn_abort", "As the "
         "timeout, with -ECONNRESET.", "smc_listen_work",
         [client(), server(), feed("s", out("c"), "acc"), eof("s")]),
    case("client.eof-after-confirm-sent", "EOF after the handshake is over changes nothing",
         "The client is ACTIVE once its Confirm is out; a later EOF of the CLC socket is no "
         "handshake event.", "__smc_connect",
         [client(), server(), feed("s", out("c"), "acc"), feed("c", out("acc"), "conf"),
          eof("c")]),
    # ------------------------------------------------------------------ link groups
    case("pair.lgr-reuse", "a second connection reuses the link group (78-byte Accept)",
         "The server finds a matching link group (smcd_lgr_match): Accept and Confirm without "
         "the first-contact extension; the client joins its link group too.", "smc_conn_create",
         [*_pair({"lgr": "reuse"}, {"lgr": "reuse"}), *_ACTIVE_BOTH],
         (pin(4, "smc_listen_work", out=[], outcome=outcome("active")),)),
    case("pair.sync-error", "the server reuses a link group the client lacks: SYNCERR",
         "smc_conn_create on the client finds no link group although the Accept said 'not "
         "first contact': Decline SMC_CLC_DECL_SYNCERR with the out-of-sync bit; the server "
         "marks its link group sync_err, schedules its termination (effect lgr_sync_err) and "
         "gives the connection back (conn_abort).", "smc_conn_create",
         [*_pair({}, {"lgr": "reuse"}), feed("s", out("conf"), "done")],
         (pin(3, "smc_connect_ism", outcome=outcome("declined", SYNCERR)),)),
    case("server.no-dmb-slot", "no DMB slot on the server: MAX_DMB and the link group freed",
         "smc_buf_create fails with -ENOSPC for every size: Decline SMC_CLC_DECL_MAX_DMB; "
         "smc_listen_ism_init gives the connection back (conn_abort, first contact).",
         "smc_listen_ism_init",
         [client(), server(dmb_fail="ENOSPC"), feed("s", out("c"), "decl"),
          feed("c", out("decl"))],
         (pin(2, "smc_listen_ism_init", outcome=outcome("declined", MAX_DMB)),)),
    case("client.attach-fails", "the client cannot attach the server's DMB: Decline MEM",
         "smcd_buf_attach fails on the client after the Accept: SMC_CLC_DECL_MEM, fallback; "
         "the connection is given back.", "smc_connect_ism",
         [client(attach_fail="EINVAL"), server(), feed("s", out("c"), "acc"),
          feed("c", out("acc"), "decl"), feed("s", out("decl"))],
         (pin(3, "smc_connect_ism", outcome=outcome("declined", MEM)),)),
    # ------------------------------------------------------------------ SMC-Dv1, prefixes
    case("v1.active", "native ISM v1: Proposal with IPv4 prefix, Accept, Confirm, ACTIVE",
         "typev1 D with the ISM GID and CHID, the prefix area (10.0.0.0/24); the server "
         "finds the device by PNET id (smc_find_ism_v1_device_serv) and the prefix matches.",
         "smc_find_ism_v1_device_serv", [*_pair(v1_client(), v1_server()), *_ACTIVE_BOTH],
         (pin(4, "smc_listen_work", out=[], outcome=outcome("active")),)),
    case("v1.prefix-other-subnet", "v1: another IPv4 subnet is DIFFPREFIX",
         "smc_clc_prfx_match: the server's address 10.0.1.2/24 is not in the client's "
         "10.0.0.0/24: SMC_CLC_DECL_DIFFPREFIX.", "smc_listen_prfx_check",
         _pair(v1_client(), v1_server(ipv4=[0x0A000102, 24])),
         (pin(2, "smc_listen_prfx_check", outcome=outcome("declined", DIFFPREFIX)),)),
    case("v1.prefix-other-length", "v1: the same subnet with another prefix length is "
         "DIFFPREFIX", "The prefix length must be equal (/24 against /25).",
         "smc_clc_prfx_match", _pair(v1_client(), v1_server(ipv4=[0x0A000002, 25])),
         src=CLC),
    case("v1.prefix-host-route", "v1: /32 on both ends with the same address matches",
         "The boundary of the mask: prefix length 32 compares the whole address.",
         "smc_clc_prfx_match",
         [*_pair(v1_client(ipv4=[0x0A000001, 32]), v1_server(ipv4=[0x0A000001, 32])),
          *_ACTIVE_BOTH], src=CLC),
    case("v1.prefix-zero-length", "v1: prefix length 0 matches any address",
         "Mask 0: every IPv4 address is in the subnet.", "smc_clc_prfx_match",
         [*_pair(v1_client(ipv4=[0x0A000001, 0]), v1_server(ipv4=[0xC0A80001, 0])),
          *_ACTIVE_BOTH], src=CLC),
    case("v1.no-ipv4-address", "v1 server without an IPv4 address on the route: DIFFPREFIX",
         "smc_clc_prfx_match finds no address to compare.", "smc_listen_prfx_check",
         _pair(v1_client(), v1_server(ipv4=None))),
    case("v1.pnet-mismatch", "v1: the ISM device is on another PNET than the route",
         "smc_find_ism_v1_device_serv / smc_pnet_find_ism_resource: the device's PNET id "
         "differs from the route's: no v1 device on the server.", "smc_find_ism_v1_device_serv",
         _pair(v1_client(), v1_server(pnetid="NET2")),
         (pin(2, "smc_listen_find_device", outcome=outcome("declined", NOSMCDDEV)),)),
    case("v1.client-pnet-mismatch", "v1 client whose device is on another PNET offers no SMC-D",
         "smc_find_proposal_devices finds no ISM device for the route: the client declines "
         "before any Proposal (SMC_CLC_DECL_NOSMCDEV) and falls back.",
         "smc_find_proposal_devices", [step("hs_new", role="client",
                                           config=v1_client(pnetid="NET2"), bind="c")],
         (pin(0, "smc_find_proposal_devices", outcome=outcome("declined", NOSMCDEV)),)),
    case("v1.no-vlan", "the server cannot determine its VLAN: GETVLANERR",
         "smc_vlan_by_tcpsk fails on the server: SMC_CLC_DECL_GETVLANERR.", "smc_listen_work",
         _pair(v1_client(), v1_server(vlan_id=None)),
         (pin(2, "smc_listen_work", outcome=outcome("declined", GETVLANERR)),)),
    case("v1.vlan-4095", "the largest VLAN id still connects (v1 on a VLAN)",
         "vlan_id 4095 on both ends: the VLAN is registered with the device "
         "(smc_connect_ism_vlan_setup) and the handshake completes.", "smc_find_ism_v1_device_serv",
         [*_pair(v1_client(vlan_id=4095), v1_server(vlan_id=4095)), *_ACTIVE_BOTH]),
    case("v1.ipsec", "a connection under IPsec is IPSEC", "using_ipsec: "
         "SMC_CLC_DECL_IPSEC; both fall back.", "smc_listen_work",
         _pair(v1_client(), v1_server(ipsec=True)),
         (pin(2, "smc_listen_work", outcome=outcome("declined", IPSEC)),)),
    case("v1.tcp-only-peer", "a peer without the SMC TCP option: fallback without any message",
         "syn_smc is 0: SMC_CLC_DECL_PEERNOSMC, no Proposal, no Decline.", "__smc_connect",
         [step("hs_new", role="client", config=v1_client(syn_smc=False), bind="c")],
         (pin(0, "__smc_connect", out=[], outcome=outcome("fallback", PEERNOSMC)),)),
    case("v1.downgrade", "a v2-capable client with a v1-only server ends in SMC-Dv1",
         "The client offers v1 and v2 (typev1 D, typev2 D, SEID); the server has no ISMv2 "
         "device and picks its v1 device: Accept v1 (48 bytes), ACTIVE.",
         "smc_listen_find_device",
         [*_pair(v1_client(v2=True), v1_server()), *_ACTIVE_BOTH]),
    *_OFFSETS,
    case("v2.native-seid", "native ISM v2 with the system EID on both ends",
         "No UEID: the SEID is the common EID (smc_clc_match_eid).", "smc_listen_v2_check",
         [*_pair(v1_client(v2=True), v1_server(v2=True)), *_ACTIVE_BOTH]),
)
