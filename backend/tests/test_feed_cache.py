"""The feed cache: served from memory only while the database's feed version says nothing changed.

Every test writes the way production does (its own connection and transaction, as the event worker or
another API task would) and asserts the very next request sees the change.
"""

from __future__ import annotations

import asyncio
import json
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
from app.services.feed_cache import Change, FeedCache, FeedVersionReader

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
    cards = feeds.Cards(app.state.urls)
    async with app.state.engine.connect() as connection, reading(connection) as driver:
        body = await feeds.page_json(
            driver,
            cards,
            viewer_id=owner.id,
            paging=feeds.Paging(limit=2),
            url_window=app.state.urls.expiry(),
        )
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


# --- what each kind of change moves (app/services/feed_cache.py: parts, audiences, time intervals) ------
BY_USER = "/api/v1/feed/by_user/{}"
Page = tuple[str, dict[str, str], dict[str, Any]]


async def _read(app: FastAPI, client: httpx.AsyncClient, page: Page) -> tuple[bytes, int]:
    """(the page, how many queries of `images` answering it cost)."""
    path, headers, params = page
    with driver_queries(app) as sent:
        response = await client.get(path, headers=headers, params=params)
        await asyncio.sleep(0.02)  # query loggers are called soon after each statement
    assert response.status_code == 200, response.text
    return response.content, len([s for s in sent if "FROM images" in s])


def _page_ids(body: bytes) -> list[str]:
    return [item["id"] for item in json.loads(body)["results"]]


async def _warm(app: FastAPI, client: httpx.AsyncClient, pages: dict[str, Page]) -> dict[str, bytes]:
    seen = {}
    for name, page in pages.items():
        seen[name], _ = await _read(app, client, page)
        assert await _read(app, client, page) == (seen[name], 0), f"{name} is not cached"
    return seen


async def _moved(
    app: FastAPI, client: httpx.AsyncClient, pages: dict[str, Page], before: dict[str, bytes]
) -> dict[str, list[str]]:
    """The pages that changed since `before`, with their ids; every other page must have been answered
    from the cache (a part the change did not touch is not made again)."""
    out = {}
    for name, page in pages.items():
        body, queries = await _read(app, client, page)
        if body != before[name]:
            out[name] = _page_ids(body)
        else:
            assert queries == 0, f"{name} was made again, yet the change does not touch it"
    return out


@pytest.fixture
async def feed_world(
    client: httpx.AsyncClient, make_user: MakeUser, make_image: MakeImage, auth: Auth
) -> dict[str, Any]:
    """Alice and Bob post in turn, a minute apart (8 public posts); Carol has one old private post. Pages
    of 3: the head page of `latest` (anonymous and Carol's), its second page, and each author's page."""
    alice, bob, carol = await make_user("alice"), await make_user("bob"), await make_user("carol")
    base = datetime(2026, 2, 1, tzinfo=UTC)
    posts = [
        await make_image(alice if i % 2 else bob, created_at=base + timedelta(minutes=i)) for i in range(8)
    ]
    await make_image(carol, public=False, created_at=base - timedelta(days=1))
    cursor = (await client.get(LATEST, params={"limit": 3})).json()["next_cursor"]
    pages: dict[str, Page] = {
        "head": (LATEST, {}, {"limit": 3}),
        "head, carol": (LATEST, auth(carol), {"limit": 3}),
        "head, alice": (LATEST, auth(alice), {"limit": 3}),
        "page 2": (LATEST, {}, {"limit": 3, "cursor": cursor}),
        "alice": (BY_USER.format(alice.id), {}, {"limit": 3}),
        "alice, own": (BY_USER.format(alice.id), auth(alice), {"limit": 3}),
        "bob": (BY_USER.format(bob.id), {}, {"limit": 3}),
        "bob, own": (BY_USER.format(bob.id), auth(bob), {"limit": 3}),
    }
    return {"alice": alice, "bob": bob, "carol": carol, "posts": posts, "base": base, "pages": pages}


async def test_a_new_public_post_moves_the_head_pages_of_latest_and_of_its_author(
    app: FastAPI, client: httpx.AsyncClient, make_image: MakeImage, feed_world: dict[str, Any]
) -> None:
    w = feed_world
    seen = await _warm(app, client, w["pages"])
    new = await make_image(w["alice"], created_at=w["base"] + timedelta(hours=1))
    moved = await _moved(app, client, w["pages"], seen)
    assert set(moved) == {"head", "head, carol", "head, alice", "alice", "alice, own"}
    assert all(ids[0] == str(new.id) for ids in moved.values())


async def test_a_new_private_post_moves_only_its_owners_pages(
    app: FastAPI, client: httpx.AsyncClient, make_image: MakeImage, feed_world: dict[str, Any]
) -> None:
    w = feed_world
    seen = await _warm(app, client, w["pages"])
    new = await make_image(w["alice"], public=False, created_at=w["base"] + timedelta(hours=1))
    moved = await _moved(app, client, w["pages"], seen)
    assert set(moved) == {"head, alice", "alice, own"}
    assert all(ids[0] == str(new.id) for ids in moved.values())


async def test_a_change_to_an_older_post_leaves_the_newer_pages_alone(
    app: FastAPI, client: httpx.AsyncClient, db: AsyncSession, feed_world: dict[str, Any]
) -> None:
    """The second page of `latest` shows posts 4, 3 and 2 (Bob's 4 and 2, Alice's 3); the head page read
    down to post 4 (its extra row), so a change to post 2 or older cannot change it."""
    w = feed_world
    seen = await _warm(app, client, w["pages"])
    oldest_shown = w["posts"][2]
    assert _page_ids(seen["page 2"])[-1] == str(oldest_shown.id)
    await db.execute(sa.text("UPDATE images SET state = 'ready' WHERE id = :id"), {"id": oldest_shown.id})
    await db.commit()
    moved = await _moved(app, client, w["pages"], seen)
    assert set(moved) == {"page 2", "bob", "bob, own"}  # Bob's pages of 3 show posts 6, 4 and 2
    assert moved["page 2"] == _page_ids(seen["page 2"])  # the same posts, one of them now `ready`


async def test_a_delete_moves_the_pages_that_held_it(
    app: FastAPI, client: httpx.AsyncClient, feed_world: dict[str, Any], auth: Auth
) -> None:
    w = feed_world
    seen = await _warm(app, client, w["pages"])
    newest = w["posts"][7]  # Alice's
    deleted = await client.delete(f"/api/v1/images/{newest.id}", headers=auth(w["alice"]))
    assert deleted.status_code == 200, deleted.text
    moved = await _moved(app, client, w["pages"], seen)
    assert set(moved) == {"head", "head, carol", "head, alice", "alice", "alice, own"}
    assert moved["head"] == _page_ids(seen["head"])[1:] + _page_ids(seen["page 2"])[:1]
    assert all(str(newest.id) not in ids for ids in moved.values())


async def test_a_privacy_change_moves_the_pages_of_both_audiences(
    app: FastAPI, client: httpx.AsyncClient, db: AsyncSession, feed_world: dict[str, Any]
) -> None:
    w = feed_world
    seen = await _warm(app, client, w["pages"])
    newest = w["posts"][7]  # Alice's
    await db.execute(sa.text("UPDATE images SET public = false WHERE id = :id"), {"id": newest.id})
    await db.commit()
    moved = await _moved(app, client, w["pages"], seen)
    assert set(moved) == {"head", "head, carol", "head, alice", "alice", "alice, own"}
    assert str(newest.id) not in moved["head"] + moved["head, carol"] + moved["alice"]
    assert moved["head, alice"] == _page_ids(seen["head, alice"])  # hers to see, now private
    assert moved["alice, own"][0] == str(newest.id)


@pytest.mark.parametrize(
    "statement",
    [
        "UPDATE users SET username = 'renamed_' || substr(md5(random()::text), 1, 8) WHERE id = :id",
        "UPDATE users SET is_active = false WHERE id = :id",
    ],
    ids=["rename", "deactivate"],
)
async def test_a_renamed_or_deactivated_member_moves_every_page(
    app: FastAPI, client: httpx.AsyncClient, db: AsyncSession, feed_world: dict[str, Any], statement: str
) -> None:
    w = feed_world
    await _warm(app, client, w["pages"])
    cleared, misses = _cache(app).cleared, _cache(app).misses
    await db.execute(sa.text(statement), {"id": w["carol"].id})
    await db.commit()
    pages = {name: page for name, page in w["pages"].items() if name != "head, carol"}
    for name, page in pages.items():
        assert (await _read(app, client, page))[1] >= (0 if "," in name else 1), name
    assert _cache(app).cleared == cleared + 1
    assert _cache(app).misses == misses + len(pages)


async def test_changes_pruned_before_they_were_read_drop_everything(
    app: FastAPI, client: httpx.AsyncClient, make_user: MakeUser, make_image: MakeImage
) -> None:
    owner = await make_user()
    await make_image(owner)
    await _ids(client)
    page: Page = (LATEST, {}, {})
    assert (await _read(app, client, page))[1] == 0
    reader = _cache(app).reader
    assert reader.vector is not None
    # As if this process had last read versions whose changes the triggers have pruned since.
    reader.vector = tuple(v - 5000 for v in reader.vector)
    cleared = _cache(app).cleared
    assert (await _read(app, client, page))[1] == 1
    assert _cache(app).cleared == cleared + 1


async def test_a_part_made_across_a_change_it_may_predate_is_not_kept(
    app: FastAPI, make_user: MakeUser, make_image: MakeImage
) -> None:
    """A change applied while a part is made may be newer than the part's rows: the part answers the
    requests that were waiting for it (they were sent before that change), but is not kept."""
    owner = await make_user()
    post = await make_image(owner)
    cache = _cache(app)
    before = post.created_at + timedelta(days=1)
    request = feeds.FeedRequest(None, feeds.Paging(limit=5, before=before))
    await cache.snapshot()
    for change, kept in (
        (Change(uuid.uuid4(), False, post.created_at), True),  # someone's private post: not this part
        (Change(owner.id, True, before + timedelta(seconds=1)), True),  # public, but outside its slice
        (Change(owner.id, True, post.created_at), False),
        (Change(None, None, None), False),
    ):
        cache._apply([])  # a fresh epoch; nothing cached is touched
        cache._shared.clear()
        release = asyncio.Event()
        make_base = cache._make_base

        async def slow(plan: Any, make: Any = make_base, release: asyncio.Event = release) -> Any:
            await release.wait()
            return await make(plan)

        cache._make_base = slow
        try:
            making = asyncio.create_task(cache.page(None, request, 0))
            await asyncio.sleep(0.01)
            cache._apply([change])
            release.set()
            body = await making
        finally:
            del cache._make_base
        assert json.loads(body)["results"][0]["id"] == str(post.id)
        assert (cache.cached_page(None, request, 0) is not None) == kept, change


async def test_every_feed_route_has_its_fast_path(
    app: FastAPI, client: httpx.AsyncClient, make_user: MakeUser, make_image: MakeImage, auth: Auth
) -> None:
    """The fast path finds the feed routes among the router's routes: every route that answers a
    `FeedPage` is among them, and a page it answered once is answered again without routing."""
    from fastapi.routing import iter_route_contexts

    from app.api.routes.feed import CachedFeedPages, feed_routes

    member = await make_user()
    await make_image(member)
    feed_pages = {
        str(route.path)
        for route in iter_route_contexts(app.router.routes)
        if getattr(route, "response_model", None) is FeedPage
    }
    assert {route.path for route, _ in feed_routes(app)} == feed_pages
    assert len(feed_pages) == 2

    async def no_routing(scope: Any, receive: Any, send: Any) -> None:
        raise AssertionError(f"routed: {scope['path']}")

    fast_path = CachedFeedPages(no_routing)
    for template in sorted(feed_pages):
        path = template.replace("{creator}", str(member.id))
        # odd but valid spacing and case: the routes and the fast path read the header alike
        for headers in ({}, {"Authorization": "bearer  " + auth(member)["Authorization"].split()[1] + " "}):
            routed = await client.get(path, headers=headers, params={"limit": 7})
            assert routed.status_code == 200, routed.text
            sent: list[dict[str, Any]] = []

            async def receive() -> dict[str, Any]:
                return {"type": "http.request", "body": b"", "more_body": False}

            async def send(message: dict[str, Any], sink: list[dict[str, Any]] = sent) -> None:
                sink.append(message)

            scope = {
                "type": "http",
                "method": "GET",
                "path": path,
                "raw_path": path.encode(),
                "root_path": "",
                "query_string": b"limit=7",
                "headers": [(k.lower().encode(), v.encode("latin-1")) for k, v in headers.items()],
                "app": app,
            }
            await fast_path(scope, receive, send)
            assert sent[0]["status"] == 200 and sent[1]["body"] == routed.content


async def test_members_parts_stay_within_their_budget(
    settings: Settings, make_user: MakeUser, make_image: MakeImage, auth: Auth
) -> None:
    members = [await make_user() for _ in range(12)]
    for member in members:  # each with a private post among the newest: every page is merged
        await make_image(member, public=False)
        await make_image(member)
    budget = 6000
    application = create_app(settings.model_copy(update={"FEED_CACHE_MEMBER_BYTES": budget}))
    async with application.router.lifespan_context(application):
        transport = httpx.ASGITransport(app=application)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as http:
            for _ in range(2):
                for member in members:
                    response = await http.get(LATEST, headers=auth(member))
                    assert response.status_code == 200
                    ids = [item["id"] for item in response.json()["results"]]
                    assert len(ids) == 13  # 12 public posts and their own private one
            stats = _cache(application).stats()
    assert 0 < stats["member_bytes"] <= budget
    assert stats["member_entries"] < 2 * len(members)  # some were evicted


async def test_a_page_made_again_serializes_only_the_cards_that_changed(
    app: FastAPI, client: httpx.AsyncClient, make_user: MakeUser, make_image: MakeImage, auth: Auth
) -> None:
    owner = await make_user()
    for _ in range(5):
        await make_image(owner)
    await make_image(owner, public=False)
    for headers in ({}, auth(owner)):
        await _ids(client, headers=headers)
    cards = _cache(app).cards
    made = cards.made
    await make_image(owner)  # drops the head parts: their other cards are still the same rows
    ids = await _ids(client)
    assert len(ids) == 6 and await _ids(client, headers=auth(owner)) != ids
    assert cards.made == made + 1


async def test_a_lost_query_connection_is_replaced_before_it_fails_a_request(
    app: FastAPI, client: httpx.AsyncClient, db: AsyncSession, make_user: MakeUser, make_image: MakeImage
) -> None:
    """The cache's own connection for its queries is closed by the server (a restart): the next miss
    notices and opens another, as the pool does for its connections."""
    owner = await make_user()
    await make_image(owner)
    await _ids(client)
    held = _cache(app).queries.driver
    assert held is not None
    await db.execute(sa.text("SELECT pg_terminate_backend(:pid)"), {"pid": held.get_server_pid()})
    await db.commit()
    await asyncio.sleep(0.2)  # the event loop sees the connection close
    await make_image(owner)  # a miss
    assert len(await _ids(client)) == 2
    assert _cache(app).queries.driver is not None and _cache(app).queries.driver is not held


async def test_a_members_page_follows_public_parts_that_were_not_kept(
    app: FastAPI, make_user: MakeUser, make_image: MakeImage
) -> None:
    """A member's page merged with a public part is remembered by that part: two public parts that were
    made across a change (and so not kept) are still two parts, never one remembered page for both."""
    member = await make_user()
    await make_image(member)
    await make_image(member, public=False, created_at=datetime.now(UTC) + timedelta(hours=1))
    cache = _cache(app)
    request = feeds.FeedRequest(None, feeds.Paging(limit=5))
    make_base = cache._make_base

    async def made_across_a_change(plan: Any, make: Any = make_base) -> Any:
        part = await make(plan)
        # as if a public post landed meanwhile: this part is not kept; the member's private part stays
        cache._apply([Change(member.id, True, datetime.now(UTC))])
        return part

    cache._make_base = made_across_a_change
    try:
        for expected in (2, 3):
            await cache.snapshot()
            window = app.state.urls.expiry()
            body = await cache.page(member.id, request, window)
            assert len(json.loads(body)["results"]) == expected
            assert cache.cached_page(None, request, window) is None  # the public part was not kept
            await make_image(member)
    finally:
        del cache._make_base
