"""Sampling a whole dataset in one process, or a worker's run of several partitions without merging
them: :class:`PartitionedHopSampler` over a :class:`~graphtrain.partition.view.PartitionedGraph`
(``open_dataset(d).graph()``, or a worker's view of its run, see
:func:`graphtrain.sampling.shard.open_worker_shard`).

Each hop's frontier entry is sampled from its owner partition's mapped arrays. With the ``cpu``
backend that is one kernel call per hop for all partitions (:func:`_sample_slots_parts`: the entries
are walked grouped by partition, each with the per-entry body of :mod:`graphtrain.kernels.cpu`, and
written in frontier order): what sampling one merged graph costs, without merging it (a worker of
the elastic ``W < P`` case samples every hop this way). Other backends group the frontier by owner
with the range book, sample each group with its partition's :class:`LocalHopSampler` and put the
answers back in frontier order. An entry's result depends only on (its partition's in-edges, key,
bound, options), and a partition's graph holds exactly the in-edges, global edge IDs and per-segment
weight sums its nodes have in a merged graph, so the batches are the ones a single merged
:class:`~graphtrain.graph.CSCGraph` gives, without concatenating the partitions.
"""
from __future__ import annotations

from typing import Dict, List, Optional

import numpy as np
from numba import njit, prange, typed

from graphtrain.columns import stored_bounds
from graphtrain.errors import ConfigError
from graphtrain.kernels.cpu import _sample_range
from graphtrain.kernels.hop_graph import read_only
from graphtrain.kernels.segments import reorder_segments
from graphtrain.partition.view import PartitionedGraph
from graphtrain.sampling.features import split_by_owner
from graphtrain.sampling.hop import HopOptions, HopResult, HopSampler, LocalHopSampler

_BLOCK = 2048  # grouped entries per parallel work item (each partition switch restarts the prefetch pipeline)


def _read_only(a: Optional[np.ndarray], dtype) -> np.ndarray:
    """``a`` as ``dtype``, read-only (:func:`~graphtrain.kernels.hop_graph.read_only`; an empty array
    for None): every partition's arrays, mapped or computed, then have one Numba type, so the kernels
    compile once."""
    return read_only(np.empty(0, dtype=dtype) if a is None else np.asarray(a, dtype=dtype))


def _common(arrays, default=np.int64) -> np.dtype:
    """The one dtype the partitions' arrays are listed with: theirs when they agree (int32 indices,
    float32 weights stay narrow), else ``default`` (a copy of the narrow ones)."""
    dtypes = {a.dtype for a in arrays if a is not None}
    return dtypes.pop() if len(dtypes) == 1 else np.dtype(default)


def _common_time(times, bases):
    """The partitions' time arrays in one stored domain, and its base: as stored when every
    partition has the same base (one dataset's partitions always do), else widened to the values."""
    if len(set(bases)) == 1:
        return times, bases[0]
    return [None if t is None else (t if b is None else t.astype(np.int64) + b) for t, b in zip(times, bases)], None


@njit(cache=True, nogil=True)
def _group_entries(ids, keys, times, temporal, bounds, order, part_g, local_g, keys_g, times_g):
    """The frontier grouped by owner partition (a stable counting sort): entry ``order[t]`` goes to
    grouped position ``t``, with its partition (an index into ``bounds``), local ID, key and time bound."""
    num_parts = bounds.shape[0] - 1
    n = ids.shape[0]
    part = np.empty(n, dtype=np.int64)
    start = np.zeros(num_parts + 1, dtype=np.int64)
    for i in range(n):
        v = ids[i]
        if num_parts <= 16:  # a worker's run: a few partitions, counted without branches (random owners)
            p = 0
            for j in range(1, num_parts):
                p += np.int64(v >= bounds[j])
        else:
            p = np.searchsorted(bounds, v, side="right") - 1
        part[i] = p
        start[p + 1] += 1
    for p in range(num_parts):
        start[p + 1] += start[p]
    for i in range(n):
        p = part[i]
        t = start[p]
        start[p] = t + 1
        order[t] = i
        part_g[t] = p
        local_g[t] = ids[i] - bounds[p]
        keys_g[t] = keys[i]
        if temporal:
            times_g[t] = times[i]


@njit(cache=True, nogil=True, inline="always")
def _range_parts(indptrs, srcs, weights, cum_weights, cum_positives, times, time_sorted, part, local_dst, keys, bounds,
                 k, replace, use_weight, temporal, strict, recent, slots, nbr_slots, counts, start, stop):
    """Grouped entries ``[start, stop)`` (``part`` is non-decreasing), one run of a partition's
    entries at a time, each by the cpu kernel's own ``_sample_range`` over that partition's arrays."""
    a = start
    while a < stop:
        q = part[a]
        b = a + 1
        while b < stop and part[b] == q:
            b += 1
        _sample_range(indptrs[q], srcs[q], weights[q], cum_weights[q], cum_positives[q], times[q], local_dst, keys,
                      bounds, k, replace, use_weight, temporal, time_sorted[q], strict, recent, slots, nbr_slots,
                      counts, a, b)
        a = b


@njit(cache=True, parallel=True, nogil=True)
def _sample_slots_parts(indptrs, srcs, weights, cum_weights, cum_positives, times, time_sorted, part, local_dst, keys,
                        bounds, k, replace, use_weight, temporal, strict, recent, slots, nbr_slots, counts):
    n = local_dst.shape[0]
    for blk in prange((n + _BLOCK - 1) // _BLOCK):
        _range_parts(indptrs, srcs, weights, cum_weights, cum_positives, times, time_sorted, part, local_dst, keys,
                     bounds, k, replace, use_weight, temporal, strict, recent, slots, nbr_slots, counts,
                     blk * _BLOCK, min(n, (blk + 1) * _BLOCK))


@njit(cache=True, nogil=True)
def _ungroup_counts(order, counts_g, counts, offsets):
    """Each entry's count and output offset, in frontier order."""
    for t in range(order.shape[0]):
        counts[order[t]] = counts_g[t]
    for i in range(counts.shape[0]):
        offsets[i + 1] = offsets[i] + counts[i]


@njit(cache=True, parallel=True, nogil=True)
def _compact_parts(edge_starts, order, part, slots, nbr_slots, counts_g, offsets, k, nbr, eid):
    """Grouped slots -> sources and global edge IDs in frontier order."""
    for t in prange(order.shape[0]):
        o = offsets[order[t]]
        base = t * k
        start = edge_starts[part[t]]
        for j in range(counts_g[t]):
            nbr[o + j] = nbr_slots[base + j]
            eid[o + j] = start + slots[base + j]


class PartitionedHopSampler(HopSampler):
    """Samples every node of a :class:`PartitionedGraph`: one kernel call per hop over every owner
    partition (``cpu`` backend), or one call per owner partition (other backends).

    Args:
        graph: the view (the partitions held by this process, memory-mapped): the whole graph, or a
            run of partitions -- then its nodes only, like a :class:`LocalHopSampler` of their merged
            graph (``graph`` has the same node range; a :class:`DistributedHopSampler` takes either).
        backend: kernel backend (``"reference" | "cpu" | "cuda" | "auto"``).
    """

    def __init__(self, graph: PartitionedGraph, backend: str = "auto"):
        if not isinstance(graph, PartitionedGraph):
            raise ConfigError(f"PartitionedHopSampler needs a PartitionedGraph, got {type(graph).__name__}")
        self.graph = graph
        self.parts: List[LocalHopSampler] = [LocalHopSampler(g, backend) for g in graph.parts]
        # the cpu backend samples all partitions in one kernel call (their arrays in typed lists, per weight column)
        self._one_call = len(self.parts) > 1 and all(p.backend == "cpu" for p in self.parts)
        self._bounds = np.ascontiguousarray(graph.book.node_bounds[graph.first : graph.first + len(graph.parts) + 1],
                                            dtype=np.int64)
        self._edge_starts = np.array([g.edge_start for g in graph.parts], dtype=np.int64)
        self._lists: Dict[Optional[str], tuple] = {}
        self._time_base: Dict[Optional[str], Optional[int]] = {}

    @property
    def num_global_nodes(self) -> int:
        return self.graph.num_global_nodes

    def check_options(self, options: HopOptions) -> None:
        for local in self.parts:  # a weight column is checked in every partition
            local.check_options(options)

    def check_nodes(self, global_nodes: np.ndarray) -> None:
        """Every node of the view (``[0, N)`` for the whole graph) is held here; others raise :class:`ConfigError`."""
        global_nodes = np.asarray(global_nodes)
        lo, hi = self.graph.node_start, self.graph.node_stop
        if global_nodes.size and (int(global_nodes.min()) < lo or int(global_nodes.max()) >= hi):
            bad = global_nodes[(global_nodes < lo) | (global_nodes >= hi)][0]
            raise ConfigError(f"node {int(bad)} is out of range [{lo}, {hi})"
                              + ("" if hi - lo == self.num_global_nodes else
                                 " of this view's partitions (remote nodes need the distributed sampler)"))

    def sample_hop(self, global_nodes, keys, node_time: Optional[np.ndarray], options: HopOptions) -> HopResult:
        global_nodes = np.asarray(global_nodes, dtype=np.int64)
        self.check_nodes(global_nodes)
        keys = np.asarray(keys)
        if options.temporal is not None and node_time is None:
            raise ConfigError("temporal sampling needs a time bound for every frontier entry")
        if len(self.parts) == 1:
            return self.parts[0].sample_hop(global_nodes, keys, node_time, options)
        if self._one_call:
            return self._sample_one_call(global_nodes, keys, node_time, options)
        split = split_by_owner(self.graph.book, global_nodes)
        first = self.graph.first
        if split.parts.size <= 1:  # one owner (or an empty frontier): no grouping to undo
            owner = int(split.parts[0]) - first if split.parts.size else 0
            return self.parts[owner].sample_hop(global_nodes, keys, node_time, options)
        counts, nbrs, eids = [], [], []
        for q, p in enumerate(split.parts):
            rows = split.order[split.offsets[q]:split.offsets[q + 1]]
            got = self.parts[int(p) - first].sample_hop(global_nodes[rows], keys[rows],
                                                None if node_time is None else np.asarray(node_time)[rows], options)
            counts.append(got.counts)
            nbrs.append(got.nbr)
            eids.append(got.eid)
        return HopResult(*reorder_segments(split.order, np.concatenate(counts), np.concatenate(nbrs), np.concatenate(eids)))

    def _arrays(self, weight: Optional[str]) -> tuple:
        """The partitions' hop-graph arrays as typed lists (built once per weight column)."""
        got = self._lists.get(weight)
        if got is None:
            hgs = [p._hop_graph(weight) for p in self.parts]
            times, base = _common_time([h.time for h in hgs], [h.time_base for h in hgs])
            got = (typed.List([_read_only(h.indptr, _common([h.indptr for h in hgs])) for h in hgs]),
                   typed.List([_read_only(h.src, _common([h.src for h in hgs])) for h in hgs]),
                   typed.List([_read_only(h.weight, _common([h.weight for h in hgs], np.float64)) for h in hgs]),
                   typed.List([_read_only(h.cum_weight, np.float64) for h in hgs]),
                   typed.List([_read_only(h.cum_positive, np.int32) for h in hgs]),
                   typed.List([_read_only(t, _common(times)) for t in times]),
                   np.array([bool(h.time_sorted) for h in hgs]))
            self._lists[weight] = got
            self._time_base[weight] = base
        return got

    def _sample_one_call(self, global_nodes, keys, node_time, options: HopOptions) -> HopResult:
        """Every entry from its partition in one kernel call (the cpu backend): the frontier is
        grouped by partition, sampled, and the answers written back in frontier order."""
        n, k = global_nodes.shape[0], int(options.fanout)
        if n == 0:
            return HopResult(np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros(0, np.int64))
        temporal = options.temporal is not None
        order, part, local = np.empty(n, np.int64), np.empty(n, np.int64), np.empty(n, np.int64)
        keys_g, times_g = np.empty(n, np.uint64), np.empty(n if temporal else 0, np.int64)
        arrays = self._arrays(options.weight)
        # bounds compared in the time columns' stored domain (the keys were made from the original times)
        times = stored_bounds(node_time, self._time_base[options.weight]) if temporal else times_g
        # contiguous inputs (a distributed hop's entries are columns of its request rows): one kernel signature
        _group_entries(np.ascontiguousarray(global_nodes), np.ascontiguousarray(keys, dtype=np.uint64), times, temporal,
                       self._bounds, order, part, local, keys_g, times_g)
        slots, nbr_slots, counts_g = np.empty(n * k, np.int64), np.empty(n * k, np.int64), np.empty(n, np.int64)
        _sample_slots_parts(*arrays, part, local, keys_g, times_g, k, bool(options.replace),
                            options.weight is not None, temporal, bool(options.strict), options.temporal == "recent",
                            slots, nbr_slots, counts_g)
        counts, offsets = np.empty(n, np.int64), np.zeros(n + 1, np.int64)
        _ungroup_counts(order, counts_g, counts, offsets)
        total = int(offsets[-1])
        nbr, eid = np.empty(total, np.int64), np.empty(total, np.int64)
        _compact_parts(self._edge_starts, order, part, slots, nbr_slots, counts_g, offsets, k, nbr, eid)
        return HopResult(counts, nbr, eid)
