"""The per-environment config: its own rules, above all the database connection budget."""

from __future__ import annotations

import dataclasses

import pytest

from stages.config import PROD, STAGING


@pytest.mark.parametrize("config", [STAGING, PROD], ids=lambda c: c.name)
def test_the_connection_budget_fits_aurora_at_minimum_capacity(config: object) -> None:
    assert config.max_db_connections <= config.aurora_connection_limit  # type: ignore[attr-defined]


def test_the_budget_counts_every_process_that_connects() -> None:
    # (pool + overflow) x (web workers x max tasks + worker tasks + one migration task) + the cleanup's one
    # + the rotation function's one
    per_process = STAGING.db_pool_size + STAGING.db_max_overflow
    processes = STAGING.web_concurrency * STAGING.max_tasks + STAGING.worker_tasks + 1
    assert STAGING.max_db_connections == per_process * processes + 1 + 1 == 82
    # max_connections follows the maximum capacity (4 ACU: 8 GiB, 84% of it as DBInstanceClassMemory)
    assert STAGING.aurora_connection_limit == int(4 * 2 * 1024**3 * 0.84 // 9_531_392) - 3 == 754


def test_the_connection_limit_follows_the_maximum_capacity() -> None:
    """Serverless v2 sets max_connections from the maximum ACU; a 0.5 ACU minimum caps it at 2,000."""
    assert dataclasses.replace(STAGING, aurora_max_acu=1).aurora_connection_limit <= 189 - 3  # AWS's figure
    assert dataclasses.replace(STAGING, aurora_max_acu=64).aurora_connection_limit == 2000 - 3
    assert (
        dataclasses.replace(STAGING, aurora_min_acu=1, aurora_max_acu=64).aurora_connection_limit == 5000 - 3
    )
    assert (
        dataclasses.replace(STAGING, aurora_min_acu=1, aurora_max_acu=16).aurora_connection_limit <= 3360 - 3
    )


def test_a_config_over_budget_is_refused_with_what_to_change() -> None:
    with pytest.raises(ValueError, match=r"database connections.*lower db_pool_size"):
        dataclasses.replace(STAGING, max_tasks=20, aurora_max_acu=1)


def test_web_deployments_ecs_and_cloudformation_would_refuse_are_refused() -> None:
    deployment = STAGING.web_deployment

    def refused(match: str, **changes: object) -> None:
        with pytest.raises(ValueError, match=match):
            dataclasses.replace(STAGING, web_deployment=dataclasses.replace(deployment, **changes))

    refused(r"CANARY or LINEAR", strategy="ALL_AT_ONCE")
    refused(r"LINEAR deployment is a multiple of 0\.1 from 3\.0", strategy="LINEAR", shift_percent=2)
    refused(r"multiple of 0\.1", shift_percent=10.05)
    refused(r"step_bake_minutes is 0 to 1440", step_bake_minutes=1441)
    # 100 linear steps of 1% are not allowed; 3% steps of 24 hours wait 33 x 24 hours > 33 hours.
    refused(r"33 hours", strategy="LINEAR", shift_percent=3, step_bake_minutes=1440)
    refused(r"rollback_5xx_percent", rollback_5xx_percent=0)
    refused(r"hook_timeout_minutes", hook_timeout_minutes=0)


def test_every_wait_leaves_the_rollback_alarms_time_to_fire() -> None:
    """A step shorter than the alarms' evaluation (plus a minute for the metrics to arrive) moves on to the
    next shift before any alarm could have stopped the deployment."""
    for config in (STAGING, PROD):
        deployment = config.web_deployment
        assert (
            min(deployment.step_bake_minutes, deployment.bake_minutes)
            > deployment.rollback_evaluation_minutes
        )
    with pytest.raises(ValueError, match=r"before an alarm could roll it back"):
        dataclasses.replace(
            STAGING,
            web_deployment=dataclasses.replace(
                STAGING.web_deployment, step_bake_minutes=2, rollback_evaluation_minutes=2
            ),
        )


def test_cloudformations_count_of_deployment_steps() -> None:
    """CloudFormation counts the step bake time of every linear step but the one that reaches 100%."""
    linear = dataclasses.replace(
        STAGING.web_deployment, strategy="LINEAR", shift_percent=20, step_bake_minutes=5
    )
    assert linear.production_shifts == 4
    assert dataclasses.replace(linear, shift_percent=11).production_shifts == 9
    assert linear.longest_minutes == linear.bake_minutes + 4 * 5
    assert STAGING.web_deployment.production_shifts == 1  # a canary: one wait
