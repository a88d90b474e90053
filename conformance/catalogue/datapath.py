"""Catalogue areas ``datapath`` (and the connection-level ``cursor`` cases): SMC-D connections.

Each case opens a connected pair (client ``p.a``, server ``p.b``) in copy or merged mode with
16 KiB DMBs (data ring 16352 bytes, window-update limit max(16352/10, 4608/2) = 2304) and drives
it through the socket API: send, recv, shutdown, close, abort, and cursor snapshots. Data flows
from ``a`` to ``b`` (the spec models one direction at a time). Expected observations come from
:mod:`smcd_check.spec.datapath` (through :mod:`.spec_conn`); the sources are net/smc/smc_tx.c
(``smc_tx_sendmsg``, ``smc_tx_rdma_writes``, ``smc_tx_consumer_update``), net/smc/smc_cdc.c
(``smcd_cdc_msg_send``, ``smc_cdc_msg_recv_action``), net/smc/smc_rx.c and net/smc/smc_close.c.

Payloads are position-dependent byte patterns, so a byte from the wrong place or lap is seen.
"""

from __future__ import annotations

from smcd_check.conformance.runner.run import Area, Case, Step, step
from smcd_check.conformance.targets.adapter import Ref

D = 16384
RING = D - 32
LIMIT = 2304
A, B = Ref("p", "a"), Ref("p", "b")
TX, RX, CDC, CLOSE = ("net/smc/smc_tx.c", "net/smc/smc_rx.c", "net/smc/smc_cdc.c",
                      "net/smc/smc_close.c")


def payload(n: int, seed: int = 0) -> str:
    """``n`` bytes whose value depends on their position (hex)."""
    return bytes((seed * 131 + i * 7 + (i >> 8)) & 0xFF for i in range(n)).hex()


def open_pair(mode: str) -> Step:
    return step("conn_open", mode=mode, dmb_size=D, sndbuf_size=D if mode == "copy" else 0,
                bind="p")


def send(conn: Ref, n: int, seed: int = 0) -> Step:
    return step("conn_send", conn=conn, data=payload(n, seed))


def recv(conn: Ref, n: int) -> Step:
    return step("conn_recv", conn=conn, max=n)


def curs(conn: Ref) -> Step:
    return step("conn_cursors", conn=conn)


def both() -> list[Step]:
    return [curs(A), curs(B)]


def case(cid: str, title: str, description: str, source: str, body: list[Step],
         modes: tuple[str, ...] = ("copy", "merged"), area: Area = Area.DATAPATH,
         rules: tuple[str, ...] = ()) -> list[Case]:
    out = []
    for mode in modes:
        out.append(Case(
            id=f"{area.value}.{mode}.{cid}",
            area=area,
            title=f"{title} ({mode} mode)",
            description=description,
            source=source,
            steps=(open_pair(mode), *body),
            rules=rules,
        ))
    return out


def _laps(chunk: int, rounds: int) -> list[Step]:
    steps: list[Step] = []
    for r in range(rounds):
        steps += [send(A, chunk, r), recv(B, chunk), *both()]
    return steps


_CASES: list[Case] = []
_CASES += case("basic.small", "a small message arrives intact",
               "send 100 bytes, the CDC announces them, recv returns exactly them.", TX,
               [send(A, 100), *both(), recv(B, 100), *both(), recv(B, 100)],
               rules=("smc_tx_sendmsg", "smc_rx_recvmsg", "delivered in order"))
_CASES += case("basic.recv-nothing", "recv with nothing announced returns no data",
               "Non-blocking read of an empty ring.", RX, [recv(B, 10), recv(B, 0)])
_CASES += case("basic.partial-reads", "reads of any size reassemble the stream",
               "1000 bytes read as 1 + 499 + 500.", RX,
               [send(A, 1000), recv(B, 1), recv(B, 499), recv(B, 10000), *both()])
_CASES += case("flow.fill-ring", "the writer stops when the peer ring is full",
               "peer_rmbe_space reaches 0: the ring holds exactly 16352 bytes; copy mode keeps "
               "the rest in its sndbuf, merged mode accepts no more (its sndbuf is the ring).",
               TX, [send(A, 20000), *both(), send(A, 100, 1), *both()],
               rules=("smc_tx_rdma_writes", "peer_rmbe_space", "no overwrite"))
_CASES += case("flow.drain-and-refill", "after a full read the writer continues",
               "Reading the whole ring sends a window update; the writer then moves more.", TX,
               [send(A, 20000), recv(B, 20000), *both(), send(A, 5000, 2), recv(B, 30000),
                *both()], rules=("smc_tx_consumer_update", "window update"))
_CASES += case("flow.update-below-limit", "consuming up to the limit sends no window update",
               "to_confirm = 2304 is not > rmbe_update_limit (2304 = max(len/10, "
               "SOCK_MIN_SNDBUF/2)): the writer still sees the old consumer cursor. A "
               "min()-based limit (pre-6bf536eb5c8c) would update here.", TX,
               [send(A, 16352), recv(B, LIMIT), *both(), send(A, 10, 3), *both()],
               rules=("smc_rmb_wnd_update_limit", "smc_tx_consumer_update"))
_CASES += case("flow.update-above-limit", "consuming past the limit of a full ring updates",
               "to_confirm = 2305 > 2304 and sender_free = 0 <= len/2: the CDC carries the "
               "consumer cursor and the writer regains space.", TX,
               [send(A, 16352), recv(B, LIMIT + 1), *both(), send(A, 5000, 3), *both()],
               rules=("smc_tx_consumer_update", "window update"))
_CASES += case("flow.update-small-window", "a window update is sent only when the sender "
               "has little space", "10000 bytes outstanding, 3000 consumed: sender_free = len - "
               "diff_large(confirmed, prod) = 6352 <= len/2, so an update is sent. With the "
               "arguments of the pre-b8649efad879 code (diff(prod, confirmed)) sender_free "
               "would be len and no update would go out.", TX,
               [send(A, 10000), recv(B, 3000), *both()],
               rules=("smc_tx_consumer_update", "smc_curs_diff_large"))
_CASES += case("flow.update-large-window", "no window update while the sender has plenty",
               "3000 outstanding, 2400 consumed: to_confirm > limit but sender_free = len - 3000 "
               "> len/2 and write_blocked is clear, so no update.", TX,
               [send(A, 3000), recv(B, 2400), *both()],
               rules=("smc_tx_consumer_update",))
_CASES += case("flow.write-blocked-update", "a write_blocked writer gets an update early",
               "The writer ran out of peer space (write_blocked set in its CDC); the reader's "
               "next consuming read past the limit then always sends an update.", TX,
               [send(A, 20000), recv(B, 3000), *both(), recv(B, 100), *both()],
               modes=("copy",), rules=("write_blocked", "smc_tx_consumer_update"))
_CASES += case("flow.merged-space-follows-cons", "merged: sndbuf space returns only with the "
               "peer's consumer cursor", "The ghost sndbuf is the peer ring: no space is freed "
               "at send time (smcd_cdc_msg_send), only when a CDC moves the consumer cursor "
               "(smc_cdc_msg_recv_action diff_tx).", CDC,
               [send(A, 16352), send(A, 10, 1), recv(B, 1000), send(A, 10, 2), *both(),
                recv(B, 2000), send(A, 4000, 3), *both()], modes=("merged",),
               rules=("smc_cdc_msg_recv_action", "merged sndbuf_space"))
_CASES += case("flow.copy-sndbuf-freed-at-send", "copy: the sndbuf is freed right after the CDC",
               "smcd_cdc_msg_send frees sndbuf space once data and CDC are written, so a send "
               "larger than the sndbuf goes through while the peer ring has room.", CDC,
               [send(A, 16383), *both(), recv(B, 16383), send(A, 16384, 1), *both()],
               modes=("copy",), rules=("smcd_cdc_msg_send", "copy sndbuf_space"))
# ------------------------------------------------------------------ wrap-around (cursor area)
_CASES += case("wrap.cross-ring-end", "a write crossing the ring end is split and wraps",
               "10000 + 10000 bytes: the second write wraps (two move_data chunks, "
               "prod.wrap 0 -> 1); the reader gets it back in order.", TX,
               [send(A, 10000), recv(B, 10000), send(A, 10000, 1), *both(), recv(B, 10000),
                *both()], area=Area.CURSOR, rules=("smc_curs_add", "wrap"))
_CASES += case("wrap.exact-ring", "a write of exactly one ring leaves count 0, wrap 1",
               "count == size never stays in a cursor.", TX,
               [send(A, RING), *both(), recv(B, RING), *both()], area=Area.CURSOR,
               rules=("smc_curs_add", "full ring"))
_CASES += case("wrap.many-laps", "seven laps of 7000-byte messages stay in order",
               "Cursors wrap several times; every byte arrives once, in order.", TX,
               _laps(7000, 17), area=Area.CURSOR, rules=("smc_curs_add", "smc_curs_diff", "wrap"))
_CASES += case("wrap.full-ring-after-wrap", "a full ring after a wrap is told from an empty one",
               "prod = cons + one lap (same count, wrap + 1): diff is size, not 0 (cursors.md "
               "8). A wrap-blind comparison would see an empty ring.", TX,
               [send(A, 5000), recv(B, 5000), send(A, RING, 1), *both(), send(A, 10, 2),
                *both(), recv(B, RING), *both()], area=Area.CURSOR,
               rules=("smc_curs_diff", "full ring", "wrap"))
# ------------------------------------------------------------------ close / abort
_CASES += case("close.clean", "close after everything was read: the peer sees EOF",
               "peer_conn_closed; the peer reads EOF and may no longer send (ECONNRESET).",
               CLOSE, [send(A, 500), recv(B, 500), step("conn_close", conn=A), recv(B, 10),
                       send(B, 10), step("conn_close", conn=B)],
               rules=("smc_close_final", "peer_conn_closed"))
_CASES += case("close.peer-reads-rest", "the peer reads what was sent before the close",
               "Data announced before peer_conn_closed is still delivered, then EOF.", CLOSE,
               [send(A, 3000), step("conn_close", conn=A), recv(B, 1000), recv(B, 5000),
                recv(B, 10)], rules=("smc_rx_recvmsg", "peer_conn_closed"))
_CASES += case("close.unread-data-aborts", "closing with unread data sends an abort",
               "smc_close_final sends peer_conn_abort when bytes_to_rcv > 0; the writer then "
               "gets -EPIPE (sk_err) on send.", CLOSE,
               [send(A, 700), step("conn_close", conn=B), send(A, 10, 1)],
               rules=("smc_close_final", "peer_conn_abort"))
_CASES += case("close.handle-dead", "a closed endpoint refuses every call (EBADF)",
               "The socket is gone after close.", CLOSE,
               [step("conn_close", conn=A), send(A, 10), recv(A, 10), step("conn_close", conn=A)],
               rules=("socket",))
_CASES += case("shutdown.write", "shutdown(SHUT_WR): the peer reads the rest then EOF",
               "peer_done_writing; the writer's later send is -EPIPE; repeating shutdown is "
               "a no-op.", CLOSE,
               [send(A, 1200), step("conn_shutdown", conn=A), send(A, 10, 1),
                step("conn_shutdown", conn=A), recv(B, 5000), recv(B, 10), *both()],
               rules=("smc_close_wr", "peer_done_writing"))
# shutdown(2) against the close state machine (smc_shutdown, net/smc/af_smc.c): -ENOTCONN unless
# sk_state allows it, and -ENOTCONN from inet_shutdown once the TCP connection under the socket is
# in TCP_CLOSE (both FINs crossed). Each pinned on Linux 6.12.118 under qemu (issue 16).
SHUT = "net/smc/af_smc.c smc_shutdown"
_CASES += case("shutdown.both-then-again", "a repeated shutdown after both sides shut down "
               "fails with ENOTCONN",
               "shutdown(b), shutdown(a), shutdown(a): the SMC socket is in APPCLOSEWAIT2 and "
               "does nothing, but kernel_sock_shutdown(clcsock) finds the TCP connection in "
               "TCP_CLOSE (FINs crossed) and inet_shutdown returns -ENOTCONN (the lockstep walk "
               "of issue 16).", SHUT,
               [step("conn_shutdown", conn=B), step("conn_shutdown", conn=A),
                step("conn_shutdown", conn=A), *both()],
               rules=("smc_shutdown", "inet_shutdown", "TCP_CLOSE"))
_CASES += case("shutdown.both-then-again-first", "the side that shut down first also gets "
               "ENOTCONN on a repeat",
               "shutdown(a), shutdown(b), shutdown(a): a is in PEERCLOSEWAIT2; its TCP socket "
               "went FIN_WAIT2 -> TIME_WAIT, which leaves the socket in TCP_CLOSE: -ENOTCONN; "
               "and b too.", SHUT,
               [step("conn_shutdown", conn=A), step("conn_shutdown", conn=B),
                step("conn_shutdown", conn=A), step("conn_shutdown", conn=B)],
               rules=("smc_shutdown", "inet_shutdown", "TCP_CLOSE"))
_CASES += case("shutdown.after-peer-close", "shutdown after the peer closed: once, then "
               "ENOTCONN",
               "The peer's close from ACTIVE sends peer_conn_closed and shuts its TCP side; our "
               "shutdown answers from APPCLOSEWAIT1 (-> APPCLOSEWAIT2) and sends our FIN; a "
               "second one finds TCP_CLOSE.", SHUT,
               [step("conn_close", conn=B), step("conn_shutdown", conn=A),
                step("conn_shutdown", conn=A), send(A, 10)],
               rules=("smc_close_shutdown_write", "APPCLOSEWAIT1", "TCP_CLOSE"))
_CASES += case("shutdown.then-peer-close", "our shutdown, then the peer's close: a repeat "
               "still succeeds",
               "The peer closes from APPCLOSEWAIT1 into PEERFINCLOSEWAIT without shutting its "
               "TCP side down, so our repeated shutdown (APPFINCLOSEWAIT) finds TCP in FIN_WAIT2 "
               "and succeeds.", SHUT,
               [step("conn_shutdown", conn=A), step("conn_close", conn=B),
                step("conn_shutdown", conn=A), recv(A, 10)],
               rules=("smc_close_active", "APPFINCLOSEWAIT", "PEERFINCLOSEWAIT"))
_CASES += case("shutdown.after-peer-abort", "shutdown after the peer's abort fails with "
               "ENOTCONN",
               "The peer closes with unread data: peer_conn_abort; smc_close_passive_abort_"
               "received moves us to PROCESSABORT, where smc_shutdown refuses with -ENOTCONN.",
               SHUT,
               [send(A, 700), step("conn_close", conn=B), step("conn_shutdown", conn=A)],
               rules=("smc_close_passive_abort_received", "PROCESSABORT"))
_CASES += case("shutdown.peer-shut-and-closed", "the peer shut down, then closed: one "
               "shutdown, then ENOTCONN",
               "The peer's FIN went out with its shutdown; its close adds peer_conn_closed. Our "
               "first shutdown succeeds (APPCLOSEWAIT1 -> APPCLOSEWAIT2), the second finds "
               "TCP_CLOSE.", SHUT,
               [step("conn_shutdown", conn=B), step("conn_close", conn=B),
                step("conn_shutdown", conn=A), step("conn_shutdown", conn=A), recv(A, 10)],
               rules=("smc_shutdown", "TCP_CLOSE"))
_CASES += case("shutdown.then-peer-abort", "a socket that shut down is CLOSED by the peer's "
               "abort",
               "shutdown(a), then b closes with unread data: the abort finds a in "
               "PEERCLOSEWAIT1, and since receiving it set a's own peer_conn_abort, "
               "smc_close_passive_abort_received closes a (SMC_CLOSED, not PROCESSABORT): "
               "SIOCINQ/SIOCOUTQ then read 0 (smc_ioctl), shutdown is -ENOTCONN, send -EPIPE.",
               SHUT,
               [send(A, 700), step("conn_shutdown", conn=A), step("conn_close", conn=B), curs(A),
                step("conn_shutdown", conn=A), send(A, 10, 1)],
               rules=("smc_close_passive_abort_received", "smc_ioctl", "SMC_CLOSED"))
_CASES += case("abort.peer-sees-reset", "after an abort the peer gets EOF and -EPIPE on send",
               "smc_conn_kill sends peer_conn_abort; the receiver sets sk_err (ECONNRESET) and "
               "its sendmsg fails with -EPIPE.", CLOSE,
               [step("conn_abort", conn=A), recv(B, 10), send(B, 10), step("conn_abort", conn=A),
                send(A, 10)], rules=("smc_conn_kill", "peer_conn_abort"))
_CASES += case("abort.peer-reads-announced", "data announced before an abort is still read",
               "smc_rx_recvmsg copies announced data whatever the peer's flags: after the "
               "writer's peer_conn_abort the reader still gets the bytes, then EOF "
               "(net/smc/smc_rx.c, 6.12.118).", CLOSE,
               [send(A, 900), step("conn_abort", conn=A), recv(B, 400), recv(B, 5000),
                recv(B, 10)], rules=("smc_rx_recvmsg", "peer_conn_abort"))
_CASES += case("abort.after-data", "an abort after data stops the writer",
               "The aborting side may no longer write; the peer's state is reset.", CLOSE,
               [send(A, 4000), recv(B, 4000), step("conn_abort", conn=B), send(A, 10, 1),
                step("conn_close", conn=A)], rules=("peer_conn_abort",))

_OPEN_ERRORS: tuple[Case, ...] = (
    Case(id="datapath.open.bad-dmb-size", area=Area.DATAPATH,
         title="a DMB size that is no SMC-D size is refused",
         description="SMC-D DMBs are 16 KiB << k, k = 0..6 (smc_compress_bufsize).",
         source="net/smc/smc_core.c __smc_buf_create",
         steps=(step("conn_open", mode="copy", dmb_size=20000, sndbuf_size=D),),
         rules=("bufsize",)),
)
CASES: tuple[Case, ...] = (*_CASES, *_OPEN_ERRORS)
