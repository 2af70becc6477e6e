"""``graphtrain detect-rings`` (any user's transactions and accounts) and ``graphtrain demo`` (generated data).

Both run :mod:`graphtrain.fraud.pipeline.detect`: partition -> train on Ray -> score every account -> tree
baseline on the same split -> rings -> report, and end by printing the report path and one JSON line.
"""
from __future__ import annotations

import argparse
import json
import sys

from graphtrain.cli.config_args import add_config_arg, file_values_to_apply
from graphtrain.cli.train import _int_list

FINAL_KEYS = ("auc", "ap", "f1_macro", "recall_at_k", "baseline_auc", "baseline_ap", "baseline_f1_macro",
              "blend_auc", "blend_ap", "blend_f1_macro", "blend_weight", "stack_auc", "stack_ap", "shipped_score",
              "shipped_auc", "shipped_ap", "ring_score",
              "flagged_fraction", "rings", "warnings",
              "true_rings", "ring_precision", "ring_recall", "ring_recall_by_typology", "accounts", "transactions",
              "score_source", "report")


def _columns(text: str):
    cols = [c.strip() for c in text.split(",") if c.strip()]
    if not cols:
        raise argparse.ArgumentTypeError("give at least one column name")
    return cols


def _add_model_args(p) -> None:
    from graphtrain.fraud.pipeline.detect import ModelOptions
    from graphtrain.train.config import MODELS, TEMPORAL_MODES

    d = ModelOptions()
    m = p.add_argument_group("model and training")
    add_config_arg(m)
    m.add_argument("--model", choices=MODELS, default=d.model, help="GNN (default: %(default)s)")
    m.add_argument("--fanouts", type=_int_list, default=list(d.fanouts), metavar="K1,K2",
                   help="neighbours sampled per hop (default: %s)" % ",".join(map(str, d.fanouts)))
    m.add_argument("--hidden", type=int, default=d.hidden, help="hidden width (default: %(default)s)")
    m.add_argument("--epochs", type=int, default=d.epochs, help="most epochs (default: %(default)s)")
    m.add_argument("--min-steps", type=int, default=d.min_steps, metavar="N",
                   help="train at least N optimizer steps: a small labelled set (fewer than N batches in --epochs "
                   "epochs) gets more epochs, and early stopping waits for N steps (default: %(default)s)")
    m.add_argument("--max-steps", type=int, default=d.max_steps, metavar="N",
                   help="stop training after N optimizer steps whatever --epochs says (a huge graph's budget; default: "
                   "no limit)")
    m.add_argument("--train-sample", type=int, default=d.train_sample, metavar="N",
                   help="train each epoch on a stratified sample of N labelled training accounts, a new one every "
                   "epoch (default: all of them)")
    m.add_argument("--val-sample", type=int, default=d.val_sample, metavar="N",
                   help="validate during training on a fixed stratified sample of N validation accounts; the final "
                   "metrics use them all (default: all)")
    m.add_argument("--patience", type=int, default=d.patience,
                   help="stop after this many epochs without a better validation AP (default: %(default)s)")
    m.add_argument("--batch-size", type=int, default=d.batch_size, help="seeds per batch per worker (default: %(default)s)")
    m.add_argument("--lr", type=float, default=d.lr, help="learning rate (default: %(default)s)")
    m.add_argument("--num-parts", type=int, default=d.num_parts, help="partitions (default: %(default)s)")
    m.add_argument("--method", choices=["hash", "ldg", "fennel", "metis"], default=d.method,
                   help="partition assignment (default: %(default)s)")
    m.add_argument("--memory-limit", metavar="SIZE",
                   help="the whole run's memory limit, anonymous memory of all its processes, e.g. 8G: partitioning "
                   "works within it, a limit too small for the account table is refused before any work, and ring "
                   "finding leaves out its lowest-scoring candidates when their transactions would not fit (the "
                   "summary's ring_memory_budget and a warning say so) (default: half this machine's memory)")
    m.add_argument("--skip-disk-check", dest="disk_check", action="store_false",
                   help="do not refuse a run that graphtrain plan estimates the free disk beside --out cannot hold")
    m.add_argument("--num-workers", "-w", type=int, default=d.num_workers, help="Ray workers (default: %(default)s)")
    m.add_argument("--address", metavar="ADDR",
                   help="Ray cluster to join (default: start a private local Ray, whatever RAY_ADDRESS says)")
    m.add_argument("--num-cpus", type=int, metavar="N", help="logical CPUs of a local Ray (default: all cores)")
    m.add_argument("--temporal", choices=TEMPORAL_MODES, default=d.temporal,
                   help="temporal neighbour sampling on the transaction time (needs --time): only transactions up to "
                   "the seed time (the end of the log), uniformly or the most recent ones (default: off)")
    m.add_argument("--no-blend", dest="blend", action="store_false",
                   help="skip the blend: by default every account also gets blend_score, the rank blend of the GNN and "
                   "the tree baseline weighted on validation AP (blend_auc, blend_ap, ... in the output), a candidate "
                   "for the rings' score (ring_score: the GNN's, the tree's or the blend's, whichever is best on held-out "
                   "validation accounts); auc, ap, ... are the GNN's either way")
    m.add_argument("--stack-folds", type=int, default=d.stack_folds, metavar="K",
                   help="GNN-to-tree stacking: train K more GNNs, each without one fold of the training accounts, and "
                   "refit the tree with their cross-fitted score as a column (stack_auc, stack_ap, the stack_score "
                   "column); the shipped score (shipped_score) is whichever of GNN, tree, blend and stack is best on "
                   "held-out validation. 0: off (default: %(default)s)")
    m.add_argument("--seed", type=int, default=d.seed, help="seed of the split, partitioning, training, baseline (default: %(default)s)")
    m.add_argument("--force", action="store_true", help="replace an earlier output of this command")
    m.add_argument("--resume", action="store_true",
                   help="continue a run of the same arguments and inputs that crashed or was killed, from its last "
                   "finished stage (partition, features, model inputs, train -- from its newest checkpoint --, score, "
                   "baseline, rings): its staging directory beside the output is adopted instead of removed. Refused, "
                   "naming what changed, if any argument or input file differs (nothing is deleted). Without a dead "
                   "run to continue it starts afresh")


def _options(args):
    from graphtrain.fraud.pipeline.detect import ModelOptions
    from graphtrain.fraud.pipeline.pipeline import PipelineConfig

    options = ModelOptions(model=args.model, fanouts=tuple(args.fanouts), hidden=args.hidden, epochs=args.epochs,
                           min_steps=args.min_steps, max_steps=args.max_steps, train_sample=args.train_sample,
                           val_sample=args.val_sample, patience=args.patience, batch_size=args.batch_size, lr=args.lr,
                           num_parts=args.num_parts, method=args.method, memory_limit=args.memory_limit, disk_check=args.disk_check,
                           num_workers=args.num_workers, address=args.address,
                           num_cpus=args.num_cpus, temporal=args.temporal, stack_folds=args.stack_folds, seed=args.seed)
    if args.config:
        options = _with_config(options, args.config, getattr(args, "given_flags", ()))
    return options, PipelineConfig(seed=args.seed, blend=args.blend, weight_is_money=not getattr(args, "edge_weight", None))


def _with_config(options, path, given):
    """``options`` with a configuration file's values (flags given win): a key that is a ModelOptions
    field sets it; any other TrainConfig field goes to ``train_options``."""
    from dataclasses import fields, replace

    from graphtrain.train.config_file import read_config_file

    values = file_values_to_apply(read_config_file(path), given)
    own = {f.name for f in fields(options)} - {"train_options"}
    return replace(options, **{k: v for k, v in values.items() if k in own},
                   train_options={k: v for k, v in values.items() if k not in own})


def _print_result(summary) -> int:
    print(f"report: {summary['report']}")
    print(json.dumps({k: summary[k] for k in FINAL_KEYS if k in summary}))
    return 0


def register(sub) -> None:
    p = sub.add_parser(
        "detect-rings", help="transactions + accounts -> partition, train, score, rings, HTML report",
        description="The fraud-ring pipeline on your data, in bounded memory: streams the transactions (both directions) "
        "and accounts into a partitioned dataset (OUT/dataset) that every later stage reads, trains a "
        "GNN on Ray workers, scores every account, runs the tree baseline on the same split, finds rings "
        "(components, communities and dense-subgraph peeling of high-risk accounts) and writes OUT/summary.json, "
        "OUT/scores.parquet, OUT/rings.{parquet,csv}, OUT/ring_members.{parquet,csv} and OUT/report/index.html. "
        "Prints the report path and one JSON line (auc, ap, f1_macro of the GNN; "
        "baseline_auc, baseline_ap of the tree; blend_auc, blend_ap of their rank blend, see --no-blend; "
        "ring_score: which scores the rings come from; flagged_fraction; warnings; "
        "ring_precision, ring_recall with --rings; ...). On a terminal every long stage shows a progress bar on stderr "
        "with its rate and ETA. Each stage records when it finished (OUT/stages/*.json): after a crash or a kill, "
        "rerun the same command with --resume to continue from the last finished stage.")
    d = p.add_argument_group("data")
    d.add_argument("--edges", required=True, metavar="FILE", help="transactions: CSV, TSV or Parquet (.gz ok)")
    d.add_argument("--src", default="src", metavar="COL", help="payer column (default: %(default)s)")
    d.add_argument("--dst", default="dst", metavar="COL", help="payee column (default: %(default)s)")
    d.add_argument("--time", metavar="COL", help="transaction time column (integer or timestamp)")
    weight = d.add_mutually_exclusive_group()
    weight.add_argument("--amount", metavar="COL", help="transaction amount column (money: the report says amount)")
    weight.add_argument("--edge-weight", metavar="COL",
                        help="an edge weight column that is not money (a rating, a count): used like --amount, and the "
                        "report says edge weight")
    d.add_argument("--accounts", required=True, metavar="FILE", help="account table: CSV, TSV or Parquet")
    d.add_argument("--id", default="account_id", metavar="COL", help="account ID column (default: %(default)s)")
    d.add_argument("--label", required=True, metavar="COL", help="label column: 1 fraud, 0 not, empty = unknown")
    d.add_argument("--split", metavar="COL", help="split column (train/val/test; default: a stratified 40/20/40 split)")
    d.add_argument("--features", type=_columns, metavar="COLS",
                   help="comma-separated feature columns (default: every other numeric column)")
    d.add_argument("--add-unknown-accounts", action="store_true",
                   help="add transaction endpoints missing from the account table (default: an error)")
    d.add_argument("--undirected", action="store_true",
                   help="the edge list holds each undirected edge in both directions (checked: an edge whose reverse is "
                   "not in the list is an error; past 1M edges, on a hash sample of about 1M edges picked by their "
                   "unordered pair, so an edge and its reverse are checked together). Without it, every transaction "
                   "is used in both directions")
    d.add_argument("--rings", metavar="FILE", help="ground-truth rings (ring_id, account ID[, role, typology]) to evaluate against")
    d.add_argument("--rings-id", metavar="COL",
                   help="account ID column of --rings (default: the --id column if the file has it, else account_id)")
    p.add_argument("--out", required=True, metavar="DIR", help="output directory (created; see --force)")
    _add_model_args(p)
    p.set_defaults(func=run_detect)

    from graphtrain.fraud.synth.generator_config import GeneratorConfig

    g = sub.add_parser(
        "demo", help="the fraud-ring pipeline on generated data (the README's main job)",
        description="Generates a transaction graph with planted laundering rings into OUT/data (graphtrain generate), "
        "then runs detect-rings on it into OUT/run with a local Ray and evaluates the rings found against the planted "
        "ones. Prints the report path and one JSON line. Progress bars and --resume as in detect-rings (with --resume "
        "the data generated earlier in OUT/data is reused if it was generated with the same settings).")
    g.add_argument("--out", default="graphtrain-demo", metavar="DIR", help="output directory (default: %(default)s)")
    g.add_argument("--accounts", type=int, default=GeneratorConfig().num_accounts,
                   help="accounts to generate (default: %(default)s)")
    _add_model_args(g)
    g.set_defaults(func=run_demo)


def run_detect(args) -> int:
    from graphtrain.fraud.pipeline.detect import detect_rings

    options, config = _options(args)
    return _print_result(detect_rings(
        args.edges, args.accounts, args.out, src=args.src, dst=args.dst, time=args.time, amount=args.amount,
        edge_weight=args.edge_weight, id=args.id, label=args.label, split=args.split, features=args.features,
        undirected=args.undirected, add_unknown_accounts=args.add_unknown_accounts, rings=args.rings,
        rings_id=args.rings_id, options=options, config=config, force=args.force, progress=sys.stderr.isatty(),
        resume=args.resume))


def run_demo(args) -> int:
    from graphtrain.fraud.pipeline.detect import run_generated
    from graphtrain.fraud.synth.generator_config import GeneratorConfig

    options, config = _options(args)
    options.validate()
    gen = GeneratorConfig(num_accounts=args.accounts, seed=args.seed)
    return _print_result(run_generated(args.out, gen, options, config, force=args.force, resume=args.resume,
                                       progress=sys.stderr.isatty()))
