"""The feed cache: served from memory only while the database's feed version says nothing changed.

Every test writes the way production does (its own connection and transaction, as the event worker or
another API task would) and asserts the very next request sees the change.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
import sqlalchemy as sa
from fastapi import FastAPI
from sqlalchemy.ext.asyncio import AsyncSession, create_async_engine

from app.core.config import Settings
from app.core.db import reading
from app.crud import images as image_rows
from app.main import create_app
from app.models import FeedPage, ImageState, User
from app.services import feeds
from app.services.feed_cache import FeedCache, FeedVersionReader

from .conftest import MakeImage, MakeUser, driver_queries

Auth = Callable[[User], dict[str, str]]
LATEST = "/api/v1/feed/latest"


def _cache(app: FastAPI) -> FeedCache:
    cache: FeedCache = app.state.feed_cache
    return cache


async def _version(db: AsyncSession) -> int:
    return int((await db.execute(sa.text("SELECT sum(version) FROM feed_version"))).scalar_one())


async def _bumps(db: AsyncSession, statement: str, **params: object) -> int:
    """How far one committed statement moves the feed version."""
    current = await _version(db)
    await db.execute(sa.text(statement), params)
    await db.commit()
    return await _version(db) - current


async def _ids(
    client: httpx.AsyncClient, path: str = LATEST, headers: dict[str, str] | None = None
) -> list[str]:
    response = await client.get(path, headers=headers or {})
    assert response.status_code == 200, response.text
    return [item["id"] for item in response.json()["results"]]


async def test_the_version_moves_with_every_change_a_feed_shows_and_only_then(
    db: AsyncSession, make_user: MakeUser, make_image: MakeImage, settings: Settings
) -> None:
    before = await _version(db)
    owner = await make_user()  # a new member shows in no feed yet
    assert await _version(db) == before
    image = await make_image(owner, state="pending")
    after_insert = await _version(db)
    assert after_insert == before, "a pending row is in no feed"
    await db.execute(sa.text("UPDATE users SET bio = 'hello' WHERE id = :id"), {"id": owner.id})
    await db.commit()
    assert await _version(db) == after_insert, "a bio is in no feed"

    # Uncommitted, the change and the new version are invisible to everyone else; committed, both are.
    other = create_async_engine(settings.database_url)
    try:
        await image_rows.move(db, image.id, ImageState.UPLOADED)
        async with other.connect() as reader:
            seen = (await reader.execute(sa.text("SELECT sum(version) FROM feed_version"))).scalar_one()
            assert seen == after_insert
        await db.commit()
        async with other.connect() as reader:
            seen = (await reader.execute(sa.text("SELECT sum(version) FROM feed_version"))).scalar_one()
            assert seen > after_insert
    finally:
        await other.dispose()

    for statement in (
        "UPDATE users SET username = 'renamed_' || substr(md5(random()::text), 1, 8) WHERE id = :id",
        "UPDATE users SET is_active = false WHERE id = :id",
        "DELETE FROM images WHERE owner_id = :id",
        "DELETE FROM users WHERE id = :id",
    ):
        assert await _bumps(db, statement, id=owner.id) > 0, statement
    assert await _bumps(db, "TRUNCATE images, users CASCADE") > 0


async def test_writes_no_feed_shows_leave_the_version_alone(
    db: AsyncSession, make_user: MakeUser, make_image: MakeImage
) -> None:
    """A `generate`, a refused or cleaned-up pending row, a retried event, a touch of another column:
    every cached page stays valid. Anything a card shows still moves the version."""
    owner = await make_user()
    before = await _version(db)
    pending = await make_image(owner, state="pending")
    refused = await make_image(owner, state="pending")
    visible = await make_image(owner, state="uploaded")
    after_visible_insert = await _version(db)
    assert after_visible_insert == before + 1  # three inserts, one of them visible

    # (statement, the row it names, how many bumps): first what no feed shows, then what a card shows.
    cases = [
        ("UPDATE images SET state = 'rejected' WHERE id = :id", refused.id, 0),
        ("DELETE FROM images WHERE id = :id", refused.id, 0),
        # A retried event: the conditional update matches no row (already uploaded).
        ("UPDATE images SET state = 'uploaded' WHERE id = :id AND state = 'pending'", visible.id, 0),
        ("UPDATE images SET updated_at = now() WHERE id = :id", visible.id, 0),
        ("UPDATE images SET state = state WHERE owner_id = :id", owner.id, 0),
        ("UPDATE images SET state = 'uploaded' WHERE id = :id", pending.id, 1),
        ("UPDATE images SET state = 'ready', rendition_ext = '.webp' WHERE id = :id", pending.id, 1),
        ("UPDATE images SET rendition_ext = '.jpg' WHERE id = :id", pending.id, 1),
        ("UPDATE images SET public = NOT public WHERE id = :id", visible.id, 1),
        ("UPDATE images SET state = 'rejected' WHERE id = :id", visible.id, 1),
        ("DELETE FROM images WHERE owner_id = :id", owner.id, 1),  # the ready one goes
    ]
    for statement, subject, expected in cases:
        assert await _bumps(db, statement, id=subject) == expected, statement


async def test_a_repeated_page_costs_no_query(
    app: FastAPI, client: httpx.AsyncClient, make_user: MakeUser, make_image: MakeImage, auth: Auth
) -> None:
    owner = await make_user()
    for _ in range(3):
        await make_image(owner)
    await make_image(owner, public=False)
    for headers in ({}, auth(owner)):
        first = await client.get(LATEST, headers=headers)
        hits = _cache(app).hits
        with driver_queries(app) as sent:
            second = await client.get(LATEST, headers=headers)
            await asyncio.sleep(0.05)  # query loggers are called soon after each statement
        assert second.status_code == 200
        assert second.headers["content-type"] == "application/json"
        assert second.json() == first.json() and second.content == first.content
        assert sent == [], sent
        assert _cache(app).hits == hits + 1


async def test_an_owner_sees_a_new_post_and_a_delete_at_once(
    app: FastAPI,
    client: httpx.AsyncClient,
    db: AsyncSession,
    make_user: MakeUser,
    make_image: MakeImage,
    auth: Auth,
    settings: Settings,
) -> None:
    owner = await make_user()
    old = await make_image(owner)
    private = await make_image(owner, public=False, state="pending")
    public = await make_image(owner, public=True, state="pending")
    assert await _ids(client, headers=auth(owner)) == [str(old.id)]
    assert await _ids(client) == [str(old.id)]
    assert await _ids(client, headers=auth(owner)) == [str(old.id)]  # now from the cache

    # The event worker, in another process, marks both uploads as uploaded and commits.
    worker = create_async_engine(settings.database_url)
    try:
        async with worker.begin() as connection:
            session = AsyncSession(bind=connection)
            assert await image_rows.move(session, private.id, ImageState.UPLOADED)
            assert await image_rows.move(session, public.id, ImageState.UPLOADED)
    finally:
        await worker.dispose()
    assert await _ids(client, headers=auth(owner)) == [str(public.id), str(private.id), str(old.id)]
    assert await _ids(client) == [str(public.id), str(old.id)]

    deleted = await client.delete(f"/api/v1/images/{public.id}", headers=auth(owner))
    assert deleted.status_code == 200, deleted.text
    assert await _ids(client, headers=auth(owner)) == [str(private.id), str(old.id)]
    assert await _ids(client) == [str(old.id)]


async def test_pages_are_never_shared_between_viewers(
    client: httpx.AsyncClient, make_user: MakeUser, make_image: MakeImage, auth: Auth
) -> None:
    alice, bob = await make_user("alice"), await make_user("bob")
    shared = await make_image(bob)
    secret = await make_image(alice, public=False)
    for _ in range(2):  # the second round is served from the cache
        assert await _ids(client, headers=auth(alice)) == [str(secret.id), str(shared.id)]
        assert await _ids(client, headers=auth(bob)) == [str(shared.id)]
        assert await _ids(client) == [str(shared.id)]
        assert await _ids(client, f"/api/v1/feed/by_user/{alice.id}") == []
        assert await _ids(client, f"/api/v1/feed/by_user/{alice.id}", auth(alice)) == [str(secret.id)]


async def test_a_deactivated_member_gets_401_not_their_cached_page(
    client: httpx.AsyncClient, db: AsyncSession, make_user: MakeUser, make_image: MakeImage, auth: Auth
) -> None:
    member = await make_user()
    await make_image(member, public=False)
    headers = auth(member)
    assert len(await _ids(client, headers=headers)) == 1
    assert len(await _ids(client, headers=headers)) == 1
    await db.execute(sa.text("UPDATE users SET is_active = false WHERE id = :id"), {"id": member.id})
    await db.commit()
    response = await client.get(LATEST, headers=headers)
    assert response.status_code == 401
    assert "log in again" in response.json()["detail"]


async def test_signed_urls_are_never_served_from_a_past_window(
    app: FastAPI, client: httpx.AsyncClient, make_user: MakeUser, make_image: MakeImage, auth: Auth
) -> None:
    member = await make_user()
    await make_image(member, public=False, state="ready")
    urls = app.state.urls
    now = 1_900_000_000.0
    original_clock = urls.clock
    urls.clock = lambda: now
    try:
        first = (await client.get(LATEST, headers=auth(member))).json()["results"][0]["download_url"]
        assert (await client.get(LATEST, headers=auth(member))).json()["results"][0]["download_url"] == first
        now += urls.window_seconds
        later = (await client.get(LATEST, headers=auth(member))).json()["results"][0]["download_url"]
    finally:
        urls.clock = original_clock
    assert "Expires=" in first and later != first
    assert int(later.split("Expires=")[1].split("&")[0]) == int(first.split("Expires=")[1].split("&")[0]) + (
        urls.window_seconds
    )


async def test_a_lost_version_connection_costs_the_cache_not_the_request(
    app: FastAPI, client: httpx.AsyncClient, db: AsyncSession, make_user: MakeUser, make_image: MakeImage
) -> None:
    owner = await make_user()
    post = await make_image(owner)
    assert await _ids(client) == [str(post.id)]
    reader: FeedVersionReader = _cache(app).reader
    assert reader._connection is not None
    raw = await reader._connection.get_raw_connection()
    pid = raw.driver_connection.get_server_pid()  # type: ignore[union-attr]
    await db.execute(sa.text("SELECT pg_terminate_backend(:pid)"), {"pid": pid})
    await db.commit()
    failures = reader.failures
    assert await _ids(client) == [str(post.id)]  # answered without the cache
    assert reader.failures == failures + 1
    hits, reads = _cache(app).hits, reader.reads
    assert await _ids(client) == [str(post.id)]  # a new connection; nothing changed, so the page is valid
    assert await _ids(client) == [str(post.id)]
    assert (_cache(app).hits, reader.reads) == (hits + 2, reads + 2)


async def test_concurrent_misses_share_one_query_and_one_version_read(
    app: FastAPI, client: httpx.AsyncClient, make_user: MakeUser, make_image: MakeImage
) -> None:
    owner = await make_user()
    for _ in range(5):
        await make_image(owner)
    reads = _cache(app).reader.reads
    with driver_queries(app) as sent:
        pages = await asyncio.gather(*(client.get(LATEST) for _ in range(20)))
        await asyncio.sleep(0.05)
    assert {page.status_code for page in pages} == {200}
    assert len({page.content for page in pages}) == 1
    assert len([s for s in sent if "FROM images" in s]) == 1, sent
    assert _cache(app).reader.reads - reads < 20


async def test_the_cache_is_bounded_and_can_be_turned_off(
    settings: Settings, make_user: MakeUser, make_image: MakeImage
) -> None:
    owner = await make_user()
    await make_image(owner)
    for entries in (2, 0):
        application = create_app(settings.model_copy(update={"FEED_CACHE_ENTRIES": entries}))
        async with application.router.lifespan_context(application):
            transport = httpx.ASGITransport(app=application)
            async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as http:
                for limit in (1, 2, 3, 1):
                    response = await http.get(LATEST, params={"limit": limit})
                    assert response.status_code == 200
            cache = _cache(application)
            assert len(cache) == min(entries, 2)
            assert cache.hits == 0  # limit=1 was evicted by the time it came back (or nothing is kept)
            assert cache.misses == (4 if entries else 0)
            assert cache.reader.reads == (4 if entries else 0)  # one version read per request, miss or not


@pytest.mark.parametrize("bad", [{"cursor": "not-a-cursor"}, {"limit": 0}])
async def test_bad_paging_is_a_422_every_time(client: httpx.AsyncClient, bad: dict[str, Any]) -> None:
    for _ in range(2):
        response = await client.get(LATEST, params=bad)
        assert response.status_code == 422
        assert response.json()["detail"]


async def test_requests_that_arrive_during_a_read_share_the_next_one(app: FastAPI) -> None:
    reader = FeedVersionReader(app.state.engine, timeout=5)
    try:
        answers = await asyncio.gather(*(reader.current() for _ in range(30)))
        assert all(answer is not None for answer in answers)
        assert reader.reads <= 2  # the first caller's read, then one read for everyone who came meanwhile
        versions = {answer[1] for answer in answers if answer}
        assert len(versions) == 1
        reads = reader.reads
        assert await reader.current() is not None
        assert reader.reads == reads + 1  # a caller that arrives later gets a read of its own
    finally:
        await reader.close()


async def test_unknown_viewer_ids_are_401(client: httpx.AsyncClient, settings: Settings) -> None:
    from app.core.security import create_access_token

    token = create_access_token(uuid.uuid4(), settings)
    for _ in range(2):
        response = await client.get(LATEST, headers={"Authorization": f"Bearer {token}"})
        assert response.status_code == 401


async def test_a_page_is_byte_for_byte_what_the_feed_page_model_writes(
    app: FastAPI, make_user: MakeUser, make_image: MakeImage
) -> None:
    """Pages are written from plain dicts; the `FeedPage` model (the documented shape) writes the same."""
    owner = await make_user("ünïcode_name")
    base = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
    await make_image(owner, public=False, state="ready", created_at=base)
    await make_image(owner, created_at=base + timedelta(microseconds=123456))
    await make_image(owner, created_at=base + timedelta(seconds=1))
    async with app.state.engine.connect() as connection, reading(connection) as driver:
        body = await feeds.page_json(driver, app.state.urls, viewer_id=owner.id, limit=2)
    page = FeedPage.model_validate_json(body)
    assert page.count == 2 and page.next_cursor
    assert page.model_dump_json().encode() == body


async def test_repeated_parameters_never_share_a_page_with_other_requests(
    client: httpx.AsyncClient, make_user: MakeUser, make_image: MakeImage
) -> None:
    owner = await make_user()
    for _ in range(4):
        await make_image(owner)

    async def count(query: str) -> int:
        response = await client.get(f"{LATEST}?{query}")
        assert response.status_code == 200, response.text
        return int(response.json()["count"])

    repeated = await count("limit=1&limit=3")
    assert repeated in (1, 3)
    for _ in range(2):  # the second round comes from the cache
        assert await count("limit=3") == 3
        assert await count("limit=1") == 1
        assert await count("limit=1&limit=3") == repeated
        assert await count("limit=3&limit=1") == 4 - repeated


async def test_the_cache_reports_its_counters_in_the_logs(
    app: FastAPI, client: httpx.AsyncClient, make_user: MakeUser, make_image: MakeImage, caplog: Any
) -> None:
    owner = await make_user()
    await make_image(owner)
    before = _cache(app).stats()
    await _ids(client)
    await _ids(client)
    after = _cache(app).stats()
    assert after["hits"] == before["hits"] + 1 and after["misses"] == before["misses"] + 1
    assert 0 < after["hit_ratio"] <= 1 and after["entries"] >= 1
    assert after["version_reads"] > before["version_reads"]
    with caplog.at_level("INFO", logger="app.feed_cache"):
        task = asyncio.create_task(_cache(app).log_stats_every(0.01))
        await asyncio.sleep(0.1)
        task.cancel()
    lines = [r for r in caplog.records if r.getMessage() == "feed cache"]
    assert len(lines) == 1, "one line while nothing changes"
    assert lines[0].__dict__["hits"] == after["hits"]
