"""``numba.cuda`` kernels with the same semantics (and results) as :mod:`graphtrain.kernels.cpu`.

- :func:`sample_hop`: one thread per frontier entry runs the shared per-entry body
  (:mod:`graphtrain.kernels.hop_body`, compiled as a device function) into fixed ``k``-wide slots;
  a second kernel compacts the slots into the CSR-style output.
- :func:`unique_relabel`: a global open-addressing table built with ``atomic.cas``; for every node
  the slot keeps the smallest index at which it occurs (``atomic.min``), so the first-occurrence
  numbering is the same as on the CPU whatever order threads run in.
- :func:`gather_rows`: one thread per output element.

Inputs may be host NumPy arrays or device arrays; outputs are host NumPy arrays (the sampler
assembles mini-batches on the host). The graph's arrays are copied to the device once with
:func:`to_device`. Exclusive scans of per-entry counts run on the host (a copy of ``n`` int64s).

Tests run these kernels on Numba's CUDA simulator (``NUMBA_ENABLE_CUDASIM=1``) when no GPU is
present; on a GPU the same tests run on the device.
"""
from __future__ import annotations

from typing import Optional, Tuple

import numpy as np
from numba import cuda

from graphtrain.kernels.hop_body import make_hop_functions
from graphtrain.kernels.hop_graph import HopGraph, bounds_for
from graphtrain.kernels.rng import make_rng_functions

_rng = make_rng_functions(cuda.jit(device=True))
_sample_entry = make_hop_functions(cuda.jit(device=True), _rng)["sample_entry"]
_mix64 = _rng["mix64"]
_combine = _rng["combine"]

THREADS = 128


def _blocks(n: int) -> int:
    return max(1, (n + THREADS - 1) // THREADS)


def _on_device(a) -> bool:
    """Whether ``a`` is a numba device array (``cuda.is_cuda_array`` is missing on the simulator)."""
    return hasattr(a, "copy_to_host")


def _dev(a, dtype):
    if _on_device(a):
        return a
    return cuda.to_device(np.ascontiguousarray(a, dtype=dtype))


def _index_dtype(a) -> np.dtype:
    """int32 stays int32 on the device (compact storage); anything else becomes int64."""
    return np.dtype(np.int32) if a is not None and a.dtype == np.int32 else np.dtype(np.int64)


def _float_dtype(a) -> np.dtype:
    return np.dtype(np.float32) if a is not None and a.dtype == np.float32 else np.dtype(np.float64)


def to_device(graph: HopGraph) -> HopGraph:
    """The graph's arrays copied to the GPU (missing columns become empty device arrays)."""
    return HopGraph(
        indptr=_dev(graph.indptr, _index_dtype(graph.indptr)),
        src=_dev(graph.src, _index_dtype(graph.src)),
        edge_start=int(graph.edge_start),
        weight=_dev(graph.weight if graph.weight is not None else np.empty(0), _float_dtype(graph.weight)),
        time=_dev(graph.time if graph.time is not None else np.empty(0, np.int64), _index_dtype(graph.time)),
        time_sorted=bool(graph.time_sorted),
        cum_weight=_dev(graph.cum_weight if graph.cum_weight is not None else np.empty(0), np.float64),
        cum_positive=_dev(graph.cum_positive if graph.cum_positive is not None else np.empty(0, np.int32), np.int32),
        time_base=graph.time_base,
    )


prepare = to_device


@cuda.jit
def _sample_slots(indptr, weight, cum_weight, cum_positive, time, local_dst, keys, bounds, k, replace, use_weight, temporal, time_sorted, strict, recent, slots, counts):
    i = cuda.grid(1)
    if i < local_dst.shape[0]:
        bound = bounds[i] if temporal else 0
        counts[i] = _sample_entry(
            indptr, weight, cum_weight, cum_positive, time, local_dst[i], keys[i], bound, k, replace, use_weight, temporal,
            time_sorted, strict, recent, slots, i * k
        )


@cuda.jit
def _compact(src, edge_start, slots, counts, offsets, k, nbr, eid):
    i = cuda.grid(1)
    if i < counts.shape[0]:
        o = offsets[i]
        for j in range(counts[i]):
            p = slots[i * k + j]
            nbr[o + j] = src[p]
            eid[o + j] = edge_start + p


def sample_hop(
    graph: HopGraph,
    local_dst,
    keys,
    fanout: int,
    replace: bool = False,
    use_weight: bool = False,
    time_bound=None,
    strict: bool = False,
    recent: bool = False,
) -> Tuple[np.ndarray, np.ndarray, np.ndarray]:
    """One hop of in-neighbour sampling on the GPU; see :func:`graphtrain.kernels.reference.sample_hop`.

    ``graph`` should come from :func:`to_device` (host arrays are copied on every call otherwise).
    """
    if use_weight and not (time_bound is not None and not graph.time_sorted) and graph.cum_weight is None:
        raise ValueError("weighted sampling needs the graph's weight prefix sums: pass it through hop_graph.with_weight_prefix")
    g = graph if _on_device(graph.indptr) else to_device(graph)
    d_dst = _dev(local_dst, np.int64)
    d_keys = _dev(keys, np.uint64)
    n = d_dst.shape[0]
    k = int(fanout)
    temporal = time_bound is not None
    d_bounds = _dev(bounds_for(graph, time_bound) if temporal else np.zeros(1, np.int64), np.int64)
    slots = cuda.device_array(max(1, n * k), dtype=np.int64)
    d_counts = cuda.device_array(max(1, n), dtype=np.int64)
    if n:
        _sample_slots[_blocks(n), THREADS](g.indptr, g.weight, g.cum_weight, g.cum_positive, g.time, d_dst, d_keys, d_bounds, k, bool(replace),
                                           bool(use_weight), temporal, bool(g.time_sorted), bool(strict), bool(recent), slots, d_counts)
    counts = d_counts.copy_to_host()[:n]
    offsets = np.zeros(n + 1, dtype=np.int64)
    np.cumsum(counts, out=offsets[1:])
    total = int(offsets[-1])
    d_nbr = cuda.device_array(max(1, total), dtype=np.int64)
    d_eid = cuda.device_array(max(1, total), dtype=np.int64)
    if total:
        _compact[_blocks(n), THREADS](g.src, np.int64(g.edge_start), slots, d_counts, cuda.to_device(offsets), k, d_nbr, d_eid)
    return counts, d_nbr.copy_to_host()[:total], d_eid.copy_to_host()[:total]


# -- unique + relabel -----------------------------------------------------------------------------
@cuda.jit(device=True)
def _node_hash(ids, times, use_time, i):
    """Hash of node ``i``: its global ID, combined with its time bound in temporal mode."""
    h = _mix64(np.uint64(ids[i]))
    if use_time:
        h = _combine(h, np.uint64(times[i]))
    return h


@cuda.jit
def _insert_first(ids, times, use_time, slot_idx, mask):
    i = cuda.grid(1)
    if i < ids.shape[0]:
        slot = _node_hash(ids, times, use_time, i) & mask
        me = np.int64(i)
        while True:
            old = cuda.atomic.cas(slot_idx, slot, np.int64(-1), me)
            if old == -1:
                break
            if ids[old] == ids[i] and (not use_time or times[old] == times[i]):
                cuda.atomic.min(slot_idx, slot, me)
                break
            slot = (slot + np.uint64(1)) & mask


@cuda.jit
def _lookup_first(ids, times, use_time, slot_idx, mask, first):
    i = cuda.grid(1)
    if i < ids.shape[0]:
        slot = _node_hash(ids, times, use_time, i) & mask
        while True:
            p = slot_idx[slot]
            if ids[p] == ids[i] and (not use_time or times[p] == times[i]):
                first[i] = p
                break
            slot = (slot + np.uint64(1)) & mask


@cuda.jit
def _relabel(first, n0, rank, local):
    i = cuda.grid(1)
    if i < local.shape[0]:
        f = first[n0 + i]
        local[i] = f if f < n0 else n0 + rank[f - n0]


def unique_relabel(
    prev_ids: np.ndarray,
    cand_ids: np.ndarray,
    prev_times: Optional[np.ndarray] = None,
    cand_times: Optional[np.ndarray] = None,
) -> Tuple[np.ndarray, np.ndarray]:
    """Relabel candidates against a batch's nodes; see :func:`graphtrain.kernels.reference.unique_relabel`."""
    n0 = int(prev_ids.shape[0])
    m = int(cand_ids.shape[0])
    ids = np.concatenate([np.asarray(prev_ids), np.asarray(cand_ids)]).astype(np.int64, copy=False)
    total = ids.shape[0]
    use_time = prev_times is not None
    times = np.concatenate([prev_times, cand_times]).astype(np.int64, copy=False) if use_time else np.zeros(1, np.int64)
    if m == 0:
        return np.empty(0, np.int64), np.empty(0, np.int64)
    cap = 16
    while cap < 2 * total:
        cap <<= 1
    d_ids = cuda.to_device(ids)
    d_times = cuda.to_device(times)
    slot_idx = cuda.to_device(np.full(cap, -1, dtype=np.int64))
    mask = np.uint64(cap - 1)
    _insert_first[_blocks(total), THREADS](d_ids, d_times, use_time, slot_idx, mask)
    d_first = cuda.device_array(total, dtype=np.int64)
    _lookup_first[_blocks(total), THREADS](d_ids, d_times, use_time, slot_idx, mask, d_first)
    first_cand = d_first.copy_to_host()[n0:]
    is_new = first_cand == np.arange(n0, total)
    rank = np.cumsum(is_new) - 1
    d_local = cuda.device_array(m, dtype=np.int64)
    _relabel[_blocks(m), THREADS](d_first, n0, cuda.to_device(rank), d_local)
    return np.nonzero(is_new)[0].astype(np.int64), d_local.copy_to_host()


# -- gather -----------------------------------------------------------------------------------------
@cuda.jit
def _gather(table, rows, out):
    i = cuda.grid(1)
    cols = out.shape[1]
    if i < out.shape[0] * cols:
        r = i // cols
        c = i - r * cols
        out[r, c] = table[rows[r], c]


def gather_rows(table, rows: np.ndarray) -> np.ndarray:
    """``table[rows]`` on the GPU for a 1-D or 2-D table (host or device); rows validated by the caller."""
    rows = np.ascontiguousarray(rows, dtype=np.int64)
    if _on_device(table):
        d_table = table
    else:
        d_table = cuda.to_device(np.ascontiguousarray(table))
    flat = d_table.ndim == 1
    if flat:
        d_table = d_table.reshape(d_table.shape[0], 1)
    out = cuda.device_array((rows.shape[0], d_table.shape[1]), dtype=d_table.dtype)
    if out.size:
        _gather[_blocks(out.size), THREADS](d_table, cuda.to_device(rows), out)
    host = out.copy_to_host()
    return host[:, 0] if flat else host
