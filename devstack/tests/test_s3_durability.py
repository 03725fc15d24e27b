"""The local S3 server acknowledges a write only once it is on disk, and keeps its queues' messages.

Each test kills the server with SIGKILL (no shutdown snapshot) right after the answer, with the periodic
snapshot set far off (an hour), and finds what was acknowledged after a restart: the object and its
event. A message that was consumed and deleted does not come back.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import unquote_plus

import pytest
import requests

from devstack.postgres import free_port
from devstack.s3server import Layout, S3ServerProcess, client, queue_url

from .test_s3_post import presigned

NEVER = 3600.0  # seconds between periodic snapshots: none happens during a test


@pytest.fixture
def server(scratch_dir: Path) -> Iterator[S3ServerProcess]:
    process = S3ServerProcess(
        free_port(), state_dir=scratch_dir / f"s3-{uuid.uuid4().hex[:6]}", interval=NEVER
    )
    process.start()
    yield process
    process.stop()


def _keys_in_queue(endpoint: str) -> list[str]:
    """The object keys of every event waiting in the event queue (received, then deleted)."""
    sqs = client("sqs", endpoint)
    url = queue_url(endpoint)
    keys: list[str] = []
    while True:
        reply = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, WaitTimeSeconds=1)
        if not reply.get("Messages"):
            return keys
        for message in reply["Messages"]:
            for record in json.loads(message["Body"]).get("Records", []):
                keys.append(unquote_plus(record["s3"]["object"]["key"]))
            sqs.delete_message(QueueUrl=url, ReceiptHandle=message["ReceiptHandle"])


def test_a_presigned_post_acknowledged_survives_kill_9_with_its_event(server: S3ServerProcess) -> None:
    key = f"public/originals/{uuid.uuid4()}"
    url, fields = presigned(server.endpoint_url, key)
    response = requests.post(url, data=fields, files={"file": ("a.png", b"\x89PNG durable")}, timeout=10)
    assert response.status_code == 204, response.text
    server.kill()

    server.start()
    got = client("s3", server.endpoint_url).get_object(Bucket=Layout.public_bucket, Key=key)
    assert got["Body"].read() == b"\x89PNG durable"
    assert got["ContentType"] == "image/png"
    assert _keys_in_queue(server.endpoint_url) == [key]


def test_puts_and_deletes_survive_kill_9(server: S3ServerProcess) -> None:
    s3 = client("s3", server.endpoint_url)
    kept, deleted = f"private/renditions/{uuid.uuid4()}.webp", f"private/originals/{uuid.uuid4()}"
    s3.put_object(Bucket=Layout.private_bucket, Key=kept, Body=b"webp", ContentType="image/webp")
    s3.put_object(Bucket=Layout.private_bucket, Key=deleted, Body=b"gone")
    s3.delete_object(Bucket=Layout.private_bucket, Key=deleted)
    server.kill()

    server.start()
    s3 = client("s3", server.endpoint_url)
    assert s3.get_object(Bucket=Layout.private_bucket, Key=kept)["Body"].read() == b"webp"
    listed = s3.list_objects_v2(Bucket=Layout.private_bucket).get("Contents", [])
    assert deleted not in [item["Key"] for item in listed]
    assert sorted(_keys_in_queue(server.endpoint_url)) == sorted([kept, deleted])


def test_the_queue_survives_restarts_and_forgets_deleted_messages(server: S3ServerProcess) -> None:
    s3 = client("s3", server.endpoint_url)
    first, second = f"public/originals/{uuid.uuid4()}", f"public/originals/{uuid.uuid4()}"
    s3.put_object(Bucket=Layout.public_bucket, Key=first, Body=b"1")
    assert _keys_in_queue(server.endpoint_url) == [first]  # consumed and deleted
    s3.put_object(Bucket=Layout.public_bucket, Key=second, Body=b"2")
    # received but not deleted (in flight) when the server dies: it comes back, as in SQS
    sqs = client("sqs", server.endpoint_url)
    assert sqs.receive_message(QueueUrl=queue_url(server.endpoint_url), WaitTimeSeconds=1)["Messages"]
    server.kill()

    server.start()
    assert _keys_in_queue(server.endpoint_url) == [second]
    server.stop()  # a clean stop and start: still nothing comes back that was deleted
    server.start()
    assert _keys_in_queue(server.endpoint_url) == []


def test_a_restart_does_not_rewrite_what_is_on_disk(server: S3ServerProcess) -> None:
    """The restore puts objects back without a durable write each (thousands of objects would each
    rewrite the manifest): after a restart with nothing new, the manifest is the same file."""
    s3 = client("s3", server.endpoint_url)
    for n in range(5):
        s3.put_object(
            Bucket=Layout.public_bucket, Key=f"public/renditions/{uuid.uuid4()}.webp", Body=b"%d" % n
        )
    assert server.state_dir is not None
    manifest = server.state_dir / "manifest.json"
    server.stop()
    before = manifest.stat()
    server.start()
    after = manifest.stat()
    assert (after.st_ino, after.st_mtime_ns) == (before.st_ino, before.st_mtime_ns)
