"""`python -m app.migrate [revision]`: run the Alembic migrations once per deploy (never on container start)."""

from __future__ import annotations

import sys
from pathlib import Path

from alembic import command
from alembic.config import Config

BACKEND = Path(__file__).resolve().parent.parent


def alembic_config(database_url: str | None = None) -> Config:
    config = Config(str(BACKEND / "alembic.ini"))
    config.set_main_option("script_location", str(BACKEND / "alembic"))
    if database_url:
        config.attributes["database_url"] = database_url
    return config


def upgrade(revision: str = "head", database_url: str | None = None) -> None:
    command.upgrade(alembic_config(database_url), revision)


def downgrade(revision: str, database_url: str | None = None) -> None:
    command.downgrade(alembic_config(database_url), revision)


def main(argv: list[str] | None = None) -> None:
    args = sys.argv[1:] if argv is None else argv
    from app.core.logging import configure_logging

    configure_logging()
    upgrade(args[0] if args else "head")


if __name__ == "__main__":
    main()
