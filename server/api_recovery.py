"""Replacing a forgotten password with the recovery key, keeping the same identity and so every grant.

Two steps, like sign-in (docs/PROTOCOL.md 10.4). ``start`` gives a fresh challenge and the account's
recovery-slot bundle (an unknown login gets a decoy, so the answer does not tell whether an account
exists; without the recovery key neither opens). The device opens the bundle with the recovery key, makes
new password material (KDF parameters, login key, password-slot bundle) and signs it, with the challenge,
with the recovery auth key. ``finish`` checks that proof (and the TOTP code for accounts that read
concerns and admins; an account without a confirmed authenticator is enrolled first, as at sign-in),
stores the new material, ends every other session of the account (its devices are kept, with
anything waiting to send), and opens a session for this device, as sign-in does. Failures count towards
the same per-account limit as sign-in.
"""

from __future__ import annotations

import os
import secrets

from sqlalchemy import delete, insert, select, update
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from crypto import CryptoError, KdfParams, verify_recovery_proof
from crypto import _primitives as primitives
from crypto.bundle import SEALED_BYTES
from sync.protocol import b64e

from ._body import Body
from .accounts import CHALLENGE_MS, Attempt, end_sessions_in, hash_token, id_free, take_challenge
from .auth import PUBLIC, ApiRoute
from .errors import ApiError
from .models import Account, Challenge, Device, School, Session
from .storage import now_ms

__all__ = ["ROUTES"]

ID = 16
LOGIN = r"[A-Za-z0-9._@+-]{1,190}"  # the challenge keeps the login with a prefix, in 200 characters
RECOVERY_PREFIX = "recover:"  # challenges for recovery are kept apart from sign-in challenges


async def recover_start(request: Request) -> Response:
    body = await Body.read(request, {"school_id", "login"})
    school_id, login = body.bytes("school_id", ID), body.str("login", pattern=LOGIN)
    body.done()
    async with request.app.state.services.engine.begin() as conn:
        row = (
            await conn.execute(
                select(Account.id, Account.recovery_bundle).where(
                    Account.school_id == school_id, Account.login == login, Account.left_ms.is_(None)
                )
            )
        ).first()
        if row is None:
            pepper = await conn.scalar(select(School.pepper).where(School.id == school_id)) or bytes(32)
            user_id = primitives.keyed_hash(pepper, "cairn/v1/server/decoy-user", login.encode())[:16]
            filler = primitives.keyed_hash(pepper, "cairn/v1/server/decoy-recovery", login.encode())
            bundle = bytes([1, 2]) + (filler * 4)[: SEALED_BYTES - 2]
        else:
            user_id, bundle = bytes(row.id), bytes(row.recovery_bundle)
        challenge_id, nonce = os.urandom(16), os.urandom(32)
        await conn.execute(delete(Challenge).where(Challenge.expires_ms < now_ms()))
        await conn.execute(
            insert(Challenge).values(
                id=challenge_id,
                school_id=school_id,
                login=RECOVERY_PREFIX + login,
                nonce=nonce,
                expires_ms=now_ms() + CHALLENGE_MS,
            )
        )
    return JSONResponse(
        {
            "challenge_id": b64e(challenge_id),
            "nonce": b64e(nonce),
            "user_id": b64e(user_id),
            "recovery_bundle": b64e(bundle),
        }
    )


async def recover_finish(request: Request) -> Response:
    body = await Body.read(
        request,
        {"challenge_id", "signature", "kdf_params", "login_pk", "bundle", "totp", "device_id", "device_pk"},
    )
    challenge_id, signature = body.bytes("challenge_id", ID), body.bytes("signature", 64)
    params, login_pk = body.bytes("kdf_params", 26), body.bytes("login_pk", 32)
    bundle = body.bytes("bundle", SEALED_BYTES)
    totp = body.str("totp", 10, r"\d{6}", optional=True)
    device_id, device_pk = body.bytes("device_id", ID), body.bytes("device_pk", 32, optional=True)
    body.done()
    try:
        KdfParams.decode(params)
    except CryptoError as exc:
        raise ApiError("invalid_request", f"KDF parameters: {exc}", {"kdf_params": exc.code}) from None
    if bundle[:2] != bytes([1, 1]):
        raise ApiError("invalid_request", "the new bundle is not sealed in the password slot", {"bundle": "invalid"})
    services = request.app.state.services
    async with services.engine.begin() as conn:
        challenge = await take_challenge(conn, challenge_id)  # single use
    if challenge is None or not challenge.login.startswith(RECOVERY_PREFIX):
        raise ApiError("recovery_failed", "the challenge is unknown or expired; start again")
    school_id, login = bytes(challenge.school_id), challenge.login.removeprefix(RECOVERY_PREFIX)
    attempt = await Attempt.claim(services.engine, school_id, login)  # counted before the proof is checked
    fields = (params, login_pk, bundle, totp, device_id, device_pk)
    try:
        await services.accounts.prepare_enrolment(school_id, login)
        out = await _replace(services, school_id, login, bytes(challenge.nonce), signature, *fields)
    except BaseException as exc:
        await attempt.settle(exc)
        raise
    await attempt.settle(None)
    await services.end_sessions(  # their sockets too, on every instance
        school_id, user_id=out["user_id"], except_session=hash_token(out["token"]), reason="recovered"
    )
    await services.audit(school_id, "account.recover", user=out["user_id"], device=device_id)
    return JSONResponse({**out, "user_id": b64e(out["user_id"]), "bundle": b64e(out["bundle"])})


async def _replace(  # type: ignore[no-untyped-def]
    services, school_id: bytes, login: str, nonce: bytes, signature: bytes,
    params: bytes, login_pk: bytes, bundle: bytes, totp: str | None, device_id: bytes, device_pk: bytes | None,
) -> dict:
    async with services.engine.begin() as conn:
        account = (
            await conn.execute(
                select(Account)
                .where(Account.school_id == school_id, Account.login == login, Account.left_ms.is_(None))
                .with_for_update()
            )
        ).first()
        if account is None:
            raise ApiError("recovery_failed", "the login or recovery key is not right")
        user_id = bytes(account.id)
        try:
            verify_recovery_proof(
                bytes(account.recovery_auth_pk), school_id, user_id, nonce, params, login_pk, bundle, signature
            )
        except CryptoError:
            raise ApiError("recovery_failed", "the login or recovery key is not right") from None
        roles = frozenset(account.roles.split())
        await services.accounts.second_factor(conn, account, totp)  # readers and admins: the code, once
        await conn.execute(
            update(Account)
            .where(Account.school_id == school_id, Account.id == user_id)
            .values(kdf_params=params, login_pk=login_pk, bundle=bundle)
        )
        await end_sessions_in(conn, school_id, user_id=user_id)  # with the new material: no crash keeps them
        device = (
            await conn.execute(select(Device).where(Device.school_id == school_id, Device.id == device_id))
        ).first()
        if device is None:
            if device_pk is None:
                raise ApiError("invalid_request", "a new device must send its public key", {"device_pk": "missing"})
            await id_free(conn, device_id=device_id)
        elif bytes(device.user_id) != user_id or device.revoked_ms is not None:
            raise ApiError("recovery_failed", "this device belongs to another account, or was revoked")
        token = secrets.token_urlsafe(32)
        expires = now_ms() + services.accounts.session_ms
        await conn.execute(
            insert(Session).values(
                token_hash=hash_token(token),
                school_id=school_id,
                user_id=user_id,
                device_id=device_id,
                device_pk=device_pk if device is None else device.public_key,
                created_ms=now_ms(),
                expires_ms=expires,
            )
        )
    return {
        "token": token,
        "expires_ms": expires,
        "user_id": user_id,
        "roles": sorted(roles),
        "bundle": bundle,
        "device_known": device is not None,
    }


ROUTES: list[ApiRoute] = [
    ApiRoute("/api/v1/recover/start", "POST", recover_start, PUBLIC),
    ApiRoute("/api/v1/recover/finish", "POST", recover_finish, PUBLIC),
]
