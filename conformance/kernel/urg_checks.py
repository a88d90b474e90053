"""Judge the urgent-data and full-duplex scenarios (``kernel run urg-basic duplex urg-findings
urg-wrap urg-phantom``): claims and kernel faults.

Theory of operation
-------------------
The guest harness (``urg.c``) reports raw facts: each step's return value, errno and bytes, the
values of ``SIOCATMARK`` and ``SIOCINQ``, ``poll()`` events, and an smc_diag view of the
connection whenever a bounded step stalled. The spec does not model urgent data yet, so each
check here writes down the expected behaviour itself, with the kernel function it comes from
(Linux 6.12.118, net/smc), as :mod:`.peer_checks` does. Two kinds of
:class:`~.checks.Check` come out:

* ``claim`` - the kernel behaves as its own rule says and as the socket API promises (``ok``),
  or not (a disagreement: this reading of the kernel is wrong);
* ``finding`` - a property the kernel breaks, stated in words (``ok`` is False when the fault
  shows); its reproducer is ``smcd-check kernel run SCENARIO``. In the scenarios that expect
  every step to end (``urg-basic``, ``duplex``), "no step stalls" is such a property too: a stall
  there is a finding with the step and the cursors at that moment.

Bounded steps: every blocking call of these scenarios has a timeout (SO_SNDTIMEO/SO_RCVTIMEO,
poll), so a wait that never ends shows up as a step with ``stall`` and the cursors at that
moment (``diag_at_stall``), never as a hung guest.

Timing: a few kernel behaviours depend on the order of two legitimate events; the checks accept
exactly those orders and say why (search for "legitimate order").

Kernel facts used: smc_diag's producer flags byte is ``struct smc_cdc_producer_flags`` as laid
out on little-endian x86-64: 0x80 ``write_blocked``, 0x40 ``urg_data_pending``, 0x20
``urg_data_present`` (net/smc/smc.h); ``POLLPRI`` is 0x2, ``POLLIN`` 0x1; EINVAL 22, EAGAIN 11.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import replace
from typing import Any

from smcd_check.conformance.kernel.checks import URG_SCENARIO_NAMES, Check

URG_DATA_PENDING, URG_DATA_PRESENT = 0x40, 0x20
POLLIN, POLLPRI = 0x1, 0x2
EAGAIN, EINVAL = 11, 22
X = "58"  # the urgent byte of the short cases ("X")

__all__ = ["URG_SCENARIO_NAMES", "reproducer", "urg_checks"]


def reproducer(name: str) -> str:
    """The one command that reproduces a scenario's checks."""
    return f"smcd-check kernel run {name}"


def _cases(result: Mapping[str, Any]) -> dict[str, Mapping[str, Any]]:
    return {str(c.get("case")): c for c in result.get("cases", []) if isinstance(c, Mapping)}


class _Steps:
    """The steps of one case by name (a missing step reads as rc None)."""

    def __init__(self, case: Mapping[str, Any]) -> None:
        self.case = case
        self.by_name = {str(s.get("step")): s for s in case.get("steps", [])}

    def get(self, name: str) -> Mapping[str, Any]:
        return self.by_name.get(name, {})

    def rc(self, name: str) -> Any:
        return self.get(name).get("rc")

    def data(self, name: str) -> str:
        return str(self.get(name).get("data", ""))

    def errno(self, name: str) -> Any:
        return self.get(name).get("errno")

    def stalled(self, name: str) -> bool:
        return bool(self.get(name).get("stall"))

    def brief(self, *names: str) -> dict[str, Any]:
        return {n: {k: v for k, v in self.get(n).items() if k not in ("step", "diag_at_stall")}
                for n in names}


def _cursors(view: Mapping[str, Any] | None) -> list[dict[str, Any]]:
    """The cursors and flags of each end of a connection in one smc_diag view."""
    out = []
    for sock in (view or {}).get("socks", []):
        ci = sock.get("conninfo")
        if ci:
            out.append({"sport": sock.get("sport"), "dport": sock.get("dport"),
                        **{k: ci[k] for k in ("rx_prod", "rx_cons", "tx_prod", "tx_cons",
                                              "tx_prep", "tx_sent", "tx_fin", "rx_prod_flags",
                                              "tx_prod_flags") if k in ci}})
    return out


def _stall_evidence(steps: _Steps, name: str) -> dict[str, Any]:
    st = steps.get(name)
    return {"stalled_step": name, "waited_ms": st.get("ms"),
            "cursors_at_stall": _cursors(st.get("diag_at_stall"))}


def _missing(name: str, case: str) -> Check:
    return Check(kind="claim", scenario=name, subject=f"case {case} ran", ok=False,
                 detail=f"the harness reported no result for case {case}")


# ------------------------------------------------------------------------------ urg-basic

def _oob_basic(name: str, c: Mapping[str, Any]) -> list[Check]:
    s = _Steps(c)
    rev = int(s.rc("s poll") or 0) and int(s.get("s poll").get("revents", 0))
    out = [
        Check(kind="claim", scenario=name,
              subject="out of band: the urgent byte raises POLLPRI and is not counted in band",
              ok=bool(rev & POLLPRI) and s.rc("s SIOCINQ") == 3,
              detail=f"poll revents {rev:#x}, SIOCINQ {s.rc('s SIOCINQ')} after 'abc' + urgent "
                     "'X' (smc_cdc_handle_urg_data_arrival: diff_prod-- without SOCK_URGINLINE; "
                     "smc_poll: EPOLLPRI while urg_state is SMC_URG_VALID)",
              evidence=s.brief("s poll", "s SIOCINQ")),
        Check(kind="claim", scenario=name,
              subject="out of band: MSG_PEEK returns the urgent byte, the in-band data lacks it, "
                      "recv(MSG_OOB) returns it once",
              ok=(s.data("s recv oob peek") == X and s.data("s recv") == "616263"
                  and s.data("s recv oob") == X and s.errno("s recv oob again") == EINVAL),
              detail="smc_rx_recv_urg: the byte is urg_rx_byte, MSG_PEEK keeps SMC_URG_VALID, "
                     "a read sets SMC_URG_READ and a second one is EINVAL; the reader gets "
                     f"{s.data('s recv') or '-'} in band",
              evidence=s.brief("s recv oob peek", "s recv", "s recv oob", "s recv oob again")),
        Check(kind="claim", scenario=name,
              subject="out of band: the consumer cursor skips the urgent byte as soon as the "
                      "reader reaches it, so SIOCATMARK reads 0 at the mark (TCP reads 1)",
              ok=s.rc("s SIOCATMARK before read") == 0 and s.rc("s SIOCATMARK after read") == 0,
              detail="smc_rx_update_consumer: comp(cons, urg_curs) == 1 -> cons += 1 at once; "
                     "SIOCATMARK (smc_ioctl) is diff(cons, urg_curs) == 1; read "
                     f"{s.rc('s SIOCATMARK before read')} before and "
                     f"{s.rc('s SIOCATMARK after read')} after reading 'abc'",
              evidence=s.brief("s SIOCATMARK before read", "s SIOCATMARK after read")),
        Check(kind="claim", scenario=name,
              subject="the writer is released once the reader consumed the urgent byte",
              ok=s.rc("c send def") == 3 and s.data("s recv def") == "646566",
              detail="smc_cdc_msg_recv_action clears urg_tx_pend when the peer's consumer "
                     "cursor makes peer_rmbe_space == peer_rmbe_size; send 'def' returned "
                     f"{s.rc('c send def')} after {s.get('c send def').get('ms')} ms",
              evidence=s.brief("c send def", "s recv def")),
    ]
    return out


def _oob_basic_tcp(name: str, c: Mapping[str, Any]) -> list[Check]:
    s = _Steps(c)
    return [Check(
        kind="claim", scenario=name,
        subject="for comparison, plain TCP on lo: the read stops at the mark and SIOCATMARK "
                "reads 1 there",
        ok=(s.data("s recv") == "616263" and s.rc("s SIOCATMARK before read") == 0
            and s.rc("s SIOCATMARK after read") == 1 and s.data("s recv oob") == X),
        detail=f"TCP: SIOCATMARK {s.rc('s SIOCATMARK before read')} before and "
               f"{s.rc('s SIOCATMARK after read')} after reading {s.data('s recv') or '-'}, "
               f"then recv(MSG_OOB) {s.data('s recv oob') or '-'} (tcp_ioctl: urg_data and "
               "urg_seq == copied_seq); case oob-basic shows SMC-D's 0",
        evidence=s.brief("s SIOCATMARK before read", "s recv", "s SIOCATMARK after read",
                         "s recv oob"))]


def _oob_inline(name: str, c: Mapping[str, Any]) -> list[Check]:
    s = _Steps(c)
    return [
        Check(kind="claim", scenario=name,
              subject="SO_OOBINLINE: the urgent byte counts in band and recv(MSG_OOB) is EINVAL",
              ok=s.rc("s SO_OOBINLINE") == 0 and s.rc("s SIOCINQ") == 4
              and s.errno("s recv oob") == EINVAL,
              detail=f"SIOCINQ {s.rc('s SIOCINQ')}, recv(MSG_OOB) errno "
                     f"{s.errno('s recv oob')} (smc_cdc_handle_urg_data_arrival keeps diff_prod "
                     "with SOCK_URGINLINE; smc_rx_recv_urg refuses)",
              evidence=s.brief("s SO_OOBINLINE", "s SIOCINQ", "s recv oob")),
        Check(kind="claim", scenario=name,
              subject="SO_OOBINLINE: a read stops before the urgent byte, SIOCATMARK reads 1 "
                      "there, then the urgent byte is read in band",
              ok=(s.data("s recv 1") == "616263" and s.rc("s SIOCATMARK before read") == 0
                  and s.rc("s SIOCATMARK after read") == 1 and s.data("s recv 2") == X
                  and s.rc("s SIOCATMARK after urgent byte") == 0),
              detail="smc_rx_recvmsg: 'always stop at urgent Byte' (readable-- while "
                     "SMC_URG_VALID); SIOCATMARK "
                     f"{s.rc('s SIOCATMARK before read')}/{s.rc('s SIOCATMARK after read')}/"
                     f"{s.rc('s SIOCATMARK after urgent byte')}, reads "
                     f"{s.data('s recv 1')} then {s.data('s recv 2')}",
              evidence=s.brief("s recv 1", "s SIOCATMARK after read", "s recv 2")),
        Check(kind="claim", scenario=name,
              subject="SO_OOBINLINE: reading the urgent byte releases the writer",
              ok=s.rc("c send def") == 3 and s.data("s recv def") == "646566",
              detail="smc_rx_update_consumer: comp == 0 forces the consumer update; "
                     f"send 'def' returned {s.rc('c send def')}",
              evidence=s.brief("c send def", "s recv def")),
    ]


def _plain_first(name: str, c: Mapping[str, Any]) -> list[Check]:
    s = _Steps(c)
    return [Check(
        kind="claim", scenario=name,
        subject="at the mark, a plain recv() first lets the kernel skip the urgent byte; then "
                "recv(MSG_OOB) returns it and the writer goes on",
        ok=(s.errno("s recv plain") == EAGAIN and s.data("s recv oob") == X
            and s.rc("c send def") == 3 and s.data("s recv def") == "646566"),
        detail="smc_rx_recvmsg_data_available -> smc_rx_update_cons(0) while SMC_URG_VALID: "
               "comp == 1 -> skip + forced consumer update; plain recv errno "
               f"{s.errno('s recv plain')}, OOB {s.data('s recv oob') or '-'}, send 'def' "
               f"{s.rc('c send def')}",
        evidence=s.brief("s recv plain", "s recv oob", "c send def"))]


def _oob_shutdown(name: str, c: Mapping[str, Any]) -> list[Check]:
    s = _Steps(c)
    return [Check(
        kind="claim", scenario=name,
        subject="urgent data then shutdown(SHUT_WR): the reader gets the data, the urgent byte "
                "out of band, then end of file",
        ok=(s.rc("c shutdown SHUT_WR") == 0 and s.data("s recv") == "616263"
            and s.data("s recv oob") == X and s.rc("s recv eof") == 0),
        detail="smcd_tx_sndbuf_nonempty clears urg_data_pending/present once the CDC with the "
               "urgent byte is sent, so shutdown's CDC (peer_done_writing) carries no urgent "
               f"flag; reads: {s.data('s recv') or '-'}, OOB {s.data('s recv oob') or '-'}, "
               f"then rc {s.rc('s recv eof')}",
        evidence=s.brief("s recv", "s recv oob", "s recv eof"))]


# ------------------------------------------------------------------------------ urg-findings

def _oob_at_mark(name: str, c: Mapping[str, Any]) -> list[Check]:
    s = _Steps(c)
    reached = s.rc("s SIOCATMARK") == 1 and s.data("s recv oob") == X
    return [Check(
        kind="finding", scenario=name,
        subject="recv(MSG_OOB) at the mark wedges the writer: the urgent byte is never skipped",
        ok=not reached or (s.rc("c send def") == 3 and not s.stalled("c send def")),
        detail="the reader had read everything before the urgent byte when it arrived "
               f"(SIOCATMARK {s.rc('s SIOCATMARK')}) and read it with recv(MSG_OOB) "
               f"({s.data('s recv oob') or '-'}); the writer's next send() returned "
               f"{s.rc('c send def')} (errno {s.errno('c send def')}) after "
               f"{s.get('c send def').get('ms')} ms. smc_rx_recv_urg sets SMC_URG_READ, then "
               "calls smc_rx_update_consumer(cons, 0), which skips only while SMC_URG_VALID "
               "(or urg_rx_skip_pend, set only when diff > 1); the consumer cursor stays one "
               "byte short, so smc_cdc_msg_recv_action never sees peer_rmbe_space == "
               "peer_rmbe_size and urg_tx_pend is never cleared (smc_tx_wait waits for it). "
               "Workaround: a plain recv() first (case oob-at-mark-plain-first in urg-basic)",
        evidence=_stall_evidence(s, "c send def"))]


def _failed_send(name: str, c: Mapping[str, Any], duplex: bool) -> list[Check]:
    s = _Steps(c)
    diag = s.get("diag after failed send").get("diag")
    flags = [x.get("tx_prod_flags") for x in _cursors(diag)
             if int(x.get("tx_prod_flags") or 0) & URG_DATA_PENDING]
    arrived = s.data("s recv oob peek") == X and s.errno("c send Y oob nonblocking") == EAGAIN
    trigger = ("the other direction's consumer-cursor update (c read 10000 bytes from s)"
               if duplex else "shutdown(SHUT_WR)'s CDC")
    held = ""
    ev_more: dict[str, Any] = {}
    if duplex:
        held = (f"; nothing skips 'X' any more (SMC_URG_NOTYET), so the writer's next send() "
                f"returned {s.rc('c send def')} (errno {s.errno('c send def')}) after "
                f"{s.get('c send def').get('ms')} ms")
        ev_more = _stall_evidence(s, "c send def")
    return [Check(
        kind="finding", scenario=name,
        subject="a failed MSG_OOB send hides the peer's unread urgent byte"
                + (" (both directions)" if duplex else " behind shutdown"),
        ok=not arrived or s.data("s recv oob") == X,
        detail="'X' arrived as urgent data (peek: "
               f"{s.data('s recv oob peek') or '-'}); a non-blocking send(MSG_OOB) of 'Y' "
               f"failed (errno {s.errno('c send Y oob nonblocking')}: urg_tx_pend) but left "
               f"urg_data_pending set (client tx_prod_flags {flags}); {trigger} carried the "
               "flag with no new data, and the reader's recv(MSG_OOB) then returned errno "
               f"{s.errno('s recv oob')} instead of 'X'. smc_tx_sendmsg sets "
               "prod_flags.urg_data_pending before it waits and never clears it on failure; "
               "smc_cdc_msg_recv_action sets urg_state = SMC_URG_NOTYET on a CDC with "
               "urg_data_pending and diff_prod == 0, overwriting SMC_URG_VALID" + held,
        evidence={**s.brief("s recv oob peek", "c send Y oob nonblocking", "s poll",
                            "s recv oob"), "cursors_after_failed_send": _cursors(diag),
                  **ev_more})]


def _blocked_send(name: str, c: Mapping[str, Any]) -> list[Check]:
    s = _Steps(c)
    th = "c send Y oob (blocking, other thread)"
    arrived = (s.data("s recv oob peek") == X
               and s.rc("c urg_data_pending while the send waits") == 1)
    return [Check(
        kind="finding", scenario=name,
        subject="a send(MSG_OOB) waiting for the previous urgent byte's confirmation, with the "
                "other direction moving, deadlocks the connection",
        ok=not arrived or (s.data("s recv oob") == X and s.rc(th) == 1),
        detail="'X' arrived as urgent data (peek: "
               f"{s.data('s recv oob peek') or '-'}); a second thread's blocking "
               "send(MSG_OOB) of 'Y' waited for X's confirmation (urg_tx_pend) in smc_tx_wait, "
               "which releases the socket lock with urg_data_pending already set (seen in "
               "smc_diag: "
               f"{s.rc('c urg_data_pending while the send waits') == 1}); c then read "
               "10000 bytes from s, and its consumer-cursor update carried the flag with no new "
               "data: the reader's urgent byte became SMC_URG_NOTYET (poll revents "
               f"{s.get('s poll').get('revents')}), its plain recv() no longer skips it "
               f"(errno {s.errno('s recv plain')}), recv(MSG_OOB) returned errno "
               f"{s.errno('s recv oob')}, and the blocked send returned {s.rc(th)} (errno "
               f"{s.errno(th)}) after {s.get(th).get('ms')} ms (its SO_SNDTIMEO; without one "
               "it waits forever). smc_tx_sendmsg (the flag is set before smc_tx_wait), "
               "smc_cdc_msg_recv_action (NOTYET overwrites VALID), smc_rx_update_consumer "
               "(skips only while VALID). Seen at random in the duplex scenario before its "
               "writers waited for POLLOUT before each urgent byte",
        evidence={**s.brief("s recv oob peek", "s poll", "s recv plain", "s recv oob"),
                  **_stall_evidence(s, th)})]


def _atmark_no_urg(name: str, c: Mapping[str, Any]) -> list[Check]:
    s = _Steps(c)
    size = s.rc("s rmbe_size")
    marks = {int(k.rsplit(" ", 1)[1]): v.get("rc") for k, v in s.by_name.items()
             if k.startswith("s SIOCATMARK after ")}
    ones = sorted(n for n, v in marks.items() if v == 1)
    return [Check(
        kind="finding", scenario=name,
        subject="SIOCATMARK reads 1 on a connection that never had urgent data",
        ok=bool(marks) and not ones,
        detail=f"16 KiB DMB (ring {size} bytes), no MSG_OOB ever sent: SIOCATMARK after "
               f"reading n bytes: {dict(sorted(marks.items()))}; 1 at n = {ones} (consumer "
               "cursor at wrap >= 1, count len - 1). smc_ioctl answers smc_curs_diff(len, cons, "
               "urg_curs) == 1 without looking at urg_state, and urg_curs starts at (0, 0): "
               "smc_curs_diff of different wraps is len - cons.count + 0 = 1",
        evidence={"siocatmark_after_n_bytes": marks, "ring": size})]


def _oob_more(name: str, c: Mapping[str, Any]) -> list[Check]:
    s = _Steps(c)
    return [
        Check(kind="finding", scenario=name,
              subject="send(MSG_OOB | MSG_MORE) then send() waits forever",
              ok=s.rc("c send abc") == 3 and not s.stalled("c send abc"),
              detail="send(MSG_OOB|MSG_MORE) of 'X' returned "
                     f"{s.rc('c send X oob more')}; nothing reached the reader (SIOCINQ "
                     f"{s.rc('s SIOCINQ')}); the next send() returned {s.rc('c send abc')} "
                     f"(errno {s.errno('c send abc')}) after {s.get('c send abc').get('ms')} ms. "
                     "smc_tx_sendmsg sets urg_tx_pend and, with MSG_MORE, corks "
                     "(smc_tx_should_cork) instead of sending; the next sendmsg waits in "
                     "smc_tx_wait for urg_tx_pend to clear, which needs the peer to consume a "
                     "byte that was never sent (no timer flushes a cork in 6.12)",
              evidence=_stall_evidence(s, "c send abc")),
        Check(kind="claim", scenario=name,
              subject="TCP_NODELAY pushes the corked urgent byte and releases the writer",
              ok=(s.rc("c TCP_NODELAY") == 0 and s.data("s recv oob") == X
                  and s.rc("c send abc after push") == 3),
              detail="smc_setsockopt(TCP_NODELAY) -> smc_tx_pending sends the corked data with "
                     "urg_data_present; the reader's plain recv() skips it, recv(MSG_OOB) "
                     f"returns {s.data('s recv oob') or '-'}; send 'abc' then returned "
                     f"{s.rc('c send abc after push')}",
              evidence=s.brief("c TCP_NODELAY", "s recv plain", "s recv oob",
                               "c send abc after push")),
    ]


# ------------------------------------------------------------------------------ transfers

def _stall_view(result: Mapping[str, Any]) -> list[dict[str, Any]]:
    for v in result.get("snapshots", []):
        if isinstance(v, Mapping) and v.get("label") == "at-stall":
            return _cursors(v)
    return []


def _transfer_claims(name: str, result: Mapping[str, Any], t: Mapping[str, Any]) -> list[Check]:
    """Bytes once and in order; urgent bytes once, out of band or in band as asked."""
    d = str(t["dir"])
    n = int(t["marks"])
    outcome = str(t.get("outcome", ""))
    stalled = bool(t.get("writer_stall") or t.get("reader_stall"))
    inband_expected = int(t["total"]) - (0 if t["inline"] else n)
    out = [Check(
        kind="claim", scenario=name,
        subject=f"{d}: every byte arrives once and in order, {n} of them urgent",
        ok=(int(t["sent"]) == int(t["total"]) and int(t["inband"]) == inband_expected
            and int(t["mismatch_at"]) == -1 and not stalled and int(t["write_errno"]) == 0
            and int(t["read_errno"]) == 0),
        detail=f"sent {t['sent']}/{t['total']}, read {t['inband']} in band (expected "
               f"{inband_expected}), first mismatch {t['mismatch_at']}"
               + (f"; STALL: writer at '{t['writer_step']}', reader at '{t['reader_step']}'"
                  if stalled else ""),
        evidence={"cursors_at_stall": _stall_view(result)} if stalled else {})]
    if t["inline"]:
        # Legitimate order: SIOCATMARK is asked before each recv(); an urgent byte that arrives
        # between the two is read in band without a 1 before it ('i'). Every urgent byte must
        # be read in band at its place (mismatch_at covers that) and be 'A' or 'i'.
        bad = [i for i, o in enumerate(outcome) if o not in "Ai"]
        out.append(Check(
            kind="claim", scenario=name,
            subject=f"{d} (SO_OOBINLINE): every urgent byte is read in band at its place, "
                    "SIOCATMARK 1 right before it",
            ok=len(outcome) == n and not bad and int(t["mismatch_at"]) == -1,
            detail=f"{outcome.count('A')} of {n} with SIOCATMARK 1 before them, "
                   f"{outcome.count('i')} arrived between SIOCATMARK and recv() (a legitimate "
                   f"order); not read: {bad[:10]}"
                   + (f"; SIOCATMARK also read 1 away from any urgent byte "
                      f"{t['atmark_false']} time(s), first at stream index "
                      f"{t['first_atmark_false']} (see urg-findings atmark-no-urg)"
                      if int(t.get("atmark_false", 0)) else ""),
            evidence={"outcome": outcome}))
    else:
        # Legitimate order: the plain recv() that lets the kernel skip an urgent byte at the
        # mark releases the writer; if that same recv() already read the writer's next byte,
        # the reader is past the mark and the urgent byte is gone ('R'), as in TCP. Likewise
        # the writer may send its next urgent byte before the reader's recv(MSG_OOB): the new
        # one replaces the old ('S'), as TCP's urgent pointer does.
        bad = [i for i, o in enumerate(outcome) if o not in "GRS"]
        out.append(Check(
            kind="claim", scenario=name,
            subject=f"{d} (out of band): every urgent byte is read with recv(MSG_OOB) once, "
                    "never in band",
            ok=len(outcome) == n and not bad and int(t["oob_bad"]) == 0,
            detail=f"{outcome.count('G')} of {n} read out of band, {outcome.count('R')} passed "
                   f"and {outcome.count('S')} replaced by the next urgent byte before the OOB "
                   f"read (legitimate orders); wrong: {bad[:10]} "
                   f"({''.join(outcome[i] for i in bad[:10])}); smc_rx_recv_urg, "
                   "smc_rx_update_consumer",
            evidence={"outcome": outcome, "odd": t.get("odd", [])}))
    return out


def _no_stall_case(name: str, case: str, c: Mapping[str, Any]) -> Check:
    """A stall in a scenario that expects none is a kernel finding of its own."""
    s = _Steps(c)
    stalls = [n for n, st in s.by_name.items() if st.get("stall")]
    return Check(
        kind="finding", scenario=name, subject=f"no step stalls: case {case}",
        ok=not stalls,
        detail=("every blocking step ended within its bound" if not stalls else
                f"stalled: {'; '.join(stalls)} (a wait that would never end)"),
        evidence=_stall_evidence(s, stalls[0]) if stalls else {})


def _no_stall_transfer(name: str, result: Mapping[str, Any], t: Mapping[str, Any]) -> Check:
    stalled = bool(t.get("writer_stall") or t.get("reader_stall"))
    return Check(
        kind="finding", scenario=name, subject=f"no step stalls: {t['dir']}",
        ok=not stalled,
        detail=("every send() and poll() ended within its bound" if not stalled else
                f"writer stalled={bool(t.get('writer_stall'))} at '{t.get('writer_step')}', "
                f"reader stalled={bool(t.get('reader_stall'))} at '{t.get('reader_step')}'"),
        evidence={"cursors_at_stall": _stall_view(result)} if stalled else {})


def _duplex(name: str, result: Mapping[str, Any]) -> list[Check]:
    ts = list(result.get("transfers_urg", []))
    out: list[Check] = []
    for t in ts:
        out += _transfer_claims(name, result, t)
        out.append(_no_stall_transfer(name, result, t))
    dirs = sorted(str(t["dir"]) for t in ts)
    out.append(Check(kind="claim", scenario=name, subject="both directions ran at once",
                     ok=dirs == ["c2s", "s2c"],
                     detail=f"directions {dirs} on one SMC-D connection (16 KiB DMBs)"))
    return out


def _urg_wrap(name: str, result: Mapping[str, Any]) -> list[Check]:
    ts = list(result.get("transfers_urg", []))
    if len(ts) != 1:
        return [_missing(name, "c2s transfer")]
    t = ts[0]
    marks = [int(m) for m in t.get("mark_at", [])]
    outcome = str(t.get("outcome", ""))
    size = int(result.get("rmbe_size", 0))
    last = int(result.get("overflow_mark", -1))
    if last not in marks or size <= 0:
        return [_missing(name, "overflow mark")]
    k = marks.index(last)
    before = [i for i in range(k) if outcome[i:i + 1] not in ("G", "R", "S")]
    out = [Check(
        kind="claim", scenario=name,
        subject=f"urgent bytes before the wrap-counter overflow ({k} of them, lap boundaries "
                "included) are read out of band and skipped",
        ok=k > 0 and not before,
        detail=f"outcomes {outcome[:k]}; wrong at {before[:10]} (marks "
               f"{[marks[i] for i in before[:5]]}); ring {size} bytes, laps up to 65535",
        evidence={"odd": t.get("odd", [])})]
    reached = int(t["sent"]) > last
    fine = (outcome[k:k + 1] in ("G", "R", "S") and not t.get("writer_stall")
            and not t.get("reader_stall") and int(t["sent"]) == int(t["total"]))
    lap, slot = divmod(last, size)
    out.append(Check(
        kind="finding", scenario=name,
        subject="an urgent byte in the last slot before the 16-bit wrap overflow is never "
                "skipped: the writer waits forever",
        ok=not reached or fine,
        detail=f"stream index {last} = lap {lap:#x}, slot {slot} (ring {size}): urg_curs "
               f"becomes (wrap 0, count 0) while the reader's cursor is (0xffff, {size - 1}); "
               "the writer sent it once the reader had read everything before it; the "
               f"reader's plain recv() (which skips the urgent byte at every other mark) and "
               f"recv(MSG_OOB): '{outcome[k:k + 1]}' (E: EINVAL, the skip attempt set "
               "SMC_URG_READ, the byte is lost; G: the reader got it, the other order, when "
               "it asks before reaching the mark - also ends in the stall), "
               f"writer stall {bool(t.get('writer_stall'))} at '{t.get('writer_step')}', "
               f"reader stall {bool(t.get('reader_stall'))}. smc_rx_update_consumer compares "
               "with smc_curs_comp, which orders by wrap (0xffff > 0) across the overflow: "
               "comp < -1 -> no skip at comp == 1 (and urg_rx_skip_pend never fires); the "
               "consumer "
               "cursor stays one byte short of the producer, urg_tx_pend is never cleared "
               "(smc_cdc_msg_recv_action)",
        evidence={"cursors_at_stall": _stall_view(result), "odd": t.get("odd", []),
                  "sent": t.get("sent"), "total": t.get("total")}))
    return out


def _reader_cursor(result: Mapping[str, Any], step: Mapping[str, Any]) -> Any:
    """The reader's consumer cursor (its ``tx_cons``: local_tx_ctrl.cons) in a step's view; the
    reader is the accepted socket, whose source port is the scenario's port."""
    for sock in (step.get("diag") or {}).get("socks", []):
        ci = sock.get("conninfo")
        if ci and sock.get("sport") == result.get("port"):
            return ci.get("tx_cons")
    return None


def _urg_phantom(name: str, result: Mapping[str, Any]) -> list[Check]:
    size = int(result.get("rmbe_size", 0))
    mark = int(result.get("urgent_mark", -1))
    if size <= 0 or mark != 65535 * size - 1:
        return [_missing(name, "urgent mark in the last slot of lap 0xfffe")]
    s = _Steps({"steps": result.get("steps", [])})
    skip, full, short = ("s recv plain (skips the urgent byte)", "s recv len (one full ring)",
                         "s recv len-1")
    cur = {n: _reader_cursor(result, s.get(n)) for n in (skip, full, short)}
    reached = (bool(result.get("phase1_ok")) and s.errno(skip) == EAGAIN
               and cur[skip] == [0xFFFF, 0] and s.rc(full) == size and cur[full] == [0, 0])
    out = [Check(
        kind="claim", scenario=name,
        subject="a plain recv() skips the urgent byte in the last slot of lap 0xfffe, and one "
                "recv() of a full ring moves the consumer cursor from (0xffff, 0) to (0, 0)",
        ok=reached,
        detail=f"stream index {mark} (ring {size}): urg_curs (0xffff, 0); transfer up to it "
               f"{'ok' if result.get('phase1_ok') else 'FAILED'}; plain recv() errno "
               f"{s.errno(skip)} with the reader's cursor then {cur[skip]} "
               "(smc_rx_recvmsg_data_available -> smc_rx_update_cons(0): comp == 1, skip); "
               f"the full-ring recv() returned {s.rc(full)}, cursor then {cur[full]}",
        evidence={"reader_cursor": cur})]
    sent, pos = int(result.get("sent", 0)), int(result.get("read_pos", 0))
    bad = int(result.get("first_bad", -1))
    stalled = bool(result.get("phase2_stall"))
    lap, slot = divmod(bad, size) if bad >= 0 else (-1, -1)
    fine = bad < 0 and not stalled and pos == sent
    out.append(Check(
        kind="finding", scenario=name,
        subject="after a skipped urgent byte at the end of lap 0xfffe and one full-ring read, "
                "every later byte still arrives once, in order (no phantom skip)",
        ok=not reached or fine,
        detail=(f"every byte after the urgent one read back as sent ({pos - mark - 1} bytes, "
                f"reads ending at count {size - 1} included)" if fine else
                f"first wrong byte: stream index {bad} (lap {lap}, slot {slot}) read by "
                f"'{result.get('first_bad_step')}' as {int(result.get('first_bad_got', -1)):#04x}"
                f", expected {int(result.get('first_bad_expected', -1)):#04x}; "
                f"{result.get('bytes_bad')} of {pos - mark - 1} bytes after the urgent one "
                "read wrong; the reader's "
                f"cursor after reading {size - 1} bytes from (0, 0) was {cur[short]} (expected "
                f"[0, {size - 1}]); stall {stalled}, read up to {pos} of {sent}. "
                "smc_rx_update_consumer skips an urgent byte (comp(cons, urg_curs) == 1) "
                "without leaving SMC_URG_VALID; only a read ending more than one byte past "
                "urg_curs sets SMC_URG_READ, and smc_curs_comp orders by the 16-bit wrap "
                "alone, so (0, 0) after the full-ring read is not past (0xffff, 0); from then "
                "on a read ending at count len-1 of any lap compares as diff 1 (smc_curs_diff "
                "across wraps: (len - count) + 0) and skips a real byte: lost, and a stale "
                "slot is read later (bytes_to_rcv still counts it, so the consumer cursor "
                "ends up ahead of the producer)"),
        evidence={"first_bad": bad, "first_bad_step": result.get("first_bad_step"),
                  "bytes_bad": result.get("bytes_bad"),
                  "reader_cursor": cur,
                  "steps": {n: {k: v for k, v in st.items() if k != "diag"}
                            for n, st in s.brief(skip, full, short, "s recv the rest").items()},
                  "cursors_after": _cursors((result.get("diag_after") or [None])[0])}))
    return out


def urg_checks(name: str, result: Mapping[str, Any]) -> list[Check]:
    """The claim and finding checks of one urgent-data scenario.

    A scenario whose harness failed (``error``) gets no checks here: the run reports the error
    itself (and exits 1).
    """
    if result.get("error"):
        return []
    return [replace(c, evidence={**c.evidence, "reproducer": reproducer(name)})
            if c.kind == "finding" else c for c in _judge(name, result)]


def _judge(name: str, result: Mapping[str, Any]) -> list[Check]:
    if name == "duplex":
        return _duplex(name, result)
    if name == "urg-wrap":
        return _urg_wrap(name, result)
    if name == "urg-phantom":
        return _urg_phantom(name, result)
    judges: Sequence[tuple[str, Any]]
    if name == "urg-basic":
        judges = (("oob-basic", _oob_basic), ("oob-inline", _oob_inline),
                  ("oob-at-mark-plain-first", _plain_first), ("oob-shutdown", _oob_shutdown),
                  ("oob-basic-tcp", _oob_basic_tcp))
    elif name == "urg-findings":
        judges = (("oob-at-mark", _oob_at_mark),
                  ("oob-failed-send", lambda n, c: _failed_send(n, c, False)),
                  ("oob-failed-send-duplex", lambda n, c: _failed_send(n, c, True)),
                  ("oob-blocked-send-duplex", _blocked_send),
                  ("atmark-no-urg", _atmark_no_urg), ("oob-more", _oob_more))
    else:
        return []
    cases = _cases(result)
    out: list[Check] = []
    for case, judge in judges:
        c = cases.get(case)
        if c is None or c.get("error"):
            out.append(_missing(name, case))
            continue
        out += judge(name, c)
        if name == "urg-basic":
            out.append(_no_stall_case(name, case, c))
    return out
