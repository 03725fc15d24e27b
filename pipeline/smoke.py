"""`python -m pipeline.smoke --url SITE_URL`: is the deployed site whole? Run after each stage deploys.

Everything goes through the site's own URL (in AWS the CloudFront domain; the load balancer answers 403 to
anything that does not come through CloudFront), the way a browser goes:

1. the API's liveness (waiting for DNS and CloudFront after a first deployment), then its readiness
   (the database answers);
2. the web page and one of its content-hashed assets, and `config.json`;
3. the public feed (anonymous), then a fresh account: register, log in, `users/me`;
4. a public upload: presigned POST straight to S3, confirm, the original through `/images/media`, then
   the compressor's rendition once the image is `ready`;
5. a private upload, fetched through its signed URL (so a media signing key that CloudFront's key group
   does not hold, which makes every private image 403, fails the run), and refused without a signature.

Exit 0 when every check passed, 1 otherwise (the failed check says what it got). The account and its
images are deleted at the end, whatever happened (an account left by a killed run is named `smoke-*`).
"""

from __future__ import annotations

import argparse
import re
import secrets
import struct
import sys
import time
import zlib
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urljoin

import httpx

API = "/api/v1"


class CheckFailed(Exception):
    """A check did not get what it expected; the message says what it got."""


def tiny_png(edge: int = 64) -> bytes:
    """A valid `edge` x `edge` RGB PNG (a gradient), made without an imaging library."""
    rows = b"".join(
        b"\x00" + bytes(value for x in range(edge) for value in (x * 4 % 256, y * 4 % 256, 128))
        for y in range(edge)
    )

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    header = struct.pack(">IIBBBBB", edge, edge, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(rows))
        + chunk(b"IEND", b"")
    )


def expect(response: httpx.Response, *statuses: int) -> httpx.Response:
    if response.status_code not in statuses:
        raise CheckFailed(
            f"{response.request.method} {response.request.url} answered {response.status_code} "
            f"(expected {' or '.join(map(str, statuses))}): {response.text[:300]!r}"
        )
    return response


@dataclass
class Smoke:
    """The checks, in order; later ones use what earlier ones learned (the account, the image)."""

    base_url: str
    client: httpx.Client
    """The API client (it carries the account's token once logged in)."""
    anonymous: httpx.Client
    """For S3 and the media URLs: never sends the API's token (S3 refuses a second auth mechanism)."""
    wait_s: float = 300.0
    rendition_timeout_s: float = 120.0
    sleep: Callable[[float], None] = time.sleep
    username: str = field(default_factory=lambda: f"smoke-{secrets.token_hex(6)}")
    password: str = field(default_factory=lambda: secrets.token_urlsafe(18))
    user_id: str | None = None
    image_id: str | None = None
    private_image_id: str | None = None

    def api(self, path: str) -> str:
        return f"{self.base_url}{API}{path}"

    # --- the site ----------------------------------------------------------------------------------
    def liveness(self) -> str:
        deadline = time.monotonic() + self.wait_s
        while True:
            try:
                response = self.client.get(self.api("/health"))
                if response.status_code == 200 and response.json().get("status") == "ok":
                    return "200 ok"
                problem = f"answered {response.status_code}"
            except (httpx.HTTPError, ValueError) as error:
                problem = f"{type(error).__name__}: {error}"
            if time.monotonic() >= deadline:
                raise CheckFailed(f"{self.api('/health')} not healthy within {self.wait_s:.0f} s: {problem}")
            self.sleep(5)

    def readiness(self) -> str:
        expect(self.client.get(self.api("/health/ready")), 200)
        return "the database answers"

    def web_page(self) -> str:
        page = expect(self.client.get(f"{self.base_url}/"), 200)
        if "text/html" not in page.headers.get("content-type", ""):
            raise CheckFailed(f"/ is {page.headers.get('content-type')!r}, not HTML")
        assets = re.findall(r'(?:src|href)="(/assets/[^"]+\.js)"', page.text)
        if not assets:
            raise CheckFailed("/ names no script under /assets/: is it the web client's build?")
        expect(self.client.get(f"{self.base_url}{assets[0]}"), 200)
        return f"index.html and {assets[0]}"

    def config_json(self) -> str:
        config = expect(self.client.get(f"{self.base_url}/config.json"), 200).json()
        if not isinstance(config, dict) or "apiBase" not in config:
            raise CheckFailed(f"config.json has no apiBase: {config!r}")
        return f"apiBase {config['apiBase']}, environment {config.get('environment')}"

    # --- an account --------------------------------------------------------------------------------
    def register(self) -> str:
        body = {
            "username": self.username,
            "email": f"{self.username}@smoke.example.com",
            "password": self.password,
        }
        expect(self.client.post(self.api("/auth/register/"), json=body), 201)
        return self.username

    def login(self) -> str:
        body = {"username": self.username, "password": self.password}
        token = expect(self.client.post(self.api("/auth/login/"), json=body), 200).json()["access_token"]
        self.client.headers["Authorization"] = f"Bearer {token}"
        me = expect(self.client.get(self.api("/users/me")), 200).json()
        if me.get("username") != self.username:
            raise CheckFailed(f"users/me is {me.get('username')!r}, not {self.username!r}")
        self.user_id = me["id"]
        return f"users/me is {self.username}"

    def feed(self) -> str:
        page = expect(self.client.get(self.api("/feed/latest")), 200).json()
        if not isinstance(page.get("results"), list):
            raise CheckFailed(f"feed/latest has no results list: {page!r}"[:300])
        return f"{page.get('count', len(page['results']))} public posts on the first page"

    # --- an upload ---------------------------------------------------------------------------------
    def _upload(self, privacy: str) -> tuple[str, str]:
        """Generate, POST straight to S3 and confirm one image: (its id, its state)."""
        made = expect(
            self.client.post(
                self.api(f"/images/upload/{privacy}/generate"), json={"content_type": "image/png"}
            ),
            200,
        ).json()
        image_id = str(made["id"])
        if privacy == "public":
            self.image_id = image_id
        else:
            self.private_image_id = image_id
        # Straight to S3 with the presigned fields, as the web client does (no API credentials).
        sent = self.anonymous.post(
            made["url"], data=made["fields"], files={"file": ("smoke.png", tiny_png(), "image/png")}
        )
        expect(sent, 200, 201, 204)
        state = expect(self.client.post(self.api(f"/images/upload/{image_id}/confirm")), 200).json()["state"]
        if state not in ("uploaded", "ready"):
            raise CheckFailed(f"confirm left the {privacy} image {state!r}")
        return image_id, state

    def upload(self) -> str:
        image_id, state = self._upload("public")
        return f"image {image_id} {state}"

    def _fetch_media(self, image_id: str | None, what: str) -> tuple[str, httpx.Response]:
        uri = expect(self.client.get(self.api(f"/images/media/{image_id}")), 200).json()["uri"]
        url = urljoin(f"{self.base_url}/", uri)
        return url, self.anonymous.get(url)

    @staticmethod
    def _image(url: str, got: httpx.Response, what: str) -> str:
        expect(got, 200)
        kind = got.headers.get("content-type", "")
        if not kind.startswith("image/"):
            raise CheckFailed(f"the {what} at {url} is {kind!r}, not an image")
        return f"{what}: {len(got.content)} bytes of {kind}"

    def media(self, what: str = "original") -> str:
        url, got = self._fetch_media(self.image_id, what)
        return self._image(url, got, what)

    def private_upload(self) -> str:
        image_id, state = self._upload("private")
        return f"image {image_id} {state}"

    def private_media(self) -> str:
        """The private original through its signed URL, and not without the signature."""
        url, got = self._fetch_media(self.private_image_id, "private original")
        if "Signature=" not in url:
            raise CheckFailed(f"the private image's URL is not signed: {url}")
        if got.status_code == 403:
            raise CheckFailed(
                f"the signed URL of a private image answered 403 ({got.text[:120]!r}): the key the API signs "
                "with (active_media_signing_key and its secret) is not one CloudFront's key group trusts; "
                "see stages/runbooks/media-signing-key.md"
            )
        detail = self._image(url, got, "private original")
        unsigned = self.anonymous.get(url.split("?", 1)[0])
        if unsigned.status_code != 403:
            raise CheckFailed(
                f"the private image answered {unsigned.status_code} without a signature, not 403"
            )
        return f"{detail}; 403 without the signature"

    def rendition(self) -> str:
        deadline = time.monotonic() + self.rendition_timeout_s
        state = "?"
        # A rendition usually lands within a second: look again soon, then every 2 s.
        pause = 0.25
        while time.monotonic() < deadline:
            page = expect(self.client.get(self.api(f"/feed/by_user/{self.user_id}")), 200).json()
            state = next(
                (item["state"] for item in page["results"] if item["id"] == self.image_id), "missing"
            )
            if state == "ready":
                return self.media("rendition")
            if state == "rejected":
                raise CheckFailed("the compressor rejected the smoke test's PNG")
            self.sleep(pause)
            pause = min(2.0, pause * 2)
        raise CheckFailed(f"no rendition within {self.rendition_timeout_s:.0f} s (image state {state!r})")

    def cleanup(self) -> str:
        """Delete the image (the route the web client uses), then the account (nothing of the run stays)."""
        done = []
        for image_id in (self.image_id, self.private_image_id):
            if image_id is not None:
                expect(self.client.delete(self.api(f"/images/{image_id}")), 200)
                done.append(f"image {image_id}")
        if self.user_id is not None:
            expect(self.client.delete(self.api("/users/me")), 200)
            done.append(f"account {self.username}")
        return f"deleted {' and '.join(done)}" if done else "nothing to delete"

    def checks(self) -> list[tuple[str, Callable[[], str]]]:
        return [
            ("API liveness", self.liveness),
            ("API readiness", self.readiness),
            ("web page", self.web_page),
            ("config.json", self.config_json),
            ("public feed", self.feed),
            ("register", self.register),
            ("log in", self.login),
            ("upload", self.upload),
            ("original", self.media),
            ("rendition", self.rendition),
            ("private upload", self.private_upload),
            ("private media", self.private_media),
        ]


def run(smoke: Smoke, out: Callable[[str], None] = print) -> bool:
    """Every check in order, stopping at the first failure; the image is deleted whatever happened."""
    passed = True
    for name, check in smoke.checks():
        started = time.monotonic()
        try:
            detail = check()
        except (CheckFailed, httpx.HTTPError, KeyError, ValueError) as error:
            out(f"FAIL  {name:<14} {time.monotonic() - started:6.1f}s  {error}")
            passed = False
            break
        out(f"ok    {name:<14} {time.monotonic() - started:6.1f}s  {detail}")
    try:
        out(f"ok    {'cleanup':<14} {'':>7}  {smoke.cleanup()}")
    except (CheckFailed, httpx.HTTPError) as error:
        out(f"warn  {'cleanup':<14} {'':>7}  {error}")
    return passed


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m pipeline.smoke", description=__doc__.splitlines()[0])
    parser.add_argument("--url", required=True, help="the site's URL (the stage's SiteUrl output)")
    parser.add_argument(
        "--wait", type=float, default=300.0, help="seconds to wait for the first healthy answer"
    )
    parser.add_argument("--rendition-timeout", type=float, default=120.0)
    args = parser.parse_args(argv)
    base = args.url.rstrip("/")
    if not base.startswith(("http://", "https://")):
        print(f"ERROR: --url {args.url!r} is not an http(s) URL (is SiteUrl set?)", file=sys.stderr)
        return 2
    print(f"==> Smoke test of {base}", flush=True)
    headers: dict[str, Any] = {"User-Agent": "yoctogram-pipeline-smoke"}
    with (
        httpx.Client(timeout=30, follow_redirects=True, headers=headers) as client,
        httpx.Client(timeout=60, follow_redirects=True, headers=headers) as anonymous,
    ):
        smoke = Smoke(base, client, anonymous, wait_s=args.wait, rendition_timeout_s=args.rendition_timeout)
        passed = run(smoke, lambda line: print(line, flush=True))
    print(f"==> Smoke test {'passed' if passed else 'FAILED'}", flush=True)
    return 0 if passed else 1


if __name__ == "__main__":
    sys.exit(main())
