"""Both multipart forms clients send to a presigned POST of `generate` reach `ready` through the local stack.

`requests.post(url, files={**fields, "file": ...})` sends every field as a part with a filename (an existing
client does exactly that); browsers and `data=fields` send plain parts. S3 takes both, so the local S3 server
must too. The path is the one `make up` runs: the server's notification on the event queue, the compressor's
Lambda handler and the event worker (devstack/dispatcher.py), with the real queue, S3 server and database.
"""

from __future__ import annotations

import io
import json
import time
import uuid
from typing import Any
from urllib.parse import unquote_plus, urlsplit

import anyio.to_thread
import httpx
import pytest
import requests
import sqlalchemy as sa
from fastapi import FastAPI
from PIL import Image as PILImage
from sqlalchemy.ext.asyncio import AsyncSession

import sample_images  # compressor/ is on the tests' path
from app.events import EventWorker, ObjectEvent
from app.models import Image, User
from devstack.s3server import client as aws_client
from devstack.s3server import queue_url

from .conftest import MakeUser


def jpeg() -> bytes:
    buffer = io.BytesIO()
    PILImage.effect_mandelbrot((320, 240), (-2, -1.2, 1, 1.2), 30).convert("RGB").save(buffer, "JPEG")
    return buffer.getvalue()


def forward(sqs: Any, events: str, to: str, key: str, timeout: float = 10.0) -> list[str]:
    """Move the event queue's messages about `key` to the queue `to`; return their event names.

    The event queue is shared by the session's tests; messages about other objects are dropped, as the
    dispatcher of `make up` would consume them."""
    names: list[str] = []
    deadline = time.monotonic() + timeout
    while not names and time.monotonic() < deadline:
        reply = sqs.receive_message(QueueUrl=events, MaxNumberOfMessages=10, WaitTimeSeconds=1)
        for message in reply.get("Messages", []):
            records = json.loads(message["Body"]).get("Records", [])
            mine = [r for r in records if unquote_plus(r["s3"]["object"]["key"]) == key]
            if mine:
                sqs.send_message(QueueUrl=to, MessageBody=message["Body"])
                names += [r["eventName"] for r in mine]
            sqs.delete_message(QueueUrl=events, ReceiptHandle=message["ReceiptHandle"])
    return names


@pytest.mark.parametrize("form", ["every field as a file part (requests files=)", "plain fields (data=)"])
async def test_an_upload_in_either_form_reaches_ready(
    form: str,
    client: httpx.AsyncClient,
    make_user: MakeUser,
    auth: Any,
    app: FastAPI,
    db: AsyncSession,
    moto_endpoint: str,
) -> None:
    import handler as compressor  # compressor/ is on the tests' path, as on the local stack's

    owner: User = await make_user()
    sqs = aws_client("sqs", moto_endpoint)
    own_queue = sqs.create_queue(QueueName=f"upload-forms-{uuid.uuid4().hex[:12]}")["QueueUrl"]
    s3 = app.state.storage.client

    async def compress_originals(message: Any, events: list[ObjectEvent]) -> None:  # devstack/dispatcher.py
        if any(event.kind == "original" for event in events):
            await anyio.to_thread.run_sync(lambda: compressor.handler(message, None, s3_client=s3))

    worker = EventWorker(
        sessionmaker=app.state.sessionmaker,
        storage=app.state.storage,
        sqs=sqs,
        queue_url=own_queue,
        wait_seconds=0,
        retry_after_seconds=0,
        before_apply=compress_originals,
    )

    made = await client.post("/api/v1/images/upload/public/generate", headers=auth(owner))
    assert made.status_code == 200, made.text
    generated = made.json()
    url, fields, image_id = generated["url"], generated["fields"], generated["id"]
    photo = jpeg()
    if form.startswith("every field"):
        files: dict[str, Any] = {**fields, "file": ("photo.jpg", photo)}
        sent = await anyio.to_thread.run_sync(lambda: requests.post(url, files=files, timeout=30))
    else:
        sent = await anyio.to_thread.run_sync(
            lambda: requests.post(
                url, data=fields, files={"file": ("photo.jpg", photo, "image/jpeg")}, timeout=30
            )
        )
    assert sent.status_code == 204, sent.text

    events = queue_url(moto_endpoint)
    original, rendition = fields["key"], f"public/renditions/{image_id}.webp"
    names = await anyio.to_thread.run_sync(lambda: forward(sqs, events, own_queue, original))
    assert names == ["ObjectCreated:Post"]
    assert await worker.run_once() == (1, 1)  # the compressor writes the rendition, the row is `uploaded`
    names = await anyio.to_thread.run_sync(lambda: forward(sqs, events, own_queue, rendition))
    assert names == ["ObjectCreated:Put"]
    assert await worker.run_once() == (1, 1)

    state = (await db.execute(sa.select(Image.state).where(Image.id == uuid.UUID(image_id)))).scalar_one()
    assert state == "ready"
    media = (await client.get(f"/api/v1/images/media/{image_id}")).json()
    assert media["uri"].endswith(f"/{rendition}")


def png(seed: int) -> bytes:
    buffer = io.BytesIO()
    PILImage.effect_mandelbrot((200 + seed, 150), (-2, -1.2, 1, 1.2), 20 + seed).convert("RGB").save(
        buffer, "PNG"
    )
    return buffer.getvalue()


async def test_a_form_re_posted_after_ready_never_breaks_the_feed(
    client: httpx.AsyncClient,
    make_user: MakeUser,
    auth: Any,
    app: FastAPI,
    db: AsyncSession,
    moto_endpoint: str,
) -> None:
    """S3 cannot refuse a form re-POSTed while its policy is valid. Re-POSTed after `ready`, with another
    photo and then with a page that is no image, the feed's URL answers 200 through the gateway at every
    step; the photo replaces the rendition, the page is refused and moved out of the served prefixes."""
    import handler as compressor  # compressor/ is on the tests' path, as on the local stack's

    owner: User = await make_user()
    sqs = aws_client("sqs", moto_endpoint)
    own_queue = sqs.create_queue(QueueName=f"re-post-{uuid.uuid4().hex[:12]}")["QueueUrl"]
    s3 = app.state.storage.client
    bucket = app.state.storage.bucket(True)

    async def compress_originals(message: Any, events: list[ObjectEvent]) -> None:  # devstack/dispatcher.py
        if any(event.kind == "original" for event in events):
            await anyio.to_thread.run_sync(lambda: compressor.handler(message, None, s3_client=s3))

    worker = EventWorker(
        sessionmaker=app.state.sessionmaker,
        storage=app.state.storage,
        sqs=sqs,
        queue_url=own_queue,
        wait_seconds=0,
        retry_after_seconds=0,
        before_apply=compress_originals,
    )
    made = await client.post(
        "/api/v1/images/upload/public/generate", headers=auth(owner), json={"content_type": "image/png"}
    )
    generated = made.json()
    url, fields, image_id = generated["url"], generated["fields"], generated["id"]
    original, rendition = fields["key"], f"public/renditions/{image_id}.webp"
    marker, quarantined = f"public/renditions/{image_id}.rejected", f"public/quarantine/{image_id}"
    events = queue_url(moto_endpoint)

    async def post(data: bytes) -> None:
        sent = await anyio.to_thread.run_sync(
            lambda: requests.post(
                url, data=fields, files={"file": ("photo.png", data, "image/png")}, timeout=30
            )
        )
        assert sent.status_code == 204, sent.text

    async def deliver(key: str) -> None:
        """The object's event reaches the worker (and the compressor, for an original)."""
        assert await anyio.to_thread.run_sync(lambda: forward(sqs, events, own_queue, key))
        assert await worker.run_once() == (1, 1)

    async def state() -> str:
        db.expire_all()
        return (await db.execute(sa.select(Image.state).where(Image.id == uuid.UUID(image_id)))).scalar_one()

    async def feed_image() -> bytes:
        """What the feed's URL of the image serves; it must answer."""
        feed = (await client.get("/api/v1/feed/latest", params={"limit": 100})).json()
        [item] = [item for item in feed["results"] if item["id"] == image_id]
        split = urlsplit(item["download_url"])
        got = await client.get(f"{split.path}?{split.query}" if split.query else split.path)
        assert got.status_code == 200, (item["download_url"], got.text)
        return got.content

    await post(png(0))
    await deliver(original)
    await feed_image()
    await deliver(rendition)
    assert await state() == "ready"
    first = await feed_image()

    await post(png(7))  # the same form again, another photo
    assert await feed_image() == first
    await deliver(original)  # the compressor replaces the rendition in place
    await feed_image()
    await deliver(rendition)
    assert await state() == "ready"
    second = await feed_image()
    assert second != first

    await post(sample_images.HTML_PAGE)  # and again, with a page
    assert await feed_image() == second
    await deliver(original)  # refused: a marker, the file moved to quarantine, the rendition kept
    assert await feed_image() == second
    await deliver(marker)
    assert await state() == "ready"
    assert await feed_image() == second
    assert (await client.get(f"/{original}")).status_code == 404
    stored = await anyio.to_thread.run_sync(
        lambda: s3.get_object(Bucket=bucket, Key=quarantined)["Body"].read()
    )
    assert stored == sample_images.HTML_PAGE
    assert (await client.get(f"/{quarantined}")).status_code == 404
