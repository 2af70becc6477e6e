"""Cut a graph at its bridges where both sides are substantial.

Two rings joined by one stray transaction (or through one falsely flagged account) form a single
connected group whose only link between the two parts is a **bridge**: an edge whose removal
disconnects the graph. Rings themselves rarely hang on one edge with a large part on each side: a
cycle, a scatter-gather or a dense block has no bridge, and a star's bridges each cut off a single
leaf. So removing every bridge that leaves at least ``min_side`` nodes on both sides splits merged
rings and keeps real ones whole.
"""
from __future__ import annotations

import numpy as np
from numba import njit


def _csr(n: int, u: np.ndarray, v: np.ndarray):
    """Both directions of each undirected edge grouped by endpoint: ``(indptr [n+1], neighbour [2m],
    edge id [2m])``."""
    ends = np.concatenate([u, v])
    others = np.concatenate([v, u])
    edge_id = np.concatenate([np.arange(u.size), np.arange(u.size)])
    order = np.argsort(ends, kind="stable")
    indptr = np.zeros(n + 1, dtype=np.int64)
    np.cumsum(np.bincount(ends, minlength=n), out=indptr[1:])
    return indptr, others[order], edge_id[order]


@njit(cache=True)
def _bridges(n, u, v, indptr, nbr, eid, min_side, result):  # pragma: no cover - compiled
    """Iterative DFS (Tarjan's low-link) from every unvisited node: marks ``result[e]`` for each bridge
    with at least ``min_side`` nodes on each side. Time O(n + m)."""
    tin = np.full(n, -1, dtype=np.int64)
    low = np.zeros(n, dtype=np.int64)
    size = np.ones(n, dtype=np.int64)
    parent_edge = np.full(n, -1, dtype=np.int64)
    stack_node = np.empty(n, dtype=np.int64)  # the DFS path and each node's next neighbour position
    stack_next = np.empty(n, dtype=np.int64)
    visited = np.empty(n, dtype=np.int64)  # this component's nodes in visit order
    timer = 0
    for root in range(n):
        if tin[root] >= 0:
            continue
        count = 0
        visited[count] = root
        count += 1
        tin[root] = timer
        low[root] = timer
        timer += 1
        top = 0
        stack_node[0], stack_next[0] = root, indptr[root]
        while top >= 0:
            x, k = stack_node[top], stack_next[top]
            if k < indptr[x + 1]:
                stack_next[top] = k + 1
                y, e = nbr[k], eid[k]
                if e == parent_edge[x]:
                    continue
                if tin[y] < 0:
                    tin[y] = timer
                    low[y] = timer
                    timer += 1
                    parent_edge[y] = e
                    visited[count] = y
                    count += 1
                    top += 1
                    stack_node[top], stack_next[top] = y, indptr[y]
                elif tin[y] < low[x]:
                    low[x] = tin[y]
            else:
                top -= 1
                if top >= 0:
                    p = stack_node[top]
                    if low[x] < low[p]:
                        low[p] = low[x]
                    size[p] += size[x]
        whole = size[root]
        for i in range(1, count):
            y = visited[i]
            e = parent_edge[y]
            p = u[e] if v[e] == y else v[e]
            if low[y] > tin[p] and size[y] >= min_side and whole - size[y] >= min_side:
                result[e] = True


def substantial_bridges(n: int, u, v, min_side: int) -> np.ndarray:
    """bool ``[m]``: which edges are bridges with at least ``min_side`` nodes on each side.

    Args:
        n: nodes ``0 .. n-1``.
        u, v: int ``[m]`` undirected edges, distinct pairs, no self-loops.
        min_side: the smaller side of a cut bridge must have at least this many nodes.
    """
    u = np.asarray(u, dtype=np.int64)
    v = np.asarray(v, dtype=np.int64)
    result = np.zeros(u.size, dtype=bool)
    if u.size == 0:
        return result
    indptr, nbr, eid = _csr(n, u, v)
    _bridges(n, u, v, indptr, nbr, eid, int(min_side), result)
    return result
