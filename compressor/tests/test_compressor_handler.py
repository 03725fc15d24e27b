"""The Lambda handler end to end: real generated images in a real S3-compatible server (moto), driven by
the JSON sample events of ``events/`` in both shapes."""

from __future__ import annotations

import io
import json
import logging
import struct
import sys
from typing import Any

import boto3
import pytest
from botocore.config import Config
from PIL import Image

import handler as compressor
import sample_images
from rendition import ConfigError, RenditionOptions
from yoctogram_common import jsonlog
from yoctogram_common.keys import parse_key

OPTIONS = RenditionOptions()
IMMUTABLE = "public, max-age=31536000, immutable"


def rendition_key(original_key: str, extension: str = "webp") -> str:
    parsed = parse_key(original_key)
    assert parsed is not None
    return parsed.rendition_key(extension)


def marker_key(original_key: str) -> str:
    parsed = parse_key(original_key)
    assert parsed is not None
    return parsed.rejected_key


def quarantine_key(original_key: str) -> str:
    parsed = parse_key(original_key)
    assert parsed is not None
    return parsed.quarantine_key


def keys_in(s3: Any, bucket: str) -> set[str]:
    return {item["Key"] for item in s3.list_objects_v2(Bucket=bucket).get("Contents", [])}


def fetch(s3: Any, bucket: str, key: str) -> tuple[bytes, dict[str, Any]]:
    response = s3.get_object(Bucket=bucket, Key=key)
    return response["Body"].read(), response


def webp_chunks(data: bytes) -> list[str]:
    """The RIFF chunk ids of a WebP file (metadata would be EXIF, XMP or ICCP chunks)."""
    assert data[:4] == b"RIFF" and data[8:12] == b"WEBP"
    chunks, offset = [], 12
    while offset + 8 <= len(data):
        kind, size = (
            data[offset : offset + 4].decode("ascii"),
            struct.unpack("<I", data[offset + 4 : offset + 8])[0],
        )
        chunks.append(kind.strip())
        offset += 8 + size + (size & 1)
    return chunks


def assert_metadata_free(data: bytes) -> None:
    assert set(webp_chunks(data)) <= {"VP8", "VP8L", "VP8X", "ALPH"}
    image = Image.open(io.BytesIO(data))
    assert not image.getexif()
    assert not {"exif", "xmp", "icc_profile"} & set(image.info)


def close(pixel: tuple[int, ...], expected: tuple[int, ...], tolerance: int = 12) -> bool:
    return all(abs(a - b) <= tolerance for a, b in zip(pixel, expected, strict=True))


def run(event: dict[str, Any], s3: Any, context: Any = None, options: RenditionOptions = OPTIONS) -> dict:
    return compressor.handler(event, context, s3_client=s3, options=options)


def process_one(s3: Any, bucket: str, upload: Any, make_event: Any, data: bytes, **upload_args: Any):
    """Upload ``data`` as an original, send its S3 event, return (key, summary)."""
    key, etag = upload(data, **upload_args)
    summary = run(make_event("s3_object_created.json", (key, etag)), s3)
    return key, summary


def test_jpeg_with_orientation_and_gps_is_rotated_and_stripped(
    s3, bucket, upload, make_event, lambda_context
):
    original = sample_images.oriented_jpeg(orientation=6)
    source = Image.open(io.BytesIO(original))
    assert source.getexif()[0x0112] == 6 and source.getexif().get_ifd(0x8825)  # the input has both
    key, etag = upload(original)

    summary = run(make_event("s3_object_created.json", (key, etag)), s3, lambda_context)

    assert summary["outcomes"] == {"created": 1}
    data, response = fetch(s3, bucket, rendition_key(key))
    assert response["ContentType"] == "image/webp"
    assert response["CacheControl"] == IMMUTABLE
    assert response["Metadata"]["source-etag"] == etag
    assert_metadata_free(data)
    assert b"Yoctocam" not in data and b"GPS" not in data
    image = Image.open(io.BytesIO(data)).convert("RGB")
    # Stored 600x400, red left / blue right; orientation 6 turns it 90 degrees clockwise: red on top.
    assert image.size == (400, 600)
    assert close(image.getpixel((200, 100)), (255, 0, 0))
    assert close(image.getpixel((200, 500)), (0, 0, 255))
    assert fetch(s3, bucket, key)[0] == original  # the original is untouched
    assert keys_in(s3, bucket) == {key, rendition_key(key)}


@pytest.mark.parametrize(
    "shape", ["s3_object_created.json", "eventbridge_object_created.json", "sqs_s3_notification.json"]
)
def test_every_event_shape_makes_the_same_rendition(s3, bucket, upload, make_event, shape):
    key, etag = upload(sample_images.encode(sample_images.photo_like(900, 600, seed=5), "JPEG", quality=90))

    summary = run(make_event(shape, (key, etag)), s3)

    assert summary["outcomes"] == {"created": 1}
    data, response = fetch(s3, bucket, rendition_key(key))
    assert Image.open(io.BytesIO(data)).size == (900, 600)  # small enough already: never upscaled
    assert response["ContentType"] == "image/webp"


def test_private_original_gets_a_private_rendition(s3, bucket, upload, make_event):
    key, etag = upload(sample_images.encode(sample_images.drawing(500, 400), "PNG"), privacy="private")

    run(make_event("eventbridge_object_created.json", (key, etag)), s3)

    assert key.startswith("private/originals/")
    _, response = fetch(s3, bucket, rendition_key(key))
    assert rendition_key(key).startswith("private/renditions/")
    assert response["CacheControl"] == "private, max-age=31536000, immutable"


def test_rgba_png_keeps_its_transparency(s3, bucket, upload, make_event):
    key, _ = process_one(s3, bucket, upload, make_event, sample_images.rgba_png(), content_type="image/png")

    image = Image.open(io.BytesIO(fetch(s3, bucket, rendition_key(key))[0]))
    assert image.mode == "RGBA" and image.size == (300, 200)
    assert close(image.getpixel((40, 100)), (0, 200, 0, 255))
    assert image.getpixel((260, 100))[3] == 0


def test_palette_gif_with_transparency(s3, bucket, upload, make_event):
    key, _ = process_one(
        s3,
        bucket,
        upload,
        make_event,
        sample_images.palette_gif_with_transparency(),
        content_type="image/gif",
    )

    image = Image.open(io.BytesIO(fetch(s3, bucket, rendition_key(key))[0]))
    assert image.mode == "RGBA"
    assert close(image.getpixel((20, 40)), (255, 0, 0, 255))
    assert image.getpixel((100, 40))[3] == 0


def test_animated_gif_becomes_its_first_frame(s3, bucket, upload, make_event):
    key, _ = process_one(
        s3, bucket, upload, make_event, sample_images.animated_gif(), content_type="image/gif"
    )

    image = Image.open(io.BytesIO(fetch(s3, bucket, rendition_key(key))[0]))
    assert not getattr(image, "is_animated", False)
    assert close(image.convert("RGB").getpixel((50, 50)), (255, 0, 0))


def test_cmyk_jpeg_is_converted_to_rgb(s3, bucket, upload, make_event):
    key, _ = process_one(s3, bucket, upload, make_event, sample_images.cmyk_jpeg())

    image = Image.open(io.BytesIO(fetch(s3, bucket, rendition_key(key))[0]))
    assert image.mode == "RGB"
    assert close(image.getpixel((50, 50)), (0, 255, 255))  # cyan
    assert close(image.getpixel((150, 50)), (255, 255, 0))  # yellow


def test_16_bit_greyscale_png_is_scaled_not_clipped(s3, bucket, upload, make_event):
    key, _ = process_one(s3, bucket, upload, make_event, sample_images.grey16_png(), content_type="image/png")

    image = Image.open(io.BytesIO(fetch(s3, bucket, rendition_key(key))[0])).convert("L")
    ramp = [image.getpixel((x, 32)) for x in (0, 64, 128, 192, 255)]
    assert all(
        abs(value - expected) <= 8 for value, expected in zip(ramp, (0, 64, 128, 192, 255), strict=True)
    )


def test_16_bit_rgb_png(s3, bucket, upload, make_event):
    key, _ = process_one(s3, bucket, upload, make_event, sample_images.rgb16_png(), content_type="image/png")

    image = Image.open(io.BytesIO(fetch(s3, bucket, rendition_key(key))[0]))
    assert image.size == (64, 32)
    assert close(image.convert("RGB").getpixel((32, 16)), (255, 128, 0))


def test_one_pixel_image(s3, bucket, upload, make_event):
    original = sample_images.encode(Image.new("RGB", (1, 1), (10, 200, 30)), "JPEG", quality=95)
    key, _ = process_one(s3, bucket, upload, make_event, original)

    data = fetch(s3, bucket, rendition_key(key))[0]
    assert Image.open(io.BytesIO(data)).size == (1, 1)
    assert len(data) <= 0.75 * len(original)


def test_twelve_megapixel_photo(s3, bucket, upload, make_event):
    original = sample_images.encode(sample_images.photo_like(4000, 3000, seed=12), "JPEG", quality=92)
    assert len(original) > 3_000_000  # the size of a real camera JPEG, not a flat colour
    key, _ = process_one(s3, bucket, upload, make_event, original)

    data, response = fetch(s3, bucket, rendition_key(key))
    image = Image.open(io.BytesIO(data))
    assert image.size == (1080, 810)
    assert (response["Metadata"]["width"], response["Metadata"]["height"]) == ("1080", "810")
    assert len(data) <= 0.75 * len(original)
    assert_metadata_free(data)


@pytest.mark.parametrize(
    ("case", "original", "code"),
    [
        ("bomb", sample_images.png_declaring(100_000, 100_000), "too_many_pixels"),
        (
            "truncated",
            sample_images.encode(sample_images.photo_like(640, 480), "JPEG", quality=90)[:20_000],
            "corrupt",
        ),
        ("html named .jpg", sample_images.HTML_PAGE, "not_an_image"),
        ("empty", b"", "empty"),
    ],
)
def test_bad_files_get_a_refusal_marker_and_do_not_fail(s3, bucket, upload, make_event, case, original, code):
    key, etag = upload(original)

    summary = run(make_event("s3_object_created.json", (key, etag)), s3)

    assert summary["outcomes"] == {"rejected": 1}
    # The refused file left the served prefix (originals/) for quarantine/, unchanged.
    assert keys_in(s3, bucket) == {quarantine_key(key), marker_key(key)}
    assert fetch(s3, bucket, quarantine_key(key))[0] == original
    body, response = fetch(s3, bucket, marker_key(key))
    marker = json.loads(body)
    assert marker["code"] == code and marker["reason"] and marker["source_etag"] == etag
    assert response["ContentType"] == "application/json"
    assert response["Metadata"]["source-etag"] == etag


def test_pixel_ceiling_is_checked_before_decoding(s3, bucket, upload, make_event):
    # A JPEG header claiming 4000x3000 over a 16x16 stream: decoding it would fail as corrupt, so a
    # too_many_pixels refusal shows the ceiling was applied to the declared size first.
    key, etag = upload(sample_images.jpeg_declaring(4000, 3000))

    run(
        make_event("s3_object_created.json", (key, etag)), s3, options=RenditionOptions(max_pixels=10_000_000)
    )

    assert json.loads(fetch(s3, bucket, marker_key(key))[0])["code"] == "too_many_pixels"


def test_too_large_file_is_refused_without_reading_it(s3, bucket, upload, make_event):
    key, etag = upload(sample_images.encode(sample_images.photo_like(300, 200), "JPEG"))

    run(
        make_event("s3_object_created.json", (key, etag)), s3, options=RenditionOptions(max_source_bytes=1000)
    )

    assert json.loads(fetch(s3, bucket, marker_key(key))[0])["code"] == "too_large"


@pytest.mark.parametrize("shape", ["s3_rendition_created.json", "eventbridge_rendition_created.json"])
def test_rendition_events_are_ignored(s3, bucket, make_event, s3_calls, shape):
    key = "public/renditions/6f1c2a4e-8b1d-4c3a-9f0e-2d7b5a9c1e44.webp"
    s3.put_object(Bucket=bucket, Key=key, Body=b"RIFF....WEBP", ContentType="image/webp")
    before = dict(s3_calls.counts)

    summary = run(make_event(shape, (key, None)), s3)

    assert summary["outcomes"] == {"ignored": 1}
    assert s3_calls.counts == before  # not a single S3 call
    assert keys_in(s3, bucket) == {key}


def test_marker_events_and_stray_keys_are_ignored(s3, bucket, make_event):
    event = make_event(
        "s3_two_objects_created.json",
        ("public/renditions/6f1c2a4e-8b1d-4c3a-9f0e-2d7b5a9c1e44.rejected", None),
        ("public/originals/6f1c2a4e-8b1d-4c3a-9f0e-2d7b5a9c1e44/nested", None),
    )

    assert run(event, s3)["outcomes"] == {"ignored": 2}
    assert keys_in(s3, bucket) == set()


def test_the_same_event_twice_does_no_extra_work(s3, bucket, upload, make_event, s3_calls):
    key, etag = upload(sample_images.encode(sample_images.photo_like(1600, 1200, seed=2), "JPEG", quality=90))
    event = make_event("s3_object_created.json", (key, etag))
    first = run(event, s3)
    rendition_etag = s3.head_object(Bucket=bucket, Key=rendition_key(key))["ETag"]
    puts, gets = s3_calls.of("PutObject"), s3_calls.of("GetObject")

    second = run(event, s3)

    assert first["outcomes"] == {"created": 1}
    assert second["outcomes"] == {"skipped": 1}
    assert second["results"][0]["output_key"] == rendition_key(key)
    assert (s3_calls.of("PutObject"), s3_calls.of("GetObject")) == (puts, gets)  # nothing read or written
    assert s3.head_object(Bucket=bucket, Key=rendition_key(key))["ETag"] == rendition_etag


def test_a_refused_file_is_not_refused_again(s3, bucket, upload, make_event, s3_calls):
    key, etag = upload(sample_images.HTML_PAGE)
    event = make_event("eventbridge_object_created.json", (key, etag))
    run(event, s3)
    puts = s3_calls.of("PutObject")

    assert run(event, s3)["outcomes"] == {"skipped": 1}
    assert s3_calls.of("PutObject") == puts


def test_event_without_etag_reads_it_from_s3(s3, bucket, upload, make_event):
    key, etag = upload(sample_images.encode(sample_images.drawing(400, 300), "JPEG", quality=90))
    event = make_event("eventbridge_object_created.json", (key, None))

    assert run(event, s3)["outcomes"] == {"created": 1}
    assert run(event, s3)["outcomes"] == {"skipped": 1}
    assert s3.head_object(Bucket=bucket, Key=rendition_key(key))["Metadata"]["source-etag"] == etag


def test_every_record_of_an_event_is_processed(s3, bucket, upload, make_event):
    good, good_etag = upload(
        sample_images.encode(sample_images.photo_like(800, 600, seed=3), "JPEG", quality=90)
    )
    bad, bad_etag = upload(sample_images.HTML_PAGE)

    summary = run(make_event("s3_two_objects_created.json", (good, good_etag), (bad, bad_etag)), s3)

    assert summary["outcomes"] == {"created": 1, "rejected": 1}
    assert keys_in(s3, bucket) == {good, quarantine_key(bad), rendition_key(good), marker_key(bad)}


def test_an_original_that_is_gone_is_not_an_error(s3, bucket, make_event):
    key = "public/originals/5a0c4d1e-2b3f-4a6c-8d9e-0f1a2b3c4d5e"

    for etag in ("0123456789abcdef0123456789abcdef", None):
        assert run(make_event("s3_object_created.json", (key, etag)), s3)["outcomes"] == {"missing": 1}
    assert keys_in(s3, bucket) == set()


def test_replacing_an_original_with_a_bad_file_keeps_the_rendition_and_quarantines_the_file(
    s3, bucket, make_event
):
    """A presigned form re-POSTed with a bad file: a `ready` row may point at the rendition, so it stays
    until a good version replaces it in place; the bad file is moved out of the served prefix."""
    key = "public/originals/1d2c3b4a-5e6f-4a7b-8c9d-0e1f2a3b4c5d"
    first = s3.put_object(Bucket=bucket, Key=key, Body=sample_images.rgba_png())["ETag"].strip('"')
    run(make_event("s3_object_created.json", (key, first)), s3)
    rendition = fetch(s3, bucket, rendition_key(key))[0]
    second = s3.put_object(Bucket=bucket, Key=key, Body=sample_images.HTML_PAGE)["ETag"].strip('"')

    assert run(make_event("s3_object_created.json", (key, second)), s3)["outcomes"] == {"rejected": 1}
    assert keys_in(s3, bucket) == {rendition_key(key), marker_key(key), quarantine_key(key)}
    assert fetch(s3, bucket, rendition_key(key))[0] == rendition
    third = s3.put_object(
        Bucket=bucket, Key=key, Body=sample_images.encode(sample_images.drawing(64, 48), "PNG")
    )["ETag"].strip('"')
    assert run(make_event("s3_object_created.json", (key, third)), s3)["outcomes"] == {"created": 1}
    assert keys_in(s3, bucket) == {key, rendition_key(key), quarantine_key(key)}
    assert fetch(s3, bucket, rendition_key(key))[1]["Metadata"]["source-etag"] == third


def test_a_retry_after_the_marker_finishes_the_quarantine(s3, bucket, upload, make_event):
    # As if the first invocation stopped between the marker and the move: the same bytes at the key again.
    key, etag = upload(sample_images.HTML_PAGE)
    event = make_event("s3_object_created.json", (key, etag))
    run(event, s3)
    assert s3.put_object(Bucket=bucket, Key=key, Body=sample_images.HTML_PAGE)["ETag"].strip('"') == etag

    assert run(event, s3)["outcomes"] == {"skipped": 1}
    assert keys_in(s3, bucket) == {marker_key(key), quarantine_key(key)}


def test_a_newer_original_is_not_quarantined_for_an_older_refusal(s3, bucket, upload, make_event):
    key, etag = upload(sample_images.HTML_PAGE)
    run(make_event("s3_object_created.json", (key, etag)), s3)
    newer = s3.put_object(Bucket=bucket, Key=key, Body=sample_images.rgba_png())["ETag"].strip('"')

    assert run(make_event("s3_object_created.json", (key, etag)), s3)["outcomes"] == {"skipped": 1}
    assert s3.head_object(Bucket=bucket, Key=key)["ETag"].strip('"') == newer


def test_jpeg_fallback_writes_a_jpg_rendition(s3, bucket, upload, make_event):
    options = RenditionOptions(output_format="jpeg")
    original = sample_images.oriented_jpeg(orientation=6)
    key, etag = upload(original)

    run(make_event("s3_object_created.json", (key, etag)), s3, options=options)

    data, response = fetch(s3, bucket, rendition_key(key, "jpg"))
    assert response["ContentType"] == "image/jpeg"
    image = Image.open(io.BytesIO(data))
    assert image.format == "JPEG" and image.size == (400, 600)
    assert not image.getexif() and b"Exif" not in data and b"Yoctocam" not in data
    assert len(data) <= 0.75 * len(original)


def test_s3_faults_raise_so_lambda_retries(make_event, upload, bucket):
    key, etag = upload(sample_images.rgba_png())
    unreachable = boto3.client(
        "s3",
        endpoint_url="http://127.0.0.1:9",  # discard port: connection refused
        region_name="us-west-2",
        config=Config(retries={"mode": "standard", "max_attempts": 1}, connect_timeout=1),
    )

    with pytest.raises(Exception, match="Could not connect"):
        run(make_event("s3_object_created.json", (key, etag)), unreachable)


def test_a_fault_on_one_record_does_not_stop_the_others(s3, bucket, upload, make_event):
    good, good_etag = upload(sample_images.rgba_png())
    event = make_event(
        "s3_two_objects_created.json",
        ("public/originals/4b3a2c1d-0e9f-4a8b-9c7d-6e5f4a3b2c1d", "0123456789abcdef0123456789abcdef"),
        (good, good_etag),
    )
    event["Records"][0]["s3"]["bucket"]["name"] = "no-such-bucket-for-the-compressor"

    with pytest.raises(Exception, match="NoSuchBucket"):
        run(event, s3)
    assert rendition_key(good) in keys_in(s3, bucket)


def test_handler_builds_its_own_client_from_the_environment(
    moto_endpoint, bucket, upload, make_event, monkeypatch
):
    monkeypatch.setenv("AWS_ENDPOINT_URL", moto_endpoint)
    monkeypatch.setenv("MAX_LONG_EDGE", "200")
    monkeypatch.setattr(compressor, "_s3_client", None)
    monkeypatch.setattr(compressor, "_options", None)
    key, etag = upload(sample_images.encode(sample_images.photo_like(800, 400), "JPEG", quality=90))

    summary = compressor.handler(make_event("s3_object_created.json", (key, etag)), None)

    assert summary["outcomes"] == {"created": 1}
    assert compressor._s3_client is not None
    client = boto3.client("s3", endpoint_url=moto_endpoint, region_name="us-west-2")
    data = client.get_object(Bucket=bucket, Key=rendition_key(key))["Body"].read()
    assert Image.open(io.BytesIO(data)).size == (200, 100)


def test_events_without_originals_need_no_client(monkeypatch, sample_event):
    monkeypatch.setattr(compressor, "default_s3_client", lambda: pytest.fail("no S3 client should be made"))

    for name in ("s3_test_event.json", "s3_object_removed.json", "eventbridge_object_deleted.json"):
        assert compressor.handler(sample_event(name), None, options=OPTIONS)["objects"] == 0


class ListHandler(logging.Handler):
    def __init__(self) -> None:
        super().__init__()
        self.setFormatter(jsonlog.JsonFormatter())
        self.lines: list[dict[str, Any]] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(json.loads(self.format(record)))


@pytest.fixture
def json_logs():
    capture = ListHandler()
    logger = logging.getLogger("compressor")
    logger.addHandler(capture)
    yield capture.lines
    logger.removeHandler(capture)


def test_refusals_are_logged_as_json_with_key_and_reason(s3, upload, make_event, lambda_context, json_logs):
    key, etag = upload(sample_images.png_declaring(100_000, 100_000))

    run(make_event("s3_object_created.json", (key, etag)), s3, lambda_context)

    refusal = next(line for line in json_logs if line["message"] == "refused the original")
    assert refusal["level"] == "WARNING" and refusal["logger"] == "compressor"
    assert refusal["key"] == key and refusal["code"] == "too_many_pixels" and "pixels" in refusal["reason"]
    assert refusal["request_id"] == lambda_context.aws_request_id
    summary = next(line for line in json_logs if line["message"] == "event processed")
    assert summary["outcomes"] == {"rejected": 1}


def test_the_handler_logger_writes_json_lines_to_stdout(capsys):
    jsonlog.configure("compressor.test-stdout", level="INFO")
    logger = logging.getLogger("compressor.test-stdout")
    logger.handlers[0].setStream(sys.stdout)  # capsys replaced stdout after the handler was made

    logger.info("hello", extra={"key": "public/originals/x"})

    line = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert line["message"] == "hello" and line["key"] == "public/originals/x" and line["level"] == "INFO"
    assert compressor.logger.propagate is False


def test_notifications_from_the_s3_server_through_a_queue(s3, bucket, upload, moto_endpoint):
    # The local wiring of docs/design.md: the S3 server notifies a queue of originals only; a dispatcher hands
    # each message to the handler. The rendition the handler writes must not notify anything.
    sqs = boto3.client("sqs", endpoint_url=moto_endpoint, region_name="us-west-2")
    queue_url = sqs.create_queue(QueueName=f"{bucket}-originals")["QueueUrl"]
    queue_arn = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])["Attributes"][
        "QueueArn"
    ]
    s3.put_bucket_notification_configuration(
        Bucket=bucket,
        NotificationConfiguration={
            "QueueConfigurations": [
                {
                    "QueueArn": queue_arn,
                    "Events": ["s3:ObjectCreated:*"],
                    "Filter": {
                        "Key": {"FilterRules": [{"Name": "prefix", "Value": f"{privacy}/originals/"}]}
                    },
                }
                for privacy in ("public", "private")
            ]
        },
    )
    key, etag = upload(sample_images.oriented_jpeg(orientation=8))

    def receive() -> list[dict[str, Any]]:
        return sqs.receive_message(QueueUrl=queue_url, MaxNumberOfMessages=10, WaitTimeSeconds=0).get(
            "Messages", []
        )

    messages = [message for message in receive() if "Records" in json.loads(message["Body"])]
    assert len(messages) == 1
    body = json.loads(messages[0]["Body"])
    assert body["Records"][0]["s3"]["object"]["eTag"] == etag

    assert run(body, s3)["outcomes"] == {"created": 1}
    sqs_batch = {"Records": [{"eventSource": "aws:sqs", "messageId": "1", "body": messages[0]["Body"]}]}
    assert run(sqs_batch, s3)["outcomes"] == {"skipped": 1}
    assert Image.open(io.BytesIO(fetch(s3, bucket, rendition_key(key))[0])).size == (400, 600)
    assert receive() == []  # writing the rendition produced no event for the compressor


def test_a_bad_setting_fails_the_invocation_loudly(monkeypatch, sample_event):
    monkeypatch.setattr(compressor, "_options", None)
    monkeypatch.setenv("WEBP_QUALITY", "high")

    with pytest.raises(ConfigError, match="WEBP_QUALITY"):
        compressor.handler(sample_event("s3_object_created.json"), None)
    with pytest.raises(ValueError, match="LOG_LEVEL"):
        jsonlog.configure("compressor", level="LOUD")
