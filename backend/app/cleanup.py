"""`python -m app.cleanup`: remove `pending` rows older than PENDING_MAX_AGE_HOURS whose original never came,
settle rows whose events were lost, and forget revocations and login counts that have expired.

A pending row is a `generate` whose upload never happened (or whose event was lost). Before removing a
row, a HEAD checks the original: if it is there after all, the row moves to `uploaded` instead.
Then every row stuck in `uploaded` (or `pending` with its original) for RECONCILE_AFTER_MINUTES is
settled from what S3 holds, the compressor invoked again where it wrote nothing (app/services/reconcile.py).
Run it on a schedule (e.g. daily); it is safe to run at any time and any number of times.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.core.config import Settings
from app.crud import images
from app.models import ImageState
from app.services import login_throttle, sessions
from app.services.reconcile import ReconcileReport, lambda_recompressor, reconcile
from app.services.storage import ImageStorage

log = logging.getLogger("app.cleanup")


@dataclass
class CleanupReport:
    removed: int = 0
    recovered: int = 0
    reconciled: ReconcileReport | None = None
    expired_revocations: int = 0
    expired_login_counts: int = 0


async def clean_pending(
    sessionmaker: async_sessionmaker[AsyncSession],
    storage: ImageStorage,
    *,
    max_age: timedelta,
    batch: int = 500,
    now: datetime | None = None,
) -> CleanupReport:
    """Remove stale pending rows without an original; recover those whose original exists."""
    cutoff = (now or datetime.now(UTC)) - max_age
    report = CleanupReport()
    seen: set[object] = set()
    while True:
        async with sessionmaker() as session:
            rows = [
                r
                for r in await images.stale_pending(session, older_than=cutoff, limit=batch)
                if r.id not in seen
            ]
            if not rows:
                return report
            for row in rows:
                seen.add(row.id)
                if await storage.exists(key=row.original_key, public=row.public):
                    report.recovered += await images.move(session, row.id, ImageState.UPLOADED)
                else:
                    await images.delete(session, row.id)
                    report.removed += 1
            await session.commit()


async def run(settings: Settings) -> CleanupReport:
    from app.core.db import make_engine, make_sessionmaker
    from app.services.storage import make_s3_client

    engine = make_engine(settings)
    try:
        sessionmaker = make_sessionmaker(engine)
        storage = ImageStorage(make_s3_client(settings), settings)
        report = await clean_pending(
            sessionmaker, storage, max_age=timedelta(hours=settings.PENDING_MAX_AGE_HOURS)
        )
        report.reconciled = await reconcile(
            sessionmaker,
            storage,
            older_than=timedelta(minutes=settings.RECONCILE_AFTER_MINUTES),
            recompress=lambda_recompressor(settings),
        )
        async with sessionmaker() as session:
            report.expired_revocations = await sessions.prune(session)
            report.expired_login_counts = await login_throttle.prune(session, settings)
        return report
    finally:
        await engine.dispose()


def main(argv: list[str] | None = None) -> None:
    from app.core.config import settings_or_exit
    from app.core.logging import configure_logging

    argparse.ArgumentParser(description=__doc__.splitlines()[0]).parse_args(argv)
    settings = settings_or_exit()
    configure_logging(settings.LOG_LEVEL)
    report = asyncio.run(run(settings))
    reconciled = report.reconciled.__dict__ if report.reconciled else {}
    log.info(
        "cleanup done",
        extra={
            "removed": report.removed,
            "recovered": report.recovered,
            "reconciled": reconciled,
            "expired_revocations": report.expired_revocations,
            "expired_login_counts": report.expired_login_counts,
        },
    )


if __name__ == "__main__":
    main()
