"""The GNN + tree rank blend: weight chosen on validation labels only, ranks in (0, 1], clear errors."""
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from graphtrain import metrics
from graphtrain.errors import ConfigError
from graphtrain.fraud.evaluation.blend import blend_scores, scaled_ranks
from graphtrain.split import TEST, TRAIN, VAL


def _data(n=2000, seed=0):
    rng = np.random.default_rng(seed)
    labels = (rng.random(n) < 0.1).astype(np.int64)
    split = rng.choice([TRAIN, VAL, TEST], size=n, p=[0.4, 0.2, 0.4])
    return rng, labels, split


def test_weight_follows_the_better_model_on_validation():
    rng, labels, split = _data()
    good = labels + rng.normal(0, 0.3, labels.size)
    noise = rng.random(labels.size)
    gnn_wins = blend_scores(good, noise, labels, split)
    assert gnn_wins.weight == 1.0
    np.testing.assert_allclose(gnn_wins.scores, good)  # w = 1: the GNN's scores, unchanged
    tree_wins = blend_scores(noise, good, labels, split)
    assert tree_wins.weight == 0.0
    np.testing.assert_allclose(tree_wins.scores, good)  # w = 0: the tree's scores, unchanged


def test_two_models_with_independent_errors_blend_better_than_either():
    rng, labels, split = _data(n=20000, seed=1)
    a = labels + rng.normal(0, 0.8, labels.size)
    b = labels + rng.normal(0, 0.8, labels.size)
    out = blend_scores(a, b, labels, split)
    test = split == TEST
    ap = {name: metrics.average_precision(labels[test], s[test]) for name, s in (("a", a), ("b", b), ("blend", out.scores))}
    assert 0.3 <= out.weight <= 0.7
    assert ap["blend"] > max(ap["a"], ap["b"]) + 0.02, ap
    # the order is the rank average's; the values are the weighted mean of the sorted scores
    w = out.weight
    np.testing.assert_array_equal(np.argsort(out.scores, kind="stable"),
                                  np.argsort(w * scaled_ranks(a) + (1 - w) * scaled_ranks(b), kind="stable"))
    key = np.sort(w * scaled_ranks(a) + (1 - w) * scaled_ranks(b))
    want = w * np.sort(a) + (1 - w) * np.sort(b)
    starts = np.flatnonzero(np.r_[True, key[1:] != key[:-1]])  # tied places share the value at their mean place
    sizes = np.diff(np.r_[starts, key.size])
    want = np.repeat(np.interp(starts + (sizes - 1) / 2, np.arange(key.size), want), sizes)
    np.testing.assert_allclose(np.sort(out.scores), want)
    assert set(out.val_ap) == {f"{w:.1f}" for w in np.linspace(0, 1, 11)}


def test_ties_go_to_the_weight_nearest_a_half_and_only_validation_labels_count():
    rng, labels, split = _data(seed=2)
    perfect = labels.astype(float)
    assert blend_scores(perfect, perfect + 0.5, labels, split).weight == 0.5
    a = labels + rng.normal(0, 0.5, labels.size)
    b = rng.random(labels.size)
    flipped = labels.copy()
    flipped[split == TEST] = 1 - flipped[split == TEST]
    assert blend_scores(a, b, labels, split).weight == blend_scores(a, b, flipped, split).weight


def test_scaled_ranks_share_ties():
    np.testing.assert_allclose(scaled_ranks(np.array([3.0, 1.0, 3.0, 2.0])), [3.5 / 4, 1 / 4, 3.5 / 4, 2 / 4])


def test_bad_input():
    _, labels, split = _data(n=50)
    s = np.linspace(0, 1, 50)
    with pytest.raises(ConfigError, match="shapes differ"):
        blend_scores(s[:-1], s, labels, split)
    with pytest.raises(ConfigError, match="NaN"):
        blend_scores(np.where(s > 0.5, np.nan, s), s, labels, split)
    with pytest.raises(ConfigError, match="cannot choose a blend weight.*both classes"):
        blend_scores(s, s, np.zeros(50, dtype=np.int64), split)


@settings(max_examples=200, deadline=None)
@given(st.lists(st.sampled_from([-1.0, 0.0, 0.2, 0.2, 0.5, 0.9, 3.0]), min_size=1, max_size=50))
def test_scaled_ranks_equal_scipys_average_ranks(values):
    from scipy.stats import rankdata

    s = np.array(values)
    assert np.allclose(scaled_ranks(s), rankdata(s, method="average") / s.size, rtol=0, atol=1e-15)


@settings(max_examples=200, deadline=None)
@given(st.lists(st.floats(-5, 5), min_size=1, max_size=30), st.lists(st.floats(0, 1), min_size=1, max_size=30))
def test_reading_sorted_values_at_fractional_places_is_np_interp(values, fractions):
    from graphtrain.fraud.evaluation.blend import _at_places

    ordered = np.sort(np.array(values))
    places = np.array(fractions) * (ordered.size - 1)
    expected = np.interp(places, np.arange(ordered.size, dtype=np.float64), ordered)
    assert np.allclose(_at_places(ordered, places), expected, rtol=1e-12, atol=1e-12)
