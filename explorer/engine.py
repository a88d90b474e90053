"""Breadth-first exploration of every reachable state of a :class:`~.model.Model`.

Theory of operation
-------------------
The explorer walks the state graph breadth-first, so the first state found that breaks an
``always`` property (or the first deadlock) lies at the smallest possible depth: every
counterexample it reports is a shortest one. A property is checked when a state is *discovered*
(BFS order), which is what makes the violating path minimal: all states of depth <= d were
checked before the first state of depth d + 1.

Storage is compact and separate from the graph library. The hot loop keeps

* a map from state to its discovery index (exact; or, with ``fingerprints=True``, from the
  state's 64-bit ``hash`` - TLC-style, see :attr:`ExploreResult.collision_probability`); a
  model may offer ``state_key(s)``, an injective, cheaper-to-hash key used instead of the
  state (e.g. a tuple of interned sub-state ids), and ``first_violation(s)``, the name of the
  first ``always`` property (in declaration order) that fails in ``s`` or None, which must
  agree with the properties' conditions and lets the model check them all in one pass,
* ``parents``: an ``array('i')`` of parent indices (so a shortest path is recovered by
  following it backwards and re-identifying each action with ``next_state``),
* for packed models (``model.packed()``), states as Python ints and successors through
  memoised per-family xor deltas (see :mod:`.model`): the search then touches only ints.

The networkx graph is built only when liveness (``eventually``) properties are checked or a graph
export is asked for: transitions are then recorded as three ``array`` columns during the search
and turned into a :class:`networkx.DiGraph` afterwards (:mod:`.liveness`, :mod:`.graph`).

Coverage counts how often each action type fired (packed models: each family); action types
the model declares (``action_types()``) that never fired are listed.

Stopping: ``max_states``, ``max_seconds`` and Ctrl-C (``KeyboardInterrupt``) end the search with
a partial result ("no violation in the N states explored"); ``complete`` is then ``False``.
"""

from __future__ import annotations

import gc
import math
import resource
import time
from array import array
from collections.abc import Callable, Hashable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

from smcd_check.explorer.model import (
    Kind,
    Model,
    PackedModel,
    Property,
    action_label,
    action_type_name,
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
    #: exact generic mode: the state with a given discovery index (graph export labels)
    state_at: Callable[[int], Any] | None = None

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
        self.use_packed = True
        self.progress: ProgressCallback | None = None
        self.progress_interval = 0.25

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

    def with_packed(self, enabled: bool = True) -> Explorer[S]:
        """Use the model's packed fast path when it offers one (default on)."""
        self.use_packed = enabled
        return self

    def with_progress(
        self, callback: ProgressCallback | None, interval: float = 0.25
    ) -> Explorer[S]:
        """Call ``callback`` with a :class:`Progress` about every ``interval`` seconds."""
        self.progress = callback
        self.progress_interval = interval
        return self

    # -- search ----------------------------------------------------------------------------
    def bfs(self) -> ExploreResult:
        """Explore breadth-first; returns the :class:`ExploreResult`."""
        props = [as_property(p) for p in self.model.properties()]
        names = [p.name for p in props]
        if len(set(names)) != len(names):
            raise ValueError(f"property names must be unique: {names}")
        live = [p for p in props if p.kind is Kind.EVENTUALLY]
        packed_fn = getattr(self.model, "packed", None)
        packed = packed_fn() if (packed_fn is not None and self.use_packed) else None
        if (
            packed is not None
            and not self.graph
            and not live
            and all(p.kind is Kind.ALWAYS for p in props)
        ):
            return _PackedSearch(self, packed, props).run()
        return _GenericSearch(self, props, want_graph=self.graph or bool(live)).run()


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

    def tick(self, states: int, transitions: int, frontier: int, depth: int) -> str | None:
        """Report progress when due; return a stop reason when a bound is reached."""
        now = time.perf_counter()
        if self.progress is not None and now >= self.next_report:
            self.next_report = now + self.interval
            self.progress(Progress(states, transitions, frontier, depth, now - self.t0))
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
# generic search over hashable states


class _GenericSearch:
    def __init__(self, explorer: Explorer[Any], props: list[Property[Any]], *, want_graph: bool):
        self.ex = explorer
        self.model = explorer.model
        self.props = props
        self.always = [p for p in props if p.kind is Kind.ALWAYS]
        self.sometimes = [p for p in props if p.kind is Kind.SOMETIMES]
        self.live = [p for p in props if p.kind is Kind.EVENTUALLY]
        self.want_graph = want_graph
        self.fp = explorer.fingerprints

    def run(self) -> ExploreResult:
        model = self.model
        clock = _Clock(self.ex)
        fp = self.fp
        index: dict[Any, int] = {}
        parents = array("i")
        stored: list[Any] = []  # exact mode: the states by index
        fps = array("q")  # fingerprint mode: the fingerprints by index
        boundary: set[int] = set()
        src = array("i")
        dst = array("i")
        lab = array("i")
        labels: dict[str, int] = {}
        goal_flags = [bytearray() for _ in self.live]
        trig_flags = [bytearray() for _ in self.live]
        examples: dict[str, int | None] = {p.name: None for p in self.sometimes}
        pending_some = list(self.sometimes)
        coverage: dict[str, int] = {}
        violation: tuple[str, str, int] | None = None
        stop: str | None = None
        transitions = 0
        depth = 0
        want_graph = self.want_graph
        always = self.always
        live = self.live
        within = model.within_boundary
        # coverage key: the model may name finer kinds than the class (e.g. the data-path
        # action inside a composed step), so an inner action that never fires is reported too
        kind_of: Callable[[Any], str] = getattr(model, "action_kind", action_type_name)
        actions = model.actions
        next_state = model.next_state
        frontier: list[tuple[int, Any]] = []

        keyf = getattr(model, "state_key", None)

        def discover(t: Any, parent: int) -> tuple[int, bool]:
            """Store a state; return (index, is_new)."""
            if keyf is not None:
                key = keyf(t)
                if fp:
                    key = hash(key)
            else:
                key = hash(t) if fp else t
            j = index.get(key)
            if j is not None:
                return j, False
            j = len(parents)
            index[key] = j
            parents.append(parent)
            if fp:
                fps.append(key)
            else:
                stored.append(t)
            return j, True

        first_violation = getattr(model, "first_violation", None)

        def check(t: Any, j: int) -> tuple[str, str, int] | None:
            if first_violation is not None:
                name = first_violation(t)
                if name is not None:
                    return (name, Kind.ALWAYS.value, j)
            else:
                for p in always:
                    if not p.condition(t):
                        return (p.name, Kind.ALWAYS.value, j)
            if pending_some:
                for p in list(pending_some):
                    if p.condition(t):
                        examples[p.name] = j
                        pending_some.remove(p)
            for k, p in enumerate(live):
                goal_flags[k].append(1 if p.condition(t) else 0)
                trig_flags[k].append(1 if p.trigger(t) else 0)
            if not within(t):
                boundary.add(j)
            return None

        gc_was = gc.isenabled()
        gc.disable()
        try:
            for s in model.init_states():
                j, new = discover(s, -1)
                if new:
                    frontier.append((j, s))
                    violation = check(s, j)
                    if violation is not None:
                        break
            expanded = 0
            while frontier and violation is None and stop is None:
                nxt: list[tuple[int, Any]] = []
                for i, s in frontier:
                    expanded += 1
                    if (expanded & 255) == 0:
                        stop = clock.tick(len(parents), transitions, len(nxt), depth)
                        if stop is not None:
                            break
                    if i in boundary:
                        continue
                    n_succ = 0
                    for a in actions(s):
                        t = next_state(s, a)
                        if t is None:
                            continue
                        n_succ += 1
                        name = kind_of(a)
                        coverage[name] = coverage.get(name, 0) + 1
                        j, new = discover(t, i)
                        if want_graph:
                            lbl = action_label(model, a)
                            li = labels.get(lbl)
                            if li is None:
                                li = labels[lbl] = len(labels)
                            src.append(i)
                            dst.append(j)
                            lab.append(li)
                        if new:
                            violation = check(t, j)
                            if violation is not None:
                                break
                            nxt.append((j, t))
                    transitions += n_succ
                    if violation is not None:
                        break
                    if n_succ == 0 and not model.is_final(s):
                        violation = (DEADLOCK, Kind.ALWAYS.value, i)
                        break
                    if len(parents) >= clock.max_states:
                        stop = "max-states"
                        break
                if nxt and violation is None and stop is None:
                    depth += 1
                frontier = nxt
        except KeyboardInterrupt:
            stop = "interrupted"
        finally:
            if gc_was:
                gc.enable()

        n = len(parents)
        if violation is not None:
            # the depth of the violating state, for the record
            depth = max(depth, len(_chain(parents, violation[2])) - 1)
        seconds, cpu, peak, bps = clock.finish(n, transitions, depth)

        def path_to(idx: int) -> Path[Any]:
            chain = _chain(parents, idx)
            if not fp:
                states = [stored[k] for k in chain]
                acts = [
                    _find_action(model, states[k], states[k + 1])[0] for k in range(len(states) - 1)
                ]
                return Path(states=states, actions=acts)
            return _fingerprint_path(model, [fps[k] for k in chain])

        result = ExploreResult(
            model_name=model.name,
            complete=violation is None and stop is None,
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
                [t for t in _declared_types(model) if t not in coverage]
                if violation is None and stop is None
                else []
            ),
            boundary_states=len(boundary),
            collision_probability=(n * n / 2.0**65) if fp else None,
            state_at=None if fp else stored.__getitem__,
        )
        if violation is not None:
            result.violation = Discovery(
                name=violation[0], kind=violation[1], path=path_to(violation[2])
            )
        for name, idx in examples.items():
            result.examples[name] = (
                None if idx is None else Discovery(name=name, kind="sometimes", path=path_to(idx))
            )
        if want_graph:
            from smcd_check.explorer.liveness import build_graph, check_eventually

            inv_labels = [""] * len(labels)
            for text, li in labels.items():
                inv_labels[li] = text
            graph = build_graph(
                n, src, dst, lab, inv_labels, boundary, init_count=_init_count(parents)
            )
            if violation is not None and violation[2] < n:
                graph.nodes[violation[2]]["violation"] = True
            if self.ex.graph:
                result.graph = graph
            if result.complete or stop is not None:
                for k, p in enumerate(live):
                    if not result.complete:
                        continue  # liveness needs the whole graph
                    lasso = check_eventually(graph, goal_flags[k], trig_flags[k], boundary, parents)
                    if lasso is None:
                        result.liveness[p.name] = None
                    else:
                        chain, loop_start = lasso
                        result.liveness[p.name] = Discovery(
                            name=p.name,
                            kind=Kind.EVENTUALLY.value,
                            path=_path_of_chain(
                                model,
                                chain,
                                stored if not fp else None,
                                fps if fp else None,
                                loop_start,
                            ),
                        )
        return result


def _init_count(parents: array) -> int:  # type: ignore[type-arg]
    k = 0
    while k < len(parents) and parents[k] == -1:
        k += 1
    return k


def _path_of_chain(
    model: Any, chain: list[int], stored: list[Any] | None, fps: Any, loop_start: int | None
) -> Path[Any]:
    """A path along consecutive explored indices (each a successor of the previous)."""
    if stored is not None:
        states = [stored[k] for k in chain]
        acts = [_find_action(model, states[k], states[k + 1])[0] for k in range(len(states) - 1)]
        return Path(states=states, actions=acts, loop_start=loop_start)
    path = _fingerprint_path(model, [fps[k] for k in chain])
    path.loop_start = loop_start
    return path


def _fingerprint_path(model: Any, chain_fps: list[int]) -> Path[Any]:
    keyf = getattr(model, "state_key", None)

    def fingerprint(x: Any) -> int:
        return hash(keyf(x)) if keyf is not None else hash(x)

    s = next(x for x in model.init_states() if fingerprint(x) == chain_fps[0])
    states = [s]
    acts = []
    for f in chain_fps[1:]:
        a, s = _find_action(model, s, f, key=fingerprint)
        states.append(s)
        acts.append(a)
    return Path(states=states, actions=acts)


# ------------------------------------------------------------------------------------------
# packed fast path


def _gen_packed_loop(nfam: int, check_err: bool, check_dead: bool) -> Callable[..., Any]:
    """Generate the BFS loop unrolled over ``nfam`` families (locals, no tuple lookups).

    One call explores level after level: ``frontier`` is the current level's states and ``i``
    the index of the state being expanded in ``states`` (all states in BFS order). For each
    family ``k`` the successors' xor deltas come from the cache ``c<k>`` (the miss path ``x<k>``
    computes and caches them); a new successor goes to ``seen``, the next level and
    ``parents``. Measured alternatives that were slower: collecting a level's successors and
    deduplicating with set operations (keeps every successor int alive: cache misses), and
    ``dict.get`` + ``is None`` instead of ``try``/``except KeyError`` (zero-cost in 3.11).
    """
    fam_args = ", ".join(f"m{k}, c{k}, x{k}" for k in range(nfam))
    counts = ", ".join(f"n{k}" for k in range(nfam))
    body: list[str] = []
    for k in range(nfam):
        body += [
            f"                k = s & m{k}",
            "                try:",
            f"                    ds = c{k}[k]",
            "                except KeyError:",
            f"                    ds = x{k}(k)",
            "                if ds:",
            f"                    n{k} += len(ds)",
        ]
        if check_dead:
            body.append("                    live = 1")
        body += [
            "                    for d in ds:",
            "                        t = s ^ d",
            "                        if t not in seen:",
            "                            add(t); napp(t); papp(i)",
        ]
        if check_err:
            body += [
                "                            if t & err:",
                "                                states.extend(nxt)",
                f"                                return ('error', i, depth, ({counts},))",
            ]
    src = [
        f"def loop(states, parents, seen, frontier, depth, err, tick, dead, {fam_args}):",
        "    papp = parents.append; add = seen.add",
        f"    {' = '.join(f'n{k}' for k in range(nfam))} = 0",
        "    i = 0",
        "    chk = 4096",
        "    nxt = []",
        "    try:",
        "        while frontier:",
        "            nxt = []",
        "            napp = nxt.append",
        "            for s in frontier:",
        "                if i >= chk:",
        "                    stop = tick(len(states) + len(nxt),"
        f" ({counts},), len(frontier), depth)",
        "                    if stop is not None:",
        "                        states.extend(nxt)",
        f"                        return (stop, i, depth, ({counts},))",
        "                    chk = i + 4096",
    ]
    if check_dead:
        src.append("                live = 0")
    src += body
    if check_dead:
        src += [
            "                if not live and dead(s):",
            "                    states.extend(nxt)",
            f"                    return ('deadlock', i, depth, ({counts},))",
        ]
    src += [
        "                i += 1",
        "            states.extend(nxt)",
        "            if nxt:",
        "                depth += 1",
        "            frontier = nxt",
        "    except KeyboardInterrupt:",
        "        states.extend(nxt)",
        f"        return ('interrupted', i, depth, ({counts},))",
        f"    return (None, i, depth, ({counts},))",
    ]
    namespace: dict[str, Any] = {}
    exec(compile("\n".join(src), f"<packed bfs x{nfam}>", "exec"), namespace)
    fn: Callable[..., Any] = namespace["loop"]
    return fn


class _PackedSearch:
    """BFS on packed ints (see :mod:`.model`, "The fast path")."""

    def __init__(self, explorer: Explorer[Any], packed: PackedModel, props: list[Property[Any]]):
        self.ex = explorer
        self.model = explorer.model
        self.packed = packed
        self.props = props

    def _expander(
        self, fam: Any, cache: dict[int, tuple[int, ...]]
    ) -> Callable[[int], tuple[int, ...]]:
        unpack = self.packed.unpack
        pack = self.packed.pack
        next_state = self.model.next_state
        fam_actions = fam.actions

        def expand(key: int) -> tuple[int, ...]:
            u = unpack(key)
            out = []
            for a in fam_actions(u):
                t = next_state(u, a)
                if t is not None:
                    out.append(pack(t) ^ key)
            ds = tuple(out)
            cache[key] = ds
            return ds

        return expand

    def run(self) -> ExploreResult:
        model = self.model
        packed = self.packed
        clock = _Clock(self.ex)
        fams = packed.families
        caches: list[dict[int, tuple[int, ...]]] = [{} for _ in fams]
        args: list[Any] = []
        for fam, cache in zip(fams, caches, strict=True):
            args += [fam.mask, cache, self._expander(fam, cache)]
        declared_all_final = bool(getattr(model, "all_states_final", False))
        loop = _gen_packed_loop(len(fams), packed.error_mask != 0, not declared_all_final)

        def dead(x: int) -> bool:
            return not model.is_final(packed.unpack(x))

        def tick(nstates: int, counts: tuple[int, ...], frontier: int, depth: int) -> str | None:
            return clock.tick(nstates, sum(counts), frontier, depth)

        states: list[int] = []
        seen: set[int] = set()
        parents = array("i")
        stop: str | None = None
        err_idx: int | None = None
        dead_idx: int | None = None
        counts: tuple[int, ...] = (0,) * len(fams)
        depth = 0
        for s in model.init_states():
            x = packed.pack(s)
            if x not in seen:
                seen.add(x)
                states.append(x)
                parents.append(-1)
                if x & packed.error_mask and err_idx is None:
                    err_idx = len(states) - 1
        gc_was = gc.isenabled()
        gc.disable()
        try:
            if err_idx is None:
                outcome, i, depth, counts = loop(
                    states, parents, seen, list(states), 0, packed.error_mask, tick, dead, *args
                )
                if outcome == "error":
                    err_idx = len(states) - 1
                elif outcome == "deadlock":
                    dead_idx = i
                elif outcome is not None:
                    stop = outcome
        finally:
            if gc_was:
                gc.enable()
        # an interrupt can land between the appends of one discovery: keep the lists aligned
        n = min(len(states), len(parents))
        del states[n:]
        del parents[n:]
        transitions = sum(counts)
        found = err_idx if err_idx is not None else dead_idx
        if found is not None:
            depth = len(_chain(parents, found)) - 1
        seconds, cpu, peak, bps = clock.finish(n, transitions, depth)
        coverage = {fam.name: c for fam, c in zip(fams, counts, strict=True) if c}
        complete = stop is None and found is None
        result = ExploreResult(
            model_name=model.name,
            complete=complete,
            stop_reason=stop if found is None else "violation",
            unique_state_count=n,
            transition_count=transitions,
            max_depth=depth,
            seconds=seconds,
            cpu_seconds=cpu,
            peak_rss_bytes=peak,
            bytes_per_state=bps,
            coverage=coverage,
            never_fired=[f.name for f in fams if f.name not in coverage] if complete else [],
        )
        if found is not None:
            chain = [packed.unpack(states[k]) for k in _chain(parents, found)]
            acts = [_find_action(model, chain[k], chain[k + 1])[0] for k in range(len(chain) - 1)]
            path: Path[Any] = Path(states=chain, actions=acts)
            if err_idx is None:
                name = DEADLOCK
            else:
                last = chain[-1]
                name = next(
                    (p.name for p in self.props if p.kind is Kind.ALWAYS and not p.condition(last)),
                    "an always property (packed error bit set)",
                )
            result.violation = Discovery(name=name, kind=Kind.ALWAYS.value, path=path)
        # keep the store reachable for benchmarks that measure it
        self.states, self.seen, self.parents = states, seen, parents
        return result


def explore(
    model: Model[Any, Any],
    *,
    max_states: int | None = None,
    max_seconds: float | None = None,
    graph: bool = False,
    progress: ProgressCallback | None = None,
    packed: bool = True,
) -> ExploreResult:
    """Convenience: ``Explorer(model).bounded(...).with_graph(graph).bfs()``."""
    return (
        Explorer(model)
        .bounded(max_states=max_states, max_seconds=max_seconds)
        .with_graph(graph)
        .with_packed(packed)
        .with_progress(progress)
        .bfs()
    )


def iter_actions(model: Any, state: Any) -> Iterable[tuple[Any, Any]]:
    """(action, next state) for every enabled action of ``state``, in the model's order."""
    for a in model.actions(state):
        t = model.next_state(state, a)
        if t is not None:
            yield a, t
