"""The pending-row cleanup, and what the local server does in CloudFront's place (config, web client)."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
import sqlalchemy as sa
from fastapi import FastAPI
from sqlalchemy.ext.asyncio import AsyncSession

from app import cleanup
from app.cleanup import clean_pending
from app.core.config import Settings
from app.main import create_app
from app.models import Image
from devstack.s3server import client as aws_client

from .conftest import MakeImage, MakeUser


async def test_cleanup_removes_old_pending_rows_without_an_original(
    app: FastAPI,
    db: AsyncSession,
    make_user: MakeUser,
    make_image: MakeImage,
    moto_endpoint: str,
    settings: Settings,
) -> None:
    owner = await make_user()
    old = datetime.now(UTC) - timedelta(days=2)
    abandoned = await make_image(owner, state="pending", created_at=old)
    uploaded_late = await make_image(owner, state="pending", created_at=old)
    fresh = await make_image(owner, state="pending")
    visible = await make_image(owner, state="uploaded", created_at=old)
    aws_client("s3", moto_endpoint).put_object(
        Bucket=settings.PUBLIC_IMAGES_BUCKET, Key=uploaded_late.original_key, Body=b"late"
    )
    report = await clean_pending(app.state.sessionmaker, app.state.storage, max_age=timedelta(days=1))
    assert (report.removed, report.recovered) == (1, 1)
    rows = dict((await db.execute(sa.select(Image.id, Image.state))).all())
    assert abandoned.id not in rows
    assert rows[uploaded_late.id] == "uploaded"
    assert rows[fresh.id] == "pending" and rows[visible.id] == "uploaded"
    again = await clean_pending(app.state.sessionmaker, app.state.storage, max_age=timedelta(days=1))
    assert (again.removed, again.recovered) == (0, 0)


async def test_the_scheduled_command_runs_with_a_pool_of_one(
    db: AsyncSession, make_user: MakeUser, make_image: MakeImage, settings: Settings
) -> None:
    """What the AWS schedule starts (`python -m app.cleanup`, DB_POOL_SIZE=1): its own engine and S3 client."""
    owner = await make_user()
    abandoned = await make_image(owner, state="pending", created_at=datetime.now(UTC) - timedelta(days=2))
    report = await cleanup.run(settings.model_copy(update={"DB_POOL_SIZE": 1, "DB_MAX_OVERFLOW": 0}))
    assert report.removed >= 1
    assert (await db.execute(sa.select(Image.id).where(Image.id == abandoned.id))).first() is None


@pytest.fixture(scope="module")
def dist(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("dist")
    (folder / "index.html").write_text("<!doctype html><title>Yoctogram</title><div id=app></div>")
    (folder / "assets").mkdir()
    (folder / "assets" / "app-1a2b3c.js").write_text("console.log('hi')")
    (folder / "favicon.svg").write_text("<svg/>")
    return folder


@pytest.fixture
async def site(settings: Settings, dist: Path) -> AsyncIterator[httpx.AsyncClient]:
    application = create_app(settings.model_copy(update={"FRONTEND_DIST": str(dist)}))
    async with application.router.lifespan_context(application):
        transport = httpx.ASGITransport(app=application)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as http:
            yield http


@pytest.mark.parametrize(
    "path", ["/", "/feed", "/feed/by_user/123", "/login?next=/feed", "/../../etc/passwd"]
)
async def test_client_routes_load_the_app(site: httpx.AsyncClient, path: str) -> None:
    response = await site.get(path)
    assert response.status_code == 200
    assert "<div id=app>" in response.text
    assert response.headers["cache-control"] == "no-cache"


async def test_hashed_assets_are_cached_forever_and_other_files_are_not(site: httpx.AsyncClient) -> None:
    asset = await site.get("/assets/app-1a2b3c.js")
    assert asset.status_code == 200 and "immutable" in asset.headers["cache-control"]
    icon = await site.get("/favicon.svg")
    assert icon.text == "<svg/>" and icon.headers["cache-control"] == "no-cache"


async def test_unknown_api_paths_stay_json_404s(site: httpx.AsyncClient) -> None:
    for path in ("/api/v1/nothing", "/api/other", "/api"):
        response = await site.get(path)
        assert response.status_code == 404, path
        assert response.json()["success"] is False


async def test_config_json_tells_the_client_its_settings(site: httpx.AsyncClient, settings: Settings) -> None:
    response = await site.get("/config.json")
    assert response.json() == {
        "apiBase": "/api/v1",
        "maxUploadBytes": settings.MAX_UPLOAD_BYTES,
        "environment": "local",
        "build": {"commit": settings.BUILD_COMMIT},
    }
    assert response.headers["cache-control"] == "no-cache"


async def test_without_a_build_the_page_says_what_to_do(client: httpx.AsyncClient) -> None:
    response = await client.get("/feed")
    assert response.status_code == 503
    assert "make frontend" in response.text


async def test_media_gateway_refuses_keys_outside_the_design(client: httpx.AsyncClient) -> None:
    assert (await client.get("/public/elsewhere/x")).status_code == 404
    assert (await client.get("/public/originals/does-not-exist")).status_code == 404
    assert (await client.get("/public/quarantine/x")).status_code == 404  # refused originals: never served


@pytest.mark.parametrize(
    ("stored", "served", "disposition"),
    [
        ("text/html", "application/octet-stream", "attachment"),
        ("image/svg+xml", "application/octet-stream", "attachment"),
        (None, "application/octet-stream", "attachment"),
        ("image/png", "image/png", "inline"),
        ("image/webp", "image/webp", "inline"),
    ],
)
async def test_media_is_served_so_that_it_never_runs(
    client: httpx.AsyncClient,
    settings: Settings,
    moto_endpoint: str,
    stored: str | None,
    served: str,
    disposition: str,
) -> None:
    """An object under public/originals holding a page (e.g. stored before types were pinned) is bytes to
    download, sandboxed, never sniffed: no script of it runs on the app's origin. As CloudFront does."""
    key = f"public/originals/{uuid.uuid4()}"
    page = b"<!doctype html><script>fetch('/api/v1/users/me')</script><svg onload=alert(1)>"
    extra = {"ContentType": stored} if stored else {}
    aws_client("s3", moto_endpoint).put_object(
        Bucket=settings.PUBLIC_IMAGES_BUCKET, Key=key, Body=page, **extra
    )
    for method in ("GET", "HEAD"):
        response = await client.request(method, f"/{key}")
        assert response.status_code == 200
        assert response.headers["content-type"] == served
        assert response.headers["content-disposition"] == disposition
        assert response.headers["x-content-type-options"] == "nosniff"
        assert response.headers["x-frame-options"] == "DENY"
        csp = response.headers["content-security-policy"]
        assert "default-src 'none'" in csp and "sandbox" in csp.split("; ")
