"""Fixtures of the compressor tests: a real S3-compatible server (moto) on loopback, per-test buckets,
the JSON sample events of ``events/`` pointed at them, and a fake Lambda context."""

from __future__ import annotations

import copy
import json
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.config import Config

EVENTS = Path(__file__).parent / "events"
REGION = "us-west-2"


@pytest.fixture(scope="session")
def s3(moto_endpoint: str) -> Any:
    """A boto3 S3 client of the moto server (no retries: a failure shows at once)."""
    return boto3.client(
        "s3",
        endpoint_url=moto_endpoint,
        region_name=REGION,
        config=Config(retries={"mode": "standard", "max_attempts": 1}),
    )


@pytest.fixture
def bucket(s3: Any) -> Iterator[str]:
    """A fresh, uniquely named bucket, emptied and deleted after the test."""
    name = f"yoctogram-test-{uuid.uuid4().hex[:16]}"
    s3.create_bucket(Bucket=name, CreateBucketConfiguration={"LocationConstraint": REGION})
    yield name
    for item in s3.list_objects_v2(Bucket=name).get("Contents", []):
        s3.delete_object(Bucket=name, Key=item["Key"])
    s3.delete_bucket(Bucket=name)


@dataclass
class S3Calls:
    """Counts of S3 operations made through a client (``PutObject``, ``GetObject``...)."""

    counts: dict[str, int] = field(default_factory=dict)

    def __call__(self, model: Any, **_: Any) -> None:
        self.counts[model.name] = self.counts.get(model.name, 0) + 1

    def of(self, operation: str) -> int:
        return self.counts.get(operation, 0)


@pytest.fixture
def s3_calls(s3: Any) -> Iterator[S3Calls]:
    """Records every operation the ``s3`` client makes during the test."""
    calls = S3Calls()
    s3.meta.events.register("before-call.s3", calls)
    yield calls
    s3.meta.events.unregister("before-call.s3", calls)


def load_event(name: str) -> dict[str, Any]:
    """A sample event from ``events/`` (a fresh copy)."""
    return json.loads((EVENTS / name).read_text())


def retarget(event: dict[str, Any], bucket: str, keys: list[str], etags: list[str | None]) -> dict[str, Any]:
    """``event`` with its objects (in order) moved to ``bucket``/``keys`` and given ``etags``.

    An etag of ``None`` removes the field, as in a hand-written event.
    """
    event = copy.deepcopy(event)
    targets = iter(zip(keys, etags, strict=True))

    def visit(node: dict[str, Any]) -> None:
        if "Records" in node:
            for record in node["Records"]:
                if record.get("eventSource") == "aws:sqs":
                    body = json.loads(record["body"])
                    visit(body)
                    record["body"] = json.dumps(body)
                else:
                    key, etag = next(targets)
                    record["s3"]["bucket"]["name"] = bucket
                    record["s3"]["bucket"]["arn"] = f"arn:aws:s3:::{bucket}"
                    record["s3"]["object"]["key"] = key
                    record["s3"]["object"].pop("eTag", None)
                    if etag is not None:
                        record["s3"]["object"]["eTag"] = etag
        else:
            key, etag = next(targets)
            node["resources"] = [f"arn:aws:s3:::{bucket}"]
            node["detail"]["bucket"]["name"] = bucket
            node["detail"]["object"]["key"] = key
            node["detail"]["object"].pop("etag", None)
            if etag is not None:
                node["detail"]["object"]["etag"] = etag

    visit(event)
    return event


@pytest.fixture
def make_event(bucket: str) -> Callable[..., dict[str, Any]]:
    """``make_event("s3_object_created.json", key, etag)``: a sample event naming objects of ``bucket``."""

    def build(name: str, *objects: tuple[str, str | None]) -> dict[str, Any]:
        keys = [key for key, _ in objects]
        etags = [etag for _, etag in objects]
        return retarget(load_event(name), bucket, keys, etags)

    return build


@pytest.fixture
def upload(s3: Any, bucket: str) -> Callable[..., tuple[str, str]]:
    """``upload(data, privacy="public", content_type=...)`` puts an original; returns (key, bare ETag)."""

    def put(data: bytes, privacy: str = "public", content_type: str = "image/jpeg") -> tuple[str, str]:
        key = f"{privacy}/originals/{uuid.uuid4()}"
        response = s3.put_object(Bucket=bucket, Key=key, Body=data, ContentType=content_type)
        return key, response["ETag"].strip('"')

    return put


@dataclass
class FakeLambdaContext:
    """The attributes of the Lambda context object that code may read."""

    function_name: str = "yoctogram-compressor"
    function_version: str = "$LATEST"
    invoked_function_arn: str = "arn:aws:lambda:us-west-2:111122223333:function:yoctogram-compressor"
    memory_limit_in_mb: int = 1024
    aws_request_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    log_group_name: str = "/aws/lambda/yoctogram-compressor"
    log_stream_name: str = "2025/11/26/[$LATEST]0123456789abcdef"

    def get_remaining_time_in_millis(self) -> int:
        return 60_000


@pytest.fixture
def lambda_context() -> FakeLambdaContext:
    """A fresh fake Lambda context (unique request id)."""
    return FakeLambdaContext()


@pytest.fixture
def sample_event() -> Callable[[str], dict[str, Any]]:
    """``sample_event("s3_object_created.json")``: a sample event as it is on disk."""
    return load_event
