"""The full-duplex data path with urgent data: narratives per kernel rule, forbidden steps, random
walks over both directions, and the kernel behaviours at the urgent mark and the wrap boundary.

The searches here are a plain BFS written in this file (the explorer is not imported).
"""

from __future__ import annotations

from collections import deque

import pytest
from hypothesis import given
from hypothesis import strategies as st

from smcd_check.spec import duplex as dx
from smcd_check.spec.cdc import CdcMsg, ProdFlags
from smcd_check.spec.cursor import Cursor
from smcd_check.spec.datapath import Mode
from smcd_check.spec.errors import ForbiddenStep, PreconditionViolated
from smcd_check.spec.faults import Fault

A, B = 0, 1


def C(wrap: int, count: int) -> Cursor:
    return Cursor(wrap=wrap, count=count)


def run(cfg: dx.DuplexConfig, *actions: dx.Action) -> dx.DuplexState:
    s = dx.initial_state(cfg)
    for a in actions:
        s = dx.step(cfg, s, a)
        assert dx.violated(cfg, s) == (), (a, dx.violated(cfg, s))
    return s


def send_one(side: int, *, urgent: bool = False) -> tuple[dx.Action, ...]:
    """The application writes one byte, the host moves it and writes and finishes its CDC."""
    write: dx.Action = dx.AppSendUrgent(side=side, n=1) if urgent else dx.AppSend(side=side, n=1)
    return (
        write,
        dx.HostMoveData(side=side),
        dx.HostWriteCdc(side=side),
        dx.HostEndCdc(side=side),
    )


# ---- full duplex ---------------------------------------------------------------------------


def test_both_directions_each_have_their_ring_and_one_cdc_carries_prod_and_cons() -> None:
    """A sends one byte, B reads it and then sends one itself: B's data CDC carries B's producer
    cursor for B -> A *and* its consumer cursor for A -> B, which gives A its space back."""
    cfg = dx.DuplexConfig(ring_size=2, max_chunk=1)
    s = run(cfg, *send_one(A), dx.HostRecvCdc(side=B), dx.AppRecv(side=B, n=1))
    b = s.sides[B]
    assert b.cons == C(0, 1) and b.bytes_to_rcv == 0 and b.seq_expect == 1
    # sender_free = 2 - diff_large(0, 1) = 1 <= 2/2: smc_tx_consumer_update decides to send
    assert b.upd_due
    s = run(
        cfg,
        *send_one(A),
        dx.HostRecvCdc(side=B),
        dx.AppRecv(side=B, n=1),
        dx.AppSend(side=B, n=1),
        dx.HostMoveData(side=B),
        dx.HostWriteCdc(side=B),
    )
    assert s.chans[B] == (CdcMsg(prod=C(0, 1), cons=C(0, 1)),)
    s = dx.step(cfg, s, dx.HostEndCdc(side=B))
    assert s.sides[B].rx_curs_confirmed == C(0, 1)
    s = dx.step(cfg, s, dx.HostRecvCdc(side=A))
    a = s.sides[A]
    # merged mode: A's sndbuf space comes back with B's consumer cursor; A now has data to read
    assert a.peer_rmbe_space == 2 and a.sndbuf_space == 2 and a.bytes_to_rcv == 1
    assert dx.violated(cfg, s) == ()


def test_copy_mode_frees_the_sndbuf_when_the_cdc_is_finished() -> None:
    cfg = dx.DuplexConfig(mode=Mode.COPY, ring_size=2)
    s = run(cfg, dx.AppSend(side=B, n=1), dx.HostMoveData(side=B), dx.HostWriteCdc(side=B))
    assert s.sides[B].sndbuf_space == 1 and s.sides[A].dmb == (1, 0)
    s = dx.step(cfg, s, dx.HostEndCdc(side=B))
    assert s.sides[B].sndbuf_space == 2 and s.sides[B].tx_curs_fin == C(0, 1)


def test_a_read_between_the_cdc_write_and_its_end_keeps_the_sent_cons_as_confirmed() -> None:
    """smcd_cdc_msg_send sets rx_curs_confirmed to the cursor it sent, not to the live one."""
    cfg = dx.DuplexConfig(ring_size=2)
    s = run(
        cfg,
        *send_one(A),
        dx.AppSend(side=B, n=1),
        dx.HostMoveData(side=B),
        dx.HostWriteCdc(side=B),
        dx.HostRecvCdc(side=B),
        dx.AppRecv(side=B, n=1),
    )
    assert s.sides[B].cdc_cfed == C(0, 0) and s.sides[B].cons == C(0, 1)
    s = dx.step(cfg, s, dx.HostEndCdc(side=B))
    assert s.sides[B].rx_curs_confirmed == C(0, 0) and s.sides[B].upd_due


def test_the_peer_processes_a_cdc_only_after_its_send_returned() -> None:
    cfg = dx.DuplexConfig()
    s = run(cfg, *send_one(A)[:3])
    with pytest.raises(dx.NothingToDo, match="has not returned"):
        dx.step(cfg, s, dx.HostRecvCdc(side=B))


@pytest.mark.parametrize(
    ("actions", "error"),
    [
        ((dx.AppSend(side=A, n=2),), dx.ActionDisabledByConfig),
        ((dx.AppSend(side=A, n=1), dx.AppSend(side=A, n=1)), dx.SendWouldBlock),
        ((dx.AppRecv(side=B, n=1),), dx.RecvWouldBlock),
        ((dx.HostMoveData(side=A),), dx.NothingToDo),
        ((dx.HostRecvCdc(side=A),), dx.NothingToDo),
        ((dx.AppRecvUrgent(side=B),), dx.ActionDisabledByConfig),
        ((dx.AppClose(side=A), dx.AppSend(side=A, n=1)), dx.SideClosed),
        ((dx.AppAbort(side=A),), dx.ActionDisabledByConfig),
    ],
)
def test_a_forbidden_step_names_its_rule_and_leaves_the_state(
    actions: tuple[dx.Action, ...], error: type[ForbiddenStep]
) -> None:
    cfg = dx.DuplexConfig()
    s = run(cfg, *actions[:-1])
    with pytest.raises(error, match=type(actions[-1]).__name__):
        dx.step(cfg, s, actions[-1])


def test_bad_config_names_the_field() -> None:
    with pytest.raises(PreconditionViolated, match="senders"):
        dx.DuplexConfig(senders=(2,))
    with pytest.raises(PreconditionViolated, match="oob_first"):
        dx.DuplexConfig(oob_first=True)


# ---- urgent data ----------------------------------------------------------------------------


def test_urgent_byte_arrives_flags_cleared_and_skipped_without_oobinline() -> None:
    """smc_tx_rdma_writes sets urg_data_present on the move that ends at the urgent byte; after
    the CDC both flags are cleared; the receiver (smc_cdc_handle_urg_data_arrival) points
    urg_curs behind the byte, copies it out and does not count it; a recv that finds no data
    skips it (smc_rx_update_cons(smc, 0)) with a forced window update."""
    cfg = dx.DuplexConfig(ring_size=2, senders=(A,), urgent=True)
    s = run(cfg, dx.AppSend(side=A, n=1), dx.AppSendUrgent(side=A, n=1))
    assert s.sides[A].urg_tx_pend and s.sides[A].pflags.urg_data_pending
    s = run(cfg, dx.AppSend(side=A, n=1), dx.AppSendUrgent(side=A, n=1), dx.HostMoveData(side=A))
    assert s.sides[A].pflags.urg_data_present
    s = dx.step(cfg, s, dx.HostWriteCdc(side=A))
    # both bytes fill the peer ring: write_blocked (to_send >= peer_rmbe_space) rides along
    assert s.chans[A][0].prod_flags == ProdFlags(
        write_blocked=True, urg_data_pending=True, urg_data_present=True
    )
    s = dx.step(cfg, s, dx.HostEndCdc(side=A))
    assert s.sides[A].pflags == ProdFlags(write_blocked=True)
    s = dx.step(cfg, s, dx.HostRecvCdc(side=B))
    b = s.sides[B]
    assert b.urg_state is dx.UrgState.VALID and b.urg_curs == C(1, 0)
    assert b.bytes_to_rcv == 1 and dx.is_urgent_tag(cfg, b.urg_rx_byte)
    assert not dx.siocatmark(cfg, b)
    s = dx.step(cfg, s, dx.AppRecv(side=B, n=1))
    b = s.sides[B]
    # comp(cons, urg_curs) == 1: the urgent byte is skipped, the update is forced
    assert b.cons == C(1, 0) and b.upd_due and b.dmb == (0, 0) and b.seq_expect == 2
    assert dx.violated(cfg, s) == ()


def test_the_sender_waits_while_urgent_data_is_staged_until_all_is_consumed() -> None:
    cfg = dx.DuplexConfig(ring_size=2, senders=(A,), urgent=True, oob_first=True)
    s = run(cfg, *send_one(A, urgent=True), dx.HostRecvCdc(side=B))
    with pytest.raises(dx.SendWouldBlock, match="urg_tx_pend"):
        dx.step(cfg, s, dx.AppSend(side=A, n=1))
    # recv(MSG_OOB) two bytes before the mark would set urg_rx_skip_pend; here the byte is the
    # only one, right after cons: see the next test
    assert s.sides[B].urg_state is dx.UrgState.VALID


def test_recv_oob_at_the_mark_leaves_the_urgent_byte_unskipped_and_the_sender_waiting() -> None:
    """Kernel finding (smc_rx_recv_urg): with the urgent byte the only unread byte, recv(MSG_OOB)
    sets urg_state READ and, since diff(cons, urg_curs) == 1 is not > 1, no urg_rx_skip_pend; the
    following smc_rx_update_consumer(cons, 0) then skips nothing. cons never passes the byte, no
    window update is due, and urg_tx_pend on the sender is never cleared."""
    cfg = dx.DuplexConfig(
        ring_size=2, senders=(A,), urgent=True, oob_first=True, close_enabled=False
    )
    s = run(cfg, *send_one(A, urgent=True), dx.HostRecvCdc(side=B))
    assert dx.siocatmark(cfg, s.sides[B])
    s = dx.step(cfg, s, dx.AppRecvUrgent(side=B))
    b = s.sides[B]
    assert b.urg_state is dx.UrgState.READ and not b.urg_rx_skip_pend
    assert b.cons == C(0, 0) and not b.upd_due and b.dmb[0] > cfg.tag_mod
    # without close nothing is enabled any more: the sender waits on urg_tx_pend, the reader
    # has nothing to read
    assert list(dx.enabled_actions(cfg, s)) == [] and s.sides[A].urg_tx_pend


def test_recv_oob_before_the_mark_skips_the_byte_later() -> None:
    cfg = dx.DuplexConfig(ring_size=2, senders=(A,), urgent=True, oob_first=True)
    s = run(
        cfg,
        dx.AppSend(side=A, n=1),
        dx.AppSendUrgent(side=A, n=1),
        dx.HostMoveData(side=A),
        dx.HostWriteCdc(side=A),
        dx.HostEndCdc(side=A),
        dx.HostRecvCdc(side=B),
        dx.AppRecvUrgent(side=B),
    )
    assert s.sides[B].urg_rx_skip_pend and s.sides[B].urg_state is dx.UrgState.READ
    s = dx.step(cfg, s, dx.AppRecv(side=B, n=1))
    assert s.sides[B].cons == C(1, 0) and not s.sides[B].urg_rx_skip_pend


def test_oobinline_reader_stops_before_the_mark_and_reads_the_urgent_byte_in_band() -> None:
    cfg = dx.DuplexConfig(ring_size=2, max_chunk=2, senders=(A,), urgent=True, oobinline=True)
    s = run(cfg, dx.AppSendUrgent(side=A, n=2), dx.HostMoveData(side=A), dx.HostWriteCdc(side=A))
    s = run(
        cfg,
        dx.AppSendUrgent(side=A, n=2),
        dx.HostMoveData(side=A),
        dx.HostWriteCdc(side=A),
        dx.HostEndCdc(side=A),
        dx.HostRecvCdc(side=B),
    )
    b = s.sides[B]
    assert b.bytes_to_rcv == 2 and dx.readable(cfg, b) == 1  # "always stop at urgent Byte"
    with pytest.raises(dx.RecvWouldBlock):
        dx.step(cfg, s, dx.AppRecv(side=B, n=2))
    s = dx.step(cfg, s, dx.AppRecv(side=B, n=1))
    assert dx.siocatmark(cfg, s.sides[B])
    s = dx.step(cfg, s, dx.AppRecv(side=B, n=1))
    assert s.sides[B].urg_state is dx.UrgState.READ and s.sides[B].upd_due


def test_urgent_arrival_announced_without_data_sets_notyet() -> None:
    """A CDC with urg_data_pending and no new data (a window update sent while the urgent
    message waits to be moved) makes the receiver's urg_state NOTYET."""
    cfg = dx.DuplexConfig(ring_size=2, urgent=True)
    s = run(
        cfg,
        *send_one(A),
        dx.HostRecvCdc(side=B),
        dx.AppRecv(side=B, n=1),
        dx.AppSendUrgent(side=B, n=1),
        dx.HostSendConsUpdate(side=B),
        dx.HostEndCdc(side=B),
        dx.HostRecvCdc(side=A),
    )
    assert s.sides[A].urg_state is dx.UrgState.NOTYET


# ---- faults -----------------------------------------------------------------------------------


def test_urg_flag_not_cleared_leaves_present_set_and_the_sender_stalls() -> None:
    cfg = dx.DuplexConfig(
        senders=(A,), urgent=True, oobinline=True, faults=frozenset({Fault.URG_FLAG_NOT_CLEARED})
    )
    s = dx.initial_state(cfg)
    for a in (*send_one(A, urgent=True), dx.HostRecvCdc(side=B), dx.AppRecv(side=B, n=1)):
        s = dx.step(cfg, s, a)
    assert s.sides[A].pflags.urg_data_present


def test_urg_no_send_wait_marks_the_wrong_byte() -> None:
    cfg = dx.DuplexConfig(
        ring_size=2,
        senders=(A,),
        urgent=True,
        oob_first=True,
        faults=frozenset({Fault.URG_NO_SEND_WAIT}),
    )
    s = dx.initial_state(cfg)
    for a in (
        dx.AppSendUrgent(side=A, n=1),
        dx.AppSend(side=A, n=1),
        dx.HostMoveData(side=A),
        dx.HostWriteCdc(side=A),
        dx.HostEndCdc(side=A),
        dx.HostRecvCdc(side=B),
        dx.AppRecvUrgent(side=B),
    ):
        s = dx.step(cfg, s, a)
    assert "the urgent byte is delivered exactly once" in " ".join(dx.violated(cfg, s))


# ---- searches -------------------------------------------------------------------------------


def _bfs(cfg: dx.DuplexConfig, limit: int = 200_000) -> tuple[int, tuple[str, ...]]:
    s0 = dx.initial_state(cfg)
    seen = {s0}
    queue = deque([s0])
    while queue:
        s = queue.popleft()
        for a in dx.enabled_actions(cfg, s):
            t = dx.step(cfg, s, a)
            if t in seen:
                continue
            seen.add(t)
            bad = dx.violated(cfg, t)
            if bad:
                return len(seen), bad
            if dx.within_boundary(cfg, t):
                queue.append(t)
            assert len(seen) < limit
    return len(seen), ()


@pytest.mark.parametrize(
    "cfg",
    [
        dx.DuplexConfig(),
        dx.DuplexConfig(mode=Mode.COPY, close_enabled=False, abort_enabled=True),
        dx.DuplexConfig(senders=(A,), urgent=True, oobinline=True),
        dx.DuplexConfig(senders=(A,), urgent=True, oob_first=True),
    ],
    ids=["merged", "copy-abort", "urgent-inline", "urgent-oob-first"],
)
def test_every_reachable_state_keeps_every_invariant(cfg: dx.DuplexConfig) -> None:
    """No byte is lost or delivered twice in either direction, no write overwrites unconsumed
    data, the urgent byte goes in band or out of band as SO_OOBINLINE says, and the cursor and
    space accounting stay consistent, in every reachable state of these small configs."""
    _, bad = _bfs(cfg)
    assert bad == ()


def test_an_ignored_urgent_byte_makes_the_kernel_skip_a_data_byte_at_the_wrap_overflow() -> None:
    """Kernel-faithful: without SO_OOBINLINE, urg_state stays VALID after the skip; once cons
    passes the wrap-counter overflow smc_curs_comp(cons, urg_curs) is positive again, and at 1
    smc_rx_update_consumer skips a data byte."""
    _, bad = _bfs(dx.DuplexConfig(senders=(A,), urgent=True))
    assert bad == ("no byte is delivered twice or lost, in either direction",)


@given(st.lists(st.integers(min_value=0, max_value=10_000), max_size=60))
def test_random_walks_in_both_directions_keep_the_invariants(choices: list[int]) -> None:
    """Whatever the interleaving of both ends' sends, reads, urgent data and closes, every
    invariant holds after every step (SO_OOBINLINE on, so no kernel boundary finding applies)."""
    cfg = dx.DuplexConfig(ring_size=2, urgent=True, oobinline=True, abort_enabled=True)
    s = dx.initial_state(cfg)
    for c in choices:
        acts = list(dx.enabled_actions(cfg, s))
        if not acts:
            break
        s = dx.step(cfg, s, acts[c % len(acts)])
        assert dx.violated(cfg, s) == ()
