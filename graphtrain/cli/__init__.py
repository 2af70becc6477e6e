"""``graphtrain`` command line: a thin shell over the Python API.

Each command lives in its own module of this package with a ``register(subparsers)`` function
that adds its parser and sets ``func`` (which imports the heavy libraries only when it runs).
"""
from __future__ import annotations

import argparse
import importlib
import sys
from typing import List, Optional

from graphtrain._version import __version__
from graphtrain.errors import GraphtrainError

# one module per command group; each registers its sub-commands
COMMAND_MODULES: List[str] = [
    "graphtrain.cli.partition",
    "graphtrain.cli.plan",
    "graphtrain.cli.train",
    "graphtrain.cli.generate",
    "graphtrain.cli.prepare_data",
    "graphtrain.cli.detect",
    "graphtrain.cli.tune",
]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="graphtrain",
        description="Distributed graph-learning training engine: partition raw edge lists into "
        "contiguous-ID range partitions, sample, train GNNs on Ray, find fraud rings.",
    )
    parser.add_argument("--version", action="version", version=f"graphtrain {__version__}")
    parser.add_argument("-v", "--verbose", action="count", default=0, help="more log output (-vv for debug)")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True
    for name in COMMAND_MODULES:
        importlib.import_module(name).register(sub)
    return parser


def main(argv: Optional[List[str]] = None) -> int:
    parser = build_parser()
    argv = sys.argv[1:] if argv is None else list(argv)
    args = parser.parse_args(argv)
    from graphtrain.cli.config_args import given_flags

    args.given_flags = given_flags(build_parser(), argv)  # what was typed, not defaulted (--config yields to it)
    from graphtrain.log import setup_logging

    setup_logging(args.verbose)
    try:
        code = args.func(args)
    except GraphtrainError as exc:
        print(f"graphtrain {args.command}: error: {exc}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print(f"graphtrain {args.command}: interrupted", file=sys.stderr)
        return 130
    return int(code or 0)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
