"""Layer-wise inference out of core (issue 20 item 2): each layer's embeddings in memory-mapped files.

- float32 storage gives scores bit-identical to the former in-memory tables (``_in_ram_logits``
  below, the implementation this replaced, kept verbatim as the oracle) over a merged graph, for
  every model, several chunk sizes, 1 and 2 workers (each serving a view of 2 or 4 partitions), with
  and without a time cutoff, from a feature array or read by ID;
- float16 storage of the hidden layers stays within ``FLOAT16_PROB_TOL`` of float32's probabilities
  (and ``FLOAT16_LOGIT_RTOL`` of its logits' scale), and fails clearly on overflow;
- the scratch directory is made where it is asked for and removed at the end, also on failure.
"""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
import torch

from graphtrain.comm import Exchange
from graphtrain.errors import ConfigError
from graphtrain.kernels import get_backend
from graphtrain.partition.format import open_dataset
from graphtrain.partition.partitioner import partition_arrays
from graphtrain.partition.view import PartitionedGraph
from graphtrain.sampling.remote_features import fetch_node_rows
from graphtrain.sampling.shard import open_worker_shard
from graphtrain.train.inference import layerwise_logits, layerwise_outputs
from graphtrain.train.models import GNN, ModelConfig
from tests.sampling.dist_helpers import run_group
from tests.train.conftest import make_graph

MODELS = ("sage", "gat", "gcn")
CHUNKS = (45, 1000)  # chunks across partition borders (~150 nodes each), and one chunk
CUTOFF = 600  # edge times are 0 .. 999
# float16 rounds each hidden embedding to 11 significant bits (relative error <= 2**-11 ~ 4.9e-4):
# the class probabilities then move by far less than this on these 3-layer models (measured max ~3e-4)
FLOAT16_PROB_TOL = 2e-3
FLOAT16_LOGIT_RTOL = 2e-3  # of the largest |logit|


# -- the former implementation (graphtrain/train/inference.py at 2a60c75): two in-memory tables ----
# verbatim but for one layout change marked below (the same values, in contiguous memory)
def _old_in_edges(graph, indptr, a, b, edge_time, max_time, strict):
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


def _old_in_degrees(graph, indptr, lo, n, block, edge_time, max_time, strict):
    out = np.empty(n, dtype=np.float32)
    for a in range(0, n, block):
        b = min(n, a + block)
        src, deg = _old_in_edges(graph, indptr, a, b, edge_time, max_time, strict)
        dst = np.repeat(np.arange(b - a, dtype=np.int64), deg)
        out[a:b] = np.bincount(dst[src != lo + a + dst], minlength=b - a)
    return out


@torch.no_grad()
def _in_ram_logits(model, shard, features, chunk_size, device=None, backend="cpu", amp=False, max_time=None,
                   strict=False):
    model.eval()
    ex, book, graph = shard.exchange, shard.book, shard.graph
    lo, hi = shard.node_range
    n = hi - lo
    steps = int(ex.all_gather_sizes(-(-n // chunk_size)).max())
    relabel = get_backend(backend).unique_relabel
    indptr = np.asarray(graph.indptr)
    edge_time = None
    if max_time is not None:
        edge_time = graph.time
    degrees = bool(getattr(model, "needs_in_degrees", False))
    extra = 1 if degrees else 0
    h = np.ascontiguousarray(features, dtype=np.float32)
    if degrees:
        deg_col = _old_in_degrees(graph, indptr, lo, n, chunk_size, edge_time, max_time, strict)
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
            src, deg = _old_in_edges(graph, indptr, a, b, edge_time, max_time, strict)
            new_index, local = relabel(dst, src)
            n_id = np.concatenate([dst, src[new_index]])
            x = fetch_node_rows(ex, book, n_id, lambda ids: table[ids - lo], np.float32, (table.shape[1],),
                                channel="layer-wise inference rows")
            if b == a:
                continue
            edge_index = np.stack([local, np.repeat(np.arange(b - a, dtype=np.int64), deg)])
            # contiguous, as the new implementation passes them: on some CPUs (an AVX2 EPYC) a matrix product's
            # rounding depends on the row stride, and this slice's stride is one column wider (the in-degree)
            xt = torch.from_numpy(np.ascontiguousarray(x[:, : x.shape[1] - extra])).to(device)
            et = torch.from_numpy(edge_index).to(device)
            kw = {"in_degree": torch.from_numpy(x[:, -1]).to(device)} if degrees else {}
            with torch.autocast(device_type="cuda", enabled=amp and xt.is_cuda):
                res = model.layer(l, xt, et, b - a, **kw)[: b - a]
            out[a:b, :width] = res.float().cpu().numpy()
        h = out
    return np.ascontiguousarray(h[:, :width]) if degrees else h


# -- fixtures -----------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def timed_dataset(tmp_path_factory):
    """``make_graph()`` (600 nodes, 6000 edges) with edge times, in 4 partitions (LDG)."""
    root = tmp_path_factory.mktemp("ooc")
    raw, src, dst, x, y = make_graph()
    t = np.random.default_rng(1).integers(0, 1000, src.size)
    partition_arrays(src, dst, root / "ds", 4, edge_attrs={"time": t}, time_column="time", node_ids=raw,
                     node_features=x, node_labels=y, method="ldg")
    return root / "ds"


def _model(name):
    torch.manual_seed(0)
    return GNN(ModelConfig(name, in_channels=8, out_channels=2, hidden_channels=16, num_layers=3)).eval()


def _run(rank, world, ds_dir, out_dir):
    """Every model x chunk x cutoff: the former in-memory logits (merged graph) and the out-of-core ones
    (the worker's view; float32 from the array and read by ID, float16), saved per rank."""
    ds = open_dataset(ds_dir)
    runs = ds.book.contiguous_runs(world)
    ex = Exchange(rank, world)
    view = open_worker_shard(ds, runs, ex, backend="cpu")
    merged = open_worker_shard(ds, runs, ex, backend="cpu", merge=True)
    assert isinstance(view.graph, PartitionedGraph) and view.graph.num_parts == 4 // world
    lo, hi = view.node_range
    feats = view.node_data.features(np.arange(lo, hi))
    scratch = Path(out_dir) / f"scratch{rank}"
    scratch.mkdir()
    out = {}
    for name in MODELS:
        model = _model(name)
        for chunk in CHUNKS:
            for cutoff in (None, CUTOFF):
                key = f"{name}/{chunk}/{cutoff}"
                out[f"{key}/ram"] = _in_ram_logits(model, merged, feats, chunk, max_time=cutoff)
                out[f"{key}/f32"] = layerwise_logits(model, view, feats, chunk, max_time=cutoff, scratch_dir=scratch)
                out[f"{key}/f32-by-id"] = layerwise_logits(model, view, view.node_data.features, chunk, max_time=cutoff,
                                                           scratch_dir=scratch)
                out[f"{key}/f16"] = layerwise_logits(model, view, feats, chunk, max_time=cutoff,
                                                     embedding_dtype="float16", scratch_dir=scratch)
                assert os.listdir(scratch) == []  # every call removed its own scratch directory
    np.savez(Path(out_dir) / f"rank{rank}.npz", **out)


@pytest.fixture(scope="module", params=[1, 2], ids=["1-worker-4-partitions", "2-workers-2-partitions-each"])
def logits(request, timed_dataset, tmp_path_factory):
    world = request.param
    out = tmp_path_factory.mktemp(f"ooc-w{world}")
    if world == 1:
        _run(0, 1, str(timed_dataset), str(out))
    else:
        run_group(_run, world, out, str(timed_dataset), str(out), timeout=600)
    parts = [np.load(out / f"rank{r}.npz") for r in range(world)]
    return world, {k: np.concatenate([p[k] for p in parts]) for k in parts[0].files}


def _softmax(x):
    return torch.softmax(torch.from_numpy(x), dim=1).numpy()


def test_float32_files_give_the_in_memory_scores_bit_for_bit(logits):
    world, got = logits
    keys = sorted({k.rsplit("/", 1)[0] for k in got})
    assert len(keys) == len(MODELS) * len(CHUNKS) * 2
    for key in keys:
        want = got[f"{key}/ram"]
        assert want.shape == (600, 2) and want.dtype == np.float32
        for kind in ("f32", "f32-by-id"):
            assert got[f"{key}/{kind}"].dtype == np.float32
            assert np.array_equal(got[f"{key}/{kind}"].view(np.uint32), want.view(np.uint32)), f"{key} {kind}, {world} workers"
        # and the scores, as predict computes them
        assert np.array_equal(_softmax(got[f"{key}/f32"]), _softmax(want))
    # the cutoff matters here (so the comparison covered both edge sets)
    assert not np.array_equal(got["sage/45/None/ram"], got[f"sage/45/{CUTOFF}/ram"])


def test_float16_storage_stays_within_the_stated_tolerance(logits):
    world, got = logits
    worst = 0.0
    for key in sorted({k.rsplit("/", 1)[0] for k in got}):
        f32, f16 = got[f"{key}/f32"], got[f"{key}/f16"]
        assert f16.dtype == np.float32  # the last layer is stored as float32 either way
        diff = float(np.abs(_softmax(f16) - _softmax(f32)).max())
        worst = max(worst, diff)
        assert diff <= FLOAT16_PROB_TOL, f"{key}, {world} workers: probabilities moved by {diff}"
        np.testing.assert_allclose(f16, f32, rtol=0, atol=FLOAT16_LOGIT_RTOL * float(np.abs(f32).max()), err_msg=key)
    assert worst > 0  # float16 did round something


def _one_worker(ds_dir, merge=False):
    ds = open_dataset(ds_dir)
    return open_worker_shard(ds, [0, ds.num_parts], Exchange(0, 1), backend="cpu", merge=merge)


def test_the_tables_are_memory_mapped_files_in_a_scratch_directory_that_is_removed(timed_dataset, tmp_path):
    shard = _one_worker(timed_dataset)
    feats = shard.node_data.features(np.arange(600))
    model = _model("gcn")
    with layerwise_outputs(model, shard, feats, 50, scratch_dir=tmp_path) as out:
        (scratch,) = tmp_path.iterdir()
        assert scratch.name.startswith(".graphtrain-inference-rank0-")
        # a layer's file goes once the next layer is done: the last layer's (and GCN's degrees) are left
        assert sorted(p.name for p in scratch.iterdir()) == ["in_degree.npy", "layer2.npy"]
        base = out
        while base.base is not None and not isinstance(base, np.memmap):
            base = base.base
        assert isinstance(base, np.memmap) and Path(base.filename) == scratch / "layer2.npy"
        assert np.load(scratch / "in_degree.npy", mmap_mode="r").shape == (600,)
        assert np.array_equal(np.load(scratch / "layer2.npy"), out)
        kept = np.array(out)
    assert list(tmp_path.iterdir()) == []
    assert np.array_equal(layerwise_logits(model, shard, feats, 50, scratch_dir=tmp_path), kept)
    # a missing parent is made; one that cannot be is a clear error
    assert layerwise_logits(model, shard, feats, 50, scratch_dir=tmp_path / "a" / "b").shape == (600, 2)
    assert (tmp_path / "a").is_dir() and not (tmp_path / "a" / "b").exists()  # the directory it made is gone
    (tmp_path / "file").write_text("x")
    with pytest.raises(ConfigError, match="scratch directory"):
        layerwise_logits(model, shard, feats, 50, scratch_dir=tmp_path / "file")


class _FailsAtLayer(torch.nn.Module):
    """A model whose layer ``fail`` raises (a worker failing mid-inference)."""

    def __init__(self, inner, fail):
        super().__init__()
        self.inner, self.fail = inner, fail
        self.num_layers = inner.num_layers

    def layer_out_channels(self, l):
        return self.inner.layer_out_channels(l)

    def layer(self, l, *args, **kw):
        if l == self.fail:
            raise RuntimeError("boom")
        return self.inner.layer(l, *args, **kw)


class _Spy(_FailsAtLayer):
    """Notes the scratch directory's files (under ``root``) when each layer starts."""

    def __init__(self, inner, root):
        super().__init__(inner, fail=-1)
        self.root, self.seen = root, {}

    def layer(self, l, *args, **kw):
        if l not in self.seen:
            (scratch,) = self.root.iterdir()
            self.seen[l] = {p.name: np.load(p, mmap_mode="r").dtype.name for p in scratch.iterdir()}
        return super().layer(l, *args, **kw)


@pytest.mark.parametrize("dtype", ["float32", "float16"])
def test_each_hidden_layer_is_a_file_of_the_storage_dtype_while_the_next_layer_reads_it(timed_dataset, tmp_path, dtype):
    shard = _one_worker(timed_dataset)
    spy = _Spy(_model("sage"), tmp_path)
    layerwise_logits(spy, shard, shard.node_data.features, 50, embedding_dtype=dtype, scratch_dir=tmp_path)
    assert spy.seen == {0: {"layer0.npy": dtype},  # the features are read from the dataset, no copy
                        1: {"layer0.npy": dtype, "layer1.npy": dtype},
                        2: {"layer1.npy": dtype, "layer2.npy": "float32"}}  # layer 0's file is gone; the last is float32
    assert list(tmp_path.iterdir()) == []


def test_the_scratch_directory_is_removed_when_inference_fails(timed_dataset, tmp_path):
    shard = _one_worker(timed_dataset)
    with pytest.raises(RuntimeError, match="boom"):
        layerwise_logits(_FailsAtLayer(_model("sage"), 1), shard, shard.node_data.features, 50, scratch_dir=tmp_path)
    assert list(tmp_path.iterdir()) == []


def test_float16_overflow_is_an_error_not_infinities(timed_dataset, tmp_path):
    shard = _one_worker(timed_dataset)
    feats = shard.node_data.features(np.arange(600)) * 1e6
    model = _model("sage")
    assert np.isfinite(layerwise_logits(model, shard, feats, 100, scratch_dir=tmp_path)).all()  # float32: fine
    with pytest.raises(ConfigError, match="float16's range"):
        layerwise_logits(model, shard, feats, 100, embedding_dtype="float16", scratch_dir=tmp_path)
    with pytest.raises(ConfigError, match="embedding dtype"):
        layerwise_logits(model, shard, feats, 100, embedding_dtype="bfloat16", scratch_dir=tmp_path)
    assert list(tmp_path.iterdir()) == []


def test_a_worker_graph_view_reads_the_same_in_edges_as_the_merged_graph(timed_dataset):
    """The chunks' in-edges come from the worker's partitions one piece at a time, across partition borders."""
    from graphtrain.train.inference import _in_edges

    view, merged = _one_worker(timed_dataset).graph, _one_worker(timed_dataset, merge=True).graph
    bounds = [view.parts[i].node_stop for i in range(3)]
    for a, b in [(0, 600), (0, 1), (bounds[0] - 3, bounds[1] + 2), (bounds[2], 600), (5, 5), (599, 600)]:
        for cutoff in (None, CUTOFF):
            s1, d1 = _in_edges(view, a, b, cutoff, False)
            s2, d2 = _old_in_edges(merged, np.asarray(merged.indptr), a, b, None if cutoff is None else merged.time,
                                   cutoff, False)
            assert np.array_equal(s1, s2) and np.array_equal(d1, d2) and d1.size == b - a


@pytest.mark.ray
def test_predict_cli_float16_and_its_scratch_directory_beside_the_output(ray_local, labelled_dataset, tmp_path, capsys,
                                                                         monkeypatch):
    """``graphtrain predict --inference-dtype float16`` on 2 workers (2 partitions each, viewed): the
    scores of float32 within the tolerance; the run's scratch directory was beside the output (or
    in ``--inference-dir``) and is gone afterwards."""
    import json

    import pyarrow.parquet as pq

    from graphtrain.cli import main
    from graphtrain.train import inference

    assert main(["train", str(labelled_dataset), "--fanouts", "5,5", "--batch-size", "64", "--epochs", "1",
                 "--hidden", "16", "--num-workers", "2", "--checkpoint-dir", str(tmp_path / "ck"), "--no-progress"]) == 0
    capsys.readouterr()
    seen = []
    made = inference.scratch_directory

    def noting(parent=None, prefix=".graphtrain-inference-"):  # the driver's run directory (workers are elsewhere)
        seen.append(Path(parent))
        return made(parent, prefix)

    monkeypatch.setattr(inference, "scratch_directory", noting)
    scores = {}
    for dtype, extra in (("float32", []), ("float16", ["--inference-dir", str(tmp_path / "scratch")])):
        out = tmp_path / "out" / f"{dtype}.parquet"
        assert main(["predict", str(labelled_dataset), "--checkpoint", str(tmp_path / "ck"), "--out", str(out),
                     "--num-workers", "2", "--inference-dtype", dtype] + extra) == 0
        assert json.loads(capsys.readouterr().out.strip())["rows"] == 600
        scores[dtype] = pq.read_table(out).to_pandas().sort_values("node_id").score.to_numpy()
    assert seen == [tmp_path / "out", tmp_path / "scratch"]
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["float16.parquet", "float32.parquet"]
    assert not (tmp_path / "scratch").exists()  # made for the run, removed with it
    diff = np.abs(scores["float16"] - scores["float32"]).max()
    assert 0 < diff <= FLOAT16_PROB_TOL


def test_progress_reports_every_chunk_of_every_layer_and_the_driver_draws_a_bar_per_layer(timed_dataset, tmp_path, capsys):
    from graphtrain.train.results import LayerChunkDone
    from graphtrain.train.trainer import _ProgressView

    shard = _one_worker(timed_dataset)
    feats = shard.node_data.features(np.arange(600))
    model = _model("sage")
    seen = []
    logits = layerwise_logits(model, shard, feats, 50, scratch_dir=tmp_path, on_chunk=lambda *a: seen.append(a))
    assert np.array_equal(logits, layerwise_logits(model, shard, feats, 50, scratch_dir=tmp_path))  # progress changes nothing
    L = model.num_layers
    assert seen == [(layer, L, step, 12) for layer in range(L) for step in range(1, 13)]  # 600 nodes / 50 per chunk
    view = _ProgressView(True)
    for layer, num_layers, chunk, num_chunks in seen:
        view(LayerChunkDone(layer, num_layers, chunk, num_chunks))
    view.close()
    err = capsys.readouterr().err
    assert f"score layer {L}/{L}" in err and "12.0/12.0" in err and "chunk/s" in err  # count, total, rate
