"""The whole graph of a dataset as one view over its partitions, without a copy.

``open_dataset(d).graph()`` (no partition) returns a :class:`PartitionedGraph`: the memory-mapped
:class:`~graphtrain.graph.CSCGraph` of every partition, side by side, with the range book that says
which one holds a node. Nothing is concatenated: opening it reads array headers only, and memory
grows only with the pages a sampler touches. A single process can then sample any node of any
dataset (``NeighborSampler(ds.graph(), ...)`` dispatches each frontier entry to its owner's graph,
see :class:`graphtrain.sampling.partitioned.PartitionedHopSampler`).

The sampling kernels read one contiguous ``indptr``/``src`` per graph, so the view is sampled one
partition at a time rather than handed to a kernel whole; code that needs a single CSCGraph of a run
of partitions concatenates them (``graphtrain.sampling.shard.merge_graphs``, O(E) memory).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Tuple

import numpy as np

from graphtrain.errors import ConfigError
from graphtrain.graph import CSCGraph
from graphtrain.partition.book import RangePartitionBook


@dataclass(frozen=True)
class PartitionedGraph:
    """In-edges of every node ``[0, N)``: partition ``p``'s are ``parts[p]`` (its node range in ``book``).

    Attributes:
        parts: one graph per partition, in partition order (memory-mapped when opened from disk).
        book: the range book; ``parts[p]`` holds nodes ``book.node_range(p)`` and edges ``book.edge_range(p)``.

    Raises:
        ConfigError: a part whose node or edge range, node count or edge columns disagree with the book.
    """

    parts: Tuple[CSCGraph, ...]
    book: RangePartitionBook

    def __post_init__(self):
        object.__setattr__(self, "parts", tuple(self.parts))
        if len(self.parts) != self.book.num_parts:
            raise ConfigError(f"{len(self.parts)} partition graphs for a book of {self.book.num_parts} partitions")
        names = set(self.parts[0].edge_attrs)
        for p, g in enumerate(self.parts):
            nb, eb = self.book.node_bounds, self.book.edge_bounds
            if (g.node_start, g.node_stop) != (int(nb[p]), int(nb[p + 1])) or \
                    (g.edge_start, g.edge_start + g.num_edges) != (int(eb[p]), int(eb[p + 1])):
                raise ConfigError(f"partition {p}'s graph does not hold the nodes and edges the book gives it")
            if g.num_global_nodes != self.book.num_nodes:
                raise ConfigError(f"partition {p}'s graph has {g.num_global_nodes} global nodes, the book {self.book.num_nodes}")
            if set(g.edge_attrs) != names:
                raise ConfigError("partitions have different edge columns")

    @property
    def num_global_nodes(self) -> int:
        return self.book.num_nodes

    @property
    def num_nodes(self) -> int:
        return self.book.num_nodes

    @property
    def num_edges(self) -> int:
        return self.book.num_edges

    @property
    def num_parts(self) -> int:
        return len(self.parts)

    @property
    def node_start(self) -> int:
        return 0

    @property
    def node_stop(self) -> int:
        return self.book.num_nodes

    @property
    def edge_columns(self) -> Tuple[str, ...]:
        """Names of the per-edge columns every partition holds (``"time"``, ``"weight"``, ...)."""
        return tuple(self.parts[0].edge_attrs)

    @property
    def time_sorted(self) -> bool:
        return all(g.time_sorted for g in self.parts)

    def in_degree(self) -> np.ndarray:
        """int64 ``[N]`` in-degree of every node (materialised, 8 bytes per node)."""
        return np.concatenate([g.in_degree() for g in self.parts])
