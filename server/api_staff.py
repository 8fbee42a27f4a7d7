"""Admin HTTP endpoints for onboarding: import a staff CSV, list invitations with their status, and reset
an account whose owner lost both password and recovery key. Appended to ``server.api.ROUTES``.

Running accounts gives no read access: an invitation carries roles and classes, but the reader keys come
only from a keyholder's device (docs/ARCHITECTURE.md, Keys).
"""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from sync.protocol import b64e

from ._body import Body
from ._staff_csv import StaffCsvError, parse_staff_csv
from .auth import ApiRoute, principal
from .errors import ApiError
from .staff import NotFound, invite_staff, list_invitations, renew_invitation, reset_account

__all__ = ["ROUTES"]

ID = 16
LOGIN = r"[A-Za-z0-9._@+-]{1,200}"
MAX_CSV_CHARS = 512 * 1024


async def import_staff(request: Request) -> Response:
    """Invite every person of a staff CSV, or nobody: each problem is named by line and column."""
    p = principal(request)
    body = await Body.read(request, {"csv"}, max_bytes=2 * MAX_CSV_CHARS)
    text = body.data.get("csv")
    if not isinstance(text, str) or not text.strip() or len(text) > MAX_CSV_CHARS:
        body.errors["csv"] = "missing" if not text else "invalid"
    body.done()
    try:
        invited = await invite_staff(
            request.app.state.services.engine, p.school_id, parse_staff_csv(text), invited_by=p.user_id,
            reason="staff file import",
        )
    except StaffCsvError as exc:
        raise ApiError("invalid_staff_csv", str(exc), exc.fields) from None
    for person in invited:
        await request.app.state.services.audit(
            p.school_id, "invitation.create", user=p.user_id, device=p.device_id, target=person.login
        )
    return JSONResponse({"invitations": [i.json() for i in invited]}, status_code=201)


async def invitations(request: Request) -> Response:
    p = principal(request)
    return JSONResponse({"invitations": await list_invitations(request.app.state.services.engine, p.school_id)})


async def renew(request: Request) -> Response:
    """A new link for an invitation not yet used (a lost link, or one that expired); the old link stops working."""
    p = principal(request)
    body = await Body.read(request, {"login"})
    login = body.str("login", pattern=LOGIN)
    body.done()
    try:
        invited = await renew_invitation(request.app.state.services.engine, p.school_id, login)
    except NotFound:
        raise ApiError("not_found", "no unused invitation for this login") from None
    await request.app.state.services.audit(
        p.school_id, "invitation.renew", user=p.user_id, device=p.device_id, target=login
    )
    return JSONResponse(invited.json(), status_code=201)


async def reset(request: Request) -> Response:
    """Without a recovery key: the account leaves, and the same person gets a new invitation (a new
    identity). A keyholder then re-grants reader keys to the new identity."""
    p = principal(request)
    body = await Body.read(request, {"user_id"})
    user_id = body.bytes("user_id", ID)
    body.done()
    if user_id == p.user_id:
        raise ApiError("forbidden", "an admin cannot reset their own account; ask another admin")
    services = request.app.state.services
    try:
        old_login, invited = await reset_account(services.engine, p.school_id, user_id)
    except NotFound:
        raise ApiError("not_found", "no such account in this school") from None
    await services.end_sessions(p.school_id, user_id=user_id, reason="device_revoked")
    await services.audit(p.school_id, "account.reset", user=p.user_id, device=p.device_id, target=old_login)
    return JSONResponse({"user_id": b64e(user_id), "invitation": invited.json()}, status_code=201)


ROUTES: list[ApiRoute] = [
    ApiRoute("/api/v1/admin/invitations", "GET", invitations, ("admin",)),
    ApiRoute("/api/v1/admin/invitations/import", "POST", import_staff, ("admin",)),
    ApiRoute("/api/v1/admin/invitations/renew", "POST", renew, ("admin",)),
    ApiRoute("/api/v1/admin/accounts/reset", "POST", reset, ("admin",)),
]
