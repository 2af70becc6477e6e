"""The whole fraud pipeline for any user's data: transactions + accounts -> partition -> train ->
score -> rings -> report (``graphtrain detect-rings``; ``graphtrain demo`` runs it on generated data).

Stages, all inside one staged output directory (built under a temporary name, renamed at the end)::

    OUT/
    ├── dataset/              the partitioned graph (graphtrain partition format; node IDs = account rows)
    ├── checkpoints/          the model's checkpoints (graphtrain.train)
    ├── model_scores.parquet  the trained model's layer-wise scores, by account row
    ├── summary.json          every metric, model vs tree baseline, rings (see graphtrain.fraud.pipeline.pipeline)
    ├── scores.parquet        account_id (raw), score, baseline_score, label, split
    ├── rings.parquet / .csv, ring_members.parquet / .csv
    └── report/index.html     + PNGs

1. **Load** the transactions and accounts (:mod:`graphtrain.fraud.data.transaction_graph`: raw IDs ->
   account rows ``0 .. N-1``, once). **Split**: the accounts' split column, or a stratified split
   (seeded); the model and the tree baseline use the same one.
2. **Node features for the model** (:func:`model_features`): the account features plus per-direction
   transaction statistics (counts, distinct counterparties, amount sum/mean/max/std, active span and
   days -- the baseline's own-account columns, *without* its neighbour aggregates: aggregating
   neighbours is the GNN's job), log-scaled and standardised; missing values become 0 with an
   indicator column.
3. **Partition** with :func:`graphtrain.partition.partitioner.partition_arrays`: every transaction
   in both directions (payer -> payee and payee -> payer), so an account's sampled neighbourhood
   holds its payers and its payees; amount and time travel as edge columns.
4. **Train** with :class:`graphtrain.train.Trainer` on Ray workers (early stopping on the validation
   split), then **score** every account layer-wise (:func:`graphtrain.train.predict`). With
   ``ModelOptions.temporal`` the sampler is temporal on the transaction time: only transactions up
   to the seed time (the end of the log) are sampled, and scoring uses the same transactions.
5. **Rings, evaluation, report**: :func:`graphtrain.fraud.pipeline.pipeline.write_stages` with the model's
   scores; the tree baseline runs there on the same split and its metrics sit beside the model's.

Memory: the transaction graph is held in memory here (about 40 bytes per transaction, see
:mod:`graphtrain.fraud.data.transaction_graph`) for the baseline, ring detection and the report;
partitioning, training and scoring are the out-of-core, distributed engine.
"""
from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np

from graphtrain.errors import ConfigError
from graphtrain.fraud.data.transaction_graph import TransactionGraph
from graphtrain.fraud.evaluation.evaluate import TrueRings, load_true_rings
from graphtrain.fraud.pipeline.pipeline import SUMMARY_FILE, ModelScores, PipelineConfig, choose_split, write_stages
from graphtrain.io import staged_directory
from graphtrain.log import get_logger
from graphtrain.optional import FRAUD_MODULES, require
from graphtrain.split import split_names
from graphtrain.train.config import COMMAND_MIN_STEPS, TEMPORAL_MODES, TrainConfig

log = get_logger("fraud.detect")

DATASET_DIR = "dataset"
CHECKPOINT_DIR = "checkpoints"
MODEL_SCORES_FILE = "model_scores.parquet"


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
        model: ``sage``, ``gat`` or ``gcn``.
        fanouts: neighbours sampled per hop (one hop per layer).
        hidden, epochs, batch_size, lr, dropout, patience: training schedule (early stopping on
            validation ``monitor`` with ``patience`` epochs; the best epoch's model scores).
        min_steps: at least this many optimizer steps (:attr:`graphtrain.train.TrainConfig.min_steps`):
            a labelled set of a few hundred accounts is one batch per epoch, so ``epochs`` alone would
            be a few dozen steps; the epoch budget grows to reach ``min_steps`` and early stopping
            waits for it. Larger data (``epochs`` epochs already holding ``min_steps`` batches) is
            unaffected.
        num_parts: partitions of the dataset (>= num_workers). method: partition assignment.
        num_workers: Ray workers. address: Ray cluster (None: a local Ray). num_cpus: local Ray's CPUs.
        threads_per_worker: torch and Numba threads per worker.
        temporal: None, ``"uniform"`` or ``"recent"``: temporal neighbour sampling on the transaction
            time (needs a time column): every account is trained on, evaluated and scored as of the
            end of the log (``TrainConfig.seed_time`` None, the latest transaction time), sampling only
            transactions up to then -- uniformly, or the most recent ones. Scoring is layer-wise over
            those transactions.
        seed: seed of partitioning, training and sampling.
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
    # partitioning and workers
    num_parts: int = 2
    method: str = "hash"
    num_workers: int = 1
    address: Optional[str] = None
    num_cpus: Optional[int] = None
    threads_per_worker: int = _TRAIN_DEFAULTS.threads_per_worker
    feature_hops: int = 0
    temporal: Optional[str] = _TRAIN_DEFAULTS.temporal
    seed: int = _TRAIN_DEFAULTS.seed

    def validate(self) -> "ModelOptions":
        if self.temporal not in (None, *TEMPORAL_MODES):
            raise ConfigError(f"temporal must be None, {' or '.join(map(repr, TEMPORAL_MODES))}, got {self.temporal!r}")
        if self.num_parts < 1:
            raise ConfigError(f"num_parts must be >= 1, got {self.num_parts}")
        if not 1 <= self.num_workers <= self.num_parts:
            raise ConfigError(f"num_workers must be between 1 and num_parts ({self.num_parts}), got {self.num_workers}")
        return self


def model_features(graph: TransactionGraph, hops: int = 0) -> Tuple[np.ndarray, List[str]]:
    """Float32 ``[N, C]`` standardised node features for the GNN and their names (see the module doc, step 2).

    ``hops=1`` adds the per-direction mean and max of the counterparties' columns (the baseline's
    hop-1 aggregates), which tell the model payers from payees.
    """
    from graphtrain.fraud.pipeline.baseline import neighbour_features

    raw, names = neighbour_features(graph, hops=hops)
    raw = raw.astype(np.float64)
    missing = np.isnan(raw)
    # heavy-tailed counts and amounts: signed log scale; then standardise each column
    x = np.sign(raw) * np.log1p(np.abs(np.nan_to_num(raw)))
    mean = x.mean(axis=0)
    std = x.std(axis=0)
    x = (x - mean) / np.where(std > 0, std, 1.0)
    cols = [x]
    out_names = list(names)
    with_missing = np.flatnonzero(missing.any(axis=0))
    if with_missing.size:
        cols.append(missing[:, with_missing].astype(np.float64))
        out_names += [f"{names[j]}_missing" for j in with_missing]
    feats = np.concatenate(cols, axis=1).astype(np.float32)
    keep = feats.std(axis=0) > 0  # constant columns carry nothing
    if not keep.any():
        keep[:] = True
    return np.ascontiguousarray(feats[:, keep]), [n for n, k in zip(out_names, keep) if k]


def _check_labels(graph: TransactionGraph, split: np.ndarray, folds: int = 2) -> None:
    """What the stages after training need of the split, checked before training: both classes in
    train and val, labelled test accounts, ``folds`` accounts of each class in train (the baseline's cross-fitting)."""
    labels = graph.accounts.labels
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


def partition_graph(graph: TransactionGraph, split: np.ndarray, features: np.ndarray, out: Path,
                    options: ModelOptions):
    """Write the graph as a partitioned dataset: both directions of every transaction, node ID = account row.

    Edge columns: ``reverse`` (int8: 0 payer -> payee as given, 1 the added payee -> payer copy), and
    ``amount`` / ``time`` when the graph has them.
    """
    from graphtrain.partition.partitioner import partition_arrays

    copies = 2 if graph.directed else 1  # an undirected graph already holds both directions
    src = np.concatenate([graph.src, graph.dst][:copies])
    dst = np.concatenate([graph.dst, graph.src][:copies])
    attrs: Dict[str, np.ndarray] = {"reverse": np.repeat(np.arange(copies, dtype=np.int8), graph.num_edges)}
    if graph.amount is not None:
        attrs["amount"] = np.tile(graph.amount, copies)
    if graph.time is not None:
        attrs["time"] = np.tile(graph.time, copies)
    split_text = split_names(split)
    return partition_arrays(
        src, dst, out, options.num_parts, edge_attrs=attrs,
        node_ids=np.arange(graph.num_accounts, dtype=np.int64), node_features=features,
        node_labels=graph.accounts.labels, node_split=list(split_text),
        time_column="time" if graph.time is not None else None,
        method=options.method, seed=options.seed, progress=False,
    )


def train_and_score(dataset: Path, checkpoints: Path, scores_path: Path, num_accounts: int,
                    options: ModelOptions):
    """Train on the dataset, score every account; return float64 scores ``[N]`` by account row and the
    fit result (:class:`~graphtrain.train.results.FitResult`)."""
    import pyarrow.parquet as pq

    from graphtrain.train import Trainer

    trainer = Trainer(dataset, model=options.model, fanouts=options.fanouts, batch_size=options.batch_size,
                      epochs=options.epochs, min_steps=options.min_steps, num_workers=options.num_workers,
                      address=options.address,
                      checkpoint_dir=checkpoints, num_cpus=options.num_cpus, hidden=options.hidden, lr=options.lr,
                      dropout=options.dropout, patience=options.patience, monitor=options.monitor, seed=options.seed,
                      threads_per_worker=options.threads_per_worker, temporal=options.temporal, progress=False)
    result = trainer.fit()
    trainer.predict(scores_path)
    table = pq.read_table(scores_path, columns=["node_id", "score"])
    rows = table.column("node_id").to_numpy()
    scores = np.full(num_accounts, np.nan)
    scores[rows] = table.column("score").to_numpy().astype(np.float64)
    if np.isnan(scores).any():
        raise ConfigError(f"{scores_path}: the model scored {int((~np.isnan(scores)).sum())} of {num_accounts} accounts")
    return scores, result


def run_pipeline(graph: TransactionGraph, out, options: ModelOptions = ModelOptions(),
                 config: PipelineConfig = PipelineConfig(), true_rings=None, force: bool = False) -> Dict[str, object]:
    """Partition, train, score, find rings and write the report for one transaction graph into ``out``.

    Args:
        graph: transactions and accounts (labels; features; a split if the data has one).
        out: output directory (staged; replaced only with ``force`` and only if it is a pipeline output).
        options: partitioning and training.
        config: split, baseline, rings and report settings.
        true_rings: optional ground-truth rings file (``ring_id, account_id[, role, typology]``), or
            rings already loaded (:func:`graphtrain.fraud.evaluation.evaluate.load_true_rings`); read and checked
            before partitioning.

    Returns:
        the summary (also ``OUT/summary.json``): model metrics ``auc``, ``ap``, ``f1_macro``,
        ``recall_at_k``; ``baseline_*`` of the tree baseline on the same split; ``ring_*`` with
        ground truth; ``model`` (the training run: epochs, best epoch, seconds, workers).

    Raises:
        ConfigError: bad options; a train or validation split without both classes.
        MissingDependencyError: the ``fraud`` or ``report`` extra is not installed.
    """
    require(*FRAUD_MODULES, feature="the fraud pipeline")
    options.validate()
    graph.validate()
    if options.temporal is not None and graph.time is None:
        raise ConfigError(f"temporal sampling ({options.temporal!r}) needs transaction times; give the time column (--time)")
    out = Path(out)
    split, split_note = choose_split(graph, config)
    _check_labels(graph, split, config.baseline_folds)
    if true_rings is not None and not isinstance(true_rings, TrueRings):
        true_rings = load_true_rings(true_rings, graph.accounts)  # bad rings fail now, not after training
    with staged_directory(out, force=force, marker=SUMMARY_FILE) as tmp:
        t0 = time.perf_counter()
        features, names = model_features(graph, options.feature_hops)
        part = partition_graph(graph, split, features, tmp / DATASET_DIR, options)
        t_part = time.perf_counter() - t0
        log.info("partitioned %d accounts, %d directed edges into %d parts (%.1f s)", part.num_nodes, part.num_edges,
                 part.num_parts, t_part)
        t0 = time.perf_counter()
        scores, fit = train_and_score(tmp / DATASET_DIR, tmp / CHECKPOINT_DIR, tmp / MODEL_SCORES_FILE,
                                      graph.num_accounts, options)
        t_train = time.perf_counter() - t0
        source = (f"graphtrain {options.model} ({len(options.fanouts)} layers, fanouts {list(options.fanouts)}, hidden "
                  f"{options.hidden}{', temporal ' + options.temporal if options.temporal else ''}) on {len(names)} "
                  f"account features, {options.num_workers} Ray worker(s), "
                  f"best of {fit.epochs_run} epochs (epoch {fit.best_epoch + 1})")
        extra = {"model": {
            "options": asdict(options) | {"fanouts": list(options.fanouts)},
            "features": names,
            "epochs_run": fit.epochs_run, "best_epoch": fit.best_epoch, "stopped_early": fit.stopped_early,
            "optimizer_steps": fit.global_step, "batches_per_epoch": fit.batches_per_epoch,
            "val": fit.val, "partition_seconds": round(t_part, 2), "train_and_score_seconds": round(t_train, 2),
            "edge_cut_fraction": part.edge_cut_fraction,
        }}
        summary = write_stages(graph, tmp, out, ModelScores(scores, source), true_rings, config, split=(split, split_note),
                               extra=extra)
    return summary


def detect_rings(edges, accounts, out, *, label: str, src: str = "src", dst: str = "dst", time: Optional[str] = None,
                 amount: Optional[str] = None, edge_weight: Optional[str] = None, id: str = "account_id",
                 split: Optional[str] = None, features: Optional[Sequence[str]] = None, undirected: bool = False,
                 add_unknown_accounts: bool = False, rings=None, rings_id: Optional[str] = None,
                 options: Optional[ModelOptions] = None, config: Optional[PipelineConfig] = None,
                 force: bool = False) -> Dict[str, object]:
    """The fraud-ring pipeline on files (``graphtrain detect-rings``): load, check, then :func:`run_pipeline`.

    Every input is checked before the first long stage: each file's columns from its header
    (:func:`~graphtrain.fraud.data.tables.check_columns`), then each file read and checked whole,
    the ``rings`` file included.

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

    Returns:
        the summary (see :func:`run_pipeline`).

    Raises:
        ConfigError, InputError: bad options, columns or rows, found before partitioning.
        MissingDependencyError: the ``fraud`` or ``report`` extra is not installed.
    """
    from graphtrain.fraud.data.tables import check_columns
    from graphtrain.fraud.data.transaction_graph import load_accounts, load_transaction_graph
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
    # every file's columns from its header first, then each file read and checked whole: all before any long stage
    check_columns(accounts, [id, label, split, *(features or [])])
    check_columns(edges, [src, dst, amount or edge_weight, time])
    rings_id = rings_id_column(rings, [rings_id] if rings_id else [id, "account_id"]) if rings else None
    table = load_accounts(accounts, id, label=label, split=split, features=features)
    graph = load_transaction_graph(edges, table, src=src, dst=dst, amount=amount or edge_weight, time=time,
                                   unknown_accounts="add" if add_unknown_accounts else "error", directed=not undirected)
    true_rings = load_true_rings(rings, graph.accounts, id_column=rings_id) if rings else None
    return run_pipeline(graph, out, options, config, true_rings=true_rings, force=force)


def run_generated(out, generator_config, options: ModelOptions = ModelOptions(),
                  config: PipelineConfig = PipelineConfig(), force: bool = False) -> Dict[str, object]:
    """``graphtrain demo``: generate a transaction graph into ``out/data``, run the pipeline into ``out/run``.

    The generated ring file is the ground truth, so the summary has ``ring_precision`` and ``ring_recall``.
    """
    from graphtrain.fraud.synth.generate import generate, load_generated

    out = Path(out)
    if out.exists() and not force and any(out.iterdir()):
        from graphtrain.errors import OutputExistsError

        raise OutputExistsError(f"{out} already exists; pass --force to replace an earlier demo there")
    data = generate(generator_config, out / "data", force=force)
    graph = load_generated(data.out)
    return run_pipeline(graph, out / "run", options, config, true_rings=data.files["rings"], force=force)
