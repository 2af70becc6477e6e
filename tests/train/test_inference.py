"""Layer-wise ``predict`` is the exact full-graph model, whatever ``inference_chunk`` and the worker count.

The worker's own code paths run here without Ray (a :class:`~graphtrain.train.worker._Context` per
process): layer-wise scoring (:func:`~graphtrain.train.worker.layerwise_logits_for`, as ``predict``)
and sampled scoring (:func:`~graphtrain.train.worker._sampled_node_probs`, which runs the sampled
evaluation's ``_sampled_probs`` over every node).

- SAGE and GAT: a node's output depends only on its in-edges, so sampled evaluation at a fanout above
  the maximum in-degree sees exactly what the full graph gives, and layer-wise ``predict`` equals it.
- GCN: sampled evaluation is *not* the full-graph model (PyG's GCNConv on a trimmed sampled batch
  normalises by the batch's degrees: an outermost-hop node has no in-edges there, so its degree is 1),
  so layer-wise GCN is checked against the full-graph forward pass instead.
"""
import socket
from dataclasses import replace

import numpy as np
import pytest
import torch

from graphtrain.partition.format import open_dataset
from graphtrain.train.config import TrainConfig
from graphtrain.train.runtime import RuntimeConfig
from graphtrain.train.worker import WorkerTask, _Context, _sampled_node_probs, layerwise_logits_for
from tests.sampling.dist_helpers import spawn_ranks
from tests.train.test_models import _full_graph_logits, _model

MODELS = ("sage", "gat", "gcn")
CHUNKS = (7, 50, 1000)  # many chunks per layer, a few, one (600 nodes)


def _scores_on_worker(rank, world, port, ds_dir, out_dir, fanout):
    """Every model's layer-wise logits (each chunk size) and sampled probabilities of this worker's nodes."""
    cfg = TrainConfig(fanouts=(fanout, fanout), eval_batch_size=64,
                      runtime=RuntimeConfig(prefetch=0, gloo_poller="normal")).validate()
    runs = open_dataset(ds_dir).book.contiguous_runs(world).tolist()
    ctx = _Context(WorkerTask("predict", ds_dir, rank, world, runs, "127.0.0.1", port, cfg.to_dict()))
    try:
        lo, hi = ctx.shard.node_range
        ids = np.arange(lo, hi, dtype=np.int64)
        feats = ctx.shard.node_data.features(ids)
        out = {}
        for name in MODELS:
            model = _model(name)
            for chunk in CHUNKS:
                ctx.cfg = replace(cfg, inference_chunk=chunk)
                out[f"{name}/layerwise/{chunk}"] = layerwise_logits_for(ctx, model, feats)
            out[f"{name}/sampled"] = _sampled_node_probs(ctx, model, ids)
        np.savez(f"{out_dir}/rank{rank}.npz", **out)
    finally:
        ctx.close()


def _run_workers(world, *args, timeout=180.0):
    """``_scores_on_worker`` on ``world`` spawned processes (each joins the group as a Ray worker would)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    spawn_ranks(_scores_on_worker, world, port, *args, timeout=timeout)


@pytest.fixture(scope="module", params=[1, 2], ids=["1-worker", "2-workers"])
def scores(request, labelled_dataset, graph_arrays, tmp_path_factory):
    """``(world, fanout, {key: scores of all 600 nodes in ID order})`` from ``world`` workers."""
    world = request.param
    _, _, dst, _, _ = graph_arrays
    fanout = int(np.unique(dst, return_counts=True)[1].max()) + 1  # above every node's in-degree
    out_dir = tmp_path_factory.mktemp(f"inference-w{world}")
    if world == 1:
        _scores_on_worker(0, 1, 0, str(labelled_dataset), str(out_dir), fanout)  # no group to join
    else:
        _run_workers(world, str(labelled_dataset), str(out_dir), fanout)
    parts = [np.load(out_dir / f"rank{r}.npz") for r in range(world)]
    return world, fanout, {k: np.concatenate([p[k] for p in parts]) for k in parts[0].files}


def _softmax(logits):
    return torch.softmax(torch.from_numpy(logits), dim=1).numpy()


@pytest.mark.parametrize("name", ["sage", "gat"])
def test_layerwise_predict_equals_sampled_evaluation_above_the_max_in_degree(scores, name):
    world, fanout, got = scores
    assert got[f"{name}/sampled"].shape == (600, 2)
    for chunk in CHUNKS:
        np.testing.assert_allclose(_softmax(got[f"{name}/layerwise/{chunk}"]), got[f"{name}/sampled"], atol=1e-5,
                                   err_msg=f"{name}, chunk {chunk}, {world} worker(s), fanout {fanout}")


def test_gcn_layerwise_predict_equals_the_full_graph_forward_at_every_chunk_size(scores, labelled_dataset):
    world, _, got = scores
    want = _full_graph_logits(open_dataset(labelled_dataset), _model("gcn"))
    for chunk in CHUNKS:
        np.testing.assert_allclose(got[f"gcn/layerwise/{chunk}"], want, atol=1e-5,
                                   err_msg=f"chunk {chunk}, {world} worker(s)")
    # why the reference is the full-graph forward: sampled GCN normalises by the trimmed batch's degrees
    assert not np.allclose(got["gcn/sampled"], _softmax(want), atol=1e-3)
