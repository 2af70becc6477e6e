"""Stratified roles, dealing seeds out evenly, and padding to equal batch counts."""
import numpy as np
import pytest

from graphtrain.errors import ConfigError
from graphtrain.sampling.distributed import Exchange
from graphtrain.train.splits import balanced_chunk, class_counts, pad_to_batches, stratified_roles


def _roles_by_partition(labels, bounds, fractions=(0.7, 0.15, 0.15), seed=0):
    counts = np.array([class_counts(labels[a:b], 3) for a, b in zip(bounds[:-1], bounds[1:])])
    before = np.cumsum(counts, axis=0) - counts
    return np.concatenate([stratified_roles(labels[a:b], a, before[p], fractions, seed)
                           for p, (a, b) in enumerate(zip(bounds[:-1], bounds[1:]))])


def test_stratified_roles_are_exact_per_class_and_spread_over_partitions():
    rs = np.random.default_rng(0)
    labels = rs.choice([-1, 0, 0, 0, 1, 2], 5000)
    bounds = [0, 700, 700, 2100, 3900, 5000]
    roles = _roles_by_partition(labels, bounds)
    assert np.all(roles[labels < 0] == -1)
    for c in range(3):
        n = int((labels == c).sum())
        r = roles[labels == c]
        n_train = n * 7 // 10
        assert (r == 0).sum() == n_train
        assert (r == 1).sum() == (n - n_train) * 15 // 30  # val among the rest: f_val / (1 - f_train)
        assert (r == 2).sum() == n - n_train - (r == 1).sum()
        for a, b in zip(bounds[:-1], bounds[1:]):  # every partition gets its share (+-1)
            in_part = labels[a:b] == c
            if in_part.sum() > 20:
                share = (roles[a:b][in_part] == 0).mean()
                assert abs(share - 0.7) < 0.05
    # seeded: another seed picks other nodes with the same counts
    other = _roles_by_partition(labels, bounds, seed=1)
    assert (other == 0).sum() == (roles == 0).sum() and np.any(other != roles)


def test_roles_do_not_depend_on_how_partitions_are_grouped():
    labels = np.random.default_rng(1).choice([-1, 0, 1], 1000)
    a = _roles_by_partition(labels, [0, 250, 500, 750, 1000])
    b = _roles_by_partition(labels, [0, 250, 500, 750, 1000])
    assert np.array_equal(a, b)


def test_fractions_are_checked():
    with pytest.raises(ConfigError, match="adding up to 1"):
        stratified_roles(np.zeros(3, np.int64), 0, np.zeros(1, np.int64), (0.5, 0.2, 0.2), 0)


def test_balanced_chunk_single_worker_and_padding():
    ids = np.array([3, 5, 8])
    chunk, longest = balanced_chunk(Exchange(0, 1), ids)
    assert chunk.tolist() == [3, 5, 8] and longest == 3
    seeds, pad = pad_to_batches(np.array([4, 6]), longest=3, batch_size=2)
    assert seeds.tolist() == [4, 6, 4] and pad.tolist() == [False, False, True]
    seeds, pad = pad_to_batches(np.array([4, 6, 7]), longest=4, batch_size=2)  # same batch count: no padding
    assert seeds.tolist() == [4, 6, 7] and not pad.any()
    seeds, pad = pad_to_batches(np.zeros(0, np.int64), longest=1, batch_size=2, fallback=9)
    assert seeds.tolist() == [9] and pad.all()
    with pytest.raises(ConfigError, match="fewer labelled training nodes than workers"):
        pad_to_batches(np.zeros(0, np.int64), longest=1, batch_size=2)
