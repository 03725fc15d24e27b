"""Login throttling: per account name and per client address, shared by every task, never telling
whether an account exists."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import httpx
import pytest
import sqlalchemy as sa
from fastapi import FastAPI
from sqlalchemy.ext.asyncio import AsyncSession

from app.core.config import Settings
from app.main import create_app
from app.services import login_throttle

from .conftest import DEFAULT_PASSWORD, MakeUser

LOGIN = "/api/v1/auth/login/"
HEADER = "CloudFront-Viewer-Address"
PER_ACCOUNT = 3
PER_ADDRESS = 6


@asynccontextmanager
async def _task(settings: Settings, header: str | None = HEADER) -> AsyncIterator[httpx.AsyncClient]:
    limits = {
        "LOGIN_MAX_ATTEMPTS_PER_ACCOUNT": PER_ACCOUNT,
        "LOGIN_MAX_ATTEMPTS_PER_ADDRESS": PER_ADDRESS,
        "CLIENT_ADDRESS_HEADER": header,
    }
    application = create_app(settings.model_copy(update=limits))
    async with application.router.lifespan_context(application):
        transport = httpx.ASGITransport(app=application, raise_app_exceptions=False)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as http:
            yield http


@pytest.fixture
async def api(settings: Settings, app: FastAPI) -> AsyncIterator[tuple[httpx.AsyncClient, httpx.AsyncClient]]:
    """Two API tasks with small limits, as ECS runs several (the `app` fixture truncates after the test)."""
    async with _task(settings) as one, _task(settings) as two:
        yield one, two


def _from(address: str, **headers: str) -> dict[str, str]:
    return {HEADER: address, **headers}


async def _attempt(
    http: httpx.AsyncClient, name: str, password: str, address: str, **headers: str
) -> httpx.Response:
    return await http.post(
        LOGIN, json={"username": name, "password": password}, headers=_from(address, **headers)
    )


async def test_an_account_name_is_throttled_alike_whether_or_not_it_exists(
    api: tuple[httpx.AsyncClient, httpx.AsyncClient], make_user: MakeUser
) -> None:
    await make_user("alice")
    outcomes = {}
    for name in ("alice", "nobody"):
        # Each attempt from its own address: only the per-account count is at work; the tasks alternate.
        statuses = [
            (await _attempt(api[i % 2], name, "wrong password", f"198.51.100.{i + 1}:4000")).status_code
            for i in range(PER_ACCOUNT + 2)
        ]
        outcomes[name] = statuses
        refused = await _attempt(api[0], name, DEFAULT_PASSWORD, "198.51.100.99:4000")  # even the right one
        assert refused.status_code == 429
        assert refused.json()["success"] is False and "Retry-After" in refused.json()["detail"]
        retry_after = int(refused.headers["Retry-After"])
        assert 1 <= retry_after <= 900
    assert outcomes["alice"] == outcomes["nobody"] == [401] * PER_ACCOUNT + [429, 429]


async def test_an_address_is_throttled_across_names_and_x_forwarded_for_changes_nothing(
    api: tuple[httpx.AsyncClient, httpx.AsyncClient], make_user: MakeUser
) -> None:
    await make_user("alice")
    statuses = [
        (
            await _attempt(
                api[i % 2], f"name{i}", "wrong", "203.0.113.7:5000", **{"X-Forwarded-For": f"10.0.0.{i}"}
            )
        ).status_code
        for i in range(PER_ADDRESS + 1)
    ]
    assert statuses == [401] * PER_ADDRESS + [429]
    # Another address (another port of the same address is the same address) is not affected.
    assert (await _attempt(api[0], "alice", DEFAULT_PASSWORD, "203.0.113.7:6000")).status_code == 429
    assert (await _attempt(api[1], "alice", DEFAULT_PASSWORD, "203.0.113.8:5000")).status_code == 200


async def test_ipv6_addresses_count_by_their_64_prefix(
    api: tuple[httpx.AsyncClient, httpx.AsyncClient],
) -> None:
    statuses = [
        (await _attempt(api[0], f"name{i}", "wrong", f"2001:db8:1:2:{i:x}::1:443")).status_code
        for i in range(PER_ADDRESS + 1)
    ]
    assert statuses == [401] * PER_ADDRESS + [429]
    assert (await _attempt(api[0], "x", "wrong", "2001:db8:1:3::1:443")).status_code == 401


async def test_a_successful_login_clears_the_account_and_gives_the_address_its_attempt_back(
    api: tuple[httpx.AsyncClient, httpx.AsyncClient], make_user: MakeUser
) -> None:
    await make_user("alice")
    address = "192.0.2.10:1234"
    for _ in range(PER_ACCOUNT - 1):
        assert (await _attempt(api[0], "alice", "wrong", address)).status_code == 401
    assert (await _attempt(api[1], "ALICE", DEFAULT_PASSWORD, address)).status_code == 200
    # The failures before the success no longer count against alice...
    for _ in range(PER_ACCOUNT - 1):
        assert (await _attempt(api[0], "alice", "wrong", "192.0.2.11:1")).status_code == 401
    # ...and many members logging in from one address (an office) are never throttled for succeeding.
    for _ in range(PER_ADDRESS * 2):
        assert (await _attempt(api[1], "alice", DEFAULT_PASSWORD, "192.0.2.12:1")).status_code == 200


async def test_concurrent_attempts_get_no_more_through_than_the_limit(
    api: tuple[httpx.AsyncClient, httpx.AsyncClient], make_user: MakeUser
) -> None:
    await make_user("alice")
    answers = await asyncio.gather(
        *(_attempt(api[i % 2], "alice", "wrong", f"198.51.100.{i + 1}:1") for i in range(PER_ACCOUNT * 4))
    )
    statuses = sorted(answer.status_code for answer in answers)
    assert statuses == [401] * PER_ACCOUNT + [429] * (PER_ACCOUNT * 3)


async def test_the_window_ends_and_old_counts_are_pruned(
    api: tuple[httpx.AsyncClient, httpx.AsyncClient],
    make_user: MakeUser,
    db: AsyncSession,
    settings: Settings,
) -> None:
    await make_user("alice")
    for _ in range(PER_ACCOUNT + 1):
        await _attempt(api[0], "alice", "wrong", "198.51.100.1:1")
    assert (await _attempt(api[0], "alice", DEFAULT_PASSWORD, "198.51.100.2:1")).status_code == 429
    assert await login_throttle.prune(db, settings) == 0  # windows still open
    window = settings.LOGIN_THROTTLE_WINDOW_SECONDS
    await db.execute(
        sa.text("UPDATE login_throttle SET window_started = now() - make_interval(secs => :s)"),
        {"s": window + 1},
    )
    await db.commit()
    assert (await _attempt(api[1], "alice", DEFAULT_PASSWORD, "198.51.100.2:1")).status_code == 200
    await db.execute(
        sa.text("UPDATE login_throttle SET window_started = now() - make_interval(secs => :s)"),
        {"s": window + 1},
    )
    await db.commit()
    assert await login_throttle.prune(db, settings) >= 1
    assert (await db.execute(sa.text("SELECT count(*) FROM login_throttle"))).scalar_one() == 0


async def test_no_login_name_or_address_is_stored(
    api: tuple[httpx.AsyncClient, httpx.AsyncClient], db: AsyncSession
) -> None:
    await _attempt(api[0], "secret-name@example.com", "wrong", "198.51.100.77:1")
    rows = (await db.execute(sa.text("SELECT key FROM login_throttle"))).scalars().all()
    assert len(rows) == 2
    for key in rows:
        assert b"secret-name" not in bytes(key) and b"198.51.100.77" not in bytes(key)


async def test_without_the_edge_header_the_peer_address_counts(settings: Settings, app: FastAPI) -> None:
    """Locally (no CLIENT_ADDRESS_HEADER) a client-sent CloudFront-Viewer-Address is ignored: the peer counts."""
    assert app.state.settings.CLIENT_ADDRESS_HEADER is None  # the local default
    async with _task(settings, header=None) as http:
        statuses = [
            (await _attempt(http, f"name{i}", "wrong", f"198.51.100.{i + 1}:1")).status_code
            for i in range(PER_ADDRESS + 1)
        ]
    assert statuses == [401] * PER_ADDRESS + [429]


def test_the_document_says_429_and_retry_after(app: FastAPI) -> None:
    response = app.openapi()["paths"][LOGIN]["post"]["responses"]["429"]
    assert "Retry-After" in response["headers"]
    assert "whether or not the account exists" in response["description"]
