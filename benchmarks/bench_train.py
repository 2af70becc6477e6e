"""Distributed training throughput: no-Ray baseline vs graphtrain on 1 and 2 Ray workers vs DGL 2.1.

Setup (defaults = the issue's benchmark): R-MAT scale 20 (1,048,576 nodes) with 10M edges
(``graphtrain.rmat``), random float32 features (64 dims) and random binary labels (10% positive) on
``--labelled`` nodes, partitioned into 2 hash partitions by ``graphtrain.partition``. GraphSAGE
(2 layers, mean aggregation, hidden 256, dropout 0.2), fanouts ``[15, 10]``, batch 1024, Adam,
class-weighted cross-entropy. The training seeds are the stratified 70% training split of the
labelled nodes (:mod:`graphtrain.train.splits`), the same for every row.

Rows (each ``--epochs`` epochs over the training seeds -- with more than one, a row reports its mean
epoch after the first, which warms up -- every process limited to one thread for torch and
one for Numba, and by default no prefetch thread -- the "one core per worker" of the issue;
``--prefetch N`` lets every graphtrain process sample ahead on a second thread, and ``--pin-cpus``
keeps that thread on its process's one core -- each process pinned to a core of its own):

- ``baseline``: one process, no Ray: ``NeighborSampler`` on the merged graph + ``LocalNodeData`` +
  the same PyG model and loop (``graphtrain.train.models.GNN``), the setup's objects frozen out of
  Python's garbage collections as in the Trainer's workers (``graphtrain.train.gc_freeze``; without
  it a full collection of ~0.2 s every few epochs made the controls below read 79-92% instead of
  94-100% without Ray running).
- ``2 independent no-Ray processes``: a hardware control -- two baseline processes at once, half
  the seeds each, no communication: the best two single-threaded processes can do on this machine.
- ``2 no-Ray processes + DDP``: the same pair averaging gradients with DDP over gloo every step (each
  holds the whole graph, so there is no sampling or feature exchange): the gradient all-reduce's
  own cost (with ``--gloo-poller idle normal``: once per setting of gloo's socket pollers).
- ``ray 1 worker`` / ``ray 2 workers``: ``graphtrain.train.Trainer`` (each worker samples across the
  partition border and fetches remote features through the gloo all-to-all data plane; DDP
  gradients; gloo's socket pollers at idle priority, ``TrainConfig.gloo_poller``'s CPU default, or
  as ``--gloo-poller`` says -- the 2-worker row runs once per setting given). Epoch time is
  measured inside the workers; ``fit`` wall time also includes worker start (process, imports,
  process groups, dataset open, split) and the validation pass.
- ``dgl``: DGL 2.1 ``NeighborSampler`` + ``DataLoader`` + ``SAGEConv`` in the DGL venv (a
  subprocess, same graph, features, labels and seeds saved to a temporary ``.npz``), for each of
  ``--dgl-threads``.

``--rounds N`` runs every row but DGL's N times in turns (baseline, controls, 1 worker, 2 workers,
baseline, ...): each ratio is then the median of the rounds' own ratios (a round's rows run
minutes apart, so a drift of the machine's speed between rounds cancels out), and each row shows
its median round.

Also printed: scaling efficiency (2-worker seeds/s / (2 x 1-worker seeds/s)), the same ratio for
the two controls, the 2-worker row over the DDP control (what graphtrain adds to plain DDP), the
1-worker epoch overhead over the baseline, Ray/launch overhead, and bytes sent per worker per
batch next to an analytic estimate from the edge cut (see :func:`estimate_bytes_per_batch`).

Example (the RESULTS.md command)::

    flock /tmp/graphtrain-bench.lock python benchmarks/bench_train.py --dgl-python /work/venvs/dgl/bin/python
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Optional, Tuple

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))


def build_dataset(root: Path, scale: int, num_edges: int, feat_dim: int, labelled: int, parts: int, seed: int) -> Path:
    from graphtrain.partition.partitioner import partition_arrays
    from graphtrain.rmat import rmat_edges

    out = root / f"rmat{scale}-{num_edges}-f{feat_dim}-l{labelled}-p{parts}-s{seed}"
    if (out / "meta.json").is_file():
        return out
    n = 1 << scale
    src, dst = rmat_edges(scale, 0, num_edges, seed=seed)
    rs = np.random.default_rng(seed)
    feats = rs.standard_normal((n, feat_dim), dtype=np.float32)
    labels = np.full(n, -1, dtype=np.int64)
    chosen = rs.choice(n, labelled, replace=False)
    labels[chosen] = (rs.random(labelled) < 0.1).astype(np.int64)
    partition_arrays(src, dst, out, parts, node_ids=np.arange(n), node_features=feats, node_labels=labels,
                     method="hash", seed=seed)
    return out


def train_seeds(ds, fractions=(0.7, 0.15, 0.15), seed=0) -> np.ndarray:
    """The training split the Trainer makes (stratified roles, partition by partition)."""
    from graphtrain.train.splits import class_counts, stratified_roles

    labels = [np.asarray(ds.partition(p).labels) for p in range(ds.num_parts)]
    counts = np.array([class_counts(l, 2) for l in labels])
    before = np.cumsum(counts, axis=0) - counts
    ids = []
    for p, l in enumerate(labels):
        lo = ds.book.node_range(p)[0]
        roles = stratified_roles(l, lo, before[p], fractions, seed)
        ids.append(lo + np.flatnonzero(roles == 0))
    return np.concatenate(ids).astype(np.int64)


def steady(epochs: list) -> dict:
    """One row from per-epoch ``{"seconds", "seeds", "batches"}`` records: the mean epoch after the
    first (the first one warms up: first calls of JIT-compiled kernels, the allocator, DDP's bucket
    rebuild, the capacities of the exchange channels), or the only one; ``epoch_seconds`` lists them all."""
    part = epochs[1:] or epochs
    n = len(part)
    return {"seconds": sum(e["seconds"] for e in part) / n, "seeds": sum(e["seeds"] for e in part) / n,
            "batches": round(sum(e["batches"] for e in part) / n), "epoch_seconds": [e["seconds"] for e in epochs]}


def run_baseline(ds, seeds: np.ndarray, fanouts, batch_size: int, hidden: int, prefetch: int, pin: bool = False,
                 epochs: int = 1, ddp: Optional[Tuple[str, int, bool]] = None) -> dict:
    """One process, no Ray: the graphtrain sampler + loader + the same PyG model and training step
    (``pin``: on one core of its own, as ``TrainConfig.pin_cpus`` pins a worker; ``ddp``:
    ``(init file, rank, idle pollers)`` of a 2-process gloo group whose DDP averages the gradients,
    its socket poller at idle priority or not, as ``TrainConfig.gloo_poller``)."""
    import contextlib

    from graphtrain.train.affinity import pinned_cores

    with pinned_cores(1) if pin else contextlib.nullcontext():
        return _run_baseline(ds, seeds, fanouts, batch_size, hidden, prefetch, epochs, ddp)


def _run_baseline(ds, seeds: np.ndarray, fanouts, batch_size: int, hidden: int, prefetch: int, epochs: int,
                  ddp: Optional[Tuple[str, int, bool]]) -> dict:
    import numba
    import torch
    from torch.nn import functional as F

    from graphtrain.sampling.shard import merge_graphs
    from graphtrain.sampling.features import LocalNodeData
    from graphtrain.sampling.loader import NodeLoader
    from graphtrain.sampling.neighbor import NeighborSampler
    from graphtrain.train.dropout import step_randomness
    from graphtrain.train.gc_freeze import setup_objects_frozen
    from graphtrain.train.models import GNN, ModelConfig

    torch.set_num_threads(1)
    numba.set_num_threads(1)
    torch.manual_seed(0)
    generator = torch.Generator().manual_seed(0)
    graph = merge_graphs([ds.graph(p) for p in range(ds.num_parts)])
    data = LocalNodeData.from_dataset(ds)
    loader = NodeLoader(NeighborSampler(graph, fanouts, seed=0), seeds, batch_size, node_data=data, seed=0,
                        prefetch=prefetch)
    model = step = GNN(ModelConfig("sage", data.num_features, 2, hidden, len(fanouts), 0.2))
    if ddp is not None:
        import torch.distributed as dist

        dist.init_process_group("gloo", init_method=f"file://{ddp[0]}", rank=ddp[1], world_size=2)
        step = torch.nn.parallel.DistributedDataParallel(model)
        if ddp[2]:
            from graphtrain.train.gloo_threads import idle_gloo_pollers

            idle_gloo_pollers()
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    counts = np.bincount(data.labels(seeds), minlength=2)
    weight = torch.tensor(counts.sum() / (2 * np.maximum(counts, 1)), dtype=torch.float32)
    model.train()
    sizes = {"nodes": 0, "hop_nodes": np.zeros(len(fanouts) + 1), "hop_edges": np.zeros(len(fanouts))}
    records = []
    with setup_objects_frozen():  # as the Trainer's workers do: no full collection over the setup's objects
        for _ in range(epochs):
            seeds_done = batches = 0
            t0 = time.perf_counter()
            for batch in loader:
                d = batch.to_pyg()
                with step_randomness(generator, fused=True):  # the trainer arm's RuntimeConfig(fused_dropout=True)
                    out = step(d.x, d.edge_index, d.num_sampled_nodes, d.num_sampled_edges)[: batch.batch_size]
                loss = F.cross_entropy(out, d.y, weight=weight)
                opt.zero_grad()
                loss.backward()
                opt.step()
                batches += 1
                seeds_done += batch.batch_size
                sizes["nodes"] += batch.num_nodes
                sizes["hop_nodes"] += batch.num_sampled_nodes
                sizes["hop_edges"] += batch.num_sampled_edges
            records.append({"seconds": time.perf_counter() - t0, "seeds": seeds_done, "batches": batches})
    n_batches = sum(r["batches"] for r in records)
    if ddp is not None:
        dist.destroy_process_group()
    return {**steady(records), "mean_nodes": sizes["nodes"] / n_batches,
            "mean_hop_nodes": (sizes["hop_nodes"] / n_batches).tolist(),
            "mean_hop_edges": (sizes["hop_edges"] / n_batches).tolist(), "epochs": records}


def _baseline_share(ds_dir: str, seeds: np.ndarray, fanouts, batch_size: int, hidden: int, prefetch: int, pin: bool,
                    epochs: int, ddp, out):
    from graphtrain.partition import open_dataset

    out.put(run_baseline(open_dataset(ds_dir), seeds, fanouts, batch_size, hidden, prefetch, pin, epochs, ddp))


def _results_or_fail(procs, q) -> list:
    """One result per process from ``q``; a process that dies first (a crash, the OOM killer) fails
    the benchmark with its exit code instead of leaving this wait -- and, under DDP, its peer in a
    collective -- hanging. The survivors are terminated."""
    import queue

    results = []
    while len(results) < len(procs):
        try:
            results.append(q.get(timeout=5))
        except queue.Empty:
            if any(p.exitcode not in (None, 0) for p in procs) or all(p.exitcode is not None for p in procs):
                codes = [p.exitcode for p in procs]
                for p in procs:
                    if p.is_alive():
                        p.terminate()
                        p.join(timeout=10)
                raise RuntimeError(f"a control process ended without its result: exit codes {codes}")
    for p in procs:
        p.join()
    return results


def run_baseline_pair(ds_dir: Path, seeds: np.ndarray, fanouts, batch_size: int, hidden: int, prefetch: int,
                      pin: bool = False, epochs: int = 1, ddp: bool = False, idle_pollers: bool = True) -> dict:
    """Hardware control: two no-Ray processes at once, each training on half the seeds on the whole
    graph (held locally: no data plane).

    Without ``ddp`` they do not communicate at all, so ``(pair seeds/s) / (2 x baseline seeds/s)``
    is the best scaling efficiency this machine allows two single-threaded processes (shared
    caches, memory bandwidth, the hypervisor's idea of two cores). With ``ddp`` they average their
    gradients with DDP over gloo every step, as the Trainer's workers do: what the gradient
    all-reduce alone costs, without any sampling or feature exchange (``idle_pollers``: gloo's socket
    poller at idle priority, as the Trainer's CPU workers run it by default).
    """
    import multiprocessing as mp

    ctx = mp.get_context("spawn")
    q = ctx.Queue()
    half = seeds.size // 2  # DDP steps in lockstep: both processes run the same number of batches
    with tempfile.TemporaryDirectory(prefix="bench-train-ddp-") as tmp:
        procs = [ctx.Process(target=_baseline_share,
                             args=(str(ds_dir), seeds[k::2][:half] if ddp else seeds[k::2], fanouts, batch_size, hidden,
                                   prefetch, pin, epochs, (str(Path(tmp, "init")), k, idle_pollers) if ddp else None, q))
                 for k in range(2)]
        for p in procs:
            p.start()
        results = _results_or_fail(procs, q)
    # epoch by epoch: the slower process's time, both processes' seeds
    return steady([{"seconds": max(e["seconds"] for e in es), "seeds": sum(e["seeds"] for e in es),
                    "batches": sum(e["batches"] for e in es)} for es in zip(*(r["epochs"] for r in results))])


def run_trainer(ds_dir: Path, workers: int, fanouts, batch_size: int, hidden: int, ckpt: Path, prefetch: int,
                pin: bool = False, epochs: int = 1, gloo_poller: str = "idle") -> dict:
    from graphtrain.train import Trainer
    from graphtrain.train.runtime import RuntimeConfig

    # the fused CPU dropout, as in the recorded figures (benchmarks/RESULTS.md; opt-in since issue 18)
    runtime = RuntimeConfig(prefetch=prefetch, pin_cpus=pin, gloo_poller=gloo_poller, fused_dropout=True)
    t = Trainer(ds_dir, "sage", fanouts, batch_size, epochs, num_workers=workers, hidden=hidden, dropout=0.2,
                threads_per_worker=1, cpus_per_worker=1, checkpoint_dir=ckpt, progress=False, runtime=runtime)
    r = t.fit().to_dict()
    tr = r["train"]
    per_worker_batches = tr["batches"] / workers
    # rank 0's epoch times (the workers step in lockstep); every worker's seeds of one epoch
    row = steady([{"seconds": h["seconds"], "seeds": tr["seeds"] // epochs, "batches": tr["batches"] // epochs}
                  for h in r["history"]])
    return {**row, "fit_seconds": tr["fit_seconds"],
            "startup_seconds": tr["startup_seconds"], "eval_seconds": tr["eval_seconds"] + tr["final_seconds"],
            "bytes_sent_per_worker_batch": tr["bytes_sent"] / max(tr["batches"], 1),
            "per_worker_batches": per_worker_batches, "pinned_cores": tr["pinned_cores"],
            "cpu_per_worker": [c / tr["seconds"] for c in tr["cpu_seconds"]], "epochs_run": len(r["history"])}


def estimate_bytes_per_batch(cut_fraction: float, base: dict, feat_dim: int, workers: int) -> float:
    """Expected bytes one worker sends per batch, from the edge cut and the batch sizes.

    A sampled in-neighbour lies on another worker with probability ``rho = edge_cut / E`` (with
    ``W`` hash partitions, ``1 - 1/W``). Seeds are the worker's own nodes, so hop 1 asks nobody.
    Each remote hop-2 frontier entry costs a 16-byte request (ID, key) and an 8-byte count plus 16
    bytes (source, edge ID) per sampled edge in the answer; each remote non-seed node of the batch
    costs an 8-byte ID request and a ``4 F``-byte feature row. Traffic is symmetric, so what one
    worker sends (its requests plus its answers to the others) equals one batch's requests plus
    answers.
    """
    rho = cut_fraction
    n1 = base["mean_hop_nodes"][1]
    e2 = base["mean_hop_edges"][1] if len(base["mean_hop_edges"]) > 1 else 0.0
    non_seed = base["mean_nodes"] - base["mean_hop_nodes"][0]
    return rho * (n1 * (16 + 8) + e2 * 16 + non_seed * (8 + 4 * feat_dim))


def run_dgl(python: str, ds, seeds: np.ndarray, fanouts, batch_size: int, hidden: int, threads: int, tmp: Path,
            epochs: int = 1) -> dict:
    from graphtrain.sampling.shard import merge_graphs
    from graphtrain.sampling.features import LocalNodeData

    path = tmp / "dgl-input.npz"
    if not path.exists():
        g = merge_graphs([ds.graph(p) for p in range(ds.num_parts)])
        data = LocalNodeData.from_dataset(ds)
        ids = np.arange(ds.meta.num_nodes)
        np.savez(path, src=np.asarray(g.src), dst=g.dst(), num_nodes=ds.meta.num_nodes, features=data.features(ids),
                 labels=data.labels(ids), train_ids=seeds, fanouts=np.array(fanouts))
    env = dict(os.environ, OMP_NUM_THREADS=str(threads), MKL_NUM_THREADS=str(threads), DGLBACKEND="pytorch")
    proc = subprocess.run([python, str(Path(__file__).with_name("_dgl_train_worker.py")), str(path), str(batch_size),
                           str(hidden), str(epochs)], capture_output=True, text=True, env=env)
    if proc.returncode != 0:
        raise RuntimeError(f"DGL worker failed ({python}):\n{proc.stderr[-3000:]}")
    res = json.loads(proc.stdout.strip().splitlines()[-1])
    return {**steady(res["epochs"]), "dgl": res["dgl"]}


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--scale", type=int, default=20, help="R-MAT scale: 2**scale nodes (default 20)")
    ap.add_argument("--edges", type=int, default=10_000_000, help="number of edges (default 10M)")
    ap.add_argument("--features", type=int, default=64, help="feature dimensions")
    ap.add_argument("--labelled", type=int, default=150_000, help="labelled nodes (70%% of them train: one epoch)")
    ap.add_argument("--fanouts", type=int, nargs="+", default=[15, 10])
    ap.add_argument("--batch-size", type=int, default=1024)
    ap.add_argument("--hidden", type=int, default=256)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--prefetch", type=int, default=0,
                    help="batches sampled ahead in a background thread (default 0: every graphtrain process is "
                         "single-threaded, i.e. one core per worker; >0 lets a process use a second core)")
    ap.add_argument("--pin-cpus", action="store_true",
                    help="pin every graphtrain process to one core of its own (TrainConfig.pin_cpus; the baseline "
                         "and the hardware control too), so a prefetch thread shares its process's core instead of "
                         "using a second one")
    ap.add_argument("--gloo-poller", nargs="+", choices=["idle", "normal"], default=["idle"],
                    help="gloo's socket pollers at idle priority (TrainConfig.gloo_poller's CPU default) or normal, "
                         "for the DDP control and the 2-worker row; give both to run those rows once per setting, "
                         "in turn (the first setting's rows are the ones scaling is computed from)")
    ap.add_argument("--rounds", type=int, default=1,
                    help="run every row but DGL's this many times, in turns (baseline, controls, 1 worker, 2 "
                         "workers, baseline, ...); each ratio is the median of the rounds' own ratios, each row the "
                         "round with its median epoch time")
    ap.add_argument("--epochs", type=int, default=1,
                    help="epochs per row; with more than one, a row reports its mean epoch after the first "
                         "(steady state; the first one warms up), and every epoch's time is listed")
    ap.add_argument("--work-dir", default=os.environ.get("GRAPHTRAIN_BENCH_DIR"),
                    help="keep the partitioned dataset here between runs (default: a temporary directory)")
    ap.add_argument("--dgl-python", default=os.environ.get("GRAPHTRAIN_DGL_PYTHON"), help="python with dgl 2.x")
    ap.add_argument("--dgl-threads", type=int, nargs="+", default=[1, 2])
    ap.add_argument("--skip", nargs="*", default=[], choices=["baseline", "ray1", "ray2", "dgl"])
    ap.add_argument("--json", help="also write the results as JSON to this file")
    args = ap.parse_args(argv)
    if args.rounds < 1 or args.epochs < 1:
        ap.error("--rounds and --epochs must be >= 1")

    from graphtrain.partition import open_dataset
    from graphtrain.train.group import connect

    tmp_ctx = tempfile.TemporaryDirectory(prefix="bench-train-")
    tmp = Path(tmp_ctx.name)
    work = Path(args.work_dir) if args.work_dir else tmp
    work.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    ds_dir = build_dataset(work, args.scale, args.edges, args.features, args.labelled, 2, args.seed)
    ds = open_dataset(ds_dir)
    seeds = train_seeds(ds)
    cut = ds.meta.edge_cut
    cut_fraction = cut / ds.meta.num_edges if cut is not None else 0.5
    print(f"graph: R-MAT scale {args.scale}, {ds.meta.num_nodes:,} nodes, {ds.meta.num_edges:,} edges, "
          f"{args.features} features, 2 hash partitions (edge cut {cut_fraction:.1%}); dataset ready in "
          f"{time.perf_counter() - t0:.1f} s; {seeds.size:,} training seeds, batch {args.batch_size}, "
          f"fanouts {args.fanouts}, SAGE hidden {args.hidden}; 1 torch + 1 Numba thread per process, "
          f"prefetch {args.prefetch}, "
          f"{'pinned to one core each' if args.pin_cpus else 'not pinned'}; {args.epochs} epoch(s) per row"
          + (", the mean epoch after the first reported" if args.epochs > 1 else ""), flush=True)

    def suffix(poller):
        return f", pollers {poller}" if len(args.gloo_poller) > 1 else ""

    rows = {}
    ray_init = None
    runs = {}  # row name -> its result in each round
    for rnd in range(args.rounds):
        tag = f" (round {rnd + 1})" if args.rounds > 1 else ""
        if "baseline" not in args.skip:
            r = run_baseline(ds, seeds, args.fanouts, args.batch_size, args.hidden, args.prefetch, args.pin_cpus,
                             args.epochs)
            runs.setdefault("baseline (no Ray, 1 process)", []).append(r)
            print(f"  baseline{tag} done: {r['seconds']:.1f} s", flush=True)
            r = run_baseline_pair(ds_dir, seeds, args.fanouts, args.batch_size, args.hidden, args.prefetch,
                                  args.pin_cpus, args.epochs)
            runs.setdefault("2 independent no-Ray processes", []).append(r)
            print(f"  hardware control{tag} done: {r['seconds']:.1f} s", flush=True)
            for poller in args.gloo_poller:
                r = run_baseline_pair(ds_dir, seeds, args.fanouts, args.batch_size, args.hidden, args.prefetch,
                                      args.pin_cpus, args.epochs, ddp=True, idle_pollers=poller == "idle")
                runs.setdefault(f"2 no-Ray processes + DDP{suffix(poller)}", []).append(r)
                print(f"  hardware control with DDP{suffix(poller)}{tag} done: {r['seconds']:.1f} s", flush=True)
        for w, key, poller in [(1, "ray1", "idle")] + [(2, "ray2", p) for p in args.gloo_poller]:
            if key in args.skip:
                continue
            if ray_init is None:
                t = time.perf_counter()
                connect(num_cpus=2)
                ray_init = time.perf_counter() - t
            name = f"graphtrain ray {w} worker{'s' if w > 1 else ''}" + (suffix(poller) if w > 1 else "")
            r = run_trainer(ds_dir, w, args.fanouts, args.batch_size, args.hidden, tmp / f"ckpt{w}{poller}-{rnd}",
                            args.prefetch, args.pin_cpus, args.epochs, poller)
            runs.setdefault(name, []).append(r)
            print(f"  {name}{tag}: done: epoch {r['seconds']:.1f} s, "
                  f"fit {r['fit_seconds']:.1f} s, pinned cores {r['pinned_cores']}, CPU use in the epoch (cores, per "
                  f"worker) {[round(c, 2) for c in r['cpu_per_worker']]}", flush=True)
    for name, rs in runs.items():  # the round with the median epoch time stands for the row
        rows[name] = sorted(rs, key=lambda r: r["seconds"])[(len(rs) - 1) // 2]
    base = rows.get("baseline (no Ray, 1 process)")
    pair = rows.get("2 independent no-Ray processes")
    if args.dgl_python and "dgl" not in args.skip:
        for th in args.dgl_threads:
            r = run_dgl(args.dgl_python, ds, seeds, args.fanouts, args.batch_size, args.hidden, th, tmp, args.epochs)
            rows[f"dgl {r['dgl']} ({th} thread{'s' if th > 1 else ''})"] = r
            print(f"  dgl {th} thread(s) done: {r['seconds']:.1f} s", flush=True)

    print()
    header = f"{'run':<44} {'epoch s':>9} {'seeds/s':>10} {'x baseline':>10} {'batches':>8} {'fit wall s':>10} {'start s':>8} {'eval s':>7}"
    print(header)
    print("-" * len(header))
    base_rate = base["seeds"] / base["seconds"] if base else None
    for name, r in rows.items():
        rate = r["seeds"] / r["seconds"]
        xb = f"{rate / base_rate:.2f}" if base_rate else "-"
        fit = f"{r['fit_seconds']:.1f}" if "fit_seconds" in r else "-"
        st = f"{r['startup_seconds']:.1f}" if "startup_seconds" in r else "-"
        ev = f"{r['eval_seconds']:.1f}" if "eval_seconds" in r else "-"
        print(f"{name:<44} {r['seconds']:>9.2f} {rate:>10,.0f} {xb:>10} {r['batches']:>8} {fit:>10} {st:>8} {ev:>7}")
    if args.epochs > 1:
        print("every epoch, s: " + "; ".join(f"{n}: {', '.join(f'{x:.2f}' for x in r['epoch_seconds'])}"
                                            for n, r in rows.items()))
    one = rows.get("graphtrain ray 1 worker")
    two = rows.get(f"graphtrain ray 2 workers{suffix(args.gloo_poller[0])}")
    print()
    if ray_init is not None:
        print(f"ray.init (local, 2 CPUs): {ray_init:.1f} s")
    def rate(r):
        return r["seeds"] / r["seconds"]

    def per_round(numer: str, denom: str, denom_factor: int) -> list:
        """Each round's ``rate(numer) / (denom_factor * rate(denom))``: rows run minutes apart in the
        same round, so the machine's drift between rounds cancels; the median over rounds is printed."""
        return [rate(a) / (denom_factor * rate(b)) for a, b in zip(runs.get(numer, []), runs.get(denom, []))]

    def median_text(ratios: list) -> str:
        if len(ratios) == 1:
            return f"{ratios[0]:.0%}"
        return f"{float(np.median(ratios)):.0%} (median of {len(ratios)} rounds: {', '.join(f'{e:.0%}' for e in ratios)})"

    if pair and base:
        b = "baseline (no Ray, 1 process)"
        print(f"hardware control: 2 independent processes reach "
              f"{median_text(per_round('2 independent no-Ray processes', b, 2))} of 2 x one process's seeds/s (the "
              "ceiling of any 2-process scaling on this machine)")
        for p in args.gloo_poller:
            print(f"DDP control (2 no-Ray processes, DDP gradients, no data plane, gloo pollers {p}): "
                  f"{median_text(per_round(f'2 no-Ray processes + DDP{suffix(p)}', b, 2))} of 2 x one process's "
                  "seeds/s")
    for poller in args.gloo_poller if one else ():
        two_name = f"graphtrain ray 2 workers{suffix(poller)}"
        effs = per_round(two_name, "graphtrain ray 1 worker", 2)
        if not effs:
            continue
        print(f"scaling efficiency 1 -> 2 workers (seeds/s){suffix(poller)}: {median_text(effs)} (target >= 90%)")
        vs_ddp = per_round(two_name, f"2 no-Ray processes + DDP{suffix(poller)}", 1)
        if vs_ddp:
            print(f"  2 workers' seeds/s over the DDP control's{suffix(poller)}: {median_text(vs_ddp)} (what graphtrain "
                  "adds to plain DDP: Ray, the data plane, the feature cache)")
    if one and base:
        print(f"1-worker epoch overhead over the no-Ray baseline: {rate(base) / rate(one) - 1:+.1%} (target <= 10%)")
    for name, r in ((n, r) for n, r in rows.items() if "fit_seconds" in r):
        launch = r["fit_seconds"] - sum(r["epoch_seconds"]) - r["eval_seconds"]
        print(f"{name}: launch/teardown overhead (fit wall - epoch - evaluation) {launch:.1f} s "
              f"(worker start-up to first batch {r['startup_seconds']:.1f} s)")
    if two and base:
        est = estimate_bytes_per_batch(cut_fraction, base, args.features, 2)
        meas = two["bytes_sent_per_worker_batch"]
        print(f"bytes sent per worker per batch (2 workers): measured {meas / 1e6:.2f} MB, "
              f"estimate from the {cut_fraction:.1%} edge cut {est / 1e6:.2f} MB (ratio {meas / est:.2f})")
    dgl_rows = {n: r for n, r in rows.items() if n.startswith("dgl")}
    for n, r in dgl_rows.items():
        for mine in (one, two):
            if mine:
                label = "1 worker" if mine is one else "2 workers"
                print(f"epoch time graphtrain {label} / {n}: {rate(r) / rate(mine):.2f} (< 1 = faster than DGL)")
    if args.json:
        Path(args.json).write_text(json.dumps({"rows": rows, "ray_init_s": ray_init, "cut_fraction": cut_fraction}, indent=2))
    tmp_ctx.cleanup()


if __name__ == "__main__":
    main()
