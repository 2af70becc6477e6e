import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from graphtrain.kernels import rng

u64 = st.integers(0, 2**64 - 1)


@settings(max_examples=200, deadline=None)
@given(key=u64, counter=st.integers(0, 2**40), n=st.integers(1, 2**32 - 1))
def test_numba_and_numpy_forms_agree(key, counter, n):
    k, c = np.uint64(key), np.uint64(counter)
    assert int(rng.rand_u64(k, c)) == int(rng.rand_u64_np(k, c))
    assert int(rng.combine(k, c)) == int(rng.combine_np(k, c))
    b = int(rng.rand_below(k, c, np.uint64(n)))
    assert b == int(rng.rand_below_np(k, c, n)) and 0 <= b < n
    assert rng.rand_unit(k, c) == float(rng.rand_unit_np(k, c))


def test_mix64_is_a_bijection_on_a_sample():
    x = np.arange(1_000_000, dtype=np.uint64) * np.uint64(0x10001)
    h = rng.mix64_np(x)
    assert np.unique(h).size == x.size


def test_rand_below_is_uniform():
    counts = np.bincount(rng.rand_below_np(rng.seed_key(7), np.arange(600_000, dtype=np.uint64), 6), minlength=6)
    expected = 100_000
    chi2 = ((counts - expected) ** 2 / expected).sum()
    assert chi2 < 20.5  # 5 dof, p = 0.001


def test_streams_differ_and_are_reproducible():
    a = rng.rand_u64_np(rng.combine_np(rng.seed_key(1), 5), np.arange(100, dtype=np.uint64))
    b = rng.rand_u64_np(rng.combine_np(rng.seed_key(1), 6), np.arange(100, dtype=np.uint64))
    c = rng.rand_u64_np(rng.combine_np(rng.seed_key(1), 5), np.arange(100, dtype=np.uint64))
    assert np.array_equal(a, c) and not np.array_equal(a, b)


def test_string_hash_matches_per_string_and_separates():
    words = [b"ACC-1", b"ACC-2", b"", b"ACC-1"]
    data = np.frombuffer(b"".join(words), dtype=np.uint8)
    offsets = np.concatenate([[0], np.cumsum([len(w) for w in words])]).astype(np.int64)
    h = rng.hash_strings(offsets, data)
    assert h[0] == h[3] and len({h[0], h[1], h[2]}) == 3
    assert h[1] == rng.hash_bytes(np.frombuffer(b"ACC-2", np.uint8), 0, 5)


def test_int_id_hash_is_injective():
    ids = np.array([-(2**63), -1, 0, 1, 2**63 - 1], dtype=np.int64)
    assert np.unique(rng.hash_int_ids(ids)).size == ids.size
