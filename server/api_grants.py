"""Grants over a school's life: the duties of keyholder devices, approvals, single holders, rotation,
and the admin routes for role and class changes and for leaving (docs/PROTOCOL.md, "Keyholder duties and leaving").

The server never makes a grant and never approves one by itself: it says what is owed (the rules of
``sync.entitlement`` over roles, classes and the grants it stores) and checks what keyholder devices
send. An admin changes roles and classes; the keys follow only through a keyholder's device.
"""

from __future__ import annotations

from sqlalchemy import delete, insert, select, update
from sqlalchemy.exc import IntegrityError
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from crypto.grant import GRANT_BYTES
from sync import entitlement as rules
from sync.protocol import b64e

from ._body import Body
from .api import _check_grant, _engine, _principal
from .errors import ApiError
from .models import (
    ROLES,
    Account,
    ClassPupil,
    ClassTeacher,
    Device,
    Grant,
    PendingGrant,
    Pupil,
    ReaderKey,
    RotationDue,
    SchoolClass,
    Session,
)
from .storage import now_ms

__all__ = ["ROUTES", "school_view", "leave"]

ID = 16
DECISIONS = {"approve": "approved", "decline": "declined"}


async def school_view(conn, school_id: bytes) -> rules.View:  # type: ignore[no-untyped-def]
    """The rules' view of one school, read in the caller's transaction."""
    roles = {
        bytes(r[0]): r[1].split()
        for r in await conn.execute(
            select(Account.id, Account.roles).where(Account.school_id == school_id, Account.left_ms.is_(None))
        )
    }
    teaches: dict[bytes, set[bytes]] = {}
    for user_id, pupil_id in await conn.execute(
        select(ClassTeacher.user_id, ClassPupil.pupil_id)
        .join(
            ClassPupil,
            (ClassPupil.school_id == ClassTeacher.school_id) & (ClassPupil.class_id == ClassTeacher.class_id),
        )
        .where(ClassTeacher.school_id == school_id)
    ):
        teaches.setdefault(bytes(user_id), set()).add(bytes(pupil_id))
    keys = [
        (bytes(r[0]), int(r[1]), r[2])
        for r in await conn.execute(
            select(ReaderKey.id, ReaderKey.version, ReaderKey.purpose).where(ReaderKey.school_id == school_id)
        )
    ]
    pupil_of = {
        bytes(r[0]): bytes(r[1])
        for r in await conn.execute(select(Pupil.reader_key_id, Pupil.id).where(Pupil.school_id == school_id))
    }
    holdings = [
        (bytes(r[0]), int(r[1]), bytes(r[2]))
        for r in await conn.execute(
            select(Grant.reader_key_id, Grant.reader_version, Grant.member_id).where(
                Grant.school_id == school_id, Grant.revoked_ms.is_(None)
            )
        )
    ]
    return rules.view_of(roles, teaches, keys, pupil_of, holdings)


async def _insert_new(conn, model: type, rows: list[dict]) -> None:  # type: ignore[no-untyped-def]
    """Insert rows, skipping any whose key another request inserted first (no IntegrityError, no 500)."""
    if not rows:
        return
    if conn.dialect.name == "postgresql":
        from sqlalchemy.dialects.postgresql import insert as dialect_insert
    else:
        from sqlalchemy.dialects.sqlite import insert as dialect_insert
    await conn.execute(dialect_insert(model).values(rows).on_conflict_do_nothing())


def _current(view: rules.View, key_id: bytes) -> int:
    return view.versions[key_id][-1]


# --- keyholder duties ------------------------------------------------------------------------------


async def duties(request: Request) -> Response:
    """What this user's device owes: grants of key versions it holds to members entitled without
    approval, and new versions of keys someone left, when it holds the current one."""
    p = await _principal(request)
    async with _engine(request).connect() as conn:
        view = await school_view(conn, p.school_id)
        due = {
            bytes(r[0])
            for r in await conn.execute(select(RotationDue.reader_key_id).where(RotationDue.school_id == p.school_id))
        }
    rotations = [
        {
            "reader_key_id": b64e(key_id),
            "purpose": view.purposes[key_id],
            "version": _current(view, key_id),
            "members": [b64e(m) for m in rules.holders_for(view, key_id)],
        }
        for key_id in sorted(due)
        if key_id in view.versions
        and _current(view, key_id) in view.held(key_id, p.user_id)
        and view.approved_safeguarding(p.user_id)
    ]
    grants = [
        {"reader_key_id": b64e(k), "version": v, "member_id": b64e(m)} for k, v, m in rules.owed_by(view, p.user_id)
    ]
    return JSONResponse({"grants": grants, "rotations": rotations})


async def rotate(request: Request) -> Response:
    """A keyholder device publishes a reader key's next version with its grants to every member entitled
    to it; the older versions stop being current (they are kept, and owed to the holders)."""
    p = await _principal(request, "safeguarding")
    body = await Body.read(request, {"reader_key_id", "version", "public_key", "grants"})
    key_id, public_key = body.bytes("reader_key_id", ID), body.bytes("public_key", 32)
    version = body.data.get("version")
    if type(version) is not int or not 2 <= version < 2**31:
        body.errors["version"] = "invalid"
    raws = [body.decode(f"grants[{n}]", g, GRANT_BYTES) for n, g in enumerate(body.list("grants", 1000))]
    body.done()
    async with _engine(request).begin() as conn:
        view = await school_view(conn, p.school_id)
        if key_id not in view.versions:
            raise ApiError("unknown_key", "this school lists no such reader key")
        current = _current(view, key_id)
        if current not in view.held(key_id, p.user_id) or not view.approved_safeguarding(p.user_id):
            raise ApiError("forbidden", "only a safeguarding keyholder holding the current version makes the next")
        if version != current + 1:
            raise ApiError("stale_duty", f"the next version of this key is {current + 1}", {"version": "stale"})
        try:
            await conn.execute(
                insert(ReaderKey).values(
                    school_id=p.school_id,
                    id=key_id,
                    version=version,
                    purpose=view.purposes[key_id],
                    public_key=public_key,
                    created_ms=now_ms(),
                    current=True,
                )
            )
        except IntegrityError:  # another keyholder device made this version a moment ago
            raise ApiError("stale_duty", "another device made this version first", {"version": "stale"}) from None
        await conn.execute(
            update(ReaderKey)
            .where(ReaderKey.school_id == p.school_id, ReaderKey.id == key_id, ReaderKey.version < version)
            .values(current=False)
        )
        rows = [await _check_grant(conn, p, raw, n) for n, raw in enumerate(raws)]
        if any(r["reader_key_id"] != key_id or r["reader_version"] != version for r in rows):
            raise ApiError("invalid_grant", "every grant of a rotation is for the new version", {"grants": "mixed"})
        sealed_to = {r["member_id"] for r in rows}
        missing = [m for m in rules.holders_for(view, key_id) if m not in sealed_to]
        if missing or len(sealed_to) != len(rows):
            raise ApiError(
                "stale_duty",
                "the new version must be sealed once to every member entitled to it",
                {"grants": f"{len(missing)} missing"},
            )
        try:
            await conn.execute(insert(Grant), rows)
        except IntegrityError:
            raise ApiError("conflict", "a grant for this key version and member already exists") from None
        await conn.execute(
            delete(RotationDue).where(RotationDue.school_id == p.school_id, RotationDue.reader_key_id == key_id)
        )
    await request.app.state.services.audit(
        p.school_id, "keys.rotate", user=p.user_id, device=p.device_id, target=f"{b64e(key_id)} v{version}"
    )
    return JSONResponse({"version": version, "stored": len(rows)}, status_code=201)


# --- approvals ------------------------------------------------------------------------------------


async def _pending_rows(conn, school_id: bytes, view: rules.View) -> list:  # type: ignore[no-untyped-def]
    """The open approvals: a row per (member, group) the rules say waits, made when first seen."""
    waiting = rules.pending(view)
    rows = {
        (bytes(r.member_id), r.purpose): r
        for r in await conn.execute(select(PendingGrant).where(PendingGrant.school_id == school_id))
    }
    fresh = [
        {"school_id": school_id, "member_id": m, "purpose": purpose, "requested_ms": now_ms()}
        for m, purpose in waiting
        if (m, purpose) not in rows
    ]
    if fresh:
        await _insert_new(conn, PendingGrant, fresh)
        return await _pending_rows(conn, school_id, view)
    return [rows[w] for w in waiting if rows[w].decision is None]


async def approvals(request: Request) -> Response:
    """Members waiting for a safeguarding keyholder to approve a group's key, oldest first, with age."""
    p = await _principal(request, "safeguarding")
    async with _engine(request).begin() as conn:
        view = await school_view(conn, p.school_id)
        rows = await _pending_rows(conn, p.school_id, view)
        names = {
            bytes(r[0]): (r[1], r[2])
            for r in await conn.execute(
                select(Account.id, Account.login, Account.display_name).where(Account.school_id == p.school_id)
            )
        }
    at = now_ms()
    return JSONResponse(
        {
            "pending": [
                {
                    "member_id": b64e(bytes(r.member_id)),
                    "login": names[bytes(r.member_id)][0],
                    "display_name": names[bytes(r.member_id)][1],
                    "purpose": r.purpose,
                    "requested_ms": r.requested_ms,
                    "age_ms": max(0, at - r.requested_ms),
                }
                for r in sorted(rows, key=lambda r: r.requested_ms)
            ]
        }
    )


async def decide_approval(request: Request) -> Response:
    """A safeguarding keyholder approves (after its device sealed the group key to the member) or
    declines a pending grant. Approving checks that the grant is there: the approval is the grant."""
    p = await _principal(request, "safeguarding")
    body = await Body.read(request, {"member_id", "purpose", "decision"})
    member, purpose = body.bytes("member_id", ID), body.str("purpose", 80, r"group:[a-z][a-z0-9_-]{0,40}")
    decision = body.str("decision", 20, "approve|decline")
    body.done()
    async with _engine(request).begin() as conn:
        view = await school_view(conn, p.school_id)
        if not view.approved_safeguarding(p.user_id):
            raise ApiError("forbidden", "only a safeguarding keyholder may decide approvals")
        await _pending_rows(conn, p.school_id, view)
        row = (
            await conn.execute(
                select(PendingGrant.decision).where(
                    PendingGrant.school_id == p.school_id,
                    PendingGrant.member_id == member,
                    PendingGrant.purpose == purpose,
                )
            )
        ).first()
        key_id = next((k for k, x in view.purposes.items() if x == purpose), None)
        if (row is not None and row[0] is not None) or key_id is None or purpose[6:] not in view.roles.get(member, ()):
            raise ApiError("not_found", "no pending approval for this member and group")
        if decision == "approve" and _current(view, key_id) not in view.held(key_id, member):
            raise ApiError("grant_missing", "seal the group's current key to the member first, then approve")
        if decision == "decline" and view.held(key_id, member):
            raise ApiError("conflict", "the member already holds this group's key; to undo it, they leave the group")
        if row is None:  # granted before the request was first listed: the approval records it
            await _insert_new(
                conn,
                PendingGrant,
                [{"school_id": p.school_id, "member_id": member, "purpose": purpose, "requested_ms": now_ms()}],
            )
        await conn.execute(
            update(PendingGrant)
            .where(
                PendingGrant.school_id == p.school_id,
                PendingGrant.member_id == member,
                PendingGrant.purpose == purpose,
            )
            .values(decided_ms=now_ms(), decision=DECISIONS[decision], decided_by=p.user_id)
        )
    await request.app.state.services.audit(
        p.school_id, f"approval.{decision}", user=p.user_id, device=p.device_id, target=f"{b64e(member)} {purpose}"
    )
    return JSONResponse({"decision": DECISIONS[decision]})


async def single_holders(request: Request) -> Response:
    """Reader keys whose current version has one holder or none: a risk of losing records."""
    p = await _principal(request, "safeguarding", "admin")
    async with _engine(request).connect() as conn:
        view = await school_view(conn, p.school_id)
    flagged = []
    for key_id, versions in sorted(view.versions.items()):
        holders = [m for m in view.roles if versions[-1] in view.held(key_id, m)]
        if len(holders) <= 1:
            flagged.append(
                {
                    "reader_key_id": b64e(key_id),
                    "version": versions[-1],
                    "purpose": view.purposes[key_id],
                    "holders": [b64e(m) for m in holders],
                }
            )
    return JSONResponse({"keys": flagged})


# --- admin: roles, classes, leaving ---------------------------------------------------------------


async def add_roles(request: Request) -> Response:
    """Give a member more roles. A group role's key waits for a safeguarding keyholder's approval."""
    p = await _principal(request, "admin")
    body = await Body.read(request, {"user_id", "roles"})
    member, roles = body.bytes("user_id", ID), body.data.get("roles")
    if not isinstance(roles, list) or not roles or any(r not in ROLES for r in roles):
        body.errors["roles"] = f"a non-empty list from {', '.join(ROLES)}"
    body.done()
    async with _engine(request).begin() as conn:
        had = await conn.scalar(
            select(Account.roles).where(
                Account.school_id == p.school_id, Account.id == member, Account.left_ms.is_(None)
            )
        )
        if had is None:
            raise ApiError("not_found", "no such member of this school")
        now = " ".join(sorted(set(had.split()) | set(roles)))
        await conn.execute(
            update(Account).where(Account.school_id == p.school_id, Account.id == member).values(roles=now)
        )
        for role in set(roles) - set(had.split()):  # a role given again after leaving it waits afresh
            await conn.execute(
                delete(PendingGrant).where(
                    PendingGrant.school_id == p.school_id,
                    PendingGrant.member_id == member,
                    PendingGrant.purpose == f"group:{role}",
                )
            )
        await _pending_rows(conn, p.school_id, await school_view(conn, p.school_id))
    await request.app.state.services.audit(
        p.school_id, "roles.add", user=p.user_id, device=p.device_id, target=f"{b64e(member)} {' '.join(sorted(roles))}"
    )
    return JSONResponse({"roles": now.split()})


async def assign_teacher(request: Request) -> Response:
    """Make a teacher a class's teacher; the next online keyholder device grants the pupils' keys."""
    p = await _principal(request, "admin")
    body = await Body.read(request, {"class_id", "user_id"})
    class_id, member = body.bytes("class_id", ID), body.bytes("user_id", ID)
    body.done()
    async with _engine(request).begin() as conn:
        known = await conn.scalar(
            select(SchoolClass.id).where(SchoolClass.school_id == p.school_id, SchoolClass.id == class_id)
        )
        roles = await conn.scalar(
            select(Account.roles).where(
                Account.school_id == p.school_id, Account.id == member, Account.left_ms.is_(None)
            )
        )
        if known is None or roles is None:
            raise ApiError("not_found", "no such class or member in this school")
        if "teacher" not in roles.split():
            raise ApiError("invalid_request", "only a teacher can teach a class", {"user_id": "not_a_teacher"})
        try:
            await conn.execute(insert(ClassTeacher).values(school_id=p.school_id, class_id=class_id, user_id=member))
        except IntegrityError:
            raise ApiError("conflict", "this member already teaches this class") from None
    await request.app.state.services.audit(
        p.school_id, "class.teacher_add", user=p.user_id, device=p.device_id, target=f"{b64e(class_id)} {b64e(member)}"
    )
    return JSONResponse({"assigned": True}, status_code=201)


async def leave(request: Request) -> Response:
    """Someone leaves the school, a class or a group (a role): their sessions and devices are revoked at
    once, their open sockets closed on every instance, the grants they may no longer hold dropped, and
    each of those reader keys marked for a new version."""
    p = await _principal(request, "admin")
    body = await Body.read(request, {"user_id", "scope", "class_id", "role"})
    member = body.bytes("user_id", ID)
    scope = body.str("scope", 10, "school|class|group")
    class_id = body.bytes("class_id", ID) if scope == "class" else None
    role = body.str("role", 40, "|".join(ROLES)) if scope == "group" else None
    if scope == "school":
        for name in ("class_id", "role"):
            if name in body.data:
                body.errors[name] = "not_for_this_scope"
    body.done()
    async with _engine(request).begin() as conn:
        roles = await conn.scalar(
            select(Account.roles).where(
                Account.school_id == p.school_id, Account.id == member, Account.left_ms.is_(None)
            )
        )
        if roles is None:
            raise ApiError("not_found", "no such member of this school")
        if scope == "class":
            gone = await conn.execute(
                delete(ClassTeacher).where(
                    ClassTeacher.school_id == p.school_id,
                    ClassTeacher.class_id == class_id,
                    ClassTeacher.user_id == member,
                )
            )
            if gone.rowcount == 0:
                raise ApiError("not_found", "this member does not teach this class")
        elif scope == "group":
            if role not in roles.split():
                raise ApiError("not_found", "this member does not have this role")
            if roles.split() == [role]:
                raise ApiError(
                    "invalid_request",
                    "a member keeps at least one role; to leave, leave the school",
                    {"role": "last_role"},
                )
            rest = " ".join(r for r in roles.split() if r != role)
            await conn.execute(
                update(Account).where(Account.school_id == p.school_id, Account.id == member).values(roles=rest)
            )
            await conn.execute(
                delete(PendingGrant).where(
                    PendingGrant.school_id == p.school_id,
                    PendingGrant.member_id == member,
                    PendingGrant.purpose == f"group:{role}",
                )
            )
        else:
            await conn.execute(
                update(Account).where(Account.school_id == p.school_id, Account.id == member).values(left_ms=now_ms())
            )
            await conn.execute(
                delete(ClassTeacher).where(ClassTeacher.school_id == p.school_id, ClassTeacher.user_id == member)
            )
            await conn.execute(
                delete(PendingGrant).where(PendingGrant.school_id == p.school_id, PendingGrant.member_id == member)
            )
        dropped = await _drop_grants(conn, p.school_id, member, everything=scope == "school")
        await conn.execute(
            update(Device)
            .where(Device.school_id == p.school_id, Device.user_id == member, Device.revoked_ms.is_(None))
            .values(revoked_ms=now_ms())
        )
        await conn.execute(
            update(Session)
            .where(Session.school_id == p.school_id, Session.user_id == member, Session.revoked_ms.is_(None))
            .values(revoked_ms=now_ms())
        )
    reason = "left_school" if scope == "school" else "access_changed"
    closed = await request.app.state.services.end_sessions(p.school_id, user_id=member, reason=reason)
    await request.app.state.services.audit(
        p.school_id, f"leave.{scope}", user=p.user_id, device=p.device_id, target=b64e(member)
    )
    return JSONResponse({"left": scope, "keys_to_rotate": len(dropped), "sockets_closed": closed})


async def _drop_grants(conn, school_id: bytes, member: bytes, *, everything: bool) -> list[bytes]:  # type: ignore[no-untyped-def]
    """Delete the member's grants of every key it may no longer hold (all of them when it left the
    school); each such key, roster keys aside, is due a new version. Returns the keys dropped."""
    view = await school_view(conn, school_id)
    if everything:
        keys = sorted(
            {
                bytes(r[0])
                for r in await conn.execute(
                    select(Grant.reader_key_id).where(Grant.school_id == school_id, Grant.member_id == member)
                )
            }
        )
    else:
        keys = rules.to_drop(view, member)
    for key_id in keys:
        await conn.execute(
            delete(Grant).where(Grant.school_id == school_id, Grant.member_id == member, Grant.reader_key_id == key_id)
        )
        if view.purposes.get(key_id, "").startswith(("roster:", "signing:")):
            continue  # roster keys are not rotated (docs/THREAT-MODEL.md section 5); the signing key has its own path
        await _insert_new(conn, RotationDue, [{"school_id": school_id, "reader_key_id": key_id, "due_ms": now_ms()}])
    return keys


ROUTES: list[tuple[str, str, object, tuple[str, ...] | None]] = [
    ("/api/v1/keyholder/duties", "GET", duties, ()),
    ("/api/v1/keys/rotate", "POST", rotate, ("safeguarding",)),
    ("/api/v1/keys/single-holder", "GET", single_holders, ("safeguarding", "admin")),
    ("/api/v1/approvals", "GET", approvals, ("safeguarding",)),
    ("/api/v1/approvals", "POST", decide_approval, ("safeguarding",)),
    ("/api/v1/admin/roles", "POST", add_roles, ("admin",)),
    ("/api/v1/admin/class-teachers", "POST", assign_teacher, ("admin",)),
    ("/api/v1/admin/leave", "POST", leave, ("admin",)),
]
