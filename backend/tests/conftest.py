"""Backend fixtures: a migrated database on the session's real PostgreSQL, the app, clients, factories.

Each test leaves the database as it found it: every table is emptied after the test.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
import sqlalchemy as sa
from alembic.script import ScriptDirectory
from argon2 import PasswordHasher
from fastapi import FastAPI
from sqlalchemy.ext.asyncio import AsyncSession

from app.core.config import Settings
from app.core.security import create_access_token
from app.main import create_app
from app.migrate import alembic_config, upgrade
from app.models import Image, User
from devstack.postgres import LocalPostgres, free_port
from devstack.s3server import queue_url

BACKEND = Path(__file__).resolve().parents[1]
DEFAULT_PASSWORD = "correct horse battery"
TEST_KEY_ID = "KTESTKEYPAIRID"
MEDIA_BASE = "https://yoctogram.test"


@pytest.fixture(scope="session")
def database_url(postgres_server: LocalPostgres) -> str:
    """The API tests' database, migrated to head once."""
    postgres_server.ensure_database("api_tests")
    url = postgres_server.url(database="api_tests")
    upgrade("head", database_url=url)
    return url


@pytest.fixture(scope="session")
def settings(database_url: str, signing_key: tuple[str, str], moto_endpoint: str) -> Settings:
    return Settings(
        APP_ENV="local",
        DATABASE_URL=database_url,
        SECRET_KEY="test-secret-key-that-is-long-enough-0123456789",
        MEDIA_BASE_URL=MEDIA_BASE,
        MEDIA_SIGNING_KEY_ID=TEST_KEY_ID,
        MEDIA_SIGNING_PRIVATE_KEY=signing_key[0],
        AWS_ENDPOINT_URL=moto_endpoint,
        EVENT_QUEUE_URL=queue_url(moto_endpoint),
        FORWARD_FACING_NAME="yoctogram.test",
    )


@pytest.fixture(scope="session")
async def app(settings: Settings) -> AsyncIterator[FastAPI]:
    application = create_app(settings)
    async with application.router.lifespan_context(application):
        yield application


@pytest.fixture
async def client(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as http:
        yield http


@pytest.fixture(autouse=True)
async def _empty_tables_after_test(app: FastAPI) -> AsyncIterator[None]:
    """Each test leaves the database as it found it."""
    yield
    async with app.state.engine.begin() as connection:
        await connection.execute(sa.text("TRUNCATE images, users, login_throttle CASCADE"))


@pytest.fixture
async def db(app: FastAPI) -> AsyncIterator[AsyncSession]:
    """A session for arranging and checking rows."""
    async with app.state.sessionmaker() as session:
        yield session


@pytest.fixture(scope="session")
def default_password_hash() -> str:
    return PasswordHasher().hash(DEFAULT_PASSWORD)


@contextmanager
def driver_queries(app: FastAPI) -> Iterator[list[str]]:
    """Every statement the app's pooled connections run meanwhile, as asyncpg sends it (the ORM's and
    the hot reads that go straight to the driver alike), the feed cache's held query connection's too.
    Version reads of the feed cache run on a connection held since before, and are not seen unless it
    is (re)opened meanwhile."""
    seen: list[str] = []
    watched: list[Any] = []

    def record(query: Any) -> None:
        seen.append(query.query)

    def on_checkout(dbapi_connection: Any, _record: Any, _proxy: Any) -> None:
        driver = dbapi_connection.driver_connection
        driver.add_query_logger(record)
        watched.append(driver)

    held = app.state.feed_cache.queries.driver
    if held is not None:
        held.add_query_logger(record)
        watched.append(held)
    pool = app.state.engine.sync_engine.pool
    sa.event.listen(pool, "checkout", on_checkout)
    try:
        yield seen
    finally:
        sa.event.remove(pool, "checkout", on_checkout)
        for driver in watched:
            if not driver.is_closed():
                driver.remove_query_logger(record)


MakeUser = Callable[..., Awaitable[User]]
MakeImage = Callable[..., Awaitable[Image]]


@pytest.fixture
def make_user(db: AsyncSession, default_password_hash: str) -> MakeUser:
    """Factory: a user with DEFAULT_PASSWORD (hash computed once per session)."""

    async def make(username: str | None = None, *, email: str | None = None, **fields: Any) -> User:
        name = username or f"user_{uuid.uuid4().hex[:10]}"
        user = User(
            username=name,
            email=email or f"{name}@example.com",
            hashed_password=default_password_hash,
            **fields,
        )
        db.add(user)
        await db.commit()
        return user

    return make


@pytest.fixture
def make_image(db: AsyncSession) -> MakeImage:
    """Factory: an image row (no bytes), `uploaded` and public unless told otherwise."""

    async def make(
        owner: User,
        *,
        public: bool = True,
        state: str = "uploaded",
        created_at: datetime | None = None,
        **fields: Any,
    ) -> Image:
        image = Image(owner_id=owner.id, public=public, state=state, **fields)
        if created_at is not None:
            image.created_at = created_at
        db.add(image)
        await db.commit()
        return image

    return make


@pytest.fixture
def auth(settings: Settings) -> Callable[[User], dict[str, str]]:
    """Authorization headers for a user (a token made directly; login has its own tests)."""

    def headers(user: User) -> dict[str, str]:
        return {"Authorization": f"Bearer {create_access_token(user.id, settings)}"}

    return headers


def migrate_to_head(env: dict[str, str], postgres: LocalPostgres, database: str) -> str:
    """Run `python -m app.migrate` as the migration task does, with `env`; check `database` is at head.
    Returns what the command printed."""
    result = subprocess.run(
        [sys.executable, "-m", "app.migrate"],
        cwd=BACKEND,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    head = ScriptDirectory.from_config(alembic_config()).get_current_head()
    assert postgres.psql("SELECT version_num FROM alembic_version", database=database) == head
    return result.stdout


def backend_env(settings: Settings, **overrides: str) -> dict[str, str]:
    """Environment for running the backend's commands as the container does."""
    env = {
        **os.environ,
        "APP_ENV": "local",
        "PYTHONPATH": str(BACKEND),
        "DATABASE_URL": str(settings.DATABASE_URL),
        "SECRET_KEY": settings.secret_key,
        "MEDIA_BASE_URL": settings.MEDIA_BASE_URL,
        "MEDIA_SIGNING_KEY_ID": settings.MEDIA_SIGNING_KEY_ID,
        "MEDIA_SIGNING_PRIVATE_KEY": settings.MEDIA_SIGNING_PRIVATE_KEY.get_secret_value()
        if settings.MEDIA_SIGNING_PRIVATE_KEY
        else "",
        "AWS_ENDPOINT_URL": settings.AWS_ENDPOINT_URL or "",
        "EVENT_QUEUE_URL": settings.EVENT_QUEUE_URL or "",
        "FORWARD_FACING_NAME": settings.FORWARD_FACING_NAME,
    }
    env.update(overrides)
    return env


class ServedApi:
    """`python -m app.serve` in a child process, as the container's CMD runs it."""

    def __init__(self, env: dict[str, str], log_path: Path, workers: int = 1) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log_path = log_path
        # The log goes to a file: an unread pipe fills up and blocks the server's workers.
        with log_path.open("ab") as log:
            self.process = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "app.serve",
                    "--host",
                    "127.0.0.1",
                    "--port",
                    str(self.port),
                    "--workers",
                    str(workers),
                ],
                cwd=BACKEND,
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def wait_healthy(self, timeout: float = 30) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise AssertionError(
                    f"app.serve exited: {self.process.stdout.read() if self.process.stdout else ''}"
                )
            try:
                if httpx.get(f"{self.url}/api/v1/health", timeout=1).status_code == 200:
                    return
            except httpx.TransportError:
                time.sleep(0.1)
        raise AssertionError("app.serve did not become healthy")

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait(timeout=30)


@pytest.fixture(scope="session")
def served_api(settings: Settings, scratch_dir: Path) -> Iterator[ServedApi]:
    """The API as a real HTTP server on loopback (2 workers), against the tests' database."""
    api = ServedApi(backend_env(settings), scratch_dir / "served-api.log", workers=2)
    api.wait_healthy()
    yield api
    api.stop()
