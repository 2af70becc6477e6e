"""``graphtrain plan``: the disk, memory and time each stage of a job needs on this machine, before it runs."""
from __future__ import annotations

import argparse
import json
import sys

from graphtrain.cli.common import comma_list


def _count(text: str) -> int:
    """``1000000``, ``1e9``, ``10M``, ``1B`` -> int."""
    mult = {"K": 10**3, "M": 10**6, "B": 10**9, "G": 10**9, "T": 10**12}
    t = text.strip().upper().replace(",", "").replace("_", "")
    try:
        return int(float(t[:-1]) * mult[t[-1]]) if t and t[-1] in mult else int(float(t))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a count such as 1000000, 10M or 1e9, got {text!r}") from None


def register(sub) -> None:
    p = sub.add_parser(
        "plan", help="disk, memory and time each stage of a job will need here (and whether the disk can hold it)",
        description="Estimate, before running it, what `graphtrain partition` or the fraud pipeline (`detect-rings`, "
        "which stores every transaction in both directions) will need on this machine: per stage the disk at its "
        "peak (spill and dataset under --out's filesystem) and after it, the peak memory, and the time. Give the "
        "input files with the same arguments as `graphtrain partition` (the first chunk of the edge list is read to "
        "count its distinct IDs; row counts come from Parquet metadata or the first MiB of a text file), or sizes "
        "with --transactions N --accounts M (transactions as `graphtrain generate` makes them). Partitioning's "
        "figures are calibrated on runs measured on this machine; the fraud stages after it are fitted to "
        "benchmark runs at three sizes with one training budget (2 epochs of a 500,000-account sample), and the output says which "
        "is which. For detect-rings it also says what --memory-limit leaves ring finding. Exits with status 1 when the "
        "free disk at --out is below the need, or when detect-rings would refuse the memory limit.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    p.add_argument("inputs", nargs="*", metavar="INPUT", help="edge list (transactions) file(s), as for graphtrain partition")
    p.add_argument("--job", choices=["partition", "detect-rings"], default="partition",
                   help="partition: graphtrain partition; detect-rings: the fraud pipeline (transactions stored both ways)")
    p.add_argument("--out", default=".", metavar="DIR", help="where the output (and the spill beside it) will go")
    p.add_argument("--num-parts", "-p", type=int, default=None, metavar="P",
                   help="number of partitions (default: 1 for partition, 2 for detect-rings)")
    s = p.add_argument_group("sizes instead of files")
    s.add_argument("--transactions", type=_count, metavar="N", help="number of transactions (e.g. 500M)")
    s.add_argument("--accounts", type=_count, metavar="M", help="number of accounts")
    s.add_argument("--id-bytes", type=float, default=21.0, metavar="B", help="bytes of a string account ID")
    s.add_argument("--num-nodes", type=_count, metavar="N",
                   help="distinct nodes of an edge list without a node table, if known (default: assumed)")
    s.add_argument("--keys-per-row", type=float, metavar="X",
                   help="distinct IDs per edge row of an ingest chunk (default: counted in the first chunk)")
    g = p.add_argument_group("columns and format (as graphtrain partition)")
    g.add_argument("--src", default="src", metavar="COL")
    g.add_argument("--dst", default="dst", metavar="COL")
    g.add_argument("--time", metavar="COL")
    g.add_argument("--weight", metavar="COL")
    g.add_argument("--edge-columns", type=comma_list, default=[], metavar="COLS")
    g.add_argument("--id-type", choices=["int64", "string"])
    g.add_argument("--format", choices=["csv", "tsv", "parquet"])
    g.add_argument("--delimiter", metavar="C")
    g.add_argument("--no-header", action="store_true")
    g.add_argument("--quote-char", default='"', metavar="C")
    g.add_argument("--no-quoting", action="store_true")
    g.add_argument("--nodes", nargs="+", metavar="FILE", help="node (account) table file(s)")
    g.add_argument("--node-id", default=None, metavar="COL",
                   help="node ID column (default: id; account_id for detect-rings)")
    g.add_argument("--label", metavar="COL")
    g.add_argument("--features", type=comma_list, default=None, metavar="COLS",
                   help="feature columns (default: none; for detect-rings every other numeric column, as it does)")
    g.add_argument("--split", metavar="COL")
    g.add_argument("--node-time", metavar="COL")
    g.add_argument("--node-format", choices=["csv", "tsv", "parquet"])
    g.add_argument("--node-delimiter", metavar="C")
    m = p.add_argument_group("partitioning")
    m.add_argument("--method", choices=["hash", "ldg", "fennel", "metis"], default="hash")
    m.add_argument("--passes", type=int, default=3, metavar="N")
    m.add_argument("--memory-limit", metavar="SIZE",
                   help="as the planned command's (default: partition's 2G; for detect-rings the whole run's, half "
                   "this machine's memory)")
    m.add_argument("--add-reverse", action="store_true", help="every edge also stored reversed (as detect-rings does)")
    m.add_argument("--stack-folds", type=int, default=0, metavar="K",
                   help="detect-rings' --stack-folds: the account feature tables stay on disk until the stacked "
                        "tree has read them, after scoring (its K extra trainings' time is not estimated)")
    m.add_argument("--edge-aggregates", action="store_true")
    same = p.add_argument_group("accepted so that a partition command line can be planned as it is (no effect "
                                "on the estimate; the times are for Numba on all of this machine's cores)")
    same.add_argument("--threads", type=int, metavar="N")
    same.add_argument("--seed", type=int)
    for flag in ("--drop-self-loops", "--drop-duplicates", "--add-missing-nodes", "--force", "--skip-disk-check",
                 "--progress", "--no-progress"):
        same.add_argument(flag, action="store_true")
    p.add_argument("--json", action="store_true", help="print the plan as one JSON object")
    p.set_defaults(func=run_plan)


def _workload(args):
    from graphtrain.errors import ConfigError
    from graphtrain.plan import workload_from_sources, workload_synthetic

    if args.memory_limit is None:  # the planned command's default
        from graphtrain.fraud.pipeline.memory_budget import default_memory_limit
        from graphtrain.partition.partitioner import DEFAULT_MEMORY_LIMIT

        args.memory_limit = default_memory_limit() if args.job == "detect-rings" else DEFAULT_MEMORY_LIMIT

    parts = args.num_parts or (2 if args.job == "detect-rings" else 1)
    if args.transactions or args.accounts:
        if args.inputs:
            raise ConfigError("give input files or --transactions/--accounts, not both")
        if not (args.transactions and args.accounts):
            raise ConfigError("--transactions and --accounts go together")
        w = workload_synthetic(args.transactions, args.accounts, job=args.job, num_parts=parts, method=args.method,
                               memory_limit=args.memory_limit, id_type=args.id_type or "string", id_bytes=args.id_bytes,
                               keys_per_row=args.keys_per_row, passes=args.passes)
        w.edge_aggregates = args.edge_aggregates
        return w
    if not args.inputs:
        raise ConfigError("give the input file(s), or sizes with --transactions N --accounts M")
    from graphtrain.partition import ingest
    from graphtrain.partition.partitioner import EdgeColumns, NodeColumns, PartitionOptions

    quote = None if args.no_quoting else args.quote_char
    edges = ingest.TableSource.from_paths(args.inputs, format=args.format, delimiter=args.delimiter,
                                          header=not args.no_header, quote_char=quote)
    nodes = node_cols = None
    node_id = args.node_id or ("account_id" if args.job == "detect-rings" else "id")
    if args.nodes:
        nodes = ingest.TableSource.from_paths(args.nodes, format=args.node_format, delimiter=args.node_delimiter,
                                              quote_char=quote)
        names = ingest.column_names(nodes)
        if args.features is not None:
            features = ingest.expand_columns(args.features, names, nodes.paths[0])
        elif args.job == "detect-rings":
            features = _numeric_columns(nodes, names, {node_id, args.label, args.split, args.node_time})
        else:
            features = []
        node_cols = NodeColumns(node_id, label=args.label, features=tuple(features), split=args.split, time=args.node_time)
    options = PartitionOptions(num_parts=parts, method=args.method, passes=args.passes, memory_limit=args.memory_limit,
                               id_type=args.id_type, edge_aggregates=args.edge_aggregates, add_reverse=args.add_reverse)
    options.validate()
    cols = EdgeColumns(args.src, args.dst, time=args.time, weight=args.weight, extra=tuple(args.edge_columns))
    w = workload_from_sources(edges, cols, options, nodes, node_cols, both_directions=args.job == "detect-rings",
                              num_nodes=args.num_nodes)
    if args.keys_per_row is not None:
        w.keys_per_row = args.keys_per_row
        w.notes["keys_per_row"] = "given"
    return w


def _numeric_columns(nodes, names, skip) -> list:
    from graphtrain.partition import ingest

    try:
        types = ingest.peek_types(nodes, names)
    except Exception:  # noqa: BLE001 -- a rough default: the plan does not validate the table
        return []
    import pyarrow as pa

    return [c for c in names if c not in skip and (pa.types.is_integer(types[c]) or pa.types.is_floating(types[c])
                                                   or pa.types.is_boolean(types[c]))]


def run_plan(args) -> int:
    from graphtrain.plan import plan

    w = _workload(args)
    result = plan(w, args.job, out=args.out, stack_folds=args.stack_folds)
    fits = not any(x.startswith("not enough free disk") for x in result.warnings)
    fits = fits and (result.memory is None or result.memory["limit_fits"])  # a limit detect-rings would refuse
    if args.json:
        print(json.dumps(result.to_dict()))
    else:
        print_plan(result)
    for warning in result.warnings:
        print(f"graphtrain plan: warning: {warning}", file=sys.stderr)
    return 0 if fits else 1


def print_plan(result) -> None:
    from graphtrain.units import format_size as fs

    w = result.workload
    what = (f"{w.transactions:,} transactions stored in both directions ({w.edges:,} edge rows)"
            if result.job == "detect-rings" else f"{w.edges:,} edge rows")
    ids = f"{w.id_type} IDs" + (f" of ~{w.id_bytes:.0f} bytes" if w.is_string else "")
    node_data = []
    if w.num_features:
        node_data.append(f"{w.num_features} features")
    for flag, name in ((w.label, "label"), (w.split, "split"), (w.node_time, "time")):
        if flag:
            node_data.append(name)
    print(f"graphtrain plan: {result.job} of {what}, {w.nodes:,} nodes ({ids}"
          f"{', node data: ' + ', '.join(node_data) if node_data else ''}"
          f"{f', {w.edge_columns} edge column(s)' if w.edge_columns else ''})")
    print(f"  into {w.num_parts} partition(s) ({w.method}), --memory-limit {fs(w.memory_limit)}"
          + (f"; input files {fs(w.input_bytes)}" if w.input_bytes else ""))
    print()
    print(f"  {'stage':<10} {'disk peak':>11} {'disk after':>11} {'anon memory':>12} {'resident':>10} {'time':>9}   basis")
    for s in result.stages:
        basis = s.basis.split(":", 1)[0]  # measured-calibrated (partition) or measured-fitted (the fraud stages)
        print(f"  {s.name:<10} {fs(s.disk_peak_bytes):>11} {fs(s.disk_after_bytes):>11} {fs(s.peak_anon_bytes):>12} "
              f"{fs(s.peak_rss_bytes):>10} {_duration(s.seconds):>9}   {basis}")
    print(f"  {'all':<10} {fs(result.disk_need_bytes):>11} {'':>11} {fs(result.peak_anon_bytes):>12} "
          f"{fs(result.peak_rss_bytes):>10} {_duration(result.seconds):>9}")
    print("  (anon memory: heap and arrays, what must fit in RAM; resident adds mapped file pages, which the kernel "
          "can drop)")
    part = result.stages[0]
    d, t = part.detail["disk"], part.detail["seconds"]
    print()
    print(f"  partition disk: spill after ingest {fs(d['after_ingest'])}, after the ID map {fs(d['after_ids'])}"
          + (f", while assigning {fs(d['during_assign'])}" if w.method != "hash" else "")
          + f", after routing edges {fs(d['after_route'])}; dataset {fs(d['dataset'])} "
          f"({d['dataset'] / max(w.edges, 1):.1f} bytes per edge, {d['edge_arrays'] / max(w.edges, 1):.1f} of them "
          f"edge arrays: src {w.index_bytes['src']} B, indptr {w.index_bytes['indptr']} B per node, "
          f"columns {w.stored_column_bytes} B{' + reverse 1 B' if w.ingest_rows else ''})")
    print("  partition time: " + ", ".join(f"{k} {_duration(v)}" for k, v in t.items() if k != "total"))
    print(f"  partition memory: {fs(part.peak_rss_bytes)} resident, {fs(part.peak_anon_bytes)} anonymous")
    print("  estimated: " + "; ".join(f"{k} {v}" for k, v in w.notes.items()))
    print("  basis: partition -- " + part.basis.split(": ", 1)[1])
    if len(result.stages) > 1:
        print("         " + result.stages[1].name + ".. -- " + result.stages[1].basis.split(": ", 1)[1])
    if result.memory is not None:
        m = result.memory
        print(f"  memory: --memory-limit {fs(m['memory_limit_bytes'])} (anonymous, all processes); the stages after "
              f"partitioning about {fs(m['stages_anon_bytes'])}; ring finding may load up to "
              f"{m['ring_transaction_budget']:,} transactions (the lowest-scoring candidates beyond that are left out)")
    if result.free_bytes is not None:
        verdict = "fits" if result.free_bytes >= result.disk_need_bytes else "DOES NOT FIT"
        print(f"  disk: needs {fs(result.disk_need_bytes)} at its peak, {fs(result.free_bytes)} free under "
              f"{result.disk_path}: {verdict}")


def _duration(seconds: float) -> str:
    if seconds < 100:
        return f"{seconds:.1f} s"
    if seconds < 6000:
        return f"{seconds / 60:.1f} min"
    return f"{seconds / 3600:.1f} h"
