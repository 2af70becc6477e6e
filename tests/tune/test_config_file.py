"""Configuration files (``train --config``, ``detect-rings --config``): read, checked, overridden by flags."""
import json

import pytest

from graphtrain.cli import main
from graphtrain.errors import ConfigError, OutputExistsError
from graphtrain.train.config import TrainConfig
from graphtrain.train.config_file import read_config_file, write_config_file


def _write(path, doc):
    path.write_text(json.dumps(doc))
    return path


def test_round_trip(tmp_path):
    path = tmp_path / "c.json"
    write_config_file(path, {"model": "gcn", "fanouts": (10, 5), "hidden": 32, "normalize": False}, search={"x": 1})
    assert read_config_file(path) == {"model": "gcn", "fanouts": (10, 5), "hidden": 32, "normalize": False}
    with pytest.raises(OutputExistsError, match="already exists"):
        write_config_file(path, {"model": "sage"})


@pytest.mark.parametrize("doc, message", [
    ({"train": {"hiden": 32}}, "unknown training option 'hiden'"),
    ({"train": {"model": "sage"}, "tarin": {}}, "unknown key 'tarin'"),
    ({"train": {"runtime": {"prefetch": 2}}}, "'runtime' \\(machine tuning\\) is not a training option"),
    ({"train": {"lr": -1}}, "lr must be > 0"),
    ({"train": {"model": "mlp"}}, "model must be one of"),
    ({"format_version": 9, "train": {}}, "format_version 9"),
    ({"model": "sage"}, "a 'train' object"),
])
def test_bad_files_name_the_file_and_the_problem(tmp_path, doc, message):
    path = _write(tmp_path / "bad.json", doc)
    with pytest.raises(ConfigError, match=message) as err:
        read_config_file(path)
    assert str(path) in str(err.value)


def test_not_json(tmp_path):
    path = tmp_path / "c.json"
    path.write_text("{model: sage}")
    with pytest.raises(ConfigError, match=r"c.json: not valid JSON \(line 1"):
        read_config_file(path)


class _Captured(Exception):
    pass


def _capture_trainer(monkeypatch):
    """Replace the Trainer the train command builds by one that records its keyword arguments."""
    import graphtrain.train

    seen = {}

    def fake(dataset, **kwargs):
        seen.update(kwargs, dataset=dataset)
        raise _Captured()

    monkeypatch.setattr(graphtrain.train, "Trainer", fake)
    return seen


def test_train_config_applies_and_flags_override(tmp_path, monkeypatch):
    path = _write(tmp_path / "c.json", {"train": {"model": "gat", "fanouts": [5, 3, 2], "hidden": 32, "lr": 0.02,
                                                  "normalize": False, "class_weight": "none", "weight_decay": 1e-4}})
    seen = _capture_trainer(monkeypatch)
    with pytest.raises(_Captured):
        main(["train", "ds", "--config", str(path), "--hidden", "128", "--lr", "0.001"])
    # the file where no flag was given; the flags where given, even at their default values (hidden 128, lr 1e-3)
    assert (seen["model"], tuple(seen["fanouts"]), seen["normalize"], seen["class_weight"], seen["weight_decay"]) == \
        ("gat", (5, 3, 2), False, "none", 1e-4)
    assert (seen["hidden"], seen["lr"]) == (128, 0.001) == (TrainConfig().hidden, TrainConfig().lr)
    seen.clear()
    with pytest.raises(_Captured):
        main(["train", "ds", "--config", str(path), "--fanouts", "7"])
    assert tuple(seen["fanouts"]) == (7,) and seen["hidden"] == 32
    seen.clear()
    with pytest.raises(_Captured):  # an inverted flag: --no-normalize given, the file says True
        main(["train", "ds", "--config", str(_write(tmp_path / "n.json", {"train": {"normalize": True}})), "--no-normalize"])
    assert seen["normalize"] is False


def test_train_config_unknown_key_is_a_clear_error(tmp_path, capsys):
    path = _write(tmp_path / "c.json", {"train": {"model": "sage", "layers": 3}})
    assert main(["train", "ds", "--config", str(path)]) == 2
    err = capsys.readouterr().err
    assert "unknown training option 'layers'" in err and str(path) in err and "Traceback" not in err


def test_detect_rings_config_maps_onto_model_options(tmp_path):
    from graphtrain.cli import build_parser
    from graphtrain.cli.config_args import given_flags
    from graphtrain.cli.detect import _options

    path = _write(tmp_path / "c.json", {"train": {"model": "gcn", "fanouts": [15, 7], "hidden": 32, "dropout": 0.3,
                                                  "monitor": "auc", "normalize": False, "class_weight": "none"}})
    argv = ["detect-rings", "--edges", "e.csv", "--accounts", "a.csv", "--label", "y", "--out", "o",
            "--config", str(path), "--hidden", "16"]
    args = build_parser().parse_args(argv)
    args.given_flags = given_flags(build_parser(), argv)
    options, _ = _options(args)
    assert (options.model, options.fanouts, options.dropout, options.monitor) == ("gcn", (15, 7), 0.3, "auc")
    assert options.hidden == 16  # the flag wins
    assert options.train_options == {"normalize": False, "class_weight": "none"}  # TrainConfig fields ModelOptions lacks
    options.validate()


def test_detect_rings_config_error_before_any_work(tmp_path, capsys):
    path = _write(tmp_path / "c.json", {"train": {"modle": "gcn"}})
    code = main(["detect-rings", "--edges", str(tmp_path / "missing.csv"), "--accounts", str(tmp_path / "a.csv"),
                 "--label", "y", "--out", str(tmp_path / "out"), "--config", str(path)])
    err = capsys.readouterr().err
    assert code == 2 and "unknown training option 'modle'" in err and str(path) in err
    assert not (tmp_path / "out").exists()
