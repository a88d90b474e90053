"""Scenarios for the race explorer: a small system of threads over the shared-memory
implementation, built afresh for every schedule.

Each scenario sets up a device (in-process memory: only interleavings matter), one host with its
softirq thread, one connection pair with 8-byte data rings (DMBs of 40 bytes, window-update
limit 0 so that every consumed byte may trigger an update), and a few scenario threads that call
the blocking socket API. Scenario threads mark the boundaries between their calls, so the
checker knows the quiescent points (every thread between calls, asleep or finished).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from smcd_check.conformance.races.mutants import Mutant
from smcd_check.conformance.races.scheduler import ScheduledRuntime
from smcd_check.model.shm.conn import ShmConnection, SocketError
from smcd_check.model.shm.device import DeviceOpError, ShmLoopbackIsm
from smcd_check.model.shm.handshake import open_pair
from smcd_check.model.shm.host import ShmHost

#: a DMB of 40 bytes: the 32-byte CDC header and an 8-byte data ring
DMB = 40


@dataclass
class Env:
    """What a scenario builds: the runtime, the system under test, the boundary bookkeeping."""

    rt: ScheduledRuntime
    dev: ShmLoopbackIsm
    host: ShmHost
    a: ShmConnection
    b: ShmConnection
    between_ops: set[int] = field(default_factory=set)
    results: dict[str, Any] = field(default_factory=dict)

    def thread(self, name: str, body: Callable[[Env], None]) -> None:
        """Spawn a scenario thread running ``body`` (its calls go through :meth:`op`)."""
        holder: dict[str, Any] = {}

        def run() -> None:
            me = holder["t"].idx
            self.between_ops.add(me)
            body(self)

        t = self.rt.spawn(name, run)
        holder["t"] = t

    def op(self, what: str, fn: Callable[[], Any]) -> Any:
        """One socket call, with a quiescence boundary before and after it."""
        me = self.rt.current
        assert me is not None
        self.rt.point(f"call {what}")
        self.between_ops.discard(me.idx)
        try:
            return fn()
        except (SocketError, DeviceOpError) as exc:  # a refused call is an outcome, not a bug
            return exc
        finally:
            self.between_ops.add(me.idx)
            self.rt.point(f"returned from {what}")


def _recv_exactly(env: Env, conn: ShmConnection, n: int, tag: str) -> None:
    got = b""
    while len(got) < n:
        want = n - len(got)

        def call(want: int = want) -> bytes:
            return conn.recv(want)

        data = env.op(f"{conn.name}.recv({want})", call)
        if not isinstance(data, bytes) or not data:
            break
        got += data
    env.results[tag] = got


def _duplex(env: Env) -> None:
    a, b = env.a, env.b

    def t_a(e: Env) -> None:
        e.op("a.send(2)", lambda: a.sendall(b"AA"))
        _recv_exactly(e, a, 2, "a got")

    def t_b_send(e: Env) -> None:
        e.op("b.send(2)", lambda: b.sendall(b"BB"))

    def t_b_recv(e: Env) -> None:
        _recv_exactly(e, b, 2, "b got")

    env.thread("a", t_a)
    env.thread("b.send", t_b_send)
    env.thread("b.recv", t_b_recv)


def _attach_vs_teardown(env: Env) -> None:
    a, b = env.a, env.b

    def t_a(e: Env) -> None:
        e.op("a.abort()", a.abort)
        e.op("a.lgr.free()", a.lgr.free)

    def t_b(e: Env) -> None:
        if isinstance(e.op("b.buf_attach()", b.buf_attach), Exception):
            return
        e.op("b.send(2)", lambda: b.send(b"xy", block=False))

    env.thread("a.teardown", t_a)
    env.thread("b.attach", t_b)


def _close_late_cdc(env: Env) -> None:
    a, b = env.a, env.b

    def t_b_send(e: Env) -> None:
        e.op("b.send(2)", lambda: b.send(b"xy"))

    def t_b_close(e: Env) -> None:
        e.op("b.close()", b.close)

    def t_a(e: Env) -> None:
        _recv_exactly(e, a, 2, "a got")
        e.op("a.close()", a.close)

    env.thread("a", t_a)
    env.thread("b.send", t_b_send)
    env.thread("b.close", t_b_close)


def _stream(env: Env) -> None:
    a, b = env.a, env.b
    data = bytes(range(1, 13))

    def t_a(e: Env) -> None:
        e.op("a.send(12)", lambda: a.sendall(data))
        e.op("a.close()", a.close)

    def t_b(e: Env) -> None:
        _recv_exactly(e, b, 12, "b got")
        e.op("b.close()", b.close)

    env.thread("a", t_a)
    env.thread("b", t_b)


@dataclass(frozen=True, slots=True)
class Scenario:
    name: str
    description: str
    mode: str
    threads: Callable[[Env], None]
    separate_lgrs: bool = False
    attach: tuple[bool, bool] = (True, True)


SCENARIOS: dict[str, Scenario] = {s.name: s for s in (
    Scenario("duplex", "merged mode, 8-byte rings: a sends 2 bytes to b and reads 2 back; b "
             "sends from one thread and reads from another (full duplex)", "merged", _duplex),
    Scenario("attach-vs-teardown", "merged mode: a aborts and frees its link group (its DMB is "
             "unregistered) while b attaches a's DMB as ghost sndbuf and writes into it",
             "merged", _attach_vs_teardown, separate_lgrs=True, attach=(True, False)),
    Scenario("close-late-cdc", "merged mode: b sends 2 bytes from one thread and closes from "
             "another while a reads them and closes (a's free races with b's late CDC)",
             "merged", _close_late_cdc),
    Scenario("stream", "copy mode: a sends 12 bytes through b's 8-byte ring (wrap, window "
             "updates, a blocked send) and closes; b reads all and closes", "copy", _stream),
)}


def build(scenario: Scenario, mutant: Mutant | None, rt: ScheduledRuntime) -> Env:
    """Set the scenario up on ``rt`` (nothing runs until ``rt.run``)."""
    device_cls = mutant.device_cls if mutant else ShmLoopbackIsm
    conn_cls = mutant.conn_cls if mutant else ShmConnection
    host_cls = mutant.host_cls if mutant else ShmHost
    dev = device_cls(rt=rt, heap=True, max_dmbs=8, seed=1, nocopy=scenario.mode == "merged")
    host = host_cls(dev, name="host", sock_min_sndbuf=0)
    a, b = open_pair(host, dmb_size=DMB, sndbuf_size=16 if scenario.mode == "copy" else None,
                     conn_cls=conn_cls, separate_lgrs=scenario.separate_lgrs,
                     attach=scenario.attach)
    env = Env(rt=rt, dev=dev, host=host, a=a, b=b)
    scenario.threads(env)
    return env
