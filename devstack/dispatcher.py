"""The local dispatcher (DESIGN.md, "How the service learns"): one process of `make up` that consumes the
local event queue, hands every originals event to the compressor's Lambda handler, and every event to the
backend's event worker code. In AWS, EventBridge does this fan-out; here one loop does it, in order.

A message is deleted only when both parts succeeded; otherwise it comes back, as in AWS.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import anyio.to_thread

from app.core.config import get_settings
from app.core.logging import configure_logging
from app.events import ObjectEvent, serve
from app.services.storage import make_s3_client

log = logging.getLogger("devstack.dispatcher")


def main() -> None:
    import handler as compressor  # compressor/ is on PYTHONPATH in the local stack

    settings = get_settings()
    configure_logging(settings.LOG_LEVEL)
    s3 = make_s3_client(settings)

    async def compress_originals(message: Any, events: list[ObjectEvent]) -> None:
        if any(event.kind == "original" for event in events):
            # The same handler the Lambda runs, with the same event; Pillow work stays off the loop.
            result = await anyio.to_thread.run_sync(lambda: compressor.handler(message, None, s3_client=s3))
            log.info("compressor ran", extra={"outcomes": result.get("outcomes")})

    asyncio.run(serve(settings, before_apply=compress_originals))


if __name__ == "__main__":
    main()
