"""Trainer end to end on a local Ray: fit / evaluate / predict, elastic worker counts, early stopping, models."""
import os

import numpy as np
import pyarrow.parquet as pq
import pytest
import torch

from graphtrain import metrics
from graphtrain.partition import open_dataset
from graphtrain.train import Trainer
from graphtrain.train.audit import row_digests
from graphtrain.train.models import GNN, ModelConfig
from graphtrain.train.runtime import RuntimeConfig

pytestmark = pytest.mark.ray
FAST = dict(hidden=16, lr=0.01, num_cpus=4, progress=False)


def expected_split(y):
    """(train, val, test) sizes of the stratified 0.7/0.15/0.15 split (see graphtrain.train.splits)."""
    n = np.bincount(y)
    train = n * 7 // 10
    val = (n - train) // 2
    return int(train.sum()), int(val.sum()), int((n - train - val).sum())


def _labels_by_raw(graph_arrays):
    raw, _, _, _, y = graph_arrays
    return dict(zip(raw.tolist(), y.tolist()))


def test_fit_evaluate_predict_on_two_workers(ray_local, labelled_dataset, graph_arrays, tmp_path):
    t = Trainer(labelled_dataset, "sage", [5, 5], 32, 3, num_workers=2, checkpoint_dir=tmp_path / "ck",
                checkpoint_every=3, **FAST)
    r = t.fit()
    assert r.epochs_run == 3 and r.restarts == 0 and r.num_workers == 2
    # every worker trained with its setup's objects (torch, PyG, Ray, ... : far over 10,000) frozen
    assert len(r.train.frozen_objects) == 2 and min(r.train.frozen_objects) > 10_000
    sizes = expected_split(graph_arrays[4])
    for split, size in zip(("val", "test"), sizes[1:]):
        m = getattr(r, split)
        assert m["count"] == size and m["positives"] > 5
        assert m["auc"] > 0.8 and m["ap"] > 0.5 and 0 < m["recall_at_k"] <= 1 and 0 < m["f1_macro"] <= 1
    assert r.test["threshold"] == r.val["threshold"]  # F1 threshold chosen on val, applied to test
    assert [h["epoch"] for h in r.history] == [0, 1, 2] and r.history[-1]["loss"] < r.history[0]["loss"]
    assert r.train.bytes_sent > 0  # cross-partition hops and features went through the data plane
    assert len(set(t.worker_pids.values())) == 2
    # evaluate() of the final checkpoint reproduces fit()'s numbers (same model, same sampling keys)
    ev = t.evaluate(["val", "test"])
    assert ev["test"]["auc"] == pytest.approx(r.test["auc"]) and ev["val"]["ap"] == pytest.approx(r.val["ap"])
    # predict: every node once, by raw ID, labels carried over, layer-wise scores rank the positives
    out = t.predict(tmp_path / "scores.parquet")
    table = pq.read_table(out["path"]).to_pandas()
    by_raw = _labels_by_raw(graph_arrays)
    assert out["rows"] == 600 and sorted(table.node_id) == sorted(by_raw)
    assert all(by_raw[i] == l for i, l in zip(table.node_id, table.label))
    assert table.score.between(0, 1).all() and set(table.pred) <= {0, 1}
    assert metrics.roc_auc(table.label, table.score) > 0.8
    with pytest.raises(Exception, match="already exists"):
        t.predict(tmp_path / "scores.parquet")


def _dataset_truth(path):
    """Labels, feature-row digests and raw IDs of every node of a dataset, in global ID order."""
    ds = open_dataset(path)
    parts = [ds.partition(p) for p in range(ds.num_parts)]
    labels = np.concatenate([np.asarray(p.labels) for p in parts])
    digests = np.concatenate([row_digests(np.asarray(p.features)) for p in parts])
    raw = np.concatenate([np.asarray(ds.raw_ids(p)) for p in range(ds.num_parts)])
    return labels, digests, raw


def test_one_partitioning_trains_on_1_2_and_4_workers(ray_local, eight_part_dataset, graph_arrays, tmp_path):
    """Elastic equivalence: one 8-partition dataset on 1, 2 and 4 workers trains on the same nodes
    with the same roles, and every seed carries its own label and feature row, whichever worker
    fetched them (an audited run: graphtrain.train.audit)."""
    labels, digests, raw = _dataset_truth(eight_part_dataset)
    by_raw = _labels_by_raw(graph_arrays)
    assert labels.tolist() == [by_raw[r] for r in raw.tolist()]  # the oracle is the generated graph's
    seen = {}
    for w in (1, 2, 4):
        runtime = RuntimeConfig(gloo_poller="auto") if w == 4 else RuntimeConfig()  # opted in on 4 workers
        r = Trainer(eight_part_dataset, "sage", [5, 5], 50, 2, num_workers=w, checkpoint_dir=tmp_path / f"w{w}",
                    audit=True, runtime=runtime, **FAST).fit()
        seen[w] = r
        audit = r.audit
        roles = audit["roles"]
        assert roles.dtype == np.int8 and roles.shape == labels.shape
        train_nodes = np.flatnonzero(roles == 0)
        assert train_nodes.size == expected_split(graph_arrays[4])[0]
        assert train_nodes.size <= r.train.seeds // 2 <= train_nodes.size + w - 1  # padding: one seed per worker
        assert r.train.batches == 2 * w * r.batches_per_epoch  # equal batch counts on every worker
        assert len(audit["epochs"]) == 2
        for epoch in audit["epochs"]:
            # every training node, once, each with the label and the feature row the dataset holds
            assert np.array_equal(epoch["seeds"], train_nodes)
            assert np.array_equal(epoch["labels"], labels[train_nodes])
            assert np.array_equal(epoch["feature_digests"], digests[train_nodes])
        assert r.val["auc"] > 0.6
        # gloo pollers are left alone by default (issue 18: opt-in); gloo_poller "auto" on CPU: both gloo
        # groups' socket pollers idle in every worker of a group (a worker process Ray reuses may still
        # hold the poller of an earlier run's group: counted too)
        pollers = r.train.idle_gloo_pollers
        assert pollers == [0] * w if w < 4 else (len(pollers) == w and min(pollers) >= 2)
    # the roles, and so the split, are the dataset's, not the worker count's
    for w in (2, 4):
        assert np.array_equal(seen[w].audit["roles"], seen[1].audit["roles"])
        assert (seen[w].val["count"], seen[w].val["positives"], seen[w].test["positives"]) == \
            (seen[1].val["count"], seen[1].val["positives"], seen[1].test["positives"])
    assert seen[1].train.bytes_sent == 0 < seen[2].train.bytes_sent < seen[4].train.bytes_sent


def test_row_digests_see_every_bit():
    rows = np.random.default_rng(0).normal(size=(50, 8)).astype(np.float32)
    d = row_digests(rows)
    assert np.unique(d).size == 50 and np.array_equal(d, row_digests(rows.copy()))
    for i, j, bit in ((0, 0, 0), (7, 3, 17), (49, 7, 31)):
        flipped = rows.copy()
        flipped.view(np.uint32)[i, j] ^= np.uint32(1 << bit)
        changed = row_digests(flipped) != d
        assert changed[i] and changed.sum() == 1
    swapped = rows[:, ::-1].copy()  # the same values in another column order
    assert np.all(row_digests(swapped) != d)


def test_early_stopping_restores_the_best_model(ray_local, labelled_dataset, tmp_path):
    t = Trainer(labelled_dataset, "sage", [4], 64, 6, num_workers=1, checkpoint_dir=tmp_path, patience=1,
                min_delta=1.0, **FAST)  # nothing improves by more than 1.0: stop after the second epoch
    r = t.fit()
    assert r.stopped_early and r.epochs_run == 2 and r.best_epoch == 0
    assert r.val["auc"] == pytest.approx(r.history[0]["val"]["auc"])  # the reported model is the best one


@pytest.mark.parametrize("model,extra", [("gat", {"heads": 2}), ("gcn", {"activation_checkpointing": True})])
def test_gat_and_gcn_train(ray_local, labelled_dataset, tmp_path, model, extra):
    # gat: the runtime defaults (not pinned, pollers normal); gcn: pinned, idle pollers, the fused CPU
    # dropout (with activation checkpointing: the recomputed layers redraw their masks from their keys)
    runtime = RuntimeConfig() if model == "gat" else RuntimeConfig(pin_cpus=True, gloo_poller="idle", fused_dropout=True)
    r = Trainer(labelled_dataset, model, [5, 5], 64, 3, num_workers=2, checkpoint_dir=tmp_path, runtime=runtime,
                **{**FAST, "lr": 0.03}, **extra).fit()
    assert r.val["auc"] > 0.7
    pollers = r.train.idle_gloo_pollers
    assert pollers == [0, 0] if model == "gat" else (len(pollers) == 2 and min(pollers) >= 2)
    pinned = r.train.pinned_cores
    if model == "gat":
        assert pinned == [None, None]
    elif len(os.sched_getaffinity(0)) >= 2:  # each worker got a core of its own
        assert all(c is not None and len(c) == 1 for c in pinned) and pinned[0] != pinned[1]


def test_a_user_module_trains(ray_local, labelled_dataset, tmp_path):
    torch.manual_seed(0)  # the module's initial weights (the trainer starts from them): otherwise AUC varies by run
    module = GNN(ModelConfig("sage", in_channels=8, out_channels=2, hidden_channels=8))
    t = Trainer(labelled_dataset, module, [5, 5], 64, 1, num_workers=1, checkpoint_dir=tmp_path, **FAST)
    r = t.fit()
    assert r.val["auc"] > 0.6
    out = t.predict(tmp_path / "s.parquet")  # the same module rebuilds the checkpointed model
    assert out["rows"] == 600


@pytest.fixture(scope="module")
def tiny_labelled_dataset(tmp_path_factory):
    """172 labelled nodes: 120 in the 0.7 training split, one batch of 512 per epoch (issue 19, item 5)."""
    from graphtrain.partition.partitioner import partition_arrays
    from tests.train.conftest import make_graph

    raw, src, dst, x, y = make_graph(n=172, e=1700, seed=5, positives=0.4)
    root = tmp_path_factory.mktemp("tiny-ds") / "ds"
    partition_arrays(src, dst, root, 1, node_ids=raw, node_features=x, node_labels=y, progress=False)
    return root


def test_a_tiny_training_set_gets_min_steps_and_still_stops_early(ray_local, tiny_labelled_dataset, tmp_path):
    # 2 epochs of one batch each would be 2 optimizer steps; min_steps raises the budget to 8 epochs
    r = Trainer(tiny_labelled_dataset, "sage", [4], 512, 2, num_workers=1, checkpoint_dir=tmp_path / "a",
                min_steps=8, **FAST).fit()
    assert r.batches_per_epoch == 1 and r.global_step == 8 and r.epochs_run == 8, r.global_step
    assert not r.stopped_early
    # the extended run validates (and checkpoints, and counts patience) every ceil(8 / 2) = 4 epochs:
    # never more than `epochs` times (was: after every one of its 8 epochs)
    assert [h["epoch"] for h in r.history if h["val"] is not None] == [3, 7]
    assert r.best_epoch in (3, 7) and r.val is not None
    # early stopping still works, but not before min_steps: nothing improves by 1.0, patience 1
    r = Trainer(tiny_labelled_dataset, "sage", [4], 512, 20, num_workers=1, checkpoint_dir=tmp_path / "b",
                min_steps=5, patience=1, min_delta=1.0, **FAST).fit()
    assert r.global_step == 5 and r.epochs_run == 5 and r.stopped_early and r.best_epoch == 0
    # big enough data (epochs * batches >= min_steps): the schedule is the epochs' alone
    from graphtrain.train.config import TrainConfig

    assert TrainConfig(epochs=10, min_steps=200).epoch_budget(30) == 10
    assert TrainConfig(epochs=10, min_steps=200).epoch_budget(7) == 29
    assert TrainConfig(epochs=10, min_steps=200).validate_every(30) == 1
    assert TrainConfig(epochs=10, min_steps=200).validate_every(1) == 20  # 200 epochs: validated 10 times
    assert TrainConfig(epochs=10, min_steps=200).validate_every(7) == 3  # 29 epochs: after 3, 6, ..., 27 and 29
