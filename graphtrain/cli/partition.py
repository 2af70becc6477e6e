"""``graphtrain partition``, ``inspect`` and ``export``: thin commands over :mod:`graphtrain.partition`."""
from __future__ import annotations

import argparse
import json
import sys

from graphtrain.cli.common import comma_list


def register(sub) -> None:
    p = sub.add_parser(
        "partition",
        help="partition a raw edge list into contiguous-ID range partitions",
        description="Stream a raw edge list (CSV/TSV/Parquet, optionally .gz; int or string IDs) and an optional "
        "node table into a dataset directory of P range partitions: node and edge IDs are relabelled into one "
        "contiguous range per partition, edges are stored in CSC order by destination, and the raw<->global ID map "
        "is written to disk. Memory stays bounded by --memory-limit whatever the input size.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    p.add_argument("inputs", nargs="+", metavar="INPUT", help="edge list file(s) with the same columns, read in order")
    p.add_argument("--out", required=True, metavar="DIR", help="dataset directory to create")
    p.add_argument("--num-parts", "-p", type=int, required=True, metavar="P", help="number of partitions")
    g = p.add_argument_group("edge columns")
    g.add_argument("--src", default="src", metavar="COL", help="source ID column (0-based position with --no-header)")
    g.add_argument("--dst", default="dst", metavar="COL", help="destination ID column")
    g.add_argument("--time", metavar="COL", help="edge time column (integers, timestamps or dates); enables temporal sampling")
    g.add_argument("--weight", metavar="COL", help="non-negative edge weight column (for weighted sampling)")
    g.add_argument("--edge-columns", type=comma_list, default=[], metavar="COLS",
                   help="other numeric edge columns to keep, comma-separated (e.g. amount,fee)")
    g.add_argument("--float32-columns", type=comma_list, default=[], metavar="COLS",
                   help="float edge columns to store as float32 (half the disk; relative error <= 6e-8, recorded in "
                        "meta.json), e.g. amount; integer columns and indices are always stored compactly and losslessly")
    g.add_argument("--id-type", choices=["int64", "string"], help="ID type (default: int64 if the ID columns are integers, else string)")
    f = p.add_argument_group("file format")
    f.add_argument("--format", choices=["csv", "tsv", "parquet"], help="input format (default: from the file extension)")
    f.add_argument("--delimiter", metavar="C", help="field delimiter of text files (default ',' or tab for .tsv)")
    f.add_argument("--no-header", action="store_true", help="text files have no header line; name columns by position")
    f.add_argument("--quote-char", default='"', metavar="C", help="quote character of text files")
    f.add_argument("--no-quoting", action="store_true", help="text files use no quoting")
    n = p.add_argument_group("node table (optional)")
    n.add_argument("--nodes", nargs="+", metavar="FILE", help="node table file(s): one row per node")
    n.add_argument("--node-id", default="id", metavar="COL", help="node ID column of the node table")
    n.add_argument("--label", metavar="COL", help="label column (class numbers or booleans; empty = unknown)")
    n.add_argument("--features", type=comma_list, default=[], metavar="COLS",
                   help="numeric feature columns, comma-separated; shell patterns such as 'f_*' allowed")
    n.add_argument("--split", metavar="COL", help="split column with values train/val/test (empty = none)")
    n.add_argument("--node-time", metavar="COL",
                   help="node time column (same kind as --time): when each node is scored; `graphtrain train "
                   "--temporal ... --seed-time COL` samples only edges up to it")
    n.add_argument("--node-format", choices=["csv", "tsv", "parquet"], help="node table format (default: from the extension)")
    n.add_argument("--node-delimiter", metavar="C", help="field delimiter of a text node table")
    n.add_argument("--add-missing-nodes", action="store_true",
                   help="add edge endpoints missing from the node table as unlabelled nodes with zero features (default: error)")
    n.add_argument("--add-reverse", action="store_true",
                   help="store every edge twice, as given and reversed, with an int8 edge column 'reverse' (0 as given, "
                   "1 the reverse copy): each node's in-edges then hold both directions (e.g. payers and payees)")
    n.add_argument("--edge-aggregates", action="store_true",
                   help="add structural node features after the node table's: in_degree, out_degree and the sum, mean "
                   "and max of each stored edge column (--time, --weight, --edge-columns) over each node's in-edges "
                   "and out-edges (in_sum_COL, ..., out_max_COL; 0 without such edges; over all edges, whatever "
                   "their time); without a node table they are the only features")
    m = p.add_argument_group("partitioning")
    m.add_argument("--method", choices=["hash", "ldg", "fennel", "metis"], default="hash",
                   help="hash: balanced, no locality; ldg/fennel: streaming, fewer cut edges; metis: in memory, fewest cut edges")
    m.add_argument("--passes", type=int, default=3, metavar="N", help="streaming passes of ldg/fennel (restreaming cuts fewer edges)")
    m.add_argument("--seed", type=int, default=0, help="seed of hash partitioning and METIS")
    m.add_argument("--memory-limit", default="2G", metavar="SIZE",
                   help="anonymous memory (heap, arrays) the run may use, e.g. 512M, 8G; chunks, buckets and bins are sized to "
                   "fit, plus ~24 bytes per node (library code and page cache are not counted)")
    m.add_argument("--threads", type=int, metavar="N", help="Numba threads (default: all cores)")
    m.add_argument("--drop-self-loops", action="store_true", help="drop edges from a node to itself (always counted)")
    m.add_argument("--drop-duplicates", action="store_true",
                   help="keep only the first (earliest) of repeated (src, dst) edges (always counted)")
    o = p.add_argument_group("output")
    o.add_argument("--force", action="store_true", help="replace an existing dataset at --out")
    o.add_argument("--skip-disk-check", dest="disk_check", action="store_false",
                   help="start even if the free disk at --out looks too small for the spill and the dataset "
                   "(by default the run is refused before any work; `graphtrain plan` shows the estimate)")
    o.add_argument("--json", action="store_true", help="print the summary as one JSON line")
    o.add_argument("--progress", dest="progress", action="store_true", default=None, help="show progress bars (default: when stderr is a terminal)")
    o.add_argument("--no-progress", dest="progress", action="store_false", help="no progress bars")
    p.set_defaults(func=run_partition)

    i = sub.add_parser("inspect", help="print a dataset's layout and statistics",
                       description="Print a partitioned dataset's counts, range boundaries, edge cut, balance and columns.")
    i.add_argument("dataset", metavar="DIR")
    i.add_argument("--json", action="store_true", help="print JSON (num_parts, num_nodes, num_edges, node_boundaries, edge_boundaries, edge_cut, ...)")
    i.add_argument("--verify", action="store_true",
                   help="also check every array's sha256 (all of them) and record the stamp that lets train and "
                   "predict skip the unchanged ones")
    i.set_defaults(func=run_inspect)

    e = sub.add_parser("export", help="write a dataset's edges back with raw IDs (CSV/TSV/Parquet)",
                       description="Write every edge with its raw source and destination IDs and its columns under "
                       "their input names, to verify a round trip. The format follows --out's extension "
                       "(.csv, .tsv, .csv.gz, .parquet). Rows are in partition (CSC) order, not input order.")
    e.add_argument("dataset", metavar="DIR")
    e.add_argument("--out", required=True, metavar="FILE")
    e.add_argument("--force", action="store_true", help="replace an existing file")
    e.set_defaults(func=run_export)


def run_partition(args) -> int:
    from graphtrain.partition import ingest
    from graphtrain.partition.partitioner import EdgeColumns, NodeColumns, PartitionOptions, partition
    from graphtrain.units import format_size

    quote = None if args.no_quoting else args.quote_char
    edges = ingest.TableSource.from_paths(args.inputs, format=args.format, delimiter=args.delimiter,
                                          header=not args.no_header, quote_char=quote)
    nodes = node_cols = None
    if args.nodes:
        nodes = ingest.TableSource.from_paths(args.nodes, format=args.node_format, delimiter=args.node_delimiter, quote_char=quote)
        features = ingest.expand_columns(args.features, ingest.column_names(nodes), nodes.paths[0]) if args.features else []
        node_cols = NodeColumns(args.node_id, label=args.label, features=tuple(features), split=args.split,
                                time=args.node_time)
    elif args.label or args.features or args.split or args.node_time or args.add_missing_nodes:
        from graphtrain.errors import ConfigError

        raise ConfigError("--label, --features, --split, --node-time and --add-missing-nodes need --nodes FILE")
    options = PartitionOptions(
        num_parts=args.num_parts, method=args.method, passes=args.passes, seed=args.seed, memory_limit=args.memory_limit,
        id_type=args.id_type, drop_self_loops=args.drop_self_loops, drop_duplicates=args.drop_duplicates,
        add_missing_nodes=args.add_missing_nodes, add_reverse=args.add_reverse, edge_aggregates=args.edge_aggregates,
        float32_columns=tuple(args.float32_columns), force=args.force, disk_check=args.disk_check,
        progress=sys.stderr.isatty() if args.progress is None else args.progress, threads=args.threads,
    )
    cols = EdgeColumns(args.src, args.dst, time=args.time, weight=args.weight, extra=tuple(args.edge_columns))
    summary = partition(edges, cols, args.out, options, nodes, node_cols)
    if args.json:
        print(json.dumps(summary.to_dict()))
        return 0
    s = summary
    print(f"wrote {s.out_dir}")
    print(f"  partitions     {s.num_parts} ({s.method})")
    print(f"  nodes          {s.num_nodes:,} ({s.id_type} IDs; balance max/mean {s.node_balance:.3f})")
    print(f"  edges          {s.num_edges:,} of {s.input_rows:,} input rows (balance max/mean {s.edge_balance:.3f})")
    print(f"  edge cut       {s.edge_cut:,} ({100 * s.edge_cut_fraction:.2f}% of edges cross partitions)")
    print(f"  self loops     {s.self_loops:,} ({s.dropped_self_loops:,} dropped)")
    print(f"  duplicates     {s.duplicate_edges:,} ({s.dropped_duplicates:,} dropped)")
    if s.missing_nodes_added:
        print(f"  added nodes    {s.missing_nodes_added:,} edge endpoints missing from the node table")
    print(f"  time           {s.seconds:.1f} s ({', '.join(f'{k} {v:.1f}' for k, v in s.stage_seconds.items())})")
    print(f"  peak memory    {format_size(s.peak_anon_bytes)} anonymous, {format_size(s.peak_rss_bytes)} resident "
          f"with library and file pages")
    print(f"  disk           dataset {format_size(s.dataset_bytes)} ({s.dataset_bytes_per_edge:.1f} bytes per edge, "
          f"{s.edge_bytes_per_edge:.1f} of them edge arrays); "
          f"spill peak {format_size(s.spill_peak_bytes)} ({format_size(s.spill_bytes)} written in all)")
    return 0


def inspect_dict(dataset) -> dict:
    """What ``graphtrain inspect --json`` prints."""
    meta = dataset.meta
    nodes_per_part, edges_per_part = dataset.book.part_sizes()
    size = sum((dataset.path / rel).stat().st_size for rel in meta.files)
    return {
        "path": str(dataset.path),
        "format_version": meta.format_version,
        "num_parts": meta.num_parts,
        "num_nodes": meta.num_nodes,
        "num_edges": meta.num_edges,
        "node_boundaries": meta.node_bounds,
        "edge_boundaries": meta.edge_bounds,
        "edge_cut": meta.edge_cut,
        "edge_cut_fraction": meta.partition_stats.get("edge_cut_fraction"),
        "method": meta.partition_stats.get("method"),
        "node_balance": meta.partition_stats.get("node_balance"),
        "edge_balance": meta.partition_stats.get("edge_balance"),
        "nodes_per_part": nodes_per_part.tolist(),
        "edges_per_part": edges_per_part.tolist(),
        "id_type": meta.id_type,
        "edge_columns": {c.name: c.dtype for c in meta.edge_columns},
        "storage": meta.storage,
        "time_sorted": meta.time_sorted,
        "node_features": len(meta.node_schema.feature_names),
        "label": meta.node_schema.label,
        "num_classes": meta.node_schema.num_classes,
        "split": meta.node_schema.split,
        "node_time": meta.node_schema.time,
        "ingest": meta.ingest_stats,
        "bytes_on_disk": size,
        "partition_book_bytes": dataset.book.nbytes,
    }


def run_inspect(args) -> int:
    from graphtrain.partition.format import open_dataset
    from graphtrain.units import format_size

    ds = open_dataset(args.dataset, verify=args.verify)
    info = inspect_dict(ds)
    if args.json:
        print(json.dumps(info))
        return 0
    print(f"{info['path']}  (format v{info['format_version']}, {format_size(info['bytes_on_disk'])} on disk"
          f"{', checksums verified' if args.verify else ''})")
    print(f"  {info['num_nodes']:,} nodes, {info['num_edges']:,} edges, {info['num_parts']} partitions ({info['method']}), {info['id_type']} IDs")
    print(f"  edge cut {info['edge_cut']:,} ({100 * (info['edge_cut_fraction'] or 0):.2f}%), balance nodes {info['node_balance']} edges {info['edge_balance']}")
    print(f"  partition book: {info['partition_book_bytes']} bytes")
    print(f"  edge columns: {', '.join(f'{k} ({v})' for k, v in info['edge_columns'].items()) or 'none'}"
          f"{'; in-edges sorted by time' if info['time_sorted'] else ''}")
    if info["node_features"] or info["label"] or info["node_time"]:
        print(f"  nodes: {info['node_features']} features, label {info['label']!r} ({info['num_classes']} classes), split {info['split']!r}"
              f", time {info['node_time']!r}")
    print("  part      nodes [start, stop)                edges [start, stop)")
    nb, eb = info["node_boundaries"], info["edge_boundaries"]
    for p in range(info["num_parts"]):
        print(f"  {p:4d}  {nb[p]:>14,} {nb[p + 1]:>14,}    {eb[p]:>14,} {eb[p + 1]:>14,}")
    return 0


def run_export(args) -> int:
    from graphtrain.partition.export import export_edges

    n = export_edges(args.dataset, args.out, force=args.force)
    print(f"wrote {n:,} edges to {args.out}")
    return 0
