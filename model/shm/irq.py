"""Interrupt lines: how a signalled ``move_data`` reaches the host that owns the DMB.

``smc_lo_move_data`` with ``sf`` set schedules the receiving connection's rx tasklet. Across
processes this needs a real notification primitive: every host (one SMC stack instance, usually
one process) owns an interrupt line, and a signal is the 4-byte DMB slot number written to it.

* :class:`FifoIrqLine` is a named pipe (``mkfifo``) in the device directory: writes of 4 bytes
  are atomic (< ``PIPE_BUF``), so any number of senders may raise interrupts at once; the owner
  reads them in batches (several signals for one slot coalesce into one tasklet run, as kernel
  tasklets do). The reader opens it read-write so it never sees end-of-file; writers open it
  non-blocking and wait for room with ``select`` if the pipe is full.
* :class:`QueueIrqLine` is an in-process queue on the runtime's lock and condition, used when
  every host lives in one process (threads), and by the race explorer, whose scheduler then
  decides when the softirq thread sees a signal.

Special values: :data:`WAKE` (work was queued locally), :data:`STOP` (the host shuts down).
"""

from __future__ import annotations

import collections
import contextlib
import errno
import os
import select
import struct
from typing import Protocol

from smcd_check.model.shm.runtime import Runtime

WAKE = -1
STOP = -2
_ITEM = struct.Struct("=i")


class IrqLine(Protocol):
    def put(self, item: int) -> None: ...
    def get_batch(self) -> list[int]: ...
    def close(self) -> None: ...


class QueueIrqLine:
    """An in-process interrupt line (deque + condition of the runtime)."""

    def __init__(self, rt: Runtime, name: str) -> None:
        self.name = name
        self._items: collections.deque[int] = collections.deque()
        self._lock = rt.lock(f"irq {name}")
        self._cv = rt.condition(self._lock, f"irq {name}")
        self._rt = rt

    def put(self, item: int) -> None:
        with self._lock:
            self._items.append(item)
            self._cv.notify_all()

    def get_batch(self) -> list[int]:
        with self._lock:
            self._cv.wait_for(lambda: bool(self._items))
            out = list(self._items)
            self._items.clear()
            return out

    def pending(self) -> int:
        return len(self._items)

    def close(self) -> None:
        """Nothing to release."""


class FifoIrqLine:
    """The reading end of a host's named pipe."""

    def __init__(self, path: str) -> None:
        self.path = path
        if not os.path.exists(path):
            os.mkfifo(path, 0o600)
        # O_RDWR: the pipe always has a writer (ourselves), so reads block instead of seeing EOF
        self.fd = os.open(path, os.O_RDWR)
        self._rest = b""

    def put(self, item: int) -> None:
        _write_all(self.fd, _ITEM.pack(item))

    def get_batch(self) -> list[int]:
        data = self._rest + os.read(self.fd, 4096)
        cut = len(data) - len(data) % 4
        self._rest = data[cut:]
        return [v for (v,) in _ITEM.iter_unpack(data[:cut])]

    def close(self) -> None:
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self.path)


class FifoIrqSender:
    """Raises interrupts on other hosts' pipes (one cached descriptor per host)."""

    def __init__(self) -> None:
        self._fds: dict[str, int] = {}

    def raise_irq(self, path: str, item: int) -> bool:
        """Write ``item``; ``False`` when the line is gone (its host went away)."""
        fd = self._fds.get(path)
        if fd is None:
            try:
                fd = os.open(path, os.O_WRONLY | os.O_NONBLOCK)
            except OSError as exc:
                if exc.errno in (errno.ENOENT, errno.ENXIO):
                    return False
                raise
            self._fds[path] = fd
        try:
            _write_all(fd, _ITEM.pack(item))
        except BrokenPipeError:
            os.close(self._fds.pop(path))
            return False
        return True

    def close(self) -> None:
        for fd in self._fds.values():
            os.close(fd)
        self._fds.clear()


def _write_all(fd: int, data: bytes) -> None:
    while True:
        try:
            os.write(fd, data)  # 4 bytes <= PIPE_BUF: all or nothing
            return
        except BlockingIOError:
            select.select([], [fd], [], 1.0)
