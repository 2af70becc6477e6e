"""Evaluation of fraud scores and detected rings.

- Node level: ROC-AUC, average precision, F1-macro and recall@k (:mod:`graphtrain.metrics`) on the
  test split, at a threshold chosen on the validation split (best F1-macro).
- Ring level: a predicted ring **matches** a true ring when their member sets have Jaccard
  similarity ``|A & B| / |A | B| >= 0.5``. Ring precision = matched predicted rings / predicted
  rings; ring recall = true rings matched by some predicted ring / true rings.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Dict, List, Optional, Sequence, Union

import numpy as np

from graphtrain import metrics
from graphtrain.errors import ConfigError, InputError
from graphtrain.fraud.data.transaction_graph import AccountTable
from graphtrain.split import TEST, TRAIN, VAL

MIN_JACCARD = 0.5


def selection_rows(labels, split, what: str) -> np.ndarray:
    """Bool ``[N]``: the labelled validation accounts, or the train ones if validation lacks a class --
    where the pipeline chooses anything (threshold, blend weight). ``what`` names it in the error."""
    labels, split = np.asarray(labels), np.asarray(split)
    for code in (VAL, TRAIN):
        rows = (split == code) & (labels >= 0)
        if rows.any() and labels[rows].min() != labels[rows].max():
            return rows
    raise ConfigError(f"cannot choose {what}: neither the validation nor the train split has labels of both classes")


def choose_threshold(labels, scores, split) -> float:
    """Score threshold with the best F1-macro on the validation split (the train split if there is no validation)."""
    rows = selection_rows(labels, split, "a threshold")
    return metrics.best_f1_threshold(np.asarray(labels)[rows], np.asarray(scores)[rows])


def metrics_at_chosen_threshold(labels, scores, split) -> Dict[str, float]:
    """:func:`node_metrics` at the threshold :func:`choose_threshold` picks (``report["threshold"]``)."""
    return node_metrics(labels, scores, split, choose_threshold(labels, scores, split))


def node_metrics(labels, scores, split, threshold: float, k: Optional[int] = None) -> Dict[str, float]:
    """``auc``, ``ap``, ``f1_macro``, ``recall_at_k`` (k = number of test positives by default),
    ``threshold`` on the labelled test accounts; plus ``test_accounts`` and ``test_positives``."""
    labels, split, scores = np.asarray(labels), np.asarray(split), np.asarray(scores, dtype=np.float64)
    rows = (split == TEST) & (labels >= 0)
    if not rows.any():
        raise ConfigError("no labelled accounts in the test split")
    report = metrics.binary_report(labels[rows], scores[rows], threshold=threshold, k=k)
    report["test_accounts"] = int(rows.sum())
    report["test_positives"] = int(labels[rows].sum())
    return report


@dataclass
class RingMatch:
    """Ring-level comparison of predicted and true rings.

    Attributes:
        precision: matched predicted rings / predicted rings (NaN with no predicted rings).
        recall: matched true rings / true rings (NaN with no true rings).
        best_jaccard_pred: float ``[P]`` each predicted ring's best Jaccard with any true ring.
        best_match_pred: int ``[P]`` index of that true ring (-1 when it shares no member).
        best_jaccard_true: float ``[T]`` each true ring's best Jaccard with any predicted ring.
        best_match_true: int ``[T]`` index of that predicted ring (-1 when none shares a member).
    """

    precision: float
    recall: float
    best_jaccard_pred: np.ndarray
    best_match_pred: np.ndarray
    best_jaccard_true: np.ndarray
    best_match_true: np.ndarray

    @property
    def matched_pred(self) -> np.ndarray:
        return self.best_jaccard_pred >= MIN_JACCARD

    @property
    def matched_true(self) -> np.ndarray:
        return self.best_jaccard_true >= MIN_JACCARD


def _incidence(rings: List[np.ndarray], num_accounts: int):
    from scipy.sparse import csr_matrix

    sizes = np.array([r.size for r in rings], dtype=np.int64)
    cols = np.concatenate(rings).astype(np.int64) if rings else np.empty(0, np.int64)
    rows = np.repeat(np.arange(len(rings)), sizes)
    if cols.size and (cols.min() < 0 or cols.max() >= num_accounts):
        raise ConfigError(f"ring members must be account indices in [0, {num_accounts})")
    mat = csr_matrix((np.ones(cols.size), (rows, cols)), shape=(len(rings), num_accounts))
    mat.sum_duplicates()
    mat.data[:] = 1.0  # a member listed twice counts once
    return mat, np.asarray(mat.sum(axis=1)).ravel()


def _best(jaccard, axis: int, count: int):
    if count == 0:
        return np.empty(0), np.empty(0, np.int64)
    if jaccard.shape[axis] == 0 or jaccard.nnz == 0:
        return np.zeros(count), np.full(count, -1, np.int64)
    dense_best = np.asarray(jaccard.max(axis=axis).todense()).ravel()
    arg = np.asarray(jaccard.argmax(axis=axis)).ravel()
    return dense_best, np.where(dense_best > 0, arg, -1)


def ring_metrics(predicted: List[np.ndarray], true: List[np.ndarray], num_accounts: int) -> RingMatch:
    """Match predicted rings to true rings at Jaccard >= 0.5 (see the module docstring).

    Args:
        predicted, true: member account indices of each ring.
        num_accounts: N (bound on the indices).
    """
    p_mat, p_size = _incidence(predicted, num_accounts)
    t_mat, t_size = _incidence(true, num_accounts)
    inter = (p_mat @ t_mat.T).tocoo()
    union = p_size[inter.row] + t_size[inter.col] - inter.data
    from scipy.sparse import coo_matrix

    jac = coo_matrix((inter.data / union, (inter.row, inter.col)), shape=(len(predicted), len(true))).tocsr()
    bp, mp = _best(jac, 1, len(predicted))
    bt, mt = _best(jac, 0, len(true))
    precision = float((bp >= MIN_JACCARD).mean()) if len(predicted) else float("nan")
    recall = float((bt >= MIN_JACCARD).mean()) if len(true) else float("nan")
    return RingMatch(precision, recall, bp, mp, bt, mt)


@dataclass
class TrueRings:
    """Ground-truth rings read from a ``rings.csv`` (ring_id, account_id, role, typology).

    Attributes:
        ring_ids: the ``R`` ring IDs as read.
        members: account indices of each ring.
        typologies: typology of each ring ("" when the file has none).
        roles: account index -> role, over all members.
    """

    ring_ids: List[object]
    members: List[np.ndarray]
    typologies: List[str]
    roles: Dict[int, str]


def rings_id_column(path, id_column: Union[str, Sequence[str]] = "account_id", ring_column: str = "ring_id") -> str:
    """The account ID column of a rings file, from its header alone: ``id_column``, or the first of
    several candidates (e.g. the account table's ID column, then ``account_id``) that the file has.

    Raises:
        InputError: the file is unreadable, or lacks ``ring_column`` or every candidate.
    """
    from graphtrain.fraud.data.tables import read_columns

    names = read_columns(path)
    candidates = [id_column] if isinstance(id_column, str) else list(dict.fromkeys(id_column))
    listed = ", ".join(map(repr, names))
    if ring_column not in names:
        raise InputError(path, f"no column {ring_column!r} (columns are {listed})", column=ring_column)
    for col in candidates:
        if col in names:
            return col
    wanted = " or ".join(map(repr, candidates))
    raise InputError(path, f"no account ID column {wanted} (columns are {listed}; name it with --rings-id)",
                     column=candidates[0])


def load_true_rings(path, accounts, ring_column: str = "ring_id",
                    id_column: Union[str, Sequence[str]] = "account_id") -> TrueRings:
    """Read ground-truth rings; every listed account must be in the account table.

    ``accounts``: an :class:`AccountTable` (members are its row numbers) or a
    :class:`~graphtrain.fraud.data.transaction_dataset.TransactionDataset` (members are global IDs).

    ``id_column`` is the account ID column, or candidates for it (see :func:`rings_id_column`).
    Optional columns ``role`` and ``typology`` are used when present.
    """
    from graphtrain.fraud.data.tables import read_table
    from graphtrain.fraud.data.transaction_graph import _first_empty_row, raw_id_column

    id_column = rings_id_column(path, id_column, ring_column)
    table = read_table(path)
    row = _first_empty_row(table, id_column)
    if row is not None:
        raise InputError(path, "empty account ID", row=row, column=id_column)
    raw, kind = raw_id_column(table, id_column)
    if hasattr(accounts, "to_global"):  # a TransactionDataset: the on-disk ID map, account index = global ID
        index = accounts.to_global(raw if kind == "int64" else raw.astype(str).astype(object), missing="ignore")
    else:
        ids = accounts.ids
        if kind == "string" or ids.dtype.kind not in "iu":
            raw = raw.astype(str).astype(object)
            ids = ids.astype(str).astype(object)
        import pandas as pd

        index = pd.Index(ids).get_indexer(raw)
    if (index < 0).any():
        i = int(np.flatnonzero(index < 0)[0])
        raise InputError(path, f"account {raw[i]!r} is not in the account table", row=i + 1, column=id_column)
    ring = table.column(ring_column).to_pylist()
    typ = table.column("typology").to_pylist() if "typology" in table.column_names else [""] * len(ring)
    role = table.column("role").to_pylist() if "role" in table.column_names else [""] * len(ring)
    order: Dict[object, List[int]] = {}
    typology: Dict[object, str] = {}
    for r, a, t in zip(ring, index, typ):
        order.setdefault(r, []).append(int(a))
        typology.setdefault(r, t or "")
    return TrueRings(
        ring_ids=list(order),
        members=[np.asarray(v, dtype=np.int64) for v in order.values()],
        typologies=[typology[r] for r in order],
        roles={int(a): (ro or "") for a, ro in zip(index, role)},
    )
