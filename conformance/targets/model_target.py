"""The project's loopback-ism model as a target (``--target model``), and the base of the zoo.

Theory of operation
-------------------
:class:`ModelTarget` owns three model devices: a v6.11+ "nocopy" device for the device operations,
another one for merged-mode pairs, and a v6.10-style copy device for copy-mode pairs (the kernel
merges whenever the device supports it, so a copy-mode pair needs a device without nocopy). The
device operations thus see only the DMBs they registered, as the spec's device does. Every model
error that
carries a kernel errno (``DeviceOpError.errno_name``) becomes a refusal with that code; any other
exception escaping the model is a broken target (ERROR), never hidden.

The classes used for the device, the connections and the link groups are constructor arguments,
so a zoo mutant is a :class:`ModelTarget` built with a subclass that reintroduces one bug; the
model's files are never edited.

Handles: DMB tokens are the device's (random, seeded per reset for reproducibility); connection
handles are small ints chosen here.
"""

from __future__ import annotations

from typing import Any

from smcd_check.conformance.targets.adapter import Capability, Observation, Op, TargetBroken


class ModelTarget:
    """The model behind the adapter interface.

    Args:
        device_cls: the loopback-ism device class (a mutant may subclass it).
        conn_cls: the connection class used for both endpoints of a pair.
        lgr_cls: the link-group class.
        name: label for reports.
        seed: seed of the devices' token generator (fixed: runs are reproducible).
    """

    capabilities = frozenset({Capability.DEVICE, Capability.DEVICE_NOCOPY,
                              Capability.CONN_COPY, Capability.CONN_MERGED,
                              Capability.CONN_STEPS, Capability.LINK_GROUP, Capability.LGR,
                              Capability.CDC_INJECT, Capability.CONN_STATE,
                              Capability.URGENT})

    def __init__(self, *, device_cls: Any = None, conn_cls: Any = None, lgr_cls: Any = None,
                 name: str = "model", seed: int = 7, lgr_list_cls: Any = None) -> None:
        from smcd_check.model import connection, device, lgr

        self._connection = connection
        self.device_cls = device_cls or device.LoopbackIsm
        self.conn_cls = conn_cls or connection.SmcdConnection
        self.lgr_cls = lgr_cls or lgr.SmcdLinkGroup
        self.lgr_list_cls = lgr_list_cls or lgr.SmcdLgrList
        self.name = name
        self.seed = seed
        self.reset()

    def reset(self) -> None:
        self.dev = self.device_cls(seed=self.seed)
        # connections get devices of their own, so the device operations see only their DMBs
        self.dev_merged = self.device_cls(seed=self.seed + 1)
        self.dev_copy = self.device_cls(seed=self.seed + 2, nocopy=False)
        # stepped pairs (conn_open_steps): devices whose rx tasklets run only when asked
        self.dev_merged_steps = self.device_cls(seed=self.seed + 3, sync_tasklets=False)
        self.dev_copy_steps = self.device_cls(seed=self.seed + 4, nocopy=False,
                                              sync_tasklets=False)
        self.handles: dict[int, Any] = {}  # token -> SmcdDmb handle of the owner or attacher
        # link-group choice (lgr_conn_create): a device of its own, like the connections'
        self.lgr_list = self.lgr_list_cls(self.device_cls(seed=self.seed + 5),
                                          lgr_cls=self.lgr_cls)
        self.conns: dict[int, Any] = {}
        self._next_conn = 1
        self.sndbuf_lens: dict[int, int] = {}
        self.removed: set[str] = set()  # connection devices gone (lgr_dev_remove)
        self.lgrs: dict[int, Any] = {}  # lgr handle -> link group (never reused)
        self._lgr_ids: dict[int, int] = {}  # id(link group) -> handle

    def close(self) -> None:
        """Nothing to release."""

    # ------------------------------------------------------------------ dispatch

    def apply(self, op: Op) -> Observation:
        from smcd_check.model.device import DeviceOpError

        a = op.kwargs()
        try:
            return self._dispatch(op.name, a)
        except DeviceOpError as exc:
            return Observation.failure(exc.errno_name, str(exc))
        except (KeyError, TypeError, ValueError) as exc:
            raise TargetBroken(f"{op.name}: {type(exc).__name__}: {exc}") from exc

    def _dispatch(self, name: str, a: dict[str, Any]) -> Observation:
        if name == "dev_register_dmb":
            dmb = self.dev.register_dmb(a["size"])
            self.handles[dmb.dmb_tok] = dmb
            return Observation.success({"token": dmb.dmb_tok, "sba_idx": dmb.sba_idx,
                                        "len": dmb.dmb_len})
        if name == "dev_unregister_dmb":
            self.dev.unregister_dmb(a["token"])
            return Observation.success()
        if name == "dev_attach_dmb":
            dmb = self.dev.attach_dmb(a["token"])
            self.handles.setdefault(dmb.dmb_tok, dmb)
            return Observation.success({"token": dmb.dmb_tok, "sba_idx": dmb.sba_idx,
                                        "len": dmb.dmb_len})
        if name == "dev_detach_dmb":
            self.dev.detach_dmb(a["token"])
            return Observation.success()
        if name == "dev_move_data":
            data = bytes.fromhex(a["data"])
            self.dev.move_data(a["token"], 0, bool(a["signal"]), a["offset"], data)
            return Observation.success()
        if name == "dev_read_dmb":
            return self._read_dmb(a["token"], a["offset"], a["size"])
        if name in ("conn_open", "conn_open_steps"):
            return self._open(a["mode"], a["dmb_size"], a["sndbuf_size"],
                              stepped=name == "conn_open_steps")
        if name == "conn_open_urg":  # an ordinary pair, its cursors started at `start`
            return self._open(a["mode"], a["dmb_size"], a["sndbuf_size"], start=a["start"])
        if name == "conn_step":
            return self._step(a["conn"], a["step"])
        if name == "lgr_conn_create":
            return self._lgr_conn_create(a)
        if name.startswith("lgr_"):
            return self._lgr_op(name, a)
        if name == "cdc_inject":
            return self._inject(a["conn"], a["data"])
        if name == "conn_state":
            return self._state(a["conn"])
        if name.startswith("conn_"):
            return self._conn_op(name, a)
        raise TargetBroken(f"the model target has no operation {name}")

    def _read_dmb(self, token: Any, offset: Any, size: Any) -> Observation:
        info = self.dev.lookup(token) if isinstance(token, int) else None
        handle = self.handles.get(token) if isinstance(token, int) else None
        if info is None or handle is None:
            return Observation.failure("EINVAL", f"unknown DMB token {token!r}")
        if not (isinstance(offset, int) and isinstance(size, int) and offset >= 0 and size >= 0
                and offset + size <= info.len):
            return Observation.failure("EINVAL", f"offset={offset} size={size} outside the DMB")
        return Observation.success({"data": bytes(handle.cpu_addr[offset:offset + size]).hex()})

    def _open(self, mode: Any, dmb_size: Any, sndbuf_size: Any, *,
              stepped: bool = False, start: int = 0) -> Observation:
        conn = self._connection
        if mode not in ("copy", "merged"):
            return Observation.failure("EINVAL", f"mode={mode!r}: expected 'copy' or 'merged'")
        if mode in self.removed:
            return Observation.failure("ENODEV", f"the {mode} connection device was removed")
        if stepped:
            dev = self.dev_merged_steps if mode == "merged" else self.dev_copy_steps
            cls = _stepped_class(self.conn_cls)
        else:
            dev = self.dev_merged if mode == "merged" else self.dev_copy
            cls = self.conn_cls
        kwargs: dict[str, Any] = {"dmb_size": dmb_size, "conn_cls": cls,
                                  "lgr_cls": self.lgr_cls, "conn_create": not stepped,
                                  "initial_bytes": start}
        if mode == "copy":
            kwargs["sndbuf_size"] = sndbuf_size
            kwargs["peer_sndbuf_size"] = sndbuf_size
        a, b = conn.open_pair(dev, mode, **kwargs)
        ida, idb = self._next_conn, self._next_conn + 1
        self._next_conn += 2
        self.conns[ida], self.conns[idb] = a, b
        self.sndbuf_lens[ida], self.sndbuf_lens[idb] = a.sndbuf_len, b.sndbuf_len
        for c in (b, a):
            self._lgr_handle(c.lgr)
        return Observation.success({"a": ida, "b": idb})

    def _lgr_conn_create(self, a: dict[str, Any]) -> Observation:
        from smcd_check.model.lgr import LinkGroupBusy

        if a["role"] not in ("client", "server"):
            return Observation.failure("EINVAL", f"role={a['role']!r}: expected 'client' or "
                                                 "'server'")
        try:
            lgr, first = self.lgr_list.conn_create(
                _LgrMember(), peer_gid=a["peer_gid"], peer_gid_ext=a["peer_gid_ext"],
                vlan=a["vlan"], first_contact_peer=bool(a["first_contact_peer"]),
                client=a["role"] == "client")
        except LinkGroupBusy as exc:
            return Observation.failure("ENOENT", str(exc))
        return Observation.success({"lgr": id(lgr), "first_contact": first})

    def _step(self, handle: Any, kind: Any) -> Observation:
        """``conn_step`` on an endpoint of a stepped pair (see :func:`_stepped_class`)."""
        c = self.conns.get(handle) if isinstance(handle, int) else None
        if c is None:
            return Observation.failure("EBADF", f"unknown connection {handle!r}")
        if not getattr(c, "stepped", False):
            return Observation.failure("EINVAL", "conn_step: the pair was not opened with "
                                                 "conn_open_steps")
        if kind == "move":
            done = c.step_move()
        elif kind == "cdc":
            done = c.step_cdc()
        elif kind == "tasklet":
            done = c.smcd.run_tasklet(c)
        else:
            return Observation.failure("EINVAL", f"step={kind!r}: expected 'move', 'cdc' or "
                                                 "'tasklet'")
        if not done:
            return Observation.failure("EAGAIN", f"conn_step {kind}: nothing to do now")
        return Observation.success()
    def _state(self, handle: Any) -> Observation:
        """``conn_state``: the model socket's own fields."""
        import errno

        conn = self._connection
        c = self.conns.get(handle) if isinstance(handle, int) else None
        if c is None:
            return Observation.failure("EBADF", f"unknown connection {handle!r}")

        def names(flags: int) -> list[str]:
            return [n for bit, n in ((conn.SMC_CONN_PEER_DONE_WRITING, "peer_done_writing"),
                                     (conn.SMC_CONN_PEER_CONN_CLOSED, "peer_conn_closed"),
                                     (conn.SMC_CONN_PEER_CONN_ABORT, "peer_conn_abort"))
                    if flags & bit]

        return Observation.success({
            "sk_state": f"SMC_{c.sk_state.name}",
            "sk_err": errno.errorcode.get(c.sk_err, "") if c.sk_err else "",
            "sk_shutdown": c.sk_shutdown, "dead": bool(c.user_closed or c.user_aborted
                                                       or c.killed),
            "freed": bool(c.freed), "tx_flags": names(c.local_tx_ctrl.conn_state_flags),
            "rx_flags": names(c.local_rx_ctrl.conn_state_flags)})

    def _inject(self, handle: Any, data: Any) -> Observation:
        """``cdc_inject``: write the header into the endpoint's DMB with move_data(sf=1), as a
        peer does; the rx tasklet runs at once and validates it (``_cdc_rx_validate``)."""
        c = self.conns.get(handle) if isinstance(handle, int) else None
        if c is None:
            return Observation.failure("EBADF", f"unknown connection {handle!r}")
        try:
            raw = bytes.fromhex(data)
        except (TypeError, ValueError):
            return Observation.failure("EINVAL", "data: expected a hex string")
        if len(raw) != 32:
            return Observation.failure("EINVAL", f"data: a CDC header is 32 bytes, got "
                                                 f"{len(raw)}")
        if c.freed:
            # its DMB went back to the link group and may be a later connection's now: the
            # operation is about this endpoint, whose connection no longer takes CDCs
            return Observation.failure("EPIPE", "the endpoint's connection was freed")
        before = c.rx_protocol_error
        desc = c.rmb_desc
        c.smcd.move_data(desc.token, desc.sba_idx, True, 0, raw)  # BrokenPipe -> EPIPE
        why = c.rx_protocol_error
        if why is not None and why is not before:
            return Observation.success({"accepted": False, "check": why.split(":")[0]})
        return Observation.success({"accepted": True, "check": None})

    # ------------------------------------------------------------------ link groups

    def _lgr_handle(self, lgr: Any) -> int:
        handle = self._lgr_ids.get(id(lgr))
        if handle is None:
            handle = len(self.lgrs) + 1
            self._lgr_ids[id(lgr)] = handle
            self.lgrs[handle] = lgr
        return handle

    def _mode_dev(self, mode: Any) -> Any:
        return {"merged": self.dev_merged, "copy": self.dev_copy}.get(mode) \
            if isinstance(mode, str) else None

    def _lgr_op(self, name: str, a: dict[str, Any]) -> Observation:
        from smcd_check.model import lgr as lgr_mod

        if name in ("lgr_of", "lgr_dmb"):
            c = self.conns.get(a["conn"]) if isinstance(a["conn"], int) else None
            if c is None:
                return Observation.failure("EBADF", f"unknown connection {a['conn']!r}")
            if name == "lgr_of":
                lgr = c.lgr
                state = "gone" if lgr.gone else "listed" if lgr in c.smcd.lgr_list else "freeing"
                return Observation.success({
                    "lgr": self._lgr_handle(lgr), "first_contact": bool(c.first_contact),
                    "state": state, "conns_num": 0 if lgr.gone else lgr.conns_num})
            desc = c.rmb_desc
            info = c.smcd.lookup(desc.token)  # the node outlives dma_addr while ghosts hold it
            return Observation.success({
                "token": desc.token, "sba_idx": desc.sba_idx, "len": desc.size,
                "refcnt": info.refcnt if info is not None else 0, "used": bool(desc.used)})
        if name in ("lgr_dev", "lgr_dev_remove"):
            dev = self._mode_dev(a["mode"])
            if dev is None:
                return Observation.failure("EINVAL", f"mode={a['mode']!r}: expected 'copy' or "
                                                     "'merged'")
            if name == "lgr_dev":
                return Observation.success({"dmb_cnt": dev.dmb_cnt, "lgr_cnt": dev.lgr_cnt,
                                            "listed": len(dev.lgr_list)})
            if a["mode"] in self.removed:
                return Observation.failure("ENODEV", f"the {a['mode']} device is gone")
            self.removed.add(a["mode"])
            lgr_mod.terminate_all(dev)  # CDCs run their receivers' tasklets at once
            return Observation.success()
        lgr = self.lgrs.get(a["lgr"]) if isinstance(a["lgr"], int) else None
        if lgr is None or lgr.gone:
            return Observation.failure("EINVAL", f"unknown or freed link group {a['lgr']!r}")
        if name == "lgr_terminate":
            lgr.terminate()
            return Observation.success()
        if name == "lgr_free_work":
            if not lgr.free_scheduled:
                return Observation.failure("EAGAIN", "no delayed free is queued for this link "
                                                     "group")
            lgr.free_work()
            return Observation.success()
        raise TargetBroken(f"the model target has no operation {name}")

    def _conn_op(self, name: str, a: dict[str, Any]) -> Observation:
        c = self.conns.get(a["conn"]) if isinstance(a["conn"], int) else None
        if c is None:
            return Observation.failure("EBADF", f"unknown connection {a['conn']!r}")
        if name == "conn_send":
            try:
                data = bytes.fromhex(a["data"])
            except (TypeError, ValueError):
                return Observation.failure("EINVAL", "data: expected a hex string")
            return Observation.success({"n": c.send(data)})
        if name == "conn_recv":
            data = c.recv(a["max"])
            return Observation.success({"data": data.hex(), "eof": bool(c.eof)})
        if name == "conn_send_oob":
            try:
                data = bytes.fromhex(a["data"])
            except (TypeError, ValueError):
                return Observation.failure("EINVAL", "data: expected a hex string")
            return Observation.success({"n": c.send(data, oob=True)})
        if name == "conn_recv_oob":
            return Observation.success({"data": c.recv(a["max"], oob=True).hex()})
        if name == "conn_atmark":
            return Observation.success({"atmark": bool(c.atmark())})
        if name == "conn_set_oobinline":
            if not isinstance(a["on"], bool):
                return Observation.failure("EINVAL", f"on={a['on']!r}: expected a boolean")
            c.set_oobinline(a["on"])
            return Observation.success()
        if name == "conn_shutdown":
            c.shutdown()
            return Observation.success()
        if name == "conn_close":
            c.close()
            return Observation.success()
        if name == "conn_abort":
            c.abort()
            return Observation.success()
        if name == "conn_cursors":
            s = c.snapshot()
            # bytes_to_rcv / sndbuf_space as SIOCINQ / SIOCOUTQ show them: 0 and the whole
            # sndbuf once the socket is SMC_CLOSED (smc_ioctl)
            closed = s.sk_state == int(self._connection.SmcSockState.CLOSED)
            # the sndbuf's size as opened (a killed or freed endpoint no longer has its
            # sndbuf: merged, the ghost was detached)
            sndbuf_len = self.sndbuf_lens.get(a["conn"], c.sndbuf_len)
            return Observation.success({
                "prod": [s.tx_prod_wrap, s.tx_prod_count],
                "peer_cons": [s.rx_cons_wrap, s.rx_cons_count],
                "sndbuf_space": sndbuf_len if closed else s.sndbuf_space,
                "peer_rmbe_space": s.peer_rmbe_space,
                "cons": [s.tx_cons_wrap, s.tx_cons_count],
                "peer_prod": [s.rx_prod_wrap, s.rx_prod_count],
                "bytes_to_rcv": 0 if closed else s.bytes_to_rcv,
            })
        raise TargetBroken(f"the model target has no operation {name}")


class _LgrMember:
    """A connection as far as its link group sees it (lgr_conn_create makes no socket)."""

    alert_token_local = 0

    def _conn_kill(self) -> None:
        """Nothing to kill: no socket behind it."""


# --- stepped pairs (conn_open_steps, issue 17): the model's own methods, run one at a time

_STEPPED: dict[type, type] = {}


def _stepped_class(base: type) -> type:
    """``base`` (the model's connection class or a mutant's) with its automatic internal steps
    held back: ``smc_tx_sndbuf_nonempty`` does nothing (a corked ``sendmsg``: moves and the data
    CDC wait for ``step_move`` / ``step_cdc``), and the window update that
    ``smc_tx_consumer_update`` decides on during a read is written only by ``step_cdc``. Every
    decision stays the class's own (a mutant's override included): only *when* it runs changes.
    """
    from smcd_check.model.connection import SMC_CONN_PEER_CONN_ABORT

    cls = _STEPPED.get(base)
    if cls is not None:
        return cls

    class Stepped(base):  # type: ignore[misc, valid-type]
        stepped = True
        _defer_cdc = False
        data_cdc_due = False
        upd_cdc_due = False

        def _tx_sndbuf_nonempty(self) -> int:
            return 0  # corked: moved and announced only by conn_step

        def _rx_update_consumer(self, length: int) -> None:
            self._defer_cdc = True
            try:
                super()._rx_update_consumer(length)
            finally:
                self._defer_cdc = False

        def _cdc_get_slot_and_msg_send(self) -> int:
            if self._defer_cdc:
                self.upd_cdc_due = True  # the window update is decided, written by step_cdc
                return 0
            rc: int = super()._cdc_get_slot_and_msg_send()
            return rc

        def step_move(self) -> bool:
            """``smc_tx_rdma_writes`` alone (the first half of smcd_tx_sndbuf_nonempty)."""
            if (self.data_cdc_due or self.killed or self._tx_prepared_sends() <= 0
                    or self.peer_rmbe_space <= 0
                    or self.local_rx_ctrl.conn_state_flags & SMC_CONN_PEER_CONN_ABORT):
                return False
            with self.smcd.local_bh_disable():
                self._tx_rdma_writes()
            self.data_cdc_due = True
            return True

        def step_cdc(self) -> bool:
            """The CDC that is due: the data CDC after a move (it carries the consumer cursor
            too) or the decided window update."""
            if self.killed or not (self.data_cdc_due or self.upd_cdc_due):
                return False
            with self.smcd.local_bh_disable():
                if self.data_cdc_due:
                    self._cdc_msg_send()
                else:
                    self._cdc_get_slot_and_msg_send()
            self.data_cdc_due = self.upd_cdc_due = False
            return True

    Stepped.__name__ = Stepped.__qualname__ = f"Stepped{base.__name__}"
    _STEPPED[base] = Stepped
    return Stepped


def make_model() -> ModelTarget:
    """Factory for ``--target smcd_check.conformance.targets.model_target:make_model``."""
    return ModelTarget()
