"""Rendering console pages: the Jinja2 environment, the navigation and small helpers.

Templates autoescape everything (event labels, plate texts and user names come from
cameras and people, not from us). The navigation shows only the pages the signed-in
role may open, from the same permission table the routes enforce.
"""

from __future__ import annotations

from datetime import datetime, timezone
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

from fastapi import Request
from fastapi.responses import HTMLResponse, RedirectResponse
from fastapi.templating import Jinja2Templates

import safecity
from safecity.governance.users import Permission, Principal

HERE = Path(__file__).parent
templates = Jinja2Templates(directory=str(HERE / "templates"))

NAV: list[tuple[str, str, Permission]] = [
    ("Live", "/live", Permission.LIVE_VIEW),
    ("Search", "/search", Permission.EVENTS_SEARCH),
    ("Watchlists", "/watchlists", Permission.WATCHLISTS_READ),
    ("Audit log", "/audit", Permission.AUDIT_READ),
    ("Users", "/users", Permission.USERS_READ),
    ("System", "/system", Permission.SYSTEM_READ),
]

# Console pages set their own strict policy: only our own scripts, styles and images.
CSP = (
    "default-src 'self'; img-src 'self' data: blob:; style-src 'self'; script-src 'self'; "
    "connect-src 'self'; frame-ancestors 'none'; form-action 'self'; base-uri 'none'"
)


def utc(value: datetime | str | float | None) -> str:
    """A time as people in a control room read it: one zone (UTC), to the second."""
    if value is None or value == "":
        return ""
    if isinstance(value, (int, float)):
        value = datetime.fromtimestamp(value, timezone.utc)
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    return value.astimezone(timezone.utc).strftime("%Y-%m-%d %H:%M:%S")


templates.env.filters["utc"] = utc
templates.env.globals["version"] = safecity.__version__


def home_for(principal: Principal) -> str:
    """The first page a role may open: where signing in lands."""
    return next((url for _, url, perm in NAV if principal.can(perm)), "/system")


def render(request: Request, template: str, principal: Principal | None, status: int = 200, **context: Any) -> HTMLResponse:
    nav = [(title, url) for title, url, perm in NAV if principal is not None and principal.can(perm)]
    context.update(
        request=request,
        principal=principal,
        nav=nav,
        path=request.url.path,
        can=(lambda p: principal is not None and principal.can(Permission(p))),
        message=request.query_params.get("msg", "")[:300],
        error=request.query_params.get("error", "")[:300],
    )
    response = templates.TemplateResponse(request, template, context, status_code=status)
    response.headers["Content-Security-Policy"] = CSP
    response.headers["Cache-Control"] = "no-store"
    return response


def back(url: str, msg: str = "", error: str = "") -> RedirectResponse:
    """Post/redirect/get: after a form, show the page again with a one-line outcome."""
    query = {k: v for k, v in (("msg", msg), ("error", error)) if v}
    return RedirectResponse(f"{url}?{urlencode(query)}" if query else url, status_code=303)
