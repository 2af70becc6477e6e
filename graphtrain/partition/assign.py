"""Node -> partition assignment methods. Input and output are indexed by dense rank (rid).

- ``hash``: ``part = mix64(hash(raw ID) ^ seed) mod P``. Balanced in expectation, needs no edges,
  one pass over the sorted hashes.
- ``ldg``: Linear Deterministic Greedy (Stanton & Kliot, KDD 2012), a one-pass streaming method:
  nodes arrive in rid order (pseudo-random: rids follow the ID hash) with their (undirected)
  neighbour lists read from disk bin by bin; each goes to the partition holding most of its
  already-placed neighbours, weighted by ``1 - size/capacity``. Memory: 2 bytes per node for the
  assignment plus one adjacency bin.
- ``fennel``: the same stream with FENNEL's objective (Tsourakakis et al., WSDM 2014):
  ``neighbours_in_p - alpha * gamma * size_p ** (gamma - 1)``, ``gamma = 1.5``.
- ``metis``: multilevel k-way METIS through pymetis on the whole symmetrised graph in memory; only
  when it fits the memory limit.

All methods return ``part``: int32 ``[N]`` with values in ``[0, P)``, a pure function of the graph,
``P`` and the seed (no dependence on thread count or chunking).
"""
from __future__ import annotations

import warnings
from typing import Callable, Iterable, Tuple

import numpy as np
from numba import njit

from graphtrain.errors import ConfigError
from graphtrain.kernels.rng import mix64_np, seed_key

METHODS = ("hash", "ldg", "fennel", "metis")
STREAMING = ("ldg", "fennel")


def assign_hash(sorted_hash_chunks: Iterable[np.ndarray], num_nodes: int, num_parts: int, seed: int = 0) -> np.ndarray:
    """Hash partitioning from the ID hashes in rid order (chunks concatenate to ``[N]``)."""
    part = np.empty(num_nodes, dtype=np.int32)
    salt = seed_key(seed)
    pos = 0
    for h in sorted_hash_chunks:
        part[pos : pos + h.size] = (mix64_np(h ^ salt) % np.uint64(num_parts)).astype(np.int32)
        pos += h.size
    if pos != num_nodes:
        raise RuntimeError(f"hash assignment saw {pos} of {num_nodes} nodes")
    return part


@njit(cache=True)
def _stream_assign(rid_start, indptr, nbrs, part, sizes, capacity, use_fennel, alpha, gamma, counts, touched):
    """Assign nodes ``rid_start + i`` (i < len(indptr) - 1) greedily; updates ``part`` and ``sizes``."""
    num_parts = sizes.shape[0]
    n = indptr.shape[0] - 1
    for i in range(n):
        v = rid_start + i
        if part[v] >= 0:  # restreaming: take the node out of its previous partition first
            sizes[part[v]] -= 1
            part[v] = -1
        nt = 0
        for k in range(indptr[i], indptr[i + 1]):
            p = part[nbrs[k]]
            if p >= 0:
                if counts[p] == 0:
                    touched[nt] = p
                    nt += 1
                counts[p] += 1
        # least-loaded open partition (O(P); P is small)
        best = -1
        best_score = -np.inf
        least = -1
        for p in range(num_parts):
            if sizes[p] < capacity and (least < 0 or sizes[p] < sizes[least]):
                least = p
        if least < 0:  # every partition at capacity (only with a tiny capacity); fall back to the smallest
            least = 0
            for p in range(1, num_parts):
                if sizes[p] < sizes[least]:
                    least = p
        for j in range(nt):
            p = touched[j]
            if sizes[p] >= capacity:
                continue
            if use_fennel:
                score = counts[p] - alpha * gamma * sizes[p] ** (gamma - 1.0)
            else:
                score = counts[p] * (1.0 - sizes[p] / capacity)
            # ties go to the smaller partition, then the lower index: independent of neighbour order
            if score > best_score or (score == best_score and (sizes[p] < sizes[best] or (sizes[p] == sizes[best] and p < best))):
                best_score = score
                best = p
        if use_fennel:
            empty_score = -alpha * gamma * sizes[least] ** (gamma - 1.0)
            if best < 0 or empty_score > best_score:
                best = least
        elif best < 0 or best_score <= 0.0:
            best = least
        part[rid_start + i] = best
        sizes[best] += 1
        for j in range(nt):
            counts[touched[j]] = 0


def assign_streaming(
    adjacency_bins: Callable[[], Iterable[Tuple[int, np.ndarray, np.ndarray]]],
    num_nodes: int,
    num_undirected_edges: int,
    num_parts: int,
    method: str = "ldg",
    passes: int = 3,
    slack: float = 0.05,
) -> np.ndarray:
    """LDG or FENNEL over an adjacency stream in rid order, restreamed ``passes`` times.

    The first pass is the classic one-pass method (only earlier nodes' placements are known);
    each later pass streams the nodes again, knowing every neighbour's latest placement
    (ReLDG / ReFENNEL, Nishimura & Ugander, KDD 2013), which cuts markedly fewer edges.

    Args:
        adjacency_bins: called once per pass; yields ``(rid_start, indptr, nbrs)`` per bin,
            covering rids ``0..N-1`` in order; ``nbrs`` are rids of the node's neighbours in both
            edge directions.
        num_nodes: N.
        num_undirected_edges: m, for FENNEL's ``alpha = m * P**(gamma-1) / N**gamma``.
        num_parts: P.
        method: ``"ldg"`` or ``"fennel"``.
        passes: number of streaming passes (>= 1).
        slack: capacity is ``ceil((1 + slack) * N / P)`` nodes per partition.
    """
    if passes < 1:
        raise ConfigError(f"passes must be >= 1, got {passes}")
    if method not in STREAMING:
        raise ConfigError(f"streaming method must be one of {STREAMING}, got {method!r}")
    part = np.full(num_nodes, -1, dtype=np.int32)
    sizes = np.zeros(num_parts, dtype=np.int64)
    capacity = max(1, int(np.ceil((1.0 + slack) * num_nodes / num_parts)))
    gamma = 1.5
    alpha = float(num_undirected_edges) * num_parts ** (gamma - 1) / max(num_nodes, 1) ** gamma
    counts = np.zeros(num_parts, dtype=np.int64)
    touched = np.zeros(num_parts, dtype=np.int64)
    for _ in range(passes):
        expected = 0
        for rid_start, indptr, nbrs in adjacency_bins():
            if rid_start != expected:
                raise RuntimeError(f"adjacency bins out of order: expected rid {expected}, got {rid_start}")
            _stream_assign(rid_start, indptr, nbrs, part, sizes, capacity, method == "fennel", alpha, gamma, counts, touched)
            expected = rid_start + indptr.shape[0] - 1
        if expected != num_nodes:
            raise RuntimeError(f"adjacency stream covered {expected} of {num_nodes} nodes")
    return part


@njit(cache=True)
def _simple_undirected(indptr, nbrs, num_nodes):
    """Remove self loops and repeated neighbours from a symmetric CSR (METIS needs a simple graph)."""
    out_ptr = np.zeros(num_nodes + 1, dtype=np.int64)
    out = np.empty(nbrs.shape[0], dtype=np.int64)
    w = 0
    for v in range(num_nodes):
        seg = np.sort(nbrs[indptr[v] : indptr[v + 1]])
        last = -1
        for u in seg:
            if u != v and u != last:
                out[w] = u
                w += 1
            last = u
        out_ptr[v + 1] = w
    return out_ptr, out[:w]


def metis_memory_bytes(num_nodes: int, num_directed_entries: int) -> int:
    """Estimated peak bytes of :func:`assign_metis` (our CSR copies plus METIS's own graph)."""
    return 40 * num_directed_entries + 64 * num_nodes


def assign_metis(indptr: np.ndarray, nbrs: np.ndarray, num_parts: int, seed: int = 0) -> np.ndarray:
    """METIS k-way partitioning of a symmetric CSR over rids (self loops/duplicates are removed)."""
    from graphtrain.optional import require

    require("pymetis", feature="partition method 'metis'")
    import pymetis

    num_nodes = indptr.shape[0] - 1
    if num_parts == 1 or num_nodes <= num_parts:
        return (np.arange(num_nodes) % num_parts).astype(np.int32)
    ptr, adj = _simple_undirected(indptr, nbrs, num_nodes)
    options = pymetis.Options(seed=int(seed) % (2**31))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        if hasattr(pymetis, "CSRAdjacency"):
            result = pymetis.part_graph(num_parts, adjacency=pymetis.CSRAdjacency(ptr, adj), options=options)
        else:  # pragma: no cover - older pymetis
            result = pymetis.part_graph(num_parts, xadj=ptr, adjncy=adj, options=options)
    membership = result[1] if isinstance(result, tuple) else result.vertex_part
    return np.asarray(membership, dtype=np.int32)


def check_assignment(part: np.ndarray, num_parts: int) -> None:
    """Every node assigned to a partition in ``[0, P)``."""
    if part.size and (part.min() < 0 or part.max() >= num_parts):
        raise RuntimeError("assignment left nodes without a valid partition")

