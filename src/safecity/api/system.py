"""Health (open to probes), the camera list and the live camera tiles."""

from __future__ import annotations

import re
from typing import Any

import numpy as np
from fastapi import APIRouter, Depends, HTTPException
from fastapi.responses import Response
from pydantic import BaseModel, ConfigDict

import safecity
from safecity.api.context import AppContext
from safecity.api.media import read_image
from safecity.api.search import newest_snapshot
from safecity.governance.users import Permission, Principal


class CameraHealth(BaseModel):
    model_config = ConfigDict(extra="ignore")

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


class CameraOut(BaseModel):
    name: str
    source: str
    fps: float
    analysers: list[str]
    zones: list[str]
    lines: list[str]
    health: CameraHealth | None


def mask_source(source: str) -> str:
    """A camera URL without its password: shown to every role, so credentials must not leak."""
    return re.sub(r"(://[^:/@]+):[^@/]*@", r"\1:***@", source)


def health_of(ctx: AppContext) -> Health:
    try:
        events = ctx.store.count()
        status = "ok"
    except Exception:
        events, status = 0, "store-unavailable"
    cameras = [CameraHealth(**c) for c in ctx.health()]
    if status == "ok" and any(c.state in {"reconnecting", "connecting"} and c.errors for c in cameras):
        status = "degraded"
    return Health(status=status, version=safecity.__version__, events=events, cameras=cameras)


def cameras_of(ctx: AppContext) -> list[CameraOut]:
    health = {c.name: c for c in health_of(ctx).cameras}
    out = [
        CameraOut(
            name=c.name, source=mask_source(c.source), fps=c.fps, analysers=list(c.analysers),
            zones=[z.name for z in c.zones], lines=[ln.name for ln in c.lines], health=health.get(c.name),
        )
        for c in ctx.cameras
    ]
    known = {c.name for c in out}
    out += [CameraOut(name=n, source="", fps=0, analysers=[], zones=[], lines=[], health=h) for n, h in health.items() if n not in known]
    return out


def tile(ctx: AppContext, camera: str) -> tuple[bytes | None, str]:
    """The camera's newest picture, redacted, and where it came from (live frame or last event)."""

    def live():
        return ctx.latest_frame(camera) if ctx.latest_frame is not None else None

    data = ctx.tiles.get(f"live:{camera}", live)
    if data is not None:
        return data, "live"

    def last_event() -> np.ndarray | None:
        row = newest_snapshot(ctx.store.engine, camera)
        return read_image(ctx.store.snapshot_path(row)) if row is not None else None

    return ctx.tiles.get(f"event:{camera}", last_event), "last-event"


def system_router(ctx: AppContext) -> APIRouter:
    router = APIRouter(prefix="/api", tags=["system"])

    @router.get("/health", response_model=Health)
    def get_health() -> Health:
        """Liveness, store reachability and per-camera fps, lag and errors (no sign-in: for probes)."""
        return health_of(ctx)

    @router.get("/cameras", response_model=list[CameraOut])
    def list_cameras(principal: Principal = Depends(ctx.auth.require(Permission.SYSTEM_READ))) -> list[CameraOut]:
        """Configured cameras (passwords in URLs masked) with their health."""
        return cameras_of(ctx)

    @router.get(
        "/cameras/{name}/latest.jpg",
        response_class=Response,
        responses={200: {"content": {"image/jpeg": {}}}, 404: {}},
    )
    def latest(name: str, principal: Principal = Depends(ctx.auth.require(Permission.LIVE_VIEW))) -> Response:
        """The camera's latest annotated frame, faces blurred (or its newest event snapshot).

        Not audited per frame (walls poll it every second); opening the wall is audited.
        """
        if name not in ctx.camera_names():
            raise HTTPException(404, f"no camera {name!r}")
        data, source = tile(ctx, name)
        if data is None:
            raise HTTPException(404, f"no picture from {name!r} yet")
        headers: dict[str, Any] = {"Cache-Control": "no-store", "X-Frame-Source": source}
        return Response(data, media_type="image/jpeg", headers=headers)

    @router.get("/metrics", response_class=Response, responses={200: {"content": {"text/plain": {}}}})
    def metrics(principal: Principal = Depends(ctx.auth.require(Permission.SYSTEM_READ))) -> Response:
        """Prometheus metrics: per-camera fps, lag, dropped frames, queue depth, stage ms.

        Scrape with a bearer token (Prometheus ``authorization: {credentials: …}``).
        """
        from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

        from safecity.engines.metrics import engine_registry

        return Response(generate_latest(engine_registry(ctx.health)), media_type=CONTENT_TYPE_LATEST)

    outer = APIRouter()
    outer.include_router(router)
    # the same metrics where Prometheus scrapes by default
    outer.add_api_route("/metrics", metrics, methods=["GET"], response_class=Response, tags=["system"],
                        responses={200: {"content": {"text/plain": {}}}}, summary="Metrics (Prometheus' default path)")
    return outer
