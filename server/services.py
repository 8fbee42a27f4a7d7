"""The server's parts, built once from settings and passed to endpoints through ``app.state``."""

from __future__ import annotations

import logging

from sqlalchemy import insert
from sqlalchemy.ext.asyncio import AsyncEngine

from .accounts import Accounts, end_sessions_in
from .authority import Authority
from .db import make_engine
from .hub import Hub
from .ingest import Ingestor
from .models import AuditEvent
from .notify import Notifier
from .settings import Settings
from .storage import SqlStorage, StoredItem, now_ms

__all__ = ["Services"]

log = logging.getLogger("cairn.sessions")


class Services:
    def __init__(self, settings: Settings, engine: AsyncEngine | None = None) -> None:
        self.settings = settings
        self.engine = engine or make_engine(settings.database_url)
        self.storage = SqlStorage(self.engine)
        self.accounts = Accounts(self.engine, settings.session_hours * 3600 * 1000)
        self.hub = Hub()
        self.authority = Authority()
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

    async def granted(self, school_id: bytes, user_ids: set[bytes]) -> None:
        """Grants (reader keys or entry keys) for these users were stored: their sockets here and, through
        NOTIFY, on every other instance read their keys again and tell their devices to open and backfill."""
        if not user_ids:
            return
        await self.hub.granted(school_id, user_ids)
        if self.notifier is not None:
            try:
                await self.notifier.granted(school_id, user_ids)
            except Exception:  # stored already: the device finds the grant at its next refresh
                log.exception("telling the other instances of new grants failed")

    async def directory_signed(self, school_id: bytes, version: int) -> None:
        """A new signed directory version: every socket of the school, here and on the other instances, tells
        its device to follow it (what waited for an author's device to be listed then opens)."""
        await self.hub.directory_signed(school_id, version)
        if self.notifier is not None:
            try:
                await self.notifier.directory_signed(school_id, version)
            except Exception:  # stored already: devices follow it at their next refresh
                log.exception("telling the other instances of a new directory version failed")

    async def end_sessions(
        self,
        school_id: bytes,
        *,
        user_id: bytes | None = None,
        device_id: bytes | None = None,
        session: bytes | None = None,
        except_session: bytes | None = None,
        reason: str,
    ) -> int:
        """The one way sessions end: sign-out (``session``), a password change or recovery (``user_id`` and
        ``except_session``, the session that made it), leaving and role removal (``user_id``), revoking a
        device (``device_id``). Marks them ended in storage, then closes their open sockets here and, through
        NOTIFY, on every other instance. ``reason`` (server.hub.REASONS) decides what a socket is told:
        ``revoked`` (hand over, then wipe) or ``session_expired`` (sign in again). Returns how many sockets
        this instance closed."""
        async with self.engine.begin() as conn:
            await end_sessions_in(
                conn, school_id, user_id=user_id, device_id=device_id, session=session, except_session=except_session
            )
        scope = {"device_id": device_id, "user_id": user_id, "session": session, "except_session": except_session}
        closed = await self.hub.end(school_id, **scope, reason=reason)
        if self.notifier is not None:
            try:
                await self.notifier.ended(school_id, **scope, reason=reason)
            except Exception:  # stored already: each socket elsewhere finds out at its next frame or re-check
                log.exception("telling the other instances that sessions ended failed")
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
