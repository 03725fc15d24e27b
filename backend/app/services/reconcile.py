"""Reconciliation: settle image rows whose S3 events were lost, from what S3 holds.

Events can be lost: locally the queue went down with the S3 server; in AWS a message that failed five
times (the database was down) waits in the dead-letter queue. Its row then stays `uploaded` (or
`pending`) forever. This settles such rows once they are older than RECONCILE_AFTER_MINUTES:

- `pending` with the original in S3 -> `uploaded` (then as below);
- `uploaded` with a rendition (`.webp`, or `.jpg` from the compressor's JPEG fallback) -> `ready`;
- with a refusal marker -> `rejected` (with the marker's reason);
- with neither, the compressor is run again on the original (`recompress`: in AWS an asynchronous
  invoke of the compressor Lambda, locally the dispatcher's call of its handler); whatever it writes
  settles the row, now (a synchronous run) or through its event or the next reconciliation.

Rows younger than the limit are never touched: their events may still be on the way. Every move is the
event worker's own conditional update, so a reconciliation racing a late event is harmless. Used by
`python -m app.cleanup` (scheduled in AWS) and by the local dispatcher (every minute).
"""

from __future__ import annotations

import json
import logging
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import anyio.to_thread
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from sqlmodel import col

from app.core.config import Settings
from app.crud import images
from app.models import Image, ImageState
from app.services.images import DEFAULT_REJECTION
from app.services.storage import ImageStorage
from yoctogram_common import keys

log = logging.getLogger("app.reconcile")

Recompress = Callable[[dict[str, Any]], Awaitable[None]]
"""Runs the compressor on one `Object Created` event (EventBridge shape, which the compressor accepts)."""


@dataclass
class ReconcileReport:
    uploaded: int = 0  # pending rows whose original was there
    ready: int = 0
    rejected: int = 0
    recompressed: int = 0  # originals handed to the compressor again
    unsettled: int = 0  # rows left as they were: no output, and no original or no compressor


def compressor_event(bucket: str, key: str) -> dict[str, Any]:
    """An EventBridge `Object Created` event for one original: what the compressor gets in AWS."""
    return {
        "version": "0",
        "source": "aws.s3",
        "detail-type": "Object Created",
        "detail": {"bucket": {"name": bucket}, "object": {"key": key}, "reason": "Reconciliation"},
    }


async def _stuck(session: AsyncSession, *, cutoff: datetime, limit: int) -> list[Image]:
    """Rows `uploaded` since before `cutoff`, then rows `pending` since before it (oldest first)."""
    uploaded = await session.execute(
        sa.select(Image)
        .where(col(Image.state) == ImageState.UPLOADED.value, col(Image.updated_at) < cutoff)
        .order_by(col(Image.updated_at))
        .limit(limit)
    )
    pending = await session.execute(
        sa.select(Image)
        .where(col(Image.state) == ImageState.PENDING.value, col(Image.created_at) < cutoff)
        .order_by(col(Image.created_at).desc())  # the newest first: the oldest are the cleanup's
        .limit(limit)
    )
    return [*uploaded.scalars(), *pending.scalars()]


async def _settle_from_outputs(
    session: AsyncSession, storage: ImageStorage, row: Image, report: ReconcileReport
) -> bool:
    """Move the row to `ready` or `rejected` if the compressor's output is there; True when it was."""
    for ext in keys.RENDITION_EXTENSIONS:
        if await storage.exists(key=keys.rendition_key(row.privacy, str(row.id), ext), public=row.public):
            if await images.move(session, row.id, ImageState.READY, rendition_ext=ext):
                report.ready += 1
            return True
    marker_key = keys.rejected_key(row.privacy, str(row.id))
    if await storage.exists(key=marker_key, public=row.public):
        marker = await storage.read_json(key=marker_key, public=row.public)
        reason = str((marker or {}).get("reason") or DEFAULT_REJECTION)[:500]
        if await images.move(session, row.id, ImageState.REJECTED, reason=reason):
            report.rejected += 1
        return True
    return False


async def reconcile(
    sessionmaker: async_sessionmaker[AsyncSession],
    storage: ImageStorage,
    *,
    older_than: timedelta,
    recompress: Recompress | None,
    limit: int = 200,
    now: datetime | None = None,
) -> ReconcileReport:
    """Settle up to `limit` stuck `uploaded` and `limit` stuck `pending` rows (see the module docstring)."""
    cutoff = (now or datetime.now(UTC)) - older_than
    report = ReconcileReport()
    async with sessionmaker() as session:
        rows = await _stuck(session, cutoff=cutoff, limit=limit)
    for row in rows:
        async with sessionmaker() as session:
            await _reconcile_row(session, storage, row, recompress, report)
            await session.commit()
    if rows:
        log.info("reconciled stuck images", extra={**report.__dict__, "examined": len(rows)})
    return report


async def _reconcile_row(
    session: AsyncSession,
    storage: ImageStorage,
    row: Image,
    recompress: Recompress | None,
    report: ReconcileReport,
) -> None:
    image_id: uuid.UUID = row.id
    original = await storage.exists(key=row.original_key, public=row.public)
    if row.state == ImageState.PENDING.value:
        if not original:
            return  # not uploaded (yet): the cleanup removes it once it is a day old
        report.uploaded += await images.move(session, image_id, ImageState.UPLOADED)
    if await _settle_from_outputs(session, storage, row, report):
        return
    if not original or recompress is None:
        report.unsettled += 1
        log.warning(
            "image stuck in uploaded: no rendition, no refusal marker, %s",
            "no original" if not original else "and no compressor to run",
            extra={"image_id": str(image_id)},
        )
        return
    await recompress(compressor_event(storage.bucket(row.public), row.original_key))
    report.recompressed += 1
    await _settle_from_outputs(session, storage, row, report)  # a synchronous compressor is done by now


def lambda_recompressor(settings: Settings) -> Recompress | None:
    """Invoke the compressor Lambda asynchronously (InvocationType Event), when its name is set."""
    name = settings.COMPRESSOR_FUNCTION_NAME
    if not name:
        return None
    import boto3  # imported on first use: it is slow to import, and not every process needs it
    from botocore.config import Config

    client = boto3.client(
        "lambda",
        region_name=settings.AWS_DEFAULT_REGION,
        config=Config(
            retries={"max_attempts": settings.S3_MAX_ATTEMPTS, "mode": "standard"},
            connect_timeout=settings.S3_CONNECT_TIMEOUT_SECONDS,
            read_timeout=settings.S3_READ_TIMEOUT_SECONDS,
        ),
    )

    async def invoke(event: dict[str, Any]) -> None:
        payload = json.dumps(event).encode()
        await anyio.to_thread.run_sync(
            lambda: client.invoke(FunctionName=name, InvocationType="Event", Payload=payload)
        )

    return invoke
