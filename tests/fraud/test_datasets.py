"""Loaders of the real datasets in ../shared/data and their conversion to edge list + account table."""
import json
import subprocess
import sys

import numpy as np
import pytest

from graphtrain import metrics
from graphtrain.errors import ConfigError, InputError, OutputExistsError
from graphtrain.fraud.data.datasets import load_amazon_upu, load_amlsim, load_named, load_prepared, load_tolokers, write_prepared
from graphtrain.fraud.pipeline.baseline import run_baseline
from graphtrain.split import TEST, stratified_split
from tests.subprocess_env import minimal_env


def test_amlsim(shared_data):
    ds = load_amlsim(shared_data / "amlsim" / "20K_cycle200")
    g = ds.graph
    assert g.num_accounts == 20000 and g.num_edges == 117805 and g.directed
    assert g.accounts.feature_names == ["init_balance"]  # fraudStep (a label leak) is not a feature
    assert int(g.accounts.labels.sum()) == 945 and g.amount is not None and g.time.min() == 1


def test_amazon_upu(shared_data):
    g = load_amazon_upu(shared_data / "amazon_upu" / "Amazon.mat").graph
    assert g.num_accounts == 10224 and g.num_edges == 2 * 175608 and not g.directed
    assert g.accounts.features.shape == (10224, 25) and int(g.accounts.labels.sum()) == 693
    pairs = set(zip(g.src.tolist(), g.dst.tolist()))
    assert all((b, a) in pairs for a, b in list(pairs)[:1000])


def test_tolokers_fixed_split(shared_data):
    g = load_tolokers(shared_data / "tolokers" / "tolokers.npz", split_index=3).graph
    assert g.num_accounts == 11758 and g.num_edges == 2 * 519000 and g.accounts.features.shape == (11758, 10)
    data = np.load(shared_data / "tolokers" / "tolokers.npz")
    assert np.array_equal(g.accounts.split == 0, data["train_masks"][3])
    assert np.array_equal(g.accounts.split == 2, data["test_masks"][3])
    with pytest.raises(ConfigError, match="split-index"):
        load_tolokers(shared_data / "tolokers" / "tolokers.npz", split_index=10)


def test_prepared_round_trip(shared_data, tmp_path):
    ds = load_named("tolokers", shared_data / "tolokers" / "tolokers.npz")
    files = write_prepared(ds, tmp_path / "tolokers")
    manifest = json.loads(open(files["manifest"]).read())
    assert manifest["counts"]["edges"] == 2 * 519000 and manifest["columns"]["accounts"]["split"] == "split"
    back = load_prepared(tmp_path / "tolokers").graph
    assert np.array_equal(back.src, ds.graph.src) and np.array_equal(back.accounts.split, ds.graph.accounts.split)
    np.testing.assert_array_equal(back.accounts.features, ds.graph.accounts.features)
    with pytest.raises(OutputExistsError):
        write_prepared(ds, tmp_path / "tolokers")


def test_missing_source_says_where_to_get_it(tmp_path):
    with pytest.raises(InputError, match="SOURCES.md"):
        load_amazon_upu(tmp_path / "Amazon.mat")
    with pytest.raises(ConfigError, match="unknown dataset"):
        load_named("elliptic", tmp_path)


def test_tree_baseline_on_amazon(shared_data):
    """The baseline reaches the quality the issue measured on Amazon U-P-U (AUC 0.986 there, another split)."""
    g = load_amazon_upu(shared_data / "amazon_upu" / "Amazon.mat").graph
    split = stratified_split(g.accounts.labels, (0.4, 0.2), seed=0)
    scores = run_baseline(g, split, hops=1).scores
    test = split == TEST
    assert metrics.roc_auc(g.accounts.labels[test], scores[test]) > 0.96
    assert metrics.average_precision(g.accounts.labels[test], scores[test]) > 0.85


def test_prepare_data_cli(shared_data, tmp_path):
    def cli(*args):
        return subprocess.run([sys.executable, "-m", "graphtrain.cli", "prepare-data", *args], cwd=tmp_path,
                              capture_output=True, text=True, env=minimal_env())

    ok = cli("amlsim", str(shared_data / "amlsim" / "20K_fanin200"), "--out", str(tmp_path / "aml"))
    assert ok.returncode == 0, ok.stderr
    summary = json.loads(ok.stdout.strip().splitlines()[-1])
    assert summary["accounts"] == 20000 and summary["positives"] == 954
    back = load_prepared(tmp_path / "aml").graph
    assert back.num_edges == 118250 and back.amount is not None and back.directed
    missing = cli("tolokers", str(tmp_path / "none.npz"), "--out", str(tmp_path / "t"))
    assert missing.returncode != 0 and "none.npz: no such file" in missing.stderr and not (tmp_path / "t").exists()
