"""Distributed hop sampling and feature fetch over gloo equal the single-process results exactly."""
import numpy as np
import pytest

from graphtrain.comm import Exchange
from graphtrain.errors import ConfigError
from graphtrain.partition import open_dataset
from graphtrain.partition.partitioner import partition_arrays
from graphtrain.sampling.features import LocalNodeData
from graphtrain.sampling.neighbor import NeighborSampler
from graphtrain.sampling.shard import merge_graphs, open_worker_shard
from tests.sampling.dist_helpers import run_group
from tests.sampling.test_neighbor import _same_batch
from tests.sampling.test_on_disk import _merged, _raw_graph

FANOUTS = [6, 4]
MODES = {"uniform": {}, "temporal": {"temporal": "uniform"}, "weighted": {"weight": "weight"}}


@pytest.fixture(scope="module")
def six_parts(tmp_path_factory):
    root = tmp_path_factory.mktemp("dist")
    raw, src, dst, t, w = _raw_graph(seed=4, n=400, e=5000)
    rs = np.random.default_rng(5)
    partition_arrays(src, dst, root / "ds", 6, edge_attrs={"t": t, "w": w}, time_column="t", weight_column="w",
                     node_ids=raw, node_features=rs.random((raw.size, 3)).astype(np.float32),
                     node_labels=rs.integers(-1, 2, raw.size), method="ldg")
    return root / "ds"


def _seeds(rank, n):
    return np.arange(rank, n, 7, dtype=np.int64)  # every worker asks for nodes of every owner


def _times(seeds):
    return (seeds * 37) % 10_000


def _sample_on_worker(rank, world, ds_dir, out_dir):
    ds = open_dataset(ds_dir)
    shard = open_worker_shard(ds, ds.book.contiguous_runs(world), Exchange(rank, world), backend="cpu")
    data = shard.distributed_node_data(3, True)
    cached = shard.distributed_node_data(3, True, cache_nodes=40)  # hub features copied once
    n = ds.meta.num_nodes
    out = {}
    for name, kw in MODES.items():
        sampler = NeighborSampler(shard.hop_sampler("cpu"), FANOUTS, seed=8, backend="cpu", **kw)
        seeds = _seeds(rank, n)
        b = sampler.sample(seeds, _times(seeds) if "temporal" in kw else None, batch_index=5 + rank)
        out.update({f"{name}_{k}": v for k, v in vars(b).items() if isinstance(v, np.ndarray)})
        out[f"{name}_nodes"] = np.array(b.num_sampled_nodes)
        out[f"{name}_edges"] = np.array(b.num_sampled_edges)
        out[f"{name}_x"] = data.features(b.n_id)
        out[f"{name}_xc"] = cached.features(b.n_id)
        out[f"{name}_y"] = data.labels(b.seeds)
    # hop answers carrying the features: the same batches and rows in fewer collectives
    for cache in (0, 40):
        carried = shard.distributed_node_data(3, True, cache_nodes=cache)
        for name, kw in MODES.items():
            for fanouts in (FANOUTS, [5]):
                sampler = NeighborSampler(shard.hop_sampler("cpu", carried), fanouts, seed=8, backend="cpu", **kw)
                seeds = _seeds(rank, n)
                before = shard.exchange.stats.calls
                b = sampler.sample(seeds, _times(seeds) if "temporal" in kw else None, batch_index=5 + rank)
                tag = f"carried{cache}_{len(fanouts)}_{name}"
                out[f"{tag}_n_id"] = b.n_id
                out[f"{tag}_edge_index"] = b.edge_index
                out[f"{tag}_x"] = carried.features(b.n_id)
                out[f"{tag}_calls"] = np.array(shard.exchange.stats.calls - before)
        # features asked for outside a batch (nothing carried) are still fetched, collectively
        ask = np.array([n - 1, 0, n // 2], dtype=np.int64)
        out[f"carried{cache}_outside_x"] = carried.features(ask)
    # a worker asking for nothing still takes part in the collective
    ask = np.zeros(0, np.int64) if rank == 0 else np.array([n - 1, 0, n // 2])
    out["empty_x"] = data.features(ask)
    out["bytes_sent"] = np.array(shard.exchange.stats.bytes_sent)
    # batch-parallel loader threads would run collectives in a different order on each worker
    from graphtrain.sampling.loader import NodeLoader

    try:
        NodeLoader(NeighborSampler(shard.hop_sampler("cpu"), FANOUTS, backend="cpu"), _seeds(rank, n), 8,
                   node_data=data, sampling_threads=2)
        out["threads_allowed"] = np.array(1)
    except ConfigError as e:
        assert "sampling_threads > 1" in str(e)
        out["threads_allowed"] = np.array(0)
    out["cache_size"] = np.array(cached.cache_size)
    np.savez(f"{out_dir}/rank{rank}.npz", **out)


@pytest.mark.parametrize("world", [1, 2, 3])
def test_distributed_batches_equal_the_single_process_batches(six_parts, tmp_path, world):
    run_group(_sample_on_worker, world, tmp_path, str(six_parts), str(tmp_path))
    ds = open_dataset(six_parts)
    whole = _merged(ds)
    local = LocalNodeData.from_dataset(ds, backend="cpu")
    n = ds.meta.num_nodes
    for rank in range(world):
        got = np.load(tmp_path / f"rank{rank}.npz")
        for name, kw in MODES.items():
            seeds = _seeds(rank, n)
            want = NeighborSampler(whole, FANOUTS, seed=8, backend="cpu", **kw).sample(
                seeds, _times(seeds) if "temporal" in kw else None, batch_index=5 + rank)
            from graphtrain.sampling.minibatch import MiniBatch

            b = MiniBatch(n_id=got[f"{name}_n_id"], edge_index=got[f"{name}_edge_index"], e_id=got[f"{name}_e_id"],
                          num_sampled_nodes=got[f"{name}_nodes"].tolist(), num_sampled_edges=got[f"{name}_edges"].tolist(),
                          node_time=got[f"{name}_node_time"] if "temporal" in kw else None)
            _same_batch(want, b)
            assert np.array_equal(got[f"{name}_x"], local.features(want.n_id))
            assert np.array_equal(got[f"{name}_xc"], local.features(want.n_id))
            assert np.array_equal(got[f"{name}_y"], local.labels(want.seeds))
            assert len(set(ds.book.node_part(want.n_id).tolist())) == 6  # the batch spans every partition
            # hop answers carrying the features: the same batches and rows
            for cache in (0, 40):
                for fanouts in (FANOUTS, [5]):
                    want = NeighborSampler(whole, fanouts, seed=8, backend="cpu", **kw).sample(
                        seeds, _times(seeds) if "temporal" in kw else None, batch_index=5 + rank)
                    tag = f"carried{cache}_{len(fanouts)}_{name}"
                    assert np.array_equal(got[f"{tag}_n_id"], want.n_id)
                    assert np.array_equal(got[f"{tag}_edge_index"], want.edge_index)
                    assert np.array_equal(got[f"{tag}_x"], local.features(want.n_id))
                    # two collectives per exchanged hop (these seeds span every owner, so every hop
                    # is exchanged; overflow rounds are not counted); the features need none with two
                    # workers and one fetch round (two collectives: IDs, rows) with three
                    hops = len(fanouts)
                    assert int(got[f"{tag}_calls"]) == {1: 0, 2: 2 * hops, 3: 2 * hops + 2}[world], (tag, world)
        assert got["empty_x"].shape == ((0, 3) if rank == 0 else (3, 3))
        if rank:
            assert np.array_equal(got["empty_x"], local.features(np.array([n - 1, 0, n // 2])))
        for cache in (0, 40):
            assert np.array_equal(got[f"carried{cache}_outside_x"], local.features(np.array([n - 1, 0, n // 2])))
        assert (int(got["bytes_sent"]) > 0) == (world > 1)
        assert (int(got["cache_size"]) == 40) == (world > 1)
        assert bool(got["threads_allowed"]) == (world == 1)


def test_merge_graphs_and_bad_shards(six_parts):
    ds = open_dataset(six_parts)
    merged = merge_graphs([ds.graph(p) for p in (2, 3, 4)])
    merged.validate()
    lo, hi = ds.book.node_range(2)[0], ds.book.node_range(4)[1]
    assert (merged.node_start, merged.node_stop) == (lo, hi)
    assert merged.edge_start == ds.book.edge_range(2)[0] and merged.num_edges == ds.book.edge_range(4)[1] - merged.edge_start
    with pytest.raises(ConfigError, match="not consecutive"):
        merge_graphs([ds.graph(1), ds.graph(3)])
    with pytest.raises(ConfigError, match="2 partition runs for 1 workers"):
        open_worker_shard(ds, [0, 3, 6], Exchange(0, 1))


def _loader_on_worker(rank, world, ds_dir, out_dir):
    from graphtrain.sampling.loader import NodeLoader

    ds = open_dataset(ds_dir)
    shard = open_worker_shard(ds, ds.book.contiguous_runs(world), Exchange(rank, world), backend="cpu")
    lo, hi = shard.node_range
    n = ds.meta.num_nodes
    foreign = np.array([(hi + 5 * k) % n for k in range(1, 4)], dtype=np.int64)  # dealt from other workers
    seeds = np.concatenate([np.arange(lo, lo + 20, dtype=np.int64), foreign])
    loader = NodeLoader(NeighborSampler(shard.hop_sampler("cpu"), FANOUTS, seed=8, backend="cpu"), seeds, 8,
                        seed=1, prefetch=0)
    out, calls = {}, []
    for b, batch in enumerate(_counting(loader.batches(1), shard.exchange, calls)):
        out.update({f"b{b}_{k}": v for k, v in vars(batch).items() if isinstance(v, np.ndarray)})
    out["calls"] = np.array(calls)
    out["foreign"] = foreign
    carried = shard.distributed_node_data(3, True, cache_nodes=10)
    loader = NodeLoader(NeighborSampler(shard.hop_sampler("cpu", carried), FANOUTS, seed=8, backend="cpu"), seeds, 8,
                        seed=1, prefetch=0, node_data=carried)
    calls = []
    for b, batch in enumerate(_counting(loader.batches(1), shard.exchange, calls)):
        out[f"carried_b{b}_n_id"] = batch.n_id
        out[f"carried_b{b}_x"] = batch.x
    out["carried_calls"] = np.array(calls)
    np.savez(f"{out_dir}/loader{rank}.npz", **out)


def _counting(batches, exchange, calls):
    """Yield the batches, noting the payload exchanges each one took."""
    while True:
        before = exchange.stats.calls
        try:
            batch = next(batches)
        except StopIteration:
            return
        calls.append(exchange.stats.calls - before)
        yield batch


@pytest.mark.parametrize("world", [2, 3])
def test_batches_of_owned_seeds_skip_the_first_hop_exchange(six_parts, tmp_path, world):
    run_group(_loader_on_worker, world, tmp_path, str(six_parts), str(tmp_path))
    ds = open_dataset(six_parts)
    whole = NeighborSampler(_merged(ds), FANOUTS, seed=8, backend="cpu")
    local = LocalNodeData.from_dataset(ds, backend="cpu")
    for rank in range(world):
        got = np.load(tmp_path / f"loader{rank}.npz")
        calls = got["calls"].tolist()
        assert len(calls) == 3  # 23 seeds, batch 8
        # unowned seeds come last: the first two batches are all own seeds on every worker and
        # skip hop 1's request and answer exchanges; the last one holds the foreign seeds
        assert set(got["b2_n_id"][:7].tolist()) >= set(got["foreign"].tolist())
        assert calls[0] == calls[1] == calls[2] - 2
        for b in range(3):
            want = whole.sample(got[f"b{b}_n_id"][: (8 if b < 2 else 7)], batch_index=1 * 3 + b)
            assert np.array_equal(want.n_id, got[f"b{b}_n_id"]) and np.array_equal(want.edge_index, got[f"b{b}_edge_index"])
            # the same batches with their features carried in the hop answers
            assert np.array_equal(got[f"carried_b{b}_n_id"], want.n_id)
            assert np.array_equal(got[f"carried_b{b}_x"], local.features(want.n_id))
        # per batch: hop 2's request and answer (hop 1's too in the last batch), the labels' fetch
        # (two payload exchanges), and a fetch round for the features only with three workers
        fetch = 2 + (0 if world == 2 else 2)
        assert got["carried_calls"].tolist() == [2 + fetch, 2 + fetch, 4 + fetch]
