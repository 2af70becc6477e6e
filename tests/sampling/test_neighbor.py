"""NeighborSampler: mini-batch layout, determinism, backends, weighted draws, temporal safety, the hop boundary, bad input."""
import itertools
from collections import Counter

import numba
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import stats

from graphtrain.errors import ConfigError
from graphtrain.graph import CSCGraph
from graphtrain.partition.book import RangePartitionBook
from graphtrain.sampling.hop import HopResult, HopSampler, LocalHopSampler
from graphtrain.sampling.neighbor import NeighborSampler
from tests.numba_threads import results_at_thread_counts
from tests.sampling.graphs import check_batch_against_graph, random_graph, range_slice


def _same_batch(a, b):
    assert np.array_equal(a.n_id, b.n_id)
    assert np.array_equal(a.edge_index, b.edge_index)
    assert np.array_equal(a.e_id, b.e_id)
    assert a.num_sampled_nodes == b.num_sampled_nodes and a.num_sampled_edges == b.num_sampled_edges
    assert (a.node_time is None) == (b.node_time is None)
    if a.node_time is not None:
        assert np.array_equal(a.node_time, b.node_time)


def test_layout_and_edges():
    g = random_graph()
    s = NeighborSampler(g, [5, 3], backend="cpu", seed=1)
    seeds = np.array([3, 17, 5, 120, 17])
    b = s.sample(seeds)
    assert b.seeds.tolist() == seeds.tolist() and b.num_hops == 2
    check_batch_against_graph(b, g, [5, 3])
    # hop 1: every seed gets min(in-degree, 5) edges
    deg = g.in_degree()[seeds]
    assert np.array_equal(np.bincount(b.edge_index[1, : b.num_sampled_edges[0]], minlength=5), np.minimum(deg, 5))
    # nodes are unique apart from the repeated seed
    assert np.unique(b.n_id).size == b.num_nodes - 1


BACKEND_CASES = [{}, {"replace": True}, {"weight": "weight"}, {"temporal": "uniform"}, {"temporal": "recent", "strict": True}]


def _backend_case(kw, backend):
    g = random_graph()
    seeds = np.array([1, 40, 7, 99, 150, 7])
    times = np.array([500, 900, 100, 700, 300, 800]) if "temporal" in kw else None
    return NeighborSampler(g, [4, 3], backend=backend, seed=9, **kw).sample(seeds, times, batch_index=3)


def _cpu_batches():
    """The CPU batch of every backend case (called at several thread counts)."""
    return [_backend_case(kw, "cpu") for kw in BACKEND_CASES]


@pytest.mark.parametrize("kw", BACKEND_CASES)
def test_backends_give_identical_batches(kw):
    ref = _backend_case(kw, "reference")
    _same_batch(ref, _backend_case(kw, "cpu"))
    assert ref.num_edges > 0


def test_cpu_batches_do_not_depend_on_the_thread_count():
    """1 and 4 Numba threads, set explicitly whatever the machine's core count, give the reference batch."""
    by_threads = results_at_thread_counts("tests.sampling.test_neighbor:_cpu_batches", (1, 4))
    for kw, ref in zip(BACKEND_CASES, (_backend_case(kw, "reference") for kw in BACKEND_CASES)):
        for batches in by_threads.values():
            _same_batch(ref, batches[BACKEND_CASES.index(kw)])


STAR_WEIGHTS = np.array([1.0, 2.0, 0.0, 3.0, 6.0])


def _stars(n):
    """``n`` destinations (nodes ``0 .. n-1``), each with in-edges from nodes ``n .. n+4`` weighted ``STAR_WEIGHTS``:
    every destination is an independent draw from the same distribution (its key differs)."""
    d = STAR_WEIGHTS.size
    g, _ = CSCGraph.from_edges(n + np.tile(np.arange(d), n), np.repeat(np.arange(n), d), n + d,
                               {"weight": np.tile(STAR_WEIGHTS, n)})
    return g


def _outcomes(n, k, replace, **kw):
    """What one hop of fanout ``k`` draws at each of ``n`` destinations, and the probability of every outcome under
    the reference kernels' semantics (:mod:`graphtrain.kernels.reference`): with replacement (or ``k = 1``) every
    draw is an edge ``i`` with probability ``w_i / sum(w)``; without replacement ``k`` distinct edges are drawn one
    by one, each in proportion to its weight among those left, and the outcome is the set."""
    g = _stars(n)
    b = NeighborSampler(g, [k], replace=replace, **kw).sample(np.arange(n))
    slot = g.src[b.e_id] - n  # which of the five in-edges each sampled edge is
    w = STAR_WEIGHTS
    if replace or k == 1:
        return np.bincount(slot, minlength=w.size), w / w.sum()
    assert np.array_equal(np.bincount(b.edge_index[1], minlength=n), np.full(n, k))  # k edges each, entry by entry
    subsets = sorted(itertools.combinations(range(w.size), k))
    observed = Counter(tuple(sorted(row)) for row in slot.reshape(n, k).tolist())
    probs = dict.fromkeys(subsets, 0.0)
    for seq in itertools.permutations(np.flatnonzero(w > 0).tolist(), k):
        p, left = 1.0, w.sum()
        for i in seq:
            p, left = p * w[i] / left, left - w[i]
        probs[tuple(sorted(seq))] += p
    return np.array([observed[s] for s in subsets]), np.array([probs[s] for s in subsets])


def _fit_pvalue(observed, probs):
    """Pearson chi-square p-value of ``observed`` counts against the outcome probabilities ``probs`` (outcomes of
    probability 0 left out: the caller checks they never occur)."""
    pos = probs > 0
    obs = observed[pos]
    return stats.chisquare(obs, probs[pos] / probs[pos].sum() * obs.sum()).pvalue


@pytest.mark.parametrize("k, replace", [(1, False), (2, False), (3, False), (3, True)])
def test_weighted_sampling_follows_the_reference_distribution(k, replace):
    """Chi-square of what the CPU sampler draws against the exact outcome probabilities of the reference
    semantics, and against the reference backend's draws under another seed; uniform draws must fail the test."""
    n = 20_000
    observed, probs = _outcomes(n, k, replace, weight="weight", backend="cpu", seed=1)
    assert observed[probs == 0].sum() == 0  # a zero-weight edge is never drawn
    assert _fit_pvalue(observed, probs) > 1e-3
    ref, _ = _outcomes(n // 4, k, replace, weight="weight", backend="reference", seed=2)
    both = np.stack([observed, ref])[:, probs > 0]
    assert stats.chi2_contingency(both).pvalue > 1e-3
    # negative control: uniform draws over the same edges are rejected (the test can fail)
    uniform, _ = _outcomes(n, k, replace, backend="cpu", seed=1)
    assert _fit_pvalue(uniform, probs) < 1e-6


@pytest.mark.parametrize("kw", [{}, {"replace": True}, {"weight": "weight"}, {"temporal": "uniform"},
                                {"temporal": "recent", "strict": True}, {"temporal": "uniform", "weight": "weight"}])
def test_whole_batch_kernel_equals_hop_by_hop_sampling(kw):
    """On one Numba thread a local graph is sampled by one whole-batch kernel call; it must return
    exactly the hop-by-hop batch (a partition graph, repeated seeds, three hops)."""
    rs = np.random.default_rng(3)
    src, dst = rs.integers(100, 200, 3000), 100 + (rs.pareto(1.0, 3000) * 5).astype(np.int64) % 100
    g, _ = CSCGraph.from_edges(src, dst, 200, {"time": rs.integers(0, 1000, 3000), "weight": rs.random(3000) + 0.01})
    part = range_slice(g, 100, 200)  # nodes [100, 200), all their in-edges from the same range
    seeds = 100 + np.array([1, 40, 7, 99, 50, 7, 3, 40])
    times = np.array([500, 900, 100, 700, 300, 800, 999, 900]) if "temporal" in kw else None
    sampler = NeighborSampler(part, [4, 3, 2], backend="cpu", seed=5, **kw)
    assert sampler._whole_batch
    before = numba.get_num_threads()
    try:
        numba.set_num_threads(1)
        for batch_index in (0, 7):
            whole = sampler.sample(seeds, times, batch_index=batch_index)
            sampler._whole_batch = False
            try:
                hop_by_hop = sampler.sample(seeds, times, batch_index=batch_index)
            finally:
                sampler._whole_batch = True
            _same_batch(hop_by_hop, whole)
            assert whole.num_sampled_edges[2] > 0
    finally:
        numba.set_num_threads(before)


def test_whole_batch_kernel_refuses_nodes_of_other_partitions():
    part = range_slice(random_graph(), 100, 200)
    before = numba.get_num_threads()
    try:
        numba.set_num_threads(1)
        with pytest.raises(ConfigError, match=r"outside this graph's node range \[100, 200\)"):
            NeighborSampler(part, [3, 3], backend="cpu").sample(np.arange(100, 200))  # hop 2 reaches [0, 100)
    finally:
        numba.set_num_threads(before)


@pytest.mark.cudasim
@pytest.mark.filterwarnings("ignore:overflow encountered:RuntimeWarning")
def test_cuda_backend_gives_the_same_batch():
    g = random_graph(num_nodes=30, num_edges=150)
    seeds, times = np.array([1, 2, 3]), np.array([400, 800, 100])
    for kw, t in (({}, None), ({"temporal": "uniform"}, times)):
        ref = NeighborSampler(g, [3, 2], backend="reference", seed=2, **kw).sample(seeds, t)
        _same_batch(ref, NeighborSampler(g, [3, 2], backend="cuda", seed=2, **kw).sample(seeds, t))


def test_same_seed_same_batch_and_batches_differ():
    g = random_graph()
    seeds = np.arange(0, 200, 7)
    a = NeighborSampler(g, [6, 4], backend="cpu", seed=5).sample(seeds, batch_index=0)
    _same_batch(a, NeighborSampler(g, [6, 4], backend="cpu", seed=5).sample(seeds, batch_index=0))
    assert not np.array_equal(a.e_id, NeighborSampler(g, [6, 4], backend="cpu", seed=5).sample(seeds, batch_index=1).e_id)
    assert not np.array_equal(a.e_id, NeighborSampler(g, [6, 4], backend="cpu", seed=6).sample(seeds, batch_index=0).e_id)


@settings(max_examples=25, deadline=None)
@given(seed=st.integers(0, 1000), strict=st.booleans(), mode=st.sampled_from(["uniform", "recent"]))
def test_temporal_batches_never_contain_future_edges(seed, strict, mode):
    g = random_graph(seed=seed % 7)
    rs = np.random.default_rng(seed)
    seeds = rs.integers(0, 200, 20)
    times = rs.integers(0, 1000, 20)
    b = NeighborSampler(g, [4, 3, 2], temporal=mode, strict=strict, backend="cpu", seed=seed).sample(seeds, times)
    check_batch_against_graph(b, g, [4, 3, 2])
    edge_t = g.time[b.e_id]
    bound = b.node_time[b.edge_index[1]]
    assert np.all(edge_t < bound) if strict else np.all(edge_t <= bound)
    # every node carries its seed's time: sources inherit the time of the node they were sampled for
    assert np.array_equal(b.node_time[b.edge_index[0]], bound)
    # a (node, time) pair appears once except for repeated seeds
    pairs = set(zip(b.n_id[b.batch_size :].tolist(), b.node_time[b.batch_size :].tolist()))
    seed_pairs = set(zip(b.seeds.tolist(), b.seed_time.tolist()))
    assert len(pairs) == b.num_nodes - b.batch_size and not pairs & seed_pairs


def test_temporal_nodes_are_not_shared_between_seed_times():
    # node 1 has in-edges at t=1 and t=10; seeds 2 and 3 both point to... build explicitly
    src = np.array([0, 4, 1, 1])
    dst = np.array([1, 1, 2, 3])
    t = np.array([1, 10, 5, 20])
    from graphtrain.graph import CSCGraph

    g, _ = CSCGraph.from_edges(src, dst, 5, {"time": t})
    b = NeighborSampler(g, [5, 5], temporal="uniform", backend="cpu").sample([2, 3], [5, 20])
    # node 1 reached from seed 2 (t=5) and seed 3 (t=20): two entries; only the t=20 one sees edge 4->1
    ones = np.nonzero(b.n_id == 1)[0]
    assert sorted(b.node_time[ones].tolist()) == [5, 20]
    hop2 = slice(b.num_sampled_edges[0], None)
    srcs_of = {int(b.node_time[i]): sorted(b.n_id[b.edge_index[0, hop2][b.edge_index[1, hop2] == i]].tolist()) for i in ones}
    assert srcs_of == {5: [0], 20: [0, 4]}


class RoutingHopSampler(HopSampler):
    """Test double of the distributed sampler: splits the frontier by owner, asks each partition, merges."""

    def __init__(self, parts, book):
        self.parts = parts
        self.book = book

    @property
    def num_global_nodes(self):
        return self.book.num_nodes

    def check_options(self, options):
        for p in self.parts:
            p.check_options(options)

    def check_nodes(self, global_nodes):
        pass

    def sample_hop(self, global_nodes, keys, node_time, options):
        owner = self.book.node_part(global_nodes)
        per_entry_nbr = [None] * global_nodes.size
        per_entry_eid = [None] * global_nodes.size
        for p, sampler in enumerate(self.parts):
            idx = np.nonzero(owner == p)[0]
            t = None if node_time is None else node_time[idx]
            counts, nbr, eid = sampler.sample_hop(global_nodes[idx], keys[idx], t, options)
            for i, a, b in zip(idx, np.split(nbr, np.cumsum(counts)[:-1]), np.split(eid, np.cumsum(counts)[:-1])):
                per_entry_nbr[i], per_entry_eid[i] = a, b
        counts = np.array([a.size for a in per_entry_nbr], np.int64)
        return HopResult(counts, np.concatenate(per_entry_nbr), np.concatenate(per_entry_eid))


@pytest.mark.parametrize("kw", [{}, {"weight": "weight"}, {"temporal": "uniform"}])
def test_frontier_split_by_owner_gives_the_single_process_batch(kw):
    """What issue 4's distributed sampler relies on: keys travel with the nodes, so owners reproduce the batch."""
    g = random_graph()
    bounds = [0, 70, 71, 200]
    book = RangePartitionBook(bounds, [int(g.indptr[b]) for b in bounds])
    parts = [LocalHopSampler(range_slice(g, bounds[p], bounds[p + 1]), "cpu") for p in range(3)]
    seeds = np.array([3, 100, 70, 150, 12])
    times = np.array([300, 600, 900, 200, 1000]) if kw else None
    if "temporal" not in kw:
        times = None
    whole = NeighborSampler(g, [5, 4], backend="cpu", seed=4, **kw).sample(seeds, times, batch_index=2)
    split = NeighborSampler(RoutingHopSampler(parts, book), [5, 4], backend="cpu", seed=4, **kw).sample(seeds, times, batch_index=2)
    _same_batch(whole, split)
    assert len(set(book.node_part(whole.n_id).tolist())) == 3  # the batch really spans the partitions


def test_local_hop_sampler_refuses_nodes_of_other_partitions():
    g = random_graph()
    part = range_slice(g, 100, 200)
    s = NeighborSampler(part, [3], backend="cpu")
    s.sample([150, 199])
    with pytest.raises(ConfigError, match=r"node 5 is outside this graph's node range \[100, 200\)"):
        s.sample([150, 5])
    s2 = NeighborSampler(part, [3, 3], backend="cpu")
    with pytest.raises(ConfigError, match="outside this graph's node range"):
        s2.sample(np.arange(100, 200))  # hop 2 reaches sources in [0, 100)


@pytest.mark.parametrize(
    "fanouts, match",
    [([], "at least one hop"), ([0], "positive integer"), ([5, -1], "hop 2"), ([1.5], "positive integer"),
     ("15", "list of positive integers"), ([True], "positive integer"), (None, "list of positive integers")],
)
def test_bad_fanouts(fanouts, match):
    with pytest.raises(ConfigError, match=match):
        NeighborSampler(random_graph(), fanouts)


def test_bad_options():
    g = random_graph()
    with pytest.raises(ConfigError, match="temporal must be"):
        NeighborSampler(g, [2], temporal="future")
    with pytest.raises(ConfigError, match="strict=True only applies"):
        NeighborSampler(g, [2], strict=True)
    with pytest.raises(ConfigError, match="cannot sample with replacement"):
        NeighborSampler(g, [2], temporal="recent", replace=True)
    with pytest.raises(ConfigError, match="cannot be weighted"):
        NeighborSampler(g, [2], temporal="recent", weight="weight")
    with pytest.raises(ConfigError, match="edge column 'amount'"):
        NeighborSampler(g, [2], weight="amount")
    with pytest.raises(ConfigError, match="backend must be one of"):
        NeighborSampler(g, [2], backend="tpu")
    no_time = random_graph()
    no_time.edge_attrs.pop("time")
    with pytest.raises(ConfigError, match="needs a 'time' edge column"):
        NeighborSampler(no_time, [2], temporal="uniform")


@pytest.mark.parametrize("bad, match", [(-0.5, "edge 17 has -0.5"), (np.nan, "edge 17 has nan"), (np.inf, "edge 17 has inf")])
def test_bad_weights(bad, match):
    g = random_graph()
    g.edge_attrs["weight"] = g.edge_attrs["weight"].copy()
    g.edge_attrs["weight"][17] = bad
    with pytest.raises(ConfigError, match=match):
        NeighborSampler(g, [2], weight="weight")


def test_bad_seeds():
    g = random_graph()
    s = NeighborSampler(g, [2], backend="cpu")
    with pytest.raises(ConfigError, match=r"seed node 200 is out of range \[0, 200\)"):
        s.sample([1, 200])
    with pytest.raises(ConfigError, match="out of range"):
        s.sample([-1])
    with pytest.raises(ConfigError, match="must be integers"):
        s.sample([1.0, 2.0])
    with pytest.raises(ConfigError, match="must not be empty"):
        s.sample([])
    with pytest.raises(ConfigError, match="1-D"):
        s.sample([[1, 2]])
    with pytest.raises(ConfigError, match="not temporal"):
        s.sample([1], seed_time=[3])
    with pytest.raises(ConfigError, match="batch_index"):
        s.sample([1], batch_index=-1)
    t = NeighborSampler(g, [2], temporal="uniform", backend="cpu")
    with pytest.raises(ConfigError, match="needs seed_time"):
        t.sample([1, 2])
    with pytest.raises(ConfigError, match="2 entries for 3 seeds"):
        t.sample([1, 2, 3], [5, 6])
    with pytest.raises(ConfigError, match="seed_time must be integers"):
        t.sample([1, 2], [5.5, 6.0])


def test_pyg_layers_consume_a_sampled_batch():
    import torch
    from torch_geometric.nn import GATConv, GCNConv, SAGEConv
    from torch_geometric.utils import trim_to_layer

    g = random_graph()
    b = NeighborSampler(g, [5, 3], backend="cpu").sample(np.arange(10))
    b.x = np.random.default_rng(0).random((b.num_nodes, 8)).astype(np.float32)
    b.y = np.zeros(10, np.int64)
    data = b.to_pyg()
    for conv1, conv2 in ((SAGEConv(8, 16), SAGEConv(16, 4)), (GATConv(8, 16), GATConv(16, 4)), (GCNConv(8, 16), GCNConv(16, 4))):
        x, ei = data.x, data.edge_index
        for layer, conv in enumerate((conv1, conv2)):
            x, ei, _ = trim_to_layer(layer, data.num_sampled_nodes, data.num_sampled_edges, x, ei)
            x = torch.relu(conv(x, ei))
        out = x[: data.batch_size]
        assert out.shape == (10, 4) and torch.isfinite(out).all()
