"""The public training API: :class:`Trainer` (``fit``, ``evaluate``, ``predict``) and :func:`predict`.

::

    from graphtrain.train import Trainer

    trainer = Trainer("data/tx", model="sage", fanouts=[15, 10], batch_size=1024, epochs=20,
                      num_workers=4, checkpoint_dir="ckpt/tx", patience=3)
    result = trainer.fit()              # FitResult: result.val, result.test, result.epochs_run, ...
    trainer.evaluate("test")            # metrics of the checkpointed model
    trainer.predict("scores.parquet")   # every node, layer-wise, by raw ID

The driver (this process) validates the dataset and options, joins or starts Ray, deals the
dataset's partitions out to the workers in contiguous runs (``book.contiguous_runs(W)``: any
``W <= P``), and runs :func:`~graphtrain.train.worker.run_worker` on each. If a worker dies, the
whole group is stopped and started again from the newest checkpoint (at most ``max_restarts``
times); since the checkpoint's position fixes all random draws, the resumed run continues exactly
as the uninterrupted one would have.

A process where Ray is already initialised -- the user's own ``ray.init``, or a Ray task or actor
such as a Ray Tune trial -- keeps its cluster: ``address`` and ``num_cpus`` are then not used, and
the workers run in the caller's placement group when it has a bundle for each
(:class:`~graphtrain.train.group.WorkerGroup`). That is how ``graphtrain tune`` runs one Trainer
per trial inside the search's own Ray.

Multi-node: start Ray on each machine (``ray start --head`` on one, ``ray start
--address=HEAD:6379`` on the others) and pass ``address="HEAD:6379"``. The dataset directory must
be readable at the same path on every node, and the checkpoint directory must be shared with the
driver (e.g. NFS), since rank 0 writes it and the driver resumes from it.
"""
from __future__ import annotations

import sys
import tempfile
import time
from dataclasses import fields
from pathlib import Path
from typing import Callable, Dict, List, Optional, Sequence, Union

import numpy as np

from graphtrain.errors import ConfigError, FormatError
from graphtrain.log import get_logger
from graphtrain.train.config import TrainConfig
from graphtrain.progress import Progress
from graphtrain.train.results import (BatchDone, CheckpointWritten, EpochDone, FitResult, LayerChunkDone, TrainStats,
                                      WorkerStarted)
from graphtrain.train.runtime import FIELDS as RUNTIME_FIELDS
from graphtrain.train.runtime import RuntimeConfig

log = get_logger("train")

SCORE_COLUMNS = ("node_id", "score", "pred", "label")


def _check_dataset(dataset_dir, need_labels: bool, need_features: bool = True, verify: Optional[bool] = None):
    """Open the dataset (headers and sizes), check its schema, then its checksums: ``verify`` None
    hashes the arrays changed since the last verification's stamp, True all of them, False none."""
    from graphtrain.partition.format import open_dataset

    ds = open_dataset(dataset_dir)  # FormatError for missing / corrupt / wrong-version datasets
    schema = ds.meta.node_schema
    if need_labels and schema.label is None:
        raise ConfigError(f"{dataset_dir}: the dataset has no node labels to train on; partition it with "
                          "--nodes ... --label COLUMN")
    if need_features and not schema.feature_names:
        raise ConfigError(f"{dataset_dir}: the dataset has no node features; partition it with --nodes ... --features COLUMNS")
    if verify is not False:
        ds.verify(reuse_stamp=verify is None)  # FormatError naming the first array whose sha256 differs
    return ds


def _check_temporal(ds, cfg: TrainConfig, dataset_dir) -> None:
    """The dataset has what ``cfg``'s temporal sampling needs (an edge time column; the node time column)."""
    if cfg.temporal is None:
        return
    from graphtrain.graph import TIME

    edge_time = ds.meta.edge_column(TIME)
    if edge_time is None:
        raise ConfigError(f"{dataset_dir}: temporal sampling needs an edge time column and the dataset has none; "
                          "partition it with --time COLUMN")
    if isinstance(cfg.seed_time, str):
        schema = ds.meta.node_schema
        if schema.time != cfg.seed_time:
            have = f"its node time column is {schema.time!r}" if schema.time else "it has no node time column"
            raise ConfigError(f"{dataset_dir}: seed_time {cfg.seed_time!r} names a node time column, but {have}; "
                              f"partition it with --nodes ... --node-time {cfg.seed_time}")
        if schema.time_unit != edge_time.unit:
            raise ConfigError(f"{dataset_dir}: the node times are in unit {schema.time_unit!r} and the edge times in "
                              f"{edge_time.unit!r}; give both columns in the same kind of time")


def _resolve_edge_features(ds, cfg: TrainConfig, dataset_dir):
    """``(dataset, cfg)`` with ``cfg.edge_features`` resolved (None: every feature the dataset can give
    for an edge-aware model, else none) and checked against the dataset's edge columns; a missing
    ``parallel`` column is computed and stored in the dataset first (once per dataset)."""
    from dataclasses import replace

    from graphtrain.sampling import edge_features as ef
    from graphtrain.train.config import EDGE_MODELS

    names = cfg.edge_features
    if names is None:
        names = ef.available_features(ds.meta) if cfg.model in EDGE_MODELS else ()
        if cfg.model in EDGE_MODELS and not names:
            raise ConfigError(f"{dataset_dir}: model {cfg.model!r} reads edge features and the dataset has none")
    ef.check_dataset_columns(ds.meta, names, dataset_dir)
    if ef.PARALLEL in names and ds.meta.edge_column(ef.PARALLEL) is None:
        log.info("%s: counting parallel edges into the 'parallel' edge column (once per dataset)", dataset_dir)
        ef.add_parallel_column(dataset_dir)
        from graphtrain.partition.format import open_dataset

        ds = open_dataset(dataset_dir)
    return ds, (cfg if names == cfg.edge_features else replace(cfg, edge_features=tuple(names)))


def _check_workers(num_workers, num_parts: int) -> int:
    if isinstance(num_workers, bool) or not isinstance(num_workers, (int, np.integer)) or num_workers < 1:
        raise ConfigError(f"num_workers must be an integer >= 1, got {num_workers!r}")
    if num_workers > num_parts:
        raise ConfigError(f"{num_workers} workers but the dataset has {num_parts} partitions; each worker serves at least "
                          f"one partition: use --num-workers <= {num_parts} or re-partition with --num-parts >= {num_workers}")
    return int(num_workers)


class _ProgressView:
    """Driver-side view of the workers' progress messages (:mod:`graphtrain.train.results`): bars
    (:class:`graphtrain.progress.Progress`: each epoch's batches, each scoring layer's chunks) when
    enabled, log lines either way."""

    def __init__(self, enabled: Optional[bool], listener: Optional[Callable[[object], None]] = None):
        self.enabled = sys.stderr.isatty() if enabled is None else enabled
        self.listener = listener
        self.bar: Optional[Progress] = None
        self.events: List[object] = []
        self.worker_pids: Dict[int, int] = {}
        self.worker_nodes: Dict[int, str] = {}
        self.checkpoints: List[CheckpointWritten] = []

    def _bar(self, desc: str, total: int, unit: str) -> Progress:
        if self.bar is None or self.bar.desc != desc:
            self.close()
            self.bar = Progress(True, desc, total, unit, leave=True)
        return self.bar

    def __call__(self, msg) -> None:
        self.events.append(msg)
        self._show(msg)
        if self.listener is not None:
            self.listener(msg)

    def _show(self, msg) -> None:
        if isinstance(msg, WorkerStarted):
            self.worker_pids[msg.rank] = msg.pid
            self.worker_nodes[msg.rank] = msg.node
        elif isinstance(msg, CheckpointWritten):
            self.checkpoints.append(msg)
        elif isinstance(msg, BatchDone) and self.enabled:
            self._bar(f"epoch {msg.epoch}", msg.num_batches, "batch").set(msg.batch, loss=f"{msg.loss:.4f}")
        elif isinstance(msg, LayerChunkDone) and self.enabled:
            self._bar(f"score layer {msg.layer + 1}/{msg.num_layers}", msg.num_chunks, "chunk").set(msg.chunk)
        elif isinstance(msg, EpochDone):
            val = msg.val or {}
            shown = {k: round(v, 4) for k, v in val.items() if isinstance(v, float) and k != "threshold"}
            if self.bar is not None and self.bar.bar is not None:
                self.bar.bar.set_postfix(loss=f"{msg.loss:.4f}", **shown)
                self.close()
            sample = f" (a sample of {msg.val_sample})" if msg.val_sample is not None and msg.val is not None else ""
            log.info("epoch %d/%d: loss %.4f, val%s %s%s", msg.epoch + 1, msg.num_epochs, msg.loss or float("nan"), sample,
                     shown if msg.val is not None else "not validated", " (early stop)" if msg.stopped_early else "")

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
            self.bar = None


class _Launcher:
    """Runs one job (fit, evaluate or predict) on a group of Ray workers over one checked dataset;
    :class:`Trainer` and :func:`predict` both start their workers through one."""

    def __init__(self, dataset_dir: str, dataset, num_workers: int, *, address: Optional[str], num_cpus: Optional[int],
                 cpus_per_worker: float, custom_model, progress: Optional[bool],
                 listener: Optional[Callable[[object], None]] = None):
        self.dataset_dir, self.dataset, self.num_workers = dataset_dir, dataset, num_workers
        self.address, self.num_cpus, self.cpus_per_worker = address, num_cpus, cpus_per_worker
        self.custom_model = custom_model
        self.progress_enabled = progress
        self.listener = listener
        self.progress: Optional[_ProgressView] = None  # of the current (or last) group

    def run(self, mode: str, config: TrainConfig, resume_from: Optional[str] = None, *,
            checkpoint_dir: Optional[str] = None, splits: Sequence[str] = ("val", "test"), audit: bool = False) -> list:
        """Each rank's result (:mod:`graphtrain.train.results`) of one worker group running ``mode``."""
        from graphtrain.train.group import WorkerGroup, connect
        from graphtrain.train.worker import WorkerTask

        connect(self.address, self.num_cpus)
        W = self.num_workers
        runs = self.dataset.book.contiguous_runs(W).tolist()
        self.progress = _ProgressView(self.progress_enabled, self.listener)
        try:
            with WorkerGroup(W, self.cpus_per_worker, config.use_gpu) as group:
                def make(rank, addr, port):
                    return WorkerTask(mode, self.dataset_dir, rank, W, runs, addr, port, config.to_dict(),
                                      checkpoint_dir=checkpoint_dir, resume_from=resume_from,
                                      custom_model=self.custom_model, progress=group.progress, splits=list(splits),
                                      audit=audit)

                return group.run(make, self.progress)
        finally:
            self.progress.close()


def _runtime_option(runtime) -> RuntimeConfig:
    if isinstance(runtime, RuntimeConfig):
        return runtime
    if isinstance(runtime, dict):
        try:
            return RuntimeConfig(**runtime)
        except TypeError as exc:
            raise ConfigError(f"unknown runtime option: {exc}") from None
    raise ConfigError(f"runtime must be a RuntimeConfig or a dict of its fields, got {type(runtime).__name__}")


def _config(options: dict) -> TrainConfig:
    """A validated TrainConfig of keyword ``options`` (``runtime``: a RuntimeConfig or a dict)."""
    misplaced = sorted(set(options) & set(RUNTIME_FIELDS))
    if misplaced:
        raise ConfigError(f"{', '.join(misplaced)}: machine tuning, not a training option; pass "
                          f"runtime=RuntimeConfig({misplaced[0]}=...) (graphtrain.train.runtime)")
    if "runtime" in options:
        options = dict(options, runtime=_runtime_option(options["runtime"]))
    try:
        return TrainConfig(**options).validate()
    except TypeError as exc:
        raise ConfigError(f"unknown training option: {exc}") from None


class Trainer:
    """Distributed GNN training on a partitioned dataset (see the module docstring).

    Args:
        dataset_dir: a dataset written by ``graphtrain partition`` (with node features and labels).
        model: a name of :data:`~graphtrain.train.config.MODELS` (``"sage"``, ``"gat"``, ``"gcn"``, the
            edge-aware ``"gine"``, ``"transformer"``, ``"sage_edge"``), or a ``torch.nn.Module`` following the protocol in
            :mod:`graphtrain.train.models` (its ``fanouts`` length must match its layer count).
        fanouts, batch_size, epochs: sampling and schedule (see :class:`TrainConfig`).
        num_workers: workers (1 <= W <= number of partitions).
        address: Ray cluster address (``"auto"``, ``"HOST:PORT"``); None starts a local Ray.
        checkpoint_dir: where checkpoints go (default: a new temporary directory, logged).
        resume: continue from the newest checkpoint in ``checkpoint_dir`` if there is one.
        max_restarts: worker failures survived by restarting from the last checkpoint.
        cpus_per_worker: Ray CPUs reserved per worker.
        num_cpus: logical CPUs of a local Ray started here (default: the machine's).
        progress: progress bars (default: when stderr is a terminal).
        on_progress: called on the driver with each progress message of the workers, in order
            (:mod:`graphtrain.train.results`: ``EpochDone`` carries the epoch's validation metrics),
            from the thread that called ``fit``; an exception it raises stops the workers and
            propagates out of ``fit`` (``graphtrain tune`` reports each validation to Ray Tune so).
        audit: record what training fed the model (``fit()["audit"]``: every node's role and, per
            epoch, the distinct training seeds with their labels and feature-row digests; see
            :mod:`graphtrain.train.audit`). A diagnostic, O(training seeds) per epoch at rank 0.
        verify: the arrays' sha256, checked here before any worker starts: None (default) hashes
            only the arrays changed since the last verification (a stamp in the dataset directory;
            the first run hashes everything), True all of them, False none (headers and sizes are
            always checked).
        **options: any other :class:`TrainConfig` field (hidden, lr, patience, use_gpu, amp,
            activation_checkpointing, checkpoint_every, seed, threads_per_worker, ...), and
            ``runtime``: machine tuning, a :class:`~graphtrain.train.runtime.RuntimeConfig` (or a
            dict of its fields: prefetch, freeze_gc, pin_cpus, gloo_poller, fused_dropout).

    Raises:
        FormatError: the dataset is missing, corrupt (a header, size or sha256 mismatch) or of
            another format version.
        ConfigError: bad options, no labels or features, ``num_workers`` out of range.
    """

    def __init__(self, dataset_dir, model="sage", fanouts: Sequence[int] = (15, 10), batch_size: int = 1024,
                 epochs: int = 10, num_workers: int = 1, *, address: Optional[str] = None,
                 checkpoint_dir=None, resume: bool = False, max_restarts: int = 3, cpus_per_worker: float = 1.0,
                 num_cpus: Optional[int] = None, progress: Optional[bool] = None, verify: Optional[bool] = None,
                 audit: bool = False, on_progress: Optional[Callable[[object], None]] = None, **options):
        import torch

        self.dataset_dir = str(Path(dataset_dir).resolve())
        self.custom_model = None
        if isinstance(model, torch.nn.Module):
            self.custom_model, model = model, "custom"
        elif not isinstance(model, str):
            raise ConfigError(f"model must be a model name or a torch.nn.Module, got {type(model).__name__}")
        try:
            fanouts = tuple(int(f) for f in fanouts)
        except (TypeError, ValueError):
            raise ConfigError(f"fanouts must be integers, got {list(fanouts)}") from None
        self.config = _config(dict(options, model=model, fanouts=fanouts, batch_size=batch_size, epochs=epochs))
        self.verify = verify
        self.dataset = _check_dataset(self.dataset_dir, need_labels=True, verify=verify)
        _check_temporal(self.dataset, self.config, self.dataset_dir)
        self.dataset, self.config = _resolve_edge_features(self.dataset, self.config, self.dataset_dir)
        self.num_workers = _check_workers(num_workers, self.dataset.num_parts)
        if self.config.train_sample is not None and self.config.train_sample < self.num_workers:
            raise ConfigError(f"train_sample {self.config.train_sample} is below the {self.num_workers} workers; each "
                              f"worker needs at least one training seed per epoch: use --train-sample >= {self.num_workers}")
        if max_restarts < 0:
            raise ConfigError(f"max_restarts must be >= 0, got {max_restarts}")
        if not cpus_per_worker > 0:
            raise ConfigError(f"cpus_per_worker must be > 0, got {cpus_per_worker}")
        if address:
            from graphtrain.train.group import check_address

            check_address(address)
        self.address = address
        self.max_restarts = int(max_restarts)
        self.cpus_per_worker = float(cpus_per_worker)
        self.num_cpus = num_cpus
        self.resume = bool(resume)
        self.audit = bool(audit)
        if checkpoint_dir is None:
            checkpoint_dir = tempfile.mkdtemp(prefix="graphtrain-ckpt-")
            log.info("checkpoints go to %s", checkpoint_dir)
        self.checkpoint_dir = str(Path(checkpoint_dir).resolve())
        self._progress_enabled = progress
        self._launcher = _Launcher(self.dataset_dir, self.dataset, self.num_workers, address=address, num_cpus=num_cpus,
                                   cpus_per_worker=self.cpus_per_worker, custom_model=self.custom_model,
                                   progress=progress, listener=on_progress)
        self.restarts: List[dict] = []
        self.result: Optional[FitResult] = None

    # -- plumbing ----------------------------------------------------------------------------------
    @property
    def progress(self) -> Optional[_ProgressView]:
        """The progress seen of the current (or last) worker group (None before the first)."""
        return self._launcher.progress

    @property
    def worker_pids(self) -> Dict[int, int]:
        """Process ID of each worker of the current (or last) group, by rank."""
        return dict(self.progress.worker_pids) if self.progress else {}

    @property
    def worker_nodes(self) -> Dict[int, str]:
        """Ray node ID each worker of the current (or last) group runs on, by rank."""
        return dict(self.progress.worker_nodes) if self.progress else {}

    def latest_checkpoint(self) -> Optional[str]:
        from graphtrain.train.checkpoint import latest_checkpoint

        path = latest_checkpoint(self.checkpoint_dir)
        return None if path is None else str(path)

    # -- API -----------------------------------------------------------------------------------------
    def fit(self) -> FitResult:
        """Train; return the final metrics (``val``, ``test``) and a summary of the run
        (:class:`~graphtrain.train.results.FitResult`; ``to_dict()`` for JSON)."""
        from graphtrain.train.group import run_with_restarts

        start = self.latest_checkpoint() if self.resume else None
        if start:
            self._check_resumable(start)
            log.info("resuming from %s", start)

        def on_restart(exc, ckpt):
            from graphtrain.train.checkpoint import read_manifest

            where = {}
            if ckpt:
                man = read_manifest(ckpt)
                where = {"epoch": man.epoch, "batch": man.batch, "global_step": man.global_step}
            self.restarts.append({"error": str(exc), "rank": exc.rank, "resumed_from": ckpt, **where})
            log.warning("%s; restarting the workers from %s", exc, ckpt or "the beginning")

        t0 = time.perf_counter()
        def run_once(ck):
            return self._launcher.run("fit", self.config, ck, checkpoint_dir=self.checkpoint_dir, audit=self.audit)

        results = run_with_restarts(run_once, self.latest_checkpoint, self.max_restarts, on_restart, start)
        wall = time.perf_counter() - t0
        head = results[0]
        metrics = head.metrics or {}
        self.result = FitResult(
            val=metrics.get("val"), test=metrics.get("test"), epochs_run=len(head.history),
            best_epoch=head.best_epoch, stopped_early=head.stopped_early, history=head.history,
            checkpoint=head.checkpoint, restarts=len(self.restarts), num_workers=self.num_workers,
            batches_per_epoch=head.batches_per_epoch, global_step=head.global_step,
            train=TrainStats.of([r.stats for r in results], wall), audit=head.audit if self.audit else None,
            max_steps_reached=head.max_steps_reached, train_sample=head.train_sample, val_sample=head.val_sample)
        return self.result

    def _check_resumable(self, checkpoint: str) -> None:
        """Refuse, before any worker starts, a mid-epoch checkpoint of another worker count, batch
        size or ``train_sample`` (or, with ``train_sample``, seed): its position names a batch of a
        different batching or sample. Epoch-end checkpoints resume on any."""
        from graphtrain.train.checkpoint import read_manifest

        man = read_manifest(checkpoint)
        if man.batch == 0 or man.finished:
            return
        was = (man.num_workers, man.train.get("batch_size"))
        now = (self.num_workers, self.config.batch_size)
        if was != now:
            raise ConfigError(f"checkpoint {checkpoint} was taken mid-epoch (epoch {man.epoch}, batch {man.batch}) by a "
                              f"run of {was[0]} workers with batch size {was[1]}; this run has {now[0]} workers and "
                              f"batch size {now[1]}: a mid-epoch checkpoint resumes only with the same worker count and "
                              "batch size (or resume from an epoch-end checkpoint)")
        # the epoch's sample is a function of (seed, epoch): a sampled epoch resumes only with both unchanged
        for name in ("train_sample", "seed") if self.config.train_sample is not None else ("train_sample",):
            was, now = man.train.get(name, TrainConfig.__dataclass_fields__[name].default), getattr(self.config, name)
            if was != now:
                raise ConfigError(f"checkpoint {checkpoint} was taken mid-epoch (epoch {man.epoch}, batch {man.batch}) by "
                                  f"a run with {name} {was}; this run has {name} {now}: the epoch's training seeds "
                                  f"would differ; resume with {name} {was} (or from an epoch-end checkpoint)")

    def _checkpoint(self, checkpoint) -> str:
        from graphtrain.train.checkpoint import resolve_checkpoint

        path = checkpoint or self.latest_checkpoint()
        if path is None:
            raise ConfigError(f"no checkpoint in {self.checkpoint_dir}; call fit() first or pass checkpoint=...")
        return str(resolve_checkpoint(path))

    def evaluate(self, split: Union[str, Sequence[str]] = "test", checkpoint=None) -> Dict[str, dict]:
        """Metrics of a checkpointed model (default: the newest) on ``"val"`` and/or ``"test"`` (sampled)."""
        splits = [split] if isinstance(split, str) else list(split)
        bad = [s for s in splits if s not in ("train", "val", "test")]
        if bad:
            raise ConfigError(f"split must be 'train', 'val' or 'test', got {bad[0]!r}")
        path = self._checkpoint(checkpoint)
        results = self._launcher.run("evaluate", self.config, path, splits=splits)
        return {k: v for k, v in (results[0].metrics or {}).items() if k in splits}

    def predict(self, out_path, checkpoint=None, force: bool = False, **overrides) -> dict:
        """Score every node layer-wise with a checkpointed model and write Parquet by raw ID (see
        :func:`predict`; ``overrides``: its TrainConfig fields, e.g. ``inference_dtype="float16"``)."""
        return predict(self.dataset_dir, checkpoint or self._checkpoint(None), out_path, num_workers=self.num_workers,
                       address=self.address, force=force, cpus_per_worker=self.cpus_per_worker, num_cpus=self.num_cpus,
                       model=self.custom_model, progress=self._progress_enabled,
                       verify=False if self.verify is False else None, **overrides)  # verified (and stamped) at __init__


def predict(dataset_dir, checkpoint, out_path, num_workers: int = 1, *, address: Optional[str] = None,
            force: bool = False, cpus_per_worker: float = 1.0, num_cpus: Optional[int] = None, model=None,
            progress: Optional[bool] = None, verify: Optional[bool] = None, **overrides) -> dict:
    """Score every node of a dataset with a checkpoint's model (layer-wise, all in-edges) into one Parquet file.

    A temporally trained model (``temporal`` in its :class:`TrainConfig`) is scored as it was trained:
    with one cutoff (``seed_time`` None or an int), layer-wise over the edges no later than the
    cutoff (earlier with ``temporal_strict``); with per-node seed times (``seed_time`` a node time
    column), with the temporal sampler, each node bounded by its own time (sampled, not exact).

    Columns: ``node_id`` (the raw ID, as ingested), ``score`` (probability of class 1 for binary
    labels, else of the predicted class), ``pred`` (arg-max class), ``label`` (-1 unknown). Rows are
    in global-ID order. Each worker writes its nodes' rows to a file of its own in the run's scratch
    directory (beside ``out_path``, which every worker must reach, as it reaches ``dataset_dir``), and
    they are copied into ``out_path`` a row group at a time (:mod:`graphtrain.train.score_file`): no
    process holds all the scores. The file is written under a temporary name and renamed at the end.

    Args:
        dataset_dir: the dataset (the one trained on, or another with the same features).
        checkpoint: a checkpoint directory (its newest checkpoint) or one checkpoint.
        out_path: the Parquet file to write (``force`` to replace an existing one).
        num_workers: workers for the inference (any number <= partitions; need not match training).
        model: the ``torch.nn.Module`` for checkpoints of a user model.
        verify: the dataset arrays' sha256 before any worker starts, as :class:`Trainer`'s ``verify``.
        **overrides: :class:`TrainConfig` fields to change (e.g. ``inference_chunk``, ``threads_per_worker``;
            ``inference_dtype="float16"``: the hidden layers' embeddings stored as float16 on disk;
            ``inference_dir``: where the run's scratch directory of embedding files goes, default beside
            ``out_path``, removed at the end, also on failure; ``runtime``: a
            :class:`~graphtrain.train.runtime.RuntimeConfig` or a dict of the fields to change in the checkpoint's).

    Returns:
        ``{"path", "rows", "checkpoint"}``.
    """
    from graphtrain.io import staged_file
    from graphtrain.train.checkpoint import read_manifest, resolve_checkpoint

    ckpt = resolve_checkpoint(checkpoint).resolve()  # absolute: the workers run in another directory
    manifest = read_manifest(ckpt)
    out_path = Path(out_path)
    if out_path.exists() and not force:
        from graphtrain.errors import OutputExistsError

        raise OutputExistsError(f"{out_path} already exists; pass --force to replace it")
    ds = _check_dataset(dataset_dir, need_labels=False, verify=verify)
    W = _check_workers(num_workers, ds.num_parts)
    cfg = TrainConfig.from_dict(manifest.train)
    if cfg.model == "custom" and model is None:
        raise ConfigError(f"{ckpt} holds a user model ({manifest.model.get('class')}); pass the same module as model=")
    feats = len(ds.meta.node_schema.feature_names)
    if manifest.model.get("in_channels") not in (None, feats):
        raise ConfigError(f"the checkpoint's model reads {manifest.model['in_channels']} features; {dataset_dir} has {feats}")
    if isinstance(overrides.get("runtime"), dict):  # the fields to change in the checkpoint's runtime
        overrides["runtime"] = _runtime_option({**cfg.runtime.to_dict(), **overrides["runtime"]})
    cfg = _config({**{f.name: getattr(cfg, f.name) for f in fields(cfg)}, **overrides})
    _check_temporal(ds, cfg, dataset_dir)
    ds, cfg = _resolve_edge_features(ds, cfg, dataset_dir)
    from dataclasses import replace

    from graphtrain.train.inference import check_embedding_dtype, scratch_directory
    from graphtrain.train.score_file import concatenate_scores

    check_embedding_dtype(cfg.inference_dtype)
    launcher = _Launcher(str(Path(dataset_dir).resolve()), ds, W, address=address, num_cpus=num_cpus,
                         cpus_per_worker=float(cpus_per_worker), custom_model=model, progress=progress)
    # layer-wise inference's embedding files: one directory per worker, in one of this run's beside the output
    with scratch_directory(cfg.inference_dir or out_path.resolve().parent, prefix=f".{out_path.name}.inference-") as scratch:
        results = launcher.run("predict", replace(cfg, inference_dir=str(scratch)), str(ckpt))
        with staged_file(out_path, force) as tmp:  # the ranks' files, in rank (= global-ID) order, copied
            rows = concatenate_scores([r.path for r in sorted(results, key=lambda r: r.rank)], tmp)
    log.info("wrote %d scores to %s", rows, out_path)
    return {"path": str(out_path), "rows": rows, "checkpoint": str(ckpt)}
