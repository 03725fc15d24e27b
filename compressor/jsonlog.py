"""Structured JSON logs on stdout, one object per line (Powertools' shape, without the dependency)."""

from __future__ import annotations

import json
import logging
import sys
import time
from contextvars import ContextVar

SERVICE = "compressor"
LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR")

# The Lambda request id (or the dispatcher's message id) of the invocation being handled, per thread.
request_id: ContextVar[str | None] = ContextVar("compressor_request_id", default=None)

# Attributes every LogRecord has; anything else was passed through ``extra=`` and is logged as a field.
_RECORD_FIELDS = frozenset(vars(logging.LogRecord("", 0, "", 0, "", (), None))) | {"message", "asctime"}


class JsonFormatter(logging.Formatter):
    """Formats a record as one JSON object: level, timestamp, service, logger, location, message, extras."""

    def format(self, record: logging.LogRecord) -> str:
        """The record as a single line of JSON."""
        entry: dict[str, object] = {
            "level": record.levelname,
            "timestamp": _timestamp(record.created),
            "service": SERVICE,
            "logger": record.name,
            "location": f"{record.funcName}:{record.lineno}",
            "message": record.getMessage(),
        }
        current_request = request_id.get()
        if current_request:
            entry["request_id"] = current_request
        for name, value in vars(record).items():
            if name not in _RECORD_FIELDS and not name.startswith("_"):
                entry[name] = value
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
            entry["exception_name"] = record.exc_info[0].__name__ if record.exc_info[0] else None
        return json.dumps(entry, default=str, ensure_ascii=False)


def _timestamp(created: float) -> str:
    seconds = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(created))
    return f"{seconds}.{int(created % 1 * 1000):03d}Z"


def configure(name: str = SERVICE, level: str = "INFO") -> logging.Logger:
    """The named logger with one JSON handler on stdout (added once), at ``level``.

    It does not propagate to the root logger, whose handler (Lambda's own, or a host process's) would
    print every line a second time in another format.
    """
    if level.upper() not in LOG_LEVELS:
        raise ValueError(f"LOG_LEVEL must be one of {', '.join(LOG_LEVELS)}, not {level!r}")
    logger = logging.getLogger(name)
    if not any(isinstance(handler.formatter, JsonFormatter) for handler in logger.handlers):
        handler = logging.StreamHandler(sys.stdout)
        handler.setFormatter(JsonFormatter())
        logger.addHandler(handler)
    logger.setLevel(level.upper())
    logger.propagate = False
    return logger
