"""Graphs and datasets shared by the sampling tests."""
from __future__ import annotations

import numpy as np

from graphtrain.graph import CSCGraph
from graphtrain.io import staged_directory
from graphtrain.partition import format as fmt


def random_graph(num_nodes=200, num_edges=3000, seed=0, weights=True):
    """A skewed random whole graph with 'time' (int64) and 'weight' (float64) edge columns."""
    rs = np.random.default_rng(seed)
    src = rs.integers(0, num_nodes, num_edges)
    dst = (rs.pareto(1.0, num_edges) * 5).astype(np.int64) % num_nodes
    attrs = {"time": rs.integers(0, 1000, num_edges)}
    if weights:
        attrs["weight"] = rs.random(num_edges) + 0.01
    g, _ = CSCGraph.from_edges(src, dst, num_nodes, attrs)
    return g


def range_slice(g: CSCGraph, start: int, stop: int) -> CSCGraph:
    """The in-edges of global nodes ``[start, stop)`` of a whole graph, as that range's partition."""
    lo, hi = int(g.indptr[start]), int(g.indptr[stop])
    return CSCGraph(
        indptr=g.indptr[start : stop + 1] - lo,
        src=g.src[lo:hi],
        node_start=start,
        edge_start=g.edge_start + lo,
        num_global_nodes=g.num_global_nodes,
        edge_attrs={k: v[lo:hi] for k, v in g.edge_attrs.items()},
        time_sorted=g.time_sorted,
    )


def write_dataset(root, g: CSCGraph, node_bounds, features=None, labels=None):
    """Write ``g`` cut at ``node_bounds`` as a dataset directory through the format module's writers."""
    node_bounds = [int(b) for b in node_bounds]
    edge_bounds = [int(g.indptr[b]) for b in node_bounds]
    with staged_directory(root) as tmp:
        files = {}
        for p in range(len(node_bounds) - 1):
            part = range_slice(g, node_bounds[p], node_bounds[p + 1])
            pd = fmt.part_dir_name(p)
            arrays = {fmt.INDPTR: part.indptr, fmt.SRC: part.src}
            arrays.update({fmt.edge_file(k): v for k, v in part.edge_attrs.items()})
            if features is not None:
                arrays[fmt.NODE_FEAT] = features[node_bounds[p] : node_bounds[p + 1]]
            if labels is not None:
                arrays[fmt.NODE_LABEL] = labels[node_bounds[p] : node_bounds[p + 1]]
            for name, arr in arrays.items():
                files[f"{pd}/{name}.npy"] = fmt.write_array(tmp / pd / f"{name}.npy", arr)
        columns = [fmt.EdgeColumn(k, str(v.dtype), k) for k, v in g.edge_attrs.items()]
        meta = fmt.DatasetMeta(
            num_parts=len(node_bounds) - 1, num_nodes=g.num_global_nodes, num_edges=g.num_edges,
            node_bounds=node_bounds, edge_bounds=edge_bounds, id_type="int64", edge_columns=columns,
            time_sorted=g.time_sorted, files=files,
        )
        fmt.write_meta(tmp, meta)
    return fmt.open_dataset(root)


def check_batch_against_graph(batch, g: CSCGraph, fanouts):
    """Every edge of the batch is a real in-edge with the right ID; per-hop fanouts hold."""
    batch.validate()
    src_g = batch.n_id[batch.edge_index[0]]
    dst_g = batch.n_id[batch.edge_index[1]]
    pos = batch.e_id - g.edge_start
    assert np.all((pos >= 0) & (pos < g.num_edges))
    assert np.array_equal(g.src[pos], src_g)
    assert np.array_equal(g.dst()[pos], dst_g)
    lo = 0
    for hop, k in enumerate(fanouts):
        n = batch.num_sampled_edges[hop]
        per_dst = np.bincount(batch.edge_index[1, lo : lo + n], minlength=batch.num_nodes)
        assert per_dst.max(initial=0) <= k
        lo += n
