"""The ASGI application factory. The sync endpoints arrive with the sync server (issue 3)."""

from __future__ import annotations

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from .settings import Settings


async def healthz(request: Request) -> Response:
    from . import __version__

    return JSONResponse({"status": "ok", "version": __version__})


def create_app(settings: Settings) -> Starlette:
    """Build the app from ``settings``; nothing is read from the environment here."""
    app = Starlette(debug=settings.debug, routes=[Route("/healthz", healthz)])
    app.state.settings = settings
    return app


def app_from_env() -> Starlette:
    """The factory uvicorn calls (``--factory``): settings from the environment."""
    return create_app(Settings.from_env())
