"""What every persona shares: the run context, checked API calls, sign-in, uploads and image fetches.

Every request goes through `catch_response` with a reason when it fails; a failed sign-in records its
failure and stops that simulated user (`StopUser`), it never carries on silently without a token.
"""

from __future__ import annotations

import random
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any, ClassVar
from urllib.parse import quote

import gevent
from locust import FastHttpUser
from locust.exception import StopUser

from loadtests.common.accounts import AccountSource, Credentials
from loadtests.common.api import (
    API,
    Group,
    absolute,
    check_feed,
    check_image,
    encode_multipart,
    expect_json,
    is_rendition,
)
from loadtests.common.config import LoadTestConfig
from loadtests.common.ledger import Ledger


@dataclass
class RunContext:
    """Built once per process by the locustfile and shared by every simulated user."""

    config: LoadTestConfig
    accounts: AccountSource
    ledger: Ledger | None
    images: list[bytes] = field(default_factory=list)

    def image(self) -> bytes:
        return random.choice(self.images)


class RenditionTimeout(Exception):
    """The compressor's rendition did not appear within the configured time."""


@dataclass
class Upload:
    image_id: str
    privacy: str
    uploaded_at: float  # time.monotonic() when S3 accepted the object


class ApiUser(FastHttpUser):
    """Base of the personas: not a persona itself."""

    abstract = True
    persona: ClassVar[str] = "user"
    run_context: ClassVar[RunContext]
    network_timeout = 30.0
    connection_timeout = 10.0

    token: str | None = None
    user_id: str | None = None
    username: str | None = None

    # --- plumbing -------------------------------------------------------------------------------
    def _headers(self, auth: bool) -> dict[str, str]:
        headers = {"Accept": "application/json"}
        if auth and self.token:
            headers["Authorization"] = f"Bearer {self.token}"
        return headers

    def call(
        self,
        method: str,
        path: str,
        group: str,
        *,
        expect: Iterable[int] = (200,),
        keys: Iterable[str] = (),
        payload: dict[str, Any] | None = None,
        auth: bool = True,
    ) -> dict[str, Any] | None:
        """One API request under `group`; returns the JSON body, or None after recording a failure."""
        with self.client.request(
            method, API + path, name=group, json=payload, headers=self._headers(auth), catch_response=True
        ) as response:
            body, problem = expect_json(response, expect, keys)
            if problem:
                response.failure(problem)
                return None
            response.success()
            return body

    def feed_page(self, path: str, group: str, auth: bool = True) -> tuple[list[dict[str, Any]], str | None]:
        """Items and next cursor of a feed page (empty after a recorded failure)."""
        with self.client.get(
            API + path, name=group, headers=self._headers(auth), catch_response=True
        ) as response:
            items, cursor, problem = check_feed(response)
            if problem:
                response.failure(problem)
            else:
                response.success()
            return items, cursor

    def fetch_image(self, url: str, group: str) -> bool:
        """GET the bytes at a download URL or media URI; True when an image came back."""
        try:
            target = absolute(url, self.host or "")
        except ValueError as error:
            self._record(group, 0.0, error)
            return False
        with self.client.get(target, name=group, catch_response=True) as response:
            problem = check_image(response, response.headers)
            if problem:
                response.failure(problem)
                return False
            response.success()
            return True

    def _record(self, group: str, elapsed_ms: float, error: Exception | None, kind: str = "FLOW") -> None:
        """Record a measurement that is not one HTTP request (a flow's duration, or a refusal)."""
        self.environment.events.request.fire(
            request_type=kind,
            name=group,
            response_time=elapsed_ms,
            response_length=0,
            exception=error,
            context={},
        )

    # --- accounts -------------------------------------------------------------------------------
    def sign_in(self) -> None:
        """Register (unless the account comes from the pool), log in and learn our id; else StopUser."""
        credentials = self.run_context.accounts.next(self.persona)
        self.username = credentials.username
        if self.run_context.ledger:
            self.run_context.ledger.user(
                credentials.username,
                None if credentials.from_pool else credentials.password,
                from_pool=credentials.from_pool,
            )
        if not credentials.from_pool:
            self._register(credentials)
        body = self.call(
            "POST",
            "/auth/login/",
            Group.LOGIN,
            payload={"username": credentials.username, "password": credentials.password},
            keys=("access_token",),
            auth=False,
        )
        if body is None:
            raise StopUser()  # the failure is recorded under /auth/login/ with its reason
        self.token = str(body["access_token"])
        me = self.call("GET", "/users/me", Group.ME, keys=("id",))
        if me is None:
            raise StopUser()
        self.user_id = str(me["id"])

    def _register(self, credentials: Credentials) -> None:
        body = self.call(
            "POST",
            "/auth/register/",
            Group.REGISTER,
            expect=(201,),
            payload={
                "username": credentials.username,
                "email": credentials.email,
                "password": credentials.password,
            },
            auth=False,
        )
        if body is None:
            raise StopUser()

    # --- uploads --------------------------------------------------------------------------------
    def upload(self, privacy: str) -> Upload | None:
        """generate -> POST the file to S3 with the presigned fields -> confirm. None after a failure."""
        ticket = self.call(
            "POST",
            f"/images/upload/{privacy}/generate",
            Group.GENERATE,
            expect=(200, 201),
            keys=("url", "fields", "id"),
        )
        if ticket is None:
            return None
        image_id = str(ticket["id"])
        if self.run_context.ledger and self.username:
            self.run_context.ledger.image(image_id, self.username)
        fields = {str(k): str(v) for k, v in dict(ticket["fields"]).items()}
        content_type = fields.get("Content-Type", "image/png")
        body, multipart_type = encode_multipart(fields, self.run_context.image(), content_type)
        try:
            url = absolute(str(ticket["url"]), self.host or "")
        except ValueError as error:
            self._record(Group.S3_POST, 0.0, error)
            return None
        with self.client.request(
            "POST",
            url,
            name=Group.S3_POST,
            data=body,  # type: ignore[arg-type]  # geventhttpclient sends bytes; Locust's hint is narrower
            headers={"Content-Type": multipart_type},
            catch_response=True,
        ) as response:
            if response.status_code not in (200, 201, 204):
                response.failure(
                    f"HTTP {response.status_code} from S3 (expected 204): {(response.text or '')[:200]}"
                )
                return None
            response.success()
        uploaded_at = time.monotonic()
        if self.call("POST", f"/images/upload/{image_id}/confirm", Group.CONFIRM) is None:
            return None
        return Upload(image_id, privacy, uploaded_at)

    def media_uri(self, image_id: str, group: str = Group.MEDIA) -> str | None:
        body = self.call("GET", f"/images/media/{image_id}", group, keys=("uri",))
        return str(body["uri"]) if body else None

    def wait_for_rendition(self, upload: Upload) -> str | None:
        """Poll media until it serves the rendition; record `time to rendition` (from S3's answer)."""
        config = self.run_context.config
        deadline = upload.uploaded_at + config.rendition_timeout_s
        uri = None
        while time.monotonic() < deadline:
            uri = self.media_uri(upload.image_id, Group.MEDIA_POLL)
            if uri and is_rendition(uri, upload.image_id):
                self._record(Group.TIME_TO_RENDITION, 1000 * (time.monotonic() - upload.uploaded_at), None)
                return uri
            gevent.sleep(config.poll_interval_s)
        error = RenditionTimeout(
            f"no rendition within {config.rendition_timeout_s:.0f} s (last uri: {'original' if uri else 'none'})"
        )
        self._record(Group.TIME_TO_RENDITION, 1000 * (time.monotonic() - upload.uploaded_at), error)
        return None

    def delete_image(self, image_id: str) -> None:
        self.call("DELETE", f"/images/{image_id}", Group.DELETE, expect=(200, 204, 404))

    # --- browsing -------------------------------------------------------------------------------
    def browse_feed(self, auth: bool, pages: int = 2, images: int = 2) -> list[dict[str, Any]]:
        """First page of the latest feed, maybe the next ones, and a few of the images on them."""
        items, cursor = self.feed_page("/feed/latest?limit=12", Group.FEED, auth)
        seen = list(items)
        for _ in range(pages - 1):
            if not cursor or random.random() < 0.5:
                break
            more, cursor = self.feed_page(
                f"/feed/latest?limit=12&cursor={quote(cursor)}", Group.FEED_NEXT, auth
            )
            seen.extend(more)
        for item in random.sample(seen, min(images, len(seen))):
            group = Group.IMAGE_PUBLIC if item.get("public", True) else Group.IMAGE_PRIVATE
            self.fetch_image(str(item["download_url"]), group)
        return seen

    def visit_creator(self, items: list[dict[str, Any]], auth: bool) -> None:
        """A creator's page and profile, for a creator seen on the feed."""
        if not items:
            return
        creator = str(random.choice(items)["creator"])
        self.feed_page(f"/feed/by_user/{creator}?limit=12", Group.CREATOR, auth)
        self.call("GET", f"/users/profile/{creator}", Group.PROFILE, keys=("username",), auth=auth)
