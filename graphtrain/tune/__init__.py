"""Hyperparameter search on Ray Tune (``graphtrain tune``): :mod:`~graphtrain.tune.space` (what is
searched), :mod:`~graphtrain.tune.trial` (one trial: a Trainer run), :mod:`~graphtrain.tune.search`
(ASHA + Optuna TPE, resume, the best configuration and the trial table)."""
