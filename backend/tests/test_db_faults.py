"""Database faults: while the database cannot be reached, every route that needs it answers a JSON 503
with `Retry-After` (never a 500, never a hang), liveness stays 200, readiness says 503; when the database
is back, the next requests succeed, stale pooled connections or not. The event worker keeps its message.

The faults are made on loopback, in front of the session's real PostgreSQL, by a TCP proxy that can stop
listening (refused), accept and never answer (a hung server, a failover or a partition: connections that
were open go silent for good), or reset every connection; and on the server itself with
pg_terminate_backend, of idle pooled connections (a restart) and of connections in the middle of a
statement. The routes come from the app's OpenAPI document: a new route is covered without a change here
(one with a body or a new path parameter fails until it gets a sample request below).
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import struct
import time
import uuid
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any

import asyncpg
import httpx
import pytest
from fastapi import FastAPI

from app.core.config import Settings
from app.core.db import make_engine, make_sessionmaker
from app.events import EventWorker
from app.main import create_app
from app.models import Image, User
from devstack.postgres import LocalPostgres, free_port
from devstack.s3server import client as aws_client

from .conftest import DEFAULT_PASSWORD, MakeImage, MakeUser
from .test_events import remaining, s3_record, send, state_of

LIVENESS = {("GET", "/api/v1/health")}
CONNECT_TIMEOUT = 1.0
STATEMENT_TIMEOUT_MS = 1000
FAST_ENOUGH = 6.0
"""Seconds within which a request gets its 503 (with the timeouts above: at most a connect timeout and a
statement's timeout plus a connect timeout, each at most twice for a feed page: its version, then the page)."""


# --- a TCP proxy that fails as networks and servers do ----------------------------------------------------
def _reset(writer: asyncio.StreamWriter) -> None:
    """Close with a TCP RST (SO_LINGER 0), as a crashed host or a middlebox does."""
    sock = writer.get_extra_info("socket")
    if sock is not None:
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    writer.transport.abort()


@dataclass
class _Link:
    client: asyncio.StreamWriter
    upstream: asyncio.StreamWriter
    silent: asyncio.Event = field(default_factory=asyncio.Event)
    tasks: list[asyncio.Task[None]] = field(default_factory=list)


class FaultyProxy:
    """Forwards 127.0.0.1:`port` to the real PostgreSQL until told to fail."""

    def __init__(self, target_port: int) -> None:
        self.target_port = target_port
        self.port = free_port()
        self.mode = "forward"
        self._server: asyncio.Server | None = None
        self._links: list[_Link] = []
        self._held: list[asyncio.StreamWriter] = []  # accepted while hung: never answered

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._accept, "127.0.0.1", self.port)

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if self.mode == "hung":
            self._held.append(writer)
            return
        if self.mode == "reset":
            _reset(writer)
            return
        up_reader, up_writer = await asyncio.open_connection("127.0.0.1", self.target_port)
        link = _Link(writer, up_writer)
        link.tasks = [
            asyncio.create_task(self._pump(reader, up_writer, link)),
            asyncio.create_task(self._pump(up_reader, writer, link)),
        ]
        self._links.append(link)

    @staticmethod
    async def _pump(source: asyncio.StreamReader, target: asyncio.StreamWriter, link: _Link) -> None:
        try:
            while data := await source.read(65536):
                if link.silent.is_set():
                    await asyncio.Event().wait()  # silent for good: nothing is delivered any more
                target.write(data)
                await target.drain()
        except (OSError, asyncio.IncompleteReadError):
            pass
        finally:
            if not link.silent.is_set():
                target.close()

    async def fail(self, fault: str) -> None:
        """refused | hung | reset: open connections fail the same way, and so do new ones."""
        self.mode = fault
        if fault == "refused":  # the server is gone: its connections closed, nothing listens
            assert self._server is not None
            self._server.close()
            self._server = None
            for link in self._drop_links():
                link.client.close()
                link.upstream.close()
        elif fault == "hung":  # open connections go silent (never closed, never answered)
            for link in self._links:
                link.silent.set()
        elif fault == "reset":
            for link in self._drop_links():
                _reset(link.client)
                link.upstream.close()
        else:
            raise ValueError(fault)

    def _drop_links(self) -> list[_Link]:
        links, self._links = self._links, []
        for link in links:
            for task in link.tasks:
                task.cancel()
        return links

    async def restore(self) -> None:
        """The database is back (a new server: connections that went silent stay silent)."""
        self.mode = "forward"
        if self._server is None:
            await self.start()

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()
        for link in self._drop_links():
            link.client.transport.abort()
            link.upstream.transport.abort()
        for writer in self._held:
            writer.transport.abort()


# --- the app behind the proxy, and one valid request per operation --------------------------------------
@dataclass
class Faulty:
    proxy: FaultyProxy
    app: FastAPI
    http: httpx.AsyncClient
    settings: Settings


@contextlib.asynccontextmanager
async def faulty_app(settings: Settings, postgres: LocalPostgres) -> AsyncIterator[Faulty]:
    proxy = FaultyProxy(postgres.port)
    await proxy.start()
    url = settings.database_url.set(port=proxy.port).render_as_string(hide_password=False)
    faulty_settings = settings.model_copy(
        update={
            "DATABASE_URL": url,
            "DB_CONNECT_TIMEOUT": CONNECT_TIMEOUT,
            "DB_STATEMENT_TIMEOUT_MS": STATEMENT_TIMEOUT_MS,
            "DB_POOL_TIMEOUT": 2.0,
        }
    )
    app = create_app(faulty_settings)
    try:
        async with app.router.lifespan_context(app):
            transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
            async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as http:
                yield Faulty(proxy, app, http, faulty_settings)
    finally:
        await proxy.close()


@dataclass(frozen=True)
class Operation:
    method: str
    path: str
    has_body: bool
    path_parameters: tuple[str, ...]

    def __str__(self) -> str:
        return f"{self.method} {self.path}"


def database_operations(app: FastAPI) -> list[Operation]:
    """Every operation of the API but liveness (all of them read or write the database), deletes last."""
    operations = []
    for path, item in app.openapi()["paths"].items():
        for method, operation in item.items():
            if (method.upper(), path) in LIVENESS:
                continue
            operations.append(
                Operation(
                    method.upper(),
                    path,
                    "requestBody" in operation,
                    tuple(p["name"] for p in operation.get("parameters", []) if p["in"] == "path"),
                )
            )
    return sorted(operations, key=lambda op: op.method == "DELETE")


def sample_body(operation: Operation, user: User) -> dict[str, Any]:
    """A body the route accepts (validation runs before the database is needed)."""
    bodies: dict[str, Callable[[], dict[str, Any]]] = {
        "POST /api/v1/auth/register/": lambda: {
            "username": f"new_{uuid.uuid4().hex[:8]}",
            "email": f"{uuid.uuid4().hex[:8]}@example.com",
            "password": DEFAULT_PASSWORD,
        },
        "POST /api/v1/auth/login/": lambda: {"username": user.username, "password": DEFAULT_PASSWORD},
        "POST /api/v1/images/upload/{privacy}/generate": lambda: {"content_type": "image/jpeg"},
    }
    assert str(operation) in bodies, f"{operation} takes a body: add a valid sample to sample_body()"
    return bodies[str(operation)]()


async def call(
    http: httpx.AsyncClient, operation: Operation, user: User, image: Image, headers: dict[str, str]
) -> httpx.Response:
    values = {"creator": user.id, "user_id": user.id, "image_id": image.id, "privacy": "public"}
    path = operation.path
    for name in operation.path_parameters:
        assert name in values, f"{operation}: add a value for the path parameter {name!r} in call()"
        path = path.replace("{" + name + "}", str(values[name]))
    body = sample_body(operation, user) if operation.has_body else None
    return await http.request(operation.method, path, json=body, headers=headers)


def assert_unavailable(response: httpx.Response, what: object) -> None:
    assert response.status_code == 503, f"{what}: {response.status_code} {response.text}"
    assert response.headers["content-type"].startswith("application/json"), what
    body = response.json()
    assert body["success"] is False and isinstance(body["detail"], str) and body["detail"], (what, body)
    assert set(body) == {"success", "detail"}, (what, body)
    assert response.headers.get("retry-after", "").isdigit(), (what, dict(response.headers))


async def assert_serves(faulty: Faulty, user: User, image: Image, headers: dict[str, str]) -> None:
    """Every operation answers as it would had nothing happened: its own answer, never a 5xx."""
    ready = await faulty.http.get("/api/v1/health/ready")
    assert ready.status_code == 200, ready.text
    for operation in database_operations(faulty.app):
        response = await call(faulty.http, operation, user, image, headers)
        assert response.status_code < 500, f"{operation}: {response.status_code} {response.text}"


async def fill_the_pool(faulty: Faulty, headers: dict[str, str]) -> None:
    """Open pooled connections (and the feed version's own), to go stale when the fault comes."""
    pages = await asyncio.gather(
        *(
            faulty.http.get(path, headers=headers)
            for path in ["/api/v1/users/me"] * 6 + ["/api/v1/feed/latest"]
        )
    )
    assert {page.status_code for page in pages} == {200}


# --- the tests ----------------------------------------------------------------------------------------
@pytest.mark.parametrize("fault", ["refused", "hung", "reset"])
async def test_every_database_route_is_a_503_while_the_database_is_unreachable_then_recovers(
    fault: str,
    settings: Settings,
    postgres_server: LocalPostgres,
    make_user: MakeUser,
    make_image: MakeImage,
    auth: Callable[[User], dict[str, str]],
) -> None:
    user = await make_user()
    image = await make_image(user)
    headers = auth(user)
    async with faulty_app(settings, postgres_server) as faulty:
        operations = database_operations(faulty.app)
        assert len(operations) >= 12  # the API's 13 operations, but liveness
        await fill_the_pool(faulty, headers)

        await faulty.proxy.fail(fault)
        live = await faulty.http.get("/api/v1/health")
        assert live.status_code == 200
        assert {k: live.json()[k] for k in ("success", "status")} == {"success": True, "status": "ok"}
        ready = await faulty.http.get("/api/v1/health/ready")
        assert_unavailable(ready, "readiness")
        assert ready.json()["detail"] == "The database does not answer"
        for operation in operations:
            started = time.monotonic()
            response = await call(faulty.http, operation, user, image, headers)
            assert_unavailable(response, operation)
            assert time.monotonic() - started < FAST_ENOUGH, (
                f"{operation} took {time.monotonic() - started:.1f}s"
            )

        await faulty.proxy.restore()
        await assert_serves(faulty, user, image, headers)


async def test_a_hung_database_is_a_503_within_the_connect_timeout(
    settings: Settings,
    postgres_server: LocalPostgres,
    make_user: MakeUser,
    auth: Callable[[User], dict[str, str]],
) -> None:
    """DB_CONNECT_TIMEOUT bounds the wait for a server that accepts and never answers."""
    user = await make_user()
    async with faulty_app(settings, postgres_server) as faulty:
        await faulty.proxy.fail("hung")
        started = time.monotonic()
        response = await faulty.http.get("/api/v1/users/me", headers=auth(user))
        elapsed = time.monotonic() - started
    assert_unavailable(response, "GET /api/v1/users/me")
    assert CONNECT_TIMEOUT * 0.8 <= elapsed < CONNECT_TIMEOUT + 1.5, elapsed


async def test_the_default_connect_timeout_is_a_few_seconds() -> None:
    assert Settings.model_fields["DB_CONNECT_TIMEOUT"].default <= 5


async def _terminate_app_backends(postgres: LocalPostgres, *, waiting_on_a_lock: bool) -> int:
    connection = await asyncpg.connect(postgres.url(driver="postgresql"))
    try:
        condition = "AND wait_event_type = 'Lock'" if waiting_on_a_lock else ""
        killed: int = await connection.fetchval(
            "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "  # noqa: S608 - constant SQL
            f"WHERE application_name = 'yoctogram' AND pid <> pg_backend_pid() {condition}"
        )
        return killed
    finally:
        await connection.close()


async def test_idle_pooled_connections_the_server_closed_fail_no_request(
    settings: Settings,
    postgres_server: LocalPostgres,
    make_user: MakeUser,
    make_image: MakeImage,
    auth: Callable[[User], dict[str, str]],
) -> None:
    """A restart closes every pooled connection: the first request to each route gets a fresh one."""
    user = await make_user()
    image = await make_image(user)
    headers = auth(user)
    async with faulty_app(settings, postgres_server) as faulty:
        await fill_the_pool(faulty, headers)
        assert await _terminate_app_backends(postgres_server, waiting_on_a_lock=False) >= 2
        await asyncio.sleep(0.3)  # the closed sockets reach the event loop
        await assert_serves(faulty, user, image, headers)


async def test_connections_terminated_mid_statement_are_503s_then_the_routes_recover(
    settings: Settings,
    postgres_server: LocalPostgres,
    database_url: str,
    make_user: MakeUser,
    make_image: MakeImage,
    auth: Callable[[User], dict[str, str]],
) -> None:
    """A statement whose connection dies under it (a crash, a failover, an operator) is a 503 too.

    Every table is locked, so every route's first statement waits; its backend is then terminated."""
    user = await make_user()
    image = await make_image(user)
    headers = auth(user)
    locker = await asyncpg.connect(database_url.replace("postgresql+asyncpg", "postgresql"))
    try:
        async with faulty_app(settings, postgres_server) as faulty:
            await fill_the_pool(faulty, headers)
            lock = locker.transaction()
            await lock.start()
            await locker.execute("LOCK TABLE users, images, feed_version IN ACCESS EXCLUSIVE MODE")
            for operation in database_operations(faulty.app):
                if operation.path.startswith("/api/v1/health"):
                    continue  # readiness reads no table: the lock does not stop it
                request = asyncio.create_task(call(faulty.http, operation, user, image, headers))
                terminated = 0
                deadline = time.monotonic() + 15
                while not request.done() and time.monotonic() < deadline:
                    terminated += await _terminate_app_backends(postgres_server, waiting_on_a_lock=True)
                    await asyncio.sleep(0.05)
                response = await request
                assert terminated >= 1, f"{operation} never waited for the lock: does it read no table?"
                assert_unavailable(response, operation)
            await lock.rollback()
            await assert_serves(faulty, user, image, headers)
    finally:
        await locker.close()


@pytest.mark.parametrize("fault", ["hung", "reset"])
async def test_the_event_worker_keeps_its_message_while_the_database_is_unreachable(
    fault: str,
    settings: Settings,
    postgres_server: LocalPostgres,
    moto_endpoint: str,
    make_user: MakeUser,
    make_image: MakeImage,
    db: Any,
) -> None:
    """(A refused connection and a restart: test_events.py.)"""
    sqs = aws_client("sqs", moto_endpoint)
    queue = sqs.create_queue(QueueName=f"faults-{uuid.uuid4().hex[:12]}")["QueueUrl"]
    owner = await make_user()
    image = await make_image(owner, state="pending")
    async with faulty_app(settings, postgres_server) as faulty:
        engine = make_engine(faulty.settings)
        worker = EventWorker(
            sessionmaker=make_sessionmaker(engine),
            storage=faulty.app.state.storage,
            sqs=sqs,
            queue_url=queue,
            wait_seconds=0,
            retry_after_seconds=0,
        )
        try:
            send(sqs, queue, s3_record(settings.PUBLIC_IMAGES_BUCKET, image.original_key))
            await faulty.proxy.fail(fault)
            assert await worker.run_once() == (1, 0)
            assert remaining(sqs, queue) == 1
            assert await state_of(db, image) == ("pending", None)
            await faulty.proxy.restore()
            assert await worker.run_once() == (1, 1)
            assert await state_of(db, image) == ("uploaded", None)
            assert remaining(sqs, queue) == 0
        finally:
            await engine.dispose()


async def test_every_503_documents_its_retry_after(app: FastAPI) -> None:
    for path, item in app.openapi()["paths"].items():
        for method, operation in item.items():
            if "503" in operation["responses"]:
                assert "Retry-After" in operation["responses"]["503"].get("headers", {}), f"{method} {path}"
