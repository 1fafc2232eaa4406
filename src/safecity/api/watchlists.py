"""Watchlists and plate lists over the API, with every governance field required.

The rules live in :class:`~safecity.governance.watchlists.WatchlistService`; these
routes only check the role, collect the reason and turn a refused rule into a 400.
Reading the lists is audited too: who is on a watchlist is itself sensitive.
"""

from __future__ import annotations

from datetime import datetime, timezone

from fastapi import APIRouter, Depends, HTTPException, Request
from pydantic import BaseModel, Field
from starlette.concurrency import run_in_threadpool

from safecity.api.context import AppContext, required_reason, stated_reason
from safecity.api.openapi import multipart_schema
from safecity.api.uploads import UploadRefused, check_images, face_enroller, read_form
from safecity.governance.users import Permission, Principal
from safecity.governance.watchlists import EntryView, Governance, GovernanceError, WatchlistService


class ListOut(BaseModel):
    id: int
    name: str
    kind: str
    threshold: float | None
    description: str
    created_by: str
    created_at: datetime


class Watchlists(BaseModel):
    lists: list[ListOut]
    entries: list[EntryView]


class ListIn(BaseModel):
    name: str = Field(max_length=128)
    kind: str = Field(pattern="^(face|plate)$")
    threshold: float | None = None
    description: str = Field("", max_length=2000)
    reason: str = Field(max_length=500)


class GovernanceIn(BaseModel):
    label: str = Field(max_length=256)
    legal_basis: str = Field(max_length=2000)
    purpose: str = Field(max_length=2000)
    authoriser: str = Field(max_length=256)
    expires_at: datetime = Field(description="UTC if no time zone is given")
    reason: str = Field(max_length=500)

    def governance(self) -> Governance:
        return governance(self.legal_basis, self.purpose, self.authoriser, self.expires_at)


class PlateIn(GovernanceIn):
    plate: str = Field(max_length=32)


class ReasonIn(BaseModel):
    reason: str = Field(max_length=500)


class Created(BaseModel):
    id: int


def governance(legal_basis: str, purpose: str, authoriser: str, expires_at: datetime) -> Governance:
    if expires_at.tzinfo is None:
        expires_at = expires_at.replace(tzinfo=timezone.utc)
    return Governance(legal_basis, purpose, authoriser, expires_at)


def service(ctx: AppContext, principal: Principal) -> WatchlistService:
    return WatchlistService(ctx.store.engine, principal.actor)


def governed(action):
    """Run a watchlist change; a refused rule becomes a 400 (404 for an unknown list or entry)."""
    try:
        return action()
    except GovernanceError as error:
        raise HTTPException(404 if str(error).startswith("no ") else 400, str(error)) from None


def read_watchlists(ctx: AppContext, principal: Principal, reason: str) -> Watchlists:
    svc = service(ctx, principal)
    lists = [
        ListOut(
            id=w.id, name=w.name, kind=w.kind, threshold=w.threshold, description=w.description,
            created_by=w.created_by, created_at=w.created_at,
        )
        for w in svc.lists()
    ]
    entries = svc.entries()
    ctx.audit.append(principal.actor, "watchlist.read", "watchlist", "*", reason, {"entries": len(entries)})
    return Watchlists(lists=lists, entries=entries)


def watchlists_router(ctx: AppContext) -> APIRouter:
    router = APIRouter(prefix="/api/watchlists", tags=["watchlists"])
    need = ctx.auth.require

    @router.get("", response_model=Watchlists)
    def get_watchlists(request: Request, principal: Principal = Depends(need(Permission.WATCHLISTS_READ))) -> Watchlists:
        """Every list and entry with its governance fields. Reading is audited."""
        return read_watchlists(ctx, principal, stated_reason(request))

    @router.post("", response_model=Created, status_code=201)
    def create_list(body: ListIn, principal: Principal = Depends(need(Permission.WATCHLISTS_MANAGE))) -> Created:
        """Create a face watchlist or a plate list."""
        reason = required_reason(body.reason)
        svc = service(ctx, principal)
        return Created(id=governed(lambda: svc.create_list(body.name, body.kind, reason, body.threshold, body.description)))

    @router.post("/{name}/plates", response_model=Created, status_code=201)
    def add_plate(name: str, body: PlateIn, principal: Principal = Depends(need(Permission.WATCHLISTS_PROPOSE))) -> Created:
        """Add a plate; legal basis, purpose, authoriser, expiry and reason are all required."""
        reason = required_reason(body.reason)
        svc = service(ctx, principal)
        return Created(id=governed(lambda: svc.add_plate_entry(name, body.label, body.plate, body.governance(), reason)))

    @router.post(
        "/{name}/faces",
        response_model=Created,
        status_code=201,
        openapi_extra=multipart_schema(
            required=("label", "legal_basis", "purpose", "authoriser", "expires_at", "reason", "images"),
            strings=("label", "legal_basis", "purpose", "authoriser", "reason"),
            datetimes=("expires_at",),
            files=("images",),
        ),
    )
    async def add_face(
        name: str, request: Request, principal: Principal = Depends(need(Permission.WATCHLISTS_PROPOSE))
    ) -> Created:
        """Enrol a person from 1 to 5 reference images (multipart). Hostile uploads get a 4xx."""
        try:
            fields, images = await read_form(request)
            check_images(images)
        except UploadRefused as refused:
            raise HTTPException(refused.status, refused.message) from None
        return await run_in_threadpool(_enrol_api, ctx, principal, name, fields, images)

    @router.post("/entries/{entry_id}/approve", status_code=204)
    def approve(entry_id: int, body: ReasonIn, principal: Principal = Depends(need(Permission.WATCHLISTS_APPROVE))) -> None:
        """Four eyes: someone other than the entry's author lets it match."""
        reason = required_reason(body.reason)
        governed(lambda: service(ctx, principal).approve(entry_id, reason))

    @router.post("/entries/{entry_id}/expire", status_code=204)
    def expire(entry_id: int, body: ReasonIn, principal: Principal = Depends(need(Permission.WATCHLISTS_EXPIRE))) -> None:
        """End an entry now: it stops matching at once."""
        reason = required_reason(body.reason)
        governed(lambda: service(ctx, principal).expire(entry_id, reason))

    @router.delete("/entries/{entry_id}", status_code=204)
    def remove(entry_id: int, request: Request, principal: Principal = Depends(need(Permission.WATCHLISTS_MANAGE))) -> None:
        """Delete an entry and its templates (``X-Reason`` required; the audit record remains)."""
        reason = required_reason(stated_reason(request))
        governed(lambda: service(ctx, principal).remove(entry_id, reason))

    return router


def _enrol_api(ctx: AppContext, principal: Principal, name: str, fields: dict[str, str], images) -> Created:
    try:
        return Created(id=enrol_face(ctx, principal, name, fields, images))
    except UploadRefused as refused:
        raise HTTPException(refused.status, refused.message) from None


def enrol_face(ctx: AppContext, principal: Principal, list_name: str, fields: dict[str, str], images) -> int:
    """Enrol from already-read, already-checked form fields and images; UploadRefused if refused."""
    try:
        expires = datetime.fromisoformat((fields.get("expires_at") or fields.get("expires") or "").strip())
    except ValueError:
        raise UploadRefused(400, "expiry must be a date (YYYY-MM-DD)") from None
    reason = fields.get("reason", "").strip()
    if len(reason) < 3:
        raise UploadRefused(400, "state a reason: it is written to the audit log")
    rules = governance(fields.get("legal_basis", ""), fields.get("purpose", ""), fields.get("authoriser", ""), expires)
    svc = service(ctx, principal)
    kinds = {w.name: w.kind for w in svc.lists()}
    if list_name not in kinds:
        raise UploadRefused(404, f"no watchlist named {list_name!r}")
    if kinds[list_name] != "face":
        raise UploadRefused(400, f"{list_name!r} is a {kinds[list_name]} list")
    try:
        rules.check(datetime.now(rules.expires_at.tzinfo))
    except GovernanceError as error:
        raise UploadRefused(400, str(error)) from None
    enroller = face_enroller()
    try:
        return svc.add_face_entry(list_name, fields.get("label", ""), images, rules, reason, enroller)
    except GovernanceError as error:
        raise UploadRefused(400, str(error)) from None
