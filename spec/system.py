"""The SMC-D system the explorer walks: two sockets' hosts on one loopback-ism device.

Theory of operation
-------------------
This module is **composition only**: every rule lives in the module that owns it, and this file
calls their step functions and glues their inputs and outputs together. A :class:`SystemState`
holds

* ``mode``: the data-path mode of this world (``Mode.MERGED``: loopback-ism with
  ``support_dmb_nocopy``, the ghost sndbuf, as in 6.12; ``Mode.COPY``: the same device without
  nocopy, as loopback-ism behaved before v6.10, so the sender copies with ``move_data``). A
  config may explore both worlds at once (two initial states);
* ``pairs``: per socket pair the two CLC machines of :mod:`.handshake` (client and server
  :class:`~.handshake.HandshakeState`) and the CLC TCP byte stream in each direction, as whole
  messages in FIFO order;
* ``lc``: the one :class:`~.lifecycle.LifecycleState` of the host (link groups, DMB
  descriptors, the device's DMB table, connection endpoints);
* ``data``: per *data pair* the :class:`~.datapath.DatapathState` of the direction client ->
  server (the other pairs carry no data: they exist to share and tear down the link group).

Actions (in this order, deterministic):

* :class:`ClientConnect` / :class:`ServerListen` - the ``Connect`` / ``ListenWork`` events;
* :class:`ClcDeliver` - the head CLC message of one direction arrives (``RecvBytes``);
  a handshake step's effects are carried out at once, in order: ``SendClc`` appends to the
  stream, ``RequestConn`` is answered by ``lifecycle.create_conn`` + ``lifecycle.create_dmb``
  (``ConnCreated`` / ``ConnCreateFailed(SYNCERR)`` / ``BufCreateFailed(ENOSPC)``),
  ``AttachPeerDmb`` by ``lifecycle.attach_dmb`` (``AttachDone``), ``ConnAbort`` by
  ``lifecycle.abort_conn``, ``LgrSyncErr`` by ``lifecycle.decline_sync_err``; a copy-mode side
  that became ``ACTIVE`` takes over the peer token (``lifecycle.save_peer_info``). The host's
  ``smc_server_lgr_pending`` mutex: a handshake step that would make a second side hold it
  (``handshake.holds_lgr_pending``) is not enabled until the first releases it;
* :class:`DataStep` - one :mod:`.datapath` action of a data pair, enabled when both ends are
  established in the lifecycle. The steps that touch DMB memory or the connection state also
  run the lifecycle's function for it, and are not enabled when the lifecycle refuses:
  merged ``WriterAppWrite`` and copy ``WriterMoveData`` -> ``lifecycle.write_dmb`` (the write
  through the ghost sndbuf / ``move_data``), ``ReaderRead`` -> ``lifecycle.read_dmb`` (when the
  lifecycle's one-bit "unread" is set), ``WriterShutdownWrite`` -> ``shutdown_conn``,
  ``WriterClose``/``ReaderClose`` -> ``close_conn``, ``WriterAbort``/``ReaderAbort`` ->
  ``abort_close``;
* :class:`LifeStep` - the lifecycle's own actions: link-group work and DMB unregistering for
  every pair, detach/free for every connection, and close/shutdown/abort for connections of
  pairs that carry no data. Its handshake-time actions (create, DMB, attach, decline) and its
  abstract data steps are never used here: the handshake and the data path drive those.

Properties: every invariant of the three modules (data path per data pair, lifecycle on ``lc``,
handshake per pair), each under its own name; "sometimes" checks that the configured scenario
really happens (SMC-D active on both ends, data wrapping around the ring, two connections in
one link group, a clean teardown); and, when ``SystemConfig.liveness`` is on, two
``eventually`` properties (every handshake ends active, declined or fallen back; every byte
written is eventually read or the reader gave up: closed or aborted).

Footprints (how the explorer memoises this model; :mod:`smcd_check.explorer.model`)
-------------------------------------------------------------------------------------
The explorer interns each *component* of a state (:meth:`System.components`: ``mode``,
``pair<p>``, ``lc``, ``data<p>``; :meth:`System.split` / :meth:`System.join` map them to and
from :class:`SystemState`, whose shape they do not change) and memoises each *action group*
(:meth:`System.action_groups`) on what it reads: a group's successors are computed once per
distinct value of its ``reads``, so a group that declares less than it reads gets wrong counts,
and one that declares more is only slower. A group may read a large component through a
*view* (:class:`SystemView`: ``get`` the part it reads, ``put`` its changes back): each data
pair's group reads the lifecycle through :meth:`System.data_view` (its two connections, their
DMBs' token and liveness, whether their peer tokens are registered, ``uar``), so the data path
is stepped once per (data path, view) instead of once per (data path, whole lifecycle).

A new component (a second data direction, urgent data, ...) declares its footprint in four
places, and the state dataclasses keep their shape:

1. :meth:`System.components`, :meth:`System.split`, :meth:`System.join`: its name and where its
   value lives in :class:`SystemState` (a field, or an element of a tuple field);
2. :meth:`System.action_groups`: a :class:`SystemActionGroup` for its actions (or add them to
   the group whose reads they share), in ``actions()`` order, with ``reads`` = every
   component its enabledness and effect read (the glue included), ``writes`` = those it
   changes (a subset), and ``views={"lc": ...}`` when it reads only part of the lifecycle:
   :meth:`System.data_view` of its pair if that covers what its glue reads and writes (both
   ends' connections, ``uar``), else a view of its own with the same contract;
3. its properties (:class:`SystemProperty`): ``reads`` = the components the condition reads
   (a property decided per memo entry must not read more);
4. tests: ``explorer.kernel.audit_views`` over reachable states (past violations too) checks a
   view step by step, and the search with the footprints must equal
   ``Explorer(model).with_memo(False)`` (``tests/spec/test_system_views.py``).

Final states (no deadlock when nothing is enabled): every handshake side finished, no CLC bytes
in flight, the lifecycle :func:`~.lifecycle.quiescent`, every data path final or never
established.

Not modelled here (see the owning modules for theirs): TCP fallback traffic after a Decline,
CLC timeouts and EOF (no ``RecvTimeout``/``RecvEof``: both ends always answer), several
hosts or ISM devices (one host, one loopback-ism device), the reverse data direction, link-group
errors unless ``lgr_errors``.

Kernel source: the owning modules cite theirs; the glue follows net/smc/af_smc.c
(``smc_connect_ism``, ``smc_listen_ism_init``, ``smc_server_lgr_pending``) and
net/smc/smc_close.c.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from functools import cached_property, partial
from typing import Any, Final

from smcd_check.spec import datapath as dp
from smcd_check.spec import duplex as dx
from smcd_check.spec import handshake as hs
from smcd_check.spec import lifecycle as lc
from smcd_check.spec import symmetry as pair_symmetry
from smcd_check.spec.decline import DeclineCode
from smcd_check.spec.errors import ForbiddenStep, PreconditionViolated
from smcd_check.spec.faults import Fault

#: the UEID both ends carry (loopback-ism needs an EID off s390)
_UEID: Final = "SMCD-CHECK-UEID"


class SystemConfigError(PreconditionViolated):
    """A :class:`SystemConfig` the composition cannot build (names the field)."""


@dataclass(frozen=True, slots=True, kw_only=True)
class SystemConfig:
    """Bounds of one system exploration (named presets live in :mod:`.configs`)."""

    #: the data-path modes explored (one initial state each)
    modes: tuple[dp.Mode, ...] = (dp.Mode.MERGED,)
    #: socket pairs (each one CLC handshake; pair p has lifecycle cids 2p and 2p+1)
    n_pairs: int = 1
    #: the pairs that carry data client -> server after the handshake
    data_pairs: tuple[int, ...] = (0,)
    #: data path bounds (see :class:`~.datapath.DatapathConfig`)
    ring_size: int = 2
    max_chunk: int = 1
    wrap_bits: int = 1
    chan_cap: int = 1
    #: close and shutdown (both modules) and abort
    close_enabled: bool = True
    abort_enabled: bool = False
    #: close/abort may race on both ends of a pair that carries no data
    close_abort_race: bool = False
    #: link-group errors (LgrTerminate) may strike
    lgr_errors: bool = False
    #: pair p connects only after both ends of pair p-1 finished their handshake (cuts the
    #: interleavings of the handshakes; the link group is still shared)
    sequential_connect: bool = True
    #: pairs (without data) that stay open: they share the link group and are never closed, so
    #: the state space does not multiply their teardown with the data pair's
    keep_open: tuple[int, ...] = ()
    #: native ISM instead of loopback-ism: one ISM device per host (GID host + 1), copy mode
    #: only; pairs may then connect different hosts (``pair_links``)
    ism: bool = False
    #: (client host, server host) of each pair; None: every pair on host 0. With loopback-ism
    #: both ends must be on the same host. A device with link groups to several peers is
    #: where LGR_REUSE_PEER_MISMATCH shows.
    pair_links: tuple[tuple[int, int], ...] | None = None
    #: full duplex (:mod:`.duplex`): each data pair carries data both ways with one CDC type;
    #: False keeps the one-direction data path of :mod:`.datapath` (client -> server)
    duplex: bool = False
    #: duplex only: the ends whose application writes (0 = client, 1 = server)
    senders: tuple[int, ...] = (0, 1)
    #: duplex only: urgent data (MSG_OOB), and SO_OOBINLINE on both ends
    urgent: bool = False
    oobinline: bool = False
    #: duplex only: the receiving application reads urgent data out of band first
    #: (:attr:`.duplex.DuplexConfig.oob_first`)
    oob_first: bool = False
    #: add the ``eventually`` properties (the explorer then builds the graph)
    liveness: bool = False
    faults: frozenset[Fault] = field(default_factory=frozenset)
    #: pairs that are interchangeable (:mod:`.symmetry`): the explorer stores one state per
    #: renaming of them; () declares none
    symmetric_pairs: tuple[int, ...] = ()

    def __post_init__(self) -> None:
        if not self.modes or any(not isinstance(m, dp.Mode) for m in self.modes):
            raise SystemConfigError(f"modes={self.modes!r}: expected a non-empty tuple of Mode")
        if self.n_pairs < 1:
            raise SystemConfigError(f"n_pairs={self.n_pairs}: need at least one socket pair")
        if self.pair_links is not None and (
            len(self.pair_links) != self.n_pairs
            or any(min(link) < 0 for link in self.pair_links)
            or (not self.ism and any(c != v for c, v in self.pair_links))
        ):
            raise SystemConfigError(
                f"pair_links={self.pair_links}: one (client host, server host) per pair; "
                "loopback-ism reaches only its own host"
            )
        if self.ism and self.modes != (dp.Mode.COPY,):
            raise SystemConfigError("ism=True: native ISM has no nocopy, modes must be (COPY,)")
        if set(self.keep_open) & set(self.data_pairs) or any(
            not 0 <= p < self.n_pairs for p in self.keep_open
        ):
            raise SystemConfigError(f"keep_open={self.keep_open}: pairs without data only")
        if any(not 0 <= p < self.n_pairs for p in self.data_pairs):
            raise SystemConfigError(
                f"data_pairs={self.data_pairs}: pairs are 0..{self.n_pairs - 1}"
            )
        if (
            self.urgent or self.oobinline or self.oob_first or self.senders != (0, 1)
        ) and not self.duplex:
            raise SystemConfigError("senders/urgent/oobinline need duplex=True")
        for mode in self.modes:
            self.datapath(mode)  # validates the data-path bounds
            if self.duplex:
                self.duplex_cfg(mode)
        self._check_symmetry()

    def _check_symmetry(self) -> None:
        """Refuse a ``symmetric_pairs`` declaration whose pairs are not interchangeable."""
        sym = self.symmetric_pairs
        if not sym:
            return
        why = None
        if len(set(sym)) != len(sym) or len(sym) < 2:
            why = "need at least two distinct pairs"
        elif any(not 0 <= p < self.n_pairs for p in sym):
            why = f"pairs are 0..{self.n_pairs - 1}"
        elif self.sequential_connect:
            why = "sequential_connect orders the pairs (pair p waits for pair p - 1)"
        elif set(sym) & set(self.data_pairs):
            why = "data pairs are not interchangeable (a CDC's target is the first connection "
            why += "in cid order)"
        elif len({p in self.keep_open for p in sym}) > 1:
            why = "some are kept open and some not"
        elif self.pair_links is not None and len({self.pair_links[p] for p in sym}) > 1:
            why = "they connect different hosts"
        if why is not None:
            raise SystemConfigError(f"symmetric_pairs={sym}: {why}")

    def duplex_cfg(self, mode: dp.Mode) -> dx.DuplexConfig:
        """The full-duplex data-path config of one world."""
        key = (
            mode,
            self.ring_size,
            self.max_chunk,
            self.wrap_bits,
            self.chan_cap,
            self.senders,
            self.urgent,
            self.oobinline,
            self.oob_first,
            self.close_enabled,
            self.abort_enabled,
            self.faults & dx.DUPLEX_FAULTS,
        )
        cfg = _DX_CACHE.get(key)
        if cfg is None:
            try:
                cfg = _DX_CACHE[key] = dx.DuplexConfig(
                    mode=mode,
                    ring_size=self.ring_size,
                    max_chunk=self.max_chunk,
                    wrap_bits=self.wrap_bits,
                    chan_cap=self.chan_cap,
                    senders=self.senders,
                    urgent=self.urgent,
                    oobinline=self.oobinline,
                    oob_first=self.oob_first,
                    close_enabled=self.close_enabled,
                    abort_enabled=self.abort_enabled,
                    faults=frozenset(self.faults & dx.DUPLEX_FAULTS),
                )
            except dx.DuplexConfigError as exc:
                raise SystemConfigError(str(exc)) from exc
        return cfg

    def datapath(self, mode: dp.Mode) -> dp.DatapathConfig:
        """The data-path config of one world (a merged-only fault is dropped in copy mode)."""
        faults = self.faults & dp.DATAPATH_FAULTS
        if mode is dp.Mode.COPY:
            faults -= {Fault.MERGED_IGNORES_CONS}
        try:
            return _datapath_cfg(
                mode,
                self.ring_size,
                self.max_chunk,
                self.wrap_bits,
                self.chan_cap,
                self.close_enabled,
                self.abort_enabled,
                frozenset(faults),
            )
        except dp.DatapathConfigError as exc:
            raise SystemConfigError(str(exc)) from exc

    def lifecycle(self, mode: dp.Mode) -> lc.LifecycleConfig:
        """The lifecycle config of one world: one host, loopback-ism, nocopy when merged."""
        return _lifecycle_cfg(
            mode is dp.Mode.MERGED,
            self.n_pairs,
            self.close_abort_race,
            self.lgr_errors,
            self.faults,
            self.n_hosts,
            self.ism,
            self.pair_links if self.ism else None,
        )

    @property
    def n_hosts(self) -> int:
        return 1 + max(max(link) for link in self.pair_links) if self.pair_links else 1

    def host_of(self, pair: int, role: hs.Role = hs.Role.CLIENT) -> int:
        """The host the ``role`` end of ``pair`` runs on."""
        if not self.pair_links:
            return 0
        return self.pair_links[pair][0 if role is hs.Role.CLIENT else 1]

    def host(self, mode: dp.Mode, host: int = 0) -> hs.HostConfig:
        """The handshake config of a host: its device (GID host + 1 and, for loopback-ism,
        gid_ext host + 1: the lifecycle's numbering), nocopy in merged mode."""
        return _host_cfg(mode is dp.Mode.MERGED, host, self.ism, self.n_hosts)


_DP_CACHE: dict[tuple[Any, ...], dp.DatapathConfig] = {}
_DX_CACHE: dict[tuple[Any, ...], dx.DuplexConfig] = {}
_LC_CACHE: dict[tuple[Any, ...], lc.LifecycleConfig] = {}
_HOST_CACHE: dict[tuple[bool, int, bool, int], hs.HostConfig] = {}


def _datapath_cfg(*key: Any) -> dp.DatapathConfig:
    cfg = _DP_CACHE.get(key)
    if cfg is None:
        mode, ring, chunk, wrap, cap, close, abort, faults = key
        cfg = dp.DatapathConfig(
            mode=mode,
            ring_size=ring,
            max_chunk=chunk,
            wrap_bits=wrap,
            chan_cap=cap,
            close_enabled=close,
            abort_enabled=abort,
            faults=faults,
        )
        _DP_CACHE[key] = cfg
    return cfg


def _lifecycle_cfg(*key: Any) -> lc.LifecycleConfig:
    cfg = _LC_CACHE.get(key)
    if cfg is None:
        merged, pairs, race, errors, faults, hosts, ism, links = key
        cfg = lc.LifecycleConfig(
            n_hosts=hosts,
            emulated=not ism,
            links=links,
            merged=merged,
            max_conns=pairs,
            close_abort_race=race,
            lgr_errors=errors,
            faults=faults,
        )
        _LC_CACHE[key] = cfg
    return cfg


def _host_cfg(nocopy: bool, host: int, ism: bool, n_hosts: int) -> hs.HostConfig:
    cfg = _HOST_CACHE.get((nocopy, host, ism, n_hosts))
    if cfg is None:
        if ism:
            dev = hs.SmcdDevice(
                name=f"ism@{host}",
                chid=lc.ISM_MODEL_CHID,
                gid=host + 1,
                supports_v2=True,
                peer_gids=frozenset(range(1, n_hosts + 1)),
            )
        else:
            dev = hs.SmcdDevice(
                name=f"loopback-ism@{host}",
                chid=hs.SMC_LO_RESERVED_CHID,
                gid=host + 1,
                gid_ext=host + 1,
                supports_v2=True,
                nocopy=nocopy,
            )
        cfg = hs.host_config(devices=(dev,), ueids=(_UEID,), hostname=f"host{host}")
        _HOST_CACHE[(nocopy, host, ism, n_hosts)] = cfg
    return cfg


# --------------------------------------------------------------------------------------------
# State
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class PairHandshake:
    """One socket pair's CLC handshake: both machines and the two byte streams."""

    client: hs.HandshakeState
    server: hs.HandshakeState
    #: CLC messages written by the client and not yet read by the server (FIFO)
    c2s: tuple[bytes, ...] = ()
    #: CLC messages written by the server and not yet read by the client (FIFO)
    s2c: tuple[bytes, ...] = ()


@dataclass(frozen=True, slots=True, kw_only=True)
class SystemState:
    """The whole system (see the module docstring)."""

    mode: dp.Mode
    pairs: tuple[PairHandshake, ...]
    lc: lc.LifecycleState
    #: data-path state per pair in ``SystemConfig.data_pairs`` order (full duplex:
    #: :class:`~.duplex.DuplexState`)
    data: tuple[Any, ...]


# --------------------------------------------------------------------------------------------
# Actions
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class ClientConnect:
    """The client application of ``pair`` calls ``connect()`` (handshake ``Connect``)."""

    pair: int


@dataclass(frozen=True, slots=True, kw_only=True)
class ServerListen:
    """The server's ``smc_listen_work`` starts for ``pair`` (handshake ``ListenWork``)."""

    pair: int


@dataclass(frozen=True, slots=True, kw_only=True)
class ClcDeliver:
    """The head CLC message written by the other end arrives at ``to`` (client or server)."""

    pair: int
    to: hs.Role


@dataclass(frozen=True, slots=True, kw_only=True)
class DataStep:
    """One data-path action of ``pair`` (with the lifecycle's part, see the module docstring)."""

    pair: int
    action: Any  # dp.Action, or dx.Action with SystemConfig.duplex


@dataclass(frozen=True, slots=True, kw_only=True)
class LifeStep:
    """One of the lifecycle's own actions (link-group work, free, unregister, close of a
    pair without data)."""

    action: lc.Action


Action = ClientConnect | ServerListen | ClcDeliver | DataStep | LifeStep

#: the action types of the composition (for coverage tables)
ACTION_TYPES: Final = (ClientConnect, ServerListen, ClcDeliver, DataStep, LifeStep)

#: lifecycle actions the composition takes from the lifecycle's own list
_LIFE_OWN: Final = (
    lc.PeerDetachDmb,
    lc.HostFreeConn,
    lc.LgrFreeDelayed,
    lc.LgrTerminate,
    lc.LgrTerminateWork,
    lc.HostUnregisterDmb,
)
#: lifecycle close actions, taken from its list only for pairs without data
_LIFE_CLOSE: Final = (lc.ConnShutdown, lc.ConnClose, lc.ConnAbort)


_NOTHING: Final[frozenset[str]] = frozenset()
#: memo keys of (mode, interned sub-state) are ints: ``id << 1 | (mode is _COPY)`` (a tuple with
#: the Mode would be hashed through Enum.__hash__, in Python, at every lookup)
_COPY: Final = dp.Mode.COPY


class SystemForbidden(ForbiddenStep):
    """A system action that is not enabled (names the action and why)."""


# --------------------------------------------------------------------------------------------
# Properties (plain records: the explorer turns them into its Property values)
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class SystemProperty:
    """A named claim over system states: ``kind`` is "always", "sometimes" or "eventually"."""

    name: str
    kind: str
    condition: Callable[[SystemState], bool]
    #: eventually: the states from which ``condition`` must eventually hold (None: all)
    trigger: Callable[[SystemState], bool] | None = None
    #: the components (:meth:`System.components`) ``condition`` reads; None: all of them
    reads: tuple[str, ...] | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class SystemView:
    """The part of a component a group reads, and how the group's changes to it go back (the
    explorer's ``View`` shape; see :meth:`System.action_groups`)."""

    get: Callable[[Any], Any]
    put: Callable[[Any, Any], Any]


@dataclass(frozen=True, slots=True, kw_only=True)
class SystemSymmetry:
    """Interchangeable pairs (the explorer's symmetry record; see :mod:`.symmetry`): per
    member its components (``slots``), the components naming members (``renames``), and
    ``permute(component, value, perm)`` renaming member ``i`` to ``perm[i]``."""

    slots: tuple[tuple[str, ...], ...]
    renames: tuple[str, ...]
    permute: Callable[[str, Any, tuple[int, ...]], Any]


@dataclass(frozen=True, slots=True, kw_only=True)
class SystemActionGroup:
    """Actions that read only the components ``reads`` (of those in ``views``, only the
    view) and change only ``writes`` (the explorer's ``ActionGroup`` shape: it memoises their
    steps on those components)."""

    name: str
    reads: tuple[str, ...]
    writes: tuple[str, ...]
    actions: Callable[[SystemState], Iterator[Action]]
    views: Mapping[str, SystemView] | None = None


# --------------------------------------------------------------------------------------------
# The system
# --------------------------------------------------------------------------------------------


class System:
    """The composed system as an explorer model (stateright-shaped; see the module docstring).

    ``actions(s)`` yields candidates in a deterministic order: per pair its handshake actions
    (connect, listen, deliver to server, deliver to client), then per data pair its data-path
    actions in the data path's order followed by the close of that pair's ends that the
    lifecycle enables (see ``_life_data_close``), then the lifecycle's own actions in its
    order.
    ``next_state(s, a)`` returns ``None`` when ``a`` is not enabled.
    """

    def __init__(self, cfg: SystemConfig, *, name: str = "custom") -> None:
        self.cfg = cfg
        self.name = f"smcd-system/{name}"
        self.config_name = name
        self._data_cids = frozenset(2 * p + r for p in cfg.data_pairs for r in (0, 1))
        self._open_cids = frozenset(2 * p + r for p in cfg.keep_open for r in (0, 1))
        self._dcfg = {m: cfg.datapath(m) for m in dp.Mode}
        self._dp_next: dict[Any, Any] = {}
        self._dp_within: dict[int, bool] = {}
        # memo tables of the sub-modules' pure functions (same inputs, same outputs)
        self._dp_en: dict[int, tuple[Any, ...]] = {}
        self._lc_en: dict[int, tuple[lc.Action, ...]] = {}
        self._lc_acts: dict[lc.Action, lc.Action] = {}
        self._lc_tuples: dict[tuple[lc.Action, ...], tuple[lc.Action, ...]] = {}
        self._lc_next: dict[Any, Any] = {}
        self._hs_next: dict[Any, Any] = {}
        # Interning (hash-consing) of sub-states: every sub-state value gets one canonical
        # object and a small id; states built by ``next_state`` hold canonical parts only, so
        # a state's key is a tuple of ids found by identity, without hashing deep values.
        self._ids: dict[Any, int] = {}
        self._canon: list[Any] = []
        self._by_identity: dict[int, int] = {}
        # Lifecycle states and pair handshakes are keyed by their parts' ids (rows of the
        # lifecycle's tables, handshake sides): a step changes one or two parts and keeps the
        # others' objects, so a new value costs the hashing of what changed, not of all of it.
        self._keyed: dict[Any, int] = {}
        self._rows: list[Any] = []
        self._row_ids: dict[Any, int] = {}
        self._row_by_identity: dict[int, int] = {}
        #: the lifecycle's tables (tuples of rows) interned by their row ids: canonical lifecycle
        #: states share one tuple per distinct table
        self._tabs: list[tuple[Any, ...]] = []
        self._tab_ids: dict[tuple[int, ...], int] = {}
        self._tab_by_identity: dict[int, int] = {}

    #: the model hash-conses its component values (every value the explorer gets from it is the
    #: one canonical object for that value), so the explorer interns them by identity alone
    hash_consed: Final = True

    def _intern(self, obj: Any) -> int:
        """The id of ``obj``'s value (hashing ``obj`` only the first time it is seen)."""
        i = self._by_identity.get(id(obj))
        canon = self._canon
        if i is not None and canon[i] is obj:
            return i
        t = type(obj)
        if t is lc.LifecycleState or t is PairHandshake:
            key, rebuild = self._lc_key(obj) if t is lc.LifecycleState else self._ph_key(obj)
            i = self._keyed.get(key)
            if i is None:
                i = self._keyed[key] = len(canon)
                obj = rebuild()
                canon.append(obj)
        else:
            i = self._ids.get(obj)
            if i is None:
                i = self._ids[obj] = len(canon)
                canon.append(obj)
        if canon[i] is obj:
            self._by_identity[id(obj)] = i
        return i

    def _row(self, x: Any) -> int:
        i = self._row_by_identity.get(id(x))
        rows = self._rows
        if i is not None and rows[i] is x:
            return i
        i = self._row_ids.get(x)
        if i is None:
            i = self._row_ids[x] = len(rows)
            rows.append(x)
        if rows[i] is x:
            self._row_by_identity[id(x)] = i
        return i

    def _table(self, rows: tuple[Any, ...]) -> int:
        """The id of a lifecycle table (a tuple of rows); its canonical tuple is ``_tabs[id]``."""
        i = self._tab_by_identity.get(id(rows))
        tabs = self._tabs
        if i is not None and tabs[i] is rows:
            return i
        ids = tuple([self._row(x) for x in rows])
        i = self._tab_ids.get(ids)
        if i is None:
            i = self._tab_ids[ids] = len(tabs)
            canon = self._rows
            tabs.append(tuple([canon[r] for r in ids]))
            self._tab_by_identity[id(tabs[i])] = i
        return i

    def _lc_key(self, st: lc.LifecycleState) -> tuple[Any, Callable[[], Any]]:
        """A lifecycle state's key (its tables' ids) and how to build its canonical object
        (from canonical tables, so the tables of the states stepped from it are found by
        identity)."""
        t = self._table
        a, b, c, d = t(st.lgrs), t(st.descs), t(st.nodes), t(st.conns)
        # one int (smaller than a tuple; table ids are below 2**24 unless a run has more
        # than 16 million distinct tables, when the tuple keeps keys distinct)
        key: Any = (
            ((((a << 24 | b) << 24 | c) << 24 | d) << 1 | st.uar)
            if max(a, b, c, d) < 1 << 24
            else (a, b, c, d, st.uar)
        )

        def rebuild() -> lc.LifecycleState:
            tabs = self._tabs
            return lc.LifecycleState(
                lgrs=tabs[a], descs=tabs[b], nodes=tabs[c], conns=tabs[d], uar=st.uar
            )

        return key, rebuild

    def _ph_key(self, ph: PairHandshake) -> tuple[Any, Callable[[], Any]]:
        """A pair handshake's key (its sides' ids and the CLC streams, whose bytes cache their
        hashes) and its canonical object (with canonical sides)."""
        c, v = self._intern(ph.client), self._intern(ph.server)
        key = (c, v, ph.c2s, ph.s2c)

        def rebuild() -> PairHandshake:
            return PairHandshake(
                client=self._canon[c], server=self._canon[v], c2s=ph.c2s, s2c=ph.s2c
            )

        return key, rebuild

    def _canonical(self, s: SystemState) -> SystemState:
        """``s`` rebuilt from canonical sub-state objects (equal to ``s``)."""
        canon = self._canon
        pairs = tuple(canon[self._intern(ph)] for ph in s.pairs)
        lcs = canon[self._intern(s.lc)]
        data = tuple(canon[self._intern(d)] for d in s.data)
        if (
            lcs is s.lc
            and all(a is b for a, b in zip(pairs, s.pairs, strict=True))
            and all(a is b for a, b in zip(data, s.data, strict=True))
        ):
            return s
        return SystemState(mode=s.mode, pairs=pairs, lc=lcs, data=data)

    def adopt(self, value: Any) -> Any:
        """This model's own object for a component value that arrived from another process (a
        parallel explorer's worker learning a value another worker found): the hash-consed
        object when the value is known, else ``value`` (its handshake sides hash-consed too)
        becomes the canonical one. The memo tables key on identity, so a copy would be
        hashed in depth at every use."""
        if isinstance(value, PairHandshake):
            client = self._canon[self._intern(value.client)]
            server = self._canon[self._intern(value.server)]
            if client is not value.client or server is not value.server:
                value = replace(value, client=client, server=server)
        if isinstance(value, dp.Mode):
            return value
        return self._canon[self._intern(value)]

    def state_key(self, s: SystemState) -> tuple[Any, ...]:
        """An injective key of ``s`` that is cheap to hash (interned sub-state ids)."""
        intern = self._intern
        return (s.mode, *(intern(ph) for ph in s.pairs), intern(s.lc), *(intern(d) for d in s.data))

    def _dp_enabled(self, mode: dp.Mode, d: Any) -> tuple[Any, ...]:
        """The enabled data-path actions (one-direction or, with ``duplex``, full-duplex)."""
        key = self._intern(d) << 1 | (mode is _COPY)
        acts = self._dp_en.get(key)
        if acts is None:
            acts_: tuple[Any, ...]
            if self.cfg.duplex:
                acts_ = tuple(dx.enabled_actions(self.cfg.duplex_cfg(mode), d))
            else:
                acts_ = tuple(dp.enabled_actions(self.cfg.datapath(mode), d))
            acts = self._dp_en[key] = acts_
        return acts

    def _lc_enabled(self, mode: dp.Mode, st: lc.LifecycleState) -> tuple[lc.Action, ...]:
        key = self._intern(st) << 1 | (mode is _COPY)
        acts = self._lc_en.get(key)
        if acts is None:
            # one object per distinct action: the tables keep thousands of these tuples
            share = self._lc_acts.setdefault
            acts = tuple([share(a, a) for a in lc.enabled_actions(self.cfg.lifecycle(mode), st)])
            acts = self._lc_en[key] = self._lc_tuples.setdefault(acts, acts)
        return acts

    # -- model interface --------------------------------------------------------------------
    def init_states(self) -> Sequence[SystemState]:
        out = []
        for mode in self.cfg.modes:
            dcfg = self.cfg.datapath(mode)
            out.append(
                self._canonical(
                    SystemState(
                        mode=mode,
                        pairs=tuple(
                            PairHandshake(client=hs.client_init(), server=hs.server_init())
                            for _ in range(self.cfg.n_pairs)
                        ),
                        lc=lc.initial_state(self.cfg.lifecycle(mode)),
                        data=tuple(
                            dx.initial_state(self.cfg.duplex_cfg(mode))
                            if self.cfg.duplex
                            else dp.initial_state(dcfg)
                            for _ in self.cfg.data_pairs
                        ),
                    )
                )
            )
        return out

    def actions(self, s: SystemState) -> Iterator[Action]:
        for p in range(self.cfg.n_pairs):
            yield from self._pair_actions(p, s)
        for k in range(len(self.cfg.data_pairs)):
            yield from self._data_actions(k, s)
        yield from self._life_own(s)

    def _pair_actions(self, p: int, s: SystemState) -> Iterator[Action]:
        """Pair ``p``'s handshake actions (none until the earlier pairs finished, with
        ``sequential_connect``)."""
        if self.cfg.sequential_connect:
            for q in range(1, p + 1):
                if not (_finished(s.pairs[q - 1].client) and _finished(s.pairs[q - 1].server)):
                    return
        ph = s.pairs[p]
        if ph.client.phase is hs.Phase.INIT:
            yield ClientConnect(pair=p)
        if ph.server.phase is hs.Phase.LISTEN:
            yield ServerListen(pair=p)
        if ph.c2s:
            yield ClcDeliver(pair=p, to=hs.Role.SERVER)
        if ph.s2c:
            yield ClcDeliver(pair=p, to=hs.Role.CLIENT)

    def _data_actions(self, k: int, s: SystemState) -> Iterator[Action]:
        """Data pair ``k``'s data-path steps, then the close of its ends (one group)."""
        p = self.cfg.data_pairs[k]
        if self._established(s, p):
            for a in self._dp_enabled(s.mode, s.data[k]):
                yield DataStep(pair=p, action=a)
        yield from self._life_data_close(k, s)

    def _life_own(self, s: SystemState) -> Iterator[Action]:
        """The lifecycle's own actions (link groups, free, unregister, and the close of pairs
        without data), in its order; they read only the lifecycle."""
        data_cids = self._data_cids
        open_cids = self._open_cids
        for la in self._lc_enabled(s.mode, s.lc):
            if isinstance(la, _LIFE_CLOSE) and la.conn in open_cids:
                continue
            if isinstance(la, _LIFE_OWN) or (
                isinstance(la, _LIFE_CLOSE) and la.conn not in data_cids
            ):
                yield LifeStep(action=la)

    def _life_data_close(self, k: int, s: SystemState) -> Iterator[Action]:
        """The application's close() of an end of data pair ``k`` once the data path can do
        nothing more for it (it stopped at an abort, or it is final: e.g. the writer learned
        of the reader's close and gives up its unsent data - the kernel's linger timeout in
        smc_close_stream_wait): the socket still has to be closed to be freed."""
        p = self.cfg.data_pairs[k]
        for la in self._lc_enabled(s.mode, s.lc):
            if (
                isinstance(la, lc.ConnClose)
                and la.conn >> 1 == p
                and self._data_done(s, la.conn)
            ):
                yield LifeStep(action=la)

    # -- footprints: how the explorer memoises (see smcd_check.explorer.model) ----------------
    def components(self) -> tuple[str, ...]:
        """The parts of a state: ``mode``, ``pair<p>`` per pair, ``lc``, ``data<p>`` per
        data pair."""
        return (
            "mode",
            *(f"pair{p}" for p in range(self.cfg.n_pairs)),
            "lc",
            *(f"data{p}" for p in self.cfg.data_pairs),
        )

    def split(self, s: SystemState) -> tuple[Any, ...]:
        return (s.mode, *s.pairs, s.lc, *s.data)

    def join(self, parts: Sequence[Any]) -> SystemState:
        n = self.cfg.n_pairs
        return SystemState(
            mode=parts[0],
            pairs=tuple(parts[1 : 1 + n]),
            lc=parts[1 + n],
            data=tuple(parts[2 + n :]),
        )

    def action_groups(self) -> tuple[SystemActionGroup, ...]:
        """The actions grouped by what they read and write, in ``actions`` order: each pair's
        handshake (it reads every pair: the per-host ``smc_server_lgr_pending`` mutex and
        ``sequential_connect``), each data pair's data path with the close of its ends (the
        data path and a *view* of the lifecycle: see :meth:`data_view`), and the lifecycle's
        own actions (the lifecycle only)."""
        pairs = tuple(f"pair{p}" for p in range(self.cfg.n_pairs))
        groups = [
            SystemActionGroup(
                name=f"handshake pair {p}",
                reads=("mode", *pairs, "lc"),
                writes=(f"pair{p}", "lc"),
                actions=partial(self._pair_actions, p),
            )
            for p in range(self.cfg.n_pairs)
        ]
        groups += [
            SystemActionGroup(
                name=f"data path pair {p}",
                reads=("mode", f"data{p}", "lc"),
                writes=(f"data{p}", "lc"),
                actions=partial(self._data_actions, k),
                views={"lc": self._data_views[k]},
            )
            for k, p in enumerate(self.cfg.data_pairs)
        ]
        groups.append(
            SystemActionGroup(
                name="lifecycle", reads=("mode", "lc"), writes=("lc",), actions=self._life_own
            )
        )
        return tuple(groups)

    def symmetry(self) -> SystemSymmetry | None:
        """The config's interchangeable pairs (``symmetric_pairs``), or None."""
        group = self.cfg.symmetric_pairs
        if not group:
            return None
        return SystemSymmetry(
            slots=tuple((f"pair{p}",) for p in group), renames=("lc",), permute=self._permute
        )

    def _permute(self, name: str, value: Any, perm: tuple[int, ...]) -> Any:
        """Component ``name``'s ``value`` with symmetric pair ``group[i]`` renamed to
        ``group[perm[i]]`` (hash-consed: the model's own object for the result)."""
        if name != "lc":
            raise ValueError(f"symmetry: component {name!r} names no pairs")
        group = self.cfg.symmetric_pairs
        renamed = pair_symmetry.rename_pairs(
            value, {p: group[perm[i]] for i, p in enumerate(group)}
        )
        return self._canon[self._intern(renamed)]

    @cached_property
    def _data_views(self) -> tuple[SystemView, ...]:
        return tuple(
            SystemView(get=partial(self.data_view, p), put=partial(self._data_put, p))
            for p in self.cfg.data_pairs
        )

    def data_view(self, p: int, st: lc.LifecycleState) -> lc.LifecycleState:
        """What data pair ``p``'s steps read of the lifecycle, as a lifecycle state.

        The data path's glue (:meth:`_data`, :meth:`_life_data_close`) and the lifecycle
        functions it calls (``write_dmb``, ``read_dmb``, ``shutdown_conn``, ``close_conn``,
        ``abort_close``, ``dev_move_data``, ``may_write``, ``ConnClose``'s enabledness) read:

        * the pair's two connections (all of their fields), and ``uar``;
        * ``dev_move_data`` for a peer token of the pair: the first connection in cid order
          that is set for a DMB with that token. What the pair's steps do with it is only
          whether it is the peer (a CDC reaches its peer or the sender sets its own abort), so
          the connections that matter are those below the pair's higher cid that could be the
          first match (set for a DMB, not killed, its DMB's token one of the pair's peer
          tokens): a match above the pair's cids comes after the peer's place, where the
          answer is "not the peer" whoever matches;
        * of the DMB descriptors, the ``token`` and ``mem_live`` of those the connections
          above name as their rmb (the other fields are blanked);
        * of the device's DMB table, only whether a node with a peer token exists (one blank
          node per such token).

        Link groups and the rest are left out: states that differ only there share the data
        path's memo entries. The steps write back only connections of the view and ``uar``
        (:meth:`_data_put`).
        """
        pair = (2 * p, 2 * p + 1)
        toks = {c.peer_token for c in st.conns if c.cid in pair and c.peer_token is not None}
        token_of = {d.desc_id: d.token for d in st.descs}
        conns = tuple(
            c
            for c in st.conns
            if c.cid in pair
            or (
                c.cid < pair[1]
                and c.conn_set
                and c.rmb is not None
                and not c.killed
                and token_of.get(c.rmb) in toks
            )
        )
        rmbs = {c.rmb for c in conns if c.rmb is not None}
        descs = tuple(
            lc.DmbDesc(
                desc_id=d.desc_id,
                lgr_id=0,
                size=0,
                token=d.token,
                used=False,
                owner=None,
                mem_live=d.mem_live,
            )
            for d in st.descs
            if d.desc_id in rmbs
        )
        present = sorted({n.token for n in st.nodes if n.token in toks})
        nodes = tuple(
            lc.DmbNode(dev=0, token=t, sba_idx=0, size=0, refcnt=1, owned=True) for t in present
        )
        view = lc.LifecycleState(descs=descs, nodes=nodes, conns=conns, uar=st.uar)
        return self._canon[self._intern(view)]  # type: ignore[no-any-return]

    def _data_put(
        self, p: int, st: lc.LifecycleState, new: lc.LifecycleState
    ) -> lc.LifecycleState:
        """``st`` after a step of data pair ``p`` that turned its view into ``new``: the view's
        connections and ``uar`` go back (the only parts such a step writes)."""
        old = self.data_view(p, st)
        if (
            new.descs != old.descs
            or new.nodes != old.nodes
            or new.lgrs
            or [c.cid for c in new.conns] != [c.cid for c in old.conns]
        ):
            raise RuntimeError(  # a composition bug: the view cannot carry this change back
                f"a step of data pair {p} changed more of the lifecycle than its view carries "
                "back (connections of the view and uar)"
            )
        by_cid = {c.cid: c for c in new.conns}
        out = lc.LifecycleState(
            lgrs=st.lgrs,
            descs=st.descs,
            nodes=st.nodes,
            conns=tuple(by_cid.get(c.cid, c) for c in st.conns),
            uar=new.uar,
        )
        return self._canon[self._intern(out)]  # type: ignore[no-any-return]

    @property
    def boundary_reads(self) -> tuple[str, ...]:
        return ("mode", *(f"data{p}" for p in self.cfg.data_pairs))

    def next_state(self, s: SystemState, a: Action) -> SystemState | None:
        try:
            return self._canonical(self.step(s, a))
        except ForbiddenStep:
            return None

    def step(self, s: SystemState, a: Action) -> SystemState:
        """The effect of ``a`` (raises a :class:`~.errors.ForbiddenStep` when not enabled)."""
        if isinstance(a, ClientConnect):
            return self._handshake(s, a.pair, hs.Role.CLIENT, hs.Connect())
        if isinstance(a, ServerListen):
            return self._handshake(s, a.pair, hs.Role.SERVER, hs.ListenWork())
        if isinstance(a, ClcDeliver):
            ph = s.pairs[a.pair]
            stream = ph.c2s if a.to is hs.Role.SERVER else ph.s2c
            if not stream:
                raise SystemForbidden(f"{a}: no CLC message in flight towards {a.to.name}")
            if a.to is hs.Role.SERVER:
                ph = replace(ph, c2s=stream[1:])
            else:
                ph = replace(ph, s2c=stream[1:])
            s = replace(s, pairs=_put(s.pairs, a.pair, ph))
            return self._handshake(s, a.pair, a.to, hs.RecvBytes(data=stream[0]))
        if isinstance(a, DataStep):
            return self._data(s, a.pair, a.action)
        if isinstance(a, LifeStep):
            key = (self._intern(s.lc) << 1 | (s.mode is _COPY), a.action)
            nxt = self._lc_next.get(key)
            if nxt is None:
                nxt = lc.step(self.cfg.lifecycle(s.mode), s.lc, a.action)
                nxt = self._lc_next[key] = self._canon[self._intern(nxt)]
            return replace(s, lc=nxt)
        raise SystemForbidden(f"not a system action: {a!r}")

    def properties(self) -> Sequence[SystemProperty]:
        return self._properties

    def within_boundary(self, s: SystemState) -> bool:
        for d in s.data:
            key = self._intern(d) << 1 | (s.mode is _COPY)
            ok = self._dp_within.get(key)
            if ok is None:
                ok = self._dp_within[key] = (
                    dx.within_boundary(self.cfg.duplex_cfg(s.mode), d)
                    if self.cfg.duplex
                    else dp.within_boundary(self._dcfg[s.mode], d)
                )
            if not ok:
                return False
        return True

    def first_violation(self, s: SystemState) -> str | None:
        """The first always property (declaration order) failing in ``s`` (explorer hook)."""
        if not self._properties:  # pragma: no cover - builds the checker on first use
            return None
        bad = self._bad(s)
        if not bad:
            return None
        return next(n for n in self._always_names if n in bad)

    def is_final(self, s: SystemState) -> bool:
        if any(ph.c2s or ph.s2c for ph in s.pairs):
            return False
        if any(not _finished(ph.client) or not _finished(ph.server) for ph in s.pairs):
            return False
        if not lc.quiescent(self.cfg.lifecycle(s.mode), s.lc) and any(
            not c.freed and c.cid not in self._open_cids for c in s.lc.conns
        ):
            return False
        return all(
            self._dp_final(s.mode, d) or not self._ever_established(s, p)
            for p, d in zip(self.cfg.data_pairs, s.data, strict=True)
        )

    # -- presentation hooks -----------------------------------------------------------------
    def action_types(self) -> list[str]:
        """Every action kind this configuration can take (the coverage table's rows).

        Composed steps are listed by their inner action (``DataStep.ReaderRead``,
        ``LifeStep.HostUnregisterDmb``), so an inner action that never fires is reported;
        kinds the configuration switches off (close, abort, data) are left out, since their
        absence is then expected rather than a sign that the config or the spec is wrong.
        """
        kinds = [t.__name__ for t in (ClientConnect, ServerListen)]
        kinds += ["ClcDeliver(to=client)", "ClcDeliver(to=server)"]
        if self.cfg.data_pairs and self.cfg.duplex:
            xoff: set[type] = set()
            if not self.cfg.close_enabled:
                xoff |= set(dx.CLOSE_ACTIONS)
            if not self.cfg.abort_enabled:
                xoff.add(dx.AppAbort)
            if not self.cfg.urgent:
                xoff |= set(dx.URGENT_ACTIONS)
            if self.cfg.oobinline:
                xoff |= {dx.AppRecvUrgent, dx.AppRecvEmpty}
            if self.cfg.oob_first:
                xoff.add(dx.AppRecvEmpty)
            kinds += [f"DataStep.{t.__name__}" for t in dx.ACTION_TYPES if t not in xoff]
        elif self.cfg.data_pairs:
            off: set[type] = set()
            if not self.cfg.close_enabled:
                off |= {dp.WriterShutdownWrite, dp.WriterClose, dp.ReaderClose}
            if not self.cfg.abort_enabled:
                off |= {dp.WriterAbort, dp.ReaderAbort}
            kinds += [f"DataStep.{t.__name__}" for t in dp.ACTION_TYPES if t not in off]
        life: tuple[type, ...] = ()
        # the lifecycle's own close actions: for pairs without data that are not kept open,
        # and ConnClose also for a data pair whose data path has ended
        free_pairs = [
            p
            for p in range(self.cfg.n_pairs)
            if p not in self.cfg.data_pairs and p not in self.cfg.keep_open
        ]
        if self.cfg.close_enabled and (free_pairs or self.cfg.data_pairs):
            # teardown (none when every pair is kept open): ghost detach (merged mode only),
            # conn free, delayed lgr free, unregister
            life += (lc.HostFreeConn, lc.LgrFreeDelayed, lc.HostUnregisterDmb)
            if dp.Mode.MERGED in self.cfg.modes and not self.cfg.ism:
                life += (lc.PeerDetachDmb,)
            if free_pairs or self.cfg.data_pairs:
                life += (lc.ConnClose,)
            if free_pairs:
                life += (lc.ConnShutdown,)
                if self.cfg.close_abort_race:
                    life += (lc.ConnAbort,)
        if self.cfg.lgr_errors:
            life += (lc.LgrTerminate, lc.LgrTerminateWork)
        kinds += [f"LifeStep.{t.__name__}" for t in life]
        return kinds

    def action_kind(self, a: Action) -> str:
        """The coverage key of an action: composed steps by their inner action."""
        if isinstance(a, DataStep):
            return f"DataStep.{type(a.action).__name__}"
        if isinstance(a, LifeStep):
            return f"LifeStep.{type(a.action).__name__}"
        if isinstance(a, ClcDeliver):
            return f"ClcDeliver(to={a.to.name.lower()})"
        return type(a).__name__

    def action_label(self, a: Action) -> str:
        if isinstance(a, DataStep):
            return f"pair{a.pair}.{_short_action(a.action)}"
        if isinstance(a, LifeStep):
            return f"lifecycle.{_short_action(a.action)}"
        if isinstance(a, ClcDeliver):
            return f"pair{a.pair}.ClcDeliver(to={a.to.name.lower()})"
        return f"pair{a.pair}.{type(a).__name__}"

    def msc_actors(self) -> list[str]:
        return ["client (host A)", "server (host B)", "loopback-ism"]

    def msc_event(self, s: SystemState, a: Action, t: SystemState) -> Any:
        """:class:`MscEvent`-shaped records (duck-typed: the spec does not import the explorer);
        a delivery that makes the receiver answer at once gives (receive, send)."""
        cli, srv, dev = self.msc_actors()
        if isinstance(a, (ClientConnect, ServerListen)):
            sent = _new_msgs(s, t, a.pair)
            if sent:
                return _Msc(
                    actor=sent[0], kind="send", peer=sent[1], channel=sent[2], label=sent[3]
                )
            return _Msc(
                actor=cli if isinstance(a, ClientConnect) else srv,
                kind="local",
                label=self.action_label(a),
            )
        if isinstance(a, ClcDeliver):
            me = srv if a.to is hs.Role.SERVER else cli
            recv = _Msc(
                actor=me,
                kind="recv",
                peer=cli if me == srv else srv,
                channel=f"clc{a.pair}{'c2s' if me == srv else 's2c'}",
                label=self.action_label(a),
            )
            sent = _new_msgs(s, t, a.pair)
            if sent:  # the reply goes out in the same step
                return (
                    recv,
                    _Msc(actor=sent[0], kind="send", peer=sent[1], channel=sent[2], label=sent[3]),
                )
            return recv
        if isinstance(a, DataStep) and self.cfg.duplex:
            return self._duplex_msc(s, a, t)
        if isinstance(a, DataStep):
            name = type(a.action).__name__
            k = self.cfg.data_pairs.index(a.pair)
            if name in ("WriterSendCdc", "WriterShutdownWrite", "WriterClose", "WriterAbort"):
                m = t.data[k].a2b[-1] if t.data[k].a2b else None
                label = f"CDC prod={_curs(m.prod)}" if m is not None else name
                return _Msc(
                    actor=cli,
                    kind="send",
                    peer=srv,
                    channel=f"cdc{a.pair}a2b",
                    label=f"{label} ({name})",
                )
            if name in ("ReaderSendConsUpdate", "ReaderClose", "ReaderAbort"):
                m = t.data[k].b2a[-1] if t.data[k].b2a else None
                label = f"CDC cons={_curs(m.cons)}" if m is not None else name
                return _Msc(
                    actor=srv,
                    kind="send",
                    peer=cli,
                    channel=f"cdc{a.pair}b2a",
                    label=f"{label} ({name})",
                )
            if name == "ReaderRecvCdc":
                return _Msc(actor=srv, kind="recv", peer=cli, channel=f"cdc{a.pair}a2b", label=name)
            if name == "WriterRecvCdc":
                return _Msc(actor=cli, kind="recv", peer=srv, channel=f"cdc{a.pair}b2a", label=name)
            actor = cli if name.startswith("Writer") else srv
            return _Msc(actor=actor, kind="local", label=self.action_label(a))
        return _Msc(actor=dev, kind="local", label=self.action_label(a))

    def _duplex_msc(self, s: SystemState, a: DataStep, t: SystemState) -> Any:
        """MSC records of a full-duplex step: CDCs as arrows between the two ends (channel
        ``cdc<p>a2b`` from the client, ``cdc<p>b2a`` from the server), the rest as boxes."""
        cli, srv, _dev = self.msc_actors()
        side = a.action.side
        me, peer = (cli, srv) if side == 0 else (srv, cli)
        k = self.cfg.data_pairs.index(a.pair)
        name = type(a.action).__name__
        out_ch = f"cdc{a.pair}{'a2b' if side == 0 else 'b2a'}"
        in_ch = f"cdc{a.pair}{'b2a' if side == 0 else 'a2b'}"
        sent = t.data[k].chans[side]
        if len(sent) > len(s.data[k].chans[side]) or (sent and sent != s.data[k].chans[side]):
            m = sent[-1]
            flags = [f for f in ("urg_data_pending", "urg_data_present", "write_blocked")
                     if getattr(m.prod_flags, f)]
            flags += [f for f in ("peer_done_writing", "peer_conn_closed", "peer_conn_abort")
                      if getattr(m.conn_state_flags, f)]
            extra = f" {'+'.join(flags)}" if flags else ""
            return _Msc(
                actor=me,
                kind="send",
                peer=peer,
                channel=out_ch,
                label=f"CDC prod={_curs(m.prod)} cons={_curs(m.cons)}{extra} ({name})",
            )
        if name == "HostRecvCdc":
            return _Msc(actor=me, kind="recv", peer=peer, channel=in_ch, label=name)
        return _Msc(actor=me, kind="local", label=self.action_label(a))

    # -- glue -------------------------------------------------------------------------------
    def _established(self, s: SystemState, p: int) -> bool:
        c = lc.find_conn(s.lc, 2 * p)
        v = lc.find_conn(s.lc, 2 * p + 1)
        return (
            c is not None
            and v is not None
            and c.stage is lc.Stage.ESTABLISHED
            and v.stage is lc.Stage.ESTABLISHED
        )

    def _data_done(self, s: SystemState, cid: int) -> bool:
        """The data-path end of ``cid`` can do nothing more: the data path is final, or this
        end sent or received an abort."""
        p = cid >> 1
        if p not in self.cfg.data_pairs:
            return False
        d = s.data[self.cfg.data_pairs.index(p)]
        if self._dp_final(s.mode, d):
            return True
        if self.cfg.duplex:
            x = d.sides[cid & 1]
            return x.flags.peer_conn_abort or x.rx_flags.peer_conn_abort
        if cid & 1:
            return d.r_flags.peer_conn_abort or d.r_rx_flags.peer_conn_abort
        return d.w_flags.peer_conn_abort or d.w_rx_flags.peer_conn_abort

    def _dp_final(self, mode: dp.Mode, d: Any) -> bool:
        if self.cfg.duplex:
            return dx.is_final(self.cfg.duplex_cfg(mode), d)
        return dp.is_final(self.cfg.datapath(mode), d)

    def _ever_established(self, s: SystemState, p: int) -> bool:
        c = lc.find_conn(s.lc, 2 * p)
        return c is not None and c.stage is lc.Stage.ESTABLISHED

    def _handshake(self, s: SystemState, p: int, role: hs.Role, event: Any) -> SystemState:
        mode = s.mode
        host = self.cfg.host_of(p, role)
        other_role = hs.Role.SERVER if role is hs.Role.CLIENT else hs.Role.CLIENT
        peer_host = self.cfg.host_of(p, other_role)
        hcfg = self.cfg.host(mode, host)
        lcfg = self.cfg.lifecycle(mode)
        ph = s.pairs[p]
        side = ph.client if role is hs.Role.CLIENT else ph.server
        c2s, s2c = ph.c2s, ph.s2c
        state = s.lc
        cid = 2 * p + (0 if role is hs.Role.CLIENT else 1)
        queue = [event]
        while queue:
            res = self._hs_step(hcfg, side, queue.pop(0))
            side = res.state
            for eff in res.effects:
                if isinstance(eff, hs.SendClc):
                    if role is hs.Role.CLIENT:
                        c2s = (*c2s, eff.data)
                    else:
                        s2c = (*s2c, eff.data)
                elif isinstance(eff, hs.RequestConn):
                    state, answer = _answer_request(lcfg, state, p, host, peer_host, role, eff)
                    queue.append(answer)
                elif isinstance(eff, hs.AttachPeerDmb):
                    try:
                        state = lc.attach_dmb(lcfg, state, cid, eff.peer_token)
                        queue.append(hs.AttachDone())
                    except lc.UnknownToken:
                        queue.append(hs.AttachDone(errno=hs.Errno.EINVAL))
                elif isinstance(eff, hs.ConnAbort):
                    state = lc.abort_conn(lcfg, state, cid, eff.first_contact_local)
                elif isinstance(eff, hs.LgrSyncErr):
                    state = lc.decline_sync_err(lcfg, state, _lc_lgr(eff.lgr_id))
                else:  # pragma: no cover - the handshake has no other effects
                    raise SystemForbidden(f"unknown handshake effect {eff!r}")
        if not lcfg.merged and side.phase is hs.Phase.ACTIVE:
            conn = lc.find_conn(state, cid)
            if conn is not None and conn.stage is lc.Stage.HAS_DMB and side.session is not None:
                token = side.session.peer_token
                if token is not None:
                    state = lc.save_peer_info(lcfg, state, cid, token)
        holders = 0
        for q, other in enumerate(s.pairs):
            for r, st in ((hs.Role.CLIENT, other.client), (hs.Role.SERVER, other.server)):
                if self.cfg.host_of(q, r) != host:
                    continue  # the mutex is per host (per kernel)
                cur = side if (q, r) == (p, role) else st
                holders += hs.holds_lgr_pending(cur)
        if holders > 1:
            raise SystemForbidden(
                f"pair {p} {role.name}: waits for smc_server_lgr_pending held by another socket"
            )
        new_ph = (
            replace(ph, client=side, c2s=c2s, s2c=s2c)
            if role is hs.Role.CLIENT
            else replace(ph, server=side, c2s=c2s, s2c=s2c)
        )
        return replace(s, pairs=_put(s.pairs, p, new_ph), lc=state)

    def _hs_step(self, hcfg: hs.HostConfig, side: hs.HandshakeState, event: Any) -> Any:
        """``hs.step``, memoised: the same side in the same state receiving the same event
        (a ClcDeliver re-decodes, validates and re-encodes CLC bytes) gives the same result.
        A forbidden step is remembered as its exception and raised again."""
        key = (id(hcfg), self._intern(side), event)
        res = self._hs_next.get(key)
        if res is None:
            try:
                res = hs.step(hcfg, side, event)
                res = replace(res, state=self._canon[self._intern(res.state)])
            except ForbiddenStep as exc:
                res = exc
            self._hs_next[key] = res
        if isinstance(res, ForbiddenStep):
            raise res.with_traceback(None)
        return res

    def _data(self, s: SystemState, p: int, a: dp.Action) -> SystemState:
        if p not in self.cfg.data_pairs:
            raise SystemForbidden(f"pair {p} carries no data in this config")
        if not self._established(s, p):
            raise SystemForbidden(f"pair {p}: data path not established in the lifecycle")
        k = self.cfg.data_pairs.index(p)
        if self.cfg.duplex:
            return self._duplex_data(s, p, k, a)
        dcfg = self._dcfg[s.mode]
        lcfg = self.cfg.lifecycle(s.mode)
        before = s.data[k]
        key = (self._intern(before) << 1 | (s.mode is _COPY), a)
        d = self._dp_next.get(key)
        if d is None:
            try:
                d = dp.step(dcfg, before, a)
                d = self._canon[self._intern(d)]
            except ForbiddenStep as exc:
                d = exc
            self._dp_next[key] = d
        if isinstance(d, ForbiddenStep):
            raise d
        state = _sync_unread(s.lc, 2 * p + 1, before.bytes_to_rcv > 0)
        client, server = 2 * p, 2 * p + 1
        merged = s.mode is dp.Mode.MERGED
        if merged and isinstance(a, dp.WriterAppWrite):
            conn = lc.get_conn(state, client)
            if lc.may_write(conn):
                state = lc.write_dmb(lcfg, state, client)
            elif conn.ghost_dangling:
                # the lifecycle already delivered the peer's close, the data path's writer has
                # not received it yet: the write still goes through the ghost sndbuf, and a
                # ghost whose memory was released (only with UNREGISTER_WHILE_ATTACHED) is a
                # use after release, which the lifecycle records in ``uar``
                state = replace(state, uar=True)
        elif not merged and isinstance(a, dp.WriterMoveData):
            conn = lc.get_conn(state, client)
            if lc.may_write(conn):
                state = lc.write_dmb(lcfg, state, client)
            else:
                # after the peer's close the kernel still moves the data already in the
                # sndbuf (smc_tx_sndbuf_nonempty stops only on abort/kill): a bare move_data,
                # which needs the peer token to resolve
                if conn.peer_token is None:
                    raise SystemForbidden(f"conn {client}: no peer token to move data to")
                lc.dev_move_data(lcfg, state, conn.peer_token)
        elif isinstance(a, dp.ReaderRead):
            if lc.get_conn(state, server).unread:
                state = lc.read_dmb(lcfg, state, server)
        elif isinstance(a, dp.WriterShutdownWrite):
            state = lc.shutdown_conn(lcfg, state, client)
        elif isinstance(a, dp.WriterClose):
            state = lc.close_conn(lcfg, state, client)
        elif isinstance(a, dp.ReaderClose):
            state = lc.close_conn(lcfg, state, server)
        elif isinstance(a, dp.WriterAbort):
            state = lc.abort_close(lcfg, state, client)
        elif isinstance(a, dp.ReaderAbort):
            state = lc.abort_close(lcfg, state, server)
        # refinement of the lifecycle's one-bit "unread data" by the data path's bytes_to_rcv
        # (the lifecycle delivers at once; the data path through the CDC channel): the close
        # rule (abort when data is unread, smc_close_final) must see the data path's count
        state = _sync_unread(state, server, d.bytes_to_rcv > 0)
        return replace(s, data=_put(s.data, k, d), lc=state)

    def _duplex_data(self, s: SystemState, p: int, k: int, a: Any) -> SystemState:
        """A full-duplex step with the lifecycle's part for the end that acts (the same glue as
        :meth:`_data`, for either end: cid ``2p + side``)."""
        xcfg = self.cfg.duplex_cfg(s.mode)
        lcfg = self.cfg.lifecycle(s.mode)
        before = s.data[k]
        key = (self._intern(before) << 1 | (s.mode is _COPY), a)
        d = self._dp_next.get(key)
        if d is None:
            try:
                d = dx.step(xcfg, before, a)
                d = self._canon[self._intern(d)]
            except ForbiddenStep as exc:
                d = exc
            self._dp_next[key] = d
        if isinstance(d, ForbiddenStep):
            raise d
        me = 2 * p + a.side
        state = s.lc
        for side in (0, 1):
            state = _sync_unread(state, 2 * p + side, before.sides[side].bytes_to_rcv > 0)
        merged = s.mode is dp.Mode.MERGED
        if (merged and isinstance(a, dx.AppSend | dx.AppSendUrgent)) or (
            not merged and isinstance(a, dx.HostMoveData)
        ):
            conn = lc.get_conn(state, me)
            if lc.may_write(conn):
                state = lc.write_dmb(lcfg, state, me)
            elif merged:
                if conn.ghost_dangling:
                    state = replace(state, uar=True)
            else:
                if conn.peer_token is None:
                    raise SystemForbidden(f"conn {me}: no peer token to move data to")
                lc.dev_move_data(lcfg, state, conn.peer_token)
        elif isinstance(a, dx.AppRecv):
            if lc.get_conn(state, me).unread:
                state = lc.read_dmb(lcfg, state, me)
        elif isinstance(a, dx.AppShutdownWrite):
            state = lc.shutdown_conn(lcfg, state, me)
        elif isinstance(a, dx.AppClose):
            state = lc.close_conn(lcfg, state, me)
        elif isinstance(a, dx.AppAbort):
            state = lc.abort_close(lcfg, state, me)
        for side in (0, 1):
            state = _sync_unread(state, 2 * p + side, d.sides[side].bytes_to_rcv > 0)
        return replace(s, data=_put(s.data, k, d), lc=state)

    # -- properties -------------------------------------------------------------------------
    @cached_property
    def _properties(self) -> tuple[SystemProperty, ...]:
        cfg = self.cfg
        props: list[SystemProperty] = []
        # Each module's invariants are evaluated once per distinct sub-state (the same data
        # path, lifecycle or handshake state recurs in many system states): memo tables map
        # (mode, sub-state) to the names of the invariants violated there.
        dp_memo: dict[int, frozenset[str]] = {}
        lc_memo: dict[int, frozenset[str]] = {}
        hs_memo: dict[Any, frozenset[str]] = {}

        intern = self._intern

        def dp_bad(mode: dp.Mode, d: Any) -> frozenset[str]:
            key = intern(d) << 1 | (mode is _COPY)
            bad = dp_memo.get(key)
            if bad is None:
                if cfg.duplex:
                    xcfg = cfg.duplex_cfg(mode)
                    bad = frozenset(i.name for i in dx.INVARIANTS if not i.predicate(xcfg, d))
                else:
                    dcfg = cfg.datapath(mode)
                    bad = frozenset(i.name for i in dp.INVARIANTS if not i.predicate(dcfg, d))
                bad = dp_memo[key] = bad or _NOTHING
            return bad

        def lc_bad(mode: dp.Mode, st: lc.LifecycleState) -> frozenset[str]:
            key = intern(st) << 1 | (mode is _COPY)
            bad = lc_memo.get(key)
            if bad is None:
                lcfg = cfg.lifecycle(mode)
                bad = lc_memo[key] = (
                    frozenset(
                        i.name
                        for i in lc.INVARIANTS
                        if i.kind.value == "always" and not i.predicate(lcfg, st)
                    )
                    or _NOTHING
                )
            return bad

        def hs_bad(mode: dp.Mode, pair: int, ph: PairHandshake) -> frozenset[str]:
            key = (
                mode,
                cfg.host_of(pair, hs.Role.CLIENT),
                cfg.host_of(pair, hs.Role.SERVER),
                intern(ph),
            )
            bad = hs_memo.get(key)
            if bad is None:
                pcfg = _pair_cfg(cfg, mode, pair)
                pst = hs.PairState(client=ph.client, server=ph.server)
                bad = hs_memo[key] = (
                    frozenset(
                        i.name
                        for i in hs.INVARIANTS
                        if i.kind.value == "always" and not i.predicate(pcfg, pst)
                    )
                    or _NOTHING
                )
            return bad

        # the explorer asks every invariant about the same state in a row: compute the set of
        # violated names once per state (a one-entry cache keyed by identity)
        last: list[Any] = [None, frozenset()]

        def bad(s: SystemState) -> frozenset[str]:
            if last[0] is s:
                return last[1]  # type: ignore[no-any-return]
            names: set[str] = set()
            for d in s.data:
                found = dp_bad(s.mode, d)
                if found:  # the common case (nothing violated) builds no strings
                    names.update(f"data path: {n}" for n in found)
            found = lc_bad(s.mode, s.lc)
            if found:
                names.update(f"lifecycle: {n}" for n in found)
            for q, ph in enumerate(s.pairs):
                found = hs_bad(s.mode, q, ph)
                if found:
                    names.update(f"handshake: {n}" for n in found)
            last[0], last[1] = s, frozenset(names) if names else _NOTHING
            return last[1]  # type: ignore[no-any-return]

        self._bad = bad
        always_names = [
            f"data path: {i.name}" for i in (dx.INVARIANTS if cfg.duplex else dp.INVARIANTS)
        ]
        always_names += [f"lifecycle: {i.name}" for i in lc.INVARIANTS if i.kind.value == "always"]
        always_names += [f"handshake: {i.name}" for i in hs.INVARIANTS if i.kind.value == "always"]
        self._always_names = always_names

        def holds(name: str) -> Callable[[SystemState], bool]:
            return lambda s: name not in bad(s)

        pairs = tuple(f"pair{p}" for p in range(cfg.n_pairs))
        datas = tuple(f"data{p}" for p in cfg.data_pairs)
        for name in always_names:
            part = name.split(":")[0]
            reads = {"data path": datas, "lifecycle": ("lc",), "handshake": pairs}[part]
            props.append(
                SystemProperty(
                    name=name, kind="always", condition=holds(name), reads=("mode", *reads)
                )
            )
        props.append(
            SystemProperty(
                name="SMC-D becomes active on both ends of a pair",
                kind="sometimes",
                condition=lambda s: any(
                    ph.client.phase is hs.Phase.ACTIVE and ph.server.phase is hs.Phase.ACTIVE
                    for ph in s.pairs
                ),
                reads=pairs,
            )
        )
        if cfg.data_pairs:
            props.append(
                SystemProperty(
                    name="the producer cursor wraps around the ring",
                    kind="sometimes",
                    condition=(
                        (lambda s: any(x.prod.wrap != 0 for d in s.data for x in d.sides))
                        if cfg.duplex
                        else (lambda s: any(d.w_prod.wrap != 0 for d in s.data))
                    ),
                    reads=datas,
                )
            )
        if cfg.duplex and cfg.data_pairs:
            props += _duplex_sometimes(cfg, datas)
        if cfg.n_pairs > 1:
            props.append(
                SystemProperty(
                    name="two connections share one link group",
                    kind="sometimes",
                    condition=lambda s: any(len(g.conns) > 1 for g in s.lc.lgrs),
                    reads=("lc",),
                )
            )
        if cfg.close_enabled and not cfg.keep_open:
            props.append(
                SystemProperty(
                    name="the system tears down completely",
                    kind="sometimes",
                    condition=lambda s: (
                        not s.lc.lgrs
                        and any(ph.client.phase is hs.Phase.ACTIVE for ph in s.pairs)
                        and self.is_final(s)
                    ),
                )
            )
        if cfg.liveness:
            props.append(
                SystemProperty(
                    name="every handshake eventually ends active, declined or fallen back",
                    kind="eventually",
                    condition=lambda s: all(
                        _finished(ph.client) and _finished(ph.server) for ph in s.pairs
                    ),
                )
            )
            if cfg.duplex:
                props += _duplex_eventually()
            else:
                props.append(
                    SystemProperty(
                        name="every byte written is eventually read (or the reader gave up)",
                        kind="eventually",
                        trigger=lambda s: any(d.seq_next != d.seq_expect for d in s.data),
                        condition=lambda s: all(
                            d.seq_next == d.seq_expect or d.r_flags.any_close for d in s.data
                        ),
                    )
                )
        return tuple(props)


@dataclass(frozen=True, slots=True, kw_only=True)
class _Msc:
    """An MSC step description (the explorer's ``MscEvent`` shape)."""

    actor: str
    kind: str
    label: str
    peer: str = ""
    channel: str = ""


def _unread_both_ways(s: SystemState) -> bool:
    """Some byte written by one end is not yet consumed by the other (in either direction)."""
    return any(d.sides[k].seq_next != d.sides[1 - k].seq_expect for d in s.data for k in (0, 1))


def _readable_or_gave_up(s: SystemState) -> bool:
    """Every byte written was consumed, or its reader closed/aborted (it gave up)."""
    return all(
        d.sides[k].seq_next == d.sides[1 - k].seq_expect or dx.side_done(d.sides[1 - k])
        for d in s.data
        for k in (0, 1)
    )


def _urgent_waiting(s: SystemState) -> bool:
    return any(x.urg_tx_pend for d in s.data for x in d.sides)


def _urgent_released(s: SystemState) -> bool:
    """No end waits for its urgent data to be confirmed, unless the connection is closing
    (sendmsg then fails with EPIPE/ECONNRESET instead of waiting)."""
    return all(
        not x.urg_tx_pend or x.flags.any_close_or_senddone or x.rx_flags.any_close
        for d in s.data
        for x in d.sides
    )


def _out_of_space(s: SystemState) -> bool:
    return any(x.peer_rmbe_space <= 0 for d in s.data for x in d.sides)


def _space_again(s: SystemState) -> bool:
    """Every end has peer ring space again, or the connection is closing for it."""
    return all(
        x.peer_rmbe_space > 0 or x.flags.any_close_or_senddone or x.rx_flags.any_close
        for d in s.data
        for x in d.sides
    )


def _duplex_eventually() -> list[SystemProperty]:
    """The full-duplex liveness properties (strong fairness, see explorer.liveness)."""
    return [
        SystemProperty(
            name="every byte written is eventually readable, in either direction (or its "
            "reader gave up)",
            kind="eventually",
            trigger=_unread_both_ways,
            condition=_readable_or_gave_up,
        ),
        SystemProperty(
            name="a writer out of peer ring space is eventually given space again (no window "
            "update is lost)",
            kind="eventually",
            trigger=_out_of_space,
            condition=_space_again,
        ),
        SystemProperty(
            name="a sender waiting for its urgent data to be confirmed is eventually released",
            kind="eventually",
            trigger=_urgent_waiting,
            condition=_urgent_released,
        ),
    ]


def _duplex_sometimes(cfg: SystemConfig, datas: tuple[str, ...]) -> list[SystemProperty]:
    """Reachability checks that the duplex scenario really happens."""
    props = []
    if cfg.senders == (0, 1):
        props.append(
            SystemProperty(
                name="data flows both ways at once",
                kind="sometimes",
                condition=lambda s: any(
                    d.sides[0].seq_next != d.sides[1].seq_expect
                    and d.sides[1].seq_next != d.sides[0].seq_expect
                    for d in s.data
                ),
                reads=datas,
            )
        )
    props.append(
        SystemProperty(
            name="a CDC carries a consumer cursor that wrapped",
            kind="sometimes",
            condition=lambda s: any(
                m.cons.wrap != 0 for d in s.data for ch in d.chans for m in ch
            ),
            reads=datas,
        )
    )
    if cfg.close_enabled:
        props.append(
            SystemProperty(
                name="a close or shutdown CDC carries a cursor that wrapped",
                kind="sometimes",
                condition=lambda s: any(
                    m.conn_state_flags.any_close_or_senddone
                    and (m.prod.wrap != 0 or m.cons.wrap != 0)
                    for d in s.data
                    for ch in d.chans
                    for m in ch
                ),
                reads=datas,
            )
        )
    if cfg.urgent:
        props.append(
            SystemProperty(
                name="an urgent byte arrives (urg_state VALID)",
                kind="sometimes",
                condition=lambda s: any(
                    x.urg_state is dx.UrgState.VALID for d in s.data for x in d.sides
                ),
                reads=datas,
            )
        )
        props.append(
            SystemProperty(
                name="the urgent pointer reaches the wrap-counter overflow",
                kind="sometimes",
                condition=lambda s: any(
                    x.urg_state is dx.UrgState.VALID and x.urg_curs.wrap == 0
                    for d in s.data
                    for x in d.sides
                ),
                reads=datas,
            )
        )
    return props


def _put(items: tuple[Any, ...], k: int, value: Any) -> tuple[Any, ...]:
    return (*items[:k], value, *items[k + 1 :])


def _sync_unread(state: lc.LifecycleState, cid: int, unread: bool) -> lc.LifecycleState:
    """``state`` with connection ``cid``'s one-bit ``unread`` set to ``unread``."""
    c = lc.find_conn(state, cid)
    if c is None or c.unread == unread:
        return state
    return replace(
        state, conns=tuple(replace(x, unread=unread) if x.cid == cid else x for x in state.conns)
    )


def _finished(side: hs.HandshakeState) -> bool:
    return side.phase in hs.TERMINAL_PHASES


def _lc_lgr(handshake_lgr_id: int) -> int:
    """The lifecycle's lgr id for the id the handshake saw (256, 512, ... on the wire)."""
    return handshake_lgr_id // hs.SMC_LGR_NUM_INCR - 1


def _answer_request(
    lcfg: lc.LifecycleConfig,
    state: lc.LifecycleState,
    p: int,
    host: int,
    peer_host: int,
    role: hs.Role,
    req: hs.RequestConn,
) -> tuple[lc.LifecycleState, Any]:
    """``smc_conn_create`` + ``smc_buf_create`` by the lifecycle, as the handshake's answer."""
    lrole = lc.Role.CLNT if role is hs.Role.CLIENT else lc.Role.SERV
    try:
        state, cid, first = lc.create_conn(
            lcfg,
            state,
            pair=p,
            role=lrole,
            host=host,
            peer_host=peer_host,
            vlan=req.vlan_id,
            smcd_version=req.smcd_version,
            first_contact_peer=req.policy is hs.LgrPolicy.CREATE_ONLY,
        )
    except lc.LgrOutOfSync:
        return state, hs.ConnCreateFailed(reason=DeclineCode.SYNCERR)
    conn = lc.get_conn(state, cid)
    assert conn.lgr is not None
    lgr_id = (conn.lgr + 1) * hs.SMC_LGR_NUM_INCR
    try:
        state, token = lc.create_dmb(lcfg, state, cid, lcfg.dmb_sizes[-1])
    except lc.NoFreeSlot:
        return state, hs.BufCreateFailed(
            lgr_id=lgr_id, first_contact_local=first, errno=hs.Errno.ENOSPC
        )
    desc = lc.get_desc(state, lc.get_conn(state, cid).rmb)  # type: ignore[arg-type]
    return state, hs.ConnCreated(
        lgr_id=lgr_id, first_contact_local=first, dmb_token=token, dmb_len=lc.dmb_bytes(desc.size)
    )


def _pair_cfg(cfg: SystemConfig, mode: dp.Mode, pair: int) -> hs.PairConfig:
    return hs.PairConfig(
        client=cfg.host(mode, cfg.host_of(pair, hs.Role.CLIENT)),
        server=cfg.host(mode, cfg.host_of(pair, hs.Role.SERVER)),
    )


def _new_msgs(s: SystemState, t: SystemState, p: int) -> tuple[str, str, str, str] | None:
    """(sender, receiver, channel, label) of a CLC message written in this step, if any."""
    a, b = s.pairs[p], t.pairs[p]
    cli, srv = "client (host A)", "server (host B)"
    if len(b.c2s) > len(a.c2s) or (b.c2s and b.c2s[-1:] != a.c2s[-1:] and b.c2s != a.c2s[1:]):
        return cli, srv, f"clc{p}c2s", _clc_name(b.c2s[-1])
    if len(b.s2c) > len(a.s2c) or (b.s2c and b.s2c[-1:] != a.s2c[-1:] and b.s2c != a.s2c[1:]):
        return srv, cli, f"clc{p}s2c", _clc_name(b.s2c[-1])
    return None


def _clc_name(data: bytes) -> str:
    names = {1: "CLC Proposal", 2: "CLC Accept", 3: "CLC Confirm", 4: "CLC Decline"}
    return names.get(data[4] if len(data) > 4 else 0, "CLC message") + f" ({len(data)} bytes)"


def _curs(c: Any) -> str:
    return f"({c.wrap},{c.count})"


def _short_action(a: Any) -> str:
    fields = getattr(a, "__dataclass_fields__", {})
    inner = ", ".join(f"{k}={getattr(a, k)!s}" for k in fields)
    return f"{type(a).__name__}({inner})" if inner else type(a).__name__
