"""The signed directory and the devices page over HTTP (docs/PROTOCOL.md sections 10 and 13).

``GET /api/v1/directory?since=N`` serves the newest version signed with the school's signing key and every
version after N before it (a device must follow each: each step's widenings are approved against the one
before), and whether the school's rows changed since the newest version: if so, a safeguarding keyholder's
device reads ``current`` and signs the next version — with what narrows or certifies at once, and with a
widening only once a keyholder approved it on their device.

``POST /api/v1/directory`` takes that version. The server checks what every client will check
(crypto/directory.py: bindings, certificates, nothing listed swapped or dropped, every widening covered
by an approval from a keyholder's device) and, as the second wall, that the version is the next one,
chains by hash, is signed with the key on file, lists nothing the rows do not hold, keeps what the rows
still hold of the version before it, and carries every revocation and leaver of the rows. The server
holds no signing key and cannot make a version; a version it refuses is one no client would accept.

``GET /api/v1/devices`` lists devices with their last-seen time for the devices page.
"""

from __future__ import annotations

from sqlalchemy import delete, select
from sqlalchemy.exc import IntegrityError
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from crypto import CryptoError
from crypto.directory import (
    DirAccount,
    DirClass,
    DirDevice,
    DirectoryContent,
    DirKey,
    DirPupil,
    SignedDirectory,
    check_content,
    check_transition,
    directory_hash,
    encode_content,
    read_directory,
    widenings,
)
from sync.directory import item_key
from sync.protocol import b64e

from ._body import Body
from .auth import KEYHOLDER, SIGNED_IN, ApiRoute, principal
from .errors import ApiError
from .models import (
    AccessRequest,
    Account,
    ClassPupil,
    ClassTeacher,
    Device,
    DirectoryVersion,
    Pupil,
    ReaderKey,
    School,
    SchoolClass,
)
from .storage import now_ms

__all__ = ["ROUTES", "school_state", "newest_version", "facts", "LINKS_PER_ANSWER"]

MAX_DIRECTORY = 3 * 1024 * 1024  # a school of 2,000 pupils is well under 500 KiB
LINKS_PER_ANSWER = 64  # versions served in one answer; ``more`` says to ask again


def _engine(request: Request):  # type: ignore[no-untyped-def]
    return request.app.state.services.engine


async def school_state(conn, school_id: bytes) -> tuple[DirectoryContent, dict]:  # type: ignore[no-untyped-def]
    """The school's current rows: keys, accounts, devices, pupils and classes, as directory content and as
    JSON (what a keyholder device checks and signs: identity bindings and device certificates too)."""
    where = lambda model: model.school_id == school_id  # noqa: E731
    accounts = [a for a in (await conn.execute(select(Account).where(where(Account)))).all() if a.identity_binding]
    listed = {bytes(a.id) for a in accounts}
    devices = [d for d in (await conn.execute(select(Device).where(where(Device)))).all() if bytes(d.user_id) in listed]
    keys = (await conn.execute(select(ReaderKey).where(where(ReaderKey)))).all()
    pupils = (await conn.execute(select(Pupil).where(where(Pupil)))).all()
    classes = (await conn.execute(select(SchoolClass).where(where(SchoolClass)))).all()
    members = (await conn.execute(select(ClassPupil).where(where(ClassPupil)))).all()
    teachers = [t for t in (await conn.execute(select(ClassTeacher).where(where(ClassTeacher)))).all()
                if bytes(t.user_id) in listed]
    content = DirectoryContent(
        tuple(
            DirAccount(bytes(a.id), tuple(a.roles.split()), bytes(a.identity_x25519_pk), bytes(a.identity_ed25519_pk),
                       bytes(a.identity_binding), a.left_ms is not None, a.login, a.display_name)
            for a in accounts
        ),
        tuple(
            DirDevice(bytes(d.id), bytes(d.user_id), bytes(d.public_key), int.from_bytes(bytes(d.cert)[81:89], "big"),
                      bytes(d.cert)[89:], d.revoked_ms is not None)
            for d in devices
        ),
        tuple(DirKey(bytes(k.id), k.version, k.purpose, bytes(k.public_key), bool(k.current)) for k in keys),
        tuple(DirPupil(bytes(x.id), bytes(x.reader_key_id)) for x in pupils),
        tuple(
            DirClass(
                bytes(c.id),
                c.label,
                tuple(bytes(m.pupil_id) for m in members if m.class_id == c.id),
                tuple(bytes(t.user_id) for t in teachers if t.class_id == c.id),
            )
            for c in classes
        ),
    )
    listing = {
        "accounts": [
            {"id": b64e(a.id), "login": a.login, "display_name": a.display_name, "roles": a.roles.split(),
             "identity_x25519_pk": b64e(a.identity_x25519_pk), "identity_ed25519_pk": b64e(a.identity_ed25519_pk),
             "binding": b64e(a.identity_binding), "left": a.left_ms is not None}
            for a in accounts
        ],
        "devices": [
            {"id": b64e(d.id), "user_id": b64e(d.user_id), "public_key": b64e(d.public_key), "cert": b64e(d.cert),
             "revoked": d.revoked_ms is not None}
            for d in devices
        ],
        "reader_keys": [
            {"id": b64e(k.id), "version": k.version, "purpose": k.purpose, "public_key": b64e(k.public_key),
             "current": bool(k.current)}
            for k in keys
        ],
        "pupils": [{"id": b64e(x.id), "reader_key_id": b64e(x.reader_key_id)} for x in pupils],
        "classes": [
            {"id": b64e(c.id), "label": c.label,
             "pupils": [b64e(m.pupil_id) for m in members if m.class_id == c.id],
             "teachers": [b64e(t.user_id) for t in teachers if t.class_id == c.id]}
            for c in classes
        ],
    }
    return content, listing


async def newest_version(conn, school_id: bytes):  # type: ignore[no-untyped-def]
    """The newest stored version's row (columns of DirectoryVersion), or None."""
    return (
        await conn.execute(
            select(DirectoryVersion)
            .where(DirectoryVersion.school_id == school_id)
            .order_by(DirectoryVersion.version.desc())
            .limit(1)
        )
    ).first()


def facts(c: DirectoryContent) -> set[tuple]:
    """The content as a set of facts, for the server's check that a version lists only what the rows hold."""
    out: set[tuple] = set()
    for a in c.accounts:
        out.add(("account", a.id, a.identity_x25519_pk, a.identity_ed25519_pk, a.binding, a.login, a.display_name))
        out |= {("role", a.id, r) for r in a.roles}
        if a.left:
            out.add(("left", a.id))
    for d in c.devices:
        out.add(("device", d.id, d.user_id, d.public_key, d.certified_ms, d.cert_signature))
        if d.revoked:
            out.add(("revoked", d.id))
    out |= {("key", k.id, k.version, k.purpose, k.public_key) for k in c.reader_keys}
    out |= {("pupil", x.id, x.reader_key_id) for x in c.pupils}
    for k in c.classes:
        out.add(("class", k.id, k.label))
        out |= {("in_class", k.id, x) for x in k.pupils}
        out |= {("teaches", k.id, t) for t in k.teachers}
    return out


async def get_directory(request: Request) -> Response:
    """The newest signed version; with ``?since=N`` (N ≥ 1) every version after N before it, at most
    LINKS_PER_ANSWER at a time; whether the school's rows changed since the newest version, how many
    widenings wait for a keyholder, and, for an approved keyholder when the rows changed, the current
    state to check and sign."""
    p = principal(request)
    raw_since = request.query_params.get("since", "0")
    if not (raw_since.isascii() and raw_since.isdigit()) or len(raw_since) > 15:
        raise ApiError("invalid_request", "since is a directory version number", {"since": "invalid"})
    since = int(raw_since)
    services = request.app.state.services
    async with _engine(request).connect() as conn:
        newest = await newest_version(conn, p.school_id)
        content, listing = await school_state(conn, p.school_id)
        links, signed_row, more = [], newest, False
        if newest is not None and 1 <= since < newest.version:
            rows = (
                await conn.execute(
                    select(DirectoryVersion.version, DirectoryVersion.body)
                    .where(DirectoryVersion.school_id == p.school_id, DirectoryVersion.version > since)
                    .order_by(DirectoryVersion.version)
                    .limit(LINKS_PER_ANSWER + 1)
                )
            ).all()
            if rows[-1].version != newest.version:  # more than one answer's worth: serve a page of them
                more = True
                signed_row = rows[-1]
            links = [b64e(r.body) for r in rows[:-1]]
        school_name = (await conn.execute(select(School.name).where(School.id == p.school_id))).scalar_one()
        signed = await services.authority.signed(conn, p.school_id)
    changed = signed is None or encode_content(content) != signed.content_bytes
    out: dict = {
        "school_name": school_name,  # for headings (a printed chronology); not signed, so never trusted for keys
        "version": newest.version if newest else 0,
        "signed": b64e(signed_row.body) if signed_row else None,
        "links": links,
        "more": more,
        "changed": changed,
    }
    if changed:
        before = signed.content if signed else DirectoryContent()
        out["changes"] = changes(before, content)
        out["pending"] = len(widenings(before, content)) if signed else 0
    if changed and KEYHOLDER in p.roles:
        out["current"] = listing
    return JSONResponse(out)


def changes(before: DirectoryContent, after: DirectoryContent) -> dict[str, int]:
    """What the next version would change, counted: so a keyholder (and its person) sees what it signs."""

    def diff(old: dict, new: dict) -> tuple[int, int, int]:
        return (
            len(new.keys() - old.keys()),
            sum(1 for k in new.keys() & old.keys() if new[k] != old[k]),
            len(old.keys() - new.keys()),
        )

    def accounts(c: DirectoryContent) -> dict:
        return {a.id: (frozenset(a.roles), a.identity_x25519_pk, a.identity_ed25519_pk, a.left, a.login,
                       a.display_name) for a in c.accounts}

    def classes(c: DirectoryContent) -> dict:
        return {k.id: (k.label, tuple(sorted(k.pupils)), tuple(sorted(k.teachers))) for k in c.classes}

    out: dict[str, int] = {}
    for name, old, new in (
        ("accounts", accounts(before), accounts(after)),
        ("devices", {d.id: d for d in before.devices}, {d.id: d for d in after.devices}),
        ("reader_keys", {(k.id, k.version): k for k in before.reader_keys},
         {(k.id, k.version): k for k in after.reader_keys}),
        ("pupils", {x.id: x for x in before.pupils}, {x.id: x for x in after.pupils}),
        ("classes", classes(before), classes(after)),
    ):
        added, changed, removed = diff(old, new)
        out.update({f"{name}_added": added, f"{name}_changed": changed, f"{name}_removed": removed})
    return out


async def publish_directory(request: Request) -> Response:
    """An approved safeguarding keyholder's device publishes the next signed version."""
    p = principal(request)
    body = await Body.read(request, {"signed"}, max_bytes=MAX_DIRECTORY * 2)
    raw = body.bytes("signed", max_len=MAX_DIRECTORY)
    body.done()
    try:
        signed = read_directory(raw)
        check_content(signed.school_id, signed.content)
    except CryptoError as exc:
        raise ApiError("invalid_directory", str(exc), {"signed": exc.code}) from None
    if signed.school_id != p.school_id:
        raise ApiError("invalid_directory", "the directory names another school", {"signed": "other_school"})
    services = request.app.state.services
    async with _engine(request).begin() as conn:
        newest = await newest_version(conn, p.school_id)
        _check_follows(signed, newest)
        before = read_directory(bytes(newest.body)) if newest is not None else None
        approved: set = set()
        if before is not None:
            try:
                approved = check_transition(before, signed)
            except CryptoError as exc:
                raise ApiError("unapproved_directory", str(exc), {"signed": exc.code}) from None
        elif signed.approvals:
            raise ApiError("invalid_directory", "version 1 carries no approvals", {"signed": "approvals"})
        content, _ = await school_state(conn, p.school_id)
        _check_rows(facts(signed.content), facts(content), facts(before.content) if before else set())
        try:
            await conn.execute(
                DirectoryVersion.__table__.insert().values(
                    school_id=p.school_id,
                    version=signed.version,
                    body=raw,
                    digest=directory_hash(raw),
                    signing_pk=signed.signing_pk,
                    next_signing_pk=signed.next_signing_pk,
                    signer_device=p.device_id,
                    created_ms=now_ms(),
                )
            )
        except IntegrityError:
            raise ApiError("stale_directory", "another device published this version first: read it again") from None
        if approved:
            await conn.execute(
                delete(AccessRequest).where(
                    AccessRequest.school_id == p.school_id, AccessRequest.subject.in_([item_key(i) for i in approved])
                )
            )
    for approval in signed.approvals:
        await services.audit(
            p.school_id, "approval.approve", user=approval.approver_user, device=approval.approver_device,
            target=f"v{signed.version} {len(approval.items)} items",
        )
    await services.audit(p.school_id, "directory.sign", user=p.user_id, device=p.device_id, target=str(signed.version))
    await services.directory_signed(p.school_id, signed.version)
    return JSONResponse({"version": signed.version}, status_code=201)


def _check_rows(new: set[tuple], rows: set[tuple], before: set[tuple]) -> None:
    """The second wall: a version lists only what the rows hold, keeps what the rows still hold of the
    version before it, and carries every revocation and leaver the rows hold for what it lists."""
    if new - rows:
        raise ApiError("stale_directory", "the version lists what the school's rows do not hold: read it again")
    if (before & rows) - new:
        raise ApiError("stale_directory", "the version drops what the school still holds: read it again")
    listed = {f[1] for f in new if f[0] in ("account", "device")}
    flags = {f for f in rows if f[0] in ("left", "revoked") and f[1] in listed}
    if flags - new:
        raise ApiError("stale_directory", "the version misses a revocation or a leaver: read it again")


def _check_follows(signed: SignedDirectory, newest) -> None:  # type: ignore[no-untyped-def]
    if newest is None:
        if signed.version != 1:
            raise ApiError("stale_directory", "this school has no directory yet: the first version is 1")
        return
    if signed.version != newest.version + 1 or signed.prev_hash != bytes(newest.digest):
        raise ApiError(
            "stale_directory", f"the next version is {newest.version + 1}, following the newest by hash: read it again"
        )
    if signed.signing_pk != bytes(newest.next_signing_pk):
        raise ApiError("wrong_signing_key", "signed with a key other than the school signing key on file")


async def list_devices(request: Request) -> Response:
    """The signed-in person's devices; every device of the school for an admin or safeguarding lead."""
    p = principal(request)
    everyone = p.has("admin", "safeguarding")
    query = (
        select(Device.id, Device.user_id, Device.created_ms, Device.last_seen_ms, Device.revoked_ms,
               Account.login, Account.display_name)
        .join(Account, (Account.school_id == Device.school_id) & (Account.id == Device.user_id))
        .where(Device.school_id == p.school_id)
        .order_by(Account.display_name, Device.created_ms)
    )
    if not everyone:
        query = query.where(Device.user_id == p.user_id)
    async with _engine(request).connect() as conn:
        rows = (await conn.execute(query)).all()
    return JSONResponse(
        {
            "devices": [
                {
                    "id": b64e(r.id),
                    "user_id": b64e(r.user_id),
                    "login": r.login,
                    "display_name": r.display_name,
                    "created_ms": r.created_ms,
                    "last_seen_ms": r.last_seen_ms,
                    "revoked_ms": r.revoked_ms,
                    "this_device": bytes(r.id) == p.device_id,
                    "may_revoke": r.revoked_ms is None and (bytes(r.user_id) == p.user_id or p.has("admin")),
                }
                for r in rows
            ]
        }
    )


ROUTES: list[ApiRoute] = [
    ApiRoute("/api/v1/directory", "GET", get_directory, SIGNED_IN),
    ApiRoute("/api/v1/directory", "POST", publish_directory, (KEYHOLDER,)),
    ApiRoute("/api/v1/devices", "GET", list_devices, SIGNED_IN),
]
