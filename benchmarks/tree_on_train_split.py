"""The tree baseline (graphtrain.fraud.pipeline.baseline, 2 hops) on the split `graphtrain train` uses
(stratified 0.7/0.15/0.15 by the engine's hash, per seed) on a partitioned AMLSim dataset.

Usage: python benchmarks/tree_on_train_split.py DATASET_DIR AMLSIM_DIR
"""
import sys
from pathlib import Path
import numpy as np

from graphtrain import metrics
from graphtrain.fraud.pipeline.baseline import neighbour_features, train_and_score
from graphtrain.fraud.data.datasets import load_named
from graphtrain.partition import open_dataset
from graphtrain.train.splits import class_counts, stratified_roles

ds = open_dataset(sys.argv[1])
aml = load_named("amlsim", Path(sys.argv[2]))
g = aml.graph
labels = g.accounts.labels
x, _ = neighbour_features(g, hops=2)
C = 2
P = ds.num_parts
lab = [np.asarray(ds.partition(p).labels) for p in range(P)]
counts = np.stack([class_counts(l, C) for l in lab])
before = np.cumsum(counts, axis=0) - counts
raw = np.concatenate([np.asarray(ds.raw_ids(p)) for p in range(P)])
rows = g.accounts.index_of(raw)
assert (rows >= 0).all()
assert np.array_equal(labels[rows], np.concatenate(lab))
out = []
for seed in (0, 1, 2):
    roles = np.concatenate([stratified_roles(lab[p], ds.book.node_range(p)[0], before[p], (0.7, 0.15, 0.15), seed) for p in range(P)])
    train, test = rows[roles == 0], rows[roles == 2]
    s = train_and_score(x, labels, train, seed=0)
    auc = metrics.roc_auc(labels[test], s[test]); ap = metrics.average_precision(labels[test], s[test])
    out.append((auc, ap))
    print(f"seed {seed}: tree test AUC {auc:.4f} AP {ap:.4f} (train {train.size}, test {test.size})", flush=True)
a = np.array(out)
print(f"mean AUC {a[:,0].mean():.4f} +- {a[:,0].std(ddof=1):.4f}, AP {a[:,1].mean():.4f} +- {a[:,1].std(ddof=1):.4f}")
