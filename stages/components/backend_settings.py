"""The environment and secrets every backend process (web, event worker, migrations, cleanup) starts with."""

from __future__ import annotations

import re
from dataclasses import dataclass

from aws_cdk import aws_ecs as ecs
from aws_cdk import aws_secretsmanager as secretsmanager
from constructs import Construct

from stages import names
from stages.config import EnvironmentConfig

CONTAINER_PORT = 8000
RDS_CA_BUNDLE = "/srv/certs/rds-global-bundle.pem"
"""Where backend/Dockerfile puts the RDS certificate authorities' bundle (every region's)."""
HEALTH_CHECK_PATH = "/api/v1/health"
CLIENT_ADDRESS_HEADER = "CloudFront-Viewer-Address"
"""The header the API counts login attempts per address by (backend/app/services/login_throttle.py)."""
MIGRATE_COMMAND = ["python", "-m", "app.migrate"]
EVENT_WORKER_COMMAND = ["python", "-m", "app.events"]
CLEANUP_COMMAND = ["python", "-m", "app.cleanup"]
CONTAINER_HEALTH_CHECK = ["CMD", "python", "-m", "app.healthcheck"]
ARM64_LINUX = ecs.RuntimePlatform(
    cpu_architecture=ecs.CpuArchitecture.ARM64, operating_system_family=ecs.OperatingSystemFamily.LINUX
)
"""Every backend task definition's platform: the backend image is built for arm64."""

BUILD_COMMIT_CONTEXT = "yoctogram:commit"
"""Context key: the commit this synthesis is of (`pipeline_app.py` sets it from the pipeline's source,
`COMMIT_ID`; `cdk synth -c yoctogram:commit=<sha>` by hand). Unset, the processes report `unknown`."""
COMMIT = re.compile(r"[0-9a-f]{7,40}")


def build_commit(scope: Construct) -> str | None:
    """The commit of this synthesis (context `yoctogram:commit`), or None; a value that is not a git
    commit id is refused (it is written into task definitions and the web client's config.json)."""
    commit = scope.node.try_get_context(BUILD_COMMIT_CONTEXT)
    if commit in (None, ""):
        return None
    if not isinstance(commit, str) or not COMMIT.fullmatch(commit):
        raise ValueError(f"context {BUILD_COMMIT_CONTEXT} must be a git commit id (hex), not {commit!r}")
    return commit


# The Aurora secret's JSON fields that ECS injects at start, by the variable names the backend reads. Not
# the password: it rotates, so the backend reads it from the secret (POSTGRES_PASSWORD_SECRET_ID) whenever
# it opens a connection (backend/app/core/db_password.py).
DATABASE_SECRET_FIELDS = {
    "POSTGRES_HOST": "host",
    "POSTGRES_PORT": "port",
    "POSTGRES_USER": "username",
    "POSTGRES_DB": "dbname",
}


@dataclass(frozen=True, kw_only=True)
class BackendSettings:
    """Plain settings (names and sizes, never secret) and the secrets ECS injects at task start."""

    environment: dict[str, str]
    secrets: dict[str, ecs.Secret]
    database_secret: secretsmanager.ISecret

    def grant_to(self, task_definition: ecs.TaskDefinition) -> None:
        """Let the task's processes read the database password (its own role: they read it at run time)."""
        self.database_secret.grant_read(task_definition.task_role)


def backend_settings(
    scope: Construct, *, config: EnvironmentConfig, media_signing_key_id: str
) -> BackendSettings:
    """Translate the stage's resources into the variables of `backend/app/core/config.py`.

    The data stack's secrets, buckets and queue are named from config (`stages.names`), so they are
    imported here by name: the templates hold the names, not a cross-stack lookup per use.

    The CloudFront signing key pairs are made outside the stacks (their public halves are in config and in
    the edge stack's key group; the active one's key id is `media_signing_key_id`), so the active private
    key's secret is imported into `scope` by the name in config.
    """
    database_secret = secretsmanager.Secret.from_secret_name_v2(
        scope, "DatabaseSecret", names.database_secret(config)
    )
    secret_key = secretsmanager.Secret.from_secret_name_v2(
        scope, "SecretKey", names.secret_key_secret(config)
    )
    media_signing_private_key = secretsmanager.Secret.from_secret_name_v2(
        scope, "MediaSigningPrivateKey", config.active_signing_key.private_key_secret_name
    )
    secrets = {
        variable: ecs.Secret.from_secrets_manager(database_secret, field)
        for variable, field in DATABASE_SECRET_FIELDS.items()
    }
    secrets["SECRET_KEY"] = ecs.Secret.from_secrets_manager(secret_key)
    secrets["MEDIA_SIGNING_PRIVATE_KEY"] = ecs.Secret.from_secrets_manager(media_signing_private_key)
    environment = {
        "APP_ENV": "aws",
        "AWS_DEFAULT_REGION": config.region,
        "FORWARD_FACING_NAME": config.domain_name,
        "MEDIA_BASE_URL": config.site_url,
        "MEDIA_SIGNING_KEY_ID": media_signing_key_id,
        "PUBLIC_IMAGES_BUCKET": names.images_bucket(config, "public"),
        "PRIVATE_IMAGES_BUCKET": names.images_bucket(config, "private"),
        "EVENT_QUEUE_URL": names.queue_url(config, names.event_queue(config)),
        "MAX_UPLOAD_BYTES": str(config.max_upload_bytes),
        "WEB_CONCURRENCY": str(config.web_concurrency),
        "HTTP_KEEP_ALIVE_SECONDS": str(config.http_keep_alive_seconds),
        # Login throttling counts per client address: the one CloudFront writes (the /api/* behaviour's
        # AllViewerExceptHostHeader policy forwards it; the load balancer only takes CloudFront's requests).
        "CLIENT_ADDRESS_HEADER": CLIENT_ADDRESS_HEADER,
        "DB_POOL_SIZE": str(config.db_pool_size),
        "DB_MAX_OVERFLOW": str(config.db_max_overflow),
        "POSTGRES_PASSWORD_SECRET_ID": names.database_secret(config),
        # Aurora refuses plaintext (rds.force_ssl); the tasks also check who answers.
        "POSTGRES_SSL_MODE": "verify-full",
        "POSTGRES_SSL_ROOT_CERT": RDS_CA_BUNDLE,
    }
    commit = build_commit(scope)
    if commit:
        # Which build a process is (/api/v1/health, its start-up log). A new commit is a new task
        # definition revision, so every pipeline run rolls the services, even when no image changed.
        environment["BUILD_COMMIT"] = commit
    return BackendSettings(environment=environment, secrets=secrets, database_secret=database_secret)
