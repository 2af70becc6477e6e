"""The whole graph of a dataset, or a worker's run of its partitions, as one view without a copy.

``open_dataset(d).graph()`` (no partition) returns a :class:`PartitionedGraph`: the memory-mapped
:class:`~graphtrain.graph.CSCGraph` of every partition, side by side, with the range book that says
which one holds a node. Nothing is concatenated: opening it reads array headers only, and memory
grows only with the pages a sampler touches. A single process can then sample any node of any
dataset (``NeighborSampler(ds.graph(), ...)`` dispatches each frontier entry to its owner's graph,
see :class:`graphtrain.sampling.partitioned.PartitionedHopSampler`).

A worker that serves a contiguous run of several partitions (fewer workers than partitions) holds
the same kind of view over its run only (``first``: the run's first partition;
:func:`graphtrain.sampling.shard.open_worker_shard`): its node range is the run's, its memory is
the partitions' mapped pages.

The sampling kernels read one contiguous ``indptr``/``src`` per graph, so the view is sampled one
partition at a time rather than handed to a kernel whole, and code that walks a node range
(layer-wise inference) takes it in :meth:`PartitionedGraph.pieces`. Code that needs a single
CSCGraph of a run of partitions concatenates them (``graphtrain.sampling.shard.merge_graphs``,
O(E) memory).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Iterator, Optional, Tuple

import numpy as np

from graphtrain.errors import ConfigError
from graphtrain.graph import CSCGraph
from graphtrain.partition.book import RangePartitionBook


@dataclass(frozen=True)
class PartitionedGraph:
    """In-edges of the nodes of a run of partitions: ``parts[i]`` is partition ``first + i`` (its node
    range in ``book``); the default is every partition, i.e. every node ``[0, N)``.

    Attributes:
        parts: one graph per partition of the run, in partition order (memory-mapped when opened from disk).
        book: the dataset's range book; partition ``p`` holds nodes ``book.node_range(p)`` and edges
            ``book.edge_range(p)``.
        first: the run's first partition; None (the default): the whole graph, ``parts`` must then
            hold every partition of the book.

    Raises:
        ConfigError: a part whose node or edge range, node count or edge columns disagree with the
            book, or a run that is not one of the book's.
    """

    parts: Tuple[CSCGraph, ...]
    book: RangePartitionBook
    first: Optional[int] = None

    def __post_init__(self):
        object.__setattr__(self, "parts", tuple(self.parts))
        P = self.book.num_parts
        if self.first is None:
            if len(self.parts) != P:
                raise ConfigError(f"{len(self.parts)} partition graphs for a book of {P} partitions")
            object.__setattr__(self, "first", 0)
        else:
            first = int(self.first)
            if not self.parts or first < 0 or first + len(self.parts) > P:
                raise ConfigError(f"{len(self.parts)} partition graphs from partition {first} are no run of a book "
                                  f"of {P} partitions")
            object.__setattr__(self, "first", first)
        names = set(self.parts[0].edge_attrs)
        nb, eb = self.book.node_bounds, self.book.edge_bounds
        for p, g in zip(self.part_ids, self.parts):
            if (g.node_start, g.node_stop) != (int(nb[p]), int(nb[p + 1])) or \
                    (g.edge_start, g.edge_start + g.num_edges) != (int(eb[p]), int(eb[p + 1])):
                raise ConfigError(f"partition {p}'s graph does not hold the nodes and edges the book gives it")
            if g.num_global_nodes != self.book.num_nodes:
                raise ConfigError(f"partition {p}'s graph has {g.num_global_nodes} global nodes, the book {self.book.num_nodes}")
            if set(g.edge_attrs) != names:
                raise ConfigError("partitions have different edge columns")

    @property
    def part_ids(self) -> range:
        """The partitions of the view, in order (``parts[i]`` is partition ``part_ids[i]``)."""
        return range(self.first, self.first + len(self.parts))

    @property
    def num_global_nodes(self) -> int:
        return self.book.num_nodes

    @property
    def num_nodes(self) -> int:
        """Nodes of the view (its run's; ``N`` for the whole graph)."""
        return self.node_stop - self.node_start

    @property
    def num_edges(self) -> int:
        """In-edges of the view's nodes."""
        return int(self.book.edge_bounds[self.first + len(self.parts)] - self.book.edge_bounds[self.first])

    @property
    def num_parts(self) -> int:
        return len(self.parts)

    @property
    def node_start(self) -> int:
        return int(self.book.node_bounds[self.first])

    @property
    def node_stop(self) -> int:
        return int(self.book.node_bounds[self.first + len(self.parts)])

    @property
    def edge_start(self) -> int:
        """Global ID of the view's first edge (0 for the whole graph)."""
        return int(self.book.edge_bounds[self.first])

    @property
    def edge_columns(self) -> Tuple[str, ...]:
        """Names of the per-edge columns every partition holds (``"time"``, ``"weight"``, ...)."""
        return tuple(self.parts[0].edge_attrs)

    @property
    def time_sorted(self) -> bool:
        return all(g.time_sorted for g in self.parts)

    def in_degree(self) -> np.ndarray:
        """int64 in-degree of every node of the view (materialised, 8 bytes per node)."""
        return np.concatenate([g.in_degree() for g in self.parts])

    def pieces(self, a: int, b: int) -> Iterator[Tuple[CSCGraph, int, int]]:
        """The view's nodes ``a .. b-1`` (indices from :attr:`node_start`) partition by partition:
        ``(graph, la, lb)`` for each partition holding some of them, ``la .. lb-1`` its local nodes,
        in order (none for an empty range)."""
        if not 0 <= a <= b <= self.num_nodes:
            raise ConfigError(f"nodes {a} .. {b - 1} are not in the view's {self.num_nodes} nodes")
        start = self.node_start
        for g in self.parts:
            lo = g.node_start - start
            la, lb = max(a, lo), min(b, g.node_stop - start)
            if la < lb:
                yield g, la - lo, lb - lo
