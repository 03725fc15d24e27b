"""The run's ledger: every account and image a run creates, so that cleanup finds them, even after a crash.

One JSON object per line, appended with one `write` on an O_APPEND descriptor, so the processes of a
distributed run can share the file. It holds the passwords of the run's fresh accounts, so it is created
with mode 0600 and lives outside the report folder (reports are published; ledgers never are).
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any


class Ledger:
    def __init__(self, path: Path) -> None:
        self.path = path

    def append(self, record: dict[str, Any]) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        line = (json.dumps(record, separators=(",", ":")) + "\n").encode()
        fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        try:
            os.write(fd, line)
        finally:
            os.close(fd)

    def run(self, *, run_id: str, host: str, pid: int, started_at: str) -> None:
        self.append({"kind": "run", "run_id": run_id, "host": host, "pid": pid, "started_at": started_at})

    def user(self, username: str, password: str | None, *, from_pool: bool) -> None:
        """Record an account; pool accounts are recorded without their password (the pool file has it)."""
        self.append({"kind": "user", "username": username, "password": password, "pool": from_pool})

    def image(self, image_id: str, username: str) -> None:
        self.append({"kind": "image", "id": image_id, "username": username})


@dataclass
class LedgerContents:
    """What a ledger says a run created."""

    run_id: str | None = None
    host: str | None = None
    pid: int | None = None
    users: dict[str, dict[str, Any]] = field(default_factory=dict)
    images: dict[str, list[str]] = field(default_factory=dict)  # username -> image ids, in order
    unreadable_lines: int = 0


def read_ledger(path: Path) -> LedgerContents:
    """Parse a ledger; a torn last line (a crash mid-write) is counted, not fatal."""
    contents = LedgerContents()
    for line in path.read_text(encoding="utf-8").splitlines():
        try:
            record = json.loads(line)
        except json.JSONDecodeError:
            contents.unreadable_lines += 1
            continue
        kind = record.get("kind")
        if kind == "run":
            contents.run_id = record.get("run_id")
            contents.host = record.get("host")
            contents.pid = record.get("pid")
        elif kind == "user":
            contents.users.setdefault(record["username"], record)
        elif kind == "image":
            ids = contents.images.setdefault(record["username"], [])
            if record["id"] not in ids:
                ids.append(record["id"])
    return contents
