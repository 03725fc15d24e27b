"""Accounts in the browser: sign up, log out, log in by username or email, a session that survives reloads."""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable
from typing import Any

import pytest
from playwright.sync_api import Page, expect

pytestmark = pytest.mark.browser

PASSWORD = "a long enough password"


def test_sign_up_then_log_out_and_in_again_and_the_session_survives_reloads(
    open_page: Callable[..., Page],
) -> None:
    page = open_page()
    name = f"u{uuid.uuid4().hex[:10]}"
    page.goto("/signup")
    page.get_by_label("Username").fill(name)
    page.get_by_label("Email").fill(f"{name}@example.com")
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Create account").click()

    expect(page).to_have_url(re.compile(r"/feed$"))
    expect(page.get_by_role("status").filter(has_text=f"Welcome to Yoctogram, {name}")).to_be_visible()
    expect(page.get_by_role("heading", name="Share a photo")).to_be_visible()
    page.reload()
    expect(page.get_by_text(f"@{name}")).to_be_visible()

    token = page.evaluate("localStorage.getItem('yoctogram.token')")
    assert page.request.get("/api/v1/users/me", headers={"Authorization": f"Bearer {token}"}).ok
    page.get_by_role("button", name="Log out").click()
    expect(page).to_have_url(re.compile(r"/login$"))
    expect(page.get_by_text("You're logged out. See you soon!")).to_be_visible()
    # Logged out on the server too: a copy of the token is worthless now.
    after = page.request.get("/api/v1/users/me", headers={"Authorization": f"Bearer {token}"})
    assert after.status == 401
    page.reload()
    expect(page.get_by_role("link", name="Log in")).to_be_visible()

    page.get_by_label("Username or email").fill(name)
    page.get_by_label("Password").fill("not the password")
    page.get_by_role("button", name="Log in").click()
    expect(page.get_by_role("alert")).to_contain_text("Wrong username, email or password")
    expect(page).to_have_url(re.compile(r"/login$"))

    page.get_by_label("Username or email").fill(f"{name}@example.com")
    page.get_by_label("Password").fill(PASSWORD)
    page.keyboard.press("Enter")  # the form submits from the keyboard
    expect(page).to_have_url(re.compile(r"/feed$"))
    expect(page.get_by_text(f"Welcome back, {name}")).to_be_visible()
    page.reload()
    expect(page.get_by_role("button", name="Log out")).to_be_visible()
    expect(page.get_by_role("link", name="My posts")).to_be_visible()


def test_sign_up_says_what_to_fix(open_page: Callable[..., Page], stack: Any) -> None:
    taken = stack.new_user()
    page = open_page()
    page.goto("/signup")
    page.get_by_role("button", name="Create account").click()
    expect(page.get_by_text("Use at least 8 characters.")).to_be_visible()
    expect(page.get_by_label("Username")).to_be_focused()
    expect(page.get_by_label("Username")).to_have_attribute("aria-invalid", "true")

    page.get_by_label("Username").fill(taken["username"])
    page.get_by_label("Email").fill(f"other-{taken['email']}")
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Create account").click()
    expect(page.get_by_role("alert")).to_contain_text("already registered")
    expect(page).to_have_url(re.compile(r"/signup$"))


def test_an_ended_session_leads_back_to_the_login_and_then_where_i_was(
    open_page: Callable[..., Page], stack: Any
) -> None:
    user = stack.new_user()
    page = open_page({**user, "token": "expired.or.forged"})
    page.goto(f"/feed/by_user/{user['id']}")
    expect(page).to_have_url(re.compile(r"/login\?next="))
    expect(page.get_by_text("Your session has ended. Log in again")).to_be_visible()
    page.get_by_label("Username or email").fill(user["username"])
    page.get_by_label("Password").fill(user["password"])
    page.get_by_role("button", name="Log in").click()
    expect(page).to_have_url(re.compile(rf"/feed/by_user/{user['id']}$"))
    expect(page.get_by_role("heading", name="My posts")).to_be_visible()


def test_too_many_wrong_passwords_say_when_to_try_again(open_page: Callable[..., Page], stack: Any) -> None:
    user = stack.new_user()
    page = open_page()
    page.goto("/login")
    for _ in range(10):  # LOGIN_MAX_ATTEMPTS_PER_ACCOUNT's default
        wrong = {"username": user["username"], "password": "not the password"}
        assert page.request.post("/api/v1/auth/login/", data=wrong).status == 401
    page.get_by_label("Username or email").fill(user["username"])
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()
    expect(page.get_by_role("alert")).to_contain_text(
        re.compile(r"Too many attempts right now\. Try again in about 1[45] minutes\.")
    )
    expect(page).to_have_url(re.compile(r"/login$"))
