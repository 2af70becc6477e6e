"""``graphtrain train`` and ``graphtrain predict``: thin commands over :mod:`graphtrain.train`.

Defaults come from :class:`graphtrain.train.config.TrainConfig` and its nested
:class:`graphtrain.train.runtime.RuntimeConfig` (read here without importing torch or Ray, so
``graphtrain --help`` stays fast); ``--prefetch``, ``--pin-cpus``, ``--gloo-poller`` and
``--fused-dropout`` fill the RuntimeConfig. ``train --config FILE`` reads training options from a
configuration file (:mod:`graphtrain.train.config_file`); flags given override it
(:mod:`graphtrain.cli.config_args`).
"""
from __future__ import annotations

import argparse
import json

from graphtrain.cli.config_args import add_config_arg, file_values_to_apply
from graphtrain.errors import ConfigError
from graphtrain.train.config import AGGREGATORS, COMMAND_MIN_STEPS, EDGE_MODELS, EGO_MODES, MODELS


def _defaults():
    from graphtrain.train.config import TrainConfig

    return TrainConfig()


def _name_list(text: str):
    """``a,b,c`` -> a tuple of names (``none`` or empty: no names)."""
    names = tuple(t.strip() for t in text.split(",") if t.strip())
    return () if names == ("none",) else names


def _int_list(text: str):
    try:
        values = [int(v) for v in text.split(",") if v.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated integers such as 15,10, got {text!r}") from None
    if not values:
        raise argparse.ArgumentTypeError("give at least one fanout, e.g. 15,10")
    return values


def _float_list(text: str):
    try:
        return [float(v) for v in text.split(",")]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated numbers such as 0.7,0.15,0.15, got {text!r}") from None


def _seed_time(text: str):
    """``--seed-time``: an integer is one cutoff for every seed, anything else a node time column name."""
    text = text.strip()
    if not text:
        raise argparse.ArgumentTypeError("give an integer time or a node time column name")
    try:
        return int(text)
    except ValueError:
        return text


def _add_cluster_args(p, d) -> None:
    c = p.add_argument_group("cluster")
    c.add_argument("--num-workers", "-w", type=int, default=1, metavar="N",
                   help="workers; each serves a contiguous run of partitions (1 <= N <= partitions)")
    c.add_argument("--address", metavar="ADDR",
                   help="Ray cluster to join: HOST:PORT of `ray start --head`, or 'auto' (default: start a private "
                   "local Ray, whatever RAY_ADDRESS says)")
    c.add_argument("--cpus-per-worker", type=float, default=1.0, metavar="C", help="Ray CPUs reserved per worker")
    c.add_argument("--threads-per-worker", type=int, default=d.threads_per_worker, metavar="T",
                   help="torch and Numba threads per worker")
    c.add_argument("--pin-cpus", action="store_true",
                   help="pin each worker to --threads-per-worker cores of its own on its machine (so its prefetch "
                        "thread overlaps communication with its own compute)")
    c.add_argument("--gloo-poller", choices=["auto", "idle", "normal"], default=d.runtime.gloo_poller,
                   help="scheduling of gloo's socket-poller threads in multi-worker runs: normal (left alone), idle "
                        "(SCHED_IDLE, so a spinning poller cannot hold the core for a scheduler tick while the worker "
                        "waits on it; opt-in), or auto: idle on CPU, normal with --use-gpu (default: %(default)s)")
    c.add_argument("--num-cpus", type=int, metavar="N", help="logical CPUs of a local Ray (default: all cores)")
    c.add_argument("--use-gpu", action="store_true", help="one GPU per worker (NCCL gradients, AMP unless --no-amp)")
    c.add_argument("--inference-chunk", type=int, default=d.inference_chunk, metavar="N",
                   help="destination nodes per step of layer-wise inference")
    c.add_argument("--inference-dtype", choices=["float32", "float16"], default=d.inference_dtype,
                   help="storage of layer-wise inference's hidden-layer embeddings in its files on disk (float16: half "
                   "the disk and page cache, scores within about 1e-3)")
    c.add_argument("--inference-dir", metavar="DIR", default=d.inference_dir,
                   help="directory for layer-wise inference's scratch files, removed at the end (none given: beside the output)")


def _add_verify_args(p) -> None:
    v = p.add_argument_group("dataset integrity (array headers and file sizes are always checked)")
    g = v.add_mutually_exclusive_group()
    g.add_argument("--verify", dest="verify", action="store_const", const=True, default=argparse.SUPPRESS,
                   help="re-hash every array (sha256) before starting, ignoring the stamp of the last verification "
                   "(default: hash only the arrays changed since then; the first run hashes all)")
    g.add_argument("--no-verify", dest="verify", action="store_const", const=False, default=argparse.SUPPRESS,
                   help="skip the sha256 check (a dataset copied to fresh storage is otherwise hashed again)")


def register(sub) -> None:
    d = _defaults()
    p = sub.add_parser(
        "train", help="train a GNN on a partitioned dataset with Ray workers",
        description="Data-parallel GNN training: each worker opens its run of partitions memory-mapped, samples "
        "across partition borders and fetches remote features through all-to-all exchanges, and gradients are "
        "synchronised with DDP. Checkpoints are written periodically; a worker that dies is restarted from the last "
        "one. Prints one JSON line with the final metrics.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    p.add_argument("dataset", metavar="DIR", help="dataset directory written by `graphtrain partition` (with features and labels)")
    m = p.add_argument_group("model and schedule")
    add_config_arg(m)
    m.add_argument("--model", choices=list(MODELS), default=d.model,
                   help=f"GNN; {', '.join(EDGE_MODELS)} read edge features (--edge-features)")
    m.add_argument("--fanouts", type=_int_list, default=list(d.fanouts), metavar="K1,K2",
                   help="neighbours sampled per hop; one hop per layer")
    m.add_argument("--batch-size", type=int, default=d.batch_size, help="seeds per batch per worker")
    m.add_argument("--epochs", type=int, default=d.epochs,
                   help="most epochs (raised by --min-steps on small data, cut short by --max-steps)")
    m.add_argument("--min-steps", type=int, default=COMMAND_MIN_STEPS, metavar="N",
                   help="train at least N optimizer steps: on a small training set (fewer than N batches in --epochs "
                   "epochs) the epoch budget grows to reach N, and early stopping waits for N steps (0: epochs alone)")
    m.add_argument("--max-steps", type=int, default=d.max_steps, metavar="N",
                   help="stop training after N optimizer steps (batches per worker, over the whole run), whatever "
                   "--epochs says; the run then validates, keeps the best validated model, evaluates val and test on "
                   "all their nodes and writes its final checkpoint as at a normal end (>= --min-steps; default: "
                   "%(default)s, no step limit)")
    m.add_argument("--train-sample", type=int, default=d.train_sample, metavar="N",
                   help="each epoch, train on a stratified (by label) random sample of N training seeds over all "
                   "workers, a new one every epoch, drawn from --seed and the epoch: the same on any worker count and "
                   "after a resume; batches per epoch (and --min-steps' epochs) count the sample (default: "
                   "%(default)s, every training node every epoch)")
    m.add_argument("--val-sample", type=int, default=d.val_sample, metavar="N",
                   help="validate during training (early stopping, best model) on a fixed stratified sample of N "
                   "validation nodes; the final metrics still score the whole val and test splits (default: "
                   "%(default)s, the whole validation split)")
    m.add_argument("--hidden", type=int, default=d.hidden, help="hidden width")
    m.add_argument("--dropout", type=float, default=d.dropout)
    m.add_argument("--heads", type=int, default=d.heads, help="GAT and transformer attention heads")
    m.add_argument("--edge-features", type=_name_list, default=None, metavar="F1,F2",
                   help="edge inputs of the edge-aware models, among amount, reverse, time_delta, parallel (signed log "
                   "amount, direction, log days before the seed time, log count of transactions between the same "
                   "pair; 'none' for none); default: every one the dataset has for an edge-aware model")
    m.add_argument("--aggregators", type=_name_list, default=list(d.aggregators), metavar="A1,A2",
                   help=f"neighbour aggregations of sage / sage_edge, used together ({', '.join(AGGREGATORS)})")
    m.add_argument("--ego", choices=EGO_MODES, default=d.ego,
                   help="sage / sage_edge: add a node's own and its neighbours' transforms (sum) or keep them side by "
                   "side (concat, H2GCN-style)")
    m.add_argument("--lr", type=float, default=d.lr)
    m.add_argument("--weight-decay", type=float, default=d.weight_decay)
    m.add_argument("--class-weight", choices=["balanced", "none"], default=d.class_weight,
                   help="weight the loss by inverse class frequency (rare fraud labels)")
    m.add_argument("--monitor", choices=["auc", "ap", "f1_macro", "recall_at_k", "accuracy"], default=d.monitor,
                   help="validation metric for early stopping and the best model")
    m.add_argument("--patience", type=int, metavar="N", help="stop after N epochs without improvement (default: never)")
    m.add_argument("--min-delta", type=float, default=d.min_delta, help="smallest improvement that counts")
    m.add_argument("--split", type=_float_list, default=list(d.split_fractions), metavar="TR,VA,TE",
                   help="train/val/test fractions for datasets without a stored split (stratified by label)")
    m.add_argument("--no-normalize", action="store_true",
                   help="feed the model the raw node features (default: standardise each feature with the training "
                   "split's mean and standard deviation, stored with the checkpoint and applied by predict)")
    m.add_argument("--seed", type=int, default=d.seed)
    m.add_argument("--no-amp", action="store_true", help="no mixed precision on GPU")
    m.add_argument("--activation-checkpointing", action="store_true", help="recompute activations in backward (deep models)")
    m.add_argument("--recall-k", type=int, metavar="K", help="k of recall@k (default: number of positives)")
    t = p.add_argument_group("temporal sampling (no information from after a seed's time)")
    t.add_argument("--temporal", choices=["uniform", "recent"], default=d.temporal,
                   help="sample only edges with time <= each seed's time (needs the dataset's --time column), "
                   "uniformly among them or the most recent ones; predict scores the same way")
    t.add_argument("--temporal-strict", action="store_true", help="only edges strictly earlier than the seed time")
    t.add_argument("--seed-time", type=_seed_time, default=d.seed_time, metavar="T|COL",
                   help="each seed's time: an integer T (one cutoff for all seeds, in the edge time's unit), or the "
                   "dataset's node time column COL (partition --node-time COL; predict then samples instead of "
                   "running layer-wise); None: the dataset's latest edge time")
    ld = p.add_argument_group("loading")
    ld.add_argument("--prefetch", type=int, default=d.runtime.prefetch, metavar="N",
                    help="batches each worker samples ahead in a background thread (0: in the training thread)")
    ld.add_argument("--fused-dropout", action="store_true",
                    help="the models' ReLU + dropout in one Numba pass on CPU (faster on CPU; the masks are other "
                    "draws than the default torch dropout's)")
    c = p.add_argument_group("checkpoints")
    c.add_argument("--checkpoint-dir", metavar="D", help="checkpoint directory (default: a new temporary directory)")
    c.add_argument("--checkpoint-every", type=int, default=d.checkpoint_every, metavar="N",
                   help="also checkpoint every N batches within an epoch (0: at epoch ends only)")
    c.add_argument("--resume", action="store_true", help="continue from the newest checkpoint in --checkpoint-dir")
    c.add_argument("--max-restarts", type=int, default=3, help="worker failures survived by restarting from the last checkpoint")
    _add_cluster_args(p, d)
    _add_verify_args(p)
    p.add_argument("--no-progress", action="store_true", help="no progress bars (they are off anyway when stderr is not a terminal)")
    p.set_defaults(func=run_train)

    q = sub.add_parser(
        "predict", help="score every node with a trained model (layer-wise) into a Parquet file by raw ID",
        description="Full-graph, layer-wise inference with all in-edges (not sampled), distributed over the workers; "
        "writes node_id (raw ID), score, pred and label columns to one Parquet file, atomically. A model trained with "
        "--temporal is scored as trained: layer-wise over the edges up to its cutoff, or, with per-node seed times "
        "(--seed-time COL), with the temporal sampler.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    q.add_argument("dataset", metavar="DIR", help="dataset directory")
    q.add_argument("--checkpoint", required=True, metavar="C", help="checkpoint directory (uses its newest) or one checkpoint")
    q.add_argument("--out", required=True, metavar="FILE", help="Parquet file to write")
    q.add_argument("--force", action="store_true", help="replace --out if it exists")
    _add_cluster_args(q, d)
    _add_verify_args(q)
    q.set_defaults(func=run_predict)


def run_train(args) -> int:
    from graphtrain.train import Trainer
    from graphtrain.train.runtime import RuntimeConfig

    options = dict(
        model=args.model, fanouts=args.fanouts, batch_size=args.batch_size, epochs=args.epochs,
        min_steps=args.min_steps, max_steps=args.max_steps, train_sample=args.train_sample, val_sample=args.val_sample,
        hidden=args.hidden, dropout=args.dropout, heads=args.heads, edge_features=args.edge_features,
        aggregators=tuple(args.aggregators), ego=args.ego, lr=args.lr, weight_decay=args.weight_decay,
        class_weight=args.class_weight, monitor=args.monitor, patience=args.patience, min_delta=args.min_delta,
        split_fractions=tuple(args.split), normalize=not args.no_normalize, seed=args.seed, use_gpu=args.use_gpu,
        amp=not args.no_amp, activation_checkpointing=args.activation_checkpointing,
        checkpoint_every=args.checkpoint_every, recall_k=args.recall_k, temporal=args.temporal,
        temporal_strict=args.temporal_strict, seed_time=args.seed_time, threads_per_worker=args.threads_per_worker,
        inference_chunk=args.inference_chunk, inference_dtype=args.inference_dtype, inference_dir=args.inference_dir)
    if args.config:
        from graphtrain.train.config_file import read_config_file

        options.update(file_values_to_apply(read_config_file(args.config), getattr(args, "given_flags", ())))
    trainer = Trainer(
        args.dataset, num_workers=args.num_workers, address=args.address, checkpoint_dir=args.checkpoint_dir,
        resume=args.resume, max_restarts=args.max_restarts, cpus_per_worker=args.cpus_per_worker,
        num_cpus=args.num_cpus, progress=False if args.no_progress else None, verify=getattr(args, "verify", None),
        runtime=RuntimeConfig(prefetch=args.prefetch, pin_cpus=args.pin_cpus, gloo_poller=args.gloo_poller,
                              fused_dropout=args.fused_dropout),
        **options)
    result = trainer.fit()
    print(json.dumps(result.to_dict(history=False)))
    return 0


def run_predict(args) -> int:
    from graphtrain.train import predict

    if args.num_workers is None or args.num_workers < 1:
        raise ConfigError(f"--num-workers must be >= 1, got {args.num_workers}")
    summary = predict(args.dataset, args.checkpoint, args.out, num_workers=args.num_workers, address=args.address,
                      force=args.force, cpus_per_worker=args.cpus_per_worker, num_cpus=args.num_cpus,
                      threads_per_worker=args.threads_per_worker, inference_chunk=args.inference_chunk,
                      inference_dtype=args.inference_dtype, inference_dir=args.inference_dir,
                      use_gpu=args.use_gpu, runtime={"pin_cpus": args.pin_cpus, "gloo_poller": args.gloo_poller},
                      verify=getattr(args, "verify", None))
    print(json.dumps(summary))
    return 0
