"""The interface every explorable model offers, in the style of Stateright and TLA+.

A *model* is a finite transition system given by functions, never by a table of states:

* ``init_states()``: the initial states (a sequence, in a deterministic order);
* ``actions(s)``: the candidate actions in state ``s``, yielded in a **deterministic** order (the
  order fixes which of several equally short counterexamples the explorer reports, so two runs
  always report the same one);
* ``next_state(s, a)``: the state after ``a``, or ``None`` when ``a`` turns out not to be enabled
  (the explorer then ignores it: it is not a transition);
* ``properties()``: named :class:`Property` values (``always``, ``sometimes``, ``eventually``);
* ``within_boundary(s)``: ``False`` for states the configuration does not want expanded (they
  are counted and checked, but their successors are not explored);
* ``is_final(s)``: ``True`` for states where having no enabled action is allowed (a finished or
  torn-down system); any other state without a successor is a **deadlock**.

States and actions must be hashable and immutable (frozen dataclasses). Presentation hooks are
optional (``action_label``, ``msc_event``, ``describe_state``) and live with the model, so the
explorer can print a counterexample in the model's own words.

Footprints (optional; how a model gets the fast path)
-----------------------------------------------------
Every model takes the same engine path. A model may describe the *structure* of its states so
that path can memoise its work:

* ``components()``: names of the parts of a state (default: the fields of a dataclass state);
  ``split(s)`` gives the parts in that order and ``join(parts)`` builds the state back
  (default: the dataclass fields and constructor);
* ``action_groups()``: :class:`ActionGroup` values, each naming the components its actions
  ``reads`` (enabledness and effect) and ``writes`` (a subset of ``reads``; default all of
  them), with ``actions(s)`` yielding the group's candidates. The groups' actions, concatenated
  in order, must be exactly ``actions(s)`` (same actions, same order);
* ``Property.reads``: the components a property's condition looks at (default: all of them);
  ``boundary_reads``: the same for ``within_boundary`` (default: all; ``()`` when every state
  is inside);
* ``ActionGroup.views`` (optional): for a component the group reads only in part, a
  :class:`View` ``{name: View(get, put)}``: ``get(value)`` is the part of the value the group's
  actions read (its *view*), ``put(value, new_view)`` the value with the group's changes to
  the view carried back. The memo then keys on the view instead of the whole value, so states
  that differ only in what the group does not read share one entry (the SMC-D data path reads
  two connections of the whole lifecycle state). See :class:`View` for the contract;
* ``hash_consed`` (optional, default False): True when the model hash-conses its component
  values, i.e. every value ``init_states``, ``next_state``, ``split``, a view's ``get``/``put``
  and ``adopt`` hand out is the one canonical object of that value; the engine then interns
  values by identity alone, without hashing them (a model that breaks this promise gets
  duplicate states, so leave it False unless the model guarantees it);
* ``adopt(value)`` (optional): the model's own object equal to a component value that arrived
  from another process (the parallel search); a model that hash-conses its sub-states and keys
  memo tables on identity returns its canonical object, so copies are not hashed at each use.

The engine interns each component's values to small ints, packs a state into one int of those
ids, and memoises, per group, ``state & footprint -> successors`` (as xor deltas), together with
the properties that can be decided from the footprint alone. A model without groups is one
component and one group: the same loop, without a memo. The contract is checked by the tests of
each model that declares it, by comparing with ``Explorer(model).with_memo(False)`` (which
ignores the declarations); a read outside a declared footprint makes counts wrong, not slower.
"""

from __future__ import annotations

import enum
from collections.abc import Callable, Hashable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Generic, Protocol, TypeVar, runtime_checkable

S = TypeVar("S", bound=Hashable)
A = TypeVar("A", bound=Hashable)


class Kind(enum.Enum):
    """What a property claims, and what a discovery of it means."""

    #: the condition holds in every reachable state; a discovery is a counterexample (a failure).
    ALWAYS = "always"
    #: the condition holds in at least one reachable state; a discovery is an example (success),
    #: and a complete exploration without one means the invariants it guards may be vacuous.
    SOMETIMES = "sometimes"
    #: whenever ``trigger`` holds, ``condition`` eventually holds on every fair path (leads-to);
    #: a discovery is a path to a state from which the condition can never be reached (failure).
    EVENTUALLY = "eventually"


def _always_true(_state: Any) -> bool:
    return True


@dataclass(frozen=True, slots=True, kw_only=True)
class Property(Generic[S]):
    """A named claim about the reachable states; the name is a sentence and the lookup key.

    Use the constructors :meth:`always`, :meth:`sometimes` and :meth:`eventually`.
    """

    #: a human sentence ("no byte is overwritten before it is read"); unique within a model
    name: str
    kind: Kind
    #: the predicate: the invariant (always), the example (sometimes), the goal (eventually)
    condition: Callable[[S], bool]
    #: eventually only: the states from which the goal must eventually be reached
    trigger: Callable[[S], bool] = field(default=_always_true)
    #: the components ``condition`` (and ``trigger``) read; None: the whole state
    reads: tuple[str, ...] | None = None

    @classmethod
    def always(
        cls, name: str, condition: Callable[[S], bool], *, reads: Sequence[str] | None = None
    ) -> Property[S]:
        """An invariant: ``condition`` holds in every reachable state."""
        return cls(name=name, kind=Kind.ALWAYS, condition=condition, reads=_names(reads))

    @classmethod
    def sometimes(
        cls, name: str, condition: Callable[[S], bool], *, reads: Sequence[str] | None = None
    ) -> Property[S]:
        """A reachability check: some reachable state satisfies ``condition``."""
        return cls(name=name, kind=Kind.SOMETIMES, condition=condition, reads=_names(reads))

    @classmethod
    def eventually(
        cls,
        name: str,
        goal: Callable[[S], bool],
        *,
        after: Callable[[S], bool] | None = None,
        reads: Sequence[str] | None = None,
    ) -> Property[S]:
        """Liveness: from every reachable state where ``after`` holds (default: every state),
        every fair path reaches a state where ``goal`` holds (``after ~> goal``).

        Fairness is strong fairness on every transition; see :mod:`.liveness`.
        """
        return cls(
            name=name,
            kind=Kind.EVENTUALLY,
            condition=goal,
            trigger=after if after is not None else _always_true,
            reads=_names(reads),
        )


def _names(reads: Sequence[str] | None) -> tuple[str, ...] | None:
    return None if reads is None else tuple(reads)


@runtime_checkable
class Model(Protocol[S, A]):
    """What the explorer needs from a model (see the module docstring for the contract)."""

    #: a short name for reports and trace files ("smcd-system/reference", "spin-anchor")
    name: str

    def init_states(self) -> Sequence[S]: ...

    def actions(self, state: S) -> Iterable[A]: ...

    def next_state(self, state: S, action: A) -> S | None: ...

    def properties(self) -> Sequence[Property[S]]: ...

    def within_boundary(self, state: S) -> bool: ...

    def is_final(self, state: S) -> bool: ...


@dataclass(frozen=True, slots=True, kw_only=True)
class View:
    """The part of one component an action group reads: a projection and its way back.

    ``get(value)`` gives the view: a value of a type the model's ``actions`` and
    ``next_state`` accept in place of the component (typically the same type with everything
    the group does not read left out or blanked), hashable and immutable. ``put(value,
    new_view)`` gives the component after the group's step, from the value before it and the
    view ``next_state`` produced. The engine runs the group's ``actions`` and ``next_state`` on
    the state with the component replaced by its view, and the contract is what makes that
    exact, for every value ``v`` the component takes and every action ``a`` of the group:

    * the group's actions and their effects on the other components depend on ``v`` only
      through ``get(v)`` (on the full state and on the viewed state they are the same);
    * ``put(v, w)`` is the component after the step that turned the view ``get(v)`` into
      ``w``, and ``put(v, get(v)) == v`` (a step that leaves the view alone leaves the value);
    * ``get(put(v, w)) == w`` (the view of the result is what the step produced).

    Properties that read the component are then checked per new state (memoised on their own
    footprint), not decided from the group's key. A view is a model's promise like ``reads``:
    a read outside it makes counts wrong, so the model's tests compare the search with
    ``Explorer(model).with_memo(False)``; ``put`` may raise to reject a step that changed
    what it cannot carry back.
    """

    get: Callable[[Any], Any]
    put: Callable[[Any, Any], Any]


@dataclass(frozen=True, slots=True, kw_only=True)
class ActionGroup:
    """Actions whose enabledness and effect depend only on the components ``reads``.

    ``actions(s)`` yields the group's candidate actions in state ``s`` (deterministic order;
    it too may look only at ``reads``). ``writes`` (default: ``reads``) are the components its
    actions may change. ``views`` (default: none) maps a component of ``reads`` the group reads
    only in part to its :class:`View`. ``name`` is for reports and error messages.
    """

    name: str
    reads: tuple[str, ...]
    actions: Callable[[Any], Iterable[Any]]
    writes: tuple[str, ...] | None = None
    views: Mapping[str, View] | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class MscEvent:
    """How one step looks in a message-sequence chart.

    ``kind`` is ``"send"`` (an arrow leaves ``actor`` towards ``peer``), ``"recv"`` (the arrow
    arrives at ``actor``; the explorer pairs it with the earliest unmatched send of the same
    ``channel``), or ``"local"`` (a box on ``actor``'s lifeline).
    """

    actor: str
    kind: str
    label: str
    peer: str = ""
    channel: str = ""


def as_property(p: Any) -> Property[Any]:
    """Accept the explorer's :class:`Property` or any object with the same attributes.

    The spec cannot import the explorer, so spec modules describe their properties with their
    own small records (``name``, ``kind`` as an enum or string, ``condition``, optional
    ``trigger``); this turns them into :class:`Property` values.

    Raises:
        ValueError: ``kind`` is not always/sometimes/eventually.
    """
    if isinstance(p, Property):
        return p
    kind = p.kind
    text = kind.value if isinstance(kind, enum.Enum) else str(kind)
    trigger = getattr(p, "trigger", None)
    reads = getattr(p, "reads", None)
    return Property(
        name=p.name,
        kind=Kind(text.lower()),
        condition=p.condition,
        trigger=trigger if trigger is not None else _always_true,
        reads=None if reads is None else tuple(reads),
    )


def action_label(model: Any, action: Any) -> str:
    """The model's label for ``action`` (its ``action_label`` hook, else ``repr``)."""
    hook = getattr(model, "action_label", None)
    if hook is not None:
        return str(hook(action))
    return repr(action)


def action_type_name(action: Any) -> str:
    """The coverage key of an action: its class name (``AWrite``, ``ClientSendProposal``)."""
    return type(action).__name__
