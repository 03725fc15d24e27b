"""The ceiling: a bare FastAPI endpoint returning a constant, served by uvicorn exactly like the API.

Same uvicorn options as ``app.serve`` (httptools + uvloop, no access log, proxy headers), same pinning;
no middleware, no database. Whatever the API does per request costs throughput relative to this.

    python bench/ceiling_app.py --port 8123 [--workers 1]
"""

from __future__ import annotations

import argparse
from pathlib import Path

import uvicorn
from fastapi import FastAPI

app = FastAPI()


@app.get("/ceiling")
async def ceiling() -> dict[str, object]:
    return {"success": True, "status": "ok"}  # the body of the API's /health


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--workers", type=int, default=1)
    args = parser.parse_args()
    uvicorn.run(
        "ceiling_app:app",
        app_dir=str(Path(__file__).resolve().parent),
        host=args.host,
        port=args.port,
        workers=args.workers,
        proxy_headers=True,
        forwarded_allow_ips="*",
        access_log=False,
        log_config=None,
        log_level="warning",
    )


if __name__ == "__main__":
    main()
