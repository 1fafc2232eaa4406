"""The live event stream over a real HTTP server, and the bus and tail behind it."""

from __future__ import annotations

import asyncio
import json
import queue
import socket
import threading
import time

import httpx
import pytest
import uvicorn

from safecity.api.app import create_app
from safecity.api.bus import EventBus, EventTail
from safecity.governance.audit import AuditLog
from safecity.records import Event
from tests.api.conftest import bearer
from tests.events.test_store import T0


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def server(store):
    """The app served by uvicorn on a free port, in a thread."""
    bus = EventBus()
    app = create_app(store, bus=bus)
    config = uvicorn.Config(app, host="127.0.0.1", port=free_port(), log_level="warning", timeout_graceful_shutdown=2)
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        assert time.monotonic() < deadline, "server did not start"
        time.sleep(0.05)
    yield f"http://127.0.0.1:{config.port}", bus
    bus.close()
    server.should_exit = True
    thread.join(10)


def read_stream(url: str, headers: dict[str, str], out: queue.Queue) -> None:
    """Parse server-sent events into (id, data) pairs until the server ends the stream."""
    with httpx.stream("GET", url, headers=headers, timeout=httpx.Timeout(5, read=30)) as response:
        out.put(("status", response.status_code))
        event_id = None
        for line in response.iter_lines():
            if line.startswith("id: "):
                event_id = int(line[4:])
            elif line.startswith("data: "):
                out.put((event_id, json.loads(line[6:])))
    out.put(("end", None))


def listen(base: str, headers: dict[str, str]) -> queue.Queue:
    out: queue.Queue = queue.Queue()
    threading.Thread(target=read_stream, args=(f"{base}/api/events/stream", headers, out), daemon=True).start()
    assert out.get(timeout=10) == ("status", 200)
    return out


def test_stored_events_arrive_live_and_a_reconnect_resumes(server, store, users):
    base, bus = server
    auth = bearer(users, "operator")
    stream = listen(base, auth)
    time.sleep(0.3)  # the stream has read its starting point

    store.add_events([Event(camera="gate", type="plate_match", start_ts=T0 + 900, attributes={"plate": "AB12CDE"})])
    bus.publish({"camera": "gate"})
    first_id, first = stream.get(timeout=5)
    assert first["camera"] == "gate" and first["type"] == "plate_match" and first["attributes"]["plate"] == "AB12CDE"
    assert first["id"] == first_id

    # written without a publish (say, by a camera worker in another process): polling finds it
    store.add_events([Event(camera="lobby", type="motion", start_ts=T0 + 901)])
    second_id, second = stream.get(timeout=5)
    assert second["camera"] == "lobby" and second_id > first_id

    # a browser that lost the connection after the first event gets what it missed
    resumed = listen(base, {**auth, "Last-Event-ID": str(first_id)})
    assert resumed.get(timeout=5)[0] == second_id

    records = [r.as_dict() for r in AuditLog(store.engine).tail(5) if r.action == "live.view"]
    assert len(records) == 2 and records[0]["actor"] == "user:operator"

    bus.close()  # server shutdown: every stream ends
    assert stream.get(timeout=5) == ("end", None)


def test_stream_needs_the_live_view_permission(server, users):
    base, _ = server
    assert httpx.get(f"{base}/api/events/stream", timeout=5).status_code == 401
    assert httpx.get(f"{base}/api/events/stream", headers=bearer(users, "admin"), timeout=5).status_code == 403


def test_bus_wakes_a_waiting_stream_at_once():
    bus = EventBus()

    async def wait_for_publish() -> float:
        started = time.monotonic()
        threading.Timer(0.1, bus.publish, args=({"id": 1},)).start()  # from another thread, as the engine does
        await bus.wait(timeout=10)
        return time.monotonic() - started

    assert asyncio.run(wait_for_publish()) < 2


def test_tail_sends_each_new_row_once_including_late_commits(store):
    from sqlalchemy import text

    def insert(row_id: int) -> None:
        with store.engine.begin() as connection:
            connection.execute(
                text(
                    "INSERT INTO events (id, key, camera, type, start_time, attributes, created_at) "
                    "VALUES (:id, :key, 'cam', 'motion', '2026-11-27 12:00:00', '{}', '2026-11-27 12:00:00')"
                ),
                {"id": row_id, "key": f"k{row_id}"},
            )

    tail = EventTail(store.engine)  # starts after the 3 seeded events
    start = tail.last_id
    assert start == 3 and tail.poll() == []
    insert(start + 5)
    assert [r.id for r in tail.poll()] == [start + 5]
    assert tail.poll() == []
    # a lower id that appears after a higher one, as when a slower transaction commits late
    insert(start + 2)
    assert [r.id for r in tail.poll()] == [start + 2]
    assert tail.poll() == []
    store.add_events([Event(camera="a", type="motion", start_ts=T0 + 1000 + i) for i in range(3)])
    assert [r.camera for r in tail.poll()] == ["a", "a", "a"]
    assert EventTail(store.engine, after_id=start).poll()[0].id == start + 2  # resuming from an id
