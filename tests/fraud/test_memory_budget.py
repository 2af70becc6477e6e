"""The pipeline's memory limit: the ring candidates' cut (hypothesis), the budget and the refusal."""
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from graphtrain.errors import ConfigError
from graphtrain.fraud.pipeline import memory_budget as mb


@st.composite
def candidates_case(draw):
    n = draw(st.integers(1, 60))
    inside = np.array(draw(st.lists(st.booleans(), min_size=n, max_size=n)))
    scores = np.array(draw(st.lists(st.sampled_from([0.1, 0.2, 0.5, 0.7, 0.9]), min_size=n, max_size=n)))  # ties
    degrees = np.array(draw(st.lists(st.integers(0, 50), min_size=int(inside.sum()), max_size=int(inside.sum()))),
                       dtype=np.int64)
    budget = draw(st.integers(0, 400))
    per = draw(st.sampled_from([1, 2]))
    return inside, scores, degrees, budget, per


@settings(max_examples=300, deadline=None)
@given(candidates_case())
def test_the_cut_keeps_exactly_the_candidates_at_or_above_a_score_and_the_most_that_fit(case):
    inside, scores, degrees, budget, per = case
    before = inside.copy()
    kept = inside.copy()
    cut = mb.limit_ring_candidates(kept, scores, degrees, budget, per)
    cost = np.zeros(inside.size, np.int64)
    cost[before] = degrees * per
    assert cut.candidates == before.sum() and cut.kept == kept.sum() and cut.candidate_transactions == cost.sum()
    assert not (kept & ~before).any()  # only candidates are kept
    if cost.sum() <= budget:
        assert np.array_equal(kept, before) and cut.min_score is None and not cut.cut
        return
    # kept: exactly the candidates scoring at least min_score (ties together)
    assert np.array_equal(kept, before & (scores >= cut.min_score))
    top = scores[before].max()
    if cut.min_score < top or cost[kept].sum() <= budget:
        assert cost[kept].sum() <= budget  # within the budget, unless only the top score's group is kept
    else:
        assert cut.min_score == top
    lower = scores[before & (scores < cut.min_score)]
    if lower.size:  # taking the next score's group too would not fit
        nxt = lower.max()
        assert cost[before & (scores >= nxt)].sum() > budget


def test_degrees_and_candidates_must_agree():
    with pytest.raises(ValueError, match="2 degrees for 3 candidates"):
        mb.limit_ring_candidates(np.ones(3, bool), np.zeros(3), np.ones(2, np.int64), 10)


def test_the_ring_budget_is_what_the_limit_leaves_after_the_per_account_arrays():
    accounts = 1_000_000
    limit = mb.pipeline_bytes(accounts) + 5_000_000 * mb.RING_BYTES_PER_TRANSACTION
    assert mb.ring_transaction_budget(limit, accounts) == 5_000_000
    assert mb.ring_transaction_budget(limit, 10 * accounts) == mb.MIN_RING_TRANSACTIONS  # never below the floor
    mb.check_memory_limit(limit, accounts)  # room left: accepted
    with pytest.raises(ConfigError, match=r"below what the fraud pipeline needs for about 40,000,000 accounts"):
        mb.check_memory_limit(limit, 40_000_000)


def test_the_default_limit_is_half_the_machines_memory():
    import os

    assert mb.default_memory_limit() == int(0.5 * os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES"))
    assert mb.resolve_memory_limit("3G") == 3 << 30 and mb.resolve_memory_limit(None) == mb.default_memory_limit()
