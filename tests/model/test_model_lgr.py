"""The model's link groups (model/lgr.py): reuse on one host, references, free and termination.

Expected values are the kernel's rules (net/smc/smc_core.c 6.12.118), written out here; the
conformance catalogue (conformance/catalogue/lgr.py) checks the same against the spec.
"""

from __future__ import annotations

import pytest

from smcd_check.model.connection import (
    NotConnected,
    SmcSockState,
    open_pair,
)
from smcd_check.model.device import BrokenPipe, LoopbackIsm
from smcd_check.model.lgr import LinkGroupOutOfSync, smc_conn_create, terminate_all


def device(mode: str) -> LoopbackIsm:
    return LoopbackIsm(seed=3, nocopy=mode == "merged")


@pytest.mark.parametrize("mode", ["copy", "merged"])
def test_a_second_pair_joins_the_servers_link_group_at_both_ends(mode: str) -> None:
    dev = device(mode)
    a, b = open_pair(dev, mode, conn_create=True)
    assert a.lgr is not b.lgr and a.first_contact and b.first_contact
    assert dev.lgr_list == [b.lgr, a.lgr], "the server's link group is created (listed) first"
    assert b.rmb_desc is not None and b.rmb_desc.sba_idx == 0, "the server registers first"
    a2, b2 = open_pair(dev, mode, conn_create=True)
    assert a2.lgr is b.lgr and b2.lgr is b.lgr, "the role is not compared for SMC-D"
    assert not (a2.first_contact or b2.first_contact)
    assert b.lgr.conns_num == 3 and dev.dmb_cnt == 4


def test_a_client_told_not_first_contact_with_nothing_to_join_is_out_of_sync() -> None:
    dev = device("merged")
    with pytest.raises(LinkGroupOutOfSync):
        smc_conn_create(dev, server=False, peer_gid=dev.local_gid, first_contact_peer=False)


@pytest.mark.parametrize("mode", ["copy", "merged"])
def test_a_terminated_link_group_keeps_its_dmbs_until_its_killed_socket_is_closed(
        mode: str) -> None:
    dev = device(mode)
    a, b = open_pair(dev, mode, conn_create=True)
    b.lgr.terminate()
    assert b.killed and not b.freed and b.sk_state is SmcSockState.CLOSED
    assert a.sk_state is SmcSockState.PROCESSABORT, "the abort CDC reached the peer"
    with pytest.raises(BrokenPipe):
        b.send(b"x")
    with pytest.raises(NotConnected):
        b.recv(10)
    assert dev.dmb_cnt == 2 and dev.lgr_cnt == 2 and b.lgr.refcnt == 1  # b's own reference
    b.close()
    assert b.lgr.gone and dev.lgr_cnt == 1
    # merged: a's ghost still holds b's DMB after the owner's unregister
    assert dev.dmb_cnt == (2 if mode == "merged" else 1)
    a.close()
    assert a.lgr.free_scheduled and a.lgr.free_work() and dev.dmb_cnt == dev.lgr_cnt == 0


def test_losing_the_device_kills_every_connection_in_list_order() -> None:
    dev = device("merged")
    a, b = open_pair(dev, "merged", conn_create=True)
    terminate_all(dev)
    assert dev.lgr_list == []
    # b (server link group, first on the list) is killed from ACTIVE; a received b's abort
    # first (PROCESSABORT), so smc_close_active_abort frees it at once
    assert b.killed and not b.freed and a.killed and a.freed
    with pytest.raises(NotConnected):
        b.recv(1)
    assert a.recv(1) == b"" and a.eof
    b.close()
    a.close()
    assert dev.dmb_cnt == dev.lgr_cnt == 0


def test_an_aborted_connection_leaves_its_dmb_used_and_queues_no_free() -> None:
    dev = device("copy")
    a, _ = open_pair(dev, "copy", conn_create=True)
    a.abort()
    assert a.freed and a.rmb_desc is not None and a.rmb_desc.used
    assert a.lgr.conns_num == 0 and not a.lgr.free_scheduled and a.lgr.refcnt == 1
