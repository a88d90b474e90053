"""Breadth-first exploration of every reachable state of a :class:`~.model.Model`.

Theory of operation
-------------------
The explorer walks the state graph breadth-first, level by level, so the first state found that
breaks an ``always`` property (or the first deadlock) lies at the smallest possible depth: every
counterexample it reports is a shortest one. A property is checked when a state is *discovered*
(BFS order), which is what makes the violating path minimal: all states of depth <= d were
checked before the first state of depth d + 1.

There is one search path for every model (the SMC-D system, the Spin anchor model, a user's
model); what differs is only what the model tells about the structure of its states
(:mod:`.model`, "Footprints"):

* :mod:`.codec` turns a state into one Python int: each component's values are interned to
  small ids, packed into bit fields (a model without footprints is one component: its id is the
  state's discovery-order intern id);
* :mod:`.kernel` computes successors per action group, memoised on the group's footprint as xor
  deltas (``t = s ^ d``; a component the group reads through a *view* is keyed by the view's
  id and written back with the view's ``put``), and decides there every property that reads
  only the footprint; a miss runs the model's own ``actions``/``next_state`` on the decoded
  state;
* this module runs the levels: the visited set, the states in BFS order (ints), the parent
  array (``array('i')``: a shortest path is recovered by following it backwards, decoding the
  states and re-identifying each action with ``next_state``), the per-state checks the kernel
  could not decide from a footprint, deadlocks, progress and stopping;
* :mod:`.parallel` runs the same levels over worker processes, each owning the states of a
  partition of what every group's memo key contains, with exactly the sequential results
  (``Explorer.with_workers``; ``smcd-check explore --workers``).

The networkx graph is built only when liveness (``eventually``) properties are checked or a graph
export is asked for: transitions are then recorded as three ``array`` columns during the search
and turned into a :class:`networkx.DiGraph` afterwards (:mod:`.liveness`, :mod:`.graph`); that
mode is sequential.

Coverage counts how often each action kind fired (``model.action_kind``, default the class
name), from per-entry hit counters; kinds the model declares (``action_types()``) that never
fired are listed. A search that stops at a violation counts the transitions of every state
expanded before it, the violating state's parent in full.

Stopping: ``max_states``, ``max_seconds`` and Ctrl-C (``KeyboardInterrupt``) end the search with
a partial result ("no violation in the N states explored"); ``complete`` is then ``False``.

Extension points (for what is built on this engine)
---------------------------------------------------
* **Worker transport** (cluster exploration): :class:`.parallel.Transport` is four methods
  (``send``, ``recv``, ``ready``, ``close``) over picklable tuples; a worker is
  :meth:`.parallel._Worker.handle` answering messages. Local processes (:class:`.parallel.
  LocalProcesses`) are one transport; Ray actors (:mod:`.cluster`, ``Explorer.with_transport``)
  are another, with the same level-synchronous protocol (no per-value round trips: each
  worker numbers its own component values, and the values a successor needs travel with it
  once per receiver).
* **Visited-set storage**: :func:`make_visited` makes the exact set (or fingerprints); the
  loops use only ``in``, ``add``, ``discard`` and ``len`` on packed ints. Bitstate mode
  (:mod:`.bitstate`, ``Explorer.with_bitstate``) replaces it by a bit table tested and set
  in one call, keeps only the current level's states and records per state the index of the
  step that reached it (counterexamples are re-run from the initial state); the level loop
  has a variant for it, generated only in that mode.
* **Checkpoint/resume** (:mod:`.checkpoint`): the per-level snapshot the search takes anyway
  (for a level redone after a relayout) is what a checkpoint saves, with the stored states,
  the parent array and the codec's tables; a resumed search starts at that level.
* **Symmetry reduction** (:mod:`.symmetry`): each successor is mapped to its orbit's
  representative on the packed int, after the memoised step (so memo keys and entries stay
  as they are), by a loop variant generated only in that mode; initial states too. The
  codec's ``canonical`` hook (applied before a state is split) stays the identity: a
  canonicalisation there would move values between components, so the groups' memo would
  have to key on everything it touches.
"""

from __future__ import annotations

import gc
import math
import os
import resource
import time
from array import array
from collections.abc import Callable, Hashable, Iterable, Sequence
from dataclasses import dataclass, field
from functools import partial
from typing import Any, Generic, TypeVar

from smcd_check.explorer.codec import LayoutOverflow
from smcd_check.explorer.kernel import OUTSIDE, SOME0, VIOLATES
from smcd_check.explorer.model import (
    Kind,
    Model,
    Property,
    as_property,
)

S = TypeVar("S", bound=Hashable)

#: the implicit safety property every exploration checks
DEADLOCK = "no deadlock: every non-final state has an enabled action"


def current_rss() -> int:
    """Resident set size of this process in bytes (Linux ``/proc``; 0 when unknown)."""
    try:
        with open("/proc/self/statm") as fh:
            return int(fh.read().split()[1]) * resource.getpagesize()
    except (OSError, ValueError, IndexError):  # pragma: no cover - non-Linux
        return 0


def peak_rss() -> int:
    """Peak resident set size of this process in bytes."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


@dataclass(slots=True)
class Path(Generic[S]):
    """A path from an initial state: ``states[i + 1] = next_state(states[i], actions[i])``."""

    states: list[Any]
    actions: list[Any]
    #: liveness lassos: the index in ``states`` where the final cycle starts (None: no cycle;
    #: the path then ends in a state without successors)
    loop_start: int | None = None

    def __len__(self) -> int:
        """The number of transitions."""
        return len(self.actions)


@dataclass(slots=True)
class Discovery:
    """A property's discovery: a counterexample (always/eventually/deadlock) or an example."""

    name: str
    kind: str
    path: Path[Any]

    @property
    def is_failure(self) -> bool:
        return self.kind != Kind.SOMETIMES.value


@dataclass(slots=True)
class Progress:
    """A snapshot handed to the progress callback (throttled by the caller's own clock)."""

    states: int
    transitions: int
    frontier: int
    depth: int
    seconds: float
    #: parallel and cluster search: per worker, (states it owns, its states per second)
    workers: tuple[tuple[int, float], ...] = ()

    @property
    def rate(self) -> float:
        return self.states / self.seconds if self.seconds > 0 else 0.0


@dataclass(slots=True)
class ExploreResult:
    """What an exploration found and how much it did."""

    model_name: str
    #: True when every reachable state (within the boundary) was explored
    complete: bool
    #: why it stopped early: "max-states", "max-seconds", "interrupted", "violation" or None
    stop_reason: str | None
    unique_state_count: int
    transition_count: int
    max_depth: int
    seconds: float
    cpu_seconds: float
    peak_rss_bytes: int
    #: RSS growth during the search divided by the state count (the store's cost per state)
    bytes_per_state: float
    #: fired count per action type (packed models: per family)
    coverage: dict[str, int]
    #: declared action types that never fired
    never_fired: list[str]
    #: the first failure: an always violation, a deadlock or (after the search) a liveness one
    violation: Discovery | None = None
    #: sometimes properties: an example path, or None when never reached
    examples: dict[str, Discovery | None] = field(default_factory=dict)
    #: eventually properties: None when it holds, else the counterexample (empty when not checked)
    liveness: dict[str, Discovery | None] = field(default_factory=dict)
    #: the explored graph (networkx.DiGraph) when it was built, else None
    graph: Any = None
    #: fingerprint mode: the (optimistic) probability that two states shared a fingerprint
    collision_probability: float | None = None
    #: states outside the model's boundary (counted, not expanded)
    boundary_states: int = 0
    #: the state with a given discovery index (graph export labels; sequential runs)
    state_at: Callable[[int], Any] | None = None
    #: processes that ran the search (1: the sequential search)
    workers: int = 1
    #: parallel search: CPU seconds of the sequential prefix (coordinator)
    prefix_cpu: float = 0.0
    #: parallel search: per BFS level after the prefix, (per phase of the level - expand,
    #: merge, assign, relayout - each worker's CPU seconds; the coordinator's CPU seconds in
    #: that level); see :mod:`.parallel`
    level_cpu: list[tuple[list[list[float]], float]] = field(default_factory=list)
    #: symmetry reduction: the number of interchangeable members (0: every state stored)
    symmetry_members: int = 0
    #: bitstate mode: the table and the risk of omission (:class:`.bitstate.BitstateReport`)
    bitstate: Any = None
    #: the search continued a checkpoint (counts include the run before)
    resumed: bool = False
    #: parallel and cluster search: per worker, what its partition cost (see
    #: :meth:`.parallel._Worker.stats`: states, RSS growth, batches sent and their CPU)
    worker_stats: list[dict[str, Any]] = field(default_factory=list)

    @property
    def critical_path_cpu(self) -> float:
        """Parallel search: the CPU seconds on its critical path - the prefix, then per level
        and phase the busiest worker's CPU (phases end at barriers), plus the coordinator's
        CPU (counted as if it never overlapped the workers): the wall time the run takes on
        idle cores, one per process. The sequential search: its CPU seconds."""
        if not self.level_cpu:
            return self.cpu_seconds
        return self.prefix_cpu + sum(
            sum(max(ws, default=0.0) for ws in phases) + c for phases, c in self.level_cpu
        )

    @property
    def states_per_second(self) -> float:
        return self.unique_state_count / self.cpu_seconds if self.cpu_seconds > 0 else 0.0

    @property
    def discoveries(self) -> dict[str, Path[Any]]:
        """Every discovery by property name (Stateright's ``discoveries``)."""
        out: dict[str, Path[Any]] = {}
        if self.violation is not None:
            out[self.violation.name] = self.violation.path
        for group in (self.examples, self.liveness):
            for name, disc in group.items():
                if disc is not None:
                    out[name] = disc.path
        return out

    @property
    def unreached_examples(self) -> list[str]:
        """sometimes properties never satisfied (meaningful only when ``complete``)."""
        return [name for name, disc in self.examples.items() if disc is None]

    @property
    def ok(self) -> bool:
        """No failure found (a partial search can be ok; see ``complete``)."""
        if self.violation is not None:
            return False
        if any(d is not None for d in self.liveness.values()):
            return False
        return not (self.complete and self.unreached_examples)

    def assert_properties(self) -> None:
        """Raise AssertionError naming the first failed property (for tests)."""
        if self.violation is not None:
            raise AssertionError(
                f"{self.violation.kind} property violated: {self.violation.name!r} "
                f"after {len(self.violation.path)} steps"
            )
        for name, disc in self.liveness.items():
            if disc is not None:
                raise AssertionError(f"eventually property violated: {name!r}")
        if self.complete and self.unreached_examples:
            raise AssertionError(f"sometimes property never reached: {self.unreached_examples}")

    def assert_discovery(self, name: str, actions: Sequence[Any]) -> None:
        """Raise AssertionError unless ``name`` was discovered with exactly these actions."""
        path = self.discoveries.get(name)
        if path is None:
            raise AssertionError(f"no discovery for {name!r}")
        if list(path.actions) != list(actions):
            raise AssertionError(f"discovery for {name!r} was {path.actions!r}")

    def verdict(self) -> str:
        """One line saying what was found (or not) in how many states."""
        n = f"{self.unique_state_count:,}"
        if self.violation is not None:
            return (
                f"VIOLATION: {self.violation.name} "
                f"({len(self.violation.path)} steps, shortest; {n} states explored)"
            )
        failed_live = [k for k, v in self.liveness.items() if v is not None]
        if failed_live:
            return f"VIOLATION: {failed_live[0]} (liveness; {n} states explored)"
        if not self.complete:
            return f"no violation in the {n} states explored (stopped: {self.stop_reason})"
        if self.bitstate is not None:
            return (
                f"no violation in the {n} states stored (bitstate: NOT EXHAUSTIVE, about "
                f"{self.bitstate.expected_omitted:,.0f} states expected missed)"
            )
        if self.unreached_examples:
            return (
                f"VACUOUS: sometimes property never reached: {self.unreached_examples[0]} "
                f"({n} states, complete)"
            )
        return f"OK: all properties hold in all {n} reachable states"


ProgressCallback = Callable[[Progress], None]


class Explorer(Generic[S]):
    """Builder for an exploration: ``Explorer(model).bounded(max_states=...).bfs()``.

    Args:
        model: any :class:`~.model.Model`.
    """

    def __init__(self, model: Model[Any, Any]) -> None:
        self.model = model
        self.max_states: int | None = None
        self.max_seconds: float | None = None
        self.graph = False
        self.fingerprints = False
        self.memo = True
        self.workers = 1
        #: the parallel search's workers (None: forked local processes; see with_transport)
        self.transport: Callable[..., Any] | None = None
        self.progress: ProgressCallback | None = None
        self.progress_interval = 0.25
        # spaces too big to exhaust (issue 19; explorer/bitstate.py, symmetry.py, checkpoint.py)
        self.bitstate: int | None = None
        self.hashes = 3
        #: None: on when the model declares a symmetry and the search mode supports it
        self.symmetry: bool | None = None
        self.checkpoint_path: str | None = None
        self.checkpoint_every = 300.0
        self.resume_path: str | None = None

    # -- builder ---------------------------------------------------------------------------
    def bounded(
        self, *, max_states: int | None = None, max_seconds: float | None = None
    ) -> Explorer[S]:
        """Stop after ``max_states`` states or ``max_seconds`` seconds (a partial result)."""
        self.max_states = max_states
        self.max_seconds = max_seconds
        return self

    def with_graph(self, enabled: bool = True) -> Explorer[S]:
        """Record every transition and return the networkx graph (for export or liveness)."""
        self.graph = enabled
        return self

    def with_fingerprints(self, enabled: bool = True) -> Explorer[S]:
        """Store 64-bit fingerprints instead of states (less memory, tiny collision risk)."""
        self.fingerprints = enabled
        return self

    def with_memo(self, enabled: bool = True) -> Explorer[S]:
        """Use the model's footprints (``action_groups``) to memoise steps (default on); off,
        the model is searched as one opaque component (tests compare both)."""
        self.memo = enabled
        return self

    def with_workers(self, workers: int | None) -> Explorer[S]:
        """Search with ``workers`` processes (None: every core); 1 is the sequential search.

        The parallel search gives the same counts, verdicts, depths, coverage and shortest
        counterexamples as the sequential one (see :mod:`.parallel`); graph mode (liveness,
        graph export) and fingerprints always run sequentially.
        """
        if workers is None:
            workers = os.cpu_count() or 1
        if workers < 1:
            raise ValueError(f"workers must be at least 1, got {workers}")
        self.workers = workers
        return self

    def with_transport(self, transport: Callable[..., Any] | None) -> Explorer[S]:
        """Run the parallel search's ``workers`` workers with ``transport(n, recipe)`` (a
        :class:`.parallel.Transport` factory: :func:`.cluster.ray_transport` puts them on a
        Ray cluster), even one worker; None: forked local processes. Only the safety search
        runs there: graph mode and fingerprints raise ValueError."""
        self.transport = transport
        return self

    def with_progress(
        self, callback: ProgressCallback | None, interval: float = 0.25
    ) -> Explorer[S]:
        """Call ``callback`` with a :class:`Progress` about every ``interval`` seconds."""
        self.progress = callback
        self.progress_interval = interval
        return self

    def with_bitstate(self, bits: int | None, hashes: int = 3) -> Explorer[S]:
        """Store visited states as ``hashes`` bits each in a table of ``2**bits`` bits
        (Spin's supertrace; None: exact storage). Not exhaustive: see :mod:`.bitstate`."""
        self.bitstate = bits
        self.hashes = hashes
        return self

    def with_symmetry(self, enabled: bool | None) -> Explorer[S]:
        """Explore one state per orbit of the model's declared symmetry (True), every state
        (False), or decide by the model and mode (None, the default): see :mod:`.symmetry`."""
        self.symmetry = enabled
        return self

    def with_checkpoint(self, path: str | None, every_seconds: float = 300.0) -> Explorer[S]:
        """Save the search to ``path`` every ``every_seconds`` (at a BFS level's end) and when
        it stops early (bounds, Ctrl-C); :meth:`resume` continues it (:mod:`.checkpoint`)."""
        self.checkpoint_path = path
        self.checkpoint_every = every_seconds
        return self

    def resume(self, path: str | None) -> Explorer[S]:
        """Continue the search saved in ``path`` (same model and config) instead of starting."""
        self.resume_path = path
        return self

    def _wants_graph(self) -> bool:
        live = any(as_property(p).kind is Kind.EVENTUALLY for p in self.model.properties())
        return self.graph or live

    def symmetry_applies_to_model(self) -> bool:
        """The model declares a symmetry and it is not switched off."""
        from smcd_check.explorer import symmetry

        return self.symmetry is not False and symmetry.declared(self.model) is not None

    def check_modes(self, want_graph: bool | None = None) -> None:
        """Refuse the option combinations the engine does not support (ValueError, one line).

        Bitstate needs the sequential search without the graph and without checkpoints;
        checkpoints need the sequential search without the graph; symmetry asked for
        explicitly needs a model that declares one, the sequential search and no graph.
        """
        from smcd_check.explorer import symmetry

        if want_graph is None:
            want_graph = self._wants_graph()
        several = self.workers > 1 or self.transport is not None
        parallel = several and not want_graph and not self.fingerprints
        saving = self.checkpoint_path is not None or self.resume_path is not None
        bad = [
            (
                self.bitstate is not None and want_graph,
                "--bitstate cannot build the state graph "
                "(--liveness, --graph-out need every state and transition)",
            ),
            (
                self.bitstate is not None and several,
                "--bitstate runs sequentially: use --workers 1 (and no --cluster)",
            ),
            (
                self.bitstate is not None and self.fingerprints,
                "--bitstate and fingerprints are two visited-set storages: pick one",
            ),
            (
                self.bitstate is not None and saving,
                "--bitstate runs cannot be checkpointed (the "
                "states of earlier levels are not kept)",
            ),
            (
                saving and want_graph,
                "--checkpoint/--resume cannot save the state graph (--liveness, --graph-out)",
            ),
            (saving and parallel, "--checkpoint/--resume run sequentially: use --workers 1"),
            (
                self.symmetry is True and want_graph,
                "--symmetry cannot build the state graph "
                "(--liveness, --graph-out): use --no-symmetry",
            ),
            (
                self.symmetry is True and parallel,
                "--symmetry runs sequentially: use --workers 1 or --no-symmetry",
            ),
            (
                self.symmetry is True and not self.memo,
                "--symmetry swaps the model's components: it needs the memo (with_memo(True))",
            ),
            (
                self.symmetry is True and symmetry.declared(self.model) is None,
                f"--symmetry: model {self.model.name} declares no interchangeable members",
            ),
        ]
        for cond, msg in bad:
            if cond:
                raise ValueError(msg)

    def symmetry_applies(self, want_graph: bool | None = None) -> bool:
        """Whether the search will reduce by symmetry (the model declares one, it is not
        switched off, and the mode supports it)."""
        from smcd_check.explorer import symmetry

        if want_graph is None:
            want_graph = self._wants_graph()
        if self.symmetry is False or not self.memo or symmetry.declared(self.model) is None:
            return False
        several = self.workers > 1 or self.transport is not None
        parallel = several and not want_graph and not self.fingerprints
        return not (want_graph or parallel)

    # -- search ----------------------------------------------------------------------------
    def bfs(self) -> ExploreResult:
        """Explore breadth-first; returns the :class:`ExploreResult`."""
        props = [as_property(p) for p in self.model.properties()]
        names = [p.name for p in props]
        if len(set(names)) != len(names):
            raise ValueError(f"property names must be unique: {names}")
        live = [p for p in props if p.kind is Kind.EVENTUALLY]
        want_graph = self.graph or bool(live)
        self.check_modes(want_graph)
        if self.transport is not None and (want_graph or self.fingerprints):
            raise ValueError(
                "the cluster search checks always and sometimes properties only: liveness, "
                "graph export and fingerprints run on one machine"
            )
        if (self.workers > 1 or self.transport is not None) and not (
            want_graph or self.fingerprints
        ):
            from smcd_check.explorer.parallel import parallel_search

            return parallel_search(self, props, transport=self.transport)
        result = _Search(self, props, want_graph=want_graph).run()
        assert result is not None
        return result


# ------------------------------------------------------------------------------------------
# shared helpers


def _declared_types(model: Any) -> list[str]:
    hook = getattr(model, "action_types", None)
    return list(hook()) if hook is not None else []


def _find_action(
    model: Any, s: Any, t: Any, *, key: Callable[[Any], Any] | None = None
) -> tuple[Any, Any]:
    """The first action of ``s`` (deterministic order) leading to ``t`` (or to key == ``t``)."""
    for a in model.actions(s):
        nxt = model.next_state(s, a)
        if nxt is None:
            continue
        if (key(nxt) if key is not None else nxt) == t:
            return a, nxt
    raise RuntimeError(  # the model is not deterministic: a bug in the model, not the input
        f"cannot re-identify a step of model {model.name}: no action of the state leads to the "
        f"recorded successor (actions/next_state must be deterministic)"
    )


def _chain(parents: array, idx: int) -> list[int]:  # type: ignore[type-arg]
    out = []
    while idx >= 0:
        out.append(idx)
        idx = parents[idx]
    out.reverse()
    return out


class _Clock:
    def __init__(self, explorer: Explorer[Any]) -> None:
        self.t0 = time.perf_counter()
        self.c0 = time.process_time()
        self.rss0 = current_rss()
        self.deadline = (
            self.t0 + explorer.max_seconds if explorer.max_seconds is not None else math.inf
        )
        self.max_states = explorer.max_states if explorer.max_states is not None else math.inf
        self.progress = explorer.progress
        self.interval = explorer.progress_interval
        self.next_report = self.t0 + self.interval

    def tick(
        self, states: int, transitions: Callable[[], int], frontier: int, depth: int
    ) -> str | None:
        """Report progress when due; return a stop reason when a bound is reached."""
        now = time.perf_counter()
        if self.progress is not None and now >= self.next_report:
            self.next_report = now + self.interval
            self.progress(Progress(states, transitions(), frontier, depth, now - self.t0))
        if states >= self.max_states:
            return "max-states"
        if now >= self.deadline:
            return "max-seconds"
        return None

    def finish(self, states: int, transitions: int, depth: int) -> tuple[float, float, int, float]:
        seconds = time.perf_counter() - self.t0
        cpu = time.process_time() - self.c0
        peak = peak_rss()
        grown = max(0, current_rss() - self.rss0)
        if self.progress is not None:
            self.progress(Progress(states, transitions, 0, depth, seconds))
        return seconds, cpu, peak, (grown / states if states else 0.0)


# ------------------------------------------------------------------------------------------
# the search: level-synchronous BFS over packed states


class _FingerprintSet:
    """The visited set of fingerprint mode: 64-bit hashes of the packed states."""

    __slots__ = ("_s",)

    def __init__(self) -> None:
        self._s: set[int] = set()

    def __contains__(self, x: object) -> bool:
        return hash(x) in self._s

    def add(self, x: int) -> None:
        self._s.add(hash(x))

    def discard(self, x: int) -> None:
        self._s.discard(hash(x))

    def __len__(self) -> int:
        return len(self._s)


def make_visited(fingerprints: bool) -> Any:
    """The visited-set storage: exact (a set of packed ints) or fingerprints.

    Storage is one abstraction (``__contains__``, ``add``, ``discard``, ``len``) so a bitstate
    table or an on-disk store for checkpoint/resume can stand in for the set.
    """
    return _FingerprintSet() if fingerprints else set()


class _Event(Exception):
    """A search event that ends the level loop: a violation or a deadlock."""

    def __init__(self, name: str, index: int) -> None:
        self.name = name
        self.index = index


_LOOPS: dict[tuple[tuple[int, ...], bool, bool, bool], Callable[..., Any]] = {}


def _level_loop(
    shape: tuple[int, ...], check_dead: bool, sym: bool = False, bit: bool = False
) -> Callable[..., Any]:
    """The level loop unrolled over the action groups (generated once per shape: the number
    of views of each group).

    Per state and group: the memo lookup ``c<k>.get(key)`` with ``key = s & m<k>`` and, for
    each viewed component, its view id in the component's field (a miss computes the entry),
    then each successor ``s ^ d`` (with ``put`` for an entry's view changes) not yet seen is
    stored; entries with flags, or groups with residual properties, take the checking branch
    (``on_new``). Unrolled, every group's mask and table is a local: about twice as fast as a
    loop over the groups.

    ``sym``: each successor is mapped to its orbit's representative (``canon``) before the
    visited test. ``bit``: the visited test is a bitstate table's ``add_new`` and each new state
    records the index of its step among its parent's successors (``sapp``; counterexamples
    are re-run from them). Without either, the loop is the plain one.
    """
    key = (shape, check_dead, sym, bit)
    fn = _LOOPS.get(key)
    if fn is not None:
        return fn
    params = ""
    for k, nv in enumerate(shape):
        params += f", m{k}, c{k}, g{k}, r{k}"
        for j in range(nv):
            params += f", o{k}_{j}, f{k}_{j}, vo{k}_{j}, vm{k}_{j}"
    src = [
        "def level(states, lo, seen, nxt, parents, hits, boundary, miss, is_final, on_new,"
        f" put, chk, step, tick, canon, sapp{params}):",
        "    add = seen.add_new" if bit else "    add = seen.add",
        "    napp = nxt.append",
        "    papp = parents.append",
        "    i = lo",
        "    for s in states:",
        "        if boundary and i in boundary:",
        "            i += 1",
        "            continue",
    ]
    if check_dead:
        src.append("        live = 0")
    if bit:
        src.append("        b = 0")
    # the visited test and the store of a new state
    canon_line = ["                    t = canon(t)"] if sym else []
    if bit:
        store = [
            "                    if add(t):",
            "                        napp(t)",
            "                        papp(i)",
            "                        sapp(b + j)",
        ]
    else:
        store = [
            "                    if t not in seen:",
            "                        add(t)",
            "                        napp(t)",
            "                        papp(i)",
        ]
    for k, nv in enumerate(shape):
        if nv:
            src.append(f"        key = s & m{k}")
            for j in range(nv):
                src += [
                    f"        x = (s >> o{k}_{j}) & f{k}_{j}",
                    f"        w = vo{k}_{j}.get(x)",
                    "        if w is None:",
                    f"            w = vm{k}_{j}(x)",
                    f"        key |= w << o{k}_{j}",
                ]
            src.append(f"        e = c{k}.get(key)")
        else:
            src.append(f"        e = c{k}.get(s & m{k})")
        src += [
            "        if e is None:",
            f"            e = miss(g{k}, s)",
            "        ds = e[0]",
            "        if ds:",
        ]
        if check_dead:
            src.append("            live = 1")
        src += [
            "            hits[e[2]] += 1",
            "            fl = e[1]",
        ]
        if nv:
            src += [
                "            pv = e[4]",
                f"            if pv is None and fl is None and not r{k}:",
            ]
        else:
            src.append(f"            if fl is None and not r{k}:")
        src += [
            "                for j, d in enumerate(ds):" if bit else "                for d in ds:",
            "                    t = s ^ d",
            *canon_line,
            *store,
            "            else:",
            f"                checked = fl is not None or r{k}",
            "                for j, d in enumerate(ds):",
            "                    t = s ^ d",
        ]
        if nv:
            src += [
                "                    if pv is not None:",
                "                        q = pv[j]",
                "                        if q is not None:",
                "                            t = put(t, q)",
            ]
        src += [
            *canon_line,
            *store,
            "                        if checked:",
            f"                            on_new(g{k}, t, len(parents) - 1,"
            " fl[j] if fl is not None else 0)",
        ]
        if bit:
            src.append("            b += len(ds)")
    if check_dead:
        src += [
            "        if not live and not is_final(s):",
            "            raise _Event(DEADLOCK, i)",
        ]
    src += [
        "        i += 1",
        "        if i >= chk:",
        "            chk = i + step",
        "            stop = tick(i)",
        "            if stop is not None:",
        "                return stop",
        "    return None",
    ]
    namespace: dict[str, Any] = {"_Event": _Event, "DEADLOCK": DEADLOCK}
    exec(compile("\n".join(src), f"<bfs level {key}>", "exec"), namespace)
    fn = namespace["level"]
    _LOOPS[key] = fn
    return fn


class _Search:
    """The sequential search (see the module docstring)."""

    def __init__(
        self,
        explorer: Explorer[Any],
        props: list[Property[Any]],
        *,
        want_graph: bool,
        views: bool = True,
        identity: bool = True,
    ):
        from smcd_check.explorer.kernel import Kernel, structure_of

        self.ex = explorer
        self.model = explorer.model
        self.props = props
        self.want_graph = want_graph
        self.fp = explorer.fingerprints
        codec, groups = structure_of(self.model, explorer.memo, views=views, identity=identity)
        self.codec = codec
        self.kernel = Kernel(self.model, codec, groups, props, labels=want_graph)
        self.live = self.kernel.live
        self.seen: Any = make_visited(self.fp) if not want_graph else {}
        self.states: list[int] = []
        self.parents = array("i")
        self.boundary: set[int] = set()
        self.examples: dict[str, int | None] = {p.name: None for p in self.kernel.sometimes}
        self.goal_flags = [bytearray() for _ in self.live]
        self.trig_flags = [bytearray() for _ in self.live]
        self.src = array("i")
        self.dst = array("i")
        self.lab = array("i")
        self.check_dead = not bool(getattr(self.model, "all_states_final", False))
        self.nxt: list[int] = []
        self.depth = 0
        self.level_lo = 0
        self._big_modes(explorer, want_graph)

    def _big_modes(self, explorer: Explorer[Any], want_graph: bool) -> None:
        """Symmetry reduction, bitstate storage and checkpoints (issue 19): the state they need
        (see :mod:`.symmetry`, :mod:`.bitstate`, :mod:`.checkpoint`)."""
        from smcd_check.explorer import symmetry

        #: maps a packed state to its orbit's representative (None: no reduction)
        self.canon: Any = None
        if explorer.symmetry_applies(want_graph):
            self.canon = symmetry.Canonicalizer(
                self.model, self.codec, symmetry.declared(self.model)
            )
        #: bitstate mode: the bit table, and per state the index of the step that reached it
        self.bits: Any = None
        self.succ = array("H")
        #: the index of ``states[0]`` (bitstate mode drops the levels already expanded)
        self.base = 0
        if explorer.bitstate is not None:
            from smcd_check.explorer.bitstate import FIELD_BITS, BitTable

            self.bits = self.seen = BitTable(explorer.bitstate, explorer.hashes)
            self.codec.bits = [FIELD_BITS] * len(self.codec.names)
            self.codec._layout()
            self.kernel.relayout_done()
            if self.canon is not None:
                self.canon.relayout_done()
        #: the packed initial states in index order (bitstate counterexamples start there)
        self.init_ints: list[int] = []
        #: transitions and coverage of the run a checkpoint was taken from
        self.carry_transitions = 0
        self.carry_coverage: dict[str, int] = {}
        self.next_checkpoint = 0.0

    # -- per new state -------------------------------------------------------------------------
    def _on_new(self, g: Any, t: int, j: int, f: int) -> None:
        """Check a newly discovered state ``t`` (index ``j``, found by group ``g``) with its
        flags ``f`` and the group's residual checks; raises _Event on a violation."""
        k = self.kernel
        if g.residual_live:
            f |= k.flags(g.residual_live, t)
        if f & VIOLATES:
            self._finish_parent(g, j)
            raise _Event(k.violation_name(t) or "an always property", j)
        if f >> SOME0:
            for jj in range(len(k.sometimes)):
                if f >> (SOME0 + jj) & 1 and jj not in k.found:
                    self._reached(jj, j)
        if f & OUTSIDE:
            self.boundary.add(j)
        if self.live:
            st = k.state(t)
            for q, p in enumerate(self.live):
                self.goal_flags[q].append(1 if p.condition(st) else 0)
                self.trig_flags[q].append(1 if p.trigger(st) else 0)

    def _finish_parent(self, g: Any, j: int) -> None:
        """A violation found by group ``g``: count the parent's transitions of the groups after
        ``g`` too (a run that stops at a violation counts its parent's transitions in full)."""
        k = self.kernel
        pj = self.parents[j] - self.base
        s = self.states[pj] if 0 <= pj < len(self.states) else None
        if s is None:
            return
        after = False
        for h in k.groups:
            if after:
                e = k.lookup(h, s)
                if e[0]:
                    k.hits[e[2]] += 1
            after = after or h is g

    def _reached(self, jj: int, j: int) -> None:
        k = self.kernel
        if jj in k.found:
            return
        self.examples[k.sometimes[jj].name] = j
        k.retire(jj)

    def _check_initial(self, x: int, j: int) -> None:
        k = self.kernel
        name = k.violation_name(x)
        if name is not None:
            raise _Event(name, j)
        st = k.state(x)
        for jj, p in enumerate(k.sometimes):
            if jj not in k.found and p.condition(st):
                self._reached(jj, j)
        if not k.within(x):
            self.boundary.add(j)
        for q, p in enumerate(self.live):
            self.goal_flags[q].append(1 if p.condition(st) else 0)
            self.trig_flags[q].append(1 if p.trigger(st) else 0)

    # -- one level -----------------------------------------------------------------------------
    def _level(self, lo: int, hi: int, clock: _Clock) -> str | None:
        """Expand ``states[lo:hi]``; new states go to ``self.nxt``. Returns a stop reason or
        None; raises _Event (violation, deadlock) or LayoutOverflow."""
        kernel = self.kernel
        nxt = self.nxt
        parents = self.parents
        step = 1 if clock.max_states != math.inf else 1024

        def tick(i: int) -> str | None:
            return clock.tick(len(parents), kernel.transitions, hi - i + len(nxt), self.depth)

        loop = _level_loop(
            tuple(len(g.views) for g in kernel.groups),
            self.check_dead,
            self.canon is not None,
            self.bits is not None,
        )
        codec = self.codec
        args: list[Any] = []
        for g in kernel.groups:
            args += [g.mask, g.cache, g, g.residual_live]
            for v in g.views:
                field = codec.cap[v.k] - 1 if codec.cap[v.k] > 0 else -1
                args += [codec.off[v.k], field, v.of, partial(v.view_of, codec)]
        return loop(  # type: ignore[no-any-return]
            self.states[lo - self.base : hi - self.base],
            lo,
            self.seen,
            nxt,
            parents,
            kernel.hits,
            self.boundary,
            kernel.miss,
            kernel.is_final,
            self._on_new,
            kernel.put,
            lo + step,
            step,
            tick,
            self.canon,
            self.succ.append,
            *args,
        )

    def _graph_level(self, lo: int, hi: int, clock: _Clock) -> str | None:
        """``_level`` that also records every transition (graph mode: liveness, export)."""
        kernel = self.kernel
        index: dict[int, int] = self.seen
        parents = self.parents
        nxt = self.nxt
        boundary = self.boundary
        src, dst, lab = self.src, self.dst, self.lab
        i = lo
        for s in self.states[lo:hi]:
            if i in boundary:
                i += 1
                continue
            live = False
            for g in kernel.groups:
                e = kernel.lookup(g, s)
                ds, fl, eid, labels = e[:4]
                if not ds:
                    continue
                live = True
                kernel.hits[eid] += 1
                for n, t in enumerate(kernel.successors(s, e)):
                    j = index.get(t)
                    if j is None:
                        j = index[t] = len(parents)
                        parents.append(i)
                        nxt.append(t)
                        self._on_new(g, t, j, fl[n] if fl is not None else 0)
                    src.append(i)
                    dst.append(j)
                    lab.append(labels[n])
            if not live and self.check_dead and not kernel.is_final(s):
                raise _Event(DEADLOCK, i)
            i += 1
            if (i & 255) == 0:
                stop = clock.tick(len(parents), kernel.transitions, hi - i + len(nxt), self.depth)
                if stop is not None:
                    return stop
        return None

    # -- driver --------------------------------------------------------------------------------
    def _encode_initial(self) -> list[int]:
        codec = self.codec
        canon = self.canon
        while True:
            try:
                xs = [codec.encode(s) for s in self.model.init_states()]
                return xs if canon is None else [canon(x) for x in xs]
            except LayoutOverflow:
                if self.bits is not None:
                    self._bitstate_overflow()
                codec.relayout()
                self.kernel.relayout_done()
                if canon is not None:
                    canon.relayout_done()

    def _bitstate_overflow(self) -> None:
        from smcd_check.explorer.bitstate import BitstateError

        raise BitstateError(
            "bitstate: a component outgrew the fixed layout (more than 2**22 distinct values); "
            "run without --bitstate"
        )

    def _relayout(self) -> None:
        """Widen the layout and re-encode every stored state."""
        if self.bits is not None:
            self._bitstate_overflow()
        remap = self.codec.relayout()
        self.kernel.relayout_done(remap)
        if self.canon is not None:
            self.canon.relayout_done()
        self.states[:] = [remap(x) for x in self.states]
        if isinstance(self.seen, dict):
            self.seen = {remap(x): j for x, j in self.seen.items()}
        else:
            old = self.seen
            self.seen = make_visited(self.fp)
            if type(self.seen) is set:
                self.seen.update(self.states)
            else:
                for x in self.states:
                    self.seen.add(x)
            del old

    def run(self, until_states: int | None = None) -> ExploreResult | None:
        """Search to the end and return the result; with ``until_states``, stop at the first
        level boundary with at least that many states and return None (the parallel search
        takes over from ``level_lo``, the frontier's first index) unless the search ended
        before."""
        kernel = self.kernel
        clock = self.clock = _Clock(self.ex)
        violation: tuple[str, int] | None = None
        stop: str | None = None
        depth = 0
        handoff = False
        gc_was = gc.isenabled()
        gc.disable()
        saving = self.ex.checkpoint_path is not None
        snapshot: tuple[Any, ...] | None = None
        try:
            if self.ex.resume_path is not None:
                from smcd_check.explorer import checkpoint

                lo, hi, depth = checkpoint.restore(self, self.ex.resume_path)
                self.depth = depth
            else:
                for x in self._encode_initial():
                    if x in self.seen:
                        continue
                    j = len(self.parents)
                    if isinstance(self.seen, dict):
                        self.seen[x] = j
                    elif self.bits is not None:
                        self.bits.add_new(x)
                        self.succ.append(0)
                    else:
                        self.seen.add(x)
                    self.states.append(x)
                    self.init_ints.append(x)
                    self.parents.append(-1)
                    self._check_initial(x, j)
                lo, hi = 0, len(self.states)
            self.next_checkpoint = clock.t0 + self.ex.checkpoint_every
            level = self._graph_level if self.want_graph else self._level
            while lo < hi and stop is None:
                if until_states is not None and hi >= until_states:
                    self.level_lo = lo
                    handoff = True
                    break
                snapshot = (
                    len(self.parents),
                    list(kernel.hits),
                    list(kernel.direct_kinds),
                    kernel.direct_transitions,
                    set(kernel.found),
                    dict(self.examples),
                    [bytearray(f) for f in self.goal_flags],
                    [bytearray(f) for f in self.trig_flags],
                    len(self.src),
                    lo,
                    depth,
                )
                if saving and time.perf_counter() >= self.next_checkpoint:
                    self._save(snapshot)
                self.nxt = []
                try:
                    stop = level(lo, hi, clock)
                except LayoutOverflow:
                    if self.bits is not None:
                        self._bitstate_overflow()
                    self._rollback(snapshot)
                    self._relayout()
                    continue
                finally:
                    self.states.extend(self.nxt)
                if self.nxt and stop is None:
                    depth += 1
                    self.depth = depth
                if self.bits is not None:  # the level is expanded: only its successors stay
                    del self.states[: hi - self.base]
                    self.base = hi
                lo, hi = hi, self.base + len(self.states)
                if self.codec.pressure():
                    self._relayout()
        except _Event as ev:
            violation = (ev.name, ev.index)
        except KeyboardInterrupt:
            stop = "interrupted"
        finally:
            if gc_was:
                gc.enable()
        if handoff:
            return None
        # an interrupt can land between the appends of one discovery: keep the lists aligned
        n = min(self.base + len(self.states), len(self.parents))
        if self.bits is not None:
            n = min(n, len(self.succ))
            del self.succ[n:]
        del self.states[n - self.base :]
        del self.parents[n:]
        if violation is not None:
            depth = max(depth, len(_chain(self.parents, violation[1])) - 1)
        elif stop is not None and saving and snapshot is not None:
            self._save(snapshot)
        transitions = kernel.transitions() + self.carry_transitions
        seconds, cpu, peak, bps = clock.finish(n, transitions, depth)
        return self._result(violation, stop, n, transitions, depth, seconds, cpu, peak, bps)

    def _save(self, snap: tuple[Any, ...]) -> None:
        """Write the checkpoint of the level start ``snap`` (see :mod:`.checkpoint`)."""
        from smcd_check.explorer import checkpoint

        assert self.ex.checkpoint_path is not None
        checkpoint.save(self, snap, self.ex.checkpoint_path)
        self.next_checkpoint = time.perf_counter() + self.ex.checkpoint_every

    def _rollback(self, snap: tuple[Any, ...]) -> None:
        """Undo a level that overflowed the layout (it is redone after a relayout)."""
        n0, hits, dkinds, dtrans, found, examples, goals, trigs, nsrc = snap[:9]
        kernel = self.kernel
        self.states.extend(self.nxt)
        for x in self.states[n0:]:
            if isinstance(self.seen, dict):
                self.seen.pop(x, None)
            else:
                self.seen.discard(x)
        del self.states[n0:]
        del self.parents[n0:]
        self.nxt = []
        kernel.hits[:] = hits + [0] * (len(kernel.hits) - len(hits))
        kernel.direct_kinds[:] = dkinds + [0] * (len(kernel.direct_kinds) - len(dkinds))
        kernel.direct_transitions = dtrans
        kernel.found = found
        kernel.refresh_residual()
        self.examples = examples
        self.goal_flags, self.trig_flags = goals, trigs
        self.boundary = {b for b in self.boundary if b < n0}
        del self.src[nsrc:]
        del self.dst[nsrc:]
        del self.lab[nsrc:]

    # -- the result ----------------------------------------------------------------------------
    def path_to(self, idx: int) -> Path[Any]:
        chain = _chain(self.parents, idx)
        codec = self.codec
        if self.bits is None:
            xs = [self.states[k - self.base] for k in chain]
        else:
            from smcd_check.explorer.bitstate import replay_chain

            xs = replay_chain(
                self.model,
                self.init_ints,
                chain,
                self.succ,
                self._encode,
                codec.decode,
                partial(iter_actions, self.model),
            )
        states = [codec.decode(x) for x in xs]
        if self.canon is not None:
            from smcd_check.explorer.symmetry import concrete_path

            states = concrete_path(self.model, states, lambda s: codec.decode(self._encode(s)))
        return _path_of_chain(self.model, states)

    def _encode(self, s: Any) -> int:
        """The packed (representative) state of model state ``s``, after the search (widens
        the layout when ``s`` has values the search never met)."""
        while True:
            try:
                x = self.codec.encode(s)
                return x if self.canon is None else self.canon(x)  # type: ignore[no-any-return]
            except LayoutOverflow:
                self._relayout()

    def _result(
        self,
        violation: tuple[str, int] | None,
        stop: str | None,
        n: int,
        transitions: int,
        depth: int,
        seconds: float,
        cpu: float,
        peak: int,
        bps: float,
    ) -> ExploreResult:
        model = self.model
        kernel = self.kernel
        complete = violation is None and stop is None
        coverage = kernel.coverage()
        for kind, c in self.carry_coverage.items():
            coverage[kind] = coverage.get(kind, 0) + c
        decode = kernel.codec.decode
        states = self.states
        result = ExploreResult(
            model_name=model.name,
            complete=complete,
            stop_reason=stop if violation is None else "violation",
            unique_state_count=n,
            transition_count=transitions,
            max_depth=depth,
            seconds=seconds,
            cpu_seconds=cpu,
            peak_rss_bytes=peak,
            bytes_per_state=bps,
            coverage=coverage,
            # only a complete exploration can say an action never fires
            never_fired=(
                [t for t in _declared_types(model) if t not in coverage] if complete else []
            ),
            boundary_states=len(self.boundary),
            collision_probability=(n * n / 2.0**65) if self.fp else None,
            state_at=None if self.bits is not None else (lambda k: decode(states[k])),
            symmetry_members=self.canon.members if self.canon is not None else 0,
            resumed=self.ex.resume_path is not None,
        )
        if self.bits is not None:
            from smcd_check.explorer import bitstate

            result.bitstate = bitstate.report(self.bits, n)
        if violation is not None:
            result.violation = Discovery(
                name=violation[0], kind=Kind.ALWAYS.value, path=self.path_to(violation[1])
            )
        for name, idx in self.examples.items():
            result.examples[name] = (
                None
                if idx is None
                else Discovery(name=name, kind="sometimes", path=self.path_to(idx))
            )
        if self.want_graph:
            self._graph_result(result, violation, stop, n)
        return result

    def _graph_result(
        self, result: ExploreResult, violation: tuple[str, int] | None, stop: str | None, n: int
    ) -> None:
        from smcd_check.explorer.liveness import build_graph, check_eventually

        graph = build_graph(
            n,
            self.src,
            self.dst,
            self.lab,
            list(self.kernel.label_names),
            self.boundary,
            init_count=_init_count(self.parents),
        )
        if violation is not None and violation[1] < n:
            graph.nodes[violation[1]]["violation"] = True
        if self.ex.graph:
            result.graph = graph
        if not result.complete:
            return  # liveness needs the whole graph
        for k, p in enumerate(self.live):
            lasso = check_eventually(
                graph, self.goal_flags[k], self.trig_flags[k], self.boundary, self.parents
            )
            if lasso is None:
                result.liveness[p.name] = None
            else:
                chain, loop_start = lasso
                decode = self.kernel.codec.decode
                path = _path_of_chain(self.model, [decode(self.states[c]) for c in chain])
                path.loop_start = loop_start
                result.liveness[p.name] = Discovery(
                    name=p.name, kind=Kind.EVENTUALLY.value, path=path
                )


def _init_count(parents: array) -> int:  # type: ignore[type-arg]
    k = 0
    while k < len(parents) and parents[k] == -1:
        k += 1
    return k


def _path_of_chain(model: Any, states: list[Any]) -> Path[Any]:
    """The path through consecutive states (each a successor of the previous), its actions
    re-identified with the model's ``actions``/``next_state``."""
    acts = [_find_action(model, states[k], states[k + 1])[0] for k in range(len(states) - 1)]
    return Path(states=states, actions=acts)


def explore(
    model: Model[Any, Any],
    *,
    max_states: int | None = None,
    max_seconds: float | None = None,
    graph: bool = False,
    progress: ProgressCallback | None = None,
    memo: bool = True,
    workers: int = 1,
) -> ExploreResult:
    """Convenience: ``Explorer(model).bounded(...).with_graph(graph).bfs()``."""
    return (
        Explorer(model)
        .bounded(max_states=max_states, max_seconds=max_seconds)
        .with_graph(graph)
        .with_memo(memo)
        .with_workers(workers)
        .with_progress(progress)
        .bfs()
    )


def iter_actions(model: Any, state: Any) -> Iterable[tuple[Any, Any]]:
    """(action, next state) for every enabled action of ``state``, in the model's order."""
    for a in model.actions(state):
        t = model.next_state(state, a)
        if t is not None:
            yield a, t
