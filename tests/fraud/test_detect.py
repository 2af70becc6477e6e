"""The whole fraud pipeline (partition -> train on Ray -> score -> baseline -> rings -> report), end to
end on generated data, through the API and the ``graphtrain demo`` / ``detect-rings`` commands."""
import json
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq
import pytest

from graphtrain.errors import ConfigError, OutputExistsError
from graphtrain.fraud.evaluation.blend import scaled_ranks
from graphtrain.fraud.pipeline.detect import ModelOptions, run_generated, run_pipeline, scoring_threads
from graphtrain.fraud.pipeline.pipeline import PipelineConfig
from graphtrain.fraud.synth.generate import load_generated
from graphtrain.fraud.synth.generator_config import GeneratorConfig
from graphtrain.partition.format import open_dataset

REPO = Path(__file__).resolve().parents[2]
GEN = GeneratorConfig(num_accounts=6000, num_rings=24, num_lookalikes=24, seed=3)
FAST = PipelineConfig(baseline_hops=2, baseline_folds=2, top_rings=3, bad_cases=2)
OPTIONS = ModelOptions(epochs=25, patience=6, num_parts=2, num_workers=2, num_cpus=4)


RAY_AT_BASELINE = {}  # whether Ray was up before the demo run, and when its baseline and rings stages began
PREDICT_OVERRIDES = []  # the TrainConfig overrides of each Trainer.predict call of the demo run
TABLES_AT_TRAIN = []  # whether the account feature tables were on disk when training began


@pytest.fixture(scope="module")
def demo_run(tmp_path_factory):
    import ray

    import graphtrain.fraud.pipeline.detect as detect

    out = tmp_path_factory.mktemp("detect") / "demo"
    inner_baseline, inner_rings, inner_train = detect.baseline_stage, detect.write_stages, detect.train_and_score

    def baseline_stage(*args, **kwargs):
        RAY_AT_BASELINE["at_baseline"] = ray.is_initialized()
        return inner_baseline(*args, **kwargs)

    def write_stages(*args, **kwargs):
        RAY_AT_BASELINE["at_rings"] = ray.is_initialized()
        return inner_rings(*args, **kwargs)

    def train_and_score(data, tmp, *args, **kwargs):
        TABLES_AT_TRAIN.append((tmp / detect.FEATURES_DIR / "base.npy").exists())
        return inner_train(data, tmp, *args, **kwargs)

    from graphtrain.train import Trainer

    predict = Trainer.predict

    def recorded_predict(self, *args, **overrides):
        PREDICT_OVERRIDES.append(overrides)
        return predict(self, *args, **overrides)

    RAY_AT_BASELINE["before"] = ray.is_initialized()
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(detect, "baseline_stage", baseline_stage)
        patch.setattr(detect, "write_stages", write_stages)
        patch.setattr(detect, "train_and_score", train_and_score)
        patch.setattr(Trainer, "predict", recorded_predict)
        return out, run_generated(out, GEN, OPTIONS, FAST)


def test_the_ray_the_run_started_is_shut_down_before_its_baseline_and_rings(demo_run):
    import ray

    if RAY_AT_BASELINE["before"]:  # a Ray this process had before the run is the caller's: kept
        assert RAY_AT_BASELINE["at_baseline"] and RAY_AT_BASELINE["at_rings"] and ray.is_initialized()
    else:
        assert RAY_AT_BASELINE["at_baseline"] is False and RAY_AT_BASELINE["at_rings"] is False
        assert not ray.is_initialized()


def test_the_feature_tables_are_deleted_before_training_once_the_tree_and_the_models_inputs_are_built(demo_run):
    out, summary = demo_run
    assert TABLES_AT_TRAIN == [False]  # built in stage features, read by baseline and model_inputs, then released
    record = json.loads((out / "run" / "stages" / "features.json").read_text())
    assert record["released"] == ["work/features"] and "work/features" not in record["outputs"]
    assert summary["baseline"]["num_features"] > len(summary["model"]["features"])  # the tree did read the tables
    assert summary["stage_seconds"]["baseline_seconds"] > 0


def test_scoring_takes_the_local_rays_cpus_shared_among_the_workers(demo_run):
    # OPTIONS: 4 CPUs, 2 workers, 1 training thread each -> 2 scoring threads each
    assert PREDICT_OVERRIDES == [{"threads_per_worker": 2}]
    assert scoring_threads(replace(OPTIONS, num_cpus=1)) == 1  # never below threads_per_worker
    assert scoring_threads(replace(OPTIONS, threads_per_worker=3)) == 3
    assert scoring_threads(replace(OPTIONS, num_workers=1, num_parts=1)) == 4
    assert scoring_threads(replace(OPTIONS, address="10.0.0.1:6379")) == 1  # a named cluster: as trained


def test_demo_trains_the_model_and_finds_the_planted_rings(demo_run):
    out, summary = demo_run
    run = out / "run"
    assert json.loads((run / "summary.json").read_text()) == summary
    assert summary["scores_from_baseline"] is False and summary["score_source"].startswith("graphtrain sage")
    # the model's scores, not the baseline's, drive the metrics and the rings
    assert summary["auc"] != summary["baseline_auc"]
    assert summary["model"]["epochs_run"] >= 1 and summary["model"]["options"]["num_workers"] == 2
    assert summary["auc"] > 0.85 and summary["ap"] > 0.3, (summary["auc"], summary["ap"])
    # the blend with the tree is scored beside them
    assert summary["blend_auc"] > 0.85 and summary["blend_ap"] > 0.3 and 0 <= summary["blend_weight"] <= 1
    assert summary["true_rings"] == 24
    assert summary["ring_recall"] >= 0.4, summary["ring_recall_by_typology"]
    assert summary["ring_precision"] >= 0.2, {k: summary[k] for k in ("rings", "ring_precision", "ring_recall", "auc", "ap", "baseline_auc")}
    scores = pq.read_table(run / "scores.parquet")
    model = pq.read_table(run / "model_scores.parquet")
    assert scores.num_rows == model.num_rows == 6000
    # scores.parquet (raw account IDs) carries exactly the model's scores, account by account, and the
    # blend_score column is their rank blend with the baseline at the reported weight
    accounts = pq.read_table(out / "data" / "accounts.parquet").column("account_id").to_pylist()
    by_id = dict(zip(model.column("node_id").to_pylist(), model.column("score").to_pylist()))
    got = dict(zip(scores.column("account_id").to_pylist(), scores.column("score").to_pylist()))
    assert sorted(got) == sorted(by_id) == sorted(accounts)
    assert all(abs(got[acc] - by_id[acc]) < 1e-6 for acc in accounts)
    w = summary["blend_weight"]
    gnn, tree, blended = (scores.column(c).to_numpy() for c in ("score", "baseline_score", "blend_score"))
    np.testing.assert_allclose(scaled_ranks(blended), scaled_ranks(w * scaled_ranks(gnn) + (1 - w) * scaled_ranks(tree)))
    assert summary["blend_val_ap"][f"{w:.1f}"] == max(summary["blend_val_ap"].values())
    assert (run / "report" / "index.html").is_file() and (run / "rings.csv").is_file()
    assert "graphtrain sage" in (run / "report" / "index.html").read_text()


def test_dataset_holds_both_directions_and_the_split(demo_run):
    out, summary = demo_run
    ds = open_dataset(out / "run" / "dataset")
    assert ds.meta.num_nodes == 6000 and ds.meta.num_edges == 2 * summary["transactions"]
    assert {c.name for c in ds.meta.edge_columns} >= {"reverse", "amount", "time"}
    assert ds.meta.node_schema.split is not None and ds.meta.node_schema.label is not None
    assert len(ds.meta.node_schema.feature_names) == len(summary["model"]["features"])


def test_model_features_are_the_accounts_transaction_structure_log_scaled(demo_run):
    """The dataset's node features (what the GNN reads) are the own and per-direction structure columns,
    signed-log scaled and finite; checked against counts taken from the dataset's own edges."""
    out, summary = demo_run
    ds = open_dataset(out / "run" / "dataset")
    names = ds.meta.node_schema.feature_names
    assert names == summary["model"]["features"]
    assert "in_amount_sum" in names and "out_count" in names
    assert not any(n.startswith(("in_mean_", "out_mean_", "in_max_", "out_max_", "in2_", "out2_")) for n in names)  # no neighbour aggregates
    for p in range(ds.num_parts):
        x = np.asarray(ds.partition(p).features)
        assert x.dtype == np.float32 and np.isfinite(x).all()
        g = ds.graph(p)
        received = np.bincount(np.repeat(np.arange(g.num_nodes), np.diff(g.indptr))[np.asarray(g.edge_attrs["reverse"]) == 0],
                               minlength=g.num_nodes)
        np.testing.assert_allclose(x[:, names.index("in_count")], np.log1p(received), rtol=1e-6)


def test_existing_output_is_not_overwritten(demo_run):
    out, _ = demo_run
    before = (out / "run" / "summary.json").read_text()
    with pytest.raises(OutputExistsError):
        run_generated(out, GEN, OPTIONS, FAST)
    assert (out / "run" / "summary.json").read_text() == before


def test_a_split_without_both_classes_is_refused_before_any_work(demo_run, tmp_path):
    out, _ = demo_run
    graph = load_generated(out / "data")
    graph.accounts.labels = np.where(graph.accounts.labels == 1, -1, graph.accounts.labels)  # no positives at all
    with pytest.raises(ConfigError, match="both classes"):
        run_pipeline(graph, tmp_path / "x", OPTIONS, FAST)
    assert not (tmp_path / "x").exists()
    with pytest.raises(ConfigError, match="num_workers"):
        ModelOptions(num_parts=2, num_workers=3).validate()
    with pytest.raises(ConfigError, match="temporal must be"):
        ModelOptions(temporal="latest").validate()
    untimed = load_generated(out / "data")
    untimed.time = None
    with pytest.raises(ConfigError, match="needs transaction times"):
        run_pipeline(untimed, tmp_path / "y", ModelOptions(temporal="recent"), FAST)
    assert not (tmp_path / "y").exists()


def test_detect_rings_cli_on_user_files_prints_one_json_line(demo_run, tmp_path):
    out, _ = demo_run
    data = out / "data"
    # the user's own files: CSV transactions, an account table with a split column
    tx = pq.read_table(data / "transactions.parquet")
    pacsv.write_csv(tx, tmp_path / "tx.csv")
    acc = pq.read_table(data / "accounts.parquet")
    n = acc.num_rows
    split = np.array(["train", "val", "test"], dtype=object)[np.arange(n) % 3]
    acc = acc.append_column("split", pa.array(split))
    pq.write_table(acc, tmp_path / "accounts.parquet")
    manifest = json.loads((data / "manifest.json").read_text())
    tcols, acols = manifest["columns"]["transactions"], manifest["columns"]["accounts"]
    cmd = [sys.executable, "-m", "graphtrain.cli", "detect-rings", "--edges", str(tmp_path / "tx.csv"),
           "--src", tcols["src"], "--dst", tcols["dst"], "--time", tcols["time"], "--amount", tcols["amount"],
           "--accounts", str(tmp_path / "accounts.parquet"), "--id", acols["id"], "--label", acols["label"],
           "--split", "split", "--features", ",".join(acols["features"]), "--rings", str(data / "rings.csv"),
           "--epochs", "5", "--min-steps", "0", "--max-steps", "8", "--train-sample", "1024", "--val-sample", "500",
           "--num-cpus", "2", "--temporal", "recent", "--no-blend", "--out", str(tmp_path / "run")]
    res = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, timeout=900)
    assert res.returncode == 0, res.stderr[-3000:]
    lines = res.stdout.strip().splitlines()
    assert lines[-2].startswith("report: ")
    final = json.loads(lines[-1])
    for key in ("auc", "ap", "f1_macro", "baseline_auc", "baseline_ap", "ring_precision", "ring_recall"):
        assert 0.0 <= final[key] <= 1.0, key
    summary = json.loads((tmp_path / "run" / "summary.json").read_text())
    assert summary["split"] == "given (split column)"
    assert summary["model"]["options"]["temporal"] == "recent" and "temporal recent" in summary["score_source"]
    # the training budget reached the trainer: 2 batches of 512 per epoch, cut at 8 steps in epoch 4
    model = summary["model"]
    assert model["optimizer_steps"] == 8 and model["max_steps_reached"] and model["batches_per_epoch"] == 2, model
    assert model["options"]["train_sample"] == 1024 and model["options"]["val_sample"] == 500
    # --no-blend: no blend column or metrics
    assert "blend_auc" not in final and "blend_weight" not in summary
    assert "blend_score" not in pq.read_table(tmp_path / "run" / "scores.parquet").column_names
    assert summary["test_accounts"] == int(((np.arange(n) % 3) == 2).sum())


def test_detect_rings_cli_bad_input(tmp_path):
    tx = tmp_path / "tx.csv"
    tx.write_text("a,b\n1,2\n2,3\n")
    acc = tmp_path / "acc.csv"
    acc.write_text("id,fraud\n1,0\n2,1\n3,0\n")
    base = [sys.executable, "-m", "graphtrain.cli", "detect-rings", "--edges", str(tx), "--src", "a", "--dst", "b",
            "--accounts", str(acc), "--id", "id", "--out", str(tmp_path / "out")]
    res = subprocess.run(base + ["--label", "label"], cwd=REPO, capture_output=True, text=True, timeout=300)
    assert res.returncode != 0 and "acc.csv" in res.stderr and "'label'" in res.stderr
    res = subprocess.run(base + ["--label", "fraud"], cwd=REPO, capture_output=True, text=True, timeout=300)
    assert res.returncode != 0 and "both classes" in res.stderr
    res = subprocess.run(base + ["--label", "fraud", "--temporal", "recent"], cwd=REPO, capture_output=True, text=True,
                         timeout=300)
    assert res.returncode == 2 and "--temporal recent" in res.stderr and "--time COL" in res.stderr
    assert not (tmp_path / "out").exists()
