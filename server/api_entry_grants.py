"""Entry key grants over HTTP (docs/PROTOCOL.md 5.1 and 10.1): a safeguarding keyholder's device, naming someone
on a need-to-know basis, re-seals each entry key version of the concern it holds to that person; the person's
devices fetch them, and the sync pull then delivers the concern's envelopes under those versions, from the first.

The naming itself is an event the server cannot read, so the server checks what it can: the grant is signed by
the caller's device, which is an approved keyholder's (the route table); it names this school; the person is a
current member; and the concern holds an envelope under that entry key version. A grant already stored for the
same concern, version and person is kept while its granter device is an approved keyholder's, and replaced when
it is not: its keyholder left the team or lost the device, and another keyholder's duties make it again
(``GET /api/v1/keyholder/duties`` lists those, server/api_grants.py).
"""

from __future__ import annotations

from sqlalchemy import func, select, update
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from crypto import CryptoError, verify_entry_grant
from crypto.entry_grant import ENTRY_GRANT_BYTES
from sync.protocol import b64e

from ._body import Body
from .api import _engine
from .api_grants import _insert_new
from .auth import KEYHOLDER, SIGNED_IN, ApiRoute, principal
from .errors import ApiError
from .models import Account, EntryGrant, Envelope
from .storage import ENTRY_KEY_VERSION_AT, now_ms

__all__ = ["ROUTES"]

MAX_GRANTS = 1000


async def put_entry_grants(request: Request) -> Response:
    """Store entry key grants made by this keyholder device; each person's sockets are told at once."""
    p = principal(request)
    body = await Body.read(request, {"grants"})
    raws = [body.decode(f"grants[{n}]", g, ENTRY_GRANT_BYTES) for n, g in enumerate(body.list("grants", MAX_GRANTS))]
    body.done()
    infos = []
    for n, raw in enumerate(raws):
        where = {f"grants[{n}]": "invalid_grant"}
        try:
            info = verify_entry_grant(raw, p.device_pk)
        except CryptoError as exc:
            raise ApiError("invalid_grant", f"entry key grant {n}: {exc}", where) from None
        if info.school_id != p.school_id or info.granter_device != p.device_id:
            raise ApiError("invalid_grant", f"entry key grant {n} was not made by this device for this school", where)
        infos.append(info)
    services = request.app.state.services
    async with _engine(request).begin() as conn:
        members = {
            bytes(r[0])
            for r in await conn.execute(
                select(Account.id).where(
                    Account.school_id == p.school_id,
                    Account.id.in_(sorted({i.member_id for i in infos})),
                    Account.left_ms.is_(None),
                )
            )
        }
        concerns = sorted({i.concern_id for i in infos})
        versions = {
            (bytes(r[0]), int.from_bytes(bytes(r[1]), "big"))
            for r in await conn.execute(
                select(Envelope.concern_id, func.substr(Envelope.body, ENTRY_KEY_VERSION_AT + 1, 4))
                .where(Envelope.school_id == p.school_id, Envelope.concern_id.in_(concerns))
                .distinct()
            )
        }
        for n, info in enumerate(infos):
            if info.member_id not in members:
                raise ApiError("not_found", f"entry key grant {n} names no current member of this school",
                               {f"grants[{n}]": "unknown_member"})
            if (info.concern_id, info.entry_version) not in versions:
                raise ApiError("not_found", f"entry key grant {n} names no concern here under that key version",
                               {f"grants[{n}]": "unknown_concern"})
        rows = [
            {"school_id": p.school_id, "concern_id": i.concern_id, "entry_version": i.entry_version,
             "member_id": i.member_id, "granter_device": p.device_id, "grant": raw, "created_ms": now_ms()}
            for i, raw in zip(infos, raws, strict=True)
        ]
        await _replace_orphaned(conn, services.authority, p.school_id, rows)
        await _insert_new(conn, EntryGrant, rows)  # another keyholder naming the same person first is no error
    await services.granted(p.school_id, {i.member_id for i in infos})
    await services.audit(
        p.school_id, "entry_grants.add", user=p.user_id, device=p.device_id,
        target=" ".join(sorted({b64e(i.member_id) for i in infos}))[:200],
    )
    return JSONResponse({"stored": len(rows)}, status_code=201)


async def _replace_orphaned(conn, authority, school_id: bytes, rows: list[dict]) -> None:  # type: ignore[no-untyped-def]
    """A stored grant of the same concern, version and person stays as it was while its granter device is an
    approved keyholder's; one whose granter is revoked or no longer a keyholder's (the person's device refuses
    it) is replaced by the new one, so the naming outlives the keyholder who made it (PROTOCOL 5.1)."""
    wanted = {(r["concern_id"], r["entry_version"], r["member_id"]): r for r in rows}
    stored = [
        (bytes(c), int(v), bytes(m), bytes(g))
        for c, v, m, g in await conn.execute(
            select(EntryGrant.concern_id, EntryGrant.entry_version, EntryGrant.member_id, EntryGrant.granter_device)
            .where(
                EntryGrant.school_id == school_id,
                EntryGrant.concern_id.in_(sorted({c for c, _, _ in wanted})),
                EntryGrant.member_id.in_(sorted({m for _, _, m in wanted})),
            )
        )
        if (bytes(c), int(v), bytes(m)) in wanted
    ]
    live = await authority.keyholder_devices(conn, school_id, {g for *_, g in stored})
    for concern, version, member, granter in stored:
        if granter in live:
            continue
        row = wanted[(concern, version, member)]
        await conn.execute(
            update(EntryGrant)
            .where(
                EntryGrant.school_id == school_id,
                EntryGrant.concern_id == concern,
                EntryGrant.entry_version == version,
                EntryGrant.member_id == member,
                EntryGrant.granter_device == granter,  # not one another keyholder replaced a moment ago
            )
            .values(granter_device=row["granter_device"], grant=row["grant"], created_ms=row["created_ms"])
        )


async def my_entry_grants(request: Request) -> Response:
    """The entry key grants addressed to this user."""
    p = principal(request)
    async with _engine(request).connect() as conn:
        rows = (
            await conn.execute(
                select(EntryGrant.grant)
                .where(EntryGrant.school_id == p.school_id, EntryGrant.member_id == p.user_id)
                .order_by(EntryGrant.created_ms)
            )
        ).all()
    return JSONResponse({"grants": [b64e(r[0]) for r in rows]})


ROUTES: list[ApiRoute] = [
    ApiRoute("/api/v1/entry-grants", "POST", put_entry_grants, (KEYHOLDER,)),
    ApiRoute("/api/v1/entry-grants", "GET", my_entry_grants, SIGNED_IN),
]
