"""The range partition book: where every node and edge lives, from ``2 * (P + 1)`` integers.

Node IDs and edge IDs are relabelled into contiguous ranges, one per partition:

- partition ``p`` owns global node IDs ``[node_bounds[p], node_bounds[p + 1])`` and
- global edge IDs ``[edge_bounds[p], edge_bounds[p + 1])`` -- the in-edges of its nodes.

So ``part_of(g) = searchsorted(node_bounds, g, side="right") - 1`` and
``local = g - node_bounds[part]``. Nothing per node or per edge is stored: the book's size depends
on ``P`` only (a few hundred bytes for dozens of partitions), never on ``N`` or ``E``.

A contiguous run of partitions ``[a, b)`` is itself a range, ``[node_bounds[a], node_bounds[b])``;
:meth:`RangePartitionBook.coarsen` merges runs into a book with fewer, larger parts. That is how a
dataset cut into 8 partitions is served by 1, 2 or 4 workers without re-partitioning.

Empty partitions (equal consecutive bounds) are allowed; ``part_of`` returns the partition that
actually contains an ID.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence, Tuple

import numpy as np

from graphtrain.errors import ConfigError, FormatError


def _as_bounds(values, what: str) -> np.ndarray:
    bounds = np.asarray(values, dtype=np.int64).copy()
    if bounds.ndim != 1 or bounds.size < 2:
        raise FormatError(f"{what} must be a list of at least 2 integers (P + 1 boundaries), got {values!r}")
    if bounds[0] != 0:
        raise FormatError(f"{what} must start at 0, got {int(bounds[0])}")
    if np.any(np.diff(bounds) < 0):
        raise FormatError(f"{what} must be non-decreasing, got {bounds.tolist()}")
    bounds.setflags(write=False)
    return bounds


def _lookup(bounds: np.ndarray, ids, kind: str) -> Tuple[np.ndarray, np.ndarray]:
    ids = np.asarray(ids)
    if ids.dtype.kind not in "iu":
        raise ConfigError(f"{kind} IDs must be integers, got dtype {ids.dtype}")
    ids = ids.astype(np.int64, copy=False)
    total = int(bounds[-1])
    if ids.size and (int(ids.min()) < 0 or int(ids.max()) >= total):
        bad = ids[(ids < 0) | (ids >= total)][0]
        raise ConfigError(f"{kind} ID {int(bad)} is out of range [0, {total})")
    part = np.searchsorted(bounds, ids, side="right") - 1
    return part, ids - bounds[part]


@dataclass(frozen=True, eq=False)
class RangePartitionBook:
    """Node and edge boundaries of ``P`` contiguous-ID partitions.

    Attributes:
        node_bounds: int64 ``[P + 1]``, ``node_bounds[0] == 0``, non-decreasing; ``node_bounds[-1] == N``.
        edge_bounds: int64 ``[P + 1]``, likewise for edges; ``edge_bounds[-1] == E``.
    """

    node_bounds: np.ndarray
    edge_bounds: np.ndarray

    def __init__(self, node_bounds: Sequence[int], edge_bounds: Sequence[int]):
        nb = _as_bounds(node_bounds, "node boundaries")
        eb = _as_bounds(edge_bounds, "edge boundaries")
        if nb.size != eb.size:
            raise FormatError(f"{nb.size - 1} node ranges but {eb.size - 1} edge ranges; they must match")
        object.__setattr__(self, "node_bounds", nb)
        object.__setattr__(self, "edge_bounds", eb)

    # -- sizes ---------------------------------------------------------------------------------
    @property
    def num_parts(self) -> int:
        return int(self.node_bounds.size - 1)

    @property
    def num_nodes(self) -> int:
        return int(self.node_bounds[-1])

    @property
    def num_edges(self) -> int:
        return int(self.edge_bounds[-1])

    @property
    def nbytes(self) -> int:
        """Bytes held by the book's arrays: ``16 * (P + 1)``, whatever N and E are."""
        return int(self.node_bounds.nbytes + self.edge_bounds.nbytes)

    def node_range(self, part: int) -> Tuple[int, int]:
        """``(start, stop)`` global node IDs of partition ``part``."""
        self._check_part(part)
        return int(self.node_bounds[part]), int(self.node_bounds[part + 1])

    def edge_range(self, part: int) -> Tuple[int, int]:
        """``(start, stop)`` global edge IDs of partition ``part``."""
        self._check_part(part)
        return int(self.edge_bounds[part]), int(self.edge_bounds[part + 1])

    def part_sizes(self) -> Tuple[np.ndarray, np.ndarray]:
        """Nodes and edges per partition, int64 ``[P]`` each."""
        return np.diff(self.node_bounds), np.diff(self.edge_bounds)

    # -- lookups (vectorised) --------------------------------------------------------------------
    def node_part(self, ids) -> np.ndarray:
        """Partition of each global node ID; int64, same shape as ``ids``."""
        return _lookup(self.node_bounds, ids, "node")[0]

    def node_to_local(self, ids) -> Tuple[np.ndarray, np.ndarray]:
        """``(part, local)`` of each global node ID."""
        return _lookup(self.node_bounds, ids, "node")

    def node_to_global(self, part, local) -> np.ndarray:
        """Global node ID of local ID ``local`` in partition ``part`` (both broadcastable arrays)."""
        return self._to_global(self.node_bounds, part, local, "node")

    def edge_part(self, ids) -> np.ndarray:
        """Partition of each global edge ID."""
        return _lookup(self.edge_bounds, ids, "edge")[0]

    def edge_to_local(self, ids) -> Tuple[np.ndarray, np.ndarray]:
        """``(part, local)`` of each global edge ID."""
        return _lookup(self.edge_bounds, ids, "edge")

    def edge_to_global(self, part, local) -> np.ndarray:
        """Global edge ID of local edge ``local`` in partition ``part``."""
        return self._to_global(self.edge_bounds, part, local, "edge")

    # -- merging partitions into worker ranges -------------------------------------------------
    def contiguous_runs(self, num_groups: int, by: str = "edges") -> np.ndarray:
        """Split ``[0, P)`` into ``num_groups`` contiguous, non-empty runs of partitions.

        Runs are balanced greedily by edge count (``by="edges"``) or node count (``by="nodes"``).

        Returns:
            int64 ``[num_groups + 1]`` partition boundaries: group ``w`` serves partitions
            ``[runs[w], runs[w + 1])``.
        """
        if num_groups < 1:
            raise ConfigError(f"number of groups must be >= 1, got {num_groups}")
        if num_groups > self.num_parts:
            raise ConfigError(
                f"cannot serve {self.num_parts} partitions with {num_groups} workers: each worker needs at "
                f"least one partition (re-partition with --num-parts >= {num_groups})"
            )
        if by not in ("edges", "nodes"):
            raise ConfigError(f"by must be 'edges' or 'nodes', got {by!r}")
        sizes = np.diff(self.edge_bounds if by == "edges" else self.node_bounds).astype(np.float64)
        # weight each partition by its size plus a small constant so empty partitions still count
        weights = sizes + max(1.0, sizes.sum() / max(1, self.num_parts) * 1e-3)
        cum = np.concatenate([[0.0], np.cumsum(weights)])
        targets = cum[-1] * np.arange(1, num_groups) / num_groups
        cuts = np.searchsorted(cum, targets, side="left")
        runs = [0]
        for g, cut in enumerate(cuts, start=1):
            lo = runs[-1] + 1  # every run keeps at least one partition
            hi = self.num_parts - (num_groups - g)  # ... and leaves one for each later run
            runs.append(int(min(max(cut, lo), hi)))
        runs.append(self.num_parts)
        return np.asarray(runs, dtype=np.int64)

    def coarsen(self, part_runs: Sequence[int]) -> "RangePartitionBook":
        """Merge contiguous runs of partitions into one partition each.

        Args:
            part_runs: increasing partition boundaries ``[0, ..., P]``; new part ``w`` is the union of
                old partitions ``[part_runs[w], part_runs[w + 1])``.
        """
        runs = np.asarray(part_runs, dtype=np.int64)
        if runs.ndim != 1 or runs.size < 2 or runs[0] != 0 or runs[-1] != self.num_parts or np.any(np.diff(runs) <= 0):
            raise ConfigError(f"partition runs must increase strictly from 0 to {self.num_parts}, got {runs.tolist()}")
        return RangePartitionBook(self.node_bounds[runs], self.edge_bounds[runs])

    # -- serialisation -------------------------------------------------------------------------
    def to_dict(self) -> dict:
        return {"node_bounds": self.node_bounds.tolist(), "edge_bounds": self.edge_bounds.tolist()}

    @classmethod
    def from_dict(cls, d: dict) -> "RangePartitionBook":
        try:
            return cls(d["node_bounds"], d["edge_bounds"])
        except KeyError as exc:
            raise FormatError(f"partition book is missing {exc.args[0]!r}") from None

    def __eq__(self, other) -> bool:
        return (
            isinstance(other, RangePartitionBook)
            and np.array_equal(self.node_bounds, other.node_bounds)
            and np.array_equal(self.edge_bounds, other.edge_bounds)
        )

    def __repr__(self) -> str:
        return f"RangePartitionBook(num_parts={self.num_parts}, num_nodes={self.num_nodes}, num_edges={self.num_edges})"

    # -- helpers -------------------------------------------------------------------------------
    def _check_part(self, part: int) -> None:
        if not 0 <= int(part) < self.num_parts:
            raise ConfigError(f"partition {part} is out of range [0, {self.num_parts})")

    def _to_global(self, bounds: np.ndarray, part, local, kind: str) -> np.ndarray:
        part = np.asarray(part, dtype=np.int64)
        local = np.asarray(local, dtype=np.int64)
        if part.size and (part.min() < 0 or part.max() >= self.num_parts):
            raise ConfigError(f"partition index out of range [0, {self.num_parts})")
        size = bounds[part + 1] - bounds[part]
        if np.any((local < 0) | (local >= size)):
            raise ConfigError(f"local {kind} ID out of range of its partition")
        return bounds[part] + local
