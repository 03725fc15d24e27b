"""The capacity figures for the hand-checked run of capacity_fixtures (pure: no AWS, no browser)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from loadtests.capacity import config
from loadtests.capacity.analysis import (
    Review,
    RunFolderError,
    Settings,
    analyse,
    load_run,
    tasks_needed,
)
from loadtests.tests.capacity_fixtures import T0, make_run, series


def review(tmp_path: Path, **settings: Any) -> Review:
    return analyse(load_run(make_run(tmp_path / "run")), series(), Settings(**settings))


def test_only_whole_minutes_count_and_each_is_judged_against_the_target(tmp_path: Path) -> None:
    r = review(tmp_path)
    assert [m.minute - T0 for m in r.minutes] == [0, 60, 120, 180, 240, 300]
    assert [m.full for m in r.minutes] == [False, True, True, True, True, False]
    assert [m.met_target for m in r.minutes] == [False, True, True, False, False, False]
    assert r.minutes[0].why_not == "partial minute"
    assert r.minutes[3].why_not == "1.7% failed"
    assert r.minutes[4].why_not == "p95 450 ms > 300 ms"
    assert r.minutes[0].api_rps == pytest.approx(300 / 30)  # a partial minute's rate uses its 30 seconds
    assert [m.api_rps for m in r.minutes[1:5]] == [20, 35, 60, 80]
    assert [m.users for m in r.minutes] == [10, 20, 40, 60, 80, 80]


def test_the_headline_figures_match_the_hand_computed_ones(tmp_path: Path) -> None:
    top = review(tmp_path).headline
    assert top is not None
    assert top.requests_per_task == 35.0
    assert top.best.minute == T0 + 120 and top.minutes_met == 2
    assert top.prod_requests_per_task == 70.0  # 512 -> 1024 CPU units
    assert (top.tasks_needed_target, top.tasks_needed_peak) == (2, 6)
    assert top.lower_bound is False  # 70% CPU at the best minute: past the 60% target


def test_scale_out_is_seen_with_its_reaction_time(tmp_path: Path) -> None:
    so = review(tmp_path).scale_out
    assert so.known and so.happened
    assert (so.initial_tasks, so.peak_tasks) == (1, 2)
    assert (so.trigger_min, so.first_increase_min, so.reaction_min) == (1, 4, 3)
    assert so.steps == [(0, 1), (4, 2)]
    assert (so.acu_min, so.acu_max) == (0.5, 2.0)
    assert (
        so.verdict == "scaled out from 1 to 2 tasks; first new task at minute +4, "
        "3 min after 1200 requests per task per minute > 1000 (minute +1)"
    )


def test_the_recommendation_and_its_monthly_cost(tmp_path: Path) -> None:
    rec = review(tmp_path).recommendation
    assert rec is not None
    assert (rec.min_tasks, rec.max_tasks) == (2, 6)
    assert (rec.aurora_min_acu, rec.aurora_max_acu) == (2.5, 8.0)
    base, ceiling = rec.monthly_usd["baseline"], rec.monthly_usd["ceiling"]
    assert base["fargate"] == pytest.approx(57.67, abs=0.01)
    assert ceiling["fargate"] == pytest.approx(173.01, abs=0.01)
    assert base["aurora"] == pytest.approx(438.00, abs=0.01)
    assert ceiling["aurora"] == pytest.approx(1401.60, abs=0.01)
    assert base["total"] == pytest.approx(495.67, abs=0.01)


def test_settings_change_the_figures_as_defined(tmp_path: Path) -> None:
    strict = review(tmp_path, p95_target_ms=200)  # only minute +1 (p95 150) meets 200 ms
    assert strict.headline is not None and strict.headline.requests_per_task == 20.0
    busy = review(tmp_path, target_rps=500, headroom=0.0)
    assert busy.headline is not None and busy.headline.tasks_needed_target == 8  # ceil(500 / 70)
    assert tasks_needed(100, 0.3, 70) == 2 and tasks_needed(0.1, 0.3, 70) == 1


def test_scale_out_that_never_came_is_called_out(tmp_path: Path) -> None:
    flat = series()
    flat["tasks"] = {k: 1.0 for k in flat["tasks"]}
    flat["alb_requests"] = {}  # only CPU can call for scaling here
    r = analyse(load_run(make_run(tmp_path / "run")), flat, Settings())
    assert not r.scale_out.happened
    assert r.scale_out.verdict.startswith("did NOT scale out: CPU 70% > 60% at minute +2")
    calm = {**flat, "cpu": {k: 10.0 for k in flat["cpu"]}}
    r = analyse(load_run(make_run(tmp_path / "calm")), calm, Settings())
    assert r.scale_out.verdict.startswith("no scale-out, and none was due")


def test_without_cloudwatch_the_review_says_what_it_cannot_compute(tmp_path: Path) -> None:
    run = load_run(make_run(tmp_path / "run"))
    r = analyse(run, {}, Settings(), ["CloudWatch: not read"])
    assert r.headline is None and "task count is unknown" in r.headline_missing
    assert r.recommendation is None
    assert not r.scale_out.known and r.scale_out.verdict.startswith("unknown")
    assert "CloudWatch: not read" in r.missing and not r.cloudwatch_used
    assumed = analyse(run, {}, Settings(assume_tasks=1), [])
    assert assumed.headline is not None and assumed.headline.requests_per_task == 35.0
    assert assumed.minutes[1].tasks_assumed
    assert assumed.recommendation is not None and assumed.recommendation.aurora_min_acu is None


def test_missing_files_are_named(tmp_path: Path) -> None:
    run = load_run(make_run(tmp_path / "run", with_minutes=False))
    assert any("minutes.csv" in item for item in run.missing)
    with pytest.raises(RunFolderError, match=r"no summary\.json"):
        load_run(tmp_path / "nothing")


def test_the_constants_mirror_stages_config() -> None:
    from stages.config import PROD, STAGING

    assert (config.STAGING_TASK.cpu_units, config.STAGING_TASK.memory_mib) == (
        STAGING.task_cpu,
        STAGING.task_memory_mib,
    )
    assert (config.PROD_TASK.cpu_units, config.PROD_TASK.memory_mib) == (PROD.task_cpu, PROD.task_memory_mib)
    assert STAGING.scaling_cpu_target_percent == config.STAGING_SCALING_CPU_TARGET_PERCENT
    assert STAGING.scaling_requests_per_target == config.STAGING_SCALING_REQUESTS_PER_TARGET
    assert 1 + PROD.aurora_readers == config.PROD_AURORA_INSTANCES
    assert config.default_p95_target_ms() == 300
