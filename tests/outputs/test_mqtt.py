import json
import queue
import time

import paho.mqtt.client as mqtt

from safecity.config import Mqtt
from safecity.outputs.mqtt import MqttSink
from safecity.records import Event
from tests.support.mosquitto import run_mosquitto


def subscribe(port: int, topic: str) -> tuple[mqtt.Client, "queue.Queue[tuple[str, bytes, bool]]"]:
    received: queue.Queue = queue.Queue()
    client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=f"test-{time.time_ns()}")
    client.on_message = lambda c, u, message: received.put((message.topic, message.payload, message.retain))
    client.connect("127.0.0.1", port)
    client.subscribe(topic, qos=1)
    client.loop_start()
    return client, received


def drain(received, count: int, timeout: float = 10.0) -> list:
    messages, deadline = [], time.monotonic() + timeout
    while len(messages) < count and time.monotonic() < deadline:
        try:
            messages.append(received.get(timeout=0.2))
        except queue.Empty:
            pass
    return messages


def test_events_reach_a_real_broker_with_frigate_like_topics(tmp_path):
    with run_mosquitto(tmp_path) as port:
        listener, received = subscribe(port, "safecity/#")
        sink = MqttSink(Mqtt(port=port, client_id="safecity-test"))
        time.sleep(0.5)
        ongoing = Event(camera="gate", type="motion", label="motion", start_ts=1_700_000_000.0, score=0.2)
        ended = Event(camera="gate", type="motion", label="motion", start_ts=1_700_000_000.0, end_ts=1_700_000_009.0)
        sink.publish([ongoing])
        sink.publish([ended])
        messages = drain(received, 5)
        topics = [topic for topic, _, _ in messages]
        assert topics[0] == "safecity/available" and messages[0][1] == b"online"
        events = [json.loads(body) for topic, body, _ in messages if topic == "safecity/events"]
        assert [e["phase"] for e in events] == ["new", "end"]
        assert events[1]["key"] == ongoing.key and events[1]["end_time"].startswith("2023-11-14T22:13:29")
        assert "safecity/gate/motion" in topics

        # a late subscriber still gets the retained latest event and availability
        late, late_received = subscribe(port, "safecity/gate/motion")
        (topic, body, retained), = drain(late_received, 1)
        assert retained and json.loads(body)["phase"] == "end"
        sink.close()
        assert drain(received, 1)[0][1] == b"offline"
        for client in (listener, late):
            client.loop_stop()
            client.disconnect()


def test_sink_survives_a_broker_that_comes_later(tmp_path):
    from tests.support.mosquitto import free_port

    port = free_port()
    sink = MqttSink(Mqtt(port=port, client_id="safecity-late"))
    sink.publish([Event(camera="gate", type="motion", start_ts=1.0)])  # no broker yet: must not raise
    with run_mosquitto(tmp_path, port):
        listener, received = subscribe(port, "safecity/available")
        assert ("safecity/available", b"online") in [(t, b) for t, b, _ in drain(received, 1, timeout=15)]
        sink.close()
        listener.loop_stop()


def test_engine_publishes_stored_events_from_a_real_clip(tmp_path, short_clip):
    from safecity.config import parse_config
    from safecity.engines.local import LocalEngine
    from safecity.events.store import EventQuery, EventStore
    from safecity.outputs import sinks_from_config
    from tests.engines.test_local import wait_for

    with run_mosquitto(tmp_path) as port:
        listener, received = subscribe(port, "city/events")
        config = parse_config(
            {
                "thresholds": {"event_min_seconds": 0.5},
                "cameras": [{"name": "lot", "source": str(short_clip)}],
                "outputs": {"mqtt": {"port": port, "topic_prefix": "city", "client_id": "engine-test"}},
            }
        )
        store = EventStore(f"sqlite:///{tmp_path / 'db.sqlite'}")
        engine = LocalEngine(config, store, sinks_from_config(config.outputs))
        engine.start()
        assert wait_for(lambda: engine.status["lot"].state == "finished", timeout=30)
        engine.stop()
        messages = [json.loads(body) for _, body, _ in drain(received, 2)]
        assert {m["phase"] for m in messages} == {"new", "end"}
        assert all(m["camera"] == "lot" for m in messages)
        stored_keys = {row.key for row in store.search(EventQuery())[0]}
        assert {m["key"] for m in messages} <= stored_keys
        listener.loop_stop()
        store.close()
