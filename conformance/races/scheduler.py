"""A controlled scheduler for the shared-memory implementation (CHESS / loom style).

Theory of operation
-------------------
:class:`ScheduledRuntime` implements the implementation's :class:`~smcd_check.model.shm.runtime.
Runtime`: its threads are real Python threads, but exactly one of them runs at a time. A thread
runs until it reaches a **yield point** - ``Runtime.point`` (before every access to a cursor, an
atomic counter, DMB memory, the device table, an interrupt line), a lock acquire, a condition
wait - and there the scheduler chooses which thread runs next. Plain fields touched only under
a lock need no yield point of their own: the lock acquire before them is one (Lipton's
reduction: a switch inside a critical section is equivalent to one before it).

Locks and conditions block in the scheduler, never in the OS: a thread waiting for a lock is not
*enabled* until the lock is free; a thread in ``Condition.wait_for`` is not enabled until
another thread notifies (a missing notify is a lost wake-up and shows as a deadlock). Timeouts
are ignored: a wait that nothing ends is a finding.

A *schedule* is the list of choices made at the decision points of a run; given the same
choices the implementation (seeded, no clocks, no I/O in heap mode) replays exactly. The
explorer (:class:`Explorer`) enumerates schedules depth-first (stateless model checking): after
each run it backtracks to the deepest decision with an untried enabled thread, under a
**preemption bound** K: switching away from a thread that could have continued costs one
preemption, a switch at a blocked or finished thread is free, and schedules with more than K
preemptions are not run (iterative context bounding, Musuvathi and Qadeer, PLDI 2007: most
concurrency bugs need very few preemptions). Within the bound the enumeration is exhaustive.

A run ends when no thread is enabled: normally (every scenario thread finished; system threads
such as the softirq may sleep), or in a **deadlock** (a scenario thread waits forever). Runs
longer than ``max_steps`` decisions end as a **livelock** finding. At the end the parked threads
are unwound with :class:`SchedAbort`.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from smcd_check.model.shm.runtime import Observer


class SchedAbort(BaseException):
    """Raised in parked threads to unwind them when a run ends (not an Exception on purpose)."""


class ScheduleDiverged(Exception):
    """A replayed schedule chose a thread that is not enabled at that point."""


@dataclass(eq=False)
class SThread:
    idx: int
    name: str
    system: bool
    target: Callable[[], None]
    sem: threading.Semaphore = field(default_factory=lambda: threading.Semaphore(0))
    done: bool = False
    #: None (runnable), ("lock", SLock) or ("cv", SCondition)
    wait: tuple[str, Any] | None = None
    label: str = "start"
    #: what the next step touches (see :func:`access_key`); ANY before the thread started
    key: Any = "*"
    error: BaseException | None = None
    real: threading.Thread | None = None

    def join(self, timeout: float | None = None) -> None:
        if self.real is not None:
            self.real.join(timeout)

    def is_alive(self) -> bool:
        return self.real is not None and self.real.is_alive()


_SETUP: Any = object()


class SLock:
    """A lock that blocks in the scheduler."""

    def __init__(self, rt: ScheduledRuntime, name: str) -> None:
        self.rt = rt
        self.name = name
        self.owner: SThread | None = None

    def acquire(self) -> bool:
        rt = self.rt
        me = rt.current
        if me is None:  # set-up code, before the run: nothing else runs
            self.owner = _SETUP
            return True
        rt.point(f"lock {self.name}", self, True)
        while self.owner is not None:
            if self.owner is me:
                raise RuntimeError(f"{me.name}: lock {self.name} acquired twice (self-deadlock)")
            me.wait = ("lock", self)
            me.key = access_key(self)
            rt.switch()
        self.owner = me
        return True

    def release(self) -> None:
        self.owner = None

    def __enter__(self) -> SLock:
        self.acquire()
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()


class SCondition:
    """A condition variable on an :class:`SLock`; ``wait_for`` ignores its timeout."""

    def __init__(self, rt: ScheduledRuntime, lock: SLock, name: str) -> None:
        self.rt = rt
        self.lock = lock
        self.name = name

    def wait_for(self, predicate: Callable[[], bool], timeout: float | None = None) -> bool:
        rt = self.rt
        me = rt.current
        if me is None:
            if not predicate():
                raise RuntimeError(f"set-up code would wait on {self.name}")
            return True
        while not predicate():
            self.lock.release()
            me.wait = ("cv", self)
            me.label = f"wait {self.name}"
            rt.switch()
            # notified: take the lock back (a switch point of its own)
            while self.lock.owner is not None:
                me.wait = ("lock", self.lock)
                me.key = access_key(self.lock)
                rt.switch()
            self.lock.owner = me
        return True

    def notify_all(self) -> None:
        for t in self.rt.threads:
            if t.wait is not None and t.wait[0] == "cv" and t.wait[1] is self:
                t.wait = ("lock", self.lock)
                t.key = access_key(self.lock)


ANY = "*"


def access_key(obj: Any) -> Any:
    """The object a step touches, at the granularity the reduction uses.

    Steps on the same key are *dependent* (their order matters); steps on different keys commute.
    The granularity is deliberately coarse, so that fields without a yield point of their own
    are covered by the step before them: every cursor, counter, flag and lock of one connection
    is the key of that connection (its name), a DMB region is one key, the device table and each
    interrupt line are one key each, the host's locks are the host. ``None`` (scenario call
    boundaries) touches nothing.
    """
    if obj is None:
        return None
    if isinstance(obj, tuple) and obj:
        head = obj[0]
        if head == "irq":
            return f"irq host{obj[1]}"
        if head in ("refcnt", "table"):
            return "device"
        return ("region", id(head))
    name = getattr(obj, "name", None)
    if isinstance(name, str):
        if name.startswith("irq "):
            return name
        return name.split(".", 1)[0]
    return ANY


def dependent(k1: Any, k2: Any) -> bool:
    if k1 is None or k2 is None:
        return False
    return k1 in (ANY, k2) or k2 == ANY


@dataclass(frozen=True, slots=True)
class Decision:
    """One decision point of a run."""

    enabled: tuple[int, ...]
    chosen: int
    #: the thread that was running and could have gone on (-1: it blocked or finished)
    current: int
    preemptions_before: int
    #: the access key of every enabled thread's next step, in ``enabled`` order
    keys: tuple[Any, ...] = ()
    #: the sleep set at this decision (threads not to be chosen), with their keys
    sleep: tuple[tuple[int, Any], ...] = ()


@dataclass
class RunResult:
    decisions: list[Decision]
    #: (thread index, label) of every step taken, in order
    steps: list[tuple[int, str]]
    thread_names: list[str]
    deadlock: list[str]  # scenario threads still waiting at the end
    livelock: bool
    errors: list[tuple[str, BaseException]]
    preemptions: int
    pruned: bool = False


class ScheduledRuntime:
    """The runtime handed to the implementation during one controlled run."""

    tracing = True

    def __init__(self, prefix: list[int], *, observer: Observer | None = None,
                 max_steps: int = 20000, sleep: dict[int, Any] | None = None) -> None:
        self.prefix = prefix
        self.observing = observer is not None
        #: sleep set installed after the prefix (partial-order reduction; see Explorer)
        self.sleep_after_prefix = dict(sleep or {})
        self.sleep: dict[int, Any] = {}
        self.pruned = False
        self.observer = observer
        self.max_steps = max_steps
        self.threads: list[SThread] = []
        self.current: SThread | None = None
        self.decisions: list[Decision] = []
        self.steps: list[tuple[int, str]] = []
        self.preemptions = 0
        self.aborting = False
        self.livelock = False
        self._finished = threading.Event()
        self.on_decision: Callable[[ScheduledRuntime], None] | None = None

    # ------------------------------------------------------------------ Runtime protocol
    def point(self, what: str, obj: object = None, write: bool = False) -> None:
        me = self.current
        if me is None:  # setup code before the run starts: no scheduling
            return
        if self.aborting:
            raise SchedAbort
        me.label = what
        me.key = access_key(obj)
        self.switch(yielding=True)

    def observe(self, kind: str, **data: Any) -> None:
        if self.observer is not None:
            self.observer(kind, data)

    def lock(self, name: str) -> SLock:
        return SLock(self, name)

    def condition(self, lock: Any, name: str) -> SCondition:
        return SCondition(self, lock, name)

    def spawn(self, name: str, target: Callable[[], None], *, system: bool = False) -> SThread:
        t = SThread(len(self.threads), name, system, target)
        self.threads.append(t)
        real = threading.Thread(target=self._body, args=(t,), name=f"sched:{name}", daemon=True)
        t.real = real
        real.start()
        return t

    # ------------------------------------------------------------------ threads
    def _body(self, t: SThread) -> None:
        t.sem.acquire()
        try:
            if not self.aborting:
                t.target()
        except SchedAbort:
            pass
        except BaseException as exc:
            t.error = exc
            self.observe("exception", where=t.name, exc=exc)
        t.done = True
        t.wait = None
        if self.aborting:
            return
        with contextlib.suppress(SchedAbort):
            self.switch()

    def _enabled(self) -> list[SThread]:
        out = []
        for t in self.threads:
            if t.done:
                continue
            if t.wait is None or (t.wait[0] == "lock" and t.wait[1].owner is None):
                out.append(t)
        return out

    def switch(self, yielding: bool = False) -> None:
        """A decision point: choose the next thread and hand over to it."""
        me = self.current
        enabled = self._enabled()
        if self.on_decision is not None:
            self.on_decision(self)
        if not enabled:
            self._finished.set()
            if me is not None and not me.done:
                me.sem.acquire()
                raise SchedAbort
            return
        if len(self.decisions) >= self.max_steps:
            self.livelock = True
            self._finished.set()
            if me is not None and not me.done:
                me.sem.acquire()
                raise SchedAbort
            return
        ids = tuple(t.idx for t in enabled)
        cur = me.idx if (me is not None and yielding and me in enabled) else -1
        k = len(self.decisions)
        if k == len(self.prefix):
            self.sleep = dict(self.sleep_after_prefix)
        if k < len(self.prefix):
            chosen = self.prefix[k]
            if chosen not in ids:
                self.diverged = (k, chosen, ids)
                self._finished.set()
                if me is not None and not me.done:
                    me.sem.acquire()
                    raise SchedAbort
                return
        else:
            awake = [i for i in ids if i not in self.sleep]
            if not awake:  # only reorderings of explored schedules are left: prune
                self.pruned = True
                self._finished.set()
                if me is not None and not me.done:
                    me.sem.acquire()
                    raise SchedAbort
                return
            chosen = cur if cur in awake else awake[0]
        keys = tuple(self.threads[i].key for i in ids)
        self.decisions.append(Decision(ids, chosen, cur, self.preemptions, keys,
                                       tuple(sorted(self.sleep.items()))))
        if k >= len(self.prefix) - 1:
            step_key = self.threads[chosen].key
            self.sleep = {v: kv for v, kv in self.sleep.items() if not dependent(kv, step_key)}
        if cur >= 0 and chosen != cur:
            self.preemptions += 1
        nxt = self.threads[chosen]
        self.steps.append((chosen, nxt.label))
        if nxt is me:
            return
        self.current = nxt
        if nxt.wait is not None and nxt.wait[0] == "lock":
            nxt.wait = None
        nxt.sem.release()
        if me is not None and not me.done:
            me.sem.acquire()
            if self.aborting:
                raise SchedAbort

    # ------------------------------------------------------------------ one run
    diverged: tuple[int, int, tuple[int, ...]] | None = None

    def run(self, timeout: float = 60.0) -> RunResult:
        """Start the first thread, wait for the run to end, unwind everything."""
        if not self.threads:
            raise ValueError("nothing to run: no thread was spawned")
        self.current = None
        self.switch()
        if not self._finished.wait(timeout):
            raise RuntimeError(f"a scheduled run did not finish within {timeout} s")
        waiting = [t.name for t in self.threads if not t.done and not t.system]
        self.aborting = True
        for t in self.threads:
            if not t.done:
                t.sem.release()
        for t in self.threads:
            assert t.real is not None
            t.real.join(timeout)
        if self.diverged is not None:
            k, chosen, ids = self.diverged
            raise ScheduleDiverged(
                f"decision {k}: the schedule chooses thread {chosen} but only {list(ids)} "
                "are enabled")
        deadlock = [] if (self.pruned or self.livelock) else waiting
        return RunResult(
            decisions=self.decisions, steps=self.steps,
            thread_names=[t.name for t in self.threads], deadlock=deadlock,
            livelock=self.livelock,
            errors=[(t.name, t.error) for t in self.threads if t.error is not None],
            preemptions=self.preemptions, pruned=self.pruned)
