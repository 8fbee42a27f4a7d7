"""What each account may do, as the newest signed directory says: the server's wall mirrors the keys.

An admin changes the rows (roles, classes, new accounts): those are requests. What takes effect is what the
newest **signed** directory version lists, because every widening in it carries a safeguarding keyholder's
approval (docs/PROTOCOL.md 13). So the server decides by the signed roles and classes, narrowed at once by
the rows (someone who left a role or a class loses it before the next version is signed), never by a role
an admin has merely written. While a school is being founded (no signed version yet) the rows are all
there is: that is the founding account alone.

- ``effective_roles``: signed roles ∩ current roles;
- ``is_keyholder``: a safeguarding member by the signed directory who holds the safeguarding group's key;
- ``keyholder_devices``: which of some devices are, now, not revoked and an approved keyholder's (the
  granters whose entry key grants stand: docs/PROTOCOL.md 5.1);
- ``view``: the rules' view (sync/entitlement.py) of signed roles and classes ∩ current rows, with the
  grants stored, so duties, grants and rotations follow approved facts only.
"""

from __future__ import annotations

from sqlalchemy import select

from crypto.directory import SignedDirectory, read_directory
from sync import entitlement as rules

from .models import Account, ClassPupil, ClassTeacher, Device, DirectoryVersion, Grant, Pupil, ReaderKey

__all__ = ["Authority"]


class Authority:
    """Reads and caches each school's newest signed directory (versions never change once stored)."""

    def __init__(self) -> None:
        self._newest: dict[bytes, SignedDirectory] = {}

    async def signed(self, conn, school_id: bytes) -> SignedDirectory | None:  # type: ignore[no-untyped-def]
        version = await conn.scalar(
            select(DirectoryVersion.version)
            .where(DirectoryVersion.school_id == school_id)
            .order_by(DirectoryVersion.version.desc())
            .limit(1)
        )
        if version is None:
            return None
        cached = self._newest.get(school_id)
        if cached is not None and cached.version == version:
            return cached
        body = await conn.scalar(
            select(DirectoryVersion.body).where(
                DirectoryVersion.school_id == school_id, DirectoryVersion.version == version
            )
        )
        signed = read_directory(bytes(body))
        self._newest[school_id] = signed
        return signed

    async def effective_roles(self, conn, school_id: bytes, user_id: bytes, roles: frozenset[str]) -> frozenset[str]:  # type: ignore[no-untyped-def]
        """The roles an account holds now: the signed ones it still has (all of ``roles`` while founding)."""
        signed = await self.signed(conn, school_id)
        if signed is None:
            return roles
        account = next((a for a in signed.content.accounts if a.id == user_id and not a.left), None)
        return roles & frozenset(account.roles) if account else frozenset()

    async def is_keyholder(self, conn, school_id: bytes, user_id: bytes, roles: frozenset[str]) -> bool:  # type: ignore[no-untyped-def]
        if "safeguarding" not in await self.effective_roles(conn, school_id, user_id, roles):
            return False
        return (
            await conn.scalar(
                select(Grant.member_id)
                .join(
                    ReaderKey,
                    (ReaderKey.school_id == Grant.school_id)
                    & (ReaderKey.id == Grant.reader_key_id)
                    & (ReaderKey.version == Grant.reader_version),
                )
                .where(
                    Grant.school_id == school_id,
                    Grant.member_id == user_id,
                    Grant.revoked_ms.is_(None),
                    ReaderKey.purpose == rules.SAFEGUARDING,
                )
                .limit(1)
            )
            is not None
        )

    async def keyholder_devices(self, conn, school_id: bytes, device_ids: set[bytes]) -> set[bytes]:  # type: ignore[no-untyped-def]
        """Those of ``device_ids`` that are not revoked and belong to an approved keyholder now: an entry key
        grant made by any other device is one a person's device refuses (docs/PROTOCOL.md 5.1)."""
        if not device_ids:
            return set()
        rows = (
            await conn.execute(
                select(Device.id, Account.id, Account.roles)
                .join(Account, (Account.school_id == Device.school_id) & (Account.id == Device.user_id))
                .where(
                    Device.school_id == school_id,
                    Device.id.in_(sorted(device_ids)),
                    Device.revoked_ms.is_(None),
                    Account.left_ms.is_(None),
                )
            )
        ).all()
        keyholders: dict[bytes, bool] = {}
        live = set()
        for device_id, user_id, roles in rows:
            user = bytes(user_id)
            if user not in keyholders:
                keyholders[user] = await self.is_keyholder(conn, school_id, user, frozenset(roles.split()))
            if keyholders[user]:
                live.add(bytes(device_id))
        return live

    async def view(self, conn, school_id: bytes) -> rules.View:  # type: ignore[no-untyped-def]
        """The rules' view: signed roles and classes narrowed by the current rows, signed keys, stored grants."""
        rows_roles = {
            bytes(r[0]): frozenset(r[1].split())
            for r in await conn.execute(
                select(Account.id, Account.roles).where(Account.school_id == school_id, Account.left_ms.is_(None))
            )
        }
        rows_teach = {
            (bytes(c), bytes(u))
            for c, u in await conn.execute(
                select(ClassTeacher.class_id, ClassTeacher.user_id).where(ClassTeacher.school_id == school_id)
            )
        }
        rows_place = {
            (bytes(c), bytes(x))
            for c, x in await conn.execute(
                select(ClassPupil.class_id, ClassPupil.pupil_id).where(ClassPupil.school_id == school_id)
            )
        }
        holdings = [
            (bytes(r[0]), int(r[1]), bytes(r[2]))
            for r in await conn.execute(
                select(Grant.reader_key_id, Grant.reader_version, Grant.member_id).where(
                    Grant.school_id == school_id, Grant.revoked_ms.is_(None)
                )
            )
        ]
        signed = await self.signed(conn, school_id)
        if signed is None:  # founding: the rows are all there is
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
            teaches: dict[bytes, set[bytes]] = {}
            for class_id, user in rows_teach:
                teaches.setdefault(user, set()).update(x for c, x in rows_place if c == class_id)
            return rules.view_of(rows_roles, teaches, keys, pupil_of, holdings)
        c = signed.content
        roles = {
            a.id: frozenset(a.roles) & rows_roles[a.id] for a in c.accounts if not a.left and a.id in rows_roles
        }
        teaches = {}
        for k in c.classes:
            pupils = {x for x in k.pupils if (k.id, x) in rows_place}
            for t in k.teachers:
                if (k.id, t) in rows_teach:
                    teaches.setdefault(t, set()).update(pupils)
        keys = [(k.id, k.version, k.purpose) for k in c.reader_keys]
        pupil_of = {x.reader_key_id: x.id for x in c.pupils}
        return rules.view_of(roles, teaches, keys, pupil_of, holdings)
