"""Inviting staff, listing invitations, and resetting an account whose owner lost both password and
recovery key. Used by the admin API (server/api_staff.py) and the ``cairn school import-staff`` verb.

An invitation names a person (display name and login), their roles and the classes they will teach; the
code itself is shown once and only its hash is kept. Invitations are made all together or not at all.
A reset gives the same person a new invitation: the new account has a new identity, so nothing sealed to
the old one opens for it until a keyholder re-grants reader keys (docs/OPERATIONS.md, "Recovery").
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass

from sqlalchemy import insert, select, update
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from ._staff_csv import StaffCsvError, StaffRow
from .accounts import hash_token
from .models import Account, ClassTeacher, Device, Grant, Invitation, SchoolClass, Session
from .storage import now_ms

__all__ = ["INVITE_MS", "Invited", "invite_staff", "list_invitations", "renew_invitation", "reset_account", "NotFound"]

INVITE_MS = 14 * 24 * 3600 * 1000


class NotFound(Exception):
    """No such account in this school (or it has already left)."""


@dataclass(frozen=True)
class Invited:
    login: str
    display_name: str
    roles: tuple[str, ...]
    classes: tuple[str, ...]
    code: str
    expires_ms: int

    def json(self) -> dict:
        return {
            "login": self.login,
            "display_name": self.display_name,
            "roles": list(self.roles),
            "classes": list(self.classes),
            "code": self.code,
            "expires_ms": self.expires_ms,
        }


async def invite_staff(
    engine: AsyncEngine,
    school_id: bytes,
    rows: list[StaffRow],
    *,
    field_prefix: bool = True,
    invited_by: bytes | None = None,
    reason: str = "",
) -> list[Invited]:
    """Invite every row, or none: class labels must name one class of this school, and nobody may be on
    the staff already or hold a pending invitation. Raises StaffCsvError with every problem found. The
    account each invitation makes is a request: it reads nothing until a safeguarding keyholder approves
    it (``invited_by`` and ``reason`` are shown to them)."""
    async with engine.begin() as conn:
        classes = await _classes(conn, school_id)
        active = {
            r[0]
            for r in await conn.execute(
                select(Account.login).where(Account.school_id == school_id, Account.left_ms.is_(None))
            )
        }
        pending = {
            r[0]
            for r in await conn.execute(
                select(Invitation.login).where(
                    Invitation.school_id == school_id,
                    Invitation.used_ms.is_(None),
                    Invitation.expires_ms > now_ms(),
                )
            )
        }
        errors: dict[str, str] = {}
        for row in rows:
            where = f"rows[{row.line}]." if field_prefix else ""
            login_field = "email" if field_prefix else "login"
            if row.login in active:
                errors[f"{where}{login_field}"] = "already_staff"
            elif row.login in pending:
                errors[f"{where}{login_field}"] = "already_invited"
            for label in row.classes:
                found = classes.get(label, [])
                if len(found) != 1:
                    errors[f"{where}classes"] = "unknown_class" if not found else "ambiguous_class"
        if errors:
            raise StaffCsvError(errors)
        made = []
        for row in rows:
            made.append(
                await _invite(
                    conn, school_id, row, [classes[label][0] for label in row.classes], invited_by, reason
                )
            )
    return made


async def _classes(conn: AsyncConnection, school_id: bytes) -> dict[str, list[bytes]]:
    out: dict[str, list[bytes]] = {}
    for class_id, label in await conn.execute(
        select(SchoolClass.id, SchoolClass.label).where(SchoolClass.school_id == school_id)
    ):
        out.setdefault(label, []).append(bytes(class_id))
    return out


async def _invite(
    conn: AsyncConnection,
    school_id: bytes,
    row: StaffRow,
    class_ids: list[bytes],
    invited_by: bytes | None = None,
    reason: str = "",
) -> Invited:
    code = secrets.token_hex(20)  # hex: typeable, and never starts with "-" on a command line
    expires = now_ms() + INVITE_MS
    await conn.execute(
        insert(Invitation).values(
            school_id=school_id,
            code_hash=hash_token(code),
            login=row.login,
            display_name=row.name,
            roles=" ".join(row.roles),
            classes=" ".join(c.hex() for c in class_ids),
            created_ms=now_ms(),
            expires_ms=expires,
            invited_by=invited_by,
            reason=reason[:500],
        )
    )
    return Invited(row.login, row.name, row.roles, row.classes, code, expires)


async def list_invitations(engine: AsyncEngine, school_id: bytes) -> list[dict]:
    """Every invitation of the school, newest first, with its status: ``pending``, ``expired``, ``joined``
    (the account exists, its authenticator not yet confirmed) or ``active`` (joined, and confirmed where
    the roles need a second factor). Codes are never listed: only their hashes are kept."""
    async with engine.connect() as conn:
        labels = {c: label for label, ids in (await _classes(conn, school_id)).items() for c in ids}
        invitations = (
            await conn.execute(
                select(Invitation).where(Invitation.school_id == school_id).order_by(Invitation.created_ms.desc())
            )
        ).all()
        accounts = {
            bytes(a.id): a
            for a in (
                await conn.execute(
                    select(Account.id, Account.totp_secret, Account.totp_confirmed_ms, Account.left_ms).where(
                        Account.school_id == school_id
                    )
                )
            ).all()
        }
    out = []
    for inv in invitations:
        account = accounts.get(bytes(inv.user_id)) if inv.user_id is not None else None
        if inv.used_ms is None:
            status = "pending" if inv.expires_ms > now_ms() else "expired"
        elif account is not None and account.left_ms is not None:
            status = "left"
        elif account is not None and account.totp_secret and account.totp_confirmed_ms is None:
            status = "joined"
        else:
            status = "active"
        out.append(
            {
                "login": inv.login,
                "display_name": inv.display_name,
                "roles": inv.roles.split(),
                "classes": sorted(labels.get(bytes.fromhex(c), "?") for c in inv.classes.split()),
                "status": status,
                "created_ms": inv.created_ms,
                "expires_ms": inv.expires_ms,
                "used_ms": inv.used_ms,
            }
        )
    return out


async def renew_invitation(engine: AsyncEngine, school_id: bytes, login: str) -> Invited:
    """A new code (and 14 more days) for someone's unused invitation, pending or expired: the old code stops
    working. For a link that was lost before it was sent, since codes are shown only once."""
    async with engine.begin() as conn:
        row = (
            await conn.execute(
                select(Invitation)
                .where(Invitation.school_id == school_id, Invitation.login == login, Invitation.used_ms.is_(None))
                .order_by(Invitation.created_ms.desc())
                .with_for_update()
            )
        ).first()
        if row is None:
            raise NotFound("no unused invitation for this login")
        labels = {c: label for label, ids in (await _classes(conn, school_id)).items() for c in ids}
        code = secrets.token_hex(20)
        expires = now_ms() + INVITE_MS
        await conn.execute(
            update(Invitation)
            .where(Invitation.school_id == school_id, Invitation.code_hash == row.code_hash)
            .values(code_hash=hash_token(code), expires_ms=expires)
        )
    classes = tuple(sorted(labels.get(bytes.fromhex(c), "?") for c in row.classes.split()))
    return Invited(row.login, row.display_name, tuple(row.roles.split()), classes, code, expires)


async def reset_account(engine: AsyncEngine, school_id: bytes, user_id: bytes) -> tuple[str, Invited]:
    """The old account leaves (its sessions, devices and grants end; its login is freed by a suffix that no
    login can have) and the same person gets a new invitation with the same roles and classes. Returns the
    old login and the new invitation. Reader keys are not rotated: the old identity's keys were lost with
    the password and recovery key, not taken (a lost device too: use leaving, which rotates)."""
    at = now_ms()
    async with engine.begin() as conn:
        account = (
            await conn.execute(
                select(Account).where(
                    Account.school_id == school_id, Account.id == user_id, Account.left_ms.is_(None)
                ).with_for_update()
            )
        ).first()
        if account is None:
            raise NotFound("no such account in this school")
        class_ids = [
            bytes(r[0])
            for r in await conn.execute(
                select(ClassTeacher.class_id).where(
                    ClassTeacher.school_id == school_id, ClassTeacher.user_id == user_id
                )
            )
        ]
        labels = {c: label for label, ids in (await _classes(conn, school_id)).items() for c in ids}
        await conn.execute(
            update(Account)
            .where(Account.school_id == school_id, Account.id == user_id)
            .values(left_ms=at, login=f"{account.login[:160]}~reset~{user_id.hex()[:12]}")
        )
        await conn.execute(
            update(Session)
            .where(Session.school_id == school_id, Session.user_id == user_id, Session.revoked_ms.is_(None))
            .values(revoked_ms=at)
        )
        await conn.execute(
            update(Device)
            .where(Device.school_id == school_id, Device.user_id == user_id, Device.revoked_ms.is_(None))
            .values(revoked_ms=at)
        )
        await conn.execute(
            update(Grant)
            .where(Grant.school_id == school_id, Grant.member_id == user_id, Grant.revoked_ms.is_(None))
            .values(revoked_ms=at)
        )
        await conn.execute(
            ClassTeacher.__table__.delete().where(ClassTeacher.school_id == school_id, ClassTeacher.user_id == user_id)
        )
        row = StaffRow(
            0,
            account.display_name,
            account.login,
            tuple(account.roles.split()),
            tuple(sorted(labels.get(c, "?") for c in class_ids)),
        )
        invited = await _invite(conn, school_id, row, class_ids)
    return account.login, invited
