"""The SMC-D CLC handshake: client and server as two sans-I/O state machines (Linux 6.12.118).

Theory of operation
-------------------
One :class:`HandshakeState` is one side of one SMC socket's set-up, as ``net/smc/af_smc.c``
runs it: the client's ``__smc_connect`` (``smc_find_proposal_devices``, ``smc_connect_clc``,
``smc_connect_check_aclc``, ``smc_connect_ism``, ``smc_connect_decline_fallback``) and the
server's ``smc_listen_work`` (``smc_listen_v2_check``, ``smc_listen_find_device``,
``smc_find_ism_v2_device_serv``, ``smc_listen_ism_init``, ``smc_listen_decline``). Everything
that happens is an *event* handed to :func:`step`, which returns the new state and the
*effects* the side asks its environment to carry out:

* events in: :class:`Connect` (the application's ``connect()``), :class:`ListenWork` (the
  server's worker starts), :class:`RecvBytes` (bytes arrived on the CLC TCP socket - any
  split or coalescing of messages, any content), :class:`RecvTimeout` (``CLC_WAIT_TIME``
  expired while waiting), :class:`RecvEof` (the peer shut the TCP socket), and the
  lifecycle's answers :class:`ConnCreated`, :class:`ConnCreateFailed`,
  :class:`BufCreateFailed`, :class:`AttachDone`;
* effects out: :class:`SendClc` (the bytes of one CLC message, from the codec ``clc``),
  :class:`RequestConn` (``smc_conn_create`` + ``smc_buf_create``: the composition asks the
  lifecycle and answers with :class:`ConnCreated` or a failure), :class:`AttachPeerDmb`
  (``smcd_buf_attach``, merged "nocopy" devices), :class:`ConnAbort` (``smc_conn_abort``:
  give the connection's DMB back and free a link group created for it), :class:`LgrSyncErr`
  (an out-of-sync Decline marks the link group ``sync_err`` and schedules its termination).

The handshake never decides link-group reuse itself: the kernel does that inside
``smc_conn_create``, which belongs to the lifecycle. :class:`RequestConn` carries what that
function needs (device, peer GID/gid_ext, VLAN, version) and the :class:`LgrPolicy` the role
imposes; :func:`conn_create_decision` is the kernel's matching rule (``smcd_lgr_match``,
``sync_err``, VLAN for v1) over :class:`LgrView` snapshots, for whoever answers the request.

Public API
----------
* Configuration: :class:`HostConfig` (or :func:`host_config` with text UEIDs / host name),
  :class:`SmcdDevice`, :func:`loopback_device`; :class:`Role`, :class:`Phase`,
  :class:`Outcome` / :class:`OutcomeKind`, :class:`Errno`.
* Machines: :func:`client_init`, :func:`server_init`, :func:`step` ``(cfg, state, event) ->
  Step(state, effects)``, :func:`enabled`, :func:`run`; tables :data:`TRANSITIONS`,
  :data:`MAY_SEND`, :data:`SEND_SEQUENCES`, :data:`LGR_PENDING_PHASES` /
  :func:`holds_lgr_pending` (the host-wide ``smc_server_lgr_pending`` mutex).
* Answering requests: :func:`conn_create_decision` over :class:`LgrView` snapshots.
* Pairs: :class:`PairConfig`, :class:`PairState`, :data:`INVARIANTS`,
  :func:`run_back_to_back` (with :class:`SideEnv` and a ``tamper`` fault hook).
* Errors: :class:`ForbiddenHandshakeStep`, :class:`InconsistentAnswer`,
  :class:`HandshakeConfigError`.

Rules of this file
------------------
* All transition logic lives here; the allowed phase changes are the table
  :data:`TRANSITIONS` (``(role, phase) -> {event type: possible next phases}``), checked at
  the single choke point ``_set_phase``. The logic that does not fit a table (it depends on
  message content and configuration) is kept in this module:
  ``_client_connect`` (device discovery and the Proposal), ``_client_on_accept``,
  ``_client_on_conn``, ``_server_on_proposal`` (version check and the device search plan),
  ``_server_run_plan``, ``_server_on_confirm``, ``_receive`` (``smc_clc_wait_msg``).
* Peer input (bytes, timeout, EOF) never raises: malformed, unexpected or reordered messages
  end in the kernel's outcome. Local misuse (``Connect`` twice, an answer nobody asked for)
  raises a :class:`ForbiddenHandshakeStep` and leaves the state unchanged.
* Messages are read the way the kernel reads them: validity by the codec
  (``clc.check_receivable``, i.e. ``smc_clc_msg_hdr_valid`` with the buffer size), then the
  fields at the kernel's fixed offsets of its zeroed receive buffer (160 bytes for the client's
  Accept, 652 for the server's Proposal and Confirm). So a first-contact Accept of only 78
  bytes yields the first-contact extension the kernel reads there: its own trailer and zeros.
* Deterministic: GIDs, tokens, link-group ids, host names are inputs; nothing is random.

Outcome
-------
A finished side has an :class:`Outcome`: ``ACTIVE`` (SMC-D in use), ``DECLINED`` (fell back
to TCP after a Decline went either way), ``FALLBACK`` (fell back without any Decline:
``PEERNOSMC``), ``ERROR`` (a negative code: the socket fails, no fallback), ``OOPS`` (the
kernel dereferences a NULL device: see ``_client_on_accept``) or ``HANG`` (the handshake worker
deadlocks: see ``_on_decline``). OOPS and HANG are kernel faults reproduced on Linux 6.12.118
(``smcd-check kernel run peer-accept-v3`` / ``peer-syncerr-first``), not protocol outcomes.
``reason`` is ``smc->fallback_rsn`` and ``peer_diagnosis`` ``smc->peer_diagnosis`` as
``smc_diag`` shows them; ``errno`` the positive errno of an ERROR.

Not modelled
------------
* SMC-R: a peer may offer it and the server's codes for it are reproduced
  (``NOSMCRDEV``/``NOSMCDEV``, ``MAXCONNERR``/``MAXLINKERR``), but no host has RoCE devices.
* Send failures of the CLC socket (``kernel_sendmsg`` short writes), signals (-EINTR), memory
  allocation failures outside the buffers (``kzalloc`` of ``ini``), the socket already in
  fallback before connect, the listen socket closing during the work, TCP fast open.
* VLAN registration on an ISM device for the v1 handshake (``smc_connect_ism_vlan_setup``) is
  assumed to succeed; ``smc_lgr_create``'s ``ISMVLANERR`` can be answered by the environment.
* IPv6 prefix matching (``smc_clc_prfx_match6_rcu``): a Proposal with IPv6 prefixes never
  matches the server (modelled hosts have IPv4 only); the client never sends IPv6 prefixes.
* Native ISM ``query_remote_gid`` asks the hardware; here a device lists the peer GIDs it
  reaches (:attr:`SmcdDevice.peer_gids`). loopback-ism reaches only its own GID pair.

Source: net/smc/af_smc.c, smc_clc.c, smc_clc.h, smc_core.c, smc_ism.c, smc_loopback.c, smc_pnet.c
of Linux 6.12.118; shared/domain/clc.md sections 8-10.
"""

from __future__ import annotations

import enum
import struct
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any, Final, TypeAlias

from smcd_check.spec import clc
from smcd_check.spec.bufsize import smc_compress_bufsize, smc_uncompress_bufsize
from smcd_check.spec.clc import ClcType, SmcType
from smcd_check.spec.decline import DeclineCode
from smcd_check.spec.eid import SEID_NONE, match_eid, pad_eid, ueid_table
from smcd_check.spec.errors import ForbiddenStep, MalformedInput
from smcd_check.spec.properties import Invariant, InvariantKind

# --------------------------------------------------------------------------------------------
# Constants (each with the kernel name it stands for)
# --------------------------------------------------------------------------------------------

#: ``SMC_V1`` / ``SMC_V2`` (net/smc/smc.h)
SMC_V1: Final = 1
SMC_V2: Final = 2
#: ``SMC_RELEASE`` (= ``SMC_RELEASE_1``, net/smc/smc.h): the release Linux 6.12 offers
SMC_RELEASE: Final = 1
#: ``SMC_FEATURE_MASK`` (net/smc/smc.h): bit 0 = ``SMC_SPF_EMULATED_ISM_DEV``
SMC_FEATURE_MASK: Final = 0x0001
#: ``SMCD_CLC_MAX_V2_GID_ENTRIES`` (net/smc/smc_clc.h): GID/CHID entries in a Proposal
SMCD_CLC_MAX_V2_GID_ENTRIES: Final = 8
#: ``SMC_LO_RESERVED_CHID`` (net/smc/smc_loopback.h): loopback-ism's CHID
SMC_LO_RESERVED_CHID: Final = 0xFFFF
#: ``ISM_RESERVED_VLANID`` (include/net/smc.h): the VLAN id the v2 device match asks with
ISM_RESERVED_VLANID: Final = 0x1FFF
#: ``sizeof(struct smcd_cdc_msg)``: the CDC header at the head of every DMB (net/smc/smc_cdc.h)
SMCD_CDC_MSG_LEN: Final = 32
#: ``SMC_CONN_PER_LGR_MIN`` / ``SMC_CONN_PER_LGR_PREFER`` (net/smc/smc_core.h; the sysctl
#: ``max_conns_per_lgr`` defaults to the latter): SMC-Rv2 max_conns negotiation
SMC_CONN_PER_LGR_MIN: Final = 16
SMC_CONN_PER_LGR_PREFER: Final = 255
#: ``SMC_LINKS_ADD_LNK_MIN`` / ``SMC_LINKS_PER_LGR_MAX_PREFER`` (sysctl default)
SMC_LINKS_ADD_LNK_MIN: Final = 1
SMC_LINKS_PER_LGR_MAX_PREFER: Final = 2
#: ``SMC_CLC_OS_LINUX``: os_type in the first-contact extension and in a v2 Decline
SMC_CLC_OS_LINUX: Final = 2
#: receive buffers of ``smc_clc_wait_msg``: the client's Accept (``SMC_CLC_MAX_ACCEPT_LEN``)
#: and the server's Proposal/Confirm (``sizeof(struct smc_clc_msg_proposal_area)``)
CLIENT_ACCEPT_BUFLEN: Final = clc.SMC_CLC_MAX_ACCEPT_LEN
SERVER_BUFLEN: Final = clc.PROPOSAL_AREA_LEN
#: ``SMC_LGR_NUM_INCR`` (net/smc/smc_core.c): link-group ids advance by 256 per new group
SMC_LGR_NUM_INCR: Final = 256
#: default socket buffer: ``sk_rcvbuf`` of a fresh AF_SMC socket on the captured 6.12 kernel
#: gives a 64 KiB DMB (rcvbuf / 2 rounded up, ``__smc_buf_create``)
DEFAULT_RCVBUF: Final = 131072


class Errno(enum.IntEnum):
    """The Linux errno values a handshake can end with (include/uapi/asm-generic/errno*.h)."""

    EAGAIN = 11
    ENOMEM = 12
    EINVAL = 22
    ENOSPC = 28
    EPROTO = 71
    ENETUNREACH = 101
    ECONNABORTED = 103
    ECONNRESET = 104
    ETIMEDOUT = 110


# --------------------------------------------------------------------------------------------
# Errors
# --------------------------------------------------------------------------------------------


class HandshakeConfigError(MalformedInput):
    """A host configuration the kernel could not be in (e.g. an invalid UEID, a bad GID)."""


class ForbiddenHandshakeStep(ForbiddenStep):
    """A local event the side's phase does not allow (``Connect`` twice, an unasked answer).

    The message names role, phase and event, h11 style. Peer input never raises this.
    """


class InconsistentAnswer(ForbiddenHandshakeStep):
    """The environment answered a :class:`RequestConn` against its own policy (e.g. reused a
    link group for a client whose peer announced first contact)."""


# --------------------------------------------------------------------------------------------
# Configuration: devices and host
# --------------------------------------------------------------------------------------------


def is_emulated_chid(chid: int) -> bool:
    """``__smc_ism_is_emulated``: CHIDs 0xFF00..0xFFFF are emulated ISM devices (two GID
    entries each in a Proposal); loopback-ism uses 0xFFFF."""
    return (chid & 0xFF00) == 0xFF00


@dataclass(frozen=True, slots=True, kw_only=True)
class SmcdDevice:
    """One SMC-D device of a host (``struct smcd_dev``): native ISM or loopback-ism."""

    #: a label for messages ("ism0", "loopback-ism")
    name: str
    #: channel id (``smc_ism_get_chid``); emulated when ``(chid & 0xFF00) == 0xFF00``
    chid: int
    #: the device GID (``smcd_gid.gid``), 64 bits
    gid: int
    #: second half of an emulated device's 128-bit GID (``smcd_gid.gid_ext``); 0 for native ISM
    gid_ext: int = 0
    #: the device's PNET id; None = unset (loopback-ism). v1 needs it equal to the route's
    #: netdev PNET id; v2 needs it unset or equal to one of the namespace's netdevs'.
    pnetid: str | None = None
    #: ``ops->supports_v2``: makes the host ``smc_ism_is_v2_capable`` (loopback-ism: yes)
    supports_v2: bool = True
    #: ``ops->support_dmb_nocopy``: merged sndbuf (the peer DMB attached as "ghost" sndbuf)
    nocopy: bool = False
    #: ``smcd->going_away``: being removed; skipped by every search
    going_away: bool = False
    #: native ISM only: the peer GIDs ``query_remote_gid`` reaches
    peer_gids: frozenset[int] = frozenset()

    def __post_init__(self) -> None:
        for name, bits in (("chid", 16), ("gid", 64), ("gid_ext", 64)):
            value = getattr(self, name)
            if not isinstance(value, int) or not 0 <= value < (1 << bits):
                raise HandshakeConfigError(
                    f"device {self.name!r}: {name} {value!r} is not a {bits}-bit unsigned value"
                )

    @property
    def emulated(self) -> bool:
        """An emulated ISM device (two GID entries, gid_ext significant)."""
        return is_emulated_chid(self.chid)

    def cantalk(self, gid: int, gid_ext: int) -> bool:
        """``smc_ism_cantalk``: ``query_remote_gid`` succeeds for the peer GID.

        loopback-ism (``smc_lo_query_rgid``) reaches only its own GID pair; a native device
        the GIDs listed in :attr:`peer_gids` (gid_ext ignored).
        """
        if self.emulated:
            return gid == self.gid and gid_ext == self.gid_ext
        return gid in self.peer_gids


def loopback_device(gid: int, gid_ext: int, *, name: str = "loopback-ism") -> SmcdDevice:
    """The loopback-ism device of a host (smc_loopback.c): CHID 0xFFFF, v2, nocopy."""
    return SmcdDevice(name=name, chid=SMC_LO_RESERVED_CHID, gid=gid, gid_ext=gid_ext,
                      supports_v2=True, nocopy=True)


def hostname_field(name: str | bytes) -> bytes:
    """``smc_hostname``: the node name blank padded (and cut) to 32 bytes (``smc_clc_init``)."""
    raw = name.encode("latin-1") if isinstance(name, str) else bytes(name)
    return (raw[:32] + b" " * 32)[:32]


@dataclass(frozen=True, slots=True, kw_only=True)
class HostConfig:
    """One side's configuration: what the kernel of that host knows when the handshake runs."""

    #: SMC-D devices in registration order (``smcd_dev_list``)
    devices: tuple[SmcdDevice, ...] = ()
    #: the UEID table, 32-byte blank padded, in insertion order (``smc_clc_eid_table``)
    ueids: tuple[bytes, ...] = ()
    #: ``seid_enabled`` (1 by default on s390 only; cannot be enabled elsewhere)
    seid_enabled: bool = False
    #: the system EID (``smc_ism_v2_system_eid``): zeros off s390
    system_eid: bytes = SEID_NONE
    #: ``smc_hostname``: utsname nodename, 32 bytes blank padded (see :func:`hostname_field`)
    hostname: bytes = hostname_field("(none)")
    #: VLAN id of the TCP route's netdev; None when ``smc_vlan_by_tcpsk`` fails
    vlan_id: int | None = 0
    #: PNET id of the TCP route's netdev (v1 device selection); None = undeterminable
    route_pnetid: str | None = None
    #: PNET ids of the namespace's netdevs (v2 device filter ``smc_pnet_is_ndev_pnetid``)
    ns_pnetids: frozenset[str] = frozenset()
    #: IPv4 address and prefix length of the route's netdev; None = no IPv4 address
    #: (``smc_clc_prfx_set`` fails on the client; no prefix matches on the server)
    ipv4: tuple[int, int] | None = (0x7F000001, 8)
    #: ``sk_rcvbuf``: the DMB asked for is half of it (``__smc_buf_create``)
    rcvbuf: int = DEFAULT_RCVBUF
    #: ``SMC_RELEASE`` of this kernel (1 for 6.12; 0 reproduces pre-v2.1 kernels)
    smc_release: int = SMC_RELEASE
    #: ``SMC_FEATURE_MASK`` of this kernel
    feature_mask: int = SMC_FEATURE_MASK
    #: the peer's SYN / SYN-ACK carried the SMC TCP option (``tcp_sk(clcsock)->syn_smc``)
    syn_smc: bool = True
    #: the connection uses IPsec (``using_ipsec``)
    ipsec: bool = False

    def __post_init__(self) -> None:
        try:
            table = ueid_table(self.ueids)
        except MalformedInput as exc:
            raise HandshakeConfigError(f"ueids: {exc}") from exc
        if table != tuple(self.ueids):
            raise HandshakeConfigError(
                "ueids must be given 32-byte blank padded (use eid.pad_eid)"
            )
        if len(self.system_eid) != 32 or len(self.hostname) != 32:
            raise HandshakeConfigError("system_eid and hostname are 32-byte fields")
        if self.vlan_id is not None and not 0 <= self.vlan_id < 4096:
            raise HandshakeConfigError(f"vlan_id {self.vlan_id} is not a VLAN id (0..4095)")
        if not 0 <= self.smc_release <= 15:
            raise HandshakeConfigError(f"smc_release {self.smc_release} is not a nibble")

    @property
    def v2_capable(self) -> bool:
        """``smc_ism_is_v2_capable``: some registered SMC-D device supports v2."""
        return any(dev.supports_v2 for dev in self.devices)

    @property
    def local_seid(self) -> bytes | None:
        """``smc_ism_get_system_eid``: the system EID, or None without an ISMv2 device."""
        return self.system_eid if self.v2_capable else None


def host_config(*, ueids: Iterable[str | bytes] = (), hostname: str | bytes = "(none)",
                **kwargs: Any) -> HostConfig:
    """A :class:`HostConfig` from friendly inputs: UEIDs and host name as text (padded here)."""
    return HostConfig(ueids=tuple(pad_eid(u) for u in ueids),
                      hostname=hostname_field(hostname), **kwargs)


# --------------------------------------------------------------------------------------------
# Roles, phases, outcomes
# --------------------------------------------------------------------------------------------


class Role(enum.Enum):
    """Which side of the handshake."""

    #: runs ``__smc_connect``: sends the Proposal and the Confirm
    CLIENT = "client"
    #: runs ``smc_listen_work``: sends the Accept
    SERVER = "server"


class Phase(enum.Enum):
    """Where a side is in the kernel's flow."""

    #: client: socket created, ``connect()`` not yet run
    INIT = "init"
    #: client: Proposal sent, waiting for the Accept (``smc_connect_clc``)
    PROPOSAL_SENT = "proposal-sent"
    #: server: TCP connection accepted, listen work not yet run
    LISTEN = "listen"
    #: server: waiting for the Proposal (``smc_listen_work``)
    PROPOSAL_WAIT = "proposal-wait"
    #: either: ``smc_conn_create`` + ``smc_buf_create`` asked of the lifecycle
    CONN_PENDING = "conn-pending"
    #: server: Accept sent, waiting for the Confirm
    ACCEPT_SENT = "accept-sent"
    #: either: ``smcd_buf_attach`` asked of the lifecycle (nocopy devices)
    ATTACH_PENDING = "attach-pending"
    #: SMC-D connection established (``SMC_ACTIVE``, not in fallback)
    ACTIVE = "active"
    #: fell back to TCP after a Decline was sent or received
    DECLINED = "declined"
    #: fell back to TCP without a Decline (``PEERNOSMC``)
    FALLBACK = "fallback"
    #: the handshake failed with a negative code: no fallback, the socket errors out
    ERROR = "error"
    #: the kernel dereferences a NULL ISM device (see ``_client_on_accept``)
    OOPS = "oops"
    #: the handshake worker deadlocks on its own socket lock (see ``_on_decline``)
    HANG = "hang"


#: phases in which a side has finished (OOPS and HANG: its worker is dead or stuck for good)
TERMINAL_PHASES: Final = frozenset(
    {Phase.ACTIVE, Phase.DECLINED, Phase.FALLBACK, Phase.ERROR, Phase.OOPS, Phase.HANG}
)
#: phases in which a side blocks in ``smc_clc_wait_msg``
WAITING_PHASES: Final = frozenset({Phase.PROPOSAL_SENT, Phase.PROPOSAL_WAIT, Phase.ACCEPT_SENT})


class OutcomeKind(enum.Enum):
    """How a handshake ended."""

    ACTIVE = "active"
    DECLINED = "declined"
    FALLBACK = "fallback"
    ERROR = "error"
    OOPS = "oops"
    HANG = "hang"


@dataclass(frozen=True, slots=True, kw_only=True)
class Outcome:
    """How one side ended, as ``smc_diag`` would show it."""

    kind: OutcomeKind
    #: ``smc->fallback_rsn`` (DECLINED / FALLBACK), else None
    reason: DeclineCode | None = None
    #: ``smc->peer_diagnosis``: the code of a Decline received (any 32-bit value), else 0
    peer_diagnosis: int = 0
    #: the positive errno of an ERROR (``sk_err``)
    errno: Errno | None = None
    #: one line for humans (which check failed)
    detail: str = ""


# --------------------------------------------------------------------------------------------
# Events (inputs) and effects (outputs)
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class Connect:
    """Client: the application calls ``connect()``; the TCP handshake is done (``syn_smc``
    is known) and ``__smc_connect`` runs."""


@dataclass(frozen=True, slots=True, kw_only=True)
class ListenWork:
    """Server: ``smc_listen_work`` starts for a freshly accepted TCP connection."""


@dataclass(frozen=True, slots=True, kw_only=True)
class RecvBytes:
    """Bytes arrived on the CLC TCP socket (any part of the stream: split, coalesced, garbage)."""

    data: bytes


@dataclass(frozen=True, slots=True, kw_only=True)
class RecvTimeout:
    """``CLC_WAIT_TIME`` (6 s) passed in ``smc_clc_wait_msg`` without a complete message."""


@dataclass(frozen=True, slots=True, kw_only=True)
class RecvEof:
    """The peer shut down the TCP connection (``sock_recvmsg`` returns 0 at the end)."""


@dataclass(frozen=True, slots=True, kw_only=True)
class ConnCreated:
    """Answer to :class:`RequestConn`: connection registered and its DMB created.

    ``lgr_id`` is the link group's id (``smc_lgr_list.num`` at creation: 256, 512, ...);
    on the wire it is its raw host-order (x86: little-endian) copy (:func:`linkid_bytes`).
    ``dmb_len`` is the DMB's size in bytes (a power of two, 16 KiB .. 1 MiB).
    """

    lgr_id: int
    first_contact_local: bool
    dmb_token: int
    dmb_len: int


@dataclass(frozen=True, slots=True, kw_only=True)
class ConnCreateFailed:
    """Answer to :class:`RequestConn`: ``smc_conn_create`` failed, nothing is registered.

    ``reason``: ``SYNCERR`` (client, peer reused a link group this side does not have),
    ``MEM`` or ``ISMVLANERR`` (``smc_lgr_create``)."""

    reason: DeclineCode


@dataclass(frozen=True, slots=True, kw_only=True)
class BufCreateFailed:
    """Answer to :class:`RequestConn`: the connection was registered (in ``lgr_id``) but
    ``smc_buf_create`` failed: ``ENOSPC`` (no DMB slot: ``MAX_DMB``) or ``ENOMEM`` (``MEM``)."""

    lgr_id: int
    first_contact_local: bool
    errno: Errno


@dataclass(frozen=True, slots=True, kw_only=True)
class AttachDone:
    """Answer to :class:`AttachPeerDmb`: None = attached, else the negative errno's value."""

    errno: Errno | None = None


#: every event
Event: TypeAlias = (
    Connect | ListenWork | RecvBytes | RecvTimeout | RecvEof | ConnCreated | ConnCreateFailed
    | BufCreateFailed | AttachDone
)
#: events that come from the peer (or the clock): never forbidden
PEER_EVENTS: Final = (RecvBytes, RecvTimeout, RecvEof)


class LgrPolicy(enum.Enum):
    """What ``smc_conn_create`` may do with link groups for this request."""

    #: server: reuse a matching link group, else create one
    REUSE_OR_CREATE = "reuse-or-create"
    #: client whose peer announced first contact: always create
    CREATE_ONLY = "create-only"
    #: client whose peer reused a link group: reuse, or fail with ``SYNCERR``
    REUSE_ONLY = "reuse-only"


@dataclass(frozen=True, slots=True, kw_only=True)
class SendClc:
    """Write one CLC message to the CLC TCP socket."""

    msg_type: ClcType
    data: bytes


@dataclass(frozen=True, slots=True, kw_only=True)
class RequestConn:
    """``smc_conn_create`` + ``smc_buf_create(smc, true)`` for SMC-D: register a connection on
    ``device`` with the peer, in a reused or new link group, with a DMB of ``dmb_size``
    bytes (rounded up to a power of two by the lifecycle). Answered by :class:`ConnCreated`,
    :class:`ConnCreateFailed` or :class:`BufCreateFailed`."""

    role: Role
    device: str  # SmcdDevice.name
    chid: int
    peer_gid: int
    peer_gid_ext: int  # 0 unless the device is emulated
    vlan_id: int  # ini->vlan_id at smc_conn_create (0 for the server's v2 attempt)
    smcd_version: int  # ini->smcd_version: 1 or 2
    policy: LgrPolicy
    dmb_size: int  # sk_rcvbuf / 2: the size __smc_buf_create starts from


@dataclass(frozen=True, slots=True, kw_only=True)
class AttachPeerDmb:
    """``smcd_buf_attach``: attach the peer's DMB (``peer_token``) as this side's sndbuf."""

    peer_token: int


@dataclass(frozen=True, slots=True, kw_only=True)
class ConnAbort:
    """``smc_conn_abort``: free the registered connection (its DMB goes back to the link
    group's pool; a peer DMB attached is detached) and, if this attempt created the link
    group (``first_contact_local``), free the link group early with its DMBs."""

    lgr_id: int
    first_contact_local: bool


@dataclass(frozen=True, slots=True, kw_only=True)
class LgrSyncErr:
    """A Decline with the out-of-sync bit arrived while this socket had link group
    ``lgr_id``: ``lgr->sync_err = 1`` and ``smc_lgr_terminate_sched``."""

    lgr_id: int


#: every effect
Effect: TypeAlias = SendClc | RequestConn | AttachPeerDmb | ConnAbort | LgrSyncErr


# --------------------------------------------------------------------------------------------
# State
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class Offer:
    """The client's ``ini`` after ``smc_find_proposal_devices`` and the Proposal.

    ``slots[0]`` is the v1 device (``ism_dev[0]``, None if none), ``slots[1:]`` the v2 devices
    offered (``ism_dev[1..ism_offered_cnt]``), as indices into ``HostConfig.devices``.
    """

    smc_type_v1: SmcType
    smc_type_v2: SmcType
    slots: tuple[int | None, ...]
    chids: tuple[int, ...]  # ism_chid[i] (0 for an empty slot 0)


@dataclass(frozen=True, slots=True, kw_only=True)
class TryDevice:
    """Server plan step: ``smc_listen_ism_init`` on a matched device."""

    version: int  # 2: smc_find_ism_v2_device_serv, 1: smc_find_ism_v1_device_serv
    device: int  # index into HostConfig.devices
    peer_gid: int
    peer_gid_ext: int
    eid: bytes  # negotiated EID (v2), zeros for v1


@dataclass(frozen=True, slots=True, kw_only=True)
class StoreRc:
    """Server plan step: ``smc_find_ism_store_rc``: remember the first non-zero code."""

    code: int


@dataclass(frozen=True, slots=True, kw_only=True)
class GiveUp:
    """Server plan step: ``smc_listen_find_device`` returns ``ini->rc ?: code`` (or ``code``
    alone when ``prefer_stored`` is False)."""

    code: int
    prefer_stored: bool = True


PlanStep: TypeAlias = TryDevice | StoreRc | GiveUp


@dataclass(frozen=True, slots=True, kw_only=True)
class Session:
    """What a side negotiated; filled as the handshake goes."""

    #: CLC version of the Accept/Confirm (``aclc->hdr.version`` / ``ini->smcd_version``)
    version: int
    #: the local device (index into HostConfig.devices) and its identity
    device: int
    chid: int
    local_gid: int
    local_gid_ext: int
    #: the peer's GID as used for link-group matching
    peer_gid: int
    peer_gid_ext: int
    #: negotiated EID (zeros for v1)
    eid: bytes
    #: ``ini->release_nr`` and ``ini->feature_mask``
    release: int
    feature_mask: int
    #: client: the Accept's first-contact bit; server: the Confirm's (once received)
    first_contact_peer: bool = False
    lgr_id: int | None = None
    first_contact_local: bool | None = None
    dmb_token: int | None = None
    dmb_len: int | None = None
    rmbe_size_comp: int | None = None
    #: from the peer's Accept/Confirm (``smcd_conn_save_peer_info``)
    peer_token: int | None = None
    peer_rmbe_size: int | None = None  # bytes: uncompressed size - 32
    peer_dmbe_idx: int | None = None
    #: from the peer's first-contact extension (``smc_conn_save_peer_info_fce``)
    peer_os: int | None = None
    peer_release: int | None = None
    peer_hostname: bytes | None = None
    #: the peer DMB is attached as sndbuf (nocopy)
    attached: bool = False


@dataclass(frozen=True, slots=True, kw_only=True)
class ConnRef:
    """A connection registered in a link group and not (yet) aborted."""

    lgr_id: int
    first_contact_local: bool


@dataclass(frozen=True, slots=True, kw_only=True)
class HandshakeState:
    """One side of one handshake."""

    role: Role
    phase: Phase
    #: bytes received on the CLC socket and not yet consumed (the TCP receive queue)
    rx: bytes = b""
    #: the peer shut the connection (reads past ``rx`` return 0)
    eof: bool = False
    #: version a Decline from this side carries now
    decline_version: int = SMC_V1
    #: client: what was offered
    offer: Offer | None = None
    #: server: proposal version, release_nr / feature_mask from the v2 check
    proposal_version: int = SMC_V1
    #: server: the device search still to run (smc_listen_find_device), and ini->rc
    plan: tuple[PlanStep, ...] = ()
    stored_rc: int = 0
    #: the device a RequestConn is out for (server: the plan step being tried)
    pending: TryDevice | None = None
    #: server: release_nr and feature_mask from the Proposal checks
    release: int = 0
    feature_mask: int = 0
    session: Session | None = None
    #: a connection registered and not aborted
    conn: ConnRef | None = None
    #: CLC message types sent, in order
    sent: tuple[ClcType, ...] = ()
    outcome: Outcome | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class Step:
    """What :func:`step` returns: the new state and the effects, in order."""

    state: HandshakeState
    effects: tuple[Effect, ...] = ()


def client_init() -> HandshakeState:
    """A client socket before ``connect()``."""
    return HandshakeState(role=Role.CLIENT, phase=Phase.INIT)


def server_init() -> HandshakeState:
    """A server connection accepted on the TCP level, before ``smc_listen_work`` runs."""
    return HandshakeState(role=Role.SERVER, phase=Phase.LISTEN)


def initial_state(role: Role) -> HandshakeState:
    """``client_init()`` or ``server_init()``."""
    return client_init() if role is Role.CLIENT else server_init()


# --------------------------------------------------------------------------------------------
# Transition tables
# --------------------------------------------------------------------------------------------

_P = Phase
_CLIENT_AFTER_CONN = frozenset({_P.ATTACH_PENDING, _P.ACTIVE, _P.DECLINED})
_SERVER_AFTER_ACCEPT = frozenset(
    {_P.ACCEPT_SENT, _P.ATTACH_PENDING, _P.ACTIVE, _P.DECLINED, _P.ERROR}
)


def _peer(same: Phase, **more: frozenset[Phase]) -> dict[type, frozenset[Phase]]:
    """Peer events in a phase: they may end it (``more``) or just buffer (``same``)."""
    table: dict[type, frozenset[Phase]] = {ev: frozenset({same}) for ev in PEER_EVENTS}
    for name, targets in more.items():
        ev = {"bytes": RecvBytes, "timeout": RecvTimeout, "eof": RecvEof}[name]
        table[ev] = targets | {same}
    return table


#: ``(role, phase) -> {event type: phases the event may lead to}``. Every phase change goes
#: through ``_set_phase``, which checks it against this table; :func:`step` raises
#: :class:`ForbiddenHandshakeStep` for a local event absent from a phase's row.
TRANSITIONS: Final[Mapping[tuple[Role, Phase], Mapping[type, frozenset[Phase]]]] = {
    (Role.CLIENT, _P.INIT): {
        **_peer(_P.INIT),
        Connect: frozenset({_P.PROPOSAL_SENT, _P.CONN_PENDING, _P.FALLBACK, _P.DECLINED,
                           _P.ERROR, _P.OOPS}),
    },
    (Role.CLIENT, _P.PROPOSAL_SENT): _peer(
        _P.PROPOSAL_SENT,
        bytes=frozenset({_P.CONN_PENDING, _P.DECLINED, _P.ERROR, _P.OOPS}),
        timeout=frozenset({_P.ERROR}),
        eof=frozenset({_P.ERROR}),
    ),
    (Role.CLIENT, _P.CONN_PENDING): {
        **_peer(_P.CONN_PENDING),
        ConnCreated: _CLIENT_AFTER_CONN,
        ConnCreateFailed: frozenset({_P.DECLINED}),
        BufCreateFailed: frozenset({_P.DECLINED}),
    },
    (Role.CLIENT, _P.ATTACH_PENDING): {
        **_peer(_P.ATTACH_PENDING),
        AttachDone: frozenset({_P.ACTIVE, _P.DECLINED}),
    },
    (Role.SERVER, _P.LISTEN): {
        **_peer(_P.LISTEN),
        ListenWork: frozenset({_P.PROPOSAL_WAIT, _P.CONN_PENDING, _P.FALLBACK, _P.DECLINED,
                              _P.ERROR}),
    },
    (Role.SERVER, _P.PROPOSAL_WAIT): _peer(
        _P.PROPOSAL_WAIT,
        bytes=frozenset({_P.CONN_PENDING, _P.DECLINED, _P.ERROR}),
        timeout=frozenset({_P.ERROR}),
        eof=frozenset({_P.ERROR}),
    ),
    (Role.SERVER, _P.CONN_PENDING): {
        **_peer(_P.CONN_PENDING),
        ConnCreated: _SERVER_AFTER_ACCEPT,
        ConnCreateFailed: frozenset({_P.CONN_PENDING, _P.DECLINED}),
        BufCreateFailed: frozenset({_P.CONN_PENDING, _P.DECLINED}),
    },
    (Role.SERVER, _P.ACCEPT_SENT): _peer(
        _P.ACCEPT_SENT,
        bytes=frozenset({_P.ATTACH_PENDING, _P.ACTIVE, _P.DECLINED, _P.ERROR, _P.HANG}),
        timeout=frozenset({_P.ERROR}),
        eof=frozenset({_P.ERROR}),
    ),
    (Role.SERVER, _P.ATTACH_PENDING): {
        **_peer(_P.ATTACH_PENDING),
        AttachDone: frozenset({_P.ACTIVE, _P.ERROR}),
    },
    **{(role, ph): _peer(ph) for role in Role for ph in TERMINAL_PHASES},
}

#: ``(role, phase) -> CLC message types the side may send while leaving that phase``
MAY_SEND: Final[Mapping[tuple[Role, Phase], frozenset[ClcType]]] = {
    (Role.CLIENT, _P.INIT): frozenset({ClcType.PROPOSAL, ClcType.DECLINE}),
    (Role.CLIENT, _P.PROPOSAL_SENT): frozenset({ClcType.DECLINE}),
    (Role.CLIENT, _P.CONN_PENDING): frozenset({ClcType.CONFIRM, ClcType.DECLINE}),
    (Role.CLIENT, _P.ATTACH_PENDING): frozenset({ClcType.CONFIRM, ClcType.DECLINE}),
    (Role.SERVER, _P.PROPOSAL_WAIT): frozenset({ClcType.DECLINE}),
    (Role.SERVER, _P.CONN_PENDING): frozenset({ClcType.ACCEPT, ClcType.DECLINE}),
    (Role.SERVER, _P.ACCEPT_SENT): frozenset({ClcType.DECLINE}),
}

#: the message sequences a side may have sent by the end (prefixes are allowed on the way)
SEND_SEQUENCES: Final[Mapping[Role, frozenset[tuple[ClcType, ...]]]] = {
    Role.CLIENT: frozenset({
        (ClcType.PROPOSAL, ClcType.CONFIRM),
        (ClcType.PROPOSAL, ClcType.DECLINE),
        (ClcType.DECLINE,),
    }),
    Role.SERVER: frozenset({
        (ClcType.ACCEPT, ClcType.DECLINE),
        (ClcType.DECLINE,),
    }),
}

#: local events each phase accepts (derived from :data:`TRANSITIONS`)
LOCAL_EVENTS: Final[Mapping[tuple[Role, Phase], frozenset[type]]] = {
    key: frozenset(ev for ev in row if ev not in PEER_EVENTS) for key, row in TRANSITIONS.items()
}


#: where a side holds the host-wide ``smc_server_lgr_pending`` mutex (SMC-D has one link-group
#: role, so client and server share it): the server from device search until its Accept is
#: sent, the client from ``smc_conn_create`` until its Confirm is sent (af_smc.c). A
#: composition running several handshakes of one host must not have two sides of that host
#: in these phases at once; entering them is the event that takes the lock.
LGR_PENDING_PHASES: Final = frozenset({
    (Role.CLIENT, Phase.CONN_PENDING), (Role.CLIENT, Phase.ATTACH_PENDING),
    (Role.SERVER, Phase.CONN_PENDING),
})


def holds_lgr_pending(state: HandshakeState) -> bool:
    """The side holds ``smc_server_lgr_pending`` (see :data:`LGR_PENDING_PHASES`)."""
    return (state.role, state.phase) in LGR_PENDING_PHASES


def enabled(state: HandshakeState, event: Event) -> bool:
    """Guard: peer events are always enabled; a local event only in a phase whose row of
    :data:`TRANSITIONS` names it."""
    if isinstance(event, PEER_EVENTS):
        return True
    return type(event) in LOCAL_EVENTS[(state.role, state.phase)]


# --------------------------------------------------------------------------------------------
# Small helpers
# --------------------------------------------------------------------------------------------


def linkid_bytes(lgr_id: int) -> bytes:
    """``d0.linkid``: ``memcpy`` of ``lgr->id``, a host-order u32 (x86: little-endian)."""
    return (lgr_id & 0xFFFFFFFF).to_bytes(4, "little")


@dataclass(slots=True)
class _Out:
    """Effects collected while one event is processed (mutable scratch, never stored).

    ``origin`` is the event's type and ``start`` the phase the event found the side in: one
    event may pass through several phases (e.g. ``ConnCreated`` -> Accept sent -> a buffered
    Confirm -> ACTIVE), and the table lists every phase reachable from ``start``.
    """

    origin: type
    start: Phase
    effects: list[Effect] = field(default_factory=list)


def _set_phase(state: HandshakeState, new: Phase, out: _Out) -> HandshakeState:
    """The one choke point for phase changes: the change must be in :data:`TRANSITIONS`."""
    if new is not state.phase:
        allowed = TRANSITIONS[(state.role, out.start)].get(out.origin, frozenset())
        if new not in allowed:  # pragma: no cover - a bug in this module, not an input
            raise AssertionError(
                f"{state.role.value}: {out.start.value} -> {new.value} on "
                f"{out.origin.__name__} is not in TRANSITIONS"
            )
    return replace(state, phase=new)


def _send(st: HandshakeState, out: _Out, msg: clc.ClcMessage) -> HandshakeState:
    ctype = msg.type
    if ctype not in MAY_SEND.get((st.role, st.phase), frozenset()):  # pragma: no cover - bug
        raise AssertionError(f"{st.role.value} may not send {ctype.name} in {st.phase.value}")
    out.effects.append(SendClc(msg_type=ctype, data=clc.encode(msg)))
    return replace(st, sent=(*st.sent, ctype))


def _finish(st: HandshakeState, out: _Out, outcome: Outcome) -> HandshakeState:
    phase = {
        OutcomeKind.ACTIVE: Phase.ACTIVE,
        OutcomeKind.DECLINED: Phase.DECLINED,
        OutcomeKind.FALLBACK: Phase.FALLBACK,
        OutcomeKind.ERROR: Phase.ERROR,
        OutcomeKind.OOPS: Phase.OOPS,
        OutcomeKind.HANG: Phase.HANG,
    }[outcome.kind]
    return replace(_set_phase(st, phase, out), outcome=outcome)


def _abort_conn(st: HandshakeState, out: _Out) -> HandshakeState:
    """``smc_conn_abort``: only if a connection is registered (``smc_conn_free`` is a no-op
    otherwise)."""
    if st.conn is None:
        return st
    out.effects.append(ConnAbort(lgr_id=st.conn.lgr_id,
                                 first_contact_local=st.conn.first_contact_local))
    return replace(st, conn=None)


def _error(st: HandshakeState, out: _Out, errno: Errno, detail: str) -> HandshakeState:
    """A negative code: abort a registered connection, no Decline, no fallback."""
    st = _abort_conn(st, out)
    return _finish(st, out, Outcome(kind=OutcomeKind.ERROR, errno=errno, detail=detail))


def _decline(st: HandshakeState, out: _Out, reason: int, detail: str) -> HandshakeState:
    """Positive code: ``smc_connect_decline_fallback`` / ``smc_listen_decline``: abort a
    registered connection, send a Decline (not for ``PEERDECL``), fall back to TCP."""
    st = _abort_conn(st, out)
    code = DeclineCode(reason)
    if code is not DeclineCode.PEERDECL:
        version = st.decline_version
        st = _send(st, out, clc.Decline(
            version=version,
            typev2=clc.SMC_FIRST_CONTACT_MASK if code is DeclineCode.SYNCERR else 0,
            peer_diagnosis=int(code),
            os_type=0 if version == SMC_V1 else SMC_CLC_OS_LINUX,
        ))
    return _finish(st, out, Outcome(kind=OutcomeKind.DECLINED, reason=code, detail=detail))


# --------------------------------------------------------------------------------------------
# Receiving (smc_clc_wait_msg)
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class _Received:
    """A complete, valid message taken off the stream: decoded, plus the kernel's buffer."""

    msg: clc.ClcMessage
    buf: bytes  # the message padded with zeros to the receive buffer size (kernel view)


class _Incomplete:
    """Not enough bytes yet."""


_INCOMPLETE: Final = _Incomplete()


def _take_message(
    st: HandshakeState, expected: ClcType, buflen: int
) -> tuple[HandshakeState, _Received | _Incomplete | Errno, str]:
    """``smc_clc_wait_msg`` on the buffered bytes: a message, not yet, or a negative errno.

    Peeks the header (8 bytes): ``version < 1`` or a type other than ``expected`` / DECLINE is
    -EPROTO at once. Then waits for the whole message (``length`` bytes; a longer one than
    ``buflen`` is read to ``buflen`` and the rest drained) and checks it with the codec.
    """
    rx = st.rx
    if len(rx) < clc.HDR_LEN:
        return st, _INCOMPLETE, ""
    ctype, length, flags = rx[4], struct.unpack_from(">H", rx, 5)[0], rx[7]
    if flags >> 4 < SMC_V1 or ctype not in (int(expected), int(ClcType.DECLINE)):
        return st, Errno.EPROTO, (
            f"header: version {flags >> 4}, type {ctype} while waiting for {expected.name}"
        )
    if length < clc.HDR_LEN:
        # the kernel reads 0 more bytes and validates the peeked header: always invalid
        return st, Errno.EPROTO, f"header length {length} shorter than the header"
    if len(rx) < length:
        return st, _INCOMPLETE, ""
    data, rest = rx[:length], rx[length:]
    try:
        msg = clc.check_receivable(data, expected, buflen)
    except clc.ClcError as exc:
        return replace(st, rx=rest), Errno.EPROTO, str(exc)
    view = data[:buflen]
    return replace(st, rx=rest), _Received(msg=msg, buf=view + bytes(buflen - len(view))), ""


def _receive(cfg: HostConfig, st: HandshakeState, out: _Out) -> HandshakeState:
    """Process buffered bytes while the side waits for a message (a no-op otherwise)."""
    if st.phase not in WAITING_PHASES:
        return st
    if st.role is Role.CLIENT:
        expected, buflen = ClcType.ACCEPT, CLIENT_ACCEPT_BUFLEN
    elif st.phase is Phase.PROPOSAL_WAIT:
        expected, buflen = ClcType.PROPOSAL, SERVER_BUFLEN
    else:
        expected, buflen = ClcType.CONFIRM, SERVER_BUFLEN
    st, got, detail = _take_message(st, expected, buflen)
    if isinstance(got, _Incomplete):
        if st.eof:
            return _wait_failed(st, out, timeout=False)
        return st
    if isinstance(got, Errno):
        return _error(st, out, got, f"invalid message: {detail}")
    if isinstance(got.msg, clc.Decline):
        return _on_decline(st, out, got.msg)
    if st.role is Role.CLIENT:
        return _client_on_accept(cfg, st, out, got)
    if st.phase is Phase.PROPOSAL_WAIT:
        return _server_on_proposal(cfg, st, out, got)
    return _server_on_confirm(cfg, st, out, got)


def _wait_failed(st: HandshakeState, out: _Out, *, timeout: bool) -> HandshakeState:
    """The wait ended without a complete message (timeout, or EOF)."""
    if st.rx:
        # MSG_WAITALL returned a short read: smc_clc_wait_msg's "len < recvlen" -> -EPROTO
        return _error(st, out, Errno.EPROTO, f"short read: {len(st.rx)} bytes of a message")
    if not timeout:
        return _error(st, out, Errno.ECONNRESET, "peer closed the CLC socket")
    if st.role is Role.CLIENT:
        # __smc_connect turns the Accept wait's -EAGAIN into -ETIMEDOUT
        return _error(st, out, Errno.ETIMEDOUT, "no Accept within CLC_WAIT_TIME")
    what = "Proposal" if st.phase is Phase.PROPOSAL_WAIT else "Confirm"
    return _error(st, out, Errno.EAGAIN, f"no {what} within CLC_WAIT_TIME")


def _on_decline(st: HandshakeState, out: _Out, msg: clc.Decline) -> HandshakeState:
    """A Decline, whatever was expected: ``PEERDECL``; the peer's code becomes
    ``peer_diagnosis``; with the out-of-sync bit, a link group this socket holds is marked.

    Only the server waiting for the Confirm holds a connection when a Decline arrives, and
    there the out-of-sync bit does not end in a fallback on Linux 6.12.118 (reproduced:
    ``smcd-check kernel run peer-syncerr-first``). ``smc_clc_wait_msg`` sets ``sync_err`` and
    ``smc_lgr_terminate_sched`` delists the link group before the connection is aborted, so
    ``smc_conn_free`` skips ``smc_lgr_unregister_conn`` (it checks ``list_empty(&lgr->list)``)
    and the connection stays registered in the dying link group:

    * first contact: ``smc_conn_abort`` -> ``smc_lgr_cleanup_early`` -> ``__smc_lgr_terminate``
      finds it and calls ``lock_sock`` on the socket ``smc_listen_work`` has held since it
      started: the worker sleeps in D state for good (HANG; nothing is freed);
    * reused link group: the socket falls back, then the termination work kills it
      (``smc_conn_kill`` -> ``smc_close_active_abort``: ``tcp_abort``, ECONNABORTED): an
      ERROR, with the TCP connection reset. The work races with ``accept()``: it either
      finds the socket still queued (``accept()`` drops it as closed) or just after user
      space took it (accepted as a fallback for ``PEERDECL``, then aborted); both orders
      were seen under qemu and both end here.
    """
    if msg.out_of_sync and st.conn is not None:
        out.effects.append(LgrSyncErr(lgr_id=st.conn.lgr_id))
        if st.role is Role.SERVER and st.conn.first_contact_local:
            return _finish(st, out, Outcome(
                kind=OutcomeKind.HANG,
                detail="out-of-sync Decline on a first-contact link group: smc_listen_work "
                       "deadlocks in __smc_lgr_terminate (lock_sock of its own socket)",
            ))
        if st.role is Role.SERVER:
            return _error(st, out, Errno.ECONNABORTED,
                          "out-of-sync Decline: the fallen-back socket is killed with its link "
                          "group (smc_conn_kill)")
    st = _decline(st, out, DeclineCode.PEERDECL,
                  f"peer declined with 0x{msg.peer_diagnosis:08x}")
    assert st.outcome is not None
    return replace(st, outcome=replace(st.outcome, peer_diagnosis=msg.peer_diagnosis))


# --------------------------------------------------------------------------------------------
# Client
# --------------------------------------------------------------------------------------------


def _client_find_devices(cfg: HostConfig) -> tuple[Offer, int]:
    """``smc_find_proposal_devices`` (with ``__smc_connect``'s VLAN step): the offer, and
    ``NOSMCDEV`` when nothing is left (0 otherwise)."""
    smcd_v1 = smcd_v2 = True
    if cfg.vlan_id is None:  # smc_vlan_by_tcpsk failed: no ISM v1 (and no SMC-R)
        smcd_v1 = False
    v1dev: int | None = None
    if smcd_v1 and cfg.route_pnetid is not None:
        # smc_find_ism_device -> smc_pnet_find_ism_by_pnetid: the first device whose PNET id
        # matches the route's netdev (the client knows no peer GID yet, so no cantalk)
        for i, dev in enumerate(cfg.devices):
            if dev.pnetid == cfg.route_pnetid and not dev.going_away:
                v1dev = i
                break
    if v1dev is None:
        smcd_v1 = False
    type_v1 = SmcType.D if smcd_v1 else SmcType.N
    slots: list[int | None] = [v1dev]
    chids: list[int] = [cfg.devices[v1dev].chid if v1dev is not None else 0]
    if smcd_v2 and cfg.v2_capable:
        # smc_find_ism_v2_device_clnt
        rc = 0 if type_v1.smcd else int(DeclineCode.NOSMCDDEV)
        entry = 1
        for i, dev in enumerate(cfg.devices):
            if dev.going_away or i == v1dev:
                continue
            first = 0 if v1dev is not None else 1  # smc_find_ism_v2_is_unique_chid
            if dev.chid in chids[first:]:
                continue
            if dev.pnetid is not None and dev.pnetid not in cfg.ns_pnetids:
                continue
            if dev.emulated and entry == SMCD_CLC_MAX_V2_GID_ENTRIES:
                continue  # an emulated device needs two entries; only one is left
            slots.append(i)
            chids.append(dev.chid)
            rc = 0
            entry += 2 if dev.emulated else 1
            if entry > SMCD_CLC_MAX_V2_GID_ENTRIES:
                break
        if rc or (v1dev is None and len(slots) == 1):
            smcd_v2 = False
    else:
        smcd_v2 = False
    type_v2 = SmcType.D if smcd_v2 else SmcType.N
    offer = Offer(smc_type_v1=type_v1, smc_type_v2=type_v2, slots=tuple(slots),
                  chids=tuple(chids))
    if type_v1 is SmcType.N and type_v2 is SmcType.N:
        return offer, int(DeclineCode.NOSMCDEV)
    return offer, 0


def _client_proposal(cfg: HostConfig, offer: Offer) -> tuple[Offer, clc.Proposal | None]:
    """``smc_clc_send_proposal``: the Proposal, or None for ``CNFERR`` (no IPv4 prefix and no
    v2 to fall back on). May drop ``typev1`` to N when the prefix cannot be determined."""
    prefix: clc.ProposalPrefix | None = None
    if offer.smc_type_v1 is not SmcType.N:
        if cfg.ipv4 is None:  # smc_clc_prfx_set fails
            if offer.smc_type_v2 is SmcType.N:
                return offer, None
            offer = replace(offer, smc_type_v1=SmcType.N)
        else:
            addr, plen = cfg.ipv4
            mask = (0xFFFFFFFF << (32 - plen)) & 0xFFFFFFFF if plen else 0
            prefix = clc.ProposalPrefix(outgoing_subnet=(addr & mask).to_bytes(4, "big"),
                                        prefix_len=plen)
    ism_v1 = clc.GidChid(gid=0, chid=0)
    if offer.smc_type_v1.smcd and offer.slots[0] is not None:
        dev = cfg.devices[offer.slots[0]]
        ism_v1 = clc.GidChid(gid=dev.gid, chid=dev.chid)
    gidchids: list[clc.GidChid] = []
    seid = False
    system_eid = bytes(32)
    if offer.smc_type_v2.smcd:
        seid = cfg.seid_enabled
        if cfg.local_seid is not None and seid:
            system_eid = cfg.local_seid
        for idx in offer.slots[1:]:
            assert idx is not None
            dev = cfg.devices[idx]
            gidchids.append(clc.GidChid(gid=dev.gid, chid=dev.chid))
            if dev.emulated:
                gidchids.append(clc.GidChid(gid=dev.gid_ext, chid=dev.chid))
    proposal = clc.build_proposal(
        typev1=offer.smc_type_v1, typev2=offer.smc_type_v2, ism_v1=ism_v1, prefix=prefix,
        user_eids=cfg.ueids if offer.smc_type_v2 is not SmcType.N else (),
        gidchids=tuple(gidchids), release=cfg.smc_release, seid=seid, system_eid=system_eid,
        feature_mask=cfg.feature_mask,
    )
    return offer, proposal


def _client_connect(cfg: HostConfig, st: HandshakeState, out: _Out) -> HandshakeState:
    """``__smc_connect`` up to the Accept wait."""
    st = replace(st, decline_version=SMC_V2 if cfg.v2_capable else SMC_V1)
    if not cfg.syn_smc:
        return _finish(st, out, Outcome(kind=OutcomeKind.FALLBACK,
                                        reason=DeclineCode.PEERNOSMC,
                                        detail="peer's SYN-ACK carried no SMC option"))
    if cfg.ipsec:
        return _decline(st, out, DeclineCode.IPSEC, "IPsec in use")
    offer, rc = _client_find_devices(cfg)
    if rc:
        return _decline(st, out, rc, "no SMC-D device to offer")
    offer, proposal = _client_proposal(cfg, offer)
    if proposal is None:
        return _decline(st, out, DeclineCode.CNFERR, "no IPv4 prefix for a v1-only Proposal")
    st = replace(st, offer=offer)
    st = _send(st, out, proposal)
    st = _set_phase(st, Phase.PROPOSAL_SENT, out)
    return _receive(cfg, st, out)


def _fce_view(buf: bytes) -> tuple[int, int, bytes, int]:
    """The first-contact extension as the kernel reads it at offset 74 of its buffer:
    (os_type, release, hostname, feature_mask) - whatever the message's length."""
    os_release = buf[75]
    hostname = buf[78:110]
    feature_mask = struct.unpack_from(">H", buf, 112)[0]
    return os_release >> 4, os_release & 0xF, hostname, feature_mask


def _client_on_accept(cfg: HostConfig, st: HandshakeState, out: _Out,
                      got: _Received) -> HandshakeState:
    """``smc_connect_check_aclc`` and ``smc_connect_ism`` up to ``smc_conn_create``.

    A kernel hole reproduced, not invented: an Accept with ``version`` >= 3 passes the receive
    checks (only ``version < 1`` is refused) and ``smc_connect_check_aclc`` (``>= SMC_V2``);
    ``smc_connect_ism`` then determines the CHID only for ``version == SMC_V2`` and leaves
    ``ism_selected`` = 0. A client that offered no v1 device has ``ism_dev[0] == NULL``, and
    ``smc_conn_create`` dereferences it (lgr_list / lgr_lock or ``smc_lgr_create``): OOPS.
    """
    aclc = got.msg
    assert isinstance(aclc, clc.Accept)
    offer = st.offer
    assert offer is not None
    version = SMC_V1 if aclc.version == SMC_V1 else SMC_V2
    # smc_connect_check_aclc (typev1 is R or D here: the codec refused anything else)
    offered = offer.smc_type_v2 if aclc.version >= SMC_V2 else offer.smc_type_v1
    st = replace(st, decline_version=version)
    if (aclc.typev1 is SmcType.R and not offered.smcr) or (
        aclc.typev1 is SmcType.D and not offered.smcd
    ):
        return _decline(st, out, DeclineCode.MODEUNSUPP,
                        f"Accept v{aclc.version} {aclc.typev1.name} was not offered")
    # smc_connect_ism
    first_contact_peer = aclc.first_contact
    release = 0
    feature_mask = 0
    selected = 0
    peer_gid_ext = 0
    if aclc.version == SMC_V2:
        if first_contact_peer:
            _os, release, _host, fce_mask = _fce_view(got.buf)
            if release >= 1:  # smc_clc_clnt_v2x_features_validate (SMC-D)
                feature_mask = fce_mask & cfg.feature_mask
        for i, (slot, chid) in enumerate(zip(offer.slots, offer.chids, strict=True)):
            if slot is not None and chid == aclc.chid:  # smc_v2_determine_accepted_chid
                selected = i
                break
        else:
            return _error(st, out, Errno.EPROTO,
                          f"Accept CHID 0x{aclc.chid:04x} matches no offered device")
        if is_emulated_chid(offer.chids[selected]):
            peer_gid_ext = aclc.gid_ext
    slot_dev = offer.slots[selected]
    if slot_dev is None:
        return _finish(st, out, Outcome(
            kind=OutcomeKind.OOPS,
            detail=f"Accept version {aclc.version}: smc_conn_create uses ism_dev[0] == NULL",
        ))
    dev = cfg.devices[slot_dev]
    session = Session(
        version=aclc.version, device=slot_dev, chid=dev.chid, local_gid=dev.gid,
        local_gid_ext=dev.gid_ext, peer_gid=aclc.gid, peer_gid_ext=peer_gid_ext,
        eid=aclc.eid if aclc.version > SMC_V1 else bytes(32), release=release,
        feature_mask=feature_mask, first_contact_peer=first_contact_peer,
        peer_token=aclc.token,
        peer_rmbe_size=smc_uncompress_bufsize(aclc.dmbe_size) - SMCD_CDC_MSG_LEN,
        peer_dmbe_idx=aclc.dmbe_idx,
    )
    if aclc.version != SMC_V1 and first_contact_peer:  # smc_conn_save_peer_info_fce
        os_type, peer_release, hostname, _m = _fce_view(got.buf)
        session = replace(session, peer_os=os_type, peer_release=peer_release,
                          peer_hostname=hostname if all(c < 128 for c in hostname) else None)
    out.effects.append(RequestConn(
        role=Role.CLIENT, device=dev.name, chid=dev.chid, peer_gid=aclc.gid,
        peer_gid_ext=peer_gid_ext, vlan_id=cfg.vlan_id or 0, smcd_version=version,
        policy=LgrPolicy.CREATE_ONLY if first_contact_peer else LgrPolicy.REUSE_ONLY,
        dmb_size=cfg.rcvbuf // 2,
    ))
    st = replace(st, session=session)
    return _set_phase(st, Phase.CONN_PENDING, out)


def _client_on_conn(cfg: HostConfig, st: HandshakeState, out: _Out,
                    ev: ConnCreated) -> HandshakeState:
    """``smc_connect_ism`` after ``smc_conn_create`` / ``smc_buf_create``."""
    session = st.session
    assert session is not None
    if session.first_contact_peer != ev.first_contact_local:
        raise InconsistentAnswer(
            "client: smc_conn_create creates a link group exactly when the peer announced "
            f"first contact ({session.first_contact_peer}), but the answer has "
            f"first_contact_local={ev.first_contact_local} (link group {ev.lgr_id})"
        )
    _check_dmb_len(ev.dmb_len)
    session = replace(session, lgr_id=ev.lgr_id, first_contact_local=ev.first_contact_local,
                      dmb_token=ev.dmb_token, dmb_len=ev.dmb_len,
                      rmbe_size_comp=smc_compress_bufsize(ev.dmb_len, True))
    st = replace(st, session=session,
                 conn=ConnRef(lgr_id=ev.lgr_id, first_contact_local=ev.first_contact_local))
    if cfg.devices[session.device].nocopy:
        assert session.peer_token is not None
        out.effects.append(AttachPeerDmb(peer_token=session.peer_token))
        return _set_phase(st, Phase.ATTACH_PENDING, out)
    return _client_confirm(cfg, st, out)


def _client_confirm(cfg: HostConfig, st: HandshakeState, out: _Out) -> HandshakeState:
    """``smc_clc_send_confirm`` with the Accept's version and EID; then ``SMC_ACTIVE``."""
    session = st.session
    assert session is not None and session.first_contact_local is not None
    msg = _accept_confirm(cfg, clc.Confirm, session, first_contact=session.first_contact_local)
    st = _send(st, out, msg)
    return _finish(st, out, Outcome(kind=OutcomeKind.ACTIVE))


def _check_dmb_len(dmb_len: int) -> None:
    if dmb_len < 16384 or dmb_len & (dmb_len - 1) or dmb_len > (1 << 20):
        raise InconsistentAnswer(
            f"DMB length {dmb_len} is not an SMC-D buffer size (a power of two, 16 KiB..1 MiB)"
        )


def _accept_confirm(cfg: HostConfig, cls: type[clc.Accept] | type[clc.Confirm],
                    session: Session, *, first_contact: bool) -> clc.Accept | clc.Confirm:
    """``smcd_clc_prep_confirm_accept`` + ``smc_clc_fill_fce_v2x``."""
    dev = cfg.devices[session.device]
    assert session.dmb_token is not None and session.lgr_id is not None
    assert session.rmbe_size_comp is not None
    first = clc.SMC_FIRST_CONTACT_MASK if first_contact else 0
    linkid = linkid_bytes(session.lgr_id)
    if session.version == SMC_V1:
        return cls(version=session.version, typev2=first, typev1=SmcType.D, gid=dev.gid,
                   token=session.dmb_token, dmbe_idx=0, dmbe_size=session.rmbe_size_comp,
                   linkid=linkid)
    fce: clc.FirstContactExt | None = None
    if first_contact:
        v2x = None
        if session.release >= 1:
            v2x = clc.FirstContactExtV2x(feature_mask=session.feature_mask)
        fce = clc.FirstContactExt(os_type=SMC_CLC_OS_LINUX, release=session.release,
                                  hostname=cfg.hostname, v2x=v2x)
    # "if (eid && eid[0])": an EID starting with a zero byte is not copied
    eid = session.eid if session.eid[:1] not in (b"", b"\x00") else bytes(32)
    return cls(version=session.version, typev2=first, typev1=SmcType.D, gid=dev.gid,
               token=session.dmb_token, dmbe_idx=0, dmbe_size=session.rmbe_size_comp,
               linkid=linkid, chid=dev.chid, eid=eid,
               gid_ext=dev.gid_ext if is_emulated_chid(dev.chid) else 0,
               first_contact_ext=fce)


# --------------------------------------------------------------------------------------------
# Server
# --------------------------------------------------------------------------------------------


def _server_listen_work(cfg: HostConfig, st: HandshakeState, out: _Out) -> HandshakeState:
    """``smc_listen_work`` up to the Proposal wait."""
    if not cfg.syn_smc:
        return _finish(st, out, Outcome(kind=OutcomeKind.FALLBACK,
                                        reason=DeclineCode.PEERNOSMC,
                                        detail="client's SYN carried no SMC option"))
    st = _set_phase(st, Phase.PROPOSAL_WAIT, out)
    return _receive(cfg, st, out)


def _kernel_smcd_area(p: clc.Proposal) -> clc.ProposalSmcd | None:
    """``smc_get_clc_msg_smcd``: NULL when typev1 offers D but ``iparea_offset`` != 40."""
    if p.typev1.smcd and p.iparea_offset != clc.PROPOSAL_SMCD_LEN:
        return None
    return p.smcd


def _server_v2_check(cfg: HostConfig, p: clc.Proposal) -> tuple[int, int, int, int]:
    """``smc_listen_v2_check``: (rc, smcd_version, smcr_version, release_nr)."""
    smcd = SMC_V1 if p.typev1.smcd else 0
    smcr = SMC_V1 if p.typev1.smcr else 0
    if p.version > SMC_V1:
        if p.typev2.smcd:
            smcd |= SMC_V2
        if p.typev2.smcr:
            smcr |= SMC_V2
    rc = int(DeclineCode.PEERNOSMC)
    release = 0
    v2_ext = p.v2_ext if _kernel_smcd_area(p) is not None else None
    if smcd & SMC_V2 or smcr & SMC_V2:
        if v2_ext is None:
            smcd &= ~SMC_V2
            smcr &= ~SMC_V2
            rc = int(DeclineCode.NOV2EXT)
        else:
            if smcd & SMC_V2:
                if not cfg.v2_capable:
                    smcd &= ~SMC_V2
                    rc = int(DeclineCode.NOISM2SUPP)
                elif v2_ext.smcd_v2_ext is None:
                    smcd &= ~SMC_V2
                    rc = int(DeclineCode.NOV2DEXT)
                elif not v2_ext.user_eids and not v2_ext.seid:
                    smcd &= ~SMC_V2
                    rc = int(DeclineCode.NOUEID)
            if smcr & SMC_V2 and not v2_ext.user_eids:
                smcr &= ~SMC_V2
                rc = int(DeclineCode.NOUEID)
            release = min(v2_ext.release, cfg.smc_release)
    if not smcd and not smcr:
        return rc, smcd, smcr, release
    return 0, smcd, smcr, release


def _server_prefix_matches(cfg: HostConfig, prefix: clc.ProposalPrefix) -> bool:
    """``smc_clc_prfx_match`` (IPv4): the route's netdev has an address in the subnet with
    the same prefix length. IPv6 prefixes are not modelled and never match."""
    if prefix.ipv6_prefixes or cfg.ipv4 is None:
        return False
    addr, plen = cfg.ipv4
    if prefix.prefix_len != plen:
        return False
    mask = (0xFFFFFFFF << (32 - plen)) & 0xFFFFFFFF if plen else 0
    return (int.from_bytes(prefix.outgoing_subnet, "big") & mask) == (addr & mask)


def _server_plan(cfg: HostConfig, p: clc.Proposal, smcd_version: int,
                 smcr_version: int) -> tuple[PlanStep, ...]:
    """``smc_listen_find_device`` as a list of steps (device tries need the lifecycle)."""
    plan: list[PlanStep] = []
    smcd_area = _kernel_smcd_area(p)
    # -- smc_find_ism_v2_device_serv
    v2_ext = p.v2_ext if smcd_area is not None else None
    if (smcd_version & SMC_V2 and p.typev2.smcd and smcd_area is not None
            and v2_ext is not None and v2_ext.smcd_v2_ext is not None):
        proposed: list[tuple[int, int, int]] = []
        if smcd_area.ism.chid:
            proposed.append((smcd_area.ism.chid, smcd_area.ism.gid, 0))
        entries = v2_ext.smcd_v2_ext.gidchids
        i = 0
        while i < len(entries):
            chid, gid, gid_ext = entries[i].chid, entries[i].gid, 0
            if is_emulated_chid(chid):
                if i + 1 == len(entries) or entries[i + 1].chid != chid:
                    i += 1
                    continue
                i += 1
                gid_ext = entries[i].gid
            proposed.append((chid, gid, gid_ext))
            i += 1
        matches: list[tuple[int, int, int]] = []
        for chid, gid, gid_ext in proposed:  # smc_check_ism_v2_match
            for idx, dev in enumerate(cfg.devices):
                if dev.going_away or any(m[0] == idx for m in matches):
                    continue
                if dev.chid == chid and dev.cantalk(gid, gid_ext):
                    matches.append((idx, gid, gid_ext if is_emulated_chid(chid) else 0))
                    break
        if not matches:
            plan.append(StoreRc(code=int(DeclineCode.NOSMCD2DEV)))
        else:
            eid = match_eid(
                local_ueids=cfg.ueids, peer_ueids=v2_ext.user_eids,
                peer_seid_flag=v2_ext.seid, peer_seid=v2_ext.smcd_v2_ext.system_eid,
                local_seid=cfg.local_seid, seid_enabled=cfg.seid_enabled,
            )
            if eid is not None:
                plan.extend(TryDevice(version=SMC_V2, device=idx, peer_gid=gid,
                                      peer_gid_ext=gid_ext, eid=eid)
                            for idx, gid, gid_ext in matches)
    # -- smc_listen_prfx_check
    prfx_rc = 0
    if p.typev1 is not SmcType.N:
        assert p.prefix is not None  # the codec guarantees a prefix area iff typev1 != N
        if not _server_prefix_matches(cfg, p.prefix):
            prfx_rc = int(DeclineCode.DIFFPREFIX)
            plan.append(StoreRc(code=prfx_rc))
    # -- smc_vlan_by_tcpsk
    if cfg.vlan_id is None:
        plan.append(GiveUp(code=int(DeclineCode.GETVLANERR)))
        return tuple(plan)
    # -- smc_find_ism_v1_device_serv
    if not prfx_rc and smcd_version & SMC_V1 and p.typev1.smcd and smcd_area is not None:
        peer_gid = smcd_area.ism.gid
        found: int | None = None
        if cfg.route_pnetid is not None:
            for idx, dev in enumerate(cfg.devices):
                if (dev.pnetid == cfg.route_pnetid and not dev.going_away
                        and (not peer_gid or dev.cantalk(peer_gid, 0))):
                    found = idx
                    break
        if found is None:
            plan.append(StoreRc(code=int(DeclineCode.NOSMCDDEV)))
        else:
            plan.append(TryDevice(version=SMC_V1, device=found, peer_gid=peer_gid,
                                  peer_gid_ext=0, eid=bytes(32)))
    if not p.typev1.smcr and not p.typev2.smcr:
        plan.append(GiveUp(code=int(DeclineCode.NOSMCDDEV)))
        return tuple(plan)
    # -- SMC-R: this host has no RoCE device
    if (smcr_version & SMC_V2 and p.typev2.smcr and v2_ext is not None
            and match_eid(local_ueids=cfg.ueids, peer_ueids=v2_ext.user_eids,
                          peer_seid_flag=False, peer_seid=None, local_seid=None,
                          seid_enabled=False) is not None):
        plan.append(StoreRc(code=int(DeclineCode.NOSMCRDEV)))
    if not prfx_rc:
        plan.append(StoreRc(code=int(DeclineCode.NOSMCDEV)))
        plan.append(GiveUp(code=int(DeclineCode.NOSMCDEV)))
    else:
        plan.append(GiveUp(code=int(DeclineCode.NOSMCDEV), prefer_stored=False))
    return tuple(plan)


def _server_on_proposal(cfg: HostConfig, st: HandshakeState, out: _Out,
                        got: _Received) -> HandshakeState:
    """``smc_listen_work`` from the Proposal to ``smc_listen_find_device``."""
    p = got.msg
    assert isinstance(p, clc.Proposal)
    st = replace(st, proposal_version=SMC_V2 if p.version > SMC_V1 else SMC_V1,
                 decline_version=SMC_V2 if p.version > SMC_V1 else SMC_V1)
    if cfg.ipsec:
        return _decline(st, out, DeclineCode.IPSEC, "IPsec in use")
    rc, smcd_version, smcr_version, release = _server_v2_check(cfg, p)
    if rc:
        return _decline(st, out, rc, "smc_listen_v2_check")
    # smc_clc_srv_v2x_features_validate
    if (smcd_version & SMC_V2 or smcr_version & SMC_V2) and release >= 1:
        v2_ext = p.v2_ext
        assert v2_ext is not None
        if smcr_version & SMC_V2:
            if min(v2_ext.max_conns, SMC_CONN_PER_LGR_PREFER) < SMC_CONN_PER_LGR_MIN:
                return _decline(st, out, DeclineCode.MAXCONNERR, "peer max_conns too small")
            if min(v2_ext.max_links, SMC_LINKS_PER_LGR_MAX_PREFER) < SMC_LINKS_ADD_LNK_MIN:
                return _decline(st, out, DeclineCode.MAXLINKERR, "peer max_links too small")
    st = replace(st, release=release, feature_mask=cfg.feature_mask,
                 plan=_server_plan(cfg, p, smcd_version, smcr_version))
    return _server_run_plan(cfg, st, out)


def _server_run_plan(cfg: HostConfig, st: HandshakeState, out: _Out) -> HandshakeState:
    """Run plan steps until a device try needs the lifecycle, or the search gives up."""
    plan, stored = st.plan, st.stored_rc
    while plan:
        item, plan = plan[0], plan[1:]
        if isinstance(item, StoreRc):
            stored = stored or item.code
        elif isinstance(item, GiveUp):
            code = (stored or item.code) if item.prefer_stored else item.code
            st = replace(st, plan=(), stored_rc=stored)
            return _decline(st, out, code, "smc_listen_find_device found no usable device")
        else:
            dev = cfg.devices[item.device]
            out.effects.append(RequestConn(
                role=Role.SERVER, device=dev.name, chid=dev.chid, peer_gid=item.peer_gid,
                peer_gid_ext=item.peer_gid_ext,
                vlan_id=(cfg.vlan_id or 0) if item.version == SMC_V1 else 0,
                smcd_version=item.version, policy=LgrPolicy.REUSE_OR_CREATE,
                dmb_size=cfg.rcvbuf // 2,
            ))
            st = replace(st, plan=plan, stored_rc=stored, pending=item)
            return _set_phase(st, Phase.CONN_PENDING, out)
    raise AssertionError("server plan ended without GiveUp")  # pragma: no cover


def _server_try_failed(cfg: HostConfig, st: HandshakeState, out: _Out,
                       code: DeclineCode) -> HandshakeState:
    """``smc_listen_ism_init`` failed: remember the code, try the next plan step."""
    st = replace(st, pending=None, stored_rc=st.stored_rc or int(code))
    return _server_run_plan(cfg, st, out)


def _server_on_conn(cfg: HostConfig, st: HandshakeState, out: _Out,
                    ev: ConnCreated) -> HandshakeState:
    """Device tried successfully: ``smc_clc_send_accept``; then wait for the Confirm."""
    item = st.pending
    assert item is not None
    _check_dmb_len(ev.dmb_len)
    dev = cfg.devices[item.device]
    session = Session(
        version=item.version, device=item.device, chid=dev.chid, local_gid=dev.gid,
        local_gid_ext=dev.gid_ext, peer_gid=item.peer_gid, peer_gid_ext=item.peer_gid_ext,
        eid=item.eid, release=st.release, feature_mask=st.feature_mask,
        lgr_id=ev.lgr_id, first_contact_local=ev.first_contact_local,
        dmb_token=ev.dmb_token, dmb_len=ev.dmb_len,
        rmbe_size_comp=smc_compress_bufsize(ev.dmb_len, True),
    )
    st = replace(st, pending=None, plan=(), session=session,
                 conn=ConnRef(lgr_id=ev.lgr_id, first_contact_local=ev.first_contact_local))
    st = _send(st, out, _accept_confirm(cfg, clc.Accept, session,
                                        first_contact=ev.first_contact_local))
    st = _set_phase(st, Phase.ACCEPT_SENT, out)
    return _receive(cfg, st, out)


def _server_on_confirm(cfg: HostConfig, st: HandshakeState, out: _Out,
                       got: _Received) -> HandshakeState:
    """From the Confirm to ``SMC_ACTIVE``: ``smc_clc_v2x_features_confirm_check``,
    ``smc_conn_save_peer_info(_fce)``, ``smcd_buf_attach``."""
    cclc = got.msg
    assert isinstance(cclc, clc.Confirm)
    session = st.session
    assert session is not None
    if cclc.version != SMC_V1 and cclc.first_contact:
        _os, fce_release, _host, fce_mask = _fce_view(got.buf)
        if session.release != fce_release:
            return _decline(st, out, DeclineCode.RELEASEERR,
                            f"Confirm release {fce_release} != negotiated {session.release}")
        if fce_release >= 1:
            session = replace(session, feature_mask=fce_mask)
        os_type, peer_release, hostname, _m = _fce_view(got.buf)
        session = replace(session, peer_os=os_type, peer_release=peer_release,
                          peer_hostname=hostname if all(c < 128 for c in hostname) else None)
    # smcd_conn_save_peer_info: the Confirm's GID and CHID are not checked
    session = replace(
        session, first_contact_peer=cclc.first_contact, peer_token=cclc.token,
        peer_rmbe_size=smc_uncompress_bufsize(cclc.dmbe_size) - SMCD_CDC_MSG_LEN,
        peer_dmbe_idx=cclc.dmbe_idx,
    )
    st = replace(st, session=session)
    if cfg.devices[session.device].nocopy:
        out.effects.append(AttachPeerDmb(peer_token=cclc.token))
        return _set_phase(st, Phase.ATTACH_PENDING, out)
    return _finish(st, out, Outcome(kind=OutcomeKind.ACTIVE))


# --------------------------------------------------------------------------------------------
# The step function
# --------------------------------------------------------------------------------------------


def step(cfg: HostConfig, state: HandshakeState, event: Event) -> Step:
    """Apply one event to one side; return the new state and the effects.

    Guard: :func:`enabled` (peer events always; a local event only where its phase's row of
    :data:`TRANSITIONS` names it). Effect: the kernel's processing of that event, up to the
    next point where the side waits (for bytes, or for the lifecycle's answer).

    Raises:
        ForbiddenHandshakeStep: a local event in a phase that does not take it; the state is
            unchanged (it is immutable).
        InconsistentAnswer: an answer contradicting the request it answers.
    """
    if not enabled(state, event):
        raise ForbiddenHandshakeStep(
            f"can't handle event {type(event).__name__} when role={state.role.value} and "
            f"phase={state.phase.value}"
        )
    out = _Out(origin=type(event), start=state.phase)
    st = state
    if isinstance(event, RecvBytes):
        if st.phase in TERMINAL_PHASES:
            return Step(state=st)  # after the handshake the bytes are TCP payload or unread
        st = replace(st, rx=st.rx + bytes(event.data))
        st = _receive(cfg, st, out)
    elif isinstance(event, RecvEof):
        if st.phase in TERMINAL_PHASES or st.eof:
            return Step(state=st)
        st = replace(st, eof=True)
        st = _receive(cfg, st, out)
    elif isinstance(event, RecvTimeout):
        if st.phase in WAITING_PHASES:
            st = _wait_failed(st, out, timeout=True)
    elif isinstance(event, Connect):
        st = _client_connect(cfg, st, out)
    elif isinstance(event, ListenWork):
        st = _server_listen_work(cfg, st, out)
    elif isinstance(event, ConnCreated):
        if st.role is Role.CLIENT:
            st = _client_on_conn(cfg, st, out, event)
        else:
            st = _server_on_conn(cfg, st, out, event)
    elif isinstance(event, ConnCreateFailed):
        if st.role is Role.CLIENT:
            st = _decline(st, out, event.reason, "smc_conn_create failed")
        else:
            st = _server_try_failed(cfg, st, out, event.reason)
    elif isinstance(event, BufCreateFailed):
        code = DeclineCode.MAX_DMB if event.errno is Errno.ENOSPC else DeclineCode.MEM
        st = replace(st, conn=ConnRef(lgr_id=event.lgr_id,
                                      first_contact_local=event.first_contact_local))
        st = _abort_conn(st, out)  # inside smc_listen_ism_init / connect_abort
        if st.role is Role.CLIENT:
            st = _decline(st, out, code, f"smc_buf_create: -{event.errno.name}")
        else:
            st = _server_try_failed(cfg, st, out, code)
    else:  # AttachDone
        st = _on_attach(cfg, st, out, event)
    return Step(state=st, effects=tuple(out.effects))


def _on_attach(cfg: HostConfig, st: HandshakeState, out: _Out, ev: AttachDone) -> HandshakeState:
    session = st.session
    assert session is not None
    if ev.errno is not None:
        if st.role is Role.CLIENT:  # smc_connect_ism: "try to fallback"
            return _decline(st, out, DeclineCode.MEM, f"smcd_buf_attach: -{ev.errno.name}")
        # smc_listen_work: the negative rc goes to smc_listen_decline: an error
        return _error(st, out, ev.errno, f"smcd_buf_attach: -{ev.errno.name}")
    st = replace(st, session=replace(session, attached=True))
    if st.role is Role.CLIENT:
        return _client_confirm(cfg, st, out)
    return _finish(st, out, Outcome(kind=OutcomeKind.ACTIVE))


def run(cfg: HostConfig, state: HandshakeState, events: Iterable[Event]) -> Step:
    """Apply events in order; the effects of all of them, concatenated."""
    effects: list[Effect] = []
    for ev in events:
        result = step(cfg, state, ev)
        state = result.state
        effects.extend(result.effects)
    return Step(state=state, effects=tuple(effects))


# --------------------------------------------------------------------------------------------
# Link-group decision (smc_conn_create), for whoever answers RequestConn
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class LgrView:
    """What ``smc_conn_create`` looks at in an existing SMC-D link group."""

    lgr_id: int
    device: str  # SmcdDevice.name of lgr->smcd
    peer_gid: int
    peer_gid_ext: int
    vlan_id: int
    sync_err: bool = False


@dataclass(frozen=True, slots=True, kw_only=True)
class ReuseLgr:
    lgr_id: int


@dataclass(frozen=True, slots=True, kw_only=True)
class CreateLgr:
    pass


@dataclass(frozen=True, slots=True, kw_only=True)
class SyncErr:
    pass


LgrDecision: TypeAlias = ReuseLgr | CreateLgr | SyncErr


def conn_create_decision(req: RequestConn, lgrs: Iterable[LgrView],
                         emulated: bool | None = None) -> LgrDecision:
    """``smc_conn_create``'s choice: the first link group (in list order) on the same device
    with the same peer GID (and gid_ext for an emulated device: ``smcd_lgr_match``), not
    ``sync_err``, and (v1 only) the same VLAN; else create - or ``SYNCERR`` for a client whose
    peer reused a link group (``REUSE_ONLY``)."""
    if req.policy is LgrPolicy.CREATE_ONLY:
        return CreateLgr()
    emu = is_emulated_chid(req.chid) if emulated is None else emulated
    for lgr in lgrs:
        if (lgr.device == req.device and lgr.peer_gid == req.peer_gid
                and (not emu or lgr.peer_gid_ext == req.peer_gid_ext)
                and not lgr.sync_err
                and (req.smcd_version == SMC_V2 or lgr.vlan_id == req.vlan_id)):
            return ReuseLgr(lgr_id=lgr.lgr_id)
    if req.policy is LgrPolicy.REUSE_ONLY:
        return SyncErr()
    return CreateLgr()


# --------------------------------------------------------------------------------------------
# Invariants
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class PairConfig:
    """Both hosts of a back-to-back run."""

    client: HostConfig
    server: HostConfig


@dataclass(frozen=True, slots=True, kw_only=True)
class PairState:
    """The two sides of one connection's handshake."""

    client: HandshakeState
    server: HandshakeState


def _both_active(s: PairState) -> bool:
    return s.client.phase is Phase.ACTIVE and s.server.phase is Phase.ACTIVE


def _sessions(s: PairState) -> tuple[Session, Session]:
    assert s.client.session is not None and s.server.session is not None
    return s.client.session, s.server.session


def _type_ok(cfg: PairConfig, s: PairState) -> bool:
    for side, role in ((s.client, Role.CLIENT), (s.server, Role.SERVER)):
        if side.role is not role or (side.role, side.phase) not in TRANSITIONS:
            return False
        if (side.phase in TERMINAL_PHASES) != (side.outcome is not None):
            return False
        if side.phase is Phase.ACTIVE and (side.session is None or side.conn is None):
            return False
    return True


def _agree_version(cfg: PairConfig, s: PairState) -> bool:
    if not _both_active(s):
        return True
    c, v = _sessions(s)
    return c.version == v.version


def _agree_device(cfg: PairConfig, s: PairState) -> bool:
    if not _both_active(s):
        return True
    c, v = _sessions(s)
    return (c.chid == v.chid and c.peer_gid == v.local_gid and v.peer_gid == c.local_gid
            and (not is_emulated_chid(c.chid)
                 or (c.peer_gid_ext == v.local_gid_ext and v.peer_gid_ext == c.local_gid_ext)))


def _agree_lgr(cfg: PairConfig, s: PairState) -> bool:
    if not _both_active(s):
        return True
    c, v = _sessions(s)
    return c.first_contact_local == v.first_contact_local == c.first_contact_peer


def _agree_dmbs(cfg: PairConfig, s: PairState) -> bool:
    if not _both_active(s):
        return True
    c, v = _sessions(s)
    assert c.dmb_len is not None and v.dmb_len is not None
    return (c.peer_token == v.dmb_token and v.peer_token == c.dmb_token
            and c.peer_rmbe_size == v.dmb_len - SMCD_CDC_MSG_LEN
            and v.peer_rmbe_size == c.dmb_len - SMCD_CDC_MSG_LEN)


def _no_leak(cfg: PairConfig, s: PairState) -> bool:
    return all(side.conn is None for side in (s.client, s.server)
               if side.phase in TERMINAL_PHASES and side.phase is not Phase.ACTIVE)


def _sends_allowed(cfg: PairConfig, s: PairState) -> bool:
    for side in (s.client, s.server):
        seqs = SEND_SEQUENCES[side.role]
        if not any(seq[: len(side.sent)] == side.sent for seq in seqs):
            return False
        active_sent = {Role.CLIENT: (ClcType.PROPOSAL, ClcType.CONFIRM),
                       Role.SERVER: (ClcType.ACCEPT,)}[side.role]
        if side.phase is Phase.ACTIVE and side.sent != active_sent:
            return False
        if ClcType.CONFIRM in side.sent and side.phase is not Phase.ACTIVE:
            return False  # the Confirm is the client's last act before SMC_ACTIVE
    return True


def _decline_iff_declined(cfg: PairConfig, s: PairState) -> bool:
    for side in (s.client, s.server):
        if ClcType.DECLINE in side.sent and side.phase is not Phase.DECLINED:
            return False
    return True


#: the handshake's named invariants over a :class:`PairState` (config: :class:`PairConfig`)
INVARIANTS: Final[tuple[Invariant, ...]] = (
    Invariant(name="handshake states are well typed",
              statement="roles, phases in the table, an outcome exactly at the end, an ACTIVE "
                        "side has a session and a connection", predicate=_type_ok),
    Invariant(name="active sides agree on the CLC version",
              statement="both ACTIVE => same Accept/Confirm version", predicate=_agree_version),
    Invariant(name="active sides agree on the device",
              statement="both ACTIVE => same CHID, each side's peer GID (and gid_ext for an "
                        "emulated device) is the other's own", predicate=_agree_device),
    Invariant(name="active sides agree on first contact",
              statement="both ACTIVE => both created a link group or both reused one, as the "
                        "Accept announced", predicate=_agree_lgr),
    Invariant(name="active sides know each other's DMB",
              statement="both ACTIVE => each side's peer token is the other's DMB token and its "
                        "peer_rmbe_size the other's DMB length - 32", predicate=_agree_dmbs),
    Invariant(name="a failed handshake leaves no connection registered",
              statement="DECLINED/FALLBACK/ERROR/OOPS => every registered connection was "
                        "aborted (its DMB returned, a new link group freed)",
              predicate=_no_leak),
    Invariant(name="a side sends only the messages its role allows",
              statement="client: Proposal[, Confirm|Decline] or Decline; server: "
                        "Accept[, Decline] or Decline; ACTIVE sides sent no Decline; a "
                        "Confirm only by an ACTIVE client",
              predicate=_sends_allowed),
    Invariant(name="a side that sent a Decline has fallen back",
              statement="Decline in sent => phase DECLINED", predicate=_decline_iff_declined),
    Invariant(name="the handshake can complete",
              statement="some reachable state has both sides ACTIVE",
              predicate=lambda cfg, s: _both_active(s), kind=InvariantKind.SOMETIMES),
)


# --------------------------------------------------------------------------------------------
# A tiny back-to-back driver
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class SideEnv:
    """What a host's lifecycle answers (deterministic stand-in for ``spec.lifecycle``).

    ``dmb_tokens`` are handed out in order, one per created DMB; ``dmb_errno`` makes buffer
    creation fail; ``conn_fail`` makes ``smc_lgr_create`` fail; ``attach_errno`` makes
    ``smcd_buf_attach`` fail.
    """

    dmb_tokens: tuple[int, ...] = ()
    dmb_len: int = 65536
    dmb_errno: Errno | None = None
    conn_fail: DeclineCode | None = None
    attach_errno: Errno | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class Delivery:
    """One message written by ``sender``: its index among that side's sends and its bytes."""

    sender: Role
    index: int
    data: bytes


#: a fault hook: given a message about to be delivered, the byte chunks actually delivered
#: (``()`` drops it, changed bytes mutate it, several chunks split it)
Tamper: TypeAlias = Callable[[Delivery], tuple[bytes, ...]]


@dataclass(frozen=True, slots=True, kw_only=True)
class BackToBack:
    """Result of :func:`run_back_to_back`: final pair, lgr table after, and the trace."""

    state: PairState
    lgrs: tuple[LgrView, ...]
    trace: tuple[tuple[Role, Event | Effect], ...]


def run_back_to_back(
    client_cfg: HostConfig,
    server_cfg: HostConfig,
    *,
    client_env: SideEnv = SideEnv(),
    server_env: SideEnv = SideEnv(),
    lgrs: tuple[LgrView, ...] = (),
    same_host: bool = True,
    server_lgrs: tuple[LgrView, ...] = (),
    next_lgr_id: int = SMC_LGR_NUM_INCR,
    tamper: Tamper | None = None,
    max_steps: int = 200,
) -> BackToBack:
    """Connect a client and a server machine and run them until both have finished.

    Each side's output bytes are delivered to the other (through ``tamper`` if given); each
    :class:`RequestConn` is answered from a link-group table with :func:`conn_create_decision`:
    ``lgrs`` is one table shared by both sides when ``same_host`` (loopback-ism: client and
    server use the same device and link-group list), else the client's, with ``server_lgrs``
    the server's. New link groups get ids ``next_lgr_id``,
    ``+ 256``, ...; a side left waiting with nothing to deliver gets :class:`RecvTimeout`.
    """
    cfgs = {Role.CLIENT: client_cfg, Role.SERVER: server_cfg}
    envs = {Role.CLIENT: client_env, Role.SERVER: server_env}
    states = {Role.CLIENT: client_init(), Role.SERVER: server_init()}
    tokens = {Role.CLIENT: list(client_env.dmb_tokens), Role.SERVER: list(server_env.dmb_tokens)}
    tables: dict[Role, list[LgrView]] = {Role.CLIENT: list(lgrs),
                                         Role.SERVER: list(server_lgrs)}
    if same_host:
        tables[Role.SERVER] = tables[Role.CLIENT]
    lgr_ids = [next_lgr_id]
    sent_count = {Role.CLIENT: 0, Role.SERVER: 0}
    queue: list[tuple[Role, Event]] = [(Role.CLIENT, Connect()), (Role.SERVER, ListenWork())]
    trace: list[tuple[Role, Event | Effect]] = []
    other = {Role.CLIENT: Role.SERVER, Role.SERVER: Role.CLIENT}

    def answer(role: Role, req: RequestConn) -> Event:
        env = envs[role]
        table = tables[role]
        if env.conn_fail is not None:
            return ConnCreateFailed(reason=env.conn_fail)
        decision = conn_create_decision(req, table)
        if isinstance(decision, SyncErr):
            return ConnCreateFailed(reason=DeclineCode.SYNCERR)
        if isinstance(decision, ReuseLgr):
            lgr_id, first = decision.lgr_id, False
        else:
            lgr_id, first = lgr_ids[0], True
            lgr_ids[0] += SMC_LGR_NUM_INCR
            table.append(LgrView(lgr_id=lgr_id, device=req.device, peer_gid=req.peer_gid,
                                 peer_gid_ext=req.peer_gid_ext, vlan_id=req.vlan_id))
        if env.dmb_errno is not None:
            return BufCreateFailed(lgr_id=lgr_id, first_contact_local=first,
                                   errno=env.dmb_errno)
        token = tokens[role].pop(0) if tokens[role] else 0x1000 + len(trace)
        return ConnCreated(lgr_id=lgr_id, first_contact_local=first, dmb_token=token,
                           dmb_len=env.dmb_len)

    steps = 0
    while steps < max_steps:
        if not queue:
            waiting = [r for r in Role if states[r].phase in WAITING_PHASES]
            if not waiting:
                break
            queue.append((waiting[0], RecvTimeout()))
        role, ev = queue.pop(0)
        steps += 1
        trace.append((role, ev))
        result = step(cfgs[role], states[role], ev)
        states[role] = result.state
        for eff in result.effects:
            trace.append((role, eff))
            if isinstance(eff, SendClc):
                delivery = Delivery(sender=role, index=sent_count[role], data=eff.data)
                sent_count[role] += 1
                chunks = tamper(delivery) if tamper is not None else (eff.data,)
                queue.extend((other[role], RecvBytes(data=c)) for c in chunks)
            elif isinstance(eff, RequestConn):
                queue.append((role, answer(role, eff)))
            elif isinstance(eff, AttachPeerDmb):
                queue.append((role, AttachDone(errno=envs[role].attach_errno)))
            elif isinstance(eff, ConnAbort):
                if eff.first_contact_local:
                    table = tables[role]
                    table[:] = [lg for lg in table if lg.lgr_id != eff.lgr_id]
            else:  # LgrSyncErr
                table = tables[role]
                table[:] = [replace(lg, sync_err=True) if lg.lgr_id == eff.lgr_id else lg
                            for lg in table]
    all_lgrs = tables[Role.CLIENT] + ([] if same_host else tables[Role.SERVER])
    return BackToBack(state=PairState(client=states[Role.CLIENT], server=states[Role.SERVER]),
                      lgrs=tuple(all_lgrs), trace=tuple(trace))
