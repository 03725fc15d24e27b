"""The event worker: `python -m app.events`. Learns from S3 events what exists, and moves image rows.

docs/design.md, "How the service learns what happened in S3": it consumes the event queue, accepts both
event shapes (S3 notification records and EventBridge `Object Created`), and moves rows
pending -> uploaded -> ready | rejected with conditional updates, so events are idempotent and may come
in any order. Files of an image whose row does not exist (deleted while its upload form was still valid)
are deleted. A message is deleted only after its changes are committed: a crash or a database outage
loses nothing, the message simply comes back. A message of no known shape is left alone and reaches
the dead-letter queue after a few receives, where a person can look at it.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import signal
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
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
from yoctogram_common.events import UnknownEvent, parse_event

log = logging.getLogger("app.events")


@dataclass(frozen=True)
class ObjectEvent:
    """An object created under originals/ or renditions/ of one image."""

    bucket: str
    key: str
    privacy: str
    image_id: uuid.UUID
    kind: str  # "original", "rendition" or "rejected"
    extension: str | None = None
    """A rendition's extension ("webp", or "jpg" from the compressor's JPEG fallback)."""


def classify(bucket: str, key: str) -> ObjectEvent | None:
    """What an object key means (yoctogram_common.keys), or None for keys that are not ours."""
    parsed = keys.parse_key(key)
    if parsed is None:
        return None
    try:
        image_id = uuid.UUID(parsed.image_id)
    except ValueError:  # a key of the layout, but not one the API made
        return None
    return ObjectEvent(bucket, key, parsed.privacy, image_id, parsed.kind, parsed.extension)


def created_objects(message: Any) -> list[tuple[str, str]] | None:
    """(bucket, key) of every object the message reports as created; None for an unknown shape (left for
    the dead-letter queue)."""
    try:
        return [(item.bucket, item.key) for item in parse_event(message, strict=True)]
    except UnknownEvent:
        return None


def events_in(message: Any, storage: ImageStorage) -> list[ObjectEvent] | None:
    """The image events of one message (keys in the wrong bucket are ignored with a warning)."""
    objects = created_objects(message)
    if objects is None:
        return None
    events = []
    for bucket, key in objects:
        event = classify(bucket, key)
        if event is None:
            log.info("ignoring an object that is not an image key", extra={"bucket": bucket, "key": key})
        elif bucket != storage.bucket(event.privacy == "public"):
            log.warning("ignoring a key in the wrong bucket", extra={"bucket": bucket, "key": key})
        else:
            events.append(event)
    return events


async def apply(session: AsyncSession, storage: ImageStorage, events: list[ObjectEvent]) -> None:
    """Move the rows the events concern, in one transaction (committed here); then delete the files of
    images that have no row.

    A row is made before its upload form exists, so an object whose row is missing belongs to an image
    that was deleted (its form was still valid: S3 cannot revoke it) or to none at all: nothing will ever
    point at it or delete it, so the worker deletes every file of that image id, each time such an event
    comes (the compressor may still be writing the rendition or marker of the original).
    """
    ids = {event.image_id for event in events}
    known = set((await session.execute(sa.select(col(Image.id)).where(col(Image.id).in_(ids)))).scalars())
    orphans = {(event.privacy, event.image_id) for event in events if event.image_id not in known}
    for event in events:
        if event.image_id not in known:
            continue
        if event.kind == "original":
            changed = await images.move(session, event.image_id, ImageState.UPLOADED)
        elif event.kind == "rendition":
            changed = await images.move(
                session, event.image_id, ImageState.READY, rendition_ext=event.extension
            )
        else:
            marker = await storage.read_json(key=event.key, public=event.privacy == "public")
            reason = str((marker or {}).get("reason") or DEFAULT_REJECTION)[:500]
            changed = await images.move(session, event.image_id, ImageState.REJECTED, reason=reason)
        log.info(
            "applied %s event",
            event.kind,
            extra={"image_id": str(event.image_id), "key": event.key, "changed": changed},
        )
    await session.commit()
    for privacy, image_id in sorted(orphans):
        log.warning(
            "deleting the files of an image that does not exist",
            extra={"image_id": str(image_id), "privacy": privacy},
        )
        await storage.delete_all(privacy=privacy, image_id=str(image_id), public=privacy == "public")


BeforeApply = Callable[[Any, list[ObjectEvent]], Awaitable[None]]


class EventWorker:
    """Receives, applies, and only then deletes; one message at a time, in batches of up to 10."""

    def __init__(
        self,
        *,
        sessionmaker: async_sessionmaker[AsyncSession],
        storage: ImageStorage,
        sqs: Any,
        queue_url: str,
        wait_seconds: int = 20,
        retry_after_seconds: int = 10,
        before_apply: BeforeApply | None = None,
    ) -> None:
        self.sessionmaker = sessionmaker
        self.storage = storage
        self.sqs = sqs
        self.queue_url = queue_url
        self.wait_seconds = wait_seconds
        self.retry_after_seconds = retry_after_seconds
        self.before_apply = before_apply

    async def _receive(self) -> list[dict[str, Any]]:
        reply = await anyio.to_thread.run_sync(
            lambda: self.sqs.receive_message(
                QueueUrl=self.queue_url,
                MaxNumberOfMessages=10,
                WaitTimeSeconds=self.wait_seconds,
                AttributeNames=["ApproximateReceiveCount"],
            )
        )
        return list(reply.get("Messages", []))

    async def _settle(self, receipt: str, *, done: bool) -> None:
        if done:
            await anyio.to_thread.run_sync(
                lambda: self.sqs.delete_message(QueueUrl=self.queue_url, ReceiptHandle=receipt)
            )
        else:  # back on the queue after a short pause instead of the full visibility timeout
            await anyio.to_thread.run_sync(
                lambda: self.sqs.change_message_visibility(
                    QueueUrl=self.queue_url, ReceiptHandle=receipt, VisibilityTimeout=self.retry_after_seconds
                )
            )

    async def handle(self, message: dict[str, Any]) -> bool:
        """Process one message; True when it was applied and deleted."""
        try:
            body = json.loads(message.get("Body", ""))
        except ValueError:
            body = None
        events = events_in(body, self.storage)
        if events is None:
            log.error(
                "message of unknown shape left for the dead-letter queue",
                extra={"sqs_id": message.get("MessageId")},
            )
            return False
        try:
            if self.before_apply is not None:
                await self.before_apply(body, events)
            async with self.sessionmaker() as session:
                await apply(session, self.storage, events)
        except Exception:
            log.exception("event not applied; it will come back", extra={"sqs_id": message.get("MessageId")})
            await self._settle(message["ReceiptHandle"], done=False)
            return False
        await self._settle(message["ReceiptHandle"], done=True)
        return True

    async def run_once(self) -> tuple[int, int]:
        """One receive: (messages received, messages applied)."""
        messages = await self._receive()
        applied = 0
        for message in messages:
            applied += await self.handle(message)
        return len(messages), applied

    async def run(self, stop: asyncio.Event) -> None:
        """Until `stop` is set: receive and apply; back off while things fail (e.g. the database is down)."""
        failures = 0
        while not stop.is_set():
            try:
                received, applied = await self.run_once()
                failures = failures + 1 if received and not applied else 0
            except Exception:
                failures += 1
                log.exception("receiving from the queue failed")
            if failures:
                await _sleep_or_stop(stop, min(30.0, 0.5 * 2**failures))


async def _sleep_or_stop(stop: asyncio.Event, seconds: float) -> None:
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(stop.wait(), timeout=seconds)


def make_sqs_client(settings: Settings) -> Any:
    import boto3  # imported on first use: it is slow to import, and not every process needs it

    return boto3.client(
        "sqs", region_name=settings.AWS_DEFAULT_REGION, endpoint_url=settings.AWS_ENDPOINT_URL or None
    )


async def serve(settings: Settings, before_apply: BeforeApply | None = None) -> None:
    """Run a worker until SIGTERM or SIGINT (it finishes the message in hand first)."""
    from app.core.db import make_engine, make_sessionmaker
    from app.services.storage import make_s3_client

    if not settings.EVENT_QUEUE_URL:
        raise SystemExit("EVENT_QUEUE_URL is not set: the event worker needs the queue it consumes")
    engine = make_engine(settings)
    worker = EventWorker(
        sessionmaker=make_sessionmaker(engine),
        storage=ImageStorage(make_s3_client(settings), settings),
        sqs=make_sqs_client(settings),
        queue_url=settings.EVENT_QUEUE_URL,
        wait_seconds=settings.EVENT_WAIT_SECONDS,
        before_apply=before_apply,
    )
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    log.info("event worker started", extra={"queue_url": settings.EVENT_QUEUE_URL})
    try:
        await worker.run(stop)
    finally:
        await engine.dispose()
        log.info("event worker stopped")


def main() -> None:
    from app.core.config import settings_or_exit
    from app.core.logging import configure_logging

    settings = settings_or_exit()
    configure_logging(settings.LOG_LEVEL)
    asyncio.run(serve(settings))


if __name__ == "__main__":
    main()
