"""Relabelling: from an assignment ``part[rid]`` to contiguous global IDs and the partition files.

- Global node IDs: partition ``p`` owns ``[node_bounds[p], node_bounds[p + 1])``; within a partition
  nodes keep rid order, so ``g = node_bounds[part[rid]] + rank of rid among rids of part``.
- Edges belong to the partition of their destination. They are routed to *bins* (contiguous
  global-ID ranges of destinations, never crossing a partition boundary, each holding at most a
  memory-bounded number of edges) and each bin is sorted by (destination, time, source), which
  yields the CSC arrays; edge IDs are the positions, offset by ``edge_bounds[p]``.
- Node data (features, labels, split) is routed the same way by global ID and placed at
  ``g - node_bounds[p]``; nodes without a node-table row get zeros / -1.
- Raw IDs: rids in order are hash order; filtering by partition gives each partition's nodes in
  global order, so ``raw_id`` arrays and the ``idmap`` files are written in one sequential pass.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Dict, Iterator, List, Optional, Tuple

import numpy as np

from graphtrain.graph import TIME
from graphtrain.partition import format as fmt
from graphtrain.partition.compact import EdgeEncoding
from graphtrain.partition._kernels import count_outside, plan_bins, ranks_in_part, sort_bin
from graphtrain.partition.ingest import StringIds
from graphtrain.partition.spill import RangeBins, SpillDir

Files = Dict[str, fmt.FileRecord]


def global_ids(part: np.ndarray, num_parts: int) -> Tuple[np.ndarray, np.ndarray]:
    """``(node_bounds int64 [P + 1], g int64 [N])`` for an assignment ``part`` (int32 ``[N]``)."""
    counts = np.bincount(part, minlength=num_parts).astype(np.int64)
    bounds = np.zeros(num_parts + 1, dtype=np.int64)
    np.cumsum(counts, out=bounds[1:])
    return bounds, ranks_in_part(part, bounds)


@dataclass
class EdgeStats:
    """What the CSC stage counted (edges as in the input, before any drop)."""

    edge_bounds: np.ndarray = None
    edge_cut: int = 0
    self_loops: int = 0
    duplicates: int = 0
    dropped_self_loops: int = 0
    dropped_duplicates: int = 0


class _PartitionEdgeWriter:
    """Writers for one partition's CSC arrays (``indptr``, ``src``, ``edge_<name>``), in the stored
    dtypes of ``encoding`` (int64 chunks in, compact arrays out; see :mod:`graphtrain.partition.compact`)."""

    def __init__(self, root: Path, part: int, num_nodes: int, encoding: EdgeEncoding):
        self.dir = root / fmt.part_dir_name(part)
        self.encoding = encoding
        self.indptr = fmt.NpyWriter(self.dir / f"{fmt.INDPTR}.npy", encoding.indptr, (num_nodes + 1,))
        self.indptr.write(np.zeros(1, dtype=encoding.indptr))
        self.src = fmt.NpyWriter(self.dir / f"{fmt.SRC}.npy", encoding.src, (-1,))
        self.cols = {c: fmt.NpyWriter(self.dir / f"{fmt.edge_file(c)}.npy", dt, (-1,)) for c, dt in encoding.stored.items()}
        self.num_edges = 0

    def write_bin(self, indptr: np.ndarray, src: np.ndarray, cols: Dict[str, np.ndarray]) -> None:
        if self.num_edges + src.shape[0] > np.iinfo(self.encoding.indptr).max:  # the planned bound was wrong
            raise AssertionError(f"partition {self.dir.name} outgrew its {self.encoding.indptr} indptr")
        self.indptr.write(indptr[1:] + self.num_edges)
        self.src.write(src)
        for c, w in self.cols.items():
            w.write(self.encoding.encode(c, cols[c]))
        self.num_edges += src.shape[0]

    def close(self, root: Path) -> Files:
        files = {}
        for w in [self.indptr, self.src, *self.cols.values()]:
            files[str(w.path.relative_to(root))] = w.close()
        return files


def plan_edge_bins(node_bounds: np.ndarray, in_degree_by_rid: np.ndarray, g: np.ndarray, max_edges: int) -> np.ndarray:
    """Bin boundaries (global IDs) holding at most ``max_edges`` in-edges each (a hub may exceed it alone)."""
    degree_by_global = np.empty_like(in_degree_by_rid)
    degree_by_global[g] = in_degree_by_rid
    return plan_bins(node_bounds, degree_by_global, max(1, int(max_edges)))


def route_edges(
    bins: RangeBins,
    chunks: Iterator[Tuple[np.ndarray, np.ndarray, Dict[str, np.ndarray]]],
    drop_self_loops: bool,
    stats: EdgeStats,
    on_chunk: Optional[Callable[[int], None]] = None,
) -> None:
    """Append each chunk's edges (endpoints as global IDs) to the bins of their destinations."""
    for g_src, g_dst, cols in chunks:
        loops = g_src == g_dst
        n_loops = int(loops.sum())
        stats.self_loops += n_loops
        if drop_self_loops and n_loops:
            keep = ~loops
            g_src, g_dst = g_src[keep], g_dst[keep]
            cols = {c: v[keep] for c, v in cols.items()}
            stats.dropped_self_loops += n_loops
        bins.add(g_dst, {"src": g_src, **cols})
        if on_chunk is not None:
            on_chunk(g_src.shape[0])


def write_edge_bins(
    root: Path,
    bins: RangeBins,
    node_bounds: np.ndarray,
    encoding: EdgeEncoding,
    drop_duplicates: bool,
    stats: EdgeStats,
    on_bin: Optional[Callable[[int], None]] = None,
) -> Files:
    """Sort every bin into CSC order and write each partition's edge arrays (stored as ``encoding``
    says); fills ``stats``."""
    files: Files = {}
    num_parts = node_bounds.shape[0] - 1
    edge_counts = np.zeros(num_parts, dtype=np.int64)
    has_time = TIME in encoding.stored
    empty_i64 = np.empty(0, dtype=np.int64)
    b = 0
    for p in range(num_parts):
        lo_p, hi_p = int(node_bounds[p]), int(node_bounds[p + 1])
        writer = _PartitionEdgeWriter(root, p, hi_p - lo_p, encoding)
        while b < bins.num_bins and bins.bounds[b] < hi_p:
            lo_b, hi_b = int(bins.bounds[b]), int(bins.bounds[b + 1])
            dst, cols = bins.read(b)
            src = cols.pop("src")
            indptr, order, dup = sort_bin(dst - lo_b, hi_b - lo_b, src, cols[TIME] if has_time else empty_i64, has_time, True)
            stats.duplicates += int(dup.sum())
            if drop_duplicates and dup.any():
                keep = ~dup
                order = order[keep]
                node_of_edge = np.repeat(np.arange(hi_b - lo_b), np.diff(indptr))
                kept = np.bincount(node_of_edge[keep], minlength=hi_b - lo_b)
                indptr = np.concatenate([[0], np.cumsum(kept)]).astype(np.int64)
                stats.dropped_duplicates += int(dup.sum())
            src_sorted = src[order]
            stats.edge_cut += int(count_outside(src_sorted, lo_p, hi_p))
            writer.write_bin(indptr, src_sorted, {c: v[order] for c, v in cols.items()})
            if on_bin is not None:
                on_bin(b)
            b += 1
        edge_counts[p] = writer.num_edges
        files.update(writer.close(root))
    stats.edge_bounds = np.concatenate([[0], np.cumsum(edge_counts)]).astype(np.int64)
    return files


@dataclass
class NodeDataSpec:
    """Which node arrays to write: feature width F (0 = none), labels, split, time; and the
    features of a node without a node-table row (``missing_feature``: 0, or NaN)."""

    num_features: int = 0
    has_label: bool = False
    has_split: bool = False
    has_time: bool = False
    missing_feature: float = 0.0

    @property
    def any(self) -> bool:
        return self.num_features > 0 or self.has_label or self.has_split or self.has_time

    def dtypes(self) -> dict:
        d = {}
        if self.num_features:
            d["feat"] = (np.float32, self.num_features)
        if self.has_label:
            d["label"] = np.int64
        if self.has_split:
            d["split"] = np.int8
        if self.has_time:
            d["time"] = np.int64
        return d


def write_node_bins(root: Path, bins: RangeBins, node_bounds: np.ndarray, spec: NodeDataSpec) -> Files:
    """Place node rows (routed by global ID) at their local positions; write per-partition arrays."""
    files: Files = {}
    names = {"feat": fmt.NODE_FEAT, "label": fmt.NODE_LABEL, "split": fmt.NODE_SPLIT, "time": fmt.NODE_TIME}
    fill = {"feat": spec.missing_feature, "label": -1, "split": -1, "time": np.iinfo(np.int64).max}  # no node row: no time bound
    b = 0
    for p in range(node_bounds.shape[0] - 1):
        lo_p, hi_p = int(node_bounds[p]), int(node_bounds[p + 1])
        pdir = root / fmt.part_dir_name(p)
        writers = {}
        for col, dt in spec.dtypes().items():
            shape = (hi_p - lo_p, dt[1]) if isinstance(dt, tuple) else (hi_p - lo_p,)
            writers[col] = fmt.NpyWriter(pdir / f"{names[col]}.npy", dt[0] if isinstance(dt, tuple) else dt, shape)
        while b < bins.num_bins and bins.bounds[b] < hi_p:
            lo_b, hi_b = int(bins.bounds[b]), int(bins.bounds[b + 1])
            gid, cols = bins.read(b)
            local = gid - lo_b
            for col, w in writers.items():
                shape = (hi_b - lo_b,) + w.shape[1:]
                block = np.full(shape, fill[col], dtype=w.dtype)
                block[local] = cols[col]
                w.write(block)
            b += 1
        for w in writers.values():
            files[str(w.path.relative_to(root))] = w.close()
    return files


def write_raw_ids_and_idmap(
    root: Path,
    id_type: str,
    part: np.ndarray,
    g: np.ndarray,
    node_bounds: np.ndarray,
    sorted_hashes: Callable[[int, int], np.ndarray],
    sorted_raw: Callable[[int, int], object],
    chunk: int,
) -> Files:
    """Write each partition's ``raw_id*`` arrays and the ``idmap/`` lookup table, streaming rids in order."""
    files: Files = {}
    num_nodes = part.shape[0]
    num_parts = node_bounds.shape[0] - 1
    idmap_dir = root / fmt.IDMAP_DIR
    w_hash = fmt.NpyWriter(idmap_dir / f"{fmt.IDMAP_HASH}.npy", np.uint64, (num_nodes,))
    w_global = fmt.NpyWriter(idmap_dir / f"{fmt.IDMAP_GLOBAL}.npy", np.int64, (num_nodes,))
    sizes = np.diff(node_bounds)
    if id_type == "int64":
        w_raw = fmt.NpyWriter(idmap_dir / f"{fmt.IDMAP_RAW}.npy", np.int64, (num_nodes,))
        part_w = [fmt.NpyWriter(root / fmt.part_dir_name(p) / f"{fmt.RAW_ID}.npy", np.int64, (int(sizes[p]),)) for p in range(num_parts)]
    else:
        w_off = fmt.NpyWriter(idmap_dir / f"{fmt.IDMAP_RAW_OFFSETS}.npy", np.int64, (num_nodes + 1,))
        w_off.write(np.zeros(1, dtype=np.int64))
        w_bytes = fmt.NpyWriter(idmap_dir / f"{fmt.IDMAP_RAW_BYTES}.npy", np.uint8, (-1,))
        part_off = [fmt.NpyWriter(root / fmt.part_dir_name(p) / f"{fmt.RAW_ID_OFFSETS}.npy", np.int64, (int(sizes[p]) + 1,)) for p in range(num_parts)]
        part_bytes = [fmt.NpyWriter(root / fmt.part_dir_name(p) / f"{fmt.RAW_ID_BYTES}.npy", np.uint8, (-1,)) for p in range(num_parts)]
        for w in part_off:
            w.write(np.zeros(1, dtype=np.int64))
        part_total = np.zeros(num_parts, dtype=np.int64)
        map_total = 0
    for lo in range(0, num_nodes, chunk):
        hi = min(num_nodes, lo + chunk)
        w_hash.write(sorted_hashes(lo, hi))
        w_global.write(g[lo:hi])
        raw = sorted_raw(lo, hi)
        p_chunk = part[lo:hi]
        order = np.argsort(p_chunk, kind="stable")
        starts = np.searchsorted(p_chunk[order], np.arange(num_parts + 1))
        if id_type == "int64":
            w_raw.write(raw)
            for p in np.flatnonzero(np.diff(starts)):
                part_w[p].write(raw[order[starts[p] : starts[p + 1]]])
        else:
            w_off.write(raw.offsets[1:] + map_total)
            w_bytes.write(raw.data)
            map_total += int(raw.offsets[-1])
            for p in np.flatnonzero(np.diff(starts)):
                sel: StringIds = raw.take(order[starts[p] : starts[p + 1]])
                part_off[p].write(sel.offsets[1:] + part_total[p])
                part_bytes[p].write(sel.data)
                part_total[p] += int(sel.offsets[-1])
    writers = [w_hash, w_global] + ([w_raw, *part_w] if id_type == "int64" else [w_off, w_bytes, *part_off, *part_bytes])
    for w in writers:
        files[str(w.path.relative_to(root))] = w.close()
    return files
