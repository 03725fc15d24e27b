"""How hard a load test can hit the target's own protections, worst case, from its plan alone.

The target throttles logins (backend/app/services/login_throttle.py: attempts per account name, and per
client address, in a fixed window) and, in AWS, its WAF answers 429 past a number of requests per client IP
in 5 minutes (stages/components/web_acl.py: `/api/v1/auth/*`, and all of `/api/*`). Every load generator
of a run shares one address: the processes of one machine (in staging, one CodeBuild build). A run that
tripped them would measure the protections, not the release; so `python -m loadtests run` checks its plan
against the target's limits before it starts (`check`), and a test proves that every shape and profile,
as configured, stays inside the limits that the backend and the stages actually configure
(tests/test_loadtest_protections.py reads both).

The bounds are worst cases, not estimates:

- every login attempt counts as if it failed (a successful login gives its slot back, so in fact only
  failed and concurrent ones count), all of a run's logins and its cleanup's (which logs in as each
  account once more) fall into one window, and the simulated users that sign in are their weights'
  share of the users spawned, plus one (Locust distributes users by weight within one of the exact
  share; the test checks this against Locust's own dispatcher);
- requests per second assume a target that answers in no time and the shortest wait of each persona
  (loadtests/common/personas.py), and cleanup's requests (a login, `/users/me`, a page of its images, a
  delete per image and the account's deletion) all in the same 5 minutes.

The limits here mirror the backend's defaults and `stages/config.py` (the test checks that they agree),
because the load-test step does not install the CDK to read them.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

from loadtests import shapes
from loadtests.common.personas import PERSONAS, Persona

CLEANUP_API_PER_ACCOUNT = 4
"""Cleanup's requests per account besides its images: login, `/users/me`, a page of images, the deletion."""
CLEANUP_API_PER_IMAGE = 2
"""A delete per image, and a share of the pages that list them (100 a page): 2 is more than both."""


@dataclass(frozen=True)
class Limits:
    """What the target refuses past, per client address (None: no such limit)."""

    login_window_s: int = 900
    login_per_account: int = 10
    login_per_address: int = 300
    waf_window_s: int = 300
    waf_auth: int | None = None
    """Requests to `/api/v1/auth/*` per IP per WAF window."""
    waf_api: int | None = None
    """Requests to `/api/*` per IP per WAF window."""


APP_DEFAULTS = Limits()
"""The backend's defaults (LOGIN_THROTTLE_WINDOW_SECONDS, LOGIN_MAX_ATTEMPTS_PER_ACCOUNT and _PER_ADDRESS),
which the local stack and both stages run with; no WAF in front of the local stack."""
TARGETS: dict[str, Limits] = {
    "local": APP_DEFAULTS,
    "staging": Limits(waf_auth=2000, waf_api=250_000),
}
"""Per target: the mirror of stages/config.py's STAGING WAF limits (prod is never load-tested)."""


@dataclass(frozen=True)
class Plan:
    """What a run does that the protections see."""

    shape: shapes.Shape
    pool_size: int | None = None
    """Accounts in the users file (LOADTEST_USERS); None: every signing-in user registers its own."""
    poll_interval_s: float = 0.5
    personas: Sequence[Persona] = PERSONAS


@dataclass(frozen=True)
class Check:
    name: str
    worst: int
    limit: int | None
    what: str
    """What was counted, for the console and run.json."""

    @property
    def inside(self) -> bool:
        return self.limit is None or self.worst <= self.limit

    def describe(self) -> str:
        limit = "no limit" if self.limit is None else f"limit {self.limit:,}"
        mark = "ok" if self.inside else "OVER"
        return f"{mark:<4} {self.name}: worst case {self.worst:,} ({limit}): {self.what}"


def spawned_in_window(shape: shapes.Shape, window_s: float) -> int:
    """The most users Locust can start within any `window_s` seconds of the shape (at its spawn rates)."""
    started, running = [0.0], 0.0
    second = 0
    while (wanted := shape.tick(second)) is not None:
        users, rate = wanted
        step = min(rate, users - running) if users > running else users - running
        running += step
        started.append(started[-1] + max(0.0, step))
        second += 1
    width = int(window_s)
    best = max((started[i] - started[max(0, i - width)] for i in range(len(started))), default=0.0)
    return math.ceil(best - 1e-9)


def share(users: int, persona: Persona, personas: Sequence[Persona]) -> int:
    """Users of `persona` among `users`: their weights' share, plus one (Locust's rounding)."""
    if users <= 0:
        return 0
    total = sum(p.weight for p in personas)
    return min(users, math.ceil(users * persona.weight / total) + 1)


def signing_in(users: int, personas: Sequence[Persona]) -> int:
    return min(users, sum(share(users, p, personas) for p in personas if p.signs_in))


def evaluate(plan: Plan, limits: Limits) -> list[Check]:
    """Every protection of `limits`, with the plan's worst case against it."""
    shape, personas = plan.shape, plan.personas
    peak = shape.peak_users
    accounts = signing_in(peak, personas)  # the run's accounts, and cleanup's logins
    pooled = plan.pool_size is not None
    if pooled:
        accounts = min(accounts, plan.pool_size or 0)
    login_window = signing_in(spawned_in_window(shape, limits.login_window_s), personas)
    logins = min(signing_in(peak, personas), login_window) + accounts
    checks = [
        Check(
            "login attempts per address",
            logins,
            limits.login_per_address,
            f"{logins - accounts} sign-ins in {limits.login_window_s} s and {accounts} cleanup logins, "
            "counted as if every one failed",
        )
    ]
    if pooled:
        per_account = math.ceil(signing_in(peak, personas) / max(plan.pool_size or 1, 1)) + 1
        what = (
            f"{signing_in(peak, personas)} signing-in users over {plan.pool_size} pool accounts, and cleanup"
        )
    else:
        per_account, what = 2, "each signing-in user registers its own account: its sign-in and cleanup's"
    checks.append(Check("login attempts per account", per_account, limits.login_per_account, what))

    waf_spawned = spawned_in_window(shape, limits.waf_window_s)
    starting = {p.name: share(waf_spawned, p, personas) for p in personas}
    auth_per_start = {p.name: (1 if pooled else p.start_auth) for p in personas if p.signs_in}
    auth = sum(starting[name] * n for name, n in auth_per_start.items()) + accounts
    checks.append(
        Check(
            "WAF requests to /api/v1/auth/ per IP",
            auth,
            limits.waf_auth,
            f"sign-ups and sign-ins of {waf_spawned} users started in {limits.waf_window_s} s, and cleanup",
        )
    )
    running = sum(share(peak, p, personas) * p.max_api_per_second(plan.poll_interval_s) for p in personas)
    starts = sum(starting[p.name] * p.start_api for p in personas)
    images = sum(share(peak, p, personas) * p.max_uploads(shape.duration_s) for p in personas)
    cleanup = accounts * CLEANUP_API_PER_ACCOUNT + images * CLEANUP_API_PER_IMAGE
    api = math.ceil(running * limits.waf_window_s) + starts + cleanup
    checks.append(
        Check(
            "WAF requests to /api/ per IP",
            api,
            limits.waf_api,
            f"{peak} users at their fastest ({running:,.0f} req/s with an instant target) for "
            f"{limits.waf_window_s} s, {starts} at their start, and {cleanup:,} of cleanup",
        )
    )
    return checks


def limits_for(target: str) -> Limits:
    """The target's limits as far as this code knows them: another host gets the backend's defaults."""
    return TARGETS.get(target, APP_DEFAULTS)


def as_dict(checks: Sequence[Check]) -> list[dict[str, Any]]:
    return [{**asdict(c), "inside": c.inside} for c in checks]
