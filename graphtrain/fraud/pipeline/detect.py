"""The whole fraud pipeline for any user's data: transactions + accounts -> partition -> train ->
score -> rings -> report (``graphtrain detect-rings``; ``graphtrain demo`` runs it on generated data).

Stages, all inside one staged output directory (built under a temporary name, renamed at the end)::

    OUT/
    ├── dataset/              the partitioned graph (graphtrain partition format; accounts by global ID)
    ├── checkpoints/          the model's checkpoints (graphtrain.train)
    ├── stages/               one record per finished stage; run_fingerprint.json: arguments and inputs
    ├── model_scores.parquet  the trained model's layer-wise scores, by raw account ID
    ├── summary.json          every metric, model vs tree baseline, rings (see graphtrain.fraud.pipeline.pipeline)
    ├── scores.parquet        account_id (raw), score, baseline_score, label, split
    ├── rings.parquet / .csv, ring_members.parquet / .csv
    └── report/index.html     + PNGs

1. **Check** every file's columns from its header (and, with ``--undirected``, that the edge list
   holds both directions, in one streaming pass).
2. **Partition** (:mod:`graphtrain.fraud.data.transaction_dataset`): the transactions and accounts
   stream through the partitioner (bounded memory, whatever their size; bad rows fail here, naming
   file, row and column): every transaction in both directions (``reverse`` 0 / 1; an undirected
   list as given), amount and time as edge columns, the account table as node data, raw IDs in the
   on-disk ID map. From here on every stage reads ``OUT/dataset``, memory-mapped, and accounts
   are indexed by global ID.
3. **Split and check**: the accounts' split column, or a stratified split (seeded); the rings file
   read against the ID map; labels 0/1 and both classes where the later stages need them -- all
   before training.
4. **Account features** (:mod:`graphtrain.fraud.data.account_aggregates`, partition by partition):
   the tree baseline's tables, then **the tree baseline** on them
   (:func:`graphtrain.fraud.pipeline.pipeline.baseline_stage`: a bounded training sample, scored in
   chunks). The GNN's node features are its own and per-direction structure columns (counts,
   distinct counterparties, amount sum/mean/max/std, active span and days), signed-log scaled,
   missing values 0 with an indicator column (:func:`model_inputs`), written into the dataset with
   the split; the trainer standardises them on the training split. The tables are then deleted
   (:meth:`~graphtrain.fraud.pipeline.stages.StageLog.release`): nothing after reads them, and
   scoring's embedding tables would otherwise share the disk with them. With stacking they stay
   until the stacked tree (stage ``stack``) has read them.
5. **Train** with :class:`graphtrain.train.Trainer` on Ray workers (early stopping on the validation
   split), then **score** every account layer-wise (:func:`graphtrain.train.predict`). With
   ``ModelOptions.temporal`` the sampler is temporal on the transaction time: only transactions up
   to the seed time (the end of the log) are sampled, and scoring uses the same transactions.
   A Ray the run started (no ``ray.init`` of the caller's) is shut down after training and scoring,
   and after the stacking folds, so its idle worker processes do not hold memory through the
   stages that run in this process.
6. **Rings, evaluation, report**: :func:`graphtrain.fraud.pipeline.pipeline.write_stages` with the
   model's and the tree's scores: rings on the transactions touching the high-risk accounts only.

Every stage records that it finished (``OUT/stages/NAME.json``, :mod:`graphtrain.fraud.pipeline.stages`)
and shows a progress bar when ``progress`` is on. With ``resume`` a run of the same arguments and
input files (``OUT/run_fingerprint.json``) that crashed or was killed is continued from its last
finished stage, in the staging directory it left (:func:`graphtrain.io.staged_directory`);
training from its newest checkpoint.

Memory: per-account NumPy arrays (scores, labels, split: ``8 N`` bytes each) and bounded blocks; no
stage holds the transaction list. :func:`run_pipeline` takes a graph already in memory (tests, the
Python API) and writes it as the dataset first.
"""
from __future__ import annotations

import json
import os
import time
import time as time_module
from dataclasses import asdict, dataclass, field, fields, replace
from pathlib import Path
from typing import Callable, Dict, List, Optional, Sequence, Tuple

import numpy as np

from graphtrain.errors import ConfigError, InputError
from graphtrain.fraud.data.transaction_dataset import TransactionDataset
from graphtrain.fraud.data.transaction_graph import TransactionGraph
from graphtrain.fraud.evaluation.evaluate import TrueRings, load_true_rings
from graphtrain.fraud.pipeline.pipeline import (DATASET_DIR, FEATURES_DIR, STACK_FILE, SUMMARY_FILE, WORK_DIR,
                                                ModelScores, PipelineConfig, baseline_stage, choose_split,
                                                feature_tables, stacked_tree, write_stages)
from graphtrain.fraud.pipeline.memory_budget import check_memory_limit, resolve_memory_limit
from graphtrain.fraud.pipeline.stages import STAGES_DIR, StageLog
from graphtrain.io import file_identity, staged_directory
from graphtrain.log import get_logger
from graphtrain.optional import FRAUD_MODULES, require
from graphtrain.progress import Progress
from graphtrain.train.config import COMMAND_MIN_STEPS, TEMPORAL_MODES, TrainConfig

log = get_logger("fraud.detect")

CHECKPOINT_DIR = "checkpoints"
MODEL_SCORES_FILE = "model_scores.parquet"
SPLIT_FILE = "split.npy"  # in WORK_DIR: the split codes by global ID, chosen once (stage "features")
# options that change no output: a run may be resumed with other values
RESUME_ANY = ("address", "num_cpus", "disk_check")


_TRAIN_DEFAULTS = TrainConfig()


@dataclass(frozen=True)
class ModelOptions:
    """How the pipeline partitions and trains (the rest of :class:`graphtrain.train.TrainConfig` keeps its defaults).

    Fields that mean what a :class:`~graphtrain.train.TrainConfig` field means take its default
    (``model``, ``threads_per_worker``, ``temporal``, ``seed``). The training schedule is the
    pipeline's own, on purpose: a fraud graph's labelled set is often a few hundred accounts, so
    smaller fanouts, width and batches, a higher learning rate, more epochs with ``min_steps``, early
    stopping on validation AP (the positive class is rare) -- the settings the results in
    examples/fraud/README.md were measured with.

    Attributes:
        model: a :data:`graphtrain.train.config.MODELS` name (``sage``, ``gat``, ``gcn``, or the edge-aware
            ``gine``, ``transformer``, ``sage_edge``, which read every edge feature the dataset has).
        fanouts: neighbours sampled per hop (one hop per layer).
        hidden, epochs, batch_size, lr, dropout, patience: training schedule (early stopping on
            validation ``monitor`` with ``patience`` epochs; the best epoch's model scores).
        min_steps: at least this many optimizer steps (:attr:`graphtrain.train.TrainConfig.min_steps`):
            a labelled set of a few hundred accounts is one batch per epoch, so ``epochs`` alone would
            be a few dozen steps; the epoch budget grows to reach ``min_steps`` and early stopping
            waits for it. Larger data (``epochs`` epochs already holding ``min_steps`` batches) is
            unaffected.
        max_steps, train_sample, val_sample: the training budget of a huge graph
            (:class:`~graphtrain.train.TrainConfig`'s: stop after N steps; train each epoch on a
            stratified sample of N seeds; validate on a fixed sample of N); None: off.
        num_parts: partitions of the dataset (>= num_workers). method: partition assignment.
        memory_limit: the whole run's memory limit, anonymous memory of all its processes (a size
            such as ``"8G"``; None: half the machine's memory). Partitioning works within it, a limit
            too small for the account table is refused before any work, and ring finding's candidates
            are cut to what it leaves (:mod:`graphtrain.fraud.pipeline.memory_budget`).
        disk_check: refuse, before any work, a run the free disk beside the output cannot hold
            (``graphtrain plan``'s estimate; ``--skip-disk-check``).
        num_workers: Ray workers. address: Ray cluster (None: a local Ray). num_cpus: local Ray's CPUs.
        threads_per_worker: torch and Numba threads per worker in training. Scoring takes more on a
            local Ray: :func:`scoring_threads`.
        temporal: None, ``"uniform"`` or ``"recent"``: temporal neighbour sampling on the transaction
            time (needs a time column): every account is trained on, evaluated and scored as of the
            end of the log (``TrainConfig.seed_time`` None, the latest transaction time), sampling only
            transactions up to then -- uniformly, or the most recent ones. Scoring is layer-wise over
            those transactions.
        stack_folds: GNN-to-tree stacking (:mod:`graphtrain.fraud.pipeline.stacking`): train this many
            more GNNs, each without one fold of the training accounts, so every account gets a score
            from models that never saw its label; the tree is refitted with that column added and
            competes for the shipped score. 0: off. Costs ``stack_folds`` more trainings.
        seed: seed of partitioning, training and sampling.
        train_options: any other :class:`~graphtrain.train.TrainConfig` fields, passed to the
            Trainer as given (``detect-rings --config FILE`` puts a configuration file's keys that
            are not fields of this class here, e.g. ``class_weight``, ``normalize``).
    """

    model: str = _TRAIN_DEFAULTS.model
    # the pipeline's own schedule (see above)
    fanouts: Tuple[int, ...] = (10, 10)
    hidden: int = 64
    epochs: int = 40
    min_steps: int = COMMAND_MIN_STEPS
    batch_size: int = 512
    lr: float = 3e-3
    dropout: float = 0.1
    patience: Optional[int] = 8
    monitor: str = "ap"
    max_steps: Optional[int] = None
    train_sample: Optional[int] = None
    val_sample: Optional[int] = None
    # partitioning and workers
    num_parts: int = 2
    method: str = "hash"
    memory_limit: Optional[str] = None
    disk_check: bool = True
    num_workers: int = 1
    address: Optional[str] = None
    num_cpus: Optional[int] = None
    threads_per_worker: int = _TRAIN_DEFAULTS.threads_per_worker
    feature_hops: int = 0
    temporal: Optional[str] = _TRAIN_DEFAULTS.temporal
    stack_folds: int = 0
    seed: int = _TRAIN_DEFAULTS.seed
    train_options: Dict[str, object] = field(default_factory=dict)

    def validate(self) -> "ModelOptions":
        mine = sorted(set(self.train_options) & {f.name for f in fields(self)})
        if mine:
            raise ConfigError(f"train_options holds {', '.join(mine)}: set those as ModelOptions fields")
        if self.temporal not in (None, *TEMPORAL_MODES):
            raise ConfigError(f"temporal must be None, {' or '.join(map(repr, TEMPORAL_MODES))}, got {self.temporal!r}")
        if self.num_parts < 1:
            raise ConfigError(f"num_parts must be >= 1, got {self.num_parts}")
        if not 1 <= self.num_workers <= self.num_parts:
            raise ConfigError(f"num_workers must be between 1 and num_parts ({self.num_parts}), got {self.num_workers}")
        if self.stack_folds == 1 or self.stack_folds < 0:
            raise ConfigError(f"stack_folds must be 0 (no stacking) or at least 2, got {self.stack_folds}")
        return self


def model_inputs(features, hops: int = 0) -> Tuple[Callable[[int, int], np.ndarray], List[str]]:
    """The GNN's node features, from the baseline's feature table (see the module doc, step 2).

    Columns: the first ``B`` columns of ``features`` (own features and per-direction transaction
    structure; ``hops=1`` adds the hop-1 means and maxima, which tell the model payers from payees),
    signed-log scaled (counts and amounts are heavy-tailed), missing values 0 with an indicator
    column for each column that has any. The trainer standardises them with the training split's
    statistics (``TrainConfig.normalize``).

    Returns:
        ``(rows, names)``: ``rows(start, stop)`` gives float32 ``[stop - start, C]`` for global IDs
        ``start .. stop-1``; ``names`` the ``C`` column names.
    """
    width = len(features.base_names) if hops == 0 else len(features.base_names) * (1 + 2 * len(features.directions))
    if hops not in (0, 1) or hops > features.hops:
        raise ConfigError(f"feature_hops must be 0 or 1 (and at most the feature table's {features.hops}), got {hops}")
    names = features.names[:width]

    def raw(start: int, stop: int) -> np.ndarray:
        if hops == 0:
            return np.asarray(features.base[start:stop], dtype=np.float64)
        return features.rows(start, stop)[:, :width].astype(np.float64)

    missing = np.zeros(width, dtype=bool)
    for start in range(0, features.num_accounts, 1 << 16):
        missing |= np.isnan(raw(start, min(start + (1 << 16), features.num_accounts))).any(axis=0)
    with_missing = np.flatnonzero(missing)

    def rows(start: int, stop: int) -> np.ndarray:
        x = raw(start, stop)
        nan = np.isnan(x)
        x = np.where(nan, 0.0, x)
        out = np.sign(x) * np.log1p(np.abs(x))
        if with_missing.size:
            out = np.concatenate([out, nan[:, with_missing].astype(np.float64)], axis=1)
        return out.astype(np.float32)

    return rows, list(names) + [f"{names[j]}_missing" for j in with_missing]


def _check_labels(labels: np.ndarray, split: np.ndarray, folds: int = 2, where: str = "the account table") -> None:
    """What the stages after training need of the labels and split, checked before training: labels
    0/1 (or unknown), both classes in train and val, labelled test accounts, ``folds`` accounts of
    each class in train (the baseline's cross-fitting)."""
    bad = labels[labels > 1]
    if bad.size:
        raise InputError(where, f"labels must be 1 (fraud), 0 (not) or empty (unknown); {bad.size} accounts have "
                                f"other values, e.g. {int(bad[0])}")
    for code, name in ((0, "train"), (1, "val")):
        have = np.unique(labels[(split == code) & (labels >= 0)])
        if have.size < 2:
            raise ConfigError(f"the {name} split needs labelled accounts of both classes (0 and 1); it has "
                              f"{'none' if have.size == 0 else 'only class ' + str(int(have[0]))}")
    if not ((split == 2) & (labels >= 0)).any():
        raise ConfigError("the test split has no labelled accounts: nothing to evaluate on")
    rarer = int(np.bincount(labels[(split == 0) & (labels >= 0)], minlength=2).min())
    if rarer < folds:
        raise ConfigError(f"the train split has {rarer} accounts of its rarer class; the tree baseline's "
                          f"{folds}-fold cross-fitting needs at least {folds}")


def _trainer(dataset: Path, checkpoints: Path, options: ModelOptions, progress: bool, resume: bool):
    """The pipeline's :class:`~graphtrain.train.Trainer` (``resume``: continue from the newest checkpoint)."""
    from graphtrain.train import Trainer

    return Trainer(dataset, model=options.model, fanouts=options.fanouts, batch_size=options.batch_size,
                   epochs=options.epochs, min_steps=options.min_steps, max_steps=options.max_steps,
                   train_sample=options.train_sample, val_sample=options.val_sample, num_workers=options.num_workers,
                   address=options.address,
                   checkpoint_dir=checkpoints, num_cpus=options.num_cpus, hidden=options.hidden, lr=options.lr,
                   dropout=options.dropout, patience=options.patience, monitor=options.monitor, seed=options.seed,
                   threads_per_worker=options.threads_per_worker, temporal=options.temporal, progress=progress,
                   resume=resume, **options.train_options)


def _read_model_scores(scores_path: Path, num_accounts: int) -> np.ndarray:
    """float64 ``[N]`` scores by global ID from ``predict``'s file (every node, in global-ID order)."""
    import pyarrow.parquet as pq

    scores = pq.read_table(scores_path, columns=["score"]).column("score").to_numpy().astype(np.float64)
    if scores.shape != (num_accounts,) or np.isnan(scores).any():
        raise ConfigError(f"{scores_path}: the model scored {int((~np.isnan(scores)).sum())} of {num_accounts} accounts")
    return scores


def scoring_threads(options: ModelOptions) -> int:
    """torch and Numba threads of each scoring worker: on a local Ray, the local Ray's CPUs
    (``num_cpus``, default the cores this process may run on) shared among the ``num_workers``
    workers, at least ``threads_per_worker``; on a named cluster (``address``), ``threads_per_worker``
    (the driver cannot see the nodes' cores).

    Nothing else of the run works while it scores; the scores do not depend on the thread count.
    """
    if options.address:
        return options.threads_per_worker
    cpus = options.num_cpus or len(os.sched_getaffinity(0))
    return max(options.threads_per_worker, cpus // options.num_workers)


FIT_KEYS = ("epochs_run", "best_epoch", "stopped_early", "max_steps_reached", "global_step", "batches_per_epoch", "val")


def train_and_score(data: TransactionDataset, tmp: Path, options: ModelOptions, stages: StageLog,
                    progress: bool = False) -> Tuple[np.ndarray, dict]:
    """Stages ``train`` and ``score``: train on the dataset in ``tmp`` (resuming from the newest
    checkpoint when an earlier try of this run left one), score every account layer-wise.

    Returns:
        float64 scores ``[N]`` by global ID, and the fit's summary (``FIT_KEYS`` of
        :class:`~graphtrain.train.results.FitResult`, plus ``seconds``: training and scoring).
    """
    trainer = None
    fit = stages.done("train")
    if fit is None:
        keep = stages.resuming  # the checkpoints of an earlier try of this run, on the same inputs
        stages.begin("train", [] if keep else [CHECKPOINT_DIR])
        trainer = _trainer(data.path, tmp / CHECKPOINT_DIR, options, progress, resume=keep)
        result = trainer.fit().to_dict(history=False)
        fit = stages.finish("train", [CHECKPOINT_DIR], {k: result[k] for k in FIT_KEYS})
    scored = stages.done("score")
    if scored is None:
        stages.begin("score", [MODEL_SCORES_FILE])
        trainer = trainer or _trainer(data.path, tmp / CHECKPOINT_DIR, options, progress, resume=False)
        trainer.predict(tmp / MODEL_SCORES_FILE, threads_per_worker=scoring_threads(options))
        scored = stages.finish("score", [MODEL_SCORES_FILE])
    return (_read_model_scores(tmp / MODEL_SCORES_FILE, data.num_accounts),
            dict(fit["data"], seconds=fit["seconds"] + scored["seconds"]))


STACK_INPUT_FILE = f"{WORK_DIR}/stack_input.npy"  # the GNN's cross-fitted scores (stage stack)


def stack_stage(data: TransactionDataset, tmp: Path, split: np.ndarray, options: ModelOptions, config: PipelineConfig,
                stages: StageLog, features, progress: bool = False) -> Tuple[Optional[Tuple[np.ndarray, dict]], float]:
    """Stage ``stack``: the GNN's cross-fitted scores by global ID
    (:func:`graphtrain.fraud.pipeline.stacking.cross_fitted_scores`) and the stacked tree on them
    (:func:`graphtrain.fraud.pipeline.pipeline.stacked_tree`); nothing without stacking (the stage is
    recorded either way, so the stages after it can be resumed). One training per fold, on the
    dataset with that fold's training accounts out of its split; the dataset's split is the
    pipeline's again afterwards, also when an earlier try was killed mid-fold. A Ray the folds
    started is shut down before the tree. The account feature tables are released after it.

    Returns:
        the stacked tree's float64 ``[N]`` scores and parameters (or None), and the stage's seconds.
    """
    import shutil

    from graphtrain.fraud.pipeline.stacking import cross_fitted_scores
    from graphtrain.train.group import released_after

    done = stages.done("stack")
    if done is not None:
        if not options.stack_folds:
            return None, done["seconds"]
        return (np.load(tmp / STACK_FILE).astype(np.float64), done["data"]["stack_params"]), done["seconds"]
    stages.begin("stack", [STACK_INPUT_FILE, STACK_FILE])
    if not options.stack_folds:
        return None, stages.finish("stack")["seconds"]

    def train_without(k: int, split_k: np.ndarray) -> np.ndarray:
        data.write_node_arrays(split=split_k)
        fold_dir = tmp / WORK_DIR / f"stack-fold-{k}"
        shutil.rmtree(fold_dir, ignore_errors=True)
        trainer = _trainer(data.path, fold_dir / CHECKPOINT_DIR, options, progress, resume=False)
        trainer.fit()
        trainer.predict(fold_dir / MODEL_SCORES_FILE, threads_per_worker=scoring_threads(options))
        scores = _read_model_scores(fold_dir / MODEL_SCORES_FILE, data.num_accounts)
        shutil.rmtree(fold_dir, ignore_errors=True)
        return scores

    labels = data.labels()
    try:
        with released_after():
            column = cross_fitted_scores(train_without, labels, split, options.stack_folds, options.seed)
    finally:
        data.write_node_arrays(split=split)
    np.save(tmp / STACK_INPUT_FILE, column)
    scores, params = stacked_tree(data, tmp, column, labels, split, config, features, progress)
    record = stages.finish("stack", [STACK_INPUT_FILE, STACK_FILE], {"stack_params": params})
    stages.release("features", [FEATURES_DIR])
    return (scores, params), record["seconds"]


def _features_stage(data: TransactionDataset, tmp: Path, options: ModelOptions, config: PipelineConfig,
                    stages: StageLog, labels_where: str, progress: bool):
    """Stage ``features``: the split (chosen, checked, kept in ``work/split.npy``) and the account
    feature tables. Returns the tables (None once released: no later stage reads them), the split
    codes and note, and the stage's seconds."""
    from graphtrain.fraud.data.account_aggregates import AccountFeatures

    labels = data.labels()
    split_file = f"{WORK_DIR}/{SPLIT_FILE}"
    done = stages.done("features")
    if done is None:
        if stages.resuming and stages.read("model_inputs") is not None:  # the dataset's own features: replaced
            raise ConfigError(f"cannot resume {tmp}: the account feature tables ({tmp / FEATURES_DIR}) are gone, and "
                              "the accounts' own features they are built from were already replaced by the model's "
                              "inputs. Rerun without --resume")
        # the split is chosen here, from the dataset's own split column, and kept in a file: model_inputs
        # overwrites that column, so a resumed run reads the split from the file, never from the dataset
        split, split_note = choose_split(labels, data.given_split(), config)
        _check_labels(labels, split, max(config.baseline_folds, options.stack_folds), labels_where)
        stages.begin("features", [FEATURES_DIR, split_file])
        hops = max(config.baseline_hops, options.feature_hops)
        edges = int(data.dataset.meta.num_edges) * (2 if hops >= 1 else 1)  # the in-edges, once per pass
        with Progress(progress, "account features", edges, "edges") as bar:
            features = feature_tables(data, tmp, hops, progress=bar.update)
        np.save(tmp / split_file, split)
        table = {"names": features.names, "base_names": features.base_names, "directions": list(features.directions),
                 "hops": features.hops, "block_edges": features.block_edges}
        done = stages.finish("features", [FEATURES_DIR, split_file], {"table": table, "split_note": split_note})
        return features, (split, split_note), done["seconds"]
    features = None
    if FEATURES_DIR in done["outputs"]:
        t = done["data"]["table"]
        features = AccountFeatures(data.dataset, tmp / FEATURES_DIR, t["names"], t["base_names"],
                                   tuple(t["directions"]), t["hops"], t["block_edges"])
    return features, (np.load(tmp / split_file), done["data"]["split_note"]), done["seconds"]


def _model_inputs_stage(data: TransactionDataset, tmp: Path, features, split: np.ndarray, options: ModelOptions,
                        stages: StageLog) -> Tuple[List[str], float]:
    """Stage ``model_inputs``: the GNN's features (:func:`model_inputs`) and the split written into the
    dataset. Returns the model's feature names and the stage's seconds."""
    written = stages.done("model_inputs")
    if written is None:
        stages.begin("model_inputs")
        rows, names = model_inputs(features, options.feature_hops)
        data.write_node_arrays(split=split, features=rows, feature_names=names)
        written = stages.finish("model_inputs", [DATASET_DIR], {"names": names})
    return written["data"]["names"], written["seconds"]


def _truth_by_global_id(true_rings, data: TransactionDataset, graph: Optional[TransactionGraph] = None):
    """Ground-truth rings with members as global IDs: from a file (read against the dataset's ID map),
    or :class:`TrueRings` of ``graph``'s account rows."""
    if true_rings is None:
        return None
    if not isinstance(true_rings, TrueRings):
        return load_true_rings(true_rings, data)
    if graph is None:
        return true_rings
    rows = graph.accounts.index_of(data.raw_ids(np.arange(data.num_accounts)))
    gid_of_row = np.empty(graph.num_accounts, dtype=np.int64)
    gid_of_row[rows] = np.arange(data.num_accounts)
    return replace(true_rings, members=[gid_of_row[m] for m in true_rings.members],
                   roles={int(gid_of_row[a]): r for a, r in true_rings.roles.items()})


def _run_on_dataset(data: TransactionDataset, tmp: Path, out: Path, options: ModelOptions, config: PipelineConfig,
                    truth, partition_info: Dict[str, object], labels_where: str, stages: Optional[StageLog] = None,
                    progress: bool = False) -> Dict[str, object]:
    """Split, check, build the features, train, score and run the stages after scoring, on a dataset in
    ``tmp``; each stage skipped when ``stages`` records it finished (a resumed run)."""
    if options.temporal is not None and data.time is None:
        raise ConfigError(f"temporal sampling ({options.temporal!r}) needs transaction times; give the time column (--time)")
    stages = stages or StageLog(tmp)
    if stages.done("rings") is not None:  # everything was written; the run died before the rename
        return json.loads((tmp / SUMMARY_FILE).read_text(encoding="utf-8"))
    from graphtrain.train.group import released_after

    features, split, t_features = _features_stage(data, tmp, options, config, stages, labels_where, progress)
    # the tree before training, so that the feature tables (a third of the run's disk at its peak)
    # are gone before scoring writes the embedding tables: model_inputs is their last reader
    baseline = baseline_stage(data, tmp, data.labels(), split[0], config, stages, features, progress)
    names, t_inputs = _model_inputs_stage(data, tmp, features, split[0], options, stages)
    t_features += t_inputs
    log.info("account features: %d for the model, %d for the tree (%.1f s)", len(names),
             len(baseline.feature_names), t_features)
    if not options.stack_folds:  # else the stacked tree reads them, in stage stack
        stages.release("features", [FEATURES_DIR])
        features = None
    with released_after():  # the Ray this run started ends before the stages that run in this process
        scores, fit = train_and_score(data, tmp, options, stages, progress)
    stack, t_stack = stack_stage(data, tmp, split[0], options, config, stages, features, progress)
    source = (f"graphtrain {options.model} ({len(options.fanouts)} layers, fanouts {list(options.fanouts)}, hidden "
              f"{options.hidden}{', temporal ' + options.temporal if options.temporal else ''}) on {len(names)} "
              f"account features, {options.num_workers} Ray worker(s), "
              f"best of {fit['epochs_run']} epochs (epoch {fit['best_epoch'] + 1})")
    extra = {"model": {
        "options": asdict(options) | {"fanouts": list(options.fanouts)},
        "features": names,
        "epochs_run": fit["epochs_run"], "best_epoch": fit["best_epoch"], "stopped_early": fit["stopped_early"],
        "max_steps_reached": fit["max_steps_reached"],
        "optimizer_steps": fit["global_step"], "batches_per_epoch": fit["batches_per_epoch"],
        "val": fit["val"], **partition_info, "feature_seconds": round(t_features, 2),
        "train_and_score_seconds": round(fit["seconds"], 2),
        **({"stack_folds": options.stack_folds, "stack_train_seconds": round(t_stack, 2)} if options.stack_folds else {}),
    }}
    if stages.skipped:
        extra["resumed"] = {"skipped_stages": list(stages.skipped)}
    return write_stages(data, tmp, out, ModelScores(scores, source), truth, config, baseline, stack=stack, split=split,
                        extra=extra, stages=stages, progress=progress)


def run_pipeline(graph: TransactionGraph, out, options: ModelOptions = ModelOptions(),
                 config: PipelineConfig = PipelineConfig(), true_rings=None, force: bool = False) -> Dict[str, object]:
    """Partition, train, score, find rings and write the report for one transaction graph in memory into ``out``.

    The graph is written as the dataset ``OUT/dataset`` first; every stage reads that (as
    :func:`detect_rings` does with files).

    Args:
        graph: transactions and accounts (labels; features; a split if the data has one).
        out: output directory (staged; replaced only with ``force`` and only if it is a pipeline output).
        options: partitioning and training.
        config: split, baseline, rings and report settings.
        true_rings: optional ground-truth rings file (``ring_id, account_id[, role, typology]``), or
            rings already loaded against ``graph``'s accounts
            (:func:`graphtrain.fraud.evaluation.evaluate.load_true_rings`).

    Returns:
        the summary (also ``OUT/summary.json``): model metrics ``auc``, ``ap``, ``f1_macro``,
        ``recall_at_k``; ``baseline_*`` of the tree baseline on the same split; ``ring_*`` with
        ground truth; ``model`` (the training run: epochs, best epoch, seconds, workers).

    Raises:
        ConfigError: bad options; a train or validation split without both classes.
        MissingDependencyError: the ``fraud`` or ``report`` extra is not installed.
    """
    from graphtrain.fraud.data.transaction_dataset import partition_transaction_graph

    require(*FRAUD_MODULES, feature="the fraud pipeline")
    options.validate()
    graph.validate()
    if options.temporal is not None and graph.time is None:
        raise ConfigError(f"temporal sampling ({options.temporal!r}) needs transaction times; give the time column (--time)")
    if true_rings is not None and not isinstance(true_rings, TrueRings):
        true_rings = load_true_rings(true_rings, graph.accounts)  # bad rings fail now, not after training
    check_memory_limit(resolve_memory_limit(options.memory_limit), graph.num_accounts)
    if config.memory_limit is None:
        config = replace(config, memory_limit=options.memory_limit)
    out = Path(out)
    with staged_directory(out, force=force, marker=SUMMARY_FILE) as tmp:
        t0 = time.perf_counter()
        data = partition_transaction_graph(graph, tmp / DATASET_DIR, num_parts=options.num_parts, method=options.method,
                                           seed=options.seed)
        info = {"partition_seconds": round(time.perf_counter() - t0, 2)}
        return _run_on_dataset(data, tmp, out, options, config, _truth_by_global_id(true_rings, data, graph), info,
                               "the account table")


def detect_rings(edges, accounts, out, *, label: str, src: str = "src", dst: str = "dst", time: Optional[str] = None,
                 amount: Optional[str] = None, edge_weight: Optional[str] = None, id: str = "account_id",
                 split: Optional[str] = None, features: Optional[Sequence[str]] = None, undirected: bool = False,
                 add_unknown_accounts: bool = False, rings=None, rings_id: Optional[str] = None,
                 options: Optional[ModelOptions] = None, config: Optional[PipelineConfig] = None,
                 force: bool = False, progress: bool = False, resume: bool = False) -> Dict[str, object]:
    """The fraud-ring pipeline on files (``graphtrain detect-rings``), in bounded memory.

    Every file's columns are checked from its header first
    (:func:`~graphtrain.fraud.data.tables.check_columns`), the rings file's included; with
    ``undirected``, the edge list is checked for both directions in one streaming pass. Then the
    transactions and accounts stream through the partitioner into ``OUT/dataset`` (bad rows fail
    there, naming file, row and column), the rings file is read against the dataset's ID map, and
    labels and split are checked -- all before training.

    Args:
        edges: transactions file (CSV, TSV or Parquet, ``.gz`` ok) with ``src``, ``dst`` and optional
            ``time`` and ``amount`` (money) or ``edge_weight`` (a weight that is not money) columns.
        accounts: account table with the ``id`` and ``label`` (1 fraud, 0 not, empty unknown) columns,
            an optional ``split`` column (train/val/test) and ``features`` (default: every other numeric column).
        out: output directory (see :func:`run_pipeline`).
        undirected: the edge list holds each undirected edge in both directions (checked).
        add_unknown_accounts: add transaction endpoints missing from the account table (default: an error).
        rings: optional ground-truth rings file; ``rings_id`` its account ID column (default: the ``id``
            column if the file has it, else ``account_id``).
        options: partitioning and training (default :class:`ModelOptions`).
        config: the stages after scoring (default :class:`~graphtrain.fraud.pipeline.pipeline.PipelineConfig`
            seeded with ``options.seed``); with ``edge_weight`` the report does not call the weight money.
        force: replace an earlier output of this function at ``out``.
        progress: progress bars on stderr (rate and ETA) for every long stage: partitioning, account
            features, training, scoring, the baseline and rings.
        resume: continue a run of the same arguments and inputs that crashed or was killed, from its
            last finished stage (its staging directory beside ``out`` is adopted; see
            :mod:`graphtrain.fraud.pipeline.stages`); refused, naming what changed, if the arguments
            or input files differ. Without a dead run to continue, it starts afresh.

    Returns:
        the summary (see :func:`run_pipeline`).

    Raises:
        ConfigError, InputError: bad options, columns or rows, found before training; ``resume``
            after a change of arguments or inputs.
        MissingDependencyError: the ``fraud`` or ``report`` extra is not installed.
    """
    from graphtrain.fraud.data.tables import check_columns
    from graphtrain.fraud.data.transaction_dataset import check_both_directions_in_file, partition_spec
    from graphtrain.fraud.evaluation.evaluate import rings_id_column

    require(*FRAUD_MODULES, feature="the fraud pipeline")
    options = (options or ModelOptions()).validate()
    if config is None:
        config = PipelineConfig(seed=options.seed, weight_is_money=edge_weight is None)
    elif edge_weight is not None:
        config = replace(config, weight_is_money=False)
    if amount is not None and edge_weight is not None:
        raise ConfigError("give the transaction amount (money) or an edge weight that is not money, not both")
    if options.temporal and not time:
        raise ConfigError(f"--temporal {options.temporal} samples by transaction time; give the time column with --time COL")
    # every file's columns from its header first: all before any long stage
    check_columns(accounts, [id, label, split, *(features or [])])
    check_columns(edges, [src, dst, amount or edge_weight, time])
    rings_id = rings_id_column(rings, [rings_id] if rings_id else [id, "account_id"]) if rings else None
    if undirected:
        check_both_directions_in_file(edges, src, dst)
    limit = resolve_memory_limit(options.memory_limit)  # the whole run's, partitioning's included
    if config.memory_limit is None:
        config = replace(config, memory_limit=options.memory_limit)
    spec = partition_spec(edges, accounts, src=src, dst=dst, id=id, label=label, time=time, amount=amount or edge_weight,
                          split=split, features=features, undirected=undirected,
                          add_unknown_accounts=add_unknown_accounts, num_parts=options.num_parts, method=options.method,
                          seed=options.seed, memory_limit=limit, disk_check=options.disk_check,
                          progress=progress)
    check_memory_limit(limit, spec.accounts.estimated_rows())  # before any work, as the disk check below
    out = Path(out)
    if options.disk_check:  # the whole run's disk (dataset, spill, embeddings, scores), before any work
        from graphtrain.plan import check_disk

        check_disk(out, spec.edges, nodes=spec.accounts, edge_columns=spec.edge_columns, node_columns=spec.node_columns,
                   options=spec.options, job="detect-rings", both_directions=not undirected, what="graphtrain detect-rings",
                   stack_folds=options.stack_folds)
    arguments = {"--src": src, "--dst": dst, "--time": time, "--amount": amount, "--edge-weight": edge_weight,
                 "--id": id, "--label": label, "--split": split, "--features": list(features) if features else None,
                 "--undirected": undirected, "--add-unknown-accounts": add_unknown_accounts, "--rings-id": rings_id,
                 **_option_flags(asdict(options), skip=RESUME_ANY), **_option_flags(asdict(config))}
    inputs = {"transactions file": file_identity(edges), "accounts file": file_identity(accounts),
              "rings file": file_identity(rings) if rings else None}
    with staged_directory(out, force=force, marker=SUMMARY_FILE, fingerprint={"arguments": arguments, "inputs": inputs},
                          keep=STAGES_DIR, resume=resume) as tmp:
        stages = StageLog(tmp, trusted=resume)
        done = stages.done("partition")
        if done is None:
            stages.begin("partition", [DATASET_DIR])
            t0 = time_module.perf_counter()
            data, part = partition_inputs(spec, tmp / DATASET_DIR)
            info = {"partition_seconds": round(time_module.perf_counter() - t0, 2),
                    "edge_cut_fraction": part.edge_cut_fraction, "partition_peak_rss_bytes": part.peak_rss_bytes}
            log.info("partitioned %d accounts, %d transactions (%d stored edges) into %d parts (%.1f s)", data.num_accounts,
                     data.num_transactions, part.num_edges, part.num_parts, info["partition_seconds"])
            done = stages.finish("partition", [DATASET_DIR], {"info": info, "own_feature_names": data.own_feature_names})
        else:
            data = TransactionDataset.open(tmp / DATASET_DIR, own_feature_names=done["data"]["own_feature_names"])
        truth = load_true_rings(rings, data, id_column=rings_id) if rings else None
        return _run_on_dataset(data, tmp, out, options, config, truth, done["data"]["info"], str(accounts), stages,
                               progress)


def _option_flags(values: Dict[str, object], skip: Sequence[str] = ()) -> Dict[str, object]:
    """Option values by their command-line flag (``epochs`` -> ``--epochs``), for the run's fingerprint."""
    return {"--" + name.replace("_", "-"): value for name, value in values.items() if name not in skip}


def partition_inputs(spec, out):
    """Stream the transaction and account files into the dataset at ``out``
    (:func:`graphtrain.fraud.data.transaction_dataset.partition_transaction_files`)."""
    from graphtrain.fraud.data.transaction_dataset import partition_transaction_files

    return partition_transaction_files(spec, out)


def run_generated(out, generator_config, options: ModelOptions = ModelOptions(),
                  config: PipelineConfig = PipelineConfig(), force: bool = False, resume: bool = False,
                  progress: bool = False) -> Dict[str, object]:
    """``graphtrain demo``: generate a transaction graph into ``out/data``, run the pipeline on its files into ``out/run``.

    The generated ring file is the ground truth, so the summary has ``ring_precision`` and ``ring_recall``.
    With ``resume`` the data an earlier run generated into ``out/data`` is used again when its
    manifest holds the same generator settings (else: an error naming what differs), and the
    pipeline continues that run (:func:`detect_rings`'s ``resume``).
    """
    from graphtrain.fraud.synth.generate import generate, read_manifest

    out = Path(out)
    files = out / "data"
    reuse = resume and (files / "manifest.json").is_file()
    if reuse:
        wanted = json.loads(json.dumps(asdict(generator_config)))
        had = read_manifest(files)["config"]
        changed = [f"{k}: {json.dumps(had.get(k))} -> {json.dumps(v)}" for k, v in wanted.items() if had.get(k) != v]
        if changed:
            raise ConfigError(f"cannot resume {out}: its data ({files}) was generated with other settings: "
                              f"{'; '.join(changed)}. Rerun with the same settings, or without --resume")
        log.warning("resume: using the data generated earlier in %s", files)
    else:
        if out.exists() and not force and not resume and any(out.iterdir()):
            from graphtrain.errors import OutputExistsError

            raise OutputExistsError(f"{out} already exists; pass --force to replace an earlier demo there "
                                    "(or --resume to continue one that was killed)")
        generate(generator_config, files, force=force)
    manifest = read_manifest(files)
    acc, tx = manifest["columns"]["accounts"], manifest["columns"]["transactions"]
    return detect_rings(files / Path(manifest["files"]["transactions"]).name,
                        files / Path(manifest["files"]["accounts"]).name, out / "run",
                        label=acc["label"], src=tx["src"], dst=tx["dst"], time=tx["time"], amount=tx["amount"],
                        id=acc["id"], features=acc["features"], rings=files / Path(manifest["files"]["rings"]).name,
                        options=options, config=config, force=force, resume=resume, progress=progress)
