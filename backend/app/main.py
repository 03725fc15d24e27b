"""The FastAPI application factory. Nothing is built at import time: tests pass their own Settings."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI
from fastapi.middleware.cors import CORSMiddleware

from app.api.responses import install_openapi
from app.api.router import api_router
from app.api.routes.feed import CachedFeedPages
from app.core.build import from_settings, read_build
from app.core.config import Settings, get_settings
from app.core.db import make_engine, make_sessionmaker
from app.core.errors import install_error_handlers
from app.core.logging import configure_logging
from app.core.middleware import BodySizeLimit, RequestContextMiddleware
from app.local_site import install_local_site
from app.services.feed_cache import FeedCache, FeedVersionReader
from app.services.feeds import Cards
from app.services.media_urls import MediaUrlBuilder
from app.services.sessions import RevocationList
from app.services.storage import ImageStorage, make_s3_client

log = logging.getLogger("app")


def make_url_builder(settings: Settings) -> MediaUrlBuilder:
    if settings.MEDIA_SIGNING_PRIVATE_KEY is None:
        raise RuntimeError(
            "MEDIA_SIGNING_PRIVATE_KEY is not set: private image URLs cannot be signed. "
            "`make up` generates a local key into .local/keys; in AWS the stack passes it from Secrets Manager."
        )
    return MediaUrlBuilder(
        base_url=settings.MEDIA_BASE_URL,
        key_id=settings.MEDIA_SIGNING_KEY_ID,
        private_key_pem=settings.MEDIA_SIGNING_PRIVATE_KEY.get_secret_value(),
        window_seconds=settings.MEDIA_URL_WINDOW_SECONDS,
    )


def create_app(settings: Settings | None = None) -> FastAPI:
    """Build the app; its engine, sessions and URL builder are made in the lifespan (one per process)."""
    settings = settings or get_settings()
    urls = make_url_builder(settings)  # fail at start, not on the first private image

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        # Once per process, off the event loop: the task metadata endpoint names the running image.
        app.state.build = build = await asyncio.to_thread(read_build, settings)
        engine = make_engine(settings)
        app.state.engine = engine
        app.state.sessionmaker = make_sessionmaker(engine)
        app.state.storage = ImageStorage(make_s3_client(settings), settings)
        reader = FeedVersionReader(engine, timeout=settings.DB_POOL_TIMEOUT)
        app.state.feed_cache = cache = FeedCache(
            reader,
            engine,
            Cards(urls),
            max_entries=settings.FEED_CACHE_ENTRIES,
            member_bytes=settings.FEED_CACHE_MEMBER_BYTES,
        )
        app.state.revocations = RevocationList(engine)
        stats = asyncio.get_running_loop().create_task(cache.log_stats_every(60), name="feed-cache-stats")
        log.info(
            "started",
            extra={
                "app_env": settings.APP_ENV,
                "pool_size": settings.DB_POOL_SIZE,
                "commit": build.commit,
                "image_digest": build.image_digest,
            },
        )
        try:
            yield
        finally:
            stats.cancel()
            log.info("feed cache", extra=cache.stats())
            await reader.close()
            await cache.close()
            await engine.dispose()

    app = FastAPI(
        title="Yoctogram",
        version="1.0.0",
        summary="The Yoctogram /api/v1 service",
        lifespan=lifespan,
        redirect_slashes=False,  # /health and /health/ both answer 200; nothing redirects
        openapi_url="/api/v1/openapi.json",
        docs_url="/api/v1/docs",
        redoc_url=None,
    )
    app.state.settings = settings
    app.state.urls = urls
    app.state.build = from_settings(settings)  # the lifespan adds the image, once it has asked ECS
    install_error_handlers(app)
    app.include_router(api_router)
    install_openapi(app)
    if settings.APP_ENV == "local":
        install_local_site(app, settings)
    app.add_middleware(CachedFeedPages)  # innermost: after CORS and the request id, before routing
    app.add_middleware(BodySizeLimit, max_bytes=settings.MAX_REQUEST_BODY_BYTES)  # inside CORS: readable 413s
    app.add_middleware(
        CORSMiddleware,
        allow_origins=settings.cors_origins,
        allow_methods=["GET", "POST", "DELETE", "OPTIONS"],
        allow_headers=["Authorization", "Content-Type", "X-Request-ID"],
        expose_headers=["X-Request-ID"],
    )
    app.add_middleware(RequestContextMiddleware)
    return app


def app_factory() -> FastAPI:
    """Entry for uvicorn's --factory: read settings from the environment and configure JSON logs."""
    settings = get_settings()
    configure_logging(settings.LOG_LEVEL)
    return create_app(settings)
