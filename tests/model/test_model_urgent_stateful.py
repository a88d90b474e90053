"""Stateful Hypothesis test of one SMC-D connection pair carrying data and urgent bytes both ways.

Each example opens one pair (copy or merged mode, tiny data rings of 1..13 bytes so the ring
count wraps all the time; half the examples start a few bytes before the 16-bit wrap-counter
overflow through ``open_pair(initial_bytes=...)``), chooses SO_OOBINLINE for each end, and then
sends (plain or MSG_OOB), reads in band and out of band, asks SIOCATMARK, shuts down and closes
at random, in both directions.

The oracle and its properties (in words) are in tests/support/urgent_oracle.py.
"""

from __future__ import annotations

from typing import Any

import hypothesis.strategies as st
from hypothesis import settings
from hypothesis.stateful import initialize
from urgent_oracle import LAPS, UrgentPairOracle

from smcd_check.model.connection import SmcdConnection, open_pair
from smcd_check.model.device import DeviceOpError, InvalidArgument, LoopbackIsm

RINGS = (1, 2, 3, 5, 8, 13)  #: data ring bytes (DMB = 32 + ring)
SNDBUFS = (1, 4, 13, 40)  #: copy-mode sndbuf bytes


class UrgentPairMachine(UrgentPairOracle):
    """Both directions of one pair of the single-threaded model, against the oracle."""

    op_error = DeviceOpError
    einval = InvalidArgument

    @initialize(
        mode=st.sampled_from(["copy", "merged"]),
        ring=st.sampled_from(RINGS),
        sndbufs=st.tuples(st.sampled_from(SNDBUFS), st.sampled_from(SNDBUFS)),
        near_overflow=st.booleans(),
        before=st.integers(0, 30),
        inline=st.tuples(st.booleans(), st.booleans()),
        seed=st.integers(0, 2**16),
    )
    def open(
        self,
        mode: str,
        ring: int,
        sndbufs: tuple[int, int],
        near_overflow: bool,
        before: int,
        inline: tuple[bool, bool],
        seed: int,
    ) -> None:
        dev = LoopbackIsm(seed=seed, nocopy=(mode == "merged"))
        kw: dict[str, int] = {}
        if mode == "copy":
            kw = {"sndbuf_size": sndbufs[0], "peer_sndbuf_size": sndbufs[1]}
        #: the absolute stream position every cursor starts at
        start = LAPS * ring - 1 - min(before, 3 * ring) if near_overflow else 0
        a, b = open_pair(
            dev,
            mode,
            dmb_size=32 + ring,
            strict_sizes=False,
            sock_min_sndbuf=0,
            initial_bytes=start,
            **kw,  # type: ignore[arg-type]
        )
        self.opened(a, b, inline, start, ring, seed)

    # the hooks: the model's calls never block and need no settling

    def recv_in_band(self, r: SmcdConnection, n: int) -> bytes:
        return r.recv(n)

    def send_bytes(self, w: SmcdConnection, data: bytes, oob: bool) -> int:
        return w.send(data, oob=oob)

    def tx_busy(self, w: SmcdConnection, n: int) -> bool:
        return bool(w.urg_tx_pend or w.snapshot().sndbuf_space < n or w.freed or w.killed)

    def urg_tx_pend(self, w: SmcdConnection) -> bool:
        return bool(w.urg_tx_pend)

    def bytes_to_rcv(self, r: SmcdConnection) -> int:
        return r.readable

    def stale_mark(self, r: Any) -> tuple[int, int]:
        s = r.snapshot()
        return s.urg_curs_count, s.tx_cons_count


UrgentPairMachine.TestCase.settings = settings(
    settings.default,
    max_examples=settings.default.max_examples,
    stateful_step_count=settings.default.stateful_step_count,
)
TestUrgentPair = UrgentPairMachine.TestCase
