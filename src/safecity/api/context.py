"""What every route needs, built once by :func:`safecity.api.app.create_app`.

Routes get the store, the audit log, the user service and the engine's callables from
here rather than from globals, so a test builds an app over its own temporary store
and two apps in one process never share state.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable, Sequence

from fastapi import HTTPException, Request

from safecity.api.auth import Auth
from safecity.api.bus import EventBus
from safecity.api.media import LatestFrame, TileCache
from safecity.config import Camera
from safecity.events.store import EventStore
from safecity.governance.audit import AuditLog
from safecity.governance.users import UserService

MAX_REASON = 500
HealthSource = Callable[[], list[dict]]


@dataclass
class AppContext:
    store: EventStore
    health: HealthSource
    cameras: Sequence[Camera]
    bus: EventBus
    latest_frame: LatestFrame | None
    auth: Auth
    users: UserService
    audit: AuditLog
    tiles: TileCache = field(default_factory=TileCache)

    def camera_names(self) -> list[str]:
        names = [c.name for c in self.cameras]
        return names or sorted({c["name"] for c in self.health()})


def stated_reason(request: Request) -> str:
    """The reason given with a request: the ``X-Reason`` header or a ``reason`` query parameter."""
    reason = request.headers.get("x-reason") or request.query_params.get("reason") or ""
    return reason.strip()[:MAX_REASON]


def required_reason(reason: str) -> str:
    """Refuse the request when no reason is stated (searches and unredacted views)."""
    reason = reason.strip()[:MAX_REASON]
    if len(reason) < 3:
        raise HTTPException(400, "state a reason (X-Reason header or reason parameter): it is written to the audit log")
    return reason
