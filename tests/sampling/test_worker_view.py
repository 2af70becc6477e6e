"""A worker serving several partitions views them (issue 20 item 2): nothing is concatenated, and its
samples are those of the merged graph (``open_worker_shard(..., merge=True)``, the former layout).

Distributed batches (every hop mode, carried and cached features, the loader) on 1, 2 and 3
workers of a 6-partition dataset -- 6, 3 and 2 partitions per worker -- are compared array by
array with the merged layout's, as are the hub cache's nodes, the latest edge time and the
worker's run bounds. Training on the view is compared with training on the merged graph in
``tests/train/test_worker_view_training.py``.
"""
import numpy as np
import pytest

from graphtrain.comm import Exchange
from graphtrain.errors import ConfigError
from graphtrain.partition import open_dataset
from graphtrain.partition.view import PartitionedGraph
from graphtrain.sampling.loader import NodeLoader
from graphtrain.sampling.neighbor import NeighborSampler
from graphtrain.sampling.partitioned import PartitionedHopSampler
from graphtrain.sampling.remote_features import hot_remote_nodes
from graphtrain.sampling.shard import _hot_remote_nodes, max_edge_time, merge_graphs, open_worker_shard, run_graph
from tests.sampling.dist_helpers import run_group
from tests.sampling.test_distributed import MODES, _seeds, _times, six_parts  # noqa: F401 -- the fixture

FANOUTS = [6, 4]


def _batches(shard, rank, n):
    """Every array of the batches this worker samples through ``shard`` (a collective)."""
    out = {}
    for cache in (0, 40):
        carried = shard.distributed_node_data(3, True, cache_nodes=cache)
        out[f"cache{cache}_ids"] = carried._cache_ids  # the hub nodes picked (the same counts: the same hubs)
        for name, kw in MODES.items():
            for data in (None, carried):
                sampler = NeighborSampler(shard.hop_sampler("cpu", data), FANOUTS, seed=8, backend="cpu", **kw)
                seeds = _seeds(rank, n)
                b = sampler.sample(seeds, _times(seeds) if "temporal" in kw else None, batch_index=5 + rank)
                key = f"{name}/{cache}/{data is not None}"
                out.update({f"{key}/{k}": v for k, v in vars(b).items() if isinstance(v, np.ndarray)})
                out[f"{key}/x"] = carried.features(b.n_id)
                out[f"{key}/sizes"] = np.array(b.num_sampled_nodes + b.num_sampled_edges)
    lo, hi = shard.node_range
    loader = NodeLoader(NeighborSampler(shard.hop_sampler("cpu"), FANOUTS, seed=8, backend="cpu"),
                        np.arange(lo, min(hi, lo + 40), dtype=np.int64), 16, seed=1, prefetch=0)
    for i, batch in enumerate(loader.batches(2)):
        out.update({f"loader{i}/{k}": v for k, v in vars(batch).items() if isinstance(v, np.ndarray)})
    return out


def _both_layouts(rank, world, ds_dir, out_dir):
    ds = open_dataset(ds_dir)
    runs = ds.book.contiguous_runs(world)
    ex = Exchange(rank, world)
    view = open_worker_shard(ds, runs, ex, backend="cpu")
    merged = open_worker_shard(ds, runs, ex, backend="cpu", merge=True)
    several = len(view.parts) > 1
    assert isinstance(view.graph, PartitionedGraph) == several == isinstance(view.local_hop_sampler(), PartitionedHopSampler)
    graphs = view.graph.parts if several else (view.graph,)
    assert all(isinstance(g.src, np.memmap) and isinstance(g.indptr, np.memmap) for g in graphs)  # no copy
    assert isinstance(merged.graph.src, np.memmap) != several  # the former layout concatenated several
    assert (view.graph.node_start, view.graph.node_stop) == (merged.graph.node_start, merged.graph.node_stop)
    assert (view.graph.edge_start, view.graph.num_edges) == (merged.graph.edge_start, merged.graph.num_edges)
    assert view.max_edge_time() == merged.max_edge_time() == int(np.max(merged.graph.time))
    assert set(view.edge_columns) == set(merged.edge_columns) == {"time", "weight"}
    n = ds.meta.num_nodes
    a, b = _batches(view, rank, n), _batches(merged, rank, n)
    assert a.keys() == b.keys()
    for k in a:
        assert a[k].dtype == b[k].dtype and np.array_equal(a[k], b[k]), f"rank {rank} of {world}: {k}"
    np.savez(f"{out_dir}/rank{rank}.npz", count=len(a))


@pytest.mark.parametrize("world", [1, 2, 3])
def test_viewed_partitions_sample_what_the_merged_graph_samples(six_parts, tmp_path, world):  # noqa: F811
    if world == 1:
        _both_layouts(0, 1, str(six_parts), str(tmp_path))
    else:
        run_group(_both_layouts, world, tmp_path, str(six_parts), str(tmp_path), timeout=300)
    assert all(int(np.load(tmp_path / f"rank{r}.npz")["count"]) > 50 for r in range(world))
    assert np.diff(open_dataset(six_parts).book.contiguous_runs(world)).max() > 1  # some worker viewed several


def test_the_hub_cache_of_a_view_is_the_merged_graphs(six_parts):  # noqa: F811
    ds = open_dataset(six_parts)
    for parts in ((0, 1, 2), (2, 3), (1, 2, 3, 4, 5)):
        graphs = [ds.graph(p) for p in parts]
        view, merged = run_graph(graphs, ds.book, parts[0]), merge_graphs(graphs)
        for k in (0, 1, 5, 40, 10**6):
            assert np.array_equal(_hot_remote_nodes(view, k), hot_remote_nodes(merged, k)), (parts, k)
        assert max_edge_time(view) == int(np.max(merged.time))


def test_a_run_view_holds_only_its_partitions(six_parts):  # noqa: F811
    ds = open_dataset(six_parts)
    view = run_graph([ds.graph(p) for p in (2, 3, 4)], ds.book, 2)
    assert list(view.part_ids) == [2, 3, 4]
    lo, hi = ds.book.node_range(2)[0], ds.book.node_range(4)[1]
    assert (view.node_start, view.node_stop, view.num_nodes) == (lo, hi, hi - lo)
    assert np.array_equal(view.in_degree(), merge_graphs([ds.graph(p) for p in (2, 3, 4)]).in_degree())
    # the pieces of a node range, partition by partition
    b3 = ds.book.node_range(3)
    pieces = list(view.pieces(b3[0] - lo - 2, b3[1] - lo + 1))
    assert [(g.node_start, la, lb) for g, la, lb in pieces] == [(lo, b3[0] - lo - 2, b3[0] - lo), (b3[0], 0, b3[1] - b3[0]),
                                                                 (b3[1], 0, 1)]
    assert list(view.pieces(4, 4)) == []
    sampler = PartitionedHopSampler(view, "cpu")
    with pytest.raises(ConfigError, match="out of range .* of this view's partitions"):
        NeighborSampler(sampler, [3], backend="cpu").sample([lo - 1])
    assert run_graph([ds.graph(3)], ds.book, 3) is not None and not isinstance(run_graph([ds.graph(3)], ds.book, 3),
                                                                              PartitionedGraph)
    with pytest.raises(ConfigError, match="does not hold"):
        PartitionedGraph((ds.graph(2), ds.graph(4)), ds.book, 2)
    with pytest.raises(ConfigError, match="no run"):
        PartitionedGraph((ds.graph(5),), ds.book, 6)
