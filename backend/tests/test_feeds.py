"""Feeds: the authorization matrix, exact keyset paging, filters, query plans, and no request per item."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
import sqlalchemy as sa
from fastapi import FastAPI
from sqlalchemy.ext.asyncio import AsyncSession

from app.crud.images import Window, feed_query
from app.models import User
from app.services.media_urls import verify_signed_url

from .conftest import MEDIA_BASE, TEST_KEY_ID, MakeImage, MakeUser, driver_queries

Auth = Callable[[User], dict[str, str]]


async def _ids(
    client: httpx.AsyncClient, path: str, headers: dict[str, str] | None = None, **params: Any
) -> list[str]:
    response = await client.get(path, headers=headers or {}, params=params)
    assert response.status_code == 200, response.text
    return [item["id"] for item in response.json()["results"]]


@pytest.fixture
async def world(make_user: MakeUser, make_image: MakeImage) -> dict[str, Any]:
    """Two members, each with a public and a private post, plus posts no feed may show."""
    alice, bob = await make_user("alice"), await make_user("bob")
    base = datetime(2026, 1, 1, tzinfo=UTC)
    posts = {
        "alice_public": await make_image(alice, public=True, created_at=base + timedelta(minutes=1)),
        "alice_private": await make_image(alice, public=False, created_at=base + timedelta(minutes=2)),
        "bob_public": await make_image(
            bob, public=True, state="ready", created_at=base + timedelta(minutes=3)
        ),
        "bob_private": await make_image(
            bob, public=False, state="ready", created_at=base + timedelta(minutes=4)
        ),
        "bob_pending": await make_image(
            bob, public=True, state="pending", created_at=base + timedelta(minutes=5)
        ),
        "bob_rejected": await make_image(
            bob, public=True, state="rejected", created_at=base + timedelta(minutes=6)
        ),
    }
    return {"alice": alice, "bob": bob, **{k: str(v.id) for k, v in posts.items()}}


async def test_latest_feed_authorization_matrix(
    client: httpx.AsyncClient, world: dict[str, Any], auth: Auth
) -> None:
    w = world
    assert await _ids(client, "/api/v1/feed/latest") == [w["bob_public"], w["alice_public"]]
    assert await _ids(client, "/api/v1/feed/latest", auth(w["alice"])) == [
        w["bob_public"],
        w["alice_private"],
        w["alice_public"],
    ]
    assert await _ids(client, "/api/v1/feed/latest", auth(w["bob"])) == [
        w["bob_private"],
        w["bob_public"],
        w["alice_public"],
    ]


@pytest.mark.parametrize(
    ("viewer", "creator", "expected"),
    [
        (None, "bob", ["bob_public"]),
        ("alice", "bob", ["bob_public"]),
        ("bob", "bob", ["bob_private", "bob_public"]),
        (None, "alice", ["alice_public"]),
        ("alice", "alice", ["alice_private", "alice_public"]),
        ("bob", "alice", ["alice_public"]),
    ],
)
async def test_by_user_feed_authorization_matrix(
    client: httpx.AsyncClient,
    world: dict[str, Any],
    auth: Auth,
    viewer: str | None,
    creator: str,
    expected: list[str],
) -> None:
    headers = auth(world[viewer]) if viewer else None
    got = await _ids(client, f"/api/v1/feed/by_user/{world[creator].id}", headers)
    assert got == [world[name] for name in expected]


async def test_by_user_of_unknown_creator_is_an_empty_page(client: httpx.AsyncClient) -> None:
    response = await client.get(f"/api/v1/feed/by_user/{uuid.uuid4()}")
    assert response.json() == {"success": True, "count": 0, "results": [], "next_cursor": None}


async def test_feed_items_carry_what_a_card_needs(
    client: httpx.AsyncClient, world: dict[str, Any], auth: Auth, signing_key: tuple[str, str]
) -> None:
    from cryptography.hazmat.primitives.serialization import load_pem_public_key

    body = (await client.get("/api/v1/feed/latest", headers=auth(world["bob"]))).json()
    assert body["success"] is True and body["count"] == 3 and body["next_cursor"] is None
    items = {item["id"]: item for item in body["results"]}
    public = items[world["bob_public"]]
    assert set(public) == {
        "id",
        "creator",
        "creator_username",
        "download_url",
        "created_at",
        "public",
        "state",
    }
    assert public["creator"] == str(world["bob"].id) and public["creator_username"] == "bob"
    assert public["state"] == "ready" and public["public"] is True
    assert public["download_url"] == f"{MEDIA_BASE}/public/renditions/{world['bob_public']}.webp"
    assert (
        items[world["alice_public"]]["download_url"]
        == f"{MEDIA_BASE}/public/originals/{world['alice_public']}"
    )
    assert datetime.fromisoformat(public["created_at"]).utcoffset() == timedelta(0)

    private = urlsplit(items[world["bob_private"]]["download_url"])
    assert f"{private.scheme}://{private.netloc}{private.path}" == (
        f"{MEDIA_BASE}/private/renditions/{world['bob_private']}.webp"
    )
    query = {k: v[0] for k, v in parse_qs(private.query).items()}
    assert set(query) == {"Expires", "Signature", "Key-Pair-Id"}
    verify_signed_url(
        resource=f"{MEDIA_BASE}{private.path}",
        expires=query["Expires"],
        signature=query["Signature"],
        key_pair_id=query["Key-Pair-Id"],
        public_key=load_pem_public_key(signing_key[1].encode()),  # type: ignore[arg-type]
        expected_key_id=TEST_KEY_ID,
    )


async def test_paging_with_equal_timestamps_neither_duplicates_nor_skips(
    client: httpx.AsyncClient, make_user: MakeUser, make_image: MakeImage
) -> None:
    owner = await make_user()
    same = datetime(2026, 3, 3, 12, 0, tzinfo=UTC)
    made = [await make_image(owner, created_at=same) for _ in range(7)]
    made += [await make_image(owner, created_at=same - timedelta(seconds=1)) for _ in range(2)]
    seen: list[str] = []
    cursor = None
    pages = 0
    while True:
        params: dict[str, Any] = {"limit": 3, **({"cursor": cursor} if cursor else {})}
        body = (await client.get("/api/v1/feed/latest", params=params)).json()
        assert body["count"] == len(body["results"]) <= 3
        seen += [item["id"] for item in body["results"]]
        pages += 1
        cursor = body["next_cursor"]
        if cursor is None:
            break
    expected = [str(i.id) for i in sorted(made, key=lambda i: (i.created_at, i.id), reverse=True)]
    assert seen == expected
    assert pages == 3


async def test_before_and_after_filter_by_time(
    client: httpx.AsyncClient, make_user: MakeUser, make_image: MakeImage
) -> None:
    owner = await make_user()
    base = datetime(2026, 5, 1, tzinfo=UTC)
    images = [await make_image(owner, created_at=base + timedelta(hours=h)) for h in range(5)]
    got = await _ids(
        client,
        "/api/v1/feed/latest",
        before=(base + timedelta(hours=4)).isoformat(),
        after=(base + timedelta(hours=1)).isoformat(),
    )
    assert got == [str(images[3].id), str(images[2].id)]


@pytest.mark.parametrize(
    "params",
    [
        {"limit": 0},
        {"limit": 101},
        {"cursor": "garbage"},
        {"cursor": "e30"},
        {"before": "yesterday"},
        {"before": "0001-01-01T00:00:00+07:13"},  # before year 1 in UTC (found by schemathesis)
    ],
    ids=[
        "limit-0",
        "limit-101",
        "cursor-garbage",
        "cursor-empty-object",
        "before-not-a-time",
        "before-year-0",
    ],
)
async def test_bad_paging_parameters_are_422(client: httpx.AsyncClient, params: dict[str, Any]) -> None:
    response = await client.get("/api/v1/feed/latest", params=params)
    assert response.status_code == 422
    assert response.json()["success"] is False


async def test_limit_defaults_to_50(client: httpx.AsyncClient, make_user: MakeUser, db: AsyncSession) -> None:
    owner = await make_user()
    await db.execute(
        sa.text(
            "INSERT INTO images (id, owner_id, public, state, created_at, updated_at) "
            "SELECT gen_random_uuid(), :owner, true, 'uploaded', now() - (n || ' seconds')::interval, now() "
            "FROM generate_series(1, 120) AS n"
        ),
        {"owner": owner.id},
    )
    await db.commit()
    body = (await client.get("/api/v1/feed/latest")).json()
    assert body["count"] == 50 and body["next_cursor"]
    assert (await client.get("/api/v1/feed/latest", params={"limit": 100})).json()["count"] == 100


async def test_odd_rows_never_break_a_feed(
    client: httpx.AsyncClient, make_user: MakeUser, make_image: MakeImage, auth: Auth
) -> None:
    """A state this code does not know (added by a newer migration) and a deactivated creator."""
    owner = await make_user()
    gone = await make_user(is_active=False)
    normal = await make_image(owner)
    await make_image(owner, state="archived")
    old_post = await make_image(gone, created_at=datetime(1970, 1, 1, tzinfo=UTC))
    assert await _ids(client, "/api/v1/feed/latest") == [str(normal.id), str(old_post.id)]
    assert await _ids(client, "/api/v1/feed/latest", auth(owner)) == [str(normal.id), str(old_post.id)]


async def test_a_feed_page_costs_a_query_per_part_never_per_item(
    app: FastAPI, client: httpx.AsyncClient, make_user: MakeUser, make_image: MakeImage, auth: Auth
) -> None:
    """A page of 100 costs the token's member lookup plus one query per part it is made of: the public
    posts every member shares, and the member's own private ones (app/services/feed_cache.py); the next
    member's page reuses the public part."""
    owners = [await make_user() for _ in range(5)]
    visible_to_owner0 = 0
    for index in range(150):
        public = index % 3 != 0
        await make_image(owners[index % 5], public=public)
        visible_to_owner0 += public or index % 5 == 0
    assert visible_to_owner0 > 100
    for owner, parts in ((owners[0], 2), (owners[1], 1)):
        with driver_queries(app) as sent:
            body = (
                await client.get("/api/v1/feed/latest", params={"limit": 100}, headers=auth(owner))
            ).json()
            await asyncio.sleep(0.05)  # query loggers are called soon after each statement
        # the cache's version and change reads, if it reconnected meanwhile
        sent = [s for s in sent if "feed_version" not in s and "feed_changes" not in s]
        assert body["count"] == 100 and body["next_cursor"]
        assert len([s for s in sent if "FROM images" in s]) == parts, sent
        assert len(sent) == parts + 1, sent


async def _plan(db: AsyncSession, query: sa.Select[Any] | sa.CompoundSelect) -> str:
    compiled = query.compile(dialect=db.bind.dialect, compile_kwargs={"literal_binds": True})  # type: ignore[union-attr]
    rows = await db.execute(sa.text(f"EXPLAIN {compiled}"))
    return "\n".join(row[0] for row in rows)


async def test_feed_queries_walk_their_indexes(db: AsyncSession, make_user: MakeUser) -> None:
    """Realistic skew: one prolific creator, one who owns 1% of 20,000 posts (as most creators do)."""
    prolific, rare = await make_user(), await make_user()
    await db.execute(
        sa.text(
            "INSERT INTO images (id, owner_id, public, state, created_at, updated_at) "
            "SELECT gen_random_uuid(), CASE WHEN n % 100 = 0 THEN CAST(:rare AS uuid) ELSE CAST(:prolific AS uuid) END, "
            "n % 7 <> 0, (ARRAY['pending','uploaded','ready','rejected'])[1 + n % 4], "
            "now() - (n || ' minutes')::interval, now() FROM generate_series(1, 20000) AS n"
        ),
        {"rare": rare.id, "prolific": prolific.id},
    )
    await db.commit()
    await db.execute(sa.text("ANALYZE images"))
    window = Window(limit=51, cursor=(datetime.now(UTC), uuid.uuid4()))
    anonymous = await _plan(db, feed_query(viewer_id=None, window=window))
    assert "ix_images_public_feed" in anonymous and "Sort" not in anonymous, anonymous
    member = await _plan(db, feed_query(viewer_id=rare.id, window=window))
    assert "ix_images_public_feed" in member and "ix_images_owner_feed" in member, member
    others_view = await _plan(db, feed_query(viewer_id=None, window=window, creator_id=rare.id))
    assert "ix_images_owner_public_feed" in others_view and "Sort" not in others_view, others_view
    own_view = await _plan(db, feed_query(viewer_id=rare.id, window=window, creator_id=rare.id))
    assert "ix_images_owner_feed" in own_view and "Sort" not in own_view, own_view
    floored = Window(limit=51, cursor=window.cursor, floor=datetime.now(UTC) - timedelta(days=1))
    private = await _plan(db, feed_query(viewer_id=rare.id, window=floored, private_only=True))
    assert "ix_images_owner_feed" in private and "Sort" not in private, private


def test_the_feed_sql_of_every_shape_numbers_its_parameters_in_order() -> None:
    """The statements run on the driver connection: $n must follow the names their values are sent by,
    and the page size is part of the SQL (a cached generic plan, no planning per page)."""
    import itertools
    import re

    from app.crud.images import _feed_sql, _Shape

    for kind, cursor, before, after, floor in itertools.product(
        ("public", "member", "creator_own", "creator_public", "private"),
        (False, True),
        (False, True),
        (False, True),
        (False, True),
    ):
        sql, names = _feed_sql(_Shape(kind, cursor, before, after, floor), 51)
        numbers = sorted({int(n) for n in re.findall(r"\$(\d+)", sql)})
        assert numbers == list(range(1, len(names) + 1)), (kind, sql, names)
        assert "feed_limit" not in names and "LIMIT 51" in sql and "LIMIT $" not in sql
        assert len(names) == (kind != "public") + 2 * cursor + before + after + floor
