"""The collective layer: :class:`Exchange`, a variable-size all-to-all of NumPy rows among ``W`` workers.

Used by the sampling data plane (:mod:`graphtrain.sampling.distributed_sampler`,
:mod:`graphtrain.sampling.remote_features`) and by training (:mod:`graphtrain.train`) for its
small reductions and gathers. It wraps ``torch.distributed`` collectives on one process group
(gloo: the payloads are host arrays); with ``W == 1`` torch.distributed is not used at all.

**Channels.** Exchanges repeated with similar sizes (once per batch, say) name a *channel*: each
worker's part travels padded to a capacity that sender and receiver both derive from the
channel's past sizes (:class:`_ChannelCaps`), behind a header with the true count, so the common
case is one collective; a second follows only when some part did not fit
(:meth:`Exchange.all_to_all`). :meth:`Exchange.exchange_messages` sends byte messages built from
pieces -- arrays, or :class:`MessageFill` pieces written straight into the send buffer -- on the
same channels. Answers whose sizes the receiver already knows need no count at all
(:meth:`Exchange.all_to_all_sized`).

**Collective discipline.** Every call is a collective: all workers of the group must make the same
calls in the same order (with possibly empty inputs), from one thread at a time.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, List, Optional, Sequence, Tuple

import numpy as np

from graphtrain.errors import ConfigError


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
