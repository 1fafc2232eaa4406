"""The web console: server-rendered pages (Jinja2), one stylesheet, one small script.

Nothing is fetched from another site at run time and there is no build step: the
pages work as plain HTML forms, and ``static/console.js`` adds the live parts (the
alert stream, refreshing camera tiles and health figures).
"""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.staticfiles import StaticFiles

from safecity.api.context import AppContext
from safecity.console.forms import forms_router
from safecity.console.pages import pages_router
from safecity.console.render import HERE


def console_router(ctx: AppContext) -> APIRouter:
    router = APIRouter(include_in_schema=False)
    router.include_router(forms_router(ctx))
    router.include_router(pages_router(ctx))
    return router


def static_files() -> StaticFiles:
    return StaticFiles(directory=str(HERE / "static"))
