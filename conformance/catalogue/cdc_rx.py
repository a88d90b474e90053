"""Catalogue area ``datapath`` (topic ``cdc-rx``): CDCs written by a hostile or buggy peer.

Capability ``cdc-inject`` (protocol 3). The peer shares the memory: it can write any 32 bytes
into our DMB header and signal us. Each case brings a pair into a known state, writes a CDC
header into one endpoint's DMB (``cdc_inject``) and compares what the receiver does: accepted, or
refused by which named check (:mod:`smcd_check.spec.cdc_rx`), and what its socket and its peer
see afterwards (the receiver aborts: its calls fail with EPROTO, the peer gets
``peer_conn_abort``). Linux 6.12.118 checks nothing here (``smcd_cdc_rx_tsklet`` ->
``smcd_cdc_msg_to_host`` copies the cursors, ``smc_cdc_msg_recv_action`` adds the differences
to ``bytes_to_rcv`` and ``peer_rmbe_space``): these cases state what a receiver must do, and each
description says what the kernel's code does with the field instead.

Boundaries: a cursor count at the ring's length (just outside) and at length - 1 (just inside,
as a repeat of the receiver's own view), at 2**32 - 1; a cursor exactly one ring behind (still
"backwards") and one ring and a byte behind (read as far ahead: "overrun"); a consumer cursor one
byte past what is in flight. Only CDCs that change nothing are accepted here: one that passes
every check and moves a cursor would announce bytes the spec never saw written.
"""

from __future__ import annotations

import struct

from smcd_check.conformance.runner.run import Area, Case, Pin, Step, step
from smcd_check.conformance.targets.adapter import Ref

D = 16384
RING = D - 32
CDC_SRC = "net/smc/smc_cdc.c smcd_cdc_rx_tsklet / smc_cdc_msg_recv_action"
CHECK_SRC = "spec/cdc_rx.py check_cdc"
A, B = Ref("p", "a"), Ref("p", "b")
MODES = ("copy", "merged")


def cdc(prod: tuple[int, int] = (0, 0), cons: tuple[int, int] = (0, 0), *, pflags: int = 0,
        cflags: int = 0, ctype: int = 0xFE) -> str:
    """A ``struct smcd_cdc_msg`` (x86_64 host order) as hex."""
    return struct.pack("<B7xHIBBHIBB8x", ctype, prod[0], prod[1], 0, 0, cons[0], cons[1],
                       pflags, cflags).hex()


def payload(n: int, seed: int = 0) -> str:
    return bytes((seed * 131 + i * 7 + (i >> 8)) & 0xFF for i in range(n)).hex()


def open_pair(mode: str) -> Step:
    return step("conn_open", mode=mode, dmb_size=D, sndbuf_size=D if mode == "copy" else 0,
                bind="p")


def send(conn: Ref, n: int, seed: int = 0) -> Step:
    return step("conn_send", conn=conn, data=payload(n, seed))


def recv(conn: Ref, n: int = 100000) -> Step:
    return step("conn_recv", conn=conn, max=n)


def inject(conn: Ref, data: str, *, strict: bool = False) -> Step:
    return step("cdc_inject", conn=conn, data=data, strict=strict)


def refused(index: int, check: str) -> Pin:
    return Pin(index=index, error=None, value=(("accepted", False), ("check", check)),
               source=CHECK_SRC)


def accepted(index: int) -> Pin:
    return Pin(index=index, error=None, value=(("accepted", True), ("check", None)),
               source=CHECK_SRC)


def after_refusal(victim: Ref, peer: Ref) -> list[Step]:
    """What the refusing endpoint and its peer see afterwards."""
    return [send(victim, 10), recv(victim), step("conn_shutdown", conn=victim), recv(peer),
            send(peer, 10), step("conn_cursors", conn=peer), step("conn_close", conn=victim),
            recv(victim)]


def cases(cid: str, title: str, description: str, steps: list[Step], pins: list[Pin],
          rules: tuple[str, ...] = ()) -> list[Case]:
    out = []
    for mode in MODES:
        out.append(Case(id=f"datapath.{mode}.cdc-rx.{cid}", area=Area.DATAPATH,
                        title=f"{title} ({mode} mode)", description=description,
                        source=CDC_SRC, steps=(open_pair(mode), *steps),
                        pins=tuple(pins), rules=rules or ("cdc rx check",)))
    return out


_C: list[Case] = []

_C += cases("noop-fresh", "a CDC that repeats the receiver's view is accepted",
            "The header the peer wrote last, written again (cursors 0, no flags): every check "
            "passes and nothing changes; the connection carries data as before.",
            [inject(B, cdc()), send(A, 100), recv(B), step("conn_cursors", conn=B)],
            [accepted(1)], rules=("cdc rx check", "no-op"))
_C += cases("noop-count-last", "a producer count of length - 1 is inside the ring",
            "After 16351 bytes the receiver's producer cursor is (0, 16351), the last position "
            "inside the ring: repeating it passes prod-count.",
            [send(A, RING - 1), inject(B, cdc((0, RING - 1))), recv(B), send(A, 5, 1), recv(B)],
            [accepted(2)], rules=("prod-count",))
_C += cases("prod-count-length", "a producer count equal to the ring's length is refused",
            "prod.count = 16352 is one past the last ring position (prod-count). 6.12.118 adds "
            "smc_curs_diff(len, old, new) = 16352 to bytes_to_rcv and its next recvmsg copies "
            "from wherever the ring arithmetic leads. The receiver aborts: its own calls fail "
            "with EPROTO, the peer reads EOF and gets EPIPE.",
            [inject(B, cdc((0, RING))), *after_refusal(B, A)],
            [refused(1, "prod-count")], rules=("prod-count", "abort on refusal"))
_C += cases("prod-count-max", "a producer count of 2**32 - 1 is refused",
            "The largest u32 count (prod-count).",
            [send(A, 300), inject(B, cdc((0, 0xFFFF_FFFF))), recv(B)],
            [refused(2, "prod-count")], rules=("prod-count",))
_C += cases("cons-count-length", "a consumer count equal to the peer ring's length is refused",
            "cons.count = 16352 into the writer's DMB (cons-count); 6.12.118 would add the "
            "difference to peer_rmbe_space and let the writer overwrite unread data.",
            [send(A, 300), inject(A, cdc(cons=(0, RING))), *after_refusal(A, B)],
            [refused(2, "cons-count")], rules=("cons-count",))
_C += cases("prod-backwards-byte", "a producer cursor one byte behind is refused",
            "1000 bytes announced, then prod (0, 999): prod-backwards. 6.12.118: "
            "smc_curs_diff(same wrap, new < old) is 0, so the step back is silently kept and "
            "the next genuine CDC announces a byte twice.",
            [send(A, 1000), inject(B, cdc((0, 999))), recv(B)],
            [refused(2, "prod-backwards")], rules=("prod-backwards",))
_C += cases("prod-backwards-ring", "a producer cursor exactly one ring behind is backwards",
            "prod (0xffff, 1000) after (0, 1000): one ring behind in the cursor space of 2**16 "
            "laps, the farthest that still reads as a step back (prod-backwards). 6.12.118: a "
            "different wrap makes smc_curs_diff a whole lap of new data.",
            [send(A, 1000), inject(B, cdc((0xFFFF, 1000)))],
            [refused(2, "prod-backwards")], rules=("prod-backwards", "boundary"))
_C += cases("prod-ring-and-byte-behind", "one ring and a byte behind reads as far ahead",
            "prod (0xffff, 999) after (0, 1000): one byte past the backwards window, so it is "
            "a jump forward of almost 2**16 rings: more than the free space (prod-overrun).",
            [send(A, 1000), inject(B, cdc((0xFFFF, 999)))],
            [refused(2, "prod-overrun")], rules=("prod-overrun", "boundary"))
_C += cases("prod-overrun-byte", "a producer cursor one byte past the free space is refused",
            "1000 unread bytes: 15352 are free; prod (1, 1) announces 15353 new bytes "
            "(prod-overrun). 6.12.118 makes bytes_to_rcv larger than the ring.",
            [send(A, 1000), inject(B, cdc((1, 1)))],
            [refused(2, "prod-overrun")], rules=("prod-overrun", "boundary"))
_C += cases("prod-lap-ahead", "a producer cursor a whole lap ahead with unread data is refused",
            "prod (1, 1000) after (0, 1000) with 1000 bytes unread: a full ring more "
            "(prod-overrun); the wrap-blind reading would see no change at all.",
            [send(A, 1000), inject(B, cdc((1, 1000)))],
            [refused(2, "prod-overrun")], rules=("prod-overrun", "wrap"))
_C += cases("cons-backwards-byte", "a consumer cursor one byte behind is refused",
            "The reader consumed a full ring (its window update moved the writer's view to "
            "(1, 0)); cons (0, 16351) steps back one byte (cons-backwards). 6.12.118: a "
            "different wrap reads as a whole ring consumed: peer_rmbe_space grows past the "
            "ring.",
            [send(A, RING), recv(B), inject(A, cdc(cons=(0, RING - 1)))],
            [refused(3, "cons-backwards")], rules=("cons-backwards",))
_C += cases("cons-overrun-byte", "consuming one byte more than is in flight is refused",
            "1000 bytes in flight, cons (0, 1001) (cons-overrun): the writer would reuse ring "
            "space the reader has not read.",
            [send(A, 1000), inject(A, cdc(cons=(0, 1001))), *after_refusal(A, B)],
            [refused(2, "cons-overrun")], rules=("cons-overrun", "no overwrite"))
_C += cases("cons-overrun-fresh", "consuming anything with nothing in flight is refused",
            "cons (0, 1) on a fresh pair (cons-overrun).",
            [inject(A, cdc(cons=(0, 1)))], [refused(1, "cons-overrun")],
            rules=("cons-overrun",))
_C += cases("flags-cleared", "a CDC that takes back a done-writing is refused",
            "The writer shut down (peer_done_writing, 0x80); a CDC without it would reopen the "
            "stream: flags-cleared. 6.12.118 overwrites local_rx_ctrl.conn_state_flags.",
            [send(A, 50), step("conn_shutdown", conn=A), recv(B),
             inject(B, cdc((0, 50), cflags=0)), recv(B)],
            [refused(4, "flags-cleared")], rules=("flags-cleared", "sticky flags"))
_C += cases("flags-repeated", "a CDC that repeats a done-writing is accepted",
            "The same sticky flag again changes nothing.",
            [send(A, 50), step("conn_shutdown", conn=A), recv(B),
             inject(B, cdc((0, 50), cflags=0x80)), recv(B), send(B, 20), recv(A)],
            [accepted(4)], rules=("sticky flags", "no-op"))
_C += cases("flags-closed-repeated", "a CDC that repeats a received close is accepted",
            "The writer closed with nothing unread on its side: smc_close_final sends "
            "peer_conn_closed (0x40), not an abort. The same header again changes nothing.",
            [send(A, 50), recv(B), step("conn_close", conn=A), recv(B),
             inject(B, cdc((0, 50), cflags=0x40)), recv(B), step("conn_state", conn=B)],
            [accepted(5)], rules=("sticky flags", "no-op"))
_C += cases("flags-abort-repeated", "a CDC that repeats a received abort is accepted",
            "The writer aborted (smc_conn_kill: peer_conn_abort, 0x20) after 50 bytes; the "
            "receiver's view is prod (0, 50) with the abort flag, and the same header again "
            "changes nothing: the announced bytes still read, then EOF.",
            [send(A, 50), step("conn_abort", conn=A), inject(B, cdc((0, 50), cflags=0x20)),
             recv(B), recv(B), step("conn_state", conn=B)],
            [accepted(3)], rules=("sticky flags", "no-op"))
_C += cases("flags-abort-to-closed", "a CDC that turns a received abort into a close is refused",
            "After peer_conn_abort (0x20) a header with only peer_conn_closed (0x40) drops a "
            "sticky flag: flags-cleared (smc_close_abort sets the abort flag for good).",
            [step("conn_abort", conn=A), inject(B, cdc(cflags=0x40)), recv(B),
             step("conn_state", conn=B)],
            [refused(2, "flags-cleared")], rules=("flags-cleared", "sticky flags"))
_C += cases("flags-abort-unread-repeated", "a close with unread data arrives as an abort",
            "The reader closes with 50 bytes unread: smc_close_final sends peer_conn_abort "
            "instead of peer_conn_closed. Repeating the writer's view (nothing consumed, the "
            "abort flag) is accepted.",
            [send(A, 50), step("conn_close", conn=B), inject(A, cdc(cflags=0x20)),
             step("conn_state", conn=A)],
            [accepted(3)], rules=("sticky flags", "no-op"))
_C += cases("flags-reserved-state", "a reserved connection-state bit is refused",
            "conn_state_flags 0x01 (one of the five reserved bits): flags-reserved.",
            [inject(B, cdc(cflags=0x01))], [refused(1, "flags-reserved")],
            rules=("flags-reserved",))
_C += cases("flags-failover", "failover_validation (SMC-R only) on SMC-D is refused",
            "prod_flags 0x08: flags-reserved.",
            [inject(B, cdc(pflags=0x08))], [refused(1, "flags-reserved")],
            rules=("flags-reserved",))
_C += cases("type-first", "the first failing check names the refusal",
            "Type 0x00 and a count past the ring: the type check comes first.",
            [inject(B, cdc((0, 0xFFFF_FFFF), ctype=0x00))], [refused(1, "type")],
            rules=("type", "check order"))
_C += cases("count-before-cursor", "a count past the ring is named before any cursor check",
            "prod (0xffff, 16352): past the ring and behind: prod-count comes first.",
            [send(A, 100), inject(B, cdc((0xFFFF, RING)))], [refused(2, "prod-count")],
            rules=("check order",))
_C += cases("after-refusal", "a refusing endpoint's DMB takes no more CDCs",
            "After the refusal the receiver is unset from smcd->conn[] (smc_conn_kill): the "
            "next write is copied but signals nobody (move_data -EPIPE).",
            [inject(B, cdc(ctype=0x01)), inject(B, cdc(), strict=True)],
            [refused(1, "type"), Pin(index=2, error="EPIPE",
                                     source="net/smc/smc_loopback.c smc_lo_move_data")],
            rules=("abort on refusal",))

CASES: tuple[Case, ...] = tuple(_C)
