"""Training on partitions a worker views (issue 20 item 2) is training on their merged graph, bit for bit.

The workers' own training loop runs here without Ray (a :class:`~graphtrain.train.worker._Context`
per process, as ``tests/train/test_inference.py`` does), audited: once with each worker's run of
partitions viewed (the default) and once merged (``open_worker_shard(..., merge=True)``, the
former layout). The loss history, the validation and test metrics, the audit (roles; each epoch's
seeds, labels and feature-row digests) and the final model's weights must be identical. 1 worker
over the 4-partition dataset and 2 workers over the 8-partition one (4 partitions each).
"""
from __future__ import annotations

import functools
import pickle
import socket

import numpy as np
import pytest

from graphtrain.partition.format import open_dataset
from graphtrain.train.config import TrainConfig
from graphtrain.train.runtime import RuntimeConfig
from graphtrain.train.worker import WorkerTask, _Context
from tests.sampling.dist_helpers import spawn_ranks


def _fit_on_worker(rank, world, port, ds_dir, out_dir, merge):
    import graphtrain.sampling.shard as shard_module
    from graphtrain.partition.view import PartitionedGraph
    from graphtrain.train.checkpoint import load_states
    from graphtrain.train.loop import TrainingLoop

    if merge:  # the context opens its shard through the module: the former, merged layout
        shard_module.open_worker_shard = functools.partial(shard_module.open_worker_shard, merge=True)
    cfg = TrainConfig(fanouts=(5, 5), batch_size=50, epochs=2, hidden=16, lr=0.01,
                      runtime=RuntimeConfig(prefetch=0, gloo_poller="normal")).validate()
    runs = open_dataset(ds_dir).book.contiguous_runs(world).tolist()
    task = WorkerTask("fit", ds_dir, rank, world, runs, "127.0.0.1", port, cfg.to_dict(),
                      checkpoint_dir=f"{out_dir}/ck-{merge}", audit=True)
    ctx = _Context(task)
    try:
        assert isinstance(ctx.shard.graph, PartitionedGraph) != merge and len(ctx.shard.parts) > 1
        result = TrainingLoop(ctx, ctx.runtime).run()
        if rank == 0:
            states = load_states(result.checkpoint, names=("model",))["model"]
            with open(f"{out_dir}/fit-{merge}.pkl", "wb") as f:
                pickle.dump({"history": result.history, "metrics": result.metrics, "audit": result.audit,
                             "global_step": result.global_step, "model": {k: v.numpy() for k, v in states.items()}}, f)
    finally:
        ctx.close()


def _fit(world, ds_dir, out_dir, merge):
    if world == 1:
        _fit_on_worker(0, 1, 0, str(ds_dir), str(out_dir), merge)
        return
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    spawn_ranks(_fit_on_worker, world, port, str(ds_dir), str(out_dir), merge, timeout=600)


def _same(a, b, where=""):
    if isinstance(a, dict):
        assert a.keys() == b.keys(), where
        for k in a:
            if "seconds" not in k:  # wall times differ
                _same(a[k], b[k], f"{where}/{k}")
    elif isinstance(a, (list, tuple)):
        assert len(a) == len(b), where
        for i, (x, y) in enumerate(zip(a, b)):
            _same(x, y, f"{where}[{i}]")
    elif isinstance(a, np.ndarray):
        assert a.dtype == b.dtype and np.array_equal(a, b), where
    elif isinstance(a, float) and np.isnan(a):
        assert isinstance(b, float) and np.isnan(b), where
    else:
        assert a == b, where


@pytest.mark.parametrize("world,dataset", [(1, "labelled_dataset"), (2, "eight_part_dataset")],
                         ids=["1-worker-4-partitions", "2-workers-5-and-3-partitions"])
def test_training_on_viewed_partitions_equals_training_on_merged_ones(world, dataset, request, tmp_path):
    ds_dir = request.getfixturevalue(dataset)
    for merge in (False, True):
        _fit(world, ds_dir, tmp_path, merge)
    view, merged = (pickle.loads((tmp_path / f"fit-{m}.pkl").read_bytes()) for m in (False, True))
    assert view["global_step"] > 0 and len(view["history"]) == 2 and len(view["audit"]["epochs"]) == 2
    assert view["metrics"]["val"]["auc"] > 0.6
    _same(view, merged)
