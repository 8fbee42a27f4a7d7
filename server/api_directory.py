"""The signed directory and the devices page over HTTP (docs/PROTOCOL.md sections 10 and 13).

``GET /api/v1/directory`` serves the newest version signed with the school's signing key, the rotation
versions a device needs to follow the key from the version it holds, and whether the school's keys,
accounts, devices, pupils or classes changed since: if so, a safeguarding keyholder's device signs the
next version. ``POST /api/v1/directory`` takes that version: the server checks the signature with the
key it has on file (the newest version's next signing key), that it is exactly the next version and
chains to the newest by hash, and that its content is the server's current state byte for byte, so a
stale device cannot publish an old picture. The server holds no signing key and cannot make a version.

``GET /api/v1/devices`` lists devices with their last-seen time for the devices page.
"""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from crypto import CryptoError
from crypto.directory import (
    HEADER_BYTES,
    DirAccount,
    DirClass,
    DirDevice,
    DirectoryContent,
    DirKey,
    DirPupil,
    SignedDirectory,
    directory_hash,
    encode_content,
    read_directory,
)
from sync.protocol import b64e

from ._body import Body
from .accounts import Principal
from .errors import ApiError
from .models import (
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

__all__ = ["ROUTES", "school_state", "newest_version"]

MAX_DIRECTORY = 3 * 1024 * 1024  # a school of 2,000 pupils is well under 300 KiB


async def _principal(request: Request, *roles: str) -> Principal:
    from .api import _principal as principal

    return await principal(request, *roles)


def _engine(request: Request):  # type: ignore[no-untyped-def]
    return request.app.state.services.engine


async def school_state(conn, school_id: bytes) -> tuple[DirectoryContent, dict]:  # type: ignore[no-untyped-def]
    """The school's current keys, accounts, devices, pupils and classes: as directory content (what a
    version must sign) and as JSON (what a keyholder device checks and signs; device certificates too)."""
    where = lambda model: model.school_id == school_id  # noqa: E731
    accounts = (await conn.execute(select(Account).where(where(Account)))).all()
    devices = (await conn.execute(select(Device).where(where(Device)))).all()
    keys = (await conn.execute(select(ReaderKey).where(where(ReaderKey)))).all()
    pupils = (await conn.execute(select(Pupil).where(where(Pupil)))).all()
    classes = (await conn.execute(select(SchoolClass).where(where(SchoolClass)))).all()
    members = (await conn.execute(select(ClassPupil).where(where(ClassPupil)))).all()
    teachers = (await conn.execute(select(ClassTeacher).where(where(ClassTeacher)))).all()
    content = DirectoryContent(
        tuple(
            DirAccount(bytes(a.id), tuple(a.roles.split()), bytes(a.identity_x25519_pk), bytes(a.identity_ed25519_pk),
                       a.left_ms is not None, a.login, a.display_name)
            for a in accounts
        ),
        tuple(DirDevice(bytes(d.id), bytes(d.user_id), bytes(d.public_key), d.revoked_ms is not None) for d in devices),
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
             "left": a.left_ms is not None}
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


async def get_directory(request: Request) -> Response:
    """The newest signed version; with ``?since=N``, the rotation versions after N that a device holding
    version N needs to follow the signing key; whether the school changed since the newest version, and,
    for a safeguarding keyholder when it has, the current state to check and sign."""
    p = await _principal(request)
    raw_since = request.query_params.get("since", "0")
    if not (raw_since.isascii() and raw_since.isdigit()) or len(raw_since) > 15:
        raise ApiError("invalid_request", "since is a directory version number", {"since": "invalid"})
    since = int(raw_since)
    async with _engine(request).connect() as conn:
        newest = await newest_version(conn, p.school_id)
        content, listing = await school_state(conn, p.school_id)
        links = []
        if newest is not None and since < newest.version:
            rows = await conn.execute(
                select(DirectoryVersion.body)
                .where(
                    DirectoryVersion.school_id == p.school_id,
                    DirectoryVersion.version > since,
                    DirectoryVersion.version < newest.version,
                    DirectoryVersion.signing_pk != DirectoryVersion.next_signing_pk,
                )
                .order_by(DirectoryVersion.version)
            )
            links = [b64e(r[0]) for r in rows]
        school_name = (await conn.execute(select(School.name).where(School.id == p.school_id))).scalar_one()
    changed = newest is None or encode_content(content) != _content_of(bytes(newest.body))
    out: dict = {
        "school_name": school_name,  # for headings (a printed chronology); not signed, so never trusted for keys
        "version": newest.version if newest else 0,
        "signed": b64e(newest.body) if newest else None,
        "links": links,
        "changed": changed,
    }
    if changed:
        out["changes"] = changes(read_directory(bytes(newest.body)).content if newest else DirectoryContent(), content)
    if changed and p.has("safeguarding"):
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
    """A safeguarding keyholder's device publishes the next signed version."""
    p = await _principal(request, "safeguarding")
    body = await Body.read(request, {"signed"}, max_bytes=MAX_DIRECTORY * 2)
    raw = body.bytes("signed", max_len=MAX_DIRECTORY)
    body.done()
    try:
        signed = read_directory(raw)
    except CryptoError as exc:
        raise ApiError("invalid_directory", str(exc), {"signed": exc.code}) from None
    if signed.school_id != p.school_id:
        raise ApiError("invalid_directory", "the directory names another school", {"signed": "other_school"})
    async with _engine(request).begin() as conn:
        newest = await newest_version(conn, p.school_id)
        _check_follows(signed, newest)
        content, _ = await school_state(conn, p.school_id)
        content_bytes = encode_content(signed.content)
        if content_bytes != encode_content(content):
            raise ApiError("stale_directory", "the school changed since this device read it: read it again and re-sign")
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
    await request.app.state.services.audit(
        p.school_id, "directory.sign", user=p.user_id, device=p.device_id, target=str(signed.version)
    )
    return JSONResponse({"version": signed.version}, status_code=201)


def _content_of(body: bytes) -> bytes:
    """A stored version's content bytes: between the fixed header and the signature."""
    return body[HEADER_BYTES:-64]


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
    p = await _principal(request)
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


ROUTES: list[tuple[str, str, object, tuple[str, ...] | None]] = [
    ("/api/v1/directory", "GET", get_directory, ()),
    ("/api/v1/directory", "POST", publish_directory, ("safeguarding",)),
    ("/api/v1/devices", "GET", list_devices, ()),
]
