"""End to end in a real browser: Debian's Chromium driven by Playwright against `safecity run`.

An operator signs in, watches a live event from the demo clips arrive on the wall,
searches for it with a reason and opens it; an auditor then finds that view in the
audit log. Screenshots are kept under test-artifacts/ for people to look at.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import time
from datetime import datetime, timedelta
from pathlib import Path

import httpx
import pytest

from safecity.db import make_engine
from safecity.governance.audit import AuditLog
from tests.test_run import free_port

REPO = Path(__file__).resolve().parents[2]
ARTIFACTS = REPO / "test-artifacts"
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
        "--disable-component-update", "--disable-sync"]
PASSWORD = "correct horse battery staple"

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module", autouse=True)
def chromium_installed():
    if not Path(CHROMIUM).exists():
        pytest.fail("Debian chromium is not installed: run .ci/run (apt-get install chromium)")


def safecity(*args: str, stdin: str | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "safecity.cli", *args], cwd=REPO, input=stdin, capture_output=True, text=True, timeout=120
    )


@pytest.fixture
def running(tmp_path):
    """`safecity run` on the demo cameras with a fresh store and two users made by the CLI."""
    store = f"sqlite:///{tmp_path / 'var' / 'safecity.db'}"
    for name, role in (("olivia", "operator"), ("adam", "auditor")):
        made = safecity("user", "add", name, "--role", role, "--password-stdin", "--store", store, stdin=PASSWORD + "\n")
        assert made.returncode == 0, made.stderr
    port = free_port()
    command = [sys.executable, "-m", "safecity.cli", "run", "--config", "demo/safecity.yaml", "--store", store, "--port", str(port)]
    process = subprocess.Popen(command, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while True:
        assert process.poll() is None, process.stdout.read()
        try:
            if httpx.get(f"{base}/api/health", timeout=2).status_code == 200:
                break
        except httpx.TransportError:
            pass
        assert time.monotonic() < deadline, "safecity run did not serve within 60 s"
        time.sleep(0.3)
    yield base, store
    process.terminate()
    output, _ = process.communicate(timeout=30)
    assert process.returncode == 0, output
    assert "Traceback" not in output, output


def sign_in(page, base: str, name: str) -> None:
    page.goto(f"{base}/")
    page.wait_for_url("**/login**")
    page.fill("input[name=name]", name)
    page.fill("input[name=password]", PASSWORD)
    page.click("button[type=submit]")


def test_live_alert_search_view_and_audit_in_chromium(running):
    from playwright.sync_api import sync_playwright

    base, store = running
    ARTIFACTS.mkdir(exist_ok=True)
    problems: list[str] = []
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        page = browser.new_page(viewport={"width": 1920, "height": 1080})
        page.on("pageerror", lambda error: problems.append(f"page error: {error}"))
        page.on("console", lambda m: problems.append(f"console {m.type}: {m.text}") if m.type == "error" else None)

        # the operator signs in and lands on the live wall
        sign_in(page, base, "olivia")
        page.wait_for_url(f"{base}/live")
        assert page.inner_text(".whoami") .split()[:2] == ["olivia", "operator"]

        # a motion event from a demo clip arrives over the live stream
        arrived = page.wait_for_selector("#alerts li.is-new", timeout=90_000)
        event_id = int(arrived.get_attribute("data-event-id"))
        camera = arrived.query_selector(".cam").inner_text()
        started = arrived.query_selector("time").inner_text()
        assert camera in {"parking-lot", "hallway"}
        page.wait_for_selector(".tile.has-picture", timeout=30_000)
        page.screenshot(path=str(ARTIFACTS / "console-live.png"))

        # search for it: camera and a one-second window around its start, with a reason
        page.click("nav >> text=Search")
        when = datetime.fromisoformat(started)
        page.fill("input[name=after]", f"{when:%Y-%m-%dT%H:%M:%S}")
        page.fill("input[name=before]", f"{when + timedelta(seconds=1):%Y-%m-%dT%H:%M:%S}")
        page.select_option("select[name=camera]", camera)
        page.fill("input[name=reason]", "e2e: check the live alert")
        page.click("form.search-form button[type=submit]")
        link = page.wait_for_selector(f'a[href^="/events/{event_id}?"]')
        page.wait_for_function("() => [...document.querySelectorAll('td.thumb img')].every(i => i.complete && i.naturalWidth > 0)")
        page.screenshot(path=str(ARTIFACTS / "console-search.png"))

        # open it: the snapshot is served (faces blurred) and the view is audited
        link.click()
        page.wait_for_url(f"{base}/events/{event_id}?**")
        page.wait_for_function("() => { const i = document.querySelector('img.snapshot'); return i && i.complete && i.naturalWidth > 0 }")
        assert "Show unredacted" not in page.content()  # an operator may not unblur
        page.screenshot(path=str(ARTIFACTS / "console-event.png"))

        page.click("text=Sign out")
        page.wait_for_url("**/login**")

        # the auditor finds the operator's view, with its reason, in the audit log
        sign_in(page, base, "adam")
        page.goto(f"{base}/audit?action=event.view&actor=user:olivia")
        row = page.wait_for_selector(f"tr:has-text('event:{event_id}')")
        assert "e2e: check the live alert" in row.inner_text()
        page.goto(f"{base}/audit?verify=1")
        assert "Chain intact" in page.inner_text("main")
        page.screenshot(path=str(ARTIFACTS / "console-audit.png"), full_page=False)
        browser.close()

    assert problems == [], problems  # no script errors, no blocked resources (CSP)
    records = [r.as_dict() for r in AuditLog(make_engine(store)).records()]
    views = [r for r in records if r["action"] == "event.view" and r["object_id"] == str(event_id)]
    assert views and views[0]["actor"] == "user:olivia" and views[0]["reason"] == "e2e: check the live alert"
    assert any(r["action"] == "event.search" and r["actor"] == "user:olivia" for r in records)
    assert any(r["action"] == "audit.read" and r["actor"] == "user:adam" for r in records)
