"""Sampling a whole dataset in one process: :class:`PartitionedHopSampler` over a
:class:`~graphtrain.partition.view.PartitionedGraph` (``open_dataset(d).graph()``).

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
        graph: the view (every partition held by this process, memory-mapped).
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
        """Every node in ``[0, N)`` is held here; out-of-range IDs raise :class:`ConfigError`."""
        global_nodes = np.asarray(global_nodes)
        if global_nodes.size and (int(global_nodes.min()) < 0 or int(global_nodes.max()) >= self.num_global_nodes):
            bad = global_nodes[(global_nodes < 0) | (global_nodes >= self.num_global_nodes)][0]
            raise ConfigError(f"node {int(bad)} is out of range [0, {self.num_global_nodes})")

    def sample_hop(self, global_nodes, keys, node_time: Optional[np.ndarray], options: HopOptions) -> HopResult:
        global_nodes = np.asarray(global_nodes, dtype=np.int64)
        self.check_nodes(global_nodes)
        keys = np.asarray(keys)
        if options.temporal is not None and node_time is None:
            raise ConfigError("temporal sampling needs a time bound for every frontier entry")
        split = split_by_owner(self.graph.book, global_nodes)
        if split.parts.size <= 1:  # one owner (or an empty frontier): no grouping to undo
            owner = int(split.parts[0]) if split.parts.size else 0
            return self.parts[owner].sample_hop(global_nodes, keys, node_time, options)
        counts, nbrs, eids = [], [], []
        for q, p in enumerate(split.parts):
            rows = split.order[split.offsets[q]:split.offsets[q + 1]]
            got = self.parts[int(p)].sample_hop(global_nodes[rows], keys[rows],
                                                None if node_time is None else np.asarray(node_time)[rows], options)
            counts.append(got.counts)
            nbrs.append(got.nbr)
            eids.append(got.eid)
        return HopResult(*reorder_segments(split.order, np.concatenate(counts), np.concatenate(nbrs), np.concatenate(eids)))
