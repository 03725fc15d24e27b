"""The one log format of the backend's processes and the compressor: JSON, one object a line, with
`time` (UTC, ms), `level`, `logger`, `message`, `request_id` (the HTTP request, Lambda invocation or queue
message being handled; `-` outside one), then any `extra=` fields and `exception`."""

from __future__ import annotations

import json
import logging
import sys
from contextvars import ContextVar
from datetime import UTC, datetime

LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR")
NO_REQUEST = "-"

request_id: ContextVar[str] = ContextVar("request_id", default=NO_REQUEST)
"""The id of what is being handled, set by whoever handles it (the API's middleware, the Lambda handler)."""

# Attributes every LogRecord has; anything else was passed through `extra=` and is logged as a field.
_STANDARD = frozenset(vars(logging.LogRecord("", 0, "", 0, "", (), None))) | {"message", "asctime"}


class JsonFormatter(logging.Formatter):
    """Formats a record as one JSON object (the module docstring lists its fields)."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, object] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
            "request_id": getattr(record, "request_id", None) or request_id.get(),
        }
        for name, value in vars(record).items():
            if name not in _STANDARD and name not in entry and not name.startswith("_"):
                entry[name] = value
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry, default=str, ensure_ascii=False)


def check_level(level: str) -> str:
    """`level`, upper-cased; ValueError (naming the choices) for anything else."""
    if level.upper() not in LEVELS:
        raise ValueError(f"LOG_LEVEL must be one of {', '.join(LEVELS)}, not {level!r}")
    return level.upper()


def json_handler() -> logging.Handler:
    handler = logging.StreamHandler(sys.stdout)
    handler.setFormatter(JsonFormatter())
    return handler


def configure(*names: str, level: str = "INFO") -> None:
    """One JSON handler on stdout for each named logger (added once), at `level`; they do not propagate, so
    a host's root handler (Lambda's own) does not print each line a second time in another format."""
    level = check_level(level)
    for name in names:
        logger = logging.getLogger(name)
        if not any(isinstance(handler.formatter, JsonFormatter) for handler in logger.handlers):
            logger.addHandler(json_handler())
        logger.setLevel(level)
        logger.propagate = False
