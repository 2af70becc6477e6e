"""Where a mini-batch's sampling time goes, on 1 and on 2 Numba threads (issue 3's thread scaling).

The graph and batches of ``bench_sampling.py`` (R-MAT scale 20, 10M edges, fanouts [15, 10], batch
1024); ``NeighborSampler.sample`` on the CPU kernels with its three stages timed by wrapping them:
``sample_hop`` (the one-hop kernel, both hops), ``unique_relabel`` (both hops) and
``frontier_keys``; "other" is the rest (Python glue, concatenations, batch assembly). Prints ms per
batch per stage and each stage's 1 -> 2 thread speed-up. The sampler runs hop by hop on both thread
counts (on one thread it would otherwise sample each batch with one whole-batch kernel call).

    python benchmarks/bench_sampling_stages.py [--batches 100]
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))
sys.path.insert(0, str(HERE))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--batches", type=int, default=100)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    import numba

    import graphtrain.sampling.neighbor as neighbor
    from bench_sampling import build_graph, seed_batches
    from graphtrain.sampling.neighbor import NeighborSampler

    graph = build_graph(20, 10_000_000, args.seed)
    batches = seed_batches(graph, args.batches, 1024, args.seed)
    sampler = NeighborSampler(graph, [15, 10], backend="cpu", seed=args.seed)
    sampler._whole_batch = False  # time the stages hop by hop (on one thread the sampler would run one whole-batch kernel)
    spent = {}

    def timed(owner, name):
        fn = getattr(owner, name)

        def wrapper(*a, **k):
            t = time.perf_counter()
            try:
                return fn(*a, **k)
            finally:
                spent[name] = spent.get(name, 0.0) + time.perf_counter() - t
        setattr(owner, name, wrapper)

    timed(sampler.hop_sampler, "sample_hop")
    timed(sampler._kernels, "unique_relabel")
    timed(neighbor, "frontier_keys")
    rows = {}
    for threads in (1, 2):
        numba.set_num_threads(threads)
        for b in batches[:5]:  # warm-up: JIT and caches
            sampler.sample(b)
        spent.clear()
        t0 = time.perf_counter()
        for i, b in enumerate(batches):
            sampler.sample(b, batch_index=i)
        total = time.perf_counter() - t0
        per = {k: v * 1e3 / len(batches) for k, v in spent.items()}
        per["other"] = total * 1e3 / len(batches) - sum(per.values())
        per["total"] = total * 1e3 / len(batches)
        rows[threads] = per
    print(f"{'stage':<16}{'1 thread ms':>12}{'2 threads ms':>14}{'speed-up':>10}")
    for stage in ("sample_hop", "unique_relabel", "frontier_keys", "other", "total"):
        one, two = rows[1][stage], rows[2][stage]
        print(f"{stage:<16}{one:>12.2f}{two:>14.2f}{one / two:>10.2f}")


if __name__ == "__main__":
    main()
