"""Link groups, connections and DMBs of SMC-D over loopback-ism / ISM: the lifecycle spec.

Theory of operation
-------------------
All lifecycle transition logic lives here; the spec does not know which implementation runs it.
A state is a frozen value (:class:`LifecycleState`) holding four tables, each a tuple sorted by
its key so that equal states hash equally:

* ``lgrs`` -- link groups (``struct smc_link_group``, SMC-D part). An lgr belongs to the device of
  one host, remembers its peer (``peer_gid``, ``peer_gid_ext``), VLAN and SMC version, the
  connections registered in it (``conns``: the rb-tree ``conns_all``), the connections holding a
  reference on it (``holders``: ``smc_lgr_hold``), its DMB descriptors in list order (``rmbs``)
  and the kernel's flags ``sync_err``, ``terminating``, ``freeing``. ``free_pending`` is the
  queued delayed free work, ``terminate_pending`` the queued ``terminate_work``, ``released``
  says ``smc_lgr_free`` dropped the lgr's own reference. An lgr is *listed* (on the device's
  ``lgr_list``, findable for reuse) exactly while ``freeing`` is 0. When it is released and no
  connection holds it any more, its buffers are freed one by one (:class:`HostUnregisterDmb`, in
  the kernel's list order) and the lgr disappears with the last one.
* ``descs`` -- the host's DMB descriptors (``struct smc_buf_desc`` with is_dmb): size, token,
  ``used`` and the connection using it. A descriptor lives on its lgr's list from registration
  until the lgr is freed; between connections it is unused and may be reused by a later
  connection of the same lgr (``smc_buf_get_slot``: same compressed size, ``used`` 0 -> 1).
* ``nodes`` -- the device's DMB table (``struct smc_lo_dmb_node`` in the hash table): token,
  slot (``sba_idx``), size, ``refcnt`` and whether the owner's registration reference is still
  held (``owned``). 6.12.118 nocopy semantics: register gives refcnt 1, every attach +1, the
  owner's unregister and every detach -1, and only at 0 the node leaves the table, its slot is
  cleared and its memory freed. So after the owner unregisters, an attached peer keeps the
  memory, the token still resolves and the slot stays taken.
* ``conns`` -- connection endpoints (``struct smc_connection`` plus the few socket facts the
  lifecycle needs). Endpoints come in pairs: pair ``p`` has the client end ``cid = 2*p`` and the
  server end ``cid = 2*p + 1``; the peer of ``cid`` is ``cid ^ 1``. A connection goes through
  ``CREATED`` (in an lgr, ``smc_conn_create``), ``HAS_DMB`` (its DMB exists; the server has sent
  its Accept), ``ESTABLISHED`` (it knows the peer's token and, merged, has attached the peer DMB
  as its "ghost" sndbuf) or ``DECLINED`` (handshake failed, ``smc_conn_abort``). Close state is
  kept as the CDC connection-state flags sent (``tx_flags``) and received (``rx_flags``), and the
  booleans ``closed`` (the application closed), ``aborted``, ``killed``, ``freed``.

``uar`` (use after release) records that some write or read went through memory whose last
reference had been dropped. The correct spec never gets there; with the fault
``UNREGISTER_WHILE_ATTACHED`` it plays the buggy kernel, lets the unchecked memcpy happen (a
pointer dereference cannot be refused) and marks the state, which is what the invariant sees.

Kernel rules, one per action (6.12.118; net/smc/smc_core.c unless named)
-------------------------------------------------------------------------
* :class:`HostCreateConn` -- ``smc_conn_create``. The server, and a client whose server reused an
  lgr, scan the device's lgr list in creation order (``list_add_tail``) and join the first lgr
  where ``smcd_lgr_match`` holds (same peer GID, same device, and for an emulated device such as
  loopback-ism also the same ``gid_ext``), ``!sync_err``, and ``smcd_version == 2`` or the VLAN
  is equal. The role is *not* compared for SMC-D (only ``smcr_lgr_match`` looks at it), so on
  loopback a server connection may join the lgr a client created. No connection-count limit for
  SMC-D. A client told "first contact" always creates a new lgr; a client whose server reused
  but that finds nothing declines with ``SMC_CLC_DECL_SYNCERR`` -- the server then marks its lgr
  ``sync_err`` and schedules its termination (``smc_clc_wait_msg``, net/smc/smc_clc.c) and
  aborts its own connection. Joining cancels a pending delayed free. Every connection takes an
  lgr reference. ``smc_server_lgr_pending`` (net/smc/af_smc.c) serialises the SMC-D handshake
  parts on one host: the server holds it from lgr choice to Accept, the client from lgr choice
  to Confirm; the standalone action list respects it.
* :class:`HostReuseDmb`, :class:`DevRegisterDmb` -- ``__smc_buf_create`` for the DMB: for the
  wanted compressed size down to 0, reuse an unused descriptor of that size on the lgr's list
  (newest first, ``list_add``), else register a new DMB (``smcd_new_buf_create`` ->
  ``smc_ism_register_dmb`` -> ``smc_lo_register_dmb``: lowest free slot or ``-ENOSPC``, token
  unique in the device table); ``-ENOSPC`` moves on to the next smaller size; all sizes failing
  is ``SMC_CLC_DECL_MAX_DMB`` (:class:`HostDeclineConn`). The connection is then set in
  ``smcd->conn[sba_idx]`` (``smc_ism_set_conn``) and receives signals for that DMB.
* :class:`PeerAttachDmb` (merged) -- ``smcd_buf_attach`` -> ``attach_dmb(peer token)``: unknown
  token is ``-EINVAL``, else refcnt + 1; the client attaches after the Accept, the server after
  the Confirm. :class:`HostSavePeerInfo` is the copy-mode counterpart (peer token learned, no
  device call).
* :class:`HostWriteDmb` -- data into the peer DMB (merged: memcpy through the ghost sndbuf;
  copy: ``move_data`` sf=0) followed by the CDC (``move_data`` sf=1): unknown token ``-EINVAL``,
  peer connection unset or killed ``-EPIPE``; on any error ``smcd_tx_ism_write`` sets the local
  ``peer_conn_abort``. Not after this side sent done_writing/closed/abort, nor after it received
  closed/abort (``smc_tx_sendmsg``, net/smc/smc_tx.c). :class:`HostReadDmb` consumes.
* :class:`ConnShutdown`, :class:`ConnClose`, :class:`ConnAbort` -- net/smc/smc_close.c:
  ``smc_close_wr`` sends ``peer_done_writing``; ``smc_close_final`` sends ``peer_conn_closed``,
  or ``peer_conn_abort`` when unread data remains (nothing when killed: ``-EPIPE``); after a
  received abort the close is ``smc_close_abort``; ``smc_close_abort`` sends
  ``peer_conn_abort`` and the socket is closed at once (``smc_close_active_abort``). A received
  abort makes the receiver set its own outgoing ``peer_conn_abort`` (``smc_cdc_msg_recv_action``,
  net/smc/smc_cdc.c). The flags are sticky.
* :class:`PeerDetachDmb`, :class:`HostFreeConn` -- ``smc_conn_free`` once the socket is done
  (closed, and aborted, killed or the peer's close/abort received). Order: (1) unset the conn in
  ``smcd->conn[]``, (2) kill the rx tasklet, (3) merged: detach the ghost (``smcd_buf_detach``)
  -- these are :class:`PeerDetachDmb`; then, if the lgr is still listed, (4) ``smc_buf_unuse``
  (DMB ``used`` = 0, nothing unregistered) and unregister the connection, (5) ``conns_num == 0``
  -> schedule the delayed free, (6) drop the lgr reference -- :class:`HostFreeConn`. A connection
  no longer registered (killed) does only (6).
* :class:`LgrFreeDelayed` -- ``smc_lgr_free_work`` (the 10-minute delay is abstracted away): no-op
  when ``freeing`` or connections came back; else delist, ``freeing`` = 1, ``smc_lgr_free``.
* :class:`LgrTerminate` -- an error (``smc_lgr_terminate_sched``; also the device removal path
  ``smc_smcd_terminate_all``): delist, ``freeing`` = 1, queue the terminate work.
  :class:`LgrTerminateWork` -- ``__smc_lgr_terminate``: no-op when already ``terminating``; cancel
  the delayed free; ``terminating`` = 1; ``smc_conn_kill`` every registered connection (send
  abort, ``killed``, unset, detach the ghost, unregister); ``smc_lgr_free``.
* :class:`HostUnregisterDmb` -- ``smcd_buf_free`` -> ``smc_ism_unregister_dmb`` ->
  ``smc_lo_unregister_dmb``: refcnt - 1, freed at 0. Only while the lgr's buffers are being freed.

Plain functions for the handshake (helper H6) and conformance
--------------------------------------------------------------
Every action is also reachable as a pure function ``f(cfg, state, ...) -> state`` (or a tuple
with a result), raising a :class:`LifecycleError` subclass and never mutating:

* ``find_reusable_lgr(cfg, s, host, peer_gid, gid_ext, chid, vlan, smcd_version) -> int | None``
  -- the lgr ``smc_conn_create`` would join (``smcd_lgr_match`` + ``!sync_err`` + version/VLAN).
* ``create_conn(cfg, s, *, pair, role, host, peer_host, vlan, smcd_version, first_contact_peer)
  -> (s, cid, first_contact_local)``; raises :class:`LgrOutOfSync` (``SMC_CLC_DECL_SYNCERR``).
* ``create_dmb(cfg, s, cid, want) -> (s, token)`` -- the whole size search; ``register_dmb(cfg,
  s, cid, size, token=None) -> (s, token)`` and ``reuse_dmb(cfg, s, cid, size) -> (s, token)``
  for one size (``token`` lets conformance impose the implementation's token: a token already
  in the table raises :class:`DuplicateToken`).
* ``attach_dmb(cfg, s, cid, peer_token)``, ``save_peer_info(cfg, s, cid, peer_token)``.
* ``abort_conn(cfg, s, cid, local_first)`` -- ``smc_conn_abort`` on a failed handshake: free the
  connection, and when it created its lgr, delist and terminate that lgr at once
  (``smc_lgr_cleanup_early``).
* ``decline_sync_err(cfg, s, lgr_id)`` -- the peer's out-of-sync Decline: ``sync_err`` = 1 and
  termination scheduled.
* device ops: ``dev_register_dmb``, ``dev_unregister_dmb``, ``dev_attach_dmb``,
  ``dev_detach_dmb``, ``dev_move_data`` (loopback-ism semantics on the node table).

Explorer API (stateright style): :class:`LifecycleConfig`, :func:`initial_state`,
:func:`enabled_actions` (a deterministic order: lgr work by lgr id, then a new pair, then each
connection's actions by cid), :func:`step`, :data:`INVARIANTS`, :func:`quiescent`.

Determinism: no randomness. A new DMB gets the lowest free slot (as loopback does) and the lowest
positive token not in the device table -- the kernel's only constraint on its random tokens is
"unique in the hash table", and :func:`dev_register_dmb` checks it and raises
:class:`DuplicateToken` rather than trusting the allocator. Link-group and descriptor ids are
the lowest unused numbers, so the state space stays finite.

Not modelled
------------
Copy-mode sndbufs (plain memory, no device resource); cursors and byte counts (the data path,
:mod:`~smcd_check.spec.datapath`, owns them; here "unread data" is one bit); ISM events and
shutdown signalling between hosts (``peer_shutdown``; loopback-ism has neither); VLAN
registration; lgr ids on the wire (``SMC_LGR_NUM_INCR``); alert tokens; the timing of the delayed
free; the rx tasklet beyond "set/unset"; memory allocation failures (``-ENOMEM``). A CDC or data
write reaches only the writer's own peer connection: when the token now names another
connection's DMB (a reused descriptor keeps its token) the model drops the write instead of
delivering it there (see the report: a stale close CDC after a peer's abort-and-free could in
principle reach a reused DMB in the kernel). Native ISM does not support merged mode.

Sources: net/smc/smc_core.c (smc_conn_create, smcd_lgr_match, smc_lgr_register_conn,
smc_conn_free, smc_buf_unuse, smc_conn_kill, __smc_lgr_terminate, smc_lgr_terminate_sched,
smc_lgr_free_work, smc_lgr_free, __smc_buf_create, smc_buf_get_slot, smcd_buf_attach,
smcd_buf_detach, smcd_buf_free), net/smc/smc_ism.c, net/smc/smc_loopback.c, net/smc/smc_close.c,
net/smc/smc_cdc.c, net/smc/af_smc.c; digest: shared/domain/lifecycle.md sections 1-5.
"""

from __future__ import annotations

import contextlib
import enum
import operator
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any, Final, TypeAlias, TypeVar

from smcd_check.spec.errors import ForbiddenStep, PreconditionViolated
from smcd_check.spec.faults import Fault
from smcd_check.spec.properties import Invariant, InvariantKind

_T = TypeVar("_T")
_R = TypeVar("_R")


def replace(obj: _T, **changes: Any) -> _T:
    """``dataclasses.replace`` for the module's frozen slotted records, without re-validation.

    The explorer calls the transitions millions of times; the stock ``replace`` walks the
    dataclass fields and calls ``__init__`` each time, this copies the slots through their
    descriptors (about twice as fast). Only used on this module's own records, which have no
    ``__post_init__`` or ``InitVar``; an unknown field name raises.
    """
    cls = type(obj)
    plan = _PLANS.get(cls)
    if plan is None:
        names = cls.__slots__  # type: ignore[attr-defined]
        setters = tuple(cls.__dict__[n].__set__ for n in names)
        plan = _PLANS[cls] = (
            operator.attrgetter(*names),
            setters,
            dict(zip(names, setters, strict=True)),
        )
    getter, setters, by_name = plan
    new = object.__new__(cls)
    for set_, value in zip(setters, getter(obj), strict=True):
        set_(new, value)
    for name, value in changes.items():
        set_ = by_name.get(name)
        if set_ is None:
            raise PreconditionViolated(f"{cls.__name__} has no field {name!r}")
        set_(new, value)
    return new


_PLANS: dict[type, tuple[Any, tuple[Any, ...], dict[str, Any]]] = {}


# --------------------------------------------------------------------------------------------
# Constants (each with its kernel source)
# --------------------------------------------------------------------------------------------

#: ``SMC_LO_MAX_DMBS`` (net/smc/smc_loopback.h): DMB slots of the loopback device
SMC_LO_MAX_DMBS: Final = 5000
#: ``SMC_LO_RESERVED_CHID`` (net/smc/smc_loopback.h): loopback-ism's CHID
SMC_LO_RESERVED_CHID: Final = 0xFFFF
#: CHID the model gives native ISM devices (any value other than the loopback one would do)
ISM_MODEL_CHID: Final = 0x0100
#: ``SMCD_DMBE_SIZES`` (net/smc/smc_core.c): largest compressed SMC-D DMB size (1 MiB)
SMCD_DMBE_SIZES: Final = 6
#: ``SMC_BUF_MIN_SIZE`` (net/smc/smc_core.h): compressed size 0 is 16 KiB
SMC_BUF_MIN_SIZE: Final = 16384
#: SMC versions (``SMC_V1``, ``SMC_V2``, net/smc/smc.h)
SMC_V1: Final = 1
SMC_V2: Final = 2
#: CDC connection-state flag bits (``struct smc_cdc_conn_state_flags``, net/smc/smc_cdc.h)
PEER_DONE_WRITING: Final = 0x80
PEER_CONN_CLOSED: Final = 0x40
PEER_CONN_ABORT: Final = 0x20
#: ``SMC_CLC_DECL_SYNCERR`` (net/smc/smc_clc.h): client found no lgr although the server reused
SMC_CLC_DECL_SYNCERR: Final = 0x04000000
#: ``SMC_CLC_DECL_MAX_DMB`` (net/smc/smc_clc.h): no DMB slot for any size
SMC_CLC_DECL_MAX_DMB: Final = 0x030D0000


def dmb_bytes(size: int) -> int:
    """Bytes of a DMB of compressed size ``size``: 16 KiB << size (``smc_uncompress_bufsize``)."""
    return SMC_BUF_MIN_SIZE << size


# --------------------------------------------------------------------------------------------
# Errors
# --------------------------------------------------------------------------------------------


class LifecycleError(ForbiddenStep):
    """A lifecycle step the kernel would not take (or that fails) in the current state."""


class UnknownToken(LifecycleError):
    """A device op named a token that is not in the device table (the kernel's ``-EINVAL``)."""


class DuplicateToken(LifecycleError):
    """A new DMB would get a token already in the device table."""


class DmbNotRegistered(LifecycleError):
    """The DMB descriptor named does not exist (never registered, or already unregistered)."""


class NoFreeSlot(LifecycleError):
    """No free DMB slot on the device (loopback's ``-ENOSPC``; all sizes: SMC_CLC_DECL_MAX_DMB)."""


class DoubleUnregister(LifecycleError):
    """The owner's reference on this DMB was already dropped (a second unregister)."""


class UseAfterRelease(LifecycleError):
    """The step would touch DMB memory whose last reference was dropped."""


class LgrTerminating(LifecycleError):
    """The link group is terminating or being freed (off the device list)."""


class LgrOutOfSync(LifecycleError):
    """The client finds no lgr to reuse although the server reused one (SMC_CLC_DECL_SYNCERR)."""

    decline_code = SMC_CLC_DECL_SYNCERR


class MustReuseDmb(LifecycleError):
    """A new DMB was asked for although an unused one of that size waits in the lgr."""


class NoSuchConn(LifecycleError):
    """The connection id names no connection (or a pair/role already in use)."""


class NoSuchLgr(LifecycleError):
    """The link group id names no link group."""


class ConnStateError(LifecycleError):
    """The connection is not in a state where this step is allowed (message says which)."""


class LgrStateError(LifecycleError):
    """The link group is not in a state where this step is allowed (message says which)."""


class LifecycleConfigError(PreconditionViolated):
    """A :class:`LifecycleConfig` field outside what the spec supports."""


# --------------------------------------------------------------------------------------------
# Configuration
# --------------------------------------------------------------------------------------------

Link: TypeAlias = tuple[int, int]


@dataclass(frozen=True, slots=True, kw_only=True)
class LifecycleConfig:
    """Bounds and switches of one exploration (the spec never hard-codes them).

    Each host has one SMC-D device: loopback-ism when ``emulated`` (GID ``h + 1``, ``gid_ext``
    ``h + 1``, CHID 0xFFFF, SMC v2 only, reaches only itself) or native ISM (GID ``h + 1``,
    ``gid_ext`` 0, reaches every host in ``links``).
    """

    #: number of hosts (one device each)
    n_hosts: int = 1
    #: loopback-ism (True) or native ISM (False)
    emulated: bool = True
    #: merged ("nocopy") mode: the sndbuf is a ghost of the peer DMB (loopback only)
    merged: bool = True
    #: number of socket pairs the exploration may open (pairs are used once each)
    max_conns: int = 2
    #: DMB slots per device (``SMC_LO_MAX_DMBS`` = 5000 in the kernel)
    max_dmbs: int = SMC_LO_MAX_DMBS
    #: compressed DMB sizes a connection may want (size k is 16 KiB << k, k = 0..6)
    dmb_sizes: tuple[int, ...] = (0,)
    #: (client host, server host) pairs that may connect; None: every host to itself when
    #: emulated, every ordered pair when native
    links: tuple[Link, ...] | None = None
    #: VLAN ids a handshake may use
    vlans: tuple[int, ...] = (0,)
    #: SMC-D versions a handshake may negotiate (loopback: 2 only)
    versions: tuple[int, ...] = (SMC_V2,)
    #: close and abort may race on both ends; False: the client closes first, the server after
    #: receiving it, no ConnAbort
    close_abort_race: bool = True
    #: link-group errors (LgrTerminate) may strike any listed lgr
    lgr_errors: bool = True
    #: known-wrong behaviours switched on (this module owns UNREGISTER_WHILE_ATTACHED and
    #: LGR_REUSE_PEER_MISMATCH)
    faults: frozenset[Fault] = field(default_factory=frozenset)

    def __post_init__(self) -> None:
        if self.n_hosts < 1:
            raise LifecycleConfigError(f"n_hosts={self.n_hosts}: need at least one host")
        if self.max_conns < 0:
            raise LifecycleConfigError(f"max_conns={self.max_conns}: must be >= 0")
        if self.max_dmbs < 1:
            raise LifecycleConfigError(f"max_dmbs={self.max_dmbs}: must be >= 1")
        if not self.dmb_sizes or any(not 0 <= k <= SMCD_DMBE_SIZES for k in self.dmb_sizes):
            raise LifecycleConfigError(
                f"dmb_sizes={self.dmb_sizes}: need compressed sizes in 0..{SMCD_DMBE_SIZES}"
            )
        if tuple(sorted(set(self.dmb_sizes))) != self.dmb_sizes:
            raise LifecycleConfigError(f"dmb_sizes={self.dmb_sizes}: must be sorted, unique")
        if self.merged and not self.emulated:
            raise LifecycleConfigError("merged=True needs emulated=True (ISM has no nocopy)")
        if self.emulated and any(v != SMC_V2 for v in self.versions):
            raise LifecycleConfigError(f"versions={self.versions}: loopback-ism is SMC-D v2 only")
        if not self.versions or any(v not in (SMC_V1, SMC_V2) for v in self.versions):
            raise LifecycleConfigError(f"versions={self.versions}: expected 1 and/or 2")
        if not self.vlans or any(not 0 <= v < 4095 for v in self.vlans):
            raise LifecycleConfigError(f"vlans={self.vlans}: expected VLAN ids 0..4094")
        for link in self.links or ():
            c, s = link
            if not (0 <= c < self.n_hosts and 0 <= s < self.n_hosts):
                raise LifecycleConfigError(f"link {link}: host outside 0..{self.n_hosts - 1}")
            if self.emulated and c != s:
                raise LifecycleConfigError(f"link {link}: loopback-ism reaches only its host")
        if not isinstance(self.faults, frozenset) or any(
            not isinstance(f, Fault) for f in self.faults
        ):
            raise LifecycleConfigError(f"faults={self.faults!r}: expected a frozenset of Fault")

    def all_links(self) -> tuple[Link, ...]:
        """The (client host, server host) pairs a new connection may use, in order."""
        if self.links is not None:
            return self.links
        hosts = range(self.n_hosts)
        if self.emulated:
            return tuple((h, h) for h in hosts)
        return tuple((c, s) for c in hosts for s in hosts)


def device_gid(cfg: LifecycleConfig, host: int) -> tuple[int, int]:
    """(gid, gid_ext) of ``host``'s device. 0 is never a GID (it means "none" in the kernel)."""
    return host + 1, (host + 1 if cfg.emulated else 0)


def device_chid(cfg: LifecycleConfig, host: int) -> int:
    """CHID of ``host``'s device (0xFFFF for loopback-ism)."""
    del host
    return SMC_LO_RESERVED_CHID if cfg.emulated else ISM_MODEL_CHID


def host_of_gid(cfg: LifecycleConfig, gid: int, gid_ext: int) -> int | None:
    """The host whose device has (gid, gid_ext), or None (for callers holding CLC GIDs)."""
    for h in range(cfg.n_hosts):
        if device_gid(cfg, h) == (gid, gid_ext):
            return h
    return None


# --------------------------------------------------------------------------------------------
# State
# --------------------------------------------------------------------------------------------


class Role(enum.IntEnum):
    """``enum smc_lgr_role`` (net/smc/smc_core.h)."""

    #: the connecting side
    CLNT = 0
    #: the listening side
    SERV = 1


class Stage(enum.IntEnum):
    """How far a connection's handshake got (the lifecycle's view of it)."""

    #: in a link group (``smc_conn_create`` done), no DMB yet
    CREATED = 0
    #: its DMB exists (``smc_buf_create``); the server has sent its Accept
    HAS_DMB = 1
    #: peer token known and, merged, the peer DMB attached; data may flow
    ESTABLISHED = 2
    #: handshake failed (Decline / ``smc_conn_abort``); the socket fell back or went away
    DECLINED = 3


#: stages in which the host's ``smc_server_lgr_pending`` mutex may be held
HANDSHAKE_STAGES: Final = frozenset({Stage.CREATED, Stage.HAS_DMB})


@dataclass(frozen=True, slots=True, kw_only=True)
class Lgr:
    """One SMC-D link group."""

    lgr_id: int
    #: host whose device the lgr is on (``lgr->smcd``)
    host: int
    #: role of the connection that created it (``lgr->role``; not matched for SMC-D)
    role: Role
    peer_gid: int
    peer_gid_ext: int
    vlan_id: int
    smc_version: int
    #: registered connections (``conns_all``; ``conns_num`` is its length) in registration
    #: order (the rb-tree's order: ``alert_token_local`` grows with each registration)
    conns: tuple[int, ...] = ()
    #: connections holding an lgr reference (``smc_lgr_hold``), sorted cids
    holders: tuple[int, ...] = ()
    #: DMB descriptor ids in list order (``lgr->rmbs[size]``, newest first per size)
    rmbs: tuple[int, ...] = ()
    sync_err: bool = False
    terminating: bool = False
    freeing: bool = False
    #: ``free_work`` queued (``smc_lgr_schedule_free_work``)
    free_pending: bool = False
    #: ``terminate_work`` queued (``smc_lgr_terminate_sched``)
    terminate_pending: bool = False
    #: ``smc_lgr_free`` ran: the lgr's own reference is dropped
    released: bool = False

    @property
    def listed(self) -> bool:
        """On the device's ``lgr_list``, i.e. findable by ``smc_conn_create``."""
        return not self.freeing

    @property
    def dying(self) -> bool:
        """Released and unreferenced: its buffers are being freed (``smc_lgr_free_bufs``)."""
        return self.released and not self.holders


@dataclass(frozen=True, slots=True, kw_only=True)
class DmbDesc:
    """A DMB descriptor of a link group (``struct smc_buf_desc``, is_dmb)."""

    desc_id: int
    lgr_id: int
    #: compressed size (16 KiB << size bytes)
    size: int
    token: int
    #: ``used``: a connection holds it
    used: bool
    #: the connection using it (None when unused)
    owner: int | None
    #: its memory still exists (False only after a wrong release under a fault)
    mem_live: bool = True


@dataclass(frozen=True, slots=True, kw_only=True)
class DmbNode:
    """A DMB in the device table (``struct smc_lo_dmb_node``)."""

    #: device (= host) whose table holds it
    dev: int
    token: int
    #: slot index (``sba_idx``), 0..max_dmbs-1
    sba_idx: int
    size: int
    #: ``refcnt``: owner registration (if ``owned``) plus attached ghosts
    refcnt: int
    #: the owner's registration reference is still held (not yet unregistered)
    owned: bool


@dataclass(frozen=True, slots=True, kw_only=True)
class Conn:
    """One connection endpoint (``struct smc_connection`` and the socket facts needed here)."""

    cid: int
    role: Role
    host: int
    #: the host of the other end (the standalone model's bookkeeping)
    peer_host: int
    #: the peer as the handshake named it (``ini->ism_peer_gid``)
    peer_gid: int
    peer_gid_ext: int
    vlan_id: int
    smc_version: int
    stage: Stage = Stage.CREATED
    #: ``conn->lgr`` (kept after unregister, as 6.12.118 does; validity is ``registered``)
    lgr: int | None = None
    #: registered in the lgr (alert token != 0)
    registered: bool = False
    #: holds an lgr reference
    holds_lgr: bool = False
    #: this side created its lgr (``ini->first_contact_local``)
    first_contact: bool = False
    #: own DMB descriptor id (``rmb_desc``)
    rmb: int | None = None
    #: ``smcd->conn[sba_idx] == conn``: rx signals reach it
    conn_set: bool = False
    #: the peer's DMB token (``conn->peer_token``), once learned
    peer_token: int | None = None
    #: merged: token of the peer DMB attached as ghost sndbuf
    ghost_token: int | None = None
    #: the ghost's memory was released under it (only with UNREGISTER_WHILE_ATTACHED)
    ghost_dangling: bool = False
    #: conn-state flags sent (``local_tx_ctrl.conn_state_flags``, sticky)
    tx_flags: int = 0
    #: conn-state flags received from the peer (``local_rx_ctrl.conn_state_flags``)
    rx_flags: int = 0
    #: received data not yet read (``bytes_to_rcv > 0``)
    unread: bool = False
    #: the application closed the socket
    closed: bool = False
    #: the socket went through ``smc_close_active_abort`` or a CDC send failed
    aborted: bool = False
    #: ``conn->killed`` (``smc_conn_kill``)
    killed: bool = False
    #: ``conn->freed`` (``smc_conn_free`` done)
    freed: bool = False

    @property
    def pair(self) -> int:
        """Socket pair index."""
        return self.cid >> 1

    @property
    def peer_cid(self) -> int:
        """cid of the other end of the pair."""
        return self.cid ^ 1


@dataclass(frozen=True, slots=True, kw_only=True)
class LifecycleState:
    """The whole lifecycle state: four tables sorted by key, plus the use-after-release mark."""

    lgrs: tuple[Lgr, ...] = ()
    descs: tuple[DmbDesc, ...] = ()
    nodes: tuple[DmbNode, ...] = ()
    conns: tuple[Conn, ...] = ()
    #: a write or read went through released memory (reachable only under a fault)
    uar: bool = False


def initial_state(cfg: LifecycleConfig) -> LifecycleState:
    """No link group, no DMB, no connection."""
    del cfg
    return LifecycleState()


# --------------------------------------------------------------------------------------------
# Actions
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class HostCreateConn:
    """``smc_conn_create`` for one end of pair ``pair`` on ``host``, peer on ``peer_host``."""

    pair: int
    role: Role
    host: int
    peer_host: int
    vlan: int
    version: int


@dataclass(frozen=True, slots=True, kw_only=True)
class HostReuseDmb:
    """``smc_buf_get_slot``: connection ``conn`` takes an unused DMB of ``size`` of its lgr."""

    conn: int
    size: int


@dataclass(frozen=True, slots=True, kw_only=True)
class DevRegisterDmb:
    """``smcd_new_buf_create``: a new DMB of ``size`` registered on the device for ``conn``."""

    conn: int
    size: int


@dataclass(frozen=True, slots=True, kw_only=True)
class HostDeclineConn:
    """The handshake of ``pair`` fails (no DMB, or the peer DMB cannot be attached)."""

    pair: int


@dataclass(frozen=True, slots=True, kw_only=True)
class PeerAttachDmb:
    """Merged mode: ``conn`` attaches its peer's DMB as ghost sndbuf (``smcd_buf_attach``)."""

    conn: int


@dataclass(frozen=True, slots=True, kw_only=True)
class HostSavePeerInfo:
    """Copy mode: ``conn`` learns its peer's DMB token (``smcd_conn_save_peer_info``)."""

    conn: int


@dataclass(frozen=True, slots=True, kw_only=True)
class HostWriteDmb:
    """``conn`` writes data into its peer's DMB and signals it with a CDC."""

    conn: int


@dataclass(frozen=True, slots=True, kw_only=True)
class HostReadDmb:
    """``conn`` consumes the data in its own DMB."""

    conn: int


@dataclass(frozen=True, slots=True, kw_only=True)
class ConnShutdown:
    """``shutdown(SHUT_WR)``: send ``peer_done_writing``."""

    conn: int


@dataclass(frozen=True, slots=True, kw_only=True)
class ConnClose:
    """``close()``: ``smc_close_final`` (closed, or abort when unread data remains)."""

    conn: int


@dataclass(frozen=True, slots=True, kw_only=True)
class ConnAbort:
    """``smc_close_abort`` + ``smc_close_active_abort``: send abort, socket closed at once."""

    conn: int


@dataclass(frozen=True, slots=True, kw_only=True)
class PeerDetachDmb:
    """``smc_conn_free`` steps 1-3: unset the conn, detach the ghost sndbuf."""

    conn: int


@dataclass(frozen=True, slots=True, kw_only=True)
class HostFreeConn:
    """``smc_conn_free`` steps 4-6: unuse buffers, unregister, schedule lgr free, drop ref."""

    conn: int


@dataclass(frozen=True, slots=True, kw_only=True)
class LgrFreeDelayed:
    """``smc_lgr_free_work`` runs (the delay abstracted away)."""

    lgr: int


@dataclass(frozen=True, slots=True, kw_only=True)
class LgrTerminate:
    """An error hits the lgr: ``smc_lgr_terminate_sched``."""

    lgr: int


@dataclass(frozen=True, slots=True, kw_only=True)
class LgrTerminateWork:
    """``__smc_lgr_terminate`` runs (the queued terminate work)."""

    lgr: int


@dataclass(frozen=True, slots=True, kw_only=True)
class HostUnregisterDmb:
    """``smcd_buf_free``: the next DMB of a freed lgr is unregistered from the device."""

    lgr: int
    desc: int


Action: TypeAlias = (
    HostCreateConn
    | HostReuseDmb
    | DevRegisterDmb
    | HostDeclineConn
    | PeerAttachDmb
    | HostSavePeerInfo
    | HostWriteDmb
    | HostReadDmb
    | ConnShutdown
    | ConnClose
    | ConnAbort
    | PeerDetachDmb
    | HostFreeConn
    | LgrFreeDelayed
    | LgrTerminate
    | LgrTerminateWork
    | HostUnregisterDmb
)

#: every action type, in the order enabled_actions considers them (for labels and tables)
ACTION_TYPES: Final = (
    LgrFreeDelayed,
    LgrTerminateWork,
    LgrTerminate,
    HostUnregisterDmb,
    HostCreateConn,
    HostReuseDmb,
    DevRegisterDmb,
    HostDeclineConn,
    PeerAttachDmb,
    HostSavePeerInfo,
    HostWriteDmb,
    HostReadDmb,
    ConnShutdown,
    ConnClose,
    ConnAbort,
    PeerDetachDmb,
    HostFreeConn,
)

# --------------------------------------------------------------------------------------------
# Table helpers (pure)
# --------------------------------------------------------------------------------------------


def get_conn(s: LifecycleState, cid: int) -> Conn:
    """The connection ``cid``; :class:`NoSuchConn` when there is none."""
    for c in s.conns:
        if c.cid == cid:
            return c
    raise NoSuchConn(f"no connection cid={cid} (known: {[c.cid for c in s.conns]})")


def find_conn(s: LifecycleState, cid: int) -> Conn | None:
    """The connection ``cid`` or None."""
    for c in s.conns:
        if c.cid == cid:
            return c
    return None


def get_lgr(s: LifecycleState, lgr_id: int) -> Lgr:
    """The link group ``lgr_id``; :class:`NoSuchLgr` when there is none."""
    for lg in s.lgrs:
        if lg.lgr_id == lgr_id:
            return lg
    raise NoSuchLgr(f"no link group lgr={lgr_id} (known: {[lg.lgr_id for lg in s.lgrs]})")


def get_desc(s: LifecycleState, desc_id: int) -> DmbDesc:
    """The DMB descriptor ``desc_id``; :class:`DmbNotRegistered` when there is none."""
    for d in s.descs:
        if d.desc_id == desc_id:
            return d
    raise DmbNotRegistered(f"no DMB descriptor desc={desc_id} (unregistered or never created)")


def find_node(s: LifecycleState, token: int) -> DmbNode | None:
    """The device-table node with ``token`` (the first, should there be several) or None."""
    for n in s.nodes:
        if n.token == token:
            return n
    return None


def _upsert(rows: tuple[_R, ...], row: _R, key: int, keyof: Any) -> tuple[_R, ...]:
    """``rows`` (sorted by ``keyof``) with the row of ``key`` replaced by or joined by ``row``."""
    for i, r in enumerate(rows):
        k = keyof(r)
        if k == key:
            return (*rows[:i], row, *rows[i + 1 :])
        if k > key:
            return (*rows[:i], row, *rows[i:])
    return (*rows, row)


def _cid(c: Conn) -> int:
    return c.cid


def _lgr_key(lg: Lgr) -> int:
    return lg.lgr_id


def _desc_key(d: DmbDesc) -> int:
    return d.desc_id


def _put_conn(s: LifecycleState, conn: Conn) -> LifecycleState:
    return replace(s, conns=_upsert(s.conns, conn, conn.cid, _cid))


def _put_lgr(s: LifecycleState, lgr: Lgr) -> LifecycleState:
    return replace(s, lgrs=_upsert(s.lgrs, lgr, lgr.lgr_id, _lgr_key))


def _drop_lgr(s: LifecycleState, lgr_id: int) -> LifecycleState:
    return replace(s, lgrs=tuple(lg for lg in s.lgrs if lg.lgr_id != lgr_id))


def _put_desc(s: LifecycleState, desc: DmbDesc) -> LifecycleState:
    return replace(s, descs=_upsert(s.descs, desc, desc.desc_id, _desc_key))


def _drop_desc(s: LifecycleState, desc_id: int) -> LifecycleState:
    return replace(s, descs=tuple(d for d in s.descs if d.desc_id != desc_id))


def _node_key(n: DmbNode) -> tuple[int, int, int]:
    return (n.dev, n.sba_idx, n.token)


def _put_node(s: LifecycleState, old: DmbNode | None, new: DmbNode) -> LifecycleState:
    rest = tuple(n for n in s.nodes if n is not old) if old is not None else s.nodes
    return replace(s, nodes=tuple(sorted((*rest, new), key=_node_key)))


def _lowest_unused(used: set[int], start: int = 0) -> int:
    i = start
    while i in used:
        i += 1
    return i


def _in_handshake_cs(c: Conn) -> bool:
    """Holds the host's ``smc_server_lgr_pending`` mutex (see the module docstring)."""
    if c.freed or c.stage not in HANDSHAKE_STAGES:
        return False
    if c.role is Role.SERV:
        return c.stage is Stage.CREATED
    return True


# --------------------------------------------------------------------------------------------
# Device ops (loopback-ism node table; tokens shared by all devices of the model)
# --------------------------------------------------------------------------------------------


def next_token(s: LifecycleState) -> int:
    """The token the model's device hands out next: the lowest positive one not in the table."""
    return _lowest_unused({n.token for n in s.nodes}, start=1)


def dev_register_dmb(
    cfg: LifecycleConfig, s: LifecycleState, dev: int, size: int, token: int | None = None
) -> tuple[LifecycleState, int, int]:
    """``smc_lo_register_dmb``: lowest free slot, a token unique in the table, refcnt 1.

    Returns ``(state, token, sba_idx)``. Raises :class:`NoFreeSlot` (``-ENOSPC``) when all
    ``max_dmbs`` slots of ``dev`` are taken and :class:`DuplicateToken` when ``token`` (given,
    or the allocator's) is already in the table.
    """
    taken = {n.sba_idx for n in s.nodes if n.dev == dev}
    if len(taken) >= cfg.max_dmbs:
        raise NoFreeSlot(f"device {dev}: all {cfg.max_dmbs} DMB slots taken (-ENOSPC)")
    slot = _lowest_unused(taken)
    tok = next_token(s) if token is None else token
    if find_node(s, tok) is not None:
        raise DuplicateToken(f"device {dev}: token {tok} already names a registered DMB")
    node = DmbNode(dev=dev, token=tok, sba_idx=slot, size=size, refcnt=1, owned=True)
    return _put_node(s, None, node), tok, slot


def _release_node(s: LifecycleState, node: DmbNode) -> LifecycleState:
    """Refcount reached 0 (or a fault): out of the table, slot cleared, memory freed.

    Any ghost still pointing at the memory dangles from now on, and a descriptor still naming
    it has lost its memory; both can happen only under a fault.
    """
    s = replace(s, nodes=tuple(n for n in s.nodes if n is not node))
    conns = tuple(
        replace(c, ghost_dangling=True)
        if c.ghost_token == node.token and not c.ghost_dangling
        else c
        for c in s.conns
    )
    descs = tuple(
        replace(d, mem_live=False) if d.token == node.token and d.mem_live else d for d in s.descs
    )
    return replace(s, conns=conns, descs=descs)


def dev_unregister_dmb(cfg: LifecycleConfig, s: LifecycleState, token: int) -> LifecycleState:
    """``smc_lo_unregister_dmb``: drop the owner's reference; free at refcnt 0.

    With ``Fault.UNREGISTER_WHILE_ATTACHED`` the node is freed at once whatever its refcnt
    (the pre-refcount behaviour applied to a merged-mode peer): attached ghosts dangle.
    Raises :class:`UnknownToken` (``-EINVAL``) and :class:`DoubleUnregister`.
    """
    node = find_node(s, token)
    if node is None:
        raise UnknownToken(f"unregister_dmb: token {token} is not registered (-EINVAL)")
    if not node.owned:
        raise DoubleUnregister(
            f"unregister_dmb: token {token} was already unregistered by its owner "
            f"(refcnt {node.refcnt} held by attached peers)"
        )
    if Fault.UNREGISTER_WHILE_ATTACHED in cfg.faults:
        return _release_node(s, node)
    if node.refcnt == 1:
        return _release_node(s, node)
    return _put_node(s, node, replace(node, refcnt=node.refcnt - 1, owned=False))


def dev_attach_dmb(cfg: LifecycleConfig, s: LifecycleState, token: int) -> LifecycleState:
    """``smc_lo_attach_dmb``: refcnt + 1; :class:`UnknownToken` (``-EINVAL``) when absent."""
    del cfg
    node = find_node(s, token)
    if node is None:
        raise UnknownToken(f"attach_dmb: token {token} is not registered (-EINVAL)")
    return _put_node(s, node, replace(node, refcnt=node.refcnt + 1))


def dev_detach_dmb(cfg: LifecycleConfig, s: LifecycleState, token: int) -> LifecycleState:
    """``smc_lo_detach_dmb``: refcnt - 1, free at 0; :class:`UnknownToken` when absent."""
    del cfg
    node = find_node(s, token)
    if node is None:
        raise UnknownToken(f"detach_dmb: token {token} is not registered (-EINVAL)")
    if node.refcnt <= 1:
        return _release_node(s, node)
    return _put_node(s, node, replace(node, refcnt=node.refcnt - 1))


def dev_move_data(cfg: LifecycleConfig, s: LifecycleState, token: int) -> Conn | None:
    """``smc_lo_move_data`` with the signal flag: the connection the signal reaches.

    Raises :class:`UnknownToken` (``-EINVAL``) when the token is not in the table. Returns the
    connection set for the DMB (``smcd->conn[sba_idx]``), or None when there is none or it is
    killed (the kernel's ``-EPIPE``; the bytes are copied all the same).
    """
    del cfg
    node = find_node(s, token)
    if node is None:
        raise UnknownToken(f"move_data: token {token} is not registered (-EINVAL)")
    for c in s.conns:
        if c.conn_set and c.rmb is not None and not c.killed:
            d = next((d for d in s.descs if d.desc_id == c.rmb), None)
            if d is not None and d.token == token:
                return c
    return None


# --------------------------------------------------------------------------------------------
# Link groups and connections
# --------------------------------------------------------------------------------------------


def smcd_lgr_match(cfg: LifecycleConfig, lgr: Lgr, host: int, peer_gid: int, gid_ext: int) -> bool:
    """``smcd_lgr_match``: same peer GID, same device, and (emulated) same gid_ext.

    With ``Fault.LGR_REUSE_PEER_MISMATCH`` it is the first v6.8 version,
    ``gid == && dev == && emulated ? ext == : 1``: by C precedence any lgr matches unless GID,
    device and emulation all hold and only gid_ext differs.
    """
    gid_eq = lgr.peer_gid == peer_gid
    dev_eq = lgr.host == host
    ext_eq = lgr.peer_gid_ext == gid_ext
    if Fault.LGR_REUSE_PEER_MISMATCH in cfg.faults:
        return ext_eq if (gid_eq and dev_eq and cfg.emulated) else True
    if not (gid_eq and dev_eq):
        return False
    return not (cfg.emulated and not ext_eq)


def find_reusable_lgr(
    cfg: LifecycleConfig,
    s: LifecycleState,
    host: int,
    peer_gid: int,
    gid_ext: int,
    chid: int,
    vlan: int,
    smcd_version: int,
) -> int | None:
    """The lgr ``smc_conn_create`` joins on ``host``'s device (``chid``), or None.

    Scans the device's list in creation order; the first lgr with ``smcd_lgr_match``,
    ``!sync_err`` and (``smcd_version == 2`` or equal VLAN) wins. The role is not compared.
    Raises :class:`LifecycleConfigError` when ``host`` has no device with ``chid``.
    """
    if not 0 <= host < cfg.n_hosts or device_chid(cfg, host) != chid:
        raise LifecycleConfigError(f"host {host} has no SMC-D device with CHID {chid:#06x}")
    for lgr in s.lgrs:  # sorted by id == creation order of the live lgrs
        if lgr.host != host or not lgr.listed:
            continue
        if not smcd_lgr_match(cfg, lgr, host, peer_gid, gid_ext):
            continue
        if lgr.sync_err:
            continue
        if smcd_version != SMC_V2 and lgr.vlan_id != vlan:
            continue
        return lgr.lgr_id
    return None


def create_conn(
    cfg: LifecycleConfig,
    s: LifecycleState,
    *,
    pair: int,
    role: Role,
    host: int,
    peer_host: int,
    vlan: int,
    smcd_version: int,
    first_contact_peer: bool = False,
) -> tuple[LifecycleState, int, bool]:
    """``smc_conn_create`` for end ``role`` of ``pair``: join or create an lgr, register.

    Returns ``(state, cid, first_contact_local)``. A client with ``first_contact_peer`` always
    creates; a client without it that finds nothing raises :class:`LgrOutOfSync`
    (SMC_CLC_DECL_SYNCERR). Joining cancels a pending delayed free.
    """
    cid = 2 * pair + int(role)
    if pair < 0 or find_conn(s, cid) is not None:
        raise NoSuchConn(f"pair {pair} role {role.name}: that connection end already exists")
    if not (0 <= host < cfg.n_hosts and 0 <= peer_host < cfg.n_hosts):
        raise LifecycleConfigError(f"hosts {host}/{peer_host} outside 0..{cfg.n_hosts - 1}")
    peer_gid, peer_ext = device_gid(cfg, peer_host)
    lgr_id: int | None = None
    if not (role is Role.CLNT and first_contact_peer):
        lgr_id = find_reusable_lgr(
            cfg, s, host, peer_gid, peer_ext, device_chid(cfg, host), vlan, smcd_version
        )
    if role is Role.CLNT and not first_contact_peer and lgr_id is None:
        raise LgrOutOfSync(
            f"pair {pair}: server reused a link group but client host {host} has none for "
            f"peer gid {peer_gid}/{peer_ext} (SMC_CLC_DECL_SYNCERR)"
        )
    first = lgr_id is None
    if lgr_id is None:
        lgr_id = _lowest_unused({lg.lgr_id for lg in s.lgrs})
        lgr = Lgr(
            lgr_id=lgr_id,
            host=host,
            role=role,
            peer_gid=peer_gid,
            peer_gid_ext=peer_ext,
            vlan_id=vlan,
            smc_version=smcd_version,
        )
    else:
        lgr = replace(get_lgr(s, lgr_id), free_pending=False)
    lgr = replace(
        lgr,
        # conns_all is an rb-tree keyed by alert_token_local, drawn from a global counter at
        # registration: its order, the order __smc_lgr_terminate kills in, is registration order
        conns=(*lgr.conns, cid),
        holders=tuple(sorted((*lgr.holders, cid))),
    )
    conn = Conn(
        cid=cid,
        role=role,
        host=host,
        peer_host=peer_host,
        peer_gid=peer_gid,
        peer_gid_ext=peer_ext,
        vlan_id=vlan,
        smc_version=smcd_version,
        lgr=lgr_id,
        registered=True,
        holds_lgr=True,
        first_contact=first,
    )
    return _put_conn(_put_lgr(s, lgr), conn), cid, first


def _conn_for_dmb(s: LifecycleState, cid: int) -> tuple[Conn, Lgr]:
    c = get_conn(s, cid)
    if c.stage is not Stage.CREATED or c.freed or c.killed or c.rmb is not None:
        raise ConnStateError(
            f"conn {cid}: a DMB is created right after smc_conn_create "
            f"(stage={c.stage.name}, killed={c.killed}, freed={c.freed}, rmb={c.rmb})"
        )
    assert c.lgr is not None
    return c, get_lgr(s, c.lgr)


def _reusable_desc(s: LifecycleState, lgr: Lgr, size: int) -> DmbDesc | None:
    for desc_id in lgr.rmbs:
        d = get_desc(s, desc_id)
        if d.size == size and not d.used:
            return d
    return None


def _take_desc(s: LifecycleState, c: Conn, d: DmbDesc) -> LifecycleState:
    s = _put_desc(s, replace(d, used=True, owner=c.cid))
    return _put_conn(s, replace(c, rmb=d.desc_id, conn_set=True, stage=Stage.HAS_DMB))


def reuse_dmb(
    cfg: LifecycleConfig, s: LifecycleState, cid: int, size: int
) -> tuple[LifecycleState, int]:
    """``smc_buf_get_slot``: take the lgr's first unused DMB of ``size``; returns its token."""
    del cfg
    c, lgr = _conn_for_dmb(s, cid)
    d = _reusable_desc(s, lgr, size)
    if d is None:
        raise DmbNotRegistered(f"conn {cid}: lgr {lgr.lgr_id} has no unused DMB of size {size}")
    return _take_desc(s, c, d), d.token


def register_dmb(
    cfg: LifecycleConfig, s: LifecycleState, cid: int, size: int, token: int | None = None
) -> tuple[LifecycleState, int]:
    """``smcd_new_buf_create`` for ``cid``: register a new DMB of ``size``; returns its token.

    Raises :class:`MustReuseDmb` when an unused DMB of that size waits in the lgr (the kernel
    takes it first), :class:`NoFreeSlot` and :class:`DuplicateToken` from the device.
    """
    c, lgr = _conn_for_dmb(s, cid)
    if not 0 <= size <= SMCD_DMBE_SIZES:
        raise ConnStateError(f"conn {cid}: DMB size {size} outside 0..{SMCD_DMBE_SIZES}")
    waiting = _reusable_desc(s, lgr, size)
    if waiting is not None:
        raise MustReuseDmb(
            f"conn {cid}: lgr {lgr.lgr_id} has unused DMB desc {waiting.desc_id} of size {size}"
        )
    s2, tok, _slot = dev_register_dmb(cfg, s, c.host, size, token)
    desc_id = _lowest_unused({d.desc_id for d in s.descs})
    d = DmbDesc(desc_id=desc_id, lgr_id=lgr.lgr_id, size=size, token=tok, used=False, owner=None)
    s2 = _put_desc(s2, d)
    s2 = _put_lgr(s2, replace(lgr, rmbs=(desc_id, *lgr.rmbs)))  # list_add: newest first
    return _take_desc(s2, c, d), tok


def dmb_search(cfg: LifecycleConfig, s: LifecycleState, cid: int, want: int) -> Action | None:
    """What ``__smc_buf_create`` does for ``cid`` wanting size ``want``: the action, or None.

    From ``want`` down to 0: reuse an unused DMB of that size, else register one if a slot is
    free (``-ENOSPC`` -> next smaller size). None: every size failed (SMC_CLC_DECL_MAX_DMB).
    """
    c, lgr = _conn_for_dmb(s, cid)
    slots_full = sum(1 for n in s.nodes if n.dev == c.host) >= cfg.max_dmbs
    for size in range(want, -1, -1):
        if _reusable_desc(s, lgr, size) is not None:
            return HostReuseDmb(conn=cid, size=size)
        if not slots_full:
            return DevRegisterDmb(conn=cid, size=size)
    return None


def create_dmb(
    cfg: LifecycleConfig, s: LifecycleState, cid: int, want: int
) -> tuple[LifecycleState, int]:
    """``__smc_buf_create`` for the DMB of ``cid``; returns ``(state, token)``.

    Raises :class:`NoFreeSlot` when no size works (the handshake's SMC_CLC_DECL_MAX_DMB).
    """
    a = dmb_search(cfg, s, cid, want)
    if a is None:
        raise NoFreeSlot(f"conn {cid}: no DMB of size <= {want} (SMC_CLC_DECL_MAX_DMB)")
    if isinstance(a, HostReuseDmb):
        return reuse_dmb(cfg, s, cid, a.size)
    assert isinstance(a, DevRegisterDmb)
    return register_dmb(cfg, s, cid, a.size)


def _conn_for_peer_info(s: LifecycleState, cid: int) -> Conn:
    c = get_conn(s, cid)
    if c.stage is not Stage.HAS_DMB or c.freed or c.killed:
        raise ConnStateError(
            f"conn {cid}: the peer's token is taken over after the own DMB exists and before "
            f"establishment (stage={c.stage.name}, killed={c.killed}, freed={c.freed})"
        )
    return c


def attach_dmb(
    cfg: LifecycleConfig, s: LifecycleState, cid: int, peer_token: int
) -> LifecycleState:
    """Merged mode ``smcd_buf_attach``: attach the peer DMB ``peer_token`` as ghost sndbuf.

    Raises :class:`UnknownToken` when the token is not registered (client: SMC_CLC_DECL_MEM).
    """
    if not cfg.merged:
        raise ConnStateError(f"conn {cid}: attach_dmb needs merged mode (nocopy device)")
    c = _conn_for_peer_info(s, cid)
    s = dev_attach_dmb(cfg, s, peer_token)
    return _put_conn(
        s,
        replace(c, peer_token=peer_token, ghost_token=peer_token, stage=Stage.ESTABLISHED),
    )


def save_peer_info(
    cfg: LifecycleConfig, s: LifecycleState, cid: int, peer_token: int
) -> LifecycleState:
    """Copy mode: ``cid`` learns the peer's DMB token and is established."""
    if cfg.merged:
        raise ConnStateError(f"conn {cid}: merged mode attaches the peer DMB (PeerAttachDmb)")
    c = _conn_for_peer_info(s, cid)
    return _put_conn(s, replace(c, peer_token=peer_token, stage=Stage.ESTABLISHED))


def _send_flags(
    cfg: LifecycleConfig, s: LifecycleState, c: Conn, flags: int, *, data: bool
) -> LifecycleState:
    """``c`` writes a CDC (``move_data`` sf=1, after data if ``data``) carrying sticky flags.

    The flags are set locally first. Delivery: the token must resolve and its DMB must still
    be set for the peer connection and the peer not killed; otherwise the send fails
    (``-EINVAL``/``-EPIPE``) and ``smcd_tx_ism_write`` sets the local ``peer_conn_abort``.
    """
    c = replace(c, tx_flags=c.tx_flags | flags)
    peer = find_conn(s, c.peer_cid)
    target: Conn | None = None
    if c.peer_token is not None and find_node(s, c.peer_token) is not None:
        target = dev_move_data(cfg, s, c.peer_token)
    if target is None or peer is None or target.cid != peer.cid:
        return _put_conn(s, replace(c, tx_flags=c.tx_flags | PEER_CONN_ABORT, aborted=True))
    got = c.tx_flags
    new_peer = replace(peer, rx_flags=peer.rx_flags | got, unread=peer.unread or data)
    if got & PEER_CONN_ABORT:
        # 6.12.118 smc_cdc_msg_recv_action: the receiver also sets its own outgoing abort flag
        new_peer = replace(new_peer, tx_flags=new_peer.tx_flags | PEER_CONN_ABORT)
    return _put_conn(_put_conn(s, c), new_peer)


def may_write(c: Conn) -> bool:
    """``smc_tx_sendmsg`` lets ``c`` send: established, nothing closing either way."""
    return (
        c.stage is Stage.ESTABLISHED
        and not (c.freed or c.killed or c.closed or c.aborted)
        and not c.tx_flags & (PEER_DONE_WRITING | PEER_CONN_CLOSED | PEER_CONN_ABORT)
        and not c.rx_flags & (PEER_CONN_CLOSED | PEER_CONN_ABORT)
    )


def _check_memory(cfg: LifecycleConfig, what: str, live: bool) -> bool:
    """True when the access is a use after release that the (faulty) kernel lets happen."""
    if live:
        return False
    if Fault.UNREGISTER_WHILE_ATTACHED not in cfg.faults:
        raise UseAfterRelease(f"{what}: the DMB memory was already released")
    return True


def write_dmb(cfg: LifecycleConfig, s: LifecycleState, cid: int) -> LifecycleState:
    """``cid`` writes data into its peer's DMB and signals it (see :class:`HostWriteDmb`)."""
    c = get_conn(s, cid)
    if not may_write(c):
        raise ConnStateError(
            f"conn {cid}: cannot send (stage={c.stage.name}, closed={c.closed}, "
            f"killed={c.killed}, tx={c.tx_flags:#04x}, rx={c.rx_flags:#04x})"
        )
    uar = False
    if c.ghost_token is not None:
        # merged: memcpy through the ghost sndbuf, no device call (move_data sf=0 returns 0)
        uar = _check_memory(cfg, f"conn {cid} writes its ghost sndbuf", not c.ghost_dangling)
    s = _send_flags(cfg, s, c, 0, data=True)
    return replace(s, uar=True) if uar else s


def read_dmb(cfg: LifecycleConfig, s: LifecycleState, cid: int) -> LifecycleState:
    """``cid`` consumes what was written into its DMB."""
    c = get_conn(s, cid)
    if c.freed or not c.unread or c.rmb is None:
        raise ConnStateError(f"conn {cid}: nothing to read (unread={c.unread}, freed={c.freed})")
    d = get_desc(s, c.rmb)
    uar = _check_memory(cfg, f"conn {cid} reads its DMB", d.mem_live)
    s = _put_conn(s, replace(c, unread=False))
    return replace(s, uar=True) if uar else s


def _established_open(s: LifecycleState, cid: int, what: str) -> Conn:
    c = get_conn(s, cid)
    if c.stage is not Stage.ESTABLISHED or c.freed or c.closed:
        raise ConnStateError(
            f"conn {cid}: {what} needs an established, not yet closed connection "
            f"(stage={c.stage.name}, closed={c.closed}, freed={c.freed})"
        )
    return c


def shutdown_conn(cfg: LifecycleConfig, s: LifecycleState, cid: int) -> LifecycleState:
    """``smc_close_wr``: send ``peer_done_writing`` (once)."""
    c = _established_open(s, cid, "shutdown")
    if c.killed or c.tx_flags & (PEER_DONE_WRITING | PEER_CONN_CLOSED | PEER_CONN_ABORT):
        raise ConnStateError(f"conn {cid}: already shut down or killed (tx={c.tx_flags:#04x})")
    return _send_flags(cfg, s, c, PEER_DONE_WRITING, data=False)


def close_conn(
    cfg: LifecycleConfig, s: LifecycleState, cid: int, *, sends: bool = True
) -> LifecycleState:
    """``close()``: ``smc_close_final`` or, after a received abort, ``smc_close_abort``.

    ``sends=False``: the socket's close machine sends nothing on this close (it is already
    SMC_CLOSED, e.g. a received abort closed a socket that had shut down, or it waits in
    SMC_PEERFINCLOSEWAIT/PEERCLOSEWAIT2 for the peer; :mod:`~smcd_check.spec.close` knows, the
    lifecycle does not track ``sk_state``): only the application's close is recorded.
    """
    c = _established_open(s, cid, "close")
    c = replace(c, closed=True)
    if c.killed or not sends:  # smc_close_final: -EPIPE, nothing sent
        return _put_conn(s, c)
    if c.rx_flags & PEER_CONN_ABORT:  # SMC_PROCESSABORT: smc_close_abort
        return _send_flags(cfg, s, c, PEER_CONN_ABORT, data=False)
    flag = PEER_CONN_ABORT if c.unread else PEER_CONN_CLOSED
    return _send_flags(cfg, s, c, flag, data=False)


def abort_close(cfg: LifecycleConfig, s: LifecycleState, cid: int) -> LifecycleState:
    """``smc_close_abort`` then ``smc_close_active_abort``: abort sent, socket done at once."""
    c = _established_open(s, cid, "abort")
    if c.killed:
        raise ConnStateError(f"conn {cid}: killed connections already sent their abort")
    c = replace(c, closed=True, aborted=True)
    return _send_flags(cfg, s, c, PEER_CONN_ABORT, data=False)


def may_free(c: Conn) -> bool:
    """The socket is done, so ``smc_conn_free`` runs: closed, and aborted/killed/peer closed."""
    return (
        not c.freed
        and c.stage is Stage.ESTABLISHED
        and c.closed
        and (c.aborted or c.killed or bool(c.rx_flags & (PEER_CONN_CLOSED | PEER_CONN_ABORT)))
    )


def _detach_ghost(cfg: LifecycleConfig, s: LifecycleState, c: Conn) -> LifecycleState:
    """``smcd_buf_detach``: detach_dmb(peer token); a failing detach is ignored by the kernel."""
    if c.ghost_token is None:
        return s
    with contextlib.suppress(UnknownToken):  # -EINVAL is ignored (only after a fault)
        s = dev_detach_dmb(cfg, s, c.ghost_token)
    c = get_conn(s, c.cid)
    return _put_conn(s, replace(c, ghost_token=None, ghost_dangling=False))


def detach_conn(cfg: LifecycleConfig, s: LifecycleState, cid: int) -> LifecycleState:
    """``smc_conn_free`` steps 1-3: unset the conn, (tasklet), detach the ghost sndbuf."""
    c = get_conn(s, cid)
    if not may_free(c) or c.ghost_token is None:
        raise ConnStateError(
            f"conn {cid}: detach is the start of smc_conn_free of a done socket with a ghost "
            f"(closed={c.closed}, ghost={c.ghost_token}, freed={c.freed})"
        )
    s = _put_conn(s, replace(c, conn_set=False))
    return _detach_ghost(cfg, s, get_conn(s, cid))


def _drop_lgr_ref(s: LifecycleState, cid: int, lgr_id: int) -> LifecycleState:
    lgr = get_lgr(s, lgr_id)
    lgr = replace(lgr, holders=tuple(h for h in lgr.holders if h != cid))
    return _after_lgr_change(_put_lgr(s, lgr), lgr.lgr_id)


def _after_lgr_change(s: LifecycleState, lgr_id: int) -> LifecycleState:
    """A dying lgr with no buffer left disappears (``kfree(lgr)``, device ``lgr_cnt`` - 1)."""
    lgr = get_lgr(s, lgr_id)
    if lgr.dying and not lgr.rmbs:
        return _drop_lgr(s, lgr_id)
    return s


def _free_conn(cfg: LifecycleConfig, s: LifecycleState, c: Conn) -> LifecycleState:
    """``smc_conn_free`` in 6.12.118 order (all steps; the ghost must already be detached)."""
    del cfg
    if c.freed:
        return s
    c = replace(c, freed=True, conn_set=False)
    if c.lgr is None:
        return _put_conn(s, c)
    s = _put_conn(s, c)
    if c.registered:
        lgr = get_lgr(s, c.lgr)
        if lgr.listed:
            if c.rmb is not None:  # smc_buf_unuse: DMB zeroed, used = 0, stays registered
                d = get_desc(s, c.rmb)
                s = _put_desc(s, replace(d, used=False, owner=None))
            lgr = replace(lgr, conns=tuple(x for x in lgr.conns if x != c.cid))
            s = _put_conn(s, replace(c, registered=False))
        if not lgr.conns and not lgr.freeing:
            lgr = replace(lgr, free_pending=True)
        s = _put_lgr(s, lgr)
    if c.holds_lgr:
        s = _put_conn(s, replace(get_conn(s, c.cid), holds_lgr=False))
        s = _drop_lgr_ref(s, c.cid, c.lgr)
    return s


def free_conn(cfg: LifecycleConfig, s: LifecycleState, cid: int) -> LifecycleState:
    """``smc_conn_free`` of a done socket (after :func:`detach_conn` in merged mode)."""
    c = get_conn(s, cid)
    if not may_free(c):
        raise ConnStateError(
            f"conn {cid}: smc_conn_free runs when the socket is done (stage={c.stage.name}, "
            f"closed={c.closed}, aborted={c.aborted}, killed={c.killed}, "
            f"rx={c.rx_flags:#04x}, freed={c.freed})"
        )
    if c.ghost_token is not None:
        raise ConnStateError(f"conn {cid}: ghost sndbuf still attached (PeerDetachDmb first)")
    return _free_conn(cfg, s, c)


def _lgr_free(s: LifecycleState, lgr_id: int) -> LifecycleState:
    """``smc_lgr_free`` (SMC-D): drop the lgr's own reference."""
    lgr = replace(get_lgr(s, lgr_id), released=True)
    return _after_lgr_change(_put_lgr(s, lgr), lgr_id)


def lgr_free_delayed(cfg: LifecycleConfig, s: LifecycleState, lgr_id: int) -> LifecycleState:
    """``smc_lgr_free_work``: free an lgr that stayed empty; a no-op otherwise."""
    del cfg
    lgr = get_lgr(s, lgr_id)
    if not lgr.free_pending:
        raise LgrStateError(f"lgr {lgr_id}: no delayed free is queued")
    lgr = replace(lgr, free_pending=False)
    if lgr.freeing or lgr.conns:
        return _put_lgr(s, lgr)
    s = _put_lgr(s, replace(lgr, freeing=True))
    return _lgr_free(s, lgr_id)


def terminate_sched(cfg: LifecycleConfig, s: LifecycleState, lgr_id: int) -> LifecycleState:
    """``smc_lgr_terminate_sched``: delist, ``freeing`` = 1, queue the terminate work."""
    del cfg
    lgr = get_lgr(s, lgr_id)
    if not lgr.listed or lgr.terminating:
        raise LgrTerminating(f"lgr {lgr_id}: already terminating or freeing")
    return _put_lgr(s, replace(lgr, freeing=True, terminate_pending=True))


def decline_sync_err(cfg: LifecycleConfig, s: LifecycleState, lgr_id: int) -> LifecycleState:
    """A Decline with the out-of-sync bit: ``sync_err`` = 1 and termination scheduled."""
    lgr = get_lgr(s, lgr_id)
    s = _put_lgr(s, replace(lgr, sync_err=True))
    if not lgr.listed or lgr.terminating:
        return s
    return terminate_sched(cfg, s, lgr_id)


def _kill_conn(cfg: LifecycleConfig, s: LifecycleState, c: Conn) -> LifecycleState:
    """``smc_conn_kill`` (SMC-D, no peer_shutdown): abort CDC, killed, unset, detach, unreg."""
    if c.peer_token is not None:  # also a freed conn still registered (lgr was delisted)
        s = _send_flags(cfg, s, c, PEER_CONN_ABORT, data=False)
        c = get_conn(s, c.cid)
    c = replace(c, tx_flags=c.tx_flags | PEER_CONN_ABORT, killed=True, conn_set=False)
    s = _put_conn(s, c)
    s = _detach_ghost(cfg, s, c)
    c = get_conn(s, c.cid)
    assert c.lgr is not None
    lgr = get_lgr(s, c.lgr)
    s = _put_lgr(s, replace(lgr, conns=tuple(x for x in lgr.conns if x != c.cid)))
    return _put_conn(s, replace(c, registered=False))


def terminate_work(cfg: LifecycleConfig, s: LifecycleState, lgr_id: int) -> LifecycleState:
    """``__smc_lgr_terminate``: kill every registered connection, then ``smc_lgr_free``."""
    lgr = get_lgr(s, lgr_id)
    if not lgr.terminate_pending:
        raise LgrStateError(f"lgr {lgr_id}: no terminate work is queued")
    return _terminate_now(cfg, _put_lgr(s, replace(lgr, terminate_pending=False)), lgr_id)


def _terminate_now(cfg: LifecycleConfig, s: LifecycleState, lgr_id: int) -> LifecycleState:
    lgr = get_lgr(s, lgr_id)
    if lgr.terminating:
        return s
    s = _put_lgr(s, replace(lgr, free_pending=False, terminating=True, freeing=True))
    for cid in lgr.conns:
        s = _kill_conn(cfg, s, get_conn(s, cid))
    return _lgr_free(s, lgr_id)


def abort_conn(
    cfg: LifecycleConfig, s: LifecycleState, cid: int, local_first: bool
) -> LifecycleState:
    """``smc_conn_abort`` on a failed handshake: free ``cid``; a first contact also terminates
    its lgr at once (``smc_lgr_cleanup_early``: delist, ``__smc_lgr_terminate``)."""
    c = get_conn(s, cid)
    if c.freed:
        raise ConnStateError(f"conn {cid}: already freed")
    lgr_valid = c.registered and c.lgr is not None
    s = _detach_ghost(cfg, s, c)
    s = _free_conn(cfg, s, replace(get_conn(s, cid), stage=Stage.DECLINED, closed=True))
    if local_first and lgr_valid and c.lgr is not None:
        lgr = find_lgr(s, c.lgr)
        if lgr is not None:
            s = _put_lgr(s, replace(lgr, freeing=True))
            s = _terminate_now(cfg, s, lgr.lgr_id)
    return s


def kill_conn(cfg: LifecycleConfig, s: LifecycleState, cid: int) -> LifecycleState:
    """``smc_conn_kill`` of one registered connection (the conformance vocabulary's abort):
    abort CDC, ``killed``, unset, ghost detached, unregistered *without* ``smc_buf_unuse`` (its
    DMB stays used until the link group is freed). :func:`terminate_work` kills every
    connection of a link group this way."""
    c = get_conn(s, cid)
    if c.killed or c.freed or not c.registered or c.stage is not Stage.ESTABLISHED:
        raise ConnStateError(f"conn {cid}: smc_conn_kill needs an established, registered "
                             f"connection (killed={c.killed}, freed={c.freed}, "
                             f"registered={c.registered})")
    return _kill_conn(cfg, s, c)


def free_killed_conn(cfg: LifecycleConfig, s: LifecycleState, cid: int) -> LifecycleState:
    """``smc_conn_free`` called by ``smc_close_active_abort`` for a killed connection.

    ``smc_conn_kill`` ends with ``smc_close_active_abort``, which frees the connection at once
    when its socket had already begun to close (SMC_PEERCLOSEWAIT1/2, SMC_PEERFINCLOSEWAIT,
    SMC_PROCESSABORT, SMC_APPFINCLOSEWAIT, net/smc/smc_close.c); from SMC_ACTIVE and
    SMC_APPCLOSEWAIT1/2 it only closes the socket and the free waits for ``close(2)``
    (:func:`free_conn`). The socket state is the close machine's (:mod:`~smcd_check.spec.close`),
    so the caller, which runs both, decides; here only the free itself: the killed connection is
    no longer registered, so it drops its lgr reference (step 6) and, when that was the last
    one, the released lgr starts freeing its buffers. Not an explorer action (the standalone
    lifecycle frees killed connections at close).
    """
    c = get_conn(s, cid)
    if not c.killed or c.freed:
        raise ConnStateError(f"conn {cid}: only a killed, not yet freed connection is freed "
                             f"by smc_close_active_abort (killed={c.killed}, freed={c.freed})")
    s = _detach_ghost(cfg, s, c)
    return _free_conn(cfg, s, get_conn(s, cid))


def find_lgr(s: LifecycleState, lgr_id: int) -> Lgr | None:
    """The link group ``lgr_id`` or None."""
    for lg in s.lgrs:
        if lg.lgr_id == lgr_id:
            return lg
    return None


def free_order(s: LifecycleState, lgr: Lgr) -> tuple[int, ...]:
    """Descriptor ids in ``smc_lgr_free_bufs`` order: sizes ascending, list order within."""
    by_size = sorted(
        ((get_desc(s, d).size, i, d) for i, d in enumerate(lgr.rmbs)), key=lambda t: t[:2]
    )
    return tuple(d for _size, _i, d in by_size)


def unregister_lgr_dmb(
    cfg: LifecycleConfig, s: LifecycleState, lgr_id: int, desc_id: int
) -> LifecycleState:
    """``smcd_buf_free`` of the next DMB of a dying lgr (``smc_ism_unregister_dmb``)."""
    lgr = get_lgr(s, lgr_id)
    d = get_desc(s, desc_id)
    if d.lgr_id != lgr_id:
        raise DmbNotRegistered(f"desc {desc_id} belongs to lgr {d.lgr_id}, not lgr {lgr_id}")
    if not lgr.dying:
        raise LgrStateError(
            f"lgr {lgr_id}: DMBs are unregistered only when the lgr is freed "
            f"(released={lgr.released}, holders={lgr.holders})"
        )
    order = free_order(s, lgr)
    if order[0] != desc_id:
        raise LgrStateError(f"lgr {lgr_id}: smc_lgr_free_bufs frees desc {order[0]} next")
    s = _drop_desc(s, desc_id)
    s = _put_lgr(s, replace(lgr, rmbs=tuple(x for x in lgr.rmbs if x != desc_id)))
    if d.mem_live:
        s = dev_unregister_dmb(cfg, s, d.token)
    # else: the node was released under it by a fault; dma_addr stays set, the device op
    # fails with -EINVAL and smc_ism_unregister_dmb clears the descriptor anyway
    return _after_lgr_change(s, lgr_id)


# --------------------------------------------------------------------------------------------
# Standalone handshake skeleton (so the lifecycle explores on its own)
# --------------------------------------------------------------------------------------------


def _create_conn_action(
    cfg: LifecycleConfig, s: LifecycleState, a: HostCreateConn
) -> LifecycleState:
    if a.pair >= cfg.max_conns:
        raise NoSuchConn(f"pair {a.pair}: the configuration allows {cfg.max_conns} pairs")
    if (a.peer_host, a.host) not in cfg.all_links() and a.role is Role.SERV:
        raise ConnStateError(f"link client {a.peer_host} -> server {a.host} is not configured")
    busy = [c.cid for c in s.conns if c.host == a.host and _in_handshake_cs(c)]
    if busy:
        raise ConnStateError(
            f"host {a.host}: smc_server_lgr_pending is held by conn {busy[0]}'s handshake"
        )
    if a.role is Role.SERV:
        if a.pair != next_pair(s):
            raise NoSuchConn(f"pair {a.pair}: the next new pair is {next_pair(s)}")
        s2, _cid, _first = create_conn(
            cfg,
            s,
            pair=a.pair,
            role=a.role,
            host=a.host,
            peer_host=a.peer_host,
            vlan=a.vlan,
            smcd_version=a.version,
        )
        return s2
    server = find_conn(s, 2 * a.pair + 1)
    if server is None or server.stage is Stage.CREATED or server.stage is Stage.DECLINED:
        raise ConnStateError(f"pair {a.pair}: the client acts on the server's Accept")
    if (a.host, a.peer_host, a.vlan, a.version) != (
        server.peer_host,
        server.host,
        server.vlan_id,
        server.smc_version,
    ):
        raise ConnStateError(f"pair {a.pair}: client parameters differ from the server's")
    try:
        s2, _cid, _first = create_conn(
            cfg,
            s,
            pair=a.pair,
            role=a.role,
            host=a.host,
            peer_host=a.peer_host,
            vlan=a.vlan,
            smcd_version=a.version,
            first_contact_peer=server.first_contact,
        )
        return s2
    except LgrOutOfSync:
        # the client declines with the out-of-sync bit and falls back to TCP; the server marks
        # its lgr sync_err, schedules its termination and aborts its connection
        client = Conn(
            cid=2 * a.pair,
            role=Role.CLNT,
            host=a.host,
            peer_host=a.peer_host,
            peer_gid=server.host + 1,
            peer_gid_ext=device_gid(cfg, server.host)[1],
            vlan_id=a.vlan,
            smc_version=a.version,
            stage=Stage.DECLINED,
            closed=True,
            freed=True,
        )
        s2 = _put_conn(s, client)
        if server.lgr is not None and server.registered:
            s2 = decline_sync_err(cfg, s2, server.lgr)
        if not server.freed:
            s2 = abort_conn(cfg, s2, server.cid, server.first_contact)
        return s2


def next_pair(s: LifecycleState) -> int:
    """The next unused pair index (pairs are opened in order)."""
    return (max(c.cid for c in s.conns) >> 1) + 1 if s.conns else 0


def _peer_dmb_token(s: LifecycleState, c: Conn) -> int | None:
    peer = find_conn(s, c.peer_cid)
    if peer is None or peer.rmb is None:
        return None
    d = next((d for d in s.descs if d.desc_id == peer.rmb), None)
    return None if d is None else d.token


def _peer_info_ready(s: LifecycleState, c: Conn) -> bool:
    """Client: after the Accept (server has its DMB). Server: after the client's Confirm."""
    peer = find_conn(s, c.peer_cid)
    if peer is None:
        return False
    if c.role is Role.CLNT:
        return peer.stage in (Stage.HAS_DMB, Stage.ESTABLISHED) or peer.rmb is not None
    return peer.stage is Stage.ESTABLISHED


def _peer_info_action(
    cfg: LifecycleConfig, s: LifecycleState, a: PeerAttachDmb | HostSavePeerInfo
) -> LifecycleState:
    c = get_conn(s, a.conn)
    if not _peer_info_ready(s, c):
        raise ConnStateError(f"conn {a.conn}: the peer's token has not arrived yet")
    tok = _peer_dmb_token(s, c)
    if tok is None:
        raise DmbNotRegistered(f"conn {a.conn}: the peer has no DMB descriptor any more")
    if isinstance(a, PeerAttachDmb):
        return attach_dmb(cfg, s, a.conn, tok)
    return save_peer_info(cfg, s, a.conn, tok)


def _decline_possible(cfg: LifecycleConfig, s: LifecycleState, c: Conn) -> bool:
    """The handshake step ``c`` must take next cannot succeed (no DMB / nothing to attach)."""
    if c.freed or c.stage not in HANDSHAKE_STAGES:
        return False
    if c.killed:
        return True
    if c.stage is Stage.CREATED:
        return all(dmb_search(cfg, s, c.cid, w) is None for w in cfg.dmb_sizes)
    if not _peer_info_ready(s, c):
        return False
    tok = _peer_dmb_token(s, c)
    return tok is None or (cfg.merged and find_node(s, tok) is None)


def _decline_action(cfg: LifecycleConfig, s: LifecycleState, a: HostDeclineConn) -> LifecycleState:
    ends = [c for c in s.conns if c.pair == a.pair and not c.freed]
    if not any(_decline_possible(cfg, s, c) for c in ends):
        raise ConnStateError(f"pair {a.pair}: no handshake step of this pair has failed")
    for c in ends:
        if c.stage in HANDSHAKE_STAGES:
            s = abort_conn(cfg, s, c.cid, c.first_contact)
    return s


# --------------------------------------------------------------------------------------------
# step / enabled_actions
# --------------------------------------------------------------------------------------------


def step(cfg: LifecycleConfig, s: LifecycleState, a: Action) -> LifecycleState:
    """The state after ``a``; raises a :class:`LifecycleError` when ``a`` is not allowed.

    Never mutates ``s`` (states are frozen); a refused step leaves the caller's state as is.
    """
    if isinstance(a, HostCreateConn):
        return _create_conn_action(cfg, s, a)
    if isinstance(a, HostReuseDmb):
        return reuse_dmb(cfg, s, a.conn, a.size)[0]
    if isinstance(a, DevRegisterDmb):
        return register_dmb(cfg, s, a.conn, a.size)[0]
    if isinstance(a, HostDeclineConn):
        return _decline_action(cfg, s, a)
    if isinstance(a, PeerAttachDmb | HostSavePeerInfo):
        return _peer_info_action(cfg, s, a)
    if isinstance(a, HostWriteDmb):
        return write_dmb(cfg, s, a.conn)
    if isinstance(a, HostReadDmb):
        return read_dmb(cfg, s, a.conn)
    if isinstance(a, ConnShutdown):
        return shutdown_conn(cfg, s, a.conn)
    if isinstance(a, ConnClose):
        c = get_conn(s, a.conn)
        if (
            not cfg.close_abort_race
            and c.role is Role.SERV
            and not c.killed
            and not (c.rx_flags & (PEER_CONN_CLOSED | PEER_CONN_ABORT))
        ):
            raise ConnStateError(f"conn {a.conn}: without races the server closes second")
        return close_conn(cfg, s, a.conn)
    if isinstance(a, ConnAbort):
        if not cfg.close_abort_race:
            raise ConnStateError("ConnAbort is switched off (close_abort_race=False)")
        return abort_close(cfg, s, a.conn)
    if isinstance(a, PeerDetachDmb):
        return detach_conn(cfg, s, a.conn)
    if isinstance(a, HostFreeConn):
        return free_conn(cfg, s, a.conn)
    if isinstance(a, LgrFreeDelayed):
        return lgr_free_delayed(cfg, s, a.lgr)
    if isinstance(a, LgrTerminate):
        if not cfg.lgr_errors:
            raise LgrStateError("LgrTerminate is switched off (lgr_errors=False)")
        return terminate_sched(cfg, s, a.lgr)
    if isinstance(a, LgrTerminateWork):
        return terminate_work(cfg, s, a.lgr)
    if isinstance(a, HostUnregisterDmb):
        return unregister_lgr_dmb(cfg, s, a.lgr, a.desc)
    raise PreconditionViolated(f"not a lifecycle action: {a!r}")


def enabled_actions(cfg: LifecycleConfig, s: LifecycleState) -> Iterator[Action]:
    """The actions the standalone lifecycle may take in ``s``, in a deterministic order.

    Order: per lgr (by id) LgrFreeDelayed, LgrTerminateWork, LgrTerminate, HostUnregisterDmb;
    then the next pair's server HostCreateConn (links, VLANs, versions in config order); then
    per connection (by cid) its handshake step, data, close and free actions. Every action
    yielded is accepted by :func:`step`.
    """
    for lgr in s.lgrs:
        if lgr.free_pending:
            yield LgrFreeDelayed(lgr=lgr.lgr_id)
        if lgr.terminate_pending:
            yield LgrTerminateWork(lgr=lgr.lgr_id)
        if cfg.lgr_errors and lgr.listed and not lgr.terminating:
            yield LgrTerminate(lgr=lgr.lgr_id)
        if lgr.dying and lgr.rmbs:
            yield HostUnregisterDmb(lgr=lgr.lgr_id, desc=free_order(s, lgr)[0])
    busy_hosts = {c.host for c in s.conns if _in_handshake_cs(c)}
    p = next_pair(s)
    if p < cfg.max_conns:
        for client_host, server_host in cfg.all_links():
            if server_host in busy_hosts:
                continue
            for vlan in cfg.vlans:
                for version in cfg.versions:
                    yield HostCreateConn(
                        pair=p,
                        role=Role.SERV,
                        host=server_host,
                        peer_host=client_host,
                        vlan=vlan,
                        version=version,
                    )
    declined: set[int] = set()
    for c in s.conns:
        if c.freed:
            continue
        if (
            c.role is Role.SERV
            and find_conn(s, c.peer_cid) is None
            and (c.stage is not Stage.CREATED and c.stage is not Stage.DECLINED)
            and c.peer_host not in busy_hosts
        ):
            yield HostCreateConn(
                pair=c.pair,
                role=Role.CLNT,
                host=c.peer_host,
                peer_host=c.host,
                vlan=c.vlan_id,
                version=c.smc_version,
            )
        if c.stage in HANDSHAKE_STAGES:
            if _decline_possible(cfg, s, c):
                if c.pair not in declined:
                    declined.add(c.pair)
                    yield HostDeclineConn(pair=c.pair)
                continue
            if c.stage is Stage.CREATED:
                seen: set[Action] = set()
                for want in cfg.dmb_sizes:
                    a = dmb_search(cfg, s, c.cid, want)
                    if a is not None and a not in seen:
                        seen.add(a)
                        yield a
            elif _peer_info_ready(s, c):
                yield PeerAttachDmb(conn=c.cid) if cfg.merged else HostSavePeerInfo(conn=c.cid)
            continue
        if c.stage is not Stage.ESTABLISHED:
            continue
        if may_write(c):
            yield HostWriteDmb(conn=c.cid)
        if c.unread and c.rmb is not None:
            yield HostReadDmb(conn=c.cid)
        if not c.closed:
            if not c.killed and not c.tx_flags & (
                PEER_DONE_WRITING | PEER_CONN_CLOSED | PEER_CONN_ABORT
            ):
                yield ConnShutdown(conn=c.cid)
            if (
                cfg.close_abort_race
                or c.role is Role.CLNT
                or c.killed
                or (c.rx_flags & (PEER_CONN_CLOSED | PEER_CONN_ABORT))
            ):
                yield ConnClose(conn=c.cid)
            if cfg.close_abort_race and not c.killed:
                yield ConnAbort(conn=c.cid)
        if may_free(c):
            yield (
                PeerDetachDmb(conn=c.cid) if c.ghost_token is not None else HostFreeConn(conn=c.cid)
            )


def successors(cfg: LifecycleConfig, s: LifecycleState) -> Iterator[tuple[Action, LifecycleState]]:
    """``(action, next state)`` for every enabled action, in :func:`enabled_actions` order."""
    for a in enabled_actions(cfg, s):
        yield a, step(cfg, s, a)


def quiescent(cfg: LifecycleConfig, s: LifecycleState) -> bool:
    """Nothing is left to happen by itself: no live connection and no queued lgr work.

    Live connection: created and not freed. Queued lgr work: a pending delayed free or
    terminate work, or a dying lgr with buffers left to unregister.
    """
    del cfg
    if any(not c.freed for c in s.conns):
        return False
    return not any(lg.free_pending or lg.terminate_pending or lg.dying for lg in s.lgrs)


# --------------------------------------------------------------------------------------------
# Invariants
# --------------------------------------------------------------------------------------------


def type_ok(cfg: LifecycleConfig, s: LifecycleState) -> bool:
    """Every field has its type and range, tables are sorted by unique keys, references resolve."""
    lgr_ids = [lg.lgr_id for lg in s.lgrs]
    desc_ids = [d.desc_id for d in s.descs]
    cids = [c.cid for c in s.conns]
    if lgr_ids != sorted(set(lgr_ids)) or desc_ids != sorted(set(desc_ids)):
        return False
    if cids != sorted(set(cids)) or list(s.nodes) != sorted(s.nodes, key=_node_key):
        return False
    if not isinstance(s.uar, bool):
        return False
    for lg in s.lgrs:
        if not (0 <= lg.host < cfg.n_hosts and isinstance(lg.role, Role)):
            return False
        if any(cid not in cids for cid in (*lg.conns, *lg.holders)):
            return False
        if any(d not in desc_ids for d in lg.rmbs) or len(set(lg.rmbs)) != len(lg.rmbs):
            return False
    for d in s.descs:
        if d.lgr_id not in lgr_ids or not 0 <= d.size <= SMCD_DMBE_SIZES:
            return False
        if d.used != (d.owner is not None) or d.desc_id not in get_lgr(s, d.lgr_id).rmbs:
            return False
    for n in s.nodes:
        if not (0 <= n.dev < cfg.n_hosts and 0 <= n.sba_idx < cfg.max_dmbs):
            return False
        if not isinstance(n.refcnt, int) or not 0 <= n.size <= SMCD_DMBE_SIZES:
            return False
    for c in s.conns:
        if not (isinstance(c.role, Role) and isinstance(c.stage, Stage)):
            return False
        if c.cid & 1 != int(c.role) or c.pair >= cfg.max_conns:
            return False
        if c.registered and (c.lgr not in lgr_ids or c.cid not in get_lgr(s, c.lgr).conns):
            return False
        if c.holds_lgr and (c.lgr not in lgr_ids or c.cid not in get_lgr(s, c.lgr).holders):
            return False
        mask = PEER_DONE_WRITING | PEER_CONN_CLOSED | PEER_CONN_ABORT
        if c.tx_flags & ~mask or c.rx_flags & ~mask:
            return False
    return True


def no_use_after_release(cfg: LifecycleConfig, s: LifecycleState) -> bool:
    """No write or read has gone through DMB memory after its last reference was dropped."""
    del cfg
    return not s.uar


def no_dangling_ghost(cfg: LifecycleConfig, s: LifecycleState) -> bool:
    """No ghost sndbuf and no live connection's own DMB points at released memory."""
    del cfg
    if any(c.ghost_dangling for c in s.conns):
        return False
    live_rmbs = {c.rmb for c in s.conns if not c.freed and c.rmb is not None}
    return all(d.mem_live for d in s.descs if d.desc_id in live_rmbs)


def tokens_unique(cfg: LifecycleConfig, s: LifecycleState) -> bool:
    """No two live DMBs share a token, counting memory a ghost sndbuf still points at."""
    del cfg
    tokens = [n.token for n in s.nodes]
    if len(tokens) != len(set(tokens)):
        return False
    live = set(tokens)
    return not any(c.ghost_dangling and c.ghost_token in live for c in s.conns)


def slots_within_limit(cfg: LifecycleConfig, s: LifecycleState) -> bool:
    """Each device has at most ``max_dmbs`` DMBs, on distinct slots below the limit."""
    for dev in range(cfg.n_hosts):
        slots = [n.sba_idx for n in s.nodes if n.dev == dev]
        if len(slots) > cfg.max_dmbs or len(slots) != len(set(slots)):
            return False
        if any(not 0 <= x < cfg.max_dmbs for x in slots):
            return False
    return True


def refcounts_nonnegative(cfg: LifecycleConfig, s: LifecycleState) -> bool:
    """Every DMB refcount in the table is >= 1 (0 means freed) and no lgr count is negative."""
    del cfg
    return all(n.refcnt >= 1 for n in s.nodes) and all(
        len(lg.conns) >= 0 and len(lg.holders) >= 0 for lg in s.lgrs
    )


def refcounts_match_holders(cfg: LifecycleConfig, s: LifecycleState) -> bool:
    """Every DMB refcount equals its owner's registration (0/1) plus the ghosts attached to it."""
    del cfg
    for n in s.nodes:
        ghosts = sum(1 for c in s.conns if c.ghost_token == n.token and not c.ghost_dangling)
        if n.refcnt != int(n.owned) + ghosts:
            return False
    return True


def descs_match_nodes(cfg: LifecycleConfig, s: LifecycleState) -> bool:
    """Registered DMB descriptors and owned device nodes correspond one to one (by token)."""
    del cfg
    owned = sorted(n.token for n in s.nodes if n.owned)
    registered = sorted(d.token for d in s.descs if d.mem_live)
    return owned == registered and all(d.mem_live for d in s.descs)


def reuse_only_same_peer(cfg: LifecycleConfig, s: LifecycleState) -> bool:
    """Every registered connection sits in an lgr of its own host with its own peer GID/gid_ext."""
    del cfg
    for c in s.conns:
        if not c.registered or c.lgr is None:
            continue
        lg = get_lgr(s, c.lgr)
        if (lg.host, lg.peer_gid, lg.peer_gid_ext) != (c.host, c.peer_gid, c.peer_gid_ext):
            return False
    return True


def used_dmbs_owned_once(cfg: LifecycleConfig, s: LifecycleState) -> bool:
    """A used DMB belongs to exactly one unfreed-or-freeing connection whose rmb names it."""
    del cfg
    owners = [d.owner for d in s.descs if d.owner is not None]
    if len(owners) != len(set(owners)):
        return False
    for d in s.descs:
        if d.owner is not None:
            c = find_conn(s, d.owner)
            if c is None or c.rmb != d.desc_id:
                return False
    return True


def no_leak_at_quiescence(cfg: LifecycleConfig, s: LifecycleState) -> bool:
    """When nothing is left to happen, no lgr, DMB descriptor or device DMB remains."""
    if not quiescent(cfg, s):
        return True
    return not s.lgrs and not s.descs and not s.nodes


def empty_lgr_has_free_queued(cfg: LifecycleConfig, s: LifecycleState) -> bool:
    """A listed lgr without connections always has its delayed free queued (it cannot leak)."""
    del cfg
    return all(lg.free_pending for lg in s.lgrs if lg.listed and not lg.conns)


def freed_conn_holds_nothing(cfg: LifecycleConfig, s: LifecycleState) -> bool:
    """A freed connection holds no ghost, no lgr reference, and no longer receives signals."""
    del cfg
    return all(
        c.ghost_token is None and not c.holds_lgr and not c.conn_set for c in s.conns if c.freed
    )


def ghost_outlives_owner(cfg: LifecycleConfig, s: LifecycleState) -> bool:
    """(sometimes) A DMB whose owner unregistered it is still kept alive by an attached ghost."""
    del cfg
    return any(not n.owned and n.refcnt >= 1 for n in s.nodes)


def unused_dmb_waits(cfg: LifecycleConfig, s: LifecycleState) -> bool:
    """(sometimes) An unused DMB stays registered in a listed lgr, ready for reuse."""
    del cfg
    return any(not d.used and get_lgr(s, d.lgr_id).listed for d in s.descs)


INVARIANTS: Final[tuple[Invariant, ...]] = (
    Invariant(
        name="type_ok",
        statement="every field has its type and range, tables are sorted, references resolve",
        predicate=type_ok,
    ),
    Invariant(
        name="no DMB is used after it was unregistered and released",
        statement="no write or read went through DMB memory whose last reference was dropped",
        predicate=no_use_after_release,
    ),
    Invariant(
        name="no ghost sndbuf points at released memory",
        statement="no attached ghost and no live connection's own DMB has lost its memory",
        predicate=no_dangling_ghost,
    ),
    Invariant(
        name="tokens are unique among live DMBs",
        statement="no two device DMBs share a token, nor a live one and a ghost's released one",
        predicate=tokens_unique,
    ),
    Invariant(
        name="the slot count stays within the device limit",
        statement="each device holds at most max_dmbs DMBs on distinct slots below the limit",
        predicate=slots_within_limit,
    ),
    Invariant(
        name="reference counts are never negative",
        statement="every DMB refcount in the table is at least 1 (it leaves the table at 0)",
        predicate=refcounts_nonnegative,
    ),
    Invariant(
        name="every DMB reference count equals its holders",
        statement="refcnt == owner's registration (0/1) + ghosts attached to that token",
        predicate=refcounts_match_holders,
    ),
    Invariant(
        name="DMBs are unregistered only when their link group is freed",
        statement="descriptors with memory and owned device DMBs correspond one to one",
        predicate=descs_match_nodes,
    ),
    Invariant(
        name="a link group is reused only for its own peer",
        statement="every registered connection's lgr has its host, peer GID and gid_ext",
        predicate=reuse_only_same_peer,
    ),
    Invariant(
        name="a used DMB belongs to exactly one connection",
        statement="owners of used descriptors are distinct and name the descriptor as rmb",
        predicate=used_dmbs_owned_once,
    ),
    Invariant(
        name="a freed connection holds nothing",
        statement="a freed connection has no ghost, no lgr reference and no rx signal slot",
        predicate=freed_conn_holds_nothing,
    ),
    Invariant(
        name="an empty link group always has its free queued",
        statement="every listed lgr without connections has its delayed free pending",
        predicate=empty_lgr_has_free_queued,
    ),
    Invariant(
        name="at quiescence nothing leaks",
        statement="with no live connection and no queued work, no lgr or DMB remains",
        predicate=no_leak_at_quiescence,
    ),
    Invariant(
        name="a ghost keeps a DMB alive after its owner unregistered it",
        statement="some device DMB is no longer owned but still referenced by a ghost",
        predicate=ghost_outlives_owner,
        kind=InvariantKind.SOMETIMES,
    ),
    Invariant(
        name="an unused DMB waits for reuse",
        statement="some listed lgr holds a registered DMB no connection uses",
        predicate=unused_dmb_waits,
        kind=InvariantKind.SOMETIMES,
    ),
)
