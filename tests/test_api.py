"""The public API: the user-facing names importable from ``graphtrain``, cheaply."""
import importlib
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import graphtrain

REPO = Path(__file__).resolve().parents[1]

# where each public name is defined
PUBLIC = [
    "graphtrain.partition.format.open_dataset", "graphtrain.sampling.neighbor.NeighborSampler",
    "graphtrain.sampling.loader.NodeLoader", "graphtrain.sampling.minibatch.MiniBatch", "graphtrain.train.trainer.Trainer",
    "graphtrain.train.trainer.predict", "graphtrain.fraud.pipeline.detect.detect_rings",
    "graphtrain.fraud.synth.generate.generate",
]


def test_import_graphtrain_loads_no_heavy_module():
    code = "import graphtrain, sys; print([m for m in ('torch', 'ray', 'numba', 'pyarrow') if m in sys.modules])"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO, timeout=120, check=True)
    assert out.stdout.strip() == "[]", out


@pytest.mark.parametrize("path", PUBLIC)
def test_each_public_name_is_the_defining_object(path):
    module, name = path.rsplit(".", 1)
    assert getattr(graphtrain, name) is getattr(importlib.import_module(module), name)
    assert name in graphtrain.__all__ and name in dir(graphtrain)


def test_partition_is_the_callable_package(tmp_path):
    from graphtrain import open_dataset, partition

    assert partition is importlib.import_module("graphtrain.partition") and graphtrain.partition is partition
    edges = tmp_path / "edges.csv"
    edges.write_text("src,dst\n" + "".join(f"{i},{(i * 7 + 1) % 50}\n" for i in range(200)))
    from graphtrain.partition import EdgeColumns, PartitionOptions, TableSource

    partition(TableSource.from_paths(edges), EdgeColumns("src", "dst"), tmp_path / "ds", PartitionOptions(num_parts=2))
    ds = open_dataset(tmp_path / "ds")
    assert ds.num_parts == 2 and ds.meta.num_nodes == 200 and ds.meta.num_edges == 200
    assert partition.partition is importlib.import_module("graphtrain.partition.partitioner").partition


def test_node_loader_takes_an_opened_dataset(tmp_path):
    from graphtrain import NeighborSampler, NodeLoader, open_dataset
    from graphtrain.partition.partitioner import partition_arrays
    from graphtrain.sampling.features import LocalNodeData

    rs = np.random.default_rng(0)
    n = 60
    partition_arrays(rs.integers(0, n, 400), rs.integers(0, n, 400), tmp_path / "ds", 3, node_ids=np.arange(n),
                     node_features=rs.normal(size=(n, 4)).astype(np.float32), node_labels=rs.integers(0, 2, n))
    ds = open_dataset(tmp_path / "ds")
    sampler = NeighborSampler(ds.graph(), [3], seed=0)
    a = next(iter(NodeLoader(sampler, np.arange(n), 16, node_data=ds, shuffle=False, prefetch=0)))
    b = next(iter(NodeLoader(sampler, np.arange(n), 16, node_data=LocalNodeData.from_dataset(ds), shuffle=False,
                             prefetch=0)))
    assert np.array_equal(a.x, b.x) and np.array_equal(a.y, b.y)


def test_a_missing_extra_is_named(monkeypatch):
    from graphtrain import optional
    from graphtrain.errors import MissingDependencyError

    monkeypatch.setattr(optional, "available", lambda module: module != "scipy")
    with pytest.raises(MissingDependencyError, match=r"graphtrain\[fraud\]"):
        optional.require(*optional.FRAUD_MODULES, feature="the fraud pipeline")
    with pytest.raises(ImportError):  # also an ImportError
        optional.require("scipy", feature="x")
