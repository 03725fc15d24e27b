"""Queries on images: the feeds (keyset paging over (created_at, id)) and single rows."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from app.models import VISIBLE_STATES, Image, ImageState, User


@dataclass(frozen=True, slots=True)
class FeedRow:
    """What a feed card needs, read in the same query (no request per item)."""

    id: uuid.UUID
    owner_id: uuid.UUID
    username: str
    public: bool
    state: str
    created_at: datetime

    @property
    def privacy(self) -> str:
        return "public" if self.public else "private"

    @property
    def original_key(self) -> str:
        return f"{self.privacy}/originals/{self.id}"

    @property
    def rendition_key(self) -> str:
        return f"{self.privacy}/renditions/{self.id}.webp"


@dataclass(frozen=True, slots=True)
class Window:
    """Which slice of a feed: strictly older than `cursor`, within (after, before), at most `limit`."""

    limit: int
    cursor: tuple[datetime, uuid.UUID] | None = None
    before: datetime | None = None
    after: datetime | None = None


_COLUMNS = (Image.id, Image.owner_id, User.username, Image.public, Image.state, Image.created_at)


def _branch(where: list[sa.ColumnElement[bool]], window: Window) -> sa.Select[tuple[object, ...]]:
    """One index-friendly, already ordered and limited select."""
    conditions = [Image.state.in_(VISIBLE_STATES), *where]  # type: ignore[attr-defined]
    if window.cursor is not None:
        conditions.append(sa.tuple_(Image.created_at, Image.id) < sa.tuple_(*window.cursor))
    if window.before is not None:
        conditions.append(Image.created_at < window.before)
    if window.after is not None:
        conditions.append(Image.created_at > window.after)
    return (
        sa.select(*_COLUMNS)
        .join(User, User.id == Image.owner_id)
        .where(*conditions)
        .order_by(Image.created_at.desc(), Image.id.desc())  # type: ignore[attr-defined]
        .limit(window.limit)
    )


def feed_query(
    *, viewer_id: uuid.UUID | None, window: Window, creator_id: uuid.UUID | None = None
) -> sa.Select[tuple[object, ...]] | sa.CompoundSelect:
    """The visible images, newest first: everyone's public ones plus the viewer's own private ones.

    The viewer's feed is a UNION ALL of two branches that each walk their own partial index in order,
    so a page costs two short index scans instead of a sort over every visible row.
    """
    public = Image.public == sa.true()
    if creator_id is not None:
        where = [Image.owner_id == creator_id]
        if viewer_id != creator_id:
            where.append(public)
        return _branch(where, window)
    if viewer_id is None:
        return _branch([public], window)
    mine_private = [Image.owner_id == viewer_id, Image.public == sa.false()]
    union = sa.union_all(_branch([public], window), _branch(mine_private, window)).subquery()
    return sa.select(*union.c).order_by(union.c.created_at.desc(), union.c.id.desc()).limit(window.limit)


async def feed(
    session: AsyncSession, *, viewer_id: uuid.UUID | None, window: Window, creator_id: uuid.UUID | None = None
) -> list[FeedRow]:
    result = await session.execute(feed_query(viewer_id=viewer_id, window=window, creator_id=creator_id))
    return [FeedRow(*row) for row in result.all()]


# --- single images and their states (DESIGN.md: pending -> uploaded -> ready | rejected) ----------------
async def get(session: AsyncSession, image_id: uuid.UUID) -> Image | None:
    return await session.get(Image, image_id)


async def create_pending(session: AsyncSession, *, owner_id: uuid.UUID, public: bool) -> Image:
    image = Image(owner_id=owner_id, public=public)
    session.add(image)
    await session.commit()
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
    session: AsyncSession, image_id: uuid.UUID, to: ImageState, *, reason: str | None = None
) -> bool:
    """Move the row to `to` if its current state allows it (no commit); True when a row changed."""
    values: dict[str, object] = {"state": to.value, "updated_at": sa.func.now()}
    values["rejected_reason"] = reason if to == ImageState.REJECTED else None
    result = await session.execute(
        sa.update(Image)
        .where(Image.id == image_id, Image.state.in_(_MOVES[to.value]))  # type: ignore[attr-defined]
        .values(**values)
    )
    return bool(result.rowcount)  # type: ignore[attr-defined]


async def delete(session: AsyncSession, image_id: uuid.UUID) -> None:
    await session.execute(sa.delete(Image).where(Image.id == image_id))  # type: ignore[arg-type]
    await session.commit()


async def stale_pending(session: AsyncSession, *, older_than: datetime, limit: int) -> list[Image]:
    """Pending rows made before `older_than`, oldest first (uses ix_images_pending_created)."""
    result = await session.execute(
        sa.select(Image)
        .where(Image.state == ImageState.PENDING.value, Image.created_at < older_than)
        .order_by(Image.created_at)  # type: ignore[arg-type]
        .limit(limit)
    )
    return list(result.scalars())
