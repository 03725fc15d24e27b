"""The load-test baselines in the reports bucket: `python -m pipeline.baseline fetch`.

The regression gate (loadtests/regression/) compares each staging load test with the baseline of the
same target, profile and shape: the staging run of the last release that reached prod. Its files live in
the reports bucket under `baseline/`, outside the `runs/` prefix that expires, laid out exactly as a
local baseline folder (`loadtests/regression/baseline.py`):

    baseline/<target>/<profile>/<shape>/baseline.json                the accepted runs, newest first
    baseline/<target>/<profile>/<shape>/runs/<run id>/metrics.json, summary.json

- `fetch` (the LoadTest step, before the run): copies the index and the newest accepted runs (the baseline
  and the history whose spread counts) into a local folder for `python -m loadtests run --baseline-dir`;
  nothing there yet is a first release, which the gate reports and passes.
- `accept` (the RecordRelease step, `pipeline.releases`, after prod deployed and passed its smoke test):
  adds that release's staging run. The run's files go up first, the index last, so a reader sees the old
  baseline or the new one, never half of one. Nothing under `baseline/` is ever deleted.

Where: with `BASELINE_DIR`, a local folder stands in for `s3://REPORTS_BUCKET/baseline/` (`make
rehearse`); else `REPORTS_BUCKET`, with the step's own credentials.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from botocore.exceptions import BotoCoreError, ClientError

from loadtests.regression import baseline, metrics
from loadtests.regression.compare import HISTORY
from pipeline.aws import StepError, session_for
from pipeline.commands import BASELINE_PREFIX
from pipeline.review import content_type


class BaselineStoreError(StepError):
    """The baselines cannot be read or written; the message says why."""


def say(message: str) -> None:
    print(f"==> {message}", flush=True)


class Baselines(Protocol):
    def fetch(self, key: baseline.Key, root: Path) -> int:
        """Copy the index and the newest accepted runs of `key` under `root`; returns how many runs."""
        ...

    def accept(self, run_dir: Path, *, source: str) -> tuple[baseline.Key, metrics.RunMetrics]:
        """Add a run folder as the newest baseline of its target, profile and shape."""
        ...


def _relative_files(key: baseline.Key, index: dict[str, Any], limit: int) -> list[str]:
    names = [baseline.INDEX]
    for entry in index["accepted"][:limit]:
        for name in (metrics.METRICS_JSON, metrics.SUMMARY_JSON):
            names.append(f"{baseline.RUNS}/{entry['run_id']}/{name}")
    return names


@dataclass
class S3Baselines:
    s3: Any
    bucket: str
    prefix: str = BASELINE_PREFIX

    def _key(self, key: baseline.Key, name: str) -> str:
        return f"{self.prefix}{key.path}/{name}"

    def fetch(self, key: baseline.Key, root: Path, limit: int = HISTORY + 1) -> int:
        target = baseline.folder(root, key)
        shutil.rmtree(target, ignore_errors=True)
        target.mkdir(parents=True)
        # Listed first: without a listing grant S3 answers a missing object with 403, not 404.
        index_key = self._key(key, baseline.INDEX)
        listed = self.s3.list_objects_v2(Bucket=self.bucket, Prefix=index_key).get("Contents", [])
        if not any(o["Key"] == index_key for o in listed):
            return 0
        self.s3.download_file(self.bucket, index_key, str(target / baseline.INDEX))
        index = baseline.read_index(root, key)
        for name in _relative_files(key, index, limit)[1:]:
            (target / name).parent.mkdir(parents=True, exist_ok=True)
            self.s3.download_file(self.bucket, self._key(key, name), str(target / name))
        return min(limit, len(index["accepted"]))

    def accept(self, run_dir: Path, *, source: str) -> tuple[baseline.Key, metrics.RunMetrics]:
        with tempfile.TemporaryDirectory(prefix="baseline-") as scratch:
            root = Path(scratch)
            key = baseline.Key.of(metrics.extract(run_dir))
            self.fetch(key, root, limit=0)  # the index only: the new run goes in front of it
            key, run = baseline.accept(run_dir, root, source=source)
            run_files = baseline.run_files(root, key, run.run_id)
            for path in sorted(run_files.iterdir()):
                name = f"{baseline.RUNS}/{run.run_id}/{path.name}"
                self.s3.upload_file(
                    str(path),
                    self.bucket,
                    self._key(key, name),
                    ExtraArgs={"ContentType": content_type(path)},
                )
            index = baseline.folder(root, key) / baseline.INDEX
            self.s3.upload_file(
                str(index),
                self.bucket,
                self._key(key, baseline.INDEX),
                ExtraArgs={"ContentType": content_type(index)},
            )
        return key, run


@dataclass
class LocalBaselines:
    """A folder standing in for `s3://BUCKET/baseline/`, in the same layout."""

    root: Path

    def fetch(self, key: baseline.Key, root: Path, limit: int = HISTORY + 1) -> int:
        target = baseline.folder(root, key)
        shutil.rmtree(target, ignore_errors=True)
        target.mkdir(parents=True)
        index = baseline.read_index(self.root, key)
        if not index["accepted"]:
            return 0
        for name in _relative_files(key, index, limit):
            (target / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(baseline.folder(self.root, key) / name, target / name)
        return min(limit, len(index["accepted"]))

    def accept(self, run_dir: Path, *, source: str) -> tuple[baseline.Key, metrics.RunMetrics]:
        return baseline.accept(run_dir, self.root, source=source)


def store_from_env(env: dict[str, str]) -> Baselines:
    """`BASELINE_DIR` (a local stand-in), else the reports bucket (`REPORTS_BUCKET`)."""
    if env.get("BASELINE_DIR"):
        return LocalBaselines(Path(env["BASELINE_DIR"]))
    if env.get("REPORTS_BUCKET"):
        region = env.get("AWS_REGION") or env.get("AWS_DEFAULT_REGION") or "us-west-2"
        return S3Baselines(session_for(None, region, "baseline").client("s3"), env["REPORTS_BUCKET"])
    raise BaselineStoreError(
        "neither BASELINE_DIR nor REPORTS_BUCKET is set: the pipeline sets REPORTS_BUCKET, make rehearse "
        "BASELINE_DIR"
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m pipeline.baseline", description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)
    fetching = commands.add_parser("fetch", help="download the accepted baseline of a target/profile/shape")
    fetching.add_argument("--target", required=True)
    fetching.add_argument("--profile", required=True)
    fetching.add_argument("--shape", required=True)
    fetching.add_argument("--into", type=Path, required=True, help="the local baseline folder to fill")
    args = parser.parse_args(argv)
    try:
        key = baseline.Key(args.target, args.profile, args.shape)
        found = store_from_env(dict(os.environ)).fetch(key, args.into)
    except (StepError, baseline.BaselineError, BotoCoreError, ClientError, OSError) as error:
        print(f"ERROR: the baseline of {args.target}/{args.profile}/{args.shape}: {error}", file=sys.stderr)
        return 1
    if found:
        say(f"Fetched the baseline of {key.path} and {found - 1} older accepted run(s) into {args.into}")
    else:
        say(f"No baseline of {key.path} yet (no release has reached prod with one): nothing to compare with")
    return 0


if __name__ == "__main__":
    sys.exit(main())
