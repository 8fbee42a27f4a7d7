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
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncEngine

from crypto import (
    CryptoError,
    KdfParams,
    verify_challenge,
    verify_delivery_auth,
    verify_device_auth,
    verify_device_cert,
)
from crypto import _primitives as primitives
from sync.protocol import Auth, Deliver, ProtocolError

from .errors import ApiError
from .models import SECOND_FACTOR_ROLES, Account, Challenge, Device, Session, SignInAttempt
from .storage import now_ms

__all__ = [
    "Principal",
    "Accounts",
    "Attempt",
    "MAX_FAILURES",
    "FAILURE_WINDOW_MS",
    "hash_token",
    "end_sessions_in",
    "id_free",
    "needs_second_factor",
    "take_challenge",
    "totp_uri",
]

MAX_FAILURES = 10
FAILURE_WINDOW_MS = 15 * 60 * 1000
CHALLENGE_MS = 2 * 60 * 1000


def _matching_step(secret: str, code: str, after: int) -> int | None:
    """The 30-second step, after ``after``, whose code is ``code`` (one step of clock drift either way)."""
    totp = pyotp.TOTP(secret)
    now = now_ms() // 1000
    for offset in (0, -1, 1):
        step = now // 30 + offset
        if step > after and secrets.compare_digest(totp.at(step * 30), code):
            return step
    return None


async def id_free(conn, *, user_id: bytes | None = None, device_id: bytes | None = None) -> None:  # type: ignore[no-untyped-def]
    """Refuse, with ``id_taken``, an account or device id (chosen by the client) that any school uses."""
    for name, value, table in (("user_id", user_id, Account), ("device_id", device_id, Device)):
        if value is not None and await conn.scalar(select(func.count()).select_from(table).where(table.id == value)):
            raise ApiError("id_taken", f"this {name} is in use; make a new one and try again", {name: "taken"})


def hash_token(token: str) -> bytes:
    return hashlib.sha256(token.encode("utf-8", "surrogatepass")).digest()  # any text a client sends: no 500


_SESSION_STATE = (
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
)


def _ended(s) -> str | None:  # type: ignore[no-untyped-def]
    """Why the session row ``s`` of ``_SESSION_STATE`` no longer holds, or None while it does."""
    if s is None:
        return "signed_out"
    if s.device_revoked_ms is not None:  # a revoked device hands over and wipes, whatever its session did
        return "device_revoked"
    if s.left_ms is not None:
        return "left_school"
    if s.revoked_ms is not None:
        return "signed_out"
    if s.expires_ms <= now_ms():
        return "session_expired"
    return None


async def end_sessions_in(  # type: ignore[no-untyped-def]
    conn,
    school_id: bytes,
    *,
    user_id: bytes | None = None,
    device_id: bytes | None = None,
    session: bytes | None = None,
    except_session: bytes | None = None,
) -> int:
    """Mark a user's, a device's or one session's sessions ended, inside the caller's transaction (all but
    ``except_session``). ``Services.end_sessions`` calls this and then closes their sockets everywhere; a
    caller changing credentials calls it in its own transaction too, so no crash leaves the old sessions."""
    if user_id is None and device_id is None and session is None:
        raise ValueError("end_sessions_in needs a user, a device or a session")
    where = [Session.school_id == school_id, Session.revoked_ms.is_(None)]
    if user_id is not None:
        where.append(Session.user_id == user_id)
    if device_id is not None:
        where.append(Session.device_id == device_id)
    if session is not None:
        where.append(Session.token_hash == session)
    if except_session is not None:
        where.append(Session.token_hash != except_session)
    result = await conn.execute(update(Session).where(*where).values(revoked_ms=now_ms()))
    return result.rowcount or 0



async def recent_failures(conn, school_id: bytes, login: str) -> int:  # type: ignore[no-untyped-def]
    """Failed sign-ins (and recoveries) of one login in the last 15 minutes, with those being tried now:
    the limit counts both."""
    return await conn.scalar(
        select(func.count())
        .select_from(SignInAttempt)
        .where(
            SignInAttempt.school_id == school_id,
            SignInAttempt.login == login,
            SignInAttempt.at_ms > now_ms() - FAILURE_WINDOW_MS,
        )
    )


class Attempt:
    """One sign-in or recovery attempt, counted against the account's limit *before* its proof is checked.

    ``claim`` records the attempt (committed), then counts the account's attempts in the window. Each
    claimant counts after its own row is committed, so the k-th row to commit sees at least k rows: however
    many try at once, at most ``MAX_FAILURES`` see room and go on to have their proof checked, on SQLite
    and PostgreSQL alike. A refused claimant takes its row back; so does an attempt that succeeds or fails
    for a reason that is not a failed proof (``settle``). A failed proof leaves its row: that is the count.
    """

    FAILURES = frozenset({"sign_in_failed", "totp_required", "recovery_failed", "password_change_failed"})

    def __init__(self, engine: AsyncEngine, attempt_id: int) -> None:
        self.engine, self.id = engine, attempt_id

    @classmethod
    async def claim(cls, engine: AsyncEngine, school_id: bytes, login: str) -> Attempt:
        async with engine.begin() as conn:
            row = await conn.execute(insert(SignInAttempt).values(school_id=school_id, login=login, at_ms=now_ms()))
            attempt = cls(engine, row.inserted_primary_key[0])
        async with engine.connect() as conn:
            tried = await recent_failures(conn, school_id, login)
        if tried > MAX_FAILURES:
            await attempt.release()
            raise ApiError(
                "too_many_attempts", f"more than {MAX_FAILURES} failed attempts in 15 minutes; wait and retry"
            )
        return attempt

    async def release(self) -> None:
        async with self.engine.begin() as conn:
            await conn.execute(delete(SignInAttempt).where(SignInAttempt.id == self.id))

    async def settle(self, error: BaseException | None) -> None:
        """After the attempt: keep the row only for a failed proof or code."""
        if not (isinstance(error, ApiError) and error.code in self.FAILURES):
            await self.release()


async def take_challenge(conn, challenge_id: bytes) -> Challenge | None:  # type: ignore[no-untyped-def]
    """The challenge, deleted as it is read so that two requests racing with it cannot both use it."""
    challenge = (await conn.execute(select(Challenge).where(Challenge.id == challenge_id))).first()
    if challenge is None or challenge.expires_ms < now_ms():
        return None
    taken = await conn.execute(delete(Challenge).where(Challenge.id == challenge_id))
    return challenge if taken.rowcount == 1 else None


def totp_uri(login: str, secret: str) -> str:
    """The otpauth URI an authenticator app reads (as a QR code) to enrol ``secret``."""
    return pyotp.TOTP(secret).provisioning_uri(name=login, issuer_name="Cairn")


def needs_second_factor(roles: frozenset[str] | set[str]) -> bool:
    """Every account that reads concerns, and every admin, signs in with a TOTP code too."""
    return bool(set(roles) & SECOND_FACTOR_ROLES)


@dataclass(frozen=True)
class Principal:
    """Who is on the other end: a user of a school, on one device, with roles."""

    school_id: bytes
    user_id: bytes
    device_id: bytes
    device_pk: bytes = field(repr=False)
    roles: frozenset[str]
    request_id: str | None = None
    session: bytes = field(default=b"", repr=False)  # the session's token hash: it names the session
    expires_ms: int = 0
    deliver_only: bool = False  # a delivery connection (PROTOCOL 3.2): no session, puts only

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
        """Check the proof (and TOTP); register the device if it is new; open a session bound to it. The
        attempt is counted against the account's limit before the proof is looked at."""
        async with self.engine.begin() as conn:
            challenge = await take_challenge(conn, challenge_id)
        if challenge is None or challenge.login.startswith("recover:"):
            raise ApiError("sign_in_failed", "the challenge is unknown or expired; start again")
        school_id, login = bytes(challenge.school_id), challenge.login
        attempt = await Attempt.claim(self.engine, school_id, login)
        try:
            await self.prepare_enrolment(school_id, login)
            out = await self._finish(school_id, login, bytes(challenge.nonce), signature, totp, device_id, device_pk)
        except BaseException as exc:
            await attempt.settle(exc)
            raise
        await attempt.settle(None)
        return out

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
            await self.second_factor(conn, account, totp)
            device = (
                await conn.execute(select(Device).where(Device.school_id == school_id, Device.id == device_id))
            ).first()
            if device is None:
                if device_pk is None:
                    raise ApiError("invalid_request", "a new device must send its public key", {"device_pk": "missing"})
                await id_free(conn, device_id=device_id)
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
            "school_id": school_id,
            "user_id": bytes(account.id),
            "roles": sorted(roles),
            "bundle": bytes(account.bundle),
            "device_known": device is not None,
        }

    async def second_factor(self, conn, account: Account, code: str | None) -> None:  # type: ignore[no-untyped-def]
        """For an account that needs one (readers and admins), after a good first factor: the TOTP code, used
        once. An account without a confirmed authenticator (a reading role or admin added after joining,
        or one that never signed in with its code) is enrolled: the answer ``totp_enrolment_required``
        carries its secret and otpauth URI, and the sign-in completes only with a first good code."""
        if not needs_second_factor(frozenset(account.roles.split())):
            return
        secret = account.totp_secret
        if secret is None:  # a role that needs one was added since prepare_enrolment looked
            raise ApiError("sign_in_failed", "this account's roles changed while signing in; try again")
        if account.totp_confirmed_ms is None:
            if not code:
                raise ApiError(
                    "totp_enrolment_required",
                    "this account needs an authenticator: add this secret to one, then sign in with its code",
                    extra={"totp_secret": secret, "totp_uri": totp_uri(account.login, secret)},
                )
        elif not code:
            raise ApiError("totp_required", "this account needs a code from your authenticator")
        step = _matching_step(secret, code, account.totp_last_step)
        used = None
        if step is not None:  # each step once: of two sign-ins racing with one code, one wins
            used = await conn.execute(
                update(Account)
                .where(Account.school_id == account.school_id, Account.id == account.id, Account.totp_last_step < step)
                .values(totp_last_step=step, totp_confirmed_ms=account.totp_confirmed_ms or now_ms())
            )
        if used is None or used.rowcount != 1:
            raise ApiError("sign_in_failed", "the one-time code is not right, or was already used")

    async def prepare_enrolment(self, school_id: bytes, login: str) -> None:
        """Before a sign-in or recovery is checked: an account that needs a second factor and has no TOTP
        secret yet (a reading role or admin added after joining, or an account older than that rule) gets
        one, committed at once so that the secret an enrolment answer shows is the one the next attempt
        checks. Of two attempts racing here, the first one's secret stands. It is shown only after a good
        first factor, and never once an authenticator is confirmed."""
        async with self.engine.begin() as conn:
            roles = await conn.scalar(
                select(Account.roles).where(
                    Account.school_id == school_id,
                    Account.login == login,
                    Account.totp_secret.is_(None),
                    Account.left_ms.is_(None),
                )
            )
            if roles is not None and needs_second_factor(frozenset(roles.split())):
                await conn.execute(
                    update(Account)
                    .where(Account.school_id == school_id, Account.login == login, Account.totp_secret.is_(None))
                    .values(totp_secret=pyotp.random_base32())
                )

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
        await id_free(conn, device_id=device_id)
        try:
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
        except IntegrityError:  # taken meanwhile, by another school's device
            raise ApiError("id_taken", "this device id is in use; sign in again as a new device") from None

    # --- sessions ------------------------------------------------------------------------------

    async def principal(self, token: str) -> Principal:
        """The principal of an HTTP request's bearer token."""
        try:
            principal = await self._session(hash_token(token))
        except ProtocolError:
            principal = None  # a revoked device: over HTTP it is simply not signed in
        if principal is None:
            raise ApiError("unauthenticated", "sign in again")
        return principal

    async def _session(self, session: bytes, request_id: str | None = None) -> Principal | None:
        async with self.engine.connect() as conn:
            s = (await conn.execute(_SESSION_STATE.where(Session.token_hash == session))).first()
        if s is not None and s.device_revoked_ms is not None:
            raise ProtocolError(
                "device_revoked", "this device was revoked; wipe its local store", request_id=request_id
            )
        if _ended(s) is not None:
            return None
        return Principal(
            bytes(s.school_id),
            bytes(s.user_id),
            bytes(s.device_id),
            bytes(s.public_key),
            frozenset(s.roles.split()),
            request_id,
            session,
            s.expires_ms,
        )

    async def session_ended(self, session: bytes) -> str | None:
        """Why a session no longer holds (a reason of ``server.hub.REASONS``), or None while it does. One
        lookup by primary key: an open socket asks this on every frame it receives."""
        async with self.engine.connect() as conn:
            return _ended((await conn.execute(_SESSION_STATE.where(Session.token_hash == session))).first())

    async def authenticate_delivery(self, deliver: Deliver, nonce: bytes) -> Principal:
        """The websocket's ``deliver`` frame: the device's delivery proof over this connection's nonce. No
        session: the connection may only put envelopes the device key signed, and lives while the device is
        not revoked (``delivery_ended``)."""
        async with self.engine.connect() as conn:
            d = (
                await conn.execute(
                    select(Device.school_id, Device.user_id, Device.public_key, Device.delivery_pk, Device.revoked_ms,
                           Account.left_ms)
                    .join(Account, (Account.school_id == Device.school_id) & (Account.id == Device.user_id))
                    .where(Device.id == deliver.device_id)
                )
            ).first()
        if d is None or d.delivery_pk is None:
            raise ProtocolError("auth_failed", "this device has no delivery key", request_id=deliver.id)
        if d.revoked_ms is not None or d.left_ms is not None:
            raise ProtocolError("device_revoked", "this device was revoked", request_id=deliver.id)
        try:
            verify_delivery_auth(bytes(d.delivery_pk), bytes(d.school_id), deliver.device_id, nonce, deliver.signature)
        except CryptoError:
            raise ProtocolError("auth_failed", "the delivery proof does not verify", request_id=deliver.id) from None
        return Principal(bytes(d.school_id), bytes(d.user_id), deliver.device_id, bytes(d.public_key), frozenset(),
                         deliver.id, b"", 2**53 - 1, True)

    async def delivery_ended(self, school_id: bytes, device_id: bytes) -> str | None:
        """Why a delivery connection no longer holds (its device revoked, its account left), or None."""
        async with self.engine.connect() as conn:
            d = (
                await conn.execute(
                    select(Device.revoked_ms, Account.left_ms)
                    .join(Account, (Account.school_id == Device.school_id) & (Account.id == Device.user_id))
                    .where(Device.school_id == school_id, Device.id == device_id)
                )
            ).first()
        if d is None or d.revoked_ms is not None:
            return "device_revoked"
        return "left_school" if d.left_ms is not None else None

    async def set_delivery_key(self, school_id: bytes, device_id: bytes, public_key: bytes) -> None:
        async with self.engine.begin() as conn:
            await conn.execute(
                update(Device)
                .where(Device.school_id == school_id, Device.id == device_id)
                .values(delivery_pk=public_key)
            )

    async def authenticate_device(self, auth: Auth, nonce: bytes) -> Principal:
        """The websocket's auth frame: a live session for this device, and the device's proof."""
        principal = await self._session(hash_token(auth.token), auth.id)
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
