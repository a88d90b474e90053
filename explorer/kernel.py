"""Successors of packed states, memoised per action group on the group's footprint.

The kernel is what the sequential search and every parallel worker run per state: for each
:class:`~.model.ActionGroup` ``g``, ``key = s & mask(g.reads)`` looks up an *entry*: the xor
deltas of ``s``'s successors by ``g`` (``t = s ^ d``; the bits outside ``g.writes`` are 0, so
the entry holds for every state with the same key), one coverage kind per delta, the edge labels
(graph mode), per delta the change of each view the group writes (below), and per delta the
*flags* of what can be decided from the key alone:

* bit 0: ``t`` violates an ``always`` property whose reads lie inside the footprint,
* bit 1: ``t`` is outside the model's boundary (``boundary_reads`` inside the footprint),
* bit 2 + k: ``t`` satisfies the k-th ``sometimes`` property (reads inside the footprint).

A property that reads nothing the group writes cannot change along its transitions (its value
in ``t`` is its value in ``s``, already checked). The rest, *residual* properties of the group,
are evaluated on each new successor. Checks are grouped by what they read (one memo per read
set, ``state & mask -> flag bits``), both those decided in the miss path and the residual ones.
A miss computes an entry with the model's own ``actions``/``next_state`` on the decoded state.

Views: a group that reads a component through a :class:`~.model.View` keys its memo on the
view's id in that component's field (view ids of a component's values are memoised per
component id). Its miss runs on the state with the component replaced by its view; a
successor's new view is recorded in the entry as a view id, and applying the entry sets the
component to ``put(value, new view)``, memoised per (component id, view id).

A model without groups has one component and one group reading it all: the key is the whole
state, so entries are computed each time and not stored ("no memo"), and every property is
residual: the plain search over hashable states, in the same loop.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterable, Sequence
from typing import Any

from smcd_check.explorer.codec import Codec, LayoutOverflow
from smcd_check.explorer.model import ActionGroup, Kind, Property, action_label, action_type_name

VIOLATES = 1
OUTSIDE = 2
SOME0 = 2  # sometimes property k: bit 2 + k

#: the entry of a key without successors
_EMPTY: tuple[Any, ...] = ((), None, 0, (), None)

#: the components of a model searched without footprints: the state is one opaque value
OPAQUE = ("state",)


def structure_of(
    model: Any, memo: bool, *, views: bool = True, identity: bool = True
) -> tuple[Codec, list[ActionGroup]]:
    """The codec and the action groups the engine uses for ``model``.

    Without ``action_groups()`` (or with ``memo`` off) the whole state is one component and
    all actions one group. ``views=False`` drops the groups' views (each viewed component is
    then read whole: the same results, more memo keys); ``identity=False`` hashes component
    values even of a model that declares them hash-consed.
    """
    groups_fn = getattr(model, "action_groups", None)
    if groups_fn is None or not memo:
        codec = Codec(OPAQUE, lambda s: (s,), lambda parts: parts[0], headroom=2)
        return codec, [ActionGroup(name="actions", reads=OPAQUE, actions=model.actions)]
    names_fn = getattr(model, "components", None)
    split = getattr(model, "split", None)
    join = getattr(model, "join", None)
    if names_fn is not None:
        names = tuple(names_fn())
    else:
        init = model.init_states()[0]
        if not dataclasses.is_dataclass(init):
            raise TypeError(
                f"model {model.name}: action_groups() needs components() or dataclass states"
            )
        names = tuple(f.name for f in dataclasses.fields(init))
    if split is None or join is None:
        cls = type(model.init_states()[0])

        def split(s: Any) -> tuple[Any, ...]:
            return tuple(getattr(s, n) for n in names)

        def join(parts: Sequence[Any]) -> Any:
            return cls(**dict(zip(names, parts, strict=True)))

    groups = [_as_group(g, views) for g in groups_fn()]
    adopt = getattr(model, "adopt", None)
    known = set(names)
    for g in groups:
        bad = (set(g.reads) | set(g.writes or ())) - known
        if bad:
            raise ValueError(f"action group {g.name!r} names unknown components {sorted(bad)}")
        if g.writes is not None and not set(g.writes) <= set(g.reads):
            raise ValueError(f"action group {g.name!r}: writes must be a subset of reads")
        if g.views and not set(g.views) <= set(g.reads):
            raise ValueError(f"action group {g.name!r}: views must be of components it reads")
    groups = _merge_adjacent(groups)
    # identity alone needs the model's canonical objects for values from other processes too
    consed = identity and bool(getattr(model, "hash_consed", False)) and adopt is not None
    codec = Codec(names, split, join, identity=consed)
    if adopt is not None:
        codec.adopt = lambda k, v: adopt(v)
    return codec, groups


def _as_group(g: Any, views: bool) -> ActionGroup:
    """The explorer's ActionGroup for a model's group record (duck-typed: the spec declares
    its own records); ``views`` False drops the views."""
    vs = getattr(g, "views", None) if views else None
    if isinstance(g, ActionGroup) and (vs or None) == (g.views or None):
        return g
    return ActionGroup(
        name=g.name,
        reads=tuple(g.reads),
        writes=None if g.writes is None else tuple(g.writes),
        actions=g.actions,
        views=dict(vs) if vs else None,
    )


def _merge_adjacent(groups: list[ActionGroup]) -> list[ActionGroup]:
    """Merge neighbouring groups that read the same components: one memo lookup then serves
    both (the action order is kept). Nested reads are not merged: the smaller group's entries
    would then be computed once per key of the larger one."""
    out: list[ActionGroup] = []
    for g in groups:
        if out:
            prev = out[-1]
            a, b = set(prev.reads), set(g.reads)
            if a == b and _same_views(prev.views, g.views):
                reads = prev.reads
                writes = tuple(
                    dict.fromkeys((*(prev.writes or prev.reads), *(g.writes or g.reads)))
                )
                pa, ga = prev.actions, g.actions

                def both(s: Any, pa: Any = pa, ga: Any = ga) -> Any:
                    yield from pa(s)
                    yield from ga(s)

                out[-1] = ActionGroup(
                    name=f"{prev.name}+{g.name}",
                    reads=reads,
                    writes=writes,
                    actions=both,
                    views=prev.views,
                )
                continue
        out.append(g)
    return out


def _same_views(a: Any, b: Any) -> bool:
    a, b = dict(a or {}), dict(b or {})
    return a.keys() == b.keys() and all(a[k] is b[k] for k in a)


class _View:
    """A group's view of component ``k`` at run time: the view id of each component id,
    the interned view values, and the ``put`` results by (component id, new view id)."""

    __slots__ = ("by_identity", "get", "ids", "k", "of", "put", "puts", "vals")

    def __init__(self, k: int, spec: Any) -> None:
        self.k = k
        self.get: Callable[[Any], Any] = spec.get
        self.put: Callable[[Any, Any], Any] = spec.put
        #: component id -> view id (filled as states are looked up)
        self.of: dict[int, int] = {}
        self.vals: list[Any] = []
        self.ids: dict[Any, int] = {}
        self.by_identity: dict[int, int] = {}
        #: component id << 32 | new view id -> component id
        self.puts: dict[int, int] = {}

    def __getstate__(self) -> dict[str, Any]:
        """Pickled for a worker in another process (a cluster actor): ``by_identity`` is keyed
        by ``id()``, which means nothing there; :meth:`__setstate__` rebuilds it from the
        values (kept, every lookup of a prefix view value would miss, and a hash-consed model's
        values, interned by identity alone, would get new ids: more memo misses)."""
        return {name: getattr(self, name) for name in self.__slots__ if name != "by_identity"}

    def __setstate__(self, state: dict[str, Any]) -> None:
        for name, value in state.items():
            setattr(self, name, value)
        self.by_identity = {id(v): i for i, v in enumerate(self.vals)}

    def intern(self, codec: Codec, v: Any) -> int:
        """The id of view value ``v`` (a view id lives in the component's field of a memo
        key: more views than the field holds raise LayoutOverflow, like component ids)."""
        i = self.by_identity.get(id(v))
        vals = self.vals
        if i is not None and vals[i] is v:
            return i
        i = None if codec.identity else self.ids.get(v)
        if i is None:
            i = len(vals)
            if 0 < codec.cap[self.k] <= i:
                raise LayoutOverflow(codec.names[self.k])
            vals.append(v)
            self.ids[v] = i
        if vals[i] is v:
            self.by_identity[id(v)] = i
        return i

    def view_of(self, codec: Codec, c: int) -> int:
        """The view id of component id ``c``."""
        i = self.of.get(c)
        if i is None:
            i = self.of[c] = self.intern(codec, self.get(codec.vals[self.k][c]))
        return i

    def put_id(self, codec: Codec, c: int, w: int) -> int:
        """The component id of ``put(value c, view w)``."""
        key = c << 32 | w
        n = self.puts.get(key)
        if n is None:
            n = codec.intern(self.k, self.put(codec.vals[self.k][c], self.vals[w]))
            self.puts[key] = n
            # get(put(v, w)) == w (the View contract): the result's view needs no get
            self.of.setdefault(n, w)
        return n


class _Group:
    __slots__ = (
        "cache",
        "checks",
        "mask",
        "memo",
        "plain",
        "pwrites",
        "reads",
        "residual",
        "residual_live",
        "spec",
        "views",
        "writes",
        "wviews",
    )

    def __init__(self, spec: ActionGroup, codec: Codec, views: dict[Any, _View]) -> None:
        self.spec = spec
        self.reads = tuple(codec.pos[n] for n in spec.reads)
        self.writes = tuple(
            codec.pos[n] for n in (spec.writes if spec.writes is not None else spec.reads)
        )
        #: the group's views (one per viewed component, shared by groups with the same View)
        self.views: list[_View] = []
        for name, v in (spec.views or {}).items():
            k = codec.pos[name]
            self.views.append(views.setdefault((k, id(v)), _View(k, v)))
        viewed = {v.k for v in self.views}
        #: the components read whole (their bits are the key's; a view's id takes the place
        #: of its component's bits)
        self.plain = tuple(k for k in self.reads if k not in viewed)
        self.pwrites = tuple(k for k in self.writes if k not in viewed)
        #: the views of written components, in entry order
        self.wviews = [v for v in self.views if v.k in self.writes]
        self.memo = bool(self.views) or set(self.reads) != set(range(len(codec.names)))
        self.cache: dict[int, tuple[Any, ...]] = {}
        self.mask = 0
        #: the check sets decided from this group's key, in the miss path (see Kernel)
        self.checks: list[_CheckSet] = []
        #: the check sets evaluated on each new state the group finds
        self.residual: list[_CheckSet] = []
        #: those of them with a check still to make (not only reached sometimes properties)
        self.residual_live: list[_CheckSet] = []


class _CheckSet:
    """Checks (always, sometimes, the boundary) that read the same components: evaluated
    together, memoised on what they read (``state & mask -> flag bits``), so a check runs once
    per distinct value of its footprint (no memo when the footprint is the whole state)."""

    __slots__ = ("items", "mask", "memo", "reads", "whole")

    def __init__(self, reads: Any) -> None:
        self.reads = frozenset(reads)
        self.items: list[tuple[int, Any]] = []
        self.mask = 0
        self.whole = False
        self.memo: dict[int, int] = {}


class Kernel:
    """Per-group memo tables and the miss path (see the module docstring)."""

    def __init__(
        self,
        model: Any,
        codec: Codec,
        groups: Sequence[ActionGroup],
        props: Sequence[Property[Any]],
        *,
        labels: bool = False,
    ) -> None:
        self.model = model
        self.codec = codec
        self.labels = labels
        self.next_state = model.next_state
        self.kind_of: Callable[[Any], str] = getattr(model, "action_kind", action_type_name)
        self.props = list(props)
        self.always = [p for p in props if p.kind is Kind.ALWAYS]
        self.sometimes = [p for p in props if p.kind is Kind.SOMETIMES]
        self.live = [p for p in props if p.kind is Kind.EVENTUALLY]
        self.first_violation = getattr(model, "first_violation", None)
        all_names = set(codec.names)
        self.reads_of: dict[int, set[int]] = {}
        opaque = codec.names == OPAQUE
        for k, p in enumerate(self.props):
            reads = set(p.reads) if p.reads is not None and not opaque else all_names
            unknown = reads - all_names
            if unknown:
                raise ValueError(f"property {p.name!r} reads unknown components {sorted(unknown)}")
            self.reads_of[k] = {codec.pos[n] for n in reads}
        b = None if opaque else getattr(model, "boundary_reads", None)
        self.boundary_reads = {codec.pos[n] for n in (b if b is not None else codec.names)}
        trivially_within = getattr(model, "within_boundary_always", False)
        self.views: dict[Any, _View] = {}
        self.groups = [_Group(g, codec, self.views) for g in groups]
        for v in self.views.values():
            codec.extra[v.k].append(v.vals)  # view ids share the component's field
        # the checks, grouped by what they read: one set (and memo) per read set, shared by
        # the groups that decide them from their key (``checks``, evaluated in the miss path)
        # and those that check them on each new state (``residual``)
        sets: dict[frozenset[int], _CheckSet] = {}

        def check_set(reads: Any, item: tuple[int, Any]) -> _CheckSet:
            cs = sets.setdefault(frozenset(reads), _CheckSet(reads))
            if item not in cs.items:
                cs.items.append(item)
            return cs

        for g in self.groups:
            # decided from the key: what the group reads whole (a view's component is not)
            g_reads: set[int] = set(g.plain)
            writes: set[int] = set(g.writes)
            items: list[tuple[set[int], tuple[int, Any]]] = []
            for k, p in enumerate(self.props):
                if p.kind is Kind.EVENTUALLY:
                    continue  # liveness flags are evaluated per new state (graph mode)
                pr = self.reads_of[k]
                if not pr & writes:
                    continue  # unchanged by this group's transitions
                bit = VIOLATES if p.kind is Kind.ALWAYS else 1 << (SOME0 + self.sometimes.index(p))
                items.append((pr, (bit, p)))
            if not trivially_within and self.boundary_reads & writes:
                items.append((self.boundary_reads, (OUTSIDE, None)))
            for pr, item in items:
                cs = check_set(pr, item)
                evaluable = g.memo and pr <= g_reads
                target = g.checks if evaluable else g.residual
                if cs not in target:
                    target.append(cs)
        self.checksets = list(sets.values())
        #: every set some group checks per new state (a parallel worker checks the states it
        #: receives with all of them: it does not know which group found a state)
        self.residual_all = [
            cs for cs in self.checksets if any(cs in g.residual for g in self.groups)
        ]
        #: per entry: coverage kind ids (one per delta), labels (graph mode)
        self.kinds: list[tuple[int, ...]] = [()]  # entry 0: the no-memo groups' placeholder
        self.hits: list[int] = [0]
        self.kind_names: list[str] = []
        self.kind_ids: dict[str, int] = {}
        self.label_names: list[str] = []
        self.label_ids: dict[str, int] = {}
        #: transitions and kinds of the no-memo groups (counted as they happen)
        self.direct_kinds: list[int] = []
        self.direct_transitions = 0
        #: sometimes properties (by index) already reached: no longer flagged or evaluated
        self.found: set[int] = set()
        #: their flag bits
        self.found_bits = 0
        #: (deltas, flags, kinds, labels, view changes) -> the shared entry
        self.entries: dict[tuple[Any, ...], tuple[Any, ...]] = {}
        self._last: tuple[int, Any] = (-1, None)
        self.relayout_done()
        self.refresh_residual()

    # -- layout changes ----------------------------------------------------------------------
    def relayout_done(self, remap: Callable[[int], int] | None = None) -> None:
        """Recompute the masks after a layout change and carry the memo tables over (``remap``
        moves a key's or a delta's fields to the new layout; None: drop the tables)."""
        c = self.codec
        moved: dict[int, tuple[Any, ...]] = {}
        if remap is not None:
            entries = self.entries
            self.entries = {}
            for (ds, fl, kinds, labels, pvs), e in entries.items():
                shared: tuple[Any, ...] = (tuple(remap(d) for d in ds), fl, e[2], labels, pvs)
                moved[id(e)] = shared
                self.entries[(shared[0], fl, kinds, labels, pvs)] = shared
        else:
            self.entries = {}
        for g in self.groups:
            g.mask = c.mask([c.names[k] for k in g.plain])
            if remap is None:
                g.cache.clear()
            else:
                old = list(g.cache.items())
                g.cache.clear()
                for key, e in old:
                    entry = moved.get(id(e))
                    if entry is None:  # an entry of its own (not shared): remap it too
                        entry = moved[id(e)] = (tuple(remap(d) for d in e[0]), *e[1:])
                    g.cache[remap(key)] = entry
        full = c.full_mask
        for cs in getattr(self, "checksets", ()):
            cs.mask = c.mask([c.names[n] for n in sorted(cs.reads)])
            cs.whole = cs.mask == full
            cs.memo = {} if remap is None else {remap(x): v for x, v in cs.memo.items()}
        self._last = (-1, None)

    # -- decoding ----------------------------------------------------------------------------
    def state(self, x: int) -> Any:
        """The model state of ``x`` (the last one is cached: a miss of several groups on the
        same state decodes it once)."""
        last = self._last
        if last[0] == x:
            return last[1]
        st = self.codec.decode(x)
        self._last = (x, st)
        return st

    def _kind(self, name: str) -> int:
        i = self.kind_ids.get(name)
        if i is None:
            i = self.kind_ids[name] = len(self.kind_names)
            self.kind_names.append(name)
            self.direct_kinds.append(0)
        return i

    def _label(self, text: str) -> int:
        i = self.label_ids.get(text)
        if i is None:
            i = self.label_ids[text] = len(self.label_names)
            self.label_names.append(text)
        return i

    # -- keys and successors ------------------------------------------------------------------
    def key(self, g: _Group, s: int) -> int:
        """Group ``g``'s memo key of state ``s``: the bits of what it reads whole, and the
        view id of each viewed component in that component's field."""
        x = s & g.mask
        if g.views:
            codec = self.codec
            for v in g.views:
                k = v.k
                c = (s & codec.fmask[k]) >> codec.off[k]
                x |= v.view_of(codec, c) << codec.off[k]
        return x

    def put(self, t: int, q: tuple[Any, ...]) -> int:
        """``t`` with each viewed component ``v.k`` set to ``put(value, view w)`` for the
        ``(v, w)`` of ``q`` (an entry's view changes of one successor)."""
        codec = self.codec
        for v, w in q:
            k = v.k
            fm = codec.fmask[k]
            off = codec.off[k]
            t = (t & ~fm) | (v.put_id(codec, (t & fm) >> off, w) << off)
        return t

    def successors(self, s: int, e: tuple[Any, ...]) -> list[int]:
        """The successors of ``s`` by an entry ``e`` of one of its groups."""
        pvs = e[4]
        if pvs is None:
            return [s ^ d for d in e[0]]
        return [s ^ d if q is None else self.put(s ^ d, q) for d, q in zip(e[0], pvs, strict=True)]

    def lookup(self, g: _Group, s: int) -> tuple[Any, ...]:
        """Group ``g``'s entry for ``s`` (computed on a miss)."""
        e = g.cache.get(self.key(g, s))
        return e if e is not None else self.miss(g, s)

    # -- the miss path -----------------------------------------------------------------------
    def miss(self, g: _Group, s: int) -> tuple[Any, ...]:
        """Compute (and, with memo, store) group ``g``'s entry for ``s``: (deltas, flags or
        None, entry id, edge label ids, view changes or None); no-memo groups count their
        transitions here and return entry id 0 (an entry without kinds).

        A group with views runs on the state with each viewed component replaced by its view;
        a successor's change of a view is recorded as the new view's id (``put`` turns it into
        the component value when the entry is applied), its other changes as xor deltas."""
        st = self.state(s)
        codec = self.codec
        intern = codec.intern
        split = codec.split
        canonical = codec.canonical
        off, fmask = codec.off, codec.fmask
        writes = g.pwrites
        wviews = g.wviews
        key = s & g.mask
        whole: list[Any] = []
        viewed = {vw.k for vw in g.views}
        if g.views:
            parts = codec.parts(s)
            whole = list(parts)
            cur: dict[int, int] = {}
            for vw in g.views:
                c = (s & fmask[vw.k]) >> off[vw.k]
                w = cur[vw.k] = vw.view_of(codec, c)
                parts[vw.k] = vw.vals[w]
                key |= w << off[vw.k]
            st = codec.join(parts)
        ds: list[int] = []
        fl: list[int] = []
        kinds: list[int] = []
        labels: list[int] = []
        pvs: list[Any] = []
        changed = False
        next_state = self.next_state
        kind_of = self.kind_of
        kind_ids = self.kind_ids
        for a in g.spec.actions(st):
            t = next_state(st, a)
            if t is None:
                continue
            tparts = split(canonical(t))
            x = s
            for k in writes:
                x = (x & ~fmask[k]) | (intern(k, tparts[k]) << off[k])
            ds.append(x ^ s)
            if wviews:
                q: Any = None
                for vw in wviews:
                    w = vw.intern(codec, tparts[vw.k])
                    if w != cur[vw.k]:
                        q = (*(q or ()), (vw, w))
                pvs.append(q)
                changed = changed or q is not None
            kname = kind_of(a)  # (an action's own hash and __eq__ cost more than this)
            kd = kind_ids.get(kname)
            if kd is None:
                kd = self._kind(kname)
            kinds.append(kd)
            if self.labels:
                labels.append(self._label(action_label(self.model, a)))
            f = 0
            full = False
            for cs in g.checks:
                v = cs.memo.get(x & cs.mask)
                if v is None:
                    if whole and not full:
                        # a check reads only what the group reads whole, but it is given a
                        # whole state (the viewed components as before the step)
                        t = codec.join(
                            [whole[k] if k in viewed else p for k, p in enumerate(tparts)]
                        )
                        full = True
                    v = cs.memo[x & cs.mask] = self._evaluate(cs, t)
                f |= v
            fl.append(f & ~self.found_bits)
        pv = tuple(pvs) if changed else None
        if not g.memo:
            self.direct_transitions += len(ds)
            dk = self.direct_kinds
            for kd in kinds:
                dk[kd] += 1
            return (tuple(ds), None, 0, tuple(labels), pv)
        if not ds:
            g.cache[key] = _EMPTY  # shared: no entry id, nothing to count
            return _EMPTY
        # entries are shared: many keys have the same successors (same deltas, kinds, flags),
        # and their hits add up in one counter (coverage multiplies by the kinds)
        sig = (tuple(ds), tuple(fl) if any(fl) else None, tuple(kinds), tuple(labels), pv)
        entry = self.entries.get(sig)
        if entry is None:
            eid = len(self.kinds)
            self.kinds.append(sig[2])
            self.hits.append(0)
            entry = self.entries[sig] = (sig[0], sig[1], eid, sig[3], pv)
        g.cache[key] = entry
        return entry

    def _evaluate(self, cs: _CheckSet, t: Any) -> int:
        f = 0
        for bit, p in cs.items:
            if bit == OUTSIDE:
                if not self.model.within_boundary(t):
                    f |= OUTSIDE
            elif bit == VIOLATES:
                if not f & VIOLATES and not p.condition(t):
                    f |= VIOLATES
            elif p.condition(t):
                f |= bit
        return f

    # -- per new state -----------------------------------------------------------------------
    def flags(self, sets: Sequence[_CheckSet], t: int) -> int:
        """The flag bits of packed state ``t`` by the check sets ``sets`` (memoised per set on
        what it reads); bits of sometimes properties already reached are cleared."""
        f = 0
        for cs in sets:
            if cs.whole:
                f |= self._evaluate(cs, self.state(t))
                continue
            v = cs.memo.get(t & cs.mask)
            if v is None:
                v = cs.memo[t & cs.mask] = self._evaluate(cs, self.state(t))
            f |= v
        return f & ~self.found_bits

    def violation_name(self, t: int) -> str | None:
        """The first always property (declaration order) violated in ``t``, or None."""
        if self.first_violation is not None:
            name: str | None = self.first_violation(self.state(t))
            return name
        st = self.state(t)
        for p in self.always:
            if not p.condition(st):
                return p.name
        return None

    def within(self, t: int) -> bool:
        return bool(self.model.within_boundary(self.state(t)))

    def is_final(self, x: int) -> bool:
        return bool(self.model.is_final(self.state(x)))

    # -- totals ------------------------------------------------------------------------------
    def coverage(self, hits: Sequence[int] | None = None) -> dict[str, int]:
        """Transitions per coverage kind, from the entry hit counts and the direct counts."""
        counts = list(self.direct_kinds)
        for eid, n in enumerate(self.hits if hits is None else hits):
            if n:
                for kd in self.kinds[eid]:
                    counts[kd] += n
        return {self.kind_names[k]: c for k, c in enumerate(counts) if c}

    def transitions(self, hits: Sequence[int] | None = None) -> int:
        total = self.direct_transitions
        for eid, n in enumerate(self.hits if hits is None else hits):
            if n:
                total += n * len(self.kinds[eid])
        return total

    # -- sometimes properties reached --------------------------------------------------------
    def refresh_residual(self) -> None:
        """Rebuild each group's live residual sets (a set whose checks are all sometimes
        properties already reached has nothing left to check)."""
        self.found_bits = 0
        for j in self.found:
            self.found_bits |= 1 << (SOME0 + j)
        for g in self.groups:
            g.residual_live[:] = [
                cs
                for cs in g.residual
                if any(bit < (1 << SOME0) or not bit & self.found_bits for bit, _p in cs.items)
            ]

    def retire(self, j: int) -> None:
        """Sometimes property ``j`` was reached: stop flagging and evaluating it."""
        self.found.add(j)
        self.refresh_residual()
        bit = 1 << (SOME0 + j)
        self.found_bits |= bit
        stripped: dict[int, tuple[Any, ...]] = {}
        for sig, e in list(self.entries.items()):
            fl = e[1]
            if fl is not None and any(f & bit for f in fl):
                nfl = tuple(f & ~bit for f in fl)
                new: tuple[Any, ...] = (e[0], nfl if any(nfl) else None, e[2], e[3], e[4])
                stripped[id(e)] = new
                del self.entries[sig]
                self.entries[(new[0], new[1], sig[2], sig[3], sig[4])] = new
        if stripped:
            for g in self.groups:
                cache = g.cache
                for key, e in cache.items():
                    moved = stripped.get(id(e))
                    if moved is not None:
                        cache[key] = moved


def audit_views(model: Any, states: Iterable[Any], *, limit: int = 5) -> list[str]:
    """Check the :class:`~.model.View` contract of ``model``'s groups on ``states``.

    For every state and every group with views: the group's actions on the viewed state are
    its actions on the whole state, each action's successor from the viewed state (the views
    carried back with ``put``) is its successor from the whole state, and ``put(v, get(v))``
    is ``v``. Returns the first ``limit`` differences found, in words (empty: none).
    A model's tests run it over reachable states (including states past a violation) to
    check that its views leave out nothing its steps read.
    """
    codec, groups = structure_of(model, True)
    out: list[str] = []
    for s in states:
        parts = list(codec.split(s))
        for g in groups:
            if not g.views:
                continue
            viewed = list(parts)
            gets = {}
            for name, v in g.views.items():
                k = codec.pos[name]
                gets[k] = (v, v.get(parts[k]))
                viewed[k] = gets[k][1]
                if v.put(parts[k], gets[k][1]) != parts[k]:
                    out.append(f"{g.name}: put(v, get(v)) != v for {name} in {s!r}")
            sv = codec.join(viewed)
            acts = list(g.actions(s))
            if list(g.actions(sv)) != acts:
                out.append(f"{g.name}: actions differ on the viewed state of {s!r}")
                continue
            for a in acts:
                t = model.next_state(s, a)
                tv = model.next_state(sv, a)
                if (t is None) != (tv is None):
                    out.append(f"{g.name}: {a!r} enabled on one of state and view of {s!r}")
                    continue
                if t is None:
                    continue
                back = list(codec.split(tv))
                for k, (v, _w) in gets.items():
                    w2 = back[k]
                    back[k] = v.put(parts[k], w2)
                    if v.get(back[k]) != w2:
                        out.append(f"{g.name}: {a!r}: get(put(v, w)) != w from {s!r}")
                if back != list(codec.split(t)):
                    out.append(f"{g.name}: {a!r} gives another successor from the view of {s!r}")
            if len(out) >= limit:
                return out[:limit]
    return out
