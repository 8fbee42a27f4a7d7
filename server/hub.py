"""Live push: which connections are open per school, and what to tell them after each commit.

The hub holds no state a restart would lose: a connection's position is its cursor, and anything a
push misses is caught up from storage. With several app instances, commits made elsewhere arrive
through the same ``published`` call (PostgreSQL LISTEN/NOTIFY), and a connection that finds a gap
between its position and a commit reads the gap from storage. Ended sessions arrive the same way
(``end``), so a signed-out, recovered or revoked session loses its sockets on every instance.
"""

from __future__ import annotations

import asyncio
from collections import defaultdict
from typing import Protocol

from .storage import StoredItem

__all__ = ["Hub", "Listener", "REVOKED_REASONS", "ENDED_REASONS", "REASONS"]

# Why sessions end. A revocation tells the socket ``revoked`` (the device hands over, then wipes); an
# ended session tells it ``session_expired`` (the person signs in again; nothing is wiped).
REVOKED_REASONS = frozenset({"device_revoked", "left_school", "access_changed"})
ENDED_REASONS = frozenset({"signed_out", "session_expired", "password_changed", "recovered"})
REASONS = REVOKED_REASONS | ENDED_REASONS


class Listener(Protocol):
    school_id: bytes
    device_id: bytes
    user_id: bytes
    session: bytes  # the session's token hash

    def committed(self, before: int, after: int, items: list[StoredItem]) -> None: ...

    async def end(self, reason: str) -> None: ...

    async def granted(self) -> None: ...

    async def directory_signed(self, version: int) -> None: ...


class Hub:
    def __init__(self) -> None:
        self._by_school: dict[bytes, set[Listener]] = defaultdict(set)

    def add(self, listener: Listener) -> list[Listener]:
        """Register a connection; returns older connections of the same device, which the caller closes."""
        same = [c for c in self._by_school[listener.school_id] if c.device_id == listener.device_id]
        for old in same:
            self._by_school[listener.school_id].discard(old)
        self._by_school[listener.school_id].add(listener)
        return same

    def remove(self, listener: Listener) -> None:
        self._by_school[listener.school_id].discard(listener)

    def connections(self, school_id: bytes) -> list[Listener]:
        return list(self._by_school.get(school_id, ()))

    def schools(self) -> list[bytes]:
        """The schools with a connection open here."""
        return [school for school, listeners in self._by_school.items() if listeners]

    async def published(self, school_id: bytes, before: int, after: int, items: list[StoredItem]) -> None:
        for listener in list(self._by_school.get(school_id, ())):
            listener.committed(before, after, items)

    async def granted(self, school_id: bytes, user_ids: set[bytes]) -> int:
        """Grants for these users were stored: each of their connections reads its keys again and tells its
        device (docs/PROTOCOL.md 9.5). Returns how many connections were told."""
        targets = [c for c in self._by_school.get(school_id, ()) if c.user_id in user_ids]
        await asyncio.gather(*(c.granted() for c in targets), return_exceptions=True)
        return len(targets)

    async def directory_signed(self, school_id: bytes, version: int) -> int:
        """A new signed directory version of this school was stored: every connection of the school tells
        its device, which follows it and opens what waited for a device the directory did not list."""
        targets = list(self._by_school.get(school_id, ()))
        await asyncio.gather(*(c.directory_signed(version) for c in targets), return_exceptions=True)
        return len(targets)

    async def end(
        self,
        school_id: bytes,
        *,
        device_id: bytes | None = None,
        user_id: bytes | None = None,
        session: bytes | None = None,
        except_session: bytes | None = None,
        reason: str,
    ) -> int:
        """Close every connection of a session, a device or a user (all of them but ``except_session``);
        returns how many were closed. With no session, device or user named, nothing is closed."""
        if reason not in REASONS:
            raise ValueError(f"{reason!r} is not a reason a session ends; see server.hub.REASONS")
        targets = [
            c
            for c in self._by_school.get(school_id, ())
            if (
                (device_id is not None and c.device_id == device_id)
                or (user_id is not None and c.user_id == user_id)
                or (session is not None and c.session == session)
            )
            and not (except_session is not None and c.session == except_session)
        ]
        for c in targets:  # gone at once, so a reconnect racing the close is not counted twice
            self._by_school[school_id].discard(c)
        await asyncio.gather(*(c.end(reason) for c in targets), return_exceptions=True)
        return len(targets)
