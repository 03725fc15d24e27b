"""Tables and the API's public shapes (families: XBase / XCreate / X(table=True) / XPublic)."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from enum import StrEnum
from typing import TYPE_CHECKING, Annotated

import sqlalchemy as sa
from pydantic import EmailStr, StringConstraints, field_validator
from sqlmodel import Field, SQLModel

from yoctogram_common import keys

USERNAME_PATTERN = r"^[A-Za-z0-9_.-]{3,32}$"

# Naming convention so Alembic's constraint names are stable and predictable.
SQLModel.metadata.naming_convention = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


def utcnow() -> datetime:
    """Now, timezone-aware UTC, computed at each call (never at import)."""
    return datetime.now(UTC)


class ImageState(StrEnum):
    """docs/design.md: pending -> uploaded -> ready | rejected."""

    PENDING = "pending"
    UPLOADED = "uploaded"
    READY = "ready"
    REJECTED = "rejected"


VISIBLE_STATES = (ImageState.UPLOADED.value, ImageState.READY.value)


# --- users -------------------------------------------------------------------------------------
class UserBase(SQLModel):
    username: str = Field(max_length=32)
    email: str = Field(max_length=254)
    bio: str = Field(default="", max_length=500)


class UserCreate(SQLModel):
    """Body of POST /auth/register/."""

    username: Annotated[str, StringConstraints(pattern=USERNAME_PATTERN)] = Field(
        description="3-32 letters, digits, '_', '.', '-'"
    )
    email: EmailStr = Field(max_length=254)
    password: str = Field(min_length=8, max_length=256)

    @field_validator("email")
    @classmethod
    def _lower_email(cls, value: str) -> str:
        return value.strip().lower()


class User(UserBase, table=True):
    __tablename__ = "users"
    __table_args__ = (
        # Uniqueness ignores case so "Alice" and "alice" cannot both register.
        sa.Index("uq_users_username_lower", sa.func.lower(sa.column("username")), unique=True),
        sa.Index("uq_users_email_lower", sa.func.lower(sa.column("email")), unique=True),
    )

    id: uuid.UUID = Field(default_factory=uuid.uuid4, primary_key=True)
    hashed_password: str = Field(max_length=255)
    is_active: bool = Field(default=True)
    # Tokens carry the generation they were issued in; "log out everywhere" bumps it (app/services/sessions.py).
    token_generation: int = Field(default=0, sa_column_kwargs={"server_default": "0"}, nullable=False)
    created_at: datetime = Field(default_factory=utcnow, sa_type=sa.DateTime(timezone=True), nullable=False)


class TokenRevocation(SQLModel, table=True):
    """One logout (`token_digest`: that token) or one "log out everywhere" (`generation`: every token of
    the user issued before it). `seq` is the `token_revocation_version` the revocation committed as, so a
    process that knows version N knows every revocation up to N (app/services/sessions.py)."""

    __tablename__ = "token_revocations"

    seq: int = Field(primary_key=True, sa_type=sa.BigInteger(), sa_column_kwargs={"autoincrement": False})
    user_id: uuid.UUID = Field(foreign_key="users.id", ondelete="CASCADE", nullable=False, index=True)
    token_digest: bytes | None = Field(default=None, sa_type=sa.LargeBinary(length=32), unique=True)
    generation: int | None = Field(default=None)
    # When the revoked token(s) would have expired anyway: the cleanup deletes the row after that.
    expires_at: datetime = Field(sa_type=sa.DateTime(timezone=True), nullable=False, index=True)


class TokenRevocationVersion(SQLModel, table=True):
    """One row: bumped (row lock held to commit) by every revocation, read with the feed version."""

    __tablename__ = "token_revocation_version"

    id: int = Field(primary_key=True, sa_type=sa.SmallInteger(), sa_column_kwargs={"autoincrement": False})
    version: int = Field(default=0, sa_type=sa.BigInteger(), nullable=False)


class LoginThrottle(SQLModel, table=True):
    """Login attempts per account name and per client address in a fixed window (app/services/login_throttle.py).
    `key` is a SHA-256 of the kind and the value: no login name or address is stored."""

    __tablename__ = "login_throttle"

    key: bytes = Field(primary_key=True, sa_type=sa.LargeBinary(length=32))
    window_started: datetime = Field(sa_type=sa.DateTime(timezone=True), nullable=False, index=True)
    attempts: int = Field(nullable=False)


class UserPublic(SQLModel):
    """GET /users/me."""

    id: uuid.UUID
    username: str
    email: str
    bio: str


class ProfilePublic(SQLModel):
    """GET /users/profile/{id}."""

    success: bool = True
    username: str
    bio: str


class LoginRequest(SQLModel):
    """Body of POST /auth/login/: `username` may also be the email address."""

    username: str = Field(min_length=1, max_length=254)
    password: str = Field(min_length=1, max_length=256)

    @field_validator("username")
    @classmethod
    def _no_nul(cls, value: str) -> str:
        # PostgreSQL text cannot hold NUL; without this check such a name would fail in the query (a 500).
        if "\x00" in value:
            raise ValueError("must not contain NUL characters")
        return value


class Token(SQLModel):
    access_token: str
    token_type: str = "bearer"  # noqa: S105 - the OAuth2 token type, not a secret


class Success(SQLModel):
    success: bool = True


# --- images ------------------------------------------------------------------------------------
class ImageKeys:
    """The S3 keys of an image (docs/design.md, "Images"), from its `id` and `public`; for rows and feed rows."""

    __slots__ = ()
    if TYPE_CHECKING:  # provided by the classes that mix this in
        id: uuid.UUID
        public: bool
        rendition_ext: str | None

    @property
    def privacy(self) -> str:
        return keys.privacy_of(self.public)

    @property
    def original_key(self) -> str:
        return keys.original_key(self.privacy, str(self.id))

    @property
    def rendition_key(self) -> str:
        """The rendition the compressor wrote: `.webp`, or `.jpg` with its JPEG fallback (recorded on the
        row by the event worker when the rendition arrived; rows from before that know only `.webp`)."""
        return keys.rendition_key(self.privacy, str(self.id), self.rendition_ext)


class Image(ImageKeys, SQLModel, table=True):
    """One post. The bytes live in S3 under keys derived from `id` and `public` (docs/design.md)."""

    __tablename__ = "images"
    __table_args__ = (
        # The anonymous feed: public, visible, newest first (keyset on created_at, id).
        sa.Index(
            "ix_images_public_feed",
            sa.column("created_at").desc(),
            sa.column("id").desc(),
            postgresql_where=sa.text("public AND state IN ('uploaded', 'ready')"),
        ),
        # One creator's posts as the creator sees them (and a member's own private ones), newest first.
        sa.Index(
            "ix_images_owner_feed",
            sa.column("owner_id"),
            sa.column("created_at").desc(),
            sa.column("id").desc(),
            postgresql_where=sa.text("state IN ('uploaded', 'ready')"),
        ),
        # One creator's public posts, as everyone but the creator sees them.
        sa.Index(
            "ix_images_owner_public_feed",
            sa.column("owner_id"),
            sa.column("created_at").desc(),
            sa.column("id").desc(),
            postgresql_where=sa.text("public AND state IN ('uploaded', 'ready')"),
        ),
        # The cleanup of pending rows older than a day.
        sa.Index(
            "ix_images_pending_created",
            sa.column("created_at"),
            postgresql_where=sa.text("state = 'pending'"),
        ),
    )

    id: uuid.UUID = Field(default_factory=uuid.uuid4, primary_key=True)
    owner_id: uuid.UUID = Field(foreign_key="users.id", ondelete="CASCADE", nullable=False)
    public: bool = Field(nullable=False)
    # Plain text, not a database enum: a later expand migration can add a state without breaking old code.
    state: str = Field(default=ImageState.PENDING.value, max_length=16, nullable=False)
    rejected_reason: str | None = Field(default=None, max_length=500)
    rendition_ext: str | None = Field(default=None, max_length=8)  # set with `ready`: "webp" or "jpg"
    created_at: datetime = Field(default_factory=utcnow, sa_type=sa.DateTime(timezone=True), nullable=False)
    updated_at: datetime = Field(default_factory=utcnow, sa_type=sa.DateTime(timezone=True), nullable=False)


class FeedVersion(SQLModel, table=True):
    """Counters that change in the same transaction as anything a feed shows (migration 0002's triggers).

    A commit that adds, hides or changes a post, or renames or deactivates a member, bumps one slot (the
    writer's backend pid modulo the slot count, so concurrent writers rarely wait on one row) and records
    what it changed under the new version (`FeedChange`, migration 0006). The feed cache
    (app/services/feed_cache.py) reads the vector of slots on every request, with the changes since the
    vector it knows, and drops only the cached parts they touch.
    """

    __tablename__ = "feed_version"

    slot: int = Field(primary_key=True, sa_type=sa.SmallInteger(), sa_column_kwargs={"autoincrement": False})
    version: int = Field(default=0, sa_type=sa.BigInteger(), nullable=False)


class FeedChange(SQLModel, table=True):
    """What one feed version bump changed (migration 0006's triggers): a visible post of `owner_id`
    (`public`, `created_at`) appeared, went or changed a card column; no owner: anything may have
    changed. Caches drop only the pages whose audience and time window a change touches."""

    __tablename__ = "feed_changes"
    __table_args__ = (sa.Index("ix_feed_changes_slot_version", "slot", "version"),)

    id: int | None = Field(
        default=None, sa_column=sa.Column(sa.BigInteger(), sa.Identity(always=True), primary_key=True)
    )
    slot: int = Field(sa_type=sa.SmallInteger(), nullable=False)
    version: int = Field(sa_type=sa.BigInteger(), nullable=False)
    owner_id: uuid.UUID | None = Field(default=None)
    public: bool | None = Field(default=None)
    created_at: datetime | None = Field(default=None, sa_type=sa.DateTime(timezone=True))


class FeedItem(SQLModel):
    id: uuid.UUID
    creator: uuid.UUID
    creator_username: str
    download_url: str
    created_at: datetime
    public: bool
    state: str


class FeedPage(SQLModel):
    success: bool = True
    count: int
    results: list[FeedItem]
    next_cursor: str | None
