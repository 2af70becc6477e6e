"""One HTML page per pipeline run, with its PNG figures, in a directory::

    REPORT/
    ├── index.html        scores' source, data counts, node and ring metrics, figures, top rings,
    │                     bad cases, and every number of the run (the summary JSON)
    ├── roc.png, pr.png   ROC and precision-recall curves on the test split (model and baseline)
    ├── confusion.png     confusion matrix on the test split at the chosen threshold
    ├── ring_NN.png       the top rings drawn as small networks (a ring of more than 15 members:
    │                     its 14 top-scored members and one node counting the rest)
    ├── flow_NN.png       the top rings' money flow: arrows as wide as the amount, numbered in
    │                     time order (a ring of more than 15 members: the 15 that move the most)
    ├── missed_NN.png     missed frauds (test accounts labelled 1 scored below the threshold)
    └── false_alarm_NN.png  false alarms (test accounts labelled 0 at or above it), each with its
                          strongest counterparties
"""
from __future__ import annotations

import datetime
import html
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, List, Optional

import numpy as np

from graphtrain.fraud.data.transaction_graph import TransactionGraph
from graphtrain.fraud.evaluation import report_figures as figures
from graphtrain.fraud.evaluation.evaluate import RingMatch, TrueRings
from graphtrain.fraud.rings.rings import DetectedRings
from graphtrain.io import staged_directory
from graphtrain.split import TEST, TRAIN, VAL

INDEX = "index.html"
MAX_DRAWN = 15  # members drawn per ring; a larger ring shows its top MAX_DRAWN - 1 by score and one node for the rest
EPOCH_2000 = 946_684_800  # times above this are taken as Unix seconds and shown as dates


@dataclass
class ReportData:
    """What one run produced (the pipeline fills it in).

    Attributes:
        title: page title.
        graph: the transactions and accounts.
        split: int8 ``[N]`` split codes.
        scores: float ``[N]`` the scores the rings were found from (``ring_score`` names them).
        score_source: where ``scores`` came from, shown at the top of the page.
        scores_from_baseline: True when ``scores`` are the tree baseline's (no model scores given).
        threshold: the high-risk threshold of ``scores`` (calibrated to all accounts, see
            :mod:`graphtrain.fraud.evaluation.ring_score`): the confusion matrix and bad cases use it.
        metrics: node metrics of ``scores`` on the test split (at their own best-F1 validation threshold).
        rings: detected rings.
        summary: every number of the run (the pipeline's JSON summary).
        baseline_scores, baseline_metrics: the tree baseline on the same split, when it is not ``scores``.
        blend_metrics, blend_weight: the rank blend of ``scores`` and the baseline (graphtrain.fraud.evaluation.blend).
        ring_match, true_rings: ring-level evaluation, when ground truth was given.
        ring_score: ``"gnn"``, ``"tree"`` or ``"blend"``: which scores ``scores`` are.
        model_scores, model_metrics: the GNN's scores and metrics (None without model scores).
        warnings: shown at the top of the page (the summary's ``warnings``).
        weight_is_money: the edge weight (``graph.amount``) is money ("amount"), else "edge weight".
        labels: int ``[N]`` labels of all accounts, when ``graph`` holds only some of them (default:
            ``graph``'s). Account indices (``split``, ``scores``, the rings' ``account_index``) index these.
        graph_ids: int64 ``[k]`` ascending: the account index of each of ``graph``'s accounts, when
            ``graph`` is the neighbourhood of the accounts drawn (the rings and bad cases, with every
            transaction they take part in; :mod:`graphtrain.fraud.data.touching_subgraph`); None when
            ``graph`` is the whole graph.
        num_accounts, num_transactions: of the whole graph (default: ``graph``'s).
    """

    title: str
    graph: TransactionGraph
    split: np.ndarray
    scores: np.ndarray
    score_source: str
    scores_from_baseline: bool
    threshold: float
    metrics: Dict[str, float]
    rings: DetectedRings
    summary: Dict[str, object] = field(default_factory=dict)
    baseline_scores: Optional[np.ndarray] = None
    baseline_metrics: Optional[Dict[str, float]] = None
    blend_metrics: Optional[Dict[str, float]] = None
    blend_weight: Optional[float] = None
    ring_match: Optional[RingMatch] = None
    true_rings: Optional[TrueRings] = None
    ring_score: str = "gnn"
    model_scores: Optional[np.ndarray] = None
    model_metrics: Optional[Dict[str, float]] = None
    warnings: List[str] = field(default_factory=list)
    weight_is_money: bool = True
    labels: Optional[np.ndarray] = None
    graph_ids: Optional[np.ndarray] = None
    num_accounts: Optional[int] = None
    num_transactions: Optional[int] = None

    @property
    def all_labels(self) -> np.ndarray:
        return self.labels if self.labels is not None else self.graph.accounts.labels

    def local(self, accounts) -> np.ndarray:
        """Positions in ``graph`` of account indices ``accounts`` (each must be one of its accounts)."""
        accounts = np.asarray(accounts, dtype=np.int64)
        if self.graph_ids is None:
            return accounts
        pos = np.searchsorted(self.graph_ids, accounts)
        if accounts.size and (pos.max() >= self.graph_ids.size or not np.array_equal(self.graph_ids[pos], accounts)):
            raise ValueError("an account drawn in the report is not in its neighbourhood graph")
        return pos

    def global_ids(self, local) -> np.ndarray:
        local = np.asarray(local, dtype=np.int64)
        return local if self.graph_ids is None else self.graph_ids[local]


class Verbatim(str):
    """Text shown exactly as it is (account and ring IDs: no thousands separators)."""


def _esc(value) -> str:
    return html.escape(str(value))


def _fmt(value) -> str:
    if value is None:
        return "–"
    if isinstance(value, (float, np.floating)):
        if np.isnan(value):
            return "nan"
        if float(value).is_integer():  # counts and round sums (0 included) print as integers
            return f"{int(value):,}"
        return f"{value:,.4f}" if abs(value) < 100 else f"{value:,.2f}"
    return _esc(f"{value:,}" if isinstance(value, (int, np.integer)) else value)


def _time(t) -> str:
    if t is None or (isinstance(t, float) and np.isnan(t)):
        return "–"
    t = int(t)
    if t > EPOCH_2000:
        return datetime.datetime.fromtimestamp(t, datetime.timezone.utc).strftime("%Y-%m-%d %H:%M")
    return str(t)


def _table(header: List[str], rows: List[List[object]]) -> str:
    head = "".join(f"<th>{_esc(h)}</th>" for h in header)
    body = "".join("<tr>" + "".join(f"<td>{_fmt(c)}</td>" for c in row) + "</tr>" for row in rows)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _split_counts(data: ReportData) -> List[List[object]]:
    labels = data.all_labels
    rows = []
    for name, code in (("train", TRAIN), ("val", VAL), ("test", TEST)):
        rows.append([name, int(np.sum(data.split == code)), int(np.sum((data.split == code) & (labels == 1)))])
    return rows


def _metric_columns(data: ReportData) -> Dict[str, Dict[str, float]]:
    """Column title -> test metrics: the GNN's, the blend's, the tree's (the rings' scores marked)."""
    if data.scores_from_baseline:
        return {"tree baseline (rings)": data.metrics}
    cols = {"GNN": data.model_metrics if data.model_metrics is not None else data.metrics}
    if data.blend_metrics is not None:
        cols[f"blend with the tree (GNN weight {data.blend_weight:g})"] = data.blend_metrics
    if data.baseline_metrics is not None:
        cols["tree baseline"] = data.baseline_metrics
    key = {"gnn": "GNN", "tree": "tree baseline"}.get(data.ring_score) or next((k for k in cols if k.startswith("blend")), None)
    return {(k + " (rings)" if k == key else k): v for k, v in cols.items()}


def _metric_rows(columns: Dict[str, Dict[str, float]]) -> List[List[object]]:
    return [[n] + [m.get(n) for m in columns.values()] for n in ("auc", "ap", "f1_macro", "recall_at_k", "threshold")]


def _weight_words(data: ReportData) -> Dict[str, str]:
    """Column names for the edge weight: money, another weight, or none (counts)."""
    g = data.graph
    if g.amount is None:
        total, flow = "internal transactions", "transactions"
    elif data.weight_is_money:
        total, flow = "total amount", "flow"
    else:
        total, flow = "total edge weight", "edge weight"
    return {"total": total, "flow": flow}


def _ring_figure(directory: Path, data: ReportData, r: int, pct: figures.Percentiles) -> str:
    g = data.graph
    ring = data.rings.rings.iloc[r]
    members = data.rings.members[data.rings.members.ring_id == ring.ring_id]
    nodes = members.account_index.to_numpy()
    names, roles = [str(x) for x in members.account_id], list(members.role)
    colour, fraud = pct[nodes], data.all_labels[nodes] == 1
    nodes = data.local(nodes)
    typology = ring.typology
    local = np.arange(nodes.size)
    if nodes.size > MAX_DRAWN:  # the top members by score, the rest as one counted node
        order = np.argsort(-members.score.to_numpy(), kind="stable")
        top, rest = order[: MAX_DRAWN - 1], order[MAX_DRAWN - 1 :]
        local[top], local[rest] = np.arange(top.size), top.size
        label = f"+{rest.size} more members"
        names, roles = [names[i] for i in top] + [label], [roles[i] for i in top] + [label]
        colour = np.r_[colour[top], colour[rest].mean()]
        fraud = np.r_[fraud[top], False]
        typology = "other"
    pos = dict(zip(nodes.tolist(), local.tolist()))
    inside = np.isin(g.src, nodes) & np.isin(g.dst, nodes)
    src = np.array([pos[int(a)] for a in g.src[inside]], dtype=np.int64)
    dst = np.array([pos[int(b)] for b in g.dst[inside]], dtype=np.int64)
    keep = (src != dst) | (nodes.size <= MAX_DRAWN)  # no loops on the aggregated node
    name = f"ring_{r + 1:02d}.png"
    shown = f", top {MAX_DRAWN - 1} by score drawn" if nodes.size > MAX_DRAWN else ""
    figures.network(directory / name, f"ring {ring.ring_id}: {ring.typology}, {ring['size']} accounts{shown}",
                    names, roles, colour, fraud, src[keep], dst[keep], typology=typology, directed=g.directed)
    return name


def _flow_figure(directory: Path, data: ReportData, r: int) -> str:
    g = data.graph
    ring = data.rings.rings.iloc[r]
    members = data.rings.members[data.rings.members.ring_id == ring.ring_id]
    nodes = data.local(members.account_index.to_numpy())
    names = [str(x)[-6:] for x in members.account_id]
    if nodes.size > MAX_DRAWN:  # the members that move the most money inside the ring
        moved = np.nan_to_num(members.flow_in.to_numpy(dtype=np.float64) + members.flow_out.to_numpy(dtype=np.float64))
        top = np.sort(np.argsort(-moved, kind="stable")[:MAX_DRAWN])
        nodes, names = nodes[top], [names[i] for i in top]
    pos = np.full(g.num_accounts, -1, dtype=np.int64)
    pos[nodes] = np.arange(nodes.size)
    inside = (pos[g.src] >= 0) & (pos[g.dst] >= 0) & (g.src != g.dst)
    seconds = g.time is not None and bool(inside.any()) and float(g.time[inside].min()) > EPOCH_2000
    name = f"flow_{r + 1:02d}.png"
    shown = f", {MAX_DRAWN} busiest" if members.shape[0] > MAX_DRAWN else ""
    figures.flow(directory / name, f"ring {ring.ring_id} money flow{shown}", names, pos[g.src[inside]], pos[g.dst[inside]],
                 g.amount[inside] if g.amount is not None else None, g.time[inside] if g.time is not None else None,
                 seconds=seconds)
    return name


def _case_figure(directory: Path, data: ReportData, account: int, name: str, title: str,
                 pct: figures.Percentiles) -> str:
    g = data.graph
    nodes, src, dst = figures.ego_edges(int(data.local([account])[0]), g.src, g.dst, g.amount)
    roles = ["under review"] + [""] * (nodes.size - 1)
    names = [str(g.accounts.raw_id(a))[-6:] for a in nodes]
    ids = data.global_ids(nodes)
    figures.network(directory / name, title, names, roles, pct[ids], data.all_labels[ids] == 1, src, dst,
                    typology="star", highlight=np.arange(nodes.size) == 0, directed=g.directed)
    return name


def select_bad_cases(labels: np.ndarray, scores: np.ndarray, split: np.ndarray, threshold: float, count: int):
    """``(missed, alarms)``: account indices of the ``count`` lowest-scored test frauds below ``threshold``
    and the ``count`` highest-scored test accounts labelled normal at or above it."""
    test = split == TEST
    missed = np.flatnonzero(test & (labels == 1) & (scores < threshold))
    missed = missed[np.argsort(scores[missed], kind="stable")][:count]
    alarms = np.flatnonzero(test & (labels == 0) & (scores >= threshold))
    alarms = alarms[np.argsort(-scores[alarms], kind="stable")][:count]
    return missed, alarms


def _bad_cases(data: ReportData, count: int):
    return select_bad_cases(data.all_labels, data.scores, data.split, data.threshold, count)


def write_report(data: ReportData, directory, top_rings: int = 6, bad_cases: int = 4, force: bool = False) -> Path:
    """Write the report directory (staged: never half-written); returns the path of ``index.html``."""
    labels = data.all_labels
    test = (data.split == TEST) & (labels >= 0)
    pct = figures.Percentiles(data.scores)
    with staged_directory(directory, force=force, marker=INDEX) as tmp:
        model = data.model_scores if data.model_scores is not None else data.scores
        curve_scores = {"model" if not data.scores_from_baseline else "tree baseline": model[test]}
        if data.baseline_scores is not None and not data.scores_from_baseline:
            curve_scores["tree baseline"] = data.baseline_scores[test]
        if data.ring_score == "blend":
            curve_scores["blend (rings)"] = data.scores[test]
        figures.curves(tmp / "roc.png", tmp / "pr.png", labels[test], curve_scores)
        matrix = figures.confusion(tmp / "confusion.png", labels[test], (data.scores[test] >= data.threshold).astype(int),
                                   f"test split, {data.ring_score} score >= {data.threshold:.4g}")
        drawn = range(min(top_rings, len(data.rings.rings)))
        ring_imgs = [_ring_figure(tmp, data, r, pct) for r in drawn]
        flow_imgs = [_flow_figure(tmp, data, r) if data.graph.directed else None for r in drawn]
        missed, alarms = _bad_cases(data, bad_cases)
        missed_imgs = [_case_figure(tmp, data, a, f"missed_{i + 1:02d}.png", f"missed fraud, score {data.scores[a]:.3g}", pct)
                       for i, a in enumerate(missed)]
        alarm_imgs = [_case_figure(tmp, data, a, f"false_alarm_{i + 1:02d}.png", f"false alarm, score {data.scores[a]:.3g}", pct)
                      for i, a in enumerate(alarms)]
        page = _page(data, matrix, ring_imgs, flow_imgs, missed, missed_imgs, alarms, alarm_imgs)
        (tmp / INDEX).write_text(page, encoding="utf-8")
    return Path(directory) / INDEX


def _case_rows(data: ReportData, accounts: np.ndarray) -> List[List[object]]:
    g = data.graph
    out_deg = np.bincount(g.src, minlength=g.num_accounts)  # exact for the accounts drawn: all their edges are in g
    in_deg = np.bincount(g.dst, minlength=g.num_accounts)
    ring_of = dict(zip(data.rings.members.account_index, data.rings.members.ring_id))
    degrees = (lambda a: [int(in_deg[a]), int(out_deg[a])]) if g.directed else (lambda a: [int(out_deg[a])])
    return [[Verbatim(g.accounts.raw_id(loc)), float(data.scores[a]), int(data.all_labels[a])] + degrees(loc)
            + [_verbatim(ring_of.get(int(a)))] for a, loc in zip(accounts, data.local(accounts))]


def _verbatim(value):
    return None if value is None else Verbatim(value)


def _page(data: ReportData, matrix, ring_imgs, flow_imgs, missed, missed_imgs, alarms, alarm_imgs) -> str:
    g = data.graph
    rings, members = data.rings.rings, data.rings.members
    parts = [f"<h1>{_esc(data.title)}</h1>"]
    if data.scores_from_baseline:
        parts.append("<p class='warn'><b>Scores: tree baseline.</b> No model scores were given to this run; rings, "
                     f"metrics and figures below come from the baseline ({_esc(data.score_source)}).</p>")
    else:
        parts.append(f"<p><b>Scores:</b> {_esc(data.score_source)}</p>")
        parts.append(f"<p><b>Rings from:</b> the {_esc(data.ring_score)} scores (best on held-out validation "
                     "accounts among the GNN, the tree baseline and their blend).</p>")
    parts += [f"<p class='warn'><b>Warning:</b> {_esc(w)}</p>" for w in data.warnings]
    labels = data.all_labels
    num_accounts = data.num_accounts if data.num_accounts is not None else g.num_accounts
    parts.append("<h2>Data</h2>" + _table(["", "count"], [
        ["accounts", num_accounts], ["transactions", data.num_transactions if data.num_transactions is not None else g.num_edges],
        ["labelled accounts", int(np.sum(labels >= 0))], ["labelled fraud", int(np.sum(labels == 1))],
    ]) + _table(["split", "accounts", "fraud"], _split_counts(data)))
    columns = _metric_columns(data)
    parts.append("<h2>Account-level metrics</h2>" + _table(["metric (test split)"] + list(columns), _metric_rows(columns)))
    parts.append("<p>Each score's threshold chosen on the validation split (best F1-macro); recall@k with k = number of "
                 "test frauds. The confusion matrix uses the rings' high-risk threshold.</p>")
    parts.append("<div class='row'>" + "".join(f"<img src='{n}' alt='{n}'>" for n in ("roc.png", "pr.png", "confusion.png"))
                 + "</div>")
    parts.append(_table(["", "predicted normal", "predicted fraud"],
                        [["label normal", int(matrix[0, 0]), int(matrix[0, 1])], ["label fraud", int(matrix[1, 0]), int(matrix[1, 1])]]))

    parts.append("<h2>Rings</h2>")
    n = max(num_accounts, 1)
    flagged = int(np.count_nonzero(data.scores >= data.threshold))
    ring_rows = [["rings found", len(rings)], ["rings from", f"{data.ring_score} scores"],
                 ["high-risk threshold (calibrated to all accounts)", data.threshold],
                 ["flagged accounts (score >= threshold)", f"{flagged:,} ({flagged / n:.1%} of all accounts)"],
                 ["high-risk accounts (flagged + grown)", f"{data.rings.high_risk:,} ({data.rings.high_risk / n:.1%})"]]
    if data.ring_match is not None:
        m = data.ring_match
        ring_rows += [["true rings", len(data.true_rings.members)], ["ring precision (Jaccard >= 0.5)", m.precision],
                      ["ring recall (Jaccard >= 0.5)", m.recall]]
    parts.append(_table(["", "value"], ring_rows))
    if data.ring_match is not None and data.true_rings is not None:
        by_type = {}
        for typ, hit in zip(data.true_rings.typologies, data.ring_match.matched_true):
            by_type.setdefault(typ or "(none)", []).append(bool(hit))
        parts.append(_table(["true typology", "rings", "found", "recall"],
                            [[t, len(h), int(sum(h)), float(np.mean(h))] for t, h in sorted(by_type.items())]))
        if "flow" in rings and rings["flow"].notna().any():
            by_flow = {}
            for kind, hit in zip(rings["flow"], data.ring_match.matched_pred):
                by_flow.setdefault(kind, []).append(bool(hit))
            parts.append(_table(["rings formed by", "rings", "matching a true ring", "precision"],
                                [[k, len(h), int(sum(h)), float(np.mean(h))] for k, h in sorted(by_flow.items())]))
    if not len(rings):
        reason = next((w for w in data.warnings if w.startswith("no rings")), "no rings were found")
        parts.append(f"<p class='warn'>{_esc(reason)}</p>")
    words = _weight_words(data)
    header = ["ring", "size", "ring score", "typology", "flow", "from", "to", words["total"], "members"]
    rows = []
    for i, r in rings.head(50).iterrows():
        shown = Verbatim(", ".join(map(str, r.members[:4])) + (" …" if len(r.members) > 4 else ""))
        total = r.total_amount if g.amount is not None else r.internal_transactions
        row = [Verbatim(r.ring_id), r["size"], r.ring_score, r.typology, r.get("flow"), _time(r.time_start),
               _time(r.time_end), total, shown]
        if data.ring_match is not None:
            row.append(data.ring_match.best_jaccard_pred[i])
        rows.append(row)
    parts.append(_table(header + (["best Jaccard with a true ring"] if data.ring_match is not None else []), rows))
    if len(rings) > 50:
        parts.append(f"<p>… and {len(rings) - 50} more in rings.csv.</p>")

    parts.append("<h2>Top rings</h2>")
    for r, img in enumerate(ring_imgs):
        ring_id = rings.iloc[r].ring_id
        flow_img = f"<img src='{flow_imgs[r]}' alt='{flow_imgs[r]}'>" if flow_imgs[r] else ""
        mem = members[members.ring_id == ring_id]
        flows = ["flow_in", "flow_out"] if g.directed else ["flow_in"]
        flow_names = [f"{words['flow']} in", f"{words['flow']} out"] if g.directed else [f"{words['flow']} within the ring"]
        rows = [[Verbatim(m.account_id), m.role, m.score, int(labels[m.account_index])]
                + [getattr(m, f) for f in flows] + [m.internal_counterparties, m.shared_counterparties]
                for m in mem.itertuples()]
        parts.append(f"<div class='ring'><img src='{img}' alt='{img}'>{flow_img}" + _table(
            ["account", "role", "score", "label"] + flow_names + ["internal counterparties", "shared counterparties"],
            rows) + "</div>")

    case_header = (["account", "score", "label", "in transactions", "out transactions", "in ring"] if g.directed
                   else ["account", "score", "label", "edges", "in ring"])
    parts.append("<h2>Bad cases</h2><h3>Missed frauds (lowest-scored test frauds below the threshold)</h3>")
    parts.append("<div class='row'>" + "".join(f"<img src='{n}' alt='{n}'>" for n in missed_imgs) + "</div>")
    parts.append(_table(case_header, _case_rows(data, missed)))
    parts.append("<h3>False alarms (highest-scored test accounts labelled normal)</h3>")
    parts.append("<div class='row'>" + "".join(f"<img src='{n}' alt='{n}'>" for n in alarm_imgs) + "</div>")
    parts.append(_table(case_header, _case_rows(data, alarms)))
    parts.append("<h2>All numbers</h2><pre>" + _esc(json.dumps(data.summary, indent=2, default=str)) + "</pre>")
    style = ("body{font-family:sans-serif;max-width:1200px;margin:2em auto;color:#222}table{border-collapse:collapse;"
             "margin:.6em 0}td,th{border:1px solid #ccc;padding:3px 8px;font-size:13px;text-align:left}"
             "th{background:#f3f3f3}.row img{max-width:32%;margin-right:1%}.ring{display:flex;gap:1em;"
             "align-items:flex-start}.ring img{width:380px}.warn{background:#fff3cd;padding:.6em;border:1px solid #e0c060}"
             "pre{background:#f7f7f7;padding:1em;font-size:12px}")
    return (f"<!DOCTYPE html><html><head><meta charset='utf-8'><title>{_esc(data.title)}</title>"
            f"<style>{style}</style></head><body>{''.join(parts)}</body></html>\n")
