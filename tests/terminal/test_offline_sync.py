"""A terminal keeps deciding while the central `safecity run` is down, then syncs exactly once.

A real central server (``safecity run``, API only) over a real SQLite store; the
terminal talks to it over HTTP as a ``terminal`` account, exactly as on a door.
"""

from __future__ import annotations

import socket
import subprocess
import sys
import time
from datetime import datetime, timedelta, timezone

import httpx
import pytest

from safecity.events.store import EventQuery, EventStore
from safecity.governance.audit import AuditLog
from safecity.governance.users import UserService
from safecity.terminal.device import HttpCentral, TerminalDevice
from safecity.terminal.service import Consent, FaceEnroller, TerminalService
from tests.terminal.conftest import blank_frames

PASSWORD = "door one's long secret"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Central:
    """`safecity run` in a subprocess that can be stopped and started again on the same store and port."""

    def __init__(self, store: str, cwd, port: int) -> None:
        self.store, self.cwd, self.port = store, cwd, port
        self.base = f"http://127.0.0.1:{port}"
        self.process: subprocess.Popen | None = None

    def start(self) -> None:
        command = [sys.executable, "-m", "safecity.cli", "run", "--store", self.store, "--port", str(self.port)]
        self.process = subprocess.Popen(command, cwd=self.cwd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:
            assert self.process.poll() is None, self.process.stdout.read()
            try:
                if httpx.get(f"{self.base}/api/health", timeout=1).status_code == 200:
                    return
            except httpx.TransportError:
                time.sleep(0.3)
        raise AssertionError("safecity run did not answer within 90 s")

    def stop(self) -> str:
        assert self.process is not None
        self.process.terminate()
        output, _ = self.process.communicate(timeout=30)
        return output


@pytest.fixture
def central(tmp_path, people, verifier):
    url = f"sqlite:///{tmp_path / 'var' / 'safecity.db'}"
    store = EventStore(url)
    UserService(store.engine, "test:setup").add("door-1", "terminal", PASSWORD, "the hq door")
    svc = TerminalService(store.engine, "user:sam")
    svc.create_site("hq", "head office")
    consent = Consent("Ann Example", datetime.now(timezone.utc) - timedelta(hours=1), "signed paper form")
    svc.enrol("hq", "1234", "Ann Example", consent, [("ann.jpg", people("s10").enrolment_jpeg())], "starter",
              FaceEnroller(verifier.pipeline))
    store.close()
    server = Central(url, tmp_path, free_port())
    server.start()
    yield server, url
    if server.process and server.process.poll() is None:
        server.stop()


def test_decisions_made_while_the_server_is_down_are_queued_and_synced_once(central, tmp_path, people, verifier):
    server, url = central
    device = TerminalDevice("hq", "door-1", tmp_path / "door-1.db", HttpCentral(server.base, "door-1", PASSWORD), verifier)
    assert device.refresh(force=True) and device.state.people() == 1

    required = device.challenge()
    online = device.attempt("1234", people("s10").sequence(required), required)
    assert online.granted and not online.offline and online.label == "Ann Example", online.reason
    assert device.sync() == (1, 0)

    output = server.stop()  # the central server goes away
    assert "Traceback" not in output
    assert device.refresh(force=True) is False and not device.online
    unknown = device.attempt("9999", blank_frames(), required)
    nobody = [device.attempt("1234", blank_frames(), required) for _ in range(3)]
    locked = device.attempt("1234", people("s10").sequence(required), required)
    assert unknown.code == "unknown_badge" and [d.code for d in nobody] == ["no_face"] * 3
    assert locked.code == "badge_locked" and not locked.granted  # the lockout works offline too
    assert all(d.offline for d in [unknown, *nobody, locked])
    assert device.sync() == (0, 5) and device.state.pending() == 5

    server.start()  # ... and comes back
    assert device.sync() == (5, 0)
    assert device.refresh(force=True) and device.online

    # a lost reply: the terminal uploads the same decisions again; nothing is stored twice
    again = HttpCentral(server.base, "door-1", PASSWORD)
    assert set(again.push("hq", [unknown, locked])) == {unknown.key, locked.key}

    store = EventStore(url, migrate=False)
    rows, total = store.search(EventQuery(type="door", limit=100))
    assert total == 6
    by_key = {r.key: r for r in rows}
    assert by_key[online.key].attributes["decision"] == "granted" and not by_key[online.key].attributes["offline"]
    assert by_key[locked.key].attributes["code"] == "badge_locked" and by_key[locked.key].attributes["offline"]
    assert by_key[unknown.key].label is None and by_key[nobody[0].key].label == "Ann Example"
    audit = AuditLog(store.engine)
    records = [r.as_dict() for r in audit.records()]
    decided = [r for r in records if r["action"] == "terminal.decision"]
    assert len(decided) == 6 and {r["actor"] for r in decided} == {"user:door-1"}
    assert sum(r["action"] == "terminal.copy" for r in records) >= 2  # each copy handed out is on record
    assert audit.verify().ok
    store.close()
