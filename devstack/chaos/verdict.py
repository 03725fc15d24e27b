"""The pure part of the fault suite: request records, fault windows, the summary table and the assertions.

What counts as a failure (devstack/README.md, "The fault suite"):

- any 5xx other than 503 (a 500 is a bug; a 502/504 would mean something answers for a service that is
  gone), at any time;
- a 503, or a request that got no HTTP answer at all (refused, reset, timed out: what a client sees while
  the stack restarts), outside every fault's zone: from the moment the fault is applied until
  `margin` seconds after the suite saw every dependency answer again;
- a 503 that does not say why: the API's must be its JSON error (`{"success": false, "detail": ...}`)
  with `Retry-After`; the S3 server's must carry an S3 error code;
- a client error (4xx) other than the ones a fault can explain (`ALLOWED_CLIENT_ERRORS`);
- a fault the stack did not react to as designed, or did not recover from;
- an acknowledged registration that cannot log in, an acknowledged upload that does not reach its
  terminal state or whose media URL serves no bytes, and anything of the stack left running or
  listening after `devstack down`.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

NO_ANSWER = 0
"""The status recorded for a request that got no HTTP answer (connection refused or reset, timeout)."""
S3_ROUTE_PREFIX = "S3 "
"""Routes answered by the S3 server itself (the presigned POST), not by the API."""
MARGIN_S = 5.0
"""How long after its dependencies answer again a fault may still explain a 503 or a lost connection:
the API's `Retry-After`, within which pools drop their dead connections."""
ALLOWED_CLIENT_ERRORS: dict[str, frozenset[int]] = {
    # A registration retried after its first attempt got no answer may find it was committed.
    "POST /api/v1/auth/register/": frozenset({409}),
    # The compressor quarantines a refused original before the worker marks its row `rejected`: a feed
    # read in between still lists it. Only for the load's corrupt uploads; a good image's 404 still fails.
    "GET /public/* (media gateway, a refused upload)": frozenset({404}),
    "GET /private/* (media gateway, a refused upload)": frozenset({404}),
}
ALWAYS_ALLOWED_CLIENT_ERRORS = frozenset({429})
"""Login throttling (429 with Retry-After) may answer any caller that asks too often; never a failure."""
MAX_DETAILS = 12


@dataclass(frozen=True)
class Record:
    """One request of the load: when (seconds since the suite started), which route, what came back."""

    start: float
    end: float
    route: str
    status: int
    reason: str = ""
    """The error's `detail` (API), S3 error code, or the transport error; empty on success."""
    retry_after: str | None = None
    json_error: bool = False
    """The body was the API's JSON error: `{"success": false, "detail": "<non-empty>"}`."""

    @property
    def failed(self) -> bool:
        """No answer, or a server error: what a fault may cause."""
        return self.status == NO_ANSWER or self.status >= 500

    @property
    def ok(self) -> bool:
        return 200 <= self.status < 300

    def describe(self) -> str:
        status = "no answer" if self.status == NO_ANSWER else str(self.status)
        reason = f": {self.reason}" if self.reason else ""
        return f"t={self.start:.1f}-{self.end:.1f}s {self.route} -> {status}{reason}"


@dataclass
class Fault:
    """One fault as applied: when, when every dependency answered again, and how the stack reacted."""

    name: str
    injected: float
    recovered: float | None = None
    reaction: str = ""
    reaction_ok: bool = True

    def zone(self, margin: float) -> tuple[float, float]:
        """Where a 503 or an unanswered request is explained by this fault."""
        end = self.recovered if self.recovered is not None else math.inf
        return self.injected, end + margin


def _overlaps(record: Record, zone: tuple[float, float]) -> bool:
    return record.start <= zone[1] and record.end >= zone[0]


def explaining_fault(record: Record, faults: Sequence[Fault], margin: float) -> Fault | None:
    """The first fault whose zone the request overlaps (it was sent or answered within it)."""
    return next((fault for fault in faults if _overlaps(record, fault.zone(margin))), None)


@dataclass(frozen=True)
class Row:
    """One line of the table: a fault (or the requests outside every fault)."""

    fault: str
    window: str
    requests: int
    ok: int
    unavailable: int
    no_answer: int
    server_errors: int
    dependencies_back_s: float | None
    recovery_s: float | None
    """Longest time, over the routes that failed in the window, from the fault to that route's first
    success after its last failure: how long clients saw it."""
    reaction: str = ""


def _recovery(fault: Fault, mine: Sequence[Record], everything: Sequence[Record]) -> float | None:
    worst: float | None = None
    for route in sorted({r.route for r in mine if r.failed}):
        last_failure = max((r for r in mine if r.route == route and r.failed), key=lambda r: r.end)
        after = [r for r in everything if r.route == route and r.ok and r.start >= last_failure.end]
        if after:
            back = min(r.end for r in after) - fault.injected
        elif fault.recovered is not None:
            back = fault.recovered - fault.injected
        else:
            continue
        worst = back if worst is None else max(worst, back)
    return worst


def _row(name: str, window: str, mine: Sequence[Record], **extra: Any) -> Row:
    return Row(
        fault=name,
        window=window,
        requests=len(mine),
        ok=sum(r.ok for r in mine),
        unavailable=sum(r.status == 503 for r in mine),
        no_answer=sum(r.status == NO_ANSWER for r in mine),
        server_errors=sum(r.status >= 500 and r.status != 503 for r in mine),
        **extra,
    )


def summarize(records: Sequence[Record], faults: Sequence[Fault], margin: float = MARGIN_S) -> list[Row]:
    """One row per fault (the requests overlapping its zone; a request counts for the first such fault),
    then one for every other request."""
    by_fault: dict[int, list[Record]] = {i: [] for i in range(len(faults))}
    outside: list[Record] = []
    for record in records:
        fault = explaining_fault(record, faults, margin)
        (by_fault[faults.index(fault)] if fault is not None else outside).append(record)
    rows = []
    for i, fault in enumerate(faults):
        start, end = fault.zone(margin)
        window = f"{start:.1f}-{end:.1f}s" if math.isfinite(end) else f"{start:.1f}s-(never recovered)"
        back = fault.recovered - fault.injected if fault.recovered is not None else None
        rows.append(
            _row(
                fault.name,
                window,
                by_fault[i],
                dependencies_back_s=back,
                recovery_s=_recovery(fault, by_fault[i], records),
                reaction=fault.reaction,
            )
        )
    rows.append(_row("(outside every fault)", "", outside, dependencies_back_s=None, recovery_s=None))
    return rows


@dataclass
class Check:
    """One assertion of the suite: its name, whether it held, and what broke it."""

    name: str
    passed: bool
    details: list[str] = field(default_factory=list)


def _check(name: str, broken: Sequence[str], held: str = "") -> Check:
    """A check that held when nothing is `broken`; `held` says what it covered."""
    details = list(broken[:MAX_DETAILS])
    if len(broken) > MAX_DETAILS:
        details.append(f"... and {len(broken) - MAX_DETAILS} more")
    if not broken and held:
        details = [held]
    return Check(name, not broken, details)


def _says_why(record: Record) -> bool:
    if record.route.startswith(S3_ROUTE_PREFIX):
        return bool(record.reason)
    return record.json_error and bool(record.reason) and bool(record.retry_after)


def check_requests(
    records: Sequence[Record], faults: Sequence[Fault], margin: float = MARGIN_S
) -> list[Check]:
    """Every assertion about the requests themselves and about the faults."""
    server_errors = [r.describe() for r in records if r.status >= 500 and r.status != 503]
    unexplained = [
        r.describe()
        for r in records
        if r.status in (503, NO_ANSWER) and explaining_fault(r, faults, margin) is None
    ]
    mute = [r.describe() for r in records if r.status == 503 and not _says_why(r)]
    client_errors = [
        r.describe()
        for r in records
        if 400 <= r.status < 500
        and r.status not in ALWAYS_ALLOWED_CLIENT_ERRORS
        and r.status not in ALLOWED_CLIENT_ERRORS.get(r.route, frozenset())
    ]
    reactions = [
        f"{f.name}: {f.reaction or 'no reaction seen'}"
        + ("" if f.recovered is not None else " (never recovered)")
        for f in faults
        if not f.reaction_ok or f.recovered is None
    ]
    return [
        _check("no 5xx other than 503", server_errors, f"{len(records)} requests"),
        _check(
            f"503s and unanswered requests only during a fault (+{margin:g} s)",
            unexplained,
            f"{sum(r.status in (503, NO_ANSWER) for r in records)} such requests, all during a fault",
        ),
        _check(
            "every 503 says why (API: JSON detail + Retry-After)",
            mute,
            f"{sum(r.status == 503 for r in records)} 503s",
        ),
        _check("no unexpected client errors", client_errors, f"{len(records)} requests"),
        _check(
            "the stack reacted to every fault as designed and recovered", reactions, f"{len(faults)} faults"
        ),
    ]


@dataclass(frozen=True)
class UploadOutcome:
    """What the suite found of one upload the S3 server acknowledged (its presigned POST got 204/201)."""

    image_id: str
    corrupt: bool
    confirmed: bool
    """`confirm` answered 200 during the load (an upload whose confirm never got through still counts:
    S3 acknowledged it, so it must be processed)."""
    state: str | None
    """The last state seen (None: `confirm` never found the row)."""
    served_bytes: int | None = None
    """For a `ready` image: how many bytes its media URL served (None: not fetched or failed)."""
    note: str = ""

    @property
    def expected(self) -> str:
        return "rejected" if self.corrupt else "ready"


def check_uploads(outcomes: Iterable[UploadOutcome], bound_s: float) -> Check:
    outcomes = list(outcomes)
    broken = []
    for upload in outcomes:
        kind = "corrupt" if upload.corrupt else "good"
        where = f"{kind} upload {upload.image_id}"
        if upload.state != upload.expected:
            broken.append(
                f"{where}: state {upload.state!r}, expected {upload.expected!r} {upload.note}".strip()
            )
        elif upload.expected == "ready" and not upload.served_bytes:
            broken.append(f"{where}: ready, but its media URL served no bytes {upload.note}".strip())
    name = f"every acknowledged upload is ready (or rejected, if corrupt) within {bound_s:g} s and served"
    corrupt = sum(u.corrupt for u in outcomes)
    return _check(name, broken, f"{len(outcomes) - corrupt} ready and served, {corrupt} corrupt rejected")


def check_logins(statuses: dict[str, int]) -> Check:
    """`statuses`: username of every acknowledged registration -> the status of its login after recovery."""
    broken = [
        f"{name}: login answered {status or 'nothing'}" for name, status in statuses.items() if status != 200
    ]
    return _check(
        "every acknowledged registration can log in after recovery", broken, f"{len(statuses)} logged in"
    )


def check_stopped(listening: Sequence[int], processes: Sequence[str]) -> Check:
    broken = [f"port {port} still accepts connections" for port in listening]
    broken += [f"still running: {process}" for process in processes]
    name = "after `devstack down`, nothing listens on the stack's ports and nothing of it runs"
    return _check(name, broken, "nothing left")


# --- the report ---------------------------------------------------------------------------------------


def _seconds(value: float | None) -> str:
    return "-" if value is None else f"{value:.1f}"


def render_table(rows: Sequence[Row]) -> str:
    """The summary table, in Markdown (read as it is in a terminal)."""
    lines = [
        "| fault | window | requests | ok | 503 | no answer | 500/other 5xx | deps back (s) | max recovery (s) |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for row in rows:
        lines.append(
            f"| {row.fault} | {row.window} | {row.requests} | {row.ok} | {row.unavailable} | {row.no_answer} "
            f"| {row.server_errors} | {_seconds(row.dependencies_back_s)} | {_seconds(row.recovery_s)} |"
        )
    return "\n".join(lines)


def render_checks(checks: Sequence[Check]) -> str:
    lines = []
    for check in checks:
        lines.append(f"- {'PASS' if check.passed else 'FAIL'} {check.name}")
        lines += [f"    - {detail}" for detail in check.details]
    return "\n".join(lines)


def render_summary(meta: dict[str, Any], rows: Sequence[Row], checks: Sequence[Check]) -> str:
    failed = [c for c in checks if not c.passed]
    outcome = "PASSED" if not failed else f"FAILED ({len(failed)} of {len(checks)} checks)"
    reactions = [f"- {row.fault}: {row.reaction}" for row in rows if row.reaction]
    return "\n".join(
        [
            f"# Fault suite {meta.get('run_id', '')}: {outcome}",
            "",
            f"{meta.get('requests', 0)} requests in {meta.get('duration_s', 0):.0f} s "
            f"(started {meta.get('started_at', '?')}); a 503 or an unanswered request counts for a fault "
            f"from the moment it is applied until {meta.get('margin_s', MARGIN_S):g} s after its "
            "dependencies answer again.",
            "",
            render_table(rows),
            "",
            "How the stack reacted:",
            *reactions,
            "",
            "Checks:",
            render_checks(checks),
            "",
        ]
    )


def write_report(reports_dir: Path, run_id: str, summary_md: str, results: dict[str, Any]) -> Path:
    """`reports_dir/<run_id>/summary.md` and `results.json`; `reports_dir/latest` then points at it."""
    run_dir = reports_dir / run_id
    run_dir.mkdir(parents=True, exist_ok=True)
    (run_dir / "summary.md").write_text(summary_md, encoding="utf-8")
    (run_dir / "results.json").write_text(json.dumps(results, indent=1) + "\n", encoding="utf-8")
    link = reports_dir / "latest"
    tmp = reports_dir / f".latest-{os.getpid()}"
    tmp.unlink(missing_ok=True)
    tmp.symlink_to(run_id, target_is_directory=True)
    tmp.replace(link)  # atomic: a reader never sees no `latest`
    return run_dir


def as_json(*, rows: Sequence[Row], checks: Sequence[Check], faults: Sequence[Fault]) -> dict[str, Any]:
    return {
        "passed": all(c.passed for c in checks),
        "table": [asdict(row) for row in rows],
        "checks": [asdict(check) for check in checks],
        "faults": [asdict(fault) for fault in faults],
    }
