"""The arrays of a CSC graph as the one-hop kernels see them (:class:`HopGraph`)."""
from __future__ import annotations

from typing import NamedTuple, Optional

import numpy as np
from numba import njit, prange

from graphtrain.columns import stored_bounds

# columns.OFFSET_RANGE_LIMIT + 1, written out: Numba freezes it into cached kernels, and the cache is
# keyed by the modules with jitted code (graphtrain/_jit_cache.py), which columns.py is not
STORED_ABOVE = 2**31 - 1


class HopGraph(NamedTuple):
    """In-edges of local destinations ``[0, num_nodes)``, CSC; what every backend's ``sample_hop`` reads.

    Attributes:
        indptr: int32 or int64 ``[num_nodes + 1]``; in-edges of local ``v`` are positions ``indptr[v]:indptr[v+1]``.
        src: int32 or int64 ``[num_edges]`` global source ID per position.
        edge_start: global edge ID of position 0 (edge IDs are contiguous).
        weight: float64 or float32 ``[num_edges]``, finite and >= 0, or None (uniform sampling only).
        time: int32 or int64 ``[num_edges]`` in the column's stored domain, or None (no temporal sampling).
        time_sorted: ``time`` is non-decreasing within each destination's segment.
        cum_weight: float64 ``[num_edges]``: running sum of ``weight`` from the start of each
            destination's segment up to and including each position (see :func:`with_weight_prefix`).
        cum_positive: int32 ``[num_edges]``: likewise, the number of edges with weight > 0.
        time_base: ``time`` holds offsets ``value - time_base`` (:class:`graphtrain.columns.OffsetColumn`),
            or None when it holds the values themselves. Backends move time bounds into the stored
            domain with :func:`bounds_for`.

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
    time_base: Optional[int] = None

    @property
    def num_nodes(self) -> int:
        return int(self.indptr.shape[0] - 1)


def read_only(a: np.ndarray) -> np.ndarray:
    """``a`` as the kernels take it: read-only (a view, no copy, when ``a`` is writable). A read-only
    array is another Numba type than a writable one, so mapped partitions and in-memory arrays passed
    through here share one compiled signature (the sampling kernels take tens of seconds each)."""
    if not a.flags.writeable:
        return a
    v = a.view()
    v.flags.writeable = False
    return v


def bounds_for(graph: HopGraph, time_bound: np.ndarray) -> np.ndarray:
    """int64 time bounds (original domain) as ``graph.time`` stores them (exact; see
    :func:`graphtrain.columns.stored_bounds`)."""
    return stored_bounds(time_bound, graph.time_base)


@njit(cache=True, nogil=True)
def stored_bounds_nb(bounds, base, has_base):
    """:func:`graphtrain.columns.stored_bounds` inside a kernel (``has_base`` False: a copy)."""
    out = np.empty(bounds.shape[0], dtype=np.int64)
    for i in range(bounds.shape[0]):
        b = bounds[i]
        if not has_base:
            out[i] = b
        elif b < base:
            out[i] = -1
        elif b >= base + STORED_ABOVE:  # fits int64 (columns.offset_base); b - base might not
            out[i] = STORED_ABOVE
        else:
            out[i] = b - base
    return out


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
    _weight_prefix(graph.indptr, graph.weight, cum_weight, cum_positive)
    return graph._replace(cum_weight=cum_weight, cum_positive=cum_positive)
