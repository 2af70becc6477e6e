import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from graphtrain import metrics
from graphtrain.errors import ConfigError


def test_perfect_and_random_scores():
    y = np.array([0, 0, 1, 1, 0, 1])
    s = np.array([0.1, 0.2, 0.9, 0.8, 0.3, 0.7])
    rep = metrics.binary_report(y, s, threshold=0.5)
    assert rep["auc"] == 1.0 and rep["ap"] == 1.0 and rep["f1_macro"] == 1.0 and rep["recall_at_k"] == 1.0
    assert metrics.roc_auc(y, -s) == 0.0


def test_recall_at_k():
    y = np.array([1, 0, 1, 0, 0, 1])
    s = np.array([0.9, 0.8, 0.1, 0.7, 0.2, 0.6])
    assert metrics.recall_at_k(y, s, k=1) == pytest.approx(1 / 3)
    assert metrics.recall_at_k(y, s) == pytest.approx(1 / 3)  # k = 3 positives: 0.9, 0.8, 0.7
    assert metrics.recall_at_k(y, s, k=4) == pytest.approx(2 / 3)


@settings(max_examples=300, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 1), st.sampled_from([0.0, 0.1, 0.5, 0.9, 1.0])), min_size=1, max_size=60),
       st.integers(1, 70))
def test_recall_at_k_breaks_ties_by_position_as_a_stable_sort(rows, k):
    y = np.array([r[0] for r in rows])
    s = np.array([r[1] for r in rows])
    if y.sum() == 0:
        assert np.isnan(metrics.recall_at_k(y, s, k))
        return
    top = np.argsort(-s, kind="stable")[:k]  # the definition: the k first of a stable sort, highest first
    assert metrics.recall_at_k(y, s, k) == y[top].sum() / y.sum()


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 1), st.sampled_from([0.0, 0.1, 0.5, 0.9, 1.0])), min_size=1, max_size=60),
       st.sampled_from([0.0, 0.5, 0.95]))
def test_binary_report_equals_the_single_metrics(rows, threshold):
    y = np.array([r[0] for r in rows])
    s = np.array([r[1] for r in rows])
    report = metrics.binary_report(y, s, threshold=threshold)
    single = {"auc": metrics.roc_auc(y, s), "ap": metrics.average_precision(y, s),
              "f1_macro": metrics.f1_macro(y, s, threshold), "recall_at_k": metrics.recall_at_k(y, s)}
    for name, want in single.items():
        assert report[name] == want or (np.isnan(report[name]) and np.isnan(want)), name


def test_degenerate_inputs():
    assert np.isnan(metrics.roc_auc([0, 0], [0.1, 0.2]))
    with pytest.raises(ConfigError):
        metrics.roc_auc([0, 2], [0.1, 0.2])
    with pytest.raises(ConfigError):
        metrics.roc_auc([0, 1], [0.1, np.nan])
    with pytest.raises(ConfigError):
        metrics.roc_auc([], [])


def test_best_threshold_separates():
    y = np.array([0] * 50 + [1] * 10)
    s = np.concatenate([np.linspace(0, 0.4, 50), np.linspace(0.6, 1, 10)])
    t = metrics.best_f1_threshold(y, s)
    assert metrics.f1_macro(y, s, t) == 1.0


@settings(max_examples=300, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 1), st.sampled_from([0.0, 0.1, 0.25, 0.5, 0.5, 0.75, 0.9, 1.0])),
                min_size=1, max_size=40),
       st.sampled_from([-1.0, 0.0, 0.1, 0.3, 0.5, 0.75, 1.0, 2.0]))
def test_f1_macro_equals_scikit_learn(rows, threshold):
    # one class only, nothing or everything predicted positive, ties at the threshold: all as sklearn says
    from sklearn.metrics import f1_score

    y = np.array([r[0] for r in rows])
    s = np.array([r[1] for r in rows])
    want = f1_score(y, (s >= threshold).astype(int), average="macro", labels=[0, 1], zero_division=0)
    assert metrics.f1_macro(y, s, threshold) == pytest.approx(want, abs=1e-12)


def test_best_threshold_is_the_best_of_its_candidates():
    rng = np.random.default_rng(3)
    y = (rng.random(5000) < 0.05).astype(int)
    s = np.clip(y * 0.3 + rng.random(5000), 0, None)
    best = metrics.best_f1_threshold(y, s)
    candidates = np.unique(np.quantile(s, np.linspace(0.0, 1.0, 201)))
    values = [metrics.f1_macro(y, s, t) for t in candidates]
    assert best in candidates and metrics.f1_macro(y, s, best) == max(values)


@settings(max_examples=300, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 1), st.sampled_from([0.0, 0.1, 0.5, 0.5, 0.9, 1.0, -3.0])) | st.tuples(
    st.integers(0, 1), st.floats(-1e6, 1e6, allow_nan=False)), min_size=1, max_size=80))
def test_average_precision_equals_scikit_learn(rows):
    from sklearn.metrics import average_precision_score

    y = np.array([r[0] for r in rows])
    s = np.array([r[1] for r in rows])
    if y.max() == 0:
        assert np.isnan(metrics.average_precision(y, s))
        return
    assert metrics.average_precision(y, s) == pytest.approx(average_precision_score(y, s), abs=1e-12)  # ties as one step


_ROWS = st.lists(st.tuples(st.integers(0, 1), st.sampled_from([0.0, 0.1, 0.5, 0.5, 0.9, 1.0, -3.0])) | st.tuples(
    st.integers(0, 1), st.floats(-1e6, 1e6, allow_nan=False)), min_size=2, max_size=80)


@settings(max_examples=300, deadline=None)
@given(_ROWS)
def test_roc_auc_and_curves_equal_scikit_learn(rows):
    from sklearn.metrics import precision_recall_curve, roc_auc_score

    y = np.array([r[0] for r in rows])
    s = np.array([r[1] for r in rows])
    if y.min() == y.max():
        assert np.isnan(metrics.roc_auc(y, s))
        return
    assert metrics.roc_auc(y, s) == pytest.approx(roc_auc_score(y, s), abs=1e-12)  # ties count half
    points = metrics.curve_points(y, s)  # fewer thresholds than max_points: every one
    precision, recall, _ = precision_recall_curve(y, s)
    np.testing.assert_allclose(points["precision"], precision[:-1][::-1], rtol=0, atol=1e-12)
    np.testing.assert_allclose(points["recall"], recall[:-1][::-1], rtol=0, atol=1e-12)
    assert np.trapezoid(points["tpr"], points["fpr"]) == pytest.approx(roc_auc_score(y, s), abs=1e-12)


def test_curve_points_thin_to_the_budget_keeping_both_ends():
    rs = np.random.default_rng(0)
    y = (rs.random(50_000) < 0.1).astype(int)
    s = rs.random(50_000) + y
    p = metrics.curve_points(y, s, max_points=300)
    assert p["recall"].size <= 300 and p["fpr"].size == p["recall"].size + 1
    assert p["fpr"][0] == p["tpr"][0] == 0.0 and p["fpr"][-1] == p["tpr"][-1] == p["recall"][-1] == 1.0
    assert np.all(np.diff(p["fpr"]) >= 0) and np.all(np.diff(p["recall"]) >= 0)
    assert np.trapezoid(p["tpr"], p["fpr"]) == pytest.approx(metrics.roc_auc(y, s), abs=2e-3)
