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
* The link group is reference counted (``smc_lgr_hold`` / ``smc_lgr_put``): it holds one
  reference of its own (dropped by ``smc_lgr_free``) and every connection holds one from
  ``smc_conn_create`` to ``smc_conn_free``. When the last one goes, every DMB is unregistered
  (``__smc_lgr_free`` -> ``smc_lgr_free_bufs`` -> ``smcd_buf_free``) and the device's
  ``lgr_cnt`` drops: so the DMBs of a terminated link group stay registered until the sockets
  it killed are closed.
* :func:`smc_conn_create` picks the link group of a new connection the kernel's way: a client
  told "first contact" creates one; otherwise the first link group on the device's
  ``lgr_list`` for which :meth:`SmcdLinkGroup.smcd_lgr_match` holds and that has no
  ``sync_err`` is joined (SMC-D v2 ignores the VLAN; the role is not compared), cancelling its
  delayed free; nothing found: the server creates one, a client declines (SYNCERR).
* Teardown: :meth:`~SmcdLinkGroup.free_work` is ``smc_lgr_free_work`` (the kernel runs it 10
  minutes after the last connection left, ``SMC_LGR_FREE_DELAY_SERV``; the model has no clock, so
  the owner runs it), :meth:`~SmcdLinkGroup.terminate` is ``smc_lgr_terminate_sched`` +
  ``__smc_lgr_terminate`` (kill every connection, then ``smc_lgr_free``), and
  :func:`terminate_all` is ``smc_smcd_terminate_all`` (the device goes away).
  :meth:`~SmcdLinkGroup.free` is the older direct form of the free work (refuses while
  connections are registered).

Connections register with ``register_conn`` (an ``alert_token_local`` from a global counter) and
leave with ``unregister_conn``.

Link-group choice for a new connection to one of several peers (the ``link-group`` lens of
issue 17): :class:`SmcdLgrList` keeps a list of its own; :meth:`SmcdLgrList.conn_create` joins
the first listed link group that ``smcd_lgr_match`` accepts (same peer GID, same device, and on a
virtual device such as loopback-ism the same ``gid_ext``; the role is not compared, as in the
kernel) and whose VLAN fits (SMC-Dv1), else creates one (first contact). Pairs opened on one
host (:func:`smc_conn_create`, :func:`~smcd_check.model.connection.open_pair` with
``conn_create``) use the device's own ``lgr_list`` and :meth:`SmcdLinkGroup.smcd_lgr_match`.

Not modelled: VLAN registration, lgr ids on the wire, SMC-R fields, sndbuf lists (copy-mode
sndbufs are plain memory owned by their connection), the ``peer_shutdown`` event (loopback raises
no ISM events), the wait of device removal for ``lgr_cnt`` to reach 0.
"""

from __future__ import annotations

import contextlib
import itertools
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

from smcd_check.model.device import LoopbackIsm, SmcdDmb, SmcdGid
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


class LinkGroupOutOfSync(ModelError):
    """A client told "not first contact" finds no link group to join (SMC_CLC_DECL_SYNCERR)."""


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
        peer_gid: the peer's GID (``lgr->peer_gid``), compared by :meth:`smcd_lgr_match`.
        vlan_id: ``lgr->vlan_id``.
        smc_version: ``lgr->smc_version`` (loopback-ism: 2).
        listed: put it on ``dev.lgr_list`` (:func:`smc_conn_create` does); a link group made
            directly is the caller's own and never found for reuse.
    """

    def __init__(self, dev: LoopbackIsm, *, peer_gid: SmcdGid | None = None, vlan_id: int = 0,
                 smc_version: int = 2, listed: bool = False) -> None:
        self.smcd = dev
        #: the peer this link group connects to (``lgr->peer_gid``: gid and gid_ext); set here
        #: or by SmcdLgrList.conn_create
        self.peer_gid = peer_gid.gid if peer_gid is not None else 0
        self.peer_gid_ext = peer_gid.gid_ext if peer_gid is not None else 0
        self.vlan_id = vlan_id
        self.smc_version = smc_version
        self.rmbs: dict[int, list[SmcBufDesc]] = {}
        self.conns_all: dict[int, LgrMember] = {}
        self.conns_num = 0
        self.sync_err = False
        self.freeing = False
        self.terminating = False
        self.free_scheduled = False
        #: the lgr's own reference (smc_lgr_create) + one per connection (smc_lgr_hold)
        self.refcnt = 1
        #: __smc_lgr_free ran: buffers unregistered, the lgr no longer exists
        self.gone = False
        dev.lgr_cnt += 1
        if listed:
            dev.lgr_list.append(self)

    @property
    def listed(self) -> bool:
        """On the device's list, findable for reuse: exactly while ``freeing`` is 0."""
        return not self.freeing

    def smcd_lgr_match(self, dev: LoopbackIsm, peer_gid: SmcdGid) -> bool:
        """``smcd_lgr_match``: same peer GID and device, and (emulated) the same ``gid_ext``."""
        if self.peer_gid != peer_gid.gid or self.smcd is not dev:
            return False
        return not (dev.is_emulated() and self.peer_gid_ext != peer_gid.gid_ext)

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
        self.rmbs.setdefault(size, []).insert(0, desc)  # list_add: newest first
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
        """``smc_lgr_unregister_conn``: forget ``conn`` (its alert token becomes 0)."""
        if self.conns_all.pop(conn.alert_token_local, None) is not None:
            self.conns_num -= 1
            conn.alert_token_local = 0

    def schedule_free_work(self) -> None:
        """``smc_lgr_schedule_free_work``: queue the delayed free (not once it is freeing)."""
        if not self.freeing:
            self.free_scheduled = True

    # ---------------------------------------------------------------- references

    def hold(self) -> None:
        """``smc_lgr_hold``: a connection keeps the link group (and its DMBs) alive."""
        self.refcnt += 1

    def put(self) -> None:
        """``smc_lgr_put``: the last reference frees every DMB and the link group."""
        self.refcnt -= 1
        if self.refcnt == 0:
            self._lgr_free_bufs()
            self.gone = True
            self.smcd.lgr_cnt -= 1

    def _lgr_free_bufs(self) -> None:
        """``smc_lgr_free_bufs``: every DMB on the lists, used or not, is unregistered."""
        for descs in self.rmbs.values():
            for desc in list(descs):
                self.smcd_buf_free(desc)

    def _delist(self) -> None:
        with contextlib.suppress(ValueError):
            self.smcd.lgr_list.remove(self)
        self.freeing = True
        self.free_scheduled = False

    # ---------------------------------------------------------------- teardown

    def free_work(self) -> bool:
        """``smc_lgr_free_work``: free an empty link group; False (nothing done) when it is
        freeing already or connections came back."""
        if self.freeing or self.conns_num:
            self.free_scheduled = False
            return False
        self._delist()
        self.put()  # smc_lgr_free: the link group's own reference
        return True

    def free(self) -> None:
        """The free work run by the owner: like :meth:`free_work`, but refuses.

        Raises:
            LinkGroupBusy: connections are still registered.
            LinkGroupFreed: already freed.
        """
        self._check_live()
        if self.conns_num:
            raise LinkGroupBusy(f"link group still has {self.conns_num} connection(s)")
        self.free_work()

    def smcd_buf_free(self, desc: SmcBufDesc) -> None:
        """``smcd_buf_free`` -> ``smc_ism_unregister_dmb`` (skipped if ``dma_addr == 0``)."""
        if not desc.dma_addr:
            return
        self.smcd.unregister_dmb(desc.token)
        desc.dma_addr = 0
        desc.used = False

    def terminate(self) -> None:
        """``smc_lgr_terminate_sched`` + ``__smc_lgr_terminate``: off the list, kill every
        connection (abort to the peer), then drop the link group's own reference."""
        if self.freeing or self.terminating:
            return
        self._delist()
        self._terminate()

    def _terminate(self) -> None:
        """``__smc_lgr_terminate``."""
        if self.terminating:
            return
        self.free_scheduled = False
        self.terminating = True
        while self.conns_all:
            conn = next(iter(self.conns_all.values()))
            conn._conn_kill()
            self.unregister_conn(conn)  # smc_conn_kill unregisters it (a no-op if it did)
        self.put()  # smc_lgr_free

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
def smc_conn_create(
    dev: LoopbackIsm,
    *,
    server: bool,
    peer_gid: SmcdGid,
    first_contact_peer: bool = False,
    vlan_id: int = 0,
    smc_version: int = 2,
    lgr_cls: type[SmcdLinkGroup] = SmcdLinkGroup,
) -> tuple[SmcdLinkGroup, bool]:
    """The link group a new connection joins, or a new one (``smc_conn_create``).

    Returns:
        ``(lgr, first_contact_local)``.

    Raises:
        LinkGroupOutOfSync: a client told "not first contact" finds nothing to join.
    """
    if server or not first_contact_peer:
        for lgr in list(dev.lgr_list):
            if (lgr.smcd_lgr_match(dev, peer_gid) and not lgr.sync_err
                    and (smc_version == 2 or lgr.vlan_id == vlan_id)):
                return lgr, False
        if not server:
            raise LinkGroupOutOfSync("the server reused a link group, the client has none "
                                     "for this peer (SMC_CLC_DECL_SYNCERR)")
    lgr = lgr_cls(dev, peer_gid=peer_gid, vlan_id=vlan_id, smc_version=smc_version, listed=True)
    return lgr, True


def terminate_all(dev: LoopbackIsm) -> None:
    """``smc_smcd_terminate_all`` (the device goes away): every listed link group is taken off
    the list, then each is terminated in list order."""
    lgrs = list(dev.lgr_list)
    for lgr in lgrs:
        lgr._delist()
    for lgr in lgrs:
        lgr._terminate()


__all__ = [
    "SMCD_CDC_MSG_SIZE",
    "LgrMember",
    "LinkGroupBusy",
    "LinkGroupFreed",
    "LinkGroupOutOfSync",
    "SmcBufDesc",
    "SmcdLgrList",
    "SmcdLinkGroup",
    "smc_conn_create",
    "terminate_all",
]
