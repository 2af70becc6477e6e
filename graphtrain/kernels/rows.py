"""Host-side row kernels for node tables (Numba, parallel, GIL-free): writing gathered rows straight
into their place in a batch's feature matrix, and looking rows up in a sorted-ID cache.

These serve the host copies of node tables (memory-mapped partitions, the remote-feature cache)
whatever the sampling backend is, so they are not part of the backend contract of
:mod:`graphtrain.kernels`. Every loop iteration writes only its own output row (no races).
"""
from __future__ import annotations

import numpy as np
from numba import njit, prange


@njit(cache=True, parallel=True, nogil=True)
def _scatter_rows(table, rows, out, positions):
    for i in prange(rows.shape[0]):
        out[positions[i], :] = table[rows[i], :]


def scatter_rows(table: np.ndarray, rows: np.ndarray, out: np.ndarray, positions: np.ndarray) -> None:
    """``out[positions[i]] = table[rows[i]]`` for 2-D ``table`` / ``out`` of the same width and dtype.

    Args:
        table: ``[n, F]`` rows (possibly memory-mapped). rows: int64 ``[m]`` rows of ``table``
        (validated by the caller). out: ``[N, F]`` destination. positions: int64 ``[m]`` distinct
        rows of ``out``.
    """
    _scatter_rows(table, np.ascontiguousarray(rows, dtype=np.int64), out,
                  np.ascontiguousarray(positions, dtype=np.int64))


@njit(cache=True, parallel=True, nogil=True)
def _copy_cached(ids, positions, cache_ids, cache_rows, out, hit):
    n = cache_ids.shape[0]
    for k in prange(positions.shape[0]):
        i = positions[k]
        node = ids[i]
        lo, hi = 0, n
        while lo < hi:  # first cache entry >= node
            mid = (lo + hi) >> 1
            if cache_ids[mid] < node:
                lo = mid + 1
            else:
                hi = mid
        if lo < n and cache_ids[lo] == node:
            out[i, :] = cache_rows[lo, :]
            hit[k] = True
        else:
            hit[k] = False


def copy_cached_rows(ids: np.ndarray, positions: np.ndarray, cache_ids: np.ndarray, cache_rows: np.ndarray,
                     out: np.ndarray) -> np.ndarray:
    """For each ``i`` in ``positions``: if ``ids[i]`` is in the cache, ``out[i] = `` its cached row.

    Args:
        ids: int64 ``[N]`` node IDs. positions: int64 ``[m]`` entries of ``ids`` to look up.
        cache_ids: sorted int64 ``[c]`` distinct IDs. cache_rows: ``[c, F]`` their rows.
        out: ``[N, F]`` destination.

    Returns:
        bool ``[m]``: which of ``positions`` were found (and written).
    """
    hit = np.empty(positions.shape[0], dtype=np.bool_)
    _copy_cached(np.ascontiguousarray(ids, dtype=np.int64), np.ascontiguousarray(positions, dtype=np.int64),
                 cache_ids, cache_rows, out, hit)
    return hit
