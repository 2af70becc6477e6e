"""Feature/label gather through the range partition book (in memory and memory-mapped partitions)."""
import numpy as np
import pytest

from graphtrain.errors import ConfigError
from graphtrain.partition.book import RangePartitionBook
from graphtrain.sampling.features import LocalNodeData, split_by_owner
from tests.sampling.graphs import random_graph, write_dataset


def test_split_by_owner_groups_ids_stably():
    book = RangePartitionBook([0, 3, 3, 8, 10], [0, 5, 5, 9, 12])
    ids = np.array([9, 0, 4, 2, 8, 3])
    s = split_by_owner(book, ids)
    assert s.parts.tolist() == [0, 2, 3]
    assert [ids[s.order[a:b]].tolist() for a, b in zip(s.offsets[:-1], s.offsets[1:])] == [[0, 2], [4, 3], [9, 8]]
    assert s.local.tolist() == [0, 2, 1, 0, 1, 0]
    with pytest.raises(ConfigError, match="out of range"):
        split_by_owner(book, [10])


@pytest.mark.parametrize("backend", ["reference", "cpu"])
def test_gather_from_memory_mapped_partitions(tmp_path, backend):
    g = random_graph(num_nodes=50, num_edges=300)
    feats = np.random.default_rng(0).random((50, 3)).astype(np.float32)
    labels = np.arange(50, dtype=np.int64) % 4
    ds = write_dataset(tmp_path / "ds", g, [0, 20, 35, 50], feats, labels)
    data = LocalNodeData.from_dataset(ds, backend=backend)
    ids = np.array([49, 0, 21, 21, 34, 35, 19])
    assert data.num_features == 3
    assert np.array_equal(data.features(ids), feats[ids])
    assert np.array_equal(data.labels(ids), labels[ids])
    only_middle = LocalNodeData.from_dataset(ds, parts=[1], backend=backend)
    assert np.array_equal(only_middle.features([20, 34]), feats[[20, 34]])
    with pytest.raises(ConfigError, match="partition 0 are not held by this process"):
        only_middle.features([20, 3])
    out = np.full((ids.size + 2, 3), -1, dtype=np.float32)
    where = np.arange(ids.size)[::-1] + 2
    data.features_into(ids, out, where)  # rows written in place, across three partitions
    assert np.array_equal(out[where], feats[ids]) and np.all(out[:2] == -1)
    with pytest.raises(ConfigError, match="partition 0 are not held by this process"):
        only_middle.features_into(np.array([20, 3]), out, np.array([0, 1]))


def test_in_memory_tables_and_mismatches():
    feats = np.ones((5, 2), np.float32)
    data = LocalNodeData.from_arrays(feats, np.arange(5))
    assert data.labels([4, 1]).tolist() == [4, 1]
    assert LocalNodeData.from_arrays(labels=np.arange(5)).features([1]) is None
    with pytest.raises(ConfigError, match="5 feature rows but 4 labels"):
        LocalNodeData.from_arrays(feats, np.arange(4))
    with pytest.raises(ConfigError, match="out of range"):
        data.features([5])
