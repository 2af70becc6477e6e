"""Rings found on the touching subgraph of the high-risk accounts, extracted from a partitioned
dataset, equal the rings found on the whole in-memory graph (members, typology, flow kind, evidence)."""
from collections import Counter

import numpy as np
import pytest

from graphtrain.fraud.data.touching_subgraph import high_risk_in_dataset, touching_subgraph
from graphtrain.fraud.rings.ring_groups import flow_candidates, high_risk_accounts
from graphtrain.fraud.evaluation.evaluate import load_true_rings
from graphtrain.fraud.rings.rings import RingConfig, detect_rings
from graphtrain.fraud.synth.generate import generate, load_generated
from graphtrain.fraud.synth.generator_config import GeneratorConfig
from graphtrain.partition import open_dataset
from graphtrain.partition.partitioner import partition_arrays


@pytest.fixture(scope="module")
def planted(tmp_path_factory):
    root = tmp_path_factory.mktemp("touch")
    generate(GeneratorConfig(num_accounts=4000, num_rings=15, num_lookalikes=15, seed=5), root / "g")
    g = load_generated(root / "g")
    truth = load_true_rings(root / "g" / "rings.csv", g.accounts)
    rng = np.random.default_rng(0)
    scores = rng.uniform(0, 0.5, g.num_accounts)  # noise, and the planted members high
    scores[np.concatenate(truth.members)] = rng.uniform(0.45, 1.0, sum(m.size for m in truth.members))
    ids = g.accounts.ids
    partition_arrays(ids[g.src], ids[g.dst], root / "ds", 3, edge_attrs={"amount": g.amount, "time": g.time},
                     time_column="time", node_ids=ids, node_labels=g.accounts.labels, add_reverse=True)
    return g, scores, open_dataset(root / "ds")


def _by_raw(found):
    rings = found.rings.set_index("ring_id")
    out = {}
    for r, row in rings.iterrows():
        members = found.members[found.members.ring_id == r].set_index("account_id").drop(columns=["ring_id", "account_index"])
        out[frozenset(map(str, row.members))] = (row.typology, row.flow, row["size"], row.internal_transactions, row.time_start,
                                                 row.time_end, round(row.total_amount, 6), round(row.density, 9),
                                                 members.sort_index().round(9).to_dict())
    return out


@pytest.mark.parametrize("grow", [None, 0.45])
def test_rings_equal_the_whole_graph(planted, grow):
    g, scores, ds = planted
    config = RingConfig(threshold=0.6, grow_threshold=grow)
    whole = detect_rings(g, scores, config)
    assert len(whole.rings) >= 5
    assert (whole.rings["flow"] != "community").sum() >= 3  # rings from money flow are compared too

    raw = np.concatenate([np.asarray(ds.raw_ids(p)).astype(str) for p in range(ds.num_parts)])
    rows = g.accounts.index_of(raw)
    scores_by_gid = scores[rows]
    # step 1 on the dataset, a block at a time, equals step 1 on the whole graph
    risky = high_risk_in_dataset(ds, scores_by_gid, config.threshold, grow, config.grow_min_share, block_edges=97)
    assert np.array_equal(risky, high_risk_accounts(g, scores, config)[rows])
    if grow is not None:
        assert risky.sum() > (scores_by_gid >= config.threshold).sum()  # some accounts grew
    # money-flow rings may take in flow candidates (score >= the grow threshold) and their counterparties
    inside = risky | flow_candidates(scores_by_gid, config)
    sub = touching_subgraph(ds, inside)
    assert sub.inside.sum() == inside.sum() and risky.sum() == whole.high_risk
    assert sub.graph.num_edges < g.num_edges / 2  # linear in the set's transactions, not the graph's
    found = detect_rings(sub.graph, scores_by_gid[sub.global_ids], config, high_risk=risky[sub.global_ids])
    assert found.high_risk == whole.high_risk
    assert _by_raw(found) == _by_raw(whole)


@pytest.mark.parametrize("block_edges", [97, 1, None])  # many blocks, one destination each (hubs), one block
def test_edges_are_exactly_those_touching_the_set(planted, block_edges):
    g, scores, ds = planted
    raw = np.concatenate([np.asarray(ds.raw_ids(p)).astype(str) for p in range(ds.num_parts)])
    inside_raw = set(raw[scores[g.accounts.index_of(raw)] >= 0.8])
    sub = touching_subgraph(ds, np.isin(raw, list(inside_raw)),
                            **({"block_edges": block_edges} if block_edges else {}))
    accounts = sub.graph.accounts
    assert not isinstance(accounts.ids, np.ndarray)  # string IDs stay in Arrow: no Python object per account
    ids = np.array([accounts.raw_id(i) for i in range(accounts.num_accounts)], dtype=str)
    by_id = np.empty(ids.size, dtype=np.int64)
    by_id[np.argsort(ids, kind="stable")] = np.arange(ids.size)
    assert np.array_equal(accounts.id_rank(), by_id)  # Arrow's string order is Python's
    got = Counter(zip(ids[sub.graph.src], ids[sub.graph.dst], sub.graph.amount, sub.graph.time))
    all_ids = g.accounts.ids.astype(str)
    s, d = all_ids[g.src], all_ids[g.dst]
    touch = np.isin(s, list(inside_raw)) | np.isin(d, list(inside_raw))
    assert got == Counter(zip(s[touch], d[touch], g.amount[touch], g.time[touch]))
    assert set(ids[sub.inside]) == inside_raw
    want_labels = dict(zip(all_ids, g.accounts.labels))
    assert all(want_labels[i] == lab for i, lab in zip(ids, sub.graph.accounts.labels))


def test_candidate_degrees_count_each_candidates_transactions(planted):
    """The memory budget's cost of a candidate is its transaction count: summed over a set, the set's
    touching transactions plus those between two members (counted at both ends)."""
    from graphtrain.fraud.pipeline.memory_budget import candidate_degrees

    g, scores, ds = planted
    raw = np.concatenate([np.asarray(ds.raw_ids(p)).astype(str) for p in range(ds.num_parts)])
    rows = g.accounts.index_of(raw)
    inside = scores[rows] >= 0.7
    degrees = candidate_degrees(ds, inside)
    per_account = np.bincount(np.concatenate([g.src, g.dst]), minlength=g.num_accounts)
    assert np.array_equal(degrees, per_account[rows][inside])
    member = np.zeros(g.num_accounts, bool)
    member[rows[inside]] = True
    both = member[g.src] & member[g.dst]
    assert degrees.sum() == touching_subgraph(ds, inside).graph.num_edges + both.sum()
