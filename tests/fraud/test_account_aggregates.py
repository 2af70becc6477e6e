"""Out-of-core baseline features (graphtrain.fraud.data.account_aggregates) equal the in-memory
``neighbour_features`` column for column, on directed (``--add-reverse``) and undirected datasets,
for several partition counts and block sizes (blocks of one node, hubs spanning the block size)."""
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

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
    feats[4, 0] = np.nan  # a missing own feature stays missing (the pipeline partitions with missing_features="nan")
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
                     time_column="time", node_ids=ids, node_features=g.accounts.features, add_reverse=g.directed,
                     missing_features="nan")
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
    done = []
    feats = build_account_features(ds, tmp_path / "work", hops=hops, block_edges=50, own_feature_names=["a", "b"],
                                   progress=done.append)
    assert feats.names == names
    assert sum(done) == int(ds.meta.num_edges) * (1 + (hops >= 1)) and len(done) > 2  # progress: every in-edge, per pass
    rows = g.accounts.index_of(np.concatenate([np.asarray(ds.raw_ids(p)) for p in range(2)]))
    got = feats.rows(0, g.num_accounts)
    np.testing.assert_allclose(got, want[rows], rtol=2e-5, atol=1e-5, equal_nan=True)


def test_without_amount_and_time(tmp_path):
    g = _graph(seed=5)
    ids = g.accounts.ids
    partition_arrays(ids[g.src], ids[g.dst], tmp_path / "ds", 2, node_ids=ids, node_features=g.accounts.features,
                     add_reverse=True, missing_features="nan")
    g.amount = g.time = None
    want, names = neighbour_features(g, hops=2)
    ds = open_dataset(tmp_path / "ds")
    feats = build_account_features(ds, tmp_path / "work", own_feature_names=["a", "b"])
    assert feats.names == names and not any("amount" in n or "days" in n for n in names)
    rows = g.accounts.index_of(np.concatenate([np.asarray(ds.raw_ids(p)) for p in range(2)]))
    np.testing.assert_allclose(feats.rows(0, g.num_accounts), want[rows], rtol=2e-5, atol=1e-5, equal_nan=True)


# -- the tree on those features (graphtrain.fraud.pipeline.dataset_baseline) ---------------------------------
def _labelled_dataset(tmp_path, n=3000, e=20000, seed=3):
    from graphtrain.split import stratified_split

    rng = np.random.default_rng(seed)
    ids = np.arange(n) * 7 + 1000
    labels = (rng.random(n) < 0.1).astype(np.int64)
    src, dst = rng.integers(0, n, e), rng.integers(0, n, e)
    fraud_src = np.flatnonzero(labels)[rng.integers(0, labels.sum(), e // 10)]
    src[: e // 10] = fraud_src  # fraudsters send more, and larger amounts
    amount = rng.lognormal(3, 1, e) * np.where(labels[src] == 1, 3.0, 1.0)
    t = rng.integers(0, 60 * 86400, e)
    feats = rng.normal(size=(n, 1)).astype(np.float32)
    split = stratified_split(labels, (0.6, 0.2), seed=0)
    names = np.array(["train", "val", "test"], dtype=object)
    partition_arrays(ids[src], ids[dst], tmp_path / "ds", 3, edge_attrs={"amount": amount, "time": t}, time_column="time",
                     node_ids=ids, node_features=feats, node_labels=labels, node_split=list(names[split]), add_reverse=True)
    ds = open_dataset(tmp_path / "ds")
    lab = np.concatenate([np.asarray(ds.partition(p).labels) for p in range(3)])
    spl = np.concatenate([np.asarray(ds.partition(p).split) for p in range(3)])
    return ds, lab, spl


def test_tree_on_all_training_accounts_equals_fit_scores(tmp_path):
    from graphtrain.fraud.pipeline.baseline import fit_scores, usable_columns
    from graphtrain.fraud.pipeline.dataset_baseline import run_dataset_baseline

    ds, labels, split = _labelled_dataset(tmp_path)
    feats = build_account_features(ds, tmp_path / "work", block_edges=5000)
    scored = []
    result = run_dataset_baseline(feats, labels, split, tmp_path / "work", seed=1, chunk=700, progress=scored.append)
    assert sum(scored) == feats.num_accounts and max(scored) == 700  # progress: accounts scored, chunk by chunk
    x = feats.rows(0, feats.num_accounts)
    keep = usable_columns(x, np.flatnonzero((split == 0) & (labels >= 0)))
    want = fit_scores(np.ascontiguousarray(x[:, keep]), labels, split, seed=1)
    np.testing.assert_allclose(np.asarray(result.scores), want, rtol=1e-6, atol=1e-7)
    assert result.params["fitted_accounts"] == result.params["train_accounts"] == int(((split == 0) & (labels >= 0)).sum())


def test_tree_fits_a_bounded_stratified_sample(tmp_path):
    from graphtrain import metrics
    from graphtrain.fraud.pipeline.dataset_baseline import run_dataset_baseline, training_sample

    ds, labels, split = _labelled_dataset(tmp_path)
    train = (split == 0) & (labels >= 0)
    sample = training_sample(labels, split, 600, folds=5, seed=4)
    assert abs(sample.size - 600) <= 1 and np.all(train[sample]) and np.all(np.diff(sample) > 0)
    assert abs(labels[sample].mean() - labels[train].mean()) < 0.01  # stratified
    assert np.array_equal(sample, training_sample(labels, split, 600, folds=5, seed=4))
    assert not np.array_equal(sample, training_sample(labels, split, 600, folds=5, seed=5))
    feats = build_account_features(ds, tmp_path / "work")
    small = run_dataset_baseline(feats, labels, split, tmp_path / "w1", seed=4, max_train=600)
    full = run_dataset_baseline(feats, labels, split, tmp_path / "w2", seed=4)
    assert small.params["fitted_accounts"] == sample.size < full.params["fitted_accounts"]
    test = (split == 2) & (labels >= 0)
    auc_small = metrics.roc_auc(labels[test], np.asarray(small.scores)[test])
    auc_full = metrics.roc_auc(labels[test], np.asarray(full.scores)[test])
    assert auc_full > 0.8 and auc_small > auc_full - 0.05, (auc_small, auc_full)


def test_model_inputs_are_finite_with_indicators_for_accounts_without_transactions(tmp_path):
    """The GNN's inputs (detect.model_inputs): signed log of the own and structure columns, 0 plus an
    indicator where a column is missing (here: the amount mean/max/std and span of the 5 accounts
    without transactions; a NaN own feature)."""
    from graphtrain.fraud.pipeline.detect import model_inputs

    g = _graph(seed=2)
    g.accounts.features[3, 1] = np.nan
    ds = _dataset(g, tmp_path / "ds", 2)
    feats = build_account_features(ds, tmp_path / "work", hops=2, own_feature_names=["a", "b"])
    rows, names = model_inputs(feats, hops=0)
    x = rows(0, feats.num_accounts)
    base = np.asarray(feats.base, dtype=np.float64)
    B = base.shape[1]
    assert names[:B] == feats.base_names and x.shape == (g.num_accounts, len(names)) and np.isfinite(x).all()
    missing = [j for j in range(B) if np.isnan(base[:, j]).any()]
    assert names[B:] == [f"{feats.base_names[j]}_missing" for j in missing]
    assert "own_b" in [feats.base_names[j] for j in missing] and "in_amount_mean" in [feats.base_names[j] for j in missing]
    clean = np.nan_to_num(base)
    np.testing.assert_allclose(x[:, :B], np.sign(clean) * np.log1p(np.abs(clean)), rtol=1e-6, atol=1e-7)
    np.testing.assert_array_equal(x[:, B:], np.isnan(base[:, missing]).astype(np.float32))
    with_hop1, names1 = model_inputs(feats, hops=1)
    assert len(names1) >= B * (1 + 2 * len(feats.directions)) and np.isfinite(with_hop1(0, 40)).all()


@settings(max_examples=150, deadline=None)
@given(st.lists(st.lists(st.integers(-3, 40), max_size=70), max_size=12))
def test_distinct_per_owner_counts_each_owners_distinct_keys(segments):
    """Owners with few edges (counted pairwise) and many (past _PAIRWISE: sorted), and owners with none."""
    from graphtrain.fraud.data.account_aggregates import _distinct_per_owner

    ptr = np.concatenate([[0], np.cumsum([len(s) for s in segments])]).astype(np.int64)
    keys = np.array([k for s in segments for k in s], dtype=np.int64)
    assert np.array_equal(_distinct_per_owner(ptr, keys), np.array([len(set(s)) for s in segments], dtype=np.float64))
