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
