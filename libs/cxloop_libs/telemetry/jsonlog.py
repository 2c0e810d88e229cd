"""JSON lines on stdout, one object per record, carrying the active trace and
span ids so a log line can be found from a trace and the other way round."""

from __future__ import annotations

import json
import logging
import sys
from datetime import UTC, datetime
from typing import Any

from opentelemetry import trace

# Everything a LogRecord has by itself; whatever else is on a record came from
# the caller's ``extra=`` and is worth keeping.
_STANDARD_ATTRS = frozenset(vars(logging.LogRecord("", 0, "", 0, "", None, None))) | {
    "message",
    "asctime",
    "taskName",  # added to LogRecord in Python 3.12
}
_NOISY_LOGGERS = ("nats", "grpc", "uvicorn.access")

# The handler this module installed, so a second configure replaces it
# instead of printing every line twice.
_installed_handler: logging.Handler | None = None


class JsonLogFormatter(logging.Formatter):
    def __init__(self, service: str) -> None:
        super().__init__()
        self.service = service

    def format(self, record: logging.LogRecord) -> str:
        payload: dict[str, Any] = {
            "ts": datetime.fromtimestamp(record.created, UTC)
            .isoformat(timespec="milliseconds")
            .replace("+00:00", "Z"),
            "level": record.levelname,
            "logger": record.name,
            "msg": record.getMessage(),
            "service": self.service,
        }
        span_context = trace.get_current_span().get_span_context()
        if span_context.is_valid:
            payload["trace_id"] = format(span_context.trace_id, "032x")
            payload["span_id"] = format(span_context.span_id, "016x")
        for key, value in vars(record).items():
            # setdefault: an extra named like one of our keys must not overwrite it.
            if key not in _STANDARD_ATTRS:
                payload.setdefault(key, value)
        if record.exc_info:
            payload["exc"] = self.formatException(record.exc_info)
        if record.stack_info:
            payload["stack"] = self.formatStack(record.stack_info)
        # default=str: one odd extra value must not cost the whole line.
        return json.dumps(payload, default=str)


def configure_logging(service: str, log_level: str = "INFO") -> None:
    """Make the root logger write JSON lines to stdout at ``log_level``."""
    global _installed_handler
    root = logging.getLogger()
    for handler in list(root.handlers):
        # Plain stream handlers are basicConfig leftovers that would print each
        # line a second time as text; subclasses (pytest's capture) stay.
        if handler is _installed_handler or type(handler) is logging.StreamHandler:
            root.removeHandler(handler)
    handler = logging.StreamHandler(sys.stdout)
    handler.setFormatter(JsonLogFormatter(service))
    root.addHandler(handler)
    root.setLevel(log_level.upper())
    _installed_handler = handler
    for name in _NOISY_LOGGERS:
        logging.getLogger(name).setLevel(logging.WARNING)
