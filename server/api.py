"""HTTP endpoints under ``/api/v1``: sign-in, registration, the school's directory, keys and grants,
and the admin routes for invitations, classes and pupils. Each is ``async def endpoint(request)``.

Authorisation is declared once, in the route table (server/auth.py), by the effective roles of docs/ARCHITECTURE.md's
People and Authority: the admin role runs accounts and classes but
can never publish a reader key or a grant, so running the school gives no read access.
"""

from __future__ import annotations

import re

from sqlalchemy import insert, select
from sqlalchemy.exc import IntegrityError
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from crypto import (
    CryptoError,
    KdfParams,
    verify_device_cert,
    verify_grant,
    verify_identity_binding,
    verify_roster_entry,
)
from crypto.bundle import SEALED_BYTES
from crypto.grant import GRANT_BYTES
from sync import entitlement as rules
from sync.protocol import b64e

from . import api_directory, api_password, api_recovery, api_review, api_staff
from ._body import Body, plain_text
from ._staff_csv import StaffCsvError, StaffRow
from .accounts import Principal, hash_token, id_free, needs_second_factor, totp_uri
from .auth import FOUNDER, KEYHOLDER, PUBLIC, SIGNED_IN, ApiRoute, principal
from .auth import routes as auth_routes
from .errors import ApiError
from .models import (
    ROLES,
    Account,
    ClassPupil,
    ClassTeacher,
    Device,
    Grant,
    Invitation,
    Pupil,
    ReaderKey,
    RosterRecord,
    SchoolClass,
)
from .staff import invite_staff
from .storage import now_ms

__all__ = ["routes", "ROUTES"]

ID = 16
INVITE_MS = 14 * 24 * 3600 * 1000
LOGIN = r"[A-Za-z0-9._@+-]{1,200}"
PURPOSE = r"group:[a-z][a-z0-9_-]{0,40}|roster:staff|roster:sensitive|signing:directory"


def _engine(request: Request):  # type: ignore[no-untyped-def]
    return request.app.state.services.engine


# --- sign-in and registration -------------------------------------------------------------------


async def sign_in_start(request: Request) -> Response:
    body = await Body.read(request, {"school_id", "login"})
    school_id, login = body.bytes("school_id", ID), body.str("login", pattern=LOGIN)
    body.done()
    out = await request.app.state.services.accounts.start(school_id, login)
    return JSONResponse({k: b64e(v) for k, v in out.items()})


async def sign_in_finish(request: Request) -> Response:
    body = await Body.read(request, {"challenge_id", "signature", "totp", "device_id", "device_pk"})
    args = (
        body.bytes("challenge_id", ID),
        body.bytes("signature", 64),
        body.str("totp", 10, r"\d{6}", optional=True),
        body.bytes("device_id", ID),
        body.bytes("device_pk", 32, optional=True),
    )
    body.done()
    out = await request.app.state.services.accounts.finish(*args)
    school_id = out.pop("school_id")  # the challenge's school: a user id alone names no school
    await request.app.state.services.audit(school_id, "sign_in", user=out["user_id"], device=args[3])
    return JSONResponse({**out, "user_id": b64e(out["user_id"]), "bundle": b64e(out["bundle"])})


async def certify_device(request: Request) -> Response:
    """Step two of signing in on a new device: its certificate, made with the identity key from the bundle."""
    header = request.headers.get("authorization", "")
    if not header.startswith("Bearer "):
        raise ApiError("unauthenticated", "send the session token as 'Authorization: Bearer ...'")
    body = await Body.read(request, {"cert"})
    cert = body.bytes("cert", 153)
    body.done()
    school_id, user_id, device_id = await request.app.state.services.accounts.certify_device(header[7:], cert)
    await request.app.state.services.audit(school_id, "device.certify", user=user_id, device=device_id)
    return Response(status_code=204)


async def sign_out(request: Request) -> Response:
    """End this session, and close its open sync sockets on every instance."""
    p = principal(request)
    await request.app.state.services.end_sessions(p.school_id, session=p.session, reason="signed_out")
    await request.app.state.services.audit(p.school_id, "sign_out", user=p.user_id, device=p.device_id)
    return Response(status_code=204)


async def register(request: Request) -> Response:
    """An invitee's device sends the public half of everything it made; the server learns no secret."""
    body = await Body.read(
        request,
        {
            "school_id",
            "code",
            "kdf_params",
            "login_pk",
            "identity_x25519_pk",
            "identity_ed25519_pk",
            "identity_binding",
            "bundle",
            "recovery_bundle",
            "recovery_auth_pk",
            "device_id",
            "device_pk",
            "device_cert",
        },
    )
    school_id, code = body.bytes("school_id", ID), body.str("code", 64)
    params = body.bytes("kdf_params", 26)
    keys = {
        name: body.bytes(name, 32)
        for name in ("login_pk", "identity_x25519_pk", "identity_ed25519_pk", "recovery_auth_pk", "device_pk")
    }
    binding = body.bytes("identity_binding", 64)
    bundle, recovery = body.bytes("bundle", SEALED_BYTES), body.bytes("recovery_bundle", SEALED_BYTES)
    device_id, cert = body.bytes("device_id", ID), body.bytes("device_cert", 153)
    body.done()
    try:
        KdfParams.decode(params)
    except CryptoError as exc:
        raise ApiError("invalid_request", f"KDF parameters: {exc}", {"kdf_params": exc.code}) from None
    try:
        certified = verify_device_cert(cert, keys["identity_ed25519_pk"])
    except CryptoError as exc:
        raise ApiError("invalid_request", f"device certificate: {exc}", {"device_cert": exc.code}) from None
    try:
        verify_identity_binding(binding, keys["identity_ed25519_pk"], school_id, certified.user_id,
                                keys["identity_x25519_pk"])
    except CryptoError as exc:
        raise ApiError("invalid_request", f"identity binding: {exc}", {"identity_binding": exc.code}) from None
    async with _engine(request).begin() as conn:
        invite = (
            await conn.execute(
                select(Invitation)
                .where(Invitation.school_id == school_id, Invitation.code_hash == hash_token(code))
                .with_for_update()
            )
        ).first()
        if invite is None or invite.used_ms is not None or invite.expires_ms < now_ms():
            raise ApiError("invalid_invitation", "the invitation code is unknown, used or expired")
        user_id = certified.user_id
        if (certified.school_id, certified.device_id, certified.device_pk) != (school_id, device_id, keys["device_pk"]):
            raise ApiError(
                "invalid_request", "the device certificate is for another device", {"device_cert": "mismatch"}
            )
        roles = set(invite.roles.split())
        await id_free(conn, user_id=user_id, device_id=device_id)  # no school's account or device has them
        totp_secret = pyotp_secret() if needs_second_factor(roles) else None
        await conn.execute(
            Invitation.__table__.update()
            .where(Invitation.school_id == school_id, Invitation.code_hash == hash_token(code))
            .values(used_ms=now_ms(), user_id=user_id)
        )
        try:
            await conn.execute(
                insert(Account).values(
                    school_id=school_id,
                    id=user_id,
                    login=invite.login,
                    display_name=invite.display_name,
                    roles=invite.roles,
                    kdf_params=params,
                    login_pk=keys["login_pk"],
                    identity_x25519_pk=keys["identity_x25519_pk"],
                    identity_ed25519_pk=keys["identity_ed25519_pk"],
                    identity_binding=binding,
                    bundle=bundle,
                    recovery_bundle=recovery,
                    recovery_auth_pk=keys["recovery_auth_pk"],
                    totp_secret=totp_secret,
                    created_ms=now_ms(),
                )
            )
            await conn.execute(
                insert(Device).values(
                    school_id=school_id,
                    id=device_id,
                    user_id=user_id,
                    public_key=keys["device_pk"],
                    cert=cert,
                    created_ms=now_ms(),
                    last_counter=0,
                    last_hash=bytes(32),
                )
            )
            for class_id in invite.classes.split():  # the classes the invitation names (server/staff.py)
                await conn.execute(
                    insert(ClassTeacher).values(school_id=school_id, class_id=bytes.fromhex(class_id), user_id=user_id)
                )
        except IntegrityError:
            raise ApiError("conflict", "this account or device already exists") from None
    await request.app.state.services.audit(
        school_id, "account.register", user=user_id, device=device_id, target=invite.login
    )
    out = {"user_id": b64e(user_id), "login": invite.login, "roles": sorted(roles)}
    if totp_secret:
        out["totp_secret"] = totp_secret
        out["totp_uri"] = totp_uri(invite.login, totp_secret)
    return JSONResponse(out, status_code=201)


def pyotp_secret() -> str:
    import pyotp

    return pyotp.random_base32()


# --- the school's keys, pupils and grants ----------------------------------------------------------


async def publish_keys(request: Request) -> Response:
    """New group or roster reader keys (their first versions, public halves only), with this device's own
    grants of them, in one transaction. Each purpose has one key id, fixed when it is first published; a
    new version is a rotation (``POST /api/v1/keys/rotate``). An approved keyholder, or the founding
    account before the school's first directory version."""
    p = principal(request)
    body = await Body.read(request, {"keys", "grants"})
    rows = []
    for n, item in enumerate(body.list("keys", 100)):
        if not isinstance(item, dict) or not isinstance(item.get("purpose"), str):
            body.errors[f"keys[{n}]"] = "invalid"
            continue
        rows.append(_key_row(body, p.school_id, item, f"keys[{n}]", PURPOSE))
    raws = [body.decode(f"grants[{n}]", g, GRANT_BYTES) for n, g in enumerate(body.list("grants", 1000))]
    for n, row in enumerate(rows):
        if row["version"] != 1:
            body.errors[f"keys[{n}].version"] = "first_version_is_1"
    body.done()
    services = request.app.state.services
    async with _engine(request).begin() as conn:
        taken = {
            r[0]
            for r in await conn.execute(
                select(ReaderKey.purpose).where(
                    ReaderKey.school_id == p.school_id, ReaderKey.purpose.in_([r["purpose"] for r in rows])
                )
            )
        }
        if taken or len({r["purpose"] for r in rows}) != len(rows):
            raise ApiError("key_pinned", "each purpose has one key, fixed when first published: rotate it instead",
                           {"keys": "purpose_taken"})
        await _insert_rows(conn, ReaderKey, rows)
        made = {(r["id"], 1) for r in rows}
        view = await services.authority.view(conn, p.school_id)
        grants = [await _check_grant(conn, p, raw, n, view, made) for n, raw in enumerate(raws)]
        await _insert_rows(conn, Grant, grants)
    await services.granted(p.school_id, {g["member_id"] for g in grants})
    await services.audit(p.school_id, "keys.publish", user=p.user_id, device=p.device_id, target=str(len(rows)))
    return JSONResponse({"published": len(rows), "stored": len(grants)}, status_code=201)


def _key_row(body: Body, school_id: bytes, item: dict, where: str, purpose_pattern: str) -> dict:
    version = item.get("version")
    if type(version) is not int or not 1 <= version < 2**31:
        body.errors[f"{where}.version"] = "invalid"
    purpose = item.get("purpose", "pupil")
    if not isinstance(purpose, str) or not re.fullmatch(purpose_pattern, purpose):
        body.errors[f"{where}.purpose"] = "invalid"
    return {
        "school_id": school_id,
        "id": body.decode(f"{where}.id", item.get("id"), ID),
        "version": version,
        "purpose": purpose,
        "public_key": body.decode(f"{where}.public_key", item.get("public_key"), 32),
        "created_ms": now_ms(),
        "current": True,
    }


async def _insert(request: Request, *batches: tuple[type, list[dict]]) -> None:
    """Insert each batch of rows into its table, all in one transaction: a conflict stores none of them."""
    async with _engine(request).begin() as conn:
        for model, rows in batches:
            await _insert_rows(conn, model, rows)


async def _insert_rows(conn, model: type, rows: list[dict]) -> None:  # type: ignore[no-untyped-def]
    if not rows:
        return
    try:
        await conn.execute(insert(model), rows)
    except IntegrityError:  # the transaction rolls back as the error leaves it: nothing is half-written
        raise ApiError("conflict", "some of these already exist, or name what this school does not have") from None


async def add_pupils(request: Request) -> Response:
    """An approved keyholder's device adds pupils (pseudonymous ids) with their reader keys and its own
    grants of them, in one transaction; the pupils reach the directory with that keyholder's approval."""
    p = principal(request)
    body = await Body.read(request, {"pupils", "grants"})
    pupils, keys = [], []
    for n, item in enumerate(body.list("pupils", 1000)):
        if not isinstance(item, dict) or not isinstance(item.get("reader_key"), dict):
            body.errors[f"pupils[{n}]"] = "invalid"
            continue
        if not isinstance(item.get("reader_key"), dict):
            body.errors[f"pupils[{n}].reader_key"] = "missing" if item.get("reader_key") is None else "invalid"
            continue
        key = _key_row(
            body, p.school_id, {**item["reader_key"], "purpose": "pupil"}, f"pupils[{n}].reader_key", "pupil"
        )
        if key["version"] != 1:
            body.errors[f"pupils[{n}].reader_key.version"] = "first_version_is_1"
        keys.append(key)
        pupils.append(
            {
                "school_id": p.school_id,
                "id": body.decode(f"pupils[{n}].id", item.get("id"), ID),
                "reader_key_id": key["id"],
                "created_ms": now_ms(),
            }
        )
    raws = [body.decode(f"grants[{n}]", g, GRANT_BYTES) for n, g in enumerate(body.list("grants", 1000))]
    body.done()
    services = request.app.state.services
    async with _engine(request).begin() as conn:
        await _insert_rows(conn, ReaderKey, keys)
        await _insert_rows(conn, Pupil, pupils)
        view = await services.authority.view(conn, p.school_id)
        grants = [await _check_grant(conn, p, raw, n, view, {(k["id"], 1) for k in keys}) for n, raw in enumerate(raws)]
        await _insert_rows(conn, Grant, grants)
    await services.granted(p.school_id, {g["member_id"] for g in grants})
    await services.audit(p.school_id, "pupils.add", user=p.user_id, device=p.device_id, target=str(len(pupils)))
    return JSONResponse({"added": len(pupils), "stored": len(grants)}, status_code=201)


async def put_grants(request: Request) -> Response:
    """Grants made by an approved keyholder's device. The server checks what it can without any key: the
    granter is this device, the signature holds, it holds the key version, that version is listed in the
    signed directory, and the member may hold the key by the signed roles and classes."""
    p = principal(request)
    body = await Body.read(request, {"grants"})
    raws = [body.decode(f"grants[{n}]", g, GRANT_BYTES) for n, g in enumerate(body.list("grants", 1000))]
    body.done()
    services = request.app.state.services
    async with _engine(request).begin() as conn:
        view = await services.authority.view(conn, p.school_id)
        rows = [await _check_grant(conn, p, raw, n, view) for n, raw in enumerate(raws)]
        await _insert_rows(conn, Grant, rows)
    await services.granted(p.school_id, {r["member_id"] for r in rows})
    await services.audit(p.school_id, "grants.add", user=p.user_id, device=p.device_id, target=str(len(rows)))
    return JSONResponse({"stored": len(rows)}, status_code=201)


async def _check_grant(  # type: ignore[no-untyped-def]
    conn, p: Principal, raw: bytes, n: int, view: rules.View,
    making: set[tuple[bytes, int]] = frozenset(),  # type: ignore[assignment]
    making_for: set[bytes] | None = None,
) -> dict:
    """One grant of this device. A key version in ``making`` (made in this very request) may be sealed only
    to the granter itself, or to ``making_for`` (a rotation: the members the signed directory entitles);
    any other must be one the granter holds, listed in the view, for a member the rules entitle. So a key
    version nobody holds can be granted only by the device that made it."""
    where = {f"grants[{n}]": "invalid_grant"}
    try:
        info = verify_grant(raw, p.device_pk)
    except CryptoError as exc:
        raise ApiError("invalid_grant", f"grant {n}: {exc}", where) from None
    if info.school_id != p.school_id or info.granter_device != p.device_id:
        raise ApiError("invalid_grant", f"grant {n} was not made by this device for this school", where)
    key = (info.reader_key_id, info.reader_version)
    if key in making:
        if info.member_id not in (making_for if making_for is not None else {p.user_id}):
            raise ApiError("forbidden", f"grant {n}: a key made just now is sealed to its maker only", where)
    else:
        if info.reader_version not in view.versions.get(info.reader_key_id, ()):
            raise ApiError("unknown_key", f"grant {n} is for a reader key version the signed directory does not list",
                           where)
        if info.reader_version not in view.held(info.reader_key_id, p.user_id):
            raise ApiError("invalid_grant", f"grant {n}: the granter does not hold this key", where)
        if not rules.may_hold(view, info.member_id, info.reader_key_id):
            raise ApiError("forbidden", f"grant {n}: the member's approved roles do not allow this key", where)
    return {
        "school_id": p.school_id,
        "reader_key_id": info.reader_key_id,
        "reader_version": info.reader_version,
        "member_id": info.member_id,
        "granter_device": p.device_id,
        "grant": raw,
        "created_ms": now_ms(),
    }


async def my_grants(request: Request) -> Response:
    p = principal(request)
    async with _engine(request).connect() as conn:
        rows = (
            await conn.execute(
                select(Grant.grant).where(
                    Grant.school_id == p.school_id, Grant.member_id == p.user_id, Grant.revoked_ms.is_(None)
                )
            )
        ).all()
    return JSONResponse({"grants": [b64e(r[0]) for r in rows]})


async def delivery_key(request: Request) -> Response:
    """This device's delivery key (PROTOCOL 3.2): the public half of a key it keeps outside the person's sealed
    keys, so that it can deliver what it already sealed while its person is locked out. Replaces any before."""
    p = principal(request)
    body = await Body.read(request, {"public_key"})
    public_key = body.bytes("public_key", 32)
    body.done()
    await request.app.state.services.accounts.set_delivery_key(p.school_id, p.device_id, public_key)
    await request.app.state.services.audit(p.school_id, "device.delivery_key", user=p.user_id, device=p.device_id)
    return Response(status_code=204)


async def revoke_device(request: Request) -> Response:
    """Revoke a device at once: its sessions end and its open sockets are told and closed. Its owner
    may revoke it (a lost tablet), and so may an admin."""
    p = principal(request)
    body = await Body.read(request, {"device_id"})
    device_id = body.bytes("device_id", ID)
    body.done()
    async with _engine(request).begin() as conn:
        owner = await conn.scalar(select(Device.user_id).where(Device.school_id == p.school_id, Device.id == device_id))
        if owner is None:
            raise ApiError("not_found", "no such device in this school")
        if bytes(owner) != p.user_id and not p.has("admin"):
            raise ApiError("forbidden", "only the device's owner or an admin may revoke it")
        await conn.execute(
            Device.__table__.update()
            .where(Device.school_id == p.school_id, Device.id == device_id, Device.revoked_ms.is_(None))
            .values(revoked_ms=now_ms())
        )
    closed = await request.app.state.services.end_sessions(p.school_id, device_id=device_id, reason="device_revoked")
    await request.app.state.services.audit(
        p.school_id, "device.revoke", user=p.user_id, device=p.device_id, target=b64e(device_id)
    )
    return JSONResponse({"revoked": True, "sockets_closed": closed})


# --- the roster -----------------------------------------------------------------------------------


async def put_roster(request: Request) -> Response:
    """Roster entries sealed by this device (an admin's or a safeguarding keyholder's); the newest entry
    for a pupil under a roster key replaces the older one."""
    p = principal(request)
    body = await Body.read(request, {"entries"})
    raws = [body.decode(f"entries[{n}]", e, max_len=20_000) for n, e in enumerate(body.list("entries", 1000))]
    body.done()
    rows = []
    async with _engine(request).begin() as conn:
        purposes = {
            (bytes(r[0]), int(r[1])): r[2]
            for r in await conn.execute(
                select(ReaderKey.id, ReaderKey.version, ReaderKey.purpose).where(
                    ReaderKey.school_id == p.school_id, ReaderKey.purpose.like("roster:%")
                )
            )
        }
        pupils = {bytes(r[0]) for r in await conn.execute(select(Pupil.id).where(Pupil.school_id == p.school_id))}
        for n, raw in enumerate(raws):
            where = {f"entries[{n}]": "invalid"}
            try:
                entry = verify_roster_entry(raw, p.device_pk)
            except CryptoError as exc:
                raise ApiError("invalid_request", f"roster entry {n}: {exc}", where) from None
            if entry.school_id != p.school_id or entry.author_device != p.device_id:
                raise ApiError(
                    "invalid_request", f"roster entry {n} was not made by this device for this school", where
                )
            if (entry.key_id, entry.key_version) not in purposes:
                raise ApiError("unknown_key", f"roster entry {n} is sealed to a key that is not a roster key", where)
            if entry.pupil_id not in pupils:
                raise ApiError("not_found", f"roster entry {n} names a pupil not in this school", where)
            rows.append((entry, raw))
        for entry, raw in rows:
            await conn.execute(
                RosterRecord.__table__.delete().where(
                    RosterRecord.school_id == p.school_id,
                    RosterRecord.pupil_id == entry.pupil_id,
                    RosterRecord.key_id == entry.key_id,
                )
            )
            await conn.execute(
                insert(RosterRecord).values(
                    school_id=p.school_id,
                    pupil_id=entry.pupil_id,
                    key_id=entry.key_id,
                    key_version=entry.key_version,
                    body=raw,
                    updated_ms=now_ms(),
                )
            )
    await request.app.state.services.audit(
        p.school_id, "roster.put", user=p.user_id, device=p.device_id, target=str(len(rows))
    )
    return JSONResponse({"stored": len(rows)}, status_code=201)


async def get_roster(request: Request) -> Response:
    """The sealed roster: every signed-in staff member gets the staff roster; the sensitive one (dates of
    birth and flags) is not sent to contributors, mirroring who holds its key."""
    p = principal(request)
    allowed = ["roster:staff"] + (["roster:sensitive"] if p.roles - {"contributor"} else [])
    async with _engine(request).connect() as conn:
        rows = (
            await conn.execute(
                select(RosterRecord.body)
                .join(
                    ReaderKey,
                    (ReaderKey.school_id == RosterRecord.school_id)
                    & (ReaderKey.id == RosterRecord.key_id)
                    & (ReaderKey.version == RosterRecord.key_version),
                )
                .where(RosterRecord.school_id == p.school_id, ReaderKey.purpose.in_(allowed))
            )
        ).all()
    return JSONResponse({"entries": [b64e(r[0]) for r in rows]})


# --- admin: invitations and classes --------------------------------------------------------------


async def invite(request: Request) -> Response:
    """Invite one person: login (often their email), display name, roles, and the classes (by label) they
    will teach. Refused if they are on the staff already or hold a pending invitation."""
    p = principal(request)
    body = await Body.read(request, {"login", "display_name", "roles", "classes", "reason"})
    login, name = body.str("login", pattern=LOGIN), body.str("display_name")
    roles, classes = body.data.get("roles"), body.data.get("classes", [])
    if not isinstance(roles, list) or not roles or any(r not in ROLES for r in roles):
        body.errors["roles"] = f"a non-empty list from {', '.join(ROLES)}"
    if not isinstance(classes, list) or len(classes) > 50 or any(not plain_text(c, 100) for c in classes):
        body.errors["classes"] = "a list of class labels"
    elif classes and isinstance(roles, list) and "teacher" not in roles:
        body.errors["classes"] = "classes_need_teacher"
    reason = body.data.get("reason", "")
    if reason != "" and not plain_text(reason, 500):  # a NUL is refused here, not by PostgreSQL
        body.errors["reason"] = "invalid"
    body.done()
    row = StaffRow(0, name, login, tuple(sorted(set(roles))), tuple(sorted(set(classes))))
    try:
        (made,) = await invite_staff(
            _engine(request), p.school_id, [row], field_prefix=False, invited_by=p.user_id, reason=reason
        )
    except StaffCsvError as exc:
        raise ApiError("invalid_request", "this person cannot be invited", exc.fields) from None
    await request.app.state.services.audit(
        p.school_id, "invitation.create", user=p.user_id, device=p.device_id, target=login
    )
    out = {"code": made.code, "expires_ms": made.expires_ms, "classes": list(made.classes)}
    return JSONResponse(out, status_code=201)


async def add_classes(request: Request) -> Response:
    p = principal(request)
    body = await Body.read(request, {"classes"})
    rows, pupils, teachers = [], [], []
    for n, item in enumerate(body.list("classes", 200)):
        item = item if isinstance(item, dict) else {}
        class_id = body.decode(f"classes[{n}].id", item.get("id"), ID)
        label = item.get("label")
        if not plain_text(label, 100):
            body.errors[f"classes[{n}].label"] = "invalid"
        rows.append({"school_id": p.school_id, "id": class_id, "label": label})
        members = {name: item.get(name, []) for name in ("pupils", "teachers")}
        for name, value in members.items():
            if not isinstance(value, list) or len(value) > 1000:
                body.errors[f"classes[{n}].{name}"] = "must be a list of at most 1000 ids"
                members[name] = []
        for m, pupil in enumerate(members["pupils"]):
            pupils.append(
                {
                    "school_id": p.school_id,
                    "class_id": class_id,
                    "pupil_id": body.decode(f"classes[{n}].pupils[{m}]", pupil, ID),
                }
            )
        for m, teacher in enumerate(members["teachers"]):
            teachers.append(
                {
                    "school_id": p.school_id,
                    "class_id": class_id,
                    "user_id": body.decode(f"classes[{n}].teachers[{m}]", teacher, ID),
                }
            )
    body.done()
    await _insert(request, (SchoolClass, rows), (ClassPupil, pupils), (ClassTeacher, teachers))
    await request.app.state.services.audit(
        p.school_id, "classes.add", user=p.user_id, device=p.device_id, target=str(len(rows))
    )
    return JSONResponse({"added": len(rows)}, status_code=201)


ROUTES: list[ApiRoute] = [
    ApiRoute("/api/v1/sign-in/start", "POST", sign_in_start, PUBLIC),
    ApiRoute("/api/v1/sign-in/finish", "POST", sign_in_finish, PUBLIC),
    ApiRoute("/api/v1/devices/certify", "POST", certify_device, PUBLIC),  # a new device's own session
    ApiRoute("/api/v1/sign-out", "POST", sign_out, SIGNED_IN),
    ApiRoute("/api/v1/devices/revoke", "POST", revoke_device, SIGNED_IN),  # its owner, or an admin
    ApiRoute("/api/v1/devices/delivery-key", "POST", delivery_key, SIGNED_IN),
    ApiRoute("/api/v1/register", "POST", register, PUBLIC),
    ApiRoute("/api/v1/keys", "POST", publish_keys, (KEYHOLDER, FOUNDER)),
    ApiRoute("/api/v1/pupils", "POST", add_pupils, (KEYHOLDER,)),
    ApiRoute("/api/v1/grants", "POST", put_grants, (KEYHOLDER,)),
    ApiRoute("/api/v1/grants", "GET", my_grants, SIGNED_IN),
    ApiRoute("/api/v1/roster", "POST", put_roster, ("admin", KEYHOLDER)),
    ApiRoute("/api/v1/roster", "GET", get_roster, SIGNED_IN),
    ApiRoute("/api/v1/admin/invitations", "POST", invite, ("admin",)),
    ApiRoute("/api/v1/admin/classes", "POST", add_classes, ("admin",)),
]

ROUTES += api_staff.ROUTES + api_recovery.ROUTES + api_password.ROUTES
ROUTES += api_directory.ROUTES
ROUTES += api_review.ROUTES


from . import api_entry_grants, api_grants, held  # noqa: E402  (their routes use this module's helpers)

ROUTES += api_grants.ROUTES + held.ROUTES + api_entry_grants.ROUTES


def routes() -> list[Route]:
    """Every API route, each behind the ``allow`` check of its row (server/auth.py)."""
    return auth_routes([ApiRoute(*r) for r in ROUTES])
