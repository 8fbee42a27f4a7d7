"""The ASGI application factory."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route, WebSocketRoute

from . import api, web
from .errors import error_handlers
from .migrate import upgrade
from .services import Services
from .settings import Settings
from .sync_ws import sync_endpoint


async def healthz(request: Request) -> Response:
    from . import __version__

    return JSONResponse({"status": "ok", "version": __version__})


def create_app(settings: Settings, services: Services | None = None) -> Starlette:
    """Build the app from ``settings``; nothing is read from the environment here."""
    services = services or Services(settings)

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        await upgrade(settings.database_url)
        await services.start()
        try:
            yield
        finally:
            await services.stop()

    app = Starlette(
        debug=settings.debug,
        routes=[Route("/healthz", healthz), WebSocketRoute("/sync", sync_endpoint), *api.routes(), *web.routes()],
        middleware=[Middleware(web.SecurityHeaders)],
        exception_handlers=error_handlers,  # type: ignore[arg-type]
        lifespan=lifespan,
    )
    app.state.settings = settings
    app.state.services = services
    return app


def app_from_env() -> Starlette:
    """The factory uvicorn calls (``--factory``): settings from the environment."""
    return create_app(Settings.from_env())
