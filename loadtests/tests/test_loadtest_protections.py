"""The worst case of a load test against the target's login throttling and WAF limits
(loadtests/protections.py), and the run that refuses to start over them. The proof that the configured
shapes fit the limits the backend and the stages actually configure is tests/test_loadtest_protections.py."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from loadtests import protections, runner, shapes
from loadtests.cli import build_parser, command_run
from loadtests.common.personas import MEMBER, PERSONAS, UPLOADER, VISITOR

PROJECT = Path(__file__).resolve().parents[2]


def checks(plan: protections.Plan, limits: protections.Limits) -> dict[str, protections.Check]:
    return {c.name: c for c in protections.evaluate(plan, limits)}


def test_the_most_users_started_in_a_window_follows_the_spawn_rate() -> None:
    step = shapes.build("step")  # 5 steps of 40 users, 6 minutes apart, each ramped at 4 a second
    assert protections.spawned_in_window(step, 10) == 40
    assert protections.spawned_in_window(step, 300) == 40
    assert protections.spawned_in_window(step, 900) == 120  # three steps fit in 15 minutes
    assert protections.spawned_in_window(step, 3600) == 200
    assert protections.spawned_in_window(shapes.build("smoke"), 1) == 2  # 10 users at 2 a second


def test_signing_in_users_are_the_weights_share_plus_one() -> None:
    assert protections.share(200, MEMBER, PERSONAS) == 61  # 60 + 1
    assert protections.share(200, UPLOADER, PERSONAS) == 21
    assert protections.signing_in(200, PERSONAS) == 82
    assert protections.signing_in(1, PERSONAS) == 1  # never more than the users


def test_locust_distributes_the_personas_within_that_bound() -> None:
    """Locust's own dispatcher (in a subprocess: importing Locust monkey-patches), for every user count
    of every shape's default: the signing-in personas never exceed the bound the worst case uses."""
    counts = sorted({s.users for name in shapes.BUILDERS for s in shapes.build(name).stages} | {1, 2, 3, 7})
    code = f"""
import json
from locust.dispatch import UsersDispatcher
from locust.runners import WorkerNode
from loadtests.users import Member, Uploader, Visitor
out = {{}}
for n in {counts}:
    dispatcher = UsersDispatcher(worker_nodes=[WorkerNode("a"), WorkerNode("b")], user_classes=[Visitor, Member, Uploader])
    dispatcher.new_dispatch(target_user_count=n, spawn_rate=10_000)
    dispatcher._wait_between_dispatch = 0
    last = list(dispatcher)[-1]
    out[n] = {{c: sum(w.get(c, 0) for w in last.values()) for c in ("Visitor", "Member", "Uploader")}}
print(json.dumps(out))
"""
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=PROJECT, capture_output=True, text=True, timeout=120, check=False
    )
    assert result.returncode == 0, result.stderr
    for users, found in json.loads(result.stdout).items():
        n = int(users)
        assert sum(found.values()) == n
        for persona in PERSONAS:
            assert found[persona.name] <= protections.share(n, persona, PERSONAS), (n, found)
        assert found["Member"] + found["Uploader"] <= protections.signing_in(n, PERSONAS)


def test_the_personas_rates_come_from_their_waits_and_polls() -> None:
    assert VISITOR.max_api_per_second() == 3.0 and MEMBER.max_api_per_second() == 3.0
    assert UPLOADER.max_api_per_second() == 2.0  # 4 requests per 2 s, or a poll every 0.5 s
    assert UPLOADER.max_api_per_second(poll_interval_s=0.1) == 10.0
    assert UPLOADER.max_uploads(60) == 31 and MEMBER.max_uploads(3600) == 1 and VISITOR.max_uploads(60) == 0


def test_a_small_pool_shares_accounts_past_the_per_account_limit() -> None:
    step = shapes.build("step")
    limits = protections.Limits(login_per_account=10)
    small = checks(protections.Plan(step, pool_size=5), limits)["login attempts per account"]
    assert (small.worst, small.inside) == (18, False)  # 82 users over 5 accounts, and cleanup's login
    enough = checks(protections.Plan(step, pool_size=10), limits)["login attempts per account"]
    assert (enough.worst, enough.inside) == (10, True)
    fresh = checks(protections.Plan(step), limits)["login attempts per account"]
    assert fresh.worst == 2  # its own sign-in and cleanup's


def test_every_login_counts_as_failed_and_cleanup_logs_in_again() -> None:
    found = checks(protections.Plan(shapes.build("step")), protections.Limits(login_per_address=131))
    address = found["login attempts per address"]
    # 120 users start within 15 minutes: 50 of them sign in; then cleanup logs in as all 82 accounts.
    assert (address.worst, address.inside) == (132, False)


def test_a_faster_poll_raises_the_api_worst_case() -> None:
    smoke = shapes.build("smoke")
    default = checks(protections.Plan(smoke), protections.Limits(waf_api=10**9))[
        "WAF requests to /api/ per IP"
    ]
    fast = checks(protections.Plan(smoke, poll_interval_s=0.1), protections.Limits(waf_api=10**9))
    assert fast["WAF requests to /api/ per IP"].worst > default.worst


def test_the_run_refuses_a_plan_over_the_targets_limits(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = ["run", "--host", "https://staging.example.com", "--target", "staging", "--shape", "step"]
    argv += ["--users", "400", "--reports-dir", str(tmp_path / "reports")]
    assert command_run(build_parser().parse_args(argv)) == runner.EXIT_ERROR
    captured = capsys.readouterr()
    assert "OVER WAF requests to /api/ per IP" in captured.out
    assert "could trip the target's own protections (WAF requests to /api/ per IP)" in captured.err
    assert not (tmp_path / "reports").exists()  # refused before anything ran
