"""Catalogue area ``lifecycle`` (topic ``lgr``): link groups and the connections' own DMBs.

Capability ``lgr-lifecycle`` (protocol 3). Every case opens pairs on a connection device (one
loopback-ism host per mode) and looks at what net/smc/smc_core.c does with their link groups and
DMBs: which link group a connection joins (``smc_conn_create``, ``smcd_lgr_match``), which DMB it
gets (``__smc_buf_create``, ``smc_buf_get_slot``), what a free gives back (``smc_conn_free``,
``smc_buf_unuse``), when the link group and its DMBs go (``smc_lgr_free_work``, ``smc_lgr_put`` /
``__smc_lgr_free`` / ``smc_lgr_free_bufs``), and what a link-group termination or the loss of the
device does to open connections (``__smc_lgr_terminate``, ``smc_conn_kill``,
``smc_close_active_abort``, then ``smc_sendmsg`` / ``smc_recvmsg`` / ``smc_shutdown`` on the killed
socket). Expected observations come from :mod:`smcd_check.spec.lifecycle` with the data path and
the close machine (see :mod:`~smcd_check.conformance.targets.spec_sockets`); steps whose answer is
a kernel fact stated by the source pin it, citing the function.

On one loopback-ism host the first pair creates two link groups (the server's in its listen
work, then the client's, told "first contact" by the Accept); every later pair joins the first
listed one *at both ends*, since SMC-D does not compare the role. The handles of link groups and
DMB tokens are compared symbolically: "the same link group" and "the same DMB again" are what is
checked, never raw values.
"""

from __future__ import annotations

from smcd_check.conformance.runner.run import Area, Case, Pin, Step, step
from smcd_check.conformance.targets.adapter import Ref

D = 16384
CORE, AF, CLOSE, LO = ("net/smc/smc_core.c", "net/smc/af_smc.c", "net/smc/smc_close.c",
                       "net/smc/smc_loopback.c")
MODES = ("copy", "merged")


def pair(mode: str, bind: str, size: int = D) -> Step:
    return step("conn_open", mode=mode, dmb_size=size, sndbuf_size=size if mode == "copy" else 0,
                bind=bind)


def a(bind: str = "p") -> Ref:
    return Ref(bind, "a")


def b(bind: str = "p") -> Ref:
    return Ref(bind, "b")


def lgr_of(conn: Ref, bind: str | None = None) -> Step:
    return step("lgr_of", conn=conn, bind=bind)


def dmb(conn: Ref) -> Step:
    return step("lgr_dmb", conn=conn)


def dev(mode: str) -> Step:
    return step("lgr_dev", mode=mode)


def lgr(bind: str) -> Ref:
    return Ref(bind, "lgr")


def send(conn: Ref, n: int, seed: int = 0) -> Step:
    return step("conn_send", conn=conn,
                data=bytes((seed * 131 + i * 7) & 0xFF for i in range(n)).hex())


def recv(conn: Ref, n: int = 100000) -> Step:
    return step("conn_recv", conn=conn, max=n)


def close(conn: Ref) -> Step:
    return step("conn_close", conn=conn)


def pin(index: int, error: str | None, source: str, **value: object) -> Pin:
    return Pin(index=index, error=error, value=tuple(value.items()), source=source)


def cases(cid: str, title: str, description: str, source: str, body: object,
          rules: tuple[str, ...] = (), modes: tuple[str, ...] = MODES) -> list[Case]:
    """One case per mode; ``body(mode)`` returns ``(steps, pins)``."""
    out = []
    for mode in modes:
        steps, pins = body(mode)  # type: ignore[operator]
        out.append(Case(id=f"lifecycle.lgr.{mode}.{cid}", area=Area.LIFECYCLE,
                        title=f"{title} ({mode} mode)", description=description, source=source,
                        steps=tuple(steps), pins=tuple(pins), rules=rules))
    return out


def _ghosts(mode: str) -> int:
    """References a live pair's DMB has: the owner's, plus the peer's ghost when merged."""
    return 2 if mode == "merged" else 1


_C: list[Case] = []

# ----------------------------------------------------------------------- creating and joining

_C += cases(
    "first-pair", "the first pair creates two link groups, the server's first",
    "smc_conn_create finds nothing to join: the server creates a link group (first contact) and "
    "registers its DMB first (slot 0), then the client, told 'first contact' by the Accept, "
    "creates its own (slot 1). Merged mode: each DMB also carries the peer's ghost reference "
    "(smc_lo_attach_dmb).", f"{CORE} smc_conn_create",
    lambda m: ([pair(m, "p"), lgr_of(a(), "la"), lgr_of(b(), "lb"), dmb(b()), dmb(a()), dev(m)],
               [pin(1, None, f"{CORE} smc_conn_create", first_contact=True, conns_num=1,
                    state="listed"),
                pin(2, None, f"{CORE} smc_conn_create", first_contact=True, conns_num=1),
                pin(3, None, f"{LO} smc_lo_register_dmb", sba_idx=0, len=D,
                    refcnt=_ghosts(m), used=True),
                pin(4, None, f"{LO} smc_lo_register_dmb", sba_idx=1, refcnt=_ghosts(m)),
                pin(5, None, f"{CORE} smc_lgr_create", dmb_cnt=2, lgr_cnt=2, listed=2)]),
    rules=("smc_conn_create", "smc_lgr_create", "first contact"))

_C += cases(
    "second-pair-joins", "a second pair joins the server's link group at both ends",
    "The server scans the device's lgr_list and joins the first link group where "
    "smcd_lgr_match holds (same peer GID and gid_ext on loopback-ism, no sync_err; v2 ignores "
    "the VLAN); the client, told 'not first contact', scans too and joins the same one, since "
    "SMC-D does not compare the role. Both register new DMBs (the first pair still uses its own). "
    "A wrong smcd_lgr_match that never matches creates two more link groups here.",
    f"{CORE} smcd_lgr_match",
    lambda m: ([pair(m, "p"), lgr_of(b(), "lb"), pair(m, "q"), lgr_of(b("q")), lgr_of(a("q")),
                lgr_of(a()), dev(m)],
               [pin(3, None, f"{CORE} smc_conn_create", first_contact=False, conns_num=3),
                pin(4, None, f"{CORE} smc_conn_create", first_contact=False, conns_num=3),
                pin(6, None, f"{CORE} smc_lgr_register_conn", dmb_cnt=4, lgr_cnt=2)]),
    rules=("smcd_lgr_match", "smc_conn_create", "link group reuse"))

_C += cases(
    "third-pair-joins", "every later pair joins the same link group",
    "Three pairs: the second and third both join the first pair's server link group; its "
    "conns_num counts every registered connection (5).", f"{CORE} smc_lgr_register_conn",
    lambda m: ([pair(m, "p"), pair(m, "q"), pair(m, "r"), lgr_of(a("r")), lgr_of(b("p")),
                lgr_of(a("p")), dev(m)],
               [pin(3, None, f"{CORE} smc_lgr_register_conn", conns_num=5),
                pin(6, None, f"{CORE} smc_lgr_register_conn", dmb_cnt=6, lgr_cnt=2)]),
    rules=("smc_lgr_register_conn", "link group reuse"))

_C += cases(
    "sizes", "every SMC-D DMB size registers with its length",
    "Pairs with DMBs of 16 KiB << k for k = 0..6 (the SMC-D sizes, SMCD_DMBE_SIZES = 6): "
    "lgr_dmb reports the whole DMB (the 32-byte CDC header included); each size is a DMB of "
    "its own (smc_buf_get_slot reuses only the same compressed size).",
    f"{CORE} __smc_buf_create",
    lambda m: ([s for k in range(7) for s in (pair(m, f"p{k}", D << k), dmb(a(f"p{k}")))]
               + [dev(m)],
               [pin(2 * k + 1, None, f"{CORE} smcd_new_buf_create", len=D << k)
                for k in range(7)] + [pin(14, None, f"{LO} smc_lo_register_dmb", dmb_cnt=14)]),
    rules=("__smc_buf_create", "SMCD_DMBE_SIZES"))

# ----------------------------------------------------------------------- freeing and reuse

_C += cases(
    "reuse-dmb-after-free", "a freed connection's DMB is reused by the next pair of its link group",
    "Both ends close: smc_conn_free runs smc_buf_unuse (zeroed, used = 0) but unregisters "
    "nothing. The next pair's server joins that link group and smc_buf_get_slot hands it the "
    "same DMB (same token); the client joins too and registers a new one (the old client DMB "
    "waits in the other, empty link group). The reused ring reads empty.",
    f"{CORE} smc_buf_get_slot",
    lambda m: ([pair(m, "p"), send(a(), 700), recv(b()), close(a()), close(b()), dmb(b()),
                pair(m, "q"), dmb(b("q")), dmb(a("q")), recv(b("q")), dev(m),
                step("conn_cursors", conn=b("q"))],
               [pin(5, None, f"{CORE} smc_buf_unuse", used=False, refcnt=1),
                pin(7, None, f"{CORE} smc_buf_get_slot", used=True, sba_idx=0),
                pin(8, None, f"{LO} smc_lo_register_dmb", sba_idx=2),
                pin(10, None, f"{CORE} smc_buf_get_slot", dmb_cnt=3, lgr_cnt=2)]),
    rules=("smc_buf_get_slot", "smc_buf_unuse", "DMB reuse"))

_C += cases(
    "reuse-newest-first", "of several unused DMBs the newest is reused first",
    "smcd_new_buf_create puts a new DMB at the head of its size's list (list_add) and "
    "smc_buf_get_slot takes the first unused one: after two pairs in one link group close, the "
    "next pair's server gets the DMB registered last (the second pair's client's), its client "
    "the one before.", f"{CORE} smc_buf_get_slot",
    lambda m: ([pair(m, "p"), pair(m, "q"), dmb(b("q")), dmb(a("q")), close(a()), close(b()),
                close(a("q")), close(b("q")), pair(m, "r"), dmb(b("r")), dmb(a("r")), dev(m)],
               [pin(11, None, f"{CORE} smc_buf_get_slot", dmb_cnt=4)]),
    rules=("smc_buf_get_slot", "list_add"))

_C += cases(
    "reuse-needs-same-size", "an unused DMB of another size is not reused",
    "smc_buf_get_slot looks only at the list of the wanted compressed size: a 32 KiB pair "
    "registers a new DMB although a 16 KiB one waits unused in the link group.",
    f"{CORE} smc_buf_get_slot",
    lambda m: ([pair(m, "p"), close(a()), close(b()), pair(m, "q", 2 * D), dmb(b("q")),
                dmb(b()), dev(m)],
               [pin(4, None, f"{CORE} smc_buf_get_slot", len=2 * D, used=True),
                pin(5, None, f"{CORE} smc_buf_get_slot", used=False),
                pin(6, None, f"{CORE} __smc_buf_create", dmb_cnt=4)]),
    rules=("smc_buf_get_slot",))

_C += cases(
    "free-work-empty-lgr", "the delayed free unregisters every DMB of an empty link group",
    "After both ends closed, each link group is empty and its free work is queued "
    "(smc_lgr_schedule_free_work). When it runs (the kernel waits 10 minutes) the link group "
    "leaves the list and, its last reference gone, every DMB on its lists is unregistered "
    "(smc_lgr_free_bufs -> smcd_buf_free): nothing may leak. Its handle is then unknown.",
    f"{CORE} smc_lgr_free_work",
    lambda m: ([pair(m, "p"), lgr_of(a(), "la"), lgr_of(b(), "lb"), close(a()), close(b()),
                dev(m), step("lgr_free_work", lgr=lgr("la")),
                step("lgr_free_work", lgr=lgr("lb")), dev(m), dmb(a()), dmb(b()), lgr_of(a()),
                step("lgr_terminate", lgr=lgr("la"), strict=True),
                step("lgr_free_work", lgr=lgr("lb"), strict=True)],
               [pin(5, None, f"{CORE} smc_conn_free", dmb_cnt=2, lgr_cnt=2, listed=2),
                pin(8, None, f"{CORE} __smc_lgr_free", dmb_cnt=0, lgr_cnt=0, listed=0),
                pin(9, None, f"{CORE} smcd_buf_free", refcnt=0, used=False),
                pin(11, None, f"{CORE} __smc_lgr_free", state="gone")]),
    rules=("smc_lgr_free_work", "smc_lgr_free_bufs", "no DMB leak"))

_C += cases(
    "free-work-busy", "no delayed free is queued while a connection is registered",
    "smc_conn_free queues the free work only when conns_num drops to 0. The client's close "
    "leaves it registered (PEERCLOSEWAIT1, waiting for the peer's close); once the server "
    "closes both are freed and both link groups' free work is queued.",
    f"{CORE} smc_lgr_schedule_free_work",
    lambda m: ([pair(m, "p"), lgr_of(a(), "la"), lgr_of(b(), "lb"),
                step("lgr_free_work", lgr=lgr("la"), strict=True), close(a()),
                step("lgr_free_work", lgr=lgr("la"), strict=True), close(b()),
                step("lgr_free_work", lgr=lgr("la")), step("lgr_free_work", lgr=lgr("lb")),
                dev(m)],
               [pin(3, "EAGAIN", f"{CORE} smc_conn_free"),
                pin(5, "EAGAIN", f"{CORE} smc_conn_free"),
                pin(9, None, f"{CORE} smc_lgr_free_work", dmb_cnt=0, lgr_cnt=0)]),
    rules=("smc_lgr_schedule_free_work", "smc_conn_free"))

_C += cases(
    "join-cancels-free", "a connection joining an empty link group cancels its delayed free",
    "smc_conn_create cancels the free work of the link group it joins; the other, still empty "
    "link group is freed when its work runs.", f"{CORE} smc_conn_create",
    lambda m: ([pair(m, "p"), lgr_of(a(), "la"), lgr_of(b(), "lb"), close(a()), close(b()),
                pair(m, "q"), step("lgr_free_work", lgr=lgr("lb"), strict=True),
                step("lgr_free_work", lgr=lgr("la")), dev(m), lgr_of(a("q"))],
               [pin(6, "EAGAIN", f"{CORE} smc_conn_create"),
                pin(8, None, f"{CORE} smc_lgr_free_work", dmb_cnt=2, lgr_cnt=1, listed=1)]),
    rules=("smc_conn_create", "cancel_delayed_work"))

_C += cases(
    "abort-keeps-dmb-used", "an aborted connection's DMB stays used and its empty link group "
    "gets no free work",
    "conn_abort is smc_conn_kill: the connection leaves its link group without smc_buf_unuse, "
    "so its DMB is never reused (used stays 1), and the free that follows jumps to lgr_put "
    "(no smc_lgr_schedule_free_work for a connection no longer registered).",
    f"{CORE} smc_conn_kill",
    lambda m: ([pair(m, "p"), lgr_of(a(), "la"), step("conn_abort", conn=a()), dmb(a()),
                lgr_of(a()), step("lgr_free_work", lgr=lgr("la"), strict=True), close(b()),
                pair(m, "q"), lgr_of(a("q")), dev(m)],
               [pin(3, None, f"{CORE} smc_conn_kill", used=True),
                pin(4, None, f"{CORE} smc_lgr_unregister_conn", conns_num=0, state="listed"),
                pin(5, "EAGAIN", f"{CORE} smc_conn_free")]),
    rules=("smc_conn_kill", "smc_conn_free", "lgr_put"))

# ----------------------------------------------------------------------- termination


def _terminate_open(m: str) -> tuple[list[Step], list[Pin]]:
    steps = [pair(m, "p"), lgr_of(b(), "lb"), send(a(), 700),
             step("lgr_terminate", lgr=lgr("lb")),
             send(b(), 10), recv(b()), step("conn_shutdown", conn=b()),
             send(a(), 10), recv(a()), lgr_of(b()), dmb(b()), dmb(a()), dev(m),
             step("conn_cursors", conn=a())]
    pins = [pin(4, "EPIPE", f"{AF} smc_sendmsg"), pin(5, "ENOTCONN", f"{AF} smc_recvmsg"),
            pin(6, "ENOTCONN", f"{AF} smc_shutdown"), pin(7, "EPIPE", f"{AF} smc_sendmsg"),
            pin(8, None, "net/smc/smc_rx.c smc_rx_recvmsg", data="", eof=True),
            pin(9, None, f"{CORE} __smc_lgr_terminate", state="freeing", conns_num=0),
            pin(10, None, f"{CORE} smc_conn_kill", used=True, refcnt=_ghosts(m)),
            pin(11, None, f"{CORE} smcd_buf_detach", refcnt=1),
            pin(12, None, f"{CORE} smc_lgr_put", dmb_cnt=2, lgr_cnt=2, listed=1)]
    return steps, pins


_C += cases(
    "terminate-open-pair", "a terminated link group kills its connection; the peer sees an abort",
    "lgr_terminate on the server's link group: __smc_lgr_terminate kills the server end "
    "(smc_conn_kill: abort CDC, killed, sk_err ECONNABORTED, unset, ghost detached, unregistered "
    "without smc_buf_unuse; smc_close_active_abort: SMC_CLOSED). The killed socket stays open "
    "for its application: send is EPIPE (smc_sendmsg on SMC_CLOSED), recv ENOTCONN (its unread "
    "700 bytes are lost: SMC_CLOSED without RCV_SHUTDOWN), shutdown ENOTCONN. The client, in "
    "its own link group, received peer_conn_abort: send EPIPE, recv EOF. The killed "
    "connection's DMB stays registered and used.", f"{CORE} __smc_lgr_terminate",
    _terminate_open, rules=("__smc_lgr_terminate", "smc_conn_kill", "smc_close_active_abort"))

_C += cases(
    "terminate-dmbs-wait-for-close", "a terminated link group's DMBs stay until its killed "
    "sockets are closed",
    "Every connection holds a link-group reference from smc_conn_create to smc_conn_free "
    "(smc_lgr_hold / smc_lgr_put); smc_lgr_free drops only the link group's own. The killed "
    "server socket is freed by its close (smc_conn_free jumps to lgr_put: no longer "
    "registered), and that last reference frees the link group and unregisters its DMB - "
    "which in merged mode still has the client's ghost reference, so it stays until the "
    "client's free detaches it. A connection that forgets its lgr_put leaks them.",
    f"{CORE} smc_lgr_put",
    lambda m: ([pair(m, "p"), lgr_of(a(), "la"), lgr_of(b(), "lb"),
                step("lgr_terminate", lgr=lgr("lb")), dev(m), close(b()), dev(m), dmb(b()),
                lgr_of(b()), close(a()), dev(m), step("lgr_free_work", lgr=lgr("la")), dev(m),
                step("lgr_terminate", lgr=lgr("lb"), strict=True)],
               [pin(4, None, f"{CORE} smc_lgr_put", dmb_cnt=2, lgr_cnt=2, listed=1),
                pin(6, None, f"{CORE} __smc_lgr_free", dmb_cnt=2 if m == "merged" else 1,
                    lgr_cnt=1),
                pin(7, None, f"{LO} smc_lo_unregister_dmb", refcnt=1 if m == "merged" else 0),
                pin(8, None, f"{CORE} __smc_lgr_free", state="gone"),
                pin(10, None, f"{CORE} smc_conn_free", dmb_cnt=1, lgr_cnt=1),
                pin(12, None, f"{CORE} smc_lgr_free_work", dmb_cnt=0, lgr_cnt=0, listed=0),
                pin(13, "EINVAL", f"{CORE} __smc_lgr_free")]),
    rules=("smc_lgr_hold", "smc_lgr_put", "__smc_lgr_free", "no DMB leak"))

_C += cases(
    "terminate-both-ends", "terminating the link group both ends of a pair joined",
    "The second pair's ends are both in the server's link group; __smc_lgr_terminate kills in "
    "rb-tree order (alert_token_local: registration order, server first). The server end "
    "is killed from SMC_ACTIVE (recv ENOTCONN, not freed until closed); its abort CDC reaches "
    "the client end first, which goes to SMC_PROCESSABORT, so when it is killed "
    "smc_close_active_abort frees it at once and its recv is EOF (RCV_SHUTDOWN came first).",
    f"{CORE} __smc_lgr_terminate",
    lambda m: ([pair(m, "p"), lgr_of(b(), "lb"), pair(m, "q"), send(a("q"), 300),
                step("lgr_terminate", lgr=lgr("lb")), recv(b("q")), recv(a("q")), recv(a()),
                recv(b()), dmb(a("q")), dmb(b("q")), dev(m), close(b("q")), close(b()),
                dev(m), close(a("q")), close(a()), dev(m)],
               [pin(5, "ENOTCONN", f"{AF} smc_recvmsg"),
                pin(6, None, f"{AF} smc_recvmsg", data="", eof=True),
                pin(7, None, "net/smc/smc_rx.c smc_rx_recvmsg", data="", eof=True),
                pin(8, "ENOTCONN", f"{AF} smc_recvmsg"),
                pin(14, None, f"{CORE} __smc_lgr_free", lgr_cnt=1,
                    dmb_cnt=2 if m == "merged" else 1)]),
    rules=("__smc_lgr_terminate", "conns_all order", "smc_close_active_abort"))

_C += cases(
    "terminate-after-shutdown", "a connection killed after its shutdown is freed at once",
    "The client shut down (SMC_PEERCLOSEWAIT1) and its link group is terminated: "
    "smc_close_active_abort frees it right away (smc_conn_free), so the link group loses its "
    "last reference and goes; its DMB stays only while the server's ghost holds it (merged). "
    "The server received done-writing, then the abort: SMC_PROCESSABORT, recv EOF, shutdown "
    "ENOTCONN.", f"{CLOSE} smc_close_active_abort",
    lambda m: ([pair(m, "p"), lgr_of(a(), "la"), step("conn_shutdown", conn=a()),
                step("lgr_terminate", lgr=lgr("la")), lgr_of(a()), dmb(a()), dev(m),
                recv(b()), step("conn_shutdown", conn=b()), send(b(), 10), close(a()),
                close(b()), dev(m)],
               [pin(4, None, f"{CLOSE} smc_close_active_abort", state="gone"),
                pin(5, None, f"{LO} smc_lo_unregister_dmb", refcnt=1 if m == "merged" else 0),
                pin(7, None, "net/smc/smc_rx.c smc_rx_recvmsg", data="", eof=True),
                pin(8, "ENOTCONN", f"{AF} smc_shutdown"),
                pin(9, "EPIPE", f"{AF} smc_sendmsg")]),
    rules=("smc_close_active_abort", "smc_conn_free"))

_C += cases(
    "terminate-twice", "terminating a terminated link group does nothing; a freed one is unknown",
    "smc_lgr_terminate_sched returns at once for a link group already off the list; once its "
    "last reference is gone the link group no longer exists (EINVAL here).",
    f"{CORE} smc_lgr_terminate_sched",
    lambda m: ([pair(m, "p"), lgr_of(b(), "lb"), step("lgr_terminate", lgr=lgr("lb")),
                step("lgr_terminate", lgr=lgr("lb")), close(b()),
                step("lgr_terminate", lgr=lgr("lb"), strict=True)],
               [pin(3, None, f"{CORE} smc_lgr_terminate_sched"),
                pin(5, "EINVAL", f"{CORE} __smc_lgr_free")]),
    rules=("smc_lgr_terminate_sched",))

_C += cases(
    "terminate-then-open", "after a termination the next pair joins the client's link group",
    "The server's link group is off the list; smc_conn_create of the next server finds the "
    "first pair's *client* link group (same peer, and the role is not compared for SMC-D) and "
    "joins it, and so does the next client.", f"{CORE} smcd_lgr_match",
    lambda m: ([pair(m, "p"), lgr_of(a(), "la"), lgr_of(b(), "lb"),
                step("lgr_terminate", lgr=lgr("lb")), pair(m, "q"), lgr_of(b("q")),
                lgr_of(a("q")), send(a("q"), 100), recv(b("q")), dev(m)],
               [pin(5, None, f"{CORE} smc_conn_create", first_contact=False, conns_num=3),
                pin(6, None, f"{CORE} smc_conn_create", first_contact=False)]),
    rules=("smcd_lgr_match", "role not compared"))

_C += cases(
    "dev-remove", "losing the device kills every connection; a later open fails",
    "smc_smcd_terminate_all takes every link group off the list, then terminates each in list "
    "order: the server link group (first pair's server, second pair's server and client), then "
    "the client's. Ends killed after their peer's abort arrived are freed at once and read "
    "EOF; the first ones killed read ENOTCONN. No SMC-D device is left: conn_open is refused "
    "(a real connect falls back to TCP). The DMBs go as the killed sockets are closed.",
    f"{CORE} smc_smcd_terminate_all",
    lambda m: ([pair(m, "p"), pair(m, "q"), send(a(), 50), step("lgr_dev_remove", mode=m),
                *[s for c in (a(), b(), a("q"), b("q")) for s in (send(c, 5), recv(c))],
                dev(m), pair(m, "r"), close(b()), close(b("q")), close(a()), close(a("q")),
                dev(m), step("lgr_dev_remove", mode=m, strict=True)],
               [pin(3, None, f"{CORE} smc_smcd_terminate_all"),
                pin(4, "EPIPE", f"{AF} smc_sendmsg"),
                pin(5, None, f"{AF} smc_recvmsg", data="", eof=True),
                pin(7, "ENOTCONN", f"{AF} smc_recvmsg"),
                pin(12, None, f"{CORE} smc_smcd_terminate_all", listed=0),
                pin(13, "ENODEV", f"{AF} smc_connect"),
                pin(18, None, f"{CORE} __smc_lgr_free", dmb_cnt=0, lgr_cnt=0)]),
    rules=("smc_smcd_terminate_all", "smc_conn_kill", "device removal"))

_C += cases(
    "killed-socket-calls", "a killed socket: close succeeds once, abort likewise",
    "The application still holds a killed socket: close(2) succeeds (__smc_release, the "
    "connection is freed) and the handle is gone (EBADF); conn_abort on another killed "
    "endpoint sends nothing more and also ends the handle (ECONNABORTED).",
    f"{AF} __smc_release",
    lambda m: ([pair(m, "p"), pair(m, "q"), lgr_of(b(), "lb"),
                step("lgr_terminate", lgr=lgr("lb")), close(b()), recv(b()),
                step("conn_abort", conn=a("q")), send(a("q"), 1), dmb(b()), dev(m)],
               [pin(4, None, f"{AF} __smc_release"),
                pin(5, "EBADF", "close(2): the descriptor is gone")]),
    rules=("__smc_release", "killed socket"))

CASES: tuple[Case, ...] = tuple(_C)
