"""The concurrency environment the shared-memory implementation runs in.

The implementation never calls ``threading`` directly: it asks its :class:`Runtime` for locks,
condition variables and threads, and it announces every access to state that another thread may
touch without holding the same lock (a DMB byte range, a cursor, an atomic counter) with
:meth:`Runtime.point` *before* making it. Two runtimes exist:

* :class:`ThreadRuntime` (this module): real threads, ``threading`` locks and conditions, and
  ``point`` does nothing. This is what users, the conformance target and the benchmark run.
* the race explorer's scheduler (``smcd_check.conformance.races``): one thread runs at a time and
  every ``point`` is a place where it may switch threads, so it can enumerate the interleavings
  (CHESS / loom style). Its locks and conditions block in the scheduler, never in the OS.

:meth:`Runtime.observe` hands events (bytes written into a DMB, a DMB released, a tasklet run) to
an optional observer; the real runtime has none. That is how a checker sees the implementation
without the implementation importing it.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any, Protocol


class Lock(Protocol):
    def acquire(self) -> bool: ...
    def release(self) -> None: ...
    def __enter__(self) -> Any: ...
    def __exit__(self, *exc: object) -> None: ...


class Condition(Protocol):
    """A condition variable bound to a :class:`Lock` (held by the caller of wait/notify)."""

    def wait_for(self, predicate: Callable[[], bool], timeout: float | None = None) -> bool: ...
    def notify_all(self) -> None: ...


class Thread(Protocol):
    name: str

    def join(self, timeout: float | None = None) -> None: ...
    def is_alive(self) -> bool: ...


Observer = Callable[[str, dict[str, Any]], None]


class Runtime(Protocol):
    """What the implementation needs from its environment.

    ``tracing`` says whether :meth:`point` does anything (the implementation skips building
    labels otherwise: the hot path stays cheap); ``observing`` whether :meth:`observe` does.
    """

    tracing: bool
    observing: bool

    def point(self, what: str, obj: object = None, write: bool = False) -> None:
        """About to access shared state ``obj`` (``write``: modify it); ``what`` labels it."""

    def observe(self, kind: str, **data: Any) -> None:
        """Report an event to the observer, if any."""

    def lock(self, name: str) -> Lock: ...

    def condition(self, lock: Lock, name: str) -> Condition: ...

    def spawn(self, name: str, target: Callable[[], None], *, system: bool = False) -> Thread:
        """Start a thread; ``system`` threads (softirq) may stay blocked when a run ends."""


class ThreadRuntime:
    """Real threads; ``point`` is free; events go to ``observer`` when one is given."""

    tracing = False

    def __init__(self, observer: Observer | None = None) -> None:
        self.observer = observer
        self.observing = observer is not None

    def point(self, what: str, obj: object = None, write: bool = False) -> None:
        return None

    def observe(self, kind: str, **data: Any) -> None:
        if self.observer is not None:
            self.observer(kind, data)

    def lock(self, name: str) -> Lock:
        return threading.Lock()  # type: ignore[return-value]

    def condition(self, lock: Lock, name: str) -> Condition:
        return threading.Condition(lock)  # type: ignore[arg-type]

    def spawn(self, name: str, target: Callable[[], None], *, system: bool = False) -> Thread:
        t = threading.Thread(target=target, name=name, daemon=True)
        t.start()
        return t


class Cell:
    """A value other threads read and write without a common lock (a kernel atomic / READ_ONCE).

    Every access is announced to the runtime first, so under the race explorer each one is a
    possible thread switch. Under :class:`ThreadRuntime` a get/set is one attribute access, which
    the GIL makes atomic.
    """

    __slots__ = ("_rt", "_trace", "name", "value")

    def __init__(self, rt: Runtime, name: str, value: Any) -> None:
        self._rt = rt
        self._trace = rt.tracing
        self.name = name
        self.value = value

    def get(self) -> Any:
        if self._trace:
            self._rt.point("read " + self.name, self, False)
        return self.value

    def set(self, value: Any) -> None:
        if self._trace:
            self._rt.point("write " + self.name, self, True)
        self.value = value

    def peek(self) -> Any:
        """Read without a yield point (snapshots and checkers only)."""
        return self.value


class AtomicInt(Cell):
    """``atomic_t``: read, add and set are each one indivisible access."""

    __slots__ = ("_lock",)

    def __init__(self, rt: Runtime, name: str, value: int = 0) -> None:
        super().__init__(rt, name, value)
        self._lock = threading.Lock()

    def add(self, n: int) -> int:
        if self._trace:
            self._rt.point("atomic_add " + self.name, self, True)
        with self._lock:  # under the GIL alone '+=' is two steps
            self.value += n
            return int(self.value)
