"""The sync protocol end to end, through the real client against a real server process."""

from __future__ import annotations

import asyncio

import pytest

from crypto import envelope as env
from sync.protocol import b64e

pytestmark = pytest.mark.asyncio


async def test_a_contributors_concern_reaches_the_dsl_who_decrypts_it(school) -> None:
    lunch = await school.invite("lunch-1", ["contributor"])
    await lunch.device.refresh()
    lunch.device.write(lunch.outbox, b"fictional: grazed knee, says pushed", pupil_ids=[school.classes["oak"][0]])
    client = await lunch.connect(school.running)
    report = await client.flush()
    assert report.sent == 1 and lunch.outbox.pending_count() == 0

    dsl = await school.dsl.connect(school.running)
    await dsl.pull_all()
    ((seq, _, body),) = school.dsl.outbox.inbox()
    opened = env.open(body, lunch.device.device_key.public, school.dsl.device.keyring())
    assert opened.content == b"fictional: grazed knee, says pushed"


async def test_live_push_reaches_a_connected_dsl(school) -> None:
    arrived = asyncio.Event()
    dsl = await school.dsl.connect(school.running)
    dsl.on_received = lambda items: arrived.set()
    await dsl.pull_all()
    teacher = school.members["teacher-oak"]
    teacher.device.write(teacher.outbox, b"fictional: upset at pick-up", pupil_ids=[school.classes["oak"][1]])
    await (await teacher.connect(school.running)).flush()
    await asyncio.wait_for(arrived.wait(), 10)
    assert len(school.dsl.outbox.inbox()) == 1


async def test_an_upload_is_idempotent_and_a_reused_id_with_other_bytes_is_refused(school) -> None:
    teacher = school.members["teacher-oak"]
    teacher.device.write(teacher.outbox, b"fictional: first", pupil_ids=[school.classes["oak"][0]])
    (pending,) = teacher.outbox.head(10, 10**7)
    client = await teacher.connect(school.running)
    first = await client._request({"type": "put", "envelopes": [b64e(pending.body)]})
    again = await client._request({"type": "put", "envelopes": [b64e(pending.body)]})
    assert first["type"] == again["type"] == "ack"
    assert again["results"][0]["seq"] == first["results"][0]["seq"] and again["results"][0]["duplicate"]
    forged = bytearray(pending.body)
    forged[-70] ^= 1  # inside the ciphertext: the signature no longer verifies
    refused = await client._request({"type": "put", "envelopes": [b64e(bytes(forged))]})
    assert refused["code"] == "bad_signature"
    assert await school.running.services.storage.last_seq(school.school_id) == 1


async def test_a_contributor_can_put_and_pulls_nothing(school) -> None:
    school.dsl.device.write(school.dsl.outbox, b"fictional: dsl note", pupil_ids=[school.classes["ash"][0]])
    await (await school.dsl.connect(school.running)).flush()
    lunch = await school.invite("lunch-2", ["contributor"])
    await lunch.device.refresh()
    lunch.device.write(lunch.outbox, b"fictional: lunchtime", pupil_ids=[school.classes["ash"][1]])
    client = await lunch.connect(school.running)
    report = await client.flush()
    await client.pull_all(report)
    assert report.sent == 1 and report.received == 0 and lunch.outbox.inbox() == []


async def test_teachers_receive_only_their_classes_and_nothing_restricted(school) -> None:
    dsl = school.dsl.device
    oak, ash = school.classes["oak"], school.classes["ash"]
    dsl.write(school.dsl.outbox, b"fictional: oak, open", pupil_ids=[oak[0]])
    dsl.write(school.dsl.outbox, b"fictional: oak, restricted", pupil_ids=[oak[1]], restricted=True)
    dsl.write(school.dsl.outbox, b"fictional: ash, open", pupil_ids=[ash[0]])
    await (await school.dsl.connect(school.running)).flush()
    seen = {}
    for name in ("teacher-oak", "teacher-ash"):
        member = school.members[name]
        await (await member.connect(school.running)).pull_all()
        seen[name] = [
            env.open(b, dsl.device_key.public, member.device.keyring()).content for _, _, b in member.outbox.inbox()
        ]
    assert seen == {"teacher-oak": [b"fictional: oak, open"], "teacher-ash": [b"fictional: ash, open"]}


async def test_five_thousand_envelopes_queued_offline_sync_in_order_once_each(school) -> None:
    teacher = school.members["teacher-ash"]
    pupil = school.classes["ash"][2]
    recipients = teacher.device.recipients_for([pupil])
    ids = [
        teacher.device.write(
            teacher.outbox, f"fictional offline note {n}".encode(), pupil_ids=[pupil], recipients=recipients
        )
        for n in range(5000)
    ]
    assert teacher.outbox.pending_count() == 5000
    client = await teacher.connect(school.running, batch_size=256)
    report = await client.flush()
    assert (report.sent, report.duplicates, teacher.outbox.pending_count()) == (5000, 0, 0)
    dsl = await school.dsl.connect(school.running)
    await dsl.pull_all()
    stored = [env.parse(b).header for _, _, b in school.dsl.outbox.inbox()]
    assert [h.envelope_id for h in stored] == ids
    assert [h.counter for h in stored] == list(range(1, 5001))


async def test_a_pull_cut_off_mid_way_resumes_from_its_cursor(school) -> None:
    teacher = school.members["teacher-oak"]
    recipients = teacher.device.recipients_for([school.classes["oak"][0]])
    for n in range(30):
        teacher.device.write(
            teacher.outbox, f"fictional {n}".encode(), pupil_ids=[school.classes["oak"][0]], recipients=recipients
        )
    await (await teacher.connect(school.running)).flush()
    dsl = await school.dsl.connect(school.running)
    first = await dsl._request({"type": "pull", "cursor": None, "limit": 10})
    dsl._store(first)
    assert not first["done"] and len(first["items"]) == 10
    await dsl.close()  # the connection drops before the next page
    dsl = await school.dsl.connect(school.running)
    await dsl.pull_all(limit=7)
    seqs = [seq for seq, _, _ in school.dsl.outbox.inbox()]
    assert seqs == list(range(1, 31))


async def test_pages_stop_at_the_byte_limit_and_continue(school) -> None:
    teacher = school.members["teacher-oak"]
    pupil = school.classes["oak"][0]
    for n in range(5):
        teacher.device.write(teacher.outbox, bytes([n]) * 900_000, pupil_ids=[pupil])
    await (await teacher.connect(school.running, batch_size=2)).flush()
    dsl = await school.dsl.connect(school.running)
    first = await dsl._request({"type": "pull", "cursor": None, "limit": 500})
    size = sum(len(i["envelope"]) for i in first["items"])
    assert not first["done"] and 1 <= len(first["items"]) < 5 and size <= 3 * 1024 * 1024
    dsl._store(first)
    await dsl.pull_all()
    assert [seq for seq, _, _ in school.dsl.outbox.inbox()] == [1, 2, 3, 4, 5]


async def test_the_roster_reaches_staff_sealed_and_the_sensitive_part_skips_contributors(school) -> None:
    from sync.device import ROSTER_SENSITIVE, ROSTER_STAFF

    dsl = school.dsl.device
    await dsl.found_groups((ROSTER_STAFF, ROSTER_SENSITIVE))
    await dsl.refresh()
    lunch = await school.invite("lunch-roster", ["contributor"])
    teacher = school.members["teacher-oak"].device
    staff_key, sv, _ = dsl.group_key(ROSTER_STAFF)
    sensitive_key, xv, _ = dsl.group_key(ROSTER_SENSITIVE)
    grants = [(staff_key, sv, m.user_id, m.identity.box.public) for m in (lunch.device, teacher)]
    grants.append((sensitive_key, xv, teacher.user_id, teacher.identity.box.public))
    await dsl.grant(grants)
    with pytest.raises(Exception) as refused:  # the server's wall: no sensitive roster key for a contributor
        await dsl.grant([(sensitive_key, xv, lunch.device.user_id, lunch.device.identity.box.public)])
    assert getattr(refused.value, "code", "") == "forbidden"
    pupil = school.classes["oak"][0]
    await dsl.publish_roster([
        (pupil, ROSTER_STAFF, b'{"name": "Fictional Child", "class": "oak"}'),
        (pupil, ROSTER_SENSITIVE, b'{"dob": "2018-01-01", "flags": ["EAL"]}'),
    ])
    for device in (lunch.device, teacher):
        await device.refresh()
    assert await lunch.device.roster() == {pupil: {"name": "Fictional Child", "class": "oak"}}
    assert (await teacher.roster())[pupil] == {"name": "Fictional Child", "class": "oak", "dob": "2018-01-01",
                                               "flags": ["EAL"]}
    raw = await lunch.device.call("GET", "/api/v1/roster")
    assert len(raw["entries"]) == 1

