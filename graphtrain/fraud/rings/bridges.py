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


def _csr(n: int, u: np.ndarray, v: np.ndarray):
    ends = np.concatenate([u, v])
    others = np.concatenate([v, u])
    edge_id = np.concatenate([np.arange(u.size), np.arange(u.size)])
    order = np.argsort(ends, kind="stable")
    indptr = np.zeros(n + 1, dtype=np.int64)
    np.cumsum(np.bincount(ends, minlength=n), out=indptr[1:])
    return indptr, others[order], edge_id[order]


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
    tin = np.full(n, -1, dtype=np.int64)
    low = np.zeros(n, dtype=np.int64)
    size = np.ones(n, dtype=np.int64)
    parent_edge = np.full(n, -1, dtype=np.int64)
    comp_size = np.zeros(n, dtype=np.int64)
    timer = 0
    for root in range(n):
        if tin[root] >= 0:
            continue
        # iterative DFS: stack of (node, next neighbour position)
        visited = [root]
        tin[root] = low[root] = timer
        timer += 1
        stack = [(root, indptr[root])]
        while stack:
            x, k = stack[-1]
            if k < indptr[x + 1]:
                stack[-1] = (x, k + 1)
                y, e = nbr[k], eid[k]
                if e == parent_edge[x]:
                    continue
                if tin[y] < 0:
                    tin[y] = low[y] = timer
                    timer += 1
                    parent_edge[y] = e
                    visited.append(y)
                    stack.append((y, indptr[y]))
                else:
                    low[x] = min(low[x], tin[y])
            else:
                stack.pop()
                if stack:
                    p = stack[-1][0]
                    low[p] = min(low[p], low[x])
                    size[p] += size[x]
        comp_size[visited] = size[root]
        for y in visited[1:]:
            e = parent_edge[y]
            p = u[e] if v[e] == y else v[e]
            if low[y] > tin[p] and size[y] >= min_side and comp_size[root] - size[y] >= min_side:
                result[e] = True
    return result
