"""The bucket keys of docs/design.md: originals, renditions and refusal markers.

``{privacy}/originals/{image_id}`` (no extension) is the only key shape the compressor reads; it writes
``{privacy}/renditions/{image_id}.webp`` (``.jpg`` when OUTPUT_FORMAT=jpeg) and, for files it refuses,
``{privacy}/renditions/{image_id}.rejected``, and moves the refused original to
``{privacy}/quarantine/{image_id}`` (kept for people to look at, never served).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

# One path segment of safe characters (the API makes UUIDs); anything else under originals/ is not ours.
_ORIGINAL_KEY = re.compile(r"^(public|private)/originals/([A-Za-z0-9_-]{1,128})$")
REJECTED_EXTENSION = "rejected"
QUARANTINE = "quarantine"


@dataclass(frozen=True)
class OriginalKey:
    """A parsed original key."""

    privacy: str
    image_id: str

    @classmethod
    def parse(cls, key: str) -> OriginalKey | None:
        """The original that ``key`` names, or ``None`` for any other key (renditions, markers, strays)."""
        match = _ORIGINAL_KEY.match(key)
        return cls(match.group(1), match.group(2)) if match else None

    @property
    def key(self) -> str:
        """The original's own key."""
        return f"{self.privacy}/originals/{self.image_id}"

    def rendition_key(self, extension: str) -> str:
        """Key of the rendition with the given extension (``webp`` or ``jpg``)."""
        return f"{self.privacy}/renditions/{self.image_id}.{extension}"

    @property
    def rejected_key(self) -> str:
        """Key of the refusal marker."""
        return self.rendition_key(REJECTED_EXTENSION)

    @property
    def quarantine_key(self) -> str:
        """Where a refused original is moved: ``{privacy}/quarantine/{image_id}``, a prefix that no CloudFront
        behaviour, bucket policy grant or local gateway route serves, and no event rule forwards."""
        return f"{self.privacy}/{QUARANTINE}/{self.image_id}"
