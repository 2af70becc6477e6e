"""Write a dataset's edges back out with raw IDs and original column names (round-trip check).

Output columns: the input's source and destination column names with raw IDs, then every stored
edge column under its input name (times read from timestamps or dates go back to that type).
Rows come partition by partition in CSC order, not in input order: compare as multisets.
"""
from __future__ import annotations

from pathlib import Path
from typing import Iterator, Optional

import numpy as np
import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from graphtrain.errors import ConfigError
from graphtrain.io import staged_file
from graphtrain.partition import format as fmt
from graphtrain.partition.idmap import IdMap

_TIME_TYPES = {"s": pa.timestamp("s"), "ms": pa.timestamp("ms"), "us": pa.timestamp("us"), "ns": pa.timestamp("ns"), "D": pa.date32()}


def _output_kind(path: Path) -> str:
    suffixes = [s.lower() for s in path.suffixes]
    if suffixes and suffixes[-1] == ".gz":
        suffixes = suffixes[:-1]
    last = suffixes[-1] if suffixes else ""
    if last in (".parquet", ".pq"):
        return "parquet"
    if last == ".csv":
        return "csv"
    if last in (".tsv", ".tab"):
        return "tsv"
    raise ConfigError(f"cannot tell the output format from {path.name!r}; use a .csv, .tsv, .csv.gz or .parquet file name")


def iter_edge_tables(dataset: fmt.Dataset, batch_edges: int = 1 << 20) -> Iterator[pa.Table]:
    """The dataset's edges with raw IDs, as tables of at most ``batch_edges`` rows."""
    meta = dataset.meta
    idmap = IdMap(dataset)
    src_name = meta.id_columns.get("src", "src")
    dst_name = meta.id_columns.get("dst", "dst")
    for p in range(meta.num_parts):
        graph = dataset.graph(p)
        for lo in range(0, graph.num_edges, batch_edges):
            hi = min(graph.num_edges, lo + batch_edges)
            src = np.asarray(graph.src[lo:hi])
            # destination of edge i: the local node whose segment contains i
            # edge positions in the indptr's own dtype (they fit it): NumPy converts the whole indptr otherwise
            dst = graph.node_start + np.searchsorted(graph.indptr, np.arange(lo, hi, dtype=graph.indptr.dtype), side="right") - 1
            columns = {src_name: _raw_column(idmap.to_raw(src)), dst_name: _raw_column(idmap.to_raw(dst))}
            for col in meta.edge_columns:
                values = pa.array(np.asarray(graph.edge_attrs[col.name][lo:hi]))
                if col.unit in _TIME_TYPES:
                    values = values.cast(pa.int32()).cast(pa.date32()) if col.unit == "D" else values.cast(_TIME_TYPES[col.unit])
                columns[col.source] = values
            yield pa.table(columns)


def _raw_column(raw) -> pa.Array:
    return raw if isinstance(raw, pa.Array) else pa.array(raw)


def export_edges(dataset_dir, out_file, force: bool = False, batch_edges: int = 1 << 20) -> int:
    """Write every edge with raw IDs to ``out_file`` (CSV/TSV, optionally .gz, or Parquet by extension).

    Returns:
        Number of edges written.
    """
    out_file = Path(out_file)
    kind = _output_kind(out_file)
    dataset = fmt.open_dataset(dataset_dir)
    written = 0
    with staged_file(out_file, force=force) as tmp:
        writer: Optional[object] = None
        sink = None
        try:
            for table in iter_edge_tables(dataset, batch_edges):
                if writer is None:
                    if kind == "parquet":
                        writer = pq.ParquetWriter(str(tmp), table.schema)
                    else:
                        compression = "gzip" if out_file.suffix.lower() == ".gz" else None
                        sink = pa.output_stream(str(tmp), compression=compression)
                        opts = pacsv.WriteOptions(delimiter="\t" if kind == "tsv" else ",")
                        writer = pacsv.CSVWriter(sink, table.schema, write_options=opts)
                writer.write_table(table)
                written += table.num_rows
            if writer is None:  # no edges: still write a file with the header/schema
                raise ConfigError(f"{dataset_dir}: the dataset has no edges to export")
        finally:
            if writer is not None:
                writer.close()
            if sink is not None:
                sink.close()
    return written
