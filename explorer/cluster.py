"""The parallel search on a Ray cluster: the same workers, as Ray actors (issue 14).

Theory of operation
-------------------
One algorithm, two transports. :mod:`.parallel` is the search: a sequential prefix in the
coordinator, then a level-synchronous BFS whose states are hash-partitioned over W workers;
each worker stores its partition as the sequential search does (a set of packed ints, the
states with their global and parent indices, its own intern and memo tables), and the
coordinator only numbers levels, counts and stops. :class:`RayActors` is a
:class:`.parallel.Transport` whose workers are Ray actors instead of forked processes: each
actor holds one :class:`.parallel._Worker` and answers the coordinator's messages with
:meth:`.parallel._Worker.handle`, exactly what a local process's pipe loop runs. The results
are therefore the local parallel search's, which are the sequential search's (the tests
compare all three).

What crosses the transport
--------------------------
* The recipe (:class:`.parallel.WorkerRecipe`: the coordinator's search after the prefix,
  with its model, intern, view and memo tables) is pickled once with Ray's cloudpickle (the
  model's properties and the engine's groups are closures) and put in the object store; every
  actor unpickles it. Ids below the partition's bases are list positions there, the same in
  every actor. Tables keyed by ``id()`` are rebuilt on unpickling (:class:`.codec.Codec`,
  :class:`.kernel._View`): kept, their keys would be the coordinator's addresses, so a
  hash-consed model's prefix values would miss them and be interned again under new ids in
  every actor (more memo misses). What crosses between actors is always canonical: component
  values (adopted by the receiver's model, ``Codec.adopt``), never view or component ids of
  another process; a view's id stands for itself only below the shared base. (An earlier
  attempt that let per-process view ids cross counted 35,762 states of ring2 instead of
  35,678; the tests compare ring2.)
* Owners of newer ids are computed from the values' :func:`.parallel.stable_hash` in every
  actor (Ray starts each worker process with its own string-hash salt; the recipe's hash
  probe is withheld so that no actor uses Python's ``hash``).
* Successors travel between actors as the local search's batches: one pickled outbox per
  (sender, receiver) and level, holding the packed states, their order keys and flags, and
  once per (value, receiver) the component values of ids the receiver does not know. An
  actor puts each outbox in Ray's object store and the coordinator forwards only the
  reference, so a batch goes from actor to actor (between machines: directly, by Ray's
  object transfer) and the coordinator never holds a state.

Every actor checks that its machine runs the driver's spec and explorer sources (a hash of
them): another version could unpickle the recipe into other code and count other states.

Failures
--------
Actors are created with ``max_restarts=0``: a restarted actor would have lost its partition.
An actor that dies (its process killed, its node lost) makes its pending reply raise
:class:`ray.exceptions.RayActorError`; the transport turns that into an ``error`` reply and the
coordinator ends the search with :class:`.parallel.WorkerFailed` carrying the counts of the
levels completed before it: a clear error, never a verdict.
"""

from __future__ import annotations

import contextlib
import gc
import os
import pickle
import socket
import sys
import time
from collections import deque
from pathlib import Path
from typing import Any

from smcd_check.explorer.parallel import WorkerRecipe

#: the one-line error when Ray is not installed (names the extra that installs it)
MISSING_EXTRA = (
    "--cluster needs Ray, which is an optional extra: pip install 'smcd-check[cluster]' "
    "(in a checkout: pip install -e '.[cluster]')"
)


class ClusterUnavailable(RuntimeError):
    """Ray is not installed, or the cluster cannot be reached (the message says which)."""


def require_ray() -> Any:
    """The ``ray`` module, or :class:`ClusterUnavailable` naming the extra that installs it."""
    try:
        import ray
    except ImportError:
        raise ClusterUnavailable(MISSING_EXTRA) from None
    return ray


def connect(address: str, *, quiet: bool = False) -> bool:
    """Join the Ray cluster at ``address`` (``HOST:PORT`` of a head started with
    ``ray start --head``), or with ``auto`` the cluster this machine is part of, starting a
    local one-machine Ray when there is none (or the one recorded here does not answer).
    Returns True when this call initialised Ray in this process, joined or started (the
    caller leaves with :func:`disconnect`); False, doing nothing, when Ray was initialised.

    Raises:
        ClusterUnavailable: Ray is not installed, or no cluster answers at ``address``.
    """
    ray = require_ray()
    if ray.is_initialized():
        return False
    opts: dict[str, Any] = {"logging_level": "ERROR", "log_to_driver": False}
    if address == "auto":
        found = _recorded_address()
        why = "no running Ray found (ray start --head)"
        if found is not None:
            try:
                probe(found, timeout=3.0)
            except ClusterUnavailable:
                # a cluster stopped without `ray stop` leaves its address behind: Ray would
                # retry it for minutes
                why = f"the Ray cluster recorded on this machine ({found}) does not answer"
                found = None
        if found is not None:
            try:
                ray.init(address="auto", **opts)
                return True
            except ConnectionError:
                pass
        if not quiet:
            print(f"cluster: {why}; starting a local one", file=sys.stderr)
        ray.init(address="local", include_dashboard=False, **opts)
        return True
    probe(address)
    try:
        ray.init(address=address, **opts)
    except (ConnectionError, ValueError, RuntimeError) as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        hint = ""
        if os.environ.get("RAY_AUTH_MODE") != "token":
            # `ray start` authenticates clients by a token from Ray 2.59 on; a driver
            # without RAY_AUTH_MODE=token does not send it and is refused after retries
            hint = (
                "; if the cluster uses token authentication: export RAY_AUTH_MODE=token, with "
                "the cluster's token in ~/.ray/auth_token or RAY_AUTH_TOKEN"
            )
        raise ClusterUnavailable(
            f"cannot join the Ray cluster at {address!r}: {first}{hint}"
        ) from None
    return True


def _recorded_address() -> str | None:
    """The ``HOST:PORT`` ``ray.init(address="auto")`` would join (RAY_ADDRESS, the last
    ``ray start`` on this machine, a running local Ray), or None: none, or a Ray whose
    internals moved (then ``auto`` is tried as it is)."""
    try:
        from ray._private.services import get_ray_address_from_environment

        found = get_ray_address_from_environment("auto", None)
    except Exception:  # ConnectionError: nothing recorded or running
        return None
    if isinstance(found, str) and found.rpartition(":")[2].isdigit():
        return found
    return None


def probe(address: str, timeout: float = 5.0) -> None:
    """Fail fast when nothing listens at ``HOST:PORT`` (Ray itself retries for minutes)."""
    host, sep, port = address.rpartition(":")
    if not sep or not host or not port.isdigit() or "://" in address:
        raise ClusterUnavailable(
            f"--cluster {address!r}: expected HOST:PORT of a Ray head (ray start --head "
            "--port=6379 prints it) or auto"
        )
    try:
        with socket.create_connection((host.strip("[]"), int(port)), timeout=timeout):
            pass
    except OSError as exc:
        raise ClusterUnavailable(
            f"nothing answers at {address} ({exc.strerror or exc}): is the Ray head running "
            "there (ray start --head --port=PORT)?"
        ) from None


def disconnect() -> None:
    """Leave (and, for a local Ray this process started, stop) Ray."""
    ray = require_ray()
    if ray.is_initialized():
        ray.shutdown()


def code_fingerprint() -> str:
    """A hash of this installation's spec and explorer sources: an actor on a machine with
    another version of smcd-check would unpickle the recipe into other code and could count
    other states, so it refuses to start instead (see :class:`RayActors`)."""
    import hashlib

    import smcd_check.explorer
    import smcd_check.spec

    h = hashlib.blake2b(digest_size=8)
    for pkg in (smcd_check.spec, smcd_check.explorer):
        root = Path(next(iter(pkg.__path__)))
        for f in sorted(root.glob("*.py")):
            h.update(f.name.encode() + b"\0" + f.read_bytes())
    return h.hexdigest()


def cluster_cpus() -> int:
    """The CPUs the connected cluster offers (the default number of actors)."""
    ray = require_ray()
    return max(1, int(ray.cluster_resources().get("CPU", 1)))


_ACTOR: Any = None


def _actor_class() -> Any:
    """The Ray actor class (made on first use: importing this module needs no Ray)."""
    global _ACTOR
    if _ACTOR is not None:
        return _ACTOR
    ray = require_ray()

    class PartitionActor:
        """One worker of the search: its partition, served through ``handle``."""

        def __init__(self, blob: bytes, me: int, fingerprint: str) -> None:
            mine = code_fingerprint()
            if mine != fingerprint:
                raise ClusterUnavailable(
                    f"the node {socket.gethostname()} runs other smcd-check sources (spec and "
                    f"explorer hash {mine}, the driver's {fingerprint}): install the same "
                    "version on every node of the cluster"
                )
            gc.disable()  # as a local worker: the partition is millions of small ints
            t0 = time.process_time()
            recipe: WorkerRecipe = pickle.loads(blob)
            self.unpickle_cpu = time.process_time() - t0
            self.worker = recipe.worker(me)
            self.transport_cpu = 0.0

        def handle(self, msg: tuple[Any, ...]) -> tuple[Any, ...] | None:
            if msg[0] == "in":  # the outboxes for me, fetched from the object store
                c0 = time.process_time()
                msg = ("in", ray.get(list(msg[1])), *msg[2:])
                self.transport_cpu += time.process_time() - c0
            reply = self.worker.handle(msg)
            if reply is not None and reply[0] == "out":
                c0 = time.process_time()
                boxes = [ray.put(b) if b else b for b in reply[1]]
                self.transport_cpu += time.process_time() - c0
                reply = ("out", boxes, *reply[2:])
            elif reply is not None and reply[0] == "stats":
                stats = dict(reply[1])
                stats["transport_cpu"] = self.transport_cpu
                stats["unpickle_cpu"] = self.unpickle_cpu
                stats["pid"] = os.getpid()
                reply = ("stats", stats)
            return reply

        def pid(self) -> int:
            return os.getpid()

    # SPREAD: fewer actors than CPUs go to different machines (each brings its memory)
    _ACTOR = ray.remote(
        num_cpus=1, max_restarts=0, max_task_retries=0, scheduling_strategy="SPREAD"
    )(PartitionActor)
    return _ACTOR


class RayActors:
    """A :class:`.parallel.Transport` over ``n`` Ray actors (Ray must be initialised).

    Messages to one actor run in the order they were sent (Ray keeps a caller's order per
    actor); ``recv(w)`` takes worker ``w``'s oldest reply.
    """

    #: the workers' CPU time is not this process's children's: the stats report it
    remote = True

    def __init__(self, n: int, recipe: WorkerRecipe, *, fingerprint: str | None = None) -> None:
        """Start ``n`` actors from ``recipe``; ``fingerprint``: the sources the actors must
        run (default: this process's, :func:`code_fingerprint`)."""
        ray = require_ray()
        if not ray.is_initialized():
            raise ClusterUnavailable("Ray is not initialised (connect() first)")
        self._ray = ray
        search = recipe.search
        # the explorer (progress callback) and the clock stay here; the withheld hash probe
        # makes every actor place new values by their stable hash (see the module docstring)
        saved = (search.ex, search.clock)
        search.ex = search.clock = None  # type: ignore[assignment]
        try:
            t0 = time.process_time()
            blob = ray.cloudpickle.dumps(
                WorkerRecipe(search, (*recipe.partition[:3], None), recipe.n),
                protocol=pickle.HIGHEST_PROTOCOL,
            )
            self.pickle_cpu = time.process_time() - t0
        finally:
            search.ex, search.clock = saved
        self.recipe_bytes = len(blob)
        ref = ray.put(blob)
        actor = _actor_class()
        fingerprint = fingerprint or code_fingerprint()
        self.actors = [actor.remote(ref, w, fingerprint) for w in range(n)]
        self.pending: list[deque[Any]] = [deque() for _ in range(n)]

    def send(self, w: int, msg: tuple[Any, ...]) -> None:
        self.pending[w].append(self.actors[w].handle.remote(msg))

    def recv(self, w: int) -> tuple[Any, ...]:
        ray = self._ray
        ref = self.pending[w].popleft()
        try:
            reply: tuple[Any, ...] = ray.get(ref)
        except ray.exceptions.RayActorError as exc:
            text = str(exc)
            mark = f"{ClusterUnavailable.__name__}: "
            if mark in text:  # refused to start: say why
                return ("error", text[text.index(mark) + len(mark) :].splitlines()[0])
            return ("error", f"its Ray actor died ({_first_line(exc)})")
        except ray.exceptions.RayError as exc:
            return ("error", str(exc))
        return reply

    def ready(self) -> list[int]:
        heads = {p[0]: w for w, p in enumerate(self.pending) if p}
        if not heads:
            raise RuntimeError("no reply is pending")  # a protocol bug: nothing was sent
        refs = list(heads)
        done, _rest = self._ray.wait(refs, num_returns=1)
        more, _rest = self._ray.wait(refs, num_returns=len(refs), timeout=0)
        return sorted({heads[r] for r in (*done, *more)})

    def pids(self) -> list[int]:
        """The actors' process ids (a test kills one)."""
        return list(self._ray.get([a.pid.remote() for a in self.actors]))

    def close(self) -> None:
        for a in self.actors:
            with contextlib.suppress(Exception):  # already dead: nothing to stop
                self._ray.kill(a, no_restart=True)
        self.pending = [deque() for _ in self.actors]


def _first_line(exc: BaseException) -> str:
    for line in str(exc).splitlines():
        line = line.strip()
        if line:
            return line[:200]
    return type(exc).__name__


def ray_transport(n: int, recipe: WorkerRecipe) -> RayActors:
    """The transport factory :func:`.parallel.parallel_search` takes."""
    return RayActors(n, recipe)
