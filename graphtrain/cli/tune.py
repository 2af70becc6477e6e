"""``graphtrain tune``: a thin command over :func:`graphtrain.tune.search.run_search`."""
from __future__ import annotations

import argparse
import json


def _duration(text: str) -> float:
    from graphtrain.errors import ConfigError
    from graphtrain.units import parse_duration

    try:
        return parse_duration(text)
    except ConfigError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def register(sub) -> None:
    from graphtrain.tune.search import METRICS, SearchOptions

    d = SearchOptions(trials=1, time_budget_s=1.0)
    p = sub.add_parser(
        "tune", help="hyperparameter search (Ray Tune: ASHA early stopping, Optuna TPE) -> a --config file",
        description="Searches model, depth, fanouts, width, learning rate, dropout, weight decay, class weighting "
        "and feature standardisation (graphtrain/tune/space.py) on a partitioned dataset with labels and a stored "
        "split: each trial is a graphtrain training run with one Ray worker, reporting its validation metric after "
        "every validation, so ASHA stops weak trials early; TPE picks the next trial. Writes the best configuration "
        "(--out, a JSON file for `graphtrain train --config` and `graphtrain detect-rings --config`) and a table of "
        "all trials (SEARCH_DIR/trials.csv), and prints one JSON line. A fraud user tunes on the dataset "
        "detect-rings built: `graphtrain tune OUT/dataset ...`, then `graphtrain detect-rings ... --config FILE`.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("dataset", metavar="DIR",
                   help="partitioned dataset with features, labels and a split (`graphtrain partition --split`, or a "
                   "detect-rings output's OUT/dataset)")
    p.add_argument("--trials", type=int, required=True, metavar="N", help="most trials")
    p.add_argument("--time-budget", type=_duration, required=True, metavar="DURATION",
                   help="wall-clock limit of the search: seconds, or 30m, 2h; trials still running then are stopped "
                   "(a --resume gets what the interrupted search left of it)")
    p.add_argument("--metric", choices=METRICS, default=d.metric, help="validation metric to maximise")
    p.add_argument("--out", metavar="FILE", help="best configuration file (default: SEARCH_DIR/best_config.json)")
    p.add_argument("--search-dir", metavar="DIR", help="the search's state and trial table (default: DIR/tune)")
    p.add_argument("--resume", action="store_true",
                   help="continue the interrupted search in --search-dir (refused if its arguments or the space changed)")
    p.add_argument("--force", action="store_true", help="replace --out and an earlier search in --search-dir")
    s = p.add_argument_group("each trial's schedule")
    s.add_argument("--epochs", type=int, default=d.epochs, help="most epochs (and validations) of a trial; ASHA's max_t")
    s.add_argument("--patience", type=int, default=d.patience, help="a trial stops after N validations without improvement")
    s.add_argument("--min-steps", type=int, default=d.min_steps, metavar="N", help="a trial trains at least N steps")
    s.add_argument("--batch-size", type=int, default=d.batch_size, help="seeds per batch")
    s.add_argument("--grace-period", type=int, default=d.grace_period, metavar="N",
                   help="validations before ASHA may stop a trial")
    s.add_argument("--seed", type=int, default=d.seed, help="TPE's seed and every trial's training seed")
    c = p.add_argument_group("cluster")
    c.add_argument("--address", metavar="ADDR",
                   help="Ray cluster to join (default: start a private local Ray, whatever RAY_ADDRESS says)")
    c.add_argument("--num-cpus", type=int, metavar="N",
                   help="logical CPUs of a local Ray (default: all cores); trials run CPUs / --cpus-per-worker at a time")
    c.add_argument("--cpus-per-worker", type=float, default=d.cpus_per_worker, metavar="C",
                   help="Ray CPUs of each trial's one worker (one torch thread)")
    p.set_defaults(func=run_tune)


def run_tune(args) -> int:
    from graphtrain.tune.search import SearchOptions, run_search

    options = SearchOptions(trials=args.trials, time_budget_s=args.time_budget, metric=args.metric, epochs=args.epochs,
                            patience=args.patience, min_steps=args.min_steps, batch_size=args.batch_size,
                            grace_period=args.grace_period, cpus_per_worker=args.cpus_per_worker, seed=args.seed)
    summary = run_search(args.dataset, options, out=args.out, search_dir=args.search_dir, resume=args.resume,
                         force=args.force, address=args.address, num_cpus=args.num_cpus)
    print(json.dumps(summary))
    return 130 if summary["ended"] == "interrupted" else 0
