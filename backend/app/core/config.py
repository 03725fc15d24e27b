"""The service's settings: read from the environment once, in one place, by the names the stack provides."""

from __future__ import annotations

import sys
from typing import Literal

from pydantic import Field, SecretStr, ValidationError, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict
from sqlalchemy.engine import URL, make_url

LOCAL_DEV_SECRET = "local-development-only-secret-key-change-me"  # noqa: S105 - refused outside APP_ENV=local


class Settings(BaseSettings):
    """Every setting of the backend (API, migrations, event worker). backend/README.md has the table."""

    model_config = SettingsConfigDict(env_file=None, extra="ignore", frozen=True)

    # Required: a deployed process that lost it must not fall back to local behaviour (the development
    # signing secret, http CORS origins, the local media gateway). `make up` and the tests set `local`,
    # the stacks set `aws`.
    APP_ENV: Literal["local", "aws"]
    SECRET_KEY: SecretStr | None = None
    ACCESS_TOKEN_EXPIRE_MINUTES: int = Field(default=60 * 24, ge=1, le=60 * 24 * 30)
    JWT_ALGORITHM: Literal["HS256", "HS384", "HS512"] = "HS256"
    # Login throttling (app/services/login_throttle.py): attempts per account name and per client address
    # in a fixed window, counted in the database so every task shares them; over a limit is a 429 with
    # Retry-After, whether or not the account exists. A successful login gives its attempt back (and clears
    # the account's count). 0 turns a limit off. Per address is generous: one office or mobile carrier NAT
    # is one address, and the staging load test logs its users in from one.
    LOGIN_THROTTLE_WINDOW_SECONDS: int = Field(default=900, ge=1, le=86_400)
    LOGIN_MAX_ATTEMPTS_PER_ACCOUNT: int = Field(default=10, ge=0)
    LOGIN_MAX_ATTEMPTS_PER_ADDRESS: int = Field(default=300, ge=0)
    # The request header that carries the client's address as the edge saw it. In AWS the stack sets
    # `CloudFront-Viewer-Address` (CloudFront writes it; the ALB only takes CloudFront's requests): never a
    # client-controlled X-Forwarded-For entry. Unset (locally): the connection's peer address.
    CLIENT_ADDRESS_HEADER: str | None = None

    # Database: DATABASE_URL wins; otherwise the POSTGRES_* variables the stack maps from its secret.
    DATABASE_URL: str | None = None
    POSTGRES_HOST: str = "127.0.0.1"
    POSTGRES_PORT: int = 5432
    POSTGRES_USER: str = "yoctogram"
    POSTGRES_PASSWORD: SecretStr = SecretStr("")
    # In AWS: the secret (ARN or name) whose JSON `password` is read when a connection opens, so that a
    # rotation needs no restart (app/core/db_password.py); POSTGRES_PASSWORD is then not used.
    POSTGRES_PASSWORD_SECRET_ID: str | None = None
    POSTGRES_DB: str = "yoctogram"
    # TLS to the database. In AWS: verify-full against the RDS CA bundle the image carries (Aurora has
    # rds.force_ssl on, so nothing connects in plaintext); locally the embedded server speaks no TLS.
    POSTGRES_SSL_MODE: Literal["disable", "prefer", "require", "verify-full"] = "prefer"
    POSTGRES_SSL_ROOT_CERT: str | None = None
    # Migrations wait at most this long for a table lock: an ALTER queued behind a long query would queue
    # every later query behind itself; failing (and retrying the deploy) is better than an outage.
    MIGRATION_LOCK_TIMEOUT_MS: int = Field(default=5_000, ge=100)
    # All of a worker's connections stay open: SQLAlchemy closes an overflow connection when it comes back,
    # so under a burst the overflow is opened and closed again and again (~2 ms of CPU each; bench/README.md).
    DB_POOL_SIZE: int = Field(default=10, ge=1, le=100)
    DB_MAX_OVERFLOW: int = Field(default=0, ge=0, le=100)
    DB_POOL_TIMEOUT: float = Field(default=10.0, gt=0)
    # How long opening a connection may take (TCP, TLS, login): a database that does not answer is a 503
    # within this, not a request hanging. A statement gets DB_STATEMENT_TIMEOUT_MS plus this much before
    # the connection is given up for dead (the server would have cancelled it by then).
    DB_CONNECT_TIMEOUT: float = Field(default=3.0, gt=0, le=60)
    DB_STATEMENT_TIMEOUT_MS: int = Field(default=10_000, ge=0)
    # Shared feed parts (public and creator slices) kept per worker process, checked against the
    # database's feed versions on every request (backend/README.md, "The feed cache"); 0 turns the cache off. The
    # check keeps one of the pool's connections. Members' own parts are bounded in bytes.
    FEED_CACHE_ENTRIES: int = Field(default=512, ge=0, le=100_000)
    FEED_CACHE_MEMBER_BYTES: int = Field(default=32 * 2**20, ge=0, le=2**34)

    # Images (docs/design.md "Images" and "URLs").
    PUBLIC_IMAGES_BUCKET: str = "yoctogram-public-images"
    PRIVATE_IMAGES_BUCKET: str = "yoctogram-private-images"
    AWS_DEFAULT_REGION: str = "us-west-2"
    AWS_ENDPOINT_URL: str | None = None
    EVENT_QUEUE_URL: str | None = None
    EVENT_WAIT_SECONDS: int = Field(default=20, ge=0, le=20)  # SQS long poll; the local stack uses less
    MEDIA_BASE_URL: str = "http://127.0.0.1:8000"
    MEDIA_SIGNING_KEY_ID: str = ""
    MEDIA_SIGNING_PRIVATE_KEY: SecretStr | None = None
    # Local only: the public key (PEM) the media gateway trusts, as CloudFront trusts its key group's keys;
    # without it, the signing key's own public half. A key the gateway does not trust makes every private
    # image 403 locally, as in AWS.
    MEDIA_SIGNING_PUBLIC_KEY: str | None = None
    MEDIA_URL_WINDOW_SECONDS: int = Field(default=3600, ge=60)
    MAX_UPLOAD_BYTES: int = Field(default=10 * 1024 * 1024, ge=1)
    # The largest request body the API reads (JSON only: images go straight to S3); larger is a 413.
    MAX_REQUEST_BODY_BYTES: int = Field(default=64 * 1024, ge=1024)
    # A presigned POST can be re-sent until it expires (S3 cannot revoke it): short, yet room for a 10 MB
    # photo on a 1 Mbit/s mobile uplink (~80 s; on loopback it takes 0.3 s). Clients POST right away.
    UPLOAD_URL_EXPIRES_SECONDS: int = Field(default=120, ge=10, le=3600)
    PENDING_MAX_AGE_HOURS: int = Field(default=24, ge=1)
    # S3 calls give up soon: a hung S3 is a 503 within about connect + attempts x read seconds, not a
    # request held for the SDK's default 60 s reads. A read timeout is per socket read, so a large
    # object that keeps arriving is not cut off.
    S3_CONNECT_TIMEOUT_SECONDS: float = Field(default=2.0, gt=0, le=60)
    S3_READ_TIMEOUT_SECONDS: float = Field(default=3.0, gt=0, le=60)
    S3_MAX_ATTEMPTS: int = Field(default=2, ge=1, le=10)
    # Reconciliation (app/services/reconcile.py): rows `uploaded` (or `pending` with an original) for
    # longer than this are settled from what S3 holds, by the cleanup and by the local dispatcher.
    RECONCILE_AFTER_MINUTES: int = Field(default=5, ge=1)
    # The compressor Lambda that reconciliation re-invokes (asynchronously) for an original without a
    # rendition or refusal marker; in AWS the stack provides it. Locally the dispatcher runs the handler.
    COMPRESSOR_FUNCTION_NAME: str | None = None

    # HTTP.
    FORWARD_FACING_NAME: str = "127.0.0.1:8000"
    WEB_CONCURRENCY: int = Field(default=2, ge=1, le=64)
    # How long an idle client connection stays open. Behind a load balancer it must outlast the load
    # balancer's idle timeout (60 s on the ALB), or the two race to reuse a closing connection: a 502.
    HTTP_KEEP_ALIVE_SECONDS: int = Field(default=75, ge=1, le=4000)
    FRONTEND_DIST: str | None = None
    LOG_LEVEL: str = "INFO"

    # Which build this is (app/core/build.py, reported by /api/v1/health): the commit the stack was
    # synthesized from (locally `git rev-parse HEAD` at `make up`), and ECS's task metadata endpoint,
    # which ECS sets in every container and which names the running image and its digest.
    BUILD_COMMIT: str = "unknown"
    ECS_CONTAINER_METADATA_URI_V4: str | None = None

    @model_validator(mode="after")
    def _require_production_secrets(self) -> Settings:
        secret = self.SECRET_KEY.get_secret_value() if self.SECRET_KEY else ""
        if self.APP_ENV != "local" and (len(secret) < 32 or secret == LOCAL_DEV_SECRET):
            raise ValueError(
                "SECRET_KEY must be set (at least 32 characters, not the local development secret) when "
                "APP_ENV is not 'local'; the stack provides it from Secrets Manager"
            )
        if self.POSTGRES_SSL_MODE == "verify-full" and not self.POSTGRES_SSL_ROOT_CERT:
            raise ValueError(
                "POSTGRES_SSL_MODE=verify-full needs POSTGRES_SSL_ROOT_CERT (the CA bundle's path)"
            )
        return self

    @property
    def secret_key(self) -> str:
        return self.SECRET_KEY.get_secret_value() if self.SECRET_KEY else LOCAL_DEV_SECRET

    @property
    def database_url(self) -> URL:
        """The asyncpg URL to connect to."""
        if self.DATABASE_URL:
            url = make_url(self.DATABASE_URL)
            if url.drivername in ("postgresql", "postgres", "postgresql+psycopg", "postgresql+psycopg2"):
                url = url.set(drivername="postgresql+asyncpg")
            return url
        return URL.create(
            "postgresql+asyncpg",
            username=self.POSTGRES_USER,
            password=self.POSTGRES_PASSWORD.get_secret_value() or None,
            host=self.POSTGRES_HOST,
            port=self.POSTGRES_PORT,
            database=self.POSTGRES_DB,
        )

    @property
    def cors_origins(self) -> list[str]:
        """Browsers on the site's own origin; locally also http (no TLS on a laptop)."""
        name = self.FORWARD_FACING_NAME.strip().rstrip("/")
        if name.startswith(("http://", "https://")):
            return [name]
        origins = [f"https://{name}"]
        if self.APP_ENV == "local":
            origins.append(f"http://{name}")
        return origins


class SettingsError(RuntimeError):
    """The environment does not describe a process that may start; the message says what to set."""


def get_settings() -> Settings:
    """Read the settings from the environment (the entry points call this once); a `SettingsError` that
    names every problem and what to do about it when they are not usable."""
    try:
        return Settings()  # type: ignore[call-arg]  # APP_ENV and the rest come from the environment
    except ValidationError as error:
        problems = []
        for item in error.errors():
            name = ".".join(str(part) for part in item["loc"]) or "settings"
            if name == "APP_ENV" and item["type"] == "missing":
                problems.append(
                    "APP_ENV is not set: set APP_ENV=local to run on a laptop (`make up` and the tests do), "
                    "or APP_ENV=aws in a deployed task (the stack does)"
                )
            else:
                problems.append(f"{name}: {item['msg']}")
        raise SettingsError("the backend cannot start: " + "; ".join(problems)) from None


def settings_or_exit() -> Settings:
    """`get_settings()` for the commands' `main`s: on a `SettingsError`, its message on stderr and exit 2,
    before anything starts (a traceback would bury what to set)."""
    try:
        return get_settings()
    except SettingsError as error:
        print(f"ERROR: {error}", file=sys.stderr, flush=True)
        raise SystemExit(2) from None
