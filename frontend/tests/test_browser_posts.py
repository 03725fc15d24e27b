"""Posts in the browser: upload (public and private) with progress, renditions, who sees what, deleting, paging."""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import FilePayload, Page, expect

pytestmark = pytest.mark.browser

RENDITION_TIMEOUT_MS = 30_000


def share(page: Page, file: Path | FilePayload, *, private: bool = False) -> None:
    page.get_by_label("Choose a photo").set_input_files(file)
    page.get_by_label("Private" if private else "Public").check()
    page.get_by_role("button", name="Share").click()


def slow_uploads(page: Page, bytes_per_second: int) -> None:
    """Throttle the page's uploads (Chrome DevTools network emulation) so progress is observable."""
    cdp = page.context.new_cdp_session(page)
    cdp.send("Network.enable")
    cdp.send(
        "Network.emulateNetworkConditions",
        {"offline": False, "latency": 0, "downloadThroughput": -1, "uploadThroughput": bytes_per_second},
    )


def test_upload_public_and_private_then_only_the_public_one_is_seen_by_others(
    open_page: Callable[..., Page], stack: Any, photo: Callable[..., Path]
) -> None:
    owner = stack.new_user()
    page = open_page(owner)
    page.goto("/feed")
    cards = page.locator("article.card")
    mine = cards.filter(has=page.get_by_role("link", name=owner["username"], exact=True))

    slow_uploads(page, 400_000)
    share(page, photo("beach.jpg", 1200, 800))
    progress = page.get_by_role("progressbar")
    expect(progress).to_be_visible()
    expect(page.get_by_text(re.compile(r"Uploading… \d+%"))).to_be_visible()
    expect(page.get_by_role("button", name="Share")).to_be_disabled()
    expect(page.get_by_text("Shared! Your photo is now in the feed.")).to_be_visible(timeout=20_000)
    expect(progress).to_be_hidden()
    slow_uploads(page, -1)

    public_card = mine.first
    public_id = public_card.get_attribute("data-id")
    expect(public_card.get_by_role("img")).to_have_attribute(
        "alt", re.compile(rf"^Photo by {owner['username']}, posted ")
    )
    # The original shows at once; the compressor's WebP rendition replaces it without a reload.
    expect(public_card).to_have_attribute("data-state", "ready", timeout=RENDITION_TIMEOUT_MS)
    expect(public_card.get_by_role("img")).to_have_attribute(
        "src", re.compile(rf"/public/renditions/{public_id}\.webp$")
    )
    assert public_card.get_by_role("img").evaluate("img => img.complete && img.naturalWidth > 0")

    share(page, photo("diary.jpg", 800, 1000), private=True)
    expect(page.get_by_text("Saved! Only you can see this photo.")).to_be_visible()
    expect(mine).to_have_count(2)
    private_card = mine.first
    private_id = private_card.get_attribute("data-id")
    expect(private_card.get_by_text("Private", exact=True)).to_be_visible()
    expect(private_card).to_have_attribute("data-state", "ready", timeout=RENDITION_TIMEOUT_MS)
    expect(private_card.get_by_role("img")).to_have_attribute(
        "src", re.compile(rf"/private/renditions/{private_id}\.webp\?")
    )

    # Both stay after a reload, newest first, on the feed and on my page.
    for path in ("/feed", f"/feed/by_user/{owner['id']}"):
        page.goto(path)
        expect(mine).to_have_count(2)
        assert [card.get_attribute("data-id") for card in mine.all()] == [private_id, public_id]
        expect(page.locator(f'article[data-id="{private_id}"] img')).to_have_js_property("complete", True)

    # Someone else sees the public post, not the private one, and cannot delete it.
    other = open_page(stack.new_user())
    other.goto("/feed")
    expect(other.locator(f'article[data-id="{public_id}"]')).to_be_visible()
    expect(other.locator(f'article[data-id="{private_id}"]')).to_have_count(0)
    other.get_by_role("link", name=owner["username"], exact=True).first.click()
    expect(other).to_have_url(re.compile(rf"/feed/by_user/{owner['id']}$"))
    expect(other.get_by_role("heading", level=1)).to_have_text(owner["username"])
    expect(other.locator("article.card")).to_have_count(1)
    expect(other.locator(f'article[data-id="{public_id}"]')).to_be_visible()
    expect(other.get_by_role("button", name="Delete post")).to_have_count(0)


def test_delete_my_post(
    open_page: Callable[..., Page], stack: Any, photo_bytes: Callable[..., bytes]
) -> None:
    owner = stack.new_user()
    kept = stack.post_image(owner, photo_bytes())
    doomed = stack.post_image(owner, photo_bytes(), public=False)
    page = open_page(owner)
    page.goto(f"/feed/by_user/{owner['id']}")
    expect(page.get_by_role("heading", name="My posts")).to_be_visible()
    card = page.locator(f'article[data-id="{doomed}"]')

    card.get_by_role("button", name="Delete post").click()
    expect(card.get_by_text("Delete this post for good?")).to_be_visible()
    card.get_by_role("button", name="Keep it").click()
    expect(card.get_by_role("button", name="Delete post")).to_be_focused()

    card.get_by_role("button", name="Delete post").click()
    card.get_by_role("button", name="Yes, delete").click()
    expect(page.get_by_text("Post deleted.")).to_be_visible()
    expect(card).to_have_count(0)
    expect(page.locator(f'article[data-id="{kept}"]')).to_be_visible()

    page.reload()
    expect(page.locator(f'article[data-id="{kept}"]')).to_be_visible()
    expect(page.locator(f'article[data-id="{doomed}"]')).to_have_count(0)


def test_wrong_files_are_refused_before_sending(
    open_page: Callable[..., Page], stack: Any, tmp_path: Path, photo: Callable[..., Path]
) -> None:
    page = open_page(stack.new_user())
    requests: list[str] = []
    page.on("request", lambda request: requests.append(request.url))
    page.goto("/feed")
    picker = page.get_by_label("Choose a photo")

    notes = tmp_path / "notes.txt"
    notes.write_text("not a photo")
    picker.set_input_files(notes)
    expect(page.get_by_role("alert")).to_contain_text(
        "“notes.txt” isn't a photo Yoctogram can show. Choose a JPEG"
    )

    huge = tmp_path / "huge.jpg"
    huge.write_bytes(photo().read_bytes().ljust(10 * 1024 * 1024 + 1, b"\0"))
    picker.set_input_files(huge)
    expect(page.get_by_role("alert")).to_contain_text("“huge.jpg” is 10,485,761 bytes, over the 10 MB limit")
    page.get_by_role("button", name="Share").click()
    expect(page.get_by_role("alert")).to_contain_text("over the 10 MB limit")
    assert [url for url in requests if "/images/upload/" in url] == []


def test_a_file_the_compressor_refuses_says_so(open_page: Callable[..., Page], stack: Any) -> None:
    page = open_page(stack.new_user())
    page.goto("/feed")
    fake: FilePayload = {
        "name": "fake.png",
        "mimeType": "image/png",
        "buffer": b"\x89PNG but not really an image" * 40,
    }
    share(page, fake)
    expect(page.get_by_text("Shared!")).to_be_visible()
    card = page.locator("article.card").first
    expect(card.get_by_role("alert")).to_contain_text(
        "Yoctogram couldn't use this file.", timeout=RENDITION_TIMEOUT_MS
    )
    expect(card).to_have_attribute("data-state", "rejected")


def test_the_feed_pages_through_the_cursor_as_i_scroll(
    open_page: Callable[..., Page], stack: Any, photo_bytes: Callable[..., bytes]
) -> None:
    creator = stack.new_user()
    ids = [stack.post_image(creator, photo_bytes(160, 120)) for _ in range(15)]
    stack.wait_until_ready(ids)
    requests: list[str] = []
    page = open_page()
    page.on("request", lambda request: requests.append(request.url))
    page.goto(f"/feed/by_user/{creator['id']}")
    cards = page.locator("article.card")
    expect(cards).to_have_count(12)  # one page
    page.get_by_role("button", name="Load more posts").scroll_into_view_if_needed()
    expect(cards).to_have_count(15)
    expect(page.get_by_text("You're all caught up.")).to_be_visible()
    assert [cards.nth(i).get_attribute("data-id") for i in range(15)] == ids[::-1]  # newest first
    feed_calls = [url for url in requests if "/api/v1/feed/" in url]
    assert len(feed_calls) == 2 and "cursor=" in feed_calls[1]
    assert [url for url in requests if "/api/v1/images/" in url] == []  # the feed carries what cards need
