#!/usr/bin/env python
"""Benchmark the synthetic transaction generator (``graphtrain generate``) against a plain reference.

Claim: the generator streams any size with bounded memory, at a cost close to just writing an
R-MAT edge list. For each size (transactions), in the same run, each variant in a fresh subprocess:

- ``reference``: the floor -- the R-MAT stream (:mod:`graphtrain.rmat`, the background's
  parameters), int64 IDs scrambled, lognormal amounts and uniform times drawn with the same RNG,
  written to one Parquet file chunk by chunk; no accounts, no planted rings.
- ``generate int64``: :func:`graphtrain.fraud.synth.generate.generate` with int64 account IDs.
- ``generate string``: the same with string IDs (``AC`` + 19 digits; the default).

Both generator variants also write the account table (``edges / 8`` accounts), the planted rings
(one per 400 accounts) and the ground truth. Each subprocess first runs a tiny warm-up so Numba's
JIT is not timed, then reports the timed seconds and its peak RSS (``ru_maxrss``) and the RSS just
before the timed part, so the table shows what the work itself added.

Examples::

    python benchmarks/bench_generate.py                      # 1M and 10M transactions
    python benchmarks/bench_generate.py --sizes 100M --variants reference "generate string"
    python benchmarks/bench_generate.py --sizes 1B --workdir /data/bench   # ~40 GB of Parquet
"""
from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]

WORKER = r"""
import json, resource, sys, time
from pathlib import Path
sys.path.insert(0, sys.argv[1])
variant, num_edges, out, chunk = sys.argv[2], int(sys.argv[3]), Path(sys.argv[4]), int(sys.argv[5])

def rss():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024

if variant == "reference":
    import numpy as np, pyarrow as pa, pyarrow.parquet as pq
    from graphtrain.fraud.synth.draws import lognormal_at, stream_key, uniform_at
    from graphtrain.fraud.synth.generator_config import GeneratorConfig
    from graphtrain.rmat import rmat_chunks, scramble_ids
    cfg = GeneratorConfig(num_accounts=max(num_edges // 8, 100))
    def run(n, path):
        schema = pa.schema([("src", pa.int64()), ("dst", pa.int64()), ("amount", pa.float64()), ("time", pa.int64())])
        start = 0
        with pq.ParquetWriter(path, schema) as w:
            for src, dst in rmat_chunks(cfg.scale, n, chunk_edges=chunk, seed=1, abc=cfg.rmat_abc):
                idx = np.arange(start, start + src.size)
                start += src.size
                amount = np.round(lognormal_at(stream_key(0, "a"), idx, 4.0, 1.1), 2)
                t = cfg.start_time + (uniform_at(stream_key(0, "t"), idx) * cfg.period).astype(np.int64)
                w.write_table(pa.table({"src": scramble_ids(src, 1), "dst": scramble_ids(dst, 1), "amount": amount, "time": t}, schema=schema))
    run(1000, out.with_name("warm.parquet"))
    before = rss()
    t0 = time.perf_counter()
    run(num_edges, out.with_suffix(".parquet"))
else:
    from graphtrain.fraud.synth.generate import generate
    from graphtrain.fraud.synth.generator_config import GeneratorConfig
    id_type = variant.split()[-1]
    def cfg(n):
        return GeneratorConfig(num_accounts=max(n // 8, 100), id_type=id_type, chunk_rows=chunk)
    generate(cfg(8000), out.with_name("warm"), force=True)
    before = rss()
    t0 = time.perf_counter()
    generate(cfg(num_edges), out, force=True)
seconds = time.perf_counter() - t0
size = sum(p.stat().st_size for p in (out.iterdir() if out.is_dir() else [out.with_suffix(".parquet")]))
print(json.dumps({"seconds": seconds, "peak_rss": rss(), "rss_before": before, "bytes": size}))
"""

VARIANTS = ("reference", "generate int64", "generate string")


def parse_count(text: str) -> int:
    mult = {"K": 10**3, "M": 10**6, "B": 10**9, "G": 10**9}
    text = text.strip().upper()
    return int(float(text[:-1]) * mult[text[-1]]) if text[-1] in mult else int(text)


def measure(variant: str, num_edges: int, workdir: Path, chunk: int) -> dict:
    out = workdir / f"{variant.replace(' ', '-')}-{num_edges}"
    res = subprocess.run([sys.executable, "-c", WORKER, str(REPO), variant, str(num_edges), str(out), str(chunk)],
                         capture_output=True, text=True)
    if res.returncode:
        raise RuntimeError(f"{variant} failed:\n{res.stderr[-3000:]}")
    info = json.loads(res.stdout.strip().splitlines()[-1])
    for p in workdir.iterdir():  # keep the disk free for the next size
        shutil.rmtree(p) if p.is_dir() else p.unlink()
    return info


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", nargs="+", default=["1M", "10M"], help="transactions per run (e.g. 1M 10M 100M 1B)")
    parser.add_argument("--variants", nargs="+", default=list(VARIANTS), choices=VARIANTS)
    parser.add_argument("--chunk-rows", type=int, default=1 << 20, help="rows per chunk (both sides)")
    parser.add_argument("--workdir", default=None, help="where to write (default: a temporary directory)")
    args = parser.parse_args()
    workdir = Path(args.workdir) if args.workdir else Path(tempfile.mkdtemp(prefix="bench-generate-"))
    workdir.mkdir(parents=True, exist_ok=True)
    print(f"{'transactions':>13s} {'variant':16s} {'seconds':>8s} {'rows/s':>11s} {'x reference':>11s} "
          f"{'peak RSS MB':>11s} {'RSS added MB':>12s} {'output MB':>10s}")
    rows = []
    for size in args.sizes:
        n = parse_count(size)
        ref = None
        for variant in args.variants:
            info = measure(variant, n, workdir, args.chunk_rows)
            if variant == "reference":
                ref = info["seconds"]
            ratio = info["seconds"] / ref if ref else float("nan")
            row = dict(transactions=n, variant=variant, rows_per_s=n / info["seconds"], x_reference=ratio, **info)
            rows.append(row)
            print(f"{n:13,d} {variant:16s} {info['seconds']:8.1f} {row['rows_per_s']:11,.0f} {ratio:11.2f} "
                  f"{info['peak_rss'] / 2**20:11.0f} {(info['peak_rss'] - info['rss_before']) / 2**20:12.0f} "
                  f"{info['bytes'] / 2**20:10.0f}", flush=True)
    if not args.workdir:
        shutil.rmtree(workdir, ignore_errors=True)
    print(json.dumps(rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
