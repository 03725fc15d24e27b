"""feed version: image writes bump it only when they change what a feed shows

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-26 15:00:00+00:00

0002 bumped the version on every INSERT, DELETE or UPDATE of the feed columns of `images`, whatever the
rows: a `generate` (a `pending` row no feed shows), the cleanup of pending rows, a refusal of a pending
upload, and a retried event whose conditional UPDATE matched no row all made every cached page be made
again. These triggers see the statement's rows (transition tables) and bump only when a row that is or
was visible (`uploaded`, `ready`) appears, goes, or changes a column a feed card shows. Still one bump per
statement, still in the writer's own transaction. The `users` and TRUNCATE triggers of 0002 stay.
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# One function for the three triggers (each names its own transition tables); PL/pgSQL prepares a branch's
# query only when that branch runs, so an INSERT trigger never looks for `old_rows`. The visible states
# and the columns a card shows are those of app/models.py (VISIBLE_STATES) and crud/images.py (_COLUMNS);
# `id` changing would leave rows unmatched by the FULL JOIN, which counts as a change too.
BUMP_IF_VISIBLE = """
CREATE FUNCTION feed_version_bump_if_visible() RETURNS trigger LANGUAGE plpgsql AS $$
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


def upgrade() -> None:
    op.execute("DROP TRIGGER images_feed_version ON images")
    op.execute(BUMP_IF_VISIBLE)
    # PostgreSQL allows transition tables only on single-event triggers without a column list.
    op.execute(
        "CREATE TRIGGER images_feed_version_insert AFTER INSERT ON images REFERENCING NEW TABLE AS new_rows "
        "FOR EACH STATEMENT EXECUTE FUNCTION feed_version_bump_if_visible()"
    )
    op.execute(
        "CREATE TRIGGER images_feed_version_update AFTER UPDATE ON images "
        "REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows "
        "FOR EACH STATEMENT EXECUTE FUNCTION feed_version_bump_if_visible()"
    )
    op.execute(
        "CREATE TRIGGER images_feed_version_delete AFTER DELETE ON images REFERENCING OLD TABLE AS old_rows "
        "FOR EACH STATEMENT EXECUTE FUNCTION feed_version_bump_if_visible()"
    )


def downgrade() -> None:
    op.execute("DROP TRIGGER images_feed_version_delete ON images")
    op.execute("DROP TRIGGER images_feed_version_update ON images")
    op.execute("DROP TRIGGER images_feed_version_insert ON images")
    op.execute("DROP FUNCTION feed_version_bump_if_visible()")
    op.execute(
        "CREATE TRIGGER images_feed_version AFTER INSERT OR DELETE OR UPDATE OF state, public, owner_id, "
        "created_at ON images FOR EACH STATEMENT EXECUTE FUNCTION feed_version_bump()"
    )
