"""``--add-reverse``: every input edge stored twice (as given, and reversed with ``reverse`` = 1), the
same multiset of (raw src, raw dst, columns, reverse) whatever the partition count and bin sizes,
and the same as partitioning the doubled arrays by hand (what the fraud pipeline did in memory)."""
import subprocess
import sys
from collections import Counter

import numpy as np
import pytest

from graphtrain.errors import ConfigError
from graphtrain.graph import REVERSE
from graphtrain.partition import open_dataset
from graphtrain.partition.partitioner import Tuning, partition_arrays


def _stored_edges(path):
    """Counter of (raw src, raw dst, time, amount, reverse) over every stored edge."""
    ds = open_dataset(path)
    raw = np.concatenate([np.asarray(ds.raw_ids(p)) for p in range(ds.num_parts)])
    out = Counter()
    for p in range(ds.num_parts):
        g = ds.graph(p)
        dst = g.node_start + np.repeat(np.arange(g.num_nodes), np.diff(g.indptr))
        cols = [np.asarray(g.edge_attrs[c]) for c in ("time", "amount")]
        rev = np.asarray(g.edge_attrs[REVERSE]) if REVERSE in g.edge_attrs else np.zeros(len(dst), dtype=np.int8)
        for s, d, t, a, r in zip(raw[np.asarray(g.src)], raw[dst], *cols, rev):
            out[(str(s), str(d), int(t), float(a), int(r))] += 1
    return ds, out


def _random_edges(seed, n_edges=400, n_nodes=60):
    rng = np.random.default_rng(seed)
    src = np.array([f"acct-{i}" for i in rng.integers(0, n_nodes, n_edges)])
    dst = np.array([f"acct-{i}" for i in rng.integers(0, n_nodes, n_edges)])  # self-loops and repeats included
    t = rng.integers(0, 10_000, n_edges)
    amount = np.round(rng.lognormal(3, 1, n_edges), 2)
    return src, dst, t, amount


@pytest.mark.parametrize("num_parts,tuning", [(1, None), (3, Tuning(64, 4, 16, 8)), (4, Tuning(32, 2, 8, 4))])
def test_both_directions_are_stored_once_each(tmp_path, num_parts, tuning):
    src, dst, t, amount = _random_edges(num_parts)
    summary = partition_arrays(src, dst, tmp_path / "ds", num_parts, edge_attrs={"time": t, "amount": amount},
                               time_column="time", add_reverse=True, tuning=tuning)
    ds, stored = _stored_edges(tmp_path / "ds")
    expected = Counter()
    for s, d, ti, a in zip(src, dst, t, amount):
        expected[(s, d, int(ti), float(a), 0)] += 1
        expected[(d, s, int(ti), float(a), 1)] += 1
    assert stored == expected
    assert summary.num_edges == ds.meta.num_edges == 2 * len(src) and summary.input_rows == len(src)
    assert ds.meta.edge_column(REVERSE).dtype == "int8"
    ds.verify()

    # the same graph as the in-memory doubling (src+dst, dst+src with a reverse column) gives
    doubled = partition_arrays(np.concatenate([src, dst]), np.concatenate([dst, src]), tmp_path / "by_hand", num_parts,
                               edge_attrs={"time": np.tile(t, 2), "amount": np.tile(amount, 2),
                                           REVERSE: np.repeat(np.array([0, 1], dtype=np.int8), len(src))},
                               time_column="time", tuning=tuning)
    assert _stored_edges(tmp_path / "by_hand")[1] == stored
    assert doubled.num_nodes == summary.num_nodes


def test_edge_aggregates_count_both_directions(tmp_path):
    src, dst = np.array([1, 1, 2]), np.array([2, 3, 3])
    partition_arrays(src, dst, tmp_path / "ds", 2, add_reverse=True, edge_aggregates=True)
    ds = open_dataset(tmp_path / "ds")
    names = ds.meta.node_schema.feature_names
    by_raw = {int(r): row for p in range(2) for r, row in zip(np.asarray(ds.raw_ids(p)), np.asarray(ds.partition(p).features))}
    deg, rev_sum = names.index("in_degree"), names.index("in_sum_reverse")
    # node 1 sent 2 and received 0: 2 in-edges, both reverse copies; node 3 received 2, sent 0
    assert [by_raw[1][deg], by_raw[1][rev_sum]] == [2, 2]
    assert [by_raw[3][deg], by_raw[3][rev_sum]] == [2, 0]
    assert [by_raw[2][deg], by_raw[2][rev_sum]] == [2, 1]


def test_refusals(tmp_path):
    src, dst = np.array([1, 2]), np.array([2, 1])
    with pytest.raises(ConfigError, match="--drop-duplicates"):
        partition_arrays(src, dst, tmp_path / "a", 1, add_reverse=True, drop_duplicates=True)
    with pytest.raises(ConfigError, match="'reverse'"):
        partition_arrays(src, dst, tmp_path / "b", 1, edge_attrs={"reverse": np.array([0, 0])}, add_reverse=True)
    assert not (tmp_path / "a").exists() and not (tmp_path / "b").exists()


def test_cli_flag(tmp_path):
    edges = tmp_path / "tx.csv"
    edges.write_text("from,to,amount\na,b,1.5\nb,c,2.0\n")
    p = subprocess.run([sys.executable, "-m", "graphtrain.cli", "partition", str(edges), "--out", str(tmp_path / "ds"),
                        "--num-parts", "2", "--src", "from", "--dst", "to", "--edge-columns", "amount", "--add-reverse",
                        "--no-progress"], capture_output=True, text=True)
    assert p.returncode == 0, p.stderr
    ds = open_dataset(tmp_path / "ds")
    assert ds.meta.num_edges == 4 and ds.meta.edge_column(REVERSE) is not None
