"""The fault suite's run: the stack, the load, the faults in turn, the checks, the report.

Timeline: start the stack; load for WARMUP_S; then each fault of `control.FAULTS`, each followed by
STEADY_S of load after its recovery (longer than the margin, so a 503 that outlasts it shows); stop the
load; wait (at most SETTLE_S) for every acknowledged upload to reach its terminal state; log every
acknowledged account in; `devstack down`; check that nothing is left.
"""

from __future__ import annotations

import argparse
import contextlib
import shutil
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx

from devstack.chaos import control, verdict
from devstack.chaos.load import API, TIMEOUT, Load, Recorder, Upload
from devstack.chaos.verdict import Check, Fault, UploadOutcome

PROJECT = Path(__file__).resolve().parents[2]
REPORTS_DIR = PROJECT / "reports" / "chaos"
WARMUP_S = 5.0
STEADY_S = 8.0
SETTLE_S = 60.0
PROGRESS_EVERY_S = 5.0
BUDGET_S = 180.0
"""The suite's wall time it is meant to stay under (it says so when it does not)."""


def say(message: str) -> None:
    print(f"==> {message}", flush=True)


class Progress:
    """Prints, every few seconds, the phase and the requests so far."""

    def __init__(self, recorder: Recorder) -> None:
        self.recorder = recorder
        self.phase = "starting"
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="chaos-progress", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(5)

    def line(self) -> str:
        records = self.recorder.records()
        count = len(records)
        unavailable = sum(r.status == 503 for r in records)
        unanswered = sum(r.status == verdict.NO_ANSWER for r in records)
        errors = sum(r.status >= 500 and r.status != 503 for r in records)
        return (
            f"   [{self.recorder.now():5.1f} s] {self.phase}: {count} requests so far "
            f"({unavailable} 503, {unanswered} unanswered, {errors} other 5xx)"
        )

    def _run(self) -> None:
        while not self._stop.wait(PROGRESS_EVERY_S):
            print(self.line(), flush=True)


def settle_uploads(
    base_url: str, recorder: Recorder, uploads: list[Upload], bound_s: float
) -> list[UploadOutcome]:
    """Wait (at most `bound_s`) until every upload S3 acknowledged is `ready` or `rejected` (asked through
    `confirm`, which answers the row's state), then fetch each ready one's media URL."""
    api = base_url + API
    posted = [u for u in uploads if u.posted]
    states: dict[str, str | None] = {u.image_id: None for u in posted}
    notes: dict[str, str] = {}
    deadline = time.monotonic() + bound_s
    with httpx.Client(timeout=TIMEOUT) as client:
        while True:
            waiting = [u for u in posted if states[u.image_id] not in ("ready", "rejected")]
            for upload in waiting:
                got = recorder.request(
                    client,
                    "POST",
                    f"{api}/images/upload/{upload.image_id}/confirm",
                    f"POST {API}/images/upload/{{id}}/confirm",
                    headers=upload.owner.auth(),
                )
                if got is not None and got.status_code == 200:
                    states[upload.image_id] = str(got.json()["state"])
                else:
                    notes[upload.image_id] = f"(confirm answered {got.status_code if got else 'nothing'})"
            if not waiting or time.monotonic() > deadline:
                break
            time.sleep(1.0)
        outcomes = []
        for upload in posted:
            state = states[upload.image_id]
            served = None
            note = notes.get(upload.image_id, "") if state not in ("ready", "rejected") else ""
            if state == "ready":
                served, note = _served_bytes(client, recorder, api, upload)
            outcomes.append(
                UploadOutcome(upload.image_id, upload.corrupt, upload.confirmed, state, served, note)
            )
    return outcomes


def _served_bytes(
    client: httpx.Client, recorder: Recorder, api: str, upload: Upload
) -> tuple[int | None, str]:
    media = recorder.request(
        client,
        "GET",
        f"{api}/images/media/{upload.image_id}",
        f"GET {API}/images/media/{{id}}",
        headers=upload.owner.auth(),
    )
    if media is None or media.status_code != 200:
        return None, f"(media answered {media.status_code if media else 'nothing'})"
    kind = "public" if upload.public else "private"
    served = recorder.request(client, "GET", media.json()["uri"], f"GET /{kind}/* (media gateway)")
    if served is None or served.status_code != 200:
        return None, f"(its URL answered {served.status_code if served else 'nothing'})"
    if not served.headers.get("content-type", "").startswith("image/"):
        return None, f"(served as {served.headers.get('content-type')!r})"
    return len(served.content), ""


def log_everyone_in(base_url: str, recorder: Recorder, load: Load) -> dict[str, int]:
    """Log in every account whose registration was acknowledged (once each; a 429 waits its Retry-After)."""
    statuses: dict[str, int] = {}
    with httpx.Client(timeout=TIMEOUT) as client:
        for account in [a for a in load.accounts if a.registered]:
            body = {"username": account.username, "password": account.password}
            for _attempt in range(5):
                got = recorder.request(
                    client, "POST", f"{base_url}{API}/auth/login/", f"POST {API}/auth/login/", json=body
                )
                statuses[account.username] = got.status_code if got is not None else verdict.NO_ANSWER
                if got is None or got.status_code != 429:
                    break
                time.sleep(min(30.0, float(got.headers.get("Retry-After", "5"))))
    return statuses


def copy_logs(stack: control.Stack, run_dir: Path) -> None:
    """The stack's logs (`devstack up`'s output, every service's, PostgreSQL's) into the report folder."""
    logs = run_dir / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    sources = [stack.log_path, *sorted((stack.local_dir / "logs").glob("*.log"))]
    with contextlib.suppress(OSError):  # no cluster (the stack never started)
        sources.append(stack.postgres().log_file)
    for source in sources:
        if source.is_file():
            shutil.copyfile(source, logs / source.name)


def run(reports_dir: Path = REPORTS_DIR, steps: list[control.FaultStep] | None = None) -> int:
    """The whole suite; 0 when every check held."""
    steps = control.FAULTS if steps is None else steps
    started_at = datetime.now(UTC)
    run_id = started_at.strftime("%Y%m%d-%H%M%S")
    recorder = Recorder(time.monotonic())
    now: Callable[[], float] = recorder.now
    stack = control.Stack.in_new_folder()
    progress = Progress(recorder)
    load: Load | None = None
    faults: list[Fault] = []
    checks: list[Check] = []
    uploads: list[UploadOutcome] = []
    logins: dict[str, int] = {}
    ports = ", ".join(f"{name}={port}" for name, port in stack.ports.items())
    say(f"Fault suite {run_id}: the local stack in {stack.local_dir} ({ports})")
    try:
        progress.start()
        progress.phase = "starting the stack"
        stack.up()
        say(f"The stack is up ({now():.1f} s); load: 2 uploaders, 1 reader, 1 registrar")
        load = Load(stack.base_url, recorder)
        load.start()
        progress.phase = "load before the faults"
        time.sleep(WARMUP_S)
        for number, step in enumerate(steps, 1):
            progress.phase = f"fault {number}/{len(steps)} ({step.__name__})"
            say(f"Fault {number}/{len(steps)}: {step.__name__} at {now():.1f} s")
            fault = step(stack, now)
            faults.append(fault)
            back = "never" if fault.recovered is None else f"after {fault.recovered - fault.injected:.1f} s"
            say(f"  {fault.name}: dependencies back {back}; {fault.reaction}")
            if fault.recovered is None:
                raise control.ChaosError(f"the stack did not recover from {fault.name}")
            progress.phase = f"fault {number}/{len(steps)} ({step.__name__}): steady load after recovery"
            time.sleep(STEADY_S)
        progress.phase = "stopping the load"
        load.stop()
        say(f"Load stopped at {now():.1f} s: {len(recorder.records())} requests")
        progress.phase = "waiting for every acknowledged upload to settle"
        uploads = settle_uploads(stack.base_url, recorder, load.uploads, SETTLE_S)
        progress.phase = "logging every acknowledged account in"
        logins = log_everyone_in(stack.base_url, recorder, load)
        progress.phase = "devstack down"
        say(f"Checks done at {now():.1f} s; `devstack down`")
        down = stack.down()
        if down.returncode != 0:
            checks.append(Check("`devstack down` succeeds", False, [(down.stdout + down.stderr)[-500:]]))
        checks.append(verdict.check_stopped(stack.listening(), stack.leftovers()))
    except (control.ChaosError, KeyboardInterrupt) as error:
        what = "interrupted" if isinstance(error, KeyboardInterrupt) else str(error)
        checks.append(Check("the suite ran to its end", False, [what]))
    finally:
        if load is not None:
            load.stop()
        progress.stop()
        stack.resume_s3()
    duration = now()
    records = recorder.records()
    accounts = [a for a in load.accounts if a.registered] if load else []
    checks = [
        *verdict.check_requests(records, faults),
        verdict.check_uploads(uploads, SETTLE_S),
        verdict.check_logins(logins),
        *checks,
    ]
    if load is not None and not accounts:
        checks.append(Check("the load registered accounts", False, ["no registration was acknowledged"]))
    if load is not None and not uploads:
        checks.append(Check("the load uploaded images", False, ["no upload was acknowledged"]))
    rows = verdict.summarize(records, faults)
    meta: dict[str, Any] = {
        "run_id": run_id,
        "started_at": started_at.isoformat(timespec="seconds"),
        "duration_s": round(duration, 1),
        "requests": len(records),
        "margin_s": verdict.MARGIN_S,
        "ports": stack.ports,
        "registrations_acknowledged": len(accounts),
        "uploads_acknowledged": len(uploads),
        "uploads_confirmed": sum(u.confirmed for u in uploads),
    }
    summary = verdict.render_summary(meta, rows, checks)
    results = {
        **meta,
        **verdict.as_json(rows=rows, checks=checks, faults=faults),
        "uploads": [vars(u) for u in uploads],
        "logins": logins,
        "requests_fields": ["start", "end", "route", "status", "reason", "retry_after", "json_error"],
        "requests_list": [
            [r.start, r.end, r.route, r.status, r.reason, r.retry_after, r.json_error] for r in records
        ],
    }
    run_dir = verdict.write_report(reports_dir, run_id, summary, results)
    copy_logs(stack, run_dir)
    stack.discard()
    print()
    print(summary)
    failed = [c.name for c in checks if not c.passed]
    if duration > BUDGET_S:
        say(f"Note: the suite took {duration:.0f} s, more than its {BUDGET_S:.0f} s budget")
    say(f"Report: {run_dir / 'summary.md'} (results.json, logs/)")
    if failed:
        print(f"CHAOS FAILED: {'; '.join(failed)}", flush=True)
        return 1
    say(f"Fault suite passed in {duration:.0f} s")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m devstack.chaos", description=__doc__)
    parser.add_argument("--reports-dir", type=Path, default=REPORTS_DIR, help="default: reports/chaos")
    args = parser.parse_args(argv)
    return run(reports_dir=args.reports_dir.resolve())
