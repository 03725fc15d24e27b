"""The load-test baselines in the reports bucket (`pipeline.baseline`), against the session's real local S3
server: the release record adds a release's staging run, the next LoadTest step fetches it, and the
regression gate compares with it."""

from __future__ import annotations

import json
import uuid
from pathlib import Path
from typing import Any

import pytest

from devstack.s3server import client
from loadtests.regression import baseline, cli
from loadtests.regression.compare import HISTORY
from loadtests.tests.regression_fixtures import RUN1, RUN2, copy_run, scaled
from pipeline import baseline as stored
from pipeline.commands import BASELINE_PREFIX

STAGING = baseline.Key("staging", "staging", "step")
KIND = {"target": "staging", "profile": "staging", "shape": "step"}


@pytest.fixture
def s3(moto_endpoint: str) -> Any:
    return client("s3", moto_endpoint)


@pytest.fixture
def bucket(s3: Any) -> str:
    name = f"reports-{uuid.uuid4().hex[:12]}"
    s3.create_bucket(Bucket=name, CreateBucketConfiguration={"LocationConstraint": "us-west-2"})
    return name


class Recorder:
    """The S3 client, noting the order of uploads and refusing deletes (the steps may delete nothing)."""

    def __init__(self, s3: Any) -> None:
        self.s3 = s3
        self.uploaded: list[str] = []

    def upload_file(self, filename: str, bucket: str, key: str, **kwargs: Any) -> None:
        self.uploaded.append(key)
        self.s3.upload_file(filename, bucket, key, **kwargs)

    def delete_object(self, **kwargs: Any) -> None:
        raise AssertionError(f"nothing under {BASELINE_PREFIX} is ever deleted: {kwargs}")

    def __getattr__(self, name: str) -> Any:
        return getattr(self.s3, name)


def keys(s3: Any, bucket: str, prefix: str = "") -> set[str]:
    return {o["Key"] for o in s3.list_objects_v2(Bucket=bucket, Prefix=prefix).get("Contents", [])}


def staging_run(source: Path, folder: Path, run_id: str) -> Path:
    """A saved real run, relabelled as the pipeline's staging run (its numbers are the local stack's)."""
    return copy_run(source, folder, run_id=run_id, **KIND)


def test_before_any_release_there_is_nothing_to_fetch(
    s3: Any, bucket: str, tmp_path: Path, moto_endpoint: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert stored.S3Baselines(s3, bucket).fetch(STAGING, tmp_path / "fetched") == 0
    monkeypatch.delenv("BASELINE_DIR", raising=False)
    monkeypatch.setenv("REPORTS_BUCKET", bucket)
    monkeypatch.setenv("AWS_ENDPOINT_URL", moto_endpoint)
    argv = ["fetch", "--target", "staging", "--profile", "staging", "--shape", "step"]
    assert stored.main([*argv, "--into", str(tmp_path / "fetched")]) == 0
    # The gate then says there is nothing to compare with, and passes.
    run = staging_run(RUN2, tmp_path / "run", "r2")
    assert cli.main(["compare", str(run), "--baseline-dir", str(tmp_path / "fetched")]) == 0
    assert "nothing accepted yet for target staging, profile staging, shape step" in (
        (run / "regression.json").read_text()
    )


def test_an_accepted_release_is_the_next_runs_baseline(s3: Any, bucket: str, tmp_path: Path) -> None:
    recorder = Recorder(s3)
    store = stored.S3Baselines(recorder, bucket)
    key, run = store.accept(staging_run(RUN1, tmp_path / "r1", "r1"), source="release exec-1")
    assert (key, run.run_id) == (STAGING, "r1")
    prefix = f"{BASELINE_PREFIX}staging/staging/step/"
    assert keys(s3, bucket, BASELINE_PREFIX) == {
        f"{prefix}baseline.json",
        f"{prefix}runs/r1/metrics.json",
        f"{prefix}runs/r1/summary.json",
    }
    assert recorder.uploaded[-1] == f"{prefix}baseline.json"  # the index last: never half a baseline

    fetched = tmp_path / "fetched"
    assert store.fetch(STAGING, fetched) == 1
    slow = scaled(staging_run(RUN2, tmp_path / "r2", "r2"), tmp_path, 3)
    assert cli.main(["compare", str(slow), "--baseline-dir", str(fetched)]) == 1
    verdict = json.loads((slow / "regression.json").read_text())
    assert verdict["baseline"]["run_id"] == "r1" and not verdict["passed"]
    same = staging_run(RUN2, tmp_path / "same", "same")
    assert cli.main(["compare", str(same), "--baseline-dir", str(fetched)]) == 0


def test_later_releases_keep_the_earlier_ones_as_history(s3: Any, bucket: str, tmp_path: Path) -> None:
    store = stored.S3Baselines(Recorder(s3), bucket)
    ids = [f"r{n}" for n in range(HISTORY + 3)]
    for run_id in ids:
        store.accept(staging_run(RUN1, tmp_path / run_id, run_id), source=f"release {run_id}")
    index = json.loads(
        s3.get_object(Bucket=bucket, Key=f"{BASELINE_PREFIX}staging/staging/step/baseline.json")[
            "Body"
        ].read()
    )
    assert [e["run_id"] for e in index["accepted"]] == ids[::-1]
    assert len(keys(s3, bucket, f"{BASELINE_PREFIX}staging/staging/step/runs/")) == 2 * len(ids)
    fetched = tmp_path / "fetched"
    assert store.fetch(STAGING, fetched) == HISTORY + 1  # the newest and the history whose spread counts
    runs = sorted(p.name for p in (fetched / "staging/staging/step/runs").iterdir())
    assert runs == sorted(ids[::-1][: HISTORY + 1])
    assert [r.run_id for r in baseline.load(fetched, STAGING)] == ids[::-1][:HISTORY]


def test_the_rehearsal_stand_in_is_a_folder_of_the_same_layout(tmp_path: Path) -> None:
    store = stored.LocalBaselines(tmp_path / "stand-in")
    assert store.fetch(STAGING, tmp_path / "fetched") == 0
    store.accept(staging_run(RUN1, tmp_path / "r1", "r1"), source="rehearsal")
    assert store.fetch(STAGING, tmp_path / "fetched") == 1
    assert (tmp_path / "fetched/staging/staging/step/runs/r1/metrics.json").is_file()
    assert stored.store_from_env({"BASELINE_DIR": str(tmp_path)}) == stored.LocalBaselines(tmp_path)
    with pytest.raises(stored.BaselineStoreError, match="REPORTS_BUCKET"):
        stored.store_from_env({})
