"""``predict``'s output, one Parquet file of every node's score by raw ID, written without holding it in memory.

Each worker writes its own nodes (a contiguous range of global IDs, its partitions in order) to a
file of its own in the run's scratch directory (:func:`write_rank_scores`), a row group of at most
``rows_per_group`` nodes at a time. The driver then copies the ranks' files, in rank order (which is
global-ID order), into the output a row group at a time (:func:`concatenate_scores`). Neither holds
more than one row group of output rows; nothing of it passes through Ray's object store.

Columns: ``node_id`` (the raw ID as ingested: int64, or a large string), ``score`` (float32: the
probability of class 1 for binary labels, else of the predicted class), ``pred`` (int64 arg-max
class), ``label`` (int64, -1 unknown).
"""
from __future__ import annotations

from pathlib import Path
from typing import Callable, Iterable, Optional, Sequence, Tuple

import numpy as np

ROWS_PER_GROUP = 1 << 20


def score_schema(id_type: str):
    """The output's Arrow schema for a dataset whose raw IDs are ``id_type`` (``int64`` or ``string``)."""
    import pyarrow as pa

    return pa.schema([("node_id", pa.int64() if id_type == "int64" else pa.large_string()), ("score", pa.float32()),
                      ("pred", pa.int64()), ("label", pa.int64())])


def score_and_pred(probs: np.ndarray) -> Tuple[np.ndarray, np.ndarray]:
    """``(score float32 [n], pred int64 [n])`` from class probabilities ``[n, C]`` (see the module doc)."""
    pred = probs.argmax(axis=1).astype(np.int64)
    score = probs[:, 1] if probs.shape[1] == 2 else probs[np.arange(probs.shape[0]), pred]
    return np.asarray(score, dtype=np.float32), pred


def write_rank_scores(path, id_type: str, raw_parts: Sequence, probs: np.ndarray,
                      labels: Callable[[int, int], Optional[np.ndarray]], rows_per_group: int = ROWS_PER_GROUP) -> int:
    """Write one worker's nodes to the Parquet file ``path``; returns the rows written.

    Args:
        id_type: the dataset's raw ID type (``int64`` or ``string``).
        raw_parts: the raw IDs of the worker's partitions in order (int64 arrays or pyarrow string
            arrays, e.g. memory-mapped); together one per row of ``probs``.
        probs: float ``[n, C]`` class probabilities of the worker's nodes in global-ID order.
        labels: ``labels(start, stop)``: int labels of rows ``[start, stop)`` (-1 unknown), or None
            when the dataset has none.
        rows_per_group: most rows per row group (and per array built at a time).
    """
    import pyarrow as pa
    import pyarrow.parquet as pq

    total = sum(len(r) for r in raw_parts)
    if total != probs.shape[0]:
        raise ValueError(f"{total} raw IDs for {probs.shape[0]} scored nodes")
    schema = score_schema(id_type)
    start = 0
    with pq.ParquetWriter(str(path), schema) as writer:
        for raw in raw_parts:
            for a in range(0, len(raw), rows_per_group):
                b = min(a + rows_per_group, len(raw))
                lo, hi = start + a, start + b
                score, pred = score_and_pred(probs[lo:hi])
                got = labels(lo, hi)
                label = np.full(hi - lo, -1, np.int64) if got is None else np.asarray(got, dtype=np.int64)
                ids = raw[a:b] if isinstance(raw, pa.Array) else pa.array(np.asarray(raw[a:b], dtype=np.int64))
                writer.write_table(pa.Table.from_arrays([ids.cast(schema.field("node_id").type), pa.array(score),
                                                         pa.array(pred), pa.array(label)], schema=schema))
            start += len(raw)
    return total


def concatenate_scores(parts: Iterable, out_path) -> int:
    """Copy the rank files ``parts`` (in order) into one Parquet file ``out_path``, a row group at a
    time; returns its rows. ``parts`` must be non-empty and share a schema."""
    import pyarrow.parquet as pq

    parts = [Path(p) for p in parts]
    if not parts:
        raise ValueError("no score files to concatenate")
    rows = 0
    with pq.ParquetWriter(str(out_path), pq.read_schema(str(parts[0]))) as writer:
        for part in parts:
            f = pq.ParquetFile(str(part))
            for group in range(f.num_row_groups):
                table = f.read_row_group(group)
                writer.write_table(table)
                rows += table.num_rows
            f.close()
    return rows
