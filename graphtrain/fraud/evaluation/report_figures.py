"""The report's figures as PNG files (matplotlib, Agg backend: no display needed).

- :func:`curves`: ROC and precision-recall curves of one or more score sets on the same accounts.
- :func:`confusion`: the confusion matrix at a threshold.
- :func:`network`: a small directed network (a ring, or an account's neighbourhood) with nodes
  coloured by score percentile, known frauds outlined, and a role or ID label per node.
- :func:`flow`: a ring's money flow: accounts around a circle in the order money first reaches
  them, one arrow per payer -> payee pair, as wide as the pair's total amount, labelled with its
  place in time (``#k``, time of the pair's first transaction after the ring's first) and total.
"""
from __future__ import annotations

from pathlib import Path
from typing import Dict, Optional, Sequence

import numpy as np

HUB_ROLES = {"collector", "distributor", "hub"}


def _plt():
    from graphtrain.optional import require

    require("matplotlib", feature="the fraud report's figures")
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def curves(path_roc: Path, path_pr: Path, labels: np.ndarray, scores: Dict[str, np.ndarray]) -> None:
    """ROC and PR curves, one line per named score array (all aligned with ``labels``, 0/1), each
    drawn through at most :func:`graphtrain.metrics.curve_points`' 2,000 thresholds."""
    from graphtrain.metrics import curve_points

    plt = _plt()
    points = {name: curve_points(labels, s) for name, s in scores.items()}
    for path, kind in ((path_roc, "roc"), (path_pr, "pr")):
        fig, ax = plt.subplots(figsize=(4.6, 4.2), dpi=110)
        for name, p in points.items():
            x, y = (p["fpr"], p["tpr"]) if kind == "roc" else (p["recall"], p["precision"])
            ax.plot(x, y, label=name, lw=1.6)
        if kind == "roc":
            ax.plot([0, 1], [0, 1], ls=":", c="grey", lw=1)
            ax.set(xlabel="false positive rate", ylabel="true positive rate", title="ROC (test split)")
        else:
            ax.axhline(labels.mean(), ls=":", c="grey", lw=1)
            ax.set(xlabel="recall", ylabel="precision", title="Precision-recall (test split)")
        ax.set_xlim(0, 1)
        ax.set_ylim(0, 1.02)
        ax.legend(loc="lower right" if kind == "roc" else "upper right", fontsize=8)
        fig.tight_layout()
        fig.savefig(path)
        plt.close(fig)


def confusion(path: Path, labels: np.ndarray, predicted: np.ndarray, title: str) -> np.ndarray:
    """Confusion matrix ``[[tn, fp], [fn, tp]]`` drawn as a 2x2 table; returns it."""
    plt = _plt()
    matrix = np.array([[np.sum((labels == t) & (predicted == p)) for p in (0, 1)] for t in (0, 1)])
    fig, ax = plt.subplots(figsize=(3.6, 3.2), dpi=110)
    ax.imshow(matrix, cmap="Blues")
    for t in (0, 1):
        for p in (0, 1):
            ax.text(p, t, f"{matrix[t, p]:,}", ha="center", va="center",
                    color="white" if matrix[t, p] > matrix.max() / 2 else "black")
    ax.set_xticks([0, 1], ["normal", "fraud"])
    ax.set_yticks([0, 1], ["normal", "fraud"])
    ax.set(xlabel="predicted", ylabel="label", title=title)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return matrix


def _positions(n: int, roles: Sequence[str], typology: str) -> np.ndarray:
    """Node positions: senders left and receivers right for flows, hubs (node 0 of a ``star``) in the
    centre, the rest on a circle."""
    roles = list(roles)
    pos = np.zeros((n, 2))
    if typology == "bipartite" or typology == "scatter_gather":
        left = [i for i, r in enumerate(roles) if r in ("sender", "origin")]
        right = [i for i, r in enumerate(roles) if r in ("receiver", "beneficiary")]
        middle = [i for i in range(n) if i not in left and i not in right]
        for column, x in ((left, -1.0), (middle, 0.0), (right, 1.0)):
            for k, i in enumerate(column):
                pos[i] = (x, (k - (len(column) - 1) / 2) * 0.5)
        return pos
    hubs = [0] if typology == "star" else [i for i, r in enumerate(roles) if r in HUB_ROLES]
    ring = [i for i in range(n) if i not in hubs]
    angles = np.linspace(0, 2 * np.pi, len(ring), endpoint=False) + np.pi / 2
    for k, i in enumerate(ring):
        pos[i] = (np.cos(angles[k]), np.sin(angles[k]))
    for k, i in enumerate(hubs):
        pos[i] = (0.25 * k, 0.0)
    return pos


def network(path: Path, title: str, names: Sequence[str], roles: Sequence[str], score_pct: np.ndarray,
            known_fraud: np.ndarray, src: np.ndarray, dst: np.ndarray, typology: str = "other",
            highlight: Optional[np.ndarray] = None, directed: bool = True) -> None:
    """Draw a small directed network.

    Args:
        names, roles: per node (labels show the role, or the name when there is no role).
        score_pct: per node score percentile in [0, 1] (node colour).
        known_fraud: per node bool, outlined in black.
        src, dst: local node indices of the edges (repeated pairs are drawn once, wider).
        typology: picks the layout.
        highlight: optional per node bool, drawn as a larger marker (e.g. the account under review).
        directed: arrows (payer -> payee), or plain lines for an undirected graph.
    """
    plt = _plt()
    n = len(names)
    pos = _positions(n, roles, typology)
    fig, ax = plt.subplots(figsize=(4.4, 3.9), dpi=110)
    pairs, counts = np.unique(np.stack([np.asarray(src), np.asarray(dst)], axis=1), axis=0, return_counts=True) \
        if len(src) else (np.empty((0, 2), int), np.empty(0, int))
    for (a, b), c in zip(pairs, counts):
        ax.annotate("", xy=pos[b], xytext=pos[a], arrowprops=dict(
            arrowstyle="-|>" if directed else "-", color="#555555", lw=0.6 + 0.5 * min(c, 4), shrinkA=9, shrinkB=9, alpha=0.8))
    sizes = np.where(highlight, 420, 220) if highlight is not None else np.full(n, 220)
    sc = ax.scatter(pos[:, 0], pos[:, 1], c=score_pct, cmap="RdYlGn_r", vmin=0, vmax=1, s=sizes, zorder=3,
                    edgecolors=np.where(known_fraud, "black", "#bbbbbb"), linewidths=np.where(known_fraud, 2.0, 0.8))
    for i in range(n):
        label = roles[i] if roles[i] else names[i]
        ax.annotate(label, pos[i], xytext=(0, -14), textcoords="offset points", ha="center", fontsize=6.5)
    fig.colorbar(sc, ax=ax, fraction=0.04, pad=0.02).set_label("score percentile", fontsize=7)
    ax.set_title(title, fontsize=9)
    ax.set_axis_off()
    ax.margins(0.18)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def _offset(delta: float, seconds: bool) -> str:
    if not seconds:
        return f"+{delta:g}"
    return f"+{delta / 3600:.0f}h" if delta < 4 * 86400 else f"+{delta / 86400:.0f}d"


def flow(path: Path, title: str, names: Sequence[str], src: np.ndarray, dst: np.ndarray, amount: Optional[np.ndarray],
         time: Optional[np.ndarray], seconds: bool = True, max_pairs: int = 40) -> None:
    """Draw a ring's money flow.

    Args:
        names: per node label.
        src, dst: int ``[m]`` local node indices of the ring's internal transactions.
        amount: float ``[m]`` (None: each transaction counts 1; arrow width is then the count).
        time: ``[m]`` transaction times (None: pairs are numbered by first appearance in the input).
        seconds: times are Unix seconds (labels in hours/days after the ring's first transaction).
        max_pairs: most payer -> payee pairs drawn (the largest by amount).
    """
    plt = _plt()
    n = len(names)
    src, dst = np.asarray(src, dtype=np.int64), np.asarray(dst, dtype=np.int64)
    money = amount is not None
    amount = np.ones(src.size) if amount is None else np.nan_to_num(np.asarray(amount, dtype=np.float64))
    time = np.arange(src.size) if time is None else np.asarray(time, dtype=np.float64)
    fig, ax = plt.subplots(figsize=(4.4, 3.9), dpi=110)
    if src.size:
        key = src * n + dst
        pairs, inv = np.unique(key, return_inverse=True)
        total = np.bincount(inv, weights=amount, minlength=pairs.size)
        first = np.full(pairs.size, np.inf)
        np.minimum.at(first, inv, time)
        keep = np.sort(np.argsort(-total, kind="stable")[:max_pairs])
        pairs, total, first = pairs[keep], total[keep], first[keep]
        ps, pd_ = pairs // n, pairs % n
        # accounts around the circle in the order money first touches them
        paid, received = np.full(n, np.inf), np.full(n, np.inf)
        np.minimum.at(paid, ps, first)
        np.minimum.at(received, pd_, first)
        seen = np.minimum(paid, received)  # ties: the payer before the payee
        rank = np.empty(n, dtype=np.int64)
        rank[np.lexsort((received <= paid, seen))] = np.arange(n)
        angles = np.pi / 2 - 2 * np.pi * rank / max(n, 1)
        pos = np.stack([np.cos(angles), np.sin(angles)], axis=1)
        order = np.argsort(first, kind="stable")
        t0 = first[order[0]]
        width = 0.6 + 4.4 * total / max(total.max(), 1e-12)
        for k, i in enumerate(order):
            a, b = pos[ps[i]], pos[pd_[i]]
            ax.annotate("", xy=b, xytext=a, arrowprops=dict(arrowstyle="-|>", color="#1f5fa8", lw=width[i],
                                                            shrinkA=10, shrinkB=10, alpha=0.75,
                                                            connectionstyle="arc3,rad=0.12"))
            mid = 0.5 * (a + b) + 0.1 * np.array([-(b - a)[1], (b - a)[0]])
            text = f"#{k + 1} {_offset(first[i] - t0, seconds)}" + (f"\n{total[i]:,.0f}" if money else "")
            ax.annotate(text, mid, ha="center", va="center", fontsize=6,
                        color="#333333", bbox=dict(boxstyle="round,pad=0.1", fc="white", ec="none", alpha=0.8))
    else:
        angles = np.pi / 2 - 2 * np.pi * np.arange(n) / max(n, 1)
        pos = np.stack([np.cos(angles), np.sin(angles)], axis=1)
    ax.scatter(pos[:, 0], pos[:, 1], s=180, c="#f2d0a4", edgecolors="#8a5a20", zorder=3)
    for i in range(n):
        ax.annotate(str(names[i]), pos[i], xytext=(0, -13), textcoords="offset points", ha="center", fontsize=6)
    ax.set_title(title, fontsize=9)
    ax.set_axis_off()
    ax.margins(0.2)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def ego_edges(center: int, src: np.ndarray, dst: np.ndarray, amount: Optional[np.ndarray], max_neighbours: int = 14):
    """The transactions of account ``center`` with its top counterparties (by total amount or count).

    Returns:
        ``(nodes, local_src, local_dst)``: global indices of the center (first) and its kept
        counterparties, and the kept transactions in local indices.
    """
    touch = np.flatnonzero((src == center) | (dst == center))
    other = np.where(src[touch] == center, dst[touch], src[touch])
    weight = amount[touch] if amount is not None else np.ones(touch.size)
    uniq, inv = np.unique(other, return_inverse=True)
    total = np.bincount(inv, weights=np.nan_to_num(weight.astype(np.float64)), minlength=uniq.size)
    keep = uniq[np.argsort(-total, kind="stable")[:max_neighbours]]
    nodes = np.concatenate([[center], keep[keep != center]])
    sel = touch[np.isin(other, nodes)]
    local = {int(a): i for i, a in enumerate(nodes)}
    return nodes, np.array([local[int(a)] for a in src[sel]]), np.array([local[int(b)] for b in dst[sel]])


class Percentiles:
    """Percentile rank in [0, 1] of accounts' scores among all ``scores`` (ties share the rank: the
    share of scores at or below), for the few accounts a figure draws: ``pct[accounts]``. One sort of
    the scores; each lookup a binary search per account asked, not one per account of the graph."""

    def __init__(self, scores: np.ndarray):
        self._scores = np.asarray(scores)
        self._sorted = np.sort(self._scores)

    def __getitem__(self, accounts) -> np.ndarray:
        return np.searchsorted(self._sorted, self._scores[accounts], side="right") / max(self._sorted.size, 1)
