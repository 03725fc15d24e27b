"""The image-scan gate's exceptions: findings that may ship anyway, each for a reason and until a date.

`python -m pipeline.image_scan` fails a release on every CRITICAL finding of its images, unless an entry
below covers it. ECR's basic scanning cannot tell whether a fix exists, so one CVE in an old base image
(e.g. the log router's aws-for-fluent-bit, Amazon Linux 2) that nobody can fix yet would otherwise block
every release. An entry lets it through, on the record, for a while:

    Allowed(
        finding="CVE-2023-4911",          # the finding's id as the step prints it (CVE, GHSA, ALAS...)
        package="glibc",                  # optional: only in this package
        image="LogRouterImage",           # optional: only in this image (its name as the step prints it)
        reason="No fixed glibc for Amazon Linux 2 yet; the log router runs no setuid binary",
        expires=date(2026, 3, 31),        # the last day it covers (UTC)
    )

Every entry needs a reason and an expiry at most `MAX_DAYS_AHEAD` days away, so nothing is allowed
forever: when it expires, the step fails again on that finding and says so; then update the image, or,
if there is still no fix, write a new expiry (and say why in the commit). Importing this module checks
every entry (`make test` loads it), so a bad entry fails the tests, not the pipeline.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta

MAX_DAYS_AHEAD = 180
"""The furthest an entry's expiry may be from today: long enough for a base image to ship a fix, short
enough that somebody looks again."""

UNFIXABLE_FAILS = False
"""With enhanced scanning (Amazon Inspector, `ecr_scanning="enhanced"` in stages/config.py), each finding
says whether a fixed version exists. False: a CRITICAL finding with no fix (`fixAvailable` NO) is listed
in the step's output but does not fail the release (there is nothing a rebuild could change); one with a
full or partial fix still fails. True: every CRITICAL fails, as with basic scanning, which never knows."""

_FINDING_ID = re.compile(r"[A-Za-z][A-Za-z0-9]*(-[A-Za-z0-9.:_]+)+")


def today_utc() -> date:
    return datetime.now(UTC).date()


@dataclass(frozen=True, kw_only=True)
class Allowed:
    """One finding the gate lets through until `expires` (inclusive, UTC), for `reason`."""

    finding: str
    """The finding's id: basic scanning's finding name, or Inspector's vulnerability id (`CVE-2023-4911`)."""
    reason: str
    """Why it may ship: no fix exists, the vulnerable code is unreachable here, ... Read by reviewers."""
    expires: date
    """The last day the entry covers (UTC); at most `MAX_DAYS_AHEAD` days after the day it is checked."""
    package: str | None = None
    """Only in this package (the name the step prints, without its version); None: in any package."""
    image: str | None = None
    """Only in this image: its name as the step prints it (the construct path of the CDK asset, e.g.
    `LogRouterImage`, or a leading part of it such as `Compressor`); None: in any image."""

    def __post_init__(self) -> None:
        if not isinstance(self.finding, str) or not _FINDING_ID.fullmatch(self.finding):
            raise ValueError(f"allowlist: {self.finding!r} is not a finding id such as CVE-2023-4911")
        if not isinstance(self.reason, str) or len(self.reason.strip()) < 10:
            raise ValueError(f"allowlist: {self.finding} needs a reason (a sentence a reviewer can judge)")
        if not isinstance(self.expires, date) or isinstance(self.expires, datetime):
            raise ValueError(
                f"allowlist: {self.finding}: expires must be a datetime.date, e.g. date(2026, 3, 31)"
            )
        for name in ("package", "image"):
            value = getattr(self, name)
            if value is not None and (not isinstance(value, str) or not value.strip()):
                raise ValueError(f"allowlist: {self.finding}: {name} is None or a non-empty name")

    def live(self, today: date) -> bool:
        return today <= self.expires

    def matches(self, finding_id: str, packages: tuple[str, ...], image_names: tuple[str, ...]) -> bool:
        """Whether the entry names this finding, in one of these packages, in an image of one of these names
        (whether or not it has expired)."""
        if finding_id.casefold() != self.finding.casefold():
            return False
        if self.package is not None and self.package not in packages:
            return False
        return self.image is None or any(
            name == self.image or name.startswith(f"{self.image}/") for name in image_names
        )


def check(entries: tuple[Allowed, ...], *, today: date | None = None) -> tuple[Allowed, ...]:
    """The entries, once none expires more than `MAX_DAYS_AHEAD` days after `today` and none repeats
    another; ValueError naming the entry otherwise. Expired entries pass: the gate reports them."""
    today = today or today_utc()
    horizon = today + timedelta(days=MAX_DAYS_AHEAD)
    seen = set()
    for entry in entries:
        if not isinstance(entry, Allowed):
            raise ValueError(f"allowlist: {entry!r} is not an Allowed(...) entry")
        if entry.expires > horizon:
            raise ValueError(
                f"allowlist: {entry.finding} expires on {entry.expires}, more than {MAX_DAYS_AHEAD} days "
                f"ahead: choose {horizon} or earlier, and look again then"
            )
        key = (entry.finding.casefold(), entry.package, entry.image)
        if key in seen:
            raise ValueError(f"allowlist: {entry.finding} is listed twice for the same package and image")
        seen.add(key)
    return entries


ALLOWLIST: tuple[Allowed, ...] = check(())
"""The findings that may ship now. Empty: no exception has been needed yet."""
