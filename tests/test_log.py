"""The graphtrain log handler writes to the current sys.stderr: a command run in-process again after
sys.stderr was replaced and the old stream closed (pytest's capture, notebooks) logs normally."""
import io
import logging
import sys

from graphtrain.log import LOGGER_NAME, get_logger, setup_logging


def test_log_follows_a_replaced_stderr(monkeypatch):
    logger = logging.getLogger(LOGGER_NAME)
    monkeypatch.setattr(logger, "handlers", [])
    first = io.StringIO()
    monkeypatch.setattr(sys, "stderr", first)
    setup_logging()
    get_logger("t").info("one")
    assert "one" in first.getvalue()
    first.close()
    second = io.StringIO()
    monkeypatch.setattr(sys, "stderr", second)
    setup_logging()  # a second entry point call adds no handler
    get_logger("t").info("two")
    assert len(logger.handlers) == 1
    assert second.getvalue().endswith("INFO graphtrain.t: two\n") and "Logging error" not in second.getvalue()
