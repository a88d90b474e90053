"""Named system configurations (the equivalent of TLA+ ``MC*.cfg`` files).

Each preset bounds the composed system of :mod:`.system`: which data-path modes are explored
(one initial state per mode), how many socket pairs and which carry data, the DMB data ring
in slots (one slot = one byte of the abstract ring), the chunk sizes, the cursor wrap width
(``wrap_bits``: the wrap counter runs mod ``2**wrap_bits``, so a small value makes wrap-around
reachable), the CDC channel capacity, and whether close / abort / link-group errors race with
data. The spec code never hard-codes these numbers.

``reachable`` is the number of reachable states of the clean spec, pinned by the tests for the
small presets (an unexplained change fails CI) and printed by ``smcd-check explore
--list-configs``; None means "not pinned" (too big for the test budget).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Final

from smcd_check.spec.datapath import Mode
from smcd_check.spec.faults import Fault, parse_fault
from smcd_check.spec.system import System, SystemConfig


@dataclass(frozen=True, slots=True, kw_only=True)
class Preset:
    """A named configuration with its description and pinned state count."""

    name: str
    description: str
    config: SystemConfig
    #: reachable states of the clean spec (None: not pinned); with symmetric pairs, the
    #: orbits the default (reduced) search stores
    reachable: int | None = None
    #: with symmetric pairs: the reachable states without the reduction (``--no-symmetry``)
    reachable_full: int | None = None
    #: the property the clean spec violates in this config because it follows the kernel
    #: there (a kernel finding, explained in the README); None: the clean spec passes
    finding: str | None = None


BOTH: Final = (Mode.MERGED, Mode.COPY)


def _duplex(**changes: object) -> SystemConfig:
    """A full-duplex config: one pair, merged mode, 1-slot rings, 1-bit wrap, close on."""
    base: dict[str, object] = dict(
        modes=(Mode.MERGED,),
        n_pairs=1,
        ring_size=1,
        max_chunk=1,
        wrap_bits=1,
        chan_cap=1,
        close_enabled=True,
        duplex=True,
    )
    base.update(changes)
    return SystemConfig(**base)  # type: ignore[arg-type]

PRESETS: Final[dict[str, Preset]] = {
    p.name: p
    for p in (
        Preset(
            name="tiny",
            description="merged mode, one pair, 1-slot ring, no close: handshake then data",
            config=SystemConfig(
                modes=(Mode.MERGED,),
                n_pairs=1,
                ring_size=1,
                max_chunk=1,
                wrap_bits=1,
                chan_cap=1,
                close_enabled=False,
            ),
            reachable=23,
        ),
        Preset(
            name="small",
            description="merged mode, one pair, 1-slot ring (every byte wraps), close and "
            "teardown (seconds)",
            config=SystemConfig(
                modes=(Mode.MERGED,),
                n_pairs=1,
                ring_size=1,
                max_chunk=1,
                wrap_bits=1,
                chan_cap=1,
                close_enabled=True,
            ),
            reachable=3_352,
        ),
        Preset(
            name="ring2",
            description="both modes, one pair, 2-slot ring (bytes in flight while space is "
            "left), close",
            config=SystemConfig(
                modes=BOTH,
                n_pairs=1,
                ring_size=2,
                max_chunk=1,
                wrap_bits=1,
                chan_cap=1,
                close_enabled=True,
            ),
            reachable=35_678,
        ),
        Preset(
            name="abort",
            description="both modes, one pair, 1-slot ring, close and abort race with data",
            config=SystemConfig(
                modes=BOTH,
                n_pairs=1,
                ring_size=1,
                max_chunk=1,
                wrap_bits=1,
                chan_cap=1,
                close_enabled=True,
                abort_enabled=True,
            ),
            reachable=33_954,  # 33,562 before reads after a peer abort were allowed
        ),
        Preset(
            name="ism-peers",
            description="the two-ISM-device variant: native ISM, copy mode, host 0's device "
            "serves pairs from host 1, host 2 and host 1 again (one link group per peer; the "
            "third pair reuses the first's); handshakes and link groups only",
            config=SystemConfig(
                modes=(Mode.COPY,),
                ism=True,
                n_pairs=3,
                data_pairs=(),
                keep_open=(0, 1, 2),
                pair_links=((1, 0), (2, 0), (1, 0)),
                close_enabled=False,
            ),
            reachable=22,
        ),
        Preset(
            name="reference",
            description="both modes, two pairs sharing one link group (pair 1 connects after "
            "pair 0's handshake and stays open), pair 0 carries data through a 1-slot ring "
            "(every byte wraps), close and teardown race with data",
            config=SystemConfig(
                modes=BOTH,
                n_pairs=2,
                data_pairs=(0,),
                keep_open=(1,),
                ring_size=1,
                max_chunk=1,
                wrap_bits=1,
                chan_cap=1,
                close_enabled=True,
            ),
            reachable=72_203,
        ),
        Preset(
            name="trio",
            description="symmetry: both modes, three interchangeable pairs connecting at once "
            "on one link group and staying open (handshakes, lgr_pending, DMB allocation); "
            "one state per renaming of the pairs",
            config=SystemConfig(
                modes=BOTH,
                n_pairs=3,
                data_pairs=(),
                keep_open=(0, 1, 2),
                sequential_connect=False,
                symmetric_pairs=(0, 1, 2),
            ),
            reachable=736,
            reachable_full=4_156,
        ),
        Preset(
            name="quad",
            description="symmetry benchmark: merged mode, four interchangeable pairs "
            "connecting at once on one link group and staying open",
            config=SystemConfig(
                modes=(Mode.MERGED,),
                n_pairs=4,
                data_pairs=(),
                keep_open=(0, 1, 2, 3),
                sequential_connect=False,
                symmetric_pairs=(0, 1, 2, 3),
            ),
            reachable=4_146,
            reachable_full=96_289,
        ),
        Preset(
            name="large",
            description=("benchmark: the reference config with abort as well (about 5 CPU-s "
                         "sequential, bench/explore_bench.py)"),
            config=SystemConfig(
                modes=BOTH,
                n_pairs=2,
                data_pairs=(0,),
                keep_open=(1,),
                ring_size=1,
                max_chunk=1,
                wrap_bits=1,
                chan_cap=1,
                close_enabled=True,
                abort_enabled=True,
            ),
            # measured with `smcd-check explore --config large`; too slow to pin in the tests
            reachable=441_454,
        ),
        Preset(
            name="huge",
            description="benchmark: large with a 3-slot ring (bytes in flight beside free "
            "space): about 10^7 states, minutes (the cluster benchmark's config)",
            config=SystemConfig(
                modes=BOTH,
                n_pairs=2,
                data_pairs=(0,),
                keep_open=(1,),
                ring_size=3,
                max_chunk=1,
                wrap_bits=1,
                chan_cap=1,
                close_enabled=True,
                abort_enabled=True,
            ),
            # measured with `smcd-check explore --config huge --workers 1` (74 CPU-s, 872 MiB
            # peak RSS); far too slow to pin in the tests
            reachable=8_905_382,
        ),
        Preset(
            name="duplex",
            description="full duplex: both modes, one pair, both ends write and read through "
            "1-slot rings (every byte wraps, the wrap counter overflows every 2 bytes), one CDC "
            "type carrying prod and cons both ways, close and teardown",
            config=_duplex(modes=BOTH),
            reachable=194_949,
        ),
        Preset(
            name="duplex-open",
            description="full duplex, merged mode, 1-slot rings, no close: the window updates "
            "alone keep both directions going (liveness)",
            config=_duplex(close_enabled=False),
            reachable=3_158,
        ),
        Preset(
            name="urgent",
            description="urgent data client -> server, no SO_OOBINLINE, the reader takes urgent "
            "data out of band first (recv(MSG_OOB) on POLLPRI), merged mode, 1-slot rings, close",
            config=_duplex(senders=(0,), urgent=True, oob_first=True),
            reachable=12_086,
        ),
        Preset(
            name="urgent-inline",
            description="urgent data with SO_OOBINLINE: the urgent byte is read in band, the "
            "reader stops at the mark; merged mode, 1-slot rings, close",
            config=_duplex(senders=(0,), urgent=True, oobinline=True),
            reachable=29_646,
        ),
        Preset(
            name="urgent-open",
            description="urgent-inline without close: nothing ends the connection, so a stalled "
            "sender is a deadlock",
            config=_duplex(senders=(0,), urgent=True, oobinline=True, close_enabled=False),
            reachable=114,
        ),
        Preset(
            name="urgent-ring2",
            description="the urgent config with 2-slot rings: bytes can follow the urgent byte "
            "into the sndbuf while it is staged",
            config=_duplex(senders=(0,), urgent=True, oob_first=True, ring_size=2),
            reachable=None,
        ),
        Preset(
            name="urgent-ignored",
            description="kernel finding: urgent data without SO_OOBINLINE that the reader never "
            "takes out of band; at the wrap-counter overflow smc_curs_comp says a later data "
            "byte is the urgent one and smc_rx_update_consumer skips it",
            config=_duplex(senders=(0,), urgent=True),
            finding="data path: no byte is delivered twice or lost, in either direction",
        ),
        Preset(
            name="urgent-oob-open",
            description="kernel finding: recv(MSG_OOB) with the urgent byte the only unread "
            "byte marks it READ without skipping it (smc_rx_recv_urg): cons never passes it, "
            "urg_tx_pend is never cleared, both ends wait forever",
            config=_duplex(senders=(0,), urgent=True, oob_first=True, close_enabled=False),
            finding="no deadlock: every non-final state has an enabled action",
        ),
    )
}

DEFAULT: Final = "reference"

#: the config ``explore --fault NAME`` uses when no ``--config`` is given: the default config
#: where the fault is reachable (a 1-slot ring has no room for bytes in flight beside free
#: space; a stalled writer is a deadlock only when it cannot close)
FAULT_CONFIGS: Final[dict[Fault, str]] = {
    Fault.MERGED_IGNORES_CONS: "reference",
    Fault.COMP_IGNORES_WRAP: "reference",
    Fault.UNREGISTER_WHILE_ATTACHED: "reference",
    Fault.SPACE_FORGETS_IN_FLIGHT: "ring2",
    Fault.NO_CONSUMER_UPDATE: "tiny",
    # needs one device with link groups to two different peers: native ISM (on loopback-ism
    # every link group of a device has the same peer)
    Fault.LGR_REUSE_PEER_MISMATCH: "ism-peers",
    # a sender stalled by the flag is a deadlock only when nothing closes the connection
    Fault.URG_FLAG_NOT_CLEARED: "urgent-open",
    # needs room in the sndbuf beside the staged urgent byte
    Fault.URG_NO_SEND_WAIT: "urgent-ring2",
}


def get_preset(name: str) -> Preset:
    """The preset called ``name``.

    Raises:
        KeyError: naming the unknown config and the known ones.
    """
    try:
        return PRESETS[name]
    except KeyError:
        raise KeyError(f"unknown config {name!r}; known configs: {', '.join(PRESETS)}") from None


def with_fault(cfg: SystemConfig, fault: Fault | None) -> SystemConfig:
    """``cfg`` with ``fault`` switched on (None: unchanged).

    A merged-mode-only fault keeps only the merged world (it does not exist in copy mode).
    """
    if fault is None:
        return cfg
    modes = cfg.modes
    if fault is Fault.MERGED_IGNORES_CONS:
        modes = tuple(m for m in modes if m is Mode.MERGED) or (Mode.MERGED,)
    return replace(cfg, modes=modes, faults=frozenset({fault}))


def build_system(config: str, fault: str | None = None, *, liveness: bool = False) -> System:
    """The :class:`System` for a preset name and an optional fault name (trace replay uses it).

    Raises:
        KeyError: unknown config; ValueError: unknown fault.
    """
    preset = get_preset(config)
    cfg = with_fault(preset.config, parse_fault(fault) if fault else None)
    if liveness:
        cfg = replace(cfg, liveness=True)
    return System(cfg, name=config)
