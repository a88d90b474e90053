"""Named faults: known-wrong behaviours that can be switched on in the spec, one per real bug class.

The explorer's ``--fault NAME`` switches one on (the Spin anchor does the same with ``-DBUG_*``),
and must then find a shortest counterexample; with no fault the spec must pass. A fault is part
of a module's configuration (a ``frozenset[Fault]`` field, empty by default) and each module
that owns a fault documents, at the place it is checked, which kernel behaviour it breaks.

Owners: the data path (``datapath``) owns the cursor and flow-control faults, the full-duplex
data path (``duplex``) the urgent-data faults, the lifecycle
(``lifecycle``) the DMB and link-group faults, the handshake (``handshake``) the CLC faults.
"""

from __future__ import annotations

import enum


class Fault(enum.Enum):
    """A known-wrong behaviour, named after the bug class it reintroduces."""

    #: merged mode: the writer ignores the peer's consumer cursor and writes whenever it wants
    #: (sndbuf_space never limits it), overwriting unconsumed data in the peer DMB.
    MERGED_IGNORES_CONS = "merged-ignores-cons"
    #: the writer's free-space computation forgets bytes already written but not yet announced
    #: (in flight), so it counts them as free twice.
    SPACE_FORGETS_IN_FLIGHT = "space-forgets-in-flight"
    #: a cursor comparison looks at count only and ignores wrap, so a full ring looks empty.
    COMP_IGNORES_WRAP = "comp-ignores-wrap"
    #: the reader never sends a consumer-cursor update (window update), so the writer stalls.
    NO_CONSUMER_UPDATE = "no-consumer-update"
    #: unregister_dmb frees the DMB memory while the peer is still attached (ghost sndbuf),
    #: ignoring the reference count.
    UNREGISTER_WHILE_ATTACHED = "unregister-while-attached"
    #: a new connection reuses a link group whose peer (GID / gid_ext) differs.
    LGR_REUSE_PEER_MISMATCH = "lgr-reuse-peer-mismatch"
    #: urgent data: smc_tx_sendmsg does not wait while urgent data is staged (urg_tx_pend), so
    #: bytes written after the urgent byte move with it and the mark lands on the wrong byte.
    URG_NO_SEND_WAIT = "urg-no-send-wait"
    #: urgent data: smcd_tx_sndbuf_nonempty does not clear urg_data_pending/urg_data_present
    #: after the CDC that carried the urgent byte, so later data is skipped or marked urgent.
    URG_FLAG_NOT_CLEARED = "urg-flag-not-cleared"

    @property
    def doc(self) -> str:
        """One line saying what the fault breaks (for ``--list-faults``)."""
        return _DOCS[self]


_DOCS: dict[Fault, str] = {
    Fault.MERGED_IGNORES_CONS: "merged-mode writer ignores the peer's consumer cursor",
    Fault.SPACE_FORGETS_IN_FLIGHT: "writer's space computation forgets bytes in flight",
    Fault.COMP_IGNORES_WRAP: "cursor comparison ignores the wrap counter",
    Fault.NO_CONSUMER_UPDATE: "reader never sends a consumer-cursor update",
    Fault.UNREGISTER_WHILE_ATTACHED: "DMB memory freed on unregister while the peer is attached",
    Fault.LGR_REUSE_PEER_MISMATCH: "link group reused although the peer differs",
    Fault.URG_NO_SEND_WAIT: "sendmsg does not wait while urgent data is staged (urg_tx_pend)",
    Fault.URG_FLAG_NOT_CLEARED: "urgent flags not cleared after the CDC carrying the urgent byte",
}


def parse_fault(name: str) -> Fault:
    """Return the fault called ``name`` (its value, e.g. ``merged-ignores-cons``).

    Raises:
        ValueError: naming the unknown fault and the known ones.
    """
    for fault in Fault:
        if fault.value == name or fault.name == name:
            return fault
    known = ", ".join(f.value for f in Fault)
    raise ValueError(f"unknown fault {name!r}; known faults: {known}")
