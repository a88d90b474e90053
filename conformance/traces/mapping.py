"""From the explorer's system actions to adapter operations, and back to the recorded state.

Theory of operation
-------------------
An explorer trace is a path of :mod:`smcd_check.spec.system` actions over tiny rings (a slot is
one abstract byte, the wrap counter a few bits wide). An implementation is driven through the
adapter with real SMC-D sizes. :data:`ACTION_TABLE` says, for every action kind the system has
(``ClientConnect``, ``ClcDeliver(to=server)``, ``DataStep.WriterMoveData``,
``LifeStep.HostUnregisterDmb``, ...), which operations make a target do the same, per lens and
route (see :mod:`.plans`):

* ``datapath/steps`` - exact: the application's calls (``conn_send``, ``conn_recv``,
  ``conn_shutdown``, ``conn_close``, ``conn_abort``) and every internal step as ``conn_step``
  (``move``: ``smc_tx_rdma_writes``; ``cdc``: ``smcd_cdc_msg_send`` or the window update;
  ``tasklet``: ``smcd_cdc_rx_tsklet``) on a pair opened with ``conn_open_steps``. Needs
  ``conn-steps`` (a white-box target: the spec, the model).
* ``datapath/socket`` - the application's calls only. The target moves, announces and processes
  CDCs by itself, at once (``smc_tx_sendmsg`` pushes; the peer's tasklet runs). Where the trace
  takes an application call while an internal step is still pending, the target cannot hold it
  back: the plan's notes name the step and what the target runs first. Needs only the mode's
  capability (``conn-merged`` / ``conn-copy``), so it runs on the kernel.
* ``link-group`` - which link group ``smc_conn_create`` joins for each connection host 0
  creates (``lgr_conn_create`` with the peer's GID; equal handles are the same link group).
  Needs ``link-group``.
* ``device`` - the loopback-ism DMB table: every DMB the lifecycle registers, every ghost
  attach and detach and every unregister becomes the device operation, and after each change
  every DMB seen so far is read back (``dev_read_dmb``): a ghost that points at released memory
  shows as a refused read where the spec still reads. Needs ``device`` (+ ``device-nocopy``).

The handshake of a pair becomes ``conn_open`` (or ``conn_open_steps``) at the step where both
ends are established in the lifecycle: the adapter opens a pair in one call, and the CLC
bytes are the catalogue's handshake area's business. Sizes: the DMB is 16 KiB (a ring of
16,352 bytes), one abstract slot is ``16352 / ring_size`` bytes; the copy-mode sndbuf is 16 KiB.

Observations back to the trace: after every operation the plan reads ``conn_cursors`` of both
open endpoints; :func:`project` turns them into the abstract units of the recorded state
(``w_prod``, ``w_rx_cons``, ``sndbuf_space``, ``peer_rmbe_space``, ``r_cons``, ``r_rx_prod``,
``bytes_to_rcv``: bytes / slot, wrap modulo ``2**wrap_bits``), so a report can say whether a
target follows the recorded (faulty) path.

An action kind missing from the table (a new system action, e.g. a second data direction) makes
the lens that needs it unmapped, naming the action: replay says UNSUPPORTED, it never guesses.
Which lens a property belongs to is :func:`lens_of`.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from smcd_check.conformance.runner.run import Step
from smcd_check.conformance.targets.adapter import Capability, Op, Ref
from smcd_check.conformance.traces.plans import Plan, Unmapped

#: adapter sizes: a 16 KiB DMB (ring = 16 KiB - the 32-byte CDC header) and a 16 KiB sndbuf
DMB_SIZE = 16384
RING_BYTES = DMB_SIZE - 32
SNDBUF_SIZE = 16384

_CAP_MODE = {"merged": Capability.CONN_MERGED, "copy": Capability.CONN_COPY}
#: the settle phase of a steps plan: rounds of every internal step, in the data's direction
SETTLE_ROUNDS = 2
_SETTLE = (("a", "move"), ("a", "cdc"), ("b", "tasklet"), ("b", "cdc"), ("a", "tasklet"))


class MappingError(ValueError):
    """The trace cannot be mapped at all (it does not replay on the spec, or is no system
    trace)."""


# ------------------------------------------------------------------------------ the table


@dataclass(frozen=True, slots=True)
class Row:
    """How one action kind reaches a target.

    Attributes:
        kind: the system's action kind (``System.action_kind``).
        api: what the application does on a target (``conn_send`` ...), or "" for an internal
            step of the implementation.
        step: the ``conn_step`` kind forcing an internal step (steps route), or "".
        side: the endpoint it acts on: ``a`` (client, writer), ``b`` (server, reader), ``conn``
            (the lifecycle action's connection), or "" (no endpoint).
        source: the kernel function, for the notes.
    """

    kind: str
    api: str = ""
    step: str = ""
    side: str = ""
    source: str = ""


def _rows(*rows: Row) -> dict[str, Row]:
    return {r.kind: r for r in rows}


#: Every action kind of the system and how a target does the same (see the module docstring).
#: Handshake kinds open the pair once both ends are established; lifecycle kinds without an
#: endpoint are the implementation's own work (visible through the device lens).
ACTION_TABLE: dict[str, Row] = _rows(
    Row("ClientConnect", source="__smc_connect"),
    Row("ServerListen", source="smc_listen_work"),
    Row("ClcDeliver(to=server)", source="smc_listen_work (CLC receive)"),
    Row("ClcDeliver(to=client)", source="__smc_connect (CLC receive)"),
    Row("DataStep.WriterAppWrite", api="conn_send", side="a", source="smc_tx_sendmsg"),
    Row("DataStep.WriterMoveData", step="move", side="a", source="smc_tx_rdma_writes"),
    Row("DataStep.WriterSendCdc", step="cdc", side="a", source="smcd_cdc_msg_send"),
    Row("DataStep.WriterRecvCdc", step="tasklet", side="a", source="smcd_cdc_rx_tsklet"),
    Row("DataStep.WriterShutdownWrite", api="conn_shutdown", side="a",
        source="smc_close_shutdown_write"),
    Row("DataStep.WriterClose", api="conn_close", side="a", source="smc_close_active"),
    Row("DataStep.WriterAbort", api="conn_abort", side="a", source="smc_close_abort"),
    Row("DataStep.ReaderRecvCdc", step="tasklet", side="b", source="smcd_cdc_rx_tsklet"),
    Row("DataStep.ReaderRead", api="conn_recv", side="b", source="smc_rx_recvmsg"),
    Row("DataStep.ReaderSendConsUpdate", step="cdc", side="b",
        source="smc_tx_consumer_update"),
    Row("DataStep.ReaderClose", api="conn_close", side="b", source="smc_close_active"),
    Row("DataStep.ReaderAbort", api="conn_abort", side="b", source="smc_close_abort"),
    Row("LifeStep.ConnShutdown", api="conn_shutdown", side="conn", source="smc_shutdown"),
    Row("LifeStep.ConnClose", api="conn_close", side="conn", source="smc_release"),
    Row("LifeStep.ConnAbort", api="conn_abort", side="conn", source="smc_conn_kill"),
    Row("LifeStep.PeerDetachDmb", source="smcd_buf_detach (in smc_conn_free)"),
    Row("LifeStep.HostFreeConn", source="smc_conn_free"),
    Row("LifeStep.LgrFreeDelayed", source="smc_lgr_free_work"),
    Row("LifeStep.HostUnregisterDmb", source="smcd_buf_free -> smc_ism_unregister_dmb"),
    Row("LifeStep.LgrTerminate", source="smc_lgr_terminate_sched"),
    Row("LifeStep.LgrTerminateWork", source="__smc_lgr_terminate"),
)

#: lifecycle kinds whose effect reaches a socket but that no adapter operation can cause
_UNFORCEABLE_ON_SOCKETS = {
    "LifeStep.LgrTerminate": "a link-group termination (it kills the pair's connections): no "
                             "adapter operation terminates a link group yet",
    "LifeStep.LgrTerminateWork": "a link-group termination (it kills the pair's connections): "
                                 "no adapter operation terminates a link group yet",
}

#: lifecycle invariants the device lens observes (the rest is about link groups)
DEVICE_PROPERTIES = frozenset({
    "lifecycle: no DMB is used after it was unregistered and released",
    "lifecycle: no ghost sndbuf points at released memory",
    "lifecycle: tokens are unique among live DMBs",
    "lifecycle: the slot count stays within the device limit",
    "lifecycle: reference counts are never negative",
    "lifecycle: every DMB reference count equals its holders",
    "lifecycle: a ghost keeps a DMB alive after its owner unregistered it",
})


def lens_of(property_name: str, property_kind: str, has_data: bool) -> str:
    """The lens that observes ``property_name``: ``datapath``, ``device``, ``link-group`` or
    ``handshake`` (the last two have no operations yet)."""
    if property_name.startswith("data path:"):
        return "datapath"
    if property_name in DEVICE_PROPERTIES:
        return "device"
    if property_name.startswith("lifecycle:"):
        return "link-group"
    if property_name.startswith("handshake:"):
        return "handshake"
    return "datapath" if has_data else "device"


# ------------------------------------------------------------------------------ translation


@dataclass(slots=True)
class Translation:
    """The plans of one explorer trace, what could not be mapped, and the required lens."""

    plans: list[Plan]
    unmapped: list[Unmapped]
    required_lens: str
    #: the spec states along the trace (initial first) and the actions
    states: list[Any] = field(default_factory=list)
    actions: list[Any] = field(default_factory=list)
    model: Any = None


def translate(trace: Any, *, expectations: bool = True) -> Translation:
    """Build the plans of an explorer trace (an :class:`smcd_check.explorer.trace.Trace`).

    The trace is first replayed on the spec (its own config and fault): every recorded step
    must replay, since the mapping reads the spec's states along it.

    Raises:
        MappingError: the trace does not replay on the spec (the spec changed since).
        smcd_check.explorer.trace.TraceFormatError: malformed trace.
    """
    from smcd_check.explorer.trace import replay_trace

    result = replay_trace(trace)
    if result.steps_replayed < result.total_steps:
        raise MappingError(f"the trace does not replay on the spec: {result.message}")
    from smcd_check.explorer.trace import build_model

    model = build_model(trace.model, trace.config, trace.fault)
    states, actions = result.states, result.actions
    has_data = any(type(a).__name__ == "DataStep" for a in actions)
    required = lens_of(trace.property_name, trace.property_kind, has_data)
    plans: list[Plan] = []
    unmapped: list[Unmapped] = []
    kinds = [model.action_kind(a) for a in actions]
    unknown = sorted({k for k in kinds if k not in ACTION_TABLE})
    if unknown:
        where = [i + 1 for i, k in enumerate(kinds) if k in unknown]
        reason = (f"no mapping to adapter operations for action kind(s) {', '.join(unknown)} "
                  f"(trace step(s) {', '.join(map(str, where[:5]))})")
        unmapped += [Unmapped(lens, reason) for lens in ("datapath", "device")]
    else:
        for route in ("steps", "socket"):
            built = _DatapathBuilder(model, route).build(states, actions, kinds)
            if isinstance(built, Plan):
                built.required = required == "datapath"
                plans.append(built)
            elif built is not None:
                unmapped.append(built)
        device = _device_plan(model, states, actions)
        if isinstance(device, Plan):
            device.required = required == "device"
            plans.append(device)
        elif device is not None:
            unmapped.append(device)
        groups = _lgr_plan(states)
        if groups is not None:
            groups.required = required == "link-group"
            plans.append(groups)
    if required == "handshake" or (required == "link-group"
                                   and not any(p.lens == "link-group" for p in plans)):
        what = required.replace("-", " ")
        unmapped.append(Unmapped(required, f"the property {trace.property_name!r} is about "
                                 f"{what}s, which no adapter operation observes yet"))
    if expectations:
        kept: list[Plan] = []
        for plan in plans:
            why = _expect(plan)
            if why is None:
                kept.append(plan)
            else:
                unmapped.append(Unmapped(plan.lens, f"{plan.route} route: {why}",
                                         tuple(sorted(c.value for c in plan.needs))))
        plans = kept
    return Translation(plans=plans, unmapped=unmapped, required_lens=required, states=states,
                       actions=actions, model=model)


def _expect(plan: Plan) -> str | None:
    from smcd_check.conformance.traces.plans import compute_expectations

    return compute_expectations(plan)


def _mode(state: Any) -> str:
    return "merged" if state.mode.name == "MERGED" else "copy"


def pattern(start: int, n: int) -> bytes:
    """Bytes ``start .. start + n`` of the stream a plan sends (position-dependent, so a byte
    read from the wrong place or lap shows)."""
    return bytes(((i * 7) + (i >> 8) + 1) & 0xFF for i in range(start, start + n))


class _DatapathBuilder:
    """Builds the datapath plan of one route (``steps`` or ``socket``)."""

    def __init__(self, model: Any, route: str) -> None:
        self.model = model
        self.cfg = model.cfg
        self.route = route
        self.steps: list[Step] = []
        self.origins: list[int | None] = []
        self.notes: list[str] = []
        self.opened: dict[int, str] = {}
        self.gone: set[tuple[int, str]] = set()
        self.pos: dict[int, int] = {}
        self.needs: set[Capability] = set()

    def _emit(self, origin: int, name: str, bind: str | None = None, **args: Any) -> None:
        self.steps.append(Step(op=Op.make(name, **args), bind=bind))
        self.origins.append(origin)

    def _observe(self, origin: int, pair: int) -> None:
        b = self.opened[pair]
        for side in ("a", "b"):
            if (pair, side) not in self.gone:
                self._emit(origin, "conn_cursors", conn=Ref(b, side))

    def build(self, states: list[Any], actions: list[Any], kinds: list[str]
              ) -> Plan | Unmapped | None:
        from smcd_check.spec import datapath as dp

        first = states[0]
        mode = _mode(first)
        ring = self.cfg.datapath(first.mode).ring_size
        if RING_BYTES % ring:
            return Unmapped("datapath", f"ring_size {ring} does not divide the {RING_BYTES}-byte "
                                        "ring of a 16 KiB DMB")
        slot = RING_BYTES // ring
        self.needs.add(_CAP_MODE[mode])
        if self.route == "steps":
            self.needs.add(Capability.CONN_STEPS)
        opener = "conn_open_steps" if self.route == "steps" else "conn_open"
        for k, (s, a, t, kind) in enumerate(zip(states, actions, states[1:], kinds,
                                                 strict=False), start=1):
            row = ACTION_TABLE[kind]
            for p in range(self.cfg.n_pairs):
                if p not in self.opened and self.model._established(t, p) and \
                        not self.model._established(s, p):
                    self.opened[p] = f"p{p}"
                    self._emit(k, opener, bind=f"p{p}", mode=mode, dmb_size=DMB_SIZE,
                               sndbuf_size=SNDBUF_SIZE if mode == "copy" else 0)
                    self._observe(k, p)
            if kind in _UNFORCEABLE_ON_SOCKETS:
                return Unmapped("datapath", f"trace step {k} ({self.model.action_label(a)}): "
                                f"{_UNFORCEABLE_ON_SOCKETS[kind]}")
            if not (row.api or row.step):
                continue  # handshake (opened above) or the implementation's own teardown work
            pair, side = self._endpoint(a, row)
            if pair not in self.opened:
                return Unmapped("datapath", f"trace step {k} ({self.model.action_label(a)}): "
                                "acts on a pair that was never established")
            handle = Ref(self.opened[pair], side)
            if row.step:
                if self.route == "steps":
                    self._emit(k, "conn_step", conn=handle, step=row.step)
                    self._observe(k, pair)
                continue  # socket route: the target takes it by itself (checked at API calls)
            if self.route == "socket":
                self._note_pending(k, s, a, pair, dp)
            inner = a.action if hasattr(a, "action") else a
            if row.api == "conn_send":
                n = inner.n * slot
                start = self.pos.get(pair, 0)
                self.pos[pair] = start + n
                self._emit(k, "conn_send", conn=handle, data=pattern(start, n).hex())
            elif row.api == "conn_recv":
                self._emit(k, "conn_recv", conn=handle, max=inner.n * slot)
            else:
                self._emit(k, row.api, conn=handle)
                if row.api in ("conn_close", "conn_abort"):
                    self.gone.add((pair, side))
            self._observe(k, pair)
        if not self.opened:
            return None  # no pair was ever established: nothing for the datapath lens
        end = len(actions) + 1
        if self.route == "socket":
            self._note_pending(end, states[-1], None, None, dp)
        else:
            # settle: after the trace, the implementation does what it would do by itself (a
            # deadlock trace ends where the faulty spec has nothing left to do: the settle
            # shows whether the target does something there)
            for pair, bind in sorted(self.opened.items()):
                for _round in range(SETTLE_ROUNDS):
                    for side, kind in _SETTLE:
                        self._emit(end, "conn_step", conn=Ref(bind, side), step=kind)
                self._observe(end, pair)
            self.notes.append(f"after the last trace step the plan lets each pair settle: "
                              f"{SETTLE_ROUNDS} rounds of every internal step (trace step "
                              f"{end} in the origins)")
        return Plan(lens="datapath", route=self.route, needs=frozenset(self.needs),
                    required=False, steps=self.steps, origins=self.origins, notes=self.notes)

    def _endpoint(self, a: Any, row: Row) -> tuple[int, str]:
        if row.side == "conn":
            cid = a.action.conn
            return cid >> 1, "b" if cid & 1 else "a"
        return a.pair, row.side

    def _note_pending(self, k: int, s: Any, a: Any, pair: int | None, dp: Any) -> None:
        """The socket route cannot hold internal steps back: name those the trace leaves
        pending at an application call (the target runs them first), or at the end."""
        internal = (dp.WriterMoveData, dp.WriterSendCdc, dp.ReaderRecvCdc,
                    dp.ReaderSendConsUpdate, dp.WriterRecvCdc)
        for q, d in zip(self.cfg.data_pairs, s.data, strict=True):
            if (pair is not None and q != pair) or q not in self.opened:
                continue
            dcfg = self.cfg.datapath(s.mode)
            pending = [type(x).__name__ for x in dp.enabled_actions(dcfg, d)
                       if isinstance(x, internal)]
            if not pending:
                continue
            if a is None:
                self.notes.append(f"after the last trace step the target also runs "
                                  f"{', '.join(pending)} of pair {q} (its own internal steps)")
            else:
                self.notes.append(
                    f"trace step {k} ({self.model.action_label(a)}) comes while "
                    f"{', '.join(pending)} of pair {q} is pending: the target has already run "
                    "it inside its previous call (without conn-steps it cannot hold internal "
                    "steps back), so this interleaving is not forced")


def _device_plan(model: Any, states: list[Any], actions: list[Any]) -> Plan | Unmapped | None:
    del actions  # the device lens reads the lifecycle part of the states only
    """The device lens: the lifecycle's DMB registrations, ghost attaches/detaches and
    unregisters on host 0's loopback-ism device, each followed by reading back every DMB."""
    cfg = model.cfg
    if cfg.ism:
        return Unmapped("device", "native ISM devices (one per host): the adapter's device is "
                                  "one loopback-ism")
    steps: list[Step] = []
    origins: list[int | None] = []
    bound: dict[int, str] = {}  # lifecycle token -> binding name
    needs = {Capability.DEVICE}

    def emit(k: int, name: str, bind: str | None = None, **args: Any) -> None:
        steps.append(Step(op=Op.make(name, **args), bind=bind))
        origins.append(k)

    for k, (s, t) in enumerate(itertools.pairwise(states), start=1):
        before, after = s.lc, t.lc
        changed = False
        old_nodes = {(n.dev, n.token): n for n in before.nodes}
        new_nodes = {(n.dev, n.token): n for n in after.nodes}
        for key, node in new_nodes.items():
            if key not in old_nodes and node.dev == 0 and node.owned:
                name = f"d{len(bound)}"
                bound[node.token] = name
                emit(k, "dev_register_dmb", bind=name, size=DMB_SIZE << node.size)
                changed = True
        ghosts_before = {c.cid: c.ghost_token for c in before.conns}
        for c in after.conns:
            old = ghosts_before.get(c.cid)
            if c.ghost_token is not None and old is None and c.ghost_token in bound:
                emit(k, "dev_attach_dmb", token=Ref(bound[c.ghost_token], "token"))
                needs.add(Capability.DEVICE_NOCOPY)
                changed = True
        for c in after.conns:
            old = ghosts_before.get(c.cid)
            if old is not None and c.ghost_token is None and old in bound:
                emit(k, "dev_detach_dmb", token=Ref(bound[old], "token"))
                needs.add(Capability.DEVICE_NOCOPY)
                changed = True
        for key, node in old_nodes.items():
            after_node = new_nodes.get(key)
            if node.owned and (after_node is None or not after_node.owned) and \
                    node.token in bound:
                emit(k, "dev_unregister_dmb", token=Ref(bound[node.token], "token"))
                changed = True
        if changed:
            for name in bound.values():
                emit(k, "dev_read_dmb", token=Ref(name, "token"), offset=0, size=8)
    if not steps:
        return None
    return Plan(lens="device", route="device", needs=frozenset(needs), required=False,
                steps=steps, origins=origins,
                notes=["DMB registrations, ghost attaches and detaches and unregisters of the "
                       "lifecycle on host 0, each followed by reading back every DMB"])


def _lgr_plan(states: list[Any]) -> Plan | None:
    """The link-group lens: every connection host 0 creates (``smc_conn_create``) as
    ``lgr_conn_create`` with its peer's GID; the answer says which link group it joins (equal
    handles = the same one) and whether it is new."""
    steps: list[Step] = []
    origins: list[int | None] = []
    for k, (s, t) in enumerate(itertools.pairwise(states), start=1):
        known = {c.cid for c in s.lc.conns}
        for c in t.lc.conns:
            if c.cid in known or c.host != 0:
                continue
            client = c.role.name == "CLNT"
            steps.append(Step(op=Op.make(
                "lgr_conn_create", role="client" if client else "server",
                peer_gid=c.peer_gid, peer_gid_ext=c.peer_gid_ext, vlan=c.vlan_id,
                first_contact_peer=bool(client and c.first_contact))))
            origins.append(k)
    if not steps:
        return None
    return Plan(lens="link-group", route="link-group", needs=frozenset({Capability.LINK_GROUP}),
                required=False, steps=steps, origins=origins,
                notes=["every connection host 0 creates, as smc_conn_create on the target's "
                       "device with the peer's GID: which link group it joins"])


# ------------------------------------------------------------------------------ projection

#: conn_cursors keys of the writer (a) and the reader (b) -> the data path's state fields
_WRITER_FIELDS = {"prod": "w_prod", "peer_cons": "w_rx_cons", "sndbuf_space": "sndbuf_space",
                  "peer_rmbe_space": "peer_rmbe_space"}
_READER_FIELDS = {"cons": "r_cons", "peer_prod": "r_rx_prod", "bytes_to_rcv": "bytes_to_rcv"}


def project(result: dict[str, Any], side: str, *, slot: int, wrap_bits: int,
            sndbuf_extra: int = 0) -> dict[str, Any]:
    """A ``conn_cursors`` result in the recorded state's units: ``{field: value}`` with byte
    counts divided by ``slot`` and cursors as ``[wrap mod 2**wrap_bits, count / slot]``;
    a value that is not a whole number of slots stays as a string (``"8177 bytes"``), so it
    never equals a recorded value by accident."""
    fields = _WRITER_FIELDS if side == "a" else _READER_FIELDS
    out: dict[str, Any] = {}
    for key, name in fields.items():
        value = result.get(key)
        if isinstance(value, list) and len(value) == 2:
            wrap, count = value
            out[name] = ([wrap % (1 << wrap_bits), count // slot] if count % slot == 0
                         else f"({wrap},{count}) bytes")
        elif isinstance(value, int):
            v = value - (sndbuf_extra if name == "sndbuf_space" else 0)
            out[name] = v // slot if v % slot == 0 else f"{value} bytes"
    return out


def recorded(state_json: Any, data_index: int, side: str) -> dict[str, Any]:
    """The same fields of a recorded system state (its ``to_json`` form)."""
    fields = _WRITER_FIELDS if side == "a" else _READER_FIELDS
    try:
        d = state_json["data"][data_index]
    except (KeyError, IndexError, TypeError):
        return {}
    out: dict[str, Any] = {}
    for name in fields.values():
        v = d.get(name)
        if isinstance(v, dict) and "wrap" in v:
            out[name] = [v["wrap"], v["count"]]
        elif v is not None:
            out[name] = v
    return out


Projector = Callable[[dict[str, Any], str], dict[str, Any]]
