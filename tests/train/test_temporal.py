"""Temporal training: seeds carry times and no sampled edge, in training, evaluation or scoring, is
later than its seed's time (the worker's loaders, layer-wise inference with a cutoff, the Trainer and
the CLI on a dataset whose future edges give the labels away)."""
import json

import numpy as np
import pyarrow.parquet as pq
import pytest

from graphtrain import metrics
from graphtrain.cli import main
from graphtrain.comm import Exchange
from graphtrain.errors import ConfigError
from graphtrain.partition.format import open_dataset
from graphtrain.partition.partitioner import partition_arrays
from graphtrain.sampling.shard import open_worker_shard
from graphtrain.train import Trainer, predict
from graphtrain.train.config import TrainConfig
from graphtrain.train.inference import layerwise_logits
from graphtrain.train.models import GNN, ModelConfig
from graphtrain.train.runtime import RuntimeConfig
from graphtrain.train.worker import WorkerTask, _Context
from tests.sampling.test_on_disk import _merged

N, BEACONS, FUTURE = 400, 20, 90  # leak edges are at FUTURE or later; every node time is below it


def leaky_graph(seed=0):
    """Labels given away only by edges from the future.

    Background edges (random, times 0..99) carry no signal and node features are noise, except for
    ``BEACONS`` unlabelled beacon nodes (feature 0 = +4): each positive gets 4 in-edges from beacons at
    times >= FUTURE, later than every node time (40..60). A sampler that respects node times sees
    noise; one that does not sees beacons around exactly the positives.
    """
    rs = np.random.default_rng(seed)
    y = (rs.random(N) < 0.25).astype(np.int64)
    beacons = np.arange(N - BEACONS, N)
    y[beacons] = -1
    x = rs.normal(size=(N, 4)).astype(np.float32)
    x[beacons, 0] += 4.0
    node_time = rs.integers(40, 61, N)
    e = 3000
    src, dst, t = rs.integers(0, N, e), rs.integers(0, N, e), rs.integers(0, 100, e)
    pos = np.flatnonzero(y == 1)
    leak_dst = np.repeat(pos, 4)
    leak_src = rs.choice(beacons, leak_dst.size)
    leak_t = rs.integers(FUTURE, 100, leak_dst.size)
    # a few edges exactly at their destination's node time (kept unless strict)
    tie_dst = rs.choice(N - BEACONS, 50, replace=False)
    tie_src = rs.integers(0, N, 50)
    src = np.concatenate([src, leak_src, tie_src])
    dst = np.concatenate([dst, leak_dst, tie_dst])
    t = np.concatenate([t, leak_t, node_time[tie_dst]])
    raw = np.arange(N, dtype=np.int64) * 7 + 1000
    return raw, raw[src], raw[dst], t, x, y, node_time


@pytest.fixture(scope="module")
def leaky(tmp_path_factory):
    """The leaky graph in 2 partitions: edge time column ``time``, node time column ``time``."""
    root = tmp_path_factory.mktemp("temporal")
    raw, src, dst, t, x, y, node_time = leaky_graph()
    partition_arrays(src, dst, root / "ds", 2, edge_attrs={"time": t}, time_column="time", node_ids=raw,
                     node_features=x, node_labels=y, node_time=node_time, method="ldg")
    return root / "ds"


def _context(dataset, **cfg):
    config = TrainConfig(fanouts=(50, 50), batch_size=64, runtime=RuntimeConfig(prefetch=0), **cfg).validate()
    ds = open_dataset(dataset)
    task = WorkerTask("fit", str(dataset), 0, 1, [0, ds.num_parts], "127.0.0.1", 0, config.to_dict())
    return _Context(task)


def _global_node_times(ctx):
    return np.concatenate([np.asarray(ctx.dataset.partition(p).time) for p in range(ctx.dataset.num_parts)])


def _check_loader(ctx, strict: bool):
    """Every sampled edge of every training batch is no later than (strict: earlier than) the time of
    the seed it was sampled for; each seed's first hop is exactly its eligible in-edges (fanout > degree)."""
    g = _merged(ctx.dataset)  # one worker: its graph (a view of both partitions) is the whole graph
    edge_time, node_times = np.asarray(g.time), _global_node_times(ctx)
    seeds = ctx.seeds_by_role()[0]["train"].seeds
    loader = ctx.loader(seeds, ctx.cfg.batch_size, shuffle=True, seed=ctx.worker_seed)
    later_in_graph = 0
    for batch in loader.batches(0):
        B = batch.batch_size
        bound = batch.node_time[batch.edge_index[1]]  # the time of the seed each edge was sampled for
        t = edge_time[batch.e_id]
        assert np.all(t < bound) if strict else np.all(t <= bound)
        if ctx.cutoff is None:
            assert np.array_equal(batch.node_time[:B], node_times[batch.seeds])
        else:
            assert np.all(batch.node_time == ctx.cutoff)
        hop1 = batch.e_id[: batch.num_sampled_edges[0]]
        for i, s in enumerate(batch.seeds):
            a, b = g.indptr[s], g.indptr[s + 1]
            ok = edge_time[a:b] < batch.node_time[i] if strict else edge_time[a:b] <= batch.node_time[i]
            later_in_graph += int((~ok).sum())
            mine = hop1[batch.edge_index[1, : hop1.size] == i]
            assert sorted(mine) == sorted(np.arange(a, b)[ok])
    return later_in_graph


def test_worker_loaders_never_sample_an_edge_later_than_the_seed_time(leaky):
    ctx = _context(leaky, temporal="uniform", seed_time="time")
    assert ctx.cutoff is None and ctx.cfg.per_node_seed_time
    assert _check_loader(ctx, strict=False) > 0  # the seeds do have later in-edges, none was sampled
    strict = _context(leaky, temporal="uniform", seed_time="time", temporal_strict=True)
    _check_loader(strict, strict=True)
    recent = _context(leaky, temporal="recent", seed_time=55)
    assert recent.cutoff == 55
    _check_loader(recent, strict=False)
    # the default cutoff is the latest edge time of the whole dataset
    assert _context(leaky, temporal="recent").cutoff == 99
    # the check can fail: without temporal sampling the same loader samples future edges
    plain = _context(leaky)
    seeds = plain.seeds_by_role()[0]["train"].seeds
    batch = next(iter(plain.loader(seeds, 64, shuffle=False, seed=0).batches(0)))
    assert batch.node_time is None
    assert np.any(np.asarray(_merged(plain.dataset).time)[batch.e_id] >= FUTURE)


@pytest.mark.parametrize("name", ["sage", "gcn"])  # gcn: its normalising degrees count only edges up to the cutoff
def test_layerwise_inference_with_a_cutoff_equals_inference_without_the_later_edges(tmp_path, name):
    raw, src, dst, t, x, y, _ = leaky_graph(seed=1)
    cutoff = 50
    early = t <= cutoff
    common = dict(node_ids=raw, node_features=x, node_labels=y, method="hash", time_column="time")
    partition_arrays(src, dst, tmp_path / "all", 2, edge_attrs={"time": t}, **common)
    partition_arrays(src[early], dst[early], tmp_path / "early", 2, edge_attrs={"time": t[early]}, **common)
    import torch

    with torch.random.fork_rng():  # leave the global RNG as it was for the tests that follow
        torch.manual_seed(0)
        model = GNN(ModelConfig(name, in_channels=4, out_channels=2, hidden_channels=8, num_layers=2))

    def scores(path, chunk=37, **kw):
        ds = open_dataset(path)
        shard = open_worker_shard(ds, [0, ds.num_parts], Exchange(0, 1), backend="cpu")
        lo, hi = shard.node_range
        feats = shard.node_data.features(np.arange(lo, hi))
        logits = layerwise_logits(model, shard, feats, chunk_size=chunk, **kw)
        ids = np.concatenate([np.asarray(ds.raw_ids(p)) for p in range(ds.num_parts)])
        return logits[np.argsort(ids)]

    want = scores(tmp_path / "early", chunk=1000)  # one chunk: the whole graph
    for chunk in (7, 37):  # many chunks per layer, and several
        np.testing.assert_allclose(scores(tmp_path / "all", chunk, max_time=cutoff), want, rtol=1e-5, atol=1e-6)
        np.testing.assert_allclose(scores(tmp_path / "all", chunk, max_time=cutoff + 1, strict=True), want,
                                   rtol=1e-5, atol=1e-6)
    assert not np.allclose(scores(tmp_path / "all"), want, atol=1e-3)  # the later edges do change the scores


def test_config_validation():
    for bad, match in [
        (dict(temporal="latest"), "temporal must be"),
        (dict(temporal_strict=True), "only apply to temporal"),
        (dict(seed_time=10), "only apply to temporal"),
        (dict(temporal="uniform", seed_time=1.5), "seed_time must be"),
        (dict(temporal="uniform", seed_time=True), "seed_time must be"),
        (dict(temporal="uniform", seed_time=""), "seed_time must be"),
        (dict(temporal="recent", temporal_strict="yes"), "temporal_strict must be"),
    ]:
        with pytest.raises(ConfigError, match=match):
            TrainConfig(**bad).validate()
    cfg = TrainConfig(temporal="recent", temporal_strict=True, seed_time="t").validate()
    assert TrainConfig.from_dict(cfg.to_dict()) == cfg and cfg.per_node_seed_time
    assert not TrainConfig(temporal="recent", seed_time=5).validate().per_node_seed_time
    assert TrainConfig.from_dict({"model": "sage"}).temporal is None  # checkpoints from before temporal training


def test_datasets_without_the_time_columns_are_refused(labelled_dataset, leaky, tmp_path):
    with pytest.raises(ConfigError, match="needs an edge time column.*--time COLUMN"):
        Trainer(labelled_dataset, temporal="uniform")
    with pytest.raises(ConfigError, match="seed_time 'when'.*node time column is 'time'.*--node-time when"):
        Trainer(leaky, temporal="uniform", seed_time="when")
    raw, src, dst, t, x, y, _ = leaky_graph()
    partition_arrays(src, dst, tmp_path / "no-node-time", 1, edge_attrs={"time": t}, time_column="time",
                     node_ids=raw, node_features=x, node_labels=y)
    with pytest.raises(ConfigError, match="it has no node time column"):
        Trainer(tmp_path / "no-node-time", temporal="recent", seed_time="time")
    Trainer(tmp_path / "no-node-time", temporal="recent", seed_time=50)  # one cutoff needs no node times


@pytest.mark.ray
def test_temporal_training_does_not_learn_from_the_future(ray_local, leaky, tmp_path):
    common = dict(fanouts=[10, 10], batch_size=32, epochs=4, num_workers=2, hidden=16, lr=0.02, num_cpus=4,
                  progress=False)
    leaked = Trainer(leaky, checkpoint_dir=tmp_path / "plain", **common).fit()
    assert leaked.val["auc"] > 0.9 and leaked.test["auc"] > 0.9  # the future gives the labels away
    t = Trainer(leaky, checkpoint_dir=tmp_path / "temporal", temporal="uniform", seed_time="time", **common)
    honest = t.fit()
    assert honest.val["auc"] < 0.75 and honest.test["auc"] < 0.75
    # per-node seed times: predict samples every node with the temporal sampler, on 2 workers
    out = t.predict(tmp_path / "scores.parquet")
    table = pq.read_table(out["path"]).to_pandas()
    assert out["rows"] == N and sorted(table.node_id) == sorted(np.arange(N) * 7 + 1000)
    labelled = table[table.label >= 0]
    assert metrics.roc_auc(labelled.label, labelled.score) < 0.75
    # a dataset without the node time column cannot be scored with this checkpoint
    raw, src, dst, tt, x, y, _ = leaky_graph()
    partition_arrays(src, dst, tmp_path / "no-node-time", 1, edge_attrs={"time": tt}, time_column="time",
                     node_ids=raw, node_features=x, node_labels=y)
    with pytest.raises(ConfigError, match="no node time column"):
        predict(tmp_path / "no-node-time", out["checkpoint"], tmp_path / "s2.parquet")


@pytest.mark.ray
def test_cli_temporal_options_round_trip(ray_local, tmp_path, capsys):
    """``train --temporal recent --temporal-strict --seed-time 50`` trains and checkpoints the options;
    ``predict`` then scores layer-wise with edges before time 50 only: the same scores as on the
    dataset built without the other edges."""
    raw, src, dst, t, x, y, _ = leaky_graph(seed=2)
    early = t < 50
    common = dict(node_ids=raw, node_features=x, node_labels=y, time_column="time")
    partition_arrays(src, dst, tmp_path / "all", 2, edge_attrs={"time": t}, **common)
    partition_arrays(src[early], dst[early], tmp_path / "early", 2, edge_attrs={"time": t[early]}, **common)
    ck = tmp_path / "ck"
    assert main(["train", str(tmp_path / "all"), "--fanouts", "5,5", "--batch-size", "64", "--epochs", "1",
                 "--min-steps", "0", "--hidden", "8", "--num-workers", "2", "--checkpoint-dir", str(ck), "--no-progress",
                 "--temporal", "recent", "--temporal-strict", "--seed-time", "50"]) == 0
    result = json.loads(capsys.readouterr().out.strip())
    from graphtrain.train.checkpoint import read_manifest

    train = read_manifest(result["checkpoint"]).train
    assert (train["temporal"], train["temporal_strict"], train["seed_time"]) == ("recent", True, 50)
    scores = {}
    for name in ("all", "early"):
        out = tmp_path / f"{name}.parquet"
        assert main(["predict", str(tmp_path / name), "--checkpoint", str(ck), "--out", str(out),
                     "--num-workers", "2"]) == 0
        capsys.readouterr()
        scores[name] = pq.read_table(out).to_pandas().sort_values("node_id").score.to_numpy()
    np.testing.assert_allclose(scores["all"], scores["early"], rtol=1e-5, atol=1e-6)
    # the same model scored with every edge differs: the cutoff did leave edges out
    out = predict(tmp_path / "all", ck, tmp_path / "no-cutoff.parquet", temporal=None, temporal_strict=False,
                  seed_time=None)
    plain = pq.read_table(out["path"]).to_pandas().sort_values("node_id").score.to_numpy()
    assert np.abs(plain - scores["early"]).max() > 1e-3
    assert main(["train", str(tmp_path / "all"), "--seed-time", "50", "--epochs", "1"]) == 2
    assert "only apply to temporal" in capsys.readouterr().err
