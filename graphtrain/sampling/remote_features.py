"""Node rows of any global node, served by their owner workers: :class:`DistributedNodeData`.

``W`` workers each serve a contiguous run of partitions, i.e. one node range of the *worker book*
(``dataset.book.coarsen(runs)``, ``W + 1`` boundaries). A fetch is one collective round on the
:class:`~graphtrain.comm.Exchange`:

1. the requester splits its IDs by owner worker with the worker book (:func:`route`, one
   ``searchsorted``),
2. the IDs go to their owners (on a channel for fetches repeated once per batch),
3. each owner answers from what it holds (:class:`~graphtrain.sampling.features.LocalNodeData`), and
4. the rows travel back -- one per ID, so no count exchange -- and are put back into request order.

:class:`DistributedNodeData` returns exactly the rows a single process holding every node returns.
On top of the fetch it keeps a copy of the features of the remote nodes this worker's sampling
reaches most often (:func:`hot_remote_nodes`, the cache policy) and takes the rows that arrived
inside the current batch's hop answers (:attr:`DistributedNodeData.carry`, filled by
:class:`~graphtrain.sampling.distributed_sampler.DistributedHopSampler`; see
:mod:`graphtrain.sampling.feature_carry`).

**Collective discipline.** Every call of :meth:`DistributedNodeData.features` / ``labels`` and of
:func:`fetch_node_rows` is a collective: all workers of the group must make the same calls in the
same order (with possibly empty inputs).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, List, Optional, Tuple

import numpy as np

from graphtrain.comm.exchange import Exchange, MessageFill
from graphtrain.errors import ConfigError
from graphtrain.graph import CSCGraph
from graphtrain.kernels.rows import IdIndex, copy_cached_rows, distinct_absent
from graphtrain.partition.book import RangePartitionBook
from graphtrain.sampling.feature_carry import FeatureCarry
from graphtrain.sampling.features import LocalNodeData, NodeDataSource, group_by_owner

_NO_IDS = np.zeros(0, dtype=np.int64)


@dataclass
class Routing:
    """Where each requested ID went: owners ascending, as
    :func:`~graphtrain.sampling.features.split_by_owner` groups them."""

    order: np.ndarray  # int64 [n] request positions in owner-grouped order
    send_counts: np.ndarray  # int64 [W]


def route(book: RangePartitionBook, ids: np.ndarray, world_size: int) -> Routing:
    """Group IDs by owner worker (part ``w`` of the worker book): the same grouping as
    :func:`~graphtrain.sampling.features.split_by_owner`."""
    return Routing(*group_by_owner(book.node_part(ids), world_size))


def scatter_back(routing: Routing, grouped: np.ndarray) -> np.ndarray:
    """Rows answered in owner-grouped order -> rows in request order."""
    out = np.empty_like(grouped)
    out[routing.order] = grouped
    return out


class DistributedNodeData(NodeDataSource):
    """Features and labels of any global node, fetched from the owner workers.

    Args:
        local: this worker's node tables (the partitions of its run).
        book: the worker book.
        exchange: the data-plane exchange.
        num_features: ``F`` of the dataset (None without features), the same on every worker.
        has_labels: whether the dataset has labels (the same on every worker).
        cached_ids: sorted int64 global IDs of remote nodes whose features this worker keeps a copy
            of (:func:`hot_remote_nodes`); fetched once here -- a collective, so every worker must
            construct its DistributedNodeData at the same point -- and served locally afterwards.
    """

    def __init__(self, local: LocalNodeData, book: RangePartitionBook, exchange: Exchange,
                 num_features: Optional[int], has_labels: bool, cached_ids: Optional[np.ndarray] = None):
        if book.num_parts != exchange.world_size:
            raise ConfigError(f"worker book has {book.num_parts} parts for {exchange.world_size} workers")
        self.local = local
        self.book = book
        self.exchange = exchange
        self._num_features = num_features
        self._has_labels = bool(has_labels)
        self._cache_ids = np.zeros(0, dtype=np.int64)
        self._cache_rows = None
        self._peer_cache: dict = {}  # worker j -> IdIndex of this worker's nodes that j caches
        if num_features is not None and cached_ids is not None:
            ids = np.unique(np.asarray(cached_ids, dtype=np.int64))
            self._cache_rows = self._fetch(ids)
            self._cache_ids = ids
            self._cache_index = IdIndex(ids)
            if exchange.world_size > 1:  # owners learn what each requester caches (a collective, like the fetch)
                routing = route(book, ids, exchange.world_size)
                got, counts = exchange.all_to_all(ids[routing.order], routing.send_counts)
                starts = np.concatenate([[0], np.cumsum(counts)])
                self._peer_cache = {j: IdIndex(got[starts[j] : starts[j + 1]]) for j in range(exchange.world_size)
                                    if j != exchange.rank and counts[j]}
        # feature rows carried in hop answers (DistributedHopSampler(node_data=...)), per batch
        self.carry = FeatureCarry(num_features) if num_features is not None and exchange.world_size > 1 else None

    @property
    def num_features(self) -> Optional[int]:
        return self._num_features

    @property
    def concurrent_safe(self) -> bool:
        """Several workers: no (a fetch is a collective, which must run in one order everywhere)."""
        return self.exchange.world_size == 1

    @property
    def cache_size(self) -> int:
        """Remote nodes whose features are cached here."""
        return int(self._cache_ids.size)

    def _fetch(self, ids, channel: Optional[str] = None) -> np.ndarray:
        return fetch_node_rows(self.exchange, self.book, ids, self.local.features, np.float32, (self._num_features,),
                               channel)

    def features(self, ids) -> Optional[np.ndarray]:
        """Rows of ``ids``: this worker's own nodes, cached ones and those carried in the current
        batch's hop answers (:attr:`carry`, taken here) served here, the rest fetched from their
        owners -- a collective, also when nothing is missing here, unless the carry is complete
        (then on every worker: see :mod:`graphtrain.sampling.feature_carry`)."""
        if self._num_features is None:
            return None
        ids = np.asarray(ids, dtype=np.int64)
        lo, hi = self.book.node_range(self.exchange.rank)
        own = (ids >= lo) & (ids < hi)
        out = np.empty((ids.size, self._num_features), dtype=np.float32)
        own_pos = np.flatnonzero(own)
        if own_pos.size:
            self.local.features_into(ids[own_pos], out, own_pos)
        miss_pos = np.flatnonzero(~own)
        if self._cache_ids.size and miss_pos.size:
            miss_pos = miss_pos[~copy_cached_rows(ids, miss_pos, self._cache_index, self._cache_rows, out)]
        complete = False
        if self.carry is not None:
            carried_ids, carried_rows, complete = self.carry.take()
            if carried_ids.size and miss_pos.size:
                miss_pos = miss_pos[~copy_cached_rows(ids, miss_pos, IdIndex(carried_ids), carried_rows, out)]
        if complete:
            if miss_pos.size:  # the sampler's coverage argument failed: a bug, not bad input
                raise RuntimeError(f"{miss_pos.size} feature rows of the batch were neither own, cached nor carried "
                                   f"(first: node {int(ids[miss_pos[0]])})")
            return out
        out[miss_pos] = self._fetch(ids[miss_pos], channel="feature requests")
        return out

    def missing_by_owner(self, nodes: np.ndarray) -> List[np.ndarray]:
        """Per worker ``j``: the distinct sorted IDs among ``nodes`` that ``j`` owns and this worker
        neither owns nor caches (``[]`` for this worker itself)."""
        W, me = self.exchange.world_size, self.exchange.rank
        lo, hi = self.book.node_range(me)
        remote = distinct_absent([nodes], lo, hi, False, self._cache_index if self._cache_ids.size else None)
        bounds = np.searchsorted(remote, np.asarray(self.book.node_bounds, dtype=np.int64))
        return [remote[bounds[j] : bounds[j + 1]] if j != me else _NO_IDS for j in range(W)]

    def carry_ids(self, requester: int, frontier: np.ndarray, sampled: Optional[np.ndarray],
                  asked: np.ndarray) -> np.ndarray:
        """The IDs whose feature rows to carry to ``requester`` in a hop answer, sorted: the distinct
        IDs among its ``frontier`` nodes (all this worker's), the ``sampled`` sources this worker owns
        (None: none) and the ``asked`` IDs (this worker's), less those the requester caches."""
        lo, hi = self.book.node_range(self.exchange.rank)
        pieces = [frontier, asked] + ([sampled] if sampled is not None else [])  # frontier, asked: all in range
        return distinct_absent(pieces, lo, hi, True, self._peer_cache.get(requester))

    def rows_fill(self, ids: np.ndarray) -> MessageFill:
        """The float32 feature rows of ``ids`` (this worker's), as a message piece that gathers them
        straight into the send buffer."""
        n, F = int(ids.size), self._num_features

        def write(buf: np.ndarray) -> None:
            self.local.features_into(ids, buf.view(np.float32).reshape(n, F), np.arange(n, dtype=np.int64))

        return MessageFill(n * F * 4, write)

    def labels(self, ids) -> Optional[np.ndarray]:
        if not self._has_labels:
            return None
        return fetch_node_rows(self.exchange, self.book, ids, self.local.labels, np.int64)


def fetch_node_rows(exchange: Exchange, book: RangePartitionBook, ids, serve: Callable[[np.ndarray], np.ndarray],
                    dtype, row_shape: Tuple[int, ...] = (), channel: Optional[str] = None) -> np.ndarray:
    """Rows of arbitrary global node IDs from their owners (a collective; see the module docstring).

    Args:
        exchange: the data-plane exchange.
        book: the worker book (``W`` parts); part ``w`` is served by worker ``w``.
        ids: int64 ``[n]`` global node IDs (any owners, repeats allowed).
        serve: called on this worker with int64 global IDs of its own range that others (and
            itself) ask for; returns ``[m, *row_shape]`` rows.
        dtype, row_shape: of one row (all workers must agree).
        channel: the requests' channel (:meth:`Exchange.all_to_all`) for fetches repeated with
            similar sizes, e.g. once per batch; None for one-off fetches.

    Returns:
        ``[n, *row_shape]`` rows of ``dtype`` in the order of ``ids``.
    """
    ids = np.asarray(ids, dtype=np.int64)
    if exchange.world_size == 1:  # everything is local
        return np.ascontiguousarray(np.asarray(serve(ids), dtype=dtype)).reshape((ids.shape[0],) + tuple(row_shape))
    return _fetch_routed(exchange, route(book, ids, exchange.world_size), ids, serve, dtype, row_shape, channel)


def fetch_edge_rows(exchange: Exchange, book: RangePartitionBook, ids, serve: Callable[[np.ndarray], np.ndarray],
                    dtype, row_shape: Tuple[int, ...] = (), channel: Optional[str] = None) -> np.ndarray:
    """:func:`fetch_node_rows` for global edge IDs: each goes to the worker holding it (part ``w``
    of the worker book's edge ranges: the owner of the edge's destination). A collective."""
    ids = np.asarray(ids, dtype=np.int64)
    if exchange.world_size == 1:
        return np.ascontiguousarray(np.asarray(serve(ids), dtype=dtype)).reshape((ids.shape[0],) + tuple(row_shape))
    routing = Routing(*group_by_owner(book.edge_part(ids), exchange.world_size))
    return _fetch_routed(exchange, routing, ids, serve, dtype, row_shape, channel)


def _fetch_routed(exchange: Exchange, routing: Routing, ids: np.ndarray, serve, dtype, row_shape, channel) -> np.ndarray:
    """The collective of :func:`fetch_node_rows` once the IDs are routed."""
    requests, recv_counts = exchange.all_to_all(ids[routing.order], routing.send_counts, channel)
    answers = np.asarray(serve(requests), dtype=dtype)
    answers = np.ascontiguousarray(answers).reshape((requests.shape[0],) + tuple(row_shape))
    back, _ = exchange.all_to_all_sized(answers, recv_counts, routing.send_counts)  # one answer per request
    return scatter_back(routing, back)


class DistributedEdgeData:
    """Stored edge columns of any global edge, read where they are held (the partitions of the
    worker owning the edge's destination): this worker's edges from its mapped partitions, the
    others' fetched from them (:func:`fetch_edge_rows`).

    Args:
        local: this worker's :class:`~graphtrain.sampling.edge_features.LocalEdgeData`.
        book: the worker book. exchange: the data-plane exchange.

    **Collective discipline**: every :meth:`read` with more than one worker is a collective (also
    when every edge asked for is this worker's), like :meth:`DistributedNodeData.features`.
    """

    def __init__(self, local, book: RangePartitionBook, exchange: Exchange):
        if book.num_parts != exchange.world_size:
            raise ConfigError(f"worker book has {book.num_parts} parts for {exchange.world_size} workers")
        self.local, self.book, self.exchange = local, book, exchange

    @property
    def concurrent_safe(self) -> bool:
        return self.exchange.world_size == 1

    @property
    def columns(self):
        return self.local.columns

    def read(self, e_id) -> np.ndarray:
        """float64 ``[E, C]`` columns of the given global edge IDs (any worker's)."""
        e_id = np.asarray(e_id, dtype=np.int64)
        if self.exchange.world_size == 1:
            return self.local.read(e_id)
        lo, hi = self.book.edge_range(self.exchange.rank)
        own = (e_id >= lo) & (e_id < hi)
        out = np.empty((e_id.size, self.local.width), dtype=np.float64)
        out[own] = self.local.read(e_id[own])
        miss = np.flatnonzero(~own)
        out[miss] = fetch_edge_rows(self.exchange, self.book, e_id[miss], self.local.read, np.float64,
                                    (self.local.width,), channel="edge feature requests")
        return out


def hot_remote_nodes(graph: CSCGraph, max_nodes: int) -> np.ndarray:
    """The ``max_nodes`` remote nodes that appear most often as sources of ``graph``'s in-edges.

    Those are the remote nodes this worker's sampling reaches most often (on power-law graphs a few
    hubs are most of them), so caching their features removes most of the feature traffic. Returns
    sorted int64 global IDs (fewer when the graph has fewer remote sources).
    """
    if max_nodes <= 0:
        return np.zeros(0, dtype=np.int64)
    src = np.asarray(graph.src)
    remote = src[(src < graph.node_start) | (src >= graph.node_stop)]
    ids, counts = np.unique(remote, return_counts=True)
    if ids.size > max_nodes:
        ids = ids[np.argpartition(-counts, max_nodes - 1)[:max_nodes]]
    return np.sort(ids)
