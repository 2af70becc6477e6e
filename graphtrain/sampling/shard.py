"""A worker's share of a dataset: :func:`open_worker_shard` -> :class:`WorkerShard`.

Worker ``r`` of ``W`` serves the contiguous run of partitions ``[runs[r], runs[r + 1])``
(``dataset.book.contiguous_runs(W)``), i.e. node range ``r`` of the worker book
(``dataset.book.coarsen(runs)``). It opens those partitions memory-mapped -- several (fewer workers
than partitions) as one :class:`~graphtrain.partition.view.PartitionedGraph` view of the run, not
concatenated, so the worker's graph stays in the page cache however many partitions it serves --
and builds its data-plane views on them: the
:class:`~graphtrain.sampling.distributed_sampler.DistributedHopSampler` (over a
:class:`~graphtrain.sampling.partitioned.PartitionedHopSampler` of the view: the same batches as
one merged graph gives) and the :class:`~graphtrain.sampling.remote_features.DistributedNodeData`.

:func:`merge_graphs` still concatenates a run into one in-memory CSC graph (O(E) anonymous memory);
``open_worker_shard(..., merge=True)`` is the former layout, kept to compare against.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import List, Optional, Sequence, Tuple, Union

import numpy as np

from graphtrain.columns import OffsetColumn, column_base, index_dtype, stored_array
from graphtrain.comm.exchange import Exchange
from graphtrain.errors import ConfigError
from graphtrain.graph import CSCGraph
from graphtrain.kernels.hop_graph import read_only
from graphtrain.partition.book import RangePartitionBook
from graphtrain.partition.view import PartitionedGraph
from graphtrain.sampling.distributed_sampler import DistributedHopSampler
from graphtrain.sampling.features import LocalNodeData
from graphtrain.sampling.hop import HopSampler, LocalHopSampler
from graphtrain.sampling.partitioned import PartitionedHopSampler
from graphtrain.sampling.remote_features import DistributedNodeData, hot_remote_nodes


def merge_graphs(graphs: Sequence[CSCGraph]) -> CSCGraph:
    """Consecutive partitions' graphs as one graph of their merged node range.

    A single graph is returned as is (still memory-mapped); several are concatenated in memory and
    made read-only like a mapped partition, so the sampling kernels get the same array types (and
    Numba compiles and caches one signature) however many partitions a worker serves.
    """
    graphs = list(graphs)
    if not graphs:
        raise ConfigError("no partitions to merge")
    if len(graphs) == 1:
        return graphs[0]
    for a, b in zip(graphs, graphs[1:]):
        if b.node_start != a.node_stop or b.edge_start != a.edge_start + a.num_edges:
            raise ConfigError(f"partitions starting at nodes {a.node_start} and {b.node_start} are not consecutive")
    names = set(graphs[0].edge_attrs)
    if any(set(g.edge_attrs) != names for g in graphs):
        raise ConfigError("partitions to merge have different edge columns")
    total = sum(g.num_edges for g in graphs)
    dtype = graphs[0].indptr.dtype if all(g.indptr.dtype == graphs[0].indptr.dtype for g in graphs) else np.dtype(np.int64)
    dtype = np.result_type(dtype, index_dtype(total))  # the merged offsets reach the run's edge count
    indptr = [np.zeros(1, dtype=dtype)]
    base = 0
    for g in graphs:
        indptr.append(np.asarray(g.indptr[1:], dtype=np.int64) + base)
        base += g.num_edges
    return CSCGraph(
        indptr=read_only(np.concatenate(indptr).astype(dtype, copy=False)),
        src=read_only(np.concatenate([np.asarray(g.src) for g in graphs])),
        node_start=graphs[0].node_start,
        edge_start=graphs[0].edge_start,
        num_global_nodes=graphs[0].num_global_nodes,
        edge_attrs={k: _merge_column([g.edge_attrs[k] for g in graphs]) for k in names},
        time_sorted=all(g.time_sorted for g in graphs),
    )


def _merge_column(columns):
    """Concatenated edge columns; offset columns with one base stay offsets (compact)."""
    bases = {column_base(c) for c in columns}
    if len(bases) == 1 and None not in bases:
        return OffsetColumn(read_only(np.concatenate([stored_array(c) for c in columns])), bases.pop())
    return read_only(np.concatenate([np.asarray(c) for c in columns]))


def run_graph(graphs: Sequence[CSCGraph], book: RangePartitionBook, first: int) -> Union[CSCGraph, PartitionedGraph]:
    """Partitions ``first, first + 1, ...`` (``graphs``) as one graph of their node range, without a copy:
    a single partition's graph as is, several as a :class:`PartitionedGraph` view of the run."""
    graphs = list(graphs)
    if not graphs:
        raise ConfigError("no partitions to open")
    return graphs[0] if len(graphs) == 1 else PartitionedGraph(tuple(graphs), book, first)


def max_edge_time(graph: Union[CSCGraph, PartitionedGraph]) -> Optional[int]:
    """The latest edge time of ``graph`` (None without edges; :class:`ConfigError` without a time column)."""
    parts = graph.parts if isinstance(graph, PartitionedGraph) else (graph,)
    if any(g.time is None for g in parts):
        raise ConfigError("the graph has no 'time' edge column")
    tops = [int(np.max(g.time)) for g in parts if g.time.shape[0]]
    return max(tops) if tops else None


def _hot_remote_nodes(graph: Union[CSCGraph, PartitionedGraph], max_nodes: int) -> np.ndarray:
    """:func:`~graphtrain.sampling.remote_features.hot_remote_nodes` of ``graph``; a view's is counted
    partition by partition and is the one its merged graph gives (the same counts, in ID order, pick
    the same nodes)."""
    if not isinstance(graph, PartitionedGraph) or max_nodes <= 0:
        return hot_remote_nodes(graph, max_nodes)
    ids, counts = [], []
    for g in graph.parts:
        src = np.asarray(g.src)
        i, c = np.unique(src[(src < graph.node_start) | (src >= graph.node_stop)], return_counts=True)
        ids.append(i)
        counts.append(c)
    ids, inverse = np.unique(np.concatenate(ids), return_inverse=True)
    total = np.zeros(ids.size, dtype=np.int64)
    np.add.at(total, inverse.reshape(-1), np.concatenate(counts))
    counts = total
    if ids.size > max_nodes:
        ids = ids[np.argpartition(-counts, max_nodes - 1)[:max_nodes]]
    return np.sort(ids)


@dataclass
class WorkerShard:
    """What one worker opens of a dataset: its run of partitions and the views built on them.

    Attributes:
        rank: the worker's index; it serves partitions ``[runs[rank], runs[rank + 1])``.
        runs: int64 ``[W + 1]`` partition boundaries of the workers.
        book: the worker book (``dataset.book.coarsen(runs)``).
        graph: in-edges of the worker's nodes: its partition's mapped graph, or -- several partitions --
            a :class:`~graphtrain.partition.view.PartitionedGraph` view of them (a merged
            :class:`CSCGraph` with ``open_worker_shard(merge=True)``).
        node_data: memory-mapped node tables of the worker's partitions.
        exchange: the data-plane exchange.
    """

    rank: int
    runs: np.ndarray
    book: RangePartitionBook
    graph: Union[CSCGraph, PartitionedGraph]
    node_data: LocalNodeData
    exchange: Exchange
    parts: List[int] = field(default_factory=list)

    @property
    def node_range(self) -> Tuple[int, int]:
        return self.book.node_range(self.rank)

    def local_hop_sampler(self, backend: str = "auto") -> HopSampler:
        """Samples the worker's own nodes: a :class:`LocalHopSampler` of its graph, or a
        :class:`PartitionedHopSampler` of its view (the same answers)."""
        if isinstance(self.graph, PartitionedGraph):
            return PartitionedHopSampler(self.graph, backend)
        return LocalHopSampler(self.graph, backend)

    def hop_sampler(self, backend: str = "auto", node_data: Optional[DistributedNodeData] = None) -> DistributedHopSampler:
        """The worker's hop sampler; with ``node_data`` (from :meth:`distributed_node_data`; on every
        worker or none) its hop answers carry the batch's features."""
        return DistributedHopSampler(self.local_hop_sampler(backend), self.book, self.exchange, node_data)

    @property
    def edge_columns(self) -> Tuple[str, ...]:
        """Names of the edge columns of the worker's graph (``"time"``, ``"weight"``, ...)."""
        g = self.graph
        return g.edge_columns if isinstance(g, PartitionedGraph) else tuple(g.edge_attrs)

    def max_edge_time(self) -> Optional[int]:
        """The latest time of the in-edges of the worker's nodes (None without edges; :class:`ConfigError`
        without a time column)."""
        return max_edge_time(self.graph)

    def distributed_node_data(self, num_features: Optional[int], has_labels: bool,
                              cache_nodes: int = 0) -> DistributedNodeData:
        """Node data of every node; ``cache_nodes``: remote nodes whose features to cache (a collective)."""
        cached = _hot_remote_nodes(self.graph, cache_nodes) if cache_nodes and self.exchange.world_size > 1 else None
        if self.exchange.world_size > 1 and num_features is not None:  # every worker takes part in the cache fill
            cached = np.zeros(0, np.int64) if cached is None else cached
        return DistributedNodeData(self.node_data, self.book, self.exchange, num_features, has_labels, cached)


def open_worker_shard(dataset, runs, exchange: Exchange, backend: str = "auto", merge: bool = False) -> WorkerShard:
    """Open worker ``exchange.rank``'s run of partitions of ``dataset`` (memory-mapped).

    Args:
        dataset: an opened :class:`~graphtrain.partition.format.Dataset`.
        runs: ``W + 1`` partition boundaries (``dataset.book.contiguous_runs(W)``).
        exchange: the data-plane exchange (its ``world_size`` is ``W``).
        merge: concatenate a run of several partitions into one in-memory graph (:func:`merge_graphs`,
            the former layout) instead of viewing them; the samples are the same.
    """
    runs = np.asarray(runs, dtype=np.int64)
    if runs.size != exchange.world_size + 1:
        raise ConfigError(f"{runs.size - 1} partition runs for {exchange.world_size} workers")
    book = dataset.book.coarsen(runs)
    parts = list(range(int(runs[exchange.rank]), int(runs[exchange.rank + 1])))
    graphs = [dataset.graph(p) for p in parts]
    graph = merge_graphs(graphs) if merge else run_graph(graphs, dataset.book, parts[0] if parts else 0)
    node_data = LocalNodeData.from_dataset(dataset, parts, backend=backend)
    return WorkerShard(exchange.rank, runs, book, graph, node_data, exchange, parts)
