"""Uploads, confirmation, media and deletion, as a client does them, against the real S3 server."""

from __future__ import annotations

import base64
import io
import json
import re
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest
from fastapi import FastAPI
from PIL import Image as PILImage

from app.core.config import Settings
from app.models import User
from devstack.s3server import client as s3_client

from .conftest import MakeImage, MakeUser

Auth = Callable[[User], dict[str, str]]


def jpeg_bytes(size: tuple[int, int] = (64, 48)) -> bytes:
    buffer = io.BytesIO()
    PILImage.new("RGB", size, (200, 120, 40)).save(buffer, "JPEG", quality=90)
    return buffer.getvalue()


async def upload(generated: dict[str, Any], data: bytes, content_type: str = "image/jpeg") -> httpx.Response:
    """POST the file to S3 the way a browser does: every field unchanged, the file last."""
    async with httpx.AsyncClient() as s3:
        return await s3.post(
            generated["url"], data=generated["fields"], files={"file": ("f", data, content_type)}
        )


def local_path(url: str) -> str:
    """The path and query of a media URL (the app under test plays the CDN's part)."""
    split = urlsplit(url)
    return f"{split.path}?{split.query}" if split.query else split.path


async def generate(
    client: httpx.AsyncClient, headers: dict[str, str], privacy: str = "public", **body: str
) -> dict[str, Any]:
    response = await client.post(
        f"/api/v1/images/upload/{privacy}/generate", headers=headers, json=body or None
    )
    assert response.status_code == 200, response.text
    return response.json()


async def test_whole_flow_without_confirm(client: httpx.AsyncClient, make_user: MakeUser, auth: Auth) -> None:
    owner = await make_user()
    generated = await generate(client, auth(owner))
    assert set(generated) == {"success", "url", "fields", "id"}
    data = jpeg_bytes()
    assert (await upload(generated, data)).status_code in (200, 201, 204)
    media = await client.get(f"/api/v1/images/media/{generated['id']}")  # anonymous: it is public
    assert media.status_code == 200, media.text
    uri = media.json()["uri"]
    assert uri.endswith(f"/public/originals/{generated['id']}")
    fetched = await client.get(local_path(uri))
    assert fetched.status_code == 200
    assert fetched.content == data and fetched.headers["content-type"] == "image/jpeg"
    feed = (await client.get("/api/v1/feed/latest")).json()
    assert [item["id"] for item in feed["results"]] == [generated["id"]]
    assert feed["results"][0]["state"] == "uploaded"


async def test_private_flow_with_confirm_and_privacy(
    client: httpx.AsyncClient, make_user: MakeUser, auth: Auth, app: FastAPI
) -> None:
    owner, other = await make_user(), await make_user()
    generated = await generate(client, auth(owner), "private", content_type="image/png")
    image_id = generated["id"]
    early = await client.post(f"/api/v1/images/upload/{image_id}/confirm", headers=auth(owner))
    assert early.status_code == 409 and "not been uploaded" in early.json()["detail"]
    buffer = io.BytesIO()
    PILImage.new("RGBA", (10, 10)).save(buffer, "PNG")
    assert (await upload(generated, buffer.getvalue(), "image/png")).status_code in (200, 201, 204)
    for _ in range(2):  # confirming twice is 200 both times
        confirmed = await client.post(f"/api/v1/images/upload/{image_id}/confirm", headers=auth(owner))
        assert confirmed.status_code == 200
        assert confirmed.json() == {"success": True, "id": image_id, "state": "uploaded"}
    assert (
        await client.post(f"/api/v1/images/upload/{image_id}/confirm", headers=auth(other))
    ).status_code == 404
    assert (await client.get(f"/api/v1/images/media/{image_id}")).status_code == 404
    assert (await client.get(f"/api/v1/images/media/{image_id}", headers=auth(other))).status_code == 404

    uri = (await client.get(f"/api/v1/images/media/{image_id}", headers=auth(owner))).json()["uri"]
    path = local_path(uri)
    good = await client.get(path)
    assert good.status_code == 200 and good.content == buffer.getvalue()
    other_key = path.replace(image_id, str(uuid.uuid4()))
    bad_signature = path.replace("Signature=", "Signature=AAAA")
    unsigned = urlsplit(uri).path
    for refused in (other_key, bad_signature, unsigned):
        response = await client.get(refused)
        assert response.status_code == 403, refused
        assert response.json()["success"] is False
    expired_url = app.state.urls.signed_url(f"private/originals/{image_id}", now=time.time() - 3 * 3600)
    assert (await client.get(local_path(expired_url))).status_code == 403


async def test_the_upload_policy_names_every_field_it_checks(
    client: httpx.AsyncClient, make_user: MakeUser, auth: Auth, settings: Settings
) -> None:
    """moto does not enforce POST policies, so decode the policy and check it as S3 would."""
    owner = await make_user()
    before = datetime.now(UTC)
    generated = await generate(client, auth(owner), "private")
    fields = generated["fields"]
    policy = json.loads(base64.b64decode(fields["policy"]))
    expiration = datetime.fromisoformat(policy["expiration"].replace("Z", "+00:00"))
    assert expiration <= before + timedelta(seconds=settings.UPLOAD_URL_EXPIRES_SECONDS + 5)
    # A form can be re-sent until it expires: two minutes by default (10 MB at 1 Mbit/s takes ~80 s).
    assert Settings.model_fields["UPLOAD_URL_EXPIRES_SECONDS"].default <= 120
    conditions = policy["conditions"]
    assert {"key": f"private/originals/{generated['id']}"} in conditions
    assert {"bucket": settings.PRIVATE_IMAGES_BUCKET} in conditions
    assert ["content-length-range", 1, settings.MAX_UPLOAD_BYTES] in conditions
    assert {"Content-Type": "image/jpeg"} in conditions  # pinned: the original is stored with this type
    assert not [c for c in conditions if isinstance(c, list) and c[0] == "starts-with"]
    named = set()
    for condition in conditions:
        if isinstance(condition, dict):
            named |= set(condition)
        elif condition[0] in ("eq", "starts-with"):
            named.add(condition[1].lstrip("$"))
    named.discard("bucket")  # the bucket is in the URL, not a form field
    assert named <= set(fields), named - set(fields)
    assert fields["Content-Type"] == "image/jpeg"
    assert fields["key"] == f"private/originals/{generated['id']}"


@pytest.mark.parametrize(
    ("privacy", "body", "status"),
    [
        ("secret", None, 400),
        ("public", {"content_type": "text/html"}, 422),
        ("public", {"content_type": "image/svg+xml"}, 422),  # runs scripts when opened
        ("public", {"content_type": "image/heic"}, 422),  # an image type the compressor does not render
        ("public", {"content_type": "image/"}, 422),
        ("PUBLIC", None, 400),
    ],
)
async def test_generate_refuses_bad_input(
    client: httpx.AsyncClient,
    make_user: MakeUser,
    auth: Auth,
    privacy: str,
    body: dict[str, str] | None,
    status: int,
) -> None:
    owner = await make_user()
    response = await client.post(f"/api/v1/images/upload/{privacy}/generate", headers=auth(owner), json=body)
    assert response.status_code == status
    assert response.json()["success"] is False


@pytest.mark.parametrize(
    ("asked", "pinned"),
    [
        ("image/png", "image/png"),
        (" Image/WEBP ", "image/webp"),
        ("image/jpg", "image/jpeg"),
        ("", "image/jpeg"),
    ],
)
async def test_generate_pins_the_canonical_type(
    client: httpx.AsyncClient, make_user: MakeUser, auth: Auth, asked: str, pinned: str
) -> None:
    owner = await make_user()
    generated = await generate(client, auth(owner), content_type=asked)
    assert generated["fields"]["Content-Type"] == pinned
    assert {"Content-Type": pinned} in json.loads(base64.b64decode(generated["fields"]["policy"]))[
        "conditions"
    ]


async def test_a_form_refuses_a_file_of_another_type(
    client: httpx.AsyncClient, make_user: MakeUser, auth: Auth
) -> None:
    """The Content-Type is pinned: an SVG (or HTML) sent with a PNG form's fields changed is refused by S3."""
    owner = await make_user()
    generated = await generate(client, auth(owner), content_type="image/png")
    svg = b'<svg xmlns="http://www.w3.org/2000/svg"><script>alert(1)</script></svg>'
    forged = {**generated["fields"], "Content-Type": "image/svg+xml"}
    async with httpx.AsyncClient() as s3:
        sent = await s3.post(generated["url"], data=forged, files={"file": ("x.svg", svg, "image/svg+xml")})
    assert sent.status_code == 403, sent.text
    media = await client.get(f"/api/v1/images/media/{generated['id']}")
    assert media.status_code == 404  # nothing was stored


def test_upload_types_are_the_types_the_compressor_renders() -> None:
    """The compressor is its own image and shares no code with the API: the two lists must agree."""
    from app.services.images import CONTENT_TYPE_ALIASES, UPLOAD_CONTENT_TYPES
    from rendition import ALLOWED_FORMATS, RENDERABLE_CONTENT_TYPES  # compressor/ is on the tests' path

    assert set(UPLOAD_CONTENT_TYPES) == set(RENDERABLE_CONTENT_TYPES)
    assert set(RENDERABLE_CONTENT_TYPES.values()) <= set(ALLOWED_FORMATS)
    assert set(CONTENT_TYPE_ALIASES.values()) <= set(UPLOAD_CONTENT_TYPES)
    assert not {"image/svg+xml", "text/html", "application/xml"} & set(UPLOAD_CONTENT_TYPES)
    # ...and the web client offers exactly these in its file picker.
    upload_js = (Path(__file__).parents[2] / "frontend" / "src" / "upload.js").read_text()
    [offered] = re.findall(r"ACCEPTED_TYPES = \[([^\]]*)\]", upload_js)
    assert set(re.findall(r'"([^"]+)"', offered)) == set(UPLOAD_CONTENT_TYPES)


async def test_generate_needs_a_login(client: httpx.AsyncClient) -> None:
    assert (await client.post("/api/v1/images/upload/public/generate")).status_code == 401


async def test_media_of_each_state(
    client: httpx.AsyncClient, make_user: MakeUser, make_image: MakeImage, auth: Auth
) -> None:
    owner = await make_user()
    ready = await make_image(owner, state="ready")
    rejected = await make_image(owner, state="rejected", rejected_reason="Not an image: HTML named .jpg")
    pending = await make_image(owner, state="pending")
    got = (await client.get(f"/api/v1/images/media/{ready.id}")).json()
    assert got["uri"].endswith(f"/public/renditions/{ready.id}.webp")
    refused = await client.get(f"/api/v1/images/media/{rejected.id}")
    assert refused.status_code == 422 and "HTML named .jpg" in refused.json()["detail"]
    assert (await client.get(f"/api/v1/images/media/{pending.id}")).status_code == 404
    assert (await client.get(f"/api/v1/images/media/{uuid.uuid4()}")).status_code == 404


async def test_delete_removes_the_row_and_every_object(
    client: httpx.AsyncClient, make_user: MakeUser, auth: Auth, moto_endpoint: str, settings: Settings
) -> None:
    owner, other = await make_user(), await make_user()
    generated = await generate(client, auth(owner), "public")
    image_id = generated["id"]
    await upload(generated, jpeg_bytes())
    s3 = s3_client("s3", moto_endpoint)
    bucket = settings.PUBLIC_IMAGES_BUCKET
    s3.put_object(Bucket=bucket, Key=f"public/renditions/{image_id}.webp", Body=b"webp")
    s3.put_object(Bucket=bucket, Key=f"public/renditions/{image_id}.rejected", Body=b"{}")

    def objects_of_image() -> list[str]:
        keys = [o["Key"] for o in s3.list_objects_v2(Bucket=bucket).get("Contents", [])]
        return [key for key in keys if image_id in key]

    assert len(objects_of_image()) == 3
    assert (await client.delete(f"/api/v1/images/{image_id}", headers=auth(other))).status_code == 404
    assert len(objects_of_image()) == 3
    deleted = await client.delete(f"/api/v1/images/{image_id}", headers=auth(owner))
    assert deleted.status_code == 200 and deleted.json() == {"success": True}
    assert objects_of_image() == []
    assert (await client.get(f"/api/v1/images/media/{image_id}")).status_code == 404
    assert (await client.delete(f"/api/v1/images/{image_id}", headers=auth(owner))).status_code == 404


async def test_a_feed_page_of_100_items_makes_no_s3_call(
    app: FastAPI, client: httpx.AsyncClient, make_user: MakeUser, make_image: MakeImage, auth: Auth
) -> None:
    owner = await make_user()
    for index in range(100):
        await make_image(owner, public=index % 2 == 0, state="ready" if index % 3 else "uploaded")
    calls: list[str] = []

    def count(event_name: str, **_kwargs: object) -> None:
        calls.append(event_name)

    events = app.state.storage.client.meta.events
    events.register("before-call", count)
    try:
        body = (await client.get("/api/v1/feed/latest", params={"limit": 100}, headers=auth(owner))).json()
    finally:
        events.unregister("before-call", count)
    assert body["count"] == 100
    assert sum("Signature=" in item["download_url"] for item in body["results"]) == 50
    assert calls == []
