"""Feed pages: rows from one query, each card's JSON made once, and an opaque keyset cursor.

A page is written as bytes: the JSON of each card (a `FeedItem`, by pydantic-core's serializer, the one
FastAPI uses for the `FeedPage` model) joined into the page's envelope, so the bytes are the same as the
model's (tests/test_feed_cache.py compares them). A card's JSON depends only on its row's card columns
(`FeedRow`) and, for a private post, the signed-URL window, so `Cards` makes it once per version of the row
and window and reuses it on every page that shows the row: after a new post, the page that is made again
serializes one card, not fifty (bench/README.md, "Changes made from the benchmark").
"""

from __future__ import annotations

import base64
import binascii
import heapq
import json
import logging
import uuid
from collections import OrderedDict
from collections.abc import Hashable, Iterable, Sequence
from dataclasses import dataclass, fields
from datetime import UTC, datetime
from typing import Any, NamedTuple

import pydantic_core

from app.core.errors import Unprocessable
from app.crud import images
from app.crud.images import FeedRow
from app.services.media_urls import MediaUrlBuilder

log = logging.getLogger("app.feeds")

DEFAULT_LIMIT = 50
MAX_LIMIT = 100
CARDS_KEPT = 16_384
"""Card JSONs each process keeps (about 250-600 bytes each): every card of a few hundred cached pages."""

_CARD_FIELDS = tuple(f.name for f in fields(FeedRow))
_ID, _PUBLIC, _CREATED_AT = (_CARD_FIELDS.index(name) for name in ("id", "public", "created_at"))


def encode_cursor(created_at: datetime, image_id: uuid.UUID) -> str:
    raw = json.dumps({"t": created_at.astimezone(UTC).isoformat(), "i": str(image_id)}, separators=(",", ":"))
    return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


def decode_cursor(cursor: str) -> tuple[datetime, uuid.UUID]:
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        data = json.loads(base64.urlsafe_b64decode(padded.encode()))
        created_at = datetime.fromisoformat(data["t"])
        if created_at.tzinfo is None:
            raise ValueError("naive time")
        created_at = created_at.astimezone(UTC)
        return created_at, uuid.UUID(data["i"])
    except (
        ValueError,
        KeyError,
        TypeError,
        OverflowError,
        binascii.Error,
        json.JSONDecodeError,
        UnicodeDecodeError,
    ):
        raise Unprocessable(
            "Invalid cursor: pass back the next_cursor of a previous page unchanged"
        ) from None


def _aware(value: datetime | None, name: str) -> datetime | None:
    if value is None:
        return None
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)  # the API speaks UTC; a time without an offset is taken as UTC
    try:
        return value.astimezone(UTC)
    except (OverflowError, ValueError):  # e.g. 0001-01-01T00:00+07:00 is before year 1 in UTC
        raise Unprocessable(f"{name} is out of range: give a time between years 1 and 9999 UTC") from None


@dataclass(frozen=True, slots=True)
class Paging:
    """Which slice of a feed, as the routes' query parameters say, parsed and in UTC."""

    limit: int = DEFAULT_LIMIT
    cursor: tuple[datetime, uuid.UUID] | None = None
    before: datetime | None = None
    after: datetime | None = None

    @classmethod
    def parse(
        cls,
        *,
        limit: int = DEFAULT_LIMIT,
        cursor: str | None = None,
        before: datetime | None = None,
        after: datetime | None = None,
    ) -> Paging:
        """From the validated query parameters; a cursor or time it cannot use is Unprocessable (422)."""
        return cls(
            limit=limit,
            cursor=decode_cursor(cursor) if cursor else None,
            before=_aware(before, "before"),
            after=_aware(after, "after"),
        )

    def window(self, floor: datetime | None = None) -> images.Window:
        """The rows to read: one more than the page shows (it tells whether another page exists)."""
        return images.Window(
            limit=self.limit + 1, cursor=self.cursor, before=self.before, after=self.after, floor=floor
        )

    @property
    def newest(self) -> datetime | None:
        """No row of this slice is newer than this (None: no bound)."""
        bounds = [t for t in (self.cursor[0] if self.cursor else None, self.before) if t is not None]
        return min(bounds) if bounds else None


@dataclass(frozen=True, slots=True)
class FeedRequest:
    """Which feed (everyone's, or one creator's) and which slice of it, as the routes validated them."""

    creator: uuid.UUID | None
    paging: Paging


class Card(NamedTuple):
    """One row of a page: its place in the feed's order and its JSON (None: it could not be shown)."""

    created_at: datetime
    id: uuid.UUID
    json: bytes | None

    @property
    def order(self) -> tuple[datetime, uuid.UUID]:
        return (self.created_at, self.id)


class Cards:
    """The JSON of each card, made once per row version (every column a card shows) and URL window.

    Keyed by the row's card columns, so a key can never name stale JSON: a renamed member, a new state or
    rendition is another key. Public URLs do not expire, so a public card is the same in every window.
    """

    def __init__(self, urls: MediaUrlBuilder, *, max_cards: int = CARDS_KEPT) -> None:
        self.urls = urls
        self.max_cards = max_cards
        self._cards: OrderedDict[Hashable, Card] = OrderedDict()
        self.made = 0

    def __len__(self) -> int:
        return len(self._cards)

    def of(self, records: Iterable[Sequence[Any]], url_window: int) -> list[Card]:
        """Cards for rows of FeedRow's fields, in their order (asyncpg records, or tuples); private URLs
        signed for `url_window`."""
        out = []
        cards = self._cards
        for record in records:
            # A record hashes and compares as the tuple of its values: the row's card columns are the key.
            key = record if record[_PUBLIC] else (record, url_window)
            try:
                card = cards[key]
                cards.move_to_end(key)
            except KeyError:
                card = cards[key] = Card(
                    record[_CREATED_AT], record[_ID], self._make(FeedRow(*record), url_window)
                )
                if len(cards) > self.max_cards:
                    cards.popitem(last=False)
            out.append(card)
        return out

    def _make(self, row: FeedRow, url_window: int) -> bytes | None:
        self.made += 1
        # A time inside the window whose signed URLs expire at `url_window` (MediaUrlBuilder.expiry).
        now = url_window - 2 * self.urls.window_seconds
        try:
            return pydantic_core.to_json(
                {  # FeedItem's fields, in its order; ids as text (5x faster to write than asyncpg's UUIDs)
                    "id": str(row.id),
                    "creator": str(row.owner_id),
                    "creator_username": row.username,
                    "download_url": self.urls.download_url(row, now=now),
                    "created_at": row.created_at,
                    "public": row.public,
                    "state": row.state,
                }
            )
        except Exception:  # one odd row is logged and left out; it never breaks the page
            log.exception("feed item skipped", extra={"image_id": str(row.id)})
            return None


def render(cards: Sequence[Card], limit: int) -> bytes:
    """The `FeedPage` JSON of the first `limit` cards; `next_cursor` when there are more."""
    shown = cards[:limit]
    items = [card.json for card in shown if card.json is not None]
    last = shown[-1] if shown else None
    cursor = encode_cursor(last.created_at, last.id) if last is not None and len(cards) > limit else None
    return b'{"success":true,"count":%d,"results":[%b],"next_cursor":%b}' % (
        len(items),
        b",".join(items),
        pydantic_core.to_json(cursor),
    )


def merge(first: Sequence[Card], second: Sequence[Card], count: int) -> list[Card]:
    """The newest `count` cards of two newest-first lists; a post in both (it changed privacy while the two
    were read) is shown once."""
    out: list[Card] = []
    seen: set[uuid.UUID] = set()
    for card in heapq.merge(first, second, key=lambda card: (card.created_at, card.id), reverse=True):
        if card.id in seen:
            continue
        seen.add(card.id)
        out.append(card)
        if len(out) == count:
            break
    return out


async def page_json(
    connection: images.Fetcher,
    cards: Cards,
    *,
    viewer_id: uuid.UUID | None,
    creator_id: uuid.UUID | None = None,
    paging: Paging,
    url_window: int,
) -> bytes:
    """One page of a feed as `FeedPage` JSON, newest first, from one query."""
    records = await images.feed_records(
        connection, viewer_id=viewer_id, window=paging.window(), creator_id=creator_id
    )
    return render(cards.of(records, url_window), paging.limit)
