"""Node-level metrics on the test split and ring matching at Jaccard >= 0.5."""
import math

import numpy as np
import pytest

from graphtrain.errors import ConfigError, InputError
from graphtrain.fraud.data.transaction_graph import AccountTable
from graphtrain.fraud.evaluation.evaluate import choose_threshold, load_true_rings, node_metrics, ring_metrics


def _rings(*members):
    return [np.array(m, dtype=np.int64) for m in members]


def test_jaccard_half_matches_and_just_below_does_not():
    true = _rings([0, 1, 2, 3], [10, 11, 12, 13, 14, 15, 16])
    # [0,1,2,9,8,7]: 3 shared of 7 -> 0.43 ; [0,1,2,9]: 3 of 5 = 0.6 ; [10..13]: 4 of 7 = 0.57
    pred = _rings([0, 1, 2, 9, 8, 7], [0, 1, 9, 8], [10, 11, 12, 13], [20, 21, 22])
    m = ring_metrics(pred, true, 30)
    np.testing.assert_allclose(m.best_jaccard_pred, [3 / 7, 2 / 6, 4 / 7, 0.0])
    assert m.best_match_pred.tolist() == [0, 0, 1, -1]
    assert m.precision == pytest.approx(1 / 4) and m.recall == pytest.approx(1 / 2)
    exact_half = ring_metrics(_rings([0, 1, 5, 6]), _rings([0, 1, 2]), 10)  # 2 / 5 = 0.4
    assert exact_half.recall == 0.0
    exact_half = ring_metrics(_rings([0, 1, 5]), _rings([0, 1, 2, 5, 7, 8]), 10)  # 3 / 6 = 0.5
    assert exact_half.recall == 1.0 and exact_half.precision == 1.0


def test_one_prediction_may_cover_one_truth_only_once():
    true = _rings([0, 1, 2], [0, 1, 2])  # the same ring listed twice: both are found
    m = ring_metrics(_rings([0, 1, 2, 2]), true, 5)  # a duplicated member counts once
    assert m.recall == 1.0 and m.best_jaccard_pred[0] == 1.0


def test_empty_sides():
    m = ring_metrics([], _rings([0, 1, 2]), 5)
    assert math.isnan(m.precision) and m.recall == 0.0
    m = ring_metrics(_rings([0, 1, 2]), [], 5)
    assert m.precision == 0.0 and math.isnan(m.recall)
    with pytest.raises(ConfigError):
        ring_metrics(_rings([0, 9]), [], 5)


def test_threshold_on_validation_and_metrics_on_test():
    labels = np.array([0, 0, 1, 1, 0, 1, 0, 1, -1])
    split = np.array([1, 1, 1, 1, 2, 2, 2, 2, 2])
    scores = np.array([0.1, 0.2, 0.6, 0.7, 0.3, 0.65, 0.62, 0.9, 0.99])
    t = choose_threshold(labels, scores, split)
    assert 0.2 < t <= 0.6
    rep = node_metrics(labels, scores, split, t)
    assert rep["test_accounts"] == 4 and rep["test_positives"] == 2 and rep["auc"] == 1.0
    assert rep["f1_macro"] < 1.0  # 0.62 is a false alarm at the validation threshold
    with pytest.raises(ConfigError, match="threshold"):
        choose_threshold(np.zeros(4), scores[:4], np.ones(4))
    with pytest.raises(ConfigError, match="test split"):
        node_metrics(labels, scores, np.zeros(9), 0.5)


def test_load_true_rings(tmp_path):
    acc = AccountTable(np.array(["a", "b", "c", "d"], dtype=object), np.zeros((4, 0), np.float32), [], np.zeros(4, np.int64))
    path = tmp_path / "rings.csv"
    path.write_text("ring_id,account_id,role,typology\n7,a,collector,fan_in\n7,b,source,fan_in\n3,d,link,cycle\n3,c,link,cycle\n")
    truth = load_true_rings(path, acc)
    assert truth.ring_ids == [7, 3] and truth.typologies == ["fan_in", "cycle"]
    assert [m.tolist() for m in truth.members] == [[0, 1], [3, 2]] and truth.roles[0] == "collector"
    path.write_text("ring_id,account_id\n1,a\n1,zz\n")
    with pytest.raises(InputError, match=r"row 2, column 'account_id': account 'zz' is not in the account table"):
        load_true_rings(path, acc)
    path.write_text("ring,account_id\n1,a\n")
    with pytest.raises(InputError, match="no column 'ring_id'"):
        load_true_rings(path, acc)


def test_percentiles_are_the_share_of_scores_at_or_below():
    from scipy.stats import percentileofscore

    from graphtrain.fraud.evaluation.report_figures import Percentiles

    scores = np.array([0.3, 0.1, 0.3, 0.9, 0.5, 0.1, 0.3])
    pct = Percentiles(scores)
    accounts = np.array([3, 0, 1, 6])
    want = [percentileofscore(scores, scores[a], kind="weak") / 100 for a in accounts]  # ties share the rank
    np.testing.assert_allclose(pct[accounts], want, rtol=0, atol=1e-15)
