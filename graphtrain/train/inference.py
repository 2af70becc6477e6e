"""Layer-wise full-graph inference: every node scored with all its in-edges, not sampled.

Each worker computes the embeddings of its own node range, one layer at a time (``[n_w, H]``; the
input layer is the node features). For layer ``l`` it walks its nodes in chunks of
``chunk_size`` destinations; for each chunk it takes *all* their in-edges from its graph, numbers
the chunk's nodes first and then their other in-neighbours (the sampling kernels' unique +
relabel), fetches the layer ``l - 1`` embeddings of those in-neighbours from their owners through
the data plane (:func:`~graphtrain.sampling.remote_features.fetch_node_rows`), and applies
``model.layer(l, x, edge_index, num_dst)``; the chunk's rows of the result are its layer-``l`` embeddings.

**Out of core.** A layer's embeddings are not held in memory: each layer's table is a
memory-mapped ``.npy`` file in a scratch directory of the run (:func:`scratch_directory`, removed
at the end, also on failure), written chunk by chunk, and the rows the next layer fetches -- the
worker's own and those other workers ask for -- are read from it; it is deleted once that layer is
done, so at most two layers' files exist at a time. The input layer is read from the
caller's features (an array, or a function that reads them by ID, e.g. from the dataset's mapped
node table), and the worker's graph is read from its mapped partitions, one chunk's in-edges at a
time (several partitions of a worker are a view, never concatenated). Anonymous memory therefore
grows with ``chunk_size`` (one chunk's subgraph, rows and activations), not with the worker's
node count; the tables live in the page cache, which the kernel writes back and drops under
pressure. Hidden layers may be stored as float16 (``embedding_dtype``: half the disk and page
cache; the layer inputs are rounded to float16, so the scores move by about 1e-3, see
``tests/train/test_inference_out_of_core.py``); the last layer is always float32. With float32
storage the result is bit-identical to holding the tables in memory.

With a time cutoff (``max_time``: a temporally trained model whose seeds all share one time) only
the in-edges with time <= ``max_time`` (``<`` with ``strict``) are used, at every layer: the result
is exactly the inference on the graph without the later edges. Per-node cutoffs cannot be done
layer-wise (a node's embedding is shared by every node that reads it, whatever their times), so
those are scored with the temporal sampler instead (:mod:`graphtrain.train.worker`).

GCN (a model whose ``needs_in_degrees`` is true) normalises each edge ``j -> i`` by
``1 / sqrt(deg(j) deg(i))``, degrees in the whole graph; a chunk's subgraph holds all the in-edges of
its destinations but not those of their in-neighbours. So each worker first counts the in-degree
of each of its nodes (self-loops not counted; with a cutoff, over the edges no later than it) into a
float32 file (exact up to 2**24, whatever the embeddings' storage), serves it with the embedding rows
so the sources' degrees come with their rows in the same fetch, and passes them to
``model.layer(..., in_degree=...)``: the result is exactly the full-graph GCN, whatever the chunk
size and the number of workers.

Edge-aware models (``edge_features``) get each chunk's in-edges' features as ``edge_attr``: those
edges are the worker's own (an edge lives in its destination's partition), so they are read from its
mapped edge columns by their global edge IDs, with no exchange.

Every chunk step is a collective, so all workers run ``max_w ceil(n_w / chunk_size)`` steps per
layer (those with fewer nodes take part with empty chunks).
"""
from __future__ import annotations

import contextlib
import shutil
import tempfile
from pathlib import Path
from typing import Callable, Iterator, Optional, Union

import numpy as np
import torch

from graphtrain.errors import ConfigError
from graphtrain.kernels import get_backend
from graphtrain.kernels.cpu import gather_rows
from graphtrain.partition.view import PartitionedGraph
from graphtrain.sampling.remote_features import fetch_node_rows

EMBEDDING_DTYPES = ("float32", "float16")
_FLOAT16_MAX = float(np.finfo(np.float16).max)
_CHANNEL = "layer-wise inference rows"

Features = Union[np.ndarray, Callable[[np.ndarray], np.ndarray]]


def check_embedding_dtype(dtype) -> np.dtype:
    """``embedding_dtype`` as a NumPy dtype (``"float32"`` or ``"float16"``), else :class:`ConfigError`."""
    name = np.dtype(dtype).name if isinstance(dtype, (np.dtype, type)) else dtype
    if name not in EMBEDDING_DTYPES:
        raise ConfigError(f"inference embedding dtype must be one of {EMBEDDING_DTYPES}, got {dtype!r}")
    return np.dtype(name)


@contextlib.contextmanager
def scratch_directory(parent=None, prefix: str = ".graphtrain-inference-") -> Iterator[Path]:
    """A new directory under ``parent`` (None: the system's temporary directory) for one run's
    embedding files, removed when the block ends, with an exception too; a watcher process removes it
    if this process dies where no Python cleanup runs (SIGKILL, the OOM killer; see
    :func:`graphtrain.io.staged_directory`).

    Raises:
        ConfigError: ``parent`` cannot hold it (missing and not creatable, not writable).
    """
    from graphtrain.io import _watch_staging

    base = Path(parent) if parent is not None else Path(tempfile.gettempdir())
    made = not base.exists()  # e.g. a run directory of predict's on a machine that has no copy of it
    try:
        base.mkdir(parents=True, exist_ok=True)
        path = Path(tempfile.mkdtemp(prefix=prefix, dir=base))
    except OSError as e:
        raise ConfigError(f"cannot create the layer-wise inference scratch directory in {base}: {e}; "
                          "give a writable directory (inference_dir / --inference-dir)") from None
    watcher = _watch_staging(path)
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)
        if made:
            with contextlib.suppress(OSError):
                base.rmdir()  # only if empty
        if watcher is not None:
            watcher.stdin.close()
            try:
                watcher.wait(timeout=2)
            except Exception:  # noqa: BLE001 -- a slow watcher is reaped by subprocess later
                pass


def _check_layerwise(model) -> None:
    for attr in ("num_layers", "layer", "layer_out_channels"):
        if not hasattr(model, attr):
            raise ConfigError(f"layer-wise inference needs model.{attr} (see graphtrain.train.models); "
                              f"{type(model).__name__} has none")


def _in_edges(graph, a: int, b: int, max_time: Optional[int], strict: bool, with_ids: bool = False):
    """``(src, deg)``: the global sources of the in-edges of the worker's nodes ``a .. b-1`` (indices
    from its first node) in CSC order, and each node's count of them -- only those no later than
    ``max_time`` when it is given. Read from the mapped partitions (a view's partition by partition).
    ``with_ids``: ``(src, deg, e_id)``, with the int64 global edge IDs of those edges."""
    pieces = graph.pieces(a, b) if isinstance(graph, PartitionedGraph) else [(graph, a, b)]
    srcs, degs, eids = [], [], []
    for g, pa, pb in pieces:
        e0, e1 = int(g.indptr[pa]), int(g.indptr[pb])
        src = np.asarray(g.src[e0:e1], dtype=np.int64)
        deg = np.diff(np.asarray(g.indptr[pa : pb + 1], dtype=np.int64))
        eid = np.arange(g.edge_start + e0, g.edge_start + e1, dtype=np.int64) if with_ids else None
        if max_time is not None:
            t = np.asarray(g.time[e0:e1])
            keep = t < max_time if strict else t <= max_time
            if not keep.all():
                src = src[keep]
                eid = eid[keep] if with_ids else None
                deg = np.bincount(np.repeat(np.arange(pb - pa), deg)[keep], minlength=pb - pa)
        srcs.append(src)
        degs.append(deg)
        eids.append(eid)
    if not srcs:
        none = np.zeros(0, np.int64)
        return (none, none, none) if with_ids else (none, none)
    if len(srcs) == 1:
        src, deg, eid = srcs[0], degs[0], eids[0]
    else:
        src, deg = np.concatenate(srcs), np.concatenate(degs)
        eid = np.concatenate(eids) if with_ids else None
    return (src, deg, eid) if with_ids else (src, deg)


def _in_degrees(graph, out: np.ndarray, lo: int, block: int, max_time, strict) -> None:
    """float32 in-degree of each of the worker's nodes into ``out`` over the edges the layers use,
    self-loops not counted (GCN's normalisation: PyG's ``gcn_norm`` replaces them by one self-loop per node)."""
    n = out.shape[0]
    for a in range(0, n, block):
        b = min(n, a + block)
        src, deg = _in_edges(graph, a, b, max_time, strict)
        dst = np.repeat(np.arange(b - a, dtype=np.int64), deg)
        out[a:b] = np.bincount(dst[src != lo + a + dst], minlength=b - a)


def _table(scratch: Path, name: str, n: int, width: int, dtype) -> np.ndarray:
    """A new ``[n, width]`` table, memory-mapped from ``scratch/name.npy`` (a plain ndarray view of
    the map: row reads are copies, writes go to the file's pages)."""
    shape = (n, width) if width else (n,)
    if n == 0:
        return np.zeros(shape, dtype=dtype)
    return np.lib.format.open_memmap(scratch / f"{name}.npy", mode="w+", dtype=dtype, shape=shape).view(np.ndarray)


def _packed_rows(serve, deg: Optional[np.ndarray], lo: int, dtype: np.dtype, width: int):
    """``(serve', fetch dtype, row shape, unpack)`` for fetching ``serve``'s rows (``dtype``): float32
    rows as they are; float16 rows, and rows with GCN's float32 degree appended (so both travel in one
    fetch), as their bytes. ``unpack(rows)`` -> ``(float32 [m, width], float32 [m] degrees or None)``."""
    if deg is None and dtype == np.float32:
        return serve, np.float32, (width,), lambda rows: (rows, None)
    nb = width * dtype.itemsize
    extra = 0 if deg is None else 4

    def packed(ids):
        rows = np.ascontiguousarray(serve(ids), dtype=dtype).reshape(ids.shape[0], width)
        out = np.empty((ids.shape[0], nb + extra), dtype=np.uint8)
        out[:, :nb] = rows.view(np.uint8).reshape(ids.shape[0], nb)
        if deg is not None:
            out[:, nb:] = np.ascontiguousarray(deg[ids - lo]).view(np.uint8).reshape(ids.shape[0], 4)
        return out

    def unpack(rows):
        x = np.ascontiguousarray(rows[:, :nb]).view(dtype).astype(np.float32, copy=False)
        return x, None if deg is None else np.ascontiguousarray(rows[:, nb:]).view(np.float32).reshape(-1)

    return packed, np.uint8, (nb + extra,), unpack


@contextlib.contextmanager
def layerwise_outputs(model, shard, features: Features, chunk_size: int, device=None, backend: str = "cpu",
                      amp: bool = False, max_time: Optional[int] = None, strict: bool = False, *,
                      embedding_dtype="float32", scratch_dir=None, on_chunk=None,
                      edge_features: Optional[Callable[[np.ndarray], np.ndarray]] = None) -> Iterator[np.ndarray]:
    """Final-layer outputs (float32 ``[n_w, C]``) of this worker's nodes (a collective), as a
    memory-mapped table valid inside the block: read it chunk by chunk to keep memory bounded.

    Args:
        model: a :class:`~graphtrain.train.models.GNN` (or any module with the layer-wise methods).
        shard: this worker's :class:`~graphtrain.sampling.shard.WorkerShard`.
        features: float32 ``[n_w, F]`` features of the worker's nodes, in ID order, or a function
            from int64 global IDs of the worker's nodes to their float32 feature rows ``[m, F]``
            (read as the chunks need them: the input layer is then never whole in memory).
        chunk_size: destination nodes per step (the result does not depend on it).
        device: where the model runs.
        max_time: use only in-edges with time <= ``max_time`` (``<`` with ``strict``); None: all.
        embedding_dtype: storage of the hidden layers' embeddings: ``"float32"`` (bit-identical to
            in-memory tables) or ``"float16"`` (half the bytes; :class:`ConfigError` on every worker
            when a value exceeds float16's range).
        scratch_dir: the directory in which this call makes (and removes at the end, also on
            failure) its own scratch directory of embedding files; None: the system's temporary
            directory. ``predict`` puts it beside its output (``TrainConfig.inference_dir``).
        on_chunk: optional callable ``(layer, num_layers, chunk, num_chunks)`` after each chunk
            (``chunk`` 1-based; every worker runs the same ``num_chunks`` steps per layer).
        edge_features: a function from int64 global IDs of in-edges of the worker's nodes (held by
            this worker: an edge lives with its destination) to their float32 features ``[m, D]``,
            passed to every layer as ``model.layer(..., edge_attr=...)``; None: the layers get none.
    """
    _check_layerwise(model)
    store = check_embedding_dtype(embedding_dtype)
    graph = shard.graph
    if max_time is not None:
        columns = graph.edge_columns if isinstance(graph, PartitionedGraph) else tuple(graph.edge_attrs)
        if "time" not in columns:
            raise ConfigError("inference with a time cutoff needs the 'time' edge column; the graph has none")
    lo, hi = shard.node_range
    if callable(features):
        read_features = features
    else:
        table = np.asarray(features)
        if table.ndim != 2 or table.shape[0] != hi - lo:
            raise ConfigError(f"features must be [{hi - lo}, F] rows of the worker's nodes, got shape {table.shape}")
        read_features = lambda ids: table[ids - lo]  # noqa: E731
    with scratch_directory(scratch_dir, prefix=f".graphtrain-inference-rank{shard.exchange.rank}-") as scratch:
        yield _layers(model, shard, read_features, chunk_size, device, backend, amp, max_time, strict, store, scratch,
                      on_chunk, edge_features)


@torch.no_grad()
def _layers(model, shard, read_features, chunk_size, device, backend, amp, max_time, strict, store: np.dtype,
            scratch: Path, on_chunk=None, edge_features=None) -> np.ndarray:
    """Every layer of :func:`layerwise_outputs`, each into its table in ``scratch``; the last one's."""
    model.eval()
    ex, book, graph = shard.exchange, shard.book, shard.graph
    lo, hi = shard.node_range
    n = hi - lo
    steps = int(ex.all_gather_sizes(-(-n // chunk_size)).max())
    relabel = get_backend(backend).unique_relabel
    # GCN: each node's in-degree rides along with its rows (fetched with them)
    deg = None
    if getattr(model, "needs_in_degrees", False):
        deg = _table(scratch, "in_degree", n, 0, np.float32)
        _in_degrees(graph, deg, lo, chunk_size, max_time, strict)
    serve = read_features  # the input layer: the features
    probe = np.asarray(read_features(np.arange(lo, lo + min(n, 1), dtype=np.int64)))
    if probe.ndim != 2:
        raise ConfigError(f"the features must come as [m, F] rows, got shape {probe.shape}")
    in_width, in_dtype = int(probe.shape[1]), np.dtype(np.float32)
    out = None
    for l in range(model.num_layers):
        last = l == model.num_layers - 1
        width = int(model.layer_out_channels(l))
        out_dtype = np.dtype(np.float32) if last else store
        out = _table(scratch, f"layer{l}", n, width, out_dtype)
        fetch_serve, fetch_dtype, row_shape, unpack = _packed_rows(serve, deg, lo, in_dtype, in_width)
        overflow = 0
        for step in range(steps):
            a, b = min(n, step * chunk_size), min(n, (step + 1) * chunk_size)
            dst = np.arange(lo + a, lo + b, dtype=np.int64)
            src, counts, eid = _in_edges(graph, a, b, max_time, strict, with_ids=True)
            new_index, local = relabel(dst, src)
            n_id = np.concatenate([dst, src[new_index]])
            rows = fetch_node_rows(ex, book, n_id, fetch_serve, fetch_dtype, row_shape, channel=_CHANNEL)
            if on_chunk is not None:
                on_chunk(l, model.num_layers, step + 1, steps)
            if b == a:
                continue
            x, in_degree = unpack(rows)
            edge_index = np.stack([local, np.repeat(np.arange(b - a, dtype=np.int64), counts)])
            xt = torch.from_numpy(x).to(device)
            et = torch.from_numpy(edge_index).to(device)
            kw = {"in_degree": torch.from_numpy(in_degree).to(device)} if in_degree is not None else {}
            if edge_features is not None:  # the chunk's in-edges are this worker's: read from its partitions
                kw["edge_attr"] = torch.from_numpy(np.ascontiguousarray(edge_features(eid), dtype=np.float32)).to(device)
            with torch.autocast(device_type="cuda", enabled=amp and xt.is_cuda):
                res = model.layer(l, xt, et, b - a, **kw)[: b - a]
            res = res.float().cpu().numpy()
            if out_dtype == np.float16 and res.size and not float(np.abs(res).max()) <= _FLOAT16_MAX:
                overflow += 1
                res = np.clip(res, -_FLOAT16_MAX, _FLOAT16_MAX)  # no cast warning: the layer fails below
            out[a:b] = res
        if out_dtype == np.float16 and int(ex.all_reduce_sum(np.array([overflow], np.int64))[0]):
            raise ConfigError(f"layer {l}'s embeddings exceed float16's range (+-{_FLOAT16_MAX:g}) or are not finite; "
                              "score with embedding_dtype 'float32' (--inference-dtype float32)")
        # the next layer reads this one: rows gathered in parallel, prefetched ahead (NumPy's fancy index
        # of the mapped table was one thread waiting on each row: 73% of the 500M run's second layer)
        serve = lambda ids, table=out: gather_rows(table, ids - lo)  # noqa: E731
        in_width, in_dtype = width, out_dtype
        if l > 0:  # every worker has fetched its last rows of layer l - 1 (each step is a collective): free its disk
            (scratch / f"layer{l - 1}.npy").unlink(missing_ok=True)
    return out


def layerwise_logits(model, shard, features: Features, chunk_size: int, device=None, backend: str = "cpu",
                     amp: bool = False, max_time: Optional[int] = None, strict: bool = False, *,
                     embedding_dtype="float32", scratch_dir=None, on_chunk=None, edge_features=None) -> np.ndarray:
    """Final-layer outputs (float32 ``[n_w, C]``, in memory) of this worker's nodes (a collective);
    the arguments are :func:`layerwise_outputs`'."""
    with layerwise_outputs(model, shard, features, chunk_size, device, backend, amp, max_time, strict,
                           embedding_dtype=embedding_dtype, scratch_dir=scratch_dir, on_chunk=on_chunk,
                           edge_features=edge_features) as out:
        return np.array(out, dtype=np.float32)
