"""Parsing of both event shapes (and SQS-wrapped ones) from the JSON samples on disk."""

from __future__ import annotations

import json

import pytest

from yoctogram_common.events import CreatedObject, normalize_etag, parse_event
from yoctogram_common.keys import ImageKey, parse_key


def test_s3_notification(sample_event):
    assert parse_event(sample_event("s3_object_created.json")) == [
        CreatedObject(
            bucket="yoctogram-public-images",
            key="public/originals/6f1c2a4e-8b1d-4c3a-9f0e-2d7b5a9c1e44",
            etag="d41d8cd98f00b204e9800998ecf8427e",
            size=1024,
            shape="s3",
        )
    ]


def test_every_record_is_used_in_order(sample_event):
    objects = parse_event(sample_event("s3_two_objects_created.json"))

    assert [obj.key for obj in objects] == [
        "public/originals/0b9a3f61-5d0e-4a57-8f8c-3f2a6b1c9d01",
        "public/originals/7c2e9d84-1f3b-4e6a-b5d7-9a0c8e2f4b13",
    ]


def test_s3_keys_are_url_decoded_and_etags_unquoted(sample_event):
    (obj,) = parse_event(sample_event("s3_url_encoded_key.json"))

    assert obj.key == "public/originals/holiday photo(1).jpg"
    assert obj.etag == "5d41402abc4b2a76b9719d911017c592"


def test_eventbridge_object_created(sample_event):
    assert parse_event(sample_event("eventbridge_object_created.json")) == [
        CreatedObject(
            bucket="yoctogram-private-images",
            key="private/originals/3e8d1b52-6a4f-4c09-8e7d-1b2a3c4d5e6f",
            etag="b1946ac92492d2347c6235b4d2611184",
            size=1024,
            shape="eventbridge",
        )
    ]


def test_sqs_batch_of_s3_notifications(sample_event):
    (obj,) = parse_event(sample_event("sqs_s3_notification.json"))

    assert (obj.bucket, obj.key, obj.shape) == (
        "yoctogram-public-images",
        "public/originals/9d4c2b1a-0e8f-4a7b-9c6d-5e4f3a2b1c0d",
        "s3",
    )


def test_sqs_batch_of_eventbridge_events(sample_event):
    body = json.dumps(sample_event("eventbridge_object_created.json"))
    event = {"Records": [{"messageId": "1", "eventSource": "aws:sqs", "body": body}]}

    assert [obj.shape for obj in parse_event(event)] == ["eventbridge"]


@pytest.mark.parametrize(
    "name", ["s3_test_event.json", "s3_object_removed.json", "eventbridge_object_deleted.json"]
)
def test_events_that_create_nothing(sample_event, name):
    assert parse_event(sample_event(name)) == []


@pytest.mark.parametrize(
    "event",
    [
        None,
        [],
        {},
        {"Records": "nope"},
        {
            "Records": [
                42,
                {"eventSource": "aws:sns"},
                {"eventSource": "aws:s3", "eventName": "ObjectCreated:Put"},
            ]
        },
        {"Records": [{"eventSource": "aws:sqs", "body": "not json"}]},
        {"source": "aws.s3", "detail-type": "Object Created", "detail": {"bucket": {}}},
    ],
)
def test_malformed_events_yield_nothing_instead_of_failing(event):
    assert parse_event(event) == []


def test_size_and_etag_are_optional(sample_event):
    event = sample_event("eventbridge_object_created.json")
    del event["detail"]["object"]["etag"]
    event["detail"]["object"]["size"] = "n/a"

    (obj,) = parse_event(event)

    assert (obj.etag, obj.size) == (None, None)
    assert normalize_etag('""') is None and normalize_etag('"abc-2"') == "abc-2"


@pytest.mark.parametrize(
    ("key", "expected"),
    [
        (
            "public/originals/6f1c2a4e-8b1d-4c3a-9f0e-2d7b5a9c1e44",
            ("public", "6f1c2a4e-8b1d-4c3a-9f0e-2d7b5a9c1e44"),
        ),
        ("private/originals/abc_DEF-123", ("private", "abc_DEF-123")),
        ("public/renditions/6f1c2a4e-8b1d-4c3a-9f0e-2d7b5a9c1e44.webp", None),
        ("public/renditions/6f1c2a4e.rejected", None),
        ("public/originals/", None),
        ("public/originals/a/b", None),
        ("public/originals/../private/originals/x", None),
        ("shared/originals/6f1c2a4e", None),
        ("originals/6f1c2a4e", None),
        ("public/originals/holiday photo.jpg", None),
    ],
)
def test_only_original_keys_are_originals(key, expected):
    parsed = parse_key(key)
    if parsed is not None and parsed.kind != "original":
        parsed = None

    assert (None if parsed is None else (parsed.privacy, parsed.image_id)) == expected


def test_output_keys():
    original = ImageKey("private", "3e8d1b52-6a4f-4c09-8e7d-1b2a3c4d5e6f", "original")

    assert original.key == "private/originals/3e8d1b52-6a4f-4c09-8e7d-1b2a3c4d5e6f"
    assert original.rendition_key("webp") == "private/renditions/3e8d1b52-6a4f-4c09-8e7d-1b2a3c4d5e6f.webp"
    assert original.rendition_key("jpg") == "private/renditions/3e8d1b52-6a4f-4c09-8e7d-1b2a3c4d5e6f.jpg"
    assert original.rejected_key == "private/renditions/3e8d1b52-6a4f-4c09-8e7d-1b2a3c4d5e6f.rejected"
