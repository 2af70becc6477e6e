"""Feature standardisation (issue 19, item 9): a raw feature in the tens of thousands, as account
balances are. Without it the model starts at a loss in the thousands and barely ranks the
positives; with it (the default) it learns, the statistics are the training split's own (numpy's
mean/std of exactly those rows), bit-identical on 1 and 2 workers, stored in the checkpoint and
applied by ``predict`` and ``evaluate``."""
import json
import shutil

import numpy as np
import pyarrow.parquet as pq
import pytest

from graphtrain import metrics
from graphtrain.partition import open_dataset
from graphtrain.partition.partitioner import partition_arrays
from graphtrain.train import Trainer, predict
from graphtrain.train.checkpoint import MANIFEST, read_manifest, resolve_checkpoint
from graphtrain.train.normalize import FeatureNorm, training_stats

from tests.train.conftest import make_graph

pytestmark = pytest.mark.ray
RUN = dict(model="sage", fanouts=[5, 5], batch_size=32, epochs=5, hidden=16, lr=0.01, num_cpus=4, progress=False)


@pytest.fixture(scope="module")
def balance_dataset(tmp_path_factory):
    """make_graph's graph with one feature: 40,000 + 15,000 x (its label-bearing feature 0)."""
    raw, src, dst, x, y = make_graph()
    root = tmp_path_factory.mktemp("balances")
    partition_arrays(src, dst, root / "ds", 4, node_ids=raw, node_features=40000 + 15000 * x[:, :1],
                     node_labels=y, method="ldg")
    return root / "ds"


@pytest.fixture(scope="module")
def default_run(balance_dataset, tmp_path_factory):
    from graphtrain.train.group import connect

    connect(num_cpus=4)  # the session's local Ray (ray_local is per test)
    ck = tmp_path_factory.mktemp("ck2")
    t = Trainer(balance_dataset, num_workers=2, checkpoint_dir=ck, audit=True, **RUN)
    return t, t.fit(), ck


def test_default_standardises_and_learns(default_run, ray_local, tmp_path):
    t, r, ck = default_run
    assert r.test["auc"] > 0.85 and r.val["auc"] > 0.85, (r.val, r.test)
    assert r.history[0]["loss"] < 2
    # predict applies the checkpoint's statistics: its layer-wise scores rank as well ...
    out = pq.read_table(t.predict(tmp_path / "scores.parquet")["path"]).to_pandas()
    assert metrics.roc_auc(out.label, out.score) > 0.85
    # ... and without them (the manifest's feature_norm removed, in a copy) the same weights score otherwise
    shutil.copytree(resolve_checkpoint(ck), tmp_path / "copy")
    path = tmp_path / "copy"
    man = json.loads((path / MANIFEST).read_text())
    assert man["feature_norm"]["count"] == int((r.audit["roles"] == 0).sum())
    man["feature_norm"] = None
    (path / MANIFEST).write_text(json.dumps(man))
    raw = pq.read_table(predict(t.dataset_dir, path, tmp_path / "raw.parquet", num_workers=2, num_cpus=4,
                                progress=False)["path"]).to_pandas()
    assert not np.allclose(raw.score, out.score, atol=1e-3)


def test_statistics_are_the_training_split_and_worker_count_free(default_run, balance_dataset, ray_local, tmp_path):
    _, r2, ck2 = default_run
    r1 = Trainer(balance_dataset, num_workers=1, checkpoint_dir=tmp_path / "ck1", audit=True, **RUN).fit()
    assert np.array_equal(r1.audit["roles"], r2.audit["roles"])
    one, two = (FeatureNorm.from_dict(read_manifest(c).feature_norm) for c in (tmp_path / "ck1", ck2))
    assert np.array_equal(one.mean, two.mean) and np.array_equal(one.std, two.std) and one.count == two.count
    ds = open_dataset(balance_dataset)
    x = np.concatenate([np.asarray(ds.partition(p).features, dtype=np.float64) for p in range(ds.num_parts)])
    train = x[r2.audit["roles"] == 0]
    np.testing.assert_allclose(two.mean, train.mean(axis=0), rtol=1e-12)
    np.testing.assert_allclose(two.std, train.std(axis=0), rtol=1e-12)
    assert 30000 < two.mean[0] < 50000 and 10000 < two.std[0] < 25000
    # the same model and statistics on either worker count: the same metrics
    assert r1.test["auc"] > 0.85


def test_no_normalize_reads_raw_features(balance_dataset, default_run, ray_local, tmp_path):
    _, normalised, _ = default_run
    r = Trainer(balance_dataset, num_workers=2, checkpoint_dir=tmp_path / "ck", normalize=False, **RUN).fit()
    assert read_manifest(tmp_path / "ck").feature_norm is None
    assert r.history[0]["loss"] > 100  # logits in the thousands
    assert r.test["auc"] < normalised.test["auc"] - 0.1


def test_training_stats_numpy_oracle():
    """Two passes over blocks of rows, partition by partition; constant features get std 1."""
    rs = np.random.default_rng(0)
    x = np.concatenate([rs.normal(5e4, 2e4, (300, 1)), np.full((300, 1), 7.25), rs.normal(0, 1e-3, (300, 1))], axis=1)
    x = x.astype(np.float32)
    mask = rs.random(300) < 0.6
    parts = [(0, x[:100], mask[:100]), (2, x[100:], mask[100:])]
    got = training_stats(parts, 3, 3, lambda a: a.copy())
    want = x[mask].astype(np.float64)
    np.testing.assert_allclose(got.mean, want.mean(axis=0), rtol=1e-12)
    np.testing.assert_allclose(got.std[[0, 2]], want.std(axis=0)[[0, 2]], rtol=1e-10)
    assert got.std[1] == 1.0 and got.count == mask.sum()
    z = got.numpy(x)
    assert abs(z[mask, 0].mean()) < 1e-5 and abs(z[mask, 0].std() - 1) < 1e-5


def test_numpy_rows_are_the_torch_rows_bit_for_bit():
    """Layer-wise inference standardises fetched rows with ``numpy``, training batches with ``torch``."""
    import torch

    rs = np.random.default_rng(1)
    norm = FeatureNorm(rs.normal(3e4, 1e4, 5), rs.uniform(1e-3, 2e4, 5), 10)
    x = rs.normal(3e4, 3e4, (257, 5)).astype(np.float32)
    x[3, 1], x[7, 4] = np.nan, np.inf
    for rows in (x, x.astype(np.float64), np.asfortranarray(x), x[::2]):
        want = norm.torch(torch.from_numpy(np.ascontiguousarray(rows, dtype=np.float32))).numpy()
        got = norm.numpy(rows)
        assert got.dtype == np.float32 and got.shape == rows.shape
        assert np.array_equal(got.view(np.uint32), want.view(np.uint32))
