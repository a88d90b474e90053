"""The parallel search: hash-partitioned, level-synchronous BFS over worker processes.

Theory of operation
-------------------
The coordinator (the calling process) first runs the sequential search for a few levels
(``warmup_states``): that fills the intern tables and the memo tables every worker then
inherits, and picks the layout (with spare bits for what is still to come). Then each of W
workers owns the states whose *partition key* hashes to it. The partition key is the state
masked to the footprint of the action group with the most memo entries, so all the states that
share that (usually most expensive) memo entry live in one worker and no two workers compute it.

Per BFS level d, every worker expands its level-d states in global BFS order and sends each
successor to its owner with an *order key* ``rank(parent) << 16 | position`` (the parent's rank
in level d, the successor's position among the parent's transitions). An owner keeps, per new
state, the smallest key: exactly the sequential search's first discovery. Sorted by key, the
new states of all workers interleave into exactly the sequential level d+1, so the global index
of every state, the parent of every state, the first example of every ``sometimes`` property,
the first violation (and the counts when the search stops there: the states discovered before
it, the transitions of the states expanded before it) are exactly those of the sequential
search. The tests compare both on every pinned config.

Component ids must be the same in every process: a worker that meets a new component value
asks the coordinator for its id (the coordinator owns the master intern tables), and every
barrier broadcasts the values assigned during the level, so any state a worker receives decodes
there. A layout change (a field nearly full) happens at a barrier, in every worker at once.

Transport (the swappable part)
------------------------------
Workers are driven by messages only (:class:`Transport`): ``send(w, msg)``, ``recv(w)`` and
``ready()``; messages are tuples of picklable values (ints, arrays, component values). This
module's :class:`LocalProcesses` forks local processes connected by pipes; a cluster transport
(Ray actors, issue 14) implements the same four methods, and :func:`worker_main`'s loop is
what each actor runs.
"""

from __future__ import annotations

import contextlib
import gc
import multiprocessing as mp
import os
import resource
import signal
import traceback
from array import array
from bisect import bisect_left
from collections.abc import Callable, Sequence
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
    _declared_types,
    _path_of_chain,
    _Search,
)
from smcd_check.explorer.kernel import OUTSIDE, SOME0, VIOLATES
from smcd_check.explorer.model import Property

#: a prime modulus: the partition hash of a packed state mixes all of its bits
_P = 4_294_967_291
#: the order key's position field (a state has fewer transitions than this)
_POS_BITS = 16
_POS_MAX = (1 << _POS_BITS) - 1
#: a sequential prefix this large before the workers start (memo and intern tables to share)
WARMUP_STATES = 4000
#: spare bits per field in the layout the workers share (a field may grow 256x before a
#: relayout at a barrier)
PARALLEL_HEADROOM = 8


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
    """A worker raised: the message carries its traceback."""


# ------------------------------------------------------------------------------------------
# the worker


class _Worker:
    """One partition of the search (runs in a worker process)."""

    def __init__(self, search: _Search, me: int, n: int, pgroup: int, conn: Any) -> None:
        self.search = search
        self.kernel = search.kernel
        self.codec = search.codec
        self.me = me
        self.n = n
        self.pgroup = pgroup
        self.owner = _owner_fn(self.codec, self.kernel.groups[pgroup].reads, n)
        self.conn = conn
        # my states of the sequential prefix; global index = sequential index
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
        self.boundary: set[int] = set(search.boundary)
        search.states, search.parents, search.seen = [], array("i"), set()
        # the prefix's coverage is counted once, by the coordinator
        k = self.kernel
        k.hits[:] = [0] * len(k.hits)
        k.direct_kinds[:] = [0] * len(k.direct_kinds)
        k.direct_transitions = 0
        self.codec.assign = self._provisional
        self.prov_next: list[int] = []
        self.pending: list[tuple[int, int, Any]] = []
        self.cand: dict[int, tuple[int, int]] = {}
        self.new_items: list[tuple[int, int, int]] = []
        self.outside: set[int] = set()
        self.level_hits: list[int] = []
        self.level_direct: tuple[list[int], int] = ([], 0)
        self.expanded: list[tuple[int, int]] = []

    def _provisional(self, k: int, v: Any) -> int:
        """A value new to every worker: a provisional id from the top of the field (real ids
        stay in the lower half); the coordinator numbers it at the barrier."""
        i = self.prov_next[k]
        if i < 0 or (self.codec.cap[k] > 0 and i * 2 < self.codec.cap[k]):
            raise LayoutOverflow(self.codec.names[k])
        self.prov_next[k] = i - 1
        self.codec.provisional[k][i] = v
        self.codec.minted = True
        self.pending.append((k, i, v))
        return i

    def _numbered(self, mapping: dict[tuple[int, int], int]) -> None:
        """The coordinator numbered this level's new values: use the real ids, drop every
        memo entry that involved a provisional one."""
        codec = self.codec
        for (k, prov), gid in mapping.items():
            v = codec.provisional[k][prov]
            codec.learn(k, gid, v)
            codec.ids[k][v] = gid
            if codec.vals[k][gid] is v:
                codec.foreign[k].discard(gid)  # the model's own object
        # successor entries: renumber their deltas (the key is of a real state; the written
        # fields of key ^ delta are the successor's ids, provisional ones get their number)
        kernel = self.kernel
        for g, key in kernel.provisional_entries:
            e = g.cache.get(key)
            if e is None or e[3] is not None:
                continue
            ds = []
            for d in e[0]:
                x = key ^ d
                for k in g.writes:
                    i = (x & codec.fmask[k]) >> codec.off[k]
                    if i in codec.provisional[k]:
                        x = (x & ~codec.fmask[k]) | (mapping[(k, i)] << codec.off[k])
                ds.append(x ^ key)
            g.cache[key] = (tuple(ds), e[1], e[2], (), e[4])
        kernel.provisional_entries.clear()
        for table in codec.provisional:
            table.clear()
        for table, key in kernel.provisional_keys:
            table.pop(key, None)
        kernel.provisional_keys.clear()

    def _residual(self) -> list[tuple[int, Any]]:
        """Every property some group leaves to a per-state check (the receiver of a state
        does not know which group found it; checking one more property is harmless)."""
        seen: set[int] = set()
        out: list[tuple[int, Any]] = []
        for g in self.kernel.groups:
            for k, p in g.residual_live:
                if k not in seen:
                    seen.add(k)
                    out.append((k, p))
        return out

    # -- one level ---------------------------------------------------------------------------
    def expand(self) -> tuple[Any, ...]:
        """Expand my frontier in rank order; successors I own become candidates, the others
        go to their owners' outboxes; returns the outboxes and my first deadlock's key."""
        kernel = self.kernel
        seen = self.seen
        n, me, owner = self.n, self.me, self.owner
        cand: dict[int, tuple[int, int]] = {}
        outs: list[list[tuple[int, int, int]]] = [[] for _ in range(n)]
        hits = kernel.hits
        miss = kernel.miss
        boundary = self.boundary
        base = self.level_base
        check_dead = self.search.check_dead
        self.level_hits = list(hits)
        self.level_direct = (list(kernel.direct_kinds), kernel.direct_transitions)
        codec = self.codec
        self.prov_next = [(c - 1 if c > 0 else 1 << 62) for c in codec.cap]
        self.pending = []
        held: list[tuple[int, int, int]] = []
        groups = [(g.mask, g.cache, g) for g in kernel.groups]
        dead_key: int | None = None
        for r, s in self.front:
            if boundary and base + r in boundary:
                continue
            key0 = r << _POS_BITS
            pos = key0
            for m, cache, g in groups:
                e = cache.get(s & m)
                if e is None:
                    e = miss(g, s)
                ds = e[0]
                if not ds:
                    continue
                hits[e[2]] += 1
                fl = e[1]
                if e[3] is None:  # successors with provisional ids: routed at the barrier
                    for j, d in enumerate(ds):
                        held.append((s ^ d, pos + j, fl[j] if fl is not None else 0))
                    pos += len(ds)
                    continue
                for j, d in enumerate(ds):
                    t = s ^ d
                    o = owner(t)
                    if o == me:
                        if t not in seen and t not in cand:
                            cand[t] = (pos + j, fl[j] if fl is not None else 0)
                    else:
                        outs[o].append((t, pos + j, fl[j] if fl is not None else 0))
                pos += len(ds)
            if pos - key0 > _POS_MAX:  # pragma: no cover - absurd branching
                raise RuntimeError(f"a state has more than {_POS_MAX} transitions")
            if pos == key0 and check_dead and dead_key is None and not kernel.is_final(s):
                dead_key = key0 | _POS_MAX
        self.expanded = self.front
        self.cand = cand
        return ("out", outs, dead_key, self.pending, held)

    def merge(self, inbound: Sequence[list[tuple[int, int, int]]]) -> tuple[Any, ...]:
        """Take the successors other workers found for me (smallest key wins), check the new
        states in key order, return my sorted keys and my events (by key)."""
        cand = self.cand
        seen = self.seen
        for box in inbound:
            for t, key, f in box:
                if t in seen:
                    continue
                old = cand.get(t)
                if old is None or key < old[0]:
                    cand[t] = (key, f)
        items = sorted((key, t, f) for t, (key, f) in cand.items())
        self.cand = {}
        self.new_items = items
        kernel = self.kernel
        res = self._residual()
        viol: tuple[int, str] | None = None
        some: dict[int, int] = {}
        outside: set[int] = set()
        for key, t, f in items:
            name = None
            if f & VIOLATES:
                name = kernel.violation_name(t) or "an always property"
            else:
                for k, p in res:
                    if k >= 0 and p.kind is Kind.ALWAYS and not kernel.holds(k, p, t):
                        name = kernel.violation_name(t) or p.name
                        break
            if name is not None:
                viol = (key, name)
                break  # the events after the first violation do not happen
            for k, p in res:
                if k >= 0 and p.kind is Kind.SOMETIMES:
                    jj = kernel.sometimes.index(p)
                    if jj not in kernel.found and jj not in some and kernel.holds(k, p, t):
                        some[jj] = key
            if f >> SOME0:
                for jj in range(len(kernel.sometimes)):
                    if f >> (SOME0 + jj) & 1 and jj not in kernel.found and jj not in some:
                        some[jj] = key
            if f & OUTSIDE or ((-1, None) in res and not kernel.within(t)):
                outside.add(key)
        self.outside = outside
        keys = array("q", [k for k, _, _ in items])
        return ("keys", keys, viol, some, len(outside))

    def assign(self, all_keys: Sequence[Any], base: int, prev_base: int) -> None:
        """Give my new states their global indices (``base`` + rank among every worker's
        keys); they become my frontier."""
        others = [k for w, k in enumerate(all_keys) if w != self.me]
        front: list[tuple[int, int]] = []
        seen = self.seen
        for i, (key, t, _f) in enumerate(self.new_items):
            r = i
            for ok in others:
                r += bisect_left(ok, key)
            front.append((r, t))
            self.xs.append(t)
            self.gs.append(base + r)
            self.ps.append(prev_base + (key >> _POS_BITS))
            seen.add(t)
            if key in self.outside:
                self.boundary.add(base + r)
        self.front = front
        self.level_base = base
        self.new_items = []

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
                e = g.cache.get(s & g.mask)
                if e is None:
                    e = kernel.miss(g, s)
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
        """Switch to the coordinator's wider layout (between levels: nothing in flight).
        Ownership hashes component ids, not the int, so no state changes owner."""
        remap = self.codec.relayout(bits, order)
        self.kernel.relayout_done(remap)
        self.xs[:] = [remap(x) for x in self.xs]
        self.seen = set(self.xs)
        self.front = [(r, remap(x)) for r, x in self.front]
        self.expanded = [(r, remap(x)) for r, x in self.expanded]
        self.owner = _owner_fn(self.codec, self.kernel.groups[self.pgroup].reads, self.n)

    def lookup(self, g: int) -> tuple[int, int] | None:
        i = bisect_left(self.gs, g)
        if i < len(self.gs) and self.gs[i] == g:
            return self.xs[i], self.ps[i]
        return None

    # -- the message loop --------------------------------------------------------------------
    def serve(self) -> None:
        conn = self.conn
        kernel = self.kernel
        self.ps_base = self.level_base
        while True:
            msg = conn.recv()
            op = msg[0]
            try:
                if op == "stop":
                    return
                if op == "expand":
                    self.ps_base = self.level_base
                    conn.send(self.expand())
                elif op == "in":
                    _, inbound, values, found, mapping = msg
                    self._numbered(mapping)
                    for k, i, v in values:
                        self.codec.learn(k, i, v)
                    for jj in found:
                        if jj not in kernel.found:
                            kernel.retire(jj)
                    conn.send(self.merge(inbound))
                elif op == "assign":
                    _, all_keys, base = msg
                    self.assign(all_keys, base, self.ps_base)
                elif op == "prefix":
                    conn.send(("prefix", *self.prefix_counts(msg[1])))
                elif op == "totals":
                    conn.send(("totals", kernel.coverage(), kernel.transitions()))
                elif op == "lookup":
                    conn.send(("lookup", self.lookup(msg[1])))
                elif op == "relayout":
                    self.relayout(msg[1], msg[2])
                else:
                    raise RuntimeError(f"unknown message {op!r}")
            except LayoutOverflow as exc:
                conn.send(("overflow", str(exc)))


def _owner_fn(codec: Any, comps: Sequence[int], n: int) -> Callable[[int], int]:
    """The owner of a packed state: a hash of the ids of the partition components (the same
    in every layout, so a relayout moves no state)."""
    terms = []
    for j, k in enumerate(comps):
        off = codec.off[k]
        field = f"(x >> {off})" if codec.cap[k] < 0 else f"((x >> {off}) & {codec.cap[k] - 1})"
        terms.append(f"{field} * {_MULS[j % len(_MULS)]}")
    src = f"lambda x: ({' + '.join(terms) or '0'}) % {_P} % {n}"
    fn: Callable[[int], int] = eval(src)  # generated from ints only
    return fn


#: odd multipliers mixing the component ids of the partition key
_MULS = (1, 1_000_003, 998_244_353, 2_654_435_761, 40_503, 65_599, 31, 131)


def worker_main(search: _Search, me: int, n: int, pgroup: int, conn: Any) -> None:
    """A worker's whole life: take its partition of the prefix, then serve messages."""
    _Worker(search, me, n, pgroup, conn).serve()


def _local_entry(search: _Search, pgroup: int, n: int) -> Callable[[int, Connection], None]:
    def main(me: int, conn: Connection) -> None:
        signal.signal(signal.SIGINT, signal.SIG_IGN)  # the coordinator handles Ctrl-C
        gc.disable()
        try:
            worker_main(search, me, n, pgroup, conn)
        except Exception:  # report, do not leave the coordinator waiting
            conn.send(("error", traceback.format_exc()))
        finally:
            os._exit(0)  # no atexit handlers or finalizers of the parent's objects

    return main


# ------------------------------------------------------------------------------------------
# the coordinator


class _Overflow(Exception):
    """The shared layout is full: the search is redone sequentially."""


def parallel_search(
    explorer: Explorer[Any],
    props: list[Property[Any]],
    *,
    warmup_states: int = WARMUP_STATES,
    transport: Callable[[int, Callable[[int, Connection], None]], Transport] | None = None,
) -> ExploreResult:
    """Explore with ``explorer.workers`` processes; the same result as the sequential search."""
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
        transport: Callable[[int, Callable[[int, Connection], None]], Transport] | None,
    ) -> None:
        self.ex = explorer
        self.props = props
        self.warmup = warmup_states
        self.make_transport = transport or LocalProcesses
        self.n = explorer.workers

    def run(self) -> ExploreResult:
        search = _Search(self.ex, self.props, want_graph=False, views=False, identity=False)
        done = search.run(until_states=self.warmup)
        if done is not None:  # finished (or stopped) within the prefix
            return done  # finished (or stopped) within the prefix: the sequential result
        self.search = search
        codec, kernel = search.codec, search.kernel
        # a wide layout the workers share (fields may grow 64x before the next relayout)
        codec.headroom = PARALLEL_HEADROOM
        remap = codec.relayout()
        kernel.relayout_done(remap)
        search.states[:] = [remap(x) for x in search.states]
        pgroup = max(
            range(len(kernel.groups)),
            key=lambda k: (kernel.groups[k].memo, len(kernel.groups[k].cache)),
        )
        self.pgroup = pgroup
        self.owner = _owner_fn(codec, kernel.groups[pgroup].reads, self.n)
        self.prefix_states = len(search.states)
        self.base_cov = kernel.coverage()
        self.base_tr = kernel.transitions()
        self.sent = [len(v) for v in codec.vals]
        self.clock = search.clock
        gc_was = gc.isenabled()
        gc.disable()
        children0 = _children_cpu()
        tp = self.make_transport(self.n, _local_entry(search, pgroup, self.n))
        self.tp = tp
        # the coordinator keeps the intern tables (the master copy) and the counts only
        search.states, search.seen = [], set()
        try:
            result = self._levels()
        finally:
            tp.close()
            if gc_was:
                gc.enable()
        # the workers' CPU time counts (they are reaped now)
        result.cpu_seconds += _children_cpu() - children0
        result.peak_rss_bytes = max(result.peak_rss_bytes, _children_peak())
        return result

    # -- messaging -----------------------------------------------------------------------------
    def _gather(self, expect: str) -> list[tuple[Any, ...]]:
        """One reply of kind ``expect`` from every worker, serving id requests meanwhile."""
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
                elif op in ("out", "keys") and expect not in ("out", "keys"):
                    continue  # a level interrupted by Ctrl-C: its late replies are dropped
                else:  # pragma: no cover - a protocol bug
                    raise WorkerFailed(f"worker {w}: unexpected {op!r} (expected {expect!r})")
        return [m for m in out if m is not None]

    def _number(
        self, outs: list[tuple[Any, ...]]
    ) -> tuple[list[dict[tuple[int, int], int]], list[list[tuple[int, int, int]]]]:
        """Give this level's new component values their ids (one per value, whichever
        workers met it) and route the successors that carried provisional ids."""
        codec = self.search.codec
        start = [len(v) for v in codec.vals]
        mappings: list[dict[tuple[int, int], int]] = []
        for m in outs:
            mapping: dict[tuple[int, int], int] = {}
            for k, prov, v in m[3]:
                gid = codec.ids[k].get(v)
                if gid is None:
                    gid = len(codec.vals[k])
                    if codec.cap[k] > 0 and gid * 2 >= codec.cap[k]:
                        raise _Overflow(codec.names[k])
                    codec.vals[k].append(v)
                    codec.ids[k][v] = gid
                mapping[(k, prov)] = gid
            mappings.append(mapping)
        rerouted: list[list[tuple[int, int, int]]] = [[] for _ in range(self.n)]
        owner = self.owner
        fields = [(k, codec.fmask[k], codec.off[k], start[k]) for k in range(len(codec.names))]
        for w, m in enumerate(outs):
            mapping = mappings[w]
            for t, key, f in m[4]:
                y = t
                for k, fm, off, st in fields:
                    i = (t & fm) >> off
                    if i >= st:
                        y = (y & ~fm) | (mapping[(k, i)] << off)
                rerouted[owner(y)].append((y, key, f))
        return mappings, rerouted

    def _new_values(self) -> list[tuple[int, int, Any]]:
        codec = self.search.codec
        out = []
        for k, vals in enumerate(codec.vals):
            for i in range(self.sent[k], len(vals)):
                out.append((k, i, vals[i]))
            self.sent[k] = len(vals)
        return out

    # -- the level loop ------------------------------------------------------------------------
    def _levels(self) -> ExploreResult:
        search, tp, n = self.search, self.tp, self.n
        kernel = search.kernel
        total = self.prefix_states  # states discovered so far
        level_base = search.level_lo  # global index of the frontier's first state
        depth = search.depth
        examples = dict(search.examples)
        found = set(kernel.found)
        boundary = len(search.boundary)
        stop: str | None = None
        event: tuple[str, int, int, int] | None = None  # (name, event key, state index, rank)
        try:
            while True:
                for w in range(n):
                    tp.send(w, ("expand",))
                outs = self._gather("out")
                mappings, rerouted = self._number(outs)
                values = self._new_values()
                for o in range(n):
                    inbound = [outs[w][1][o] for w in range(n) if w != o] + [rerouted[o]]
                    tp.send(o, ("in", inbound, values, sorted(found), mappings[o]))
                dead = [m[2] for m in outs if m[2] is not None]
                keys_msgs = self._gather("keys")
                all_keys = [m[1] for m in keys_msgs]
                new_base = total
                for w in range(n):
                    tp.send(w, ("assign", all_keys, new_base))
                if self.search.codec.pressure():
                    bits, order = self.search.codec.plan()
                    self.search.codec.relayout(bits, order)
                    self.owner = _owner_fn(self.search.codec, kernel.groups[self.pgroup].reads, n)
                    for w in range(n):
                        tp.send(w, ("relayout", bits, order))
                n_new = sum(len(k) for k in all_keys)

                def rank(key: int, ks: list[Any] = all_keys) -> int:
                    return sum(bisect_left(k, key) for k in ks)

                # the first event in sequential order: a violation (by its key) or a deadlock
                cands = [(m[2][0], m[2][1]) for m in keys_msgs if m[2] is not None]
                cands += [(d, DEADLOCK) for d in dead]
                if cands:
                    key, name = min(cands)
                    if name == DEADLOCK:
                        r_parent = key >> _POS_BITS
                        idx = level_base + r_parent
                        discovered = new_base + rank(key)
                    else:
                        r_parent = key >> _POS_BITS
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
                if n_new == 0:
                    break
                depth += 1
                stop = self.clock.tick(total, lambda: 0, n_new, depth)
                if stop is not None:
                    break
        except KeyboardInterrupt:
            stop = "interrupted"
        return self._result(event, stop, total, depth, examples, boundary)

    # -- the result ----------------------------------------------------------------------------
    def _path(self, idx: int) -> Path[Any]:
        chain: list[int] = []
        g = idx
        while g >= 0:
            for w in range(self.n):
                self.tp.send(w, ("lookup", g))
            hits = [m[1] for m in self._gather("lookup") if m[1] is not None]
            x, parent = hits[0]
            chain.append(x)
            g = parent
        chain.reverse()
        decode = self.search.codec.decode
        return _path_of_chain(self.search.model, [decode(x) for x in chain])

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
        seconds, cpu, peak, bps = self.clock.finish(total, transitions, depth)
        complete = event is None and stop is None
        model = self.search.model
        result = ExploreResult(
            model_name=model.name,
            complete=complete,
            stop_reason=stop if event is None else "violation",
            unique_state_count=total,
            transition_count=transitions,
            max_depth=depth,
            seconds=seconds,
            cpu_seconds=cpu,
            peak_rss_bytes=peak,
            bytes_per_state=bps,
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
        return result


def _children_cpu() -> float:
    """CPU seconds of this process's reaped child processes."""
    ru = resource.getrusage(resource.RUSAGE_CHILDREN)
    return ru.ru_utime + ru.ru_stime


def _children_peak() -> int:
    """The largest peak RSS of this process's reaped child processes."""
    return resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss * 1024
