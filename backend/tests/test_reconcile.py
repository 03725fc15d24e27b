"""Reconciliation settles rows whose events were lost, from what the real local S3 holds: a rendition
makes them `ready`, a refusal marker `rejected`, an original alone runs the real compressor again; rows
younger than the limit are left alone. `python -m app.cleanup` runs it too.
"""

from __future__ import annotations

import asyncio
import contextlib
import io
import json
import uuid
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import sqlalchemy as sa
from fastapi import FastAPI
from PIL import Image as PILImage
from sqlalchemy.ext.asyncio import AsyncSession

from app import cleanup
from app.core.config import Settings
from app.models import Image, User
from app.services.reconcile import compressor_event, reconcile

from .conftest import MakeImage, MakeUser

LIMIT = timedelta(minutes=5)
LONG_AGO = datetime.now(UTC) - timedelta(hours=1)


def _png() -> bytes:
    out = io.BytesIO()
    PILImage.new("RGB", (64, 48), (200, 30, 30)).save(out, format="PNG")
    return out.getvalue()


@pytest.fixture
async def objects(app: FastAPI, settings: Settings) -> AsyncIterator[Callable[..., Any]]:
    """put(image, suffix, body): write one of an image's objects; all are deleted after the test."""
    s3 = app.state.storage.client
    written: list[tuple[str, str]] = []

    async def put(image: Image, what: str, body: bytes, content_type: str = "image/png") -> None:
        bucket = app.state.storage.bucket(image.public)
        key = image.original_key if what == "original" else f"{image.privacy}/renditions/{image.id}.{what}"
        await asyncio.to_thread(
            lambda: s3.put_object(Bucket=bucket, Key=key, Body=body, ContentType=content_type)
        )
        written.append((bucket, key))

    yield put
    for image_public in (True, False):
        bucket = app.state.storage.bucket(image_public)
        keys = [key for b, key in written if b == bucket]
        if keys:
            await app.state.storage.delete_keys(public=image_public, keys=keys)


async def _states(db: AsyncSession, *rows: Image | uuid.UUID) -> list[tuple[str, str | None, str | None]]:
    ids = [row if isinstance(row, uuid.UUID) else row.id for row in rows]
    db.expire_all()
    found = []
    for image_id in ids:
        got = (
            await db.execute(
                sa.select(Image.state, Image.rendition_ext, Image.rejected_reason).where(Image.id == image_id)
            )
        ).one()
        found.append((got.state, got.rendition_ext, got.rejected_reason))
    return found


async def _stuck(make_image: MakeImage, owner: User, state: str = "uploaded", **fields: Any) -> Image:
    return await make_image(owner, state=state, created_at=LONG_AGO, updated_at=LONG_AGO, **fields)


async def test_stuck_rows_are_settled_from_renditions_and_markers(
    app: FastAPI, db: AsyncSession, make_user: MakeUser, make_image: MakeImage, objects: Any
) -> None:
    owner = await make_user()
    webp, jpg, refused = [await _stuck(make_image, owner) for _ in range(3)]
    private_pending = await _stuck(make_image, owner, state="pending", public=False)
    for image, what in ((webp, "webp"), (jpg, "jpg"), (private_pending, "webp")):
        await objects(image, what, b"rendition")
    await objects(private_pending, "original", _png())
    await objects(refused, "rejected", json.dumps({"reason": "Not an image"}).encode(), "application/json")

    report = await reconcile(app.state.sessionmaker, app.state.storage, older_than=LIMIT, recompress=None)

    assert await _states(db, webp, jpg, refused, private_pending) == [
        ("ready", "webp", None),
        ("ready", "jpg", None),
        ("rejected", None, "Not an image"),
        ("ready", "webp", None),
    ]
    assert (report.uploaded, report.ready, report.rejected) == (1, 3, 1)


async def test_rows_younger_than_the_limit_and_pending_rows_without_an_original_are_left_alone(
    app: FastAPI, db: AsyncSession, make_user: MakeUser, make_image: MakeImage, objects: Any
) -> None:
    owner = await make_user()
    young = await make_image(owner, state="uploaded")  # its event may still be on the way
    young_pending = await make_image(owner, state="pending")
    never_uploaded = await _stuck(make_image, owner, state="pending")
    await objects(young, "webp", b"rendition")
    await objects(young_pending, "original", _png())

    report = await reconcile(app.state.sessionmaker, app.state.storage, older_than=LIMIT, recompress=None)

    assert [state for state, _, _ in await _states(db, young, young_pending, never_uploaded)] == [
        "uploaded",
        "pending",
        "pending",
    ]
    assert (report.uploaded, report.ready, report.recompressed) == (0, 0, 0)


async def test_an_original_without_output_goes_to_the_compressor_again(
    app: FastAPI, db: AsyncSession, make_user: MakeUser, make_image: MakeImage, objects: Any
) -> None:
    import handler as compressor  # compressor/ is on the tests' path, as on the local stack's

    owner = await make_user()
    lost = await _stuck(make_image, owner)
    nothing = await _stuck(make_image, owner)  # no original either: left, and counted
    await objects(lost, "original", _png())
    lost_id, lost_key = str(lost.id), lost.original_key
    events: list[dict[str, Any]] = []

    async def recompress(event: dict[str, Any]) -> None:  # what the local dispatcher does
        events.append(event)
        s3 = app.state.storage.client
        await asyncio.to_thread(lambda: compressor.handler(event, None, s3_client=s3))

    try:
        report = await reconcile(
            app.state.sessionmaker, app.state.storage, older_than=LIMIT, recompress=recompress
        )
        assert events == [compressor_event(app.state.storage.bucket(True), lost_key)]
        assert (report.recompressed, report.ready, report.unsettled) == (1, 1, 1)
        [(state, ext, _), (other, _, _)] = await _states(db, lost, nothing)
        assert state == "ready" and ext in ("webp", "jpg")
        assert other == "uploaded"
    finally:
        await app.state.storage.delete_all(privacy="public", image_id=lost_id, public=True)


async def test_the_cleanup_command_reconciles(
    db: AsyncSession, make_user: MakeUser, make_image: MakeImage, objects: Any, settings: Settings
) -> None:
    owner = await make_user()
    stuck = await _stuck(make_image, owner)
    await objects(stuck, "webp", b"rendition")
    report = await cleanup.run(settings.model_copy(update={"DB_POOL_SIZE": 1, "DB_MAX_OVERFLOW": 0}))
    assert report.reconciled is not None and report.reconciled.ready >= 1
    assert await _states(db, stuck) == [("ready", "webp", None)]


def test_the_compressor_accepts_the_reconciliation_event() -> None:
    from yoctogram_common.events import parse_event  # the compressor's own parser

    key = f"private/originals/{uuid.uuid4()}"
    [created] = parse_event(compressor_event("yoctogram-private-images", key))
    assert (created.bucket, created.key) == ("yoctogram-private-images", key)


async def test_the_local_dispatcher_reconciles_on_its_own(
    app: FastAPI,
    db: AsyncSession,
    make_user: MakeUser,
    make_image: MakeImage,
    objects: Any,
    settings: Settings,
) -> None:
    import handler as compressor
    from devstack.dispatcher import reconcile_forever

    owner = await make_user()
    lost = await _stuck(make_image, owner, public=False)
    await objects(lost, "original", _png())
    lost_id = lost.id
    task = asyncio.create_task(reconcile_forever(settings, app.state.storage.client, compressor.handler, 0.2))
    try:
        for _ in range(100):
            [(state, _, _)] = await _states(db, lost_id)
            if state != "uploaded":
                break
            await asyncio.sleep(0.1)
        assert state == "ready"
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        await app.state.storage.delete_all(privacy="private", image_id=str(lost_id), public=False)
