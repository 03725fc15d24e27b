"""users and images

Revision ID: 0001
Revises:
Create Date: 2026-11-26 09:07:06.018856+00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:

    op.create_table(
        "users",
        sa.Column("username", sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False),
        sa.Column("email", sqlmodel.sql.sqltypes.AutoString(length=254), nullable=False),
        sa.Column("bio", sqlmodel.sql.sqltypes.AutoString(length=500), nullable=False),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("hashed_password", sqlmodel.sql.sqltypes.AutoString(length=255), nullable=False),
        sa.Column("is_active", sa.Boolean(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_users")),
    )
    op.create_index("uq_users_email_lower", "users", [sa.literal_column("lower(email)")], unique=True)
    op.create_index("uq_users_username_lower", "users", [sa.literal_column("lower(username)")], unique=True)
    op.create_table(
        "images",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("owner_id", sa.Uuid(), nullable=False),
        sa.Column("public", sa.Boolean(), nullable=False),
        sa.Column("state", sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
        sa.Column("rejected_reason", sqlmodel.sql.sqltypes.AutoString(length=500), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["owner_id"], ["users.id"], name=op.f("fk_images_owner_id_users"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_images")),
    )
    op.create_index(
        "ix_images_owner_feed",
        "images",
        [sa.literal_column("owner_id"), sa.literal_column("created_at DESC"), sa.literal_column("id DESC")],
        unique=False,
        postgresql_where=sa.text("state IN ('uploaded', 'ready')"),
    )
    op.create_index(
        "ix_images_owner_public_feed",
        "images",
        [sa.literal_column("owner_id"), sa.literal_column("created_at DESC"), sa.literal_column("id DESC")],
        unique=False,
        postgresql_where=sa.text("public AND state IN ('uploaded', 'ready')"),
    )
    op.create_index(
        "ix_images_pending_created",
        "images",
        [sa.literal_column("created_at")],
        unique=False,
        postgresql_where=sa.text("state = 'pending'"),
    )
    op.create_index(
        "ix_images_public_feed",
        "images",
        [sa.literal_column("created_at DESC"), sa.literal_column("id DESC")],
        unique=False,
        postgresql_where=sa.text("public AND state IN ('uploaded', 'ready')"),
    )


def downgrade() -> None:

    op.drop_index(
        "ix_images_public_feed",
        table_name="images",
        postgresql_where=sa.text("public AND state IN ('uploaded', 'ready')"),
    )
    op.drop_index(
        "ix_images_pending_created", table_name="images", postgresql_where=sa.text("state = 'pending'")
    )
    op.drop_index(
        "ix_images_owner_public_feed",
        table_name="images",
        postgresql_where=sa.text("public AND state IN ('uploaded', 'ready')"),
    )
    op.drop_index(
        "ix_images_owner_feed",
        table_name="images",
        postgresql_where=sa.text("state IN ('uploaded', 'ready')"),
    )
    op.drop_table("images")
    op.drop_index("uq_users_username_lower", table_name="users")
    op.drop_index("uq_users_email_lower", table_name="users")
    op.drop_table("users")
