#!/usr/bin/env python
"""``graphtrain plan``'s predictions against measured ``graphtrain partition`` runs (issue 20 item 8).

For each input it runs ``graphtrain plan ... --json`` (the prediction; skipped with ``--no-plan``)
and then ``graphtrain partition`` on the same arguments in a subprocess, measuring:

- wall time of the whole command and its peak RSS (``wait4``'s ``ru_maxrss``), and from its JSON
  summary the peak anonymous memory, the stage times, the bytes spilled, the spill's own peak on
  disk (``spill_peak_bytes``) and the dataset's size (``dataset_bytes``);
- the **scratch peak**: the staging directory beside ``--out`` (``.OUT.tmp-*``: spill plus the
  dataset being written) is walked every ``--poll`` seconds and its allocated blocks summed; the
  largest sum is the disk the run needed beyond its input. (The drop of free disk is printed too,
  but other jobs on a shared machine move it.)

Inputs: ``--rmat 1M 10M`` (R-MAT edge lists of ``bench_partition.py``, int64 IDs, cached under
``--workdir``) and ``--generated ACCOUNTS ...`` (``graphtrain generate`` transactions with string IDs,
the ``amount`` and ``time`` columns and the account table as node data, cached; ``--both-directions``
adds each transaction reversed, as ``detect-rings`` stores them).

Examples::

    python benchmarks/bench_plan.py --rmat 1M 10M --num-parts 4           # calibration runs
    python benchmarks/bench_plan.py --rmat 50M --generated 3750000 --both-directions
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "benchmarks"))

from bench_partition import edge_list, parse_count  # noqa: E402

FEATURES = "age_days,balance,kyc_level,num_devices,country_risk,is_business,logins_30d"


def cli(*args) -> list:
    return [sys.executable, "-m", "graphtrain.cli", *map(str, args)]


def env() -> dict:
    return dict(os.environ, PYTHONPATH=str(REPO))


def generated(workdir: Path, accounts: int, both: bool) -> tuple:
    """(edge inputs, node-table arguments) of ``graphtrain generate --accounts N``, written once."""
    out = workdir / f"tx-{accounts}"
    if not (out / "transactions.parquet").exists():
        subprocess.run(cli("generate", "--out", out, "--accounts", accounts, "--force"), check=True, env=env(),
                       stdout=subprocess.DEVNULL)
    inputs = [out / "transactions.parquet"]
    if both:
        rev = out / "transactions-reversed.parquet"
        if not rev.exists():
            import pyarrow.parquet as pq

            t = pq.read_table(inputs[0])
            t = t.rename_columns(["dst", "src", *t.column_names[2:]])
            pq.write_table(t.select(["src", "dst", *t.column_names[2:]]), rev)
        inputs.append(rev)
    node_args = ["--nodes", out / "accounts.parquet", "--node-id", "account_id", "--label", "label",
                 "--features", FEATURES, "--time", "time", "--edge-columns", "amount"]
    return inputs, node_args


def sparse_list(workdir: Path, num_edges: int, seed: int) -> Path:
    """Parquet edge list of ``num_edges`` uniform random pairs over ``2 * num_edges`` scrambled IDs (about
    1.26 nodes per edge: the per-node costs dominate), written once and cached."""
    import numpy as np
    import pyarrow as pa
    import pyarrow.parquet as pq

    from graphtrain.rmat import scramble_ids

    path = workdir / f"sparse-e{num_edges}-seed{seed}.parquet"
    if path.exists():
        return path
    rs = np.random.default_rng(seed)
    tmp = path.with_suffix(".tmp")
    schema = pa.schema([("src", pa.int64()), ("dst", pa.int64())])
    with pq.ParquetWriter(tmp, schema) as writer:
        for lo in range(0, num_edges, 1 << 22):
            n = min(1 << 22, num_edges - lo)
            ids = scramble_ids(rs.integers(0, 2 * num_edges, 2 * n), seed)
            writer.write_table(pa.table({"src": ids[:n], "dst": ids[n:]}, schema=schema))
    os.replace(tmp, path)
    return path


def _staging_bytes(parent: Path, name: str) -> int:
    total = 0
    for d in parent.glob(f".{name}.tmp-*"):
        for root, _, files in os.walk(d):
            for f in files:
                try:
                    total += os.lstat(os.path.join(root, f)).st_blocks * 512
                except FileNotFoundError:
                    pass
    return total


def measure(inputs, extra, out: Path, poll: float) -> dict:
    """Run ``graphtrain partition`` while polling its staging directory; the measured figures."""
    cmd = cli("partition", *inputs, "--out", out, *extra, "--force", "--json", "--no-progress")
    wrapper = [sys.executable, "-c", (
        "import os,subprocess,sys,json,time;t=time.perf_counter();p=subprocess.Popen(sys.argv[1:],stdout=subprocess.PIPE,text=True);"
        "o=p.stdout.read();_,s,u=os.wait4(p.pid,0);"
        "print(json.dumps({'rc':s,'rss':u.ru_maxrss*1024,'wall':time.perf_counter()-t,'cpu':u.ru_utime+u.ru_stime,'out':o}))")] + cmd
    free0 = shutil.disk_usage(out.parent).free
    peak = {"staging": 0, "free_min": free0}
    stop = threading.Event()

    def watch():
        while not stop.wait(poll):
            peak["staging"] = max(peak["staging"], _staging_bytes(out.parent, out.name))
            peak["free_min"] = min(peak["free_min"], shutil.disk_usage(out.parent).free)

    thread = threading.Thread(target=watch, daemon=True)
    thread.start()
    res = subprocess.run(wrapper, capture_output=True, text=True, env=env())
    stop.set()
    thread.join()
    if res.returncode:
        raise RuntimeError(res.stderr[-3000:])
    info = json.loads(res.stdout)
    if info["rc"] != 0:
        raise RuntimeError(f"graphtrain partition failed: {res.stderr[-3000:]}")
    s = json.loads(info["out"].strip().splitlines()[-1])
    return {"command": " ".join(map(str, cmd[2:])), "wall_s": round(info["wall"], 2), "cpu_s": round(info["cpu"], 2),
            "peak_rss": info["rss"],
            "peak_anon": s["peak_anon_bytes"], "stages": s["stage_seconds"], "spill_bytes": s["spill_bytes"],
            "spill_peak": s.get("spill_peak_bytes"), "staging_peak": peak["staging"], "free_drop": free0 - peak["free_min"],
            "dataset_bytes": s.get("dataset_bytes"), "bytes_per_edge": s.get("dataset_bytes_per_edge"),
            "nodes": s["num_nodes"], "edges": s["num_edges"], "input_rows": s["input_rows"]}


def wait_quiet(threshold: float, max_wait: float) -> float:
    """Wait (up to ``max_wait`` s) until the 1-minute load average is below ``threshold``; return it."""
    deadline = time.monotonic() + max_wait
    while os.getloadavg()[0] >= threshold and time.monotonic() < deadline:
        time.sleep(5)
    return os.getloadavg()[0]


def predict(inputs, extra, out: Path) -> dict:
    res = subprocess.run(cli("plan", *inputs, "--out", out, *extra, "--json"), capture_output=True, text=True, env=env())
    if res.returncode:
        raise RuntimeError(f"graphtrain plan failed: {res.stderr[-3000:]}")
    return json.loads(res.stdout)


def check_1b(memory_limit: str) -> None:
    """plan's figures for the recorded 1B-edge run (benchmarks/RESULTS.md, "Partitioning"): R-MAT scale 26,
    seed 0, 4 hash parts, without its 16 GB input: distinct IDs per row from the stream's first ingest
    chunk (what plan reads from the file), nodes as plan estimates them and as the run counted them."""
    import numpy as np

    import graphtrain.plan as P
    from graphtrain.partition.partitioner import Tuning
    from graphtrain.rmat import rmat_edges

    limit = P.parse_size(memory_limit)
    tuning = Tuning.plan(limit, 10**9, 16)
    u, v = rmat_edges(26, 0, tuning.chunk_rows, seed=0)
    distinct = np.unique(np.concatenate([u, v])).size
    for label, nodes in (("nodes estimated", None), ("nodes given", 32_206_834)):
        est = max(10**9 / P.DEFAULT_EDGES_PER_NODE, P.distinct_nodes_uniform(distinct, tuning.chunk_rows, 10**9))
        w = P.Workload(edges=10**9, nodes=int(nodes or est), keys_per_row=distinct / tuning.chunk_rows,
                       chunk_rows=tuning.chunk_rows, num_buckets=tuning.num_buckets, num_parts=4, memory_limit=limit)
        p = P.plan(w).to_dict()["partition"]
        print(json.dumps({"check": f"1B R-MAT, {label}", "nodes": w.nodes, "keys_per_row": round(w.keys_per_row, 4),
                          "predicted": p, "recorded": {"seconds": 677.5, "peak_rss_bytes": int(2.01 * 2**30),
                                                       "scratch_peak": "43 GB", "spill_bytes": "68 GiB"}}))


def gib(x) -> str:
    return "" if x is None else f"{x / 2**30:.2f}"


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rmat", nargs="*", default=[], metavar="EDGES", help="R-MAT sizes (1M, 10M, ...)")
    ap.add_argument("--sparse", nargs="*", default=[], metavar="EDGES",
                    help="uniform random edge lists over 2 x EDGES IDs (~1.26 nodes per edge)")
    ap.add_argument("--repeat", type=int, default=1, help="runs of each input (each printed)")
    ap.add_argument("--generated", nargs="*", default=[], type=int, metavar="ACCOUNTS",
                    help="graphtrain generate --accounts N (8 transactions per account)")
    ap.add_argument("--both-directions", action="store_true", help="generated: also each transaction reversed")
    ap.add_argument("--num-parts", type=int, default=4)
    ap.add_argument("--method", default="hash")
    ap.add_argument("--memory-limit", default="2G")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--workdir", default=os.environ.get("GRAPHTRAIN_BENCH_DIR", "/tmp/graphtrain-bench"))
    ap.add_argument("--poll", type=float, default=0.25, help="seconds between walks of the staging directory")
    ap.add_argument("--no-plan", action="store_true", help="measure only (no graphtrain plan)")
    ap.add_argument("--quiet-load", type=float, default=None, metavar="L",
                    help="before each run wait (up to --max-wait s) until the 1-minute load average is below L")
    ap.add_argument("--max-wait", type=float, default=900)
    ap.add_argument("--keep-output", action="store_true")
    ap.add_argument("--check-1b", action="store_true", help="print plan's figures for the recorded 1B-edge run and stop")
    args = ap.parse_args(argv)
    if args.check_1b:
        check_1b(args.memory_limit)
        return
    workdir = Path(args.workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    common = ["--num-parts", args.num_parts, "--method", args.method, "--memory-limit", args.memory_limit,
              "--threads", args.threads]

    jobs = [(f"rmat {s}", [edge_list(workdir, parse_count(s), 0)], []) for s in args.rmat]
    jobs += [(f"sparse {s}", [sparse_list(workdir, parse_count(s), 0)], []) for s in args.sparse]
    for a in args.generated:
        inputs, node_args = generated(workdir, a, args.both_directions)
        jobs.append((f"generated {a:,} accounts{' x2' if args.both_directions else ''}", inputs, node_args))
    # warm Numba's on-disk cache (compilation is not timed)
    warm = edge_list(workdir, 20_000, 0)
    measure([warm], common, workdir / "plan-warmup", args.poll)
    shutil.rmtree(workdir / "plan-warmup", ignore_errors=True)

    rows = []
    for label, inputs, node_args in jobs:
        for _ in range(args.repeat):
            out = workdir / f"plan-out-{len(rows)}"
            extra = common + node_args
            pred = None if args.no_plan else predict(inputs, extra, out)
            load = wait_quiet(args.quiet_load, args.max_wait) if args.quiet_load else os.getloadavg()[0]
            got = measure(inputs, extra, out, args.poll)
            got["load_before"] = round(load, 2)
            rows.append((label, got, pred))
            print(json.dumps({"job": label, "measured": got, "predicted": pred and pred["partition"],
                              "load": os.getloadavg()[0]}), flush=True)
            if not args.keep_output:
                shutil.rmtree(out, ignore_errors=True)

    print()
    print("| input | edges | nodes | wall s (pred) | peak RSS GiB (pred) | spill peak GiB | scratch peak GiB (pred) "
          "| dataset GiB (pred) | bytes/edge |")
    print("|---|---:|---:|---|---|---:|---|---|---:|")
    for label, m, p in rows:
        pp = (p or {}).get("partition", {})

        def vs(measured, key, fmt):
            if key not in pp:
                return fmt(measured)
            return f"{fmt(measured)} ({fmt(pp[key])}, {pp[key] / measured - 1:+.0%})" if measured else fmt(measured)

        print(f"| {label} | {m['edges']:,} | {m['nodes']:,} | {vs(m['wall_s'], 'seconds', lambda x: f'{x:.1f}')} "
              f"| {vs(m['peak_rss'], 'peak_rss_bytes', gib)} | {gib(m['spill_peak'])} "
              f"| {vs(m['staging_peak'], 'scratch_peak_bytes', gib)} | {vs(m['dataset_bytes'] or 0, 'dataset_bytes', gib)} "
              f"| {m['bytes_per_edge'] or ''} |")
    for label, m, _ in rows:
        print(f"# {label}: stages {m['stages']}, spilled {gib(m['spill_bytes'])} GiB, free disk dropped by "
              f"{gib(m['free_drop'])} GiB; {m['command']}")


if __name__ == "__main__":
    main()
