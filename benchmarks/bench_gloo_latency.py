"""Latency of the torch.distributed (gloo) collectives a distributed training batch runs.

Two processes on this machine, one torch thread each: a small ``all_to_all_single`` (the shape of
graphtrain's count exchanges) and an ``all_reduce`` of a gradient-sized float32 vector (DDP).
Explains the per-batch communication floor of ``bench_train.py``'s 2-worker row.

    python benchmarks/bench_gloo_latency.py [--world 2] [--grad-floats 70000]
"""
from __future__ import annotations

import argparse
import os
import tempfile
import time


def _run(rank: int, world: int, init_file: str, grad_floats: int, reps: int) -> None:
    import torch
    import torch.distributed as dist

    torch.set_num_threads(1)
    dist.init_process_group("gloo", init_method=f"file://{init_file}", rank=rank, world_size=world)
    small, out = torch.zeros(world * 64, dtype=torch.int64), torch.empty(world * 64, dtype=torch.int64)
    grad = torch.zeros(grad_floats)
    for _ in range(50):  # warm-up
        dist.all_to_all_single(out, small)
        dist.all_reduce(grad)
    t0 = time.perf_counter()
    for _ in range(reps):
        dist.all_to_all_single(out, small)
    a2a = (time.perf_counter() - t0) / reps
    t0 = time.perf_counter()
    for _ in range(reps // 4):
        dist.all_reduce(grad)
    red = (time.perf_counter() - t0) / (reps // 4)
    if rank == 0:
        print(f"{'collective':<40}{'ms per call':>12}")
        print(f"{f'all_to_all_single, {world} x 64 int64':<40}{a2a * 1e3:>12.3f}")
        print(f"{f'all_reduce, {grad_floats:,} float32':<40}{red * 1e3:>12.3f}")
    dist.destroy_process_group()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--world", type=int, default=2, help="processes (default: %(default)s)")
    ap.add_argument("--grad-floats", type=int, default=70_000, help="all-reduce size (default: %(default)s)")
    ap.add_argument("--reps", type=int, default=2000, help="timed all-to-alls (a quarter as many all-reduces)")
    args = ap.parse_args()
    import torch.multiprocessing as mp

    with tempfile.TemporaryDirectory() as tmp:
        mp.spawn(_run, args=(args.world, os.path.join(tmp, "init"), args.grad_floats, args.reps), nprocs=args.world)


if __name__ == "__main__":
    main()
