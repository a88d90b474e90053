"""Serving the explorer app with uvicorn: on a bound socket, or in a thread for tests/scripts.

The socket is bound here (not by uvicorn) so that a busy port is reported as one clear error
before anything starts, and ``port=0`` (any free port) tells the caller which port it got.
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import uvicorn

#: the default address: this machine only (the explorer has no authentication)
DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8080


def bind(host: str = DEFAULT_HOST, port: int = DEFAULT_PORT) -> socket.socket:
    """A listening TCP socket on ``host:port`` (``port=0``: any free port).

    Raises:
        OSError: the address cannot be bound (in use, not an address of this machine, ...).
    """
    infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    family, kind, proto, _name, addr = infos[0]
    sock = socket.socket(family, kind, proto)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(addr)
        sock.listen(128)
    except OSError:
        sock.close()
        raise
    return sock


def base_url(sock: socket.socket) -> str:
    """``http://host:port`` of a bound socket."""
    host, port = sock.getsockname()[:2]
    if ":" in host:
        host = f"[{host}]"
    return f"http://{host}:{port}"


def _server(app: Any, log_level: str) -> uvicorn.Server:
    config = uvicorn.Config(app, log_level=log_level, lifespan="off", access_log=False)
    return uvicorn.Server(config)


def serve(app: Any, sock: socket.socket, *, log_level: str = "warning") -> None:
    """Serve ``app`` on ``sock`` until Ctrl-C (uvicorn handles the signal and shuts down)."""
    _server(app, log_level).run(sockets=[sock])


@contextmanager
def running(app: Any, host: str = DEFAULT_HOST, port: int = 0) -> Iterator[str]:
    """Serve ``app`` in a background thread; yields the base URL, stops the server on exit."""
    sock = bind(host, port)
    server = _server(app, "warning")
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    try:
        deadline = time.monotonic() + 10
        while not server.started:
            if not thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("the explorer server did not start")
            time.sleep(0.01)
        yield base_url(sock)
    finally:
        server.should_exit = True
        thread.join(timeout=10)
        sock.close()
