#!/usr/bin/env python
"""The fraud pipeline's rings stage alone, on a finished ``detect-rings`` run: time and memory per step.

The stage (score choice, thresholds, the ring subgraph, ring finding, the scores / rings files and
the report) is what ``graphtrain.fraud.pipeline.pipeline.write_stages`` runs after the tree baseline.
This script runs that function on the run's dataset with the run's GNN scores, split and
configuration, and the tree's scores read from the run's ``scores.parquet`` (the tree is not refitted:
the baseline stage is not what is measured). A thread samples the process's
``RssAnon`` every 50 ms; each step (a function of the stage, wrapped) reports the most anonymous
memory seen while it ran, and ``--profile FILE`` writes a cProfile of the whole stage.

Prints one JSON object: the stage's seconds, the rings found, ring precision / recall against the
generator's ``rings.csv``, and the peak anonymous memory per step. The outputs go to ``--work`` (removed
first); compare its ``ring_members.parquet`` with the run's to check that a change keeps the rings.

Example (a run of ``bench_pipeline_scale.py``)::

    python benchmarks/bench_rings_stage.py /work/scale/run-12500000 /work/scale/gen-12500000/rings.csv \\
        --work /tmp/rings-stage --profile /tmp/rings-stage.prof
"""
from __future__ import annotations

import argparse
import json
import shutil
import sys
import threading
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

STEPS = {  # module -> functions of the stage reported as steps
    "graphtrain.fraud.pipeline.pipeline": ("metrics_at_chosen_threshold", "blend_scores", "choose_ring_score",
                                           "population_threshold", "candidate_degrees", "limit_ring_candidates", "detect_rings",
                                           "ring_metrics", "_write_scores",
                                           "write_rings", "write_report"),
    "graphtrain.fraud.data.touching_subgraph": ("high_risk_in_dataset", "touching_subgraph"),
    "graphtrain.fraud.evaluation.report": ("select_bad_cases",),
    "graphtrain.fraud.rings.rings": ("touching", "find_groups", "find_flow_evidence", "rings_with_flow", "describe_rings"),
}


class StepMemory:
    """The most ``RssAnon`` seen while each step ran (the innermost step running gets the sample)."""

    def __init__(self):
        self.step, self.peaks, self._stop = "setup", {}, threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    @staticmethod
    def _anon() -> int:
        with open("/proc/self/status") as fh:
            for line in fh:
                if line.startswith("RssAnon:"):
                    return int(line.split()[1]) * 1024
        return 0

    def _run(self):
        while not self._stop.is_set():
            anon, step = self._anon(), self.step
            self.peaks[step] = max(self.peaks.get(step, 0), anon)
            time.sleep(0.05)

    def wrap(self, module, name: str) -> None:
        inner = getattr(module, name)

        def step(*args, **kwargs):
            outer, self.step = self.step, name
            try:
                return inner(*args, **kwargs)
            finally:
                self.step = outer

        setattr(module, name, step)

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("run", type=Path, help="a finished detect-rings output directory (summary.json, scores.parquet, dataset)")
    ap.add_argument("rings", type=Path, help="the true rings file (the generator's rings.csv)")
    ap.add_argument("--work", type=Path, required=True, help="where the stage writes (removed first)")
    ap.add_argument("--profile", type=Path, help="write a cProfile of the stage here")
    args = ap.parse_args()
    memory = StepMemory()
    import importlib

    import pyarrow.parquet as pq

    import graphtrain.fraud.pipeline.pipeline as pipeline
    from graphtrain.fraud.data.transaction_dataset import TransactionDataset
    from graphtrain.fraud.pipeline.baseline import BaselineResult
    from graphtrain.fraud.pipeline.stages import StageLog

    summary = json.loads((args.run / "summary.json").read_text())
    table = pq.read_table(args.run / "scores.parquet", columns=["score", "baseline_score", "split"])
    gnn = table["score"].to_numpy().astype(np.float64)
    tree = table["baseline_score"].to_numpy().astype(np.float64)
    names = table["split"].to_numpy(zero_copy_only=False)
    split = np.select([names == s for s in ("train", "val", "test")], [0, 1, 2], -1).astype(np.int8)
    del table, names
    baseline = BaselineResult(scores=tree, feature_names=["(the run's)"], params=summary["baseline"])
    for module, functions in STEPS.items():
        mod = importlib.import_module(module)
        for name in functions:
            memory.wrap(mod, name)
    data = TransactionDataset.open(args.run / "dataset")
    truth = pipeline.load_true_rings(args.rings, data)
    shutil.rmtree(args.work, ignore_errors=True)
    args.work.mkdir(parents=True)
    profile = None
    if args.profile:
        import cProfile

        profile = cProfile.Profile()
        profile.enable()
    memory.step = "write_stages"
    t0 = time.perf_counter()
    result = pipeline.write_stages(data, args.work, args.work / "out", pipeline.ModelScores(gnn, "gnn"), truth,
                                   pipeline.PipelineConfig(**summary["config"]), baseline, split=(split, "the run's"),
                                   stages=StageLog(args.work))
    seconds = time.perf_counter() - t0
    if profile is not None:
        profile.disable()
        profile.dump_stats(args.profile)
    memory.stop()
    print(json.dumps({"run": str(args.run), "seconds": round(seconds, 1), "rings": result["rings"],
                      "ring_precision": result.get("ring_precision"), "ring_recall": result.get("ring_recall"),
                      "stage_seconds": result["stage_seconds"],
                      "peak_anon_bytes": dict(sorted(memory.peaks.items(), key=lambda kv: -kv[1]))}))


if __name__ == "__main__":
    main()
