"""Logout and "log out everywhere": a revoked token is refused by every route, on every task, at once."""

from __future__ import annotations

import asyncio
import re
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
import sqlalchemy as sa
from fastapi import FastAPI
from sqlalchemy.ext.asyncio import AsyncSession

from app.core.config import Settings
from app.main import create_app
from app.services import sessions

from .conftest import DEFAULT_PASSWORD, MakeImage, MakeUser, driver_queries

LATEST = "/api/v1/feed/latest"
LOGOUT = "/api/v1/auth/logout/"
EVERYWHERE = "/api/v1/auth/logout-everywhere/"


@pytest.fixture
async def other_task(settings: Settings) -> AsyncIterator[httpx.AsyncClient]:
    """A second API process on the same database, as a second ECS task is: its own caches, its own
    revocation list."""
    application = create_app(settings)
    async with application.router.lifespan_context(application):
        transport = httpx.ASGITransport(app=application, raise_app_exceptions=False)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as http:
            yield http


async def _login(client: httpx.AsyncClient, username: str) -> dict[str, str]:
    response = await client.post(
        "/api/v1/auth/login/", json={"username": username, "password": DEFAULT_PASSWORD}
    )
    assert response.status_code == 200, response.text
    return {"Authorization": f"Bearer {response.json()['access_token']}"}


def _authenticated_operations(app: FastAPI) -> list[tuple[str, str]]:
    """Every (method, path) of the document that takes a bearer token, path parameters filled in."""
    found = []
    for path, item in app.openapi()["paths"].items():
        for method, operation in item.items():
            if any("HTTPBearer" in alternative for alternative in operation.get("security", [])):
                found.append((method.upper(), re.sub(r"\{[^}]+\}", str(uuid.uuid4()), path)))
    return found


async def test_every_route_that_takes_a_token_refuses_a_logged_out_one(
    app: FastAPI,
    client: httpx.AsyncClient,
    other_task: httpx.AsyncClient,
    make_user: MakeUser,
    make_image: MakeImage,
) -> None:
    alice = await make_user("alice")
    await make_image(alice, public=False)
    headers = await _login(client, "alice")
    # Warm both tasks' feed caches with alice's pages: a cached page must not outlive the logout either.
    for http in (client, other_task):
        for path in (LATEST, f"/api/v1/feed/by_user/{alice.id}"):
            assert (await http.get(path, headers=headers)).status_code == 200

    assert (await client.post(LOGOUT, headers=headers)).status_code == 200

    operations = _authenticated_operations(app)
    assert len(operations) >= 8, operations  # the feeds, profile, me, images, logout...
    refused = []
    for http in (client, other_task):
        for method, path in [*operations, ("GET", LATEST), ("GET", f"/api/v1/feed/by_user/{alice.id}")]:
            if path.startswith(LOGOUT):
                continue  # logging out again is harmless (below)
            response = await http.request(method, path, headers=headers, json={})
            refused.append((method, path, response.status_code))
            assert response.status_code == 401, (method, path, response.text)
            assert response.json()["success"] is False
    assert refused
    # Repeating the logout is harmless; the member can log in again and is served.
    assert (await client.post(LOGOUT, headers=headers)).status_code == 200
    fresh = await _login(client, "alice")
    assert (await other_task.get(LATEST, headers=fresh)).status_code == 200


async def test_logout_everywhere_revokes_every_earlier_token_of_that_member_only(
    client: httpx.AsyncClient, other_task: httpx.AsyncClient, make_user: MakeUser
) -> None:
    await make_user("alice")
    await make_user("bob")
    laptop, phone = await _login(client, "alice"), await _login(other_task, "alice")
    bob = await _login(client, "bob")
    for http in (client, other_task):
        assert (await http.get(LATEST, headers=phone)).status_code == 200  # cached on both tasks

    assert (await other_task.post(EVERYWHERE, headers=laptop)).status_code == 200

    for http in (client, other_task):
        for headers in (laptop, phone):
            for path in (LATEST, "/api/v1/users/me"):
                assert (await http.get(path, headers=headers)).status_code == 401, path
        assert (await http.get("/api/v1/users/me", headers=bob)).status_code == 200
        assert (await http.get(LATEST, headers=bob)).status_code == 200
    after = await _login(client, "alice")  # a token issued after it works everywhere
    for http in (client, other_task):
        assert (await http.get("/api/v1/users/me", headers=after)).status_code == 200
        assert (await http.get(LATEST, headers=after)).status_code == 200
    assert (await client.post(EVERYWHERE, headers=laptop)).status_code == 401  # needs a valid token


async def test_a_logout_racing_cached_reads_is_never_served_after_its_answer(
    client: httpx.AsyncClient, other_task: httpx.AsyncClient, make_user: MakeUser
) -> None:
    """Reads keep arriving on the other task while the logout runs: once the logout has answered, no read
    sent after that gets a page (the bound is zero, not a second or two)."""
    await make_user("alice")
    headers = await _login(client, "alice")
    logged_out = asyncio.Event()
    served_after: list[int] = []

    async def reader() -> None:
        while True:
            sent_after_logout = logged_out.is_set()
            status = (await other_task.get(LATEST, headers=headers)).status_code
            if sent_after_logout:
                served_after.append(status)
                if len(served_after) >= 20:
                    return

    readers = [asyncio.create_task(reader()) for _ in range(4)]
    await asyncio.sleep(0.05)
    assert (await client.post(LOGOUT, headers=headers)).status_code == 200
    logged_out.set()
    await asyncio.gather(*readers)
    assert set(served_after) == {401}


async def test_the_feed_hot_path_reads_no_revocations_until_one_happens(
    app: FastAPI, client: httpx.AsyncClient, make_user: MakeUser
) -> None:
    """A cached page costs no query beyond the version read, which carries the revocation version; a
    logout elsewhere costs each task one load of the new revocations."""
    await make_user("alice")
    await make_user("bob")
    alice, bob = await _login(client, "alice"), await _login(client, "bob")
    assert (await client.get(LATEST, headers=alice)).status_code == 200  # cached now
    revocations = app.state.revocations
    await client.get(LATEST, headers=alice)
    loads = revocations.loads
    with driver_queries(app) as sent:
        for _ in range(20):
            assert (await client.get(LATEST, headers=alice)).status_code == 200
        await asyncio.sleep(0.05)
    assert [s for s in sent if "token_revocations" in s] == []
    assert revocations.loads == loads

    assert (await client.post(LOGOUT, headers=bob)).status_code == 200
    for _ in range(5):
        assert (await client.get(LATEST, headers=alice)).status_code == 200
    assert revocations.loads == loads + 1


async def test_expired_revocations_are_pruned(
    client: httpx.AsyncClient, db: AsyncSession, make_user: MakeUser
) -> None:
    await make_user("alice")
    headers = await _login(client, "alice")
    assert (await client.post(LOGOUT, headers=headers)).status_code == 200
    assert (await client.post(EVERYWHERE, headers=await _login(client, "alice"))).status_code == 200
    count = sa.text("SELECT count(*) FROM token_revocations")
    assert (await db.execute(count)).scalar_one() == 2
    assert await sessions.prune(db) == 0  # nothing has expired yet
    await db.execute(
        sa.text("UPDATE token_revocations SET expires_at = :past"),
        {"past": datetime.now(UTC) - timedelta(seconds=1)},
    )
    await db.commit()
    assert await sessions.prune(db) == 2
    assert (await db.execute(count)).scalar_one() == 0


async def test_a_token_from_before_generations_is_generation_zero(
    client: httpx.AsyncClient, settings: Settings, make_user: MakeUser
) -> None:
    """Tokens issued before this change carry no `gen`: they keep working, and log out everywhere ends them."""
    import jwt

    alice = await make_user("alice")
    now = datetime.now(UTC)
    claims: dict[str, Any] = {
        "sub": str(alice.id),
        "iat": now,
        "exp": now + timedelta(hours=1),
        "typ": "access",
    }
    old = {"Authorization": f"Bearer {jwt.encode(claims, settings.secret_key, algorithm='HS256')}"}
    assert (await client.get("/api/v1/users/me", headers=old)).status_code == 200
    assert (await client.post(EVERYWHERE, headers=await _login(client, "alice"))).status_code == 200
    assert (await client.get("/api/v1/users/me", headers=old)).status_code == 401
    assert (await client.get(LATEST, headers=old)).status_code == 401


def test_logout_is_documented(app: FastAPI) -> None:
    paths = app.openapi()["paths"]
    for path in (LOGOUT, EVERYWHERE):
        operation = paths[path]["post"]
        assert operation["security"] == [{"HTTPBearer": []}]
        assert {"200", "401"} <= set(operation["responses"])


async def test_logging_out_one_device_leaves_the_others_logged_in(
    client: httpx.AsyncClient, make_user: MakeUser
) -> None:
    """Two logins in the same second are two tokens: logging out one does not end the other."""
    await make_user("alice")
    first, second = await asyncio.gather(_login(client, "alice"), _login(client, "alice"))
    assert first != second
    assert (await client.post(LOGOUT, headers=first)).status_code == 200
    assert (await client.get("/api/v1/users/me", headers=first)).status_code == 401
    assert (await client.get("/api/v1/users/me", headers=second)).status_code == 200
    assert (await client.get(LATEST, headers=second)).status_code == 200
