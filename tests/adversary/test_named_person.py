"""A person once named on a concern (need-to-know) whose naming ends when the concern's recipients shrink:
the concern's next events are under a new entry key version, and the server's wall is per entry key version,
not per concern. The person is sent what its entry key grant opens, and nothing of the version after. And a
server that lists an entry key grant to make again (its keyholder gone) for someone the concern does not name
gets nothing sealed: the keyholder's device checks the concern's own fold."""

from __future__ import annotations

import os

import pytest
from sqlalchemy import insert, select

from crypto import SecretKey
from crypto import envelope as env
from server.models import EntryGrant
from server.storage import now_ms
from sync.device import uuid7
from sync.keyholder import run_duties
from sync.outbox import ChainState
from sync.protocol import b64d
from sync.reader import Reader
from sync.writer import ConcernWriter
from tests.adversary._attack import GOT_THROUGH
from tests.server.test_late_keys import record

pytestmark = pytest.mark.asyncio


def _queue(device, outbox, concern: bytes, version: int, content: bytes, pupil: bytes) -> None:  # type: ignore[no-untyped-def]
    """One event of ``concern`` under entry key ``version``, sealed as ``Device.write`` seals (which always
    writes version 1) to the safeguarding group and the pupil's key."""
    entry_key, recipients = SecretKey.generate(), device.recipients_for([pupil])

    def seal(chain: ChainState) -> tuple[bytes, bytes, bytes]:
        envelope_id = uuid7()
        sealed = env.seal(
            kind=env.KIND_CONCERN_EVENT, school_id=device.school_id, envelope_id=envelope_id, concern_id=concern,
            author_device=device.device_key, author_device_id=device.device_id, counter=chain.counter + 1,
            prev_hash=chain.last_hash, device_time_ms=now_ms(), entry_key=entry_key, entry_key_version=version,
            pupil_ids=[pupil], recipients=recipients, content=content,
        )
        return envelope_id, sealed, env.envelope_hash(sealed)

    outbox.queue(seal)


async def test_a_person_named_on_one_entry_key_version_is_sent_nothing_of_the_next(school) -> None:
    dsl, ash = school.dsl, school.members["teacher-ash"]  # Ash's teacher holds no key of an Oak pupil
    concern, pupil = os.urandom(16), school.classes["oak"][0]
    _queue(dsl.device, dsl.outbox, concern, 1, b"fictional: while the teacher was named", pupil)
    _queue(dsl.device, dsl.outbox, concern, 2, b"fictional: after the recipients shrank", pupil)
    await (await dsl.connect(school.running)).flush()
    async with school.running.services.engine.begin() as conn:  # named on version 1 (the grant's bytes aside)
        await conn.execute(insert(EntryGrant).values(
            school_id=school.school_id, concern_id=concern, entry_version=1, member_id=ash.device.user_id,
            granter_device=dsl.device.device_id, grant=b"\x01", created_ms=now_ms()))

    client = await ash.connect(school.running)
    page = await client._request({"type": "pull", "cursor": None, "limit": 500})
    await client.close()

    sent = [env.parse(b64d(i["envelope"], "envelope")).header for i in page["items"]]
    versions = [h.entry_key_version for h in sent]
    assert {h.concern_id for h in sent} == {concern}
    assert versions == [1], f"{GOT_THROUGH}: the person was sent entry key versions {versions}"


async def test_an_entry_grant_duty_the_server_lists_seals_only_to_whom_the_concern_names(
    school,
) -> None:
    """The server's storage holds an entry key grant of the DSL's concern to the Ash teacher, made by a device no
    keyholder has (as if a keyholder since gone had named them), so the DSL's duties list it to make again. Nobody
    is named on the concern: the DSL's device, folding it, refuses, and the Ash teacher reads nothing of it."""
    dsl, ash = school.dsl, school.members["teacher-ash"]
    created = ConcernWriter(dsl.device, dsl.outbox).create(record(school.classes["oak"][0], "fictional: no one named"))
    client = await dsl.connect(school.running)
    await client.flush()
    await client.pull_all()
    async with school.running.services.engine.begin() as conn:
        await conn.execute(insert(EntryGrant).values(
            school_id=school.school_id, concern_id=created.concern_id, entry_version=1, member_id=ash.device.user_id,
            granter_device=os.urandom(16), grant=b"\x01", created_ms=now_ms()))

    listed = (await dsl.device.call("GET", "/api/v1/keyholder/duties"))["entry_grants"]
    assert [b64d(i["member_id"], "member") for i in listed] == [ash.device.user_id]
    report = await run_duties(dsl.device, Reader(dsl.device, dsl.outbox))

    async with school.running.services.engine.connect() as conn:
        stored = await conn.scalar(select(EntryGrant.grant).where(EntryGrant.member_id == ash.device.user_id))
    assert stored == b"\x01" and report.regranted == 0, (
        f"{GOT_THROUGH}: the DSL's device sealed the concern's entry key to someone nobody named")
    assert [r.rsplit(": ", 1)[1] for r in report.refused] == ["the concern does not name that person"]
    reader = Reader(ash.device, ash.outbox)
    await reader.refresh()
    await (await ash.connect(school.running)).pull_all()
    assert reader.read().events(created.concern_id) == [] and reader.entry_keys == {}
