"""The parallel search: partitioned, level-synchronous BFS over worker processes.

Theory of operation
-------------------
The coordinator (the calling process) first runs the sequential search for a few levels
(``warmup_states``): that fills the intern and memo tables every worker then inherits, and
picks a wide layout. Then each of W workers owns the states whose *partition key* maps to it,
and runs the sequential engine's kernel on them with tables of its own.

The partition key is what every memoised action group's key contains (:func:`partition_of`):
the components all groups read whole, and a component some groups read through a view and the
others whole, by that view. Every memo entry is then needed by the owner of the states that
use it, and by no other worker: no successor is computed twice. For the SMC-D system that is
the mode and the data path's view of the lifecycle (its pair's connections), which also keeps
about four successors in five with their parent's owner. A key that splits the prefix's
states unevenly is widened (by the footprint of the group with the most memo keys, then by
the whole state).

Component ids are each worker's own: a worker interns the values it meets as the sequential
search does (no round trip, nothing broadcast). The ids known at the fork are the same
everywhere; a successor sent to another worker carries, once per (value, receiver), the values
of its newer ids (or the receiver's own id, for a value learned from it), and the receiver
translates it into its ids. The owner of a state is computed from the partition key's values:
the shared id for a value known at the fork, else the value's hash (Python's, when every
worker salts it alike, else :func:`stable_hash`), so equal states have one owner everywhere.

Per BFS level d, every worker expands its level-d states in global BFS order and sends each
successor to its owner with an *order key* ``rank(parent) << 16 | position`` (the parent's rank
in level d, the successor's position among the parent's transitions). An owner keeps, per new
state, the smallest key: exactly the sequential search's first discovery. Sorted by key, the
new states of all workers interleave into exactly the sequential level d+1, so the global index
of every state, the parent of every state, the first example of every ``sometimes`` property,
the first violation (and the counts when the search stops there: the states discovered before
it, the transitions of the states expanded before it) are exactly those of the sequential
search. The tests compare both on every pinned config. A layout change (a field filling up in
some worker) happens at a barrier, in every worker at once.

Transport (the swappable part)
------------------------------
Workers are driven by messages only (:class:`Transport`): ``send(w, msg)``, ``recv(w)`` and
``ready()``; messages are tuples of picklable values (ints, arrays, bytes, component values).
A worker is made from a :class:`WorkerRecipe` (the search after the prefix, the partition) and
answers each message with :meth:`_Worker.handle`. This module's :class:`LocalProcesses` forks
local processes connected by pipes; :mod:`.cluster` (``explore --cluster``) implements the
same four methods over Ray actors, each holding one worker. The coordinator never looks into
the outboxes of an ``out`` reply (``msg[1][o]``, what worker ``o`` receives; each a ``bytes``
pickle): it forwards each one unchanged in the ``inbound`` list of ``o``'s ``in`` message, so a
transport may stand a reference in for it (the Ray actors do: an object store reference).

What the search costs (``ExploreResult.level_cpu``)
---------------------------------------------------
Every reply carries the CPU seconds the worker spent on that phase; the coordinator records,
per level, each worker's CPU and its own. On a shared machine wall time says little; the
*critical path* (the prefix, then per level and phase the busiest worker's CPU, plus all of
the coordinator's CPU after the prefix) is the wall time the run would take on idle cores
(see ``bench/explore_bench.py``).
"""

from __future__ import annotations

import contextlib
import dataclasses
import enum
import gc
import hashlib
import multiprocessing as mp
import os
import pickle
import resource
import signal
import time
import traceback
from array import array
from bisect import bisect_left
from collections.abc import Callable, Sequence
from functools import partial
from multiprocessing.connection import Connection, wait
from typing import Any, Protocol

from smcd_check.explorer.codec import LayoutOverflow
from smcd_check.explorer.engine import (
    DEADLOCK,
    Discovery,
    Explorer,
    ExploreResult,
    Kind,
    Path,
    Progress,
    _declared_types,
    _path_of_chain,
    _Search,
    current_rss,
    peak_rss,
)
from smcd_check.explorer.kernel import OUTSIDE, SOME0, VIOLATES
from smcd_check.explorer.model import Property

#: a candidate's flags carry the index of the group that found it above the flag bits (the
#: owner makes that group's residual checks, as the sequential search does)
_GROUP_SHIFT = 40
_FLAG_MASK = (1 << _GROUP_SHIFT) - 1
#: a candidate is ``key << _KEY_SHIFT | flags`` (one int: ordered by key)
_KEY_SHIFT = 48
_GROUP_MASK = (1 << (_KEY_SHIFT - _GROUP_SHIFT)) - 1


def _second(item: tuple[Any, int]) -> int:
    return item[1]


#: the order key's position field (a state has fewer transitions than this)
_POS_BITS = 16
_POS_MAX = (1 << _POS_BITS) - 1
#: a sequential prefix this large before the workers start (the layout and the partition are
#: chosen from it; the workers' memo tables are disjoint, so a longer prefix saves little and
#: runs at one core's speed)
WARMUP_STATES = 1000
#: spare bits per field in the layout the workers share (a field may grow 256x before a
#: relayout at a barrier)
PARALLEL_HEADROOM = 8
#: a partition key is used when no worker would own more than this share times 1/W of the
#: prefix's states
_BALANCE = 1.5
#: a probe of Python's string hashing: workers whose hash of it equals the coordinator's salt
#: hashes alike (forked processes do; separately started ones, unless PYTHONHASHSEED is set,
#: do not)
_PROBE = "smcd-check partition probe"


class Transport(Protocol):
    """How the coordinator talks to its workers (local processes, or cluster actors)."""

    def send(self, w: int, msg: tuple[Any, ...]) -> None: ...

    def recv(self, w: int) -> tuple[Any, ...]: ...

    def ready(self) -> list[int]:
        """Workers with a message waiting (blocks until there is at least one)."""
        ...

    def close(self) -> None: ...


class LocalProcesses:
    """W forked processes on this machine, one pipe each."""

    def __init__(self, n: int, target: Callable[[int, Connection], None]) -> None:
        ctx = mp.get_context("fork")
        self.conns: list[Connection] = []
        self.procs: list[Any] = []
        for w in range(n):
            mine, theirs = ctx.Pipe(duplex=True)
            p = ctx.Process(target=target, args=(w, theirs), daemon=True)
            p.start()
            theirs.close()
            self.conns.append(mine)
            self.procs.append(p)
        self._index = {id(c): w for w, c in enumerate(self.conns)}

    def send(self, w: int, msg: tuple[Any, ...]) -> None:
        self.conns[w].send(msg)

    def recv(self, w: int) -> tuple[Any, ...]:
        msg: tuple[Any, ...] = self.conns[w].recv()
        return msg

    def ready(self) -> list[int]:
        return [self._index[id(c)] for c in wait(self.conns)]  # type: ignore[arg-type]

    def close(self) -> None:
        for c in self.conns:
            with contextlib.suppress(OSError, ValueError):
                c.send(("stop",))
        for p in self.procs:
            p.join(timeout=2)
            if p.is_alive():
                p.terminate()
                p.join(timeout=2)
        for c in self.conns:
            c.close()


class WorkerFailed(RuntimeError):
    """A worker raised or died: the message says which and why (a local worker's traceback).

    The search ends without a verdict; ``states`` and ``depth`` are the partial counts: the
    states discovered in the BFS levels completed before the failure (None: not known)."""

    def __init__(self, message: str, *, states: int | None = None, depth: int | None = None):
        super().__init__(message)
        self.states = states
        self.depth = depth


# ------------------------------------------------------------------------------------------
# the partition


@dataclasses.dataclass(frozen=True, slots=True)
class Partition:
    """What decides a state's owner: components by index (``comps``), and views by
    (component, the view's index in the kernel's view list) (``views``)."""

    comps: tuple[int, ...]
    views: tuple[tuple[int, int], ...] = ()


def partition_of(search: _Search, n: int) -> Partition:
    """The partition key for ``n`` workers (see the module docstring): what every memoised
    group's key contains, if it splits the prefix's states evenly enough, else widened."""
    kernel, codec = search.kernel, search.codec
    views = list(kernel.views.values())
    groups = [g for g in kernel.groups if g.memo]
    whole = tuple(range(len(codec.names)))
    if not groups:
        return Partition(comps=whole)
    comps = tuple(k for k in whole if all(k in g.plain for g in groups))
    vparts: list[tuple[int, int]] = []
    for i, v in enumerate(views):
        if v.k in comps:
            continue
        if all(v.k in g.plain or v in g.views for g in groups):
            vparts.append((v.k, i))
    heavy = max(groups, key=lambda g: len(g.cache))
    candidates = [
        Partition(comps=comps, views=tuple(vparts)),
        Partition(
            comps=tuple(sorted(set(comps) | set(heavy.plain))),
            views=tuple(sorted(set(vparts) | {(v.k, views.index(v)) for v in heavy.views})),
        ),
        Partition(comps=whole),
    ]
    sample = search.states
    for part in candidates:
        if not part.comps and not part.views:
            continue
        owner = _Owner(search, part, n, [len(v) for v in codec.vals], [len(v.vals) for v in views])
        share = [0] * n
        for x in sample:
            share[owner(x)] += 1
        if max(share) <= _BALANCE * len(sample) / n:
            return part
    return candidates[-1]


def stable_hash(v: Any) -> int:
    """A 64-bit hash of a value that is the same in every process (Python salts the hashes of
    strings, bytes and enums per process): ints, strings, bytes, enums (by name), tuples,
    lists, (frozen)sets, dataclasses (by type name and fields), else its ``repr``."""
    h = hashlib.blake2b(digest_size=8)
    _feed(h, v)
    return int.from_bytes(h.digest(), "little")


def _feed(h: Any, v: Any) -> None:
    if v is None or isinstance(v, bool):
        h.update(repr(v).encode())
    elif isinstance(v, enum.Enum):
        h.update(b"e" + type(v).__name__.encode() + b"." + v.name.encode())
    elif isinstance(v, int):
        h.update(b"i%d;" % v)
    elif isinstance(v, str):
        h.update(b"s%d:" % len(v) + v.encode())
    elif isinstance(v, (bytes, bytearray)):
        h.update(b"b%d:" % len(v) + bytes(v))
    elif isinstance(v, (tuple, list)):
        h.update(b"(")
        for x in v:
            _feed(h, x)
        h.update(b")")
    elif isinstance(v, (set, frozenset)):
        h.update(b"{" + b"".join(sorted(stable_hash(x).to_bytes(8, "little") for x in v)) + b"}")
    elif dataclasses.is_dataclass(v) and not isinstance(v, type):
        h.update(b"d" + type(v).__name__.encode() + b"(")
        for f in dataclasses.fields(v):
            _feed(h, getattr(v, f.name))
        h.update(b")")
    else:
        h.update(b"r" + repr(v).encode())


#: odd multipliers mixing the parts of the partition key
_MULS = (1, 1_000_003, 998_244_353, 2_654_435_761, 40_503, 65_599, 31, 131)


class _Owner:
    """The owner of a packed state, from the ids of the partition key's parts: an id known at
    the fork is the same in every process and stands for itself; a newer one stands for its
    value's hash. A part's contribution is cached per id (a list; None: not yet computed)."""

    def __init__(
        self,
        search: _Search,
        part: Partition,
        n: int,
        base: Sequence[int],
        vbase: Sequence[int],
        same_salt: bool = True,
    ) -> None:
        self.codec = search.codec
        self.kernel = search.kernel
        self.part = part
        self.n = n
        self.base = list(base)
        self.vbase = list(vbase)
        self.hash: Callable[[Any], int] = hash if same_salt else stable_hash
        views = list(self.kernel.views.values())
        #: per part: (component, view or None, ids of it below this are shared, mix multiplier,
        #: contributions by id)
        self.parts: list[tuple[int, Any, int, int, list[int | None]]] = []
        for j, k in enumerate(part.comps):
            self.parts.append((k, None, self.base[k], _MULS[j % len(_MULS)], []))
        for j, (k, vi) in enumerate(part.views, start=len(part.comps)):
            self.parts.append((k, views[vi], self.vbase[vi], _MULS[j % len(_MULS)], []))
        self._fn: Callable[[int], int] = self._generate()

    def _generate(self) -> Callable[[int], int]:
        codec = self.codec
        env: dict[str, Any] = {}
        terms = []
        for j, (k, _v, _b, _m, tab) in enumerate(self.parts):
            env[f"t{j}"] = tab
            fm = codec.cap[k] - 1 if codec.cap[k] > 0 else -1
            terms.append(f"t{j}[(x >> {codec.off[k]}) & {fm}]")
        src = f"lambda x: ({' + '.join(terms) or '0'}) % {self.n}"
        fn: Callable[[int], int] = eval(src, env)  # generated from ints only
        return fn

    def relayout(self) -> None:
        """The layout changed: regenerate the field extraction (ids, and so the cached
        contributions, stay)."""
        self._fn = self._generate()

    def __call__(self, x: int) -> int:
        try:
            return self._fn(x)
        except (IndexError, TypeError):  # an id without its contribution yet
            return self.fill(x)

    def fill(self, x: int) -> int:
        """Cache the contributions of ``x``'s parts; returns its owner."""
        self._fill(x)
        return self._fn(x)

    def _fill(self, x: int) -> None:
        codec = self.codec
        for k, v, b, mul, tab in self.parts:
            i = (x & codec.fmask[k]) >> codec.off[k]
            if i < len(tab) and tab[i] is not None:
                continue
            if len(tab) <= i:
                tab.extend([None] * (i + 1 - len(tab)))
            if v is None:
                pid = i if i < b else self.hash(codec.vals[k][i])
            else:
                w = v.view_of(codec, i)
                pid = w if w < b else self.hash(v.vals[w])
            tab[i] = (pid * mul) & 0xFFFFFFFFFFFF


_EXPAND: dict[tuple[tuple[int, ...], int], Callable[..., Any]] = {}


def _expand_loop(shape: tuple[int, ...], nparts: int) -> Callable[..., Any]:
    """A worker's level loop, unrolled over the action groups (``shape``: the number of views
    of each) like the sequential one, with the owner of each successor computed inline from
    the ``nparts`` parts of the partition key (``fill`` when a part's contribution is not
    cached yet)."""
    key = (shape, nparts)
    fn = _EXPAND.get(key)
    if fn is not None:
        return fn
    params = ""
    for k, nv in enumerate(shape):
        params += f", m{k}, c{k}, g{k}"
        for j in range(nv):
            params += f", o{k}_{j}, f{k}_{j}, vo{k}_{j}, vm{k}_{j}"
    for j in range(nparts):
        params += f", po{j}, pf{j}, pt{j}"
    owner = " + ".join(f"pt{j}[(t >> po{j}) & pf{j}]" for j in range(nparts)) or "0"
    src = [
        "def expand(front, base, boundary, seen, cand, outs_t, outs_k, outs_f, hits, miss,"
        f" put, is_final, check_dead, me, n, fill, pm{params}):",
        "    dead = None",
        "    for r, s in front:",
        "        if boundary and base + r in boundary:",
        "            continue",
        f"        pos = key0 = r << {_POS_BITS}",
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
            "            hits[e[2]] += 1",
            "            fl = e[1]",
            "            pv = e[4]",
            "            j = 0",
            "            for d in ds:",
            "                t = s ^ d",
            "                q = None",
            "                if pv is not None:",
            "                    q = pv[j]",
            "                    if q is not None:",
            "                        t = put(t, q)",
            "                if q is None and not d & pm:",
            "                    o = me  # the partition key's fields are unchanged",
            "                else:",
            "                    try:",
            f"                        o = ({owner}) % n",
            "                    except (IndexError, TypeError):",
            "                        o = fill(t)",
            "                if o == me:",
            "                    if t not in seen and t not in cand:",
            f"                        cand[t] = (pos + j) << {_KEY_SHIFT}"
            f" | (fl[j] if fl is not None else 0) | {k << _GROUP_SHIFT}",
            "                else:",
            "                    ts = outs_t[o]",
            f"                    f = (fl[j] if fl is not None else 0) | {k << _GROUP_SHIFT}",
            "                    if f:",
            "                        outs_f[o][len(ts)] = f",
            "                    ts.append(t)",
            "                    outs_k[o].append(pos + j)",
            "                j += 1",
            "            pos += j",
        ]
    src += [
        f"        if pos - key0 > {_POS_MAX}:",
        f"            raise RuntimeError('a state has more than {_POS_MAX} transitions')",
        "        if pos == key0 and check_dead and dead is None and not is_final(s):",
        f"            dead = key0 | {_POS_MAX}",
        "    return dead",
    ]
    namespace: dict[str, Any] = {}
    exec(compile("\n".join(src), f"<parallel expand {shape}>", "exec"), namespace)
    fn = namespace["expand"]
    _EXPAND[key] = fn
    return fn


# ------------------------------------------------------------------------------------------
# the worker


class _Worker:
    """One partition of the search (runs in a worker process)."""

    def __init__(self, search: _Search, me: int, n: int, partition: Any, conn: Any) -> None:
        self.search = search
        self.kernel = search.kernel
        self.codec = search.codec
        self.me = me
        self.n = n
        self.conn = conn
        #: the RSS before my partition is stored, and what the batches cost (see stats)
        self.rss0 = current_rss()
        self.cpu0 = time.process_time()
        self.sent_states = 0
        self.sent_bytes = 0
        self.recv_states = 0
        self.pack_cpu = 0.0
        self.unpack_cpu = 0.0
        part, base, vbase, probe = partition
        #: ids below these (per component, per view) are the same in every worker
        self.base: list[int] = list(base)
        self.vbase: list[int] = list(vbase)
        self.owner = _Owner(search, part, n, base, vbase, same_salt=hash(_PROBE) == probe)
        # my states: local int, global index, parent's global index (global index order)
        self.xs: list[int] = []
        self.gs = array("q")
        self.ps = array("q")
        self.seen: set[int] = set()
        level_lo = search.level_lo
        #: my frontier: (rank in its level, state), by rank
        self.front: list[tuple[int, int]] = []
        for g, x in enumerate(search.states):
            if self.owner(x) == me:
                self.xs.append(x)
                self.gs.append(g)
                self.ps.append(search.parents[g])
                self.seen.add(x)
                if g >= level_lo:
                    self.front.append((g - level_lo, x))
        self.level_base = level_lo
        self.ps_base = level_lo
        self.boundary: set[int] = set(search.boundary)
        search.states, search.parents, search.seen = [], array("i"), set()
        # the prefix's coverage is counted once, by the coordinator
        k = self.kernel
        k.hits[:] = [0] * len(k.hits)
        k.direct_kinds[:] = [0] * len(k.direct_kinds)
        k.direct_transitions = 0
        ncomp = len(self.codec.names)
        #: per sender, per component: the sender's id -> my id (ids at or above the base)
        self.trans: list[list[dict[int, int]]] = [[{} for _ in range(ncomp)] for _ in range(n)]
        #: per receiver, per component: my ids whose value it has (or my id -> its id)
        self.sent: list[list[set[int]]] = [[set() for _ in range(ncomp)] for _ in range(n)]
        self.theirs: list[list[dict[int, int]]] = [[{} for _ in range(ncomp)] for _ in range(n)]
        self.cand: dict[int, int] = {}
        self.new_ts: list[int] = []
        self.new_keys = array("q")
        self.outside: list[int] = []
        self.level_hits: list[int] = []
        self.level_direct: tuple[list[int], int] = ([], 0)
        self.expanded: list[tuple[int, int]] = []

    # -- one level ---------------------------------------------------------------------------
    def expand(self) -> tuple[Any, ...]:
        """Expand my frontier in rank order; successors I own become candidates, the others
        go to their owners' outboxes; returns the outboxes (pickled) and my first deadlock's
        key."""
        kernel = self.kernel
        n, me = self.n, self.me
        cand: dict[int, int] = {}
        outs: list[tuple[list[int], list[int], dict[int, int]]] = [([], [], {}) for _ in range(n)]
        self.level_hits = list(kernel.hits)
        self.level_direct = (list(kernel.direct_kinds), kernel.direct_transitions)
        codec = self.codec
        owner = self.owner
        args: list[Any] = []
        for g in kernel.groups:
            args += [g.mask, g.cache, g]
            for v in g.views:
                field = codec.cap[v.k] - 1 if codec.cap[v.k] > 0 else -1
                args += [codec.off[v.k], field, v.of, partial(v.view_of, codec)]
        for k, _v, _b, _m, tab in owner.parts:
            field = codec.cap[k] - 1 if codec.cap[k] > 0 else -1
            args += [codec.off[k], field, tab]
        loop = _expand_loop(tuple(len(g.views) for g in kernel.groups), len(owner.parts))
        dead_key = loop(
            self.front,
            self.level_base,
            self.boundary,
            self.seen,
            cand,
            [o[0] for o in outs],
            [o[1] for o in outs],
            [o[2] for o in outs],
            kernel.hits,
            kernel.miss,
            kernel.put,
            kernel.is_final,
            self.search.check_dead,
            me,
            n,
            owner.fill,
            codec.mask([codec.names[k] for k, *_rest in owner.parts]),
            *args,
        )
        self.expanded = self.front
        self.cand = cand
        c0 = time.process_time()
        boxes = [b"" if o == me else self._pack(o, *outs[o]) for o in range(n)]
        self.pack_cpu += time.process_time() - c0
        self.sent_states += sum(len(o[0]) for o in outs)
        self.sent_bytes += sum(len(b) for b in boxes)
        return ("out", boxes, dead_key)

    def _pack(self, o: int, ts: list[int], keys: list[int], fls: dict[int, int]) -> bytes:
        """The outbox for worker ``o``: the values of my newer ids in ``ts`` it does not have
        yet (its own id for those I learned from it), then the states, keys and flags."""
        codec = self.codec
        sent, theirs = self.sent[o], self.theirs[o]
        vals: list[tuple[int, int, Any, int]] = []
        fields = [
            (k, codec.off[k], codec.cap[k] - 1 if codec.cap[k] > 0 else -1, self.base[k])
            for k in range(len(codec.names))
            if len(codec.vals[k]) > self.base[k]  # (else every id of k is shared)
        ]
        for t in ts:
            for k, off, fm, b in fields:
                i = (t >> off) & fm
                if i >= b and i not in sent[k]:
                    sent[k].add(i)
                    their_id = theirs[k].get(i)
                    if their_id is None:
                        vals.append((k, i, codec.vals[k][i], -1))
                    else:  # a value I learned from o: its own id is enough
                        vals.append((k, i, None, their_id))
        return pickle.dumps((vals, ts, array("q", keys), fls), protocol=pickle.HIGHEST_PROTOCOL)

    def _unpack(self, w: int, box: bytes) -> tuple[list[int], Any, dict[int, int]]:
        """Worker ``w``'s outbox for me, its states translated into my ids."""
        vals, ts, keys, fls = pickle.loads(box)
        codec = self.codec
        trans = self.trans[w]
        theirs = self.theirs[w]
        adopt = codec.adopt
        for k, i, v, mine in vals:
            if v is not None:
                mine = codec.intern(k, adopt(k, v))
                theirs[k][mine] = i  # (for the way back: w's id of this value)
            trans[k][i] = mine  # (else w sent my own id of it)
        if any(trans):
            fields = [
                (codec.off[k], codec.fmask[k], codec.cap[k] - 1 if codec.cap[k] > 0 else -1)
                for k in range(len(codec.names))
            ]
            active = [(f, self.base[k], trans[k]) for k, f in enumerate(fields) if trans[k]]
            out = []
            for t in ts:
                for (off, fmask, fm), b, tr in active:
                    i = (t >> off) & fm
                    if i >= b:
                        t = (t & ~fmask) | (tr[i] << off)
                out.append(t)
            ts = out
        return ts, keys, fls

    def merge(self, inbound: Sequence[bytes]) -> tuple[Any, ...]:
        """Take the successors other workers found for me (smallest key wins), check the new
        states in key order, return my sorted keys and my events (by key)."""
        cand = self.cand  # state -> key << _KEY_SHIFT | flags (the smallest key wins)
        seen = self.seen
        others = [w for w in range(self.n) if w != self.me]
        for w, box in zip(others, inbound, strict=True):
            c0 = time.process_time()
            ts, keys, fls = self._unpack(w, box)
            self.unpack_cpu += time.process_time() - c0
            self.recv_states += len(ts)
            get = fls.get
            for i, t in enumerate(ts):
                if t in seen:
                    continue
                v = keys[i] << _KEY_SHIFT | get(i, 0)
                old = cand.get(t)
                if old is None or v < old:
                    cand[t] = v
        items = sorted(cand.items(), key=_second)
        self.cand = {}
        kernel = self.kernel
        residual = [g.residual_live for g in kernel.groups]
        viol: tuple[int, str] | None = None
        some: dict[int, int] = {}
        outside: list[int] = []
        flags = kernel.flags
        for i, (t, v) in enumerate(items):
            # the checks the sequential search makes on a state the group ``f >> _GROUP_SHIFT``
            # found: the flags of its entry and the group's residual checks
            f = v & _FLAG_MASK
            res = residual[(v >> _GROUP_SHIFT) & _GROUP_MASK]
            if res:
                f |= flags(res, t)
            if f:
                key = v >> _KEY_SHIFT
                if f & VIOLATES:
                    viol = (key, kernel.violation_name(t) or "an always property")
                    break  # the events after the first violation do not happen
                if f >> SOME0:
                    for jj in range(len(kernel.sometimes)):
                        if f >> (SOME0 + jj) & 1 and jj not in kernel.found and jj not in some:
                            some[jj] = key
                if f & OUTSIDE:
                    outside.append(i)
        self.outside = outside
        self.new_ts = [t for t, _v in items]
        keys = array("q", [v >> _KEY_SHIFT for _t, v in items])
        self.new_keys = keys
        counts = [self.codec.count(k) for k in range(len(self.codec.names))]
        return ("keys", keys, viol, some, len(outside), counts)

    def assign(self, all_keys: Sequence[Any], base: int) -> None:
        """Give my new states their global indices (``base`` + rank among every worker's
        keys); they become my frontier."""
        keys = self.new_keys
        ts = self.new_ts
        # rank = my position + how many keys of the others are smaller (a merge walk: my keys
        # and theirs are both sorted)
        ranks = list(range(len(keys)))
        for w, ok in enumerate(all_keys):
            if w == self.me or not len(ok):
                continue
            p, m = 0, len(ok)
            for i, key in enumerate(keys):
                while p < m and ok[p] < key:
                    p += 1
                ranks[i] += p
        prev_base = self.ps_base
        self.xs.extend(ts)
        self.gs.extend([base + r for r in ranks])
        self.ps.extend([prev_base + (key >> _POS_BITS) for key in keys])
        self.seen.update(ts)
        for i in self.outside:
            self.boundary.add(base + ranks[i])
        self.front = list(zip(ranks, ts, strict=True))
        self.level_base = base
        self.new_ts, self.new_keys = [], array("q")

    def prefix_counts(self, rank: int) -> tuple[dict[str, int], int]:
        """Coverage and transitions with my states of the expanded level counted up to rank
        ``rank`` (inclusive), and everything before that level."""
        kernel = self.kernel
        hits = self.level_hits + [0] * (len(kernel.hits) - len(self.level_hits))
        dk, dt = self.level_direct
        saved = (kernel.direct_kinds[:], kernel.direct_transitions)
        # no-memo groups count as they compute: from the level's start
        kernel.direct_kinds[:] = dk + [0] * (len(kernel.direct_kinds) - len(dk))
        kernel.direct_transitions = dt
        prev_base = self.ps_base
        for r, s in self.expanded:
            if r > rank:
                break
            if prev_base + r in self.boundary:
                continue
            for g in kernel.groups:
                e = kernel.lookup(g, s)
                if e[0]:
                    if e[2] >= len(hits):
                        hits += [0] * (len(kernel.hits) - len(hits))
                    hits[e[2]] += 1
        hits += [0] * (len(kernel.hits) - len(hits))
        cov, tr = kernel.coverage(hits), kernel.transitions(hits)
        kernel.direct_kinds[:] = saved[0] + [0] * (len(kernel.direct_kinds) - len(saved[0]))
        kernel.direct_transitions = saved[1]
        return cov, tr

    def relayout(self, bits: list[int], order: list[int]) -> None:
        """Switch to the coordinator's wider layout (between levels: nothing in flight). Ids
        do not change, so neither does any state's owner."""
        remap = self.codec.relayout(bits, order)
        self.kernel.relayout_done(remap)
        self.xs[:] = [remap(x) for x in self.xs]
        self.seen = set(self.xs)
        self.front = [(r, remap(x)) for r, x in self.front]
        self.expanded = [(r, remap(x)) for r, x in self.expanded]
        self.owner.relayout()

    def stats(self) -> dict[str, Any]:
        """What my partition costs: states owned, RSS growth since I started (the store: the
        visited set, the states with their global and parent indices, my memo and intern
        tables), and the batches: successors sent to other workers, their pickled bytes, and
        the CPU seconds of packing and unpacking them (the transport's own cost is not in
        it)."""
        return {
            "worker": self.me,
            "states": len(self.xs),
            "rss_growth": max(0, current_rss() - self.rss0),
            "peak_rss": peak_rss(),
            "cpu": time.process_time() - self.cpu0,
            "sent_states": self.sent_states,
            "sent_bytes": self.sent_bytes,
            "recv_states": self.recv_states,
            "pack_cpu": self.pack_cpu,
            "unpack_cpu": self.unpack_cpu,
        }

    def lookup(self, g: int) -> tuple[Any, int] | None:
        """The state with global index ``g`` (decoded: ids are mine) and its parent's index."""
        i = bisect_left(self.gs, g)
        if i < len(self.gs) and self.gs[i] == g:
            return self.codec.decode(self.xs[i]), self.ps[i]
        return None

    # -- the message loop --------------------------------------------------------------------
    def handle(self, msg: tuple[Any, ...]) -> tuple[Any, ...] | None:
        """One coordinator message's reply (None for ``stop``): what every transport's worker
        runs per message (a process's pipe loop, :meth:`serve`; a cluster actor's method)."""
        kernel = self.kernel
        clock = time.process_time
        op = msg[0]
        c0 = clock()
        try:
            if op == "stop":
                return None
            if op == "expand":
                self.ps_base = self.level_base
                return (*self.expand(), clock() - c0)
            if op == "in":
                _, inbound, found = msg
                for jj in found:
                    if jj not in kernel.found:
                        kernel.retire(jj)
                return (*self.merge(inbound), clock() - c0)
            if op == "assign":
                _, all_keys, base = msg
                self.assign(all_keys, base)
                return ("assigned", clock() - c0)
            if op == "prefix":
                return ("prefix", *self.prefix_counts(msg[1]))
            if op == "totals":
                return ("totals", kernel.coverage(), kernel.transitions())
            if op == "lookup":
                return ("lookup", self.lookup(msg[1]))
            if op == "relayout":
                self.relayout(msg[1], msg[2])
                return ("relaid", clock() - c0)
            if op == "stats":
                return ("stats", self.stats())
            raise RuntimeError(f"unknown message {op!r}")
        except LayoutOverflow as exc:
            return ("overflow", str(exc))

    def serve(self) -> None:
        conn = self.conn
        while True:
            reply = self.handle(conn.recv())
            if reply is None:
                return
            conn.send(reply)


def worker_main(search: _Search, me: int, n: int, partition: Any, conn: Any) -> None:
    """A worker's whole life: take its partition of the prefix, then serve messages.

    ``partition`` is ``(Partition, base ids, base view ids, the coordinator's hash probe)``
    as :class:`_Coordinator` makes it."""
    _Worker(search, me, n, partition, conn).serve()


@dataclasses.dataclass(slots=True)
class WorkerRecipe:
    """What a worker is made of: the coordinator's search after the prefix (its intern, view
    and memo tables: ids below the partition's bases are the same in every worker), the
    partition (``(Partition, base ids, base view ids, the coordinator's hash probe)``) and the
    number of workers. Called as ``recipe(me, conn)`` it is a forked local process's whole
    life; a cluster transport pickles it to each actor (:func:`worker_main` there)."""

    search: _Search
    partition: Any
    n: int

    def __call__(self, me: int, conn: Connection) -> None:
        signal.signal(signal.SIGINT, signal.SIG_IGN)  # the coordinator handles Ctrl-C
        gc.disable()
        try:
            worker_main(self.search, me, self.n, self.partition, conn)
        except Exception:  # report, do not leave the coordinator waiting
            conn.send(("error", traceback.format_exc()))
        finally:
            os._exit(0)  # no atexit handlers or finalizers of the parent's objects

    def worker(self, me: int) -> _Worker:
        """Worker ``me`` in this process (a cluster actor: the recipe arrived pickled)."""
        return _Worker(self.search, me, self.n, self.partition, None)


# ------------------------------------------------------------------------------------------
# the coordinator


class _Overflow(Exception):
    """The shared layout is full: the search is redone sequentially."""


def parallel_search(
    explorer: Explorer[Any],
    props: list[Property[Any]],
    *,
    warmup_states: int = WARMUP_STATES,
    transport: Callable[[int, WorkerRecipe], Transport] | None = None,
) -> ExploreResult:
    """Explore with ``explorer.workers`` workers; the same result as the sequential search.

    ``transport(n, recipe)`` starts the workers (default: :class:`LocalProcesses`, forked);
    a worker that fails ends the search with :class:`WorkerFailed` (the partial counts in
    it), never with a result."""
    try:
        return _Coordinator(explorer, props, warmup_states, transport).run()
    except _Overflow:
        # a field filled up within one level (after a relayout at the barrier before it had
        # given it 64x room): redo the search sequentially, which relayouts anywhere
        result = _Search(explorer, props, want_graph=False).run()
        assert result is not None
        return result


class _Coordinator:
    def __init__(
        self,
        explorer: Explorer[Any],
        props: list[Property[Any]],
        warmup_states: int,
        transport: Callable[[int, WorkerRecipe], Transport] | None,
    ) -> None:
        self.ex = explorer
        self.props = props
        self.warmup = warmup_states
        self.make_transport = transport or LocalProcesses
        self.n = explorer.workers
        #: per level: (per phase, each worker's CPU seconds; the coordinator's CPU seconds)
        self.level_cpu: list[tuple[list[list[float]], float]] = []

    def run(self) -> ExploreResult:
        search = _Search(self.ex, self.props, want_graph=False)
        done = search.run(until_states=self.warmup)
        if done is not None:  # finished (or stopped) within the prefix
            return done  # finished (or stopped) within the prefix: the sequential result
        self.search = search
        codec, kernel = search.codec, search.kernel
        # a wide layout the workers share (fields may grow 256x before the next relayout)
        codec.headroom = PARALLEL_HEADROOM
        remap = codec.relayout()
        kernel.relayout_done(remap)
        search.states[:] = [remap(x) for x in search.states]
        part = partition_of(search, self.n)
        self.partition = part
        base = [len(v) for v in codec.vals]
        vbase = [len(v.vals) for v in kernel.views.values()]
        self.prefix_states = len(search.states)
        self.base_cov = kernel.coverage()
        self.base_tr = kernel.transitions()
        self.clock = search.clock
        self.prefix_cpu = time.process_time() - self.clock.c0
        gc_was = gc.isenabled()
        gc.disable()
        children0 = _children_cpu()
        self.cpu0 = time.process_time()
        recipe = WorkerRecipe(search, (part, base, vbase, hash(_PROBE)), self.n)
        tp = self.make_transport(self.n, recipe)
        self.tp = tp
        self.t_start = time.perf_counter()
        # the coordinator keeps the counts only
        search.states, search.seen = [], set()
        self.done = (self.prefix_states, search.depth)  # (states, depth) of the levels done
        #: per worker: states owned and CPU seconds so far (for the progress display)
        self.owned = [0] * self.n
        self.wcpu_total = [0.0] * self.n
        progress = self.clock.progress
        if progress is not None:
            self.clock.progress = partial(self._progress, progress)
        try:
            result = self._levels()
            result.worker_stats = self._stats()
        except WorkerFailed as exc:
            states, depth = self.done
            raise WorkerFailed(
                f"{exc}\nno verdict: {states:,} states were discovered in the BFS levels "
                f"completed before it (depth {depth}); nothing after them was checked",
                states=states,
                depth=depth,
            ) from None
        finally:
            tp.close()
            if gc_was:
                gc.enable()
        if getattr(tp, "remote", False):  # not this process's children: as they report it
            result.cpu_seconds += sum(s["cpu"] for s in result.worker_stats)
            result.peak_rss_bytes = max(
                [result.peak_rss_bytes, *(s["peak_rss"] for s in result.worker_stats)]
            )
        else:  # the workers' CPU time counts (they are reaped now)
            result.cpu_seconds += _children_cpu() - children0
            result.peak_rss_bytes = max(result.peak_rss_bytes, _children_peak())
        return result

    def _progress(self, callback: Callable[[Progress], None], p: Progress) -> None:
        """The engine's progress snapshot with each worker's states and rate (its states per
        second of wall time since the workers started)."""
        wall = max(time.perf_counter() - self.t_start, 1e-9)
        p.workers = tuple((k, k / wall) for k in self.owned)
        callback(p)

    def _stats(self) -> list[dict[str, Any]]:
        """Each worker's :meth:`_Worker.stats`."""
        for w in range(self.n):
            self.tp.send(w, ("stats",))
        return [m[1] for m in self._gather("stats")]

    # -- messaging -----------------------------------------------------------------------------
    def _gather(self, expect: str) -> list[tuple[Any, ...]]:
        """One reply of kind ``expect`` from every worker."""
        tp = self.tp
        out: list[tuple[Any, ...] | None] = [None] * self.n
        missing = self.n
        while missing:
            for w in tp.ready():
                msg = tp.recv(w)
                op = msg[0]
                if op == "error":
                    raise WorkerFailed(f"worker {w} failed:\n{msg[1]}")
                elif op == "overflow":
                    raise _Overflow(msg[1])
                elif op == expect:
                    out[w] = msg
                    missing -= 1
                elif op in ("out", "keys", "assigned", "relaid") and expect not in (
                    "out",
                    "keys",
                    "assigned",
                    "relaid",
                ):
                    continue  # a level interrupted by Ctrl-C: its late replies are dropped
                else:  # pragma: no cover - a protocol bug
                    raise WorkerFailed(f"worker {w}: unexpected {op!r} (expected {expect!r})")
        return [m for m in out if m is not None]

    # -- the level loop ------------------------------------------------------------------------
    def _levels(self) -> ExploreResult:
        search, tp, n = self.search, self.tp, self.n
        kernel = search.kernel
        codec = search.codec
        total = self.prefix_states  # states discovered so far
        level_base = search.level_lo  # global index of the frontier's first state
        depth = search.depth
        examples = dict(search.examples)
        found = set(kernel.found)
        boundary = len(search.boundary)
        stop: str | None = None
        event: tuple[str, int, int, int] | None = None  # (name, event key, state index, rank)
        clock = time.process_time
        try:
            while True:
                c0 = clock()
                wcpu: list[list[float]] = []  # per phase, per worker
                for w in range(n):
                    tp.send(w, ("expand",))
                outs = self._gather("out")
                wcpu.append([m[-1] for m in outs])
                sorted_found = sorted(found)
                for o in range(n):
                    inbound = [outs[w][1][o] for w in range(n) if w != o]
                    tp.send(o, ("in", inbound, sorted_found))
                dead = [m[2] for m in outs if m[2] is not None]
                keys_msgs = self._gather("keys")
                wcpu.append([m[-1] for m in keys_msgs])
                all_keys = [m[1] for m in keys_msgs]
                new_base = total
                for w in range(n):
                    tp.send(w, ("assign", all_keys, new_base))
                wcpu.append([m[-1] for m in self._gather("assigned")])
                counts = [max(m[5][k] for m in keys_msgs) for k in range(len(codec.names))]
                if any(cap > 0 and counts[k] * 4 > cap for k, cap in enumerate(codec.cap)):
                    # a field is filling up in some worker: every worker widens it at once
                    bits, order = codec.plan(counts)
                    codec.relayout(bits, order)
                    for w in range(n):
                        tp.send(w, ("relayout", bits, order))
                    wcpu.append([m[-1] for m in self._gather("relaid")])
                n_new = sum(len(k) for k in all_keys)

                def rank(key: int, ks: list[Any] = all_keys) -> int:
                    return sum(bisect_left(k, key) for k in ks)

                # the first event in sequential order: a violation (by its key) or a deadlock
                cands = [(m[2][0], m[2][1]) for m in keys_msgs if m[2] is not None]
                cands += [(d, DEADLOCK) for d in dead]
                if cands:
                    key, name = min(cands)
                    r_parent = key >> _POS_BITS
                    if name == DEADLOCK:
                        idx = level_base + r_parent
                        discovered = new_base + rank(key)
                    else:
                        idx = new_base + rank(key)
                        discovered = idx + 1
                    event = (name, key, idx, r_parent)
                    # sometimes examples found before the event in this level
                    best: dict[int, int] = {}
                    for m in keys_msgs:
                        for jj, k in m[3].items():
                            if jj not in found and k < key and (jj not in best or k < best[jj]):
                                best[jj] = k
                    for jj, k in best.items():
                        examples[kernel.sometimes[jj].name] = new_base + rank(k)
                        found.add(jj)
                    total = discovered
                    depth = depth + 1 if name != DEADLOCK else depth
                    self.level_cpu.append((wcpu, clock() - c0))
                    break
                best = {}
                for m in keys_msgs:
                    for jj, k in m[3].items():
                        if jj not in found and (jj not in best or k < best[jj]):
                            best[jj] = k
                for jj, k in best.items():
                    examples[kernel.sometimes[jj].name] = new_base + rank(k)
                    found.add(jj)
                boundary += sum(m[4] for m in keys_msgs)
                total += n_new
                level_base = new_base
                for w, m in enumerate(keys_msgs):
                    self.owned[w] += len(m[1])
                self.level_cpu.append((wcpu, clock() - c0))
                if n_new == 0:
                    break
                depth += 1
                self.done = (total, depth)
                stop = self.clock.tick(total, lambda: 0, n_new, depth)
                if stop is not None:
                    break
        except KeyboardInterrupt:
            stop = "interrupted"
        return self._result(event, stop, total, depth, examples, boundary)

    # -- the result ----------------------------------------------------------------------------
    def _path(self, idx: int) -> Path[Any]:
        chain: list[Any] = []
        g = idx
        while g >= 0:
            for w in range(self.n):
                self.tp.send(w, ("lookup", g))
            hits = [m[1] for m in self._gather("lookup") if m[1] is not None]
            st, parent = hits[0]
            chain.append(st)
            g = parent
        chain.reverse()
        return _path_of_chain(self.search.model, chain)

    def _result(
        self,
        event: tuple[str, int, int, int] | None,
        stop: str | None,
        total: int,
        depth: int,
        examples: dict[str, int | None],
        boundary: int,
    ) -> ExploreResult:
        coverage = dict(self.base_cov)
        transitions = self.base_tr
        c0 = time.process_time()
        if event is None:
            for w in range(self.n):
                self.tp.send(w, ("totals",))
            replies = self._gather("totals")
        else:
            for w in range(self.n):
                self.tp.send(w, ("prefix", event[3]))
            replies = self._gather("prefix")
        for m in replies:
            for k, v in m[1].items():
                coverage[k] = coverage.get(k, 0) + v
            transitions += m[2]
        complete = event is None and stop is None
        model = self.search.model
        result = ExploreResult(
            model_name=model.name,
            complete=complete,
            stop_reason=stop if event is None else "violation",
            unique_state_count=total,
            transition_count=transitions,
            max_depth=depth,
            seconds=0.0,
            cpu_seconds=0.0,
            peak_rss_bytes=0,
            bytes_per_state=0.0,
            coverage=coverage,
            never_fired=(
                [t for t in _declared_types(model) if t not in coverage] if complete else []
            ),
            boundary_states=boundary,
            state_at=None,
            workers=self.n,
        )
        if event is not None:
            result.violation = Discovery(
                name=event[0], kind=Kind.ALWAYS.value, path=self._path(event[2])
            )
        for name, idx in examples.items():
            result.examples[name] = (
                None
                if idx is None
                else Discovery(name=name, kind="sometimes", path=self._path(idx))
            )
        # the result's own work (paths, totals) counts as the coordinator's last level
        self.level_cpu.append(([], time.process_time() - c0))
        seconds, cpu, peak, bps = self.clock.finish(total, transitions, depth)
        result.seconds, result.cpu_seconds = seconds, cpu
        result.peak_rss_bytes, result.bytes_per_state = peak, bps
        result.prefix_cpu = self.prefix_cpu
        result.level_cpu = list(self.level_cpu)
        return result


def _children_cpu() -> float:
    """CPU seconds of this process's reaped child processes."""
    ru = resource.getrusage(resource.RUSAGE_CHILDREN)
    return ru.ru_utime + ru.ru_stime


def _children_peak() -> int:
    """The largest peak RSS of this process's reaped child processes."""
    return resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss * 1024
