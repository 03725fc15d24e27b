"""token revocation (logout, log out everywhere) and login throttling counts shared by every task

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-04 05:00:00+00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # A constant default: adding the column is a catalog change only, however large the table.
    op.add_column("users", sa.Column("token_generation", sa.Integer(), server_default="0", nullable=False))
    op.create_table(
        "token_revocations",
        sa.Column("seq", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("user_id", sa.Uuid(), nullable=False),
        sa.Column("token_digest", sa.LargeBinary(length=32), nullable=True),
        sa.Column("generation", sa.Integer(), nullable=True),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["user_id"],
            ["users.id"],
            name=op.f("fk_token_revocations_user_id_users"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("seq", name=op.f("pk_token_revocations")),
        sa.UniqueConstraint("token_digest", name=op.f("uq_token_revocations_token_digest")),
    )
    op.create_index(op.f("ix_token_revocations_expires_at"), "token_revocations", ["expires_at"])
    op.create_index(op.f("ix_token_revocations_user_id"), "token_revocations", ["user_id"])
    op.create_table(
        "token_revocation_version",
        sa.Column("id", sa.SmallInteger(), autoincrement=False, nullable=False),
        sa.Column("version", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_token_revocation_version")),
    )
    op.execute("INSERT INTO token_revocation_version (id, version) VALUES (1, 0)")
    op.create_table(
        "login_throttle",
        sa.Column("key", sa.LargeBinary(length=32), nullable=False),
        sa.Column("window_started", sa.DateTime(timezone=True), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("key", name=op.f("pk_login_throttle")),
    )
    op.create_index(op.f("ix_login_throttle_window_started"), "login_throttle", ["window_started"])


def downgrade() -> None:
    op.drop_index(op.f("ix_login_throttle_window_started"), table_name="login_throttle")
    op.drop_table("login_throttle")
    op.drop_table("token_revocation_version")
    op.drop_index(op.f("ix_token_revocations_user_id"), table_name="token_revocations")
    op.drop_index(op.f("ix_token_revocations_expires_at"), table_name="token_revocations")
    op.drop_table("token_revocations")
    op.drop_column("users", "token_generation")
