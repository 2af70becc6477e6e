"""Unique + relabel: first-occurrence numbering, identical across backends and thread counts."""
import numpy as np
import pytest

from graphtrain.kernels import cpu, reference
from tests.numba_threads import results_at_thread_counts


def _dict_oracle(prev, cand, prev_t=None, cand_t=None):
    """Straightforward Python numbering (test oracle only)."""
    key = (lambda i, t: (i, t)) if prev_t is not None else (lambda i, t: i)
    pos = {}
    for i, node in enumerate(prev):
        pos.setdefault(key(node, None if prev_t is None else prev_t[i]), i)
    nxt = len(prev)
    new_index, local = [], []
    for j, node in enumerate(cand):
        kk = key(node, None if cand_t is None else cand_t[j])
        if kk not in pos:
            pos[kk] = nxt
            nxt += 1
            new_index.append(j)
        local.append(pos[kk])
    return np.array(new_index, np.int64), np.array(local, np.int64)


@pytest.mark.parametrize("backend", [reference, cpu])
@pytest.mark.parametrize("temporal", [False, True])
def test_matches_first_occurrence_oracle(backend, temporal):
    rs = np.random.default_rng(4)
    prev = np.array([40, 7, 40, 3], np.int64)  # a repeated seed keeps both positions
    cand = rs.integers(0, 60, 3000).astype(np.int64)
    pt = np.array([1, 1, 2, 1], np.int64) if temporal else None
    ct = rs.integers(0, 3, cand.size).astype(np.int64) if temporal else None
    new_index, local = backend.unique_relabel(prev, cand, pt, ct)
    exp_new, exp_local = _dict_oracle(prev, cand, pt, ct)
    assert np.array_equal(new_index, exp_new) and np.array_equal(local, exp_local)
    assert local[cand == 7].size == 0 or np.all(local[(cand == 7) & ((ct == 1) if temporal else True)] == 1)


def _large_input():
    rs = np.random.default_rng(5)
    prev = rs.permutation(10**6)[:5000].astype(np.int64)
    cand = rs.integers(0, 10**6, 200_000).astype(np.int64)
    return prev, cand


def _large_relabel_on_cpu():
    """The CPU relabel of the large input (called at several thread counts: the count sets its shards)."""
    return cpu.unique_relabel(*_large_input())


def test_cpu_relabel_is_thread_count_independent_on_large_input():
    prev, cand = _large_input()
    r = reference.unique_relabel(prev, cand)
    # 1, 3 and 4 Numba threads, set explicitly whatever the machine's core count
    for threads, got in results_at_thread_counts("tests.kernels.test_relabel:_large_relabel_on_cpu", (1, 3, 4)).items():
        assert np.array_equal(got[0], r[0]) and np.array_equal(got[1], r[1]), threads
    # relabelled positions index the extended node list back to the candidates' IDs
    n_id = np.concatenate([prev, cand[r[0]]])
    assert np.array_equal(n_id[r[1]], cand)


def test_empty_candidates():
    for backend in (reference, cpu):
        new_index, local = backend.unique_relabel(np.array([1, 2], np.int64), np.empty(0, np.int64))
        assert new_index.size == 0 and local.size == 0


def test_gather_rows_matches_numpy():
    rs = np.random.default_rng(6)
    table = rs.random((50, 4)).astype(np.float32)
    rows = rs.integers(0, 50, 80)
    assert np.array_equal(cpu.gather_rows(table, rows), table[rows])
    assert np.array_equal(cpu.gather_rows(table[:, 1].copy(), rows), table[rows, 1])
    assert np.array_equal(reference.gather_rows(table, rows), table[rows])


def test_gather_rows_across_blocks_dtypes_and_layouts():
    """Several parallel blocks with rows prefetched ahead; tables of other widths, dtypes and a
    non-C-contiguous one (no prefetch there) give the same rows as NumPy."""
    rs = np.random.default_rng(7)
    for table in (rs.random((5000, 64)).astype(np.float32), rs.integers(0, 9, (5000, 3)),
                  np.asfortranarray(rs.random((5000, 5))), rs.random((5000, 1)),
                  rs.random((5000, 7)).astype(np.float16), rs.random(5000).astype(np.float16)):
        rows = rs.integers(0, 5000, 4100)
        assert np.array_equal(cpu.gather_rows(table, rows), table[rows])
