"""Convert a :class:`~graphtrain.sampling.minibatch.MiniBatch` into DGL message-flow blocks.

DGL is optional (its wheels stop at torch 2.2); this module imports it only when called.

For ``L`` hops, ``blocks[0]`` feeds the first GNN layer and ``blocks[L - 1]`` produces the seeds'
outputs. Block ``l`` (hop ``h = L - l``) has as destination nodes the batch's first
``N_{h-1}`` nodes (those reached by hop ``h - 1``; the seeds for ``h = 1``), as source nodes the
first ``N_h`` nodes (destination nodes first, as DGL requires), and as edges the sampled edges of
hops ``1..h`` -- the same computation graph PyG's ``trim_to_layer`` builds from the hop-ordered
batch. Node and edge IDs are in ``srcdata/dstdata[dgl.NID]`` and ``edata[dgl.EID]``; features
(``x``) go to ``blocks[0].srcdata["feat"]``, labels (``y``) to ``blocks[-1].dstdata["label"]``,
time bounds to ``srcdata/dstdata["time"]``.
"""
from __future__ import annotations

from typing import List

import numpy as np

DGL_MISSING = "dgl is not importable; install dgl (DGL 2.1 needs torch <= 2.2.1) to use MiniBatch.to_dgl()"


def to_dgl_blocks(batch) -> List:
    """DGL blocks of ``batch`` (see the module docstring for the layout)."""
    try:
        import dgl
        import torch
    except ImportError as exc:
        raise ImportError(DGL_MISSING) from exc

    cum_nodes = np.cumsum(batch.num_sampled_nodes)  # N_0 = batch size, N_1, ..., N_L
    cum_edges = np.cumsum(batch.num_sampled_edges)
    L = batch.num_hops
    t = lambda a: torch.from_numpy(np.ascontiguousarray(a))  # noqa: E731
    blocks = []
    for layer in range(L):
        h = L - layer
        n_src, n_dst, n_edges = int(cum_nodes[h]), int(cum_nodes[h - 1]), int(cum_edges[h - 1])
        src = batch.edge_index[0, :n_edges]
        dst = batch.edge_index[1, :n_edges]
        block = dgl.create_block((t(src), t(dst)), num_src_nodes=n_src, num_dst_nodes=n_dst)
        block.srcdata[dgl.NID] = t(batch.n_id[:n_src])
        block.dstdata[dgl.NID] = t(batch.n_id[:n_dst])
        block.edata[dgl.EID] = t(batch.e_id[:n_edges])
        if batch.node_time is not None:
            block.srcdata["time"] = t(batch.node_time[:n_src])
            block.dstdata["time"] = t(batch.node_time[:n_dst])
        for name, col in batch.edge_attrs.items():
            block.edata[name] = t(col[:n_edges])
        blocks.append(block)
    if batch.x is not None:
        blocks[0].srcdata["feat"] = t(batch.x)
    if batch.y is not None:
        blocks[-1].dstdata["label"] = t(batch.y)
    return blocks
