"""Grants over a school's life: keyholder duties, approvals, single holders, rotation, and the admin routes
for role and class changes and for leaving (docs/PROTOCOL.md 13 and 14).

The server never makes a grant and never approves anything: it says what is owed (the rules of
``sync.entitlement`` over the **signed** roles and classes, server/authority.py) and checks what keyholder
devices send. An admin's change of roles or classes is a request: it is noted (who, when, why) and waits,
listed by ``GET /api/v1/approvals``, until a safeguarding keyholder approves it on their own device, which
signs the approval into the next directory version. A keyholder may also decline it, which undoes the
request. Narrowing (leaving a class, a group or the school) takes effect at once.
"""

from __future__ import annotations

from sqlalchemy import delete, insert, select, update
from sqlalchemy.exc import IntegrityError
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from crypto.approval import item_from_json
from crypto.directory import DirectoryContent, read_directory, widenings
from crypto.grant import GRANT_BYTES
from sync import entitlement as rules
from sync.directory import item_key, items_json
from sync.protocol import ProtocolError, b64d, b64e

from ._body import Body, plain_text
from .api import _check_grant, _engine
from .api_directory import school_state
from .auth import KEYHOLDER, SIGNED_IN, ApiRoute, principal
from .errors import ApiError
from .models import (
    ROLES,
    AccessRequest,
    Account,
    ClassPupil,
    ClassTeacher,
    Device,
    DirectoryVersion,
    EntryGrant,
    Grant,
    Invitation,
    Pupil,
    ReaderKey,
    RotationDue,
    SchoolClass,
    Session,
)
from .storage import now_ms

__all__ = ["ROUTES", "leave", "note_request"]

ID = 16
LOG_VERSIONS = 50  # the change log lists the approvals of this many newest versions
MAX_REASON = 500
MAX_ENTRY_DUTIES = 1000  # entry key grants to make again, per duties answer (the rest in later rounds)


async def _insert_new(conn, model: type, rows: list[dict]) -> None:  # type: ignore[no-untyped-def]
    """Insert rows, skipping any whose key another request inserted first (no IntegrityError, no 500)."""
    if not rows:
        return
    if conn.dialect.name == "postgresql":
        from sqlalchemy.dialects.postgresql import insert as dialect_insert
    else:
        from sqlalchemy.dialects.sqlite import insert as dialect_insert
    await conn.execute(dialect_insert(model).values(rows).on_conflict_do_nothing())


async def note_request(conn, school_id: bytes, subjects: list[str], by: bytes, reason: str) -> None:  # type: ignore[no-untyped-def]
    """Note who asked for these widenings, when and why (the newest note for a subject wins)."""
    if not subjects:
        return
    await conn.execute(
        delete(AccessRequest).where(AccessRequest.school_id == school_id, AccessRequest.subject.in_(subjects))
    )
    await conn.execute(
        insert(AccessRequest),
        [
            {"school_id": school_id, "subject": s, "requested_by": by, "requested_ms": now_ms(),
             "reason": reason[:MAX_REASON]}
            for s in sorted(set(subjects))
        ],
    )


def _reason(body: Body) -> str:
    reason = body.data.get("reason", "")
    if reason != "" and not plain_text(reason, MAX_REASON):  # a NUL is refused here, not by PostgreSQL
        body.errors["reason"] = "invalid"
        return ""
    return reason


def _current(view: rules.View, key_id: bytes) -> int:
    return view.versions[key_id][-1]


# --- keyholder duties ------------------------------------------------------------------------------


async def duties(request: Request) -> Response:
    """What this user's device owes, if it is an approved keyholder's: grants of key versions it holds to
    members the signed roles and classes entitle, new versions of keys someone left, when it holds the
    current one, and entry key grants to make again because their granter is no longer a keyholder's device
    (``entry_grants``: the device re-seals only to a person the concern names). Anyone else owes nothing."""
    p = principal(request)
    if KEYHOLDER not in p.roles:
        return JSONResponse({"grants": [], "rotations": [], "entry_grants": []})
    services = request.app.state.services
    async with _engine(request).connect() as conn:
        view = await services.authority.view(conn, p.school_id)
        rows_versions = {
            bytes(r[0]): int(r[1])
            for r in await conn.execute(
                select(ReaderKey.id, ReaderKey.version).where(ReaderKey.school_id == p.school_id, ReaderKey.current)
            )
        }
        due = {
            bytes(r[0])
            for r in await conn.execute(select(RotationDue.reader_key_id).where(RotationDue.school_id == p.school_id))
        }
        orphaned = await _orphaned_entry_grants(conn, services.authority, p.school_id)
    rotations = [
        {
            "reader_key_id": b64e(key_id),
            "purpose": view.purposes[key_id],
            "version": _current(view, key_id),
            "members": [b64e(m) for m in rules.holders_for(view, key_id)],
        }
        for key_id in sorted(due)
        if key_id in view.versions
        and rows_versions.get(key_id) == _current(view, key_id)  # not rotated already, waiting to be signed
        and _current(view, key_id) in view.held(key_id, p.user_id)
    ]
    grants = [
        {"reader_key_id": b64e(k), "version": v, "member_id": b64e(m)} for k, v, m in rules.owed_by(view, p.user_id)
    ]
    entry_grants = [
        {"concern_id": b64e(c), "entry_version": v, "member_id": b64e(m)} for c, v, m in orphaned
    ]
    return JSONResponse({"grants": grants, "rotations": rotations, "entry_grants": entry_grants})


async def _orphaned_entry_grants(conn, authority, school_id: bytes) -> list[tuple[bytes, int, bytes]]:  # type: ignore[no-untyped-def]
    """Stored entry key grants to current members whose granter device is revoked or no longer an approved
    keyholder's (a person's device refuses those, PROTOCOL 5.1): concern, version, member, at most
    ``MAX_ENTRY_DUTIES`` a round, so that a keyholder's device makes them again and the naming outlives its
    keyholder."""
    rows = [
        (bytes(c), int(v), bytes(m), bytes(g))
        for c, v, m, g in await conn.execute(
            select(EntryGrant.concern_id, EntryGrant.entry_version, EntryGrant.member_id, EntryGrant.granter_device)
            .join(Account, (Account.school_id == EntryGrant.school_id) & (Account.id == EntryGrant.member_id))
            .where(EntryGrant.school_id == school_id, Account.left_ms.is_(None))
            .order_by(EntryGrant.concern_id, EntryGrant.entry_version, EntryGrant.member_id)
        )
    ]
    live = await authority.keyholder_devices(conn, school_id, {g for *_, g in rows})
    return [(c, v, m) for c, v, m, g in rows if g not in live][:MAX_ENTRY_DUTIES]


async def rotate(request: Request) -> Response:
    """An approved keyholder's device publishes a reader key's next version with its grants to every member
    entitled to it; the older versions stop being current (they are kept, and owed to the holders). The new
    version reaches the directory with that device's own approval (PROTOCOL 13.4)."""
    p = principal(request)
    body = await Body.read(request, {"reader_key_id", "version", "public_key", "grants"})
    key_id, public_key = body.bytes("reader_key_id", ID), body.bytes("public_key", 32)
    version = body.data.get("version")
    if type(version) is not int or not 2 <= version < 2**31:
        body.errors["version"] = "invalid"
    raws = [body.decode(f"grants[{n}]", g, GRANT_BYTES) for n, g in enumerate(body.list("grants", 1000))]
    body.done()
    services = request.app.state.services
    async with _engine(request).begin() as conn:
        view = await services.authority.view(conn, p.school_id)
        if key_id not in view.versions:
            raise ApiError("unknown_key", "the signed directory lists no such reader key")
        current = await conn.scalar(
            select(ReaderKey.version).where(
                ReaderKey.school_id == p.school_id, ReaderKey.id == key_id, ReaderKey.current
            )
        )
        if current != _current(view, key_id):
            raise ApiError("stale_duty", "this key has a new version waiting to be signed", {"version": "stale"})
        if current not in view.held(key_id, p.user_id):
            raise ApiError("forbidden", "only a keyholder holding the current version makes the next")
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
        entitled = set(rules.holders_for(view, key_id))
        rows = [await _check_grant(conn, p, raw, n, view, {(key_id, version)}, entitled) for n, raw in enumerate(raws)]
        if any(r["reader_key_id"] != key_id or r["reader_version"] != version for r in rows):
            raise ApiError("invalid_grant", "every grant of a rotation is for the new version", {"grants": "mixed"})
        sealed_to = {r["member_id"] for r in rows}
        missing = entitled - sealed_to
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
    await services.granted(p.school_id, sealed_to)
    await services.audit(
        p.school_id, "keys.rotate", user=p.user_id, device=p.device_id, target=f"{b64e(key_id)} v{version}"
    )
    return JSONResponse({"version": version, "stored": len(rows)}, status_code=201)


# --- approvals ------------------------------------------------------------------------------------


async def approvals(request: Request) -> Response:
    """What waits for a safeguarding keyholder: each widening the school's rows hold that the newest signed
    version does not, with who asked, when and why; and the change log (the approvals of recent versions,
    with their signed bytes, so a device can check each against the directory it holds). For an approved
    keyholder and for admins, who see that what they asked for waits."""
    p = principal(request)
    services = request.app.state.services
    async with _engine(request).connect() as conn:
        signed = await services.authority.signed(conn, p.school_id)
        content, _ = await school_state(conn, p.school_id)
        notes = {
            r.subject: r
            for r in await conn.execute(select(AccessRequest).where(AccessRequest.school_id == p.school_id))
        }
        invited = {
            bytes(r.user_id): r
            for r in await conn.execute(
                select(Invitation.user_id, Invitation.invited_by, Invitation.created_ms, Invitation.reason).where(
                    Invitation.school_id == p.school_id, Invitation.user_id.is_not(None)
                )
            )
        }
        people = {
            bytes(r[0]): {"user_id": b64e(r[0]), "login": r[1], "display_name": r[2]}
            for r in await conn.execute(
                select(Account.id, Account.login, Account.display_name).where(Account.school_id == p.school_id)
            )
        }
        log_rows = (
            await conn.execute(
                select(DirectoryVersion.version, DirectoryVersion.body)
                .where(DirectoryVersion.school_id == p.school_id)
                .order_by(DirectoryVersion.version.desc())
                .limit(LOG_VERSIONS)
            )
        ).all()
    at = now_ms()
    pending = []
    wide = widenings(signed.content if signed else DirectoryContent(), content) if signed else set()
    for item, shown in zip(sorted(wide, key=item_key), items_json(sorted(wide, key=item_key)), strict=True):
        note = notes.get(item_key(item))
        by, when, why = (note.requested_by, note.requested_ms, note.reason) if note else (None, None, "")
        if note is None and item[0] in ("account", "role", "teaches"):
            user = item[1] if item[0] != "teaches" else item[2]
            invitation = invited.get(user)
            if invitation is not None:
                by, when, why = invitation.invited_by, invitation.created_ms, invitation.reason
        pending.append({
            "item": shown,
            "subject": item_key(item),
            "requested_by": people.get(bytes(by)) if by else None,
            "requested_ms": when,
            "age_ms": max(0, at - when) if when else None,
            "reason": why,
        })
    log = []
    for row in log_rows:
        version = read_directory(bytes(row.body))
        for a in version.approvals:
            log.append({
                "version": row.version,
                "approval_id": b64e(a.approval_id),
                "approver": people.get(a.approver_user, {"user_id": b64e(a.approver_user)}),
                "approver_device": b64e(a.approver_device),
                "created_ms": a.created_ms,
                "items": items_json(a.items),
                "approval": b64e(a.raw),
            })
    return JSONResponse({"signed_version": signed.version if signed else 0, "pending": pending, "log": log})


async def decline(request: Request) -> Response:
    """An approved keyholder declines widenings that wait (``items`` as ``GET /api/v1/approvals`` lists
    them): each request is undone in the rows — a role taken back, a teacher or pupil taken out of a
    class, a new account closed, a new pupil or key version removed — so nobody reads by it."""
    p = principal(request)
    body = await Body.read(request, {"items", "reason"})
    raw_items = body.list("items", 1000)
    reason = _reason(body)
    items = []
    for n, raw in enumerate(raw_items):
        try:
            items.append(item_from_json(raw, lambda v, name: b64d(v, name)) if isinstance(raw, dict) else None)
        except (ValueError, TypeError, ProtocolError):  # a field that is not base64url is invalid like the rest
            items.append(None)
        if items[-1] is None:
            body.errors[f"items[{n}]"] = "invalid"
    body.done()
    services = request.app.state.services
    closed_accounts = []
    async with _engine(request).begin() as conn:
        signed = await services.authority.signed(conn, p.school_id)
        content, _ = await school_state(conn, p.school_id)
        wide = widenings(signed.content, content) if signed else set()
        for n, item in enumerate(items):
            if item not in wide:
                raise ApiError("not_found", f"item {n} is not waiting for approval", {f"items[{n}]": "not_pending"})
        for item in items:
            closed_accounts += await _undo(conn, p.school_id, item)
        await conn.execute(
            delete(AccessRequest).where(
                AccessRequest.school_id == p.school_id, AccessRequest.subject.in_([item_key(i) for i in items])
            )
        )
    for user in closed_accounts:
        await services.end_sessions(p.school_id, user_id=user, reason="left_school")
    await services.audit(
        p.school_id, "approval.decline", user=p.user_id, device=p.device_id,
        target=f"{len(items)} items {reason}"[:200],
    )
    return JSONResponse({"declined": len(items)})


async def _undo(conn, school_id: bytes, item: tuple) -> list[bytes]:  # type: ignore[no-untyped-def]
    """Undo one requested widening in the rows; returns the accounts closed by it."""
    kind, at = item[0], now_ms()
    if kind == "role":
        roles = await conn.scalar(select(Account.roles).where(Account.school_id == school_id, Account.id == item[1]))
        rest = " ".join(r for r in (roles or "").split() if r != item[2])
        await conn.execute(
            update(Account).where(Account.school_id == school_id, Account.id == item[1]).values(roles=rest)
        )
    elif kind == "teaches":
        await conn.execute(
            delete(ClassTeacher).where(
                ClassTeacher.school_id == school_id, ClassTeacher.class_id == item[1], ClassTeacher.user_id == item[2]
            )
        )
    elif kind == "in_class":
        await conn.execute(
            delete(ClassPupil).where(
                ClassPupil.school_id == school_id, ClassPupil.class_id == item[1], ClassPupil.pupil_id == item[2]
            )
        )
    elif kind == "account":
        await conn.execute(
            update(Account).where(Account.school_id == school_id, Account.id == item[1]).values(left_ms=at)
        )
        await conn.execute(
            delete(ClassTeacher).where(ClassTeacher.school_id == school_id, ClassTeacher.user_id == item[1])
        )
        for model in (Device, Session):
            await conn.execute(
                update(model)
                .where(model.school_id == school_id, model.user_id == item[1], model.revoked_ms.is_(None))
                .values(revoked_ms=at)
            )
        return [item[1]]
    elif kind == "pupil":
        await conn.execute(delete(ClassPupil).where(ClassPupil.school_id == school_id, ClassPupil.pupil_id == item[1]))
        await conn.execute(delete(Pupil).where(Pupil.school_id == school_id, Pupil.id == item[1]))
    elif kind == "key":
        await conn.execute(
            delete(Grant).where(
                Grant.school_id == school_id, Grant.reader_key_id == item[1], Grant.reader_version >= item[2]
            )
        )
        await conn.execute(
            delete(ReaderKey).where(
                ReaderKey.school_id == school_id, ReaderKey.id == item[1], ReaderKey.version >= item[2]
            )
        )
        await conn.execute(
            update(ReaderKey)
            .where(ReaderKey.school_id == school_id, ReaderKey.id == item[1], ReaderKey.version == item[2] - 1)
            .values(current=True)
        )
    return []


async def single_holders(request: Request) -> Response:
    """Reader keys whose current version has one holder or none: a risk of losing records."""
    p = principal(request)
    async with _engine(request).connect() as conn:
        view = await request.app.state.services.authority.view(conn, p.school_id)
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
    """Ask for more roles for a member: the request waits for a safeguarding keyholder's approval."""
    p = principal(request)
    body = await Body.read(request, {"user_id", "roles", "reason"})
    member, roles = body.bytes("user_id", ID), body.data.get("roles")
    if not isinstance(roles, list) or not roles or any(not isinstance(r, str) or r not in ROLES for r in roles):
        body.errors["roles"] = f"a non-empty list from {', '.join(ROLES)}"
    reason = _reason(body)
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
        added = sorted(set(roles) - set(had.split()))
        await note_request(conn, p.school_id, [f"role:{b64e(member)}:{r}" for r in added], p.user_id, reason)
    await request.app.state.services.audit(
        p.school_id, "roles.add", user=p.user_id, device=p.device_id, target=f"{b64e(member)} {' '.join(sorted(roles))}"
    )
    return JSONResponse({"roles": now.split(), "waiting": added})


async def assign_teacher(request: Request) -> Response:
    """Ask for a teacher to teach a class: once a keyholder approves, the pupils' keys follow."""
    p = principal(request)
    body = await Body.read(request, {"class_id", "user_id", "reason"})
    class_id, member = body.bytes("class_id", ID), body.bytes("user_id", ID)
    reason = _reason(body)
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
        await note_request(conn, p.school_id, [f"teaches:{b64e(class_id)}:{b64e(member)}"], p.user_id, reason)
    await request.app.state.services.audit(
        p.school_id, "class.teacher_add", user=p.user_id, device=p.device_id, target=f"{b64e(class_id)} {b64e(member)}"
    )
    return JSONResponse({"assigned": True, "waiting": True}, status_code=201)


async def leave(request: Request) -> Response:
    """Someone leaves the school, a class or a group (a role): their sessions and devices are revoked at
    once, their open sockets closed on every instance, the grants they may no longer hold dropped, and
    each of those reader keys marked for a new version."""
    p = principal(request)
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
    services = request.app.state.services
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
        else:
            await conn.execute(
                update(Account).where(Account.school_id == p.school_id, Account.id == member).values(left_ms=now_ms())
            )
            await conn.execute(
                delete(ClassTeacher).where(ClassTeacher.school_id == p.school_id, ClassTeacher.user_id == member)
            )
        dropped = await _drop_grants(conn, services, p.school_id, member, everything=scope == "school")
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
    closed = await services.end_sessions(p.school_id, user_id=member, reason=reason)
    await services.audit(p.school_id, f"leave.{scope}", user=p.user_id, device=p.device_id, target=b64e(member))
    return JSONResponse({"left": scope, "keys_to_rotate": len(dropped), "sockets_closed": closed})


async def _drop_grants(conn, services, school_id: bytes, member: bytes, *, everything: bool) -> list[bytes]:  # type: ignore[no-untyped-def]
    """Delete the member's grants of every key it may no longer hold (all of them when it left the
    school); each such key, roster keys aside, is due a new version. Returns the keys dropped."""
    view = await services.authority.view(conn, school_id)
    held = sorted(
        {
            bytes(r[0])
            for r in await conn.execute(
                select(Grant.reader_key_id).where(Grant.school_id == school_id, Grant.member_id == member)
            )
        }
    )
    keys = held if everything else [k for k in held if not rules.may_hold(view, member, k)]
    if everything:  # need-to-know namings end with the account
        await conn.execute(delete(EntryGrant).where(EntryGrant.school_id == school_id, EntryGrant.member_id == member))
    for key_id in keys:
        await conn.execute(
            delete(Grant).where(Grant.school_id == school_id, Grant.member_id == member, Grant.reader_key_id == key_id)
        )
        if view.purposes.get(key_id, "").startswith(("roster:", "signing:")):
            continue  # roster keys are not rotated (docs/THREAT-MODEL.md section 5); the signing key has its own path
        await _insert_new(conn, RotationDue, [{"school_id": school_id, "reader_key_id": key_id, "due_ms": now_ms()}])
    return keys


ROUTES: list[ApiRoute] = [
    ApiRoute("/api/v1/keyholder/duties", "GET", duties, SIGNED_IN),
    ApiRoute("/api/v1/keys/rotate", "POST", rotate, (KEYHOLDER,)),
    ApiRoute("/api/v1/keys/single-holder", "GET", single_holders, (KEYHOLDER, "admin")),
    ApiRoute("/api/v1/approvals", "GET", approvals, (KEYHOLDER, "admin")),
    ApiRoute("/api/v1/approvals/decline", "POST", decline, (KEYHOLDER,)),
    ApiRoute("/api/v1/admin/roles", "POST", add_roles, ("admin",)),
    ApiRoute("/api/v1/admin/class-teachers", "POST", assign_teacher, ("admin",)),
    ApiRoute("/api/v1/admin/leave", "POST", leave, ("admin",)),
]
