"""`python -m loadtests.regression compare|accept RUN_FOLDER`: the regression gate by hand.

    compare RUN_FOLDER   the run against the accepted baseline of its target, profile and shape: prints
                         the "vs baseline" section, writes regression.json and the JUnit suite into the
                         folder; exit 0 (no regression, or nothing comparable), 1 (a metric regressed),
                         2 (not a finished run folder, or an unreadable baseline)
    accept RUN_FOLDER    make the run the baseline (`make loadtest-accept` accepts reports/loadtest/latest);
                         a run that missed its thresholds needs --force

`python -m loadtests run` compares by itself after every run, and the capacity review again once it has
CloudWatch's figures. Baselines live in --baseline-dir (default reports/loadtest/baseline).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from loadtests.regression import baseline, compare, metrics, report

PROJECT = Path(__file__).resolve().parents[2]
DEFAULT_ROOT = PROJECT / "reports" / "loadtest" / "baseline"
EXIT_SAME, EXIT_REGRESSED, EXIT_ERROR = 0, 1, 2


def check(run_dir: Path, root: Path) -> compare.Comparison:
    """Compare a finished run with its baseline and write the verdict files into its folder.

    The run itself is never its own baseline (it may have been accepted already): then the one accepted
    before it is."""
    run = metrics.extract(run_dir)
    key = baseline.Key.of(run)
    accepted = [b for b in baseline.load(root, key, limit=compare.HISTORY + 1) if b.run_id != run.run_id]
    reason = (
        f"nothing accepted yet for target {key.target}, profile {key.profile}, shape {key.shape} "
        f"(in {root}; `make loadtest-accept` accepts the latest run)"
    )
    comparison = compare.compare(run, accepted[0] if accepted else None, accepted, reason=reason)
    report.write(run_dir, comparison)
    return comparison


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m loadtests.regression", description=__doc__.splitlines()[0]
    )
    sub = parser.add_subparsers(dest="command", required=True)
    for name, text in (
        ("compare", "compare a run with its baseline"),
        ("accept", "make a run the baseline of its target, profile and shape"),
    ):
        command = sub.add_parser(name, help=text)
        command.add_argument("run_folder", type=Path, help="a run folder, e.g. reports/loadtest/latest")
        command.add_argument("--baseline-dir", type=Path, default=DEFAULT_ROOT, help="where baselines live")
        if name == "accept":
            command.add_argument("--force", action="store_true", help="accept a run that missed thresholds")
            command.add_argument(
                "--source", default="make loadtest-accept", help="who accepted it (recorded)"
            )
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    folder = args.run_folder.resolve()
    try:
        if args.command == "accept":
            key, run = baseline.accept(folder, args.baseline_dir, source=args.source, force=args.force)
            where = baseline.folder(args.baseline_dir, key)
            print(f"==> Accepted run {run.run_id} as the baseline of {key.path} ({where})")
            for item in run.missing:
                print(f"    without: {item}")
            return EXIT_SAME
        comparison = check(folder, args.baseline_dir)
    except (metrics.MetricsError, baseline.BaselineError, OSError, ValueError) as error:
        print(f"ERROR: {error}", file=sys.stderr)
        return EXIT_ERROR
    print(report.render_text(comparison), end="")
    return EXIT_SAME if comparison.passed else EXIT_REGRESSED
