"""Catalogue area ``datapath`` (topics ``sock-state``, ``ends``, ``ends-data``): the close state
machine seen through ``conn_state``, and shutdown/close/abort driven from both ends.

Capability ``conn-state`` (protocol 3) shows an endpoint's socket: ``sk_state``, ``sk_err``,
``sk_shutdown``, SOCK_DEAD, whether its connection was freed, the connection-state flags it sent
and received. The ``sock-state`` cases reach each state of the SMC close machine a socket call
can reach (net/smc/smc_close.c: ``smc_close_active``, ``smc_close_shutdown_write``,
``smc_close_passive_work``, ``smc_close_passive_abort_received``; af_smc.c
``__smc_release``) and pin the kernel's state names. The ``ends`` cases run every ordered pair of
{shutdown, close, abort} x {client, server} on a fresh pair, ``ends-data`` the same with data
unread at both ends (so a close is an abort, ``smc_close_final``), looking at both endpoints'
cursors after each call (so any connection target runs them, the kernel included) and at what a
send and a recv from each end get at the end; ``ends-state`` are the fresh ones with
``conn_state`` after each call instead. Expected observations come
from :mod:`smcd_check.spec.close` with the data path and the lifecycle (``freed``).
"""

from __future__ import annotations

import itertools

from smcd_check.conformance.runner.run import Area, Case, Pin, Step, step
from smcd_check.conformance.targets.adapter import Ref

D = 16384
A, B = Ref("p", "a"), Ref("p", "b")
CLOSE = "net/smc/smc_close.c"
MODES = ("copy", "merged")
_OPS = {"shutdown": "conn_shutdown", "close": "conn_close", "abort": "conn_abort"}


def open_pair(mode: str) -> Step:
    return step("conn_open", mode=mode, dmb_size=D, sndbuf_size=D if mode == "copy" else 0,
                bind="p")


def state(conn: Ref) -> Step:
    return step("conn_state", conn=conn)


def both() -> list[Step]:
    return [state(A), state(B)]


def send(conn: Ref, n: int, seed: int = 0) -> Step:
    return step("conn_send", conn=conn,
                data=bytes((seed * 131 + i * 7) & 0xFF for i in range(n)).hex())


def recv(conn: Ref) -> Step:
    return step("conn_recv", conn=conn, max=100000)


def sk(index: int, sk_state: str, fn: str, **more: object) -> Pin:
    return Pin(index=index, error=None, value=(("sk_state", sk_state), *more.items()),
               source=f"{CLOSE} {fn}")


def cases(cid: str, title: str, description: str, source: str, body: list[Step],
          pins: list[Pin], rules: tuple[str, ...] = ()) -> list[Case]:
    """One case per mode; pin indexes count the opening step as 0."""
    return [Case(id=f"datapath.{mode}.{cid}", area=Area.DATAPATH, title=f"{title} ({mode} mode)",
                 description=description, source=source, steps=(open_pair(mode), *body),
                 pins=tuple(pins), rules=rules) for mode in MODES]


_C: list[Case] = []

# ------------------------------------------------------------------ every reachable close state

_C += cases("sock-state.active", "an open pair: both SMC_ACTIVE, no flags",
            "After the handshake both sockets are SMC_ACTIVE, nothing sent or received, "
            "nothing freed.", "net/smc/af_smc.c smc_connect_ism", both(),
            [Pin(index=1, error=None, source="net/smc/af_smc.c smc_connect_ism",
                 value=(("sk_state", "SMC_ACTIVE"), ("freed", False), ("tx_flags", []),
                        ("rx_flags", []), ("sk_err", ""))),
             Pin(index=2, error=None, source="net/smc/af_smc.c smc_listen_work",
                 value=(("sk_state", "SMC_ACTIVE"),))], rules=("SMC_ACTIVE",))
_C += cases("sock-state.shutdown", "shutdown(SHUT_WR): PEERCLOSEWAIT1 here, APPCLOSEWAIT1 there",
            "smc_close_shutdown_write from SMC_ACTIVE sends peer_done_writing and waits for the "
            "peer (PEERCLOSEWAIT1); the peer's passive work moves it to APPCLOSEWAIT1 with "
            "RCV_SHUTDOWN.", f"{CLOSE} smc_close_shutdown_write",
            [step("conn_shutdown", conn=A), *both()],
            [sk(2, "SMC_PEERCLOSEWAIT1", "smc_close_shutdown_write",
                tx_flags=["peer_done_writing"], sk_shutdown=2),
             sk(3, "SMC_APPCLOSEWAIT1", "smc_close_passive_work",
                rx_flags=["peer_done_writing"], sk_shutdown=1)],
            rules=("SMC_PEERCLOSEWAIT1", "SMC_APPCLOSEWAIT1"))
_C += cases("sock-state.shutdown-both", "both shut down: PEERCLOSEWAIT2 and APPCLOSEWAIT2",
            "The second side's shutdown answers from APPCLOSEWAIT1 (-> APPCLOSEWAIT2); its "
            "done-writing moves the first from PEERCLOSEWAIT1 to PEERCLOSEWAIT2.",
            f"{CLOSE} smc_close_passive_work",
            [step("conn_shutdown", conn=A), step("conn_shutdown", conn=B), *both()],
            [sk(3, "SMC_PEERCLOSEWAIT2", "smc_close_passive_work", sk_shutdown=3),
             sk(4, "SMC_APPCLOSEWAIT2", "smc_close_shutdown_write", sk_shutdown=3)],
            rules=("SMC_PEERCLOSEWAIT2", "SMC_APPCLOSEWAIT2"))
_C += cases("sock-state.close-first", "close first: PEERCLOSEWAIT1, the peer APPCLOSEWAIT1",
            "smc_close_active from SMC_ACTIVE sends peer_conn_closed (smc_close_final) and goes "
            "to PEERCLOSEWAIT1 (not PEERFINCLOSEWAIT); the closed socket is SOCK_DEAD and not "
            "freed until the peer's close arrives.", f"{CLOSE} smc_close_active",
            [step("conn_close", conn=A), *both()],
            [sk(2, "SMC_PEERCLOSEWAIT1", "smc_close_active", dead=True, freed=False,
                tx_flags=["peer_conn_closed"]),
             sk(3, "SMC_APPCLOSEWAIT1", "smc_close_passive_work", rx_flags=["peer_conn_closed"])],
            rules=("smc_close_active", "SMC_PEERCLOSEWAIT1"))
_C += cases("sock-state.close-both", "both closed: CLOSED and freed at both ends",
            "The second close answers from APPCLOSEWAIT1 with the peer's close already received: "
            "SMC_CLOSED at once; its peer_conn_closed moves the first (dead, sent a close) from "
            "PEERCLOSEWAIT1 to CLOSED, and both connections are freed.",
            f"{CLOSE} smc_close_passive_work",
            [step("conn_close", conn=A), step("conn_close", conn=B), *both()],
            [sk(3, "SMC_CLOSED", "smc_close_passive_work", freed=True, dead=True),
             sk(4, "SMC_CLOSED", "smc_close_active", freed=True)],
            rules=("SMC_CLOSED", "smc_conn_free"))
_C += cases("sock-state.appfinclosewait", "shut down, then the peer closes: APPFINCLOSEWAIT",
            "PEERCLOSEWAIT1 and the peer's close arrives while the socket is still open: "
            "APPFINCLOSEWAIT (just shut down, not closed locally); the peer, having received the "
            "done-writing, waits in PEERFINCLOSEWAIT. Our close then sends peer_conn_closed "
            "(only a done-writing was sent) and both are CLOSED and freed.",
            f"{CLOSE} smc_close_passive_work",
            [step("conn_shutdown", conn=A), step("conn_close", conn=B), *both(),
             step("conn_close", conn=A), *both()],
            [sk(3, "SMC_APPFINCLOSEWAIT", "smc_close_passive_work", freed=False),
             sk(4, "SMC_PEERFINCLOSEWAIT", "smc_close_active", dead=True, freed=False),
             sk(6, "SMC_CLOSED", "smc_close_active", freed=True,
                tx_flags=["peer_done_writing", "peer_conn_closed"]),
             sk(7, "SMC_CLOSED", "smc_close_passive_work", freed=True)],
            rules=("SMC_APPFINCLOSEWAIT", "SMC_PEERFINCLOSEWAIT", "smc_conn_free"))
_C += cases("sock-state.abort-received", "an abort received: PROCESSABORT, ECONNRESET",
            "smc_conn_kill sends peer_conn_abort; the receiver sets sk_err ECONNRESET and its own "
            "outgoing abort flag (smc_cdc_msg_recv_action) and smc_close_passive_abort_received "
            "moves it from SMC_ACTIVE to PROCESSABORT. The aborted side is SMC_CLOSED, "
            "ECONNABORTED, freed.", f"{CLOSE} smc_close_passive_abort_received",
            [step("conn_abort", conn=A), *both(), step("conn_close", conn=B), state(B)],
            [sk(2, "SMC_CLOSED", "smc_close_active_abort", sk_err="ECONNABORTED", freed=True),
             sk(3, "SMC_PROCESSABORT", "smc_close_passive_abort_received", sk_err="ECONNRESET",
                tx_flags=["peer_conn_abort"], rx_flags=["peer_conn_abort"]),
             sk(5, "SMC_CLOSED", "smc_close_active", freed=True)],
            rules=("SMC_PROCESSABORT", "smc_close_abort"))
_C += cases("sock-state.abort-after-shutdown", "an abort after our shutdown: CLOSED at once",
            "PEERCLOSEWAIT1 and the peer's abort arrives: our own abort flag was set on receipt, "
            "so 'sent any close' holds and smc_close_passive_abort_received goes straight to "
            "SMC_CLOSED (not PROCESSABORT); shutdown is then ENOTCONN.",
            f"{CLOSE} smc_close_passive_abort_received",
            [step("conn_shutdown", conn=A), step("conn_abort", conn=B), state(A),
             step("conn_shutdown", conn=A), recv(A)],
            [sk(3, "SMC_CLOSED", "smc_close_passive_abort_received", freed=False),
             Pin(index=4, error="ENOTCONN", source="net/smc/af_smc.c smc_shutdown")],
            rules=("smc_close_passive_abort_received", "SMC_CLOSED"))
_C += cases("sock-state.close-with-unread", "closing with unread data sends an abort",
            "smc_close_final sends peer_conn_abort when bytes_to_rcv > 0: the writer ends in "
            "PROCESSABORT with ECONNRESET, the closer waits in PEERCLOSEWAIT1 for the writer's "
            "answer.", f"{CLOSE} smc_close_final",
            [send(A, 700), step("conn_close", conn=B), *both()],
            [sk(3, "SMC_PROCESSABORT", "smc_close_passive_abort_received", sk_err="ECONNRESET"),
             sk(4, "SMC_PEERCLOSEWAIT1", "smc_close_active", tx_flags=["peer_conn_abort"])],
            rules=("smc_close_final", "peer_conn_abort"))

_C += cases("sock-state.closed-discards-unread", "a socket closed by the peer's abort after "
            "its shutdown reads EOF at once, its unread data lost",
            "The client sent 300 bytes, the server 200; the client shuts down (PEERCLOSEWAIT1), "
            "the server closes with the 300 unread (abort). The client, its own abort flag set "
            "on receipt, goes to SMC_CLOSED; smc_recvmsg on an SMC_CLOSED socket with "
            "RCV_SHUTDOWN returns 0 before looking at the 200 unread bytes. Seen on Linux "
            "6.12.118 under qemu (the spec and the model had returned the data).",
            "net/smc/af_smc.c smc_recvmsg",
            [send(A, 300), send(B, 200, 1), step("conn_shutdown", conn=A),
             step("conn_close", conn=B), recv(A), step("conn_cursors", conn=A)],
            [Pin(index=5, error=None, value=(("data", ""), ("eof", True)),
                 source="net/smc/af_smc.c smc_recvmsg (Linux 6.12.118 under qemu)")],
            rules=("smc_recvmsg", "SMC_CLOSED", "RCV_SHUTDOWN"))

# ------------------------------------------------------------------ both ends, every order


def _ends(with_data: bool, with_state: bool) -> list[Case]:
    out: list[Case] = []
    topic = "ends-data" if with_data else "ends-state" if with_state else "ends"
    calls = [(name, who) for name in _OPS for who in ("a", "b")]

    def look(gone: set[str]) -> list[Step]:
        # conn_state needs capability conn-state; without it, the cursors (any conn target,
        # the kernel included) show what the calls did to the data path, for the endpoints
        # whose descriptor is still open (the kernel target has no cursors of a closed fd)
        if with_state:
            return both()
        return [step("conn_cursors", conn=ref) for w, ref in (("a", A), ("b", B))
                if w not in gone]

    for (n1, w1), (n2, w2) in itertools.product(calls, repeat=2):
        who1, who2 = (A if w1 == "a" else B), (A if w2 == "a" else B)
        body: list[Step] = []
        if with_data:
            body += [send(A, 300), send(B, 200, 1)]
        gone1 = {w1} if n1 != "shutdown" else set()
        gone2 = gone1 | ({w2} if n2 != "shutdown" else set())
        body += [step(_OPS[n1], conn=who1), *look(gone1), step(_OPS[n2], conn=who2),
                 *look(gone2),
                 send(A, 10, 2), send(B, 10, 3), recv(A), recv(B)]
        unread = " with data unread at both ends" if with_data else ""
        seen = "socket state, error, flags each way, freed" if with_state else "cursors"
        out += cases(f"{topic}.{n1}-{w1}-{n2}-{w2}",
                     f"{n1} {w1}, then {n2} {w2}{unread}",
                     f"{n1} on the {'client' if w1 == 'a' else 'server'}, then {n2} on the "
                     f"{'client' if w2 == 'a' else 'server'}{unread}: both endpoints after "
                     f"each call ({seen}), then a send and a recv at each end.",
                     f"{CLOSE} smc_close_active / smc_close_passive_work",
                     body, [], rules=("close from both ends", f"{n1}+{n2}"))
    return out


_C += _ends(with_data=False, with_state=False)
_C += _ends(with_data=True, with_state=False)
_C += _ends(with_data=False, with_state=True)

CASES: tuple[Case, ...] = tuple(_C)
