"""Money-flow evidence (temporal cycles, amount-conserving chains, fan bursts) on hand-built graphs,
and how flow groups merge with score groups into rings."""
import numpy as np
import pyarrow.parquet as pq
import pytest

from graphtrain.fraud.data.transaction_graph import AccountTable, TransactionGraph
from graphtrain.fraud.rings.flow import find_flow_evidence, hop_window
from graphtrain.fraud.rings.flow_groups import COMMUNITY, merge_groups, ring_kinds
from graphtrain.fraud.rings.rings import RingConfig, detect_rings, write_rings

H = 3600


def _graph(n, edges, directed=True):
    """``edges``: (src, dst, amount, time) tuples."""
    s, d, a, t = (np.array(x) for x in zip(*edges))
    table = AccountTable(ids=np.arange(n, dtype=np.int64) + 1000, features=np.zeros((n, 0), np.float32),
                         feature_names=[], labels=np.full(n, -1, np.int64))
    return TransactionGraph(table, s.astype(np.int64), d.astype(np.int64), amount=a.astype(np.float64),
                            time=t.astype(np.int64), directed=directed).validate()


def _marked(graph, evidence, kind):
    """(src, dst) pairs of the flow edges marked as ``kind``."""
    e = evidence.edges[evidence.kind(kind)]
    return set(zip(graph.src[e].tolist(), graph.dst[e].tolist()))


ALL = np.ones(20, dtype=bool)
CYCLE = [(0, 1), (1, 2), (2, 3), (3, 0)]


def test_a_planted_temporal_cycle_is_found():
    g = _graph(20, [(a, b, 100.0 - i, 10 * H + i * 2 * H) for i, (a, b) in enumerate(CYCLE)])
    ev = find_flow_evidence(g, ALL, window=6 * H)
    assert _marked(g, ev, "cycle") == set(CYCLE)


@pytest.mark.parametrize("times", [
    [10, 30, 20, 40],   # c -> d before b -> c: no rotation of the loop is time-ordered
    [10, 12, 40, 42],   # one hop 28 hours after the last, beyond the 6-hour window
])
def test_a_cycle_out_of_time_order_or_window_is_not(times):
    g = _graph(20, [(a, b, 100.0, t * H) for (a, b), t in zip(CYCLE, times)])
    ev = find_flow_evidence(g, ALL, window=6 * H)
    assert not ev.cycle.any()


def test_cycles_longer_than_max_hops_and_back_and_forth_pairs_are_not_cycles():
    loop = [(i, (i + 1) % 8) for i in range(8)]
    edges = [(a, b, 50.0, (i + 1) * H) for i, (a, b) in enumerate(loop)] + [(10, 11, 5.0, H), (11, 10, 5.0, 2 * H)]
    g = _graph(20, edges)
    assert not find_flow_evidence(g, ALL, window=6 * H, max_hops=6).cycle.any()
    assert _marked(g, find_flow_evidence(g, ALL, window=6 * H, max_hops=8), "cycle") == set(loop)


def test_cycles_may_pass_through_one_account_outside_the_set_but_not_two_in_a_row():
    g = _graph(20, [(a, b, 100.0, (i + 1) * H) for i, (a, b) in enumerate(CYCLE)])
    risky = ALL.copy()
    risky[2] = False  # 1 -> 2 and 2 -> 3 still touch the set
    assert _marked(g, find_flow_evidence(g, risky, window=6 * H), "cycle") == set(CYCLE)
    risky[3] = False  # 2 -> 3 touches no account of the set: no flow edge, no cycle
    ev = find_flow_evidence(g, risky, window=6 * H)
    assert (2, 3) not in set(zip(g.src[ev.edges].tolist(), g.dst[ev.edges].tolist())) and not ev.cycle.any()


def test_standing_relationships_are_no_evidence():
    # the same loop every 30 days (rent shares): each pair recurs over 60 days, past the 0.9 gap quantile
    loop = [(a, b, 100.0, m * 720 * H + (i + 1) * 2 * H) for m in range(3) for i, (a, b) in enumerate(CYCLE)]
    g = _graph(20, loop)
    ev = find_flow_evidence(g, ALL, window=6 * H)
    assert ev.edges.size == 0 and ev.standing.size == len(loop)
    assert _marked(g, find_flow_evidence(g, ALL, window=6 * H, recurring_quantile=None), "cycle") == set(CYCLE)


def test_an_amount_conserving_chain_vs_one_that_does_not_conserve():
    chain = [(0, 1, 1000.0, 1 * H), (1, 2, 970.0, 3 * H), (2, 3, 950.0, 4 * H)]
    broken = [(5, 6, 1000.0, 1 * H), (6, 7, 400.0, 3 * H), (7, 8, 1500.0, 4 * H)]
    late = [(10, 11, 1000.0, 1 * H), (11, 12, 990.0, 30 * H)]  # forwarded, but a day later
    g = _graph(20, chain + broken + late)
    ev = find_flow_evidence(g, ALL, window=6 * H, tolerance=0.1)
    assert _marked(g, ev, "chain") == {(0, 1), (1, 2), (2, 3)}
    # more tolerance (a 60% skim) makes 6 -> 7 forward what 5 -> 6 brought; 7 -> 8 sends more than came in
    loose = find_flow_evidence(g, ALL, window=6 * H, tolerance=0.7)
    assert {(5, 6), (6, 7)} <= _marked(g, loose, "chain") and (7, 8) not in _marked(g, loose, "chain")


def test_fan_in_within_a_window_vs_spread_out():
    burst = [(s, 0, 90.0 + s, 10 * H + s * 600) for s in range(1, 6)]  # 5 senders in under an hour
    spread = [(s, 10, 90.0, s * 50 * H) for s in range(11, 16)]        # 5 senders, two days apart
    g = _graph(20, burst + spread)
    ev = find_flow_evidence(g, ALL, window=6 * H, min_fan=3)
    assert _marked(g, ev, "fan_in") == {(s, 0) for s in range(1, 6)}
    assert not ev.fan_out.any()


def test_fan_out_burst_and_a_busy_account_at_its_usual_pace():
    burst = [(0, r, 100.0, 10 * H + r * 300) for r in range(1, 5)]
    # account 10 pays someone new every 2 hours, all period: 3 in a window is its normal pace
    busy = [(10, 11 + i, 20.0, 1000 * H + i * 2 * H) for i in range(400)]
    g = _graph(420, burst + busy)
    ev = find_flow_evidence(g, np.ones(420, bool), window=6 * H, min_fan=3, fan_p=1e-3)
    assert _marked(g, ev, "fan_out") == {(0, r) for r in range(1, 5)}


def test_hop_window_is_the_median_gap_of_the_accounts_transactions():
    edges = [(0, 1, 1.0, 0), (0, 2, 1.0, 10), (0, 3, 1.0, 30), (4, 5, 1.0, 1000)]
    g = _graph(6, edges)
    risky = np.zeros(6, dtype=bool)
    risky[0] = True
    assert hop_window(g, risky) == 15  # gaps of account 0: 10 and 20
    assert find_flow_evidence(_graph(6, edges, directed=False), np.ones(6, bool)).edges.size == 0


# -- merging flow groups with score groups ---------------------------------------------------------
def test_merge_flow_first_then_unclaimed_connected_pieces():
    # score group 0..9: flow claims 0..3; what is left, 4..9, splits into 4-5-6 and 7-8 (too small) and 9
    edges = [(0, 1, 1.0, 0), (1, 2, 1.0, 0), (2, 3, 1.0, 0), (3, 4, 1.0, 0), (4, 5, 1.0, 0), (5, 6, 1.0, 0),
             (7, 8, 1.0, 0), (6, 9, 1.0, 0), (3, 9, 1.0, 0)]
    g = _graph(12, edges)
    merged = merge_groups(g, [np.arange(4)], [np.arange(10)], min_size=3)
    assert [m.tolist() for m in merged] == [[0, 1, 2, 3], [4, 5, 6, 9]]
    # no flow group: the score groups as they are; every account in at most one ring
    assert [m.tolist() for m in merge_groups(g, [], [np.arange(7)], min_size=3)] == [list(range(7))]
    flat = np.concatenate(merged)
    assert flat.size == np.unique(flat).size


def test_ring_kinds_name_the_structure_touching_most_members():
    loop = [(a, b, 100.0, (i + 1) * H) for i, (a, b) in enumerate(CYCLE)]
    fan = [(s, 10, 50.0, 10 * H + s * 60) for s in range(11, 15)]
    g = _graph(20, loop + fan + [(16, 17, 5.0, 0), (17, 18, 9.0, 500 * H)])
    ev = find_flow_evidence(g, ALL, window=6 * H)
    kinds = ring_kinds(g, [np.arange(4), np.arange(10, 15), np.array([16, 17, 18])], ev)
    assert kinds == ["cycle", "fan_in", COMMUNITY]


def test_detect_rings_separates_flow_rings_joined_by_stray_transactions(tmp_path):
    """Two cycles and a fan-in, all high-risk, tied into one component by stray transactions with
    each other and with two innocent high-risk accounts: the flow rings come out whole, each named by
    its structure; without flow, the fan-in ring takes the innocents in."""
    rng = np.random.default_rng(0)
    edges = []
    for ring in (range(0, 5), range(5, 10)):
        ring = list(ring)
        start = int(rng.integers(0, 500)) * H
        edges += [(a, ring[(i + 1) % len(ring)], 100.0 * 0.98 ** i, start + (i + 1) * 2 * H) for i, a in enumerate(ring)]
    edges += [(s, 10, 80.0, 900 * H + s * 300) for s in range(11, 16)]
    # strays: between the rings, months apart, amounts unrelated
    edges += [(2, 7, 3.0, 100 * H), (8, 13, 7.0, 1500 * H), (12, 4, 11.0, 1900 * H), (3, 14, 2.0, 2100 * H),
              (16, 10, 9.0, 1300 * H), (17, 12, 4.0, 600 * H), (10, 17, 6.0, 200 * H)]
    # background among other accounts, so the window reflects a slower pace
    bg = rng.integers(16, 60, size=(300, 2))
    edges += [(int(a), int(b), float(rng.uniform(5, 50)), int(rng.integers(0, 2160)) * H) for a, b in bg if a != b]
    g = _graph(60, edges)
    scores = np.zeros(60)
    scores[:18] = 0.9
    config = RingConfig(threshold=0.5, min_size=3, max_size=40)
    found = detect_rings(g, scores, config)
    rings = {frozenset(m.tolist()): t for m, t in zip(found.member_lists(), found.rings.sort_values("ring_id")["flow"])}
    assert rings == {frozenset(range(0, 5)): "cycle", frozenset(range(5, 10)): "cycle", frozenset(range(10, 16)): "fan_in"}
    write_rings(found, tmp_path)
    written = pq.read_table(tmp_path / "rings.parquet").to_pylist()
    assert sorted(r["flow"] for r in written) == ["cycle", "cycle", "fan_in"]
    assert sorted(r["typology"] for r in written) == ["cycle", "cycle", "fan_in"]
    plain = detect_rings(g, scores, RingConfig(threshold=0.5, min_size=3, max_size=40, flow=False))
    assert frozenset(range(10, 16)) not in {frozenset(m.tolist()) for m in plain.member_lists()}
    assert plain.rings["flow"].isna().all()
