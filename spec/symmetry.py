"""Interchangeable socket pairs: renaming pairs in a lifecycle state (symmetry reduction).

Theory of operation
-------------------
Two socket pairs of the same kind (no data, the same hosts, both kept open or both closable)
that connect concurrently on one link group are interchangeable: nothing the kernel does
depends on *which* socket is which, only on the order in which things happen (the link group's
``conns_all`` order, the lowest free token, DMB slot and descriptor id, all of which are state,
not names). A config declares such pairs (``SystemConfig.symmetric_pairs``); the explorer then
stores one state per orbit of the renamings of those pairs (TLC's symmetry sets, Stateright's
``representative``; see ``smcd_check.explorer.symmetry``).

A pair's own components (its handshake, ``pair<p>``) move whole to the pair's new number; the
lifecycle names pairs only through connection ids (pair ``p`` has ``cid = 2p`` and
``2p + 1``), in four places, which :func:`rename_pairs` rewrites:

* ``Conn.cid`` (and the ``conns`` table, which stays sorted by cid);
* ``Lgr.conns`` (``conns_all``: creation order, kept) and ``Lgr.holders`` (sorted);
* ``DmbDesc.owner``.

Tokens, slots, descriptor and link-group ids are not renamed: they are handed out by the state
(lowest free), so a renamed state allocates the same numbers as the original.

What makes a pair *not* interchangeable (the config refuses such a declaration):
``sequential_connect`` (pair p waits for pair p - 1), carrying data (the data path's glue finds
the target of a CDC as the first connection in cid order, ``dev_move_data``), different hosts,
one kept open and the other not. The tests check the claim state by state: for every reachable
state of a symmetric config and renamings of its pairs, the renamed state's successors are the
renamed successors and every property has the same value.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace

from smcd_check.spec import lifecycle as lc


def rename_cid(cid: int, pairs: Mapping[int, int]) -> int:
    """Connection id ``cid`` after renaming pair ``p`` to ``pairs[p]`` (others unchanged)."""
    p = cid >> 1
    return 2 * pairs.get(p, p) + (cid & 1)


def rename_pairs(st: lc.LifecycleState, pairs: Mapping[int, int]) -> lc.LifecycleState:
    """``st`` with pair ``p`` renamed to ``pairs[p]`` (a permutation of some pairs)."""
    if all(p == q for p, q in pairs.items()):
        return st

    def cid(c: int) -> int:
        return rename_cid(c, pairs)

    conns = tuple(sorted((replace(c, cid=cid(c.cid)) for c in st.conns), key=lambda c: c.cid))
    lgrs = tuple(
        replace(
            g,
            conns=tuple(cid(c) for c in g.conns),
            holders=tuple(sorted(cid(c) for c in g.holders)),
        )
        for g in st.lgrs
    )
    descs = tuple(d if d.owner is None else replace(d, owner=cid(d.owner)) for d in st.descs)
    return replace(st, lgrs=lgrs, descs=descs, conns=conns)
