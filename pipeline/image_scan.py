"""`python -m pipeline.image_scan CDK_OUT`: no image with a critical finding reaches a stage.

Reads every container image the cloud assembly publishes (the `dockerImages` of each `*.assets.json`:
repository and tag in each environment's bootstrap registry), and for each one reads ECR's basic scan,
which the access stack turns on for pushes (`pipeline.access_stack`). An image without a scan (pushed
before scanning was on) gets one started. Waits for every scan, prints the counts by severity, and exits
1 when any image has a finding at or above `--fail-on` (CRITICAL), or its scan failed; the findings are
listed with their links.

Environment: `IMAGE_SCAN_ROLE_ARNS`, the comma-separated ARNs of the environments' image-scan roles (one
per account; the account in each ARN picks the role for that account's registry).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from pipeline.aws import StepError, required_env, session_for

SEVERITIES = ("CRITICAL", "HIGH", "MEDIUM", "LOW", "INFORMATIONAL", "UNDEFINED")
DONE = {"COMPLETE", "FAILED", "UNSUPPORTED_IMAGE", "FINDINGS_UNAVAILABLE", "SCAN_ELIGIBILITY_EXPIRED"}


@dataclass(frozen=True, order=True)
class Image:
    account: str
    region: str
    repository: str
    tag: str

    @property
    def label(self) -> str:
        return f"{self.account}/{self.region} {self.repository}:{self.tag[:12]}"


def images_in(cdk_out: Path) -> list[Image]:
    """Every (account, region, repository, tag) the assembly's asset manifests push an image to."""
    found = set()
    for manifest in sorted(cdk_out.glob("**/*.assets.json")):
        for asset in json.loads(manifest.read_text()).get("dockerImages", {}).values():
            for key, destination in asset.get("destinations", {}).items():
                account = key.split("-", 1)[0]
                found.add(
                    Image(
                        account, destination["region"], destination["repositoryName"], destination["imageTag"]
                    )
                )
    return sorted(found)


def roles_by_account(text: str) -> dict[str, str]:
    roles = {}
    for arn in (part.strip() for part in text.split(",") if part.strip()):
        parts = arn.split(":")
        if len(parts) != 6 or parts[2] != "iam":
            raise StepError(f"IMAGE_SCAN_ROLE_ARNS: {arn!r} is not a role ARN")
        roles[parts[4]] = arn
    return roles


def fails(counts: dict[str, int], fail_on: str) -> bool:
    """Whether any finding is at `fail_on` or more severe."""
    worse = SEVERITIES[: SEVERITIES.index(fail_on) + 1]
    return any(counts.get(severity, 0) > 0 for severity in worse)


def scan_result(
    ecr: Any,
    image: Image,
    *,
    timeout_s: float,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
) -> tuple[str, dict[str, int]]:
    """(scan status, counts by severity) of one image, starting a scan if it has none, waiting for it."""
    ids = {"repositoryName": image.repository, "imageIds": [{"imageTag": image.tag}]}
    deadline = clock() + timeout_s
    started = False
    while True:
        detail = ecr.describe_images(**ids)["imageDetails"][0]
        status = (detail.get("imageScanStatus") or {}).get("status")
        if status in DONE:
            counts = (detail.get("imageScanFindingsSummary") or {}).get("findingSeverityCounts") or {}
            return status, {k: int(v) for k, v in counts.items()}
        if status is None and not started:
            try:
                ecr.start_image_scan(repositoryName=image.repository, imageId={"imageTag": image.tag})
            except ClientError as error:  # e.g. already scanned today (LimitExceeded): keep polling
                print(f"    {image.label}: start_image_scan: {error.response['Error']['Code']}", flush=True)
            started = True
        if clock() >= deadline:
            return f"{status or 'NOT STARTED'} after {timeout_s:.0f} s", {}
        sleep(10)


def critical_findings(ecr: Any, image: Image, fail_on: str) -> list[str]:
    """One line per finding at `fail_on` or worse: name, severity, package, link."""
    worse = set(SEVERITIES[: SEVERITIES.index(fail_on) + 1])
    lines = []
    pages = ecr.get_paginator("describe_image_scan_findings").paginate(
        repositoryName=image.repository, imageId={"imageTag": image.tag}
    )
    for page in pages:
        for finding in page.get("imageScanFindings", {}).get("findings", []):
            if finding.get("severity") in worse:
                attributes = {a["key"]: a.get("value", "") for a in finding.get("attributes", [])}
                package = (
                    f"{attributes.get('package_name', '?')} {attributes.get('package_version', '')}".strip()
                )
                lines.append(
                    f"{finding['severity']} {finding.get('name')} in {package} {finding.get('uri', '')}"
                )
    return lines


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m pipeline.image_scan", description=__doc__.splitlines()[0]
    )
    parser.add_argument("cdk_out", type=Path, help="the cloud assembly (the synth step's output)")
    parser.add_argument("--fail-on", choices=SEVERITIES[:4], default="CRITICAL")
    parser.add_argument(
        "--timeout-minutes", type=float, default=15.0, help="per image, for its scan to finish"
    )
    args = parser.parse_args(argv)
    try:
        roles = roles_by_account(
            required_env("IMAGE_SCAN_ROLE_ARNS", hint="the pipeline sets it")["IMAGE_SCAN_ROLE_ARNS"]
        )
        images = images_in(args.cdk_out)
        if not images:
            raise StepError(f"no container image in {args.cdk_out}/**/*.assets.json: is it the synth output?")
        failed = []
        clients: dict[tuple[str, str], Any] = {}
        for image in images:
            if image.account not in roles:
                raise StepError(f"no image-scan role for account {image.account} in IMAGE_SCAN_ROLE_ARNS")
            key = (image.account, image.region)
            if key not in clients:
                clients[key] = session_for(roles[image.account], image.region, "image-scan").client("ecr")
            status, counts = scan_result(clients[key], image, timeout_s=args.timeout_minutes * 60)
            summary = (
                ", ".join(f"{s.lower()} {counts[s]}" for s in SEVERITIES if counts.get(s)) or "no findings"
            )
            print(f"    {image.label}: {status}: {summary}", flush=True)
            if status != "COMPLETE":
                failed.append(f"{image.label}: scan {status}")
            elif fails(counts, args.fail_on):
                failed.append(image.label)
                for line in critical_findings(clients[key], image, args.fail_on):
                    print(f"      {line}", flush=True)
    except (StepError, BotoCoreError, ClientError) as error:
        print(f"ERROR: {error}", file=sys.stderr)
        return 1
    if failed:
        print(
            f"ERROR: {len(failed)} image(s) failed the {args.fail_on} gate: {'; '.join(failed)}",
            file=sys.stderr,
        )
        return 1
    print(f"==> {len(images)} image pushes scanned: none with {args.fail_on.lower()} findings", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
