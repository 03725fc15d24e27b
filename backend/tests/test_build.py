"""Which build answers: `/api/v1/health`'s `build`, from BUILD_COMMIT and ECS's task metadata endpoint v4.

The endpoint is a real HTTP server on loopback answering what ECS answers (a container's own entry), or
not answering in time, or answering something that is not JSON.
"""

from __future__ import annotations

import asyncio
import http.server
import json
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass

import httpx
import pytest

from app.core.build import METADATA_TIMEOUT_SECONDS, read_build
from app.core.config import Settings
from app.main import create_app

DIGEST = "sha256:25f3695bedfb454a50f12d127839a68ad3caf91e451c1da073db34c542c4d2cb"
IMAGE = "111111111111.dkr.ecr.us-west-2.amazonaws.com/cdk-hnb659fds-container-assets-111111111111-us-west-2:bc8e9a61"
COMMIT = "739ba6b2c0d4e1f8a9b7c6d5e4f3a2b1c0d9e8f7"
CONTAINER = {
    "DockerId": "cd189a933e5849daa93386466019ab50-2495160603",
    "Name": "app",
    "Image": IMAGE,
    "ImageID": DIGEST,
    "Labels": {"com.amazonaws.ecs.container-name": "app"},
    "KnownStatus": "RUNNING",
}


@dataclass
class MetadataEndpoint:
    url: str
    requests: list[str]


def _serve(body: bytes, delay: float) -> Iterator[MetadataEndpoint]:
    seen: list[str] = []

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            seen.append(self.path)
            time.sleep(delay)
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *_args: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        # ECS's variable is the container's URI, without a trailing slash: `${ECS_CONTAINER_METADATA_URI_V4}`
        yield MetadataEndpoint(f"http://127.0.0.1:{server.server_address[1]}/v4/abc-123", seen)
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture
def metadata() -> Iterator[MetadataEndpoint]:
    yield from _serve(json.dumps(CONTAINER).encode(), delay=0.3)


@pytest.fixture
def hung_metadata() -> Iterator[MetadataEndpoint]:
    yield from _serve(json.dumps(CONTAINER).encode(), delay=METADATA_TIMEOUT_SECONDS + 3)


@pytest.fixture
def garbled_metadata() -> Iterator[MetadataEndpoint]:
    yield from _serve(b"<html>not json</html>", delay=0)


async def _health(settings: Settings, ticks: list[float] | None = None) -> tuple[float, dict[str, object]]:
    """(seconds the app took to start, its /api/v1/health body); `ticks` records a concurrent ticker's
    beats while the app starts, to show the start never holds the event loop."""
    app = create_app(settings)

    async def ticker() -> None:
        while True:
            if ticks is not None:
                ticks.append(time.monotonic())
            await asyncio.sleep(0.01)

    beat = asyncio.create_task(ticker())
    started = time.monotonic()
    try:
        async with app.router.lifespan_context(app):
            took = time.monotonic() - started
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(transport=transport, base_url="http://t") as http:
                response = await http.get("/api/v1/health")
    finally:
        beat.cancel()
    assert response.status_code == 200
    body = response.json()
    assert body["success"] is True and body["status"] == "ok"
    return took, body


async def test_health_names_the_commit_and_the_running_image(
    settings: Settings, metadata: MetadataEndpoint
) -> None:
    deployed = settings.model_copy(
        update={"BUILD_COMMIT": COMMIT, "ECS_CONTAINER_METADATA_URI_V4": metadata.url}
    )
    ticks: list[float] = []
    took, body = await _health(deployed, ticks)
    assert body["build"] == {"commit": COMMIT, "image": IMAGE, "image_digest": DIGEST}
    assert metadata.requests == ["/v4/abc-123"]  # the container's own entry, read once at start
    # The endpoint took 0.3 s to answer; the loop kept running meanwhile (a read on the loop would freeze it).
    during = [t for t in ticks if t - ticks[0] < took]
    assert len(during) >= 10, f"the event loop ran {len(during)} times while the app started"


async def test_a_metadata_endpoint_that_does_not_answer_leaves_unknown_soon(
    settings: Settings, hung_metadata: MetadataEndpoint
) -> None:
    deployed = settings.model_copy(update={"ECS_CONTAINER_METADATA_URI_V4": hung_metadata.url})
    took, body = await _health(deployed)
    assert took < METADATA_TIMEOUT_SECONDS + 2
    assert body["build"] == {"commit": "unknown", "image": "unknown", "image_digest": "unknown"}


def test_an_unreadable_answer_leaves_unknown(settings: Settings, garbled_metadata: MetadataEndpoint) -> None:
    deployed = settings.model_copy(
        update={"BUILD_COMMIT": COMMIT, "ECS_CONTAINER_METADATA_URI_V4": garbled_metadata.url}
    )
    build = read_build(deployed)
    assert (build.commit, build.image, build.image_digest) == (COMMIT, "unknown", "unknown")


def test_outside_ecs_the_local_stack_says_local(settings: Settings) -> None:
    build = read_build(settings.model_copy(update={"BUILD_COMMIT": COMMIT}))
    assert (build.commit, build.image, build.image_digest) == (COMMIT, "local", "local")


async def test_the_build_is_documented_in_the_openapi_document(settings: Settings) -> None:
    app = create_app(settings)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as http:
        document = (await http.get("/api/v1/openapi.json")).json()
    ok = document["paths"]["/api/v1/health"]["get"]["responses"]["200"]["content"]["application/json"]
    assert ok["schema"] == {"$ref": "#/components/schemas/Health"}
    build = document["components"]["schemas"]["Build"]
    assert set(build["required"]) == {"commit", "image", "image_digest"}
    assert all(build["properties"][name]["description"] for name in build["required"])
