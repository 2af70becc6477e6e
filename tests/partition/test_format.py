import json

import numpy as np
import pytest

from graphtrain.errors import FormatError, OutputExistsError
from graphtrain.io import staged_directory, staged_file
from graphtrain.partition import format as fmt


def _write_tiny_dataset(root, verify_tamper=False):
    """Two partitions of a 5-node, 4-edge graph written through the format module's writers."""
    with staged_directory(root) as tmp:
        files = {}
        # part 0: nodes 0..2, in-edges: 3->0, 4->1 ; part 1: nodes 3..4, in-edges: 0->3, 1->4
        parts = [
            dict(indptr=[0, 1, 2, 2], src=[3, 4], time=[5, 7], raw=[10, 11, 12]),
            dict(indptr=[0, 1, 2], src=[0, 1], time=[1, 2], raw=[13, 14]),
        ]
        for p, d in enumerate(parts):
            pd = fmt.part_dir_name(p)
            files[f"{pd}/indptr.npy"] = fmt.write_array(tmp / pd / "indptr.npy", np.array(d["indptr"], np.int64))
            files[f"{pd}/src.npy"] = fmt.write_array(tmp / pd / "src.npy", np.array(d["src"], np.int64))
            w = fmt.NpyWriter(tmp / pd / "edge_time.npy", np.int64, (2,))
            w.write(np.array(d["time"][:1]))
            w.write(np.array(d["time"][1:]))
            files[f"{pd}/edge_time.npy"] = w.close()
            files[f"{pd}/raw_id.npy"] = fmt.write_array(tmp / pd / "raw_id.npy", np.array(d["raw"], np.int64))
        meta = fmt.DatasetMeta(
            num_parts=2, num_nodes=5, num_edges=4, node_bounds=[0, 3, 5], edge_bounds=[0, 2, 4], id_type="int64",
            edge_columns=[fmt.EdgeColumn("time", "int64", "ts")], time_sorted=True, files=files,
        )
        fmt.write_meta(tmp, meta)
    return root


def test_roundtrip(tmp_path):
    ds = fmt.open_dataset(_write_tiny_dataset(tmp_path / "ds"), verify=True)
    assert ds.num_parts == 2 and ds.book.num_edges == 4
    g1 = ds.graph(1)
    assert g1.node_start == 3 and g1.edge_start == 2 and g1.num_global_nodes == 5
    assert g1.src.tolist() == [0, 1] and g1.time.tolist() == [1, 2] and g1.time_sorted
    g1.validate()
    assert ds.raw_ids(0).tolist() == [10, 11, 12]
    assert ds.partition(0).features is None


def test_refuses_existing_output_without_force(tmp_path):
    root = _write_tiny_dataset(tmp_path / "ds")
    with pytest.raises(OutputExistsError, match="--force"):
        with staged_directory(root):
            pass
    # with force it is replaced atomically
    _write_tiny_dataset_force = staged_directory(root, force=True)
    with _write_tiny_dataset_force as tmp:
        (tmp / "meta.json").write_text((root / "meta.json").read_text())
    assert (root / "meta.json").exists() and not (root / "part-0000").exists()


def test_force_never_deletes_foreign_directory(tmp_path):
    foreign = tmp_path / "home"
    foreign.mkdir()
    (foreign / "precious.txt").write_text("x")
    with pytest.raises(OutputExistsError, match="not a graphtrain dataset"):
        with staged_directory(foreign, force=True):
            pass
    assert (foreign / "precious.txt").exists()


def test_failure_leaves_nothing(tmp_path):
    with pytest.raises(RuntimeError):
        with staged_directory(tmp_path / "out") as tmp:
            (tmp / "half.npy").write_bytes(b"x")
            raise RuntimeError("boom")
    assert list(tmp_path.iterdir()) == []


def test_staged_file(tmp_path):
    target = tmp_path / "scores.csv"
    with staged_file(target) as tmp:
        tmp.write_text("a\n")
    assert target.read_text() == "a\n"
    with pytest.raises(OutputExistsError):
        with staged_file(target):
            pass
    with pytest.raises(ValueError):
        with staged_file(target, force=True) as tmp:
            tmp.write_text("half")
            raise ValueError
    assert target.read_text() == "a\n" and len(list(tmp_path.iterdir())) == 1


def test_wrong_version_and_missing_files(tmp_path):
    root = _write_tiny_dataset(tmp_path / "ds")
    meta = json.loads((root / "meta.json").read_text())
    meta["format_version"] = 99
    (root / "meta.json").write_text(json.dumps(meta))
    with pytest.raises(FormatError, match="format version 99"):
        fmt.open_dataset(root)
    meta["format_version"] = fmt.FORMAT_VERSION
    (root / "meta.json").write_text(json.dumps(meta))
    (root / "part-0001" / "src.npy").unlink()
    with pytest.raises(FormatError, match="src.npy: missing"):
        fmt.open_dataset(root)
    with pytest.raises(FormatError, match="no such dataset"):
        fmt.open_dataset(tmp_path / "nope")
    (tmp_path / "junk").mkdir()
    (tmp_path / "junk" / "meta.json").write_text("{not json")
    with pytest.raises(FormatError, match="not valid JSON"):
        fmt.open_dataset(tmp_path / "junk")


def test_corruption_is_detected(tmp_path):
    root = _write_tiny_dataset(tmp_path / "ds")
    path = root / "part-0000" / "src.npy"
    raw = bytearray(path.read_bytes())
    raw[-1] ^= 0xFF
    path.write_bytes(bytes(raw))
    fmt.open_dataset(root)  # header and shape still fine
    with pytest.raises(FormatError, match="sha256 mismatch"):
        fmt.open_dataset(root, verify=True)
    # a truncated array is caught without verify
    path.write_bytes(bytes(raw[:-8]))
    with pytest.raises(FormatError):
        fmt.open_dataset(root)


def test_npy_writer_checks_row_count(tmp_path):
    w = fmt.NpyWriter(tmp_path / "a.npy", np.float32, (3, 2))
    w.write(np.ones((2, 2)))
    with pytest.raises(ValueError, match="wrote 2 of 3"):
        w.close()
    w = fmt.NpyWriter(tmp_path / "b.npy", np.float32, (1, 2))
    with pytest.raises(ValueError, match="more than 1"):
        w.write(np.ones((2, 2)))
    w.abort()
    w = fmt.NpyWriter(tmp_path / "c.npy", np.float32, (2, 2))
    w.write(np.arange(4).reshape(2, 2))
    rec = w.close()
    assert np.array_equal(np.load(tmp_path / "c.npy"), np.arange(4, dtype=np.float32).reshape(2, 2))
    assert rec.shape == [2, 2] and rec.dtype == "<f4"


def test_npy_writer_open_length(tmp_path):
    w = fmt.NpyWriter(tmp_path / "d.npy", np.int64, (-1,))
    for k in range(3):
        w.write(np.arange(k * 10, k * 10 + 7))
    rec = w.close()
    arr = np.load(tmp_path / "d.npy", mmap_mode="r")
    assert rec.shape == [21] and arr.shape == (21,) and arr[7] == 10
    w = fmt.NpyWriter(tmp_path / "e.npy", np.float32, (-1, 3))
    rec = w.close()
    assert np.load(tmp_path / "e.npy").shape == (0, 3) and rec.shape == [0, 3]


def test_spill_streams_with_few_open_handles(tmp_path):
    from graphtrain.partition.spill import SpillDir

    spill = SpillDir(tmp_path / "s", max_open=3)
    for round_ in range(4):
        for k in range(10):  # more streams than open handles: least recently used are closed
            spill.append(f"s{k}", np.full(5, round_ * 10 + k, dtype=np.int64))
    assert spill.read("s7", np.int64).tolist() == [7] * 5 + [17] * 5 + [27] * 5 + [37] * 5
    assert spill.length("s2", np.int64) == 20 and spill.read("s2", np.int64, 5, 3).tolist() == [12, 12, 12]
    spill.append("s2", np.array([99]))
    assert spill.read("s2", np.int64)[-1] == 99
    spill.write("s2", np.array([1, 2]))
    assert spill.read("s2", np.int64).tolist() == [1, 2]
    spill.remove("s3")
    assert not spill.exists("s3") and spill.read("s3", np.int64).size == 0
    spill.close()
