"""The bug zoo: mutants of the model that each reintroduce a bug the Linux kernel really had.

Theory of operation
-------------------
A mutant is the project's model (:class:`~.model_target.ModelTarget`) built
with a subclass of the device or connection class that overrides one method the way the kernel
did before a fix (the model's files are never edited). ``--target zoo:NAME`` runs the suite
against it; the suite must *kill* every mutant (at least one FAIL, from a catalogue case or the
lockstep test) while the clean model passes: that is the evidence that the catalogue sees each
bug class. :func:`kill_table` produces the table mutant -> kernel fix -> killing case ids.

Two mutants are of the CLC receive path, which the model does not implement: they are the spec's
codec with the Dec-2024 proposal checks switched off (the ``_need`` guard of the named fields
made lenient while the call runs), standing in for an implementation's parser that lacks them.

Kernel fixes are named by title and upstream commit where one exists; where the bug is a class
the kernel guards against rather than one fix, the entry says so.
"""

from __future__ import annotations

import contextlib
import errno
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from smcd_check.conformance.targets.adapter import (
    Capability,
    Observation,
    Op,
    Target,
    TargetLoadError,
)


@dataclass(frozen=True, slots=True, kw_only=True)
class Mutant:
    """One zoo entry."""

    name: str
    summary: str
    kernel_fix: str
    build: Callable[[], Target]

    def to_json(self) -> dict[str, str]:
        return {"name": self.name, "summary": self.summary, "kernel_fix": self.kernel_fix}


# ------------------------------------------------------------------------------------------
# connection mutants


def _conn_classes() -> tuple[Any, Any]:
    from smcd_check.model import connection

    return connection, connection.SmcdConnection


def _model(name: str, *, conn: Any = None, device: Any = None, lgr: Any = None,
           lgr_list: Any = None) -> Target:
    from smcd_check.conformance.targets.model_target import ModelTarget

    return ModelTarget(conn_cls=conn, device_cls=device, lgr_cls=lgr, lgr_list_cls=lgr_list,
                       name=f"zoo:{name}")


def _wnd_limit_min() -> Target:
    _, base = _conn_classes()

    class WndLimitMin(base):  # type: ignore[misc, valid-type]
        @staticmethod
        def _rmb_wnd_update_limit(length: int, sock_min_sndbuf: int) -> int:
            return min(length // 10, sock_min_sndbuf // 2)  # v5.x: min instead of max

    return _model("wnd-limit-min", conn=WndLimitMin)


def _sender_free_reversed() -> Target:
    connection, base = _conn_classes()

    class SenderFreeReversed(base):  # type: ignore[misc, valid-type]
        def _tx_consumer_update(self, force: bool) -> None:
            # pre-b8649efad879: sender_free = len - smc_curs_diff(len, &prod, &cfed)
            rmb_len = self.rmb_len
            cfed = self.rx_curs_confirmed
            to_confirm = self._curs_diff(rmb_len, cfed, self.local_tx_ctrl.cons)
            sender_free = rmb_len
            if to_confirm > self.rmbe_update_limit:
                sender_free = rmb_len - self._curs_diff(rmb_len, self.local_rx_ctrl.prod, cfed)
            flags = self.local_rx_ctrl.prod_flags
            if (flags & connection.SMC_PROD_CONS_CURS_UPD_REQ or force or (
                    to_confirm > self.rmbe_update_limit
                    and (sender_free <= rmb_len // 2
                         or flags & connection.SMC_PROD_WRITE_BLOCKED))):
                if self.killed or (self.local_rx_ctrl.conn_state_flags
                                   & connection.SMC_CONN_PEER_CONN_ABORT):
                    return
                if self._cdc_get_slot_and_msg_send() < 0 and not self.killed:
                    self.tx_work_pending = True
                    return
            if flags & connection.SMC_PROD_WRITE_BLOCKED and not self.bytes_to_rcv:
                self.local_rx_ctrl.prod_flags &= ~connection.SMC_PROD_WRITE_BLOCKED

    return _model("sender-free-reversed", conn=SenderFreeReversed)


def _no_consumer_update() -> Target:
    _, base = _conn_classes()

    class NoConsumerUpdate(base):  # type: ignore[misc, valid-type]
        def _tx_consumer_update(self, force: bool) -> None:
            return  # the reader never announces its consumer cursor

    return _model("no-consumer-update", conn=NoConsumerUpdate)


def _diff_ignores_wrap() -> Target:
    _, base = _conn_classes()

    class DiffIgnoresWrap(base):  # type: ignore[misc, valid-type]
        def _curs_diff(self, size: int, old: Any, new: Any) -> int:
            return max(0, new.count - old.count)  # compares counts only: a full lap is 0

    return _model("diff-ignores-wrap", conn=DiffIgnoresWrap)


def _merged_frees_at_send() -> Target:
    connection, base = _conn_classes()

    class MergedFreesAtSend(base):  # type: ignore[misc, valid-type]
        def _cdc_msg_send(self) -> int:
            rc: int = super()._cdc_msg_send()
            me: Any = self
            if rc == 0 and me.mode is connection.SmcdMode.MERGED and me.sndbuf_desc:
                # pre-cc0ab806fc52 accounting: free the (ghost) sndbuf once the CDC is out
                me.sndbuf_space += me._curs_diff(me.sndbuf_desc.len, me.tx_curs_fin,
                                                     me.tx_curs_sent)
                me.tx_curs_fin = me.tx_curs_sent
            return rc

        def _cdc_msg_recv(self, msg: Any) -> None:
            me: Any = self
            fin = me.tx_curs_fin
            space = me.sndbuf_space
            super()._cdc_msg_recv(msg)
            if me.mode is connection.SmcdMode.MERGED:
                me.tx_curs_fin, me.sndbuf_space = fin, space  # no update from the cursor

    return _model("merged-frees-at-send", conn=MergedFreesAtSend)


def _copy_space_forgets_in_flight() -> Target:
    connection, base = _conn_classes()

    class SpaceForgetsInFlight(base):  # type: ignore[misc, valid-type]
        def _cdc_msg_send(self) -> int:
            rc: int = super()._cdc_msg_send()
            me: Any = self
            if rc == 0 and me.mode is connection.SmcdMode.COPY and me.sndbuf_desc:
                # frees up to tx_curs_prep: bytes not yet moved count as free
                me.sndbuf_space += me._curs_diff(me.sndbuf_desc.len, me.tx_curs_fin,
                                                     me.tx_curs_prep)
                me.tx_curs_fin = me.tx_curs_prep
            return rc

    return _model("copy-space-forgets-in-flight", conn=SpaceForgetsInFlight)


def _eof_before_data() -> Target:
    _, base = _conn_classes()

    class EofBeforeData(base):  # type: ignore[misc, valid-type]
        def recv(self, n: int) -> bytes:
            from smcd_check.model.connection import RCV_SHUTDOWN

            if self.sk_shutdown & RCV_SHUTDOWN and not self.killed:
                self._check_usable("recv")
                return b""  # pre-107529e31a87: RCV_SHUTDOWN checked before available data
            data: bytes = super().recv(n)
            return data

        @property
        def eof(self) -> bool:
            from smcd_check.model.connection import RCV_SHUTDOWN

            return bool(self.sk_shutdown & RCV_SHUTDOWN) or bool(super().eof)

    return _model("eof-before-data", conn=EofBeforeData)


# ------------------------------------------------------------------------------------------
# device mutants


def _device_cls() -> Any:
    from smcd_check.model import device

    return device.LoopbackIsm


def _unregister_frees_attached() -> Target:
    base = _device_cls()

    class FreeOnUnregister(base):  # type: ignore[misc, valid-type]
        def unregister_dmb(self, dmb_tok: int) -> None:
            node = self._lookup(dmb_tok, "unregister_dmb")
            self._release(node)  # v6.10 semantics: free at once, attached peers or not

    return _model("unregister-frees-attached", device=FreeOnUnregister)


def _attach_no_ref() -> Target:
    base = _device_cls()

    class AttachNoRef(base):  # type: ignore[misc, valid-type]
        def attach_dmb(self, dmb_tok: int) -> Any:
            dmb = super().attach_dmb(dmb_tok)
            node = self._lookup(dmb_tok, "attach_dmb")
            node.refcnt -= 1  # the ghost holds no reference
            return dmb

    return _model("attach-no-ref", device=AttachNoRef)


def _move_no_bounds() -> Target:
    base = _device_cls()

    class NoBounds(base):  # type: ignore[misc, valid-type]
        def __init__(self, **kwargs: Any) -> None:
            kwargs["bounds_check"] = False  # v6.12.0 / first dibs: callers were trusted
            super().__init__(**kwargs)

        def _copy(self, node: Any, offset: int, data: Any) -> None:
            end = min(offset + len(data), node.len)  # Python cannot scribble past the buffer
            if end > offset:
                node.cpu_addr[offset:end] = bytes(data)[: end - offset]

    return _model("move-no-bounds", device=NoBounds)


def _move_sf0_looks_up() -> Target:
    base = _device_cls()

    class Sf0LooksUp(base):  # type: ignore[misc, valid-type]
        def move_data(self, dmb_tok: int, idx: int, sf: bool, offset: int, data: Any) -> int:
            if not sf and self.nocopy:
                self._lookup(dmb_tok, "move_data")  # copy-mode behaviour on a nocopy device
                return 0
            rc: int = super().move_data(dmb_tok, idx, sf, offset, data)
            return rc

    return _model("move-sf0-looks-up", device=Sf0LooksUp)


# ------------------------------------------------------------------------------------------
# link-group mutant (issue 17: the explorer fault lgr-reuse-peer-mismatch in the model)


def _lgr_reuse_ignores_peer() -> Target:
    from smcd_check.model.lgr import SmcdLgrList

    class MatchPrecedence(SmcdLgrList):
        def _lgr_match(self, lgr: Any, peer_gid: int, peer_gid_ext: int) -> bool:
            # b40584d14570 (v6.8): "gid == && smcd == && virtual ? ext == : 1" - by C
            # precedence every link group of another peer matches
            if lgr.peer_gid == peer_gid and lgr.smcd is self.smcd and self.virtual:
                return bool(lgr.peer_gid_ext == peer_gid_ext)
            return True

    return _model("lgr-reuse-ignores-peer", lgr_list=MatchPrecedence)
# ------------------------------------------------------------------------------------------
# link-group mutants (issue 12: the lifecycle of link groups and their DMBs)


def _lgr_cls() -> Any:
    from smcd_check.model import lgr

    return lgr.SmcdLinkGroup


def _lgr_match_no_gid_ext() -> Target:
    base = _lgr_cls()

    class MatchWithoutStoredExt(base):  # type: ignore[misc, valid-type]
        def __init__(self, dev: Any, **kwargs: Any) -> None:
            from smcd_check.model.device import SmcdGid

            peer = kwargs.get("peer_gid")
            if peer is not None:  # smc_lgr_create copies the 64-bit gid only
                kwargs["peer_gid"] = SmcdGid(gid=peer.gid, gid_ext=0)
            super().__init__(dev, **kwargs)

    return _model("lgr-match-no-gid-ext", lgr=MatchWithoutStoredExt)


def _dmb_leak_killed() -> Target:
    _, base = _conn_classes()

    class NoPutWhenUnregistered(base):  # type: ignore[misc, valid-type]
        def _conn_free(self) -> None:
            me: Any = self
            if not me.freed and me.killed and not me.alert_token_local:
                me.freed = True  # pre-lgr_put: a connection no longer registered is "done"
                return
            super()._conn_free()

    return _model("dmb-leak-killed", conn=NoPutWhenUnregistered)


def _join_keeps_free_work() -> Target:
    base = _lgr_cls()

    class JoinKeepsFreeWork(base):  # type: ignore[misc, valid-type]
        def register_conn(self, conn: Any) -> int:
            me: Any = self
            queued = bool(me.free_scheduled)
            token: int = super().register_conn(conn)
            me.free_scheduled = queued  # before 77f838ace755: the delayed free stays queued
            return token

    return _model("join-keeps-free-work", lgr=JoinKeepsFreeWork)


def _removed_device_connects() -> Target:
    from smcd_check.conformance.targets.model_target import ModelTarget

    class GoingAwayUnchecked(ModelTarget):
        # smcd->going_away is kept by this harness (ModelTarget.removed): forgetting it after
        # smc_smcd_terminate_all is the device search that does not skip a disappearing device
        def apply(self, op: Op) -> Observation:
            obs: Observation = super().apply(op)
            if op.name == "lgr_dev_remove" and obs.ok:
                self.removed.clear()
            return obs

    return GoingAwayUnchecked(name="zoo:removed-device-connects")


def _dmb_leak_used() -> Target:
    base = _lgr_cls()

    class FreeBufsSkipsUsed(base):  # type: ignore[misc, valid-type]
        def _lgr_free_bufs(self) -> None:
            for descs in self.rmbs.values():
                for desc in list(descs):
                    if not desc.used:  # a killed connection's DMB is never unused: leaked
                        self.smcd_buf_free(desc)

    return _model("dmb-leak-used", lgr=FreeBufsSkipsUsed)


def _cdc_unchecked() -> Target:
    _, base = _conn_classes()

    class Unchecked(base):  # type: ignore[misc, valid-type]
        validate_peer_cdc = False  # 6.12.118: smcd_cdc_msg_to_host copies the peer's cursors

    return _model("cdc-unchecked", conn=Unchecked)


def _cdc_backwards_as_overrun() -> Target:
    _, base = _conn_classes()

    class OneForwardCheck(base):  # type: ignore[misc, valid-type]
        def _cdc_rx_validate(self, msg: Any) -> str | None:
            why: str | None = super()._cdc_rx_validate(msg)
            if why is not None and why.split(":")[0].endswith("-backwards"):
                # a single "how far ahead" test: a step back reads as a huge step forward
                return why.replace("-backwards", "-overrun", 1)
            return why

    return _model("cdc-backwards-as-overrun", conn=OneForwardCheck)


def _sock_leak_appfinclosewait() -> Target:
    connection, base = _conn_classes()

    class LeakAppFin(base):  # type: ignore[misc, valid-type]
        _skip_free = False

        def close(self) -> None:
            me: Any = self
            me._skip_free = me.sk_state is connection.SmcSockState.APPFINCLOSEWAIT
            try:
                super().close()
            finally:
                me._skip_free = False

        def _conn_free(self) -> None:
            if not self._skip_free:  # the close from APPFINCLOSEWAIT never frees
                super()._conn_free()

    return _model("sock-leak-appfinclosewait", conn=LeakAppFin)


def _close_no_peerclosewait2() -> Target:
    connection, base = _conn_classes()

    class NoPeerCloseWait2(base):  # type: ignore[misc, valid-type]
        def _on_cdc_flags(self, flags: int) -> None:
            me: Any = self
            S = connection.SmcSockState
            was = me.sk_state
            super()._on_cdc_flags(flags)
            if was is S.PEERCLOSEWAIT1 and me.sk_state is S.PEERCLOSEWAIT2:
                me.sk_state = S.PEERCLOSEWAIT1  # the state is missing from the machine

    return _model("close-no-peerclosewait2", conn=NoPeerCloseWait2)


# ------------------------------------------------------------------------------------------
# CLC receive mutants (the spec's codec without some of its checks)


def _urg_flag_not_cleared() -> Target:
    connection, base = _conn_classes()

    class UrgFlagNotCleared(base):  # type: ignore[misc, valid-type]
        def _tx_sndbuf_nonempty(self) -> int:
            # smcd_tx_sndbuf_nonempty without its last step: urg_data_pending/present stay set
            # after the CDC that carried the urgent byte, so every later call skips the data
            # write (the bytes after an urgent byte never move)
            if self._tx_prepared_sends() <= 0 or self.peer_rmbe_space <= 0:
                return 0
            if self.killed or (self.local_rx_ctrl.conn_state_flags
                               & connection.SMC_CONN_PEER_CONN_ABORT):
                return -errno.EPIPE
            rc = 0
            if not self.local_tx_ctrl.prod_flags & connection.SMC_PROD_URG_DATA_PRESENT:
                rc = self._tx_rdma_writes()
            if rc == 0:
                rc = self._cdc_msg_send()
            return int(rc)

    return _model("urg-flag-not-cleared", conn=UrgFlagNotCleared)


def _urg_byte_in_band() -> Target:
    _, base = _conn_classes()

    class UrgByteInBand(base):  # type: ignore[misc, valid-type]
        def _cdc_handle_urg_data_arrival(self, diff_prod: int) -> int:
            # the urgent byte is counted in bytes_to_rcv even without SO_OOBINLINE
            inline = self.oobinline  # type: ignore[has-type]
            self.oobinline = True
            try:
                return int(super()._cdc_handle_urg_data_arrival(diff_prod))
            finally:
                self.oobinline = inline

    return _model("urg-byte-in-band", conn=UrgByteInBand)


class LenientClcTarget:
    """``clc_decode`` with the checks of the named fields switched off."""

    capabilities = frozenset({Capability.CLC})

    def __init__(self, name: str, fields: frozenset[str]) -> None:
        from smcd_check.conformance.targets.spec_clc import ClcBackend

        self.name = name
        self.fields = fields
        self.backend = ClcBackend()

    @contextlib.contextmanager
    def _lenient(self) -> Iterator[None]:
        from smcd_check.spec import clc

        strict = clc._need
        fields = self.fields

        def need(cond: bool, err: Any, field: str, *rest: Any) -> None:
            if field in fields:
                return
            strict(cond, err, field, *rest)

        clc._need = need  # type: ignore[assignment]
        try:
            yield
        finally:
            clc._need = strict  # type: ignore[assignment]

    def reset(self) -> None:
        """Stateless."""

    def apply(self, op: Op) -> Observation:
        with self._lenient():
            try:
                result: Observation = self.backend.apply(op)
            except Exception as exc:  # a parser without checks may crash on what it reads
                return Observation.failure("EIO", f"{type(exc).__name__}: {exc}")
        return result

    def close(self) -> None:
        """Nothing to release."""


def _clc_no_count_checks() -> Target:
    return LenientClcTarget("zoo:clc-no-count-checks", frozenset({
        "pclc_v2_ext.hdr.eid_cnt", "eid_cnt", "pclc_v2_ext.hdr.ism_gid_cnt", "ism_gid_cnt",
        "pclc_prfx.ipv6_prefixes_cnt", "ipv6_prefixes_cnt"}))


def _clc_no_offset_checks() -> Target:
    return LenientClcTarget("zoo:clc-no-offset-checks", frozenset({
        "pclc_smcd.v2_ext_offset", "iparea_offset"}))


# ------------------------------------------------------------------------------------------
# handshake mutants (the spec's handshake endpoints with one kernel rule changed, standing in
# for an implementation's CLC state machine that lacks a fix)


class HandshakeMutant:
    """``hs_*`` on the spec's machines, with ``tweak(op, endpoint, observation)`` applied."""

    capabilities = frozenset({Capability.HANDSHAKE})

    def __init__(self, name: str, tweak: Callable[[Any, Op, Observation], Observation],
                 patch: Callable[[], contextlib.AbstractContextManager[None]] | None = None
                 ) -> None:
        from smcd_check.conformance.targets.spec_handshake import SpecHandshakeBackend

        self.name = name
        self.backend = SpecHandshakeBackend()
        self.tweak = tweak
        self.patch = patch or contextlib.nullcontext

    def reset(self) -> None:
        self.backend.reset()

    def apply(self, op: Op) -> Observation:
        if op.name == "hs_eof" and self.name == "zoo:hs-eof-as-timeout":
            op = Op.make("hs_timeout", ep=op.arg("ep"))
        with self.patch():
            obs = self.backend.apply(op)
        ep = self.backend.eps.get(op.arg("ep")) if op.name != "hs_new" else None
        return self.tweak(ep, op, obs) if obs.ok else obs

    def close(self) -> None:
        """Nothing to release."""


def _with(obs: Observation, **changes: Any) -> Observation:
    value = {k: obs.get(k) for k, _ in obs.value}
    value.update(changes)
    return Observation.success(value)


def _hs_timeout_eagain() -> Target:
    def tweak(ep: Any, op: Op, obs: Observation) -> Observation:
        outcome = obs.get("outcome")
        if (op.name == "hs_timeout" and ep is not None and ep.state.role.value == "client"
                and outcome and outcome.get("errno") == 110):
            return _with(obs, outcome={**outcome, "errno": 11})
        return obs

    return HandshakeMutant("zoo:hs-timeout-eagain", tweak)


def _hs_eof_as_timeout() -> Target:
    return HandshakeMutant("zoo:hs-eof-as-timeout", lambda ep, op, obs: obs)


def _drop_effect(name: str, effect: str) -> Target:
    def tweak(ep: Any, op: Op, obs: Observation) -> Observation:
        effects = obs.get("effects")
        kept = [e for e in effects if e.get("effect") != effect]
        return _with(obs, effects=kept) if kept != effects else obs

    return HandshakeMutant(f"zoo:{name}", tweak)


def _hs_prefix_ignores_length() -> Target:
    @contextlib.contextmanager
    def patch() -> Iterator[None]:
        from smcd_check.spec import handshake

        strict = handshake._server_prefix_matches

        def lenient(cfg: Any, prefix: Any) -> bool:
            if prefix.ipv6_prefixes or cfg.ipv4 is None:
                return False
            addr, plen = cfg.ipv4
            mask = (0xFFFFFFFF << (32 - plen)) & 0xFFFFFFFF if plen else 0
            return (int.from_bytes(prefix.outgoing_subnet, "big") & mask) == (addr & mask)

        handshake._server_prefix_matches = lenient  # type: ignore[assignment]
        try:
            yield
        finally:
            handshake._server_prefix_matches = strict  # type: ignore[assignment]

    return HandshakeMutant("zoo:hs-prefix-ignores-length", lambda ep, op, obs: obs, patch)


# ------------------------------------------------------------------------------------------

_ALL = (
    Mutant(name="wnd-limit-min",
           summary="window-update limit min(len/10, SOCK_MIN_SNDBUF/2): updates far too often",
           kernel_fix="6bf536eb5c8c net/smc: correct settings of RMB window update limit",
           build=_wnd_limit_min),
    Mutant(name="sender-free-reversed",
           summary="sender_free from smc_curs_diff(prod, confirmed): arguments reversed, "
                   "no window update when the sender is short of space",
           kernel_fix="b8649efad879 net/smc: fix sender_free computation",
           build=_sender_free_reversed),
    Mutant(name="no-consumer-update",
           summary="the reader never sends a consumer-cursor update: the writer stalls",
           kernel_fix="bug class of smc_tx_consumer_update (spec fault no-consumer-update); "
                      "cf. e82f2e31f559 net/smc: optimize consumer cursor updates",
           build=_no_consumer_update),
    Mutant(name="diff-ignores-wrap",
           summary="cursor difference by count only: a full lap reads as 0 bytes",
           kernel_fix="wrap handling of smc_curs_diff (spec fault comp-ignores-wrap); cf. "
                      "b8649efad879 (differences across a wrap)",
           build=_diff_ignores_wrap),
    Mutant(name="merged-frees-at-send",
           summary="merged mode frees ghost-sndbuf space at send time, not when the peer "
                   "consumes: unconsumed data is overwritten",
           kernel_fix="cc0ab806fc52 net/smc: adapt cursor update when sndbuf and peer DMB are "
                      "merged",
           build=_merged_frees_at_send),
    Mutant(name="copy-space-forgets-in-flight",
           summary="copy mode frees the sndbuf up to tx_curs_prep: unmoved bytes are counted "
                   "as free and overwritten",
           kernel_fix="sndbuf accounting of smcd_cdc_msg_send (frees up to tx_curs_sent only); "
                      "spec fault space-forgets-in-flight",
           build=_copy_space_forgets_in_flight),
    Mutant(name="eof-before-data",
           summary="recv reports EOF once RCV_SHUTDOWN is set although data is still pending",
           kernel_fix="107529e31a87 net/smc: receive pending data after RCV_SHUTDOWN",
           build=_eof_before_data),
    Mutant(name="unregister-frees-attached",
           summary="unregister_dmb frees the DMB although a peer's ghost sndbuf is attached",
           kernel_fix="c3a910f2380f net/smc: implement DMB-merged operations of loopback-ism "
                      "(refcounted nodes); 6.12.114 stable UAF fix in attach/detach/unregister",
           build=_unregister_frees_attached),
    Mutant(name="attach-no-ref",
           summary="attach_dmb takes no reference: the last detach/unregister frees early",
           kernel_fix="c3a910f2380f net/smc: implement DMB-merged operations of loopback-ism "
                      "(refcount_inc in attach)",
           build=_attach_no_ref),
    Mutant(name="move-no-bounds",
           summary="move_data without the offset/size check (v6.12.0)",
           kernel_fix="78237e3c0720 dibs: loopback: validate offset and size in move_data() "
                      "(6.12.97 backport)",
           build=_move_no_bounds),
    Mutant(name="move-sf0-looks-up",
           summary="nocopy move_data with sf=0 still looks the token up (-EINVAL)",
           kernel_fix="c3a910f2380f net/smc: implement DMB-merged operations of loopback-ism "
                      "(sf=0 returns at once)",
           build=_move_sf0_looks_up),
    Mutant(name="lgr-reuse-ignores-peer",
           summary="smcd_lgr_match by C precedence matches a link group of another peer: a new "
                   "connection joins a link group whose peer GID differs",
           kernel_fix="c3dfcdb65ec1 net/smc: fix incorrect SMC-D link group matching logic "
                      "(the bug came with b40584d14570, 128-bit extended GID)",
           build=_lgr_reuse_ignores_peer),
    Mutant(name="clc-no-count-checks",
           summary="Proposal receive without the eid_cnt / ism_gid_cnt / ipv6_prefixes_cnt "
                   "bounds",
           kernel_fix="7863c9f3d24b net/smc: check v2_ext_offset/eid_cnt/ism_gid_cnt when "
                      "receiving proposal msg; a29e220d3c8e check iparea_offset and "
                      "ipv6_prefixes_cnt",
           build=_clc_no_count_checks),
    Mutant(name="hs-timeout-eagain",
           summary="a CLC timeout on the client ends with EAGAIN instead of ETIMEDOUT",
           kernel_fix="net/smc: return ETIMEDOUT for smc_connect_clc() (v5.17; "
                      "smc_connect_clc maps the wait's -EAGAIN to -ETIMEDOUT)",
           build=_hs_timeout_eagain),
    Mutant(name="hs-eof-as-timeout",
           summary="EOF of the CLC socket is taken for a timeout (no orderly-shutdown case)",
           kernel_fix="smc_clc_wait_msg: len == 0 is the peer's orderly shutdown, sk_err "
                      "ECONNRESET (bug class: EOF read as -EAGAIN)",
           build=_hs_eof_as_timeout),
    Mutant(name="hs-abort-leaks-conn",
           summary="a handshake failing after smc_conn_create does not give the connection "
                   "back (no smc_conn_abort): its DMB and link group leak",
           kernel_fix="net/smc: Fix connection leak (v5.17; smc_conn_abort on the failure "
                      "paths of __smc_connect and smc_listen_work)",
           build=lambda: _drop_effect("hs-abort-leaks-conn", "conn_abort")),
    Mutant(name="hs-syncerr-ignored",
           summary="an out-of-sync Decline does not mark the link group sync_err: the next "
                   "connection reuses the broken link group again",
           kernel_fix="smc_clc_wait_msg: a Decline with SMC_FIRST_CONTACT_MASK sets "
                      "lgr->sync_err and smc_lgr_terminate_sched (net/smc: out of sync "
                      "handling of link groups)",
           build=lambda: _drop_effect("hs-syncerr-ignored", "lgr_sync_err")),
    Mutant(name="hs-prefix-ignores-length",
           summary="the v1 prefix check compares the subnet but not the prefix length",
           kernel_fix="smc_clc_prfx_match4_rcu requires prop->prefix_len == "
                      "ifa->ifa_prefixlen (bug class of the IPv4 prefix match)",
           build=_hs_prefix_ignores_length),
    Mutant(name="lgr-match-no-gid-ext",
           summary="smcd_lgr_match compares the emulated peer's gid_ext with a link group "
                   "that never stored it: loopback-ism never reuses a link group, every "
                   "connection is a first contact with new DMBs",
           kernel_fix="smcd_lgr_match (net/smc/smc_core.c) since v6.8 'net/smc: compatible "
                      "with 128-bits extended GID of virtual ISM device', with its follow-up "
                      "'net/smc: fix incorrect SMC-D link group matching logic' (the "
                      "precedence bug itself matches wrongly only for a peer other than the "
                      "host, which one loopback-ism host never has)",
           build=_lgr_match_no_gid_ext),
    Mutant(name="dmb-leak-killed",
           summary="smc_conn_free of a killed connection (no longer registered) returns "
                   "without its lgr_put: a terminated link group is never freed, its DMBs "
                   "stay registered",
           kernel_fix="'net/smc: Resolve the race between link group access and termination' "
                      "(61f434b0280e, v5.17: every connection holds a link-group reference from "
                      "smc_conn_create to smc_conn_free, dropped on the lgr_put path also for "
                      "a connection no longer registered)",
           build=_dmb_leak_killed),
    Mutant(name="dmb-leak-used",
           summary="freeing a link group unregisters only the DMBs marked unused: a killed "
                   "connection's DMB (smc_conn_kill skips smc_buf_unuse) leaks",
           kernel_fix="bug class of smc_lgr_free_bufs / __smc_lgr_free_bufs (net/smc/"
                      "smc_core.c), which frees every descriptor on the rmbs lists whatever its "
                      "used flag; no single upstream commit identified",
           build=_dmb_leak_used),
    Mutant(name="join-keeps-free-work",
           summary="a connection joining an empty link group leaves its delayed free queued: "
                   "the free work still runs for a link group in use",
           kernel_fix="77f838ace755 net/smc: prevent races between smc_lgr_terminate() and "
                      "smc_conn_free() (smc_conn_create cancels the free_work of the link "
                      "group it joins)",
           build=_join_keeps_free_work),
    Mutant(name="removed-device-connects",
           summary="after the device went away (smc_smcd_terminate_all) a new connection is "
                   "still created on it",
           kernel_fix="'net/smc: no new connections on disappearing devices' (Ursula Braun, "
                      "v5.5: smcd->going_away, skipped by the device search and "
                      "smc_conn_create)",
           build=_removed_device_connects),
    Mutant(name="cdc-unchecked",
           summary="a received CDC is acted on unchecked: cursors past the ring, backwards or "
                   "past the free space, cleared or reserved flags all go through",
           kernel_fix="none upstream: Linux 6.12.118 itself copies the peer's cursors "
                      "unchecked (smcd_cdc_rx_tsklet -> smcd_cdc_msg_to_host -> "
                      "smc_cdc_msg_recv_action); the checks are spec/cdc_rx.py's",
           build=_cdc_unchecked),
    Mutant(name="cdc-backwards-as-overrun",
           summary="a cursor moved backwards is refused, but as an overrun (one 'how far "
                   "ahead' test): the right outcome for the wrong reason",
           kernel_fix="none upstream (see cdc-unchecked); the class of checks that compare "
                      "cursors modulo the wrap without telling a step back from a jump ahead",
           build=_cdc_backwards_as_overrun),
    Mutant(name="sock-leak-appfinclosewait",
           summary="a socket that shut down, got the peer's close, then closes (SMC_"
                   "APPFINCLOSEWAIT -> CLOSED) never frees its connection: socket, DMB and "
                   "link-group reference leak",
           kernel_fix="'net/smc: fix dangling sock under state SMC_APPFINCLOSEWAIT' "
                      "(5211c9729484, v6.7; a "
                      "socket left in/after APPFINCLOSEWAIT was never released)",
           build=_sock_leak_appfinclosewait),
    Mutant(name="close-no-peerclosewait2",
           summary="the close machine has no SMC_PEERCLOSEWAIT2: the peer's done-writing "
                   "after our shutdown leaves us in PEERCLOSEWAIT1",
           kernel_fix="bug class of smc_close_passive_work (net/smc/smc_close.c: "
                      "PEERCLOSEWAIT1 + peer_done_writing -> PEERCLOSEWAIT2); no single upstream "
                      "commit",
           build=_close_no_peerclosewait2),
    Mutant(name="clc-no-offset-checks",
           summary="Proposal receive without the v2_ext_offset / iparea_offset bounds",
           kernel_fix="7863c9f3d24b (v2_ext_offset); a29e220d3c8e (iparea_offset)",
           build=_clc_no_offset_checks),
    Mutant(name="urg-flag-not-cleared",
           summary="smcd_tx_sndbuf_nonempty never clears urg_data_pending / urg_data_present "
                   "after the CDC that carried the urgent byte: every later send skips its "
                   "data write, the bytes after an urgent byte never reach the peer",
           kernel_fix="bug class of smcd_tx_sndbuf_nonempty (net/smc/smc_tx.c), which clears "
                      "both flags once the CDC with urg_data_present went out; the spec's "
                      "Fault.URG_FLAG_NOT_CLEARED; no single upstream commit identified",
           build=_urg_flag_not_cleared),
    Mutant(name="urg-byte-in-band",
           summary="smc_cdc_handle_urg_data_arrival counts the urgent byte in bytes_to_rcv "
                   "without SO_OOBINLINE: a plain recv returns it in band as well",
           kernel_fix="bug class of smc_cdc_handle_urg_data_arrival (net/smc/smc_cdc.c: "
                      "\"we'll skip the urgent byte, so don't account for it\", diff_prod--); "
                      "no single upstream commit identified",
           build=_urg_byte_in_band),
)

#: every mutant by name
MUTANTS: dict[str, Mutant] = {m.name: m for m in _ALL}


def load_mutant(name: str) -> Target:
    """The target ``zoo:NAME``.

    Raises:
        TargetLoadError: naming the unknown mutant and the known ones.
    """
    mutant = MUTANTS.get(name)
    if mutant is None:
        raise TargetLoadError(f"unknown zoo mutant {name!r}; known: {', '.join(MUTANTS)}")
    return mutant.build()


def kill_table(cases: Any = None, *, lockstep_examples: int = 0,
               progress: Callable[[str], None] | None = None) -> list[dict[str, Any]]:
    """Run the catalogue (and optionally the lockstep test) on every mutant.

    Returns:
        One row per mutant: ``mutant``, ``summary``, ``kernel_fix``, ``killed_by`` (ids of the
        cases that FAILed, ``lockstep.random.walk`` included when it did).
    """
    from smcd_check.conformance.catalogue.registry import catalogue
    from smcd_check.conformance.runner.run import ExpectationCache, Verdict, run_cases
    from smcd_check.conformance.targets.spec_target import SpecTarget

    cases = list(catalogue() if cases is None else cases)
    oracle = ExpectationCache(SpecTarget())
    rows = []
    for mutant in MUTANTS.values():
        if progress is not None:
            progress(mutant.name)
        target = mutant.build()
        try:
            run = run_cases(target, cases, oracle)
            killers = [r.case.id for r in run.results if r.verdict is Verdict.FAIL]
            if lockstep_examples and not killers:
                from smcd_check.conformance.runner.lockstep import run_lockstep

                res = run_lockstep(target, examples=lockstep_examples)
                if res is not None and res.verdict is Verdict.FAIL:
                    killers.append(res.case.id)
        finally:
            target.close()
        rows.append({"mutant": mutant.name, "summary": mutant.summary,
                     "kernel_fix": mutant.kernel_fix, "killed_by": killers})
    return rows
