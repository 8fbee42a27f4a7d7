"""One auth layer for the HTTP API: bearer tokens, principals, and the route table whose ``allow`` column
the dispatcher enforces (as Starlette's ``requires`` does), so no handler checks a role by hand.

Each module of the API declares its routes as ``ApiRoute`` rows; ``routes`` wraps every endpoint so that,
before it runs, the session is resolved and the principal's **effective** roles are checked against the
row's ``allow``:

- ``PUBLIC`` (None): no session (sign-in, registration, recovery);
- ``SIGNED_IN`` (()): any live session;
- a tuple of roles: any one of them, where roles are the ones the newest signed directory lists for the
  account (server/authority.py), never a role an admin has only asked for; the pseudo-role ``keyholder``
  means a safeguarding member who holds the safeguarding group's key (``KEYHOLDER``), and ``founder`` the
  founding account of a school that has no signed directory yet (``FOUNDER``).

The endpoint reads its principal with ``principal(request)``. tests/server/test_authorisation.py builds
the role × route matrix from this table.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import replace
from typing import NamedTuple

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from .accounts import Principal
from .errors import ApiError

__all__ = ["ApiRoute", "PUBLIC", "SIGNED_IN", "KEYHOLDER", "FOUNDER", "bearer", "principal", "resolve", "routes"]

PUBLIC = None
SIGNED_IN: tuple[str, ...] = ()
KEYHOLDER = "keyholder"
FOUNDER = "founder"

Endpoint = Callable[[Request], Awaitable[Response]]


class ApiRoute(NamedTuple):
    path: str
    method: str
    endpoint: Endpoint
    allow: tuple[str, ...] | None  # PUBLIC, SIGNED_IN, or the effective roles of which one is needed


def bearer(request: Request) -> str:
    """The session token of ``Authorization: Bearer ...``."""
    header = request.headers.get("authorization", "")
    if not header.startswith("Bearer ") or len(header) > 7 + 200:
        raise ApiError("unauthenticated", "send the session token as 'Authorization: Bearer ...'")
    return header[7:]


async def resolve(request: Request, allow: tuple[str, ...]) -> Principal:
    """The request's principal with its effective roles (and ``keyholder`` when it is one); ``forbidden``
    unless it holds one of ``allow`` (an empty ``allow``: any signed-in principal)."""
    services = request.app.state.services
    found = await services.accounts.principal(bearer(request))
    async with services.engine.connect() as conn:
        roles = await services.authority.effective_roles(conn, found.school_id, found.user_id, found.roles)
        if await services.authority.is_keyholder(conn, found.school_id, found.user_id, found.roles):
            roles = roles | {KEYHOLDER}
        if "safeguarding" in roles and await services.authority.signed(conn, found.school_id) is None:
            roles = roles | {FOUNDER}
    resolved = replace(found, roles=roles)
    if allow and not resolved.roles & set(allow):
        names = {KEYHOLDER: "an approved safeguarding keyholder", FOUNDER: "the founding account, while founding"}
        needs = " or ".join(names.get(r, f"the role {r}") for r in allow)
        raise ApiError("forbidden", f"this needs {needs}")
    return resolved


def principal(request: Request) -> Principal:
    """The principal the dispatcher resolved for this request (only on routes that need a session)."""
    found = getattr(request.state, "principal", None)
    if found is None:
        raise RuntimeError(f"{request.url.path} is a public route: it has no principal")
    return found


def _guarded(route: ApiRoute) -> Endpoint:
    async def endpoint(request: Request) -> Response:
        if route.allow is not None:
            request.state.principal = await resolve(request, route.allow)
        return await route.endpoint(request)

    endpoint.__name__ = getattr(route.endpoint, "__name__", "endpoint")
    return endpoint


def routes(table: list[ApiRoute]) -> list[Route]:
    """Starlette routes for the table, each endpoint behind its ``allow`` check."""
    return [Route(r.path, _guarded(r), methods=[r.method]) for r in table]
