"""The fault suite's judgement (`devstack/chaos/verdict.py`): what it calls a failure, and what it forgives.

The suite itself (`make chaos`) runs the real stack and is run by CI after `make test`; these tests pin
the rules it applies to what it records, so a lax rule cannot make a broken stack pass.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from devstack.chaos import control, verdict
from devstack.chaos.verdict import NO_ANSWER, Check, Fault, Record, UploadOutcome

FEED = "GET /api/v1/feed/latest"


def _fault(injected: float = 10.0, recovered: float | None = 12.0, **kwargs: object) -> Fault:
    return Fault("kill -9 PostgreSQL", injected, recovered, **kwargs)  # type: ignore[arg-type]


def _unavailable(start: float, **kwargs: object) -> Record:
    fields = {"reason": "The database is unavailable", "retry_after": "5", "json_error": True, **kwargs}
    return Record(start, start + 0.1, FEED, 503, **fields)  # type: ignore[arg-type]


def _by_name(checks: list[Check]) -> dict[str, Check]:
    return {check.name.split(" (")[0]: check for check in checks}


def test_a_clean_run_passes_every_request_check() -> None:
    records = [Record(t, t + 0.05, FEED, 200) for t in range(30)] + [_unavailable(11.0)]
    checks = verdict.check_requests(records, [_fault()])
    assert [c.name for c in checks if not c.passed] == []


@pytest.mark.parametrize("status", [500, 502, 504])
def test_any_server_error_but_503_fails_even_during_a_fault(status: int) -> None:
    checks = verdict.check_requests([Record(11.0, 11.1, FEED, status, "boom")], [_fault()])
    failed = [c for c in checks if not c.passed]
    assert [c.name for c in failed] == ["no 5xx other than 503"]
    assert f"-> {status}: boom" in failed[0].details[0]


@pytest.mark.parametrize("status", [503, NO_ANSWER])
def test_unavailability_counts_only_within_a_fault_and_its_margin(status: int) -> None:
    fault = _fault(injected=10.0, recovered=12.0)
    inside = Record(12.0 + verdict.MARGIN_S - 0.5, 12.0 + verdict.MARGIN_S, FEED, status, "x", "5", True)
    late = Record(12.0 + verdict.MARGIN_S + 0.5, 12.0 + verdict.MARGIN_S + 0.6, FEED, status, "x", "5", True)
    early = Record(9.0, 9.5, FEED, status, "x", "5", True)
    name = f"503s and unanswered requests only during a fault (+{verdict.MARGIN_S:g} s)"
    assert _by_name(verdict.check_requests([inside], [fault]))[name.split(" (")[0]].passed
    for outside in (late, early):
        check = _by_name(verdict.check_requests([outside], [fault]))[name.split(" (")[0]]
        assert not check.passed, outside
        assert outside.describe() in check.details


def test_a_request_sent_before_a_fault_and_answered_during_it_is_explained() -> None:
    slow = Record(9.0, 10.5, FEED, NO_ANSWER, "ReadTimeout")
    assert verdict.explaining_fault(slow, [_fault()], verdict.MARGIN_S) is not None


def test_a_fault_that_never_recovered_explains_everything_after_it_but_fails_the_run() -> None:
    fault = _fault(recovered=None, reaction="no answer", reaction_ok=False)
    checks = _by_name(verdict.check_requests([_unavailable(500.0)], [fault]))
    assert checks["503s and unanswered requests only during a fault"].passed
    reaction = checks["the stack reacted to every fault as designed and recovered"]
    assert not reaction.passed
    assert "never recovered" in reaction.details[0]


@pytest.mark.parametrize(
    "changes",
    [{"json_error": False}, {"retry_after": None}, {"reason": ""}],
    ids=["not the API's JSON error", "no Retry-After", "no reason"],
)
def test_every_api_503_must_say_why_and_when_to_retry(changes: dict[str, object]) -> None:
    check = _by_name(verdict.check_requests([_unavailable(11.0, **changes)], [_fault()]))
    assert not check["every 503 says why"].passed


def test_an_s3_503_says_why_with_its_error_code() -> None:
    s3 = Record(11.0, 11.1, f"{verdict.S3_ROUTE_PREFIX}POST /bucket", 503, "SlowDown")
    assert _by_name(verdict.check_requests([s3], [_fault()]))["every 503 says why"].passed
    mute = Record(11.0, 11.1, f"{verdict.S3_ROUTE_PREFIX}POST /bucket", 503, "")
    assert not _by_name(verdict.check_requests([mute], [_fault()]))["every 503 says why"].passed


def test_client_errors_fail_unless_the_route_may_answer_them() -> None:
    retried_registration = Record(3.0, 3.1, "POST /api/v1/auth/register/", 409, "taken")
    throttled = Record(3.0, 3.1, "POST /api/v1/auth/login/", 429, "slow down", "60", True)
    assert _by_name(verdict.check_requests([retried_registration, throttled], []))[
        "no unexpected client errors"
    ].passed
    lost_image = Record(3.0, 3.1, "GET /api/v1/images/media/{id}", 404, "Image not found")
    assert not _by_name(verdict.check_requests([lost_image], []))["no unexpected client errors"].passed


def test_a_fault_the_stack_reacted_wrongly_to_fails_even_when_it_recovered() -> None:
    fault = _fault(reaction="the API kept answering 500", reaction_ok=False)
    check = _by_name(verdict.check_requests([], [fault]))[
        "the stack reacted to every fault as designed and recovered"
    ]
    assert not check.passed
    assert "the API kept answering 500" in check.details[0]


@pytest.mark.parametrize(
    ("outcome", "passes"),
    [
        (UploadOutcome("a", corrupt=False, confirmed=True, state="ready", served_bytes=1200), True),
        (UploadOutcome("b", corrupt=True, confirmed=True, state="rejected"), True),
        (UploadOutcome("c", corrupt=False, confirmed=False, state="uploaded"), False),
        (UploadOutcome("d", corrupt=False, confirmed=True, state=None), False),
        (UploadOutcome("e", corrupt=True, confirmed=True, state="ready", served_bytes=10), False),
        (UploadOutcome("f", corrupt=False, confirmed=True, state="ready", served_bytes=None), False),
    ],
    ids=["ready and served", "corrupt rejected", "stuck uploaded", "row lost", "corrupt ready", "not served"],
)
def test_every_acknowledged_upload_must_settle_as_expected_and_be_served(
    outcome: UploadOutcome, passes: bool
) -> None:
    assert verdict.check_uploads([outcome], 60).passed is passes


def test_every_acknowledged_account_must_log_in() -> None:
    assert verdict.check_logins({"ann": 200, "bob": 200}).passed
    check = verdict.check_logins({"ann": 200, "bob": 401, "cid": NO_ANSWER})
    assert not check.passed
    assert check.details == ["bob: login answered 401", "cid: login answered nothing"]


def test_anything_left_after_down_fails() -> None:
    assert verdict.check_stopped([], []).passed
    assert not verdict.check_stopped([8000], []).passed
    assert not verdict.check_stopped([], ["python -m uvicorn (pid 42)"]).passed


def test_the_table_puts_each_request_under_the_fault_that_explains_it() -> None:
    faults = [_fault(10.0, 12.0), Fault("hang S3 (SIGSTOP 5 s)", 30.0, 35.0)]
    records = [
        Record(1.0, 1.1, FEED, 200),
        _unavailable(11.0),
        Record(11.5, 11.6, FEED, NO_ANSWER, "ConnectError"),
        Record(13.0, 13.1, FEED, 200),
        Record(31.0, 31.1, FEED, 200),
    ]
    rows = verdict.summarize(records, faults)
    assert [(r.fault, r.requests, r.ok, r.unavailable, r.no_answer) for r in rows] == [
        ("kill -9 PostgreSQL", 3, 1, 1, 1),
        ("hang S3 (SIGSTOP 5 s)", 1, 1, 0, 0),
        ("(outside every fault)", 1, 1, 0, 0),
    ]
    # The feed failed until 11.6 s and answered at 13.1 s: clients saw it for 3.1 s after the fault.
    assert rows[0].recovery_s == pytest.approx(3.1)
    table = verdict.render_table(rows)
    assert table.count("\n") == len(rows) + 1  # header, rule, one line per row


def test_the_report_is_written_as_markdown_and_json(tmp_path: Path) -> None:
    rows = verdict.summarize([Record(1.0, 1.1, FEED, 200)], [])
    checks = [Check("no 5xx other than 503", True, ["1 requests"])]
    summary = verdict.render_summary({"run_id": "r1", "requests": 1, "duration_s": 1.0}, rows, checks)
    assert "PASS no 5xx other than 503" in summary
    run_dir = verdict.write_report(
        tmp_path, "r1", summary, verdict.as_json(rows=rows, checks=checks, faults=[])
    )
    assert (run_dir / "summary.md").read_text() == summary
    results = json.loads((run_dir / "results.json").read_text())
    assert results["checks"][0]["passed"] is True


def test_every_fault_has_its_own_name_in_the_progress_output() -> None:
    names = [step.__name__ for step in control.FAULTS]
    assert len(set(names)) == len(names)
    assert "step" not in names


def test_a_404_from_the_gateway_is_forgiven_only_for_a_refused_upload() -> None:
    refused = Record(5.0, 5.1, "GET /public/* (media gateway, a refused upload)", 404, "Not found")
    good = Record(5.0, 5.1, "GET /public/* (media gateway)", 404, "Not found")
    assert _by_name(verdict.check_requests([refused], []))["no unexpected client errors"].passed
    assert not _by_name(verdict.check_requests([good], []))["no unexpected client errors"].passed
