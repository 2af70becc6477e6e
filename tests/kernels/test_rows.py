"""Host row kernels: scatter of gathered rows into place, sorted-ID cache lookups, the distinct IDs an
index lacks."""
import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from graphtrain.kernels.rows import IdIndex, copy_cached_rows, distinct_absent, scatter_rows


def test_scatter_rows_writes_each_row_to_its_position():
    rs = np.random.default_rng(0)
    table = rs.random((50, 3)).astype(np.float32)
    rows = rs.integers(0, 50, 20)
    positions = rs.permutation(30)[:20]
    out = np.full((30, 3), -1, dtype=np.float32)
    scatter_rows(table, rows, out, positions)
    assert np.array_equal(out[positions], table[rows])
    untouched = np.setdiff1d(np.arange(30), positions)
    assert np.all(out[untouched] == -1)
    scatter_rows(table, np.zeros(0, np.int64), out, np.zeros(0, np.int64))  # nothing to do


def test_scatter_rows_across_blocks_dtypes_and_layouts():
    """Several parallel blocks with rows prefetched ahead, other dtypes, and a non-C-contiguous
    table (no prefetch there)."""
    rs = np.random.default_rng(1)
    for table in (rs.random((6000, 64)).astype(np.float32), rs.integers(0, 9, (6000, 7)),
                  np.asfortranarray(rs.random((6000, 4)))):
        rows = rs.integers(0, 6000, 3500)
        positions = rs.permutation(5000)[:3500]
        out = np.zeros((5000, table.shape[1]), dtype=table.dtype)
        scatter_rows(table, rows, out, positions)
        assert np.array_equal(out[positions], table[rows])


def test_copy_cached_rows_finds_exactly_the_cached_ids():
    rs = np.random.default_rng(1)
    cache_ids = np.sort(rs.choice(1000, 100, replace=False))
    cache_rows = rs.random((100, 4)).astype(np.float32)
    ids = np.concatenate([cache_ids[::3], np.setdiff1d(np.arange(1000), cache_ids)[:40], [cache_ids[0], 10**9, 2**62]])
    ids = rs.permutation(ids)
    positions = np.arange(0, ids.size, 2)  # only these are looked up
    out = np.zeros((ids.size, 4), dtype=np.float32)
    hit = copy_cached_rows(ids, positions, IdIndex(cache_ids), cache_rows, out)
    want = np.isin(ids[positions], cache_ids)
    assert np.array_equal(hit, want) and want.any() and not want.all()
    where = np.searchsorted(cache_ids, ids[positions[hit]])
    assert np.array_equal(out[positions[hit]], cache_rows[where])
    assert np.all(out[positions[~hit]] == 0) and np.all(out[1::2] == 0)
    empty = copy_cached_rows(ids, positions, IdIndex(np.zeros(0, np.int64)), np.zeros((0, 4), np.float32), out)
    assert not empty.any()


def test_id_index_on_clustered_ids_matches_isin():
    rs = np.random.default_rng(2)
    cache_ids = np.unique(np.concatenate([np.arange(5000) * 1024, rs.integers(0, 2**40, 3000)]))  # strided: hash collisions
    order = rs.permutation(cache_ids.size)
    index = IdIndex(cache_ids[order])  # row r of the cache is cache_ids[order[r]]
    rows = rs.random((cache_ids.size, 2)).astype(np.float32)
    assert np.array_equal(np.sort(index.keys[index.keys >= 0]), cache_ids) and index.size == cache_ids.size
    ids = np.concatenate([cache_ids[::7], np.arange(5000) * 1024 + 1])
    out = np.zeros((ids.size, 2), dtype=np.float32)
    hit = copy_cached_rows(ids, np.arange(ids.size), index, rows, out)
    assert np.array_equal(hit, np.isin(ids, cache_ids))
    row_of = np.empty(cache_ids.size, dtype=np.int64)
    row_of[order] = np.arange(cache_ids.size)  # sorted position -> cache row
    assert np.array_equal(out[hit], rows[row_of[np.searchsorted(cache_ids, ids[hit])]])


def test_id_index_lookup_gives_each_ids_row_or_minus_one():
    rs = np.random.default_rng(3)
    cache_ids = np.unique(np.concatenate([np.arange(2000) * 512, rs.integers(0, 2**40, 500)]))  # collisions
    order = rs.permutation(cache_ids.size)
    index = IdIndex(cache_ids[order])  # row r holds cache_ids[order[r]]
    absent = np.setdiff1d(np.arange(2000) * 512 + 3, cache_ids)
    ids = rs.permutation(np.concatenate([cache_ids[::5], absent, [2**62]]))
    got = index.lookup(ids)
    present = np.isin(ids, cache_ids)
    assert present.any() and not present.all()
    assert np.all(got[~present] == -1)
    assert np.array_equal(cache_ids[order][got[present]], ids[present])
    assert IdIndex(np.zeros(0, np.int64)).lookup(ids).tolist() == [-1] * ids.size
    assert index.lookup(np.zeros(0, np.int64)).shape == (0,)


_ids = st.lists(st.integers(0, 60), max_size=80).map(lambda v: np.array(v, dtype=np.int64))


@settings(max_examples=200, deadline=None)
@given(arrays=st.lists(_ids, min_size=1, max_size=3), indexed=_ids, lo=st.integers(0, 61), width=st.integers(0, 61),
       inside=st.booleans(), use_index=st.booleans())
def test_distinct_absent_is_the_filtered_unique_set_less_the_index(arrays, indexed, lo, width, inside, use_index):
    hi = lo + width
    index = IdIndex(np.unique(indexed)) if use_index else None
    every = np.concatenate(arrays)
    keep = ((every >= lo) & (every < hi)) == inside
    if index is not None:
        keep &= ~np.isin(every, indexed)
    got = distinct_absent(arrays, lo, hi, inside, index)
    assert got.dtype == np.int64 and np.array_equal(got, np.unique(every[keep]))


def test_distinct_absent_on_data_plane_sizes():
    """Prefetched probes over a large index and many repeats (the feature-cache case)."""
    rs = np.random.default_rng(3)
    cached = np.unique(rs.integers(0, 1_000_000, 250_000))
    nodes = rs.integers(0, 1_000_000, 20_000)
    got = distinct_absent([nodes[:7_000], nodes[7_000:]], 0, 500_000, False, IdIndex(cached))
    remote = np.unique(nodes[nodes >= 500_000])
    assert np.array_equal(got, remote[~np.isin(remote, cached)]) and 0 < got.size < remote.size
