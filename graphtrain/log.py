"""The one ``graphtrain`` logger. Library code logs; only entry points configure handlers."""
from __future__ import annotations

import logging
import sys

LOGGER_NAME = "graphtrain"


def get_logger(name: str | None = None) -> logging.Logger:
    """Return the ``graphtrain`` logger or one of its children (``graphtrain.<name>``)."""
    return logging.getLogger(LOGGER_NAME if not name else f"{LOGGER_NAME}.{name}")


class _CurrentStderr(logging.StreamHandler):
    """Writes to whatever ``sys.stderr`` is when a record is emitted, not the stream of the first
    ``setup_logging`` call: a command run in-process again after ``sys.stderr`` was replaced (tests
    capturing output, notebooks) must not write to a closed stream."""

    def __init__(self):
        super().__init__(sys.stderr)

    @property
    def stream(self):
        return sys.stderr

    @stream.setter
    def stream(self, value):  # logging.StreamHandler.__init__ assigns it; the current sys.stderr wins
        pass


def setup_logging(verbosity: int = 0) -> None:
    """Configure the graphtrain logger for a command-line entry point.

    Args:
        verbosity: 0 = warnings and info summaries, 1+ = debug.
    """
    logger = logging.getLogger(LOGGER_NAME)
    logger.setLevel(logging.DEBUG if verbosity > 0 else logging.INFO)
    if not logger.handlers:
        handler = _CurrentStderr()
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s", "%H:%M:%S"))
        logger.addHandler(handler)
    logger.propagate = False
