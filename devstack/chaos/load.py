"""The fault suite's load: a few requests per second from a handful of threads, every one recorded.

- two uploaders: each registers and logs in once, then uploads in a loop through `generate`, the presigned
  POST to the S3 server and `confirm` (every fifth upload is not an image: it must end `rejected`; every
  third is private), and reads its feed and one image of it;
- one anonymous reader: the public feed and one image of it;
- one registrar: a new account every few seconds, registered and logged in once (never a wrong
  password: login failures may be throttled).

Writes (registration, login, upload steps) are retried every second while they get a 503 or no answer,
as a patient client would (faster than `Retry-After` asks, so recovery shows to the second); reads are not
retried. A 429 is retried after its `Retry-After`. Nothing is retried after `stop()`.
"""

from __future__ import annotations

import contextlib
import io
import random
import re
import threading
import time
from collections.abc import Callable, Collection
from dataclasses import dataclass
from typing import Any

import httpx

from devstack.chaos.verdict import NO_ANSWER, S3_ROUTE_PREFIX, Record

API = "/api/v1"
TIMEOUT = httpx.Timeout(20.0, connect=3.0)
"""Longer than a hung S3 keeps the API (its S3 timeouts answer 503 within ~10 s) or the presigned POST
(the hang lasts 5 s) waiting: a request without an answer within it is a failure to explain."""
RETRY_EVERY_S = 1.0
PATIENCE_S = 60.0
"""How long a write is retried before the flow gives up (a restart of the whole stack takes ~10 s)."""
UPLOAD_PAUSE_S = 1.5
READ_EVERY_S = 1.0
REGISTER_EVERY_S = 3.0
CORRUPT_EVERY = 5
PRIVATE_EVERY = 3
CORRUPT = b"this is no image, whatever its Content-Type says\n" * 40


class Recorder:
    """Every request of the suite, with times relative to `t0` (time.monotonic())."""

    def __init__(self, t0: float) -> None:
        self.t0 = t0
        self._lock = threading.Lock()
        self._records: list[Record] = []

    def now(self) -> float:
        return time.monotonic() - self.t0

    def records(self) -> list[Record]:
        with self._lock:
            return list(self._records)

    def add(self, record: Record) -> None:
        with self._lock:
            self._records.append(record)

    def request(
        self, client: httpx.Client, method: str, url: str, route: str, **kwargs: Any
    ) -> httpx.Response | None:
        """Send one request and record it; None when no HTTP answer came."""
        start = self.now()
        try:
            response = client.request(method, url, **kwargs)
        except httpx.HTTPError as error:
            self.add(Record(start, self.now(), route, NO_ANSWER, f"{type(error).__name__}: {error}"[:200]))
            return None
        reason, json_error = _reason(response, s3=route.startswith(S3_ROUTE_PREFIX))
        self.add(
            Record(
                start,
                self.now(),
                route,
                response.status_code,
                reason,
                response.headers.get("Retry-After"),
                json_error,
            )
        )
        return response


_S3_CODE = re.compile(r"<Code>([^<]+)</Code>")


def _reason(response: httpx.Response, *, s3: bool) -> tuple[str, bool]:
    """(why it failed, whether the body was the API's JSON error); ("", False) for a success."""
    if response.status_code < 400:
        return "", False
    if s3:
        code = _S3_CODE.search(response.text)
        return (code.group(1) if code else response.text[:120]), False
    try:
        body = response.json()
    except ValueError:
        return f"(not JSON) {response.text[:120]}", False
    if isinstance(body, dict) and body.get("success") is False and isinstance(body.get("detail"), str):
        return body["detail"], bool(body["detail"])
    return f"(not the API's error) {str(body)[:120]}", False


def sample_photos(count: int = 4) -> list[bytes]:
    """A few small, distinct JPEGs (fractals: not trivially compressible)."""
    from PIL import Image

    photos = []
    for seed in range(count):
        buffer = io.BytesIO()
        size = (320 + 16 * seed, 240)
        Image.effect_mandelbrot(size, (-2, -1.2, 1, 1.2), 20 + 5 * seed).convert("RGB").save(buffer, "JPEG")
        photos.append(buffer.getvalue())
    return photos


@dataclass
class Account:
    username: str
    password: str
    registered: bool = False
    """The registration was acknowledged (201)."""
    token: str | None = None

    @property
    def email(self) -> str:
        return f"{self.username}@example.com"

    def auth(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"} if self.token else {}


@dataclass
class Upload:
    image_id: str
    owner: Account
    corrupt: bool
    public: bool
    posted: bool = False
    """The S3 server acknowledged the presigned POST (204/201)."""
    confirmed: bool = False
    """`confirm` answered 200."""


class Load:
    """The load's threads; `accounts` and `uploads` hold what they did, for the checks afterwards."""

    def __init__(self, base_url: str, recorder: Recorder, seed: int = 21) -> None:
        self.base_url = base_url.rstrip("/")
        self.api = self.base_url + API
        self.recorder = recorder
        self.photos = sample_photos()
        self.random = random.Random(seed)
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._threads: list[threading.Thread] = []
        self._names = 0
        self.accounts: list[Account] = []
        self.uploads: list[Upload] = []

    # --- lifecycle ---------------------------------------------------------------------------
    def start(self) -> None:
        targets: list[tuple[str, Callable[[], None]]] = [
            ("uploader-1", self._uploader),
            ("uploader-2", self._uploader),
            ("reader", self._reader),
            ("registrar", self._registrar),
        ]
        for name, target in targets:
            thread = threading.Thread(target=self._guarded(target), name=f"chaos-{name}", daemon=True)
            thread.start()
            self._threads.append(thread)

    def stop(self, timeout: float = 30.0) -> None:
        """No new request after this; wait for the ones in flight."""
        self._stop.set()
        deadline = time.monotonic() + timeout
        for thread in self._threads:
            thread.join(max(0.0, deadline - time.monotonic()))

    @property
    def stopping(self) -> bool:
        return self._stop.is_set()

    def _guarded(self, target: Callable[[], None]) -> Callable[[], None]:
        def run() -> None:
            try:
                target()
            except Exception as error:  # a bug of the driver must show, not silently end the load
                self.recorder.add(
                    Record(self.recorder.now(), self.recorder.now(), "(load driver)", 599, repr(error)[:300])
                )

        return run

    # --- building blocks ---------------------------------------------------------------------
    def _new_account(self) -> Account:
        with self._lock:
            self._names += 1
            account = Account(f"chaos{self._names:04d}", f"chaos-password-{self._names:04d}")
            self.accounts.append(account)
        return account

    def _retrying(
        self, send: Callable[[], httpx.Response | None], ok: Collection[int]
    ) -> httpx.Response | None:
        """Send until an answer in `ok`, another final answer, `PATIENCE_S` or stop(); the last answer."""
        deadline = time.monotonic() + PATIENCE_S
        while True:
            response = send()
            if response is not None and response.status_code in ok:
                return response
            status = response.status_code if response is not None else NO_ANSWER
            retryable = status == NO_ANSWER or status == 429 or status >= 500
            if not retryable or self._stop.is_set() or time.monotonic() > deadline:
                return response
            wait = RETRY_EVERY_S
            if status == 429 and response is not None:
                with contextlib.suppress(ValueError, TypeError):
                    wait = float(response.headers.get("Retry-After", RETRY_EVERY_S))
            self._stop.wait(wait)

    def register_and_login(self, client: httpx.Client, account: Account) -> bool:
        """Register `account` and log it in, once each (retried only while unanswered or unavailable)."""
        body = {"username": account.username, "email": account.email, "password": account.password}
        made = self._retrying(
            lambda: self.recorder.request(
                client, "POST", f"{self.api}/auth/register/", f"POST {API}/auth/register/", json=body
            ),
            ok={201},
        )
        if made is None or made.status_code not in (201, 409):  # 409: an unanswered try got through
            return False
        account.registered = made.status_code == 201
        token = self.login(client, account)
        account.token = token
        return token is not None

    def login(self, client: httpx.Client, account: Account) -> str | None:
        body = {"username": account.username, "password": account.password}
        got = self._retrying(
            lambda: self.recorder.request(
                client, "POST", f"{self.api}/auth/login/", f"POST {API}/auth/login/", json=body
            ),
            ok={200},
        )
        if got is None or got.status_code != 200:
            return None
        return str(got.json()["access_token"])

    def upload(self, client: httpx.Client, owner: Account, *, corrupt: bool, public: bool) -> None:
        privacy = "public" if public else "private"
        made = self._retrying(
            lambda: self.recorder.request(
                client,
                "POST",
                f"{self.api}/images/upload/{privacy}/generate",
                f"POST {API}/images/upload/{{privacy}}/generate",
                json={"content_type": "image/jpeg"},
                headers=owner.auth(),
            ),
            ok={200},
        )
        if made is None or made.status_code != 200:
            return
        form = made.json()
        upload = Upload(str(form["id"]), owner, corrupt, public)
        with self._lock:
            self.uploads.append(upload)
        data = CORRUPT if corrupt else self.random.choice(self.photos)
        sent = self._retrying(
            lambda: self.recorder.request(
                client,
                "POST",
                form["url"],
                f"{S3_ROUTE_PREFIX}POST presigned form",
                data=form["fields"],
                files={"file": ("photo.jpg", data, "image/jpeg")},
            ),
            ok={201, 204},
        )
        if sent is None or sent.status_code not in (201, 204):
            return
        upload.posted = True
        confirmed = self._retrying(
            lambda: self.recorder.request(
                client,
                "POST",
                f"{self.api}/images/upload/{upload.image_id}/confirm",
                f"POST {API}/images/upload/{{id}}/confirm",
                headers=owner.auth(),
            ),
            ok={200},
        )
        upload.confirmed = confirmed is not None and confirmed.status_code == 200

    def browse(self, client: httpx.Client, viewer: Account | None) -> None:
        """The first page of the latest feed, then one image of it through the media gateway."""
        headers = viewer.auth() if viewer else {}
        page = self.recorder.request(
            client, "GET", f"{self.api}/feed/latest?limit=12", f"GET {API}/feed/latest", headers=headers
        )
        if page is None or page.status_code != 200:
            return
        items = page.json().get("results", [])
        if items:
            item = self.random.choice(items)
            kind = "public" if item.get("public") else "private"
            with self._lock:
                refused = any(u.corrupt and u.image_id == str(item.get("id")) for u in self.uploads)
            # A refused upload shows in the feed (as `uploaded`) until the worker applies the refusal; its
            # original is moved to quarantine first, so for that moment its URL answers 404.
            route = f"GET /{kind}/* (media gateway{', a refused upload' if refused else ''})"
            self.recorder.request(client, "GET", item["download_url"], route)

    # --- the threads -------------------------------------------------------------------------
    def _uploader(self) -> None:
        with httpx.Client(timeout=TIMEOUT) as client:
            owner = self._new_account()
            while not self.register_and_login(client, owner):
                if self._stop.wait(RETRY_EVERY_S):
                    return
                owner = self._new_account()
            count = 0
            while not self._stop.is_set():
                count += 1
                self.upload(
                    client,
                    owner,
                    corrupt=count % CORRUPT_EVERY == 0,
                    public=count % PRIVATE_EVERY != 0,
                )
                if not self._stop.is_set():
                    self.browse(client, owner)
                self._stop.wait(UPLOAD_PAUSE_S)

    def _reader(self) -> None:
        with httpx.Client(timeout=TIMEOUT) as client:
            while not self._stop.wait(READ_EVERY_S):
                self.browse(client, None)

    def _registrar(self) -> None:
        with httpx.Client(timeout=TIMEOUT) as client:
            while not self._stop.wait(REGISTER_EVERY_S):
                account = self._new_account()
                if self.register_and_login(client, account) and not self._stop.is_set():
                    self.recorder.request(
                        client, "GET", f"{self.api}/users/me", f"GET {API}/users/me", headers=account.auth()
                    )
