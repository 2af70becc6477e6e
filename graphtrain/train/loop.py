"""The training loop of one worker: :class:`TrainingLoop` (``step``, ``epoch``, ``evaluate``, ``checkpoint``).

Every worker builds one over its :class:`~graphtrain.train.worker._Context` and calls :meth:`run`.
All ranks run the same number of batches per epoch and take the same decisions (rank 0 decides,
the others receive its decision), so their collectives line up.

Randomness: each optimizer step's dropout masks come from a ``torch.Generator`` seeded with
``f(worker_seed, global_step)`` (``worker_seed = f(seed, rank)``; see
:mod:`graphtrain.train.dropout`); the loader and the sampler key their draws with the worker seed
and the epoch. A checkpoint's position -- epoch, batch, ``global_step`` -- is therefore its RNG
state, and a resumed run redraws exactly what the uninterrupted one drew.

Schedule: ``TrainConfig.epoch_budget`` epochs at most, and ``max_steps`` optimizer steps at most
(the step that reaches it ends its epoch: the loader is asked for no batch beyond it, so no worker
samples ahead into a batch the others never run); validation (with the early-stopping bookkeeping
and the epoch-end checkpoint) every ``TrainConfig.validate_every`` epochs and at the last epoch --
every epoch unless ``min_steps`` extended the run.

Budgets for huge graphs: with ``train_sample`` each epoch's training seeds are a new stratified
sample (:class:`~graphtrain.train.splits.StratifiedSample`, a function of the seed and the epoch),
dealt out and loaded at the epoch's start; ``batches_per_epoch`` counts the sample. With
``val_sample`` the in-training validations score a fixed stratified sample of the validation
split; :meth:`TrainingLoop.finish` scores the whole val and test splits.
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Dict, List, Optional

import numpy as np

from graphtrain.errors import ConfigError
from graphtrain.train.results import BatchDone, CheckpointWritten, EpochDone, FitWorkerResult, WorkerStats

MANIFEST_STATE = ("epoch", "batch", "global_step", "history", "early_stopping", "finished")


@dataclass
class LoopState:
    """The position of a run, as its checkpoints store it (rank 0's decisions included)."""

    epoch: int = 0
    batch: int = 0
    global_step: int = 0
    history: List[dict] = field(default_factory=list)
    early_stopping: Dict[str, object] = field(default_factory=lambda: {"best": None, "best_epoch": None,
                                                                        "bad_epochs": 0})
    finished: bool = False


class TrainingLoop:
    """One worker's ``fit``: the model, optimizer and loader over a context, and the loop's state."""

    def __init__(self, ctx, runtime):
        import torch

        cfg, self.ctx, self.cfg = ctx.cfg, ctx, ctx.cfg
        self.fused_dropout = runtime.config.fused_dropout
        sampled = cfg.train_sample is not None
        seeds, train_counts = ctx.seeds_by_role(deal_train=not sampled)
        if ctx.num_classes < 2 or np.count_nonzero(train_counts) < 2:
            raise ConfigError(f"training needs labelled nodes of at least two classes; the training split has class "
                              f"counts {train_counts.tolist()}")
        self.seeds = seeds
        self.train_sampler = self.val_seeds = None
        self.train_sample_size = self.val_sample_size = None  # seeds of each epoch's / validation's sample
        if sampled:
            from graphtrain.train.splits import TRAIN_SAMPLE_STREAM

            self.train_sampler = ctx.role_sample("train", cfg.train_sample, TRAIN_SAMPLE_STREAM)
            self.train_sample_size = self.train_sampler.size
            if self.train_sampler.size < ctx.world:
                raise ConfigError(f"train_sample {cfg.train_sample} leaves {self.train_sampler.size} training seeds per "
                                  f"epoch for {ctx.world} workers; every worker needs one: raise it to >= {ctx.world}")
            if self.train_sampler.everything:  # the whole split every epoch: exactly the run without a sample
                self.train_sampler = None
                self.seeds["train"] = ctx.deal("train", self._own_role_nodes(0))
        if cfg.val_sample is not None and self.seeds["val"].present:
            from graphtrain.train.splits import VAL_SAMPLE_STREAM

            val_sampler = ctx.role_sample("val", cfg.val_sample, VAL_SAMPLE_STREAM)
            self.val_sample_size = val_sampler.size
            own_val = val_sampler.pick(0)
            self.val_seeds = dict(self.seeds, val=ctx.deal("val", own_val))
        if cfg.normalize and ctx.num_features:
            ctx.feature_norm = ctx.training_feature_norm()
        if cfg.normalize and ctx.edge_features is not None:
            ctx.edge_norm = ctx.training_edge_norm()
        self.audit = self.fed = None  # fed: what this worker's batches carried in the epoch (an audited run)
        if ctx.task.audit:
            from graphtrain.train.audit import EpochRecord

            roles = ctx.exchange.gather_rows(ctx.roles().astype(np.int64)[:, None])  # runs are in rank order
            self.audit = {"roles": None if roles is None else roles[:, 0].astype(np.int8), "epochs": []}
            if self.val_seeds is not None:  # the validation sample's nodes, sorted
                got = ctx.exchange.gather_rows(own_val[:, None])
                self.audit["val_sample"] = None if got is None else np.sort(got[:, 0])
            self.fed = EpochRecord()
        self.model = ctx.build_model()
        self.optimizer = torch.optim.Adam(self.model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
        self.use_amp = cfg.amp and ctx.device.type == "cuda"
        self.scaler = torch.amp.GradScaler("cuda") if self.use_amp else None
        self.weight = None
        if cfg.class_weight == "balanced":
            n = train_counts.sum()
            w = np.where(train_counts > 0, n / (len(train_counts) * np.maximum(train_counts, 1)), 0.0)
            self.weight = torch.tensor(w, dtype=torch.float32, device=ctx.device)
        self.loader, self.loader_epoch = None, None  # loader_epoch: the epoch whose sample the loader holds
        if self.train_sampler is None:
            self.loader = ctx.loader(self.seeds["train"].seeds, cfg.batch_size, shuffle=True, seed=ctx.worker_seed)
            self.batches_per_epoch = len(self.loader)
        else:  # the longest worker's share of the sample (balanced_chunk), in batches
            self.batches_per_epoch = -(-(-(-self.train_sampler.size // ctx.world)) // cfg.batch_size)
        self.max_epochs = cfg.epoch_budget(self.batches_per_epoch)  # epochs, or more to reach min_steps steps
        self.validate_every = cfg.validate_every(self.batches_per_epoch)
        self.state = LoopState()
        self.best_state = None
        self.epoch_loss = (0.0, 0)  # (sum, batches) of this rank's losses in the epoch in progress, in batch order
        self.stats = WorkerStats(startup_seconds=0.0)
        if ctx.task.resume_from:
            self._resume(ctx.task.resume_from)
        self.ddp = self.model
        if ctx.world > 1:
            from torch.nn.parallel import DistributedDataParallel

            self.ddp = DistributedDataParallel(self.model, device_ids=[0] if ctx.device.type == "cuda" else None)
        self.stats.startup_seconds = time.perf_counter() - ctx.started

    def _resume(self, path: str) -> None:
        from graphtrain.train import checkpoint as ck

        ctx, nb = self.ctx, self.batches_per_epoch
        loaded = None
        if ctx.rank == 0:
            man = ck.read_manifest(path)
            loaded = {"manifest": {k: getattr(man, k) for k in MANIFEST_STATE + ("batches_per_epoch", "epoch_losses")},
                      "states": ck.load_states(path)}
        loaded = ctx.broadcast(loaded)
        man, states = loaded["manifest"], loaded["states"]
        if man["batches_per_epoch"] != nb and man["batch"] != 0:
            raise ConfigError(f"checkpoint {path} was taken mid-epoch with {man['batches_per_epoch']} batches "
                              f"per epoch; this run has {nb} (a different worker count or batch size); resume it with the "
                              "same settings, or from an epoch-end checkpoint")
        self.state = LoopState(**{k: man[k] for k in MANIFEST_STATE})
        if man["batch"] and len(man["epoch_losses"]) == ctx.world:  # this rank's loss sum of the epoch so far
            self.epoch_loss = (float(man["epoch_losses"][ctx.rank][0]), int(man["epoch_losses"][ctx.rank][1]))
        self.model.load_state_dict(states["model"])
        self.optimizer.load_state_dict(states["optimizer"])
        if self.scaler is not None and "scaler" in states:
            self.scaler.load_state_dict(states["scaler"])
        self.best_state = states.get("best_model")

    def _own_role_nodes(self, code: int) -> np.ndarray:
        """int64 sorted global IDs of this worker's nodes of role ``code`` (a collective without a stored split)."""
        lo, _ = self.ctx.shard.node_range
        return lo + np.flatnonzero(self.ctx.roles() == code).astype(np.int64)

    def epoch_loader(self, epoch: int):
        """The loader of ``epoch``'s training seeds: the one loader over the whole split, or -- with
        ``train_sample`` -- one over the epoch's sample, dealt out here (collectives, at the epoch's start)."""
        if self.train_sampler is None or self.loader_epoch == epoch:
            return self.loader
        ctx, cfg = self.ctx, self.cfg
        self.loader = None  # the previous epoch's (its labels and seed times) goes before the next is built
        dealt = ctx.deal("train", self.train_sampler.pick(epoch))
        self.loader = ctx.loader(dealt.seeds, cfg.batch_size, shuffle=True, seed=ctx.worker_seed)
        self.loader_epoch = epoch
        assert len(self.loader) == self.batches_per_epoch, (len(self.loader), self.batches_per_epoch)
        return self.loader

    # -- the loop ------------------------------------------------------------------------------------
    def run(self) -> FitWorkerResult:
        """Train to the end of the budget (epochs, ``max_steps``) or an early stop, then evaluate and
        checkpoint the best model. An epoch begun (a mid-epoch resume) always reaches its end."""
        state, cfg = self.state, self.cfg
        while not state.finished and state.epoch < self.max_epochs:
            if state.batch == 0 and cfg.steps_done(state.global_step):
                break  # the step budget is spent at an epoch boundary (a resume with a lower max_steps)
            self.epoch()
        return self.finish()

    def planned_epochs(self) -> int:
        """Epochs this run will train unless it stops early (shown in the progress): the epoch budget,
        or fewer when ``max_steps`` ends it sooner."""
        state, cfg, nb = self.state, self.cfg, max(self.batches_per_epoch, 1)
        if cfg.max_steps is None:
            return self.max_epochs
        first = state.global_step - state.batch  # global step at the start of the current epoch
        return min(self.max_epochs, state.epoch + max(-(-(cfg.max_steps - first) // nb), 1))

    def step(self, batch) -> float:
        """One optimizer step on ``batch``; returns its loss. Dropout draws from this step's generator."""
        import torch
        from torch.nn import functional as F

        from graphtrain.train.dropout import step_randomness
        from graphtrain.train.worker import _derive_seed, _to_pyg

        ctx = self.ctx
        generator = torch.Generator().manual_seed(_derive_seed(ctx.worker_seed, self.state.global_step))
        data = _to_pyg(batch, ctx.device)
        self.optimizer.zero_grad(set_to_none=True)
        with step_randomness(generator, self.fused_dropout), torch.autocast(device_type="cuda", enabled=self.use_amp):
            out = self.ddp(ctx.model_input(data.x), data.edge_index, data.num_sampled_nodes,
                           data.num_sampled_edges, **ctx.edge_input(data))[: batch.batch_size]
            loss = F.cross_entropy(out.float(), data.y, weight=self.weight)
        if self.scaler is not None:
            self.scaler.scale(loss).backward()
            self.scaler.step(self.optimizer)
            self.scaler.update()
        else:
            loss.backward()
            self.optimizer.step()
        return float(loss.detach())

    def epoch(self) -> None:
        """The batches of the current epoch (from the checkpoint's batch when resumed), then the epoch's
        end: loss, validation when due, the early-stopping decision, the epoch-end checkpoint."""
        ctx, cfg, state, stats, nb = self.ctx, self.cfg, self.state, self.stats, self.batches_per_epoch
        epoch = state.epoch
        num_epochs = self.planned_epochs()
        loader = self.epoch_loader(epoch)
        # max_steps: the epoch ends at the step that reaches it (on every worker: global_step is the same)
        stop = nb if cfg.max_steps is None else min(nb, state.batch + max(cfg.max_steps - state.global_step, 0))
        self.ddp.train()
        before = ctx.exchange.stats.as_dict()
        t0, cpu0 = time.perf_counter(), time.process_time()
        done = 0  # batches of this process in the epoch (a resumed epoch: those after the checkpoint)
        for b, batch in enumerate(loader.batches(epoch, state.batch, stop), start=state.batch):
            loss = self.step(batch)
            done += 1
            if self.fed is not None:
                self.fed.add(batch.seeds, batch.y, batch.x[: batch.batch_size])
            self.epoch_loss = (self.epoch_loss[0] + loss, self.epoch_loss[1] + 1)
            stats.seeds += batch.batch_size
            state.batch, state.global_step = b + 1, state.global_step + 1
            if ctx.rank == 0 and (b + 1) % cfg.log_every == 0:
                ctx.report(BatchDone(epoch, b + 1, nb, loss))
            if cfg.checkpoint_every and (b + 1) % cfg.checkpoint_every == 0 and b + 1 < stop:
                self.checkpoint()
        after = ctx.exchange.stats.as_dict()
        epoch_seconds = time.perf_counter() - t0
        stats.seconds += epoch_seconds
        stats.cpu_seconds += time.process_time() - cpu0  # every thread of this worker process
        stats.batches += done
        stats.bytes_sent += after["bytes_sent"] - before["bytes_sent"]
        stats.bytes_received += after["bytes_received"] - before["bytes_received"]
        if self.fed is not None:
            from graphtrain.train.audit import EpochRecord, distinct_seeds

            rows = ctx.exchange.gather_rows(self.fed.rows())
            if ctx.rank == 0:
                self.audit["epochs"].append(distinct_seeds(rows))
            self.fed = EpochRecord()
        losses_all = ctx.exchange.all_reduce_sum(np.array(self.epoch_loss, dtype=np.float64))
        record = {"epoch": epoch, "loss": float(losses_all[0] / losses_all[1]) if losses_all[1] else None,
                  "seconds": epoch_seconds, "batches": self.epoch_loss[1], "val": None}
        if self.val_seeds is not None:
            record["val_sample"] = self.val_sample_size  # validated on a sample of the split, not all of it
        self.epoch_loss = (0.0, 0)
        # the last epoch: the epoch budget's, or the step budget's (max_steps)
        last = epoch + 1 >= self.max_epochs or cfg.steps_done(state.global_step)
        # an extended run (min_steps) validates every validate_every epochs and at its last one
        due = (epoch + 1) % self.validate_every == 0 or last
        val = None
        if due and self.seeds["val"].present:
            t_eval = time.perf_counter()
            val = self.evaluate(["val"], self.val_seeds)
            stats.eval_seconds += time.perf_counter() - t_eval
        decision = self._decide(record, val, due) if ctx.rank == 0 else None
        decision = ctx.broadcast(decision)
        state.history.append(decision["record"])
        state.early_stopping = decision["early_stopping"]
        state.epoch, state.batch = epoch + 1, 0
        state.finished = decision["stop"] or last
        if ctx.rank == 0:
            ctx.report(EpochDone(num_epochs=num_epochs, stopped_early=decision["stop"], **decision["record"]))
        if due and not state.finished:
            self.checkpoint()

    def _decide(self, record: dict, val: Optional[Dict[str, dict]], due: bool) -> dict:
        """Rank 0: the epoch's record, the early-stopping state and whether to stop."""
        from graphtrain.train.evaluation import improved

        cfg, es = self.cfg, dict(self.state.early_stopping)
        stop = False
        if due:
            value = (val or {}).get("val", {}).get(cfg.monitor)
            record["val"] = (val or {}).get("val")
            if improved(value, es["best"], cfg.min_delta):
                es.update(best=value, best_epoch=record["epoch"], bad_epochs=0)
                self.best_state = _cpu_state(self.model)
            elif value is not None:
                es["bad_epochs"] += 1
            # patience counts validations; on a small training set (an epoch of a step or two) it waits for min_steps
            stop = (cfg.patience is not None and es["bad_epochs"] >= cfg.patience
                    and self.state.global_step >= cfg.min_steps)
        return {"stop": stop, "record": record, "early_stopping": es}

    def evaluate(self, names: List[str], seeds=None) -> Optional[Dict[str, dict]]:
        """Metrics of the named splits of the current model at rank 0 (None elsewhere); a collective.
        ``seeds``: ``{role: RoleSeeds}`` to score (default: the whole splits)."""
        from graphtrain.train.worker import _evaluate

        return _evaluate(self.ctx, self.model, seeds or self.seeds, names)

    def checkpoint(self, finished: bool = False, model_state=None) -> Optional[str]:
        """Write a checkpoint of the current position (rank 0 writes; every rank must call it: mid-epoch,
        every rank's loss sum so far goes into it through a collective). Returns its path at rank 0."""
        from graphtrain.train import checkpoint as ck
        from graphtrain.train.worker import _all_gather_on_gradient_group, _model_record

        ctx, cfg, task, state = self.ctx, self.cfg, self.ctx.task, self.state
        if task.checkpoint_dir is None:
            return None
        partial = _all_gather_on_gradient_group(ctx, self.epoch_loss) if state.batch else None
        if ctx.rank != 0:
            return None
        man = ck.CheckpointManifest(
            epoch=state.epoch, batch=state.batch, global_step=state.global_step,
            batches_per_epoch=self.batches_per_epoch, num_workers=ctx.world, model=_model_record(ctx, self.model),
            train=cfg.to_dict(),
            dataset={"path": str(task.dataset_dir), "num_nodes": ctx.dataset.meta.num_nodes,
                     "num_edges": ctx.dataset.meta.num_edges, "num_parts": ctx.dataset.num_parts},
            history=state.history, early_stopping=state.early_stopping, finished=finished,
            epoch_losses=[] if partial is None else partial.tolist(),
            feature_norm=ctx.feature_norm.to_dict() if ctx.feature_norm is not None else None,
            edge_norm=ctx.edge_norm.to_dict() if ctx.edge_norm is not None else None)
        path = ck.save_checkpoint(task.checkpoint_dir, man, {
            "model": model_state or _cpu_state(self.model), "optimizer": self.optimizer.state_dict(),
            "best_model": self.best_state, "scaler": self.scaler.state_dict() if self.scaler is not None else None},
            keep=cfg.keep_checkpoints)
        ctx.report(CheckpointWritten(str(path), state.epoch, state.batch))
        return str(path)

    def finish(self) -> FitWorkerResult:
        """The final model -- the best by the monitored metric when there was a validation split --
        evaluated on val and test and checkpointed as finished."""
        ctx, state = self.ctx, self.state
        if ctx.rank == 0 and self.best_state is not None:
            self.model.load_state_dict(self.best_state)
        if ctx.world > 1:
            final_state = ctx.broadcast(_cpu_state(self.model) if ctx.rank == 0 else None)
            self.model.load_state_dict(final_state)
        t_eval = time.perf_counter()
        metrics = self.evaluate([s for s in ("val", "test") if self.seeds[s].present])
        path = self.checkpoint(finished=True)
        self.stats.final_seconds = time.perf_counter() - t_eval
        if ctx.rank != 0:
            return FitWorkerResult(rank=ctx.rank, stats=self.stats)
        reached = self.cfg.steps_done(state.global_step)
        return FitWorkerResult(
            rank=0, stats=self.stats, metrics=metrics, history=state.history,
            best_epoch=state.early_stopping["best_epoch"],
            # early stopping (patience), not the step budget, ended the run before its last epoch
            stopped_early=bool(state.history and len(state.history) < self.max_epochs and not reached),
            global_step=state.global_step, batches_per_epoch=self.batches_per_epoch, checkpoint=path, audit=self.audit,
            max_steps_reached=reached, train_sample=self.train_sample_size, val_sample=self.val_sample_size)


def _cpu_state(model) -> dict:
    return {k: v.detach().to("cpu", copy=True) for k, v in model.state_dict().items()}
