"""One trial of ``graphtrain tune``: a graphtrain training run inside a Ray Tune trial.

The trial runs a :class:`~graphtrain.train.Trainer` with one worker in the trial's own placement
group (``PlacementGroupFactory([{}, {"CPU": cpus_per_worker}])``: the trial's driver takes no CPU,
the worker's bundle does; :class:`~graphtrain.train.group.WorkerGroup` uses that bundle instead of
asking for a new one), in the search's Ray (already initialised in a trial, so the Trainer starts
none). Each validation the workers post (``EpochDone`` with ``val``) is reported to Tune at once,
so ASHA can stop the trial between validations; the Trainer's own early stopping (``patience``)
ends a trial that stops improving. The checkpoints go to a temporary directory, removed at the end:
a search keeps configurations, not models.
"""
from __future__ import annotations

import shutil
import tempfile
from typing import Dict

from graphtrain.train.results import EpochDone
from graphtrain.tune.space import train_options


def run_trial(params: Dict[str, object], *, dataset_dir: str, fixed: Dict[str, object], metric: str,
              cpus_per_worker: float) -> None:
    """Train one point of the space; report ``{metric, epoch, loss}`` to Tune at each validation.

    Args:
        params: the trial's point of the search space (:mod:`graphtrain.tune.space`).
        dataset_dir: the partitioned dataset (absolute path).
        fixed: the TrainConfig fields every trial shares (the schedule, ``monitor``, the seed).
        metric: the validation metric reported (``"ap"`` or ``"auc"``; also ``monitor``).
    """
    from ray import tune

    from graphtrain.train import Trainer

    def report(msg) -> None:
        if isinstance(msg, EpochDone) and msg.val is not None and msg.val.get(metric) is not None:
            tune.report({metric: float(msg.val[metric]), "epoch": msg.epoch + 1, "loss": msg.loss})

    ckpt = tempfile.mkdtemp(prefix="graphtrain-tune-trial-")
    try:
        trainer = Trainer(dataset_dir, num_workers=1, checkpoint_dir=ckpt, progress=False, verify=False,
                          cpus_per_worker=cpus_per_worker, max_restarts=0, on_progress=report,
                          **{**fixed, **train_options(params)})
        trainer.fit()
    finally:
        shutil.rmtree(ckpt, ignore_errors=True)
