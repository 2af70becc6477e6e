"""Exception types that carry a user-facing message.

Every error a user can cause (bad input file, bad option, corrupt dataset) is raised as a
:class:`GraphtrainError` subclass whose ``str()`` is a complete sentence naming the file, row or
option at fault. The CLI prints that message and exits non-zero; anything else is a bug and gets a
traceback.
"""
from __future__ import annotations

from typing import Optional


class GraphtrainError(Exception):
    """Base class of errors caused by input, configuration or data (not by a bug)."""

    exit_code = 2


class InputError(GraphtrainError):
    """A problem in a user's input file, located as precisely as known.

    Args:
        path: the file at fault.
        message: what is wrong, e.g. ``"expected an integer ID, got 'abc'"``.
        row: 1-based position where known: the physical line (header included) of a text file, or
            the data row of a Parquet file / in-memory table.
        column: the column name where known.
        unit: ``"line"`` (text files) or ``"row"`` -- how ``row`` is counted and printed.
    """

    def __init__(self, path, message: str, row: Optional[int] = None, column: Optional[str] = None, unit: str = "row"):
        self.path = str(path)
        self.row = row
        self.column = column
        self.unit = unit
        self.problem = message
        where = self.path
        if row is not None:
            where += f", {unit} {row}"
        if column is not None:
            where += f", column '{column}'"
        super().__init__(f"{where}: {message}")


class ConfigError(GraphtrainError):
    """An invalid option, argument or combination of them."""


class FormatError(GraphtrainError):
    """A dataset directory that is missing, corrupt, or written by an incompatible version."""


class OutputExistsError(GraphtrainError):
    """The output already exists and ``force`` was not given."""


class MissingDependencyError(GraphtrainError, ImportError):
    """An optional dependency of the feature asked for is not installed (the message says what to install)."""
