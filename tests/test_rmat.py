import numpy as np

from graphtrain.rmat import rmat_chunks, rmat_edges, scramble_ids


def test_chunks_are_independent_of_cut():
    whole = rmat_edges(10, 0, 5000, seed=3)
    parts = list(rmat_chunks(10, 5000, chunk_edges=1234, seed=3))
    assert np.array_equal(np.concatenate([p[0] for p in parts]), whole[0])
    assert np.array_equal(np.concatenate([p[1] for p in parts]), whole[1])
    assert not np.array_equal(rmat_edges(10, 0, 5000, seed=4)[0], whole[0])


def test_range_and_skew():
    src, dst = rmat_edges(12, 0, 200_000, seed=0)
    assert src.min() >= 0 and max(src.max(), dst.max()) < 2**12
    deg = np.bincount(dst, minlength=2**12)
    # Graph500 parameters: in-degree is heavily skewed (max far above mean), many vertices isolated
    assert deg.max() > 50 * deg.mean()
    # quadrant frequencies at the top level match a, b, c, d
    top_u, top_v = src >> 11, dst >> 11
    freq = np.bincount(top_u * 2 + top_v, minlength=4) / src.size
    assert np.allclose(freq, [0.57, 0.19, 0.19, 0.05], atol=0.01)


def test_scramble_is_injective_and_sparse():
    ids = np.arange(1 << 20)
    s = scramble_ids(ids, seed=1)
    assert np.unique(s).size == ids.size
    assert s.min() >= 0 and s.max() > 2**50  # spread over the 62-bit range
    assert not np.array_equal(s, scramble_ids(ids, seed=2))
