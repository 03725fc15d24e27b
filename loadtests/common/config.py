"""Configuration of one load-test run, read from the environment by the Locust entry point.

`python -m loadtests run` sets these variables for the Locust subprocess (and its worker processes); a
worker started by hand on another machine needs the same ones (see loadtests/README.md).
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

RUN_ID_PATTERN = re.compile(r"^[0-9A-Za-z][0-9A-Za-z-]{0,15}$")
PROFILES = ("local", "staging")


class ConfigError(ValueError):
    """A setting is missing or malformed; the message says which and what to do."""


def _float(env: Mapping[str, str], name: str, default: float) -> float:
    raw = env.get(name, "")
    if not raw:
        return default
    try:
        value = float(raw)
    except ValueError:
        raise ConfigError(f"{name}={raw!r} is not a number.") from None
    if value <= 0:
        raise ConfigError(f"{name}={raw!r} must be positive.")
    return value


@dataclass(frozen=True)
class LoadTestConfig:
    """What the personas, the shape and the threshold listener need to know about this run."""

    run_id: str
    profile: str = "local"
    shape: str = "smoke"
    target: str = "local"
    """The environment the run targets (`local`, `staging`, ...): a baseline is only compared with runs of
    the same target, profile and shape."""
    run_time_s: float | None = None
    peak_users: int | None = None
    run_dir: Path | None = None
    ledger_path: Path | None = None
    users_file: Path | None = None
    threshold_overrides: tuple[dict[str, object], ...] = ()
    rendition_timeout_s: float = 60.0
    poll_interval_s: float = 0.5
    image_edge_px: int = 320

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> LoadTestConfig:
        """Build the configuration from `LOADTEST_*` variables; raise ConfigError when one is wrong."""
        run_id = env.get("LOADTEST_RUN_ID", "")
        if not RUN_ID_PATTERN.match(run_id):
            raise ConfigError(
                f"LOADTEST_RUN_ID={run_id!r} is missing or malformed (1-16 letters, digits, '-'). "
                "Start runs with `python -m loadtests run`, which sets it."
            )
        profile = env.get("LOADTEST_PROFILE", "local")
        if profile not in PROFILES:
            raise ConfigError(f"LOADTEST_PROFILE={profile!r}: choose one of {', '.join(PROFILES)}.")
        overrides_raw = env.get("LOADTEST_THRESHOLDS", "")
        try:
            overrides = tuple(json.loads(overrides_raw)) if overrides_raw else ()
        except json.JSONDecodeError as error:
            raise ConfigError(f"LOADTEST_THRESHOLDS is not JSON: {error}") from None
        run_time = env.get("LOADTEST_RUN_TIME", "")
        users = env.get("LOADTEST_PEAK_USERS", "")
        return cls(
            run_id=run_id,
            profile=profile,
            shape=env.get("LOADTEST_SHAPE", "smoke"),
            target=env.get("LOADTEST_TARGET") or "local",
            run_time_s=_float(env, "LOADTEST_RUN_TIME", 1.0) if run_time else None,
            peak_users=int(_float(env, "LOADTEST_PEAK_USERS", 1.0)) if users else None,
            run_dir=Path(env["LOADTEST_RUN_DIR"]) if env.get("LOADTEST_RUN_DIR") else None,
            ledger_path=Path(env["LOADTEST_LEDGER"]) if env.get("LOADTEST_LEDGER") else None,
            users_file=Path(env["LOADTEST_USERS"]) if env.get("LOADTEST_USERS") else None,
            threshold_overrides=overrides,
            rendition_timeout_s=_float(env, "LOADTEST_RENDITION_TIMEOUT", 60.0),
            poll_interval_s=_float(env, "LOADTEST_POLL_INTERVAL", 0.5),
            image_edge_px=int(_float(env, "LOADTEST_IMAGE_EDGE", 320)),
        )
