"""Candidate rings: groups of high-risk accounts tied together by their transactions.

1. **High-risk accounts.** Accounts scoring at least ``threshold`` are the core; with
   ``grow_threshold``, accounts scoring at least that much join when they transact with two or more
   distinct core accounts that make up at least ``grow_min_share`` of their counterparties (rings
   are rarely scored uniformly; the share keeps hubs out).
2. **Components** of the high-risk accounts and the transactions among them (distinct account
   pairs, direction ignored), after cutting bridges with ``min_size`` or more accounts on both sides
   (two rings joined by one stray transaction, see :mod:`graphtrain.fraud.rings.bridges`).
3. **Cycles and communities.** A component whose shape is none of the typologies (see
   :mod:`graphtrain.fraud.rings.ring_shapes`) and that is large enough to hold two rings first gives up
   its cycle-shaped strongly connected parts (money going round); what is left is split into
   Louvain communities (modularity at resolution 0.5, seeded; compiled,
   :mod:`graphtrain.fraud.rings.louvain`). A component that has a typology's
   shape is kept whole.
4. **Oversized groups** (more than ``max_size`` members) are cut by FRAUDAR-style peeling
   (:mod:`graphtrain.fraud.rings.peeling`): the densest block (scores as node priors, camouflage-resistant
   edge weights) becomes a group and the rest is split into components again, until nothing
   oversized is left.

Groups smaller than ``min_size`` are dropped at every step. Memory: O(E) booleans for the edge
mask plus O(edges among high-risk accounts); the community and peeling steps are in-memory graph
algorithms over the high-risk subgraph only.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import List, Optional

import numpy as np

from graphtrain.errors import ConfigError
from graphtrain.fraud.data.transaction_graph import TransactionGraph
from graphtrain.fraud.rings.bridges import substantial_bridges
from graphtrain.fraud.rings.louvain import louvain_communities
from graphtrain.fraud.rings.peeling import camouflage_resistant_weights, peel_densest
from graphtrain.fraud.rings.ring_shapes import guess_shape
from graphtrain.log import get_logger

log = get_logger("fraud.rings")

# below 1, Louvain prefers fewer, larger communities: rings joined by stray transactions still come
# apart, and a long cycle inside a merged group is less often cut into arcs
LOUVAIN_RESOLUTION = 0.5


@dataclass(frozen=True)
class RingConfig:
    """Ring detection settings.

    Attributes:
        threshold: accounts with score >= threshold are high-risk (the core).
        grow_threshold: accounts with score >= this (and below ``threshold``) join when linked to
            >= 2 distinct core accounts that make up at least ``grow_min_share`` of their
            counterparties; None = no growing.
        grow_min_share: see ``grow_threshold``.
        min_size: smallest ring reported (members).
        max_size: groups larger than this are cut by dense-subgraph peeling.
        seed: seed of the community detection.
        flow: also find rings from money flow among the high-risk accounts
            (:mod:`graphtrain.fraud.rings.flow_groups`); needs directed transactions with times.
        flow_window_quantile: the hop window (longest delay between receiving and passing money
            on, and the width of a fan burst) is this quantile of the gaps between consecutive
            transactions of the same high-risk account, in the input's time unit: the data's own
            pace, not a constant.
        flow_max_hops: longest temporal cycle, in hops (= accounts).
        flow_tolerance: share of an incoming amount a chain hop may keep (fees); a hop forwards
            between ``1 - flow_tolerance`` and 1 times what arrived.
        flow_min_fan: fewest distinct counterparties of a fan-in / fan-out burst.
        flow_fan_p: a window's distinct counterparties are a burst when the account's own mean
            rate makes that many less likely than this (Poisson tail).
        flow_recurring_quantile: a payer -> payee pair whose transactions span longer than this
            quantile of the same gaps is a standing relationship (payroll, rent, subscriptions,
            invoices), not evidence of a flow: laundering moves in short bursts.
        flow_min_candidate_share: a flow group becomes a ring when at least one member is
            high-risk and at least this share of its members are flow candidates (accounts scoring
            at least ``grow_threshold``; see :func:`flow_candidates`); the rest are counterparties
            its flow evidence ties in.
    """

    threshold: float
    grow_threshold: Optional[float] = None
    grow_min_share: float = 0.25
    min_size: int = 3
    max_size: int = 40
    seed: int = 0
    flow: bool = True
    flow_window_quantile: float = 0.5
    flow_max_hops: int = 6
    flow_tolerance: float = 0.1
    flow_min_fan: int = 3
    flow_fan_p: float = 1e-3
    flow_recurring_quantile: float = 0.9
    flow_min_candidate_share: float = 0.5

    def validate(self) -> "RingConfig":
        if not np.isfinite(self.threshold):
            raise ConfigError(f"ring threshold must be a finite number, got {self.threshold}")
        if self.grow_threshold is not None and not self.grow_threshold <= self.threshold:
            raise ConfigError(f"grow threshold {self.grow_threshold} must not exceed the threshold {self.threshold}")
        if not 0 <= self.grow_min_share <= 1:
            raise ConfigError(f"grow_min_share must be in [0, 1], got {self.grow_min_share}")
        if not 2 <= self.min_size <= self.max_size:
            raise ConfigError(f"need 2 <= min ring size <= max ring size, got {self.min_size} and {self.max_size}")
        if not 0 < self.flow_window_quantile <= 1:
            raise ConfigError(f"flow_window_quantile must be in (0, 1], got {self.flow_window_quantile}")
        if not 3 <= self.flow_max_hops <= 16:
            raise ConfigError(f"flow_max_hops must be in [3, 16], got {self.flow_max_hops}")
        if not 0 <= self.flow_tolerance < 1:
            raise ConfigError(f"flow_tolerance must be in [0, 1), got {self.flow_tolerance}")
        if self.flow_min_fan < 2:
            raise ConfigError(f"flow_min_fan must be >= 2, got {self.flow_min_fan}")
        if not 0 < self.flow_fan_p < 1:
            raise ConfigError(f"flow_fan_p must be in (0, 1), got {self.flow_fan_p}")
        if not 0 < self.flow_recurring_quantile <= 1:
            raise ConfigError(f"flow_recurring_quantile must be in (0, 1], got {self.flow_recurring_quantile}")
        if not 0 <= self.flow_min_candidate_share <= 1:
            raise ConfigError(f"flow_min_candidate_share must be in [0, 1], got {self.flow_min_candidate_share}")
        return self


def high_risk_accounts(graph: TransactionGraph, scores: np.ndarray, config: RingConfig) -> np.ndarray:
    """bool ``[N]``: the core plus the grown accounts (step 1)."""
    core = scores >= config.threshold
    if config.grow_threshold is None:
        return core
    n = graph.num_accounts
    cand = (scores >= config.grow_threshold) & ~core
    s, d = graph.src, graph.dst
    touch = cand[s] | cand[d]
    c = np.where(cand[s[touch]], s[touch], d[touch])  # the candidate end (either, if both are)
    k = np.where(cand[s[touch]], d[touch], s[touch])
    pairs = np.unique(c * n + k)
    partners = np.bincount(pairs // n, minlength=n)
    links = np.bincount(pairs[core[pairs % n]] // n, minlength=n)
    share = links / np.maximum(partners, 1)
    return core | (cand & (links >= 2) & (share >= config.grow_min_share))


def flow_candidates(scores: np.ndarray, config: RingConfig) -> np.ndarray:
    """bool ``[N]``: the flow candidates, accounts that may join a ring through money flow: scoring
    at least the grow threshold (the threshold when there is none)."""
    return scores >= (config.grow_threshold if config.grow_threshold is not None else config.threshold)


def undirected_pairs(n: int, src: np.ndarray, dst: np.ndarray, weight: np.ndarray):
    """Distinct unordered pairs ``(u < v)`` with the largest weight among their edges; self-loops dropped."""
    keep = src != dst
    u = np.minimum(src[keep], dst[keep])
    v = np.maximum(src[keep], dst[keep])
    key = u * n + v
    order = np.lexsort((-weight[keep], key))
    key, w = key[order], weight[keep][order]
    first = np.ones(key.size, dtype=bool)
    first[1:] = key[1:] != key[:-1]
    return key[first] // n, key[first] % n, w[first]


def components(n: int, u: np.ndarray, v: np.ndarray) -> np.ndarray:
    """int ``[n]`` connected-component label of each node of an undirected graph."""
    from scipy.sparse import coo_matrix
    from scipy.sparse.csgraph import connected_components

    adj = coo_matrix((np.ones(u.size), (u, v)), shape=(n, n)).tocsr()
    return connected_components(adj, directed=False)[1]


def _groups_of(labels: np.ndarray, nodes: np.ndarray) -> List[np.ndarray]:
    """Split ``nodes`` by their ``labels`` (sorted node arrays)."""
    lab = labels[nodes]
    order = np.argsort(lab, kind="stable")
    return [np.sort(g) for g in np.split(nodes[order], np.flatnonzero(np.diff(lab[order])) + 1)] if nodes.size else []


class _RiskSubgraph:
    """The high-risk accounts (local ids ``0 .. n-1``) with their distinct directed pairs and undirected weights."""

    def __init__(self, graph: TransactionGraph, risky: np.ndarray, scores: np.ndarray):
        self.accounts = np.flatnonzero(risky)
        n = self.n = self.accounts.size
        local = np.full(graph.num_accounts, -1, dtype=np.int64)
        local[self.accounts] = np.arange(n)
        inside = risky[graph.src] & risky[graph.dst]
        src, dst = local[graph.src[inside]], local[graph.dst[inside]]
        in_degree = np.bincount(graph.dst, minlength=graph.num_accounts)
        weight = camouflage_resistant_weights(in_degree[graph.dst[inside]])
        keep = src != dst
        key = np.unique(src[keep] * n + dst[keep])
        self.src, self.dst = key // n, key % n  # distinct directed pairs
        self.u, self.v, self.w = undirected_pairs(n, src, dst, weight)
        self.prior = np.clip(scores[self.accounts], 0.0, None)
        # each account's rank by raw ID: community detection visits nodes in this order, so the rings
        # do not depend on how accounts are numbered (account-table rows, or a dataset's global IDs)
        self.rank = np.empty(n, dtype=np.int64)
        self.rank[np.argsort(graph.accounts.id_rank()[self.accounts], kind="stable")] = np.arange(n)
        # both pair lists are sorted by their first endpoint (then the second): row pointers into them
        nodes = np.arange(n + 1)
        self._src_ptr, self._u_ptr = np.searchsorted(self.src, nodes), np.searchsorted(self.u, nodes)
        self._pos = np.full(n, -1, dtype=np.int64)  # scratch of induced(): -1 outside the group being read

    def induced(self, nodes: np.ndarray, directed: bool):
        """Edges among ``nodes`` in positions of ``nodes``: ``(src, dst)`` directed or ``(u, v, w)`` undirected.

        Edges come in the pair lists' order. Time and memory are linear in the nodes and their pairs,
        not in the whole subgraph: :func:`find_groups` calls this once or more per group.
        """
        first, second, ptr = (self.src, self.dst, self._src_ptr) if directed else (self.u, self.v, self._u_ptr)
        ordered = np.sort(nodes)  # rows in ascending order keep the pair lists' order
        starts, counts = ptr[ordered], ptr[ordered + 1] - ptr[ordered]
        rows = np.repeat(starts - np.cumsum(counts) + counts, counts) + np.arange(int(counts.sum()))
        pos = self._pos
        pos[nodes] = np.arange(nodes.size)
        try:
            rows = rows[pos[second[rows]] >= 0]
            a, b = pos[first[rows]], pos[second[rows]]
        finally:
            pos[nodes] = -1
        return (a, b) if directed else (a, b, self.w[rows])

    def shape(self, nodes: np.ndarray) -> str:
        return guess_shape(nodes.size, *self.induced(nodes, directed=True))[0]


def _louvain(sub: _RiskSubgraph, nodes: np.ndarray, seed: int) -> List[np.ndarray]:
    u, v, w = sub.induced(nodes, directed=False)
    # positions by raw ID: the communities do not depend on how accounts are numbered
    rank = np.argsort(np.argsort(sub.rank[nodes], kind="stable"), kind="stable")
    labels = louvain_communities(nodes.size, rank[u], rank[v], w, resolution=LOUVAIN_RESOLUTION, seed=seed)
    return [np.sort(nodes[part]) for part in _groups_of(labels[rank], np.arange(nodes.size))]


def _cycles_apart(sub: _RiskSubgraph, nodes: np.ndarray, min_size: int) -> List[np.ndarray]:
    """Split off the cycle-shaped strongly connected parts of a group (none: empty list).

    Money that goes round is a strongly connected component of the directed transactions; the other
    typologies are acyclic, and stray transactions rarely close a loop, so a cycle ring joined to
    other rings is still its own strongly connected component.
    """
    from scipy.sparse import coo_matrix
    from scipy.sparse.csgraph import connected_components

    src, dst = sub.induced(nodes, directed=True)
    adj = coo_matrix((np.ones(src.size), (src, dst)), shape=(nodes.size, nodes.size)).tocsr()
    labels = connected_components(adj, directed=True, connection="strong")[1]
    cycles = [c for c in _groups_of(labels, np.arange(nodes.size))
              if c.size >= min_size and sub.shape(nodes[c]) == "cycle"]
    if not cycles or (len(cycles) == 1 and cycles[0].size == nodes.size):
        return []
    rest = np.ones(nodes.size, dtype=bool)
    for c in cycles:
        rest[c] = False
    keep = rest[src] & rest[dst]
    left = components(nodes.size, src[keep], dst[keep])
    pieces = [nodes[c] for c in cycles]
    pieces += [nodes[p] for p in _groups_of(left, np.flatnonzero(rest))]
    return pieces


def _peel_apart(sub: _RiskSubgraph, nodes: np.ndarray, config: RingConfig) -> List[np.ndarray]:
    """Cut an oversized group by repeated densest-block peeling (step 4)."""
    done: List[np.ndarray] = []
    pending = [nodes]
    while pending:
        part = pending.pop()
        if part.size < config.min_size:
            continue
        if part.size <= config.max_size:
            done.append(part)
            continue
        u, v, w = sub.induced(part, directed=False)
        block = np.sort(peel_densest(part.size, u, v, w, sub.prior[part]).nodes[-config.max_size:])
        in_block = np.zeros(part.size, dtype=bool)
        in_block[block] = True
        keep = in_block[u] == in_block[v]  # edges inside the block or inside the rest
        labels = components(part.size, u[keep], v[keep])
        for piece in _groups_of(labels, np.arange(part.size)):
            if in_block[piece[0]]:
                done.extend([part[piece]] if piece.size >= config.min_size else [])
            else:
                pending.append(part[piece])
    return done


def find_groups(graph: TransactionGraph, scores: np.ndarray, config: RingConfig,
                high_risk: Optional[np.ndarray] = None) -> List[np.ndarray]:
    """Account indices of each candidate ring (sorted arrays; steps 1-4), in no particular order.

    ``high_risk``: step 1's bool ``[N]`` when already known (computed on a larger graph than ``graph``).
    """
    risky = high_risk if high_risk is not None else high_risk_accounts(graph, scores, config)
    sub = _RiskSubgraph(graph, risky, scores)
    cut = substantial_bridges(sub.n, sub.u, sub.v, config.min_size)
    labels = components(sub.n, sub.u[~cut], sub.v[~cut])
    groups: List[np.ndarray] = []
    pending = [c for c in _groups_of(labels, np.arange(sub.n)) if c.size >= config.min_size]
    while pending:
        group = pending.pop()
        if group.size >= 2 * config.min_size and sub.shape(group) == "other":
            parts = _cycles_apart(sub, group, config.min_size) or _louvain(sub, group, config.seed)
            if len(parts) > 1:
                pending.extend(p for p in parts if p.size >= config.min_size)
                continue
        groups.extend(_peel_apart(sub, group, config) if group.size > config.max_size else [group])
    log.info("rings: %d high-risk accounts, %d groups of >= %d", sub.n, len(groups), config.min_size)
    return [sub.accounts[g] for g in groups]
