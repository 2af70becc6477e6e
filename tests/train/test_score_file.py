"""predict's output file: the ranks' Parquet files, written a row group at a time, concatenated in order."""
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from graphtrain.train.score_file import concatenate_scores, score_and_pred, write_rank_scores


def _probs(n, c, seed):
    p = np.random.default_rng(seed).random((n, c)).astype(np.float32)
    return p / p.sum(axis=1, keepdims=True)


@pytest.mark.parametrize("id_type", ["int64", "string"])
def test_ranks_written_in_small_row_groups_concatenate_to_every_row_in_order(tmp_path, id_type):
    # two ranks: rank 0 holds partitions of 5 and 0 nodes, rank 1 one of 7; row groups of 2 rows
    sizes = [[5, 0], [7]]
    start, paths, expect_ids, expect_probs, expect_labels = 0, [], [], [], []
    for rank, parts in enumerate(sizes):
        raw_parts = []
        for n in parts:
            ids = np.arange(start, start + n, dtype=np.int64) * 10 + 3
            raw_parts.append(ids if id_type == "int64" else pa.array([f"A{i}" for i in ids], pa.large_string()))
            expect_ids += list(ids) if id_type == "int64" else [f"A{i}" for i in ids]
            start += n
        total = sum(parts)
        probs = _probs(total, 2, rank)
        labels = np.arange(total) % 3 - 1  # -1, 0, 1, ...
        path = tmp_path / f"r{rank}.parquet"
        assert write_rank_scores(path, id_type, raw_parts, probs, lambda a, b: labels[a:b], rows_per_group=2) == total
        assert pq.ParquetFile(path).num_row_groups == -(-total // 2)  # one non-empty partition a rank
        paths.append(path)
        expect_probs.append(probs)
        expect_labels.append(labels)
    out = tmp_path / "scores.parquet"
    assert concatenate_scores(paths, out) == 12
    table = pq.read_table(out)
    assert table.column("node_id").to_pylist() == expect_ids
    probs = np.concatenate(expect_probs)
    np.testing.assert_array_equal(table.column("score").to_numpy(), probs[:, 1])
    np.testing.assert_array_equal(table.column("pred").to_numpy(), probs.argmax(axis=1))
    np.testing.assert_array_equal(table.column("label").to_numpy(), np.concatenate(expect_labels))


def test_no_labels_write_minus_one_and_an_empty_rank_keeps_the_schema(tmp_path):
    empty, full = tmp_path / "e.parquet", tmp_path / "f.parquet"
    assert write_rank_scores(empty, "string", [], np.zeros((0, 2), np.float32), lambda a, b: None) == 0
    write_rank_scores(full, "string", [pa.array(["x", "y"], pa.large_string())], _probs(2, 2, 0), lambda a, b: None)
    out = tmp_path / "o.parquet"
    assert concatenate_scores([empty, full], out) == 2
    table = pq.read_table(out)
    assert table.schema.field("node_id").type == pa.large_string()
    assert table.column("label").to_pylist() == [-1, -1]


def test_multiclass_score_is_the_predicted_class_probability():
    probs = np.array([[0.2, 0.5, 0.3], [0.6, 0.1, 0.3]], np.float32)
    score, pred = score_and_pred(probs)
    assert pred.tolist() == [1, 0]
    np.testing.assert_array_equal(score, np.array([0.5, 0.6], np.float32))


def test_raw_ids_and_scores_of_different_lengths_are_refused(tmp_path):
    with pytest.raises(ValueError, match="3 raw IDs for 2 scored nodes"):
        write_rank_scores(tmp_path / "x.parquet", "int64", [np.arange(3)], _probs(2, 2, 0), lambda a, b: None)
