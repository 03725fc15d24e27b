"""APP_ENV is required: a process that lost it refuses to start, with a message that says what to set,
instead of falling back to local behaviour (the development signing secret, the local media gateway)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from app.core.config import SettingsError, get_settings

BACKEND = Path(__file__).resolve().parents[1]
PROJECT = BACKEND.parent

# Every command that starts a backend process (the image's CMD and its one-off commands, and the local
# stack's dispatcher), as `python -m <module>`.
ENTRY_POINTS = ["app.serve", "app.events", "app.cleanup", "app.migrate", "devstack.dispatcher"]


def test_settings_without_app_env_are_refused_with_what_to_set(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("APP_ENV", raising=False)
    with pytest.raises(SettingsError, match=r"APP_ENV is not set: set APP_ENV=local .* APP_ENV=aws"):
        get_settings()


def test_a_development_secret_is_refused_outside_local(monkeypatch: pytest.MonkeyPatch) -> None:
    from app.core.config import LOCAL_DEV_SECRET

    monkeypatch.setenv("APP_ENV", "aws")
    monkeypatch.setenv("SECRET_KEY", LOCAL_DEV_SECRET)
    with pytest.raises(SettingsError, match="not the local development secret"):
        get_settings()


@pytest.mark.parametrize("module", ENTRY_POINTS)
def test_every_entry_point_refuses_to_start_without_app_env(module: str) -> None:
    env = {k: v for k, v in os.environ.items() if k != "APP_ENV"}
    env["PYTHONPATH"] = os.pathsep.join([str(BACKEND), str(PROJECT)])
    env["DATABASE_URL"] = "postgresql://nobody@127.0.0.1:9/none"  # never reached
    result = subprocess.run(
        [sys.executable, "-m", module],
        cwd=PROJECT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode != 0
    assert "APP_ENV is not set" in result.stderr, result.stderr[-2000:]
