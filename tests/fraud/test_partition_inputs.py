"""The fraud data (generated, and prepared real data) is input that ``graphtrain partition`` reads."""
import json
import subprocess
import sys

import numpy as np
import pyarrow.parquet as pq

from graphtrain.fraud.data.datasets import load_named, write_prepared
from graphtrain.fraud.synth.generate import generate
from graphtrain.fraud.synth.generator_config import GeneratorConfig
from graphtrain.fraud.synth.synthetic_accounts import FEATURES
from graphtrain.partition import open_dataset
from tests.subprocess_env import minimal_env


def _cli(*args, cwd):
    result = subprocess.run([sys.executable, "-m", "graphtrain.cli", *args], cwd=cwd, capture_output=True, text=True,
                            env=minimal_env())
    assert result.returncode == 0, result.stderr
    return result


def test_generated_data_partitions(tmp_path):
    generate(GeneratorConfig(num_accounts=3000, num_rings=8, num_lookalikes=8, seed=5), tmp_path / "g")
    g = tmp_path / "g"
    _cli("partition", str(g / "transactions.parquet"), "--out", str(tmp_path / "ds"), "--num-parts", "3",
         "--time", "time", "--edge-columns", "amount", "--nodes", str(g / "accounts.parquet"), "--node-id", "account_id",
         "--label", "label", "--features", ",".join(FEATURES), "--no-progress", cwd=tmp_path)
    ds = open_dataset(tmp_path / "ds", verify=True)
    manifest = json.loads((g / "manifest.json").read_text())
    assert ds.meta.num_nodes == 3000 and ds.meta.num_edges == manifest["counts"]["transactions"]
    assert ds.meta.id_type == "string" and ds.meta.node_schema.feature_names == list(FEATURES)
    labels = np.concatenate([np.asarray(ds.partition(p).labels) for p in range(3)])
    assert int(labels.sum()) == manifest["counts"]["labelled_fraud"]
    ring_ids = set(pq.read_table(g / "accounts.parquet").column("account_id").to_pylist())
    raw = set().union(*(set(ds.raw_ids(p).to_pylist()) for p in range(3)))
    assert raw == ring_ids


def test_prepared_amlsim_partitions(shared_data, tmp_path):
    files = write_prepared(load_named("amlsim", shared_data / "amlsim" / "20K_cycle200"), tmp_path / "aml")
    _cli("partition", files["edges"], "--out", str(tmp_path / "ds"), "--num-parts", "2", "--time", "time",
         "--edge-columns", "amount", "--nodes", files["accounts"], "--node-id", "account_id", "--label", "label",
         "--features", "init_balance", "--no-progress", cwd=tmp_path)
    ds = open_dataset(tmp_path / "ds")
    assert ds.meta.num_nodes == 20000 and ds.meta.num_edges == 117805


def test_the_pipeline_partitions_transactions_without_an_amount(tmp_path):
    """An edge list without money (Amazon's, Tolokers' undirected ones) stores no amount column, so none
    is asked to be float32 (the pipeline once refused every such file: '--float32-columns names
    'amount', which is not an edge column')."""
    import pyarrow as pa

    from graphtrain.fraud.data.transaction_dataset import FLOAT32_COLUMNS, partition_spec, partition_transaction_files

    pq.write_table(pa.table({"src": ["a", "b", "c"], "dst": ["b", "c", "a"]}), tmp_path / "e.parquet")
    pq.write_table(pa.table({"account_id": ["a", "b", "c"], "label": [0, 1, 0], "f": [1.0, 2.0, 3.0]}),
                   tmp_path / "n.parquet")
    spec = partition_spec(tmp_path / "e.parquet", tmp_path / "n.parquet", src="src", dst="dst", id="account_id",
                          label="label", num_parts=1)
    assert spec.options.float32_columns == ()
    data, _ = partition_transaction_files(spec, tmp_path / "ds")
    assert data.amount is None and data.num_transactions == 3
    with_amount = partition_spec(tmp_path / "e.parquet", tmp_path / "n.parquet", src="src", dst="dst", id="account_id",
                                 label="label", amount="f")
    assert tuple(with_amount.options.float32_columns) == FLOAT32_COLUMNS
