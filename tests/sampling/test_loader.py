"""NodeLoader: epochs cover every seed once, reproducible shuffles, features attached, prefetch."""
import numpy as np
import pytest

from graphtrain.errors import ConfigError
from graphtrain.sampling.features import LocalNodeData
from graphtrain.sampling.loader import NodeLoader
from graphtrain.sampling.neighbor import NeighborSampler
from tests.sampling.graphs import random_graph


def _loader(**kw):
    g = random_graph()
    feats = np.random.default_rng(1).random((200, 4)).astype(np.float32)
    labels = np.arange(200) % 3
    sampler = NeighborSampler(g, [4, 2], backend="cpu", seed=3)
    args = dict(node_data=LocalNodeData.from_arrays(feats, labels, backend="cpu"), seed=11)
    args.update(kw)
    return NodeLoader(sampler, np.arange(0, 200, 2), 16, **args), feats, labels


def test_epoch_covers_each_seed_once_with_features_and_labels():
    loader, feats, labels = _loader()
    batches = list(loader)
    assert len(batches) == len(loader) == 7
    seen = np.concatenate([b.seeds for b in batches])
    assert sorted(seen.tolist()) == list(range(0, 200, 2))
    assert not np.array_equal(seen, np.arange(0, 200, 2))  # shuffled
    for b in batches:
        b.validate()
        assert np.array_equal(b.x, feats[b.n_id]) and np.array_equal(b.y, labels[b.seeds])


def test_epochs_differ_and_runs_reproduce():
    a, _, _ = _loader()
    b, _, _ = _loader()
    a1, a2 = list(a), list(a)
    b1 = list(b)
    assert not np.array_equal(a1[0].seeds, a2[0].seeds)
    for x, y in zip(a1, b1):
        assert np.array_equal(x.n_id, y.n_id) and np.array_equal(x.e_id, y.e_id)
    c, _, _ = _loader(prefetch=0)
    for x, y in zip(a1, list(c)):
        assert np.array_equal(x.n_id, y.n_id) and np.array_equal(x.edge_index, y.edge_index)


@pytest.mark.parametrize("threads,prefetch", [(2, 0), (3, 1), (2, 5)])
def test_sampling_threads_give_the_same_batches_in_order(threads, prefetch):
    serial = list(_loader(prefetch=0)[0])
    parallel = list(_loader(prefetch=prefetch, sampling_threads=threads)[0])
    assert len(parallel) == len(serial)
    for x, y in zip(serial, parallel):
        assert np.array_equal(x.seeds, y.seeds) and np.array_equal(x.n_id, y.n_id)
        assert np.array_equal(x.edge_index, y.edge_index) and np.array_equal(x.x, y.x)


def test_run_ahead_puts_job_i_on_thread_i_mod_t():
    import threading

    from graphtrain.sampling.loader import run_ahead

    def where(i):
        return i, threading.current_thread().name

    got = list(run_ahead(where, [(i,) for i in range(9)], ahead=1, threads=3))
    assert [i for i, _ in got] == list(range(9))
    names = [n for _, n in got]
    assert len(set(names)) == 3
    assert all(names[i] == names[i % 3] for i in range(9))
    assert all(n.startswith("graphtrain-loader-") for n in names)
    assert [i for i, _ in run_ahead(where, [(i,) for i in range(4)], ahead=0, threads=1)] == [0, 1, 2, 3]


def test_drop_last_and_no_shuffle_and_early_stop():
    loader, _, _ = _loader(drop_last=True, shuffle=False)
    batches = list(loader)
    assert len(batches) == 6 and all(b.batch_size == 16 for b in batches)
    assert batches[0].seeds.tolist() == list(range(0, 32, 2))
    it = iter(_loader(prefetch=3)[0])
    next(it)
    it.close()  # stopping early shuts the prefetch thread down
    done = _loader()[0]
    assert list(done.batches(0, len(done))) == []  # resuming after the last batch: nothing left


def test_temporal_loader_passes_seed_times():
    g = random_graph()
    sampler = NeighborSampler(g, [3], temporal="uniform", backend="cpu")
    seeds, times = np.arange(20), np.arange(20) * 50
    batches = list(NodeLoader(sampler, seeds, 8, seed_time=times))
    for b in batches:
        assert np.array_equal(b.seed_time, b.seeds * 50)
        assert np.all(g.time[b.e_id] <= b.node_time[b.edge_index[1]])


def test_bad_arguments():
    g = random_graph()
    sampler = NeighborSampler(g, [3], backend="cpu")
    with pytest.raises(ConfigError, match="batch_size"):
        NodeLoader(sampler, [1, 2], 0)
    with pytest.raises(ConfigError, match="prefetch"):
        NodeLoader(sampler, [1, 2], 4, prefetch=-1)
    with pytest.raises(ConfigError, match="sampling_threads must"):
        NodeLoader(sampler, [1, 2], 4, sampling_threads=0)
    with pytest.raises(ConfigError, match="out of range"):
        NodeLoader(sampler, [1, 2000], 4)
    with pytest.raises(ConfigError, match="needs seed_time"):
        NodeLoader(NeighborSampler(g, [3], temporal="uniform"), [1, 2], 4)
