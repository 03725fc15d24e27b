"""The regression gate (loadtests/regression/) on saved real runs of the local stack and copies of them.

Two real runs of the same code must read "same"; copies with every latency scaled by a known factor
must read "regressed" (or "improved"); runs made of the noise the two real runs show between them must
never read "regressed"; and the verdict reaches regression.json, the JUnit file and the exit code.
"""

# ruff: noqa: S314 - the XML parsed here is what our own code just wrote

from __future__ import annotations

import json
import math
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from loadtests.capacity import config as prices
from loadtests.regression import baseline, cli, compare, metrics, report
from loadtests.regression.compare import IMPROVED, NOT_JUDGED, REGRESSED, SAME
from loadtests.regression.metrics import OVERALL, SERVICE, Sample, Window
from loadtests.tests.regression_fixtures import RUN1, RUN2, copy_run, noisy, scaled

FEED = "GET /feed/latest"


@pytest.fixture(scope="module")
def run1() -> metrics.RunMetrics:
    return metrics.extract(RUN1)


@pytest.fixture(scope="module")
def run2() -> metrics.RunMetrics:
    return metrics.extract(RUN2)


def verdicts(comparison: compare.Comparison) -> dict[str, str]:
    return {metrics.key(v.scope, v.metric): v.verdict for v in comparison.verdicts}


# --- what a run folder says ---------------------------------------------------------------------------
def test_a_saved_run_gives_every_group_and_the_whole_run_with_its_windows(run1: metrics.RunMetrics) -> None:
    assert (run1.target, run1.profile, run1.shape, run1.peak_users) == ("local", "local", "smoke", 10)
    p95 = run1.get(OVERALL, "p95_ms")
    assert p95 is not None and p95.value == 22.0 and p95.count == 1337
    # 90 s in 10-second windows; the first is the ramp (0 -> 10 users), the others are steady.
    assert [w.end_s for w in p95.windows] == [10.0 * k for k in range(1, 10)]
    assert [w.level for w in p95.windows] == [metrics.RAMP] + [10] * 8
    rps = run1.get(OVERALL, "rps")
    assert rps is not None and sum(w.value * 10 for w in rps.windows) <= 1337
    feed = run1.get(FEED, "p95_ms")
    assert feed is not None and feed.count == 250 and feed.distribution[0][0] == 0.0
    assert feed.distribution[-1] == (1.0, 19.0)  # the slowest of the 250 requests
    assert run1.get(FEED, "failure_ratio") is not None
    assert not [s for s in run1.samples.values() if s.scope == SERVICE]  # no CloudWatch locally


def test_the_trimmed_history_gives_what_the_full_one_gives(tmp_path: Path, run1: metrics.RunMetrics) -> None:
    again = tmp_path / "again"
    again.mkdir()
    for name in ("summary.json", "locust_stats.csv"):
        (again / name).write_bytes((RUN1 / name).read_bytes())
    started = int(json.loads((RUN1 / "summary.json").read_text())["started_epoch"])
    metrics.trim_history(RUN1 / "locust_stats_history.csv", started, again / "locust_stats_history.csv")
    assert metrics.extract(again).as_dict()["samples"] == run1.as_dict()["samples"]


def test_metrics_survive_their_json(tmp_path: Path, run1: metrics.RunMetrics) -> None:
    metrics.write(run1, tmp_path / "metrics.json")
    assert metrics.read(tmp_path / "metrics.json").as_dict() == run1.as_dict()


@pytest.mark.parametrize(
    ("host", "target"),
    [
        ("http://127.0.0.1:8000", "local"),
        ("http://localhost:18731", "local"),
        ("http://[::1]:8000", "local"),
        ("https://staging.yoctogram.example.com", "staging.yoctogram.example.com"),
    ],
)
def test_a_run_without_a_named_target_is_known_by_its_host(host: str, target: str) -> None:
    assert metrics.infer_target(host) == target


# --- same, regressed, improved ------------------------------------------------------------------------
def test_the_same_code_twice_reads_same(run1: metrics.RunMetrics, run2: metrics.RunMetrics) -> None:
    for current, base in ((run2, run1), (run1, run2)):
        comparison = compare.compare(current, base, [base])
        found = verdicts(comparison)
        assert comparison.comparable and comparison.passed, report.render_text(comparison)
        assert not comparison.improved, [v.explain() for v in comparison.improved]
        judged = [k for k, v in found.items() if v == SAME]
        # Not a vacuous "same": the whole run and the busy groups are judged.
        assert len(judged) >= 20
        for metric in ("p50_ms", "p95_ms", "p99_ms", "failure_ratio", "rps"):
            assert found[metrics.key(OVERALL, metric)] == SAME
        assert found[metrics.key(FEED, "p95_ms")] == SAME


def test_every_latency_three_times_slower_reads_regressed(tmp_path: Path, run1: metrics.RunMetrics) -> None:
    slow = metrics.extract(scaled(RUN2, tmp_path, 3))
    comparison = compare.compare(slow, run1, [run1])
    found = verdicts(comparison)
    assert not comparison.passed
    for scope in (OVERALL, FEED, "GET /feed/by_user/[creator]", "GET image [public]"):
        assert found[metrics.key(scope, "p50_ms")] == REGRESSED, scope
    for scope in (OVERALL, FEED, "GET image [public]"):  # the groups with 200 requests or more
        assert found[metrics.key(scope, "p95_ms")] == REGRESSED, scope
    # Only the latencies changed: the throughput and failures of the same run stay the same.
    assert found[metrics.key(OVERALL, "rps")] == SAME
    assert found[metrics.key(OVERALL, "failure_ratio")] == SAME
    assert {v.metric for v in comparison.regressed} <= set(metrics.LATENCY)


def test_every_latency_three_times_faster_reads_improved(tmp_path: Path, run1: metrics.RunMetrics) -> None:
    fast = metrics.extract(scaled(RUN2, tmp_path, 1 / 3))
    comparison = compare.compare(fast, run1, [run1])
    assert comparison.passed
    assert verdicts(comparison)[metrics.key(OVERALL, "p95_ms")] == IMPROVED
    assert verdicts(comparison)[metrics.key("GET image [public]", "p50_ms")] == IMPROVED


def test_a_change_within_the_relative_bound_reads_same(tmp_path: Path, run1: metrics.RunMetrics) -> None:
    """10% slower is under the 15% latency bound, however quiet the data."""
    comparison = compare.compare(metrics.extract(scaled(RUN1, tmp_path, 1.1)), run1, [run1])
    assert comparison.passed and not comparison.improved


@pytest.mark.parametrize("seed", range(30))
def test_noise_like_the_real_runs_show_is_never_a_regression(
    seed: int, run1: metrics.RunMetrics, run2: metrics.RunMetrics
) -> None:
    comparison = compare.compare(noisy(run1, run2, seed), run1, [run1])
    assert comparison.passed, report.render_text(comparison)


# --- the parts of a verdict ---------------------------------------------------------------------------
def sample(value: float, windows: list[float], metric: str = "p95_ms", count: int = 1000) -> Sample:
    return Sample(OVERALL, metric, value, count, [Window(10.0 * i, v, 10) for i, v in enumerate(windows, 1)])


def test_the_noise_of_a_run_is_its_windows_spread_around_their_level() -> None:
    """Two levels (the steps of a `step` shape) are not noise: only the spread within each level is."""
    steps = [Window(10, 100, 5), Window(20, 102, 5), Window(30, 98, 5), Window(40, 200, 10)]
    steps += [Window(50, 204, 10), Window(60, 196, 10), Window(70, 150, metrics.RAMP)]
    # Residuals 0, 2, -2 and 0, 4, -4: 40 over 6 - 2 degrees of freedom, over sqrt(6) windows.
    assert compare.standard_error(steps) == pytest.approx(math.sqrt(40 / 4) / math.sqrt(6))
    assert compare.standard_error(steps[:2]) is None  # too few windows to tell


def test_a_change_must_exceed_the_relative_bound_and_the_noise() -> None:
    quiet = [100.0, 101.0, 99.0, 100.0, 100.0, 101.0, 99.0, 100.0]
    loud = [60.0, 140.0, 70.0, 130.0, 65.0, 135.0, 100.0, 100.0]
    base = sample(100, quiet)
    assert compare.judge(sample(130, quiet), base).verdict == REGRESSED
    assert compare.judge(sample(110, quiet), base).verdict == SAME  # under 15%
    assert compare.judge(sample(130, loud), sample(100, loud)).verdict == SAME  # within the noise
    assert compare.judge(sample(70, quiet), base).verdict == IMPROVED
    throughput = compare.judge(sample(80, quiet, "rps"), sample(100, quiet, "rps"))
    assert throughput.verdict == REGRESSED  # less throughput is worse


def test_the_spread_of_accepted_runs_widens_the_noise() -> None:
    quiet = [100.0, 101.0, 99.0, 100.0, 100.0, 101.0, 99.0, 100.0]
    base = sample(100, quiet)
    history = [base, sample(125, quiet), sample(95, quiet)]  # accepted runs that moved by 30 ms
    verdict = compare.judge(sample(122, quiet), base, history)
    assert verdict.verdict == SAME and verdict.noise is not None and verdict.noise.history_range == 30
    assert compare.judge(sample(140, quiet), base, history).verdict == REGRESSED


def test_a_percentile_of_few_requests_is_not_judged() -> None:
    verdict = compare.judge(
        sample(300, [1.0] * 8, "p99_ms", count=400), sample(100, [1.0] * 8, "p99_ms", 400)
    )
    assert verdict.verdict == NOT_JUDGED and "too few requests" in verdict.note


def test_failure_ratios_are_judged_in_percentage_points() -> None:
    def ratio(value: float, count: int = 10_000) -> Sample:
        return Sample(OVERALL, "failure_ratio", value, count)

    assert compare.judge(ratio(0.001), ratio(0.0)).verdict == SAME  # 0.1 points: under the 0.5-point bound
    assert compare.judge(ratio(0.02), ratio(0.0)).verdict == REGRESSED
    assert compare.judge(ratio(0.02, 100), ratio(0.0, 100)).verdict == SAME  # 2 of 100: binomial noise
    assert compare.judge(ratio(0.0), ratio(0.02)).verdict == IMPROVED


# --- what is comparable ---------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "change",
    [{"shape": "step"}, {"profile": "staging"}, {"target": "staging"}, {"peak_users": 20}],
)
def test_only_a_run_of_the_same_kind_is_compared(tmp_path: Path, change: dict[str, object]) -> None:
    other = metrics.extract(copy_run(RUN2, tmp_path / "other", **change))
    comparison = compare.compare(other, metrics.extract(RUN1), [])
    assert not comparison.comparable and comparison.passed and not comparison.verdicts
    assert comparison.headline.startswith("no comparable baseline: the baseline")


# --- CloudWatch's per-request figures ------------------------------------------------------------------
def test_per_request_figures_come_from_the_capacity_reviews_minutes(tmp_path: Path) -> None:
    folder = copy_run(RUN1, tmp_path / "run")
    minutes = [
        {
            "minute": 60 * m,
            "seconds": 60,
            "full": True,
            "users": 10,
            "api_requests": r,
            "tasks": t,
            "tasks_assumed": False,
            "cpu": c,
            "acu": a,
        }
        for m, (r, t, c, a) in enumerate([(1200, 1, 40, 0.5), (2400, 2, 50, 1.0), (1800, 1, 60, 1.0)])
    ]
    minutes.append({**minutes[0], "minute": 180, "full": False})  # a partial minute never counts
    capacity = {"minutes": minutes, "measured_task": {"cpu_units": 512, "memory_mib": 1024}}
    (folder / "capacity.json").write_text(json.dumps(capacity))
    run = metrics.extract(folder)
    figures = {s.metric: s for s in run.samples.values() if s.scope == SERVICE}
    requests = 1200 + 2400 + 1800
    assert figures["requests_per_task"].value == pytest.approx(requests / (60 * (1 + 2 + 1)))
    assert figures["requests_per_task"].count == 3
    vcpu_ms = sum(
        c / 100 * t * 0.5 * 60 * 1000 for _, t, c, _ in [(0, 1, 40, 0), (0, 2, 50, 0), (0, 1, 60, 0)]
    )
    assert figures["cpu_ms_per_request"].value == pytest.approx(vcpu_ms / requests)
    assert figures["acu_per_100_rps"].value == pytest.approx((0.5 + 1.0 + 1.0) * 60 * 100 / requests)
    task_per_s = prices.STAGING_TASK.monthly_usd(1) / prices.HOURS_PER_MONTH / 3600
    usd = sum(
        (t * task_per_s + a * prices.AURORA_SERVERLESS_V2_ACU_HOUR_USD / 3600) * 60
        for t, a in [(1, 0.5), (2, 1.0), (1, 1.0)]
    )
    assert figures["usd_per_million"].value == pytest.approx(usd / requests * 1e6)
    assert [w.value for w in figures["requests_per_task"].windows] == [20.0, 20.0, 30.0]


def test_an_assumed_task_count_gives_no_per_request_figures(tmp_path: Path) -> None:
    folder = copy_run(RUN1, tmp_path / "run")
    minute = {
        "minute": 0,
        "seconds": 60,
        "full": True,
        "api_requests": 600,
        "tasks": 1,
        "tasks_assumed": True,
    }
    (folder / "capacity.json").write_text(json.dumps({"minutes": [minute]}))
    run = metrics.extract(folder)
    assert not [s for s in run.samples.values() if s.scope == SERVICE]
    assert any("no measured task count" in m for m in run.missing)


# --- the files, and `python -m loadtests.regression` ----------------------------------------------------
def test_a_first_run_without_a_baseline_says_so_and_passes(tmp_path: Path) -> None:
    folder = copy_run(RUN1, tmp_path / "run")
    assert cli.main(["compare", str(folder), "--baseline-dir", str(tmp_path / "baseline")]) == 0
    data = report.read(folder)
    assert data is not None and data["passed"] and not data["comparable"]
    assert "nothing accepted yet for target local, profile local, shape smoke" in data["headline"]
    [suite] = ET.parse(folder / "junit.xml").getroot().findall("testsuite")
    assert suite.get("name") == report.SUITE and suite.get("failures") == "0"
    assert "no comparable baseline" in (suite.findtext("testcase/system-out") or "")


def test_accept_then_compare(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    root = tmp_path / "baseline"
    first, same = copy_run(RUN1, tmp_path / "run1"), copy_run(RUN2, tmp_path / "run2")
    (first / "junit.xml").write_bytes(b'<testsuites name="loadtest" tests="0" failures="0"/>')
    assert cli.main(["accept", str(first), "--baseline-dir", str(root)]) == 0
    index = json.loads((root / "local" / "local" / "smoke" / "baseline.json").read_text())
    assert [e["run_id"] for e in index["accepted"]] == ["261204-144816-e7"]
    assert (root / "local/local/smoke/runs/261204-144816-e7/metrics.json").is_file()

    assert cli.main(["compare", str(same), "--baseline-dir", str(root)]) == 0
    assert "vs baseline: no regression against baseline 261204-144816-e7" in capsys.readouterr().out

    slow = scaled(RUN2, tmp_path, 3)
    assert cli.main(["compare", str(slow), "--baseline-dir", str(root)]) == 1
    out = capsys.readouterr().out
    assert "vs baseline: REGRESSED against baseline 261204-144816-e7" in out
    assert "REGRESSED  Aggregated: p95: 22 ms -> 60 ms" in out
    data = report.read(slow)
    assert data is not None and not data["passed"] and data["counts"]["regressed"] >= 8
    assert data["charts"]["windows"]["p95_ms"]["baseline"] and data["charts"]["windows"]["p95_ms"]["run"]
    suites = ET.parse(slow / "junit.xml").getroot()
    [suite] = suites.findall(f"testsuite[@name='{report.SUITE}']")
    failures = suite.findall("testcase/failure")
    assert len(failures) == data["counts"]["regressed"] == int(suites.get("failures", "0"))
    assert {c.get("classname") for c in suite.findall("testcase")} >= {f"{report.SUITE}.{OVERALL}"}

    # Accepting the slow run makes it the baseline; the first stays as history, and the run itself is
    # never its own baseline.
    assert cli.main(["accept", str(slow), "--baseline-dir", str(root)]) == 0
    assert cli.main(["compare", str(slow), "--baseline-dir", str(root)]) == 1
    assert [b.run_id for b in baseline.load(root, baseline.Key("local", "local", "smoke"))] == [
        "261204-144948-25-x3",
        "261204-144816-e7",
    ]


def test_a_run_that_missed_its_thresholds_is_accepted_only_when_forced(tmp_path: Path) -> None:
    failed = copy_run(RUN1, tmp_path / "run", passed=False)
    root = tmp_path / "baseline"
    assert cli.main(["accept", str(failed), "--baseline-dir", str(root)]) == 2
    assert not (root / "local").exists()
    assert cli.main(["accept", str(failed), "--baseline-dir", str(root), "--force"]) == 0


def test_the_junit_suite_is_replaced_not_repeated(tmp_path: Path) -> None:
    folder = copy_run(RUN1, tmp_path / "run")
    for _ in range(2):
        cli.main(["compare", str(folder), "--baseline-dir", str(tmp_path / "none")])
    assert len(ET.parse(folder / "junit.xml").getroot().findall(f"testsuite[@name='{report.SUITE}']")) == 1


def minutes_of(cpu: list[float], acu: float = 1.0) -> list[dict[str, object]]:
    """Whole minutes at one user level, 1800 API requests each on 2 tasks, at these CPU percentages."""
    return [
        {
            "minute": 60 * i,
            "seconds": 60,
            "full": True,
            "users": 10,
            "api_requests": 1800,
            "tasks": 2,
            "tasks_assumed": False,
            "cpu": c,
            "acu": acu,
        }
        for i, c in enumerate(cpu)
    ]


def test_twice_the_cpu_per_request_regresses_and_the_rest_stays(tmp_path: Path) -> None:
    base, busy = copy_run(RUN1, tmp_path / "base"), copy_run(RUN2, tmp_path / "busy")
    (base / "capacity.json").write_text(json.dumps({"minutes": minutes_of([40, 42, 38, 41, 39])}))
    (busy / "capacity.json").write_text(json.dumps({"minutes": minutes_of([80, 84, 76, 82, 78])}))
    comparison = compare.compare(metrics.extract(busy), metrics.extract(base), [])
    found = verdicts(comparison)
    assert found[metrics.key(SERVICE, "cpu_ms_per_request")] == REGRESSED
    assert found[metrics.key(SERVICE, "usd_per_million")] == SAME  # Fargate and ACUs cost the same
    assert found[metrics.key(SERVICE, "requests_per_task")] == SAME
    assert found[metrics.key(SERVICE, "acu_per_100_rps")] == SAME


def test_the_capacity_page_shows_the_verdict_beside_the_baseline(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from loadtests.capacity import cli as capacity

    root = tmp_path / "baseline"
    assert cli.main(["accept", str(copy_run(RUN1, tmp_path / "run1")), "--baseline-dir", str(root)]) == 0
    slow = scaled(RUN2, tmp_path, 3)
    assert capacity.main([str(slow), "--baseline-dir", str(root), "--assume-tasks", "1"]) == 0
    assert "vs baseline: REGRESSED against baseline 261204-144816-e7" in capsys.readouterr().out
    html = (slow / "capacity.html").read_text()
    assert '<p class="banner bad" id="regression">Regression gate: REGRESSED against baseline' in html
    assert html.index('id="regression"') < html.index('id="headline"')  # the verdict is at the top
    for chart in ("vs-p95_ms", "vs-rps", "vs-groups"):
        assert f'<figure id="chart-{chart}"><img' in html, chart
    assert '<tr class="fail"><td>Aggregated: p95</td><td>regressed</td>' in html
    figures = json.loads((slow / "capacity.json").read_text())
    assert [m["full"] for m in figures["minutes"]] == [False, True, False]  # 90 s over three minutes
    assert figures["minutes"][1]["tasks_assumed"] is True
    assert report.read(slow) is not None

    same = copy_run(RUN2, tmp_path / "run2")
    assert capacity.main([str(same), "--baseline-dir", str(root)]) == 0
    html = (same / "capacity.html").read_text()
    assert '<p class="banner ok" id="regression">Regression gate: no regression against baseline' in html
