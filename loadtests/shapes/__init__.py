"""Load shapes as pure data: how many users, spawned how fast, at each second of a run.

The Locust shape class in `locustfile.py` only asks `Shape.tick(elapsed)`; every shape ends by itself
(`tick` returns None after its duration), so no run can go on forever.

- `smoke`: short and light, for CI and the local stack: ramp to the peak within ~5 s and hold.
- `step`: the peak reached in equal steps, each long enough (6 min by default) for ECS target tracking to
  see three one-minute datapoints over target, start tasks and let them settle; for staging.
- `soak`: a steady load for an hour, to find leaks and slow drifts (connections, memory, queue backlog).
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass


@dataclass(frozen=True)
class Stage:
    """Until `until_s` seconds into the run, aim for `users` users, spawning `spawn_rate` per second."""

    until_s: float
    users: int
    spawn_rate: float


@dataclass(frozen=True)
class Shape:
    name: str
    stages: tuple[Stage, ...]

    @property
    def duration_s(self) -> float:
        return self.stages[-1].until_s

    @property
    def peak_users(self) -> int:
        return max(stage.users for stage in self.stages)

    def tick(self, elapsed_s: float) -> tuple[int, float] | None:
        """(users, spawn rate) wanted at `elapsed_s` seconds, or None once the run is over."""
        for stage in self.stages:
            if elapsed_s < stage.until_s:
                return stage.users, stage.spawn_rate
        return None


@dataclass(frozen=True)
class ShapeDefaults:
    run_time_s: float
    users: int


DEFAULTS: dict[str, ShapeDefaults] = {
    "smoke": ShapeDefaults(run_time_s=60, users=10),
    "step": ShapeDefaults(run_time_s=30 * 60, users=200),
    "soak": ShapeDefaults(run_time_s=60 * 60, users=50),
}
STEP_COUNT = 5


def _rate(users: float, seconds: float) -> float:
    return max(1.0, math.ceil(users / seconds))


def smoke(run_time_s: float, users: int) -> Shape:
    return Shape("smoke", (Stage(run_time_s, users, _rate(users, 5)),))


def step(run_time_s: float, users: int, steps: int = STEP_COUNT) -> Shape:
    """`steps` equal steps up to `users`, each `run_time_s / steps` long; each step ramps within ~10 s."""
    steps = max(1, min(steps, users))
    length = run_time_s / steps
    return Shape(
        "step",
        tuple(
            Stage(length * k, round(users * k / steps), _rate(users / steps, 10)) for k in range(1, steps + 1)
        ),
    )


def soak(run_time_s: float, users: int) -> Shape:
    """Ramp over a minute (or a tenth of a short run), then hold."""
    ramp = min(60.0, run_time_s / 10)
    return Shape("soak", (Stage(run_time_s, users, _rate(users, ramp)),))


BUILDERS = {"smoke": smoke, "step": step, "soak": soak}


def build(name: str, run_time_s: float | None = None, users: int | None = None) -> Shape:
    """The named shape, with its defaults for what is not given."""
    if name not in BUILDERS:
        raise ValueError(f"unknown shape {name!r}: choose one of {', '.join(BUILDERS)}")
    defaults = DEFAULTS[name]
    run_time = run_time_s if run_time_s is not None else defaults.run_time_s
    peak = users if users is not None else defaults.users
    if run_time <= 0 or peak <= 0:
        raise ValueError("run time and users must be positive")
    return BUILDERS[name](run_time, peak)


_DURATION = re.compile(r"^(?:(\d+)h)?(?:(\d+)m)?(?:(\d+)s?)?$")


def parse_duration(text: str) -> float:
    """Seconds in `90`, `90s`, `5m`, `1h30m`, `1h2m3s` (Locust's --run-time syntax)."""
    match = _DURATION.match(text.strip().lower())
    if not text.strip() or not match or not any(match.groups()):
        raise ValueError(f"{text!r} is not a duration like 90, 90s, 5m or 1h30m")
    hours, minutes, seconds = (int(part or 0) for part in match.groups())
    total = hours * 3600 + minutes * 60 + seconds
    if total <= 0:
        raise ValueError(f"{text!r} must be longer than zero")
    return float(total)
