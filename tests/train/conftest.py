"""Shared fixtures of the training tests: tiny labelled datasets and one local Ray instance.

Ray is started once per session (4 logical CPUs on the 2-core CI machine) and reused: Ray keeps
its task worker processes, so only the first run pays for importing torch in the workers.

Pinned workers (``pin_cpus``) of this session claim cores in a lock directory of its own
(``GRAPHTRAIN_CPU_LOCK_DIR``, set before Ray starts, so its workers inherit it): another pinned job
of the same user on this machine does not take the cores the tests expect to get.
"""
from __future__ import annotations

import os
import shutil
import tempfile

import numpy as np
import pytest

from graphtrain.partition.partitioner import partition_arrays
from graphtrain.train.affinity import LOCK_DIR_ENV

_SESSION_CORE_LOCKS = None
if not os.environ.get(LOCK_DIR_ENV):
    _SESSION_CORE_LOCKS = os.environ[LOCK_DIR_ENV] = tempfile.mkdtemp(prefix="graphtrain-test-cores-")


def make_graph(n=600, e=6000, seed=0, positives=0.2):
    """A random graph whose binary labels are visible in feature 0 and in the neighbours' features."""
    rs = np.random.default_rng(seed)
    y = (rs.random(n) < positives).astype(np.int64)
    src = rs.integers(0, n, e)
    # fraud-like homophily: half of a positive node's in-edges come from other positives
    pos = np.flatnonzero(y == 1)
    dst = rs.integers(0, n, e)
    from_pos = (y[dst] == 1) & (rs.random(e) < 0.5)
    src[from_pos] = rs.choice(pos, from_pos.sum())
    x = rs.normal(size=(n, 8)).astype(np.float32)
    x[:, 0] += 1.5 * y
    raw = rs.choice(10**9, n, replace=False) + 10**9  # sparse raw IDs
    return raw, raw[src], raw[dst], x, y


def _partitioned_graph(tmp_path_factory, name: str, num_parts: int):
    """``make_graph()`` partitioned into ``num_parts`` parts (LDG) under a new temporary directory."""
    root = tmp_path_factory.mktemp(name)
    raw, src, dst, x, y = make_graph()
    partition_arrays(src, dst, root / "ds", num_parts, node_ids=raw, node_features=x, node_labels=y, method="ldg")
    return root / "ds"


@pytest.fixture(scope="session")
def labelled_dataset(tmp_path_factory):
    """4 partitions (LDG), 600 nodes, 8 features, binary labels, no stored split."""
    return _partitioned_graph(tmp_path_factory, "train-ds", 4)


@pytest.fixture(scope="session")
def eight_part_dataset(tmp_path_factory):
    """The same graph as ``labelled_dataset`` in 8 partitions (LDG): trains on 1, 2, 4 or 8 workers."""
    return _partitioned_graph(tmp_path_factory, "train-ds8", 8)


@pytest.fixture(scope="session")
def graph_arrays():
    return make_graph()


def pytest_sessionfinish(session, exitstatus):
    try:
        import ray

        if ray.is_initialized():
            ray.shutdown()
    except ImportError:
        pass
    if _SESSION_CORE_LOCKS is not None:
        shutil.rmtree(_SESSION_CORE_LOCKS, ignore_errors=True)
