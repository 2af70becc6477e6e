"""Edge features of a batch are the stored columns at its edge IDs, wherever the edges are held."""
import numpy as np
import pytest

from graphtrain.comm import Exchange
from graphtrain.errors import ConfigError
from graphtrain.partition.format import open_dataset
from graphtrain.partition.partitioner import partition_arrays
from graphtrain.sampling import edge_features as ef
from graphtrain.sampling.loader import NodeLoader
from graphtrain.sampling.neighbor import NeighborSampler
from graphtrain.sampling.remote_features import DistributedEdgeData
from graphtrain.sampling.shard import open_worker_shard
from tests.sampling.dist_helpers import run_group

NAMES = ("amount", "reverse", "time_delta", "parallel")


def _transactions(n=300, e=2500, seed=3):
    """Transactions with repeated pairs (so parallel counts exceed 1), signed amounts and times."""
    rs = np.random.default_rng(seed)
    src = rs.integers(0, n, e)
    dst = rs.integers(0, n, e)
    again = rs.random(e) < 0.3  # repeat an earlier pair
    pick = rs.integers(0, e, e)
    src[again], dst[again] = src[pick[again]], dst[pick[again]]
    amount = rs.lognormal(4, 2, e) * np.where(rs.random(e) < 0.1, -1, 1)
    time = rs.integers(0, 10_000, e)
    return src, dst, amount, time


@pytest.fixture(scope="module")
def tx_dataset(tmp_path_factory):
    """4 partitions, both directions stored (``reverse``), ``amount`` and ``time``; the ``parallel`` column added."""
    src, dst, amount, time = _transactions()
    out = tmp_path_factory.mktemp("edge-features") / "ds"
    n = 300
    partition_arrays(src + 10**6, dst + 10**6, out, 4, edge_attrs={"amount": amount, "time": time},
                     time_column="time", node_ids=np.arange(n) + 10**6,
                     node_features=np.zeros((n, 2), np.float32), node_labels=np.zeros(n, np.int64),
                     method="hash", add_reverse=True)
    assert ef.add_parallel_column(out)
    assert not ef.add_parallel_column(out)  # once per dataset
    return out


def _columns_by_edge_id(ds, name):
    """Column ``name`` of every edge, indexed by global edge ID (partitions in order)."""
    return np.concatenate([np.asarray(ds.graph(p).edge_attrs[name], dtype=np.float64) for p in range(ds.num_parts)])


def test_parallel_counts_equal_a_brute_force_count():
    rs = np.random.default_rng(0)
    n, e = 12, 80
    src, dst = rs.integers(0, 5, e), rs.integers(0, n, e)  # few sources: many repeats
    order = np.argsort(dst, kind="stable")
    src, dst = src[order], dst[order]
    indptr = np.concatenate([[0], np.cumsum(np.bincount(dst, minlength=n))])
    want = np.array([sum(1 for j in range(e) if src[j] == src[i] and dst[j] == dst[i]) for i in range(e)])
    assert want.max() > 2
    np.testing.assert_array_equal(ef.parallel_counts(indptr, src), want)


def test_stored_parallel_column_counts_each_pair_over_the_whole_dataset(tx_dataset):
    ds = open_dataset(tx_dataset, verify=True)  # the new arrays are in meta.json with their checksums
    whole = ds.graph()
    src = np.concatenate([np.asarray(g.src) for g in whole.parts])
    dst = np.concatenate([np.asarray(g.dst()) for g in whole.parts])
    pairs = {}
    for s, d in zip(src.tolist(), dst.tolist()):
        pairs[(s, d)] = pairs.get((s, d), 0) + 1
    want = np.array([pairs[(s, d)] for s, d in zip(src.tolist(), dst.tolist())])
    np.testing.assert_array_equal(_columns_by_edge_id(ds, "parallel"), want)
    assert want.max() >= 3  # a repeated pair, stored in both directions


def _featurizer(ds, ref):
    return ef.EdgeFeaturizer(NAMES, 1.0, ref)


def _expected(ds, e_id, ref_time):
    amount = _columns_by_edge_id(ds, "amount")[e_id]
    time = _columns_by_edge_id(ds, "time")[e_id]
    return np.stack([np.sign(amount) * np.log1p(np.abs(amount)), _columns_by_edge_id(ds, "reverse")[e_id],
                     np.log1p(np.maximum(ref_time - time, 0)), np.log1p(_columns_by_edge_id(ds, "parallel")[e_id])], 1)


@pytest.mark.parametrize("temporal", [None, "uniform"])
def test_batch_edge_features_are_the_columns_at_its_edge_ids(tx_dataset, temporal):
    ds = open_dataset(tx_dataset)
    feats = ef.BatchEdgeFeatures(ef.LocalEdgeData.of(ds.graph(), ef.source_columns(NAMES)), _featurizer(ds, 9_000.0))
    sampler = NeighborSampler(ds.graph(), [5, 5], temporal=temporal, seed=2, backend="cpu")
    seeds = np.arange(0, 300, 3)
    seed_time = np.random.default_rng(1).integers(2_000, 10_000, seeds.size) if temporal else None
    loader = NodeLoader(sampler, seeds, 40, seed_time=seed_time, edge_features=feats, shuffle=False, prefetch=0)
    parts_seen = set()
    for batch in loader:
        batch.validate()
        parts_seen |= set(ds.book.edge_part(batch.e_id).tolist())
        for name in ("amount", "time", "reverse", "parallel"):
            np.testing.assert_array_equal(batch.edge_attrs[name], _columns_by_edge_id(ds, name)[batch.e_id])
        ref = batch.node_time[batch.edge_index[1]] if temporal else 9_000.0
        assert batch.edge_attr.dtype == np.float32 and batch.edge_attr.shape == (batch.num_edges, 4)
        np.testing.assert_allclose(batch.edge_attr, _expected(ds, batch.e_id, ref), rtol=1e-6, atol=1e-6)
        if temporal:  # every sampled edge is no later than its seed's time
            assert np.all(batch.edge_attrs["time"] <= ref)
        assert batch.to_pyg().edge_attr.shape == (batch.num_edges, 4)
    assert parts_seen == {0, 1, 2, 3}  # edges of every partition were read


def test_an_edge_not_held_is_refused(tx_dataset):
    ds = open_dataset(tx_dataset)
    local = ef.LocalEdgeData([ds.graph(1)], ("amount",))
    lo, _ = ds.book.edge_range(1)
    assert local.read(np.array([lo]))[0, 0] == _columns_by_edge_id(ds, "amount")[lo]
    with pytest.raises(ConfigError, match="not held by this process"):
        local.read(np.array([0, lo]))


def test_unknown_or_repeated_feature_names_are_refused():
    with pytest.raises(ConfigError, match="edge features must be"):
        ef.check_edge_features(("amount", "colour"))
    with pytest.raises(ConfigError, match="edge features must be"):
        ef.check_edge_features(("amount", "amount"))


def _read_on_worker(rank, world, ds_dir, out_dir):
    ds = open_dataset(ds_dir)
    ex = Exchange(rank, world)
    shard = open_worker_shard(ds, ds.book.contiguous_runs(world), ex, backend="cpu")
    data = DistributedEdgeData(ef.LocalEdgeData.of(shard.graph, ("amount", "parallel")), shard.book, ex)
    # every rank asks for a different mix of its own and the other workers' edges (repeats included)
    e_id = np.random.default_rng(rank).integers(0, ds.meta.num_edges, 500)
    np.savez(f"{out_dir}/rank{rank}.npz", e_id=e_id, got=data.read(e_id), empty=data.read(np.zeros(0, np.int64)))


def test_distributed_read_returns_the_columns_of_any_workers_edges(tx_dataset, tmp_path):
    run_group(_read_on_worker, 2, tmp_path, str(tx_dataset), str(tmp_path))
    ds = open_dataset(tx_dataset)
    want = np.stack([_columns_by_edge_id(ds, "amount"), _columns_by_edge_id(ds, "parallel")], 1)
    for r in range(2):
        got = np.load(tmp_path / f"rank{r}.npz")
        assert got["empty"].shape == (0, 2)
        np.testing.assert_array_equal(got["got"], want[got["e_id"]])
