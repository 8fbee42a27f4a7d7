"""One server, many schools: each school's envelopes, sequence numbers and sockets stay its own.

A few schools have real members, built through the real client code paths; the rest are seeded into
storage and write through the server's ingestor, all at once, so that group commits span schools.
"""

from __future__ import annotations

import asyncio
import os

import httpx
import pytest
from sqlalchemy import Index, UniqueConstraint, func, select
from sqlmodel import SQLModel

import server.models  # noqa: F401 - registers every table on SQLModel.metadata
from crypto import SecretKey
from crypto import envelope as env
from server.hub import Hub
from server.models import Envelope, SchoolCounter
from server.storage import StoredItem, now_ms
from sync.client import SyncClient, SyncError
from sync.protocol import b64e, encode_cursor
from tests.server._seed import seed_school
from tests.server.harness import Member, Running, School, build_school

SCHOOLS, WITH_MEMBERS = 200, 3


def _school_of(body: bytes) -> bytes:
    return env.parse(body).header.school_id


async def _live(member: Member, running: Running) -> asyncio.Event:
    arrived = asyncio.Event()
    client = await member.connect(running)
    client.on_received = lambda items: arrived.set()
    await client.pull_all()
    return arrived


async def _close(schools: list[School]) -> None:
    for school in schools:
        for member in [school.dsl, *school.members.values()]:
            if member.client is not None:
                await member.client.close()
            member.outbox.close()


@pytest.mark.asyncio
async def test_two_hundred_schools_number_their_envelopes_apart_and_read_only_their_own(running, tmp_path) -> None:  # type: ignore[no-untyped-def]
    services = running.services
    async with httpx.AsyncClient(base_url=running.base, timeout=30) as http:
        built = [await build_school(running, http, tmp_path / f"school-{n}") for n in range(WITH_MEMBERS)]
        try:
            seeded = [
                await seed_school(services.engine, f"Fictional School {n}") for n in range(SCHOOLS - WITH_MEMBERS)
            ]

            async def write(n: int) -> int:
                """Seeded school n puts 1 to 4 envelopes through the ingestor, alongside all the others."""
                school, count = seeded[n], 1 + n % 4
                items = [school.seal(school.devices[0], to_pupil=k % 2 == 0) for k in range(count)]
                await services.ingestor.submit(school.school_id, school.devices[0].device_id, items)
                return count

            written = await asyncio.gather(*(write(n) for n in range(len(seeded))))
            lives = [await _live(school.dsl, running) for school in built]
            for k, school in enumerate(built):  # each built school's teacher puts two, in turn
                teacher = school.members["teacher-oak"]
                for n in range(2):
                    teacher.device.write(teacher.outbox, f"fictional {k}.{n}".encode(), pupil_ids=[school.pupils[0]])
                await (await teacher.connect(running)).flush()
                await asyncio.wait_for(lives[k].wait(), 10)

            async with services.engine.connect() as conn:
                numbers = {
                    bytes(r[0]): (int(r[1]), int(r[2]), int(r[3]))
                    for r in await conn.execute(
                        select(
                            Envelope.school_id, func.min(Envelope.seq), func.max(Envelope.seq), func.count()
                        ).group_by(Envelope.school_id)
                    )
                }
                counters = {bytes(r[0]): int(r[1]) for r in await conn.execute(select(SchoolCounter.__table__))}
            expected = {s.school_id: (1, c, c) for s, c in zip(seeded, written, strict=True)}
            expected |= {s.school_id: (1, 2, 2) for s in built}
            assert len(expected) == SCHOOLS
            assert numbers == expected, "every school counts from 1, densely, on its own"
            assert counters == {school_id: top for school_id, (_, top, _) in expected.items()}

            for n, school in enumerate(seeded):
                page = await services.storage.pull_since(school.school_id, school.reader(), 0, 500)
                assert [i.seq for i in page.items] == list(range(1, written[n] + 1)) and page.done
                assert {_school_of(i.body) for i in page.items} == {school.school_id}
                if n % 10 == 0:  # another school's keys open nothing here
                    other = seeded[(n + 1) % len(seeded)]
                    assert (await services.storage.pull_since(school.school_id, other.reader(), 0, 500)).items == []

            for school in built:  # pushed and pulled: this school's two envelopes only
                inbox = school.dsl.outbox.inbox()
                assert [seq for seq, _, _ in inbox] == [1, 2]
                assert {_school_of(body) for _, _, body in inbox} == {school.school_id}
                connections = services.hub.connections(school.school_id)
                assert connections and {c.school_id for c in connections} == {school.school_id}
        finally:
            await _close(built)


def _seal(member: Member, school_id: bytes, recipients: list, pupil_ids: list[bytes]) -> str:
    """A first envelope of this device (counter 1), as it would sign it, naming whatever it is told."""
    device = member.device
    return b64e(
        env.seal(
            kind=env.KIND_CONCERN_EVENT,
            school_id=school_id,
            envelope_id=os.urandom(16),
            concern_id=os.urandom(16),
            author_device=device.device_key,
            author_device_id=device.device_id,
            counter=1,
            prev_hash=bytes(32),
            device_time_ms=now_ms(),
            entry_key=SecretKey.generate(),
            entry_key_version=1,
            pupil_ids=pupil_ids,
            recipients=recipients,
            content=b"fictional: crossing schools",
        )
    )


@pytest.mark.asyncio
async def test_a_device_of_one_school_cannot_put_pull_or_be_pushed_into_another(running, tmp_path) -> None:  # type: ignore[no-untyped-def]
    async with httpx.AsyncClient(base_url=running.base, timeout=30) as http:
        a = await build_school(running, http, tmp_path / "a")
        b = await build_school(running, http, tmp_path / "b")
        try:
            teacher_a, teacher_b = a.members["teacher-oak"], b.members["teacher-oak"]
            b_safeguarding = b.dsl.device.recipients_for([])[0]
            b_pupil = b.dsl.device.recipients_for([b.pupils[0]])[1]
            a_safeguarding = teacher_a.device.recipients_for([])[0]
            client = await teacher_a.connect(running)
            tries = {
                "wrong_school": _seal(teacher_a, b.school_id, [b_safeguarding], []),
                "unknown_pupil": _seal(teacher_a, a.school_id, [a_safeguarding], [b.pupils[0]]),
                "unknown_recipient": _seal(teacher_a, a.school_id, [a_safeguarding, b_safeguarding], []),
            }
            for code, raw in tries.items():
                reply = await client._request({"type": "put", "envelopes": [raw]})
                assert (reply["type"], reply["code"]) == ("error", code)
            reply = await client._request(
                {"type": "put", "envelopes": [_seal(teacher_a, a.school_id, [a_safeguarding, b_pupil], [])]}
            )
            assert reply["code"] == "unknown_recipient"

            with pytest.raises(SyncError) as crossed:  # A's session, claiming B's school in the device proof
                await SyncClient(
                    running.ws_url,
                    teacher_a.outbox,
                    school_id=b.school_id,
                    device_id=teacher_a.device.device_id,
                    device_key=teacher_a.device.device_key,
                    token=teacher_a.device.token or "",
                ).connect()
            assert crossed.value.code == "auth_failed"

            live_a, live_b = await _live(a.dsl, running), await _live(b.dsl, running)
            for n in range(3):
                teacher_b.device.write(teacher_b.outbox, f"fictional b{n}".encode(), pupil_ids=[b.pupils[0]])
            await (await teacher_b.connect(running)).flush()
            await asyncio.wait_for(live_b.wait(), 10)
            assert not live_a.is_set()
            refused = await a.dsl.client._request({"type": "pull", "cursor": encode_cursor(3), "limit": 10})
            assert refused["code"] == "invalid_cursor"  # B's numbers mean nothing in A

            teacher_a.device.write(teacher_a.outbox, b"fictional a0", pupil_ids=[a.pupils[0]])  # its counter 1
            await client.flush()
            await asyncio.wait_for(live_a.wait(), 10)  # after B's pushes went out: none of them came here
            assert [(seq, _school_of(body)) for seq, _, body in a.dsl.outbox.inbox()] == [(1, a.school_id)]
            assert [seq for seq, _, _ in b.dsl.outbox.inbox()] == [1, 2, 3]
            assert await running.services.storage.last_seq(a.school_id) == 1
            assert await running.services.storage.last_seq(b.school_id) == 3
        finally:
            await _close([a, b])


class _Socket:
    def __init__(self, school_id: bytes, device_id: bytes) -> None:
        self.school_id, self.device_id, self.user_id = school_id, device_id, os.urandom(16)
        self.session = os.urandom(32)
        self.heard: list[tuple[int, int]] = []
        self.revoked: list[str] = []

    def committed(self, before: int, after: int, items: list[StoredItem]) -> None:
        self.heard.append((before, after))

    async def end(self, reason: str) -> None:
        self.revoked.append(reason)


@pytest.mark.asyncio
async def test_the_hub_fans_out_to_one_school_only() -> None:
    hub = Hub()
    shared_device = os.urandom(16)  # one device id in every school: the school still tells them apart
    schools = [os.urandom(16) for _ in range(SCHOOLS)]
    sockets = {s: [_Socket(s, shared_device), _Socket(s, os.urandom(16))] for s in schools}
    for group in sockets.values():
        for socket in group:
            assert hub.add(socket) == []
    await hub.published(schools[7], 0, 3, [])
    assert await hub.end(schools[9], device_id=shared_device, reason="device_revoked") == 1
    for n, school in enumerate(schools):
        assert [s.heard for s in sockets[school]] == ([[(0, 3)], [(0, 3)]] if n == 7 else [[], []])
        assert [s.revoked for s in sockets[school]] == ([["device_revoked"], []] if n == 9 else [[], []])
    assert set(hub.schools()) == set(schools)


# Tables that are not keyed by school, and why. Every other table has ``school_id`` in its primary key or
# leading an index, so it can be distributed by school (Citus) as docs/ARCHITECTURE.md's "Storage and scale" says.
NOT_KEYED_BY_SCHOOL = {
    "schools": "the schools themselves: the row's own id is the school id",
    "sessions": "found by the hash of a bearer token, which names no school; each row carries school_id",
    "challenges": "found by the challenge id a sign-in returns; short-lived, and each row carries school_id",
}


def test_every_table_is_keyed_by_school_except_a_few_with_reasons() -> None:
    unkeyed = set()
    for table in SQLModel.metadata.sorted_tables:
        primary = [c.name for c in table.primary_key.columns]
        leading = {next(iter(index.columns)).name for index in table.indexes if isinstance(index, Index)}
        leading |= {next(iter(c.columns)).name for c in table.constraints if isinstance(c, UniqueConstraint)}
        if "school_id" not in primary and "school_id" not in leading:
            unkeyed.add(table.name)
        if table.name in NOT_KEYED_BY_SCHOOL and table.name != "schools":
            assert "school_id" in table.columns, f"{table.name} must still say which school a row belongs to"
    assert unkeyed == set(NOT_KEYED_BY_SCHOOL)
