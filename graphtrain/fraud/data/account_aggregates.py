"""The tree baseline's account features, computed out of core from a partitioned dataset.

The same columns, in the same order, as :func:`graphtrain.fraud.pipeline.baseline.neighbour_features`
on the in-memory :class:`~graphtrain.fraud.data.transaction_graph.TransactionGraph` (see its module
docstring: own features; structure per direction; hop-1 mean and max of the counterparties' own and
structure columns; hop-2 mean of the hop-1 means), but read from a dataset directory partition by
partition, a block of destinations at a time, with everything per account in memory-mapped files:

- **Directions.** A dataset stored with ``--add-reverse`` (an int8 ``reverse`` edge column) holds
  each transaction as an in-edge of its payee (``reverse`` 0: direction ``in``, counterparty = the
  payer) and of its payer (``reverse`` 1: direction ``out``, counterparty = the payee). A dataset
  without it is undirected (each edge already stored both ways): one direction, ``nbr``, over all
  in-edges.
- **Pass 1 (base).** Per destination block: the account's own features (the dataset's node
  features) and, per direction, the transaction count, distinct counterparties, amount sum / mean /
  max / std and active span / distinct active days -> ``base.npy`` ``[N, B]`` float32.
- **Pass 2 (hop-1 means).** Per block: the base rows of every counterparty, gathered from
  ``base.npy`` (random reads of a memory-mapped file), averaged per direction (NaN skipped) ->
  ``hop1_mean.npy`` ``[N, D * B]`` float32 (``D`` directions).
- **Rows on demand** (:meth:`AccountFeatures.rows`): a block of accounts' whole feature rows, the
  hop-1 means and maxima gathered from ``base.npy`` (the means equal pass 2's, bit for bit) and the
  hop-2 means from ``hop1_mean.npy`` then; nothing of width ``C`` (``9 B`` columns for a directed
  graph) is ever stored for all accounts.

The means and maxima over counterparties are one Numba kernel (:func:`_gathered_mean_max`, owners in
parallel) that reads the counterparties' rows in place from the memory-mapped table: no per-edge
copy of the rows is made. The distinct counterparties and active days are another
(:func:`_distinct_per_owner`, owners in parallel), not a sort of the whole block's pairs.

Memory: one block of edges (``block_edges``) and its accounts' output rows, whatever the graph's
size; disk: ``(1 + D) * B * 4`` bytes per account (e.g. 204 bytes for a directed graph with amount,
time and one own feature). Accounts are indexed by their global node ID (the dataset's order), not by
the input's row order.

Arithmetic is float64 within a block; the stored tables are float32, so values equal the in-memory
function's up to float32 rounding of the intermediate columns.
"""
from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, Iterator, List, Optional, Tuple

import numpy as np
from numba import njit, prange

from graphtrain.errors import ConfigError
from graphtrain.graph import REVERSE
from graphtrain.ordering import row_blocks

DAY_SECONDS = 86400
BLOCK_EDGES = 1 << 20  # in-edges per destination block (a hub with more is one block alone)
BASE_FILE = "base.npy"
HOP1_FILE = "hop1_mean.npy"


def nan_mean(reduce, values: np.ndarray) -> np.ndarray:
    """Mean over each owner's edges of ``values`` (grouped by owner), NaN values skipped; NaN where an
    owner has none. ``reduce(ufunc, values)`` reduces each owner's segment (NaN for owners without edges)."""
    ok = ~np.isnan(values)
    total = reduce(np.add, np.where(ok, values, 0.0))
    n = reduce(np.add, ok.astype(np.float64))
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(n > 0, total / n, np.nan)


@njit(cache=True, parallel=True, nogil=True)
def _gathered_mean_max(ptr, other, table, with_max):  # pragma: no cover - compiled
    """Per owner ``i`` (edges ``ptr[i] .. ptr[i+1]-1``): the mean over its edges of the rows
    ``table[other[e]]`` (float ``[N, K]``, read in place), NaN values skipped, and with ``with_max``
    their maximum (NaN skipped, as ``np.fmax``). float64 ``[n, K]`` each (the maximum ``[0, K]``
    without ``with_max``); NaN where an owner has no edges or only NaN values. Owners run in
    parallel; each owner's sums run in edge order, so the result does not depend on the threads."""
    n, k_cols = ptr.size - 1, table.shape[1]
    mean = np.full((n, k_cols), np.nan)
    top = np.full((n if with_max else 0, k_cols), np.nan)
    for i in prange(n):
        if ptr[i] == ptr[i + 1]:
            continue
        total = np.zeros(k_cols)
        count = np.zeros(k_cols)
        for e in range(ptr[i], ptr[i + 1]):
            row = other[e]
            for k in range(k_cols):
                v = np.float64(table[row, k])
                if v == v:
                    total[k] += v
                    count[k] += 1.0
                    if with_max and not (top[i, k] >= v):  # NaN so far, or a larger value
                        top[i, k] = v
        for k in range(k_cols):
            if count[k] > 0:
                mean[i, k] = total[k] / count[k]
    return mean, top


@dataclass
class _Block:
    """One destination block's in-edges of one direction, grouped by owner (local row ``0 .. n-1``)."""

    n: int
    owner: np.ndarray  # int64 [e], ascending
    other: np.ndarray  # int64 [e] global counterparty IDs
    edge_cols: Dict[str, np.ndarray]

    def __post_init__(self):
        self.count = np.bincount(self.owner, minlength=self.n).astype(np.float64)
        self.has = self.count > 0
        self.ptr = np.zeros(self.n + 1, dtype=np.int64)  # owner i's edges: ptr[i] .. ptr[i+1]-1
        np.cumsum(self.count.astype(np.int64), out=self.ptr[1:])
        self.starts = self.ptr[:-1][self.has]

    def reduce(self, ufunc, values: np.ndarray) -> np.ndarray:
        """``ufunc`` over each owner's edges of ``values`` (``[e]`` or ``[e, k]``); NaN rows for owners without edges."""
        out = np.full((self.n,) + values.shape[1:], np.nan)
        if self.starts.size:
            out[self.has] = ufunc.reduceat(values, self.starts, axis=0)
        return out

    def distinct(self, keys: np.ndarray) -> np.ndarray:
        """Distinct ``keys`` (int64 per edge) per owner, float64 ``[n]``."""
        return _distinct_per_owner(self.ptr, np.ascontiguousarray(keys, dtype=np.int64))

    def mean_max_of(self, table: np.ndarray, with_max: bool = True):
        """float64 ``[n, K]`` each: the mean and (``with_max``; else None) the maximum over each owner's
        edges of the counterparties' rows of ``table`` (``[N, K]`` by global ID, a memory-mapped file
        read in place: no ``[e, K]`` copy), NaN values skipped; NaN for owners without edges."""
        mean, top = _gathered_mean_max(self.ptr, self.other, np.asarray(table), with_max)
        return mean, (top if with_max else None)


_PAIRWISE = 32  # owners with at most this many edges count distinct keys pairwise; larger ones sort a copy


@njit(cache=True, parallel=True, nogil=True)
def _distinct_per_owner(ptr, keys):  # pragma: no cover - compiled
    """float64 ``[n]``: per owner ``i`` the number of distinct values among ``keys[ptr[i] .. ptr[i+1]-1]``
    (0 for an owner without edges). Owners run in parallel; exact, whatever the thread count."""
    n = ptr.size - 1
    out = np.zeros(n)
    for i in prange(n):
        lo, hi = ptr[i], ptr[i + 1]
        if hi - lo <= _PAIRWISE:
            c = 0
            for j in range(lo, hi):
                seen = False
                for q in range(lo, j):
                    if keys[q] == keys[j]:
                        seen = True
                        break
                if not seen:
                    c += 1
            out[i] = c
        else:
            seg = np.sort(keys[lo:hi])
            c = 1
            for j in range(1, seg.size):
                if seg[j] != seg[j - 1]:
                    c += 1
            out[i] = c
    return out


class AccountFeatures:
    """The baseline feature table of a dataset, backed by ``base.npy`` and ``hop1_mean.npy`` in ``work_dir``.

    Build with :func:`build_account_features`; :meth:`rows` gives any block of accounts' rows.

    Attributes:
        names: the ``C`` column names (those of ``neighbour_features``).
        num_accounts: ``N`` (the dataset's nodes).
        directions: ``("in", "out")`` or ``("nbr",)``.
    """

    def __init__(self, dataset, work_dir: Path, names: List[str], base_names: List[str], directions: Tuple[str, ...],
                 hops: int, block_edges: int):
        self.dataset = dataset
        self.work_dir = Path(work_dir)
        self.names = names
        self.base_names = base_names
        self.directions = directions
        self.hops = hops
        self.block_edges = block_edges
        self.num_accounts = int(dataset.meta.num_nodes)
        self.base = np.load(self.work_dir / BASE_FILE, mmap_mode="r")
        self.hop1 = np.load(self.work_dir / HOP1_FILE, mmap_mode="r") if hops >= 1 else None

    @property
    def num_columns(self) -> int:
        return len(self.names)

    def rows(self, start: int, stop: int) -> np.ndarray:
        """float32 ``[stop - start, C]``: the feature rows of accounts (global IDs) ``start .. stop-1``.

        ``start .. stop`` may span partitions; each partition's part is computed from its in-edges.
        """
        out = np.empty((stop - start, self.num_columns), dtype=np.float32)
        book = self.dataset.book
        for p in range(self.dataset.num_parts):
            lo, hi = book.node_range(p)
            a, b = max(lo, start), min(hi, stop)
            if a >= b:
                continue
            graph = self.dataset.graph(p)
            for a0 in range(a - lo, b - lo, 1 << 16):
                b0 = min(a0 + (1 << 16), b - lo)
                out[lo + a0 - start : lo + b0 - start] = self._local_rows(graph, lo, a0, b0)
        return out

    def iter_rows(self, block: int = 1 << 16) -> Iterator[Tuple[int, np.ndarray]]:
        """``(start, rows)`` over all accounts in ID order, ``block`` accounts at a time."""
        for start in range(0, self.num_accounts, block):
            yield start, self.rows(start, min(start + block, self.num_accounts))

    def _local_rows(self, graph, lo: int, a: int, b: int) -> np.ndarray:
        B = len(self.base_names)
        cols = [np.asarray(self.base[lo + a : lo + b], dtype=np.float64)]
        if self.hops >= 1:
            hop2 = []
            for d, block in enumerate(_direction_blocks(graph, a, b, self.directions)):
                # the kernel's mean is the one hop1_mean.npy stores (same edges, same order): the same float32
                mean, mx = block.mean_max_of(self.base)
                inter = np.empty((b - a, 2 * B))
                inter[:, 0::2], inter[:, 1::2] = mean, mx
                cols.append(inter)
                if self.hops >= 2:
                    hop2.append(block.mean_max_of(self.hop1, with_max=False)[0])
            cols.extend(hop2)
        return np.concatenate(cols, axis=1).astype(np.float32)


def _direction_blocks(graph, a: int, b: int, directions: Tuple[str, ...]) -> List[_Block]:
    """The in-edges of local destinations ``a .. b-1`` of ``graph``, one :class:`_Block` per direction."""
    e0, e1 = int(graph.indptr[a]), int(graph.indptr[b])
    owner = np.repeat(np.arange(b - a, dtype=np.int64), np.diff(graph.indptr[a : b + 1]))
    other = np.asarray(graph.src[e0:e1], dtype=np.int64)
    cols = {k: np.asarray(v[e0:e1]) for k, v in graph.edge_attrs.items()}
    if directions == ("nbr",):
        return [_Block(b - a, owner, other, cols)]
    reverse = cols.pop(REVERSE)
    out = []
    for flag in (0, 1):  # in: received (reverse copy 0), out: sent (1)
        m = reverse == flag
        out.append(_Block(b - a, owner[m], other[m], {k: v[m] for k, v in cols.items()}))
    return out


def _structure(block: _Block, name: str, amount: Optional[str], time: Optional[str]) -> Dict[str, np.ndarray]:
    """The structure columns of one direction (as ``baseline._structure``)."""
    cols = {f"{name}_count": block.count.copy(), f"{name}_distinct": block.distinct(block.other)}
    if amount is not None:
        v = block.edge_cols[amount].astype(np.float64)
        total = np.nan_to_num(block.reduce(np.add, v))
        sq = np.nan_to_num(block.reduce(np.add, v * v))
        with np.errstate(invalid="ignore", divide="ignore"):
            mean = np.where(block.has, total / block.count, np.nan)
            var = np.where(block.has, sq / block.count - mean * mean, np.nan)
        cols.update({f"{name}_amount_sum": total, f"{name}_amount_mean": mean,
                     f"{name}_amount_max": block.reduce(np.fmax, v), f"{name}_amount_std": np.sqrt(np.maximum(var, 0.0))})
    if time is not None:
        t = block.edge_cols[time]
        tf = t.astype(np.float64)
        cols[f"{name}_span_days"] = (block.reduce(np.fmax, tf) - block.reduce(np.fmin, tf)) / DAY_SECONDS
        cols[f"{name}_active_days"] = block.distinct(np.asarray(t, dtype=np.int64) // DAY_SECONDS)
    return cols


def build_account_features(dataset, work_dir, *, amount: Optional[str] = "amount", time: Optional[str] = "time",
                           hops: int = 2, block_edges: int = BLOCK_EDGES, own_feature_names: Optional[List[str]] = None,
                           progress=None) -> AccountFeatures:
    """Compute ``base.npy`` and ``hop1_mean.npy`` of an opened dataset into ``work_dir`` (created; replaced).

    Args:
        dataset: :class:`graphtrain.partition.format.Dataset` (``open_dataset``).
        work_dir: directory for the two tables (about ``(1 + D) * B * 4`` bytes per account).
        amount, time: stored edge column names of the transaction amount and time (None, or absent
            from the dataset: not used).
        hops: 0, 1 or 2 (as ``neighbour_features``).
        block_edges: in-edges per block (memory bound).
        own_feature_names: names of the dataset's node features as the account table calls them
            (default: the dataset's feature names); the columns are ``own_<name>``.
        progress: optional callable ``(edges_done)`` after each block of in-edges; the in-edges are
            read once, and once more for ``hops`` >= 1.
    """
    if hops not in (0, 1, 2):
        raise ConfigError(f"hops must be 0, 1 or 2, got {hops}")
    meta = dataset.meta
    stored = {c.name for c in meta.edge_columns}
    amount = amount if amount in stored else None
    time = time if time in stored else None
    directions: Tuple[str, ...] = ("in", "out") if REVERSE in stored else ("nbr",)
    feat_names = list(own_feature_names if own_feature_names is not None else meta.node_schema.feature_names)
    n = int(meta.num_nodes)
    work_dir = Path(work_dir)
    if work_dir.exists():
        shutil.rmtree(work_dir)
    work_dir.mkdir(parents=True)

    base_names: Optional[List[str]] = None
    base = None
    for p in range(dataset.num_parts):
        lo, _ = dataset.book.node_range(p)
        graph = dataset.graph(p)
        own = dataset.partition(p).features if feat_names else None
        for a, b in row_blocks(np.asarray(graph.indptr), block_edges):
            cols: Dict[str, np.ndarray] = {f"own_{c}": np.asarray(own[a:b, j], dtype=np.float64)
                                           for j, c in enumerate(feat_names)}
            for name, block in zip(directions, _direction_blocks(graph, a, b, directions)):
                cols.update(_structure(block, name, amount, time))
            if base is None:
                base_names = list(cols)
                base = np.lib.format.open_memmap(work_dir / BASE_FILE, mode="w+", dtype=np.float32, shape=(n, len(base_names)))
            base[lo + a : lo + b] = np.stack([cols[c] for c in base_names], axis=1)
            if progress:
                progress(int(graph.indptr[b] - graph.indptr[a]))
    if base is None:  # no nodes at all
        raise ConfigError("the dataset has no accounts")
    base.flush()
    del base
    B = len(base_names)
    base = np.load(work_dir / BASE_FILE, mmap_mode="r")
    if hops >= 1:
        hop1 = np.lib.format.open_memmap(work_dir / HOP1_FILE, mode="w+", dtype=np.float32, shape=(n, len(directions) * B))
        for p in range(dataset.num_parts):
            lo, _ = dataset.book.node_range(p)
            graph = dataset.graph(p)
            for a, b in row_blocks(np.asarray(graph.indptr), block_edges):
                for d, block in enumerate(_direction_blocks(graph, a, b, directions)):
                    hop1[lo + a : lo + b, d * B : (d + 1) * B] = block.mean_max_of(base, with_max=False)[0]
                if progress:
                    progress(int(graph.indptr[b] - graph.indptr[a]))
        hop1.flush()
        del hop1
    names = list(base_names)
    if hops >= 1:
        for d in directions:
            for c in base_names:
                names += [f"{d}_mean_{c}", f"{d}_max_{c}"]
    if hops >= 2:
        hop1_names = [f"{d}_mean_{c}" for d in directions for c in base_names]
        names += [f"{d}2_mean_{c}" for d in directions for c in hop1_names]
    return AccountFeatures(dataset, work_dir, names, base_names, directions, hops, block_edges)
