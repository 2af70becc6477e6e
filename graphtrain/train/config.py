"""The training configuration: one frozen dataclass, the single source of defaults (API and CLI)."""
from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields
from typing import Optional, Tuple, Union

from graphtrain.errors import ConfigError
from graphtrain.train.runtime import FIELDS as RUNTIME_FIELDS
from graphtrain.train.runtime import RuntimeConfig

MODELS = ("sage", "gat", "gcn", "gine", "transformer", "sage_edge", "bwgnn")
# models whose messages read the edge features (TrainConfig.edge_features; graphtrain.sampling.edge_features)
EDGE_MODELS = ("gine", "transformer", "sage_edge")
AGGREGATORS = ("mean", "max", "min", "std", "sum")
EGO_MODES = ("sum", "concat")
MONITORS = ("auc", "ap", "f1_macro", "recall_at_k", "accuracy")
CLASS_WEIGHTS = ("balanced", "none")
TEMPORAL_MODES = ("uniform", "recent")
# min_steps of the commands (`graphtrain train`, `detect-rings`, `demo`): on a small training set a few
# epochs are a few dozen optimizer steps, too few to learn (AMLSim 20K, `train --epochs 5`: 35 steps,
# test AUC 0.827; 203 steps 0.893, mean of 3 seeds, benchmarks/RESULTS.md). The API default stays 0:
# `TrainConfig(epochs=E)` trains exactly E epochs unless told otherwise.
COMMAND_MIN_STEPS = 200


@dataclass(frozen=True)
class TrainConfig:
    """How to train: the model and the schedule (sent to every worker; stored in every checkpoint).

    Machine tuning -- prefetching, CPU pinning, garbage-collector freezing, gloo poller priority,
    the fused CPU dropout -- is the nested :class:`~graphtrain.train.runtime.RuntimeConfig`
    (``runtime``), not fields of this class.

    Attributes:
        model: a name of :data:`MODELS` (``"sage"``, ``"gat"``, ``"gcn"``, the edge-aware ``"gine"``,
            ``"transformer"``, ``"sage_edge"``, the band-pass ``"bwgnn"``) or ``"custom"`` (a user
            ``torch.nn.Module``).
        fanouts: neighbours sampled per node at each hop; its length is the number of layers.
        batch_size: seeds per batch on each worker (the global batch is ``num_workers * batch_size``).
        epochs: maximum number of epochs (raised by ``min_steps`` on small training sets, cut short
            by ``max_steps``), and the most validation passes of a run.
        min_steps: train at least this many optimizer steps (batches per worker). When ``epochs``
            epochs hold fewer -- a small labelled set: 126 training nodes at ``batch_size`` 512 make
            one step per epoch -- the epoch budget becomes ``ceil(min_steps / batches_per_epoch)``,
            and early stopping does not stop the run before ``min_steps`` steps (it still restores the
            best validated model). The budget never exceeds ``max(epochs, ceil(min_steps /
            batches_per_epoch))``, and on data with ``epochs * batches_per_epoch >= min_steps`` nothing
            changes. 0: ``epochs`` alone. An extended run validates -- and checkpoints at epoch end,
            and counts ``patience`` -- only every ``ceil(extended_epochs / epochs)`` epochs and at its
            last epoch (:meth:`validate_every`), so it never validates more than ``epochs`` times:
            ``epochs=10, min_steps=200`` on one batch per epoch trains 200 epochs and validates
            after epochs 20, 40, ..., 200. The epochs in between have no ``val`` in the history.
        max_steps: stop training after this many optimizer steps (``global_step``: batches per
            worker, counted over the whole run, resumes included), whatever ``epochs`` says; None: no
            step limit. The step that reaches it ends its epoch early (the epoch's history record
            counts the batches run), and the run ends as at the end of its epochs: it validates
            (unless that epoch end validates anyway), keeps the best validated model, evaluates val
            and test and writes its final checkpoint. Early stopping may still end the run sooner.
            Must be >= ``min_steps`` (which then still extends a small data set's epochs).
        train_sample: train each epoch on a stratified random sample of this many training seeds
            (all workers together), a new sample every epoch; None: every training node, every
            epoch. Per class the sample holds ``n * T_c / T`` nodes (rounded to sum to ``n``; a class
            present keeps at least one), drawn by hashing each node's global ID with ``(seed,
            epoch)`` (:class:`~graphtrain.train.splits.StratifiedSample`): the same sample on any
            number of workers and after a resume. ``batches_per_epoch`` -- and so ``min_steps``'s
            epoch budget -- counts the sample, not the split. At or above the training split's size
            every epoch trains on the whole split, exactly as without it. Class weights and feature
            standardisation still use the whole training split.
        val_sample: validate during training (early stopping, the best model) on a fixed stratified
            sample of this many validation nodes, drawn like ``train_sample``'s but once for the run;
            None: the whole validation split. The final evaluation after training always scores
            the whole val and test splits. The history records validated on the sample carry
            ``val_sample`` (the sample's size); so does ``FitResult``.
        hidden: hidden width. dropout: dropout after each hidden layer. heads: GAT and transformer
            attention heads.
        edge_features: per-edge inputs of the edge-aware models (``gine``, ``transformer``,
            ``sage_edge``; :data:`EDGE_MODELS`), names among ``amount``, ``reverse``, ``time_delta``,
            ``parallel`` (:mod:`graphtrain.sampling.edge_features`: signed log amount, direction, log
            days before the seed time, log count of transactions between the same pair). Every batch
            carries them as ``edge_attr`` (read by its edge IDs where the edges are held), standardised
            with the training split's statistics when ``normalize``; layer-wise ``predict`` reads them
            for each chunk's in-edges. None (default): every one the dataset can give for an
            edge-aware model, none for the others (resolved by the trainer before the workers start;
            checkpoints store the resolved tuple); ``()``: none. A user model gets them as
            ``edge_attr=`` when this is not empty.
        aggregators: neighbour aggregations of ``sage`` / ``sage_edge`` (among ``mean``, ``max``,
            ``min``, ``std``, ``sum``), used together and concatenated.
        ego: ``"sum"`` (``SAGEConv``: own and neighbour transforms added) or ``"concat"`` (kept side by
            side in every hidden layer, H2GCN-style); ``sage`` / ``sage_edge`` only.
        lr, weight_decay: Adam.
        class_weight: ``"balanced"`` weights the loss by ``n_train / (C * n_train_c)`` per class
            (computed over all workers' training nodes), ``"none"`` does not.
        monitor: validation metric for early stopping and the best model (higher is better).
        patience: stop after this many validations without improvement of ``monitor`` by more than
            ``min_delta`` (None: never stop early): epochs, unless ``min_steps`` extended the run. The
            best model is restored at the end either way.
        split_fractions: train/val/test fractions for datasets without a stored split.
        normalize: standardise every node feature row the model sees (training, evaluation,
            ``predict``) with the per-feature mean and standard deviation of the training split's
            nodes, computed once over all workers and stored with the checkpoint
            (:mod:`graphtrain.train.normalize`); False: the model reads the raw features.
        temporal: None (every in-edge may be sampled), ``"uniform"`` or ``"recent"``: each seed has a
            time and its whole sampled computation graph uses only edges with time <= that seed
            time (at every hop), drawn uniformly among them or the most recent ones. Needs the
            dataset's edge time column (``graphtrain partition --time``). Training, evaluation and
            ``predict`` all use it (see ``seed_time`` for ``predict``).
        temporal_strict: only edges strictly earlier than the seed time (``<`` instead of ``<=``).
        seed_time: where each seed's time comes from (temporal only):
            ``None`` -- one cutoff for every seed, the dataset's latest edge time ("score as of the
            end of the log": no edge is later than it; ``"recent"`` still prefers late edges);
            an ``int`` -- one cutoff for every seed, in the edge time's unit (edges after it are
            never used: training, evaluation and layer-wise ``predict`` see the graph as of then);
            a ``str`` -- the name of the dataset's node time column (``graphtrain partition
            --nodes ... --node-time COL``), one time per node, e.g. when its label became known.
            With per-node times, ``predict`` scores each node with sampled mini-batches (the same
            temporal sampler, ``eval_batch_size`` seeds at a time), since layer-wise inference
            cannot give each node its own cutoff.
        seed: seed of the split, shuffles, sampling and dropout (each step's dropout masks come from a
            generator seeded with ``(seed, rank, global_step)``; torch's global RNG is not reseeded).
        use_gpu: one GPU per worker (NCCL for gradients; the data plane stays on gloo).
        amp: mixed precision (``torch.autocast``) -- applied on GPU only.
        activation_checkpointing: recompute layer activations in the backward pass.
        checkpoint_every: also checkpoint every this many batches inside an epoch (0: epoch ends only).
        keep_checkpoints: newest checkpoints kept on disk.
        eval_batch_size: seeds per evaluation batch (default: ``batch_size``).
        recall_k: ``k`` of recall@k (default: the number of positives of the evaluated split).
        backend: sampling kernel backend (``auto``, ``cpu``, ``cuda``, ``reference``).
        threads_per_worker: torch and Numba threads of each worker.
        feature_cache_mb: each worker keeps the features of the remote nodes its in-edges point at
            most often (hubs), up to this many MiB, fetched once at start (0: no cache).
        inference_chunk: destination nodes per step of layer-wise inference.
        log_every: report the training loss every this many batches.
        collective_timeout_s: torch.distributed timeout; a hung collective fails after this long.
        runtime: machine tuning (:class:`~graphtrain.train.runtime.RuntimeConfig`).
    """

    model: str = "sage"
    fanouts: Tuple[int, ...] = (15, 10)
    batch_size: int = 1024
    epochs: int = 10
    min_steps: int = 0
    max_steps: Optional[int] = None
    train_sample: Optional[int] = None
    val_sample: Optional[int] = None
    hidden: int = 128
    dropout: float = 0.2
    heads: int = 2
    edge_features: Optional[Tuple[str, ...]] = None
    aggregators: Tuple[str, ...] = ("mean",)
    ego: str = "sum"
    lr: float = 1e-3
    weight_decay: float = 0.0
    class_weight: str = "balanced"
    monitor: str = "auc"
    patience: Optional[int] = None
    min_delta: float = 0.0
    split_fractions: Tuple[float, float, float] = (0.7, 0.15, 0.15)
    normalize: bool = True
    temporal: Optional[str] = None
    temporal_strict: bool = False
    seed_time: Optional[Union[int, str]] = None
    seed: int = 0
    use_gpu: bool = False
    amp: bool = True
    activation_checkpointing: bool = False
    checkpoint_every: int = 0
    keep_checkpoints: int = 2
    eval_batch_size: Optional[int] = None
    recall_k: Optional[int] = None
    backend: str = "auto"
    threads_per_worker: int = 1
    feature_cache_mb: float = 64.0
    inference_chunk: int = 65536
    # layer-wise inference (graphtrain.train.inference): storage of the hidden layers' embeddings on disk,
    # "float32" (exact) or "float16"; the directory for its scratch files (None: beside predict's output)
    inference_dtype: str = "float32"
    inference_dir: Optional[str] = None
    log_every: int = 10
    collective_timeout_s: float = 600.0
    runtime: RuntimeConfig = field(default_factory=RuntimeConfig)

    def validate(self) -> "TrainConfig":
        if self.model not in MODELS + ("custom",):
            raise ConfigError(f"model must be one of {MODELS} (or a torch.nn.Module), got {self.model!r}")
        if not self.fanouts or any(not isinstance(k, int) or k < 1 for k in self.fanouts):
            raise ConfigError(f"fanouts must be positive integers, one per layer, e.g. 15,10; got {list(self.fanouts)}")
        positive = {"batch_size": self.batch_size, "epochs": self.epochs, "hidden": self.hidden, "heads": self.heads,
                    "keep_checkpoints": self.keep_checkpoints, "threads_per_worker": self.threads_per_worker,
                    "inference_chunk": self.inference_chunk, "log_every": self.log_every}
        for name, v in positive.items():
            if not isinstance(v, int) or isinstance(v, bool) or v < 1:
                raise ConfigError(f"{name} must be a positive integer, got {v!r}")
        for name, v in (("checkpoint_every", self.checkpoint_every), ("min_steps", self.min_steps)):
            if not isinstance(v, int) or v < 0:
                raise ConfigError(f"{name} must be a non-negative integer, got {v!r}")
        for name in ("max_steps", "train_sample", "val_sample"):
            v = getattr(self, name)
            if v is not None and (not isinstance(v, int) or isinstance(v, bool) or v < 1):
                raise ConfigError(f"{name} must be a positive integer (or None: off), got {v!r}")
        if self.max_steps is not None and self.max_steps < self.min_steps:
            raise ConfigError(f"max_steps ({self.max_steps}) is below min_steps ({self.min_steps}): the run could "
                              "not take the steps it must; raise max_steps or lower min_steps")
        if not self.feature_cache_mb >= 0:
            raise ConfigError(f"feature_cache_mb must be >= 0, got {self.feature_cache_mb}")
        if self.eval_batch_size is not None and self.eval_batch_size < 1:
            raise ConfigError(f"eval_batch_size must be a positive integer, got {self.eval_batch_size!r}")
        if self.patience is not None and self.patience < 1:
            raise ConfigError(f"patience must be >= 1 (or None to never stop early), got {self.patience!r}")
        if not self.lr > 0:
            raise ConfigError(f"lr must be > 0, got {self.lr}")
        if not isinstance(self.runtime, RuntimeConfig):
            raise ConfigError(f"runtime must be a RuntimeConfig, got {type(self.runtime).__name__}")
        self.runtime.validate()
        if self.class_weight not in CLASS_WEIGHTS:
            raise ConfigError(f"class_weight must be one of {CLASS_WEIGHTS}, got {self.class_weight!r}")
        if self.monitor not in MONITORS:
            raise ConfigError(f"monitor must be one of {MONITORS}, got {self.monitor!r}")
        if not 0.0 <= self.dropout < 1.0:
            raise ConfigError(f"dropout must be in [0, 1), got {self.dropout}")
        if self.recall_k is not None and self.recall_k < 1:
            raise ConfigError(f"recall_k must be >= 1, got {self.recall_k}")
        self._validate_model_options()
        if not isinstance(self.normalize, bool):
            raise ConfigError(f"normalize must be True or False, got {self.normalize!r}")
        self._validate_temporal()
        from graphtrain.train.splits import check_fractions

        check_fractions(self.split_fractions)
        return self

    def _validate_model_options(self) -> None:
        from graphtrain.sampling.edge_features import check_edge_features
        from graphtrain.train.models import check_heterophily_options

        if self.edge_features is not None:
            object.__setattr__(self, "edge_features", check_edge_features(self.edge_features))
            if self.model in EDGE_MODELS and not self.edge_features:
                raise ConfigError(f"model {self.model!r} reads edge features; edge_features must name at least one "
                                  "(or be None: every one the dataset has)")
        object.__setattr__(self, "aggregators", tuple(self.aggregators))
        check_heterophily_options(self.model, self.aggregators, self.ego)
        if self.model == "transformer" and self.hidden % self.heads:
            raise ConfigError(f"transformer hidden ({self.hidden}) must be a multiple of heads ({self.heads})")

    def _validate_temporal(self) -> None:
        if self.temporal not in (None,) + TEMPORAL_MODES:
            raise ConfigError(f"temporal must be None, 'uniform' or 'recent', got {self.temporal!r}")
        if not isinstance(self.temporal_strict, bool):
            raise ConfigError(f"temporal_strict must be True or False, got {self.temporal_strict!r}")
        if self.temporal is None and (self.temporal_strict or self.seed_time is not None):
            raise ConfigError("temporal_strict and seed_time only apply to temporal sampling; set temporal='uniform' "
                              "or 'recent' (--temporal)")
        st = self.seed_time
        valid_int = isinstance(st, int) and not isinstance(st, bool) and -2**63 <= st < 2**63
        if not (st is None or valid_int or (isinstance(st, str) and st)):
            raise ConfigError(f"seed_time must be None (the latest edge time), an integer cutoff or the name of the "
                              f"dataset's node time column, got {st!r}")

    @property
    def per_node_seed_time(self) -> bool:
        """Each seed has its own time (``seed_time`` names the node time column)."""
        return self.temporal is not None and isinstance(self.seed_time, str)

    @property
    def idle_gloo_pollers(self) -> bool:
        """Whether workers run gloo's socket pollers at idle priority (``gloo_poller`` resolved)."""
        return self.runtime.idle_gloo_pollers(self.use_gpu)

    def epoch_budget(self, batches_per_epoch: int) -> int:
        """Most epochs of a run with ``batches_per_epoch`` steps per epoch: ``epochs``, raised to reach ``min_steps``."""
        return max(self.epochs, -(-self.min_steps // max(batches_per_epoch, 1)))

    def steps_done(self, global_step: int) -> bool:
        """``max_steps`` is set and ``global_step`` steps reach it."""
        return self.max_steps is not None and global_step >= self.max_steps

    def validate_every(self, batches_per_epoch: int) -> int:
        """Epochs between validations: 1, or ``ceil(epoch_budget / epochs)`` when ``min_steps``
        extended the run (validated also at its last epoch: at most ``epochs`` validations)."""
        return -(-self.epoch_budget(batches_per_epoch) // self.epochs)

    @property
    def num_layers(self) -> int:
        return len(self.fanouts)

    def to_dict(self) -> dict:
        d = asdict(self)
        d["fanouts"] = list(self.fanouts)
        d["split_fractions"] = list(self.split_fractions)
        d["edge_features"] = None if self.edge_features is None else list(self.edge_features)
        d["aggregators"] = list(self.aggregators)
        d["runtime"] = self.runtime.to_dict()
        return d

    @classmethod
    def from_dict(cls, d: dict) -> "TrainConfig":
        """The inverse of :meth:`to_dict`; also reads the flat ``prefetch``, ``pin_cpus`` and
        ``gloo_poller`` fields of older checkpoints into ``runtime``."""
        known = {f.name for f in fields(cls)}
        runtime = {k: d[k] for k in RUNTIME_FIELDS if k in d}  # before RuntimeConfig: flat fields
        runtime.update(d.get("runtime") or {})
        d = {k: v for k, v in d.items() if k in known}
        d["runtime"] = RuntimeConfig.from_dict(runtime)
        if "fanouts" in d:
            d["fanouts"] = tuple(d["fanouts"])
        if "split_fractions" in d:
            d["split_fractions"] = tuple(d["split_fractions"])
        for name in ("edge_features", "aggregators"):
            if d.get(name) is not None:
                d[name] = tuple(d[name])
        return cls(**d)
