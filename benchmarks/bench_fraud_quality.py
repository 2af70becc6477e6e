"""Issue 21's quality bar: every shared fraud dataset through the example pipelines, several seeds,
mean +- std of GNN, tree, blend, stack and shipped test metrics, and ring precision / recall.

Each (dataset, seed) is one run of the dataset's ``examples/fraud/*.sh`` script with ``--seed S
--force`` and the extra arguments after ``--``; the numbers come from the run's ``summary.json``.
Finished runs are reused (``--reuse``), so an interrupted sweep continues.

    python benchmarks/bench_fraud_quality.py --workdir /tmp/quality --seeds 0 1 2 [--datasets amlsim-cycle200 ...] \
        [--markdown table.md] -- --stack-folds 3

Datasets (names for ``--datasets``): the three AMLSim samples, Amazon U-P-U, Tolokers (split 0), and
generated 20,000 and 100,000 accounts (ring ground truth: precision / recall).
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Dict, List

import numpy as np

REPO = Path(__file__).resolve().parents[1]
EXAMPLES = REPO / "examples" / "fraud"

# name -> (script, positional arguments before OUT, positional arguments after OUT, where summary.json lands)
DATASETS = {
    "amlsim-cycle200": ("amlsim.sh", ["20K_cycle200"], [], ""),
    "amlsim-fanin200": ("amlsim.sh", ["20K_fanin200"], [], ""),
    "amlsim-fanin200cycle200": ("amlsim.sh", ["20K_fanin200cycle200"], [], ""),
    "amazon-upu": ("amazon_upu.sh", [], [], "run"),
    "tolokers": ("tolokers.sh", [], [], "run"),
    "generated-20k": ("generated.sh", [], ["20000"], "run"),
    "generated-100k": ("generated.sh", [], ["100000"], "run"),
}
SCORES = {"gnn": "", "tree": "baseline_", "blend": "blend_", "stack": "stack_", "shipped": "shipped_"}
RING_KEYS = ("ring_precision", "ring_recall")


def run_one(name: str, seed: int, workdir: Path, extra: List[str], reuse: bool) -> Dict[str, object]:
    script, before, after, sub = DATASETS[name]
    out = workdir / f"{name}-seed{seed}"
    summary = out / sub / "summary.json"
    if reuse and summary.exists():
        return json.loads(summary.read_text())
    env = dict(os.environ, GRAPHTRAIN=os.environ.get("GRAPHTRAIN", f"{sys.executable} -m graphtrain.cli"))
    cmd = ["bash", str(EXAMPLES / script), *before, str(out), *after, "--seed", str(seed), "--force", *extra]
    t0 = time.perf_counter()
    done = subprocess.run(cmd, env=env, capture_output=True, text=True)
    if done.returncode != 0:
        raise SystemExit(f"{name} seed {seed} failed ({' '.join(cmd)}):\n{done.stderr[-3000:]}")
    result = json.loads(summary.read_text())
    result["_wall_seconds"] = round(time.perf_counter() - t0, 1)
    summary.write_text(json.dumps(result, indent=2) + "\n")
    return result


def _cell(values: List[float]) -> str:
    v = [x for x in values if x is not None]
    if not v:
        return "-"
    return f"{np.mean(v):.3f} ± {np.std(v):.3f}" if len(v) > 1 else f"{v[0]:.3f}"


def table(results: Dict[str, List[Dict[str, object]]]) -> str:
    lines = ["| data | seeds | " + " | ".join(f"{s} AUC / AP" for s in SCORES) + " | shipped (runs) | ring P / R |",
             "|---|---|" + "---|" * len(SCORES) + "---|---|"]
    for name, runs in results.items():
        cells = []
        for s, prefix in SCORES.items():
            auc = [r.get(f"{prefix}auc") for r in runs]
            ap = [r.get(f"{prefix}ap") for r in runs]
            cells.append(f"{_cell(auc)} / {_cell(ap)}")
        shipped = ", ".join(str(r.get("shipped_score", "-")) for r in runs)
        rings = " / ".join(_cell([r.get(k) for r in runs]) for k in RING_KEYS)
        lines.append(f"| {name} | {len(runs)} | " + " | ".join(cells) + f" | {shipped} | {rings} |")
    return "\n".join(lines)


def margins(results: Dict[str, List[Dict[str, object]]]) -> str:
    """Per dataset, the mean difference to the tree of the GNN and of the shipped score (AUC, AP)."""
    out = []
    for name, runs in results.items():
        row = [name]
        for s in ("gnn", "shipped"):
            for m in ("auc", "ap"):
                d = [r[f"{SCORES[s]}{m}"] - r[f"baseline_{m}"] for r in runs if r.get(f"{SCORES[s]}{m}") is not None]
                row.append(f"{s} {m.upper()} {np.mean(d):+.3f}" if d else f"{s} {m.upper()} -")
        out.append("- " + ", ".join(row))
    return "\n".join(out)


def main(argv=None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    extra: List[str] = []
    if "--" in argv:
        i = argv.index("--")
        argv, extra = argv[:i], argv[i + 1:]
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--workdir", type=Path, required=True)
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    p.add_argument("--datasets", nargs="+", choices=sorted(DATASETS), default=list(DATASETS))
    p.add_argument("--reuse", action="store_true", help="reuse finished runs in --workdir")
    p.add_argument("--markdown", type=Path, help="also write the table here")
    args = p.parse_args(argv)
    args.workdir.mkdir(parents=True, exist_ok=True)
    results: Dict[str, List[Dict[str, object]]] = {}
    for name in args.datasets:
        for seed in args.seeds:
            r = run_one(name, seed, args.workdir, extra, args.reuse)
            results.setdefault(name, []).append(r)
            print(f"{name} seed {seed}: gnn {r['auc']:.3f}/{r['ap']:.3f} tree {r['baseline_auc']:.3f}/"
                  f"{r['baseline_ap']:.3f} shipped {r.get('shipped_score')} ({r.get('_wall_seconds', '?')} s)", flush=True)
    text = table(results) + "\n\nMean differences to the tree:\n" + margins(results) + "\n"
    print(text)
    if args.markdown:
        args.markdown.write_text(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
