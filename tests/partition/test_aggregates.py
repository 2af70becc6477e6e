"""``--edge-aggregates``: in/out degree and sum/mean/max of each edge column, both directions,
checked against hand-computed values on a tiny graph and against a per-edge reference on a random
one, for several partition counts and block sizes (hub nodes spanning blocks included)."""
import numpy as np
import pytest

from graphtrain.errors import ConfigError
from graphtrain.partition import open_dataset
from graphtrain.partition.aggregates import aggregate_names
from graphtrain.partition.partitioner import Tuning, partition_arrays

# (src, dst, time, value); node 50 has no node-table row, 40 -> 50 has a negative value only
EDGES = [(10, 20, 1, 5.0), (10, 30, 2, -1.5), (20, 30, 3, 2.0), (30, 10, 4, 10.0), (30, 20, 5, 0.5),
         (40, 10, 6, 3.0), (10, 20, 7, 1.0), (50, 40, 8, 4.0), (40, 50, 9, -2.0)]
NAMES = ["f0", "in_degree", "out_degree",
         "in_sum_time", "in_mean_time", "in_max_time", "in_sum_value", "in_mean_value", "in_max_value",
         "out_sum_time", "out_mean_time", "out_max_time", "out_sum_value", "out_mean_value", "out_max_value"]
# worked out by hand from EDGES (f0 = the node table's feature; 50 is added with 0)
EXPECTED = {
    10: [1, 2, 3, 10, 5, 6, 13, 6.5, 10, 10, 10 / 3, 7, 4.5, 1.5, 5],
    20: [2, 3, 1, 13, 13 / 3, 7, 6.5, 6.5 / 3, 5, 3, 3, 3, 2, 2, 2],
    30: [3, 2, 2, 5, 2.5, 3, 0.5, 0.25, 2, 9, 4.5, 5, 10.5, 5.25, 10],
    40: [4, 1, 2, 8, 8, 8, 4, 4, 4, 15, 7.5, 9, 1, 0.5, 3],
    50: [0, 1, 1, 9, 9, 9, -2, -2, -2, 8, 8, 8, 4, 4, 4],
}


def _features_by_raw(path):
    ds = open_dataset(path)
    out = {}
    for p in range(ds.num_parts):
        feats = ds.partition(p).features
        for raw, row in zip(np.asarray(ds.raw_ids(p)), np.asarray(feats)):
            out[int(raw)] = row
    return ds.meta.node_schema.feature_names, out


def _tiny(tmp_path, name, num_parts, tuning=None, **kw):
    src, dst, t, v = (np.array(c) for c in zip(*EDGES))
    partition_arrays(src, dst, tmp_path / name, num_parts, edge_attrs={"time": t, "value": v}, time_column="time",
                     edge_aggregates=True, tuning=tuning, **kw)
    return tmp_path / name


@pytest.mark.parametrize("num_parts,tuning", [(1, None), (3, Tuning(4, 2, 2, 1)), (5, Tuning(3, 1, 1, 2))])
def test_hand_computed(tmp_path, num_parts, tuning):
    path = _tiny(tmp_path, f"ds{num_parts}", num_parts, tuning, node_ids=np.array([10, 20, 30, 40]),
                 node_features=np.array([[1.0], [2.0], [3.0], [4.0]]), node_labels=np.array([0, 1, 0, 1]),
                 add_missing_nodes=True)
    names, feats = _features_by_raw(path)
    assert names == NAMES == ["f0"] + aggregate_names(["time", "value"])
    assert sorted(feats) == sorted(EXPECTED)
    for raw, want in EXPECTED.items():
        np.testing.assert_allclose(feats[raw], want, rtol=1e-6, err_msg=f"node {raw}")
    open_dataset(path).verify()  # node_feat.npy's record (shape, sha256) matches the rewritten file


def test_without_node_table_the_aggregates_are_the_features(tmp_path):
    names, feats = _features_by_raw(_tiny(tmp_path, "bare", 2, Tuning(4, 2, 3, 2)))
    assert names == NAMES[1:]
    for raw, want in EXPECTED.items():
        np.testing.assert_allclose(feats[raw], want[1:], rtol=1e-6)


def test_no_edge_columns_gives_degrees(tmp_path):
    src, dst = (np.array(c) for c in zip(*[(e[0], e[1]) for e in EDGES]))
    partition_arrays(src, dst, tmp_path / "deg", 2, edge_aggregates=True)
    names, feats = _features_by_raw(tmp_path / "deg")
    assert names == ["in_degree", "out_degree"]
    assert {r: f.tolist() for r, f in feats.items()} == {r: w[1:3] for r, w in EXPECTED.items()}


def test_name_clash_is_refused(tmp_path):
    import pyarrow as pa

    from graphtrain.partition import ingest
    from graphtrain.partition.partitioner import EdgeColumns, NodeColumns, PartitionOptions, partition

    edges = ingest.TableSource.from_table(pa.table({"s": [1, 2], "d": [2, 1]}), name="<edges>")
    nodes = ingest.TableSource.from_table(pa.table({"id": [1, 2], "in_degree": [0.0, 1.0]}), name="<nodes>")
    with pytest.raises(ConfigError, match="in_degree"):
        partition(edges, EdgeColumns("s", "d"), tmp_path / "clash", PartitionOptions(1, edge_aggregates=True), nodes,
                  NodeColumns("id", features=("in_degree",)))
    assert not (tmp_path / "clash").exists()


def _reference(src, dst, cols, nodes):
    """Per-edge loop: the aggregates' definition."""
    rows = {}
    for n in nodes:
        row = []
        for side, mine in (("in", dst), ("out", src)):
            row.append(float(np.sum(mine == n)))
        for side, mine in (("in", dst), ("out", src)):
            sel = mine == n
            for c in cols:
                vals = c[sel].astype(np.float64)
                row += [vals.sum(), vals.mean(), vals.max()] if vals.size else [0.0, 0.0, 0.0]
        rows[n] = row
    return rows


@pytest.mark.parametrize("num_parts,tuning", [(1, None), (4, Tuning(50, 4, 17, 5))])
def test_random_graph_against_reference(tmp_path, num_parts, tuning):
    rs = np.random.default_rng(3)
    n, e = 60, 700
    src = rs.integers(0, n, e) * 7 + 1
    dst = np.where(rs.random(e) < 0.3, 8, rs.integers(0, n, e) * 7 + 1)  # node 8 is a hub (~210 in-edges)
    amount = rs.normal(size=e) * 1000
    count = rs.integers(-5, 5, e)
    partition_arrays(src, dst, tmp_path / "r", num_parts, edge_attrs={"amount": amount, "count": count},
                     edge_aggregates=True, tuning=tuning, method="ldg")
    names, feats = _features_by_raw(tmp_path / "r")
    assert names == aggregate_names(["amount", "count"])
    ref = _reference(src, dst, [amount, count], sorted(feats))
    for node, want in ref.items():
        np.testing.assert_allclose(feats[node], want, rtol=1e-5, atol=1e-3, err_msg=f"node {node}")
