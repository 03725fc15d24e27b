"""The API contract as the load test sees it: paths, request-group names and response checks.

Every request carries a group name (`name=` in Locust) so that URLs with ids are counted together; the
thresholds refer to these same names. The check functions are pure: they take a response-like object
and return the reason of a failure (for `catch_response`), or None when the response is right.
"""

from __future__ import annotations

import secrets
from collections.abc import Iterable, Mapping
from typing import Any, Protocol
from urllib.parse import urlsplit

from yoctogram_common import keys

API = "/api/v1"


class Group:
    """Request-group names: what the Locust report, the thresholds and the capacity page show."""

    REGISTER = "/auth/register/"
    LOGIN = "/auth/login/"
    ME = "/users/me"
    PROFILE = "/users/profile/[id]"
    FEED = "/feed/latest"
    FEED_NEXT = "/feed/latest [next page]"
    CREATOR = "/feed/by_user/[creator]"
    OWN_POSTS = "/feed/by_user/[me]"
    GENERATE = "/images/upload/[privacy]/generate"
    S3_POST = "S3 upload POST"
    CONFIRM = "/images/upload/[id]/confirm"
    MEDIA = "/images/media/[id]"
    MEDIA_POLL = "/images/media/[id] (poll)"
    DELETE = "/images/[id]"
    IMAGE_PUBLIC = "image [public]"
    IMAGE_PRIVATE = "image [private, signed]"
    IMAGE_RENDITION = "image [rendition]"
    TIME_TO_RENDITION = "time to rendition"
    AGGREGATED = "Aggregated"


class ResponseLike(Protocol):
    """The part of a Locust (or requests) response the checks read."""

    status_code: int

    def json(self) -> Any: ...


def _json(response: ResponseLike) -> tuple[Any, str | None]:
    try:
        return response.json(), None
    except Exception:  # any decoder's error: the body is not JSON
        return None, f"HTTP {response.status_code}: the body is not JSON"


def expect_json(
    response: ResponseLike, statuses: Iterable[int], keys: Iterable[str] = ()
) -> tuple[dict[str, Any] | None, str | None]:
    """(body, None) when the status is expected and the JSON object has `keys`, else (body, reason)."""
    allowed = tuple(statuses)
    if response.status_code not in allowed:
        body, _ = _json(response)
        detail = body.get("detail") if isinstance(body, dict) else None
        suffix = f": {detail}" if detail else ""
        return None, f"HTTP {response.status_code} (expected {'/'.join(map(str, allowed))}){suffix}"
    body, problem = _json(response)
    if problem:
        return None, problem
    if not isinstance(body, dict):
        return None, f"HTTP {response.status_code}: expected a JSON object, got {type(body).__name__}"
    missing = [key for key in keys if key not in body]
    if missing:
        return body, f"HTTP {response.status_code}: the JSON lacks {', '.join(missing)}"
    return body, None


def check_feed(response: ResponseLike) -> tuple[list[dict[str, Any]], str | None, str | None]:
    """(items, next_cursor, failure reason) of a feed page."""
    body, problem = expect_json(response, (200,), ("success", "count", "results", "next_cursor"))
    if problem or body is None:
        return [], None, problem
    results = body["results"]
    if not isinstance(results, list):
        return [], None, "feed: `results` is not a list"
    if body["count"] != len(results):
        return [], None, f"feed: count={body['count']} but {len(results)} results"
    for item in results:
        if not isinstance(item, dict) or not {"id", "creator", "download_url"} <= item.keys():
            return [], None, "feed: an item lacks id, creator or download_url"
    cursor = body["next_cursor"]
    return results, cursor if isinstance(cursor, str) and cursor else None, None


def check_image(response: ResponseLike, headers: Mapping[str, str] | None) -> str | None:
    """Reason the response is not an image (status 200 and an image/* Content-Type), or None."""
    if response.status_code != 200:
        return f"HTTP {response.status_code} (expected 200)"
    content_type = (headers or {}).get("Content-Type") or (headers or {}).get("content-type") or ""
    if not content_type.startswith("image/"):
        return f"Content-Type {content_type!r} is not an image"
    return None


def is_rendition(uri: str, image_id: str) -> bool:
    """True when the media URI points at the compressor's rendition of this image (its path is the key)."""
    parsed = keys.parse_key(urlsplit(uri).path.lstrip("/"))
    return parsed is not None and parsed.kind == "rendition" and parsed.image_id == image_id


def absolute(url: str, host: str) -> str:
    """`url` as an absolute http(s) URL; relative URLs are resolved against the target host."""
    parts = urlsplit(url)
    if parts.scheme in ("http", "https"):
        return url
    if parts.scheme or parts.netloc:
        raise ValueError(f"refusing to follow {url!r}: only http(s) URLs are fetched")
    return host.rstrip("/") + "/" + url.lstrip("/")


def encode_multipart(
    fields: Mapping[str, str], file_bytes: bytes, content_type: str, filename: str = "upload.png"
) -> tuple[bytes, str]:
    """A multipart/form-data body for an S3 presigned POST: every field first, the file last as `file`.

    Returns (body, the Content-Type header with its boundary). S3 ignores form fields after the file,
    which is why the order matters.
    """
    boundary = "----loadtest" + secrets.token_hex(12)
    chunks: list[bytes] = []
    for name, value in fields.items():
        chunks.append(
            f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n{value}\r\n'.encode()
        )
    chunks.append(
        f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="{filename}"\r\n'
        f"Content-Type: {content_type}\r\n\r\n".encode()
    )
    chunks.append(file_bytes)
    chunks.append(f"\r\n--{boundary}--\r\n".encode())
    return b"".join(chunks), f"multipart/form-data; boundary={boundary}"
