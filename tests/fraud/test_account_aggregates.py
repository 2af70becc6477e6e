"""Out-of-core baseline features (graphtrain.fraud.data.account_aggregates) equal the in-memory
``neighbour_features`` column for column, on directed (``--add-reverse``) and undirected datasets,
for several partition counts and block sizes (blocks of one node, hubs spanning the block size)."""
import numpy as np
import pytest

from graphtrain.fraud.data.account_aggregates import build_account_features
from graphtrain.fraud.data.transaction_graph import AccountTable, TransactionGraph
from graphtrain.fraud.pipeline.baseline import neighbour_features
from graphtrain.graph import REVERSE
from graphtrain.partition import open_dataset
from graphtrain.partition.partitioner import partition_arrays


def _graph(n=80, e=600, seed=0, directed=True):
    rng = np.random.default_rng(seed)
    ids = np.array([f"acct-{i:03d}" for i in rng.permutation(n)])
    feats = rng.normal(size=(n, 2)).astype(np.float32)
    acc = AccountTable(ids, feats, ["a", "b"], rng.integers(0, 2, n))
    src, dst = rng.integers(0, n - 5, e), rng.integers(0, n - 5, e)  # the last 5 accounts have no transactions
    src[:40] = 7  # a hub
    amount = np.round(rng.lognormal(3, 1, e), 2)
    time = rng.integers(0, 30 * 86400, e)
    if not directed:  # both directions given
        src, dst = np.concatenate([src, dst]), np.concatenate([dst, src])
        amount, time = np.tile(amount, 2), np.tile(time, 2)
    return TransactionGraph(acc, src, dst, amount, time, directed=directed)


def _dataset(g, path, num_parts):
    ids = g.accounts.ids
    partition_arrays(ids[g.src], ids[g.dst], path, num_parts, edge_attrs={"amount": g.amount, "time": g.time},
                     time_column="time", node_ids=ids, node_features=g.accounts.features, add_reverse=g.directed)
    return open_dataset(path)


@pytest.mark.parametrize("directed", [True, False])
@pytest.mark.parametrize("num_parts,block_edges", [(1, 1 << 20), (3, 25), (4, 1)])
def test_equals_in_memory_features(tmp_path, directed, num_parts, block_edges):
    g = _graph(seed=num_parts, directed=directed)
    ds = _dataset(g, tmp_path / "ds", num_parts)
    assert (REVERSE in {c.name for c in ds.meta.edge_columns}) == directed
    want, want_names = neighbour_features(g, hops=2)
    feats = build_account_features(ds, tmp_path / "work", hops=2, block_edges=block_edges, own_feature_names=["a", "b"])
    assert feats.names == want_names
    got = np.concatenate([rows for _, rows in feats.iter_rows(block=17)])  # blocks straddling partitions
    raw = np.concatenate([np.asarray(ds.raw_ids(p)) for p in range(ds.num_parts)])
    rows = g.accounts.index_of(raw)
    assert (rows >= 0).all()
    np.testing.assert_allclose(got, want[rows], rtol=2e-5, atol=1e-5, equal_nan=True)
    # the table is ~9 B columns wide; only base (B) and hop-1 means (D * B) are stored
    B = len(feats.base_names)
    assert np.load(tmp_path / "work" / "base.npy", mmap_mode="r").shape == (g.num_accounts, B)
    assert np.load(tmp_path / "work" / "hop1_mean.npy", mmap_mode="r").shape == (g.num_accounts, len(feats.directions) * B)
    np.testing.assert_array_equal(feats.rows(5, 9), got[5:9])


@pytest.mark.parametrize("hops", [0, 1])
def test_fewer_hops(tmp_path, hops):
    g = _graph(seed=11)
    ds = _dataset(g, tmp_path / "ds", 2)
    want, names = neighbour_features(g, hops=hops)
    feats = build_account_features(ds, tmp_path / "work", hops=hops, block_edges=50, own_feature_names=["a", "b"])
    assert feats.names == names
    rows = g.accounts.index_of(np.concatenate([np.asarray(ds.raw_ids(p)) for p in range(2)]))
    got = feats.rows(0, g.num_accounts)
    np.testing.assert_allclose(got, want[rows], rtol=2e-5, atol=1e-5, equal_nan=True)


def test_without_amount_and_time(tmp_path):
    g = _graph(seed=5)
    ids = g.accounts.ids
    partition_arrays(ids[g.src], ids[g.dst], tmp_path / "ds", 2, node_ids=ids, node_features=g.accounts.features,
                     add_reverse=True)
    g.amount = g.time = None
    want, names = neighbour_features(g, hops=2)
    ds = open_dataset(tmp_path / "ds")
    feats = build_account_features(ds, tmp_path / "work", own_feature_names=["a", "b"])
    assert feats.names == names and not any("amount" in n or "days" in n for n in names)
    rows = g.accounts.index_of(np.concatenate([np.asarray(ds.raw_ids(p)) for p in range(2)]))
    np.testing.assert_allclose(feats.rows(0, g.num_accounts), want[rows], rtol=2e-5, atol=1e-5, equal_nan=True)
