"""The shared event parser's strict mode (the event worker's) and the one log format."""

from __future__ import annotations

import json
import logging

import pytest

from yoctogram_common import jsonlog
from yoctogram_common.events import UnknownEvent, parse_event

EVENTBRIDGE = {
    "source": "aws.s3",
    "detail-type": "Object Created",
    "detail": {"bucket": {"name": "b"}, "object": {"key": "public/originals/x", "etag": "e", "size": 3}},
}
S3_RECORD = {
    "Records": [
        {
            "eventSource": "aws:s3",
            "eventName": "ObjectCreated:Post",
            "s3": {"bucket": {"name": "b"}, "object": {"key": "public/originals/a+b", "eTag": '"e"'}},
        }
    ]
}


def test_both_shapes_give_the_same_objects() -> None:
    [bridge] = parse_event(EVENTBRIDGE, strict=True)
    [record] = parse_event(S3_RECORD, strict=True)
    assert (bridge.bucket, bridge.key, bridge.etag, bridge.size) == ("b", "public/originals/x", "e", 3)
    assert (record.key, record.etag) == ("public/originals/a b", "e")  # notification keys are URL-encoded


@pytest.mark.parametrize(
    "message",
    [
        "not an object",
        {"Records": "not a list"},
        {"something": "else"},
        {"source": "aws.s3", "detail-type": "Object Created", "detail": {"bucket": {}}},
    ],
    ids=["not an object", "Records not a list", "unknown shape", "malformed EventBridge"],
)
def test_strict_refuses_what_it_does_not_know_and_lenient_ignores_it(message: object) -> None:
    with pytest.raises(UnknownEvent):
        parse_event(message, strict=True)
    assert parse_event(message) == []


def test_known_events_that_create_nothing_are_no_error() -> None:
    deleted = {**EVENTBRIDGE, "detail-type": "Object Deleted"}
    assert parse_event(deleted, strict=True) == []
    assert parse_event({"Event": "s3:TestEvent", "Bucket": "b"}, strict=True) == []


def test_one_log_format_with_the_request_id_and_extras() -> None:
    formatter = jsonlog.JsonFormatter()
    record = logging.LogRecord("app.events", logging.WARNING, __file__, 1, "moved %s", ("x",), None)
    record.image_id = "abc"
    token = jsonlog.request_id.set("req-1")
    try:
        line = json.loads(formatter.format(record))
    finally:
        jsonlog.request_id.reset(token)
    assert list(line)[:5] == ["time", "level", "logger", "message", "request_id"]
    assert line["level"] == "WARNING" and line["message"] == "moved x" and line["request_id"] == "req-1"
    assert line["image_id"] == "abc" and line["time"].endswith("+00:00")
    assert json.loads(formatter.format(record))["request_id"] == jsonlog.NO_REQUEST


def test_a_bad_level_is_refused_by_name() -> None:
    with pytest.raises(ValueError, match="LOG_LEVEL must be one of DEBUG, INFO, WARNING, ERROR"):
        jsonlog.configure("yoctogram-test", level="LOUD")
