"""Training configuration files: the JSON that ``graphtrain tune`` writes and ``train --config`` /
``detect-rings --config`` read.

::

    {
      "format_version": 1,
      "train": {"model": "sage", "fanouts": [10, 5], "hidden": 64, "lr": 0.003, ...},
      "search": {...}                      optional, informational: where the values came from
    }

``train`` holds :class:`~graphtrain.train.config.TrainConfig` fields by name (any subset; lists for
the tuple fields). Machine tuning (``runtime``) is not a training option and is refused, as is any
other key that is not a field: the error names the key and the file. Values are checked by
building a ``TrainConfig`` of the defaults and the file's values, so a bad value fails here, before
any work, naming the file. The command line overrides the file: the commands apply a file value only
where the flag was not given (:mod:`graphtrain.cli.config_args`).
"""
from __future__ import annotations

import json
from dataclasses import fields
from pathlib import Path
from typing import Dict, Optional

from graphtrain.errors import ConfigError, OutputExistsError
from graphtrain.io import write_text_atomic

FORMAT_VERSION = 1
TOP_KEYS = ("format_version", "train", "search")
TUPLE_FIELDS = ("fanouts", "split_fractions", "aggregators", "edge_features")


def config_keys() -> tuple:
    """The ``train`` keys a file may hold: every TrainConfig field but ``runtime``."""
    from graphtrain.train.config import TrainConfig

    return tuple(f.name for f in fields(TrainConfig) if f.name != "runtime")


def check_train_options(train: dict, where: str) -> Dict[str, object]:
    """``train`` checked against TrainConfig (names and values); tuple fields as tuples. ``where``
    names the source in errors (a file path)."""
    from graphtrain.train.config import TrainConfig

    if not isinstance(train, dict):
        raise ConfigError(f"{where}: 'train' must be an object of training options, got {type(train).__name__}")
    keys = config_keys()
    for key in train:
        if key == "runtime":
            raise ConfigError(f"{where}: 'runtime' (machine tuning) is not a training option; give it on the "
                              "command line (--prefetch, --pin-cpus, ...)")
        if key not in keys:
            raise ConfigError(f"{where}: unknown training option {key!r} (known: {', '.join(keys)})")
    values = {k: tuple(v) if k in TUPLE_FIELDS and isinstance(v, list) else v for k, v in train.items()}
    try:
        TrainConfig(**values).validate()
    except ConfigError as exc:
        raise ConfigError(f"{where}: {exc}") from None
    except TypeError as exc:  # e.g. a string where a number belongs, caught by a comparison in validate()
        raise ConfigError(f"{where}: a training option has a value of the wrong type ({exc})") from None
    return values


def read_config_file(path) -> Dict[str, object]:
    """The checked training options of a configuration file (see the module docstring).

    Raises:
        ConfigError: a missing or unreadable file, bad JSON, an unknown key, a bad value, another
            ``format_version``.
    """
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"{path}: no such configuration file")
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path}: cannot read the configuration file ({exc})") from None
    except json.JSONDecodeError as exc:
        raise ConfigError(f"{path}: not valid JSON (line {exc.lineno}, column {exc.colno}: {exc.msg})") from None
    if not isinstance(doc, dict) or "train" not in doc:
        raise ConfigError(f"{path}: a configuration file is a JSON object with a 'train' object of training options")
    unknown = [k for k in doc if k not in TOP_KEYS]
    if unknown:
        raise ConfigError(f"{path}: unknown key {unknown[0]!r} (a configuration file has {', '.join(TOP_KEYS)})")
    version = doc.get("format_version", FORMAT_VERSION)
    if version != FORMAT_VERSION:
        raise ConfigError(f"{path}: format_version {version!r}; this graphtrain reads {FORMAT_VERSION}")
    return check_train_options(doc["train"], str(path))


def write_config_file(path, train: Dict[str, object], search: Optional[dict] = None, force: bool = False) -> None:
    """Write ``train`` (TrainConfig fields) as a configuration file, atomically; refuse to replace
    an existing file unless ``force``."""
    path = Path(path)
    if path.exists() and not force:
        raise OutputExistsError(f"{path} already exists; pass --force to replace it")
    check_train_options(dict(train), str(path))
    doc = {"format_version": FORMAT_VERSION,
           "train": {k: list(v) if isinstance(v, tuple) else v for k, v in train.items()}}
    if search is not None:
        doc["search"] = search
    write_text_atomic(path, json.dumps(doc, indent=2) + "\n")
