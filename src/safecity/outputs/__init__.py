"""Where events go besides the store: MQTT and webhooks (alerts to other systems)."""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any, Protocol

from safecity.records import Event


class EventSink(Protocol):
    """Receives events after the store has kept them; must never block a camera for long."""

    def publish(self, events: list[Event]) -> None: ...

    def close(self) -> None: ...


def event_payload(event: Event) -> dict[str, Any]:
    """The JSON form of an event sent to other systems (no images, no templates)."""

    def iso(ts: float | None) -> str | None:
        return None if ts is None else datetime.fromtimestamp(ts, timezone.utc).isoformat()

    return {
        "phase": "end" if event.end_ts is not None else "new",
        "key": event.key,
        "camera": event.camera,
        "type": event.type,
        "label": event.label,
        "start_time": iso(event.start_ts),
        "end_time": iso(event.end_ts),
        "score": event.score,
        "box": None if event.box is None else [round(float(v), 1) for v in event.box],
        "attributes": event.attributes,
    }


def sinks_from_config(outputs) -> list[EventSink]:
    """The sinks the config asks for (imported lazily: no MQTT client unless configured)."""
    sinks: list[EventSink] = []
    if outputs.mqtt is not None:
        from safecity.outputs.mqtt import MqttSink

        sinks.append(MqttSink(outputs.mqtt))
    if outputs.webhooks:
        from safecity.outputs.webhooks import WebhookSink

        sinks.extend(WebhookSink(hook) for hook in outputs.webhooks)
    return sinks
