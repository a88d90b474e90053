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

The fast path
-------------
A model may also offer ``packed()`` returning a :class:`PackedModel`: a bijection between states
and Python ints (``pack``/``unpack``) plus its actions grouped into :class:`Family` values, each
declaring the bits of the packed state its actions read and write (``mask``). The explorer then
memoises, per family, ``s & mask -> (xor deltas of the successors)`` and runs its breadth-first
search on ints only. It stays exact (the successors are computed by the model's own
``next_state`` the first time a footprint is seen) and counterexamples stay readable (the path is
unpacked and its actions re-identified with ``actions``/``next_state``). The contract a packed
model must keep, checked by its tests by comparing both paths:

* ``unpack(pack(s)) == s`` and ``pack(unpack(x)) == x``; every bit outside all masks is constant;
* the actions of a family read and write only bits inside ``mask``, and ``unpack`` of a value
  with every bit outside ``mask`` cleared is a valid state for those actions;
* a state violates an ``always`` property exactly when ``packed & error_mask != 0``.
"""

from __future__ import annotations

import enum
from collections.abc import Callable, Hashable, Iterable, Sequence
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

    @classmethod
    def always(cls, name: str, condition: Callable[[S], bool]) -> Property[S]:
        """An invariant: ``condition`` holds in every reachable state."""
        return cls(name=name, kind=Kind.ALWAYS, condition=condition)

    @classmethod
    def sometimes(cls, name: str, condition: Callable[[S], bool]) -> Property[S]:
        """A reachability check: some reachable state satisfies ``condition``."""
        return cls(name=name, kind=Kind.SOMETIMES, condition=condition)

    @classmethod
    def eventually(
        cls,
        name: str,
        goal: Callable[[S], bool],
        *,
        after: Callable[[S], bool] | None = None,
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
        )


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
class Family:
    """A group of actions whose reads and writes stay inside the bits ``mask`` of a packed state.

    ``actions(s)`` yields the family's candidate actions in state ``s`` (deterministic order).
    ``name`` labels the family in the coverage table of a packed run.
    """

    name: str
    mask: int
    actions: Callable[[Any], Iterable[Any]]


@dataclass(frozen=True, slots=True, kw_only=True)
class PackedModel:
    """The int encoding of a model's states, for the explorer's fast path."""

    pack: Callable[[Any], int]
    unpack: Callable[[int], Any]
    families: tuple[Family, ...]
    #: bits that are set exactly in states violating an ``always`` property (0: none can)
    error_mask: int = 0


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
    return Property(
        name=p.name,
        kind=Kind(text.lower()),
        condition=p.condition,
        trigger=trigger if trigger is not None else _always_true,
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
