"""Scenario table: every kernel path of the SMC-D handshake, its messages and its outcome.

Each row names a path of Linux 6.12.118 (net/smc/af_smc.c unless said otherwise), runs it -
the two machines back to back, or one machine against scripted peer bytes built with the codec
- and states the exact message sequence (type, length, the fields that matter) and how each
side ends (``smc->fallback_rsn``, ``smc->peer_diagnosis``, errno), plus the lifecycle effects
that must appear (a connection aborted, a link group marked out of sync).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass, field

import pytest

from smcd_check.spec import clc
from smcd_check.spec.decline import DeclineCode
from smcd_check.spec.handshake import (
    INVARIANTS,
    AttachDone,
    ClcType,
    ConnAbort,
    ConnCreated,
    Connect,
    Effect,
    Errno,
    Event,
    HandshakeState,
    HostConfig,
    LgrSyncErr,
    LgrView,
    ListenWork,
    OutcomeKind,
    PairConfig,
    Phase,
    RecvBytes,
    RecvTimeout,
    Role,
    SendClc,
    SideEnv,
    SmcdDevice,
    client_init,
    host_config,
    loopback_device,
    run,
    run_back_to_back,
    server_init,
)
from smcd_check.spec.properties import violated

K = OutcomeKind
D = DeclineCode

# --------------------------------------------------------------------------------------------
# Hosts
# --------------------------------------------------------------------------------------------

GID, GID_EXT = 0x314274D28D9AFB2C, 0xB9C97DD435AB2D9F
UEID = "SMCD-CONFORMANCE-UEID"
LO = loopback_device(GID, GID_EXT)
LO_OTHER = loopback_device(0x1111, 0x2222)  # another machine's loopback-ism
LOOP = host_config(devices=(LO,), ueids=(UEID,))
LOOP_NO_UEID = host_config(devices=(LO,))

# two hosts on one s390 CEC with native ISM (CHID 0x1234), PNET id "NET1", IPv4 10.0.0.0/24
ISM_A, ISM_B = 0xA000000000000001, 0xB000000000000002
SEID = b"IBM-SYSZ-ISMSEID00000000" + b"8561" + b"0123"


def ism(gid: int, peer: int, *, v2: bool, pnetid: str = "NET1") -> SmcdDevice:
    return SmcdDevice(name="ism0", chid=0x1234, gid=gid, pnetid=pnetid, supports_v2=v2,
                      peer_gids=frozenset({peer}))


def native(gid: int, peer: int, addr: int, *, v2: bool, **kw: object) -> HostConfig:
    args: dict[str, object] = {
        "devices": (ism(gid, peer, v2=v2),), "route_pnetid": "NET1",
        "ns_pnetids": frozenset({"NET1"}), "ipv4": (addr, 24),
    }
    args.update(kw)
    return host_config(**args)


V1_CLIENT = native(ISM_A, ISM_B, 0x0A000001, v2=False)
V1_SERVER = native(ISM_B, ISM_A, 0x0A000002, v2=False)
S390_CLIENT = native(ISM_A, ISM_B, 0x0A000001, v2=True, seid_enabled=True, system_eid=SEID)
S390_SERVER = native(ISM_B, ISM_A, 0x0A000002, v2=True, seid_enabled=True, system_eid=SEID)
TOK_C, TOK_S = 0xC0C0C0C0C0C0C0C0, 0x5E5E5E5E5E5E5E5E
ENVS = {"client_env": SideEnv(dmb_tokens=(TOK_C,)), "server_env": SideEnv(dmb_tokens=(TOK_S,))}

# --------------------------------------------------------------------------------------------
# Running
# --------------------------------------------------------------------------------------------


@dataclass
class Result:
    messages: list[tuple[Role, clc.ClcMessage]]
    outcomes: dict[Role, tuple[object, ...] | None]
    effects: list[Effect]
    states: dict[Role, HandshakeState] = field(default_factory=dict)


def outcome_tuple(st: HandshakeState) -> tuple[object, ...] | None:
    o = st.outcome
    return None if o is None else (o.kind, o.reason, o.peer_diagnosis, o.errno)


def pair(client: HostConfig, server: HostConfig, **kw: object) -> Callable[[], Result]:
    def go() -> Result:
        r = run_back_to_back(client, server, **kw)  # type: ignore[arg-type]
        assert violated(INVARIANTS, PairConfig(client=client, server=server), r.state) == ()
        msgs = [(role, clc.decode(e.data)) for role, e in r.trace if isinstance(e, SendClc)]
        effects = [e for _role, e in r.trace if not isinstance(e, tuple(Event.__args__))]  # type: ignore[attr-defined]
        states = {Role.CLIENT: r.state.client, Role.SERVER: r.state.server}
        return Result(msgs, {k: outcome_tuple(v) for k, v in states.items()}, effects, states)
    return go


def alone(role: Role, cfg: HostConfig, events: list[Event]) -> Callable[[], Result]:
    """One machine against scripted peer input."""
    def go() -> Result:
        st = client_init() if role is Role.CLIENT else server_init()
        r = run(cfg, st, events)
        msgs = [(role, clc.decode(e.data)) for e in r.effects if isinstance(e, SendClc)]
        return Result(msgs, {role: outcome_tuple(r.state)}, list(r.effects), {role: r.state})
    return go


def proposal_of(cfg: HostConfig) -> bytes:
    r = run(cfg, client_init(), [Connect()])
    return next(e.data for e in r.effects if isinstance(e, SendClc))


def accept(**fields: object) -> bytes:
    """A loopback-ism style Accept v2 (first contact) with fields overridden."""
    base: dict[str, object] = {
        "version": 2, "typev2": 2, "typev1": clc.SmcType.D, "gid": GID, "token": TOK_S,
        "dmbe_size": 2, "linkid": bytes([0, 1, 0, 0]), "chid": 0xFFFF,
        "eid": UEID.encode().ljust(32), "gid_ext": GID_EXT,
        "first_contact_ext": clc.FirstContactExt(
            release=1, hostname=b"(none)".ljust(32),
            v2x=clc.FirstContactExtV2x(feature_mask=1)),
    }
    base.update(fields)
    return clc.encode(clc.Accept(**base))  # type: ignore[arg-type]


def confirm(**fields: object) -> bytes:
    base: dict[str, object] = {
        "version": 2, "typev2": 2, "typev1": clc.SmcType.D, "gid": GID, "token": TOK_C,
        "dmbe_size": 2, "linkid": bytes([0, 2, 0, 0]), "chid": 0xFFFF,
        "eid": UEID.encode().ljust(32), "gid_ext": GID_EXT,
        "first_contact_ext": clc.FirstContactExt(
            release=1, hostname=b"(none)".ljust(32),
            v2x=clc.FirstContactExtV2x(feature_mask=1)),
    }
    base.update(fields)
    return clc.encode(clc.Confirm(**base))  # type: ignore[arg-type]



def v1_proposal_without_smcd_area() -> bytes:
    """A v1 Proposal offering D whose iparea_offset is 0: the prefix area overlaps where the
    SMC-D area would be and smc_get_clc_msg_smcd returns NULL."""
    return clc.encode(clc.Proposal(
        version=1, typev1=clc.SmcType.D, typev2=clc.SmcType.N, iparea_offset=0, smcd=None,
        prefix=clc.ProposalPrefix(outgoing_subnet=bytes([10, 0, 0, 0]), prefix_len=24)))


def proposal_without_smcd_v2_ext() -> bytes:
    """The loopback Proposal with smcd_v2_ext_offset (v2 extension + 6) set to 0."""
    data = bytearray(proposal_of(LOOP))
    data[86:88] = b"\x00\x00"
    return bytes(data)


def replace_v2(p: clc.Proposal, **kw: object) -> clc.Proposal:
    assert p.v2_ext is not None
    return dataclasses.replace(p, v2_ext=dataclasses.replace(p.v2_ext, **kw))  # type: ignore[arg-type]


def with_byte(data: bytes, offset: int, value: int) -> bytes:
    return data[:offset] + bytes([value]) + data[offset + 1:]


def proposal_with(**kw: object) -> bytes:
    return clc.encode(clc.build_proposal(**kw))  # type: ignore[arg-type]


SERVER_CREATED = ConnCreated(lgr_id=256, first_contact_local=True, dmb_token=TOK_S,
                             dmb_len=65536)
CLIENT_CREATED = ConnCreated(lgr_id=512, first_contact_local=True, dmb_token=TOK_C,
                             dmb_len=65536)

# --------------------------------------------------------------------------------------------
# The table
# --------------------------------------------------------------------------------------------

M = tuple[Role, ClcType, dict[str, object]]
C, S = Role.CLIENT, Role.SERVER


@dataclass(frozen=True)
class Row:
    path: str
    kernel: str
    run: Callable[[], Result]
    messages: tuple[M, ...]
    client: tuple[object, ...] | None = None
    server: tuple[object, ...] | None = None
    effects: tuple[Effect, ...] = ()


def decl(version: int, code: DeclineCode, **more: object) -> dict[str, object]:
    return {"version": version, "peer_diagnosis": int(code), "length": 28 if version == 1 else 44,
            **more}


ACTIVE = (K.ACTIVE, None, 0, None)
LGR_MATCH = LgrView(lgr_id=256, device="ism0", peer_gid=ISM_A, peer_gid_ext=0, vlan_id=0)

ROWS: tuple[Row, ...] = (
    Row("success v1 (native ISM)", "smc_find_ism_v1_device_serv, smc_connect_ism",
        pair(V1_CLIENT, V1_SERVER, same_host=False, **ENVS),
        ((C, ClcType.PROPOSAL, {"typev1": clc.SmcType.D, "typev2": clc.SmcType.N, "length": 92,
                                "iparea_offset": 40}),
         (S, ClcType.ACCEPT, {"version": 1, "length": 48, "first_contact": True, "gid": ISM_B,
                              "token": TOK_S, "dmbe_size": 2}),
         (C, ClcType.CONFIRM, {"version": 1, "length": 48, "first_contact": True,
                               "gid": ISM_A, "token": TOK_C})),
        ACTIVE, ACTIVE),
    Row("success v2 (native ISM in the SMC-D area, s390 SEID, no UEID)",
        "smc_find_ism_v2_device_serv (pclc_smcd->ism.chid), smc_clc_match_eid (SEID)",
        pair(S390_CLIENT, S390_SERVER, same_host=False, **ENVS),
        ((C, ClcType.PROPOSAL, {"typev1": clc.SmcType.D, "typev2": clc.SmcType.D,
                                "length": 40 + 40 + 8 + 40 + 48 + 4}),
         (S, ClcType.ACCEPT, {"version": 2, "length": 130, "chid": 0x1234, "gid_ext": 0,
                              "eid": SEID}),
         (C, ClcType.CONFIRM, {"version": 2, "length": 130, "eid": SEID})),
        ACTIVE, ACTIVE),
    Row("loopback-ism (v2, emulated, 2 GID entries, UEID)",
        "smc_find_ism_v2_device_clnt, smc_check_ism_v2_match, smc_lo_query_rgid",
        pair(LOOP, LOOP, **ENVS),
        ((C, ClcType.PROPOSAL, {"typev1": clc.SmcType.N, "length": 224}),
         (S, ClcType.ACCEPT, {"length": 130, "chid": 0xFFFF, "gid_ext": GID_EXT,
                              "linkid": bytes([0, 1, 0, 0])}),
         (C, ClcType.CONFIRM, {"length": 130, "linkid": bytes([0, 2, 0, 0])})),
        ACTIVE, ACTIVE),
    Row("second connection reuses the link group", "smc_conn_create (smcd_lgr_match)",
        pair(LOOP, LOOP, lgrs=(LgrView(lgr_id=256, device="loopback-ism", peer_gid=GID,
                                       peer_gid_ext=GID_EXT, vlan_id=0),), **ENVS),
        ((C, ClcType.PROPOSAL, {"length": 224}),
         (S, ClcType.ACCEPT, {"length": 78, "first_contact": False}),
         (C, ClcType.CONFIRM, {"length": 78, "first_contact": False,
                               "linkid": bytes([0, 1, 0, 0])})),
        ACTIVE, ACTIVE),
    Row("no common SMC-Dv2 device (other host's loopback)", "smc_find_ism_v2_device_serv",
        pair(LOOP, host_config(devices=(LO_OTHER,), ueids=(UEID,)), same_host=False),
        ((C, ClcType.PROPOSAL, {}), (S, ClcType.DECLINE, decl(2, D.NOSMCD2DEV))),
        (K.DECLINED, D.PEERDECL, int(D.NOSMCD2DEV), None),
        (K.DECLINED, D.NOSMCD2DEV, 0, None)),
    Row("no common SMC-D device (v1: the server's ISM does not reach the client's GID)",
        "smc_find_ism_v1_device_serv (smc_pnet_find_ism_by_pnetid + smc_ism_cantalk)",
        pair(V1_CLIENT, native(0xB2, 0xDEAD, 0x0A000002, v2=False), same_host=False),
        ((C, ClcType.PROPOSAL, {}), (S, ClcType.DECLINE, decl(2, D.NOSMCDDEV))),
        (K.DECLINED, D.PEERDECL, int(D.NOSMCDDEV), None), (K.DECLINED, D.NOSMCDDEV, 0, None)),
    Row("client has no SMC device: Decline before any Proposal",
        "smc_find_proposal_devices, smc_connect_decline_fallback",
        pair(host_config(), LOOP, same_host=False),
        ((C, ClcType.DECLINE, decl(1, D.NOSMCDEV)),),
        (K.DECLINED, D.NOSMCDEV, 0, None), (K.DECLINED, D.PEERDECL, int(D.NOSMCDEV), None)),
    Row("version mismatch: v2-only client, server without ISMv2", "smc_listen_v2_check",
        pair(LOOP, V1_SERVER, same_host=False),
        ((C, ClcType.PROPOSAL, {}), (S, ClcType.DECLINE, decl(2, D.NOISM2SUPP))),
        (K.DECLINED, D.PEERDECL, int(D.NOISM2SUPP), None), (K.DECLINED, D.NOISM2SUPP, 0, None)),
    Row("no UEID (loopback off s390)", "smc_listen_v2_check",
        pair(LOOP_NO_UEID, LOOP_NO_UEID),
        ((C, ClcType.PROPOSAL, {"length": 192}), (S, ClcType.DECLINE, decl(2, D.NOUEID))),
        (K.DECLINED, D.PEERDECL, int(D.NOUEID), None), (K.DECLINED, D.NOUEID, 0, None)),
    Row("UEIDs with none in common", "smc_clc_match_eid, smc_listen_find_device",
        pair(LOOP, host_config(devices=(LO,), ueids=("OTHER-UEID",))),
        ((C, ClcType.PROPOSAL, {}), (S, ClcType.DECLINE, decl(2, D.NOSMCDDEV))),
        (K.DECLINED, D.PEERDECL, int(D.NOSMCDDEV), None), (K.DECLINED, D.NOSMCDDEV, 0, None)),
    Row("IPsec: Decline before any Proposal", "__smc_connect (using_ipsec)",
        pair(host_config(devices=(LO,), ueids=(UEID,), ipsec=True), LOOP),
        ((C, ClcType.DECLINE, decl(2, D.IPSEC)),),
        (K.DECLINED, D.IPSEC, 0, None), (K.DECLINED, D.PEERDECL, int(D.IPSEC), None)),
    Row("TCP-only peer (no SMC option in SYN / SYN-ACK): fallback, no Decline",
        "smc_listen_work (syn_smc), __smc_connect (syn_smc)",
        pair(host_config(devices=(LO,), syn_smc=False), host_config(devices=(LO,),
                                                                    syn_smc=False)),
        (), (K.FALLBACK, D.PEERNOSMC, 0, None), (K.FALLBACK, D.PEERNOSMC, 0, None)),
    Row("Accept timeout: error, no fallback", "__smc_connect (-EAGAIN -> -ETIMEDOUT)",
        alone(C, LOOP, [Connect(), RecvTimeout()]),
        ((C, ClcType.PROPOSAL, {}),), client=(K.ERROR, None, 0, Errno.ETIMEDOUT)),
    Row("Confirm timeout on the server", "smc_listen_work (out_decl with -EAGAIN)",
        alone(S, LOOP, [ListenWork(), RecvBytes(data=proposal_of(LOOP)), SERVER_CREATED,
                        RecvTimeout()]),
        ((S, ClcType.ACCEPT, {"length": 130}),), server=(K.ERROR, None, 0, Errno.EAGAIN),
        effects=(ConnAbort(lgr_id=256, first_contact_local=True),)),
    Row("malformed Accept (bad trailer)", "smc_clc_wait_msg / smc_clc_msg_hdr_valid",
        alone(C, LOOP, [Connect(), RecvBytes(data=accept()[:-4] + b"XXXX")]),
        ((C, ClcType.PROPOSAL, {}),), client=(K.ERROR, None, 0, Errno.EPROTO)),
    Row("unexpected message (a Confirm while waiting for the Proposal)", "smc_clc_wait_msg",
        alone(S, LOOP, [ListenWork(), RecvBytes(data=confirm())]),
        (), server=(K.ERROR, None, 0, Errno.EPROTO)),
    Row("MAX_DMB: the server has no free DMB slot",
        "smc_listen_ism_init (-ENOSPC -> SMC_CLC_DECL_MAX_DMB)",
        pair(LOOP, LOOP, server_env=SideEnv(dmb_errno=Errno.ENOSPC)),
        ((C, ClcType.PROPOSAL, {}), (S, ClcType.DECLINE, decl(2, D.MAX_DMB))),
        (K.DECLINED, D.PEERDECL, int(D.MAX_DMB), None), (K.DECLINED, D.MAX_DMB, 0, None),
        effects=(ConnAbort(lgr_id=256, first_contact_local=True),)),
    Row("client runs out of DMBs (MAX_DMB after the Accept)",
        "smc_connect_ism (smc_buf_create -ENOSPC), connect_abort",
        pair(LOOP, LOOP, client_env=SideEnv(dmb_errno=Errno.ENOSPC)),
        ((C, ClcType.PROPOSAL, {}), (S, ClcType.ACCEPT, {}), (C, ClcType.DECLINE,
                                                              decl(2, D.MAX_DMB))),
        (K.DECLINED, D.MAX_DMB, 0, None), (K.DECLINED, D.PEERDECL, int(D.MAX_DMB), None),
        effects=(ConnAbort(lgr_id=512, first_contact_local=True),
                 ConnAbort(lgr_id=256, first_contact_local=True))),
    Row("sync error: server reuses a link group the client does not have",
        "smc_conn_create (SMC_CLC_DECL_SYNCERR), smc_clc_wait_msg (sync_err)",
        pair(S390_CLIENT, S390_SERVER, same_host=False, server_lgrs=(LGR_MATCH,), **ENVS),
        ((C, ClcType.PROPOSAL, {}), (S, ClcType.ACCEPT, {"first_contact": False, "length": 78}),
         (C, ClcType.DECLINE, decl(2, D.SYNCERR, out_of_sync=True, typev2=2))),
        # the server's fallback socket is then killed with its link group (smc_conn_free
        # skipped unregistering it): reproduced by `smcd-check kernel run peer-syncerr-first`
        (K.DECLINED, D.SYNCERR, 0, None), (K.ERROR, None, 0, Errno.ECONNABORTED),
        effects=(LgrSyncErr(lgr_id=256), ConnAbort(lgr_id=256, first_contact_local=False))),
    Row("out-of-sync Decline after a first-contact Accept: the listen worker deadlocks",
        "smc_clc_wait_msg (sync_err, delist), smc_conn_free, smc_lgr_cleanup_early (lock_sock)",
        alone(S, LOOP, [ListenWork(), RecvBytes(data=proposal_of(LOOP)), SERVER_CREATED,
                        RecvBytes(data=clc.encode(clc.Decline(
                            version=2, typev2=clc.SMC_FIRST_CONTACT_MASK,
                            peer_diagnosis=int(D.SYNCERR), os_type=2)))]),
        ((S, ClcType.ACCEPT, {"length": 130}),), server=(K.HANG, None, 0, None),
        effects=(LgrSyncErr(lgr_id=256),)),
    Row("Accept with a CHID the client did not offer", "smc_v2_determine_accepted_chid",
        alone(C, LOOP, [Connect(), RecvBytes(data=accept(chid=0x4321, gid_ext=0))]),
        ((C, ClcType.PROPOSAL, {}),), client=(K.ERROR, None, 0, Errno.EPROTO)),
    Row("mode mismatch: Accept v1 to a v2-only client", "smc_connect_check_aclc",
        alone(C, LOOP, [Connect(), RecvBytes(data=clc.encode(clc.Accept(
            version=1, typev2=2, gid=GID, token=TOK_S, linkid=bytes(4))))]),
        ((C, ClcType.PROPOSAL, {}), (C, ClcType.DECLINE, decl(1, D.MODEUNSUPP))),
        client=(K.DECLINED, D.MODEUNSUPP, 0, None)),
    Row("Accept version 3 to a client without v1 device: NULL ism_dev[0]",
        "smc_connect_ism (version != SMC_V2 skips the CHID), smc_conn_create",
        alone(C, LOOP, [Connect(), RecvBytes(data=accept(version=3))]),
        ((C, ClcType.PROPOSAL, {}),), client=(K.OOPS, None, 0, None)),
    Row("first-contact Confirm with another release", "smc_clc_v2x_features_confirm_check",
        alone(S, LOOP, [ListenWork(), RecvBytes(data=proposal_of(LOOP)), SERVER_CREATED,
                        RecvBytes(data=confirm(first_contact_ext=clc.FirstContactExt(
                            release=0, hostname=b"x".ljust(32))))]),
        ((S, ClcType.ACCEPT, {}), (S, ClcType.DECLINE, decl(2, D.RELEASEERR))),
        server=(K.DECLINED, D.RELEASEERR, 0, None),
        effects=(ConnAbort(lgr_id=256, first_contact_local=True),)),
    Row("first-contact Accept of 78 bytes: the client reads its trailer as the extension",
        "smc_get_clc_first_contact_ext (fixed offset 74 of a zeroed 160-byte buffer)",
        alone(C, LOOP, [Connect(), RecvBytes(data=accept(first_contact_ext=None)),
                        CLIENT_CREATED, AttachDone()]),
        ((C, ClcType.PROPOSAL, {}),
         (C, ClcType.CONFIRM, {"length": 130, "first_contact_ext": clc.FirstContactExt(
             release=0xD4 & 0xF, hostname=b"(none)".ljust(32),
             v2x=clc.FirstContactExtV2x(feature_mask=0))})),
        client=ACTIVE),
    Row("IP prefix mismatch (v1)", "smc_listen_prfx_check",
        pair(V1_CLIENT, native(ISM_B, ISM_A, 0x0B000002, v2=False), same_host=False),
        ((C, ClcType.PROPOSAL, {}), (S, ClcType.DECLINE, decl(2, D.DIFFPREFIX))),
        (K.DECLINED, D.PEERDECL, int(D.DIFFPREFIX), None), (K.DECLINED, D.DIFFPREFIX, 0, None)),
    Row("server cannot get its VLAN id (v1)", "smc_listen_find_device (smc_vlan_by_tcpsk)",
        pair(V1_CLIENT, native(ISM_B, ISM_A, 0x0A000002, v2=False, vlan_id=None),
             same_host=False),
        ((C, ClcType.PROPOSAL, {}), (S, ClcType.DECLINE, decl(2, D.GETVLANERR))),
        (K.DECLINED, D.PEERDECL, int(D.GETVLANERR), None), (K.DECLINED, D.GETVLANERR, 0, None)),
    Row("server cannot attach the client's DMB: error without fallback",
        "smc_listen_work (smcd_buf_attach < 0 -> smc_listen_decline -> out_err)",
        pair(LOOP, LOOP, server_env=SideEnv(attach_errno=Errno.EINVAL, dmb_tokens=(TOK_S,)),
             client_env=SideEnv(dmb_tokens=(TOK_C,))),
        ((C, ClcType.PROPOSAL, {}), (S, ClcType.ACCEPT, {}), (C, ClcType.CONFIRM, {})),
        ACTIVE, (K.ERROR, None, 0, Errno.EINVAL),
        effects=(ConnAbort(lgr_id=256, first_contact_local=True),)),
    Row("client cannot attach the server's DMB: MEM, fallback",
        "smc_connect_ism (smcd_buf_attach: 'try to fallback')",
        pair(LOOP, LOOP, client_env=SideEnv(attach_errno=Errno.ENOMEM)),
        ((C, ClcType.PROPOSAL, {}), (S, ClcType.ACCEPT, {}), (C, ClcType.DECLINE,
                                                              decl(2, D.MEM))),
        (K.DECLINED, D.MEM, 0, None), (K.DECLINED, D.PEERDECL, int(D.MEM), None)),
    Row("v1 Proposal offering D without an SMC-D area (iparea_offset 0)",
        "smc_get_clc_msg_smcd (NULL), smc_find_ism_v1_device_serv",
        alone(S, V1_SERVER, [ListenWork(), RecvBytes(data=v1_proposal_without_smcd_area())]),
        ((S, ClcType.DECLINE, decl(1, D.NOSMCDDEV)),),
        server=(K.DECLINED, D.NOSMCDDEV, 0, None)),
    Row("Proposal without SMC-Dv2 extension (offset 0)",
        "smc_get_clc_smcd_v2_ext (NULL), smc_listen_v2_check",
        alone(S, LOOP, [ListenWork(), RecvBytes(data=proposal_without_smcd_v2_ext())]),
        ((S, ClcType.DECLINE, decl(2, D.NOV2DEXT)),),
        server=(K.DECLINED, D.NOV2DEXT, 0, None)),
    Row("emulated CHID entry without its gid_ext entry", "smc_find_ism_v2_device_serv",
        alone(S, LOOP, [ListenWork(), RecvBytes(data=proposal_with(
            user_eids=(UEID.encode().ljust(32),),
            gidchids=(clc.GidChid(gid=GID, chid=0xFFFF),)))]),
        ((S, ClcType.DECLINE, decl(2, D.NOSMCD2DEV)),),
        server=(K.DECLINED, D.NOSMCD2DEV, 0, None)),
    Row("SMC-R v1 only (the server has no RoCE device)", "smc_find_rdma_v1_device_serv",
        alone(S, LOOP, [ListenWork(), RecvBytes(data=proposal_with(
            typev1=clc.SmcType.R, typev2=clc.SmcType.N,
            prefix=clc.ProposalPrefix(outgoing_subnet=bytes([127, 0, 0, 0]), prefix_len=8)))]),
        ((S, ClcType.DECLINE, decl(2, D.NOSMCDEV)),),
        server=(K.DECLINED, D.NOSMCDEV, 0, None)),
    Row("SMC-Rv2 with max_conns below 16", "smc_clc_srv_v2x_features_validate",
        alone(S, LOOP, [ListenWork(), RecvBytes(data=clc.encode(replace_v2(
            clc.build_proposal(typev2=clc.SmcType.R, user_eids=(UEID.encode().ljust(32),)),
            max_conns=8, max_links=1)))]),
        ((S, ClcType.DECLINE, decl(2, D.MAXCONNERR)),),
        server=(K.DECLINED, D.MAXCONNERR, 0, None)),
    Row("IPsec on the server", "smc_listen_work (using_ipsec)",
        pair(LOOP, host_config(devices=(LO,), ueids=(UEID,), ipsec=True)),
        ((C, ClcType.PROPOSAL, {}), (S, ClcType.DECLINE, decl(2, D.IPSEC))),
        (K.DECLINED, D.PEERDECL, int(D.IPSEC), None), (K.DECLINED, D.IPSEC, 0, None)),
    Row("server kernel of release 0: 36-byte first-contact extensions (114-byte messages)",
        "smc_listen_v2_check (release_nr = min), smc_clc_fill_fce_v2x",
        pair(LOOP, host_config(devices=(LO,), ueids=(UEID,), smc_release=0), **ENVS),
        ((C, ClcType.PROPOSAL, {}),
         (S, ClcType.ACCEPT, {"length": 114, "first_contact_ext": clc.FirstContactExt(
             release=0, hostname=b"(none)".ljust(32))}),
         (C, ClcType.CONFIRM, {"length": 114, "first_contact_ext": clc.FirstContactExt(
             release=0, hostname=b"(none)".ljust(32))})),
        ACTIVE, ACTIVE),
    Row("feature mask: the client confirms the common features only",
        "smc_clc_clnt_v2x_features_validate (fce feature_mask & SMC_FEATURE_MASK)",
        pair(LOOP, host_config(devices=(LO,), ueids=(UEID,), feature_mask=0x0003), **ENVS),
        ((C, ClcType.PROPOSAL, {}),
         (S, ClcType.ACCEPT, {"first_contact_ext": clc.FirstContactExt(
             release=1, hostname=b"(none)".ljust(32),
             v2x=clc.FirstContactExtV2x(feature_mask=0x0003))}),
         (C, ClcType.CONFIRM, {"first_contact_ext": clc.FirstContactExt(
             release=1, hostname=b"(none)".ljust(32),
             v2x=clc.FirstContactExtV2x(feature_mask=0x0001))})),
        ACTIVE, ACTIVE),
    Row("Accept with typev1 N (neither R nor D): invalid, not MODEUNSUPP",
        "smc_clc_msg_acc_conf_valid (6.12.118's smc_connect_check_aclc has no typev1 check)",
        alone(C, LOOP, [Connect(), RecvBytes(data=with_byte(accept(), 7, 0x2A))]),
        ((C, ClcType.PROPOSAL, {}),), client=(K.ERROR, None, 0, Errno.EPROTO)),
)


@pytest.mark.parametrize("row", ROWS, ids=[r.path for r in ROWS])
def test_handshake_scenario(row: Row) -> None:
    """Messages (in order, with the listed fields), outcomes and effects are the kernel's."""
    result = row.run()
    assert len(result.messages) == len(row.messages), [
        (r.value, m.type.name) for r, m in result.messages]
    for (role, msg), (want_role, want_type, fields) in zip(result.messages, row.messages,
                                                           strict=True):
        assert (role, msg.type) == (want_role, want_type)
        for name, value in fields.items():
            assert getattr(msg, name) == value, (want_type.name, name)
    if row.client is not None:
        assert result.outcomes[C] == row.client
    if row.server is not None:
        assert result.outcomes[S] == row.server
    for eff in row.effects:
        assert eff in result.effects, eff
    # a failed side never leaves a connection registered - except a HANG: the deadlocked
    # worker holds it (and its link group) for good, as on the real kernel
    for st in result.states.values():
        if st.phase not in (Phase.ACTIVE, Phase.HANG):
            assert st.conn is None


def test_handshake_scenario_table_covers_every_outcome_kind() -> None:
    """The table exercises ACTIVE, DECLINED, FALLBACK, ERROR, OOPS and HANG."""
    kinds = {o[0] for row in ROWS for o in (row.client, row.server) if o is not None}
    assert kinds == set(OutcomeKind)
