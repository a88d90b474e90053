"""States as ints: each component's values interned to small ids, the ids packed into one int.

A model's state is split into components (:mod:`.model`, "Footprints"); each component has an
intern table (value -> id, id -> value) and a bit field in the packed int. The last field of the
layout is unbounded (an int has no top); the others have a width that grows: when a component's
id count comes near its field's capacity the search asks for a :meth:`Codec.relayout` at the
end of a BFS level (and, when a level overflows a field outright, redoes that level after it),
which re-encodes every stored state. Two equal states always have the same int, so the visited
set is a set of ints.

Identity shortcut: a model that returns the same object for an unchanged or recurring component
(hash-consing, as :class:`~smcd_check.spec.system.System` does) is interned by ``id()`` without
hashing its value again; one that declares ``hash_consed = True`` (every value it hands out is
the one canonical object of that value) is interned by identity alone, never hashed.

``canonical`` is the one place a state passes through before it is encoded, the hook symmetry
reduction will use (map ``s`` to its orbit's representative); today it is the identity.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

#: bits of a component field in the first layout (a relayout widens what needs it)
INITIAL_BITS = 4


class LayoutOverflow(Exception):
    """A component got more ids than its field holds within one BFS level (the search redoes
    the level after a relayout); never escapes the engine."""


class Codec:
    """Intern tables and the bit layout of one model's states.

    Args:
        names: the component names, in ``split`` order.
        split: state -> tuple of component values.
        join: tuple of component values -> state.
        headroom: a relayout gives each field ``headroom`` spare bits over what its ids need
            (the next relayout comes when a field is half full: after 4x growth).
    """

    def __init__(
        self,
        names: Sequence[str],
        split: Callable[[Any], Sequence[Any]],
        join: Callable[[Sequence[Any]], Any],
        *,
        headroom: int = 3,
        identity: bool = False,
    ) -> None:
        self.names = tuple(names)
        self.pos = {name: k for k, name in enumerate(self.names)}
        self.split = split
        self.join = join
        self.headroom = headroom
        #: values are hash-consed by the model: equal values are the same object
        self.identity = identity
        n = len(self.names)
        self.vals: list[list[Any]] = [[] for _ in range(n)]
        self.ids: list[dict[Any, int]] = [{} for _ in range(n)]
        self.by_identity: list[dict[int, int]] = [{} for _ in range(n)]
        #: per component, lists whose lengths count as ids of its field too (the views of
        #: the component some action groups key on, see smcd_check.explorer.kernel)
        self.extra: list[list[list[Any]]] = [[] for _ in range(n)]
        self.bits = [INITIAL_BITS] * n
        #: the layout order (bottom field first); the last one is unbounded
        self.order = list(range(n))
        #: assigns a new id to a value (local: the next free one; a parallel worker: a global
        #: one); called with (component, value), must append to ``vals`` itself
        self.assign: Callable[[int, Any], int] = self._assign_local
        #: the model's own object for a value that arrived from another process (a model
        #: hook, ``adopt(value)``; default: the value itself)
        self.adopt: Callable[[int, Any], Any] = lambda k, v: v
        #: ids handed out during a parallel level before the coordinator numbers the values
        #: (per component: id -> value; see smcd_check.explorer.parallel)
        self.provisional: list[dict[int, Any]] = [{} for _ in range(n)]
        #: set when ``assign`` handed out a provisional id (the caller resets it)
        self.minted = False
        #: ids whose value object came from another process (see ``intern``)
        self.foreign: list[set[int]] = [set() for _ in range(n)]
        self.off: list[int] = [0] * n
        self.cap: list[int] = [0] * n
        self.fmask: list[int] = [0] * n
        self.generation = 0
        self._layout()

    def __getstate__(self) -> dict[str, Any]:
        """Pickled for a worker in another process: the ``id()``-keyed tables mean nothing
        there; :meth:`__setstate__` rebuilds them from the values (which the pickle keeps as
        the same objects the model's tables hold, when pickled together with the model)."""
        state = self.__dict__.copy()
        state["by_identity"] = None
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self.by_identity = [{id(v): i for i, v in enumerate(vals)} for vals in self.vals]

    # -- layout ------------------------------------------------------------------------------
    def _layout(self) -> None:
        pos = 0
        top = self.order[-1]
        for k in self.order:
            self.off[k] = pos
            if k == top:
                self.cap[k] = -1  # unbounded
                self.fmask[k] = -1 << pos
            else:
                self.cap[k] = 1 << self.bits[k]
                self.fmask[k] = ((1 << self.bits[k]) - 1) << pos
                pos += self.bits[k]
        self.generation += 1

    def count(self, k: int) -> int:
        """How many ids component ``k``'s field must hold (its values, and its views)."""
        n = len(self.vals[k])
        for e in self.extra[k]:
            n = max(n, len(e))
        return n

    def pressure(self) -> bool:
        """A field is past a quarter of its capacity: relayout before the next level."""
        return any(cap > 0 and self.count(k) * 4 > cap for k, cap in enumerate(self.cap))

    def plan(self, counts: Sequence[int] | None = None) -> tuple[list[int], list[int]]:
        """(bits, order) of the layout a relayout would pick now (or for these id counts per
        component): every field with ``headroom`` spare bits, the component with the most ids
        on top."""
        if counts is None:
            counts = [self.count(k) for k in range(len(self.names))]
        bits = [
            max(self.bits[k], (max(1, n) - 1).bit_length() + self.headroom)
            for k, n in enumerate(counts)
        ]
        order = list(self.order)
        if counts[order[-1]] * 4 < max(counts):
            # the unbounded top field is for the component with the most ids; re-sorting moves
            # every field (an expensive remap), so it is done only when the top one fell far
            # behind; otherwise the order stays and a relayout only widens fields
            order = sorted(range(len(bits)), key=lambda k: (counts[k], k))
        return bits, order

    def relayout(self, bits: list[int] | None = None, order: list[int] | None = None) -> Any:
        """Switch to a wider layout; returns ``remap(old_int) -> new_int``."""
        if bits is None or order is None:
            bits, order = self.plan()
        old_off, old_order = list(self.off), list(self.order)
        old_bits = list(self.bits)
        old_top = old_order[-1]
        self.bits, self.order = list(bits), list(order)
        self._layout()
        terms = []
        if old_order == self.order:
            # the same order, some fields wider: the fields between two widened ones move by
            # the same amount, so each such run moves as one piece (a few terms, not one per
            # field: the remap is applied to every stored state)
            terms = _runs(old_order, old_off, old_bits, self.off, old_top)
        else:
            for k in range(len(self.names)):
                part = f"(x >> {old_off[k]})"
                if k != old_top:
                    part = f"({part} & {(1 << old_bits[k]) - 1})"
                terms.append(f"({part} << {self.off[k]})")
        # one generated expression: a relayout re-encodes every stored state
        remap: Callable[[int], int] = eval(f"lambda x: {' | '.join(terms)}")
        return remap

    # -- interning ---------------------------------------------------------------------------
    def _assign_local(self, k: int, v: Any) -> int:
        i = len(self.vals[k])
        self.vals[k].append(v)
        return i

    def intern(self, k: int, v: Any) -> int:
        """The id of value ``v`` of component ``k`` (new ids may raise LayoutOverflow)."""
        i = self.by_identity[k].get(id(v))
        vals = self.vals[k]
        if i is not None and vals[i] is v:
            return i
        if self.identity:
            # hash-consed values: an object not seen before is a value not seen before
            i = self.assign(k, v)
            self.by_identity[k][id(v)] = i
            if 0 < self.cap[k] <= i:
                raise LayoutOverflow(self.names[k])
            return i
        ids = self.ids[k]
        i = ids.get(v)
        if i is None:
            i = self.assign(k, v)
            ids[v] = i
        elif i in self.foreign[k] and i < len(vals) and vals[i] is not v:
            # a value learned from another process, now produced by the model here: keep the
            # model's object (a hash-consing model finds its own objects by identity)
            vals[i] = v
            self.foreign[k].discard(i)
        if i >= len(vals):
            self.minted = True  # a provisional id (parallel worker, within a level)
        elif vals[i] is v:
            self.by_identity[k][id(v)] = i
        if 0 < self.cap[k] <= i:
            raise LayoutOverflow(self.names[k])
        return i

    def learn(self, k: int, i: int, v: Any) -> None:
        """Record that value ``v`` of component ``k`` has id ``i`` (a parallel worker learns
        the ids other workers assigned)."""
        vals = self.vals[k]
        if len(vals) <= i:
            vals.extend([None] * (i + 1 - len(vals)))
        if vals[i] is None:
            v = self.adopt(k, v)
            vals[i] = v
            self.ids[k][v] = i
            self.foreign[k].add(i)

    # -- states ------------------------------------------------------------------------------
    def canonical(self, s: Any) -> Any:
        """The representative ``s`` is encoded as (the symmetry-reduction hook; identity)."""
        return s

    def encode(self, s: Any) -> int:
        """The int of state ``s``."""
        x = 0
        for k, v in enumerate(self.split(self.canonical(s))):
            x |= self.intern(k, v) << self.off[k]
        return x

    def field(self, x: int, k: int) -> int:
        """Component ``k``'s id in ``x``."""
        return (x & self.fmask[k]) >> self.off[k]

    def parts(self, x: int) -> list[Any]:
        """The component values of ``x``."""
        try:
            return [
                self.vals[k][(x & self.fmask[k]) >> self.off[k]] for k in range(len(self.names))
            ]
        except IndexError:  # a provisional id (a parallel worker, within a level)
            out = []
            for k in range(len(self.names)):
                i = (x & self.fmask[k]) >> self.off[k]
                out.append(self.vals[k][i] if i < len(self.vals[k]) else self.provisional[k][i])
            return out

    def decode(self, x: int) -> Any:
        """The state of ``x``."""
        return self.join(self.parts(x))

    def mask(self, names: Sequence[str]) -> int:
        """The bits of the named components."""
        m = 0
        for name in names:
            m |= self.fmask[self.pos[name]]
        return m

    @property
    def full_mask(self) -> int:
        return self.mask(self.names)


def _runs(
    order: Sequence[int],
    old_off: Sequence[int],
    old_bits: Sequence[int],
    new_off: Sequence[int],
    top: int,
) -> list[str]:
    """The terms of a remap that keeps the field order: one per run of adjacent fields that
    move by the same amount (``new_off - old_off``)."""
    terms: list[str] = []
    start = 0  # index in ``order`` of the run's first field
    for i, k in enumerate(order):
        last = i + 1 == len(order) or (
            new_off[order[i + 1]] - old_off[order[i + 1]] != new_off[k] - old_off[k]
        )
        if not last:
            continue
        first = order[start]
        lo = old_off[first]
        if k == top:
            terms.append(f"((x >> {lo}) << {new_off[first]})")
        else:
            mask = (1 << (old_off[k] + old_bits[k] - lo)) - 1
            terms.append(f"(((x >> {lo}) & {mask}) << {new_off[first]})")
        start = i + 1
    return terms
