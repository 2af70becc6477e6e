"""``graphtrain partition | inspect | export`` end to end, on the real AMLSim edge list, and on bad input."""
import gzip
import json
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq
import pytest

from graphtrain.cli import main

REPO = Path(__file__).resolve().parents[2]


def run_cli(*args):
    return main([str(a) for a in args])


def _multiset(table: pa.Table, columns):
    cols = [table.column(c).to_pylist() for c in columns]
    return Counter(zip(*cols))


@pytest.fixture(scope="module")
def aml(shared_data):
    return shared_data / "amlsim" / "20K_cycle200"


def test_amlsim_int_ids_roundtrip(aml, tmp_path, capsys):
    out = tmp_path / "ds"
    code = run_cli("partition", aml / "transactions.csv", "--out", out, "--num-parts", 4, "--src", "sourceNodeId",
                   "--dst", "targetNodeId", "--time", "time", "--edge-columns", "value", "--nodes", aml / "nodes.csv",
                   "--node-id", "nodeid", "--label", "isFraud", "--features", "init_balance", "--method", "ldg")
    assert code == 0
    assert "edge cut" in capsys.readouterr().out
    assert run_cli("inspect", out, "--json", "--verify") == 0
    info = json.loads(capsys.readouterr().out)
    src = pacsv.read_csv(aml / "transactions.csv")
    nodes = pacsv.read_csv(aml / "nodes.csv")
    assert info["num_parts"] == 4 and info["num_edges"] == src.num_rows and info["num_nodes"] == nodes.num_rows
    assert len(info["node_boundaries"]) == 5 and info["node_boundaries"][-1] == info["num_nodes"]
    assert info["edge_boundaries"][-1] == info["num_edges"] and 0 < info["edge_cut"] < info["num_edges"]
    assert info["label"] == "isFraud" and info["num_classes"] == 2 and info["time_sorted"]
    export = tmp_path / "edges.parquet"
    assert run_cli("export", out, "--out", export) == 0
    back = pq.read_table(export)
    cols = ["sourceNodeId", "targetNodeId", "value", "time"]
    assert _multiset(back, cols) == _multiset(src, cols)


def test_amlsim_string_ids_gzip_roundtrip(aml, tmp_path, capsys):
    table = pacsv.read_csv(aml / "transactions.csv")
    names = {c: pa.compute.binary_join_element_wise("ACC-", table.column(c).cast(pa.string()), "")
             for c in ("sourceNodeId", "targetNodeId")}
    strings = table.set_column(0, "sourceNodeId", names["sourceNodeId"]).set_column(1, "targetNodeId", names["targetNodeId"])
    path = tmp_path / "tx.csv.gz"
    with pa.CompressedOutputStream(str(path), "gzip") as sink:
        pacsv.write_csv(strings, sink)
    out = tmp_path / "ds"
    assert run_cli("partition", path, "--out", out, "-p", 3, "--src", "sourceNodeId", "--dst", "targetNodeId",
                   "--time", "time", "--edge-columns", "value", "--json") == 0
    summary = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert summary["id_type"] == "string" and summary["num_edges"] == table.num_rows
    export = tmp_path / "back.csv"
    assert run_cli("export", out, "--out", export) == 0
    back = pacsv.read_csv(export)
    cols = ["sourceNodeId", "targetNodeId", "value", "time"]
    assert _multiset(back, cols) == _multiset(strings, cols)


def test_console_script_help_is_fast_and_complete():
    res = subprocess.run([sys.executable, "-m", "graphtrain.cli", "partition", "--help"], cwd=REPO,
                         capture_output=True, text=True, timeout=60)
    assert res.returncode == 0
    for flag in ("--num-parts", "--method", "--memory-limit", "--force", "--nodes", "--features", "--time", "--weight"):
        assert flag in res.stdout


# -- bad input -------------------------------------------------------------------------------------
def _write(path: Path, text: bytes) -> Path:
    path.write_bytes(text)
    return path


def _expect_error(capsys, tmp_path, *args, match):
    out = tmp_path / "out"
    code = run_cli("partition", *args, "--out", out, "-p", 2)
    err = capsys.readouterr().err
    assert code == 2, err
    for m in match:
        assert m in err, err
    # nothing half-written: no output, no temporary directory left behind
    assert not out.exists()
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".out.")]
    return err


def test_short_row(tmp_path, capsys):
    f = _write(tmp_path / "e.csv", b"src,dst,amount\n1,2,3.5\n4,5,6\n7,8\n")
    _expect_error(capsys, tmp_path, f, "--edge-columns", "amount", match=["e.csv, line 4", "expected 3 fields, found 2"])


def test_missing_column(tmp_path, capsys):
    f = _write(tmp_path / "e.csv", b"a,b\n1,2\n")
    _expect_error(capsys, tmp_path, f, match=["e.csv", "no column 'src'", "columns are: a, b"])


def test_text_in_number_column(tmp_path, capsys):
    f = _write(tmp_path / "e.csv", b"src,dst,amount\n1,2,3.5\n4,5,abc\n")
    _expect_error(capsys, tmp_path, f, "--edge-columns", "amount", match=["e.csv, line 3", "'amount'", "expected a number, got 'abc'"])


def test_text_in_int_id_column(tmp_path, capsys):
    f = _write(tmp_path / "e.csv", b"src,dst\n1,2\n3,x9\n")
    _expect_error(capsys, tmp_path, f, "--id-type", "int64", match=["e.csv, line 3", "'dst'", "expected an integer"])


def test_empty_input(tmp_path, capsys):
    f = _write(tmp_path / "e.csv", b"src,dst\n")
    _expect_error(capsys, tmp_path, f, match=["e.csv", "no edges"])


def test_non_utf8(tmp_path, capsys):
    f = _write(tmp_path / "e.csv", b"src,dst\nalice,bob\ncarol,\xff\xfe\n")
    _expect_error(capsys, tmp_path, f, match=["e.csv, line 3", "'dst'", "UTF-8"])


def test_missing_id_value(tmp_path, capsys):
    f = _write(tmp_path / "e.csv", b"src,dst\n1,2\n3,\n")
    _expect_error(capsys, tmp_path, f, match=["e.csv, line 3", "'dst'", "missing ID"])


def test_negative_weight(tmp_path, capsys):
    f = _write(tmp_path / "e.csv", b"src,dst,w\n1,2,1.0\n3,4,-2\n")
    _expect_error(capsys, tmp_path, f, "--weight", "w", match=["e.csv, line 3", "'w'", ">= 0"])


def test_parquet_row_numbers(tmp_path, capsys):
    f = tmp_path / "e.parquet"
    pq.write_table(pa.table({"src": ["a", "b", None], "dst": ["b", "c", "d"]}), f)
    _expect_error(capsys, tmp_path, f, match=["e.parquet, row 3", "missing ID"])


def test_unknown_extension(tmp_path, capsys):
    f = _write(tmp_path / "e.dat", b"src,dst\n1,2\n")
    _expect_error(capsys, tmp_path, f, match=["e.dat", "--format"])


def test_duplicate_node_rows(tmp_path, capsys):
    e = _write(tmp_path / "e.csv", b"src,dst\n1,2\n")
    n = _write(tmp_path / "n.csv", b"id,label\n1,0\n2,1\n1,0\n")
    _expect_error(capsys, tmp_path, e, "--nodes", n, "--label", "label", match=["n.csv, line 4", "node ID 1 appears twice", "line 2"])


def test_edge_to_unknown_node(tmp_path, capsys):
    e = _write(tmp_path / "e.csv", b"src,dst\n1,2\n2,3\n")
    n = _write(tmp_path / "n.csv", b"id\n1\n2\n")
    _expect_error(capsys, tmp_path, e, "--nodes", n, match=["e.csv, line 3", "not in the node table", "--add-missing-nodes"])
    out = tmp_path / "ok"
    assert run_cli("partition", e, "--nodes", n, "--add-missing-nodes", "--out", out, "-p", 1, "--json") == 0
    assert json.loads(capsys.readouterr().out.strip().splitlines()[-1])["missing_nodes_added"] == 1


def test_bad_split_value(tmp_path, capsys):
    e = _write(tmp_path / "e.csv", b"src,dst\n1,2\n")
    n = _write(tmp_path / "n.csv", b"id,split\n1,train\n2,holdout\n")
    _expect_error(capsys, tmp_path, e, "--nodes", n, "--split", "split", match=["n.csv, line 3", "train, val, test"])


def test_existing_output_needs_force(tmp_path, capsys):
    e = _write(tmp_path / "e.csv", b"src,dst\n1,2\n2,3\n")
    out = tmp_path / "ds"
    assert run_cli("partition", e, "--out", out, "-p", 1) == 0
    before = (out / "meta.json").read_text()
    assert run_cli("partition", e, "--out", out, "-p", 2) == 2
    assert "--force" in capsys.readouterr().err
    assert (out / "meta.json").read_text() == before
    assert run_cli("partition", e, "--out", out, "-p", 2, "--force") == 0
    assert json.loads((out / "meta.json").read_text())["num_parts"] == 2


def test_inspect_reports_corruption(tmp_path, capsys):
    e = _write(tmp_path / "e.csv", b"src,dst\n1,2\n2,3\n")
    out = tmp_path / "ds"
    assert run_cli("partition", e, "--out", out, "-p", 1) == 0
    src = out / "part-0000" / "src.npy"
    data = bytearray(src.read_bytes())
    data[-1] ^= 1
    src.write_bytes(bytes(data))
    assert run_cli("inspect", out, "--verify") == 2
    assert "part-0000/src.npy: sha256 mismatch" in capsys.readouterr().err


def test_tsv_without_header_and_self_loops(tmp_path, capsys):
    f = _write(tmp_path / "e.tsv", b"a\tb\t1\nb\tb\t2\na\tb\t3\n")
    out = tmp_path / "ds"
    assert run_cli("partition", f, "--no-header", "--src", 0, "--dst", 1, "--time", 2, "--out", out, "-p", 2,
                   "--drop-self-loops", "--drop-duplicates", "--json") == 0
    s = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert (s["self_loops"], s["dropped_self_loops"], s["duplicate_edges"], s["dropped_duplicates"], s["num_edges"]) == (1, 1, 1, 1, 1)


def test_node_time_column(tmp_path, capsys):
    """``--node-time``: one int64 time per node (int64 max for added nodes), its name and unit in meta.json."""
    import numpy as np

    from graphtrain.partition.format import open_dataset

    e = _write(tmp_path / "e.csv", b"src,dst,ts\n1,2,2024-01-03\n2,3,2024-01-05\n3,4,2024-01-01\n")
    n = _write(tmp_path / "n.csv", b"id,label,seen\n1,0,2024-01-02\n2,1,2024-01-04\n3,0,2024-01-06\n")
    out = tmp_path / "ds"
    assert run_cli("partition", e, "--time", "ts", "--nodes", n, "--label", "label", "--node-time", "seen",
                   "--add-missing-nodes", "--out", out, "-p", 2) == 0
    ds = open_dataset(out, verify=True)
    schema = ds.meta.node_schema
    assert (schema.time, schema.time_unit) == ("seen", ds.meta.edge_column("time").unit) == ("seen", "D")
    got = {}
    for p in range(ds.num_parts):
        got.update(zip(np.asarray(ds.raw_ids(p)).tolist(), np.asarray(ds.partition(p).time).tolist()))
    day = np.datetime64("2024-01-01", "D").astype(np.int64)
    assert got == {1: day + 1, 2: day + 3, 3: day + 5, 4: np.iinfo(np.int64).max}
    assert run_cli("inspect", out) == 0 and "time 'seen'" in capsys.readouterr().out
    _expect_error(capsys, tmp_path, e, "--node-time", "seen", match=["--node-time", "need --nodes"])


def test_skewed_in_edges_are_reported(tmp_path, capsys):
    """A hub with nearly every in-edge: whichever partition gets it holds ~all edges, and the summary
    carries a warning that says which partition and what share; a balanced graph gets none."""
    hub = b"src,dst\n" + b"".join(b"%d,0\n" % i for i in range(1, 301)) + b"1,2\n3,4\n"
    out = tmp_path / "ds"
    assert run_cli("partition", _write(tmp_path / "hub.csv", hub), "--out", out, "-p", 2, "--json") == 0
    s = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert s["edge_balance"] > 1.9 and len(s["warnings"]) == 1
    assert "holds 99." in s["warnings"][0] and "edge balance max/mean" in s["warnings"][0]
    ring = b"src,dst\n" + b"".join(b"%d,%d\n" % (i, (i + 1) % 400) for i in range(400))
    assert run_cli("partition", _write(tmp_path / "ring.csv", ring), "--out", tmp_path / "ring", "-p", 2, "--json") == 0
    s = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert s["edge_balance"] < 1.5 and s["warnings"] == []


def test_edge_balance_warning_names_the_partition_and_the_remedy():
    import numpy as np

    from graphtrain.partition.partitioner import edge_balance_warning

    assert edge_balance_warning(np.array([50, 50]), "metis") is None
    assert edge_balance_warning(np.array([10, 0]), "hash") is not None  # one partition, every edge
    msg = edge_balance_warning(np.array([996, 4]), "metis")
    assert msg.startswith("partition 0 holds 99.6% of the 1,000 in-edges") and "--method hash" in msg
    assert "--method hash" not in edge_balance_warning(np.array([4, 996]), "hash")
