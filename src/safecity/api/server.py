"""Serving the API with uvicorn, stopping cleanly on SIGINT and SIGTERM."""

from __future__ import annotations

import contextlib
import signal
from types import FrameType
from typing import Iterator

import uvicorn


class GracefulServer(uvicorn.Server):
    """uvicorn's server, minus its re-raising of the stop signal after shutdown.

    uvicorn re-raises SIGTERM once it has stopped, which kills the process before the
    cameras are stopped and their open events flushed. Here the signal only ends the
    server; the caller then shuts the engine down and the process exits 0.

    Live streams (server-sent events) never finish on their own, and uvicorn waits for
    open responses before it stops; so the stop signal also closes the app's event bus,
    which ends every stream, and a few seconds' grace bound the wait in any case.
    """

    def __init__(self, config: uvicorn.Config) -> None:
        if config.timeout_graceful_shutdown is None:
            config.timeout_graceful_shutdown = 5
        super().__init__(config)

    def handle_exit(self, sig: int, frame: FrameType | None) -> None:
        super().handle_exit(sig, frame)
        bus = getattr(getattr(self.config.app, "state", None), "bus", None)
        if bus is not None:
            bus.close()

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        previous = {sig: signal.signal(sig, self.handle_exit) for sig in (signal.SIGINT, signal.SIGTERM)}
        try:
            yield
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)
