"""What flows back from the workers: progress messages, worker results and ``Trainer.fit()``'s result.

Progress messages (posted by the workers to the driver's channel while a job runs):
:class:`WorkerStarted`, :class:`BatchDone`, :class:`EpochDone`, :class:`LayerChunkDone`,
:class:`CheckpointWritten`.
Worker results (one per rank when a job ends): :class:`FitWorkerResult` (with each rank's
:class:`WorkerStats`), :class:`EvaluateWorkerResult`, :class:`PredictWorkerResult`. The driver sums
the ranks' statistics into :class:`TrainStats` and returns :class:`FitResult`; its ``to_dict()`` is
the JSON line of ``graphtrain train``. Epoch records in ``history`` stay plain dicts: they are
stored as they are in every checkpoint's manifest.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields
from typing import Dict, List, Optional


def _plain(obj) -> dict:
    """A dataclass as a dict, top-level fields only (nested values kept as they are)."""
    return {f.name: getattr(obj, f.name) for f in fields(obj)}


# -- progress messages ------------------------------------------------------------------------------
@dataclass(frozen=True)
class WorkerStarted:
    rank: int
    pid: int
    node: str


@dataclass(frozen=True)
class BatchDone:
    """Rank 0 every ``log_every`` batches: ``batch`` batches of ``num_batches`` done in ``epoch``."""

    epoch: int
    batch: int
    num_batches: int
    loss: float


@dataclass(frozen=True)
class EpochDone:
    """Rank 0 at each epoch end: the epoch's record (``val`` None when it was not validated;
    ``val_sample``: the validation nodes it scored when ``TrainConfig.val_sample`` is set)."""

    epoch: int
    num_epochs: int
    loss: Optional[float]
    seconds: float
    batches: int
    val: Optional[dict]
    stopped_early: bool
    val_sample: Optional[int] = None


@dataclass(frozen=True)
class LayerChunkDone:
    """Rank 0 while scoring layer-wise: ``chunk`` of ``num_chunks`` destination chunks of layer
    ``layer`` (0-based, of ``num_layers``) done."""

    layer: int
    num_layers: int
    chunk: int
    num_chunks: int


@dataclass(frozen=True)
class CheckpointWritten:
    path: str
    epoch: int
    batch: int


# -- worker results ---------------------------------------------------------------------------------
@dataclass
class WorkerStats:
    """One rank's training statistics (see :class:`TrainStats`)."""

    bytes_sent: int = 0
    bytes_received: int = 0
    batches: int = 0
    seeds: int = 0
    seconds: float = 0.0
    cpu_seconds: float = 0.0
    startup_seconds: float = 0.0
    eval_seconds: float = 0.0
    final_seconds: float = 0.0
    pinned_cores: Optional[List[int]] = None
    idle_gloo_pollers: int = 0
    frozen_objects: int = 0


@dataclass
class FitWorkerResult:
    """A rank's end of ``fit``; the run's summary fields are rank 0's (None elsewhere)."""

    rank: int
    stats: WorkerStats
    metrics: Optional[Dict[str, dict]] = None
    history: Optional[List[dict]] = None
    best_epoch: Optional[int] = None
    stopped_early: bool = False
    global_step: int = 0
    batches_per_epoch: int = 0
    checkpoint: Optional[str] = None
    audit: Optional[dict] = None
    max_steps_reached: bool = False
    train_sample: Optional[int] = None
    val_sample: Optional[int] = None


@dataclass
class EvaluateWorkerResult:
    rank: int
    metrics: Optional[Dict[str, dict]]  # at rank 0: metrics by split


@dataclass
class PredictWorkerResult:
    """A rank's scored nodes: the Parquet file holding them in global-ID order
    (:func:`graphtrain.train.score_file.write_rank_scores`) and its row count."""

    rank: int
    path: str
    rows: int


# -- fit() ------------------------------------------------------------------------------------------
@dataclass
class TrainStats:
    """Training statistics of a run. Summed over workers: ``bytes_sent``/``bytes_received`` (data
    plane, training batches only), ``batches``, ``seeds``. Times in seconds, of the slowest worker:
    ``seconds`` (training loops), ``startup_seconds`` (worker start to first batch),
    ``eval_seconds`` (per-epoch validation), ``final_seconds`` (final evaluation and checkpoint);
    ``fit_seconds``: the driver's wall time of ``fit`` (Ray placement and restarts included). By
    rank: ``cpu_seconds``, and what the runtime tuning did (:mod:`graphtrain.train.runtime`):
    ``pinned_cores`` (None: not pinned), ``idle_gloo_pollers``, ``frozen_objects``."""

    bytes_sent: int
    bytes_received: int
    batches: int
    seeds: int
    seconds: float
    startup_seconds: float
    eval_seconds: float
    final_seconds: float
    fit_seconds: float
    pinned_cores: List[Optional[List[int]]]
    cpu_seconds: List[float]
    idle_gloo_pollers: List[int]
    frozen_objects: List[int]

    @classmethod
    def of(cls, ranks: List[WorkerStats], fit_seconds: float) -> "TrainStats":
        total = {k: sum(getattr(s, k) for s in ranks) for k in ("bytes_sent", "bytes_received", "batches", "seeds")}
        slowest = {k: max(getattr(s, k) for s in ranks)
                   for k in ("seconds", "startup_seconds", "eval_seconds", "final_seconds")}
        by_rank = {k: [getattr(s, k) for s in ranks]
                   for k in ("pinned_cores", "cpu_seconds", "idle_gloo_pollers", "frozen_objects")}
        return cls(**total, **slowest, fit_seconds=fit_seconds, **by_rank)

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass
class FitResult:
    """What ``Trainer.fit()`` returns.

    Attributes:
        val, test: metrics of the final (best) model: ``auc``, ``ap``, ``f1_macro``,
            ``recall_at_k``, ``threshold``, ``count``, ``positives`` (binary labels) or ``accuracy``
            and ``f1_macro`` (more classes); a metric undefined for the split (one class only) is
            None. None without the split.
        epochs_run, best_epoch, stopped_early: the schedule as run (``best_epoch``: of the model kept;
            ``stopped_early``: early stopping by ``patience`` ended it, not a budget).
        history: one record per epoch: ``epoch``, ``loss``, ``seconds``, ``batches``, ``val`` (None
            on an epoch that was not validated; see ``TrainConfig.min_steps``), and with
            ``val_sample`` set ``val_sample``: the validation metrics of that run are those of a
            sample of that many validation nodes.
        checkpoint: the final checkpoint. restarts: worker failures survived.
        num_workers, batches_per_epoch, global_step: the run's shape (optimizer steps per worker).
        max_steps_reached: training ended because ``global_step`` reached ``TrainConfig.max_steps``.
        train_sample: training seeds of each epoch when ``TrainConfig.train_sample`` is set (its value,
            or the training split's size when that is smaller), else None (the whole split).
        val_sample: validation nodes scored by each validation during training when
            ``TrainConfig.val_sample`` is set, else None (the whole split). ``val`` and ``test`` above
            always score the whole splits.
        train: :class:`TrainStats`. audit: what training fed the model (``Trainer(audit=True)``; with
            ``val_sample`` also ``audit["val_sample"]``: the sample's sorted global IDs).
    """

    val: Optional[dict]
    test: Optional[dict]
    epochs_run: int
    best_epoch: Optional[int]
    stopped_early: bool
    history: List[dict]
    checkpoint: Optional[str]
    restarts: int
    num_workers: int
    batches_per_epoch: int
    global_step: int
    train: TrainStats
    audit: Optional[dict] = field(default=None, repr=False)
    max_steps_reached: bool = False
    train_sample: Optional[int] = None
    val_sample: Optional[int] = None

    def to_dict(self, history: bool = True) -> dict:
        """Plain JSON-ready values (``audit``, which holds arrays, left out; ``history`` optional)."""
        d = _plain(self)
        d["train"] = self.train.to_dict()
        del d["audit"]
        if not history:
            del d["history"]
        return d
