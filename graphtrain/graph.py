"""The graph type samplers consume: the in-edges of a contiguous range of destination nodes (CSC).

One :class:`CSCGraph` is one partition of a dataset (memory-mapped from disk, see
:mod:`graphtrain.partition.format`), a contiguous run of partitions merged for one worker, or a
whole in-memory graph (``node_start == 0``, all nodes local).

Invariants (checked by :meth:`CSCGraph.validate`):

- local destination ``v`` (global ID ``node_start + v``) has in-edges at positions
  ``indptr[v]:indptr[v + 1]``; the global ID of the edge at position ``i`` is ``edge_start + i``;
- ``src[i]`` is the **global** source ID, ``0 <= src[i] < num_global_nodes``; sources may live in
  other partitions;
- every ``edge_attrs[name]`` has one value per edge, aligned with ``src``;
- if ``time_sorted``, ``edge_attrs["time"]`` is non-decreasing within each destination's segment
  (so "edges with time <= t" is a prefix, found by binary search).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Dict, Optional, Tuple

import numpy as np

from graphtrain.errors import ConfigError

TIME = "time"
WEIGHT = "weight"
_INDEX_DTYPES = (np.dtype(np.int32), np.dtype(np.int64))
REVERSE = "reverse"  # int8 edge column of a dataset stored with both directions: 0 as given, 1 the added reverse copy


@dataclass
class CSCGraph:
    """In-edges of destination nodes ``[node_start, node_start + num_nodes)``, CSC by local destination.

    Attributes:
        indptr: int64 (or int32, compact storage) ``[num_nodes + 1]`` offsets into ``src``; ``indptr[0] == 0``.
        src: int64 (or int32) ``[num_edges]`` global source node ID of each in-edge.
        node_start: global ID of local node 0.
        edge_start: global ID of local edge 0.
        num_global_nodes: number of nodes in the whole graph (bound on ``src``).
        edge_attrs: per-edge columns, e.g. ``"time"`` (int64) and ``"weight"`` (float), ``[num_edges]``;
            an integer column of a dataset may be a :class:`graphtrain.columns.OffsetColumn`
            (int32 offsets on disk; indexing it returns the int64 values).
        time_sorted: whether each destination's in-edges are sorted by ``edge_attrs["time"]``.
    """

    indptr: np.ndarray
    src: np.ndarray
    node_start: int = 0
    edge_start: int = 0
    num_global_nodes: Optional[int] = None
    edge_attrs: Dict[str, np.ndarray] = field(default_factory=dict)
    time_sorted: bool = False

    def __post_init__(self):
        if self.num_global_nodes is None:
            self.num_global_nodes = int(self.node_start) + self.num_nodes
        self.node_start = int(self.node_start)
        self.edge_start = int(self.edge_start)
        self.num_global_nodes = int(self.num_global_nodes)

    @property
    def num_nodes(self) -> int:
        """Number of local destination nodes."""
        return int(self.indptr.shape[0] - 1)

    @property
    def num_edges(self) -> int:
        return int(self.src.shape[0])

    @property
    def node_stop(self) -> int:
        return self.node_start + self.num_nodes

    @property
    def time(self) -> Optional[np.ndarray]:
        return self.edge_attrs.get(TIME)

    @property
    def weight(self) -> Optional[np.ndarray]:
        return self.edge_attrs.get(WEIGHT)

    def in_degree(self) -> np.ndarray:
        """int64 ``[num_nodes]`` in-degree of each local node."""
        return np.diff(self.indptr).astype(np.int64, copy=False)

    def dst(self) -> np.ndarray:
        """Global destination ID of each edge, int64 ``[num_edges]`` (materialised)."""
        return np.repeat(np.arange(self.node_start, self.node_stop, dtype=np.int64), self.in_degree())

    def edge_ids(self) -> np.ndarray:
        """Global edge ID of each edge, int64 ``[num_edges]`` (materialised)."""
        return np.arange(self.edge_start, self.edge_start + self.num_edges, dtype=np.int64)

    def validate(self) -> "CSCGraph":
        """Check the invariants in the module docstring; raise :class:`ConfigError` on the first broken one."""
        indptr, src = self.indptr, self.src
        if indptr.ndim != 1 or indptr.shape[0] < 1 or indptr.dtype not in _INDEX_DTYPES:
            raise ConfigError("indptr must be a 1-D int32 or int64 array of length num_nodes + 1")
        if src.ndim != 1 or src.dtype not in _INDEX_DTYPES:
            raise ConfigError("src must be a 1-D int32 or int64 array")
        if indptr[0] != 0 or indptr[-1] != src.shape[0] or np.any(np.diff(indptr) < 0):
            raise ConfigError("indptr must start at 0, be non-decreasing and end at num_edges")
        if src.size and (src.min() < 0 or src.max() >= self.num_global_nodes):
            raise ConfigError(f"source IDs must lie in [0, {self.num_global_nodes})")
        if not 0 <= self.node_start <= self.num_global_nodes - self.num_nodes:
            raise ConfigError("node range [node_start, node_start + num_nodes) exceeds num_global_nodes")
        for name, col in self.edge_attrs.items():
            if col.shape[0] != src.shape[0]:
                raise ConfigError(f"edge attribute {name!r} has {col.shape[0]} values for {src.shape[0]} edges")
        if self.time_sorted:
            t = self.edge_attrs.get(TIME)
            if t is None:
                raise ConfigError("time_sorted is set but there is no 'time' edge attribute")
            if t.size > 1:
                decreasing = np.diff(t) < 0  # entry i compares edge i + 1 with edge i
                starts = indptr[1:-1]
                starts = starts[(starts > 0) & (starts < t.size)]
                decreasing[starts - 1] = False  # time may drop where a new destination's segment starts
                if decreasing.any():
                    raise ConfigError("edge times are not sorted within each destination's in-edges")
        return self

    @classmethod
    def from_edges(
        cls,
        src,
        dst,
        num_nodes: int,
        edge_attrs: Optional[Dict[str, np.ndarray]] = None,
    ) -> Tuple["CSCGraph", np.ndarray]:
        """Build an in-memory whole graph (one partition) from global edge arrays.

        Edges are ordered by ``(dst, time, src)`` when a ``"time"`` attribute is given (then
        ``time_sorted`` is set), else by ``(dst, src)``; ties keep input order.

        Args:
            src, dst: int arrays ``[E]`` with values in ``[0, num_nodes)``.
            num_nodes: N.
            edge_attrs: optional per-edge columns ``[E]``.

        Returns:
            ``(graph, perm)``: ``perm[i]`` is the input index of the edge now at position (= edge ID) ``i``.
        """
        src = np.asarray(src, dtype=np.int64)
        dst = np.asarray(dst, dtype=np.int64)
        if src.shape != dst.shape or src.ndim != 1:
            raise ConfigError(f"src and dst must be 1-D arrays of equal length, got {src.shape} and {dst.shape}")
        if src.size and (min(src.min(), dst.min()) < 0 or max(src.max(), dst.max()) >= num_nodes):
            raise ConfigError(f"node IDs must lie in [0, {num_nodes})")
        attrs = {k: np.asarray(v) for k, v in (edge_attrs or {}).items()}
        keys = [src]
        if TIME in attrs:
            keys.append(attrs[TIME])
        keys.append(dst)
        perm = np.lexsort(keys)  # last key is primary: dst, then time, then src; stable
        counts = np.bincount(dst, minlength=num_nodes)
        indptr = np.zeros(num_nodes + 1, dtype=np.int64)
        np.cumsum(counts, out=indptr[1:])
        graph = cls(
            indptr=indptr,
            src=src[perm],
            num_global_nodes=num_nodes,
            edge_attrs={k: v[perm] for k, v in attrs.items()},
            time_sorted=TIME in attrs,
        )
        return graph, perm
