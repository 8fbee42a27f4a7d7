"""HTTP errors: one family (``ApiError``) rendered by one handler as ``{"error": {code, detail, fields?}}``.

The codes are stable and listed in docs/PROTOCOL.md; a test keeps the two in step.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse

__all__ = ["ApiError", "API_ERROR_CODES", "error_handlers"]

log = logging.getLogger("cairn.http")

API_ERROR_CODES: dict[str, tuple[int, str]] = {
    "invalid_request": (400, "the body is not JSON, or a field is missing or invalid (see fields)"),
    "unauthenticated": (401, "no valid session token"),
    "sign_in_failed": (401, "the login, proof or one-time code is not valid"),
    "totp_required": (401, "this account reads concerns or administers: a one-time code is required"),
    "totp_enrolment_required": (401, "this account needs an authenticator: the error carries totp_secret and totp_uri"),
    "forbidden": (403, "the session's roles do not allow this"),
    "not_found": (404, "no such resource in this school"),
    "conflict": (409, "the resource already exists with other content"),
    "id_taken": (409, "an account or device id chosen by the client is in use: make a new one and retry"),
    "payload_too_large": (413, "the body is larger than the limit for this route"),
    "too_many_attempts": (429, "too many failed sign-ins for this account; wait and retry"),
    "invalid_invitation": (400, "the invitation code is unknown, used or expired"),
    "invalid_staff_csv": (400, "the staff file is refused, nothing was imported: fields name each line and column"),
    "recovery_failed": (401, "the recovery proof does not verify, or the recovery challenge is unknown or expired"),
    "password_change_failed": (403, "the old password or the one-time code is not right, or the challenge expired"),
    "invalid_grant": (400, "the grant does not parse, is not signed by the granter, or its granter holds no such key"),
    "unknown_key": (400, "the reader key is not listed for this school"),
    "invalid_directory": (400, "the signed directory does not parse, its signature fails, or it names another school"),
    "stale_directory": (409, "the directory version is not the next one, or the school changed since it was read"),
    "wrong_signing_key": (403, "the directory is signed with a key other than the school signing key on file"),
    "stale_duty": (409, "the duty was done by another device or the school changed; fetch the duties again"),
    "key_pinned": (409, "this purpose has its key already, fixed when first published: a new version is a rotation"),
    "unapproved_directory": (403, "the version widens who can read without a keyholder's approval"),
    "held_out_of_order": (409, "a device's held envelopes are decided in the order it wrote them"),
    "held_refused": (409, "the held envelope cannot be stored (see fields); reject it instead"),
    "internal_error": (500, "the server failed; nothing was changed"),
}


class ApiError(Exception):
    """``extra``: a few more string members of the error object, documented with the code (so far only
    ``totp_enrolment_required`` has them)."""

    def __init__(
        self,
        code: str,
        detail: str,
        fields: Mapping[str, str] | None = None,
        *,
        extra: Mapping[str, str] | None = None,
    ) -> None:
        if code not in API_ERROR_CODES:
            raise ValueError(f"{code!r} is not an API error code")
        super().__init__(detail)
        self.code, self.detail, self.fields = code, detail, dict(fields or {})
        self.extra = dict(extra or {})
        self.status = API_ERROR_CODES[code][0]

    def __repr__(self) -> str:  # extra may hold a TOTP secret: never shown
        return f"ApiError({self.code!r}, {self.detail!r})"

class _ErrorResponse(JSONResponse):
    """JSON in ASCII: ``fields`` name what the client sent, which may hold a lone surrogate (JSON carries
    "\\ud800", UTF-8 cannot), so the answer escapes it back rather than failing to encode it."""

    def render(self, content: object) -> bytes:
        return json.dumps(content, ensure_ascii=True, separators=(",", ":")).encode("ascii")


def _render(
    code: str, detail: str, status: int, fields: Mapping[str, str] | None = None, extra: Mapping[str, str] | None = None
) -> JSONResponse:
    body: dict = {**(extra or {}), "code": code, "detail": detail}
    if fields:
        body["fields"] = dict(fields)
    return _ErrorResponse({"error": body}, status_code=status)


async def _api_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, ApiError)
    return _render(exc.code, exc.detail, exc.status, exc.fields, exc.extra)


async def _http_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, HTTPException)
    code = {404: "not_found", 405: "invalid_request", 413: "payload_too_large"}.get(exc.status_code, "invalid_request")
    return _render(code, str(exc.detail), exc.status_code)


async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
    log.error("unexpected %s on %s %s", type(exc).__name__, request.method, request.url.path)
    return _render("internal_error", "the server failed; nothing was changed", 500)


error_handlers = {ApiError: _api_error, HTTPException: _http_error, Exception: _unexpected}
