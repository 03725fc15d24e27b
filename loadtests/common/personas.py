"""What each persona is, as plain data: the user classes (`users/`) take their weight and wait time from
here, and `loadtests/protections.py` computes from the same numbers how hard a run can hit the target's
login throttling and WAF rate rules (without importing Locust).

The per-task bounds below are read off the task code in `users/` and must change with it:

- `Visitor`: a task makes at most 3 `/api/` requests (browse: up to 3 feed pages, its images are media,
  not `/api/`; a creator: the creator's feed and profile), then waits at least 1 s.
- `Member`: at most 3 per task (browse: 3 feed pages; its own private post: its feed and the media URL;
  a creator: 2; its account: 1), then at least 1 s. Before its first task: sign-up, login, `/users/me`,
  its own feed, and one upload (generate, confirm): 6 requests, 2 of them under `/api/v1/auth/`.
- `Uploader`: a task is generate, confirm, n polls of the media URL every `LOADTEST_POLL_INTERVAL` (p,
  0.5 s by default) until the rendition is served, maybe a delete: at most n + 3 requests in at least
  (n - 1) x p seconds, then at least 2 s of wait. However fast the target, that is at most
  max(4 / 2 s, 1 / p) requests a second (2 with the default). Before its first task: sign-up, login,
  `/users/me`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass


@dataclass(frozen=True)
class Persona:
    name: str
    weight: int
    min_wait_s: float
    max_wait_s: float
    signs_in: bool
    max_api_per_task: int
    """The most `/api/` requests of one task, polls aside."""
    start_api: int
    """`/api/` requests before its first task (sign-up and login included)."""
    start_auth: int
    """...of which under `/api/v1/auth/` (with a fresh account: sign-up and login; from a pool: login)."""
    uploads_at_start: int = 0
    uploads_per_task: int = 0
    polls: bool = False
    """Its task polls the media URL every LOADTEST_POLL_INTERVAL seconds."""

    def max_api_per_second(self, poll_interval_s: float = 0.5) -> float:
        """The most `/api/` requests one simulated user makes per second, however fast the target answers:
        a task's requests over the shortest wait, or the polls' rate while it polls."""
        rate = self.max_api_per_task / self.min_wait_s
        return max(rate, 1 / poll_interval_s) if self.polls else rate

    def max_uploads(self, duration_s: float) -> int:
        """The most images one simulated user can create in a run of this length."""
        tasks = math.ceil(duration_s / self.min_wait_s) + 1 if self.uploads_per_task else 0
        return self.uploads_at_start + tasks * self.uploads_per_task


VISITOR = Persona("Visitor", 6, 1.0, 3.0, False, max_api_per_task=3, start_api=0, start_auth=0)
MEMBER = Persona(
    "Member", 3, 1.0, 3.0, True, max_api_per_task=3, start_api=6, start_auth=2, uploads_at_start=1
)
UPLOADER = Persona(
    "Uploader",
    1,
    2.0,
    5.0,
    True,
    # generate, confirm, the first poll and a delete; further polls are counted by their rate
    max_api_per_task=4,
    start_api=3,
    start_auth=2,
    uploads_per_task=1,
    polls=True,
)
PERSONAS = (VISITOR, MEMBER, UPLOADER)
