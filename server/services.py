"""The server's parts, built once from settings and passed to endpoints through ``app.state``."""

from __future__ import annotations

import logging

from sqlalchemy import insert
from sqlalchemy.ext.asyncio import AsyncEngine

from .accounts import Accounts
from .db import make_engine
from .hub import Hub
from .ingest import Ingestor
from .models import AuditEvent
from .settings import Settings
from .storage import SqlStorage, now_ms

__all__ = ["Services"]

log = logging.getLogger("cairn.audit")


class Services:
    def __init__(self, settings: Settings, engine: AsyncEngine | None = None) -> None:
        self.settings = settings
        self.engine = engine or make_engine(settings.database_url)
        self.storage = SqlStorage(self.engine)
        self.accounts = Accounts(self.engine, settings.session_hours * 3600 * 1000)
        self.hub = Hub()
        self.ingestor = Ingestor(self.storage, self.hub.published)

    async def start(self) -> None:
        self.ingestor.start()

    async def stop(self) -> None:
        await self.ingestor.stop()
        await self.engine.dispose()

    async def audit(
        self, school_id: bytes, action: str, *, user: bytes | None = None, device: bytes | None = None, target: str = ""
    ) -> None:
        """Record who did what (never content, never key bytes)."""
        async with self.engine.begin() as conn:
            await conn.execute(
                insert(AuditEvent).values(
                    school_id=school_id,
                    at_ms=now_ms(),
                    actor_user=user,
                    actor_device=device,
                    action=action,
                    target=target[:200],
                )
            )

    async def audit_user(self, user_id: bytes, action: str, device: bytes) -> None:
        from sqlalchemy import select

        from .models import Account

        async with self.engine.connect() as conn:
            school = await conn.scalar(select(Account.school_id).where(Account.id == user_id))
        if school is not None:
            await self.audit(bytes(school), action, user=user_id, device=device)
