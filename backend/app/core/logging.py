"""JSON logs, one object a line, each carrying the id of the request that caused it (the format is
yoctogram_common.jsonlog's, shared with the compressor)."""

from __future__ import annotations

import logging

from yoctogram_common.jsonlog import JsonFormatter, json_handler
from yoctogram_common.jsonlog import request_id as request_id_var

__all__ = ["JsonFormatter", "configure_logging", "request_id_var"]


def configure_logging(level: str = "INFO") -> None:
    """Route every logger (ours, uvicorn's, SQLAlchemy's) through the JSON formatter on stdout."""
    root = logging.getLogger()
    root.handlers[:] = [json_handler()]
    root.setLevel(level.upper())
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access"):
        logger = logging.getLogger(name)
        logger.handlers[:] = []
        logger.propagate = True
    logging.getLogger("uvicorn.access").disabled = True  # our middleware logs each request once
    for noisy in ("botocore", "boto3", "urllib3", "s3transfer"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
