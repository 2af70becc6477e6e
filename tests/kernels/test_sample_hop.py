"""One-hop sampling: CPU kernel == NumPy reference bit for bit, and the semantics of every mode."""
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from graphtrain.kernels import cpu, get_backend, reference
from graphtrain.kernels.hop_graph import HopGraph, with_weight_prefix

from tests.kernels.graphs import MODES, mode_kwargs, random_entries, random_hop_graph
from tests.numba_threads import results_at_thread_counts


def _same(a, b):
    return all(np.array_equal(x, y) for x, y in zip(a, b))


def _split(counts, arr):
    return np.split(arr, np.cumsum(counts)[:-1])


@pytest.mark.parametrize("time_sorted", [True, False])
@pytest.mark.parametrize("mode", sorted(MODES))
@pytest.mark.parametrize("fanout", [1, 4, 25])
@pytest.mark.parametrize("entries", [3, 515])  # blocks of 256 entries, the last shorter than the source-read lag
def test_cpu_matches_reference(mode, time_sorted, fanout, entries):
    hg = random_hop_graph(time_sorted=time_sorted)
    local, keys, bounds = random_entries(hg, entries)
    kw = mode_kwargs(mode, bounds)
    ref = reference.sample_hop(hg, local, keys, fanout, **kw)
    out = cpu.sample_hop(hg, local, keys, fanout, **kw)
    assert _same(ref, out)
    assert out[0].sum() > 0  # the comparison is not vacuous


def _thread_case():
    hg = random_hop_graph(num_nodes=300, num_edges=6000)
    local, keys, bounds = random_entries(hg, 2000)
    return hg, local, keys, bounds


def _every_mode_on_cpu():
    """The CPU kernel's result in every mode (called at several thread counts by test_cpu_result_independent_of_thread_count)."""
    hg, local, keys, bounds = _thread_case()
    return {mode: cpu.sample_hop(hg, local, keys, 5, **mode_kwargs(mode, bounds)) for mode in MODES}


def test_cpu_result_independent_of_thread_count():
    """1 and 4 Numba threads (set explicitly, whatever the machine's core count) give the reference's result."""
    by_threads = results_at_thread_counts("tests.kernels.test_sample_hop:_every_mode_on_cpu", (1, 4))
    hg, local, keys, bounds = _thread_case()
    for mode in MODES:
        ref = reference.sample_hop(hg, local, keys, 5, **mode_kwargs(mode, bounds))
        for threads, results in by_threads.items():
            assert _same(results[mode], ref), (mode, threads)


def test_entry_result_depends_only_on_its_key():
    """Sampling an entry alone or inside any batch gives the same edges (what the distributed sampler relies on)."""
    hg = random_hop_graph()
    local, keys, _ = random_entries(hg, 200)
    counts, nbr, eid = cpu.sample_hop(hg, local, keys, 6)
    per_nbr, per_eid = _split(counts, nbr), _split(counts, eid)
    order = np.random.default_rng(3).permutation(200)[:50]
    c2, n2, e2 = cpu.sample_hop(hg, local[order], keys[order], 6)
    for i, (nb, eb) in zip(order, zip(_split(c2, n2), _split(c2, e2))):
        assert np.array_equal(nb, per_nbr[i]) and np.array_equal(eb, per_eid[i])


@pytest.mark.parametrize("backend", ["reference", "cpu"])
def test_uniform_without_replacement_semantics(backend):
    k = get_backend(backend)
    hg = random_hop_graph()
    local, keys, _ = random_entries(hg, 400)
    counts, nbr, eid = k.sample_hop(hg, local, keys, 5)
    deg = hg.indptr[local + 1] - hg.indptr[local]
    assert np.array_equal(counts, np.minimum(deg, 5))
    for v, e, s in zip(local, _split(counts, eid), _split(counts, nbr)):
        pos = e - hg.edge_start
        assert np.unique(pos).size == pos.size  # distinct edges
        assert np.all((pos >= hg.indptr[v]) & (pos < hg.indptr[v + 1]))  # in-edges of v
        assert np.array_equal(hg.src[pos], s)
        if hg.indptr[v + 1] - hg.indptr[v] <= 5:  # all in-edges when the degree is small
            assert np.array_equal(np.sort(pos), np.arange(hg.indptr[v], hg.indptr[v + 1]))


def test_with_replacement_draws_fanout_edges_except_on_isolated_nodes():
    hg = random_hop_graph()
    local, keys, _ = random_entries(hg, 400)
    counts, _, eid = cpu.sample_hop(hg, local, keys, 7, replace=True)
    deg = hg.indptr[local + 1] - hg.indptr[local]
    assert np.array_equal(counts, np.where(deg > 0, 7, 0))
    assert (deg == 0).any() and (deg > 0).any()


@settings(max_examples=40, deadline=None)
@given(seed=st.integers(0, 10_000), strict=st.booleans(), recent=st.booleans(), sorted_=st.booleans(), fanout=st.integers(1, 12))
def test_temporal_never_returns_a_future_edge(seed, strict, recent, sorted_, fanout):
    hg = random_hop_graph(num_nodes=40, num_edges=500, seed=seed, time_sorted=sorted_)
    local, keys, bounds = random_entries(hg, 120, seed=seed + 1)
    counts, _, eid = cpu.sample_hop(hg, local, keys, fanout, time_bound=bounds, strict=strict, recent=recent)
    t = hg.time[eid - hg.edge_start]
    b = np.repeat(bounds, counts)
    assert np.all(t < b) if strict else np.all(t <= b)
    # and every entry gets min(fanout, #eligible) edges: nothing eligible is withheld
    for v, bound, c in zip(local, bounds, counts):
        tt = hg.time[hg.indptr[v] : hg.indptr[v + 1]]
        eligible = int(np.sum(tt < bound if strict else tt <= bound))
        assert c == min(fanout, eligible)


def test_recent_returns_the_most_recent_edges_first():
    hg = random_hop_graph(time_sorted=False)
    local, keys, bounds = random_entries(hg, 200)
    counts, _, eid = cpu.sample_hop(hg, local, keys, 3, time_bound=bounds, recent=True)
    for v, bound, e in zip(local, bounds, _split(counts, eid)):
        seg = np.arange(hg.indptr[v], hg.indptr[v + 1])
        seg = seg[hg.time[seg] <= bound]
        expected = sorted(seg, key=lambda p: (hg.time[p], p), reverse=True)[:3]
        assert (e - hg.edge_start).tolist() == list(expected)


def test_weighted_never_draws_zero_weight_edges_and_skips_all_zero_entries():
    hg = random_hop_graph()
    w = hg.weight.copy()
    w[hg.indptr[3] : hg.indptr[4]] = 0.0  # node 3: every in-edge has weight 0
    hg = with_weight_prefix(hg._replace(weight=w))
    local, keys, _ = random_entries(hg, 300)
    local[:5] = 3
    for replace in (False, True):
        counts, _, eid = cpu.sample_hop(hg, local, keys, 4, use_weight=True, replace=replace)
        assert np.all(hg.weight[eid - hg.edge_start] > 0)
        assert np.all(counts[:5] == 0)
        if not replace:
            for e in _split(counts, eid):
                assert np.unique(e).size == e.size


def _star(weights, time=None):
    """One destination (local 0) whose in-edges have the given weights."""
    d = len(weights)
    return with_weight_prefix(HopGraph(np.array([0, d], np.int64), np.arange(d, dtype=np.int64) + 1, 0,
                                       np.asarray(weights, np.float64), time, time is not None))


def _chi2_ok(observed, expected, critical):
    chi2 = float(((observed - expected) ** 2 / expected).sum())
    return chi2 < critical, chi2


def test_uniform_without_replacement_is_uniform():
    d, k, trials = 10, 3, 20_000
    hg = _star(np.ones(d))
    keys = np.arange(trials, dtype=np.uint64) * np.uint64(7919) + np.uint64(13)
    _, nbr, _ = cpu.sample_hop(hg, np.zeros(trials, np.int64), keys, k)
    subsets = np.sort(nbr.reshape(trials, k), axis=1)
    assert np.all(subsets[:, 0] < subsets[:, 1]) and np.all(subsets[:, 1] < subsets[:, 2])
    inclusion = np.bincount(nbr - 1, minlength=d)
    ok, chi2 = _chi2_ok(inclusion, np.full(d, trials * k / d), 27.9)  # 9 dof, p = 0.001
    assert ok, chi2
    # every 3-subset equally likely (120 subsets; 119 dof, p = 0.001 -> 173.6)
    code = subsets[:, 0] * 100 + subsets[:, 1] * 10 + subsets[:, 2]
    _, per_subset = np.unique(code, return_counts=True)
    assert per_subset.size == 120
    ok, chi2 = _chi2_ok(per_subset, np.full(120, trials / 120), 173.6)
    assert ok, chi2


def test_weighted_with_replacement_is_proportional_to_weight():
    w = np.array([1.0, 2.0, 0.0, 3.0, 4.0])
    trials = 4000
    hg = _star(w)
    keys = np.arange(trials, dtype=np.uint64) + np.uint64(99)
    _, nbr, _ = cpu.sample_hop(hg, np.zeros(trials, np.int64), keys, 5, use_weight=True, replace=True)
    counts = np.bincount(nbr - 1, minlength=5)
    assert counts[2] == 0
    nz = w > 0
    ok, chi2 = _chi2_ok(counts[nz], counts.sum() * w[nz] / w.sum(), 16.3)  # 3 dof, p = 0.001
    assert ok, chi2


def test_weighted_without_replacement_follows_successive_sampling():
    """k = 2 of 4: P(pair {a, b}) = w_a/W * w_b/(W - w_a) + w_b/W * w_a/(W - w_b)."""
    w = np.array([1.0, 2.0, 3.0, 6.0])
    W = w.sum()
    trials = 30_000
    hg = _star(w)
    keys = np.arange(trials, dtype=np.uint64) * np.uint64(31) + np.uint64(5)
    _, nbr, _ = cpu.sample_hop(hg, np.zeros(trials, np.int64), keys, 2, use_weight=True)
    pairs = nbr.reshape(trials, 2) - 1
    assert np.all(pairs[:, 0] < pairs[:, 1])  # distinct, ascending positions
    observed, expected = [], []
    for a in range(4):
        for b in range(a + 1, 4):
            observed.append(np.sum((pairs[:, 0] == a) & (pairs[:, 1] == b)))
            expected.append(trials * (w[a] / W * w[b] / (W - w[a]) + w[b] / W * w[a] / (W - w[b])))
    ok, chi2 = _chi2_ok(np.array(observed), np.array(expected), 20.5)  # 5 dof, p = 0.001
    assert ok, chi2


def test_empty_batch_and_graph_without_edges():
    hg = HopGraph(np.zeros(4, np.int64), np.empty(0, np.int64), 0)
    for backend in ("reference", "cpu"):
        counts, nbr, eid = get_backend(backend).sample_hop(hg, np.array([0, 2]), np.array([1, 2], np.uint64), 3)
        assert counts.tolist() == [0, 0] and nbr.size == 0 and eid.size == 0
        counts, nbr, eid = get_backend(backend).sample_hop(hg, np.empty(0, np.int64), np.empty(0, np.uint64), 3)
        assert counts.size == 0 and nbr.size == 0


@settings(max_examples=60, deadline=None)
@given(
    exponents=st.lists(st.integers(-300, 300), min_size=1, max_size=60),
    zeros=st.lists(st.booleans(), min_size=60, max_size=60),
    k=st.integers(1, 12),
    replace=st.booleans(),
    seed=st.integers(0, 2**32),
)
def test_weighted_extreme_weights_agree_and_stay_valid(exponents, zeros, k, replace, seed):
    """Weights spanning 600 orders of magnitude (rounding stress for the running sums): CPU and
    reference agree exactly, draw only positive weights, and never repeat without replacement."""
    w = np.array([0.0 if z else 10.0 ** e for e, z in zip(exponents, zeros)])
    hg = _star(w)
    keys = np.arange(64, dtype=np.uint64) * np.uint64(0x9E3779B97F4A7C15) + np.uint64(seed)
    local = np.zeros(64, dtype=np.int64)
    got = cpu.sample_hop(hg, local, keys, k, use_weight=True, replace=replace)
    ref = reference.sample_hop(hg, local, keys, k, use_weight=True, replace=replace)
    for a, b in zip(got, ref):
        assert np.array_equal(a, b)
    counts, _, eid = got
    positive = int((w > 0).sum())
    assert np.all(w[eid] > 0)
    if replace:
        assert np.all(counts == (k if positive else 0))
    else:
        assert np.all(counts == min(k, positive))
        for e in _split(counts, eid):
            assert np.unique(e).size == e.size


def test_weighted_hub_with_few_positive_weights_takes_them_all():
    w = np.zeros(100_000)
    w[[7, 50_000, 99_999]] = [1.0, 2.0, 3.0]
    hg = _star(w)
    counts, _, eid = cpu.sample_hop(hg, np.zeros(3, np.int64), np.arange(3, dtype=np.uint64), 5, use_weight=True)
    assert counts.tolist() == [3, 3, 3]
    assert eid.tolist() == [7, 50_000, 99_999] * 3
