"""A blocking, socket-like API: ``connect`` / ``accept`` / ``send`` / ``recv`` / ``shutdown`` /
``close`` over loopback-ism shared memory, with the CLC handshake on a real TCP loopback socket.

>>> dev = ShmLoopbackIsm.create()            # a device directory on /dev/shm
>>> host = ShmHost(dev)                      # this process's SMC stack (softirq thread)
>>> lst = SmcdListener(host)                 # TCP listen socket on 127.0.0.1, port chosen
>>> # in another thread or process (ShmLoopbackIsm.open(dev.path) there):
>>> # s = connect(host2, lst.address); s.sendall(b"hi")
>>> c, addr = lst.accept(); c.recv(2)        # doctest: +SKIP

After a Decline (or with a peer that does not speak SMC) the socket falls back to the TCP
connection, as SMC does; ``fallback`` tells which happened.
"""

from __future__ import annotations

import fcntl
import socket as _socket
import sys
from typing import Any

from smcd_check.model.shm.clcsock import TcpClcsock
from smcd_check.model.shm.conn import ShmConnection
from smcd_check.model.shm.handshake import (
    Fallback,
    HandshakeConfig,
    HandshakeError,
    client,
    server,
)
from smcd_check.model.shm.host import ShmHost

#: ``SIOCATMARK`` (asm-generic/sockios.h), for a socket that fell back to TCP
SIOCATMARK = 0x8905


class SmcdSocket:
    """A connected SMC-D socket (or a TCP one after fallback)."""

    def __init__(self, tcp: _socket.socket, result: ShmConnection | Fallback) -> None:
        self.tcp = tcp
        self.conn = result if isinstance(result, ShmConnection) else None
        if self.conn is not None:
            self.conn.clcsock = TcpClcsock(tcp)
        self.fallback = result if isinstance(result, Fallback) else None
        self.timeout: float | None = None
        self._closed = False

    def settimeout(self, timeout: float | None) -> None:
        self.timeout = timeout
        self.tcp.settimeout(timeout)

    def send(self, data: Any, flags: int = 0) -> int:
        """``flags``: ``socket.MSG_OOB`` (the last byte is urgent) and ``MSG_DONTWAIT``."""
        if self.conn is None:
            return self.tcp.send(data, flags)
        return self.conn.send(data, oob=bool(flags & _socket.MSG_OOB),
                              block=not flags & _socket.MSG_DONTWAIT, timeout=self.timeout)

    def sendall(self, data: Any) -> None:
        if self.conn is None:
            self.tcp.sendall(data)
            return
        self.conn.sendall(data, timeout=self.timeout)

    def recv(self, n: int, flags: int = 0) -> bytes:
        """``flags``: ``socket.MSG_OOB`` (the urgent byte; EINVAL when there is none) and
        ``MSG_DONTWAIT``."""
        if self.conn is None:
            return self.tcp.recv(n, flags)
        return self.conn.recv(n, oob=bool(flags & _socket.MSG_OOB),
                              block=not flags & _socket.MSG_DONTWAIT, timeout=self.timeout)

    def recv_into(self, buf: Any) -> int:
        if self.conn is None:
            return self.tcp.recv_into(buf)
        return self.conn.recv_into(buf, timeout=self.timeout)

    def setsockopt(self, level: int, option: int, value: int) -> None:
        """``SOL_SOCKET``/``SO_OOBINLINE`` goes to the SMC socket (``sock_setsockopt``); every
        other option to the TCP socket under it (as ``smc_setsockopt`` passes them on)."""
        if self.conn is not None and (level, option) == (_socket.SOL_SOCKET,
                                                         _socket.SO_OOBINLINE):
            self.conn.set_oobinline(bool(value))
            return
        self.tcp.setsockopt(level, option, value)

    def atmark(self) -> bool:
        """``ioctl(SIOCATMARK)``: the next byte to read is the urgent one (``smc_ioctl``)."""
        if self.conn is None:
            raw = fcntl.ioctl(self.tcp.fileno(), SIOCATMARK, b"\0\0\0\0")
            return bool(int.from_bytes(raw, sys.byteorder))
        return self.conn.atmark()

    @property
    def urgent_pending(self) -> bool:
        """poll's EPOLLPRI on the SMC socket: an urgent byte waits to be read out of band."""
        return self.conn is not None and self.conn.urgent_pending

    def shutdown(self, how: int = _socket.SHUT_WR) -> None:
        """Only ``SHUT_WR`` (and ``SHUT_RDWR``, which also stops reading) are meaningful."""
        if self.conn is None:
            self.tcp.shutdown(how)
            return
        if how in (_socket.SHUT_WR, _socket.SHUT_RDWR):
            self.conn.shutdown()  # also shuts the TCP connection's sending side

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        try:
            if self.conn is not None:
                self.conn.close()
        finally:
            self.tcp.close()

    def __enter__(self) -> SmcdSocket:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class SmcdListener:
    """A listening socket: TCP on ``address``, SMC-D after the server handshake.

    Args:
        host: this process's :class:`ShmHost`.
        address: where to listen (default: 127.0.0.1, a free port).
        config: DMB size, UEID, CLC timeout.
    """

    def __init__(self, host: ShmHost, address: tuple[str, int] = ("127.0.0.1", 0), *,
                 config: HandshakeConfig | None = None, backlog: int = 128) -> None:
        self.host = host
        self.config = config or HandshakeConfig()
        self.config.check()
        self.tcp = _socket.create_server(address, backlog=backlog)
        self.address: tuple[str, int] = self.tcp.getsockname()[:2]
        self._n = 0

    def accept(self, timeout: float | None = None) -> tuple[SmcdSocket, Any]:
        """Accept one connection and run the server handshake.

        Raises:
            TimeoutError: no connection within ``timeout``.
            HandshakeError: the client sent something invalid (the TCP socket is closed).
        """
        self.tcp.settimeout(timeout)
        tcp, addr = self.tcp.accept()
        tcp.settimeout(None)
        tcp.setsockopt(_socket.IPPROTO_TCP, _socket.TCP_NODELAY, 1)
        self._n += 1
        try:
            result = server(self.host, tcp, self.config, name=f"server{self._n}")
        except BaseException:
            tcp.close()
            raise
        return SmcdSocket(tcp, result), addr

    def close(self) -> None:
        self.tcp.close()

    def __enter__(self) -> SmcdListener:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def connect(host: ShmHost, address: tuple[str, int], *, config: HandshakeConfig | None = None,
            timeout: float | None = None, name: str = "client") -> SmcdSocket:
    """Connect over TCP and run the client handshake (fallback to TCP after a Decline).

    Raises:
        HandshakeError: the server answered something invalid (the TCP socket is closed).
        OSError: the TCP connect failed.
    """
    cfg = config or HandshakeConfig()
    tcp = _socket.create_connection(address, timeout=timeout)
    tcp.settimeout(None)
    tcp.setsockopt(_socket.IPPROTO_TCP, _socket.TCP_NODELAY, 1)
    try:
        result = client(host, tcp, cfg, name=name)
    except BaseException:
        tcp.close()
        raise
    return SmcdSocket(tcp, result)


__all__ = ["HandshakeError", "SmcdListener", "SmcdSocket", "connect"]
