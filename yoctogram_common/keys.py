"""The image key layout (docs/design.md, "Images: buckets, keys, states"): the one definition of it.

| object | key |
|---|---|
| original, as uploaded | `{privacy}/originals/{image_id}` |
| rendition | `{privacy}/renditions/{image_id}.webp` (`.jpg`: the compressor's JPEG fallback) |
| refusal marker | `{privacy}/renditions/{image_id}.rejected` |
| refused original | `{privacy}/quarantine/{image_id}` (never served, never forwarded to anyone) |

The key equals the URL path under the site's domain, so CloudFront routes by it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

Privacy = Literal["public", "private"]
Kind = Literal["original", "rendition", "rejected"]

PRIVACIES: tuple[Privacy, ...] = ("public", "private")
ORIGINALS = "originals"
RENDITIONS = "renditions"
QUARANTINE = "quarantine"
SERVED_FOLDERS = (ORIGINALS, RENDITIONS)
"""The folders whose objects are served (CloudFront, the local media gateway) and reported as events."""
RENDITION_EXTENSIONS = ("webp", "jpg")
REJECTED_EXTENSION = "rejected"
DEFAULT_RENDITION_EXTENSION = "webp"

_ID = r"[A-Za-z0-9_-]{1,128}"  # one path segment of safe characters: the API makes UUIDs
_KEY = re.compile(
    rf"^(?P<privacy>public|private)/(?:{ORIGINALS}/(?P<original>{_ID})"
    rf"|{RENDITIONS}/(?P<rendition>{_ID})\.(?P<ext>{'|'.join((*RENDITION_EXTENSIONS, REJECTED_EXTENSION))}))$"
)


def privacy_of(public: bool) -> Privacy:
    return "public" if public else "private"


def folder_prefix(privacy: str, folder: str) -> str:
    """`{privacy}/{folder}/`: what a bucket notification, an event rule or an IAM grant matches."""
    return f"{privacy}/{folder}/"


def original_key(privacy: str, image_id: str) -> str:
    return f"{privacy}/{ORIGINALS}/{image_id}"


def rendition_key(privacy: str, image_id: str, extension: str | None = None) -> str:
    return f"{privacy}/{RENDITIONS}/{image_id}.{extension or DEFAULT_RENDITION_EXTENSION}"


def rejected_key(privacy: str, image_id: str) -> str:
    return rendition_key(privacy, image_id, REJECTED_EXTENSION)


def quarantine_key(privacy: str, image_id: str) -> str:
    return f"{privacy}/{QUARANTINE}/{image_id}"


def every_key(privacy: str, image_id: str) -> list[str]:
    """Every key an image may have: what deleting the image deletes."""
    return [
        original_key(privacy, image_id),
        quarantine_key(privacy, image_id),
        *(rendition_key(privacy, image_id, ext) for ext in (*RENDITION_EXTENSIONS, REJECTED_EXTENSION)),
    ]


@dataclass(frozen=True)
class ImageKey:
    """A key of the layout, parsed: whose image, and which of its objects."""

    privacy: Privacy
    image_id: str
    kind: Kind
    extension: str | None = None
    """A rendition's extension (`webp` or `jpg`); None for the others."""

    @property
    def key(self) -> str:
        if self.kind == "original":
            return original_key(self.privacy, self.image_id)
        if self.kind == "rejected":
            return rejected_key(self.privacy, self.image_id)
        return rendition_key(self.privacy, self.image_id, self.extension)

    def rendition_key(self, extension: str | None = None) -> str:
        return rendition_key(self.privacy, self.image_id, extension)

    @property
    def original_key(self) -> str:
        return original_key(self.privacy, self.image_id)

    @property
    def rejected_key(self) -> str:
        return rejected_key(self.privacy, self.image_id)

    @property
    def quarantine_key(self) -> str:
        return quarantine_key(self.privacy, self.image_id)


def parse_key(key: str) -> ImageKey | None:
    """What `key` is in the layout, or None for any other key (quarantine, strays, other shapes)."""
    match = _KEY.match(key)
    if match is None:
        return None
    privacy: Privacy = "public" if match["privacy"] == "public" else "private"
    if match["original"]:
        return ImageKey(privacy, match["original"], "original")
    if match["ext"] == REJECTED_EXTENSION:
        return ImageKey(privacy, match["rendition"], "rejected")
    return ImageKey(privacy, match["rendition"], "rendition", match["ext"])
