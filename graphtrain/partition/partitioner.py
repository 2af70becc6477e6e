"""The partitioning pipeline: a raw edge list (plus an optional node table) -> a dataset directory.

Stages, each streaming with memory bounded by ``memory_limit`` (anonymous memory: see
:mod:`graphtrain.memory` for why file-backed pages are not counted; one chunk, one bucket or one bin
at a time, plus about 24 bytes per node for the assignment, global IDs and degrees):

1. **ingest**: read the edge list in batches, convert and validate columns, register every
   endpoint ID with the :class:`~graphtrain.partition.idmap.IdMapBuilder` (chunk-local dedup,
   keys spilled by hash bucket) and spill the chunk's key indices and edge columns. The node table,
   if any, likewise (features, labels, split spilled with it).
2. **ids**: bucket by bucket, distinct IDs get dense ranks (rids) in hash order, with in/out
   degrees; node-table duplicates and edge IDs missing from the node table are found here.
3. **assign**: ``part[rid]`` by ``hash``, ``ldg``/``fennel`` (streaming over an adjacency built
   out of core) or ``metis`` (in memory, when it fits).
4. **relabel**: global IDs ``node_bounds[p] + rank``; edges routed to destination bins and written
   as CSC partitions; node data placed; raw IDs and the ``idmap`` written.
5. ``meta.json`` is written last and the temporary directory renamed into place.
"""
from __future__ import annotations

import contextlib
import re
import shutil
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Dict, Iterator, List, Optional, Sequence, Tuple

import numpy as np
import pyarrow as pa

from graphtrain.errors import ConfigError, InputError
from graphtrain.graph import REVERSE, TIME, WEIGHT
from graphtrain.io import staged_directory
from graphtrain.log import get_logger
from graphtrain.memory import PeakMemory, peak_rss_bytes
from graphtrain.partition import format as fmt
from graphtrain.partition import ingest
from graphtrain.partition.assign import (
    METHODS,
    STREAMING,
    assign_hash,
    assign_metis,
    assign_streaming,
    check_assignment,
    metis_memory_bytes,
)
from graphtrain.partition._kernels import csr_from_pairs, plan_bins
from graphtrain.partition.compact import ColumnRanges, check_float32_columns, plan_encoding
from graphtrain.partition.idmap import HASH_SCHEME, DuplicateNodeError, IdMapBuilder
from graphtrain.partition.relabel import (
    EdgeStats,
    NodeDataSpec,
    global_ids,
    plan_edge_bins,
    route_edges,
    write_edge_bins,
    write_node_bins,
    write_raw_ids_and_idmap,
)
from graphtrain.partition.spill import RangeBins, SpillDir
from graphtrain.progress import Progress as _Progress  # the package's one progress bar (graphtrain.progress)
from graphtrain.units import format_size, parse_size

log = get_logger("partition")

DEFAULT_MEMORY_LIMIT = "2G"
BASELINE_BYTES = 260 << 20  # interpreter + numpy + pyarrow + Numba with its kernels loaded + reader buffers (measured)
MIN_MEMORY_LIMIT = 384 << 20
PER_NODE_BYTES = 24  # part (4) + global id (8) + in/out degree (8) + slack
_NAME_RE = re.compile(r"[^A-Za-z0-9_.-]+")


# -- configuration ------------------------------------------------------------------------------
@dataclass(frozen=True)
class EdgeColumns:
    """Which input columns of the edge list hold what.

    Attributes:
        src, dst: source and destination node IDs.
        time: optional edge time (integers, timestamps or dates); stored as ``edge_time``.
        weight: optional non-negative edge weight; stored as ``edge_weight``.
        extra: other numeric edge columns to keep (stored under their names).
        rename: stored names of some ``extra`` columns (input name -> name), e.g. the fraud
            pipeline stores the user's amount column as ``amount``; the others keep theirs.
        finite: ``extra`` columns every row must give a finite number (an empty or non-finite
            value is an input error naming the row), e.g. a transaction amount.
    """

    src: str
    dst: str
    time: Optional[str] = None
    weight: Optional[str] = None
    extra: Tuple[str, ...] = ()
    rename: Optional[Dict[str, str]] = None
    finite: Tuple[str, ...] = ()

    def input_columns(self) -> List[str]:
        cols = [self.src, self.dst] + [c for c in (self.time, self.weight) if c] + list(self.extra)
        seen = set()
        for c in cols:
            if c in seen:
                raise ConfigError(f"column {c!r} is given for two roles; each input column can be used once")
            seen.add(c)
        return cols

    def stored_names(self) -> Dict[str, str]:
        """Input column -> graphtrain name of every stored edge column."""
        names = {}
        if self.time:
            names[self.time] = TIME
        if self.weight:
            names[self.weight] = WEIGHT
        for c in self.extra:
            name = _NAME_RE.sub("_", (self.rename or {}).get(c, c)).strip("_") or "col"
            if name in names.values():
                raise ConfigError(f"extra edge column {c!r} would be stored as {name!r}, which is already taken "
                                  f"(time and weight are stored as 'time' and 'weight')")
            names[c] = name
        return names


@dataclass(frozen=True)
class NodeColumns:
    """Which input columns of the node table hold what (all but ``id`` optional)."""

    id: str
    label: Optional[str] = None
    features: Tuple[str, ...] = ()
    split: Optional[str] = None
    time: Optional[str] = None  # node time (integers, timestamps or dates), e.g. when the node is scored

    def input_columns(self) -> List[str]:
        cols = [self.id] + [c for c in (self.label, self.split, self.time) if c] + list(self.features)
        if len(set(cols)) != len(cols):
            raise ConfigError("a node-table column is given for two roles")
        return cols


@dataclass(frozen=True)
class Tuning:
    """Sizes derived from the memory limit (tests override them to force many chunks/buckets/bins).

    Attributes:
        chunk_rows: rows per ingest chunk.
        num_buckets: hash buckets of the ID map (power of two).
        bin_edges: most edges per destination bin (also per adjacency bin, doubled entries).
        bin_nodes: most node-table rows per node bin.
    """

    chunk_rows: int
    num_buckets: int
    bin_edges: int
    bin_nodes: int

    # Past these sizes larger working sets no longer buy speed (measured on R-MAT), only memory.
    MAX_STAGE_BYTES = 256 << 20
    MAX_CHUNK_ROWS = 1 << 19
    CHUNKS_IN_FLIGHT = 3  # one being spilled, one queued, one being read and de-duplicated

    @classmethod
    def plan(cls, memory_limit: int, est_rows: int, row_bytes: int, feature_bytes: int = 0) -> "Tuning":
        """Sizes for a run that may use ``memory_limit`` bytes in all.

        Args:
            memory_limit: bytes.
            est_rows: estimated input rows (edges plus node-table rows; may over-estimate).
            row_bytes: stored bytes per edge row (IDs and columns).
            feature_bytes: bytes of node features per node-table row.
        """
        stage = min(max(memory_limit - BASELINE_BYTES, 32 << 20) // 2, cls.MAX_STAGE_BYTES)
        chunk_rows = int(np.clip(stage // (cls.CHUNKS_IN_FLIGHT * (64 + 3 * row_bytes)), 1 << 14, cls.MAX_CHUNK_ROWS))
        # a bucket holds at most 2 keys per input row (all distinct), ~56 bytes each while sorted
        keys = 2 * max(est_rows, 1)
        buckets = 1
        while buckets < 4096 and keys * 56 / buckets > stage:
            buckets *= 2
        bin_edges = int(max(stage // (48 + 3 * row_bytes), 1 << 14))
        bin_nodes = int(max(stage // (32 + 2 * feature_bytes), 1 << 12))
        return cls(chunk_rows, buckets, bin_edges, bin_nodes)


@dataclass(frozen=True)
class PartitionOptions:
    """How to partition.

    Attributes:
        num_parts: number of partitions P (>= 1).
        method: ``hash``, ``ldg``, ``fennel`` or ``metis``.
        passes: streaming passes of ``ldg``/``fennel`` (restreaming improves the cut).
        seed: seed of the hash and of METIS.
        memory_limit: bytes (or a size such as ``"4G"``) the run may use; bounds chunk, bucket and
            bin sizes. Nodes add about 24 bytes each on top of the fixed part.
        id_type: ``"int64"``, ``"string"`` or None to detect (integer columns -> int64).
        drop_self_loops, drop_duplicates: remove them (they are always counted).
        add_missing_nodes: with a node table, add edge endpoints missing from it as unlabelled
            nodes (zero features) instead of failing.
        missing_features: what an empty or non-finite node-table feature value becomes: ``"zero"``
            (0, with a warning) or ``"nan"`` (kept missing, for a consumer that handles it).
        add_reverse: store every input edge twice, ``src -> dst`` as given and ``dst -> src``, with
            the same edge columns and one more, ``reverse`` (int8: 0 as given, 1 the added copy): a
            node's in-edges then hold both whom it received from and whom it sent to (the fraud
            pipeline's transaction graph), told apart by ``reverse``. Stored edges = 2 x input rows.
        edge_aggregates: add structural node features computed from the edges: in/out degree and
            the sum, mean and max of each edge column over in-edges and over out-edges
            (:mod:`graphtrain.partition.aggregates`), after the node table's features.
        float32_columns: edge columns (input or stored names, e.g. ``amount``) to store as float32
            if they hold floats: half the bytes, lossy (relative error at most 2**-24, about 6e-8;
            the largest is recorded in ``meta.json``). Integer columns and indices are always stored
            compactly where lossless, named here or not (:mod:`graphtrain.columns`).
        force: replace an existing dataset at the output path.
        disk_check: before any work, estimate the disk the run needs at its peak (spill and dataset,
            :func:`graphtrain.plan.check_disk`) and refuse it if the free disk at the output cannot
            hold it (``InsufficientDiskError``).
        progress: show progress bars on stderr.
        threads: Numba threads (None: all cores).
        tuning: explicit sizes (tests); None derives them from ``memory_limit``.
    """

    num_parts: int
    method: str = "hash"
    passes: int = 3
    seed: int = 0
    memory_limit: object = DEFAULT_MEMORY_LIMIT
    id_type: Optional[str] = None
    drop_self_loops: bool = False
    drop_duplicates: bool = False
    add_missing_nodes: bool = False
    add_reverse: bool = False
    missing_features: str = "zero"
    edge_aggregates: bool = False
    float32_columns: Tuple[str, ...] = ()
    force: bool = False
    disk_check: bool = True
    progress: bool = False
    threads: Optional[int] = None
    tuning: Optional[Tuning] = None

    def validate(self) -> None:
        if not isinstance(self.num_parts, (int, np.integer)) or self.num_parts < 1:
            raise ConfigError(f"number of partitions must be a positive integer, got {self.num_parts!r}")
        if self.num_parts > 65535:
            raise ConfigError(f"at most 65535 partitions are supported, got {self.num_parts}")
        if self.method not in METHODS:
            raise ConfigError(f"method must be one of {', '.join(METHODS)}, got {self.method!r}")
        if self.method == "metis":
            from graphtrain.optional import require

            require("pymetis", feature="partition method 'metis'")
        if self.id_type not in (None, *fmt.ID_TYPES):
            raise ConfigError(f"id type must be one of {', '.join(fmt.ID_TYPES)}, got {self.id_type!r}")
        if parse_size(self.memory_limit) < MIN_MEMORY_LIMIT:
            raise ConfigError(
                f"--memory-limit {self.memory_limit} is below the {format_size(MIN_MEMORY_LIMIT)} the runtime itself needs "
                f"(Python, NumPy, pyarrow and the compiled Numba kernels take about {format_size(BASELINE_BYTES)})")
        if self.passes < 1:
            raise ConfigError(f"passes must be >= 1, got {self.passes}")
        if self.threads is not None and self.threads < 1:
            raise ConfigError(f"threads must be >= 1, got {self.threads}")
        if self.missing_features not in ("zero", "nan"):
            raise ConfigError(f"missing_features must be 'zero' or 'nan', got {self.missing_features!r}")
        if self.add_reverse and self.drop_duplicates:
            raise ConfigError("--add-reverse with --drop-duplicates is not supported: a reverse copy would count as a "
                              "duplicate of a transaction the other way; drop duplicates from the input first")


@dataclass
class PartitionSummary:
    """What a partitioning run did (also printed by the CLI and stored in ``meta.json``)."""

    out_dir: str
    num_parts: int
    method: str
    num_nodes: int
    num_edges: int
    input_rows: int
    edge_cut: int
    edge_cut_fraction: float
    node_balance: float
    edge_balance: float
    self_loops: int
    duplicate_edges: int
    dropped_self_loops: int
    dropped_duplicates: int
    missing_nodes_added: int
    id_type: str
    seconds: float
    peak_rss_bytes: int
    spill_bytes: int
    peak_anon_bytes: int = 0
    spill_peak_bytes: int = 0  # the most spill on disk at once (SpillDir.peak_bytes)
    dataset_bytes: int = 0  # the finished dataset directory on disk
    dataset_bytes_per_edge: float = 0.0  # dataset_bytes / num_edges
    edge_bytes_per_edge: float = 0.0  # indptr, src and edge columns (the part that grows with edges) / num_edges
    stage_seconds: Dict[str, float] = field(default_factory=dict)
    warnings: List[str] = field(default_factory=list)

    def to_dict(self) -> dict:
        return asdict(self)


EDGE_BALANCE_LIMIT = 1.5  # max/mean in-edges per partition above which partition() warns


def edge_balance_warning(edges_per_part: np.ndarray, method: str) -> Optional[str]:
    """A warning when one partition holds more than ``EDGE_BALANCE_LIMIT`` x the mean number of
    in-edges (None otherwise). Sampling work follows the in-edges, so the worker serving that
    partition does most of every batch's sampling and the others wait for it at each collective."""
    edges_per_part = np.asarray(edges_per_part, dtype=np.int64)
    total = int(edges_per_part.sum())
    if edges_per_part.size < 2 or total == 0:
        return None
    balance = float(edges_per_part.max() / edges_per_part.mean())
    if balance <= EDGE_BALANCE_LIMIT:
        return None
    top = int(np.argmax(edges_per_part))
    advice = ("a few nodes hold most in-edges, and no node assignment can split one node's in-edges"
              if method == "hash" else
              f"{method} balances node counts, not edges; --method hash balances edges in expectation")
    return (f"partition {top} holds {100 * int(edges_per_part[top]) / total:.1f}% of the {total:,} in-edges "
            f"(edge balance max/mean {balance:.2f} > {EDGE_BALANCE_LIMIT}): the worker serving it will do most of "
            f"the sampling while the others wait; {advice}")


def _release_memory() -> None:
    """Hand memory that pyarrow's pool keeps after a stage back to the OS (~65 MB after ingest)."""
    pa.default_memory_pool().release_unused()


# -- stage 1: ingest ----------------------------------------------------------------------------
@dataclass
class _EdgeIngest:
    num_chunks: int = 0
    num_rows: int = 0
    columns: Dict[str, np.dtype] = field(default_factory=dict)  # stored name -> dtype
    schema: List[fmt.EdgeColumn] = field(default_factory=list)
    inv_dtypes: List[type] = field(default_factory=list)  # dtype of each chunk's spilled key indices
    ranges: ColumnRanges = field(default_factory=ColumnRanges)  # each column's (min, max)


def _decide_id_type(options: PartitionOptions, edges: ingest.TableSource, cols: EdgeColumns,
                    nodes: Optional[ingest.TableSource], node_cols: Optional[NodeColumns]) -> str:
    if options.id_type:
        return options.id_type
    types = list(ingest.peek_types(edges, [cols.src, cols.dst]).values())
    if nodes is not None:
        types += list(ingest.peek_types(nodes, [node_cols.id]).values())
    return "int64" if all(ingest.id_type_of(t) == "int64" for t in types) else "string"


def _ingest_edges(source, cols: EdgeColumns, id_type: str, builder: IdMapBuilder, spill: SpillDir,
                  tuning: Tuning, progress: bool) -> _EdgeIngest:
    result = _EdgeIngest()
    stored = cols.stored_names()
    types = {cols.src: pa.int64() if id_type == "int64" else pa.string(),
             cols.dst: pa.int64() if id_type == "int64" else pa.string()}
    units: Dict[str, Optional[str]] = {}

    def prepared():
        """Read, validate, hash and de-duplicate batches (runs in the read-ahead thread)."""
        for batch in ingest.iter_batches(source, cols.input_columns(), tuning.chunk_rows, types):
            if batch.num_rows == 0:
                continue
            src = ingest.read_ids(batch, cols.src, id_type)
            dst = ingest.read_ids(batch, cols.dst, id_type)
            values: Dict[str, np.ndarray] = {}
            for in_name, name in stored.items():
                if name == TIME:
                    v, unit = ingest.read_time_column(batch, in_name)
                    if name in units and units[name] != unit:
                        raise batch.error(0, f"time unit changed from {units[name]} to {unit}", in_name)
                    units[name] = unit
                elif name == WEIGHT:
                    v = ingest.read_float_column(batch, in_name, non_negative=True)
                else:
                    v = ingest.read_number_column(batch, in_name)
                    if in_name in cols.finite and v.dtype.kind == "f" and not np.isfinite(v).all():
                        raise batch.error(int(np.flatnonzero(~np.isfinite(v))[0]), "empty or non-finite value", in_name)
                values[name] = (v, in_name, batch)
            ids = ingest.StringIds.concat([src, dst]) if id_type == "string" else np.concatenate([src, dst])
            yield batch.num_rows, ids, builder.distinct_keys(ids), values

    bar = _Progress(progress, "read edges", source.estimated_rows(), "rows")
    for n, ids, keys, values in ingest.read_ahead(prepared()):
        c = result.num_chunks
        for name, (v, in_name, batch) in values.items():
            if name not in result.columns:
                result.columns[name] = v.dtype
                result.schema.append(fmt.EdgeColumn(name=name, dtype=v.dtype.name, source=in_name, unit=units.get(name)))
            elif v.dtype != result.columns[name]:
                if result.columns[name] == np.float64:
                    v = v.astype(np.float64)
                else:
                    raise batch.error(0, f"column changed from integers to {v.dtype} values", in_name)
            spill.write(f"echunk_{c:06d}_{name}", v)
            result.ranges.add(name, v)
        inverse = builder.add_chunk("edge", ids, num_sources=n, keys=keys)
        inv_dtype = np.int32 if inverse.shape[0] < 2**31 else np.int64  # indices < number of keys <= 2n
        spill.write(f"echunk_{c:06d}_inv", inverse.astype(inv_dtype))
        result.inv_dtypes.append(inv_dtype)
        result.num_chunks += 1
        result.num_rows += n
        bar.update(n)
    bar.close()
    if result.num_rows == 0:
        where = ", ".join(str(p) for p in source.paths) or source.name
        raise InputError(where, "no edges: the input has no data rows")
    return result


@dataclass
class _NodeIngest:
    num_chunks: int = 0
    num_rows: int = 0
    spec: NodeDataSpec = field(default_factory=NodeDataSpec)
    locations: List[Tuple[int, str, int, str]] = field(default_factory=list)  # (row_offset, where, first_row, unit)
    null_features: int = 0
    time_unit: Optional[str] = None

    def locate(self, row: int) -> Tuple[str, int, str]:
        """(file, line/row, unit) of global node-table row index ``row``."""
        starts = [loc[0] for loc in self.locations]
        i = int(np.searchsorted(starts, row, side="right") - 1)
        offset, where, first, unit = self.locations[i]
        return where, first + row - offset, unit


def _ingest_nodes(source, cols: NodeColumns, id_type: str, builder: IdMapBuilder, spill: SpillDir,
                  tuning: Tuning, progress: bool, zero_missing: bool = True) -> _NodeIngest:
    result = _NodeIngest(spec=NodeDataSpec(len(cols.features), cols.label is not None, cols.split is not None,
                                           cols.time is not None, 0.0 if zero_missing else float("nan")))
    types = {cols.id: pa.int64() if id_type == "int64" else pa.string()}
    if cols.split:
        types[cols.split] = pa.string()
    bar = _Progress(progress, "read nodes", source.estimated_rows(), "rows")
    for batch in ingest.iter_batches(source, cols.input_columns(), tuning.chunk_rows, types):
        if batch.num_rows == 0:
            continue
        c = result.num_chunks
        result.locations.append((batch.row_offset, batch.where, batch.first_row, batch.unit))
        ids = ingest.read_ids(batch, cols.id, id_type)
        rows = np.arange(batch.row_offset, batch.row_offset + batch.num_rows, dtype=np.int64)
        try:
            inverse = builder.add_chunk("node", ids, rows=rows)
        except DuplicateNodeError as dup:
            raise _duplicate_error(dup, result) from None
        spill.write(f"nchunk_{c:06d}_inv", inverse)
        if cols.features:
            feats = np.empty((batch.num_rows, len(cols.features)), dtype=np.float32)
            for j, name in enumerate(cols.features):
                feats[:, j] = ingest.read_float_column(batch, name, allow_null=True)
            nulls = ~np.isfinite(feats)
            if nulls.any():
                result.null_features += int(nulls.sum())
                feats[nulls] = 0.0 if zero_missing else np.nan
            spill.write(f"nchunk_{c:06d}_feat", feats)
        if cols.label:
            spill.write(f"nchunk_{c:06d}_label", ingest.read_label_column(batch, cols.label))
        if cols.split:
            spill.write(f"nchunk_{c:06d}_split", ingest.read_split_column(batch, cols.split, fmt.SPLIT_CODES))
        if cols.time:
            t, unit = ingest.read_time_column(batch, cols.time)
            if c and unit != result.time_unit:
                raise batch.error(0, f"time unit changed from {result.time_unit} to {unit}", cols.time)
            result.time_unit = unit
            spill.write(f"nchunk_{c:06d}_time", t)
        result.num_chunks += 1
        result.num_rows += batch.num_rows
        bar.update(batch.num_rows)
    bar.close()
    if result.num_rows == 0:
        where = ", ".join(str(p) for p in source.paths) or source.name
        raise InputError(where, "the node table has no data rows")
    if result.null_features and zero_missing:
        log.warning("node table: %d missing or non-finite feature values were replaced by 0", result.null_features)
    return result


def _duplicate_error(dup: DuplicateNodeError, nodes: _NodeIngest) -> InputError:
    (w1, r1, unit), (w2, r2, _) = nodes.locate(dup.rows[0]), nodes.locate(dup.rows[1])
    first = f"{unit} {r1}" if w1 == w2 else f"{w1}, {unit} {r1}"
    return InputError(w2, f"node ID {dup.raw!r} appears twice in the node table (first at {first})", row=r2, unit=unit)


def _missing_error(examples, count, edges, cols: EdgeColumns, id_type: str, nodes_source, tuning) -> InputError:
    raw = examples[0].raw
    shown = ", ".join(repr(m.raw) for m in examples)
    node_where = ", ".join(str(p) for p in nodes_source.paths) or nodes_source.name
    # error path only: find where the first example is used, to point at a line
    for batch in ingest.iter_batches(edges, [cols.src, cols.dst], tuning.chunk_rows):
        for col in (cols.src, cols.dst):
            ids = ingest.read_ids(batch, col, id_type)
            hits = np.flatnonzero(np.asarray(ids.to_arrow() == raw if id_type == "string" else ids == raw))
            if hits.size:
                return batch.error(int(hits[0]), f"{count} edge endpoint ID(s) are not in the node table {node_where}, "
                                   f"e.g. {shown}; pass --add-missing-nodes to add them as unlabelled nodes", col)
    return InputError(node_where, f"{count} edge endpoint ID(s) are missing from the node table, e.g. {shown}")


# -- stage 3/4 helpers: rid chunks and adjacency --------------------------------------------------
def _rid_chunks(builder: IdMapBuilder, spill: SpillDir, ingest_info: _EdgeIngest, with_columns: bool,
                relabel: Optional[np.ndarray] = None, consume: bool = False,
                ) -> Iterator[Tuple[np.ndarray, np.ndarray, Dict[str, np.ndarray]]]:
    """Per ingest chunk: ``(src, dst, edge columns)`` in input order.

    Endpoints are rids, or ``relabel[rid]`` (e.g. global IDs) when ``relabel`` is given -- applied to
    the chunk's distinct keys before expanding them to endpoints, which saves one random gather.
    ``consume``: this is the last pass, so each chunk's spill (key indices, edge columns, the ID
    map's key order) is deleted as soon as it is read, and the ID map's rids of edge keys at the end.
    """
    for c in range(ingest_info.num_chunks):
        key_ids = builder.chunk_rids("edge", c) if relabel is None else relabel[builder.chunk_rids("edge", c)]
        ids = key_ids[spill.read(f"echunk_{c:06d}_inv", ingest_info.inv_dtypes[c])]
        n = ids.shape[0] // 2
        cols = {name: spill.read(f"echunk_{c:06d}_{name}", dt) for name, dt in ingest_info.columns.items()} if with_columns else {}
        if consume:
            _drop_chunk_spill(spill, builder, "edge", c, ["inv", *ingest_info.columns])
        yield ids[:n], ids[n:], cols
    if consume:
        _drop_chunk_spill(spill, builder, "edge", None, [])


def _drop_chunk_spill(spill: SpillDir, builder: IdMapBuilder, kind: str, chunk: Optional[int], names) -> None:
    """Delete ingest chunk ``chunk``'s spill streams ``names`` and its ID-map key order, once read for the
    last time; with ``chunk=None``, the ID map's per-bucket rids of ``kind`` keys (read by every chunk)."""
    if chunk is None:
        for b in range(builder.num_buckets):
            spill.remove(builder._stream(kind, "rid", b))
        return
    for name in names:
        spill.remove(f"{kind[0]}chunk_{chunk:06d}_{name}")
    spill.remove(builder._stream(kind, "order", chunk))


def _with_reverse(chunks: Iterator[Tuple[np.ndarray, np.ndarray, Dict[str, np.ndarray]]]):
    """Each chunk twice: as given with ``reverse`` 0, then with the endpoints swapped and ``reverse`` 1."""
    for src, dst, cols in chunks:
        yield src, dst, {**cols, REVERSE: np.zeros(src.shape[0], dtype=np.int8)}
        yield dst, src, {**cols, REVERSE: np.ones(src.shape[0], dtype=np.int8)}


class _Adjacency:
    """Symmetrised adjacency over rids, spilled once in bins and re-read for each streaming pass."""

    def __init__(self, builder, spill, ingest_info, num_nodes, degree, max_entries):
        self.bounds = plan_bins(np.array([0, num_nodes], dtype=np.int64), degree, max(1, max_entries))
        self.bins = RangeBins(spill, "adj", self.bounds, {"nbr": np.int64})
        for rid_src, rid_dst, _ in _rid_chunks(builder, spill, ingest_info, with_columns=False):
            self.bins.add(rid_src, {"nbr": rid_dst})
            self.bins.add(rid_dst, {"nbr": rid_src})

    def __call__(self) -> Iterator[Tuple[int, np.ndarray, np.ndarray]]:
        """``(rid_start, indptr, nbrs)`` per bin, in rid order."""
        for b in range(self.bins.num_bins):
            lo, hi = int(self.bounds[b]), int(self.bounds[b + 1])
            keys, cols = self.bins.read(b, remove=False)
            indptr, nbrs, _ = csr_from_pairs(lo, hi - lo, keys, cols["nbr"])
            yield lo, indptr, nbrs

    def remove(self) -> None:
        for b in range(self.bins.num_bins):
            self.bins.read(b, remove=True)


def _assign(options: PartitionOptions, builder: IdMapBuilder, spill: SpillDir, ingest_info: _EdgeIngest,
            tuning: Tuning, memory_limit: int) -> np.ndarray:
    n = builder.num_nodes
    P = options.num_parts
    if options.method == "hash":
        chunk = max(tuning.chunk_rows, 1 << 20)
        part = assign_hash((builder.sorted_hashes(lo, min(n, lo + chunk)) for lo in range(0, n, chunk)), n, P, options.seed)
    else:
        degree = builder.in_degree + builder.out_degree
        if options.method in STREAMING:
            adjacency = _Adjacency(builder, spill, ingest_info, n, degree, 2 * tuning.bin_edges)
            part = assign_streaming(adjacency, n, int(degree.sum() // 2), P, options.method, passes=options.passes)
            adjacency.remove()
        else:
            need = metis_memory_bytes(n, int(degree.sum()))
            if need > memory_limit - BASELINE_BYTES - PER_NODE_BYTES * n:
                raise ConfigError(
                    f"--method metis needs the whole graph in memory (about {format_size(need)} for {n} nodes and "
                    f"{int(degree.sum()) // 2} edges), more than --memory-limit {format_size(memory_limit)} allows; "
                    f"raise --memory-limit or use --method ldg (streaming)")
            adjacency = _Adjacency(builder, spill, ingest_info, n, degree, 1 << 62)
            (_, indptr, nbrs), = list(adjacency())  # one bin: the whole graph
            adjacency.remove()
            part = assign_metis(indptr, nbrs, P, options.seed)
    check_assignment(part, P)
    return part


# -- the pipeline -------------------------------------------------------------------------------
def partition(
    edges: ingest.TableSource,
    edge_columns: EdgeColumns,
    out_dir,
    options: PartitionOptions,
    nodes: Optional[ingest.TableSource] = None,
    node_columns: Optional[NodeColumns] = None,
) -> PartitionSummary:
    """Partition an edge list (and optional node table) into a dataset directory at ``out_dir``.

    Raises:
        InputError: bad input (file, line and problem named). ConfigError: bad options.
        OutputExistsError: ``out_dir`` exists and ``options.force`` is not set.
        InsufficientDiskError: the free disk cannot hold the run (``options.disk_check``).
    Nothing is written at ``out_dir`` unless the whole run succeeds.
    """
    options.validate()
    if (nodes is None) != (node_columns is None):
        raise ConfigError("a node table needs its columns (at least the ID column), and vice versa")
    memory_limit = parse_size(options.memory_limit)
    edge_columns.input_columns()
    if options.add_reverse and REVERSE in edge_columns.stored_names().values():
        raise ConfigError(f"an edge column would be stored as {REVERSE!r}, the name --add-reverse gives its direction "
                          f"column; rename that input column")
    if node_columns is not None:
        node_columns.input_columns()
    float32_columns = check_float32_columns(options.float32_columns, edge_columns.stored_names())
    if options.threads:
        import numba

        numba.set_num_threads(min(options.threads, numba.config.NUMBA_NUM_THREADS))
    t_start = time.perf_counter()
    stage: Dict[str, float] = {}
    t = time.perf_counter()

    def lap(name):
        nonlocal t
        now = time.perf_counter()
        stage[name] = round(now - t, 3)
        t = now

    out_dir = Path(out_dir)
    if options.disk_check:
        from graphtrain.io import reclaim_dead_staging, setup_lock
        from graphtrain.plan import check_disk

        if out_dir.parent.is_dir():
            with setup_lock(out_dir):
                reclaim_dead_staging(out_dir)  # a dead run's staging directory gives its disk back first
        check_disk(out_dir, edges, nodes=nodes, edge_columns=edge_columns, node_columns=node_columns, options=options)
    with PeakMemory() as peak, staged_directory(out_dir, options.force) as tmp, \
            contextlib.closing(SpillDir(tmp / "_spill")) as spill:
        id_type = _decide_id_type(options, edges, edge_columns, nodes, node_columns)
        row_bytes = 8 * (len(edge_columns.input_columns()))
        feature_bytes = 4 * len(node_columns.features) if node_columns else 0
        tuning = options.tuning or Tuning.plan(memory_limit, edges.estimated_rows() + (nodes.estimated_rows() if nodes else 0),
                                               row_bytes, feature_bytes)
        log.debug("tuning: %s", tuning)
        builder = IdMapBuilder(spill, id_type, tuning.num_buckets)
        edge_info = _ingest_edges(edges, edge_columns, id_type, builder, spill, tuning, options.progress)
        stored_columns = dict(edge_info.columns)  # what the dataset stores per edge (+ reverse)
        if options.add_reverse:
            stored_columns[REVERSE] = np.dtype(np.int8)
            edge_info.schema.append(fmt.EdgeColumn(name=REVERSE, dtype="int8", source=REVERSE))
        plan_encoding(stored_columns, edge_info.ranges, float32_columns, 0, 0)  # float32 range errors before the long stages
        node_info = (_ingest_nodes(nodes, node_columns, id_type, builder, spill, tuning, options.progress,
                                   zero_missing=options.missing_features == "zero") if nodes else None)
        _release_memory()
        lap("ingest")

        bar = _Progress(options.progress, "assign ids", tuning.num_buckets, "buckets")
        try:
            missing = builder.finish(require_node_table=nodes is not None, on_bucket=lambda b: bar.update())
        except DuplicateNodeError as dup:
            raise _duplicate_error(dup, node_info) from None
        finally:
            bar.close()
        if missing and not options.add_missing_nodes:
            raise _missing_error(missing, builder.num_missing, edges, edge_columns, id_type, nodes, tuning)
        n = builder.num_nodes
        if PER_NODE_BYTES * n > memory_limit - BASELINE_BYTES:
            log.warning("%d nodes need about %s for per-node arrays, more than --memory-limit %s leaves",
                        n, format_size(PER_NODE_BYTES * n), format_size(memory_limit))
        lap("ids")

        part = _assign(options, builder, spill, edge_info, tuning, memory_limit)
        lap("assign")

        node_bounds, g = global_ids(part, options.num_parts)
        stats = EdgeStats()
        in_degree = builder.in_degree + builder.out_degree if options.add_reverse else builder.in_degree
        max_part_edges = int(np.bincount(part, weights=in_degree, minlength=options.num_parts).max())  # bound: before drops
        encoding = plan_encoding(stored_columns, edge_info.ranges, float32_columns, n, max_part_edges)
        bins = RangeBins(spill, "ebin", plan_edge_bins(node_bounds, in_degree, g, tuning.bin_edges),
                         {"src": np.int64, **stored_columns})
        del in_degree
        bar = _Progress(options.progress, "route edges", edge_info.num_rows * (2 if options.add_reverse else 1), "edges")
        chunks = _rid_chunks(builder, spill, edge_info, with_columns=True, relabel=g, consume=True)
        route_edges(bins, _with_reverse(chunks) if options.add_reverse else chunks, options.drop_self_loops, stats, bar.update)
        bar.close()
        del builder.in_degree, builder.out_degree
        bar = _Progress(options.progress, "write partitions", bins.num_bins, "bins")
        files = write_edge_bins(tmp, bins, node_bounds, encoding, options.drop_duplicates, stats, lambda b: bar.update())
        for col in edge_info.schema:
            col.offset = encoding.offsets.get(col.name)
            if col.name in encoding.float32:
                col.dtype, col.max_rel_error = "float32", encoding.errors.get(col.name, 0.0)
        bar.close()
        lap("edges")

        if node_info is not None and node_info.spec.any:
            files.update(_write_node_data(tmp, spill, builder, node_info, node_bounds, g, tuning))
        lap("nodes")
        feature_names = list(node_columns.features) if node_columns else []
        if options.edge_aggregates:
            from graphtrain.partition.aggregates import write_edge_aggregates

            feature_names += write_edge_aggregates(tmp, spill.root, node_bounds, list(stored_columns), feature_names,
                                                   files, tuning.bin_edges, tuning.bin_nodes, encoding.offsets)
            lap("aggregates")
        files.update(write_raw_ids_and_idmap(tmp, id_type, part, g, node_bounds, builder.sorted_hashes,
                                             builder.sorted_raw, max(tuning.chunk_rows, 1 << 20)))
        del g, part
        spill_bytes, spill_peak = spill.bytes_written, spill.peak_bytes
        spill.close()
        shutil.rmtree(spill.root)
        lap("idmap")

        num_edges = int(stats.edge_bounds[-1])
        nodes_per_part = np.diff(node_bounds)
        edges_per_part = np.diff(stats.edge_bounds)
        balance_warning = edge_balance_warning(edges_per_part, options.method)
        summary = PartitionSummary(
            out_dir=str(out_dir),
            num_parts=options.num_parts,
            method=options.method,
            num_nodes=n,
            num_edges=num_edges,
            input_rows=edge_info.num_rows,
            edge_cut=stats.edge_cut,
            edge_cut_fraction=round(stats.edge_cut / num_edges, 6) if num_edges else 0.0,
            node_balance=round(float(nodes_per_part.max() / nodes_per_part.mean()), 4) if n else 1.0,
            edge_balance=round(float(edges_per_part.max() / edges_per_part.mean()), 4) if num_edges else 1.0,
            self_loops=stats.self_loops,
            duplicate_edges=stats.duplicates,
            dropped_self_loops=stats.dropped_self_loops,
            dropped_duplicates=stats.dropped_duplicates,
            missing_nodes_added=builder.num_missing if nodes is not None else 0,
            id_type=id_type,
            seconds=0.0,
            peak_rss_bytes=0,
            peak_anon_bytes=0,
            spill_bytes=spill_bytes,
            spill_peak_bytes=spill_peak,
            stage_seconds=stage,
            warnings=[balance_warning] if balance_warning else [],
        )
        if balance_warning:
            log.warning(balance_warning)
        meta = fmt.DatasetMeta(
            num_parts=options.num_parts,
            num_nodes=n,
            num_edges=num_edges,
            node_bounds=node_bounds.tolist(),
            edge_bounds=stats.edge_bounds.tolist(),
            id_type=id_type,
            edge_columns=edge_info.schema,
            node_schema=fmt.NodeSchema(
                feature_names=feature_names,
                label=node_columns.label if node_columns else None,
                num_classes=None,
                split=node_columns.split if node_columns else None,
                time=node_columns.time if node_columns else None,
                time_unit=node_info.time_unit if node_info else None,
            ),
            time_sorted=TIME in edge_info.columns,
            id_columns={"src": edge_columns.src, "dst": edge_columns.dst, **({"node_id": node_columns.id} if node_columns else {})},
            partition_stats={k: getattr(summary, k) for k in ("method", "edge_cut", "edge_cut_fraction", "node_balance", "edge_balance")}
            | {"seed": options.seed, **({"passes": options.passes} if options.method in STREAMING else {})},
            ingest_stats={
                "edge_inputs": [str(p) for p in edges.paths] or [edges.name],
                "node_inputs": ([str(p) for p in nodes.paths] or [nodes.name]) if nodes else [],
                "input_rows": edge_info.num_rows,
                "node_rows": node_info.num_rows if node_info else 0,
                "self_loops": stats.self_loops,
                "duplicate_edges": stats.duplicates,
                "dropped_self_loops": stats.dropped_self_loops,
                "dropped_duplicates": stats.dropped_duplicates,
                "missing_nodes_added": summary.missing_nodes_added,
                "null_features_replaced": node_info.null_features if node_info else 0,
            },
            idmap={"hash": HASH_SCHEME},
            files=files,
        )
        if node_info is not None and node_columns.label:
            meta.node_schema.num_classes = _num_classes(tmp, options.num_parts)
        edge_bytes = fmt.edge_array_bytes(meta)
        summary.dataset_bytes = sum(f.stat().st_size for f in tmp.rglob("*") if f.is_file())  # no meta.json yet
        summary.dataset_bytes_per_edge = round(summary.dataset_bytes / num_edges, 2) if num_edges else 0.0
        summary.edge_bytes_per_edge = round(edge_bytes / num_edges, 2) if num_edges else 0.0
        meta.storage = {"edge_bytes": edge_bytes, "edge_bytes_per_edge": summary.edge_bytes_per_edge,
                        "dataset_bytes": summary.dataset_bytes, "dataset_bytes_per_edge": summary.dataset_bytes_per_edge,
                        "index_dtypes": {"indptr": encoding.indptr.name, "src": encoding.src.name}}
        fmt.write_meta(tmp, meta)
    summary.seconds = round(time.perf_counter() - t_start, 3)
    summary.peak_rss_bytes = peak_rss_bytes()
    summary.peak_anon_bytes = peak.peak_anon
    log.debug("partitioned %d nodes and %d edges into %d parts in %.1f s (edge cut %.2f%%)",
             n, num_edges, options.num_parts, summary.seconds, 100 * summary.edge_cut_fraction)
    return summary


def _num_classes(root: Path, num_parts: int) -> int:
    top = -1
    for p in range(num_parts):
        labels = np.load(root / fmt.part_dir_name(p) / f"{fmt.NODE_LABEL}.npy", mmap_mode="r")
        if labels.size:
            top = max(top, int(labels.max()))
    return top + 1


def _write_node_data(root: Path, spill: SpillDir, builder: IdMapBuilder, info: _NodeIngest,
                     node_bounds: np.ndarray, g: np.ndarray, tuning: Tuning):
    """Route node-table rows by global ID into bins and place them in each partition's arrays."""
    ones = np.ones(g.shape[0], dtype=np.int64)  # one row per node at most (duplicates were rejected)
    bounds = plan_edge_bins(node_bounds, ones, g, tuning.bin_nodes)
    bins = RangeBins(spill, "nbin", bounds, info.spec.dtypes())
    for c in range(info.num_chunks):
        rid = builder.chunk_rids("node", c)[spill.read(f"nchunk_{c:06d}_inv", np.int64)]
        cols = {}
        if info.spec.num_features:
            cols["feat"] = spill.read(f"nchunk_{c:06d}_feat", np.float32).reshape(-1, info.spec.num_features)
        if info.spec.has_label:
            cols["label"] = spill.read(f"nchunk_{c:06d}_label", np.int64)
        if info.spec.has_split:
            cols["split"] = spill.read(f"nchunk_{c:06d}_split", np.int8)
        if info.spec.has_time:
            cols["time"] = spill.read(f"nchunk_{c:06d}_time", np.int64)
        _drop_chunk_spill(spill, builder, "node", c, ["inv", "feat", "label", "split", "time"])
        bins.add(g[rid], cols)
    _drop_chunk_spill(spill, builder, "node", None, [])
    return write_node_bins(root, bins, node_bounds, info.spec)


# -- convenience: in-memory arrays ----------------------------------------------------------------
def partition_arrays(
    src,
    dst,
    out_dir,
    num_parts: int,
    edge_attrs: Optional[Dict[str, np.ndarray]] = None,
    node_ids=None,
    node_features: Optional[np.ndarray] = None,
    node_labels: Optional[np.ndarray] = None,
    node_split: Optional[Sequence[str]] = None,
    node_time: Optional[np.ndarray] = None,
    time_column: Optional[str] = None,
    weight_column: Optional[str] = None,
    **option_kw,
) -> PartitionSummary:
    """Partition in-memory edge arrays through the same pipeline as files.

    Args:
        src, dst: raw endpoint IDs (ints or strings), ``[E]``.
        out_dir: dataset directory to create.
        num_parts: P.
        edge_attrs: extra numeric edge columns ``name -> [E]``; ``time_column`` / ``weight_column``
            name the ones to use as time and weight.
        node_ids: raw IDs of a node table ``[N']`` (required for any node data).
        node_features: float ``[N', F]``; node_labels: int ``[N']`` (-1 unknown);
        node_split: ``"train"/"val"/"test"`` per node. node_time: int ``[N']`` time of each node
            (stored as the node time column ``"time"``).
        **option_kw: :class:`PartitionOptions` fields (method, seed, memory_limit, force, ...).
    """
    edge_attrs = dict(edge_attrs or {})
    table = pa.table({"src": pa.array(src), "dst": pa.array(dst), **{k: pa.array(v) for k, v in edge_attrs.items()}})
    extra = tuple(k for k in edge_attrs if k not in (time_column, weight_column))
    cols = EdgeColumns("src", "dst", time=time_column, weight=weight_column, extra=extra)
    nodes = node_cols = None
    if node_ids is not None:
        data = {"id": pa.array(node_ids)}
        feats: Tuple[str, ...] = ()
        if node_features is not None:
            node_features = np.asarray(node_features, dtype=np.float32).reshape(len(data["id"]), -1)
            feats = tuple(f"f{j}" for j in range(node_features.shape[1]))
            data.update({f: node_features[:, j] for j, f in enumerate(feats)})
        if node_labels is not None:
            data["label"] = pa.array(np.asarray(node_labels, dtype=np.int64))
        if node_split is not None:
            data["split"] = pa.array(list(node_split), type=pa.string())
        if node_time is not None:
            data["time"] = pa.array(np.asarray(node_time, dtype=np.int64))
        nodes = ingest.TableSource.from_table(pa.table(data), name="<nodes>")
        node_cols = NodeColumns("id", label="label" if node_labels is not None else None, features=feats,
                                split="split" if node_split is not None else None,
                                time="time" if node_time is not None else None)
    elif any(x is not None for x in (node_features, node_labels, node_split, node_time)):
        raise ConfigError("node features, labels, split or time need node_ids")
    return partition(ingest.TableSource.from_table(table, name="<edges>"), cols, out_dir,
                     PartitionOptions(num_parts=num_parts, **option_kw), nodes, node_cols)
