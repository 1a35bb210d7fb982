"""The API's hottest reads (auth, a job, its events), served from memory while the change feed is live.

Pollers ask for the same job again and again; between two training steps nothing changed. An entry is
dropped as soon as the feed reports its job (or any key) changed, and nothing is cached while the feed is
down. A miss reads the database in a thread with a read-only session, as the routes do.
"""

from __future__ import annotations

from collections import Counter, OrderedDict
from collections.abc import Callable, Hashable
from typing import Any, TypeVar

from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool

from app.core.db.session import new_session
from app.core.db.tables import JobEvent
from app.core.enums import EventType
from app.http.change_feed import EVERYTHING, ChangeFeed, Stamp
from app.jobs import service as job_service
from app.keys import service as key_service

T = TypeVar("T")
MAX_KEYS = 4096  # jobs (or keys) with cached reads, least recently used dropped first
MAX_VARIANTS = 16  # cached reads per job: event pages differ by their query parameters
KEYS = "keys"


class ReadCache:
    def __init__(self, feed: ChangeFeed) -> None:
        self.feed = feed
        self._entries: OrderedDict[str, OrderedDict[Hashable, Any]] = OrderedDict()
        self.lookups: Counter[str] = Counter()  # "hit", "miss", and "bypass" while the feed is down
        feed.on_change(self._drop)

    def get(self, key: str, variant: Hashable) -> tuple[bool, Any]:
        if not self.feed.live:
            self.lookups["bypass"] += 1
            return False, None
        variants = self._entries.get(key)
        if variants is None or variant not in variants:
            self.lookups["miss"] += 1
            return False, None
        self.lookups["hit"] += 1
        self._entries.move_to_end(key)
        return True, variants[variant]

    def put(self, key: str, variant: Hashable, value: Any, read_since: Stamp) -> None:
        if not self.feed.unchanged(key, read_since):
            return  # the row changed while it was being read: the next request reads it again
        variants = self._entries.setdefault(key, OrderedDict())
        self._entries.move_to_end(key)
        variants[variant] = value
        if len(variants) > MAX_VARIANTS:
            variants.popitem(last=False)
        if len(self._entries) > MAX_KEYS:
            self._entries.popitem(last=False)

    def _drop(self, key: str) -> None:
        if key == EVERYTHING:
            self._entries.clear()
        else:
            self._entries.pop(key, None)


def _read(load: Callable[[Session], T]) -> T:
    # Closing the session detaches the rows with their columns loaded; the presenters read nothing else.
    with new_session(reads_only=True) as session:
        return load(session)


class CachedReads:
    def __init__(self, feed: ChangeFeed) -> None:
        self.cache = ReadCache(feed)

    async def _cached(self, key: str, variant: Hashable, load: Callable[[Session], T],
                      keep: Callable[[T], bool] = lambda _value: True) -> T:
        hit, value = self.cache.get(key, variant)
        if hit:
            return value
        since = self.cache.feed.stamp()
        value = await run_in_threadpool(_read, load)
        if keep(value):
            self.cache.put(key, variant, value, since)
        return value

    async def job(self, job_id: str):
        """The job row (NotFound when there is none; that is never cached)."""
        return await self._cached(f"job:{job_id}", None, lambda s: job_service.get_job(s, job_id))

    async def events(self, job_id: str, after: str | None, limit: int, type: EventType | None,
                     order: str) -> tuple[list[JobEvent], bool]:
        return await self._cached(f"events:{job_id}", (after, limit, type, order),
                                  lambda s: job_service.list_events(s, job_id, after, limit, type, order))

    async def key(self, secret: str) -> key_service.KeyFacts | None:
        """The unrevoked key's name, scopes and expiry, or None. Only found keys are cached: random guesses
        never fill memory."""
        key_hash = key_service.hash_key(secret)
        return await self._cached(KEYS, key_hash, lambda s: key_service.active_key(s, key_hash),
                                  keep=lambda key: key is not None)

    async def any_key_created(self) -> bool:
        return await self._cached(KEYS, "any", key_service.any_key_created)
