"""The data plane's kernels get one type signature however a worker's shard is laid out, so a kernel
Numba compiled (and cached on disk) in one run serves the next: a 2-worker run after a 1-worker run
compiles only the kernels that the exchange alone uses, and a second 2-worker run compiles nothing.

A kernel is compiled per signature, and a read-only (memory-mapped) array is a different type from
a writable one: a worker serving one partition sampled from mapped arrays, a worker serving two
from merged in-memory ones, and each compiled the sampling kernel anew (issue 18 item 9: the first
epoch of a 2-worker benchmark run took 26.8 s against 1.28 s for the second).
"""
import json
from pathlib import Path

import numba
import numpy as np
import pytest

from graphtrain.partition import open_dataset
from graphtrain.partition.partitioner import partition_arrays
from graphtrain.sampling.shard import merge_graphs
from tests.sampling.dist_helpers import run_group

FEATURES = 4


@pytest.fixture(scope="module")
def three_parts(tmp_path_factory):
    root = tmp_path_factory.mktemp("signatures")
    rs = np.random.default_rng(9)
    n, e = 600, 6000
    raw = rs.choice(10**6, n, replace=False)
    partition_arrays(raw[rs.integers(0, n, e)], raw[rs.integers(0, n, e)], root / "ds", 3,
                     edge_attrs={"w": rs.random(e)}, weight_column="w", node_ids=raw,
                     node_features=rs.random((n, FEATURES)).astype(np.float32),
                     node_labels=rs.integers(0, 2, n), method="ldg")
    return root / "ds"


def test_a_merged_graph_has_a_mapped_partitions_array_types(three_parts):
    ds = open_dataset(three_parts)
    mapped = ds.graph(0)
    merged = merge_graphs([ds.graph(p) for p in range(ds.num_parts)])
    assert numba.typeof(merged.indptr) == numba.typeof(mapped.indptr)
    assert numba.typeof(merged.src) == numba.typeof(mapped.src)
    assert merged.edge_attrs.keys() == mapped.edge_attrs.keys()
    for k in mapped.edge_attrs:
        assert numba.typeof(merged.edge_attrs[k]) == numba.typeof(mapped.edge_attrs[k])


def test_row_copies_from_mapped_and_in_memory_tables_share_one_signature():
    from graphtrain.kernels.rows import _scatter_rows, scatter_rows

    table = np.arange(40, dtype=np.float32).reshape(10, 4)
    mapped = table.copy()
    mapped.setflags(write=False)
    rows, positions = np.array([3, 1, 7]), np.array([2, 0, 1])
    out = np.zeros((3, 4), np.float32)
    scatter_rows(mapped, rows, out, positions)
    signatures = set(_scatter_rows.signatures)
    again = np.zeros_like(out)
    scatter_rows(table, rows, again, positions)
    assert set(_scatter_rows.signatures) == signatures
    assert np.array_equal(out, table[[1, 7, 3]]) and np.array_equal(again, out)
    assert table.flags.writeable  # the caller's array is left as it was


def test_sampling_from_mapped_and_in_memory_graphs_shares_one_signature(three_parts):
    """A mapped partition's arrays are read-only, an in-memory graph's writable: the CPU backend
    passes both read-only, so the sampling kernels (tens of seconds of compilation per signature)
    compile once for both."""
    from graphtrain.kernels import cpu
    from graphtrain.kernels.hop_graph import HopGraph

    mapped = open_dataset(three_parts).graph(0)
    graphs = [HopGraph(np.asarray(mapped.indptr), np.asarray(mapped.src), mapped.edge_start)]
    graphs.append(HopGraph(np.array(mapped.indptr), np.array(mapped.src), mapped.edge_start))  # writable copies
    assert not graphs[0].indptr.flags.writeable and graphs[1].indptr.flags.writeable
    seeds = np.arange(0, mapped.num_nodes, 3)
    got = []
    for g in graphs:
        got.append(cpu.sample_hop(g, seeds, np.arange(seeds.size, dtype=np.uint64), 4))
        if len(got) == 1:
            signatures = set(cpu._sample_slots.signatures)
    assert set(cpu._sample_slots.signatures) == signatures
    assert all(np.array_equal(a, b) for a, b in zip(*got))
    assert graphs[1].indptr.flags.writeable  # the caller's arrays are left as they were


def _kernel_use() -> dict:
    """``{function: {"used": [signatures], "compiled": [signatures not found in the cache]}}`` of
    every graphtrain kernel this process called."""
    import gc

    from numba.core.registry import CPUDispatcher

    use = {}
    for d in gc.get_objects():
        if isinstance(d, CPUDispatcher) and d.py_func.__module__.startswith("graphtrain"):
            hits, misses = d.stats.cache_hits, d.stats.cache_misses
            if hits or misses:
                name = f"{d.py_func.__module__}.{d.py_func.__qualname__}"
                use[name] = {"used": sorted(map(str, {**hits, **misses})), "compiled": sorted(map(str, misses))}
    return use


def _train_batches_on_worker(rank, world, ds_dir, out_dir, run):
    """The training data plane of worker ``rank``: hop exchange, carried and cached remote features."""
    from graphtrain.comm import Exchange
    from graphtrain.sampling.loader import NodeLoader
    from graphtrain.sampling.neighbor import NeighborSampler
    from graphtrain.sampling.shard import open_worker_shard

    ds = open_dataset(ds_dir)
    shard = open_worker_shard(ds, ds.book.contiguous_runs(world), Exchange(rank, world), backend="cpu")
    node_data = shard.distributed_node_data(FEATURES, True, cache_nodes=50)
    lo, hi = shard.node_range
    loader = NodeLoader(NeighborSampler(shard.hop_sampler("cpu", node_data), [5, 5], seed=3, backend="cpu"),
                        np.arange(lo, hi, dtype=np.int64)[:64], 32, seed=1, prefetch=0, node_data=node_data)
    for _ in loader.batches(0):
        pass
    Path(out_dir, f"{run}-rank{rank}.json").write_text(json.dumps(_kernel_use()))


@pytest.mark.slow
def test_a_two_worker_run_reuses_the_one_worker_kernels_and_then_compiles_nothing(three_parts, tmp_path):
    # every run in fresh processes, as Ray's workers; the kernels' cache is the user's (warm or not)
    for run, world in (("one", 1), ("two", 2), ("again", 2)):
        run_group(_train_batches_on_worker, world, tmp_path, str(three_parts), str(tmp_path), run, timeout=600)
    one = json.loads((tmp_path / "one-rank0.json").read_text())
    workers = [json.loads((tmp_path / f"two-rank{r}.json").read_text()) for r in range(2)]
    # one worker serves three partitions (merged); of two workers, one serves a single (mapped) one
    assert sorted(np.diff(open_dataset(three_parts).book.contiguous_runs(2)).tolist()) == [1, 2]
    for use in workers:  # the kernels both runs call: no signature that the one-worker run lacked
        for name, u in use.items():
            if name in one:
                assert set(u["used"]) <= set(one[name]["used"]), name
    for r in range(2):
        again = json.loads((tmp_path / f"again-rank{r}.json").read_text())
        assert {name: u["compiled"] for name, u in again.items() if u["compiled"]} == {}
