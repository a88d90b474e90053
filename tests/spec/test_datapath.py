"""The data path (writer A -> reader B's DMB): narratives, forbidden steps, random walks, small
exhaustive searches, and one search per fault that must find the violation it reintroduces.

The searches here are a plain BFS written in this file (the explorer is not imported).
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable

import pytest
from hypothesis import given
from hypothesis import strategies as st

from smcd_check.spec import datapath as dp
from smcd_check.spec.cdc import CdcMsg, ConnStateFlags, ProdFlags
from smcd_check.spec.cursor import Cursor
from smcd_check.spec.errors import ForbiddenStep, PreconditionViolated
from smcd_check.spec.faults import Fault

MERGED = dp.Mode.MERGED
COPY = dp.Mode.COPY


def C(wrap: int, count: int) -> Cursor:
    return Cursor(wrap=wrap, count=count)


def run(cfg: dp.DatapathConfig, *actions: dp.Action) -> dp.DatapathState:
    s = dp.initial_state(cfg)
    for a in actions:
        s = dp.step(cfg, s, a)
        assert dp.violated(cfg, s) == (), (a, dp.violated(cfg, s))
    return s


# ---- narratives -----------------------------------------------------------------------------


def test_merged_write_announce_read_and_window_update_return_the_space() -> None:
    cfg = dp.DatapathConfig(mode=MERGED, ring_size=4, max_chunk=2)
    s = run(cfg, dp.WriterAppWrite(n=2))
    # merged: bytes are in B's DMB at once, invisible to B until the CDC
    assert s.dmb == (1, 2, 0, 0) and s.sndbuf_space == 2 and s.tx_curs_prep == C(0, 2)
    assert s.bytes_to_rcv == 0 and s.sndbuf == ()
    s = run(cfg, dp.WriterAppWrite(n=2), dp.WriterMoveData(), dp.WriterSendCdc())
    assert s.w_prod == C(0, 2) and s.tx_curs_sent == C(0, 2) and s.peer_rmbe_space == 2
    assert s.sndbuf_space == 2  # merged: the CDC frees nothing
    assert s.a2b == (CdcMsg(prod=C(0, 2)),)
    s = dp.step(cfg, s, dp.ReaderRecvCdc())
    assert s.bytes_to_rcv == 2 and s.r_rx_prod == C(0, 2) and s.a2b == ()
    s = dp.step(cfg, s, dp.ReaderRead(n=2))
    # to_confirm 2 > limit 0; sender_free = 4 - diff_large(0, 2) = 2 <= 4/2 -> update due
    assert s.r_cons == C(0, 2) and s.r_upd_due and s.dmb == (0, 0, 0, 0)
    s = dp.step(cfg, s, dp.ReaderSendConsUpdate())
    assert s.rx_curs_confirmed == C(0, 2) and s.b2a == (CdcMsg(cons=C(0, 2)),)
    s = dp.step(cfg, s, dp.WriterRecvCdc())
    assert s.sndbuf_space == 4 and s.peer_rmbe_space == 4 and s.tx_curs_fin == C(0, 2)
    assert dp.violated(cfg, s) == ()


def test_copy_mode_frees_the_sndbuf_when_the_cdc_is_written() -> None:
    cfg = dp.DatapathConfig(mode=COPY, ring_size=4, sndbuf_size=3, max_chunk=3)
    s = run(cfg, dp.WriterAppWrite(n=3))
    assert s.sndbuf == (1, 2, 3) and s.dmb == (0, 0, 0, 0) and s.sndbuf_space == 0
    s = dp.step(cfg, s, dp.WriterMoveData())
    assert s.dmb == (1, 2, 3, 0) and s.sndbuf == (0, 0, 0) and s.sndbuf_space == 0
    assert s.w_write_blocked is False  # to_send 3 < peer_rmbe_space 4
    s = dp.step(cfg, s, dp.WriterSendCdc())
    assert s.sndbuf_space == 3 and s.tx_curs_fin == C(1, 0) and s.tx_curs_sent == C(1, 0)
    assert s.w_prod == C(0, 3) and s.peer_rmbe_space == 1


def test_full_ring_sets_write_blocked_and_reader_then_updates() -> None:
    cfg = dp.DatapathConfig(mode=COPY, ring_size=2, sndbuf_size=4, max_chunk=4)
    s = run(cfg, dp.WriterAppWrite(n=3), dp.WriterMoveData())
    assert s.w_write_blocked and s.peer_rmbe_space == 0 and s.w_prod == C(1, 0)
    s = run(
        cfg, dp.WriterAppWrite(n=3), dp.WriterMoveData(), dp.WriterSendCdc(), dp.ReaderRecvCdc()
    )
    assert s.r_peer_write_blocked and s.bytes_to_rcv == 2  # full ring: wraps differ by one
    s = dp.step(cfg, s, dp.ReaderRead(n=2))
    assert s.r_upd_due and not s.r_peer_write_blocked  # cleared once bytes_to_rcv == 0


def test_reader_close_with_unread_data_sends_abort() -> None:
    cfg = dp.DatapathConfig(mode=MERGED, ring_size=4, close_enabled=True)
    s = run(
        cfg,
        dp.WriterAppWrite(n=1),
        dp.WriterMoveData(),
        dp.WriterSendCdc(),
        dp.ReaderRecvCdc(),
        dp.ReaderClose(),
    )
    assert s.r_flags == ConnStateFlags(peer_conn_abort=True)
    s = dp.step(cfg, s, dp.WriterRecvCdc())
    # the writer learns of the abort and sets its own abort flag (6.12.118)
    assert s.w_rx_flags.peer_conn_abort and s.w_flags.peer_conn_abort
    with pytest.raises(dp.SendAfterClose):
        dp.step(cfg, s, dp.WriterAppWrite(n=1))
    assert dp.is_final(cfg, s)


def test_after_writer_close_reader_still_reads_then_closes_to_a_final_state() -> None:
    cfg = dp.DatapathConfig(mode=COPY, ring_size=4, close_enabled=True)
    s = run(cfg, dp.WriterAppWrite(n=2), dp.WriterMoveData(), dp.WriterClose())
    assert s.a2b[-1].conn_state_flags == ConnStateFlags(peer_conn_closed=True)
    with pytest.raises(dp.SendAfterClose, match="WriterAppWrite"):
        dp.step(cfg, s, dp.WriterAppWrite(n=1))
    s = run(
        cfg,
        dp.WriterAppWrite(n=2),
        dp.WriterMoveData(),
        dp.WriterClose(),
        dp.ReaderRecvCdc(),
        dp.ReaderRead(n=2),
        dp.ReaderClose(),
        dp.WriterRecvCdc(),
    )
    assert s.r_flags == ConnStateFlags(peer_conn_closed=True) and not s.a2b and not s.b2a
    assert dp.is_final(cfg, s) and list(dp.enabled_actions(cfg, s)) == []


def test_writer_cannot_close_with_unmoved_data() -> None:
    cfg = dp.DatapathConfig(mode=COPY, ring_size=4, close_enabled=True)
    s = run(cfg, dp.WriterAppWrite(n=1))
    with pytest.raises(dp.NothingToDo, match="smc_close_stream_wait"):
        dp.step(cfg, s, dp.WriterClose())


# ---- forbidden steps ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("action", "error"),
    [
        (dp.WriterAppWrite(n=3), dp.WriteWouldOverwrite),
        (dp.ReaderRead(n=1), dp.ReadPastProducer),
        (dp.WriterSendCdc(), dp.NothingToDo),
        (dp.ReaderRecvCdc(), dp.NoMessage),
        (dp.WriterRecvCdc(), dp.NoMessage),
        (dp.ReaderSendConsUpdate(), dp.NothingToDo),
        (dp.WriterAbort(), dp.ActionDisabledByConfig),
        (dp.WriterAppWrite(n=9), dp.ActionDisabledByConfig),
    ],
)
def test_forbidden_step_raises_named_error_and_leaves_state_alone(
    action: dp.Action, error: type[ForbiddenStep]
) -> None:
    cfg = dp.DatapathConfig(mode=MERGED, ring_size=4, max_chunk=3, abort_enabled=False)
    s = run(cfg, dp.WriterAppWrite(n=2))
    before = dp.DatapathState(**{f: getattr(s, f) for f in dp.DatapathState.__dataclass_fields__})
    with pytest.raises(error):
        dp.step(cfg, s, action)
    assert s == before
    assert not dp.action_enabled(cfg, s, action)


def test_channel_full_blocks_the_cdc() -> None:
    cfg = dp.DatapathConfig(mode=MERGED, ring_size=4, chan_cap=1)
    s = run(
        cfg,
        dp.WriterAppWrite(n=1),
        dp.WriterMoveData(),
        dp.WriterSendCdc(),
        dp.WriterAppWrite(n=1),
        dp.WriterMoveData(),
    )
    with pytest.raises(dp.ChannelFull, match="A->B channel holds 1"):
        dp.step(cfg, s, dp.WriterSendCdc())


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"ring_size": 0}, "ring_size"),
        ({"mode": MERGED, "sndbuf_size": 3, "ring_size": 4}, "sndbuf_size"),
        ({"rmbe_update_limit": 4, "ring_size": 4}, "rmbe_update_limit"),
        ({"chan_cap": 0}, "chan_cap"),
        ({"mode": COPY, "faults": frozenset({Fault.MERGED_IGNORES_CONS})}, "faults"),
        ({"small_ok": False, "ring_size": 4}, "ring_size"),
        ({"small_ok": False, "ring_size": 16352, "wrap_bits": 2}, "wrap_bits"),
    ],
)
def test_bad_config_names_the_field(kwargs: dict[str, object], field: str) -> None:
    with pytest.raises(PreconditionViolated, match=f"field {field}="):
        dp.DatapathConfig(**kwargs)  # type: ignore[arg-type]


def test_kernel_sized_config_runs_with_16_bit_wrap() -> None:
    cfg = dp.DatapathConfig(
        mode=COPY,
        ring_size=16352,
        sndbuf_size=16384,
        small_ok=False,
        wrap_bits=16,
        max_chunk=16384,
        rmbe_update_limit=2304,
    )
    s = run(cfg, dp.WriterAppWrite(n=16384), dp.WriterMoveData())
    assert s.w_prod == C(1, 0) and s.w_write_blocked and s.tx_curs_sent == C(0, 16352)


# ---- random walks ---------------------------------------------------------------------------

configs = st.builds(
    dp.DatapathConfig,
    mode=st.sampled_from(list(dp.Mode)),
    ring_size=st.integers(1, 6),
    max_chunk=st.integers(1, 4),
    wrap_bits=st.integers(1, 3),
    chan_cap=st.integers(1, 3),
    close_enabled=st.booleans(),
    abort_enabled=st.booleans(),
)


@given(cfg=configs, data=st.data())
def test_random_action_sequences_keep_every_invariant(
    cfg: dp.DatapathConfig, data: st.DataObject
) -> None:
    """Along any sequence of enabled actions, in either mode, every named invariant holds and no
    cursor moves backwards; every enabled action steps and every disabled one is refused."""
    s = dp.initial_state(cfg)
    for _ in range(60):
        enabled = list(dp.enabled_actions(cfg, s))
        for a in dp.candidate_actions(cfg):
            assert dp.action_enabled(cfg, s, a) == (a in enabled)
        if not enabled:
            assert dp.is_final(cfg, s)
            break
        a = data.draw(st.sampled_from(enabled))
        t = dp.step(cfg, s, a)
        assert dp.violated(cfg, t) == (), (a, dp.violated(cfg, t))
        assert dp.cursors_moved_backwards(cfg, s, t) == ()
        s = t


# ---- exhaustive small configs ---------------------------------------------------------------


def bfs(
    cfg: dp.DatapathConfig, target: Callable[[dp.DatapathState], bool] | None = None
) -> tuple[int, list[dp.Action] | None, int]:
    """(states seen, shortest path to a target state or None, deadlocks)."""
    s0 = dp.initial_state(cfg)
    parent: dict[dp.DatapathState, tuple[dp.DatapathState, dp.Action] | None] = {s0: None}
    queue = deque([s0])
    deadlocks = 0
    while queue:
        s = queue.popleft()
        if target is not None and target(s):
            path: list[dp.Action] = []
            link = parent[s]
            while link is not None:
                path.append(link[1])
                link = parent[link[0]]
            return len(parent), path[::-1], deadlocks
        if not dp.within_boundary(cfg, s):
            continue
        successors = 0
        for a in dp.enabled_actions(cfg, s):
            t = dp.step(cfg, s, a)
            successors += 1
            if t not in parent:
                parent[t] = (s, a)
                queue.append(t)
        if successors == 0 and not dp.is_final(cfg, s):
            deadlocks += 1
    return len(parent), None, deadlocks


@pytest.mark.parametrize(
    ("mode", "ring", "close", "states"),
    [
        (MERGED, 3, False, 2172),
        (COPY, 3, False, 4788),
        (MERGED, 2, True, 6704),  # 6648 before reads after a peer abort were allowed
        (COPY, 2, True, 8536),  # 8440 before reads after a peer abort were allowed
    ],
)
def test_small_configs_are_safe_and_deadlock_free(
    mode: dp.Mode, ring: int, close: bool, states: int
) -> None:
    cfg = dp.DatapathConfig(
        mode=mode, ring_size=ring, chan_cap=1, close_enabled=close, abort_enabled=close
    )
    count, bad, deadlocks = bfs(cfg, lambda s: dp.violated(cfg, s) != ())
    assert bad is None
    assert deadlocks == 0
    assert count == states  # pinned: an unexplained change fails


def deadlocked(cfg: dp.DatapathConfig) -> Callable[[dp.DatapathState], bool]:
    return lambda s: next(dp.enabled_actions(cfg, s), None) is None and not dp.is_final(cfg, s)


def breaks(cfg: dp.DatapathConfig, name: str) -> Callable[[dp.DatapathState], bool]:
    inv = dp.INVARIANTS_BY_NAME[name]
    return lambda s: not inv.holds(cfg, s)


OVERWRITE = "no overwriting unconsumed data"
SNDBUF = "sndbuf space accounting is consistent"


@pytest.mark.parametrize(
    ("mode", "fault", "what", "length"),
    [
        (MERGED, Fault.MERGED_IGNORES_CONS, OVERWRITE, 2),
        (MERGED, Fault.COMP_IGNORES_WRAP, OVERWRITE, 3),
        (COPY, Fault.COMP_IGNORES_WRAP, OVERWRITE, 6),
        (MERGED, Fault.SPACE_FORGETS_IN_FLIGHT, SNDBUF, 8),
        (MERGED, Fault.SPACE_FORGETS_IN_FLIGHT, OVERWRITE, 9),
        (COPY, Fault.SPACE_FORGETS_IN_FLIGHT, SNDBUF, 4),
        (COPY, Fault.SPACE_FORGETS_IN_FLIGHT, OVERWRITE, 5),
        (MERGED, Fault.NO_CONSUMER_UPDATE, "deadlock", 6),
        (COPY, Fault.NO_CONSUMER_UPDATE, "deadlock", 8),
    ],
)
def test_each_fault_is_found_by_a_small_search(
    mode: dp.Mode, fault: Fault, what: str, length: int
) -> None:
    cfg = dp.DatapathConfig(
        mode=mode, ring_size=3, chan_cap=1, close_enabled=False, faults=frozenset({fault})
    )
    target = deadlocked(cfg) if what == "deadlock" else breaks(cfg, what)
    _, path, _ = bfs(cfg, target)
    assert path is not None and len(path) == length
    # without the fault the same search finds nothing
    clean = dp.DatapathConfig(mode=mode, ring_size=3, chan_cap=1, close_enabled=False)
    target = deadlocked(clean) if what == "deadlock" else breaks(clean, what)
    assert bfs(clean, target)[1] is None


def test_merged_ignores_cons_counterexample_is_two_writes() -> None:
    cfg = dp.DatapathConfig(
        mode=MERGED,
        ring_size=3,
        chan_cap=1,
        close_enabled=False,
        faults=frozenset({Fault.MERGED_IGNORES_CONS}),
    )
    _, path, _ = bfs(cfg, breaks(cfg, OVERWRITE))
    assert path == [dp.WriterAppWrite(n=2), dp.WriterAppWrite(n=2)]


def test_cdc_messages_in_the_channel_are_the_wire_messages() -> None:
    cfg = dp.DatapathConfig(mode=COPY, ring_size=2, sndbuf_size=4, max_chunk=4)
    s = run(cfg, dp.WriterAppWrite(n=2), dp.WriterMoveData(), dp.WriterSendCdc())
    assert s.a2b == (CdcMsg(prod=C(1, 0), prod_flags=ProdFlags(write_blocked=True)),)


def _run(cfg: dp.DatapathConfig, *actions: dp.Action) -> dp.DatapathState:
    s = dp.initial_state(cfg)
    for a in actions:
        s = dp.step(cfg, s, a)
    return s


def test_reader_still_reads_announced_data_after_the_peer_aborted() -> None:
    """smc_rx_recvmsg copies announced data whatever the peer's flags: an abort from the writer
    does not take away bytes it already announced (net/smc/smc_rx.c, 6.12.118); it only stops
    window updates (smc_tx_consumer_update)."""
    cfg = dp.DatapathConfig(
        mode=MERGED, ring_size=2, chan_cap=2, close_enabled=True, abort_enabled=True
    )
    s = _run(
        cfg,
        dp.WriterAppWrite(n=1),
        dp.WriterMoveData(),
        dp.WriterSendCdc(),
        dp.WriterAbort(),
        dp.ReaderRecvCdc(),
        dp.ReaderRecvCdc(),
    )
    assert s.r_rx_flags.peer_conn_abort and s.bytes_to_rcv == 1
    s = dp.step(cfg, s, dp.ReaderRead(n=1))
    assert s.bytes_to_rcv == 0
    assert not s.r_upd_due  # no window update to an aborted peer
    assert dp.violated(cfg, s) == ()


def test_reader_reads_nothing_once_its_application_closed() -> None:
    """B's own close ends reading even with data announced (the close becomes an abort)."""
    cfg = dp.DatapathConfig(
        mode=MERGED, ring_size=2, chan_cap=2, close_enabled=True, abort_enabled=True
    )
    s = _run(
        cfg,
        dp.WriterAppWrite(n=1),
        dp.WriterMoveData(),
        dp.WriterSendCdc(),
        dp.ReaderRecvCdc(),
        dp.ReaderClose(),
    )
    assert s.bytes_to_rcv == 1 and s.r_flags.peer_conn_abort
    with pytest.raises(dp.ReadAfterClose):
        dp.step(cfg, s, dp.ReaderRead(n=1))
