"""Feeds: everyone's public posts plus the caller's own private ones, newest first, keyset-paged.

Pages come from the per-process feed cache, built from cached parts that are dropped exactly when a
change touches them (app/services/feed_cache.py); otherwise from the database.

Two ways in, one answer:

* the routes below: FastAPI validates the parameters and the token, answers, and remembers that this raw
  request (route, raw path parameter, raw query string) is valid and what it asks for;
* `CachedFeedPages`, an ASGI layer in front of routing, answers a request the routes already validated
  (the same raw route, parameter and query string) without routing, dependency solving or validation:
  feeds are most of the API's traffic and those steps cost more CPU than the rest of a cached answer
  (bench/README.md, "Changes made from the benchmark"). It finds the feed routes among the router's own
  routes and matches them as the router does, and reads the token as FastAPI's `HTTPBearer` does;
  anything else (a request not validated yet, a bad token, an odd header, an error) goes on to the routes.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Hashable
from dataclasses import dataclass
from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, FastAPI, Query, Request, Response
from fastapi.routing import iter_route_contexts
from fastapi.security.utils import get_authorization_scheme_param
from pydantic import BeforeValidator
from sqlalchemy.ext.asyncio import AsyncEngine
from starlette.routing import Match
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
from app.services.sessions import RevocationList

router = APIRouter(prefix="/feed", tags=["feed"], responses={**TOKEN_OPTIONAL, **DATABASE_DOWN})

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
class PagingParameters:
    """The query parameters every feed takes, as validated."""

    limit: int
    cursor: str | None
    before: datetime | None
    after: datetime | None


async def paging(
    limit: Limit = feeds.DEFAULT_LIMIT, cursor: Cursor = None, before: Before = None, after: After = None
) -> PagingParameters:
    return PagingParameters(limit=limit, cursor=cursor, before=before, after=after)


PagingDep = Annotated[PagingParameters, Depends(paging)]


def raw_request(route: str, scope: Scope) -> Hashable:
    """What identifies a request to a feed route before validation: the route, its raw path parameter and
    the raw query string (so two requests share it only if the routes would read them the same way)."""
    return (route, scope.get("path_params", {}).get("creator"), scope.get("query_string", b""))


async def _page_response(
    request: Request,
    credentials: BearerCredentials,
    route: str,
    creator_id: uuid.UUID | None,
    window: PagingParameters,
) -> Response:
    state = request.app.state
    # What CachedFeedPages ran into answering this very request (a 401 for a deactivated member, a 503):
    # the same answer, without asking again.
    failure: Exception | None = getattr(request.state, "feed_failure", None)
    if failure is not None:
        raise failure
    token = access_token_from(state.settings, request, credentials)
    feed = feeds.FeedRequest(
        creator_id,
        feeds.Paging.parse(
            limit=window.limit, cursor=window.cursor, before=window.before, after=window.after
        ),
    )
    cache: FeedCache = state.feed_cache
    cache.remember_request(raw_request(route, request.scope), feed)
    # The versions CachedFeedPages read for this request, if it read them.
    snapshot: Snapshot | None = getattr(request.state, "feed_snapshot", None)
    body = await serve(state, token, feed, snapshot)
    return Response(body, media_type="application/json")


async def serve(
    state: Any, token: AccessToken | None, feed: feeds.FeedRequest, snapshot: Snapshot | None
) -> bytes:
    """The page for a caller whose token (if any) is valid: checked against revocations and the member's
    state, from the cache when the versions can be read, else from the database."""
    cache: FeedCache = state.feed_cache
    versioned = token is not None or cache.enabled
    if snapshot is None and versioned:
        snapshot = await cache.snapshot()
    if token is not None:
        await _check_not_revoked(state.revocations, state.engine, token, snapshot)
    viewer = None if token is None else token.user_id
    url_window: int = state.urls.expiry()
    if snapshot is None and versioned:
        return await cache.from_database(viewer, feed, url_window)
    return await cache.page(viewer, feed, url_window)


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
    return await _page_response(request, credentials, "latest", None, window)


@router.get("/by_user/{creator}", response_model=FeedPage, openapi_extra=OPTIONAL_AUTH)
async def by_user(
    creator: uuid.UUID, request: Request, credentials: BearerCredentials, window: PagingDep
) -> Response:
    return await _page_response(request, credentials, "by_user", creator, window)


FEED_ENDPOINTS = {latest: "latest", by_user: "by_user"}


def feed_routes(app: FastAPI) -> list[tuple[Any, str]]:
    """The router's routes to the feed endpoints (wherever they are mounted), with each one's name."""
    return [
        (route, FEED_ENDPOINTS[route.endpoint])
        for route in iter_route_contexts(app.router.routes)
        if route.endpoint in FEED_ENDPOINTS and "GET" in (route.methods or ())
    ]


class CachedFeedPages:
    """ASGI layer in front of routing: answers GETs of feed requests the routes validated before (module
    docstring)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self._routes: list[tuple[Any, str]] | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["method"] == "GET":
            body = await self._answer(scope)
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

    def _match(self, scope: Scope) -> Hashable | None:
        if self._routes is None:
            self._routes = feed_routes(scope["app"])
        for route, name in self._routes:
            match, child = route.matches(scope)
            if match is Match.FULL:
                return (name, child["path_params"].get("creator"), scope.get("query_string", b""))
        return None

    async def _answer(self, scope: Scope) -> bytes | None:
        state = scope["app"].state
        cache: FeedCache | None = getattr(state, "feed_cache", None)  # None before the lifespan ran
        if cache is None:
            return None
        raw = self._match(scope)
        feed = None if raw is None else cache.known_request(raw)
        if feed is None:
            return None  # not a feed request the routes have seen yet
        token = None
        for name, value in scope["headers"]:
            if name == b"authorization":  # the first one, as HTTPBearer reads it
                scheme, credentials = get_authorization_scheme_param(value.decode("latin-1"))
                if not (scheme and credentials) or scheme.lower() != "bearer":
                    return None  # the routes answer with the right error
                try:
                    token = decode_access_token(credentials, state.settings)
                except InvalidToken:
                    return None
                break
        snapshot = None
        if token is not None or cache.enabled:
            snapshot = await cache.snapshot()
            if snapshot is None:
                return None  # the routes answer from the database
            scope.setdefault("state", {})["feed_snapshot"] = snapshot  # no second read if they do
        try:
            return await serve(state, token, feed, snapshot)
        except Exception as failure:  # the routes answer with it (a 401, a 503), as if they had met it
            scope.setdefault("state", {})["feed_failure"] = failure
            return None
