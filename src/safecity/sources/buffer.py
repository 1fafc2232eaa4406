"""A tiny hand-over between a camera's reader and its analysis: newest frames win.

The reader must keep pace with the stream (an RTSP server drops a client that
stops reading); analysis may be slower. The buffer keeps the newest ``size``
frames and counts the ones it had to drop, which the metrics report.
"""

from __future__ import annotations

import threading
from collections import deque
from typing import Generic, TypeVar

T = TypeVar("T")


class LatestFrames(Generic[T]):
    def __init__(self, size: int = 2) -> None:
        self._items: deque[T] = deque(maxlen=size)
        self._ready = threading.Condition()
        self._closed = False
        self.dropped = 0

    def put(self, item: T) -> None:
        with self._ready:
            if len(self._items) == self._items.maxlen:
                self.dropped += 1
            self._items.append(item)
            self._ready.notify()

    def get(self, timeout: float) -> T | None:
        """The oldest kept frame, or None after ``timeout`` or once closed and empty."""
        with self._ready:
            if not self._items and not self._closed:
                self._ready.wait(timeout)
            return self._items.popleft() if self._items else None

    def close(self) -> None:
        with self._ready:
            self._closed = True
            self._ready.notify_all()

    @property
    def closed(self) -> bool:
        return self._closed and not self._items

    def __len__(self) -> int:
        return len(self._items)
