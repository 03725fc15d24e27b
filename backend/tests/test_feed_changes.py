"""Migration 0006: every feed version bump records what it changed, and a card shows nothing the triggers miss.

The feed cache drops only the parts a change touches (app/services/feed_cache.py), so a change the
triggers do not record, or record with the wrong owner, privacy or time, would leave a stale page. These
tests write the way production does (their own committed statements) and read `feed_changes` back.
"""

from __future__ import annotations

import dataclasses
import re
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import httpx
import pytest
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from app.crud.images import IMAGE_CARD_COLUMNS, FeedRow
from app.models import User

from .conftest import MakeImage, MakeUser

Auth = Callable[[User], dict[str, str]]
Change = tuple[uuid.UUID | None, bool | None, datetime | None]
T0 = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)


async def _mark(db: AsyncSession) -> int:
    return int((await db.execute(sa.text("SELECT coalesce(max(id), 0) FROM feed_changes"))).scalar_one())


async def _recorded(db: AsyncSession, statement: str, **params: object) -> set[Change]:
    """What one committed statement recorded, as (owner, public, created_at)."""
    mark = await _mark(db)
    await db.execute(sa.text(statement), params)
    await db.commit()
    rows = await db.execute(
        sa.text("SELECT owner_id, public, created_at FROM feed_changes WHERE id > :mark"), {"mark": mark}
    )
    return {(row[0], row[1], row[2]) for row in rows}


ANYTHING: set[Change] = {(None, None, None)}


async def test_each_change_records_its_owner_privacy_and_time(
    db: AsyncSession, make_user: MakeUser, make_image: MakeImage
) -> None:
    alice, bob = await make_user(), await make_user()
    post = await make_image(alice, public=True, state="pending", created_at=T0)
    cases: list[tuple[str, dict[str, object], set[Change]]] = [
        # pending -> uploaded: the post appears
        ("UPDATE images SET state = 'uploaded' WHERE id = :id", {"id": post.id}, {(alice.id, True, T0)}),
        # a card column changes: the post as it was and as it is (here the same audience and time)
        (
            "UPDATE images SET state = 'ready', rendition_ext = 'webp' WHERE id = :id",
            {"id": post.id},
            {(alice.id, True, T0)},
        ),
        # a privacy change: both audiences
        (
            "UPDATE images SET public = false WHERE id = :id",
            {"id": post.id},
            {(alice.id, True, T0), (alice.id, False, T0)},
        ),
        # a time change: both times
        (
            "UPDATE images SET created_at = :t WHERE id = :id",
            {"id": post.id, "t": T0 + timedelta(hours=1)},
            {(alice.id, False, T0), (alice.id, False, T0 + timedelta(hours=1))},
        ),
        # a new owner: both owners
        (
            "UPDATE images SET owner_id = :owner WHERE id = :id",
            {"id": post.id, "owner": bob.id},
            {(alice.id, False, T0 + timedelta(hours=1)), (bob.id, False, T0 + timedelta(hours=1))},
        ),
        # what no card shows records nothing
        ("UPDATE images SET updated_at = now() WHERE id = :id", {"id": post.id}, set()),
        ("UPDATE images SET state = state WHERE id = :id", {"id": post.id}, set()),
        # the post goes
        ("DELETE FROM images WHERE id = :id", {"id": post.id}, {(bob.id, False, T0 + timedelta(hours=1))}),
    ]
    for statement, params, expected in cases:
        assert await _recorded(db, statement, **params) == expected, statement


async def test_rows_no_feed_shows_record_nothing(
    db: AsyncSession, make_user: MakeUser, make_image: MakeImage
) -> None:
    owner = await make_user()
    mark = await _mark(db)
    pending = await make_image(owner, state="pending")
    assert await _recorded(db, "UPDATE images SET state = 'rejected' WHERE id = :id", id=pending.id) == set()
    assert await _recorded(db, "DELETE FROM images WHERE id = :id", id=pending.id) == set()
    assert await _mark(db) == mark


async def test_what_may_touch_anything_records_a_change_without_owner(
    db: AsyncSession, make_user: MakeUser, make_image: MakeImage
) -> None:
    owner = await make_user()
    await make_image(owner)
    statements = [
        "UPDATE users SET username = 'renamed_' || substr(md5(random()::text), 1, 8) WHERE id = :id",
        "UPDATE users SET is_active = false WHERE id = :id",
        "DELETE FROM users WHERE id = :id",
    ]
    for statement in statements:
        assert await _recorded(db, statement, id=owner.id) >= ANYTHING, statement
    assert await _recorded(db, "TRUNCATE images, users CASCADE") == ANYTHING


async def test_a_statement_touching_many_posts_records_one_change_without_owner(
    db: AsyncSession, make_user: MakeUser
) -> None:
    owner = await make_user()
    insert = (
        "INSERT INTO images (id, owner_id, public, state, created_at, updated_at) "
        "SELECT gen_random_uuid(), :owner, true, 'uploaded', now() - n * interval '1 second', now() "
        "FROM generate_series(1, :rows) AS n"
    )
    assert len(await _recorded(db, insert, owner=owner.id, rows=32)) == 32
    assert await _recorded(db, insert, owner=owner.id, rows=33) == ANYTHING


async def test_each_slot_keeps_its_last_thousand_versions(
    db: AsyncSession, make_user: MakeUser, make_image: MakeImage
) -> None:
    owner = await make_user()
    post = await make_image(owner)
    flip = "UPDATE images SET state = CASE state WHEN 'ready' THEN 'uploaded' ELSE 'ready' END WHERE id = :id"
    # One transaction: one backend, so one slot, bumped 1,005 times.
    slot = int((await db.execute(sa.text("SELECT pg_backend_pid() % 16"))).scalar_one())
    for _ in range(1005):
        await db.execute(sa.text(flip), {"id": post.id})
    await db.commit()
    versions = (
        await db.execute(
            sa.text("SELECT min(version), max(version), count(*) FROM feed_changes WHERE slot = :slot"),
            {"slot": slot},
        )
    ).one()
    latest = int(
        (
            await db.execute(sa.text("SELECT version FROM feed_version WHERE slot = :s"), {"s": slot})
        ).scalar_one()
    )
    assert versions[1] == latest
    assert versions[0] == latest - 999 and versions[2] == 1000


def _trigger_card_columns(definition: str) -> set[str]:
    """The columns the update branch compares (`(o.a, o.b, ...) IS DISTINCT FROM (n.a, n.b, ...)`)."""
    compared = re.search(r"\(([^()]*)\)\s+IS DISTINCT FROM", definition)
    assert compared is not None, definition
    return {name.strip().removeprefix("o.") for name in compared.group(1).split(",")}


async def test_the_triggers_watch_every_card_column(db: AsyncSession) -> None:
    """FeedRow is the one list of what a card shows (the feed query selects it); the installed triggers
    must record a change of each of its columns: `id` is how the update branch pairs old and new rows,
    `username` is watched by the trigger on `users`."""
    definition = (
        await db.execute(sa.text("SELECT pg_get_functiondef('feed_version_bump_if_visible'::regproc)"))
    ).scalar_one()
    card = {field.name for field in dataclasses.fields(FeedRow)}
    assert set(IMAGE_CARD_COLUMNS) == card - {"username"}
    assert _trigger_card_columns(definition) == set(IMAGE_CARD_COLUMNS) - {"id"}
    watched_on_users = (
        await db.execute(
            sa.text(
                "SELECT array_agg(a.attname::text) FROM pg_trigger t "
                "JOIN pg_attribute a ON a.attrelid = t.tgrelid AND a.attnum = ANY (t.tgattr) "
                "WHERE t.tgname = 'users_feed_version'"
            )
        )
    ).scalar_one()
    assert "username" in watched_on_users


# How to change each card column of a visible public post (`:id`, owned by `:owner`; `:other` is another
# member). A column added to FeedRow without a line here fails the test below: add how to change it.
CHANGE_A_CARD_COLUMN = {
    "id": "UPDATE images SET id = gen_random_uuid() WHERE id = :id",
    "owner_id": "UPDATE images SET owner_id = :other WHERE id = :id",
    "username": "UPDATE users SET username = 'renamed_' || substr(md5(random()::text), 1, 8) WHERE id = :owner",
    "public": "UPDATE images SET public = false WHERE id = :id",
    "state": "UPDATE images SET state = 'ready' WHERE id = :id",
    "created_at": "UPDATE images SET created_at = created_at - interval '1 second' WHERE id = :id",
    "rendition_ext": "UPDATE images SET rendition_ext = 'jpg' WHERE id = :id",
}


@pytest.mark.parametrize("column", [field.name for field in dataclasses.fields(FeedRow)])
async def test_a_change_of_any_card_column_reaches_every_cached_page(
    client: httpx.AsyncClient,
    db: AsyncSession,
    make_user: MakeUser,
    make_image: MakeImage,
    auth: Auth,
    column: str,
) -> None:
    assert column in CHANGE_A_CARD_COLUMN, f"say in CHANGE_A_CARD_COLUMN how to change card column {column!r}"
    owner, other = await make_user(), await make_user()
    post = await make_image(owner, state="uploaded", created_at=T0)
    if column == "rendition_ext":
        await db.execute(sa.text("UPDATE images SET state = 'ready' WHERE id = :id"), {"id": post.id})
        await db.commit()
    pages = {
        "latest": ("/api/v1/feed/latest", {}),
        "latest, as the owner": ("/api/v1/feed/latest", auth(owner)),
        "by_user": (f"/api/v1/feed/by_user/{owner.id}", {}),
        "by_user, as the owner": (f"/api/v1/feed/by_user/{owner.id}", auth(owner)),
    }
    before = {}
    for name, (path, headers) in pages.items():
        first = await client.get(path, headers=headers)
        assert (await client.get(path, headers=headers)).content == first.content  # cached now
        before[name] = first.content
    await db.execute(
        sa.text(CHANGE_A_CARD_COLUMN[column]), {"id": post.id, "owner": owner.id, "other": other.id}
    )
    await db.commit()
    for name, (path, headers) in pages.items():
        response = await client.get(path, headers=headers)
        assert response.status_code == 200, response.text
        assert response.content != before[name], f"{name} still shows the post as it was before {column}"
