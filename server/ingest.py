"""Group commit: one writer task takes every device's pending put batches and stores them together.

Each connection verifies its envelopes' signatures itself (CPU work, off the event loop), then hands
the batch to the Ingestor and waits. The Ingestor drains whatever is queued, stores it per school in
one transaction (one fsync for many devices), and only then resolves each waiter: an ack is sent after
the durable commit, never before. After the commit it tells the hub, which pushes to readers.
"""

from __future__ import annotations

import asyncio
import logging
from collections import defaultdict
from collections.abc import Awaitable, Callable, Sequence

from sync.protocol import ProtocolError

from .storage import Ack, BatchResult, Incoming, Storage, StoredItem

__all__ = ["Ingestor"]

log = logging.getLogger("cairn.ingest")

Published = Callable[[bytes, int, int, list[StoredItem]], Awaitable[None]]


class Ingestor:
    def __init__(self, storage: Storage, published: Published, max_envelopes: int = 4096) -> None:
        self.storage, self.published, self.max_envelopes = storage, published, max_envelopes
        self._queue: asyncio.Queue[tuple[bytes, bytes, Sequence[Incoming], asyncio.Future[list[Ack]]]] = asyncio.Queue()
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="cairn-ingest")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            try:
                await self._task
            except asyncio.CancelledError:
                pass
            self._task = None

    async def submit(self, school_id: bytes, device_id: bytes, items: Sequence[Incoming]) -> list[Ack]:
        """Store one device's batch; returns its acks after the commit, or raises ProtocolError."""
        future: asyncio.Future[list[Ack]] = asyncio.get_running_loop().create_future()
        await self._queue.put((school_id, device_id, items, future))
        return await future

    async def _run(self) -> None:
        while True:
            group = [await self._queue.get()]
            count = len(group[0][2])
            while count < self.max_envelopes and not self._queue.empty():
                group.append(self._queue.get_nowait())
                count += len(group[-1][2])
            by_school: dict[bytes, list[tuple[bytes, Sequence[Incoming], asyncio.Future[list[Ack]]]]] = defaultdict(
                list
            )
            for school_id, device_id, items, future in group:
                by_school[school_id].append((device_id, items, future))
            for school_id, batches in by_school.items():
                await self._store(school_id, batches)

    async def _store(
        self, school_id: bytes, batches: list[tuple[bytes, Sequence[Incoming], asyncio.Future[list[Ack]]]]
    ) -> None:
        try:
            results, before, after = await self.storage.append_many(school_id, [(d, i) for d, i, _ in batches])
        except ProtocolError as exc:
            results, before, after = [BatchResult(error=exc) for _ in batches], 0, 0
        except Exception:  # the database failed: nothing was committed, every waiter is told so
            log.exception("storing a group of %d batches failed", len(batches))
            for _, _, future in batches:
                if not future.done():
                    future.set_exception(ProtocolError("internal_error", "the server could not store the batch; retry"))
            return
        new_items: list[StoredItem] = []
        for (_, _, future), result in zip(batches, results, strict=True):
            new_items += result.new_items  # committed, even if its waiter has gone (a closed connection)
            if future.done():
                continue
            if result.error is not None:
                future.set_exception(result.error)
            else:
                future.set_result(result.acks or [])
        if after > before:
            try:
                await self.published(school_id, before, after, sorted(new_items, key=lambda i: i.seq))
            except Exception:
                log.exception("publishing a commit failed; readers will catch up from storage")
