"""Changing the password while signed in, keeping the same identity (docs/PROTOCOL.md 2.9, 10.1).

Two steps, like sign-in. ``start`` gives this session a fresh challenge and the account's KDF parameters
(the device derives the *old* login key from them). The device makes new password material (fresh KDF
parameters, login key, password-slot bundle) and signs it, with the challenge, with the old login key.
``finish`` checks that proof (and the TOTP code for accounts that read concerns and admins), stores the new
material in one transaction that also ends every other session of the account, then closes their sockets on
every instance (``session_expired``). A wrong proof or code is ``password_change_failed`` and counts towards
the account's sign-in limit, so the route cannot be used to guess a password. The recovery key, the identity
and every grant stay as they were; the device rewraps its data key (2.8) itself, so nothing local is lost.
"""

from __future__ import annotations

import os

from sqlalchemy import delete, insert, select, update
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from crypto import CryptoError, KdfParams, verify_password_change
from crypto.bundle import SEALED_BYTES
from sync.protocol import b64e

from ._body import Body
from .accounts import CHALLENGE_MS, Attempt, end_sessions_in, take_challenge
from .auth import SIGNED_IN, ApiRoute, principal
from .errors import ApiError
from .models import Account, Challenge
from .storage import now_ms

__all__ = ["ROUTES"]

ID = 16
PREFIX = "password:"  # challenges for a password change are kept apart, and name the account they are for
FAILED = "the old password or the one-time code is not right; start again"


async def password_start(request: Request) -> Response:
    p = principal(request)
    body = await Body.read(request, set())
    body.done()
    challenge_id, nonce = os.urandom(16), os.urandom(32)
    async with request.app.state.services.engine.begin() as conn:
        params = await conn.scalar(
            select(Account.kdf_params).where(Account.school_id == p.school_id, Account.id == p.user_id)
        )
        await conn.execute(delete(Challenge).where(Challenge.expires_ms < now_ms()))
        await conn.execute(
            insert(Challenge).values(
                id=challenge_id,
                school_id=p.school_id,
                login=PREFIX + p.user_id.hex(),
                nonce=nonce,
                expires_ms=now_ms() + CHALLENGE_MS,
            )
        )
    return JSONResponse(
        {"challenge_id": b64e(challenge_id), "nonce": b64e(nonce), "kdf_params": b64e(bytes(params))}
    )


async def password_finish(request: Request) -> Response:
    p = principal(request)
    body = await Body.read(request, {"challenge_id", "signature", "kdf_params", "login_pk", "bundle", "totp"})
    challenge_id, signature = body.bytes("challenge_id", ID), body.bytes("signature", 64)
    params, login_pk = body.bytes("kdf_params", 26), body.bytes("login_pk", 32)
    bundle = body.bytes("bundle", SEALED_BYTES)
    totp = body.str("totp", 10, r"\d{6}", optional=True)
    body.done()
    try:
        KdfParams.decode(params)
    except CryptoError as exc:
        raise ApiError("invalid_request", f"KDF parameters: {exc}", {"kdf_params": exc.code}) from None
    if bundle[:2] != bytes([1, 1]):
        raise ApiError("invalid_request", "the new bundle is not sealed in the password slot", {"bundle": "invalid"})
    services = request.app.state.services
    async with services.engine.connect() as conn:
        login = await conn.scalar(
            select(Account.login).where(
                Account.school_id == p.school_id, Account.id == p.user_id, Account.left_ms.is_(None)
            )
        )
    if login is None:
        raise ApiError("unauthenticated", "sign in again")
    attempt = await Attempt.claim(services.engine, p.school_id, login)  # counted before the proof is checked
    try:
        await _replace(services, p, challenge_id, signature, params, login_pk, bundle, totp)
    except BaseException as exc:
        await attempt.settle(exc)
        raise
    await attempt.settle(None)
    await services.end_sessions(  # their sockets too, on every instance
        p.school_id, user_id=p.user_id, except_session=p.session, reason="password_changed"
    )
    await services.audit(p.school_id, "account.password", user=p.user_id, device=p.device_id)
    return Response(status_code=204)


async def _replace(  # type: ignore[no-untyped-def]
    services, p, challenge_id: bytes, signature: bytes, params: bytes, login_pk: bytes, bundle: bytes,
    totp: str | None,
) -> None:
    async with services.engine.begin() as conn:
        challenge = await take_challenge(conn, challenge_id)  # single use, even when what follows fails
    if challenge is None or challenge.login != PREFIX + p.user_id.hex() or bytes(challenge.school_id) != p.school_id:
        raise ApiError("password_change_failed", "the challenge is unknown or expired; start again")
    async with services.engine.begin() as conn:
        account = (
            await conn.execute(
                select(Account)
                .where(Account.school_id == p.school_id, Account.id == p.user_id, Account.left_ms.is_(None))
                .with_for_update()
            )
        ).first()
        if account is None:
            raise ApiError("unauthenticated", "sign in again")
        try:
            verify_password_change(
                bytes(account.login_pk), p.school_id, p.user_id, bytes(challenge.nonce), params, login_pk, bundle,
                signature,
            )
        except CryptoError:
            raise ApiError("password_change_failed", FAILED) from None
        try:
            await services.accounts.second_factor(conn, account, totp)  # readers and admins: the code, once
        except ApiError as exc:
            if exc.code != "sign_in_failed":
                raise
            raise ApiError("password_change_failed", FAILED) from None
        await conn.execute(
            update(Account)
            .where(Account.school_id == p.school_id, Account.id == p.user_id)
            .values(kdf_params=params, login_pk=login_pk, bundle=bundle)
        )
        # with the new material: no crash between the two keeps a session the old password opened
        await end_sessions_in(conn, p.school_id, user_id=p.user_id, except_session=p.session)


ROUTES: list[ApiRoute] = [
    ApiRoute("/api/v1/account/password/start", "POST", password_start, SIGNED_IN),
    ApiRoute("/api/v1/account/password", "POST", password_finish, SIGNED_IN),
]
