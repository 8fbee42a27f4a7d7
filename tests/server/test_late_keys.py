"""Nothing hidden, nothing delayed (docs/PROTOCOL.md 9.5): what a device could not read when it pulled is read
as soon as what it needs arrives, on the same device, over the same connection, on SQLite and PostgreSQL.

- The found bug: a teacher invited and approved pulls first (nothing: it holds no pupil key yet); the DSL's
  duties then grant the class's keys; the teacher's first device reads every earlier entry within seconds,
  without reconnecting by hand: the server tells its socket of the grant, and the device backfills what the
  new keys open from the beginning.
- An entry written by a device the signed directory does not list yet is kept, sealed, and opened once a
  keyholder's device signs the version that lists it (the server tells every socket of the new version).
- A backfill reads only keys the user holds, and is paged like any pull.
"""

from __future__ import annotations

import asyncio
import json
import os
from collections.abc import Callable

import pytest
from sqlalchemy import update

from server.models import Account
from sync.client import READER_KEY, SyncClient
from sync.device import sign_in
from sync.keyholder import run_duties
from sync.outbox import Outbox
from sync.protocol import b64d, b64e, frame
from sync.reader import Reader, Reading
from sync.writer import ConcernWriter
from tests.server.harness import PASSWORD, Member, raw_socket

pytestmark = pytest.mark.asyncio

EARLIER = 6
SECONDS = 10  # "within seconds": the test fails if the entries have not opened by then


def record(pupil: bytes, observed: str) -> dict:
    return {
        "kind": "safeguarding_concern",
        "category": "neglect",
        "occurred_at": "2026-11-02T12:15",
        "observed": observed,
        "pupils": [{"pupil": pupil.hex(), "role": "subject"}],
    }


def observed(reading: Reading) -> set[str]:
    return {e.body["record"]["observed"] for _, _, e in reading.opened if e.type == "created"}


class Watch:
    """Wakes the test when what the reader's device can open meets a condition: checked each time the client
    stores a page or push and after each catch-up (events the client signals, never a sleep)."""

    def __init__(self, reader: Reader) -> None:
        self.reader = reader
        self.waiting: list[tuple[Callable[[Reading], bool], asyncio.Event]] = []

    def __call__(self, _items: object = None) -> None:
        reading = self.reader.read()
        for condition, event in self.waiting:
            if condition(reading):
                event.set()

    async def refreshed(self) -> None:
        """The client's ``on_grants`` and ``on_directory``: open what arrived, then look again."""
        await self.reader.refresh()
        self()

    async def until(self, condition: Callable[[Reading], bool]) -> None:
        event = asyncio.Event()
        self.waiting.append((condition, event))
        try:
            self()
            await asyncio.wait_for(event.wait(), SECONDS)
        finally:
            self.waiting.remove((condition, event))


async def start(member: Member, running, watch: Watch) -> tuple[SyncClient, asyncio.Event, asyncio.Task]:  # type: ignore[no-untyped-def]
    client = await member.connect(
        running, keys=watch.reader.key_refs, on_grants=watch.refreshed, on_directory=watch.refreshed, on_received=watch
    )
    stop = asyncio.Event()
    task = asyncio.create_task(client.run(stop, poll_seconds=60))  # 60 s: nothing here waits on the timer
    await asyncio.wait_for(client.live.wait(), SECONDS)
    return client, stop, task


async def test_a_new_teacher_reads_the_class_s_earlier_entries_on_its_first_device_once_granted(school) -> None:
    dsl = school.dsl.device
    oak = school.classes["oak"]
    writer = ConcernWriter(dsl, school.dsl.outbox)
    texts = {f"fictional: earlier concern {n} about an Oak pupil" for n in range(EARLIER)}
    for n, text in enumerate(sorted(texts)):
        writer.create(record(oak[n % len(oak)], text))
    await (await school.dsl.connect(school.running)).flush()

    newcomer = await school.invite("teacher-new", ["teacher"])  # invited, joined, approved by the DSL
    reader = Reader(newcomer.device, newcomer.outbox)
    await reader.refresh()
    watch = Watch(reader)
    client, stop, task = await start(newcomer, school.running, watch)
    try:
        assert observed(reader.read()) == set() and newcomer.outbox.cursor() is not None  # pulled: nothing yet

        class_id = next(b64d(c["id"], "id") for c in dsl.directory["classes"] if c["label"] == "oak")
        await dsl.call("POST", "/api/v1/admin/class-teachers", class_id=b64e(class_id),
                       user_id=b64e(newcomer.device.user_id), reason="new to Oak")
        await dsl.approve({("teaches", class_id, newcomer.device.user_id)})
        assert (await run_duties(dsl)).granted == len(oak)  # the DSL's duties seal the class's pupil keys

        await watch.until(lambda r: len(observed(r)) == EARLIER)  # no reconnect, no second device, no reload
        assert observed(reader.read()) == texts
        assert not reader.read().waiting_for_keys
        assert {(READER_KEY, *dsl.pupil_key(p)[:2]) for p in oak} <= newcomer.outbox.covered()
    finally:
        stop.set()
        await task


async def test_an_entry_by_a_device_the_directory_does_not_list_yet_is_kept_and_opened_once_it_does(school) -> None:
    teacher = school.members["teacher-oak"]
    reader = Reader(teacher.device, teacher.outbox)
    await reader.refresh()
    watch = Watch(reader)
    client, stop, task = await start(teacher, school.running, watch)
    tablet = await _new_tablet_of_the_dsl(school)
    try:
        ConcernWriter(tablet.device, tablet.outbox).create(
            record(school.classes["oak"][0], "fictional: written on a tablet the directory does not list yet")
        )
        await (await tablet.connect(school.running)).flush()
        await watch.until(lambda r: bool(r.waiting_for_device))  # pushed live, and kept sealed
        assert observed(reader.read()) == set() and len(teacher.outbox.inbox()) == 1

        await school.dsl.device.refresh()  # a keyholder's device signs the version that lists the tablet

        await watch.until(lambda r: len(observed(r)) == 1)
        assert observed(reader.read()) == {"fictional: written on a tablet the directory does not list yet"}
        assert not reader.read().waiting_for_device
    finally:
        stop.set()
        await task
        if tablet.client is not None:
            await tablet.client.close()
        tablet.outbox.close()


async def _new_tablet_of_the_dsl(school) -> Member:  # type: ignore[no-untyped-def]
    """The DSL signs in on a new tablet: the server has its device at once, the signed directory not yet."""
    async with school.running.services.engine.begin() as conn:  # a one-time code is taken once per step
        await conn.execute(update(Account).where(Account.school_id == school.school_id, Account.login == "dsl")
                           .values(totp_last_step=0))
    device = await sign_in(school.http, school.school_id, "dsl", PASSWORD, totp_secret=school.dsl.totp)
    device.pinned_signing_pk = school.dsl.device.pinned_signing_pk
    await device.follow_directory()
    assert device.device_id not in {b64d(d["id"], "id") for d in device.directory["devices"]}
    return Member(device, school.dsl.totp, Outbox(school.folder / f"tablet-{os.urandom(4).hex()}.db"))


async def test_a_backfill_names_only_keys_the_user_holds_and_is_paged_like_any_pull(school) -> None:
    dsl = school.dsl.device
    oak, ash = school.classes["oak"], school.classes["ash"]
    writer = ConcernWriter(dsl, school.dsl.outbox)
    for n in range(5):
        writer.create(record(oak[0], f"fictional: paged backfill {n}"))
    await (await school.dsl.connect(school.running)).flush()
    teacher = school.members["teacher-oak"]
    ws = await raw_socket(school.running, teacher)
    try:
        oak_key, oak_version, _ = dsl.pupil_key(oak[0])
        ash_key, ash_version, _ = dsl.pupil_key(ash[0])
        await ws.send(frame({"type": "pull", "id": "b1", "cursor": None, "limit": 1,
                             "keys": [{"id": b64e(ash_key), "version": ash_version}]}))
        refused = json.loads(await ws.recv())
        assert refused["type"] == "error" and refused["code"] == "not_granted"
        assert refused["fields"] == {"keys[0]": "not_granted"}  # another class's pupil: never sent

        seqs, cursor = [], None
        while True:
            await ws.send(frame({"type": "pull", "id": "b2", "cursor": cursor, "limit": 2,
                                 "keys": [{"id": b64e(oak_key), "version": oak_version}]}))
            page = json.loads(await ws.recv())
            assert page["type"] == "page" and len(page["items"]) <= 2
            seqs += [i["seq"] for i in page["items"]]
            cursor = page["cursor"]
            if page["done"]:
                break
        assert len(seqs) == 5 and seqs == sorted(seqs)
    finally:
        await ws.close()


@pytest.mark.postgres
async def test_a_grant_stored_through_one_instance_reaches_a_teacher_connected_to_another(tmp_path) -> None:  # type: ignore[no-untyped-def]
    """Two app instances on one PostgreSQL database: the teacher is connected to the second; the DSL's duties
    grant through the first. The NOTIFY tells the teacher's socket, which backfills the earlier entries."""
    import httpx

    from tests.server.conftest import postgres_database
    from tests.server.harness import build_school, running_server

    async with postgres_database() as url, running_server(url) as a, running_server(url) as b:
        async with httpx.AsyncClient(base_url=a.base, timeout=30) as http:
            school = await build_school(a, http, tmp_path)
            dsl = school.dsl.device
            oak = school.classes["oak"]
            ConcernWriter(dsl, school.dsl.outbox).create(record(oak[0], "fictional: before the teacher joined"))
            await (await school.dsl.connect(a)).flush()
            newcomer = await school.invite("teacher-new", ["teacher"])
            reader = Reader(newcomer.device, newcomer.outbox)
            await reader.refresh()
            watch = Watch(reader)
            _, stop, task = await start(newcomer, b, watch)  # connected to the other instance
            try:
                class_id = next(b64d(c["id"], "id") for c in dsl.directory["classes"] if c["label"] == "oak")
                await dsl.call("POST", "/api/v1/admin/class-teachers", class_id=b64e(class_id),
                               user_id=b64e(newcomer.device.user_id))
                await dsl.approve({("teaches", class_id, newcomer.device.user_id)})
                await run_duties(dsl)
                await watch.until(lambda r: observed(r) == {"fictional: before the teacher joined"})
            finally:
                stop.set()
                await task
                for member in [school.dsl, *school.members.values()]:
                    if member.client is not None:
                        await member.client.close()
                    member.outbox.close()
