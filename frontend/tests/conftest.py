"""Browser tests: the real local stack, started as `make up` starts it, driven by a real headless Chromium.

The browser is the system's Chromium (Debian's `chromium`, or `YOCTOGRAM_CHROMIUM`); Playwright's own browser
download is never used. Without a browser the tests skip, unless `REQUIRE_BROWSER=1` (CI) makes that a failure.
When a test fails, a screenshot and the console log of each of its pages go to `test-artifacts/browser/`,
with the stack's logs.
"""

from __future__ import annotations

import io
import os
import re
import shutil
import time
import uuid
from collections.abc import Callable, Generator, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest
from playwright.sync_api import Browser, Page, StorageState, expect, sync_playwright

from devstack.background import LocalStack, LocalStackError
from devstack.postgres import free_port
from sample_images import photo_like

PROJECT = Path(__file__).resolve().parents[2]
FRONTEND = PROJECT / "frontend"
ARTIFACTS = PROJECT / "test-artifacts" / "browser"
PASSWORD = "correct horse battery"
TOKEN_KEY = "yoctogram.token"  # where the client keeps its session (frontend/src/session.js)
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
]
_REPORTS = pytest.StashKey[dict[str, pytest.TestReport]]()
_FAILURES = {"count": 0}


def _unavailable(reason: str) -> None:
    if os.environ.get("REQUIRE_BROWSER") == "1":
        pytest.fail(f"{reason} (REQUIRE_BROWSER=1 makes this a failure)", pytrace=False)
    pytest.skip(reason)


def find_chromium() -> str | None:
    """YOCTOGRAM_CHROMIUM if set, else Debian's /usr/bin/chromium, else `chromium` on PATH."""
    configured = os.environ.get("YOCTOGRAM_CHROMIUM")
    candidates = [configured] if configured else ["/usr/bin/chromium", shutil.which("chromium")]
    return next((c for c in candidates if c and os.access(c, os.X_OK)), None)


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    """Keep each phase's report on the test, so fixtures can tell at teardown whether it failed."""
    report: pytest.TestReport = yield
    item.stash.setdefault(_REPORTS, {})[report.when] = report
    if report.failed:
        _FAILURES["count"] += 1
    return report


# --- the browser -----------------------------------------------------------------------------------
@pytest.fixture(scope="session")
def chromium_path() -> str:
    path = find_chromium()
    if path is None:
        where = os.environ.get("YOCTOGRAM_CHROMIUM") or "/usr/bin/chromium"
        _unavailable(
            f"no Chromium at {where}: install it (`apt-get install -y chromium`) or set YOCTOGRAM_CHROMIUM"
        )
    assert path is not None
    return path


@pytest.fixture(scope="session")
def browser(chromium_path: str) -> Iterator[Browser]:
    shutil.rmtree(ARTIFACTS, ignore_errors=True)  # what is there after the run is about this run
    expect.set_options(timeout=10_000)
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=chromium_path, args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


# --- the stack -------------------------------------------------------------------------------------
def _check_build() -> None:
    index = FRONTEND / "dist" / "index.html"
    sources = [
        FRONTEND / "index.html",
        *FRONTEND.joinpath("src").rglob("*"),
        *FRONTEND.joinpath("public").rglob("*"),
    ]
    if not index.exists():
        pytest.fail(
            "frontend/dist is missing: build the web client with `make frontend` first.", pytrace=False
        )
    newest = max(p.stat().st_mtime for p in sources if p.is_file())
    if newest > index.stat().st_mtime:
        pytest.fail(
            "frontend/dist is older than frontend/src: rebuild it with `make frontend`.", pytrace=False
        )


@dataclass
class Stack:
    """The running local stack, plus shortcuts that set up data through the API (faster than the UI)."""

    url: str
    local_dir: Path
    http: httpx.Client = field(init=False)

    def __post_init__(self) -> None:
        self.http = httpx.Client(base_url=f"{self.url}/api/v1", timeout=30)

    def new_user(self) -> dict[str, str]:
        """Register a fresh account; returns username, email, password, token and id."""
        name = f"u{uuid.uuid4().hex[:10]}"
        account = {"username": name, "email": f"{name}@example.com", "password": PASSWORD}
        assert self.http.post("/auth/register/", json=account).status_code == 201
        login = self.http.post("/auth/login/", json={"username": name, "password": PASSWORD})
        token = login.json()["access_token"]
        me = self.http.get("/users/me", headers={"Authorization": f"Bearer {token}"}).json()
        return {**account, "token": token, "id": me["id"]}

    def post_image(self, user: dict[str, str], image: bytes, *, public: bool = True) -> str:
        """Upload through the presigned POST and confirm, as the client does; returns the image id."""
        auth = {"Authorization": f"Bearer {user['token']}"}
        privacy = "public" if public else "private"
        slot = self.http.post(
            f"/images/upload/{privacy}/generate", headers=auth, json={"content_type": "image/jpeg"}
        )
        assert slot.status_code == 200, slot.text
        body = slot.json()
        sent = httpx.post(
            body["url"], data=body["fields"], files={"file": ("photo.jpg", image, "image/jpeg")}
        )
        assert sent.status_code in (200, 201, 204), sent.text
        confirmed = self.http.post(f"/images/upload/{body['id']}/confirm", headers=auth)
        assert confirmed.status_code == 200, confirmed.text
        return str(body["id"])

    def wait_until_ready(self, ids: list[str], timeout: float = 30) -> None:
        """Wait until the compressor has made every rendition (the media URL names it)."""
        deadline = time.monotonic() + timeout
        waiting = set(ids)
        while waiting and time.monotonic() < deadline:
            for image_id in list(waiting):
                uri = self.http.get(f"/images/media/{image_id}").json().get("uri", "")
                if "/renditions/" in uri:
                    waiting.discard(image_id)
            time.sleep(0.3)
        assert not waiting, f"no rendition within {timeout}s for {sorted(waiting)}"

    def save_logs(self) -> None:
        target = ARTIFACTS / "stack-logs"
        target.mkdir(parents=True, exist_ok=True)
        for log in [self.local_dir / "up.log", *(self.local_dir / "logs").glob("*.log")]:
            shutil.copy(log, target / log.name)


@pytest.fixture(scope="session")
def stack(browser: Browser, scratch_dir: Path) -> Iterator[Stack]:
    """`make up` on free ports in its own folder (devstack.background); stopped in order at the end."""
    _check_build()
    local_dir = scratch_dir / "browser-stack"
    local_dir.mkdir(mode=0o755)
    background = LocalStack(
        local_dir=local_dir,
        port=free_port(),
        log_path=local_dir / "up.log",
        s3_port=free_port(),
        pg_port=free_port(),
    )
    running = Stack(url=background.base_url, local_dir=local_dir)
    try:
        try:
            background.start(timeout=180)
        except LocalStackError as error:
            pytest.fail(str(error), pytrace=False)
        page = httpx.get(f"{running.url}/", timeout=10)  # the web client, served by the same process
        if page.status_code != 200 or 'id="main"' not in page.text:
            pytest.fail(f"the local stack serves no web client at {running.url}/ ({page.status_code})")
        yield running
    finally:
        running.http.close()
        background.stop(timeout=60)
        if _FAILURES["count"]:
            running.save_logs()


# --- pages -----------------------------------------------------------------------------------------
@dataclass
class Tab:
    """A page in its own browser context (its own storage: one person), with its console log."""

    page: Page
    console: list[str]


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", text)[:120]


@pytest.fixture
def open_page(
    browser: Browser, stack: Stack, request: pytest.FixtureRequest
) -> Iterator[Callable[..., Page]]:
    """open_page(user=None, width=1280, height=900) -> a Playwright page at the stack, logged in as `user`.

    Each call is a separate browser context, i.e. another person. On failure every page is photographed.
    """
    tabs: list[Tab] = []

    def open_page(user: dict[str, str] | None = None, *, width: int = 1280, height: int = 900) -> Page:
        # A logged-in user is a token in the client's storage, as after logging in through the page.
        storage: StorageState = {"cookies": [], "origins": []}
        if user:
            storage["origins"] = [
                {"origin": stack.url, "localStorage": [{"name": TOKEN_KEY, "value": user["token"]}]}
            ]
        context = browser.new_context(
            base_url=stack.url, viewport={"width": width, "height": height}, storage_state=storage
        )
        page = context.new_page()
        tab = Tab(page, [])
        page.on("console", lambda message: tab.console.append(f"[{message.type}] {message.text}"))
        page.on("pageerror", lambda error: tab.console.append(f"[pageerror] {error}"))
        page.on(
            "requestfailed", lambda r: tab.console.append(f"[requestfailed] {r.method} {r.url}: {r.failure}")
        )
        tabs.append(tab)
        return page

    yield open_page

    reports = request.node.stash.get(_REPORTS, {})
    failed = any(report.failed for report in reports.values())
    for number, tab in enumerate(tabs, start=1):
        if failed:
            ARTIFACTS.mkdir(parents=True, exist_ok=True)
            stem = ARTIFACTS / f"{_slug(request.node.name)}-{number}"
            try:
                tab.page.screenshot(path=f"{stem}.png", full_page=True)
            except Exception as error:  # the page may have crashed: keep its log anyway
                tab.console.append(f"[screenshot failed] {error}")
            Path(f"{stem}.log").write_text(f"url: {tab.page.url}\n" + "\n".join(tab.console) + "\n")
        tab.page.context.close()
    uncaught = [line for tab in tabs for line in tab.console if line.startswith("[pageerror]")]
    if uncaught and not failed:
        pytest.fail("the page threw errors nothing caught:\n" + "\n".join(uncaught), pytrace=False)


@pytest.fixture
def photo(tmp_path: Path) -> Callable[..., Path]:
    """photo(name="photo.jpg", width=900, height=600) -> a photo-like JPEG file (noise, gradients)."""

    def make(name: str = "photo.jpg", width: int = 900, height: int = 600, seed: int | None = None) -> Path:
        path = tmp_path / name
        photo_like(width, height, seed=seed if seed is not None else uuid.uuid4().int % 1000).save(
            path, "JPEG", quality=90
        )
        return path

    return make


@pytest.fixture
def photo_bytes() -> Callable[..., bytes]:
    """photo_bytes(width=320, height=240) -> JPEG bytes, for posts made through the API."""

    def make(width: int = 320, height: int = 240) -> bytes:
        buffer = io.BytesIO()
        photo_like(width, height, seed=uuid.uuid4().int % 1000).save(buffer, "JPEG", quality=85)
        return buffer.getvalue()

    return make
