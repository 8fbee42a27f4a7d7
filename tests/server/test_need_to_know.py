"""Need-to-know reaches the whole concern (docs/PROTOCOL.md 5.1 and 9.5), on SQLite and PostgreSQL.

Naming someone re-seals every earlier entry key version of the concern to them, from the naming keyholder's
device (an entry key grant); the server stores it and delivers the concern's earlier envelopes with it. The
server checks what it can (the signer is an approved keyholder's device, the person a current member, the
concern one of the school's); the person's device checks the rest, so a hostile server that hands it a grant
for another concern, or one made by a device that is not a safeguarding keyholder's, gains nothing. A naming
outlives the keyholder who made it: once they leave the team, another keyholder's duties make the grant again.
"""

from __future__ import annotations

import os

import pytest
from sqlalchemy import insert, select

from crypto import SecretKey, make_entry_grant
from crypto.entry_grant import EntryGrantInfo
from server.models import EntryGrant
from sync.device import ApiFailure, now_ms
from sync.events import VERSION, encode
from sync.keyholder import run_duties
from sync.protocol import b64d, b64e
from sync.reader import Reader
from sync.writer import ConcernWriter
from tests.server.test_late_keys import Watch, record, start

pytestmark = pytest.mark.asyncio


def texts(reading) -> set[str]:  # type: ignore[no-untyped-def]
    """What the person reads: each event's own words."""
    out = set()
    for _, _, e in reading.opened:
        body = e.body
        out.add(body.get("record", {}).get("observed") or body.get("text") or body.get("status") or e.type)
    return out


async def three_events(school, observed: str) -> tuple[bytes, SecretKey]:  # type: ignore[no-untyped-def]
    """A concern about an Oak pupil with three events (created, a comment, a status change), sent."""
    dsl = school.dsl
    writer = ConcernWriter(dsl.device, dsl.outbox)
    created = writer.create(record(school.classes["oak"][0], observed))
    reader = Reader(dsl.device, dsl.outbox)
    client = dsl.client or await dsl.connect(school.running)
    await client.flush()
    await client.pull_all()
    (opened, event), = reader.read().events(created.concern_id)
    comment = writer.follow_up(opened, [event], "comment", {"text": "fictional: spoke to the class teacher"})
    writer.follow_up(opened, [comment], "status_changed", {"status": "awaiting"})
    await client.flush()
    await client.pull_all()
    return created.concern_id, created.entry_key


async def test_a_person_named_on_a_concern_reads_its_three_earlier_events(school) -> None:
    concern, _ = await three_events(school, "fictional: a concern the Ash teacher is named on later")
    ash = school.members["teacher-ash"]  # teaches another class: no key of this concern
    reader = Reader(ash.device, ash.outbox)
    await reader.refresh()
    watch = Watch(reader)
    _, stop, task = await start(ash, school.running, watch)
    try:
        assert texts(reader.read()) == set()
        dsl = school.dsl
        await Reader(dsl.device, dsl.outbox).name_need_to_know(
            ConcernWriter(dsl.device, dsl.outbox), concern, [ash.device.user_id]
        )
        await dsl.client.flush()  # type: ignore[union-attr]

        await watch.until(lambda r: len(r.opened) == 4)
        assert texts(reader.read()) == {
            "fictional: a concern the Ash teacher is named on later", "fictional: spoke to the class teacher",
            "awaiting", "amended",
        }
        assert {e.type for _, _, e in reader.read().opened} == {"created", "comment", "status_changed", "amended"}
        assert reader.refused_grants == []
    finally:
        stop.set()
        await task


async def test_a_hostile_server_s_grant_for_another_concern_opens_nothing_of_it(school) -> None:
    """The author reused one entry key for two concerns; the DSL names the Ash teacher on the first only. The
    server files that grant under the second concern too, and so delivers the second concern's envelopes:
    the device uses a grant only for the concern and version its signed bytes name."""
    named, key = await three_events(school, "fictional: the concern the Ash teacher is named on")
    dsl = school.dsl
    ash = school.members["teacher-ash"]
    reader = Reader(ash.device, ash.outbox)
    await reader.refresh()
    watch = Watch(reader)
    _, stop, task = await start(ash, school.running, watch)
    try:
        await Reader(dsl.device, dsl.outbox).name_need_to_know(ConcernWriter(dsl.device, dsl.outbox), named,
                                                              [ash.device.user_id])
        await dsl.client.flush()  # type: ignore[union-attr]
        await watch.until(lambda r: len(r.opened) == 4)
        (grant,) = (await ash.device.call("GET", "/api/v1/entry-grants"))["grants"]
        other_concern = os.urandom(16)
        async with school.running.services.engine.begin() as conn:  # the hostile server files it under another
            await conn.execute(insert(EntryGrant).values(
                school_id=school.school_id, concern_id=other_concern, entry_version=1, member_id=ash.device.user_id,
                granter_device=dsl.device.device_id, grant=b64d(grant, "grant"), created_ms=now_ms()))
        await school.running.services.granted(school.school_id, {ash.device.user_id})

        # the same entry key for another concern (an author's bug or attack): only the concern binding tells
        # them apart; the server delivers it to the Ash teacher by the row it filed
        secret = "fictional: another concern under the same key, not for the Ash teacher"
        made = encode({"v": VERSION, "type": "created", "hlc": list(ConcernWriter(dsl.device, dsl.outbox).tick()),
                       "author": dsl.device.user_id.hex(), "parents": [], "entry_key_version": 1,
                       "record": record(school.classes["oak"][1], secret)})
        dsl.device.write(dsl.outbox, made, concern_id=other_concern, entry_key=key,
                         pupil_ids=[school.classes["oak"][1]])
        await dsl.client.flush()  # type: ignore[union-attr]

        opened = lambda r: {o.header.concern_id for _, o, _ in r.opened}  # noqa: E731
        await watch.until(lambda r: other_concern in r.waiting_for_keys | opened(r))  # delivered, kept sealed
        assert secret not in texts(reader.read())
        assert {o.header.concern_id for _, o, _ in reader.read().opened} == {named}
    finally:
        stop.set()
        await task


async def test_an_entry_key_grant_made_by_a_device_that_is_not_a_keyholder_s_is_refused(school) -> None:
    """The Oak teacher reads an Oak concern (its pupil key) and so holds its entry key; it seals that key to the
    Ash teacher. The server refuses it; a hostile server that stores and delivers it anyway gains nothing: the
    Ash teacher's device takes entry key grants only from a safeguarding keyholder's device."""
    concern, _ = await three_events(school, "fictional: only the Oak teacher and the team read this")
    oak, ash = school.members["teacher-oak"], school.members["teacher-ash"]
    oak_reader = Reader(oak.device, oak.outbox)
    client = await oak.connect(school.running)
    await client.pull_all()
    opened = oak_reader.read().events(concern)[0][0]
    account = next(a for a in oak.device.directory["accounts"] if a["login"] == "teacher-ash")
    grant = make_entry_grant(
        EntryGrantInfo(school.school_id, concern, 1, ash.device.user_id, oak.device.device_id, now_ms()),
        opened.entry_key, b64d(account["identity_x25519_pk"], "pk"), oak.device.device_key,
    )
    with pytest.raises(ApiFailure) as refused:
        await oak.device.call("POST", "/api/v1/entry-grants", grants=[b64e(grant)])
    assert refused.value.code == "forbidden"  # the server's wall: only an approved keyholder names

    reader = Reader(ash.device, ash.outbox)
    await reader.refresh()
    watch = Watch(reader)
    _, stop, task = await start(ash, school.running, watch)
    try:
        async with school.running.services.engine.begin() as conn:  # the hostile server stores it anyway
            await conn.execute(insert(EntryGrant).values(
                school_id=school.school_id, concern_id=concern, entry_version=1, member_id=ash.device.user_id,
                granter_device=oak.device.device_id, grant=grant, created_ms=now_ms()))
        await school.running.services.granted(school.school_id, {ash.device.user_id})

        # woken by the refusal (or, were the grant taken, by the concern's envelopes opening)
        await watch.until(lambda r: bool(reader.refused_grants or r.opened))
        assert texts(reader.read()) == set() and reader.entry_keys == {}
        assert reader.refused_grants == ["an entry key grant not made by a safeguarding keyholder's device"]
    finally:
        stop.set()
        await task


async def test_the_server_stores_an_entry_key_grant_only_for_a_member_and_a_concern_of_its_school(school) -> None:
    concern, key = await three_events(school, "fictional: checked by the server")
    dsl, ash = school.dsl.device, school.members["teacher-ash"].device

    def grant(concern_id: bytes = concern, member: bytes = ash.user_id, version: int = 1, device=dsl) -> str:  # type: ignore[no-untyped-def]
        info = EntryGrantInfo(school.school_id, concern_id, version, member, device.device_id, now_ms())
        return b64e(make_entry_grant(info, key, ash.identity.box.public, device.device_key))

    for bad, code in [
        (grant(concern_id=bytes(16)), "not_found"),  # no such concern here
        (grant(version=2), "not_found"),  # the concern has no version 2
        (grant(member=bytes(16)), "not_found"),  # nobody of this school
        (grant(device=school.members["teacher-oak"].device), "invalid_grant"),  # signed by another device
        ("AAAA", "invalid_request"),
    ]:
        with pytest.raises(ApiFailure) as refused:
            await dsl.call("POST", "/api/v1/entry-grants", grants=[bad])
        assert refused.value.code == code
    assert (await dsl.call("POST", "/api/v1/entry-grants", grants=[grant()]))["stored"] == 1
    assert (await dsl.call("POST", "/api/v1/entry-grants", grants=[grant()]))["stored"] == 1  # named twice: kept once
    assert len((await ash.call("GET", "/api/v1/entry-grants"))["grants"]) == 1


async def test_a_person_named_by_a_keyholder_who_then_leaves_the_team_reads_the_whole_concern_again(school) -> None:
    """The deputy names the Ash teacher on the DSL's concern, then leaves the safeguarding team: the Ash teacher's
    device refuses the deputy's grant from then on (PROTOCOL 5.1), and reads only the naming. The server lists the
    grant in the DSL's duties; the DSL's device, finding the Ash teacher named in the concern's fold, seals it
    again, the server replaces the deputy's, and the Ash teacher reads the whole concern once more."""
    concern, _ = await three_events(school, "fictional: named by the deputy, who then leaves the team")
    dsl, ash = school.dsl, school.members["teacher-ash"]
    deputy = await school.invite("deputy", ["teacher", "safeguarding"])  # approved by the DSL on its device
    await run_duties(dsl.device)  # the deputy is owed the safeguarding keys
    await deputy.device.refresh()
    client = await deputy.connect(school.running)
    await client.pull_all()
    await Reader(deputy.device, deputy.outbox).name_need_to_know(
        ConcernWriter(deputy.device, deputy.outbox), concern, [ash.device.user_id])
    await client.flush()
    await client.close()
    await dsl.device.call("POST", "/api/v1/admin/leave", user_id=b64e(deputy.device.user_id), scope="group",
                          role="safeguarding")

    without = await run_duties(dsl.device)  # signs the deputy out of the team; reads no concern, so grants nothing
    assert without.regranted == 0 and without.refused == ["1 entry key grants to make again: this run reads no concern"]
    reader = Reader(ash.device, ash.outbox)
    await reader.refresh()
    watch = Watch(reader)
    _, stop, task = await start(ash, school.running, watch)
    try:
        await watch.until(lambda r: len(r.opened) == 1)
        assert texts(reader.read()) == {"amended"}  # sealed to the person named: the rest needs the grant
        assert reader.refused_grants == ["an entry key grant not made by a safeguarding keyholder's device"]

        await dsl.client.pull_all()  # type: ignore[union-attr]
        report = await run_duties(dsl.device, Reader(dsl.device, dsl.outbox))
        assert report.regranted == 1 and report.refused == []
        await watch.until(lambda r: len(r.opened) == 4)
        assert texts(reader.read()) == {
            "fictional: named by the deputy, who then leaves the team", "fictional: spoke to the class teacher",
            "awaiting", "amended",
        }
    finally:
        stop.set()
        await task
    async with school.running.services.engine.connect() as conn:
        granter = await conn.scalar(select(EntryGrant.granter_device).where(EntryGrant.member_id == ash.device.user_id))
    assert granter == dsl.device.device_id
    assert (await dsl.device.call("GET", "/api/v1/keyholder/duties"))["entry_grants"] == []  # made again once
    assert (await run_duties(dsl.device, Reader(dsl.device, dsl.outbox))).regranted == 0


async def test_a_grant_of_a_keyholder_still_on_the_team_is_kept_when_another_keyholder_names_the_same_person(
    school,
) -> None:
    """Two keyholders naming one person: the first grant stands while its granter is a keyholder's device."""
    concern, key = await three_events(school, "fictional: named twice")
    dsl, ash = school.dsl.device, school.members["teacher-ash"].device
    deputy = (await school.invite("deputy", ["teacher", "safeguarding"])).device
    await run_duties(dsl)
    await deputy.refresh()
    for device in (dsl, deputy):
        info = EntryGrantInfo(school.school_id, concern, 1, ash.user_id, device.device_id, now_ms())
        grant = b64e(make_entry_grant(info, key, ash.identity.box.public, device.device_key))
        assert (await device.call("POST", "/api/v1/entry-grants", grants=[grant]))["stored"] == 1
    async with school.running.services.engine.connect() as conn:
        granter = await conn.scalar(select(EntryGrant.granter_device).where(EntryGrant.member_id == ash.user_id))
    assert granter == dsl.device_id
    assert (await dsl.call("GET", "/api/v1/keyholder/duties"))["entry_grants"] == []


async def test_a_follow_up_keeps_its_concern_s_entry_key_version_so_a_named_person_reads_it(school) -> None:
    """Found by the visibility bench: the Python client labelled every follow-up version 1, so one written under
    a restriction's version 2 key opened for nobody holding the version 2 grant."""
    concern, _ = await three_events(school, "fictional: restricted later by the PWA")
    dsl = school.dsl
    reader, writer = Reader(dsl.device, dsl.outbox), ConcernWriter(dsl.device, dsl.outbox)
    events = reader.read().events(concern)
    heads = sorted(e.id for _, e in events)
    # what the PWA's restriction writes: version 2, a fresh key, the safeguarding group only
    hlc = writer.tick(e.hlc for _, e in events)
    restricted = encode({"v": VERSION, "type": "restriction_changed", "hlc": list(hlc),
                         "author": dsl.device.user_id.hex(), "parents": heads, "restricted": True,
                         "reason": "fictional: sensitive", "entry_key_version": 2})
    dsl.device.write(dsl.outbox, restricted, concern_id=concern, entry_key=SecretKey.generate(), entry_key_version=2,
                     pupil_ids=[school.classes["oak"][0]], restricted=True)
    await dsl.client.flush()  # type: ignore[union-attr]
    await dsl.client.pull_all()  # type: ignore[union-attr]
    newest = max(reader.read().events(concern), key=lambda pair: pair[0].header.entry_key_version)
    assert newest[0].header.entry_key_version == 2
    comment = writer.follow_up(newest[0], [newest[1]], "comment", {"text": "fictional: under the restriction"})
    await dsl.client.flush()  # type: ignore[union-attr]
    await dsl.client.pull_all()  # type: ignore[union-attr]
    (mine,) = [o for o, e in reader.read().events(concern) if e.id == comment.event_id.hex()]
    assert mine.header.entry_key_version == 2

    ash = school.members["teacher-ash"]
    await reader.name_need_to_know(writer, concern, [ash.device.user_id])
    await dsl.client.flush()  # type: ignore[union-attr]
    theirs = Reader(ash.device, ash.outbox)
    await theirs.refresh()
    client = ash.client or await ash.connect(school.running, keys=theirs.key_refs)
    await client.catch_up()
    await client.pull_all()
    assert "fictional: under the restriction" in texts(theirs.read())
    # the three, the restriction, the comment and the naming
    assert len(theirs.read().opened) == 6 and theirs.refused_grants == []
