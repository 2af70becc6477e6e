"""Training checkpoints: tensors with ``torch.save`` (state dicts only) plus a JSON manifest.

Layout of a checkpoint directory (``Trainer(checkpoint_dir=D)``)::

    D/
    ├── latest.json                 {"format_version": 1, "checkpoint": "step-000000120"}
    ├── step-000000096/             an older checkpoint (the newest ``keep`` are kept)
    └── step-000000120/
        ├── manifest.json           format_version, position (epoch, next batch, global step),
        │                           model config, training config, dataset identity, worker count,
        │                           metric history, early-stopping state, the input features'
        │                           standardisation (mean, std), sha256 of each file
        ├── model.pt                model state dict (tensors only)
        ├── optimizer.pt            optimizer state dict
        ├── best_model.pt           state dict of the best model so far (by the monitored val metric)
        └── scaler.pt               AMP gradient-scaler state (GPU runs with AMP only)

**Position.** ``epoch`` and ``batch`` say where training resumes: batch ``batch`` of epoch
``epoch`` is the next one to run. All randomness of a run -- the seed shuffle, the sampler's stream
keys and the dropout masks -- is derived from ``(seed, epoch, batch, rank)`` by the counter RNG
(:mod:`graphtrain.kernels.rng`), so the position *is* the RNG state: a resumed run draws exactly what
the uninterrupted run would have drawn from there on.

Each checkpoint is written under a temporary name and renamed into place, then ``latest.json`` is
replaced atomically, so a crash at any moment leaves the previous checkpoint usable. Loading uses
``torch.load(weights_only=True)``: no pickled classes, ever.
"""
from __future__ import annotations

import hashlib
import json
import os
import shutil
import uuid
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Dict, List, Optional

from graphtrain._version import __version__
from graphtrain.errors import FormatError
from graphtrain.io import write_text_atomic
from graphtrain.log import get_logger

log = get_logger("train.checkpoint")

CHECKPOINT_FORMAT_VERSION = 1
MANIFEST = "manifest.json"
LATEST = "latest.json"
STATE_FILES = ("model", "optimizer", "best_model", "scaler")


@dataclass
class CheckpointManifest:
    """Everything in ``manifest.json`` (see the module docstring).

    Attributes:
        epoch: epoch of the next batch to run.
        batch: index within ``epoch`` of the next batch to run (0 = the epoch has not started).
        global_step: optimizer steps taken so far.
        batches_per_epoch: batches per epoch of the run that wrote it (per worker).
        num_workers: workers of the run that wrote it.
        model: :class:`~graphtrain.train.models.ModelConfig` as a dict (``{"name": "custom", ...}`` for user models).
        train: the training configuration as a dict.
        dataset: ``{"path", "num_nodes", "num_edges", "num_parts"}`` of the dataset trained on.
        history: one dict per finished epoch (loss, val metrics).
        early_stopping: ``{"best", "best_epoch", "bad_epochs"}``.
        finished: training ended (all epochs or early stop); resuming it does nothing more.
        epoch_losses: mid-epoch only: ``[loss sum, batch count]`` of the epoch so far on each rank
            (rank order), so a resumed epoch reports the loss the uninterrupted one would have.
        feature_norm: ``{"mean", "std", "count"}`` the model's input features are standardised with
            (:mod:`graphtrain.train.normalize`), or None (raw features).
        edge_norm: likewise for the edge features (``TrainConfig.edge_features``), or None.
        files: file name -> sha256.
    """

    epoch: int
    batch: int
    global_step: int
    batches_per_epoch: int
    num_workers: int
    model: Dict[str, Any]
    train: Dict[str, Any]
    dataset: Dict[str, Any]
    history: List[Dict[str, Any]] = field(default_factory=list)
    early_stopping: Dict[str, Any] = field(default_factory=dict)
    finished: bool = False
    epoch_losses: List[List[float]] = field(default_factory=list)
    feature_norm: Optional[Dict[str, Any]] = None
    edge_norm: Optional[Dict[str, Any]] = None
    files: Dict[str, str] = field(default_factory=dict)
    format_version: int = CHECKPOINT_FORMAT_VERSION
    created_by: str = f"graphtrain {__version__}"

    @classmethod
    def from_json(cls, text: str, path) -> "CheckpointManifest":
        try:
            raw = json.loads(text)
        except json.JSONDecodeError as exc:
            raise FormatError(f"{path}: not valid JSON ({exc.msg} at line {exc.lineno})") from None
        if not isinstance(raw, dict) or "format_version" not in raw:
            raise FormatError(f"{path}: no format_version; not a graphtrain checkpoint")
        if raw["format_version"] != CHECKPOINT_FORMAT_VERSION:
            raise FormatError(f"{path}: checkpoint format version {raw['format_version']} is not supported "
                              f"(graphtrain {__version__} reads version {CHECKPOINT_FORMAT_VERSION})")
        try:
            return cls(**raw)
        except TypeError as exc:
            raise FormatError(f"{path}: unexpected manifest layout ({exc})") from None


def _sha256(path: Path) -> str:
    sha = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            sha.update(block)
    return sha.hexdigest()


def _write_json_atomic(path: Path, obj) -> None:
    write_text_atomic(path, json.dumps(obj, indent=2) + "\n")


def step_name(global_step: int) -> str:
    return f"step-{global_step:09d}"


def save_checkpoint(root, manifest: CheckpointManifest, states: Dict[str, Any], keep: int = 2) -> Path:
    """Write a checkpoint atomically under ``root`` and point ``latest.json`` at it.

    Args:
        root: the checkpoint directory (created if missing).
        manifest: position and configuration (``files`` is filled here).
        states: name (one of ``STATE_FILES``) -> state dict of tensors and plain values.
        keep: how many newest checkpoints to keep (older ones are deleted after the switch).

    Returns:
        The new checkpoint's directory.
    """
    import torch

    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    name = step_name(manifest.global_step) + ("-final" if manifest.finished else "")
    final = root / name
    tmp = root / f".{name}.tmp-{uuid.uuid4().hex[:8]}"
    tmp.mkdir()
    try:
        files = {}
        for key, state in states.items():
            if key not in STATE_FILES:
                raise ValueError(f"unknown checkpoint state {key!r}")
            if state is None:
                continue
            path = tmp / f"{key}.pt"
            torch.save(state, path)
            files[f"{key}.pt"] = _sha256(path)
        manifest.files = files
        (tmp / MANIFEST).write_text(json.dumps(asdict(manifest), indent=2) + "\n", encoding="utf-8")
        if final.exists():
            shutil.rmtree(final)
        os.replace(tmp, final)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    _write_json_atomic(root / LATEST, {"format_version": CHECKPOINT_FORMAT_VERSION, "checkpoint": name})
    old = sorted(p for p in root.iterdir() if p.is_dir() and p.name.startswith("step-") and p != final)
    for p in old[: max(0, len(old) - (keep - 1))]:
        shutil.rmtree(p, ignore_errors=True)
    return final


def latest_checkpoint(root) -> Optional[Path]:
    """The checkpoint ``latest.json`` in ``root`` points at, or None when there is none yet."""
    root = Path(root)
    pointer = root / LATEST
    if not pointer.is_file():
        return None
    try:
        name = json.loads(pointer.read_text(encoding="utf-8"))["checkpoint"]
    except (json.JSONDecodeError, KeyError, TypeError):
        raise FormatError(f"{pointer}: not a valid checkpoint pointer") from None
    path = root / name
    if not (path / MANIFEST).is_file():
        raise FormatError(f"{pointer} points at {name}, which has no {MANIFEST}")
    return path


def resolve_checkpoint(path) -> Path:
    """A checkpoint directory from either a checkpoint root (its latest) or one checkpoint's directory."""
    path = Path(path)
    if (path / MANIFEST).is_file():
        return path
    if not path.exists():
        raise FormatError(f"{path}: no such checkpoint")
    found = latest_checkpoint(path)
    if found is None:
        raise FormatError(f"{path}: neither a checkpoint (no {MANIFEST}) nor a checkpoint directory (no {LATEST})")
    return found


def read_manifest(path) -> CheckpointManifest:
    """The manifest of checkpoint ``path`` (a checkpoint root or one checkpoint)."""
    path = resolve_checkpoint(path)
    return CheckpointManifest.from_json((path / MANIFEST).read_text(encoding="utf-8"), path / MANIFEST)


def load_states(path, names=STATE_FILES, verify: bool = True) -> Dict[str, Any]:
    """State dicts of checkpoint ``path`` (those present among ``names``), checksums verified."""
    import torch

    path = resolve_checkpoint(path)
    manifest = read_manifest(path)
    out = {}
    for name in names:
        fname = f"{name}.pt"
        if fname not in manifest.files:
            continue
        fpath = path / fname
        if not fpath.is_file():
            raise FormatError(f"{fpath}: missing (listed in {MANIFEST})")
        if verify and _sha256(fpath) != manifest.files[fname]:
            raise FormatError(f"{fpath}: checksum mismatch (file is corrupt or was modified)")
        try:
            out[name] = torch.load(fpath, map_location="cpu", weights_only=True)
        except Exception as exc:  # torch raises several types for unreadable files
            raise FormatError(f"{fpath}: unreadable checkpoint state ({exc})") from None
    return out
