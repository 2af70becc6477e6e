"""Edge-aware models and the heterophily options: sampled == layer-wise, they learn from edges, runs record them.

- On a full neighbourhood (fanout above every in-degree, dropout 0) a sampled forward sees exactly the
  in-edges layer-wise inference gives each chunk, edge features included, so ``predict``'s
  layer-wise scores equal the sampled evaluation's -- on one worker serving both partitions (a view).
- A toy task whose label is only in the edge amounts (node features are noise): an edge-aware model
  learns it, a node-only SAGE cannot.
- A run records the resolved edge features, the model options and the edge statistics in its checkpoint.
"""
import json

import numpy as np
import pytest
import torch

from graphtrain import metrics
from graphtrain.partition.format import open_dataset
from graphtrain.partition.partitioner import partition_arrays
from graphtrain.sampling import edge_features as ef
from graphtrain.sampling.loader import NodeLoader
from graphtrain.sampling.neighbor import NeighborSampler
from graphtrain.train.config import EDGE_MODELS, TrainConfig
from graphtrain.train.models import GNN, ModelConfig
from graphtrain.train.runtime import RuntimeConfig
from graphtrain.train.worker import WorkerTask, _Context, _sampled_node_probs, layerwise_logits_for

NAMES = ("amount", "reverse", "time_delta", "parallel")
VARIANTS = {
    "gine": {},
    "transformer": {},
    "sage_edge": dict(aggregators=("mean", "max", "std", "sum"), ego="concat"),
    "sage": dict(aggregators=("mean", "max"), ego="concat"),  # node-only, the heterophily options
    "bwgnn": {},  # node-only, band-pass filters
}


def _edge_task(n=500, seed=0):
    """Each node receives ~5 payments; positives (~30%) receive one far larger than any other.
    Node features are noise: the label is only in the edge amounts."""
    rs = np.random.default_rng(seed)
    y = (rs.random(n) < 0.3).astype(np.int64)
    dst = np.repeat(np.arange(n), 5)
    src = rs.integers(0, n, dst.size)
    amount = rs.lognormal(3, 0.5, dst.size)
    big = np.flatnonzero(y)[:, None] * 5 + rs.integers(0, 5, (y.sum(), 1))
    amount[big.ravel()] *= 1000
    time = rs.integers(0, 1000, dst.size)
    x = rs.normal(size=(n, 4)).astype(np.float32)
    return src, dst, amount, time, x, y


@pytest.fixture(scope="module")
def edge_dataset(tmp_path_factory):
    """``_edge_task()`` in 2 partitions, with ``time`` and both directions (``reverse``)."""
    src, dst, amount, time, x, y = _edge_task()
    out = tmp_path_factory.mktemp("edge-models") / "ds"
    raw = np.arange(x.shape[0]) + 5000
    partition_arrays(raw[src], raw[dst], out, 2, edge_attrs={"amount": amount, "time": time}, time_column="time",
                     node_ids=raw, node_features=x, node_labels=y, method="hash", add_reverse=True)
    ef.add_parallel_column(out)
    return out


@pytest.mark.parametrize("name", list(VARIANTS))
def test_sampled_forward_equals_layerwise_inference(edge_dataset, name):
    ds = open_dataset(edge_dataset)
    fanout = int(max(np.diff(np.asarray(ds.graph(p).indptr)).max() for p in range(ds.num_parts))) + 1
    edge_features = NAMES if name in EDGE_MODELS else None
    cfg = TrainConfig(model=name, fanouts=(fanout, fanout), eval_batch_size=64, hidden=8, dropout=0.0,
                      edge_features=edge_features, **VARIANTS[name],
                      runtime=RuntimeConfig(prefetch=0, gloo_poller="normal")).validate()
    ctx = _Context(WorkerTask("predict", str(edge_dataset), 0, 1, [0, 2], "127.0.0.1", 0, cfg.to_dict()))
    try:
        assert (ctx.edge_features is None) == (name not in EDGE_MODELS)
        if ctx.edge_features is not None:
            ctx.edge_norm = ctx.training_edge_norm()
            assert ctx.edge_norm.count > 0 and np.all(ctx.edge_norm.std > 0)
        model = ctx.build_model().eval()
        lo, hi = ctx.shard.node_range
        ids = np.arange(lo, hi, dtype=np.int64)
        feats = ctx.shard.node_data.features(ids)
        ctx.cfg = TrainConfig.from_dict(dict(cfg.to_dict(), inference_chunk=37))  # many chunks
        layerwise = torch.softmax(torch.from_numpy(layerwise_logits_for(ctx, model, feats)), dim=1).numpy()
        sampled = _sampled_node_probs(ctx, model, ids)
    finally:
        ctx.close()
    assert layerwise.shape == (500, 2)
    np.testing.assert_allclose(layerwise, sampled, atol=2e-5)
    assert np.ptp(layerwise[:, 1]) > 1e-3  # not a constant model


def _train_and_score(ds, name, steps=150):
    """Test AUC of ``name`` trained ``steps`` steps on the first 350 nodes of ``ds``, scored on the rest."""
    torch.manual_seed(0)
    names = ("amount", "reverse")  # the reverse copy of a large payment is an in-edge of its payer
    edge_dim = len(names) if name != "sage" else 0
    model = GNN(ModelConfig(name, 4, 2, 32, 2, 0.0, 2, edge_dim=edge_dim))
    feats = ef.BatchEdgeFeatures(ef.LocalEdgeData.of(ds.graph(), ef.source_columns(names)), ef.EdgeFeaturizer(names))
    from graphtrain.sampling.features import LocalNodeData

    data = LocalNodeData.from_dataset(ds, backend="cpu")
    raw = np.concatenate([np.asarray(ds.raw_ids(p)) for p in range(ds.num_parts)])
    order = np.argsort(raw)  # nodes by raw ID: train / test by the generator's node order
    train, test = order[:350], order[350:]
    sampler = NeighborSampler(ds.graph(), [25, 25], seed=0, backend="cpu")
    opt = torch.optim.Adam(model.parameters(), lr=0.01)

    # standardised with the edges' statistics, as training does (TrainConfig.normalize)
    every = feats.rows(np.arange(ds.meta.num_edges))
    mean, std = torch.from_numpy(every.mean(0)), torch.from_numpy(every.std(0))

    def run(batch):
        d = batch.to_pyg()
        ea = (d.edge_attr - mean) / std if edge_dim else None
        return model(d.x, d.edge_index, d.num_sampled_nodes, d.num_sampled_edges, edge_attr=ea)[: batch.batch_size]

    loader = NodeLoader(sampler, train, 64, node_data=data, edge_features=feats, prefetch=0)
    step = 0
    while step < steps:
        for batch in loader:
            model.train()
            opt.zero_grad()
            loss = torch.nn.functional.cross_entropy(run(batch), torch.from_numpy(batch.y))
            loss.backward()
            opt.step()
            step += 1
    model.eval()
    with torch.no_grad():
        batch = next(iter(NodeLoader(sampler, test, len(test), node_data=data, edge_features=feats, shuffle=False,
                                     prefetch=0)))
        score = torch.softmax(run(batch), 1)[:, 1].numpy()
    return metrics.roc_auc(batch.y, score)


def test_an_edge_aware_model_learns_what_only_the_edges_say(edge_dataset):
    ds = open_dataset(edge_dataset)
    gine = _train_and_score(ds, "gine")
    sage = _train_and_score(ds, "sage")
    assert gine > 0.95, gine
    assert sage < 0.7, sage



@pytest.mark.ray
def test_a_run_records_its_edge_features_and_model_options(ray_local, edge_dataset, tmp_path):
    from graphtrain.train import Trainer
    from graphtrain.train.checkpoint import latest_checkpoint, read_manifest
    from graphtrain.train.trainer import predict

    t = Trainer(edge_dataset, "sage_edge", [5, 5], 64, 1, checkpoint_dir=tmp_path / "ck", hidden=8, num_cpus=4,
                progress=False, aggregators=("mean", "max"), ego="concat")
    assert t.config.edge_features == NAMES  # None resolved to every feature the dataset has
    t.fit()
    man = read_manifest(latest_checkpoint(tmp_path / "ck"))
    assert man.train["edge_features"] == list(NAMES)
    assert (man.train["aggregators"], man.train["ego"]) == (["mean", "max"], "concat")
    assert (man.model["edge_dim"], man.model["aggregators"], man.model["ego"]) == (4, ["mean", "max"], "concat")
    assert len(man.edge_norm["mean"]) == 4 and man.edge_norm["count"] > 0
    json.dumps(man.train)  # plain JSON
    back = TrainConfig.from_dict(man.train)
    assert back.edge_features == NAMES and back.aggregators == ("mean", "max")
    predict(edge_dataset, tmp_path / "ck", tmp_path / "scores.parquet", num_cpus=4, progress=False)
    import pyarrow.parquet as pq

    scores = pq.read_table(tmp_path / "scores.parquet").column("score").to_numpy()
    assert scores.shape == (500,) and np.isfinite(scores).all() and np.ptp(scores) > 0


@pytest.mark.parametrize("options, message", [
    (dict(model="gine", edge_features=()), "reads edge features"),
    (dict(model="gat", aggregators=("mean", "max")), "apply to the sage and sage_edge models"),
    (dict(model="sage", aggregators=("mean", "median")), "aggregators must be"),
    (dict(model="sage", ego="side"), "ego must be one of"),
    (dict(model="sage_edge", edge_features=("amount", "weight")), "edge features must be"),
    (dict(model="transformer", hidden=9, heads=2), "multiple of heads"),
])
def test_bad_model_options_are_refused(options, message):
    from graphtrain.errors import ConfigError

    with pytest.raises(ConfigError, match=message):
        TrainConfig(**options).validate()


def test_a_missing_edge_column_is_named_before_training(edge_dataset, tmp_path):
    from graphtrain.errors import ConfigError
    from graphtrain.train import Trainer

    ds_dir = tmp_path / "no-time"
    raw = np.arange(50) + 1
    partition_arrays(raw[:-1], raw[1:], ds_dir, 1, edge_attrs={"amount": np.ones(49)}, node_ids=raw,
                     node_features=np.zeros((50, 1), np.float32), node_labels=np.arange(50) % 2)
    with pytest.raises(ConfigError, match="'time_delta' reads the edge column 'time'"):
        Trainer(ds_dir, "gine", [3], 8, 1, edge_features=("amount", "time_delta"), progress=False)
    t = Trainer(ds_dir, "gine", [3], 8, 1, progress=False, checkpoint_dir=tmp_path / "ck")  # None: what it has
    assert t.config.edge_features == ("amount", "parallel")
