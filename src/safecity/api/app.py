"""The HTTP API (FastAPI) and the web console, behind sign-in, documented at /docs.

Every route but ``/api/health``, ``/api/auth/login``, ``/login`` and the static files
needs a signed-in user whose role has the route's permission (see
``docs/permissions.md``). Searches and views are audited under the user's name with
the reason they gave; snapshots are served with faces blurred.

The engine plugs in through three arguments of :func:`create_app`: ``health`` (camera
status), ``bus`` (it calls ``bus.publish(event_dict)`` after storing events, so live
streams wake at once) and ``latest_frame`` (``camera name -> BGR image or None``, for
the camera wall).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Iterator, Sequence

from fastapi import Depends, FastAPI, Request
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.openapi.utils import get_openapi
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response

import safecity
from safecity.api.account import account_router
from safecity.api.admin import admin_router
from safecity.api.auth import COOKIE, Auth, Forbidden, NotSignedIn, Requirement
from safecity.api.bus import EventBus
from safecity.api.context import AppContext
from safecity.api.events import events_router
from safecity.api.media import LatestFrame
from safecity.api.system import system_router
from safecity.api.terminal import terminal_router
from safecity.api.uploads import MAX_UPLOAD_BYTES
from safecity.api.watchlists import watchlists_router
from safecity.config import Camera
from safecity.events.store import EventStore
from safecity.governance.audit import AuditLog
from safecity.governance.users import Permission, Principal, UserService

# Routes anyone may call: probes need health, and one must be able to sign in.
PUBLIC_PATHS = frozenset({"/api/health", "/api/auth/login", "/login", "/static", "/docs-assets"})


def _wants_html(request: Request) -> bool:
    return (
        request.method == "GET"
        and not request.url.path.startswith(("/api/", "/openapi.json"))
        and "text/html" in request.headers.get("accept", "")
    )


def create_app(
    store: EventStore,
    health: Callable[[], list[dict]] = lambda: [],
    *,
    cameras: Sequence[Camera] = (),
    bus: EventBus | None = None,
    latest_frame: LatestFrame | None = None,
    cookie_secure: bool | None = None,
) -> FastAPI:
    """The app over ``store``; ``cookie_secure`` forces Secure cookies (default: only over HTTPS)."""
    app = FastAPI(
        title="safecity",
        version=safecity.__version__,
        description=(
            "Accountable video analytics. Sign in with `POST /api/auth/login` and send the token as "
            "`Authorization: Bearer …`. Every search and view is written to the audit log; searches and "
            "unredacted views need a reason in the `X-Reason` header."
        ),
        docs_url=None,
        redoc_url=None,
        openapi_url=None,
    )
    users = UserService(store.engine)
    ctx = AppContext(
        store=store, health=health, cameras=list(cameras), bus=bus or EventBus(), latest_frame=latest_frame,
        auth=Auth(users, cookie_secure), users=users, audit=AuditLog(store.engine),
    )
    app.state.ctx = ctx
    app.state.bus = ctx.bus  # GracefulServer closes it so open live streams end on shutdown

    @app.exception_handler(NotSignedIn)
    def not_signed_in(request: Request, _: NotSignedIn) -> Response:
        if _wants_html(request):
            return RedirectResponse(f"/login?next={request.url.path}", status_code=303)
        return JSONResponse({"detail": "sign in first"}, status_code=401, headers={"WWW-Authenticate": "Bearer"})

    @app.exception_handler(Forbidden)
    def forbidden(request: Request, error: Forbidden) -> Response:
        if _wants_html(request) or request.headers.get("content-type", "").startswith(
            ("application/x-www-form-urlencoded", "multipart/form-data")
        ):
            from safecity.console.render import render

            principal = getattr(request.state, "principal", None) or ctx.auth.users.resolve(
                request.cookies.get(COOKIE, "")
            )
            return render(request, "error.html", principal, status=403, title="Not allowed", detail=error.message)
        return JSONResponse({"detail": error.message}, status_code=403)

    @app.middleware("http")
    async def limit_body(request: Request, call_next):
        """Refuse oversized bodies before anything reads them."""
        length = request.headers.get("content-length", "")
        if length.isdigit() and int(length) > MAX_UPLOAD_BYTES + 65536:
            return JSONResponse({"detail": "request body too large"}, status_code=413)
        response = await call_next(request)
        response.headers.setdefault("X-Content-Type-Options", "nosniff")
        response.headers.setdefault("Referrer-Policy", "same-origin")
        response.headers.setdefault("X-Frame-Options", "DENY")
        return response

    app.include_router(system_router(ctx))
    app.include_router(account_router(ctx))
    app.include_router(events_router(ctx))
    app.include_router(watchlists_router(ctx))
    app.include_router(admin_router(ctx))
    app.include_router(terminal_router(ctx))
    _docs_routes(app, ctx)

    from safecity.console import console_router, static_files

    app.include_router(console_router(ctx))
    app.mount("/static", static_files(), name="static")
    return app


def _docs_routes(app: FastAPI, ctx: AppContext) -> None:
    """OpenAPI schema and Swagger UI, for signed-in users only (like every other route)."""
    account = Depends(ctx.auth.require(Permission.ACCOUNT))

    def schema() -> dict[str, Any]:
        if app.openapi_schema is None:
            spec = get_openapi(title=app.title, version=app.version, description=app.description, routes=app.routes)
            spec.setdefault("components", {})["securitySchemes"] = {
                "bearer": {"type": "http", "scheme": "bearer", "description": "token from POST /api/auth/login"}
            }
            spec["security"] = [{"bearer": []}]
            app.openapi_schema = spec
        return app.openapi_schema

    @app.get("/openapi.json", include_in_schema=False)
    def openapi(principal: Principal = account) -> JSONResponse:
        return JSONResponse(schema())

    # Swagger UI's files come from the swagger-ui-bundle package: the docs work offline
    from fastapi.staticfiles import StaticFiles
    from swagger_ui_bundle import swagger_ui_path

    app.mount("/docs-assets", StaticFiles(directory=swagger_ui_path), name="docs-assets")

    @app.get("/docs", include_in_schema=False)
    def docs(principal: Principal = account) -> HTMLResponse:
        return get_swagger_ui_html(
            openapi_url="/openapi.json",
            title="safecity API",
            swagger_js_url="/docs-assets/swagger-ui-bundle.js",
            swagger_css_url="/docs-assets/swagger-ui.css",
            swagger_favicon_url="/docs-assets/favicon-32x32.png",
        )


@dataclass(frozen=True)
class RouteInfo:
    path: str
    methods: frozenset[str]
    permissions: tuple[Permission, ...]  # the Requirement dependencies found on the route


def _requirements(dependant) -> Iterator[Permission]:
    for dependency in getattr(dependant, "dependencies", []):
        if isinstance(dependency.call, Requirement):
            yield dependency.call.permission
        yield from _requirements(dependency)


def route_table(app: FastAPI) -> list[RouteInfo]:
    """Every route with its methods and required permissions, routers included.

    Newer FastAPI keeps included routers as branches instead of copying their routes,
    so both shapes are walked; tests use this to check every route with every role.
    """
    table: list[RouteInfo] = []

    def walk(routes) -> None:
        for route in routes:
            contexts = getattr(route, "effective_route_contexts", None)
            if contexts is not None:
                for context in contexts():
                    add(context.path, context.original_route)
            else:
                add(getattr(route, "path", ""), route)

    def add(path: str, route) -> None:
        methods = frozenset(getattr(route, "methods", None) or ())
        permissions = tuple(_requirements(getattr(route, "dependant", None)))
        table.append(RouteInfo(path, methods, permissions))

    walk(app.routes)
    return table
