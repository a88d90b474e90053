"""The SMC socket close state machine (spec/close.py) against what Linux 6.12.118 does.

The walks below are the ones the kernel target ran under qemu (catalogue cases
``datapath.*.shutdown.*``); here they pin the spec's answers without qemu.
"""

from __future__ import annotations

import hypothesis.strategies as st
from hypothesis import given

from smcd_check.conformance.targets.adapter import Op
from smcd_check.conformance.targets.spec_target import SpecTarget
from smcd_check.spec import close as sc

WR = sc.How.SHUT_WR


def _shut(pair: sc.ClosePair, side: sc.Side, how: sc.How = WR) -> tuple[sc.ClosePair, str]:
    res = sc.shutdown(pair, side, how)
    return res.pair, res.errno


def test_repeated_shutdown_after_both_shut_down_is_enotconn() -> None:
    """Issue 16's shrunk lockstep walk: shutdown(b), shutdown(a), shutdown(a) -> ENOTCONN,
    although the SMC socket is still in APPCLOSEWAIT2 (the TCP socket under it is closed)."""
    p = sc.ClosePair()
    p, e1 = _shut(p, "b")
    p, e2 = _shut(p, "a")
    assert (e1, e2) == ("", "")
    assert p.a.sk_state is sc.SmcState.APPCLOSEWAIT2
    assert p.b.sk_state is sc.SmcState.PEERCLOSEWAIT2
    p, e3 = _shut(p, "a")
    p, e4 = _shut(p, "b")
    assert (e3, e4) == ("ENOTCONN", "ENOTCONN")


def test_repeated_shutdown_alone_succeeds() -> None:
    p = sc.ClosePair()
    for _ in range(3):
        p, e = _shut(p, "a")
        assert e == ""
    assert p.a.sk_state is sc.SmcState.PEERCLOSEWAIT1


def test_shutdown_after_peer_abort_is_enotconn() -> None:
    p = sc.close(sc.ClosePair(), "b", unread=True)
    assert p.a.sk_state is sc.SmcState.PROCESSABORT
    assert _shut(p, "a")[1] == "ENOTCONN"
    assert sc.send_errno(p, "a") == "EPIPE"  # sk_err set by the abort


def test_shutdown_then_peer_close_leaves_tcp_half_open() -> None:
    """The peer closes from APPCLOSEWAIT1 into PEERFINCLOSEWAIT without a FIN: our repeat works."""
    p, _ = _shut(sc.ClosePair(), "a")
    p = sc.close(p, "b", unread=False)
    assert p.b.sk_state is sc.SmcState.PEERFINCLOSEWAIT
    assert p.a.sk_state is sc.SmcState.APPFINCLOSEWAIT
    assert _shut(p, "a")[1] == ""
    # our close ends both: the peer reaches CLOSED and releases its clcsock
    p = sc.close(p, "a", unread=False)
    assert (p.a.sk_state, p.b.sk_state) == (sc.SmcState.CLOSED, sc.SmcState.CLOSED)


def test_shut_rd_sends_nothing_but_sees_tcp_close() -> None:
    p, e = _shut(sc.ClosePair(), "a", sc.How.SHUT_RD)
    assert e == "" and p.b.rx == sc.NO_FLAGS and p.a.sk_shutdown == sc.RCV_SHUTDOWN
    p, _ = _shut(p, "a")
    p, _ = _shut(p, "b")
    assert _shut(p, "a", sc.How.SHUT_RD)[1] == "ENOTCONN"


def test_shut_rdwr_is_an_active_close() -> None:
    p, e = _shut(sc.ClosePair(), "a", sc.How.SHUT_RDWR)
    assert e == "" and p.a.sk_state is sc.SmcState.PEERCLOSEWAIT1
    assert p.b.rx.peer_conn_closed and p.b.sk_state is sc.SmcState.APPCLOSEWAIT1
    assert sc.send_errno(p, "b") == "ECONNRESET" and sc.send_errno(p, "a") == "EPIPE"


def test_spec_target_answers_the_kernels_enotconn() -> None:
    """The spec target (what conformance compares against) gives the kernel's answer."""
    t = SpecTarget()
    pair = t.apply(Op.make("conn_open", mode="merged", dmb_size=16384, sndbuf_size=0))
    a, b = pair.get("a"), pair.get("b")
    assert t.apply(Op.make("conn_shutdown", conn=b)).ok
    assert t.apply(Op.make("conn_shutdown", conn=a)).ok
    again = t.apply(Op.make("conn_shutdown", conn=a))
    assert again.error == "ENOTCONN"


CALLS = st.lists(st.tuples(st.sampled_from(["a", "b"]),
                           st.sampled_from(["rd", "wr", "rdwr", "close", "close-unread",
                                            "abort"])), max_size=8)


@given(CALLS)
def test_close_machine_stays_consistent(calls: list[tuple[sc.Side, str]]) -> None:
    """For any sequence of calls on open sockets: the two TCP ends agree on whether the
    connection is closed (while both still hold it); a closed socket is dead and shut both ways;
    and
    shutdown answers ENOTCONN exactly when sk_state forbids it or TCP is closed."""
    p = sc.ClosePair()
    closed: set[str] = set()
    for side, call in calls:
        me = p.get(side)
        if me.dead:
            continue
        if call in ("rd", "wr", "rdwr"):
            how = {"rd": sc.How.SHUT_RD, "wr": WR, "rdwr": sc.How.SHUT_RDWR}[call]
            res = sc.shutdown(p, side, how)
            refused = me.sk_state not in sc.SHUTDOWN_STATES
            if refused:
                assert res.errno == "ENOTCONN" and res.pair == p
            elif me.clcsock.tcp_close and not (how is sc.How.SHUT_RDWR
                                               and me.sk_state is sc.SmcState.ACTIVE):
                assert res.errno == "ENOTCONN"
            else:
                assert res.errno == ""
            p = res.pair
        elif call == "abort":
            p = sc.abort(p, side)
        else:
            p = sc.close(p, side, unread=call == "close-unread")
            closed.add(side)
        assert p.a.clcsock.tcp_close == p.b.clcsock.tcp_close or (
            p.a.clcsock.released or p.b.clcsock.released)
        for name in closed:
            assert p.get(name).dead and p.get(name).sk_shutdown == sc.SHUTDOWN_MASK
