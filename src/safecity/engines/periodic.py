"""Background housekeeping in `safecity run`: a function called now and every interval after."""

from __future__ import annotations

import logging
import threading
from typing import Callable

log = logging.getLogger(__name__)


class PeriodicTask:
    """Runs ``action`` in a daemon thread; an exception is logged and retried next time."""

    def __init__(self, name: str, action: Callable[[], object], interval_seconds: float, run_at_stop: bool = False):
        self.name = name
        self.action = action
        self.interval = interval_seconds
        self.run_at_stop = run_at_stop
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name=name, daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(10)
        if self.run_at_stop:
            self._run_once()

    def _run_once(self) -> None:
        try:
            self.action()
        except Exception:
            log.exception("%s failed; will retry", self.name)

    def _loop(self) -> None:
        while not self._stop.is_set():
            self._run_once()
            self._stop.wait(self.interval)
