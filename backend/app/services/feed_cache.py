"""Feed pages built from parts cached per worker process, and still correct under writes (README,
"The feed cache").

**What is cached.** Not one page per viewer, but parts that many pages share:

* `public`: a slice (paging) of everyone's public posts: the whole page of an anonymous viewer, and the
  public side of every member's page;
* `creator`: a slice of one creator's public posts (`/feed/by_user/{id}` for everyone but the creator);
* `private`: a slice of one member's own private posts, read down to where the public part of their page
  ends (usually nothing: a member's page is then the public part's bytes as they are);
* `active`: that a member exists and is active (their token's page may be served).

A member's page is the public (or creator) part merged with their private part of the same slice, so
memory and misses do not grow with every member's copy of the same public posts. Each part knows the
time interval its content depends on: from its oldest row read (when it read as many rows as it may
show, plus one: older rows cannot enter it) to the newest time its slice allows (cursor or `before`).

**When it is valid.** Migration 0006's triggers record, in the writer's transaction, what each feed
version bump changed: a visible post of an owner, public or private, at a time; or "anything" (a rename,
a deactivation, a deleted account, a large statement). Every request reads the per-slot version vector
(one prepared statement on a connection of its own; requests that arrive while a read runs share the
next one, so one read serves many requests), after the request arrived. When the vector moved, the same
statement returns the changes in between, and the cache drops, before any request waiting for that
read goes on, exactly the parts a change touches: a public post at time t
drops the public parts and that creator's parts whose interval holds t; a private one that member's
private parts; "anything", or changes that were pruned before they were read, drop everything. So a
request sent after a commit never gets a part made before it.

**Misses.** A part is made by one query; concurrent misses of one part wait for one computation. A
computation keeps the epoch (the count of change batches applied) it started at; its part is stored only
if no change applied since then touched it (else it might predate that change), and a request joins a
computation only if no change applied since it started touched it. Cards are serialized once per row
version (`app.services.feeds.Cards`).

When the versions cannot be read (the database restarted, a failover), the request is answered from the
database alone, as with the cache off; the connection is replaced on a later request, and the changes
missed meanwhile are loaded then (or, if pruned, everything is dropped).
"""

from __future__ import annotations

import asyncio
import bisect
import contextlib
import logging
import uuid
from collections import OrderedDict
from collections.abc import AsyncIterator, Awaitable, Callable, Hashable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, NamedTuple

from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from app.core.db import reading
from app.core.errors import INVALID_TOKEN, Unauthorized
from app.crud import images, users
from app.services import feeds
from app.services.feeds import Card, Cards, FeedRequest, Paging

log = logging.getLogger("app.feed_cache")

# One statement per read, one snapshot: the feed version of each slot; the token revocation version (the
# feeds check tokens against it at no extra cost: app/services/sessions.py); and, when the versions moved
# since the ones this process knows ($1), the changes in between (the rows of each slot above the version
# known, up to the one read), so a change costs no second round trip. PostgreSQL runs the subquery of a
# CASE branch only when the branch is taken: while nothing changes, the read touches `feed_version` alone.
VERSION_SQL = """
SELECT v.versions,
       (SELECT version FROM token_revocation_version WHERE id = 1),
       CASE WHEN $1::bigint[] IS NULL OR v.versions IS NOT DISTINCT FROM $1::bigint[] THEN NULL ELSE (
           SELECT array_agg((w.slot - 1, c.version, c.owner_id, c.public, c.created_at))
           FROM unnest($1::bigint[], v.versions) WITH ORDINALITY AS w(after, upto, slot)
           JOIN feed_changes c ON c.slot = w.slot - 1 AND c.version > w.after AND c.version <= w.upto
       ) END
FROM (SELECT array_agg(version ORDER BY slot) AS versions FROM feed_version) v
"""

REQUESTS_KEPT = 4096  # validated raw requests (path, creator, query string) the fast path recognises
# What members' entries cost in memory (measured with tracemalloc), counted against FEED_CACHE_MEMBER_BYTES:
# an `active` entry (its key in the store), and a private part besides its cards (the part, its key, its
# place in the store and in the index of its member's parts).
ACTIVE_BYTES = 200
PART_BYTES = 700
CARD_BYTES = 120  # a card's place in a part, besides its JSON


class Snapshot(NamedTuple):
    """What one version read saw."""

    feed: tuple[int, ...]
    revocations: int


class Change(NamedTuple):
    """A post of `owner` (public or not) at `created_at` appeared, went or changed; no owner: anything."""

    owner: uuid.UUID | None
    public: bool | None
    created_at: datetime | None


ANYTHING = Change(None, None, None)
ChangeListener = Callable[[list[Change] | None], None]


class FeedVersionReader:
    """Reads the feed versions on a dedicated connection; concurrent callers share one read.

    When the vector moved, the changes in between (read by the same statement) are handed to `listener`
    (None: unknown, start afresh) before the callers waiting for the read go on.
    """

    def __init__(
        self, engine: AsyncEngine, *, timeout: float, listener: ChangeListener | None = None
    ) -> None:
        self._engine = engine
        self._timeout = timeout
        self.listener = listener
        self.vector: tuple[int, ...] | None = None  # the versions whose changes the listener has
        self._connection: AsyncConnection | None = None
        self._statement: Any = None  # asyncpg PreparedStatement
        self._waiting: asyncio.Future[tuple[int, Snapshot] | None] | None = None
        self._runner: asyncio.Task[None] | None = None
        self.reads = 0
        self.failures = 0
        self.change_loads = 0

    async def current(self) -> tuple[int, Snapshot] | None:
        """(read number, versions) as of a moment after this call began; None when they cannot be read.

        Read numbers grow with every read: of two answers, the higher number is the newer version.
        """
        waiting = self._waiting
        if waiting is None:
            waiting = self._waiting = asyncio.get_running_loop().create_future()
            if self._runner is None:
                self._runner = asyncio.get_running_loop().create_task(self._run(), name="feed-version")
        # shield: a cancelled request must not cancel the read the other requests wait for
        return await asyncio.shield(waiting)

    async def _run(self) -> None:
        try:
            while self._waiting is not None:
                # Everyone waiting now arrived before this read starts: its answer is valid for all of them.
                waiting, self._waiting = self._waiting, None
                version = await self._read()
                if not waiting.done():
                    waiting.set_result(version)
        finally:
            self._runner = None
            if self._waiting is not None and not self._waiting.done():  # only on cancellation (shutdown)
                self._waiting.set_result(None)
                self._waiting = None

    async def _read(self) -> tuple[int, Snapshot] | None:
        try:
            if self._statement is None:
                await self._connect()
            known = None if self.listener is None else self.vector
            row = await self._statement.fetchrow(known, timeout=self._timeout)
            vector = tuple(row[0] or ())
            if self.listener is not None and vector != self.vector:
                changes = self._changes_up_to(vector, row[2])
                self.change_loads += 1
                self.vector = vector
                self.listener(changes)
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # any failure means: answer without the cache
            self.failures += 1
            log.warning(
                "feed version unavailable; answering without the cache",
                extra={"error": f"{type(exc).__name__}: {exc}"[:300]},
            )
            await self._discard()
            return None
        self.reads += 1
        return self.reads, Snapshot(vector, int(row[1] or 0))

    def _changes_up_to(self, vector: tuple[int, ...], rows: list[Any] | None) -> list[Change] | None:
        """The changes from `self.vector` to `vector` (`rows` as the statement read them); None when they
        are unknown (the first read, a slot that went back, rows pruned before they were read)."""
        known = self.vector
        if (
            known is None
            or len(known) != len(vector)
            or any(v < k for k, v in zip(known, vector, strict=True))
        ):
            return None
        seen: dict[int, set[int]] = {}
        changes = []
        for slot, version, owner, public, created_at in rows or ():
            seen.setdefault(slot, set()).add(version)
            changes.append(Change(owner, public, created_at))
        for slot, (after, upto) in enumerate(zip(known, vector, strict=True)):
            if len(seen.get(slot, ())) != upto - after:  # every bump records at least one row
                return None
        return changes

    async def _connect(self) -> None:
        # One connection from the engine (its settings, its credentials), held for the process's life:
        # the connection budget counts it (README). The statements run outside any transaction.
        connection = await self._engine.connect()
        try:
            raw = await connection.get_raw_connection()
            driver = raw.driver_connection
            assert driver is not None
            self._statement = await driver.prepare(VERSION_SQL, timeout=self._timeout)
        except BaseException:
            self._statement = None
            await connection.invalidate()
            await connection.close()
            raise
        self._connection = connection

    async def _discard(self) -> None:
        connection, self._connection, self._statement = self._connection, None, None
        if connection is not None:
            try:
                await connection.invalidate()  # never handed out again: the next read connects anew
                await connection.close()
            except Exception:  # it is gone either way
                log.debug("discarding the feed version connection failed", exc_info=True)

    async def close(self) -> None:
        if self._runner is not None:
            self._runner.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._runner
        connection, self._connection, self._statement = self._connection, None, None
        if connection is not None:
            await connection.close()


class QueryConnection:
    """A connection of the pool kept for the cache's own queries (the parts it makes), used while it is
    free, and the pool's otherwise: checking one out of the pool and back costs ~50 us of CPU, a fifth of
    a whole miss (bench/README.md). After any failure it is given up (invalidated), and a closed one (a
    restart) is replaced before use."""

    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine
        self._connection: AsyncConnection | None = None
        self.driver: Any = None  # the asyncpg connection, while one is held
        self._busy = False

    @contextlib.asynccontextmanager
    async def use(self) -> AsyncIterator[Any]:
        """An asyncpg connection for one query or a few (no transaction; errors as `reading` maps them).
        Exceptions raised in the block give the held connection up: raise after it instead."""
        if self._busy:
            async with self._engine.connect() as connection, reading(connection) as driver:
                yield driver
            return
        self._busy = True
        done = False
        try:
            if self.driver is None or self.driver.is_closed():
                await self.close()
                connection = await self._engine.connect()
                self._connection = connection
                self.driver = (await connection.get_raw_connection()).driver_connection
            assert self._connection is not None
            async with reading(self._connection) as driver:
                yield driver
            done = True
        finally:
            self._busy = False
            if not done:  # a failure, or a cancellation in the middle of a statement
                await self.close(invalidate=True)

    async def close(self, *, invalidate: bool = False) -> None:
        connection, self._connection, self.driver = self._connection, None, None
        if connection is not None:
            try:
                if invalidate or connection.invalidated:
                    await connection.invalidate()
                await connection.close()
            except Exception:  # it is gone either way
                log.debug("releasing the feed query connection failed", exc_info=True)


# --- parts ------------------------------------------------------------------------------------------
Key = tuple[Any, ...]


@dataclass(eq=False, slots=True)
class Part:
    """A cached part: its cards (newest first, at most limit + 1) and what its content depends on."""

    audience: Hashable  # "public", ("creator", id), ("private", id) or ("active", id)
    cards: list[Card] = field(default_factory=list)
    lower: datetime | None = None  # changes older than this cannot change it (None: any)
    upper: datetime | None = None  # nor newer than this (None: any)
    full: bool = False  # it read limit + 1 rows: what is older cannot enter it
    floor: datetime | None = None  # private parts: rows older than this were not read
    url_window: int = 0  # private parts: the window of their signed URLs
    body: bytes | None = None  # public and creator parts: the page as served
    merged: tuple[int, bytes] | None = None  # private parts: (serial of the base part, the member's page)
    serial: int = 0
    size: int = 0


def _audience(key: Key) -> Hashable:
    kind = key[0]
    return "public" if kind == "public" else (kind, key[1])


def _audiences_of(change: Change) -> tuple[Hashable, ...]:
    if change.public:
        return ("public", ("creator", change.owner))
    return (("private", change.owner),)


def _within(moment: datetime | None, lower: datetime | None, upper: datetime | None) -> bool:
    if moment is None:
        return True
    return (lower is None or lower <= moment) and (upper is None or moment <= upper)


def _covers(private: Part, base: Part) -> bool:
    """Whether `private` holds every private row that can rank among `base`'s cards."""
    if private.full or private.floor is None:
        return True
    return base.full and base.lower is not None and private.floor <= base.lower


@dataclass(frozen=True, slots=True)
class _Plan:
    """The parts one viewer's page of one feed is made of."""

    base: Key
    private: Key | None
    member: uuid.UUID | None
    paging: Paging


def _plan(viewer: uuid.UUID | None, request: FeedRequest) -> _Plan:
    paging = request.paging
    if request.creator is None:
        base: Key = ("public", paging)
        private: Key | None = None if viewer is None else ("private", viewer, "latest", paging)
    else:
        base = ("creator", request.creator, paging)
        private = ("private", viewer, "own", paging) if viewer == request.creator else None
    return _Plan(base, private, viewer, paging)


@dataclass(slots=True)
class _Flight:
    started: int  # the epoch the computation started at
    future: asyncio.Future[Part]


class FeedCache:
    """Feed pages from cached parts (module docstring); `max_entries` public and creator parts, and
    members' parts (private parts, merged pages, active members) within `member_bytes`."""

    def __init__(
        self,
        reader: FeedVersionReader,
        engine: AsyncEngine,
        cards: Cards,
        *,
        max_entries: int,
        member_bytes: int,
    ) -> None:
        self.reader = reader
        reader.listener = self._apply
        self.engine = engine
        self.queries = QueryConnection(engine)
        self.cards = cards
        self.max_entries = max_entries
        self.member_bytes = member_bytes
        self._shared: OrderedDict[Key, Part] = OrderedDict()
        self._members: OrderedDict[Key, Part] = OrderedDict()
        self._member_size = 0
        self._by_audience: dict[Hashable, dict[Key, Part]] = {}
        self._inflight: dict[Hashable, _Flight] = {}
        self._log: list[tuple[int, Change]] = []  # changes applied while computations ran, by epoch
        self._epoch = 0
        self._serial = 0
        self._requests: OrderedDict[Hashable, FeedRequest] = OrderedDict()
        self.hits = 0
        self.misses = 0
        self.dropped = 0
        self.cleared = 0

    @property
    def enabled(self) -> bool:
        return self.max_entries > 0

    def stats(self) -> dict[str, int | float]:
        """Counters since the process started, for the periodic log line (and a dashboard built on it)."""
        served = self.hits + self.misses
        return {
            "hits": self.hits,
            "misses": self.misses,
            "hit_ratio": round(self.hits / served, 3) if served else 0.0,
            "entries": len(self),
            "shared_parts": len(self._shared),
            "member_entries": len(self._members),
            "member_bytes": self._member_size,
            "cards": len(self.cards),
            "cards_made": self.cards.made,
            "parts_dropped": self.dropped,
            "cleared": self.cleared,
            "version_reads": self.reader.reads,
            "version_failures": self.reader.failures,
            "change_loads": self.reader.change_loads,
        }

    async def log_stats_every(self, seconds: float) -> None:
        """Log `stats()` every `seconds` while anything changed (JSON logs: one line a minute at most)."""
        last: dict[str, int | float] | None = None
        while True:
            await asyncio.sleep(seconds)
            current = self.stats()
            if current != last:
                log.info("feed cache", extra=current)
                last = current

    def __len__(self) -> int:
        return len(self._shared) + len(self._members)

    # --- requests the routes validated ---------------------------------------------------------------
    def remember_request(self, raw: Hashable, request: FeedRequest) -> None:
        """`raw` (route, raw path parameter, raw query string) was validated by the routes as `request`."""
        self._requests[raw] = request
        self._requests.move_to_end(raw)
        if len(self._requests) > REQUESTS_KEPT:
            self._requests.popitem(last=False)

    def known_request(self, raw: Hashable) -> FeedRequest | None:
        return self._requests.get(raw)

    # --- versions and changes ------------------------------------------------------------------------
    async def snapshot(self) -> Snapshot | None:
        """The versions as of a moment after this call began (None when they cannot be read); every change
        up to them has been applied to the cache when this returns."""
        read = await self.reader.current()
        return None if read is None else read[1]

    def _apply(self, changes: list[Change] | None) -> None:
        """Drop what `changes` touch (None: everything); called by the reader before its callers go on."""
        self._epoch += 1
        if changes is None or any(change.owner is None for change in changes):
            self._clear()
            if self._inflight:
                self._log.append((self._epoch, ANYTHING))
            return
        times: dict[Hashable, list[datetime]] = {}
        for change in changes:
            if change.created_at is None:  # not written by the triggers; be safe
                self._clear()
                return
            for audience in _audiences_of(change):
                times.setdefault(audience, []).append(change.created_at)
        for audience, moments in times.items():
            parts = self._by_audience.get(audience)
            if not parts:
                continue
            moments.sort()
            for key, part in list(parts.items()):
                # the earliest change at or after the part's lower bound: within it if not after its upper
                at = 0 if part.lower is None else bisect.bisect_left(moments, part.lower)
                if at < len(moments) and (part.upper is None or moments[at] <= part.upper):
                    self._drop(key, part)
                    self.dropped += 1
        if self._inflight:
            self._log.extend((self._epoch, change) for change in changes)

    def _clear(self) -> None:
        self.cleared += 1
        self._shared.clear()
        self._members.clear()
        self._by_audience.clear()
        self._member_size = 0

    def _changed_since(
        self, epoch: int, audience: Hashable, lower: datetime | None, upper: datetime | None
    ) -> bool:
        """Whether a change applied after `epoch` touches a part of `audience` over [lower, upper]."""
        for applied, change in self._log:
            if applied <= epoch:
                continue
            if change.owner is None or change.created_at is None:
                return True
            if audience in _audiences_of(change) and _within(change.created_at, lower, upper):
                return True
        return False

    def _trim_log(self) -> None:
        if not self._inflight:
            self._log.clear()
            return
        oldest = min(flight.started for flight in self._inflight.values())
        if self._log and self._log[0][0] <= oldest:
            self._log = [(epoch, change) for epoch, change in self._log if epoch > oldest]

    # --- the store -----------------------------------------------------------------------------------
    def _store(self, key: Key, part: Part) -> None:
        member = key[0] in ("private", "active")
        store = self._members if member else self._shared
        old = store.get(key)
        if old is not None:
            self._drop(key, old)
        store[key] = part
        if key[0] != "active":  # only everything (a change without owner) drops these: no index
            self._by_audience.setdefault(part.audience, {})[key] = part
        if member:
            self._member_size += part.size
            while self._member_size > self.member_bytes and self._members:
                self._drop(*next(iter(self._members.items())))
        else:
            while len(self._shared) > self.max_entries:
                self._drop(*next(iter(self._shared.items())))

    def _drop(self, key: Key, part: Part) -> None:
        if key[0] in ("private", "active"):
            if self._members.pop(key, None) is not None:
                self._member_size -= part.size
        else:
            self._shared.pop(key, None)
        parts = self._by_audience.get(part.audience)
        if parts is not None:
            parts.pop(key, None)
            if not parts:
                del self._by_audience[part.audience]

    def _get(self, store: OrderedDict[Key, Part], key: Key) -> Part | None:
        part = store.get(key)
        if part is not None:
            store.move_to_end(key)
        return part

    # --- pages ---------------------------------------------------------------------------------------
    def cached_page(self, viewer: uuid.UUID | None, request: FeedRequest, url_window: int) -> bytes | None:
        """The page from cached parts, or None (call after `snapshot()` for this request)."""
        if not self.enabled:
            return None
        plan = _plan(viewer, request)
        if plan.member is not None and self._get(self._members, ("active", plan.member)) is None:
            return None
        base = self._get(self._shared, plan.base)
        if base is None:
            return None
        if plan.private is None:
            self.hits += 1
            return base.body
        private = self._get(self._members, plan.private)
        if private is None or private.url_window != url_window or not _covers(private, base):
            return None
        self.hits += 1
        return self._member_page(plan, base, private)

    async def page(self, viewer: uuid.UUID | None, request: FeedRequest, url_window: int) -> bytes:
        """The page: cached, or made from the parts that are missing (call after `snapshot()` for this
        request, when it could read the versions)."""
        body = self.cached_page(viewer, request, url_window)
        if body is not None:
            return body
        if viewer is not None:
            await self._check_active(viewer)
        if not self.enabled:  # every page from the database, in one query
            return await self._query_page(viewer, request, url_window)
        self.misses += 1
        plan = _plan(viewer, request)
        base = self._get(self._shared, plan.base) or await self._part(
            plan.base, url_window=0, floor=None, make=lambda: self._make_base(plan)
        )
        if plan.private is None:
            assert base.body is not None
            return base.body
        private = self._get(self._members, plan.private)
        if private is None or private.url_window != url_window or not _covers(private, base):
            floor = base.lower if base.full else None
            private = await self._part(
                plan.private,
                url_window=url_window,
                floor=floor,
                make=lambda: self._make_private(plan, floor, url_window),
            )
        return self._member_page(plan, base, private)

    async def close(self) -> None:
        await self.queries.close()

    async def from_database(self, viewer: uuid.UUID | None, request: FeedRequest, url_window: int) -> bytes:
        """The page from the database alone, checking the member there (the versions could not be read)."""
        async with self.engine.connect() as connection, reading(connection) as driver:
            if viewer is not None and not await users.is_active(driver, viewer):
                raise Unauthorized(INVALID_TOKEN)  # deleted or deactivated since the token was issued
            return await self._page_json(driver, viewer, request, url_window)

    def _member_page(self, plan: _Plan, base: Part, private: Part) -> bytes:
        assert base.body is not None
        limit = plan.paging.limit
        cards = base.cards
        if not private.cards or (len(cards) > limit and private.cards[0].order <= cards[limit - 1].order):
            return base.body  # none of the member's private posts ranks among the cards shown
        if private.merged is not None and private.merged[0] == base.serial:
            return private.merged[1]
        body = feeds.render(feeds.merge(cards, private.cards, limit + 1), limit)
        assert plan.private is not None
        if self._members.get(plan.private) is private:  # still stored: remember it, within the budget
            previous = len(private.merged[1]) if private.merged else 0
            private.merged = (base.serial, body)
            self._member_size += len(body) - previous
            private.size += len(body) - previous
            while self._member_size > self.member_bytes and self._members:
                self._drop(*next(iter(self._members.items())))
        return body

    async def _check_active(self, member: uuid.UUID) -> None:
        key = ("active", member)
        if self._get(self._members, key) is None:
            await self._part(key, url_window=0, floor=None, make=lambda: self._make_active(member))

    async def _part(
        self, key: Key, *, url_window: int, floor: datetime | None, make: Callable[[], Awaitable[Part]]
    ) -> Part:
        """`make()`'s part, shared by concurrent requests for it (module docstring, "Misses")."""
        audience = _audience(key)
        flight_key = (key, url_window, floor)
        while True:
            flight = self._inflight.get(flight_key)
            if flight is None:
                break
            paging: Paging | None = key[-1] if isinstance(key[-1], Paging) else None
            lower = None if paging is None else paging.after
            upper = None if paging is None else paging.newest
            if self._changed_since(flight.started, audience, lower, upper):
                break  # it may predate a change this request must see: make another
            try:
                return await asyncio.shield(flight.future)
            except _Abandoned:  # the request making it went away: make it here
                continue
        flight = _Flight(self._epoch, asyncio.get_running_loop().create_future())
        self._inflight[flight_key] = flight
        try:
            part = await make()
            keep = not self._changed_since(flight.started, part.audience, part.lower, part.upper)
        except BaseException as exc:
            # Those waiting get the same answer: the same part (a 401 for a deactivated member, a 503 for
            # a lost database).
            flight.future.set_exception(_Abandoned() if isinstance(exc, asyncio.CancelledError) else exc)
            flight.future.exception()  # retrieved: no "never retrieved" warning when nobody waited
            raise
        finally:
            if self._inflight.get(flight_key) is flight:
                del self._inflight[flight_key]
            self._trim_log()
        if part is not _ACTIVE:  # kept or not: merged pages are remembered by their base part's serial
            self._serial += 1
            part.serial = self._serial
        flight.future.set_result(part)
        if keep and (self.enabled or key[0] == "active"):
            self._store(key, part)
        return part

    async def _rows(self, **query: Any) -> list[Any]:
        async with self.queries.use() as driver:
            return await images.feed_records(driver, **query)

    async def _make_base(self, plan: _Plan) -> Part:
        paging = plan.paging
        creator = plan.base[1] if plan.base[0] == "creator" else None
        records = await self._rows(viewer_id=None, window=paging.window(), creator_id=creator)
        cards = self.cards.of(records, 0)  # public posts only: their URLs do not expire
        full = len(cards) > paging.limit
        body = feeds.render(cards, paging.limit)
        return Part(
            _audience(plan.base),
            cards,
            lower=cards[-1].created_at if full else paging.after,
            upper=paging.newest,
            full=full,
            body=body,
            size=_size(cards) + len(body),
        )

    async def _make_private(self, plan: _Plan, floor: datetime | None, url_window: int) -> Part:
        paging = plan.paging
        records = await self._rows(viewer_id=plan.member, window=paging.window(floor), private_only=True)
        cards = self.cards.of(records, url_window)
        full = len(cards) > paging.limit
        lowest = [t for t in (floor, paging.after) if t is not None]
        assert plan.private is not None
        return Part(
            _audience(plan.private),
            cards,
            lower=cards[-1].created_at if full else (max(lowest) if lowest else None),
            upper=paging.newest,
            full=full,
            floor=floor,
            url_window=url_window,
            size=_size(cards),
        )

    async def _make_active(self, member: uuid.UUID) -> Part:
        async with self.queries.use() as driver:
            active = await users.is_active(driver, member)
        if not active:
            raise Unauthorized(INVALID_TOKEN)  # deleted or deactivated since the token was issued
        return _ACTIVE

    async def _query_page(self, viewer: uuid.UUID | None, request: FeedRequest, url_window: int) -> bytes:
        async with self.queries.use() as driver:
            return await self._page_json(driver, viewer, request, url_window)

    async def _page_json(
        self, driver: Any, viewer: uuid.UUID | None, request: FeedRequest, url_window: int
    ) -> bytes:
        """One whole page from the database on `driver`, its cards from the card cache."""
        return await feeds.page_json(
            driver,
            self.cards,
            viewer_id=viewer,
            creator_id=request.creator,
            paging=request.paging,
            url_window=url_window,
        )


def _size(cards: list[Card]) -> int:
    """Roughly what a part holds in memory: itself and its cards (their JSON and place in the order)."""
    return PART_BYTES + sum(CARD_BYTES + len(card.json or b"") for card in cards)


_ACTIVE = Part(("active", None), size=ACTIVE_BYTES)  # one for every active member: its key says whose


class _Abandoned(Exception):
    """The request making a part was cancelled; the requests waiting for it make their own."""
