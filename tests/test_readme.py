"""The README's Python snippets (and docs/training.md's), executed as written.

The snippet text is read from the Markdown files at test time, never copied here: README code that
fails is a defect. Each snippet runs with the test's temporary directory as the current directory,
where the test first writes what the snippet's relative paths name:

- ``out/tx`` and ``data/tx``: the same 4-partition dataset (LDG), written by ``partition_arrays``:
  1,600 nodes with 8 features, binary labels, a train/val/test split and a node time, 16,000 edges
  with an integer ``time`` column (so ``temporal="uniform"`` has edge times to bound);
- ``train_nodes`` / ``train_times``, the two names the sampling snippet uses without defining them:
  the global IDs of the dataset's train nodes (from every partition) and their node times.

The training snippets start a local Ray with 4 logical CPUs first (``num_workers=4`` on the 2-core
CI machine; a Trainer joins a Ray that is already running), as the training tests do, and run with
one change to their text: ``epochs=20`` becomes ``epochs=2`` (the README's snippet took 149 s with
20 epochs on the shared 2-core machine, more than this suite's CI budget allows; everything else is
executed as written). Each runs in its own directory, so ``ckpt/tx`` and ``scores.parquet`` start
absent.
"""
from __future__ import annotations

import re
import shutil
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest

from graphtrain.partition import open_dataset
from graphtrain.partition.partitioner import partition_arrays

ROOT = Path(__file__).resolve().parents[1]
FENCE = re.compile(r"^```python\n(.*?)^```", re.S | re.M)


def python_blocks(path: Path, section: str) -> list:
    """The ```python blocks of the ``## section`` of a Markdown file (up to the next ``## `` heading)."""
    text = path.read_text(encoding="utf-8")
    match = re.search(rf"^## {re.escape(section)}\n(.*?)(?=^## |\Z)", text, re.S | re.M)
    assert match, f"{path.name} has no '## {section}' section"
    blocks = FENCE.findall(match.group(1))
    assert blocks, f"{path.name} '## {section}' has no python block"
    return blocks


def make_dataset(out_dir: Path, n: int = 1600, e: int = 16000, seed: int = 0) -> None:
    rs = np.random.default_rng(seed)
    y = (rs.random(n) < 0.2).astype(np.int64)
    src, dst = rs.integers(0, n, e), rs.integers(0, n, e)
    x = rs.normal(size=(n, 8)).astype(np.float32)
    x[:, 0] += 1.5 * y
    raw = rs.choice(10**9, n, replace=False) + 10**9
    split = rs.choice(np.array(["train", "val", "test"]), n, p=[0.6, 0.2, 0.2])
    partition_arrays(raw[src], raw[dst], out_dir, 4, edge_attrs={"time": rs.integers(0, 1000, e)}, time_column="time",
                     node_ids=raw, node_features=x, node_labels=y, node_split=split,
                     node_time=rs.integers(500, 1000, n), method="ldg")


@pytest.fixture(scope="module")
def datasets(tmp_path_factory):
    root = tmp_path_factory.mktemp("readme")
    for rel in ("out/tx", "data/tx"):
        make_dataset(root / rel)
    return root


def train_nodes_and_times(path: Path):
    ds = open_dataset(path)
    nodes, times = [], []
    for p in range(ds.num_parts):
        part = ds.partition(p)
        local = np.flatnonzero(np.asarray(part.split) == 0)
        nodes.append(ds.book.node_bounds[p] + local)
        times.append(np.asarray(part.time)[local])
    return np.concatenate(nodes), np.concatenate(times)


def test_readme_sampling_snippet_runs_on_a_multi_partition_dataset(datasets, monkeypatch):
    monkeypatch.chdir(datasets)
    train_nodes, train_times = train_nodes_and_times(datasets / "out/tx")
    parts = open_dataset("out/tx").book.node_part(train_nodes)
    assert open_dataset("out/tx").num_parts == 4 and np.unique(parts).size == 4  # seeds in every partition
    (code,) = python_blocks(ROOT / "README.md", "Sampling")
    scope = {"train_nodes": train_nodes, "train_times": train_times}
    exec(compile(code, "README.md#sampling", "exec"), scope)
    data = scope["data"]  # the last batch's PyG Data
    assert data.x.shape[1] == 8 and data.edge_index.shape[0] == 2 and data.batch_size >= 1
    assert int(data.node_time.max()) <= int(train_times.max())


@pytest.mark.slow
@pytest.mark.ray
@pytest.mark.parametrize("doc", ["README.md", "docs/training.md"])
def test_training_snippet_runs(doc, datasets, tmp_path, monkeypatch, ray_local):  # a Trainer joins it
    shutil.copytree(datasets / "data", tmp_path / "data")  # each snippet starts without ckpt/tx
    monkeypatch.chdir(tmp_path)
    (code,) = [b for b in python_blocks(ROOT / doc, "Training" if doc == "README.md" else "Python")
               if "Trainer(" in b]
    assert code.count("epochs=20") == 1
    code = code.replace("epochs=20", "epochs=2")  # the one change to the text: CI time (see the module docstring)
    scope: dict = {}
    exec(compile(code, f"{doc}#training", "exec"), scope)
    result = scope["result"]
    assert 0.0 <= result.val["auc"] <= 1.0 and result.test is not None
    assert pq.read_table("scores.parquet").num_rows == open_dataset("data/tx").meta.num_nodes
