"""Named properties of the specification: one small value type shared by every spec module.

Theory of operation
-------------------
A spec module exports its safety properties as a tuple of :class:`Invariant` values. The name is
a human sentence and the lookup key (the explorer reports a violation by that name); the
``statement`` says in one line what the predicate checks; the predicate takes the module's
configuration and one state and returns ``True`` when the property holds there. Compound
properties are split into separately named conjuncts (the MCPaxos ``Inv1..Inv4`` trick) so a
violation says *which* clause failed, and every module includes a ``type_ok``.

``kind`` says what a discovery means: ``ALWAYS`` (an invariant: a state where the predicate is
false is a counterexample) or ``SOMETIMES`` (a reachability check: some reachable state should
satisfy the predicate, otherwise the invariants it guards may be vacuous). The explorer maps these
onto its own ``Property.always`` / ``Property.sometimes`` by closing over the configuration.

This module holds no property itself: the lifecycle's live in ``lifecycle.INVARIANTS``, the data
path's and the handshake's in their modules; any module may reuse :class:`Invariant`.
"""

from __future__ import annotations

import enum
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any


class InvariantKind(enum.Enum):
    """What a property claims about the reachable states."""

    #: holds in every reachable state; a state violating it is a counterexample
    ALWAYS = "always"
    #: holds in at least one reachable state; never reaching it means a vacuous model
    SOMETIMES = "sometimes"


@dataclass(frozen=True, slots=True, kw_only=True)
class Invariant:
    """A named predicate over ``(config, state)``; the name is a sentence and the lookup key."""

    #: a human sentence, unique within its module ("tokens are unique among live DMBs")
    name: str
    #: one line saying precisely what the predicate checks
    statement: str
    #: ``predicate(cfg, state) -> bool``: True when the property holds in ``state``
    predicate: Callable[[Any, Any], bool]
    kind: InvariantKind = InvariantKind.ALWAYS

    def holds(self, cfg: Any, state: Any) -> bool:
        """``predicate(cfg, state)``, for call sites that read better as a method."""
        return bool(self.predicate(cfg, state))


def violated(invariants: tuple[Invariant, ...], cfg: Any, state: Any) -> tuple[str, ...]:
    """Names of the ``ALWAYS`` invariants that do not hold in ``state``, in declaration order."""
    return tuple(
        inv.name
        for inv in invariants
        if inv.kind is InvariantKind.ALWAYS and not inv.predicate(cfg, state)
    )
