"""Catalogue cases of urgent data (MSG_OOB, SIOCATMARK, SO_OOBINLINE) and both directions.

Each case opens a pair with ``conn_open_urg`` (capability ``urgent``; merged mode, 16 KiB DMBs:
data ring 16352 bytes) whose cursors may start where ``start`` bytes of traffic each way would
have left them, so the ring wrap and the 16-bit wrap counter's overflow are reached without
sending a gigabyte. Expected observations come from :mod:`smcd_check.spec.duplex` through
:mod:`smcd_check.conformance.targets.spec_urgent`; the case only says what to do. Kernel
sources: net/smc/smc_tx.c (``smc_tx_sendmsg``, ``smc_tx_rdma_writes``), net/smc/smc_cdc.c
(``smc_cdc_msg_recv_action``, ``smc_cdc_handle_urg_data_arrival``), net/smc/smc_rx.c
(``smc_rx_recvmsg``, ``smc_rx_recv_urg``, ``smc_rx_update_consumer``,
``smc_rx_recvmsg_data_available``), net/smc/af_smc.c (``smc_ioctl`` SIOCATMARK).

Steps whose refusal is a kernel errno written in the source (recv(MSG_OOB) -> EINVAL in
``smc_rx_recv_urg``) are ``strict``: another errno is a FAIL, not NON-STRICT.
"""

from __future__ import annotations

from smcd_check.conformance.catalogue.datapath import payload
from smcd_check.conformance.runner.run import Area, Case, Pin, Step, step
from smcd_check.conformance.targets.adapter import Ref

D = 16384
RING = D - 32
#: the cursor period of a 16 KiB DMB: 2^16 wraps of the ring
PERIOD = RING << 16
A, B = Ref("p", "a"), Ref("p", "b")
TX, RX, CDC, IOCTL = ("net/smc/smc_tx.c", "net/smc/smc_rx.c", "net/smc/smc_cdc.c",
                      "net/smc/af_smc.c")
URG = f"{RX} smc_rx_recv_urg"


def open_urg(start: int = 0) -> Step:
    return step("conn_open_urg", mode="merged", dmb_size=D, sndbuf_size=0, start=start,
                bind="p")


def send(conn: Ref, n: int, seed: int = 0) -> Step:
    return step("conn_send", conn=conn, data=payload(n, seed))


def oob(conn: Ref, n: int, seed: int = 50) -> Step:
    return step("conn_send_oob", conn=conn, data=payload(n, seed))


def recv(conn: Ref, n: int) -> Step:
    return step("conn_recv", conn=conn, max=n)


def recv_oob(conn: Ref, *, strict: bool = False) -> Step:
    return step("conn_recv_oob", conn=conn, max=1, strict=strict)


def mark(conn: Ref) -> Step:
    return step("conn_atmark", conn=conn)


def inline(conn: Ref, on: bool = True) -> Step:
    return step("conn_set_oobinline", conn=conn, on=on)


def curs(conn: Ref) -> Step:
    return step("conn_cursors", conn=conn)


def both() -> list[Step]:
    return [curs(A), curs(B)]


def einval(index: int) -> Pin:
    """The kernel's ``smc_rx_recv_urg`` returns -EINVAL at step ``index``."""
    return Pin(index=index, error="EINVAL", source=URG)


_CASES: list[Case] = []


def case(topic: str, name: str, title: str, description: str, source: str, body: list[Step],
         *, start: int = 0, pins: tuple[Pin, ...] = ()) -> None:
    _CASES.append(Case(
        id=f"{Area.DATAPATH.value}.merged.{topic}.{name}",
        area=Area.DATAPATH,
        title=title,
        description=description,
        source=source,
        steps=(open_urg(start), *body),
        pins=pins,
        rules=("duplex",),
    ))


# --- urgent byte out of band and inline --------------------------------------------------------
case("urgent", "oob-read", "the urgent byte is read out of band, the rest in band",
     "send 5 bytes, then 3 with MSG_OOB: the last is urgent; the CDC carries urg_data_present, "
     "the receiver copies the byte to urg_rx_byte and does not count it in bytes_to_rcv; "
     "recv(MSG_OOB) returns it, a plain recv returns the 7 others and skips it.",
     f"{CDC} smc_cdc_handle_urg_data_arrival; {URG}",
     [send(A, 5), oob(A, 3), *both(), recv_oob(B), recv(B, 100), *both(), recv(B, 100)])
case("urgent", "inline", "SO_OOBINLINE: the urgent byte stays in band, a read stops before it",
     "with SO_OOBINLINE the urgent byte is counted in bytes_to_rcv; a read stops one byte short "
     "of it (\"always stop at urgent Byte\"), SIOCATMARK is then true, the next read returns "
     "it in band, and recv(MSG_OOB) is EINVAL.",
     f"{RX} smc_rx_recvmsg; {URG}; {IOCTL} smc_ioctl",
     [inline(B), send(A, 4), oob(A, 2), curs(B), recv(B, 100), mark(B), recv_oob(B, strict=True),
      recv(B, 100), mark(B), *both()],
     pins=(einval(7),))
case("urgent", "atmark", "SIOCATMARK before, at and after the mark",
     "SIOCATMARK is smc_curs_diff(cons, urg_curs) == 1. Without SO_OOBINLINE a read that "
     "reaches the mark skips the urgent byte at once (smc_rx_update_consumer: diff == 1), so "
     "after in-band reads it is false before and after the mark; it is true when an urgent "
     "byte arrives with cons right before it, until the next recv skips it.",
     f"{IOCTL} smc_ioctl; {RX} smc_rx_update_consumer",
     [send(A, 10), oob(A, 1), mark(B), recv(B, 4), mark(B), recv(B, 6), mark(B), recv_oob(B),
      mark(B), oob(A, 1, 9), mark(B), curs(B), recv(B, 10), mark(B), recv_oob(B), *both()])
case("urgent", "lone-byte", "a lone urgent byte: recv finds nothing, recv(MSG_OOB) gets it",
     "one byte sent with MSG_OOB and nothing else: bytes_to_rcv stays 0; a plain recv returns "
     "nothing but smc_rx_recvmsg_data_available skips the byte (smc_rx_update_cons(smc, 0)); "
     "the byte is still there for recv(MSG_OOB).",
     f"{RX} smc_rx_recvmsg_data_available; {URG}",
     [oob(A, 1), *both(), mark(B), recv(B, 10), *both(), mark(B), recv_oob(B), *both()])
case("urgent", "send-waits", "no send while an urgent byte is staged",
     "after send(MSG_OOB) urg_tx_pend holds sendmsg (smc_tx_wait) until the peer consumed "
     "everything: a non-blocking send returns 0; once the peer read past the urgent byte, "
     "the sender may send again.",
     f"{TX} smc_tx_sendmsg; {CDC} smc_cdc_msg_recv_action",
     [send(A, 3), oob(A, 2), send(A, 5, 1), curs(A), recv(B, 100), curs(A), send(A, 5, 1),
      recv(B, 100), *both()])

# --- recv(MSG_OOB) refusals (smc_rx_recv_urg: -EINVAL, never -EAGAIN) --------------------------
case("urgent", "oob-none", "recv(MSG_OOB) with no urgent data is EINVAL",
     "urg_state starts SMC_URG_READ (smc_rx_init): smc_rx_recv_urg returns -EINVAL, also when "
     "in-band data is waiting.",
     URG, [recv_oob(B, strict=True), send(A, 8), recv_oob(B, strict=True), recv(B, 8)],
     pins=(einval(1), einval(3)))
case("urgent", "oob-inline", "recv(MSG_OOB) with SO_OOBINLINE set is EINVAL",
     "SOCK_URGINLINE: smc_rx_recv_urg returns -EINVAL even with a valid urgent byte.",
     URG, [inline(B), oob(A, 3), recv_oob(B, strict=True), recv(B, 100), recv(B, 100)],
     pins=(einval(3),))
case("urgent", "oob-twice", "recv(MSG_OOB) twice: the second is EINVAL",
     "the first recv(MSG_OOB) sets urg_state = SMC_URG_READ; the second finds no valid byte.",
     URG, [send(A, 2), oob(A, 2), recv_oob(B), recv_oob(B, strict=True), recv(B, 100)],
     pins=(einval(4),))
case("urgent", "oob-inline-toggled", "SO_OOBINLINE set after the byte arrived",
     "the byte arrived out of band (not counted); SO_OOBINLINE set afterwards makes "
     "recv(MSG_OOB) EINVAL and changes how the in-band read treats the mark.",
     f"{URG}; {RX} smc_rx_update_consumer",
     [send(A, 3), oob(A, 2), inline(B), recv_oob(B, strict=True), recv(B, 100), mark(B),
      recv(B, 100), *both()],
     pins=(einval(4),))
case("urgent", "inline-set-after-skip", "SO_OOBINLINE set after a skip: an empty recv ends "
     "the urgent state",
     "a lone urgent byte is skipped by a recv that finds nothing (not inline: urg_state stays "
     "VALID, cons now at urg_curs); with SO_OOBINLINE set, the next recv that finds nothing runs "
     "smc_rx_update_cons(smc, 0), whose inline branch sets READ; recv(MSG_OOB) is then EINVAL "
     "also with the option cleared again.",
     f"{RX} smc_rx_recvmsg_data_available; {RX} smc_rx_update_consumer; {URG}",
     [oob(A, 1, 65), recv(B, 10), inline(B), recv(B, 10), inline(B, False),
      recv_oob(B, strict=True), mark(B), *both()],
     pins=(einval(6),))

# --- a new urgent byte replaces an unread one ---------------------------------------------------
case("urgent", "replace", "a second urgent byte replaces one never read out of band",
     "the reader reads in band past the first urgent byte without recv(MSG_OOB): the byte is "
     "skipped, urg_tx_pend clears at the sender, a second MSG_OOB send overwrites urg_curs and "
     "urg_rx_byte; recv(MSG_OOB) returns the second byte.",
     f"{CDC} smc_cdc_handle_urg_data_arrival; {URG}",
     [send(A, 4), oob(A, 1, 60), recv(B, 100), mark(B), oob(A, 3, 70), *both(), recv_oob(B),
      recv(B, 100), recv_oob(B, strict=True)],
     pins=(einval(10),))

# --- over the cursor boundaries ---------------------------------------------------------------
case("urgent", "wrap-last-slot", "the urgent byte in the last slot of the ring",
     "cursors start one byte before the ring's end: the urgent byte is written at offset "
     "RING-1 and prod wraps to (1, 0); urg_rx_byte is read from size - 1 (the byte before a "
     "cursor at count 0).",
     f"{CDC} smc_cdc_handle_urg_data_arrival", start=RING - 1,
     body=[oob(A, 1), *both(), mark(B), recv_oob(B), recv(B, 10), *both()])
case("urgent", "wrap-first-slot", "the urgent byte in the first slot after the wrap",
     "an urgent message of 3 bytes crossing the ring's end: the urgent byte is at offset 0 of "
     "the next lap; SIOCATMARK turns true once the 2 in-band bytes before it are read.",
     f"{CDC} smc_cdc_handle_urg_data_arrival; {IOCTL} smc_ioctl", start=RING - 2,
     body=[oob(A, 3), *both(), recv(B, 1), mark(B), recv(B, 1), mark(B), recv_oob(B),
           recv(B, 10), mark(B), *both()])
case("urgent", "wrap-counter", "an urgent byte at the 16-bit wrap counter's overflow",
     "cursors start two bytes before the end of the last lap (wrap 0xffff): the urgent "
     "message crosses into wrap 0; smc_curs_diff across the overflow still finds the mark.",
     f"{CDC} smc_cdc_handle_urg_data_arrival; {IOCTL} smc_ioctl", start=PERIOD - 2,
     body=[send(A, 1), oob(A, 3), *both(), recv(B, 2), mark(B), recv(B, 1), mark(B), recv_oob(B),
           recv(B, 10), mark(B), *both()])
case("urgent", "atmark-stale", "SIOCATMARK true with no urgent data ever sent",
     "urg_curs starts (0, 0) and SIOCATMARK does not look at urg_state: once cons is at "
     "(w, RING-1) with w != 0, smc_curs_diff(cons, urg_curs) = RING - (RING-1) + 0 = 1. Reached "
     "by traffic alone (two laps, no MSG_OOB).",
     f"{IOCTL} smc_ioctl", start=0,
     body=[send(A, RING), recv(B, RING), send(A, RING - 1, 1), recv(B, RING), mark(B),
           curs(B), recv_oob(B, strict=True), send(A, 1, 2), recv(B, 1), mark(B)],
     pins=(Pin(index=5, error=None, value=(("atmark", True),),
               source=f"{IOCTL} smc_ioctl SIOCATMARK"), einval(7)))

case("urgent", "phantom-skip", "a stale urgent state skips a data byte after the overflow",
     "the urgent byte sits in the last slot of lap 0xfffe (urg_curs (0xffff, 0)) and is "
     "skipped in band, never read out of band: urg_state stays VALID. A read of exactly one "
     "full ring puts cons at (0, 0), which smc_curs_comp across the overflow puts before "
     "urg_curs; a later read ending at (0, RING-1) gives comp == 1 and smc_rx_update_consumer "
     "skips a byte that is not urgent: cons passes the producer cursor's last byte unread "
     "(cons == peer_prod, bytes_to_rcv still 1). Reproduced on Linux 6.12.118 by `smcd-check "
     "kernel run urg-phantom`.",
     f"{RX} smc_rx_update_consumer; net/smc/smc_cdc.h smc_curs_comp", start=PERIOD - RING - 1,
     body=[oob(A, 1), recv(B, 10), mark(B), send(A, RING, 1), recv(B, RING), *both(),
           send(A, RING, 2), recv(B, RING - 1), *both()])

# --- both directions at once -------------------------------------------------------------------
case("duplex", "both-ways", "data both ways at once: each CDC carries both cursors",
     "a and b send before either reads; every CDC carries prod of its data and cons of what it "
     "read, so the window of each direction is updated by the other's data CDCs too.",
     f"{TX} smc_tx_rdma_writes; {CDC} smc_cdc_msg_recv_action",
     [send(A, 100), send(B, 200, 3), *both(), recv(B, 60), recv(A, 150), send(A, 30, 4),
      send(B, 40, 5), *both(), recv(A, 1000), recv(B, 1000), *both()])
case("duplex", "fill-both", "both rings filled at once, then drained",
     "both ends fill the peer's ring (sndbuf = the peer's DMB), then both read everything; the "
     "window updates (smc_tx_consumer_update) reopen both directions.",
     f"{TX} smc_tx_sendmsg; {RX} smc_rx_update_consumer",
     [send(A, RING + 10), send(B, RING, 1), *both(), recv(B, RING), recv(A, 5000), *both(),
      send(A, 10, 2), send(B, 100, 3), recv(A, RING), recv(B, RING), *both()])
case("duplex", "urgent-both-ways", "urgent bytes both ways at once",
     "each end sends data and an urgent byte; each reads its peer's urgent byte out of band "
     "and the data in band; the two urgent states are independent.",
     f"{URG}; {CDC} smc_cdc_handle_urg_data_arrival",
     [send(A, 3), send(B, 4, 1), oob(A, 1, 7), oob(B, 2, 8), mark(A), mark(B), recv_oob(A),
      recv(B, 2), mark(B), recv_oob(B), recv(A, 100), recv(B, 100), *both()])
case("duplex", "urgent-wrap-both", "urgent bytes both ways at the wrap counter's overflow",
     "both directions start just before the 16-bit wrap overflow; each sends an urgent "
     "message across it, one end inline, the other out of band.",
     f"{URG}; {IOCTL} smc_ioctl", start=PERIOD - 1,
     body=[inline(A), oob(A, 2, 3), oob(B, 2, 4), *both(), recv(A, 10), mark(A), recv(A, 10),
           recv_oob(B), recv(B, 10), mark(B), *both()])

CASES: tuple[Case, ...] = tuple(_CASES)
