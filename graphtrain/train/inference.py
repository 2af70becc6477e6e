"""Layer-wise full-graph inference: every node scored with all its in-edges, not sampled.

Each worker holds the embeddings of its own node range, one layer at a time (``[n_w, H]``; the
input layer is the node features). For layer ``l`` it walks its nodes in chunks of
``chunk_size`` destinations; for each chunk it takes *all* their in-edges from its graph, numbers
the chunk's nodes first and then their other in-neighbours (the sampling kernels' unique +
relabel), fetches the layer ``l - 1`` embeddings of those in-neighbours from their owners through
the data plane (:func:`~graphtrain.sampling.remote_features.fetch_node_rows`), and applies
``model.layer(l, x, edge_index, num_dst)``; the chunk's rows of the result are its layer-``l`` embeddings.

With a time cutoff (``max_time``: a temporally trained model whose seeds all share one time) only
the in-edges with time <= ``max_time`` (``<`` with ``strict``) are used, at every layer: the result
is exactly the inference on the graph without the later edges. Per-node cutoffs cannot be done
layer-wise (a node's embedding is shared by every node that reads it, whatever their times), so
those are scored with the temporal sampler instead (:mod:`graphtrain.train.worker`).

GCN (a model whose ``needs_in_degrees`` is true) normalises each edge ``j -> i`` by
``1 / sqrt(deg(j) deg(i))``, degrees in the whole graph; a chunk's subgraph holds all the in-edges of
its destinations but not those of their in-neighbours. So each worker first counts the in-degree
of each of its nodes (self-loops not counted; with a cutoff, over the edges no later than it), carries
it as one more float32 column of its embedding table (exact up to 2**24), so the sources' degrees
come with their rows in the same fetch, and passes them to ``model.layer(..., in_degree=...)``: the
result is exactly the full-graph GCN, whatever the chunk size and the number of workers.

Every chunk step is a collective, so all workers run ``max_w ceil(n_w / chunk_size)`` steps per
layer (those with fewer nodes take part with empty chunks). Memory per worker: two embedding tables
of its nodes plus one chunk's subgraph.
"""
from __future__ import annotations

from typing import Optional

import numpy as np
import torch

from graphtrain.errors import ConfigError
from graphtrain.kernels import get_backend
from graphtrain.sampling.remote_features import fetch_node_rows


def _check_layerwise(model) -> None:
    for attr in ("num_layers", "layer", "layer_out_channels"):
        if not hasattr(model, attr):
            raise ConfigError(f"layer-wise inference needs model.{attr} (see graphtrain.train.models); "
                              f"{type(model).__name__} has none")


def _in_edges(graph, indptr: np.ndarray, a: int, b: int, edge_time, max_time: Optional[int], strict: bool):
    """``(src, deg)``: the global sources of the in-edges of the worker's nodes ``a .. b-1`` (local
    indices) in CSC order, and each node's count of them -- only those no later than ``max_time``
    when ``edge_time`` is given."""
    e0, e1 = int(indptr[a]), int(indptr[b])
    src = np.asarray(graph.src[e0:e1], dtype=np.int64)
    deg = np.diff(indptr[a : b + 1])
    if edge_time is not None:
        t = np.asarray(edge_time[e0:e1])
        keep = t < max_time if strict else t <= max_time
        if not keep.all():
            src = src[keep]
            deg = np.bincount(np.repeat(np.arange(b - a), deg)[keep], minlength=b - a)
    return src, deg


def _in_degrees(graph, indptr: np.ndarray, lo: int, n: int, block: int, edge_time, max_time, strict) -> np.ndarray:
    """float32 in-degree of each of the worker's ``n`` nodes over the edges the layers use, self-loops
    not counted (GCN's normalisation: PyG's ``gcn_norm`` replaces them by one self-loop per node)."""
    out = np.empty(n, dtype=np.float32)
    for a in range(0, n, block):
        b = min(n, a + block)
        src, deg = _in_edges(graph, indptr, a, b, edge_time, max_time, strict)
        dst = np.repeat(np.arange(b - a, dtype=np.int64), deg)
        out[a:b] = np.bincount(dst[src != lo + a + dst], minlength=b - a)
    return out


@torch.no_grad()
def layerwise_logits(model, shard, features: np.ndarray, chunk_size: int, device=None, backend: str = "cpu",
                     amp: bool = False, max_time: Optional[int] = None, strict: bool = False) -> np.ndarray:
    """Final-layer outputs (float32 ``[n_w, C]``) of this worker's nodes (a collective).

    Args:
        model: a :class:`~graphtrain.train.models.GNN` (or any module with the layer-wise methods).
        shard: this worker's :class:`~graphtrain.sampling.shard.WorkerShard`.
        features: float32 ``[n_w, F]`` features of the worker's nodes, in ID order.
        chunk_size: destination nodes per step (the result does not depend on it).
        device: where the model runs.
        max_time: use only in-edges with time <= ``max_time`` (``<`` with ``strict``); None: all.
    """
    _check_layerwise(model)
    model.eval()
    ex, book, graph = shard.exchange, shard.book, shard.graph
    lo, hi = shard.node_range
    n = hi - lo
    steps = int(ex.all_gather_sizes(-(-n // chunk_size)).max())
    relabel = get_backend(backend).unique_relabel
    indptr = np.asarray(graph.indptr)
    edge_time = None
    if max_time is not None:
        if graph.time is None:
            raise ConfigError("inference with a time cutoff needs the 'time' edge column; the graph has none")
        edge_time = graph.time
    # GCN: each node's in-degree rides along as the table's last column (fetched with the rows)
    degrees = bool(getattr(model, "needs_in_degrees", False))
    extra = 1 if degrees else 0
    h = np.ascontiguousarray(features, dtype=np.float32)
    if degrees:
        deg_col = _in_degrees(graph, indptr, lo, n, chunk_size, edge_time, max_time, strict)
        h = np.concatenate([h, deg_col[:, None]], axis=1)
    for l in range(model.num_layers):
        width = int(model.layer_out_channels(l))
        out = np.empty((n, width + extra), dtype=np.float32)
        if degrees:
            out[:, width] = deg_col
        table = h
        for step in range(steps):
            a, b = min(n, step * chunk_size), min(n, (step + 1) * chunk_size)
            dst = np.arange(lo + a, lo + b, dtype=np.int64)
            src, deg = _in_edges(graph, indptr, a, b, edge_time, max_time, strict)
            new_index, local = relabel(dst, src)
            n_id = np.concatenate([dst, src[new_index]])
            x = fetch_node_rows(ex, book, n_id, lambda ids: table[ids - lo], np.float32, (table.shape[1],),
                                channel="layer-wise inference rows")
            if b == a:
                continue
            edge_index = np.stack([local, np.repeat(np.arange(b - a, dtype=np.int64), deg)])
            xt = torch.from_numpy(x[:, : x.shape[1] - extra]).to(device)
            et = torch.from_numpy(edge_index).to(device)
            kw = {"in_degree": torch.from_numpy(x[:, -1]).to(device)} if degrees else {}
            with torch.autocast(device_type="cuda", enabled=amp and xt.is_cuda):
                res = model.layer(l, xt, et, b - a, **kw)[: b - a]
            out[a:b, :width] = res.float().cpu().numpy()
        h = out
    return np.ascontiguousarray(h[:, :width]) if degrees else h
