"""The one ``graphtrain`` logger. Library code logs; only entry points configure handlers."""
from __future__ import annotations

import logging
import sys

LOGGER_NAME = "graphtrain"


def get_logger(name: str | None = None) -> logging.Logger:
    """Return the ``graphtrain`` logger or one of its children (``graphtrain.<name>``)."""
    return logging.getLogger(LOGGER_NAME if not name else f"{LOGGER_NAME}.{name}")


def setup_logging(verbosity: int = 0) -> None:
    """Configure the graphtrain logger for a command-line entry point.

    Args:
        verbosity: 0 = warnings and info summaries, 1+ = debug.
    """
    logger = logging.getLogger(LOGGER_NAME)
    logger.setLevel(logging.DEBUG if verbosity > 0 else logging.INFO)
    if not logger.handlers:
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s", "%H:%M:%S"))
        logger.addHandler(handler)
    logger.propagate = False
