"""Feeds: everyone's public posts plus the caller's own private ones, newest first, keyset-paged."""

from __future__ import annotations

import uuid
from dataclasses import asdict, dataclass
from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Depends, Query

from app.api.deps import OptionalUser, SessionDep, UrlsDep
from app.models import FeedPage
from app.services import feeds

router = APIRouter(prefix="/feed", tags=["feed"])

Limit = Annotated[int, Query(ge=1, le=feeds.MAX_LIMIT, description="Items per page")]
Cursor = Annotated[str | None, Query(max_length=512, description="next_cursor of the previous page")]
Before = Annotated[datetime | None, Query(description="Only posts created before this ISO time")]
After = Annotated[datetime | None, Query(description="Only posts created after this ISO time")]


@dataclass(frozen=True)
class Paging:
    """The query parameters every feed takes."""

    limit: int
    cursor: str | None
    before: datetime | None
    after: datetime | None


async def paging(
    limit: Limit = feeds.DEFAULT_LIMIT, cursor: Cursor = None, before: Before = None, after: After = None
) -> Paging:
    return Paging(limit=limit, cursor=cursor, before=before, after=after)


PagingDep = Annotated[Paging, Depends(paging)]


@router.get("/latest", response_model=FeedPage)
async def latest(session: SessionDep, urls: UrlsDep, viewer: OptionalUser, window: PagingDep) -> FeedPage:
    return await feeds.page(session, urls, viewer_id=viewer.id if viewer else None, **asdict(window))


@router.get("/by_user/{creator}", response_model=FeedPage)
async def by_user(
    creator: uuid.UUID, session: SessionDep, urls: UrlsDep, viewer: OptionalUser, window: PagingDep
) -> FeedPage:
    return await feeds.page(
        session, urls, viewer_id=viewer.id if viewer else None, creator_id=creator, **asdict(window)
    )
