"""graphtrain.ordering: the packed-key sorts equal np.lexsort, overflow included; CSR row blocks;
search_sorted."""
import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

import tracemalloc

from graphtrain.ordering import csr_order, pair_order, row_blocks, search_sorted, sorted_pairs

ints = st.integers(min_value=-(2**40), max_value=2**40)


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(st.integers(-5, 5), st.integers(-3, 3)), max_size=60))
def test_pair_order_is_lexsort(pairs):
    major = np.array([p[0] for p in pairs], dtype=np.int64)
    minor = np.array([p[1] for p in pairs], dtype=np.int64)
    expected = np.lexsort((minor, major))
    assert np.array_equal(pair_order(major, minor), expected)  # ties keep input order
    a, b = sorted_pairs(major, minor)
    assert np.array_equal(a, major[expected]) and np.array_equal(b, minor[expected])


@settings(max_examples=100, deadline=None)
@given(st.lists(st.tuples(ints, ints), min_size=1, max_size=40))
def test_ranges_too_wide_to_pack_fall_back_to_lexsort(pairs):
    major = np.array([p[0] for p in pairs], dtype=np.int64)
    minor = np.array([p[1] for p in pairs], dtype=np.int64)
    expected = np.lexsort((minor, major))
    assert np.array_equal(pair_order(major, minor), expected)
    a, b = sorted_pairs(major, minor)
    assert np.array_equal(a, major[expected]) and np.array_equal(b, minor[expected])


def test_the_widest_ranges_that_pack_and_narrower_dtypes():
    major = np.array([2**31 - 1, 0, 2**31 - 1, 5], dtype=np.int64)
    minor = np.array([2**31 - 1, 2**31 - 1, 0, 0], dtype=np.int64)  # spans 2^31 x 2^31 = 2^62: packed
    assert np.array_equal(pair_order(major, minor), np.lexsort((minor, major)))
    m32, n32 = major.astype(np.int32), minor.astype(np.int32)  # int32 inputs must not overflow in the packing
    assert np.array_equal(pair_order(m32, n32), np.lexsort((n32, m32)))
    assert np.array_equal(pair_order(np.array([], np.int64), np.array([], np.int64)), [])


def test_csr_order_points_each_row_at_its_entries_by_minor():
    rng = np.random.default_rng(0)
    rows, minor = rng.integers(0, 7, 200), rng.integers(0, 5, 200)
    order, indptr = csr_order(rows, minor, 9)  # rows 7 and 8 are empty
    assert np.array_equal(order, np.lexsort((minor, rows)))
    for r in range(9):
        got = order[indptr[r]:indptr[r + 1]]
        assert np.all(rows[got] == r) and got.size == np.sum(rows == r)


@settings(max_examples=200, deadline=None)
@given(st.lists(st.integers(0, 9), max_size=40), st.integers(1, 12))
def test_row_blocks_cover_every_row_once_within_the_edge_budget(degrees, max_edges):
    indptr = np.concatenate([[0], np.cumsum(degrees)]).astype(np.int64)
    blocks = list(row_blocks(indptr, max_edges))
    assert [r for a, b in blocks for r in range(a, b)] == list(range(len(degrees)))  # in order, each row once
    for a, b in blocks:
        assert b > a and (indptr[b] - indptr[a] <= max_edges or b == a + 1)  # within budget, or one big row
        if b < len(degrees):  # maximal: the next row would not fit
            assert indptr[b + 1] - indptr[a] > max_edges


@settings(max_examples=300, deadline=None)
@given(st.lists(st.integers(-(2**31), 2**31 - 1), max_size=30), st.integers(-(2**40), 2**40),
       st.sampled_from(["left", "right"]), st.sampled_from([np.int32, np.int64, np.uint32]))
def test_search_sorted_is_searchsorted_in_any_integer_dtype(values, value, side, dtype):
    info = np.iinfo(dtype)
    a = np.sort(np.clip(np.array(values, dtype=np.int64), info.min, info.max)).astype(dtype)
    assert search_sorted(a, value, side) == int(np.searchsorted(a.astype(np.int64), value, side=side))


def test_row_blocks_over_an_int32_indptr_never_copy_it():
    """A compact dataset's indptr is int32: searching it with a Python int made NumPy convert all of it
    (8 bytes a row) at every block."""
    indptr = (np.arange(2_000_001, dtype=np.int64) * 3).astype(np.int32)
    tracemalloc.start()
    try:
        blocks = list(row_blocks(indptr, 600_000))
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert len(blocks) == 10 and blocks[0] == (0, 200_000) and blocks[-1][1] == 2_000_000
    assert peak < 1 << 20  # an int64 copy of indptr is 16 MB
