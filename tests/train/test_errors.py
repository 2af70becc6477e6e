"""Bad datasets and options fail before any worker starts, with messages that say what to do."""
import json
import shutil

import numpy as np
import pytest

from graphtrain.errors import ConfigError, FormatError
from graphtrain.partition.partitioner import partition_arrays
from graphtrain.train import Trainer, predict


def test_missing_corrupt_and_wrong_version_datasets(labelled_dataset, tmp_path):
    with pytest.raises(FormatError, match="no such dataset directory"):
        Trainer(tmp_path / "nope")
    bad = tmp_path / "bad"
    shutil.copytree(labelled_dataset, bad)
    meta = json.loads((bad / "meta.json").read_text())
    (bad / "meta.json").write_text(json.dumps({**meta, "format_version": 7}))
    with pytest.raises(FormatError, match="format version 7 is not supported"):
        Trainer(bad)
    (bad / "meta.json").write_text("{not json")
    with pytest.raises(FormatError, match="not valid JSON"):
        Trainer(bad)
    (bad / "meta.json").write_text(json.dumps(meta))
    (bad / "part-0001" / "node_feat.npy").write_bytes(b"truncated")
    with pytest.raises(FormatError, match="node_feat.npy"):
        Trainer(bad)


def test_datasets_without_labels_or_features(tmp_path):
    rs = np.random.default_rng(0)
    src, dst = rs.integers(0, 50, 200), rs.integers(0, 50, 200)
    partition_arrays(src, dst, tmp_path / "plain", 2)
    with pytest.raises(ConfigError, match="no node labels to train on"):
        Trainer(tmp_path / "plain")
    partition_arrays(src, dst, tmp_path / "nofeat", 2, node_ids=np.arange(50), node_labels=np.arange(50) % 2)
    with pytest.raises(ConfigError, match="no node features"):
        Trainer(tmp_path / "nofeat")


@pytest.mark.parametrize("workers,match", [(0, "integer >= 1"), (-2, "integer >= 1"), (1.5, "integer >= 1"),
                                           (5, "5 workers but the dataset has 4 partitions")])
def test_worker_counts(labelled_dataset, workers, match):
    with pytest.raises(ConfigError, match=match):
        Trainer(labelled_dataset, num_workers=workers)


def test_options_and_unreachable_address(labelled_dataset, tmp_path):
    with pytest.raises(ConfigError, match="cannot reach the Ray cluster at 127.0.0.1:1"):
        Trainer(labelled_dataset, address="127.0.0.1:1")
    with pytest.raises(ConfigError, match="Ray address must be"):
        Trainer(labelled_dataset, address="nowhere")
    with pytest.raises(ConfigError, match="unknown training option"):
        Trainer(labelled_dataset, learning_rate=0.1)
    with pytest.raises(ConfigError, match="fanouts must be positive"):
        Trainer(labelled_dataset, fanouts=[10, 0])
    with pytest.raises(ConfigError, match="model must be one of"):
        Trainer(labelled_dataset, model="mlp")
    with pytest.raises(ConfigError, match="monitor must be one of"):
        Trainer(labelled_dataset, monitor="loss")
    with pytest.raises(FormatError, match="no such checkpoint"):
        predict(labelled_dataset, tmp_path / "no-ckpt", tmp_path / "s.parquet")
