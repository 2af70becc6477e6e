"""The fraud pipeline's one memory limit (``detect-rings --memory-limit``) and what it bounds.

The limit counts anonymous memory (heap, not the pages of memory-mapped files, which the kernel can
drop at any time) summed over the run's processes: the driver, the local Ray and its workers. The
default is half of this machine's physical memory (:func:`default_memory_limit`).

- **Partitioning** gets the whole limit. Its working sets stop growing at about 770 MiB
  (:class:`~graphtrain.partition.partitioner.Tuning`), so any larger limit partitions alike.
- **Every stage after partitioning** holds a fixed cost (Ray, torch, the tree) and arrays with one
  entry per account (scores, labels, split, the rings stage's masks). :func:`pipeline_bytes`
  estimates the two from benchmark runs (``benchmarks/RESULTS.md``, "Fraud pipeline at scale").
  :func:`check_memory_limit` refuses a limit below that estimate plus room for
  ``MIN_RING_TRANSACTIONS`` ring transactions, before any work.
- **Ring finding** loads every transaction that touches a candidate account. What the limit leaves
  after :func:`pipeline_bytes` bounds how many (:func:`ring_transaction_budget`). When the
  candidates' transactions would exceed the budget, :func:`limit_ring_candidates` raises the lowest
  candidate score until they fit. The rings stage's memory then stays within the limit however large
  the graph is, and the summary says how many candidates were left out.
"""
from __future__ import annotations

import math
import os
from dataclasses import asdict, dataclass
from typing import Optional

import numpy as np

from graphtrain.errors import ConfigError
from graphtrain.units import format_size, parse_size

DEFAULT_SHARE = 0.5  # of physical memory
# Peak anonymous memory of the run's process tree in the stages after partitioning, the rings stage's
# subgraph aside: an upper envelope of the tree-baseline stage's peaks (the largest stage but rings) in
# bench_pipeline_scale.py runs at 100K, 1M, 3M and 12.5M accounts: 1.91, 2.67, 3.09 and 4.13 GB.
FIXED_BYTES = 2_700_000_000
PER_ACCOUNT_BYTES = 135
# Peak anonymous memory of ring finding per transaction of its subgraph (touching_subgraph's arrays,
# detect_rings' copies and masks, flow evidence, describe_rings), above the stage's level before it:
# 0.72-0.84 GB for 4.18M transactions at 3M accounts (bench_rings_stage.py; RESULTS.md), rounded up.
RING_BYTES_PER_TRANSACTION = 200
MIN_RING_TRANSACTIONS = 1 << 20  # the smallest ring budget a limit must leave room for


def default_memory_limit() -> int:
    """Bytes: ``DEFAULT_SHARE`` of this machine's physical memory."""
    return int(DEFAULT_SHARE * os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES"))


def resolve_memory_limit(limit) -> int:
    """Bytes of a ``--memory-limit`` value (a size such as ``"8G"``, bytes, or None: the default)."""
    return default_memory_limit() if limit is None else parse_size(limit)


def pipeline_bytes(accounts: int) -> int:
    """Estimated peak anonymous bytes of the stages after partitioning for ``accounts`` accounts,
    without the ring subgraph (module doc)."""
    return int(FIXED_BYTES + PER_ACCOUNT_BYTES * int(accounts))


def ring_transaction_budget(limit: int, accounts: int) -> int:
    """Most transactions the ring subgraph may hold within ``limit`` bytes for ``accounts`` accounts
    (at least ``MIN_RING_TRANSACTIONS``, which :func:`check_memory_limit` guarantees room for)."""
    return max(MIN_RING_TRANSACTIONS, (int(limit) - pipeline_bytes(accounts)) // RING_BYTES_PER_TRANSACTION)


def check_memory_limit(limit: int, accounts: int, flag: str = "--memory-limit") -> None:
    """Refuse ``limit`` bytes when the pipeline's per-account arrays and fixed cost for ``accounts``
    accounts, plus the smallest ring budget, would not fit (see the module doc)."""
    need = pipeline_bytes(accounts) + MIN_RING_TRANSACTIONS * RING_BYTES_PER_TRANSACTION
    if limit < need:
        raise ConfigError(
            f"{flag} {format_size(limit)} is below what the fraud pipeline needs for about {accounts:,} accounts: "
            f"about {format_size(need)} (a fixed {format_size(FIXED_BYTES)} for Ray, torch and the tree, "
            f"{PER_ACCOUNT_BYTES} bytes per account, and room for ring finding on at least {MIN_RING_TRANSACTIONS:,} "
            f"transactions). Give at least {flag} {math.ceil(need / (1 << 30) * 10) / 10:g}G")


@dataclass(frozen=True)
class RingCut:
    """What :func:`limit_ring_candidates` did, for the summary.

    Attributes:
        budget_transactions: the ring subgraph's transaction budget.
        candidate_transactions: transactions of all candidates (an upper bound: a transaction
            between two candidates counts twice; both stored copies of an undirected edge count).
        candidates, kept: candidate accounts before and after the cut.
        min_score: the lowest score a kept candidate has (None: nothing was cut).
    """

    budget_transactions: int
    candidate_transactions: int
    candidates: int
    kept: int
    min_score: Optional[float]

    @property
    def cut(self) -> bool:
        return self.kept < self.candidates

    def warning(self, limit: int) -> str:
        return (f"ring finding looked at the {self.kept:,} highest-scoring of its {self.candidates:,} candidate "
                f"accounts (score >= {self.min_score:.4g}): the transactions of all of them (up to "
                f"{self.candidate_transactions:,}) exceed the {self.budget_transactions:,} that --memory-limit "
                f"{format_size(limit)} leaves for ring finding. Rings among the candidates left out are not found; "
                "a larger --memory-limit looks at more of them")

    def as_dict(self) -> dict:
        return asdict(self)


def candidate_degrees(dataset, candidates: np.ndarray) -> np.ndarray:
    """int64 ``[k]``: the stored in-edges of each candidate (bool ``[N]`` by global ID), in global-ID order.

    Each transaction is an in-edge of both its ends in a directed dataset (``--add-reverse``), so this
    is the candidate's transaction count; an undirected dataset stores each edge both ways, so it is
    the candidate's edge count.
    """
    out = []
    for p in range(dataset.num_parts):
        lo, hi = dataset.book.node_range(p)
        rows = np.flatnonzero(candidates[lo:hi])
        if rows.size:
            indptr = np.asarray(dataset.graph(p).indptr)
            out.append((indptr[rows + 1] - indptr[rows]).astype(np.int64))
    return np.concatenate(out) if out else np.zeros(0, np.int64)


def limit_ring_candidates(candidates: np.ndarray, scores: np.ndarray, degrees: np.ndarray, budget: int,
                          per_degree: int = 1) -> RingCut:
    """Leave out the lowest-scoring candidates until their transactions fit ``budget`` (in place).

    Args:
        candidates: bool ``[N]`` by global ID; the accounts scoring below the cut are set False.
        scores: float ``[N]``.
        degrees: int ``[k]`` each candidate's transactions, in global-ID order (:func:`candidate_degrees`).
        budget: most transactions (each candidate's degree times ``per_degree`` summed).
        per_degree: stored subgraph edges per unit of degree (2 for an undirected dataset, whose
            edges touching a candidate come with both their copies).

    The kept candidates are exactly those scoring at least ``min_score``: ties are kept or left out
    together, so the cut does not depend on account numbering. When even the top score's candidates
    exceed the budget, those alone are kept.
    """
    ids = np.flatnonzero(candidates)
    cost = np.asarray(degrees, dtype=np.int64) * int(per_degree)
    if cost.shape != ids.shape:
        raise ValueError(f"{cost.size} degrees for {ids.size} candidates")
    total = int(cost.sum())
    if total <= budget:
        return RingCut(int(budget), total, int(ids.size), int(ids.size), None)
    s = np.asarray(scores, dtype=np.float64)[ids]
    order = np.argsort(-s, kind="stable")
    s, cum = s[order], np.cumsum(cost[order])
    last = np.r_[s[1:] != s[:-1], True]  # the last candidate of each group of equal scores
    fits = np.flatnonzero(last & (cum <= budget))
    end = int(fits[-1]) if fits.size else int(np.flatnonzero(last)[0])  # the top score's group at least
    min_score = float(s[end])
    candidates[ids[order[end + 1:]]] = False
    return RingCut(int(budget), total, int(ids.size), end + 1, min_score)
