"""Sampling a whole dataset in one process, or a worker's run of several partitions without merging
them: :class:`PartitionedHopSampler` over a :class:`~graphtrain.partition.view.PartitionedGraph`
(``open_dataset(d).graph()``, or a worker's view of its run, see
:func:`graphtrain.sampling.shard.open_worker_shard`).

Each hop's frontier is grouped by owner partition with the range book (the split a distributed
fetch uses), each group is sampled by its partition's :class:`LocalHopSampler`, and the answers
are put back in frontier order. An entry's result depends only on (its partition's in-edges, key,
bound, options), and a partition's graph holds exactly the in-edges, global edge IDs and per-segment
weight sums its nodes have in a merged graph, so the batches are the ones a single merged
:class:`~graphtrain.graph.CSCGraph` gives, without concatenating the partitions.
"""
from __future__ import annotations

from typing import List, Optional

import numpy as np

from graphtrain.errors import ConfigError
from graphtrain.kernels.segments import reorder_segments
from graphtrain.partition.view import PartitionedGraph
from graphtrain.sampling.features import split_by_owner
from graphtrain.sampling.hop import HopOptions, HopResult, HopSampler, LocalHopSampler


class PartitionedHopSampler(HopSampler):
    """Samples every node of a :class:`PartitionedGraph`, one partition's kernel call per owner.

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
