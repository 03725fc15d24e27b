"""The app as a whole: deep links and reloads, the server's JSON 404s, failures people can act on, phones,
keyboards and screen readers."""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
from playwright.sync_api import Page, expect

pytestmark = pytest.mark.browser

# Every input has a label; every image has alt text; nothing is wider than the screen.
AUDIT = """() => ({
  unlabelled: [...document.querySelectorAll("input, select, textarea")]
    .filter((el) => !el.labels?.length && !el.getAttribute("aria-label")).map((el) => el.outerHTML),
  withoutAlt: [...document.querySelectorAll("img")].filter((img) => !img.hasAttribute("alt")).map((img) => img.src),
  overflow: document.documentElement.scrollWidth - window.innerWidth,
})"""


def audit(page: Page) -> None:
    found = page.evaluate(AUDIT)
    assert found == {"unlabelled": [], "withoutAlt": [], "overflow": 0}


def test_client_routes_load_when_opened_directly_and_unknown_api_routes_stay_json(
    open_page: Callable[..., Page], stack: Any, photo_bytes: Callable[..., bytes]
) -> None:
    creator = stack.new_user()
    post = stack.post_image(creator, photo_bytes())
    page = open_page()

    page.goto(f"/feed/by_user/{creator['id']}")
    expect(page.get_by_role("heading", level=1)).to_have_text(creator["username"])
    expect(page.locator(f'article[data-id="{post}"]')).to_be_visible()
    page.reload()
    expect(page.get_by_role("heading", level=1)).to_have_text(creator["username"])
    expect(page).to_have_title(f"{creator['username']} · Yoctogram")

    page.goto("/")
    expect(page).to_have_url(re.compile(r"/feed$"))
    expect(page.get_by_role("heading", name="Latest posts")).to_be_visible()
    page.get_by_role("link", name="Sign up").first.click()
    expect(page.get_by_role("heading", name="Create your account")).to_be_focused()
    page.go_back()
    expect(page.get_by_role("heading", name="Latest posts")).to_be_visible()

    page.goto("/no/such/page")
    expect(page.get_by_role("heading", name="Page not found")).to_be_visible()
    page.goto("/feed/by_user/00000000-0000-4000-8000-000000000000")
    expect(page.get_by_text("There is no such person on Yoctogram.")).to_be_visible()

    missing = httpx.get(f"{stack.url}/api/v1/no/such/route")
    assert missing.status_code == 404
    assert missing.json()["success"] is False


def test_network_failures_say_what_to_do(
    open_page: Callable[..., Page], stack: Any, photo: Callable[..., Path]
) -> None:
    page = open_page(stack.new_user())
    page.goto("/feed")
    expect(page.get_by_role("heading", name="Share a photo")).to_be_visible()

    composer = page.get_by_role("form", name="Share a photo")
    page.context.set_offline(True)
    expect(page.get_by_text("You're offline.")).to_be_visible()
    page.get_by_label("Choose a photo").set_input_files(photo())
    page.get_by_role("button", name="Share").click()
    expect(composer.get_by_role("alert")).to_contain_text(
        "Can't reach Yoctogram. Check your internet connection"
    )
    page.context.set_offline(False)
    expect(page.get_by_text("You're offline.")).to_be_hidden()

    # Storage down while the API is up: the upload itself fails.
    page.route(lambda url: not url.startswith(stack.url), lambda route: route.abort("connectionreset"))
    page.get_by_role("button", name="Share").click()
    expect(composer.get_by_role("alert")).to_contain_text(
        "The upload was interrupted. Check your internet connection"
    )
    page.unroute_all()

    # The API failing: the feed says so and offers a retry that works once it is back.
    page.route(
        "**/api/v1/feed/**", lambda route: route.fulfill(status=503, json={"success": False, "detail": "x"})
    )
    page.goto("/feed")
    feed_error = page.get_by_role("alert").filter(has_text="Couldn't load posts.")
    expect(feed_error).to_contain_text("Yoctogram is having trouble (error 503). Try again in a minute.")
    page.unroute_all()
    feed_error.get_by_role("button", name="Try again").click()
    expect(feed_error).to_have_count(0)
    expect(page.get_by_text(re.compile(r"You're all caught up\.|No posts yet\."))).to_be_visible()


def test_phone_width_keyboard_and_screen_reader_basics(
    open_page: Callable[..., Page], stack: Any, photo_bytes: Callable[..., bytes]
) -> None:
    user = stack.new_user()
    stack.post_image(user, photo_bytes(1600, 900))
    page = open_page(width=390, height=844)
    page.goto("/login")
    audit(page)

    # Keyboard only: the skip link, then the form in tab order, submitted with Enter.
    page.keyboard.press("Tab")
    expect(page.get_by_role("link", name="Skip to content")).to_be_focused()
    page.get_by_label("Username or email").focus()
    page.keyboard.type(user["username"])
    page.keyboard.press("Tab")
    expect(page.get_by_label("Password")).to_be_focused()
    page.keyboard.type(user["password"])
    page.keyboard.press("Enter")
    expect(page).to_have_url(re.compile(r"/feed$"))
    expect(page.locator("article.card").first).to_be_visible()
    page.locator("article.card img").first.evaluate("img => img.decode()")
    audit(page)

    page.get_by_role("link", name="My posts").click()
    expect(page.get_by_role("heading", name="My posts")).to_be_focused()
    expect(page.get_by_role("feed", name="My posts").get_by_role("article")).to_have_count(1)
    audit(page)
