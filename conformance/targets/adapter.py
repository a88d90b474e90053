"""The target interface: what an implementation under test offers to the conformance suite.

Theory of operation
-------------------
A *target* is any implementation of SMC-D / loopback-ism that the suite can drive: the project's
own model, a mutant of it (the zoo), the spec itself (sanity: it must pass everything), a
subprocess written in another language speaking JSON lines, or a kernel harness. The suite talks
to every target through one narrow, JSON-shaped interface:

* ``reset()`` - forget everything (a fresh device, no connections, no handshake endpoints);
* ``apply(op) -> Observation`` - perform one operation and report what the caller would see;
* ``close()`` - release resources (processes, files).

An operation (:class:`Op`) is a name from :data:`OPS` plus JSON-compatible arguments. Every
operation belongs to one :class:`Capability`; a target declares the capabilities it supports and
a case that needs another one is UNSUPPORTED for that target, never failed.

An :class:`Observation` is what the implementation's caller sees: success with a JSON value, or a
refusal named by an errno-like code (``EINVAL``, ``ENOSPC``, ``EPIPE``, ``EAGAIN``...), or for the
CLC codec a named malformation. Observations are plain data so that the spec's observation and a
subprocess's observation can be compared field by field.

Handles
-------
Tokens and connection ids are chosen by the implementation (loopback-ism draws random 64-bit DMB
tokens), so they never match between two targets. The result keys listed in
:attr:`OpInfo.handles` are *handles*: the runner replaces their raw values by symbolic names
before comparing, and resolves :class:`Ref` arguments back to the raw values of each target.

Errors
------
* :class:`TargetLoadError` - the target spec string is bad or the target cannot be loaded (the
  CLI turns it into exit 2 with one line).
* :class:`TargetBroken` - the target stopped speaking the protocol (crashed, hung past the
  timeout, answered garbage, raised an unexpected exception): the case is an ERROR and the runner
  resets (for a subprocess: restarts) the target before the next case.

The JSON-lines wire protocol for out-of-process targets is documented in
:mod:`smcd_check.conformance.targets.subprocess_target`.
"""

from __future__ import annotations

import enum
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

#: version of the operation vocabulary and of the JSON-lines protocol (conformance/PROTOCOL.md)
PROTOCOL_VERSION = 4

#: A result value (or a part of one, e.g. ``outcome.errno``) the target cannot observe: the runner
#: does not compare it and names it in the step's message. Example: a kernel server socket that
#: failed its handshake is freed by the kernel, so its errno is nobody's to read.
NOT_OBSERVED = "<not observed>"

JsonValue = Any  # int | str | bool | None | list[JsonValue] | dict[str, JsonValue]


class Capability(enum.Enum):
    """A part of the SMC-D stack a target may implement."""

    #: loopback-ism device: register_dmb, unregister_dmb, move_data, read back DMB memory
    DEVICE = "device"
    #: loopback-ism "nocopy" support: attach_dmb / detach_dmb (ghost sndbuf, refcounted DMBs)
    DEVICE_NOCOPY = "device-nocopy"
    #: SMC-D connections in copy mode (own sndbuf, data moved into the peer DMB)
    CONN_COPY = "conn-copy"
    #: SMC-D connections in merged mode (sndbuf = the peer's DMB, loopback-ism v6.11+)
    CONN_MERGED = "conn-merged"
    #: the kernel's host-cursor arithmetic (smc_curs_add/diff/comp/diff_large) exposed directly
    CURSOR = "cursor"
    #: the CLC codec: decode and validate raw CLC bytes
    CLC = "clc"
    #: CLC handshake endpoints fed with bytes (client and server)
    HANDSHAKE = "handshake"
    #: (regression traces, issue 17) the data path's internal steps one at a time on a pair
    #: opened with ``conn_open_steps``: a white-box target (the spec, the model) can hold back
    #: moves, CDC writes and CDC processing, so an explorer trace's interleaving is forced exactly
    CONN_STEPS = "conn-steps"
    #: (regression traces, issue 17) which link group ``smc_conn_create`` joins on the target's
    #: SMC-D device for a new connection to a given peer (``lgr_conn_create``)
    LINK_GROUP = "link-group"
    #: (protocol 3) link groups and the connections' own DMBs: which link group a connection
    #: joined, its DMB's reference count, the connection device's counters; terminating a link
    #: group, running its delayed free, losing the device (net/smc/smc_core.c)
    LGR = "lgr-lifecycle"
    #: (protocol 3) a hostile or buggy peer writes a CDC header into an endpoint's DMB: the
    #: receiver's named checks (spec/cdc_rx.py) decide whether it is acted on
    CDC_INJECT = "cdc-inject"
    #: (protocol 3) the socket behind an endpoint: sk_state, sk_err, sk_shutdown, SOCK_DEAD,
    #: whether its connection was freed, the CDC connection-state flags sent and received
    CONN_STATE = "conn-state"
    #: (issue 11) urgent data (MSG_OOB, SIOCATMARK, SO_OOBINLINE) and data in both directions
    #: at once, on a pair opened with ``conn_open_urg``
    URGENT = "urgent"


ALL_CAPABILITIES: frozenset[Capability] = frozenset(Capability)


def parse_capability(name: str) -> Capability:
    """Return the capability named ``name`` (its value, e.g. ``device-nocopy``).

    Raises:
        ValueError: naming the unknown capability and the known ones.
    """
    for cap in Capability:
        if cap.value == name:
            return cap
    known = ", ".join(c.value for c in Capability)
    raise ValueError(f"unknown capability {name!r}; known: {known}")


@dataclass(frozen=True, slots=True, kw_only=True)
class OpInfo:
    """What one operation is: its capability, arguments, result keys and handle keys."""

    name: str
    capability: Capability
    #: argument names, all required (values are JSON: ints, hex strings, strings, bools)
    args: tuple[str, ...]
    #: keys of a successful result
    result: tuple[str, ...]
    #: result keys whose values are implementation-chosen handles (compared symbolically)
    handles: tuple[str, ...] = ()
    #: argument names whose values are handles (given as :class:`Ref` in cases)
    handle_args: tuple[str, ...] = ()
    doc: str = ""


def _op(
    name: str,
    cap: Capability,
    args: tuple[str, ...],
    result: tuple[str, ...],
    doc: str,
    *,
    handles: tuple[str, ...] = (),
    handle_args: tuple[str, ...] = (),
) -> OpInfo:
    return OpInfo(
        name=name,
        capability=cap,
        args=args,
        result=result,
        handles=handles,
        handle_args=handle_args,
        doc=doc,
    )


_D, _N = Capability.DEVICE, Capability.DEVICE_NOCOPY
_C, _M = Capability.CONN_COPY, Capability.CONN_MERGED

#: Every operation a target can be asked to perform, by name.
#: Byte strings travel as lowercase hex; cursors as ``[wrap, count]``.
OPS: Mapping[str, OpInfo] = {
    info.name: info
    for info in (
        # --- loopback-ism device (smc_loopback.c: smc_lo_register_dmb ... smc_lo_move_data)
        _op(
            "dev_register_dmb",
            _D,
            ("size",),
            ("token", "sba_idx", "len"),
            "register a zeroed DMB of `size` bytes; errors ENOSPC (no free slot), ENOMEM",
            handles=("token",),
        ),
        _op(
            "dev_unregister_dmb",
            _D,
            ("token",),
            (),
            "drop the owner's reference; unknown token -> EINVAL",
            handle_args=("token",),
        ),
        _op(
            "dev_move_data",
            _D,
            ("token", "offset", "data", "signal"),
            (),
            "write `data` at `offset` of the DMB; unknown token or out of bounds -> EINVAL",
            handle_args=("token",),
        ),
        _op(
            "dev_read_dmb",
            _D,
            ("token", "offset", "size"),
            ("data",),
            "read back DMB memory (what the owner sees); unknown token -> EINVAL",
            handle_args=("token",),
        ),
        _op(
            "dev_attach_dmb",
            _N,
            ("token",),
            ("token", "sba_idx", "len"),
            "attach a peer DMB as ghost sndbuf (refcount + 1); unknown token -> EINVAL",
            handles=("token",),
            handle_args=("token",),
        ),
        _op(
            "dev_detach_dmb",
            _N,
            ("token",),
            (),
            "detach a ghost sndbuf (refcount - 1); unknown token -> EINVAL",
            handle_args=("token",),
        ),
        # --- SMC-D connections (smc_tx.c, smc_rx.c, smc_cdc.c, smc_close.c)
        _op(
            "conn_open",
            _C,  # merged mode needs CONN_MERGED, checked by Op.capability
            ("mode", "dmb_size", "sndbuf_size"),
            ("a", "b"),
            "open a connected pair (mode 'copy' or 'merged'); returns the two endpoints",
            handles=("a", "b"),
        ),
        _op(
            "conn_send",
            _C,
            ("conn", "data"),
            ("n",),
            "non-blocking send: n bytes accepted (0 = no room now); shut down/closed -> EPIPE",
            handle_args=("conn",),
        ),
        _op(
            "conn_recv",
            _C,
            ("conn", "max"),
            ("data", "eof"),
            "non-blocking receive of up to `max` bytes (empty = nothing yet); eof = peer done",
            handle_args=("conn",),
        ),
        _op(
            "conn_shutdown",
            _C,
            ("conn",),
            (),
            "shutdown(SHUT_WR): send peer_done_writing",
            handle_args=("conn",),
        ),
        _op(
            "conn_close",
            _C,
            ("conn",),
            (),
            "final close: peer_conn_closed (peer_conn_abort if unread data remains)",
            handle_args=("conn",),
        ),
        _op(
            "conn_abort",
            _C,
            ("conn",),
            (),
            "abort: send peer_conn_abort",
            handle_args=("conn",),
        ),
        _op(
            "conn_cursors",
            _C,
            ("conn",),
            ("prod", "cons", "peer_prod", "peer_cons", "bytes_to_rcv", "sndbuf_space",
             "peer_rmbe_space"),
            "cursor snapshot of one endpoint (conformance/PROTOCOL.md section 5)",
            handle_args=("conn",),
        ),
        # --- host cursor arithmetic (smc_cdc.h)
        _op("curs_add", Capability.CURSOR, ("size", "curs", "value"), ("curs",),
            "smc_curs_add(size, curs, value)"),
        _op("curs_diff", Capability.CURSOR, ("size", "old", "new"), ("value",),
            "smc_curs_diff(size, old, new)"),
        _op("curs_comp", Capability.CURSOR, ("size", "old", "new"), ("value",),
            "smc_curs_comp(size, old, new)"),
        _op("curs_diff_large", Capability.CURSOR, ("size", "old", "new"), ("value",),
            "smc_curs_diff_large(size, old, new)"),
        # --- CLC codec (smc_clc.c: smc_clc_wait_msg / smc_clc_msg_hdr_valid)
        _op(
            "clc_decode",
            Capability.CLC,
            ("data",),
            ("type", "version", "length", "fields"),
            "decode and validate one CLC message; invalid -> EPROTO",
        ),
        # --- CLC handshake endpoints (af_smc.c: __smc_connect / smc_listen_work)
        _op(
            "hs_new",
            Capability.HANDSHAKE,
            ("role", "config"),
            ("ep", "out", "outcome", "effects"),
            "create a client or server endpoint; returns the bytes it sends at once",
            handles=("ep",),
        ),
        _op(
            "hs_feed",
            Capability.HANDSHAKE,
            ("ep", "data"),
            ("out", "outcome", "effects"),
            "feed received CLC bytes; returns what the endpoint sends, its outcome and effects",
            handle_args=("ep",),
        ),
        _op(
            "hs_eof",
            Capability.HANDSHAKE,
            ("ep",),
            ("out", "outcome", "effects"),
            "the peer closed the CLC TCP socket (EOF while the endpoint waits)",
            handle_args=("ep",),
        ),
        _op(
            "hs_timeout",
            Capability.HANDSHAKE,
            ("ep",),
            ("out", "outcome", "effects"),
            "CLC_WAIT_TIME passed without a whole message (smc_clc_wait_msg timeout)",
            handle_args=("ep",),
        ),
    )
}

# --- Operations added for regression traces (issue 17), kept apart so the vocabulary owner's
# blocks above stay as they are. A pair opened with ``conn_open_steps`` does nothing by itself:
# ``conn_send`` only copies into the sndbuf (a corked ``smc_tx_sendmsg``), ``conn_recv`` reads and
# decides on a window update without writing it, ``conn_shutdown``/``conn_close``/``conn_abort``
# write their CDC at once; the peer processes a CDC only at its ``tasklet`` step.
_STEP_OPS: tuple[OpInfo, ...] = (
    _op(
        "conn_open_steps",
        Capability.CONN_STEPS,
        ("mode", "dmb_size", "sndbuf_size"),
        ("a", "b"),
        "open a connected pair whose internal steps run only through conn_step",
        handles=("a", "b"),
    ),
    _op(
        "conn_step",
        Capability.CONN_STEPS,
        ("conn", "step"),
        (),
        "one internal step of an endpoint of a conn_open_steps pair: 'move' (smc_tx_rdma_writes, "
        "no CDC), 'cdc' (write the CDC that is due: after a move, or the window update "
        "smc_tx_consumer_update decided on), 'tasklet' (process the CDC waiting in the "
        "endpoint's DMB, smcd_cdc_rx_tsklet); nothing to do -> EAGAIN",
        handle_args=("conn",),
    ),
    _op(
        "lgr_conn_create",
        Capability.LINK_GROUP,
        ("role", "peer_gid", "peer_gid_ext", "vlan", "first_contact_peer"),
        ("lgr", "first_contact"),
        "smc_conn_create on the target's SMC-D device for a new connection ('client' or "
        "'server') to the peer with GID (peer_gid, peer_gid_ext): the link group it joins (a "
        "handle: equal handles = the same link group) and whether it is new (first contact); "
        "a client whose peer announced first contact (first_contact_peer) always creates one, "
        "one without it that finds none is refused ENOENT (SMC_CLC_DECL_SYNCERR)",
        handles=("lgr",),
    ),
)
#: the ``step`` values of ``conn_step``
CONN_STEP_KINDS: tuple[str, ...] = ("move", "cdc", "tasklet")
OPS = {**OPS, **{info.name: info for info in _STEP_OPS}}



# --- protocol 3: link groups and the connections' own DMBs (issue 12, part 2). Kept apart from
# the blocks above so that vocabulary extensions by others merge without touching each other.
_L = Capability.LGR
_LGR_OPS: tuple[OpInfo, ...] = (
    _op(
        "lgr_of",
        _L,
        ("conn",),
        ("lgr", "first_contact", "state", "conns_num"),
        "the link group of an endpoint (conn->lgr): its handle, whether this endpoint created "
        "it (ini->first_contact_local), its state (listed / freeing / gone) and conns_num",
        handles=("lgr",),
        handle_args=("conn",),
    ),
    _op(
        "lgr_dmb",
        _L,
        ("conn",),
        ("token", "sba_idx", "len", "refcnt", "used"),
        "the endpoint's own DMB (conn->rmb_desc) as its device sees it: token, slot, length, "
        "reference count (0 once unregistered) and the descriptor's used flag",
        handles=("token",),
        handle_args=("conn",),
    ),
    _op(
        "lgr_dev",
        _L,
        ("mode",),
        ("dmb_cnt", "lgr_cnt", "listed"),
        "the counters of the connection device of `mode`: live DMBs (dmb_cnt), link groups not "
        "yet freed (smcd->lgr_cnt), link groups on its lgr_list",
    ),
    _op(
        "lgr_terminate",
        _L,
        ("lgr",),
        (),
        "terminate a link group (smc_lgr_terminate_sched + __smc_lgr_terminate): kill every "
        "connection in it; unknown or freed link group -> EINVAL",
        handle_args=("lgr",),
    ),
    _op(
        "lgr_free_work",
        _L,
        ("lgr",),
        (),
        "the delayed free of a link group runs now (smc_lgr_free_work); none queued -> EAGAIN",
        handle_args=("lgr",),
    ),
    _op(
        "lgr_dev_remove",
        _L,
        ("mode",),
        (),
        "the connection device of `mode` goes away (smc_smcd_terminate_all): every link group "
        "on it is terminated; later conn_open in that mode -> ENODEV",
    ),
)
_CDC_OPS: tuple[OpInfo, ...] = (
    _op(
        "cdc_inject",
        Capability.CDC_INJECT,
        ("conn", "data"),
        ("accepted", "check"),
        "the peer writes `data` (32 bytes, hex) into the endpoint's DMB header and signals it "
        "(move_data sf=1); accepted, or refused by the named check (the endpoint then aborts)",
        handle_args=("conn",),
    ),
)
_STATE_OPS: tuple[OpInfo, ...] = (
    _op(
        "conn_state",
        Capability.CONN_STATE,
        ("conn",),
        ("sk_state", "sk_err", "sk_shutdown", "dead", "freed", "tx_flags", "rx_flags"),
        "the socket of an endpoint as smc_diag shows it: sk_state (SMC_*), sk_err, sk_shutdown, "
        "SOCK_DEAD, conn->freed, and the connection-state flags sent and received",
        handle_args=("conn",),
    ),
)
OPS = {**OPS, **{info.name: info for info in (*_LGR_OPS, *_CDC_OPS, *_STATE_OPS)}}

# --- issue 11: urgent data and both directions (kept apart, like the blocks above). A pair opened
# with ``conn_open_urg`` takes the ordinary conn_send / conn_recv / conn_cursors too.
_U = Capability.URGENT
_URG_OPS: tuple[OpInfo, ...] = (
    _op(
        "conn_open_urg",
        _U,  # and CONN_COPY / CONN_MERGED by its mode (needs())
        ("mode", "dmb_size", "sndbuf_size", "start"),
        ("a", "b"),
        "open a connected pair for urgent data and traffic both ways; every cursor of both "
        "directions starts as if `start` bytes had been sent and read each way (urg_curs stays "
        "(0, 0)), so a case reaches the ring wrap and the 16-bit wrap counter's overflow",
        handles=("a", "b"),
    ),
    _op(
        "conn_send_oob",
        _U,
        ("conn", "data"),
        ("n",),
        "non-blocking send(MSG_OOB) (smc_tx_sendmsg): the last byte is urgent; n accepted",
        handle_args=("conn",),
    ),
    _op(
        "conn_recv_oob",
        _U,
        ("conn", "max"),
        ("data",),
        "recv(MSG_OOB) (smc_rx_recv_urg): the urgent byte; SO_OOBINLINE set or no unread "
        "urgent byte -> EINVAL",
        handle_args=("conn",),
    ),
    _op(
        "conn_atmark",
        _U,
        ("conn",),
        ("atmark",),
        "ioctl(SIOCATMARK) (smc_ioctl): smc_curs_diff(cons, urg_curs) == 1",
        handle_args=("conn",),
    ),
    _op(
        "conn_set_oobinline",
        _U,
        ("conn", "on"),
        (),
        "setsockopt(SOL_SOCKET, SO_OOBINLINE, on) (sock_setsockopt: SOCK_URGINLINE)",
        handle_args=("conn",),
    ),
)
OPS = {**OPS, **{info.name: info for info in _URG_OPS}}

#: operations on an open pair whose capability is the pair's (how conn_open opened it)
PAIR_OPS: frozenset[str] = frozenset({"conn_send", "conn_recv", "conn_shutdown", "conn_close",
                                      "conn_abort", "conn_cursors"})


@dataclass(frozen=True, slots=True)
class Ref:
    """A reference to a handle bound by an earlier step: ``Ref("d1", "token")``."""

    bind: str
    key: str

    def to_json(self) -> dict[str, str]:
        return {"$ref": f"{self.bind}.{self.key}"}

    @staticmethod
    def from_json(value: Any) -> Ref | None:
        if isinstance(value, dict) and set(value) == {"$ref"} and isinstance(value["$ref"], str):
            bind, _, key = value["$ref"].partition(".")
            return Ref(bind, key)
        return None


class FrozenDict(tuple):  # type: ignore[type-arg]
    """A JSON object frozen as a sorted tuple of (key, value) pairs (hashable)."""

    __slots__ = ()


def _freeze(value: Any) -> Any:
    """JSON value -> hashable value: objects become FrozenDict, arrays tuples."""
    if isinstance(value, dict):
        return FrozenDict(sorted((k, _freeze(v)) for k, v in value.items()))
    if isinstance(value, list):
        return tuple(_freeze(v) for v in value)
    return value


@dataclass(frozen=True, slots=True, kw_only=True)
class Op:
    """One operation with its arguments (JSON values, or :class:`Ref` for handle arguments)."""

    name: str
    args: tuple[tuple[str, Any], ...] = ()

    def __post_init__(self) -> None:
        info = OPS.get(self.name)
        if info is None:
            raise ValueError(f"unknown operation {self.name!r}; known: {', '.join(OPS)}")
        given = [k for k, _ in self.args]
        missing = [a for a in info.args if a not in given]
        extra = [a for a in given if a not in info.args]
        if missing or extra:
            raise ValueError(
                f"operation {self.name}: missing arguments {missing}, unexpected {extra}"
            )

    @staticmethod
    def make(name: str, **args: Any) -> Op:
        """Build an operation from keyword arguments (lists become tuples to stay hashable)."""
        return Op(name=name, args=tuple(sorted((k, _freeze_arg(v)) for k, v in args.items())))

    @property
    def info(self) -> OpInfo:
        return OPS[self.name]

    @property
    def capability(self) -> Capability:
        """The capability this operation needs.

        ``conn_open`` needs CONN_MERGED in merged mode; the other ``conn_*`` operations need
        whatever opened the connection (reported here as CONN_COPY; :func:`needs` skips them).
        """
        if self.name == "conn_open" and self.arg("mode") == "merged":
            return Capability.CONN_MERGED
        return self.info.capability

    def arg(self, name: str) -> Any:
        for k, v in self.args:
            if k == name:
                return v
        raise KeyError(name)

    def kwargs(self) -> dict[str, Any]:
        """The arguments as a JSON-ready dict (tuples become lists)."""
        return {k: _thaw(v) for k, v in self.args}

    def refs(self) -> list[Ref]:
        return [v for _, v in self.args if isinstance(v, Ref)]

    def to_json(self) -> dict[str, Any]:
        return {
            "op": self.name,
            "args": {
                k: (v.to_json() if isinstance(v, Ref) else _thaw(v)) for k, v in self.args
            },
        }

    @staticmethod
    def from_json(data: Mapping[str, Any]) -> Op:
        args = {}
        for k, v in dict(data.get("args", {})).items():
            ref = Ref.from_json(v)
            args[k] = ref if ref is not None else v
        return Op.make(str(data["op"]), **args)

    def describe(self) -> str:
        """``name(arg=value, ...)`` with long byte strings shortened."""
        parts = []
        for k, v in self.args:
            if isinstance(v, Ref):
                text = f"{v.bind}.{v.key}"
            elif isinstance(v, str) and len(v) > 24:
                text = f"{v[:16]}..({len(v) // 2}B)"
            else:
                text = json.dumps(_thaw(v))
            parts.append(f"{k}={text}")
        return f"{self.name}({', '.join(parts)})"


def _freeze_arg(value: Any) -> Any:
    if isinstance(value, Ref):
        return value
    return _freeze(value)


def _thaw(value: Any) -> Any:
    """The inverse of :func:`_freeze`."""
    if isinstance(value, FrozenDict):
        return {k: _thaw(v) for k, v in value}
    if isinstance(value, tuple):
        return [_thaw(v) for v in value]
    return value


@dataclass(frozen=True, slots=True, kw_only=True)
class Observation:
    """What the caller of an implementation sees after one operation.

    ``ok`` with a ``value`` (a JSON object), or a refusal with an ``error`` code (``EINVAL``...)
    and a free-text ``detail`` that is shown but never compared.
    """

    ok: bool
    value: Any = None
    error: str | None = None
    detail: str = ""

    @staticmethod
    def success(value: Mapping[str, Any] | None = None) -> Observation:
        return Observation(ok=True, value=_freeze(dict(value or {})))

    @staticmethod
    def failure(error: str, detail: str = "") -> Observation:
        return Observation(ok=False, error=error, detail=detail)

    def get(self, key: str) -> Any:
        """A key of a successful result (JSON form)."""
        if not self.ok:
            raise KeyError(f"{key} (the operation failed with {self.error})")
        for k, v in self.value or ():
            if k == key:
                return _thaw(v)
        raise KeyError(key)

    def to_json(self) -> dict[str, Any]:
        if self.ok:
            return {"ok": True, "result": _thaw(self.value) if self.value else {}}
        return {"ok": False, "error": self.error, "detail": self.detail}

    @staticmethod
    def from_json(data: Mapping[str, Any]) -> Observation:
        if data.get("ok"):
            result = data.get("result", {})
            return Observation.success(result if isinstance(result, dict) else {})
        return Observation.failure(str(data.get("error")), str(data.get("detail", "")))

    def describe(self) -> str:
        if self.ok:
            return json.dumps(_thaw(self.value) if self.value else {}, sort_keys=True)
        return f"error {self.error}"


class TargetError(Exception):
    """Base of the adapter's own errors."""


class TargetLoadError(TargetError):
    """The target spec is malformed or the target cannot be loaded (CLI exit 2)."""


class TargetBroken(TargetError):
    """The target stopped answering properly: crash, timeout, garbage, unexpected exception."""


@runtime_checkable
class Target(Protocol):
    """An implementation under test, as the conformance suite sees it.

    Attributes:
        name: a short label for reports (``model``, ``zoo:wrap-blind-diff``, ``cmd:...``).
        capabilities: the parts of the stack this target implements.
    """

    name: str
    capabilities: frozenset[Capability]

    def reset(self) -> None:
        """Forget every device, DMB, connection and endpoint (a fresh start for the next case).

        Raises:
            TargetBroken: the target could not be reset (the runner then gives up on it).
        """

    def apply(self, op: Op) -> Observation:
        """Perform ``op`` (its handle arguments already resolved to raw values).

        Returns:
            What the caller sees: success with a value or a refusal with an errno-like code.

        Raises:
            TargetBroken: the target crashed, hung, or answered something that is no
                observation. The case is then an ERROR.
        """

    def close(self) -> None:
        """Release processes and other resources; the target is not used afterwards."""


@dataclass(slots=True)
class TargetInfo:
    """Description of a loaded target (printed in report headers)."""

    name: str
    capabilities: frozenset[Capability]
    details: dict[str, str] = field(default_factory=dict)


def needs(ops: Any) -> frozenset[Capability]:
    """The capabilities a sequence of operations needs (connections: by how they are opened)."""
    found: set[Capability] = set()
    for op in ops:
        if op.name in ("conn_open_steps", "conn_open_urg"):  # needs its mode as well
            found.add(Capability.CONN_MERGED if op.arg("mode") == "merged"
                      else Capability.CONN_COPY)
        elif op.name in PAIR_OPS:
            continue
        found.add(op.capability)
    return frozenset(found)


def capabilities_json(caps: frozenset[Capability]) -> list[str]:
    return sorted(c.value for c in caps)
