"""Simulation: random deep walks with the same property checks (TLC's ``-simulate`` mode).

Theory of operation
-------------------
Breadth-first search proves a property for *every* reachable state but needs memory for all of
them; a space too big to exhaust can still be sampled. A *walk* starts at an initial state
chosen at random and takes one enabled action chosen uniformly at random after another, until

* a state breaks an ``always`` property (a counterexample: the search stops),
* a state has no enabled action: allowed when the model says the state is final, otherwise a
  **deadlock** (a counterexample, as in the breadth-first search),
* the state lies outside the model's boundary (``within_boundary`` is False: the explorer
  would not expand it either), or
* the walk reaches ``depth`` steps.

Every state a walk visits is checked against every ``always`` property; ``sometimes``
properties record the first walk that reaches them (a sampled run cannot say one is never
reachable: it reports "not reached in N walks"). ``eventually`` properties need the whole graph
and are not checked here.

Choosing uniformly among the *enabled* actions does not need every successor: the candidate
actions are tried in a random order and the first enabled one is taken; among the enabled
actions each is equally likely to come first. Only a state where every candidate fails is a
dead end, and only then are all candidates tried.

A counterexample walk may pass the same state twice; the loops are cut out before it is
reported (the path stays a valid path of the model: the state after the loop is the state
before it), so the trace is usually far shorter than the walk, though not a shortest one.

Reproducible: the walks are a function of the seed (``random.Random(seed)``) and of the model's
deterministic action order. Uses only the :class:`~.model.Model` interface (and its optional
``action_kind``/``action_label`` hooks for the coverage table), never the engine's internals;
the counterexample is an engine :class:`~.engine.Discovery`, so the trace and chart writers
take it as they take a breadth-first one.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from smcd_check.explorer.engine import DEADLOCK, Discovery, Path, peak_rss
from smcd_check.explorer.model import Kind, Model, Property, action_type_name, as_property

#: defaults when the caller gives none (TLC's default depth is 100 as well)
DEFAULT_WALKS = 1000
DEFAULT_DEPTH = 100


@dataclass(slots=True)
class SimProgress:
    """A snapshot for the progress callback."""

    walks: int
    states: int
    max_depth: int
    seconds: float

    @property
    def walks_per_second(self) -> float:
        return self.walks / self.seconds if self.seconds > 0 else 0.0

    @property
    def states_per_second(self) -> float:
        return self.states / self.seconds if self.seconds > 0 else 0.0


@dataclass(slots=True)
class SimulationResult:
    """What a simulation did and found."""

    model_name: str
    seed: int
    walks_requested: int
    depth_limit: int
    #: walks finished (the interrupted or violating walk counts)
    walks: int = 0
    #: states checked (initial states included; a state visited twice counts twice)
    states: int = 0
    #: transitions taken
    steps: int = 0
    #: the longest walk, in steps
    max_depth: int = 0
    #: how the walks ended: "final" (no action, allowed), "depth" (hit the limit), "boundary"
    endings: dict[str, int] = field(default_factory=dict)
    seconds: float = 0.0
    cpu_seconds: float = 0.0
    peak_rss_bytes: int = 0
    #: "violation", "interrupted", "max-seconds", "max-states" or None (all walks done)
    stop_reason: str | None = None
    violation: Discovery | None = None
    #: steps of the violating walk before its loops were cut
    violation_walk_length: int | None = None
    #: sometimes properties: the first walk's path reaching it (None: not reached)
    examples: dict[str, Discovery | None] = field(default_factory=dict)
    #: transitions per action kind
    coverage: dict[str, int] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return self.violation is None

    @property
    def walks_per_second(self) -> float:
        """Walks per CPU second."""
        return self.walks / self.cpu_seconds if self.cpu_seconds > 0 else 0.0

    @property
    def states_per_second(self) -> float:
        """States checked per CPU second."""
        return self.states / self.cpu_seconds if self.cpu_seconds > 0 else 0.0

    @property
    def mean_depth(self) -> float:
        return self.steps / self.walks if self.walks else 0.0

    def verdict(self) -> str:
        """One line saying what was found (or not) in how many walks."""
        if self.violation is not None:
            return (
                f"VIOLATION: {self.violation.name} (walk {self.walks}, {len(self.violation.path)} "
                f"steps after cutting loops from {self.violation_walk_length}; seed {self.seed})"
            )
        done = f"{self.walks:,} walks ({self.states:,} states checked)"
        if self.stop_reason is not None:
            return f"no violation in {done} (stopped: {self.stop_reason})"
        return f"no violation in {done}, depth up to {self.max_depth}"


SimProgressCallback = Callable[[SimProgress], None]


def _kind_of(model: Any) -> Callable[[Any], str]:
    hook = getattr(model, "action_kind", None)
    return hook if hook is not None else action_type_name


def cut_loops(states: Sequence[Any], actions: Sequence[Any]) -> Path[Any]:
    """The path with every revisit cut out: when a state recurs, the steps between its two
    visits are dropped (each state of the result occurs once)."""
    out_states: list[Any] = []
    out_actions: list[Any] = []
    where: dict[Any, int] = {}
    for k, s in enumerate(states):
        seen = where.get(s)
        if seen is not None:
            for dropped in out_states[seen + 1 :]:
                del where[dropped]
            del out_states[seen + 1 :]
            del out_actions[seen:]
        else:
            where[s] = len(out_states)
            out_states.append(s)
        if k < len(actions):
            out_actions.append(actions[k])
    # the action after the last kept state is not part of the path
    del out_actions[len(out_states) - 1 :]
    return Path(states=out_states, actions=out_actions)


def simulate(
    model: Model[Any, Any],
    *,
    walks: int = DEFAULT_WALKS,
    depth: int = DEFAULT_DEPTH,
    seed: int = 0,
    max_seconds: float | None = None,
    max_states: int | None = None,
    progress: SimProgressCallback | None = None,
    progress_interval: float = 0.25,
) -> SimulationResult:
    """Run up to ``walks`` random walks of at most ``depth`` steps each (see the module doc).

    Stops at the first counterexample, after ``max_seconds`` (wall clock) or ``max_states``
    states, or on Ctrl-C (``KeyboardInterrupt``: a partial result, ``stop_reason``
    "interrupted").

    Raises:
        ValueError: ``walks`` or ``depth`` below 1, or property names that are not unique.
    """
    if walks < 1 or depth < 1:
        raise ValueError(f"walks and depth must be at least 1, got walks={walks} depth={depth}")
    props: list[Property[Any]] = [as_property(p) for p in model.properties()]
    names = [p.name for p in props]
    if len(set(names)) != len(names):
        raise ValueError(f"property names must be unique: {names}")
    always = [(p.name, p.condition) for p in props if p.kind is Kind.ALWAYS]
    sometimes = [(p.name, p.condition) for p in props if p.kind is Kind.SOMETIMES]
    result = SimulationResult(
        model_name=model.name, seed=seed, walks_requested=walks, depth_limit=depth
    )
    result.examples = {name: None for name, _ in sometimes}
    pending_examples = list(sometimes)
    rng = random.Random(seed)
    inits = list(model.init_states())
    actions_of, next_state = model.actions, model.next_state
    within, is_final = model.within_boundary, model.is_final
    kind_of = _kind_of(model)
    coverage = result.coverage
    endings = result.endings
    t0, c0 = time.perf_counter(), time.process_time()
    deadline = t0 + max_seconds if max_seconds is not None else None
    next_report = t0 + progress_interval
    states_cap = max_states if max_states is not None else -1

    def broken(s: Any) -> str | None:
        for name, cond in always:
            if not cond(s):
                return name
        return None

    states: list[Any] = []
    acts: list[Any] = []
    counted = 0  # steps of the current walk already added to result.steps
    try:
        while result.walks < walks:
            result.walks += 1
            s = inits[rng.randrange(len(inits))]
            states = [s]
            acts = []
            counted = 0
            ending = "depth"
            while True:
                result.states += 1
                bad = broken(s)
                if bad is not None:
                    result.violation = Discovery(
                        name=bad, kind=Kind.ALWAYS.value, path=Path(states=states, actions=acts)
                    )
                    break
                if pending_examples:
                    for item in list(pending_examples):
                        if item[1](s):
                            pending_examples.remove(item)
                            result.examples[item[0]] = Discovery(
                                name=item[0],
                                kind=Kind.SOMETIMES.value,
                                path=cut_loops(states, acts),
                            )
                if len(acts) >= depth:
                    break
                if not within(s):
                    ending = "boundary"
                    break
                cands = list(actions_of(s))
                chosen = None
                while cands:
                    k = rng.randrange(len(cands))
                    a = cands[k]
                    cands[k] = cands[-1]
                    cands.pop()
                    t = next_state(s, a)
                    if t is not None:
                        chosen = (a, t)
                        break
                if chosen is None:
                    if is_final(s):
                        ending = "final"
                        break
                    result.violation = Discovery(
                        name=DEADLOCK,
                        kind=Kind.ALWAYS.value,
                        path=Path(states=states, actions=acts),
                    )
                    break
                a, s = chosen
                acts.append(a)
                states.append(s)
                key = kind_of(a)
                coverage[key] = coverage.get(key, 0) + 1
            result.steps += len(acts)
            counted = len(acts)
            if len(acts) > result.max_depth:
                result.max_depth = len(acts)
            if result.violation is not None:
                result.stop_reason = "violation"
                break
            endings[ending] = endings.get(ending, 0) + 1
            now = time.perf_counter()
            if progress is not None and now >= next_report:
                next_report = now + progress_interval
                progress(SimProgress(result.walks, result.states, result.max_depth, now - t0))
            if deadline is not None and now >= deadline and result.walks < walks:
                result.stop_reason = "max-seconds"
                break
            if 0 <= states_cap <= result.states and result.walks < walks:
                result.stop_reason = "max-states"
                break
    except KeyboardInterrupt:
        result.stop_reason = "interrupted"
        # the interrupted walk's steps so far
        result.steps += len(acts) - counted
        result.max_depth = max(result.max_depth, len(acts))
    if result.violation is not None:
        path = result.violation.path
        result.violation_walk_length = len(path)
        result.violation = Discovery(
            name=result.violation.name,
            kind=result.violation.kind,
            path=cut_loops(path.states, path.actions),
        )
    result.seconds = time.perf_counter() - t0
    result.cpu_seconds = time.process_time() - c0
    result.peak_rss_bytes = peak_rss()
    if progress is not None:
        progress(SimProgress(result.walks, result.states, result.max_depth, result.seconds))
    return result
