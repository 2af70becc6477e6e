"""Per-edge model inputs: the stored edge columns of sampled edges, read by global edge ID, as features.

A mini-batch's ``e_id`` (global edge IDs: partition ``p`` holds ``[edge_bounds[p], edge_bounds[p+1])``,
the in-edges of its nodes in CSC order) is all that is needed to read its edges' columns from the
memory-mapped ``edge_<name>.npy`` arrays of the partitions that hold them
(:class:`LocalEdgeData`; the distributed fetch of edges held by other workers is
:class:`~graphtrain.sampling.remote_features.DistributedEdgeData`, beside the node rows' fetch).
:class:`EdgeFeaturizer` turns those raw columns into the float32 ``edge_attr [E, D]`` the edge-aware
models read, one column per name of :data:`EDGE_FEATURES`, in the order given:

==============  ==================  ===========================================================
feature         stored column       value
==============  ==================  ===========================================================
``amount``      ``amount``          ``sign(a) * log1p(|a|)``
``reverse``     ``reverse``         0 for a transaction stored as paid ``src -> dst``, 1 for the
                                    reverse copy (``--add-reverse``)
``time_delta``  ``time``            ``log1p(max(t_ref - t, 0) / units_per_day)``: how long before
                                    the reference time the edge happened, in days when the time
                                    column has a unit (``s``, ``ms``, ...), else in its own
                                    integer unit. ``t_ref`` is the edge's seed time in temporal
                                    mode (``MiniBatch.node_time`` of its destination entry), else
                                    one time for every edge (the end of the log)
``parallel``    ``parallel``        ``log1p(count)``: edges with the same (source, destination) --
                                    with both directions stored, the transactions between the
                                    pair either way -- precomputed once per dataset
                                    (:func:`parallel_counts`, :func:`add_parallel_column`)
==============  ==================  ===========================================================

The model side standardises ``edge_attr`` with the training split's statistics, like node features
(:mod:`graphtrain.train.normalize`). Columns are read through the partitions' arrays and cast to
float64 here, whatever their stored dtype (times as float64: exact to 2**53, so ``ns`` timestamps
round to a quarter microsecond, far below a day).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Optional, Sequence, Tuple

import numpy as np

from graphtrain.errors import ConfigError
from graphtrain.graph import REVERSE, TIME, CSCGraph

EDGE_FEATURES = ("amount", "reverse", "time_delta", "parallel")
PARALLEL = "parallel"
AMOUNT = "amount"
_SOURCE = {"amount": AMOUNT, "reverse": REVERSE, "time_delta": TIME, "parallel": PARALLEL}
# time units (numpy datetime64 codes, as EdgeColumn.unit stores them) -> units per day
_PER_DAY = {"D": 1.0, "h": 24.0, "m": 1440.0, "s": 86400.0, "ms": 8.64e7, "us": 8.64e10, "ns": 8.64e13}


def check_edge_features(names) -> Tuple[str, ...]:
    """``names`` as a tuple of distinct :data:`EDGE_FEATURES` (:class:`ConfigError` otherwise)."""
    names = tuple(names)
    bad = [n for n in names if n not in EDGE_FEATURES]
    if bad or len(set(names)) != len(names):
        raise ConfigError(f"edge features must be distinct names among {EDGE_FEATURES}, got {list(names)}")
    return names


def source_columns(names: Sequence[str]) -> Tuple[str, ...]:
    """The stored edge columns the features ``names`` read, one per feature, in order."""
    return tuple(_SOURCE[n] for n in check_edge_features(names))


def units_per_day(unit: Optional[str]) -> float:
    """Time-column units in a day (1 for integer times without a unit: deltas stay in their unit)."""
    return _PER_DAY.get(unit or "", 1.0)


@dataclass(frozen=True)
class EdgeFeaturizer:
    """Raw edge columns -> float32 features (see the module docstring).

    Attributes:
        names: features, a tuple of :data:`EDGE_FEATURES`; ``D = len(names)``.
        time_per_day: units of the time column in a day (:func:`units_per_day`).
        ref_time: the reference time of every edge when no per-edge one is given (the end of the
            log, or the temporal cutoff); needed only for ``time_delta``.
    """

    names: Tuple[str, ...]
    time_per_day: float = 1.0
    ref_time: Optional[float] = None

    @property
    def columns(self) -> Tuple[str, ...]:
        return source_columns(self.names)

    @property
    def dim(self) -> int:
        return len(self.names)

    def __call__(self, raw: np.ndarray, ref_time=None) -> np.ndarray:
        """float32 ``[E, D]`` from float64 ``raw [E, D]`` (column ``k`` = :attr:`columns` ``[k]``).

        ``ref_time``: scalar or ``[E]`` seed time of each edge; None: :attr:`ref_time`.
        """
        raw = np.asarray(raw, dtype=np.float64)
        out = np.empty((raw.shape[0], len(self.names)), dtype=np.float32)
        for k, name in enumerate(self.names):
            col = raw[:, k]
            if name == "amount":
                out[:, k] = np.sign(col) * np.log1p(np.abs(col))
            elif name == "reverse":
                out[:, k] = col
            elif name == "parallel":
                out[:, k] = np.log1p(col)
            else:
                ref = self.ref_time if ref_time is None else ref_time
                if ref is None:
                    raise ConfigError("the time_delta edge feature needs a reference time")
                out[:, k] = np.log1p(np.maximum(np.asarray(ref, dtype=np.float64) - col, 0.0) / self.time_per_day)
        return out


class LocalEdgeData:
    """Edge columns of the partitions held by this process, read by global edge ID.

    Args:
        graphs: the partitions' graphs (memory-mapped), each holding global edge IDs
            ``[edge_start, edge_start + num_edges)``; disjoint.
        columns: stored column names to read (:attr:`EdgeFeaturizer.columns`).

    Raises:
        ConfigError: a graph lacks one of the columns.
    """

    def __init__(self, graphs: Sequence[CSCGraph], columns: Sequence[str]):
        self.columns = tuple(columns)
        graphs = sorted(graphs, key=lambda g: g.edge_start)
        for g in graphs:
            missing = [c for c in self.columns if c not in g.edge_attrs]
            if missing:
                raise ConfigError(f"edge column(s) {missing} missing from the graph of edges starting at {g.edge_start} "
                                  f"(it has {sorted(g.edge_attrs) or 'none'})")
        self._graphs = graphs
        self._starts = np.array([g.edge_start for g in graphs], dtype=np.int64)
        self._stops = np.array([g.edge_start + g.num_edges for g in graphs], dtype=np.int64)

    @classmethod
    def of(cls, graph, columns: Sequence[str]) -> "LocalEdgeData":
        """Of a :class:`CSCGraph` or a :class:`~graphtrain.partition.view.PartitionedGraph` (its parts)."""
        parts = getattr(graph, "parts", None)
        return cls(list(parts) if parts is not None else [graph], columns)

    @property
    def width(self) -> int:
        return len(self.columns)

    def holds(self, e_id: np.ndarray) -> np.ndarray:
        """bool ``[E]``: which edge IDs are held here."""
        e_id = np.asarray(e_id, dtype=np.int64)
        k = np.searchsorted(self._starts, e_id, side="right") - 1
        ok = k >= 0
        ok[ok] = e_id[ok] < self._stops[k[ok]]
        return ok

    def read(self, e_id) -> np.ndarray:
        """float64 ``[E, C]``: the columns of the given global edge IDs (all held here)."""
        e_id = np.asarray(e_id, dtype=np.int64).reshape(-1)
        out = np.empty((e_id.size, self.width), dtype=np.float64)
        if not e_id.size:
            return out
        k = np.searchsorted(self._starts, e_id, side="right") - 1
        if k.min() < 0 or np.any(e_id >= self._stops[np.maximum(k, 0)]):
            bad = e_id[~self.holds(e_id)][0]
            raise ConfigError(f"edge {int(bad)} is not held by this process (it holds edge ranges "
                              f"{list(zip(self._starts.tolist(), self._stops.tolist()))}); remote edges need the distributed fetch")
        for i in np.unique(k):
            at = np.flatnonzero(k == i) if self._starts.size > 1 else np.arange(e_id.size)
            g = self._graphs[int(i)]
            local = e_id[at] - g.edge_start
            for c, name in enumerate(self.columns):
                out[at, c] = g.edge_attrs[name][local]
        return out


def parallel_counts(indptr: np.ndarray, src: np.ndarray) -> np.ndarray:
    """int32 ``[e]``: for each in-edge of a CSC graph (``indptr [n + 1]``, ``src [e]``), how many of
    its destination's in-edges have the same source (itself included). O(e log e) NumPy, one
    partition at a time: every edge into a node is in that node's partition."""
    indptr = np.asarray(indptr, dtype=np.int64)
    src = np.asarray(src, dtype=np.int64)
    e = src.size
    if e == 0:
        return np.zeros(0, dtype=np.int32)
    dst = np.repeat(np.arange(indptr.size - 1, dtype=np.int64), np.diff(indptr))
    order = np.lexsort((src, dst))
    s, d = src[order], dst[order]
    start = np.empty(e, dtype=bool)
    start[0] = True
    start[1:] = (s[1:] != s[:-1]) | (d[1:] != d[:-1])
    group = np.cumsum(start) - 1
    sizes = np.bincount(group)
    out = np.empty(e, dtype=np.int32)
    out[order] = sizes[group]
    return out


def add_parallel_column(dataset_dir) -> bool:
    """Store the ``parallel`` edge column (:func:`parallel_counts`, int32) in every partition of the
    dataset at ``dataset_dir`` and in its ``meta.json``, partition by partition (memory: one
    partition's edges); nothing when it is there already. Returns whether it was written."""
    from graphtrain.partition import format as fmt
    from graphtrain.partition.integrity import STAMP_FILE

    ds = fmt.open_dataset(dataset_dir)
    meta = ds.meta
    if meta.edge_column(PARALLEL) is not None:
        return False
    for p in range(ds.num_parts):
        g = ds.graph(p)
        part_dir = ds.path / fmt.part_dir_name(p)
        name = f"{fmt.edge_file(PARALLEL)}.npy"
        tmp = part_dir / f".{name}.tmp"
        rec = fmt.write_array(tmp, parallel_counts(g.indptr, g.src))
        tmp.replace(part_dir / name)
        meta.files[f"{fmt.part_dir_name(p)}/{name}"] = rec
    meta.edge_columns.append(fmt.EdgeColumn(PARALLEL, "int32", "(derived: parallel edge count)"))
    fmt.write_meta(ds.path, meta)
    (ds.path / STAMP_FILE).unlink(missing_ok=True)
    return True


def check_dataset_columns(meta, names: Sequence[str], where) -> None:
    """The dataset has the stored columns ``names`` need (``parallel`` may still be derived);
    :class:`ConfigError` naming ``where`` and the missing column otherwise."""
    have = {c.name for c in meta.edge_columns}
    for feat, col in zip(names, source_columns(names)):
        if col not in have and col != PARALLEL:
            raise ConfigError(f"{where}: edge feature {feat!r} reads the edge column {col!r}, which the dataset does not "
                              f"have (it has {sorted(have) or 'none'})")


def available_features(meta) -> Tuple[str, ...]:
    """The :data:`EDGE_FEATURES` a dataset can give (``parallel`` always: it is derived)."""
    have = {c.name for c in meta.edge_columns} | {PARALLEL}
    return tuple(n for n in EDGE_FEATURES if _SOURCE[n] in have)


@dataclass
class BatchEdgeFeatures:
    """Attaches edge features to a mini-batch: the raw columns fetched by its ``e_id`` (``source``:
    a :class:`LocalEdgeData`, or a :class:`~graphtrain.sampling.remote_features.DistributedEdgeData`
    -- anything with ``read(e_id) -> float64 [E, C]``) into ``batch.edge_attrs``, and the
    featurizer's float32 ``[E, D]`` into ``batch.edge_attr`` (the reference time of an edge: its
    destination entry's ``node_time`` in temporal mode, else the featurizer's)."""

    source: object
    featurizer: EdgeFeaturizer

    @property
    def concurrent_safe(self) -> bool:
        return bool(getattr(self.source, "concurrent_safe", True))

    def attach(self, batch) -> None:
        raw = self.source.read(batch.e_id)
        for k, name in enumerate(self.featurizer.columns):
            batch.edge_attrs[name] = raw[:, k]
        ref = None if batch.node_time is None else batch.node_time[batch.edge_index[1]]
        batch.edge_attr = self.featurizer(raw, ref)

    def rows(self, e_id: np.ndarray, ref_time=None) -> np.ndarray:
        """float32 ``[E, D]`` features of the given edges."""
        return self.featurizer(self.source.read(e_id), ref_time)

