"""`python -m loadtests.capacity RUN_FOLDER`: write capacity.html (and capacity.json) into the run folder.

CloudWatch is read when the stage's resource names are given (environment variables named like the
stage outputs: ClusterName, ServiceName, LoadBalancerFullName, DbClusterIdentifier;
or the flags), with boto3's usual credentials and region (AWS_REGION / AWS_DEFAULT_REGION, or --region).
Without them (a run against the local stack) the page says that CloudWatch was not read.

Then the run is compared with its baseline again (loadtests/regression/), now with the per-request
figures from CloudWatch, and the page shows the verdict; the exit code is the review's, not the verdict's
(the load test's own run and the pipeline's review step gate on it).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

from loadtests.capacity import config, page
from loadtests.capacity.analysis import RunData, RunFolderError, Settings, analyse, load_run
from loadtests.capacity.cloudwatch import Fetched, Resources, fetch, make_client, metric_specs
from loadtests.regression import baseline as baselines
from loadtests.regression import cli as regression
from loadtests.regression import metrics as run_metrics
from loadtests.regression import report as regression_report

WINDOW_MARGIN = timedelta(minutes=5)
"""Metrics are read from 5 minutes before the run to 5 minutes after it (start-up and scale-in)."""


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m loadtests.capacity", description=__doc__.splitlines()[0])
    parser.add_argument("run_folder", type=Path, help="a run folder, e.g. reports/loadtest/latest")
    parser.add_argument(
        "--out", type=Path, help="where to write the page (default: RUN_FOLDER/capacity.html)"
    )
    parser.add_argument(
        "--target-rps", type=float, default=config.DEFAULT_TARGET_RPS, help="prod's API traffic"
    )
    parser.add_argument("--headroom", type=float, default=config.DEFAULT_HEADROOM, help="e.g. 0.3 for 30%%")
    parser.add_argument("--peak-factor", type=float, default=config.DEFAULT_PEAK_FACTOR)
    parser.add_argument("--p95-target-ms", type=float, default=config.default_p95_target_ms())
    parser.add_argument(
        "--assume-tasks",
        type=int,
        help="task count to assume without CloudWatch (e.g. 1 for the local stack)",
    )
    parser.add_argument("--cluster-name")
    parser.add_argument("--service-name")
    parser.add_argument("--load-balancer", help="the ALB's full name (app/NAME/ID)")
    parser.add_argument("--db-cluster", help="the Aurora cluster identifier")
    parser.add_argument("--region")
    parser.add_argument("--endpoint-url", help="another CloudWatch endpoint (a local moto server in tests)")
    parser.add_argument("--no-cloudwatch", action="store_true", help="do not read CloudWatch")
    parser.add_argument(
        "--baseline-dir",
        type=Path,
        default=regression.DEFAULT_ROOT,
        help="where the accepted baselines are (default reports/loadtest/baseline)",
    )
    return parser


def read_cloudwatch(
    run: RunData, resources: Resources, args: argparse.Namespace
) -> tuple[Fetched, list[str]]:
    """Metric series for the run's window, and what is missing (for the page)."""
    if args.no_cloudwatch:
        return Fetched({}, []), ["CloudWatch: not read (--no-cloudwatch)"]
    if not resources.any:
        return Fetched({}, []), [
            "CloudWatch: not read, because none of the stage's resource names is set "
            f"({', '.join(resources.missing())}); a run against the local stack has none"
        ]
    start = datetime.fromtimestamp(run.started // 60 * 60, UTC) - WINDOW_MARGIN
    end = datetime.fromtimestamp(run.finished // 60 * 60 + 60, UTC) + WINDOW_MARGIN
    client = make_client(args.region, args.endpoint_url or os.environ.get("AWS_ENDPOINT_URL_CLOUDWATCH"))
    fetched = fetch(client, metric_specs(resources), start, end)
    missing = [f"CloudWatch: {name} not set, so its metrics were not read" for name in resources.missing()]
    return fetched, missing + fetched.errors


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        run = load_run(args.run_folder)
    except RunFolderError as error:
        print(f"ERROR: {error}", file=sys.stderr)
        return 2
    resources = Resources.from_env(
        os.environ,
        cluster_name=args.cluster_name,
        service_name=args.service_name,
        load_balancer=args.load_balancer,
        db_cluster=args.db_cluster,
    )
    fetched, missing = read_cloudwatch(run, resources, args)
    settings = Settings(
        p95_target_ms=args.p95_target_ms,
        target_rps=args.target_rps,
        headroom=args.headroom,
        peak_factor=args.peak_factor,
        assume_tasks=args.assume_tasks,
    )
    review = analyse(run, fetched.series, settings, missing)
    out = args.out or args.run_folder / "capacity.html"
    figures = page.figures_json(review)
    (args.run_folder / "capacity.json").write_text(json.dumps(figures, indent=2) + "\n", encoding="utf-8")
    if out.with_suffix(".json") != args.run_folder / "capacity.json":
        out.with_suffix(".json").write_text(json.dumps(figures, indent=2) + "\n", encoding="utf-8")
    code = 0
    try:
        comparison = regression.check(args.run_folder, args.baseline_dir)
        verdict = regression_report.as_dict(comparison)
        text = regression_report.render_text(comparison)
    except (run_metrics.MetricsError, baselines.BaselineError, OSError, ValueError) as error:
        verdict, text, code = {"error": str(error)}, f"vs baseline: could not compare: {error}\n", 2
    out.write_text(page.render(review, verdict), encoding="utf-8")
    print(f"==> Capacity review: {out}")
    print("    " + text.splitlines()[0])
    if review.headline:
        print(
            f"    {review.headline.requests_per_task:.1f} req/s per task at p95 <= {settings.p95_target_ms:.0f} ms; "
            f"prod needs {review.headline.tasks_needed_target} task(s) for {settings.target_rps:.0f} req/s"
        )
    else:
        print(f"    headline not computed: {review.headline_missing}")
    print(f"    scale-out: {review.scale_out.verdict}")
    for item in review.missing:
        print(f"    missing: {item}")
    return code
