"""The fixed names the stacks give resources, in one place.

A stack that owns a resource names it with these, and every other stack refers to it by the same name
instead of a cross-stack reference: a name known at synth costs CloudFormation no `Fn::GetStackOutput`
lookup (each lookup is resolved on its own, and many of them throttle a deployment). `make preflight`
checks that none of them exists already before a first create (a failed create leaves retained ones
behind: stages/runbooks/failed-first-create.md).
"""

from __future__ import annotations

from dataclasses import dataclass

from stages.config import EnvironmentConfig


def database_cluster_identifier(config: EnvironmentConfig) -> str:
    return f"yoctogram-{config.name}"


def database_log_group(config: EnvironmentConfig) -> str:
    return f"/aws/rds/cluster/{database_cluster_identifier(config)}/postgresql"


def database_secret(config: EnvironmentConfig) -> str:
    """The Aurora credentials (generated, attached to the cluster, rotated)."""
    return f"yoctogram/{config.name}/database"


def secret_key_secret(config: EnvironmentConfig) -> str:
    """The API's SECRET_KEY (generated)."""
    return f"yoctogram/{config.name}/secret-key"


def origin_verify_secret(config: EnvironmentConfig) -> str:
    """The header value CloudFront adds and the load balancer requires (generated)."""
    return f"yoctogram/{config.name}/origin-verify"


def ecs_cluster(config: EnvironmentConfig) -> str:
    return f"yoctogram-{config.name}"


def compressor_function(config: EnvironmentConfig) -> str:
    """The compressor Lambda (the pipeline's serving check may read only this function)."""
    return f"yoctogram-{config.name}-compressor"


def event_queue(config: EnvironmentConfig) -> str:
    return f"yoctogram-{config.name}-events"


def event_dead_letter_queue(config: EnvironmentConfig) -> str:
    return f"yoctogram-{config.name}-events-dlq"


def images_bucket(config: EnvironmentConfig, privacy: str) -> str:
    """Deterministic, globally unique bucket name, e.g. `yoctogram-staging-public-images-111111111111`."""
    return f"yoctogram-{config.name}-{privacy}-images-{config.account}"


def queue_url(config: EnvironmentConfig, queue_name: str) -> str:
    return f"https://sqs.{config.region}.amazonaws.com/{config.account}/{queue_name}"


@dataclass(frozen=True)
class FixedName:
    """A name a stack gives a resource that survives the stack when retained (so a retry collides)."""

    kind: str
    """`secret`, `bucket`, `log-group`, `db-cluster`, `ecs-cluster` or `queue`."""
    name: str
    stack: str
    """The stack that owns it (`data`, `network`, `app`)."""


def fixed_names(config: EnvironmentConfig) -> list[FixedName]:
    """Every stack-owned name of one environment that must not exist before the stage's first create."""
    return [
        FixedName("secret", database_secret(config), "data"),
        FixedName("secret", secret_key_secret(config), "data"),
        FixedName("secret", origin_verify_secret(config), "app"),
        FixedName("bucket", images_bucket(config, "public"), "data"),
        FixedName("bucket", images_bucket(config, "private"), "data"),
        FixedName("log-group", database_log_group(config), "data"),
        FixedName("db-cluster", database_cluster_identifier(config), "data"),
        FixedName("ecs-cluster", ecs_cluster(config), "network"),
        FixedName("queue", event_queue(config), "data"),
        FixedName("queue", event_dead_letter_queue(config), "data"),
    ]
