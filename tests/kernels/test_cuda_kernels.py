"""numba.cuda kernels == NumPy reference, bit for bit (on the CUDA simulator when there is no GPU).

These tests must run in CI: ``tests/conftest.py`` turns the simulator on when no GPU is present.
The simulator runs every GPU thread as a Python thread, so the graphs are tiny.
"""
import numpy as np
import pytest

from graphtrain.kernels import cuda as cuda_kernels
from graphtrain.kernels import reference
from tests.kernels.graphs import MODES, mode_kwargs, random_entries, random_hop_graph

# the simulator computes uint64 hashes with NumPy scalars, which warn on (intended) wrap-around
pytestmark = [pytest.mark.cudasim, pytest.mark.filterwarnings("ignore:overflow encountered:RuntimeWarning")]


def _same(a, b):
    return all(np.array_equal(x, y) for x, y in zip(a, b))


@pytest.mark.parametrize("time_sorted", [True, False])
def test_sample_hop_matches_reference_in_every_mode(time_sorted):
    hg = random_hop_graph(num_nodes=12, num_edges=90, time_sorted=time_sorted, seed=2)
    dev = cuda_kernels.to_device(hg)
    local, keys, bounds = random_entries(hg, 24, seed=3)
    for mode in sorted(MODES):
        for fanout in (2, 5):
            kw = mode_kwargs(mode, bounds)
            ref = reference.sample_hop(hg, local, keys, fanout, **kw)
            out = cuda_kernels.sample_hop(dev, local, keys, fanout, **kw)
            assert _same(ref, out), (mode, fanout)
            assert out[0].sum() > 0


def test_sample_hop_accepts_host_graph_and_empty_batch():
    hg = random_hop_graph(num_nodes=8, num_edges=30, seed=4)
    counts, nbr, eid = cuda_kernels.sample_hop(hg, np.empty(0, np.int64), np.empty(0, np.uint64), 3)
    assert counts.size == 0 and nbr.size == 0 and eid.size == 0
    local, keys, _ = random_entries(hg, 6, seed=5)
    assert _same(reference.sample_hop(hg, local, keys, 3), cuda_kernels.sample_hop(hg, local, keys, 3))


@pytest.mark.parametrize("temporal", [False, True])
def test_unique_relabel_matches_reference(temporal):
    rs = np.random.default_rng(7)
    prev = np.array([9, 2, 9], np.int64)
    cand = rs.integers(0, 15, 60).astype(np.int64)
    pt = np.array([0, 1, 1], np.int64) if temporal else None
    ct = rs.integers(0, 2, 60).astype(np.int64) if temporal else None
    ref = reference.unique_relabel(prev, cand, pt, ct)
    out = cuda_kernels.unique_relabel(prev, cand, pt, ct)
    assert _same(ref, out) and ref[0].size > 0


def test_gather_rows_matches_numpy():
    rs = np.random.default_rng(8)
    table = rs.random((10, 3)).astype(np.float32)
    rows = rs.integers(0, 10, 7)
    assert np.array_equal(cuda_kernels.gather_rows(table, rows), table[rows])
    labels = rs.integers(0, 3, 10)
    assert np.array_equal(cuda_kernels.gather_rows(labels, rows), labels[rows])
