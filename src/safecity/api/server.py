"""Serving the API with uvicorn, stopping cleanly on SIGINT and SIGTERM."""

from __future__ import annotations

import contextlib
import signal
from typing import Iterator

import uvicorn


class GracefulServer(uvicorn.Server):
    """uvicorn's server, minus its re-raising of the stop signal after shutdown.

    uvicorn re-raises SIGTERM once it has stopped, which kills the process before the
    cameras are stopped and their open events flushed. Here the signal only ends the
    server; the caller then shuts the engine down and the process exits 0.
    """

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        previous = {sig: signal.signal(sig, self.handle_exit) for sig in (signal.SIGINT, signal.SIGTERM)}
        try:
            yield
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)
