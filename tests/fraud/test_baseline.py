"""The tree baseline: aggregate features against a loop reference, out-of-fold honesty, and that
structure (not features alone) is what finds the planted rings."""
import numpy as np
import pytest

from graphtrain import metrics
from graphtrain.errors import ConfigError
from graphtrain.fraud.data.transaction_graph import AccountTable, TransactionGraph
from graphtrain.fraud.pipeline.baseline import fit_scores, neighbour_features, run_baseline
from graphtrain.fraud.synth.generate import generate
from graphtrain.fraud.synth.generate import load_generated
from graphtrain.fraud.synth.generator_config import GeneratorConfig
from graphtrain.split import TEST, stratified_split


def _random_graph(n=30, e=120, seed=0, directed=True):
    rng = np.random.default_rng(seed)
    feats = rng.normal(size=(n, 2)).astype(np.float32)
    feats[3, 1] = np.nan
    acc = AccountTable(np.arange(n), feats, ["a", "b"], rng.integers(0, 2, n))
    src, dst = rng.integers(0, n, e), rng.integers(0, n, e)
    src[:5] = 7  # a node with repeated edges
    amount = np.round(rng.lognormal(3, 1, e), 2)
    time = rng.integers(0, 10 * 86400, e)
    return TransactionGraph(acc, src, dst, amount, time, directed=directed)


def _loop_reference(g, v):
    """Per-node aggregates of account v computed with plain loops."""
    ins = [i for i in range(g.num_edges) if g.dst[i] == v]
    outs = [i for i in range(g.num_edges) if g.src[i] == v]
    ref = {
        "in_count": len(ins),
        "out_distinct": len({g.dst[i] for i in outs}),
        "out_amount_sum": sum(g.amount[i] for i in outs),
        "in_amount_max": max((g.amount[i] for i in ins), default=np.nan),
        "in_active_days": len({g.time[i] // 86400 for i in ins}),
        "out_span_days": (max(g.time[i] for i in outs) - min(g.time[i] for i in outs)) / 86400 if outs else np.nan,
    }
    b = g.accounts.features[:, 1].astype(float)
    vals = [b[g.src[i]] for i in ins if not np.isnan(b[g.src[i]])]
    ref["in_mean_own_b"] = np.mean(vals) if vals else np.nan
    ref["out_max_own_b"] = np.nanmax([b[g.dst[i]] for i in outs]) if outs and not all(np.isnan(b[g.dst[i]]) for i in outs) else np.nan
    return ref


def test_aggregates_match_loop_reference():
    g = _random_graph()
    x, names = neighbour_features(g, hops=2)
    col = {n: x[:, j] for j, n in enumerate(names)}
    for v in range(g.num_accounts):
        for name, want in _loop_reference(g, v).items():
            np.testing.assert_allclose(col[name][v], want, rtol=1e-5, equal_nan=True, err_msg=f"{name} of {v}")
    # hop 2: mean over in-neighbours of their hop-1 in-means
    hop1 = col["in_mean_own_a"]
    for v in range(g.num_accounts):
        vals = [hop1[g.src[i]] for i in range(g.num_edges) if g.dst[i] == v and not np.isnan(hop1[g.src[i]])]
        np.testing.assert_allclose(col["in2_mean_in_mean_own_a"][v], np.mean(vals) if vals else np.nan, rtol=1e-5, equal_nan=True)


def test_undirected_graph_has_one_direction_and_no_amount_columns():
    g = _random_graph(directed=False)
    g.amount = g.time = None
    _, names = neighbour_features(g, hops=1)
    assert "nbr_count" in names and not any(n.startswith(("in_", "out_")) for n in names)
    assert not any("amount" in n or "days" in n for n in names)
    with pytest.raises(ConfigError):
        neighbour_features(g, hops=3)


def test_train_scores_are_out_of_fold():
    """With labels that are pure noise, in-sample scores would separate the train rows; out-of-fold ones do not."""
    rng = np.random.default_rng(1)
    x = rng.normal(size=(3000, 5))
    y = (rng.random(3000) < 0.2).astype(int)
    split = stratified_split(y, (0.6, 0.2), seed=0)
    scores = fit_scores(x, y, split, seed=0)
    train = split == 0
    assert abs(metrics.roc_auc(y[train], scores[train]) - 0.5) < 0.08
    from sklearn.ensemble import HistGradientBoostingClassifier

    in_sample = HistGradientBoostingClassifier(random_state=0).fit(x[train], y[train]).predict_proba(x[train])[:, 1]
    assert metrics.roc_auc(y[train], in_sample) > 0.75  # what the out-of-fold scores avoid


def test_needs_both_classes_in_train():
    y = np.array([0] * 20 + [1] * 4)
    split = np.where(y == 1, 2, 0).astype(np.int8)
    with pytest.raises(ConfigError, match="both classes"):
        fit_scores(np.zeros((24, 2)), y, split)
    with pytest.raises(ConfigError, match="folds"):
        fit_scores(np.zeros((24, 2)), y, np.zeros(24, np.int8), folds=5)


def test_structure_finds_rings_features_alone_do_not(tmp_path):
    generate(GeneratorConfig(num_accounts=10000, num_rings=40, num_lookalikes=40, seed=2), tmp_path / "g")
    g = load_generated(tmp_path / "g")
    split = stratified_split(g.accounts.labels, (0.4, 0.2), seed=0)
    test = split == TEST
    y = g.accounts.labels[test]
    features_only = fit_scores(g.accounts.features, g.accounts.labels, split)
    result = run_baseline(g, split, hops=2)
    auc_features = metrics.roc_auc(y, features_only[test])
    auc_graph = metrics.roc_auc(y, result.scores[test])
    assert auc_features < 0.75  # features alone are weak
    assert auc_graph > auc_features + 0.15  # the neighbourhood is what finds ring members
    assert metrics.average_precision(y, result.scores[test]) < 0.95  # and precision is not free
    assert result.scores.shape == (g.num_accounts,) and result.params["num_features"] == len(result.feature_names)


def _bipartite_graph(users=300, products=60, edges=1500, seed=0, direction="user->product"):
    """Users (labelled, rows 0..users-1) buying products (unlabelled); one edge per purchase."""
    rng = np.random.default_rng(seed)
    n = users + products
    labels = np.full(n, -1)
    labels[:users] = (rng.random(users) < 0.2).astype(int)
    acc = AccountTable(np.arange(n), rng.normal(size=(n, 2)).astype(np.float32), ["a", "b"], labels)
    user, product = rng.integers(0, users, edges), users + rng.integers(0, products, edges)
    src, dst = (user, product) if direction == "user->product" else (product, user)
    if direction == "both":
        src, dst = np.concatenate([user, product]), np.concatenate([product, user])
    amount = np.round(rng.lognormal(3, 1, src.size), 2)
    return TransactionGraph(acc, src, dst, amount, rng.integers(0, 10 * 86400, src.size), directed=direction != "both")


@pytest.mark.parametrize("direction", ["user->product", "product->user", "both"])
def test_bipartite_graph_drops_columns_without_values_on_train_rows(direction, caplog):
    """Users receive no edges (user->product) or send none (product->user): every ``in_*`` (``out_*``)
    column is missing on the labelled users, which scikit-learn cannot bin. Those columns are
    dropped, named in the log, and the baseline scores every account."""
    import logging

    g = _bipartite_graph(direction=direction)
    split = stratified_split(g.accounts.labels, (0.4, 0.2), seed=0)
    logger = logging.getLogger("graphtrain")
    logger.addHandler(caplog.handler)
    caplog.handler.setLevel(logging.INFO)
    old_level = logger.level
    logger.setLevel(logging.INFO)  # setLevel, not .level =: it clears the loggers' cached isEnabledFor answers
    try:
        result = run_baseline(g, split, hops=2, folds=2)
    finally:
        logger.removeHandler(caplog.handler)
        logger.setLevel(old_level)
    x, names = neighbour_features(g, hops=2)
    train = x[(split == 0) & (g.accounts.labels >= 0)]
    empty = [n for j, n in enumerate(names) if np.isnan(train[:, j]).all()]
    dropped = result.params["dropped_features"]
    assert np.isfinite(result.scores).all() and result.scores.shape == (g.num_accounts,)
    if direction == "both":
        assert empty == [] and dropped == []  # an undirected graph: every user has neighbours
    else:
        silent = "in" if direction == "user->product" else "out"
        assert {f"{silent}_amount_mean", f"{silent}_mean_own_a", f"{silent}2_mean_{silent}_mean_own_a"} <= set(empty)
        assert f"{silent}_count" in dropped  # 0 for every user: constant
        assert set(empty) <= set(dropped)
        assert result.feature_names == [n for n in names if n not in dropped]
        assert result.params["num_features"] == len(names) - len(dropped)
        logged = [r.getMessage() for r in caplog.records if "dropped" in r.getMessage()]
        assert logged and all(n in logged[0] for n in empty), logged
