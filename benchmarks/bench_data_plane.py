"""Where a distributed worker's batch time goes: the loader alone (sampling + feature fetch), no model.

Runs ``--workers`` graphtrain workers as plain spawned processes (no Ray; the same worker context
``graphtrain.train.worker`` builds: gloo groups, memory-mapped shard, feature cache, seed dealing)
on the ``bench_train.py`` dataset, iterates ``--epochs`` epochs of the training loader on each and
measures the last (the first one pays for page faults on the memory-mapped shard and first kernel
calls: 14.5 against 9.5 ms of loader CPU per batch in session 10), and prints per batch, per rank:
wall and CPU milliseconds of the whole batch and of its parts, the number of collectives (count
and payload exchanges), and for 2 workers the collective timing split into latency (from the later
of the two ranks' arrival to the first return) and imbalance (the gap between the ranks' arrivals).

    python benchmarks/bench_data_plane.py --workers 2 [--epochs 3] [--work-dir /tmp/gt-bench] [--pin-cpus]

With ``--workers 1`` the same loader runs without any exchange (the reference for the overhead).
With ``--independent``, the ``--workers`` processes each run that 1-worker loader at the same time
(no group, no exchange): the reference that includes what the processes cost each other in the
machine's shared caches and memory (see RESULTS.md, "Data plane"). ``--pin-cpus`` pins process ``r``
to core ``r`` (as ``bench_train.py --pin-cpus``).
"""
from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import os
import socket
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(Path(__file__).resolve().parent))


_ORDER = ["batch", "  sampling (both hops)", "    local hop kernel (own + others' requests)",
          "    owner: IDs whose rows to carry (carry_ids)", "    requester: remote IDs to ask for (missing_by_owner)",
          "    requester: answers to request order (_reorder_csr)", "    channel exchanges (packing, owner row gather, collective)",
          "  features", "    cached and carried row copies", "  collectives: count exchanges",
          "  collectives: payload exchanges"]


def _timed(owner, name, label, acc):
    fn = getattr(owner, name)

    def wrapper(*a, **k):
        t, c = time.perf_counter(), time.thread_time()
        try:
            return fn(*a, **k)
        finally:
            e = acc.setdefault(label, [0, 0.0, 0.0])
            e[0] += 1
            e[1] += time.perf_counter() - t
            e[2] += time.thread_time() - c

    setattr(owner, name, wrapper)


def _worker(rank: int, world: int, port: int, ds_dir: str, out_dir: str, epochs: int, pin: int, proc: int) -> None:
    """One process's loader; ``proc`` names its results (its rank, or its index with --independent);
    ``pin``: the core to pin it to, -1 for none."""
    if pin >= 0:
        os.sched_setaffinity(0, {pin})
    import numba
    import torch.distributed as dist

    import graphtrain.comm.exchange as C
    import graphtrain.sampling.distributed_sampler as DS
    import graphtrain.sampling.hop as H
    import graphtrain.sampling.loader as L
    import graphtrain.sampling.neighbor as N
    import graphtrain.sampling.remote_features as RF
    from graphtrain.partition import open_dataset
    from graphtrain.train.config import TrainConfig
    from graphtrain.train.runtime import RuntimeConfig
    from graphtrain.train.worker import WorkerTask, _Context

    numba.set_num_threads(1)
    ds = open_dataset(ds_dir)
    cfg = TrainConfig(fanouts=(15, 10), batch_size=1024, threads_per_worker=1, runtime=RuntimeConfig(prefetch=0))
    ctx = _Context(WorkerTask("fit", ds_dir, rank, world, ds.book.contiguous_runs(world).tolist(), "127.0.0.1", port,
                              cfg.to_dict()))
    seeds, _ = ctx.seeds_by_role()
    acc = {}
    _timed(L.NodeLoader, "_make", "batch", acc)
    _timed(N.NeighborSampler, "_sample", "  sampling (both hops)", acc)
    _timed(H.LocalHopSampler, "sample_hop", "    local hop kernel (own + others' requests)", acc)
    _timed(RF.DistributedNodeData, "carry_ids", "    owner: IDs whose rows to carry (carry_ids)", acc)
    _timed(RF.DistributedNodeData, "missing_by_owner", "    requester: remote IDs to ask for (missing_by_owner)", acc)
    _timed(DS, "_reorder_csr", "    requester: answers to request order (_reorder_csr)", acc)
    _timed(C.Exchange, "_channel_exchange", "    channel exchanges (packing, owner row gather, collective)", acc)
    _timed(RF.DistributedNodeData, "features", "  features", acc)
    _timed(RF, "copy_cached_rows", "    cached and carried row copies", acc)
    _timed(C.Exchange, "exchange_counts", "  collectives: count exchanges", acc)
    _timed(C.Exchange, "_all_to_all_flat", "  collectives: payload exchanges", acc)
    stamps = []
    if world > 1:
        orig = dist.all_to_all_single

        def a2a(*a, **k):
            t0 = time.time()
            r = orig(*a, **k)
            stamps.append((t0, time.time()))
            return r

        dist.all_to_all_single = a2a
    loader = ctx.loader(seeds["train"].seeds, cfg.batch_size, shuffle=True, seed=ctx.worker_seed)
    for epoch in range(epochs - 1):  # warm-up: first kernel calls, page faults on the memory-mapped shard
        for _ in loader.batches(epoch):
            pass
    acc.clear()
    stamps.clear()
    n = 0
    cpu0 = time.process_time()
    t0 = time.perf_counter()
    for _ in loader.batches(epochs - 1):
        n += 1
    wall = time.perf_counter() - t0
    out = {"rank": proc, "batches": n, "wall_ms": wall * 1e3 / n, "process_cpu_ms": (time.process_time() - cpu0) * 1e3 / n,
           "parts": {k: {"calls_per_batch": v[0] / n, "wall_ms": v[1] * 1e3 / n, "cpu_ms": v[2] * 1e3 / n}
                     for k, v in acc.items()}}
    Path(out_dir, f"rank{proc}.json").write_text(json.dumps(out))
    np.save(Path(out_dir, f"stamps{proc}.npy"), np.array(stamps, dtype=np.float64).reshape(-1, 2))
    ctx.close()


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--epochs", type=int, default=2,
                    help="loader epochs; the last one is measured (default 2: one warm-up epoch)")
    ap.add_argument("--independent", action="store_true",
                    help="run --workers independent 1-worker loaders at once (the machine's contention, no exchange)")
    ap.add_argument("--pin-cpus", action="store_true", help="pin process r to core r")
    ap.add_argument("--work-dir", default=os.environ.get("GRAPHTRAIN_BENCH_DIR"),
                    help="where bench_train.py keeps its dataset (built there if missing)")
    args = ap.parse_args(argv)
    from bench_train import build_dataset

    with tempfile.TemporaryDirectory(prefix="bench-data-plane-") as tmp:
        work = Path(args.work_dir) if args.work_dir else Path(tmp)
        ds_dir = build_dataset(work, 20, 10_000_000, 64, 150_000, 2, 0)
        ctx = mp.get_context("spawn")
        procs = []
        for r in range(args.workers):
            if r == 0 or args.independent:  # one group of --workers, or one group of 1 per process
                s = socket.socket()
                s.bind(("127.0.0.1", 0))
                port = s.getsockname()[1]
                s.close()
            rank, world = (0, 1) if args.independent else (r, args.workers)
            pin = r % (os.cpu_count() or 1) if args.pin_cpus else -1
            procs.append(ctx.Process(target=_worker, args=(rank, world, port, str(ds_dir), tmp, args.epochs, pin, r)))
        for p in procs:
            p.start()
        for p in procs:
            p.join()
        if any(p.exitcode != 0 for p in procs):
            raise SystemExit(f"a worker failed: exit codes {[p.exitcode for p in procs]}")
        results = [json.loads(Path(tmp, f"rank{r}.json").read_text()) for r in range(args.workers)]
        stamps = [np.load(Path(tmp, f"stamps{r}.npy")) for r in range(args.workers)]
    what = f"{args.workers} independent 1-worker loaders at once" if args.independent else f"{args.workers} worker(s)"
    print(f"loader only, {what}, epoch {args.epochs} of 1024-seed batches (the earlier ones warm up), "
          "fanouts [15, 10]; ms per batch")
    for r in results:
        print(f"rank {r['rank']}: {r['batches']} batches, wall {r['wall_ms']:.2f}, process CPU {r['process_cpu_ms']:.2f} "
              "(all threads: gloo's included); below, the loader thread's CPU")
        for name, v in sorted(r["parts"].items(), key=lambda kv: _ORDER.index(kv[0])):
            print(f"  {name:<60} calls {v['calls_per_batch']:5.1f}  wall {v['wall_ms']:6.2f}  CPU {v['cpu_ms']:6.2f}")
    if args.workers == 2 and not args.independent and min(len(x) for x in stamps):
        a, b = stamps
        k = min(len(a), len(b))
        a, b = a[:k], b[:k]
        latency = np.minimum(a[:, 1], b[:, 1]) - np.maximum(a[:, 0], b[:, 0])
        gap = np.abs(a[:, 0] - b[:, 0])
        print(f"collectives: {k}; latency once both ranks are in: median {np.median(latency) * 1e3:.3f} ms, mean "
              f"{latency.mean() * 1e3:.3f} ms; arrival gap (imbalance): median {np.median(gap) * 1e3:.3f} ms, mean "
              f"{gap.mean() * 1e3:.3f} ms")


if __name__ == "__main__":
    main()
