"""Host-side CSR segment kernels for the data plane (Numba, GIL-free): putting a hop's answers,
which arrive grouped by owner worker, back into the order of the requests.

Like :mod:`graphtrain.kernels.rows`, these serve host arrays whatever the sampling backend is, so
they are not part of the backend contract of :mod:`graphtrain.kernels`.
"""
from __future__ import annotations

from typing import Tuple

import numpy as np
from numba import njit


@njit(cache=True, nogil=True)
def _reorder(order, counts_g, nbr_g, eid_g, counts, nbr, eid):
    n = order.shape[0]
    for k in range(n):
        counts[order[k]] = counts_g[k]
    out_start = np.empty(n, dtype=np.int64)
    acc = 0
    for i in range(n):
        out_start[i] = acc
        acc += counts[i]
    g = 0
    for k in range(n):
        o = out_start[order[k]]
        for j in range(counts_g[k]):
            nbr[o + j] = nbr_g[g + j]
            eid[o + j] = eid_g[g + j]
        g += counts_g[k]


def reorder_segments(order: np.ndarray, counts_g: np.ndarray, nbr_g: np.ndarray,
                     eid_g: np.ndarray) -> Tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Segments listed in grouped order -> request order.

    Args:
        order: int64 ``[n]``, a permutation: the segment at grouped position ``k`` belongs to
            request ``order[k]``.
        counts_g: int64 ``[n]`` segment lengths in grouped order; nbr_g, eid_g: int64
            ``[sum(counts_g)]`` the segments' values, concatenated in grouped order.

    Returns:
        ``(counts, nbr, eid)``: ``counts[order[k]] = counts_g[k]``, and the segments concatenated
        in request order.
    """
    order = np.ascontiguousarray(order, dtype=np.int64)
    counts_g = np.ascontiguousarray(counts_g, dtype=np.int64)
    nbr_g = np.ascontiguousarray(nbr_g, dtype=np.int64)
    eid_g = np.ascontiguousarray(eid_g, dtype=np.int64)
    if order.shape[0] != counts_g.shape[0] or nbr_g.shape[0] != eid_g.shape[0] or int(counts_g.sum()) != nbr_g.shape[0]:
        raise ValueError(f"{order.shape[0]} requests, {counts_g.shape[0]} segments of {int(counts_g.sum())} values, "
                         f"{nbr_g.shape[0]} sources and {eid_g.shape[0]} edge IDs")
    counts = np.empty_like(counts_g)
    nbr = np.empty_like(nbr_g)
    eid = np.empty_like(eid_g)
    _reorder(order, counts_g, nbr_g, eid_g, counts, nbr, eid)
    return counts, nbr, eid
