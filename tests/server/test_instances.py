"""Several app instances on one PostgreSQL database: live pushes and revocations cross instances through
LISTEN/NOTIFY, and an instance whose listening connection drops catches up when it is back."""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator
from dataclasses import dataclass

import httpx
import pytest
import pytest_asyncio

from crypto import envelope as env
from server.notify import COMMITS, REVOCATIONS
from server.storage import Incoming
from sync.client import Revoked
from sync.protocol import b64e
from tests.server.conftest import postgres_database
from tests.server.harness import Running, School, build_school, running_server

pytestmark = [pytest.mark.asyncio, pytest.mark.postgres]


@dataclass
class Two:
    a: Running
    b: Running
    school: School
    url: str


@pytest_asyncio.fixture
async def two(tmp_path) -> AsyncIterator[Two]:  # type: ignore[no-untyped-def]
    """Two servers on one PostgreSQL database, and a school built through the first."""
    async with postgres_database() as url:
        async with running_server(url) as a, running_server(url) as b:
            async with httpx.AsyncClient(base_url=a.base, timeout=30) as http:
                school = await build_school(a, http, tmp_path)
                try:
                    yield Two(a, b, school, url)
                finally:
                    for member in [school.dsl, *school.members.values()]:
                        if member.client is not None:
                            await member.client.close()
                        member.outbox.close()


async def _live(member, running: Running) -> asyncio.Event:  # type: ignore[no-untyped-def]
    """Connect, pull to the end, and return an event set when a push arrives."""
    arrived = asyncio.Event()
    client = await member.connect(running)
    client.on_received = lambda items: arrived.set()
    await client.pull_all()
    return arrived


async def test_a_put_through_one_instance_is_pushed_live_by_another(two: Two) -> None:
    import asyncpg

    heard: list[tuple[str, str]] = []
    both_heard = asyncio.Event()

    def spy(_conn: object, _pid: int, channel: str, payload: str) -> None:
        heard.append((channel, payload))
        both_heard.set()

    watcher = await asyncpg.connect(two.url.replace("postgresql+asyncpg://", "postgresql://", 1))
    await watcher.add_listener(COMMITS, spy)
    try:
        arrived = await _live(two.school.dsl, two.a)
        teacher = two.school.members["teacher-oak"]
        teacher.device.write(teacher.outbox, b"fictional: quiet all morning", pupil_ids=[two.school.classes["oak"][0]])
        report = await (await teacher.connect(two.b)).flush()
        assert report.sent == 1
        await asyncio.wait_for(arrived.wait(), 10)
        await asyncio.wait_for(both_heard.wait(), 10)
    finally:
        await watcher.close()

    ((seq, _, body),) = two.school.dsl.outbox.inbox()
    opened = env.open(body, teacher.device.device_key.public, two.school.dsl.device.keyring())
    assert (seq, opened.content) == (1, b"fictional: quiet all morning")
    # the notification is ids and numbers only: the instance, the school, before and after
    assert heard == [(COMMITS, f"{two.b.services.notifier.instance} {two.school.school_id.hex()} 0 1")]


async def test_a_revocation_through_one_instance_closes_the_socket_on_another(two: Two) -> None:
    teacher = two.school.members["teacher-ash"]
    teacher.device.write(teacher.outbox, b"fictional: unsent", pupil_ids=[two.school.classes["ash"][0]])
    client = await teacher.connect(two.b)
    closed = asyncio.get_running_loop().create_future()
    client._reader.add_done_callback(lambda _: closed.set_result(True))

    answer = await two.school.dsl.device.call(
        "POST", "/api/v1/devices/revoke", device_id=b64e(teacher.device.device_id)
    )
    await asyncio.wait_for(closed, 5)

    assert answer == {"revoked": True, "sockets_closed": 0}  # counted on the instance that was asked
    assert isinstance(client._closed_reason, Revoked)
    with pytest.raises(Revoked):
        await teacher.connect(two.a)  # reconnecting: it hands over what it never sent, then wipes
    assert teacher.outbox.pending_count() == 0 and teacher.client.handed_over == 1
    assert two.b.services.hub.connections(two.school.school_id) == []


async def test_an_instance_whose_listener_dropped_catches_up_when_it_listens_again(two: Two) -> None:
    """A commit that A never hears of (stored through B's storage, with no NOTIFY) reaches A's socket
    once A's listening connection is killed and comes back; later commits flow as before."""
    import asyncpg

    arrived = await _live(two.school.dsl, two.a)
    teacher = two.school.members["teacher-oak"]
    pupil = [two.school.classes["oak"][1]]
    teacher.device.write(teacher.outbox, b"fictional: missed", pupil_ids=pupil)
    (pending,) = teacher.outbox.head(10, 10**7)
    parsed = env.verify(pending.body, teacher.device.device_key.public)
    incoming = Incoming(pending.body, parsed, env.envelope_hash(pending.body))
    results, before, after = await two.b.services.storage.append_many(
        two.school.school_id, [(teacher.device.device_id, [incoming])]
    )
    assert (results[0].error, before, after) == (None, 0, 1) and not arrived.is_set()

    notifier = two.a.services.notifier
    killer = await asyncpg.connect(two.url.replace("postgresql+asyncpg://", "postgresql://", 1))
    try:
        await killer.fetchval("SELECT pg_terminate_backend($1)", notifier._listener.get_server_pid())
    finally:
        await killer.close()
    async with notifier.changed:
        await asyncio.wait_for(notifier.changed.wait_for(lambda: notifier.connections == 2), 10)
    await asyncio.wait_for(arrived.wait(), 10)
    assert [seq for seq, _, _ in two.school.dsl.outbox.inbox()] == [1]

    arrived.clear()
    teacher.device.write(teacher.outbox, b"fictional: after", pupil_ids=pupil)
    report = await (await teacher.connect(two.b)).flush()
    assert (report.duplicates, report.sent) == (1, 1)  # the first was stored already: acknowledged again
    await asyncio.wait_for(arrived.wait(), 10)
    assert [seq for seq, _, _ in two.school.dsl.outbox.inbox()] == [1, 2]


async def test_notifications_carry_ids_and_numbers_only(two: Two) -> None:
    """What travels through PostgreSQL's notification queue, for a commit and for a revocation."""
    import asyncpg

    heard: list[tuple[str, str]] = []
    got = {COMMITS: asyncio.Event(), REVOCATIONS: asyncio.Event()}

    def spy(_conn: object, _pid: int, channel: str, payload: str) -> None:
        heard.append((channel, payload))
        got[channel].set()

    watcher = await asyncpg.connect(two.url.replace("postgresql+asyncpg://", "postgresql://", 1))
    try:
        for channel in got:
            await watcher.add_listener(channel, spy)
        lunch = await two.school.invite("lunch-1", ["contributor"])
        await lunch.device.refresh()
        lunch.device.write(lunch.outbox, b"fictional: marker-7f3a", pupil_ids=[two.school.pupils[0]])
        await (await lunch.connect(two.a)).flush()
        await two.school.dsl.device.call("POST", "/api/v1/devices/revoke", device_id=b64e(lunch.device.device_id))
        await asyncio.wait_for(asyncio.gather(*(e.wait() for e in got.values())), 10)
    finally:
        await watcher.close()
    shapes = {
        COMMITS: r"[0-9a-f]{16} [0-9a-f]{32} \d+ \d+",
        REVOCATIONS: r"[0-9a-f]{16} [0-9a-f]{32} [0-9a-f]{32} - - - device_revoked",
    }
    assert heard and all(re.fullmatch(shapes[channel], payload) for channel, payload in heard), heard


async def test_a_push_whose_notify_was_lost_reaches_a_reader_on_another_instance(two: Two, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    """B commits and then never NOTIFYs (as if it died between the two): A's live reader still gets the
    push within seconds, from A's own catch-up, with no notification sent at all."""
    import asyncpg

    heard: list[str] = []
    watcher = await asyncpg.connect(two.url.replace("postgresql+asyncpg://", "postgresql://", 1))
    await watcher.add_listener(COMMITS, lambda _c, _p, _ch, payload: heard.append(payload))
    lost = asyncio.Event()

    async def dies_before_notify(school_id: bytes, before: int, after: int) -> None:
        lost.set()

    monkeypatch.setattr(two.b.services.notifier, "committed", dies_before_notify)
    try:
        arrived = await _live(two.school.dsl, two.a)
        teacher = two.school.members["teacher-ash"]
        teacher.device.write(teacher.outbox, b"fictional: never notified", pupil_ids=[two.school.classes["ash"][0]])
        report = await (await teacher.connect(two.b)).flush()
        assert report.sent == 1 and lost.is_set()
        await asyncio.wait_for(arrived.wait(), 10)  # the catch-up runs every CAIRN_PUSH_CATCH_UP_SECONDS (2)
    finally:
        await watcher.close()
    assert [seq for seq, _, _ in two.school.dsl.outbox.inbox()] == [1]
    assert heard == []  # it came by the catch-up alone
