"""The TCP connection under an SMC socket (the CLC socket), as the close paths use it.

SMC-D keeps the handshake's TCP connection open: ``smc_shutdown`` and ``smc_close_active`` shut
it down (``kernel_sock_shutdown``), the socket's release closes it, an abort resets it. Whether a
later ``shutdown(2)`` still works is decided by TCP: once both FINs have crossed the socket is in
TCP_CLOSE and ``inet_shutdown`` answers -ENOTCONN.

* :class:`TcpClcsock` is the real thing: it calls ``shutdown(2)`` on the real TCP socket, so the
  host kernel's TCP decides (``ENOTCONN`` is passed on as :class:`NotConnected`).
* :class:`PairClcsock` is an in-memory stand-in for pairs built without a handshake
  (:func:`~smcd_check.model.shm.handshake.open_pair`, the race explorer): FIN sent / received
  and reset flags, TCP_CLOSE when both FINs crossed or after a reset.
"""

from __future__ import annotations

import errno
import socket
import struct
from typing import Protocol

from smcd_check.model.shm.device import DeviceOpError


class NotConnected(DeviceOpError):
    """ENOTCONN: ``shutdown(2)`` in a state that does not allow it, or TCP already closed."""

    errno_name = "ENOTCONN"


class Clcsock(Protocol):
    def shutdown_write(self, *, strict: bool) -> None:
        """Send our FIN (``kernel_sock_shutdown(SHUT_WR)``); with ``strict`` a TCP connection
        already in TCP_CLOSE raises :class:`NotConnected`, else it is ignored."""

    def abort(self) -> None:
        """Reset the connection (``tcp_abort``)."""


class PairClcsock:
    """An in-memory TCP connection end (see the module docstring)."""

    def __init__(self) -> None:
        self.peer: PairClcsock | None = None
        self.fin_sent = False
        self.fin_rcvd = False
        self.reset = False

    @staticmethod
    def pair() -> tuple[PairClcsock, PairClcsock]:
        a, b = PairClcsock(), PairClcsock()
        a.peer, b.peer = b, a
        return a, b

    @property
    def tcp_close(self) -> bool:
        return self.reset or (self.fin_sent and self.fin_rcvd)

    def shutdown_write(self, *, strict: bool) -> None:
        if self.tcp_close:
            if strict:
                raise NotConnected("shutdown: the TCP connection is closed both ways")
            return
        if not self.fin_sent:
            self.fin_sent = True
            if self.peer is not None:
                self.peer.fin_rcvd = True

    def abort(self) -> None:
        if self.tcp_close:
            return
        self.reset = True
        if self.peer is not None:
            self.peer.reset = True


class TcpClcsock:
    """The real TCP socket of the handshake."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock

    def shutdown_write(self, *, strict: bool) -> None:
        try:
            self.sock.shutdown(socket.SHUT_WR)
        except OSError as exc:
            if strict and exc.errno == errno.ENOTCONN:
                raise NotConnected("shutdown: the TCP connection is closed both ways") from exc

    def abort(self) -> None:
        try:
            self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            self.sock.close()  # linger 0: a reset
        except OSError:
            pass
