"""What other processes changed, from PostgreSQL's NOTIFYs (migration 0005), so that an API process may
cache its reads without serving them stale for longer than a notification takes to arrive (milliseconds).

While the feed is not listening (SQLite, PostgreSQL unreachable, before the first LISTEN) ``live`` is False
and callers must read the database: a notification missed while away can never leave a stale read behind.
A connection can also die without a word (a partition, a stuck server): every heartbeat the feed sends a
ping of its own through PostgreSQL and must hear it back, so such a loss is noticed within two heartbeats.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import os
from collections import OrderedDict
from collections.abc import Callable
from typing import NamedTuple

import psycopg
from sqlalchemy import make_url

CHANNEL = "sculpt_changes"
EVERYTHING = "*"
PING = "ping:"
HEARTBEAT_SECONDS = 5.0
RETRY_SECONDS = 1.0
# Keys whose last change is remembered; older ones count as changed just before the oldest remembered.
REMEMBERED_KEYS = 100_000

log = logging.getLogger("sculpt.change_feed")


class FeedStalled(Exception):
    """Our own ping did not come back within a heartbeat."""


class Stamp(NamedTuple):
    epoch: int
    serial: int


class ChangeFeed:
    def __init__(self) -> None:
        self.live = False
        self._epoch = 0  # bumped whenever changes may have been missed: every value read before is suspect
        self._serial = 0  # one per notification
        self._last_change: OrderedDict[str, int] = OrderedDict()
        self._forgotten = 0  # the newest serial dropped from _last_change
        self._listeners: list[Callable[[str], None]] = []
        self._pings = (f"{PING}{os.getpid()}:{id(self)}:{n}" for n in itertools.count())

    def on_change(self, listener: Callable[[str], None]) -> None:
        """``listener(key)`` on every change; ``key`` is EVERYTHING when all must go."""
        self._listeners.append(listener)

    def stamp(self) -> Stamp:
        """Take before reading the database; ``unchanged`` then says whether the value read may be kept."""
        return Stamp(self._epoch, self._serial)

    def unchanged(self, key: str, since: Stamp) -> bool:
        return (self.live and since.epoch == self._epoch
                and self._last_change.get(key, self._forgotten) <= since.serial)

    def changed(self, key: str) -> None:
        if key == EVERYTHING:
            self._start_over()
            return
        self._serial += 1
        self._last_change[key] = self._serial
        self._last_change.move_to_end(key)
        if len(self._last_change) > REMEMBERED_KEYS:
            _, self._forgotten = self._last_change.popitem(last=False)
        for listener in self._listeners:
            listener(key)

    def _start_over(self) -> None:
        self._epoch += 1
        self._last_change.clear()
        for listener in self._listeners:
            listener(EVERYTHING)

    async def follow(self, database_url: str) -> None:
        """LISTEN and apply each notification until cancelled; after any failure go dark and retry."""
        conninfo = make_url(database_url).set(drivername="postgresql").render_as_string(hide_password=False)
        while True:
            try:
                async with (await psycopg.AsyncConnection.connect(conninfo, autocommit=True,
                                                                  connect_timeout=5) as listener,
                            await psycopg.AsyncConnection.connect(conninfo, autocommit=True,
                                                                  connect_timeout=5) as pinger):
                    await listener.execute(f"LISTEN {CHANNEL}")
                    self._start_over()  # whatever changed before this LISTEN went unheard
                    self.live = True
                    log.info("following database changes; reads are cached")
                    while True:
                        await self._one_heartbeat(listener, pinger)
            except Exception as exc:  # noqa: BLE001 - whatever broke the feed, reads fall back to the database
                reason = (str(exc).strip().splitlines() or [""])[0]
                log.warning("change feed lost (%s: %s); reading the database until it is back",
                            type(exc).__name__, reason)
            finally:
                self.live = False
                self._start_over()
            await asyncio.sleep(RETRY_SECONDS)

    async def _one_heartbeat(self, listener, pinger) -> None:
        """Apply the notifications of one heartbeat; raise FeedStalled if our ping sent at its start is not
        among them. The listener only ever waits in notifies(): a notification that arrives while a
        connection runs a query goes to handlers, not to that generator."""
        ping = next(self._pings)
        await asyncio.wait_for(pinger.execute("SELECT pg_notify(%s, %s)", (CHANNEL, ping)), HEARTBEAT_SECONDS)
        heard = False
        async for notification in listener.notifies(timeout=HEARTBEAT_SECONDS):
            if notification.payload == ping:
                heard = True
            elif not notification.payload.startswith(PING):  # other processes' pings
                self.changed(notification.payload)
        if not heard:
            raise FeedStalled(f"our ping was not heard back within {HEARTBEAT_SECONDS:.0f} s")
