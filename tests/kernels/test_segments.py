"""The data plane's segment reorder: answers grouped by owner back into request order."""
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from graphtrain.kernels.segments import reorder_segments


@settings(max_examples=200, deadline=None)
@given(counts=st.lists(st.integers(0, 6), max_size=40), seed=st.integers(0, 2**32 - 1))
def test_reorder_segments_puts_each_segment_at_its_request(counts, seed):
    rs = np.random.default_rng(seed)
    n = len(counts)
    order = rs.permutation(n).astype(np.int64)
    counts_g = np.array(counts, dtype=np.int64)
    nbr_g = rs.integers(0, 10**9, int(counts_g.sum()))
    eid_g = rs.integers(0, 10**9, int(counts_g.sum()))
    counts_out, nbr, eid = reorder_segments(order, counts_g, nbr_g, eid_g)
    starts_g = np.concatenate([[0], np.cumsum(counts_g)]).astype(np.int64)
    starts = np.concatenate([[0], np.cumsum(counts_out)]).astype(np.int64)
    for k in range(n):
        i = order[k]
        assert counts_out[i] == counts_g[k]
        assert np.array_equal(nbr[starts[i] : starts[i + 1]], nbr_g[starts_g[k] : starts_g[k + 1]])
        assert np.array_equal(eid[starts[i] : starts[i + 1]], eid_g[starts_g[k] : starts_g[k + 1]])


def test_reorder_segments_refuses_inconsistent_sizes():
    with pytest.raises(ValueError, match="2 requests, 2 segments of 3 values, 2 sources"):
        reorder_segments(np.array([1, 0]), np.array([1, 2]), np.arange(2), np.arange(2))
