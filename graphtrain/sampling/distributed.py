"""Distributed sampling and feature fetch: the frontier and node IDs go to their owners in bulk.

``W`` workers each serve a contiguous run of partitions, i.e. one node range of the *worker book*
(``dataset.book.coarsen(runs)``, ``W + 1`` boundaries). Every remote access is one collective
exchange between all workers (:class:`Exchange`, ``torch.distributed.all_to_all_single`` on a gloo
group):

1. the requester splits its IDs by owner worker with the worker book (one ``searchsorted``),
2. the payloads (IDs, stream keys, time bounds) are exchanged: requests on a *channel* in one
   collective, each worker's part padded to a capacity both ends derive from the channel's past
   sizes, with the true count in a header (a second collective only when a part did not fit:
   :meth:`Exchange.all_to_all`); answers whose sizes the requester knows -- one feature row per ID
   -- need no count at all,
3. each owner answers from what it holds -- :class:`~graphtrain.sampling.hop.LocalHopSampler` for
   a hop, :class:`~graphtrain.sampling.features.LocalNodeData` for features and labels -- and
4. the answers travel back the same way and are put back into request order.

In training, the hop answers also carry the feature rows the requester will need
(:class:`DistributedHopSampler` with ``node_data``; :mod:`graphtrain.sampling.feature_carry`): a
batch of a 2-worker run then takes two collectives (its last hop's requests and answers) instead of
four, and its features none.

Because a hop entry's sample depends only on (graph, key, time bound, options), the
:class:`DistributedHopSampler` returns exactly what a single process holding the whole graph
returns for the same seeds and batch index; :class:`DistributedNodeData` likewise returns the same
rows. No worker ever loads another worker's structure or features.

**Collective discipline.** Every call of :meth:`DistributedHopSampler.sample_hop`,
:meth:`DistributedNodeData.features` / ``labels`` and :func:`fetch_node_rows` is a collective: all
workers of the group must make the same calls in the same order (with possibly empty inputs). The
training loop guarantees that by giving every worker the same number of batches. Use one exchange
from one thread at a time (the loader's prefetch thread owns the data-plane group while it runs).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable, List, Optional, Sequence, Tuple

import numpy as np

from graphtrain.errors import ConfigError
from graphtrain.graph import CSCGraph
from graphtrain.kernels.rows import IdIndex, copy_cached_rows, distinct_absent
from graphtrain.kernels.segments import reorder_segments
from graphtrain.partition.book import RangePartitionBook
from graphtrain.sampling.feature_carry import FeatureCarry
from graphtrain.sampling.features import LocalNodeData, NodeDataSource, group_by_owner
from graphtrain.sampling.hop import HopOptions, HopResult, HopSampler, LocalHopSampler


@dataclass
class ExchangeStats:
    """Traffic of one :class:`Exchange` (bytes to/from *other* workers; a worker's own share is not counted).

    Attributes:
        calls: number of all-to-all payload exchanges (count exchanges not included).
        bytes_sent: payload bytes sent to other workers (a channel's padding and headers included).
        bytes_received: payload bytes received from other workers (likewise).
        overflows: channel exchanges that needed a second collective (a part over its capacity).
    """

    calls: int = 0
    bytes_sent: int = 0
    bytes_received: int = 0
    overflows: int = 0

    def as_dict(self) -> dict:
        return {"calls": self.calls, "bytes_sent": self.bytes_sent, "bytes_received": self.bytes_received,
                "overflows": self.overflows}


class Exchange:
    """Variable-size all-to-all of NumPy rows among the ``W`` workers of a torch.distributed group.

    Args:
        rank, world_size: this worker's rank and the number of workers.
        group: a torch.distributed process group (gloo: the payloads are host arrays); None for the
            default group. With ``world_size == 1`` torch.distributed is not used at all.
    """

    def __init__(self, rank: int, world_size: int, group=None):
        if world_size < 1 or not 0 <= rank < world_size:
            raise ConfigError(f"rank {rank} is not in [0, {world_size})")
        self.rank = int(rank)
        self.world_size = int(world_size)
        self.group = group
        self.stats = ExchangeStats()
        self._channels: dict = {}  # channel name -> _ChannelCaps

    def _all_to_all_flat(self, send, send_sizes: np.ndarray, recv_sizes: np.ndarray):
        import torch
        import torch.distributed as dist

        out = torch.empty(int(recv_sizes.sum()), dtype=send.dtype)
        dist.all_to_all_single(out, send, output_split_sizes=recv_sizes.tolist(),
                               input_split_sizes=send_sizes.tolist(), group=self.group)
        return out

    def exchange_counts(self, send_counts: np.ndarray) -> np.ndarray:
        """int64 ``[W]``: ``result[j]`` is what worker ``j`` put at this worker's index of its ``send_counts``."""
        send_counts = np.ascontiguousarray(send_counts, dtype=np.int64)
        if self.world_size == 1:
            return send_counts.copy()
        import torch
        import torch.distributed as dist

        out = torch.empty(self.world_size, dtype=torch.int64)
        dist.all_to_all_single(out, torch.from_numpy(send_counts), group=self.group)
        return out.numpy()

    def all_to_all(self, rows: np.ndarray, send_counts: np.ndarray,
                   channel: Optional[str] = None) -> Tuple[np.ndarray, np.ndarray]:
        """Send ``rows[offsets[j]:offsets[j+1]]`` to worker ``j`` (``offsets = cumsum(send_counts)``).

        Args:
            rows: ``[n, ...]`` rows grouped by destination worker, ascending (int64, float32, ...).
            send_counts: int64 ``[W]`` rows for each worker.
            channel: None: exchange the counts, then the rows (two collectives). A name (the same
                on every worker for the same call, e.g. ``"feature requests"``): one collective in the
                common case -- each part travels padded to a capacity that sender and receiver
                both derive from the sizes this channel carried before, behind a header with the
                true count and whether the sender overflowed any capacity; when any worker did,
                every worker knows it from the headers and the rows beyond the capacities follow
                in a second collective of sizes everyone now knows. The received rows are the
                same either way.

        Returns:
            ``(received, recv_counts)``: rows from worker 0, then worker 1, ...; ``recv_counts[j]``
            rows came from worker ``j``.
        """
        if channel is None or self.world_size == 1:
            return self.all_to_all_sized(rows, send_counts, None)
        return self._all_to_all_channel(rows, send_counts, channel)

    def _all_to_all_channel(self, rows: np.ndarray, send_counts: np.ndarray, channel: str):
        send_counts = np.ascontiguousarray(send_counts, dtype=np.int64)
        rows = np.ascontiguousarray(rows)
        tail = rows.shape[1:]
        row_bytes = rows.dtype.itemsize * int(np.prod(tail, dtype=np.int64))
        me, W = self.rank, self.world_size
        raw = rows.reshape(-1).view(np.uint8)
        offsets = np.concatenate([[0], np.cumsum(send_counts)]) * row_bytes
        parts = self._channel_exchange([[raw[offsets[j] : offsets[j + 1]]] for j in range(W)], row_bytes, channel)
        parts[me] = raw[offsets[me] : offsets[me + 1]]  # this worker's own part never leaves it
        recv_counts = np.array([part.size // row_bytes for part in parts], dtype=np.int64)
        received = np.concatenate(parts)
        return received.view(rows.dtype).reshape((-1,) + tail), recv_counts

    def exchange_messages(self, messages: Sequence[Sequence], channel: str) -> List[np.ndarray]:
        """Send each other worker ``j`` the message ``messages[j]`` on a channel; return what each sent here.

        The pieces of a message are written straight into the collective's send buffer, and the
        messages received are views of its receive buffer: no copy on either side but the
        collective's own (a part that outgrew its channel's capacity is the exception: see
        :meth:`all_to_all`, whose channels these are).

        Args:
            messages: per worker ``j``, a list of pieces -- contiguous arrays (their bytes) or
                :class:`MessageFill` (written in place) -- sent to ``j`` in that order;
                ``messages[rank]`` is ignored. Each message travels padded with zeros to whole
                8-byte words.
            channel: the channel's name (the same on every worker for the same call).

        Returns:
            Per worker ``j``, uint8 ``[8 k]``: the message ``j`` sent to this worker, padding
            included, starting 8-aligned (so ``.view(np.int64)`` works); empty for this worker.
        """
        if self.world_size == 1:
            return [_NO_BYTES]
        padded = []
        for j, pieces in enumerate(messages):
            pieces = [] if j == self.rank else list(pieces)
            pad = -sum(_piece_bytes(p) for p in pieces) % 8
            padded.append(pieces + [np.zeros(pad, np.uint8)] if pad else pieces)
        return self._channel_exchange(padded, 8, channel)

    def _channel_exchange(self, messages: Sequence[Sequence], unit: int, channel: str) -> List[np.ndarray]:
        """The channel protocol of :meth:`all_to_all` for byte messages: ``messages[j]`` (pieces, as
        in :meth:`exchange_messages`, of ``unit``-byte multiples in all) to worker ``j``; returns per
        worker the uint8 bytes received (views of the receive buffer unless a part overflowed; empty
        for this worker). Capacities count ``unit``-byte rows."""
        import torch

        caps = self._channels.get(channel)
        if caps is None or caps.row_bytes != unit:
            caps = self._channels[channel] = _ChannelCaps(self.world_size, unit)
        me, W = self.rank, self.world_size
        nbytes = np.array([0 if j == me else sum(_piece_bytes(p) for p in messages[j]) for j in range(W)], dtype=np.int64)
        if np.any(nbytes % unit):
            raise ValueError(f"channel {channel!r}: message sizes {nbytes.tolist()} are not multiples of {unit} bytes")
        send_counts = nbytes // unit
        first = np.minimum(send_counts, caps.send)
        over = send_counts > first
        overflow_here = bool(over.any())
        send_sizes = _HEADER + caps.send * unit
        recv_sizes = _HEADER + caps.recv * unit
        send_sizes[me] = recv_sizes[me] = 0
        message = np.empty(int(send_sizes.sum()), dtype=np.uint8)
        at_out = np.concatenate([[0], np.cumsum(send_sizes)])
        rests = []  # the bytes beyond the capacities, in destination order
        for j in range(W):
            if j == me:
                continue
            at = int(at_out[j])
            message[at : at + _HEADER].view(np.int64)[:] = (send_counts[j], overflow_here)
            if over[j]:  # written whole elsewhere, then split (rare)
                body = np.empty(int(nbytes[j]), dtype=np.uint8)
                _write_pieces(body, messages[j])
                n = int(first[j]) * unit
                message[at + _HEADER : at + _HEADER + n] = body[:n]
                rests.append(body[n:])
            else:
                _write_pieces(message[at + _HEADER : at + _HEADER + int(nbytes[j])], messages[j])
        out = self._all_to_all_flat(torch.from_numpy(message), send_sizes, recv_sizes).numpy()
        recv_counts = np.zeros(W, dtype=np.int64)
        overflow_anywhere = overflow_here
        starts = np.concatenate([[0], np.cumsum(recv_sizes)])
        for j in range(W):
            if j != me:
                count, flag = out[starts[j] : starts[j] + _HEADER].view(np.int64)
                recv_counts[j] = count
                overflow_anywhere |= bool(flag)
        first_in = np.minimum(recv_counts, caps.recv)
        rest_out = (send_counts - first) * unit
        rest_in = (recv_counts - first_in) * unit
        rest_in[me] = 0
        rest = None
        if overflow_anywhere:  # every worker saw some header flag: all take part in the second collective
            rest_msg = np.concatenate(rests) if rests else np.zeros(0, np.uint8)
            rest = self._all_to_all_flat(torch.from_numpy(rest_msg), rest_out, rest_in).numpy()
            self.stats.overflows += 1
        parts, rest_at = [], 0
        for j in range(W):
            if j == me:
                parts.append(_NO_BYTES)
                continue
            a = int(starts[j]) + _HEADER
            head = out[a : a + int(first_in[j]) * unit]
            m = int(rest_in[j])
            parts.append(np.concatenate([head, rest[rest_at : rest_at + m]]) if m else head)
            rest_at += m
        self.stats.calls += 1
        self.stats.bytes_sent += int(send_sizes.sum() + rest_out.sum())
        self.stats.bytes_received += int(recv_sizes.sum() + rest_in.sum())
        caps.update(send_counts, recv_counts)
        return parts

    def all_to_all_sized(self, rows: np.ndarray, send_counts: np.ndarray, recv_counts: Optional[np.ndarray]):
        """:meth:`all_to_all` when the receiver already knows ``recv_counts`` (e.g. answers to its own
        requests): one collective instead of two. ``recv_counts=None`` exchanges them first."""
        send_counts = np.ascontiguousarray(send_counts, dtype=np.int64)
        rows = np.ascontiguousarray(rows)
        if recv_counts is None:
            recv_counts = self.exchange_counts(send_counts)
        recv_counts = np.ascontiguousarray(recv_counts, dtype=np.int64)
        if self.world_size == 1:
            return rows, recv_counts
        import torch

        width = int(np.prod(rows.shape[1:], dtype=np.int64))
        send = torch.from_numpy(rows.reshape(-1))
        out = self._all_to_all_flat(send, send_counts * width, recv_counts * width)
        received = out.numpy().reshape((-1,) + rows.shape[1:])
        itemsize = rows.dtype.itemsize * width
        me = self.rank
        self.stats.calls += 1
        self.stats.bytes_sent += int(send_counts.sum() - send_counts[me]) * itemsize
        self.stats.bytes_received += int(recv_counts.sum() - recv_counts[me]) * itemsize
        return received, recv_counts

    def all_reduce_sum(self, values: np.ndarray) -> np.ndarray:
        """Element-wise sum over workers of a small int64 or float64 array."""
        values = np.ascontiguousarray(values)
        if self.world_size == 1:
            return values.copy()
        import torch
        import torch.distributed as dist

        t = torch.from_numpy(values.copy())
        dist.all_reduce(t, group=self.group)
        return t.numpy()

    def all_gather_sizes(self, n: int) -> np.ndarray:
        """int64 ``[W]``: the ``n`` of every worker."""
        mine = np.zeros(self.world_size, dtype=np.int64)
        mine[self.rank] = n
        return self.all_reduce_sum(mine)

    def gather_rows(self, rows: np.ndarray, root: int = 0) -> Optional[np.ndarray]:
        """All workers' ``rows`` concatenated by rank at ``root`` (None elsewhere)."""
        counts = np.zeros(self.world_size, dtype=np.int64)
        counts[root] = rows.shape[0]
        received, _ = self.all_to_all(rows, counts)
        return received if self.rank == root else None


_HEADER = 16  # bytes before each part of a channel exchange: int64 true count, int64 sender overflowed
_NO_BYTES = np.zeros(0, dtype=np.uint8)


@dataclass(frozen=True)
class MessageFill:
    """A piece of an :meth:`Exchange.exchange_messages` message written in place: ``write(buf)``
    fills ``buf``, uint8 ``[nbytes]``, a view of the collective's send buffer (8-aligned when the
    pieces before it add up to whole 8-byte words)."""

    nbytes: int
    write: Callable[[np.ndarray], None]


def _piece_bytes(piece) -> int:
    return int(piece.nbytes)


def _write_pieces(body: np.ndarray, pieces) -> None:
    """The pieces' bytes one after the other into ``body`` (uint8, exactly their size)."""
    at = 0
    for piece in pieces:
        if isinstance(piece, MessageFill):
            piece.write(body[at : at + piece.nbytes])
            at += piece.nbytes
        else:
            b = np.ascontiguousarray(piece).reshape(-1).view(np.uint8)
            body[at : at + b.size] = b
            at += b.size


class _ChannelCaps:
    """Capacities (rows) of one exchange channel: ``send[j]`` of this worker's parts to worker ``j``
    and ``recv[j]`` of worker ``j``'s parts to this one.

    Invariant: this worker's ``send[j]`` equals worker ``j``'s ``recv[me]``. Both start at 0 and are
    moved by :meth:`update` with the true counts of each exchange, which both ends know afterwards
    (the sender sent them, the receiver read them from the header), so they stay equal without any
    message. A capacity grows to 1.5x a count that did not fit and otherwise decays by 1/8 per
    exchange towards 1.5x the count (plus 16 rows), so padding stays bounded and overflows rare.
    """

    def __init__(self, world_size: int, row_bytes: int):
        self.row_bytes = row_bytes
        self.send = np.zeros(world_size, dtype=np.int64)
        self.recv = np.zeros(world_size, dtype=np.int64)

    @staticmethod
    def _next(cap: np.ndarray, count: np.ndarray) -> np.ndarray:
        wanted = count + count // 2 + 16
        return np.where(count > cap, wanted, np.maximum(wanted, cap - cap // 8))

    def update(self, send_counts: np.ndarray, recv_counts: np.ndarray) -> None:
        self.send = self._next(self.send, send_counts)
        self.recv = self._next(self.recv, recv_counts)


@dataclass
class _Routing:
    """Where each requested ID went: owners ascending, as :func:`split_by_owner` grouped them."""

    order: np.ndarray  # int64 [n] request positions in owner-grouped order
    send_counts: np.ndarray  # int64 [W]


def _route(book: RangePartitionBook, ids: np.ndarray, world_size: int) -> _Routing:
    """Group IDs by owner worker: the same grouping as :func:`split_by_owner`."""
    return _Routing(*group_by_owner(book.node_part(ids), world_size))


def _scatter_back(routing: _Routing, grouped: np.ndarray) -> np.ndarray:
    """Rows answered in owner-grouped order -> rows in request order."""
    out = np.empty_like(grouped)
    out[routing.order] = grouped
    return out


class DistributedHopSampler(HopSampler):
    """A :class:`HopSampler` whose frontier may hold any global node: entries go to their owner workers.

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
                 node_data: Optional["DistributedNodeData"] = None):
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
        return self.local.owns(global_nodes)

    def agree_all(self, flags: np.ndarray) -> np.ndarray:
        """AND over the workers (one all-reduce of the ``False`` counts)."""
        flags = np.asarray(flags, dtype=bool)
        if self.exchange.world_size == 1:
            return flags
        return self.exchange.all_reduce_sum((~flags).astype(np.int64)) == 0

    def begin_batch(self) -> None:
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
        routing = _route(self.book, global_nodes, W)
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


_NO_IDS = np.zeros(0, dtype=np.int64)


def _reorder_csr(order: np.ndarray, counts_g: np.ndarray, nbr_g: np.ndarray, eid_g: np.ndarray) -> HopResult:
    """Segments listed in grouped order (entry ``order[k]`` at position ``k``) -> request order."""
    return HopResult(*reorder_segments(order, counts_g, nbr_g, eid_g))


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
                routing = _route(book, ids, exchange.world_size)
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

    def rows_fill(self, ids: np.ndarray) -> "MessageFill":
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
    routing = _route(book, ids, exchange.world_size)
    requests, recv_counts = exchange.all_to_all(ids[routing.order], routing.send_counts, channel)
    answers = np.asarray(serve(requests), dtype=dtype)
    answers = np.ascontiguousarray(answers).reshape((requests.shape[0],) + tuple(row_shape))
    back, _ = exchange.all_to_all_sized(answers, recv_counts, routing.send_counts)  # one answer per request
    return _scatter_back(routing, back)


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


# -- a worker's share of a dataset -------------------------------------------------------------------
def merge_graphs(graphs: Sequence[CSCGraph]) -> CSCGraph:
    """Consecutive partitions' graphs as one graph of their merged node range.

    A single graph is returned as is (still memory-mapped); several are concatenated in memory.
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
    indptr = [np.zeros(1, dtype=np.int64)]
    base = 0
    for g in graphs:
        indptr.append(np.asarray(g.indptr[1:], dtype=np.int64) + base)
        base += g.num_edges
    return CSCGraph(
        indptr=np.concatenate(indptr),
        src=np.concatenate([np.asarray(g.src) for g in graphs]),
        node_start=graphs[0].node_start,
        edge_start=graphs[0].edge_start,
        num_global_nodes=graphs[0].num_global_nodes,
        edge_attrs={k: np.concatenate([np.asarray(g.edge_attrs[k]) for g in graphs]) for k in names},
        time_sorted=all(g.time_sorted for g in graphs),
    )


@dataclass
class WorkerShard:
    """What one worker opens of a dataset: its run of partitions and the views built on them.

    Attributes:
        rank: the worker's index; it serves partitions ``[runs[rank], runs[rank + 1])``.
        runs: int64 ``[W + 1]`` partition boundaries of the workers.
        book: the worker book (``dataset.book.coarsen(runs)``).
        graph: in-edges of the worker's nodes (merged range).
        node_data: memory-mapped node tables of the worker's partitions.
        exchange: the data-plane exchange.
    """

    rank: int
    runs: np.ndarray
    book: RangePartitionBook
    graph: CSCGraph
    node_data: LocalNodeData
    exchange: Exchange
    parts: List[int] = field(default_factory=list)

    @property
    def node_range(self) -> Tuple[int, int]:
        return self.book.node_range(self.rank)

    def hop_sampler(self, backend: str = "auto", node_data: Optional[DistributedNodeData] = None) -> DistributedHopSampler:
        """The worker's hop sampler; with ``node_data`` (from :meth:`distributed_node_data`; on every
        worker or none) its hop answers carry the batch's features."""
        return DistributedHopSampler(LocalHopSampler(self.graph, backend), self.book, self.exchange, node_data)

    def distributed_node_data(self, num_features: Optional[int], has_labels: bool,
                              cache_nodes: int = 0) -> DistributedNodeData:
        """Node data of every node; ``cache_nodes``: remote nodes whose features to cache (a collective)."""
        cached = hot_remote_nodes(self.graph, cache_nodes) if cache_nodes and self.exchange.world_size > 1 else None
        if self.exchange.world_size > 1 and num_features is not None:  # every worker takes part in the cache fill
            cached = np.zeros(0, np.int64) if cached is None else cached
        return DistributedNodeData(self.node_data, self.book, self.exchange, num_features, has_labels, cached)


def open_worker_shard(dataset, runs, exchange: Exchange, backend: str = "auto") -> WorkerShard:
    """Open worker ``exchange.rank``'s run of partitions of ``dataset`` (memory-mapped).

    Args:
        dataset: an opened :class:`~graphtrain.partition.format.Dataset`.
        runs: ``W + 1`` partition boundaries (``dataset.book.contiguous_runs(W)``).
        exchange: the data-plane exchange (its ``world_size`` is ``W``).
    """
    runs = np.asarray(runs, dtype=np.int64)
    if runs.size != exchange.world_size + 1:
        raise ConfigError(f"{runs.size - 1} partition runs for {exchange.world_size} workers")
    book = dataset.book.coarsen(runs)
    parts = list(range(int(runs[exchange.rank]), int(runs[exchange.rank + 1])))
    graph = merge_graphs([dataset.graph(p) for p in parts])
    node_data = LocalNodeData.from_dataset(dataset, parts, backend=backend)
    return WorkerShard(exchange.rank, runs, book, graph, node_data, exchange, parts)
