#!/usr/bin/env python
"""Fit ``graphtrain.plan.FRAUD_FIT`` to runs of ``bench_pipeline_scale.py`` (its JSON lines).

Per stage after partitioning, ``seconds = fixed + at_ref * (transactions / REF) ** exponent``
(least squares on the logarithm, so that every size weighs alike; ``fixed`` >= 0, the exponent in
[0.3, 2]); memory, a line ``fixed + per_account * accounts`` through the runs' peak tree RSS.
Prints the fitted values as the Python literal that ``FRAUD_FIT`` holds, and each run's relative
error under the fit. A run to check the fit on, which it must not see, goes to ``graphtrain plan``
afterwards, e.g. ``graphtrain plan --transactions T --accounts A --job detect-rings --json``.

Example::

    python benchmarks/fit_pipeline_plan.py /work/scale/bench-100K.jsonl /work/scale/bench-1M.jsonl \\
        /work/scale/bench-12.5M.jsonl
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
STAGES = ("features", "train", "score", "baseline", "rings")


def _runs(paths):
    for path in paths:
        for line in Path(path).read_text().splitlines():
            if line.startswith("{"):
                run = json.loads(line)
                if "stages" in run:  # not the generator's line, which a size generated afresh also prints
                    yield run


def fit_stage(transactions: np.ndarray, seconds: np.ndarray, ref: float):
    """``(fixed, at_ref, exponent)`` of ``fixed + at_ref * (transactions / ref) ** exponent``."""
    from scipy.optimize import least_squares

    t = transactions / ref
    guess = [float(seconds.min()) / 2, float(np.interp(1.0, t, seconds)), 1.0]
    res = least_squares(lambda p: np.log(p[0] + p[1] * t ** p[2]) - np.log(seconds), guess,
                        bounds=([0.0, 1e-6, 0.3], [np.inf, np.inf, 2.0]))
    return tuple(float(v) for v in res.x)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("runs", nargs="+", type=Path, help="JSON-lines output of bench_pipeline_scale.py")
    args = ap.parse_args()
    from graphtrain.plan import FRAUD_FIT

    runs = sorted(_runs(args.runs), key=lambda r: r["transactions"])
    if len({r["transactions"] for r in runs}) < 3:
        raise SystemExit("need runs at three sizes or more (three parameters per stage)")
    ref = FRAUD_FIT["ref_transactions"]
    tx = np.array([r["transactions"] for r in runs], dtype=float)
    fitted = {}
    for stage in STAGES:
        y = np.array([r["stages"][stage]["seconds"] for r in runs], dtype=float)
        fixed, at_ref, k = fit_stage(tx, y, ref)
        fitted[stage] = (round(fixed, 1), round(at_ref, 1), round(k, 3))
        pred = fixed + at_ref * (tx / ref) ** k
        print(f"# {stage}: " + ", ".join(f"{int(t):,} tx {p / v - 1:+.1%}" for t, p, v in zip(tx, pred, y)))
    acc = np.array([r["accounts"] for r in runs], dtype=float)
    rss = np.array([r["peak_tree_rss_bytes"] for r in runs], dtype=float)
    per, fixed = np.polyfit(acc, rss, 1)
    for a, v in zip(acc, rss):
        print(f"# memory at {int(a):,} accounts: {(fixed + per * a) / v - 1:+.1%}")
    print(json.dumps({"seconds": fitted, "memory_fixed_bytes": float(f"{fixed:.3g}"),
                      "memory_per_account_bytes": round(per, 1)}))


if __name__ == "__main__":
    main()
