"""Logging set-up: a run's console keeps testbed's lines, library chatter goes to its log."""

from __future__ import annotations

import io
import logging
from collections.abc import Iterator

import pytest
import structlog

from testbed.logconfig import configure_logging


@pytest.fixture(autouse=True)
def _restore_logging() -> Iterator[None]:
    saved = structlog.get_config()
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    yield
    structlog.configure(**saved)
    root.handlers[:] = handlers
    root.setLevel(level)


def test_library_warnings_go_only_to_the_library_log() -> None:
    """asyncua's warning lands in the run log only; its error and our warning on the console."""
    console, run_log = io.StringIO(), io.StringIO()
    configure_logging("console", "warning", stream=console, library_log=run_log)
    logging.getLogger("asyncua.client").warning("close_secure_channel was called")
    logging.getLogger("pymodbus.logging").error("received pdu without a request")
    structlog.get_logger("testbed.x").warning("plc_outage_seen")
    assert "close_secure_channel" in run_log.getvalue()
    assert "close_secure_channel" not in console.getvalue()
    assert "received pdu" in console.getvalue()
    assert "received pdu" not in run_log.getvalue()  # the console stream holds it once
    assert "plc_outage_seen" in console.getvalue()


def test_without_a_library_log_everything_goes_to_the_stream() -> None:
    """The default keeps the libraries' warnings on the one stream."""
    console = io.StringIO()
    configure_logging("json", "warning", stream=console)
    logging.getLogger("asyncua.client").warning("close_secure_channel was called")
    assert "close_secure_channel" in console.getvalue()
