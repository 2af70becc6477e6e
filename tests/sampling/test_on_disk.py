"""Sampling memory-mapped partitions written by the real partitioner."""
import numpy as np

from graphtrain.graph import CSCGraph
from graphtrain.partition import open_dataset
from graphtrain.partition.partitioner import partition_arrays
from graphtrain.sampling.features import LocalNodeData
from graphtrain.sampling.hop import LocalHopSampler
from graphtrain.sampling.loader import NodeLoader
from graphtrain.sampling.neighbor import NeighborSampler
from tests.sampling.graphs import check_batch_against_graph
from tests.sampling.test_neighbor import RoutingHopSampler, _same_batch


def _raw_graph(seed=0, n=300, e=4000):
    rs = np.random.default_rng(seed)
    raw = rs.choice(10**9, n, replace=False)
    src, dst = raw[rs.integers(0, n, e)], raw[(rs.pareto(1.0, e) * 5).astype(int) % n]
    return raw, src, dst, rs.integers(0, 10_000, e), rs.random(e) + 0.1


def _merged(ds) -> CSCGraph:
    """All partitions of a dataset as one in-memory graph (test oracle)."""
    parts = [ds.graph(p) for p in range(ds.num_parts)]
    indptr = [np.zeros(1, np.int64)]
    for g in parts:
        indptr.append(g.indptr[1:] + g.edge_start)
    return CSCGraph(
        indptr=np.concatenate(indptr), src=np.concatenate([g.src for g in parts]),
        num_global_nodes=ds.meta.num_nodes,
        edge_attrs={k: np.concatenate([g.edge_attrs[k] for g in parts]) for k in parts[0].edge_attrs},
        time_sorted=ds.meta.time_sorted,
    )


def test_temporal_sampling_on_a_memory_mapped_partition(tmp_path):
    raw, src, dst, t, w = _raw_graph()
    feats = np.random.default_rng(1).random((raw.size, 4)).astype(np.float32)
    partition_arrays(src, dst, tmp_path / "ds", 1, edge_attrs={"t": t, "w": w}, time_column="t", weight_column="w",
                     node_ids=raw, node_features=feats, node_labels=np.arange(raw.size) % 2)
    ds = open_dataset(tmp_path / "ds")
    g = ds.graph(0)
    assert isinstance(g.src, np.memmap) and g.time_sorted
    sampler = NeighborSampler(g, [5, 5], temporal="uniform", backend="cpu", seed=3)
    seeds = np.arange(0, ds.meta.num_nodes, 5)
    times = np.full(seeds.size, 5000)
    loader = NodeLoader(sampler, seeds, 16, seed_time=times, node_data=LocalNodeData.from_dataset(ds, backend="cpu"))
    raw_of = ds.raw_ids(0)
    raw_edges = set(zip(src.tolist(), dst.tolist(), t.tolist()))
    for b in loader:
        check_batch_against_graph(b, g, [5, 5])
        assert np.all(g.time[b.e_id] <= 5000)
        # sampled edges are input edges: map global IDs back to raw IDs
        for s, d, tt in zip(raw_of[b.n_id[b.edge_index[0]]], raw_of[b.n_id[b.edge_index[1]]], g.time[b.e_id]):
            assert (int(s), int(d), int(tt)) in raw_edges
        # features follow the node through the raw ID
        pos = np.searchsorted(raw, raw_of[b.n_id], sorter=np.argsort(raw))
        assert np.array_equal(b.x, feats[np.argsort(raw)[pos]])
    # weighted draws from the memory-mapped weight column: the reference backend's batch on an in-memory copy
    # (their distribution: test_neighbor.test_weighted_sampling_follows_the_reference_distribution)
    weighted = NeighborSampler(g, [3], weight="weight", backend="cpu").sample(seeds)
    in_memory = CSCGraph(indptr=np.array(g.indptr), src=np.array(g.src), num_global_nodes=g.num_global_nodes,
                         edge_attrs={k: np.array(v) for k, v in g.edge_attrs.items()}, time_sorted=g.time_sorted)
    _same_batch(weighted, NeighborSampler(in_memory, [3], weight="weight", backend="reference").sample(seeds))
    check_batch_against_graph(weighted, g, [3])
    assert np.array_equal(np.bincount(weighted.edge_index[1], minlength=seeds.size), np.minimum(g.in_degree()[seeds], 3))


def test_partitions_sampled_by_their_owners_give_the_whole_graph_batch(tmp_path):
    raw, src, dst, t, w = _raw_graph(seed=2)
    partition_arrays(src, dst, tmp_path / "ds", 3, edge_attrs={"t": t}, time_column="t", method="ldg")
    ds = open_dataset(tmp_path / "ds")
    owners = RoutingHopSampler([LocalHopSampler(ds.graph(p), "cpu") for p in range(3)], ds.book)
    whole = _merged(ds).validate()
    seeds = np.arange(0, ds.meta.num_nodes, 9)
    times = np.random.default_rng(3).integers(0, 10_000, seeds.size)
    for kw, st in (({}, None), ({"temporal": "uniform"}, times)):
        a = NeighborSampler(whole, [6, 4], backend="cpu", seed=8, **kw).sample(seeds, st, batch_index=5)
        b = NeighborSampler(owners, [6, 4], backend="cpu", seed=8, **kw).sample(seeds, st, batch_index=5)
        _same_batch(a, b)
        assert len(set(ds.book.node_part(a.n_id).tolist())) == 3
