"""`python -m pipeline.approval`: the one page the prod approval's link opens.

Before the prod manual approval, after `ProdChanges`, this step gathers what the run has published in its
folder of the reports bucket (`runs/<execution id>/`) and renders one self-contained page,
`approval.html`, beside them. Each section has its status at the top of the page and in its heading:

1. **the capacity review** of the staging load test (`summary.json`, `capacity.json`; the whole
   `capacity.html` folded in): thresholds held, scale-out, the recommended prod capacity;
2. **the regression verdict** against the last accepted release (`regression.json`, written by the load
   test's regression gate; absent: "no regression verdict");
3. **the prod change report** (`changes/changes.json`, `pipeline.prod_changes`; `changes.html` folded in);
4. **the image scan** (`image-scan/image-scan.json`, `pipeline.image_scan`);
5. **permission broadening**: the IAM statements and security-group rules the change report finds
   (CDK Pipelines' `ConfirmPermissionsBroadening` has already asked, before this page, when it found any).

A missing file is a section that says so (its status `missing`), never a failed step: the page shows what
there is. The renderer (`render`) is pure: a folder in, one HTML page out; `main` fetches the folder and
publishes the page (`REPORTS_BUCKET` and `PIPELINE_EXECUTION_ID`; `REPORTS_DIR` in a rehearsal).
"""

from __future__ import annotations

import argparse
import html
import json
import os
import sys
import tempfile
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from pipeline.aws import session_for
from pipeline.commands import APPROVAL_PAGE, CHANGES_PAGE, REVIEW_PAGE, console_object_url

SUMMARY = "summary.json"
CAPACITY = "capacity.json"
REGRESSION = "regression.json"
CHANGES = CHANGES_PAGE.rsplit("/", 1)[0] + "/changes.json"
IMAGE_SCAN = "image-scan/image-scan.json"
INPUTS = (SUMMARY, CAPACITY, REVIEW_PAGE, REGRESSION, CHANGES, CHANGES_PAGE, IMAGE_SCAN)
"""Every file of the run folder the page reads (paths relative to `runs/<execution id>/`)."""

PASS, WARN, FAIL, MISSING = "pass", "review", "FAIL", "missing"
"""A section's status: all good; a person should look (e.g. broadened permissions); failed; not there."""
COLORS = {PASS: "#060", WARN: "#a60", FAIL: "#a00", MISSING: "#666"}
Link = Callable[[str], str]
"""A run-folder path -> the URL that opens it (the S3 console's page in AWS, a relative path locally)."""


@dataclass
class Section:
    key: str
    title: str
    status: str
    headline: str
    body: str = ""
    """HTML."""
    full: str | None = None
    """A whole report page to fold in (its HTML), if there is one."""
    link: str | None = None


# --- reading the run folder ------------------------------------------------------------------------
def _json(folder: Path, name: str) -> dict[str, Any] | None:
    path = folder / name
    if not path.is_file():
        return None
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except ValueError:
        return {"_unreadable": f"{name} is not valid JSON"}
    return data if isinstance(data, dict) else {"_unreadable": f"{name} is not a JSON object"}


def _text(folder: Path, name: str) -> str | None:
    path = folder / name
    return path.read_text(encoding="utf-8", errors="replace") if path.is_file() else None


def _e(value: Any) -> str:
    return html.escape(str(value))


def _table(rows: list[list[Any]]) -> str:
    if len(rows) < 2:
        return ""
    head, *body = rows
    cells = "".join(f"<th>{_e(c)}</th>" for c in head)
    lines = "".join("<tr>" + "".join(f"<td>{_e(c)}</td>" for c in row) + "</tr>" for row in body)
    return f"<table><tr>{cells}</tr>{lines}</table>"


def _list(items: list[str]) -> str:
    return "<ul>" + "".join(f"<li>{_e(i)}</li>" for i in items) + "</ul>" if items else ""


# --- the sections ------------------------------------------------------------------------------------
def capacity_section(folder: Path, link: Link) -> Section:
    summary, figures = _json(folder, SUMMARY), _json(folder, CAPACITY)
    section = Section("capacity", "Capacity review (staging load test)", MISSING, "", link=None)
    if summary is None:
        section.headline = "no load-test result in this run (summary.json is missing): did the load test run?"
        return section
    if "_unreadable" in summary:
        section.status, section.headline = FAIL, summary["_unreadable"]
        return section
    failed, total = summary.get("thresholds_failed", 0), summary.get("thresholds_total", 0)
    if not summary.get("passed"):
        section.status = FAIL
        section.headline = (
            f"{failed} of {total} thresholds missed"
            if failed
            else f"the run itself failed: {summary.get('problem') or 'see summary.txt'}"
        )
    else:
        section.status = PASS
        section.headline = (
            f"all {total} thresholds held (profile {summary.get('profile')}, shape {summary.get('shape')})"
        )
    missed = [t.get("explanation", "") for t in summary.get("thresholds", []) if t.get("status") == "fail"]
    aggregated = summary.get("aggregated") or {}
    facts = []
    if aggregated:
        facts.append(
            f"{aggregated.get('requests')} requests, {aggregated.get('failure_ratio', 0):.2%} failed, "
            f"{aggregated.get('rps', 0):.1f} req/s, p95 {aggregated.get('p95_ms', 0):.0f} ms"
        )
    if figures is None:
        if section.status == PASS:
            section.status = WARN
        section.headline += "; the capacity review was not written (capacity.json is missing)"
    elif "_unreadable" not in figures:
        scale = figures.get("scale_out") or {}
        if scale.get("verdict"):
            facts.append(f"scale-out: {scale['verdict']}")
        recommendation = figures.get("recommendation")
        if recommendation:
            monthly = recommendation.get("monthly_usd") or {}
            facts.append(
                f"recommended prod capacity: {recommendation.get('min_tasks')}-{recommendation.get('max_tasks')} "
                f"tasks, Aurora {recommendation.get('aurora_min_acu')}-{recommendation.get('aurora_max_acu')} "
                "ACU"
                + (
                    f", ${monthly['baseline']['fargate']:.0f}/month at the minimum (Fargate)"
                    if isinstance(monthly.get("baseline"), dict) and "fargate" in monthly["baseline"]
                    else ""
                )
            )
        if figures.get("missing"):
            facts += [f"not measured: {m}" for m in figures["missing"]]
    page = _text(folder, REVIEW_PAGE)
    section.body = _list(facts) + (f"<p>Missed:</p>{_list(missed)}" if missed else "")
    section.full = page
    section.link = link(REVIEW_PAGE) if page is not None else None
    return section


def regression_section(folder: Path, link: Link) -> Section:
    data = _json(folder, REGRESSION)
    section = Section("regression", "Regression verdict (vs the last accepted release)", MISSING, "")
    if data is None:
        section.headline = "no regression verdict: this run's load test wrote no regression.json"
        return section
    if "_unreadable" in data:
        section.status, section.headline = FAIL, data["_unreadable"]
        return section
    headline = str(data.get("headline") or "")
    if not data.get("comparable", True):
        section.status = PASS
        section.headline = headline or f"no comparable baseline: {data.get('reason', '')}"
    elif data.get("passed") is False:
        section.status = FAIL
        section.headline = headline or "a metric regressed"
    else:
        section.status = PASS
        section.headline = headline or "no regression"
    rows: list[list[Any]] = [["Verdict", "What"]]
    order = {"regressed": 0, "improved": 1}
    for verdict in sorted(data.get("verdicts") or [], key=lambda v: order.get(str(v.get("verdict")), 2)):
        if verdict.get("verdict") in ("regressed", "improved"):
            rows.append(
                [str(verdict.get("verdict")).upper(), verdict.get("explanation") or verdict.get("label")]
            )
    counts = data.get("counts") or {}
    summary = ", ".join(f"{n} {k}" for k, n in counts.items()) if counts else ""
    baseline = data.get("baseline") or {}
    section.body = (
        (
            f"<p>Baseline: run {_e(baseline.get('run_id'))} ({_e(baseline.get('started_at'))}).</p>"
            if baseline
            else ""
        )
        + (f"<p>{_e(summary)}</p>" if summary else "")
        + _table(rows)
    )
    if (folder / REVIEW_PAGE).is_file():
        section.link = link(REVIEW_PAGE)  # the capacity review shows the side-by-side charts
    return section


def changes_section(folder: Path, link: Link) -> Section:
    data = _json(folder, CHANGES)
    section = Section("changes", "Prod change report (since the last release)", MISSING, "")
    if data is None:
        section.headline = (
            "no prod change report in this run (changes/changes.json is missing): did ProdChanges run?"
        )
        return section
    if "_unreadable" in data:
        section.status, section.headline = FAIL, data["_unreadable"]
        return section
    blocking = data.get("blocking") or []
    stacks = [s for s in data.get("stacks", []) if s.get("status") not in ("unchanged",)]
    if blocking:
        section.status = FAIL
        section.headline = f"DANGER: {len(blocking)} stateful prod resource(s) would be replaced or removed"
    elif data.get("firstRelease"):
        section.status = PASS
        section.headline = "first release: nothing to compare with"
    else:
        section.status = PASS
        changed = [s for s in stacks if s.get("status") != "new to this record"]
        section.headline = (
            f"{len(changed)} stack(s) change; no stateful prod resource replaced or removed without an allowance"
            if changed
            else "nothing changes in prod"
        )
    rows: list[list[Any]] = [["Stack", "Status", "+", "-", "~", "Replaced"]]
    for stack in stacks:
        replaced = ", ".join(r.get("path") or r.get("logicalId", "") for r in stack.get("replaced", []))
        rows.append(
            [
                f"{stack.get('stage')}/{stack.get('stack')}",
                stack.get("status"),
                stack.get("added", ""),
                stack.get("removed", ""),
                stack.get("modified", ""),
                replaced or "-",
            ]
        )
    stateful = [
        f"{s.get('verdict', '').upper()}{' (allowed)' if s.get('allowed') else ''}: {s.get('stage')}/"
        f"{s.get('stack')} {s.get('path') or s.get('logicalId')} ({s.get('type')}) {s.get('change')}"
        for s in data.get("stateful", [])
    ]
    parameters = [
        [f"{p.get('stage')}/{p.get('stack')}", p.get("what"), p.get("old") or "-", p.get("new") or "-"]
        for p in data.get("parameters", [])
    ]
    page = _text(folder, CHANGES_PAGE)
    section.body = (
        f"<p>From {_e((data.get('base') or {}).get('label', '?'))} to {_e((data.get('head') or {}).get('label', '?'))}.</p>"
        + _table(rows)
        + (f"<p>Stateful resources:</p>{_list(stateful)}" if stateful else "")
        + (
            f"<p>Release parameters:</p>{_table([['Stack', 'What', 'Before', 'After'], *parameters])}"
            if parameters
            else ""
        )
    )
    section.full = page
    section.link = link(CHANGES_PAGE) if page is not None else None
    return section


def image_scan_section(folder: Path, link: Link) -> Section:
    data = _json(folder, IMAGE_SCAN)
    section = Section("image-scan", "Image scan (ECR findings of this run's images)", MISSING, "")
    if data is None:
        section.headline = (
            "no image scan result in this run (image-scan/image-scan.json is missing): the scan runs in the "
            "pipeline before staging, where the images are built"
        )
        return section
    if "_unreadable" in data:
        section.status, section.headline = FAIL, data["_unreadable"]
        return section
    images = data.get("images") or []
    allowed = sum(1 for i in images for line in i.get("lines", []) if str(line).startswith("allowed"))
    if not data.get("passed"):
        section.status = FAIL
        section.headline = (
            f"the {data.get('failOn', 'CRITICAL')} gate failed: {data.get('problem') or 'see the step log'}"
        )
    else:
        section.status = WARN if allowed else PASS
        section.headline = (
            f"{len(images)} image push(es) scanned: no {str(data.get('failOn', 'CRITICAL')).lower()} finding "
            "without an allowance" + (f"; {allowed} finding(s) allowed by the allowlist" if allowed else "")
        )
    rows: list[list[Any]] = [["Image", "Scan", "Findings", "At the gate"]]
    for image in images:
        counts = ", ".join(f"{k.lower()} {v}" for k, v in (image.get("counts") or {}).items()) or "none"
        rows.append(
            [image.get("image"), image.get("status"), counts, "\n".join(image.get("lines") or []) or "-"]
        )
    unused = data.get("unusedAllowlistEntries") or []
    section.body = _table(rows) + (
        f"<p>Allowlist entries that matched nothing ({_e(data.get('allowlist', ''))}): {_e(', '.join(unused))}</p>"
        if unused
        else ""
    )
    return section


def broadening_section(folder: Path, link: Link) -> Section:
    data = _json(folder, CHANGES)
    section = Section("permissions", "Permission broadening (IAM and security groups)", MISSING, "")
    if data is None or "_unreadable" in data:
        section.headline = "not known: the prod change report, which lists them, is missing"
        return section
    security = data.get("security") or []
    broadened = [s for s in security if s.get("permissionsBroadened")]
    if data.get("firstRelease"):
        section.status = WARN
        section.headline = (
            "first release: every IAM statement and security-group rule is new; ConfirmPermissionsBroadening "
            "asked for a confirmation of all of them before this approval"
        )
    elif broadened:
        section.status = WARN
        where = ", ".join(f"{s.get('stage')}/{s.get('stack')}" for s in broadened)
        section.headline = (
            f"{len(broadened)} stack(s) broaden permissions ({where}): ConfirmPermissionsBroadening asked "
            "for a confirmation before this approval; check them below"
        )
    elif security:
        section.status = PASS
        section.headline = f"IAM or security-group changes in {len(security)} stack(s), none broadening"
    else:
        section.status = PASS
        section.headline = "no IAM statement, managed policy or security-group rule is added or removed"
    parts = []
    for item in security:
        parts.append(
            f"<h4>{_e(item.get('stage'))}/{_e(item.get('stack'))}"
            f"{' (permissions broadened)' if item.get('permissionsBroadened') else ''}</h4>"
        )
        for table in (item.get("iamStatements"), item.get("managedPolicies"), item.get("securityGroupRules")):
            if table:
                parts.append(_table(table))
    section.body = "".join(parts)
    section.link = link(CHANGES_PAGE) if (folder / CHANGES_PAGE).is_file() else None
    return section


def sections(folder: Path, link: Link) -> list[Section]:
    return [
        capacity_section(folder, link),
        regression_section(folder, link),
        changes_section(folder, link),
        image_scan_section(folder, link),
        broadening_section(folder, link),
    ]


def overall(found: list[Section]) -> str:
    statuses = {s.status for s in found}
    if FAIL in statuses:
        return FAIL
    if statuses & {WARN, MISSING}:
        return WARN
    return PASS


def _badge(status: str) -> str:
    return f"<span class='badge' style='background:{COLORS[status]}'>{_e(status)}</span>"


def render(folder: Path, *, run_id: str, link: Link, title: str = "Release to prod: approval") -> str:
    """The approval page of the run folder `folder`: every section's status first, then each section."""
    found = sections(folder, link)
    verdict = overall(found)
    words = {
        PASS: "Every check holds.",
        WARN: "Nothing failed; look at the sections marked review or missing before approving.",
        FAIL: "Something failed: do not approve this release without reading the failed section.",
    }[verdict]
    rows = "".join(
        f"<tr><td>{_badge(s.status)}</td><td><a href='#{s.key}'>{_e(s.title)}</a></td><td>{_e(s.headline)}</td></tr>"
        for s in found
    )
    parts = [
        "<!doctype html><html><head><meta charset='utf-8'>",
        f"<title>{_e(title)}</title><style>",
        "body{font-family:system-ui,sans-serif;margin:2em;max-width:90em}table{border-collapse:collapse;margin:.5em 0}",
        "td,th{border:1px solid #ccc;padding:.25em .5em;text-align:left;vertical-align:top;white-space:pre-wrap}",
        ".badge{color:#fff;border-radius:.3em;padding:.1em .5em;font-weight:bold;white-space:nowrap}",
        "iframe{width:100%;height:80vh;border:1px solid #ccc}section{margin-top:2em}",
        "</style></head><body>",
        f"<h1>{_e(title)}</h1>",
        f"<p>Run {_e(run_id)}. {_badge(verdict)} {_e(words)}</p>",
        f"<table><tr><th>Status</th><th>Check</th><th>Result</th></tr>{rows}</table>",
    ]
    for section in found:
        parts.append(f"<section id='{section.key}'><h2>{_badge(section.status)} {_e(section.title)}</h2>")
        parts.append(f"<p><b>{_e(section.headline)}</b></p>{section.body}")
        if section.link:
            parts.append(f"<p><a href='{_e(section.link)}'>Open the full report on its own</a></p>")
        if section.full is not None:
            parts.append(
                f"<details><summary>The full report, here</summary><iframe sandbox title='{_e(section.title)}' "
                f"srcdoc='{html.escape(section.full, quote=True)}'></iframe></details>"
            )
        parts.append("</section>")
    parts.append("</body></html>\n")
    return "\n".join(parts)


# --- fetching and publishing ---------------------------------------------------------------------------
def fetch_s3(s3: Any, bucket: str, run_id: str, into: Path) -> list[str]:
    """Download the run folder's inputs that exist; returns the missing ones (S3 answers 404 for them:
    the step may list `runs/`)."""
    missing = []
    for name in INPUTS:
        target = into / name
        target.parent.mkdir(parents=True, exist_ok=True)
        try:
            s3.download_file(bucket, f"runs/{run_id}/{name}", str(target))
        except ClientError as error:
            if error.response["Error"]["Code"] not in ("404", "NoSuchKey"):
                raise
            missing.append(name)
    return missing


def main(argv: list[str] | None = None, *, env: Mapping[str, str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m pipeline.approval", description=__doc__.splitlines()[0])
    parser.parse_args(argv)
    settings = dict(env if env is not None else os.environ)
    run_id = settings.get("PIPELINE_EXECUTION_ID", "").strip()
    if not run_id:
        print(
            "ERROR: PIPELINE_EXECUTION_ID is not set (the pipeline passes its execution id)", file=sys.stderr
        )
        return 2
    try:
        if settings.get("REPORTS_DIR"):
            folder = Path(settings["REPORTS_DIR"]) / "runs" / run_id
            folder.mkdir(parents=True, exist_ok=True)
            page = folder / APPROVAL_PAGE
            page.write_text(render(folder, run_id=run_id, link=lambda name: name), encoding="utf-8")
            print(f"==> Approval page: {page}", flush=True)
            return 0
        if settings.get("REPORTS_BUCKET"):
            bucket = settings["REPORTS_BUCKET"]
            region = settings.get("AWS_REGION") or settings.get("AWS_DEFAULT_REGION") or "us-west-2"
            s3 = session_for(None, region, "approval-page").client("s3")
            with tempfile.TemporaryDirectory(prefix="approval-") as scratch:
                missing = fetch_s3(s3, bucket, run_id, Path(scratch))
                for name in missing:
                    print(f"    not in the run folder: {name}", flush=True)

                def console(name: str) -> str:
                    return console_object_url(region, bucket, f"runs/{run_id}/{name}")

                body = render(Path(scratch), run_id=run_id, link=console).encode()
            key = f"runs/{run_id}/{APPROVAL_PAGE}"
            s3.put_object(Bucket=bucket, Key=key, Body=body, ContentType="text/html; charset=utf-8")
            print(f"==> Approval page: {console_object_url(region, bucket, key)}", flush=True)
            return 0
    except (BotoCoreError, ClientError, OSError) as error:
        print(f"ERROR: the approval page could not be made: {error}", file=sys.stderr)
        return 2
    print("ERROR: neither REPORTS_BUCKET nor REPORTS_DIR is set: nowhere to publish", file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main())
