"""MQTT output with a Frigate-like topic layout.

- ``<prefix>/available``: ``online`` / ``offline`` (retained; the broker's last will says offline)
- ``<prefix>/events``: every event as JSON, with ``phase`` ``new`` or ``end``
- ``<prefix>/<camera>/<type>``: the latest event of that type on that camera (retained)
- ``<prefix>/<camera>/status``: camera health as JSON (retained)

The client runs its own network thread and reconnects by itself; publishing while
the broker is away queues in paho's buffer rather than blocking the camera.
"""

from __future__ import annotations

import json
import logging

import paho.mqtt.client as mqtt

from safecity.config import Mqtt
from safecity.outputs import event_payload
from safecity.records import Event

log = logging.getLogger(__name__)


class MqttSink:
    def __init__(self, settings: Mqtt) -> None:
        self.prefix = settings.topic_prefix.rstrip("/")
        self.client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=settings.client_id)
        if settings.username:
            self.client.username_pw_set(settings.username, settings.password)
        self.client.will_set(f"{self.prefix}/available", "offline", qos=1, retain=True)
        self.client.reconnect_delay_set(min_delay=1, max_delay=30)
        self.client.on_connect = self._on_connect
        self.client.connect_async(settings.host, settings.port, keepalive=30)
        self.client.loop_start()

    def _on_connect(self, client, userdata, flags, reason_code, properties) -> None:
        if reason_code.is_failure:
            log.warning("mqtt: connection refused: %s", reason_code)
            return
        client.publish(f"{self.prefix}/available", "online", qos=1, retain=True)

    def publish(self, events: list[Event]) -> None:
        for event in events:
            body = json.dumps(event_payload(event))
            self.client.publish(f"{self.prefix}/events", body, qos=1)
            self.client.publish(f"{self.prefix}/{event.camera}/{event.type}", body, qos=1, retain=True)

    def publish_status(self, camera: str, status: dict) -> None:
        self.client.publish(f"{self.prefix}/{camera}/status", json.dumps(status), qos=0, retain=True)

    def close(self) -> None:
        info = self.client.publish(f"{self.prefix}/available", "offline", qos=1, retain=True)
        try:
            info.wait_for_publish(timeout=2)
        except (RuntimeError, ValueError):
            pass
        self.client.loop_stop()
        self.client.disconnect()
