"""`python -m loadtests run|cleanup`: what `make loadtest` and the pipeline's load-test step run.

After a run, `run` compares it with the accepted baseline of the same target, profile and shape
(loadtests/regression/) and prints the "vs baseline" section.

Exit codes of `run`: 0 every threshold held and nothing regressed; 1 a threshold was missed (the summary
says which and by how much) or a metric regressed against the baseline; 2 the run itself failed (Locust
crashed or hung, the local stack did not start, bad options, an unreadable baseline).
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
from pathlib import Path
from typing import Any

from devstack.background import LocalStack, LocalStackError, is_ready
from loadtests import protections, report, runner, shapes
from loadtests.cleanup import cleanup_ledger, leftover_ledgers
from loadtests.common.accounts import PoolError, read_pool
from loadtests.common.config import PROFILES, RUN_ID_PATTERN
from loadtests.regression import baseline as baselines
from loadtests.regression import cli as regression
from loadtests.regression import metrics as run_metrics
from loadtests.regression import report as regression_report
from loadtests.thresholds import parse_override


def say(message: str) -> None:
    print(f"==> {message}", flush=True)


def _positive_int(text: str) -> int:
    value = int(text)
    if value <= 0:
        raise argparse.ArgumentTypeError(f"{text} must be a positive whole number")
    return value


def _duration(text: str) -> float:
    try:
        return shapes.parse_duration(text)
    except ValueError as error:
        raise argparse.ArgumentTypeError(str(error)) from None


def _run_id(text: str) -> str:
    if not RUN_ID_PATTERN.match(text):
        raise argparse.ArgumentTypeError("a run id is 1-16 letters, digits and '-'")
    return text


def _target(text: str) -> str:
    try:
        baselines.Key(text, "profile", "shape")
    except baselines.BaselineError as error:
        raise argparse.ArgumentTypeError(str(error)) from None
    return text


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m loadtests", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)

    run = sub.add_parser("run", help="run a load test and write its report folder")
    run.add_argument(
        "--host",
        help="base URL of the target, e.g. https://staging.example.com (default: the local stack at "
        "http://127.0.0.1:$PORT, started if it does not answer)",
    )
    run.add_argument("--shape", choices=sorted(shapes.BUILDERS), default="smoke")
    run.add_argument("--profile", choices=PROFILES, default="local", help="which thresholds gate the run")
    run.add_argument(
        "--target",
        type=_target,
        help="the environment's name, e.g. staging: baselines are per target, profile and shape "
        "(default: local for the local stack, else the host name)",
    )
    run.add_argument("--run-time", type=_duration, help="shape duration, e.g. 90s, 5m, 1h (shape default)")
    run.add_argument("--users", type=_positive_int, help="peak simulated users (shape default)")
    run.add_argument(
        "--processes",
        type=_positive_int,
        default=1,
        help="Locust processes on this machine (>1: distributed)",
    )
    run.add_argument(
        "--expect-workers",
        type=int,
        default=0,
        help="run as a master and wait for this many workers from other machines (see README)",
    )
    run.add_argument("--master-bind-host", default="127.0.0.1", help="where a master listens for workers")
    run.add_argument("--master-port", type=int, help="master port (default: a free one)")
    run.add_argument(
        "--threshold",
        action="append",
        default=[],
        metavar="GROUP:METRIC=LIMIT",
        help="add or replace a threshold, e.g. 'Aggregated:p95_ms=500' (repeatable)",
    )
    run.add_argument("--run-id", type=_run_id, help="default: YYMMDD-HHMMSS-xx (UTC)")
    run.add_argument("--reports-dir", type=Path, default=runner.PROJECT / "reports" / "loadtest")
    run.add_argument("--ledger-dir", type=Path, default=runner.PROJECT / ".local" / "loadtest-ledgers")
    run.add_argument(
        "--baseline-dir",
        type=Path,
        default=regression.DEFAULT_ROOT,
        help="where the accepted baselines are (default reports/loadtest/baseline)",
    )
    run.add_argument(
        "--users-file",
        type=Path,
        default=Path(os.environ["LOADTEST_USERS"]) if os.environ.get("LOADTEST_USERS") else None,
        help="test-user pool, `username:password` per line (default: $LOADTEST_USERS; else fresh users)",
    )
    run.add_argument("--no-cleanup", action="store_true", help="keep the run's images and accounts")
    run.add_argument(
        "--over-limits",
        action="store_true",
        help="run even when the plan's worst case exceeds the target's login throttling or WAF limits "
        "(recorded in run.json; its 429s then count as failures)",
    )
    run.add_argument("--grace", type=float, default=120.0, help="seconds past the shape's end before a kill")

    clean = sub.add_parser("cleanup", help="remove what crashed or killed runs left on their targets")
    clean.add_argument("--ledger-dir", type=Path, default=runner.PROJECT / ".local" / "loadtest-ledgers")
    clean.add_argument("--host", help="only runs against this base URL")
    clean.add_argument(
        "--users-file",
        type=Path,
        default=Path(os.environ["LOADTEST_USERS"]) if os.environ.get("LOADTEST_USERS") else None,
    )
    return parser


def _pool_passwords(users_file: Path | None) -> dict[str, str]:
    if users_file is None:
        return {}
    return {c.username: c.password for c in read_pool(users_file)}


def _clean_leftovers(ledger_dir: Path, host: str | None, pool: dict[str, str]) -> list[dict[str, Any]]:
    results = []
    for path in leftover_ledgers(ledger_dir, host):
        result = cleanup_ledger(path, pool)
        say(result.describe())
        results.append(result.as_dict())
    return results


def command_run(args: argparse.Namespace) -> int:
    try:
        overrides = [parse_override(text) for text in args.threshold]
        pool = _pool_passwords(args.users_file)
    except (ValueError, PoolError) as error:
        print(f"ERROR: {error}", file=sys.stderr)
        return runner.EXIT_ERROR
    stack: LocalStack | None = None
    host = args.host
    if host and not host.startswith(("http://", "https://")):
        print(f"ERROR: --host {host!r} must be a URL such as https://staging.example.com", file=sys.stderr)
        return runner.EXIT_ERROR
    plan = runner.RunPlan(
        host="",
        shape=args.shape,
        profile=args.profile,
        target=args.target or run_metrics.infer_target(host),
        run_time_s=args.run_time,
        users=args.users,
        processes=args.processes,
        expect_workers=args.expect_workers,
        master_bind_host=args.master_bind_host,
        master_port=args.master_port,
        reports_dir=args.reports_dir.resolve(),
        ledger_dir=args.ledger_dir.resolve(),
        baseline_dir=args.baseline_dir.resolve(),
        users_file=args.users_file.resolve() if args.users_file else None,
        overrides=overrides,
        grace_s=args.grace,
    )
    if args.run_id:
        plan.run_id = args.run_id
    try:
        planned = plan.shape_plan()
    except ValueError as error:
        print(f"ERROR: {error}", file=sys.stderr)
        return runner.EXIT_ERROR
    checks = _protections(plan, planned, pool, args.over_limits)
    if checks is None:
        return runner.EXIT_ERROR
    plan.run_dir.mkdir(parents=True, exist_ok=True)
    if not host:
        host = f"http://127.0.0.1:{os.environ.get('PORT') or 8000}"
        if is_ready(host):
            say(f"Target: the local stack already running at {host}")
        else:
            say(f"Target: starting the local stack at {host} (log: {plan.run_dir / 'stack.log'})")
            stack = LocalStack(
                local_dir=None, port=int(host.rsplit(":", 1)[1]), log_path=plan.run_dir / "stack.log"
            )
            try:
                stack.start()
            except LocalStackError as error:
                print(f"ERROR: {error}", file=sys.stderr)
                return runner.EXIT_ERROR
    plan.host = host.rstrip("/")
    previous = signal.signal(signal.SIGTERM, _interrupt)  # a stopped CI job still stops Locust and cleans up
    try:
        return _run(plan, planned, pool, cleanup=not args.no_cleanup, protected=checks)
    finally:
        signal.signal(signal.SIGTERM, previous)
        if stack is not None:
            say("Stopping the local stack this run started")
            stack.stop()


def _interrupt(_signum: int, _frame: object) -> None:
    raise KeyboardInterrupt


def _protections(
    plan: runner.RunPlan, planned: shapes.Shape, pool: dict[str, str], over_limits: bool
) -> dict[str, Any] | None:
    """The plan's worst case against the target's login throttling and WAF limits (loadtests/protections.py);
    None when it exceeds one and --over-limits was not given."""
    limits = protections.limits_for(plan.target)
    poll = float(os.environ.get("LOADTEST_POLL_INTERVAL") or 0.5)
    checks = protections.evaluate(
        protections.Plan(planned, pool_size=len(pool) if plan.users_file else None, poll_interval_s=poll),
        limits,
    )
    say(f"Protections of target {plan.target}, worst case (loadtests/protections.py):")
    for check in checks:
        print(f"      {check.describe()}", flush=True)
    over = [c for c in checks if not c.inside]
    record = {"checks": protections.as_dict(checks), "over_limits_allowed": bool(over and over_limits)}
    if over and over_limits:
        say(
            f"WARNING: --over-limits: running although {len(over)} limit(s) may be exceeded; 429s are failures"
        )
    elif over:
        print(
            f"ERROR: this run could trip the target's own protections ({', '.join(c.name for c in over)}): "
            "use fewer --users or a users file with more accounts (--users-file), or --over-limits to run "
            "anyway",
            file=sys.stderr,
        )
        return None
    return record


def _run(
    plan: runner.RunPlan,
    planned: shapes.Shape,
    pool: dict[str, str],
    cleanup: bool,
    protected: dict[str, Any] | None = None,
) -> int:
    leftovers = _clean_leftovers(plan.ledger_dir, plan.host, pool) if cleanup else []
    runner.start_ledger(plan)
    say(
        f"Run {plan.run_id}: shape {planned.name} ({planned.duration_s:.0f} s, up to {planned.peak_users} users), "
        f"profile {plan.profile}, {plan.processes} process(es), against {plan.host} (target {plan.target})"
    )
    say(f"Report folder: {plan.run_dir}")
    exit_code, stopped, command = runner.run_locust(plan, say)
    summary = runner.ensure_summary(plan, exit_code, stopped)
    print(report.render_text(summary), end="", flush=True)
    cleanup_result = None
    if cleanup:
        result = cleanup_ledger(plan.ledger_path, pool)
        say(result.describe())
        cleanup_result = result.as_dict()
        (plan.run_dir / "cleanup.json").write_text(
            json.dumps({"run": cleanup_result, "leftovers": leftovers}, indent=2) + "\n", encoding="utf-8"
        )
    else:
        say(
            f"Cleanup skipped: `python -m loadtests cleanup` removes this run's data later ({plan.ledger_path})"
        )
    runner.update_latest(plan.reports_dir, plan.run_id)
    if summary.get("passed") and exit_code == 0:
        code = runner.EXIT_PASSED
    elif exit_code == 1 and summary.get("thresholds") and not summary.get("problem"):
        code = runner.EXIT_THRESHOLDS
    else:
        code = runner.EXIT_ERROR
    headline, code = _compare(plan, summary, code)
    runner.write_run_record(
        plan,
        {
            "command": command,
            "locust_exit_code": exit_code,
            "stopped_early": stopped,
            "exit_code": code,
            "cleanup": cleanup_result,
            "regression": headline,
            "protections": protected,
        },
    )
    say(f"Report: {plan.run_dir / 'report.html'}  (summary: {plan.run_dir / 'summary.txt'})")
    return code


def _compare(plan: runner.RunPlan, summary: dict[str, Any], code: int) -> tuple[str, int]:
    """The "vs baseline" section; a regression turns a passing run's exit code into 1."""
    if summary.get("problem") or not summary.get("aggregated"):
        headline = "not compared: the run itself failed"
        say(f"vs baseline: {headline}")
        return headline, code
    try:
        comparison = regression.check(plan.run_dir, plan.baseline_dir)
    except (run_metrics.MetricsError, baselines.BaselineError, OSError, ValueError) as error:
        print(f"ERROR: the regression gate could not compare this run: {error}", file=sys.stderr)
        return f"not compared: {error}", runner.EXIT_ERROR
    print(regression_report.render_text(comparison), end="", flush=True)
    if not comparison.passed and code == runner.EXIT_PASSED:
        code = runner.EXIT_THRESHOLDS
    return comparison.headline, code


def command_cleanup(args: argparse.Namespace) -> int:
    try:
        pool = _pool_passwords(args.users_file)
    except PoolError as error:
        print(f"ERROR: {error}", file=sys.stderr)
        return runner.EXIT_ERROR
    results = _clean_leftovers(args.ledger_dir.resolve(), args.host, pool)
    if not results:
        say("Nothing to clean up: no ledger of a finished run is left")
    return 0 if all(r["ok"] for r in results) else 1


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.command == "run":
        return command_run(args)
    return command_cleanup(args)
