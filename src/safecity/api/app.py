"""The HTTP API (FastAPI): health and event search, documented at /docs.

Reading events is audited like any other search: the record says who asked (the
client address until sign-in arrives), what they asked for, and the reason they gave
in the ``X-Reason`` header. Snapshots are served with faces blurred.
"""

from __future__ import annotations

from dataclasses import asdict
from datetime import datetime
from typing import Any, Callable

import cv2
from fastapi import Depends, FastAPI, HTTPException, Query, Request
from fastapi.responses import Response
from pydantic import BaseModel

import safecity
from safecity.events.store import EventQuery, EventStore
from safecity.governance.audit import AuditLog
from safecity.governance.redaction import redact


class CameraHealth(BaseModel):
    name: str
    state: str
    frames: int
    fps: float
    lag_seconds: float
    errors: int
    reconnects: int
    events: int
    last_error: str | None
    last_frame_at: float | None


class Health(BaseModel):
    status: str
    version: str
    events: int
    cameras: list[CameraHealth]


class EventOut(BaseModel):
    id: int
    key: str
    camera: str
    type: str
    label: str | None
    start_time: datetime
    end_time: datetime | None
    score: float | None
    box: list[float] | None
    attributes: dict[str, Any]
    has_snapshot: bool
    snapshot_url: str | None


class EventPage(BaseModel):
    items: list[EventOut]
    total: int
    limit: int
    offset: int


def _event_out(row) -> EventOut:
    data = row.as_dict()
    data["snapshot_url"] = f"/api/events/{row.id}/snapshot.jpg" if row.snapshot else None
    return EventOut(**data)


def create_app(store: EventStore, health: Callable[[], list[dict]] = lambda: []) -> FastAPI:
    app = FastAPI(
        title="safecity",
        version=safecity.__version__,
        description="Accountable video analytics. Every search and view is written to the audit log.",
    )
    audit = AuditLog(store.engine)

    def actor(request: Request) -> str:
        host = request.client.host if request.client else "unknown"
        return f"anonymous@{host}"

    def reason(request: Request) -> str:
        return request.headers.get("x-reason", "")

    @app.get("/api/health", response_model=Health, tags=["system"])
    def get_health() -> Health:
        """Liveness, store reachability and per-camera fps, lag and errors."""
        try:
            events = store.count()
            status = "ok"
        except Exception:
            events, status = 0, "store-unavailable"
        cameras = [CameraHealth(**c) for c in health()]
        if status == "ok" and any(c.state in {"reconnecting", "connecting"} and c.errors for c in cameras):
            status = "degraded"
        return Health(status=status, version=safecity.__version__, events=events, cameras=cameras)

    @app.get("/api/events", response_model=EventPage, tags=["events"])
    def list_events(
        camera: str | None = None,
        type: str | None = Query(None, description="event type, e.g. motion"),
        label: str | None = None,
        after: datetime | None = Query(None, description="start time ≥ this (ISO 8601)"),
        before: datetime | None = Query(None, description="start time < this (ISO 8601)"),
        limit: int = Query(50, ge=1, le=500),
        offset: int = Query(0, ge=0),
        who: str = Depends(actor),
        why: str = Depends(reason),
    ) -> EventPage:
        """Search events, newest first. The search is written to the audit log."""
        query = EventQuery(camera, type, label, after, before, limit, offset)
        rows, total = store.search(query)
        params = {k: v for k, v in asdict(query).items() if v is not None}
        audit.append(who, "event.search", "events", "*", why, {**params, "results": total})
        return EventPage(items=[_event_out(r) for r in rows], total=total, limit=limit, offset=offset)

    def _row(event_id: int):
        row = store.get(event_id)
        if row is None:
            raise HTTPException(404, f"no event {event_id}")
        return row

    @app.get("/api/events/{event_id}", response_model=EventOut, tags=["events"])
    def get_event(event_id: int, who: str = Depends(actor), why: str = Depends(reason)) -> EventOut:
        """One event. Viewing it is audited."""
        row = _row(event_id)
        audit.append(who, "event.view", "event", event_id, why)
        return _event_out(row)

    @app.get(
        "/api/events/{event_id}/snapshot.jpg",
        tags=["events"],
        response_class=Response,
        responses={200: {"content": {"image/jpeg": {}}}},
    )
    def get_snapshot(event_id: int, who: str = Depends(actor), why: str = Depends(reason)) -> Response:
        """The event's snapshot with every face blurred. Viewing it is audited."""
        row = _row(event_id)
        path = store.snapshot_path(row)
        image = cv2.imread(str(path)) if path is not None and path.is_file() else None
        if image is None:
            raise HTTPException(404, f"event {event_id} has no snapshot")
        redacted, faces = redact(image)
        ok, data = cv2.imencode(".jpg", redacted, [cv2.IMWRITE_JPEG_QUALITY, 85])
        audit.append(who, "media.view", "event", event_id, why, {"file": row.snapshot, "redacted": True})
        return Response(data.tobytes(), media_type="image/jpeg", headers={"X-Redacted-Faces": str(faces)})

    return app
