"""Constants of the capacity review: list prices (dated), the task sizes it assumes, and its defaults.

The task sizes and scaling targets mirror `stages/config.py` (a test checks that they agree), so this
package does not import the CDK to read them.
"""

from __future__ import annotations

from dataclasses import dataclass

from loadtests.common.api import Group
from loadtests.thresholds import PROFILES

PRICES_AS_OF = "2025-06-01"
"""When the list prices below were read from the AWS pricing pages (us-west-2, on-demand). Check them
before quoting the cost: https://aws.amazon.com/fargate/pricing/ and https://aws.amazon.com/rds/aurora/pricing/"""
PRICE_REGION = "us-west-2"
FARGATE_ARM_VCPU_HOUR_USD = 0.03238
"""Fargate, Linux/ARM64 (Graviton), per vCPU-hour."""
FARGATE_ARM_GB_HOUR_USD = 0.00356
"""Fargate, Linux/ARM64 (Graviton), per GB of memory per hour."""
AURORA_SERVERLESS_V2_ACU_HOUR_USD = 0.12
"""Aurora Serverless v2, Aurora Standard configuration, per ACU-hour (storage and I/O are not included)."""
HOURS_PER_MONTH = 730


@dataclass(frozen=True)
class TaskSize:
    """A Fargate web task as stages/config.py defines it."""

    cpu_units: int
    memory_mib: int

    @property
    def vcpu(self) -> float:
        return self.cpu_units / 1024

    @property
    def memory_gb(self) -> float:
        return self.memory_mib / 1024

    def monthly_usd(self, tasks: float) -> float:
        per_hour = self.vcpu * FARGATE_ARM_VCPU_HOUR_USD + self.memory_gb * FARGATE_ARM_GB_HOUR_USD
        return tasks * per_hour * HOURS_PER_MONTH


def aurora_monthly_usd(acu: float, instances: int) -> float:
    """ACU-hours of a month for `instances` (writer + readers) all running at `acu`."""
    return acu * instances * AURORA_SERVERLESS_V2_ACU_HOUR_USD * HOURS_PER_MONTH


# Mirrors of stages/config.py (STAGING is where the load test runs, PROD is what the review sizes).
STAGING_TASK = TaskSize(cpu_units=512, memory_mib=1024)
PROD_TASK = TaskSize(cpu_units=1024, memory_mib=2048)
STAGING_SCALING_CPU_TARGET_PERCENT = 60
STAGING_SCALING_REQUESTS_PER_TARGET = 1000  # ALB requests per target per minute
PROD_AURORA_INSTANCES = 2  # writer + 1 reader
PROD_MIN_TASKS_FLOOR = 2  # one per availability zone
AURORA_MIN_ACU, AURORA_MAX_ACU_LIMIT = 0.5, 256.0

# Defaults of the review; each one is a command-line option.
DEFAULT_TARGET_RPS = 100.0
"""The API traffic prod must carry at its busiest ordinary hour (requests per second)."""
DEFAULT_HEADROOM = 0.30
"""Spare capacity on top of the target: a task may fail, a burst may come before scale-out acts."""
DEFAULT_PEAK_FACTOR = 3.0
"""max_tasks covers this multiple of the target (a viral post) before the service saturates."""
DEFAULT_MAX_FAILURE_RATIO = 0.01
"""A minute counts toward the headline only if at most this share of its API requests failed."""


def default_p95_target_ms() -> float:
    """The staging gate on the main API read (`/feed/latest` p95): the latency the headline holds to."""
    return next(t.limit for t in PROFILES["staging"] if t.group == Group.FEED and t.metric == "p95_ms")
