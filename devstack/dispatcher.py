"""The local dispatcher (docs/design.md, "How the service learns"): one process of `make up` that consumes the
local event queue, hands every originals event to the compressor's Lambda handler, and every event to the
backend's event worker code. In AWS, EventBridge does this fan-out; here one loop does it, in order.

A message is deleted only when both parts succeeded; otherwise it comes back, as in AWS.

Beside it, every RECONCILE_EVERY_SECONDS (and once at start), reconciliation settles rows whose events were
lost (app/services/reconcile.py), running the compressor handler again on originals it never processed:
what the scheduled cleanup does in AWS.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from datetime import timedelta
from typing import Any

import anyio.to_thread

from app.core.config import Settings, settings_or_exit
from app.core.logging import configure_logging
from app.events import ObjectEvent, serve
from app.services.reconcile import reconcile
from app.services.storage import ImageStorage, make_s3_client

log = logging.getLogger("devstack.dispatcher")

RECONCILE_EVERY_SECONDS = 60.0


async def reconcile_forever(settings: Settings, s3: Any, compress: Any, every: float) -> None:
    """Reconcile now and then every `every` seconds, until cancelled; a failed round is logged and retried."""
    from app.core.db import make_engine, make_sessionmaker

    engine = make_engine(settings)
    storage = ImageStorage(s3, settings)

    async def recompress(event: dict[str, Any]) -> None:
        await anyio.to_thread.run_sync(lambda: compress(event, None, s3_client=s3))

    try:
        while True:
            try:
                await reconcile(
                    make_sessionmaker(engine),
                    storage,
                    older_than=timedelta(minutes=settings.RECONCILE_AFTER_MINUTES),
                    recompress=recompress,
                )
            except Exception:  # the database or S3 is down: the next round tries again
                log.exception("reconciliation failed; retrying in %s s", every)
            await asyncio.sleep(every)
    finally:
        await engine.dispose()


async def run(settings: Settings, every: float = RECONCILE_EVERY_SECONDS) -> None:
    import handler as compressor  # compressor/ is on PYTHONPATH in the local stack

    s3 = make_s3_client(settings)

    async def compress_originals(message: Any, events: list[ObjectEvent]) -> None:
        if any(event.kind == "original" for event in events):
            # The same handler the Lambda runs, with the same event; Pillow work stays off the loop.
            result = await anyio.to_thread.run_sync(lambda: compressor.handler(message, None, s3_client=s3))
            log.info("compressor ran", extra={"outcomes": result.get("outcomes")})

    reconciling = asyncio.create_task(reconcile_forever(settings, s3, compressor.handler, every))
    try:
        await serve(settings, before_apply=compress_originals)
    finally:
        reconciling.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await reconciling


def main() -> None:
    settings = settings_or_exit()
    configure_logging(settings.LOG_LEVEL)
    asyncio.run(run(settings))


if __name__ == "__main__":
    main()
