"""`safecity terminal` on the command line: a site, a consented enrolment, a terminal on a real clip."""

from __future__ import annotations

import subprocess
import sys

from safecity.events.store import EventQuery, EventStore
from safecity.governance.audit import AuditLog
from tests.test_cli import REPO


def safecity(*args: str, input: str | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "safecity.cli", *args], cwd=REPO, input=input, text=True, capture_output=True, timeout=300)


def test_a_terminal_runs_on_a_camera_source_and_stores_its_decisions(tmp_path, orl, people_clip):
    store = f"sqlite:///{tmp_path / 'var' / 'safecity.db'}"
    created = safecity("terminal", "site", "create", "hq", "--reason", "new door", "--store", store)
    assert created.returncode == 0, created.stderr
    consent = ["--consent-by", "Ann Example", "--consent-at", "2026-01-05T09:00", "--consent-method", "signed paper form"]
    image = str(orl / "images" / "s10_5.png")
    refused = safecity("terminal", "enrol", "--site", "hq", "--badge", "1234", "--label", "Ann", "--image", image,
                       "--reason", "starter", "--store", store)
    assert refused.returncode != 0 and "--consent-by" in refused.stderr  # no consent record, no enrolment
    enrolled = safecity("terminal", "enrol", "--site", "hq", "--badge", "1234", "--label", "Ann", "--image", image,
                        *consent, "--reason", "starter", "--store", store)
    assert enrolled.returncode == 0, enrolled.stderr

    # the hallway clip as the terminal's camera: people walk past far away, nobody does the challenge
    ran = safecity("terminal", "--camera", str(people_clip), "--site", "hq", "--terminal", "door-1",
                   "--state", str(tmp_path / "door-1.db"), "--store", store, input="1234\n777\n")
    assert ran.returncode == 0, ran.stderr
    assert "challenge:" in ran.stdout and ran.stdout.count("DENIED") == 2 and "GRANTED" not in ran.stdout
    events = EventStore(store, migrate=False)
    rows, total = events.search(EventQuery(type="door"))
    assert total == 2 and {r.camera for r in rows} == {"hq/door-1"}
    assert {r.attributes["code"] for r in rows} >= {"unknown_badge"}
    actions = [r.action for r in AuditLog(events.engine).records()]
    assert actions.count("terminal.decision") == 2 and "terminal.enrol" in actions and "terminal.site.create" in actions
    events.close()
