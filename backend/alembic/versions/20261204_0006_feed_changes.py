"""feed changes: what each feed version bump changed, so caches invalidate only the pages it touches

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-04 06:00:00+00:00

Until now a bump of `feed_version` said only "something changed", and every cached page of every viewer
was made again. Now every bump also records what changed, under the slot and the version it bumped to:
one row per (owner, privacy, time) of a visible post that appeared, went, or changed a card column; a
row with no owner means "anything may have changed" (a rename, a deactivation, a deleted account, a
TRUNCATE, or a statement touching more than 32 visible posts). Within one slot the row lock on
`feed_version` makes bumps commit in version order, so a reader that knows a slot's version N and reads
the rows above it sees every change up to the version it reads, with no gap (app/services/feed_cache.py).
Each slot keeps its last 1,000 versions; a reader that fell further behind starts afresh.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

KEEP_VERSIONS = 1000
MAX_ROWS = 32

# The visible states and the card columns are those of app/models.py (VISIBLE_STATES) and
# app/crud/images.py (FeedRow; `id` pairs old and new rows, `username` is watched on `users`);
# backend/tests/test_feed_changes.py checks the installed function against FeedRow's columns.
RECORD_IMAGES = """
CREATE OR REPLACE FUNCTION feed_version_bump_if_visible() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    owners uuid[];
    publics boolean[];
    times timestamptz[];
    affected integer;
    bumped bigint;
    my_slot smallint := pg_backend_pid() % 16;
BEGIN
    IF TG_OP = 'INSERT' THEN
        SELECT array_agg(owner_id), array_agg(public), array_agg(created_at), count(*)
        INTO owners, publics, times, affected
        FROM (SELECT DISTINCT owner_id, public, created_at FROM new_rows
              WHERE state IN ('uploaded', 'ready')) changed;
    ELSIF TG_OP = 'DELETE' THEN
        SELECT array_agg(owner_id), array_agg(public), array_agg(created_at), count(*)
        INTO owners, publics, times, affected
        FROM (SELECT DISTINCT owner_id, public, created_at FROM old_rows
              WHERE state IN ('uploaded', 'ready')) changed;
    ELSE
        SELECT array_agg(owner_id), array_agg(public), array_agg(created_at), count(*)
        INTO owners, publics, times, affected
        FROM (
            SELECT DISTINCT side.owner_id, side.public, side.created_at
            FROM old_rows o FULL JOIN new_rows n ON n.id = o.id
            CROSS JOIN LATERAL (VALUES (o.owner_id, o.public, o.created_at, o.state),
                                       (n.owner_id, n.public, n.created_at, n.state))
                AS side(owner_id, public, created_at, state)
            WHERE (o.state IN ('uploaded', 'ready') OR n.state IN ('uploaded', 'ready'))
              AND (o.id IS NULL OR n.id IS NULL
                   OR (o.state, o.public, o.owner_id, o.created_at, o.rendition_ext)
                      IS DISTINCT FROM (n.state, n.public, n.owner_id, n.created_at, n.rendition_ext))
              AND side.state IN ('uploaded', 'ready')
        ) changed;
    END IF;
    IF affected > 0 THEN
        UPDATE feed_version SET version = version + 1 WHERE slot = my_slot RETURNING version INTO bumped;
        IF affected > __MAX_ROWS__ THEN
            INSERT INTO feed_changes (slot, version) VALUES (my_slot, bumped);
        ELSE
            INSERT INTO feed_changes (slot, version, owner_id, public, created_at)
            SELECT my_slot, bumped, c.owner_id, c.public, c.created_at
            FROM unnest(owners, publics, times) AS c(owner_id, public, created_at);
        END IF;
        DELETE FROM feed_changes WHERE slot = my_slot AND version <= bumped - __KEEP_VERSIONS__;
    END IF;
    RETURN NULL;
END
$$
""".replace("__MAX_ROWS__", str(MAX_ROWS)).replace("__KEEP_VERSIONS__", str(KEEP_VERSIONS))

# Renames, deactivations, deleted accounts and TRUNCATEs: anything may have changed.
RECORD_ANYTHING = """
CREATE OR REPLACE FUNCTION feed_version_bump() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    bumped bigint;
    my_slot smallint := pg_backend_pid() % 16;
BEGIN
    UPDATE feed_version SET version = version + 1 WHERE slot = my_slot RETURNING version INTO bumped;
    INSERT INTO feed_changes (slot, version) VALUES (my_slot, bumped);
    DELETE FROM feed_changes WHERE slot = my_slot AND version <= bumped - __KEEP_VERSIONS__;
    RETURN NULL;
END
$$
""".replace("__KEEP_VERSIONS__", str(KEEP_VERSIONS))


def upgrade() -> None:
    op.create_table(
        "feed_changes",
        sa.Column("id", sa.BigInteger(), sa.Identity(always=True), nullable=False),
        sa.Column("slot", sa.SmallInteger(), nullable=False),
        sa.Column("version", sa.BigInteger(), nullable=False),
        sa.Column("owner_id", sa.Uuid(), nullable=True),
        sa.Column("public", sa.Boolean(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_feed_changes")),
    )
    op.create_index(op.f("ix_feed_changes_slot_version"), "feed_changes", ["slot", "version"])
    op.execute(RECORD_IMAGES)
    op.execute(RECORD_ANYTHING)


def downgrade() -> None:
    # The 0004 and 0002 bodies: bump only.
    op.execute(
        """
        CREATE OR REPLACE FUNCTION feed_version_bump() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            UPDATE feed_version SET version = version + 1 WHERE slot = pg_backend_pid() % 16;
            RETURN NULL;
        END
        $$
        """
    )
    op.execute(_BUMP_IF_VISIBLE_0004)
    op.drop_index(op.f("ix_feed_changes_slot_version"), table_name="feed_changes")
    op.drop_table("feed_changes")


_BUMP_IF_VISIBLE_0004 = """
CREATE OR REPLACE FUNCTION feed_version_bump_if_visible() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    changed boolean;
BEGIN
    IF TG_OP = 'INSERT' THEN
        changed := EXISTS (SELECT 1 FROM new_rows WHERE state IN ('uploaded', 'ready'));
    ELSIF TG_OP = 'DELETE' THEN
        changed := EXISTS (SELECT 1 FROM old_rows WHERE state IN ('uploaded', 'ready'));
    ELSE
        changed := EXISTS (
            SELECT 1
            FROM old_rows o FULL JOIN new_rows n ON n.id = o.id
            WHERE (o.state IN ('uploaded', 'ready') OR n.state IN ('uploaded', 'ready'))
              AND (o.id IS NULL OR n.id IS NULL
                   OR (o.state, o.public, o.owner_id, o.created_at, o.rendition_ext)
                      IS DISTINCT FROM (n.state, n.public, n.owner_id, n.created_at, n.rendition_ext))
        );
    END IF;
    IF changed THEN
        UPDATE feed_version SET version = version + 1 WHERE slot = pg_backend_pid() % 16;
    END IF;
    RETURN NULL;
END
$$
"""
