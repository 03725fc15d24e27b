"""The repository explains itself: every relative link in every Markdown file resolves to a file (and, with
an anchor, to a heading of it) inside the repository, and nothing points outside it."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SKIPPED_DIRS = {".git", ".venv", "node_modules", "dist", "reports", ".local", ".cache", "cdk.out"}
LINK = re.compile(r"(?<!\!)\[[^\]]*\]\(([^)\s]+)(?:\s+\"[^\"]*\")?\)|!\[[^\]]*\]\(([^)\s]+)\)")
CODE = re.compile(r"```.*?```|`[^`\n]*`", re.DOTALL)


def markdown_files() -> list[Path]:
    try:  # the tracked files, where there is a git checkout (the pipeline's source is a zip)
        listed = subprocess.run(
            ["git", "ls-files", "--cached", "--others", "--exclude-standard", "*.md"],
            cwd=ROOT,
            capture_output=True,
            text=True,
            check=True,
        ).stdout.split()
        return sorted(ROOT / name for name in listed if (ROOT / name).is_file())
    except (OSError, subprocess.CalledProcessError):
        return sorted(
            path for path in ROOT.rglob("*.md") if not SKIPPED_DIRS & set(path.relative_to(ROOT).parts)
        )


def anchors(markdown: str) -> set[str]:
    """GitHub's heading anchors: lowercased, punctuation dropped, spaces to hyphens."""
    found = set()
    for heading in re.findall(r"^#{1,6}\s+(.+?)\s*$", CODE.sub("", markdown), flags=re.MULTILINE):
        slug = re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")
        found.add(slug)
    return found


def relative_links(markdown: str) -> list[str]:
    targets = []
    for match in LINK.finditer(CODE.sub("", markdown)):
        target = match.group(1) or match.group(2)
        if not re.match(r"^[a-z][a-z0-9+.-]*:", target):  # http:, https:, mailto: ...
            targets.append(target)
    return targets


FILES = markdown_files()


def test_there_are_docs_to_check() -> None:
    names = {path.relative_to(ROOT).as_posix() for path in FILES}
    assert {"README.md", "docs/design.md"} <= names


@pytest.mark.parametrize("path", FILES, ids=lambda p: p.relative_to(ROOT).as_posix())
def test_every_relative_link_resolves_inside_the_repository(path: Path) -> None:
    broken = []
    for target in relative_links(path.read_text(encoding="utf-8")):
        file_part, _, anchor = target.partition("#")
        resolved = (path.parent / file_part).resolve() if file_part else path
        if ROOT not in (resolved, *resolved.parents):
            broken.append(f"{target}: outside the repository")
        elif not resolved.exists():
            broken.append(f"{target}: no such file")
        elif (
            anchor
            and resolved.suffix == ".md"
            and anchor not in anchors(resolved.read_text(encoding="utf-8"))
        ):
            broken.append(f"{target}: no heading #{anchor}")
    assert not broken, f"{path.relative_to(ROOT)}: " + "; ".join(broken)


def test_a_link_outside_the_repository_is_caught(tmp_path: Path) -> None:
    assert relative_links("see [the seed](../shared/DESIGN.md) and [AWS](https://aws.amazon.com)") == [
        "../shared/DESIGN.md"
    ]
    assert relative_links("`[not a link](x.md)` and\n```\n[nor this](y.md)\n```") == []
    assert "the-feed-cache" in anchors("## The feed cache\n")


def test_nothing_refers_to_the_design_seed_outside_the_repository() -> None:
    offenders = []
    for path in ROOT.rglob("*"):
        if SKIPPED_DIRS & set(path.relative_to(ROOT).parts) or not path.is_file():
            continue
        if path.suffix not in {".py", ".md", ".js", ".mjs", ".ts", ".sh", ".yml", ".toml", ".json", ".html"}:
            continue
        text = path.read_text(encoding="utf-8", errors="replace")
        if "../shared/" in text or "DESIGN.md" in text:
            offenders.append(path.relative_to(ROOT).as_posix())
    assert offenders == [f"tests/{Path(__file__).name}"]
