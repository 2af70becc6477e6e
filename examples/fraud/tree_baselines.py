"""The tree baseline on the real fraud datasets, under two protocols, printed as a table.

    python examples/fraud/tree_baselines.py [--data ../shared/data] [--hops 2] [--seed 0]

For each dataset (AMLSim's three 20K samples, Amazon U-P-U, Tolokers) and split it prints test
ROC-AUC and average precision of

- ``features only``: HistGradientBoostingClassifier on the account features alone;
- ``tree baseline``: the same on features + neighbour aggregates (graphtrain.fraud.pipeline.baseline), the
  baseline every graphtrain fraud pipeline prints beside its model.

Splits:

- ``pipeline``: the split the fraud pipeline uses -- Tolokers' fixed split 0 (50/25/25); otherwise
  graphtrain's stratified split, 40% train / 20% validation / 40% test (seed 0). Metrics on test.
- ``issue``: the protocol of the numbers quoted in issue 5 -- scikit-learn
  ``train_test_split(train_size=0.4, stratify=labels, random_state=0)``, metrics on the other 60%
  (Tolokers: fixed split 0 again).

The last line is a JSON list of all rows.
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))

from graphtrain import metrics  # noqa: E402
from graphtrain.fraud.data.datasets import load_named  # noqa: E402
from graphtrain.fraud.pipeline.baseline import neighbour_features, train_and_score  # noqa: E402
from graphtrain.split import TEST, TRAIN, stratified_split  # noqa: E402

DATASETS = [
    ("amlsim", "amlsim/20K_cycle200"),
    ("amlsim", "amlsim/20K_fanin200"),
    ("amlsim", "amlsim/20K_fanin200cycle200"),
    ("amazon-upu", "amazon_upu/Amazon.mat"),
    ("tolokers", "tolokers/tolokers.npz"),
]


def splits(labels: np.ndarray, fixed, seed: int):
    """name -> (train row indices, test row indices)."""
    if fixed is not None:
        return {"pipeline": (np.flatnonzero(fixed == TRAIN), np.flatnonzero(fixed == TEST)),
                "issue": (np.flatnonzero(fixed == TRAIN), np.flatnonzero(fixed == TEST))}
    from sklearn.model_selection import train_test_split

    ours = stratified_split(labels, (0.4, 0.2), seed=seed)
    idx = np.arange(labels.size)
    train, test = train_test_split(idx, train_size=0.4, stratify=labels, random_state=seed)
    return {"pipeline": (np.flatnonzero(ours == TRAIN), np.flatnonzero(ours == TEST)), "issue": (np.sort(train), np.sort(test))}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", default=str(REPO.parent / "shared" / "data"), help="the shared data folder")
    parser.add_argument("--hops", type=int, default=2, help="neighbour-aggregation hops of the tree baseline")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    rows = []
    print(f"{'dataset':28s} {'split':9s} {'model':14s} {'features':>8s} {'test AUC':>8s} {'test AP':>8s} {'seconds':>7s}")
    for name, rel in DATASETS:
        ds = load_named(name, Path(args.data) / rel)
        g = ds.graph
        labels = g.accounts.labels
        t0 = time.time()
        x_graph, _ = neighbour_features(g, hops=args.hops)
        feature_seconds = time.time() - t0
        for split_name, (train, test) in splits(labels, g.accounts.split, args.seed).items():
            for model, x in (("features only", g.accounts.features), ("tree baseline", x_graph)):
                t0 = time.time()
                scores = train_and_score(x, labels, train, seed=args.seed)
                seconds = time.time() - t0 + (feature_seconds if model == "tree baseline" else 0.0)
                row = {"dataset": ds.name, "split": split_name, "model": model, "features": int(x.shape[1]),
                       "train": int(train.size), "test": int(test.size),
                       "auc": metrics.roc_auc(labels[test], scores[test]),
                       "ap": metrics.average_precision(labels[test], scores[test]), "seconds": round(seconds, 1)}
                rows.append(row)
                print(f"{ds.name:28s} {split_name:9s} {model:14s} {row['features']:8d} {row['auc']:8.4f} {row['ap']:8.4f} "
                      f"{row['seconds']:7.1f}", flush=True)
    print(json.dumps(rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
