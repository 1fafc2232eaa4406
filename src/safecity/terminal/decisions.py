"""Door decisions, the door events they become, and the rate-limit and lockout rules.

A :class:`Decision` is made once, by a terminal (offline or not) or by the central
API, and given a random id there. Its event key is derived from that id only, so
the same decision uploaded twice — a retried sync after a lost reply — is stored
once. Rate limits and lockouts are pure functions of the recent attempts
(:func:`refusal`), so the terminal's local copy and the central database apply the
very same rules.
"""

from __future__ import annotations

import hashlib
import math
import re
import time
import uuid
from collections import deque
from dataclasses import asdict, dataclass, field
from typing import Any, Iterable

from safecity.records import Event

DOOR = "door"
NAME = re.compile(r"^[A-Za-z0-9_.-]{1,64}$")


def badge_digest(site: str, badge: str) -> str:
    """What is stored for a badge id (or a PIN used as one): SHA-256 of site and badge.

    It keeps badge numbers out of the tables, events and logs; it is not a secret
    store — a short PIN can be guessed back from its digest by trying them all.
    """
    badge = (badge or "").strip()
    if not 1 <= len(badge) <= 128 or not badge.isprintable():
        raise ValueError("a badge id has 1 to 128 printable characters")
    return hashlib.sha256(f"{site}\x00{badge}".encode()).hexdigest()


def check_name(kind: str, name: str) -> str:
    if not NAME.match(name or "") or name in {"sites", "."}:
        raise ValueError(f"a {kind} name has 1 to 64 letters, digits, '_', '.' or '-' (and is not 'sites')")
    return name


@dataclass(slots=True)
class Decision:
    """One granted or denied attempt at a door; ``code`` says why in a word, ``reason`` in a sentence."""

    site: str
    terminal: str
    badge_digest: str | None
    granted: bool
    code: str
    reason: str
    decided_at: float = field(default_factory=time.time)
    id: str = field(default_factory=lambda: uuid.uuid4().hex)
    enrolment_id: int | None = None
    label: str | None = None
    score: float | None = None
    threshold: float | None = None
    required: list[str] = field(default_factory=list)
    liveness: dict[str, Any] | None = None
    offline: bool = False  # decided on the terminal's local copy while the server was unreachable
    source: str = "terminal"  # terminal | central

    @property
    def key(self) -> str:
        return hashlib.sha256(f"{DOOR}|{self.id}".encode()).hexdigest()[:32]

    @property
    def outcome(self) -> str:
        """For the attempt log: refusals before any face was judged do not count as failures."""
        if self.granted:
            return "granted"
        return "refused" if self.code in REFUSALS else "denied"

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "Decision":
        known = {f for f in cls.__dataclass_fields__}
        values = {k: v for k, v in data.items() if k in known}
        decision = cls(**values)
        if not re.fullmatch(r"[0-9a-f]{32}", decision.id or ""):
            raise ValueError("a decision id is 32 hex digits")
        check_name("site", decision.site)
        check_name("terminal", decision.terminal)
        if decision.code not in CODES:
            raise ValueError(f"unknown decision code {decision.code!r}")
        return decision

    def event(self) -> Event:
        """The door event: who (the enrolment's label, when the badge was known), what and why."""
        attributes = {
            "site": self.site, "terminal": self.terminal, "decision": "granted" if self.granted else "denied",
            "code": self.code, "reason": self.reason, "badge": (self.badge_digest or "")[:12] or None,
            "enrolment_id": self.enrolment_id, "threshold": self.threshold, "challenge": list(self.required),
            "liveness": self.liveness, "offline": self.offline, "source": self.source, "decision_id": self.id,
        }
        return Event(
            camera=f"{self.site}/{self.terminal}", type=DOOR, start_ts=float(self.decided_at), label=self.label,
            score=self.score, attributes=attributes, key=self.key,
        )


#: Denials that are refusals before any face was judged: they never count towards a lockout.
REFUSALS = frozenset({"rate_limited", "badge_locked", "terminal_locked", "copy_too_old"})
#: Every decision code (a decision uploaded with another code is refused).
CODES = REFUSALS | frozenset({
    "granted", "unknown_badge", "enrolment_expired", "no_face", "several_faces", "poor_quality", "no_match",
    "face_changed", "challenge_expired", "liveness_screen", "liveness_too_few_frames", "liveness_timeout",
    "liveness_wrong_movement", "liveness_incomplete",
})


@dataclass(frozen=True, slots=True)
class LockoutRules:
    badge_failures: int = 3  # failed attempts of one badge (any terminal of the site) ...
    terminal_failures: int = 10  # ... or at one terminal (any badge) ...
    window_seconds: float = 300.0  # ... within this window lock it ...
    lockout_seconds: float = 300.0  # ... for this long
    attempts_per_minute: int = 12  # per terminal, whatever the outcome


@dataclass(frozen=True, slots=True)
class Attempt:
    ts: float
    terminal: str
    badge_digest: str | None
    outcome: str  # granted | denied | refused | unlock (an unlock has terminal "*" or badge None for "all")


def _locked_until(failures: Iterable[float], limit: int, window: float, lockout: float) -> float:
    """When the lock from these failure times ends (0: no lock). The count restarts after a lock."""
    recent: deque[float] = deque()
    until = 0.0
    for ts in sorted(failures):
        if ts < until:
            continue  # attempts refused during a lock are not failures
        while recent and recent[0] <= ts - window:
            recent.popleft()
        recent.append(ts)
        if len(recent) >= limit:
            until = ts + lockout
            recent.clear()
    return until


def refusal(attempts: Iterable[Attempt], terminal: str, badge: str | None, now: float, rules: LockoutRules) -> tuple[str, str, float] | None:
    """(code, reason, retry after seconds) if this attempt must be refused before judging it, else None.

    * rate limit: at most ``attempts_per_minute`` attempts per terminal in the last 60 s;
    * badge lockout: ``badge_failures`` denials of the badge within the window, at any
      terminal of the site; a granted attempt of the badge or an unlock resets it;
    * terminal lockout: ``terminal_failures`` denials at the terminal within the
      window, whatever the badge (successes in between do not reset it; an unlock does).
    """
    attempts = sorted(attempts, key=lambda a: a.ts)
    recent = [a for a in attempts if a.terminal == terminal and a.outcome != "unlock" and a.ts > now - 60.0]
    if len(recent) >= rules.attempts_per_minute:
        return "rate_limited", f"too many attempts at this terminal: wait {recent[0].ts + 60.0 - now:.0f} s", recent[0].ts + 60.0 - now

    def unlocked_after(match) -> float:
        return max((a.ts for a in attempts if a.outcome == "unlock" and match(a)), default=-math.inf)

    term_reset = unlocked_after(lambda a: a.terminal in (terminal, "*"))
    term_fail = [a.ts for a in attempts if a.terminal == terminal and a.outcome == "denied" and a.ts > term_reset]
    until = _locked_until(term_fail, rules.terminal_failures, rules.window_seconds, rules.lockout_seconds)
    if until > now:
        return "terminal_locked", f"this terminal is locked after repeated failures: wait {until - now:.0f} s", until - now
    if badge is not None:
        badge_reset = max(
            unlocked_after(lambda a: a.badge_digest in (badge, None)),
            max((a.ts for a in attempts if a.badge_digest == badge and a.outcome == "granted"), default=-math.inf),
        )
        badge_fail = [a.ts for a in attempts if a.badge_digest == badge and a.outcome == "denied" and a.ts > badge_reset]
        until = _locked_until(badge_fail, rules.badge_failures, rules.window_seconds, rules.lockout_seconds)
        if until > now:
            return "badge_locked", f"this badge is locked after repeated failures: wait {until - now:.0f} s", until - now
    return None


def lookback(rules: LockoutRules) -> float:
    """How far back attempts matter to :func:`refusal` (older ones can be pruned)."""
    return max(60.0, rules.window_seconds * max(rules.badge_failures, rules.terminal_failures) + rules.lockout_seconds)
