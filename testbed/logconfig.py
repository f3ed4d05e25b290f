"""structlog configured in one place: console for people, JSON for machines.

Stdlib loggers (asyncua, pymodbus, amqtt) are routed through the same
processors so every line has one shape. `ErrorTally` lets `testbed boot`
fail a run on any logged error, as FORTE's hard system tests do.
"""

from __future__ import annotations

import logging
import sys
import threading
from collections.abc import MutableMapping
from typing import Any, Literal, TextIO

import structlog

LogFormat = Literal["console", "json"]

__all__ = ["ErrorTally", "LogFormat", "configure_logging", "error_tally"]


class ErrorTally:
    """Counts log events at error level or above (thread-safe)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.errors = 0
        self.warnings = 0

    def __call__(
        self, _logger: Any, method_name: str, event_dict: MutableMapping[str, Any]
    ) -> MutableMapping[str, Any]:
        # structlog processor signature: logger and event dict are untyped by design
        level = str(event_dict.get("level", method_name)).lower()
        if level in ("error", "critical", "exception"):
            with self._lock:
                self.errors += 1
        elif level == "warning":
            with self._lock:
                self.warnings += 1
        return event_dict

    def reset(self) -> None:
        with self._lock:
            self.errors = 0
            self.warnings = 0


error_tally = ErrorTally()
"""The process-wide tally; `configure_logging` installs it as a processor."""

class _StderrProxy:
    """Writes to whatever `sys.stderr` is at the time (pytest swaps and closes it)."""

    def write(self, text: str) -> int:
        return sys.stderr.write(text)

    def flush(self) -> None:
        sys.stderr.flush()


_LEVELS = {"debug": logging.DEBUG, "info": logging.INFO, "warning": logging.WARNING,
           "error": logging.ERROR}


def configure_logging(
    fmt: LogFormat = "console", level: str = "info", stream: TextIO | None = None,
    library_log: TextIO | None = None,
) -> None:
    """Configure structlog and the stdlib root logger; safe to call again.

    With `library_log` (a run's log file), third-party records below ERROR (asyncua's and
    pymodbus's reconnect chatter while a fault is injected) go only there; `stream` keeps
    testbed's own lines and the libraries' errors.
    """
    out: Any = stream or _StderrProxy()
    numeric = _LEVELS.get(level.lower(), logging.INFO)
    shared: list[Any] = [
        structlog.contextvars.merge_contextvars,
        structlog.processors.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        error_tally,
    ]
    renderer: Any = (
        structlog.processors.JSONRenderer()
        if fmt == "json"
        else structlog.dev.ConsoleRenderer(colors=False)
    )
    structlog.configure(
        processors=[
            *shared,
            structlog.processors.StackInfoRenderer(),
            structlog.processors.format_exc_info,
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(numeric),
        logger_factory=structlog.PrintLoggerFactory(out),
        cache_logger_on_first_use=False,
    )
    formatter = structlog.stdlib.ProcessorFormatter(
        processors=[structlog.stdlib.ProcessorFormatter.remove_processors_meta, renderer],
        # third-party errors are not counted: drivers report their own faults
        foreign_pre_chain=[structlog.stdlib.add_logger_name,
                           *(p for p in shared if p is not error_tally)],
    )
    handler = logging.StreamHandler(out)
    handler.setFormatter(formatter)
    handlers: list[logging.Handler] = [handler]
    if library_log is not None:
        handler.setLevel(logging.ERROR)
        quiet = logging.StreamHandler(library_log)
        quiet.setFormatter(formatter)
        quiet.addFilter(lambda record: record.levelno < logging.ERROR)
        handlers.append(quiet)
    root = logging.getLogger()
    root.handlers[:] = handlers
    root.setLevel(numeric)
    # third-party stacks are chatty at INFO; keep their warnings and errors
    for noisy in ("asyncua", "pymodbus", "amqtt", "transitions"):
        logging.getLogger(noisy).setLevel(max(numeric, logging.WARNING))
