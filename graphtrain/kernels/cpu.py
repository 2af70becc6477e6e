"""Numba CPU kernels (``njit(parallel=True)``): one-hop sampling, unique + relabel, row gather.

Same signatures and bit-identical results as :mod:`graphtrain.kernels.reference`. Every parallel
loop writes only to the slots of its own iteration (entry ``i`` owns ``slots[i*k : (i+1)*k]``;
hash shard ``s`` owns the candidates whose hash falls in ``s``), so there are no races and no locks,
and results do not depend on the number of threads (draws are keyed by the entry, not the thread).
All kernels release the GIL (``nogil``), so a loader thread samples while the main thread trains.

Also here: :func:`sample_batch`, every hop of a mini-batch in one serial kernel call, which
``NodeLoader(sampling_threads=T)`` runs on ``T`` threads at once (see its docstring). The module is
a little over 400 lines because that kernel reuses the hop kernels' inlined helpers defined here.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import List, Optional, Tuple, Union

import numba
import numpy as np
from numba import njit, prange

from graphtrain.kernels import rng
from graphtrain.kernels.hop_body import make_hop_functions
from graphtrain.kernels.hop_graph import HopGraph, bounds_for, read_only, stored_bounds_nb
from graphtrain.kernels.prefetch import prefetch
from graphtrain.kernels.rows import scatter_rows

_sample_entry = make_hop_functions(
    njit(cache=True, nogil=True, inline="always"), {"rand_below": rng.rand_below, "rand_unit": rng.rand_unit}
)["sample_entry"]
_mix64 = rng.mix64
_combine = rng.combine


_NO_I64 = np.empty(0, dtype=np.int64)
# the graph arrays a kernel call does not use (read-only, as the graph's own)
_NO_WEIGHT = read_only(np.empty(0, dtype=np.float64))
_NO_POSITIVE = read_only(np.empty(0, dtype=np.int32))
_NO_TIME = read_only(np.empty(0, dtype=np.int64))


_AHEAD = 16  # entries ahead whose indptr is prefetched; half as far ahead, the segment's first sources
_LAG = 4  # entries between drawing an entry's edges (and prefetching their sources) and reading them
_BLOCK = 256  # frontier entries per parallel work item of _sample_slots


@njit(cache=True, nogil=True, inline="always")
def _read_sources(src, slots, counts, nbr_slots, i, k):
    base = i * k
    for j in range(counts[i]):
        nbr_slots[base + j] = src[slots[base + j]]


@njit(cache=True, nogil=True, inline="always")
def _sample_range(indptr, src, weight, cum_weight, cum_positive, time, local_dst, keys, bounds, k, replace, use_weight,
                  temporal, time_sorted, strict, recent, slots, nbr_slots, counts, start, stop):
    """Sample entries ``[start, stop)`` in order: positions to ``slots``, sources to ``nbr_slots``.

    Entries are independent dependency chains (indptr -> segment -> sources), so the loads are
    started early: an entry's ``indptr`` ``_AHEAD`` entries ahead, its segment's first sources half
    as far ahead, and the sources of its drawn edges right after drawing them -- they are read
    ``_LAG`` entries later. Only entries of the range are touched (one range per thread).
    """
    for i in range(start, stop):
        if i + _AHEAD < stop:
            prefetch(indptr, local_dst[i + _AHEAD])
        if i + _AHEAD // 2 < stop:
            ahead = indptr[local_dst[i + _AHEAD // 2]]
            if ahead < src.shape[0]:
                prefetch(src, ahead)
        bound = bounds[i] if temporal else np.int64(0)
        base = i * k
        c = _sample_entry(indptr, weight, cum_weight, cum_positive, time, local_dst[i], keys[i], bound, k, replace,
                          use_weight, temporal, time_sorted, strict, recent, slots, base)
        counts[i] = c
        for j in range(c):
            prefetch(src, slots[base + j])
        if i - _LAG >= start:
            _read_sources(src, slots, counts, nbr_slots, i - _LAG, k)
    for i in range(max(start, stop - _LAG), stop):
        _read_sources(src, slots, counts, nbr_slots, i, k)


@njit(cache=True, parallel=True, nogil=True)
def _sample_slots(indptr, src, weight, cum_weight, cum_positive, time, local_dst, keys, bounds, k, replace, use_weight, temporal, time_sorted, strict, recent, slots, nbr_slots, counts):
    n = local_dst.shape[0]
    for blk in prange((n + _BLOCK - 1) // _BLOCK):
        _sample_range(indptr, src, weight, cum_weight, cum_positive, time, local_dst, keys, bounds, k, replace, use_weight,
                      temporal, time_sorted, strict, recent, slots, nbr_slots, counts, blk * _BLOCK, min(n, (blk + 1) * _BLOCK))


@njit(cache=True, parallel=True, nogil=True)
def _compact(edge_start, slots, nbr_slots, counts, offsets, k, nbr, eid):
    for i in prange(counts.shape[0]):
        o = offsets[i]
        base = i * k
        for j in range(counts[i]):
            nbr[o + j] = nbr_slots[base + j]
            eid[o + j] = edge_start + slots[base + j]


def prepare(graph: HopGraph) -> HopGraph:
    """The graph as this backend reads it (host arrays, unchanged)."""
    return graph


def _graph_arrays(graph: HopGraph, use_weight: bool, temporal: bool) -> Tuple[np.ndarray, ...]:
    """``(indptr, src, weight, cum_weight, cum_positive, time)`` as the sampling kernels take them:
    read-only, empty where unused."""
    if use_weight and not (temporal and not graph.time_sorted) and graph.cum_weight is None:
        raise ValueError("weighted sampling needs the graph's weight prefix sums: pass it through hop_graph.with_weight_prefix")
    return (read_only(graph.indptr), read_only(graph.src),
            read_only(graph.weight) if use_weight else _NO_WEIGHT,
            read_only(graph.cum_weight) if use_weight and graph.cum_weight is not None else _NO_WEIGHT,
            read_only(graph.cum_positive) if use_weight and graph.cum_positive is not None else _NO_POSITIVE,
            read_only(graph.time) if temporal else _NO_TIME)


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
    """One hop of in-neighbour sampling; see :func:`graphtrain.kernels.reference.sample_hop`."""
    local_dst = np.ascontiguousarray(local_dst, dtype=np.int64)
    keys = np.ascontiguousarray(keys, dtype=np.uint64)
    n = local_dst.shape[0]
    k = int(fanout)
    temporal = time_bound is not None
    bounds = bounds_for(graph, time_bound) if temporal else _NO_I64
    slots = np.empty(n * k, dtype=np.int64)
    nbr_slots = np.empty(n * k, dtype=np.int64)
    counts = np.empty(n, dtype=np.int64)
    _sample_slots(*_graph_arrays(graph, use_weight, temporal), local_dst, keys, bounds, k, bool(replace), bool(use_weight), temporal,
                  bool(graph.time_sorted), bool(strict), bool(recent), slots, nbr_slots, counts)
    offsets = np.zeros(n + 1, dtype=np.int64)
    np.cumsum(counts, out=offsets[1:])
    total = int(offsets[-1])
    nbr = np.empty(total, dtype=np.int64)
    eid = np.empty(total, dtype=np.int64)
    _compact(np.int64(graph.edge_start), slots, nbr_slots, counts, offsets, k, nbr, eid)
    return counts, nbr, eid


# -- unique + relabel ---------------------------------------------------------------------------------
@njit(cache=True, parallel=True, nogil=True)
def _first_occurrence(ids, times, use_time, num_shards, first):
    """``first[i]`` = smallest ``p`` with the same node as ``i`` (``ids`` and, if ``use_time``, ``times``).

    Shard ``s`` (chosen by the high hash bits) owns an open-addressing table of the nodes hashing
    into it and visits its nodes in index order, so the first visitor of a node is its first
    occurrence whatever the number of shards. Table slots hold int32 positions (``ids`` has fewer
    than 2**31 entries), so a hop's table stays in the core's L2 cache.
    """
    total = ids.shape[0]
    hashes = np.empty(total, dtype=np.uint64)
    shard = np.empty(total, dtype=np.uint8)
    for i in prange(total):
        h = _mix64(np.uint64(ids[i]))
        if use_time:
            h = _combine(h, np.uint64(times[i]))
        hashes[i] = h
        shard[i] = np.uint8((h >> np.uint64(56)) % np.uint64(num_shards))
    for s in prange(num_shards):
        cnt = 0
        if num_shards == 1:
            cnt = total
        else:
            for i in range(total):
                if shard[i] == s:
                    cnt += 1
        cap = 16
        while cap < 2 * cnt:
            cap <<= 1
        mask = np.uint64(cap - 1)
        table = np.full(cap, -1, dtype=np.int32)
        for i in range(total):
            if num_shards > 1 and shard[i] != s:
                continue
            node = ids[i]
            slot = hashes[i] & mask
            while True:
                p = table[slot]
                if p < 0:
                    table[slot] = i
                    first[i] = i
                    break
                if ids[p] == node and (not use_time or times[p] == times[i]):
                    first[i] = p
                    break
                slot = (slot + np.uint64(1)) & mask


@njit(cache=True, parallel=True, nogil=True)
def _number_new(first, n0, num_blocks, local, new_index_buf):
    """Rank first occurrences past ``n0`` in index order (blocked parallel scan); fill ``local``."""
    m = first.shape[0] - n0
    block = (m + num_blocks - 1) // num_blocks
    block_new = np.zeros(num_blocks + 1, dtype=np.int64)
    for b in prange(num_blocks):
        c = 0
        for i in range(b * block, min(m, (b + 1) * block)):
            if first[n0 + i] == n0 + i:
                c += 1
        block_new[b + 1] = c
    for b in range(num_blocks):
        block_new[b + 1] += block_new[b]
    rank = np.empty(m, dtype=np.int64)
    for b in prange(num_blocks):
        r = block_new[b]
        for i in range(b * block, min(m, (b + 1) * block)):
            if first[n0 + i] == n0 + i:
                rank[i] = r
                new_index_buf[r] = i
                r += 1
    for i in prange(m):
        f = first[n0 + i]
        local[i] = f if f < n0 else n0 + rank[f - n0]
    return block_new[num_blocks]


def unique_relabel(
    prev_ids: np.ndarray,
    cand_ids: np.ndarray,
    prev_times: Optional[np.ndarray] = None,
    cand_times: Optional[np.ndarray] = None,
) -> Tuple[np.ndarray, np.ndarray]:
    """Relabel candidates against a batch's nodes; see :func:`graphtrain.kernels.reference.unique_relabel`."""
    n0 = prev_ids.shape[0]
    ids = np.concatenate([prev_ids, cand_ids]).astype(np.int64, copy=False)
    use_time = prev_times is not None
    times = np.concatenate([prev_times, cand_times]).astype(np.int64, copy=False) if use_time else _NO_I64
    if ids.shape[0] >= 2**31:  # table slots are int32 positions
        raise ValueError(f"unique_relabel handles fewer than 2**31 nodes per call, got {ids.shape[0]}")
    threads = min(numba.get_num_threads(), 255)  # shard IDs are uint8
    first = np.empty(ids.shape[0], dtype=np.int64)
    _first_occurrence(ids, times, use_time, threads, first)
    m = cand_ids.shape[0]
    local = np.empty(m, dtype=np.int64)
    new_index = np.empty(m, dtype=np.int64)
    num_new = _number_new(first, n0, max(1, min(4 * threads, m)), local, new_index)
    return new_index[:num_new], local


# -- a whole mini-batch in one serial call ------------------------------------------------------------
@njit(cache=True, nogil=True)
def _grow(a, need):
    """``a`` if it holds ``need`` entries, else a copy with room for at least ``need`` (doubling)."""
    if need <= a.shape[0]:
        return a
    b = np.empty(max(need, 2 * a.shape[0]), dtype=a.dtype)
    b[: a.shape[0]] = a
    return b


@njit(cache=True, nogil=True)
def _first_of(table, mask, ids, times, p, h):
    """Open addressing: the first position holding the node at ``p`` (``ids`` and, unless ``times``
    is None, ``times``), or ``p`` itself, stored, when it is the first."""
    slot = h & mask
    while True:
        q = table[slot]
        if q < 0:
            table[slot] = p
            return p
        if ids[q] == ids[p]:
            if times is None:
                return q
            if times[q] == times[p]:
                return q
        slot = (slot + np.uint64(1)) & mask


@njit(cache=True, nogil=True)
def _sample_batch(indptr, src, weight, cum_weight, cum_positive, time, time_base, has_base, node_start, node_stop,
                  edge_start, seeds, seed_time, fanouts, batch_key, replace, use_weight, time_sorted, strict, recent,
                  hop_nodes, hop_edges, bad):
    # ``seed_time is None`` is resolved when Numba compiles (non-temporal batches get code without times)
    temporal = seed_time is not None
    n = seeds.shape[0]
    ids = np.empty(max(16, 4 * n), dtype=np.int64)
    ids[:n] = seeds
    times = np.empty(ids.shape[0] if temporal else 0, dtype=np.int64)
    if seed_time is not None:
        times[:n] = seed_time
    e_src = np.empty(16, dtype=np.int64)
    e_dst = np.empty(16, dtype=np.int64)
    e_id = np.empty(16, dtype=np.int64)
    ne = 0
    lo = 0
    hop_nodes[0] = n
    for hop in range(fanouts.shape[0]):
        k = fanouts[hop]
        hop_key = _combine(batch_key, np.uint64(hop))
        m = n - lo
        local_dst = np.empty(m, dtype=np.int64)
        keys = np.empty(m, dtype=np.uint64)
        for i in range(m):  # in range (checked before any load), and the stream keys of NeighborSampler's formula
            g = ids[lo + i]
            if g < node_start or g >= node_stop:
                bad[0] = g
                return ids[:0], times[:0], e_src[:0], e_dst[:0], e_id[:0]
            local_dst[i] = g - node_start
            key = _combine(hop_key, np.uint64(g))
            if seed_time is not None:
                key = _combine(key, np.uint64(times[lo + i]))
            keys[i] = key
        slots = np.empty(m * k, dtype=np.int64)
        nbr_slots = np.empty(m * k, dtype=np.int64)
        counts = np.empty(m, dtype=np.int64)
        # bounds compared in the time column's stored domain; ``times`` keep the original values (keys, dedup)
        hop_bounds = stored_bounds_nb(times[lo:n], time_base, has_base)
        _sample_range(indptr, src, weight, cum_weight, cum_positive, time, local_dst, keys, hop_bounds, k, replace,
                      use_weight, temporal, time_sorted, strict, recent, slots, nbr_slots, counts, 0, m)
        total = 0
        for i in range(m):
            total += counts[i]
        ids = _grow(ids, n + total)
        if seed_time is not None:
            times = _grow(times, n + total)
        e_src = _grow(e_src, ne + total)
        e_dst = _grow(e_dst, ne + total)
        e_id = _grow(e_id, ne + total)
        q = n  # candidates appended after the batch's nodes, entry after entry (as unique_relabel sees them)
        for i in range(m):
            for j in range(counts[i]):
                ids[q] = nbr_slots[i * k + j]
                if seed_time is not None:
                    times[q] = times[lo + i]
                e_dst[ne + q - n] = lo + i
                e_id[ne + q - n] = edge_start + slots[i * k + j]
                q += 1
        # first occurrence of every node among [batch nodes, candidates], then new nodes numbered in order
        cap = 16
        while cap < 2 * (n + total):
            cap <<= 1
        mask = np.uint64(cap - 1)
        table = np.full(cap, -1, dtype=np.int32)
        first = np.empty(total, dtype=np.int64)
        for p in range(n + total):
            h = _mix64(np.uint64(ids[p]))
            if seed_time is not None:
                h = _combine(h, np.uint64(times[p]))
                f = _first_of(table, mask, ids, times, p, h)
            else:
                f = _first_of(table, mask, ids, None, p, h)
            if p >= n:
                first[p - n] = f
        new = n
        for c in range(total):
            f = first[c]
            if f == n + c:  # a new node (moved down to its number; later repeats find it through first[])
                ids[new] = ids[f]
                if seed_time is not None:
                    times[new] = times[f]
                first[c] = new
                e_src[ne + c] = new
                new += 1
            elif f < n:
                e_src[ne + c] = f
            else:
                e_src[ne + c] = first[f - n]
        ne += total
        hop_nodes[hop + 1] = new - n
        hop_edges[hop] = total
        lo = n
        n = new
    return ids[:n], times[:n], e_src[:ne], e_dst[:ne], e_id[:ne]


@dataclass(frozen=True)
class SampledBatch:
    """A mini-batch's arrays from :func:`sample_batch` (the fields of
    :class:`~graphtrain.sampling.minibatch.MiniBatch` of the same names; ``edge_index`` is
    ``[edge_src, edge_dst]``)."""

    n_id: np.ndarray
    node_time: Optional[np.ndarray]
    edge_src: np.ndarray
    edge_dst: np.ndarray
    e_id: np.ndarray
    num_sampled_nodes: List[int]
    num_sampled_edges: List[int]


def sample_batch(
    graph: HopGraph,
    node_start: int,
    node_stop: int,
    seeds: np.ndarray,
    seed_time: Optional[np.ndarray],
    fanouts: np.ndarray,
    batch_key: np.uint64,
    replace: bool = False,
    use_weight: bool = False,
    strict: bool = False,
    recent: bool = False,
) -> Union[SampledBatch, int]:
    """A whole multi-hop mini-batch in one serial, GIL-free call (for batch-parallel sampling).

    Returns exactly what :class:`~graphtrain.sampling.neighbor.NeighborSampler` assembles from
    per-hop :func:`sample_hop` and :func:`unique_relabel` calls with the same ``batch_key``, as a
    :class:`SampledBatch` (``node_time`` None unless temporal), or ``bad_node`` (an int) when a frontier node lies outside ``[node_start, node_stop)`` (the
    caller raises). ``graph`` holds the in-edges of global nodes ``[node_start, node_stop)``.
    """
    temporal = seed_time is not None
    arrays = _graph_arrays(graph, use_weight, temporal)
    hops = fanouts.shape[0]
    hop_nodes = np.zeros(hops + 1, dtype=np.int64)
    hop_edges = np.zeros(hops, dtype=np.int64)
    bad = np.full(1, -1, dtype=np.int64)
    ids, times, e_src, e_dst, e_id = _sample_batch(
        *arrays, np.int64(graph.time_base or 0), graph.time_base is not None,
        np.int64(node_start), np.int64(node_stop), np.int64(graph.edge_start),
        np.ascontiguousarray(seeds, dtype=np.int64),
        np.ascontiguousarray(seed_time, dtype=np.int64) if temporal else None,
        np.ascontiguousarray(fanouts, dtype=np.int64), np.uint64(batch_key), bool(replace), bool(use_weight),
        bool(graph.time_sorted), bool(strict), bool(recent), hop_nodes, hop_edges, bad)
    if bad[0] >= 0:
        return int(bad[0])
    return SampledBatch(ids, times if temporal else None, e_src, e_dst, e_id, hop_nodes.tolist(), hop_edges.tolist())


# -- gather -----------------------------------------------------------------------------------------
@njit(cache=True, parallel=True, nogil=True)
def _gather_1d(table, rows, out):
    for i in prange(rows.shape[0]):
        out[i] = table[rows[i]]


def gather_rows(table: np.ndarray, rows: np.ndarray) -> np.ndarray:
    """``table[rows]`` for a 1-D or 2-D (possibly memory-mapped) table, in parallel; rows validated by the
    caller. float16 rows (which Numba cannot type) are copied as their bytes."""
    if table.dtype == np.float16:
        return gather_rows(table.view(np.uint16), rows).view(np.float16)
    rows = np.ascontiguousarray(rows, dtype=np.int64)
    out = np.empty((rows.shape[0],) + table.shape[1:], dtype=table.dtype)
    if table.ndim == 1:
        _gather_1d(table, rows, out)
    elif table.ndim == 2:
        scatter_rows(table, rows, out, np.arange(rows.shape[0], dtype=np.int64))  # rows prefetched ahead
    else:
        return np.take(table, rows, axis=0)
    return out
