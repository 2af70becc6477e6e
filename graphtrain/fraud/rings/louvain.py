"""Louvain communities of a weighted undirected graph, compiled: the algorithm of
``networkx.community.louvain_communities`` (Blondel et al. 2008) in time linear in the edges per pass.

Each level moves every node, in a seeded random order, to the neighbouring community with the largest
modularity gain, until a pass moves none; the communities then become the nodes of the next level
(edge weights summed, a community's inner weight a self-loop). Levels repeat while modularity
rises by more than ``threshold``; the result is the last level's partition, as in networkx.

Modularity at resolution ``r`` over total edge weight ``m``: ``sum_c L_c / m - r * (D_c / 2m)^2``,
``L_c`` the weight inside community ``c`` (self-loops once), ``D_c`` its summed weighted degree
(self-loops twice). Moving node ``i`` of degree ``k`` with weight ``w_c`` to community ``c`` gains
``w_c / m - r * D_c * k / 2m^2`` against staying alone; ties keep the community met first in the
node's (sorted) adjacency, and no move at all unless the gain exceeds ``MIN_GAIN``.

Memory: a symmetric CSR of the edges (two int64 and one float64 per edge and direction) and O(n)
scratch. Outputs differ from networkx's for the same seed (another random stream), not in kind.
"""
from __future__ import annotations

from typing import Tuple

import numpy as np
from numba import njit

from graphtrain.ordering import csr_order


# least modularity gain of a move: a gain that is zero but for rounding would let a node swing between
# two equally good communities forever (a symmetric graph does it within one pass)
MIN_GAIN = 1e-12
# every move raises modularity, so local moving ends by itself; the cap only bounds the time if rounding
# ever defeats MIN_GAIN (a pass is O(E); random graphs of 300 to 200,000 nodes took at most 28 passes a level)
MAX_PASSES = 1000


@njit(cache=True)
def _move_nodes(indptr, nbr, wt, degree, order, com, tot, m, resolution, max_passes):  # pragma: no cover - compiled
    """One level's local moving, in place on ``com`` (community of each node) and ``tot`` (summed
    degree of each community): passes over all nodes until one moves none, at most ``max_passes``.
    Returns the passes made (the last moved none unless it is ``max_passes``)."""
    n = order.size
    to_com = np.zeros(n)  # the moving node's edge weight to each community
    seen = np.full(n, -1, dtype=np.int64)  # seen[c] == node: to_com[c] is this node's
    touched = np.empty(n, dtype=np.int64)
    two_m2 = 2.0 * m * m
    for passes in range(1, max_passes + 1):
        moves = 0
        for t in range(n):
            i = order[t]
            own = com[i]
            k = degree[i]
            count = 0
            for p in range(indptr[i], indptr[i + 1]):
                j = nbr[p]
                c = com[j]
                if seen[c] != i:
                    seen[c] = i
                    to_com[c] = 0.0
                    touched[count] = c
                    count += 1
                to_com[c] += wt[p]
            tot[own] -= k
            w_own = to_com[own] if seen[own] == i else 0.0
            remove_cost = -w_own / m + resolution * tot[own] * k / two_m2
            best, best_gain = own, MIN_GAIN
            for q in range(count):
                c = touched[q]
                gain = remove_cost + to_com[c] / m - resolution * tot[c] * k / two_m2
                if gain > best_gain:
                    best, best_gain = c, gain
            tot[best] += k
            if best != own:
                com[i] = best
                moves += 1
        if moves == 0:
            return passes
    return max_passes


def _csr(n: int, u: np.ndarray, v: np.ndarray, w: np.ndarray) -> Tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Symmetric CSR (rows sorted by neighbour) of the undirected edges ``u - v`` (no self-loops)."""
    a, b = np.concatenate([u, v]), np.concatenate([v, u])
    order, indptr = csr_order(a, b, n)
    return indptr, b[order], np.concatenate([w, w])[order]


def _modularity(inner: np.ndarray, degree: np.ndarray, m: float, resolution: float) -> float:
    """Modularity of the partition whose communities have inner weights ``inner`` and degrees ``degree``."""
    return float(inner.sum() / m - resolution * np.square(degree / (2.0 * m)).sum())


def louvain_communities(n: int, u: np.ndarray, v: np.ndarray, w: np.ndarray, *, resolution: float = 1.0,
                        seed: int = 0, threshold: float = 1e-7) -> np.ndarray:
    """int64 ``[n]``: a community label (``0 .. k-1``) of each node.

    Args:
        n: nodes ``0 .. n-1``.
        u, v, w: undirected edges, each pair once, ``u != v``, weights > 0 (shape ``[E]``).
        resolution: below 1 favours fewer, larger communities.
        seed: seed of the node orders (one random permutation per level).
        threshold: least modularity gain for another level.
    """
    u, v = np.asarray(u, dtype=np.int64), np.asarray(v, dtype=np.int64)
    w = np.asarray(w, dtype=np.float64)
    if u.size and (np.any(u == v) or u.min() < 0 or max(u.max(), v.max()) >= n or np.any(w <= 0)):
        raise ValueError("louvain_communities needs edges u != v within 0 .. n-1 with positive weights")
    labels = np.arange(n, dtype=np.int64)
    m = float(w.sum())
    if m == 0.0:
        return labels
    rng = np.random.default_rng(seed)
    inner = np.zeros(n)  # self-loop weight of each node of the current level
    degree = np.bincount(u, w, n) + np.bincount(v, w, n)
    mod = _modularity(inner, degree, m, resolution)
    size = n
    while True:
        indptr, nbr, wt = _csr(size, u, v, w)
        com = np.arange(size, dtype=np.int64)
        tot = degree.copy()
        passes = _move_nodes(indptr, nbr, wt, degree, rng.permutation(size).astype(np.int64), com, tot, m, resolution,
                             MAX_PASSES)
        if passes == 1:  # no node moved
            return labels
        _, com = np.unique(com, return_inverse=True)
        size = int(com.max()) + 1
        labels = com[labels]
        # the next level: communities as nodes, edge weights summed, inner weights as self-loops
        cu, cv = com[u], com[v]
        same = cu == cv
        inner = np.bincount(com, inner, size) + np.bincount(cu[same], w[same], size)
        degree = np.bincount(com, degree, size)
        new_mod = _modularity(inner, degree, m, resolution)
        if new_mod - mod <= threshold:
            return labels
        mod = new_mod
        a, b = np.minimum(cu[~same], cv[~same]), np.maximum(cu[~same], cv[~same])
        key, at = np.unique(a * size + b, return_inverse=True)
        u, v, w = key // size, key % size, np.bincount(at, w[~same], key.size)
