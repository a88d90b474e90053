"""Checkpoint and resume of a breadth-first search (TLC's ``-checkpoint`` / ``-recover``).

Theory of operation
-------------------
A checkpoint is the search at the start of a BFS level: every state stored so far (packed
ints in discovery order), the parent array, the first index of the frontier, the depth, the
states outside the boundary, the ``sometimes`` examples found (their state indices), the
transitions and coverage counted, and the codec's intern tables and bit layout (the packed
ints mean nothing without them). The memo tables are not saved: they are a cache, refilled
as the resumed search meets the states again. The search writes one every
``Explorer.with_checkpoint(path, every_seconds)`` seconds (when a level begins) and when it
stops early (``--max-states``, ``--max-seconds``, Ctrl-C), from the last level start, so a
level cut short is redone whole; resumed, it gives exactly the counts, verdicts and shortest
counterexamples of one uninterrupted run (a test compares them).

File format (version :data:`VERSION`): the line ``smcd-check-checkpoint\\n``, one line of JSON
(``format``, ``version``, ``model``, ``identity``: the model's name and config, ``symmetry``:
the representative function's version or null, ``payload_sha256``, ``payload_bytes``), then
the payload: a zlib-compressed pickle of a dict. The payload holds model states (the intern
tables), so only a file this program wrote should be resumed (pickle runs code). A file that is
not a checkpoint, a truncated or altered one (the digest), another format version, or one
written for another model, config, fault or symmetry setting is refused with
:class:`CheckpointError` naming what differs. The file is written to a temporary name and
renamed, so an interrupt while saving leaves the previous checkpoint.
"""

from __future__ import annotations

import dataclasses
import enum
import hashlib
import json
import os
import pickle
import zlib
from array import array
from pathlib import Path
from typing import Any

from smcd_check.explorer.symmetry import CANONICAL_VERSION

MAGIC = b"smcd-check-checkpoint\n"
#: bump when the payload or the meaning of anything in it changes (the packing of states, the
#: choice of representatives: see ``symmetry.CANONICAL_VERSION``, recorded separately)
VERSION = 1


class CheckpointError(Exception):
    """A checkpoint file that cannot be resumed here (the message names why)."""


def identity(model: Any) -> str:
    """The model and config a checkpoint belongs to, as a stable string (frozensets sorted,
    so it does not depend on the process's hash seed)."""
    return f"{model.name} {_stable(getattr(model, 'cfg', None))}"


def label(model: Any) -> str:
    """The run's model in words: its config name and faults (for error messages)."""
    cfg = getattr(model, "cfg", None)
    faults = sorted(getattr(f, "value", str(f)) for f in getattr(cfg, "faults", ()) or ())
    name = getattr(model, "config_name", model.name)
    return f"config {name}, fault {', '.join(faults) or 'none'}"


def _stable(v: Any) -> str:
    if dataclasses.is_dataclass(v) and not isinstance(v, type):
        fields = ", ".join(f"{f.name}={_stable(getattr(v, f.name))}" for f in dataclasses.fields(v))
        return f"{type(v).__name__}({fields})"
    if isinstance(v, enum.Enum):
        return f"{type(v).__name__}.{v.name}"
    if isinstance(v, (frozenset, set)):
        return "{" + ", ".join(sorted(_stable(x) for x in v)) + "}"
    if isinstance(v, (tuple, list)):
        return "(" + ", ".join(_stable(x) for x in v) + ")"
    return repr(v)


def _header(search: Any) -> dict[str, Any]:
    return {
        "format": "smcd-check-checkpoint",
        "version": VERSION,
        "model": search.model.name,
        "identity": identity(search.model),
        "label": label(search.model),
        "symmetry": CANONICAL_VERSION if search.canon is not None else None,
    }


def save(search: Any, snap: tuple[Any, ...], path: str) -> None:
    """Write the checkpoint of the level start ``snap`` (the engine's level snapshot)."""
    n0, hits, dkinds, dtrans, found, examples, _g, _t, _nsrc, lo, depth = snap
    # the boundary only grows by the indices of new states: below n0 it is the level start's
    boundary = search.boundary
    kernel = search.kernel
    codec = search.codec
    counts = list(dkinds)
    transitions = dtrans
    for eid, n in enumerate(hits):
        if n:
            transitions += n * len(kernel.kinds[eid])
            for kd in kernel.kinds[eid]:
                counts[kd] += n
    coverage = dict(search.carry_coverage)
    for kd, c in enumerate(counts):
        if c:
            name = kernel.kind_names[kd]
            coverage[name] = coverage.get(name, 0) + c
    payload = {
        "states": search.states[:n0],
        "parents": search.parents[:n0].tobytes(),
        "lo": lo,
        "depth": depth,
        "boundary": sorted(b for b in boundary if b < n0),
        "examples": {k: v for k, v in examples.items() if v is None or v < n0},
        "found": sorted(found),
        "transitions": transitions + search.carry_transitions,
        "coverage": coverage,
        "init": search.init_ints,
        # the intern tables: one list per component (shared tables are saved once, as the
        # same list object, and pickle keeps them shared)
        "vals": codec.vals,
        "bits": codec.bits,
        "order": codec.order,
    }
    blob = zlib.compress(pickle.dumps(payload, protocol=pickle.HIGHEST_PROTOCOL), 1)
    header = _header(search)
    header["payload_sha256"] = hashlib.sha256(blob).hexdigest()
    header["payload_bytes"] = len(blob)
    target = Path(path)
    tmp = target.with_name(target.name + ".tmp")
    with open(tmp, "wb") as fh:
        fh.write(MAGIC)
        fh.write(json.dumps(header).encode() + b"\n")
        fh.write(blob)
    os.replace(tmp, target)


def read(path: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """The header and payload of a checkpoint file (raises CheckpointError)."""
    try:
        data = Path(path).read_bytes()
    except OSError as exc:
        raise CheckpointError(f"cannot read checkpoint {path}: {exc.strerror or exc}") from None
    if not data.startswith(MAGIC):
        raise CheckpointError(f"{path} is not an smcd-check checkpoint (no header line)")
    rest = data[len(MAGIC) :]
    line, _, blob = rest.partition(b"\n")
    try:
        header = json.loads(line)
    except ValueError:
        raise CheckpointError(f"{path}: the checkpoint header is not JSON (corrupt file)") from None
    if not isinstance(header, dict) or header.get("format") != "smcd-check-checkpoint":
        raise CheckpointError(f"{path}: not an smcd-check checkpoint header")
    if header.get("version") != VERSION:
        raise CheckpointError(
            f"{path}: checkpoint format version {header.get('version')!r}; this smcd-check "
            f"reads version {VERSION} only"
        )
    if len(blob) != header.get("payload_bytes") or (
        hashlib.sha256(blob).hexdigest() != header.get("payload_sha256")
    ):
        raise CheckpointError(f"{path}: the checkpoint is truncated or corrupt (digest mismatch)")
    try:
        payload = pickle.loads(zlib.decompress(blob))
    except Exception as exc:  # digest matched: a payload this version cannot load
        raise CheckpointError(f"{path}: cannot load the checkpoint payload: {exc}") from None
    return header, payload


def restore(search: Any, path: str) -> tuple[int, int, int]:
    """Load ``path`` into a fresh search; returns (frontier start, frontier end, depth)."""
    header, p = read(path)
    mine = _header(search)
    if header.get("identity") != mine["identity"]:
        if header.get("label") != mine["label"]:
            raise CheckpointError(
                f"{path} was written for {header.get('label')}, not for {mine['label']} "
                "(resume with the same --config and --fault)"
            )
        raise CheckpointError(
            f"{path} was written for {mine['label']} with other parameters (the config "
            "changed since): it cannot be resumed"
        )
    if header.get("symmetry") != mine["symmetry"]:

        def say(v: Any) -> str:
            return "off" if v is None else f"on (representatives version {v})"

        raise CheckpointError(
            f"{path}: symmetry reduction was {say(header.get('symmetry'))} in the checkpointed "
            f"run and is {say(mine['symmetry'])} here (resume with the same --symmetry setting)"
        )
    codec = search.codec
    kernel = search.kernel
    adopt = getattr(search.model, "adopt", None)
    done: set[int] = set()
    for k, vals in enumerate(p["vals"]):
        table = codec.vals[k]
        if id(table) in done:
            continue
        done.add(id(table))
        for v in vals:
            obj = adopt(v) if adopt is not None else v
            i = len(table)
            table.append(obj)
            if not codec.identity:
                codec.ids[k][obj] = i
            codec.by_identity[k][id(obj)] = i
    codec.bits = list(p["bits"])
    codec.order = list(p["order"])
    codec._layout()
    kernel.relayout_done()
    if search.canon is not None:
        search.canon.relayout_done()
    states = p["states"]
    search.states[:] = states
    search.parents = array("i")
    search.parents.frombytes(p["parents"])
    if search.fp:
        from smcd_check.explorer.engine import make_visited

        search.seen = make_visited(True)
        for x in states:
            search.seen.add(x)
    else:
        search.seen = set(states)
    search.boundary = set(p["boundary"])
    search.examples = dict(p["examples"])
    search.init_ints = list(p["init"])
    kernel.found = set(p["found"])
    kernel.refresh_residual()
    search.carry_transitions = p["transitions"]
    search.carry_coverage = dict(p["coverage"])
    return p["lo"], len(states), p["depth"]
