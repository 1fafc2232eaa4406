"""The terminal itself: offline-first decisions on a local copy, synced to the central server.

A terminal keeps one small SQLite file of its own (not the city database: its schema
is this module's, versioned with ``PRAGMA user_version``):

* ``copy`` / ``people``: the site's settings and its consented templates, fetched from
  the central server (``GET /api/terminal/{site}/snapshot``) and refreshed every
  ``refresh_seconds`` while the server answers. A copy older than
  ``max_offline_hours`` is not used: the terminal then denies (``copy_too_old``), so
  a withdrawn consent reaches every door within that time even if one stays offline.
* ``queue``: every decision, kept until the server has confirmed it. Sync uploads
  them (``POST /api/terminal/{site}/decisions``) in batches; the server stores each
  under its event key, so an upload repeated after a lost reply stores nothing twice.
* ``attempts``: this terminal's recent attempts, for its own rate limit and lockouts
  (the same rules as the server's, :func:`safecity.terminal.decisions.refusal`). An
  offline terminal only knows its own attempts; failures at other doors count again
  once it is back online and the server decides.

The file holds biometric templates: it is created readable by its owner only, and the
device's disk should be encrypted.
"""

from __future__ import annotations

import json
import os
import sqlite3
import threading
import time
from datetime import datetime
from pathlib import Path
from typing import Any, Protocol, Sequence

import numpy as np

from safecity.terminal.decisions import Attempt, Decision, badge_digest, check_name, lookback, refusal
from safecity.terminal.service import TerminalSettings, parse_settings
from safecity.terminal.verify import decide

SCHEMA_VERSION = 1
SCHEMA = """
CREATE TABLE IF NOT EXISTS copy (site TEXT PRIMARY KEY, revision TEXT, fetched_at REAL, settings TEXT);
CREATE TABLE IF NOT EXISTS people (
    badge_digest TEXT PRIMARY KEY, enrolment_id INTEGER, label TEXT, expires_at TEXT, templates BLOB, count INTEGER
);
CREATE TABLE IF NOT EXISTS queue (key TEXT PRIMARY KEY, body TEXT NOT NULL, decided_at REAL NOT NULL, sent_at REAL);
CREATE TABLE IF NOT EXISTS attempts (
    id INTEGER PRIMARY KEY AUTOINCREMENT, ts REAL NOT NULL, terminal TEXT NOT NULL, badge_digest TEXT, outcome TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS ix_queue_unsent ON queue (sent_at, decided_at);
"""
SYNC_BATCH = 200


class CentralUnavailable(RuntimeError):
    """The central server did not answer (or answered 5xx): work on, sync later."""


class Central(Protocol):
    def snapshot(self, site: str, terminal: str) -> dict[str, Any]: ...

    def push(self, site: str, decisions: Sequence[Decision]) -> list[str]: ...


class HttpCentral:
    """The central safecity API, as a terminal account (role ``terminal``) sees it."""

    def __init__(self, base_url: str, user: str, password: str, timeout: float = 5.0, transport=None) -> None:
        import httpx

        self.base_url = base_url.rstrip("/")
        self.user, self.password = user, password
        self.client = httpx.Client(base_url=self.base_url, timeout=timeout, transport=transport)
        self.token: str | None = None

    def close(self) -> None:
        self.client.close()

    def _login(self) -> None:
        response = self._send("POST", "/api/auth/login", json={"name": self.user, "password": self.password}, auth=False)
        if response.status_code != 200:
            raise PermissionError(f"the server refused the terminal's sign-in: {response.status_code} {_detail(response)}")
        self.token = response.json()["token"]

    def _send(self, method: str, path: str, auth: bool = True, **kwargs):
        import httpx

        headers = {"Authorization": f"Bearer {self.token}"} if auth and self.token else {}
        try:
            response = self.client.request(method, path, headers=headers, **kwargs)
        except httpx.TransportError as error:
            raise CentralUnavailable(f"{self.base_url} unreachable: {error.__class__.__name__}") from None
        if response.status_code >= 500:
            raise CentralUnavailable(f"{self.base_url} answered {response.status_code}")
        return response

    def request(self, method: str, path: str, **kwargs):
        if self.token is None:
            self._login()
        response = self._send(method, path, **kwargs)
        if response.status_code == 401:  # the session ended (12 h at most): sign in again, once
            self._login()
            response = self._send(method, path, **kwargs)
        if response.status_code >= 400:
            raise ValueError(f"{method} {path}: {response.status_code} {_detail(response)}")
        return response

    def snapshot(self, site: str, terminal: str) -> dict[str, Any]:
        return self.request("GET", f"/api/terminal/{site}/snapshot", params={"terminal": terminal}).json()

    def push(self, site: str, decisions: Sequence[Decision]) -> list[str]:
        body = {"decisions": [d.as_dict() for d in decisions]}
        return self.request("POST", f"/api/terminal/{site}/decisions", json=body).json()["stored"]


def _detail(response) -> str:
    try:
        return str(response.json().get("detail", ""))[:300]
    except Exception:
        return response.text[:300]


class StoreCentral:
    """The central database itself, for a terminal running on the server's machine (and for tests)."""

    def __init__(self, store, actor: str) -> None:
        self.store = store
        self.actor = actor

    def _service(self):
        from safecity.terminal.service import TerminalService

        return TerminalService(self.store.engine, self.actor)

    def snapshot(self, site: str, terminal: str) -> dict[str, Any]:
        try:
            return self._service().snapshot(site, terminal)
        except Exception as error:
            if type(error).__name__ in {"OperationalError", "InterfaceError"}:
                raise CentralUnavailable(str(error)) from None
            raise

    def push(self, site: str, decisions: Sequence[Decision]) -> list[str]:
        try:
            keys, _ = self._service().record(decisions, self.store)
        except Exception as error:
            if type(error).__name__ in {"OperationalError", "InterfaceError"}:
                raise CentralUnavailable(str(error)) from None
            raise
        return keys


class LocalState:
    """The terminal's own SQLite file (see the module notes)."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        if not self.path.exists():
            self.path.touch(mode=0o600)
        os.chmod(self.path, 0o600)
        self._lock = threading.Lock()
        self.db = sqlite3.connect(str(self.path), check_same_thread=False, isolation_level=None)
        self.db.execute("PRAGMA journal_mode=WAL")
        self.db.execute("PRAGMA busy_timeout=10000")
        version = self.db.execute("PRAGMA user_version").fetchone()[0]
        if version > SCHEMA_VERSION:
            raise RuntimeError(f"{self.path} was written by a newer safecity (schema {version})")
        self.db.executescript(SCHEMA)
        self.db.execute(f"PRAGMA user_version={SCHEMA_VERSION}")

    def close(self) -> None:
        self.db.close()

    # --- the copy -------------------------------------------------------------

    def save_copy(self, snapshot: dict[str, Any], fetched_at: float) -> None:
        settings = parse_settings(snapshot.get("settings"))
        with self._lock:
            self.db.execute("BEGIN IMMEDIATE")
            try:
                self.db.execute("DELETE FROM copy")
                self.db.execute("DELETE FROM people")
                self.db.execute(
                    "INSERT INTO copy VALUES (?, ?, ?, ?)",
                    (snapshot["site"], snapshot.get("revision", ""), fetched_at, settings.model_dump_json()),
                )
                for person in snapshot.get("enrolments", []):
                    vectors = np.asarray(person["templates"], np.float32).reshape(-1, 128)
                    self.db.execute(
                        "INSERT INTO people VALUES (?, ?, ?, ?, ?, ?)",
                        (person["badge_digest"], person["enrolment_id"], person["label"], person.get("expires_at"),
                         vectors.tobytes(), len(vectors)),
                    )
                self.db.execute("COMMIT")
            except BaseException:
                self.db.execute("ROLLBACK")
                raise

    def copy(self) -> tuple[str, str, float, TerminalSettings] | None:
        row = self.db.execute("SELECT site, revision, fetched_at, settings FROM copy").fetchone()
        if row is None:
            return None
        return row[0], row[1], float(row[2]), TerminalSettings.model_validate_json(row[3])

    def person(self, digest: str):
        row = self.db.execute(
            "SELECT enrolment_id, label, expires_at, templates FROM people WHERE badge_digest = ?", (digest,)
        ).fetchone()
        if row is None:
            return None
        templates = np.frombuffer(row[3], np.float32).reshape(-1, 128)
        return int(row[0]), row[1], (datetime.fromisoformat(row[2]) if row[2] else None), templates

    def people(self) -> int:
        return int(self.db.execute("SELECT count(*) FROM people").fetchone()[0])

    # --- attempts and the queue -----------------------------------------------

    def attempts(self, since: float) -> list[Attempt]:
        rows = self.db.execute("SELECT ts, terminal, badge_digest, outcome FROM attempts WHERE ts > ?", (since,)).fetchall()
        return [Attempt(float(ts), t, b, o) for ts, t, b, o in rows]

    def add(self, decision: Decision) -> None:
        """Queue the decision and log the attempt, atomically."""
        with self._lock:
            self.db.execute("BEGIN IMMEDIATE")
            try:
                self.db.execute(
                    "INSERT OR IGNORE INTO queue (key, body, decided_at) VALUES (?, ?, ?)",
                    (decision.key, json.dumps(decision.as_dict()), decision.decided_at),
                )
                self.db.execute(
                    "INSERT INTO attempts (ts, terminal, badge_digest, outcome) VALUES (?, ?, ?, ?)",
                    (decision.decided_at, decision.terminal, decision.badge_digest, decision.outcome),
                )
                self.db.execute("COMMIT")
            except BaseException:
                self.db.execute("ROLLBACK")
                raise

    def unsent(self, limit: int = SYNC_BATCH) -> list[Decision]:
        rows = self.db.execute(
            "SELECT body FROM queue WHERE sent_at IS NULL ORDER BY decided_at LIMIT ?", (limit,)
        ).fetchall()
        return [Decision.from_dict(json.loads(body)) for (body,) in rows]

    def pending(self) -> int:
        return int(self.db.execute("SELECT count(*) FROM queue WHERE sent_at IS NULL").fetchone()[0])

    def mark_sent(self, keys: Sequence[str], when: float) -> None:
        with self._lock:
            self.db.executemany("UPDATE queue SET sent_at = ? WHERE key = ? AND sent_at IS NULL", [(when, k) for k in keys])

    def prune(self, before: float, sent_before: float) -> None:
        """Forget attempts older than any rule looks at, and decisions confirmed long ago."""
        with self._lock:
            self.db.execute("DELETE FROM attempts WHERE ts < ?", (before,))
            self.db.execute("DELETE FROM queue WHERE sent_at IS NOT NULL AND sent_at < ?", (sent_before,))


class TerminalDevice:
    """One door: decides on its local copy, queues every decision, syncs when it can."""

    def __init__(self, site: str, terminal: str, state: str | Path | LocalState, central: Central | None = None,
                 verifier=None, clock=time.time) -> None:
        self.site = check_name("site", site)
        self.terminal = check_name("terminal", terminal)
        self.state = state if isinstance(state, LocalState) else LocalState(state)
        self.central = central
        self._verifier = verifier
        self.clock = clock
        self.online = False
        self.last_error: str | None = None

    @property
    def verifier(self):
        if self._verifier is None:
            from safecity.terminal.verify import Verifier

            self._verifier = Verifier()
        return self._verifier

    def settings(self) -> TerminalSettings:
        copy = self.state.copy()
        if copy is None:
            raise RuntimeError("this terminal has no copy of its site yet: it must reach the server once")
        return copy[3]

    # --- talking to the server -------------------------------------------------

    def refresh(self, force: bool = False) -> bool:
        """Fetch a fresh copy of the site when due; False when the server is unreachable."""
        if self.central is None:
            return False
        copy = self.state.copy()
        now = self.clock()
        if not force and copy is not None and now - copy[2] < copy[3].refresh_seconds:
            return True
        try:
            snapshot = self.central.snapshot(self.site, self.terminal)
        except CentralUnavailable as error:
            self.online, self.last_error = False, str(error)
            return False
        if snapshot.get("site") != self.site:
            raise ValueError(f"the server sent a copy of {snapshot.get('site')!r}, not {self.site!r}")
        self.state.save_copy(snapshot, now)
        self.online, self.last_error = True, None
        return True

    def sync(self) -> tuple[int, int]:
        """Upload queued decisions; returns (confirmed now, still queued)."""
        if self.central is None:
            return 0, self.state.pending()
        sent = 0
        while True:
            batch = self.state.unsent()
            if not batch:
                break
            try:
                stored = set(self.central.push(self.site, batch))
            except CentralUnavailable as error:
                self.online, self.last_error = False, str(error)
                break
            except (ValueError, PermissionError) as error:  # refused: keep the queue, say why
                self.last_error = str(error)
                break
            self.online, self.last_error = True, None
            confirmed = [d.key for d in batch if d.key in stored]
            self.state.mark_sent(confirmed, self.clock())
            sent += len(confirmed)
            if len(confirmed) < len(batch):
                break  # the server kept some back: try again at the next sync
        now = self.clock()
        rules = self.settings().lockout() if self.state.copy() else None
        if rules is not None:
            self.state.prune(now - lookback(rules), now - 7 * 86400)
        return sent, self.state.pending()

    # --- deciding ----------------------------------------------------------------

    def challenge(self) -> tuple[str, ...]:
        return self.settings().rules().challenge()

    def attempt(self, badge: str, frames: Sequence[tuple[float, np.ndarray]], required: Sequence[str]) -> Decision:
        """Decide one attempt from its frames (capture times in seconds, any origin), queue it, return it."""
        decision = self._decide(badge, frames, required)
        self.state.add(decision)
        return decision

    def _decide(self, badge: str, frames, required) -> Decision:
        now = self.clock()
        copy = self.state.copy()
        if copy is None:
            raise RuntimeError("this terminal has no copy of its site yet: it must reach the server once")
        _, _, fetched_at, settings = copy
        digest = badge_digest(self.site, badge)
        base = dict(site=self.site, terminal=self.terminal, badge_digest=digest, decided_at=now,
                    offline=not self.online, required=list(required), threshold=settings.threshold)

        def denied(code: str, reason: str, **more) -> Decision:
            return Decision(granted=False, code=code, reason=reason, **{**base, **more})

        if now - fetched_at > settings.max_offline_hours * 3600:
            return denied("copy_too_old", f"the terminal's copy of the site is {(now - fetched_at) / 3600:.1f} h old")
        rules = settings.lockout()
        refused = refusal(self.state.attempts(now - lookback(rules)), self.terminal, digest, now, rules)
        if refused is not None:
            return denied(refused[0], refused[1])
        person = self.state.person(digest)
        if person is None:
            return denied("unknown_badge", "this badge is not enrolled at this site")
        enrolment_id, label, expires_at, templates = person
        more = {"enrolment_id": enrolment_id, "label": label}
        if expires_at is not None and expires_at.timestamp() <= now:
            return denied("enrolment_expired", "this enrolment has expired", **more)
        seen = self.verifier.observe(list(frames))
        verdict = decide(seen, templates, required, settings.rules(), settings.threshold, settings.continuity)
        return Decision(
            granted=verdict.granted, code=verdict.code, reason=verdict.reason, score=verdict.score,
            liveness=verdict.liveness.as_dict() if verdict.liveness else None, **{**base, **more},
        )
