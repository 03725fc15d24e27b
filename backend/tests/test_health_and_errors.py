"""Health, readiness, and the JSON error contract."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable

import httpx
import pytest
import sqlalchemy as sa
from fastapi import FastAPI
from sqlalchemy.ext.asyncio import AsyncSession

from app.core.config import Settings
from app.main import create_app
from app.models import User

from .conftest import MakeImage, MakeUser


@pytest.mark.parametrize("path", ["/api/v1/health", "/api/v1/health/"])
async def test_health_answers_without_redirect(client: httpx.AsyncClient, path: str) -> None:
    response = await client.get(path, follow_redirects=False)
    assert response.status_code == 200
    assert response.json() == {
        "success": True,
        "status": "ok",
        # the session's settings set no commit, and the local stack has no ECS task metadata
        "build": {"commit": "unknown", "image": "local", "image_digest": "local"},
    }


async def test_readiness_checks_the_database(client: httpx.AsyncClient) -> None:
    response = await client.get("/api/v1/health/ready")
    assert response.status_code == 200
    assert response.json()["database"] == "ok"


async def test_readiness_is_503_when_the_database_is_unreachable(settings: Settings) -> None:
    from devstack.postgres import free_port

    broken = settings.model_copy(
        update={"DATABASE_URL": f"postgresql+asyncpg://x:y@127.0.0.1:{free_port()}/none"}
    )
    app = create_app(broken)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as http:
            live = await http.get("/api/v1/health")
            ready = await http.get("/api/v1/health/ready")
    assert live.status_code == 200
    assert ready.status_code == 503
    assert ready.json() == {"success": False, "detail": "The database does not answer"}


async def test_unknown_api_route_is_a_json_404(client: httpx.AsyncClient) -> None:
    response = await client.get("/api/v1/no/such/thing")
    assert response.status_code == 404
    assert response.headers["content-type"].startswith("application/json")
    assert response.json() == {"success": False, "detail": "Not found"}


async def test_wrong_method_is_json(client: httpx.AsyncClient) -> None:
    response = await client.delete("/api/v1/health")
    assert response.status_code == 405
    assert response.json()["success"] is False


async def test_validation_error_is_json_422_with_reason(client: httpx.AsyncClient) -> None:
    response = await client.post(
        "/api/v1/auth/register/", json={"username": "ab", "email": "x", "password": "1"}
    )
    assert response.status_code == 422
    body = response.json()
    assert body["success"] is False
    assert "password" in body["detail"] and "username" in body["detail"] and "email" in body["detail"]
    assert {tuple(e["loc"]) for e in body["errors"]} == {("username",), ("email",), ("password",)}


async def test_malformed_json_body_is_422(client: httpx.AsyncClient) -> None:
    response = await client.post(
        "/api/v1/auth/login/", content=b"{not json", headers={"content-type": "application/json"}
    )
    assert response.status_code == 422
    assert response.json()["success"] is False


async def test_unexpected_errors_are_500_json_and_leak_nothing(
    client: httpx.AsyncClient, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    from app.crud import users

    async def explode(*_args: object, **_kwargs: object) -> None:
        raise RuntimeError("secret internal detail: password=hunter2")

    monkeypatch.setattr(users, "find_by_login", explode)
    with caplog.at_level(logging.ERROR):
        response = await client.post("/api/v1/auth/login/", json={"username": "a", "password": "b"})
    assert response.status_code == 500
    assert response.json()["success"] is False
    assert "secret" not in response.text and "hunter2" not in response.text
    assert any("unhandled error" in record.getMessage() for record in caplog.records)


async def test_every_response_carries_a_request_id(client: httpx.AsyncClient) -> None:
    given = await client.get("/api/v1/health", headers={"X-Request-ID": "abc-123"})
    assert given.headers["x-request-id"] == "abc-123"
    made = await client.get("/api/v1/health", headers={"X-Request-ID": "bad id with spaces"})
    assert len(made.headers["x-request-id"]) == 32


async def test_json_log_lines_carry_the_request_id(app: FastAPI, client: httpx.AsyncClient) -> None:
    import io
    import json

    from app.core.logging import JsonFormatter

    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter())
    access = logging.getLogger("app.access")
    access.addHandler(handler)
    access.setLevel(logging.INFO)
    try:
        await client.get("/api/v1/health", headers={"X-Request-ID": "req-42"})
    finally:
        access.removeHandler(handler)
    lines = [json.loads(line) for line in stream.getvalue().splitlines()]
    assert lines and all(line["request_id"] == "req-42" for line in lines)
    assert lines[-1]["status"] == 200 and lines[-1]["path"] == "/api/v1/health"


async def test_a_race_that_breaks_a_constraint_is_a_409_not_a_500(
    client: httpx.AsyncClient, monkeypatch: pytest.MonkeyPatch, make_user: object, auth: object
) -> None:
    """E.g. the account is deleted while one of its uploads is being generated (schemathesis found it)."""
    from sqlalchemy.exc import IntegrityError

    from app.crud import images

    async def owner_gone(*_args: object, **_kwargs: object) -> None:
        raise IntegrityError("INSERT INTO images ...", {}, Exception("violates foreign key constraint"))

    monkeypatch.setattr(images, "create_pending", owner_gone)
    user = await make_user()  # type: ignore[operator]
    response = await client.post("/api/v1/images/upload/public/generate", headers=auth(user))  # type: ignore[operator]
    assert response.status_code == 409
    assert response.json()["success"] is False and "concurrent change" in response.json()["detail"]


async def test_connections_the_database_closed_are_never_handed_out(
    client: httpx.AsyncClient,
    db: AsyncSession,
    make_user: MakeUser,
    make_image: MakeImage,
    auth: Callable[[User], dict[str, str]],
) -> None:
    """A restart or failover closes every pooled connection: the next requests get fresh ones, no 503.

    (The pool refuses closed connections at checkout, without a round trip: app/core/db.py.)"""
    user = await make_user()
    await make_image(user)
    headers = auth(user)
    for path in ("/api/v1/users/me", "/api/v1/feed/latest?limit=7"):
        pages = await asyncio.gather(*(client.get(path, headers=headers) for _ in range(6)))
        assert {page.status_code for page in pages} == {200}
    killed = await db.execute(
        sa.text(
            "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
            "WHERE application_name = 'yoctogram' AND pid <> pg_backend_pid()"
        )
    )
    assert killed.scalar_one() >= 2
    await db.commit()
    await asyncio.sleep(0.3)  # the closed sockets reach the event loop
    for path in ("/api/v1/users/me", "/api/v1/feed/latest?limit=8", "/api/v1/feed/latest?limit=8"):
        response = await client.get(path, headers=headers)
        assert response.status_code == 200, response.text
