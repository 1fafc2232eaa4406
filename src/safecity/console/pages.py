"""Console pages (GET): live wall, search, one event, watchlists, users, audit, system.

Each page needs the same permission as the API routes behind it, and audits the same
way: a search needs a stated reason; opening an event or the live wall is recorded.
"""

from __future__ import annotations

from datetime import datetime, timezone
from urllib.parse import urlencode

from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse, RedirectResponse

from safecity.api.admin import audit_records
from safecity.api.context import AppContext, stated_reason
from safecity.api.events import get_row, run_search
from safecity.api.search import event_types, hourly_counts, recent_events
from safecity.events.store import EventQuery
from safecity.api.system import cameras_of, health_of
from safecity.api.watchlists import read_watchlists
from safecity.console.charts import hourly_bars
from safecity.console.render import home_for, render
from safecity.governance.retention import ALERT_TYPES
from safecity.governance.users import ROLES, Permission, Principal

PAGE = 24


def _when(text: str | None) -> datetime | None:
    """A datetime-local form value, read as UTC (the console shows every time in UTC)."""
    if not text:
        return None
    try:
        value = datetime.fromisoformat(text)
    except ValueError:
        return None
    return value if value.tzinfo else value.replace(tzinfo=timezone.utc)


def pages_router(ctx: AppContext) -> APIRouter:
    router = APIRouter(include_in_schema=False)
    need = ctx.auth.require

    @router.get("/", response_class=RedirectResponse)
    def home(principal: Principal = Depends(need(Permission.ACCOUNT))) -> RedirectResponse:
        return RedirectResponse(home_for(principal), status_code=303)

    @router.get("/live", response_class=HTMLResponse)
    def live(request: Request, principal: Principal = Depends(need(Permission.LIVE_VIEW))) -> HTMLResponse:
        cameras = cameras_of(ctx)
        ctx.audit.append(principal.actor, "live.view", "cameras", "*", "live monitoring", {"cameras": [c.name for c in cameras]})
        return render(
            request, "live.html", principal, cameras=cameras, recent=recent_events(ctx.store.engine, 15),
            chart=hourly_bars(hourly_counts(ctx.store.engine, 24)), alert_types=sorted(ALERT_TYPES),
        )

    @router.get("/search", response_class=HTMLResponse)
    def search(request: Request, principal: Principal = Depends(need(Permission.EVENTS_SEARCH))) -> HTMLResponse:
        q = request.query_params
        reason = stated_reason(request)
        entry = q.get("entry_id", "")
        f = EventQuery(
            camera=q.get("camera") or None, type=q.get("type") or None, after=_when(q.get("after")),
            before=_when(q.get("before")), plate=(q.get("plate") or "")[:32] or None,
            entry_id=int(entry) if entry.isdigit() else None, limit=PAGE,
            offset=int(q["offset"]) if q.get("offset", "").isdigit() else 0,
        )
        submitted = "reason" in q
        rows, total, problem = [], 0, ""
        if submitted and len(reason) < 3:
            problem = "State a reason for this search: it is written to the audit log."
        elif submitted:
            rows, total = run_search(ctx, principal, f, reason)
        entries = []
        if principal.can(Permission.WATCHLISTS_READ):
            from safecity.governance.watchlists import WatchlistService

            entries = WatchlistService(ctx.store.engine, principal.actor).entries()
        base = {k: v for k, v in q.items() if k != "offset"}

        def page_url(offset: int) -> str:
            return "/search?" + urlencode({**base, "offset": offset})

        return render(
            request, "search.html", principal, q=q, rows=rows, total=total, problem=problem, submitted=submitted,
            cameras=ctx.camera_names(), types=sorted(set(event_types(ctx.store.engine)) | {"motion", *ALERT_TYPES}),
            entries=entries, offset=f.offset, page=PAGE, page_url=page_url, reason=reason,
            status=400 if problem else 200,
        )

    @router.get("/events/{event_id}", response_class=HTMLResponse)
    def event(event_id: int, request: Request, principal: Principal = Depends(need(Permission.EVENTS_VIEW))) -> HTMLResponse:
        row = get_row(ctx, event_id)
        reason = stated_reason(request)
        ctx.audit.append(principal.actor, "event.view", "event", event_id, reason, {"via": "console"})
        return render(request, "event.html", principal, row=row, reason=reason, original=None)

    @router.get("/watchlists", response_class=HTMLResponse)
    def watchlists(request: Request, principal: Principal = Depends(need(Permission.WATCHLISTS_READ))) -> HTMLResponse:
        data = read_watchlists(ctx, principal, "watchlists page")
        return render(request, "watchlists.html", principal, lists=data.lists, entries=data.entries)

    @router.get("/users", response_class=HTMLResponse)
    def users(request: Request, principal: Principal = Depends(need(Permission.USERS_READ))) -> HTMLResponse:
        return render(request, "users.html", principal, users=ctx.users.users(), roles=ROLES)

    @router.get("/audit", response_class=HTMLResponse)
    def audit(request: Request, principal: Principal = Depends(need(Permission.AUDIT_READ))) -> HTMLResponse:
        q = request.query_params
        before = int(q["before"]) if q.get("before", "").isdigit() else None
        action, actor = (q.get("action") or None), (q.get("actor") or None)
        rows, next_before = audit_records(ctx, before, 50, action, actor)
        details = {"before": before, "action": action, "actor": actor, "records": len(rows), "via": "console"}
        ctx.audit.append(principal.actor, "audit.read", "audit_log", "*", "", details)
        verification = ctx.audit.verify() if q.get("verify") else None
        older = None
        if next_before is not None:
            older = "/audit?" + urlencode({k: v for k, v in (("action", action), ("actor", actor), ("before", next_before)) if v})
        return render(
            request, "audit.html", principal, records=[r.as_dict() for r in rows], q=q, older=older,
            verification=verification,
        )

    @router.get("/system", response_class=HTMLResponse)
    def system(request: Request, principal: Principal = Depends(need(Permission.SYSTEM_READ))) -> HTMLResponse:
        return render(request, "system.html", principal, cameras=cameras_of(ctx), health=health_of(ctx))

    return router
