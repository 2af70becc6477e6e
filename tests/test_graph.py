import numpy as np
import pytest

from graphtrain.errors import ConfigError
from graphtrain.graph import CSCGraph


def test_from_edges_orders_by_dst_time_src():
    src = np.array([2, 0, 1, 0, 2])
    dst = np.array([1, 1, 0, 1, 1])
    time = np.array([9, 3, 4, 3, 1])
    g, perm = CSCGraph.from_edges(src, dst, 3, {"time": time, "amount": np.arange(5.0)})
    assert g.indptr.tolist() == [0, 1, 5, 5]
    assert g.src.tolist() == [1, 2, 0, 0, 2]
    assert g.time.tolist() == [4, 1, 3, 3, 9]
    assert perm.tolist() == [2, 4, 1, 3, 0]  # tie (src 0, time 3) keeps input order
    assert g.edge_attrs["amount"].tolist() == [2.0, 4.0, 1.0, 3.0, 0.0]
    assert g.time_sorted
    g.validate()
    assert g.dst().tolist() == [0, 1, 1, 1, 1]


def test_validate_catches_broken_invariants():
    g, _ = CSCGraph.from_edges([0, 1], [1, 0], 2, {"time": np.array([5, 6])})
    g.time_sorted = True
    g.validate()
    bad = CSCGraph(indptr=np.array([0, 2, 1], np.int64), src=np.array([0], np.int64))
    with pytest.raises(ConfigError):
        bad.validate()
    unsorted = CSCGraph(indptr=np.array([0, 2], np.int64), src=np.array([0, 0], np.int64),
                        edge_attrs={"time": np.array([5, 1])}, time_sorted=True)
    with pytest.raises(ConfigError, match="not sorted"):
        unsorted.validate()
    with pytest.raises(ConfigError):
        CSCGraph.from_edges([0, 5], [1, 0], 2)
