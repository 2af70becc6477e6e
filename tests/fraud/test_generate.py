"""The synthetic transaction generator: determinism, chunked streaming, ground truth, honesty of the task."""
import json
import subprocess
import sys
import tracemalloc
from pathlib import Path

import numpy as np
import pyarrow.csv as pcsv
import pyarrow.parquet as pq
import pytest

from graphtrain import metrics
from graphtrain.errors import ConfigError, OutputExistsError
from graphtrain.fraud.synth import placement
from graphtrain.fraud.synth.generate import generate, read_manifest
from graphtrain.fraud.synth.generator_config import GeneratorConfig
from graphtrain.fraud.synth.typologies import LOOKALIKES, TYPOLOGIES
from tests.subprocess_env import minimal_env
SMALL = dict(num_accounts=3000, num_rings=10, num_lookalikes=8)


def _files(directory):
    return {p.name: p.read_bytes() for p in sorted(Path(directory).iterdir())}


@pytest.mark.parametrize("file_format", ["parquet", "csv"])
def test_same_seed_same_bytes(tmp_path, file_format):
    cfg = GeneratorConfig(**SMALL, file_format=file_format, seed=7)
    generate(cfg, tmp_path / "a")
    generate(cfg, tmp_path / "b")
    a, b = _files(tmp_path / "a"), _files(tmp_path / "b")
    assert set(a) == {f"transactions.{file_format}", f"accounts.{file_format}", "rings.csv", "lookalikes.csv", "manifest.json"}
    assert a == b
    generate(GeneratorConfig(**SMALL, file_format=file_format, seed=8), tmp_path / "c")
    c = _files(tmp_path / "c")
    for name in (f"transactions.{file_format}", f"accounts.{file_format}", "rings.csv"):
        assert c[name] != a[name]


def test_output_independent_of_chunking_and_streamed_in_chunks(tmp_path):
    base = dict(SMALL, num_accounts=2000, edges_per_account=5)
    generate(GeneratorConfig(**base, chunk_rows=1 << 20), tmp_path / "one")
    generate(GeneratorConfig(**base, chunk_rows=700), tmp_path / "many")
    for name in ("transactions.parquet", "accounts.parquet"):
        assert pq.read_table(tmp_path / "one" / name).equals(pq.read_table(tmp_path / "many" / name))
    assert (tmp_path / "one" / "rings.csv").read_bytes() == (tmp_path / "many" / "rings.csv").read_bytes()
    meta = pq.ParquetFile(tmp_path / "many" / "transactions.parquet").metadata
    background = 2000 * 5
    assert meta.num_row_groups == -(-background // 700)  # one row group per chunk of the background
    planted = read_manifest(tmp_path / "many")["counts"]["transactions"] - background
    sizes = [meta.row_group(i).num_rows for i in range(meta.num_row_groups)]
    assert max(sizes) <= 700 + planted and sum(sizes) == background + planted
    accounts = pq.ParquetFile(tmp_path / "many" / "accounts.parquet").metadata
    assert accounts.num_row_groups == -(-2000 // 700)


def test_memory_does_not_grow_with_the_graph(tmp_path, monkeypatch):
    """NumPy memory (tracemalloc sees every NumPy buffer) is set by the chunk size, not by the size of
    the graph nor by the number of planted rings (one per 400 accounts by default)."""
    # planted transactions are built per slot of background rows; small slots let a small test
    # graph span many of them, as a large graph spans many slots of the default million rows
    monkeypatch.setattr(placement, "SLOT_ROWS", 8192)
    generate(GeneratorConfig(num_accounts=500, chunk_rows=500), tmp_path / "warm")
    peaks = []
    for n in (4000, 64000):
        tracemalloc.start()
        generate(GeneratorConfig(num_accounts=n, chunk_rows=2000), tmp_path / f"g{n}")
        peaks.append(tracemalloc.get_traced_memory()[1])
        tracemalloc.stop()
    # 16x the accounts, transactions (32K -> 512K background rows) and rings (10 -> 160): only the
    # plan (a few bytes per planted account) grows with them; whole columns would be ~20 MB more
    assert peaks[1] < 1.5 * peaks[0], peaks
    tracemalloc.start()
    generate(GeneratorConfig(num_accounts=64000, chunk_rows=32000), tmp_path / "big-chunks")
    assert tracemalloc.get_traced_memory()[1] > 4 * peaks[1]  # the measurement does see chunk buffers
    tracemalloc.stop()


@pytest.fixture(scope="module")
def generated(tmp_path_factory):
    out = tmp_path_factory.mktemp("gen") / "data"
    cfg = GeneratorConfig(num_accounts=8000, num_rings=25, num_lookalikes=12, seed=3)
    generate(cfg, out)
    tx = pq.read_table(out / "transactions.parquet").to_pandas()
    acc = pq.read_table(out / "accounts.parquet").to_pandas()
    rings = pcsv.read_csv(out / "rings.csv").to_pandas()
    looks = pcsv.read_csv(out / "lookalikes.csv").to_pandas()
    return cfg, out, tx, acc, rings, looks


def test_ground_truth_is_consistent(generated):
    cfg, out, tx, acc, rings, looks = generated
    manifest = read_manifest(out)
    assert manifest["counts"]["transactions"] == len(tx) and manifest["counts"]["accounts"] == len(acc) == 8000
    assert acc.account_id.is_unique and acc.account_id.str.fullmatch(r"AC\d{19}").all()
    ids = set(acc.account_id)
    assert set(rings.account_id) <= ids and set(looks.account_id) <= ids and set(tx.src) | set(tx.dst) <= ids
    assert rings.account_id.is_unique and not set(rings.account_id) & set(looks.account_id)  # one pattern per account
    assert rings.ring_id.nunique() == 25 and set(rings.typology) == set(TYPOLOGIES)
    assert set(looks.kind) == set(LOOKALIKES)
    assert (tx.src != tx.dst).all() and (tx.amount > 0).all()
    assert tx.time.between(cfg.start_time, cfg.start_time + cfg.period - 1).all()
    # labels: ring members are fraud except for the missed ones; few false reports elsewhere
    label = acc.set_index("account_id").label
    member_labels = label[rings.account_id]
    assert 0.85 <= member_labels.mean() < 1.0
    others = label.drop(rings.account_id)
    assert others.sum() <= 0.003 * len(others)


def test_planted_shapes_are_in_the_transactions(generated):
    cfg, out, tx, acc, rings, looks = generated
    pairs = set(zip(tx.src, tx.dst))
    for ring_id, ring in rings.groupby("ring_id"):
        roles = dict(zip(ring.account_id, ring.role))
        typ = ring.typology.iloc[0]
        members = list(ring.account_id)
        if typ == "fan_in":
            hub = next(a for a, r in roles.items() if r == "collector")
            assert all((a, hub) in pairs for a in members if a != hub)
        elif typ == "fan_out":
            hub = next(a for a, r in roles.items() if r == "distributor")
            assert all((hub, a) in pairs for a in members if a != hub)
        elif typ == "cycle":
            assert all((a, b) in pairs for a, b in zip(members, members[1:] + members[:1]))
        elif typ == "scatter_gather":
            origin = next(a for a, r in roles.items() if r == "origin")
            sink = next(a for a, r in roles.items() if r == "beneficiary")
            mids = [a for a, r in roles.items() if r == "intermediate"]
            assert mids and all((origin, m) in pairs and (m, sink) in pairs for m in mids)
        else:
            senders = [a for a, r in roles.items() if r == "sender"]
            receivers = [a for a, r in roles.items() if r == "receiver"]
            block = sum((s, r) in pairs for s in senders for r in receivers)
            assert len(senders) >= 2 and len(receivers) >= 2 and block >= 0.5 * len(senders) * len(receivers)


def test_members_spread_over_the_id_space(generated):
    cfg, out, tx, acc, rings, looks = generated
    # raw IDs are scrambled: members' positions in the sorted ID list are spread over all quartiles
    rank = acc.account_id.rank().set_axis(acc.account_id) / len(acc)
    quartiles = np.bincount(np.minimum((rank[rings.account_id].to_numpy() * 4).astype(int), 3), minlength=4)
    assert quartiles.min() >= 0.1 * len(rings)


def test_features_are_only_weakly_informative(generated):
    cfg, out, tx, acc, rings, looks = generated
    truth = acc.account_id.isin(rings.account_id).to_numpy().astype(int)
    for col in ("age_days", "balance", "kyc_level", "num_devices", "country_risk", "is_business", "logins_30d"):
        auc = metrics.roc_auc(truth, acc[col].to_numpy())
        assert abs(auc - 0.5) < 0.2, (col, auc)


def test_zero_feature_signal_makes_features_uninformative(tmp_path):
    generate(GeneratorConfig(num_accounts=8000, num_rings=40, num_lookalikes=0, feature_signal=0.0), tmp_path / "g")
    acc = pq.read_table(tmp_path / "g" / "accounts.parquet").to_pandas()
    truth = acc.account_id.isin(pcsv.read_csv(tmp_path / "g" / "rings.csv").to_pandas().account_id).to_numpy().astype(int)
    for col in ("age_days", "balance", "num_devices", "country_risk"):
        assert abs(metrics.roc_auc(truth, acc[col].to_numpy()) - 0.5) < 0.06, col


def test_int64_ids(tmp_path):
    generate(GeneratorConfig(**SMALL, id_type="int64"), tmp_path / "g")
    tx = pq.read_table(tmp_path / "g" / "transactions.parquet")
    acc = pq.read_table(tmp_path / "g" / "accounts.parquet")
    assert str(tx.schema.field("src").type) == "int64" and str(acc.schema.field("account_id").type) == "int64"
    ids = acc.column("account_id").to_numpy()
    assert np.unique(ids).size == ids.size and ids.min() >= 0 and ids.max() > 2**40


@pytest.mark.parametrize("bad, option", [
    (dict(num_accounts=10), "--accounts"),
    (dict(min_ring_size=2), "--min-ring-size"),
    (dict(num_accounts=1000, num_rings=100), "--rings"),
    (dict(file_format="xlsx"), "--format"),
    (dict(rmat_abc=(0.5, 0.5, 0.5)), "--rmat-abc"),
    (dict(missed_fraud_rate=1.5), "--missed-fraud-rate"),
])
def test_bad_config_names_the_option(bad, option):
    with pytest.raises(ConfigError, match=option):
        GeneratorConfig(**bad).validate()


def test_refuses_to_overwrite_and_leaves_no_partial_output(tmp_path):
    out = tmp_path / "g"
    generate(GeneratorConfig(**SMALL), out)
    before = _files(out)
    with pytest.raises(OutputExistsError, match="--force"):
        generate(GeneratorConfig(**SMALL, seed=1), out)
    assert _files(out) == before
    generate(GeneratorConfig(**SMALL, seed=1), out, force=True)
    assert _files(out) != before
    foreign = tmp_path / "mine"
    foreign.mkdir()
    (foreign / "notes.txt").write_text("keep me")
    with pytest.raises(OutputExistsError, match="manifest.json"):
        generate(GeneratorConfig(**SMALL), foreign, force=True)
    assert (foreign / "notes.txt").read_text() == "keep me"
    with pytest.raises(ConfigError):
        generate(GeneratorConfig(num_accounts=10), tmp_path / "bad")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["g", "mine"]  # no temporary leftovers


def _cli(*args, cwd):
    return subprocess.run([sys.executable, "-m", "graphtrain.cli", *args], cwd=cwd, capture_output=True, text=True,
                          env=minimal_env())


def test_cli(tmp_path):
    ok = _cli("generate", "--out", str(tmp_path / "g"), "--accounts", "2000", "--rings", "5", "--format", "csv", cwd=tmp_path)
    assert ok.returncode == 0, ok.stderr
    summary = json.loads(ok.stdout.strip().splitlines()[-1])
    assert summary["counts"]["rings"] == 5 and Path(summary["files"]["transactions"]).name == "transactions.csv"
    again = _cli("generate", "--out", str(tmp_path / "g"), "--accounts", "2000", cwd=tmp_path)
    assert again.returncode != 0 and "--force" in again.stderr
    bad = _cli("generate", "--out", str(tmp_path / "h"), "--accounts", "2000", "--max-ring-size", "2", cwd=tmp_path)
    assert bad.returncode != 0 and "--min-ring-size" in bad.stderr and not (tmp_path / "h").exists()
    typo = _cli("generate", "--out", str(tmp_path / "h"), "--rmat-abc", "0.5,0.2", cwd=tmp_path)
    assert typo.returncode != 0 and "three comma-separated numbers" in typo.stderr
