"""Sequence numbers commit in order, so a reader following its cursor never skips or repeats an envelope.

Several writers, each on an engine of its own, store batches while several readers, each on another
engine, pull from their cursors in small pages. Every reader must end with exactly the envelopes it
may read, once each, in increasing order. The control shows why the write path locks the school's
counter row: a bare PostgreSQL sequence hands out numbers that can commit out of order, and a reader
whose cursor is "the highest number seen" then skips a row for good.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

import pytest
import pytest_asyncio
from sqlalchemy import select
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import create_async_engine

from server.db import make_engine
from server.ingest import Ingestor
from server.migrate import upgrade
from server.models import Envelope
from server.storage import ReadableKeys, SqlStorage, StoredItem
from tests.server._seed import SeededSchool, seed_school
from tests.server.conftest import postgres_database

pytestmark = pytest.mark.asyncio

WRITERS, DEVICES_PER_WRITER, COMMITS_PER_WRITER = 4, 2, 30
READERS = 4  # half hold the safeguarding key (read everything), half only the pupil's key
PAGE = 7


@pytest_asyncio.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
async def database_url(request, tmp_path) -> AsyncIterator[str]:  # type: ignore[no-untyped-def]
    async with contextlib.AsyncExitStack() as stack:
        if request.param == "sqlite":
            url = f"sqlite+aiosqlite:///{tmp_path}/cairn.db"
        else:
            url = await stack.enter_async_context(postgres_database())
        await upgrade(url)
        yield url


def _plan(school: SeededSchool, writer: int) -> tuple[list[list], set[bytes]]:
    """A writer's commits, sealed in advance: each names both of its devices (a group commit) with one to
    three envelopes each; every third envelope is also sealed to the pupil's key."""
    devices = school.devices[writer * DEVICES_PER_WRITER : (writer + 1) * DEVICES_PER_WRITER]
    commits, to_pupil = [], set()
    n = 0
    for c in range(COMMITS_PER_WRITER):
        batches = []
        for d, device in enumerate(devices):
            items = []
            for _ in range(1 + (c + d) % 3):
                n += 1
                item = school.seal(device, to_pupil=n % 3 == 0)
                if n % 3 == 0:
                    to_pupil.add(item.parsed.header.envelope_id)
                items.append(item)
            batches.append((device.device_id, items))
        commits.append(batches)
    return commits, to_pupil


async def test_concurrent_writers_never_make_a_reader_skip_or_repeat(database_url: str) -> None:
    setup = make_engine(database_url)
    school = await seed_school(setup, devices=WRITERS * DEVICES_PER_WRITER)
    plans = [_plan(school, w) for w in range(WRITERS)]
    engines = [make_engine(database_url) for _ in range(WRITERS + READERS)]
    acked: dict[bytes, int] = {}
    writers_done = asyncio.Event()
    overlapped = [0] * READERS  # pages a reader was given while writers were still at work

    async def write(storage: SqlStorage, commits: list[list]) -> None:
        for batches in commits:
            results, before, after = await storage.append_many(school.school_id, batches)
            assert [r.error for r in results] == [None] * len(batches)
            assert after - before == sum(len(items) for _, items in batches)
            acked.update((a.envelope_id, a.seq) for r in results for a in r.acks or [])

    async def read(index: int, storage: SqlStorage, keys: ReadableKeys) -> list[int]:
        seen, cursor = [], 0
        while True:
            finished = writers_done.is_set()  # read before the pull: then the pull sees every commit
            page = await storage.pull_since(school.school_id, keys, cursor, PAGE)
            assert page.cursor_seq >= cursor, "a cursor never moves back"
            seen += [i.seq for i in page.items]
            cursor = page.cursor_seq
            if finished and page.done:
                return seen
            overlapped[index] += not finished and bool(page.items)

    readers = [school.reader(pupil_only=r % 2 == 1) for r in range(READERS)]
    reading = [asyncio.create_task(read(r, SqlStorage(engines[WRITERS + r]), readers[r])) for r in range(READERS)]
    try:
        await asyncio.gather(*(write(SqlStorage(engines[w]), plans[w][0]) for w in range(WRITERS)))
        writers_done.set()
        seen = await asyncio.gather(*reading)
        async with setup.connect() as conn:
            stored = list(await conn.scalars(select(Envelope.seq).where(Envelope.school_id == school.school_id)))
    finally:
        for task in reading:
            task.cancel()
        await asyncio.gather(*reading, return_exceptions=True)
        for engine in [setup, *engines]:
            await engine.dispose()

    total = WRITERS * sum(sum(len(items) for _, items in batches) for batches in plans[0][0])
    assert sorted(acked.values()) == sorted(stored) == list(range(1, total + 1)), "dense, each number once"
    to_pupil = set().union(*(p[1] for p in plans))
    expected = {
        False: sorted(acked.values()),
        True: sorted(seq for envelope_id, seq in acked.items() if envelope_id in to_pupil),
    }
    for r, got in enumerate(seen):
        assert got == expected[r % 2 == 1], f"reader {r} skipped, repeated or reordered an envelope"
    assert sum(overlapped) > 0, "the readers ran alongside the writers"


async def test_a_commit_is_published_whole_even_when_one_of_its_waiters_has_gone(database_url: str) -> None:
    """A connection that closes while its put waits still has its envelopes committed; the push of that
    commit must carry them, or a reader following the pushes would skip them."""
    engine = make_engine(database_url)
    heard: list[tuple[int, int, list[int]]] = []
    published = asyncio.Event()

    async def record(school_id: bytes, before: int, after: int, items: list[StoredItem]) -> None:
        heard.append((before, after, [i.seq for i in items]))
        published.set()

    ingestor = Ingestor(SqlStorage(engine), record)
    try:
        school = await seed_school(engine, devices=2)
        gone_device, staying_device = school.devices
        gone = asyncio.create_task(ingestor.submit(school.school_id, gone_device.device_id, [school.seal(gone_device)]))
        staying = asyncio.create_task(
            ingestor.submit(school.school_id, staying_device.device_id, [school.seal(staying_device)])
        )
        await asyncio.sleep(0)  # one turn of the loop: both batches are queued, the ingestor not yet started
        gone.cancel()
        ingestor.start()
        (ack,) = await staying
        await asyncio.wait_for(published.wait(), 10)
    finally:
        await ingestor.stop()
        await engine.dispose()
    assert gone.cancelled()
    assert heard == [(0, 2, [1, 2])] and ack.seq in (1, 2)


def _plain(url: str) -> str:
    return url.replace("postgresql+asyncpg://", "postgresql://", 1)


@pytest.mark.postgres
async def test_a_bare_sequence_commits_out_of_order_and_a_max_seen_cursor_skips_a_row(postgres_url: str) -> None:
    """The control: two writers on a scratch table numbered by a SEQUENCE. A takes 1, B takes 2 and
    commits first; a reader sees 2, moves its cursor to 2, and never sees 1 once A commits."""
    import asyncpg

    a, b, reader = [await asyncpg.connect(_plain(postgres_url)) for _ in range(3)]
    try:
        await a.execute(
            "CREATE SEQUENCE scratch_seq; "
            "CREATE TABLE scratch (seq bigint PRIMARY KEY DEFAULT nextval('scratch_seq'), note text)"
        )
        insert = "INSERT INTO scratch (note) VALUES ('fictional') RETURNING seq"
        pull = "SELECT seq FROM scratch WHERE seq > $1 ORDER BY seq"
        slow = a.transaction()
        await slow.start()
        first = await a.fetchval(insert)
        async with b.transaction():
            second = await b.fetchval(insert)
        assert first < second

        seen = [r[0] for r in await reader.fetch(pull, 0)]
        assert seen == [second]  # 1 is not committed yet: invisible
        cursor = max(seen)
        await slow.commit()
        seen += [r[0] for r in await reader.fetch(pull, cursor)]

        committed = {r[0] for r in await reader.fetch("SELECT seq FROM scratch")}
        assert committed == {first, second}
        assert set(seen) == {second}, "the reader skipped the row that committed late"
    finally:
        for conn in (a, b, reader):
            await conn.close()


@pytest.mark.postgres
async def test_the_write_path_takes_no_number_while_another_write_holds_the_counter(postgres_url: str) -> None:
    """The same interleaving through the real write path: while one transaction holds the school's
    counter row, a second ``append_many`` cannot take a number (it waits; here ``lock_timeout`` makes
    the wait visible as an error), so no number can commit ahead of an earlier one."""
    import asyncpg

    await upgrade(postgres_url)
    setup = make_engine(postgres_url)
    impatient = create_async_engine(postgres_url, connect_args={"server_settings": {"lock_timeout": "200"}})
    holder = await asyncpg.connect(_plain(postgres_url))
    try:
        school = await seed_school(setup, devices=2)
        first, second = school.devices
        held = holder.transaction()
        await held.start()
        await holder.fetchval("SELECT last_seq FROM school_counters WHERE school_id = $1 FOR UPDATE", school.school_id)
        with pytest.raises(DBAPIError) as waited:
            await SqlStorage(impatient).append_many(school.school_id, [(second.device_id, [school.seal(second)])])
        assert waited.value.orig.sqlstate == "55P03"  # lock_not_available: it waited on the counter row
        await held.rollback()
        second.counter, second.last_hash = 0, bytes(32)  # nothing of that attempt was stored
        storage = SqlStorage(setup)
        results, before, after = await storage.append_many(school.school_id, [(first.device_id, [school.seal(first)])])
        assert (before, after) == (0, 1)
        results, before, after = await storage.append_many(
            school.school_id, [(second.device_id, [school.seal(second)])]
        )
        assert (before, after) == (1, 2)
    finally:
        await holder.close()
        await impatient.dispose()
        await setup.dispose()


async def test_a_device_twice_in_one_group_commit_gets_duplicate_acks_not_a_broken_chain(database_url: str) -> None:
    """A reconnecting device may resend what its old connection still has queued; when both batches land
    in the same group commit, the second is acknowledged as duplicates and the chain goes on from them."""
    engine = make_engine(database_url)
    try:
        school = await seed_school(engine)
        device = school.devices[0]
        first, second = school.seal(device), school.seal(device)
        storage = SqlStorage(engine)
        batch = (device.device_id, [first, second])
        results, before, after = await storage.append_many(school.school_id, [batch, batch])
        assert [r.error for r in results] == [None, None] and (before, after) == (0, 2)
        assert [(a.seq, a.duplicate) for a in results[0].acks or []] == [(1, False), (2, False)]
        assert [(a.seq, a.duplicate) for a in results[1].acks or []] == [(1, True), (2, True)]
        assert len(results[0].new_items) == 2 and results[1].new_items == []
        results, _, after = await storage.append_many(school.school_id, [(device.device_id, [school.seal(device)])])
        assert results[0].error is None and after == 3
    finally:
        await engine.dispose()
