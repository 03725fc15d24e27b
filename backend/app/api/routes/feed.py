"""Feeds: everyone's public posts plus the caller's own private ones, newest first, keyset-paged.

Pages come from the per-process feed cache when the database's feed version says nothing a feed shows
has changed since they were made (app/services/feed_cache.py); otherwise from one query.

Two ways in, one cache key:

* the routes below: FastAPI validates the parameters and the token, makes the page on a miss and
  caches it (and documents the API);
* `CachedFeedPages`, an ASGI layer in front of routing, answers a request whose page is already cached
  without routing, dependency solving or validation: feeds are most of the API's traffic and those steps
  cost more CPU than the rest of a cached answer (bench/README.md, "Changes made from the benchmark").
  A page is only in the cache after the routes accepted exactly the same raw parameters (the key holds
  the raw values) for the same caller, so the shortcut answers exactly what the routes would; anything
  else (a miss, a bad token, an odd header) goes on to the routes.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Hashable
from dataclasses import asdict, dataclass
from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request, Response
from pydantic import BeforeValidator
from sqlalchemy.ext.asyncio import AsyncEngine
from starlette.datastructures import QueryParams
from starlette.types import ASGIApp, Receive, Scope, Send

from app.api.deps import BearerCredentials, access_token_from
from app.api.responses import DATABASE_DOWN, OPTIONAL_AUTH, TOKEN_OPTIONAL
from app.core.db import reading
from app.core.errors import INVALID_TOKEN, Unauthorized
from app.core.security import AccessToken, InvalidToken, decode_access_token
from app.crud import users
from app.models import FeedPage
from app.services import feeds
from app.services.feed_cache import FeedCache, Snapshot
from app.services.media_urls import MediaUrlBuilder
from app.services.sessions import RevocationList

PREFIX = "/api/v1/feed"
router = APIRouter(prefix="/feed", tags=["feed"], responses={**TOKEN_OPTIONAL, **DATABASE_DOWN})
PAGING_PARAMETERS = ("limit", "cursor", "before", "after")

Limit = Annotated[int, Query(ge=1, le=feeds.MAX_LIMIT, description="Items per page")]
Cursor = Annotated[str | None, Query(max_length=512, description="next_cursor of the previous page")]


def _iso_time(value: object) -> object:
    """The times are documented as ISO 8601 (`date-time`); pydantic would also take a number as Unix time."""
    if isinstance(value, str) and _NUMBER.fullmatch(value.strip()):
        raise ValueError("give an ISO 8601 time such as 2026-11-26T12:00:00Z, not a number")
    return value


_NUMBER = re.compile(r"[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?")
IsoTime = Annotated[datetime | None, BeforeValidator(_iso_time)]
Before = Annotated[IsoTime, Query(description="Only posts created before this ISO 8601 time")]
After = Annotated[IsoTime, Query(description="Only posts created after this ISO 8601 time")]


@dataclass(frozen=True, slots=True)
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


def cache_key(viewer_id: uuid.UUID | None, creator: str | None, query: QueryParams) -> Hashable:
    """The caller, the raw creator path segment and every raw value of each paging parameter (so two
    requests share a key only if they are the same request to the routes, however FastAPI picks among
    repeated values). A member's page holds their private posts: it is theirs alone."""
    return (viewer_id, creator, tuple(tuple(query.getlist(name)) for name in PAGING_PARAMETERS))


async def _page_response(
    request: Request,
    credentials: BearerCredentials,
    creator_id: uuid.UUID | None,
    window: Paging,
) -> Response:
    state = request.app.state
    token = access_token_from(state.settings, request, credentials)
    viewer_id = None if token is None else token.user_id
    urls: MediaUrlBuilder = state.urls
    cache: FeedCache = state.feed_cache
    # The versions CachedFeedPages read for this request on its miss, if it read them.
    snapshot: Snapshot | None = getattr(request.state, "feed_snapshot", None)
    if token is not None:
        if snapshot is None:
            snapshot = await cache.snapshot()
        await _check_not_revoked(state.revocations, state.engine, token, snapshot)

    async def make() -> bytes:
        async with state.engine.connect() as connection, reading(connection) as driver:
            if viewer_id is not None and not await users.is_active(driver, viewer_id):
                raise Unauthorized(INVALID_TOKEN)  # deleted or deactivated since the token was issued
            return await feeds.page_json(
                driver, urls, viewer_id=viewer_id, creator_id=creator_id, **asdict(window)
            )

    key = cache_key(viewer_id, request.path_params.get("creator"), request.query_params)
    version = None if snapshot is None else snapshot.feed
    body = await cache.get_or_make(key, urls.expiry(), make, version=version)
    return Response(body, media_type="application/json")


async def _check_not_revoked(
    revocations: RevocationList, engine: AsyncEngine, token: AccessToken, snapshot: Snapshot | None
) -> None:
    """401 for a logged-out token: against this process's revocation list, brought up to the version read
    for this request (app/services/sessions.py); when none could be read, by asking the database."""
    if snapshot is not None:
        await revocations.catch_up(snapshot.revocations)
        revoked = revocations.is_revoked(token)
    else:
        async with engine.connect() as connection, reading(connection) as driver:
            revoked = not await users.token_is_valid(driver, token)
    if revoked:
        raise Unauthorized(INVALID_TOKEN)


@router.get("/latest", response_model=FeedPage, openapi_extra=OPTIONAL_AUTH)
async def latest(request: Request, credentials: BearerCredentials, window: PagingDep) -> Response:
    return await _page_response(request, credentials, None, window)


@router.get("/by_user/{creator}", response_model=FeedPage, openapi_extra=OPTIONAL_AUTH)
async def by_user(
    creator: uuid.UUID, request: Request, credentials: BearerCredentials, window: PagingDep
) -> Response:
    return await _page_response(request, credentials, creator, window)


_BEARER = re.compile(r"^[Bb][Ee][Aa][Rr][Ee][Rr] ([A-Za-z0-9._~+/=-]+)$")
_BY_USER = PREFIX + "/by_user/"


class CachedFeedPages:
    """ASGI layer in front of routing: answers GETs of feed pages that are cached (module docstring)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["method"] == "GET":
            body = await self._cached(scope)
            if body is not None:
                await send(
                    {
                        "type": "http.response.start",
                        "status": 200,
                        "headers": [
                            (b"content-length", str(len(body)).encode()),
                            (b"content-type", b"application/json"),
                        ],
                    }
                )
                await send({"type": "http.response.body", "body": body})
                return
        await self.app(scope, receive, send)

    async def _cached(self, scope: Scope) -> bytes | None:
        path: str = scope["path"]
        if path == PREFIX + "/latest":
            creator = None
        elif path.startswith(_BY_USER) and "/" not in path[len(_BY_USER) :] and len(path) > len(_BY_USER):
            creator = path[len(_BY_USER) :]
        else:
            return None
        state = scope["app"].state
        cache: FeedCache | None = getattr(state, "feed_cache", None)  # None before the lifespan ran
        if cache is None or not cache.enabled:
            return None
        token = None
        for name, value in scope["headers"]:
            if name == b"authorization":  # the first one, as the routes read it
                match = _BEARER.match(value.decode("latin-1"))
                if match is None:
                    return None  # the routes answer with the right error
                try:
                    token = decode_access_token(match.group(1), state.settings)
                except InvalidToken:
                    return None
                break
        urls: MediaUrlBuilder = state.urls
        key = cache_key(None if token is None else token.user_id, creator, QueryParams(scope["query_string"]))
        body, snapshot = await cache.lookup(key, urls.expiry())
        if body is None:
            if snapshot is not None:  # the route makes the page: no second read
                scope.setdefault("state", {})["feed_snapshot"] = snapshot
            return None
        if token is not None and snapshot is not None:
            revocations: RevocationList = state.revocations
            try:
                await revocations.catch_up(snapshot.revocations)
            except Exception:  # the routes answer (a 503 if the database is gone)
                return None
            if revocations.is_revoked(token):
                return None  # the routes answer 401
        return body
