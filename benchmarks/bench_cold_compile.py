"""Cold compile of the hop kernels with graphtrain's Numba copy patches (graphtrain/_numba_inline.py)
and without them, in fresh processes, alternating; medians over rounds.

Each arm compiles one signature each of ``kernels/cpu.py``'s ``_sample_batch`` (whole-batch kernel)
and ``_sample_slots`` (one hop, parallel) from an empty cache directory, as a fresh checkout or the
first run after an upgrade does, and runs them on a 1,000-node graph. The arms must give the same
sampled arrays (a hash of them is compared) and, with ``PYTHONHASHSEED=0``, the same LLVM IR but for
the address in the parallel gufunc's name (``--check-ir``).

    python benchmarks/bench_cold_compile.py --rounds 3
"""
import argparse
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile

ARM = r'''
import copy, hashlib, inspect, json, os, sys, time
import numpy as np
import graphtrain
import numba.core.inline_closurecall as inliner
import numba.core.ir_utils as ir_utils
from graphtrain import _numba_inline
assert _numba_inline.patched(inliner) and _numba_inline.patched(ir_utils)
if sys.argv[1] == "numba":  # Numba's own copies
    inliner.InlineWorker.inline_ir = inspect.unwrap(inliner.InlineWorker.inline_ir)
    inliner.copy = ir_utils.copy = copy
from graphtrain.kernels import cpu
from graphtrain.kernels.hop_graph import HopGraph
rng = np.random.default_rng(0)
n, e = 1000, 10000
indptr = np.searchsorted(np.sort(rng.integers(0, n, e)), np.arange(n + 1)).astype(np.int64)
g = HopGraph(indptr, rng.integers(0, n, e).astype(np.int64), 0)
t0 = time.perf_counter()
batch = cpu.sample_batch(g, 0, n, np.arange(10), None, np.array([5, 3]), np.uint64(1))
t1 = time.perf_counter()
hop = cpu.sample_hop(g, np.arange(10), np.arange(10, dtype=np.uint64), 5)
t2 = time.perf_counter()
h = hashlib.sha256()
for a in (batch.n_id, batch.edge_src, batch.edge_dst, batch.e_id, *hop):
    h.update(np.ascontiguousarray(a).tobytes())
if len(sys.argv) > 2:
    with open(sys.argv[2], "w") as fh:
        fh.write("".join(cpu._sample_batch.inspect_llvm().values()) + "".join(cpu._sample_slots.inspect_llvm().values()))
print(json.dumps({"arm": sys.argv[1], "batch_s": round(t1 - t0, 2), "slots_s": round(t2 - t1, 2),
                  "result_hash": h.hexdigest()[:16]}))
'''


def run_arm(arm: str, ir_file: str = None) -> dict:
    with tempfile.TemporaryDirectory() as cache:
        env = dict(os.environ, XDG_CACHE_HOME=cache, PYTHONHASHSEED="0")
        env.pop("NUMBA_CACHE_DIR", None)
        out = subprocess.run([sys.executable, "-c", ARM, arm] + ([ir_file] if ir_file else []),
                             env=env, check=True, capture_output=True, text=True).stdout
    return json.loads(out.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--check-ir", action="store_true", help="also compare the two arms' LLVM IR")
    args = ap.parse_args()
    runs = []
    for r in range(args.rounds):
        for arm in (("patched", "numba") if r % 2 == 0 else ("numba", "patched")):
            runs.append(dict(run_arm(arm), round=r))
            print(json.dumps(runs[-1]), flush=True)
    summary = {}
    for arm in ("patched", "numba"):
        rows = [x for x in runs if x["arm"] == arm]
        summary[arm] = {k: statistics.median(x[k] for x in rows) for k in ("batch_s", "slots_s")}
        summary[arm]["both_s"] = statistics.median(x["batch_s"] + x["slots_s"] for x in rows)
    summary["same_results"] = len({x["result_hash"] for x in runs}) == 1
    summary["numba_over_patched"] = round(summary["numba"]["both_s"] / summary["patched"]["both_s"], 2)
    if args.check_ir:
        with tempfile.TemporaryDirectory() as d:
            text = {}
            for arm in ("patched", "numba"):
                run_arm(arm, os.path.join(d, arm + ".ll"))
                with open(os.path.join(d, arm + ".ll")) as fh:  # the gufunc's name holds an address
                    text[arm] = re.sub(r"_numba_parfor_gufunc_0x[0-9a-f]+", "_numba_parfor_gufunc", fh.read())
            summary["same_llvm_ir"] = text["patched"] == text["numba"]
    print(json.dumps({"summary": summary, "rounds": args.rounds}))


if __name__ == "__main__":
    main()
