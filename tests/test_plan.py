"""``graphtrain plan`` and the disk check before partitioning (issue 20 item 8, "Bad input and faults")."""
from __future__ import annotations

import gzip
import json
from collections import namedtuple

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

import graphtrain.plan as plan
from graphtrain.cli import main
from graphtrain.partition import ingest, open_dataset
from graphtrain.partition.partitioner import EdgeColumns, NodeColumns, PartitionOptions, partition

Usage = namedtuple("Usage", "total used free")


@pytest.fixture(scope="module")
def fraud_files(tmp_path_factory):
    """Transactions (string IDs, amount, time) and an account table, shaped like graphtrain generate's."""
    d = tmp_path_factory.mktemp("plan")
    rs = np.random.default_rng(1)
    n, e = 20_000, 150_000
    names = np.array([f"AC{x:019d}" for x in rs.choice(10**18, n, replace=False)])
    src, dst = rs.integers(0, n, e) ** 2 // n, rs.integers(0, n, e)  # skewed payers
    pq.write_table(pa.table({"src": names[src], "dst": names[dst], "amount": rs.gamma(2, 50, e),
                             "time": rs.integers(1_700_000_000, 1_708_000_000, e)}), d / "tx.parquet")
    pq.write_table(pa.table({"account_id": names, "f1": rs.normal(size=n), "f2": rs.integers(0, 5, n),
                             "label": (rs.random(n) < 0.05).astype(np.int64)}), d / "accounts.parquet")
    return d


def _sources(d):
    edges = ingest.TableSource.from_paths([d / "tx.parquet"])
    nodes = ingest.TableSource.from_paths([d / "accounts.parquet"])
    cols = EdgeColumns("src", "dst", time="time", extra=("amount",))
    node_cols = NodeColumns("account_id", label="label", features=("f1", "f2"))
    return edges, cols, nodes, node_cols


def test_disk_model_matches_a_real_run(tmp_path, fraud_files):
    """The byte model against the partitioner's own counts: the spill's peak and the dataset's size."""
    edges, cols, nodes, node_cols = _sources(fraud_files)
    options = PartitionOptions(num_parts=3)
    summary = partition(edges, cols, tmp_path / "ds", options, nodes, node_cols)
    w = plan.workload_from_sources(edges, cols, options, nodes, node_cols)
    assert (w.edges, w.nodes, w.node_rows, w.id_type, w.edge_columns, w.num_features) == (150_000, 20_000, 20_000, "string", 2, 2)
    assert w.id_bytes == 21.0 and 0 < w.keys_per_row < 2
    disk = plan.partition_disk(w)
    assert disk["dataset"] == pytest.approx(summary.dataset_bytes, rel=0.05)
    assert disk["spill_peak"] == pytest.approx(summary.spill_peak_bytes, rel=0.10)


def test_disk_model_counts_the_id_maps_key_spill_as_the_code_writes_it():
    from graphtrain.partition.idmap import INT32_RID_KEYS, KEY_SPILL_DTYPES

    size = {k: np.dtype(v).itemsize for k, v in KEY_SPILL_DTYPES.items()}
    assert plan.KEY_STREAM_BYTES == size["order"] + size["din"] + size["dout"]
    assert (plan.ORDER_BYTES, plan.HASH_KEY_BYTES, plan.STRING_KEY_BYTES, plan.ROW_BYTES) == (
        size["order"], size["h"], size["len"], size["row"])
    assert (plan.RID_BYTES, plan.INT32_RID_KEYS) == (4, INT32_RID_KEYS)  # int32 rids up to the same count


def test_edge_array_model_is_the_compact_format(tmp_path, fraud_files):
    """The dataset's edge arrays as the model counts them, byte for byte: int32 src and indptr,
    the time column as int32 offsets, amount float32 (with --float32-columns) or float64."""
    edges, cols, nodes, node_cols = _sources(fraud_files)
    for f32, column_bytes in (((), 4 + 8), (("amount",), 4 + 4)):
        options = PartitionOptions(num_parts=3, float32_columns=f32)
        partition(edges, cols, tmp_path / f"ds{len(f32)}", options, nodes, node_cols)
        meta = open_dataset(tmp_path / f"ds{len(f32)}").meta
        w = plan.workload_from_sources(edges, cols, options, nodes, node_cols)
        assert w.stored_column_bytes == column_bytes and w.index_bytes == {"src": 4, "indptr": 4}
        assert plan.partition_disk(w)["edge_arrays"] == meta.storage["edge_bytes"]
    worst = plan.workload_from_sources(edges, cols, PartitionOptions(num_parts=3), nodes, node_cols, sample=False)
    assert worst.stored_column_bytes == 16  # the disk check counts the time column at its widest


def test_synthetic_fraud_workload_is_stored_compactly():
    w = plan.workload_synthetic(500_000_000, 60_000_000, job="detect-rings", keys_per_row=1.0)
    assert w.stored_column_bytes == 8 and w.index_bytes == {"src": 4, "indptr": 4}
    d = plan.partition_disk(w)
    assert d["edge_arrays"] == w.edges * (4 + 8 + 1) + 4 * (w.nodes + w.num_parts)
    wide = plan.Workload(**{**w.__dict__, "column_bytes": None, "notes": {}})
    assert plan.partition_disk(wide)["edge_arrays"] == d["edge_arrays"] + 8 * w.edges


def test_both_directions_and_synthetic_workloads():
    w = plan.workload_synthetic(1_000_000, 125_000, job="detect-rings")
    assert (w.edges, w.ingest_rows, w.transactions, w.nodes, w.id_type) == (2_000_000, 1_000_000, 1_000_000, 125_000, "string")
    assert 0 < w.keys_per_row <= 2
    one_way = plan.workload_synthetic(1_000_000, 125_000, job="partition", keys_per_row=w.keys_per_row)
    # --add-reverse: ingest (and the ID map) read each transaction once, routing and the dataset hold two edges
    both, one = plan.partition_disk(w), plan.partition_disk(one_way)
    assert both["after_ingest"] == pytest.approx(one["after_ingest"], rel=1e-9)
    assert one["dataset"] < both["dataset"] < 2 * one["dataset"]  # the edge arrays double, the ID and node arrays do not
    assert one["scratch_peak"] < both["scratch_peak"] < 2 * one["scratch_peak"]
    p = plan.plan(w, "detect-rings")
    assert [s.name for s in p.stages] == ["partition", "features", "baseline", "train", "score", "rings"]
    assert p.stages[0].basis.startswith("measured-calibrated") and all(s.basis.startswith("measured-fitted")
                                                                      for s in p.stages[1:])
    # each fraud stage's time is its fixed cost plus the power law: at_ref more at the reference size,
    # the fixed cost alone as the size goes to nothing, and growing with the transactions
    ref = plan.FRAUD_FIT["ref_transactions"]
    at_ref = plan.plan(plan.workload_synthetic(ref, 1_000_000, job="detect-rings"), "detect-rings")
    tiny = plan.plan(plan.workload_synthetic(1, 1, job="detect-rings"), "detect-rings")
    bigger = plan.plan(plan.workload_synthetic(10 * ref, 10_000_000, job="detect-rings"), "detect-rings")
    for s, t, b in zip(at_ref.stages[1:], tiny.stages[1:], bigger.stages[1:]):
        fixed, at, _ = plan.FRAUD_FIT["seconds"][s.name]
        assert s.seconds == pytest.approx(fixed + at, abs=0.1) and t.seconds == pytest.approx(fixed, abs=0.1)
        assert b.seconds > s.seconds


@pytest.mark.parametrize("compressed", [False, True])
def test_text_row_estimate_from_the_first_mib(tmp_path, compressed):
    rs = np.random.default_rng(0)
    lines = "src,dst\n" + "".join(f"{a},{b}\n" for a, b in rs.integers(0, 10**12, (300_000, 2)))
    path = tmp_path / ("e.csv.gz" if compressed else "e.csv")
    if compressed:
        with gzip.open(path, "wt") as fh:
            fh.write(lines)
    else:
        path.write_text(lines)
    rows, exact = plan.estimate_rows(ingest.TableSource.from_paths([path]))
    assert not exact and rows == pytest.approx(300_000, rel=0.10)


def _short_disk(monkeypatch, free: int):
    monkeypatch.setattr(plan.shutil, "disk_usage", lambda path: Usage(10 * free, 9 * free, free))


def test_partition_refuses_before_any_work_when_the_disk_is_short(tmp_path, fraud_files, monkeypatch, capsys):
    _short_disk(monkeypatch, 1 << 20)
    args = ["partition", str(fraud_files / "tx.parquet"), "--out", str(tmp_path / "ds"), "--num-parts", "2", "--no-progress"]
    code = main(args)
    err = capsys.readouterr().err
    assert code != 0 and "Traceback" not in err
    assert "not enough free disk" in err and "needs about" in err and "1.0 MiB free" in err and str(tmp_path) in err
    assert "--skip-disk-check" in err
    assert list(tmp_path.iterdir()) == []  # no output, no staging directory
    assert main(args + ["--skip-disk-check"]) == 0 and (tmp_path / "ds" / "meta.json").is_file()


def test_python_partition_raises_insufficient_disk(tmp_path, fraud_files, monkeypatch):
    _short_disk(monkeypatch, 1 << 20)
    edges, cols, nodes, node_cols = _sources(fraud_files)
    with pytest.raises(plan.InsufficientDiskError, match="not enough free disk"):
        partition(edges, cols, tmp_path / "ds", PartitionOptions(num_parts=2), nodes, node_cols)
    assert not (tmp_path / "ds").exists()
    partition(edges, cols, tmp_path / "ds", PartitionOptions(num_parts=2, disk_check=False), nodes, node_cols)


def test_check_disk_reads_no_data_when_the_worst_case_fits(tmp_path, fraud_files, monkeypatch):
    def no_sampling(*a, **k):
        raise AssertionError("sampled the input although the worst case fits")

    monkeypatch.setattr(plan, "sample_input", no_sampling)
    result = plan.check_disk(tmp_path / "out", fraud_files / "tx.parquet", job="detect-rings")
    assert result.workload.keys_per_row == plan.WORST_KEYS_PER_ROW and result.free_bytes >= result.disk_need_bytes


def test_check_disk_samples_the_first_chunk_when_the_worst_case_does_not_fit(tmp_path, fraud_files, monkeypatch):
    edges, cols, nodes, node_cols = _sources(fraud_files)
    options = PartitionOptions(num_parts=2)
    worst = plan.plan(plan.workload_from_sources(edges, cols, options, nodes, node_cols, sample=False)).disk_need_bytes
    sampled = plan.plan(plan.workload_from_sources(edges, cols, options, nodes, node_cols)).disk_need_bytes
    assert sampled < worst
    _short_disk(monkeypatch, (sampled + worst) // 2)  # only the sampled estimate fits
    result = plan.check_disk(tmp_path / "out", edges, nodes=nodes, edge_columns=cols, node_columns=node_cols, options=options)
    assert result.workload.keys_per_row < plan.WORST_KEYS_PER_ROW


def test_plan_cli_text_json_and_exit_status(tmp_path, fraud_files, monkeypatch, capsys):
    args = ["plan", str(fraud_files / "tx.parquet"), "--nodes", str(fraud_files / "accounts.parquet"), "--label", "label",
            "--time", "time", "--edge-columns", "amount", "--job", "detect-rings", "--out", str(tmp_path / "run")]
    assert main(args) == 0
    text = capsys.readouterr().out
    assert "measured-calibrated" in text and "measured-fitted" in text and "fits" in text
    for stage in ("partition", "features", "train", "score", "baseline", "rings"):
        assert f"  {stage} " in text
    assert main(args + ["--json"]) == 0
    got = json.loads(capsys.readouterr().out)
    assert got["workload"]["edges"] == 300_000 and got["workload"]["num_features"] == 2  # f1, f2: every other numeric column
    assert got["fits"] is True and got["disk_need_bytes"] > got["partition"]["dataset_bytes"] > 0
    assert set(got["partition"]) >= {"seconds", "peak_rss_bytes", "scratch_peak_bytes", "dataset_bytes", "dataset_bytes_per_edge"}
    _short_disk(monkeypatch, 1 << 20)
    assert main(args) == 1
    assert "not enough free disk" in capsys.readouterr().err


def test_plan_cli_sizes_say_when_500m_transactions_do_not_fit(tmp_path, monkeypatch, capsys):
    argv = ["plan", "--transactions", "500M", "--accounts", "62.5M", "--job", "detect-rings", "--out", str(tmp_path),
            "--keys-per-row", "1.8", "--json"]
    _short_disk(monkeypatch, 45 * 10**9)
    assert main(argv) == 1
    got = json.loads(capsys.readouterr().out)
    assert got["workload"]["edges"] == 10**9 and got["workload"]["ingest_rows"] == 5 * 10**8 and got["fits"] is False
    peak = got["partition"]["scratch_peak_bytes"]
    # detect-rings partitions with --add-reverse: 500M rows ingested, 1B edges routed; about 50 GB at the
    # peak, the end of ingest: 24 B per row and 16 + 21 B per distinct ID of a chunk (1.8 per row)
    assert 45 * 10**9 < peak < 55 * 10**9
    # the score stage: the dataset with the GNN's inputs (~26 GB) and the embedding tables (~16.5 GB);
    # the account feature tables (~17 GB) were deleted before training -- unless the stacked tree
    # needs them after scoring (--stack-folds), which makes the score stage the run's peak. The 500M
    # run of 2026-12-07 (tables kept to the end) nearly filled a disk that the partition peak alone fitted
    _short_disk(monkeypatch, 60 * 10**9)
    assert main(argv) == 0
    got = json.loads(capsys.readouterr().out)
    stages = {s["name"]: s for s in got["stages"]}
    assert 44 * 10**9 < stages["score"]["disk_peak_bytes"] < 50 * 10**9 and got["disk_need_bytes"] == peak
    tables = stages["features"]["disk_after_bytes"] - got["partition"]["dataset_bytes"]
    assert 16 * 10**9 < tables < 18 * 10**9
    assert stages["train"]["disk_after_bytes"] < stages["features"]["disk_after_bytes"]  # the tables released
    assert main(argv + ["--stack-folds", "2"]) == 1
    stacked = {s["name"]: s for s in json.loads(capsys.readouterr().out)["stages"]}
    assert stacked["score"]["disk_peak_bytes"] == stages["score"]["disk_peak_bytes"] + tables
    assert 60 * 10**9 < stacked["score"]["disk_peak_bytes"] < 66 * 10**9
    _short_disk(monkeypatch, 70 * 10**9)
    assert main(argv + ["--stack-folds", "2"]) == 0 and json.loads(capsys.readouterr().out)["fits"] is True


def test_plan_detect_rings_says_what_the_memory_limit_leaves_ring_finding(tmp_path, capsys):
    from graphtrain.fraud.pipeline import memory_budget as mb

    argv = ["plan", "--transactions", "8M", "--accounts", "1M", "--job", "detect-rings", "--keys-per-row", "1.8"]
    assert main(argv + ["--json"]) == 0
    plan = json.loads(capsys.readouterr().out)
    got = plan["memory"]
    # each stage after partitioning: the anonymous estimate the limit is checked against, beside the resident line
    assert [s["peak_anon_bytes"] for s in plan["stages"][1:]] == [mb.pipeline_bytes(1_000_000)] * 5
    assert plan["peak_anon_bytes"] == max(s["peak_anon_bytes"] for s in plan["stages"]) < plan["peak_rss_bytes"]
    assert got["memory_limit_bytes"] == mb.default_memory_limit()  # detect-rings' default, not partition's 2G
    assert got["stages_anon_bytes"] == mb.pipeline_bytes(1_000_000)
    assert got["ring_transaction_budget"] == mb.ring_transaction_budget(mb.default_memory_limit(), 1_000_000)
    assert got["limit_fits"] is True
    assert main(argv + ["--memory-limit", "6G"]) == 0
    out = capsys.readouterr()
    budget = (6 * 2**30 - mb.pipeline_bytes(1_000_000)) // mb.RING_BYTES_PER_TRANSACTION
    assert "--memory-limit 6.0 GiB" in out.out and f"up to {budget:,} transactions" in out.out and not out.err
    # a limit the run would refuse: the plan warns with the run's own message and exits 1, as for the disk
    assert main(argv + ["--memory-limit", "2G"]) == 1
    assert "below what the fraud pipeline needs for about 1,000,000 accounts" in capsys.readouterr().err
    assert main(["plan", "--transactions", "8M", "--accounts", "1M", "--json"]) == 0  # partition: no pipeline memory
    assert json.loads(capsys.readouterr().out)["memory"] is None


def test_fraud_disk_counts_the_account_tables_and_model_inputs_the_pipeline_writes(tmp_path):
    """The bytes per account of the baseline's feature tables and of the GNN's inputs, as the code
    writes them for directed transactions with an amount and a time (some accounts without any)."""
    from graphtrain.fraud.data.account_aggregates import BASE_FILE, HOP1_FILE, build_account_features
    from graphtrain.fraud.pipeline.detect import model_inputs
    from tests.fraud.test_account_aggregates import _dataset, _graph

    g = _graph(directed=True)
    ds = _dataset(g, tmp_path / "ds", 2)
    feats = build_account_features(ds, tmp_path / "work", own_feature_names=["a", "b"])
    _, names = model_inputs(feats)
    A = g.num_accounts
    w = plan.Workload(edges=2 * len(g.src), nodes=A, num_features=2)
    tables, inputs = plan.account_table_bytes(w)
    data = sum(np.load(tmp_path / "work" / f, mmap_mode="r").nbytes for f in (BASE_FILE, HOP1_FILE))
    assert tables == data + A  # + the split's int8 per account
    # the inputs' columns beyond the 2 own features, float32; the plan takes own features as complete
    # (this graph's own feature "a" has a missing value: one indicator column more)
    own_missing = [n for n in names if n.startswith("own_") and n.endswith("_missing")]
    assert own_missing == ["own_a_missing"]
    assert inputs == (len(names) - 2 - len(own_missing)) * 4 * A


def test_partition_time_waits_for_the_disk_when_moving_the_runs_bytes_takes_longer_than_computing(monkeypatch):
    """The disk-bound regime of the 500M-transaction runs: the input, everything written, and the
    spill the page cache could not keep (read back from the disk), at the disk's rate."""
    w = plan.workload_synthetic(500_000_000, 62_500_000, keys_per_row=1.8)
    assert w.input_bytes == pytest.approx(41.4 * 5e8 + 28.2 * 62.5e6, rel=1e-6)  # generate's Parquet files
    disk = plan.partition_disk(w)
    monkeypatch.setattr(plan, "_total_memory", lambda: 24 << 30)
    t = plan.partition_time(w, disk)
    read_back = disk["spill_written"] - plan.CALIBRATION["page_cache_fraction"] * (24 << 30)
    moved = w.input_bytes + disk["written"] + read_back
    compute = t["total"] - t["disk wait"]
    assert t["disk wait"] == pytest.approx(moved / plan.CALIBRATION["disk_bytes_per_s"] - compute, abs=0.5)
    assert disk["written"] > disk["spill_written"] > disk["spill_peak"]  # spilled bytes are written once each
    monkeypatch.setattr(plan, "_total_memory", lambda: 1 << 40)  # a page cache that keeps the whole spill
    assert plan.partition_time(w, disk)["disk wait"] < t["disk wait"]
    monkeypatch.setitem(plan.CALIBRATION, "disk_bytes_per_s", 1e12)  # a disk faster than the computing
    assert "disk wait" not in plan.partition_time(w, disk)
