"""Neighbour-sampling throughput: graphtrain kernels vs the NumPy reference vs DGL 2.1, in one run.

Graph: R-MAT (``graphtrain.rmat``, Graph500 parameters) with ``2**scale`` nodes and ``--edges``
edges (default scale 20, 10M edges). Seeds: random batches of ``--batch-size`` nodes with
in-degree > 0 (the same batches for every sampler). Fanouts ``[15, 10]`` by default.

Measured per sampler: seeds/s and sampled edges/s for the whole mini-batch (every hop, including
unique + relabel and the MiniBatch assembly). Each sampler first runs ``--warmup`` batches that are
not timed, so Numba's JIT compile time is excluded (DGL gets the same warm-up). The graphtrain CPU
rows run ``--repeats`` times, taking turns, and report their median run (the spread is printed).
``--index-dtypes int64 int32`` times those rows on the graph with int64 and with int32 ``indptr`` /
``src`` (the compact storage of format version 2), taking turns in the same run, and prints the ratio.

Samplers: ``reference`` (pure NumPy), graphtrain ``cpu`` with each thread count of ``--threads``
(the threads split each batch's kernels), graphtrain ``cpu batch-parallel`` for each thread count
above 1 (``NodeLoader(sampling_threads=T)``'s executor, :func:`graphtrain.sampling.loader.run_ahead`:
``T`` threads each sampling whole batches on one Numba thread; the same batches, returned in order),
graphtrain ``cuda`` when ``--backend cuda`` (needs a GPU), and DGL's
``NeighborSampler(fanouts).sample_blocks`` run in a subprocess by ``--dgl-python`` (default: env
``GRAPHTRAIN_DGL_PYTHON``) on the same graph and batches, saved to a temporary ``.npz``, with
``OMP_NUM_THREADS`` set to each of ``--dgl-threads``.

Note on the edge counts: DGL's blocks re-sample the seeds at hop 2 (a block's destinations are all
nodes of the previous layer), while graphtrain's PyG-style mini-batch reuses the hop-1 edges of the
seeds (PyG's trim-to-layer layout). DGL therefore draws more edges per seed; compare seeds/s for
"same training batches per second" and edges/s for "raw sampling work".

Example (the RESULTS.md command)::

    flock /tmp/graphtrain-bench.lock python benchmarks/bench_sampling.py \\
        --dgl-python /work/venvs/dgl/bin/python
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

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from graphtrain.graph import CSCGraph  # noqa: E402
from graphtrain.rmat import rmat_edges  # noqa: E402


def build_graph(scale: int, num_edges: int, seed: int):
    src, dst = rmat_edges(scale, 0, num_edges, seed=seed)
    graph, _ = CSCGraph.from_edges(src, dst, 1 << scale)
    return graph


def with_index_dtype(graph: CSCGraph, dtype: str) -> CSCGraph:
    """The graph with ``indptr`` and ``src`` as ``dtype`` (int32: as a compact dataset stores them)."""
    if dtype == "int64":
        return graph
    return CSCGraph(indptr=graph.indptr.astype(dtype), src=graph.src.astype(dtype), node_start=graph.node_start,
                    edge_start=graph.edge_start, num_global_nodes=graph.num_global_nodes,
                    edge_attrs=dict(graph.edge_attrs), time_sorted=graph.time_sorted)


def seed_batches(graph: CSCGraph, num_batches: int, batch_size: int, seed: int) -> np.ndarray:
    candidates = np.nonzero(graph.in_degree() > 0)[0]
    rs = np.random.default_rng(seed)
    return np.stack([rs.choice(candidates, batch_size, replace=False) for _ in range(num_batches)])


def time_graphtrain(graph, fanouts, batches, backend, warmup, threads=None):
    import numba

    from graphtrain.sampling.neighbor import NeighborSampler

    if threads is not None:
        numba.set_num_threads(threads)
    sampler = NeighborSampler(graph, fanouts, backend=backend, seed=0)
    for i in range(warmup):
        sampler.sample(batches[i % len(batches)], batch_index=10**6 + i)
    edges = seeds = 0
    t0 = time.perf_counter()
    for i, b in enumerate(batches):
        mb = sampler.sample(b, batch_index=i)
        edges += mb.num_edges
        seeds += mb.batch_size
    return {"seconds": time.perf_counter() - t0, "seeds": seeds, "edges": edges, "batches": len(batches)}


def time_batch_parallel(graph, fanouts, batches, warmup, threads):
    """Whole batches on ``threads`` threads at once, the way ``NodeLoader(sampling_threads=threads)`` runs them."""
    import numba

    from graphtrain.sampling.loader import run_ahead
    from graphtrain.sampling.neighbor import NeighborSampler

    numba.set_num_threads(threads)  # run_ahead gives each of its threads threads // threads = 1
    sampler = NeighborSampler(graph, fanouts, backend="cpu", seed=0)
    warm = [(batches[i % len(batches)], None, 10**6 + i) for i in range(max(warmup, threads))]
    for _ in run_ahead(sampler.sample, warm, threads, threads):  # JIT and every thread's first call
        pass
    edges = seeds = 0
    t0 = time.perf_counter()
    for mb in run_ahead(sampler.sample, [(b, None, i) for i, b in enumerate(batches)], threads, threads):
        edges += mb.num_edges
        seeds += mb.batch_size
    return {"seconds": time.perf_counter() - t0, "seeds": seeds, "edges": edges, "batches": len(batches)}


def time_dgl(python, graph, fanouts, batches, warmup, threads):
    with tempfile.TemporaryDirectory(prefix="bench-sampling-") as tmp:
        path = Path(tmp) / "graph.npz"
        np.savez(path, src=graph.src, dst=graph.dst(), num_nodes=graph.num_nodes, batches=batches, fanouts=np.array(fanouts))
        env = dict(os.environ, OMP_NUM_THREADS=str(threads), MKL_NUM_THREADS=str(threads), DGLBACKEND="pytorch")
        proc = subprocess.run(
            [python, str(Path(__file__).with_name("_dgl_sampling_worker.py")), str(path), str(len(batches)), str(warmup)],
            capture_output=True, text=True, env=env,
        )
    if proc.returncode != 0:
        raise RuntimeError(f"DGL worker failed ({python}):\n{proc.stderr[-2000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--scale", type=int, default=20, help="R-MAT scale: 2**scale nodes (default 20)")
    ap.add_argument("--edges", type=int, default=10_000_000, help="number of edges (default 10M)")
    ap.add_argument("--fanouts", type=int, nargs="+", default=[15, 10])
    ap.add_argument("--batch-size", type=int, default=1024)
    ap.add_argument("--batches", type=int, default=200, help="timed batches per graphtrain/DGL sampler")
    ap.add_argument("--ref-batches", type=int, default=20, help="timed batches for the NumPy reference")
    ap.add_argument("--warmup", type=int, default=3, help="untimed batches first (JIT compile, caches)")
    ap.add_argument("--threads", type=int, nargs="+", default=[1, 2], help="CPU thread counts to run")
    ap.add_argument("--repeats", type=int, default=3, help="runs of each graphtrain CPU row, taking turns (median reported)")
    ap.add_argument("--backend", choices=["cpu", "cuda"], default="cpu", help="cuda: also time the GPU backend")
    ap.add_argument("--dgl-python", default=os.environ.get("GRAPHTRAIN_DGL_PYTHON"), help="python with dgl 2.x")
    ap.add_argument("--dgl-threads", type=int, nargs="+", default=[1])
    ap.add_argument("--seed", type=int, default=0, help="R-MAT and seed-batch seed")
    ap.add_argument("--index-dtypes", nargs="+", choices=["int64", "int32"], default=["int64"],
                    help="dtypes of the graph's indptr/src to time the graphtrain CPU rows with (int32: the compact "
                         "storage of format version 2); several take turns in the same run")
    ap.add_argument("--json", help="also write the results as JSON to this file")
    args = ap.parse_args(argv)

    t0 = time.perf_counter()
    graph = build_graph(args.scale, args.edges, args.seed)
    batches = seed_batches(graph, args.batches, args.batch_size, args.seed)
    print(f"graph: R-MAT scale {args.scale}, {graph.num_nodes:,} nodes, {graph.num_edges:,} edges "
          f"(built in {time.perf_counter() - t0:.1f} s); fanouts {args.fanouts}, batch {args.batch_size}, "
          f"{args.batches} batches (reference: {args.ref_batches}); warm-up {args.warmup} batches excluded")

    rows = []
    rows.append(("numpy reference", 1, time_graphtrain(graph, args.fanouts, batches[: args.ref_batches], "reference", 1)))
    # the graphtrain CPU rows take turns, --repeats times; each row reports its median run (noisy machines)
    graphs = {dt: with_index_dtype(graph, dt) for dt in args.index_dtypes}
    tag = (lambda dt: f" [{dt}]") if len(graphs) > 1 else (lambda dt: "")
    configs = [(f"graphtrain cpu{tag(dt)}", t, lambda t=t, g=g: time_graphtrain(g, args.fanouts, batches, "cpu", args.warmup, t))
               for dt, g in graphs.items() for t in args.threads]
    configs += [(f"graphtrain cpu batch-parallel{tag(dt)}", t,
                 lambda t=t, g=g: time_batch_parallel(g, args.fanouts, batches, args.warmup, t))
                for dt, g in graphs.items() for t in args.threads if t > 1]
    runs = {(name, t): [] for name, t, _ in configs}
    for _ in range(args.repeats):
        for name, t, fn in configs:
            runs[(name, t)].append(fn())
    for (name, t), rs in runs.items():
        rows.append((name, t, sorted(rs, key=lambda r: r["seconds"])[len(rs) // 2]))
    if args.repeats > 1:
        spread = {f"{name} {t}t": [round(r["edges"] / r["seconds"] / 1e6, 1) for r in rs] for (name, t), rs in runs.items()}
        print(f"graphtrain runs (M edges/s, in run order): {spread}")
    if args.backend == "cuda":
        rows.append(("graphtrain cuda", None, time_graphtrain(graph, args.fanouts, batches, "cuda", args.warmup)))
    if args.dgl_python:
        for t in args.dgl_threads:
            res = time_dgl(args.dgl_python, graph, args.fanouts, batches, args.warmup, t)
            rows.append((f"dgl {res['dgl']} sample_blocks", t, res))
    else:
        print("DGL not run: pass --dgl-python or set GRAPHTRAIN_DGL_PYTHON")

    def rates(r):
        return r["seeds"] / r["seconds"], r["edges"] / r["seconds"]

    ref_s, ref_e = rates(rows[0][2])
    dgl1 = next((r for name, t, r in rows if name.startswith("dgl") and t == 1), None)
    dgl_s, dgl_e = rates(dgl1) if dgl1 else (None, None)
    header = f"{'sampler':<30} {'threads':>7} {'seeds/s':>12} {'edges/s':>14} {'edges/seed':>10} {'x ref (edges/s)':>16} {'x dgl-1t seeds/s':>17} {'x dgl-1t edges/s':>17}"
    print(header)
    print("-" * len(header))
    out = []
    for name, t, r in rows:
        s, e = rates(r)
        xd_s = f"{s / dgl_s:.2f}" if dgl_s else "-"
        xd_e = f"{e / dgl_e:.2f}" if dgl_e else "-"
        print(f"{name:<30} {str(t or '-'):>7} {s:>12,.0f} {e:>14,.0f} {r['edges'] / r['seeds']:>10.1f} {e / ref_e:>16.1f} {xd_s:>17} {xd_e:>17}")
        out.append({"sampler": name, "threads": t, **r, "seeds_per_s": s, "edges_per_s": e})
    cpu = {t: rates(r) for name, t, r in rows if name == "graphtrain cpu"}
    if 1 in cpu and 2 in cpu:
        print(f"cpu scaling 1 -> 2 threads: {cpu[2][1] / cpu[1][1]:.2f}x (edges/s), threads splitting each batch")
    par = {t: rates(r) for name, t, r in rows if name == "graphtrain cpu batch-parallel"}
    if 1 in cpu and 2 in par:
        print(f"cpu scaling 1 -> 2 threads: {par[2][1] / cpu[1][1]:.2f}x (edges/s), batch-parallel")
    if len(graphs) > 1:
        by = {(name, t): rates(r)[1] for name, t, r in rows}
        for name, t, _ in rows:
            if name.endswith("[int32]"):
                wide = by.get((name.replace("[int32]", "[int64]"), t))
                if wide:
                    print(f"{name.replace(' [int32]', '')} {t}t: int32 / int64 indices {by[(name, t)] / wide:.3f}x (edges/s, medians)")
    if args.json:
        Path(args.json).write_text(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
