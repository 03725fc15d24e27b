"""The local services themselves: start from nothing, notify, and keep state across restarts."""

from __future__ import annotations

import json
import subprocess
import time
import uuid
from pathlib import Path
from urllib.parse import unquote_plus

import httpx

from devstack.postgres import LocalPostgres, free_port
from devstack.s3server import Layout, S3ServerProcess, client, queue_url
from devstack.stack import checkout_commit

PROJECT = Path(__file__).resolve().parents[2]


def _drain(sqs: object, url: str, timeout: float = 5.0, *, until: str | None = None) -> list[dict]:
    """The S3 records that reach the queue (test events left out): the first that arrive, or with `until`
    everything up to the first record of that object key, waiting at most `timeout` seconds."""
    records: list[dict] = []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        reply = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, WaitTimeSeconds=1)  # type: ignore[attr-defined]
        for message in reply.get("Messages", []):
            records.extend(json.loads(message["Body"]).get("Records", []))
            sqs.delete_message(QueueUrl=url, ReceiptHandle=message["ReceiptHandle"])  # type: ignore[attr-defined]
        if records and (until is None or _about(records, until)):
            return records
    return records


def _about(records: list[dict], key: str) -> list[dict]:
    """The records of one object: the session's S3 server is shared, other tests' events may be queued.
    (Keys arrive URL-encoded, as in S3's own events.)"""
    return [r for r in records if unquote_plus(r["s3"]["object"]["key"]) == key]


def test_postgres_starts_from_nothing_and_keeps_rows_across_restart(scratch_dir: Path) -> None:
    root = scratch_dir / f"pg-{uuid.uuid4().hex[:6]}"
    server = LocalPostgres(root=root, port=free_port())
    assert not server.initialized
    server.start()
    try:
        server.psql("CREATE TABLE kept (note text)", database=server.database)
        server.psql("INSERT INTO kept VALUES ('survives')", database=server.database)
        server.stop()
        assert not server.running()
        server.start()
        assert server.psql("SELECT note FROM kept", database=server.database) == "survives"
    finally:
        server.destroy()
    assert not root.exists()


def test_upload_to_a_bucket_notifies_the_local_queue(moto_endpoint: str) -> None:
    s3, sqs = client("s3", moto_endpoint), client("sqs", moto_endpoint)
    events = queue_url(moto_endpoint)
    key = f"public/originals/{uuid.uuid4()}"
    s3.put_object(Bucket=Layout.public_bucket, Key=key, Body=b"bytes")
    records = _about(_drain(sqs, events, until=key), key)
    assert [(r["eventName"], r["s3"]["bucket"]["name"]) for r in records] == [
        ("ObjectCreated:Put", Layout.public_bucket)
    ]


def test_presigned_post_upload_notifies_too(moto_endpoint: str) -> None:
    s3, sqs = client("s3", moto_endpoint), client("sqs", moto_endpoint)
    events = queue_url(moto_endpoint)
    key = f"private/originals/{uuid.uuid4()}"
    post = s3.generate_presigned_post(Layout.private_bucket, key)
    response = httpx.post(post["url"], data=post["fields"], files={"file": ("a.png", b"png", "image/png")})
    assert response.status_code == 204
    records = _about(_drain(sqs, events, until=key), key)
    assert [r["eventName"] for r in records] == ["ObjectCreated:Post"]


def test_objects_outside_the_image_prefixes_do_not_notify(moto_endpoint: str) -> None:
    s3, sqs = client("s3", moto_endpoint), client("sqs", moto_endpoint)
    events = queue_url(moto_endpoint)
    key = f"elsewhere/{uuid.uuid4()}"
    s3.put_object(Bucket=Layout.public_bucket, Key=key, Body=b"x")
    after_it = f"public/originals/{uuid.uuid4()}"
    s3.put_object(Bucket=Layout.public_bucket, Key=after_it, Body=b"after it")
    records = _drain(sqs, events, until=after_it)
    assert _about(records, after_it)  # the event of the object put after it has arrived...
    assert _about(records, key) == []  # ...and none for it


def test_objects_survive_a_restart_without_replaying_events(scratch_dir: Path) -> None:
    state = scratch_dir / f"s3-{uuid.uuid4().hex[:6]}"
    server = S3ServerProcess(free_port(), state_dir=state)
    server.start()
    key = f"private/originals/{uuid.uuid4()}"
    try:
        s3 = client("s3", server.endpoint_url)
        s3.put_object(Bucket=Layout.private_bucket, Key=key, Body=b"\x89PNG kept", ContentType="image/png")
        # Its event is consumed: events still queued at a stop come back after it (test_s3_durability.py).
        sqs = client("sqs", server.endpoint_url)
        assert len(_drain(sqs, queue_url(server.endpoint_url))) == 1
        server.stop()
        server.start()
        s3 = client("s3", server.endpoint_url)
        got = s3.get_object(Bucket=Layout.private_bucket, Key=key)
        assert got["Body"].read() == b"\x89PNG kept"
        assert got["ContentType"] == "image/png"
        # The restore happened before the notifications were set up: no event for the old object...
        sqs = client("sqs", server.endpoint_url)
        assert _drain(sqs, queue_url(server.endpoint_url), timeout=2) == []
        # ...and the notifications work again after the restart.
        s3.put_object(Bucket=Layout.public_bucket, Key=f"public/originals/{uuid.uuid4()}", Body=b"new")
        assert len(_drain(sqs, queue_url(server.endpoint_url))) == 1
    finally:
        server.stop()


def test_the_api_reports_the_checkouts_commit_or_unknown(tmp_path: Path) -> None:
    """`make up` gives the API `BUILD_COMMIT` (its /api/v1/health `build`): HEAD of a checkout, else unknown."""
    head = subprocess.run(
        ["git", "rev-parse", "HEAD"], cwd=PROJECT, capture_output=True, text=True, check=False
    ).stdout.strip()
    if (PROJECT / ".git").exists():
        assert checkout_commit() == head and len(head) == 40
    assert checkout_commit(tmp_path) == "unknown"  # an unpacked source zip: no repository
