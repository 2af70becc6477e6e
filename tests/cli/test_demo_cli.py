"""``graphtrain demo``, the command ``make demo`` runs, end to end in a subprocess (generate -> partition
-> train on a local Ray -> score -> baseline -> rings -> report).

Smaller than ``make demo`` to fit the CI budget: 2,000 accounts instead of 20,000, at most 5 epochs
instead of 40 and at least 10 optimizer steps instead of 200 (800 training accounts are 2 batches
per epoch, so the default would mean 100 epochs); every stage still runs, with the command's other
defaults.
"""
from __future__ import annotations

import json
import math
import subprocess
import sys
import time

import pyarrow.csv as pacsv
import pyarrow.parquet as pq
import pytest

ACCOUNTS = 2000


@pytest.mark.slow
@pytest.mark.ray
def test_demo_runs_end_to_end(tmp_path):
    out = tmp_path / "demo"
    cmd = [sys.executable, "-m", "graphtrain.cli", "demo", "--accounts", str(ACCOUNTS), "--epochs", "5",
           "--min-steps", "10", "--out", str(out), "--force"]
    start = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=900)
    seconds = time.perf_counter() - start
    assert proc.returncode == 0, f"exit {proc.returncode} after {seconds:.0f} s\n{proc.stdout[-3000:]}\n{proc.stderr[-5000:]}"
    lines = [line for line in proc.stdout.splitlines() if line.strip()]
    report = out / "run" / "report" / "index.html"
    assert lines[-2] == f"report: {report}"
    result = json.loads(lines[-1])

    for key in ("auc", "ap", "f1_macro", "recall_at_k", "baseline_auc", "baseline_ap", "baseline_f1_macro",
                "blend_auc", "blend_ap", "blend_f1_macro", "blend_weight", "ring_precision", "ring_recall"):
        assert isinstance(result[key], float) and 0.0 <= result[key] <= 1.0 and not math.isnan(result[key]), key
    assert result["auc"] > 0.5 and result["blend_auc"] > 0.5  # better than chance even after 5 epochs
    assert (result["accounts"], result["report"]) == (ACCOUNTS, str(report))
    assert result["transactions"] > ACCOUNTS and result["true_rings"] >= 1 and result["rings"] >= 1
    assert set(result["ring_recall_by_typology"]) <= {"bipartite", "cycle", "fan_in", "fan_out", "scatter_gather"}
    assert report.is_file() and report.stat().st_size > 1000

    run = out / "run"
    scores = pq.read_table(run / "scores.parquet")
    assert scores.num_rows == ACCOUNTS and {"account_id", "score", "baseline_score", "blend_score"} <= set(scores.column_names)
    assert len(scores.column("account_id").unique()) == ACCOUNTS
    rings = pq.read_table(run / "rings.parquet")
    members = pq.read_table(run / "ring_members.parquet")
    assert rings.num_rows == result["rings"] and pacsv.read_csv(run / "rings.csv").num_rows == result["rings"]
    assert members.num_rows == sum(rings.column("size").to_pylist())
    assert pacsv.read_csv(run / "ring_members.csv").num_rows == members.num_rows
    assert set(members.column("ring_id").to_pylist()) == set(rings.column("ring_id").to_pylist())
    print(f"graphtrain demo --accounts {ACCOUNTS} --epochs 5 --min-steps 10: {seconds:.1f} s")
