"""feed version: counters bumped by triggers in the same transaction as every change a feed shows

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-26 12:00:00+00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

SLOTS = 16  # also written out in BUMP

# Statement-level triggers: one bump per statement, however many rows it touches (a bulk insert or an
# account deletion's cascade costs one UPDATE, not one per row). The bump is an ordinary row update, so it
# becomes visible exactly when the writer's transaction commits, together with the change itself: a
# reader that sees the old sum cannot see the new rows, and one that sees the new rows sees the new sum.
# The slot is the writer's backend pid modulo SLOTS, so concurrent writers rarely wait on one row.
BUMP = """
CREATE FUNCTION feed_version_bump() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    UPDATE feed_version SET version = version + 1 WHERE slot = pg_backend_pid() % 16;
    RETURN NULL;
END
$$
"""


def upgrade() -> None:
    op.create_table(
        "feed_version",
        sa.Column("slot", sa.SmallInteger(), autoincrement=False, nullable=False),
        sa.Column("version", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("slot", name=op.f("pk_feed_version")),
    )
    op.execute(f"INSERT INTO feed_version (slot, version) SELECT n, 0 FROM generate_series(0, {SLOTS - 1}) n")  # noqa: S608
    op.execute(BUMP)
    # Feeds show visible images with their state, privacy, owner and time: inserts and deletes of any row,
    # and updates that name one of those columns. TRUNCATE has statement triggers of its own.
    op.execute(
        "CREATE TRIGGER images_feed_version AFTER INSERT OR DELETE OR UPDATE OF state, public, owner_id, "
        "created_at ON images FOR EACH STATEMENT EXECUTE FUNCTION feed_version_bump()"
    )
    op.execute(
        "CREATE TRIGGER images_feed_version_truncate AFTER TRUNCATE ON images "
        "FOR EACH STATEMENT EXECUTE FUNCTION feed_version_bump()"
    )
    # Feeds show the creator's username, and a deactivated or deleted member's token stops working.
    op.execute(
        "CREATE TRIGGER users_feed_version AFTER DELETE OR UPDATE OF username, is_active ON users "
        "FOR EACH STATEMENT EXECUTE FUNCTION feed_version_bump()"
    )
    op.execute(
        "CREATE TRIGGER users_feed_version_truncate AFTER TRUNCATE ON users "
        "FOR EACH STATEMENT EXECUTE FUNCTION feed_version_bump()"
    )


def downgrade() -> None:
    op.execute("DROP TRIGGER users_feed_version_truncate ON users")
    op.execute("DROP TRIGGER users_feed_version ON users")
    op.execute("DROP TRIGGER images_feed_version_truncate ON images")
    op.execute("DROP TRIGGER images_feed_version ON images")
    op.execute("DROP FUNCTION feed_version_bump()")
    op.drop_table("feed_version")
