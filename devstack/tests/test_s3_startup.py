"""The local S3 server answers no client before its objects, buckets, notifications and queues are back.

Found by the fault suite (`make chaos`): after a `kill -9` of the S3 server, `make up` starts it again, and
a browser's upload that reached it in its first second got `NoSuchBucket`; one a moment later could be
stored before the bucket's notifications existed, so its event never came. A client that connects while
the server starts must wait, then get the answer the restored server gives.
"""

from __future__ import annotations

import threading
import time
import uuid
from pathlib import Path
from typing import Any

import boto3
import requests
from botocore.config import Config
from botocore.exceptions import ClientError, EndpointConnectionError

from devstack.postgres import free_port
from devstack.s3server import REGION, Layout, S3ServerProcess, client

from .test_s3_durability import NEVER, _keys_in_queue
from .test_s3_post import presigned


def _first_answer(ask: Any, timeout: float = 60.0) -> object:
    """Ask again and again while nothing listens; return the first answer (a status or error code)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            return ask()
        except (EndpointConnectionError, requests.ConnectionError):
            time.sleep(0.005)
    return "no answer"


def test_clients_of_a_starting_server_wait_for_what_it_restores(scratch_dir: Path) -> None:
    state = scratch_dir / f"s3-{uuid.uuid4().hex[:6]}"
    port = free_port()
    kept = f"kept/{uuid.uuid4()}"  # outside the processed prefixes: no event of its own
    first = S3ServerProcess(port, state_dir=state, interval=NEVER)
    first.start()
    client("s3", first.endpoint_url).put_object(Bucket=Layout.public_bucket, Key=kept, Body=b"kept")
    uploaded = f"public/originals/{uuid.uuid4()}"
    url, fields = presigned(first.endpoint_url, uploaded)  # signed now, posted while the server restarts
    first.stop()

    impatient = boto3.client(  # as `client` makes them, but one try, and patient once connected
        "s3",
        endpoint_url=first.endpoint_url,
        region_name=REGION,
        config=Config(
            signature_version="s3v4", retries={"total_max_attempts": 1}, connect_timeout=1, read_timeout=60
        ),
    )

    def head() -> object:
        try:
            impatient.head_object(Bucket=Layout.public_bucket, Key=kept)
        except ClientError as error:
            return error.response["Error"]["Code"]
        return 200

    def post() -> object:
        sent = requests.post(url, data=fields, files={"file": ("a.png", b"\x89PNG started")}, timeout=60)
        return sent.status_code

    answers: dict[str, object] = {}
    askers = [
        threading.Thread(target=lambda name=name, ask=ask: answers.__setitem__(name, _first_answer(ask)))
        for name, ask in (("head", head), ("post", post))
    ]
    for asker in askers:
        asker.start()
    second = S3ServerProcess(port, state_dir=state, interval=NEVER)
    second.start()
    try:
        for asker in askers:
            asker.join(60)
        assert answers == {"head": 200, "post": 204}
        assert _keys_in_queue(second.endpoint_url) == [uploaded]  # its event was sent, and kept
    finally:
        second.stop()
