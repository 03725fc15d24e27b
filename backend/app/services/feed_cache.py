"""Feed pages cached per worker process, and still correct under writes (README, "The feed cache").

A page is served from the cache only when the database's *feed version* (the sum of the `feed_version`
counters, bumped by triggers in the same transaction as every change a feed shows: migration 0002) is the
one the page was made at, and the signed URLs in it are still those of the current URL window. The
version is read on every request, by a statement that starts after the request arrived, so a request
sent after a commit (an owner's new post becoming visible, a delete, a deactivation) never gets a page
made before it.

Cheap enough to do on every request: the reads run on one connection of their own, with a prepared
statement, and requests that arrive while a read is under way share the next one (never the one already
running, which may have started before they arrived). Under load one read serves many requests.

When the version cannot be read (the database restarted, a failover), the request is answered without
the cache, exactly as it would be with the cache off; the connection is replaced on a later request.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Hashable
from dataclasses import dataclass
from typing import Any, NamedTuple

from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

log = logging.getLogger("app.feed_cache")

# The feed version, and the token revocation version read in the same statement: the feeds check tokens
# against it at no extra cost (app/services/sessions.py).
VERSION_SQL = (
    "SELECT (SELECT sum(version) FROM feed_version)::bigint, "
    "(SELECT version FROM token_revocation_version WHERE id = 1)"
)


class Snapshot(NamedTuple):
    """What one version read saw."""

    feed: int
    revocations: int


class FeedVersionReader:
    """Reads the feed version on a dedicated connection; concurrent callers share one read."""

    def __init__(self, engine: AsyncEngine, *, timeout: float) -> None:
        self._engine = engine
        self._timeout = timeout
        self._connection: AsyncConnection | None = None
        self._statement: Any = None  # asyncpg PreparedStatement
        self._waiting: asyncio.Future[tuple[int, Snapshot] | None] | None = None
        self._runner: asyncio.Task[None] | None = None
        self.reads = 0
        self.failures = 0

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
            row = await self._statement.fetchrow(timeout=self._timeout)
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
        return self.reads, Snapshot(int(row[0] or 0), int(row[1] or 0))

    async def _connect(self) -> None:
        # One connection from the engine (its settings, its credentials), held for the process's life:
        # the connection budget counts it (README). The statement runs outside any transaction.
        connection = await self._engine.connect()
        try:
            raw = await connection.get_raw_connection()
            driver = raw.driver_connection
            assert driver is not None
            self._statement = await driver.prepare(VERSION_SQL, timeout=self._timeout)
        except BaseException:
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


@dataclass(slots=True)
class _Entry:
    version: int
    window: int
    body: bytes


class FeedCache:
    """Serialized feed pages by (viewer, feed, paging), valid for one feed version and one URL window."""

    def __init__(self, reader: FeedVersionReader, *, max_entries: int) -> None:
        self.reader = reader
        self.max_entries = max_entries
        self._entries: OrderedDict[Hashable, _Entry] = OrderedDict()
        self._inflight: dict[tuple[Hashable, int, int], asyncio.Future[bytes]] = {}
        self._version: int | None = None
        self._read_number = 0
        self.hits = 0
        self.misses = 0

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
            "entries": len(self._entries),
            "version_reads": self.reader.reads,
            "version_failures": self.reader.failures,
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
        return len(self._entries)

    async def snapshot(self) -> Snapshot | None:
        """The versions as of a moment after this call began (None when they cannot be read); with the
        cache on, what is cached for another feed version is dropped."""
        read = await self.reader.current()
        if read is None:
            return None
        number, snapshot = read
        if number > self._read_number:
            self._read_number = number
            if snapshot.feed != self._version:
                # Everything cached belongs to another version: free it now rather than when evicted.
                self._entries.clear()
                self._version = snapshot.feed
        return snapshot

    async def _current_version(self) -> int | None:
        snapshot = await self.snapshot()
        return None if snapshot is None else snapshot.feed

    def _hit(self, key: Hashable, version: int, window: int) -> bytes | None:
        entry = self._entries.get(key)
        if entry is not None and entry.version == version and entry.window == window:
            self._entries.move_to_end(key)
            self.hits += 1
            return entry.body
        return None

    async def lookup(self, key: Hashable, window: int) -> tuple[bytes | None, Snapshot | None]:
        """(the cached body for ``key`` if it is still valid, the versions read for this request).

        The feed version (the snapshot is None when it could not be read) may be handed to
        ``get_or_make`` for the same request, which then does not read it again.
        """
        if not self.enabled:
            return None, None
        snapshot = await self.snapshot()
        return (None if snapshot is None else self._hit(key, snapshot.feed, window)), snapshot

    async def get_or_make(
        self, key: Hashable, window: int, make: Callable[[], Awaitable[bytes]], *, version: int | None = None
    ) -> bytes:
        """The cached body for ``key``, or ``make()``'s, cached when the version could be read.

        ``window`` identifies the URL-signing window (a page's signed URLs belong to one). ``version`` is
        one already read for this request (by ``lookup``); without it the version is read here. Requests
        for the same key and version that miss together wait for one ``make()``.
        """
        if not self.enabled:
            return await make()
        if version is None:
            version = await self._current_version()
            if version is None:
                self.misses += 1
                return await make()
        body = self._hit(key, version, window)  # again after a lookup: another request may have made it
        if body is not None:
            return body
        self.misses += 1
        flight = (key, version, window)
        pending = self._inflight.get(flight)
        if pending is not None:
            try:
                return await asyncio.shield(pending)
            except _Abandoned:  # the request making it went away: make it here
                return await make()
        pending = asyncio.get_running_loop().create_future()
        self._inflight[flight] = pending
        try:
            body = await make()
        except BaseException as exc:
            # Those waiting get the same answer: the key holds the viewer, so they are the same viewer
            # asking the same thing (a 401 for a deactivated member, a 503 for a lost database).
            pending.set_exception(_Abandoned() if isinstance(exc, asyncio.CancelledError) else exc)
            pending.exception()  # retrieved: no "never retrieved" warning when nobody waited
            raise
        finally:
            del self._inflight[flight]
        pending.set_result(body)
        # The page was read in a snapshot taken after `version` was, so it is at least that new.
        if version == self._version:
            self._entries[key] = _Entry(version, window, body)
            self._entries.move_to_end(key)
            while len(self._entries) > self.max_entries:
                self._entries.popitem(last=False)
        return body


class _Abandoned(Exception):
    """The request making a page was cancelled; the requests waiting for it make their own."""
