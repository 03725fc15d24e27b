"""Accepted baselines on disk, one folder per target, profile and shape.

    <root>/<target>/<profile>/<shape>/baseline.json          the accepted runs, newest first
    <root>/<target>/<profile>/<shape>/runs/<run id>/metrics.json, summary.json

`<root>` is `reports/loadtest/baseline/` for `make loadtest-accept`; the pipeline keeps the same layout
under `baseline/` of its reports bucket (`pipeline/baseline.py`) and fetches it here before a comparison.
The newest accepted run is *the* baseline; the others (up to `compare.HISTORY`) show how much the same
kind of run moves from one run to the next. Nothing is ever deleted: each run's files are small.
"""

from __future__ import annotations

import json
import os
import re
import shutil
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from loadtests.regression import metrics
from loadtests.regression.compare import HISTORY

INDEX = "baseline.json"
RUNS = "runs"
FORMAT = 1
_PART = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")


class BaselineError(ValueError):
    """A run cannot be accepted, or a baseline cannot be read; the message says what to do."""


@dataclass(frozen=True)
class Key:
    target: str
    profile: str
    shape: str

    def __post_init__(self) -> None:
        for part in (self.target, self.profile, self.shape):
            if not _PART.match(part) or part in (".", ".."):
                raise BaselineError(
                    f"{part!r} cannot name a baseline folder (letters, digits, '.', '_', '-')"
                )

    @property
    def path(self) -> str:
        """`<target>/<profile>/<shape>`: the folder under the root, and the key prefix in the bucket."""
        return f"{self.target}/{self.profile}/{self.shape}"

    @classmethod
    def of(cls, run: metrics.RunMetrics) -> Key:
        return cls(*run.comparable_key)


def folder(root: Path, key: Key) -> Path:
    return root / key.path


def read_index(root: Path, key: Key) -> dict[str, Any]:
    path = folder(root, key) / INDEX
    if not path.is_file():
        return {
            "format": FORMAT,
            "target": key.target,
            "profile": key.profile,
            "shape": key.shape,
            "accepted": [],
        }
    index: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    if index.get("format") != FORMAT:
        raise BaselineError(f"{path} has format {index.get('format')}; this code reads {FORMAT}")
    return index


def write_index(root: Path, key: Key, index: dict[str, Any]) -> Path:
    path = folder(root, key) / INDEX
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{INDEX}.{os.getpid()}")
    tmp.write_text(json.dumps(index, indent=1) + "\n", encoding="utf-8")
    tmp.replace(path)  # readers see the old index or the new one, never half of one
    return path


def run_files(root: Path, key: Key, run_id: str) -> Path:
    return folder(root, key) / RUNS / run_id


def accept(
    run_dir: Path, root: Path, *, source: str, force: bool = False, now: datetime | None = None
) -> tuple[Key, metrics.RunMetrics]:
    """Make the run the baseline of its target, profile and shape (the older ones stay as history).

    A run that missed its thresholds or failed is refused unless `force`: a baseline is what a good
    release looks like."""
    run = metrics.extract(run_dir)
    if not run.passed and not force:
        raise BaselineError(
            f"run {run.run_id} did not pass its thresholds (see its summary.txt): a baseline is a good "
            "run; accept it anyway with --force"
        )
    key = Key.of(run)
    target = run_files(root, key, run.run_id)
    target.mkdir(parents=True, exist_ok=True)
    metrics.write(run, target / metrics.METRICS_JSON)
    shutil.copyfile(run_dir / metrics.SUMMARY_JSON, target / metrics.SUMMARY_JSON)
    index = read_index(root, key)
    entry = {
        "run_id": run.run_id,
        "accepted_at": (now or datetime.now(UTC)).isoformat(timespec="seconds"),
        "source": source,
        "started_at": run.started_at,
        "host": run.host,
        "peak_users": run.peak_users,
        "planned_duration_s": run.planned_duration_s,
    }
    index["accepted"] = [entry, *(e for e in index["accepted"] if e["run_id"] != run.run_id)]
    write_index(root, key, index)
    return key, run


def load(root: Path, key: Key, limit: int = HISTORY) -> list[metrics.RunMetrics]:
    """The accepted runs of `key`, newest (the baseline) first, at most `limit`; [] when none."""
    out = []
    for entry in read_index(root, key)["accepted"][:limit]:
        path = run_files(root, key, str(entry["run_id"])) / metrics.METRICS_JSON
        if not path.is_file():
            raise BaselineError(
                f"{path} is missing although {folder(root, key) / INDEX} lists it: fetch the baseline "
                "again, or remove the entry"
            )
        out.append(metrics.read(path))
    return out
