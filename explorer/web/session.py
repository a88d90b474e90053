"""Paths through a model as the web explorer addresses them: parsing, resolving, choices.

A *path* in a URL is the list of choices made from the start, written ``0.3.1.2``: the first
number picks an initial state (``init_states()`` order), each further number picks one of the
**enabled** actions of the state reached so far, in the model's deterministic ``actions``
order. Since that order is part of the model's contract, the same URL names the same states in
every run of the same spec and config: a link can be shared and survives a restart of the
server (it does not survive a change of the spec that adds, removes or reorders actions).

Nothing here changes a file or the model's configuration: the web explorer is read-only.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from smcd_check.explorer.engine import DEADLOCK, Explorer, Path
from smcd_check.explorer.model import Kind, Property, action_label, as_property

#: the longest path a URL may name (a guard against requests that would take minutes)
MAX_PATH_STEPS = 5000
#: how long a "find a counterexample" search may run (wall seconds) unless told otherwise
SEARCH_SECONDS = 60.0

_PATH_RE = re.compile(r"[0-9]{1,6}(\.[0-9]{1,6})*")


class RequestError(Exception):
    """A request the explorer cannot answer: ``status`` (4xx) and a message naming why."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


def parse_path(text: str | None) -> tuple[int, ...]:
    """``"0.3.1"`` -> ``(0, 3, 1)``; ``""`` or None -> ``()``.

    Raises:
        RequestError: 400, naming what is malformed.
    """
    if text is None or text == "":
        return ()
    if len(text) > 8 * MAX_PATH_STEPS or not _PATH_RE.fullmatch(text):
        shown = text if len(text) <= 40 else text[:37] + "..."
        raise RequestError(
            400,
            f"malformed path {shown!r}: expected choice numbers separated by dots, "
            "e.g. 0.3.1 (the initial state, then one enabled action per step)",
        )
    out = tuple(int(x) for x in text.split("."))
    if len(out) > MAX_PATH_STEPS + 1:
        raise RequestError(400, f"path too long: {len(out) - 1} steps (at most {MAX_PATH_STEPS})")
    return out


def format_path(indices: Sequence[int]) -> str:
    """The inverse of :func:`parse_path`."""
    return ".".join(str(i) for i in indices)


def enabled(model: Any, state: Any) -> list[tuple[Any, Any]]:
    """(action, next state) of every enabled action of ``state``, in the model's order."""
    out = []
    for a in model.actions(state):
        t = model.next_state(state, a)
        if t is not None:
            out.append((a, t))
    return out


@dataclass(slots=True)
class Walk:
    """A resolved path: ``states[k + 1]`` is reached from ``states[k]`` by ``actions[k]``."""

    indices: tuple[int, ...]
    states: list[Any] = field(default_factory=list)
    actions: list[Any] = field(default_factory=list)

    def prefix(self, at: int) -> Path[Any]:
        """The engine :class:`Path` of the first ``at`` steps."""
        return Path(states=self.states[: at + 1], actions=self.actions[:at])


def resolve(model: Any, indices: Sequence[int]) -> Walk:
    """Follow ``indices`` from the initial states.

    Raises:
        RequestError: 404 naming the step whose choice does not exist and how many there are.
    """
    walk = Walk(indices=tuple(indices))
    if not indices:
        return walk
    inits = list(model.init_states())
    if not 0 <= indices[0] < len(inits):
        raise RequestError(
            404,
            f"no initial state {indices[0]}: the model has {len(inits)} "
            f"(choices 0..{len(inits) - 1})",
        )
    s = inits[indices[0]]
    walk.states.append(s)
    for k, i in enumerate(indices[1:], start=1):
        succ = enabled(model, s)
        if not 0 <= i < len(succ):
            where = "it has none" if not succ else f"choices 0..{len(succ) - 1}"
            raise RequestError(
                404,
                f"no action {i} at step {k}: the state after step {k - 1} has "
                f"{len(succ)} enabled action(s) ({where})",
            )
        a, s = succ[i]
        walk.actions.append(a)
        walk.states.append(s)
    return walk


def indices_of(model: Any, states: Sequence[Any], actions: Sequence[Any]) -> tuple[int, ...]:
    """The URL choices of a path given by its states and actions (e.g. a counterexample).

    Raises:
        ValueError: a state or action of the path is not the model's (another config or spec).
    """
    inits = list(model.init_states())
    try:
        out = [inits.index(states[0])]
    except ValueError:
        raise ValueError("the path's first state is not an initial state of this model") from None
    for k, (s, a, t) in enumerate(zip(states, actions, states[1:], strict=False), start=1):
        succ = enabled(model, s)
        pick = next((i for i, (b, u) in enumerate(succ) if b == a and u == t), None)
        if pick is None:
            raise ValueError(f"step {k} ({action_label(model, a)}) is not enabled in this model")
        out.append(pick)
    return tuple(out)


@dataclass(frozen=True, slots=True)
class PropertyStatus:
    """One property evaluated in one state."""

    name: str
    kind: str
    #: always: holds here; sometimes: satisfied here; eventually: the goal holds here
    holds: bool


def property_statuses(props: Sequence[Property[Any]], state: Any) -> list[PropertyStatus]:
    """Every property of the model evaluated in ``state`` (declaration order)."""
    return [PropertyStatus(p.name, p.kind.value, bool(p.condition(state))) for p in props]


def first_broken(props: Sequence[Property[Any]], state: Any) -> str | None:
    """The first ``always`` property that fails in ``state``, or None."""
    return next(
        (p.name for p in props if p.kind is Kind.ALWAYS and not p.condition(state)),
        None,
    )


def newly_broken(props: Sequence[Property[Any]], before: Any, after: Any) -> str | None:
    """The first ``always`` property that holds in ``before`` and fails in ``after``."""
    return next(
        (
            p.name
            for p in props
            if p.kind is Kind.ALWAYS and p.condition(before) and not p.condition(after)
        ),
        None,
    )


@dataclass(slots=True)
class SearchOutcome:
    """What a breadth-first "find a counterexample" search found (cached per model)."""

    verdict: str
    states: int
    complete: bool
    #: the counterexample's choices (None: no violation found)
    indices: tuple[int, ...] | None
    property_name: str | None


class Workspace:
    """The models the explorer serves, built on demand and cached per (config, fault).

    ``build(config, fault)`` builds a model (default: :func:`smcd_check.spec.configs.
    build_system`); ``configs`` and ``faults`` list the names offered in the page. Every model
    call holds the model's lock: the spec's models memoise in plain dicts, and requests are
    answered from a thread pool.
    """

    def __init__(
        self,
        *,
        build: Callable[[str, str | None], Any] | None = None,
        configs: Sequence[str] | None = None,
        faults: Sequence[str] | None = None,
        default_config: str | None = None,
        search_seconds: float = SEARCH_SECONDS,
    ) -> None:
        from smcd_check.spec import configs as presets
        from smcd_check.spec.faults import Fault

        self.build = build if build is not None else presets.build_system
        self.configs = list(configs) if configs is not None else list(presets.PRESETS)
        self.faults = list(faults) if faults is not None else [f.value for f in Fault]
        self.fault_configs = {f.value: c for f, c in presets.FAULT_CONFIGS.items()}
        self.default_config = default_config or presets.DEFAULT
        self.search_seconds = search_seconds
        self._models: dict[tuple[str, str | None], tuple[Any, threading.Lock]] = {}
        self._props: dict[tuple[str, str | None], list[Property[Any]]] = {}
        self._searches: dict[tuple[str, str | None], SearchOutcome] = {}
        self._search_locks: dict[tuple[str, str | None], threading.Lock] = {}
        self._lock = threading.Lock()

    def check_names(self, config: str | None, fault: str | None) -> tuple[str, str | None]:
        """Validated (config, fault); an absent config is the fault's or the default one.

        Raises:
            RequestError: 404 for an unknown config or fault, naming the known ones.
        """
        fault = fault or None
        if fault is not None and fault not in self.faults:
            raise RequestError(
                404, f"unknown fault {fault!r}; known faults: {', '.join(self.faults)}"
            )
        if not config:
            config = self.fault_configs.get(fault or "", self.default_config)
        if config not in self.configs:
            raise RequestError(
                404, f"unknown config {config!r}; known configs: {', '.join(self.configs)}"
            )
        return config, fault

    def model(self, config: str, fault: str | None) -> tuple[Any, threading.Lock]:
        """The cached model and its lock."""
        key = (config, fault)
        with self._lock:
            entry = self._models.get(key)
            if entry is None:
                try:
                    built = self.build(config, fault)
                except (KeyError, ValueError) as exc:
                    raise RequestError(
                        404, f"cannot build config {config!r} with fault {fault!r}: {exc}"
                    ) from exc
                entry = self._models[key] = (built, threading.Lock())
                self._props[key] = [as_property(p) for p in built.properties()]
            return entry

    def properties(self, config: str, fault: str | None) -> list[Property[Any]]:
        self.model(config, fault)
        return self._props[(config, fault)]

    def search(self, config: str, fault: str | None) -> SearchOutcome:
        """Breadth-first search for the shortest counterexample (cached; bounded in time).

        Runs on a model of its own, so pages stay answerable while it runs.
        """
        key = (config, fault)
        with self._lock:
            lock = self._search_locks.setdefault(key, threading.Lock())
        with lock:
            done = self._searches.get(key)
            if done is not None:
                return done
            private: Any = self.build(config, fault)
            result = Explorer(private).bounded(max_seconds=self.search_seconds).bfs()
            disc = result.violation
            indices = None
            if disc is not None:
                model, mlock = self.model(config, fault)
                with mlock:
                    indices = indices_of(model, disc.path.states, disc.path.actions)
            outcome = SearchOutcome(
                verdict=result.verdict(),
                states=result.unique_state_count,
                complete=result.complete,
                indices=indices,
                property_name=None if disc is None else disc.name,
            )
            self._searches[key] = outcome
            return outcome


__all__ = [
    "DEADLOCK",
    "MAX_PATH_STEPS",
    "PropertyStatus",
    "RequestError",
    "SearchOutcome",
    "Walk",
    "Workspace",
    "enabled",
    "first_broken",
    "format_path",
    "indices_of",
    "newly_broken",
    "parse_path",
    "property_statuses",
    "resolve",
]
