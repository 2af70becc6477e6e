"""Models on sampled batches (trim_to_layer) and layer-wise full-graph inference, without Ray."""
import numpy as np
import pytest
import torch

from graphtrain.comm import Exchange
from graphtrain.errors import ConfigError
from graphtrain.partition import open_dataset
from graphtrain.sampling.features import LocalNodeData
from graphtrain.sampling.neighbor import NeighborSampler
from graphtrain.sampling.shard import open_worker_shard
from graphtrain.train.inference import layerwise_logits
from graphtrain.train.models import ModelConfig, beta_wavelet_coefficients, build_model
from tests.sampling.dist_helpers import run_group
from tests.sampling.test_on_disk import _merged


def _model(name, **kw):
    torch.manual_seed(0)
    return build_model(ModelConfig(name, in_channels=8, out_channels=2, hidden_channels=8, **kw)).eval()


@pytest.mark.parametrize("name", ["sage", "gat", "gcn", "bwgnn"])
def test_trimmed_batch_gives_the_untrimmed_seed_outputs(labelled_dataset, name):
    ds = open_dataset(labelled_dataset)
    whole = _merged(ds)
    data = LocalNodeData.from_dataset(ds, backend="cpu")
    b = NeighborSampler(whole, [4, 3], seed=1, backend="cpu").sample(np.arange(0, 600, 11))
    b.x = data.features(b.n_id)
    d = b.to_pyg()
    model = _model(name)
    with torch.no_grad():
        trimmed = model(d.x, d.edge_index, d.num_sampled_nodes, d.num_sampled_edges)[: b.batch_size]
        full = model(d.x, d.edge_index)[: b.batch_size]
    assert trimmed.shape == (b.batch_size, 2)
    if name in ("sage", "gat", "bwgnn"):  # a node's output only depends on its in-edges: trimming is exact
        assert torch.allclose(trimmed, full, atol=1e-5)
    else:  # GCN normalises by source degrees within the trimmed graph, as PyG's trim_to_layer does
        assert torch.isfinite(trimmed).all()


def test_activation_checkpointing_gives_the_same_gradients(labelled_dataset):
    ds = open_dataset(labelled_dataset)
    whole = _merged(ds)
    b = NeighborSampler(whole, [4, 3], seed=1, backend="cpu").sample(np.arange(0, 600, 7))
    b.x = LocalNodeData.from_dataset(ds, backend="cpu").features(b.n_id)
    d = b.to_pyg()
    grads = []
    for ckpt in (False, True):
        model = _model("sage", activation_checkpointing=ckpt, dropout=0.5).train()
        torch.manual_seed(3)
        out = model(d.x, d.edge_index, d.num_sampled_nodes, d.num_sampled_edges)[: b.batch_size]
        out.sum().backward()
        grads.append(torch.cat([p.grad.flatten() for p in model.parameters()]))
    assert torch.allclose(grads[0], grads[1], atol=1e-6)


def test_model_config_errors():
    with pytest.raises(ConfigError, match="model must be one of"):
        ModelConfig("mlp", 8, 2).validate()
    with pytest.raises(ConfigError, match="multiple of heads"):
        ModelConfig("gat", 8, 2, hidden_channels=7, heads=2).validate()
    with pytest.raises(ConfigError, match="at least 2 classes"):
        ModelConfig("sage", 8, 1).validate()


def _full_graph_logits(ds, model):
    whole = _merged(ds)
    x = torch.from_numpy(np.asarray(LocalNodeData.from_dataset(ds, backend="cpu").features(np.arange(ds.meta.num_nodes))))
    ei = torch.from_numpy(np.stack([whole.src, whole.dst()]))
    with torch.no_grad():
        return model(x, ei).numpy()


def _layerwise_on_worker(rank, world, ds_dir, out_dir, name):
    ds = open_dataset(ds_dir)
    shard = open_worker_shard(ds, ds.book.contiguous_runs(world), Exchange(rank, world), backend="cpu")
    lo, hi = shard.node_range
    feats = shard.node_data.features(np.arange(lo, hi))
    out = layerwise_logits(_model(name), shard, feats, chunk_size=50)
    np.save(f"{out_dir}/logits{rank}.npy", out)


@pytest.mark.parametrize("name", ["sage", "gat", "gcn", "bwgnn"])
def test_layerwise_inference_equals_the_full_graph_forward_on_one_worker(labelled_dataset, tmp_path, name):
    ds = open_dataset(labelled_dataset)
    _layerwise_on_worker(0, 1, str(labelled_dataset), str(tmp_path), name)
    got = np.load(tmp_path / "logits0.npy")
    want = _full_graph_logits(ds, _model(name))
    # SAGE, GAT: a destination's in-edges (and self-loop) are all in its chunk's subgraph; GCN: the
    # sources' whole-graph degrees come with their rows (see graphtrain.train.inference)
    np.testing.assert_allclose(got, want, atol=1e-5)


def test_distributed_layerwise_inference_equals_one_worker(labelled_dataset, tmp_path):
    """Two workers fetching their in-neighbours' embeddings from each other give the 1-worker result."""
    for world in (1, 2):
        d = tmp_path / f"w{world}"
        d.mkdir()
        if world == 1:
            _layerwise_on_worker(0, 1, str(labelled_dataset), str(d), "gcn")
        else:
            run_group(_layerwise_on_worker, world, tmp_path, str(labelled_dataset), str(d), "gcn")
    one = np.load(tmp_path / "w1" / "logits0.npy")
    two = np.concatenate([np.load(tmp_path / "w2" / f"logits{r}.npy") for r in range(2)])
    np.testing.assert_allclose(two, one, atol=1e-5)


@pytest.mark.parametrize("order", [1, 2, 3])
def test_beta_wavelet_coefficients_are_the_normalised_beta_densities(order):
    """Row p, as a polynomial in the eigenvalue w, is (w/2)^p (1 - w/2)^(C-p) / B(p+1, C-p+1) on [0, 2]."""
    from math import gamma

    theta = beta_wavelet_coefficients(order).numpy()
    w = np.linspace(0, 2, 41)
    for p in range(order + 1):
        q = order - p
        want = (w / 2) ** p * (1 - w / 2) ** q * gamma(order + 2) / (gamma(p + 1) * gamma(q + 1))
        got = np.polynomial.polynomial.polyval(w, theta[p])
        np.testing.assert_allclose(got, want, atol=1e-12)
        assert got.min() >= -1e-12
    assert theta.shape == (order + 1, order + 1)


@pytest.mark.parametrize("num_layers", [1, 2, 3])
def test_bwgnn_is_its_beta_wavelet_filters_of_the_dense_random_walk_laplacian(num_layers):
    """The layered forward equals MLP_out(concat_p sum_k theta[p, k] L^k z) with L = I - D^-1 A built densely."""
    rs = np.random.default_rng(num_layers)
    n = 30
    src, dst = rs.integers(0, n, 90), rs.integers(0, n, 90)
    x = torch.from_numpy(rs.normal(size=(n, 8)).astype(np.float32))
    model = _model("bwgnn", num_layers=num_layers)
    with torch.no_grad():
        got = model(x, torch.from_numpy(np.stack([src, dst])))
        z = torch.relu(model.lin_in2(torch.relu(model.lin_in(x)))).double().numpy()
    A = np.zeros((n, n))
    np.add.at(A, (dst, src), 1.0)  # row i: i's in-edges
    deg = A.sum(1)
    L = np.eye(n) - A / np.where(deg > 0, deg, 1)[:, None]
    powers = [z]
    for _ in range(num_layers):
        powers.append(L @ powers[-1])
    theta = beta_wavelet_coefficients(num_layers).numpy()
    bands = np.concatenate([sum(theta[p, k] * powers[k] for k in range(num_layers + 1)) for p in range(num_layers + 1)], 1)
    with torch.no_grad():
        want = model.lin_out2(torch.relu(model.lin_out(torch.from_numpy(bands).float()))).numpy()
    assert (deg == 0).any()  # nodes without in-edges are covered
    np.testing.assert_allclose(got.numpy(), want, atol=1e-5)
    assert model.layer_out_channels(num_layers - 1) == 2
    for l in range(num_layers - 1):
        assert model.layer_out_channels(l) == (l + 2) * 8
