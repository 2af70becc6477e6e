"""``open_dataset(d).graph()``: the whole graph as a view over the partitions, sampled in one process."""
from __future__ import annotations

import numpy as np
import pytest

from graphtrain.errors import ConfigError
from graphtrain.partition import open_dataset
from graphtrain.partition.partitioner import partition_arrays
from graphtrain.partition.view import PartitionedGraph
from graphtrain.sampling.shard import merge_graphs
from graphtrain.sampling.features import LocalNodeData
from graphtrain.sampling.hop import LocalHopSampler
from graphtrain.sampling.loader import NodeLoader
from graphtrain.sampling.neighbor import NeighborSampler
from graphtrain.sampling.partitioned import PartitionedHopSampler

MODES = {
    "uniform": {},
    "replace": {"replace": True},
    "weighted": {"weight": "weight"},
    "temporal": {"temporal": "uniform"},
    "recent": {"temporal": "recent"},
}


@pytest.fixture(scope="module")
def five_parts(tmp_path_factory):
    root = tmp_path_factory.mktemp("view")
    rs = np.random.default_rng(3)
    n, e = 500, 6000
    raw = rs.choice(10**6, n, replace=False)
    src, dst = raw[rs.integers(0, n, e)], raw[rs.integers(0, n, e)]
    partition_arrays(src, dst, root / "ds", 5, edge_attrs={"t": rs.integers(0, 10_000, e), "w": rs.random(e)},
                     time_column="t", weight_column="w", node_ids=raw,
                     node_features=rs.random((n, 3)).astype(np.float32), method="ldg")
    return root / "ds"


def _same(a, b):
    assert np.array_equal(a.n_id, b.n_id) and np.array_equal(a.edge_index, b.edge_index)
    assert np.array_equal(a.e_id, b.e_id)
    assert a.num_sampled_nodes == b.num_sampled_nodes and a.num_sampled_edges == b.num_sampled_edges


def test_graph_without_a_partition_is_a_view_over_the_memory_mapped_partitions(five_parts):
    ds = open_dataset(five_parts)
    g = ds.graph()
    assert isinstance(g, PartitionedGraph) and g.num_parts == 5
    assert (g.num_nodes, g.num_edges, g.node_start, g.node_stop) == (ds.meta.num_nodes, ds.meta.num_edges, 0, ds.meta.num_nodes)
    assert all(isinstance(p.src, np.memmap) and isinstance(p.indptr, np.memmap) for p in g.parts)  # no copy
    assert set(g.edge_columns) == {"time", "weight"} and g.time_sorted
    assert np.array_equal(g.in_degree(), merge_graphs([ds.graph(p) for p in range(5)]).in_degree())
    with pytest.raises(ConfigError, match="book"):
        PartitionedGraph(g.parts[:4], ds.book)
    with pytest.raises(ConfigError, match="does not hold"):
        PartitionedGraph((g.parts[1], g.parts[0]) + g.parts[2:], ds.book)


@pytest.mark.parametrize("backend", ["reference", "cpu"])
def test_view_batches_equal_the_merged_graph_batches(five_parts, backend):
    ds = open_dataset(five_parts)
    merged = merge_graphs([ds.graph(p) for p in range(ds.num_parts)])
    seeds = np.arange(0, ds.meta.num_nodes, 3, dtype=np.int64)
    assert np.unique(ds.book.node_part(seeds)).size == 5
    times = (seeds * 37) % 10_000
    for name, kw in MODES.items():
        t = times if "temporal" in kw else None
        view = NeighborSampler(ds.graph(), [6, 4], seed=2, backend=backend, **kw)
        assert isinstance(view.hop_sampler, PartitionedHopSampler)
        want = NeighborSampler(merged, [6, 4], seed=2, backend=backend, **kw).sample(seeds, t, batch_index=7)
        _same(view.sample(seeds, t, batch_index=7), want)


def test_view_loader_with_every_partitions_node_data(five_parts):
    ds = open_dataset(five_parts)
    sampler = NeighborSampler(ds.graph(), [5, 5], seed=0, backend="cpu")
    loader = NodeLoader(sampler, np.arange(ds.meta.num_nodes), 128, node_data=LocalNodeData.from_dataset(ds),
                        sampling_threads=2)
    n = 0
    for batch in loader:
        assert batch.x.shape == (batch.n_id.size, 3)
        n += batch.batch_size
    assert n == ds.meta.num_nodes
    with pytest.raises(ConfigError, match="out of range"):
        sampler.sample([ds.meta.num_nodes])


def test_view_of_one_partition_samples_with_the_local_sampler(tmp_path):
    rs = np.random.default_rng(0)
    partition_arrays(rs.integers(0, 50, 400), rs.integers(0, 50, 400), tmp_path / "one", 1)
    ds = open_dataset(tmp_path / "one")
    sampler = NeighborSampler(ds.graph(), [3], backend="cpu")
    assert isinstance(sampler.hop_sampler, LocalHopSampler)  # keeps the whole-batch kernel path
    _same(sampler.sample(np.arange(10)), NeighborSampler(ds.graph(0), [3], backend="cpu").sample(np.arange(10)))
