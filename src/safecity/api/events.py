"""Event search, single events, their images and the live stream (API routes).

Searching needs a stated reason and is audited with the filters used and the ids of the
events returned. Opening an event or an image is audited; images are served with faces
blurred unless the ``media.unredacted`` permission and a reason unlock the original.
"""

from __future__ import annotations

import json
import time
from datetime import datetime
from typing import Any, AsyncIterator

from fastapi import APIRouter, Depends, HTTPException, Query, Request
from fastapi.responses import Response, StreamingResponse
from pydantic import BaseModel, Field
from starlette.concurrency import run_in_threadpool

from safecity.api.bus import POLL_SECONDS, EventTail
from safecity.api.context import AppContext, required_reason, stated_reason
from safecity.api.media import encode_jpeg, matched_subject, read_image, redacted_jpeg
from safecity.api.search import hourly_counts
from safecity.events.store import EventQuery
from safecity.events.models import EventRow
from safecity.governance.users import Permission, Principal

KEEPALIVE_SECONDS = 15.0


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
    thumbnail_url: str | None
    review_state: str | None = None  # alerts: pending, confirmed or rejected
    reviewed_by: str | None = None


class EventPage(BaseModel):
    items: list[EventOut]
    total: int
    limit: int
    offset: int


class ReviewIn(BaseModel):
    decision: str = Field(pattern="^(confirmed|rejected)$")
    note: str = Field(max_length=2000, description="what was checked")


class HourCount(BaseModel):
    hour: datetime
    events: int


def event_out(row: EventRow) -> EventOut:
    data = row.as_dict()
    data["snapshot_url"] = f"/api/events/{row.id}/snapshot.jpg" if row.snapshot else None
    data["thumbnail_url"] = f"/api/events/{row.id}/thumbnail.jpg" if row.snapshot else None
    return EventOut(**data)


def get_row(ctx: AppContext, event_id: int) -> EventRow:
    row = ctx.store.get(event_id)
    if row is None:
        raise HTTPException(404, f"no event {event_id}")
    return row


def snapshot_image(ctx: AppContext, row: EventRow):
    image = read_image(ctx.store.snapshot_path(row))
    if image is None:
        raise HTTPException(404, f"event {row.id} has no snapshot")
    return image


def run_search(ctx: AppContext, principal: Principal, f: EventQuery, reason: str):
    """Search and audit it; shared by the API and the console."""
    rows, total = ctx.store.search(f)
    details = {**f.audit_details(), "results": total, "shown": [r.id for r in rows]}
    ctx.audit.append(principal.actor, "event.search", "events", "*", reason, details)
    return rows, total


def events_router(ctx: AppContext) -> APIRouter:
    router = APIRouter(prefix="/api/events", tags=["events"])
    search = ctx.auth.require(Permission.EVENTS_SEARCH)
    view = ctx.auth.require(Permission.EVENTS_VIEW)
    live = ctx.auth.require(Permission.LIVE_VIEW)
    unredacted = ctx.auth.require(Permission.MEDIA_UNREDACTED)

    @router.get("", response_model=EventPage, responses={400: {"description": "no reason stated"}})
    def list_events(
        request: Request,
        camera: str | None = None,
        type: str | None = Query(None, description="event type, e.g. motion, plate_match"),
        label: str | None = None,
        after: datetime | None = Query(None, description="start time ≥ this (ISO 8601)"),
        before: datetime | None = Query(None, description="start time < this (ISO 8601)"),
        plate: str | None = Query(None, max_length=32, description="part of a plate number"),
        entry_id: int | None = Query(None, description="watchlist entry that matched"),
        limit: int = Query(50, ge=1, le=500),
        offset: int = Query(0, ge=0),
        principal: Principal = Depends(search),
    ) -> EventPage:
        """Search events, newest first. Needs a reason (``X-Reason``); the search is audited."""
        reason = required_reason(stated_reason(request))
        f = EventQuery(camera, type, label, after, before, plate, entry_id, limit, offset)
        rows, total = run_search(ctx, principal, f, reason)
        return EventPage(items=[event_out(r) for r in rows], total=total, limit=limit, offset=offset)

    @router.get("/stats", response_model=list[HourCount])
    def stats(hours: int = Query(24, ge=1, le=24 * 14), principal: Principal = Depends(view)) -> list[HourCount]:
        """Events per hour over the last ``hours`` hours (counts only: not audited)."""
        return [HourCount(hour=h, events=n) for h, n in hourly_counts(ctx.store.engine, hours)]

    @router.get(
        "/stream",
        response_class=StreamingResponse,
        responses={200: {"content": {"text/event-stream": {}}}},
    )
    async def stream(request: Request, principal: Principal = Depends(live)) -> StreamingResponse:
        """Server-sent events: each newly stored event as JSON, with its row id as the SSE id.

        A reconnecting client sends ``Last-Event-ID`` and receives what it missed.
        Opening the stream is audited.
        """
        last = request.headers.get("last-event-id", "")
        after = int(last) if last.isdigit() else None
        tail = await run_in_threadpool(EventTail, ctx.store.engine, after)
        await run_in_threadpool(
            ctx.audit.append, principal.actor, "live.view", "events", "stream", stated_reason(request), {"after": after}
        )
        return StreamingResponse(
            _sse(ctx, request, tail),
            media_type="text/event-stream",
            headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
        )

    @router.get("/{event_id}", response_model=EventOut)
    def get_event(event_id: int, request: Request, principal: Principal = Depends(view)) -> EventOut:
        """One event. Viewing it is audited."""
        row = get_row(ctx, event_id)
        ctx.audit.append(principal.actor, "event.view", "event", event_id, stated_reason(request))
        return event_out(row)

    @router.post("/{event_id}/review", response_model=EventOut)
    def review(event_id: int, body: ReviewIn, principal: Principal = Depends(ctx.auth.require(Permission.ALERTS_REVIEW))) -> EventOut:
        """Confirm or reject a pending face or plate alert, saying what was checked. Audited."""
        review_event(ctx, principal, event_id, body.decision, body.note)
        return event_out(get_row(ctx, event_id))

    jpeg = {200: {"content": {"image/jpeg": {}}}}

    @router.get("/{event_id}/snapshot.jpg", response_class=Response, responses=jpeg)
    def get_snapshot(event_id: int, request: Request, principal: Principal = Depends(view)) -> Response:
        """The event's snapshot with every face blurred. Viewing it is audited."""
        row = get_row(ctx, event_id)
        data, faces = redacted_jpeg(snapshot_image(ctx, row), keep=matched_subject(row))
        details = {"file": row.snapshot, "redacted": True}
        ctx.audit.append(principal.actor, "media.view", "event", event_id, stated_reason(request), details)
        return Response(data, media_type="image/jpeg", headers={"X-Redacted-Faces": str(faces)})

    @router.get("/{event_id}/thumbnail.jpg", response_class=Response, responses=jpeg)
    def get_thumbnail(event_id: int, request: Request, principal: Principal = Depends(view)) -> Response:
        """A small copy of the snapshot, faces blurred, for result lists. Audited like a view."""
        row = get_row(ctx, event_id)
        data, faces = redacted_jpeg(snapshot_image(ctx, row), width=320, keep=matched_subject(row))
        details = {"file": row.snapshot, "redacted": True, "thumbnail": True}
        ctx.audit.append(principal.actor, "media.view", "event", event_id, stated_reason(request), details)
        return Response(
            data, media_type="image/jpeg", headers={"X-Redacted-Faces": str(faces), "Cache-Control": "private, no-store"}
        )

    @router.get(
        "/{event_id}/original.jpg",
        response_class=Response,
        responses={**jpeg, 400: {"description": "no reason stated"}},
    )
    def get_original(event_id: int, request: Request, principal: Principal = Depends(unredacted)) -> Response:
        """The snapshot as captured, faces visible. Needs a reason; audited as an unredacted view."""
        reason = required_reason(stated_reason(request))
        row = get_row(ctx, event_id)
        data = encode_jpeg(snapshot_image(ctx, row))
        ctx.audit.append(principal.actor, "media.view", "event", event_id, reason, {"file": row.snapshot, "redacted": False})
        return Response(data, media_type="image/jpeg", headers={"Cache-Control": "private, no-store"})

    return router


def review_event(ctx: AppContext, principal: Principal, event_id: int, decision: str, note: str) -> None:
    """Record a person's decision on an alert; a refused rule becomes a 400 (404 if no such event)."""
    from safecity.governance.alerts import review_alert
    from safecity.governance.watchlists import GovernanceError

    get_row(ctx, event_id)
    try:
        review_alert(ctx.store, event_id, decision, principal.actor, note)
    except GovernanceError as error:
        raise HTTPException(400, str(error)) from None


def sse_payload(row: EventRow) -> str:
    data = event_out(row).model_dump(mode="json")
    return f"id: {row.id}\nevent: event\ndata: {json.dumps(data, separators=(',', ':'))}\n\n"


async def _sse(ctx: AppContext, request: Request, tail: EventTail) -> AsyncIterator[str]:
    yield "retry: 2000\n\n"
    beat = time.monotonic()
    while not ctx.bus.closed:
        if await request.is_disconnected():
            return
        for row in await run_in_threadpool(tail.poll):
            yield sse_payload(row)
            beat = time.monotonic()
        if time.monotonic() - beat > KEEPALIVE_SECONDS:
            yield ": keep-alive\n\n"
            beat = time.monotonic()
        await ctx.bus.wait(POLL_SECONDS)
