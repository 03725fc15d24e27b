"""S3 faults: a hung S3 (accepts connections, never answers, or stops in the middle of a body) makes the
API's S3 calls give up within a few seconds: `confirm` and the media gateway answer a JSON 503 with
`Retry-After`, and a body that stops mid-stream ends the response instead of holding a worker forever.

The S3 server is the session's real local one, behind a loopback TCP proxy that can go silent.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
import uuid
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass

import httpx
import pytest
from fastapi import FastAPI

from app.core.config import Settings
from app.main import create_app
from app.models import User
from devstack.postgres import free_port
from devstack.s3server import client as aws_client

from .conftest import MakeImage, MakeUser

FAST_ENOUGH = 5.0
"""Seconds within which a hung S3 is a 503: the timeouts below (1 s) times two attempts, plus slack."""


class SilentProxy:
    """Forwards 127.0.0.1:`port` to the S3 server; `hang()` makes it accept and never answer, and
    `stall_after(n)` lets only `n` more bytes of answers through, then nothing (a body that stops)."""

    def __init__(self, target_port: int) -> None:
        self.target_port = target_port
        self.port = free_port()
        self.hung = False
        self.budget: int | None = None  # bytes still delivered to clients; None: no limit
        self._server: asyncio.Server | None = None
        self._writers: list[asyncio.StreamWriter] = []
        self._tasks: list[asyncio.Task[None]] = []

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._accept, "127.0.0.1", self.port)

    def hang(self) -> None:
        self.hung = True
        self.budget = 0

    def stall_after(self, size: int) -> None:
        self.budget = size

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._writers.append(writer)
        if self.hung:
            return  # held open, never answered
        up_reader, up_writer = await asyncio.open_connection("127.0.0.1", self.target_port)
        self._writers.append(up_writer)
        self._tasks += [
            asyncio.create_task(self._pump(reader, up_writer, downstream=False)),
            asyncio.create_task(self._pump(up_reader, writer, downstream=True)),
        ]

    async def _pump(
        self, source: asyncio.StreamReader, target: asyncio.StreamWriter, *, downstream: bool
    ) -> None:
        with contextlib.suppress(OSError, asyncio.IncompleteReadError):
            while data := await source.read(65536):
                if downstream and self.budget is not None:
                    data, self.budget = data[: self.budget], max(0, self.budget - len(data))
                    if not data:
                        await asyncio.Event().wait()  # silent for good
                target.write(data)
                await target.drain()

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()
        for task in self._tasks:
            task.cancel()
        for writer in self._writers:
            writer.transport.abort()


@dataclass
class Faulty:
    proxy: SilentProxy
    app: FastAPI
    http: httpx.AsyncClient


@pytest.fixture
async def faulty(settings: Settings) -> AsyncIterator[Faulty]:
    assert settings.AWS_ENDPOINT_URL
    proxy = SilentProxy(int(settings.AWS_ENDPOINT_URL.rsplit(":", 1)[1]))
    await proxy.start()
    faulty_settings = settings.model_copy(
        update={
            "AWS_ENDPOINT_URL": f"http://127.0.0.1:{proxy.port}",
            "S3_CONNECT_TIMEOUT_SECONDS": 1.0,
            "S3_READ_TIMEOUT_SECONDS": 1.0,
            "S3_MAX_ATTEMPTS": 2,
        }
    )
    app = create_app(faulty_settings)
    try:
        async with app.router.lifespan_context(app):
            transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
            async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as http:
                yield Faulty(proxy, app, http)
    finally:
        await proxy.close()


def _assert_fast_503(response: httpx.Response, elapsed: float) -> None:
    assert elapsed < FAST_ENOUGH, f"took {elapsed:.1f} s"
    assert response.status_code == 503, response.text
    assert response.headers["Retry-After"].isdigit()
    assert response.json() == {
        "success": False,
        "detail": "The image store is unavailable; try again in a moment",
    }


async def test_the_default_timeouts_make_a_hung_s3_a_503_within_seconds() -> None:
    settings = Settings(APP_ENV="local")
    worst = settings.S3_MAX_ATTEMPTS * (
        settings.S3_CONNECT_TIMEOUT_SECONDS + settings.S3_READ_TIMEOUT_SECONDS
    )
    assert worst <= 10, "a hung S3 would hold a request longer than a client waits"


async def test_confirm_is_a_503_within_seconds_when_s3_hangs(
    faulty: Faulty, make_user: MakeUser, make_image: MakeImage, auth: Callable[[User], dict[str, str]]
) -> None:
    owner = await make_user()
    image = await make_image(owner, state="pending")
    faulty.proxy.hang()
    started = time.monotonic()
    response = await faulty.http.post(f"/api/v1/images/upload/{image.id}/confirm", headers=auth(owner))
    _assert_fast_503(response, time.monotonic() - started)


async def test_the_media_gateway_is_a_503_within_seconds_when_s3_hangs(faulty: Faulty) -> None:
    faulty.proxy.hang()
    for method in ("GET", "HEAD"):
        started = time.monotonic()
        response = await faulty.http.request(method, f"/public/originals/{uuid.uuid4()}")
        elapsed = time.monotonic() - started
        if method == "HEAD":
            assert elapsed < FAST_ENOUGH and response.status_code == 503
        else:
            _assert_fast_503(response, elapsed)


async def test_a_body_that_stops_mid_stream_ends_the_response(faulty: Faulty, settings: Settings) -> None:
    assert settings.AWS_ENDPOINT_URL
    key = f"public/originals/{uuid.uuid4()}"
    size = 4 * 1024 * 1024
    s3 = aws_client("s3", settings.AWS_ENDPOINT_URL)
    await asyncio.to_thread(
        lambda: s3.put_object(Bucket=settings.PUBLIC_IMAGES_BUCKET, Key=key, Body=b"x" * size)
    )
    try:
        faulty.proxy.stall_after(256 * 1024)  # the headers and a little of the body, then silence
        started = time.monotonic()
        received = 0
        with contextlib.suppress(httpx.HTTPError):
            async with faulty.http.stream("GET", f"/{key}") as response:
                assert response.status_code == 200
                async for chunk in response.aiter_bytes():
                    received += len(chunk)
        elapsed = time.monotonic() - started
        assert elapsed < FAST_ENOUGH, f"the stalled body held the response {elapsed:.1f} s"
        assert received < size
    finally:
        await asyncio.to_thread(lambda: s3.delete_object(Bucket=settings.PUBLIC_IMAGES_BUCKET, Key=key))
