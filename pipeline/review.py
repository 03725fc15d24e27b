"""`python -m pipeline.review RUN_FOLDER`: the capacity review of a load test run, then its publication.

Runs after the load test whatever its verdict (CodeBuild's post_build phase), so a failed run is
reviewable too:

1. waits until CloudWatch has the run's last minutes (it publishes a minute or two late), when it will
   be read: the stage's resource names are set (`ClusterName`, `ServiceName`, ... from the stage outputs);
2. `python -m loadtests.capacity RUN_FOLDER`, with the credentials of `METRICS_ROLE_ARN` (the stage
   account's CloudWatch reading role) when set, in `TARGET_REGION`; `REVIEW_ASSUME_TASKS=N` adds
   `--assume-tasks N` (the local stack: one task, no CloudWatch). It compares the run with the baseline
   the step fetched (`reports/loadtest-baseline`) again, now with CloudWatch's per-request figures;
3. copies the run's JUnit file to `reports/junit/` for the CodeBuild report group;
4. publishes the run folder: with `REPORTS_BUCKET`, to `s3://BUCKET/runs/$PIPELINE_EXECUTION_ID/` and to
   `latest/` (whose older files are removed), with the pipeline step's own credentials; else, with
   `REPORTS_DIR`, to the same layout in that folder (`make rehearse`).

Exit 1 when the review or the publication failed, or when the regression gate (regression.json) found a
metric that regressed; the thresholds' verdict is the build phase's.
"""

from __future__ import annotations

import argparse
import json
import mimetypes
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from pipeline.aws import StepError, credentials_env, session_for
from pipeline.commands import BASELINE_FETCHED, JUNIT_DIR, JUNIT_FILE, REVIEW_PAGE, console_object_url

CLOUDWATCH_NAMES = (
    "ClusterName",
    "ServiceName",
    "LoadBalancerFullName",
    "DbClusterIdentifier",
)
CONTENT_TYPES = {
    ".html": "text/html; charset=utf-8",
    ".json": "application/json",
    ".csv": "text/csv; charset=utf-8",
    ".txt": "text/plain; charset=utf-8",
    ".log": "text/plain; charset=utf-8",
    ".xml": "application/xml",
}


def say(message: str) -> None:
    print(f"==> {message}", flush=True)


def settle_wait(summary: dict[str, Any], now: float, settle_s: float) -> float:
    """Seconds to wait so that CloudWatch has published the run's last minute."""
    finished = float(summary.get("finished_epoch") or 0)
    return max(0.0, finished + settle_s - now) if finished else 0.0


def content_type(path: Path) -> str:
    return CONTENT_TYPES.get(path.suffix) or mimetypes.guess_type(path.name)[0] or "application/octet-stream"


def capacity_review(run_dir: Path, env: dict[str, str]) -> int:
    command = [sys.executable, "-m", "loadtests.capacity", str(run_dir), "--baseline-dir", BASELINE_FETCHED]
    if env.get("REVIEW_ASSUME_TASKS"):
        command += ["--assume-tasks", env["REVIEW_ASSUME_TASKS"]]
    child_env = dict(env)
    if any(env.get(name) for name in CLOUDWATCH_NAMES):
        session = session_for(env.get("METRICS_ROLE_ARN"), env.get("TARGET_REGION"), "capacity-review")
        child_env.update(credentials_env(session))
    say("python " + " ".join(command[1:]))
    return subprocess.run(command, env=child_env, check=False).returncode  # noqa: S603 (our own module)


def regression_problems(run_dir: Path) -> list[str]:
    """The regression gate's verdict, as the review last wrote it (with CloudWatch's figures)."""
    path = run_dir / "regression.json"
    if not path.is_file():
        return []  # the run failed before it could be compared; the build phase has failed already
    verdict = json.loads(path.read_text())
    if verdict.get("passed", True):
        return []
    regressed = [v["label"] for v in verdict.get("verdicts", []) if v.get("verdict") == "regressed"]
    return [f"the regression gate: {verdict.get('headline')}: {'; '.join(regressed)}"]


def collect_junit(run_dir: Path, junit_dir: Path) -> None:
    source = run_dir / "junit.xml"
    if source.exists():
        junit_dir.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(source, junit_dir / JUNIT_FILE)


def publish_local(run_dir: Path, destination: Path, run_id: str) -> Path:
    """`destination/runs/<run id>/` and a fresh `destination/latest/`; returns the review's path there."""
    target = destination / "runs" / run_id
    shutil.rmtree(target, ignore_errors=True)
    shutil.copytree(run_dir, target)
    latest = destination / "latest"
    shutil.rmtree(latest, ignore_errors=True)
    shutil.copytree(run_dir, latest)
    return target / REVIEW_PAGE


def publish_s3(s3: Any, run_dir: Path, bucket: str, run_id: str) -> str:
    """Upload to `runs/<run id>/` and `latest/` (removing what `latest/` held from older runs)."""
    files = sorted(p for p in run_dir.rglob("*") if p.is_file())
    names = {p.relative_to(run_dir).as_posix() for p in files}
    for prefix in (f"runs/{run_id}/", "latest/"):
        for path in files:
            key = prefix + path.relative_to(run_dir).as_posix()
            s3.upload_file(str(path), bucket, key, ExtraArgs={"ContentType": content_type(path)})
    stale = []
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix="latest/"):
        stale += [o["Key"] for o in page.get("Contents", []) if o["Key"].removeprefix("latest/") not in names]
    for key in stale:
        s3.delete_object(Bucket=bucket, Key=key)
    return f"s3://{bucket}/runs/{run_id}/"


def main(argv: list[str] | None = None, *, sleep: Callable[[float], None] = time.sleep) -> int:
    parser = argparse.ArgumentParser(prog="python -m pipeline.review", description=__doc__.splitlines()[0])
    parser.add_argument(
        "run_folder", type=Path, help="a load test's run folder, e.g. reports/loadtest/latest"
    )
    parser.add_argument("--settle", type=float, default=float(os.environ.get("REVIEW_SETTLE_SECONDS", 180)))
    args = parser.parse_args(argv)
    env = dict(os.environ)
    if not args.run_folder.exists():
        print(f"ERROR: {args.run_folder} does not exist: did the load test start?", file=sys.stderr)
        return 1
    run_dir = args.run_folder.resolve()
    run_id = env.get("PIPELINE_EXECUTION_ID") or run_dir.name
    problems = []
    try:
        summary_path = run_dir / "summary.json"
        summary = json.loads(summary_path.read_text()) if summary_path.exists() else {}
        if any(env.get(name) for name in CLOUDWATCH_NAMES):
            wait = settle_wait(summary, time.time(), args.settle)
            if wait:
                say(f"Waiting {wait:.0f} s for CloudWatch to publish the run's last minutes")
                sleep(wait)
        if capacity_review(run_dir, env) != 0:
            problems.append("the capacity review failed (above)")
    except (StepError, BotoCoreError, ClientError, OSError, ValueError) as error:
        problems.append(f"the capacity review could not run: {error}")
    problems += regression_problems(run_dir)
    collect_junit(run_dir, Path(JUNIT_DIR))
    try:
        if env.get("REPORTS_BUCKET"):
            region = env.get("AWS_REGION") or env.get("AWS_DEFAULT_REGION") or "us-west-2"
            where = publish_s3(
                session_for(None, region, "reports").client("s3"), run_dir, env["REPORTS_BUCKET"], run_id
            )
            say(f"Published to {where} and s3://{env['REPORTS_BUCKET']}/latest/")
            say(
                f"Capacity review: {console_object_url(region, env['REPORTS_BUCKET'], f'runs/{run_id}/{REVIEW_PAGE}')}"
            )
        elif env.get("REPORTS_DIR"):
            review = publish_local(run_dir, Path(env["REPORTS_DIR"]), run_id)
            say(f"Published to {review.parent}/ and {Path(env['REPORTS_DIR']) / 'latest'}/")
            say(f"Capacity review: {review}")
        else:
            problems.append("neither REPORTS_BUCKET nor REPORTS_DIR is set: the run was not published")
    except (BotoCoreError, ClientError, OSError) as error:
        problems.append(f"publishing failed: {error}")
    for problem in problems:
        print(f"ERROR: {problem}", file=sys.stderr)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
