"""The names the stage's stacks give their resources that can outlive a stack.

A first create fails when one of these already exists: a retained bucket, log group or cluster of an
earlier deployment, a secret in its deletion recovery window, a Lambda log group that the function
re-created after its stack was deleted. tests/test_preflight.py checks this list against every
fixed name of these kinds in the synthesized templates, so it cannot drift from the stacks.
"""

from __future__ import annotations

from dataclasses import dataclass

from stages.components.images_buckets import PRIVACIES, images_bucket_name
from stages.config import EDGE_REGION, EnvironmentConfig

SECRET = "secret"  # noqa: S105 (a kind of resource, not a secret)
BUCKET = "bucket"
LOG_GROUP = "log group"
DB_CLUSTER = "database cluster"


@dataclass(frozen=True)
class FixedName:
    kind: str
    name: str
    unit: str
    """The deployment unit whose stack creates it: `data`, `app`, `edge`."""
    region: str


def compressor_function_name(config: EnvironmentConfig) -> str:
    """stages/components/compressor.py: the compressor Lambda's name."""
    return f"yoctogram-{config.name}-compressor"


def db_cluster_identifier(config: EnvironmentConfig) -> str:
    """stages/components/database.py: the Aurora cluster's identifier."""
    return f"yoctogram-{config.name}"


def fixed_names(config: EnvironmentConfig) -> list[FixedName]:
    """Every secret, bucket, log group and database cluster that a stack of `config`'s stage names itself."""
    region = config.region
    cluster = db_cluster_identifier(config)
    return [
        # stages/data_stack.py and stages/components/database.py
        FixedName(SECRET, f"yoctogram/{config.name}/database", "data", region),
        FixedName(SECRET, f"yoctogram/{config.name}/secret-key", "data", region),
        *(FixedName(BUCKET, images_bucket_name(config, privacy), "data", region) for privacy in PRIVACIES),
        FixedName(LOG_GROUP, f"/aws/rds/cluster/{cluster}/postgresql", "data", region),
        FixedName(DB_CLUSTER, cluster, "data", region),
        # stages/app_stack.py and stages/components/compressor.py
        FixedName(SECRET, f"yoctogram/{config.name}/origin-verify", "app", region),
        FixedName(LOG_GROUP, f"/aws/lambda/{compressor_function_name(config)}", "app", region),
        # stages/components/web_acl.py (edge stack, us-east-1)
        FixedName(LOG_GROUP, f"aws-waf-logs-yoctogram-{config.name}", "edge", EDGE_REGION),
    ]
