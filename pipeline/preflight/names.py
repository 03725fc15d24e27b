"""The names the stage's stacks give their resources, where each one lives, and which can collide.

A first create fails when one of these already exists: a retained bucket, log group or cluster of an
earlier deployment, a secret in its deletion recovery window, a Lambda log group that the function
re-created after its stack was deleted. The list is `stages.names.fixed_names` (the names the stacks
themselves use), plus the log groups named in their components, with each one's region.
tests/test_preflight.py checks it against every fixed name of these kinds in the synthesized templates.
"""

from __future__ import annotations

from dataclasses import dataclass

from stages import names
from stages.config import EDGE_REGION, EnvironmentConfig

SECRET = "secret"  # noqa: S105 (a kind of resource, not a secret)
BUCKET = "bucket"
LOG_GROUP = "log group"
DB_CLUSTER = "database cluster"
ECS_CLUSTER = "ECS cluster"
QUEUE = "queue"
KINDS = {
    "secret": SECRET,
    "bucket": BUCKET,
    "log-group": LOG_GROUP,
    "db-cluster": DB_CLUSTER,
    "ecs-cluster": ECS_CLUSTER,
    "queue": QUEUE,
}
"""`stages.names.FixedName.kind` -> how the checklist says it."""


@dataclass(frozen=True)
class FixedName:
    kind: str
    name: str
    unit: str
    """The deployment unit whose stack creates it: `data`, `network`, `app`, `edge`."""
    region: str


def compressor_function_name(config: EnvironmentConfig) -> str:
    """stages/components/compressor.py: the compressor Lambda's name."""
    return f"yoctogram-{config.name}-compressor"


def fixed_names(config: EnvironmentConfig) -> list[FixedName]:
    """Every name a stack of `config`'s stage gives a resource of a kind that can outlive the stack."""
    return [
        *(FixedName(KINDS[f.kind], f.name, f.stack, config.region) for f in names.fixed_names(config)),
        # Not in stages.names (nothing else refers to them by name): the Lambda service re-creates its log
        # group when a deleted function's last invocations log; the WAF's lives in us-east-1.
        FixedName(LOG_GROUP, f"/aws/lambda/{compressor_function_name(config)}", "app", config.region),
        FixedName(LOG_GROUP, f"aws-waf-logs-yoctogram-{config.name}", "edge", EDGE_REGION),
    ]
