"""The database engine (one per process, made in the app's lifespan) and sessions."""

from __future__ import annotations

import functools
import ssl
import weakref
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any

import asyncpg
from sqlalchemy import event
from sqlalchemy.engine import Dialect, ExceptionContext
from sqlalchemy.exc import DisconnectionError
from sqlalchemy.ext.asyncio import (
    AsyncConnection,
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)

from app.core.config import Settings
from app.core.db_password import SecretPassword, make_secrets_client
from app.core.errors import DATABASE_UNAVAILABLE, Unavailable

# What asyncpg raises when the connection itself is gone or unusable, and when a statement was cancelled
# (statement_timeout, a failover): the request is a 503, and a broken connection never goes back to the pool.
_DRIVER_CONNECTION_ERRORS: tuple[type[BaseException], ...] = (
    asyncpg.InterfaceError,
    asyncpg.PostgresConnectionError,
    asyncpg.CannotConnectNowError,
    asyncpg.AdminShutdownError,
    OSError,
)


def _refuse_closed_connections(dbapi_connection: Any, _record: Any, _proxy: Any) -> None:
    """Pool checkout: hand out no connection the server has closed (a restart, a failover, an idle
    timeout); the pool then opens a new one. A closed socket is noticed by the event loop as soon as the
    server closes it, so this costs no round trip, where `pool_pre_ping` costs three on every checkout
    (asyncpg pings inside BEGIN ... ROLLBACK). A connection that died without the server closing it
    (rare: a network partition) fails its statement once; SQLAlchemy then replaces every connection of
    the pool, and the request is a 503 with a reason (app/core/errors.py)."""
    driver = dbapi_connection.driver_connection
    if driver is None or driver.is_closed():
        raise DisconnectionError("the database closed this pooled connection")


def _unavailable_if_unreachable(
    dialect: Dialect, _record: Any, cargs: tuple[Any, ...], cparams: dict[str, Any]
) -> Any:
    """`do_connect`: open the connection as SQLAlchemy would, but a database that cannot be reached
    (refused, reset, no answer within DB_CONNECT_TIMEOUT, no route) is `Unavailable`, a 503 with a reason.

    asyncpg raises those as plain `OSError`/`TimeoutError`, which SQLAlchemy passes on unwrapped; caught
    here, where they can only mean the database, rather than as any `OSError` in the error handlers.
    """
    try:
        return dialect.connect(*cargs, **cparams)
    except OSError as error:  # TimeoutError, ConnectionRefusedError, ConnectionResetError, gaierror, ...
        raise Unavailable(DATABASE_UNAVAILABLE) from error


def _unavailable_if_unreachable_by(connect: Callable[[], Awaitable[Any]]) -> Callable[[], Awaitable[Any]]:
    """`_unavailable_if_unreachable` for connections opened by our own creator (the secret's password)."""

    async def connect_or_unavailable() -> Any:
        try:
            return await connect()
        except OSError as error:
            raise Unavailable(DATABASE_UNAVAILABLE) from error

    return connect_or_unavailable


_GONE_SQLSTATES = ("08", "57P01", "57P02", "57P03")  # connection exception; shutdown, crash, starting up


class _DeadConnections:
    """`handle_error`: a statement that failed because its connection or the server is gone invalidates the
    connection (and the pool's older ones: a restart or failover took them too), and is `Unavailable`.

    A statement the server does not answer within its statement_timeout plus DB_CONNECT_TIMEOUT
    (asyncpg's command_timeout) raises a plain `TimeoutError`: the server would have cancelled it by then,
    so it does not answer at all (a failover, a network partition), on any connection. Every connection of
    the engine is then aborted at once: a request on one of them fails now instead of after its own
    timeout, and the pool discards them without waiting for a goodbye that never comes (SQLAlchemy's
    graceful close waits 2 s per connection).
    """

    def __init__(self) -> None:
        self._connections: weakref.WeakSet[Any] = weakref.WeakSet()

    def opened(self, dbapi_connection: Any, _record: Any) -> None:
        """Pool `connect`: remember every connection, to abort them all when the server stops answering."""
        self._connections.add(dbapi_connection.driver_connection)

    def handle_error(self, context: ExceptionContext) -> BaseException | None:
        error = context.original_exception
        if isinstance(error, OSError):  # TimeoutError (command_timeout), ConnectionResetError, ...
            context.is_disconnect = True
            if isinstance(error, TimeoutError):
                for connection in list(self._connections):
                    connection.terminate()
            return Unavailable(DATABASE_UNAVAILABLE)
        if str(getattr(error, "sqlstate", "") or "").startswith(_GONE_SQLSTATES):
            context.is_disconnect = True
        return None


def ssl_option(settings: Settings) -> ssl.SSLContext | bool | None:
    """asyncpg's `ssl` for POSTGRES_SSL_MODE: None (its own default, prefer), False, or a context.

    verify-full checks the server's chain against POSTGRES_SSL_ROOT_CERT only (the RDS CA bundle, not the
    system's CAs) and its name against the host connected to.
    """
    mode = settings.POSTGRES_SSL_MODE
    if mode == "prefer":
        return None
    if mode == "disable":
        return False
    if mode == "require":  # encrypted, not authenticated
        context = ssl.create_default_context()
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
        return context
    context = ssl.create_default_context(cafile=settings.POSTGRES_SSL_ROOT_CERT)
    context.check_hostname = True
    context.verify_mode = ssl.CERT_REQUIRED
    return context


def connection_options(
    settings: Settings,
    *,
    application_name: str,
    statement_timeout_ms: int | None,
    lock_timeout_ms: int | None = None,
) -> dict[str, Any]:
    """How `create_async_engine` opens connections: the URL's password, or with POSTGRES_PASSWORD_SECRET_ID
    the secret's, read when a connection opens (rotation needs no restart: app/core/db_password.py);
    TLS as POSTGRES_SSL_MODE says."""
    server_settings = {"application_name": application_name}
    if statement_timeout_ms is not None:
        server_settings["statement_timeout"] = str(statement_timeout_ms)
    if lock_timeout_ms is not None:
        server_settings["lock_timeout"] = str(lock_timeout_ms)
    connect_args: dict[str, Any] = {
        "server_settings": server_settings,
        "timeout": settings.DB_CONNECT_TIMEOUT,
    }
    tls = ssl_option(settings)
    if tls is not None:
        connect_args["ssl"] = tls
    if statement_timeout_ms:
        # Client side: a statement the server neither answers nor cancels in time (_DeadConnections).
        connect_args["command_timeout"] = statement_timeout_ms / 1000 + settings.DB_CONNECT_TIMEOUT
    if settings.POSTGRES_PASSWORD_SECRET_ID is None:
        return {"connect_args": connect_args}
    url = settings.database_url
    client = make_secrets_client(settings.AWS_DEFAULT_REGION, settings.AWS_ENDPOINT_URL)
    password = SecretPassword(client, settings.POSTGRES_PASSWORD_SECRET_ID)
    connect = functools.partial(
        password.connect,
        host=url.host,
        port=url.port,
        user=url.username,
        database=url.database,
        **connect_args,
    )
    return {"async_creator": _unavailable_if_unreachable_by(connect)}


def make_engine(settings: Settings) -> AsyncEngine:
    """An asyncpg engine whose pool is sized from the settings (backend/README.md: the connection budget)."""
    engine = create_async_engine(
        settings.database_url,
        pool_size=settings.DB_POOL_SIZE,
        max_overflow=settings.DB_MAX_OVERFLOW,
        pool_timeout=settings.DB_POOL_TIMEOUT,
        pool_pre_ping=False,  # closed connections are refused at checkout instead (below), for free
        pool_recycle=1800,
        **connection_options(
            settings, application_name="yoctogram", statement_timeout_ms=settings.DB_STATEMENT_TIMEOUT_MS
        ),
    )
    event.listen(engine.sync_engine.pool, "checkout", _refuse_closed_connections)
    event.listen(engine.sync_engine, "do_connect", _unavailable_if_unreachable)
    dead = _DeadConnections()
    event.listen(engine.sync_engine.pool, "connect", dead.opened)
    event.listen(engine.sync_engine, "handle_error", dead.handle_error)
    return engine


def make_sessionmaker(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    return async_sessionmaker(engine, expire_on_commit=False, autoflush=False)


@asynccontextmanager
async def reading(connection: AsyncConnection) -> AsyncIterator[Any]:
    """The asyncpg connection under a pooled SQLAlchemy connection, for hot reads that skip the ORM.

    Statements run outside any transaction (each its own snapshot); nothing may write through it. A lost
    connection is invalidated (never handed out again) and, like a cancelled statement, is a 503.
    """
    raw = await connection.get_raw_connection()
    try:
        yield raw.driver_connection
    except _DRIVER_CONNECTION_ERRORS:
        await connection.invalidate()
        raise Unavailable(DATABASE_UNAVAILABLE) from None
    except asyncpg.QueryCanceledError:
        raise Unavailable("The database is busy; try again in a moment") from None
