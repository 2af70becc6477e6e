"""Structural node features derived from the edges (``graphtrain partition --edge-aggregates``).

For every node: its in-degree and out-degree, and for each stored edge column ``c`` (time, weight
and the extra columns, under their stored names) the sum, mean and max of ``c`` over the node's
in-edges and over its out-edges::

    in_degree, out_degree,
    in_sum_c, in_mean_c, in_max_c, ...   (each edge column, in-edges)
    out_sum_c, out_mean_c, out_max_c, ...   (each edge column, out-edges)

A node without in-edges (out-edges) gets 0 for all of that direction's columns; missing edge values
(NaN) count as 0. The aggregates are over the stored edges (after ``--drop-self-loops`` /
``--drop-duplicates``) and over *all* of them, whatever their time: a temporal model sees them as
node features that know the whole edge log.

They are computed after the partitions' CSC arrays are written, from those arrays:

- **in-edges** are stored with their destination's partition, grouped by local destination
  (``indptr``), so each partition's in-aggregates are segment reductions over its own arrays,
  a block of destinations at a time;
- **out-edges** are scattered: one streaming pass over every partition's ``src`` (global IDs) and
  edge columns, a block of edges at a time (sorted by source, reduced per distinct source), adds
  into one ``[N, 1 + 2 C]`` float64 table indexed by global ID, memory-mapped in the spill
  directory (file pages, not anonymous memory).

Each partition's ``node_feat.npy`` is then rewritten as its node-table features (if any) followed
by the aggregate columns, a block of rows at a time.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Dict, List, Optional, Sequence

import numpy as np

from graphtrain.columns import OffsetColumn
from graphtrain.errors import ConfigError
from graphtrain.partition import format as fmt

STATS = ("sum", "mean", "max")


def aggregate_names(columns: Sequence[str]) -> List[str]:
    """Names of the aggregate feature columns for the stored edge columns ``columns``, in order."""
    names = ["in_degree", "out_degree"]
    for direction in ("in", "out"):
        names += [f"{direction}_{stat}_{c}" for c in columns for stat in STATS]
    return names


def segment_stats(starts: np.ndarray, values: List[np.ndarray]) -> np.ndarray:
    """float64 ``[S, 2 C]``: sum and max of each of the ``C`` value arrays over ``S`` non-empty
    consecutive segments starting at ``starts`` (ascending; the last runs to the end), columns
    ``[sum_0 .. sum_{C-1}, max_0 .. max_{C-1}]``."""
    out = np.empty((starts.shape[0], 2 * len(values)), dtype=np.float64)
    if starts.shape[0] == 0:
        return out
    for j, v in enumerate(values):
        out[:, j] = np.add.reduceat(v, starts)
        out[:, len(values) + j] = np.maximum.reduceat(v, starts)
    return out


def _values(arrays: List[np.ndarray], a: int, b: int, order=None) -> List[np.ndarray]:
    """Edges ``a .. b-1`` of each edge column as float64 (NaN -> 0), optionally reordered."""
    out = []
    for arr in arrays:
        v = np.asarray(arr[a:b], dtype=np.float64)
        if order is not None:
            v = v[order]
        out.append(np.nan_to_num(v, nan=0.0, posinf=np.inf, neginf=-np.inf))
    return out


def _load(root: Path, part: int, name: str) -> np.ndarray:
    arr = np.load(root / fmt.part_dir_name(part) / f"{name}.npy", mmap_mode="r")
    return arr if arr.size else np.empty(arr.shape, dtype=arr.dtype)


def _load_column(root: Path, part: int, name: str, offsets: Dict[str, int]):
    """An edge column as its values (an int32-offset column through :class:`OffsetColumn`)."""
    arr = _load(root, part, fmt.edge_file(name))
    return OffsetColumn(arr, offsets[name]) if name in offsets else arr


def _out_table(root: Path, scratch: Path, node_bounds: np.ndarray, columns: Sequence[str], block_edges: int,
               offsets: Dict[str, int]):
    """Memory-mapped float64 ``[N, 1 + 2 C]``: out-degree, then the sum and max of each column over
    each node's out-edges (max -inf where there are none)."""
    N, C = int(node_bounds[-1]), len(columns)
    table = np.lib.format.open_memmap(scratch / "out_aggregates.npy", mode="w+", dtype=np.float64, shape=(N, 1 + 2 * C))
    for a in range(0, N, block_edges):
        table[a : a + block_edges, 1 + C :] = -np.inf
    for p in range(node_bounds.shape[0] - 1):
        src = _load(root, p, fmt.SRC)
        cols = [_load_column(root, p, c, offsets) for c in columns]
        for a in range(0, src.shape[0], block_edges):
            b = min(src.shape[0], a + block_edges)
            s = np.asarray(src[a:b])
            order = np.argsort(s, kind="stable")
            s = s[order]
            starts = np.flatnonzero(np.concatenate([[True], s[1:] != s[:-1]]))
            ids = s[starts]
            stats = segment_stats(starts, _values(cols, a, b, order))
            rows = table[ids]  # ids ascending: one gather, one scatter back
            rows[:, 0] += np.diff(np.append(starts, s.shape[0]))
            rows[:, 1 : 1 + C] += stats[:, :C]
            np.maximum(rows[:, 1 + C :], stats[:, C:], out=rows[:, 1 + C :])
            table[ids] = rows
    return table


def _in_block(indptr: np.ndarray, cols: List[np.ndarray], a: int, b: int) -> np.ndarray:
    """float64 ``[b - a, 1 + 2 C]`` of local destinations ``a .. b-1``: in-degree, then the sum and
    max of each column over their in-edges (max -inf where there are none)."""
    C = len(cols)
    e0, e1 = int(indptr[a]), int(indptr[b])
    deg = np.diff(indptr[a : b + 1])
    out = np.zeros((b - a, 1 + 2 * C), dtype=np.float64)
    out[:, 0] = deg
    out[:, 1 + C :] = -np.inf
    has = deg > 0
    out[has, 1:] = segment_stats(np.asarray(indptr[a:b], dtype=np.int64)[has] - e0, _values(cols, e0, e1))
    return out


def _features(acc: np.ndarray, C: int) -> np.ndarray:
    """``[n, 1 + 2 C]`` (degree, sums, maxes) -> ``[n, 3 C]`` sum, mean, max per column (0 without edges)."""
    deg = acc[:, :1]
    sums, maxes = acc[:, 1 : 1 + C], acc[:, 1 + C :]
    means = np.divide(sums, deg, out=np.zeros_like(sums), where=deg > 0)
    maxes = np.where(deg > 0, maxes, 0.0)
    return np.stack([sums, means, maxes], axis=2).reshape(acc.shape[0], 3 * C)


def write_edge_aggregates(root: Path, scratch: Path, node_bounds: np.ndarray, columns: Sequence[str],
                          feature_names: Sequence[str], files: Dict[str, fmt.FileRecord],
                          block_edges: int, block_nodes: int, offsets: Optional[Dict[str, int]] = None) -> List[str]:
    """Append the aggregate columns to every partition's ``node_feat.npy`` under ``root`` (a dataset
    being written, its edge arrays complete; ``files`` records updated) and return their names.

    Args:
        scratch: a directory for the memory-mapped out-direction table (removed here).
        columns: stored names of the edge columns to aggregate.
        feature_names: the node-table feature columns already in ``node_feat.npy`` (may be empty).
        block_edges, block_nodes: most edges / node rows handled at once.
        offsets: base of each column stored as int32 offsets (``EdgeEncoding.offsets``).
    """
    names = aggregate_names(columns)
    taken = set(feature_names) & set(names)
    if taken:
        raise ConfigError(f"node feature column(s) {sorted(taken)} clash with the edge aggregates' names; rename them")
    C, F = len(columns), len(feature_names)
    block_edges, block_nodes = max(1, int(block_edges)), max(1, int(block_nodes))
    scratch = Path(scratch)
    offsets = dict(offsets or {})
    out_table = _out_table(root, scratch, node_bounds, columns, block_edges, offsets)
    try:
        for p in range(node_bounds.shape[0] - 1):
            lo, hi = int(node_bounds[p]), int(node_bounds[p + 1])
            rel = f"{fmt.part_dir_name(p)}/{fmt.NODE_FEAT}.npy"
            base = _load(root, p, fmt.NODE_FEAT) if F else None
            indptr = np.asarray(_load(root, p, fmt.INDPTR), dtype=np.int64)  # int32 on disk: no overflow below
            cols = [_load_column(root, p, c, offsets) for c in columns]
            tmp = root / fmt.part_dir_name(p) / f".{fmt.NODE_FEAT}.npy.tmp"
            writer = fmt.NpyWriter(tmp, np.float32, (hi - lo, F + len(names)))
            a = 0
            while a < hi - lo:
                # at most block_nodes rows, and about block_edges in-edges (a hub may exceed it alone)
                b = int(np.searchsorted(indptr, int(indptr[a]) + block_edges, side="right")) - 1
                b = min(hi - lo, a + block_nodes, max(b, a + 1))
                inn, out = _in_block(indptr, cols, a, b), np.asarray(out_table[lo + a : lo + b])
                rows = [np.asarray(base[a:b], dtype=np.float64)] if F else []
                rows += [inn[:, :1], out[:, :1], _features(inn, C), _features(out, C)]
                writer.write(np.concatenate(rows, axis=1))
                a = b
            files[rel] = writer.close()
            del base
            os.replace(tmp, root / rel)
    finally:
        del out_table
        (scratch / "out_aggregates.npy").unlink(missing_ok=True)
    return names
