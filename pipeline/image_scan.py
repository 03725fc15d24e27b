"""`python -m pipeline.image_scan CDK_OUT`: no image with an unexcused critical finding reaches a stage.

Reads every container image the cloud assembly publishes (the `dockerImages` of each `*.assets.json`:
repository and tag in each environment's bootstrap registry, and the asset's name), and for each one reads
ECR's scan, whichever the registry runs (`ecr_scanning` in stages/config.py):

- basic scanning (scan on push with `"basic"`, or the registry's default with `"account"`): an image
  without a scan gets one started (StartImageScan: free, once per image a day), so the gate works in an
  account whose registry nobody configured;
- enhanced scanning (Amazon Inspector, `"enhanced"` or the organization's own setup): the findings carry
  whether a fix exists, and an image Inspector keeps monitoring (`ACTIVE`) counts as scanned.

It waits for every scan, prints each image's counts by severity and its findings at `--fail-on` (CRITICAL)
or worse, and exits 1 when a finding there is neither covered by a live entry of the allowlist
(`pipeline/image_scan_allowlist.py`) nor, with enhanced scanning, without any fix (unless
`UNFIXABLE_FAILS`), or when an image has no usable scan: an image nobody scanned is not known to be free
of critical findings, so the gate fails closed and says what to change. Covered findings are listed with
their entry's expiry and reason; an expired entry covers nothing, and the step says so.

Environment: `IMAGE_SCAN_ROLE_ARNS`, the comma-separated ARNs of the environments' image-scan roles (one
per account; the account in each ARN picks the role for that account's registry). With
`REPORTS_BUCKET` and `PIPELINE_EXECUTION_ID`, the result (each image's scan state, counts and the lines
above) is also published as `runs/<execution id>/image-scan/image-scan.json`, for the prod approval's
page (`pipeline.approval`); with `REPORTS_DIR` instead, into that folder's same place.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from pipeline import image_scan_allowlist
from pipeline.aws import StepError, required_env, session_for
from pipeline.image_scan_allowlist import Allowed

SEVERITIES = ("CRITICAL", "HIGH", "MEDIUM", "LOW", "INFORMATIONAL", "UNDEFINED")
SCANNED = {"COMPLETE", "ACTIVE"}
"""Scan states with findings to read: a finished scan, or an image Inspector scanned and keeps monitoring."""
UNUSABLE = {
    "FAILED",
    "UNSUPPORTED_IMAGE",
    "FINDINGS_UNAVAILABLE",
    "SCAN_ELIGIBILITY_EXPIRED",
    "LIMIT_EXCEEDED",
    "IMAGE_ARCHIVED",
    "IMAGE_SIZE_EXCEEDED",
}
"""Final scan states without findings to trust."""
ALLOWLIST_FILE = "pipeline/image_scan_allowlist.py"
NEVER_STARTED_GRACE_S = 180.0
"""How long an image may stay without any scan state once StartImageScan was refused (a registry with
enhanced scanning whose rules leave the repository out) before the step gives up on it."""
HINTS = {
    "FAILED": "re-run the step later (ECR starts a basic scan of an image at most once a day)",
    "UNSUPPORTED_IMAGE": "ECR cannot scan this image's operating system or package manager: change its base "
    "image, or scan it another way and note that in the allowlist's module",
    "FINDINGS_UNAVAILABLE": "Inspector no longer monitors this image: lengthen Inspector's ECR re-scan "
    "duration (Inspector console, General settings), or rebuild the image",
    "SCAN_ELIGIBILITY_EXPIRED": "Inspector no longer monitors this image: lengthen Inspector's ECR re-scan "
    "duration (Inspector console, General settings), or rebuild the image",
}


@dataclass(frozen=True, order=True)
class Image:
    account: str
    region: str
    repository: str
    tag: str
    names: tuple[str, ...] = field(default=(), compare=False)
    """The CDK asset's display names (construct paths): one image can serve several, e.g. the backend's
    web and migration tasks."""

    @property
    def label(self) -> str:
        what = ", ".join(self.names) or self.repository
        return f"{what} ({self.tag[:12]}) in {self.account}/{self.region}"


@dataclass(frozen=True)
class Finding:
    """One vulnerability of one image, from basic or enhanced scanning alike."""

    id: str
    severity: str
    packages: tuple[str, ...]
    """Package names (no versions): what an allowlist entry's `package` is compared with."""
    detail: str
    """Packages with versions (and the fixed version, when known), for people."""
    link: str
    fix: str | None = None
    """Inspector's `fixAvailable` (YES, PARTIAL, NO); None with basic scanning, which does not know."""
    suppressed: bool = False
    """Inspector suppressed it (a suppression rule of the account or organization)."""


@dataclass
class Verdict:
    """What the gate made of one image's findings: the lines to print, and which of them fail it."""

    lines: list[str] = field(default_factory=list)
    failing: int = 0
    used: set[Allowed] = field(default_factory=set)


def images_in(cdk_out: Path) -> list[Image]:
    """Every (account, region, repository, tag) the assembly's asset manifests push an image to."""
    found: dict[tuple[str, str, str, str], set[str]] = {}
    for manifest in sorted(cdk_out.glob("**/*.assets.json")):
        for asset_id, asset in json.loads(manifest.read_text()).get("dockerImages", {}).items():
            name = asset.get("displayName") or f"asset {asset_id[:12]}"
            for key, destination in asset.get("destinations", {}).items():
                account = key.split("-", 1)[0]
                image = (
                    account,
                    destination["region"],
                    destination["repositoryName"],
                    destination["imageTag"],
                )
                found.setdefault(image, set()).add(name)
    return sorted(Image(*image, names=tuple(sorted(names))) for image, names in found.items())


def roles_by_account(text: str) -> dict[str, str]:
    roles = {}
    for arn in (part.strip() for part in text.split(",") if part.strip()):
        parts = arn.split(":")
        if len(parts) != 6 or parts[2] != "iam":
            raise StepError(f"IMAGE_SCAN_ROLE_ARNS: {arn!r} is not a role ARN")
        roles[parts[4]] = arn
    return roles


def at_or_above(fail_on: str) -> set[str]:
    """The severities the gate looks at: `fail_on` and every more severe one."""
    return set(SEVERITIES[: SEVERITIES.index(fail_on) + 1])


def scan_result(
    ecr: Any,
    image: Image,
    *,
    timeout_s: float,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
) -> tuple[str, str]:
    """(scan state, ECR's description of it) of one image, starting a basic scan if it has none, waiting
    for it. The state is one of `SCANNED` or `UNUSABLE`, or says why there is none."""
    ids = {"repositoryName": image.repository, "imageIds": [{"imageTag": image.tag}]}
    begun = clock()
    deadline = begun + timeout_s
    refused: str | None = None
    while True:
        detail = ecr.describe_images(**ids)["imageDetails"][0]
        scan = detail.get("imageScanStatus") or {}
        status, description = scan.get("status"), scan.get("description", "")
        if status in SCANNED or status in UNUSABLE:
            return status, description
        if status is None and refused is None:
            try:
                ecr.start_image_scan(repositoryName=image.repository, imageId={"imageTag": image.tag})
                refused = ""
            except ClientError as error:
                refused = f"{error.response['Error']['Code']}: {error.response['Error'].get('Message', '')}"
                if error.response["Error"]["Code"] == "LimitExceededException":
                    refused = ""  # scanned once today already: its state is on its way
                else:
                    print(f"    {image.label}: StartImageScan refused: {refused}", flush=True)
        if status is None and refused and clock() >= begun + NEVER_STARTED_GRACE_S:
            return "NOT SCANNED", (
                f"no scan and none can be started ({refused}): the registry's scanning configuration leaves "
                f"{image.repository} out. Set ecr_scanning to 'basic' or 'enhanced' for this account in "
                "stages/config.py, or add the repository to the account's own (e.g. the organization's "
                "Inspector) scanning rules"
            )
        if clock() >= deadline:
            return "TIMED OUT", f"{status or 'no scan'} after {timeout_s:.0f} s: re-run the step"
        sleep(10)


def _basic(finding: dict[str, Any]) -> Finding:
    attributes = {a["key"]: a.get("value", "") for a in finding.get("attributes", [])}
    name = attributes.get("package_name", "")
    return Finding(
        id=finding.get("name", "?"),
        severity=finding.get("severity", "UNDEFINED"),
        packages=(name,) if name else (),
        detail=f"{name or '?'} {attributes.get('package_version', '')}".strip(),
        link=finding.get("uri", ""),
    )


def _enhanced(finding: dict[str, Any]) -> Finding:
    details = finding.get("packageVulnerabilityDetails") or {}
    packages = details.get("vulnerablePackages") or []
    described = []
    for package in packages:
        text = f"{package.get('name', '?')} {package.get('version', '')}".strip()
        if package.get("fixedInVersion") and package["fixedInVersion"] != "NotAvailable":
            text += f" (fixed in {package['fixedInVersion']})"
        described.append(text)
    severity = finding.get("severity", "UNDEFINED")
    return Finding(
        id=details.get("vulnerabilityId") or finding.get("title", "?"),
        severity=severity if severity in SEVERITIES else "UNDEFINED",  # Inspector also says UNTRIAGED
        packages=tuple(p["name"] for p in packages if p.get("name")),
        detail=", ".join(described) or "?",
        link=details.get("sourceUrl")
        or ((finding.get("remediation") or {}).get("recommendation") or {}).get("url", ""),
        fix=finding.get("fixAvailable"),
        suppressed=finding.get("status") == "SUPPRESSED",
    )


def findings_of(ecr: Any, image: Image) -> list[Finding]:
    """Every finding of the image's scan: basic scanning's `findings` or Inspector's `enhancedFindings`
    (DescribeImageScanFindings returns the kind the registry runs); Inspector's closed findings left out."""
    found = []
    pages = ecr.get_paginator("describe_image_scan_findings").paginate(
        repositoryName=image.repository, imageId={"imageTag": image.tag}
    )
    for page in pages:
        scan = page.get("imageScanFindings") or {}
        found += [_basic(f) for f in scan.get("findings", [])]
        found += [_enhanced(f) for f in scan.get("enhancedFindings", []) if f.get("status") != "CLOSED"]
    return found


def counts_of(findings: Iterable[Finding]) -> dict[str, int]:
    return dict(Counter(f.severity for f in findings if not f.suppressed))


def judge(
    image: Image,
    findings: Iterable[Finding],
    *,
    fail_on: str,
    allowlist: tuple[Allowed, ...],
    today: date,
    unfixable_fails: bool,
) -> Verdict:
    """Each finding at `fail_on` or worse, as a line saying whether it fails the image and why not."""
    verdict = Verdict()
    for finding in sorted(findings, key=lambda f: (SEVERITIES.index(f.severity), f.id)):
        if finding.severity not in at_or_above(fail_on):
            continue
        what = f"{finding.severity} {finding.id} in {finding.detail}"
        entries = [e for e in allowlist if e.matches(finding.id, finding.packages, image.names)]
        live = [e for e in entries if e.live(today)]
        if live:
            entry = max(live, key=lambda e: e.expires)
            verdict.used.add(entry)
            verdict.lines.append(f"allowed  {what}: allowed until {entry.expires}: {entry.reason}")
        elif finding.suppressed:
            verdict.lines.append(f"skipped  {what}: suppressed in Amazon Inspector {finding.link}".rstrip())
        elif finding.fix == "NO" and not unfixable_fails:
            verdict.lines.append(
                f"no fix   {what}: no fixed version exists yet (listed, not failing) {finding.link}".rstrip()
            )
        else:
            verdict.failing += 1
            line = f"FAILS    {what} {finding.link}".rstrip()
            if entries:
                entry = max(entries, key=lambda e: e.expires)
                verdict.used.add(entry)
                line += (
                    f"\n             its allowlist entry expired on {entry.expires} ({entry.reason}): update the "
                    f"image, or if there is still no fix, give the entry a new expiry in {ALLOWLIST_FILE} "
                    f"(at most {image_scan_allowlist.MAX_DAYS_AHEAD} days ahead)"
                )
            verdict.lines.append(line)
    return verdict


def gate(
    ecr: Any,
    image: Image,
    *,
    fail_on: str,
    timeout_s: float,
    allowlist: tuple[Allowed, ...],
    today: date,
    unfixable_fails: bool,
    sleep: Callable[[float], None] = time.sleep,
    results: list[dict[str, Any]] | None = None,
) -> tuple[str | None, set[Allowed]]:
    """Scan one image and print what the gate made of it: (why it fails, or None; the entries it used).
    `results` gets the same, as one entry of `image-scan.json`."""
    status, description = scan_result(ecr, image, timeout_s=timeout_s, sleep=sleep)
    entry: dict[str, Any] = {
        "image": image.label,
        "names": list(image.names),
        "account": image.account,
        "region": image.region,
        "tag": image.tag,
        "status": status,
        "description": description,
        "counts": {},
        "lines": [],
        "failure": None,
    }
    if results is not None:
        results.append(entry)
    if status not in SCANNED:
        print(
            f"    {image.label}: CANNOT SCAN: {status}" + (f": {description}" if description else ""),
            flush=True,
        )
        if status in HINTS:
            print(f"      {HINTS[status]}", flush=True)
        entry["failure"] = f"{image.label}: cannot scan ({status})"
        entry["lines"] = [HINTS[status]] if status in HINTS else []
        return entry["failure"], set()
    findings = findings_of(ecr, image)
    counts = counts_of(findings)
    summary = ", ".join(f"{s.lower()} {counts[s]}" for s in SEVERITIES if counts.get(s)) or "no findings"
    print(f"    {image.label}: {status}: {summary}", flush=True)
    verdict = judge(
        image, findings, fail_on=fail_on, allowlist=allowlist, today=today, unfixable_fails=unfixable_fails
    )
    for line in verdict.lines:
        print(f"      {line}", flush=True)
    failure = f"{image.label}: {verdict.failing} {fail_on.lower()} finding(s)" if verdict.failing else None
    entry.update(counts=counts, lines=verdict.lines, failure=failure)
    return failure, verdict.used


RESULT_FILE = "image-scan/image-scan.json"
"""Where the result goes in a run folder (`runs/<execution id>/` of the reports bucket)."""


def result(
    images: list[dict[str, Any]], *, fail_on: str, passed: bool, problem: str | None, unused: list[str]
) -> dict[str, Any]:
    """What `image-scan.json` holds: the verdict, then each image's scan."""
    return {
        "passed": passed,
        "failOn": fail_on,
        "problem": problem,
        "images": images,
        "unusedAllowlistEntries": unused,
        "allowlist": ALLOWLIST_FILE,
    }


def publish(data: dict[str, Any], env: Mapping[str, str]) -> str | None:
    """Write `image-scan.json` where the approval page reads it; None when no place is set."""
    run_id = env.get("PIPELINE_EXECUTION_ID", "").strip()
    if not run_id:
        return None
    body = json.dumps(data, indent=1) + "\n"
    if env.get("REPORTS_DIR"):
        path = Path(env["REPORTS_DIR"]) / "runs" / run_id / RESULT_FILE
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(body)
        return str(path)
    if env.get("REPORTS_BUCKET"):
        region = env.get("AWS_REGION") or env.get("AWS_DEFAULT_REGION") or "us-west-2"
        s3 = session_for(None, region, "image-scan-result").client("s3")
        key = f"runs/{run_id}/{RESULT_FILE}"
        s3.put_object(
            Bucket=env["REPORTS_BUCKET"], Key=key, Body=body.encode(), ContentType="application/json"
        )
        return f"s3://{env['REPORTS_BUCKET']}/{key}"
    return None


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
    allowlist = image_scan_allowlist.ALLOWLIST
    today = image_scan_allowlist.today_utc()
    failed: list[str] = []
    used: set[Allowed] = set()
    results: list[dict[str, Any]] = []
    code = run_gate(args, allowlist, today, failed, used, results)
    unused = [entry.finding for entry in allowlist if entry not in used]
    problem = None if code == 0 else "; ".join(failed)
    try:
        where = publish(
            result(results, fail_on=args.fail_on, passed=code == 0, problem=problem, unused=unused),
            os.environ,
        )
    except (BotoCoreError, ClientError, OSError) as error:
        print(f"ERROR: publishing the scan's result failed: {error}", file=sys.stderr)
        return 1
    if where:
        print(f"==> The scan's result: {where}", flush=True)
    return code


def run_gate(
    args: argparse.Namespace,
    allowlist: tuple[Allowed, ...],
    today: date,
    failed: list[str],
    used: set[Allowed],
    results: list[dict[str, Any]],
) -> int:
    """The gate over every image of the assembly: 0 when it holds, 1 otherwise (printed as it goes)."""
    try:
        roles = roles_by_account(
            required_env("IMAGE_SCAN_ROLE_ARNS", hint="the pipeline sets it")["IMAGE_SCAN_ROLE_ARNS"]
        )
        images = images_in(args.cdk_out)
        if not images:
            raise StepError(f"no container image in {args.cdk_out}/**/*.assets.json: is it the synth output?")
        clients: dict[tuple[str, str], Any] = {}
        for image in images:
            if image.account not in roles:
                raise StepError(f"no image-scan role for account {image.account} in IMAGE_SCAN_ROLE_ARNS")
            key = (image.account, image.region)
            if key not in clients:
                clients[key] = session_for(roles[image.account], image.region, "image-scan").client("ecr")
            failure, allowed = gate(
                clients[key],
                image,
                fail_on=args.fail_on,
                timeout_s=args.timeout_minutes * 60,
                allowlist=allowlist,
                today=today,
                unfixable_fails=image_scan_allowlist.UNFIXABLE_FAILS,
                results=results,
            )
            used |= allowed
            if failure:
                failed.append(failure)
    except (StepError, BotoCoreError, ClientError) as error:
        print(f"ERROR: {error}", file=sys.stderr)
        failed.append(f"the scan could not run: {error}")
        return 1
    for entry in allowlist:
        if entry not in used:
            state = "expired" if not entry.live(today) else f"until {entry.expires}"
            print(f"    allowlist entry {entry.finding} ({state}) matched no finding: remove it?", flush=True)
    if failed:
        print(
            f"ERROR: {len(failed)} image(s) failed the {args.fail_on} gate:\n"
            + "".join(f"  - {failure}\n" for failure in failed)
            + "A finding: update the image (its base image or the package) so that it goes; if no fix exists "
            f"yet, add an entry with its id, a reason and an expiry to {ALLOWLIST_FILE}. An image that "
            "cannot be scanned: see its line above.",
            file=sys.stderr,
        )
        return 1
    print(
        f"==> {len(images)} image pushes scanned: no {args.fail_on.lower()} finding without an allowance",
        flush=True,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
