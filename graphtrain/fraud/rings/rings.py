"""Ring detection: from per-account risk scores (any model's) and the transactions to a ranked list
of rings with evidence.

1-4. **Groups** of high-risk accounts tied together by their transactions: thresholds, components,
   bridge cuts, communities, dense-subgraph peeling (see :mod:`graphtrain.fraud.rings.ring_groups`).
5. **Rings** are the groups of ``min_size`` or more members, ranked by ring score = mean member
   score. Each gets a typology guess and member roles from its internal transactions
   (:mod:`graphtrain.fraud.rings.ring_shapes`), its time window and total internal amount, and per
   member the evidence: score, flow in and out inside the ring, internal counterparties, and shared
   counterparties (accounts outside the ring that transact with this member and at least one other
   member).

Evidence is computed for all rings at once with vectorised NumPy over the edge arrays (O(E)).
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import List, Optional

import numpy as np

from graphtrain.errors import ConfigError
from graphtrain.fraud.data.transaction_graph import TransactionGraph
from graphtrain.fraud.rings.flow import find_flow_evidence
from graphtrain.fraud.rings.flow_groups import rings_with_flow
from graphtrain.fraud.rings.peeling import camouflage_resistant_weights
from graphtrain.fraud.rings.ring_groups import RingConfig, find_groups, flow_candidates, high_risk_accounts, undirected_pairs
from graphtrain.fraud.rings.ring_shapes import guess_shape, guess_undirected_shape
from graphtrain.ordering import pair_order

__all__ = ["RingConfig", "DetectedRings", "detect_rings", "describe_rings", "no_rings_reason", "write_rings"]

RINGS_BASENAME = "rings"
MEMBERS_BASENAME = "ring_members"


@dataclass
class DetectedRings:
    """Detected rings, best first.

    Attributes:
        rings: DataFrame, one row per ring: ``ring_id`` (1 = highest score), ``size``, ``ring_score``,
            ``density`` (FRAUDAR ``g``), ``typology`` (the shape guess of
            :mod:`graphtrain.fraud.rings.ring_shapes`; a ring of no typology's shape is named by its
            ``flow``), ``flow`` (the money-flow structure that formed it: ``cycle``, ``chain``,
            ``fan_in``, ``fan_out``, or ``community`` when none did; None without flow finding),
            ``internal_transactions``, ``time_start``,
            ``time_end``, ``total_amount`` (None without times/amounts), ``members`` (raw IDs).
        members: DataFrame, one row per member: ``ring_id``, ``account_index``, ``account_id``,
            ``role``, ``score``, ``flow_in``, ``flow_out`` (internal amounts; integer transaction
            counts without amounts; on an undirected graph both hold the member's internal edges'
            total, each edge counted once), ``internal_counterparties``, ``shared_counterparties``.
            Roles and typologies of an undirected graph name no direction
            (:func:`graphtrain.fraud.rings.ring_shapes.guess_undirected_shape`).
        high_risk: number of accounts in the high-risk set (core + grown).
    """

    rings: "object"
    members: "object"
    high_risk: int

    def member_lists(self) -> List[np.ndarray]:
        """Account indices of each ring, in ``ring_id`` order."""
        grouped = self.members.groupby("ring_id", sort=True)["account_index"]
        return [np.asarray(g, dtype=np.int64) for _, g in grouped]


# -- step 5: rings with evidence ------------------------------------------------------------------
def _shared_counterparties(graph: TransactionGraph, ring_of: np.ndarray) -> np.ndarray:
    """Per account: outside accounts it transacts with that also transact with another member of its ring."""
    n = graph.num_accounts
    rs, rd = ring_of[graph.src], ring_of[graph.dst]
    a = (rs >= 0) & (rs != rd)  # member -> outside of its ring
    b = (rd >= 0) & (rd != rs)  # outside -> member
    member = np.concatenate([graph.src[a], graph.dst[b]])
    other = np.concatenate([graph.dst[a], graph.src[b]])
    ring = ring_of[member]
    key = ring.astype(np.int64) * n + other  # (ring, outside account)
    order = pair_order(key, member)
    key, member = key[order], member[order]
    new = np.ones(key.size, dtype=bool)
    new[1:] = (key[1:] != key[:-1]) | (member[1:] != member[:-1])
    key, member = key[new], member[new]
    starts = np.flatnonzero(np.r_[True, key[1:] != key[:-1]]) if key.size else np.empty(0, np.int64)
    members_per_key = np.diff(np.r_[starts, key.size])
    shared = np.repeat(members_per_key >= 2, members_per_key)
    return np.bincount(member[shared], minlength=n)


def describe_rings(graph: TransactionGraph, scores: np.ndarray, groups: List[np.ndarray], high_risk: int = 0,
                   kinds: Optional[List[str]] = None) -> DetectedRings:
    """Rank the groups and compute each ring's typology, window, amount and member evidence (step 5).

    ``kinds``: each group's flow kind (:func:`graphtrain.fraud.rings.flow_groups.ring_kinds`), or None
    when flow was not looked at (the ``flow`` column is then empty).
    """
    import pandas as pd

    n = graph.num_accounts
    mean_scores = [float(scores[g].mean()) for g in groups]
    order = sorted(range(len(groups)), key=lambda i: (-mean_scores[i], -groups[i].size, int(groups[i].min())))
    kinds = [kinds[i] for i in order] if kinds is not None else [None] * len(groups)
    groups = [np.sort(groups[i]) for i in order]
    ring_of = np.full(n, -1, dtype=np.int64)
    for r, g in enumerate(groups):
        ring_of[g] = r
    rs, rd = ring_of[graph.src], ring_of[graph.dst]
    internal = (rs >= 0) & (rs == rd)
    e_ring = rs[internal]
    e_src, e_dst = graph.src[internal], graph.dst[internal]
    e_amount = graph.amount[internal] if graph.amount is not None else np.ones(e_src.size)
    e_time = graph.time[internal] if graph.time is not None else None
    in_degree = np.bincount(graph.dst, minlength=n)
    e_weight = camouflage_resistant_weights(in_degree[e_dst])
    flow_out = np.bincount(e_src, weights=e_amount, minlength=n)
    flow_in = np.bincount(e_dst, weights=e_amount, minlength=n)
    if not graph.directed:  # each edge is stored both ways: in = out = the member's edges' total
        flow_in = flow_out
    as_number = (lambda v: round(float(v), 2)) if graph.amount is not None else (lambda v: int(round(v)))
    shape = guess_shape if graph.directed else guess_undirected_shape
    shared = _shared_counterparties(graph, ring_of)
    by_ring = np.argsort(e_ring, kind="stable")
    cuts = np.searchsorted(e_ring[by_ring], np.arange(len(groups) + 1))
    accounts = graph.accounts
    id_rank = accounts.id_rank()

    ring_rows, member_rows = [], []
    for r, g in enumerate(groups):
        sel = by_ring[cuts[r] : cuts[r + 1]]
        # members in raw-ID order, so that ties in the shape guess (roles) do not depend on how
        # accounts are numbered (the whole graph's rows, or a subgraph's global IDs)
        by_id = np.argsort(id_rank[g], kind="stable")
        rank = np.empty(g.size, dtype=np.int64)
        rank[by_id] = np.arange(g.size)
        pos = rank[np.searchsorted(g, np.concatenate([e_src[sel], e_dst[sel]]))]
        ls, ld = pos[: sel.size], pos[sel.size :]
        typology, roles = shape(g.size, ls, ld)
        if typology == "other" and kinds[r] is not None:
            typology = kinds[r]  # no typology's shape: name the flow structure that formed it
        pu, pv, pw = undirected_pairs(g.size, ls, ld, e_weight[sel])
        counterparties = np.bincount(np.concatenate([pu, pv]), minlength=g.size)
        ring_id = r + 1
        ring_rows.append({
            "ring_id": ring_id,
            "size": int(g.size),
            "ring_score": mean_scores[order[r]],
            "density": float((np.clip(scores[g], 0, None).sum() + pw.sum()) / g.size),
            "typology": typology,
            "flow": kinds[r],
            "internal_transactions": int(sel.size) if graph.directed else int(sel.size) // 2,
            "time_start": int(e_time[sel].min()) if e_time is not None and sel.size else None,
            "time_end": int(e_time[sel].max()) if e_time is not None and sel.size else None,
            "total_amount": round(float(e_amount[sel].sum()) / (1 if graph.directed else 2), 2)
            if graph.amount is not None else None,
            "members": [accounts.raw_id(a) for a in g],
        })
        for j, a in enumerate(g[by_id]):
            member_rows.append({
                "ring_id": ring_id,
                "account_index": int(a),
                "account_id": accounts.raw_id(a),
                "role": roles[j],
                "score": float(scores[a]),
                "flow_in": as_number(flow_in[a]),
                "flow_out": as_number(flow_out[a]),
                "internal_counterparties": int(counterparties[j]),
                "shared_counterparties": int(shared[a]),
            })
    ring_cols = ["ring_id", "size", "ring_score", "density", "typology", "flow", "internal_transactions", "time_start",
                 "time_end", "total_amount", "members"]
    member_cols = ["ring_id", "account_index", "account_id", "role", "score", "flow_in", "flow_out",
                   "internal_counterparties", "shared_counterparties"]
    return DetectedRings(pd.DataFrame(ring_rows, columns=ring_cols), pd.DataFrame(member_rows, columns=member_cols), high_risk)


def touching(graph: TransactionGraph, accounts: np.ndarray) -> TransactionGraph:
    """The same accounts with only the transactions that have an endpoint among ``accounts`` (bool ``[N]``)."""
    keep = accounts[graph.src] | accounts[graph.dst]
    return TransactionGraph(graph.accounts, graph.src[keep], graph.dst[keep],
                            amount=graph.amount[keep] if graph.amount is not None else None,
                            time=graph.time[keep] if graph.time is not None else None, directed=graph.directed)


def detect_rings(graph: TransactionGraph, scores, config: RingConfig, high_risk: Optional[np.ndarray] = None) -> DetectedRings:
    """Steps 1-5 (see the module docstring).

    Args:
        graph: the transactions.
        scores: float ``[N]`` risk score per account (higher = riskier; any scale, finite).
        config: thresholds and sizes.
        high_risk: bool ``[N]``: step 1's result when it was computed elsewhere (on the whole graph,
            when ``graph`` holds only the transactions touching those accounts); None: from ``graph``.

    With ``config.flow`` (directed transactions with times) rings also come from money flow
    (:mod:`graphtrain.fraud.rings.flow_groups`) and everything is computed on the transactions
    touching the flow candidates (:func:`graphtrain.fraud.rings.ring_groups.flow_candidates`, a
    superset of the high-risk accounts): ``graph`` must hold at least those, and a ring member that
    is no candidate shows only its transactions with candidates in its evidence.
    """
    config.validate()
    scores = np.asarray(scores, dtype=np.float64)
    if scores.shape != (graph.num_accounts,):
        raise ConfigError(f"need one score per account: got {scores.shape[0] if scores.ndim else 'a scalar'} "
                          f"scores for {graph.num_accounts} accounts")
    if not np.all(np.isfinite(scores)):
        raise ConfigError("scores contain NaN or infinity")
    if high_risk is None:
        high_risk = high_risk_accounts(graph, scores, config)
    kinds = None
    if config.flow and graph.directed and graph.time is not None:
        candidates = flow_candidates(scores, config) | high_risk
        graph = touching(graph, candidates)
        groups = find_groups(graph, scores, config, high_risk=high_risk)
        evidence = find_flow_evidence(graph, candidates, max_hops=config.flow_max_hops, tolerance=config.flow_tolerance,
                                      min_fan=config.flow_min_fan, fan_p=config.flow_fan_p,
                                      window_quantile=config.flow_window_quantile,
                                      recurring_quantile=config.flow_recurring_quantile)
        groups, kinds = rings_with_flow(graph, scores, config, high_risk, candidates, groups, evidence)
    else:
        groups = find_groups(graph, scores, config, high_risk=high_risk)
    return describe_rings(graph, scores, groups, high_risk=int(np.count_nonzero(high_risk)), kinds=kinds)


def no_rings_reason(graph: TransactionGraph, scores, config: RingConfig, high_risk: Optional[np.ndarray] = None) -> str:
    """Why :func:`detect_rings` found no ring with these scores, and what to try (for the summary and report).

    ``high_risk``: as :func:`detect_rings`'s.
    """
    scores = np.asarray(scores, dtype=np.float64)
    risky = high_risk if high_risk is not None else high_risk_accounts(graph, scores, config)
    h = int(risky.sum())
    if h == 0:
        return (f"no rings: no account scores at least the high-risk threshold {config.threshold:.4g}. To try: check "
                "the labels (both classes, enough frauds) and the model's metrics; the threshold is calibrated to the "
                "estimated share of frauds among all accounts.")
    inside = risky[graph.src] & risky[graph.dst] & (graph.src != graph.dst)
    if not inside.any():
        return (f"no rings: none of the {h:,} high-risk accounts has an edge to another high-risk account, and a ring "
                "is a group of high-risk accounts linked by their own edges. This is typical of a bipartite graph "
                "(e.g. users and the items they review: the flagged users are linked only through unflagged items). "
                "To try: link the scored accounts directly, e.g. by an edge between two accounts that share a "
                "counterparty (the graph projected onto one side), and run again; or check that both edge columns "
                "hold the same kind of account.")
    from graphtrain.fraud.rings.ring_groups import components

    local = np.cumsum(risky) - 1
    labels = components(h, local[graph.src[inside]], local[graph.dst[inside]])
    largest = int(np.bincount(labels).max())
    edges = int(inside.sum()) // (1 if graph.directed else 2)
    return (f"no rings: the {h:,} high-risk accounts share {edges:,} edges, but no linked group of them "
            f"reaches the smallest ring size, {config.min_size} (largest: {largest}). To try: a smaller ring size "
            "minimum, or more labelled frauds so that more of a ring's members score as high-risk.")


def write_rings(rings: DetectedRings, directory, force: bool = False) -> List[Path]:
    """Write ``rings.parquet``/``rings.csv`` (members as a list / ``;``-joined) and
    ``ring_members.parquet``/``ring_members.csv`` into ``directory`` (each staged, never half-written)."""
    import pyarrow as pa

    from graphtrain.fraud.data.tables import write_table
    from graphtrain.io import staged_file

    directory = Path(directory)
    members = rings.members.drop(columns=["account_index"])
    ring_table = rings.rings
    csv_rings = ring_table.assign(members=[";".join(map(str, m)) for m in ring_table["members"]])
    written = []
    for name, frame in ((f"{RINGS_BASENAME}.parquet", ring_table), (f"{RINGS_BASENAME}.csv", csv_rings),
                        (f"{MEMBERS_BASENAME}.parquet", members), (f"{MEMBERS_BASENAME}.csv", members)):
        with staged_file(directory / name, force=force) as tmp:
            # the temporary name must keep the format's extension
            target = tmp.with_name(tmp.name + "." + name.rsplit(".", 1)[1])
            write_table(target, pa.Table.from_pandas(frame, preserve_index=False))
            target.rename(tmp)
        written.append(directory / name)
    return written
