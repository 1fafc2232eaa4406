"""Users (admin) and the audit log (auditor) over the API.

There is deliberately no route that changes or deletes an audit record. Reading the
log is itself audited, so an auditor's own look-ups are on record as well.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, HTTPException, Query, Request
from pydantic import BaseModel, Field
from sqlalchemy import select
from sqlalchemy.orm import Session

from safecity.api.context import AppContext, required_reason, stated_reason
from safecity.governance.audit import AuditRecord
from safecity.governance.users import ROLES, Permission, Principal, UserError, UserService


class UserOut(BaseModel):
    name: str
    role: str
    active: bool
    created_by: str


class UserIn(BaseModel):
    name: str = Field(max_length=64)
    role: str = Field(description=f"one of {', '.join(ROLES)}")
    password: str = Field(max_length=1024)
    reason: str = Field(max_length=500)


class UserPatch(BaseModel):
    role: str | None = None
    active: bool | None = None
    password: str | None = Field(None, max_length=1024)
    reason: str = Field(max_length=500)


class AuditOut(BaseModel):
    seq: int
    ts: str
    actor: str
    action: str
    object_type: str
    object_id: str
    reason: str
    details: dict[str, Any]
    hash: str


class AuditPage(BaseModel):
    items: list[AuditOut]
    next_before: int | None


class VerifyOut(BaseModel):
    ok: bool
    records: int
    first_bad_seq: int | None
    problem: str | None


def user_service(ctx: AppContext, principal: Principal) -> UserService:
    return ctx.users.as_actor(principal.actor)


def user_change(action) -> None:
    try:
        action()
    except UserError as error:
        raise HTTPException(404 if str(error).startswith("no user") else 400, str(error)) from None


def patch_user(svc: UserService, name: str, patch: UserPatch, reason: str) -> None:
    if patch.role is not None:
        user_change(lambda: svc.set_role(name, patch.role, reason))
    if patch.active is not None:
        user_change(lambda: svc.set_active(name, patch.active, reason))
    if patch.password is not None:
        user_change(lambda: svc.set_password(name, patch.password, reason))


def audit_records(
    ctx: AppContext, before: int | None, limit: int, action: str | None, actor: str | None
) -> tuple[list[AuditRecord], int | None]:
    """Newest first, ``limit`` at a time, optionally filtered by action prefix and actor."""
    statement = select(AuditRecord).order_by(AuditRecord.seq.desc()).limit(limit)
    if before is not None:
        statement = statement.where(AuditRecord.seq < before)
    if action:
        statement = statement.where(AuditRecord.action.startswith(action, autoescape=True))
    if actor:
        statement = statement.where(AuditRecord.actor == actor)
    with Session(ctx.store.engine) as session:
        rows = list(session.scalars(statement).all())
    return rows, (rows[-1].seq if len(rows) == limit else None)


def admin_router(ctx: AppContext) -> APIRouter:
    router = APIRouter(prefix="/api")
    need = ctx.auth.require

    @router.get("/users", response_model=list[UserOut], tags=["users"])
    def list_users(principal: Principal = Depends(need(Permission.USERS_READ))) -> list[UserOut]:
        """Every user with role and state (never a password hash)."""
        return [UserOut(name=u.name, role=u.role, active=u.active, created_by=u.created_by) for u in ctx.users.users()]

    @router.post("/users", response_model=UserOut, status_code=201, tags=["users"])
    def add_user(body: UserIn, principal: Principal = Depends(need(Permission.USERS_MANAGE))) -> UserOut:
        """Create a user. Audited."""
        reason = required_reason(body.reason)
        user_change(lambda: user_service(ctx, principal).add(body.name, body.role, body.password, reason))
        return UserOut(name=body.name, role=body.role, active=True, created_by=principal.actor)

    @router.patch("/users/{name}", status_code=204, tags=["users"])
    def change_user(name: str, body: UserPatch, principal: Principal = Depends(need(Permission.USERS_MANAGE))) -> None:
        """Change role, enable or disable, or reset the password; the user's sessions end. Audited."""
        patch_user(user_service(ctx, principal), name, body, required_reason(body.reason))

    @router.get("/audit", response_model=AuditPage, tags=["audit"])
    def read_audit(
        request: Request,
        before: int | None = Query(None, ge=1, description="records with seq below this (next page)"),
        limit: int = Query(100, ge=1, le=1000),
        action: str | None = Query(None, description="action prefix, e.g. media.view or user."),
        actor: str | None = None,
        principal: Principal = Depends(need(Permission.AUDIT_READ)),
    ) -> AuditPage:
        """Audit records, newest first. Reading is itself audited."""
        rows, next_before = audit_records(ctx, before, limit, action, actor)
        details = {"before": before, "action": action, "actor": actor, "records": len(rows)}
        ctx.audit.append(principal.actor, "audit.read", "audit_log", "*", stated_reason(request), details)
        items = [AuditOut(**{**r.as_dict()}) for r in rows]
        return AuditPage(items=items, next_before=next_before)

    @router.get("/audit/verify", response_model=VerifyOut, tags=["audit"])
    def verify_audit(principal: Principal = Depends(need(Permission.AUDIT_READ))) -> VerifyOut:
        """Walk the whole hash chain and name the first bad record, if any."""
        result = ctx.audit.verify()
        return VerifyOut(ok=result.ok, records=result.records, first_bad_seq=result.first_bad_seq, problem=result.problem)

    return router
