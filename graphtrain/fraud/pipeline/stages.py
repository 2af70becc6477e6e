"""Stage records of the fraud pipeline: what lets a killed run continue from its last finished stage.

Each stage of :mod:`graphtrain.fraud.pipeline.detect` writes its outputs into the run's staging
directory and then, as its last act, a small JSON record ``stages/NAME.json`` (written atomically)::

    {"stage": "train", "seconds": 41.3, "finished": 1796585623.2,
     "outputs": ["checkpoints"], "data": {...what later stages need: the fit result, ...}}

A stage counts as finished only if its record exists and every output it names is still there;
the outputs of a stage without a record are never trusted: a resumed run removes them
(:meth:`StageLog.begin`) and runs the stage again. The records stay in the final output
(``OUT/stages/``), with ``OUT/run_fingerprint.json`` (:mod:`graphtrain.io`).

Stages, in order: ``partition``, ``features`` (the split and the account feature tables),
``baseline`` (the tree), ``model_inputs`` (the GNN's features and the split written into the
dataset), ``train``, ``score``, ``stack`` (with ``--stack-folds``, the GNN's cross-fitted scores
and the stacked tree; recorded, empty, without), ``rings`` (rings, evaluation and every output
file). ``train`` is the exception to "run again from scratch": :class:`graphtrain.train.Trainer`
resumes from its newest checkpoint.

An output that no later stage reads is deleted once its last reader finishes
(:meth:`StageLog.release`; the feature tables, the largest scratch files of a run, after
``model_inputs``, or after ``stack`` with stacking), and its stage's record stops naming it.

Test hook: the environment variable :data:`PAUSE_ENV` = a stage name makes the run log
``test hook: pausing after stage NAME wrote its outputs`` and sleep before that stage's record is
written (so a test can kill it there); read only in :meth:`StageLog.finish`.
"""
from __future__ import annotations

import json
import os
import shutil
import time
from pathlib import Path
from typing import Dict, List, Optional, Sequence

from graphtrain.io import write_text_atomic
from graphtrain.log import get_logger

log = get_logger("fraud.stages")

STAGES_DIR = "stages"  # inside the run's directory: one record per finished stage
STAGES = ("partition", "features", "baseline", "model_inputs", "train", "score", "stack", "rings")
PAUSE_ENV = "GRAPHTRAIN_TEST_PAUSE_AFTER_STAGE"
PAUSE_SECONDS = 600


class StageLog:
    """The stage records of one run directory ``root`` (the staging directory being built).

    Args:
        root: the run's directory.
        trusted: use the records found there (a resumed run); False: a fresh run (there are none).

    Stages run in the order of :data:`STAGES`; once one runs (again), none after it counts as done.
    """

    def __init__(self, root: Path, trusted: bool = False):
        self.root = Path(root)
        self.dir = self.root / STAGES_DIR
        self.trusted = trusted
        self.skipped: List[str] = []  # stages found finished and skipped, in order
        self.ran: List[str] = []  # stages begun by this process, in order
        self._started: Dict[str, float] = {}

    def done(self, name: str) -> Optional[dict]:
        """The record of stage ``name`` if it finished: this is a resumed run, no stage has run again
        in this process, every earlier stage has its record, and so has this one, with every
        output it names still there. None otherwise (the stage must run)."""
        if not self.trusted or self.ran:
            return None
        if any(self.read(earlier) is None for earlier in STAGES[: STAGES.index(name)]):
            return None
        record = self.read(name)
        if record is None:
            return None
        missing = [o for o in record.get("outputs", []) if not (self.root / o).exists()]
        if missing:
            log.warning("stage %s has a record but its outputs %s are gone: running it again", name, ", ".join(missing))
            return None
        if name not in self.skipped:
            self.skipped.append(name)
            log.warning("resume: skipping stage %s (finished by the earlier run in %.1f s)", name, record.get("seconds", 0.0))
        return record

    @property
    def resuming(self) -> bool:
        """This run continues an earlier one and has re-run no stage yet (its partial outputs, e.g.
        training checkpoints, were made from the same inputs)."""
        return self.trusted and not self.ran

    def read(self, name: str) -> Optional[dict]:
        """Stage ``name``'s record as stored, or None."""
        try:
            return json.loads((self.dir / f"{name}.json").read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return None

    def begin(self, name: str, outputs: Sequence[str] = ()) -> None:
        """Start stage ``name``: drop its record and remove ``outputs`` (paths relative to the root:
        whatever an unfinished earlier try of the stage left, never trusted)."""
        if name not in STAGES:
            raise ValueError(f"unknown stage {name!r}")
        (self.dir / f"{name}.json").unlink(missing_ok=True)
        for rel in outputs:
            self._remove(rel)
        self.ran.append(name)
        self._started[name] = time.perf_counter()

    def release(self, name: str, outputs: Sequence[str]) -> None:
        """Delete ``outputs`` (relative paths) of finished stage ``name`` that no later stage reads.

        Its record stops naming them (``released`` lists them) before they are deleted, so the stage
        still counts as finished without them; a kill between the two leaves files that no record
        names, inside the run's scratch directory. Nothing happens without a record.
        """
        record = self.read(name)
        if record is None:
            return
        kept = [o for o in record.get("outputs", []) if o not in outputs]
        if kept != record.get("outputs", []):
            record["outputs"] = kept
            record["released"] = sorted(set(record.get("released", [])) | set(outputs))
            write_text_atomic(self.dir / f"{name}.json", json.dumps(record, indent=1) + "\n")
        for rel in outputs:
            self._remove(rel)

    def _remove(self, rel: str) -> None:
        path = self.root / rel
        if path.is_dir() and not path.is_symlink():
            shutil.rmtree(path)
        elif path.exists() or path.is_symlink():
            path.unlink()

    def finish(self, name: str, outputs: Sequence[str] = (), data: Optional[dict] = None) -> dict:
        """Record that stage ``name`` finished with ``outputs`` (relative paths) and ``data`` (JSON)
        for the stages after it; returns the record (``seconds``: since :meth:`begin`)."""
        seconds = time.perf_counter() - self._started.pop(name)
        if os.environ.get(PAUSE_ENV) == name:
            log.warning("test hook: pausing after stage %s wrote its outputs (%s=%s)", name, PAUSE_ENV, name)
            time.sleep(PAUSE_SECONDS)
        record = {"stage": name, "seconds": round(seconds, 3), "finished": round(time.time(), 3),
                  "outputs": list(outputs), "data": data or {}}
        self.dir.mkdir(exist_ok=True)
        write_text_atomic(self.dir / f"{name}.json", json.dumps(record, indent=1) + "\n")
        return record
