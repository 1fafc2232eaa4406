"""Access terminals over the API: sites, consented enrolments, challenges, verification, sync.

Two kinds of caller:

* people (``terminal.read``, ``terminal.enrol``, ``terminal.manage``) manage sites and
  enrolments under ``/api/terminal/sites``;
* terminal devices (role ``terminal``, permission ``terminal.device``) use
  ``/api/terminal/{site}/…``: a thin device asks for a challenge
  (``POST …/challenge``) and sends the burst of JPEG frames it captured while the
  person did it (``POST …/verify``, multipart); an offline-first device fetches its
  site's copy (``GET …/snapshot``) and uploads the decisions it made
  (``POST …/decisions``, idempotent by event key).

The rules live in :mod:`safecity.terminal.service`; every decision becomes a door
event and an audit record. A denial is an answer (200 with ``granted: false`` and the
reason), never a 403: 403 only ever means the caller's role lacks the permission.
"""

from __future__ import annotations

import secrets
import threading
import time
from datetime import datetime, timezone
from typing import Any

import numpy as np
from fastapi import APIRouter, Depends, HTTPException, Request
from pydantic import BaseModel, Field
from sqlalchemy import update
from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import UploadFile

from safecity.api.context import AppContext, required_reason, stated_reason
from safecity.api.openapi import multipart_schema
from safecity.api.uploads import MAX_UPLOAD_BYTES, safe_name
from safecity.governance.users import Permission, Principal
from safecity.governance.watchlists import GovernanceError, decode_image
from safecity.terminal.decisions import Decision, badge_digest, check_name
from safecity.terminal.liveness import ACTIONS
from safecity.terminal.models import TerminalChallenge
from safecity.terminal.service import (
    Consent,
    EnrolmentView,
    FaceEnroller,
    SiteView,
    TerminalError,
    TerminalService,
    clear_challenges,
)
from safecity.terminal.verify import MAX_FRAMES, decide

UPLOAD_GRACE = 5.0  # seconds a verification may arrive after the challenge's time limit
MAX_FRAME_BYTES = 2 * 1024 * 1024
MAX_DECISIONS = 500


class SiteIn(BaseModel):
    name: str = Field(max_length=64)
    description: str = Field("", max_length=2000)
    settings: dict[str, Any] = Field(default_factory=dict)
    reason: str = Field(max_length=500)


class SettingsIn(BaseModel):
    settings: dict[str, Any]
    reason: str = Field(max_length=500)


class UnlockIn(BaseModel):
    terminal: str | None = Field(None, max_length=64)
    badge: str | None = Field(None, max_length=128)
    reason: str = Field(max_length=500)


class ChallengeIn(BaseModel):
    terminal: str = Field(max_length=64)
    badge: str = Field(max_length=128)


class DecisionOut(BaseModel):
    decision_id: str
    key: str
    granted: bool
    code: str
    reason: str
    score: float | None = None
    threshold: float | None = None
    required: list[str] = Field(default_factory=list)
    liveness: dict[str, Any] | None = None


class ChallengeOut(BaseModel):
    challenge_id: str | None = None
    actions: list[str] = Field(default_factory=list)
    prompts: list[str] = Field(default_factory=list)
    time_limit: float | None = None
    expires_at: float | None = None
    refused: DecisionOut | None = None  # set when the badge or terminal is locked out


class DecisionsIn(BaseModel):
    decisions: list[dict[str, Any]] = Field(max_length=MAX_DECISIONS)


class Stored(BaseModel):
    stored: list[str]
    new: int


class Created(BaseModel):
    id: int


def decision_out(d: Decision) -> DecisionOut:
    return DecisionOut(
        decision_id=d.id, key=d.key, granted=d.granted, code=d.code, reason=d.reason, score=d.score,
        threshold=d.threshold, required=list(d.required), liveness=d.liveness,
    )


def refused(action):
    """Run a terminal change; a refused rule becomes a 400 (404 for an unknown site or enrolment)."""
    try:
        return action()
    except (TerminalError, GovernanceError, ValueError) as error:
        raise HTTPException(404 if str(error).startswith("no ") else 400, str(error)) from None


def terminal_router(ctx: AppContext) -> APIRouter:
    router = APIRouter(prefix="/api/terminal", tags=["terminal"])
    need = ctx.auth.require
    models: dict[str, Any] = {}
    models_lock = threading.RLock()

    def verifier():
        with models_lock:
            if "verifier" not in models:
                from safecity.terminal.verify import Verifier

                models["verifier"] = Verifier()
            return models["verifier"]

    def enroller():
        with models_lock:
            if "enroller" not in models:
                models["enroller"] = FaceEnroller(verifier().pipeline)
            return models["enroller"]

    def service(principal: Principal) -> TerminalService:
        return TerminalService(ctx.store.engine, principal.actor)

    # --- people: sites and enrolments ---------------------------------------------

    @router.get("/sites", response_model=list[SiteView])
    def list_sites(principal: Principal = Depends(need(Permission.TERMINAL_READ))) -> list[SiteView]:
        """Terminal sites with their settings and number of enrolments."""
        return service(principal).sites()

    @router.post("/sites", response_model=Created, status_code=201)
    def create_site(body: SiteIn, principal: Principal = Depends(need(Permission.TERMINAL_MANAGE))) -> Created:
        """Create a site (its settings default to the measured ones, docs/terminal.md)."""
        reason = required_reason(body.reason)
        return Created(id=refused(lambda: service(principal).create_site(body.name, reason, body.description, body.settings)))

    @router.patch("/sites/{site}", response_model=SiteView)
    def change_settings(site: str, body: SettingsIn, principal: Principal = Depends(need(Permission.TERMINAL_MANAGE))) -> SiteView:
        """Change settings; the audit record holds every changed value before and after."""
        reason = required_reason(body.reason)
        svc = service(principal)
        refused(lambda: svc.update_settings(site, body.settings, reason))
        return svc.site(site)

    @router.get("/sites/{site}/enrolments", response_model=list[EnrolmentView])
    def list_enrolments(site: str, request: Request, principal: Principal = Depends(need(Permission.TERMINAL_READ))) -> list[EnrolmentView]:
        """Who is enrolled at the site, with the consent record (never templates). Reading is audited."""
        return refused(lambda: service(principal).enrolments(site, stated_reason(request)))

    @router.post(
        "/sites/{site}/enrolments",
        response_model=Created,
        status_code=201,
        openapi_extra=multipart_schema(
            required=("badge", "label", "consent_subject", "consent_at", "consent_method", "reason", "images"),
            strings=("badge", "label", "consent_subject", "consent_method", "consent_reference", "reason"),
            datetimes=("consent_at", "expires_at"),
            files=("images",),
        ),
    )
    async def enrol(site: str, request: Request, principal: Principal = Depends(need(Permission.TERMINAL_ENROL))) -> Created:
        """Enrol a consenting person from 1 to 5 photos; the consent record (who, when, how) is required."""
        fields, images = await read_multipart(request, max_files=5)
        reason = fields.get("reason", "").strip()
        if len(reason) < 3:
            raise HTTPException(400, "state a reason: it is written to the audit log")
        consent = Consent(
            fields.get("consent_subject", ""), _when(fields.get("consent_at", ""), "consent_at"),
            fields.get("consent_method", ""), fields.get("consent_reference", ""),
        )
        expires = _when(fields["expires_at"], "expires_at") if fields.get("expires_at") else None

        def work() -> int:
            return service(principal).enrol(
                site, fields.get("badge", ""), fields.get("label", ""), consent, images, reason, enroller(), expires
            )

        return Created(id=await run_in_threadpool(refused, work))

    @router.delete("/sites/{site}/enrolments/{enrolment_id}", status_code=204)
    def withdraw(site: str, enrolment_id: int, request: Request, principal: Principal = Depends(need(Permission.TERMINAL_ENROL))) -> None:
        """Consent withdrawn: delete the enrolment and its templates now (``X-Reason`` required)."""
        reason = required_reason(stated_reason(request))
        refused(lambda: service(principal).withdraw(site, enrolment_id, reason))

    @router.post("/sites/{site}/unlock", status_code=204)
    def unlock(site: str, body: UnlockIn, principal: Principal = Depends(need(Permission.TERMINAL_MANAGE))) -> None:
        """Lift a lockout of one badge, one terminal, or (neither given) the whole site."""
        reason = required_reason(body.reason)
        refused(lambda: service(principal).unlock(site, reason, body.terminal, body.badge))

    # --- devices: challenge and verify (thin terminals) ----------------------------

    @router.post("/{site}/challenge", response_model=ChallengeOut)
    def challenge(site: str, body: ChallengeIn, principal: Principal = Depends(need(Permission.TERMINAL_DEVICE))) -> ChallengeOut:
        """A random, single-use challenge for this badge at this terminal (refused while locked out)."""
        svc = service(principal)
        view = refused(lambda: svc.site(site))
        digest = refused(lambda: (check_name("terminal", body.terminal), badge_digest(site, body.badge))[1])
        now = time.time()
        lock = svc.refusal(site, body.terminal, digest, now)
        if lock is not None:
            decision = Decision(site, body.terminal, digest, False, lock[0], lock[1], now, source="central")
            svc.record([decision], ctx.store, ctx.bus)
            return ChallengeOut(refused=decision_out(decision))
        rules = view.settings.rules()
        actions = list(rules.challenge())
        row = TerminalChallenge(
            id=secrets.token_hex(16), site_id=view.id, terminal=body.terminal, badge_digest=digest, actions=actions,
            issued_at=now, expires_at=now + rules.time_limit + UPLOAD_GRACE,
        )
        clear_challenges(ctx.store.engine, now - 3600)
        with Session(ctx.store.engine, expire_on_commit=False) as session, session.begin():
            session.add(row)
        return ChallengeOut(
            challenge_id=row.id, actions=actions, prompts=[ACTIONS[a] for a in actions], time_limit=rules.time_limit,
            expires_at=row.expires_at,
        )

    @router.post(
        "/{site}/verify",
        response_model=DecisionOut,
        openapi_extra=multipart_schema(
            required=("challenge_id", "badge", "terminal", "frames"),
            strings=("challenge_id", "badge", "terminal", "ts"),
            files=("frames",),
            descriptions={"ts": "capture times in seconds, comma-separated, one per frame"},
        ),
    )
    async def verify(site: str, request: Request, principal: Principal = Depends(need(Permission.TERMINAL_DEVICE))) -> DecisionOut:
        """Judge a burst of JPEG frames against the challenge and the badge's enrolment; the decision is stored."""
        fields, frames = await read_multipart(request, max_files=MAX_FRAMES, max_file_bytes=MAX_FRAME_BYTES)
        return await run_in_threadpool(_verify, site, principal, fields, frames)

    def _verify(site: str, principal: Principal, fields: dict[str, str], frames: list[tuple[str, bytes]]) -> DecisionOut:
        svc = service(principal)
        view = refused(lambda: svc.site(site))
        terminal = fields.get("terminal", "")
        digest = refused(lambda: (check_name("terminal", terminal), badge_digest(site, fields.get("badge", "")))[1])
        now = time.time()
        with Session(ctx.store.engine) as session, session.begin():
            row = session.get(TerminalChallenge, fields.get("challenge_id", ""))
            if row is None or row.site_id != view.id or row.terminal != terminal or row.badge_digest != digest:
                raise HTTPException(404, "no such challenge for this badge at this terminal")
            used = session.execute(
                update(TerminalChallenge)
                .where(TerminalChallenge.id == row.id, TerminalChallenge.used_at.is_(None))
                .values(used_at=now)
            ).rowcount
            if not used:
                raise HTTPException(409, "this challenge was used already: ask for a new one")
            required, expires_at = list(row.actions), row.expires_at
        base = dict(site=site, terminal=terminal, badge_digest=digest, decided_at=now, source="central",
                    required=required, threshold=view.settings.threshold)

        def record(decision: Decision) -> DecisionOut:
            svc.record([decision], ctx.store, ctx.bus)
            return decision_out(decision)

        if now > expires_at:
            return record(Decision(granted=False, code="challenge_expired", reason="the challenge's time limit passed", **base))
        lock = svc.refusal(site, terminal, digest, now)
        if lock is not None:
            return record(Decision(granted=False, code=lock[0], reason=lock[1], **base))
        holder = svc.holder(site, digest)
        if holder is None:
            return record(Decision(granted=False, code="unknown_badge", reason="this badge is not enrolled at this site", **base))
        more = {"enrolment_id": holder.enrolment_id, "label": holder.label}
        if holder.expires_at is not None and holder.expires_at <= datetime.now(timezone.utc):
            return record(Decision(granted=False, code="enrolment_expired", reason="this enrolment has expired", **base, **more))
        if not frames:
            raise HTTPException(400, "send the captured frames (JPEG) as 'frames'")
        images = []
        for name, data in frames:
            try:
                images.append(decode_image(name, data))
            except GovernanceError as error:
                raise HTTPException(400, str(error)) from None
        times = _times(fields.get("ts", ""), len(images))
        settings = view.settings
        seen = verifier().observe(list(zip(times, images)))
        verdict = decide(seen, holder.templates, required, settings.rules(), settings.threshold, settings.continuity)
        return record(Decision(
            granted=verdict.granted, code=verdict.code, reason=verdict.reason, score=verdict.score,
            liveness=verdict.liveness.as_dict() if verdict.liveness else None, **base, **more,
        ))

    # --- devices: offline copy and decision upload ---------------------------------

    @router.get("/{site}/snapshot")
    def snapshot(site: str, terminal: str, principal: Principal = Depends(need(Permission.TERMINAL_DEVICE))) -> dict[str, Any]:
        """The site's settings and consented templates for the terminal's offline copy (audited)."""
        refused(lambda: check_name("terminal", terminal))
        return refused(lambda: service(principal).snapshot(site, terminal))

    @router.post("/{site}/decisions", response_model=Stored)
    def upload(site: str, body: DecisionsIn, principal: Principal = Depends(need(Permission.TERMINAL_DEVICE))) -> Stored:
        """Store decisions a terminal made (online or offline) as door events; a repeated upload stores nothing twice."""
        try:
            decisions = [Decision.from_dict(d) for d in body.decisions]
        except (TypeError, ValueError) as error:
            raise HTTPException(400, f"a decision could not be read: {error}") from None
        if any(d.site != site for d in decisions):
            raise HTTPException(400, f"every decision must belong to site {site!r}")
        for d in decisions:
            d.source = "terminal"
        svc = service(principal)
        refused(lambda: svc.site(site))
        keys, new = refused(lambda: svc.record(decisions, ctx.store, ctx.bus))
        return Stored(stored=keys, new=new)

    return router


def _when(text: str, name: str) -> datetime:
    try:
        when = datetime.fromisoformat(text.strip())
    except ValueError:
        raise HTTPException(400, f"{name} must be a date and time (ISO 8601)") from None
    return when if when.tzinfo else when.replace(tzinfo=timezone.utc)


def _times(text: str, n: int) -> list[float]:
    """Capture times from the ``ts`` field, or 5 frames a second when not given."""
    if not text.strip():
        return [i * 0.2 for i in range(n)]
    try:
        values = [float(v) for v in text.split(",")]
    except ValueError:
        raise HTTPException(400, "ts must be numbers separated by commas") from None
    if len(values) != n or not all(np.isfinite(values)):
        raise HTTPException(400, f"ts must give one capture time per frame ({n})")
    return values


async def read_multipart(request: Request, max_files: int, max_file_bytes: int = 20 * 1024 * 1024) -> tuple[dict[str, str], list[tuple[str, bytes]]]:
    """Form fields and files within the limits (declared size first, then counts, then each file)."""
    declared = request.headers.get("content-length")
    if declared is None or not declared.isdigit():
        raise HTTPException(411, "the upload must declare its size (Content-Length)")
    if int(declared) > MAX_UPLOAD_BYTES:
        raise HTTPException(413, f"the upload is larger than {MAX_UPLOAD_BYTES // (1024 * 1024)} MB in all")
    try:
        form = await request.form(max_files=max_files, max_fields=20, max_part_size=4096)
    except Exception as error:
        raise HTTPException(400, f"the upload could not be read: {getattr(error, 'detail', error)}") from None
    fields: dict[str, str] = {}
    files: list[tuple[str, bytes]] = []
    try:
        for key, value in form.multi_items():
            if isinstance(value, UploadFile):
                data = await value.read(max_file_bytes + 1)
                if len(data) > max_file_bytes:
                    raise HTTPException(413, f"{safe_name(value.filename)}: larger than {max_file_bytes // (1024 * 1024)} MB")
                if data:
                    files.append((safe_name(value.filename), data))
            else:
                fields[key] = str(value)
    finally:
        await form.close()
    return fields, files

