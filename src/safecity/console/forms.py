"""Console forms (POST): sign-in, unredacted view, watchlist and user changes.

Every form goes through the same services and rules as the API; a refused rule comes
back as a one-line error on the page it came from, never as a traceback.
"""

from __future__ import annotations

import base64
from datetime import datetime

from fastapi import APIRouter, Depends, Form, HTTPException, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from starlette.concurrency import run_in_threadpool

from safecity.api.account import LoginRefused, sign_in, sign_out
from safecity.api.auth import COOKIE, client_address, same_origin
from safecity.api.context import AppContext
from safecity.api.events import get_row, review_event, snapshot_image
from safecity.api.media import encode_jpeg
from safecity.api.uploads import UploadRefused, check_images, read_form
from safecity.api.watchlists import enrol_face, governance, service
from safecity.console.render import back, home_for, render
from safecity.governance.users import SESSION_HOURS, Permission, Principal, UserError
from safecity.governance.watchlists import GovernanceError


def _safe_next(url: str) -> str:
    """Only local paths: a sign-in link must not bounce the user to another site."""
    return url if url.startswith("/") and not url.startswith("//") and "\\" not in url else ""


def forms_router(ctx: AppContext) -> APIRouter:
    router = APIRouter(include_in_schema=False)
    need = ctx.auth.require

    @router.get("/login", response_class=HTMLResponse)
    def login_page(request: Request) -> HTMLResponse:
        return render(request, "login.html", None, next=_safe_next(request.query_params.get("next", "")))

    @router.post("/login", response_class=HTMLResponse)
    def login(
        request: Request,
        name: str = Form(..., max_length=64),
        password: str = Form(..., max_length=1024),
        next: str = Form(""),
    ) -> Response:
        if request.headers.get("origin") and not same_origin(request):
            return render(request, "login.html", None, status=403, next="", failure="Sign-in refused: wrong origin.")
        try:
            token, principal = sign_in(ctx, name, password, client_address(request), "console")
        except LoginRefused as refused:
            response = render(request, "login.html", None, status=refused.status, next=_safe_next(next), failure=refused.message, name=name)
            if refused.retry_after:
                response.headers["Retry-After"] = str(refused.retry_after)
            return response
        response = RedirectResponse(_safe_next(next) or home_for(principal), status_code=303)
        response.set_cookie(
            COOKIE, token, max_age=SESSION_HOURS * 3600, httponly=True, samesite="strict", secure=ctx.auth.secure(request), path="/"
        )
        return response

    @router.post("/logout")
    def logout(request: Request, principal: Principal = Depends(need(Permission.ACCOUNT))) -> RedirectResponse:
        sign_out(ctx, principal)
        response = RedirectResponse("/login?msg=Signed+out.", status_code=303)
        response.delete_cookie(COOKIE, path="/")
        return response

    @router.post("/events/{event_id}/original", response_class=HTMLResponse)
    def original(
        event_id: int,
        request: Request,
        reason: str = Form("", max_length=500),
        principal: Principal = Depends(need(Permission.MEDIA_UNREDACTED)),
    ) -> HTMLResponse:
        row = get_row(ctx, event_id)
        if len(reason.strip()) < 3:
            return render(request, "event.html", principal, status=400, row=row, reason="", original=None,
                          unredact_error="State a reason: an unredacted view is written to the audit log.")
        data = encode_jpeg(snapshot_image(ctx, row))
        record = ctx.audit.append(
            principal.actor, "media.view", "event", event_id, reason.strip(), {"file": row.snapshot, "redacted": False}
        )
        original = "data:image/jpeg;base64," + base64.b64encode(data).decode()
        return render(request, "event.html", principal, row=row, reason=reason.strip(), original=original, audit_seq=record.seq)

    @router.post("/events/{event_id}/review")
    def review(
        event_id: int,
        decision: str = Form(...),
        note: str = Form("", max_length=2000),
        principal: Principal = Depends(need(Permission.ALERTS_REVIEW)),
    ) -> RedirectResponse:
        try:
            review_event(ctx, principal, event_id, decision, note)
        except HTTPException as error:
            return back(f"/events/{event_id}", error=str(error.detail))
        return back(f"/events/{event_id}", msg=f"Alert {decision}.")

    # --- watchlists ----------------------------------------------------------------

    @router.post("/watchlists")
    def create_list(
        name: str = Form(..., max_length=128),
        kind: str = Form(...),
        description: str = Form("", max_length=2000),
        threshold: str = Form(""),
        reason: str = Form("", max_length=500),
        principal: Principal = Depends(need(Permission.WATCHLISTS_MANAGE)),
    ) -> RedirectResponse:
        try:
            value = float(threshold) if threshold.strip() else None
            service(ctx, principal).create_list(name.strip(), kind, _reason(reason), value, description)
        except (GovernanceError, ValueError) as error:
            return back("/watchlists", error=str(error))
        return back("/watchlists", msg=f"Created {kind} list {name.strip()}.")

    @router.post("/watchlists/{list_name}/plates")
    def add_plate(
        list_name: str,
        label: str = Form("", max_length=256),
        plate: str = Form("", max_length=32),
        legal_basis: str = Form("", max_length=2000),
        purpose: str = Form("", max_length=2000),
        authoriser: str = Form("", max_length=256),
        expires_at: str = Form(""),
        reason: str = Form("", max_length=500),
        principal: Principal = Depends(need(Permission.WATCHLISTS_PROPOSE)),
    ) -> RedirectResponse:
        try:
            rules = governance(legal_basis, purpose, authoriser, _expiry(expires_at))
            entry = service(ctx, principal).add_plate_entry(list_name, label, plate, rules, _reason(reason))
        except (GovernanceError, ValueError) as error:
            return back("/watchlists", error=str(error))
        return back("/watchlists", msg=f"Added entry {entry} to {list_name}.")

    @router.post("/watchlists/{list_name}/faces")
    async def add_face(
        list_name: str, request: Request, principal: Principal = Depends(need(Permission.WATCHLISTS_PROPOSE))
    ) -> RedirectResponse:
        try:
            fields, images = await read_form(request)
            check_images(images)
            if fields.get("expires_at") and len(fields["expires_at"]) == 10:
                fields["expires_at"] += "T23:59:59+00:00"
            entry = await run_in_threadpool(enrol_face, ctx, principal, list_name, fields, images)
        except UploadRefused as refused:
            return back("/watchlists", error=refused.message)
        return back("/watchlists", msg=f"Enrolled entry {entry} in {list_name}.")

    @router.post("/watchlists/entries/{entry_id}/approve")
    def approve(
        entry_id: int,
        reason: str = Form("", max_length=500),
        principal: Principal = Depends(need(Permission.WATCHLISTS_APPROVE)),
    ) -> RedirectResponse:
        try:
            service(ctx, principal).approve(entry_id, _reason(reason))
        except (GovernanceError, ValueError) as error:
            return back("/watchlists", error=str(error))
        return back("/watchlists", msg=f"Entry {entry_id} approved: it matches from now on.")

    @router.post("/watchlists/entries/{entry_id}/expire")
    def expire(
        entry_id: int,
        reason: str = Form("", max_length=500),
        principal: Principal = Depends(need(Permission.WATCHLISTS_EXPIRE)),
    ) -> RedirectResponse:
        try:
            service(ctx, principal).expire(entry_id, _reason(reason))
        except (GovernanceError, ValueError) as error:
            return back("/watchlists", error=str(error))
        return back("/watchlists", msg=f"Entry {entry_id} expired: it no longer matches.")

    @router.post("/watchlists/entries/{entry_id}/remove")
    def remove(
        entry_id: int,
        reason: str = Form("", max_length=500),
        principal: Principal = Depends(need(Permission.WATCHLISTS_MANAGE)),
    ) -> RedirectResponse:
        try:
            service(ctx, principal).remove(entry_id, _reason(reason))
        except (GovernanceError, ValueError) as error:
            return back("/watchlists", error=str(error))
        return back("/watchlists", msg=f"Entry {entry_id} removed.")

    # --- users -------------------------------------------------------------------------

    @router.post("/users")
    def add_user(
        name: str = Form(..., max_length=64),
        role: str = Form(...),
        password: str = Form(..., max_length=1024),
        reason: str = Form("", max_length=500),
        principal: Principal = Depends(need(Permission.USERS_MANAGE)),
    ) -> RedirectResponse:
        try:
            ctx.users.as_actor(principal.actor).add(name.strip(), role, password, _reason(reason))
        except (UserError, ValueError) as error:
            return back("/users", error=str(error))
        return back("/users", msg=f"Created {role} {name.strip()}.")

    @router.post("/users/{name}")
    def change_user(
        name: str,
        action: str = Form(...),
        role: str = Form(""),
        password: str = Form("", max_length=1024),
        reason: str = Form("", max_length=500),
        principal: Principal = Depends(need(Permission.USERS_MANAGE)),
    ) -> RedirectResponse:
        svc = ctx.users.as_actor(principal.actor)
        try:
            why = _reason(reason)
            if action == "role":
                svc.set_role(name, role, why)
            elif action in ("disable", "enable"):
                svc.set_active(name, action == "enable", why)
            elif action == "password":
                svc.set_password(name, password, why)
            else:
                raise UserError(f"unknown action {action!r}")
        except (UserError, ValueError) as error:
            return back("/users", error=str(error))
        return back("/users", msg=f"{name}: {action} done; their sessions were ended.")

    return router


def _reason(reason: str) -> str:
    reason = reason.strip()
    if len(reason) < 3:
        raise ValueError("state a reason: it is written to the audit log")
    return reason


def _expiry(text: str) -> datetime:
    """A date (end of that day, UTC) or a full ISO time."""
    text = text.strip()
    if len(text) == 10:
        text += "T23:59:59+00:00"
    try:
        return datetime.fromisoformat(text)
    except ValueError:
        raise ValueError("expiry must be a date (YYYY-MM-DD)") from None
