"""FRAUDAR-style dense-subgraph peeling (Hooi et al., KDD 2016).

The suspiciousness of a node set ``S`` is ``g(S) = f(S) / |S|`` with
``f(S) = sum of node priors in S + sum of weights of edges inside S``. Greedy peeling removes, one
at a time, the node whose removal costs ``f`` the least (its prior plus the weights of its remaining
edges) and returns the prefix of the removal order with the highest ``g`` -- a 2-approximation of
the densest subgraph. With edge weights ``1 / log(c + degree of the edge's destination)`` (FRAUDAR's
column weighting) edges to popular accounts count little, so camouflage edges from fraudsters to
popular accounts neither hide a dense block nor make an honest hub look dense.
"""
from __future__ import annotations

import heapq
from dataclasses import dataclass

import numpy as np

from graphtrain.errors import ConfigError


@dataclass
class PeelResult:
    """Outcome of one greedy peel.

    Attributes:
        nodes: int64 local indices of the densest set found, in the order they would be peeled
            (the last ones are the densest core).
        density: ``g`` of that set.
    """

    nodes: np.ndarray
    density: float


def camouflage_resistant_weights(dst_degree: np.ndarray, c: float = 5.0) -> np.ndarray:
    """FRAUDAR column weights ``1 / log(c + degree)`` for edges whose destinations have ``dst_degree``."""
    return 1.0 / np.log(c + np.asarray(dst_degree, dtype=np.float64))


def peel_densest(num_nodes: int, src: np.ndarray, dst: np.ndarray, edge_weight: np.ndarray, node_prior: np.ndarray) -> PeelResult:
    """Greedy densest-subgraph peeling of an undirected weighted graph with node priors.

    Args:
        num_nodes: nodes are ``0 .. num_nodes - 1``.
        src, dst: int ``[m]`` edge endpoints (direction is ignored; self-loops are ignored).
        edge_weight: float ``[m]`` >= 0.
        node_prior: float ``[num_nodes]`` >= 0 (e.g. model scores).

    Returns:
        the densest prefix found (see :class:`PeelResult`); for ``num_nodes == 0`` an empty set.
    """
    src = np.asarray(src, dtype=np.int64)
    dst = np.asarray(dst, dtype=np.int64)
    weight = np.asarray(edge_weight, dtype=np.float64)
    prior = np.asarray(node_prior, dtype=np.float64)
    if not (src.shape == dst.shape == weight.shape) or prior.shape != (num_nodes,):
        raise ConfigError("peel_densest: src, dst and edge_weight must have one entry per edge, node_prior one per node")
    if src.size and (min(src.min(), dst.min()) < 0 or max(src.max(), dst.max()) >= num_nodes):
        raise ConfigError(f"peel_densest: endpoints must lie in [0, {num_nodes})")
    if np.any(weight < 0) or np.any(prior < 0):
        raise ConfigError("peel_densest: weights and priors must be >= 0")
    if num_nodes == 0:
        return PeelResult(np.empty(0, np.int64), 0.0)
    keep = src != dst
    src, dst, weight = src[keep], dst[keep], weight[keep]
    # adjacency (both directions) in CSR form
    ends = np.concatenate([src, dst])
    others = np.concatenate([dst, src])
    w2 = np.concatenate([weight, weight])
    order = np.argsort(ends, kind="stable")
    nbr, nbr_w = others[order], w2[order]
    indptr = np.zeros(num_nodes + 1, dtype=np.int64)
    np.cumsum(np.bincount(ends, minlength=num_nodes), out=indptr[1:])

    cost = prior.copy()
    np.add.at(cost, ends, w2)
    total = float(prior.sum() + weight.sum())
    alive = np.ones(num_nodes, dtype=bool)
    heap = [(float(cost[v]), v) for v in range(num_nodes)]
    heapq.heapify(heap)
    removed = []
    best_density, best_removed = total / num_nodes, 0
    size = num_nodes
    while size > 1:
        c, v = heapq.heappop(heap)
        if not alive[v] or c != cost[v]:
            continue  # stale heap entry
        alive[v] = False
        removed.append(v)
        total -= cost[v]
        size -= 1
        for k in range(indptr[v], indptr[v + 1]):
            u = nbr[k]
            if alive[u]:
                cost[u] -= nbr_w[k]
                heapq.heappush(heap, (float(cost[u]), int(u)))
        density = total / size
        if density > best_density + 1e-12:
            best_density, best_removed = density, len(removed)
    peel_order = np.asarray(removed + [int(np.flatnonzero(alive)[0])], dtype=np.int64)
    return PeelResult(peel_order[best_removed:], float(best_density))
