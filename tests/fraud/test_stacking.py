"""GNN-to-tree stacking: folds, cross-fitting without label leaks, the stacked tree in the pipeline's
stages, and the stacking run of ``detect-rings`` end to end."""
import json

import numpy as np
import pyarrow.parquet as pq
import pytest

from graphtrain.errors import ConfigError
from graphtrain.fraud.pipeline.pipeline import ModelScores, PipelineConfig, run_stages
from graphtrain.fraud.pipeline.stacking import WithColumns, cross_fitted_scores, training_folds
from graphtrain.fraud.synth.generate import generate, load_generated
from graphtrain.fraud.synth.generator_config import GeneratorConfig
from graphtrain.split import TEST, TRAIN, VAL


def _labels_and_split(n=1000, seed=0):
    rng = np.random.default_rng(seed)
    labels = (rng.random(n) < 0.2).astype(np.int64)
    labels[rng.random(n) < 0.1] = -1
    split = rng.choice(np.array([TRAIN, VAL, TEST], dtype=np.int8), size=n, p=[0.5, 0.25, 0.25])
    return labels, split


def test_training_folds_are_stratified_and_cover_only_labelled_training_accounts():
    labels, split = _labels_and_split()
    fold = training_folds(labels, split, 3, seed=1)
    train = (split == TRAIN) & (labels >= 0)
    assert np.all(fold[~train] == -1) and np.all(fold[train] >= 0)
    for cls in (0, 1):
        counts = np.bincount(fold[train & (labels == cls)], minlength=3)
        assert counts.max() - counts.min() <= 1, counts
    assert not np.array_equal(fold, training_folds(labels, split, 3, seed=2))  # seeded
    np.testing.assert_array_equal(fold, training_folds(labels, split, 3, seed=1))


def test_training_folds_refuse_too_few_of_a_class():
    labels, split = _labels_and_split()
    labels[(split == TRAIN) & (labels == 1)] = 0
    labels[np.flatnonzero(split == TRAIN)[:2]] = 1
    with pytest.raises(ConfigError, match="at least 3 training accounts of class 1; the train split has 2"):
        training_folds(labels, split, 3, seed=0)
    with pytest.raises(ConfigError, match="at least 2 cross-fitting folds"):
        training_folds(labels, split, 1, seed=0)


def test_cross_fitted_scores_never_come_from_a_model_that_trained_on_the_account():
    labels, split = _labels_and_split()
    calls = []

    def memorising_model(k, split_k):
        """Scores its own training accounts with their labels, every other account 0.5 + k / 100."""
        calls.append(split_k.copy())
        seen = (split_k == TRAIN) & (labels >= 0)
        return np.where(seen, labels, 0.5 + k / 100)

    out = cross_fitted_scores(memorising_model, labels, split, folds=4, seed=0)
    fold = training_folds(labels, split, 4, seed=0)
    assert len(calls) == 4
    for k, split_k in enumerate(calls):
        held = fold == k
        assert np.all(split_k[held] == -1) and np.array_equal(split_k[~held], split[~held])
        np.testing.assert_allclose(out[held], 0.5 + k / 100)  # the one model that did not see them
    np.testing.assert_allclose(out[fold < 0], np.mean(0.5 + np.arange(4) / 100))  # every model's mean


def test_cross_fitted_scores_refuse_a_model_that_scores_too_few_accounts():
    labels, split = _labels_and_split()
    with pytest.raises(ConfigError, match="stacking fold 0"):
        cross_fitted_scores(lambda k, s: np.zeros(5), labels, split, folds=2, seed=0)
    with pytest.raises(ConfigError, match="stacking fold 0"):
        cross_fitted_scores(lambda k, s: np.full(s.size, np.nan), labels, split, folds=2, seed=0)


def test_with_columns_appends_whole_population_columns():
    class Table:
        names, num_accounts = ["a", "b"], 10

        def rows(self, start, stop):
            return np.arange(start, stop, dtype=np.float32)[:, None] * np.array([[1, 10]], dtype=np.float32)

    extra = np.arange(10, dtype=np.float64) + 0.5
    t = WithColumns(Table(), {"gnn_score": extra})
    assert t.names == ["a", "b", "gnn_score"] and t.num_columns == 3
    np.testing.assert_array_equal(t.rows(3, 6), np.array([[3, 30, 3.5], [4, 40, 4.5], [5, 50, 5.5]], dtype=np.float32))
    with pytest.raises(ConfigError, match="shape"):
        WithColumns(Table(), {"x": np.zeros(9)})


@pytest.fixture(scope="module")
def generated(tmp_path_factory):
    out = tmp_path_factory.mktemp("stack")
    data = generate(GeneratorConfig(num_accounts=4000, num_rings=16, num_lookalikes=16, seed=5), out / "data")
    return out, load_generated(data.out)


def test_the_stacked_tree_uses_the_gnn_column_and_competes_for_the_shipped_score(generated, tmp_path):
    out, graph = generated
    labels = graph.accounts.labels
    rng = np.random.default_rng(0)
    # a stand-in for an informative cross-fitted GNN score: the label plus noise, for every account
    informative = np.where(labels == 1, 1.0, 0.0) + rng.normal(0, 0.35, graph.num_accounts)
    config = PipelineConfig(baseline_hops=1, baseline_folds=2, top_rings=2, bad_cases=1)
    summary = run_stages(graph, tmp_path / "run", ModelScores(informative, "stand-in", stack_input=informative),
                         config=config)
    for key in ("stack_auc", "stack_ap", "shipped_auc", "shipped_ap"):
        assert 0.0 <= summary[key] <= 1.0, key
    # the column carries what the features do not: the stacked tree beats the tree without it
    assert summary["stack_ap"] > summary["baseline_ap"] + 0.05, (summary["stack_ap"], summary["baseline_ap"])
    assert summary["shipped_score"] in ("gnn", "blend", "stack")
    assert summary[f"shipped_ap"] == summary[{"gnn": "ap", "blend": "blend_ap", "stack": "stack_ap"}[summary["shipped_score"]]]
    assert summary["stack"]["num_features"] == summary["baseline"]["num_features"] + 1
    scores = pq.read_table(tmp_path / "run" / "scores.parquet")
    assert "stack_score" in scores.column_names
    # without the column: no stack, and the shipped score is one of the others
    plain = run_stages(graph, tmp_path / "plain", ModelScores(informative, "stand-in"), config=config)
    assert "stack_ap" not in plain and plain["shipped_score"] in ("gnn", "tree", "blend")
    assert "stack_score" not in pq.read_table(tmp_path / "plain" / "scores.parquet").column_names


@pytest.mark.parametrize("bad", ["short", "nan"])
def test_stack_input_of_the_wrong_length_or_not_finite_is_refused_before_anything_is_written(generated, tmp_path, bad):
    out, graph = generated
    n = graph.num_accounts
    stack_input = np.zeros(n - 1) if bad == "short" else np.full(n, np.nan)
    expected = "need one score per account" if bad == "short" else "NaN or infinity"
    with pytest.raises(ConfigError, match=f"the stack's input.*{expected}"):
        run_stages(graph, tmp_path / "bad", ModelScores(np.zeros(n), "x", stack_input=stack_input),
                   config=PipelineConfig(baseline_hops=1, baseline_folds=2))
    assert list(tmp_path.iterdir()) == []  # refused before the staging directory was made


def test_detect_rings_with_stacking_trains_a_model_per_fold_and_restores_the_split(generated, tmp_path):
    from graphtrain.fraud.pipeline.detect import ModelOptions, run_pipeline
    from graphtrain.fraud.data.transaction_dataset import TransactionDataset

    out, graph = generated
    options = ModelOptions(epochs=3, min_steps=5, patience=None, num_parts=2, num_workers=1, num_cpus=2, stack_folds=2)
    config = PipelineConfig(baseline_hops=1, baseline_folds=2, top_rings=2, bad_cases=1)
    summary = run_pipeline(graph, tmp_path / "run", options, config)
    assert summary["model"]["stack_folds"] == 2 and summary["model"]["stack_train_seconds"] > 0
    assert 0.0 <= summary["stack_auc"] <= 1.0 and summary["stack"]["num_features"] == summary["baseline"]["num_features"] + 1
    assert summary["shipped_score"] in ("gnn", "tree", "blend", "stack")
    assert not list((tmp_path / "run").glob("**/stack-fold-*"))  # the folds' checkpoints and scores are gone
    record = json.loads((tmp_path / "run" / "stages" / "features.json").read_text())
    assert record["released"] == ["work/features"]  # kept for the stacked tree, then released
    stored = TransactionDataset.open(tmp_path / "run" / "dataset").given_split()
    names = np.array(["train", "val", "test"])
    written = pq.read_table(tmp_path / "run" / "scores.parquet", columns=["split"]).column("split").to_numpy(zero_copy_only=False)
    assert np.array_equal(names[stored], written)  # the pipeline's split, not a fold's, is what the dataset keeps
