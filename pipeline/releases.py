"""The record of the release that last reached prod: `python -m pipeline.releases record CDK_OUT`.

The pipeline's `RecordRelease` step runs after the prod stage deployed and its smoke test passed, and
stores in the reports bucket, under `releases/prod/<execution id>/` and again under `releases/prod/latest/`
(whose older files are removed):

    release.json               what the release was: commit, pipeline execution id, time, the image and
                               file asset hashes, the prod stacks, and every file below (size, sha256)
    assembly/manifest.json     the synth step's cloud assembly, trimmed to the prod Stage: its nested
    assembly/assembly-Prod/    assembly (templates, asset manifests, and the metadata that carries the
                               cdk-nag acknowledgments), no asset folders (about 0.5 MB)
    loadtest/                  the staging load test's run folder, as that step published it (`runs/<id>/`)
    changes/                   the prod change report that was approved (`runs/<id>/changes/`), if any

`releases/` is outside the `runs/` prefix that the bucket's lifecycle rule expires, so the record stays;
each release is kept under its execution id, and `latest/` is the copy readers take. Its `release.json`
is written last and lists every file with its hash, so a reader can tell a complete record from one a
failed step left half-written (`fetch_latest` refuses the latter).

Readers: the `ProdChanges` step before the prod approval (`pipeline.prod_changes`) compares this run's
prod templates with `assembly/`. The same step also adds the release's load test to the regression gate's
baselines (`baseline/<target>/<profile>/<shape>/` of the bucket, `pipeline.baseline`), which the next
runs' load tests are compared with.

Where: with `RELEASES_DIR`, a local folder stands in for `s3://REPORTS_BUCKET/releases/prod/` (`make
rehearse`), and `REPORTS_DIR` for the bucket's `runs/`; else `REPORTS_BUCKET`, with the step's own
credentials. Settings: `PIPELINE_EXECUTION_ID`, `COMMIT_ID` (the source action's commit; `git rev-parse
HEAD` when unset and there is a .git).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Protocol

from botocore.exceptions import BotoCoreError, ClientError

from loadtests.regression.baseline import BaselineError
from loadtests.regression.metrics import MetricsError
from pipeline.aws import StepError, session_for
from pipeline.baseline import Baselines
from pipeline.baseline import store_from_env as baseline_store_from_env
from pipeline.commands import RELEASES_PREFIX
from pipeline.review import content_type

STAGE = "Prod"
"""The Stage whose releases are recorded (its id in the cloud assembly: `assembly-Prod`)."""
PREFIX = RELEASES_PREFIX
"""Where the records live in the reports bucket: outside `runs/`, which expires."""
LATEST = "latest"
RELEASE_FILE = "release.json"
FORMAT = 1
ASSEMBLY = "assembly"
LOADTEST = "loadtest"
CHANGES = "changes"
RUNS = "runs/"
"""The load-test step's run folders (`runs/<execution id>/`), and the change report's beside them."""


class ReleaseError(StepError):
    """The record cannot be made or read; the message says why and what to do."""


def say(message: str) -> None:
    print(f"==> {message}", flush=True)


# --- the assembly --------------------------------------------------------------------------------------
def stage_assembly(cdk_out: Path, stage: str = STAGE) -> tuple[str, dict[str, Any]]:
    """(artifact id, artifact) of the Stage's nested assembly in `cdk_out`'s manifest."""
    manifest_path = cdk_out / "manifest.json"
    if not manifest_path.exists():
        raise ReleaseError(f"{cdk_out} is not a cloud assembly (no manifest.json): run `make synth` first")
    manifest = json.loads(manifest_path.read_text())
    for artifact_id, artifact in manifest.get("artifacts", {}).items():
        properties = artifact.get("properties", {})
        if artifact.get("type") == "cdk:cloud-assembly" and (
            properties.get("displayName") == stage or properties.get("directoryName") == f"assembly-{stage}"
        ):
            return artifact_id, artifact
    raise ReleaseError(f"{cdk_out} has no {stage} Stage (no assembly-{stage} in its manifest.json)")


def copy_stage_assembly(cdk_out: Path, destination: Path, stage: str = STAGE) -> Path:
    """`destination` becomes a cloud assembly of the Stage alone: a manifest naming only its nested
    assembly, and that folder's files (templates, asset manifests, metadata); no asset folders."""
    artifact_id, artifact = stage_assembly(cdk_out, stage)
    manifest = json.loads((cdk_out / "manifest.json").read_text())
    directory = artifact["properties"]["directoryName"]
    destination.mkdir(parents=True, exist_ok=True)
    trimmed = {"version": manifest["version"], "artifacts": {artifact_id: artifact}}
    (destination / "manifest.json").write_text(json.dumps(trimmed, indent=1) + "\n")
    nested = destination / directory
    nested.mkdir()
    for path in sorted((cdk_out / directory).iterdir()):
        if path.is_file():  # the nested assembly's assets live in the top-level folder; none are copied
            shutil.copyfile(path, nested / path.name)
    return destination


def assets(nested: Path) -> dict[str, list[dict[str, str]]]:
    """The release's image and file assets by hash, with where they were published (asset manifests)."""
    images: list[dict[str, str]] = []
    files: list[dict[str, str]] = []
    for path in sorted(nested.glob("*.assets.json")):
        manifest = json.loads(path.read_text())
        for kind, found, where in (
            ("dockerImages", images, ("repositoryName", "imageTag")),
            ("files", files, ("bucketName", "objectKey")),
        ):
            for digest, asset in manifest.get(kind, {}).items():
                for destination in asset.get("destinations", {}).values():
                    entry = {
                        "asset": digest,
                        "stack": path.name.removesuffix(".assets.json"),
                        where[0]: str(destination.get(where[0], "")),
                        where[1]: str(destination.get(where[1], "")),
                    }
                    if entry not in found:
                        found.append(entry)
    return {"images": images, "files": files}


def stacks(nested: Path) -> list[dict[str, str]]:
    manifest = json.loads((nested / "manifest.json").read_text())
    return [
        {
            "stack": artifact.get("displayName", artifact_id),
            "stackName": artifact["properties"].get("stackName", artifact_id),
            "template": artifact["properties"]["templateFile"],
            "environment": artifact.get("environment", ""),
        }
        for artifact_id, artifact in manifest.get("artifacts", {}).items()
        if artifact.get("type") == "aws:cloudformation:stack"
    ]


def sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as file:
        for block in iter(lambda: file.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def file_list(folder: Path) -> dict[str, dict[str, Any]]:
    """Every file of a record folder but release.json: relative path -> size and sha256."""
    return {
        path.relative_to(folder).as_posix(): {"size": path.stat().st_size, "sha256": sha256(path)}
        for path in sorted(folder.rglob("*"))
        if path.is_file() and path.relative_to(folder).as_posix() != RELEASE_FILE
    }


def build(
    cdk_out: Path,
    folder: Path,
    *,
    execution_id: str,
    commit: str,
    loadtest: Path | None,
    changes: Path | None = None,
    now: datetime | None = None,
) -> dict[str, Any]:
    """Make the record in `folder` (empty or absent) and return its release.json."""
    copy_stage_assembly(cdk_out, folder / ASSEMBLY)
    _, artifact = stage_assembly(cdk_out)
    nested = folder / ASSEMBLY / artifact["properties"]["directoryName"]
    if loadtest is not None:
        shutil.copytree(loadtest, folder / LOADTEST)
    if changes is not None:
        shutil.copytree(changes, folder / CHANGES)
    summary_path = folder / LOADTEST / "summary.json"
    release = {
        "format": FORMAT,
        "stage": STAGE,
        "executionId": execution_id,
        "commit": commit,
        "recordedAt": (now or datetime.now(UTC)).isoformat(timespec="seconds"),
        "build": os.environ.get("CODEBUILD_BUILD_ID", ""),
        "stacks": stacks(nested),
        **assets(nested),
        "loadtest": (
            {
                "folder": f"{LOADTEST}/",
                "summary": json.loads(summary_path.read_text()) if summary_path.exists() else None,
            }
            if loadtest is not None
            else None
        ),
        "changes": f"{CHANGES}/" if changes is not None else None,
        "files": file_list(folder),
    }
    (folder / RELEASE_FILE).write_text(json.dumps(release, indent=1) + "\n")
    return release


def verify(folder: Path) -> dict[str, Any]:
    """release.json of a downloaded record, after checking every file it lists (and no other)."""
    path = folder / RELEASE_FILE
    if not path.exists():
        raise ReleaseError(
            f"the record has files but no {RELEASE_FILE}: a RecordRelease step failed before finishing; "
            "retry that step (or delete the record's latest/ folder to compare with nothing)"
        )
    release: dict[str, Any] = json.loads(path.read_text())
    if release.get("format") != FORMAT:
        raise ReleaseError(f"{RELEASE_FILE} has format {release.get('format')}, this step reads {FORMAT}")
    present = file_list(folder)
    wrong = sorted(
        name
        for name, entry in release["files"].items()
        if present.get(name, {}).get("sha256") != entry["sha256"]
    )
    extra = sorted(set(present) - set(release["files"]))
    if wrong or extra:
        raise ReleaseError(
            f"the record of {release.get('executionId')} does not match its {RELEASE_FILE} "
            f"(missing or changed: {wrong[:5]}, not listed: {extra[:5]}): a RecordRelease step failed "
            "halfway; retry it"
        )
    return release


# --- where the records are -----------------------------------------------------------------------------
class Store(Protocol):
    """The records (`releases/prod/` of the reports bucket, or a local folder standing in for it), and
    the load-test steps' run folders beside them."""

    def run_folder(self, execution_id: str, destination: Path) -> bool:
        """Copy `runs/<execution id>/` into `destination`; False when there is none."""
        ...

    def publish(self, record: Path, execution_id: str) -> str:
        """Store `record` as `<execution id>/` and as `latest/`; returns where."""
        ...

    def fetch_latest(self, destination: Path) -> bool:
        """Copy `latest/` into `destination`; False when there is no record yet."""
        ...


@dataclass
class S3Store:
    s3: Any
    bucket: str
    prefix: str = PREFIX

    def _keys(self, prefix: str) -> list[str]:
        keys: list[str] = []
        for page in self.s3.get_paginator("list_objects_v2").paginate(Bucket=self.bucket, Prefix=prefix):
            keys += [o["Key"] for o in page.get("Contents", [])]
        return keys

    def _download(self, prefix: str, destination: Path, skip: str | None = None) -> int:
        count = 0
        for key in self._keys(prefix):
            relative = key.removeprefix(prefix)
            if not relative or relative.endswith("/") or (skip and relative.startswith(skip)):
                continue
            target = destination / relative
            if ".." in Path(relative).parts:
                raise ReleaseError(f"refusing the key {key}: it leaves the folder")
            target.parent.mkdir(parents=True, exist_ok=True)
            self.s3.download_file(self.bucket, key, str(target))
            count += 1
        return count

    def run_folder(self, execution_id: str, destination: Path) -> bool:
        return self._download(f"{RUNS}{execution_id}/", destination) > 0

    def _upload(self, record: Path, prefix: str) -> None:
        files = sorted(p for p in record.rglob("*") if p.is_file())
        last = record / RELEASE_FILE  # written last: until then, readers see the older, complete record
        for path in [*(p for p in files if p != last), last]:
            key = prefix + path.relative_to(record).as_posix()
            self.s3.upload_file(str(path), self.bucket, key, ExtraArgs={"ContentType": content_type(path)})

    def publish(self, record: Path, execution_id: str) -> str:
        self._upload(record, f"{self.prefix}{execution_id}/")
        latest = f"{self.prefix}{LATEST}/"
        self._upload(record, latest)
        names = {p.relative_to(record).as_posix() for p in record.rglob("*") if p.is_file()}
        for key in self._keys(latest):
            if key.removeprefix(latest) not in names:
                self.s3.delete_object(Bucket=self.bucket, Key=key)
        return f"s3://{self.bucket}/{self.prefix}{execution_id}/"

    def fetch_latest(self, destination: Path) -> bool:
        return self._download(f"{self.prefix}{LATEST}/", destination) > 0


@dataclass
class LocalStore:
    """A folder standing in for `s3://BUCKET/releases/prod/`; `runs` stands in for the bucket's `runs/`."""

    root: Path
    runs: Path | None = None

    def run_folder(self, execution_id: str, destination: Path) -> bool:
        source = self.runs / execution_id if self.runs is not None else None
        if source is None or not source.is_dir():
            return False
        shutil.copytree(source, destination, dirs_exist_ok=True)
        return True

    def publish(self, record: Path, execution_id: str) -> str:
        self.root.mkdir(parents=True, exist_ok=True)
        for name in (execution_id, LATEST):
            target = self.root / name
            staging = Path(tempfile.mkdtemp(prefix=f".{name}.", dir=self.root))
            shutil.copytree(record, staging, dirs_exist_ok=True)
            old = self.root / f".{name}.old"
            shutil.rmtree(old, ignore_errors=True)
            if target.exists():
                target.rename(old)
            staging.rename(target)
            shutil.rmtree(old, ignore_errors=True)
        return str(self.root / execution_id)

    def fetch_latest(self, destination: Path) -> bool:
        source = self.root / LATEST
        if not source.is_dir() or not any(source.iterdir()):
            return False
        shutil.copytree(source, destination, dirs_exist_ok=True)
        return True


def store_from_env(env: dict[str, str]) -> Store:
    """`RELEASES_DIR` (a local stand-in, with `REPORTS_DIR/runs`), else `REPORTS_BUCKET`."""
    if env.get("RELEASES_DIR"):
        runs = Path(env["REPORTS_DIR"]) / RUNS.rstrip("/") if env.get("REPORTS_DIR") else None
        return LocalStore(Path(env["RELEASES_DIR"]), runs)
    if env.get("REPORTS_BUCKET"):
        region = env.get("AWS_REGION") or env.get("AWS_DEFAULT_REGION") or "us-west-2"
        return S3Store(session_for(None, region, "releases").client("s3"), env["REPORTS_BUCKET"])
    raise ReleaseError(
        "neither RELEASES_DIR nor REPORTS_BUCKET is set: the pipeline sets REPORTS_BUCKET, make rehearse "
        "RELEASES_DIR"
    )


def fetch_latest(store: Store, destination: Path) -> dict[str, Any] | None:
    """The record of the release that last reached prod, into `destination`; None before the first."""
    if not store.fetch_latest(destination):
        return None
    return verify(destination)


def commit_id(env: dict[str, str], root: Path) -> str:
    """The source commit: the source action's (`COMMIT_ID`), CodeBuild's, or git's; else `unknown`."""
    for name in ("COMMIT_ID", "CODEBUILD_RESOLVED_SOURCE_VERSION"):
        if env.get(name, "").strip():
            return env[name].strip()
    if (root / ".git").exists():
        result = subprocess.run(
            ["git", "rev-parse", "HEAD"],  # noqa: S607 (git from PATH, as everywhere in this repository)
            cwd=root,
            capture_output=True,
            text=True,
            check=False,
        )
        if result.returncode == 0:
            return result.stdout.strip()
    return "unknown"


def record(
    cdk_out: Path,
    store: Store,
    *,
    execution_id: str,
    commit: str,
    baselines: Baselines | None = None,
) -> dict[str, Any]:
    """Build this run's record from `cdk_out` and the run folder, and publish it; returns release.json.

    With `baselines`, the run's load test then becomes the regression gate's baseline (a run folder that
    cannot be one, e.g. without a summary, is said and skipped: the record is what this step is for)."""
    with tempfile.TemporaryDirectory(prefix="release-") as scratch:
        run = Path(scratch) / "run"
        found = store.run_folder(execution_id, run)
        if not found:
            say(
                f"WARNING: no load-test results at {RUNS}{execution_id}/: the record has none (did the "
                "run's reports expire before the approval?)"
            )
        loadtest = changes = None
        if found:
            changes = run / CHANGES if (run / CHANGES).is_dir() else None
            loadtest = Path(scratch) / LOADTEST
            shutil.copytree(run, loadtest, ignore=lambda d, names: [CHANGES] if Path(d) == run else [])
        folder = Path(scratch) / "record"
        release = build(
            cdk_out, folder, execution_id=execution_id, commit=commit, loadtest=loadtest, changes=changes
        )
        where = store.publish(folder, execution_id)
        if baselines is not None and loadtest is not None:
            accept_baseline(baselines, loadtest, execution_id=execution_id, commit=commit)
    size = sum(entry["size"] for entry in release["files"].values())
    say(
        f"Recorded the release that reached prod: {execution_id} ({commit[:12]}), {len(release['files'])} "
        f"files, {size / 1e6:.1f} MB, at {where} and {LATEST}/"
    )
    return release


def accept_baseline(baselines: Baselines, run_dir: Path, *, execution_id: str, commit: str) -> None:
    source = f"release {execution_id} ({commit[:12]}) reached prod"
    try:
        key, run = baselines.accept(run_dir, source=source)
    except (MetricsError, BaselineError) as error:
        say(f"WARNING: the release's load test is not a baseline: {error}")
        return
    say(f"The load test {run.run_id} of this release is now the baseline of {key.path}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m pipeline.releases", description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)
    recording = commands.add_parser("record", help="store this run as the release that last reached prod")
    recording.add_argument("cdk_out", type=Path, help="the synth step's cloud assembly (cdk.out)")
    fetching = commands.add_parser("fetch", help="download the latest record into a folder")
    fetching.add_argument("destination", type=Path)
    args = parser.parse_args(argv)
    env = dict(os.environ)
    try:
        store = store_from_env(env)
        if args.command == "record":
            execution_id = env.get("PIPELINE_EXECUTION_ID", "").strip()
            if not execution_id:
                raise ReleaseError("PIPELINE_EXECUTION_ID is not set (the pipeline passes its execution id)")
            record(
                args.cdk_out,
                store,
                execution_id=execution_id,
                commit=commit_id(env, Path.cwd()),
                # The pipeline sets REPORTS_BUCKET, make rehearse BASELINE_DIR; a bare local record has none.
                baselines=baseline_store_from_env(env)
                if env.get("BASELINE_DIR") or env.get("REPORTS_BUCKET")
                else None,
            )
            return 0
        release = fetch_latest(store, args.destination)
        if release is None:
            say("No release has reached prod yet: there is no record")
        else:
            say(f"The record of {release['executionId']} ({release['commit'][:12]}) is in {args.destination}")
        return 0
    except (StepError, BotoCoreError, ClientError, OSError) as error:
        print(f"ERROR: {error}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
