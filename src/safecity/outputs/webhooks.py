"""Signed webhooks with retry.

Each POST carries ``X-Safecity-Timestamp`` and ``X-Safecity-Signature: sha256=<hex>``,
the HMAC-SHA256 of ``"<timestamp>.<body>"`` under the hook's secret, so a receiver
can reject forged or replayed calls. Deliveries run in a background thread with
exponential back-off; a receiver that stays down loses nothing until the attempts
run out, and that is logged and counted.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import queue
import threading
import time
from dataclasses import dataclass

import httpx

from safecity.config import Webhook
from safecity.outputs import event_payload
from safecity.records import Event

log = logging.getLogger(__name__)


def sign(secret: str, timestamp: str, body: bytes) -> str:
    mac = hmac.new(secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256)
    return "sha256=" + mac.hexdigest()


def verify_signature(secret: str, timestamp: str, body: bytes, signature: str, max_age_seconds: float = 300) -> bool:
    """What a receiver runs: a valid, recent signature."""
    try:
        fresh = abs(time.time() - float(timestamp)) <= max_age_seconds
    except ValueError:
        return False
    return fresh and hmac.compare_digest(sign(secret, timestamp, body), signature)


@dataclass
class WebhookStats:
    delivered: int = 0
    retried: int = 0
    failed: int = 0


class WebhookSink:
    def __init__(self, hook: Webhook, backoff_seconds: float = 1.0, max_queue: int = 10_000) -> None:
        self.hook = hook
        self.backoff = backoff_seconds
        self.stats = WebhookStats()
        self._queue: queue.Queue[bytes | None] = queue.Queue(max_queue)
        self._client = httpx.Client(timeout=hook.timeout_seconds)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._deliver_forever, name="webhook", daemon=True)
        self._thread.start()

    def publish(self, events: list[Event]) -> None:
        for event in events:
            if self.hook.types and event.type not in self.hook.types:
                continue
            body = json.dumps(event_payload(event), sort_keys=True).encode()
            try:
                self._queue.put_nowait(body)
            except queue.Full:
                self.stats.failed += 1
                log.error("webhook %s: queue full, event %s not sent", self.hook.url, event.key)

    def _deliver_forever(self) -> None:
        while True:
            body = self._queue.get()
            if body is None:
                return
            self._deliver(body)

    def _deliver(self, body: bytes) -> None:
        for attempt in range(1, self.hook.max_attempts + 1):
            timestamp = f"{time.time():.0f}"
            headers = {
                "Content-Type": "application/json",
                "X-Safecity-Timestamp": timestamp,
                "X-Safecity-Signature": sign(self.hook.secret, timestamp, body),
            }
            try:
                response = self._client.post(self.hook.url, content=body, headers=headers)
                if response.status_code < 300:
                    self.stats.delivered += 1
                    return
                problem = f"HTTP {response.status_code}"
                if 400 <= response.status_code < 500 and response.status_code not in (408, 429):
                    break  # the receiver refuses this call; retrying will not help
            except httpx.HTTPError as error:
                problem = repr(error)
            if attempt < self.hook.max_attempts:
                self.stats.retried += 1
                if self._stop.wait(self.backoff * 2 ** (attempt - 1)):
                    break
        self.stats.failed += 1
        log.error("webhook %s: gave up on an event: %s", self.hook.url, problem)

    def close(self, timeout: float = 10.0) -> None:
        """Deliver what is queued (within ``timeout``), then stop."""
        self._queue.put(None)
        self._thread.join(timeout)
        self._stop.set()
        self._thread.join(1)
        self._client.close()
