"""Pure-NumPy references of the sampling kernels: the test oracle and the benchmark baseline.

Same signatures and same results (bit for bit) as :mod:`graphtrain.kernels.cpu` and
:mod:`graphtrain.kernels.cuda`; the algorithms are described in :mod:`graphtrain.kernels.hop_body`.
The common case (uniform sampling over a contiguous eligible range) is vectorised over entries;
weighted sampling and temporal sampling over segments that are not time-sorted loop over entries in
Python (they are oracles, not fast paths).
"""
from __future__ import annotations

from typing import Optional, Tuple

import numpy as np

from graphtrain.kernels.hop_graph import HopGraph, bounds_for
from graphtrain.kernels.rng import rand_below_np, rand_unit_np

_U64 = np.uint64


def _eligible_mask(t: np.ndarray, bound: int, strict: bool) -> np.ndarray:
    return t < bound if strict else t <= bound


def _prefix_end(time: np.ndarray, lo: np.ndarray, hi: np.ndarray, bounds: np.ndarray, strict: bool) -> np.ndarray:
    """Vectorised binary search: first position in ``[lo, hi)`` whose time is past each entry's bound."""
    lo = lo.copy()
    hi = hi.copy()
    active = lo < hi
    while active.any():
        idx = np.nonzero(active)[0]
        mid = (lo[idx] + hi[idx]) >> 1
        ok = _eligible_mask(time[mid], bounds[idx], strict)
        lo[idx[ok]] = mid[ok] + 1
        hi[idx[~ok]] = mid[~ok]
        active = lo < hi
    return lo


def _floyd(keys: np.ndarray, d: np.ndarray, k: int) -> np.ndarray:
    """Floyd's k-subset of ``[0, d)`` for each entry (all ``d > k``), vectorised; int64 ``[n, k]``."""
    n = keys.shape[0]
    sel = np.empty((n, k), dtype=np.int64)
    for j in range(k):
        top = d - k + j
        t = rand_below_np(keys, np.uint64(j), top + 1)
        taken = (sel[:, :j] == t[:, None]).any(axis=1) if j else np.zeros(n, dtype=bool)
        sel[:, j] = np.where(taken, top, t)
    return sel


def _weighted_entry(w: np.ndarray, key, k: int, replace: bool) -> np.ndarray:
    """Indices into ``w`` (an entry's eligible edges, not a prefix: temporal scan mode) drawn by weight."""
    drawable = np.nonzero(w > 0)[0]
    if drawable.size == 0:
        return drawable
    if replace:
        cum = np.cumsum(w[drawable])
        u = rand_unit_np(key, np.arange(k, dtype=_U64)) * cum[-1]
        pick = np.minimum(np.searchsorted(cum, u, side="right"), drawable.size - 1)
        return drawable[pick]
    if drawable.size <= k:
        return drawable
    chosen = np.zeros(drawable.size, dtype=bool)
    for j in range(k):
        rest = np.nonzero(~chosen)[0]
        cum = np.cumsum(w[drawable[rest]])
        u = rand_unit_np(key, _U64(j)) * cum[-1]
        chosen[rest[min(int(np.searchsorted(cum, u, side="right")), rest.size - 1)]] = True
    return drawable[np.nonzero(chosen)[0]]


def _linear_pick(w: np.ndarray, lo: int, hi: int, chosen: list, u) -> int:
    """First drawable, not yet chosen position in ``[lo, hi)`` whose running weight sum exceeds ``u``."""
    acc = 0.0
    last = lo - 1
    taken = set(chosen)
    for p in range(lo, hi):
        if p in taken or not w[p] > 0.0:
            continue
        acc += w[p]
        last = p
        if acc > u:
            return p
    return last


def _weighted_prefix_entry(graph: HopGraph, lo: int, hi: int, key, k: int, replace: bool) -> np.ndarray:
    """Weighted draws over an eligible prefix ``[lo, hi)`` using the running sums (same arithmetic as the kernels)."""
    if hi <= lo:
        return np.empty(0, dtype=np.int64)
    w, cw, cp = graph.weight, graph.cum_weight, graph.cum_positive
    npos = int(cp[hi - 1])
    if npos == 0:
        return np.empty(0, dtype=np.int64)
    total = cw[hi - 1]
    if replace:
        p = lo + np.searchsorted(cw[lo:hi], rand_unit_np(key, np.arange(k, dtype=_U64)) * total, side="right")
        last = lo + int(np.searchsorted(cp[lo:hi], npos, side="left"))
        return np.where(p < hi, p, last).astype(np.int64)
    if npos <= k:
        return (lo + np.searchsorted(cp[lo:hi], np.arange(1, npos + 1), side="left")).astype(np.int64)
    chosen: list = []  # ascending
    rest = total
    for j in range(k):
        u = rand_unit_np(key, _U64(j)) * rest
        shifted = u
        for c in chosen:
            start = cw[c - 1] if c > lo else 0.0
            if start <= shifted:
                shifted = shifted + w[c]
            else:
                break
        p = lo + int(np.searchsorted(cw[lo:hi], shifted, side="right"))
        if p >= hi or not w[p] > 0.0 or p in chosen:
            p = _linear_pick(w, lo, hi, chosen, u)
        chosen.insert(int(np.searchsorted(np.asarray(chosen, dtype=np.int64), p)), p)
        rest = rest - w[p]
    return np.asarray(chosen, dtype=np.int64)


def _recent_entry(t: np.ndarray, k: int) -> np.ndarray:
    """Indices of the ``k`` largest ``(time, index)`` pairs, most recent first."""
    order = np.lexsort((np.arange(t.size), t))[::-1]
    return order[:k]


def prepare(graph: HopGraph) -> HopGraph:
    """The graph as this backend reads it (host arrays, unchanged)."""
    return graph


def sample_hop(
    graph: HopGraph,
    local_dst: np.ndarray,
    keys: np.ndarray,
    fanout: int,
    replace: bool = False,
    use_weight: bool = False,
    time_bound: Optional[np.ndarray] = None,
    strict: bool = False,
    recent: bool = False,
) -> Tuple[np.ndarray, np.ndarray, np.ndarray]:
    """One hop of in-neighbour sampling for a batch of entries (the kernel contract; see :mod:`graphtrain.kernels`).

    Args:
        graph: the local CSC arrays.
        local_dst: int64 ``[n]`` local destination of each entry (validated by the caller).
        keys: uint64 ``[n]`` stream key of each entry.
        fanout: k >= 1.
        replace: draw with replacement (uniform or weighted).
        use_weight: sample proportionally to ``graph.weight``.
        time_bound: int64 ``[n]`` per-entry time bound (temporal mode) or None.
        strict: temporal edges need ``time < bound`` instead of ``<=``.
        recent: temporal "most recent k" instead of uniform.

    Returns:
        ``(counts, nbr, eid)``: int64 ``[n]`` edges per entry; int64 ``[sum(counts)]`` global source
        IDs and global edge IDs, entry by entry.
    """
    local_dst = np.asarray(local_dst, dtype=np.int64)
    keys = np.asarray(keys, dtype=np.uint64)
    n = local_dst.shape[0]
    k = int(fanout)
    lo = graph.indptr[local_dst].astype(np.int64)  # int32 indices widen before any arithmetic
    hi = graph.indptr[local_dst + 1].astype(np.int64)
    temporal = time_bound is not None
    if temporal:
        time_bound = bounds_for(graph, time_bound)  # compared in the time column's stored domain
    scan = temporal and not graph.time_sorted
    if temporal and not scan:
        hi = _prefix_end(graph.time, lo, hi, np.asarray(time_bound, dtype=np.int64), strict)

    if use_weight or recent or scan:
        per_entry = []
        for i in range(n):
            pos = np.arange(lo[i], hi[i], dtype=np.int64)
            if scan:
                pos = pos[_eligible_mask(graph.time[pos], time_bound[i], strict)]
            if use_weight and not scan:
                pos = _weighted_prefix_entry(graph, int(lo[i]), int(hi[i]), keys[i], k, replace)
            elif use_weight:
                pos = pos[_weighted_entry(graph.weight[pos], keys[i], k, replace)]
            elif recent:
                pos = pos[_recent_entry(graph.time[pos], k)]
            elif pos.size:
                if replace:
                    pos = pos[rand_below_np(keys[i], np.arange(k, dtype=_U64), pos.size)]
                elif pos.size > k:
                    pos = pos[_floyd(keys[i : i + 1], np.array([pos.size]), k)[0]]
            per_entry.append(pos)
        counts = np.array([p.size for p in per_entry], dtype=np.int64)
        positions = np.concatenate(per_entry) if per_entry else np.empty(0, np.int64)
        return counts, graph.src[positions].astype(np.int64), graph.edge_start + positions

    d = hi - lo
    if replace:
        counts = np.where(d > 0, k, 0).astype(np.int64)
        rows = np.nonzero(d > 0)[0]
        virt = rand_below_np(keys[rows, None], np.arange(k, dtype=_U64)[None, :], d[rows, None])
        positions = (lo[rows, None] + virt).reshape(-1)
    else:
        counts = np.minimum(d, k).astype(np.int64)
        big = d > k
        # every entry's positions laid out as [n, k] with a validity mask, then flattened in order
        slots = np.broadcast_to(np.arange(k, dtype=np.int64), (n, k)).copy()
        if big.any():
            slots[big] = _floyd(keys[big], d[big], k)
        slots += lo[:, None]
        positions = slots[np.arange(k)[None, :] < counts[:, None]]
    return counts, graph.src[positions].astype(np.int64), graph.edge_start + positions


def unique_relabel(
    prev_ids: np.ndarray,
    cand_ids: np.ndarray,
    prev_times: Optional[np.ndarray] = None,
    cand_times: Optional[np.ndarray] = None,
) -> Tuple[np.ndarray, np.ndarray]:
    """Relabel candidates against the nodes already in a batch, appending new ones in first-occurrence order.

    A node is its global ID, or the pair (global ID, time) when times are given. The sequence
    ``prev + cand`` is numbered by first occurrence: ``prev`` keeps positions ``[0, len(prev))``
    (a repeated ``prev`` node maps to its first position); each candidate not seen before gets the
    next position, in the order candidates first occur.

    Args:
        prev_ids: int64 ``[n0]`` nodes already numbered (seeds first, then earlier hops).
        cand_ids: int64 ``[m]`` newly sampled nodes.
        prev_times, cand_times: int64 time bounds for the temporal mode (both or neither).

    Returns:
        ``(new_index, local)``: int64 indices into ``cand`` of the candidates that are new, in
        first-occurrence order (the batch's next nodes are ``cand_ids[new_index]``), and int64
        ``[m]`` position of each candidate in the extended numbering.
    """
    n0 = prev_ids.shape[0]
    ids = np.concatenate([prev_ids, cand_ids]).astype(np.int64, copy=False)
    if prev_times is not None:
        times = np.concatenate([prev_times, cand_times]).astype(np.int64, copy=False)
        pairs = np.stack([ids, times], axis=1)
        _, first, inverse = np.unique(pairs, axis=0, return_index=True, return_inverse=True)
    else:
        _, first, inverse = np.unique(ids, return_index=True, return_inverse=True)
    first_pos = first[inverse.reshape(-1)]
    arange = np.arange(ids.shape[0])
    is_new = (first_pos == arange) & (arange >= n0)
    rank = np.cumsum(is_new) - 1
    local = np.where(first_pos < n0, first_pos, n0 + rank[first_pos])
    return np.nonzero(is_new[n0:])[0].astype(np.int64), local[n0:].astype(np.int64)


def gather_rows(table: np.ndarray, rows: np.ndarray) -> np.ndarray:
    """``table[rows]`` for a 1-D or 2-D (possibly memory-mapped) table; rows are validated by the caller."""
    return np.take(table, np.asarray(rows, dtype=np.int64), axis=0)


__all__ = ["sample_hop", "unique_relabel", "gather_rows"]
