"""graphtrain's CPU dropout (:mod:`graphtrain.train.dropout`) against torch's ``F.dropout``.

The shipped models apply dropout to each hidden layer's output. On the training benchmark's
GraphSAGE batch that output is ``[3408, 256]`` float32 (seeds + hop-1 nodes x hidden 256), and
torch's CPU dropout -- an mt19937 ``bernoulli_`` per element -- took a third of a training step.
This prints milliseconds per call (median of ``--reps``) of forward and of forward + backward, for
both implementations, on one core (``--threads``: torch and Numba threads), and the ratio.

    python benchmarks/bench_dropout.py [--rows 3408] [--cols 256] [--p 0.2] [--reps 50]
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def _median_ms(fn, reps: int) -> float:
    fn()  # compile / warm up
    times = []
    for _ in range(reps):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return float(np.median(times) * 1e3)


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--rows", type=int, default=3408)
    ap.add_argument("--cols", type=int, default=256)
    ap.add_argument("--p", type=float, default=0.2)
    ap.add_argument("--reps", type=int, default=50)
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args(argv)
    import numba
    import torch
    from torch.nn import functional as F

    from graphtrain.train.dropout import dropout

    torch.set_num_threads(args.threads)
    numba.set_num_threads(min(args.threads, numba.config.NUMBA_NUM_THREADS))
    torch.manual_seed(0)
    x = torch.randn(args.rows, args.cols, requires_grad=True)
    grad = torch.randn(args.rows, args.cols)
    impls = {"torch F.dropout": lambda h: F.dropout(h, args.p, True), "graphtrain dropout": lambda h: dropout(h, args.p)}
    rows = []
    for name, fn in impls.items():
        fwd = _median_ms(lambda: fn(x), args.reps)
        both = _median_ms(lambda: fn(x).backward(grad), args.reps)
        rows.append((name, fwd, both))
    print(f"dropout p={args.p} on float32 [{args.rows}, {args.cols}], {args.threads} thread(s); ms per call, "
          f"median of {args.reps}")
    print(f"{'implementation':<22}{'forward':>10}{'fwd + bwd':>12}")
    for name, fwd, both in rows:
        print(f"{name:<22}{fwd:>10.3f}{both:>12.3f}")
    (_, tf, tb), (_, gf, gb) = rows
    print(f"torch / graphtrain: forward {tf / gf:.1f}x, forward + backward {tb / gb:.1f}x")


if __name__ == "__main__":
    main()
