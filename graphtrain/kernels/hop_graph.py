"""The arrays of a CSC graph as the one-hop kernels see them (:class:`HopGraph`)."""
from __future__ import annotations

from typing import NamedTuple, Optional

import numpy as np
from numba import njit, prange


class HopGraph(NamedTuple):
    """In-edges of local destinations ``[0, num_nodes)``, CSC; what every backend's ``sample_hop`` reads.

    Attributes:
        indptr: int64 ``[num_nodes + 1]``; in-edges of local ``v`` are positions ``indptr[v]:indptr[v+1]``.
        src: int64 ``[num_edges]`` global source ID per position.
        edge_start: global edge ID of position 0 (edge IDs are contiguous).
        weight: float64 ``[num_edges]``, finite and >= 0, or None (uniform sampling only).
        time: int64 ``[num_edges]`` or None (no temporal sampling).
        time_sorted: ``time`` is non-decreasing within each destination's segment.
        cum_weight: float64 ``[num_edges]``: running sum of ``weight`` from the start of each
            destination's segment up to and including each position (see :func:`with_weight_prefix`).
        cum_positive: int32 ``[num_edges]``: likewise, the number of edges with weight > 0.

    The CUDA backend holds the same tuple with device arrays (:func:`graphtrain.kernels.cuda.to_device`).
    """

    indptr: np.ndarray
    src: np.ndarray
    edge_start: int
    weight: Optional[np.ndarray] = None
    time: Optional[np.ndarray] = None
    time_sorted: bool = False
    cum_weight: Optional[np.ndarray] = None
    cum_positive: Optional[np.ndarray] = None

    @property
    def num_nodes(self) -> int:
        return int(self.indptr.shape[0] - 1)


@njit(cache=True, parallel=True, nogil=True)
def _weight_prefix(indptr, weight, cum_weight, cum_positive):
    for v in prange(indptr.shape[0] - 1):
        acc = 0.0
        count = 0
        for p in range(indptr[v], indptr[v + 1]):
            acc += weight[p]
            if weight[p] > 0.0:
                count += 1
            cum_weight[p] = acc
            cum_positive[p] = count


def with_weight_prefix(graph: HopGraph) -> HopGraph:
    """``graph`` with per-segment running sums of its weights (computed once, on the host).

    Weighted draws then binary-search these sums instead of scanning a destination's in-edges:
    O(k log d + k^2) per entry instead of O(k d), which matters on power-law graphs where hubs have
    millions of in-edges. Sums run left to right within each segment, so every backend reads the
    same float64 values. Costs 12 bytes per edge.
    """
    if graph.weight is None:
        return graph
    if graph.indptr.shape[0] > 1 and int(np.max(np.diff(graph.indptr))) >= 2**31:
        raise ValueError("a destination with 2**31 or more in-edges is not supported by weighted sampling")
    cum_weight = np.empty(graph.weight.shape[0], dtype=np.float64)
    cum_positive = np.empty(graph.weight.shape[0], dtype=np.int32)
    _weight_prefix(np.asarray(graph.indptr, dtype=np.int64), np.asarray(graph.weight, dtype=np.float64), cum_weight, cum_positive)
    return graph._replace(cum_weight=cum_weight, cum_positive=cum_positive)
