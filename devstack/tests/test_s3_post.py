"""The local S3 server checks what S3 checks: presigned POST forms (parsing and policy) and signatures.

Every test runs against the session's real server (moto behind `devstack.s3auth.S3Gateway`).
"""

from __future__ import annotations

import re
import time
import uuid
from collections.abc import Callable
from typing import Any

import boto3
import pytest
import requests
from botocore.config import Config
from botocore.exceptions import ClientError

from devstack.s3server import Layout, client, queue_url

from .test_services import _about, _drain

BUCKET = Layout.public_bucket
MAX_BYTES = 1000
Form = dict[str, str]
Part = tuple[str, bytes, str | None]  # (name, value, filename or None)


def presigned(endpoint: str, key: str, *, s3: Any = None, expires: int = 300) -> tuple[str, Form]:
    """A presigned POST shaped like the app's (storage.presigned_post): exact key, image/*, 1..MAX_BYTES."""
    post = (s3 or client("s3", endpoint)).generate_presigned_post(
        BUCKET,
        key,
        Fields={"Content-Type": "image/png"},
        Conditions=[["content-length-range", 1, MAX_BYTES], ["starts-with", "$Content-Type", "image/"]],
        ExpiresIn=expires,
    )
    return post["url"], dict(post["fields"])


def multipart(parts: list[Part], boundary: str = "b0undary") -> tuple[bytes, dict[str, str]]:
    """A multipart body written part by part, in this order: (name, value, filename or None)."""
    body = b""
    for name, value, filename in parts:
        extra = f'; filename="{filename}"' if filename is not None else ""
        body += f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"{extra}\r\n\r\n'.encode()
        body += value + b"\r\n"
    body += f"--{boundary}--\r\n".encode()
    return body, {"Content-Type": f"multipart/form-data; boundary={boundary}"}


def error_of(response: requests.Response) -> tuple[int, str, str]:
    """(status, S3 error code, message) of a refusal, checking it is S3's XML error."""
    assert response.headers["Content-Type"] == "application/xml", response.text
    code = re.search(r"<Code>([^<]*)</Code>", response.text)
    message = re.search(r"<Message>([^<]*)</Message>", response.text)
    assert code and message, response.text
    return response.status_code, code.group(1), message.group(1).replace("&quot;", '"')


def stored(endpoint: str, key: str) -> dict[str, Any] | None:
    try:
        got = client("s3", endpoint).get_object(Bucket=BUCKET, Key=key)
    except ClientError:
        return None
    return {"body": got["Body"].read(), "type": got["ContentType"]}


def new_key() -> str:
    return f"public/originals/{uuid.uuid4()}"


# --- accepted forms ---------------------------------------------------------------------------
def test_every_field_sent_as_a_file_part_is_accepted_and_notifies_once(moto_endpoint: str) -> None:
    """What `requests.post(url, files={**fields, "file": ...})` sends: each field a part with a filename."""
    key = new_key()
    url, fields = presigned(moto_endpoint, key)
    files: dict[str, Any] = {**fields, "file": ("photo.png", b"\x89PNG one")}
    response = requests.post(url, files=files, timeout=10)
    assert response.status_code == 204, response.text
    assert stored(moto_endpoint, key) == {"body": b"\x89PNG one", "type": "image/png"}
    records = _about(_drain(client("sqs", moto_endpoint), queue_url(moto_endpoint), until=key), key)
    assert [r["eventName"] for r in records] == ["ObjectCreated:Post"]


def test_plain_fields_then_the_file_are_accepted_and_notify_once(moto_endpoint: str) -> None:
    key = new_key()
    url, fields = presigned(moto_endpoint, key)
    response = requests.post(
        url, data=fields, files={"file": ("photo.png", b"\x89PNG two", "image/png")}, timeout=10
    )
    assert response.status_code == 204, response.text
    assert stored(moto_endpoint, key) == {"body": b"\x89PNG two", "type": "image/png"}
    records = _about(_drain(client("sqs", moto_endpoint), queue_url(moto_endpoint), until=key), key)
    assert [r["eventName"] for r in records] == ["ObjectCreated:Post"]


def test_parts_after_the_file_are_ignored(moto_endpoint: str) -> None:
    key, elsewhere = new_key(), new_key()
    url, fields = presigned(moto_endpoint, key)
    parts: list[Part] = [(name, value.encode(), None) for name, value in fields.items()]
    parts += [
        ("file", b"\x89PNG three", "a.png"),
        ("key", elsewhere.encode(), None),
        ("acl", b"public-read", None),
    ]
    body, headers = multipart(parts)
    response = requests.post(url, data=body, headers=headers, timeout=10)
    assert response.status_code == 204, response.text
    assert stored(moto_endpoint, key) == {"body": b"\x89PNG three", "type": "image/png"}
    assert stored(moto_endpoint, elsewhere) is None


# --- policy violations --------------------------------------------------------------------------
def _other_credentials(endpoint: str, key_id: str, secret: str) -> Any:
    return boto3.client(
        "s3",
        endpoint_url=endpoint,
        region_name="us-west-2",
        aws_access_key_id=key_id,
        aws_secret_access_key=secret,
        config=Config(signature_version="s3v4"),
    )


def _resign_policy_for(fields: Form, other_key: str) -> Form:
    """The policy edited to allow another key, the signature kept (what a tamperer can do)."""
    import base64
    import json

    policy = json.loads(base64.b64decode(fields["policy"]))
    policy["conditions"] = [
        {"key": other_key} if isinstance(c, dict) and "key" in c else c for c in policy["conditions"]
    ]
    return {**fields, "key": other_key, "policy": base64.b64encode(json.dumps(policy).encode()).decode()}


# (what the client does wrong) -> (fields, file bytes, bucket) changed; expected status, code, message
Violation = Callable[[str, Form, str], tuple[Form, bytes, str]]
VIOLATIONS: dict[str, tuple[Violation, int, str, str]] = {
    "another user's key": (
        lambda ep, f, k: ({**f, "key": "private/renditions/someone-else.webp"}, b"x", BUCKET),
        403,
        "AccessDenied",
        'Invalid according to Policy: Policy Condition failed: ["eq", "$key", "{key}"]',
    ),
    "another bucket": (
        lambda ep, f, k: (f, b"x", Layout.private_bucket),
        403,
        "AccessDenied",
        f'Invalid according to Policy: Policy Condition failed: ["eq", "$bucket", "{BUCKET}"]',
    ),
    "an html page": (
        lambda ep, f, k: ({**f, "Content-Type": "text/html"}, b"<script>alert(1)</script>", BUCKET),
        403,
        "AccessDenied",
        'Invalid according to Policy: Policy Condition failed: ["starts-with", "$Content-Type", "image/"]',
    ),
    "an image type hiding html": (
        lambda ep, f, k: ({**f, "Content-Type": "image/png, text/html"}, b"x", BUCKET),
        403,
        "AccessDenied",
        'Invalid according to Policy: Policy Condition failed: ["starts-with", "$Content-Type", "image/"]',
    ),
    "no content type": (
        lambda ep, f, k: ({n: v for n, v in f.items() if n != "Content-Type"}, b"x", BUCKET),
        403,
        "AccessDenied",
        'Invalid according to Policy: Policy Condition failed: ["starts-with", "$Content-Type", "image/"]',
    ),
    "too large": (
        lambda ep, f, k: (f, b"x" * (MAX_BYTES + 1), BUCKET),
        400,
        "EntityTooLarge",
        "Your proposed upload exceeds the maximum allowed size",
    ),
    "empty": (
        lambda ep, f, k: (f, b"", BUCKET),
        400,
        "EntityTooSmall",
        "Your proposed upload is smaller than the minimum allowed size",
    ),
    "a field the policy does not name": (
        lambda ep, f, k: ({**f, "acl": "public-read"}, b"x", BUCKET),
        403,
        "AccessDenied",
        "Invalid according to Policy: Extra input fields: acl",
    ),
    "expired": (
        lambda ep, f, k: (presigned(ep, k, expires=-5)[1], b"x", BUCKET),
        403,
        "AccessDenied",
        "Invalid according to Policy: Policy expired.",
    ),
    "a forged signature": (
        lambda ep, f, k: ({**f, "x-amz-signature": "0" * 64}, b"x", BUCKET),
        403,
        "SignatureDoesNotMatch",
        "The request signature we calculated does not match the signature you provided.",
    ),
    "an edited policy": (
        lambda ep, f, k: (_resign_policy_for(f, "private/originals/victim"), b"x", BUCKET),
        403,
        "SignatureDoesNotMatch",
        "The request signature we calculated does not match the signature you provided.",
    ),
    "the right key id with another secret": (
        lambda ep, f, k: (presigned(ep, k, s3=_other_credentials(ep, "testing", "guess"))[1], b"x", BUCKET),
        403,
        "SignatureDoesNotMatch",
        "The request signature we calculated does not match the signature you provided.",
    ),
    "another access key": (
        lambda ep, f, k: (presigned(ep, k, s3=_other_credentials(ep, "someone", "else"))[1], b"x", BUCKET),
        403,
        "InvalidAccessKeyId",
        "The AWS Access Key Id you provided does not exist in our records.",
    ),
    "no policy at all (anonymous)": (
        lambda ep, f, k: ({"key": k, "Content-Type": "image/png"}, b"x", BUCKET),
        403,
        "AccessDenied",
        "Access Denied",
    ),
    "a SigV2 form": (
        lambda ep, f, k: (
            {"key": k, "AWSAccessKeyId": "testing", "policy": f["policy"], "signature": "x"},
            b"x",
            BUCKET,
        ),
        400,
        "InvalidRequest",
        "The authorization mechanism you have provided is not supported. Please use AWS4-HMAC-SHA256.",
    ),
}


@pytest.mark.parametrize("violation", list(VIOLATIONS))
def test_policy_violations_are_refused_as_s3_refuses_them(moto_endpoint: str, violation: str) -> None:
    change, status, code, message = VIOLATIONS[violation]
    key = new_key()
    _url, fields = presigned(moto_endpoint, key)
    sent_fields, content, bucket = change(moto_endpoint, fields, key)
    response = requests.post(
        f"{moto_endpoint}/{bucket}",
        data=sent_fields,
        files={"file": ("a.png", content, "image/png")},
        timeout=10,
    )
    got_status, got_code, got_message = error_of(response)
    assert (got_status, got_code) == (status, code)
    assert got_message.startswith(message.replace("{key}", key))
    for written in (key, sent_fields.get("key", key)):
        assert stored(moto_endpoint, written) is None
    assert stored(moto_endpoint, "private/renditions/someone-else.webp") is None


def test_a_refusal_is_readable_by_the_web_client(moto_endpoint: str) -> None:
    """The browser shows S3's reason (frontend/src/upload.js): the refusal carries the CORS header."""
    _url, fields = presigned(moto_endpoint, new_key())
    origin = "http://127.0.0.1:8000"
    response = requests.post(
        f"{moto_endpoint}/{BUCKET}",
        data=fields,
        files={"file": ("a.png", b"x" * (MAX_BYTES + 1))},
        headers={"Origin": origin},
        timeout=10,
    )
    assert error_of(response)[1] == "EntityTooLarge"
    assert response.headers["Access-Control-Allow-Origin"] == origin
    preflight = requests.options(
        f"{moto_endpoint}/{BUCKET}",
        headers={"Origin": origin, "Access-Control-Request-Method": "POST"},
        timeout=10,
    )
    assert preflight.status_code == 200
    assert preflight.headers["Access-Control-Allow-Origin"] in (origin, "*")


# --- malformed forms ----------------------------------------------------------------------------
def _fields_then_file(fields: Form, *, drop: str = "", file: bool = True) -> list[Part]:
    parts = [(name, value.encode(), None) for name, value in fields.items() if name != drop]
    return parts + ([("file", b"\x89PNG", "a.png")] if file else [])


MALFORMED: dict[str, tuple[Callable[[Form], tuple[bytes, dict[str, str]]], int, str, str]] = {
    "no key": (
        lambda f: multipart(_fields_then_file(f, drop="key")),
        400,
        "InvalidArgument",
        "Bucket POST must contain a field named 'key'.",
    ),
    "no file": (
        lambda f: multipart(_fields_then_file(f, file=False)),
        400,
        "InvalidArgument",
        "POST requires exactly one file upload per request.",
    ),
    "the key after the file": (
        lambda f: multipart([*_fields_then_file(f, drop="key"), ("key", f["key"].encode(), None)]),
        400,
        "InvalidArgument",
        "Bucket POST must contain a field named 'key'.",
    ),
    "an empty body": (
        lambda f: (b"", {"Content-Type": "multipart/form-data; boundary=b0undary"}),
        400,
        "MalformedPOSTRequest",
        "The body of your POST request is not well-formed multipart/form-data.",
    ),
    "a body in another boundary": (
        lambda f: (
            multipart(_fields_then_file(f))[0],
            {"Content-Type": "multipart/form-data; boundary=other"},
        ),
        400,
        "MalformedPOSTRequest",
        "The body of your POST request is not well-formed multipart/form-data.",
    ),
    "no boundary": (
        lambda f: (multipart(_fields_then_file(f))[0], {"Content-Type": "multipart/form-data"}),
        400,
        "MalformedPOSTRequest",
        "The body of your POST request is not well-formed multipart/form-data.",
    ),
    "garbage": (
        lambda f: (
            b"\x00\xff garbage --b0undary",
            {"Content-Type": "multipart/form-data; boundary=b0undary"},
        ),
        400,
        "MalformedPOSTRequest",
        "The body of your POST request is not well-formed multipart/form-data.",
    ),
    "a file cut short": (
        lambda f: (
            multipart(_fields_then_file(f))[0][:-30],
            {"Content-Type": "multipart/form-data; boundary=b0undary"},
        ),
        400,
        "MalformedPOSTRequest",
        "The body of your POST request is not well-formed multipart/form-data.",
    ),
    "a part without a name": (
        lambda f: multipart([("", b"x", None), *_fields_then_file(f)]),
        400,
        "MalformedPOSTRequest",
        "The body of your POST request is not well-formed multipart/form-data.",
    ),
    "a url-encoded form": (
        lambda f: (b"key=x&file=y", {"Content-Type": "application/x-www-form-urlencoded"}),
        412,
        "PreconditionFailed",
        "At least one of the pre-conditions you specified did not hold",
    ),
    "no content type": (
        lambda f: (b"key=x", {}),
        412,
        "PreconditionFailed",
        "At least one of the pre-conditions you specified did not hold",
    ),
}


@pytest.mark.parametrize("form", list(MALFORMED))
def test_malformed_posts_get_s3s_error_never_a_500(moto_endpoint: str, form: str) -> None:
    build, status, code, message = MALFORMED[form]
    key = new_key()
    url, fields = presigned(moto_endpoint, key)
    body, headers = build(fields)
    response = requests.post(url, data=body, headers=headers, timeout=10)
    got_status, got_code, got_message = error_of(response)
    assert (got_status, got_code) == (status, code)
    assert got_message.startswith(message)
    assert stored(moto_endpoint, key) is None


# --- signed requests ------------------------------------------------------------------------------
def test_anonymous_requests_are_refused(moto_endpoint: str) -> None:
    key = new_key()
    client("s3", moto_endpoint).put_object(Bucket=BUCKET, Key=key, Body=b"secret")
    for method, path, body in [
        ("GET", "/", b""),
        ("GET", f"/{BUCKET}", b""),
        ("GET", f"/{BUCKET}?list-type=2", b""),
        ("GET", f"/{BUCKET}/{key}", b""),
        ("PUT", f"/{BUCKET}/public/originals/page.html", b"<html>"),
        ("DELETE", f"/{BUCKET}/{key}", b""),
        ("POST", f"/{BUCKET}?delete", b"<Delete><Object><Key>k</Key></Object></Delete>"),
    ]:
        response = requests.request(method, f"{moto_endpoint}{path}", data=body, timeout=10)
        assert error_of(response) == (403, "AccessDenied", "Access Denied"), (method, path)
    assert stored(moto_endpoint, key) == {"body": b"secret", "type": "binary/octet-stream"}
    assert stored(moto_endpoint, "public/originals/page.html") is None


def test_requests_signed_with_other_credentials_are_refused(moto_endpoint: str) -> None:
    for key_id, secret, code in [
        ("someone", "else", "InvalidAccessKeyId"),
        ("testing", "guess", "SignatureDoesNotMatch"),
    ]:
        with pytest.raises(ClientError) as refused:
            _other_credentials(moto_endpoint, key_id, secret).list_objects_v2(Bucket=BUCKET)
        assert refused.value.response["Error"]["Code"] == code
        assert refused.value.response["ResponseMetadata"]["HTTPStatusCode"] == 403
    sqs = boto3.client(
        "sqs",
        endpoint_url=moto_endpoint,
        region_name="us-west-2",
        aws_access_key_id="someone",
        aws_secret_access_key="x",
    )
    with pytest.raises(ClientError) as refused:
        sqs.receive_message(QueueUrl=queue_url(moto_endpoint))
    assert refused.value.response["Error"]["Code"] == "InvalidClientTokenId"


def test_signed_requests_work_for_any_key_and_presigned_urls_expire(moto_endpoint: str) -> None:
    s3 = client("s3", moto_endpoint)
    odd = "public/originals/a b+c ü~!*'()=;:@&$,%41.png"
    s3.put_object(Bucket=BUCKET, Key=odd, Body=b"odd", ContentType="image/png", Metadata={"note": "kept"})
    assert s3.head_object(Bucket=BUCKET, Key=odd)["Metadata"] == {"note": "kept"}
    listed = s3.list_objects_v2(Bucket=BUCKET, Prefix="public/originals/a b+c")["Contents"]
    assert [item["Key"] for item in listed] == [odd]
    url = s3.generate_presigned_url("get_object", Params={"Bucket": BUCKET, "Key": odd}, ExpiresIn=60)
    assert requests.get(url, timeout=10).content == b"odd"
    assert error_of(requests.get(url.replace("X-Amz-Expires=60", "X-Amz-Expires=600"), timeout=10))[1] == (
        "SignatureDoesNotMatch"
    )
    expired = s3.generate_presigned_url("get_object", Params={"Bucket": BUCKET, "Key": odd}, ExpiresIn=1)
    time.sleep(2)
    assert error_of(requests.get(expired, timeout=10))[:2] == (403, "AccessDenied")
    s3.delete_objects(Bucket=BUCKET, Delete={"Objects": [{"Key": odd}]})
    assert stored(moto_endpoint, odd) is None
