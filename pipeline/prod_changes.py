"""`python -m pipeline.prod_changes CDK_OUT`: what this release changes in prod, before the approval.

The pipeline's `ProdChanges` step, before the prod manual approval:

1. downloads the record of the release that last reached prod (`releases/prod/latest/`, see
   `pipeline.releases`); without one (the first release) the report says there is nothing to compare with
   and passes;
2. compares that record's prod templates with this run's (CDK_OUT, the synth step's output) with the
   change report of `make changes` (`pipeline.changes.between`: the CDK's own diff engine; stateful
   resources replaced or removed, security changes, cdk-nag acknowledgments, release parameters; the
   allowance of changes-allowed.toml in this run's source);
3. publishes changes.md, changes.html and changes.json beside the capacity review, under
   `runs/<execution id>/changes/` of the reports bucket (`REPORTS_BUCKET`), or of `REPORTS_DIR` in a
   rehearsal (whose `RELEASES_DIR` stands in for the record); the approval's comment links its page.

Exit 1 when a stateful prod resource would be replaced or removed without an allowance (the report is
published first, with that stated at its top): as `make changes` fails, the run stops before the approval,
and the reviewed escape hatch is an entry in changes-allowed.toml. Exit 2 when the report cannot be made
(the record unreadable or incomplete, no prod Stage in CDK_OUT, the publication failed).
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
from pathlib import Path
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from pipeline import releases
from pipeline.aws import StepError, session_for
from pipeline.changes import between
from pipeline.commands import CHANGES_PAGE, console_object_url
from pipeline.review import content_type

TITLE = "Prod changes since the last release"


def say(message: str) -> None:
    print(f"==> {message}", flush=True)


def base_label(release: dict[str, Any]) -> str:
    return (
        f"the release that last reached prod ({release['commit'][:10]}, execution {release['executionId']}, "
        f"recorded {release['recordedAt']})"
    )


def report(cdk_out: Path, store: releases.Store, scratch: Path, *, commit: str) -> dict[str, Any]:
    """The report's data: the latest record (downloaded into `scratch`) against `cdk_out`'s prod Stage."""
    releases.stage_assembly(cdk_out)  # a clear error when this run's assembly has no prod Stage
    record = scratch / "record"
    release = releases.fetch_latest(store, record)
    head_label = f"this run ({commit[:10]})"
    if release is None:
        return between.compare(
            None, cdk_out, base_label="nothing", head_label=head_label, stages={releases.STAGE}
        )
    notes = [
        f"Only the {releases.STAGE} Stage is compared; `make changes` compares every stage between two commits."
    ]
    return between.compare(
        record / releases.ASSEMBLY,
        cdk_out,
        base_label=base_label(release),
        head_label=head_label,
        stages={releases.STAGE},
        notes=notes,
    )


def publish_s3(s3: Any, folder: Path, bucket: str, run_id: str) -> str:
    prefix = f"runs/{run_id}/{CHANGES_PAGE.rsplit('/', 1)[0]}/"
    for name in between.FILES:
        s3.upload_file(
            str(folder / name), bucket, prefix + name, ExtraArgs={"ContentType": content_type(folder / name)}
        )
    return f"s3://{bucket}/{prefix}"


def publish_local(folder: Path, reports_dir: Path, run_id: str) -> Path:
    target = reports_dir / "runs" / run_id / CHANGES_PAGE.rsplit("/", 1)[0]
    target.mkdir(parents=True, exist_ok=True)
    for name in between.FILES:
        shutil.copyfile(folder / name, target / name)
    return target


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m pipeline.prod_changes", description=__doc__.splitlines()[0]
    )
    parser.add_argument("cdk_out", type=Path, help="this run's cloud assembly (the synth step's cdk.out)")
    args = parser.parse_args(argv)
    env = dict(os.environ)
    run_id = env.get("PIPELINE_EXECUTION_ID", "").strip()
    if not run_id:
        print(
            "ERROR: PIPELINE_EXECUTION_ID is not set (the pipeline passes its execution id)", file=sys.stderr
        )
        return 2
    with tempfile.TemporaryDirectory(prefix="prod-changes-") as scratch:
        try:
            store = releases.store_from_env(env)
            data = report(args.cdk_out, store, Path(scratch), commit=releases.commit_id(env, Path.cwd()))
        except (StepError, BotoCoreError, ClientError, OSError, ValueError, RuntimeError) as error:
            print(f"ERROR: the prod change report could not be made: {error}", file=sys.stderr)
            return 2
        folder = between.write(data, Path(scratch) / "changes", TITLE)
        print("\n".join(between.summary_lines(data)), flush=True)
        try:
            if env.get("REPORTS_DIR"):
                target = publish_local(folder, Path(env["REPORTS_DIR"]), run_id)
                say(f"Prod change report: {target / 'changes.html'}")
            elif env.get("REPORTS_BUCKET"):
                region = env.get("AWS_REGION") or env.get("AWS_DEFAULT_REGION") or "us-west-2"
                s3 = session_for(None, region, "prod-changes").client("s3")
                where = publish_s3(s3, folder, env["REPORTS_BUCKET"], run_id)
                say(f"Published to {where}")
                page = console_object_url(region, env["REPORTS_BUCKET"], f"runs/{run_id}/{CHANGES_PAGE}")
                say(f"Prod change report: {page}")
            else:
                print("ERROR: neither REPORTS_BUCKET nor REPORTS_DIR is set: not published", file=sys.stderr)
                return 2
        except (BotoCoreError, ClientError, OSError) as error:
            print(f"ERROR: publishing the prod change report failed: {error}", file=sys.stderr)
            return 2
    if data["exit"]:
        print(f"ERROR: {between.verdict(data)}", file=sys.stderr)
    return int(data["exit"])


if __name__ == "__main__":
    sys.exit(main())
