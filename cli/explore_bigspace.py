"""``smcd-check explore`` options for spaces too big to exhaust: bitstate, symmetry, checkpoints.

* ``--bitstate BITS [--hashes K]``: the visited set is a table of ``2**BITS`` bits, ``K`` bits
  per state (Spin's supertrace; :mod:`smcd_check.explorer.bitstate`). The run says it was not
  exhaustive and prints the probability of omission and the expected number of states missed.
* ``--symmetry / --no-symmetry``: one state per renaming of the config's interchangeable pairs
  (:mod:`smcd_check.explorer.symmetry`); on by default where the config declares them.
* ``--checkpoint FILE [--checkpoint-every S]`` / ``--resume FILE``: save the search every S
  seconds and when it stops early (bounds, Ctrl-C); continue it later with the same config
  and fault (:mod:`smcd_check.explorer.checkpoint`).

These run the exhaustive search's own engine (the options configure ``Explorer``); a
combination it does not support (bitstate with the state graph or several workers, ...) is
refused with one line, never answered with a wrong result. The modes run sequentially: when
``--workers`` is not given they use one worker.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import click

from smcd_check.cli.common import fail_input
from smcd_check.explorer.bitstate import BitstateError
from smcd_check.explorer.checkpoint import CheckpointError

#: the errors of a run in these modes that end it with a one-line message (exit 2)
RunError = (CheckpointError, BitstateError)

#: the option names this module owns, as click passes them
NAMES = ("bitstate", "hashes", "symmetry", "checkpoint", "checkpoint_every", "resume")


def options(f: Callable[..., Any]) -> Callable[..., Any]:
    """Add the bitstate, symmetry and checkpoint options to the ``explore`` command."""
    for decorator in reversed(
        [
            click.option(
                "--bitstate",
                type=click.IntRange(min=10, max=40),
                default=None,
                metavar="BITS",
                help="Store visited states in a table of 2^BITS bits (Spin's supertrace): "
                "far less memory, NOT exhaustive; the probability of omission is printed.",
            ),
            click.option(
                "--hashes",
                type=click.IntRange(min=1, max=16),
                default=None,
                metavar="K",
                help="--bitstate: bits (hash functions) per state (default 3).",
            ),
            click.option(
                "--symmetry/--no-symmetry",
                default=None,
                help="One state per renaming of the config's interchangeable pairs (default: "
                "on where the config declares them, e.g. trio, quad).",
            ),
            click.option(
                "--checkpoint",
                type=click.Path(dir_okay=False),
                default=None,
                metavar="FILE",
                help="Save the search to FILE periodically and when it stops early (bounds, "
                "Ctrl-C); continue with --resume FILE.",
            ),
            click.option(
                "--checkpoint-every",
                type=click.FloatRange(min=0, min_open=True, max=1e9),
                default=None,
                metavar="S",
                help="--checkpoint: seconds between saves (default 300).",
            ),
            click.option(
                "--resume",
                type=click.Path(dir_okay=False),
                default=None,
                metavar="FILE",
                help="Continue the search saved in FILE (same --config and --fault).",
            ),
        ]
    ):
        f = decorator(f)
    return f


def pop(modes: dict[str, Any]) -> dict[str, Any]:
    """Take this module's options out of the command's keyword arguments."""
    return {k: modes.pop(k, None) for k in NAMES}


def given(big: dict[str, Any]) -> list[str]:
    """The options of this module that were given, as the user spells them."""
    out = []
    for k in NAMES:
        v = big.get(k)
        if v is None:
            continue
        if k == "symmetry":
            out.append("--symmetry" if v else "--no-symmetry")
        else:
            out.append("--" + k.replace("_", "-"))
    return out


def configure(explorer: Any, big: dict[str, Any], workers_given: bool) -> None:
    """Apply the options to ``explorer`` and refuse unsupported combinations (exit 2)."""
    if big["hashes"] is not None and big["bitstate"] is None:
        fail_input("--hashes needs --bitstate")
    if big["checkpoint_every"] is not None and big["checkpoint"] is None:
        fail_input("--checkpoint-every needs --checkpoint")
    if big["bitstate"] is not None:
        explorer.with_bitstate(big["bitstate"], big["hashes"] or 3)
    explorer.with_symmetry(big["symmetry"])
    if big["checkpoint"] is not None:
        explorer.with_checkpoint(big["checkpoint"], big["checkpoint_every"] or 300.0)
    if big["resume"] is not None:
        explorer.resume(big["resume"])
    sequential = (
        big["bitstate"] is not None
        or big["checkpoint"] is not None
        or big["resume"] is not None
        or big["symmetry"] is True
        or (big["symmetry"] is None and explorer.symmetry_applies_to_model())
    )
    if sequential and not workers_given:
        explorer.with_workers(1)
    try:
        explorer.check_modes()
    except ValueError as exc:
        fail_input(str(exc))


def lines(result: Any, big: dict[str, Any], declared: bool = False) -> list[str]:
    """What the run's modes add to the printed result (``declared``: the config declares
    interchangeable pairs)."""
    out = []
    if declared and not result.symmetry_members and big["symmetry"] is None:
        out.append("symmetry: not applied (the state graph and --workers > 1 store every state)")
    if result.symmetry_members:
        out.append(
            f"symmetry: {result.symmetry_members} interchangeable pairs; one state stored per "
            "renaming of them (counts are orbits; --no-symmetry counts every state)"
        )
    if result.bitstate is not None:
        out += result.bitstate.lines()
    if result.resumed:
        out.append(f"resumed from {big['resume']} (counts include the run before)")
    if big["checkpoint"] is not None and not result.complete and result.violation is None:
        out.append(
            f"checkpoint written to {big['checkpoint']}: continue with --resume {big['checkpoint']}"
        )
    return out


def json_fields(result: Any) -> dict[str, Any]:
    """The run's modes in the ``--json`` document."""
    b = result.bitstate
    return {
        "symmetry_members": result.symmetry_members,
        "resumed": result.resumed,
        "bitstate": None
        if b is None
        else {
            "bits": b.bits,
            "hashes": b.hashes,
            "table_bytes": b.table_bytes,
            "fill": b.fill,
            "omission_probability": b.omission_probability,
            "expected_missed": b.expected_omitted,
            "exhaustive": False,
        },
    }
