"""Host-side row kernels for node tables (Numba, parallel, GIL-free): writing gathered rows straight
into their place in a batch's feature matrix (also the CPU backend's 2-D row gather), looking
rows up in a hashed-ID cache, and finding the distinct IDs of a batch that such a cache lacks.

These serve the host copies of node tables (memory-mapped partitions, the remote-feature cache)
whatever the sampling backend is, so they are not part of the backend contract of
:mod:`graphtrain.kernels`. Every loop iteration writes only its own output row (no races).
"""
from __future__ import annotations

import numpy as np
from numba import njit, prange

from graphtrain.kernels.hop_graph import read_only
from graphtrain.kernels.prefetch import AHEAD_ROWS, prefetch, prefetch_row, row_prefetch_args
from graphtrain.kernels.rng import mix64


_BLOCK = 1024  # rows per parallel work item of _scatter_rows


@njit(cache=True, parallel=True, nogil=True)
def _scatter_rows(table, rows, out, positions, flat, width):
    """Rows copied in order within blocks, each prefetched ``AHEAD_ROWS`` ahead (see
    :mod:`graphtrain.kernels.prefetch`)."""
    n = rows.shape[0]
    for blk in prange((n + _BLOCK - 1) // _BLOCK):
        stop = min(n, (blk + 1) * _BLOCK)
        for i in range(blk * _BLOCK, stop):
            if i + AHEAD_ROWS < stop:
                prefetch_row(flat, rows[i + AHEAD_ROWS], width)
            out[positions[i], :] = table[rows[i], :]


def scatter_rows(table: np.ndarray, rows: np.ndarray, out: np.ndarray, positions: np.ndarray) -> None:
    """``out[positions[i]] = table[rows[i]]`` for 2-D ``table`` / ``out`` of the same width and dtype.

    Args:
        table: ``[n, F]`` rows (possibly memory-mapped). rows: int64 ``[m]`` rows of ``table``
        (validated by the caller). out: ``[N, F]`` destination. positions: int64 ``[m]`` distinct
        rows of ``out``.
    """
    # read-only, mapped or not: one Numba signature, compiled and cached once for local partitions,
    # received rows and the feature cache alike
    table = read_only(table)
    _scatter_rows(table, np.ascontiguousarray(rows, dtype=np.int64), out,
                  np.ascontiguousarray(positions, dtype=np.int64), *row_prefetch_args(table))


@njit(cache=True, nogil=True)
def _build_index(ids, keys, rows):
    mask = np.uint64(keys.shape[0] - 1)
    for r in range(ids.shape[0]):
        slot = mix64(np.uint64(ids[r])) & mask
        while keys[slot] >= 0:
            slot = (slot + np.uint64(1)) & mask
        keys[slot] = ids[r]
        rows[slot] = r


class IdIndex:
    """Row of each of a set of distinct node IDs (``>= 0``), by open-addressing hash (one or two
    probes per lookup, where a binary search over a large sorted array misses the cache at every
    level). Memory: 12 bytes x a power of two >= 2 x the number of IDs.

    Args:
        ids: int64 ``[c]`` distinct IDs; ``ids[r]`` is row ``r``.
    """

    def __init__(self, ids: np.ndarray):
        ids = np.ascontiguousarray(ids, dtype=np.int64)
        cap = 16
        while cap < 2 * ids.shape[0]:
            cap <<= 1
        self.keys = np.full(cap, -1, dtype=np.int64)
        self.rows = np.zeros(cap, dtype=np.int32 if ids.shape[0] < 2**31 else np.int64)
        _build_index(ids, self.keys, self.rows)
        self.size = int(ids.shape[0])

    def lookup(self, ids: np.ndarray) -> np.ndarray:
        """int64 ``[n]``: the row of each of ``ids`` (int64 ``[n]``), -1 for an ID not in the index."""
        out = np.empty(np.shape(ids)[0], dtype=np.int64)
        _lookup(self.keys, self.rows, np.ascontiguousarray(ids, dtype=np.int64), out)
        return out


@njit(cache=True, nogil=True, inline="always")
def _slot_of(keys, mask, node):
    """The slot holding ``node`` in an :class:`IdIndex` table, or -1."""
    slot = mix64(np.uint64(node)) & mask
    while keys[slot] >= 0:
        if keys[slot] == node:
            return np.int64(slot)
        slot = (slot + np.uint64(1)) & mask
    return np.int64(-1)


@njit(cache=True, nogil=True, inline="always")
def _prefetch_slot(keys, mask, node):
    prefetch(keys, np.int64(mix64(np.uint64(node)) & mask))


@njit(cache=True, parallel=True, nogil=True)
def _lookup(keys, index_rows, ids, out):
    """Probes in blocks, each ID's first slot prefetched ``AHEAD_ROWS`` IDs ahead (a large index's
    slots miss the cache)."""
    mask = np.uint64(keys.shape[0] - 1)
    n = ids.shape[0]
    for blk in prange((n + _BLOCK - 1) // _BLOCK):
        stop = min(n, (blk + 1) * _BLOCK)
        for i in range(blk * _BLOCK, stop):
            if i + AHEAD_ROWS < stop:
                _prefetch_slot(keys, mask, ids[i + AHEAD_ROWS])
            slot = _slot_of(keys, mask, ids[i])
            out[i] = index_rows[slot] if slot >= 0 else -1


def copy_cached_rows(ids: np.ndarray, positions: np.ndarray, index: IdIndex, cache_rows: np.ndarray,
                     out: np.ndarray) -> np.ndarray:
    """For each ``i`` in ``positions``: if ``ids[i]`` is in the cache, ``out[i] = `` its cached row.

    Args:
        ids: int64 ``[N]`` node IDs. positions: int64 ``[m]`` entries of ``ids`` to look up.
        index: :class:`IdIndex` of the cached IDs. cache_rows: ``[c, F]`` their rows, in the
        order the index was built from. out: ``[N, F]`` destination.

    Returns:
        bool ``[m]``: which of ``positions`` were found (and written).
    """
    positions = np.asarray(positions, dtype=np.int64)
    rows = index.lookup(np.asarray(ids, dtype=np.int64)[positions])  # all probes first, slots prefetched ahead
    hit = rows >= 0
    scatter_rows(cache_rows, rows[hit], out, positions[hit])  # then the copies, rows prefetched ahead
    return hit


@njit(cache=True, nogil=True)
def _append_absent(ids, lo, hi, inside, keys, out, m):
    """Append to ``out[m:]`` each of ``ids`` that lies inside ``[lo, hi)`` (``inside``) or outside
    it (not ``inside``) and is not a key of the :class:`IdIndex` table ``keys`` (an empty table:
    no index); repeats kept. Returns the new ``m``. Probes are prefetched ``AHEAD_ROWS`` ahead."""
    use_index = keys.shape[0] > 0
    mask = np.uint64(keys.shape[0] - 1) if use_index else np.uint64(0)
    n = ids.shape[0]
    for i in range(n):
        if use_index and i + AHEAD_ROWS < n:
            _prefetch_slot(keys, mask, ids[i + AHEAD_ROWS])
        v = ids[i]
        if (lo <= v < hi) != inside:
            continue
        if use_index and _slot_of(keys, mask, v) >= 0:
            continue
        out[m] = v
        m += 1
    return m


@njit(cache=True, nogil=True)
def _sort_distinct(buf, m):
    """Sort ``buf[:m]`` in place and move its distinct values to the front; returns their count."""
    part = buf[:m]
    part.sort()
    k = 0
    for i in range(m):
        if i == 0 or part[i] != part[k - 1]:
            part[k] = part[i]
            k += 1
    return k


_NO_KEYS = np.zeros(0, dtype=np.int64)


def distinct_absent(arrays, lo: int, hi: int, inside: bool, index: "IdIndex | None") -> np.ndarray:
    """Sorted distinct IDs among ``arrays`` (int64 1-D arrays) that lie inside ``[lo, hi)`` (or,
    with ``inside=False``, outside it) and that ``index`` lacks (None: no index).

    The same set as ``np.unique`` of the filtered, concatenated IDs less the indexed ones, in one
    pass that probes the index first and sorts only what it lacks (on the data plane most remote
    IDs are in the feature cache, so the sort is of a few hundred IDs instead of thousands).
    """
    arrays = [np.ascontiguousarray(a, dtype=np.int64) for a in arrays]
    keys = index.keys if index is not None and index.size else _NO_KEYS
    out = np.empty(sum(a.shape[0] for a in arrays), dtype=np.int64)
    m = 0
    for a in arrays:
        m = _append_absent(a, np.int64(lo), np.int64(hi), bool(inside), keys, out, m)
    return out[: _sort_distinct(out, m)]
