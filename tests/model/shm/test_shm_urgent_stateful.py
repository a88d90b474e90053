"""Stateful Hypothesis test of one pair of the *concurrent* shared-memory implementation
carrying data and urgent bytes both ways (the oracle and properties of
tests/model/test_model_urgent_stateful.py, which checks the single-threaded model, applied to
``model/shm``).

Each example opens one pair on a real host (its softirq thread handles every CDC; the test
waits for it after each step with ``settle_all``), copy or merged mode, tiny data rings of 8..40
bytes so the ring count wraps all the time; half the examples start a few bytes before the
16-bit wrap-counter overflow (``open_pair(start=...)``); each end's SO_OOBINLINE is drawn. Then
it sends (plain or MSG_OOB, non-blocking), reads in band and out of band, asks SIOCATMARK,
shuts down and closes at random, in both directions.

The oracle and its properties (in words) are in tests/support/urgent_oracle.py.
"""

from __future__ import annotations

from typing import Any

import hypothesis.strategies as st
from hypothesis import settings
from hypothesis.stateful import initialize
from urgent_oracle import LAPS, UrgentPairOracle

from smcd_check.model.shm.conn import InvalidArgument, ShmConnection, WouldBlock
from smcd_check.model.shm.device import DeviceOpError, ShmLoopbackIsm
from smcd_check.model.shm.handshake import open_pair
from smcd_check.model.shm.host import ShmHost, settle_all

RINGS = (8, 16, 24, 40)  #: data ring bytes (DMB = 32 + ring, a multiple of 8)
SNDBUFS = (8, 16, 40)  #: copy-mode sndbuf bytes (both ends)


class UrgentPairMachine(UrgentPairOracle):
    """Both directions of one pair of the shared-memory implementation, against the oracle."""

    op_error = DeviceOpError
    einval = InvalidArgument

    @initialize(
        mode=st.sampled_from(["copy", "merged"]),
        ring=st.sampled_from(RINGS),
        sndbuf=st.sampled_from(SNDBUFS),
        near_overflow=st.booleans(),
        before=st.integers(0, 30),
        inline=st.tuples(st.booleans(), st.booleans()),
        seed=st.integers(0, 2**16),
    )
    def open(
        self,
        mode: str,
        ring: int,
        sndbuf: int,
        near_overflow: bool,
        before: int,
        inline: tuple[bool, bool],
        seed: int,
    ) -> None:
        self.dev = ShmLoopbackIsm.create(seed=seed, nocopy=(mode == "merged"))
        self.host = ShmHost(self.dev, sock_min_sndbuf=0)
        #: the absolute stream position every cursor starts at
        start = LAPS * ring - 1 - min(before, 3 * ring) if near_overflow else 0
        a, b = open_pair(self.host, dmb_size=32 + ring,
                         sndbuf_size=sndbuf if mode == "copy" else None, start=start)
        self.opened(a, b, inline, start, ring, seed)

    def teardown(self) -> None:
        host = getattr(self, "host", None)
        if host is not None:
            host.close()
            self.dev.close(remove=True)

    # ------------------------------------------------------------------ hooks

    def settle(self) -> None:
        """Wait until the softirq has handled every CDC (the spec's quiescent view)."""
        settle_all(self.host)

    def recv_in_band(self, r: ShmConnection, n: int) -> bytes:
        return r.recv(n, block=False)

    def send_bytes(self, w: ShmConnection, data: bytes, oob: bool) -> int:
        try:
            return w.send(data, oob=oob, block=False)
        except WouldBlock:
            return 0

    def tx_busy(self, w: ShmConnection, n: int) -> bool:
        return bool(w.urg_tx_pend.peek() or w.snapshot()["sndbuf_space"] < n or w.freed
                    or w.killed.peek())

    def urg_tx_pend(self, w: ShmConnection) -> bool:
        return bool(w.urg_tx_pend.peek())

    def bytes_to_rcv(self, r: ShmConnection) -> int:
        return int(r.snapshot()["bytes_to_rcv"])

    def stale_mark(self, r: Any) -> tuple[int, int]:
        s = r.snapshot()
        return s["urg_curs"][1], s["cons"][1]


UrgentPairMachine.TestCase.settings = settings(
    settings.default,
    max_examples=settings.default.max_examples,
    stateful_step_count=settings.default.stateful_step_count,
)
TestShmUrgentPair = UrgentPairMachine.TestCase
