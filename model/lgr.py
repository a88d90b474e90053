"""SMC-D link groups: who owns the DMBs and when they are unregistered (net/smc/smc_core.c).

Theory of operation
-------------------
A :class:`SmcdLinkGroup` is one side's ``struct smc_link_group`` on a loopback-ism device.  It
owns that side's DMBs (the ``rmbs[]`` lists, one per size) and keeps them registered with the
device across connections:

* ``buf_get_slot`` reuses a DMB of the same size whose ``used`` flag is clear
  (``smc_buf_get_slot``); otherwise ``new_dmb`` registers a new one (``smcd_new_buf_create``:
  ``desc.len = size - 32``, the first 32 bytes hold the peer's CDC message).
* ``buf_unuse`` (``smc_buf_unuse``, at connection free) zeroes the whole DMB including the header
  and clears ``used``; nothing is unregistered.
* ``free`` (``smc_lgr_free`` -> ``smc_lgr_free_bufs`` -> ``smcd_buf_free``) unregisters every DMB.
  The kernel runs it from delayed work 10 minutes after the last connection left
  (``SMC_LGR_FREE_DELAY_SERV``); the model has no clock, so the owner calls :meth:`free` (only
  allowed once no connection is registered) or :meth:`terminate` (kills every connection first,
  like ``__smc_lgr_terminate``).

Connections register with ``register_conn`` (an ``alert_token_local`` from a global counter) and
leave with ``unregister_conn``; ``conns_num == 0`` marks the delayed free as scheduled.

Link-group choice for a new connection (``smc_conn_create``): :class:`SmcdLgrList` is a device's
``lgr_list``; :meth:`SmcdLgrList.conn_create` joins the first listed link group that
``smcd_lgr_match`` accepts (same peer GID, same device, and on a virtual device such as
loopback-ism the same ``gid_ext``; the role is not compared, as in the kernel) and whose VLAN
fits (SMC-Dv1), else creates one (first contact). :func:`open_pair` still lets the caller pick.

Not modelled: ``sync_err``, SMC-R fields, sndbuf lists (copy-mode sndbufs are plain memory
owned by their connection), the ``peer_shutdown`` event (loopback raises no ISM events).
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

from smcd_check.model.device import LoopbackIsm, SmcdDmb
from smcd_check.model.errors import ModelError

if TYPE_CHECKING:
    from collections.abc import Iterator

#: sizeof(struct smcd_cdc_msg): the DMB header the peer writes its CDC message into
SMCD_CDC_MSG_SIZE = 32

_alert_token_counter = itertools.count(1)


class LinkGroupBusy(ModelError):
    """The link group still has connections (free refused, as the kernel's free work does)."""


class LinkGroupFreed(ModelError):
    """The link group was already freed (no DMB can be taken from it, it cannot be freed twice)."""


class LgrMember(Protocol):
    """What a link group needs of a connection (for terminate)."""

    alert_token_local: int

    def _conn_kill(self) -> None: ...


@dataclass(eq=False, slots=True, kw_only=True)
class SmcBufDesc:
    """``struct smc_buf_desc`` for a DMB (``is_dmb``) or a sndbuf.

    ``cpu_addr`` covers the whole buffer; for a DMB the data ring is ``cpu_addr[32:]`` and
    ``len`` is the ring length (``size - 32``), as ``smcd_new_buf_create`` sets it.
    """

    cpu_addr: memoryview
    len: int  #: bytes of the data ring
    size: int  #: bytes of memory (DMB: len + 32)
    is_dmb: bool
    token: int = 0  #: DMB token (0 for plain memory)
    sba_idx: int = 0
    dma_addr: int = 0  #: 0 = not registered / already unregistered
    used: bool = False


class SmcdLinkGroup:
    """One side's SMC-D link group on ``dev``.

    Args:
        dev: the loopback-ism device whose DMBs this link group registers.
    """

    def __init__(self, dev: LoopbackIsm) -> None:
        self.smcd = dev
        self.rmbs: dict[int, list[SmcBufDesc]] = {}
        self.conns_all: dict[int, LgrMember] = {}
        self.conns_num = 0
        self.freeing = False
        self.terminating = False
        self.free_scheduled = False
        #: the peer this link group connects to (set by SmcdLgrList.conn_create)
        self.peer_gid = 0
        self.peer_gid_ext = 0
        self.vlan_id = 0

    # ---------------------------------------------------------------- buffers

    def buf_get_slot(self, size: int) -> SmcBufDesc | None:
        """``smc_buf_get_slot``: an unused DMB of ``size`` bytes, now marked used."""
        for desc in self.rmbs.get(size, ()):
            if not desc.used:
                desc.used = True
                return desc
        return None

    def new_dmb(self, size: int) -> SmcBufDesc:
        """``smcd_new_buf_create``: register a DMB of ``size`` bytes and list it here.

        Raises:
            LinkGroupFreed: the link group was freed.
            NoSpace / InvalidArgument: from ``register_dmb``.
        """
        self._check_live()
        dmb: SmcdDmb = self.smcd.register_dmb(size)
        desc = SmcBufDesc(
            cpu_addr=dmb.cpu_addr,
            len=dmb.dmb_len - SMCD_CDC_MSG_SIZE,
            size=dmb.dmb_len,
            is_dmb=True,
            token=dmb.dmb_tok,
            sba_idx=dmb.sba_idx,
            dma_addr=dmb.dma_addr,
            used=True,
        )
        self.rmbs.setdefault(size, []).append(desc)
        return desc

    def get_dmb(self, size: int) -> SmcBufDesc:
        """A DMB of ``size`` bytes for a new connection: reused if possible, else new."""
        self._check_live()
        return self.buf_get_slot(size) or self.new_dmb(size)

    def buf_unuse(self, desc: SmcBufDesc) -> None:
        """``smc_buf_unuse`` for a DMB: zero it (header included) and make it reusable."""
        if desc.dma_addr:
            desc.cpu_addr[:] = bytes(desc.size)
        desc.used = False

    def dmbs(self) -> Iterator[SmcBufDesc]:
        """Every DMB this link group has registered and not yet unregistered."""
        for descs in self.rmbs.values():
            yield from (d for d in descs if d.dma_addr)

    # ---------------------------------------------------------------- connections

    def register_conn(self, conn: LgrMember) -> int:
        """``smc_lgr_register_conn``: give ``conn`` an alert token and count it."""
        self._check_live()
        token = next(_alert_token_counter)
        conn.alert_token_local = token
        self.conns_all[token] = conn
        self.conns_num += 1
        self.free_scheduled = False
        return token

    def unregister_conn(self, conn: LgrMember) -> None:
        """``smc_lgr_unregister_conn``: forget ``conn``; schedule the free at 0 connections."""
        if self.conns_all.pop(conn.alert_token_local, None) is not None:
            self.conns_num -= 1
            conn.alert_token_local = 0
            if self.conns_num == 0:
                self.free_scheduled = True

    # ---------------------------------------------------------------- teardown

    def free(self) -> None:
        """``smc_lgr_free`` for SMC-D: unregister every DMB of the link group.

        Raises:
            LinkGroupBusy: connections are still registered.
            LinkGroupFreed: already freed.
        """
        self._check_live()
        if self.conns_num:
            raise LinkGroupBusy(f"link group still has {self.conns_num} connection(s)")
        self.freeing = True
        self.free_scheduled = False
        for desc in list(self.dmbs()):
            self.smcd_buf_free(desc)

    def smcd_buf_free(self, desc: SmcBufDesc) -> None:
        """``smcd_buf_free`` -> ``smc_ism_unregister_dmb`` (skipped if ``dma_addr == 0``)."""
        if not desc.dma_addr:
            return
        self.smcd.unregister_dmb(desc.token)
        desc.dma_addr = 0
        desc.used = False

    def terminate(self) -> None:
        """``__smc_lgr_terminate``: kill every connection (abort to the peer), then free."""
        if self.terminating or self.freeing:
            return
        self.terminating = True
        for conn in list(self.conns_all.values()):
            conn._conn_kill()
        self.conns_all.clear()
        self.conns_num = 0
        self.free()

    def _check_live(self) -> None:
        if self.freeing:
            raise LinkGroupFreed("link group already freed")


class SmcdLgrList:
    """A device's ``lgr_list`` and the link-group choice of ``smc_conn_create`` for SMC-D.

    Args:
        dev: the device whose link groups these are.
        lgr_cls: the link-group class.
        virtual: the device is virtual (loopback-ism): the peer's ``gid_ext`` counts too.
    """

    def __init__(self, dev: LoopbackIsm, *, lgr_cls: type[SmcdLinkGroup] = SmcdLinkGroup,
                 virtual: bool = True) -> None:
        self.smcd = dev
        self.lgr_cls = lgr_cls
        self.virtual = virtual
        self.lgrs: list[SmcdLinkGroup] = []

    def _lgr_match(self, lgr: SmcdLinkGroup, peer_gid: int, peer_gid_ext: int) -> bool:
        """``smcd_lgr_match`` (after c3dfcdb65ec1 "net/smc: fix incorrect SMC-D link group
        matching logic"): same peer GID and device, and on a virtual device the same gid_ext."""
        if lgr.peer_gid != peer_gid or lgr.smcd is not self.smcd:
            return False
        return not (self.virtual and lgr.peer_gid_ext != peer_gid_ext)

    def conn_create(self, member: LgrMember, *, peer_gid: int, peer_gid_ext: int, vlan: int,
                    smcd_version: int = 2, first_contact_peer: bool = False, client: bool = False
                    ) -> tuple[SmcdLinkGroup, bool]:
        """``smc_conn_create``: the link group ``member`` joins and whether it is new.

        A client whose peer announced first contact always creates one.

        Raises:
            LinkGroupBusy: a client without first contact from its peer found none (the
                kernel's SMC_CLC_DECL_SYNCERR).
        """
        found = None
        if not (client and first_contact_peer):
            for lgr in self.lgrs:
                if lgr.freeing or lgr.terminating:
                    continue
                if not self._lgr_match(lgr, peer_gid, peer_gid_ext):
                    continue
                if smcd_version != 2 and lgr.vlan_id != vlan:
                    continue
                found = lgr
                break
        if found is None and client and not first_contact_peer:
            raise LinkGroupBusy(f"peer {peer_gid:#x}/{peer_gid_ext:#x} reused a link group this "
                                "host does not have (SMC_CLC_DECL_SYNCERR)")
        first = found is None
        if found is None:
            found = self.lgr_cls(self.smcd)
            found.peer_gid, found.peer_gid_ext, found.vlan_id = peer_gid, peer_gid_ext, vlan
            self.lgrs.append(found)
        found.register_conn(member)
        return found, first


__all__ = [
    "SMCD_CDC_MSG_SIZE",
    "LgrMember",
    "LinkGroupBusy",
    "LinkGroupFreed",
    "SmcBufDesc",
    "SmcdLgrList",
    "SmcdLinkGroup",
]
