"""Fixtures of the search tests: a tiny labelled dataset with a stored split."""
from __future__ import annotations

import numpy as np
import pytest

from graphtrain.partition.partitioner import partition_arrays


def write_dataset(path, split: bool = True, n: int = 400, e: int = 3000, seed: int = 0):
    """``n`` nodes, 8 features (feature 0 and the in-neighbours carry the label), 20% positives,
    2 partitions, a stored 50/25/25 split (or none)."""
    rs = np.random.default_rng(seed)
    y = (rs.random(n) < 0.2).astype(np.int64)
    src, dst = rs.integers(0, n, e), rs.integers(0, n, e)
    from_pos = (y[dst] == 1) & (rs.random(e) < 0.5)
    src[from_pos] = rs.choice(np.flatnonzero(y == 1), from_pos.sum())
    x = rs.normal(size=(n, 8)).astype(np.float32)
    x[:, 0] += 1.5 * y
    roles = np.array(["train", "val", "test"])[rs.choice(3, n, p=[0.5, 0.25, 0.25])] if split else None
    raw = np.arange(n) + 10**6
    partition_arrays(raw[src], raw[dst], path, 2, node_ids=raw, node_features=x, node_labels=y,
                     node_split=None if roles is None else list(roles), method="hash")
    return path


@pytest.fixture(scope="session")
def split_dataset(tmp_path_factory):
    return write_dataset(tmp_path_factory.mktemp("tune-ds") / "ds")


@pytest.fixture(scope="session")
def unsplit_dataset(tmp_path_factory):
    return write_dataset(tmp_path_factory.mktemp("tune-nosplit") / "ds", split=False)
