#!/usr/bin/env python
"""Benchmark ``graphtrain partition`` on R-MAT edge lists against DGL 2.1's random partitioning.

For each size, an R-MAT edge list (Graph500 a=.57 b=c=.19, vertex IDs scrambled onto sparse 62-bit
integers, so neither contiguous nor degree-ordered) is streamed to Parquet once and cached. Then:

- ``graphtrain partition`` runs as a subprocess on that file (reading, raw-ID mapping, assignment,
  relabelling and writing all included); wall time and the child's peak RSS (``wait4``) are taken.
  A tiny warm-up run first fills Numba's on-disk cache, so JIT compilation is not timed.
- With ``--dgl-python`` (a Python with torch 2.2.1 + dgl 2.1.0, see benchmarks/README.md), in the
  same run: ``dgl.distributed.partition_graph(g, ..., part_method="random")`` on the same graph.
  DGL needs contiguous node IDs, so the benchmark relabels the edges for it beforehand (untimed)
  and builds the DGLGraph before starting its clock; its peak RSS is the whole process's.

Prints a table with ratios (graphtrain vs DGL) and bytes of peak RSS per edge.

Examples::

    python benchmarks/bench_partition.py --sizes 10M 100M --dgl-python /work/venvs/dgl/bin/python
    python benchmarks/bench_partition.py --sizes 1B --workdir /data/bench      # the 1B-edge run
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
import pyarrow as pa
import pyarrow.parquet as pq

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from graphtrain.rmat import rmat_chunks, scramble_ids  # noqa: E402

SCALES = {10_000_000: 20, 100_000_000: 23, 1_000_000_000: 26}  # Graph500-like edge factors 10, 12, 15

DGL_SCRIPT = r"""
import json, resource, sys, time
import numpy as np, torch, dgl
npz, out_dir, num_parts = sys.argv[1], sys.argv[2], int(sys.argv[3])
d = np.load(npz)
g = dgl.graph((torch.from_numpy(d["src"]), torch.from_numpy(d["dst"])), num_nodes=int(d["num_nodes"]))
t = time.perf_counter()
dgl.distributed.partition_graph(g, "bench", num_parts, out_dir, part_method="random", balance_edges=False)
seconds = time.perf_counter() - t
print(json.dumps({"seconds": seconds, "num_nodes": g.num_nodes(), "num_edges": g.num_edges()}))
"""


def parse_count(text: str) -> int:
    mult = {"K": 10**3, "M": 10**6, "B": 10**9, "G": 10**9}
    text = text.strip().upper()
    return int(float(text[:-1]) * mult[text[-1]]) if text[-1] in mult else int(text)


def edge_list(workdir: Path, num_edges: int, seed: int) -> Path:
    """Parquet edge list (src, dst int64) of the R-MAT stream, written once and cached."""
    scale = SCALES.get(num_edges, max(10, int(np.ceil(np.log2(num_edges / 10)))))
    path = workdir / f"rmat-s{scale}-e{num_edges}-seed{seed}.parquet"
    if path.exists():
        return path
    tmp = path.with_suffix(".tmp")
    schema = pa.schema([("src", pa.int64()), ("dst", pa.int64())])
    t = time.perf_counter()
    with pq.ParquetWriter(tmp, schema, compression="snappy") as writer:
        for src, dst in rmat_chunks(scale, num_edges, chunk_edges=1 << 22, seed=seed):
            writer.write_table(pa.table({"src": scramble_ids(src, seed), "dst": scramble_ids(dst, seed)}, schema=schema))
    os.replace(tmp, path)
    print(f"# generated {path.name} ({num_edges:,} edges, scale {scale}) in {time.perf_counter() - t:.0f} s", flush=True)
    return path


def run_measured(cmd, env=None):
    """Run ``cmd``; return (wall seconds, peak RSS bytes of the child, stdout)."""
    t = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env, text=True)
    out, err = proc.communicate()  # reads pipes; the child is reaped below via its rusage
    seconds = time.perf_counter() - t
    _, status, usage = os.wait4(proc.pid, 0) if proc.returncode is None else (proc.pid, 0, None)
    if usage is None:
        usage = _child_usage_fallback()
    if proc.returncode:
        raise RuntimeError(f"{cmd[0]} failed ({proc.returncode}):\n{err[-3000:]}")
    return seconds, usage.ru_maxrss * 1024, out


def _child_usage_fallback():
    import resource

    return resource.getrusage(resource.RUSAGE_CHILDREN)


def graphtrain_cmd(path: Path, out: Path, parts: int, method: str, memory_limit: str, threads: int):
    return [sys.executable, "-m", "graphtrain.cli", "partition", str(path), "--out", str(out), "--num-parts", str(parts),
            "--method", method, "--memory-limit", memory_limit, "--threads", str(threads), "--force", "--json", "--no-progress"]


def measure_graphtrain(path, out, parts, method, memory_limit, threads):
    env = dict(os.environ, PYTHONPATH=str(REPO))
    # measure peak RSS precisely: run through a tiny wrapper that waits and reports its child's rusage
    wrapper = [sys.executable, "-c", (
        "import os,subprocess,sys,json,time;t=time.perf_counter();p=subprocess.Popen(sys.argv[1:],stdout=subprocess.PIPE,text=True);"
        "o=p.stdout.read();_,s,u=os.wait4(p.pid,0);"
        "print(json.dumps({'rc':s,'rss':u.ru_maxrss*1024,'wall':time.perf_counter()-t,'out':o}))")] + graphtrain_cmd(path, out, parts, method, memory_limit, threads)
    res = subprocess.run(wrapper, capture_output=True, text=True, env=env)
    if res.returncode:
        raise RuntimeError(res.stderr[-3000:])
    info = json.loads(res.stdout)
    if info["rc"] != 0:
        raise RuntimeError(f"graphtrain partition failed: {res.stderr[-3000:]}")
    summary = json.loads(info["out"].strip().splitlines()[-1])
    return info["wall"], info["rss"], summary


def dgl_input(workdir: Path, path: Path) -> Path:
    """Relabelled (contiguous IDs) copy of the edge list for DGL, as .npz (untimed preparation)."""
    npz = path.with_suffix(".dgl.npz")
    if npz.exists():
        return npz
    t = pq.read_table(path)
    src = t.column("src").to_numpy()
    dst = t.column("dst").to_numpy()
    ids = np.sort(np.concatenate([src, dst]))
    uniq = ids[np.concatenate([[True], ids[1:] != ids[:-1]])]
    np.savez(npz, src=np.searchsorted(uniq, src), dst=np.searchsorted(uniq, dst), num_nodes=uniq.size)
    return npz


def measure_dgl(dgl_python: str, npz: Path, parts: int, workdir: Path):
    with tempfile.TemporaryDirectory(dir=workdir) as out:
        script = Path(out) / "dgl_partition.py"
        script.write_text(DGL_SCRIPT)
        wrapper = [sys.executable, "-c", (
            "import os,subprocess,sys,json;p=subprocess.Popen(sys.argv[1:],stdout=subprocess.PIPE,stderr=subprocess.DEVNULL,text=True);"
            "o=p.stdout.read();_,s,u=os.wait4(p.pid,0);print(json.dumps({'rc':s,'rss':u.ru_maxrss*1024,'out':o}))"),
            dgl_python, str(script), str(npz), str(Path(out) / "parts"), str(parts)]
        res = subprocess.run(wrapper, capture_output=True, text=True, env=dict(os.environ, DGLBACKEND="pytorch"))
        info = json.loads(res.stdout)
        if info["rc"] != 0:
            raise RuntimeError("DGL partition failed")
        result = json.loads(info["out"].strip().splitlines()[-1])
        return result["seconds"], info["rss"]


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sizes", nargs="+", default=["10M", "100M"], help="edge counts (10M, 100M, 1B, ...)")
    ap.add_argument("--parts", type=int, default=4)
    ap.add_argument("--methods", nargs="+", default=["hash"], help="graphtrain methods to run (hash, ldg, fennel, metis)")
    ap.add_argument("--threads", nargs="+", type=int, default=[2], help="graphtrain Numba thread counts to run")
    ap.add_argument("--memory-limit", default="2G", help="graphtrain --memory-limit")
    ap.add_argument("--dgl-python", default=os.environ.get("GRAPHTRAIN_DGL_PYTHON"), help="python of the DGL venv (omit to skip DGL)")
    ap.add_argument("--dgl-max-edges", type=parse_count, default=parse_count("50M"),
                    help="skip DGL above this size (its memory: ~300 bytes per edge)")
    ap.add_argument("--workdir", default=os.environ.get("GRAPHTRAIN_BENCH_DIR", "/tmp/graphtrain-bench"))
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--keep-output", action="store_true", help="keep the partitioned datasets")
    args = ap.parse_args(argv)
    workdir = Path(args.workdir)
    workdir.mkdir(parents=True, exist_ok=True)

    # warm Numba's cache so that compilation is not timed
    tiny = edge_list(workdir, 20_000, args.seed)
    measure_graphtrain(tiny, workdir / "warmup", 2, "hash", args.memory_limit, 2)
    for m in set(args.methods) - {"hash"}:
        measure_graphtrain(tiny, workdir / "warmup", 2, m, args.memory_limit, 2)

    rows = []
    for size in map(parse_count, args.sizes):
        path = edge_list(workdir, size, args.seed)
        dgl = None
        if args.dgl_python and size <= args.dgl_max_edges:
            dgl = measure_dgl(args.dgl_python, dgl_input(workdir, path), args.parts, workdir)
            rows.append(dict(size=size, tool="DGL 2.1 random", threads="default", seconds=dgl[0], rss=dgl[1], cut=None, nodes=None))
        for method in args.methods:
            for threads in args.threads:
                out = workdir / f"out-{size}-{method}-{threads}"
                seconds, rss, summary = measure_graphtrain(path, out, args.parts, method, args.memory_limit, threads)
                rows.append(dict(size=size, tool=f"graphtrain {method}", threads=threads, seconds=seconds, rss=rss,
                                 cut=summary["edge_cut_fraction"], nodes=summary["num_nodes"], dgl=dgl, summary=summary))
                if not args.keep_output:
                    subprocess.run(["rm", "-rf", str(out)])
    print()
    print(f"| edges | tool | threads | wall s | peak RSS | RSS bytes/edge | edge cut | time vs DGL | memory vs DGL |")
    print("|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        per_edge = r["rss"] / r["size"]
        vs_t = vs_m = ""
        if r.get("dgl"):
            vs_t = f"{r['dgl'][0] / r['seconds']:.1f}x faster"
            vs_m = f"{r['dgl'][1] / r['rss']:.1f}x less"
        cut = "" if r["cut"] is None else f"{100 * r['cut']:.1f}%"
        print(f"| {r['size']:,} | {r['tool']} | {r['threads']} | {r['seconds']:.1f} | {r['rss'] / 2**30:.2f} GiB | "
              f"{per_edge:.1f} | {cut} | {vs_t} | {vs_m} |")
    for r in rows:
        if "summary" in r:
            s = r["summary"]
            print(f"# {r['size']:,} {r['tool']} threads={r['threads']}: nodes {s['num_nodes']:,}, stages "
                  f"{s['stage_seconds']}, spilled {s['spill_bytes'] / 2**30:.1f} GiB")


if __name__ == "__main__":
    main()
