"""Terminal sites, consented enrolments and door decisions on the central database.

Rules enforced here, for the API and the CLI alike:

* **Consent first.** An enrolment needs a consent record — who consented, when, how
  (and optionally a form reference) — and is refused without one; the operator who
  records it is kept with it. Withdrawing consent deletes the enrolment and its
  templates at once; the audit record remains.
* **Per site, never a watchlist.** Templates are stored in the terminal tables of
  one site and only ever compared 1:1 with the badge's own enrolment. Nothing here
  reads or writes a watchlist, and the matcher never reads these tables.
* **Everything is audited.** Site creation and every setting change (with before and
  after), each enrolment (with its consent record and image hashes, never the badge
  number), each withdrawal, each unlock, each template copy handed to a terminal,
  and each door decision stored.
"""

from __future__ import annotations

import hashlib
import threading
import time
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any, Iterable, Protocol, Sequence

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator
from sqlalchemy import Engine, delete, func, select
from sqlalchemy.orm import Session

from safecity.faces.calibration import OPERATING_THRESHOLD
from safecity.governance.audit import AuditLog
from safecity.governance.watchlists import decode_image
from safecity.terminal.decisions import Attempt, Decision, LockoutRules, badge_digest, check_name, lookback, refusal
from safecity.terminal.liveness import DIRECTIONS, ChallengeRules
from safecity.terminal.models import TerminalAttempt, TerminalEnrolment, TerminalSite, TerminalTemplate
from safecity.terminal.verify import CONTINUITY_THRESHOLD

MAX_ENROL_IMAGES = 5
#: An enrolment photo must reach this quality (the matching gate is lower; see faces/quality.py).
ENROL_QUALITY = 0.3
_SKEW = timedelta(minutes=5)  # clock skew allowed for a consent date


class TerminalError(ValueError):
    """A request the rules refuse; the message says which rule."""


class TerminalSettings(BaseModel):
    """A site's settings; every change is audited with the values before and after."""

    model_config = ConfigDict(extra="forbid")

    threshold: float = Field(OPERATING_THRESHOLD, ge=0.0, le=1.0, description="1:1 match threshold (cosine)")
    continuity: float = Field(CONTINUITY_THRESHOLD, ge=-1.0, le=1.0, description="every frame's least score")
    actions: list[str] = Field(default_factory=lambda: ["turn_left", "turn_right"], min_length=1)
    steps: int = Field(3, ge=1, le=6)
    turn_threshold: float = Field(0.10, gt=0.0, le=1.0)
    nod_threshold: float = Field(0.10, gt=0.0, le=1.0)
    hold_frames: int = Field(2, ge=1, le=10)
    time_limit: float = Field(10.0, gt=0.0, le=60.0)
    mirrored: bool = False
    screen_threshold: float | None = Field(None, description="passive screen check; null = off")
    badge_failures: int = Field(3, ge=1, le=100)
    terminal_failures: int = Field(10, ge=1, le=1000)
    window_seconds: float = Field(300.0, gt=0.0)
    lockout_seconds: float = Field(300.0, ge=0.0)
    attempts_per_minute: int = Field(12, ge=1, le=600)
    max_offline_hours: float = Field(24.0, gt=0.0, description="a terminal's template copy older than this denies")
    refresh_seconds: float = Field(60.0, gt=0.0, description="how often an online terminal refreshes its copy")

    @field_validator("actions")
    @classmethod
    def _known(cls, actions: list[str]) -> list[str]:
        unknown = [a for a in actions if a not in DIRECTIONS]
        if unknown:
            raise ValueError(f"unknown action {unknown[0]!r} (known: {', '.join(DIRECTIONS)})")
        return list(dict.fromkeys(actions))

    def rules(self) -> ChallengeRules:
        return ChallengeRules(
            actions=tuple(self.actions), steps=self.steps, turn_threshold=self.turn_threshold,
            nod_threshold=self.nod_threshold, hold_frames=self.hold_frames, time_limit=self.time_limit,
            mirrored=self.mirrored, screen_threshold=self.screen_threshold,
        )

    def lockout(self) -> LockoutRules:
        return LockoutRules(
            self.badge_failures, self.terminal_failures, self.window_seconds, self.lockout_seconds,
            self.attempts_per_minute,
        )


def parse_settings(values: dict[str, Any] | None) -> TerminalSettings:
    try:
        return TerminalSettings.model_validate(values or {})
    except ValidationError as error:
        first = error.errors()[0]
        where = ".".join(str(p) for p in first.get("loc", ())) or "settings"
        raise TerminalError(f"{where}: {first.get('msg', 'invalid')}") from None


@dataclass(frozen=True)
class Consent:
    """The consent record: who consented, when, how (and the form it is written on)."""

    subject: str  # the person who consented (or their legal representative)
    given_at: datetime
    method: str  # e.g. "signed paper form", "on-screen consent at the enrolment desk"
    reference: str = ""  # e.g. the form's number

    def check(self, now: datetime) -> None:
        if not str(self.subject or "").strip():
            raise TerminalError("consent: who consented is required")
        if not str(self.method or "").strip():
            raise TerminalError("consent: how consent was given is required")
        if self.given_at is None or self.given_at.tzinfo is None:
            raise TerminalError("consent: when consent was given is required (with a time zone)")
        if self.given_at > now + _SKEW:
            raise TerminalError("consent: the consent date is in the future")



class Enroller(Protocol):
    def template(self, image: np.ndarray) -> tuple[np.ndarray, float]: ...


class FaceEnroller:
    """One template from one enrolment photo: exactly one clear face, good quality."""

    def __init__(self, pipeline=None, min_quality: float = ENROL_QUALITY) -> None:
        if pipeline is None:
            from safecity.faces.pipeline import FacePipeline

            pipeline = FacePipeline()
        self.pipeline = pipeline
        self.min_quality = min_quality

    def template(self, image: np.ndarray) -> tuple[np.ndarray, float]:
        faces = self.pipeline.faces(image)
        if not faces:
            raise TerminalError("no face found")
        if len(faces) > 1:
            area = [float((f.box[2] - f.box[0]) * (f.box[3] - f.box[1])) for f in faces]
            if area[1] >= 0.25 * area[0]:
                raise TerminalError("more than one face: use a photo of the person alone")
        face = faces[0]
        if face.template is None or face.quality.score < self.min_quality:
            raise TerminalError(f"face quality {face.quality.score:.2f} is below {self.min_quality:.2f}: retake the photo")
        return face.template, face.quality.score


@dataclass
class SiteView:
    id: int
    name: str
    description: str
    settings: TerminalSettings
    enrolments: int
    created_by: str
    created_at: datetime
    updated_at: datetime


@dataclass
class EnrolmentView:
    id: int
    site: str
    label: str
    badge: str  # the digest's first 12 hex digits: enough to tell badges apart in a list
    consent_subject: str
    consent_at: datetime
    consent_method: str
    consent_reference: str
    consent_recorded_by: str
    expires_at: datetime | None
    templates: int
    created_at: datetime


@dataclass
class Holder:
    """The enrolment behind a badge, with its templates, for one 1:1 comparison."""

    enrolment_id: int
    label: str
    templates: np.ndarray  # k x 128
    expires_at: datetime | None


def _now() -> datetime:
    return datetime.now(timezone.utc)


class TerminalService:
    _lock = threading.Lock()  # serialises decision uploads in this process (audit exactly once per key)

    def __init__(self, engine: Engine, actor: str) -> None:
        self.engine = engine
        self.actor = actor
        self.audit = AuditLog(engine)

    # --- sites ------------------------------------------------------------------

    def _site(self, session: Session, name: str) -> TerminalSite:
        site = session.scalar(select(TerminalSite).where(TerminalSite.name == name))
        if site is None:
            raise TerminalError(f"no terminal site named {name!r}")
        return site

    def create_site(self, name: str, reason: str, description: str = "", settings: dict[str, Any] | None = None) -> int:
        try:
            check_name("site", name)
        except ValueError as error:
            raise TerminalError(str(error)) from None
        parsed = parse_settings(settings)
        now = _now()
        with Session(self.engine) as session, session.begin():
            if session.scalar(select(TerminalSite.id).where(TerminalSite.name == name)) is not None:
                raise TerminalError(f"a terminal site named {name!r} exists already")
            site = TerminalSite(
                name=name, description=description, settings=parsed.model_dump(), created_by=self.actor,
                created_at=now, updated_at=now,
            )
            session.add(site)
            session.flush()
            site_id = site.id
        self.audit.append(self.actor, "terminal.site.create", "terminal_site", name, reason, {"settings": parsed.model_dump()})
        return site_id

    def update_settings(self, name: str, changes: dict[str, Any], reason: str) -> TerminalSettings:
        """Change some settings; the audit record holds each changed value before and after."""
        if not changes:
            raise TerminalError("no setting to change")
        with Session(self.engine) as session, session.begin():
            site = self._site(session, name)
            before = parse_settings(site.settings).model_dump()
            after = parse_settings({**before, **changes}).model_dump()
            site.settings = after
            site.updated_at = _now()
        changed = {k: {"before": before[k], "after": after[k]} for k in after if before.get(k) != after[k]}
        self.audit.append(self.actor, "terminal.settings", "terminal_site", name, reason, {"changed": changed})
        return TerminalSettings.model_validate(after)

    def sites(self) -> list[SiteView]:
        with Session(self.engine) as session:
            rows = session.execute(
                select(TerminalSite, func.count(TerminalEnrolment.id))
                .outerjoin(TerminalEnrolment)
                .group_by(TerminalSite.id)
                .order_by(TerminalSite.name)
            ).all()
        return [
            SiteView(s.id, s.name, s.description, parse_settings(s.settings), n, s.created_by, s.created_at, s.updated_at)
            for s, n in rows
        ]

    def site(self, name: str) -> SiteView:
        found = next((s for s in self.sites() if s.name == name), None)
        if found is None:
            raise TerminalError(f"no terminal site named {name!r}")
        return found

    # --- enrolment --------------------------------------------------------------

    def enrol(
        self,
        site: str,
        badge: str,
        label: str,
        consent: Consent,
        images: Sequence[tuple[str, bytes]],
        reason: str,
        enroller: Enroller,
        expires_at: datetime | None = None,
    ) -> int:
        """Enrol a consenting person at ``site`` under ``badge`` from 1..5 photos (all must be usable)."""
        now = _now()
        consent.check(now)
        if not str(label or "").strip():
            raise TerminalError("the person's name (label) is required")
        if not images:
            raise TerminalError("at least one enrolment photo is required")
        if len(images) > MAX_ENROL_IMAGES:
            raise TerminalError(f"at most {MAX_ENROL_IMAGES} enrolment photos")
        if expires_at is not None and (expires_at.tzinfo is None or expires_at <= now):
            raise TerminalError("an enrolment's expiry must be in the future (with a time zone)")
        try:
            digest = badge_digest(site, badge)
        except ValueError as error:
            raise TerminalError(str(error)) from None
        templates = []
        for name, data in images:
            try:
                vector, quality = enroller.template(decode_image(name, data))
            except ValueError as error:  # EnrolmentError, TerminalError
                raise TerminalError(f"{name}: {error}") from None
            templates.append((np.asarray(vector, np.float32), float(quality), hashlib.sha256(data).hexdigest()))
        with Session(self.engine, expire_on_commit=False) as session, session.begin():
            row = self._site(session, site)
            taken = session.scalar(
                select(TerminalEnrolment.id).where(TerminalEnrolment.site_id == row.id, TerminalEnrolment.badge_digest == digest)
            )
            if taken is not None:
                raise TerminalError(f"this badge is enrolled at {site!r} already (enrolment {taken}): withdraw it first")
            enrolment = TerminalEnrolment(
                site_id=row.id, badge_digest=digest, label=label.strip(), consent_subject=consent.subject.strip(),
                consent_at=consent.given_at, consent_method=consent.method.strip(),
                consent_reference=(consent.reference or "").strip(), consent_recorded_by=self.actor,
                expires_at=expires_at, created_at=now, updated_at=now,
                templates=[
                    TerminalTemplate(vector=v.tobytes(), quality=q, image_sha256=h, created_at=now) for v, q, h in templates
                ],
            )
            session.add(enrolment)
            session.flush()
            enrolment_id = enrolment.id
        self.audit.append(
            self.actor, "terminal.enrol", "terminal_enrolment", enrolment_id, reason,
            {
                "site": site, "label": label.strip(), "badge": digest[:12], "images_sha256": [t[2] for t in templates],
                "consent": {
                    "subject": consent.subject.strip(), "given_at": consent.given_at.isoformat(),
                    "method": consent.method.strip(), "reference": (consent.reference or "").strip(),
                },
                "expires_at": expires_at.isoformat() if expires_at else None,
            },
        )
        return enrolment_id

    def withdraw(self, site: str, enrolment_id: int, reason: str) -> None:
        """Consent withdrawn (or access ended): the enrolment and its templates are deleted now."""
        with Session(self.engine, expire_on_commit=False) as session, session.begin():
            row = self._site(session, site)
            enrolment = session.get(TerminalEnrolment, enrolment_id)
            if enrolment is None or enrolment.site_id != row.id:
                raise TerminalError(f"no enrolment {enrolment_id} at {site!r}")
            label, digest = enrolment.label, enrolment.badge_digest
            session.delete(enrolment)
            row.updated_at = _now()  # terminals refresh their copy by this
        self.audit.append(
            self.actor, "terminal.withdraw", "terminal_enrolment", enrolment_id, reason,
            {"site": site, "label": label, "badge": digest[:12]},
        )

    def enrolments(self, site: str, reason: str = "", audit: bool = True) -> list[EnrolmentView]:
        with Session(self.engine) as session:
            row = self._site(session, site)
            rows = session.execute(
                select(TerminalEnrolment, func.count(TerminalTemplate.id))
                .outerjoin(TerminalTemplate)
                .where(TerminalEnrolment.site_id == row.id)
                .group_by(TerminalEnrolment.id)
                .order_by(TerminalEnrolment.label, TerminalEnrolment.id)
            ).all()
        views = [
            EnrolmentView(
                e.id, site, e.label, e.badge_digest[:12], e.consent_subject, e.consent_at, e.consent_method,
                e.consent_reference, e.consent_recorded_by, e.expires_at, n, e.created_at,
            )
            for e, n in rows
        ]
        if audit:
            self.audit.append(self.actor, "terminal.enrolments.read", "terminal_site", site, reason, {"enrolments": len(views)})
        return views

    def holder(self, site: str, digest: str) -> Holder | None:
        """The badge's enrolment and templates at this site, or None."""
        with Session(self.engine) as session:
            row = self._site(session, site)
            enrolment = session.scalar(
                select(TerminalEnrolment).where(TerminalEnrolment.site_id == row.id, TerminalEnrolment.badge_digest == digest)
            )
            if enrolment is None:
                return None
            vectors = [np.frombuffer(t.vector, np.float32) for t in enrolment.templates]
            return Holder(enrolment.id, enrolment.label, np.stack(vectors), enrolment.expires_at)

    def snapshot(self, site: str, terminal: str) -> dict[str, Any]:
        """The site's settings and consented templates, for a terminal's offline copy (audited)."""
        with Session(self.engine) as session:
            row = self._site(session, site)
            settings = parse_settings(row.settings)
            revision = row.updated_at.isoformat()
            enrolments = session.scalars(select(TerminalEnrolment).where(TerminalEnrolment.site_id == row.id)).all()
            people = [
                {
                    "enrolment_id": e.id, "badge_digest": e.badge_digest, "label": e.label,
                    "expires_at": e.expires_at.isoformat() if e.expires_at else None,
                    "templates": [np.frombuffer(t.vector, np.float32).round(6).tolist() for t in e.templates],
                }
                for e in enrolments
            ]
        self.audit.append(
            self.actor, "terminal.copy", "terminal_site", site, "offline copy for a terminal",
            {"terminal": terminal, "enrolments": len(people), "revision": revision},
        )
        return {"site": site, "revision": revision, "generated_at": time.time(), "settings": settings.model_dump(), "enrolments": people}

    # --- attempts, lockouts and decisions ---------------------------------------

    def attempts(self, site: str, now: float, rules: LockoutRules) -> list[Attempt]:
        with Session(self.engine) as session:
            row = self._site(session, site)
            rows = session.scalars(
                select(TerminalAttempt).where(TerminalAttempt.site_id == row.id, TerminalAttempt.ts > now - lookback(rules))
            ).all()
        return [Attempt(a.ts, a.terminal, a.badge_digest, a.outcome) for a in rows]

    def refusal(self, site: str, terminal: str, digest: str | None, now: float | None = None):
        now = time.time() if now is None else now
        settings = self.site(site).settings
        return refusal(self.attempts(site, now, settings.lockout()), terminal, digest, now, settings.lockout())

    def unlock(self, site: str, reason: str, terminal: str | None = None, badge: str | None = None) -> None:
        """Lift a lockout now: of one badge, one terminal, or (neither given) everything at the site."""
        digest = badge_digest(site, badge) if badge else None
        with Session(self.engine) as session, session.begin():
            row = self._site(session, site)
            session.add(TerminalAttempt(site_id=row.id, terminal=terminal or "*", badge_digest=digest, ts=time.time(), outcome="unlock"))
        self.audit.append(
            self.actor, "terminal.unlock", "terminal_site", site, reason,
            {"terminal": terminal or "*", "badge": digest[:12] if digest else "*"},
        )

    def record(self, decisions: Iterable[Decision], store, bus=None) -> tuple[list[str], int]:
        """Store decisions as door events, log their attempts, audit each new one; idempotent by key.

        Returns (the keys now stored — new or known before, new count).
        """
        decisions = list(decisions)
        if not decisions:
            return [], 0
        from safecity.events.models import EventRow

        with self._lock:
            keys = [d.key for d in decisions]
            with Session(self.engine) as session:
                known = set(session.scalars(select(EventRow.key).where(EventRow.key.in_(keys))).all())
                sites = {s.name: s.id for s in session.scalars(select(TerminalSite)).all()}
            fresh = [d for d in {d.key: d for d in decisions}.values() if d.key not in known]
            for d in fresh:
                if d.site not in sites:
                    raise TerminalError(f"no terminal site named {d.site!r}")
            if fresh:
                store.add_events([d.event() for d in fresh])
                with Session(self.engine) as session, session.begin():
                    session.add_all(
                        TerminalAttempt(
                            site_id=sites[d.site], terminal=d.terminal, badge_digest=d.badge_digest, ts=float(d.decided_at),
                            outcome=d.outcome, decision_key=d.key,
                        )
                        for d in fresh
                    )
                for d in fresh:
                    self.audit.append(
                        self.actor, "terminal.decision", "door_event", d.key, d.reason,
                        {
                            "site": d.site, "terminal": d.terminal, "granted": d.granted, "code": d.code,
                            "enrolment_id": d.enrolment_id, "label": d.label, "offline": d.offline, "source": d.source,
                            "decided_at": datetime.fromtimestamp(d.decided_at, timezone.utc).isoformat(),
                        },
                    )
                if bus is not None:
                    bus.publish()
        return keys, len(fresh)


def clear_challenges(engine: Engine, before: float) -> None:
    """Drop challenges that ended before ``before`` (they are worthless after expiry)."""
    from safecity.terminal.models import TerminalChallenge

    with Session(engine) as session, session.begin():
        session.execute(delete(TerminalChallenge).where(TerminalChallenge.expires_at < before))

