"""images.rendition_ext: which rendition made a row ready (.webp, or .jpg from the JPEG fallback)

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-26 13:00:00+00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # Nullable, no default: adding it is a catalog change only, however large the table. Rows made ready
    # before it read as `.webp`, the only rendition the compressor wrote until the fallback was used.
    op.add_column(
        "images", sa.Column("rendition_ext", sqlmodel.sql.sqltypes.AutoString(length=8), nullable=True)
    )


def downgrade() -> None:
    op.drop_column("images", "rendition_ext")
