"""Device discovery, EID rules and link-group choice of the handshake (unit level).

Expected values come from the kernel functions named in each test (Linux 6.12.118).
"""

from __future__ import annotations

import pytest

from smcd_check.spec import clc
from smcd_check.spec.eid import InvalidEid, match_eid, pad_eid, ueid_table, ueid_valid
from smcd_check.spec.handshake import (
    Connect,
    CreateLgr,
    HandshakeConfigError,
    LgrPolicy,
    LgrView,
    RequestConn,
    ReuseLgr,
    Role,
    SendClc,
    SmcdDevice,
    SyncErr,
    client_init,
    conn_create_decision,
    holds_lgr_pending,
    host_config,
    loopback_device,
    run_back_to_back,
    server_init,
    step,
)


def proposal(cfg_devices: tuple[SmcdDevice, ...], **kw: object) -> clc.Proposal:
    cfg = host_config(devices=cfg_devices, ueids=("U1",), **kw)
    r = step(cfg, client_init(), Connect())
    data = next(e.data for e in r.effects if isinstance(e, SendClc))
    msg = clc.decode(data)
    assert isinstance(msg, clc.Proposal)
    return msg


def native(n: int, **kw: object) -> SmcdDevice:
    return SmcdDevice(name=f"ism{n}", chid=0x100 + n, gid=0x1000 + n, **kw)  # type: ignore[arg-type]


def entries(p: clc.Proposal) -> list[tuple[int, int]]:
    assert p.v2_ext is not None and p.v2_ext.smcd_v2_ext is not None
    return [(e.chid, e.gid) for e in p.v2_ext.smcd_v2_ext.gidchids]


def test_handshake_proposal_lists_at_most_eight_gid_entries() -> None:
    """smc_find_ism_v2_device_clnt stops once the 8 entries are used."""
    p = proposal(tuple(native(i) for i in range(10)))
    assert [c for c, _g in entries(p)] == [0x100 + i for i in range(8)]


def test_handshake_proposal_skips_emulated_device_when_one_entry_is_left() -> None:
    """An emulated device needs two entries; with one left it is skipped and a later native
    device still gets the last entry."""
    devs = (*[native(i) for i in range(7)], loopback_device(0xAA, 0xBB), native(9))
    assert entries(proposal(devs))[-1] == (0x109, 0x1009)
    assert len(entries(proposal(devs))) == 8


def test_handshake_proposal_filters_going_away_duplicate_chid_and_foreign_pnetid() -> None:
    """Devices going away, a second device with a CHID already chosen, and a device whose
    PNET id is not one of the namespace's netdevs are not offered."""
    devs = (native(1, going_away=True), native(2), SmcdDevice(name="dup", chid=0x102, gid=7),
            native(3, pnetid="FOREIGN"), native(4, pnetid="NET1"))
    p = proposal(devs, ns_pnetids=frozenset({"NET1"}))
    assert [c for c, _g in entries(p)] == [0x102, 0x104]


def test_handshake_proposal_loopback_has_two_entries_with_gid_and_gid_ext() -> None:
    p = proposal((loopback_device(0x31, 0xB9),))
    assert entries(p) == [(0xFFFF, 0x31), (0xFFFF, 0xB9)]
    assert p.typev1 is clc.SmcType.N and p.iparea_offset == 0


def test_handshake_ueid_rules_follow_smc_clc_ueid_valid() -> None:
    assert ueid_valid(pad_eid("SMCD-CONFORMANCE-UEID"))
    assert ueid_valid(pad_eid("A.B-9"))
    assert not ueid_valid(pad_eid("lower"))  # lower case
    assert not ueid_valid(pad_eid("-LEAD"))  # first character not alphanumeric
    assert not ueid_valid(pad_eid("IN NER"))  # inner blank
    assert not ueid_valid(b" " * 32)  # all blank
    assert ueid_valid(pad_eid(b"\xc0BC"))  # Latin-1 upper case: the kernel's ctype says alnum
    assert not ueid_valid(pad_eid(b"\xe0BC"))  # Latin-1 lower case


def test_handshake_ueid_table_refuses_what_smc_clc_ueid_add_refuses() -> None:
    with pytest.raises(InvalidEid, match="-EEXIST"):
        ueid_table(["A", "A"])
    with pytest.raises(InvalidEid, match="-ERANGE"):
        ueid_table(["A", "B", "C", "D", "E"])
    with pytest.raises(InvalidEid, match="-EINVAL"):
        ueid_table(["bad"])
    with pytest.raises(HandshakeConfigError, match="ueids"):
        host_config(ueids=("bad",))


def test_handshake_match_eid_prefers_seid_then_first_common_ueid_in_peer_order() -> None:
    seid = b"S" * 32
    a, b = pad_eid("A"), pad_eid("B")
    kw = {"peer_seid": seid, "local_seid": seid}
    assert match_eid(local_ueids=(a, b), peer_ueids=(b, a), peer_seid_flag=True,
                     seid_enabled=True, **kw) == seid
    assert match_eid(local_ueids=(a, b), peer_ueids=(b, a), peer_seid_flag=False,
                     seid_enabled=True, **kw) == b
    assert match_eid(local_ueids=(a,), peer_ueids=(b,), peer_seid_flag=True,
                     seid_enabled=False, **kw) is None


REQ = RequestConn(role=Role.SERVER, device="loopback-ism", chid=0xFFFF, peer_gid=1,
                  peer_gid_ext=2, vlan_id=0, smcd_version=2,
                  policy=LgrPolicy.REUSE_OR_CREATE, dmb_size=65536)


def lgr(lgr_id: int, **kw: object) -> LgrView:
    base: dict[str, object] = {"lgr_id": lgr_id, "device": "loopback-ism", "peer_gid": 1,
                               "peer_gid_ext": 2, "vlan_id": 0}
    base.update(kw)
    return LgrView(**base)  # type: ignore[arg-type]


def test_handshake_lgr_choice_follows_smc_conn_create() -> None:
    """First match in list order; gid_ext must match for an emulated device; sync_err groups
    are skipped; VLAN matters only for v1; a client reusing nothing gets SYNCERR."""
    assert conn_create_decision(REQ, [lgr(256), lgr(512)]) == ReuseLgr(lgr_id=256)
    assert conn_create_decision(REQ, [lgr(256, peer_gid_ext=3)]) == CreateLgr()
    assert conn_create_decision(REQ, [lgr(256, sync_err=True), lgr(512)]) == ReuseLgr(lgr_id=512)
    assert conn_create_decision(REQ, [lgr(256, vlan_id=5)]) == ReuseLgr(lgr_id=256)
    v1 = RequestConn(**{**{f: getattr(REQ, f) for f in REQ.__dataclass_fields__},
                        "smcd_version": 1, "chid": 0x1234})
    assert conn_create_decision(v1, [lgr(256, vlan_id=5)]) == CreateLgr()
    assert conn_create_decision(v1, [lgr(256, peer_gid_ext=9)]) == ReuseLgr(lgr_id=256)
    client_reuse = RequestConn(**{**{f: getattr(REQ, f) for f in REQ.__dataclass_fields__},
                                  "role": Role.CLIENT, "policy": LgrPolicy.REUSE_ONLY})
    assert conn_create_decision(client_reuse, []) == SyncErr()
    client_first = RequestConn(**{**{f: getattr(REQ, f) for f in REQ.__dataclass_fields__},
                                  "role": Role.CLIENT, "policy": LgrPolicy.CREATE_ONLY})
    assert conn_create_decision(client_first, [lgr(256)]) == CreateLgr()


def test_handshake_device_rejects_values_that_do_not_fit_the_kernel_fields() -> None:
    with pytest.raises(HandshakeConfigError, match="chid"):
        SmcdDevice(name="x", chid=0x10000, gid=1)
    with pytest.raises(HandshakeConfigError, match="vlan_id"):
        host_config(vlan_id=5000)


def test_handshake_lgr_pending_lock_is_held_between_conn_create_and_the_message() -> None:
    """smc_server_lgr_pending: the server from the device search to the Accept, the client from
    smc_conn_create to the Confirm."""
    cfg = host_config(devices=(loopback_device(1, 2),), ueids=("U",))
    r = run_back_to_back(cfg, cfg)
    held = []
    states = {Role.CLIENT: client_init(), Role.SERVER: server_init()}
    for role, item in r.trace:
        if type(item).__name__ in {"Connect", "ListenWork", "RecvBytes", "RecvTimeout",
                                   "RecvEof", "ConnCreated", "ConnCreateFailed",
                                   "BufCreateFailed", "AttachDone"}:
            states[role] = step(cfg, states[role], item).state  # type: ignore[arg-type]
            held.append((role.value, states[role].phase.value, holds_lgr_pending(states[role])))
    assert [h for h in held if h[2]] == [
        ("server", "conn-pending", True), ("client", "conn-pending", True),
        ("client", "attach-pending", True)]
