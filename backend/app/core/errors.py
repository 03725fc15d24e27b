"""Domain errors and the one place that maps every error to JSON `{"success": false, "detail": ...}`."""

from __future__ import annotations

import logging

import asyncpg
from botocore.exceptions import BotoCoreError
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from sqlalchemy import exc as sa_exc
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import Match

log = logging.getLogger("app.errors")


class DomainError(Exception):
    """An expected failure with a message meant for the client."""

    status_code = 400

    def __init__(self, detail: str) -> None:
        super().__init__(detail)
        self.detail = detail


class BadRequest(DomainError):
    status_code = 400


class Unauthorized(DomainError):
    status_code = 401


class NotFound(DomainError):
    status_code = 404


class Conflict(DomainError):
    status_code = 409


class Unprocessable(DomainError):
    status_code = 422


class TooManyRequests(DomainError):
    """429, with the seconds to wait in `Retry-After`."""

    status_code = 429

    def __init__(self, detail: str, *, retry_after: int) -> None:
        super().__init__(detail)
        self.retry_after = retry_after


class Unavailable(DomainError):
    status_code = 503


INVALID_TOKEN = "Invalid or expired token; log in again"  # noqa: S105 - a message, not a secret
DATABASE_UNAVAILABLE = "The database is unavailable; try again in a moment"
DATABASE_BUSY = "The database is busy; try again in a moment"
IMAGE_STORE_UNAVAILABLE = "The image store is unavailable; try again in a moment"
RETRY_AFTER_SECONDS = 5
"""The `Retry-After` of every 503: how long a client waits before it tries again (the database restarts,
fails over or gets a free connection within seconds)."""

# SQLSTATEs of a database that cannot serve now, through no fault of the request: the connection is
# gone (class 08), the server shuts down, crashed or is still starting (57P01-57P03), it has no
# connection slot or resource left (class 53), a failover made the writer read-only (25006), or it
# refused the login (class 28: the password in its secret is not the database's,
# stages/runbooks/database-credentials.md).
_UNAVAILABLE_SQLSTATES = ("08", "53", "57P01", "57P02", "57P03", "25006", "28")
_BUSY_SQLSTATES = ("57014",)  # statement_timeout cancelled the statement


def database_fault(exc: BaseException) -> str | None:
    """The detail of a 503 when `exc` says the database cannot serve now (unreachable, restarting,
    failing over, out of connections, too slow); None for any other error (a bug: a 500).

    Connection failures the driver raises as plain `OSError`/`TimeoutError` reach here already as
    `Unavailable` (app/core/db.py translates them where they happen, so that no other `OSError` is
    taken for the database's).
    """
    if isinstance(exc, sa_exc.TimeoutError):  # no pooled connection came free within DB_POOL_TIMEOUT
        return DATABASE_BUSY
    if isinstance(exc, sa_exc.DBAPIError):
        if exc.connection_invalidated or isinstance(exc, (sa_exc.OperationalError, sa_exc.InterfaceError)):
            return DATABASE_UNAVAILABLE
        exc = exc.orig if exc.orig is not None else exc
    sqlstate = str(getattr(exc, "sqlstate", "") or "")
    if sqlstate.startswith(_BUSY_SQLSTATES) or isinstance(exc, asyncpg.QueryCanceledError):
        return DATABASE_BUSY
    if sqlstate.startswith(_UNAVAILABLE_SQLSTATES) or isinstance(
        exc, (asyncpg.InterfaceError, asyncpg.PostgresConnectionError)
    ):
        return DATABASE_UNAVAILABLE
    return None


def error_response(
    status_code: int, detail: str, headers: dict[str, str] | None = None, **extra: object
) -> JSONResponse:
    if status_code == 503:
        headers = {"Retry-After": str(RETRY_AFTER_SECONDS), **(headers or {})}
    return JSONResponse(
        {"success": False, "detail": detail, **extra}, status_code=status_code, headers=headers
    )


CATCH_ALL_ROUTE = "web_client"
"""The name of the local site's route that matches every path (`app.local_site`): it says nothing about
which methods a path has."""
_METHODS = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE")


def allowed_methods(request: Request) -> list[str]:
    """Every method some route answers at this request's path (empty: no route has the path).

    For the `Allow` header of a 405: Starlette names only the methods of the first route that has the path
    (`/users/me` answers GET and DELETE from two routes).
    """
    routes = [route for route in request.app.router.routes if getattr(route, "name", None) != CATCH_ALL_ROUTE]
    return [
        method
        for method in _METHODS
        if any(route.matches({**request.scope, "method": method})[0] is Match.FULL for route in routes)
    ]


def _describe_validation(exc: RequestValidationError) -> tuple[str, list[dict[str, object]]]:
    errors = []
    parts = []
    for error in exc.errors():
        loc = [str(p) for p in error.get("loc", ()) if p not in ("body",)] or ["body"]
        where = ".".join(loc)
        message = str(error.get("msg", "invalid value"))
        errors.append({"loc": loc, "msg": message, "type": error.get("type")})
        parts.append(f"{where}: {message}")
    return "; ".join(parts) or "Invalid request", errors


def install_error_handlers(app: FastAPI) -> None:
    """Every error leaves as JSON with a reason; no exception text leaks."""

    @app.exception_handler(DomainError)
    async def _domain(_request: Request, exc: DomainError) -> JSONResponse:
        headers = {"WWW-Authenticate": "Bearer"} if exc.status_code == 401 else None
        if isinstance(exc, TooManyRequests):
            headers = {"Retry-After": str(exc.retry_after)}
        return error_response(exc.status_code, exc.detail, headers)

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        detail = exc.detail if isinstance(exc.detail, str) else "Request failed"
        if exc.status_code == 404 and detail == "Not Found":
            detail = "Not found"
        headers = dict(exc.headers) if exc.headers else {}
        if exc.status_code == 405:
            allowed = allowed_methods(request)
            if not allowed:  # only the local web client's catch-all has the path: as in AWS, no such path
                # (the catch-all raises a 405 for every /api/ path it gets, and lands here)
                return error_response(404, "Not found")
            headers["Allow"] = ", ".join(allowed)
        return error_response(exc.status_code, detail, headers or None)

    @app.exception_handler(RequestValidationError)
    async def _validation(_request: Request, exc: RequestValidationError) -> JSONResponse:
        detail, errors = _describe_validation(exc)
        return error_response(422, detail, errors=errors)

    @app.exception_handler(sa_exc.IntegrityError)
    async def _integrity(request: Request, exc: sa_exc.IntegrityError) -> JSONResponse:
        # A race the code did not foresee, e.g. the account deleted while its request was running.
        log.warning("integrity error on %s %s: %s", request.method, request.url.path, exc.orig)
        return error_response(409, "The request conflicts with a concurrent change; reload and try again")

    def _database_fault(request: Request, exc: BaseException, detail: str) -> JSONResponse:
        # Nothing the client did; it may retry (the pool replaces broken connections).
        orig = getattr(exc, "orig", None) or exc
        what = f"{type(orig).__name__}: {orig}"
        if str(getattr(orig, "sqlstate", "") or "").startswith("28"):
            # The password in its secret is not the database's (stages/runbooks/database-credentials.md).
            log.error("database refused the credentials on %s %s: %s", request.method, request.url.path, what)
        else:
            log.error("database unavailable on %s %s: %s", request.method, request.url.path, what)
        return error_response(503, detail)

    @app.exception_handler(sa_exc.TimeoutError)
    @app.exception_handler(sa_exc.DBAPIError)
    async def _database_error(request: Request, exc: sa_exc.SQLAlchemyError) -> JSONResponse:
        detail = database_fault(exc)
        if detail is None:
            return await _unexpected(request, exc)
        return _database_fault(request, exc, detail)

    @app.exception_handler(BotoCoreError)
    async def _image_store_fault(request: Request, exc: BotoCoreError) -> JSONResponse:
        # S3 did not answer within its timeouts (or could not be reached) outside the storage service's
        # own translation, e.g. while reading a body: nothing the client did; it may retry.
        log.error("image store unavailable on %s %s: %s", request.method, request.url.path, exc)
        return error_response(503, IMAGE_STORE_UNAVAILABLE)

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
        detail = database_fault(exc)  # a driver error that reached a route untranslated
        if detail is not None:
            return _database_fault(request, exc, detail)
        log.exception("unhandled error on %s %s", request.method, request.url.path)
        return error_response(500, "Internal server error; the request id in the logs tells what happened")
