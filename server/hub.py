"""Live push: which connections are open per school, and what to tell them after each commit.

The hub holds no state a restart would lose: a connection's position is its cursor, and anything a
push misses is caught up from storage. With several app instances, commits made elsewhere arrive
through the same ``published`` call (PostgreSQL LISTEN/NOTIFY), and a connection that finds a gap
between its position and a commit reads the gap from storage.
"""

from __future__ import annotations

import asyncio
from collections import defaultdict
from typing import Protocol

from .storage import StoredItem

__all__ = ["Hub", "Listener"]


class Listener(Protocol):
    school_id: bytes
    device_id: bytes
    user_id: bytes

    def committed(self, before: int, after: int, items: list[StoredItem]) -> None: ...

    async def revoke(self, reason: str) -> None: ...


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

    async def revoke(
        self, school_id: bytes, *, device_id: bytes | None = None, user_id: bytes | None = None, reason: str = "revoked"
    ) -> int:
        """Close every connection of a device or of a user at once; returns how many were closed."""
        targets = [
            c
            for c in self._by_school.get(school_id, ())
            if (device_id is not None and c.device_id == device_id) or (user_id is not None and c.user_id == user_id)
        ]
        await asyncio.gather(*(c.revoke(reason) for c in targets), return_exceptions=True)
        return len(targets)
