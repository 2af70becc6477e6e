"""Distributed batch sampling: a frontier of any global nodes, each entry expanded by its owner worker.

``W`` workers each serve a contiguous run of partitions, i.e. one node range of the *worker book*
(``dataset.book.coarsen(runs)``, ``W + 1`` boundaries). Every exchanged hop is one collective
round on the :class:`~graphtrain.comm.Exchange`:

1. the requester splits its frontier by owner worker with the worker book (one ``searchsorted``),
2. the entries (IDs, stream keys, time bounds) go to their owners on a channel (one collective in
   the common case, see :mod:`graphtrain.comm.exchange`),
3. each owner samples them with its :class:`~graphtrain.sampling.hop.LocalHopSampler`, and
4. the answers travel back the same way and are put back into request order.

In training, the hop answers also carry the feature rows the requester will need
(:class:`DistributedHopSampler` with ``node_data``, a
:class:`~graphtrain.sampling.remote_features.DistributedNodeData`;
:mod:`graphtrain.sampling.feature_carry`): a batch of a 2-worker run then takes two collectives
(its last hop's requests and answers) instead of four, and its features none.

Because a hop entry's sample depends only on (graph, key, time bound, options), the
:class:`DistributedHopSampler` returns exactly what a single process holding the whole graph
returns for the same seeds and batch index. No worker ever loads another worker's structure.

The plain :class:`~graphtrain.sampling.hop.HopSampler` contract knows nothing of batches or
workers. What sampling *together* needs on top of it -- which seeds a worker owns, agreeing on
flags, marking a batch's start, and the first and last hop of a batch sampled differently -- is
:class:`CollectiveHopSampler`; :class:`~graphtrain.sampling.neighbor.NeighborSampler` and
:class:`~graphtrain.sampling.loader.NodeLoader` use those hooks only when their hop sampler is one.

**Collective discipline.** Every hop of a :class:`DistributedHopSampler` (and :meth:`agree_all`)
is a collective: all workers of the group must make the same calls in the same order (with
possibly empty inputs). The training loop guarantees that by giving every worker the same number
of batches. Use one exchange from one thread at a time (the loader's prefetch thread owns the
data-plane group while it runs).
"""
from __future__ import annotations

from abc import abstractmethod
from typing import Optional

import numpy as np

from graphtrain.comm.exchange import Exchange
from graphtrain.errors import ConfigError
from graphtrain.kernels.segments import reorder_segments
from graphtrain.partition.book import RangePartitionBook
from graphtrain.sampling.hop import HopOptions, HopResult, HopSampler, LocalHopSampler
from graphtrain.sampling.remote_features import DistributedNodeData, route

_NO_IDS = np.zeros(0, dtype=np.int64)


class CollectiveHopSampler(HopSampler):
    """A :class:`HopSampler` whose processes sample every batch together, hop by hop.

    :class:`~graphtrain.sampling.neighbor.NeighborSampler` calls :meth:`begin_batch` before a
    batch's first hop, :meth:`sample_own_hop` for a first hop whose seeds every process agreed it
    owns, :meth:`sample_final_hop` for the batch's last hop and :meth:`sample_hop` otherwise;
    :class:`~graphtrain.sampling.loader.NodeLoader` orders each epoch's seeds with :meth:`owns`
    and :meth:`agree_all`. Every variant returns what :meth:`sample_hop` returns.
    """

    @abstractmethod
    def owns(self, global_nodes: np.ndarray) -> np.ndarray:
        """bool ``[n]``: which nodes this process expands without asking anyone."""

    @abstractmethod
    def agree_all(self, flags: np.ndarray) -> np.ndarray:
        """Element-wise AND of a bool array over every process sampling together (a collective)."""

    def begin_batch(self) -> None:
        """Called before the first hop of every mini-batch (default: nothing)."""

    @abstractmethod
    def sample_final_hop(self, global_nodes: np.ndarray, keys: np.ndarray, node_time: Optional[np.ndarray],
                         options: HopOptions) -> HopResult:
        """:meth:`sample_hop` for a batch's last hop (same result); e.g. also fetch, in the same
        exchange, the features of the sources it samples."""

    @abstractmethod
    def sample_own_hop(self, global_nodes: np.ndarray, keys: np.ndarray, node_time: Optional[np.ndarray],
                       options: HopOptions) -> HopResult:
        """:meth:`sample_hop` for a frontier that every sampling process agreed (:meth:`agree_all`)
        holds only nodes it :meth:`owns`: no exchange needed. Same result."""


class DistributedHopSampler(CollectiveHopSampler):
    """A :class:`CollectiveHopSampler` whose frontier may hold any global node: entries go to their owner workers.

    Args:
        local: samples this worker's node range (``book.node_range(exchange.rank)``).
        book: the worker book (``W`` parts; ``dataset.book.coarsen(runs)``).
        exchange: the data-plane exchange of the ``W`` workers.
        node_data: this worker's :class:`DistributedNodeData` (with features) to carry features in
            the hop answers (see :mod:`graphtrain.sampling.feature_carry`), or None. Every worker
            must give one, or none.

    Per exchanged hop, two collectives (a third only when a part outgrew its channel's capacity):

    - requests, to each owner: ``[n_entries, n_ids, entries ([id, key] or [id, key, time] int64),
      ids]``, where ``ids`` -- at a batch's last hop, with features carried -- are the remote
      sources this worker sampled from its own entries (sampled before the exchange) that its
      feature cache lacks;
    - answers, to each requester (bytes): ``[n_rows, counts, sources, edge IDs, row IDs, rows]``.
      The rows (float32, none without features carried) are the features of the requested
      frontier nodes, of the asked-for ``ids`` and, at the last hop, of the sampled sources the
      owner holds -- each once, less the ones the requester caches.

    With two workers every node of a batch is then the worker's own, cached, or carried, so the
    batch's features need no exchange; with more, the sources one owner sampled that a third
    holds are fetched afterwards.
    """

    def __init__(self, local: LocalHopSampler, book: RangePartitionBook, exchange: Exchange,
                 node_data: Optional[DistributedNodeData] = None):
        if book.num_parts != exchange.world_size:
            raise ConfigError(f"worker book has {book.num_parts} parts for {exchange.world_size} workers")
        lo, hi = book.node_range(exchange.rank)
        g = local.graph
        if (g.node_start, g.node_stop) != (lo, hi):
            raise ConfigError(f"worker {exchange.rank} holds nodes [{g.node_start}, {g.node_stop}) but its range is [{lo}, {hi})")
        self.local = local
        self.book = book
        self.exchange = exchange
        self.node_data = node_data if node_data is not None and node_data.carry is not None else None

    @property
    def num_global_nodes(self) -> int:
        return self.book.num_nodes

    @property
    def concurrent_safe(self) -> bool:
        """Several workers: no (every hop is a collective, which must run in one order everywhere)."""
        return self.exchange.world_size == 1

    def check_options(self, options: HopOptions) -> None:
        self.local.check_options(options)

    def check_nodes(self, global_nodes: np.ndarray) -> None:
        """Every in-range node has an owner; nothing more to check."""

    def owns(self, global_nodes: np.ndarray) -> np.ndarray:
        """This worker's node range."""
        g = self.local.graph
        global_nodes = np.asarray(global_nodes)
        return (global_nodes >= g.node_start) & (global_nodes < g.node_stop)

    def agree_all(self, flags: np.ndarray) -> np.ndarray:
        """AND over the workers (one all-reduce of the ``False`` counts)."""
        flags = np.asarray(flags, dtype=bool)
        if self.exchange.world_size == 1:
            return flags
        return self.exchange.all_reduce_sum((~flags).astype(np.int64)) == 0

    def begin_batch(self) -> None:
        """Forget the feature rows carried for the previous batch."""
        if self.node_data is not None:
            self.node_data.carry.reset()

    def sample_own_hop(self, global_nodes, keys, node_time, options: HopOptions) -> HopResult:
        """Every worker expands its own frontier: no request or answer exchange at all."""
        return self.local.sample_hop(global_nodes, keys, node_time, options)

    def sample_hop(self, global_nodes, keys, node_time, options: HopOptions) -> HopResult:
        return self._exchange_hop(global_nodes, keys, node_time, options, final=False)

    def sample_final_hop(self, global_nodes, keys, node_time, options: HopOptions) -> HopResult:
        return self._exchange_hop(global_nodes, keys, node_time, options, final=True)

    def _exchange_hop(self, global_nodes, keys, node_time, options: HopOptions, final: bool) -> HopResult:
        ex = self.exchange
        global_nodes = np.asarray(global_nodes, dtype=np.int64)
        temporal = options.temporal is not None
        if temporal and node_time is None:
            raise ConfigError("temporal sampling needs a time bound for every frontier entry")
        if ex.world_size == 1:  # everything is local: no routing, no copies
            return self.local.sample_hop(global_nodes, keys, node_time, options)
        W, me = ex.world_size, ex.rank
        carry = self.node_data.carry if self.node_data is not None else None
        routing = route(self.book, global_nodes, W)
        o = routing.order
        cols = [global_nodes[o], np.asarray(keys, dtype=np.uint64)[o].view(np.int64)]
        if temporal:
            cols.append(np.asarray(node_time, dtype=np.int64)[o])
        entries = np.stack(cols, axis=1)  # [n, width] in owner-grouped order
        width = entries.shape[1]
        off = np.concatenate([[0], np.cumsum(routing.send_counts)])
        mine = entries[off[me] : off[me + 1]]
        own = None
        asked = [_NO_IDS] * W  # per owner: sources whose features this worker asks for beside its entries
        if carry is not None and final:  # own entries first: their remote sources go with the requests
            own = self._sample_entries(mine, temporal, options)
            asked = self.node_data.missing_by_owner(own.nbr)
        # requests
        counts = np.array([[off[j + 1] - off[j], asked[j].size] for j in range(W)], dtype=np.int64)
        requests = ex.exchange_messages([[counts[j], entries[off[j] : off[j + 1]], asked[j]] for j in range(W)],
                                        channel=f"hop requests, fanout {options.fanout}")
        # serve: every requester's entries (and this worker's own, unless sampled above) in one kernel call
        req_entries, req_ids = {}, {}
        for j in range(W):
            if j == me:
                continue
            ints = requests[j].view(np.int64)
            n_e, n_i = int(ints[0]), int(ints[1])
            req_entries[j] = ints[2 : 2 + n_e * width].reshape(n_e, width)
            req_ids[j] = ints[2 + n_e * width : 2 + n_e * width + n_i]
        serve = [req_entries[j] for j in range(W) if j != me]
        if own is None:
            serve.insert(0, mine)
        result = self._sample_entries(np.concatenate(serve) if len(serve) > 1 else serve[0], temporal, options)
        seg_off = np.concatenate([[0], np.cumsum([e.shape[0] for e in serve])])
        edge_off = np.concatenate([[0], np.cumsum(result.counts)])

        def segment(k):
            a, b = seg_off[k], seg_off[k + 1]
            return HopResult(result.counts[a:b], result.nbr[edge_off[a] : edge_off[b]], result.eid[edge_off[a] : edge_off[b]])

        first_request = 0 if own is not None else 1
        if own is None:
            own = segment(0)
        # answers: [n_rows, counts, sources, edge IDs, row IDs, rows], the rows gathered into the send buffer
        messages = [[] for _ in range(W)]
        for k, j in enumerate(jj for jj in range(W) if jj != me):
            hop = segment(first_request + k)
            row_ids = (self.node_data.carry_ids(j, req_entries[j][:, 0], hop.nbr if final else None, req_ids[j])
                       if carry is not None else _NO_IDS)
            messages[j] = [np.array([row_ids.size], dtype=np.int64), hop.counts, hop.nbr, hop.eid, row_ids]
            if row_ids.size:
                messages[j].append(self.node_data.rows_fill(row_ids))
        answers = ex.exchange_messages(messages, channel=f"hop answers, fanout {options.fanout}")
        g_counts, g_nbr, g_eid = [], [], []
        for j in range(W):
            if j == me:
                g_counts.append(own.counts)
                g_nbr.append(own.nbr)
                g_eid.append(own.eid)
                continue
            msg = answers[j]
            n_j = int(off[j + 1] - off[j])
            ints = msg.view(np.int64)  # every answer is padded to whole int64s
            n_rows = int(ints[0])
            c = ints[1 : 1 + n_j]
            e_j = int(c.sum())
            g_counts.append(c)
            g_nbr.append(ints[1 + n_j : 1 + n_j + e_j])
            g_eid.append(ints[1 + n_j + e_j : 1 + n_j + 2 * e_j])
            if n_rows:
                at = 1 + n_j + 2 * e_j
                row_ids = ints[at : at + n_rows]
                F = carry.num_features
                rows = msg[(at + n_rows) * 8 : (at + n_rows) * 8 + n_rows * F * 4].view(np.float32).reshape(n_rows, F)
                carry.add(row_ids, rows)
        if carry is not None and final:
            carry.complete = W == 2  # see the class docstring
        return _reorder_csr(o, np.concatenate(g_counts), np.concatenate(g_nbr), np.concatenate(g_eid))

    def _sample_entries(self, entries: np.ndarray, temporal: bool, options: HopOptions) -> HopResult:
        """The local kernel over ``[id, key(, time)]`` int64 rows (all of this worker's range)."""
        return self.local.sample_hop(entries[:, 0], entries[:, 1].view(np.uint64), entries[:, 2] if temporal else None,
                                     options)


def _reorder_csr(order: np.ndarray, counts_g: np.ndarray, nbr_g: np.ndarray, eid_g: np.ndarray) -> HopResult:
    """Segments listed in grouped order (entry ``order[k]`` at position ``k``) -> request order."""
    return HopResult(*reorder_segments(order, counts_g, nbr_g, eid_g))
