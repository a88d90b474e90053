"""The oracle of the urgent-data stateful tests: one SMC-D connection pair carrying data and
urgent bytes both ways, run against an implementation through a few hooks. Used by
tests/model/test_model_urgent_stateful.py (the single-threaded model) and
tests/model/shm/test_shm_urgent_stateful.py (the concurrent shared-memory one); each opens its
pair in an ``@initialize`` rule and implements the hooks.

The oracle keeps a plain byte-stream per direction: every byte ``send`` accepted, in
order, and which of them were urgent (the last byte of a MSG_OOB send the sndbuf took whole; its
value is the urgent byte's ordinal, so an out-of-band byte names the send it came from). The
properties, in words:

* no byte lost, duplicated or reordered in band, either direction: what ``recv`` returned is
  always a prefix of the expected stream, which is every accepted byte with SO_OOBINLINE and
  every accepted byte but the urgent ones without it; after a drain of a healthy pair it is all
  of it;
* an urgent byte is delivered at most once out of band, never after a newer one, only when it is
  the newest urgent byte or the one before (a new urgent byte replaces an unread one, as in
  TCP), and never with SO_OOBINLINE (EINVAL);
* SIOCATMARK: with SO_OOBINLINE, a reader that has read everything before a pending urgent byte
  is at the mark; whenever ``atmark()`` says so with an urgent byte pending, that byte is the next
  one (inline: next in band; not inline: nothing in band before it); without a pending urgent
  byte it says so only where 6.12.118's ``smc_curs_diff`` quirk puts a stale mark (urg_curs count
  0, reader at the ring's last byte) or after one of the kernel oddities below;
* liveness at a drain of a healthy pair: the newest urgent byte, unless already read, is there
  out of band, and the sender is released from its wait for urgent data (``urg_tx_pend``).

The last property does not hold in 6.12.118 after some application actions (see
tests/model/test_model_urgent.py, the ``*_like_6_12_118`` tests): a lone urgent byte read out of
band before any in-band read; ``recv(0, MSG_OOB)``; an OOB send the sndbuf did not take whole
(its ``urg_data_pending`` stays set and turns the peer's urgent byte NOTYET); an urgent byte in
the first lap after the wrap-counter overflow. The test notes which of these a direction went
through and checks the liveness property only for the others; the in-band and at-most-once
properties are checked always.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from typing import Any

import hypothesis.strategies as st
from hypothesis import event
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule

LAPS = 0x10000  #: the u16 wrap counter's period in laps


@dataclass
class Direction:
    """One direction's oracle: a plain byte stream plus the urgent bytes' positions."""

    inline: bool  #: the receiver's SO_OOBINLINE
    sent: bytearray = field(default_factory=bytearray)  #: every byte send() accepted
    expected: bytearray = field(default_factory=bytearray)  #: what must come in band
    inband: bytearray = field(default_factory=bytearray)  #: what recv() returned
    urgent: list[int] = field(default_factory=list)  #: index in ``sent`` of each urgent byte
    #: for each urgent byte, how many expected in-band bytes come before it
    urg_pos: list[int] = field(default_factory=list)
    oob_last: int = -1  #: ordinal of the newest urgent byte read out of band (or consumed)
    #: 6.12.118 oddities this direction went through (liveness not checked after them)
    quirks: set[str] = field(default_factory=set)
    #: the kernel may corrupt this direction's stream (nothing about it is checked any more)
    corrupt: bool = False

    def read_past(self, ordinal: int) -> int:
        """In-band bytes read beyond the ``ordinal``-th urgent byte's place (its consumer skip
        included): at 2 the kernel marks it READ without SO_OOBINLINE, "we read past urgent
        byte" (TCP drops it one byte earlier)."""
        return len(self.inband) - self.urg_pos[ordinal]


def marker(ordinal: int) -> int:
    """The value of the ``ordinal``-th urgent byte of a direction (0-based)."""
    return (ordinal + 1) & 0xFF


class UrgentPairOracle(RuleBasedStateMachine):
    """Both directions of one pair, with urgent data, against the oracle above."""

    #: DeviceOpError and InvalidArgument of the implementation under test
    op_error: type[Exception] = Exception
    einval: type[Exception] = Exception
    a: Any
    b: Any
    start: int
    ring: int
    dirs: dict[str, Direction]
    closed: set[str]
    shut: set[str]
    rng: random.Random

    def opened(self, a: Any, b: Any, inline: tuple[bool, bool], start: int, ring: int,
               seed: int) -> None:
        """Call from the subclass's ``@initialize`` rule once the pair is open."""
        self.a, self.b, self.start, self.ring = a, b, start, ring
        self.a.set_oobinline(inline[0])
        self.b.set_oobinline(inline[1])
        # direction "ab" is received by b: b's SO_OOBINLINE rules it
        self.dirs = {"ab": Direction(inline=inline[1]), "ba": Direction(inline=inline[0])}
        self.closed = set()  #: ends whose user called close()
        self.shut = set()  #: ends that shut down for writing
        self.rng = random.Random(seed)

    # ------------------------------------------------------------------ implementation hooks

    def settle(self) -> None:
        """Wait until the implementation is quiet (a concurrent one's threads are idle)."""

    def recv_in_band(self, r: Any, n: int) -> bytes:
        """One non-blocking recv of at most ``n`` bytes."""
        raise NotImplementedError

    def send_bytes(self, w: Any, data: bytes, oob: bool) -> int:
        """One non-blocking send (MSG_OOB when ``oob``); 0 when there is no room."""
        raise NotImplementedError

    def tx_busy(self, w: Any, n: int) -> bool:
        """Whether an application would hold back an ``n``-byte MSG_OOB send: urgent data is
        staged, the sndbuf has no room for all of it, or the end is freed or killed."""
        raise NotImplementedError

    def urg_tx_pend(self, w: Any) -> bool:
        raise NotImplementedError

    def bytes_to_rcv(self, r: Any) -> int:
        raise NotImplementedError

    def stale_mark(self, r: Any) -> tuple[int, int]:
        """(urg_curs count, consumer cursor count) of the reader."""
        raise NotImplementedError

    # ------------------------------------------------------------------ helpers

    def ends(self, direction: str) -> tuple[Any, Any]:
        return (self.a, self.b) if direction == "ab" else (self.b, self.a)

    @property
    def healthy(self) -> bool:
        """Neither end closed and no stream the kernel may have corrupted: every operation
        must succeed (bar the documented EINVALs)."""
        return not self.closed and not any(d.corrupt for d in self.dirs.values())

    def check_prefix(self, d: Direction) -> None:
        if d.corrupt:
            return
        assert d.inband == d.expected[: len(d.inband)], (
            f"in-band stream corrupted: got {bytes(d.inband)!r}, expected a prefix of "
            f"{bytes(d.expected)!r}"
        )

    def read(self, direction: str, n: int) -> bytes:
        _w, r = self.ends(direction)
        d = self.dirs[direction]
        try:
            got = self.recv_in_band(r, n)
        except self.op_error:
            assert direction[1] in self.closed or not self.healthy, "recv failed on a healthy pair"
            return b""
        finally:
            self.settle()
        assert len(got) <= n
        d.inband += got
        self.check_prefix(d)
        return got

    # ------------------------------------------------------------------ rules

    @rule(
        direction=st.sampled_from(["ab", "ba"]),
        n=st.one_of(st.integers(0, 6), st.integers(0, 40)),
        oob=st.sampled_from(["no", "polite", "polite", "any"]),
        seed=st.integers(0, 255),
    )
    def send(self, direction: str, n: int, oob: str, seed: int) -> None:
        """Send ``n`` bytes, plain or MSG_OOB. A "polite" OOB send is made only when the sndbuf
        takes the whole message and nothing urgent is staged (what an application learns from
        poll and SIOCOUTQ); otherwise it is a plain send."""
        w, _r = self.ends(direction)
        if oob == "polite":
            n = min(n, 3)
            if self.tx_busy(w, n):
                oob = "no"
        return self._send(direction, n, oob != "no", seed)

    def _send(self, direction: str, n: int, oob: bool, seed: int) -> None:
        w, _r = self.ends(direction)
        d = self.dirs[direction]
        data = bytearray(random.Random(seed).randbytes(n))
        if oob and n:
            data[-1] = marker(len(d.urgent))
        try:
            k = self.send_bytes(w, bytes(data), oob)
        except self.op_error:
            assert direction[0] in self.shut or not self.healthy, "send failed on a healthy pair"
            return
        finally:
            self.settle()
        assert 0 <= k <= n
        d.sent += data[:k]
        if oob and n and k == n:
            index = len(d.sent) - 1
            d.urgent.append(index)
            d.urg_pos.append(len(d.expected) + n - 1)
            d.expected += data if d.inline else data[:-1]
            end = self.start + index + 1  # urg_curs, as an absolute stream position
            lap = (end // self.ring) % LAPS
            if end >= LAPS * self.ring and lap == 0:
                d.quirks.add("urgent byte in the first lap after the wrap overflow")
            if lap == LAPS - 1 and end % self.ring == 0 and not d.inline:
                # test_stale_urgent_state_skips_a_phantom_byte_after_wrap_overflow_like_6_12_118
                d.corrupt = True
                event("stream not checked: stale urgent state at (0xffff, 0)")
        else:
            d.expected += data[:k]
            if oob and n:
                # urg_data_pending stays set: the next CDC without data makes the peer NOTYET
                d.quirks.add("MSG_OOB send not taken whole")

    @rule(
        direction=st.sampled_from(["ab", "ba"]),
        n=st.one_of(st.integers(0, 4), st.integers(0, 50)),
    )
    def recv(self, direction: str, n: int) -> None:
        self.read(direction, n)

    @rule(direction=st.sampled_from(["ab", "ba"]), n=st.sampled_from([1, 1, 3, 0]))
    def recv_oob(self, direction: str, n: int) -> None:
        _w, r = self.ends(direction)
        d = self.dirs[direction]
        if direction[1] in self.closed:
            return
        lone = r.urgent_pending and r.atmark()
        try:
            got = r.recv(n, oob=True)
        except self.einval:
            return  # inline, or nothing VALID: both EINVAL in smc_rx_recv_urg
        except self.op_error:
            assert not self.healthy, "recv(oob) failed on a healthy pair"
            return
        finally:
            self.settle()
        if not got and not self.healthy:
            return  # smc_recvmsg: an SMC_CLOSED socket with RCV_SHUTDOWN returns 0 first
        assert not d.inline, "recv(MSG_OOB) returned data with SO_OOBINLINE set"
        if lone:
            d.quirks.add("lone urgent byte read out of band first")
        if n == 0:
            assert got == b""
            d.quirks.add("recv(0, MSG_OOB)")
            d.oob_last = max(d.oob_last, len(d.urgent) - 2)
            return
        assert len(got) == 1
        ordinal = got[0] - 1
        assert 0 <= ordinal < len(d.urgent), f"out-of-band byte {got!r} was never sent urgent"
        assert ordinal > d.oob_last, "urgent byte delivered out of band twice (or out of order)"
        assert ordinal >= len(d.urgent) - 2, "a replaced urgent byte came back"
        if not d.quirks and not d.corrupt:
            assert d.read_past(ordinal) < 2, "urgent byte returned after in-band reading passed it"
        d.oob_last = ordinal

    @rule(direction=st.sampled_from(["ab", "ba"]))
    def atmark(self, direction: str) -> None:
        _w, r = self.ends(direction)
        d = self.dirs[direction]
        if direction[1] in self.closed:
            return
        at = r.atmark()
        pending = r.urgent_pending
        if d.quirks or not self.healthy:
            return
        if d.inline and pending and d.urgent and len(d.inband) == d.urgent[-1]:
            assert at, "inline reader just before the pending urgent byte is not at the mark"
        if at and pending:
            if d.inline:
                assert d.urgent and len(d.inband) == d.urgent[-1], "mark is not the urgent byte"
            else:
                assert self.bytes_to_rcv(r) == 0, "at the mark with in-band data still before it"
        elif at:
            event("SIOCATMARK at a stale mark")
            assert self.stale_mark(r) == (0, self.ring - 1), (
                "at the mark without urgent data, outside smc_curs_diff's stale-mark case"
            )

    @rule(side=st.sampled_from(["a", "b"]), dice=st.integers(0, 3))
    def shutdown(self, side: str, dice: int) -> None:
        if dice:
            return
        conn = self.a if side == "a" else self.b
        try:
            conn.shutdown()
        except self.op_error:
            assert not self.healthy or side in self.shut, "shutdown failed on a healthy pair"
            return
        finally:
            self.settle()
        self.shut.add(side)

    @rule(side=st.sampled_from(["a", "b"]), dice=st.integers(0, 15))
    def close(self, side: str, dice: int) -> None:
        """Close one end (one draw in sixteen, so most examples stay healthy for a while)."""
        if side in self.closed or dice:
            return
        (self.a if side == "a" else self.b).close()
        self.settle()
        self.closed.add(side)

    @rule(direction=st.sampled_from(["ab", "ba"]))
    def drain(self, direction: str) -> None:
        """Read in band until nothing comes; on a healthy pair the stream is then complete, and
        (bar the kernel oddities) the newest urgent byte is there out of band and the sender is
        released."""
        w, r = self.ends(direction)
        d = self.dirs[direction]
        for _ in range(10_000):
            if not self.read(direction, self.rng.choice([1, 7, 1 << 16])):
                break
        if not self.healthy:
            return
        assert d.inband == d.expected, (
            f"drain stopped after {len(d.inband)} of {len(d.expected)} expected bytes"
        )
        if d.quirks:
            for q in d.quirks:
                event(f"liveness not checked: {q}")
            return
        newest = len(d.urgent) - 1
        if not d.inline and d.urgent and d.oob_last < newest:
            if d.read_past(newest) >= 2:
                event("urgent byte dropped: read past in band")
                try:
                    r.recv(1, oob=True)
                except self.einval:
                    pass
                else:
                    raise AssertionError("urgent byte still there after reading 2 bytes past it")
            else:
                got = r.recv(1, oob=True)
                assert got == bytes([marker(newest)]), (
                    f"newest urgent byte not there out of band: {got!r}"
                )
            d.oob_last = newest
        self.settle()
        assert not self.urg_tx_pend(w), (
            "sender still waiting for its urgent data after a full drain")
        event("liveness checked" + (" with urgent data" if d.urgent else ""))

    # ------------------------------------------------------------------ invariants

    @invariant()
    def streams_are_prefixes(self) -> None:
        for d in self.dirs.values():
            self.check_prefix(d)
            assert len(d.inband) <= len(d.expected)
