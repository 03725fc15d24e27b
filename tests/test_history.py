"""A history people can scan (docs/conventions.md, "Commits"): every commit not yet pushed has a subject of
at most 72 characters, a blank line, and a body that says why.

Skips itself where there is no `.git` (the pipeline's source is a zip) or where the history it would read is
not there (a shallow clone); never judges history already pushed.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
RULE_SINCE = "f5750472c4405345a1a6f250b14f2864f7028d88"
"""The last commit written before the rule (docs/conventions.md): without an upstream, what comes after it."""
MAX_SUBJECT = 72


def git(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["git", *args], cwd=ROOT, capture_output=True, text=True, check=False)


def problems(message: str) -> list[str]:
    """What breaks the rule in one commit message (empty: it follows it)."""
    lines = message.rstrip("\n").split("\n")
    subject, rest = lines[0], lines[1:]
    found = []
    if len(subject) > MAX_SUBJECT:
        found.append(f"subject has {len(subject)} characters (at most {MAX_SUBJECT})")
    if not subject.strip():
        found.append("empty subject")
    if rest and rest[0].strip():
        found.append("no blank line after the subject")
    if not any(line.strip() for line in rest):
        found.append("no body saying why")
    return found


def unpushed_range() -> str:
    if not (ROOT / ".git").exists() or shutil.which("git") is None:
        pytest.skip("no .git here (the pipeline's source is a zip): no history to check")
    upstream = git("rev-parse", "--verify", "--quiet", "@{upstream}")
    if upstream.returncode == 0:
        return f"{upstream.stdout.strip()}..HEAD"
    if git("cat-file", "-e", f"{RULE_SINCE}^{{commit}}").returncode != 0:
        pytest.skip(f"{RULE_SINCE[:7]} is not in this clone (shallow?): nothing to compare with")
    return f"{RULE_SINCE}..HEAD"


def test_every_new_commit_has_a_short_subject_and_a_body() -> None:
    listed = git("log", "--no-merges", "--format=%H%x00%B%x1e", unpushed_range())
    assert listed.returncode == 0, listed.stderr
    broken = []
    for record in filter(None, (r.strip("\n") for r in listed.stdout.split("\x1e"))):
        commit, message = record.split("\x00", 1)
        found = problems(message)
        if found:
            broken.append(f"{commit[:7]} {message.splitlines()[0][:60]!r}: {', '.join(found)}")
    assert not broken, "commits that break docs/conventions.md, 'Commits':\n" + "\n".join(broken)


@pytest.mark.parametrize(
    ("message", "expected"),
    [
        ("Grant both connection prefixes to the source role\n\nBecause IAM matches the prefix.\n", []),
        ("x" * 73 + "\n\nwhy\n", ["subject has 73 characters (at most 72)"]),
        ("Fix it\n", ["no body saying why"]),
        ("Fix it\nbecause\n", ["no blank line after the subject"]),
    ],
    ids=["follows the rule", "long subject", "no body", "no blank line"],
)
def test_the_rule(message: str, expected: list[str]) -> None:
    assert problems(message) == expected
