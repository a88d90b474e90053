"""loopback-ism over shared memory as a target (``--target shm``).

Theory of operation
-------------------
:class:`ShmTarget` drives :mod:`smcd_check.model.shm`, the project's second, concurrent
implementation, through the adapter vocabulary:

* device operations go to a file-backed device in a fresh directory on ``/dev/shm`` (real shared
  memory, the control table locked with ``flock``);
* ``conn_open`` opens a real pair: a TCP listener on 127.0.0.1, the client's ``connect`` and the
  server's ``accept`` run the CLC handshake over TCP (the server in a helper thread), on a
  v6.11+ "nocopy" device for merged mode or a v6.10-style copy device for copy mode (the kernel
  merges whenever the device supports it). ``a`` is the client, ``b`` the server;
* ``conn_send`` / ``conn_recv`` are the non-blocking calls (``EAGAIN`` is "0 bytes accepted"),
  the rest map one to one;
* the implementation is concurrent (the peer's CDC is handled by the host's softirq thread), so
  after every connection operation the target waits until every signal has been handled
  (:meth:`ShmHost.settle`): the observation is then what the caller would see once the system
  is quiet, which is what the spec describes;
* ``curs_*`` call the implementation's own cursor functions.

* ``lgr_conn_create`` asks the host for the link group a new connection joins, by the same
  rule the handshake uses.
* ``urgent``: ``conn_open_urg`` opens a pair as ``conn_open`` does (real handshake) and then,
  before any traffic, puts every cursor of both endpoints where ``start`` bytes each way would
  have left them (``ShmConnection.start_after``, a test hook: moving up to a gigabyte through
  Python is not an option); ``conn_send_oob`` / ``conn_recv_oob`` are the non-blocking
  ``send(oob=True)`` / ``recv(oob=True)``, ``conn_atmark`` and ``conn_set_oobinline`` the
  connection's own. Every pair takes both the ordinary and the urgent operations, as in the
  model target.

Not supported (UNSUPPORTED, never failed): ``clc`` (the implementation's codec only decodes the
v2 SMC-D messages it uses), ``handshake`` (its handshake is blocking over TCP, not a byte-fed
endpoint) and ``conn-steps`` (its internal steps run on their own threads; they cannot be
driven one by one from outside).
"""

from __future__ import annotations

import contextlib
import threading
from typing import Any

from smcd_check.conformance.targets.adapter import Capability, Observation, Op, TargetBroken

_SMCD_SIZES = tuple(16384 << k for k in range(7))


class ShmTarget:
    """The shared-memory implementation behind the adapter interface."""

    capabilities = frozenset({Capability.DEVICE, Capability.DEVICE_NOCOPY,
                              Capability.CONN_COPY, Capability.CONN_MERGED,
                              Capability.CURSOR, Capability.LINK_GROUP, Capability.URGENT})

    def __init__(self, *, name: str = "shm", seed: int = 7, timeout: float = 20.0) -> None:
        self.name = name
        self.seed = seed
        self.timeout = timeout
        self._devs: list[Any] = []
        self._hosts: list[Any] = []
        self._socks: list[Any] = []
        self.conns: dict[int, Any] = {}
        self.dev: Any = None
        self._pair_env: dict[str, tuple[Any, Any, Any]] = {}
        self.reset()

    # ------------------------------------------------------------------ lifecycle
    def reset(self) -> None:
        from smcd_check.model.shm.device import ShmLoopbackIsm

        self.close()
        try:
            self.dev = ShmLoopbackIsm.create(seed=self.seed)
        except OSError as exc:
            raise TargetBroken(f"cannot create a shared-memory device: {exc}") from exc
        self._devs.append(self.dev)
        self.handles: dict[int, bool] = {}
        self.conns = {}
        self._next_conn = 1

    def close(self) -> None:
        for sock in self._socks:
            with contextlib.suppress(Exception):
                sock.tcp.close()
        for _, _, lst in self._pair_env.values():
            with contextlib.suppress(Exception):
                lst.close()
        for host in self._hosts:
            with contextlib.suppress(Exception):
                host.close(timeout=self.timeout)
        for dev in self._devs:
            with contextlib.suppress(Exception):
                dev.close(remove=True)
        self._socks, self._hosts, self._devs, self._pair_env = [], [], [], {}
        self.conns = {}

    # ------------------------------------------------------------------ dispatch
    def apply(self, op: Op) -> Observation:
        from smcd_check.model.shm.device import DeviceOpError

        a = op.kwargs()
        try:
            if op.name.startswith("curs_"):
                return self._cursor(op.name, a)
            if op.name.startswith("dev_"):
                return self._device(op.name, a)
            if op.name == "lgr_conn_create":
                return self._lgr_conn_create(a)
            return self._conn(op.name, a)
        except DeviceOpError as exc:
            self._settle()
            return Observation.failure(exc.errno_name, str(exc))
        except TimeoutError as exc:
            raise TargetBroken(f"{op.name}: {exc}") from exc
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            raise TargetBroken(f"{op.name}: {type(exc).__name__}: {exc}") from exc

    # ------------------------------------------------------------------ cursors
    def _cursor(self, name: str, a: dict[str, Any]) -> Observation:
        from smcd_check.model.shm import cursor as c

        def curs(value: Any, arg: str) -> Any:
            if not (isinstance(value, list | tuple) and len(value) == 2
                    and all(isinstance(v, int) and not isinstance(v, bool) for v in value)):
                raise ValueError(f"{arg}={value!r}: expected [wrap, count]")
            return c.HostCursor(value[0], value[1])

        size = a["size"]
        if name == "curs_add":
            got = c.curs_add(size, curs(a["curs"], "curs"), a["value"])
            return Observation.success({"curs": [got.wrap, got.count]})
        fn = {"curs_diff": c.curs_diff, "curs_comp": c.curs_comp,
              "curs_diff_large": c.curs_diff_large}[name]
        return Observation.success({"value": fn(size, curs(a["old"], "old"),
                                                curs(a["new"], "new"))})

    # ------------------------------------------------------------------ device
    def _device(self, name: str, a: dict[str, Any]) -> Observation:
        dev = self.dev
        if name == "dev_register_dmb":
            dmb = dev.register_dmb(a["size"], 0)
            self.handles[dmb.dmb_tok] = True
            return Observation.success({"token": dmb.dmb_tok, "sba_idx": dmb.sba_idx,
                                        "len": dmb.dmb_len})
        if name == "dev_unregister_dmb":
            dev.unregister_dmb(a["token"])
            return Observation.success()
        if name == "dev_attach_dmb":
            dmb = dev.attach_dmb(a["token"])
            return Observation.success({"token": dmb.dmb_tok, "sba_idx": dmb.sba_idx,
                                        "len": dmb.dmb_len})
        if name == "dev_detach_dmb":
            dev.detach_dmb(a["token"])
            return Observation.success()
        if name == "dev_move_data":
            data = bytes.fromhex(a["data"])
            dev.move_data(a["token"], 0, bool(a["signal"]), a["offset"], data)
            return Observation.success()
        if name == "dev_read_dmb":
            token, offset, size = a["token"], a["offset"], a["size"]
            if not (isinstance(offset, int) and isinstance(size, int)):
                return Observation.failure("EINVAL", "offset and size must be ints")
            return Observation.success({"data": dev.read_dmb(token, offset, size).hex()})
        raise TargetBroken(f"the shm target has no operation {name}")

    # ------------------------------------------------------------------ link groups
    def _lgr_conn_create(self, a: dict[str, Any]) -> Observation:
        """``smc_conn_create``'s choice, as the handshake makes it (``smcd_lgr_match`` on the
        peer's GID and GID extension; a client without first contact from its peer that finds
        none is refused: SMC_CLC_DECL_SYNCERR)."""
        role, gid, ext = a["role"], a["peer_gid"], a["peer_gid_ext"]
        if role not in ("client", "server") or not isinstance(gid, int) or \
                not isinstance(ext, int):
            return Observation.failure("EINVAL", f"role={role!r} peer_gid={gid!r}")
        _dev, host, _ = self._env("merged")
        peer = (gid, ext)
        if role == "client" and a["first_contact_peer"]:
            return Observation.success({"lgr": host.new_lgr(peer).lgr_id, "first_contact": True})
        lgr = host.find_lgr(peer)
        if lgr is not None:
            return Observation.success({"lgr": lgr.lgr_id, "first_contact": False})
        if role == "client":
            return Observation.failure("ENOENT", "no link group for the peer (SYNCERR)")
        return Observation.success({"lgr": host.new_lgr(peer).lgr_id, "first_contact": True})

    # ------------------------------------------------------------------ connections
    def _env(self, mode: str) -> tuple[Any, Any, Any]:
        """The device, host and listener for ``mode`` (created on first use in a case)."""
        from smcd_check.model.shm.device import ShmLoopbackIsm
        from smcd_check.model.shm.host import ShmHost

        env = self._pair_env.get(mode)
        if env is None:
            dev = ShmLoopbackIsm.create(seed=self.seed + 1, nocopy=mode == "merged")
            self._devs.append(dev)
            host = ShmHost(dev, name=f"{mode}-host")
            self._hosts.append(host)
            env = (dev, host, None)
            self._pair_env[mode] = env
        return env

    def _open(self, mode: Any, dmb_size: Any, sndbuf_size: Any, start: Any = 0) -> Observation:
        from smcd_check.model.shm.handshake import HandshakeConfig
        from smcd_check.model.shm.socket import SmcdListener, connect

        if mode not in ("copy", "merged"):
            return Observation.failure("EINVAL", f"mode={mode!r}: expected 'copy' or 'merged'")
        if dmb_size not in _SMCD_SIZES:
            return Observation.failure("EINVAL", f"dmb_size={dmb_size!r}: an SMC-D DMB is "
                                                 "16 KiB << k, k = 0..6")
        if mode == "copy" and not (isinstance(sndbuf_size, int) and sndbuf_size > 0
                                   and sndbuf_size % 8 == 0):
            return Observation.failure("EINVAL", f"sndbuf_size={sndbuf_size!r}")
        if not isinstance(start, int) or isinstance(start, bool) or start < 0:
            return Observation.failure("EINVAL", f"start={start!r}: expected an int >= 0")
        _dev, host, _ = self._env(mode)
        cfg = HandshakeConfig(dmb_size=dmb_size,
                              sndbuf_size=sndbuf_size if mode == "copy" else None,
                              timeout=self.timeout)
        listener = SmcdListener(host, config=cfg)
        box: dict[str, Any] = {}

        def serve() -> None:
            try:
                box["server"] = listener.accept(timeout=self.timeout)[0]
            except BaseException as exc:
                box["error"] = exc

        t = threading.Thread(target=serve, name="shm-target-accept", daemon=True)
        t.start()
        try:
            client = connect(host, listener.address, config=cfg, timeout=self.timeout)
        finally:
            t.join(self.timeout)
            listener.close()
        if "error" in box or "server" not in box:
            raise TargetBroken(f"conn_open: server handshake failed: {box.get('error')}")
        server = box["server"]
        self._socks += [client, server]
        if client.conn is None or server.conn is None:
            why = client.fallback or server.fallback
            raise TargetBroken(f"conn_open: fell back to TCP ({why})")
        self._settle()
        if start:  # nothing has moved yet: no CDC in flight (conn_open_urg's hook)
            client.conn.start_after(start)
            server.conn.start_after(start)
        ida, idb = self._next_conn, self._next_conn + 1
        self._next_conn += 2
        self.conns[ida], self.conns[idb] = client.conn, server.conn
        return Observation.success({"a": ida, "b": idb})

    def _settle(self) -> None:
        from smcd_check.model.shm.host import settle_all

        if self._hosts:
            settle_all(*self._hosts)
            for host in self._hosts:
                if host.errors:
                    raise TargetBroken(f"softirq of {host.name} raised: {host.errors[0]!r}")

    def _conn(self, name: str, a: dict[str, Any]) -> Observation:
        from smcd_check.model.shm.conn import WouldBlock

        if name == "conn_open":
            return self._open(a["mode"], a["dmb_size"], a["sndbuf_size"])
        if name == "conn_open_urg":  # an ordinary pair, its cursors started at `start`
            return self._open(a["mode"], a["dmb_size"], a["sndbuf_size"], a["start"])
        c = self.conns.get(a["conn"]) if isinstance(a["conn"], int) else None
        if c is None:
            return Observation.failure("EBADF", f"unknown connection {a['conn']!r}")
        if name == "conn_cursors":
            self._settle()
            s = c.snapshot()
            # SIOCINQ / SIOCOUTQ (smc_ioctl): 0 and the whole sndbuf once SMC_CLOSED
            closed = s["sk_state"] == 7
            return Observation.success({
                "prod": list(s["prod"]), "peer_cons": list(s["peer_cons"]),
                "sndbuf_space": s["sndbuf_len"] if closed else s["sndbuf_space"],
                "peer_rmbe_space": s["peer_rmbe_space"],
                "cons": list(s["cons"]), "peer_prod": list(s["peer_prod"]),
                "bytes_to_rcv": 0 if closed else s["bytes_to_rcv"],
            })
        try:
            if name == "conn_send":
                try:
                    data = bytes.fromhex(a["data"])
                except (TypeError, ValueError):
                    return Observation.failure("EINVAL", "data: expected a hex string")
                try:
                    n = c.send(data, block=False)
                except WouldBlock:
                    n = 0
                result: dict[str, Any] = {"n": n}
            elif name == "conn_recv":
                data = c.recv(a["max"], block=False)
                result = {"data": data.hex(), "eof": bool(c.eof)}
            elif name == "conn_send_oob":
                try:
                    data = bytes.fromhex(a["data"])
                except (TypeError, ValueError):
                    return Observation.failure("EINVAL", "data: expected a hex string")
                try:
                    n = c.send(data, oob=True, block=False)
                except WouldBlock:
                    n = 0
                result = {"n": n}
            elif name == "conn_recv_oob":
                result = {"data": c.recv(a["max"], oob=True).hex()}
            elif name == "conn_atmark":
                result = {"atmark": bool(c.atmark())}
            elif name == "conn_set_oobinline":
                if not isinstance(a["on"], bool):
                    return Observation.failure("EINVAL", f"on={a['on']!r}: expected a boolean")
                c.set_oobinline(a["on"])
                result = {}
            elif name == "conn_shutdown":
                c.shutdown()
                result = {}
            elif name == "conn_close":
                c.close()
                result = {}
            elif name == "conn_abort":
                c.abort()
                result = {}
            else:
                raise TargetBroken(f"the shm target has no operation {name}")
        finally:
            self._settle()
        return Observation.success(result)


def make_shm() -> ShmTarget:
    """Factory for ``--target smcd_check.conformance.targets.shm_target:make_shm``."""
    return ShmTarget()
