"""Custom resource: on Delete, remove every object version of the bucket named in its properties.

What `auto_delete_objects` does, without touching the bucket's policy (another stack owns it): this
function's own role may list and delete in that one bucket. Create and Update do nothing.
"""

import json
import urllib.request

import boto3

PAGE = 1000  # the most versions S3 lists, and deletes, in one call


def _respond(event, context, status, reason=""):
    body = json.dumps(
        {
            "Status": status,
            "Reason": reason or f"see {context.log_stream_name}",
            "PhysicalResourceId": event.get("PhysicalResourceId") or event["LogicalResourceId"],
            "StackId": event["StackId"],
            "RequestId": event["RequestId"],
            "LogicalResourceId": event["LogicalResourceId"],
        }
    ).encode()
    # CloudFormation's pre-signed https URL
    request = urllib.request.Request(  # noqa: S310
        event["ResponseURL"], data=body, method="PUT", headers={"content-type": ""}
    )
    urllib.request.urlopen(request, timeout=30)  # noqa: S310


def empty(bucket_name):
    """Delete the first page of versions until there is none (paging while deleting would skip some)."""
    s3 = boto3.client("s3")
    while True:
        page = s3.list_object_versions(Bucket=bucket_name, MaxKeys=PAGE)
        keys = [
            {"Key": item["Key"], "VersionId": item["VersionId"]}
            for item in page.get("Versions", []) + page.get("DeleteMarkers", [])
        ]
        if not keys:
            return
        s3.delete_objects(Bucket=bucket_name, Delete={"Objects": keys, "Quiet": True})


def handler(event, context):
    try:
        if event["RequestType"] == "Delete":
            try:
                empty(event["ResourceProperties"]["BucketName"])
            except boto3.client("s3").exceptions.NoSuchBucket:
                pass
        _respond(event, context, "SUCCESS")
    except Exception as error:  # CloudFormation must hear of every failure, or it waits an hour
        _respond(event, context, "FAILED", f"{type(error).__name__}: {error}")
