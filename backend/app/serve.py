"""`python -m app.serve`: the API under uvicorn with WEB_CONCURRENCY worker processes (the image's CMD)."""

from __future__ import annotations

import argparse
import os

import uvicorn

from app.core.config import settings_or_exit
from app.core.logging import configure_logging


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Serve the Yoctogram API")
    parser.add_argument("--host", default=os.environ.get("HOST", "0.0.0.0"))  # noqa: S104 - a container listens on all interfaces
    parser.add_argument("--port", type=int, default=int(os.environ.get("PORT", "8000")))
    parser.add_argument("--workers", type=int, default=None, help="default: WEB_CONCURRENCY")
    args = parser.parse_args(argv)
    settings = settings_or_exit()  # fail here, with the reason, before any worker starts
    configure_logging(settings.LOG_LEVEL)
    uvicorn.run(
        "app.main:app_factory",
        factory=True,
        host=args.host,
        port=args.port,
        workers=args.workers or settings.WEB_CONCURRENCY,
        proxy_headers=True,
        forwarded_allow_ips="*",  # only the ALB (or the local stack) can reach the task
        access_log=False,
        log_config=None,
        timeout_graceful_shutdown=20,
        timeout_keep_alive=settings.HTTP_KEEP_ALIVE_SECONDS,
    )


if __name__ == "__main__":
    main()
