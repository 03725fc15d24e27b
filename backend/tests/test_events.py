"""The event worker against the real queue and database: both shapes, any order, twice, crashes, restarts."""

from __future__ import annotations

import asyncio
import json
import uuid
from pathlib import Path
from typing import Any

import httpx
import pytest
import sqlalchemy as sa
from fastapi import FastAPI
from sqlalchemy.ext.asyncio import AsyncSession

from app.core.config import Settings
from app.core.db import make_engine, make_sessionmaker
from app.events import EventWorker, classify, created_objects
from app.migrate import upgrade
from app.models import Image, User
from devstack.postgres import LocalPostgres, free_port
from devstack.s3server import client as aws_client

from .conftest import MakeImage, MakeUser

SAMPLES = Path(__file__).parent / "events"


def sample(name: str, image_id: uuid.UUID | str) -> dict[str, Any]:
    return json.loads((SAMPLES / name).read_text().replace("{image_id}", str(image_id)))


def s3_record(bucket: str, key: str) -> dict[str, Any]:
    """An S3 notification body as the queue delivers it (keys URL-encoded, as S3 and moto do)."""
    body = sample("s3_notification.json", "x")
    body["Records"][0]["s3"]["bucket"]["name"] = bucket
    body["Records"][0]["s3"]["object"]["key"] = key.replace("/", "%2F")
    return body


def eventbridge(bucket: str, key: str) -> dict[str, Any]:
    body = sample("eventbridge_object_created.json", "x")
    body["detail"]["bucket"]["name"] = bucket
    body["detail"]["object"]["key"] = key
    return body


@pytest.fixture
def queue(moto_endpoint: str) -> str:
    """A queue of its own for each test (the shared event queue also gets the other tests' uploads)."""
    sqs = aws_client("sqs", moto_endpoint)
    return sqs.create_queue(QueueName=f"events-{uuid.uuid4().hex[:12]}")["QueueUrl"]


@pytest.fixture
def sqs(moto_endpoint: str) -> Any:
    return aws_client("sqs", moto_endpoint)


@pytest.fixture
def worker(app: FastAPI, sqs: Any, queue: str) -> EventWorker:
    return EventWorker(
        sessionmaker=app.state.sessionmaker,
        storage=app.state.storage,
        sqs=sqs,
        queue_url=queue,
        wait_seconds=0,
        retry_after_seconds=0,
    )


def send(sqs: Any, queue: str, body: dict[str, Any] | str) -> None:
    sqs.send_message(QueueUrl=queue, MessageBody=body if isinstance(body, str) else json.dumps(body))


def remaining(sqs: Any, queue: str) -> int:
    attributes = sqs.get_queue_attributes(
        QueueUrl=queue,
        AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"],
    )["Attributes"]
    return int(attributes["ApproximateNumberOfMessages"]) + int(
        attributes["ApproximateNumberOfMessagesNotVisible"]
    )


async def state_of(db: AsyncSession, image: Image) -> tuple[str, str | None]:
    row = (await db.execute(sa.select(Image.state, Image.rejected_reason).where(Image.id == image.id))).one()
    return row.state, row.rejected_reason


def test_both_event_shapes_parse_from_samples() -> None:
    image_id = uuid.uuid4()
    s3_shape = created_objects(sample("s3_notification.json", image_id))
    assert s3_shape == [("yoctogram-public-images", f"public/originals/{image_id}")]
    bridge = created_objects(sample("eventbridge_object_created.json", image_id))
    assert bridge == [("yoctogram-public-images", f"public/renditions/{image_id}.webp")]
    assert created_objects(sample("s3_test_event.json", image_id)) == []
    assert created_objects({"something": "else"}) is None
    assert created_objects(["not", "a", "mapping"]) is None


@pytest.mark.parametrize(
    ("key", "kind"),
    [
        ("private/originals/{id}", "original"),
        ("public/renditions/{id}.webp", "rendition"),
        ("public/renditions/{id}.jpg", "rendition"),
        ("private/renditions/{id}.rejected", "rejected"),
        ("public/originals/{id}.webp", None),
        ("elsewhere/originals/{id}", None),
        ("public/renditions/not-a-uuid.webp", None),
    ],
)
def test_keys_are_classified_as_design_names_them(key: str, kind: str | None) -> None:
    image_id = uuid.uuid4()
    event = classify("bucket", key.replace("{id}", str(image_id)))
    assert (event.kind if event else None) == kind
    if event:
        assert event.image_id == image_id


async def test_events_move_rows_in_either_shape(
    worker: EventWorker,
    sqs: Any,
    queue: str,
    make_user: MakeUser,
    make_image: MakeImage,
    db: AsyncSession,
    settings: Settings,
) -> None:
    owner = await make_user()
    image = await make_image(owner, state="pending", public=True)
    bucket = settings.PUBLIC_IMAGES_BUCKET
    send(sqs, queue, s3_record(bucket, image.original_key))
    assert await worker.run_once() == (1, 1)
    assert await state_of(db, image) == ("uploaded", None)
    send(sqs, queue, eventbridge(bucket, image.rendition_key))
    assert await worker.run_once() == (1, 1)
    assert await state_of(db, image) == ("ready", None)
    assert remaining(sqs, queue) == 0


async def test_a_jpeg_fallback_rendition_is_the_one_the_urls_point_at(
    worker: EventWorker,
    sqs: Any,
    queue: str,
    make_user: MakeUser,
    make_image: MakeImage,
    db: AsyncSession,
    settings: Settings,
    client: httpx.AsyncClient,
) -> None:
    """The compressor's OUTPUT_FORMAT=jpeg writes `.jpg` renditions: feeds and media must serve that key."""
    owner = await make_user()
    image = await make_image(owner, state="uploaded", public=True)
    bucket = settings.PUBLIC_IMAGES_BUCKET
    jpg = f"public/renditions/{image.id}.jpg"
    send(sqs, queue, s3_record(bucket, jpg))
    assert await worker.run_once() == (1, 1)
    assert await state_of(db, image) == ("ready", None)
    feed = (await client.get("/api/v1/feed/latest")).json()
    assert feed["results"][0]["download_url"].endswith(jpg)
    media = await client.get(f"/api/v1/images/media/{image.id}")
    assert media.json()["uri"].endswith(jpg)


async def test_out_of_order_and_duplicate_events(
    worker: EventWorker,
    sqs: Any,
    queue: str,
    make_user: MakeUser,
    make_image: MakeImage,
    db: AsyncSession,
    settings: Settings,
) -> None:
    owner = await make_user()
    image = await make_image(owner, state="pending", public=False)
    bucket = settings.PRIVATE_IMAGES_BUCKET
    send(sqs, queue, s3_record(bucket, image.rendition_key))  # the rendition's event arrives first
    send(sqs, queue, s3_record(bucket, image.original_key))
    send(sqs, queue, s3_record(bucket, image.original_key))  # and the original's, twice
    for _ in range(3):
        await worker.run_once()
    assert await state_of(db, image) == ("ready", None)
    assert remaining(sqs, queue) == 0


async def test_a_refusal_marker_rejects_with_its_reason(
    worker: EventWorker,
    sqs: Any,
    queue: str,
    make_user: MakeUser,
    make_image: MakeImage,
    db: AsyncSession,
    settings: Settings,
    moto_endpoint: str,
) -> None:
    owner = await make_user()
    image = await make_image(owner, state="uploaded")
    marker = f"public/renditions/{image.id}.rejected"
    aws_client("s3", moto_endpoint).put_object(
        Bucket=settings.PUBLIC_IMAGES_BUCKET, Key=marker, Body=json.dumps({"reason": "not an image (HTML)"})
    )
    send(sqs, queue, eventbridge(settings.PUBLIC_IMAGES_BUCKET, marker))
    await worker.run_once()
    assert await state_of(db, image) == ("rejected", "not an image (HTML)")


async def test_keys_in_the_wrong_bucket_are_ignored(
    worker: EventWorker,
    sqs: Any,
    queue: str,
    make_user: MakeUser,
    make_image: MakeImage,
    db: AsyncSession,
    settings: Settings,
) -> None:
    owner = await make_user()
    image = await make_image(owner, state="pending", public=True)
    send(sqs, queue, s3_record(settings.PRIVATE_IMAGES_BUCKET, image.original_key))
    assert await worker.run_once() == (1, 1)
    assert await state_of(db, image) == ("pending", None)


async def test_unknown_messages_are_left_for_the_dead_letter_queue(
    worker: EventWorker, sqs: Any, queue: str
) -> None:
    send(sqs, queue, "this is not JSON")
    send(sqs, queue, {"unexpected": "shape"})
    received, applied = await worker.run_once()
    assert (received, applied) == (2, 0)
    assert remaining(sqs, queue) == 2


async def test_a_crash_before_commit_loses_nothing(
    app: FastAPI,
    worker: EventWorker,
    sqs: Any,
    queue: str,
    make_user: MakeUser,
    make_image: MakeImage,
    db: AsyncSession,
    settings: Settings,
) -> None:
    """A worker whose database is gone fails the message; a restarted worker applies it."""
    owner = await make_user()
    image = await make_image(owner, state="pending")
    send(sqs, queue, s3_record(settings.PUBLIC_IMAGES_BUCKET, image.original_key))
    broken_engine = make_engine(
        settings.model_copy(
            update={
                "DATABASE_URL": f"postgresql+asyncpg://x:y@127.0.0.1:{free_port()}/x",
                "DB_POOL_TIMEOUT": 2,
            }
        )
    )
    crashed = EventWorker(
        sessionmaker=make_sessionmaker(broken_engine),
        storage=app.state.storage,
        sqs=sqs,
        queue_url=queue,
        wait_seconds=0,
        retry_after_seconds=0,
    )
    assert await crashed.run_once() == (1, 0)
    await broken_engine.dispose()
    assert remaining(sqs, queue) == 1
    assert await state_of(db, image) == ("pending", None)
    assert await worker.run_once() == (1, 1)  # the "restarted" worker
    assert await state_of(db, image) == ("uploaded", None)


async def test_the_worker_survives_a_database_restart(
    scratch_dir: Path, app: FastAPI, sqs: Any, queue: str, settings: Settings
) -> None:
    """A database of its own, stopped while the worker runs: the event waits, then lands."""
    server = LocalPostgres(root=scratch_dir / f"restart-{uuid.uuid4().hex[:6]}", port=free_port())
    server.start()
    try:
        url = server.url()
        await asyncio.to_thread(upgrade, "head", database_url=url)
        engine = make_engine(settings.model_copy(update={"DATABASE_URL": url, "DB_POOL_TIMEOUT": 2}))
        sessionmaker = make_sessionmaker(engine)
        async with sessionmaker() as session:
            user = User(username="restart", email="restart@example.com", hashed_password="x")
            session.add(user)
            await session.flush()
            image = Image(owner_id=user.id, public=True)
            session.add(image)
            await session.commit()
            image_id, original_key = image.id, image.original_key
        worker = EventWorker(
            sessionmaker=sessionmaker,
            storage=app.state.storage,
            sqs=sqs,
            queue_url=queue,
            wait_seconds=1,
            retry_after_seconds=0,
        )
        stop = asyncio.Event()
        running = asyncio.create_task(worker.run(stop))
        await asyncio.to_thread(server.stop)
        send(sqs, queue, s3_record(settings.PUBLIC_IMAGES_BUCKET, original_key))
        await asyncio.sleep(3)  # the worker tries, fails, backs off; the message stays on the queue
        assert remaining(sqs, queue) == 1
        await asyncio.to_thread(server.start)
        state = "pending"
        for _ in range(60):
            async with sessionmaker() as session:
                state = (
                    await session.execute(sa.select(Image.state).where(Image.id == image_id))
                ).scalar_one()
            if state == "uploaded":
                break
            await asyncio.sleep(0.5)
        stop.set()
        await asyncio.wait_for(running, timeout=30)
        await engine.dispose()
        assert state == "uploaded"
        assert not running.exception()
        assert remaining(sqs, queue) == 0
    finally:
        server.destroy()


@pytest.mark.parametrize("privacy", ["public", "private"])
async def test_files_of_an_image_without_a_row_are_deleted(
    worker: EventWorker, sqs: Any, queue: str, settings: Settings, moto_endpoint: str, privacy: str
) -> None:
    """An upload form outlives a DELETE of its pending image (S3 cannot revoke it): what it stores, and
    what the compressor makes of it, points at no row; the worker deletes every file of that image."""
    s3 = aws_client("s3", moto_endpoint)
    bucket = settings.PUBLIC_IMAGES_BUCKET if privacy == "public" else settings.PRIVATE_IMAGES_BUCKET
    image_id = uuid.uuid4()
    keys = [f"{privacy}/originals/{image_id}", f"{privacy}/renditions/{image_id}.webp"]
    for key in keys:
        s3.put_object(Bucket=bucket, Key=key, Body=b"bytes", ContentType="image/jpeg")
    s3.put_object(Bucket=bucket, Key=f"{privacy}/quarantine/{image_id}", Body=b"bytes")
    send(sqs, queue, s3_record(bucket, keys[0]))
    assert await worker.run_once() == (1, 1)
    left = s3.list_objects_v2(Bucket=bucket, Prefix=privacy).get("Contents", [])
    assert not [item["Key"] for item in left if str(image_id) in item["Key"]]
    assert remaining(sqs, queue) == 0


async def test_an_event_for_an_existing_image_deletes_nothing(
    worker: EventWorker,
    sqs: Any,
    queue: str,
    make_user: MakeUser,
    make_image: MakeImage,
    db: AsyncSession,
    settings: Settings,
    moto_endpoint: str,
) -> None:
    s3 = aws_client("s3", moto_endpoint)
    image = await make_image(await make_user(), state="pending", public=True)
    s3.put_object(Bucket=settings.PUBLIC_IMAGES_BUCKET, Key=image.original_key, Body=b"bytes")
    send(sqs, queue, s3_record(settings.PUBLIC_IMAGES_BUCKET, image.original_key))
    assert await worker.run_once() == (1, 1)
    assert await state_of(db, image) == ("uploaded", None)
    s3.head_object(Bucket=settings.PUBLIC_IMAGES_BUCKET, Key=image.original_key)  # still there
