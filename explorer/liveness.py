"""Liveness (``eventually``) on the explored graph, with networkx.

Fairness notion
---------------
A property ``Property.eventually(name, goal, after=trigger)`` claims ``trigger ~> goal``: from
every reachable state where ``trigger`` holds, every *fair* path reaches a ``goal`` state.

Fairness is **strong fairness on every transition**: a path that passes infinitely often through
a state must eventually take each of that state's transitions. In a finite graph such a path
ends up circulating forever in a *bottom* strongly connected component (one with no edge
leaving it) and visits all of it; a path may also stop in a state without successors (a final
state or a deadlock). So ``trigger ~> goal`` fails exactly when some reachable trigger state has
a goal-free path to a state from which no goal state is reachable at all (a "doomed" state): the
SCCs that doomed states lead to contain no goal state. This is the usual "the system does not
keep ignoring a possible progress step forever" assumption; weak fairness (only continuously
enabled transitions must be taken) is stronger as a requirement and is not checked.

States outside the model's boundary are not expanded; they are treated as able to reach the
goal (optimistic), so a bound never produces a false liveness failure.

The counterexample is a lasso: the BFS-shortest path to the trigger state, a shortest goal-free
path from it into a doomed bottom SCC, then a cycle inside that SCC (or nothing, when the path
ends in a state without successors).
"""

from __future__ import annotations

from collections import deque
from collections.abc import Sequence
from typing import Any

import networkx as nx


def build_graph(
    n: int,
    src: Sequence[int],
    dst: Sequence[int],
    lab: Sequence[int],
    labels: Sequence[str],
    boundary: set[int],
    *,
    init_count: int,
) -> nx.DiGraph:
    """The explored graph: nodes are discovery indices, edges carry the action ``label``.

    Parallel transitions between the same two states keep the first action's label.
    """
    g = nx.DiGraph()
    g.add_nodes_from(range(n))
    for k in range(init_count):
        g.nodes[k]["init"] = True
    for k in boundary:
        g.nodes[k]["boundary"] = True
    for a, b, li in zip(src, dst, lab, strict=True):
        if not g.has_edge(a, b):
            g.add_edge(a, b, label=labels[li])
    return g


def _bfs_path(g: nx.DiGraph, start: int, targets: set[int], allowed: Any) -> list[int] | None:
    """Shortest path from ``start`` to any of ``targets`` through nodes where ``allowed``."""
    if start in targets:
        return [start]
    prev = {start: -1}
    q = deque([start])
    while q:
        u = q.popleft()
        for v in g.successors(u):
            if v in prev or not allowed(v):
                continue
            prev[v] = u
            if v in targets:
                path = [v]
                while prev[path[-1]] != -1:
                    path.append(prev[path[-1]])
                path.reverse()
                return path
            q.append(v)
    return None


def check_eventually(
    g: nx.DiGraph,
    goal: Sequence[int],
    trigger: Sequence[int],
    boundary: set[int],
    parents: Sequence[int],
) -> tuple[list[int], int | None] | None:
    """Check ``trigger ~> goal`` on the complete explored graph ``g``.

    Args:
        g: the graph from :func:`build_graph` (nodes are indices in BFS discovery order).
        goal: per node, 1 when the goal holds.
        trigger: per node, 1 when the trigger holds.
        boundary: nodes that were not expanded (treated as reaching the goal).
        parents: the BFS parent of each node (-1 for initial states).

    Returns:
        None when the property holds; else ``(chain, loop_start)``: node indices of a lasso
        (each a successor of the previous) and where its final cycle starts (None: the chain
        ends in a state without successors).
    """
    can = {v for v in g.nodes if goal[v] or v in boundary}
    # every node that can reach a goal (or the boundary): reverse search from them
    stack = list(can)
    while stack:
        v = stack.pop()
        for u in g.predecessors(v):
            if u not in can:
                can.add(u)
                stack.append(u)
    doomed = {v for v in g.nodes if v not in can}
    if not doomed:
        return None
    # trigger states (not goal) with a goal-free path into the doomed set: reverse search
    # from the doomed set over non-goal nodes; the smallest index is the shallowest trigger.
    reach = set(doomed)
    stack = list(doomed)
    while stack:
        v = stack.pop()
        for u in g.predecessors(v):
            if u not in reach and not goal[u]:
                reach.add(u)
                stack.append(u)
    bad = [v for v in reach if trigger[v] and not goal[v]]
    if not bad:
        return None
    start = min(bad)
    prefix = []
    k = start
    while k >= 0:
        prefix.append(k)
        k = parents[k]
    prefix.reverse()
    # the doomed part is closed under successors; its bottom SCCs hold no goal state
    sub = g.subgraph(doomed)
    cond = nx.condensation(sub)
    bottom_nodes: set[int] = set()
    for c in cond.nodes:
        if cond.out_degree(c) == 0:
            bottom_nodes.update(cond.nodes[c]["members"])
    tail = _bfs_path(g, start, bottom_nodes, lambda v: not goal[v])
    assert tail is not None  # start reaches a doomed node, which reaches a bottom SCC
    chain = prefix + tail[1:]
    end = chain[-1]
    members = next(
        set(cond.nodes[c]["members"]) for c in cond.nodes if end in cond.nodes[c]["members"]
    )
    if len(members) == 1 and not g.has_edge(end, end):
        return chain, None
    # a shortest cycle through ``end`` inside its SCC
    best: list[int] | None = None
    for v in g.successors(end):
        if v not in members:
            continue
        back = _bfs_path(g, v, {end}, lambda x: x in members)
        if back is not None and (best is None or len(back) < len(best)):
            best = back
    assert best is not None
    loop_start = len(chain) - 1
    return chain + best, loop_start
