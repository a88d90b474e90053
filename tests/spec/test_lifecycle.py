"""Unit tests of spec/lifecycle.py: one kernel rule per test, allowed and forbidden steps.

Expected values come from the kernel's rules (net/smc 6.12.118, shared/domain/lifecycle.md),
written out by hand here, not from running the spec: e.g. loopback hands out the lowest free
slot, so two DMBs sit on slots 0 and 1; a DMB stays registered after its connection is freed.
"""

from __future__ import annotations

import pytest

from smcd_check.spec import lifecycle as L
from smcd_check.spec.errors import ForbiddenStep, PreconditionViolated
from smcd_check.spec.faults import Fault
from smcd_check.spec.lifecycle import (
    PEER_CONN_ABORT,
    PEER_CONN_CLOSED,
    PEER_DONE_WRITING,
    ConnAbort,
    ConnClose,
    ConnShutdown,
    DevRegisterDmb,
    HostCreateConn,
    HostFreeConn,
    HostReadDmb,
    HostReuseDmb,
    HostUnregisterDmb,
    HostWriteDmb,
    LgrFreeDelayed,
    LgrTerminate,
    LgrTerminateWork,
    LifecycleConfig,
    LifecycleState,
    PeerAttachDmb,
    PeerDetachDmb,
    Role,
    Stage,
)

LO = LifecycleConfig(max_conns=3, lgr_errors=True)
LO_COPY = LifecycleConfig(max_conns=3, merged=False)
ISM2 = LifecycleConfig(n_hosts=2, emulated=False, merged=False, max_conns=3)


def run(
    cfg: LifecycleConfig, *actions: L.Action, s: LifecycleState | None = None
) -> LifecycleState:
    """Apply ``actions`` in order, checking each is also offered by enabled_actions."""
    s = L.initial_state(cfg) if s is None else s
    for a in actions:
        assert a in list(L.enabled_actions(cfg, s)), f"{a} not enabled"
        s = L.step(cfg, s, a)
    return s


def srv(pair: int, host: int = 0, peer: int = 0, vlan: int = 0, version: int = 2) -> HostCreateConn:
    return HostCreateConn(
        pair=pair, role=Role.SERV, host=host, peer_host=peer, vlan=vlan, version=version
    )


def cli(pair: int, host: int = 0, peer: int = 0, vlan: int = 0, version: int = 2) -> HostCreateConn:
    return HostCreateConn(
        pair=pair, role=Role.CLNT, host=host, peer_host=peer, vlan=vlan, version=version
    )


def establish(pair: int = 0) -> tuple[L.Action, ...]:
    """Loopback merged handshake of ``pair``: server conn+DMB, client conn+DMB, both attach."""
    c, v = 2 * pair, 2 * pair + 1
    return (
        srv(pair),
        DevRegisterDmb(conn=v, size=0),
        cli(pair),
        DevRegisterDmb(conn=c, size=0),
        PeerAttachDmb(conn=c),
        PeerAttachDmb(conn=v),
    )


def close_both(pair: int = 0) -> tuple[L.Action, ...]:
    c, v = 2 * pair, 2 * pair + 1
    return (
        ConnClose(conn=c),
        ConnClose(conn=v),
        PeerDetachDmb(conn=c),
        HostFreeConn(conn=c),
        PeerDetachDmb(conn=v),
        HostFreeConn(conn=v),
    )


def assert_forbidden(
    cfg: LifecycleConfig, s: LifecycleState, a: object, err: type, text: str
) -> None:
    before = s
    with pytest.raises(err) as info:
        L.step(cfg, s, a)  # type: ignore[arg-type]
    assert isinstance(info.value, ForbiddenStep) or err is PreconditionViolated
    assert text in str(info.value)
    assert s == before and hash(s) == hash(before)


def lgr(
    lgr_id: int = 0,
    host: int = 0,
    gid: int = 1,
    ext: int = 1,
    vlan: int = 0,
    version: int = 2,
    **kw: object,
) -> L.Lgr:
    return L.Lgr(
        lgr_id=lgr_id,
        host=host,
        role=Role.SERV,
        peer_gid=gid,
        peer_gid_ext=ext,
        vlan_id=vlan,
        smc_version=version,
        conns=(9,),
        holders=(9,),
        **kw,
    )  # type: ignore[arg-type]


# --- configuration ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kwargs", "text"),
    [
        ({"merged": True, "emulated": False}, "merged=True needs emulated=True"),
        ({"dmb_sizes": (7,)}, "dmb_sizes=(7,)"),
        ({"dmb_sizes": (1, 0)}, "must be sorted"),
        ({"n_hosts": 2, "links": ((0, 1),)}, "loopback-ism reaches only its host"),
        ({"versions": (1,)}, "loopback-ism is SMC-D v2 only"),
        ({"max_dmbs": 0}, "max_dmbs=0"),
        ({"faults": frozenset({"x"})}, "expected a frozenset of Fault"),
    ],
)
def test_LifecycleConfig_rejects_unsupported_values(kwargs: dict[str, object], text: str) -> None:
    with pytest.raises(L.LifecycleConfigError, match=text.replace("(", r"\(").replace(")", r"\)")):
        LifecycleConfig(**kwargs)  # type: ignore[arg-type]


def test_defaults_match_the_kernel_limits() -> None:
    assert L.LifecycleConfig().max_dmbs == 5000  # SMC_LO_MAX_DMBS
    assert [L.dmb_bytes(k) for k in range(7)] == [16384 << k for k in range(7)]
    assert L.dmb_bytes(6) == 1024 * 1024
    assert L.device_chid(LO, 0) == 0xFFFF
    assert L.device_gid(LO, 0) == (1, 1) and L.device_gid(ISM2, 1) == (2, 0)


def test_initial_state_is_empty_and_quiescent() -> None:
    s = L.initial_state(LO)
    assert s == LifecycleState()
    assert L.quiescent(LO, s)
    assert list(L.enabled_actions(LO, s)) == [srv(0)]


# --- link group creation and reuse (smc_conn_create, smcd_lgr_match) ------------------------------


def test_first_contact_creates_lgr_with_peer_and_one_reference() -> None:
    s = run(LO, srv(0))
    assert s.lgrs == (
        L.Lgr(
            lgr_id=0,
            host=0,
            role=Role.SERV,
            peer_gid=1,
            peer_gid_ext=1,
            vlan_id=0,
            smc_version=2,
            conns=(1,),
            holders=(1,),
        ),
    )
    c = L.get_conn(s, 1)
    assert (c.registered, c.holds_lgr, c.first_contact, c.stage) == (
        True,
        True,
        True,
        Stage.CREATED,
    )


def find(
    cfg: LifecycleConfig,
    s: LifecycleState,
    *,
    host: int = 0,
    gid: int = 1,
    ext: int = 1,
    vlan: int = 0,
    version: int = 2,
) -> int | None:
    return L.find_reusable_lgr(cfg, s, host, gid, ext, L.device_chid(cfg, host), vlan, version)


def test_reuse_needs_same_peer_gid() -> None:
    s = LifecycleState(lgrs=(lgr(),))
    assert find(LO, s) == 0
    assert find(LO, s, gid=2) is None


def test_reuse_on_emulated_device_needs_same_gid_ext() -> None:
    s = LifecycleState(lgrs=(lgr(ext=5),))
    assert find(LO, s, ext=5) == 0
    assert find(LO, s, ext=6) is None


def test_reuse_on_native_ism_ignores_gid_ext() -> None:
    s = LifecycleState(lgrs=(lgr(ext=0),))
    assert find(ISM2, s, ext=0) == 0
    assert find(ISM2, s, ext=7) == 0  # not compared for a non-emulated device


def test_reuse_needs_same_device() -> None:
    s = LifecycleState(lgrs=(lgr(host=1, gid=1, ext=0),))
    assert find(ISM2, s, host=0, ext=0) is None
    assert find(ISM2, s, host=1, ext=0) == 0


def test_reuse_refused_after_sync_err() -> None:
    assert find(LO, LifecycleState(lgrs=(lgr(sync_err=True),))) is None


def test_v1_reuse_needs_same_vlan_but_v2_ignores_it() -> None:
    s = LifecycleState(lgrs=(lgr(ext=0, vlan=5, version=1),))
    assert find(ISM2, s, ext=0, vlan=5, version=1) == 0
    assert find(ISM2, s, ext=0, vlan=6, version=1) is None
    assert find(ISM2, s, ext=0, vlan=6, version=2) == 0


def test_reuse_ignores_role_and_skips_delisted_lgrs() -> None:
    client_lgr = L.replace(lgr(), role=Role.CLNT)
    assert find(LO, LifecycleState(lgrs=(client_lgr,))) == 0
    assert find(LO, LifecycleState(lgrs=(lgr(freeing=True),))) is None


def test_reuse_takes_the_oldest_matching_lgr() -> None:
    s = LifecycleState(lgrs=(lgr(lgr_id=0, gid=2), lgr(lgr_id=1), lgr(lgr_id=2)))
    assert find(LO, s) == 1


def test_reuse_unknown_chid_is_an_error() -> None:
    with pytest.raises(L.LifecycleConfigError, match="no SMC-D device with CHID 0x0100"):
        L.find_reusable_lgr(LO, LifecycleState(), 0, 1, 1, 0x0100, 0, 2)


def test_fault_lgr_reuse_peer_mismatch_is_the_v6_8_precedence_bug() -> None:
    faulty_ism = L.replace(ISM2, faults=frozenset({Fault.LGR_REUSE_PEER_MISMATCH}))
    faulty_lo = L.replace(LO, faults=frozenset({Fault.LGR_REUSE_PEER_MISMATCH}))
    s = LifecycleState(lgrs=(lgr(ext=0),))
    assert find(faulty_ism, s, gid=2, ext=0) == 0  # native: any lgr matches
    s_lo = LifecycleState(lgrs=(lgr(ext=5),))
    assert find(faulty_lo, s_lo, ext=6) is None  # gid, device, emulated all true: ext compared
    assert find(faulty_lo, s_lo, gid=3, ext=6) == 0  # gid differs: the ?: yields 1


def test_client_told_first_contact_creates_new_lgr_although_one_matches() -> None:
    s = run(LO, srv(0), DevRegisterDmb(conn=1, size=0), cli(0))
    assert [lg.lgr_id for lg in s.lgrs] == [0, 1]
    assert L.get_conn(s, 0).lgr == 1 and L.get_conn(s, 0).first_contact


def test_server_on_loopback_joins_the_client_created_lgr_first_in_list() -> None:
    # lgr 0 (server's) was freed and dropped; the client's lgr is the only one left
    s = run(
        LO, *establish(0), *close_both(0), LgrFreeDelayed(lgr=0), HostUnregisterDmb(lgr=0, desc=0)
    )
    assert [lg.lgr_id for lg in s.lgrs] == [1]
    s = run(LO, srv(1), s=s)
    assert L.get_conn(s, 3).lgr == 1 and not L.get_conn(s, 3).first_contact


def test_joining_cancels_the_pending_delayed_free() -> None:
    s = run(LO, *establish(0), *close_both(0))
    assert L.get_lgr(s, 0).free_pending
    s = run(LO, srv(1), s=s)
    assert L.get_lgr(s, 0).free_pending is False
    assert L.get_lgr(s, 0).conns == (3,)


def test_client_without_lgr_after_server_reuse_declines_with_syncerr() -> None:
    cfg = LifecycleConfig(n_hosts=2, emulated=False, merged=False, max_conns=2, links=((0, 1),))
    hs = (
        srv(0, host=1, peer=0),
        DevRegisterDmb(conn=1, size=0),
        cli(0, host=0, peer=1),
        DevRegisterDmb(conn=0, size=0),
        L.HostSavePeerInfo(conn=0),
        L.HostSavePeerInfo(conn=1),
        ConnClose(conn=0),
        ConnClose(conn=1),
        HostFreeConn(conn=0),
        HostFreeConn(conn=1),
    )
    s = run(cfg, *hs)
    client_lgr = L.get_conn(s, 0).lgr
    assert client_lgr is not None
    s = run(cfg, LgrFreeDelayed(lgr=client_lgr), s=s)
    s = run(cfg, srv(1, host=1, peer=0), HostReuseDmb(conn=3, size=0), s=s)
    with pytest.raises(L.LgrOutOfSync) as info:
        L.create_conn(
            cfg,
            s,
            pair=1,
            role=Role.CLNT,
            host=0,
            peer_host=1,
            vlan=0,
            smcd_version=2,
            first_contact_peer=False,
        )
    assert info.value.decline_code == 0x04000000
    s2 = run(cfg, cli(1, host=0, peer=1), s=s)
    server_lgr = L.get_lgr(s2, L.get_conn(s2, 3).lgr)  # type: ignore[arg-type]
    assert server_lgr.sync_err and server_lgr.freeing and server_lgr.terminate_pending
    assert L.get_conn(s2, 2).stage is Stage.DECLINED and L.get_conn(s2, 3).freed


def test_handshake_mutex_blocks_a_second_connection_on_the_host() -> None:
    s = run(LO, srv(0))
    assert srv(1) not in list(L.enabled_actions(LO, s))
    assert_forbidden(LO, s, srv(1), L.ConnStateError, "smc_server_lgr_pending")


# --- DMBs (register, reuse, slots, tokens) --------------------------------------------------------


def test_register_takes_lowest_slot_and_token_and_refcount_one() -> None:
    s = run(LO, srv(0), DevRegisterDmb(conn=1, size=0), cli(0), DevRegisterDmb(conn=0, size=0))
    assert [(n.sba_idx, n.token, n.refcnt, n.owned) for n in s.nodes] == [
        (0, 1, 1, True),
        (1, 2, 1, True),
    ]
    assert L.get_conn(s, 1).conn_set and L.get_desc(s, 0).owner == 1


def test_no_free_slot_is_enospc_and_leaves_state_unchanged() -> None:
    cfg = LifecycleConfig(max_conns=2, max_dmbs=1)
    s = run(cfg, srv(0), DevRegisterDmb(conn=1, size=0), cli(0))
    assert_forbidden(cfg, s, DevRegisterDmb(conn=0, size=0), L.NoFreeSlot, "all 1 DMB slots")
    assert list(L.enabled_actions(cfg, s))[-1] == L.HostDeclineConn(pair=0)


def test_size_search_falls_back_to_smaller_unused_dmb() -> None:
    cfg = LifecycleConfig(max_conns=3, max_dmbs=2, dmb_sizes=(0, 1))
    s = run(cfg, *establish(0), *close_both(0))
    # both DMBs (size 0) are unused now and all 2 slots are taken: wanting size 1 reuses size 0
    s = run(cfg, srv(1), s=s)
    assert L.dmb_search(cfg, s, 3, 1) == HostReuseDmb(conn=3, size=0)
    s2, tok = L.create_dmb(cfg, s, 3, 1)
    assert tok in {n.token for n in s.nodes} and s2.nodes == s.nodes


def test_new_size_is_registered_while_a_smaller_unused_one_waits() -> None:
    cfg = LifecycleConfig(max_conns=3, dmb_sizes=(0, 1))
    s = run(cfg, *establish(0), *close_both(0), srv(1))
    assert L.dmb_search(cfg, s, 3, 1) == DevRegisterDmb(conn=3, size=1)
    assert L.dmb_search(cfg, s, 3, 0) == HostReuseDmb(conn=3, size=0)


def test_reuse_of_unused_dmb_keeps_token_and_registers_nothing() -> None:
    s = run(LO, *establish(0), *close_both(0), srv(1))
    old = L.get_desc(s, 0)
    assert (old.used, old.owner) == (False, None)
    s2 = run(LO, HostReuseDmb(conn=3, size=0), s=s)
    assert s2.nodes == s.nodes
    assert L.get_desc(s2, 0).owner == 3 and L.get_conn(s2, 3).rmb == 0


def test_register_refused_while_an_unused_dmb_of_that_size_waits() -> None:
    s = run(LO, *establish(0), *close_both(0), srv(1))
    assert_forbidden(LO, s, DevRegisterDmb(conn=3, size=0), L.MustReuseDmb, "unused DMB desc")


def test_explicit_duplicate_token_is_refused() -> None:
    s = run(LO, srv(0), DevRegisterDmb(conn=1, size=0), cli(0))
    with pytest.raises(L.DuplicateToken, match="token 1 already names"):
        L.register_dmb(LO, s, 0, 0, token=1)
    s2, tok = L.register_dmb(LO, s, 0, 0, token=77)
    assert tok == 77 and L.find_node(s2, 77) is not None


# --- device ops: nocopy refcounts -----------------------------------------------------------------


def test_owner_unregister_while_attached_keeps_memory_token_and_slot() -> None:
    s = run(LO, *establish(0))
    server_tok = L.get_desc(s, 0).token
    assert L.find_node(s, server_tok).refcnt == 2  # type: ignore[union-attr]
    s2 = L.dev_unregister_dmb(LO, s, server_tok)
    node = L.find_node(s2, server_tok)
    assert node is not None and (node.refcnt, node.owned, node.sba_idx) == (1, False, 0)
    assert L.dev_move_data(LO, s2, server_tok) is not None  # token still resolves
    s3 = L.dev_attach_dmb(LO, s2, server_tok)  # even a new attach succeeds
    assert L.find_node(s3, server_tok).refcnt == 2  # type: ignore[union-attr]
    with pytest.raises(L.DoubleUnregister, match="already unregistered by its owner"):
        L.dev_unregister_dmb(LO, s2, server_tok)


def test_last_detach_releases_node_and_slot() -> None:
    s = run(LO, *establish(0))
    tok = L.get_desc(s, 0).token
    s = L.dev_detach_dmb(LO, L.dev_unregister_dmb(LO, s, tok), tok)
    assert L.find_node(s, tok) is None
    assert all(n.sba_idx != 0 for n in s.nodes)


@pytest.mark.parametrize("op", [L.dev_unregister_dmb, L.dev_attach_dmb, L.dev_detach_dmb])
def test_device_ops_on_unknown_token_are_einval(op: object) -> None:
    with pytest.raises(L.UnknownToken, match="token 42 is not registered"):
        op(LO, LifecycleState(), 42)  # type: ignore[operator]
    with pytest.raises(L.UnknownToken):
        L.dev_move_data(LO, LifecycleState(), 42)


def test_fault_unregister_while_attached_frees_memory_under_the_ghost() -> None:
    cfg = L.replace(LO, faults=frozenset({Fault.UNREGISTER_WHILE_ATTACHED}))
    s = run(cfg, *establish(0))
    tok = L.get_desc(s, 0).token
    s2 = L.dev_unregister_dmb(cfg, s, tok)
    assert L.find_node(s2, tok) is None
    assert L.get_conn(s2, 0).ghost_dangling  # client's ghost points at freed memory
    s3 = L.step(cfg, s2, HostWriteDmb(conn=0))
    assert s3.uar
    with pytest.raises(L.UseAfterRelease, match="ghost sndbuf"):
        L.write_dmb(LO, s2, 0)  # the correct kernel never gets here: refused


# --- close, abort and their CDC flags -------------------------------------------------------------


def test_close_without_unread_data_announces_peer_conn_closed() -> None:
    s = run(LO, *establish(0), ConnClose(conn=0))
    assert L.get_conn(s, 0).tx_flags == PEER_CONN_CLOSED
    assert L.get_conn(s, 1).rx_flags == PEER_CONN_CLOSED
    assert not L.may_write(L.get_conn(s, 1))  # sendmsg after a received close: -ECONNRESET


def test_close_with_unread_data_announces_abort_and_receiver_echoes_it() -> None:
    s = run(LO, *establish(0), HostWriteDmb(conn=1), ConnClose(conn=0))
    assert L.get_conn(s, 0).tx_flags == PEER_CONN_ABORT
    server = L.get_conn(s, 1)
    assert server.rx_flags == PEER_CONN_ABORT and server.tx_flags & PEER_CONN_ABORT
    s = run(LO, ConnClose(conn=1), s=s)  # SMC_PROCESSABORT: close sends abort
    assert L.get_conn(s, 0).rx_flags == PEER_CONN_ABORT


def test_shutdown_announces_done_writing_and_peer_may_still_write() -> None:
    s = run(LO, *establish(0), ConnShutdown(conn=0))
    assert L.get_conn(s, 1).rx_flags == PEER_DONE_WRITING
    assert L.may_write(L.get_conn(s, 1)) and not L.may_write(L.get_conn(s, 0))
    s = run(LO, HostWriteDmb(conn=1), HostReadDmb(conn=0), s=s)
    assert not L.get_conn(s, 0).unread


def test_write_after_close_is_refused_with_the_reason() -> None:
    s = run(LO, *establish(0), ConnClose(conn=0))
    assert_forbidden(LO, s, HostWriteDmb(conn=0), L.ConnStateError, "cannot send")
    assert_forbidden(LO, s, HostReadDmb(conn=0), L.ConnStateError, "nothing to read")


def test_abort_closes_at_once_and_may_free_immediately() -> None:
    s = run(LO, *establish(0), ConnAbort(conn=0))
    c = L.get_conn(s, 0)
    assert c.closed and c.aborted and L.may_free(c)
    assert L.get_conn(s, 1).rx_flags == PEER_CONN_ABORT


def test_closer_waits_for_the_peer_before_freeing() -> None:
    s = run(LO, *establish(0), ConnClose(conn=0))
    assert not L.may_free(L.get_conn(s, 0))
    assert_forbidden(LO, s, PeerDetachDmb(conn=0), L.ConnStateError, "detach is the start")
    s = run(LO, ConnClose(conn=1), s=s)
    assert L.may_free(L.get_conn(s, 0)) and L.may_free(L.get_conn(s, 1))


# --- smc_conn_free order, delayed free, unregister at lgr free ------------------------------------


def test_free_order_detach_then_unuse_unregister_schedule() -> None:
    s = run(LO, *establish(0), ConnClose(conn=0), ConnClose(conn=1))
    assert_forbidden(LO, s, HostFreeConn(conn=0), L.ConnStateError, "PeerDetachDmb first")
    s = run(LO, PeerDetachDmb(conn=0), s=s)
    c = L.get_conn(s, 0)
    assert c.ghost_token is None and not c.conn_set and c.registered
    server_node = L.find_node(s, L.get_desc(s, 0).token)
    assert server_node is not None and server_node.refcnt == 1  # ghost reference dropped
    s = run(LO, HostFreeConn(conn=0), s=s)
    c = L.get_conn(s, 0)
    assert c.freed and not c.registered and not c.holds_lgr
    client_desc = L.get_desc(s, L.get_conn(s, 0).rmb)  # type: ignore[arg-type]
    assert (client_desc.used, client_desc.owner) == (False, None)
    assert L.find_node(s, client_desc.token) is not None  # still registered
    assert L.get_lgr(s, 1).free_pending and L.get_lgr(s, 1).conns == ()


def test_dmbs_are_unregistered_only_when_the_lgr_is_freed() -> None:
    s = run(LO, *establish(0), *close_both(0))
    assert len(s.nodes) == 2 and len(s.descs) == 2
    assert_forbidden(
        LO, s, HostUnregisterDmb(lgr=0, desc=0), L.LgrStateError, "only when the lgr is freed"
    )
    s = run(LO, LgrFreeDelayed(lgr=0), s=s)
    assert L.get_lgr(s, 0).freeing and L.get_lgr(s, 0).released
    s = run(LO, HostUnregisterDmb(lgr=0, desc=0), s=s)
    assert L.find_lgr(s, 0) is None and [d.desc_id for d in s.descs] == [1]
    s = run(LO, LgrFreeDelayed(lgr=1), HostUnregisterDmb(lgr=1, desc=1), s=s)
    assert s.lgrs == () and s.descs == () and s.nodes == () and L.quiescent(LO, s)


def test_buffers_are_freed_smallest_size_first() -> None:
    cfg = LifecycleConfig(max_conns=3, dmb_sizes=(0, 1))
    s = run(cfg, srv(0), DevRegisterDmb(conn=1, size=1))
    s = L.abort_conn(cfg, s, 1, local_first=False)  # frees the conn, keeps the lgr
    s = run(cfg, srv(1), DevRegisterDmb(conn=3, size=0), s=s)
    s = L.abort_conn(cfg, s, 3, local_first=False)
    s = run(cfg, LgrFreeDelayed(lgr=0), s=s)
    assert L.free_order(s, L.get_lgr(s, 0)) == (1, 0)
    assert_forbidden(cfg, s, HostUnregisterDmb(lgr=0, desc=0), L.LgrStateError, "frees desc 1")


def test_delayed_free_is_a_noop_when_connections_came_back() -> None:
    s = run(LO, *establish(0), *close_both(0))
    s2 = L.lgr_free_delayed(LO, L._put_lgr(s, L.replace(L.get_lgr(s, 0), conns=(1,))), 0)
    assert not L.get_lgr(s2, 0).freeing and not L.get_lgr(s2, 0).free_pending


# --- termination --------------------------------------------------------------------------------


def test_terminate_kills_connections_and_keeps_dmbs_until_their_sockets_free() -> None:
    s = run(LO, *establish(0), LgrTerminate(lgr=0))
    lg = L.get_lgr(s, 0)
    assert lg.freeing and not lg.listed and lg.terminate_pending
    assert_forbidden(LO, s, LgrTerminate(lgr=0), L.LgrTerminating, "already terminating")
    s = run(LO, LgrTerminateWork(lgr=0), s=s)
    server = L.get_conn(s, 1)
    assert server.killed and not server.registered and server.ghost_token is None
    assert L.get_conn(s, 0).rx_flags & PEER_CONN_ABORT  # the kill's abort CDC arrived
    lg = L.get_lgr(s, 0)
    assert lg.terminating and lg.released and lg.holders == (1,) and len(s.nodes) == 2
    s = run(LO, ConnClose(conn=1), HostFreeConn(conn=1), s=s)
    assert L.get_lgr(s, 0).dying
    s = run(LO, HostUnregisterDmb(lgr=0, desc=0), s=s)
    client_node = L.find_node(s, L.get_conn(s, 0).ghost_token)  # type: ignore[arg-type]
    assert client_node is not None and not client_node.owned  # kept alive by the client's ghost


def test_conn_freed_while_lgr_delisted_stays_registered_until_killed() -> None:
    s = run(
        LO,
        *establish(0),
        ConnAbort(conn=1),
        LgrTerminate(lgr=0),
        PeerDetachDmb(conn=1),
        HostFreeConn(conn=1),
    )
    assert L.get_conn(s, 1).registered and L.get_lgr(s, 0).conns == (1,)
    s = run(LO, LgrTerminateWork(lgr=0), s=s)
    assert L.get_lgr(s, 0).conns == () and L.get_conn(s, 1).killed


def test_abort_conn_of_first_contact_terminates_its_lgr_at_once() -> None:
    s = run(LO, srv(0), DevRegisterDmb(conn=1, size=0))
    s = L.abort_conn(LO, s, 1, local_first=True)
    lg = L.get_lgr(s, 0)
    assert lg.terminating and lg.dying and not lg.listed  # smc_lgr_cleanup_early
    s = run(LO, HostUnregisterDmb(lgr=0, desc=0), s=s)
    assert s.lgrs == () and s.descs == () and s.nodes == ()
    assert L.get_conn(s, 1).stage is Stage.DECLINED and L.get_conn(s, 1).freed


def test_abort_conn_of_a_joiner_leaves_the_lgr_to_its_delayed_free() -> None:
    s = run(LO, srv(0), DevRegisterDmb(conn=1, size=0))
    s = L.abort_conn(LO, s, 1, local_first=False)
    assert L.get_lgr(s, 0).free_pending and L.get_lgr(s, 0).listed


# --- step contract -------------------------------------------------------------------------------


def test_step_rejects_non_actions_and_unknown_ids() -> None:
    s = L.initial_state(LO)
    assert_forbidden(LO, s, object(), PreconditionViolated, "not a lifecycle action")
    assert_forbidden(LO, s, HostWriteDmb(conn=5), L.NoSuchConn, "no connection cid=5")
    assert_forbidden(LO, s, LgrFreeDelayed(lgr=3), L.NoSuchLgr, "no link group lgr=3")


def test_enabled_actions_are_deterministic_and_all_accepted() -> None:
    s = run(LO, *establish(0), HostWriteDmb(conn=0))
    first = list(L.enabled_actions(LO, s))
    assert first == list(L.enabled_actions(LO, s))
    for a in first:
        L.step(LO, s, a)
    assert HostReadDmb(conn=1) in first and srv(1) in first


def test_copy_mode_learns_token_without_attach() -> None:
    s = run(
        LO_COPY,
        srv(0),
        DevRegisterDmb(conn=1, size=0),
        cli(0),
        DevRegisterDmb(conn=0, size=0),
        L.HostSavePeerInfo(conn=0),
        L.HostSavePeerInfo(conn=1),
    )
    assert all(n.refcnt == 1 for n in s.nodes)
    assert L.get_conn(s, 0).peer_token == L.get_desc(s, 0).token
    assert_forbidden(LO_COPY, s, PeerAttachDmb(conn=0), L.ConnStateError, "needs merged mode")


# --- every action type: one forbidden case, refused with its reason, state unchanged -------------


def _forbidden_cases() -> list[
    tuple[str, LifecycleConfig, tuple[L.Action, ...], object, type, str]
]:
    est = establish(0)
    return [
        ("HostCreateConn", LO, (), cli(0), L.ConnStateError, "acts on the server's Accept"),
        (
            "HostReuseDmb",
            LO,
            (srv(0),),
            HostReuseDmb(conn=1, size=0),
            L.DmbNotRegistered,
            "no unused DMB of size 0",
        ),
        (
            "DevRegisterDmb",
            LO,
            est,
            DevRegisterDmb(conn=1, size=0),
            L.ConnStateError,
            "right after smc_conn_create",
        ),
        (
            "HostDeclineConn",
            LO,
            est,
            L.HostDeclineConn(pair=0),
            L.ConnStateError,
            "no handshake step of this pair has failed",
        ),
        (
            "PeerAttachDmb",
            LO,
            (srv(0),),
            PeerAttachDmb(conn=1),
            L.ConnStateError,
            "has not arrived yet",
        ),
        (
            "HostSavePeerInfo",
            LO,
            est,
            L.HostSavePeerInfo(conn=0),
            L.ConnStateError,
            "merged mode attaches",
        ),
        ("HostWriteDmb", LO, (srv(0),), HostWriteDmb(conn=1), L.ConnStateError, "cannot send"),
        ("HostReadDmb", LO, est, HostReadDmb(conn=0), L.ConnStateError, "nothing to read"),
        (
            "ConnShutdown",
            LO,
            (*est, ConnShutdown(conn=0)),
            ConnShutdown(conn=0),
            L.ConnStateError,
            "already shut down",
        ),
        (
            "ConnClose",
            LO,
            (*est, ConnClose(conn=0)),
            ConnClose(conn=0),
            L.ConnStateError,
            "not yet closed",
        ),
        (
            "ConnAbort",
            LifecycleConfig(close_abort_race=False),
            est,
            ConnAbort(conn=0),
            L.ConnStateError,
            "switched off",
        ),
        ("PeerDetachDmb", LO, est, PeerDetachDmb(conn=0), L.ConnStateError, "detach is the start"),
        ("HostFreeConn", LO, est, HostFreeConn(conn=0), L.ConnStateError, "socket is done"),
        (
            "LgrFreeDelayed",
            LO,
            est,
            LgrFreeDelayed(lgr=0),
            L.LgrStateError,
            "no delayed free is queued",
        ),
        (
            "LgrTerminate",
            LifecycleConfig(lgr_errors=False),
            est,
            LgrTerminate(lgr=0),
            L.LgrStateError,
            "switched off",
        ),
        (
            "LgrTerminateWork",
            LO,
            est,
            LgrTerminateWork(lgr=0),
            L.LgrStateError,
            "no terminate work is queued",
        ),
        (
            "HostUnregisterDmb",
            LO,
            est,
            HostUnregisterDmb(lgr=1, desc=0),
            L.DmbNotRegistered,
            "belongs to lgr 0",
        ),
    ]


@pytest.mark.parametrize(
    ("label", "cfg", "prefix", "action", "err", "text"),
    _forbidden_cases(),
    ids=[c[0] for c in _forbidden_cases()],
)
def test_each_action_type_refuses_with_reason_and_no_change(
    label: str,
    cfg: LifecycleConfig,
    prefix: tuple[L.Action, ...],
    action: object,
    err: type,
    text: str,
) -> None:
    s = run(cfg, *prefix)
    assert action not in list(L.enabled_actions(cfg, s)), label
    assert_forbidden(cfg, s, action, err, text)


def test_forbidden_table_covers_every_action_type() -> None:
    assert {c[0] for c in _forbidden_cases()} == {t.__name__ for t in L.ACTION_TYPES}


# ------------------------------------------------------------------ conformance functions


def test_a_link_group_lists_its_connections_in_registration_order() -> None:
    """conns_all is keyed by alert_token_local, drawn at registration: __smc_lgr_terminate kills
    the second pair's server end before its client end, although the client's cid is lower."""
    s = run(LO, *establish(0), *establish(1))
    lgr = L.get_lgr(s, L.get_conn(s, 1).lgr)  # the server's link group
    assert lgr.conns == (1, 3, 2)


def test_kill_conn_leaves_the_dmb_used_and_free_killed_conn_drops_the_reference() -> None:
    """smc_conn_kill unregisters without smc_buf_unuse; smc_close_active_abort's free of a
    killed connection only drops its lgr reference: the DMB stays used, no free is queued."""
    s = run(LO, *establish(0))
    s = L.kill_conn(LO, s, 0)
    c = L.get_conn(s, 0)
    assert c.killed and not c.registered and not c.freed
    assert L.get_conn(s, 1).rx_flags & PEER_CONN_ABORT
    s = L.free_killed_conn(LO, s, 0)
    lgr = L.get_lgr(s, c.lgr)  # type: ignore[arg-type]
    assert L.get_conn(s, 0).freed and 0 not in lgr.holders and not lgr.free_pending
    assert L.get_desc(s, c.rmb).used  # type: ignore[arg-type]
    with pytest.raises(L.ConnStateError):
        L.kill_conn(LO, s, 0)
    with pytest.raises(L.ConnStateError):
        L.free_killed_conn(LO, s, 1)  # not killed
