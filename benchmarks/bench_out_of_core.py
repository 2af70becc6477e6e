#!/usr/bin/env python
"""Worker memory out of core (issue 20 item 2): layer-wise inference's embedding files, and partitions
viewed instead of merged, against the former in-memory layout, on one generated dataset.

Dataset (made once, cached in ``--data``): R-MAT scale ``--scale`` (``2**scale`` nodes, Graph500
parameters) with ``--edges`` edges, an int64 ``time`` edge column, ``--features`` float32 features
and binary labels per node, partitioned into ``--parts`` partitions (hash), opened by 1 worker
(``W = 1 < P``: the worker serves every partition).

Each arm runs in a fresh process, after its imports, the model and a JIT warm-up on a few chunks;
a thread samples ``/proc/self/status`` every 5 ms from before the worker opens its shard to the end:
peak ``RssAnon`` (heap, NumPy buffers: what the process claims) and peak ``RssFile`` (mapped file
pages: page cache the kernel can drop or write back), each as the rise over the value at the start.

``inference`` arms (``predict``'s work: open the shard, score every node layer-wise, keep the logits):

- ``before``: the code of ``BEFORE`` (``graphtrain/train/inference.py`` read with ``git show``):
  partitions merged in memory, the features read whole, two in-memory embedding tables;
- ``float32`` / ``float16``: this checkout: partitions viewed, features read by ID per chunk, each
  layer's embeddings in memory-mapped files in a scratch directory under ``--data``.

The ``float32`` logits are compared bit for bit with ``before``'s, ``float16``'s by their largest
probability difference.

``sampling`` arms (a training worker's data path: open the shard, ``--batches`` batches of the
worker's loader with features): ``merged`` (``open_worker_shard(merge=True)``, the former layout)
and ``view``. Memory as above, then the speed A/B: both layouts in one process, ``--repeats``
rounds alternating the arms (which goes first alternates too), each round timing ``--batches``
batches (the same batches in both arms); the medians of the rounds' seeds per wall second and per
CPU second of the process (less moved by other jobs on a shared machine) are compared. Then the
same with a training step per batch (SAGE, ``--hidden``, Adam, one torch thread): steps per second.

Example (the RESULTS.md command)::

    python benchmarks/bench_out_of_core.py --data /work/bench-ooc
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import threading
import time
import types
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

BEFORE = "2a60c75"  # the last commit with in-memory embedding tables and merged partitions


class Peaks:
    """Peak RssAnon / RssFile (bytes) of this process, sampled every ``interval`` seconds."""

    def __init__(self, interval=0.005):
        self.interval, self.stop_flag = interval, threading.Event()
        self.start_anon, self.start_file = self.now()
        self.anon, self.file = self.start_anon, self.start_file

    @staticmethod
    def now():
        got = {}
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith(("RssAnon:", "RssFile:")):
                got[line.split(":")[0]] = int(line.split()[1]) * 1024
        return got["RssAnon"], got["RssFile"]

    def _run(self):
        while not self.stop_flag.wait(self.interval):
            a, f = self.now()
            self.anon, self.file = max(self.anon, a), max(self.file, f)

    def __enter__(self):
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.stop_flag.set()
        self.thread.join()
        a, f = self.now()
        self.anon, self.file = max(self.anon, a), max(self.file, f)

    def result(self):
        return {"anon_rise": self.anon - self.start_anon, "file_rise": self.file - self.start_file,
                "anon_start": self.start_anon, "anon_peak": self.anon}


def make_dataset(args) -> Path:
    ds = Path(args.data) / f"rmat{args.scale}-{args.edges}-p{args.parts}"
    if (ds / "meta.json").exists():
        return ds
    from graphtrain.partition.partitioner import partition_arrays
    from graphtrain.rmat import rmat_edges

    n = 1 << args.scale
    src, dst = rmat_edges(args.scale, 0, args.edges, seed=0)
    rs = np.random.default_rng(0)
    t = rs.integers(0, 10**9, args.edges)
    x = rs.normal(size=(n, args.features)).astype(np.float32)
    y = (rs.random(n) < 0.1).astype(np.int64)
    t0 = time.perf_counter()
    partition_arrays(src, dst, ds, args.parts, edge_attrs={"time": t}, time_column="time", node_ids=np.arange(n),
                     node_features=x, node_labels=y, method="hash")
    print(f"partitioned {n:,} nodes, {args.edges:,} edges into {args.parts} in {time.perf_counter() - t0:.1f} s",
          file=sys.stderr)
    return ds


def make_warm_dataset(args) -> Path:
    """A 500-node dataset of the same shape, for the arms' JIT warm-up."""
    from graphtrain.partition.partitioner import partition_arrays

    warm = Path(args.data) / f"warm-f{args.features}"
    if not (warm / "meta.json").exists():
        rs = np.random.default_rng(1)
        partition_arrays(rs.integers(0, 500, 5000), rs.integers(0, 500, 5000), warm, 2,
                         edge_attrs={"time": rs.integers(0, 10**9, 5000)}, time_column="time", node_ids=np.arange(500),
                         node_features=rs.random((500, args.features)).astype(np.float32),
                         node_labels=rs.integers(0, 2, 500), method="hash")
    return warm


def _old_inference():
    """``graphtrain.train.inference`` as of ``BEFORE`` (a module of its own)."""
    text = subprocess.run(["git", "-C", str(REPO), "show", f"{BEFORE}:graphtrain/train/inference.py"],
                          capture_output=True, text=True, check=True).stdout
    module = types.ModuleType("inference_before")
    exec(compile(text, f"{BEFORE}:graphtrain/train/inference.py", "exec"), module.__dict__)
    return module


def _model(num_features, hidden, layers):
    import torch

    from graphtrain.train.models import GNN, ModelConfig

    torch.manual_seed(0)
    return GNN(ModelConfig("sage", num_features, 2, hidden, layers, 0.0)).eval()


def run_inference_arm(args, ds_dir: Path, arm: str) -> dict:
    import numba
    import torch

    from graphtrain.comm import Exchange
    from graphtrain.partition import open_dataset
    from graphtrain.sampling.shard import open_worker_shard
    from graphtrain.train import inference

    torch.set_num_threads(1)
    numba.set_num_threads(1)
    ds = open_dataset(ds_dir)
    F = len(ds.meta.node_schema.feature_names)
    model = _model(F, args.hidden, args.layers)
    old = _old_inference() if arm == "before" else None
    # warm-up: the kernels' JIT (cached on disk) and torch's first calls, on the small dataset
    wds = open_dataset(make_warm_dataset(args))
    wshard = open_worker_shard(wds, [0, 2], Exchange(0, 1), "cpu", merge=arm == "before")
    wfeats = wshard.node_data.features(np.arange(500))
    if old is not None:
        old.layerwise_logits(model, wshard, wfeats, 100)
    else:
        inference.layerwise_logits(model, wshard, wshard.node_data.features, 100, scratch_dir=args.data)
    scratch = Path(args.data) / "scratch"
    scratch.mkdir(exist_ok=True)
    t0 = time.perf_counter()
    with Peaks() as peaks:
        shard = open_worker_shard(ds, [0, ds.num_parts], Exchange(0, 1), "cpu", merge=arm == "before")
        lo, hi = shard.node_range
        if old is not None:
            feats = shard.node_data.features(np.arange(lo, hi, dtype=np.int64))
            logits = old.layerwise_logits(model, shard, feats, args.chunk)
        else:
            logits = inference.layerwise_logits(model, shard, shard.node_data.features, args.chunk,
                                                embedding_dtype=arm, scratch_dir=scratch)
    wall = time.perf_counter() - t0
    np.save(Path(args.data) / f"logits-{arm}.npy", logits)
    return {"arm": arm, "seconds": wall, "nodes": hi - lo, **peaks.result(),
            "graph": type(shard.graph).__name__, "scratch_left": sorted(os.listdir(scratch))}


def _loader(shard, args, seeds):
    from graphtrain.sampling.loader import NodeLoader
    from graphtrain.sampling.neighbor import NeighborSampler

    F = shard.node_data.num_features
    data = shard.distributed_node_data(F, True)
    sampler = NeighborSampler(shard.hop_sampler("cpu", data), args.fanouts, seed=0, backend="cpu")
    return NodeLoader(sampler, seeds, args.batch_size, seed=0, prefetch=0, node_data=data)


def _seeds(ds, n):
    rs = np.random.default_rng(2)
    return np.sort(rs.choice(ds.meta.num_nodes, n, replace=False)).astype(np.int64)


def run_sampling_memory_arm(args, ds_dir: Path, arm: str) -> dict:
    import numba

    from graphtrain.comm import Exchange
    from graphtrain.partition import open_dataset
    from graphtrain.sampling.shard import open_worker_shard

    numba.set_num_threads(1)
    ds = open_dataset(ds_dir)
    seeds = _seeds(ds, args.batches * args.batch_size)
    wds = open_dataset(make_warm_dataset(args))  # JIT warm-up on the small dataset
    for _ in _loader(open_worker_shard(wds, [0, 2], Exchange(0, 1), "cpu", merge=arm == "merged"), args,
                     np.arange(100, dtype=np.int64)).batches(0):
        pass
    t0 = time.perf_counter()
    with Peaks() as peaks:
        shard = open_worker_shard(ds, [0, ds.num_parts], Exchange(0, 1), "cpu", merge=arm == "merged")
        edges = 0
        for batch in _loader(shard, args, seeds).batches(0):
            edges += batch.e_id.size
    return {"arm": arm, "seconds": time.perf_counter() - t0, "sampled_edges": edges, **peaks.result(),
            "graph": type(shard.graph).__name__}


def run_sampling_ab(args, ds_dir: Path) -> dict:
    import numba

    from graphtrain.comm import Exchange
    from graphtrain.partition import open_dataset
    from graphtrain.sampling.shard import open_worker_shard

    numba.set_num_threads(1)
    ds = open_dataset(ds_dir)
    seeds = _seeds(ds, args.batches * args.batch_size)
    shards = {arm: open_worker_shard(ds, [0, ds.num_parts], Exchange(0, 1), "cpu", merge=arm == "merged")
              for arm in ("merged", "view")}
    loaders = {arm: _loader(shards[arm], args, seeds) for arm in shards}
    rates = {arm: [] for arm in shards}
    cpu = {arm: [] for arm in shards}
    for arm in shards:  # warm: JIT and the page cache of both layouts
        for _ in loaders[arm].batches(0):
            pass
    for r in range(args.repeats):
        order = ("merged", "view") if r % 2 == 0 else ("view", "merged")
        for arm in order:
            t0, c0 = time.perf_counter(), time.process_time()
            n = 0
            for batch in loaders[arm].batches(r + 1):
                n += batch.batch_size
            rates[arm].append(n / (time.perf_counter() - t0))
            cpu[arm].append(n / (time.process_time() - c0))  # CPU seconds: less moved by other jobs' load
    med = {arm: float(np.median(v)) for arm, v in rates.items()}
    med_cpu = {arm: float(np.median(v)) for arm, v in cpu.items()}
    # the same batches with a training step each (SAGE, hidden --hidden, Adam): the sampling's share of a step
    import torch
    from torch.nn import functional as F

    torch.set_num_threads(1)
    model = _model(shards["view"].node_data.num_features, args.hidden, len(args.fanouts)).train()
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    steps = {arm: [] for arm in shards}
    for r in range(args.repeats):
        for arm in (("merged", "view") if r % 2 == 0 else ("view", "merged")):
            t0, n = time.perf_counter(), 0
            for batch in loaders[arm].batches(args.repeats + r + 1):
                d = batch.to_pyg()
                loss = F.cross_entropy(model(d.x, d.edge_index)[: batch.batch_size], d.y)
                opt.zero_grad()
                loss.backward()
                opt.step()
                n += 1
            steps[arm].append(n / (time.perf_counter() - t0))
    med_steps = {arm: float(np.median(v)) for arm, v in steps.items()}
    return {"rounds": rates, "rounds_cpu": cpu, "median_seeds_per_s": med, "median_seeds_per_cpu_s": med_cpu,
            "view_over_merged": med["view"] / med["merged"], "view_over_merged_cpu": med_cpu["view"] / med_cpu["merged"],
            "train_rounds": steps, "median_steps_per_s": med_steps,
            "train_view_over_merged": med_steps["view"] / med_steps["merged"]}


def _child(args, what: str, arm: str) -> dict:
    cmd = [sys.executable, __file__, "--data", args.data, "--scale", str(args.scale), "--edges", str(args.edges),
           "--parts", str(args.parts), "--features", str(args.features), "--hidden", str(args.hidden),
           "--layers", str(args.layers), "--chunk", str(args.chunk), "--batches", str(args.batches),
           "--batch-size", str(args.batch_size), "--fanouts", *map(str, args.fanouts), "--repeats", str(args.repeats),
           "--child", what, arm]
    out = subprocess.run(cmd, capture_output=True, text=True)
    if out.returncode != 0:
        raise SystemExit(f"{what} {arm} failed:\n{out.stderr[-4000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def _mib(b):
    return f"{b / 2**20:,.0f}"


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--data", required=True, help="directory for the dataset (cached), scratch files and logits")
    ap.add_argument("--scale", type=int, default=22, help="R-MAT scale: 2**scale nodes (default 22: 4,194,304)")
    ap.add_argument("--edges", type=int, default=20_000_000)
    ap.add_argument("--parts", type=int, default=4)
    ap.add_argument("--features", type=int, default=16)
    ap.add_argument("--hidden", type=int, default=64)
    ap.add_argument("--layers", type=int, default=2)
    ap.add_argument("--chunk", type=int, default=65536, help="inference_chunk (TrainConfig's default)")
    ap.add_argument("--batches", type=int, default=100, help="batches per sampling run / A/B round")
    ap.add_argument("--batch-size", type=int, default=1024)
    ap.add_argument("--fanouts", type=int, nargs="+", default=[15, 10])
    ap.add_argument("--repeats", type=int, default=6, help="A/B rounds (arms alternate; medians compared)")
    ap.add_argument("--only", choices=["inference", "sampling"], help="run one part")
    ap.add_argument("--child", nargs=2, help=argparse.SUPPRESS)
    ap.add_argument("--json", help="also write the results here")
    args = ap.parse_args(argv)
    Path(args.data).mkdir(parents=True, exist_ok=True)
    ds = make_dataset(args)
    make_warm_dataset(args)
    if args.child:
        what, arm = args.child
        fn = {"inference": run_inference_arm, "sampling": run_sampling_memory_arm}.get(what)
        print(json.dumps(run_sampling_ab(args, ds) if what == "ab" else fn(args, ds, arm)))
        return 0
    results = {"dataset": str(ds), "date": time.strftime("%Y-%m-%d %H:%M"), "args": vars(args)}
    if args.only in (None, "inference"):
        rows = [_child(args, "inference", arm) for arm in ("before", "float32", "float16")]
        logits = {r["arm"]: np.load(Path(args.data) / f"logits-{r['arm']}.npy") for r in rows}
        same = bool(np.array_equal(logits["before"].view(np.uint32), logits["float32"].view(np.uint32)))

        def probs(x):
            e = np.exp(x - x.max(axis=1, keepdims=True))
            return e / e.sum(axis=1, keepdims=True)

        f16 = float(np.abs(probs(logits["float16"]) - probs(logits["before"])).max())
        results["inference"] = {"rows": rows, "float32_bit_identical": same, "float16_max_prob_diff": f16}
        print(f"\nlayer-wise inference, {rows[0]['nodes']:,} nodes, 1 worker over {args.parts} partitions")
        print("| arm | seconds | peak RssAnon rise MiB | peak RssFile rise MiB | worker graph |")
        print("|---|---|---|---|---|")
        for r in rows:
            print(f"| {r['arm']} | {r['seconds']:.1f} | {_mib(r['anon_rise'])} | {_mib(r['file_rise'])} | {r['graph']} |")
        b = rows[0]["anon_rise"]
        for r in rows[1:]:
            print(f"{r['arm']}: anonymous peak {r['anon_rise'] / b:.3f}x before's ({b / max(r['anon_rise'], 1):.1f}x less)")
        print(f"float32 bit-identical to before: {same}; float16 max |probability difference|: {f16:.2e}")
    if args.only in (None, "sampling"):
        rows = [_child(args, "sampling", arm) for arm in ("merged", "view")]
        ab = _child(args, "ab", "-")
        results["sampling"] = {"memory": rows, "ab": ab}
        print(f"\nsampling {args.batches} batches of {args.batch_size} (fanouts {args.fanouts}) with features, "
              f"1 worker over {args.parts} partitions")
        print("| arm | seconds | peak RssAnon rise MiB | peak RssFile rise MiB | worker graph |")
        print("|---|---|---|---|---|")
        for r in rows:
            print(f"| {r['arm']} | {r['seconds']:.1f} | {_mib(r['anon_rise'])} | {_mib(r['file_rise'])} | {r['graph']} |")
        print("A/B seeds/s per round (wall):", {k: [round(v) for v in vs] for k, vs in ab["rounds"].items()})
        print("A/B seeds per CPU second per round:", {k: [round(v) for v in vs] for k, vs in ab["rounds_cpu"].items()})
        print(f"medians: merged {ab['median_seeds_per_s']['merged']:,.0f}, view {ab['median_seeds_per_s']['view']:,.0f} "
              f"seeds/s (view / merged {ab['view_over_merged']:.3f}); per CPU second: merged "
              f"{ab['median_seeds_per_cpu_s']['merged']:,.0f}, view {ab['median_seeds_per_cpu_s']['view']:,.0f} "
              f"(view / merged {ab['view_over_merged_cpu']:.3f})")
        print("training steps/s per round:", {k: [round(v, 2) for v in vs] for k, vs in ab["train_rounds"].items()})
        print(f"medians: merged {ab['median_steps_per_s']['merged']:.2f}, view {ab['median_steps_per_s']['view']:.2f} "
              f"steps/s (view / merged {ab['train_view_over_merged']:.3f})")
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
