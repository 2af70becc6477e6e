"""Numba CPU kernels (``njit(parallel=True)``): one-hop sampling, unique + relabel, row gather.

Same signatures and bit-identical results as :mod:`graphtrain.kernels.reference`. Every parallel
loop writes only to the slots of its own iteration (entry ``i`` owns ``slots[i*k : (i+1)*k]``;
hash shard ``s`` owns the candidates whose hash falls in ``s``), so there are no races and no locks,
and results do not depend on the number of threads (draws are keyed by the entry, not the thread).
All kernels release the GIL (``nogil``), so a loader thread samples while the main thread trains.
"""
from __future__ import annotations

from typing import Optional, Tuple

import numba
import numpy as np
from numba import njit, prange

from graphtrain.kernels import rng
from graphtrain.kernels.hop_body import make_hop_functions
from graphtrain.kernels.hop_graph import HopGraph

_sample_entry = make_hop_functions(
    njit(cache=True, nogil=True, inline="always"), {"rand_below": rng.rand_below, "rand_unit": rng.rand_unit}
)["sample_entry"]
_mix64 = rng.mix64
_combine = rng.combine

_NO_F64 = np.empty(0, dtype=np.float64)
_NO_I64 = np.empty(0, dtype=np.int64)


@njit(cache=True, parallel=True, nogil=True)
def _sample_slots(indptr, src, weight, time, local_dst, keys, bounds, k, replace, use_weight, temporal, time_sorted, strict, recent, slots, nbr_slots, counts):
    for i in prange(local_dst.shape[0]):
        bound = bounds[i] if temporal else np.int64(0)
        base = i * k
        c = _sample_entry(
            indptr, weight, time, local_dst[i], keys[i], bound, k, replace, use_weight, temporal, time_sorted, strict, recent, slots, base
        )
        counts[i] = c
        for j in range(c):  # read sources while the segment is in cache
            nbr_slots[base + j] = src[slots[base + j]]


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
    bounds = np.ascontiguousarray(time_bound, dtype=np.int64) if temporal else _NO_I64
    weight = graph.weight if use_weight else _NO_F64
    time = graph.time if temporal else _NO_I64
    slots = np.empty(n * k, dtype=np.int64)
    nbr_slots = np.empty(n * k, dtype=np.int64)
    counts = np.empty(n, dtype=np.int64)
    _sample_slots(graph.indptr, graph.src, weight, time, local_dst, keys, bounds, k, bool(replace), bool(use_weight), temporal,
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


# -- gather -----------------------------------------------------------------------------------------
@njit(cache=True, parallel=True, nogil=True)
def _gather_2d(table, rows, out):
    for i in prange(rows.shape[0]):
        out[i, :] = table[rows[i], :]


@njit(cache=True, parallel=True, nogil=True)
def _gather_1d(table, rows, out):
    for i in prange(rows.shape[0]):
        out[i] = table[rows[i]]


def gather_rows(table: np.ndarray, rows: np.ndarray) -> np.ndarray:
    """``table[rows]`` for a 1-D or 2-D (possibly memory-mapped) table, in parallel; rows validated by the caller."""
    rows = np.ascontiguousarray(rows, dtype=np.int64)
    out = np.empty((rows.shape[0],) + table.shape[1:], dtype=table.dtype)
    if table.ndim == 1:
        _gather_1d(table, rows, out)
    elif table.ndim == 2:
        _gather_2d(table, rows, out)
    else:
        return np.take(table, rows, axis=0)
    return out
