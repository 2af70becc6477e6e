"""Small random graphs shared by the kernel tests."""
from __future__ import annotations

import numpy as np

from graphtrain.graph import CSCGraph
from graphtrain.kernels.hop_graph import HopGraph


def random_hop_graph(num_nodes=60, num_edges=900, seed=0, time_sorted=True, edge_start=100):
    """A skewed random graph with time and weight columns (20% zero weights) as a HopGraph.

    With ``time_sorted=False`` each destination's in-edges are shuffled (times no longer sorted).
    """
    rs = np.random.default_rng(seed)
    src = rs.integers(0, num_nodes, num_edges)
    dst = (rs.pareto(1.0, num_edges) * 3).astype(np.int64) % num_nodes
    time = rs.integers(0, 100, num_edges)
    weight = rs.random(num_edges) * (rs.random(num_edges) > 0.2)
    g, _ = CSCGraph.from_edges(src, dst, num_nodes, {"time": time, "weight": weight})
    src_arr, t, w = g.src, g.time, g.weight
    if not time_sorted:
        perm = np.arange(num_edges)
        for v in range(num_nodes):
            lo, hi = g.indptr[v], g.indptr[v + 1]
            perm[lo:hi] = lo + rs.permutation(hi - lo)
        src_arr, t, w = src_arr[perm], t[perm], w[perm]
    return HopGraph(g.indptr, src_arr, edge_start, w.astype(np.float64), t.astype(np.int64), time_sorted)


def random_entries(hg: HopGraph, n, seed=1, max_time=120):
    rs = np.random.default_rng(seed)
    local = rs.integers(0, hg.num_nodes, n).astype(np.int64)
    keys = rs.integers(0, 2**63, n).astype(np.uint64) * np.uint64(2) + np.uint64(1)
    bounds = rs.integers(-5, max_time, n).astype(np.int64)
    return local, keys, bounds


# option sets covering every mode; "bounds" is replaced by the entries' time bounds
MODES = {
    "uniform": dict(),
    "uniform_replace": dict(replace=True),
    "weighted": dict(use_weight=True),
    "weighted_replace": dict(use_weight=True, replace=True),
    "temporal_uniform": dict(time_bound="bounds"),
    "temporal_strict": dict(time_bound="bounds", strict=True),
    "temporal_replace": dict(time_bound="bounds", replace=True),
    "temporal_recent": dict(time_bound="bounds", recent=True),
    "temporal_weighted": dict(time_bound="bounds", use_weight=True),
}


def mode_kwargs(mode, bounds):
    kw = dict(MODES[mode])
    if kw.get("time_bound") == "bounds":
        kw["time_bound"] = bounds
    return kw
