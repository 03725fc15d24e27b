"""The bucket emptier's handler (stages/components/bucket_emptier/index.py) against moto's S3, answering a
real HTTP server as CloudFormation's response URL."""

from __future__ import annotations

from types import ModuleType, SimpleNamespace
from typing import Any

import boto3
from moto import mock_aws

from stages.components.emptied_on_delete import HANDLER
from tests.conftest import load_file


def load_handler() -> ModuleType:
    return load_file("bucket_emptier", HANDLER)


def event(kind: str, url: str, bucket: str) -> dict[str, Any]:
    return {
        "RequestType": kind,
        "ResponseURL": url,
        "StackId": "stack",
        "RequestId": "request",
        "LogicalResourceId": "Emptier",
        "ResourceProperties": {"BucketName": bucket},
    }


CONTEXT = SimpleNamespace(log_stream_name="stream")


@mock_aws
def test_delete_removes_every_version_so_the_bucket_can_go(
    responses: tuple[str, list[dict[str, Any]]],
) -> None:
    url, received = responses
    s3 = boto3.client("s3", region_name="us-east-1")
    s3.create_bucket(Bucket="photos")
    s3.put_bucket_versioning(Bucket="photos", VersioningConfiguration={"Status": "Enabled"})
    handler = load_handler()
    handler.PAGE = 100  # pages of 100 rather than 1,000: the same paths with a tenth of the objects
    for index in range(2 * handler.PAGE + 20):  # more than two pages of versions
        s3.put_object(Bucket="photos", Key=f"public/originals/{index % 70}", Body=b"x")
    s3.delete_object(Bucket="photos", Key="public/originals/1")  # a delete marker

    handler.handler(event("Create", url, "photos"), CONTEXT)
    assert s3.list_object_versions(Bucket="photos").get("Versions")  # create and update touch nothing

    handler.handler(event("Delete", url, "photos"), CONTEXT)
    listed = s3.list_object_versions(Bucket="photos")
    assert not listed.get("Versions") and not listed.get("DeleteMarkers")
    s3.delete_bucket(Bucket="photos")
    assert [r["Status"] for r in received] == ["SUCCESS", "SUCCESS"]


@mock_aws
def test_a_bucket_already_gone_is_success_and_an_error_is_reported(
    responses: tuple[str, list[dict[str, Any]]],
) -> None:
    url, received = responses
    handler = load_handler()
    handler.handler(event("Delete", url, "never-made"), CONTEXT)
    broken = event("Delete", url, "photos")
    del broken["ResourceProperties"]["BucketName"]
    handler.handler(broken, CONTEXT)  # CloudFormation must hear of a failure, or it waits an hour
    assert [r["Status"] for r in received] == ["SUCCESS", "FAILED"]
    assert "KeyError" in received[1]["Reason"]
