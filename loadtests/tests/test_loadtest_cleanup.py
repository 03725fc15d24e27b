"""Cleanup after a crashed run: a ledger whose run is dead is enough to remove what the run made."""

from __future__ import annotations

import secrets
import subprocess
import sys
from pathlib import Path

import pytest
import requests

from devstack.background import LocalStack
from loadtests.cleanup import cleanup_ledger, leftover_ledgers
from loadtests.common.accounts import Credentials
from loadtests.common.api import API, encode_multipart
from loadtests.common.images import make_png
from loadtests.common.ledger import Ledger

pytestmark = pytest.mark.slow
PROJECT = Path(__file__).resolve().parents[2]


def dead_pid() -> int:
    process = subprocess.Popen(["true"])
    process.wait()
    return process.pid


def make_user_with_image(base: str, privacy: str) -> tuple[Credentials, str, str]:
    """Register, log in, upload an image; return (credentials, token, image id)."""
    credentials = Credentials(f"lt-crash-{secrets.token_hex(4)}", secrets.token_urlsafe(12))
    register = requests.post(
        f"{base}{API}/auth/register/",
        json={"username": credentials.username, "email": credentials.email, "password": credentials.password},
        timeout=10,
    )
    assert register.status_code == 201, register.text
    login = requests.post(
        f"{base}{API}/auth/login/",
        json={"username": credentials.username, "password": credentials.password},
        timeout=10,
    )
    token = login.json()["access_token"]
    headers = {"Authorization": f"Bearer {token}"}
    ticket = requests.post(
        f"{base}{API}/images/upload/{privacy}/generate", headers=headers, timeout=10
    ).json()
    body, content_type = encode_multipart(
        ticket["fields"], make_png(32, seed=7), ticket["fields"].get("Content-Type", "image/png")
    )
    upload = requests.post(ticket["url"], data=body, headers={"Content-Type": content_type}, timeout=10)
    assert upload.status_code in (200, 201, 204), upload.text
    confirm = requests.post(f"{base}{API}/images/upload/{ticket['id']}/confirm", headers=headers, timeout=10)
    assert confirm.status_code == 200, confirm.text
    return credentials, token, ticket["id"]


def test_cleanup_of_a_dead_runs_ledger_deletes_its_images_and_then_the_ledger(
    local_stack: LocalStack, tmp_path: Path
) -> None:
    base = local_stack.base_url
    credentials, token, image_id = make_user_with_image(base, "private")
    ledger_dir = tmp_path / "ledgers"
    ledger = Ledger(ledger_dir / "crashed.jsonl")
    ledger.run(run_id="crashed", host=base, pid=dead_pid(), started_at="2026-01-01T00:00:00+00:00")
    ledger.user(credentials.username, credentials.password, from_pool=False)
    ledger.image(image_id, credentials.username)
    ledger.user("lt-crash-never-registered", "whatever-pw", from_pool=False)  # crashed before registering
    # A live run's ledger, and one for another host, are left alone.
    Ledger(ledger_dir / "alive.jsonl").run(run_id="alive", host=base, pid=1, started_at="now")
    Ledger(ledger_dir / "other.jsonl").run(
        run_id="other", host="http://127.0.0.1:9", pid=dead_pid(), started_at="now"
    )
    assert leftover_ledgers(ledger_dir, base) == [ledger.path]

    result = subprocess.run(
        [sys.executable, "-m", "loadtests", "cleanup", "--ledger-dir", str(ledger_dir), "--host", base],
        cwd=PROJECT,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "1 image(s) deleted" in result.stdout
    assert not ledger.path.exists()
    assert (ledger_dir / "alive.jsonl").exists() and (ledger_dir / "other.jsonl").exists()
    assert "1 account(s) deleted" in result.stdout, result.stdout
    # The run's own account is gone with its images: its token no longer opens anything.
    me = requests.get(f"{base}{API}/users/me", headers={"Authorization": f"Bearer {token}"}, timeout=10)
    assert me.status_code == 401
    login = requests.post(
        f"{base}{API}/auth/login/",
        json={"username": credentials.username, "password": credentials.password},
        timeout=30,
    )
    assert login.status_code == 401


def test_a_pool_users_images_need_the_pool_password_and_the_ledger_is_kept_until_then(
    local_stack: LocalStack, tmp_path: Path
) -> None:
    base = local_stack.base_url
    credentials, _token, image_id = make_user_with_image(base, "public")
    ledger = Ledger(tmp_path / "pool.jsonl")
    ledger.run(run_id="pool", host=base, pid=dead_pid(), started_at="now")
    ledger.user(credentials.username, None, from_pool=True)
    ledger.image(image_id, credentials.username)

    without = cleanup_ledger(ledger.path)
    assert not without.ok and "set LOADTEST_USERS" in without.errors[0] and ledger.path.exists()

    with_pool = cleanup_ledger(ledger.path, {credentials.username: credentials.password})
    assert with_pool.ok and with_pool.images_deleted == 1 and with_pool.ledger_removed
    assert with_pool.accounts_left == []  # pool accounts are not ours to delete
    assert not ledger.path.exists()
