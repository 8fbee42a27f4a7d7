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
from .notify import Notifier
from .settings import Settings
from .storage import SqlStorage, StoredItem, now_ms

__all__ = ["Services"]

log = logging.getLogger("cairn.audit")


class Services:
    def __init__(self, settings: Settings, engine: AsyncEngine | None = None) -> None:
        self.settings = settings
        self.engine = engine or make_engine(settings.database_url)
        self.storage = SqlStorage(self.engine)
        self.accounts = Accounts(self.engine, settings.session_hours * 3600 * 1000)
        self.hub = Hub()
        # several instances may share a PostgreSQL database; a SQLite file is served by one instance
        postgres = self.engine.dialect.name == "postgresql"
        self.notifier = (
            Notifier(self.engine, self.hub, self.storage, settings.push_catch_up_seconds) if postgres else None
        )
        self.ingestor = Ingestor(self.storage, self.published)

    async def start(self) -> None:
        if self.notifier is not None:
            await self.notifier.start()
        self.ingestor.start()

    async def stop(self) -> None:
        await self.ingestor.stop()
        if self.notifier is not None:
            await self.notifier.stop()
        await self.engine.dispose()

    async def published(self, school_id: bytes, before: int, after: int, items: list[StoredItem]) -> None:
        """A commit: this instance's sockets hear it with its items, the other instances through NOTIFY."""
        await self.hub.published(school_id, before, after, items)
        if self.notifier is not None:
            await self.notifier.committed(school_id, before, after)

    async def revoke(
        self, school_id: bytes, *, device_id: bytes | None = None, user_id: bytes | None = None, reason: str
    ) -> int:
        """Close every socket of a device or a user, on every instance; returns how many this one closed."""
        closed = await self.hub.revoke(school_id, device_id=device_id, user_id=user_id, reason=reason)
        if self.notifier is not None:
            await self.notifier.revoked(school_id, device_id=device_id, user_id=user_id, reason=reason)
        return closed

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
