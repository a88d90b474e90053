"""Spec-target backend for connected sockets with their link groups and DMBs.

Capabilities ``lgr-lifecycle`` (link groups and the connections' own DMBs), ``cdc-inject`` (a
hostile peer's CDC, :mod:`smcd_check.spec.cdc_rx`) and ``conn-state`` (the socket), on top of
``conn-copy`` / ``conn-merged``.

Theory of operation
-------------------
:class:`~.spec_conn.ConnBackend` runs the data path (:mod:`smcd_check.spec.datapath`) and the
socket close machine (:mod:`smcd_check.spec.close`) of every pair. :class:`LgrConnBackend`
extends it with what :mod:`smcd_check.spec.lifecycle` owns: the link groups, DMB descriptors
and the device's DMB table of each *connection device* (one loopback-ism host per mode, the
devices ``conn_open`` uses; the ``dev_*`` operations never see them). Every transition is a
lifecycle function; this module only decides which one a socket call means and keeps the three
spec pieces in step:

* ``conn_open`` is the handshake's part of the lifecycle on one host, in kernel order: the
  server's ``smc_conn_create`` and ``__smc_buf_create`` (it answers the Proposal), then the
  client's (told by the Accept whether the server created a link group), then the client's
  ``smcd_buf_attach`` / peer info (after the Accept) and the server's (after the Confirm). So the
  first pair creates two link groups (the server's, then the client's) and a later pair joins
  the first listed one whose ``smcd_lgr_match`` holds, *both* ends (SMC-D does not compare the
  role), reusing an unused DMB descriptor of the size first (``smc_buf_get_slot``).
* ``conn_shutdown`` / ``conn_close`` / ``conn_abort`` that the close machine accepts are mirrored
  into the lifecycle (``shutdown_conn``, ``close_conn``, ``abort_close``); after every call the
  connections whose sockets are done are freed (``smc_conn_free``: detach the ghost, unuse the
  DMB, unregister, drop the lgr reference) and a released link group without holders frees its
  DMBs (``smc_lgr_free_bufs``). The delayed free of an empty link group waits for
  ``lgr_free_work`` (the kernel's 10-minute timer, made explicit).
* ``lgr_terminate`` / ``lgr_dev_remove`` run ``terminate_sched`` + ``terminate_work`` on one or
  every listed link group. Each killed connection is then killed in the data path and the close
  machine too (``smc_conn_kill`` = ``smc_close_abort`` + ``smc_close_active_abort``: the abort
  CDC reaches the peer), and freed at once when its socket had begun closing
  (:func:`~smcd_check.spec.lifecycle.free_killed_conn`). A killed socket stays open for its
  application: ``send`` -> EPIPE (``smc_sendmsg``: SMC_CLOSED), ``recv`` -> ENOTCONN, or EOF when
  RCV_SHUTDOWN was already set (``smc_recvmsg``), ``shutdown`` -> ENOTCONN (``smc_shutdown``),
  ``close`` succeeds and frees it; ``conn_abort`` on it sends nothing more.

Handles: the lifecycle reuses the lowest free link-group id and DMB token; the kernel never
reuses an lgr id and draws random tokens, so this backend hands out handles of its own that are
never reused (a freed link group's handle is then unknown: EINVAL) and registers DMBs with
tokens from a counter disjoint from the ``device`` backend's.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from smcd_check.conformance.targets.adapter import Capability, Observation, Op
from smcd_check.conformance.targets.spec_conn import (
    CDC_LEN,
    DMB_SIZES,
    NOT_MODELLED,
    ConnBackend,
)

MODES = ("copy", "merged")
#: sk_state values from which smc_close_active_abort frees a killed connection at once
_FREE_AT_KILL = frozenset({"PEERCLOSEWAIT1", "PEERCLOSEWAIT2", "PEERFINCLOSEWAIT",
                           "PROCESSABORT", "APPFINCLOSEWAIT"})
LGR_OPS = frozenset({"lgr_of", "lgr_dmb", "lgr_dev", "lgr_terminate", "lgr_free_work",
                     "lgr_dev_remove"})


@dataclass(slots=True)
class _Dev:
    """One connection device (one loopback-ism host) with its lifecycle state."""

    mode: str
    cfg: Any
    state: Any
    token_base: int
    removed: bool = False
    next_token: int = 1
    #: lifecycle lgr id -> handle, for the link groups that exist now
    lgr_handle: dict[int, int] = field(default_factory=dict)


@dataclass(slots=True)
class _Endpoint:
    """What this backend remembers of one endpoint beyond the lifecycle state."""

    mode: str
    token: int
    sba_idx: int
    size: int
    lgr: int  #: handle of the link group it joined


class LgrConnBackend(ConnBackend):
    """:class:`ConnBackend` plus the lifecycle of the connection devices, injected CDCs and the
    socket state (capabilities ``lgr-lifecycle``, ``cdc-inject``, ``conn-state``)."""

    capabilities = ConnBackend.capabilities | {Capability.LGR, Capability.CDC_INJECT,
                                               Capability.CONN_STATE}
    ops = ConnBackend.ops | LGR_OPS | {"cdc_inject", "conn_state"}

    def __init__(self) -> None:
        from smcd_check.spec import cdc_rx, lifecycle

        self.lc = lifecycle
        self.rx = cdc_rx
        super().__init__()
        self.reset()

    def reset(self) -> None:
        super().reset()
        lc = self.lc
        self.devs: dict[str, _Dev] = {}
        for i, mode in enumerate(MODES):
            cfg = lc.LifecycleConfig(n_hosts=1, emulated=True, merged=mode == "merged",
                                     max_conns=1 << 30, dmb_sizes=tuple(range(7)))
            self.devs[mode] = _Dev(mode=mode, cfg=cfg, state=lc.initial_state(cfg),
                                   token_base=(i + 1) << 40)
        self.endpoints: dict[int, _Endpoint] = {}
        #: killed endpoints: their socket as the kill left it (close machine endpoint, cursor
        #: snapshot). Nothing reaches a killed connection any more: smc_conn_kill unset it in
        #: smcd->conn[] (a later CDC to it fails with -EPIPE) and killed its rx tasklet
        self.frozen: dict[int, tuple[Any, Observation]] = {}
        self.lgr_by_handle: dict[int, tuple[str, int]] = {}
        self._next_lgr = 1
        #: endpoints that refused an injected CDC: the check that refused it
        self.violations: dict[int, str] = {}

    # ------------------------------------------------------------------ dispatch

    def apply(self, op: Op) -> Observation:
        obs = self._apply(op)
        self._refreeze()
        return obs

    def _refreeze(self) -> None:
        for cid, (ep, _) in self.frozen.items():
            pair = self.pairs.get(cid // 2)
            if pair is not None:
                pair.sock = pair.sock.put("a" if cid % 2 == 0 else "b", ep)

    def _cursors(self, pair: Any, side: str) -> Observation:
        pid = next((p for p, x in self.pairs.items() if x is pair), None)
        frozen = self.frozen.get(2 * pid + (side == "b")) if pid is not None else None
        if frozen is not None:
            return frozen[1]
        result: Observation = super()._cursors(pair, side)
        return result

    def _apply(self, op: Op) -> Observation:
        a = op.kwargs()
        if op.name in LGR_OPS:
            return self._lgr_op(op.name, a)
        if op.name == "cdc_inject":
            return self._inject(a["conn"], a["data"])
        if op.name == "conn_state":
            return self._state(a["conn"])
        if op.name in ("conn_open", "conn_cursors", "conn_open_steps", "conn_step") or \
                not op.name.startswith("conn_"):
            return super().apply(op)
        found = self._locate(a.get("conn"))
        if isinstance(found, Observation):
            return found
        pair, side = found
        if pair.handles[side] in ("killed", "violated"):
            return self._killed_call(pair, side, a["conn"], op.name)
        sock = pair.sock.get(side)
        if (op.name == "conn_recv" and pair.handles[side] == "open"
                and sock.sk_state is self.sc.SmcState.CLOSED):
            # smc_recvmsg (af_smc.c): an SMC_CLOSED socket returns 0 at once if RCV_SHUTDOWN
            # is set - unread data or not (the peer's abort closed a socket that had shut
            # down) - and -ENOTCONN otherwise
            if sock.sk_shutdown & self.sc.RCV_SHUTDOWN:
                return Observation.success({"data": "", "eof": True})
            return Observation.failure("ENOTCONN", "smc_recvmsg: the socket is SMC_CLOSED")
        cid = a["conn"]
        ep = self.endpoints.get(cid)
        dev = self.devs[ep.mode] if ep is not None else None
        close_sends = self.sc.close_sends_cdc(pair.sock.get(side))
        if op.name == "conn_close" and dev is not None:
            # smc_close_final decides closed vs abort on bytes_to_rcv (the data path's)
            _, r = self._dirs(pair, side)
            self._set_unread(dev, cid, r.state.bytes_to_rcv > 0)
        obs = super().apply(op)
        if dev is None or not obs.ok:
            return obs
        lc = self.lc
        if op.name == "conn_shutdown":
            c = lc.get_conn(dev.state, cid)
            if (c.stage is lc.Stage.ESTABLISHED and not (c.freed or c.closed or c.killed)
                    and not c.tx_flags & (lc.PEER_DONE_WRITING | lc.PEER_CONN_CLOSED
                                          | lc.PEER_CONN_ABORT)):
                dev.state = lc.shutdown_conn(dev.cfg, dev.state, cid)
        elif op.name == "conn_close":
            # the close machine decides whether this close sends a CDC at all
            self._lc_close(dev, cid, sends=close_sends)
        elif op.name == "conn_abort":
            # the vocabulary's abort is smc_conn_kill, and the handle is gone with it
            c = lc.get_conn(dev.state, cid)
            if not (c.freed or c.killed) and c.registered:
                dev.state = lc.kill_conn(dev.cfg, dev.state, cid)
            if not lc.get_conn(dev.state, cid).freed:
                dev.state = lc.free_killed_conn(dev.cfg, dev.state, cid)
            # nothing reaches a killed connection any more
            self.frozen[cid] = (pair.sock.get(side), super()._cursors(pair, side))
        self._settle(dev)
        return obs

    # ------------------------------------------------------------------ opening a pair

    def _open(self, mode: Any, dmb_size: Any, sndbuf_size: Any, **kw: Any) -> Observation:
        dev = self.devs.get(mode) if isinstance(mode, str) else None
        if dev is not None and dev.removed:
            return Observation.failure("ENODEV", f"the {mode} connection device was removed "
                                                 "(no SMC-D device: the connect falls back)")
        obs: Observation = super()._open(mode, dmb_size, sndbuf_size, **kw)
        if not obs.ok or dev is None or kw.get("stepped"):
            return obs  # a stepped pair (regression traces) has no link-group view
        lc = self.lc
        a_cid, b_cid = obs.get("a"), obs.get("b")
        pid = a_cid // 2
        size = DMB_SIZES.index(dmb_size)
        s = dev.state
        try:
            s, _cid, b_first = lc.create_conn(dev.cfg, s, pair=pid, role=lc.Role.SERV, host=0,
                                              peer_host=0, vlan=0, smcd_version=lc.SMC_V2)
            s, b_tok = self._buf_create(dev, s, b_cid, size)
            s, _cid, _a_first = lc.create_conn(dev.cfg, s, pair=pid, role=lc.Role.CLNT, host=0,
                                               peer_host=0, vlan=0, smcd_version=lc.SMC_V2,
                                               first_contact_peer=b_first)
            s, a_tok = self._buf_create(dev, s, a_cid, size)
            peer_info = lc.attach_dmb if dev.cfg.merged else lc.save_peer_info
            s = peer_info(dev.cfg, s, a_cid, b_tok)  # client: after the Accept
            s = peer_info(dev.cfg, s, b_cid, a_tok)  # server: after the Confirm
        except lc.NoFreeSlot as exc:
            del self.pairs[pid]
            return Observation.failure("ENOSPC", str(exc))
        dev.state = s
        self._sync_lgrs(dev)
        for cid, tok in ((a_cid, a_tok), (b_cid, b_tok)):
            c = lc.get_conn(s, cid)
            node = lc.find_node(s, tok)
            assert c.lgr is not None and node is not None
            self.endpoints[cid] = _Endpoint(mode=mode, token=tok, sba_idx=node.sba_idx,
                                            size=dmb_size, lgr=dev.lgr_handle[c.lgr])
        return obs

    def _buf_create(self, dev: _Dev, s: Any, cid: int, size: int) -> tuple[Any, int]:
        """``__smc_buf_create`` for the DMB: the lifecycle's size search, with our token."""
        lc = self.lc
        action = lc.dmb_search(dev.cfg, s, cid, size)
        if action is None:
            raise lc.NoFreeSlot(f"conn {cid}: no DMB slot for any size (SMC_CLC_DECL_MAX_DMB)")
        if isinstance(action, lc.HostReuseDmb):
            result: tuple[Any, int] = lc.reuse_dmb(dev.cfg, s, cid, action.size)
            return result
        token = dev.token_base + dev.next_token
        dev.next_token += 1
        result = lc.register_dmb(dev.cfg, s, cid, action.size, token=token)
        return result

    # ------------------------------------------------------------------ lifecycle upkeep

    def _set_unread(self, dev: _Dev, cid: int, unread: bool) -> None:
        lc = self.lc
        c = lc.get_conn(dev.state, cid)
        if c.unread != unread:
            dev.state = lc.replace(dev.state, conns=tuple(
                lc.replace(x, unread=unread) if x.cid == cid else x for x in dev.state.conns))

    def _lc_close(self, dev: _Dev, cid: int, *, sends: bool = True) -> None:
        lc = self.lc
        c = lc.get_conn(dev.state, cid)
        if not (c.freed or c.closed) and c.stage is lc.Stage.ESTABLISHED:
            dev.state = lc.close_conn(dev.cfg, dev.state, cid, sends=sends)

    def _settle(self, dev: _Dev) -> None:
        """Free every connection whose socket is done, then every released link group's DMBs."""
        lc = self.lc
        s = dev.state
        progress = True
        while progress:
            progress = False
            for c in s.conns:
                if lc.may_free(c):
                    if c.ghost_token is not None:
                        s = lc.detach_conn(dev.cfg, s, c.cid)
                    s = lc.free_conn(dev.cfg, s, c.cid)
                    progress = True
                    break
            for lgr in s.lgrs:
                if lgr.dying and lgr.rmbs:
                    s = lc.unregister_lgr_dmb(dev.cfg, s, lgr.lgr_id, lc.free_order(s, lgr)[0])
                    progress = True
                    break
        dev.state = s
        self._sync_lgrs(dev)

    def _sync_lgrs(self, dev: _Dev) -> None:
        """Give new link groups fresh handles; forget the handles of freed ones."""
        live = {lg.lgr_id for lg in dev.state.lgrs}
        for lgr_id in [i for i in dev.lgr_handle if i not in live]:
            del self.lgr_by_handle[dev.lgr_handle.pop(lgr_id)]
        for lgr_id in sorted(live - set(dev.lgr_handle)):
            handle = self._next_lgr
            self._next_lgr += 1
            dev.lgr_handle[lgr_id] = handle
            self.lgr_by_handle[handle] = (dev.mode, lgr_id)

    # ------------------------------------------------------------------ killed sockets

    def _kill(self, dev: _Dev, before: Any, after: Any, lgr_ids: list[int]) -> None:
        """Mirror the connections ``terminate_work`` killed into the data path and the close
        machine, in the order it killed them (each link group's ``conns_all``: registration
        order); free those whose socket had begun closing."""
        lc = self.lc
        killed = [cid for lgr_id in lgr_ids for cid in lc.get_lgr(before, lgr_id).conns
                  if lc.get_conn(after, cid).killed and not lc.get_conn(before, cid).killed]
        for cid in killed:
            found = self._locate(cid)
            if isinstance(found, Observation):
                continue
            pair, side = found
            state = pair.sock.get(side).sk_state.name
            status = pair.handles[side]
            ConnBackend._abort(self, pair, side, None)  # smc_close_abort + active_abort
            pair.handles[side] = "killed" if status == "open" else status
            self.frozen[cid] = (pair.sock.get(side), super()._cursors(pair, side))
            c = lc.get_conn(dev.state, cid)
            if state in _FREE_AT_KILL and not c.freed:
                dev.state = lc.free_killed_conn(dev.cfg, dev.state, cid)
            elif status != "open" and not c.closed and not c.freed:
                # the application had closed it already: the socket is done
                dev.state = lc.close_conn(dev.cfg, dev.state, cid)

    def _killed_call(self, pair: Any, side: str, cid: int, name: str) -> Observation:
        """A socket call on an endpoint whose link group killed it (af_smc.c, SMC_CLOSED), or
        that refused a CDC (EPROTO for everything but close and abort)."""
        ep = pair.sock.get(side)
        if pair.handles[side] == "violated" and name not in ("conn_close", "conn_abort"):
            return Observation.failure("EPROTO", f"{name}: the connection was aborted: the "
                                                 f"peer's CDC failed the check "
                                                 f"{self.violations.get(cid)!r}")
        if name == "conn_send":
            return Observation.failure("EPIPE", "smc_sendmsg: the socket is SMC_CLOSED (its "
                                                "link group terminated it)")
        if name == "conn_recv":
            if ep.sk_shutdown & self.sc.RCV_SHUTDOWN:
                return Observation.success({"data": "", "eof": True})
            return Observation.failure("ENOTCONN", "smc_recvmsg: SMC_CLOSED without "
                                                   "RCV_SHUTDOWN (killed by its link group)")
        if name == "conn_shutdown":
            return Observation.failure("ENOTCONN", "smc_shutdown: the socket is SMC_CLOSED")
        dev = self.devs[self.endpoints[cid].mode]
        lc = self.lc
        c = lc.get_conn(dev.state, cid)
        if name == "conn_close":
            pair.sock = self.sc.close(pair.sock, side, unread=False)  # type: ignore[arg-type]
            pair.handles[side] = "closed"
            self.frozen[cid] = (pair.sock.get(side), self.frozen[cid][1])
            if not (c.freed or c.closed):
                dev.state = lc.close_conn(dev.cfg, dev.state, cid)
        else:  # conn_abort: the abort went out when it was killed; nothing more is sent
            pair.handles[side] = "aborted"
            if not c.freed:
                dev.state = lc.free_killed_conn(dev.cfg, dev.state, cid)
        self._settle(dev)
        return Observation.success({})

    # ------------------------------------------------------------------ socket state

    def _state(self, cid: Any) -> Observation:
        """``conn_state``: the close machine's endpoint, the lifecycle's ``freed``."""
        found = self._locate(cid)
        if isinstance(found, Observation):
            return found
        pair, side = found
        frozen = self.frozen.get(cid)
        ep = frozen[0] if frozen is not None else pair.sock.get(side)
        endpoint = self.endpoints[cid]
        c = self.lc.get_conn(self.devs[endpoint.mode].state, cid)

        def names(flags: Any) -> list[str]:
            return [n for n in ("peer_done_writing", "peer_conn_closed", "peer_conn_abort")
                    if getattr(flags, n)]

        return Observation.success({
            "sk_state": ep.sk_state.value, "sk_err": "EPROTO" if cid in self.violations
            else ep.sk_err, "sk_shutdown": ep.sk_shutdown, "dead": ep.dead, "freed": c.freed,
            "tx_flags": names(ep.tx), "rx_flags": names(ep.rx)})

    # ------------------------------------------------------------------ injected CDCs

    def _rx_view(self, pair: Any, side: str) -> Any:
        """The endpoint's ``local_rx_ctrl`` and co., read from its two data-path directions.

        The connection-state flags come from the close machine's endpoint (``ep.rx``: the
        one ``local_rx_ctrl.conn_state_flags`` of the connection), not from the two
        directions: each direction models its own close, and the idle direction's
        ``WriterClose`` sends ``peer_conn_closed`` where the kernel's one ``smc_close_final``
        sends ``peer_conn_abort`` because the connection has unread data (net/smc/smc_close.c).
        """
        w, r = self._dirs(pair, side)
        rx = pair.sock.get(side).rx
        flags = ((0x80 if rx.peer_done_writing else 0) | (0x40 if rx.peer_conn_closed else 0)
                 | (0x20 if rx.peer_conn_abort else 0))
        return self.rx.RxView(rmb_len=r.cfg.ring_size, peer_rmbe_size=w.cfg.ring_size,
                              prod=r.state.r_rx_prod, cons=w.state.w_rx_cons,
                              conn_state_flags=flags, bytes_to_rcv=r.state.bytes_to_rcv,
                              peer_rmbe_space=w.state.peer_rmbe_space)

    def _inject(self, cid: Any, data: Any) -> Observation:
        """``cdc_inject``: the peer writes a CDC header into the endpoint's DMB and signals it."""
        lc = self.lc
        found = self._locate(cid)
        if isinstance(found, Observation):
            return found
        pair, side = found
        try:
            raw = bytes.fromhex(data)
        except (TypeError, ValueError):
            return Observation.failure("EINVAL", "data: expected a hex string")
        if len(raw) != 32:
            return Observation.failure("EINVAL", f"data: a CDC header is 32 bytes, got "
                                                 f"{len(raw)}")
        ep = self.endpoints[cid]
        dev = self.devs[ep.mode]
        c = lc.get_conn(dev.state, cid)
        if c.killed or c.freed:
            # smc_lo_move_data copies, then finds no live connection set for the slot
            return Observation.failure("EPIPE", "the endpoint's DMB has no live connection "
                                                "(killed or freed): nothing processes the CDC")
        if pair.handles[side] != "open":
            return Observation.failure(NOT_MODELLED, "a CDC into an endpoint its application "
                                                     "closed but that is not freed yet")
        view = self._rx_view(pair, side)
        check = self.rx.check_cdc(view, raw)
        if check is None:
            msg = self.rx.parse(raw)
            _, r = self._dirs(pair, side)
            blocked = 0x80 if r.state.r_peer_write_blocked else 0
            if (msg.prod, msg.cons, msg.conn_state_flags, msg.prod_flags) != (
                    view.prod, view.cons, view.conn_state_flags, blocked):
                return Observation.failure(NOT_MODELLED, "an injected CDC that passes every "
                                           "check but changes the receiver's view (it would "
                                           "announce bytes the spec never saw written)")
            return Observation.success({"accepted": True, "check": None})
        # refused: the receiver aborts the connection (smc_conn_kill), its calls fail EPROTO
        self.violations[cid] = check
        if c.registered:
            dev.state = lc.kill_conn(dev.cfg, dev.state, cid)
        if pair.sock.get(side).sk_state.name in _FREE_AT_KILL:  # smc_close_active_abort
            dev.state = lc.free_killed_conn(dev.cfg, dev.state, cid)
        ConnBackend._abort(self, pair, side, None)
        pair.handles[side] = "violated"
        self.frozen[cid] = (pair.sock.get(side), super()._cursors(pair, side))
        self._settle(dev)
        return Observation.success({"accepted": False, "check": check})

    # ------------------------------------------------------------------ lgr operations

    def _lgr_op(self, name: str, a: dict[str, Any]) -> Observation:
        lc = self.lc
        if name in ("lgr_of", "lgr_dmb"):
            conn = a["conn"]
            ep = self.endpoints.get(conn) if isinstance(conn, int) else None
            if ep is None:
                return Observation.failure("EBADF", f"unknown connection {conn!r}")
            dev = self.devs[ep.mode]
            if name == "lgr_of":
                c = lc.get_conn(dev.state, conn)
                where = self.lgr_by_handle.get(ep.lgr)
                lgr = lc.find_lgr(dev.state, where[1]) if where is not None else None
                state = "gone" if lgr is None else "listed" if lgr.listed else "freeing"
                return Observation.success({
                    "lgr": ep.lgr, "first_contact": c.first_contact, "state": state,
                    "conns_num": len(lgr.conns) if lgr is not None else 0})
            node = lc.find_node(dev.state, ep.token)
            desc = next((d for d in dev.state.descs if d.token == ep.token), None)
            return Observation.success({
                "token": ep.token, "sba_idx": ep.sba_idx, "len": ep.size,
                "refcnt": node.refcnt if node is not None else 0,
                "used": bool(desc is not None and desc.used)})
        if name in ("lgr_dev", "lgr_dev_remove"):
            mode = a["mode"]
            found_dev = self.devs.get(mode) if isinstance(mode, str) else None
            if found_dev is None:
                return Observation.failure("EINVAL", f"mode={mode!r}: expected 'copy' or "
                                                     "'merged'")
            dev = found_dev
            if name == "lgr_dev":
                s = dev.state
                return Observation.success({
                    "dmb_cnt": len(s.nodes), "lgr_cnt": len(s.lgrs),
                    "listed": sum(1 for lg in s.lgrs if lg.listed)})
            if dev.removed:
                return Observation.failure("ENODEV", f"the {mode} connection device is gone")
            dev.removed = True
            before = dev.state
            listed = [lg.lgr_id for lg in before.lgrs if lg.listed]
            s = before
            for lgr_id in listed:  # smc_smcd_terminate_all: all off the list first ...
                s = lc.terminate_sched(dev.cfg, s, lgr_id)
            for lgr_id in listed:  # ... then each terminated in list order
                s = lc.terminate_work(dev.cfg, s, lgr_id)
            dev.state = s
            self._kill(dev, before, s, listed)
            self._settle(dev)
            return Observation.success({})
        handle = a["lgr"]
        where = self.lgr_by_handle.get(handle) if isinstance(handle, int) else None
        if where is None:
            return Observation.failure("EINVAL", f"unknown or freed link group {handle!r}")
        dev = self.devs[where[0]]
        lgr = lc.get_lgr(dev.state, where[1])
        before = dev.state
        if name == "lgr_terminate":
            if not lgr.listed or lgr.terminating:
                return Observation.success({})  # smc_lgr_terminate_sched: already terminating
            s = lc.terminate_sched(dev.cfg, before, lgr.lgr_id)
            dev.state = lc.terminate_work(dev.cfg, s, lgr.lgr_id)
            self._kill(dev, before, dev.state, [lgr.lgr_id])
        else:  # lgr_free_work
            if not lgr.free_pending:
                return Observation.failure("EAGAIN", "no delayed free is queued for this link "
                                                     "group (it has connections, or it is "
                                                     "freed or terminating already)")
            dev.state = lc.lgr_free_delayed(dev.cfg, before, lgr.lgr_id)
        self._settle(dev)
        return Observation.success({})


__all__ = ["CDC_LEN", "LGR_OPS", "LgrConnBackend"]
