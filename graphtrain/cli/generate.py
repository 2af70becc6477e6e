"""``graphtrain generate``: a synthetic transaction graph with planted laundering rings.

The options are the fields of :class:`graphtrain.fraud.synth.generate.GeneratorConfig` (their help texts
are the option help), so the CLI and the Python API share one set of defaults.
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import typing

from graphtrain.errors import ConfigError

HELP = "generate a synthetic transaction graph with planted fraud rings (Parquet or CSV)"


def _config_fields():
    from graphtrain.fraud.synth.generator_config import GeneratorConfig  # light: no NumPy

    hints = typing.get_type_hints(GeneratorConfig)
    return GeneratorConfig, [(f, hints[f.name]) for f in dataclasses.fields(GeneratorConfig)]


def _triple(text: str):
    try:
        values = tuple(float(x) for x in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected three comma-separated numbers, got {text!r}") from None
    if len(values) != 3:
        raise argparse.ArgumentTypeError(f"expected three comma-separated numbers, got {text!r}")
    return values


def _parser_type(hint):
    if hint in (int, typing.Optional[int]):
        return int
    if hint is float:
        return float
    if hint is str:
        return str
    return _triple  # Tuple[float, float, float]


def register(subparsers) -> None:
    parser = subparsers.add_parser("generate", help=HELP, description=HELP + ". Writes transactions, accounts "
                                   "(features and noisy labels), ground-truth rings.csv, lookalikes.csv and manifest.json.")
    parser.add_argument("--out", required=True, help="output directory (created; see --force)")
    parser.add_argument("--force", action="store_true", help="replace an existing generated directory")
    config_cls, fields = _config_fields()
    for f, hint in fields:
        flag = f.metadata.get("flag", "--" + f.name.replace("_", "-"))
        default = f.default
        shown = ",".join(map(str, default)) if isinstance(default, tuple) else default
        help_text = f.metadata["help"]
        if "default" not in help_text:
            help_text += f" (default: {shown})"
        kind = _parser_type(hint)
        metavar = None if f.metadata.get("choices") else {int: "N", float: "X", str: "TEXT"}.get(kind, "A,B,C")
        parser.add_argument(flag, dest=f.name, type=kind, default=default, choices=f.metadata.get("choices"),
                            metavar=metavar, help=help_text)
    parser.set_defaults(func=run)


def run(args) -> int:
    from graphtrain.fraud.synth.generate import generate
    from graphtrain.fraud.synth.generator_config import GeneratorConfig

    values = {f.name: getattr(args, f.name) for f in dataclasses.fields(GeneratorConfig)}
    try:
        config = GeneratorConfig(**values)
    except TypeError as exc:  # pragma: no cover - argparse already typed every field
        raise ConfigError(str(exc)) from None
    result = generate(config, args.out, force=args.force)
    print(json.dumps({"out": str(result.out), "files": result.files, "counts": result.counts}))
    return 0
