"""Which scores the rings come from, and how many accounts they may flag.

**The ring score** is the GNN's, unless the GNN is clearly worse than the tree baseline on
validation: its validation AUC trails the tree's by at least ``MATERIAL_AUC_GAP`` (0.05). Then it
is the candidate -- the GNN's scores, the tree's, or their rank blend
(:mod:`graphtrain.fraud.evaluation.blend`) -- with the best average precision on held-out
validation accounts. The blend's weight is itself chosen on validation, so its validation AP is
optimistic; the comparison is therefore cross-fitted: the labelled validation accounts are split
in two halves (stratified, seeded), the blend weight is chosen on one half and every candidate is
scored on the other, and the two halves' APs are averaged. Exact ties go to the GNN, then the tree
(the simpler score). A GNN whose validation AUC or AP trails the tree's gets a warning either way.

**The shipped score** (``shipped_score`` in the summary) has no gate: it is the candidate with the
best held-out validation AP, the stacked tree (:mod:`graphtrain.fraud.pipeline.stacking`) among
them when it ran. The stack is fitted on training accounts only, so its validation AP needs no
halving; it is scored on the same halves as the others.

Why the gate: a better node-level validation score is not a better ring score. Rings are groups
of connected high-risk accounts, and the GNN's scores, propagated along the edges, mark whole
groups. On the 6,000-account generated test graph (seed 3) the blend beat the GNN on validation
(AUC +0.031, AP +0.151; ahead in 99% of paired bootstrap resamples of validation), yet the rings built from the
blend recovered 0.33 of the planted rings at precision 0.32, those from the tree 0.25 at 0.21,
and those from the GNN 0.50 at 0.57. A GNN that is clearly worse (AUC 0.68 against the tree's
0.81 on a company graph) is replaced.

**The high-risk threshold** is calibrated to the whole scored population, not to the labelled set.
Labelled accounts are usually picked for being suspicious, so their fraud share (57% on one
company's graph) is far above the population's, and the best-F1 threshold on validation
(``t_val``) flagged 39% of all accounts there. The population's fraud share ``p`` is estimated by
adjusted classify-and-count (Forman, 2005): with ``f`` the fraction of all accounts scoring at
least ``t_val`` and ``tpr``/``fpr`` its true/false positive rates on validation,
``p = (f - fpr) / (tpr - fpr)``, clipped to ``[known, f]`` (``known``: accounts labelled fraud, of
all accounts; ``known`` alone when ``tpr - fpr`` < 0.05, an uninformative score). The threshold is
the larger of ``t_val`` and the score of the ``ceil(p * N)``-th riskiest account: at most about
``p`` of all accounts are flagged, never more than ``t_val`` flags. When labelled normals look
riskier than the population's normals (the usual bias), their ``fpr`` is high and ``p`` comes out
low: the rule errs towards flagging fewer accounts.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Dict, List, Optional, Tuple

import numpy as np

from graphtrain import metrics
from graphtrain.fraud.evaluation.blend import WEIGHTS, scaled_ranks
from graphtrain.fraud.evaluation.evaluate import choose_threshold, selection_rows

PREFERENCE = ("gnn", "tree", "blend", "stack")  # exact ties go to the first
MATERIAL_AUC_GAP = 0.05  # the GNN's validation AUC this far behind the tree's replaces its scores for the rings
MIN_SEPARATION = 0.05  # tpr - fpr below this: the threshold says nothing about prevalence


@dataclass(frozen=True)
class RingScoreChoice:
    """The chosen candidate's name, every candidate's held-out validation AP, the GNN's and the tree's
    validation AUC and AP (all labelled validation accounts), and the warnings for the summary."""

    name: str
    held_out_val_ap: Dict[str, float]
    val: Dict[str, Dict[str, float]]
    warnings: List[str] = field(default_factory=list)
    gnn_replaced: bool = False  # the GNN trailed the tree by MATERIAL_AUC_GAP (module doc)
    shipped: str = "gnn"  # the candidate with the best held-out validation AP, no gate (module doc)


def _halves(labels: np.ndarray, rows: np.ndarray, seed: int) -> List[np.ndarray]:
    """Two stratified halves of the row indices ``rows`` (bool ``[N]``)."""
    rng = np.random.default_rng(seed)
    a, b = [], []
    for cls in (0, 1):
        idx = rng.permutation(np.flatnonzero(rows & (labels == cls)))
        a.append(idx[: idx.size // 2])
        b.append(idx[idx.size // 2 :])
    return [np.concatenate(a), np.concatenate(b)]


def _best_weight(labels, r_gnn, r_tree, idx) -> float:
    ap = {float(w): metrics.average_precision(labels[idx], w * r_gnn[idx] + (1 - w) * r_tree[idx]) for w in WEIGHTS}
    best = max(ap.values())
    return min((w for w, v in ap.items() if v >= best - 1e-12), key=lambda w: abs(w - 0.5))


def choose_ring_score(gnn: np.ndarray, tree: np.ndarray, labels: np.ndarray, split: np.ndarray,
                      blend: bool = True, seed: int = 0, stack: Optional[np.ndarray] = None,
                      ranks: Optional[Tuple[np.ndarray, np.ndarray]] = None) -> RingScoreChoice:
    """Pick the rings' score among the GNN, the tree, (with ``blend``) their rank blend and the
    stacked tree's scores (``stack``, fitted without validation labels; None: not a candidate), and
    the shipped score (module doc). ``ranks``: ``(scaled_ranks(gnn), scaled_ranks(tree))`` when the
    caller has them."""
    labels = np.asarray(labels)
    rows = selection_rows(labels, split, "the rings' score")
    r_gnn, r_tree = ranks if ranks is not None else (scaled_ranks(gnn), scaled_ranks(tree))
    names = ["gnn", "tree"] + (["blend"] if blend else []) + (["stack"] if stack is not None else [])
    held = {n: [] for n in names}
    halves = _halves(labels, rows, seed)
    for k in (0, 1):
        test, fit = halves[k], halves[1 - k]
        if np.unique(labels[test]).size < 2 or np.unique(labels[fit]).size < 2:
            continue
        held["gnn"].append(metrics.average_precision(labels[test], gnn[test]))
        held["tree"].append(metrics.average_precision(labels[test], tree[test]))
        if stack is not None:
            held["stack"].append(metrics.average_precision(labels[test], stack[test]))
        if blend:
            w = _best_weight(labels, r_gnn, r_tree, fit)
            held["blend"].append(metrics.average_precision(labels[test], w * r_gnn[test] + (1 - w) * r_tree[test]))
    val = {n: {"auc": metrics.roc_auc(labels[rows], s[rows]), "ap": metrics.average_precision(labels[rows], s[rows])}
           for n, s in (("gnn", gnn), ("tree", tree))}
    if stack is not None:
        val["stack"] = {"auc": metrics.roc_auc(labels[rows], stack[rows]),
                        "ap": metrics.average_precision(labels[rows], stack[rows])}
    if not held["gnn"]:  # too few labelled accounts to halve: all of validation, blend left out
        held = {n: [val[n]["ap"]] for n in val}
    mean = {n: float(np.mean(v)) for n, v in held.items() if v}
    best = max(mean.values())
    shipped = next(n for n in PREFERENCE if n in mean and mean[n] >= best - 1e-12)
    replaced = val["tree"]["auc"] - val["gnn"]["auc"] >= MATERIAL_AUC_GAP
    name = shipped if replaced else "gnn"
    warnings = []
    behind = [m for m in ("auc", "ap") if val["gnn"][m] < val["tree"][m]]
    if behind:
        detail = ", ".join(f"{m.upper()} {val['gnn'][m]:.3f} vs {val['tree'][m]:.3f}" for m in behind)
        why = "" if replaced else f" (kept: it trails by less than {MATERIAL_AUC_GAP} AUC)"
        warnings.append(f"the GNN trails the tree baseline on validation ({detail}); the rings are built from the "
                        f"{name} scores{why}")
    return RingScoreChoice(name, mean, val, warnings, replaced, shipped)


@dataclass(frozen=True)
class PopulationThreshold:
    """The high-risk threshold and how it was reached (module doc); every fraction is of all scored accounts."""

    threshold: float
    val_threshold: float
    val_flagged_fraction: float
    estimated_prevalence: float
    flagged_fraction: float
    val_tpr: float
    val_fpr: float

    def as_dict(self) -> Dict[str, float]:
        return {k: float(v) for k, v in self.__dict__.items()}


def population_threshold(scores: np.ndarray, labels: np.ndarray, split: np.ndarray) -> PopulationThreshold:
    """The threshold at most about the estimated population fraud share of accounts reach (module doc)."""
    scores, labels = np.asarray(scores, dtype=np.float64), np.asarray(labels)
    n = scores.size
    t_val = choose_threshold(labels, scores, split)
    rows = selection_rows(labels, split, "a threshold")
    hit = scores >= t_val
    tpr = float(hit[rows & (labels == 1)].mean())
    fpr = float(hit[rows & (labels == 0)].mean())
    f = float(hit.mean())
    known = float(np.count_nonzero(labels == 1)) / max(n, 1)
    p = (f - fpr) / (tpr - fpr) if tpr - fpr >= MIN_SEPARATION else known
    p = float(np.clip(p, known, max(f, known)))
    k = min(max(int(np.ceil(p * n)), 1), n)
    kth = float(np.partition(scores, n - k)[n - k])
    threshold = max(t_val, kth)
    return PopulationThreshold(threshold, t_val, f, p, float(np.mean(scores >= threshold)), tpr, fpr)
