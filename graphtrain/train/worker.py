"""The per-worker program: :func:`run_worker` (one Ray task per worker; see :mod:`graphtrain.train.group`).

A worker receives a :class:`WorkerTask` -- the dataset path, its rank, the partition runs, the
rendezvous address and the configuration -- and nothing else. It then

1. joins the torch.distributed group (gloo on CPU, NCCL on GPU) for DDP gradients, plus a second
   gloo group for the data plane (the loader's prefetch thread uses it while the main thread
   all-reduces gradients, so the two must not share a group),
2. opens its run of partitions memory-mapped (:func:`~graphtrain.sampling.shard.open_worker_shard`),
3. works out the train/val/test roles of its nodes and deals the seeds out evenly
   (:mod:`graphtrain.train.splits`),
4. trains (``mode="fit"``: :class:`~graphtrain.train.loop.TrainingLoop`), evaluates (``"evaluate"``)
   or scores every node layer-wise (``"predict"``).

Machine tuning (``TrainConfig.runtime``: CPU pinning around the whole job, idle gloo pollers once
the groups exist, the objects alive after steps 1-3 frozen out of Python's garbage collections) is
applied by :class:`~graphtrain.train.runtime.WorkerRuntime`, and reported in each rank's statistics.

Temporal training (``TrainConfig.temporal``): every loader's sampler is temporal and each seed gets
its time -- one cutoff for all (``seed_time`` an int, or the dataset's latest edge time, agreed on
by all workers at start) or the node time column's value (fetched once per loader from the
owners, like the labels). ``predict`` uses layer-wise inference over the edges no later than the
cutoff, or, with per-node times, the temporal sampler over every node (see :func:`_predict_mode`).

Every worker runs the same number of batches per epoch (see :func:`~graphtrain.train.splits.pad_to_batches`),
so the data-plane collectives of all workers line up. Randomness: the loader shuffles with
``worker_seed = f(seed, rank)``, the sampler keys with the same seed, and each step's dropout draws
from a generator seeded with ``f(worker_seed, global_step)`` -- a checkpoint's position is its RNG
state (see :mod:`graphtrain.train.loop`).
"""
from __future__ import annotations

import copy
import os
import time
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any, Dict, List, Optional

import numpy as np

from graphtrain.errors import ConfigError
from graphtrain.log import get_logger
from graphtrain.sampling.features import NodeDataSource
from graphtrain.train.results import EvaluateWorkerResult, PredictWorkerResult, WorkerStarted

log = get_logger("train.worker")


@dataclass
class WorkerTask:
    """Everything a worker receives (small; no data).

    Attributes:
        mode: ``"fit"``, ``"evaluate"`` or ``"predict"``.
        dataset_dir: path of the dataset (the same path on every node).
        rank, world_size: this worker and the number of workers.
        runs: ``world_size + 1`` partition boundaries; this worker serves ``[runs[rank], runs[rank + 1])``.
        master_addr, master_port: torch.distributed rendezvous (rank 0's node).
        config: :class:`~graphtrain.train.config.TrainConfig` as a dict (``runtime`` nested).
        checkpoint_dir: where rank 0 writes checkpoints (fit), or None.
        resume_from: checkpoint to start from (fit: resume; evaluate/predict: the model to use).
        custom_model: a user ``torch.nn.Module`` (``config["model"] == "custom"``), else None.
        progress: a :class:`~graphtrain.train.group.ProgressChannel` actor handle, or None.
        splits: which splits ``"evaluate"`` scores.
        audit: ``"fit"`` records what it trained on (:mod:`graphtrain.train.audit`) in rank 0's result.
    """

    mode: str
    dataset_dir: str
    rank: int
    world_size: int
    runs: List[int]
    master_addr: str
    master_port: int
    config: Dict[str, Any]
    checkpoint_dir: Optional[str] = None
    resume_from: Optional[str] = None
    custom_model: Any = None
    progress: Any = None
    splits: List[str] = field(default_factory=lambda: ["val", "test"])
    audit: bool = False


@dataclass
class RoleSeeds:
    """A worker's seeds of one role: ``seeds`` (int64), ``is_pad`` (bool, padding entries) and
    ``present`` (the role has nodes on some worker; the same on all workers)."""

    seeds: np.ndarray
    is_pad: np.ndarray
    present: bool


# -- bring-up ------------------------------------------------------------------------------------
class _Context:
    """A worker's live state: process groups, dataset shard, data sources, device.

    ``runtime``: the worker's :class:`~graphtrain.train.runtime.WorkerRuntime` (default: one for
    the task's configuration, e.g. when a test builds a context without :func:`run_worker`).
    """

    def __init__(self, task: WorkerTask, runtime=None):
        import torch

        from graphtrain.comm import Exchange
        from graphtrain.partition.format import open_dataset
        from graphtrain.sampling.shard import open_worker_shard
        from graphtrain.train.config import TrainConfig
        from graphtrain.train.runtime import WorkerRuntime

        self.started = time.perf_counter()
        self.task = task
        self.cfg = TrainConfig.from_dict(task.config)
        self.runtime = runtime or WorkerRuntime(self.cfg.runtime, self.cfg.threads_per_worker, self.cfg.use_gpu)
        self.rank, self.world = task.rank, task.world_size
        _limit_threads(self.cfg.threads_per_worker)
        self.device = torch.device("cuda", 0) if self.cfg.use_gpu else torch.device("cpu")
        self.data_group = None
        if self.world > 1:
            import torch.distributed as dist

            dist.init_process_group(
                "nccl" if self.cfg.use_gpu else "gloo",
                init_method=f"tcp://{task.master_addr}:{task.master_port}",
                rank=self.rank, world_size=self.world, timeout=timedelta(seconds=self.cfg.collective_timeout_s),
            )
            self.data_group = dist.new_group(backend="gloo")
        self.runtime.process_groups_started(self.world)  # gloo pollers idle when asked (RuntimeConfig.gloo_poller)
        self.exchange = Exchange(self.rank, self.world, self.data_group)
        self.dataset = open_dataset(task.dataset_dir)
        meta = self.dataset.meta
        # node tables are gathered on the host (memory-mapped); the hop sampler uses cfg.backend
        self.shard = open_worker_shard(self.dataset, task.runs, self.exchange, backend="cpu")
        self.num_features = len(meta.node_schema.feature_names) or None
        self.num_classes = int(meta.node_schema.num_classes or 0)
        cache_nodes = int(self.cfg.feature_cache_mb * 2**20 // (4 * self.num_features)) if self.num_features else 0
        self.node_data = self.shard.distributed_node_data(self.num_features, meta.node_schema.label is not None,
                                                          cache_nodes)
        self.worker_seed = _derive_seed(self.cfg.seed, self.rank)
        self._node_times: Optional[np.ndarray] = None  # this worker's node times (per-node seed times), read once
        self.feature_norm = None  # FeatureNorm the model's input rows are standardised with (graphtrain.train.normalize)
        self.edge_norm = None  # FeatureNorm of the edge features (TrainConfig.edge_features), likewise
        self.cutoff = self._resolve_cutoff()
        self.edge_features = self._edge_features()  # BatchEdgeFeatures, or None
        self.report(WorkerStarted(self.rank, os.getpid(), _node_id()))

    def close(self) -> None:
        if self.world > 1:
            import torch.distributed as dist

            if dist.is_initialized():
                dist.destroy_process_group()

    def report(self, msg) -> None:
        """Post a progress message (:mod:`graphtrain.train.results`) to the driver, if it listens."""
        if self.task.progress is not None:
            self.task.progress.put.remote(msg)

    # -- seed times --------------------------------------------------------------------------------
    def _resolve_cutoff(self) -> Optional[int]:
        """The one seed time of all seeds (None: not temporal, or per-node times); a collective."""
        cfg = self.cfg
        if cfg.temporal is None or cfg.per_node_seed_time:
            return None
        if cfg.seed_time is not None:
            return int(cfg.seed_time)
        if "time" not in self.shard.edge_columns:
            raise ConfigError("temporal sampling needs the dataset's edge time column; it has none")
        return self._log_end()

    def _log_end(self) -> int:
        """The latest edge time of the dataset (a collective)."""
        mine = self.shard.max_edge_time()  # None: no edges (the worker's graph may be a view of several partitions)
        mine = np.iinfo(np.int64).min if mine is None else mine
        if self.world == 1:
            return mine
        # all_gather_sizes sums one entry per worker: each entry is one worker's own maximum
        return int(self.exchange.all_gather_sizes(mine).max())

    def _edge_features(self):
        """What attaches ``TrainConfig.edge_features`` to each batch (None without them); the
        reference time of ``time_delta`` is the cutoff, or else the end of the log (a collective)."""
        from graphtrain.graph import TIME
        from graphtrain.sampling import edge_features as ef
        from graphtrain.sampling.remote_features import DistributedEdgeData

        names = self.cfg.edge_features
        if not names:
            return None
        ref = None
        if "time_delta" in names:
            ref = self.cutoff if self.cutoff is not None else self._log_end()
        time_col = self.dataset.meta.edge_column(TIME)
        featurizer = ef.EdgeFeaturizer(tuple(names), ef.units_per_day(time_col.unit if time_col else None), ref)
        local = ef.LocalEdgeData.of(self.shard.graph, featurizer.columns)
        return ef.BatchEdgeFeatures(DistributedEdgeData(local, self.shard.book, self.exchange), featurizer)

    def training_edge_norm(self):
        """The edge features' mean and std over the in-edges of the training split's nodes (all
        workers; a collective like :meth:`training_feature_norm`), ``time_delta`` taken to the
        featurizer's reference time."""
        from graphtrain.train.normalize import training_stats

        ds, roles, start, feats = self.dataset, self.roles(), 0, self.edge_features
        parts = []
        for p in self.shard.parts:
            lo, hi = ds.book.node_range(p)
            g = ds.graph(p)
            mask = np.repeat(roles[start : start + hi - lo] == 0, np.diff(np.asarray(g.indptr, dtype=np.int64)))
            parts.append((p, _EdgeRows(g, feats.featurizer), mask))
            start += hi - lo
        return training_stats(parts, ds.num_parts, feats.featurizer.dim, self.exchange.all_reduce_sum)

    def edge_input(self, data) -> dict:
        """``{"edge_attr": standardised tensor}`` of a PyG batch for the model's call, or ``{}``
        without edge features (a model without edge input is called as before)."""
        if self.edge_features is None:
            return {}
        ea = data.edge_attr
        return {"edge_attr": ea if self.edge_norm is None else self.edge_norm.torch(ea)}

    def edge_rows(self):
        """Layer-wise inference's ``edge_features``: standardised features by global edge ID, read
        from this worker's partitions (None without edge features)."""
        if self.edge_features is None:
            return None
        local, featurizer, norm = self.edge_features.source.local, self.edge_features.featurizer, self.edge_norm

        def rows(e_id):
            x = featurizer(local.read(e_id))
            return x if norm is None else norm.numpy(x)

        return rows

    def seed_times(self, seeds: np.ndarray) -> Optional[np.ndarray]:
        """int64 seed time of each seed (None without temporal sampling); a collective with per-node times."""
        if self.cfg.temporal is None:
            return None
        if self.cutoff is not None:
            return np.full(seeds.shape[0], self.cutoff, dtype=np.int64)
        from graphtrain.sampling.remote_features import fetch_node_rows

        lo, _ = self.shard.node_range
        own = self._own_node_times()
        return fetch_node_rows(self.exchange, self.shard.book, seeds, lambda ids: own[ids - lo], np.int64)

    def _own_node_times(self) -> np.ndarray:
        if self._node_times is None:
            tables = [self.dataset.partition(p).time for p in self.shard.parts]
            if any(t is None for t in tables):
                raise ConfigError(f"seed_time {self.cfg.seed_time!r}: the dataset has no node time column")
            self._node_times = np.concatenate([np.asarray(t) for t in tables]) if tables else np.zeros(0, np.int64)
        return self._node_times

    # -- seeds -----------------------------------------------------------------------------------
    def roles(self) -> np.ndarray:
        """int8 role of each of this worker's nodes (0 train, 1 val, 2 test, -1 none), in ID order."""
        from graphtrain.train.splits import class_counts, dataset_roles, stratified_roles

        ds, parts = self.dataset, self.shard.parts
        labels = {p: np.asarray(ds.partition(p).labels) for p in parts}
        if all(ds.partition(p).split is not None for p in parts) and ds.meta.node_schema.split is not None:
            return np.concatenate([dataset_roles(ds.partition(p).split, labels[p]) for p in parts]) if parts else np.zeros(0, np.int8)
        counts = np.zeros((ds.num_parts, self.num_classes), dtype=np.int64)
        for p in parts:
            counts[p] = class_counts(labels[p], self.num_classes)
        counts = self.exchange.all_reduce_sum(counts)
        before = np.cumsum(counts, axis=0) - counts
        return np.concatenate([
            stratified_roles(labels[p], ds.book.node_range(p)[0], before[p], self.cfg.split_fractions, self.cfg.seed)
            for p in parts
        ])

    def seeds_by_role(self, deal_train: bool = True):
        """``{role: RoleSeeds}`` dealt to this worker, and the global train class counts.

        ``deal_train`` False (the training seeds come from a per-epoch sample, :meth:`role_sample`):
        the ``train`` entry holds no seeds (``present`` True), and the training nodes are not dealt.
        """
        from graphtrain.train.splits import ROLES, class_counts

        lo, _ = self.shard.node_range
        roles = self.roles()
        labels = self.shard.node_data.labels(np.arange(lo, lo + roles.size, dtype=np.int64))
        out = {}
        for name, code in ROLES.items():
            if name == "train" and not deal_train:
                out[name] = RoleSeeds(np.zeros(0, np.int64), np.zeros(0, bool), True)
                continue
            out[name] = self.deal(name, lo + np.flatnonzero(roles == code).astype(np.int64))
        train_counts = self.exchange.all_reduce_sum(class_counts(np.where(roles == 0, labels, -1), self.num_classes))
        return out, train_counts

    def deal(self, name: str, own: np.ndarray) -> RoleSeeds:
        """Seeds of role ``name`` -- this worker's own among them: ``own``, sorted global IDs -- dealt
        out evenly and padded to equal batch counts (a collective; see :mod:`graphtrain.train.splits`)."""
        from graphtrain.train.splits import balanced_chunk, pad_to_batches

        lo, _ = self.shard.node_range
        chunk, longest = balanced_chunk(self.exchange, own)
        bs = self.cfg.batch_size if name == "train" else (self.cfg.eval_batch_size or self.cfg.batch_size)
        # evaluation may pad an empty chunk with any node (padding is not scored); training may not
        fallback = None if name == "train" or self.shard.graph.num_nodes == 0 else lo
        seeds, is_pad = pad_to_batches(chunk, longest, bs, fallback)
        return RoleSeeds(seeds, is_pad, longest > 0)

    def role_sample(self, name: str, n: int, stream: int):
        """A :class:`~graphtrain.train.splits.StratifiedSample` of ``n`` of role ``name``'s nodes over
        all workers (a collective: the per-partition class counts are summed); its ``pick(epoch)``
        is this worker's own nodes in the sample."""
        from graphtrain.train.splits import ROLES, StratifiedSample

        ds, roles, code, C = self.dataset, self.roles(), ROLES[name], max(self.num_classes, 1)
        counts = np.zeros((ds.num_parts, C), dtype=np.int64)
        parts, start = [], 0
        for p in self.shard.parts:
            lo, hi = ds.book.node_range(p)
            offsets = np.flatnonzero(roles[start : start + hi - lo] == code)
            labels = np.asarray(ds.partition(p).labels)[offsets]
            # offsets within the partition, by class (int32 when the partition allows: half the memory)
            offsets = offsets.astype(np.int32 if hi - lo < 2**31 else np.int64)
            by_class = {int(c): offsets[labels == c] for c in np.unique(labels)}
            counts[p] = [by_class[c].size if c in by_class else 0 for c in range(C)]
            parts.append((p, lo, by_class))
            start += hi - lo
        counts = self.exchange.all_reduce_sum(counts)
        return StratifiedSample(parts, counts, n, self.cfg.seed, stream)

    # -- feature standardisation ---------------------------------------------------------------------
    def training_feature_norm(self):
        """The training split's per-feature mean and std over all workers (a collective; the same on
        any worker count); see :mod:`graphtrain.train.normalize`."""
        from graphtrain.train.normalize import training_stats

        ds, roles, start = self.dataset, self.roles(), 0
        parts = []
        for p in self.shard.parts:
            lo, hi = ds.book.node_range(p)
            parts.append((p, ds.partition(p).features, roles[start : start + hi - lo] == 0))
            start += hi - lo
        return training_stats(parts, ds.num_parts, self.num_features, self.exchange.all_reduce_sum)

    def model_input(self, x):
        """Feature rows ``x`` (a tensor) as the model reads them: standardised, or raw without statistics."""
        return x if self.feature_norm is None else self.feature_norm.torch(x)

    # -- model -----------------------------------------------------------------------------------
    def model_config(self):
        from graphtrain.train.models import ModelConfig

        cfg = self.cfg
        return ModelConfig(cfg.model, self.num_features, max(self.num_classes, 2), cfg.hidden, cfg.num_layers,
                           cfg.dropout, cfg.heads, cfg.activation_checkpointing,
                           edge_dim=len(cfg.edge_features or ()), aggregators=tuple(cfg.aggregators), ego=cfg.ego)

    def build_model(self, config=None):
        """The model (``config``: a ModelConfig, default: from the training config and the dataset),
        initialised from the run's seed: the same weights on every worker and every run (drawn in a
        fork of torch's CPU RNG: the process's global RNG is left as it was)."""
        import torch

        from graphtrain.train.models import build_model

        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(_derive_seed(self.cfg.seed, 0x1A17))
            if self.cfg.model == "custom":
                model = copy.deepcopy(self.task.custom_model)
            else:
                model = build_model(config or self.model_config())
        return model.to(self.device)

    def sampler(self, seed: int):
        """The neighbour sampler of this run (temporal when the configuration says so)."""
        from graphtrain.sampling.neighbor import NeighborSampler

        cfg = self.cfg
        return NeighborSampler(self.shard.hop_sampler(cfg.backend, self.node_data), list(cfg.fanouts), temporal=cfg.temporal,
                               strict=cfg.temporal_strict, seed=seed, backend=cfg.backend)

    def loader(self, seeds: np.ndarray, batch_size: int, shuffle: bool, seed: int, labelled: bool = True):
        """A loader over ``seeds``; their labels (``labelled``) and seed times are fetched once here
        (collectives), features per batch."""
        from graphtrain.sampling.loader import NodeLoader

        data = _SeedLabels(self.node_data, seeds) if labelled else _FeaturesOnly(self.node_data)
        return NodeLoader(self.sampler(seed), seeds, batch_size, seed_time=self.seed_times(seeds), node_data=data,
                          edge_features=self.edge_features, shuffle=shuffle, seed=seed, prefetch=self.cfg.runtime.prefetch)

    def broadcast(self, obj):
        """``obj`` of rank 0 on every worker (over the data-plane group)."""
        if self.world == 1:
            return obj
        import torch.distributed as dist

        box = [obj]
        dist.broadcast_object_list(box, src=0, group=self.data_group)
        return box[0]


class _EdgeRows:
    """A partition's edge features as rows ``[e_p, D]`` computed slice by slice (what
    :func:`~graphtrain.train.normalize.training_stats` reads block by block): nothing per edge is
    held beyond one block."""

    def __init__(self, graph, featurizer):
        from graphtrain.sampling.edge_features import LocalEdgeData

        self._data = LocalEdgeData([graph], featurizer.columns)
        self._start = graph.edge_start
        self._featurizer = featurizer
        self.shape = (graph.num_edges, featurizer.dim)

    def __getitem__(self, rows: slice) -> np.ndarray:
        a, b, _ = rows.indices(self.shape[0])
        return self._featurizer(self._data.read(np.arange(self._start + a, self._start + b, dtype=np.int64)))


class _FeaturesOnly(NodeDataSource):
    """Node data without labels (scoring needs none)."""

    def __init__(self, node_data):
        self.node_data = node_data

    @property
    def num_features(self):
        return self.node_data.num_features

    @property
    def concurrent_safe(self):
        return self.node_data.concurrent_safe

    def features(self, ids):
        return self.node_data.features(ids)

    def labels(self, ids):
        return None


class _SeedLabels(_FeaturesOnly):
    """Node data whose ``labels`` are looked up among a fixed seed set fetched once (a collective at
    construction), so a batch costs one feature fetch instead of a feature and a label fetch."""

    def __init__(self, node_data, seeds: np.ndarray):
        super().__init__(node_data)
        self._ids = np.unique(seeds)
        self._labels = node_data.labels(self._ids)

    def labels(self, ids):
        pos = np.searchsorted(self._ids, ids)
        if pos.size and (pos.max() >= self._ids.size or np.any(self._ids[pos] != ids)):
            raise ConfigError("labels were asked for nodes that are not seeds of this loader")
        return self._labels[pos]


def _limit_threads(n: int) -> None:
    import numba
    import torch

    torch.set_num_threads(n)
    numba.set_num_threads(min(n, numba.config.NUMBA_NUM_THREADS))


def _derive_seed(seed: int, *parts: int) -> int:
    from graphtrain.kernels.rng import combine_np, seed_key

    key = seed_key(int(seed))
    for p in parts:
        key = combine_np(key, np.uint64(p))
    return int(np.uint64(key) >> np.uint64(1))


def _node_id() -> str:
    """The Ray node this worker runs on ("local" outside Ray)."""
    import ray

    if not ray.is_initialized():  # run outside Ray (tests, profiling): do not start one
        return "local"
    return ray.get_runtime_context().get_node_id()


def _to_pyg(batch, device):
    data = batch.to_pyg()
    return data.to(device) if device.type != "cpu" else data


# -- evaluation ------------------------------------------------------------------------------------
def _sampled_probs(ctx: _Context, model, seeds: np.ndarray, is_pad: np.ndarray, labelled: bool = True):
    """``(ids, labels, probs)`` of the non-padding ``seeds`` in order, from sampled mini-batches
    (a collective; ``labels`` None unless ``labelled``)."""
    import torch

    cfg = ctx.cfg
    bs = cfg.eval_batch_size or cfg.batch_size
    ids, labels, probs = [], [], []
    model.eval()
    if seeds.size:
        loader = ctx.loader(seeds, bs, shuffle=False, seed=_derive_seed(cfg.seed, 1_000_003, ctx.rank), labelled=labelled)
        with torch.no_grad():
            for b, batch in enumerate(loader.batches(0)):
                data = _to_pyg(batch, ctx.device)
                with torch.autocast(device_type="cuda", enabled=cfg.amp and ctx.device.type == "cuda"):
                    out = model(ctx.model_input(data.x), data.edge_index, data.num_sampled_nodes,
                                data.num_sampled_edges, **ctx.edge_input(data))[: batch.batch_size]
                keep = ~is_pad[b * bs : b * bs + batch.batch_size]
                ids.append(batch.seeds[keep])
                if labelled:
                    labels.append(batch.y[keep])
                probs.append(torch.softmax(out.float(), dim=1).cpu().numpy()[keep].astype(np.float64))
    C = max(ctx.num_classes, 2)
    ids = np.concatenate(ids) if ids else np.zeros(0, np.int64)
    labels = (np.concatenate(labels) if labels else np.zeros(0, np.int64)) if labelled else None
    probs = np.concatenate(probs) if probs else np.zeros((0, C))
    return ids, labels, probs


def _predict_split(ctx: _Context, model, seeds: np.ndarray, is_pad: np.ndarray):
    """Class probabilities of ``seeds`` (a collective); gathered at rank 0 as ``(ids, labels, probs)``."""
    ids, labels, probs = _sampled_probs(ctx, model, seeds, is_pad)
    meta = ctx.exchange.gather_rows(np.stack([ids, labels], axis=1))
    probs = ctx.exchange.gather_rows(probs)
    if ctx.rank != 0:
        return None
    return meta[:, 0], meta[:, 1], probs


def _evaluate(ctx: _Context, model, seeds, names, threshold=None) -> Optional[Dict[str, dict]]:
    """Metrics of the named splits at rank 0 (None elsewhere). ``test`` uses ``val``'s threshold."""
    from graphtrain.train.evaluation import split_metrics

    out = {}
    for name in names:
        got = _predict_split(ctx, model, seeds[name].seeds, seeds[name].is_pad)
        if ctx.rank == 0:
            _, labels, probs = got
            t = threshold if name != "val" else None
            out[name] = split_metrics(labels, probs, t, ctx.cfg.recall_k)
            if name == "val":
                threshold = out[name].get("threshold")
    return out if ctx.rank == 0 else None


def _all_gather_on_gradient_group(ctx: _Context, row) -> np.ndarray:
    """float64 ``[world, len(row)]``: every rank's ``row``, in rank order (a collective). Mid-epoch the
    loader's prefetch thread owns the data-plane group, so this uses the gradients' group."""
    if ctx.world == 1:
        return np.array([row], dtype=np.float64)
    import torch
    import torch.distributed as dist

    mine = torch.tensor(row, dtype=torch.float64, device=ctx.device)
    rows = [torch.zeros_like(mine) for _ in range(ctx.world)]
    dist.all_gather(rows, mine)
    return torch.stack(rows).cpu().numpy()


def _has(seeds, name) -> bool:
    """The split has nodes on some worker (the same answer on every worker)."""
    return seeds[name].present


def _model_record(ctx: _Context, model) -> dict:
    if ctx.cfg.model == "custom":
        return {"name": "custom", "class": f"{type(model).__module__}.{type(model).__qualname__}"}
    return ctx.model_config().to_dict()


# -- evaluate / predict -----------------------------------------------------------------------------
def _load_model(ctx: _Context):
    """The checkpoint's model (its own ModelConfig), read by rank 0 and broadcast; sets
    ``ctx.feature_norm`` to the checkpoint's feature standardisation."""
    from graphtrain.train import checkpoint as ck
    from graphtrain.train.models import ModelConfig

    from graphtrain.train.normalize import FeatureNorm

    loaded = None
    if ctx.rank == 0:
        man = ck.read_manifest(ctx.task.resume_from)
        loaded = {"model": man.model, "feature_norm": man.feature_norm, "edge_norm": man.edge_norm,
                  "states": ck.load_states(ctx.task.resume_from, names=("model",))}
    loaded = ctx.broadcast(loaded)
    ctx.feature_norm = FeatureNorm.from_dict(loaded["feature_norm"])  # None: the model reads raw features
    ctx.edge_norm = FeatureNorm.from_dict(loaded["edge_norm"])
    config = None if ctx.cfg.model == "custom" else ModelConfig.from_dict(loaded["model"])
    model = ctx.build_model(config)
    model.load_state_dict(loaded["states"]["model"])
    return model


def _evaluate_mode(ctx: _Context) -> EvaluateWorkerResult:
    seeds, _ = ctx.seeds_by_role()
    model = _load_model(ctx)
    names = [s for s in ctx.task.splits if _has(seeds, s)]
    if "test" in names and "val" not in names and _has(seeds, "val"):
        names = ["val"] + names
    return EvaluateWorkerResult(ctx.rank, _evaluate(ctx, model, seeds, names))


def _predict_mode(ctx: _Context) -> PredictWorkerResult:
    """Every node of this worker scored: layer-wise over all in-edges (over those no later than the
    cutoff when temporal), or -- per-node seed times -- with the temporal sampler, each node bounded
    by its own time. The scores go to a Parquet file of this rank's in the run's scratch directory
    (:mod:`graphtrain.train.score_file`), a row group at a time; the driver concatenates the ranks' files."""
    import torch

    from graphtrain.train.score_file import write_rank_scores

    model = _load_model(ctx)
    lo, hi = ctx.shard.node_range
    ids = np.arange(lo, hi, dtype=np.int64)
    if ctx.cfg.per_node_seed_time:
        probs = _sampled_node_probs(ctx, model, ids)
    else:
        logits = layerwise_logits_for(ctx, model)  # features read by ID as the chunks need them
        probs = torch.softmax(torch.from_numpy(logits), dim=1).numpy()
    del ids
    path = Path(ctx.cfg.inference_dir) / f"scores-rank{ctx.rank:05d}.parquet"
    data = ctx.shard.node_data
    rows = write_rank_scores(path, ctx.dataset.meta.id_type, [ctx.dataset.raw_ids(p) for p in ctx.shard.parts], probs,
                             lambda a, b: data.labels(np.arange(lo + a, lo + b, dtype=np.int64)))
    return PredictWorkerResult(ctx.rank, str(path), rows)


def _sampled_node_probs(ctx: _Context, model, ids: np.ndarray) -> np.ndarray:
    """Class probabilities of this worker's nodes ``ids`` (in order) from sampled mini-batches; every
    worker runs the same number of batches (padded), as the collectives need."""
    from graphtrain.train.splits import pad_to_batches

    bs = ctx.cfg.eval_batch_size or ctx.cfg.batch_size
    longest = int(ctx.exchange.all_gather_sizes(ids.size).max())
    seeds, is_pad = pad_to_batches(ids, longest, bs, fallback=0)
    got, _, probs = _sampled_probs(ctx, model, seeds, is_pad, labelled=False)
    assert np.array_equal(got, ids)
    return probs


def layerwise_logits_for(ctx: _Context, model, feats=None):
    """Layer-wise logits of the worker's nodes; ``feats``: their input rows, or None: their features
    read from the node tables chunk by chunk (standardised as the model reads them)."""
    from graphtrain.train.inference import layerwise_logits

    if feats is None:
        data, norm = ctx.shard.node_data, ctx.feature_norm
        feats = data.features if norm is None else (lambda ids: norm.numpy(data.features(ids)))
    backend = "cpu" if ctx.cfg.backend in ("auto", "cuda") else ctx.cfg.backend
    return layerwise_logits(model, ctx.shard, feats, ctx.cfg.inference_chunk, ctx.device, backend,
                            amp=ctx.cfg.amp and ctx.device.type == "cuda", max_time=ctx.cutoff,
                            strict=ctx.cfg.temporal_strict, embedding_dtype=ctx.cfg.inference_dtype,
                            scratch_dir=ctx.cfg.inference_dir, on_chunk=_chunk_reporter(ctx),
                            edge_features=ctx.edge_rows())


def _chunk_reporter(ctx: _Context):
    """Rank 0 posts :class:`~graphtrain.train.results.LayerChunkDone` about every ``log_every`` chunks
    (and after each layer's last), for the driver's progress bar; None on the other ranks."""
    from graphtrain.train.results import LayerChunkDone

    if ctx.rank != 0:
        return None

    def report(layer: int, num_layers: int, chunk: int, num_chunks: int) -> None:
        if chunk % max(ctx.cfg.log_every, 1) == 0 or chunk == num_chunks:
            ctx.report(LayerChunkDone(layer, num_layers, chunk, num_chunks))

    return report


def run_worker(task: WorkerTask):
    """Run one worker of a fit / evaluate / predict (the body of each Ray task); returns its
    :class:`~graphtrain.train.results.FitWorkerResult`, ``EvaluateWorkerResult`` or ``PredictWorkerResult``."""
    from graphtrain.train.config import TrainConfig
    from graphtrain.train.runtime import WorkerRuntime

    cfg = TrainConfig.from_dict(task.config)
    runtime = WorkerRuntime(cfg.runtime, cfg.threads_per_worker, cfg.use_gpu)
    with runtime.pinned(task.rank):
        ctx = _Context(task, runtime)
        try:
            # the imports and the context are the bulk of the process's objects: frozen, so that no
            # worker stalls the others for a full collection over them (see gc_freeze)
            with runtime.setup_frozen():
                if task.mode == "fit":
                    from graphtrain.train.loop import TrainingLoop

                    result = TrainingLoop(ctx, runtime).run()
                    report = runtime.report
                    result.stats.pinned_cores = report.pinned_cores
                    result.stats.idle_gloo_pollers = report.idle_gloo_pollers
                    result.stats.frozen_objects = report.frozen_objects
                    return result
                if task.mode == "evaluate":
                    return _evaluate_mode(ctx)
                if task.mode == "predict":
                    return _predict_mode(ctx)
                raise ConfigError(f"unknown worker mode {task.mode!r}")
        finally:
            ctx.close()
