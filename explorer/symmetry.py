"""Symmetry reduction: one state per orbit (TLC's symmetry sets, Stateright's ``representative``).

Theory of operation
-------------------
A model declares interchangeable *members* (``model.symmetry()``, below): for the SMC-D system,
socket pairs of the same kind on one link group. Renaming members maps reachable states to
reachable states, steps to steps, and keeps every property's value (the model's tests check
that it does, state by state). The search then stores one state per *orbit* (the states equal
up to a renaming), its representative, and finds the same violations at the same depths: a
path to a violating state renames into a path to a violating state of the same length.

The record ``model.symmetry()`` returns (None: no symmetry), duck-typed:

* ``slots``: per member, the names of its components, in the same order for every member
  (``(("pair1",), ("pair2",), ...)``); members are swapped by moving these components;
* ``renames``: the other components that name members (the SMC-D lifecycle holds the
  connections' ids);
* ``permute(name, value, perm)``: component ``name``'s value with member ``i`` renamed to
  ``perm[i]`` (indices into ``slots``).

The representative is computed on packed states, after the memoised step (so the memo tables
stay as they are): the members' component ids are read from their fields (the members'
components share one intern table, so a value has one id whatever member holds it), the members
are sorted by those ids, and among the orderings that sort them (members with equal ids can be
swapped) the one whose renamed components have the smallest ids wins. That is the smallest
state of the orbit in one total order, so every state of an orbit gets the same representative.
Ids are per run (a checkpoint saves the tables, so a resumed run keeps them); the counts do
not depend on them. Results are memoised on the members' and renamed components' bits.

Counterexamples: the search's path runs through representatives; :func:`concrete_path`
re-runs it from the model's own initial state, choosing at each step the action whose successor
has the next representative, so the path printed and written as a trace is a real run.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Sequence
from typing import Any

from smcd_check.explorer.codec import Codec, LayoutOverflow

#: changes when the choice of representative changes (a checkpoint records it)
CANONICAL_VERSION = 1


def declared(model: Any) -> Any:
    """The model's symmetry record, or None when it declares none (or one member)."""
    fn = getattr(model, "symmetry", None)
    sym = fn() if fn is not None else None
    if sym is None or len(sym.slots) < 2:
        return None
    return sym


class Canonicalizer:
    """Maps a packed state to its orbit's representative (see the module docstring).

    Must be made before any value is interned (it makes the members' components share their
    intern tables).
    """

    def __init__(self, model: Any, codec: Codec, sym: Any) -> None:
        self.codec = codec
        self.sym = sym
        slots = [[codec.pos[n] for n in slot] for slot in sym.slots]
        width = {len(s) for s in slots}
        if len(width) != 1:
            raise ValueError("symmetry: every member must have the same components")
        self.slots = slots
        self.members = len(slots)
        self.renamed = [codec.pos[n] for n in sym.renames]
        overlap = {k for s in slots for k in s} & set(self.renamed)
        if overlap:
            raise ValueError("symmetry: a member's component cannot also be renamed")
        for c in range(len(slots[0])):
            _share(codec, [s[c] for s in slots])
        self.adopt: Callable[[Any], Any] = getattr(model, "adopt", lambda v: v)
        self.perms = list(itertools.permutations(range(self.members)))
        self.perm_index = {p: i for i, p in enumerate(self.perms)}
        #: (component, id, perm index) -> id of the renamed value
        self.renames: dict[tuple[int, int, int], int] = {}
        self.memo: dict[int, int] = {}
        self.calls = 0
        self.relayout_done()

    def relayout_done(self) -> None:
        """The layout changed: recompute the mask (the memo is on bits; ids stay)."""
        c = self.codec
        ks = [k for s in self.slots for k in s] + self.renamed
        self.mask = 0
        for k in ks:
            self.mask |= c.fmask[k]
        self.memo.clear()

    def _rename(self, k: int, i: int, perm: tuple[int, ...]) -> int:
        key = (k, i, self.perm_index[perm])
        j = self.renames.get(key)
        if j is None:
            codec = self.codec
            v = self.sym.permute(codec.names[k], codec.vals[k][i], perm)
            j = self.renames[key] = codec.intern(k, self.adopt(v))
        return j

    def __call__(self, x: int) -> int:
        """The representative of packed state ``x``."""
        key = x & self.mask
        r = self.memo.get(key)
        if r is not None:
            return (x & ~self.mask) | r
        codec = self.codec
        off, fm = codec.off, codec.fmask
        sig = [tuple((x & fm[k]) >> off[k] for k in slot) for slot in self.slots]
        order = sorted(range(self.members), key=sig.__getitem__)  # new member j = old order[j]
        inv = [0] * self.members
        for j, i in enumerate(order):
            inv[i] = j
        base = tuple(inv)
        ident = self.perms[0]
        best: tuple[int, ...] | None = None
        best_ids: list[int] = []
        for perm in self._tie_perms(sig, order, base):
            ids = [
                (x & fm[k]) >> off[k]
                if perm == ident
                else self._rename(k, (x & fm[k]) >> off[k], perm)
                for k in self.renamed
            ]
            if best is None or ids < best_ids:
                best, best_ids = perm, ids
        assert best is not None
        y = 0
        for i, slot in enumerate(self.slots):
            target = self.slots[best[i]]
            for c, k in enumerate(slot):
                y |= ((x & fm[k]) >> off[k]) << off[target[c]]
        for k, i in zip(self.renamed, best_ids, strict=True):
            if 0 < codec.cap[k] <= i:
                raise LayoutOverflow(codec.names[k])
            y |= i << off[k]
        self.memo[key] = y
        return (x & ~self.mask) | y

    def _tie_perms(
        self, sig: Sequence[Any], order: list[int], base: tuple[int, ...]
    ) -> list[tuple[int, ...]]:
        """The perms (old member -> new member) that sort the members: ``base``, and ``base``
        with members of equal signature exchanged."""
        runs: list[list[int]] = []
        for j, i in enumerate(order):
            if j and sig[order[j - 1]] == sig[i]:
                runs[-1].append(j)
            else:
                runs.append([j])
        runs = [r for r in runs if len(r) > 1]
        if not runs:
            return [base]
        out = []
        for choice in itertools.product(*(itertools.permutations(r) for r in runs)):
            # new position r[t] is replaced by new position choice[t] (within the run)
            moved = list(range(self.members))
            for r, ch in zip(runs, choice, strict=True):
                for a, b in zip(r, ch, strict=True):
                    moved[a] = b
            out.append(tuple(moved[base[i]] for i in range(self.members)))
        return out


def _share(codec: Codec, ks: Sequence[int]) -> None:
    """Components ``ks`` use one intern table (the first one's)."""
    first = ks[0]
    for k in ks[1:]:
        if codec.vals[k] or codec.vals[first]:
            raise ValueError("symmetry: intern tables must be shared before values are interned")
        codec.vals[k] = codec.vals[first]
        codec.ids[k] = codec.ids[first]
        codec.by_identity[k] = codec.by_identity[first]
        codec.foreign[k] = codec.foreign[first]
        codec.provisional[k] = codec.provisional[first]


def concrete_path(
    model: Any,
    reps: list[Any],
    rep_of: Callable[[Any], Any],
) -> list[Any]:
    """A real run through the orbits of ``reps`` (representatives, as model states): from the
    model's initial state in the first orbit, at each step the first successor (deterministic
    order) whose representative is the next one. ``rep_of`` maps a model state to its
    representative (as a model state)."""
    first = next((s for s in model.init_states() if rep_of(s) == reps[0]), None)
    if first is None:
        raise RuntimeError(f"model {model.name}: no initial state in the counterexample's orbit")
    out = [first]
    for target in reps[1:]:
        cur = out[-1]
        for a in model.actions(cur):
            t = model.next_state(cur, a)
            if t is not None and rep_of(t) == target:
                out.append(t)
                break
        else:
            raise RuntimeError(
                f"model {model.name}: a step of the reduced search has no counterpart from the "
                "concrete state (the declared symmetry does not hold for this model)"
            )
    return out
