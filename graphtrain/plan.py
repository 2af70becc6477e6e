"""What a job will need before it runs: disk, memory and time per stage (``graphtrain plan``), and
the disk check that refuses a partitioning run the free disk cannot hold.

The model has two parts:

- **Bytes**, from the code: every spill stream and dataset array the partitioner writes, per edge,
  per distinct key of an ingest chunk and per node (:func:`partition_disk`). The one figure that
  depends on the data rather than the format is how many distinct IDs an ingest chunk holds
  (``keys_per_row``; the ID map spills 32+ bytes per distinct key per chunk, more than the edge
  itself). ``graphtrain plan`` reads it off the input's first chunk (:func:`sample_input`); the disk
  check before a run reads no data and assumes the worst (every ID of a chunk distinct), and samples
  the first chunk only when that worst case does not fit (:func:`check_disk`).
- **Seconds and peak memory**, fitted to runs measured on this machine (:data:`CALIBRATION`, with
  the commands and the runs they come from). The fraud pipeline's stages after partitioning are
  rough (``basis`` says which figures are which).

Public: :class:`Workload` (what is to be partitioned), :func:`workload_from_sources`,
:func:`workload_synthetic`, :func:`plan` (all stages of a job), :func:`check_disk` (raise
:class:`InsufficientDiskError` before any work), :func:`partition_disk`.
"""
from __future__ import annotations

import shutil
from dataclasses import asdict, dataclass, field
from functools import partial
from pathlib import Path
from typing import Dict, List, Optional

from graphtrain.errors import ConfigError, GraphtrainError
from graphtrain.log import get_logger
from graphtrain.units import format_size, parse_size

log = get_logger("plan")

JOBS = ("partition", "detect-rings")

# -- calibration: every measured constant of the model, in one place ----------------------------------
#
# Measured on this machine: the shared 2-core / 24 GB dev VM (numba 0.68, pyarrow 26), 2026-12-06,
# with other sessions' jobs beside it (1-minute load average 3.5-4.0 with the run, i.e. about one
# other core's worth busy: the machine as it is usually shared; a run's wall time was then within 10%
# of its CPU time). All `graphtrain partition --num-parts 4 --method hash --memory-limit 2G --threads 2`:
#
#     flock /tmp/graphtrain-bench.lock .venv/bin/python benchmarks/bench_plan.py --no-plan \
#         --workdir /tmp/gt-plan --rmat 1M 10M --sparse 10M --repeat 2 --quiet-load 4
#     flock /tmp/graphtrain-bench.lock .venv/bin/python benchmarks/bench_plan.py --no-plan \
#         --workdir /tmp/gt-plan --generated 125000 1250000 --both-directions --repeat 2 --quiet-load 4
#
# R-MAT 1M and 10M edges (int64 IDs, no columns; 0.12 and 0.37 distinct IDs per chunk row), 10M
# uniform random edges on 12.6M nodes (1.95 distinct IDs per row: the per-key and per-node terms),
# and `graphtrain generate` data of 125,000 and 1,250,000 accounts stored in both directions (2.0M and
# 20.4M rows; string IDs, amount and time, 7 features and a label). Each stage's seconds come from the
# fastest run of each input, solved stage by stage (benchmarks/RESULTS.md, "Planning (issue 20)",
# has the runs, the fit and the check against runs this fit did not see: R-MAT 50M, 30M random edges
# on 38M nodes, 3.75M generated accounts both ways, and the 1B-edge run of 2026-11-24).
CALIBRATION = {
    "startup_s": 0.72,  # process start-up, imports, loading the cached Numba kernels, meta.json (wall - stages)
    # ingest: per edge row (read, convert, hash, de-duplicate within the chunk, spill) and per distinct
    # ID of a chunk (the ID map's keys); the string figures are on generated data (2 edge columns, a
    # node table), which they include
    "ingest_fixed_s": 0.51,
    "ingest_s_per_row": {"int64": 0.109e-6, "string": 0.925e-6},
    "ingest_s_per_key": {"int64": 0.160e-6, "string": 0.178e-6},
    "ingest_s_per_node_row": 0.5e-6,  # not separated from the rows' cost: an assumption
    # ids: per spilled key (bucket de-duplication and sort, degrees) and per distinct node
    "ids_s_per_key": {"int64": 0.053e-6, "string": 0.28e-6},
    "ids_s_per_node": 0.447e-6,
    # assign: hash per node (ldg/fennel/metis: not measured here, rough)
    "assign_s_per_node": {"hash": 0.0125e-6, "ldg": 0.05e-6, "fennel": 0.05e-6, "metis": 1.0e-6},
    "assign_s_per_edge_pass": {"hash": 0.0, "ldg": 0.06e-6, "fennel": 0.06e-6, "metis": 0.5e-6},
    # edges: relabel, route to bins, CSC sort, write; per row, per node, per stored column and row
    # (with a time column the sort is by destination and time)
    "edges_s_per_row": 0.16e-6,
    "edges_s_per_node": 0.095e-6,
    "edges_s_per_column_row": 0.066e-6,
    "nodes_s_per_node_row": 0.2e-6,
    "idmap_s_per_node": {"int64": 0.12e-6, "string": 0.25e-6},
    # peak anonymous memory (sampled RssAnon per stage): the larger of ingest -- runtime + chunk rows x
    # (per row + per distinct ID of the chunk): the chunks in flight, their IDs, keys and columns --
    # and the later stages -- runtime + per-node arrays (degrees, assignment, global IDs, bin plan;
    # string IDs add their offsets and bytes). Peak RSS adds library and other file-backed pages.
    "anon_base_bytes": 150 << 20,
    "anon_ingest_per_chunk_row": {"int64": 200, "string": 400},
    "anon_ingest_per_chunk_key": {"int64": 95, "string": 340},
    "anon_per_node_bytes": 36,
    "rss_file_bytes": 135 << 20,
    # disk: a run moves the input, everything it writes (spill and dataset), and the spill that the
    # page cache (``page_cache_fraction`` of the RAM) cannot keep until it is read back; it cannot be
    # faster than the disk moves those bytes (the I/O overlaps the computing, so the run takes the
    # larger of the two, not their sum). The rate is the 500M-transaction run of 2026-12-07
    # (benchmarks/RESULTS.md, "500M transactions"): 81.3 GiB read and 104.8 GiB written in its
    # 2098 s partition stage (`vmstat 5`), CPU 45% user, 11% waiting for the disk; the model counts
    # 200 GiB for that run. (Sequential writes alone, `dd ... conv=fdatasync`: 68-79 MB/s.)
    "page_cache_fraction": 0.6,
    "disk_bytes_per_s": 95e6,
}

# The fraud pipeline after partitioning, fitted to runs of benchmarks/bench_pipeline_scale.py on this machine
# (generated data, 8.2 transactions per account, 2 hash partitions, 1 worker, its training budget
# `--epochs 2 --min-steps 0 --train-sample 500000 --val-sample 100000`; benchmarks/fit_pipeline_plan.py):
# 100,000 accounts (816,096 transactions; a warm run -- the first run of a fresh checkout also compiles
# the Numba kernels, about 45 s more), 1,000,000 (8,157,696; two runs) and 12,500,000 (101,968,183).
# Times: per stage (its record's seconds) a fixed cost plus a power law, `seconds = fixed + at_ref *
# (transactions / REF) ** exponent`: small runs are mostly fixed costs (Ray, model set-up, the tree's
# folds), large ones grow faster than the data for features, score and rings (page cache, sorting)
# and slower for train and baseline (a fixed step budget, a bounded training sample). Other training
# budgets are not modelled: train and score scale with the steps and the accounts scored. Memory: the
# pipeline's peak resident memory of the process tree (driver, local Ray, workers; mapped file pages
# included), a line per account through the same runs. Checked on a run it did not see, 3,000,000
# accounts: see benchmarks/RESULTS.md, "Fraud pipeline at scale".
FRAUD_FIT = {
    "ref_transactions": 8_157_696,
    # stage -> (fixed seconds, seconds more at ref_transactions, exponent)
    # features and score: fitted to the three runs at 15c3e97 (their code changed after the 500M run);
    # train, baseline, rings and memory: to those three and the 500M run at ab05a66
    "seconds": {"features": (0.0, 6.1, 1.025), "train": (13.3, 34.3, 0.75), "score": (1.1, 8.6, 1.116),
                "baseline": (8.0, 102.9, 0.681), "rings": (5.3, 7.6, 0.938)},
    "runs": ("100K, 1M and 12.5M accounts at 15c3e97 (features, score), with the 62.5M-account run at ab05a66 "
             "(train, baseline, rings, memory), 2026-12-07, a quiet machine"),
    "memory_fixed_bytes": 3.68e9, "memory_per_account_bytes": 343.2,
    # layer-wise inference's tables on disk at once with the pipeline's two layers: the hidden layer's
    # (64 wide) and the output layer's (2 classes), float32 (train/inference.py)
    "embedding_bytes_per_account": (64 + 2) * 4,
    "scores_bytes_per_account": 40,  # scores.parquet by raw ID (compressed)
    # the baseline's account feature tables (fraud/data/account_aggregates.py: base.npy [A, B] and
    # hop1_mean.npy [A, 2 B], float32; deleted once the GNN's inputs are written) and the GNN's inputs,
    # which replace the own features in the dataset (fraud/pipeline/detect.py, model_inputs: own + structure columns + one
    # missing-value indicator per column that can be missing), for directed transactions with an amount
    # and a time: B = own features + 2 x 8 structure columns; 4 per direction can be missing (amount
    # mean / max / std, span). The 500M run (62.5M accounts, 7 own features): base.npy 5.75 GB,
    # hop1_mean.npy 11.5 GB, node_feat.npy 7.75 GB (31 columns) -- 276 and 124 bytes per account.
    "structure_columns_per_direction": 8,
    "missing_columns_per_direction": 4,
    "checkpoint_bytes": 5 << 20,
}

# -- bytes of the on-disk formats (from the code, not measured) ----------------------------------------
EDGE_COLUMN_BYTES = 8  # an edge column as ingested and spilled (int64 / float64)
COMPACT_COLUMN_BYTES = 4  # stored as int32 offsets or float32 (graphtrain.columns)
INV_BYTES = 4  # spilled key index of each endpoint (int32 within a chunk)
# the ID map's spill of each chunk's distinct keys (partition/idmap.py, KEY_SPILL_DTYPES)
ORDER_BYTES = 4  # a key's position in its chunk's bucket order (int32)
KEY_STREAM_BYTES = 12  # per distinct edge key per chunk: its order, in- and out-degree (int32 each)
HASH_KEY_BYTES = 8  # int IDs: the hash of each key (string keys are hashed again from their bytes)
STRING_KEY_BYTES = 4  # string IDs: length per key (int32), plus the bytes themselves
ROW_BYTES = 8  # node keys: the node-table row (int64)
RID_BYTES = 4  # rid of each spilled key, after the ID map's buckets are done (int32 up to INT32_RID_KEYS keys, else int64)
INT32_RID_KEYS = 2**31 - 1  # as partition/idmap.py's INT32_RID_KEYS (this module imports no NumPy)
ADJ_BYTES_PER_EDGE = 32  # ldg/fennel/metis: both directions of each edge, (key, neighbour) int64
META_BYTES = 64 << 10
WORST_KEYS_PER_ROW = 2.0  # every ID of a chunk distinct
DEFAULT_EDGES_PER_NODE = 16  # nodes assumed when neither a node table nor a node count is given


class InsufficientDiskError(GraphtrainError):
    """The free disk cannot hold what the run needs at its peak (the message says need, free and where)."""


@dataclass
class Workload:
    """What the partitioner will be fed and how; the model's inputs.

    Attributes:
        edges: edges stored (``detect-rings`` / ``--add-reverse``: two per transaction).
        ingest_rows: edge rows read (0: ``edges``; with ``--add-reverse`` half of ``edges``: the
            reverse copies are made while routing, so ingest, its spill and the ID map see each row once).
        nodes: distinct nodes (estimated unless known); node_rows: node-table rows (0: none).
        id_type: ``int64`` or ``string``; id_bytes: mean bytes of a raw string ID.
        edge_columns: stored edge columns (time, weight, extra), each :data:`EDGE_COLUMN_BYTES` in the spill.
        column_bytes: bytes per edge of those columns in the dataset (int32 offsets and float32
            columns 4, others 8); None: 8 each (the most they can take).
        num_features, label, split, node_time: node data of the node table.
        keys_per_row: distinct IDs per edge row of an ingest chunk (between ~0 and 2).
        chunk_rows: edge rows per ingest chunk; num_buckets: hash buckets of the ID map.
        num_parts, method, passes, memory_limit (bytes), edge_aggregates: the partition options.
        input_bytes: size of the input files.
        notes: how each estimated figure was obtained (printed by ``graphtrain plan``).
    """

    edges: int
    nodes: int
    ingest_rows: int = 0
    node_rows: int = 0
    id_type: str = "int64"
    id_bytes: float = 0.0
    edge_columns: int = 0
    column_bytes: Optional[int] = None
    num_features: int = 0
    label: bool = False
    split: bool = False
    node_time: bool = False
    keys_per_row: float = WORST_KEYS_PER_ROW
    chunk_rows: int = 1 << 19
    num_buckets: int = 1
    num_parts: int = 1
    method: str = "hash"
    passes: int = 3
    memory_limit: int = 2 << 30
    edge_aggregates: bool = False
    input_bytes: int = 0
    transactions: int = 0
    notes: Dict[str, str] = field(default_factory=dict)

    @property
    def is_string(self) -> bool:
        return self.id_type == "string"

    @property
    def node_data_bytes(self) -> int:
        """Bytes per node of the node table's arrays (features float32, label int64, split int8, time int64)."""
        return 4 * self.num_features + 8 * self.label + self.split + 8 * self.node_time

    @property
    def index_bytes(self) -> Dict[str, int]:
        """Bytes of one ``src`` and one ``indptr`` entry in the dataset: 4 (int32) when the node IDs,
        and the edges of the largest partition (assumed 1.5 x the mean, the balance the partitioner
        warns past), fit below ``columns.INDEX_LIMIT``; else 8."""
        from graphtrain.columns import INDEX_LIMIT

        return {"src": 4 if self.nodes - 1 < INDEX_LIMIT else 8,
                "indptr": 4 if 1.5 * self.edges / max(1, self.num_parts) < INDEX_LIMIT else 8}

    @property
    def stored_column_bytes(self) -> int:
        return EDGE_COLUMN_BYTES * self.edge_columns if self.column_bytes is None else self.column_bytes

    @property
    def aggregate_features(self) -> int:
        return 2 + 6 * self.edge_columns if self.edge_aggregates else 0


# -- disk ---------------------------------------------------------------------------------------------
def partition_disk(w: Workload) -> Dict[str, int]:
    """Bytes on disk through a partitioning run (spill and the dataset being written, all inside the
    staging directory beside the output), at the end of each stage, and the final dataset.

    Returns:
        ``edge_arrays`` (the dataset's ``indptr``, ``src`` and edge columns), ``after_ingest``, ``during_ids`` (the ID map's peak), ``after_ids``, ``during_assign``,
        ``after_route``, ``after_edges`` and ``at_end`` (spill plus dataset written so far),
        ``spill_peak`` (spill alone), ``scratch_peak`` (the most of all), ``dataset`` (final size),
        ``spill_written`` (every byte spilled) and ``written`` (spill, dataset and aggregates).
    """
    E, N, R = w.edges, w.nodes, w.node_rows
    E_in = w.ingest_rows or E  # rows read and spilled at ingest
    K = w.keys_per_row * E_in
    C = w.edge_columns * EDGE_COLUMN_BYTES
    C_stored = C + (1 if w.ingest_rows else 0)  # + the int8 reverse column
    s = w.is_string
    id_key = STRING_KEY_BYTES + w.id_bytes if s else HASH_KEY_BYTES  # how a spilled key holds its ID
    rid = RID_BYTES if K + R <= INT32_RID_KEYS else 8
    idmap_spill = N * (8 + (8 + w.id_bytes if s else 0))  # sorted hashes (+ lengths and bytes of strings)
    node_chunks = R * (8 + w.node_data_bytes)  # node-table key indices and data
    node_keys_ingest = R * (ORDER_BYTES + ROW_BYTES + id_key)
    node_keys_after = R * (ORDER_BYTES + rid)
    echunk = E_in * (2 * INV_BYTES + C)
    after_ingest = echunk + K * (KEY_STREAM_BYTES + id_key) + node_chunks + node_keys_ingest
    after_ids = echunk + K * (ORDER_BYTES + rid) + node_chunks + node_keys_after + idmap_spill
    # within the ID map's bucket loop a bucket's rids and sorted IDs are written before its keys are deleted
    during_ids = after_ingest + (K * rid + R * rid + idmap_spill) / max(1, w.num_buckets)
    during_assign = after_ids + (ADJ_BYTES_PER_EDGE * E if w.method != "hash" else 0)
    ebin = E * (16 + C_stored)  # destination and source global IDs, columns
    after_route = K * rid + ebin + node_chunks + node_keys_after + idmap_spill
    ib = w.index_bytes
    edge_arrays = E * (ib["src"] + w.stored_column_bytes + (1 if w.ingest_rows else 0)) + ib["indptr"] * (N + w.num_parts)
    id_arrays = N * (16 + (16 if not s else 2 * (8 + w.id_bytes)))  # idmap hash + global, raw IDs twice
    node_arrays = N * (w.node_data_bytes + 4 * w.aggregate_features)
    after_edges = edge_arrays + node_chunks + node_keys_after + idmap_spill
    aggregates = N * 8 * (1 + 2 * w.edge_columns) + N * 4 * w.num_features if w.edge_aggregates else 0
    dataset = int(edge_arrays + id_arrays + node_arrays + META_BYTES)
    at_end = dataset + idmap_spill + aggregates
    spill_peak = max(during_ids, after_ids, during_assign, after_route)
    # every byte spilled (each is read back once) and everything written, the dataset included
    spill_written = (after_ingest + K * rid + R * rid + idmap_spill + (during_assign - after_ids) + ebin)
    written = spill_written + dataset + aggregates
    figures = {"edge_arrays": edge_arrays, "after_ingest": after_ingest, "during_ids": during_ids, "after_ids": after_ids, "during_assign": during_assign,
               "after_route": after_route, "after_edges": after_edges, "at_end": at_end, "spill_peak": spill_peak,
               "scratch_peak": max(spill_peak, after_edges, at_end), "dataset": dataset,
               "spill_written": spill_written, "written": written}
    return {k: int(v) for k, v in figures.items()}


# -- time and memory ----------------------------------------------------------------------------------
def partition_time(w: Workload, disk: Optional[Dict[str, int]] = None) -> Dict[str, float]:
    """Seconds per stage of ``graphtrain partition`` on this machine (fitted: :data:`CALIBRATION`);
    ``disk wait`` when moving the run's bytes (the input, what it writes, and the spill read back
    from the disk because the page cache could not keep it) takes longer than computing."""
    c = CALIBRATION
    t = w.id_type if w.id_type in ("int64", "string") else "string"
    E, N = w.edges, w.nodes
    E_in = w.ingest_rows or E
    K = w.keys_per_row * E_in
    passes = w.passes if w.method in ("ldg", "fennel") else 1
    stages = {
        "ingest": c["ingest_fixed_s"] + E_in * c["ingest_s_per_row"][t] + K * c["ingest_s_per_key"][t]
        + w.node_rows * c["ingest_s_per_node_row"],
        "ids": K * c["ids_s_per_key"][t] + N * c["ids_s_per_node"],
        "assign": N * c["assign_s_per_node"][w.method] + E_in * passes * c["assign_s_per_edge_pass"][w.method],
        "edges": E * (c["edges_s_per_row"] + w.edge_columns * c["edges_s_per_column_row"]) + N * c["edges_s_per_node"],
        "nodes": w.node_rows * c["nodes_s_per_node_row"],
        "idmap": N * c["idmap_s_per_node"][t],
    }
    compute = c["startup_s"] + sum(stages.values())
    disk = disk or partition_disk(w)
    read_back = max(0.0, disk["spill_written"] - c["page_cache_fraction"] * _total_memory())  # from the disk
    moved = w.input_bytes + disk["written"] + read_back
    if moved / c["disk_bytes_per_s"] > compute:
        stages["disk wait"] = moved / c["disk_bytes_per_s"] - compute
    stages = {k: round(v, 2) for k, v in stages.items()}
    stages["total"] = round(c["startup_s"] + sum(stages.values()), 1)
    return stages


def partition_memory(w: Workload) -> Dict[str, int]:
    """Peak resident and anonymous memory of ``graphtrain partition`` (fitted: :data:`CALIBRATION`)."""
    c = CALIBRATION
    t = "string" if w.is_string or w.node_rows else "int64"
    chunk = min(w.chunk_rows, max(w.ingest_rows or w.edges, 1))
    ingest = c["anon_base_bytes"] + chunk * (c["anon_ingest_per_chunk_row"][t] + w.keys_per_row * c["anon_ingest_per_chunk_key"][t])
    per_node = c["anon_per_node_bytes"] + (8 + w.id_bytes if w.is_string else 0)
    later = c["anon_base_bytes"] + per_node * w.nodes
    if w.method == "metis":
        from graphtrain.partition.assign import metis_memory_bytes

        later += metis_memory_bytes(w.nodes, 2 * (w.ingest_rows or w.edges))
    anon = max(ingest, later)
    return {"peak_rss_bytes": int(anon + c["rss_file_bytes"]), "peak_anon_bytes": int(anon),
            "ingest_anon_bytes": int(ingest), "per_node_anon_bytes": int(later)}


def _total_memory() -> int:
    try:
        import os

        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):
        return 16 << 30


# -- workloads --------------------------------------------------------------------------------------------
@dataclass
class InputSample:
    """What the first chunk of an edge list says: rows per byte, distinct IDs per row, ID length."""

    rows: int  # estimated rows of all files
    exact_rows: bool
    keys_per_row: Optional[float] = None
    id_bytes: float = 0.0
    chunk_rows: int = 0
    note: str = ""


def _text_rows(path: Path, sample_bytes: int) -> Optional[float]:
    """Rows of a text file estimated from the bytes per line of its first ``sample_bytes`` (None: unknown)."""
    import gzip

    size = path.stat().st_size
    try:
        if path.suffix.lower() == ".gz":
            with open(path, "rb") as raw, gzip.GzipFile(fileobj=raw) as fh:
                data = fh.read(sample_bytes)
                consumed = raw.tell()
            ratio = len(data) / max(consumed, 1)
        elif path.suffix.lower() in (".bz2", ".zst", ".lz4"):
            return None
        else:
            with open(path, "rb") as fh:
                data = fh.read(sample_bytes)
            ratio = 1.0
    except OSError:
        return None
    lines = data.count(b"\n")
    if lines < 2:
        return 1.0
    if len(data) < sample_bytes:  # the whole (decompressed) file
        return float(lines)
    return size * ratio / (len(data) / lines)


def estimate_rows(source, sample_bytes: int = 1 << 20) -> tuple:
    """``(rows, exact)`` of a :class:`~graphtrain.partition.ingest.TableSource`: Parquet metadata, or the
    bytes per line of each text file's first ``sample_bytes`` (no pass over the data)."""
    if source.table is not None:
        return source.table.num_rows, True
    total, exact = 0.0, True
    for p in source.paths:
        if source.file_format(p) == "parquet":
            import pyarrow.parquet as pq

            total += pq.ParquetFile(p).metadata.num_rows
            continue
        rows = _text_rows(p, sample_bytes)
        if rows is None:
            rows = max(1, p.stat().st_size * 10 // 8)
        exact = False
        total += rows
    return int(total), exact


def sample_input(source, src: str, dst: str, chunk_rows: int, id_type: Optional[str] = None,
                 sample_bytes: int = 1 << 20) -> InputSample:
    """Read the first ingest chunk of ``source`` (``chunk_rows`` rows, as the partitioner cuts it) and
    count its distinct IDs; estimate the total rows. Reads one chunk, never the whole input."""
    import numpy as np
    import pyarrow as pa
    import pyarrow.compute as pc

    from graphtrain.partition import ingest

    rows, exact = estimate_rows(source, sample_bytes)
    sample = InputSample(rows=rows, exact_rows=exact)
    try:
        batch = next(iter(ingest.iter_batches(source, [src, dst], chunk_rows)), None)
    except GraphtrainError:
        return sample
    if batch is None or batch.num_rows == 0:
        return sample
    cols = [pc.cast(batch.columns[c], pa.large_string()) if id_type == "string" or not pa.types.is_integer(batch.columns[c].type)
            else batch.columns[c] for c in (src, dst)]
    ids = pa.chunked_array(cols[0].chunks + cols[1].chunks if isinstance(cols[0], pa.ChunkedArray) else [cols[0], cols[1]])
    sample.keys_per_row = float(pc.count_distinct(ids).as_py()) / batch.num_rows
    sample.chunk_rows = batch.num_rows
    if pa.types.is_large_string(ids.type) or pa.types.is_string(ids.type):
        sample.id_bytes = float(np.mean(pc.binary_length(ids).to_numpy(zero_copy_only=False)))
    sample.note = f"{sample.keys_per_row:.2f} distinct IDs per row in the first chunk ({batch.num_rows:,} rows)"
    return sample


def workload_from_sources(edges, edge_columns, options, nodes=None, node_columns=None, *, both_directions: bool = False,
                          sample: bool = True, num_nodes: Optional[int] = None, sample_bytes: int = 1 << 20) -> Workload:
    """The :class:`Workload` of partitioning ``edges`` (and ``nodes``) with ``options``.

    Args:
        edges, nodes: :class:`~graphtrain.partition.ingest.TableSource`.
        edge_columns, node_columns: :class:`~graphtrain.partition.partitioner.EdgeColumns` / ``NodeColumns``.
        options: :class:`~graphtrain.partition.partitioner.PartitionOptions`.
        both_directions: every row is stored twice (``detect-rings``; also ``options.add_reverse``),
            the reverse copies made while routing.
        sample: read the first chunk to measure distinct IDs per row (else assume the worst, 2).
        num_nodes: the number of distinct nodes if known.
    """
    from graphtrain.partition.partitioner import Tuning

    memory_limit = parse_size(options.memory_limit)
    row_bytes = 8 * len(edge_columns.input_columns())
    n_edge_cols = len(edge_columns.stored_names())
    notes: Dict[str, str] = {}
    if sample:
        s = sample_input(edges, edge_columns.src, edge_columns.dst, _chunk_rows(memory_limit, row_bytes),
                         options.id_type, sample_bytes)
        rows, exact = s.rows, s.exact_rows
    else:
        rows, exact = estimate_rows(edges, sample_bytes)
        s = InputSample(rows=rows, exact_rows=exact)
    notes["edges"] = "Parquet metadata" if exact else "bytes per line of the first MiB"
    node_rows = 0
    if nodes is not None:
        node_rows, n_exact = estimate_rows(nodes, sample_bytes)
        notes["node_rows"] = "Parquet metadata" if n_exact else "bytes per line of the first MiB"
    # sized as the partitioner sizes them (from ingest's own row estimate)
    both_directions = both_directions or bool(getattr(options, "add_reverse", False))
    tuning = Tuning.plan(memory_limit, edges.estimated_rows()
                         + (nodes.estimated_rows() if nodes is not None else 0), row_bytes,
                         4 * len(node_columns.features) if node_columns else 0)
    id_type = options.id_type or _id_type(edges, edge_columns)
    keys = s.keys_per_row if s.keys_per_row is not None else WORST_KEYS_PER_ROW
    notes["keys_per_row"] = s.note or "assumed: every ID of a chunk distinct (worst case)"
    id_bytes = s.id_bytes if id_type == "string" else 0.0
    if id_type == "string" and not id_bytes:
        id_bytes = 24.0
        notes["id_bytes"] = "assumed 24 bytes per string ID"
    E = rows * (2 if both_directions else 1)
    if num_nodes:
        N = int(num_nodes)
        notes["nodes"] = "given"
    elif node_rows:
        N = node_rows
        notes["nodes"] = "the node-table rows"
    else:
        uniform = distinct_nodes_uniform(s.keys_per_row * s.chunk_rows, s.chunk_rows, rows) if s.keys_per_row else 0
        N = int(min(2 * rows, max(E / DEFAULT_EDGES_PER_NODE, uniform)))
        notes["nodes"] = (f"estimated: the larger of {DEFAULT_EDGES_PER_NODE} edge rows per node and the first chunk's "
                          f"distinct IDs extrapolated as uniform draws (pass --num-nodes if known)")
    size = sum(p.stat().st_size for p in edges.paths) + (sum(p.stat().st_size for p in nodes.paths) if nodes else 0)
    return Workload(
        edges=int(E), nodes=N, ingest_rows=int(rows) if both_directions else 0, node_rows=node_rows, id_type=id_type,
        id_bytes=id_bytes, edge_columns=n_edge_cols, column_bytes=_stored_column_bytes(edges, edge_columns, options, sample, notes),
        num_features=len(node_columns.features) if node_columns else 0, label=bool(node_columns and node_columns.label),
        split=bool(node_columns and node_columns.split), node_time=bool(node_columns and node_columns.time),
        keys_per_row=keys, chunk_rows=s.chunk_rows or tuning.chunk_rows, num_buckets=tuning.num_buckets,
        num_parts=options.num_parts,
        method=options.method, passes=options.passes, memory_limit=memory_limit, edge_aggregates=options.edge_aggregates,
        input_bytes=size, transactions=rows if both_directions else 0, notes=notes)


def _stored_column_bytes(edges, edge_columns, options, assume_times: bool, notes: Dict[str, str]) -> int:
    """Bytes per edge the edge columns will take in the dataset: 4 for a float column named in
    ``options.float32_columns``; 4 for the time column when ``assume_times`` (int32 offsets: its
    range must fit in 2**31 - 1 units, 68 years of seconds -- the partitioner checks it, this
    assumes it); 8 for the others (an integer column is int32 when its range fits; not known
    before it is read, so the most is counted)."""
    from graphtrain.graph import TIME
    from graphtrain.partition import ingest

    stored = edge_columns.stored_names()
    f32 = set(getattr(options, "float32_columns", ()) or ())
    types = ingest.peek_types(edges, list(stored))
    total = 0
    for in_name, name in stored.items():
        t = types.get(in_name)
        is_float = t is not None and _is_floating(t)
        if is_float and (in_name in f32 or name in f32):
            total += COMPACT_COLUMN_BYTES
        elif name == TIME and assume_times:
            total += COMPACT_COLUMN_BYTES
            notes["column_bytes"] = "assumed: the time column's range fits int32 offsets (68 years of seconds)"
        else:
            total += EDGE_COLUMN_BYTES
    return total


def _is_floating(t) -> bool:
    import pyarrow as pa

    return pa.types.is_floating(t)


def distinct_nodes_uniform(distinct: float, sample_rows: int, rows: int) -> float:
    """Distinct endpoints of ``rows`` edges if IDs were drawn uniformly from a fixed set, that set sized
    so that ``sample_rows`` edges show ``distinct`` IDs. Skewed degrees make this an underestimate (hubs
    repeat within the sample), so it only ever raises the default; it catches edge lists whose IDs
    hardly repeat (about as many nodes as edges), where a fixed edges-per-node guess is far too low."""
    import math

    draws = 2.0 * sample_rows
    if sample_rows <= 0 or distinct <= 0:
        return 0.0
    if distinct >= draws * (1 - 1e-9):
        return 2.0 * rows  # every ID distinct so far

    def seen(n, k):  # expected distinct among k uniform draws from n
        return n * -math.expm1(-k / n)

    lo, hi = distinct, distinct
    while seen(hi, draws) < distinct:
        hi *= 2
    for _ in range(100):
        mid = (lo + hi) / 2
        lo, hi = (mid, hi) if seen(mid, draws) < distinct else (lo, mid)
    return seen(hi, 2.0 * rows)


def _chunk_rows(memory_limit: int, row_bytes: int) -> int:
    from graphtrain.partition.partitioner import Tuning

    return Tuning.plan(memory_limit, 1, row_bytes).chunk_rows


def _id_type(edges, edge_columns) -> str:
    from graphtrain.partition import ingest

    try:
        types = ingest.peek_types(edges, [edge_columns.src, edge_columns.dst]).values()
    except GraphtrainError:
        return "string"
    return "int64" if all(ingest.id_type_of(t) == "int64" for t in types) else "string"


def synthetic_keys_per_row(transactions: int, accounts: int, chunk_rows: int = 1 << 19, seed: int = 0) -> float:
    """Distinct accounts per transaction in the first ingest chunk of ``graphtrain generate``'s
    transactions for that size (its R-MAT background drawn for one chunk, a fraction of a second)."""
    import numpy as np

    from graphtrain.fraud.synth.generator_config import GeneratorConfig
    from graphtrain.fraud.synth.planting import compress_rmat_ids
    from graphtrain.rmat import rmat_edges

    config = GeneratorConfig(num_accounts=max(100, int(accounts)), seed=seed)
    n = int(min(chunk_rows, max(1, transactions)))
    u, v = rmat_edges(config.scale, 0, n, seed=seed, abc=config.rmat_abc)
    ids = np.concatenate([compress_rmat_ids(u, config.scale, config.num_accounts),
                          compress_rmat_ids(v, config.scale, config.num_accounts)])
    return float(np.unique(ids).size) / n


# bytes of graphtrain generate's Parquet files per transaction and per account (transactions.parquet,
# accounts.parquet): 41.35 and 28.2 at 12.5M accounts (101,968,183 transactions), 41.38 and 28.2 at
# 62.5M (509,823,254 transactions; 21.1 GB and 1.76 GB)
GENERATED_PARQUET_BYTES = {"transaction": 41.4, "account": 28.2}


def workload_synthetic(transactions: int, accounts: int, *, job: str = "detect-rings", num_parts: int = 2,
                       method: str = "hash", memory_limit="2G", id_type: str = "string", id_bytes: float = 21.0,
                       num_features: int = 7, edge_columns: int = 2, keys_per_row: Optional[float] = None,
                       passes: int = 3) -> Workload:
    """The :class:`Workload` of ``transactions`` between ``accounts`` as ``graphtrain generate`` makes them
    (string IDs ``AC`` + 19 digits, amount and time, 7 account features and a label), stored as the
    fraud pipeline stores them: amounts float32, times int32 offsets (a generated year of seconds)."""
    if transactions < 1 or accounts < 1:
        raise ConfigError("--transactions and --accounts must be positive")
    memory_limit = parse_size(memory_limit)
    from graphtrain.partition.partitioner import Tuning

    both = job == "detect-rings"
    tuning = Tuning.plan(memory_limit, transactions + accounts, 8 * (2 + edge_columns), 4 * num_features)
    chunk = tuning.chunk_rows
    notes = {"edges": "given", "nodes": "given (--accounts)"}
    if keys_per_row is None:
        keys_per_row = synthetic_keys_per_row(transactions, accounts, chunk)
        notes["keys_per_row"] = (f"{keys_per_row:.2f} distinct accounts per transaction in the first chunk of "
                                 f"graphtrain generate's R-MAT for this size")
    else:
        notes["keys_per_row"] = "given"
    notes["input_bytes"] = "graphtrain generate's Parquet files (GENERATED_PARQUET_BYTES)"
    input_bytes = int(GENERATED_PARQUET_BYTES["transaction"] * transactions + GENERATED_PARQUET_BYTES["account"] * accounts)
    return Workload(
        edges=int(transactions) * (2 if both else 1), nodes=int(accounts), ingest_rows=int(transactions) if both else 0,
        node_rows=int(accounts), id_type=id_type,
        id_bytes=id_bytes if id_type == "string" else 0.0, edge_columns=edge_columns,
        column_bytes=COMPACT_COLUMN_BYTES * edge_columns, num_features=num_features, label=True, keys_per_row=keys_per_row, chunk_rows=chunk, num_buckets=tuning.num_buckets, num_parts=num_parts, method=method, passes=passes,
        memory_limit=memory_limit, transactions=int(transactions), input_bytes=input_bytes, notes=notes)


# -- the plan ----------------------------------------------------------------------------------------------
@dataclass
class Stage:
    """One stage of a job: disk at its peak and after it, peak memory (resident: mapped file pages
    included, which the kernel can drop; anonymous: heap and arrays, what must fit), seconds, and how
    they were obtained."""

    name: str
    disk_peak_bytes: int
    disk_after_bytes: int
    peak_rss_bytes: int
    seconds: float
    basis: str
    detail: Dict[str, object] = field(default_factory=dict)
    peak_anon_bytes: int = 0


@dataclass
class Plan:
    job: str
    workload: Workload
    stages: List[Stage]
    out: Optional[str] = None
    free_bytes: Optional[int] = None
    disk_path: Optional[str] = None
    warnings: List[str] = field(default_factory=list)
    memory: Optional[Dict[str, object]] = None  # detect-rings: the memory limit and what it leaves ring finding

    @property
    def disk_need_bytes(self) -> int:
        return max(s.disk_peak_bytes for s in self.stages)

    @property
    def seconds(self) -> float:
        return round(sum(s.seconds for s in self.stages), 1)

    @property
    def peak_rss_bytes(self) -> int:
        return max(s.peak_rss_bytes for s in self.stages)

    @property
    def peak_anon_bytes(self) -> int:
        return max(s.peak_anon_bytes for s in self.stages)

    def to_dict(self) -> dict:
        part = self.stages[0]
        return {
            "job": self.job, "out": self.out,
            "workload": asdict(self.workload),
            "stages": [asdict(s) for s in self.stages],
            "partition": {"seconds": part.seconds, "peak_rss_bytes": part.peak_rss_bytes,
                          "peak_anon_bytes": part.peak_anon_bytes, "scratch_peak_bytes": part.disk_peak_bytes,
                          "spill_peak_bytes": part.detail["disk"]["spill_peak"], "dataset_bytes": part.disk_after_bytes,
                          "dataset_bytes_per_edge": round(part.disk_after_bytes / max(self.workload.edges, 1), 2),
                          "edge_bytes_per_edge": round(part.detail["disk"]["edge_arrays"] / max(self.workload.edges, 1), 2),
                          "stage_seconds": part.detail["seconds"]},
            "disk_need_bytes": self.disk_need_bytes, "free_bytes": self.free_bytes, "disk_path": self.disk_path,
            "fits": None if self.free_bytes is None else self.free_bytes >= self.disk_need_bytes,
            "seconds": self.seconds, "peak_rss_bytes": self.peak_rss_bytes, "peak_anon_bytes": self.peak_anon_bytes,
            "memory": self.memory,
            "warnings": self.warnings,
        }


def partition_stage(w: Workload) -> Stage:
    disk = partition_disk(w)
    seconds = partition_time(w, disk)
    mem = partition_memory(w)
    basis = "measured-calibrated: disk from the format's bytes, time and memory fitted to runs on this machine"
    if w.method != "hash":
        basis += f"; the {w.method} assignment's time is rough (not measured)"
    return Stage("partition", disk["scratch_peak"], disk["dataset"], mem["peak_rss_bytes"], seconds["total"], basis,
                 {"disk": disk, "seconds": seconds}, peak_anon_bytes=mem["peak_anon_bytes"])


def _fraud_stages(w: Workload, dataset: int, stack_folds: int = 0) -> List[Stage]:
    """detect-rings' stages after partitioning, in its order (fraud/pipeline/stages.py). The account
    feature tables exist from ``features`` until the GNN's inputs are written (after ``baseline``),
    or, with ``stack_folds``, until the stacked tree has read them (after ``score``)."""
    from graphtrain.fraud.pipeline.memory_budget import pipeline_bytes

    f = FRAUD_FIT
    T = w.transactions or w.edges // 2
    A = w.nodes
    mem = int(f["memory_fixed_bytes"] + f["memory_per_account_bytes"] * A)
    stage = partial(Stage, peak_anon_bytes=pipeline_bytes(A))  # every stage after partitioning: the limit's envelope
    basis = (f"measured-fitted: each stage's time a fixed cost plus a power law, fitted to benchmark runs ({f['runs']}) "
             "with their training budget (--epochs 2 --train-sample 500000 --val-sample 100000); resident memory a "
             "line through them, anonymous memory the memory limit's envelope (fraud/pipeline/memory_budget.py)")

    def secs(name):
        fixed, at_ref, exponent = f["seconds"][name]
        return round(fixed + at_ref * (T / f["ref_transactions"]) ** exponent, 1)

    emb = A * f["embedding_bytes_per_account"]
    scores = A * f["scores_bytes_per_account"]
    ckpt = f["checkpoint_bytes"]
    tables, inputs = account_table_bytes(w)
    with_tables = dataset + tables
    kept = dataset + inputs + scores + ckpt + (tables if stack_folds else 0)  # from training on
    return [
        stage("features", with_tables, with_tables, mem, secs("features"),
              basis + "; disk: the account feature tables (fp32, own + structure columns, and their hop-1 means)"),
        stage("baseline", with_tables + inputs + scores, kept - ckpt, mem, secs("baseline"),
              basis + "; disk: the tree's scores and the GNN's inputs written into the dataset, then the feature "
              "tables deleted" + (" (kept for the stacked tree)" if stack_folds else "")),
        stage("train", kept, kept, mem, secs("train"), basis + "; disk: checkpoints"),
        stage("score", kept + emb + scores, kept + scores, mem, secs("score"),
              basis + "; disk: the hidden and output layers' fp32 embedding tables (64 + 2 columns) while scoring"),
        stage("rings", kept + 2 * scores, kept + 2 * scores, mem, secs("rings"),
              basis + "; rings: the choice of score and threshold, ring finding, the output files and the report"),
    ]


def account_table_bytes(w: Workload) -> tuple:
    """``(tables, inputs)``: bytes of the fraud pipeline's account feature tables (base and hop-1
    means, float32, and the split's int8) and what the GNN's inputs add to the dataset (float32
    columns beyond the own features; own features taken as complete: each with missing values adds an
    indicator column), for ``w.nodes`` accounts (see :data:`FRAUD_FIT`)."""
    f = FRAUD_FIT
    base_columns = w.num_features + 2 * f["structure_columns_per_direction"]
    tables = w.nodes * (3 * base_columns * 4 + 1)
    inputs = w.nodes * 2 * (f["structure_columns_per_direction"] + f["missing_columns_per_direction"]) * 4
    return tables, inputs


def plan(w: Workload, job: str = "partition", out=None, stack_folds: int = 0) -> Plan:
    """Every stage of ``job`` for workload ``w``; with ``out``, the free disk there and a warning if short.
    ``stack_folds``: detect-rings' ``--stack-folds`` (the feature tables are kept longer; its extra
    trainings' time is not modelled)."""
    if job not in JOBS:
        raise ConfigError(f"job must be one of {', '.join(JOBS)}, got {job!r}")
    stages = [partition_stage(w)]
    if job == "detect-rings":
        stages += _fraud_stages(w, stages[0].disk_after_bytes, stack_folds)
    result = Plan(job, w, stages, out=str(out) if out is not None else None)
    if job == "detect-rings":
        result.memory = _pipeline_memory(w, result.warnings)
    if out is not None:
        where, free = free_disk(out)
        result.free_bytes, result.disk_path = free, str(where)
        if free < result.disk_need_bytes:
            result.warnings.append(
                f"not enough free disk: {job} needs about {format_size(result.disk_need_bytes)} at its peak under "
                f"{where} ({_peak_stage(result)}), {format_size(free)} is free")
    if w.memory_limit and stages[0].peak_anon_bytes > w.memory_limit:
        result.warnings.append(
            f"the partitioner's per-node arrays alone (about {format_size(stages[0].peak_anon_bytes)} for "
            f"{w.nodes:,} nodes) exceed --memory-limit {format_size(w.memory_limit)}")
    if stages[0].peak_rss_bytes > _total_memory():
        result.warnings.append(f"partitioning needs about {format_size(stages[0].peak_rss_bytes)} of memory, more than "
                               f"this machine's {format_size(_total_memory())}")
    return result


def _pipeline_memory(w: Workload, warnings: List[str]) -> Dict[str, object]:
    """detect-rings' memory limit (``w.memory_limit``), the anonymous memory its stages after partitioning
    are estimated to need, the transactions it leaves ring finding
    (:mod:`graphtrain.fraud.pipeline.memory_budget`) and ``limit_fits``: False, with the run's own
    message as a warning, when the run would refuse the limit."""
    from graphtrain.fraud.pipeline import memory_budget as mb

    fits = True
    try:
        mb.check_memory_limit(w.memory_limit, w.nodes)
    except ConfigError as exc:
        warnings.append(str(exc))
        fits = False
    return {"memory_limit_bytes": int(w.memory_limit), "stages_anon_bytes": mb.pipeline_bytes(w.nodes),
            "ring_transaction_budget": mb.ring_transaction_budget(w.memory_limit, w.nodes), "limit_fits": fits}


def _peak_stage(p: Plan) -> str:
    stage = max(p.stages, key=lambda s: s.disk_peak_bytes)
    if stage.name == "partition":
        d = stage.detail["disk"]
        return (f"partitioning: spill peak {format_size(d['spill_peak'])}, dataset {format_size(d['dataset'])}")
    return stage.name


# -- the disk check ------------------------------------------------------------------------------------------
def free_disk(path) -> tuple:
    """``(existing directory, free bytes)`` of the filesystem ``path`` is (or will be) on."""
    p = Path(path).absolute()
    while not p.exists() and p.parent != p:
        p = p.parent
    return p, shutil.disk_usage(p).free


def check_disk(out_dir, edges, *, nodes=None, edge_columns=None, node_columns=None, options=None, job: str = "partition",
               extra_bytes: int = 0, what: Optional[str] = None, both_directions: Optional[bool] = None,
               stack_folds: int = 0) -> Optional[Plan]:
    """Refuse a run that the free disk beside ``out_dir`` cannot hold, before it does any work.

    The estimate reads no data: row counts come from Parquet metadata or the first MiB of a text
    file, and every ID of an ingest chunk is assumed distinct (the most the ID map can spill). Only if
    that worst case does not fit is the first chunk read (a fraction of a second) to count its
    distinct IDs, and the check repeated with that figure.

    Args:
        out_dir: the output directory (the staging directory and the spill are its siblings).
        edges: edge-list path(s) or a :class:`~graphtrain.partition.ingest.TableSource`.
        nodes: node-table path(s) or ``TableSource`` (optional).
        edge_columns: :class:`~graphtrain.partition.partitioner.EdgeColumns` (default ``src``, ``dst``).
        node_columns: :class:`~graphtrain.partition.partitioner.NodeColumns` (with ``nodes``).
        options: :class:`~graphtrain.partition.partitioner.PartitionOptions` (default: 1 part, hash, 2G).
        job: ``"partition"``, or ``"detect-rings"`` (each row stored in both directions, plus the
            later stages' files: embeddings, scores).
        extra_bytes: more disk the caller will need at the same time (added to the estimate).
        what: how to name the run in the message (default ``graphtrain <job>``).
        both_directions: every row stored twice (default: ``job == "detect-rings"`` or
            ``options.add_reverse``; False for an undirected list the pipeline stores as given).
        stack_folds: detect-rings' ``--stack-folds`` (:func:`plan`).

    Returns:
        the :class:`Plan` the check used (its ``disk_need_bytes`` and ``free_bytes``), or None when
        the input could not be estimated (a missing or unreadable file, a bad column): the run's own
        reader reports that, naming the file, line and column.

    Raises:
        InsufficientDiskError: free disk below the estimated peak; the message names the need, the
            free space, the filesystem and how to override.
    """
    from graphtrain.partition import ingest
    from graphtrain.partition.partitioner import EdgeColumns, PartitionOptions

    edges = edges if isinstance(edges, ingest.TableSource) else ingest.TableSource.from_paths(edges)
    if nodes is not None and not isinstance(nodes, ingest.TableSource):
        nodes = ingest.TableSource.from_paths(nodes)
    edge_columns = edge_columns or EdgeColumns("src", "dst")
    options = options or PartitionOptions(num_parts=1)
    both = (job == "detect-rings" or bool(options.add_reverse)) if both_directions is None else both_directions
    where, free = free_disk(out_dir)
    try:
        w = workload_from_sources(edges, edge_columns, options, nodes, node_columns, both_directions=both, sample=False)
        result = plan(w, job, stack_folds=stack_folds)
        if result.disk_need_bytes + extra_bytes > free:
            w = workload_from_sources(edges, edge_columns, options, nodes, node_columns, both_directions=both, sample=True)
            result = plan(w, job, stack_folds=stack_folds)
    except Exception as exc:  # noqa: BLE001 -- bad input is the reader's to report, with its file, line and column
        log.debug("disk check skipped: the input could not be estimated (%s: %s)", type(exc).__name__, exc)
        return None
    result.out, result.free_bytes, result.disk_path = str(out_dir), free, str(where)
    need = result.disk_need_bytes + extra_bytes
    if need > free:
        raise InsufficientDiskError(
            f"not enough free disk for {what or 'graphtrain ' + job} into {out_dir}: it needs about {format_size(need)} "
            f"at its peak ({_peak_stage(result)}; {w.edges:,} edge rows, {w.keys_per_row:.2f} distinct IDs per row of "
            f"a chunk), and the filesystem of {where} has {format_size(free)} free. Free some space or write --out to "
            f"a larger disk; `graphtrain plan` shows the estimate stage by stage, and --skip-disk-check runs anyway")
    log.debug("disk check: need %s, free %s under %s", format_size(need), format_size(free), where)
    return result
