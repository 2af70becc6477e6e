"""Shapes, timing and amounts of each planted typology and look-alike."""
import numpy as np
import pytest

from graphtrain.fraud.synth.draws import Draws, child_key, stream_key
from graphtrain.fraud.synth.typologies import DAY, HOUR, LOOKALIKES, MONTH, TYPOLOGIES

START = 1_704_067_200
PERIOD = 90 * DAY


def _make(table, kind, k, seed=0):
    members = np.arange(100, 100 + k, dtype=np.int64)
    return table[kind][0](members, Draws(child_key(stream_key(seed, "test"), k)), START, PERIOD)


def _degrees(p):
    pos = {a: i for i, a in enumerate(p.members)}
    k = p.members.size
    pairs = {(pos[s], pos[d]) for s, d in zip(p.src, p.dst)}
    out_d = np.bincount([s for s, _ in pairs], minlength=k)
    in_d = np.bincount([d for _, d in pairs], minlength=k)
    return pairs, out_d, in_d


@pytest.mark.parametrize("table, kind", [(TYPOLOGIES, k) for k in TYPOLOGIES] + [(LOOKALIKES, k) for k in LOOKALIKES])
@pytest.mark.parametrize("k", [4, 9])
def test_common_invariants(table, kind, k):
    p = _make(table, kind, k)
    assert p.kind == kind and p.members.size == k and p.roles.size == k
    assert np.isin(p.src, p.members).all() and np.isin(p.dst, p.members).all() and (p.src != p.dst).all()
    assert (p.amount > 0).all() and np.array_equal(p.amount, np.round(p.amount, 2))
    assert (p.time >= START).all() and (p.time < START + PERIOD).all()
    assert len(set(p.members.tolist())) == k
    again = _make(table, kind, k)
    assert np.array_equal(again.time, p.time) and np.array_equal(again.amount, p.amount)


@pytest.mark.parametrize("k", [3, 6, 12])
def test_fans(k):
    p = _make(TYPOLOGIES, "fan_in", k)
    pairs, out_d, in_d = _degrees(p)
    assert list(p.roles).count("collector") == 1 and in_d[0] == k - 1 and out_d[0] == 0 and (out_d[1:] == 1).all()
    q = _make(TYPOLOGIES, "fan_out", k)
    pairs, out_d, in_d = _degrees(q)
    assert q.roles[0] == "distributor" and out_d[0] == k - 1 and in_d[0] == 0 and (in_d[1:] == 1).all()


@pytest.mark.parametrize("kind", ["fan_in", "fan_out", "cycle", "scatter_gather", "bipartite"])
def test_rings_act_in_bursts(kind):
    for k in (5, 8):
        p = _make(TYPOLOGIES, kind, k, seed=k)
        # all of a ring's rounds fall in its 1-7 day window (plus hop delays of at most two days)
        assert p.time.max() - p.time.min() <= 7 * DAY + 3 * DAY


def test_cycle_order_and_fees():
    p = _make(TYPOLOGIES, "cycle", 6)
    pairs, out_d, in_d = _degrees(p)
    assert pairs == {(i, (i + 1) % 6) for i in range(6)} and set(p.roles) == {"link"}
    first_round = slice(0, 6)
    assert (np.diff(p.time[first_round]) > 0).all()  # each hop after the previous one
    assert (np.diff(p.amount[first_round]) < 0).all()  # a fee is skimmed per hop


def test_scatter_gather_gathers_after_scattering():
    p = _make(TYPOLOGIES, "scatter_gather", 7)
    origin, sink = p.members[0], p.members[-1]
    assert p.roles[0] == "origin" and p.roles[-1] == "beneficiary" and set(p.roles[1:-1]) == {"intermediate"}
    for mid in p.members[1:-1]:
        t_in = p.time[(p.src == origin) & (p.dst == mid)]
        t_out = p.time[(p.src == mid) & (p.dst == sink)]
        assert t_in.size == t_out.size >= 1 and (np.sort(t_out) >= np.sort(t_in) + 2 * HOUR).all()


def test_bipartite_is_a_dense_block():
    p = _make(TYPOLOGIES, "bipartite", 10)
    senders, receivers = p.members[p.roles == "sender"], p.members[p.roles == "receiver"]
    assert senders.size == receivers.size == 5
    assert np.isin(p.src, senders).all() and np.isin(p.dst, receivers).all()
    pairs, out_d, in_d = _degrees(p)
    assert len(pairs) >= 0.5 * 25 and (out_d[:5] >= 1).all() and (in_d[5:] >= 1).all()


def test_lookalikes_are_regular_over_the_period():
    for kind in LOOKALIKES:
        p = _make(LOOKALIKES, kind, 6)
        # monthly activity: spans more than a month, unlike a ring's burst
        assert p.time.max() - p.time.min() > MONTH, kind
    pay = _make(LOOKALIKES, "payroll", 5)
    for emp in pay.members[1:]:
        salary = pay.amount[pay.dst == emp]
        assert salary.size >= 2 and salary.max() <= 1.03 * salary.min()  # the same salary each month
