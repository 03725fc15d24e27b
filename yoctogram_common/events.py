"""Turn an invocation event into the list of S3 objects that were created.

Accepted shapes (docs/design.md, "How the service learns what happened in S3"):

* S3 event notifications: ``{"Records": [{"eventSource": "aws:s3", "eventName": "ObjectCreated:Put",
  "s3": {"bucket": {"name": ...}, "object": {"key": ..., "eTag": ..., "size": ...}}}, ...]}``. Every record
  is used; keys are URL-encoded in this shape (a space arrives as ``+``) and are decoded here.
* EventBridge: ``{"source": "aws.s3", "detail-type": "Object Created", "detail": {"bucket": {"name": ...},
  "object": {"key": ..., "etag": ..., "size": ...}}}``. Its keys are documented as plain keys and are
  used as they are.
* An SQS batch (``"eventSource": "aws:sqs"`` records) whose bodies hold either shape, as the local queue
  delivers them.

Anything else (S3 test events, deletions) yields no objects and is logged. A message of no known shape
yields none too, or, with `strict=True` (the event worker, which leaves such a message for the dead-letter
queue), raises `UnknownEvent`.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote_plus

logger = logging.getLogger("yoctogram_common.events")


class UnknownEvent(ValueError):
    """A message of no shape this module knows (`parse_event(..., strict=True)`)."""


@dataclass(frozen=True)
class CreatedObject:
    """One object that an event reports as created."""

    bucket: str
    key: str
    etag: str | None
    size: int | None
    shape: str  # "s3" or "eventbridge": which event shape reported it


def normalize_etag(etag: object) -> str | None:
    """An ETag without the quotes S3 puts around it in HTTP headers (events carry it bare)."""
    if not isinstance(etag, str) or not etag.strip('" '):
        return None
    return etag.strip('" ')


def parse_event(event: object, *, strict: bool = False) -> list[CreatedObject]:
    """Every created object named by ``event``, in event order; with ``strict``, ``UnknownEvent`` for a
    message of no known shape instead of an empty list."""
    if not isinstance(event, Mapping):
        return _unknown(strict, "an event that is not a JSON object", event_type=type(event).__name__)
    if "Records" in event:
        if not isinstance(event["Records"], list):
            return _unknown(strict, "an event whose Records is not a list")
        return _parse_records(event["Records"])
    if event.get("source") == "aws.s3" and isinstance(event.get("detail"), Mapping):
        return _parse_eventbridge(event, strict)
    if event.get("Event") == "s3:TestEvent":
        logger.info("ignoring S3 test event", extra={"bucket": event.get("Bucket")})
        return []
    return _unknown(strict, "an event of unknown shape", event_keys=sorted(map(str, event))[:10])


def _unknown(strict: bool, what: str, **extra: object) -> list[CreatedObject]:
    if strict:
        raise UnknownEvent(what)
    logger.warning(f"ignoring {what}", extra=extra)
    return []


def _parse_records(records: list[object]) -> list[CreatedObject]:
    created: list[CreatedObject] = []
    for index, record in enumerate(records):
        if not isinstance(record, Mapping):
            logger.warning("ignoring a record that is not an object", extra={"record_index": index})
            continue
        source = record.get("eventSource")
        if source == "aws:sqs":
            created.extend(_parse_sqs_body(record.get("body"), index))
        elif source == "aws:s3" or "s3" in record:
            item = _parse_s3_record(record, index)
            if item is not None:
                created.append(item)
        else:
            logger.warning("ignoring a record from an unknown source", extra={"record_index": index})
    return created


def _parse_sqs_body(body: object, index: int) -> list[CreatedObject]:
    try:
        payload = json.loads(body) if isinstance(body, str) else None
    except json.JSONDecodeError:
        payload = None
    if payload is None:
        logger.warning("ignoring an SQS record whose body is not JSON", extra={"record_index": index})
        return []
    return parse_event(payload)


def _parse_s3_record(record: Mapping[str, Any], index: int) -> CreatedObject | None:
    event_name = str(record.get("eventName", ""))
    if not event_name.startswith("ObjectCreated:"):
        logger.info("ignoring a non-creation record", extra={"record_index": index, "event_name": event_name})
        return None
    try:
        s3 = record["s3"]
        bucket = s3["bucket"]["name"]
        obj = s3["object"]
        key = unquote_plus(obj["key"])
        if not isinstance(bucket, str):
            raise TypeError(bucket)
    except (KeyError, TypeError):
        logger.warning("ignoring a malformed S3 record", extra={"record_index": index})
        return None
    return CreatedObject(bucket, key, normalize_etag(obj.get("eTag")), _size(obj.get("size")), "s3")


def _parse_eventbridge(event: Mapping[str, Any], strict: bool) -> list[CreatedObject]:
    detail_type = event.get("detail-type")
    if detail_type != "Object Created":
        logger.info(
            "ignoring an EventBridge event that is not Object Created", extra={"detail_type": detail_type}
        )
        return []
    try:
        detail = event["detail"]
        bucket = detail["bucket"]["name"]
        obj = detail["object"]
        key = obj["key"]
    except (KeyError, TypeError):
        key = bucket = None
    if not isinstance(bucket, str) or not isinstance(key, str):
        return _unknown(strict, "a malformed EventBridge event", event_id=event.get("id"))
    return [
        CreatedObject(bucket, key, normalize_etag(obj.get("etag")), _size(obj.get("size")), "eventbridge")
    ]


def _size(value: object) -> int | None:
    try:
        size = int(value)  # type: ignore[call-overload]
    except (TypeError, ValueError):
        return None
    return size if size >= 0 else None
