"""Accounts, sign-in and sessions.

Sign-in is a challenge answered by the login key that Argon2id derives on the device; the server keeps
only that key's public half and the sealed bundle. Accounts that can read concerns also give a TOTP
code. Failed sign-ins are counted per account in the database (so every app instance sees them): at
most 10 in 15 minutes. Sessions are bound to one device, and a sync connection must also prove the
device's key.
"""

from __future__ import annotations

import hashlib
import os
import secrets
from dataclasses import dataclass, field

import pyotp
from sqlalchemy import delete, func, insert, select, update
from sqlalchemy.ext.asyncio import AsyncEngine

from crypto import CryptoError, KdfParams, verify_challenge, verify_device_auth, verify_device_cert
from crypto import _primitives as primitives
from sync.protocol import Auth, ProtocolError

from .errors import ApiError
from .models import READING_ROLES, Account, Challenge, Device, Session, SignInAttempt
from .storage import now_ms

__all__ = ["Principal", "Accounts", "MAX_FAILURES", "FAILURE_WINDOW_MS", "hash_token"]

MAX_FAILURES = 10
FAILURE_WINDOW_MS = 15 * 60 * 1000
CHALLENGE_MS = 2 * 60 * 1000


def hash_token(token: str) -> bytes:
    return hashlib.sha256(token.encode("utf-8", "surrogatepass")).digest()  # any text a client sends: no 500



async def recent_failures(conn, school_id: bytes, login: str) -> int:  # type: ignore[no-untyped-def]
    """Failed sign-ins (and recoveries) of one login in the last 15 minutes: the limit counts both."""
    return await conn.scalar(
        select(func.count())
        .select_from(SignInAttempt)
        .where(
            SignInAttempt.school_id == school_id,
            SignInAttempt.login == login,
            SignInAttempt.at_ms > now_ms() - FAILURE_WINDOW_MS,
        )
    )


@dataclass(frozen=True)
class Principal:
    """Who is on the other end: a user of a school, on one device, with roles."""

    school_id: bytes
    user_id: bytes
    device_id: bytes
    device_pk: bytes = field(repr=False)
    roles: frozenset[str]
    request_id: str | None = None

    def has(self, *roles: str) -> bool:
        return bool(self.roles & set(roles))


class Accounts:
    def __init__(self, engine: AsyncEngine, session_ms: int) -> None:
        self.engine, self.session_ms = engine, session_ms

    # --- sign-in -------------------------------------------------------------------------------

    async def start(self, school_id: bytes, login: str) -> dict:
        """A fresh challenge and the account's KDF parameters. An unknown login gets decoy parameters,
        stable for that login, so the answer does not tell whether an account exists."""
        async with self.engine.begin() as conn:
            row = (
                await conn.execute(
                    select(Account.kdf_params, Account.id).where(Account.school_id == school_id, Account.login == login)
                )
            ).first()
            if row is None:
                from .models import School

                pepper = await conn.scalar(select(School.pepper).where(School.id == school_id)) or bytes(32)
                salt = primitives.keyed_hash(pepper, "cairn/v1/server/decoy-salt", login.encode())[:16]
                user_id = primitives.keyed_hash(pepper, "cairn/v1/server/decoy-user", login.encode())[:16]
                params = KdfParams(3, 64 * 1024 * 1024, salt).encode()
            else:
                params, user_id = row
            challenge_id, nonce = os.urandom(16), os.urandom(32)
            await conn.execute(delete(Challenge).where(Challenge.expires_ms < now_ms()))
            await conn.execute(
                insert(Challenge).values(
                    id=challenge_id, school_id=school_id, login=login, nonce=nonce, expires_ms=now_ms() + CHALLENGE_MS
                )
            )
        return {"challenge_id": challenge_id, "nonce": nonce, "kdf_params": bytes(params), "user_id": bytes(user_id)}

    async def finish(
        self, challenge_id: bytes, signature: bytes, totp: str | None, device_id: bytes, device_pk: bytes | None
    ) -> dict:
        """Check the proof (and TOTP); register the device if it is new; open a session bound to it."""
        async with self.engine.begin() as conn:
            challenge = (await conn.execute(select(Challenge).where(Challenge.id == challenge_id))).first()
            if challenge is None or challenge.expires_ms < now_ms():
                raise ApiError("sign_in_failed", "the challenge is unknown or expired; start again")
            await conn.execute(delete(Challenge).where(Challenge.id == challenge_id))  # single use
            school_id, login = bytes(challenge.school_id), challenge.login
            failures = await recent_failures(conn, school_id, login)
        if failures >= MAX_FAILURES:
            raise ApiError(
                "too_many_attempts", f"more than {MAX_FAILURES} failed sign-ins in 15 minutes; wait and retry"
            )
        try:
            return await self._finish(school_id, login, bytes(challenge.nonce), signature, totp, device_id, device_pk)
        except ApiError as exc:
            if exc.code in ("sign_in_failed", "totp_required"):
                async with self.engine.begin() as conn:
                    await conn.execute(insert(SignInAttempt).values(school_id=school_id, login=login, at_ms=now_ms()))
            raise

    async def _finish(
        self,
        school_id: bytes,
        login: str,
        nonce: bytes,
        signature: bytes,
        totp: str | None,
        device_id: bytes,
        device_pk: bytes | None,
    ) -> dict:
        async with self.engine.begin() as conn:
            account = (
                await conn.execute(select(Account).where(Account.school_id == school_id, Account.login == login))
            ).first()
            if account is None or account.left_ms is not None:
                raise ApiError("sign_in_failed", "the login or password is not right")
            try:
                verify_challenge(bytes(account.login_pk), school_id, bytes(account.id), nonce, signature)
            except CryptoError:
                raise ApiError("sign_in_failed", "the login or password is not right") from None
            roles = frozenset(account.roles.split())
            if roles & READING_ROLES:
                step = self._check_totp(account, totp)
                await conn.execute(
                    update(Account)
                    .where(Account.school_id == school_id, Account.id == account.id)
                    .values(totp_last_step=step, totp_confirmed_ms=account.totp_confirmed_ms or now_ms())
                )
            device = (
                await conn.execute(select(Device).where(Device.school_id == school_id, Device.id == device_id))
            ).first()
            if device is None:
                if device_pk is None:
                    raise ApiError("invalid_request", "a new device must send its public key", {"device_pk": "missing"})
            elif bytes(device.user_id) != bytes(account.id):
                raise ApiError("sign_in_failed", "this device belongs to another account")
            elif device.revoked_ms is not None:
                raise ApiError("sign_in_failed", "this device was revoked; it must be wiped and set up again")
            else:
                await conn.execute(  # the devices page shows when each device was last seen
                    update(Device)
                    .where(Device.school_id == school_id, Device.id == device_id)
                    .values(last_seen_ms=now_ms())
                )
            token = secrets.token_urlsafe(32)
            expires = now_ms() + self.session_ms
            await conn.execute(
                insert(Session).values(
                    token_hash=hash_token(token),
                    school_id=school_id,
                    user_id=account.id,
                    device_id=device_id,
                    device_pk=device_pk if device is None else device.public_key,
                    created_ms=now_ms(),
                    expires_ms=expires,
                )
            )
        return {
            "token": token,
            "expires_ms": expires,
            "user_id": bytes(account.id),
            "roles": sorted(roles),
            "bundle": bytes(account.bundle),
            "device_known": device is not None,
        }

    def _check_totp(self, account: Account, code: str | None) -> int:
        if not code:
            raise ApiError("totp_required", "this account reads concerns: enter the code from your authenticator")
        totp = pyotp.TOTP(account.totp_secret or "")
        now = now_ms() // 1000
        for offset in (0, -1, 1):
            step = now // 30 + offset
            if step > account.totp_last_step and secrets.compare_digest(totp.at(step * 30), code):
                return step
        raise ApiError("sign_in_failed", "the one-time code is not right, or was already used")

    async def certify_device(self, token: str, cert: bytes) -> tuple[bytes, bytes, bytes]:
        """A new device, signed in, sends the certificate its user's identity key made for it."""
        async with self.engine.begin() as conn:
            s = (
                await conn.execute(
                    select(
                        Session.school_id,
                        Session.user_id,
                        Session.device_id,
                        Session.device_pk,
                        Session.revoked_ms,
                        Session.expires_ms,
                        Account.identity_ed25519_pk,
                    )
                    .join(Account, (Account.school_id == Session.school_id) & (Account.id == Session.user_id))
                    .where(Session.token_hash == hash_token(token))
                )
            ).first()
            if s is None or s.revoked_ms is not None or s.expires_ms < now_ms():
                raise ApiError("unauthenticated", "sign in again")
            exists = await conn.scalar(
                select(func.count())
                .select_from(Device)
                .where(Device.school_id == s.school_id, Device.id == s.device_id)
            )
            if exists:
                raise ApiError("conflict", "this device is already certified")
            await self._register_device(
                conn,
                bytes(s.school_id),
                bytes(s.user_id),
                bytes(s.identity_ed25519_pk),
                bytes(s.device_id),
                bytes(s.device_pk),
                cert,
            )
        return bytes(s.school_id), bytes(s.user_id), bytes(s.device_id)

    @staticmethod
    async def _register_device(
        conn,
        school_id: bytes,
        user_id: bytes,
        identity_pk: bytes,  # type: ignore[no-untyped-def]
        device_id: bytes,
        device_pk: bytes,
        cert: bytes,
    ) -> None:
        try:
            certified = verify_device_cert(cert, identity_pk)
        except CryptoError as exc:
            raise ApiError("invalid_request", f"device certificate: {exc}", {"device_cert": exc.code}) from None
        if (certified.school_id, certified.user_id, certified.device_id, certified.device_pk) != (
            school_id,
            user_id,
            device_id,
            device_pk,
        ):
            raise ApiError(
                "invalid_request", "the device certificate is for another device", {"device_cert": "mismatch"}
            )
        await conn.execute(
            insert(Device).values(
                school_id=school_id,
                id=device_id,
                user_id=user_id,
                public_key=device_pk,
                cert=cert,
                created_ms=now_ms(),
                last_seen_ms=now_ms(),
                last_counter=0,
                last_hash=bytes(32),
            )
        )

    async def sign_out(self, token: str) -> None:
        async with self.engine.begin() as conn:
            await conn.execute(
                update(Session).where(Session.token_hash == hash_token(token)).values(revoked_ms=now_ms())
            )

    # --- sessions ------------------------------------------------------------------------------

    async def principal(self, token: str) -> Principal:
        """The principal of an HTTP request's bearer token."""
        try:
            principal = await self._session(token)
        except ProtocolError:
            principal = None  # a revoked device: over HTTP it is simply not signed in
        if principal is None:
            raise ApiError("unauthenticated", "sign in again")
        return principal

    async def _session(self, token: str, request_id: str | None = None) -> Principal | None:
        async with self.engine.connect() as conn:
            s = (
                await conn.execute(
                    select(
                        Session.school_id,
                        Session.user_id,
                        Session.device_id,
                        Session.revoked_ms,
                        Session.expires_ms,
                        Device.public_key,
                        Device.revoked_ms.label("device_revoked_ms"),
                        Account.roles,
                        Account.left_ms,
                    )
                    .join(Device, (Device.school_id == Session.school_id) & (Device.id == Session.device_id))
                    .join(Account, (Account.school_id == Session.school_id) & (Account.id == Session.user_id))
                    .where(Session.token_hash == hash_token(token))
                )
            ).first()
        if s is not None and s.device_revoked_ms is not None:
            raise ProtocolError(
                "device_revoked", "this device was revoked; wipe its local store", request_id=request_id
            )
        if s is None or s.revoked_ms is not None or s.expires_ms < now_ms() or s.left_ms is not None:
            return None
        return Principal(
            bytes(s.school_id),
            bytes(s.user_id),
            bytes(s.device_id),
            bytes(s.public_key),
            frozenset(s.roles.split()),
            request_id,
        )

    async def authenticate_device(self, auth: Auth, nonce: bytes) -> Principal:
        """The websocket's auth frame: a live session for this device, and the device's proof."""
        principal = await self._session(auth.token, auth.id)
        if principal is None:
            raise ProtocolError(
                "session_expired", "the session expired or was signed out; sign in again", request_id=auth.id
            )
        if principal.device_id != auth.device_id:
            raise ProtocolError("auth_failed", "the session belongs to another device", request_id=auth.id)
        try:
            verify_device_auth(principal.device_pk, principal.school_id, principal.device_id, nonce, auth.signature)
        except CryptoError:
            raise ProtocolError("auth_failed", "the device proof does not verify", request_id=auth.id) from None
        async with self.engine.begin() as conn:  # last seen: on every sync connect
            await conn.execute(
                update(Device)
                .where(Device.school_id == principal.school_id, Device.id == principal.device_id)
                .values(last_seen_ms=now_ms())
            )
        return principal
