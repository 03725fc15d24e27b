"""Which build this process is: the commit it was deployed from and the container image it runs.

- `commit`: `BUILD_COMMIT`, set by the stack (the commit of the pipeline run that synthesized it) and by
  `make up` (`git rev-parse HEAD` of the checkout, when it is one); otherwise `unknown`.
- `image` and `image_digest`: in ECS, the container's own entry of the task metadata endpoint v4
  (`ECS_CONTAINER_METADATA_URI_V4`, which ECS sets in every container): `Image` is the image reference
  the task definition names (the registry, repository and the asset's tag), `ImageID` its digest. On
  Fargate platform 1.4.0 and later `ImageID` is the image manifest's digest, the same value as ECS's
  `DescribeTasks` `imageDigest` and ECR's `imageDigest` (aws/containers-roadmap#1310), so the pipeline's
  serving check (`pipeline/serving.py`) compares them as they are. Locally both are `local`.

The metadata is read once per process, at start-up, off the event loop, with a short timeout: an
endpoint that does not answer leaves `unknown`, never a slow start.
"""

from __future__ import annotations

import json
import logging
import urllib.error
import urllib.request
from dataclasses import dataclass

from app.core.config import Settings

log = logging.getLogger("app.build")

UNKNOWN = "unknown"
LOCAL = "local"
METADATA_TIMEOUT_SECONDS = 1.0


@dataclass(frozen=True)
class BuildInfo:
    commit: str
    image: str
    image_digest: str


def from_settings(settings: Settings) -> BuildInfo:
    """What is known without asking anyone: the commit, and `local` for the image of the local stack."""
    image = LOCAL if settings.APP_ENV == "local" else UNKNOWN
    return BuildInfo(commit=settings.BUILD_COMMIT or UNKNOWN, image=image, image_digest=image)


def read_build(settings: Settings, *, timeout: float = METADATA_TIMEOUT_SECONDS) -> BuildInfo:
    """The build, with the image from the task metadata endpoint when there is one. Blocking: call it
    in a thread (`asyncio.to_thread`)."""
    known = from_settings(settings)
    uri = settings.ECS_CONTAINER_METADATA_URI_V4
    if not uri:
        return known
    try:
        # The link-local endpoint ECS gives this container (http by design); never a user's URL.
        with urllib.request.urlopen(uri.rstrip("/"), timeout=timeout) as response:  # noqa: S310
            metadata = json.loads(response.read())
    except (OSError, urllib.error.URLError, ValueError) as error:
        log.warning("task metadata unreadable: %s", error, extra={"metadata_uri": uri})
        return BuildInfo(commit=known.commit, image=UNKNOWN, image_digest=UNKNOWN)
    image, digest = metadata.get("Image"), metadata.get("ImageID")
    return BuildInfo(
        commit=known.commit,
        image=image if isinstance(image, str) and image else UNKNOWN,
        image_digest=digest if isinstance(digest, str) and digest else UNKNOWN,
    )
