"""Rings from money flow, merged with the rings from score components.

1. **Flow groups.** The transactions that are evidence of a flow structure around the flow
   candidates (:func:`graphtrain.fraud.rings.flow.find_flow_evidence`: temporal cycles,
   amount-conserving chains, fan bursts) are grouped exactly as all high-risk transactions are
   (:func:`graphtrain.fraud.rings.ring_groups.find_groups`: components, bridge cuts, cycles apart,
   communities, peeling down to ``max_size``), so stray transactions between rings no longer join
   them. A flow group is a ring candidate when at least one member is high-risk and at least
   ``flow_min_candidate_share`` of its members are flow candidates (the others are accounts a
   cycle or chain passed through).
2. **Merge.** Flow groups come first: every account is in at most one ring. A score group (from all
   transactions among high-risk accounts) keeps the accounts no flow group took; what is left is
   split into its connected pieces (transactions among those accounts, standing relationships
   left out: :class:`~graphtrain.fraud.rings.flow.FlowEvidence` ``standing``) and each piece of at least
   ``min_size`` accounts stays a ring (``community``: found without flow evidence). So a ring is
   never counted twice, and a ring that flow evidence found whole is not also reported as part of a
   larger community.
3. **Kind.** Each ring's ``flow``: the structure whose evidence edges inside the ring touch the most
   members (ties in the order cycle, chain, fan_in, fan_out), or ``community`` when none does.
"""
from __future__ import annotations

from typing import List, Tuple

import numpy as np

from graphtrain.fraud.data.transaction_graph import TransactionGraph
from graphtrain.fraud.rings.flow import FLOW_KINDS, FlowEvidence
from graphtrain.fraud.rings.ring_groups import RingConfig, components, find_groups

COMMUNITY = "community"



def flow_groups(graph: TransactionGraph, scores: np.ndarray, config: RingConfig, high_risk: np.ndarray,
                candidates: np.ndarray, evidence: FlowEvidence) -> List[np.ndarray]:
    """Groups of accounts tied by flow evidence (step 1), sorted account arrays: at least one member
    high-risk, at least ``config.flow_min_candidate_share`` of them ``candidates`` (bool ``[N]``)."""
    e = evidence.edges[evidence.any]
    if e.size == 0:
        return []
    flow_graph = TransactionGraph(graph.accounts, graph.src[e], graph.dst[e],
                                  amount=graph.amount[e] if graph.amount is not None else None,
                                  time=graph.time[e] if graph.time is not None else None, directed=graph.directed)
    touched = np.zeros(graph.num_accounts, dtype=bool)
    touched[flow_graph.src] = touched[flow_graph.dst] = True
    groups = find_groups(flow_graph, scores, config, high_risk=touched)
    return [g for g in groups if high_risk[g].any() and candidates[g].mean() >= config.flow_min_candidate_share]


def merge_groups(graph: TransactionGraph, flow: List[np.ndarray], score: List[np.ndarray], min_size: int,
                 standing: np.ndarray = np.empty(0, dtype=np.int64)) -> List[np.ndarray]:
    """Flow groups, then the unclaimed connected pieces of the score groups, not counting the
    ``standing`` transactions (indices; step 2)."""
    n = graph.num_accounts
    claimed = np.zeros(n, dtype=bool)
    for g in flow:
        claimed[g] = True
    label = np.full(n, -1, dtype=np.int64)
    for i, g in enumerate(score):
        label[g[~claimed[g]]] = i
    rest = np.flatnonzero(label >= 0)
    if rest.size == 0:
        return list(flow)
    local = np.full(n, -1, dtype=np.int64)
    local[rest] = np.arange(rest.size)
    ls, ld = label[graph.src], label[graph.dst]
    same = (ls >= 0) & (ls == ld) & (graph.src != graph.dst)
    same[standing] = False
    comp = components(rest.size, local[graph.src[same]], local[graph.dst[same]])
    order = np.argsort(comp, kind="stable")
    pieces = np.split(rest[order], np.flatnonzero(np.diff(comp[order])) + 1)
    return list(flow) + [np.sort(p) for p in pieces if p.size >= min_size]


def ring_kinds(graph: TransactionGraph, groups: List[np.ndarray], evidence: FlowEvidence) -> List[str]:
    """Each group's flow kind (step 3)."""
    n = graph.num_accounts
    ring_of = np.full(n, -1, dtype=np.int64)
    for r, g in enumerate(groups):
        ring_of[g] = r
    s, d = graph.src[evidence.edges], graph.dst[evidence.edges]
    rs = ring_of[s]
    inside = (rs >= 0) & (rs == ring_of[d])
    touched = np.zeros((len(FLOW_KINDS), len(groups)), dtype=np.int64)
    for k, name in enumerate(FLOW_KINDS):
        m = inside & evidence.kind(name)
        accounts = np.unique(np.concatenate([s[m], d[m]]))
        touched[k] = np.bincount(ring_of[accounts], minlength=len(groups))
    best = np.argmax(touched, axis=0) if groups else np.empty(0, np.int64)  # first maximum: the order above
    return [FLOW_KINDS[best[r]] if touched[best[r], r] > 0 else COMMUNITY for r in range(len(groups))]


def rings_with_flow(graph: TransactionGraph, scores: np.ndarray, config: RingConfig, high_risk: np.ndarray,
                    candidates: np.ndarray, score_groups: List[np.ndarray],
                    evidence: FlowEvidence) -> Tuple[List[np.ndarray], List[str]]:
    """Steps 1-3: the merged groups and the flow kind of each."""
    groups = merge_groups(graph, flow_groups(graph, scores, config, high_risk, candidates, evidence), score_groups, config.min_size,
                          evidence.standing)
    return groups, ring_kinds(graph, groups, evidence)
