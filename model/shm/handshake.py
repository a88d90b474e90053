"""The CLC handshake over a real TCP socket, and the pair it leaves behind.

Client (``__smc_connect`` for a v2 loopback-ism device): send a Proposal offering this device's
GID and GID extension (CHID 0xFFFF) and the host's UEID; on an Accept create or reuse the link
group (first contact when the server created one), create the DMB, save the server's token and
DMB size, attach the server's DMB as ghost sndbuf (merged mode), send the Confirm. Server
(``smc_listen_work``): check the Proposal (UEID in common, this device offered), create or reuse
the link group and the DMB, send the Accept, on the Confirm save the peer's token and attach.
Declines use the kernel's reason codes; a declined or non-SMC peer means TCP fallback.

:func:`open_pair` builds the same pair of connections without any CLC (for tests and the race
explorer, where the handshake is not the subject and odd DMB sizes are wanted).
"""

from __future__ import annotations

import socket
from dataclasses import dataclass

from smcd_check.model.shm import clc
from smcd_check.model.shm.clcsock import PairClcsock
from smcd_check.model.shm.conn import ShmConnection, SmcdMode
from smcd_check.model.shm.device import DeviceOpError, NoSpace
from smcd_check.model.shm.host import ShmHost

#: SMC-D DMB sizes (``smc_compress_bufsize`` with ``SMCD_DMBE_SIZES`` = 6)
SMCD_DMB_SIZES = tuple(16384 << k for k in range(7))
DEFAULT_UEID = "SMCD-CHECK-UEID"


class HandshakeError(Exception):
    """The handshake failed without fallback (the kernel's -EPROTO / -ETIMEDOUT paths)."""

    def __init__(self, message: str, errno_name: str = "EPROTO") -> None:
        super().__init__(message)
        self.errno_name = errno_name


@dataclass(frozen=True, slots=True)
class Fallback:
    """The handshake ended in TCP fallback: ``reason`` (ours) or the peer's diagnosis."""

    reason: int
    peer_diagnosis: int = 0


@dataclass(frozen=True, slots=True, kw_only=True)
class HandshakeConfig:
    ueid: str = DEFAULT_UEID
    dmb_size: int = 65536
    sndbuf_size: int | None = None  #: copy mode; default: dmb_size
    timeout: float = clc.CLC_WAIT_TIME

    def check(self) -> None:
        if self.dmb_size not in SMCD_DMB_SIZES:
            raise ValueError(f"dmb_size={self.dmb_size}: an SMC-D DMB is 16 KiB << k, k = 0..6")
        clc.ueid_bytes(self.ueid)


def _send(tcp: socket.socket, msg: clc.Message) -> None:
    tcp.sendall(msg.encode())


def _recv(tcp: socket.socket, cfg: HandshakeConfig) -> clc.Message:
    try:
        return clc.decode(clc.read_message(tcp, cfg.timeout))
    except clc.ClcError as exc:
        raise HandshakeError(f"invalid CLC message: {exc}") from exc
    except TimeoutError as exc:
        raise HandshakeError(str(exc), "ETIMEDOUT") from exc


def _decline(tcp: socket.socket, reason: int, out_of_sync: bool = False) -> Fallback:
    _send(tcp, clc.Decline(peer_diagnosis=reason, out_of_sync=out_of_sync))
    return Fallback(reason)


def client(host: ShmHost, tcp: socket.socket, cfg: HandshakeConfig,
           name: str = "client") -> ShmConnection | Fallback:
    """Run the client side on a connected TCP socket."""
    cfg.check()
    dev = host.dev
    gid, gid_ext = dev.get_local_gid()
    ueid = clc.ueid_bytes(cfg.ueid)
    _send(tcp, clc.Proposal(ueids=(ueid,), gidchids=((gid, dev.chid), (gid_ext, dev.chid))))
    msg = _recv(tcp, cfg)
    if isinstance(msg, clc.Decline):
        return Fallback(clc.SMC_CLC_DECL_PEERDECL, msg.peer_diagnosis)
    if not isinstance(msg, clc.AcceptConfirm) or msg.type != clc.ACCEPT:
        raise HandshakeError(f"expected an Accept, got {type(msg).__name__}")
    if msg.chid != dev.chid:
        raise HandshakeError(f"Accept names CHID {msg.chid:#06x}, we offered {dev.chid:#06x}")
    peer = (msg.gid, msg.gid_ext)
    if msg.first_contact:
        lgr = host.new_lgr(peer)
    else:
        found = host.find_lgr(peer)
        if found is None:
            return _decline(tcp, clc.SMC_CLC_DECL_SYNCERR, out_of_sync=True)
        lgr = found
    conn = ShmConnection(host, lgr, name=name)
    try:
        desc = conn.buf_create(cfg.dmb_size, cfg.sndbuf_size)
    except NoSpace:
        return _decline(tcp, clc.SMC_CLC_DECL_MAX_DMB)
    conn.save_peer_info(msg.token, msg.dmbe_idx, clc.uncompress_bufsize(msg.dmbe_size))
    if conn.mode is SmcdMode.MERGED:
        try:
            conn.buf_attach()
        except DeviceOpError:
            conn.conn_free()
            return _decline(tcp, clc.SMC_CLC_DECL_MEM)
    _send(tcp, clc.AcceptConfirm(
        type=clc.CONFIRM, first_contact=msg.first_contact, gid=gid, token=desc.token,
        dmbe_idx=0, dmbe_size=clc.compress_bufsize(cfg.dmb_size), linkid=lgr.linkid,
        chid=dev.chid, eid=msg.eid, gid_ext=gid_ext))
    conn.activate()
    return conn


def server(host: ShmHost, tcp: socket.socket, cfg: HandshakeConfig,
           name: str = "server") -> ShmConnection | Fallback:
    """Run the server side on an accepted TCP socket."""
    cfg.check()
    dev = host.dev
    gid, gid_ext = dev.get_local_gid()
    msg = _recv(tcp, cfg)
    if isinstance(msg, clc.Decline):
        return Fallback(clc.SMC_CLC_DECL_PEERDECL, msg.peer_diagnosis)
    if not isinstance(msg, clc.Proposal):
        raise HandshakeError(f"expected a Proposal, got {type(msg).__name__}")
    ueid = clc.ueid_bytes(cfg.ueid)
    if not msg.ueids:
        return _decline(tcp, clc.SMC_CLC_DECL_NOUEID)
    if ueid not in msg.ueids:
        return _decline(tcp, clc.SMC_CLC_DECL_NOSMCDDEV)
    entries = list(msg.gidchids)
    offered = any(entries[i] == (gid, dev.chid) and entries[i + 1] == (gid_ext, dev.chid)
                  for i in range(len(entries) - 1))
    if not offered:
        return _decline(tcp, clc.SMC_CLC_DECL_NOSMCD2DEV)
    peer = (gid, gid_ext)  # loopback: the client is on this device
    found = host.find_lgr(peer)
    lgr = found or host.new_lgr(peer)
    conn = ShmConnection(host, lgr, name=name)
    try:
        desc = conn.buf_create(cfg.dmb_size, cfg.sndbuf_size)
    except NoSpace:
        return _decline(tcp, clc.SMC_CLC_DECL_MAX_DMB)
    _send(tcp, clc.AcceptConfirm(
        type=clc.ACCEPT, first_contact=found is None, gid=gid, token=desc.token, dmbe_idx=0,
        dmbe_size=clc.compress_bufsize(cfg.dmb_size), linkid=lgr.linkid, chid=dev.chid,
        eid=ueid, gid_ext=gid_ext))
    try:
        reply = _recv(tcp, cfg)
    except HandshakeError:
        conn.conn_free()
        raise
    if isinstance(reply, clc.Decline):
        conn.conn_free()
        return Fallback(clc.SMC_CLC_DECL_PEERDECL, reply.peer_diagnosis)
    if not isinstance(reply, clc.AcceptConfirm) or reply.type != clc.CONFIRM:
        conn.conn_free()
        raise HandshakeError(f"expected a Confirm, got {type(reply).__name__}")
    conn.save_peer_info(reply.token, reply.dmbe_idx, clc.uncompress_bufsize(reply.dmbe_size))
    if conn.mode is SmcdMode.MERGED:
        try:
            conn.buf_attach()
        except DeviceOpError as exc:
            conn.conn_free()
            raise HandshakeError(f"cannot attach the client's DMB: {exc}", "ENOMEM") from exc
    conn.activate()
    return conn


def open_pair(host_a: ShmHost, host_b: ShmHost | None = None, *, dmb_size: int = 16384,
              sndbuf_size: int | None = None, names: tuple[str, str] = ("a", "b"),
              conn_cls: type[ShmConnection] = ShmConnection, separate_lgrs: bool = False,
              attach: tuple[bool, bool] = (True, True), start: int = 0,
              ) -> tuple[ShmConnection, ShmConnection]:
    """Two connected endpoints without CLC (the state a handshake leaves; any DMB size).

    ``dmb_size`` includes the 32-byte CDC header and must be a multiple of 8. ``conn_cls``
    builds both endpoints (a variant under test); ``separate_lgrs`` gives each its own link
    group even on one host; ``attach`` says which side has already attached its ghost sndbuf
    (merged mode; a side that has not calls ``buf_attach`` itself). ``start`` is the test hook
    :meth:`ShmConnection.start_after` on both ends (cursors as after that many bytes each way).
    """
    host_b = host_b or host_a
    gid = host_a.dev.get_local_gid()
    lgr_a = host_a.find_lgr(gid) or host_a.new_lgr(gid)
    lgr_b = lgr_a if host_b is host_a and not separate_lgrs else host_b.new_lgr(gid)
    a = conn_cls(host_a, lgr_a, name=names[0])
    b = conn_cls(host_b, lgr_b, name=names[1])
    da = a.buf_create(dmb_size, sndbuf_size)
    db = b.buf_create(dmb_size, sndbuf_size)
    a.save_peer_info(db.token, 0, db.size)
    b.save_peer_info(da.token, 0, da.size)
    a.clcsock, b.clcsock = PairClcsock.pair()
    if a.mode is SmcdMode.MERGED:
        if attach[0]:
            a.buf_attach()
        if attach[1]:
            b.buf_attach()
    if start:
        a.start_after(start)
        b.start_after(start)
    a.activate()
    b.activate()
    return a, b
