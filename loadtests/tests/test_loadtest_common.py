"""The personas' plain helpers: response checks, multipart bodies, images, accounts, ledger, config."""

from __future__ import annotations

import email.parser
import io
import json
import os
import stat
from pathlib import Path
from typing import Any

import pytest
from PIL import Image

from loadtests.common.accounts import AccountSource, Credentials, PoolError, new_username, read_pool
from loadtests.common.api import (
    absolute,
    check_feed,
    check_image,
    encode_multipart,
    expect_json,
    is_rendition,
)
from loadtests.common.config import ConfigError, LoadTestConfig
from loadtests.common.images import make_png
from loadtests.common.ledger import Ledger, read_ledger


class FakeResponse:
    def __init__(self, status: int, body: Any = None, raw: str | None = None) -> None:
        self.status_code = status
        self._body, self._raw = body, raw

    def json(self) -> Any:
        if self._raw is not None:
            return json.loads(self._raw)
        return self._body


def feed(items: list[dict[str, Any]], cursor: str | None = None, count: int | None = None) -> FakeResponse:
    body = {
        "success": True,
        "count": len(items) if count is None else count,
        "results": items,
        "next_cursor": cursor,
    }
    return FakeResponse(200, body)


ITEM = {"id": "i1", "creator": "c1", "download_url": "/public/originals/i1", "public": True}


def test_expect_json_accepts_the_expected_status_and_keys() -> None:
    body, problem = expect_json(FakeResponse(200, {"access_token": "t"}), (200,), ("access_token",))
    assert problem is None and body == {"access_token": "t"}


@pytest.mark.parametrize(
    ("response", "reason"),
    [
        (
            FakeResponse(401, {"success": False, "detail": "Bad credentials"}),
            "HTTP 401 (expected 200): Bad credentials",
        ),
        (FakeResponse(502, raw="<html>bad gateway</html>"), "HTTP 502 (expected 200)"),
        (FakeResponse(200, raw="not json"), "HTTP 200: the body is not JSON"),
        (FakeResponse(200, [1, 2]), "HTTP 200: expected a JSON object, got list"),
        (FakeResponse(200, {"token_type": "bearer"}), "HTTP 200: the JSON lacks access_token"),
    ],
)
def test_expect_json_gives_a_reason_people_can_act_on(response: FakeResponse, reason: str) -> None:
    _body, problem = expect_json(response, (200,), ("access_token",))
    assert problem == reason


def test_feed_pages_are_checked_for_shape_and_count() -> None:
    assert check_feed(feed([ITEM], "abc")) == ([ITEM], "abc", None)
    assert check_feed(feed([ITEM], None))[1] is None
    assert check_feed(feed([ITEM], count=2))[2] == "feed: count=2 but 1 results"
    assert check_feed(feed([{"id": "x"}]))[2] == "feed: an item lacks id, creator or download_url"
    assert (
        check_feed(FakeResponse(500, {"success": False, "detail": "boom"}))[2]
        == "HTTP 500 (expected 200): boom"
    )


def test_images_must_be_200_with_an_image_content_type() -> None:
    assert check_image(FakeResponse(200), {"Content-Type": "image/webp"}) is None
    assert (
        check_image(FakeResponse(200), {"content-type": "text/html"})
        == "Content-Type 'text/html' is not an image"
    )
    assert check_image(FakeResponse(403), {}) == "HTTP 403 (expected 200)"


def test_a_rendition_is_recognised_by_its_key_even_with_a_signature() -> None:
    assert is_rendition("http://h/public/renditions/abc.webp", "abc")
    assert is_rendition("https://h/private/renditions/abc.webp?Expires=1&Signature=x&Key-Pair-Id=k", "abc")
    assert not is_rendition("http://h/public/originals/abc", "abc")
    assert not is_rendition("http://h/public/renditions/abcd.webp", "bcd")


def test_urls_are_made_absolute_and_only_http_is_followed() -> None:
    assert absolute("/public/x", "http://127.0.0.1:8000/") == "http://127.0.0.1:8000/public/x"
    assert absolute("https://cdn/x", "http://127.0.0.1:8000") == "https://cdn/x"
    with pytest.raises(ValueError):
        absolute("file:///etc/passwd", "http://127.0.0.1:8000")


def test_multipart_puts_every_field_first_and_the_file_last() -> None:
    fields = {
        "key": "public/originals/i1",
        "Content-Type": "image/png",
        "policy": "p",
        "x-amz-signature": "s",
    }
    body, content_type = encode_multipart(fields, b"\x89PNG-bytes", "image/png")
    message = email.parser.BytesParser().parsebytes(
        b"Content-Type: " + content_type.encode() + b"\r\n\r\n" + body
    )
    parts = [part for part in message.walk() if not part.is_multipart()]
    names = [part.get_param("name", header="content-disposition") for part in parts]
    assert names == [*fields, "file"]
    assert [part.get_payload() for part in parts[:-1]] == list(fields.values())
    assert parts[-1].get_content_type() == "image/png"
    assert parts[-1].get_payload(decode=True) == b"\x89PNG-bytes"


def test_generated_pngs_are_valid_and_differ() -> None:
    first, second = make_png(64, seed=1), make_png(64, seed=2)
    assert first != second and first == make_png(64, seed=1)
    with Image.open(io.BytesIO(first)) as image:
        image.load()
        assert (image.format, image.size, image.mode) == ("PNG", (64, 64), "RGB")
    with pytest.raises(ValueError):
        make_png(0)


def test_fresh_usernames_carry_the_run_id_and_fit_the_api() -> None:
    name = new_username("261126-093004-6a", "uploader", 4194304, 99999)
    assert name.startswith("lt-261126-093004-6a-u") and len(name) <= 32
    source = AccountSource("r1")
    a, b = source.next("member"), source.next("member")
    assert a.username != b.username and a.password != b.password and len(a.password) >= 8
    assert a.email.endswith("@loadtest.example.com") and not a.from_pool


def test_a_pool_is_read_from_a_file_and_handed_out_round_robin(tmp_path: Path) -> None:
    path = tmp_path / "users.txt"
    path.write_text("# pool\nalice:pw:with:colons\n\nbob:secret2\n")
    pool = read_pool(path)
    assert pool == [Credentials("alice", "pw:with:colons", True), Credentials("bob", "secret2", True)]
    source = AccountSource("r1", pool)
    assert [source.next("m").username for _ in range(3)] == ["alice", "bob", "alice"]
    path.write_text("alice\n")
    with pytest.raises(PoolError, match=r"users\.txt:1"):
        read_pool(path)
    with pytest.raises(PoolError, match="cannot read"):
        read_pool(tmp_path / "missing.txt")


def test_the_ledger_is_private_and_survives_a_torn_last_line(tmp_path: Path) -> None:
    ledger = Ledger(tmp_path / "l" / "run.jsonl")
    ledger.run(run_id="r1", host="http://127.0.0.1:1", pid=123, started_at="now")
    ledger.user("lt-r1-m1", "pw", from_pool=False)
    ledger.user("alice", None, from_pool=True)
    ledger.image("i1", "lt-r1-m1")
    ledger.image("i1", "lt-r1-m1")
    ledger.image("i2", "alice")
    with (tmp_path / "l" / "run.jsonl").open("a") as handle:
        handle.write('{"kind": "image", "id"')
    assert stat.S_IMODE(os.stat(ledger.path).st_mode) == 0o600
    contents = read_ledger(ledger.path)
    assert (contents.run_id, contents.host, contents.pid) == ("r1", "http://127.0.0.1:1", 123)
    assert contents.users["lt-r1-m1"]["password"] == "pw" and contents.users["alice"]["pool"] is True
    assert contents.images == {"lt-r1-m1": ["i1"], "alice": ["i2"]}
    assert contents.unreadable_lines == 1


def test_config_comes_from_loadtest_variables() -> None:
    config = LoadTestConfig.from_env(
        {
            "LOADTEST_RUN_ID": "r1",
            "LOADTEST_PROFILE": "staging",
            "LOADTEST_SHAPE": "step",
            "LOADTEST_RUN_TIME": "600",
            "LOADTEST_PEAK_USERS": "50",
            "LOADTEST_THRESHOLDS": '[{"group": "Aggregated", "metric": "min_rps", "limit": 5}]',
            "LOADTEST_RENDITION_TIMEOUT": "20",
        }
    )
    assert (config.profile, config.shape, config.run_time_s, config.peak_users) == (
        "staging",
        "step",
        600,
        50,
    )
    assert config.threshold_overrides == ({"group": "Aggregated", "metric": "min_rps", "limit": 5},)
    assert config.rendition_timeout_s == 20 and config.run_dir is None


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({}, "LOADTEST_RUN_ID"),
        ({"LOADTEST_RUN_ID": "a" * 17}, "LOADTEST_RUN_ID"),
        ({"LOADTEST_RUN_ID": "r1", "LOADTEST_PROFILE": "prod"}, "LOADTEST_PROFILE"),
        ({"LOADTEST_RUN_ID": "r1", "LOADTEST_THRESHOLDS": "{"}, "not JSON"),
        ({"LOADTEST_RUN_ID": "r1", "LOADTEST_POLL_INTERVAL": "-1"}, "must be positive"),
    ],
)
def test_bad_config_says_which_variable(env: dict[str, str], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        LoadTestConfig.from_env(env)
