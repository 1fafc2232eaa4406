"""`safecity run` on the demo config, as `make run` starts it: events within 60 s."""

import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from safecity.db import make_engine
from safecity.governance.audit import AuditLog

REPO = Path(__file__).resolve().parents[1]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.slow
@pytest.mark.parametrize("engine", [["--engine", "local"], ["--engine", "pool", "--workers", "2"]])
def test_run_serves_health_and_demo_events_within_60_seconds(tmp_path, engine):
    port = free_port()
    store = f"sqlite:///{tmp_path / 'var' / 'safecity.db'}"
    subprocess.run(
        [sys.executable, "-m", "safecity.cli", "user", "add", "ops", "--role", "operator", "--password-stdin",
         "--store", store],
        cwd=REPO, input="correct horse battery\n", text=True, check=True, capture_output=True,
    )
    headers: dict[str, str] = {}
    command = [
        sys.executable, "-m", "safecity.cli", "run", "--config", "demo/safecity.yaml", "--store", store,
        "--port", str(port), *engine,
    ]
    started = time.monotonic()
    process = subprocess.Popen(command, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    base = f"http://127.0.0.1:{port}"
    cameras_with_events: set[str] = set()
    health = None
    try:
        while time.monotonic() - started < 60 and cameras_with_events != {"parking-lot", "hallway"}:
            assert process.poll() is None, process.stdout.read()
            try:
                health = httpx.get(f"{base}/api/health", timeout=2).json()
                if not headers:
                    login = {"name": "ops", "password": "correct horse battery"}
                    token = httpx.post(f"{base}/api/auth/login", json=login, timeout=5).json()["token"]
                    headers = {"Authorization": f"Bearer {token}", "X-Reason": "run test"}
                assert httpx.get(f"{base}/api/events", timeout=2).status_code == 401  # no sign-in, no events
                events = httpx.get(f"{base}/api/events", params={"limit": 100}, headers=headers, timeout=2).json()
                cameras_with_events = {e["camera"] for e in events["items"]}
            except httpx.TransportError:
                pass
            time.sleep(0.5)
        elapsed = time.monotonic() - started
    finally:
        process.terminate()
        output, _ = process.communicate(timeout=20)
    assert cameras_with_events == {"parking-lot", "hallway"}, output
    assert elapsed < 60
    assert health["status"] == "ok"
    states = {c["name"]: c for c in health["cameras"]}
    assert states["parking-lot"]["state"] == "running" and states["parking-lot"]["frames"] > 0
    assert process.returncode == 0, output  # SIGTERM is a clean, graceful stop
    assert "safecity: stopped" in output
    assert "Traceback" not in output

    audit = AuditLog(make_engine(f"sqlite:///{tmp_path / 'var' / 'safecity.db'}"))
    assert audit.verify().ok
    actions = [r.action for r in audit.records()]
    assert actions[:2] == ["user.create", "config.load"] and "event.search" in actions
