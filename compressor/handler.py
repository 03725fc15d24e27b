"""Lambda entry point of the compressor: S3 I/O around the pure image code of ``rendition``.

``handler(event, context)`` takes an S3 notification, an EventBridge ``Object Created`` event or an SQS batch
of either (see ``yoctogram_common.events``) and, for every original named in it, writes the rendition next to it in the
same bucket, or a refusal marker for a file that is not a usable image. Keys outside ``{privacy}/originals/``
(renditions, markers) are ignored, so the function never feeds on its own output.

Idempotent: outputs carry the original's ETag in their ``source-etag`` metadata, and an original whose
rendition or marker already has that ETag is skipped without being downloaded.

Bad input (non-images, truncated files, bombs) is a result, not an error: it gets a marker, the refused
original is moved to ``{privacy}/quarantine/`` (never served) and the invocation succeeds. Real faults (S3 unreachable, access denied) are raised after every object of the
event has been tried, so Lambda retries the event and the objects already done are skipped.

The local dispatcher calls ``handler(event, None, s3_client=client)`` with its own client pointed at the
local S3 endpoint. boto3 is imported only when a client is first needed, which keeps imports cheap.
"""

from __future__ import annotations

import json
import logging
import os
import threading
import time
from collections import Counter
from collections.abc import Mapping
from typing import Any

from rendition import RejectedImage, Rendition, RenditionOptions, make_rendition
from yoctogram_common import jsonlog
from yoctogram_common.events import CreatedObject, normalize_etag, parse_event
from yoctogram_common.keys import ImageKey, parse_key

jsonlog.configure("compressor", "yoctogram_common", level=os.environ.get("LOG_LEVEL", "INFO"))
logger = logging.getLogger("compressor")

SOURCE_ETAG_METADATA = "source-etag"  # S3 user metadata (x-amz-meta-source-etag) on every output
# Renditions never change once written (a new upload gets a new image id), so caches may keep them.
RENDITION_CACHE_CONTROL = {
    "public": "public, max-age=31536000, immutable",
    "private": "private, max-age=31536000, immutable",
}
MARKER_CACHE_CONTROL = "no-cache"
_MISSING_CODES = frozenset({"404", "NoSuchKey", "NotFound"})

_options: RenditionOptions | None = None
_s3_client: Any = None
_s3_client_lock = threading.Lock()


def handler(
    event: Mapping[str, Any],
    context: Any = None,
    *,
    s3_client: Any = None,
    options: RenditionOptions | None = None,
) -> dict[str, Any]:
    """Process every created object in ``event``; return a summary (outcome per object).

    ``s3_client`` (a boto3 S3 client) and ``options`` replace the defaults built from the environment.
    Raises the first real fault after trying every object, so that the event is retried.
    """
    token = jsonlog.request_id.set(getattr(context, "aws_request_id", None) or jsonlog.NO_REQUEST)
    try:
        return process_event(event, s3_client=s3_client, options=options or current_options())
    finally:
        jsonlog.request_id.reset(token)


def current_options() -> RenditionOptions:
    """Options from the process environment, read once (a bad value fails the first invocation loudly)."""
    global _options
    if _options is None:
        _options = RenditionOptions.from_env(os.environ)
    return _options


def default_s3_client() -> Any:
    """The process-wide boto3 S3 client, created on first use."""
    global _s3_client
    with _s3_client_lock:
        if _s3_client is None:
            import boto3
            from botocore.config import Config

            _s3_client = boto3.client(
                "s3",
                config=Config(
                    retries={"mode": "standard", "max_attempts": 3}, connect_timeout=5, read_timeout=30
                ),
            )
        return _s3_client


def process_event(
    event: Mapping[str, Any], *, s3_client: Any = None, options: RenditionOptions
) -> dict[str, Any]:
    """Handle each created object of ``event`` in order; see :func:`handler`."""
    objects = parse_event(event)
    results: list[dict[str, Any]] = []
    failures: list[Exception] = []
    for obj in objects:
        try:
            results.append(process_object(obj, s3_client=s3_client, options=options))
        except Exception as exc:  # every object is tried; the first fault is re-raised below
            logger.exception(
                "failed to process an object; the event will be retried",
                extra={"bucket": obj.bucket, "key": obj.key},
            )
            failures.append(exc)
            results.append({"bucket": obj.bucket, "key": obj.key, "outcome": "failed"})
    outcomes = dict(Counter(result["outcome"] for result in results))
    logger.info("event processed", extra={"objects": len(objects), "outcomes": outcomes})
    if failures:
        raise failures[0]
    return {"objects": len(objects), "outcomes": outcomes, "results": results}


def process_object(obj: CreatedObject, *, s3_client: Any = None, options: RenditionOptions) -> dict[str, Any]:
    """Make the rendition (or the refusal marker) of one created object.

    Outcomes: ``created``, ``rejected``, ``skipped`` (this version was done before), ``ignored`` (not an
    original's key), ``missing`` (the original is gone).
    """
    result: dict[str, Any] = {"bucket": obj.bucket, "key": obj.key}
    original = parse_key(obj.key)
    if original is None or original.kind != "original":
        logger.info("ignoring a key that is not an original", extra=result)
        return {**result, "outcome": "ignored"}
    client = s3_client if s3_client is not None else default_s3_client()
    rendition_key = original.rendition_key(options.extension)

    etag = obj.etag
    if etag is None:
        head = _head(client, obj.bucket, obj.key)
        if head is None:
            logger.warning("the original no longer exists", extra=result)
            return {**result, "outcome": "missing"}
        etag = normalize_etag(head.get("ETag"))
    existing = {
        rendition_key: _head(client, obj.bucket, rendition_key),
        original.rejected_key: _head(client, obj.bucket, original.rejected_key),
    }
    done = _output_for(existing, etag)
    if done is not None:
        logger.info(
            "this version of the original was already processed", extra={**result, "output_key": done}
        )
        if done == original.rejected_key:  # a retry after the marker was written: finish the move
            _quarantine(client, obj.bucket, original, etag)
        return {**result, "outcome": "skipped", "output_key": done}

    started = time.perf_counter()
    try:
        response = client.get_object(Bucket=obj.bucket, Key=obj.key)
    except Exception as exc:
        if _error_code(exc) in _MISSING_CODES:
            logger.warning("the original no longer exists", extra=result)
            return {**result, "outcome": "missing"}
        raise
    source_etag = normalize_etag(response.get("ETag")) or etag or ""
    if source_etag != etag:
        # The original was replaced after this event was sent: its own event may already have done the work.
        done = _output_for(existing, source_etag)
        if done is not None:
            response["Body"].close()
            return {**result, "outcome": "skipped", "output_key": done}

    try:
        data, rendition = _render(response, options)
    except RejectedImage as rejected:
        _reject(client, obj, original, rejected, source_etag, result)
        return {**result, "outcome": "rejected", "code": rejected.code, "output_key": original.rejected_key}
    _store_rendition(client, obj.bucket, rendition_key, original, rendition, source_etag)
    if existing[original.rejected_key] is not None:
        client.delete_object(Bucket=obj.bucket, Key=original.rejected_key)
    logger.info(
        "rendition written",
        extra={
            **result,
            "rendition_key": rendition_key,
            "source_format": rendition.source_format,
            "source_size": f"{rendition.source_width}x{rendition.source_height}",
            "size": f"{rendition.width}x{rendition.height}",
            "source_bytes": len(data),
            "rendition_bytes": len(rendition.data),
            "ratio": round(len(rendition.data) / len(data), 3),
            "quality": rendition.quality,
            "duration_ms": round((time.perf_counter() - started) * 1000, 1),
        },
    )
    return {**result, "outcome": "created", "output_key": rendition_key}


def _render(response: Mapping[str, Any], options: RenditionOptions) -> tuple[bytes, Rendition]:
    """The original's bytes (from a ``get_object`` answer) and their rendition; ``RejectedImage`` for a file
    over the size limit (not read) or one that is not an image we render."""
    source_bytes = int(response.get("ContentLength") or 0)
    if source_bytes > options.max_source_bytes:
        response["Body"].close()
        raise RejectedImage(
            "too_large",
            f"the file has {source_bytes} bytes, more than the limit of {options.max_source_bytes}",
        )
    data: bytes = response["Body"].read()
    return data, make_rendition(data, options)


def _reject(
    client: Any,
    obj: CreatedObject,
    original: ImageKey,
    rejected: RejectedImage,
    source_etag: str,
    result: Mapping[str, Any],
) -> None:
    """Write the refusal marker, then move the refused file out of the served prefix."""
    marker = json.dumps(
        {"code": rejected.code, "reason": rejected.reason, "source_etag": source_etag, "source_key": obj.key}
    ).encode()
    client.put_object(
        Bucket=obj.bucket,
        Key=original.rejected_key,
        Body=marker,
        ContentType="application/json",
        CacheControl=MARKER_CACHE_CONTROL,
        Metadata={SOURCE_ETAG_METADATA: source_etag},
    )
    # A rendition of an earlier version is kept: a `ready` row may point at it (a form re-POSTed with a bad
    # file), and a feed must never point at a missing rendition. The refused file itself leaves the served
    # prefix, after the marker, so that a retry finds the marker and finishes the move.
    quarantined = _quarantine(client, obj.bucket, original, source_etag)
    logger.warning(
        "refused the original",
        extra={
            **result,
            "code": rejected.code,
            "reason": rejected.reason,
            "marker_key": original.rejected_key,
            "quarantine_key": original.quarantine_key if quarantined else None,
        },
    )


def _store_rendition(
    client: Any, bucket: str, key: str, original: ImageKey, rendition: Rendition, source_etag: str
) -> None:
    client.put_object(
        Bucket=bucket,
        Key=key,
        Body=rendition.data,
        ContentType=rendition.content_type,
        CacheControl=RENDITION_CACHE_CONTROL[original.privacy],
        Metadata={
            SOURCE_ETAG_METADATA: source_etag,
            "width": str(rendition.width),
            "height": str(rendition.height),
        },
    )


def _quarantine(client: Any, bucket: str, original: ImageKey, etag: str | None) -> bool:
    """Move the refused version ``etag`` of the original out of the served prefix (copy, then delete).

    The copy is conditional on the ETag, so a newer original POSTed meanwhile is left for its own event;
    False when there was nothing (left) to move.
    """
    if not etag:
        return False
    try:
        copied = client.copy_object(
            Bucket=bucket,
            Key=original.quarantine_key,
            CopySource={"Bucket": bucket, "Key": original.key},
            CopySourceIfMatch=f'"{etag}"',
            MetadataDirective="COPY",
        )
    except Exception as exc:
        if _error_code(exc) in _MISSING_CODES | {"PreconditionFailed", "412"}:
            return False
        raise
    # The same check again for servers that ignore the condition (moto): the version copied is the one
    # refused. A single-part copy keeps the source's ETag.
    if normalize_etag(copied.get("CopyObjectResult", {}).get("ETag")) != etag:
        return False
    client.delete_object(Bucket=bucket, Key=original.key)
    return True


def _output_for(existing: Mapping[str, Mapping[str, Any] | None], etag: str | None) -> str | None:
    """The key of an existing output made from the original version ``etag``, if any."""
    if not etag:
        return None
    for key, head in existing.items():
        if head is not None and head.get("Metadata", {}).get(SOURCE_ETAG_METADATA) == etag:
            return key
    return None


def _head(client: Any, bucket: str, key: str) -> dict[str, Any] | None:
    """``head_object``, or ``None`` when the key does not exist (any other error is a real fault)."""
    try:
        head: dict[str, Any] = client.head_object(Bucket=bucket, Key=key)
    except Exception as exc:
        if _error_code(exc) in _MISSING_CODES:
            return None
        raise
    return head


def _error_code(exc: BaseException) -> str | None:
    # botocore's ClientError carries the S3 error code; checked structurally so botocore need not be imported.
    response = getattr(exc, "response", None)
    if isinstance(response, Mapping):
        return str(response.get("Error", {}).get("Code"))
    return None
