"""``graphtrain prepare-data``: turn a public fraud dataset into an edge list + account table.

The output (``edges.parquet``, ``accounts.parquet``, ``manifest.json``; see
:mod:`graphtrain.fraud.data.datasets`) is what ``graphtrain partition`` and the fraud pipeline read.
"""
from __future__ import annotations

import json

HELP = "convert AMLSim, Amazon U-P-U or Tolokers into an edge list + account table"
DATASETS = ("amlsim", "amazon-upu", "tolokers")


def register(subparsers) -> None:
    parser = subparsers.add_parser("prepare-data", help=HELP, description=HELP + " (Parquet, with a manifest naming "
                                   "the columns). The data is read where it lies; nothing is downloaded.")
    parser.add_argument("dataset", choices=DATASETS, help="which dataset")
    parser.add_argument("source", help="AMLSim: a sample directory with transactions.csv and nodes.csv; "
                        "Amazon U-P-U: Amazon.mat; Tolokers: tolokers.npz (see shared/data/SOURCES.md)")
    parser.add_argument("--out", required=True, help="output directory (created; see --force)")
    parser.add_argument("--split-index", type=int, default=0, metavar="K",
                        help="Tolokers: which of its 10 fixed train/val/test splits to write (default: 0)")
    parser.add_argument("--force", action="store_true", help="replace an existing prepared directory")
    parser.set_defaults(func=run)


def run(args) -> int:
    from graphtrain.fraud.data.datasets import load_named, write_prepared
    from graphtrain.optional import require

    require("pandas", "scipy", feature="prepare-data")
    dataset = load_named(args.dataset, args.source, split_index=args.split_index)
    files = write_prepared(dataset, args.out, force=args.force)
    g = dataset.graph
    print(json.dumps({"dataset": dataset.name, "accounts": g.num_accounts, "edges": g.num_edges,
                      "positives": int((g.accounts.labels == 1).sum()), "files": files}))
    return 0
