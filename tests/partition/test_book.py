import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from graphtrain.errors import ConfigError, FormatError
from graphtrain.partition.book import RangePartitionBook


def bounds_strategy(max_parts=12, max_size=50):
    return st.lists(st.integers(0, max_size), min_size=1, max_size=max_parts).map(
        lambda sizes: np.concatenate([[0], np.cumsum(sizes)]).astype(np.int64)
    )


@settings(max_examples=200, deadline=None)
@given(nb=bounds_strategy(), data=st.data())
def test_node_lookup_roundtrip(nb, data):
    eb = np.concatenate([[0], np.cumsum(data.draw(st.lists(st.integers(0, 30), min_size=len(nb) - 1, max_size=len(nb) - 1)))])
    book = RangePartitionBook(nb, eb)
    if book.num_nodes == 0:
        return
    ids = np.arange(book.num_nodes)
    part, local = book.node_to_local(ids)
    # every id lands in the partition whose range contains it, and maps back exactly
    assert np.all(nb[part] <= ids) and np.all(ids < nb[part + 1])
    assert np.array_equal(book.node_to_global(part, local), ids)
    assert np.array_equal(book.node_part(ids), part)
    # empty partitions never receive an id
    sizes = np.diff(nb)
    assert np.all(sizes[part] > 0)


def test_edge_lookup_and_ranges():
    book = RangePartitionBook([0, 3, 3, 7], [0, 10, 12, 20])
    assert book.num_parts == 3 and book.num_nodes == 7 and book.num_edges == 20
    assert book.node_range(1) == (3, 3)
    assert book.edge_range(2) == (12, 20)
    part, local = book.edge_to_local([0, 9, 10, 11, 12, 19])
    assert part.tolist() == [0, 0, 1, 1, 2, 2]
    assert local.tolist() == [0, 9, 0, 1, 0, 7]
    assert book.node_part([2, 3, 6]).tolist() == [0, 2, 2]


def test_out_of_range_ids_are_rejected():
    book = RangePartitionBook([0, 5, 10], [0, 1, 2])
    with pytest.raises(ConfigError, match="out of range"):
        book.node_part([10])
    with pytest.raises(ConfigError, match="out of range"):
        book.node_part([-1])
    with pytest.raises(ConfigError, match="integers"):
        book.node_part([1.5])
    with pytest.raises(ConfigError):
        book.node_to_global([0], [5])


@pytest.mark.parametrize("nb,eb", [([1, 2], [0, 1]), ([0, 2, 1], [0, 1, 2]), ([0], [0]), ([0, 1], [0, 1, 2])])
def test_invalid_bounds(nb, eb):
    with pytest.raises(FormatError):
        RangePartitionBook(nb, eb)


def test_size_independent_of_graph_size():
    small = RangePartitionBook([0, 10, 20], [0, 100, 200])
    huge = RangePartitionBook([0, 10**9, 2 * 10**9], [0, 5 * 10**10, 10**11])
    assert small.nbytes == huge.nbytes == 16 * 3
    assert huge.num_nodes == 2 * 10**9
    many = RangePartitionBook(np.arange(65) * 10**9, np.arange(65) * 10**10)
    assert many.nbytes == 16 * 65  # a few hundred bytes for 64 partitions of a billion nodes each
    assert len(many.to_dict()["node_bounds"]) == 65


def test_serialisation_roundtrip():
    book = RangePartitionBook([0, 4, 9], [0, 7, 11])
    assert RangePartitionBook.from_dict(book.to_dict()) == book
    with pytest.raises(FormatError, match="edge_bounds"):
        RangePartitionBook.from_dict({"node_bounds": [0, 1]})


@settings(max_examples=100, deadline=None)
@given(nb=bounds_strategy(max_parts=16), workers=st.integers(1, 16))
def test_contiguous_runs_cover_all_parts(nb, workers):
    book = RangePartitionBook(nb, nb * 3)
    if workers > book.num_parts:
        with pytest.raises(ConfigError, match="at least one partition"):
            book.contiguous_runs(workers)
        return
    runs = book.contiguous_runs(workers)
    assert runs[0] == 0 and runs[-1] == book.num_parts and len(runs) == workers + 1
    assert np.all(np.diff(runs) >= 1)
    coarse = book.coarsen(runs)
    assert coarse.num_parts == workers and coarse.num_nodes == book.num_nodes
    # a worker's merged range is exactly the union of its partitions' ranges
    ids = np.arange(book.num_nodes)
    assert np.array_equal(np.searchsorted(runs, book.node_part(ids), side="right") - 1, coarse.node_part(ids))


def test_contiguous_runs_balance_edges():
    book = RangePartitionBook(np.arange(9) * 10, [0, 100, 100, 100, 100, 400, 500, 600, 700])
    runs = book.contiguous_runs(2)
    edges = np.diff(book.edge_bounds[runs])
    assert edges.max() <= 400  # the heavy partition 4 is not lumped with everything before it


def test_coarsen_rejects_bad_runs():
    book = RangePartitionBook([0, 1, 2, 3], [0, 1, 2, 3])
    for runs in ([0, 2], [0, 2, 2, 3], [1, 3]):
        with pytest.raises(ConfigError):
            book.coarsen(runs)
