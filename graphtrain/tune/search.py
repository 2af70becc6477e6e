"""``graphtrain tune``: hyperparameter search on Ray Tune -- ASHA (asynchronous Hyperband) stops
weak trials early, Optuna's TPE picks the next point (``ray.tune.search.optuna.OptunaSearch``).

The search directory (default ``DIR/tune``)::

    SEARCH_DIR/
    ├── search.json       the search's arguments and space; a resume must match them
    ├── experiment/       Ray Tune's experiment (its state, every trial's reports): what --resume restores
    └── trials.csv        one row per trial: its parameters, status, validations, best validation metric

The best configuration goes to ``--out`` (default ``SEARCH_DIR/best_config.json``), a configuration
file (:mod:`graphtrain.train.config_file`) that ``graphtrain train --config`` and ``graphtrain
detect-rings --config`` read: the best trial's searched options and the schedule it was trained
with. "Best" is the highest validation metric any report of a trial reached (the Trainer keeps the
best validated model, so that is the model the configuration reproduces); the test split is never
looked at.

Ray: the search joins the cluster at ``address`` or starts a private local one (never one named
only by ``RAY_ADDRESS``; :func:`graphtrain.train.group.connect`). Every trial's Trainer runs its one
worker in the trial's placement group on that same cluster (:mod:`graphtrain.tune.trial`), so at most
``CPUs / cpus_per_worker`` trials run at once, and no trial starts a Ray of its own.
"""
from __future__ import annotations

import csv
import json
import math
import shutil
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Dict, List, Optional

from graphtrain.errors import ConfigError, GraphtrainError, OutputExistsError
from graphtrain.io import write_text_atomic
from graphtrain.log import get_logger
from graphtrain.optional import require
from graphtrain.tune.space import search_space, train_options

log = get_logger("tune")

METRICS = ("ap", "auc")
SEARCH_FILE = "search.json"
EXPERIMENT = "experiment"
TRIALS_FILE = "trials.csv"
BEST_FILE = "best_config.json"


class SearchInterrupted(GraphtrainError):
    """The search was stopped (Ctrl-C) before it ran its trials; ``--resume`` continues it."""

    exit_code = 130


@dataclass(frozen=True)
class SearchOptions:
    """What a search runs: how many trials, for how long, and each trial's schedule.

    Attributes:
        trials: most trials (Tune's ``num_samples``); the search ends at this many or at ``time_budget_s``.
        time_budget_s: wall-clock seconds of the whole search: a resumed search gets what the
            interrupted one left of it (Ray Tune restores the remainder).
        metric: validation metric searched on, ``"ap"`` or ``"auc"`` (also each trial's ``monitor``).
        epochs: most epochs (so validations) of a trial: ASHA's ``max_t``.
        patience: a trial's early stopping: validations without improvement.
        min_steps: a trial's least optimizer steps (:attr:`~graphtrain.train.config.TrainConfig.min_steps`).
        batch_size: seeds per batch.
        grace_period: validations before ASHA may stop a trial. reduction_factor: ASHA's ``eta``.
        cpus_per_worker: Ray CPUs of each trial's one worker (``threads_per_worker`` is 1).
        seed: TPE's seed and every trial's training seed (the same split and sampling for all).
    """

    trials: int
    time_budget_s: float
    metric: str = "ap"
    epochs: int = 20
    patience: int = 4
    min_steps: int = 100
    batch_size: int = 512
    grace_period: int = 2
    reduction_factor: int = 3
    cpus_per_worker: float = 1.0
    seed: int = 0

    def validate(self) -> "SearchOptions":
        if isinstance(self.trials, bool) or not isinstance(self.trials, int) or self.trials < 1:
            raise ConfigError(f"--trials must be an integer >= 1, got {self.trials!r}")
        if not (isinstance(self.time_budget_s, (int, float)) and self.time_budget_s > 0):
            raise ConfigError(f"--time-budget must be positive, got {self.time_budget_s!r}")
        if self.metric not in METRICS:
            raise ConfigError(f"--metric must be one of {METRICS}, got {self.metric!r}")
        for name in ("epochs", "patience", "batch_size", "grace_period"):
            if getattr(self, name) < 1:
                raise ConfigError(f"{name} must be >= 1, got {getattr(self, name)}")
        if self.reduction_factor < 2:
            raise ConfigError(f"reduction_factor must be >= 2, got {self.reduction_factor}")
        if not self.cpus_per_worker > 0:
            raise ConfigError(f"cpus_per_worker must be > 0, got {self.cpus_per_worker}")
        return self

    def fixed_train_options(self) -> Dict[str, object]:
        """The TrainConfig fields every trial shares."""
        return {"epochs": self.epochs, "patience": self.patience, "min_steps": self.min_steps,
                "batch_size": self.batch_size, "monitor": self.metric, "seed": self.seed, "threads_per_worker": 1,
                "keep_checkpoints": 1}


def check_dataset(dataset_dir):
    """``dataset_dir`` is a dataset with node features, labels and a stored train/val/test split."""
    from graphtrain.partition.format import open_dataset

    path = Path(dataset_dir)
    if not path.is_dir():
        raise ConfigError(f"{path}: no such dataset directory")
    ds = open_dataset(path)  # FormatError for anything that is not a dataset
    schema = ds.meta.node_schema
    if schema.label is None:
        raise ConfigError(f"{path}: the dataset has no node labels to search on; partition it with --nodes ... --label COL")
    if not schema.feature_names:
        raise ConfigError(f"{path}: the dataset has no node features; partition it with --nodes ... --features COLS")
    if schema.split is None:
        raise ConfigError(f"{path}: the dataset has no train/val/test split; partition it with --nodes ... --split COL "
                          "(detect-rings writes one into OUT/dataset), so every trial and the final training "
                          "validate on the same accounts")
    return ds


def _fingerprint(dataset_dir: Path, options: SearchOptions) -> dict:
    return {"dataset": str(dataset_dir), "options": asdict(options),
            "space": [p.describe() for p in search_space()]}


def _changes(old: dict, new: dict) -> List[str]:
    out = []
    if old.get("dataset") != new["dataset"]:
        out.append(f"dataset {old.get('dataset')} -> {new['dataset']}")
    for k, v in new["options"].items():
        if old.get("options", {}).get(k) != v:
            out.append(f"{k} {old.get('options', {}).get(k)!r} -> {v!r}")
    if old.get("space") != new["space"]:
        was = {p[0]: p for p in old.get("space", [])}
        now = {p[0]: p for p in new["space"]}
        diff = sorted(n for n in set(was) | set(now) if was.get(n) != now.get(n))
        out.append(f"search space ({', '.join(diff)})")
    return out


def how_it_ended(trials_ended: int, trials: int, elapsed_s: float, budget_s: float) -> str:
    """``"time budget"`` (the search, resumes included, ran that long: Tune stopped what was running),
    else ``"complete"`` (all ``trials`` ended: ``trials_ended`` counts those that finished, early
    stopping included, or failed; see :func:`trial_status`), else ``"interrupted"`` (Tune returns
    normally after Ctrl-C too -- also when the trial it stopped was the last)."""
    if elapsed_s >= budget_s:
        return "time budget"
    return "complete" if trials_ended >= trials else "interrupted"


def _own_output(out: Path, search_dir: Path) -> bool:
    """``out`` is a best-configuration file this search wrote (a resume may replace it)."""
    try:
        doc = json.loads(out.read_text(encoding="utf-8"))
        return Path(doc["search"]["search_dir"]) == search_dir
    except (OSError, ValueError, KeyError, TypeError):
        return False


def _prepare(dataset_dir: Path, search_dir: Path, out: Path, options: SearchOptions, resume: bool, force: bool) -> dict:
    """Every check before Ray starts; returns the search's fingerprint."""
    options.validate()
    dataset = check_dataset(dataset_dir)
    fingerprint = _fingerprint(dataset_dir, options)
    state = search_dir / SEARCH_FILE
    if resume:
        if not state.is_file() or not (search_dir / EXPERIMENT).is_dir():
            raise ConfigError(f"{search_dir}: no search to resume (no {SEARCH_FILE} and {EXPERIMENT}/ there); run "
                              "without --resume to start one")
        old = json.loads(state.read_text(encoding="utf-8"))
        changed = _changes(old, fingerprint)
        if changed:
            raise ConfigError(f"{search_dir}: cannot resume: the search's arguments changed ({'; '.join(changed)}); "
                              "resume with the original arguments, or start a new search with --force (or another "
                              "--search-dir)")
        if old.get("ended") in ("complete", "time budget"):
            raise ConfigError(f"{search_dir}: the search already ended ({old['ended']}, {old.get('trials')} trials); "
                              "Ray Tune resumes only an interrupted search: start a new one with --force (or another "
                              "--search-dir), with more --trials or a longer --time-budget")
    elif search_dir.exists() and any(search_dir.iterdir()):
        if not force:
            raise OutputExistsError(f"{search_dir} holds an earlier search; pass --resume to continue it or --force to "
                                    "start over (or give another --search-dir)")
        if not state.is_file():
            raise ConfigError(f"{search_dir} is not empty and not a graphtrain search directory (no {SEARCH_FILE}); "
                              "give an empty or new --search-dir")
    if out.exists() and not force and not (resume and _own_output(out, search_dir)):
        raise OutputExistsError(f"{out} already exists; pass --force to replace it")
    if out.is_dir():
        raise ConfigError(f"--out {out} is a directory; give a file name")
    dataset.verify(reuse_stamp=True)  # once here (the arrays changed since the last stamp); the trials skip it
    return fingerprint


def _tuner(trainable, search_dir: Path, options: SearchOptions, resume: bool):
    import optuna
    from ray import tune
    from ray.tune.schedulers import ASHAScheduler
    from ray.tune.search.optuna import OptunaSearch

    if resume:
        return tune.Tuner.restore(str(search_dir / EXPERIMENT), trainable, resume_unfinished=True, resume_errored=True)
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    space = {p.name: p.to_tune() for p in search_space()}
    searcher = OptunaSearch(sampler=optuna.samplers.TPESampler(seed=options.seed))
    scheduler = ASHAScheduler(time_attr="training_iteration", max_t=options.epochs,
                              grace_period=min(options.grace_period, options.epochs),
                              reduction_factor=options.reduction_factor)
    return tune.Tuner(
        trainable, param_space=space,
        tune_config=tune.TuneConfig(metric=options.metric, mode="max", num_samples=options.trials, search_alg=searcher,
                                    scheduler=scheduler, time_budget_s=options.time_budget_s,
                                    max_concurrent_trials=_concurrency(options), reuse_actors=True),
        run_config=tune.RunConfig(name=EXPERIMENT, storage_path=str(search_dir), verbose=0))


def _concurrency(options: SearchOptions) -> int:
    import ray

    return max(1, int(ray.cluster_resources().get("CPU", 1) // options.cpus_per_worker))


def trial_status(failed: bool, last_result: Optional[dict]) -> str:
    """``"error"``, ``"done"`` or ``"interrupted"`` for one Tune trial.

    Tune marks a trial's last result ``done`` when its function returned and when the scheduler (ASHA)
    or a stopper stopped it. A trial still running when the search ends (Ctrl-C, the time budget) is
    stopped by Tune's cleanup and also reported ``TERMINATED``, but its last result is not ``done``:
    the status alone cannot tell a finished trial from an interrupted one.
    """
    if failed:
        return "error"
    return "done" if (last_result or {}).get("done") else "interrupted"


def _rows(grid, metric: str) -> List[dict]:
    """One row per trial of a Tune ResultGrid: parameters, status, validations, best metric."""
    rows = []
    for r in grid:
        history = r.metrics_dataframe
        values = history[metric].dropna() if history is not None and metric in history else []
        best = float(max(values)) if len(values) else float("nan")
        config = dict(r.config or {})
        opts = train_options(config) if config else {}
        rows.append({"trial": (r.metrics or {}).get("trial_id") or (Path(r.path).name if r.path else ""),
                     "status": trial_status(r.error is not None, r.metrics),
                     "validations": len(values), f"best_val_{metric}": best,
                     **{p.name: config.get(p.name) for p in search_space()},
                     "fanouts": ",".join(map(str, opts.get("fanouts", ()))),
                     "error": str(r.error).splitlines()[0] if r.error else ""})
    return rows


def _write_table(path: Path, rows: List[dict]) -> None:
    import io

    buf = io.StringIO()
    if rows:
        writer = csv.DictWriter(buf, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    write_text_atomic(path, buf.getvalue())


def run_search(dataset_dir, options: SearchOptions, *, out=None, search_dir=None, resume: bool = False,
               force: bool = False, address: Optional[str] = None, num_cpus: Optional[int] = None) -> dict:
    """Run (or resume) a search over :func:`~graphtrain.tune.space.search_space` on ``dataset_dir``.

    Everything is checked before Ray starts: the dataset (features, labels, stored split), the
    options, the output (not replaced without ``force``; a resume may replace the file it wrote),
    and for ``resume`` that the arguments and the space are the interrupted search's.

    Returns:
        a summary: ``ended`` (``"complete"``: every trial ran; ``"time budget"``; ``"interrupted"``:
        Ctrl-C, ``--resume`` continues), ``trials`` (started), ``finished``, ``errors``,
        ``best_val_<metric>``, ``config`` (path), ``table`` (path), ``best_options`` (TrainConfig fields).
    Raises:
        ConfigError, OutputExistsError, FormatError: bad input, before any trial;
        ConfigError: every trial failed (naming the first error).
    """
    require("optuna", "pydantic", feature="graphtrain tune")
    dataset_dir = Path(dataset_dir).resolve()
    search_dir = Path(search_dir).resolve() if search_dir else dataset_dir / "tune"
    out = Path(out).resolve() if out else search_dir / BEST_FILE
    fingerprint = _prepare(dataset_dir, search_dir, out, options, resume, force)
    # Tune restores the budget's remainder: a resumed search's time counts on from the interrupted one's
    spent = json.loads((search_dir / SEARCH_FILE).read_text()).get("elapsed_s", 0.0) if resume else 0.0
    if not resume:
        if search_dir.exists():  # --force over an earlier search (checked to be one)
            shutil.rmtree(search_dir)
        search_dir.mkdir(parents=True)
        write_text_atomic(search_dir / SEARCH_FILE, json.dumps(fingerprint, indent=2) + "\n")

    from ray import tune

    from graphtrain.train.group import connect
    from graphtrain.tune.trial import run_trial

    connect(address, num_cpus)
    trainable = tune.with_resources(
        tune.with_parameters(run_trial, dataset_dir=str(dataset_dir), fixed=options.fixed_train_options(),
                             metric=options.metric, cpus_per_worker=options.cpus_per_worker),
        tune.PlacementGroupFactory([{}, {"CPU": options.cpus_per_worker}]))
    t0 = time.monotonic()
    grid = _tuner(trainable, search_dir, options, resume).fit()
    rows = _rows(grid, options.metric)
    _write_table(search_dir / TRIALS_FILE, rows)
    elapsed = spent + time.monotonic() - t0
    ended = how_it_ended(sum(r["status"] != "interrupted" for r in rows), options.trials, elapsed,
                         options.time_budget_s)
    write_text_atomic(search_dir / SEARCH_FILE, json.dumps(
        {**fingerprint, "ended": ended, "trials": len(rows), "elapsed_s": elapsed}, indent=2) + "\n")
    scored = [r for r in rows if not math.isnan(r[f"best_val_{options.metric}"])]
    if not scored:
        if ended == "interrupted":
            raise SearchInterrupted(f"the search was interrupted after {len(rows)} trials, before any validation; "
                                    "--resume continues it")
        first = next((r["error"] for r in rows if r["error"]), "no trial reported a validation within the time budget")
        raise ConfigError(f"no trial of the search finished a validation ({len(rows)} trials); the first error: {first}")
    best = grid.get_best_result(metric=options.metric, mode="max", scope="all")
    best_options = {**{k: v for k, v in options.fixed_train_options().items()
                       if k in ("epochs", "patience", "min_steps", "batch_size", "monitor")},
                    **train_options(best.config)}
    best_value = max(r[f"best_val_{options.metric}"] for r in scored)
    from graphtrain.train.config_file import write_config_file

    write_config_file(out, best_options, search={
        "search_dir": str(search_dir), "trial": best.metrics.get("trial_id"), f"val_{options.metric}": best_value,
        "trials": len(rows), "finished_trials": sum(r["status"] == "done" for r in rows)}, force=True)
    summary = {"ended": ended, "trials": len(rows), "finished": sum(r["status"] == "done" for r in rows),
               "errors": sum(r["status"] == "error" for r in rows), f"best_val_{options.metric}": best_value,
               "config": str(out), "table": str(search_dir / TRIALS_FILE),
               "best_options": {k: list(v) if isinstance(v, tuple) else v for k, v in best_options.items()}}
    if ended != "complete":
        log.warning("the search ran %d of %d trials (%s)%s", len(rows), options.trials, ended,
                    "; --resume continues it" if ended == "interrupted" else "")
    return summary
