"""``--config FILE`` for the commands that train: the file's values apply where no flag was given.

argparse cannot tell a flag given at its default value from one not given, so :func:`given_flags`
parses the command line a second time with every option's default suppressed: what is left in the
namespace is what the user typed. ``main`` stores that set as ``args.given_flags``; a command then
applies each configuration-file key (a TrainConfig field) unless the flag of that field is in it.
"""
from __future__ import annotations

import argparse
from typing import Dict, Iterable, List, Set

# TrainConfig field -> the train/detect-rings flag's dest, where they differ (the others: the same name)
FLAG_OF: Dict[str, str] = {"normalize": "no_normalize", "amp": "no_amp", "split_fractions": "split"}


def _suppress_defaults(parser: argparse.ArgumentParser) -> None:
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for sub in set(action.choices.values()):
                _suppress_defaults(sub)
        elif action.option_strings:
            action.default = argparse.SUPPRESS


def given_flags(parser: argparse.ArgumentParser, argv: List[str]) -> Set[str]:
    """The ``dest`` of every option in ``argv`` (``parser`` is changed: build a fresh one for it)."""
    _suppress_defaults(parser)
    return set(vars(parser.parse_args(argv)))


def file_values_to_apply(values: Dict[str, object], given: Iterable[str]) -> Dict[str, object]:
    """The configuration file's ``values`` whose flag the user did not give (the command line wins)."""
    given = set(given)
    return {k: v for k, v in values.items() if FLAG_OF.get(k, k) not in given}


def add_config_arg(group) -> None:
    group.add_argument("--config", metavar="FILE",
                       help="training options from a configuration file (JSON, as `graphtrain tune` writes: "
                       "{\"train\": {\"model\": ..., \"fanouts\": [...], ...}}); flags given on the command line "
                       "override it; an unknown key is an error naming it")
