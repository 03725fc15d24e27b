"""Queries on images: the feeds (keyset paging over (created_at, id)) and single rows."""

from __future__ import annotations

import functools
import uuid
from dataclasses import dataclass, fields
from datetime import datetime
from typing import Any, Protocol

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql.asyncpg import PGDialect_asyncpg
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from app.models import VISIBLE_STATES, Image, ImageKeys, ImageState, User


@dataclass(frozen=True, slots=True)
class FeedRow(ImageKeys):
    """What a feed card shows, read in the same query (no request per item).

    The one list of card columns: the feed query selects these fields in this order, the feed cache keys
    a card's JSON by their values, and migration 0006's triggers record a change of any of them
    (backend/tests/test_feed_changes.py holds the triggers to this list).
    """

    id: uuid.UUID
    owner_id: uuid.UUID
    username: str
    public: bool
    state: str
    created_at: datetime
    rendition_ext: str | None


@dataclass(frozen=True, slots=True)
class Window:
    """Which slice of a feed: strictly older than `cursor`, within (after, before), at most `limit`; with
    `floor`, only rows created at or after it (the feed cache reads a member's private posts down to where
    the public part of their page ends: app/services/feed_cache.py)."""

    limit: int
    cursor: tuple[datetime, uuid.UUID] | None = None
    before: datetime | None = None
    after: datetime | None = None
    floor: datetime | None = None


# Card columns that are not the image's own; every other FeedRow field is a column of `images`.
_FROM_OTHER_TABLES = {"username": User}
IMAGE_CARD_COLUMNS = tuple(f.name for f in fields(FeedRow) if f.name not in _FROM_OTHER_TABLES)
_COLUMNS = tuple(col(getattr(_FROM_OTHER_TABLES.get(f.name, Image), f.name)) for f in fields(FeedRow))


# Bind parameters of the feed statements. The statements themselves are built once per shape and kept
# (`_feed_statement`): building the SQLAlchemy expression cost more CPU than running the query did
# (bench/README.md, "Changes made from the benchmark"); the SQL sent is the same as before.
# The page size is written into the SQL (a page of 50 is nearly every request): a statement whose only
# parameters are ids and times gets a cached generic plan, where a parameter LIMIT made PostgreSQL plan
# every execution again (~0.3 ms of database CPU per page, more as the table grows).
_LIMIT = sa.bindparam("feed_limit", type_=sa.Integer(), literal_execute=True)
_CURSOR_CREATED_AT = sa.bindparam("feed_cursor_created_at", type_=sa.DateTime(timezone=True))
_CURSOR_ID = sa.bindparam("feed_cursor_id", type_=sa.Uuid())
_BEFORE = sa.bindparam("feed_before", type_=sa.DateTime(timezone=True))
_AFTER = sa.bindparam("feed_after", type_=sa.DateTime(timezone=True))
_FLOOR = sa.bindparam("feed_floor", type_=sa.DateTime(timezone=True))
_VIEWER = sa.bindparam("feed_viewer_id", type_=sa.Uuid())
_CREATOR = sa.bindparam("feed_creator_id", type_=sa.Uuid())


# The visible states as SQL literals: `state IN ('uploaded', 'ready')` is word for word the predicate of the
# partial indexes, and leaves only the window's values as parameters.
_VISIBLE: list[sa.ColumnElement[str]] = [sa.literal_column(f"'{state}'") for state in VISIBLE_STATES]


def _branch(
    where: list[sa.ColumnElement[bool]], *, cursor: bool, before: bool, after: bool, floor: bool = False
) -> sa.Select[Any]:
    """One index-friendly, already ordered and limited select."""
    conditions = [col(Image.state).in_(_VISIBLE), *where]
    if cursor:
        conditions.append(
            sa.tuple_(col(Image.created_at), col(Image.id)) < sa.tuple_(_CURSOR_CREATED_AT, _CURSOR_ID)
        )
    if before:
        conditions.append(col(Image.created_at) < _BEFORE)
    if after:
        conditions.append(col(Image.created_at) > _AFTER)
    if floor:
        conditions.append(col(Image.created_at) >= _FLOOR)
    return (
        sa.select(*_COLUMNS)
        .join(User, col(User.id) == col(Image.owner_id))
        .where(*conditions)
        .order_by(col(Image.created_at).desc(), col(Image.id).desc())
        .limit(_LIMIT)
    )


@dataclass(frozen=True, slots=True)
class _Shape:
    kind: str
    cursor: bool
    before: bool
    after: bool
    floor: bool = False


@functools.cache
def _feed_statement(shape: _Shape) -> sa.Select[Any] | sa.CompoundSelect[Any]:
    """The statement of one feed shape (5 kinds x 16 window shapes at most), with bind parameters."""
    public = col(Image.public) == sa.true()
    window = {"cursor": shape.cursor, "before": shape.before, "after": shape.after, "floor": shape.floor}
    kind = shape.kind
    mine_private = [col(Image.owner_id) == _VIEWER, col(Image.public) == sa.false()]
    if kind == "creator_public":
        return _branch([col(Image.owner_id) == _CREATOR, public], **window)
    if kind == "creator_own":
        return _branch([col(Image.owner_id) == _CREATOR], **window)
    if kind == "public":
        return _branch([public], **window)
    if kind == "private":
        return _branch(mine_private, **window)
    union = sa.union_all(_branch([public], **window), _branch(mine_private, **window)).subquery()
    return sa.select(*union.c).order_by(union.c.created_at.desc(), union.c.id.desc()).limit(_LIMIT)


def _shape_and_values(
    *, viewer_id: uuid.UUID | None, window: Window, creator_id: uuid.UUID | None, private_only: bool = False
) -> tuple[_Shape, dict[str, object]]:
    values: dict[str, object] = {"feed_limit": window.limit}
    if private_only:
        if viewer_id is None or creator_id is not None:
            raise ValueError("the private posts of one member: a viewer and no creator")
        kind = "private"
        values["feed_viewer_id"] = viewer_id
    elif creator_id is not None:
        kind = "creator_own" if viewer_id == creator_id else "creator_public"
        values["feed_creator_id"] = creator_id
    elif viewer_id is None:
        kind = "public"
    else:
        kind = "member"
        values["feed_viewer_id"] = viewer_id
    if window.cursor is not None:
        values["feed_cursor_created_at"], values["feed_cursor_id"] = window.cursor
    if window.before is not None:
        values["feed_before"] = window.before
    if window.after is not None:
        values["feed_after"] = window.after
    if window.floor is not None:
        values["feed_floor"] = window.floor
    shape = _Shape(
        kind,
        window.cursor is not None,
        window.before is not None,
        window.after is not None,
        window.floor is not None,
    )
    return shape, values


def feed_query(
    *,
    viewer_id: uuid.UUID | None,
    window: Window,
    creator_id: uuid.UUID | None = None,
    private_only: bool = False,
) -> sa.Select[Any] | sa.CompoundSelect[Any]:
    """The visible images, newest first: everyone's public ones plus the viewer's own private ones
    (with `private_only`, only the viewer's private ones).

    The viewer's feed is a UNION ALL of two branches that each walk their own partial index in order,
    so a page costs two short index scans instead of a sort over every visible row.
    """
    shape, values = _shape_and_values(
        viewer_id=viewer_id, window=window, creator_id=creator_id, private_only=private_only
    )
    return _feed_statement(shape).params(values)


_DIALECT = PGDialect_asyncpg()  # type: ignore[no-untyped-call, unused-ignore]  # SQLAlchemy's dialects are untyped


@functools.lru_cache(maxsize=1024)
def _feed_sql(shape: _Shape, limit: int) -> tuple[str, tuple[str, ...]]:
    """The SQL asyncpg runs for one feed shape and page size, and the order of its parameters: compiled
    once (kept for 1,024 shapes x sizes; in practice a handful)."""
    statement = _feed_statement(shape)
    # Every bind needs a value to compile; only the literal one (the LIMIT) is rendered from it.
    values: dict[str, object] = {name: None for name in statement.compile().params}
    values["feed_limit"] = limit
    compiled = statement.params(values).compile(dialect=_DIALECT, compile_kwargs={"render_postcompile": True})
    names = tuple(name for name in compiled.positiontup or () if name != "feed_limit")
    return compiled.string, names


class Fetcher(Protocol):
    """What the feed needs of a connection: asyncpg's `fetch` (the driver connection of a pooled one)."""

    async def fetch(self, query: str, *args: object) -> list[Any]: ...


async def feed_records(
    connection: Fetcher,
    *,
    viewer_id: uuid.UUID | None,
    window: Window,
    creator_id: uuid.UUID | None = None,
    private_only: bool = False,
) -> list[Any]:
    """One page of rows on a driver connection, as asyncpg records of FeedRow's fields in its order: the
    SQL of the statement above, without the ORM.

    The feed is the API's hottest read; run through the ORM session, the same query cost ~1 ms more CPU
    than through asyncpg (bench/README.md, "Changes made from the benchmark").
    """
    shape, values = _shape_and_values(
        viewer_id=viewer_id, window=window, creator_id=creator_id, private_only=private_only
    )
    sql, names = _feed_sql(shape, window.limit)
    return await connection.fetch(sql, *(values[name] for name in names))


async def feed(
    connection: Fetcher, *, viewer_id: uuid.UUID | None, window: Window, creator_id: uuid.UUID | None = None
) -> list[FeedRow]:
    """`feed_records` as FeedRows."""
    records = await feed_records(connection, viewer_id=viewer_id, window=window, creator_id=creator_id)
    return [FeedRow(*record) for record in records]


# --- single images and their states (docs/design.md: pending -> uploaded -> ready | rejected) ----------------
async def get(session: AsyncSession, image_id: uuid.UUID) -> Image | None:
    return await session.get(Image, image_id)


async def create_pending(session: AsyncSession, *, owner_id: uuid.UUID, public: bool) -> Image:
    image = Image(owner_id=owner_id, public=public)
    session.add(image)
    await session.flush()
    return image


# Which states each event may move a row out of. Conditional updates make every event idempotent and
# order-independent: a rendition seen before its original still lands on `ready`, a late original event
# never moves a `ready` row back.
_MOVES: dict[str, tuple[str, ...]] = {
    ImageState.UPLOADED.value: (ImageState.PENDING.value,),
    ImageState.READY.value: (ImageState.PENDING.value, ImageState.UPLOADED.value, ImageState.REJECTED.value),
    ImageState.REJECTED.value: (ImageState.PENDING.value, ImageState.UPLOADED.value),
}


async def move(
    session: AsyncSession,
    image_id: uuid.UUID,
    to: ImageState,
    *,
    reason: str | None = None,
    rendition_ext: str | None = None,
) -> bool:
    """Move the row to `to` if its current state allows it (no commit); True when a row changed.

    `rendition_ext` is the extension of the rendition that made the row `ready` (the URLs point at it).
    """
    values: dict[str, object] = {"state": to.value, "updated_at": sa.func.now()}
    values["rejected_reason"] = reason if to == ImageState.REJECTED else None
    if to == ImageState.READY:
        values["rendition_ext"] = rendition_ext
    result = await session.execute(
        sa.update(Image)
        .where(col(Image.id) == image_id, col(Image.state).in_(_MOVES[to.value]))
        .values(**values)
    )
    return bool(result.rowcount)  # type: ignore[attr-defined]  # an UPDATE's CursorResult has it


async def delete(session: AsyncSession, image_id: uuid.UUID) -> None:
    await session.execute(sa.delete(Image).where(col(Image.id) == image_id))


async def stale_pending(session: AsyncSession, *, older_than: datetime, limit: int) -> list[Image]:
    """Pending rows made before `older_than`, oldest first (uses ix_images_pending_created)."""
    result = await session.execute(
        sa.select(Image)
        .where(col(Image.state) == ImageState.PENDING.value, col(Image.created_at) < older_than)
        .order_by(col(Image.created_at))
        .limit(limit)
    )
    return list(result.scalars())


async def owned_by(session: AsyncSession, owner_id: uuid.UUID) -> list[tuple[uuid.UUID, bool]]:
    """(id, public) of every image of one owner, in any state."""
    result = await session.execute(
        sa.select(col(Image.id), col(Image.public)).where(col(Image.owner_id) == owner_id)
    )
    return [(row.id, row.public) for row in result]
