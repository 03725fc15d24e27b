"""What CloudFront does in AWS, done by the API process locally (APP_ENV=local only).

- `/public/*` and `/private/*`: the media gateway. Streams objects from the S3 server; private URLs must
  carry a valid CloudFront-style signature that has not expired (checked with MEDIA_SIGNING_PUBLIC_KEY,
  the local key group, exactly as CloudFront checks it), else 403. Media carries the security headers of
  CloudFront's media policy (a sandboxing CSP, nosniff, no framing) and only an image type.
- `/config.json`: the web client's runtime settings.
- every other path that is not under `/api/`: the web client (`FRONTEND_DIST`); paths without a file
  load `index.html`, so client-side routes survive a reload. Hashed assets are cached forever,
  `index.html` and `config.json` never.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import FileResponse, HTMLResponse, JSONResponse, Response, StreamingResponse
from starlette.concurrency import iterate_in_threadpool
from starlette.exceptions import HTTPException as StarletteHTTPException

from app.core.config import Settings
from app.core.errors import CATCH_ALL_ROUTE, error_response
from app.services.images import UPLOAD_CONTENT_TYPES
from app.services.media_urls import SignatureError, load_public_key, verify_signed_url
from yoctogram_common import keys

log = logging.getLogger("app.local_site")

# Media responses, as CloudFront's media response headers policy (stages/components/cdn.py) sends them,
# less HSTS (this gateway is plain HTTP on loopback): a file that is not an image never runs as a page
# on the app's origin, whatever it holds or claims to be.
MEDIA_CONTENT_SECURITY_POLICY = (
    "default-src 'none'; img-src 'self'; style-src 'unsafe-inline'; sandbox; frame-ancestors 'none'"
)
MEDIA_SECURITY_HEADERS = {
    "Content-Security-Policy": MEDIA_CONTENT_SECURITY_POLICY,
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "strict-origin-when-cross-origin",
}
# The only types media is served with (originals' accepted types, renditions' WebP or JPEG); anything else
# is sent as a download of opaque bytes.
SAFE_MEDIA_TYPES = frozenset({*UPLOAD_CONTENT_TYPES, "image/webp", "image/jpeg"})
OPAQUE_TYPE = "application/octet-stream"


def media_type_and_disposition(stored: str | None) -> tuple[str, str]:
    """The Content-Type and Content-Disposition to serve an object stored with type `stored` with."""
    kind = (stored or "").split(";", 1)[0].strip().lower()
    return (kind, "inline") if kind in SAFE_MEDIA_TYPES else (OPAQUE_TYPE, "attachment")


NO_CACHE = "no-cache"
IMMUTABLE = "public, max-age=31536000, immutable"
_NOT_BUILT = """<!doctype html><html lang="en"><meta charset="utf-8"><title>Yoctogram</title>
<body style="font-family:sans-serif;max-width:40em;margin:3em auto"><h1>The web client is not built</h1>
<p>Run <code>make frontend</code> (or restart <code>make up</code>, which builds it), then reload.
The API answers under <a href="/api/v1/docs">/api/v1/docs</a>.</p></body></html>"""


def _chunks(body: Any, size: int = 64 * 1024) -> Iterator[bytes]:
    try:
        while chunk := body.read(size):
            yield chunk
    finally:
        body.close()


def install_local_site(app: FastAPI, settings: Settings) -> None:
    """Add the gateway, config.json and the web client to `app` (after every API route)."""
    dist = Path(settings.FRONTEND_DIST).resolve() if settings.FRONTEND_DIST else None
    trusted_key = (
        load_public_key(settings.MEDIA_SIGNING_PUBLIC_KEY) if settings.MEDIA_SIGNING_PUBLIC_KEY else None
    )

    async def media(request: Request, privacy: str, rest: str) -> Response:
        key = f"{privacy}/{rest}"
        if keys.parse_key(key) is None:  # only originals, renditions and markers: never quarantine
            return error_response(404, "Not found")
        if privacy == "private":
            query = request.query_params
            try:
                verify_signed_url(
                    resource=f"{settings.MEDIA_BASE_URL.rstrip('/')}/{key}",
                    expires=query.get("Expires"),
                    signature=query.get("Signature"),
                    key_pair_id=query.get("Key-Pair-Id"),
                    public_key=trusted_key or request.app.state.urls.public_key,
                    expected_key_id=settings.MEDIA_SIGNING_KEY_ID,
                )
            except SignatureError as error:
                return error_response(403, f"Access denied: {error}")
        got = await request.app.state.storage.get_object(key=key, public=privacy == "public")
        if got is None:
            return error_response(404, "Not found")
        media_type, disposition = media_type_and_disposition(got.get("ContentType"))
        headers = {
            "Content-Length": str(got["ContentLength"]),
            "ETag": got.get("ETag", ""),
            "Content-Disposition": disposition,
            **MEDIA_SECURITY_HEADERS,
        }
        if got.get("CacheControl"):
            headers["Cache-Control"] = got["CacheControl"]
        if request.method == "HEAD":
            got["Body"].close()
            return Response(headers=headers, media_type=media_type)
        return StreamingResponse(
            iterate_in_threadpool(_chunks(got["Body"])), headers=headers, media_type=media_type
        )

    async def public_media(request: Request, rest: str) -> Response:
        return await media(request, "public", rest)

    async def private_media(request: Request, rest: str) -> Response:
        return await media(request, "private", rest)

    app.add_api_route("/public/{rest:path}", public_media, methods=["GET", "HEAD"], include_in_schema=False)
    app.add_api_route("/private/{rest:path}", private_media, methods=["GET", "HEAD"], include_in_schema=False)

    async def config_json() -> Response:
        return JSONResponse(
            {
                "apiBase": "/api/v1",
                "maxUploadBytes": settings.MAX_UPLOAD_BYTES,
                "environment": settings.APP_ENV,
                # As the stack's config.json: which build the page talks to.
                "build": {"commit": settings.BUILD_COMMIT},
            },
            headers={"Cache-Control": NO_CACHE},
        )

    app.add_api_route("/config.json", config_json, methods=["GET"], include_in_schema=False)

    async def web_client(path: str) -> Response:
        if path == "api" or path.startswith("api/"):
            # Answered as without this catch-all (in AWS), by the app's 405 handler: a 405 naming the
            # methods the path has, or a 404 when it has none.
            raise StarletteHTTPException(405)
        if dist is None or not (dist / "index.html").exists():
            return HTMLResponse(_NOT_BUILT, status_code=503, headers={"Cache-Control": NO_CACHE})
        candidate = (dist / path).resolve()
        if path and candidate.is_file() and candidate.is_relative_to(dist) and candidate.name != "index.html":
            hashed = candidate.parent.name == "assets"
            return FileResponse(candidate, headers={"Cache-Control": IMMUTABLE if hashed else NO_CACHE})
        return FileResponse(dist / "index.html", headers={"Cache-Control": NO_CACHE})

    app.add_api_route(
        "/{path:path}", web_client, methods=["GET", "HEAD"], include_in_schema=False, name=CATCH_ALL_ROUTE
    )
