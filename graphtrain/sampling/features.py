"""Node features and labels for a batch of global node IDs, fetched through the range partition book.

:func:`split_by_owner` groups IDs by the partition that owns them (one ``searchsorted`` over the
book's ``P + 1`` boundaries) -- the same split a distributed fetch uses to build its all-to-all
requests. :class:`LocalNodeData` serves the partitions this process holds (memory-mapped
``node_feat.npy`` / ``node_label.npy``, or in-memory arrays of a whole graph) and refuses IDs owned
by partitions it does not hold.
"""
from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import Dict, Iterable, Optional, Tuple

import numpy as np

from graphtrain.errors import ConfigError
from graphtrain.kernels import get_backend
from graphtrain.partition.book import RangePartitionBook


@dataclass
class OwnerSplit:
    """IDs grouped by owning partition.

    Attributes:
        parts: int64 ``[Q]`` partitions owning at least one ID, ascending.
        offsets: int64 ``[Q + 1]``; the IDs of ``parts[q]`` are ``ids[order[offsets[q]:offsets[q + 1]]]``.
        order: int64 ``[n]`` positions into the input, grouped by owner (stable within an owner).
        local: int64 ``[n]`` local ID (within its owner) of ``ids[order[i]]``.
    """

    parts: np.ndarray
    offsets: np.ndarray
    order: np.ndarray
    local: np.ndarray


def group_by_owner(owner: np.ndarray, num_owners: int) -> Tuple[np.ndarray, np.ndarray]:
    """``(order, counts)``: int64 positions that list ``owner`` grouped ascending, stable within an
    owner (a radix sort of 16-bit keys; no sort at all when one owner holds every entry), and
    int64 ``[num_owners]`` entries per owner."""
    counts = np.bincount(owner, minlength=num_owners).astype(np.int64)
    if np.count_nonzero(counts) <= 1:  # one owner: already grouped
        return np.arange(owner.size, dtype=np.int64), counts
    keys = owner.astype(np.int16) if num_owners < 2**15 else owner  # NumPy radix-sorts 16-bit keys
    return np.argsort(keys, kind="stable").astype(np.int64), counts


def split_by_owner(book: RangePartitionBook, ids) -> OwnerSplit:
    """Group global node IDs by owner partition (raises ConfigError for IDs out of range)."""
    part, local = book.node_to_local(ids)
    order, counts = group_by_owner(part, book.num_parts)
    parts = np.flatnonzero(counts).astype(np.int64)
    offsets = np.zeros(parts.size + 1, dtype=np.int64)
    np.cumsum(counts[parts], out=offsets[1:])
    return OwnerSplit(parts, offsets, order, local if parts.size <= 1 else local[order])


class NodeDataSource(ABC):
    """Features and labels of nodes by global ID."""

    @property
    def concurrent_safe(self) -> bool:
        """Whether several threads may call this at once (True unless a subclass says otherwise)."""
        return True

    @property
    @abstractmethod
    def num_features(self) -> Optional[int]:
        """F, or None when there are no features."""

    @abstractmethod
    def features(self, ids) -> Optional[np.ndarray]:
        """float32 ``[len(ids), F]`` features of the given global node IDs (None without features)."""

    @abstractmethod
    def labels(self, ids) -> Optional[np.ndarray]:
        """int64 ``[len(ids)]`` labels (-1 = unknown) of the given global node IDs (None without labels)."""


class LocalNodeData(NodeDataSource):
    """Node tables of the partitions held by this process.

    Args:
        book: the dataset's range partition book.
        features: partition -> float32 ``[n_p, F]`` table (possibly memory-mapped); may be empty.
        labels: partition -> int64 ``[n_p]`` table; may be empty.
        backend: kernel backend used for the row gather.
    """

    def __init__(
        self,
        book: RangePartitionBook,
        features: Optional[Dict[int, np.ndarray]] = None,
        labels: Optional[Dict[int, np.ndarray]] = None,
        backend: str = "auto",
    ):
        self.book = book
        self._features = dict(features or {})
        self._labels = dict(labels or {})
        self._kernels = get_backend(backend)
        widths = {t.shape[1] for t in self._features.values()}
        if len(widths) > 1:
            raise ConfigError(f"feature tables of different widths {sorted(widths)}")
        self._num_features = widths.pop() if widths else None
        for name, tables in (("features", self._features), ("labels", self._labels)):
            for p, t in tables.items():
                lo, hi = book.node_range(p)
                if t.shape[0] != hi - lo:
                    raise ConfigError(f"{name} of partition {p} have {t.shape[0]} rows for {hi - lo} nodes")

    @classmethod
    def from_arrays(cls, features=None, labels=None, backend: str = "auto") -> "LocalNodeData":
        """Node tables of a whole in-memory graph (one partition holding every node)."""
        n = features.shape[0] if features is not None else (labels.shape[0] if labels is not None else None)
        if n is None:
            raise ConfigError("give features, labels or both")
        if features is not None and labels is not None and labels.shape[0] != n:
            raise ConfigError(f"{features.shape[0]} feature rows but {labels.shape[0]} labels")
        book = RangePartitionBook([0, n], [0, 0])  # edges are not looked up here
        feats = None if features is None else {0: np.asarray(features, dtype=np.float32)}
        labs = None if labels is None else {0: np.asarray(labels, dtype=np.int64)}
        return cls(book, feats, labs, backend)

    @classmethod
    def from_dataset(cls, dataset, parts: Optional[Iterable[int]] = None, backend: str = "auto") -> "LocalNodeData":
        """Memory-mapped node tables of ``parts`` (default: all) of an opened dataset."""
        parts = range(dataset.num_parts) if parts is None else parts
        feats, labs = {}, {}
        for p in parts:
            part = dataset.partition(int(p))
            if part.features is not None:
                feats[int(p)] = part.features
            if part.labels is not None:
                labs[int(p)] = part.labels
        return cls(dataset.book, feats, labs, backend)

    @property
    def num_features(self) -> Optional[int]:
        return self._num_features

    @staticmethod
    def _runs(tables: Dict[int, np.ndarray], split: OwnerSplit, what: str):
        """``(table, a, b)`` per owner of ``split``: its IDs are ``split.local[a:b]`` (raises
        ConfigError for a partition not held here)."""
        for q, p in enumerate(split.parts):
            table = tables.get(int(p))
            if table is None:
                raise ConfigError(
                    f"{what} of nodes in partition {int(p)} are not held by this process "
                    f"(it holds partitions {sorted(tables)}); remote nodes need the distributed fetch"
                )
            yield table, split.offsets[q], split.offsets[q + 1]

    def _gather(self, tables: Dict[int, np.ndarray], ids, what: str) -> Optional[np.ndarray]:
        if not tables:
            return None
        split = split_by_owner(self.book, ids)
        sample = next(iter(tables.values()))
        out = None
        for table, a, b in self._runs(tables, split, what):
            rows = self._kernels.gather_rows(table, split.local[a:b])
            if split.parts.size == 1:  # one owner: the rows are already in input order
                return rows
            if out is None:
                out = np.empty((split.order.size,) + sample.shape[1:], dtype=sample.dtype)
            out[split.order[a:b]] = rows
        return out if out is not None else np.empty((0,) + sample.shape[1:], dtype=sample.dtype)

    def features(self, ids) -> Optional[np.ndarray]:
        return self._gather(self._features, ids, "features")

    def features_into(self, ids, out: np.ndarray, positions: np.ndarray) -> None:
        """``out[positions[i]] = features of ids[i]`` on the host, without an intermediate copy.

        Args:
            ids: int64 ``[m]`` node IDs held here. out: float32 ``[N, F]``. positions: int64 ``[m]``
            distinct rows of ``out``.
        """
        from graphtrain.kernels.rows import scatter_rows

        if self._num_features is None:
            raise ConfigError("this node data has no features")
        split = split_by_owner(self.book, ids)
        positions = np.asarray(positions, dtype=np.int64)
        for table, a, b in self._runs(self._features, split, "features"):
            scatter_rows(table, split.local[a:b], out, positions[split.order[a:b]])

    def labels(self, ids) -> Optional[np.ndarray]:
        return self._gather(self._labels, ids, "labels")
