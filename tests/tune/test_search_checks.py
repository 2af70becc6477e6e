"""``graphtrain tune``'s checks before any trial, the space, durations (no Ray started)."""
import json

import pytest

from graphtrain.cli import main
from graphtrain.errors import ConfigError, OutputExistsError
from graphtrain.train.config import MODELS, TrainConfig
from graphtrain.tune import search as search_mod
from graphtrain.tune.search import SEARCH_FILE, SearchOptions, run_search
from graphtrain.tune.space import PARAMS, fanouts_of, in_space, search_space, train_options
from graphtrain.units import parse_duration


@pytest.mark.parametrize("text, seconds", [("30m", 1800), ("2h", 7200), ("90", 90), ("45s", 45), ("1.5h", 5400)])
def test_durations(text, seconds):
    assert parse_duration(text) == seconds


@pytest.mark.parametrize("text", ["", "x", "10y", "-5", "0"])
def test_bad_durations(text):
    with pytest.raises(ConfigError):
        parse_duration(text)


def test_space_reads_the_models_and_maps_onto_train_config():
    names = [p.name for p in search_space()]
    assert names == [p.name for p in PARAMS]  # every parameter's TrainConfig field exists on this branch
    assert dict((p.name, p.values) for p in search_space())["model"] == tuple(MODELS)
    assert fanouts_of(3, 15) == (15, 7, 3) and fanouts_of(1, 5) == (5,) and fanouts_of(3, 5) == (5, 2, 2)
    point = {"model": "gcn", "depth": 2, "fanout": 10, "hidden": 64, "lr": 0.005, "dropout": 0.2, "weight_decay": 0.0,
             "class_weight": "none", "normalize": False, "aggregators": "mean,max", "ego": "concat"}
    opts = train_options(point)
    assert opts["fanouts"] == (10, 5) and "depth" not in opts and in_space(opts, search_space())
    # gcn has no aggregator or ego choice: it trains with the defaults, which TrainConfig accepts
    assert (opts["aggregators"], opts["ego"]) == (("mean",), "sum")
    TrainConfig(**opts).validate()
    sage = train_options({**point, "model": "sage"})
    assert (sage["aggregators"], sage["ego"]) == (("mean", "max"), "concat") and in_space(sage, search_space())
    TrainConfig(**sage).validate()
    assert not in_space({**sage, "aggregators": ("max",)}, search_space())
    assert not in_space({**opts, "lr": 0.5}, search_space())
    assert not in_space({**opts, "fanouts": (10, 10)}, search_space())  # not a (depth, fanout) of the space


def test_search_refuses_bad_input_before_ray(tmp_path, split_dataset, unsplit_dataset, monkeypatch):
    import graphtrain.train.group

    monkeypatch.setattr(search_mod, "_tuner", lambda *a, **k: pytest.fail("the search started"))
    monkeypatch.setattr(graphtrain.train.group, "connect", lambda *a, **k: pytest.fail("Ray was started"))
    opts = SearchOptions(trials=2, time_budget_s=30)
    with pytest.raises(ConfigError, match="no such dataset directory"):
        run_search(tmp_path / "missing", opts, search_dir=tmp_path / "s")
    with pytest.raises(ConfigError, match="has no train/val/test split"):
        run_search(unsplit_dataset, opts, search_dir=tmp_path / "s")
    with pytest.raises(ConfigError, match="--trials must be an integer >= 1"):
        run_search(split_dataset, SearchOptions(trials=0, time_budget_s=30), search_dir=tmp_path / "s")
    with pytest.raises(ConfigError, match="--metric must be one of"):
        run_search(split_dataset, SearchOptions(trials=1, time_budget_s=30, metric="f1"), search_dir=tmp_path / "s")
    out = tmp_path / "best.json"
    out.write_text("{}")
    with pytest.raises(OutputExistsError, match="best.json already exists; pass --force"):
        run_search(split_dataset, opts, out=out, search_dir=tmp_path / "s")
    with pytest.raises(ConfigError, match="no search to resume"):
        run_search(split_dataset, opts, search_dir=tmp_path / "s", resume=True)
    assert not (tmp_path / "s").exists()


def test_resume_refuses_changed_arguments_and_space(tmp_path, split_dataset, monkeypatch):
    """A search directory's search.json is what a resume must match: another option or space is refused."""
    monkeypatch.setattr(search_mod, "_tuner", lambda *a, **k: pytest.fail("the search started"))
    opts = SearchOptions(trials=2, time_budget_s=30)
    sdir = tmp_path / "s"
    (sdir / "experiment").mkdir(parents=True)
    fingerprint = search_mod._fingerprint(split_dataset.resolve(), opts)
    (sdir / SEARCH_FILE).write_text(json.dumps(fingerprint))
    with pytest.raises(ConfigError, match=r"arguments changed \(trials 2 -> 3\)"):
        run_search(split_dataset, SearchOptions(trials=3, time_budget_s=30), search_dir=sdir, resume=True)
    narrower = tuple(p if p.name != "hidden" else type(p)("hidden", "choice", (32,), "hidden") for p in PARAMS)
    monkeypatch.setattr(search_mod, "search_space", lambda: narrower)
    with pytest.raises(ConfigError, match=r"search space \(hidden\)"):
        run_search(split_dataset, opts, search_dir=sdir, resume=True)


def test_cli_errors(tmp_path, split_dataset, capsys):
    assert main(["tune", str(split_dataset), "--trials", "0", "--time-budget", "1m", "--search-dir", str(tmp_path / "s")]) == 2
    assert "--trials must be an integer >= 1, got 0" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["tune", str(split_dataset), "--trials", "1", "--time-budget", "soon"])
    assert "cannot read duration 'soon'" in capsys.readouterr().err


def test_missing_optuna_names_the_extra(split_dataset, tmp_path, monkeypatch):
    from graphtrain import optional
    from graphtrain.errors import MissingDependencyError

    monkeypatch.setattr(optional, "available", lambda module: module != "optuna")
    with pytest.raises(MissingDependencyError, match=r"pip install 'graphtrain\[tune\]'"):
        run_search(split_dataset, SearchOptions(trials=1, time_budget_s=30), search_dir=tmp_path / "s")


def test_how_a_search_ended():
    from graphtrain.tune.search import how_it_ended

    assert how_it_ended(2, 2, 10.0, 60.0) == "complete"
    assert how_it_ended(2, 2, 60.0, 60.0) == "time budget"  # all trials created, stopped by the budget
    assert how_it_ended(1, 3, 70.0, 60.0) == "time budget"
    assert how_it_ended(1, 3, 10.0, 60.0) == "interrupted"


def test_a_trial_tune_stopped_at_the_end_of_the_search_is_interrupted_not_done():
    # Tune's cleanup reports a trial still running at Ctrl-C as TERMINATED like a finished one; only its
    # last result's `done` (set when the function returned or the scheduler stopped it) tells them apart
    from graphtrain.tune.search import trial_status

    assert trial_status(False, {"val_ap": 0.4, "done": True}) == "done"
    assert trial_status(False, {"val_ap": 0.4, "done": False}) == "interrupted"
    assert trial_status(False, None) == "interrupted"  # stopped before its first report
    assert trial_status(True, {"done": True}) == "error"
