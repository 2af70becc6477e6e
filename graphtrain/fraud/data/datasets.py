"""Loaders for the public fraud datasets the examples use, and their conversion to plain tables.

Each loader reads the data where it lies (a path; nothing is copied into the project) and returns
a :class:`~graphtrain.fraud.data.transaction_graph.TransactionGraph`. :func:`write_prepared` writes it as
an edge list plus an account table that ``graphtrain partition`` (``--nodes``) and the fraud
pipeline read:

    OUT/
    ├── edges.parquet      src, dst [, amount, time]   (undirected data: both directions)
    ├── accounts.parquet   account_id, feature columns, label (0/1) [, split: train/val/test]
    └── manifest.json      format_version, dataset, column names, counts, notes

Datasets (see ``shared/data/SOURCES.md``):

- **AMLSim** (``amlsim/<sample>/``): ``transactions.csv`` (``sourceNodeId, targetNodeId, value,
  time``) and ``nodes.csv`` (``nodeid, isFraud, init_balance, fraudStep``). The one feature is
  ``init_balance``; ``fraudStep`` is *not* used, it is the step at which an account's fraud
  happened (-1 for every normal account), i.e. the label in disguise. Directed, with amounts and
  time steps. No fixed split.
- **Amazon U-P-U** (``amazon_upu/Amazon.mat``): symmetric adjacency ``Network``, 25 features
  ``Attributes``, ``Label``. Undirected, no amounts or times. No fixed split.
- **Tolokers** (``tolokers/tolokers.npz``): ``edges`` (each undirected edge once), 10
  ``node_features``, ``node_labels``, and 10 fixed 50/25/25 train/val/test masks; ``split_index``
  picks one.
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, List, Optional

import numpy as np

from graphtrain._version import __version__
from graphtrain.errors import ConfigError, InputError
from graphtrain.fraud.data.transaction_graph import AccountTable, TransactionGraph, load_accounts, load_transaction_graph
from graphtrain.split import SPLIT_NAMES, masks_to_split

FORMAT_VERSION = 1
MANIFEST_FILE = "manifest.json"
EDGES_FILE = "edges.parquet"
ACCOUNTS_FILE = "accounts.parquet"


@dataclass
class NamedDataset:
    """A loaded dataset: its graph plus what describes it.

    Attributes:
        name: dataset name.
        graph: accounts numbered ``0 .. N-1``; ``graph.accounts.split`` holds a fixed split if the
            dataset has one.
        notes: how the source was read (for manifests and reports).
    """

    name: str
    graph: TransactionGraph
    notes: List[str] = field(default_factory=list)


def _need_file(path: Path) -> Path:
    if not path.is_file():
        raise InputError(path, "no such file (see shared/data/SOURCES.md for where to get the data)")
    return path


def load_amlsim(directory) -> NamedDataset:
    """AMLSim sample directory with ``transactions.csv`` and ``nodes.csv``."""
    directory = Path(directory)
    nodes = _need_file(directory / "nodes.csv")
    tx = _need_file(directory / "transactions.csv")
    accounts = load_accounts(nodes, "nodeid", label="isFraud", features=["init_balance"])
    graph = load_transaction_graph(tx, accounts, src="sourceNodeId", dst="targetNodeId", amount="value", time="time")
    return NamedDataset(f"amlsim-{directory.name}", graph, [
        "features: init_balance (fraudStep left out: it is -1 exactly for normal accounts, a label leak)",
        "directed transactions with amount (value) and time step (time)",
    ])


def _undirected(src: np.ndarray, dst: np.ndarray):
    """Both directions of each undirected edge (input: each edge once or both ways; self-loops dropped)."""
    keep = src != dst
    u, v = np.minimum(src[keep], dst[keep]), np.maximum(src[keep], dst[keep])
    pairs = np.unique(np.stack([u, v], axis=1), axis=0)
    return np.concatenate([pairs[:, 0], pairs[:, 1]]), np.concatenate([pairs[:, 1], pairs[:, 0]])


def _plain_accounts(features: np.ndarray, labels: np.ndarray, split: Optional[np.ndarray]) -> AccountTable:
    n = labels.shape[0]
    names = [f"f{j}" for j in range(features.shape[1])]
    return AccountTable(ids=np.arange(n, dtype=np.int64), features=features.astype(np.float32), feature_names=names,
                        labels=labels.astype(np.int64), split=split)


def load_amazon_upu(path) -> NamedDataset:
    """``Amazon.mat`` (U-P-U relation): undirected, 25 features, no fixed split."""
    import scipy.io
    from scipy.sparse import coo_matrix

    path = _need_file(Path(path))
    try:
        mat = scipy.io.loadmat(path)
    except (ValueError, OSError) as exc:
        raise InputError(path, f"not a readable MATLAB file ({exc})") from None
    for key in ("Network", "Attributes", "Label"):
        if key not in mat:
            raise InputError(path, f"no variable {key!r} (found {', '.join(k for k in mat if not k.startswith('__'))})")
    adj = coo_matrix(mat["Network"])
    feats = mat["Attributes"]
    feats = feats.toarray() if hasattr(feats, "toarray") else np.asarray(feats)
    labels = np.asarray(mat["Label"]).ravel()
    src, dst = _undirected(adj.row.astype(np.int64), adj.col.astype(np.int64))
    graph = TransactionGraph(_plain_accounts(feats, labels, None), src, dst, directed=False).validate()
    return NamedDataset("amazon-upu", graph, ["undirected U-P-U relation, stored in both directions", "25 features f0..f24"])


def load_tolokers(path, split_index: int = 0) -> NamedDataset:
    """``tolokers.npz``: undirected, 10 features, fixed split number ``split_index`` (0-9)."""
    path = _need_file(Path(path))
    try:
        data = np.load(path, allow_pickle=False)
    except (ValueError, OSError) as exc:
        raise InputError(path, f"not a readable .npz file ({exc})") from None
    for key in ("node_features", "node_labels", "edges", "train_masks", "val_masks", "test_masks"):
        if key not in data.files:
            raise InputError(path, f"no array {key!r} (found {', '.join(data.files)})")
    masks = data["train_masks"]
    if not 0 <= split_index < masks.shape[0]:
        raise ConfigError(f"--split-index must be in [0, {masks.shape[0]}), got {split_index}")
    split = masks_to_split(masks[split_index], data["val_masks"][split_index], data["test_masks"][split_index])
    edges = data["edges"].astype(np.int64)
    src, dst = _undirected(edges[:, 0], edges[:, 1])
    graph = TransactionGraph(_plain_accounts(data["node_features"], data["node_labels"], split), src, dst,
                             directed=False).validate()
    return NamedDataset("tolokers", graph, ["undirected, stored in both directions", "10 features f0..f9",
                                            f"fixed 50/25/25 split number {split_index}"])


LOADERS = {"amlsim": load_amlsim, "amazon-upu": load_amazon_upu, "tolokers": load_tolokers}


def load_named(name: str, source, split_index: int = 0) -> NamedDataset:
    """Load one of ``LOADERS`` from its source path (directory for AMLSim, file otherwise)."""
    if name not in LOADERS:
        raise ConfigError(f"unknown dataset {name!r}; choose one of {', '.join(LOADERS)}")
    if name == "tolokers":
        return load_tolokers(source, split_index)
    return LOADERS[name](source)


def write_prepared(dataset: NamedDataset, out, force: bool = False) -> Dict[str, str]:
    """Write the dataset's edge list, account table and manifest into the directory ``out`` (staged)."""
    import pyarrow as pa

    from graphtrain.fraud.data.tables import write_table
    from graphtrain.io import staged_directory

    g = dataset.graph
    acc = g.accounts
    edge_cols = {"src": acc.ids[g.src], "dst": acc.ids[g.dst]}
    if g.amount is not None:
        edge_cols["amount"] = g.amount
    if g.time is not None:
        edge_cols["time"] = g.time
    acc_cols: Dict[str, object] = {"account_id": acc.ids}
    for j, name in enumerate(acc.feature_names):
        acc_cols[name] = acc.features[:, j]
    acc_cols["label"] = pa.array(acc.labels, mask=acc.labels < 0)
    if acc.split is not None:
        acc_cols["split"] = pa.array([SPLIT_NAMES[c] if c >= 0 else None for c in acc.split], type=pa.string())
    columns = {
        "edges": {"src": "src", "dst": "dst", "amount": "amount" if g.amount is not None else None,
                  "time": "time" if g.time is not None else None, "directed": g.directed},
        "accounts": {"id": "account_id", "label": "label", "split": "split" if acc.split is not None else None,
                     "features": list(acc.feature_names)},
    }
    manifest = {"format": "graphtrain-prepared-dataset", "format_version": FORMAT_VERSION,
                "created_by": f"graphtrain {__version__}", "dataset": dataset.name,
                "counts": {"accounts": g.num_accounts, "edges": g.num_edges, "positives": int((acc.labels == 1).sum())},
                "files": {"edges": EDGES_FILE, "accounts": ACCOUNTS_FILE}, "columns": columns, "notes": dataset.notes}
    with staged_directory(out, force=force, marker=MANIFEST_FILE) as tmp:
        write_table(tmp / EDGES_FILE, pa.table(edge_cols))
        write_table(tmp / ACCOUNTS_FILE, pa.table(acc_cols))
        (tmp / MANIFEST_FILE).write_text(json.dumps(manifest, indent=2) + "\n", encoding="utf-8")
    out = Path(out)
    return {"edges": str(out / EDGES_FILE), "accounts": str(out / ACCOUNTS_FILE), "manifest": str(out / MANIFEST_FILE)}


def load_prepared(directory) -> NamedDataset:
    """Read back a directory written by :func:`write_prepared`."""
    from graphtrain.errors import FormatError

    directory = Path(directory)
    path = directory / MANIFEST_FILE
    if not path.is_file():
        raise FormatError(f"{directory}: no {MANIFEST_FILE}; not a prepared dataset directory")
    manifest = json.loads(path.read_text(encoding="utf-8"))
    if manifest.get("format_version") != FORMAT_VERSION:
        raise FormatError(f"{path}: format version {manifest.get('format_version')!r}, this graphtrain reads {FORMAT_VERSION}")
    ec, ac = manifest["columns"]["edges"], manifest["columns"]["accounts"]
    accounts = load_accounts(directory / manifest["files"]["accounts"], ac["id"], label=ac["label"], split=ac["split"],
                             features=ac["features"])
    graph = load_transaction_graph(directory / manifest["files"]["edges"], accounts, src=ec["src"], dst=ec["dst"],
                                   amount=ec["amount"], time=ec["time"], directed=ec["directed"])
    return NamedDataset(manifest["dataset"], graph, manifest.get("notes", []))
