"""Live events for the console: the database is the feed, the bus only says "look now".

Live streams tail the events table by id, so they work across processes (a camera
worker elsewhere writes, this server streams), lose nothing when a browser reconnects
(the SSE ``Last-Event-ID`` is the row id) and never show an event the store did not
keep. Polling alone would add up to a second of delay, so the bus is also one of the
engine's event sinks (``publish(events)`` after each store write, ``close()`` at stop)
and wakes the streams at once.
"""

from __future__ import annotations

import asyncio
import threading
from typing import Any, Sequence

from sqlalchemy import Engine, func, select
from sqlalchemy.orm import Session

from safecity.events.models import EventRow

POLL_SECONDS = 1.0
# Ids are handed out at insert but become visible at commit, so on PostgreSQL a lower id
# may appear after a higher one. Re-reading a short window behind the newest id seen
# (and skipping ids already sent) catches such late commits.
LOOKBACK_IDS = 64


class EventBus:
    """Thread-safe wake-ups from the engine's threads to the server's async streams."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._waiters: set[tuple[asyncio.AbstractEventLoop, asyncio.Event]] = set()
        self.closed = False
        self.published = 0

    def publish(self, events: Any = None) -> None:
        """Call after events were stored; what is passed is ignored, since streams read the store."""
        with self._lock:
            self.published += 1
            waiters = list(self._waiters)
        for loop, flag in waiters:
            try:
                loop.call_soon_threadsafe(flag.set)
            except RuntimeError:  # that stream's loop has closed
                pass

    def close(self) -> None:
        """End every stream (server shutdown): open SSE responses would otherwise hold it up."""
        self.closed = True
        self.publish()

    async def wait(self, timeout: float = POLL_SECONDS) -> None:
        """Return when something was published, or after ``timeout`` seconds."""
        waiter = (asyncio.get_running_loop(), asyncio.Event())
        with self._lock:
            self._waiters.add(waiter)
        try:
            await asyncio.wait_for(waiter[1].wait(), timeout)
        except asyncio.TimeoutError:
            pass
        finally:
            with self._lock:
                self._waiters.discard(waiter)


class EventTail:
    """Reads events stored after a given id, each exactly once, in id order."""

    def __init__(self, engine: Engine, after_id: int | None = None) -> None:
        self.engine = engine
        self.last_id = self.newest_id() if after_id is None else after_id
        self._start = self.last_id  # rows up to here existed before the stream began
        self._sent: set[int] = set()

    def newest_id(self) -> int:
        with Session(self.engine) as session:
            return session.scalar(select(func.max(EventRow.id))) or 0

    def poll(self, limit: int = 200) -> Sequence[EventRow]:
        floor = max(0, self.last_id - LOOKBACK_IDS)
        with Session(self.engine) as session:
            rows = session.scalars(
                select(EventRow).where(EventRow.id > floor).order_by(EventRow.id).limit(limit + LOOKBACK_IDS)
            ).all()
        fresh = [row for row in rows if row.id > self._start and row.id not in self._sent][:limit]
        for row in fresh:
            self._sent.add(row.id)
            self.last_id = max(self.last_id, row.id)
        if len(self._sent) > 4 * LOOKBACK_IDS:
            self._sent = {i for i in self._sent if i > self.last_id - LOOKBACK_IDS}
        return fresh
