"""Founding a school: the operator creates it and one invitation for its founding account (head or DSL).

The operator can create schools and invitations, never read them: the founding account's device makes
the school's keys (docs/ARCHITECTURE.md, A school's life).
"""

from __future__ import annotations

import os
import secrets

from sqlalchemy import insert
from sqlalchemy.ext.asyncio import AsyncEngine

from .accounts import hash_token
from .models import AuditEvent, Invitation, School, SchoolCounter
from .storage import now_ms

__all__ = ["create_school", "FOUNDER_ROLES"]

FOUNDER_ROLES = "admin safeguarding"
INVITE_MS = 14 * 24 * 3600 * 1000


async def create_school(engine: AsyncEngine, name: str, founder_login: str, founder_name: str) -> tuple[bytes, str]:
    """Create a school and its founding invitation; returns the school id and the invitation code."""
    if not 0 < len(name) <= 200:
        raise ValueError("a school name is 1 to 200 characters")
    school_id, code = os.urandom(16), secrets.token_hex(20)  # hex: never starts with "-" on a command line
    async with engine.begin() as conn:
        await conn.execute(insert(School).values(id=school_id, name=name, pepper=os.urandom(32), created_ms=now_ms()))
        await conn.execute(insert(SchoolCounter).values(school_id=school_id, last_seq=0))
        await conn.execute(
            insert(Invitation).values(
                school_id=school_id,
                code_hash=hash_token(code),
                login=founder_login,
                display_name=founder_name,
                roles=FOUNDER_ROLES,
                created_ms=now_ms(),
                expires_ms=now_ms() + INVITE_MS,
            )
        )
        await conn.execute(
            insert(AuditEvent).values(school_id=school_id, at_ms=now_ms(), action="school.create", target=founder_login)
        )
    return school_id, code
