"""Governed watchlists: who may be looked for, on what legal basis, by whose authority, until when.

Identification runs only against entries created here. Every entry carries a legal
basis, a purpose, an authoriser and an expiry date, all required. An entry matches
only after a second person (not its author) approved it, and an expired entry stops
matching by itself, because matchers only ever read :meth:`face_gallery` and
:meth:`active_plates`, which return approved, unexpired entries. Every
creation, enrolment, expiry and removal is written to the audit log with its reason.
Face lists hold templates of enrolled people only; plate lists hold plate texts.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Protocol

import cv2
import numpy as np
from sqlalchemy import Engine, func, select
from sqlalchemy.orm import Session, selectinload

from safecity.governance.audit import AuditLog
from safecity.governance.models import FaceTemplate, Watchlist, WatchlistEntry
from safecity.records import normalise_plate, plate_key

KINDS = ("face", "plate")
MAX_IMAGE_BYTES = 20 * 1024 * 1024
MAX_IMAGE_SIDE = 8000


class GovernanceError(ValueError):
    """A request the rules forbid; the message says which rule."""


class EnrolmentError(GovernanceError):
    """A reference image that cannot be enrolled; the message says why."""


class Enroller(Protocol):
    """Turns one reference image into a template, or refuses with :class:`EnrolmentError`."""

    def template(self, image: np.ndarray) -> tuple[np.ndarray, float]: ...


@dataclass(frozen=True)
class Governance:
    """The fields without which nobody may be put on a list."""

    legal_basis: str
    purpose: str
    authoriser: str
    expires_at: datetime

    def check(self, now: datetime) -> None:
        for name in ("legal_basis", "purpose", "authoriser"):
            if not str(getattr(self, name) or "").strip():
                raise GovernanceError(f"{name.replace('_', ' ')} is required")
        if self.expires_at.tzinfo is None:
            raise GovernanceError("expiry must carry a time zone")
        if self.expires_at <= now:
            raise GovernanceError(f"expiry {self.expires_at.isoformat()} is not in the future")


@dataclass
class EntryView:
    id: int
    watchlist: str
    kind: str
    label: str
    plate: str | None
    legal_basis: str
    purpose: str
    authoriser: str
    expires_at: datetime
    created_by: str
    approved_by: str | None
    templates: int
    active: bool
    state: str = field(init=False, default="")  # active, awaiting approval or expired

    def __post_init__(self) -> None:
        if self.active:
            self.state = "active"
        else:
            self.state = "awaiting approval" if self.approved_by is None else "expired"


@dataclass
class FaceGallery:
    """Active face templates, one row per template, ready for an index."""

    vectors: np.ndarray  # N x D float32, L2-normalised
    entry_ids: np.ndarray  # N
    labels: list[str] = field(default_factory=list)
    watchlists: list[str] = field(default_factory=list)
    thresholds: np.ndarray = field(default_factory=lambda: np.zeros(0, np.float32))  # per template, NaN = default


def decode_image(name: str, data: bytes) -> np.ndarray:
    """Decode an uploaded image defensively: size caps, and a clear refusal for junk."""
    if len(data) > MAX_IMAGE_BYTES:
        raise EnrolmentError(f"{name}: larger than {MAX_IMAGE_BYTES // (1024 * 1024)} MB")
    header = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_REDUCED_GRAYSCALE_8) if data else None
    if header is None:
        raise EnrolmentError(f"{name}: not a readable image")
    if max(header.shape) * 8 > MAX_IMAGE_SIDE:
        raise EnrolmentError(f"{name}: larger than {MAX_IMAGE_SIDE} pixels on a side")
    image = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)
    if image is None:
        raise EnrolmentError(f"{name}: not a readable image")
    return image


def _now() -> datetime:
    return datetime.now(timezone.utc)


class WatchlistService:
    def __init__(self, engine: Engine, actor: str) -> None:
        self.engine = engine
        self.actor = actor
        self.audit = AuditLog(engine)

    def _list(self, session: Session, name: str) -> Watchlist:
        found = session.scalar(select(Watchlist).where(Watchlist.name == name))
        if found is None:
            raise GovernanceError(f"no watchlist named {name!r}")
        return found

    def create_list(
        self, name: str, kind: str, reason: str, threshold: float | None = None, description: str = ""
    ) -> int:
        if kind not in KINDS:
            raise GovernanceError(f"kind must be one of {', '.join(KINDS)}")
        if not re.fullmatch(r"[A-Za-z0-9_.-]{1,128}", name):
            raise GovernanceError("a list name uses letters, digits, '_', '.', '-'")
        if threshold is not None and not -1.0 <= threshold <= 1.0:
            raise GovernanceError("threshold is a cosine similarity between -1 and 1")
        with Session(self.engine) as session, session.begin():
            if session.scalar(select(Watchlist).where(Watchlist.name == name)) is not None:
                raise GovernanceError(f"a watchlist named {name!r} exists already")
            wl = Watchlist(
                name=name, kind=kind, threshold=threshold, description=description, created_by=self.actor,
                created_at=_now(),
            )
            session.add(wl)
            session.flush()
            list_id = wl.id
        self.audit.append(self.actor, "watchlist.create", "watchlist", name, reason, {"kind": kind, "threshold": threshold})
        return list_id

    def _new_entry(self, wl: Watchlist, label: str, governance: Governance, plate: str | None) -> WatchlistEntry:
        now = _now()
        governance.check(now)
        if not label.strip():
            raise GovernanceError("a person or vehicle label is required")
        return WatchlistEntry(
            watchlist_id=wl.id, label=label.strip(), plate=plate, legal_basis=governance.legal_basis.strip(),
            purpose=governance.purpose.strip(), authoriser=governance.authoriser.strip(),
            expires_at=governance.expires_at, created_by=self.actor, created_at=now, updated_at=now,
        )

    def _audit_entry(self, action: str, entry: WatchlistEntry, wl_name: str, reason: str, extra: dict) -> None:
        details = {
            "watchlist": wl_name, "label": entry.label, "legal_basis": entry.legal_basis, "purpose": entry.purpose,
            "authoriser": entry.authoriser, "expires_at": entry.expires_at.isoformat(), **extra,
        }
        self.audit.append(self.actor, action, "watchlist_entry", entry.id, reason, details)

    def add_face_entry(
        self,
        list_name: str,
        label: str,
        images: list[tuple[str, bytes]],
        governance: Governance,
        reason: str,
        enroller: Enroller,
    ) -> int:
        """Enrol a person from 1..n reference images; every image must give one usable face."""
        if not images:
            raise EnrolmentError("at least one reference image is required")
        templates = []
        for name, data in images:
            image = decode_image(name, data)
            try:
                vector, quality = enroller.template(image)
            except EnrolmentError as error:
                raise EnrolmentError(f"{name}: {error}") from None
            templates.append((vector.astype(np.float32), quality, hashlib.sha256(data).hexdigest()))
        with Session(self.engine, expire_on_commit=False) as session, session.begin():
            wl = self._list(session, list_name)
            if wl.kind != "face":
                raise GovernanceError(f"{list_name!r} is a {wl.kind} list")
            entry = self._new_entry(wl, label, governance, None)
            entry.templates = [
                FaceTemplate(vector=v.tobytes(), quality=float(q), image_sha256=h, created_at=entry.created_at)
                for v, q, h in templates
            ]
            session.add(entry)
        self._audit_entry("watchlist.enrol", entry, list_name, reason, {"images_sha256": [t[2] for t in templates]})
        return entry.id

    def add_plate_entry(self, list_name: str, label: str, plate: str, governance: Governance, reason: str) -> int:
        text = normalise_plate(plate)
        if not 2 <= len(text) <= 12:
            raise GovernanceError(f"{plate!r} is not a plate number")
        with Session(self.engine, expire_on_commit=False) as session, session.begin():
            wl = self._list(session, list_name)
            if wl.kind != "plate":
                raise GovernanceError(f"{list_name!r} is a {wl.kind} list")
            entry = self._new_entry(wl, label, governance, text)
            session.add(entry)
        self._audit_entry("watchlist.enrol", entry, list_name, reason, {"plate": text})
        return entry.id

    def _entry(self, session: Session, entry_id: int) -> WatchlistEntry:
        entry = session.get(WatchlistEntry, entry_id, options=[selectinload(WatchlistEntry.watchlist)])
        if entry is None:
            raise GovernanceError(f"no watchlist entry {entry_id}")
        return entry

    def approve(self, entry_id: int, reason: str) -> None:
        """The second pair of eyes: someone other than the author lets the entry match."""
        now = _now()
        with Session(self.engine, expire_on_commit=False) as session, session.begin():
            entry = self._entry(session, entry_id)
            if entry.approved_at is not None:
                raise GovernanceError(f"entry {entry_id} was approved already by {entry.approved_by}")
            if entry.created_by == self.actor:
                raise GovernanceError("four eyes: the author of an entry cannot approve it")
            if entry.expires_at <= now:
                raise GovernanceError(f"entry {entry_id} has expired")
            entry.approved_by, entry.approved_at, entry.updated_at = self.actor, now, now
            name = entry.watchlist.name
        self._audit_entry("watchlist.approve", entry, name, reason, {"approved_by": self.actor})

    def expire(self, entry_id: int, reason: str) -> None:
        """End an entry now; it stops matching at once but stays on record until removed."""
        with Session(self.engine, expire_on_commit=False) as session, session.begin():
            entry = self._entry(session, entry_id)
            entry.expires_at = entry.updated_at = _now()
            name = entry.watchlist.name
        self._audit_entry("watchlist.expire", entry, name, reason, {})

    def remove(self, entry_id: int, reason: str) -> None:
        """Delete an entry with its templates; only the audit record of it remains."""
        with Session(self.engine, expire_on_commit=False) as session, session.begin():
            entry = self._entry(session, entry_id)
            name = entry.watchlist.name
            session.delete(entry)
        self._audit_entry("watchlist.remove", entry, name, reason, {})

    def entries(self, list_name: str | None = None) -> list[EntryView]:
        now = _now()
        with Session(self.engine) as session:
            statement = (
                select(WatchlistEntry, Watchlist, func.count(FaceTemplate.id))
                .join(Watchlist)
                .outerjoin(FaceTemplate)
                .group_by(WatchlistEntry.id, Watchlist.id)
                .order_by(Watchlist.name, WatchlistEntry.id)
            )
            if list_name:
                statement = statement.where(Watchlist.name == list_name)
            rows = session.execute(statement).all()
        return [
            EntryView(
                e.id, w.name, w.kind, e.label, e.plate, e.legal_basis, e.purpose, e.authoriser, e.expires_at,
                e.created_by, e.approved_by, n, e.is_active(now),
            )
            for e, w, n in rows
        ]

    def lists(self) -> list[Watchlist]:
        with Session(self.engine) as session:
            return list(session.scalars(select(Watchlist).order_by(Watchlist.name)))

    def revision(self) -> tuple:
        """Changes whenever what may match changes (an edit, or the next expiry passing)."""
        now = _now()
        with Session(self.engine) as session:
            count, last = session.execute(select(func.count(WatchlistEntry.id), func.max(WatchlistEntry.updated_at))).one()
            next_expiry = session.scalar(
                select(func.min(WatchlistEntry.expires_at)).where(WatchlistEntry.expires_at > now)
            )
        return (count, last, next_expiry)

    def face_gallery(self, now: datetime | None = None) -> FaceGallery:
        """Templates of active entries only: expired entries are simply not here."""
        now = now or _now()
        with Session(self.engine) as session:
            rows = session.execute(
                select(FaceTemplate.vector, WatchlistEntry.id, WatchlistEntry.label, Watchlist.name, Watchlist.threshold)
                .join(WatchlistEntry, FaceTemplate.entry_id == WatchlistEntry.id)
                .join(Watchlist)
                .where(
                    WatchlistEntry.expires_at > now,
                    WatchlistEntry.approved_at.is_not(None),
                    Watchlist.kind == "face",
                )
                .order_by(FaceTemplate.id)
            ).all()
        if not rows:
            return FaceGallery(np.zeros((0, 0), np.float32), np.zeros(0, np.int64))
        return FaceGallery(
            vectors=np.stack([np.frombuffer(r[0], np.float32) for r in rows]),
            entry_ids=np.array([r[1] for r in rows], np.int64),
            labels=[r[2] for r in rows],
            watchlists=[r[3] for r in rows],
            thresholds=np.array([np.nan if r[4] is None else r[4] for r in rows], np.float32),
        )

    def active_plates(self, now: datetime | None = None) -> dict[str, list[EntryView]]:
        """Approved, unexpired plate entries by :func:`~safecity.records.plate_key`."""
        now = now or _now()
        found: dict[str, list[EntryView]] = {}
        for view in self.entries():
            if view.kind == "plate" and view.active and view.expires_at > now and view.plate:  # active = approved
                found.setdefault(plate_key(view.plate), []).append(view)
        return found
