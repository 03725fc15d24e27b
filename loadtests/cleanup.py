"""Remove what a run created on the target: its images, and its accounts where the API allows it.

Works from the run's ledger (common/ledger.py), so it also cleans up after a run that crashed or was
killed: `python -m loadtests cleanup` handles every leftover ledger whose run is no longer alive. A
ledger is deleted once everything it lists is gone; otherwise it stays for the next attempt.

Accounts: cleanup deletes a run's own accounts with `DELETE /users/me` (never a pool account). Against
a server that does not offer it (404/405) it lists the accounts it had to leave; their names all start
with `lt-<run id>-`, so they can be found and removed on the server side.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote

import requests

from loadtests.common.accounts import Credentials
from loadtests.common.api import API
from loadtests.common.ledger import read_ledger

TIMEOUT = 15.0


@dataclass
class CleanupResult:
    ledger: str
    run_id: str | None
    host: str | None
    users: int = 0
    images_deleted: int = 0
    images_already_gone: int = 0
    accounts_deleted: int = 0
    accounts_left: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    ledger_removed: bool = False

    @property
    def ok(self) -> bool:
        return not self.errors

    def as_dict(self) -> dict[str, Any]:
        return {**asdict(self), "ok": self.ok}

    def describe(self) -> str:
        text = (
            f"cleanup of run {self.run_id} on {self.host}: {self.images_deleted} image(s) deleted, "
            f"{self.images_already_gone} already gone, {self.accounts_deleted} account(s) deleted"
        )
        if self.accounts_left:
            text += (
                f"; {len(self.accounts_left)} account(s) left (the server offers no account deletion; "
                f"their names start with lt-{self.run_id}-)"
            )
        if self.errors:
            text += f"; {len(self.errors)} problem(s), ledger kept for a retry: " + "; ".join(self.errors[:5])
        return text


def _login(session: requests.Session, host: str, credentials: Credentials) -> tuple[str | None, int]:
    response = session.post(
        f"{host}{API}/auth/login/",
        json={"username": credentials.username, "password": credentials.password},
        timeout=TIMEOUT,
    )
    if response.status_code != 200:
        return None, response.status_code
    return str(response.json()["access_token"]), 200


def _own_image_ids(session: requests.Session, host: str, user_id: str) -> list[str]:
    """Every image the API lists for this account (the owner sees its private ones too)."""
    ids: list[str] = []
    cursor: str | None = None
    for _ in range(1000):  # a bound, not an expectation: 100 000 images
        url = f"{host}{API}/feed/by_user/{user_id}?limit=100"
        if cursor:
            url += f"&cursor={quote(cursor)}"
        response = session.get(url, timeout=TIMEOUT)
        response.raise_for_status()
        body = response.json()
        ids.extend(str(item["id"]) for item in body["results"])
        cursor = body.get("next_cursor")
        if not cursor:
            break
    return ids


def cleanup_ledger(
    path: Path, pool: Mapping[str, str] | None = None, session: requests.Session | None = None
) -> CleanupResult:
    """Delete the images (and accounts, if possible) a ledger lists; remove the ledger when all is gone."""
    contents = read_ledger(path)
    result = CleanupResult(ledger=str(path), run_id=contents.run_id, host=contents.host)
    host = (contents.host or "").rstrip("/")
    if not host.startswith(("http://", "https://")):
        result.errors.append(f"the ledger names no http(s) host ({contents.host!r})")
        return result
    http = session or requests.Session()
    for username, record in contents.users.items():
        result.users += 1
        recorded_images = contents.images.get(username, [])
        password = record.get("password") or (pool or {}).get(username)
        if not password:
            if recorded_images:
                result.errors.append(f"no password for pool user {username} (set LOADTEST_USERS)")
            continue
        try:
            _cleanup_user(
                http, host, Credentials(username, password, bool(record.get("pool"))), recorded_images, result
            )
        except (requests.RequestException, ValueError, KeyError) as error:
            result.errors.append(f"{username}: {error}")
    if result.ok:
        path.unlink(missing_ok=True)
        result.ledger_removed = True
    return result


def _cleanup_user(
    http: requests.Session, host: str, credentials: Credentials, recorded: list[str], result: CleanupResult
) -> None:
    token, status = _login(http, host, credentials)
    if token is None:
        if status == 401 and not recorded and not credentials.from_pool:
            return  # the run stopped before this account was registered
        result.errors.append(f"{credentials.username}: login answered HTTP {status}")
        return
    http.headers["Authorization"] = f"Bearer {token}"
    try:
        me = http.get(f"{host}{API}/users/me", timeout=TIMEOUT)
        me.raise_for_status()
        ids = list(recorded)
        if not credentials.from_pool:  # every image of a run's own account belongs to the run
            ids += [i for i in _own_image_ids(http, host, str(me.json()["id"])) if i not in ids]
        for image_id in ids:
            response = http.delete(f"{host}{API}/images/{image_id}", timeout=TIMEOUT)
            if response.status_code in (200, 204):
                result.images_deleted += 1
            elif response.status_code == 404:
                result.images_already_gone += 1
            else:
                result.errors.append(f"DELETE /images/{image_id} answered HTTP {response.status_code}")
        if not credentials.from_pool:
            response = http.delete(f"{host}{API}/users/me", timeout=TIMEOUT)
            if response.status_code in (200, 204):
                result.accounts_deleted += 1
            elif response.status_code in (404, 405):
                result.accounts_left.append(credentials.username)
            else:
                result.errors.append(f"DELETE /users/me answered HTTP {response.status_code}")
    finally:
        http.headers.pop("Authorization", None)


def _alive(pid: int | None) -> bool:
    if not pid:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def leftover_ledgers(ledger_dir: Path, host: str | None = None) -> list[Path]:
    """Ledgers of runs whose process is gone (crashed or killed), optionally only for one host."""
    found = []
    for path in sorted(ledger_dir.glob("*.jsonl")):
        with contextlib.suppress(OSError):
            contents = read_ledger(path)
            if _alive(contents.pid):
                continue
            if host and (contents.host or "").rstrip("/") != host.rstrip("/"):
                continue
            found.append(path)
    return found
